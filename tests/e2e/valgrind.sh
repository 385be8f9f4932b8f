#!/bin/bash
# tests/e2e/valgrind.sh -- mxgate under valgrind's memcheck through a mixed
# load: tests/bench/milter_load -M runs $VG_SESSIONS (2,000) sessions, 4 at
# a time, 3 recipients each: refusals at RCPT for a bad HELO, 900-byte
# HELOs, 4000-byte senders, and sessions that hang up mid-transaction,
# against every check that needs no server (HELO, quotas from maildirsize,
# an in-process rate limit).  Then SIGTERM.  Checks: every session
# completed, mxgate exited 0, and valgrind reports no error and no
# definitely or indirectly lost block.  The engine is $MXGATE_ENGINE
# (default libmilter), put in the configuration: valgrind runs the real
# binary, not a wrapper.  The default build only: valgrind cannot run a
# sanitizer build.
#
# TAP on stdout; exit 0 after the results, 99 when the harness cannot run.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

: "${VG_SESSIONS:=2000}"
real=${MXGATE_REAL:-$MXGATE}
LOAD=$abs_top_builddir/tests/bench/milter_load
[[ -x $real ]] || bail "no daemon at $real (set MXGATE_REAL or MXGATE)"
[[ -x $LOAD ]] || bail "no load driver at $LOAD (make check builds it)"
command -v valgrind >/dev/null || pf_need_packages valgrind >&2 || bail "valgrind missing"
engine=${MXGATE_ENGINE:-libmilter}

vgpid=
e2e_work valgrind vgpid

for u in 0 1 2; do
    mkdir -p "$work/vmail/example.org/user$u"/{cur,new,tmp}
    printf '1000000S\n10 1\n' >"$work/vmail/example.org/user$u/maildirsize"
done
printf '1000S\n5000 5\n' >"$work/vmail/example.org/user2/maildirsize"   # full
port=$(pf_free_port) || bail "no free port"
cat >"$work/mxgate.conf" <<EOF
engine = "$engine";
socket = "inet:$port@127.0.0.1";
trusted_networks = [ ];
quota: { maildir_root = "$work/vmail"; maildir_template = "%d/%l/"; cache_ttl = 5; };
ratelimit: { rules = (
  { name = "client"; key = [ "client_ip" ]; count = "recipients"; limits = [ "20/1h" ]; }
); };
EOF
valgrind --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
    --error-exitcode=99 --num-callers=30 --log-file="$work/valgrind.log" \
    "$real" -f -c "$work/mxgate.conf" 2>"$work/mxgate.log" &
vgpid=$!
wait_for "pf_port_listening $port" 60
tap_result $? "engine $engine: mxgate listens under valgrind" || {
    tap_diag "$(tail -20 "$work/mxgate.log")" "$(tail -20 "$work/valgrind.log")"
    tap_done
    exit 0
}

timeout 300 "$LOAD" -p "inet:$port@127.0.0.1" -c 4 -n "$VG_SESSIONS" -d 240 -r 3 -u 3 -k 64 -M -t 60 -q \
    >"$work/load.out" 2>&1
st=$?
result=$(grep '^RESULT' "$work/load.out")
tap_result "$([[ $st == 0 && $result == *" sessions=$VG_SESSIONS failed=0 "* ]]; echo $?)" \
    "engine $engine: $VG_SESSIONS mixed sessions completed (${result#RESULT })" || tap_diag "$(cat "$work/load.out")"

kill -TERM "$vgpid"
wait_for "! mxgate_alive $vgpid" 60
stopped=$?
wait "$vgpid"
st=$?
((stopped == 0)) || st=killed
vgpid=
tap_result "$([[ $st == 0 ]]; echo $?)" \
    "engine $engine: exits 0 on SIGTERM under valgrind (status $st; 99 is valgrind's: errors or leaks)"
summary=$(grep -E 'ERROR SUMMARY:' "$work/valgrind.log" | tail -n 1)
tap_result "$([[ $summary == *"ERROR SUMMARY: 0 errors"* ]]; echo $?)" \
    "engine $engine: valgrind reports no error (${summary#*== })" ||
    tap_diag "$(grep -E -A25 '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|Source and)' \
        "$work/valgrind.log" | head -60)"
lost=$(grep -E '(definitely|indirectly) lost:' "$work/valgrind.log" | sed 's/^==[0-9]*== *//' | tr '\n' ' ')
bad=$(grep -E '(definitely|indirectly) lost: [1-9]' "$work/valgrind.log")
tap_result "$([[ -z $bad ]] && grep -qE 'All heap blocks were freed|definitely lost: 0 bytes' "$work/valgrind.log"; echo $?)" \
    "engine $engine: no definitely or indirectly lost block (${lost:-all heap blocks were freed})" ||
    tap_diag "$(grep -E -B2 -A25 'are definitely lost|are indirectly lost' "$work/valgrind.log" | head -80)"
tap_done
exit 0
