#!/bin/bash
# tests/e2e/message_size.sh - what a message's size does: count = "bytes"
# rate rules and quota.check_real_size.
#   1. milter level (lib/milter_wire.py, so every flag and reply is seen):
#      header and body events are negotiated only for a configuration
#      that needs them; a message with SIZE= is accepted at DATA (no
#      header or body events), one without goes on to end of message;
#      the size counted is exact (a rule of exactly that many bytes
#      admits it, one byte less refuses it).
#   2. through a private Postfix and swaks, first with the in-process
#      counters, then reloaded onto a real memcached: without SIZE= a
#      message over the byte limit is refused at end of message with the
#      rule's text; with SIZE= at MAIL; a message under the limit is
#      delivered with its header and body unchanged, and is charged
#      (the next one goes over), while a refused one is not; a message
#      whose real size pushes its only recipient over quota gets the
#      quota reply at end of message, and one with a second recipient
#      with room is accepted and logged.
# TAP on stdout; exit 0 after the results, 99 when the harness cannot run.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"
. "$here/lib/memcached.sh"

[[ -x $MXGATE ]] || bail "no daemon at $MXGATE (set MXGATE)"
command -v python3 >/dev/null || pf_need_packages python3 >&2 || bail "python3 missing"
command -v swaks >/dev/null || pf_need_packages swaks >&2 || bail "swaks missing"
mc_need_package || bail "cannot install memcached"
export PYTHONPATH=$here/lib${PYTHONPATH:+:$PYTHONPATH}

mxpid=
e2e_work size mxpid
log=$work/mxgate.log

# A mailbox with 2000 bytes left (10000, 8000 used) and one with room.
vmail=$work/vmail
for box in near:'10000S\n8000 4\n' room:'1000000S\n10 1\n'; do
    mkdir -p "$vmail/example.org/${box%%:*}"/{cur,new,tmp}
    printf "${box#*:}" >"$vmail/example.org/${box%%:*}/maildirsize"
done

conf=$work/mxgate.conf
# write_conf [MEMCACHED-SERVER]: the configuration, replaced by rename.
# Rule "user" gives SASL user u1 300 bytes an hour, u2 299, u3 to u5 500;
# rule "second" sends the second message of u3 and u4 on to end of message
# (a warning), where a SIZE= charge is corrected to the real size.
write_conf() {
    cat >"$conf.new" <<EOF
trusted_networks = [ ];
helo: { enabled = false; };
quota: { maildir_root = "$vmail"; maildir_template = "%d/%l/"; cache_ttl = 0;
         check_real_size = true; };
memcached: { servers = [ ${1:+\"$1\"} ]; on_error = "tempfail"; };
ratelimit: { rules = (
  { name = "volume"; key = [ "sender" ]; count = "bytes"; limits = [ "20K/1h" ]; },
  { name = "user"; key = [ "sasl_user" ]; count = "bytes";
    classes = ( { match = "u1"; limits = [ "300/1h" ]; }, { match = "u2"; limits = [ "299/1h" ]; },
                { match = "u[3-5]"; limits = [ "500/1h" ]; } ); },
  { name = "second"; key = [ "sasl_user" ]; count = "messages"; action = "warn";
    classes = ( { match = "u[34]"; limits = [ "1/1h" ]; } ); }
); };
EOF
    mv -f "$conf.new" "$conf"
}
write_conf
mxgate_start "$conf" "$log" 20 || { sed 's/^/# /' "$log"; bail "mxgate did not start"; }
mxpid=$MXGATE_PID mport=$MXGATE_PORT

# finish: stop mxgate (status 0, no sanitizer report: a point) and end.
finish() {
    [[ -n $mxpid ]] && mxgate_stop_check "$mxpid" "$log" mxgate
    mxpid=
    mc_stop_all
    tap_done
    exit 0
}

# ---- 1. milter level ---------------------------------------------------------
cat >"$work/size_client.py" <<'EOF'
"""size_client.py PORT: milter-level sessions; one "NAME: RESULT" line each."""
import sys
sys.dont_write_bytecode = True
from milter_wire import Milter, SMFIF_ALL, SMFIP_ALL, SMFIP_NOHDRS, SMFIP_NOBODY, \
    SMFIP_SKIP, SMFIP_RCPT_REJ, SMFIP_HDR_LEADSPC

port = int(sys.argv[1])
offer = SMFIP_ALL & ~(SMFIP_SKIP | SMFIP_RCPT_REJ | SMFIP_HDR_LEADSPC)

def session(sender, size=None, user=None, headers=(), body=b"", abort=False):
    m = Milter(port, 10).optneg(6, SMFIF_ALL, offer)
    wants = "headers" if not m.pflags & (SMFIP_NOHDRS | SMFIP_NOBODY) else "no headers"
    m.connect(addr=b"192.0.2.44")
    m.helo(b"client.example.net")
    args = [sender] + ([b"SIZE=%d" % size] if size else [])
    r = m.mail(*args, macros={b"{auth_authen}": user} if user else None)
    steps = ["MAIL " + r.code + ((" " + r.text) if r.code == "y" else "")]
    if r.code == "c":
        steps.append("RCPT " + m.rcpt(b"<room@example.org>").code)
        if abort:
            m.abort()
            m.quit()
            return wants + "; " + ", ".join(steps)
        r = m.data()
        steps.append("DATA " + r.code)
        if r.code == "c":
            for name, value in headers:
                m.step("header", name + b"\0" + value + b"\0")
            m.step("eoh")
            if body:
                m.step("body", body)
            r = m.eom()
            steps.append("EOM " + r.code + ((" " + r.text) if r.code == "y" else ""))
    m.quit()
    return wants + "; " + ", ".join(steps)

# 300 bytes: "Subject: x" CRLF (12) + "X-Pad: " 13 bytes CRLF (22) + CRLF (2) + 264 of body.
hdrs = [(b"Subject", b"x"), (b"X-Pad", b"0123456789abc")]
body = b"y" * 262 + b"\r\n"
print("with SIZE=: " + session(b"<s1@example.net>", size=1000))
print("without SIZE=: " + session(b"<s2@example.net>", headers=hdrs, body=body))
print("300 bytes, limit 300: " + session(b"<s3@example.net>", user=b"u1", headers=hdrs, body=body))
print("300 bytes, limit 299: " + session(b"<s4@example.net>", user=b"u2", headers=hdrs, body=body))
# u3: 1 byte, then SIZE=100 for 300 real (corrected: 301), then SIZE=200 is over 500.
# u4: 1 byte, then SIZE=400 for 300 real (corrected: 301), then SIZE=199 fits.
for user, declared, last in ((b"u3", 100, 200), (b"u4", 400, 199)):
    u = user.decode()
    print("%s first: %s" % (u, session(b"<c@example.net>", size=1, user=user)))
    print("%s declared %d: %s" % (u, declared,
          session(b"<c@example.net>", size=declared, user=user, headers=hdrs, body=body)))
    print("%s then %d: %s" % (u, last,
          session(b"<c@example.net>", size=last, user=user, headers=hdrs, body=body)))
# u5: SIZE=400 charged at MAIL, then the transaction aborts: the 400 bytes
# are given back, so another SIZE=400 fits the 500-byte limit.
print("u5 aborted: " + session(b"<c@example.net>", size=400, user=b"u5", abort=True))
print("u5 then 400: " + session(b"<c@example.net>", size=400, user=b"u5"))
EOF
out=$(timeout 60 python3 "$work/size_client.py" "$mport" 2>&1)
line() { sed -n "s/^$1: //p" <<<"$out"; }
tap_check "a configuration with bytes rules negotiates header and body events" \
    test "$(line 'with SIZE=' | cut -d';' -f1)" = headers
tap_check "with SIZE=: charged at MAIL, accepted at DATA (no header or body events)" \
    test "$(line 'with SIZE=' | cut -d';' -f2)" = " MAIL c, RCPT c, DATA a"
tap_check "without SIZE=: the message goes on to end of message" \
    test "$(line 'without SIZE=' | cut -d';' -f2)" = " MAIL c, RCPT c, DATA c, EOM c"
tap_check "a message of 300 bytes is admitted by a 300-byte limit" \
    test "$(line '300 bytes, limit 300' | cut -d';' -f2)" = " MAIL c, RCPT c, DATA c, EOM c"
tap_check "...and refused by a 299-byte limit, at end of message, with the rule's text" \
    test "$(line '300 bytes, limit 299' | cut -d';' -f2)" = \
    ' MAIL c, RCPT c, DATA c, EOM y 450 4.7.1 <u2>: Rate limit "user" exceeded, try again later'
tap_check "SIZE=100 for a 300-byte message that goes on to end of message: corrected up" \
    test "$(line 'u3 declared 100' | cut -d';' -f2)" = " MAIL c, RCPT c, DATA c, EOM c"
tap_check "...so that SIZE=200 more is over the 500-byte limit, at MAIL" \
    test "$(line 'u3 then 200' | cut -d';' -f2)" = \
    ' MAIL y 450 4.7.1 <u3>: Rate limit "user" exceeded, try again later'
tap_check "SIZE=400 for the same 300 bytes: corrected down, so SIZE=199 more fits" \
    test "$(line 'u4 then 199' | cut -d';' -f2)" = " MAIL c, RCPT c, DATA c, EOM c"
tap_check "a SIZE= charge of a transaction that aborts is given back" \
    test "$(line 'u5 aborted' | cut -d';' -f2);$(line 'u5 then 400' | cut -d';' -f2)" = \
    " MAIL c, RCPT c; MAIL c, RCPT c, DATA a"
[[ $out == *"EOM y 450"* && $out == *"u5 then 400: headers; MAIL c"* ]] || tap_diag "$out"
# (The third message of u4 goes on to end of message too: "second" warns again.)
tap_check "the refusal is logged at END-OF-MESSAGE" \
    grep -q 'NOQUEUE: reject: END-OF-MESSAGE from .*: 450 4.7.1 <u2>: Rate limit "user" exceeded.*check=ratelimit' "$log"

# ---- 2. through Postfix ------------------------------------------------------
pf=$work/pf
pf_start_milter "$pf" "$mport" || finish

# file NAME BYTES: a body file of about BYTES in lines of 76 characters.
file() {
    python3 -c 'import sys; n = int(sys.argv[1]); line = "0123456789" * 7 + "abcdef\n"
sys.stdout.write(line * (n // len(line)))' "$2" >"$work/$1"
}
file small 5000
file medium 10000
file over 16000
file big 30000
file q3k 3000
file q1k 1000

# send FROM TO BODYFILE: swaks's reply lines for one message.
send() {
    pf_swaks_replies --port "$port" --from "$1" --to "$2" --data \
        --swaks-opt --header --swaks-opt "X-Mxgate-Test: $3 for $1" \
        --swaks-opt --body --swaks-opt "@$work/$3"
}
# after_data OUT: the reply to the end of the message (the line after 354).
after_data() { sed -n '/^354 /{n;p;q}' <<<"$1"; }
# sink_has FROM BODYFILE: one message in the sink from FROM, with the test
# header once and, after the empty line, the body as sent, byte for byte.
sink_has() {
    wait_for "grep -rlqs 'X-Mxgate-Test: $2 for $1' '$pf/sink'" 15 ||
        { tap_diag "no sink copy has X-Mxgate-Test: $2 for $1" \
            "$(find "$pf/sink" -type f | head -3)" "$(grep -rh X-Mxgate "$pf/sink" | head -3)"; return 1; }
    python3 - "$1" "$2" "$work/$2" "$pf/sink" <<'EOF'
import os, sys
sender, name, path, sink = sys.argv[1:]
# smtp-sink writes lines ending LF, and empty lines after the message.
want = open(path, "rb").read().rstrip(b"\n")
hits = [open(os.path.join(sink, f), "rb").read().replace(b"\r\n", b"\n").rstrip(b"\n")
        for f in os.listdir(sink)]
hits = [h for h in hits if b"X-Mxgate-Test: " + name.encode() + b" for " + sender.encode() in h]
ok = len(hits) == 1 and hits[0].count(b"\nX-Mxgate-Test: ") == 1 and \
    hits[0].endswith(want) and hits[0][:-len(want)].endswith(b"\n\n")
if not ok:
    for h in hits:
        print("# sink copy: %d bytes, ends with %r" % (len(h), h[-120:]))
        print("# sent body: %d bytes, ends with %r" % (len(want), want[-120:]))
sys.exit(0 if ok else 1)
EOF
}

# postfix_cases PHASE: the Postfix points, with senders of their own.
postfix_cases() {
    local p=$1 out got
    out=$(send "big-$p@example.net" room@example.org big)
    got=$(after_data "$out")
    tap_check "$p: no SIZE=, 30 KB over a 20 KB limit: refused at end of message with the rule's text" \
        test "$got" = "450 4.7.1 <big-$p@example.net>: Rate limit \"volume\" exceeded, try again later"
    [[ $got == 450* ]] || tap_diag "$out"
    got=$(pf_smtp_mail "$port" "<big-$p@example.net> SIZE=30000" room@example.org | head -1)
    tap_check "$p: SIZE=30000: refused at MAIL with the rule's text" \
        test "$got" = "450 4.7.1 <big-$p@example.net>: Rate limit \"volume\" exceeded, try again later"
    out=$(send "small-$p@example.net" room@example.org small)
    tap_check "$p: a 5 KB message under the limit is queued" grep -q '^250 2.0.0 Ok: queued' <<<"$out"
    tap_check "$p: ...and reaches the sink with its header and body unchanged" \
        sink_has "small-$p@example.net" small
    out=$(send "small-$p@example.net" room@example.org over)
    tap_check "$p: it was charged: 16 KB more from the same sender is refused at end of message" \
        test "$(after_data "$out")" = \
        "450 4.7.1 <small-$p@example.net>: Rate limit \"volume\" exceeded, try again later"
    out=$(send "small-$p@example.net" room@example.org medium)
    tap_check "$p: the refused 16 KB was not charged: 10 KB more is queued" \
        grep -q '^250 2.0.0 Ok: queued' <<<"$out"
    out=$(send "q-$p@example.net" near@example.org q3k)
    tap_check "$p: no SIZE=, 3 KB to a mailbox with 2000 bytes left: quota reply at end of message" \
        test "$(after_data "$out")" = \
        "552 5.2.2 <near@example.org>: Recipient address rejected: Mailbox full"
    out=$(send "q2-$p@example.net" near@example.org,room@example.org q3k)
    tap_check "$p: the same to it and a mailbox with room: queued" \
        grep -q '^250 2.0.0 Ok: queued' <<<"$out"
    tap_check "$p: ...and logged as over quota for 1 of its 2 recipients" \
        wait_for "grep -q 'accepted although 1 of its 2 recipients are over quota' '$log'" 5
    out=$(send "q3-$p@example.net" near@example.org q1k)
    tap_check "$p: 1 KB to the nearly full mailbox: queued" grep -q '^250 2.0.0 Ok: queued' <<<"$out"
}

postfix_cases local
# The same on a real memcached, by reload.
mc=$(pf_free_port) || bail "no free port"
mc_start "$work" mc "$mc" || bail "memcached did not start"
write_conf "127.0.0.1:$mc"
kill -USR1 "$mxpid"
tap_check "reloaded onto memcached" wait_for "grep -q 'counters now in memcached' '$log'" 10
postfix_cases memcached
key=$(python3 "$here/lib/rl_milter.py" key --rule volume --period 3600 \
    --part "sender=small-memcached@example.net")
n=$(mc_get "$mc" "$key")
tap_check "memcached holds the bytes of the two messages kept (15 KB and their headers: $n)" \
    test "${n:-0}" -gt 15000 -a "${n:-0}" -le 20480

# Without bytes rules and check_real_size, the same mxgate (reloaded) asks
# for no header or body events, and a message without SIZE= is accepted at
# DATA: configurations without these features cost what they did before.
sed -e '/count = "bytes"/,/} ); },/d' -e 's/check_real_size = true;//' "$conf" >"$conf.new" &&
    mv -f "$conf.new" "$conf"
kill -USR1 "$mxpid"
tap_check "reloaded without bytes rules or check_real_size" \
    wait_for "test \$(grep -c 'configuration reloaded' '$log') -ge 2" 10
cat >"$work/plain_client.py" <<'EOF'
"""plain_client.py PORT: one milter-level session without SIZE=."""
import sys
sys.dont_write_bytecode = True
from milter_wire import Milter, SMFIF_ALL, SMFIP_ALL, SMFIP_NOHDRS, SMFIP_NOBODY, \
    SMFIP_SKIP, SMFIP_RCPT_REJ, SMFIP_HDR_LEADSPC

m = Milter(int(sys.argv[1]), 10).optneg(
    6, SMFIF_ALL, SMFIP_ALL & ~(SMFIP_SKIP | SMFIP_RCPT_REJ | SMFIP_HDR_LEADSPC))
both = SMFIP_NOHDRS | SMFIP_NOBODY
wants = "no headers" if m.pflags & both == both else "headers"
m.connect(addr=b"192.0.2.45")
m.helo(b"client.example.net")
steps = ["MAIL " + m.mail(b"<plain@example.net>").code, "RCPT " + m.rcpt(b"<room@example.org>").code,
         "DATA " + m.data().code]
m.quit()
print(wants + "; " + ", ".join(steps))
EOF
out=$(timeout 30 python3 "$work/plain_client.py" "$mport" 2>&1)
tap_check "without them no header or body events are negotiated, and no SIZE= is accepted at DATA" \
    test "$out" = "no headers; MAIL c, RCPT c, DATA a"
[[ $out == "no headers; MAIL c, RCPT c, DATA a" ]] || tap_diag "$out"

pf_stop "$pf"
finish
