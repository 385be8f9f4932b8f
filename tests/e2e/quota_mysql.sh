#!/bin/bash
# quota_mysql.sh - the quota check with the MariaDB source, against a real
# MariaDB server (tests/e2e/lib/mariadb.sh) loaded with sql/schema.sql,
# sql/sample-data.sql and sql/grant.sql, as mxgate's SELECT-only user:
#   1. the source itself (tests/e2e/quota_mysql_probe, one process keeping
#      its pooled connections): quota found / unlimited / inactive / no row,
#      aliases, alias domains, catch-all; case, trailing-space and accent
#      look-alikes that the server's collation matches but mxgate must not;
#      SQL injection strings (a canary table survives); rows mxgate refuses
#      to use (a maildir with "..", an absolute one); a query of the wrong
#      shape; the server killed (an error at once), restarted (lookups work
#      again in the same process), frozen (an error within timeout_ms) and
#      closing idle connections (wait_timeout: no error seen).
#   2. the daemon (a raw milter-protocol client, tests/e2e/lib/rl_milter.py,
#      so reply texts are checked): exact 552 for a full mailbox, no opinion
#      for unlimited / inactive / unknown, +ext, alias domain, catch-all,
#      alias lists with multi_target all and any (by SIGUSR1 reload), hostile
#      and injecting recipients; the server killed mid-test gives on_error's
#      451 within timeout_ms + 1 s, and after a restart the same daemon
#      refuses the full mailbox again.
#   3. through a private Postfix: one message to a full and two non-full
#      recipients gets exactly the 552 for the full one and reaches
#      smtp-sink for the other two.
#   4. numbers for the benchmark (as "#" lines): SQL statements executed per
#      10-recipient message (the server's Com_stmt_execute) cold and warm,
#      and source lookups per second with no cache.
# TAP on stdout; exit 0 after the results, 99 when the harness cannot run.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"
top=$abs_top_srcdir
PROBE=${PROBE:-$abs_top_builddir/tests/e2e/quota_mysql_probe}
. "$here/lib/mariadb.sh"

[ -x "$PROBE" ] || bail "no probe at $PROBE (make check builds it)"
mdb_preflight "MariaDB and Postfix"

work=$(mktemp -d "${TMPDIR:-/tmp}/mxgate-qmysql.XXXXXX")
chmod 0755 "$work"
daemon=
probe_pid=
cleanup() {
    [ -n "$probe_pid" ] && pf_kill_pid "$probe_pid" 3
    [ -n "$daemon" ] && pf_kill_pid "$daemon" 5
    pf_stop_all
    mdb_stop_all
    rm -rf "$work"
}
trap cleanup EXIT

# ---- the server ------------------------------------------------------------------
db=$work/db
dbport=$(mdb_free_port) || bail "no free port"
mdb_init "$db" && mdb_start "$db" "$dbport" || bail "MariaDB did not start"
password=pw$RANDOM$RANDOM
mdb_postfix "$db" "$password" "$work/load.log"
tap_result $? "sql/schema.sql, sample-data.sql and grant.sql load into MariaDB" ||
    sed 's/^/# /' "$work/load.log"

# Test data beyond the sample: a canary, rows mxgate must refuse, look-alike
# targets, ten mailboxes for the benchmark, and a site whose tables were
# converted to utf8mb4_general_ci (which folds accents: 'bób' = 'bob').
mdb_sql "$db" postfix >"$work/load2.log" 2>&1 <<SQL
CREATE TABLE canary (id INT PRIMARY KEY, note VARCHAR(40));
INSERT INTO canary VALUES (1, 'still here');
INSERT INTO mailbox (username, maildir, quota, local_part, domain) VALUES
  ('dotdot@example.org', 'example.org/../../etc/', 1000, 'dotdot', 'example.org'),
  ('absolute@example.org', '/etc/', 1000, 'absolute', 'example.org'),
  ('full2@example.org', 'example.org/full2/', 1000, 'full2', 'example.org');
INSERT INTO alias (address, goto, domain) VALUES
  ('full2@example.org', 'full2@example.org', 'example.org'),
  ('fullteam@example.org', 'bob@example.org,full2@example.org', 'example.org');
CREATE TABLE mailbox_utf8 LIKE mailbox;
ALTER TABLE mailbox_utf8 CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
INSERT INTO mailbox_utf8 SELECT * FROM mailbox;
GRANT SELECT (username, maildir, quota, active) ON postfix.mailbox_utf8 TO 'mxgate'@'127.0.0.1';
SQL
for i in 1 2 3 4 5 6 7 8 9 10 v; do
    echo "INSERT INTO mailbox (username, maildir, quota, local_part, domain) VALUES ('u$i@example.org', 'example.org/u$i/', 1048576, 'u$i', 'example.org');"
    echo "INSERT INTO alias (address, goto, domain) VALUES ('u$i@example.org', 'u$i@example.org', 'example.org');"
done | mdb_sql "$db" postfix >>"$work/load2.log" 2>&1
tap_result $? "test rows load" || sed 's/^/# /' "$work/load2.log"

# mxgate's user can read what it needs and nothing else.
as_mxgate() {
    timeout 20 mariadb --no-defaults -h127.0.0.1 -P"$dbport" -umxgate -p"$password" \
        --batch --skip-column-names postfix -e "$1" 2>&1
}
out=$(as_mxgate "SELECT quota FROM mailbox WHERE username='bob@example.org'")
tap_result $([ "$out" = 10485760 ]; echo $?) "the grant.sql user reads mailbox.quota ($out)"
out=$(as_mxgate "SELECT password FROM mailbox LIMIT 1")
tap_result $([[ $out == *denied* ]]; echo $?) "...but not password hashes"
out=$(as_mxgate "DELETE FROM alias")
tap_result $([[ $out == *denied* ]]; echo $?) "...and cannot write"

# ---- 1. the source ------------------------------------------------------------------
vmail=$work/vmail
# conf FILE [EXTRA...]: a configuration for the server above; the queries
# return the stored key as their last column (sql/README.md).
conf() {
    local file=$1
    shift
    cat >"$file" <<EOF
log_level = "debug";
trusted_networks = [ ];
helo: { enabled = false; };
ratelimit: { enabled = false; };
overload: { enabled = false; };
$(mdb_mysql_group "$dbport" "$password" 500)
EOF
    local line
    for line in "$@"; do
        printf '%s\n' "$line" >>"$file"
    done
}
conf "$work/probe.conf" "quota: { maildir_root = \"$vmail\"; };"

# The probe runs as a co-process: one line in, one line out.
coproc PROBE_CO { "$PROBE" -c "$work/probe.conf" 2>"$work/probe.log"; }
probe_pid=$PROBE_CO_PID
# ask KIND KEY: print the probe's answer ("STATUS MS [VALUE]").
ask() {
    local line
    printf '%s %s\n' "$1" "$2" >&"${PROBE_CO[1]}"
    IFS= read -r -t 20 line <&"${PROBE_CO[0]}" || line="(no answer)"
    printf '%s\n' "$line"
}
# want NAME KIND KEY EXPECTED: the answer without its time is EXPECTED.
want() {
    local name=$1 got
    got=$(ask "$2" "$3")
    got=$(sed -E 's/^([A-Z_]+) [0-9]+/\1/' <<<"$got")
    [ "$got" = "$4" ]
    local st=$?
    tap_result $st "$name"
    [ $st -eq 0 ] || tap_diag "key: $3" "want: $4" "got:  $got"
}
# sql_count WHERE: rows of mailbox matching a literal condition, as root (the
# server's own view of what a collation matches).
sql_count() {
    mdb_sql "$db" postfix -e "SELECT COUNT(*) FROM $1"
}

want "quota found" mailbox bob@example.org "OK quota=10485760\\x20maildir=$vmail/example.org/bob/"
want "quota 0 (unlimited)" mailbox carol@example.org "OK quota=0\\x20maildir=$vmail/example.org/carol/"
want "inactive mailbox: not found" mailbox dave@example.org NOT_FOUND
want "no row: not found" mailbox nobody@example.org NOT_FOUND
want "alias list" alias team@example.org "OK bob@example.org,carol@example.org"
want "inactive alias: not found" alias dave@example.org NOT_FOUND
want "catch-all alias" alias @example.net "OK bob@example.org"
want "alias domain" domain example.com "OK example.org"
want "not an alias domain" domain example.org NOT_FOUND

# Look-alikes: the server matches them, mxgate must not.
n=$(sql_count "mailbox WHERE username = 'BOB@example.org'")
want "case look-alike: not found (the server's collation matches $n row)" \
    mailbox BOB@example.org NOT_FOUND
n=$(sql_count "mailbox WHERE username = 'bob@example.org  '")
want "trailing-space look-alike: not found (the server matches $n row)" \
    mailbox 'bob@example.org  ' NOT_FOUND
want "case look-alike of an alias: not found" alias Team@example.org NOT_FOUND
want "case look-alike of an alias domain: not found" domain EXAMPLE.COM NOT_FOUND
want "U+200B look-alike (not in latin1): not found, no error" \
    mailbox 'bo\xe2\x80\x8bb@example.org' NOT_FOUND
before=$(mdb_status "$db" Com_stmt_execute)
want "invalid UTF-8: not found, no error" mailbox 'b\xffb@example.org' NOT_FOUND
after=$(mdb_status "$db" Com_stmt_execute)
tap_result $([ "$after" = "$before" ]; echo $?) "...without a statement: no stored key can equal it"

# The same with the utf8mb4_general_ci copy of the table, which folds accents.
conf "$work/utf8.conf" "quota: { maildir_root = \"$vmail\"; };"
sed -i 's/FROM mailbox WHERE/FROM mailbox_utf8 WHERE/' "$work/utf8.conf"
n=$(mdb_sql "$db" postfix -e "SELECT COUNT(*) FROM mailbox_utf8 WHERE username = 'bób@example.org'")
out=$(printf '%s\n' 'mailbox bob@example.org' 'mailbox b\xc3\xb3b@example.org' \
    'mailbox bo\xe2\x80\x8bb@example.org' 'mailbox BÓB@example.org' |
    "$PROBE" -c "$work/utf8.conf" 2>"$work/utf8.log" | sed -E 's/^([A-Z_]+) [0-9]+.*/\1/' | tr '\n' ' ')
tap_result $([ "$n" = 1 ] && [ "$out" = "OK NOT_FOUND NOT_FOUND NOT_FOUND " ]; echo $?) \
    "utf8mb4_general_ci: accent and ignorable look-alikes not found (server: $n row; mxgate: $out)"

# SQL injection: bound, never built into SQL; each is simply not found.
long=$(printf 'a%.0s' $(seq 1 1024))
inject=(
    "x' OR '1'='1" "bob@example.org' -- " "bob@example.org'; DROP TABLE canary; --"
    '" OR ""="' "' UNION SELECT 1, 'etc/', 'x' -- " "bob@example.org\\' OR 1=1 #"
    '%' '_ob@example.org' 'bob@example.org%' "\\x27\\x3b DELETE FROM canary"
    'bob@example.org\x0d\x0aQUIT' '\x1a\x08\x09' "$long@example.org"
    "$long$long$long$long$long@example.org"
)
bad=0
for k in "${inject[@]}"; do
    for kind in mailbox alias domain; do
        got=$(ask "$kind" "$k")
        [[ $got == NOT_FOUND* ]] || { bad=1; tap_diag "$kind '$k' gave: $got"; }
    done
done
tap_result $bad "${#inject[@]} injection strings x 3 queries: each not found, none an error"
out=$(mdb_sql "$db" postfix -e "SELECT note FROM canary WHERE id = 1")
tap_result $([ "$out" = "still here" ]; echo $?) "the canary table survives"
out=$(sql_count "alias")
tap_result $([ "$out" -ge 10 ]; echo $?) "the alias table is intact ($out rows)"

# Rows mxgate refuses to use: "could not look", not a path outside maildir_root.
want "maildir with '..': error" mailbox dotdot@example.org ERROR
want "absolute maildir: error" mailbox absolute@example.org ERROR
tap_result $(grep -q 'quota_query: the maildir column is NULL, empty, absolute, contains ".."' \
    "$work/probe.log"; echo $?) "...and each says why in the log"
want "the connection is still good after them" mailbox carol@example.org \
    "OK quota=0\\x20maildir=$vmail/example.org/carol/"

# A query of the wrong shape fails with a clear message.
conf "$work/shape.conf" "quota: { maildir_root = \"$vmail\"; };"
sed -i 's/SELECT quota, maildir, username FROM/SELECT quota FROM/' "$work/shape.conf"
out=$(echo "mailbox bob@example.org" | "$PROBE" -c "$work/shape.conf" 2>&1)
tap_result $([[ $out == *"returns 1 columns; it needs one '?' and 2 columns, or 3 with the stored key last"* &&
    $out == *ERROR* ]]; echo $?) "a quota_query returning one column: error naming the cause"

# The default queries return no key column: only plain keys are run.
conf "$work/nokey.conf" "quota: { maildir_root = \"$vmail\"; };"
sed -i '/_query = /d' "$work/nokey.conf"
out=$(printf '%s\n' 'mailbox bob@example.org' 'mailbox BOB@example.org' 'mailbox bob@example.org ' \
    'alias team@example.org' 'domain example.com' |
    "$PROBE" -c "$work/nokey.conf" 2>"$work/nokey.log" | sed -E 's/^([A-Z_]+) [0-9]+.*/\1/' | tr '\n' ' ')
tap_result $([ "$out" = "OK NOT_FOUND NOT_FOUND OK OK " ]; echo $?) \
    "default queries: plain keys found, look-alikes not looked up ($out)"
tap_result $(grep -q "quota_query returns no key column" "$work/nokey.log"; echo $?) \
    "default queries: a warning says the key column is missing"

# The server dies, comes back; the same process keeps working.
want "before the crash" mailbox bob@example.org "OK quota=10485760\\x20maildir=$vmail/example.org/bob/"
mdb_kill "$db"
mdb_start "$db" "$dbport" || bail "MariaDB did not restart"
want "server restarted behind the pooled connection: found, no error (one retry)" \
    mailbox bob@example.org "OK quota=10485760\\x20maildir=$vmail/example.org/bob/"
tap_result $(grep -q "quota_query: .*(2013); reconnecting\|quota_query: .*(2006); reconnecting" \
    "$work/probe.log"; echo $?) "...the lost connection was noticed and replaced"
mdb_kill "$db"
got=$(ask mailbox bob@example.org)
ms=$(awk '{print $2}' <<<"$got")
tap_result $([[ $got == ERROR* ]] && [ "$ms" -le 1500 ]; echo $?) \
    "server killed: error within timeout_ms + 1 s ($got)"
mdb_start "$db" "$dbport" || bail "MariaDB did not restart"
want "server restarted: found again, same process, no error" mailbox bob@example.org \
    "OK quota=10485760\\x20maildir=$vmail/example.org/bob/"
tap_result $(grep -q "Lost connection\|gone away\|Can't connect" "$work/probe.log"; echo $?) \
    "the failure was logged"
mdb_freeze "$db"
got=$(ask mailbox bob@example.org)
ms=$(awk '{print $2}' <<<"$got")
tap_result $([[ $got == ERROR* ]] && [ "$ms" -ge 400 ] && [ "$ms" -le 1500 ]; echo $?) \
    "server frozen (SIGSTOP): error after timeout_ms = 500 ($got)"
got=$(ask alias team@example.org)
ms=$(awk '{print $2}' <<<"$got")
tap_result $([[ $got == ERROR* ]] && [ "$ms" -le 1500 ]; echo $?) \
    "still frozen: a new connection times out too ($got)"
mdb_thaw "$db"
want "server thawed: found again" alias team@example.org "OK bob@example.org,carol@example.org"

# The server closes idle connections (wait_timeout): the next lookup reconnects.
mdb_sql "$db" -e "SET GLOBAL wait_timeout = 1"
out=$( { echo "mailbox bob@example.org"; sleep 2.5; echo "mailbox carol@example.org"; } |
    "$PROBE" -c "$work/probe.conf" 2>"$work/idle.log" | sed -E 's/^([A-Z_]+) [0-9]+.*/\1/' | tr '\n' ' ')
tap_result $([ "$out" = "OK OK " ] && grep -q "reconnecting" "$work/idle.log"; echo $?) \
    "wait_timeout closed the idle connection: reconnected, no error ($out)"
mdb_sql "$db" -e "SET GLOBAL wait_timeout = 28800"

# The probe ends at the end of its input (sanitizer builds check it then).
exec {PROBE_CO[1]}>&-
for ((i = 0; i < 50; i++)); do
    kill -0 "$probe_pid" 2>/dev/null || break
    sleep 0.1
done
tap_result $(! kill -0 "$probe_pid" 2>/dev/null; echo $?) "the probe closes its connections and exits"

# ---- 2. the daemon ---------------------------------------------------------------------
dom=$vmail/example.org
# maildir NAME QUOTA-LINE USED: a maildir whose maildirsize says USED bytes.
maildir() {
    mkdir -p "$dom/$1/cur" "$dom/$1/new" "$dom/$1/tmp"
    printf '%s\n%s 1\n' "$2" "$3" >"$dom/$1/maildirsize"
}
maildir bob 10485760S 11000000          # over its 10 MiB SQL quota
maildir carol 0S 999999999              # unlimited in SQL
maildir erin 102400S 50000              # room left
maildir postmaster 52428800S 1000
maildir full2 1000S 5000
for i in 1 2 3 4 5 6 7 8 9 10 v; do maildir "u$i" 1048576S 1000; done

mport=$(pf_free_port) || bail "no free port"
mconf=$work/mxgate.conf
# write_mconf MULTI_TARGET
write_mconf() {
    conf "$mconf.new" "socket = \"inet:$mport@127.0.0.1\";" \
        "quota: { maildir_root = \"$vmail\"; cache_ttl = 30; on_error = \"tempfail\"; multi_target = \"$1\"; };"
    mv "$mconf.new" "$mconf"
}
write_mconf all
log=$work/mxgate.log
mxgate_run "$mconf" "$log" "$mport" || bail "mxgate did not listen"
daemon=$MXGATE_PID

# rcpts RCPT...: one session; one line per RCPT ("c", or "y CODE TEXT"), then
# "ms=" lines dropped.  rcpts_ms prints the milliseconds of each RCPT instead.
milter_session() {
    local args=() r
    for r in "$@"; do args+=(--rcpt "$r"); done
    timeout 30 python3 "$here/lib/rl_milter.py" session --port "$mport" \
        --sender "<sender@example.net>" --end abort "${args[@]}" 2>&1
}
rcpts() {
    milter_session "$@" | awk '/^RCPT / { sub(/^RCPT /, ""); print } /^eof|Error|rror:/ { print }'
}
full_reply() {
    printf '552 5.2.2 <%s>: Recipient address rejected: Mailbox full' "$1"
}
# expect NAME WANT RCPT: one RCPT answered exactly WANT ("y " + text for a reply).
expect() {
    local got
    got=$(rcpts "$3")
    [ "$got" = "$2" ]
    local st=$?
    tap_result $st "$1"
    [ $st -eq 0 ] || tap_diag "rcpt: $3" "want: $2" "got:  $got"
}

# Each case one RCPT, all in one session (a python start costs seconds on a
# loaded machine); every RCPT is judged on its own.
cases=(
    "milter: full mailbox (SQL quota): exact 552|<bob@example.org>|y $(full_reply bob@example.org)"
    "milter: unlimited (quota 0): no opinion|<carol@example.org>|c"
    "milter: inactive mailbox: no opinion|<dave@example.org>|c"
    "milter: no row: no opinion|<nobody@example.org>|c"
    "milter: room left: no opinion|<erin@example.org>|c"
    "milter: +ext of a full mailbox: 552|<bob+news@example.org>|y $(full_reply bob+news@example.org)"
    "milter: alias domain of a full mailbox: 552|<bob@example.com>|y $(full_reply bob@example.com)"
    "milter: catch-all to a full mailbox: 552|<anyone@example.net>|y $(full_reply anyone@example.net)"
    "milter: alias to two full mailboxes: 552|<fullteam@example.org>|y $(full_reply fullteam@example.org)"
    "milter: alias to full + unlimited, multi_target=all: no opinion|<team@example.org>|c"
    "milter: upper case folds as in Postfix: 552|<BOB@Example.ORG>|y $(full_reply BOB@Example.ORG)"
    'milter: quoted trailing-space look-alike: no opinion|<"bob "@example.org>|c'
    "milter: unlimited again, same session|<carol@example.org>|c"
)
sent=()
for c in "${cases[@]}"; do
    IFS='|' read -r _ r _ <<<"$c"
    sent+=("$r")
done
got=$(rcpts "${sent[@]}")
i=0
while IFS='|' read -r name r wanted; do
    line=$(sed -n "$((i + 1))p" <<<"$got")
    [ "$line" = "$wanted" ]
    st=$?
    tap_result $st "$name"
    [ $st -eq 0 ] || tap_diag "rcpt: $r" "want: $wanted" "got:  $line"
    i=$((i + 1))
done < <(printf '%s\n' "${cases[@]}")

write_mconf any
kill -USR1 "$daemon"
for ((i = 0; i < 50; i++)); do
    grep -q "configuration reloaded" "$log" && break
    sleep 0.1
done
expect "milter: multi_target=any (reloaded): alias to full + unlimited: 552" \
    "y $(full_reply team@example.org)" "<team@example.org>"

# Hostile and injecting recipients: a reply or no opinion, never a tempfail.
hostile=(
    "<x'OR'1'='1@example.org>" "<\"'; DROP TABLE canary; --\"@example.org>"
    "<bob@example.org' -- >" '<"bob@example.org\\" OR 1=1 #"@example.org>'
    "<%@example.org>" "<_ob@example.org>" "<$long@example.org>" '<b\xffb@example.org>'
    '<bo\xe2\x80\x8bb@example.org>' '<bob@example.org\r\nQUIT>' '<\x00bob@example.org>'
    "<bob@exa'mple.org>" "<@example.org>" "<>"
)
got=$(rcpts "${hostile[@]}")
bad=0
n=0
while IFS= read -r line; do
    n=$((n + 1))
    case $line in
    c | "y 5"*) ;;
    *) bad=1; tap_diag "recipient ${hostile[$((n - 1))]} gave: $line" ;;
    esac
done <<<"$got"
[ "$n" -eq "${#hostile[@]}" ] || { bad=1; tap_diag "$n answers for ${#hostile[@]} recipients"; }
mxgate_alive "$daemon" || { bad=1; tap_diag "the daemon died"; }
tap_result $bad "milter: ${#hostile[@]} hostile recipients: each no opinion or a refusal, none a tempfail"
out=$(mdb_sql "$db" postfix -e "SELECT note FROM canary WHERE id = 1")
tap_result $([ "$out" = "still here" ]; echo $?) "milter: the canary table survives"
expect "milter: and the full mailbox is still refused" "y $(full_reply bob@example.org)" "<bob@example.org>"

# ---- 4. numbers (the benchmark; not pass/fail) --------------------------------------
# stmts: Com_stmt_execute over one session with the given recipients.
stmts() {
    local before after
    before=$(mdb_status "$db" Com_stmt_execute)
    rcpts "$@" >/dev/null
    after=$(mdb_status "$db" Com_stmt_execute)
    echo $((after - before))
}
ten=()
for i in 1 2 3 4 5 6 7 8 9 10; do ten+=("<u$i@example.org>"); done
# u1..u10 and uv are looked up for the first time here: a cold cache.
cold=$(stmts "${ten[@]}")
warm=$(stmts "${ten[@]}")
same=()
for i in 1 2 3 4 5 6 7 8 9 10; do same+=("<uv+tag$i@example.org>"); done
same_cold=$(stmts "${same[@]}")
tap_diag "benchmark: SQL statements executed for one 10-recipient message:" \
    "  10 different mailboxes, cold cache: $cold ($((cold / 10))/recipient: alias, mailbox...)" \
    "  the same message again within cache_ttl: $warm" \
    "  10 +ext addresses of one mailbox, cold: $same_cold"
tap_result $([ "$warm" -lt "$cold" ]; echo $?) "the cache saves SQL statements ($cold cold, $warm warm)"
bench=$("$PROBE" -c "$work/probe.conf" -b 3 -t 2 mailbox u1@example.org u2@example.org \
    u3@example.org u4@example.org nobody@example.org 2>"$work/bench.log")
tap_diag "benchmark: source lookups, no cache, 2 threads, 3 s: $bench"
tap_result $([[ $bench == *" errors 0" ]]; echo $?) "benchmark lookups had no errors"

# ---- 2b. the server killed: the circuit breaker; the server restarted --------------
# Recipients never looked up before, so the cache cannot answer for SQL.
# kN: one lookup each while the breaker is closed (each must fail within
# timeout_ms + 1 s); the third consecutive failure opens it.
mdb_kill "$db"
opened_after=
for i in 1 2 3 4; do
    got=$(milter_session "<kill$i@example.org>")
    line=$(awk '/^RCPT / { sub(/^RCPT /, ""); print; exit }' <<<"$got")
    ms=$(awk '/^RCPT / { getline; sub(/ms=/, ""); print; exit }' <<<"$got")
    tap_result $([ "$line" = "y 451 4.3.0 <kill$i@example.org>: Temporary lookup failure" ] &&
        [ "${ms:-99999}" -le 1500 ]; echo $?) \
        "milter: server killed, lookup $i: on_error's 451 within timeout_ms + 1 s ($line, ${ms} ms)"
    if grep -q "quota: mysql source keeps failing; not asked for 5 s" "$log"; then
        opened_after=$i
        t_open=$EPOCHREALTIME
        break
    fi
done
tap_result "$([[ $opened_after == 3 ]]; echo $?)" \
    "circuit breaker: 3 consecutive failed lookups open it, logged once (opened after ${opened_after:-more than 4})"
# Open: answered at once, without a call to the server.
got=$(milter_session "<kill-open@example.org>")
line=$(awk '/^RCPT / { sub(/^RCPT /, ""); print; exit }' <<<"$got")
tap_result $([ "$line" = "y 451 4.3.0 <kill-open@example.org>: Temporary lookup failure" ] &&
    grep -q "quota: kill-open@example.org: source skipped while its circuit breaker is open" "$log" &&
    ! grep -q "kill-open@example.org: source lookup failed" "$log"; echo $?) \
    "circuit breaker open: 451 without asking the server (logged as skipped, no failed lookup)" ||
    tap_diag "$(grep -F 'kill-open' "$log")"
mdb_start "$db" "$dbport" || bail "MariaDB did not restart"
# rN@example.net needs a fresh alias lookup (then the catch-all to bob): a
# 552 shows that SQL answers again.  Until 5 s after the breaker opened
# every lookup is still skipped, though the server may be back; the first
# lookup after that probes and succeeds.
early=0 first= t0=$SECONDS
for ((i = 0; i < 40; i++)); do
    t=$EPOCHREALTIME
    got=$(rcpts "<r$i@example.net>")
    since=$(awk -v a="${t_open:-0}" -v b="$t" 'BEGIN { printf "%.1f", b - a }')
    if [ "$got" = "y $(full_reply r$i@example.net)" ]; then
        first=$since
        break
    fi
    awk -v s="$since" 'BEGIN { exit !(s >= 4.7) }' || [[ $got == "y 451 4.3.0 "* ]] || early=1
    sleep 0.5
done
tap_result "$([[ -n $first && $early == 0 ]] && awk -v s="${first:-0}" 'BEGIN { exit !(s >= 4.7) }'; echo $?)" \
    "circuit breaker: the server is asked again 5 s after it opened, not before (first answer ${first:-never} s after opening)"
tap_result "$([[ -n $first ]] && grep -q "quota: mysql source answers again" "$log"; echo $?)" \
    "milter: server restarted: the same daemon refuses a full mailbox again, 'answers again' logged ($((SECONDS - t0)) s, $((i + 1)) tries)"
tap_result $(mxgate_alive "$daemon"; echo $?) "the daemon is still running"
tap_result $(grep -q "NOQUEUE: reject: RCPT from .*: $(full_reply bob@example.org); from=<sender@example.net> to=<bob@example.org>.*check=quota" "$log"; echo $?) \
    "the refusal is logged in Postfix style"

# ---- 3. through Postfix ------------------------------------------------------------
pf=$work/pf
pf_start_milter "$pf" "$mport" || { tap_done; exit 0; }
out=$(pf_swaks_replies --port "$port" --from sender@example.net \
    --to bob@example.org,carol@example.org,erin@example.org --data)
tap_result $(grep -qxF "$(full_reply bob@example.org)" <<<"$out"; echo $?) \
    "Postfix: exactly '$(full_reply bob@example.org)'"
tap_result $([ "$(grep -c '^250 2.1.5 Ok' <<<"$out")" -eq 2 ]; echo $?) \
    "Postfix: the two other recipients are accepted"
tap_result $(grep -q '^250 2.0.0 Ok: queued as' <<<"$out"; echo $?) "Postfix: the message is queued" ||
    tap_diag "$out"
for ((i = 0; i < 150; i++)); do
    (($(pf_sink_count "$pf") >= 1)) && break
    sleep 0.2
done
rcpt_lines=$(cat "$pf"/sink/* 2>/dev/null | tr -d '\r' | grep -ci '^X-Rcpt-Args: <\(carol\|erin\)@example.org>')
tap_result $([ "$(pf_sink_count "$pf")" -eq 1 ] && [ "$rcpt_lines" -eq 2 ] &&
    ! cat "$pf"/sink/* 2>/dev/null | grep -qi 'X-Rcpt-Args: <bob@'; echo $?) \
    "smtp-sink got the message once, for carol and erin only"
pf_stop "$pf"
mxgate_stop_check "$daemon" "$log" "the daemon"
daemon=

# Sanitizer builds (ASan, UBSan, TSan) report into these logs: every probe
# and the daemon have exited.
reports=$(grep -lE "$MXGATE_REPORT" "$work"/*.log 2>/dev/null)
tap_result $([ -z "$reports" ]; echo $?) "no sanitizer report in the logs of the probes and the daemon" ||
    grep -h -E -A20 "$MXGATE_REPORT" $reports | head -60 | sed 's/^/# /'

tap_done
exit 0
