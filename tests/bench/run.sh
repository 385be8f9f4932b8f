#!/bin/bash
# run.sh - mxgate's benchmark under a real Postfix, in one command:
#
#   tests/bench/run.sh [--quick] [-o OUTDIR] [--rounds N] [--configs "A B"] [--conc "20 5 1"]
#
# Starts a private Postfix (queue on tmpfs where the machine allows it)
# relaying to smtp-sink, a private memcached and MariaDB, and one mxgate per
# configuration; drives each with smtp-source (one 5 KB message per SMTP
# session, as PERF-NOTES.md measured) at each concurrency, configurations
# interleaved round by round; then drives mxgate directly with the
# milter-protocol load driver (tests/bench/milter_load).  Writes to OUTDIR
# (default build/bench-results): runs.tsv (every run), table.md (medians:
# msg/s, ratio to the no-filter baseline of the same run, CPU ms per
# message of mxgate and of all Postfix processes), plot.dat and
# throughput.png (gnuplot), driver.txt; prints table.md at the end.
#
# QUICK=1 or --quick: one round of few messages, short driver runs, for a
# CI smoke test (under 3 minutes).  A full run takes about 10 minutes.
#
# Environment: MXGATE and MILTER_LOAD (built programs) if already built;
# otherwise the script configures and builds in BENCH_BUILD (default
# build/bench).  Needs root (Postfix, tmpfs, MariaDB); installs missing
# Debian packages.  Every wait and loop is bounded; everything started is
# stopped by pid on exit.  Exit 0 when every run completed, 1 if any run
# failed, 99 when the set-up failed.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/tests/e2e/lib/postfix.sh"
. "$here/lib.sh"

quick=${QUICK:-0}
outdir=
rounds=
configs="none postfix-helo mx-nochecks mx-helo mx-quota mx-ratelimit mx-overload mx-all mx-all-unix"
concs="20 5 1"
while (($#)); do
    case $1 in
        --quick) quick=1; shift ;;
        -o) outdir=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --configs) configs=$2; shift 2 ;;
        --conc) concs=$2; shift 2 ;;
        -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ $configs == *none* ]] || configs="none $configs"   # the baseline is always measured
[[ $quick == 0 || $quick == no ]] && quick=0 || quick=1
outdir=${outdir:-$top/build/bench-results}
if ((quick)); then
    : "${rounds:=1}"
    declare -A msgs=([20]=300 [5]=150 [1]=60)
    driver_secs=2
else
    : "${rounds:=3}"
    declare -A msgs=([20]=2000 [5]=1000 [1]=300)
    driver_secs=8
fi
[[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "run.sh: --rounds wants 1..99" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "run.sh: run as root (private Postfix, tmpfs)" >&2; exit 99; }

# ---- dependencies and build ------------------------------------------------
bash "$top/tests/install-deps.sh" build >&2 || exit 99
pf_need_packages postfix memcached mariadb-server gnuplot-nox >/dev/null || exit 99
if [[ -z ${MXGATE:-} || -z ${MILTER_LOAD:-} ]]; then
    build=${BENCH_BUILD:-$top/build/bench}
    bench_log "building in $build"
    mkdir -p "$build" || exit 99
    (
        cd "$top" && { [[ -x configure ]] || autoreconf -fi >/dev/null 2>&1; } &&
            cd "$build" && { [[ -f Makefile ]] || "$top/configure" -q >configure.out 2>&1; } &&
            make -j2 mxgate tests/bench/milter_load >make.out 2>&1
    ) || { bench_log "build failed (see $build/make.out)"; exit 99; }
    MXGATE=${MXGATE:-$build/mxgate}
    MILTER_LOAD=${MILTER_LOAD:-$build/tests/bench/milter_load}
fi
[[ -x $MXGATE && -x $MILTER_LOAD ]] || { bench_log "no mxgate or milter_load"; exit 99; }
mkdir -p "$outdir" || exit 99
outdir=$(cd "$outdir" && pwd)

# ---- servers -----------------------------------------------------------------
work=$(mktemp -d /tmp/mxgate-bench.XXXXXX) || exit 99
chmod 0755 "$work"
mounted=no
declare -A mxpid=()
extra_pids=()
cleanup() {
    local p
    trap '' INT TERM
    for p in "${mxpid[@]}" "${extra_pids[@]}"; do pf_kill_pid "$p" 5; done
    pf_stop_all
    [[ -r $work/db/mariadb.pid ]] && pf_kill_pid "$(cat "$work/db/mariadb.pid")" 20
    [[ -r $work/mc/memcached.pid ]] && pf_kill_pid "$(cat "$work/mc/memcached.pid")" 5
    [[ $mounted == yes ]] && umount "$work/pf" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 99' INT TERM

mkdir -p "$work/pf"
if mount -t tmpfs -o size=2g,mode=0755 tmpfs "$work/pf" 2>/dev/null; then
    mounted=yes
    queue_fs="tmpfs"
else
    queue_fs="$(df --output=fstype "$work" 2>/dev/null | tail -1) (tmpfs mount refused)"
fi
bench_log "Postfix queue on $queue_fs; output in $outdir"

need_db=no need_mc=no
[[ $configs =~ mx-quota|mx-all ]] && need_db=yes
[[ $configs =~ mx-ratelimit|mx-all ]] && need_mc=yes
mcport=$(pf_free_port) dbport=$(pf_free_port)
vmail=$work/pf/vmail
mkdir -p "$vmail"
if [[ $need_mc == yes ]]; then
    bench_memcached_start "$work/mc" "$mcport" || { bench_log "memcached failed"; exit 99; }
fi
if [[ $need_db == yes ]]; then
    bench_log "starting MariaDB"
    bench_mariadb_start "$work/db" "$dbport" &&
        bench_mariadb_load "$work/db" "$top" "$vmail" || { bench_log "MariaDB failed"; exit 99; }
else
    bench_maildir "$vmail/example.org/rcpt"
fi
chmod -R a+rX "$vmail"

# One Postfix; each configuration is an smtpd service on its own port.
declare -A port=() checks=() sockspec=()
checks=([mx-nochecks]="none" [mx-helo]="helo" [mx-quota]="quota" [mx-ratelimit]="ratelimit"
    [mx-overload]="overload" [mx-all]="helo quota ratelimit overload"
    [mx-all-unix]="helo quota ratelimit overload")
smtpport=$(pf_free_port) sinkport=$(pf_free_port)
PF_MASTER_EXTRA=
for c in $configs; do
    case $c in
        none) port[$c]=$smtpport ;;
        postfix-helo)
            port[$c]=$(pf_free_port)
            PF_MASTER_EXTRA+="127.0.0.1:${port[$c]} inet n - n - - smtpd
  -o smtpd_helo_required=yes
  -o smtpd_helo_restrictions=reject_invalid_helo_hostname,reject_non_fqdn_helo_hostname
" ;;
        mx-*)
            [[ -n ${checks[$c]:-} ]] || { bench_log "unknown configuration $c"; exit 2; }
            port[$c]=$(pf_free_port)
            if [[ $c == *-unix ]]; then
                sockspec[$c]="unix:$work/$c.sock"
            else
                sockspec[$c]="inet:$(pf_free_port)@127.0.0.1"
            fi
            # Postfix spells a TCP milter inet:HOST:PORT, mxgate inet:PORT@HOST.
            pfspec=${sockspec[$c]}
            [[ $pfspec == inet:* ]] && pfspec="inet:127.0.0.1:$(sed 's/^inet:\([0-9]*\)@.*/\1/' <<<"$pfspec")"
            PF_MASTER_EXTRA+="127.0.0.1:${port[$c]} inet n - n - - smtpd
  -o smtpd_milters=$pfspec
" ;;
        *) bench_log "unknown configuration $c"; exit 2 ;;
    esac
done
export PF_MASTER_EXTRA
PF_SASL=no

pfdir=$work/pf/postfix
for c in $configs; do
    [[ $c == mx-* ]] || continue
    bench_mxgate_conf "$work/$c.conf" "${sockspec[$c]}" "${checks[$c]}" "$pfdir/queue" \
        "$mcport" "$work/db" "$vmail"
    "$MXGATE" -f -c "$work/$c.conf" 2>"$work/$c.log" &
    mxpid[$c]=$!
done
for c in "${!mxpid[@]}"; do
    spec=${sockspec[$c]}
    if [[ $spec == unix:* ]]; then
        bench_wait_file "${spec#unix:}" 10 && chmod 0777 "${spec#unix:}"
    else
        spec=${spec#inet:}
        pf_wait_listen "${spec%@*}" 10
    fi || { bench_log "mxgate $c did not start:"; cat "$work/$c.log" >&2; exit 99; }
done

bench_log "starting Postfix"
pf_start "$pfdir" "$smtpport" "$sinkport" "default_process_limit = 200" \
    "smtpd_client_connection_count_limit = 0" || exit 99
# A sink that keeps nothing (pf_start's writes every message to a file):
# it only counts, so that delivery costs the same little in every run.
pf_kill_pid "$(cat "$pfdir/sink.pid")" 5
smtp-sink -u nobody -c "127.0.0.1:$sinkport" 256 </dev/null >"$pfdir/sink.log" 2>&1 &
echo $! >"$pfdir/sink.pid"
extra_pids+=("$(cat "$pfdir/sink.pid")")
pf_wait_listen "$sinkport" 10 || exit 99
master=$(pf_master_pid "$pfdir") || { bench_log "no Postfix master pid"; exit 99; }

# sink_count: messages smtp-sink has taken so far.
sink_count() {
    local n
    n=$(tr '\r' '\n' <"$pfdir/sink.log" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1)
    echo "${n:-0}"
}

# queue_count: messages still in the Postfix queue.
queue_count() {
    find "$pfdir/queue/incoming" "$pfdir/queue/active" "$pfdir/queue/deferred" \
        "$pfdir/queue/maildrop" -type f 2>/dev/null | wc -l
}

# drain WANT: wait (at most 90 s) until the sink has WANT messages and the
# queue is empty.
drain() {
    local want=$1 i
    for ((i = 0; i < 900; i++)); do
        (($(sink_count) >= want)) && (($(queue_count) == 0)) && return 0
        sleep 0.1
    done
    return 1
}

now() { date +%s.%N; }

# run_one ROUND CONFIG S: one smtp-source run; appends a line to runs.tsv.
run_one() {
    local round=$1 c=$2 s=$3 m=${msgs[$3]} pf0 pf1 mx0=0 mx1=0 t0 t1 st sink0 status=ok
    local limit=$((30 + m / 5))
    sink0=$(sink_count)
    pf0=$(bench_tree_ticks "$master")
    [[ -n ${mxpid[$c]:-} ]] && mx0=$(bench_proc_ticks "${mxpid[$c]}")
    t0=$(now)
    timeout "$limit" smtp-source -s "$s" -m "$m" -l 5120 -M client.example.net \
        -f sender@example.net -t rcpt@example.org "127.0.0.1:${port[$c]}" \
        >"$work/source.out" 2>&1
    st=$?
    t1=$(now)
    if ((st != 0)) || grep -qiE 'error|fatal' "$work/source.out"; then
        status="smtp-source-status-$st"
        sed 's/^/    /' "$work/source.out" | head -5 >&2
    fi
    drain $((sink0 + m)) || status="undelivered:$(($(sink_count) - sink0))/$m"
    pf1=$(bench_tree_ticks "$master")
    [[ -n ${mxpid[$c]:-} ]] && mx1=$(bench_proc_ticks "${mxpid[$c]}")
    awk -v r="$round" -v c="$c" -v s="$s" -v m="$m" -v t0="$t0" -v t1="$t1" \
        -v pf=$((pf1 - pf0)) -v mx=$((mx1 - mx0)) -v hz="$BENCH_HZ" -v st="$status" \
        -v hasmx="${mxpid[$c]:+1}" 'BEGIN {
            d = t1 - t0
            printf "%d\t%s\t%d\t%d\t%.3f\t%.1f\t%.3f\t%s\t%s\n", r, c, s, m, d, m / d,
                pf * 1000 / hz / m, hasmx ? sprintf("%.3f", mx * 1000 / hz / m) : "-", st
        }' >>"$outdir/runs.tsv"
    tail -1 "$outdir/runs.tsv" | awk -F'\t' '{ printf "[bench] round %s  %-13s -s %-2s %4s msgs %7.1f msg/s  postfix %s ms/msg  mxgate %s ms/msg  %s\n", $1, $2, $3, $4, $6, $7, $8, $9 }' >&2
}

printf 'round\tconfig\tconcurrency\tmessages\tseconds\tmsg_per_s\tpostfix_cpu_ms_per_msg\tmxgate_cpu_ms_per_msg\tstatus\n' \
    >"$outdir/runs.tsv"
start=$SECONDS
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# Warm-up (not recorded): every smtpd service once, caches and processes.
for c in $configs; do
    timeout 30 smtp-source -s 2 -m 20 -l 5120 -M client.example.net -f sender@example.net \
        -t rcpt@example.org "127.0.0.1:${port[$c]}" >/dev/null 2>&1
done
drain 0 >/dev/null
read -r -a cfgarr <<<"$configs"
n=${#cfgarr[@]}
for ((round = 1; round <= rounds; round++)); do
    for s in $concs; do
        # Rotate the order every round so no configuration always runs first.
        for ((k = 0; k < n; k++)); do
            run_one "$round" "${cfgarr[$(((k + round - 1) % n))]}" "$s"
        done
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
bench_log "Postfix runs done in $((SECONDS - start)) s (load average $load_before before, $load_after after)"

# ---- direct driver -------------------------------------------------------------
: >"$outdir/driver.txt"
driver() {
    local c=$1 label=$2
    shift 2
    [[ -n ${mxpid[$c]:-} ]] || return 0
    local t0 t1 res
    t0=$(bench_proc_ticks "${mxpid[$c]}")
    res=$("$MILTER_LOAD" -p "${sockspec[$c]}" -d "$driver_secs" "$@" 2>&1 | tail -1)
    t1=$(bench_proc_ticks "${mxpid[$c]}")
    printf '%s\t%s\t%s\tmxgate_cpu_s=%s\n' "$c" "$label" "$res" \
        "$(awk -v d=$((t1 - t0)) -v hz="$BENCH_HZ" 'BEGIN { printf "%.2f", d / hz }')" \
        >>"$outdir/driver.txt"
    tail -1 "$outdir/driver.txt" >&2
}
for c in mx-nochecks mx-helo mx-all mx-all-unix; do
    driver "$c" "8 threads, 1 msg x 1 rcpt per session" -c 8 -m 1 -r 1 -k 1000 -u 1000
    driver "$c" "8 threads, 1 msg x 10 rcpts per session" -c 8 -m 1 -r 10 -k 1000 -u 1000
done

# ---- summary ---------------------------------------------------------------------
summarize() {
    local c s v ms base r pfms mxms ok total
    echo "# mxgate benchmark"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(postconf -d mail_version 2>/dev/null | sed 's/.*= /Postfix /'),"
    echo "queue on $queue_fs; smtp-source -l 5120, one message per session;"
    echo "messages per run: -s 20: ${msgs[20]}, -s 5: ${msgs[5]}, -s 1: ${msgs[1]}; $rounds round(s), configurations interleaved; medians."
    echo "Load average before the runs: $load_before; after: $load_after (anything above ~1 means other work shared the cores)."
    echo "CPU: ms per message, all Postfix processes (smtpd, cleanup, qmgr, smtp, ...) and mxgate, measured until the queue was delivered."
    echo
    echo "| configuration | -s | msg/s | × baseline | mxgate CPU ms/msg | Postfix CPU ms/msg | runs ok |"
    echo "|---|---|---|---|---|---|---|"
    for c in $configs; do
        for s in $concs; do
            mapfile -t v < <(awk -F'\t' -v c="$c" -v s="$s" '$2 == c && $3 == s && $9 == "ok" { print $6 }' "$outdir/runs.tsv")
            mapfile -t base < <(awk -F'\t' -v s="$s" '$2 == "none" && $3 == s && $9 == "ok" { print $6 }' "$outdir/runs.tsv")
            ok=${#v[@]}
            total=$(awk -F'\t' -v c="$c" -v s="$s" '$2 == c && $3 == s' "$outdir/runs.tsv" | wc -l)
            ms=$(bench_median "${v[@]}")
            r=$(awk -v a="$ms" -v b="$(bench_median "${base[@]}")" 'BEGIN { if (b > 0 && a == a + 0) printf "%.2f", a / b; else print "-" }')
            pfms=$(bench_median $(awk -F'\t' -v c="$c" -v s="$s" '$2 == c && $3 == s && $9 == "ok" { print $7 }' "$outdir/runs.tsv"))
            mxms=$(bench_median $(awk -F'\t' -v c="$c" -v s="$s" '$2 == c && $3 == s && $9 == "ok" && $8 != "-" { print $8 }' "$outdir/runs.tsv"))
            [[ $c == mx-* ]] || mxms="—"
            printf '| %s | %s | %s | %s | %s | %s | %s/%s |\n' "$c" "$s" \
                "$(awk -v a="$ms" 'BEGIN { if (a == a + 0) printf "%.0f", a; else print "-" }')" \
                "$r" "$(awk -v a="$mxms" 'BEGIN { if (a == a + 0) printf "%.3f", a; else print a }')" \
                "$(awk -v a="$pfms" 'BEGIN { if (a == a + 0) printf "%.2f", a; else print "-" }')" "$ok" "$total"
        done
    done
    echo
    echo "Direct driver (tests/bench/milter_load, ${driver_secs} s each, mxgate and the driver share the cores):"
    echo
    echo "| configuration | shape | RCPT verdicts/s | p50 µs | p90 µs | p99 µs | mxgate CPU s |"
    echo "|---|---|---|---|---|---|---|"
    awk -F'\t' '{
        split($3, kv, " "); delete f
        for (i in kv) { split(kv[i], p, "="); f[p[1]] = p[2] }
        sub(/mxgate_cpu_s=/, "", $4)
        printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, f["rcpt_per_s"], f["p50_us"], f["p90_us"], f["p99_us"], $4
    }' "$outdir/driver.txt"
}
summarize >"$outdir/table.md"

# plot.dat: configuration, then msg/s at each concurrency.
{
    printf 'configuration'
    for s in $concs; do printf '\t-s %s' "$s"; done
    echo
    for c in $configs; do
        printf '%s' "$c"
        for s in $concs; do
            printf '\t%s' "$(bench_median $(awk -F'\t' -v c="$c" -v s="$s" '$2 == c && $3 == s && $9 == "ok" { print $6 }' "$outdir/runs.tsv") | sed 's/^nan$/0/')"
        done
        echo
    done
} >"$outdir/plot.dat"
gnuplot -e "datafile='$outdir/plot.dat'; outfile='$outdir/throughput.png'; ncols=$(($(wc -w <<<"$concs") + 1)); title_text='mxgate under Postfix: msg/s by configuration and smtp-source concurrency ($(nproc) cores, $rounds round(s))'" \
    "$here/plot.gp" 2>"$work/gnuplot.err" || { bench_log "gnuplot failed:"; cat "$work/gnuplot.err" >&2; }

cat "$outdir/table.md"
echo
echo "runs: $outdir/runs.tsv  plot: $outdir/throughput.png  ($((SECONDS - start)) s)"
for c in "${!mxpid[@]}"; do
    kill -0 "${mxpid[$c]}" 2>/dev/null || { bench_log "mxgate $c died during the run:"; tail -5 "$work/$c.log" >&2; }
done
if awk -F'\t' 'NR > 1 && $9 != "ok" { bad = 1 } END { exit !bad }' "$outdir/runs.tsv"; then
    bench_log "some runs failed (status column of runs.tsv)"
    exit 1
fi
exit 0
