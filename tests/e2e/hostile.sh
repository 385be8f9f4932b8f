#!/bin/bash
# hostile.sh - hostile input never crashes mxgate (its worst outcome is a
# temporary refusal): any HELO, address or ESMTP parameter of any length or
# byte content, missing and malformed macros, malformed milter packets,
# abrupt disconnects, 200 concurrent sessions.  After each attack the
# daemon must still be running and answer a normal session correctly; a
# refusal's reply must stay valid for libmilter (code and DSN, no CR/LF,
# '%' doubled, at most 980 bytes).
#
# Three clients:
#  * a raw milter-protocol client in Python 3 (written to the temporary
#    directory, on top of tests/e2e/lib/milter_wire.py), for what
#    miltertest cannot send: HELO/MAIL/RCPT of 64 KiB, NUL bytes,
#    truncated, oversized and garbage packets, odd negotiation; it also
#    reads the reply texts;
#  * miltertest, with tests/milter/lib.lua, for odd bytes of ordinary size,
#    missing macros and abrupt disconnects;
#  * 20 miltertest processes at once, each holding 10 sessions open.
# Macro packets with a name but no value (only a broken MTA sends them) are
# fed too: they crashed Debian's libmilter, and must not crash the engine.
# Each malformed packet has one outcome the raw client checks: a given
# reply, the connection closed within 10 s (no close by then is a hang and
# fails), or, for a packet not yet complete, silence while a new session is
# served.  Where the engines legitimately differ (libmilter closes where
# builtin answers), the expectation names the engine, read from mxgate's
# start line.  libmilter ignores a complete command out of sequence (no
# reply, no close: the MTA's own timeout applies, mxgate(8), "What
# libmilter does differently"); those points check exactly that: silence for 10 s,
# and a new session served meanwhile.
#
# Usage: hostile.sh [ATTACK...]  (names of the raw client's attack functions;
# default all).  Environment: MXGATE, abs_top_srcdir / srcdir, as for
# tests/milter/miltertest.sh.  TAP on stdout; the daemons listen on free
# 127.0.0.1 ports; bounded in time; everything started is stopped by pid and
# the temporary directory removed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
if [[ -n ${abs_top_srcdir:-} && -f $abs_top_srcdir/tests/milter/lib.lua ]]; then
    top=$abs_top_srcdir
elif [[ -n ${srcdir:-} && -f $srcdir/tests/milter/lib.lua ]]; then
    top=$(cd "$srcdir" && pwd)
else
    top=$(cd "$here/../.." && pwd)
fi
MXGATE=${MXGATE:-${abs_top_builddir:-$(pwd)}/mxgate}
. "$top/tests/e2e/lib/tap.sh"
. "$top/tests/e2e/lib/postfix.sh"
. "$top/tests/e2e/lib/mxgate.sh"

WORKERS=20               # concurrent miltertest processes
SESSIONS=10              # sessions each holds open at once

command -v miltertest >/dev/null 2>&1 || pf_need_packages miltertest >&2
command -v miltertest >/dev/null 2>&1 || {
    echo "1..0 # SKIP miltertest is not installed and could not be installed"; exit 0; }
command -v python3 >/dev/null 2>&1 || { echo "1..0 # SKIP python3 is missing"; exit 0; }
[[ -x $MXGATE ]] || { echo "Bail out! no mxgate at $MXGATE (set MXGATE)"; exit 99; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mxgate-hostile.XXXXXX") || { echo "Bail out! mktemp failed"; exit 99; }
daemon_pid=
worker_pids=()
cleanup() {
    local p
    for p in "${worker_pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    [[ -n $daemon_pid ]] && pf_kill_pid "$daemon_pid" 8
    rm -rf "$work"
    rm -f "${TMPDIR:-/tmp}/.mxgate-e2e-ports.$$"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the daemon ------------------------------------------------------------
printf 'trusted_networks = [ ];\n' >"$work/mxgate.conf"
log=$work/mxgate.log
if ! mxgate_start "$work/mxgate.conf" "$log"; then
    echo "Bail out! mxgate did not start: $(tail -n 5 "$log" 2>/dev/null | tr '\n' ' ')"
    exit 99
fi
daemon_pid=$MXGATE_PID
# The engine running, as its start line names it (logged just after the
# socket opens): the raw client's expectations differ by engine.
engine=
for ((i = 0; i < 100; i++)); do
    engine=$(sed -n 's/.* listening on .* (engine \([a-z]*\),.*/\1/p' "$log" | head -n 1)
    [[ -n $engine ]] && break
    sleep 0.1
done
[[ -n $engine ]] || { echo "Bail out! mxgate logged no start line naming its engine"; exit 99; }
[[ $engine == "${MXGATE_ENGINE:-libmilter}" ]]
tap_result $? "mxgate runs the engine asked for (${MXGATE_ENGINE:-libmilter}): $engine"
export HOSTILE_ENGINE=$engine
export MXGATE_PORT MXGATE_PID MXGATE_TEST_DIR=$top/tests/milter
export PYTHONPATH=$top/tests/e2e/lib${PYTHONPATH:+:$PYTHONPATH}   # milter_wire.py
t0=$SECONDS

# ---- 1. raw protocol client --------------------------------------------------
cat >"$work/rawmilter.py" <<'PY'
# rawmilter.py - sends, through tests/e2e/lib/milter_wire.py, what a real
# MTA would never send.  Prints "TAP ok - ..." / "TAP not ok - ..." lines.
# A hang is never
# taken for a close: outcome() tells "silent" (a timeout) from "closed".
import os, re, socket, struct, sys, time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree (make dist copies tests/e2e)
from milter_wire import Closed, Milter, MilterError, SMFIF_ALL, SMFIP_ALL, SMFIP_NR_CONN, SMFIP_NR_HELO

PORT = int(os.environ["MXGATE_PORT"])
PID = int(os.environ["MXGATE_PID"])
MAX_REPLY = 980                 # libmilter's MAXREPLYLEN
NOT_FQDN = b"Helo command rejected: need fully-qualified hostname"
INVALID = b"Helo command rejected: Invalid name"


ENGINE = os.environ.get("HOSTILE_ENGINE", "unknown")    # as mxgate's start line names it
BOUND = 10.0        # s: a reply or close later than this is a hang (generous for a loaded machine)
QUIET = 2.0         # s: how long a milter waiting for the rest of a packet must stay silent


def emit(s):
    print("TAP " + s.replace("\n", " ").replace("\r", " "), flush=True)


def check(cond, name, detail=None):
    emit(("ok - " if cond else "not ok - ") + name +
         ("" if cond or detail is None else " # " + str(detail)))
    return cond


def alive():
    try:
        with open("/proc/%d/stat" % PID) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def Conn(timeout=12.0):
    return Milter(PORT, timeout)


def session(helo=b"localhost", **kw):
    c = Conn().optneg(**kw)
    c.connect()
    c.helo(helo)
    return c


def reply_problem(rep, code=None):
    """None if rep is an SMFIR_REPLYCODE libmilter could have sent, else why not."""
    if not isinstance(rep, tuple):
        return "no reply (%s)" % rep
    cmd, data = rep
    if cmd != b"y":
        return "reply %r, not SMFIR_REPLYCODE" % cmd
    if not data.endswith(b"\0"):
        return "reply text not NUL-terminated"
    text = data[:-1]
    if len(data) > MAX_REPLY:
        return "reply of %d bytes (max %d)" % (len(data), MAX_REPLY)
    if b"\r" in text or b"\n" in text or b"\0" in text:
        return "CR, LF or NUL in the reply"
    if not re.match(rb"([45])[0-9][0-9] \1\.[0-9]{1,3}\.[0-9]{1,3} ", text):
        return "malformed code/DSN: %r" % text[:20]
    if any(len(r) % 2 for r in re.findall(rb"%+", text)):
        return "a '%' not doubled"
    if code is not None and not text.startswith(code):
        return "code %r, want %r" % (text[:9], code)
    return None


def check_refusal(rep, name, code=b"504 5.5.2 ", must_contain=NOT_FQDN):
    why = reply_problem(rep, code)
    if why is None and must_contain is not None and must_contain not in rep[1]:
        why = "text lacks %r: %r" % (must_contain, rep[1][:120])
    return check(why is None, name, why)


def check_invalid(rep, name):
    """A malformed name: the syntax check answers first, 501 Invalid name."""
    return check_refusal(rep, name, code=b"501 5.5.2 ", must_contain=INVALID)


def is_continue(rep):
    return isinstance(rep, tuple) and rep[0] == b"c"


def packet(cmd, data=b""):
    """One packet's bytes, as milter_wire's send() writes them."""
    return struct.pack(">I", len(data) + 1) + cmd + data


def describe(out):
    """An outcome() in words: "closed", "silent" or the packet."""
    return out if isinstance(out, str) else "packet %r %r" % (out[0], out[1][:60])


def write(c, data):
    """Write raw bytes; mxgate closing meanwhile is no error here (what it did
    is read next), a send that cannot go out is."""
    try:
        c.raw(data)
    except socket.timeout:
        return "mxgate stopped reading: the send timed out"
    except OSError:
        pass
    return None


def settle(conns, bound=BOUND):
    """What mxgate did on each connection within BOUND seconds of the last
    packet written: the first packet it sent, "closed" (EOF or reset) or
    "silent" (nothing at all: for a complete packet, a hang).  One deadline
    for all, so that a hang costs BOUND once."""
    deadline = time.time() + bound
    return [c.outcome(max(0.05, deadline - time.time())) for c in conns]


def closed(out):
    """None when the outcome is a close, else what it was."""
    if out == "closed":
        return None
    if out == "silent":
        return "neither a reply nor a close within %.0f s: a hang" % BOUND
    return "%s instead of a close" % describe(out)


def serving():
    """None when the daemon runs and gives a normal session the right
    answers at once (each reply within the client's timeout), else why not."""
    if not alive():
        return "the mxgate process is gone"
    try:
        c = session(b"localhost")
        m = c.mail(b"<sender@example.net>")
        r = c.rcpt(b"<rcpt@example.org>")
        c.quit()
        want = b"504 5.5.2 <localhost>: " + NOT_FQDN + b"\0"
        if not is_continue(m) or r != (b"y", want):
            return "MAIL %r, RCPT %r" % (m, r)
        c = session(b"mail.example.net")
        m, r = c.mail(b"<sender@example.net>"), c.rcpt(b"<rcpt@example.org>")
        c.quit()
        if not (is_continue(m) and is_continue(r)):
            return "good HELO: MAIL %r, RCPT %r" % (m, r)
    except Exception as e:
        return "%s: %s" % (type(e).__name__, e)
    return None


def probe(label):
    """The daemon runs and gives a normal session the right answers."""
    why = serving()
    return check(why is None, label + ": mxgate alive and answering", why)


def mail_rcpt_after(c):
    """Send MAIL and RCPT on c; their replies, or what happened instead."""
    try:
        m = c.mail(b"<sender@example.net>")
        r = c.rcpt(b"<rcpt@example.org>") if is_continue(m) else None
        return m, r
    except socket.timeout:
        return "silent", None
    except (Closed, OSError):
        return "closed", None


def want_refused(m, r):
    """None when MAIL continued and RCPT got HELO localhost's 504, else what came."""
    if is_continue(m) and reply_problem(r, b"504 5.5.2 ") is None and NOT_FQDN in r[1]:
        return None
    return "MAIL %s, RCPT %s" % (describe(m), describe(r) if r is not None else "not sent")


def want_continue(m, r):
    """None when MAIL and RCPT both continued, else what came."""
    if is_continue(m) and is_continue(r):
        return None
    return "MAIL %s, RCPT %s" % (describe(m), describe(r) if r is not None else "not sent")


# ---- the attacks: each a function; its checks, then a probe --------------

def helo_64k():
    c = session(b"a" * 65000)
    check(is_continue(c.mail(b"<sender@example.net>")), "65000-byte HELO: MAIL continues")
    check_invalid(c.rcpt(b"<rcpt@example.org>"), "65000-byte HELO: RCPT refused (501) with a valid reply")
    c.quit()


def helo_64k_fqdn_like():
    c = session(b"a." * 32000 + b"example")
    check(is_continue(c.mail(b"<sender@example.net>")), "64000-byte dotted HELO: MAIL continues")
    check_invalid(c.rcpt(b"<rcpt@example.org>"), "64000-byte dotted HELO: RCPT refused (501) with a valid reply")
    c.quit()


def helo_64k_literal():
    c = session(b"[" + b"1." * 32000 + b"1]")
    c.mail(b"<sender@example.net>")
    check_refusal(c.rcpt(b"<rcpt@example.org>"), "64000-byte address literal HELO: RCPT refused (501)",
                  code=b"501 5.5.2 ", must_contain=b"invalid ip address")
    c.quit()


def helo_percent():
    for n in (1, 3, 500, 65000):
        c = session(b"%" * n)
        c.mail(b"<sender@example.net>")
        check_invalid(c.rcpt(b"<rcpt@example.org>"),
                      "HELO of %d '%%': RCPT refused (501), '%%' doubled, within 980 bytes" % n)
        c.quit()
    c = session(b"%s%n%x%99999999d.example.net")
    c.mail(b"<sender@example.net>")
    check_invalid(c.rcpt(b"<rcpt@example.org>"), "HELO with printf directives: RCPT refused (501), valid reply")
    c.quit()


def helo_over_limit():
    # Beyond the 64 KiB packet limit of both engines: the connection ends.
    c = Conn().optneg()
    c.connect()
    why = write(c, packet(b"H", b"b" * 70000 + b"\0")) or closed(settle([c])[0])
    c.close()
    check(why is None, "70000-byte HELO packet: connection closed within 10 s", why)


def helo_crlf():
    for name in (b"mail.example.net\r\n250 OK", b"\r\n", b"mail.example.net\n", b"x\rRCPT TO:<a@b>"):
        c = session(name)
        c.mail(b"<sender@example.net>")
        check_invalid(c.rcpt(b"<rcpt@example.org>"), "HELO %r: RCPT refused (501), no CR/LF in the reply" % name)
        c.quit()


def helo_non_ascii():
    for name in (b"m\xc3\xa4il.example.net", b"\xff\xfe\x80.example.net", b"\xe2\x80\xae.example.net",
                 bytes(range(1, 32)) + b"\x7f.example.net", bytes(range(128, 256))):
        c = session(name)
        c.mail(b"<sender@example.net>")
        check_invalid(c.rcpt(b"<rcpt@example.org>"), "HELO %r...: RCPT refused (501) with a valid reply" % name[:12])
        c.quit()


def helo_nul():
    # The filter gets the string up to the first NUL, as from libmilter.
    for data, what, refused in ((b"mail.example.net\0evil\0", "an FQDN, NUL, more", False),
                                (b"localhost\0.example.net\0", "a label, NUL, a domain", True),
                                (b"\0mail.example.net\0", "NUL first (empty name)", True)):
        c = Conn().optneg()
        c.connect()
        c.send(b"H", data)
        m = c.mail(b"<sender@example.net>")
        r = c.rcpt(b"<rcpt@example.org>")
        c.quit()
        if refused:
            check(is_continue(m) and reply_problem(r) is None,
                  "HELO with NUL (%s): RCPT refused with a valid reply" % what, "MAIL %r, RCPT %r" % (m, r))
        else:
            check(is_continue(m) and is_continue(r), "HELO with NUL (%s): the name before NUL counts" % what,
                  "MAIL %r, RCPT %r" % (m, r))


def helo_unterminated():
    # HELO is a step mxgate asked to get no reply for.  libmilter drops a
    # HELO without its NUL and carries on (no HELO seen: no opinion, MAIL
    # and RCPT continue); the builtin engine ends the connection.  An empty
    # HELO packet ends it under both.
    c = Conn().optneg()
    c.connect()
    c.send(b"H", b"mail.example.net")
    if ENGINE == "libmilter":
        m, r = mail_rcpt_after(c)
        why = want_continue(m, r)
        name = "HELO packet without NUL: libmilter drops it, MAIL and RCPT continue"
    else:
        why = closed(settle([c])[0])
        name = "HELO packet without NUL: connection closed within 10 s"
    c.close()
    check(why is None, name, why)
    c = Conn().optneg()
    c.connect()
    c.send(b"H")
    why = closed(settle([c])[0])
    c.close()
    check(why is None, "HELO packet without data: connection closed within 10 s", why)


def mail_rcpt_64k():
    c = session(b"mail.example.net")
    m = c.mail(b"<" + b"a" * 65000 + b"@example.net>")
    r = c.rcpt(b"<" + b"b" * 65000 + b"@example.org>")
    check(is_continue(m) and is_continue(r), "good HELO, 65000-byte MAIL and RCPT: both continue",
          "MAIL %r, RCPT %r" % (m[0], r[0]))
    c.quit()
    c = session(b"localhost")
    m = c.mail(b"<" + b"%\r\n" * 21000 + b"@example.net>")
    r = c.rcpt(b"<" + b"\xff%" * 32000 + b"@example.org>")
    check(is_continue(m), "bad HELO, 63000-byte MAIL of %, CR, LF: MAIL continues", repr(m[0]))
    check_refusal(r, "bad HELO, 64000-byte RCPT of odd bytes: refused with a valid reply")
    c.quit()


def mail_odd_args():
    c = session(b"localhost")
    m = c.mail(b"<a\r\nb%n@ex\xffample.net>", b"SIZE=99999999999999999999999999", b"SIZE=-5",
               b"SIZE=", b"SIZE=0x10", b"BODY=8BITMIME", b"X=\x01\x02\x7f", b"%s%s%s%n", b"=", b"")
    r = c.rcpt(b"<%%%s\r\n@example.org>", b"NOTIFY=NEVER", b"ORCPT=\xff")
    check(is_continue(m), "MAIL with odd ESMTP arguments: continues", repr(m[0]))
    check_refusal(r, "RCPT with odd bytes after a bad HELO: refused with a valid reply")
    c.quit()
    c = session(b"localhost")
    m = c.mail(*([b"<s@example.net>"] + [b"X%d=%%" % i for i in range(7000)]))
    r = c.rcpt(*([b"<r@example.org>"] + [b"Y=1"] * 15000))
    check(is_continue(m), "MAIL with 7000 ESMTP arguments: continues", repr(m[0]))
    check_refusal(r, "RCPT with 15000 arguments: refused with a valid reply")
    c.quit()
    c = session(b"mail.example.net")
    m = c.mail(b"")
    r = c.rcpt(b"")
    check(is_continue(m) and is_continue(r), "empty MAIL and RCPT arguments: continue", "%r %r" % (m[0], r[0]))
    c.quit()


def mail_unterminated():
    for data, what in ((b"<sender@example.net>", "without NUL"), (b"", "without data")):
        c = session(b"mail.example.net")
        c.send(b"M", data)
        why = closed(settle([c])[0])
        c.close()
        check(why is None, "MAIL packet %s: connection closed within 10 s" % what, why)


def out_of_order():
    # Complete packets out of sequence.  The builtin engine answers a step
    # it can run (RCPT, DATA, end of message without MAIL) and ends the
    # connection for anything before or after negotiation that it cannot;
    # libmilter runs a MAIL that comes first and ignores the others: no
    # reply and no close, while it goes on serving other sessions.
    cases = [  # what, negotiate first, packets, builtin's outcome, libmilter's
        ("RCPT without MAIL", True, [(b"R", b"<rcpt@example.org>\0")], "refused", "ignored"),
        ("DATA without MAIL", True, [(b"T", b"")], b"a", "ignored"),
        ("end of message without MAIL", True, [(b"E", b"")], b"c", "ignored"),
        ("connect before negotiation", False, [(b"C", b"client.example.net\x004\x00\x19192.0.2.1\0")],
         "closed", "ignored"),
        ("MAIL as the first packet", False, [(b"M", b"<a@b>\0")], "closed", b"c"),
        ("a second negotiation mid-session", True, [(b"O", struct.pack(">III", 6, SMFIF_ALL, SMFIP_ALL))],
         "closed", "ignored"),
    ]
    conns = []
    for what, neg, pkts, want_b, want_l in cases:
        c = session(b"localhost") if neg else Conn()
        why = write(c, b"".join(packet(cmd, data) for cmd, data in pkts))
        conns.append((c, why))
    outs = settle([c for c, _ in conns])
    for (what, neg, pkts, want_b, want_l), (c, why), out in zip(cases, conns, outs):
        c.close()
        want = want_b if ENGINE == "builtin" else want_l
        if want == "ignored":
            why = why or (("%s, not ignored" % describe(out)) if out != "silent" else serving())
            name = "%s: ignored by libmilter (no reply, no close in 10 s), new sessions served" % what
        elif want == "closed":
            why = why or closed(out)
            name = "%s: connection closed within 10 s" % what
        elif want == "refused":
            why = why or (None if isinstance(out, tuple) and reply_problem(out, b"504 5.5.2 ") is None
                          else "%s, not the 504 refusal" % describe(out))
            name = "%s: refused (504, HELO localhost) within 10 s" % what
        else:
            why = why or (None if isinstance(out, tuple) and out[0] == want
                          else "%s, not %r" % (describe(out), want))
            name = "%s: answered %r within 10 s" % (what, want.decode())
        check(why is None, name, why)
    # Header, end of headers and body: steps mxgate asked not to get, with
    # no reply due; the session stays in step and the next MAIL is answered.
    c = session(b"localhost")
    c.raw(packet(b"L", b"x\0y\0") + packet(b"N") + packet(b"B", b"body"))
    stray = c.outcome(QUIET)
    m, r = mail_rcpt_after(c)
    c.quit()
    why = ("%s to a step with no reply due" % describe(stray)) if stray != "silent" else want_refused(m, r)
    check(why is None, "header, end of headers, body without MAIL: no reply, then MAIL continues and RCPT refused",
          why)


def helo_after_mail():
    # A new HELO in the middle of a transaction (RSET-less): the last one counts.
    c = session(b"mail.example.net")
    c.mail(b"<sender@example.net>")
    c.helo(b"localhost")
    m = c.mail(b"<sender@example.net>")
    r = c.rcpt(b"<rcpt@example.org>")
    c.quit()
    check(is_continue(m) and reply_problem(r) is None, "HELO localhost mid-transaction: next RCPT refused",
          "MAIL %r, RCPT %r" % (m, r))


def macros():
    # Odd macro packets before MAIL.  Both engines ignore what they cannot
    # use; libmilter ends the connection on a macro packet without data.
    cases = [  # what, data, RCPT's outcome
        ("an empty macro packet", b"", "closed-libmilter"),
        ("a macro packet with only a stage", b"M", "refused"),
        ("an unknown stage", b"Z{auth_authen}\0alice\0", "refused"),
        ("a NUL stage", b"\0{auth_authen}\0alice\0", "refused"),
        ("an empty name and value", b"M\0\0", "refused"),
        ("a 60000-byte {auth_authen}", b"M{auth_authen}\0" + b"u" * 60000 + b"\0", "continue"),
        ("a 60000-byte {i}", b"M{i}\0" + b"Q\r\n%" * 15000 + b"\0", "refused"),
        ("5000 macros", b"M" + b"".join(b"{m%d}\0v\0" % i for i in range(5000)), "refused"),
        ("{auth_authen} twice, the first empty", b"M{auth_authen}\0\0{auth_authen}\0bob\0", "refused"),
    ]
    for what, data, want in cases:
        c = session(b"localhost")
        c.send(b"D", data)
        if want == "closed-libmilter" and ENGINE == "libmilter":
            why = closed(settle([c])[0])
            name = "%s: libmilter closes the connection within 10 s" % what
        else:
            m, r = mail_rcpt_after(c)
            if want == "continue":
                why = want_continue(m, r)
                name = "%s: MAIL and RCPT continue (authenticated)" % what
            else:
                why = want_refused(m, r)
                name = "%s: ignored, MAIL continues, RCPT refused" % what
        c.close()
        check(why is None, name, why)
    # Macros for the connect stage: a 60 KB {daemon_name}, none at all.
    c = Conn().optneg()
    c.macro(b"C", b"{daemon_name}", b"d" * 60000)
    c.connect()
    c.helo(b"localhost")
    c.mail(b"<s@example.net>")
    check_refusal(c.rcpt(b"<r@example.org>"), "60000-byte {daemon_name}: RCPT still refused")
    c.quit()


def negotiation_lists():
    # Postfix sends its default macros for a stage whose list is empty, so
    # a stage that needs none names a macro no MTA has.
    c = Conn().optneg()
    want = {0: b"{mxgate_none}", 1: b"{mxgate_none}", 2: b"{auth_authen} {i}",
            3: b"{i}", 4: b"{mxgate_none}", 5: b"{mxgate_none}"}
    got = {k: v for k, v in c.symlists.items() if k in want}
    check(got == want, "negotiation: macro lists ask for nothing a stage does not read", repr(c.symlists))
    c.close()


def macros_odd_count():
    # libmilter steps through a macro list two entries at a time and reads
    # past the end of an odd-length one (SIGSEGV in Debian's 8.17).  The
    # builtin engine reads such a list in place; under libmilter mxgate's
    # guard catches the fault and MAIL gets a temporary failure.  Either
    # way every session is answered: MAIL continues or tempfails (and an
    # MTA sends no RCPT after a tempfail), RCPT gets its HELO refusal.
    answered = tempfails = 0
    for i in range(50):
        data = b"M{a}\0" + b"x" * (i * 7 % 300) + b"\0{b}\0" if i % 2 else b"M{auth_authen}\0alice"
        try:
            c = session(b"localhost")
            c.send(b"D", data)
            m = c.mail(b"<sender@example.net>")
            if is_continue(m):
                r = c.rcpt(b"<rcpt@example.org>")
                if reply_problem(r, b"504 5.5.2 ") is not None:
                    check(False, "50 sessions with odd-length MAIL macro lists: each answered",
                          "session %d: RCPT %s" % (i, reply_problem(r, b"504 5.5.2 ")))
                    return
            elif isinstance(m, tuple) and m[0] == b"t":
                tempfails += 1
            else:
                check(False, "50 sessions with odd-length MAIL macro lists: each answered",
                      "session %d: MAIL got %r" % (i, m))
                return
            answered += 1
            c.quit()
        except (Closed, OSError) as e:
            check(False, "50 sessions with odd-length MAIL macro lists: each answered",
                  "session %d: %s" % (i, e))
            return
    check(answered == 50, "50 sessions with odd-length MAIL macro lists: each answered",
          "%d answered, %d MAIL tempfails" % (answered, tempfails))


def connects():
    # Malformed connect packets (a no-reply step), then HELO localhost, MAIL
    # and RCPT.  The builtin engine takes any connect with a host name (an
    # address it cannot read is an unknown client) and ends the connection
    # without one; libmilter also ends it on an address or family it
    # cannot read.
    cases = [  # what, data, libmilter closes, builtin closes
        ("IPv4 family with a bad address", b"h\x004\x00\x19999.1.1.1\0", True, False),
        ("IPv6 family with a bad address", b"h\x006\x00\x19zz::1\0", True, False),
        ("IPv6 family with an IPv6: tag", b"h\x006\x00\x19IPv6:2001:db8::1\0", False, False),
        ("unix family", b"h\x00L\x00\x00/tmp/sock\0", False, False),
        ("unknown family", b"h\x00U", False, False),
        ("family X", b"h\x00X\x00\x19192.0.2.1\0", True, False),
        ("no port or address", b"h\x004", True, False),
        ("no family", b"h\0", True, False),
        ("no NUL at all", b"host.example.net", True, True),
        ("an empty packet", b"", True, True),
        ("a 60000-byte host name", b"h" * 60000 + b"\x004\x00\x19192.0.2.1\0", False, False),
        ("a host name with CR/LF and %", b"h\r\n%s%n\x004\x00\x19192.0.2.1\0", False, False),
        ("an address without NUL", b"h\x004\x00\x19192.0.2.1", True, False),
    ]
    for what, data, lm_closes, bi_closes in cases:
        c = Conn().optneg()
        why = write(c, packet(b"C", data) + packet(b"H", b"localhost\0"))
        if (lm_closes if ENGINE == "libmilter" else bi_closes):
            why = why or closed(settle([c])[0])
            name = "connect with %s: connection closed within 10 s" % what
        else:
            m, r = mail_rcpt_after(c)
            why = why or want_refused(m, r)
            name = "connect with %s: taken, MAIL continues, RCPT refused" % what
        c.close()
        check(why is None, name, why)


def garbage_packets():
    # Framing errors end the connection under both engines; a packet not yet
    # complete leaves it waiting, silent, while other sessions are served.
    # libmilter reads the length and the command byte together, so a
    # length 0 without its command byte is still incomplete there.
    cases = [  # what, bytes, outcome ("closed", "incomplete")
        ("unknown command Z", packet(b"Z", b"junk"), "closed"),
        ("command byte NUL", struct.pack(">I", 1) + b"\0", "closed"),
        ("command byte 0xff", struct.pack(">I", 3) + b"\xff\xff\xff", "closed"),
        ("length 0", b"\0\0\0\0", "incomplete" if ENGINE == "libmilter" else "closed"),
        ("length 0xffffffff", b"\xff\xff\xff\xffH", "closed"),
        ("length 0x7fffffff", b"\x7f\xff\xff\xffM<a@b>\0", "closed"),
        ("length 1 MiB, 64 KiB sent", struct.pack(">I", 1 << 20) + b"H" + b"x" * 65536, "closed"),
        ("random bytes", bytes((i * 37 + 11) % 256 for i in range(4096)), "closed"),
        ("a truncated header", b"\0\0", "incomplete"),
        ("a packet cut short", struct.pack(">I", 100) + b"Hmail.exa", "incomplete"),
    ]
    conns = []
    for what, data, want in cases:
        c = Conn().optneg()
        c.connect()
        conns.append((c, write(c, data)))
    shut = [i for i, (what, data, want) in enumerate(cases) if want == "closed"]
    open_ = [i for i in range(len(cases)) if i not in shut]
    outs = dict(zip(shut, settle([conns[i][0] for i in shut])))
    outs.update(zip(open_, settle([conns[i][0] for i in open_], bound=QUIET)))
    held = []
    for i, (what, data, want) in enumerate(cases):
        c, why = conns[i]
        if want == "closed":
            why = why or closed(outs[i])
            check(why is None, "%s: connection closed within 10 s" % what, why)
            c.close()
        else:
            held.append((what, c, why or (None if outs[i] == "silent" else
                                          "%s while the packet is incomplete" % describe(outs[i]))))
    # With the incomplete ones still open, a new session is served at once.
    why_serving = serving()
    for what, c, why in held:
        if what == "length 0":
            what = "length 0 (libmilter reads the length and command byte as one)"
        check(why is None and why_serving is None,
              "%s: silent for %.0f s while incomplete, a new session served meanwhile" % (what, QUIET),
              why or why_serving)
    # The rest of each: the engine then acts on the whole packet.
    for what, c, why in held:
        if what == "a packet cut short":
            # The HELO completed: a valid name of 98 bytes.
            rest = b"mple." + b"b" * 40 + b"." + b"c" * 40 + b".net\0"
            w = write(c, rest)
            m, r = mail_rcpt_after(c)
            why = w or want_continue(m, r)
            check(why is None, "a packet cut short, completed: a HELO of 98 bytes, MAIL and RCPT continue", why)
        elif what.startswith("length 0"):
            why = write(c, b"H") or closed(settle([c])[0])
            check(why is None, "length 0, then its command byte: libmilter closes within 10 s", why)
        c.close()


def negotiations():
    # Odd negotiations: a working session where the engine can speak the
    # version offered, else the connection ends.  libmilter reads the
    # version as a signed number, so 0xffffffff is below its minimum of 2;
    # the builtin engine answers it with version 6.
    cases = [  # what, version, actions, steps, a session (else closed)
        ("version 2, no flags (an old MTA)", 2, 0, 0, True),
        ("version 2 with V2 flags", 2, 0x3F, 0x7F, True),
        ("version 6, no actions, no steps", 6, 0, 0, True),
        ("version 6 without NR steps", 6, SMFIF_ALL, SMFIP_ALL & ~(SMFIP_NR_CONN | SMFIP_NR_HELO), True),
        ("version 0xffffffff, every bit", 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, ENGINE == "builtin"),
        ("version 1", 1, SMFIF_ALL, SMFIP_ALL, False),
    ]
    for what, v, a, p, works in cases:
        c = Conn()
        if works:
            try:
                c.optneg(v, a, p)
                c.connect()
                c.helo(b"localhost")
                m, r = mail_rcpt_after(c)
                why = want_refused(m, r)
                if why is None and not 2 <= c.version <= min(v, 6):
                    why = "answered version %d to an offer of %d" % (c.version, v)
            except (MilterError, OSError) as e:
                why = "%s: %s" % (type(e).__name__, e)
            name = "negotiation %s: a working session (MAIL continues, RCPT refused)" % what
        else:
            c.send(b"O", struct.pack(">III", v, a, p))
            why = closed(settle([c])[0])
            name = "negotiation %s: connection closed within 10 s" % what
        c.close()
        check(why is None, name, why)
    c = Conn()
    c.send(b"O", b"\0\0\0\x06")
    why = closed(settle([c])[0])
    c.close()
    check(why is None, "a 4-byte negotiation: connection closed within 10 s", why)


def quit_new_connection():
    # SMFIC_QUIT_NC ('K'): the next connection on the same socket.
    c = session(b"localhost")
    c.mail(b"<sender@example.net>")
    r1 = c.rcpt(b"<rcpt@example.org>")
    c.send(b"K")
    c.connect(addr=b"192.0.2.2")
    c.helo(b"mail.example.net")
    stray = c.outcome(0.5)
    c.sock.settimeout(12.0)
    check(stray == "silent", "after QUIT_NC: no reply to the no-reply connect and HELO", repr(stray))
    m2 = c.mail(b"<sender@example.net>")
    r2 = c.rcpt(b"<rcpt@example.org>")
    c.send(b"K")
    c.connect(addr=b"192.0.2.3")
    c.helo(b"localhost")
    m3 = c.mail(b"<sender@example.net>")
    r3 = c.rcpt(b"<rcpt@example.org>")
    c.quit()
    check(reply_problem(r1) is None, "before QUIT_NC: RCPT refused")
    check(is_continue(m2) and is_continue(r2), "after QUIT_NC, good HELO: MAIL and RCPT continue",
          "%r %r" % (m2, r2))
    check(is_continue(m3) and reply_problem(r3) is None, "second QUIT_NC, bad HELO: RCPT refused",
          "%r %r" % (m3, r3))


def aborts():
    c = session(b"localhost")
    bad = 0
    for i in range(1000):
        m = c.mail(b"<s%d@example.net>" % i)
        r = c.rcpt(b"<r@example.org>")
        if not is_continue(m) or reply_problem(r) is not None:
            bad += 1
        c.abort()
    c.quit()
    check(bad == 0, "1000 transactions ended by abort in one session: all answered right", "%d wrong" % bad)


def abrupt_closes():
    # A connection reset (no QUIT) after each step; mxgate must end that
    # session and serve the next one at once.
    for stop in ["negotiation", "connect", "HELO", "MAIL", "RCPT", "mid-packet"]:
        c = Conn().optneg()
        if stop != "negotiation":
            c.connect()
        if stop not in ("negotiation", "connect"):
            c.helo(b"localhost")
        if stop in ("MAIL", "RCPT", "mid-packet"):
            c.mail(b"<sender@example.net>")
        if stop in ("RCPT", "mid-packet"):
            c.rcpt(b"<rcpt@example.org>")
        if stop == "mid-packet":
            c.raw(struct.pack(">I", 50) + b"R<rcpt")
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()           # RST, no QUIT
        why = serving()
        check(why is None, "connection reset after %s: the next session answered right" % stop, why)


def stalled_clients():
    # Clients that stop mid-packet each hold their own connection thread
    # (until the idle timeout); a new session must still be served at once.
    # (Debian's libmilter worker pool could leave it unserved: two sessions
    # ready on one wake-up, one idle worker taking one.)
    held, note = [], None
    t0 = time.time()
    try:
        for i in range(50):
            c = Conn(timeout=15).optneg()
            c.connect()
            c.raw(struct.pack(">I", 200) + b"Hstall")
            held.append(c)
        c = session(b"localhost")
        c.sock.settimeout(15)
        c.mail(b"<sender@example.net>")
        r = c.rcpt(b"<rcpt@example.org>")
        c.quit()
        if reply_problem(r) is not None:
            note = "the session's RCPT got %r" % (r,)
    except (Closed, OSError) as e:
        note = "a session was not served within 15 s while %d clients stalled: %s" % (len(held), e)
    check(note is None, "50 clients stalled mid-packet: a new session served in %.1f s" % (time.time() - t0), note)
    for c in held:
        c.close()
    time.sleep(0.5)


ATTACKS = [helo_64k, helo_64k_fqdn_like, helo_64k_literal, helo_percent, helo_over_limit, helo_crlf,
           helo_non_ascii, helo_nul, helo_unterminated, mail_rcpt_64k, mail_odd_args,
           mail_unterminated, out_of_order, helo_after_mail, macros, connects, garbage_packets,
           negotiations, quit_new_connection, aborts, abrupt_closes, stalled_clients, macros_odd_count,
           negotiation_lists]

only = sys.argv[1:]
if only == ["probe"]:
    probe("a normal session")
else:
    for attack in [globals()[n] for n in only] if only else ATTACKS:
        try:
            attack()
        except Exception as e:
            check(False, "%s ran to its end" % attack.__name__, "%s: %s" % (type(e).__name__, e))
        time.sleep(0.05)
        probe("after " + attack.__name__)
emit("done")
PY

s=$SECONDS
out=$(timeout -k 5 300 python3 "$work/rawmilter.py" "$@" 2>&1)
rc=$?
tap_diag "raw client: $((SECONDS - s)) s"
tap_relay "raw: " <<<"$out"
finished=$?
tap_result "$([[ $rc == 0 && $finished == 0 ]]; echo $?)" "raw: the protocol client ran to its end (exit $rc)"

# ---- 2. miltertest: odd bytes, missing macros, abrupt disconnects ------------
cat >"$work/odd.lua" <<'LUA'
-- Odd bytes of ordinary size (miltertest copies arguments into 1 KiB).
local t = dofile(os.getenv("MXGATE_TEST_DIR") .. "/lib.lua")

local function refused_at_rcpt(helo, what, opts)
	opts = opts or {}
	opts.helo = helo
	local r = t.transaction(opts)
	t.check(r.mail == SMFIR_CONTINUE and r.rcpt[1] == SMFIR_REPLYCODE,
		what .. ": MAIL continues, RCPT refused",
		"got MAIL " .. t.reply_name(r.mail) .. ", RCPT " .. t.reply_name(r.rcpt[1]))
end

t.run(function()
	refused_at_rcpt("mail.example.net\r\n250 OK", "HELO with CR/LF")
	refused_at_rcpt("%s%n%%%x.example.net", "HELO with printf directives")
	refused_at_rcpt(string.rep("%", 1000), "HELO of 1000 '%'")
	refused_at_rcpt(string.rep("a.", 499) .. "b", "HELO of 999 bytes, dotted")
	refused_at_rcpt("m\xc3\xa4il.example.net", "HELO with UTF-8")
	refused_at_rcpt("\xff\xfe\x80\x01\x1b[31m.example.net", "HELO with bytes 0xff, 0x80 and an escape")
	refused_at_rcpt("", "empty HELO")
	refused_at_rcpt("localhost", "MAIL and RCPT with odd bytes",
			{ sender = "<a\r\nb%n@ex\xffample.net>", rcpts = { "<%s%s\r\n@example.org>" } })

	-- A good HELO with odd addresses and parameters: nothing refused.
	local conn = t.session({ helo = "mail.example.net" })
	if conn then
		local m = t.mail(conn, "<\x01\x7f%n@example.net>", nil, "SIZE=99999999999999999999",
				 "SIZE=-1", "BODY=\xff", "%s%s%s")
		local r = t.rcpt(conn, string.rep("%", 900), "NOTIFY=\r\n")
		t.check(m == SMFIR_CONTINUE and r == SMFIR_CONTINUE,
			"good HELO, odd MAIL/RCPT arguments: both continue",
			"got " .. t.reply_name(m) .. ", " .. t.reply_name(r))
		t.quit(conn)
	end

	-- Missing and odd macros.
	refused_at_rcpt("localhost", "no macros at all")
	refused_at_rcpt("localhost", "a macro with an empty name",
			{ mail_macros = { [""] = string.rep("x", 900) } })
	local r = t.transaction({ helo = "localhost", mail_macros = { ["{auth_authen}"] = string.rep("u", 900) } })
	t.check(r.rcpt[1] == SMFIR_CONTINUE, "900-byte {auth_authen}: exempt, RCPT continues",
		"got " .. t.reply_name(r.rcpt[1]))
	refused_at_rcpt("localhost", "{i} with CR/LF and %",
			{ mail_macros = { ["{i}"] = "Q\r\nFAKE: reject: %s%n" } })
	refused_at_rcpt("localhost", "{daemon_name} of 900 bytes",
			{ connect_macros = { ["{daemon_name}"] = string.rep("d", 900) } })

	-- Abrupt disconnects in the middle of a transaction.
	for _, stop in ipairs({ "HELO", "MAIL", "RCPT" }) do
		conn = t.session({ helo = "localhost" })
		if conn then
			if stop ~= "HELO" then t.mail(conn, "<sender@example.net>") end
			if stop == "RCPT" then t.rcpt(conn, "<rcpt@example.org>") end
			mt.disconnect(conn, false)
		end
		refused_at_rcpt("localhost", "a session after an abrupt disconnect after " .. stop)
	end
end)
LUA
s=$SECONDS
out=$(cd "$work" && timeout -k 5 120 miltertest -s "$work/odd.lua" 2>&1 </dev/null)
rc=$?
tap_diag "odd-bytes miltertest script: $((SECONDS - s)) s"
tap_relay "miltertest: " <<<"$out"
finished=$?
tap_result "$([[ $rc == 0 && $finished == 0 ]]; echo $?)" "miltertest: odd-bytes script ran to its end (exit $rc)"
mxgate_alive "$daemon_pid"
tap_result $? "mxgate still running after the odd-bytes script"

# ---- 3. 200 concurrent sessions ----------------------------------------------
cat >"$work/concurrent.lua" <<'LUA'
-- One worker: SESSIONS sessions open at once, good and bad HELOs mixed,
-- each step taken on all of them in turn; a third closed abruptly.
local t = dofile(os.getenv("MXGATE_TEST_DIR") .. "/lib.lua")
local w = tonumber(os.getenv("MXGATE_WORKER"))
local n = tonumber(os.getenv("MXGATE_SESSIONS"))

t.run(function()
	local s, wrong = {}, 0
	for i = 1, n do
		local good = (i + w) % 2 == 0
		s[i] = { good = good,
			 c = t.session({ ip = string.format("198.51.100.%d", (w * n + i) % 250 + 1),
					 helo = good and "mail.example.net" or "localhost" }) }
	end
	for i = 1, n do if s[i].c then s[i].mail = t.mail(s[i].c, "<s" .. i .. "@example.net>") end end
	for i = 1, n do
		if s[i].c and s[i].mail == SMFIR_CONTINUE then
			s[i].rcpt = t.rcpt(s[i].c, "<r" .. i .. "@example.org>")
		end
	end
	for i = 1, n do
		local want = s[i].good and SMFIR_CONTINUE or SMFIR_REPLYCODE
		if s[i].mail ~= SMFIR_CONTINUE or s[i].rcpt ~= want then
			wrong = wrong + 1
			t.diag(string.format("session %d: MAIL %s, RCPT %s, want %s", i, t.reply_name(s[i].mail),
					     t.reply_name(s[i].rcpt), t.reply_name(want)))
		end
		if s[i].c then t.quit(s[i].c, i % 3 ~= 0) end
	end
	t.check(wrong == 0, string.format("worker %d: %d concurrent sessions answered right", w, n),
		wrong .. " wrong")
end)
LUA
start=$SECONDS
worker_pids=()
for ((w = 1; w <= WORKERS; w++)); do
    (cd "$work" && MXGATE_WORKER=$w MXGATE_SESSIONS=$SESSIONS MXGATE_MT_TIMEOUT=20 \
        timeout -k 5 120 miltertest -s "$work/concurrent.lua" >"$work/worker$w.out" 2>&1 </dev/null
     echo $? >"$work/worker$w.rc") &
    worker_pids+=($!)
done
for p in "${worker_pids[@]}"; do wait "$p"; done
worker_pids=()
for ((w = 1; w <= WORKERS; w++)); do
    rc=$(cat "$work/worker$w.rc" 2>/dev/null || echo missing)
    tap_relay "concurrent: " <"$work/worker$w.out"
    finished=$?
    [[ $rc == 0 && $finished == 0 ]] || tap_result 1 "concurrent: worker $w ran to its end (exit $rc)"
done
tap_diag "$((WORKERS * SESSIONS)) concurrent sessions took $((SECONDS - start)) s"

# ---- 4. afterwards -------------------------------------------------------------
cat >"$work/normal.lua" <<'LUA'
local t = dofile(os.getenv("MXGATE_TEST_DIR") .. "/lib.lua")
t.run(function()
	local r = t.transaction({ helo = "localhost" })
	t.check(r.mail == SMFIR_CONTINUE and r.rcpt[1] == SMFIR_REPLYCODE,
		"HELO localhost: MAIL continues, RCPT refused",
		"got " .. t.reply_name(r.mail) .. ", " .. t.reply_name(r.rcpt[1]))
	local conn = t.session({ helo = "mail.example.net" })
	if conn then
		local m = t.mail(conn, "<sender@example.net>")
		local rr = t.rcpt(conn, "<rcpt@example.org>")
		local d = t.data(conn)
		t.check(m == SMFIR_CONTINUE and rr == SMFIR_CONTINUE and d == SMFIR_ACCEPT,
			"HELO mail.example.net: MAIL, RCPT continue, DATA accepted",
			"got " .. t.reply_name(m) .. ", " .. t.reply_name(rr) .. ", " .. t.reply_name(d))
		t.quit(conn)
	end
end)
LUA
out=$(cd "$work" && timeout -k 5 60 miltertest -s "$work/normal.lua" 2>&1 </dev/null)
rc=$?
tap_relay "afterwards: " <<<"$out"
finished=$?
tap_result "$([[ $rc == 0 && $finished == 0 ]]; echo $?)" "afterwards: a normal miltertest session ran (exit $rc)"
out=$(timeout -k 5 60 python3 "$work/rawmilter.py" probe 2>&1)
tap_relay "afterwards: raw client: " <<<"$out" || tap_result 1 "afterwards: the raw client ran to its end"

mxgate_alive "$daemon_pid"
tap_result $? "mxgate is still running at the end"
# Leak reports are written at exit: the log is read after the stop.
mxgate_stop_check "$daemon_pid" "$log" "mxgate, after all that,"
daemon_pid=
# A CR or LF that reached a log line starts a line of its own (a forged
# log entry): every line must be one of mxgate's.
n=$(grep -avc '^mxgate: ' "$log")
tap_result "$((n != 0))" "every line of mxgate's log is its own: no CR/LF from input in a log line ($n foreign)"
((n == 0)) || tap_diag "first foreign lines:" "$(grep -av '^mxgate: ' "$log" | head -n 3 | cut -c1-160)"
n=$(grep -c 'reject: RCPT from' "$log")
tap_diag "mxgate logged $n RCPT refusals"

((TAP_FAILED)) && tap_diag "mxgate log (last 30 lines):" "$(tail -n 30 "$log")"

tap_diag "hostile.sh took $((SECONDS - t0)) s"
tap_done
exit 0
