#!/bin/bash
# run.sh - mxgate's benchmark under a real Postfix, in one command:
#
#   tests/bench/run.sh [--quick] [-o OUTDIR] [--rounds N] [--configs "A B"] [--conc "20 1"]
#
# Starts a private Postfix (queue on tmpfs where the machine allows it)
# relaying to smtp-sink, a private memcached and MariaDB, and one mxgate per
# configuration; drives each with smtp-source (one 5 KB message per SMTP
# session: what a milter costs Postfix shows most there) at each concurrency, configurations
# interleaved round by round; then drives mxgate directly with the
# milter-protocol load driver (tests/bench/milter_load).  Writes to OUTDIR
# (default build/bench-results): runs.tsv (every run), table.md (medians:
# msg/s, ratio to the no-filter baseline of the same run, CPU ms per
# message of every process kind, and the targets computed from this run),
# plot.dat and throughput.png (gnuplot), driver.txt; prints table.md.
#
# Configurations: "none" (no milter, the baseline, always measured),
# "postfix-helo" (Postfix's own HELO restrictions, no milter), and
# ENGINE-CHECKS[-unix]: ENGINE "mx" runs mxgate under libmilter (the
# default engine), "builtin" under engine = "builtin"; CHECKS is nochecks,
# helo, quota, ratelimit, overload or all (helo quota ratelimit overload),
# or bytes (ratelimit plus a count = "bytes" rule) or realsize (quota
# with quota.check_real_size): smtp-source sends no SIZE=, so these two
# ask Postfix for every message's header and body (beside ratelimit and
# quota they show what those events cost; the driver runs them with and
# without SIZE=);
# -unix talks to mxgate over a unix socket instead of TCP on 127.0.0.1;
# -metrics (before any -unix) also turns the metrics endpoint on and
# scrapes GET /metrics once a second during each of its runs, so that
# mx-all-metrics beside mx-all shows what serving the metrics costs;
# base-CONFIG runs CONFIG with the mxgate program MXGATE_BASE (an earlier
# build, same configuration file) so that base-mx-ratelimit beside
# mx-ratelimit shows what a change costs a configuration it leaves alone.
# Default: none postfix-helo mx-nochecks mx-all mx-all-metrics
# mx-nochecks-unix mx-all-unix builtin-nochecks builtin-all
# builtin-nochecks-unix builtin-all-unix (the single-check ones, e.g.
# mx-quota, by --configs).
# Default concurrencies 20 and 1 (--conc "20 5 1" adds 5), 5 rounds.
#
# CPU accounting (runs.tsv, ms per message, from /proc, clock ticks of
# utime+stime): mxgate, memcached, MariaDB (mariadbd) and smtp-sink are
# single long-lived processes: their ticks (all threads) before and after
# the run.  smtp-source runs under a bash whose cutime+cstime after it
# reaped it is smtp-source's CPU.  smtp-source and smtp-sink are the load
# generator and the sink: recorded in their own columns, in no total.
# Postfix: the master's tree, sampled every 0.2 s by bench_pf_sampler
# (lib.sh) from just before smtp-source starts until the queue is
# delivered; every daemon's share (last sample minus first) is summed by
# command name (smtpd, cleanup, qmgr, smtp, trivial-rewrite, postlogd,
# anvil, master; the rest as "other").  Daemons come and go during a run
# (max_use, max_idle): what one used after its last sample and before it
# exited is known only through the master's cutime+cstime (the master
# reaps every daemon), so the Postfix total is exact (master's own ticks,
# its reaped children's, and every living child's, end minus start) and
# that remainder is the column pf_exited.  machine_busy is the busy ticks
# of all CPUs (/proc/stat) over the run: whatever it exceeds the sum of the
# processes above was other work on the machine (or the idle mxgates of
# the other configurations, or this script).
#
# QUICK=1 or --quick: one round of few messages, short driver runs, for a
# CI smoke test (about 1-2 minutes).  A full run takes about 13 minutes on
# 2 cores (100 Postfix runs, then 16 driver runs of 8 s).
#
# Environment: MXGATE and MILTER_LOAD (built programs) if already built,
# MXGATE_BASE for the base-* configurations;
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
configs="none postfix-helo mx-nochecks mx-all mx-all-metrics mx-nochecks-unix mx-all-unix builtin-nochecks builtin-all builtin-nochecks-unix builtin-all-unix"
concs="20 1"
while (($#)); do
    case $1 in
        --quick) quick=1; shift ;;
        -o) outdir=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --configs) configs=$2; shift 2 ;;
        --conc) concs=$2; shift 2 ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
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
    : "${rounds:=5}"
    declare -A msgs=([20]=2000 [5]=1000 [1]=1000)
    driver_secs=8
fi
[[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "run.sh: --rounds wants 1..99" >&2; exit 2; }
for s in $concs; do
    [[ -n ${msgs[$s]:-} ]] || { echo "run.sh: --conc: concurrencies are 20, 5 and 1" >&2; exit 2; }
done

# mx_parse CONFIG: for an mxgate configuration
# ([base-]ENGINE-CHECKS[-metrics][-unix]) set cfg_engine (libmilter, builtin),
# cfg_checks (bench_mxgate_conf's words) and cfg_metrics (yes, no); false
# for any other name.
mx_parse() {
    local name=${1#base-} body
    case $name in
        mx-*) cfg_engine=libmilter body=${name#mx-} ;;
        builtin-*) cfg_engine=builtin body=${name#builtin-} ;;
        *) return 1 ;;
    esac
    body=${body%-unix}
    cfg_metrics=no
    [[ $body == *-metrics ]] && cfg_metrics=yes body=${body%-metrics}
    case $body in
        nochecks) cfg_checks=none ;;
        all) cfg_checks="helo quota ratelimit overload" ;;
        helo | quota | ratelimit | overload) cfg_checks=$body ;;
        bytes) cfg_checks="ratelimit bytes" ;;
        realsize) cfg_checks="quota realsize" ;;
        *) return 1 ;;
    esac
}
for c in $configs; do
    [[ $c == none || $c == postfix-helo ]] || mx_parse "$c" ||
        { echo "run.sh: unknown configuration $c (see --help)" >&2; exit 2; }
    [[ $c != base-* || -x ${MXGATE_BASE:-} ]] ||
        { echo "run.sh: $c needs MXGATE_BASE, an mxgate program" >&2; exit 2; }
done
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
scraper_pid=
cleanup() {
    local p
    trap '' INT TERM
    for p in "${mxpid[@]}" "${extra_pids[@]}" $scraper_pid; do pf_kill_pid "$p" 5; done
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
for c in $configs; do
    mx_parse "$c" || continue
    [[ " $cfg_checks " == *" quota "* ]] && need_db=yes
    [[ " $cfg_checks " == *" ratelimit "* ]] && need_mc=yes
done
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
declare -A port=() checks=() engine=() sockspec=() mport=()
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
        *)
            mx_parse "$c" || { bench_log "unknown configuration $c"; exit 2; }
            checks[$c]=$cfg_checks engine[$c]=$cfg_engine
            port[$c]=$(pf_free_port)
            [[ $cfg_metrics == yes ]] && mport[$c]=$(pf_free_port)
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
    esac
done
export PF_MASTER_EXTRA
PF_SASL=no

pfdir=$work/pf/postfix
for c in $configs; do
    [[ -n ${engine[$c]:-} ]] || continue
    bench_mxgate_conf "$work/$c.conf" "${sockspec[$c]}" "${checks[$c]}" "$pfdir/queue" \
        "$mcport" "$work/db" "$vmail" "${engine[$c]}"
    [[ -n ${mport[$c]:-} ]] && echo "metrics = \"inet:${mport[$c]}@127.0.0.1\";" >>"$work/$c.conf"
    prog=$MXGATE
    [[ $c == base-* ]] && prog=$MXGATE_BASE
    "$prog" -f -c "$work/$c.conf" 2>"$work/$c.log" &
    mxpid[$c]=$!
done
for c in "${!mxpid[@]}"; do
    spec=${sockspec[$c]}
    if [[ $spec == unix:* ]]; then
        bench_wait_file "${spec#unix:}" 10 && chmod 0777 "${spec#unix:}"
    else
        spec=${spec#inet:}
        pf_wait_listen "${spec%@*}" 10
    fi && { [[ -z ${mport[$c]:-} ]] || pf_wait_listen "${mport[$c]}" 10; } ||
        { bench_log "mxgate $c did not start:"; cat "$work/$c.log" >&2; exit 99; }
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

# ticks_of PID: utime+stime of PID (all its threads), "-" when no PID.
ticks_of() {
    [[ -n $1 ]] || { echo -; return; }
    bench_proc_ticks "$1"
}

mcpid='' dbpid='' sinkpid=$(cat "$pfdir/sink.pid")
[[ $need_mc == yes ]] && mcpid=$(cat "$work/mc/memcached.pid")
[[ $need_db == yes ]] && dbpid=$(cat "$work/db/mariadb.pid")
# The Postfix daemons by name in runs.tsv (pf_NAME); the rest is pf_other.
pf_names="master smtpd cleanup qmgr smtp trivial-rewrite postlogd anvil"

# scraper PORT SECONDS COUNTFILE: GET /metrics on 127.0.0.1:PORT once a
# second (each request at most 2 s) for at most SECONDS seconds, writing
# the number of 200 answers so far to COUNTFILE.  One python3 process, so
# the scraping itself costs the machine little.
scraper() {
    exec /usr/bin/python3 -c 'import sys, time, urllib.request
port, limit, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
end, n = time.monotonic() + limit, 0
while time.monotonic() < end:
    t = time.monotonic()
    try:
        with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=2) as r:
            r.read()
            n += r.status == 200
    except OSError:
        pass
    with open(out, "w") as f:
        f.write("%d\n" % n)
    time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))' "$@"
}

# run_one ROUND CONFIG S: one smtp-source run; appends a line to runs.tsv.
run_one() {
    local round=$1 c=$2 s=$3 m=${msgs[$3]} t0 t1 st src sink0 status=ok sampler i scr=
    local mx0 mx1 mc0 mc1 db0 db1 sk0 sk1 sys0 sys1 load1 n v pfcols other=0 exited=0 total=0
    local limit=$((30 + m / 5))
    local -A pf=()
    sink0=$(sink_count)
    # The scraper starts (python3's start-up) and scrapes once before the
    # run is measured; then once a second until the queue is delivered.
    if [[ -n ${mport[$c]:-} ]]; then
        rm -f "$work/scrapes"
        scraper "${mport[$c]}" $((limit + 120)) "$work/scrapes" &
        scr=$!
        scraper_pid=$scr
        bench_wait_file "$work/scrapes" 10
    fi
    rm -f "$work/pf.stop" "$work/pf.ready" "$work/pf.cpu"
    bench_pf_sampler "$master" "$work/pf.cpu" "$work/pf.stop" "$work/pf.ready" &
    sampler=$!
    bench_wait_file "$work/pf.ready" 10
    read -r load1 _ </proc/loadavg
    mx0=$(ticks_of "${mxpid[$c]:-}") mc0=$(ticks_of "$mcpid") db0=$(ticks_of "$dbpid")
    sk0=$(ticks_of "$sinkpid") sys0=$(bench_sys_busy)
    t0=$(now)
    # The bash that runs it prints its status and then its cutime+cstime:
    # timeout's and smtp-source's CPU, both reaped by then.
    read -r st src < <(bash -c 'timeout "$1" "${@:3}" >"$2" 2>&1; st=$?
        IFS= read -r l <"/proc/$$/stat"; l=${l##*) }; read -r -a f <<<"$l"
        echo "$st $((f[13] + f[14]))"' _ "$limit" "$work/source.out" \
        smtp-source -s "$s" -m "$m" -l 5120 -M client.example.net \
        -f sender@example.net -t rcpt@example.org "127.0.0.1:${port[$c]}")
    t1=$(now)
    if [[ ${st:-x} != 0 ]] || grep -qiE 'error|fatal' "$work/source.out"; then
        status="smtp-source-status-${st:-unknown}"
        sed 's/^/    /' "$work/source.out" | head -5 >&2
    fi
    drain $((sink0 + m)) || status="undelivered:$(($(sink_count) - sink0))/$m"
    mx1=$(ticks_of "${mxpid[$c]:-}") mc1=$(ticks_of "$mcpid") db1=$(ticks_of "$dbpid")
    sk1=$(ticks_of "$sinkpid") sys1=$(bench_sys_busy)
    if [[ -n $scr ]]; then
        pf_kill_pid "$scr" 2
        scraper_pid=
        bench_log "$c: $(cat "$work/scrapes" 2>/dev/null || echo 0) scrapes of /metrics answered 200 (one just before the run)"
    fi
    : >"$work/pf.stop"
    for ((i = 0; i < 50; i++)); do
        kill -0 "$sampler" 2>/dev/null || break
        sleep 0.1
    done
    pf_kill_pid "$sampler" 1
    [[ -s $work/pf.cpu ]] || status="no-postfix-sample"
    while read -r n v; do
        case " $pf_names exited total " in
            *" $n "*) pf[$n]=$v ;;
            *) other=$((other + v)) ;;
        esac
    done <"$work/pf.cpu"
    pfcols=
    for n in $pf_names; do pfcols+="${pf[$n]:-0} "; done
    pfcols+="$other ${pf[exited]:-0}"
    awk -v r="$round" -v c="$c" -v s="$s" -v m="$m" -v t0="$t0" -v t1="$t1" \
        -v hz="$BENCH_HZ" -v st="$status" -v pf="${pf[total]:-0}" -v load1="$load1" \
        -v mx="$mx0 $mx1" -v mc="$mc0 $mc1" -v db="$db0 $db1" -v src="${src:--}" \
        -v sk="$sk0 $sk1" -v sys="$sys0 $sys1" -v pfcols="$pfcols" 'function ms(t) {
            return sprintf("%.3f", t * 1000 / hz / m) }
        function delta(pair, p) {
            split(pair, p, " ")
            return p[1] == "-" ? "-" : ms(p[2] - p[1]) }
        BEGIN {
            d = t1 - t0
            printf "%d\t%s\t%d\t%d\t%.3f\t%.1f\t%s\t%s\t%s", r, c, s, m, d, m / d,
                ms(pf), delta(mx), st
            printf "\t%s\t%s\t%s\t%s\t%s\t%s", delta(mc), delta(db),
                src == "-" ? "-" : ms(src), delta(sk), delta(sys), load1
            n = split(pfcols, f, " ")
            for (i = 1; i <= n; i++) printf "\t%s", ms(f[i])
            printf "\n"
        }' >>"$outdir/runs.tsv"
    tail -1 "$outdir/runs.tsv" | awk -F'\t' '{ printf "[bench] round %s  %-21s -s %-2s %4s msgs %7.1f msg/s  postfix %s ms/msg  mxgate %s ms/msg  %s\n", $1, $2, $3, $4, $6, $7, $8, $9 }' >&2
}

{
    printf 'round\tconfig\tconcurrency\tmessages\tseconds\tmsg_per_s\tpostfix_cpu_ms_per_msg\tmxgate_cpu_ms_per_msg\tstatus'
    printf '\tmemcached_cpu_ms_per_msg\tmariadb_cpu_ms_per_msg\tsmtp_source_cpu_ms_per_msg\tsmtp_sink_cpu_ms_per_msg\tmachine_busy_cpu_ms_per_msg\tload1'
    for n in $pf_names other exited; do printf '\tpf_%s' "$n"; done
    echo
} >"$outdir/runs.tsv"
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
for c in $configs; do
    driver "$c" "8 threads, 1 msg x 1 rcpt per session" -c 8 -m 1 -r 1 -k 1000 -u 1000
    driver "$c" "8 threads, 1 msg x 10 rcpts per session" -c 8 -m 1 -r 10 -k 1000 -u 1000
    # Without SIZE=: the size-counting configurations take the header and
    # body; the ones they are measured against show -Z costs them nothing.
    case $c in
        *-bytes* | *-realsize* | *-ratelimit* | *-quota*)
            driver "$c" "8 threads, 1 msg x 1 rcpt, no SIZE= (-Z)" -c 8 -m 1 -r 1 -k 1000 -u 1000 -Z ;;
    esac
done

# ---- summary ---------------------------------------------------------------------
tsv=$outdir/runs.tsv
# med CONFIG S COLUMN: the median of COLUMN over the ok runs ("nan" if none).
med() { bench_tsv_median "$tsv" "$@"; }
# fmt DIGITS V: V with DIGITS decimals, "-" when it is no number.
fmt() { awk -v d="$1" -v a="$2" 'BEGIN { if (a == a + 0 && a != "nan") printf("%." d "f", a); else print "-" }'; }
# ratio A B: A / B with two decimals, "-" when either is no number.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == a + 0 && b == b + 0 && b > 0) printf "%.3f", a / b; else print "-" }'; }
has() { [[ " $configs " == *" $1 "* && " $concs " == *" $2 "* ]]; }

# target KIND WHAT S A B MIN: a row of the targets table: msg/s of A over
# msg/s of B at -s S, PASS when at least MIN.
target() {
    local kind=$1 what=$2 s=$3 a=$4 b=$5 min=$6 r
    if ! has "$a" "$s" || ! has "$b" "$s"; then
        printf '| %s | %s | -s %s | not measured | ≥ %s | n/a |\n' "$kind" "$what" "$s" "$min"
        return
    fi
    r=$(ratio "$(med "$a" "$s" msg_per_s)" "$(med "$b" "$s" msg_per_s)")
    printf '| %s | %s | -s %s | %s | ≥ %s | %s |\n' "$kind" "$what" "$s" "$(fmt 3 "$r")" "$min" \
        "$(awk -v r="$r" -v m="$min" 'BEGIN { if (r != r + 0) print "n/a"; else print (r >= m ? "PASS" : "MISS") }')"
}

# cpu_target KIND C S MAX: mxgate CPU ms/msg of C at -s S at most MAX.
cpu_target() {
    local kind=$1 c=$2 s=$3 max=$4 v
    if ! has "$c" "$s"; then
        printf '| %s | %s mxgate CPU ms/msg | -s %s | not measured | ≤ %s | n/a |\n' "$kind" "$c" "$s" "$max"
        return
    fi
    v=$(med "$c" "$s" mxgate_cpu_ms_per_msg)
    printf '| %s | %s mxgate CPU ms/msg | -s %s | %s | ≤ %s | %s |\n' "$kind" "$c" "$s" "$(fmt 3 "$v")" "$max" \
        "$(awk -v v="$v" -v m="$max" 'BEGIN { if (v != v + 0) print "n/a"; else print (v <= m ? "PASS" : "MISS") }')"
}

summarize() {
    local c s ok total n
    echo "# mxgate benchmark"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(postconf -d mail_version 2>/dev/null | sed 's/.*= /Postfix /'),"
    echo "queue on $queue_fs; smtp-source -l 5120, one message per session;"
    printf 'messages per run:'
    for s in $concs; do printf ' -s %s: %s;' "$s" "${msgs[$s]}"; done
    echo " $rounds round(s), configurations interleaved; medians of the ok runs."
    echo "Load average before the runs: $load_before; after: $load_after (anything above ~1 means other work shared the cores; per-run 1-minute load in runs.tsv)."
    echo "mx-* run mxgate under libmilter (engine = \"libmilter\"), builtin-* under engine = \"builtin\"; *-unix over a unix socket, the others over TCP on 127.0.0.1; base-* the same configuration with the earlier mxgate \$MXGATE_BASE${MXGATE_BASE:+ ($MXGATE_BASE)}."
    echo "CPU in ms per message (utime+stime from /proc over the run, until the queue was delivered): mxgate (the configuration's own), all Postfix processes (the master's tree, per daemon below), memcached and MariaDB (present and idle in every configuration; their cost is the difference to none)."
    echo
    echo "| configuration | -s | msg/s | × none | mxgate CPU ms/msg | Postfix CPU ms/msg | memcached CPU ms/msg | MariaDB CPU ms/msg | runs ok |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for c in $configs; do
        for s in $concs; do
            ok=$(bench_tsv_values "$tsv" "$c" "$s" msg_per_s | wc -l)
            total=$(awk -F'\t' -v c="$c" -v s="$s" '$2 == c && $3 == s' "$tsv" | wc -l)
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s/%s |\n' "$c" "$s" \
                "$(fmt 0 "$(med "$c" "$s" msg_per_s)")" \
                "$(fmt 2 "$(ratio "$(med "$c" "$s" msg_per_s)" "$(med none "$s" msg_per_s)")")" \
                "$(fmt 3 "$(med "$c" "$s" mxgate_cpu_ms_per_msg)")" \
                "$(fmt 3 "$(med "$c" "$s" postfix_cpu_ms_per_msg)")" \
                "$(fmt 3 "$(med "$c" "$s" memcached_cpu_ms_per_msg)")" \
                "$(fmt 3 "$(med "$c" "$s" mariadb_cpu_ms_per_msg)")" "$ok" "$total"
        done
    done
    echo
    echo "Postfix CPU ms/msg per daemon (medians per column, so they need not add up to the total exactly; \"exited\" is what daemons used after the sampler's last look at them before they exited, known only from the master's cutime+cstime; \"other\" is every other daemon: pickup, proxymap, scache, ...):"
    echo
    printf '| configuration | -s |'
    for n in $pf_names other exited; do printf ' %s |' "$n"; done
    echo ' total |'
    printf '|---|---|'
    for n in $pf_names other exited total; do printf -- '---|'; done
    echo
    for c in $configs; do
        for s in $concs; do
            printf '| %s | %s |' "$c" "$s"
            for n in $pf_names other exited; do printf ' %s |' "$(fmt 3 "$(med "$c" "$s" "pf_$n")")"; done
            printf ' %s |\n' "$(fmt 3 "$(med "$c" "$s" postfix_cpu_ms_per_msg)")"
        done
    done
    echo
    echo "Load generator and sink (in no total above), and the whole machine's busy CPU over each run (all cores, all processes, ours or not):"
    echo
    echo "| configuration | -s | smtp-source CPU ms/msg | smtp-sink CPU ms/msg | machine busy CPU ms/msg | 1-min load at start |"
    echo "|---|---|---|---|---|---|"
    for c in $configs; do
        for s in $concs; do
            printf '| %s | %s | %s | %s | %s | %s |\n' "$c" "$s" \
                "$(fmt 3 "$(med "$c" "$s" smtp_source_cpu_ms_per_msg)")" \
                "$(fmt 3 "$(med "$c" "$s" smtp_sink_cpu_ms_per_msg)")" \
                "$(fmt 3 "$(med "$c" "$s" machine_busy_cpu_ms_per_msg)")" \
                "$(fmt 2 "$(med "$c" "$s" load1)")"
        done
    done
    echo
    echo "## Targets (ratios of this run's medians)"
    echo
    echo "\"target\" rows are the goals; \"shown\" rows are the same ratio elsewhere, for comparison."
    echo
    echo "| kind | what | at | value | goal | verdict |"
    echo "|---|---|---|---|---|---|"
    target "libmilter target" "mx-all / mx-nochecks msg/s" 20 mx-all mx-nochecks 0.97
    target "libmilter shown" "mx-all / mx-nochecks msg/s" 1 mx-all mx-nochecks 0.97
    target "libmilter shown" "mx-all-unix / mx-nochecks-unix msg/s" 20 mx-all-unix mx-nochecks-unix 0.97
    target "libmilter shown" "mx-all-unix / mx-nochecks-unix msg/s" 1 mx-all-unix mx-nochecks-unix 0.97
    target "builtin target" "builtin-all / none msg/s" 20 builtin-all none 0.90
    target "builtin target" "builtin-all-unix / none msg/s" 20 builtin-all-unix none 0.90
    for s in $concs; do
        cpu_target "builtin target" builtin-all "$s" 0.3
        cpu_target "builtin target" builtin-all-unix "$s" 0.3
    done
    target "builtin shown" "builtin-all / builtin-nochecks msg/s" 20 builtin-all builtin-nochecks 0.97
    target "both target" "mx-all / none msg/s" 1 mx-all none 0.90
    target "both target" "mx-all-unix / none msg/s" 1 mx-all-unix none 0.90
    target "both target" "builtin-all / none msg/s" 1 builtin-all none 0.90
    target "both target" "builtin-all-unix / none msg/s" 1 builtin-all-unix none 0.90
    target "both shown" "mx-all / none msg/s" 20 mx-all none 0.90
    target "both shown" "mx-all-unix / none msg/s" 20 mx-all-unix none 0.90
    for s in $concs; do
        target "metrics shown" "mx-all-metrics / mx-all msg/s" "$s" mx-all-metrics mx-all 0.97
    done
    for s in $concs; do
        target "size shown" "mx-bytes / mx-ratelimit msg/s" "$s" mx-bytes mx-ratelimit 0.90
        target "size shown" "builtin-bytes / builtin-ratelimit msg/s" "$s" builtin-bytes builtin-ratelimit 0.90
        target "size shown" "mx-realsize / mx-quota msg/s" "$s" mx-realsize mx-quota 0.90
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
            printf '\t%s' "$(med "$c" "$s" msg_per_s | sed 's/^nan$/0/')"
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
