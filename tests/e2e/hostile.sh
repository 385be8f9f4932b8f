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

# relay PREFIX: turn the "TAP ok - ..." lines of a client (stdin) into
# numbered TAP lines, other lines into diagnostics; true if the client said
# "done".
relay() {
    local prefix=$1 line finished=no
    while IFS= read -r line; do
        case $line in
            "TAP ok - "*) tap_result 0 "$prefix${line#TAP ok - }" ;;
            "TAP not ok - "*) tap_result 1 "$prefix${line#TAP not ok - }" ;;
            "TAP # "*) tap_diag "$prefix${line#TAP # }" ;;
            "TAP done"*) finished=yes ;;
            *) [[ -n $line ]] && tap_diag "$prefix$line" ;;
        esac
    done
    [[ $finished == yes ]]
}

# stop_daemon: SIGTERM, wait up to 10 s; stop_status is the exit status
# ("killed" if it had to be SIGKILLed).
stop_daemon() {
    local i
    kill -TERM "$daemon_pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do mxgate_alive "$daemon_pid" || break; sleep 0.1; done
    if mxgate_alive "$daemon_pid"; then
        kill -KILL "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
        stop_status=killed
    else
        wait "$daemon_pid"
        stop_status=$?
    fi
    daemon_pid=
}

# ---- the daemon ------------------------------------------------------------
printf 'trusted_networks = [ ];\n' >"$work/mxgate.conf"
log=$work/mxgate.log
if ! mxgate_start "$work/mxgate.conf" "$log"; then
    echo "Bail out! mxgate did not start: $(tail -n 5 "$log" 2>/dev/null | tr '\n' ' ')"
    exit 99
fi
daemon_pid=$MXGATE_PID
export MXGATE_PORT MXGATE_PID MXGATE_TEST_DIR=$top/tests/milter
export PYTHONPATH=$top/tests/e2e/lib${PYTHONPATH:+:$PYTHONPATH}   # milter_wire.py
t0=$SECONDS

# ---- 1. raw protocol client --------------------------------------------------
cat >"$work/rawmilter.py" <<'PY'
# rawmilter.py - sends, through tests/e2e/lib/milter_wire.py, what a real
# MTA would never send.  Prints "TAP ok - ..." / "TAP not ok - ..." lines.
import os, re, socket, struct, sys, time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree (make dist copies tests/e2e)
from milter_wire import Closed, Milter, SMFIF_ALL, SMFIP_ALL, SMFIP_NR_CONN, SMFIP_NR_HELO

PORT = int(os.environ["MXGATE_PORT"])
PID = int(os.environ["MXGATE_PID"])
MAX_REPLY = 980                 # libmilter's MAXREPLYLEN
NOT_FQDN = b"Helo command rejected: need fully-qualified hostname"
INVALID = b"Helo command rejected: Invalid name"


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


def probe(label):
    """The daemon runs and gives a normal session the right answers."""
    why = None
    if not alive():
        why = "the mxgate process is gone"
    else:
        try:
            c = session(b"localhost")
            m = c.mail(b"<sender@example.net>")
            r = c.rcpt(b"<rcpt@example.org>")
            c.quit()
            want = b"504 5.5.2 <localhost>: " + NOT_FQDN + b"\0"
            if not is_continue(m) or r != (b"y", want):
                why = "MAIL %r, RCPT %r" % (m, r)
            c = session(b"mail.example.net")
            m, r = c.mail(b"<sender@example.net>"), c.rcpt(b"<rcpt@example.org>")
            c.quit()
            if why is None and not (is_continue(m) and is_continue(r)):
                why = "good HELO: MAIL %r, RCPT %r" % (m, r)
        except Exception as e:
            why = "%s: %s" % (type(e).__name__, e)
    return check(why is None, label + ": mxgate alive and answering", why)


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
    # Beyond the engine's (and libmilter's) 64 KiB packet limit: the connection ends.
    c = Conn().optneg()
    c.connect()
    c.send(b"H", b"b" * 70000 + b"\0")
    out = c.outcome()
    check(out in ("closed", "silent") or isinstance(out, tuple),
          "70000-byte HELO packet: connection dropped or answered (%s)" % (out if isinstance(out, str) else out[0]))
    c.close()


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
    for data in (b"mail.example.net", b""):
        c = Conn().optneg()
        c.connect()
        c.send(b"H", data)
        try:
            m = c.mail(b"<sender@example.net>")
            r = c.rcpt(b"<rcpt@example.org>")
            desc = "MAIL %r, RCPT %r" % (m[0], r[0])
            ok = is_continue(m) and (is_continue(r) or reply_problem(r) is None)
        except (Closed, OSError) as e:
            desc, ok = "connection %s" % type(e).__name__, True
        c.close()
        check(ok, "HELO packet of %d bytes without NUL: answered or dropped (%s)" % (len(data), desc))


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
    c = session(b"mail.example.net")
    c.send(b"M", b"<sender@example.net>")
    out = c.outcome()
    check(True, "MAIL packet without NUL: %s" % (out if isinstance(out, str) else "reply %r" % out[0]))
    c.close()
    c = session(b"mail.example.net")
    c.send(b"M")
    out = c.outcome()
    check(True, "MAIL packet without data: %s" % (out if isinstance(out, str) else "reply %r" % out[0]))
    c.close()


def out_of_order():
    c = session(b"localhost")
    c.send(b"R", b"<rcpt@example.org>\0")
    out = c.outcome(1.0)
    check(True, "RCPT without MAIL: %s" % (out if isinstance(out, str) else "reply %r" % out[0]))
    c.close()
    c = session(b"localhost")
    for cmd in (b"T", b"L", b"N", b"B", b"E"):
        c.send(cmd, b"x\0y\0" if cmd == b"L" else b"")
    out = c.outcome()
    check(True, "DATA, header, EOH, body, EOM without MAIL: %s" %
          (out if isinstance(out, str) else "reply %r" % out[0]))
    c.close()
    c = Conn()
    c.send(b"C", b"client.example.net\x004\x00\x19192.0.2.1\0")
    out = c.outcome()
    check(True, "connect before negotiation: %s" % (out if isinstance(out, str) else "reply %r" % out[0]))
    c.close()
    c = Conn()
    c.send(b"M", b"<a@b>\0")
    out = c.outcome()
    check(True, "MAIL as the first packet: %s" % (out if isinstance(out, str) else "reply %r" % out[0]))
    c.close()
    c = session(b"localhost")
    c.send(b"O", struct.pack(">III", 6, SMFIF_ALL, SMFIP_ALL))
    out = c.outcome()
    check(True, "second negotiation mid-session: %s" % (out if isinstance(out, str) else "reply %r" % out[0]))
    c.close()


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
    cases = [
        ("an empty macro packet", [b"D", b""]),
        ("a macro packet with only a stage", [b"D", b"M"]),
        ("an unknown stage", [b"D", b"Z{auth_authen}\0alice\0"]),
        ("a NUL stage", [b"D", b"\0{auth_authen}\0alice\0"]),
        ("an empty name and value", [b"D", b"M\0\0"]),
        ("a 60000-byte {auth_authen}", [b"D", b"M{auth_authen}\0" + b"u" * 60000 + b"\0"]),
        ("a 60000-byte {i}", [b"D", b"M{i}\0" + b"Q\r\n%" * 15000 + b"\0"]),
        ("5000 macros", [b"D", b"M" + b"".join(b"{m%d}\0v\0" % i for i in range(5000))]),
        ("{auth_authen} twice, the first empty", [b"D", b"M{auth_authen}\0\0{auth_authen}\0bob\0"]),
    ]
    for what, (cmd, data) in cases:
        try:
            c = session(b"localhost")
            c.send(cmd, data)
            m = c.mail(b"<sender@example.net>")
            r = c.rcpt(b"<rcpt@example.org>") if is_continue(m) else None
            c.quit()
            if is_continue(m) and isinstance(r, tuple):
                ok = is_continue(r) or reply_problem(r) is None
                desc = "MAIL c, RCPT %r" % r[0]
            else:
                ok, desc = False, "MAIL %r" % (m,)
        except (Closed, OSError) as e:
            ok, desc = True, "connection %s" % type(e).__name__
        check(ok, "MAIL after %s: answered or dropped (%s)" % (what, desc))
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
            3: b"{mxgate_none}", 4: b"{mxgate_none}", 5: b"{mxgate_none}"}
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
    cases = [
        ("IPv4 family with a bad address", b"h\x004\x00\x19999.1.1.1\0"),
        ("IPv6 family with a bad address", b"h\x006\x00\x19zz::1\0"),
        ("IPv6 family with an IPv6: tag", b"h\x006\x00\x19IPv6:2001:db8::1\0"),
        ("unix family", b"h\x00L\x00\x00/tmp/sock\0"),
        ("unknown family", b"h\x00U"),
        ("family X", b"h\x00X\x00\x19192.0.2.1\0"),
        ("no port or address", b"h\x004"),
        ("no family", b"h\0"),
        ("no NUL at all", b"host.example.net"),
        ("an empty packet", b""),
        ("a 60000-byte host name", b"h" * 60000 + b"\x004\x00\x19192.0.2.1\0"),
        ("a host name with CR/LF and %", b"h\r\n%s%n\x004\x00\x19192.0.2.1\0"),
        ("an address without NUL", b"h\x004\x00\x19192.0.2.1"),
    ]
    for what, data in cases:
        try:
            c = Conn().optneg()
            c.send(b"C", data)
            c.helo(b"localhost")
            m = c.mail(b"<sender@example.net>")
            r = c.rcpt(b"<rcpt@example.org>") if is_continue(m) else m
            c.quit()
            ok = is_continue(r) or reply_problem(r) is None
            desc = "RCPT %r" % r[0]
        except (Closed, OSError) as e:
            ok, desc = True, "connection %s" % type(e).__name__
        check(ok, "connect with %s: answered or dropped (%s)" % (what, desc))


def garbage_packets():
    cases = [
        ("unknown command Z", struct.pack(">I", 5) + b"Zjunk"),
        ("command byte NUL", struct.pack(">I", 1) + b"\0"),
        ("command byte 0xff", struct.pack(">I", 3) + b"\xff\xff\xff"),
        ("length 0", b"\0\0\0\0"),
        ("length 0xffffffff", b"\xff\xff\xff\xffH"),
        ("length 0x7fffffff", b"\x7f\xff\xff\xffM<a@b>\0"),
        ("length 1 MiB, 64 KiB sent", struct.pack(">I", 1 << 20) + b"H" + b"x" * 65536),
        ("a truncated header", b"\0\0"),
        ("a packet cut short", struct.pack(">I", 100) + b"Hmail.exa"),
        ("random bytes", bytes((i * 37 + 11) % 256 for i in range(4096))),
    ]
    for what, data in cases:
        c = Conn().optneg()
        c.connect()
        try:
            c.raw(data)
        except OSError:
            pass
        out = c.outcome(1.0)
        c.close()
        check(True, "%s: %s" % (what, out if isinstance(out, str) else "reply %r" % out[0]))


def negotiations():
    cases = [
        ("version 2, no flags (an old MTA)", 2, 0, 0),
        ("version 2 with V2 flags", 2, 0x3F, 0x7F),
        ("version 6, no actions, no steps", 6, 0, 0),
        ("version 6 without NR steps", 6, SMFIF_ALL, SMFIP_ALL & ~(SMFIP_NR_CONN | SMFIP_NR_HELO)),
        ("version 0xffffffff, every bit", 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF),
        ("version 1", 1, SMFIF_ALL, SMFIP_ALL),
    ]
    for what, v, a, p in cases:
        try:
            c = Conn().optneg(v, a, p)
            c.connect()
            c.helo(b"localhost")
            m = c.mail(b"<sender@example.net>")
            r = c.rcpt(b"<rcpt@example.org>")
            c.quit()
            ok = is_continue(m) and reply_problem(r) is None
            desc = "negotiated steps 0x%x; MAIL %r, RCPT %r" % (c.pflags, m[0], r[0])
        except (Closed, OSError, ValueError) as e:
            ok, desc = True, "refused (%s)" % e
        check(ok, "negotiation %s: a working session or a refusal (%s)" % (what, desc))
    c = Conn()
    c.send(b"O", b"\0\0\0\x06")
    out = c.outcome(1.0)
    c.close()
    check(True, "a 4-byte negotiation: %s" % (out if isinstance(out, str) else "reply %r" % out[0]))


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
    steps = ["negotiation", "connect", "HELO", "MAIL", "RCPT", "mid-packet"]
    for stop in steps:
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
    check(True, "connections reset after each step: " + ", ".join(steps))


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
relay "raw: " <<<"$out"
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
relay "miltertest: " <<<"$out"
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
    relay "concurrent: " <"$work/worker$w.out"
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
relay "afterwards: " <<<"$out"
finished=$?
tap_result "$([[ $rc == 0 && $finished == 0 ]]; echo $?)" "afterwards: a normal miltertest session ran (exit $rc)"
out=$(timeout -k 5 60 python3 "$work/rawmilter.py" probe 2>&1)
relay "afterwards: raw client: " <<<"$out" || tap_result 1 "afterwards: the raw client ran to its end"

mxgate_alive "$daemon_pid"
tap_result $? "mxgate is still running at the end"
! grep -qE 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:' "$log"
tap_result $? "no sanitizer report in mxgate's log"
# A CR or LF that reached a log line starts a line of its own (a forged
# log entry): every line must be one of mxgate's.
n=$(grep -avc '^mxgate: ' "$log")
tap_result "$((n != 0))" "every line of mxgate's log is its own: no CR/LF from input in a log line ($n foreign)"
((n == 0)) || tap_diag "first foreign lines:" "$(grep -av '^mxgate: ' "$log" | head -n 3 | cut -c1-160)"
n=$(grep -c 'reject: RCPT from' "$log")
tap_diag "mxgate logged $n RCPT refusals"

stop_daemon
tap_result "$([[ $stop_status == 0 ]]; echo $?)" "mxgate stops cleanly on SIGTERM after all that (status $stop_status)"
((TAP_FAILED)) && tap_diag "mxgate log (last 30 lines):" "$(tail -n 30 "$log")"

tap_diag "hostile.sh took $((SECONDS - t0)) s"
tap_done
exit 0
