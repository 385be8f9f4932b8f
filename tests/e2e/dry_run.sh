#!/bin/bash
# tests/e2e/dry_run.sh -- dry_run = true for every check that can refuse
# (mxgate(8), "LOGGING"): quota, rate limits and overload each log the
# refusal they would give as reject_warning, and refuse nothing: MAIL and
# RCPT continue and the message is accepted at DATA.  The same daemon,
# reloaded with dry_run = false, then refuses each of them, so the
# configuration is shown to be one that refuses.  (The HELO check's dry
# run is tests/milter/dry_run.lua.)  One mxgate, with the in-process
# counter store and quotas from maildirsize; the client is the raw milter
# client lib/rl_milter.py, which sees every reply text.
#
# TAP on stdout; exit 0 after the results, 99 when the harness cannot run.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

[[ -x $MXGATE ]] || bail "no daemon at $MXGATE (set MXGATE)"
command -v python3 >/dev/null || pf_need_packages python3 >&2 || bail "python3 missing"
export PYTHONPATH=$here/lib${PYTHONPATH:+:$PYTHONPATH}

mxpid=
e2e_work dryrun mxpid

# A mailbox over its quota (1000 bytes, 5000 used) and one with room.
vmail=$work/vmail
for box in full:'1000S\n5000 5\n' room:'1000000S\n10 1\n'; do
    mkdir -p "$vmail/example.org/${box%%:*}"/{cur,new,tmp}
    printf "${box#*:}" >"$vmail/example.org/${box%%:*}/maildirsize"
done
flag=$work/overload.flag
conf=$work/mxgate.conf
# write_conf DRY_RUN: the configuration, replaced by rename.
write_conf() {
    cat >"$conf.new" <<EOF
dry_run = $1;
trusted_networks = [ ];
helo: { enabled = false; };
quota: { maildir_root = "$vmail"; maildir_template = "%d/%l/"; cache_ttl = 0; };
ratelimit: { rules = (
  { name = "rcpts"; key = [ "sender" ]; count = "recipients"; limits = [ "1/1h" ]; }
); };
overload: { flag_file = "$flag"; sample_interval = 1; };
EOF
    mv -f "$conf.new" "$conf"
}
write_conf true
mxgate_start "$conf" "$work/mxgate.log" 20 || {
    sed 's/^/# /' "$work/mxgate.log"
    bail "mxgate did not start"
}
mxpid=$MXGATE_PID
log=$work/mxgate.log

# session SENDER RCPT...: one session, its steps ("MAIL c", "RCPT y 552 ...").
session() {
    local sender=$1 args=() r
    shift
    for r in "$@"; do args+=(--rcpt "$r"); done
    timeout 30 python3 "$here/lib/rl_milter.py" session --port "$MXGATE_PORT" --ip 192.0.2.7 \
        --sender "$sender" "${args[@]}" --end data 2>&1 | grep -Ev '^(ms=|CONNECT |HELO )'
}
# steps OUTPUT: the steps on one line, for the test names.
steps() { tr '\n' ' ' <<<"$1" | sed 's/ $//'; }
# logged TEXT: a log line has TEXT (fixed string), within 5 s.
logged() { wait_for "grep -qF -- $(printf '%q' "$1") '$log'" 5; }

# The three cases; each phase uses its own senders (counters stay across a
# reload).  $1 is the phase: "dry" or "live".
quota_case() {
    session "<q-$1@example.net>" "<full@example.org>" "<room@example.org>"
}
ratelimit_case() {
    session "<rl-$1@example.net>" "<room@example.org>" "<room+2@example.org>"
}
overload_case() {
    session "<ov-$1@example.net>" "<room@example.org>"
}
full_reply="552 5.2.2 <full@example.org>: Recipient address rejected: Mailbox full"
busy_reply="451 4.3.2 Server busy, try again later"

# expect NAME PATTERN OUT: a point: OUT, a session's steps, matches PATTERN
# (a glob).
expect() {
    # shellcheck disable=SC2053 # PATTERN is a glob
    [[ $3 == $2 ]]
    tap_result $? "$1 ($(steps "$3"))"
}
# warned NAME TEXT...: a point: one reject_warning line has every TEXT.
warned() {
    local name=$1 lines t
    shift
    wait_for "grep -qF 'reject_warning: ' '$log'" 5
    lines=$(grep -F 'reject_warning: ' "$log")
    for t in "$@"; do lines=$(grep -F -- "$t" <<<"$lines"); done
    [[ -n $lines ]]
    tap_result $? "$name" || tap_diag "$(grep -F 'reject_warning: ' "$log")"
}
accepted=$'MAIL c\nRCPT c\nRCPT c\nDATA a'
client="client.example.net[192.0.2.7]"

# ---- dry_run = true -----------------------------------------------------------
expect "dry run, quota: the full mailbox is not refused, the message is accepted" \
    "$accepted" "$(quota_case dry)"
warned "dry run, quota: the refusal it would give is logged as reject_warning" \
    "NOQUEUE: reject_warning: RCPT from $client: $full_reply; from=<q-dry@example.net> to=<full@example.org>" \
    "check=quota"
expect "dry run, rate limit: the recipient over the limit is not refused" \
    "$accepted" "$(ratelimit_case dry)"
warned "dry run, rate limit: the refusal it would give is logged as reject_warning" \
    "NOQUEUE: reject_warning: RCPT from $client: 450 4.7.1 " 'Rate limit "rcpts" exceeded' \
    "from=<rl-dry@example.net> to=<room+2@example.org>" "check=ratelimit"
: >"$flag"
logged "entering overload state: flag file $flag exists"
tap_result $? "dry run, overload: the flag file puts mxgate in overload state"
expect "dry run, overload: unauthenticated MAIL is not refused" \
    $'MAIL c\nRCPT c\nDATA a' "$(overload_case dry)"
warned "dry run, overload: the refusal it would give is logged as reject_warning" \
    "NOQUEUE: reject_warning: MAIL from $client: $busy_reply; from=<ov-dry@example.net>" "check=overload"
rm -f "$flag"
logged "leaving overload state: flag file $flag is gone"
tap_result $? "dry run, overload: the flag file removed, the overload state ends"
! grep -qF ': reject: ' "$log"
tap_result $? "dry run: no reject line at all" || tap_diag "$(grep -F ': reject: ' "$log")"

# ---- the same configuration with dry_run = false refuses each -----------------
write_conf false
kill -USR1 "$mxpid"
logged "configuration reloaded"
tap_result $? "SIGUSR1: reloaded with dry_run = false"
expect "live, quota: the full mailbox is refused with 552, the other accepted" \
    $'MAIL c\nRCPT y '"$full_reply"$'\nRCPT c\nDATA a' "$(quota_case live)"
expect "live, rate limit: the recipient over the limit gets 450 4.7.1" \
    $'MAIL c\nRCPT c\nRCPT y 450 4.7.1 *Rate limit "rcpts" exceeded*\nDATA a' "$(ratelimit_case live)"
: >"$flag"
wait_for "(( \$(grep -cF 'entering overload state' '$log') == 2 ))" 5
expect "live, overload: unauthenticated MAIL gets $busy_reply" \
    "MAIL y $busy_reply"$'\nABORT' "$(overload_case live)"
rm -f "$flag"
(($(grep -cF ': reject: ' "$log") == 3))
tap_result $? "live: the three refusals are logged as reject ($(grep -cF ': reject: ' "$log"))"

mxgate_stop_check "$mxpid" "$log" "mxgate"
mxpid=
tap_done
exit 0
