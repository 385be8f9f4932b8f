#!/bin/bash
# tests/e2e/sendmail.sh -- mxgate under a real Sendmail (Debian's
# sendmail-bin, unpacked beside Postfix by tests/e2e/lib/sendmail.sh) with
# INPUT_MAIL_FILTER pointing at it: negotiation, the HELO (own names too), quota and
# rate-limit refusals (count = "bytes" too, at end of message and at MAIL)
# with their exact texts as a client sees them through Sendmail (swaks),
# Sendmail's own log lines for them, a message that passes and reaches
# smtp-sink (counted by the bytes rule at end of message), and the overload
# check counting Sendmail's queue (qf files, queue_format = "sendmail") as
# it fills and drains.
#
# Two instances: A (delivers at once) with an mxgate doing helo, quota
# (maildirsize files, no SQL) and rate limits (in-process counters); B
# (queue only, delivered on demand with sendmail -q) with an mxgate doing
# only the overload check on B's queue.  Sendmail prefixes a 4xx reply of a
# milter with "<address>... "; the assertions take the text after it.
#
# TAP on stdout; exit 0 after the results, 99 for a harness failure.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"
. "$here/lib/sendmail.sh"

[[ -x $MXGATE ]] || bail "no daemon at $MXGATE (set MXGATE)"
[[ $(id -u) == 0 ]] || bail "needs root (Sendmail daemon, namespaces)"
pf_need_packages swaks "${PF_PACKAGES[@]}" || bail "cannot install packages"
sm_setup || bail "cannot set up Sendmail"

tmp=$(mktemp -d /tmp/mxgate-sendmail.XXXXXX) || bail "mktemp"
chmod 0755 "$tmp"
mxpids=()
cleanup() {
    local p
    sm_stop_all
    for p in "${mxpids[@]}"; do pf_kill_pid "$p" 5; done
    rm -rf "$tmp"
    rm -f "${TMPDIR:-/tmp}/.mxgate-e2e-ports.$$"
}
trap cleanup EXIT

# start_mxgate NAME CONF-TEXT: an mxgate on a free port; sets $milter.
start_mxgate() {
    local name=$1
    printf '%s\n' "$2" >"$tmp/$name.conf"
    mxgate_start "$tmp/$name.conf" "$tmp/$name.log" ||
        { cat "$tmp/$name.log" >&2; bail "mxgate $name did not start"; }
    mxpids+=("$MXGATE_PID")
    milter="inet:$MXGATE_PORT@127.0.0.1"
}

# reply_of STEP-PATTERN SWAKS-ARGS...: the last reply line of the session
# that matches a 2xx/4xx/5xx code, after dropping Sendmail's "<addr>... "
# prefix; the whole transcript is in $tmp/swaks.out.
last_reply() {
    pf_swaks_replies "$@" >"$tmp/swaks.out"
    grep -E '^[245][0-9][0-9] ' "$tmp/swaks.out" | grep -vE '^(221|220) ' | tail -1 |
        sed -E 's/^([45][0-9][0-9] [45]\.[0-9]+\.[0-9]+) <[^>]*>\.\.\. /\1 /'
}

# expect NAME WANT GOT: ok when GOT is WANT exactly; shows both otherwise.
expect() {
    if [[ $3 == "$2" ]]; then
        tap_result 0 "$1"
    else
        tap_result 1 "$1"
        tap_diag "want: $2" "got:  $3" "$(cat "$tmp/swaks.out")"
    fi
}

# ---- instance A: helo, quota, rate limits ------------------------------------
vmail=$tmp/vmail
mkdir -p "$vmail/example.org/full/cur" "$vmail/example.org/full/new" \
    "$vmail/example.org/room/cur" "$vmail/example.org/room/new"
printf '10000S\n20000 5\n' >"$vmail/example.org/full/maildirsize"
printf '1000000000S\n100 1\n' >"$vmail/example.org/room/maildirsize"
chmod -R a+rX "$vmail"
start_mxgate a "trusted_networks = [ ];
helo: { enabled = true; reject_own_names = [ \"mail.example.org\" ]; };
quota: { enabled = true; maildir_root = \"$vmail\"; maildir_template = \"%d/%l/\"; };
overload: { enabled = false; };
ratelimit: {
  enabled = true;
  rules = (
    { name = \"sender\"; key = [ \"sender\" ]; count = \"messages\"; limits = [ \"2/1h\" ];
      classes = ( { match = \"flood@example.net\"; limits = [ \"2/1h\" ]; },
                  { match = \"*\"; limits = [ ]; } ); },
    { name = \"rcpt\"; key = [ \"recipient\" ]; count = \"recipients\"; limits = [ \"1/1h\" ];
      classes = ( { match = \"limited@example.org\"; limits = [ \"1/1h\" ]; },
                  { match = \"*\"; limits = [ ]; } ); },
    { name = \"volume\"; key = [ \"sender\" ]; count = \"bytes\";
      classes = ( { match = \"big*@example.net\"; limits = [ \"4K/1h\" ]; },
                  { match = \"*\"; limits = [ ]; } ); }
  );
};"
milter_a=$milter
a=$tmp/a
port_a=$(pf_free_port) sink_a=$(pf_free_port)
SM_DELIVERY_MODE=background sm_start "$a" "$port_a" "$sink_a" "$milter_a" || bail "Sendmail A did not start"

wait_for "grep -q 'Milter (mxgate): init success to negotiate' '$a/syslog'" 5
tap_result $? "Sendmail negotiated with mxgate (its log: init success to negotiate)"

got=$(last_reply --port "$port_a" --helo badhelo --from a@example.net --to room@example.org)
expect "non-FQDN HELO refused at RCPT through Sendmail, with Postfix's text" \
    "504 5.5.2 <badhelo>: Helo command rejected: need fully-qualified hostname" "$got"
wait_for "grep -q 'Milter: to=<room@example.org>, reject=504 5.5.2 <badhelo>: Helo command rejected' '$a/syslog'" 5
tap_result $? "Sendmail logged the milter's HELO refusal"
tap_result "$(grep -q 'reject: RCPT from .*504 5.5.2 <badhelo>.*check=helo' "$tmp/a.log"; echo $?)" \
    "mxgate logged the decision line for the HELO refusal"

got=$(last_reply --port "$port_a" --helo 'bad#name.example.net' --from a@example.net --to room@example.org)
# Sendmail itself refuses most bad characters at HELO, not '#'; the syntax
# check runs first, as with Postfix's "reject_invalid_helo_hostname,
# reject_non_fqdn_helo_hostname", so the reply is 501 "Invalid name".
expect "syntactically bad HELO refused through Sendmail, as Postfix would" \
    "501 5.5.2 <bad#name.example.net>: Helo command rejected: Invalid name" "$got"

got=$(last_reply --port "$port_a" --helo '[192.0.2.300]' --from a@example.net --to room@example.org)
expect "malformed address literal refused through Sendmail" \
    "501 5.5.2 <[192.0.2.300]>: Helo command rejected: invalid ip address" "$got"

# Own names: a listed name, and Sendmail's {daemon_addr} (Addr=127.0.0.1) as a literal.
got=$(last_reply --port "$port_a" --helo Mail.Example.Org --from a@example.net --to room@example.org)
expect "own-name HELO (listed, other case) refused at RCPT through Sendmail" \
    "554 5.7.1 <Mail.Example.Org>: Helo command rejected: You are not me" "$got"
got=$(last_reply --port "$port_a" --helo '[127.0.0.1]' --from a@example.net --to room@example.org)
expect "HELO with Sendmail's own address ({daemon_addr}) as a literal refused through Sendmail" \
    "554 5.7.1 <[127.0.0.1]>: Helo command rejected: You are not me" "$got"
tap_result "$(grep -q 'reject: RCPT from .*554 5.7.1 <\[127.0.0.1\]>: Helo command rejected: You are not me.*check=helo' \
    "$tmp/a.log"; echo $?)" "mxgate logged the decision line for the own-address refusal"

got=$(last_reply --port "$port_a" --helo client.example.net --from a@example.net --to full@example.org)
expect "full mailbox refused at RCPT through Sendmail" \
    "552 5.2.2 <full@example.org>: Recipient address rejected: Mailbox full" "$got"
wait_for "grep -q 'Milter: to=<full@example.org>, reject=552 5.2.2' '$a/syslog'" 5
tap_result $? "Sendmail logged the milter's quota refusal"

sink0=$(find "$a/sink" -type f | wc -l)
got=$(last_reply --port "$port_a" --helo client.example.net --from a@example.net --to room@example.org --data)
tap_result "$([[ $got == "250 2.0.0 "*"Message accepted for delivery" ]]; echo $?)" \
    "a message to a mailbox with room is accepted ($got)"
wait_for "(( \$(find '$a/sink' -type f | wc -l) > $sink0 ))" 20
tap_result $? "and Sendmail delivered it to smtp-sink"

# Rate limits: "messages" at MAIL (two accepted, the third refused) ...
for i in 1 2; do
    got=$(last_reply --port "$port_a" --helo client.example.net --from flood@example.net \
        --to room@example.org --data)
    tap_result "$([[ $got == "250 "* ]]; echo $?)" "rate limit: message $i of 2 from flood@example.net accepted ($got)"
done
got=$(last_reply --port "$port_a" --helo client.example.net --from flood@example.net --to room@example.org)
expect "rate limit: the third message is refused at MAIL with its text through Sendmail" \
    '450 4.7.1 <flood@example.net>: Rate limit "sender" exceeded, try again later' "$got"
# ... and "recipients" at RCPT (one accepted, the next refused).
got=$(last_reply --port "$port_a" --helo client.example.net --from a@example.net --to limited@example.org --data)
tap_result "$([[ $got == "250 "* ]]; echo $?)" "rate limit: first recipient event for limited@example.org accepted ($got)"
got=$(last_reply --port "$port_a" --helo client.example.net --from a@example.net --to limited@example.org)
expect "rate limit: the next one is refused at RCPT with its text through Sendmail" \
    '450 4.7.1 <limited@example.org>: Rate limit "rcpt" exceeded, try again later' "$got"
wait_for "grep -q 'reject=450 4.7.1 <limited@example.org>: Rate limit' '$a/syslog'" 5
tap_result $? "Sendmail logged the milter's rate-limit refusal"
# Bytes: without SIZE= (swaks sends none) the real size, at end of message;
# with SIZE= the declared size, at MAIL.
python3 -c 'import sys; sys.stdout.write(("0123456789" * 7 + "abcdef\n") * 80)' >"$tmp/6k"
got=$(last_reply --port "$port_a" --helo client.example.net --from big@example.net \
    --to room@example.org --data --swaks-opt --body --swaks-opt "@$tmp/6k")
expect "bytes: 6 KB without SIZE= over a 4 KB limit is refused at end of message through Sendmail" \
    '450 4.7.1 <big@example.net>: Rate limit "volume" exceeded, try again later' "$got"
tap_result "$(grep -q 'reject: END-OF-MESSAGE from .*<big@example.net>: Rate limit "volume".*check=ratelimit' \
    "$tmp/a.log"; echo $?)" "mxgate logged it at END-OF-MESSAGE"
got=$(pf_smtp_mail "$port_a" "<big2@example.net> SIZE=6000" room@example.org | head -1 |
    sed -E 's/^([45][0-9][0-9] [45]\.[0-9]+\.[0-9]+) <[^>]*>\.\.\. /\1 /')
expect "bytes: SIZE=6000 is refused at MAIL through Sendmail" \
    '450 4.7.1 <big2@example.net>: Rate limit "volume" exceeded, try again later' "$got"
got=$(last_reply --port "$port_a" --helo client.example.net --from big3@example.net \
    --to room@example.org --data)
tap_result "$([[ $got == "250 "* ]]; echo $?)" "bytes: a small message under the limit is accepted ($got)"
tap_result "$(kill -0 "${mxpids[0]}" 2>/dev/null; echo $?)" "mxgate A still runs"

# ---- instance B: overload from Sendmail's queue -------------------------------
b=$tmp/b
mkdir -p "$b/mqueue"
start_mxgate b "trusted_networks = [ ];
helo: { enabled = false; };
quota: { enabled = false; };
ratelimit: { enabled = false; };
overload: { enabled = true; queue_directory = \"$b/mqueue\"; queue_format = \"sendmail\";
            queue_high = 3; queue_low = 1; sample_interval = 1; };"
milter_b=$milter
port_b=$(pf_free_port) sink_b=$(pf_free_port)
SM_DELIVERY_MODE=queueonly sm_start "$b" "$port_b" "$sink_b" "$milter_b" || bail "Sendmail B did not start"

queued=0
for i in 1 2 3; do
    got=$(last_reply --port "$port_b" --helo client.example.net --from a@example.net --to room@example.org --data)
    [[ $got == "250 "* ]] && queued=$((queued + 1))
done
tap_result "$([[ $queued == 3 ]]; echo $?)" "overload: three messages accepted while the queue is short ($queued)"
tap_result "$([[ $(sm_queue_count "$b") == 3 ]]; echo $?)" \
    "Sendmail holds them in its queue as qf files ($(sm_queue_count "$b"))"
wait_for "grep -q 'entering overload state' '$tmp/b.log'" 5
tap_result $? "mxgate's sampler counted Sendmail's queue and entered overload"
got=$(last_reply --port "$port_b" --helo client.example.net --from a@example.net --to room@example.org)
expect "overload: with 3 messages queued (queue_high = 3), MAIL gets the overload reply through Sendmail" \
    "451 4.3.2 Server busy, try again later" "$got"
sm_run_queue "$b"
wait_for "(( \$(sm_queue_count '$b') == 0 ))" 30
tap_result $? "sendmail -q delivered the queue ($(find "$b/sink" -type f | wc -l) at the sink)"
wait_for "grep -q 'leaving overload state' '$tmp/b.log'" 5
tap_result $? "mxgate left overload once the queue fell to queue_low"
got=$(last_reply --port "$port_b" --helo client.example.net --from a@example.net --to room@example.org)
tap_result "$([[ $got == "250 "* ]]; echo $?)" "overload: after the queue drained (queue_low = 1), mail is accepted again ($got)"
tap_result "$([[ $(grep -c 'entering overload state' "$tmp/b.log") == 1 ]]; echo $?)" \
    "entering overload was logged once"

sm_stop_all
mxgate_stop_checks "mxgate A" "${mxpids[0]:-}" "$tmp/a.log" "mxgate B" "${mxpids[1]:-}" "$tmp/b.log"
mxpids=()
tap_done
exit 0
