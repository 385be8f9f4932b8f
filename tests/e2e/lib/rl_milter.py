#!/usr/bin/env python3
"""rl_milter.py - a raw milter-protocol client (the MTA's side) for the rate
limit tests: it can claim any client address, send any bytes, run many
sessions at once, and it sees reply texts (miltertest cannot).

Subcommands (every network wait is bounded by --timeout):

  session  one SMTP-like session; prints one line per step:
           "STEP CODE [TEXT]" (CODE c continue, a accept, y custom reply,
           t tempfail, r reject, ...), and "ms=N" after each step with the
           time the milter took.
  burst    N concurrent sessions on each milter port, all started together,
           sending MAIL FROM with one sender until E events were sent;
           prints admitted=, refused=, and each distinct refusal text.
  key      print the memcached key of a rule for the current window.
  hostile  sessions whose addresses, HELO and SASL user hold spaces, CR/LF,
           '%', NUL and 1 KiB strings; prints how each step was answered.
"""
import argparse
import hashlib
import socket
import struct
import sys
import threading
import time

SMFIP_NR = {  # protocol flags: no reply expected at that step
    "connect": 0x1000, "helo": 0x2000, "mail": 0x4000, "rcpt": 0x8000,
    "data": 0x10000, "eoh": 0x40000, "body": 0x80000, "header": 0x80,
}
SMFIP_NO = {
    "connect": 0x01, "helo": 0x02, "mail": 0x04, "rcpt": 0x08, "body": 0x10,
    "header": 0x20, "eoh": 0x40, "data": 0x200,
}
OFFER_ACTIONS = 0x01 | 0x20          # SMFIF_ADDHDRS | SMFIF_QUARANTINE
OFFER_PROTOCOL = 0x1FFFFF & ~0x400 & ~0x800 & ~0x100000  # all but SKIP, RCPT_REJ, HDR_LEADSPC


class MilterError(Exception):
    pass


class Milter:
    """One milter connection, speaking as the MTA (protocol version 6)."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.settimeout(timeout)
        # Steps without a reply follow each other: no Nagle wait for an ACK.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.flags = 0
        self.negotiate()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, cmd, data=b""):
        self.sock.sendall(struct.pack("!I", len(data) + 1) + cmd + data)

    def recv(self):
        while len(self.buf) < 4 or len(self.buf) < 4 + struct.unpack("!I", self.buf[:4])[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise MilterError("milter closed the connection")
            self.buf += chunk
        n = struct.unpack("!I", self.buf[:4])[0]
        pkt, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return pkt[:1], pkt[1:]

    def negotiate(self):
        self.send(b"O", struct.pack("!III", 6, OFFER_ACTIONS, OFFER_PROTOCOL))
        cmd, data = self.recv()
        if cmd != b"O":
            raise MilterError("bad negotiation reply %r" % cmd)
        _, _, self.flags = struct.unpack("!III", data[:12])

    def macro(self, stage, macros):
        if macros:
            data = stage + b"".join(k + b"\0" + v + b"\0" for k, v in macros.items())
            self.send(b"D", data)

    def step(self, name, cmd, data=b""):
        """Send a step; return (code, text, actions) or None when skipped."""
        if self.flags & SMFIP_NO.get(name, 0):
            return None
        self.send(cmd, data)
        if self.flags & SMFIP_NR.get(name, 0):
            return ("n", "", [])
        actions = []
        while True:
            code, body = self.recv()
            if code in (b"h", b"q", b"i", b"m", b"e", b"+", b"-", b"b", b"p"):
                actions.append((code.decode(), body))
                continue
            text = body.rstrip(b"\0").decode("latin-1") if code == b"y" else ""
            return (code.decode(), text, actions)

    def connect(self, ip, hostname=b"client.example.net"):
        fam = b"6" if b":" in ip else b"4"
        return self.step("connect", b"C", hostname + b"\0" + fam + struct.pack("!H", 25) + ip + b"\0")

    def helo(self, name):
        return self.step("helo", b"H", name + b"\0")

    def mail(self, args, macros=None):
        self.macro(b"M", macros or {})
        return self.step("mail", b"M", b"".join(a + b"\0" for a in args))

    def rcpt(self, args):
        return self.step("rcpt", b"R", b"".join(a + b"\0" for a in args))

    def data(self):
        return self.step("data", b"T")

    def eom(self):
        return self.step("eom", b"E")

    def abort(self):
        self.send(b"A")

    def quit(self):
        try:
            self.send(b"Q")
        except OSError:
            pass
        self.close()


def enc(s):
    """Command-line text to bytes; \\r \\n \\0 \\xNN escapes are decoded."""
    return s.encode("latin-1").decode("unicode_escape").encode("latin-1")


def show(step, r, ms):
    if r is None:
        print("%s skipped" % step)
    else:
        code, text, actions = r
        print(("%s %s %s" % (step, code, text)).rstrip())
        for a, body in actions:
            print("%s action %s %s" % (step, a, body.replace(b"\0", b"|").decode("latin-1")))
    print("ms=%d" % ms)
    sys.stdout.flush()


def timed(fn, *a):
    t = time.monotonic()
    r = fn(*a)
    return r, int((time.monotonic() - t) * 1000)


def cmd_session(o):
    m = Milter(o.port, o.timeout)
    show("CONNECT", *timed(m.connect, enc(o.ip)))
    show("HELO", *timed(m.helo, enc(o.helo)))
    for n in range(o.transactions):
        macros = {b"{auth_authen}": enc(o.auth)} if o.auth else {}
        r, ms = timed(m.mail, [enc(o.sender)], macros)
        show("MAIL", r, ms)
        if r and r[0] in ("c", "n"):
            for rc in o.rcpt:
                show("RCPT", *timed(m.rcpt, [enc(rc)]))
            if o.end == "data":
                r, ms = timed(m.data)
                show("DATA", r, ms)
                if r and r[0] != "a":
                    show("EOM", *timed(m.eom))
            elif o.end == "abort":
                m.abort()
                print("ABORT")
        else:
            m.abort()
            print("ABORT")
    m.quit()


def cmd_burst(o):
    ports = [int(p) for p in o.ports.split(",")]
    tickets = [o.events]
    lock = threading.Lock()
    results = {"admitted": 0, "refused": 0, "errors": 0, "texts": set()}
    nthreads = o.sessions * len(ports)
    barrier = threading.Barrier(nthreads, timeout=o.timeout)

    def take():
        with lock:
            if tickets[0] <= 0:
                return False
            tickets[0] -= 1
            return True

    def worker(i, port):
        try:
            m = Milter(port, o.timeout)
            m.connect(("192.0.2.%d" % (i % 250 + 1)).encode())
            m.helo(b"client.example.net")
        except (OSError, MilterError) as e:
            with lock:
                results["errors"] += 1
            print("# session %d: %s" % (i, e), file=sys.stderr)
            barrier.abort()
            return
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            m.close()
            return
        try:
            while take():
                code, text, _ = m.mail([o.sender.encode()])
                if code == "c":
                    m.rcpt([b"<rcpt@example.org>"])
                    r = m.data()
                    if r[0] != "a":
                        m.eom()
                    with lock:
                        results["admitted"] += 1
                else:
                    m.abort()
                    with lock:
                        results["refused"] += 1
                        results["texts"].add("%s %s" % (code, text))
            m.quit()
        except (OSError, MilterError) as e:
            with lock:
                results["errors"] += 1
            print("# session %d: %s" % (i, e), file=sys.stderr)

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


def key_value(parts):
    """The digest input of ratelimit.h: NAME:LENGTH:VALUE for each part, in order."""
    order = ["client_ip", "sender", "sender_domain", "sasl_user", "recipient",
             "recipient_domain", "helo"]
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
            m = Milter(o.port, o.timeout)
            m.connect(b"192.0.2.%d" % (i + 1), hostname=v.replace(b"\0", b"") or b"h")
            m.helo(v.replace(b"\0", b"") or b"x")
            for _ in range(3):
                r = m.mail([v], {b"{auth_authen}": v.replace(b"\0", b"")})
                if r and r[0] in ("c", "n"):
                    m.rcpt([v])
                    m.rcpt([b"<ok@example.org>"])
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
    s.add_argument("--timeout", type=float, default=10)
    b = sub.add_parser("burst")
    b.add_argument("--ports", required=True)
    b.add_argument("--sessions", type=int, default=16)
    b.add_argument("--events", type=int, required=True)
    b.add_argument("--sender", required=True)
    b.add_argument("--timeout", type=float, default=20)
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
    {"session": cmd_session, "burst": cmd_burst, "key": cmd_key, "hostile": cmd_hostile}[o.cmd](o)


if __name__ == "__main__":
    main()
