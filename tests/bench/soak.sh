#!/bin/bash
# soak.sh - mxgate's memory over a long run: SESSIONS (default 1,000,000)
# milter sessions from tests/bench/milter_load -M (one in five refused at
# RCPT for its HELO, one in seven with a 900-byte HELO, one in eleven with
# a 4000-byte sender, one in nine hung up after its first RCPT reply), 3
# recipients each, from 131,072 client addresses, so the rate-limit
# counters and the quota cache see many keys.  The load runs in steps of
# STEP sessions (100,000); after each, mxgate's resident size (VmRSS), peak
# (VmHWM), threads and open descriptors are read from /proc.
#
#   tests/bench/soak.sh [-n SESSIONS] [-s STEP] [-c THREADS] [-e ENGINE] [-o OUTDIR]
#
# Prints (and writes to OUTDIR/soak-ENGINE.tsv, default build/bench-results)
# one line per step, then a verdict: "bounded" when the RSS after the last
# step is within 10 % (or 8 MiB) of the largest RSS of the first half of
# the steps (by then the fixed-size tables, counters and quota cache, have
# filled and every thread has allocated); "GROWING" otherwise.  The configuration is the embedded default (in-process
# counters, quotas from maildirsize under a small tree) plus a rate limit
# per client address.  Environment: MXGATE and MILTER_LOAD, the built
# programs (default build/default/mxgate and its tests/bench/milter_load).
# Every run is bounded (milter_load -d 600 per step); mxgate is stopped by
# pid at the end, and its exit status is part of the verdict.  Exit 0 when
# bounded and every session completed, 1 otherwise, 2 on usage errors.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
: "${MXGATE:=$top/build/default/mxgate}"
: "${MILTER_LOAD:=$top/build/default/tests/bench/milter_load}"
sessions=1000000 step=100000 threads=8 engine=libmilter out=$top/build/bench-results
while getopts "n:s:c:e:o:" o; do
    case $o in
    n) sessions=$OPTARG ;;
    s) step=$OPTARG ;;
    c) threads=$OPTARG ;;
    e) engine=$OPTARG ;;
    o) out=$OPTARG ;;
    *) echo "usage: $0 [-n SESSIONS] [-s STEP] [-c THREADS] [-e libmilter|builtin] [-o OUTDIR]" >&2; exit 2 ;;
    esac
done
[[ -x $MXGATE && -x $MILTER_LOAD ]] || { echo "soak.sh: set MXGATE and MILTER_LOAD (built programs)" >&2; exit 2; }
. "$top/tests/e2e/lib/postfix.sh"   # pf_free_port, pf_wait_listen, pf_kill_pid
mkdir -p "$out" || exit 2
work=$(mktemp -d "${TMPDIR:-/tmp}/mxgate-soak.XXXXXX") || exit 2
mxpid=
trap '[[ -n $mxpid ]] && pf_kill_pid "$mxpid" 15; rm -rf "$work"' EXIT

for u in 0 1 2; do
    mkdir -p "$work/vmail/example.org/user$u"/{cur,new,tmp}
    printf '1000000S\n10 1\n' >"$work/vmail/example.org/user$u/maildirsize"
done
port=$(pf_free_port) || exit 2
cat >"$work/mxgate.conf" <<EOF
engine = "$engine";
socket = "inet:$port@127.0.0.1";
trusted_networks = [ ];
quota: { maildir_root = "$work/vmail"; maildir_template = "%d/%l/"; };
ratelimit: { rules = (
  { name = "client"; key = [ "client_ip" ]; count = "messages"; limits = [ "1000/1h" ]; }
); };
EOF
"$MXGATE" -f -c "$work/mxgate.conf" 2>"$work/mxgate.log" &
mxpid=$!
pf_wait_listen "$port" 20 || { cat "$work/mxgate.log" >&2; exit 1; }

# status_of FIELD: a field of /proc/PID/status, in kB or a count.
status_of() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$mxpid/status"; }
tsv=$out/soak-$engine.tsv
printf 'sessions\trss_kb\thwm_kb\tthreads\tfds\tfailed\tsessions_per_s\n' >"$tsv"
echo "soak: $engine, $sessions sessions in steps of $step, $threads threads"
printf '%10s %10s %10s %8s %5s %7s %8s\n' sessions rss_kb hwm_kb threads fds failed per_s
done_n=0 failed=0 rss=() ok=1
while ((done_n < sessions)); do
    n=$((sessions - done_n < step ? sessions - done_n : step))
    res=$("$MILTER_LOAD" -p "inet:$port@127.0.0.1" -c "$threads" -n "$n" -d 600 -r 3 -u 3 \
        -k 131072 -M -q 2>&1 | grep '^RESULT')
    f=$(sed -n 's/.* failed=\([0-9]*\).*/\1/p' <<<"$res")
    secs=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$res")
    failed=$((failed + ${f:-$n}))
    done_n=$((done_n + n))
    mxgate_alive=$(kill -0 "$mxpid" 2>/dev/null && echo yes)
    [[ -n $mxgate_alive ]] || { echo "soak: mxgate died after $done_n sessions" >&2; ok=0; break; }
    r=$(status_of VmRSS) h=$(status_of VmHWM) t=$(status_of Threads)
    fds=$(find "/proc/$mxpid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    rss+=("$r")
    per_s=$(awk -v n="$n" -v s="${secs:-0}" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$done_n" "$r" "$h" "$t" "$fds" "${f:-?}" "$per_s" >>"$tsv"
    printf '%10s %10s %10s %8s %5s %7s %8s\n' "$done_n" "$r" "$h" "$t" "$fds" "${f:-?}" "$per_s"
done
kill -TERM "$mxpid"
for ((i = 0; i < 300; i++)); do kill -0 "$mxpid" 2>/dev/null || break; sleep 0.05; done
wait "$mxpid"
st=$?
mxpid=
# The reference: the largest RSS of the first half of the steps.
ref=0
for ((i = 0; i < (${#rss[@]} + 1) / 2; i++)); do ((rss[i] > ref)) && ref=${rss[i]}; done
last=${rss[${#rss[@]} - 1]:-0}
if awk -v a="$ref" -v b="$last" 'BEGIN { exit !(b <= a * 1.10 || b - a <= 8192) }'; then
    verdict=bounded
else
    verdict=GROWING ok=0
fi
((failed == 0 && st == 0)) || ok=0
echo "soak: largest RSS of the first half ${ref} kB, after the last step ${last} kB: $verdict; failed sessions $failed; mxgate exit status $st"
echo "soak: curve in $tsv"
((ok)) && exit 0 || exit 1
