"""smtp_blast.py - an SMTP client that records each message's final reply,
for tests/e2e/faults.sh.  Python 3, standard library only.

  smtp_blast.py send --port P --count N --prefix ID --out FILE
                [--threads 16] [--rate 0] [--timeout 30] [--helo NAME]
                [--from ADDR] [--to ADDR]
      Sends N messages to 127.0.0.1:P from a fixed number of threads, each
      message in an SMTP session of its own (greeting, EHLO, MAIL, RCPT,
      DATA, QUIT).  With --rate R > 0, message K's session starts no
      earlier than (K - 1) / R seconds after the first: a stream of R
      messages a second at most, whatever the server's speed, so a fault of
      a given length meets a known number of messages.  Every message carries the header "X-Faults-Id: ID-K"
      (K = 1..N), so the copy a sink receives can be matched to it.  One
      line per message is appended to FILE as soon as its session ends:

          ID-K T_CONNECT T_REPLY OUTCOME STAGE TEXT

      T_CONNECT is when the session's connection was opened and T_REPLY
      when its final reply arrived (seconds since the epoch).  OUTCOME is
      the 3-digit code of the final reply (the first one that is not 2xx
      or 3xx, or the reply to the message's data), or "timeout" (a read,
      write or connect took longer than --timeout seconds), "closed" (the
      server closed the connection without a reply) or "error" (any other
      failure).  STAGE names the step it came at: banner, ehlo, mail,
      rcpt, data, dot.  Every socket operation is bounded by --timeout.

  smtp_blast.py tally --results FILE --delivered FILE --prefix ID
                [--event FAULT:RESUME]...
      Reads what send wrote and the X-Faults-Id values a sink received
      (one a line), and prints key=value lines: sent, accepted (final
      reply 2xx to the data), tempfailed (4xx at any step), permfailed
      (5xx), failed (timeout, closed, error), delivered (this prefix's
      copies at the sink), duplicates (ids delivered more than once),
      missing (accepted, not delivered), unexpected (delivered, not
      accepted), and per --event (times in seconds since the epoch: when
      the fault began and when service was restarted or resumed) the
      replies received between the two (during_K, during_4xx_K), and
      resume_K: seconds from RESUME to the first accepted message whose
      session was opened at or after RESUME and answered before the next
      FAULT ("none" if there was none).
      before is the number of replies received before the first fault,
      after those received after the last resume.  Up to 5 lines
      "sample=..." show messages that were failed, permfailed, missing or
      unexpected.
"""
import argparse
import collections
import smtplib
import socket
import sys
import threading
import time


class Outcome(Exception):
    """The session's final reply, or why there was none."""

    def __init__(self, outcome, stage, text):
        super().__init__(outcome)
        self.outcome, self.stage, self.text = outcome, stage, text


def one_line(text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(str(text).split())[:160] or "-"


def session(o, mid):
    """One session for message MID: returns (outcome, stage, text)."""
    stage = "banner"
    s = smtplib.SMTP(timeout=o.timeout)
    try:
        try:
            code, msg = s.connect("127.0.0.1", o.port)
            if code != 220:
                raise Outcome(str(code), stage, msg)

            def step(name, cmd, want):
                nonlocal stage
                stage = name
                code, msg = s.docmd(cmd)
                if code != want:
                    raise Outcome(str(code), name, msg)

            step("ehlo", "EHLO " + o.helo, 250)
            step("mail", "MAIL FROM:<%s>" % o.sender, 250)
            step("rcpt", "RCPT TO:<%s>" % o.rcpt, 250)
            step("data", "DATA", 354)
            stage = "dot"
            body = (
                "From: <%s>\r\nTo: <%s>\r\nSubject: faults %s\r\n"
                "Message-ID: <%s@faults.test.example>\r\nX-Faults-Id: %s\r\n\r\n"
                "Message %s of a fault test.\r\n.\r\n"
                % (o.sender, o.rcpt, mid, mid, mid, mid)
            )
            s.send(body.encode("ascii"))
            code, msg = s.getreply()
            raise Outcome(str(code), stage, msg)
        except Outcome as r:
            if r.outcome.startswith("2"):
                try:
                    s.docmd("QUIT")
                except (smtplib.SMTPException, OSError):
                    pass
            return r.outcome, r.stage, one_line(r.text)
        except (socket.timeout, TimeoutError) as e:
            return "timeout", stage, one_line(e) if str(e) else "timed out"
        except smtplib.SMTPServerDisconnected as e:
            # smtplib reports a read that timed out as a lost connection.
            return "timeout" if "timed out" in str(e) else "closed", stage, one_line(e)
        except (smtplib.SMTPException, OSError, ValueError) as e:
            return "error", stage, one_line("%s: %s" % (type(e).__name__, e))
    finally:
        s.close()


def send(o):
    lock = threading.Lock()
    todo = iter(range(1, o.count + 1))
    out = open(o.out, "a", buffering=1)
    start = time.time()

    def worker():
        while True:
            with lock:
                k = next(todo, None)
            if k is None:
                return
            mid = "%s-%d" % (o.prefix, k)
            if o.rate > 0:
                delay = start + (k - 1) / o.rate - time.time()
                if delay > 0:
                    time.sleep(delay)
            t0 = time.time()
            try:
                outcome, stage, text = session(o, mid)
            except Exception as e:  # never lose a message's record
                outcome, stage, text = "error", "client", one_line(repr(e))
            line = "%s %.6f %.6f %s %s %s\n" % (mid, t0, time.time(), outcome, stage, text)
            with lock:
                out.write(line)
                out.flush()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(o.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.close()
    return 0


def tally(o):
    recs = {}
    with open(o.results, encoding="utf-8", errors="replace") as f:
        for line in f:
            p = line.rstrip("\n").split(" ", 5)
            if len(p) < 5 or not p[0].startswith(o.prefix + "-"):
                continue
            recs[p[0]] = (float(p[1]), float(p[2]), p[3], p[4], p[5] if len(p) > 5 else "")
    got = collections.Counter()
    with open(o.delivered, encoding="utf-8", errors="replace") as f:
        for line in f:
            mid = line.strip()
            if mid.startswith(o.prefix + "-"):
                got[mid] += 1

    def kind(outcome):
        return {"2": "accepted", "4": "tempfailed", "5": "permfailed"}.get(outcome[:1], "failed")

    counts = collections.Counter(kind(r[2]) for r in recs.values())
    accepted = {m for m, r in recs.items() if kind(r[2]) == "accepted"}
    missing = sorted(accepted - set(got))
    unexpected = sorted(set(got) - accepted)
    dups = sorted(m for m, n in got.items() if n > 1)
    print("sent=%d" % len(recs))
    for k in ("accepted", "tempfailed", "permfailed", "failed"):
        print("%s=%d" % (k, counts[k]))
    print("delivered=%d" % sum(got.values()))
    print("duplicates=%d" % len(dups))
    print("missing=%d" % len(missing))
    print("unexpected=%d" % len(unexpected))

    events = []
    for e in o.event:
        a, b = e.split(":")
        events.append((float(a), float(b)))
    replies = sorted(r[1] for r in recs.values())
    if events:
        print("before=%d" % sum(1 for t in replies if t < events[0][0]))
        print("after=%d" % sum(1 for t in replies if t >= events[-1][1]))
    for i, (fault, resume) in enumerate(events, 1):
        during = [r for r in recs.values() if fault <= r[1] < resume]
        print("during_%d=%d" % (i, len(during)))
        print("during_4xx_%d=%d" % (i, sum(1 for r in during if r[2].startswith("4"))))
        until = events[i][0] if i < len(events) else float("inf")
        firsts = [r[1] for r in recs.values()
                  if r[0] >= resume and r[1] < until and kind(r[2]) == "accepted"]
        print("resume_%d=%s" % (i, "%.3f" % (min(firsts) - resume) if firsts else "none"))

    samples = [(m, recs[m]) for m in sorted(recs) if kind(recs[m][2]) in ("failed", "permfailed")]
    samples += [(m, recs[m]) for m in missing]
    for m, r in samples[:5]:
        print("sample=%s %s at %s: %s" % (m, r[2], r[3], r[4]))
    for m in unexpected[:5]:
        print("sample=%s delivered, final reply %s" % (m, recs[m][2] if m in recs else "never recorded"))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--prefix", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--threads", type=int, default=16)
    s.add_argument("--rate", type=float, default=0.0)
    s.add_argument("--timeout", type=float, default=30.0)
    s.add_argument("--helo", default="client.example.net")
    s.add_argument("--from", dest="sender", default="sender@example.net")
    s.add_argument("--to", dest="rcpt", default="rcpt@example.org")
    t = sub.add_parser("tally")
    t.add_argument("--results", required=True)
    t.add_argument("--delivered", required=True)
    t.add_argument("--prefix", required=True)
    t.add_argument("--event", action="append", default=[])
    o = ap.parse_args()
    return send(o) if o.cmd == "send" else tally(o)


if __name__ == "__main__":
    sys.exit(main())
