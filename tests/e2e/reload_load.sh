#!/bin/bash
# tests/e2e/reload_load.sh -- SIGUSR1 under load (mxgate(8), "SIGNALS":
# sessions in flight finish on the configuration they started with, new
# sessions get the new one).  tests/bench/milter_load runs $RELOAD_THREADS
# (16) threads of sessions for $RELOAD_SECONDS (20) while the configuration
# file is replaced by one of three snapshots and SIGUSR1 sent every 100 ms.
# The snapshots differ in the HELO settings, in a rate limit and in where
# quotas come from, so that each gives its own verdicts to the four
# recipients of a session (user0..user3@example.org, HELO "localhost",
# every session from its own client address):
#
#   A  HELO enforced                         R:504 R:504 R:504 R:504
#   B  HELO off, quotas from tree B (user1   R:c   R:552 R:c   R:450
#      full), user3 limited to 1/1h
#   C  HELO off, quotas from tree C (user2   R:c   R:c   R:552 R:c
#      full), user3's limit 100000000/1h
#
# Checks: the load completes with no failed session (no protocol error, no
# timeout); every session's verdicts are exactly one snapshot's (a session
# that mixed two, or got any other reply, fails); each snapshot was seen;
# every reload took (no error logged, "configuration reloaded" for at
# least one in four signals: signals sent while a reload runs coalesce);
# mxgate stops with status 0 and no sanitizer report.  The numbers
# (reloads, sessions per snapshot) are printed as TAP diagnostics.
#
# TAP on stdout; exit 0 after the results, 99 when the harness cannot run.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

: "${RELOAD_THREADS:=16}"
: "${RELOAD_SECONDS:=20}"
LOAD=$abs_top_builddir/tests/bench/milter_load
[[ -x $MXGATE ]] || bail "no daemon at $MXGATE (set MXGATE)"
[[ -x $LOAD ]] || bail "no load driver at $LOAD (make check builds it)"

mxpid= load_pid=
e2e_work reload mxpid load_pid

# Two quota trees: user1 full in B, user2 full in C; the others have room.
for tree in B C; do
    for u in 0 1 2 3; do
        d=$work/vmail-$tree/example.org/user$u
        mkdir -p "$d"/{cur,new,tmp}
        printf '1000000S\n10 1\n' >"$d/maildirsize"
    done
done
printf '1000S\n5000 5\n' >"$work/vmail-B/example.org/user1/maildirsize"
printf '1000S\n5000 5\n' >"$work/vmail-C/example.org/user2/maildirsize"

# snapshot NAME HELO-ENABLED TREE USER3-LIMIT: $work/NAME.conf.
snapshot() {
    cat >"$work/$1.conf" <<EOF
trusted_networks = [ ];
helo: { enabled = $2; };
quota: { maildir_root = "$work/vmail-$3"; maildir_template = "%d/%l/"; cache_ttl = 0; };
ratelimit: { rules = (
  { name = "user3"; key = [ "recipient" ]; count = "recipients";
    classes = ( { match = "user3@example.org"; limits = [ "$4/1h" ]; },
                { match = "*"; limits = [ ]; } ); }
); };
overload: { enabled = false; };
EOF
}
snapshot A true B 100000000
snapshot B false B 1
snapshot C false C 100000000
declare -A expect=([A]=" M:c R:504 R:504 R:504 R:504" [B]=" M:c R:c R:552 R:c R:450"
    [C]=" M:c R:c R:c R:552 R:c")
conf=$work/mxgate.conf
log=$work/mxgate.log
# use NAME: make snapshot NAME the configuration file (by rename).
use() {
    cp "$work/$1.conf" "$conf.new" && mv -f "$conf.new" "$conf"
}

use B
mxgate_start "$conf" "$log" 20 || { sed 's/^/# /' "$log"; bail "mxgate did not start"; }
mxpid=$MXGATE_PID
sock=inet:$MXGATE_PORT@127.0.0.1
# user3 charged once under B, so that B refuses it from the first loaded session on.
"$LOAD" -p "$sock" -c 1 -n 1 -r 4 -u 4 -H localhost -q >"$work/warm.out" 2>&1
tap_result $? "a first session under snapshot B runs" || tap_diag "$(cat "$work/warm.out")"

# ---- the load, and the reloads ------------------------------------------------
"$LOAD" -p "$sock" -c "$RELOAD_THREADS" -d "$RELOAD_SECONDS" -r 4 -u 4 -k 131072 -H localhost \
    -t 30 -L "$work/verdicts" -q >"$work/load.out" 2>&1 &
load_pid=$!
signals=0
names=(A B C)
end=$((SECONDS + RELOAD_SECONDS))
while ((SECONDS < end)) && mxgate_alive "$load_pid"; do
    use "${names[signals % 3]}"
    kill -USR1 "$mxpid" 2>/dev/null
    signals=$((signals + 1))
    sleep 0.1
done
# At most the run plus the driver's own bounds (30 s per socket operation).
wait_for "! mxgate_alive $load_pid" 60
wait "$load_pid"
st=$?
load_pid=
result=$(grep '^RESULT' "$work/load.out")
tap_result "$([[ $st == 0 && $result == *" failed=0 "* ]]; echo $?)" \
    "$RELOAD_THREADS threads for $RELOAD_SECONDS s while reloading: every session completed (${result#RESULT })" ||
    tap_diag "$(cat "$work/load.out")"

# Each session's verdicts are exactly one snapshot's.
declare -A seen=([A]=0 [B]=0 [C]=0)
bad=0 total=0 samples=()
while read -r _ verdicts; do
    total=$((total + 1))
    matched=
    for n in A B C; do
        [[ " $verdicts" == "${expect[$n]}" ]] && matched=$n
    done
    if [[ -n $matched ]]; then
        seen[$matched]=$((seen[$matched] + 1))
    else
        bad=$((bad + 1))
        ((${#samples[@]} < 5)) && samples+=("$verdicts")
    fi
done <"$work/verdicts"
tap_result "$([[ $bad == 0 && $total -gt 0 ]]; echo $?)" \
    "every session's verdicts are one snapshot's ($total sessions, $bad not)" ||
    for v in "${samples[@]}"; do tap_diag "not one snapshot's: $v"; done
tap_result "$([[ ${seen[A]} -gt 0 && ${seen[B]} -gt 0 && ${seen[C]} -gt 0 ]]; echo $?)" \
    "each snapshot answered sessions (A ${seen[A]}, B ${seen[B]}, C ${seen[C]})"

reloads=$(grep -c 'configuration reloaded' "$log")
errors=$(grep -ciE 'reload.*(fail|error|invalid)|not reloaded|keeping the running' "$log")
tap_result "$([[ $errors == 0 && $((reloads * 4)) -ge $signals ]]; echo $?)" \
    "every reload took: $reloads reloads for $signals signals, $errors errors" ||
    tap_diag "$(grep -iE 'reload|error' "$log" | head -10)"

mxgate_stop_check "$mxpid" "$log" "mxgate"
mxpid=
tap_diag "reload under load: $signals SIGUSR1, $reloads reloads, $total sessions (A ${seen[A]}, B ${seen[B]}, C ${seen[C]})"
tap_done
exit 0
