#!/usr/bin/env python3
"""metrics_client.py - speak to mxgate's metrics endpoint and read what it
says, for tests/e2e/metrics.sh.  The exposition is parsed by
prometheus_client's own text parser (Debian's python3-prometheus-client),
so a scrape that Prometheus could not read fails here too.

Subcommands (every network wait is bounded by --timeout):

  http PORT METHOD PATH [--out FILE]
        one request to 127.0.0.1:PORT; prints "status N", "content-type V",
        "allow V" and "length N" (body bytes); the body goes to FILE.
  dump FILE
        parse the exposition in FILE; print every sample as
        NAME{LABEL="VALUE",...} VALUE, labels sorted by name, integral
        values without a fraction.  Exit 1 (reason on stderr) when it does
        not parse, or a family has no # HELP or no # TYPE line.
  histograms FILE
        every histogram: buckets cumulative and ending at +Inf, +Inf equal
        to _count, and _count equal to the sum of
        mxgate_backend_requests_total of the same backend and server.
        Prints "histograms N"; exit 1 with the reasons when one is wrong.
  idle PORT
        open a connection and send nothing; print "closed after S" when
        the server closes it within --timeout, else "open".
"""
import argparse
import http.client
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree (make dist copies tests/e2e)
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402


def cmd_http(o):
    conn = http.client.HTTPConnection("127.0.0.1", o.port, timeout=o.timeout)
    conn.request(o.method, o.path)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    print("status %d" % r.status)
    print("content-type %s" % (r.getheader("Content-Type") or ""))
    print("allow %s" % (r.getheader("Allow") or ""))
    print("length %d" % len(body))
    if o.out:
        with open(o.out, "wb") as f:
            f.write(body)


def families(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    fams = list(text_string_to_metric_families(text))
    for fam in fams:
        if fam.type == "unknown" or not fam.documentation:
            raise ValueError("family %s has no # TYPE or no # HELP line" % fam.name)
    return fams


def labels_text(labels):
    return ",".join('%s="%s"' % (k, labels[k]) for k in sorted(labels))


def value_text(v):
    return "%d" % v if v == int(v) else repr(v)


def cmd_dump(o):
    try:
        fams = families(o.file)
    except Exception as e:  # the parser raises ValueError and others
        print("does not parse: %s" % e, file=sys.stderr)
        sys.exit(1)
    for fam in fams:
        for s in fam.samples:
            print("%s{%s} %s" % (s.name, labels_text(s.labels), value_text(s.value)))


def cmd_histograms(o):
    fams = families(o.file)
    requests = {}
    for fam in fams:
        if fam.name == "mxgate_backend_requests":
            for s in fam.samples:
                k = (s.labels["backend"], s.labels["server"])
                requests[k] = requests.get(k, 0) + s.value
    bad, n = [], 0
    for fam in fams:
        if fam.type != "histogram":
            continue
        series = {}
        for s in fam.samples:
            key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            h = series.setdefault(key, {"buckets": [], "count": None})
            if s.name.endswith("_bucket"):
                h["buckets"].append((float(s.labels["le"]), s.value))
            elif s.name.endswith("_count"):
                h["count"] = s.value
        for key, h in series.items():
            n += 1
            b = sorted(h["buckets"])
            counts = [c for _, c in b]
            if not b or b[-1][0] != float("inf"):
                bad.append("%s %s: no +Inf bucket" % (fam.name, key))
                continue
            if any(x > y for x, y in zip(counts, counts[1:])):
                bad.append("%s %s: buckets not cumulative: %s" % (fam.name, key, counts))
            if h["count"] != counts[-1]:
                bad.append("%s %s: _count %s, +Inf %s" % (fam.name, key, h["count"], counts[-1]))
            d = dict(key)
            total = requests.get((d.get("backend"), d.get("server")))
            if total != h["count"]:
                bad.append("%s %s: _count %s, requests by result %s" % (fam.name, key, h["count"], total))
    print("histograms %d" % n)
    for line in bad:
        print(line, file=sys.stderr)
    sys.exit(1 if bad else 0)


def cmd_idle(o):
    s = socket.create_connection(("127.0.0.1", o.port), timeout=o.timeout)
    t = time.monotonic()
    try:
        while s.recv(4096):
            pass
        print("closed after %.1f" % (time.monotonic() - t))
    except socket.timeout:
        print("open")
    except OSError:
        print("closed after %.1f" % (time.monotonic() - t))
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("http")
    h.add_argument("port", type=int)
    h.add_argument("method")
    h.add_argument("path")
    h.add_argument("--out")
    h.add_argument("--timeout", type=float, default=10)
    d = sub.add_parser("dump")
    d.add_argument("file")
    g = sub.add_parser("histograms")
    g.add_argument("file")
    i = sub.add_parser("idle")
    i.add_argument("port", type=int)
    i.add_argument("--timeout", type=float, default=15)
    o = ap.parse_args()
    {"http": cmd_http, "dump": cmd_dump, "histograms": cmd_histograms, "idle": cmd_idle}[o.cmd](o)


if __name__ == "__main__":
    main()
