#!/bin/bash
# tests/e2e/control_live.sh - mxgatectl explain and ratelimit show|reset
# (mxgatectl(8)) against one mxgate whose quotas come from a real MariaDB
# (sql/schema.sql and sample-data.sql, mailboxes under a test maildir root)
# and whose rate limits count in a real memcached:
#   - explain of chain@example.com, an alias domain to an alias to an alias
#     list of two full mailboxes: every step and target shown, each
#     mailbox's quota from SQL and usage from maildirsize, the 552 verdict,
#     and the daemon refusing that RCPT with that very reply; --json too;
#     status then shows the quota cache holding those lookups;
#   - a client over its limit of 2 messages an hour is refused; ratelimit
#     show gives its count and "over"; ratelimit reset deletes the counter
#     and the same client's next message is let through at once.
# The milter sessions are lib/rl_milter.py's (a raw milter client that sees
# reply texts).  TAP on stdout; exit 99 only when the harness cannot run.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"
. "$here/lib/memcached.sh"
. "$here/lib/mariadb.sh"

MXGATECTL=${MXGATECTL:-$abs_top_builddir/mxgatectl}
[[ -x $MXGATE ]] || bail "no daemon at $MXGATE (set MXGATE)"
[[ -x $MXGATECTL ]] || bail "no mxgatectl at $MXGATECTL (set MXGATECTL)"
[[ $(id -u) == 0 ]] || bail "needs root (runs MariaDB)"
command -v python3 >/dev/null || pf_need_packages python3 >&2 || bail "python3 missing"
mc_need_package || bail "cannot install memcached"
mdb_need_packages >&2 || bail "mariadb-server missing"
export PYTHONPATH=$here/lib${PYTHONPATH:+:$PYTHONPATH}

mxpid=
e2e_work control_live mxpid
chmod 0755 "$work"
trap 'mc_stop_all; mdb_stop_all; e2e_cleanup' EXIT

# ---- the servers ----------------------------------------------------------------
mcport=$(pf_free_port) || bail "no free port"
mc_start "$work" mc "$mcport" || bail "memcached did not start"
db=$work/db
dbport=$(mdb_free_port) || bail "no free port"
mdb_init "$db" && mdb_start "$db" "$dbport" || bail "MariaDB did not start"
password=pw$RANDOM$RANDOM
# chain@example.org -> fullteam@example.org -> bob, full2 (both full)
cat >"$work/chain.sql" <<SQL
INSERT INTO mailbox (username, maildir, quota, local_part, domain) VALUES
  ('full2@example.org', 'example.org/full2/', 1000, 'full2', 'example.org');
INSERT INTO alias (address, goto, domain) VALUES
  ('full2@example.org', 'full2@example.org', 'example.org'),
  ('fullteam@example.org', 'bob@example.org,full2@example.org', 'example.org'),
  ('chain@example.org', 'fullteam@example.org', 'example.org');
SQL
mdb_postfix "$db" "$password" "$work/load.log" "$work/chain.sql"
tap_result $? "MariaDB holds the schema, the sample data and an alias chain to two full mailboxes" ||
    sed 's/^/# /' "$work/load.log"

vmail=$work/vmail
# maildir NAME QUOTA-LINE USED: a maildir whose maildirsize says USED bytes.
maildir() {
    mkdir -p "$vmail/example.org/$1/cur" "$vmail/example.org/$1/new" "$vmail/example.org/$1/tmp"
    printf '%s\n%s 1\n' "$2" "$3" >"$vmail/example.org/$1/maildirsize"
}
maildir bob 10485760S 11000000  # over its 10 MiB SQL quota
maildir full2 1000S 5000
maildir carol 0S 1000

sock=$work/control.sock
conf=$work/live.conf
log=$work/mxgate.log
cat >"$conf" <<EOF
trusted_networks = [ ];
control_socket = "unix:$sock";
helo: { enabled = false; };
overload: { enabled = false; };
memcached: { servers = [ "127.0.0.1:$mcport" ]; };
$(mdb_mysql_group "$dbport" "$password" 2000)
quota: { maildir_root = "$vmail"; };
ratelimit: { rules = (
  { name = "client"; key = [ "client_ip" ]; count = "messages"; limits = [ "2/1h" ]; }
); };
EOF
mxgate_start_control "$conf" "$log" "$sock"
started=$?
mxpid=$MXGATE_PID # stopped at exit, also when it started without its socket
((started == 0)) || bail "mxgate did not start with its control socket $sock"

# ctl ARGS...: mxgatectl on the socket (lib/mxgate.sh); sets out, err and st.
ctl() { mxgatectl_on "$sock" "$@"; }
# session IP RCPT OUT: one milter session, its steps in OUT.
session() {
    timeout 30 python3 "$here/lib/rl_milter.py" session --port "$MXGATE_PORT" --ip "$1" \
        --sender "<s@example.net>" --rcpt "$2" --end data >"$3" 2>&1
}

# ---- explain: an alias chain to full mailboxes ------------------------------------
want='552 5.2.2 <chain@example.com>: Recipient address rejected: Mailbox full'
ctl explain chain@example.com
missing=
for t in example.org chain@example.org fullteam@example.org bob@example.org full2@example.org; do
    grep -qF "$t" <<<"$out" || missing+=" $t"
done
[[ $st == 0 && -z $missing ]]
tap_result $? "explain chain@example.com: the alias domain and every alias and mailbox of the chain${missing:+ (missing:$missing)}" ||
    tap_diag "status $st" "$out" "$err"
grep -q 'maildirsize' <<<"$out" && grep -q '10485760' <<<"$out" && grep -q '11000000' <<<"$out"
tap_result $? "explain: bob's quota from SQL (10485760) and usage from maildirsize (11000000)" ||
    tap_diag "$out"
grep -qF "$want" <<<"$out"
tap_result $? "explain: the verdict is the 552 full-mailbox reply" || tap_diag "$out"
session 192.0.2.60 "<chain@example.com>" "$work/chain.session"
grep -qF "RCPT y $want" "$work/chain.session"
tap_result $? "the daemon refuses RCPT chain@example.com with that reply" ||
    tap_diag "$(cat "$work/chain.session")"
ctl explain chain@example.com --json
[[ $st == 0 && $(json '"552" in json.dumps(d)') == True ]]
tap_result $? "explain --json: one JSON object holding the 552 verdict" || tap_diag "status $st" "$out"
ctl explain carol@example.org
[[ $st == 0 ]] && ! grep -qF '552 ' <<<"$out"
tap_result $? "explain carol@example.org (unlimited): no refusal" || tap_diag "$out"
ctl status --json
cache=$(json '(d["quota_cache"]["entries"] > 0, d["quota_cache"]["capacity"])' 2>&1)
tap_result $([[ $st == 0 && $cache == "(True, 65536)" ]]; echo $?) \
    "status --json: the quota cache holds the lookups made, of 65536 at most ($cache)" || tap_diag "$out"

# ---- ratelimit: a limited client, shown, reset, let through ------------------------
ip=192.0.2.61
for i in 1 2 3; do session "$ip" "<carol@example.org>" "$work/rl.$i"; done
grep -q '^MAIL c' "$work/rl.1" && grep -q '^MAIL c' "$work/rl.2" &&
    grep -qE '^MAIL y 450 4\.7\.1 <'"$ip"'>: Rate limit "client" exceeded' "$work/rl.3"
tap_result $? "a client over 2 messages an hour: the third MAIL is refused with 450 4.7.1" ||
    tap_diag "$(cat "$work"/rl.*)"
ctl ratelimit show client client_ip=$ip
[[ $st == 0 ]] && grep -qE 'current 2\b' <<<"$out" && grep -qi 'over' <<<"$out"
tap_result $? "ratelimit show client client_ip=$ip: current 2, the next one over" || tap_diag "status $st" "$out"
ctl ratelimit show client client_ip=$ip --json
[[ $st == 0 && $(json '"over" in json.dumps(d)') == True ]]
tap_result $? "ratelimit show --json parses and says over" || tap_diag "$out"
ctl ratelimit reset client client_ip=$ip
deleted=$(grep -oE 'deleted [0-9]+ counters?' <<<"$out")
[[ $st == 0 && $deleted =~ deleted\ [1-9] ]]
tap_result $? "ratelimit reset: the counters deleted (${deleted:-none})" || tap_diag "status $st" "$out"
session "$ip" "<carol@example.org>" "$work/rl.after"
grep -q '^MAIL c' "$work/rl.after" && grep -q '^RCPT c' "$work/rl.after"
tap_result $? "after the reset the same client's next message is let through at once" ||
    tap_diag "$(cat "$work/rl.after")"
ctl ratelimit show client
[[ $st == 1 && $err == *"mxgatectl: 4"* ]] && grep -q 'client_ip' <<<"$out$err"
tap_result $? "ratelimit show without the key's value: 4xx naming client_ip" ||
    tap_diag "status $st" "$out" "$err"

mxgate_stop_check "$mxpid" "$log" "mxgate"
mxpid=
tap_done
exit 0
