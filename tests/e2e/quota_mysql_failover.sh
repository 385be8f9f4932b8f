#!/bin/bash
# quota_mysql_failover.sh - mysql.servers: two real MariaDB servers (a
# "primary" and a "replica", each loaded with sql/schema.sql and
# sample-data.sql by tests/e2e/lib/mariadb.sh), listed in that order, and
# the daemon under a bounded, paced load of RCPT lookups from two raw
# milter clients (tests/e2e/lib/rl_milter.py; the quota cache off, so
# every RCPT asks SQL; on_error = "tempfail", so a failed lookup would
# show as a 451):
#   1. both up: the first server answers everything (its Com_stmt_execute
#      counts, the second's does not move); mxgatectl status lists both,
#      in order, breakers closed.
#   2. the first server killed (SIGKILL) mid-load: every RCPT still gets
#      its right answer (552 for the full mailbox, no opinion for the
#      other), none a 451; the second server answered; status shows the
#      first one's breaker open.  Restarted, the lookups go back to it
#      (its own query counter moves, the second's stops) after its
#      breaker's probe.
#   3. the first server frozen (SIGSTOP) mid-load: the same, and the
#      RCPT latency (max and mean) after the freeze is measured and
#      reported; no RCPT waits the whole mysql.timeout_ms (the first
#      server's share is half of it).  Thawed, the lookups go back to it.
#   4. a reload (SIGUSR1) with the list reversed: the source is opened
#      again and the new first server answers alone.
#   5. the source alone (tests/e2e/quota_mysql_probe): an "[IPv6]:port"
#      entry where no server listens is passed over for the next one.
# TAP on stdout; exit 0 after the results, 99 when the harness cannot run.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"
. "$here/lib/mariadb.sh"
MXGATECTL=${MXGATECTL:-$abs_top_builddir/mxgatectl}
PROBE=${PROBE:-$abs_top_builddir/tests/e2e/quota_mysql_probe}

[ -x "$MXGATECTL" ] || bail "no mxgatectl at $MXGATECTL"
[ -x "$PROBE" ] || bail "no probe at $PROBE (make check builds it)"
mdb_preflight "MariaDB"

TIMEOUT_MS=1000
work=$(mktemp -d "${TMPDIR:-/tmp}/mxgate-qfail.XXXXXX")
chmod 0755 "$work"
daemon=
loaders=()
cleanup() {
    local p
    for p in "${loaders[@]}"; do pf_kill_pid "$p" 3; done
    [ -n "$daemon" ] && pf_kill_pid "$daemon" 5
    mdb_stop_all
    rm -rf "$work"
}
trap cleanup EXIT

# ---- two servers with the same data ------------------------------------------------
db1=$work/db1 db2=$work/db2
p1=$(mdb_free_port) && p2=$(mdb_free_port) || bail "no free port"
mdb_init "$db1" & i1=$!
mdb_init "$db2" & i2=$!
wait $i1 && wait $i2 || bail "mariadb-install-db failed"
mdb_start "$db1" "$p1" && mdb_start "$db2" "$p2" || bail "MariaDB did not start"
password=pw$RANDOM$RANDOM
mdb_postfix "$db1" "$password" "$work/load1.log" && mdb_postfix "$db2" "$password" "$work/load2.log"
tap_result $? "two MariaDB servers on ports $p1 and $p2, both loaded with the sample data" ||
    sed 's/^/# /' "$work/load1.log" "$work/load2.log"

vmail=$work/vmail
for m in "bob 10485760S 11000000" "erin 102400S 50000"; do
    set -- $m
    mkdir -p "$vmail/example.org/$1/cur" "$vmail/example.org/$1/new" "$vmail/example.org/$1/tmp"
    printf '%s\n%s 1\n' "$2" "$3" >"$vmail/example.org/$1/maildirsize"
done

mport=$(pf_free_port) || bail "no free port"
sock=$work/ctl.sock
s1=127.0.0.1:$p1 s2=127.0.0.1:$p2
cat >"$work/mxgate.conf" <<EOF
socket = "inet:$mport@127.0.0.1";
control_socket = "unix:$sock";
log_level = "debug";
trusted_networks = [ ];
helo: { enabled = false; };
ratelimit: { enabled = false; };
overload: { enabled = false; };
quota: { maildir_root = "$vmail"; cache_ttl = 0; on_error = "tempfail"; };
$(mdb_mysql_group "\"$s1\", \"$s2\"" "$password" "$TIMEOUT_MS")
EOF
log=$work/mxgate.log
mxgate_run "$work/mxgate.conf" "$log" "$mport" || bail "mxgate did not listen"
daemon=$MXGATE_PID

full="y 552 5.2.2 <bob@example.org>: Recipient address rejected: Mailbox full"

# load NAME TRANSACTIONS: start a paced load (one session; per transaction
# RCPT bob, then erin; 20 ms between transactions) in the background, its
# output in $work/NAME.out.
load() {
    timeout 60 python3 "$here/lib/rl_milter.py" session --port "$mport" --clock \
        --sender "<sender@example.net>" --end abort --transactions "$2" --pause 20 \
        --rcpt "<bob@example.org>" --rcpt "<erin@example.org>" >"$work/$1.out" 2>&1 &
    loaders+=($!)
}
# load_wait: wait for every load started (each bounded by its timeout 60).
load_wait() {
    local p
    for p in "${loaders[@]}"; do wait "$p"; done
    loaders=()
}
# judge FILE TRANSACTIONS [SINCE]: check every RCPT of a load's output;
# prints "rcpts=N bad=B after=K max=MS mean=MS" where K, max and mean are
# of the RCPTs that ended after the wall clock SINCE (all when empty), and
# the first wrong answers as "wrong: ..." lines.  A load that had ended by
# SINCE (K = 0) is bad: the server was not failed mid-load.
judge() {
    awk -v n="$2" -v since="${3:-0}" -v full="$full" '
        /^RCPT / { r = substr($0, 6); rcpt++; want = (rcpt % 2 == 1) ? full : "c"
                   if (r != want) { bad++; if (bad <= 3) wrong = wrong "wrong: " r " (want " want ")\n" }
                   getline; split($0, f, /[= ]/); ms = f[2]; t = f[4]
                   if (t >= since) { k++; sum += ms; if (ms > max) max = ms } }
        END { if (rcpt != 2 * n) { bad++; wrong = wrong "wrong: " rcpt " RCPT answers for " 2 * n "\n" }
              if (k == 0) { bad++; wrong = wrong "wrong: no RCPT after the failure\n" }
              printf "rcpts=%d bad=%d after=%d max=%d mean=%d\n%s", rcpt, bad, k, max, k ? sum / k : 0, wrong }
    ' "$1"
}
# field LINE NAME: the number after NAME= in a judge line.
field() {
    sed -n "s/.*$2=\([0-9]*\).*/\1/p" <<<"$1" | head -1
}
# rcpts N: one session of N RCPTs for erin; prints how many were "c".
rcpts() {
    local args=() i
    for ((i = 0; i < $1; i++)); do args+=(--rcpt "<erin@example.org>"); done
    timeout 30 python3 "$here/lib/rl_milter.py" session --port "$mport" \
        --sender "<sender@example.net>" --end abort "${args[@]}" 2>&1 | grep -c '^RCPT c$'
}
# counts: "C1 C2", each server's Com_stmt_execute.
counts() {
    echo "$(mdb_status "$db1" Com_stmt_execute) $(mdb_status "$db2" Com_stmt_execute)"
}
# serves_first N [WHICH]: N RCPTs are answered and only server WHICH (1,
# the default, or 2) ran statements.  Sets d1 and d2 to the two counters'
# increase.
serves_first() {
    local before after ok mine other
    read -r -a before <<<"$(counts)"
    ok=$(rcpts "$1")
    read -r -a after <<<"$(counts)"
    d1=$((after[0] - before[0])) d2=$((after[1] - before[1]))
    mine=$d1 other=$d2
    [[ ${2:-1} == 2 ]] && mine=$d2 other=$d1
    [[ $ok == "$1" ]] && ((mine >= $1 && other == 0))
}
# back_to_first: poll (one RCPT every 0.3 s, at most 12 s: the breaker's
# 5 s and a probe) until the first server runs statements again, then
# check that it alone serves; sets secs to the seconds it took.
back_to_first() {
    local t0=$EPOCHREALTIME c
    for ((i = 0; i < 40; i++)); do
        c=$(mdb_status "$db1" Com_stmt_execute)
        rcpts 1 >/dev/null
        (($(mdb_status "$db1" Com_stmt_execute) > ${c:-0})) && break
        sleep 0.3
    done
    secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    serves_first 10
}
# breakers: "B1 B2", each server's breaker as mxgatectl status --json shows it.
breakers() {
    mxgatectl_on "$sock" status --json
    json "' '.join(b['breaker'] for b in d['backends'] if b['backend'] == 'mysql' and b['server'] in ('$s1', '$s2'))"
}

# ---- 1. both up ------------------------------------------------------------------------
serves_first 10
tap_result $? "both up: 10 RCPTs answered by the first server alone (its statements +$d1, the second's +$d2)"
mxgatectl_on "$sock" status
grep -A1 -x "  mysql $s1:" <<<"$out" | grep -qx "    breaker: closed" &&
    grep -A1 -x "  mysql $s2:" <<<"$out" | grep -qx "    breaker: closed" &&
    [[ $(grep -n "^  mysql " <<<"$out" | head -1) == *"$s1:" ]]
tap_result $? "mxgatectl status: both servers, in order, breakers closed" || tap_diag "$out"

# fail_mid_load NAME N ACTION DONE: two loaders of N transactions; after 1 s
# the first server gets ACTION (mdb_kill, mdb_freeze; DONE says it in
# words: "killed"); each loader's every RCPT
# must be answered right (one point each).  Sets maxall (the slowest RCPT
# after ACTION) and meanall (the loaders' mean after it, averaged) in ms,
# and c2 to the second server's counter before.
fail_mid_load() {
    local name=$1 n=$2 x r t_fail m sum=0
    c2=$(mdb_status "$db2" Com_stmt_execute)
    load "$name-a" "$n"
    load "$name-b" "$n"
    sleep 1
    "$3" "$db1"
    t_fail=$EPOCHREALTIME
    load_wait
    maxall=0
    for x in a b; do
        r=$(judge "$work/$name-$x.out" "$n" "$t_fail")
        tap_result "$([[ $(field "$r" bad) == 0 ]]; echo $?)" \
            "first server $4 mid-load (loader $x): all $((2 * n)) RCPTs answered right, none tempfailed ($(head -1 <<<"$r"))" ||
            tap_diag "$(tail -n +2 <<<"$r")" "$(tail -5 "$work/$name-$x.out")"
        m=$(field "$r" max)
        ((m > maxall)) && maxall=$m
        sum=$((sum + $(field "$r" mean)))
    done
    meanall=$((sum / 2))
}

# ---- 2. the first server killed mid-load, then restarted ---------------------------
fail_mid_load kill 100 mdb_kill killed
tap_diag "latency after the SIGKILL: max ${maxall} ms, mean ${meanall} ms"
tap_result "$(( $(mdb_status "$db2" Com_stmt_execute) > c2 ? 0 : 1 ))" \
    "...the second server answered them (its statements +$(( $(mdb_status "$db2" Com_stmt_execute) - c2 )))"
tap_result "$([[ $(breakers) == "open closed" ]]; echo $?)" \
    "mxgatectl status --json: the first server's breaker open, the second's closed ($(breakers))"
grep -q "mysql: server $s1 does not answer; the next servers are asked for 5 s" "$log"
tap_result $? "the first server's breaker opening is logged"
mdb_start "$db1" "$p1" || bail "MariaDB did not restart"
back_to_first
st=$?
tap_result $st "restarted: lookups go back to the first server within $secs s (first +$d1, second +$d2 statements for 10 RCPTs)"
grep -q "mysql: server $s1 answers again" "$log" && [[ $(breakers) == "closed closed" ]]
tap_result $? "...logged as 'answers again'; status shows both breakers closed ($(breakers))"

# ---- 3. the first server frozen mid-load, then thawed ------------------------------
fail_mid_load freeze 150 mdb_freeze frozen
tap_diag "latency with the first server frozen (RCPTs after the SIGSTOP, 2 loaders, 2 SQL statements per RCPT): max ${maxall} ms, mean ${meanall} ms (timeout_ms $TIMEOUT_MS)"
tap_result "$((maxall < TIMEOUT_MS ? 0 : 1))" \
    "frozen: no RCPT waited the whole timeout_ms (max $maxall ms < $TIMEOUT_MS ms: the first server gets half)"
tap_result "$(( $(mdb_status "$db2" Com_stmt_execute) > c2 ? 0 : 1 ))" "...the second server answered them"
tap_result "$([[ $(breakers) == "open closed" ]]; echo $?)" \
    "mxgatectl status --json: the frozen server's breaker open ($(breakers))"
mdb_thaw "$db1"
back_to_first
st=$?
tap_result $st "thawed: lookups go back to the first server within $secs s (first +$d1, second +$d2 statements for 10 RCPTs)"
tap_result "$([[ $(breakers) == "closed closed" ]]; echo $?)" "mxgatectl status: both breakers closed again"

# ---- 4. a reload that reverses the list -------------------------------------------
sed -i "s/servers = \[ \"$s1\", \"$s2\" \]/servers = [ \"$s2\", \"$s1\" ]/" "$work/mxgate.conf"
kill -USR1 "$daemon"
wait_for 'grep -q "quota: now using the mysql source" "$log"' 10
serves_first 10 2
tap_result $? "reload with the list reversed: the new first server alone answers (first +$d2, second +$d1 statements for 10 RCPTs)"

# ---- 5. an [IPv6]:port entry with no server behind it ------------------------------
dead=$(mdb_free_port) || bail "no free port"
{
    echo "quota: { maildir_root = \"$vmail\"; };"
    mdb_mysql_group "\"[::1]:$dead\", \"$s2\"" "$password" "$TIMEOUT_MS"
} >"$work/probe.conf"
got=$(echo "mailbox bob@example.org" | timeout 20 "$PROBE" -c "$work/probe.conf" 2>"$work/probe.log")
[[ $got == "OK "*" quota=10485760\\x20maildir=$vmail/example.org/bob/" ]] &&
    grep -q "mysql: \[::1\]:$dead: quota_query: .*; trying the next server" "$work/probe.log"
tap_result $? "servers = [ \"[::1]:$dead\" (nothing there), \"$s2\" ]: the second answers ($got)" ||
    tap_diag "$(cat "$work/probe.log")"

tap_result "$(! grep -q "Temporary lookup failure" "$log"; echo $?)" "no lookup was answered with a tempfail"
mxgate_stop_check "$daemon" "$log" "the daemon"
daemon=
tap_done
exit 0
