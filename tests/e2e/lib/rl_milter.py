#!/usr/bin/env python3
"""rl_milter.py - a raw milter-protocol client (the MTA's side) for the rate
limit tests: it can claim any client address, send any bytes, run many
sessions at once, and it sees reply texts (miltertest cannot).  The
protocol is lib/milter_wire.py's.

Subcommands (every network wait is bounded by --timeout):

  session  one SMTP-like session; prints one line per step:
           "STEP CODE [TEXT]" (CODE c continue, a accept, y custom reply,
           t tempfail, r reject, ...), and "ms=N" after each step with the
           time the milter took.  --pause MS waits between transactions
           (a paced load); --clock adds " t=SECONDS" (the wall clock when
           the step ended) to each "ms=" line.
  burst    N concurrent sessions on each milter port, all started together,
           sending MAIL FROM with one sender until E events were sent;
           prints admitted=, refused=, and each distinct refusal text.
  distinct like burst, but event N shows a new value from one client
           address: HELO N (a session each, counted at MAIL) or
           recipient N (RCPTs of one transaction per session).
  key      print the memcached key of a rule for the current window.
  hostile  sessions whose addresses, HELO and SASL user hold spaces, CR/LF,
           '%', NUL and 1 KiB strings; prints how each step was answered.
"""
import argparse
import hashlib
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree (make dist copies tests/e2e)
from milter_wire import (Milter, MilterError, SMFIF_ADDHDRS, SMFIF_QUARANTINE, SMFIP_ALL,
                         SMFIP_HDR_LEADSPC, SMFIP_RCPT_REJ, SMFIP_SKIP)

# Protocol version 6, the actions mxgate asks for, every step flag but SKIP,
# RCPT_REJ and HDR_LEADSPC.
OFFER_ACTIONS = SMFIF_ADDHDRS | SMFIF_QUARANTINE
OFFER_PROTOCOL = SMFIP_ALL & ~(SMFIP_SKIP | SMFIP_RCPT_REJ | SMFIP_HDR_LEADSPC)


def open_milter(port, timeout=10.0):
    """A negotiated milter connection (lib/milter_wire.py)."""
    return Milter(port, timeout).optneg(6, OFFER_ACTIONS, OFFER_PROTOCOL)


def enc(s):
    """Command-line text to bytes; \\r \\n \\0 \\xNN escapes are decoded."""
    return s.encode("latin-1").decode("unicode_escape").encode("latin-1")


CLOCK = False


def show(step, r, ms):
    if r is None:
        print("%s skipped" % step)
    else:
        print(("%s %s %s" % (step, r.code, r.text)).rstrip())
        for a, body in r.actions:
            print("%s action %s %s" % (step, a.decode("latin-1"),
                                       body.replace(b"\0", b"|").decode("latin-1")))
    print("ms=%d t=%.3f" % (ms, time.time()) if CLOCK else "ms=%d" % ms)
    sys.stdout.flush()


def timed(fn, *a, **kw):
    t = time.monotonic()
    r = fn(*a, **kw)
    return r, int((time.monotonic() - t) * 1000)


def cmd_session(o):
    global CLOCK
    CLOCK = o.clock
    m = open_milter(o.port, o.timeout)
    show("CONNECT", *timed(m.connect, addr=enc(o.ip)))
    show("HELO", *timed(m.helo, enc(o.helo)))
    for n in range(o.transactions):
        if n > 0 and o.pause > 0:
            time.sleep(o.pause / 1000.0)
        macros = {b"{auth_authen}": enc(o.auth)} if o.auth else {}
        r, ms = timed(m.mail, enc(o.sender), macros=macros)
        show("MAIL", r, ms)
        if r and r.code in ("c", "n"):
            for rc in o.rcpt:
                show("RCPT", *timed(m.rcpt, enc(rc)))
            if o.end == "data":
                r, ms = timed(m.data)
                show("DATA", r, ms)
                if r and r.code != "a":
                    show("EOM", *timed(m.eom))
            elif o.end == "abort":
                m.abort()
                print("ABORT")
        else:
            m.abort()
            print("ABORT")
    m.quit()


def run_burst(o, begin, event, end):
    """--sessions workers on each of --ports, all started together: each
    begins its session (begin(i, port) -> state), then takes numbered
    events until --events were taken (event(state, n) -> None when
    admitted, else the refusal's "CODE TEXT"), then ends (end(state)).
    Prints admitted=, refused=, errors= and each distinct refusal text."""
    ports = [int(p) for p in o.ports.split(",")]
    tickets = [0]
    lock = threading.Lock()
    results = {"admitted": 0, "refused": 0, "errors": 0, "texts": set()}
    nthreads = o.sessions * len(ports)
    barrier = threading.Barrier(nthreads, timeout=o.timeout)

    def take():
        with lock:
            if tickets[0] >= o.events:
                return None
            tickets[0] += 1
            return tickets[0] - 1

    def failed(i, e):
        with lock:
            results["errors"] += 1
        print("# session %d: %s" % (i, e), file=sys.stderr)

    def worker(i, port):
        try:
            state = begin(i, port)
        except (OSError, MilterError) as e:
            failed(i, e)
            barrier.abort()
            return
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return
        try:
            n = take()
            while n is not None:
                text = event(state, n)
                with lock:
                    if text is None:
                        results["admitted"] += 1
                    else:
                        results["refused"] += 1
                        results["texts"].add(text)
                n = take()
            end(state)
        except (OSError, MilterError) as e:
            failed(i, e)

    threads = [threading.Thread(target=worker, args=(i, ports[i % len(ports)]))
               for i in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(o.timeout * 4)
    print("admitted=%d" % results["admitted"])
    print("refused=%d" % results["refused"])
    print("errors=%d" % results["errors"])
    for t in sorted(results["texts"]):
        print("text=%s" % t)


def greeted(port, o, addr, helo):
    """A milter session past HELO."""
    m = open_milter(port, o.timeout)
    m.connect(addr=addr)
    m.helo(helo)
    return m


def transaction(m, sender):
    """MAIL, and when it is let through one RCPT and DATA: None, else the refusal."""
    r = m.mail(sender)
    if r.code != "c":
        m.abort()
        return "%s %s" % (r.code, r.text)
    m.rcpt(b"<rcpt@example.org>")
    if m.data().code != "a":
        m.eom()
    return None


def cmd_burst(o):
    def begin(i, port):
        return greeted(port, o, ("192.0.2.%d" % (i % 250 + 1)).encode(), b"client.example.net")

    run_burst(o, begin, lambda m, n: transaction(m, o.sender.encode()), lambda m: m.quit())


def cmd_distinct(o):
    """Event n shows value n of --field: HELO "hN-TAG.example" (a session of
    its own, counted at MAIL) or recipient "<uN-TAG@example.org>" (one RCPT
    of the worker's transaction), all from --ip."""
    tag, addr, sender = o.tag, o.ip.encode(), o.sender.encode()

    def helo_event(port, n):
        m = greeted(port, o, addr, ("h%d-%s.example" % (n, tag)).encode())
        text = transaction(m, sender)
        m.quit()
        return text

    def rcpt_begin(i, port):
        m = greeted(port, o, addr, b"client.example.net")
        r = m.mail(sender)
        if r.code != "c":
            raise MilterError("MAIL refused: %s %s" % (r.code, r.text))
        return m

    def rcpt_event(m, n):
        r = m.rcpt(("<u%d-%s@example.org>" % (n, tag)).encode())
        return None if r.code == "c" else "%s %s" % (r.code, r.text)

    def rcpt_end(m):
        m.abort()
        m.quit()

    if o.field == "helo":
        run_burst(o, lambda i, port: port, helo_event, lambda port: None)
    else:
        run_burst(o, rcpt_begin, rcpt_event, rcpt_end)


def key_value(parts):
    """The digest input of ratelimit.h: NAME:LENGTH:VALUE for each part, in order."""
    order = ["client_ip", "sender", "sender_domain", "sasl_user", "recipient",
             "recipient_domain", "helo", "global"]  # global: key = [ ], "global="
    kv = dict(p.split("=", 1) for p in parts)
    out = b""
    for name in order:
        if name in kv:
            v = enc(kv[name])
            out += name.encode() + b":" + str(len(v)).encode() + b":" + v
    return out


def cmd_key(o):
    now = time.time() if o.time is None else o.time
    window = int(now * 1000) // (o.period * 1000) - o.back
    sets = [o.part] if o.part else []
    sets += [["sender=" + s] for s in o.senders.split(",") if s] if o.senders else []
    for parts in sets:
        digest = hashlib.sha256(key_value(parts)).hexdigest()
        print("%s%s:%d:%d:%s" % (o.prefix, o.rule, o.period, window, digest))


def cmd_hostile(o):
    kib = b"x" * 1024
    values = [
        b"<a b@example.net>", b"<a\r\nset x 0 0 1\r\n1@example.net>", b"<%s%n%%@example.net>",
        b"<nul\0byte@example.net>", b"<" + kib + b"@example.net>", b"<x@" + kib + b">",
        b"\r\n", b" ", b"%", b"", b"<>", kib + kib, b"\xff\xfe<\x01\x7f>",
    ]
    bad = 0
    for i, v in enumerate(values):
        try:
            m = open_milter(o.port, o.timeout)
            m.connect(host=v.replace(b"\0", b"") or b"h", addr=b"192.0.2.%d" % (i + 1))
            m.helo(v.replace(b"\0", b"") or b"x")
            for _ in range(3):
                r = m.mail(v, macros={b"{auth_authen}": v.replace(b"\0", b"")})
                if r and r.code in ("c", "n"):
                    m.rcpt(v)
                    m.rcpt(b"<ok@example.org>")
                    m.data()
                else:
                    m.abort()
            m.quit()
            print("value %d ok" % i)
        except (OSError, MilterError) as e:
            bad += 1
            print("value %d failed: %s" % (i, e))
    print("failed=%d" % bad)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("session")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--ip", default="192.0.2.1")
    s.add_argument("--helo", default="client.example.net")
    s.add_argument("--sender", default="<sender@example.net>")
    s.add_argument("--rcpt", action="append", default=[])
    s.add_argument("--auth", default="")
    s.add_argument("--end", choices=["data", "abort", "none"], default="data")
    s.add_argument("--transactions", type=int, default=1)
    s.add_argument("--clock", action="store_true")
    s.add_argument("--pause", type=float, default=0, help="milliseconds between transactions")
    s.add_argument("--timeout", type=float, default=10)
    b = sub.add_parser("burst")
    b.add_argument("--ports", required=True)
    b.add_argument("--sessions", type=int, default=16)
    b.add_argument("--events", type=int, required=True)
    b.add_argument("--sender", required=True)
    b.add_argument("--timeout", type=float, default=20)
    d = sub.add_parser("distinct")
    d.add_argument("--ports", required=True)
    d.add_argument("--sessions", type=int, default=16)
    d.add_argument("--events", type=int, required=True)
    d.add_argument("--field", choices=["helo", "recipient"], required=True)
    d.add_argument("--ip", required=True)
    d.add_argument("--tag", required=True)
    d.add_argument("--sender", default="<distinct@example.net>")
    d.add_argument("--timeout", type=float, default=20)
    k = sub.add_parser("key")
    k.add_argument("--prefix", default="mxgate:")
    k.add_argument("--rule", required=True)
    k.add_argument("--period", type=int, required=True)
    k.add_argument("--part", action="append", default=[])
    k.add_argument("--senders", help="comma-separated: one key per sender")
    k.add_argument("--time", type=float)
    k.add_argument("--back", type=int, default=0)
    h = sub.add_parser("hostile")
    h.add_argument("--port", type=int, required=True)
    h.add_argument("--timeout", type=float, default=10)
    o = ap.parse_args()
    {"session": cmd_session, "burst": cmd_burst, "distinct": cmd_distinct, "key": cmd_key,
     "hostile": cmd_hostile}[o.cmd](o)


if __name__ == "__main__":
    main()
