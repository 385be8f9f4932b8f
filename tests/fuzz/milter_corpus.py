#!/usr/bin/env python3
"""milter_corpus.py - write the seed corpus of fuzz_milter.c.

Writes tests/fuzz/corpus/milter/seed-NN: each is one control byte (where
fuzz_milter.c cuts the rest into feeds) followed by what an MTA sends on a
milter connection.  Good sessions as Postfix speaks them (protocol 6, every
action and step offered, macros before each stage, IPv4 and IPv6 clients,
SMFIC_QUIT_NC, SMFIC_ABORT) and malformed ones the engine must refuse.
Run it again after changing it; the files are committed.
"""
import os
import struct

# Commands (libmilter/mfdef.h).
ABORT, BODY, CONNECT, MACRO, BODYEOB, HELO = b"A", b"B", b"C", b"D", b"E", b"H"
QUIT_NC, HEADER, MAIL, EOH, OPTNEG, QUIT = b"K", b"L", b"M", b"N", b"O", b"Q"
RCPT, DATA, UNKNOWN = b"R", b"T", b"U"
ALL_ACTIONS, ALL_STEPS = 0x1FF, 0x1FFFFF
NR_STEPS = 0x000FF080  # SMFIP_NR_* for connect to body, and headers


def packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


def strings(*items):
    return b"".join(s.encode() + b"\0" for s in items)


def optneg(version=6, actions=ALL_ACTIONS, steps=ALL_STEPS):
    return packet(OPTNEG, struct.pack(">III", version, actions, steps))


def macros(stage, **pairs):
    """SMFIC_MACRO for stage (a command byte); names as Postfix sends them."""
    items = []
    for name, value in pairs.items():
        items += ["{%s}" % name if len(name) > 1 else name, value]
    return packet(MACRO, stage + strings(*items))


def connect(host, family, port, addr):
    return packet(CONNECT, strings(host) + family + struct.pack(">H", port) + strings(addr))


def transaction(sender="<alice@example.org>", rcpts=("<bob@example.net>",), args=("SIZE=2048",)):
    out = macros(MAIL, i="4ABC1", mail_addr=sender.strip("<>"))
    out += packet(MAIL, strings(sender, *args))
    for r in rcpts:
        out += macros(RCPT, rcpt_addr=r.strip("<>")) + packet(RCPT, strings(r))
    out += macros(DATA, i="4ABC1") + packet(DATA)
    out += packet(HEADER, strings("Subject", "hello")) + packet(HEADER, strings("From", sender))
    out += macros(EOH, i="4ABC1") + packet(EOH)
    out += packet(BODY, b"hello\r\n.\r\n")
    out += macros(BODYEOB, i="4ABC1", msg_id="<1@example.org>") + packet(BODYEOB)
    return out


def smtp_session(client=("client.example", b"4", 50000, "198.51.100.7"), helo="client.example"):
    out = macros(CONNECT, j="mx.example", daemon_name="smtpd", client_addr=client[3],
                 client_name=client[0], _="%s [%s]" % (client[0], client[3]))
    out += connect(*client)
    out += macros(HELO, tls_version="TLSv1.3") + packet(HELO, strings(helo))
    return out


SEEDS = [
    # 01 a whole Postfix session, IPv4, two recipients, one feed
    (0x00, optneg() + smtp_session() + transaction(rcpts=("<b@example.net>", "<c@example.net>"))
     + packet(QUIT)),
    # 02 IPv6 client written "IPv6:...", cut inside the first header and at 3/8
    (0x35, optneg() + smtp_session(("v6.example", b"6", 25, "IPv6:2001:db8::25"))
     + transaction() + packet(QUIT)),
    # 03 IPv6 without the prefix, a one-byte feed at 5/8
    (0xd7, optneg() + smtp_session(("v6.example", b"6", 25, "2001:db8::26")) + transaction()),
    # 04 two SMTP sessions on one milter connection (SMFIC_QUIT_NC)
    (0x42, optneg() + smtp_session() + transaction() + packet(QUIT_NC)
     + smtp_session(("other.example", b"6", 587, "IPv6:2001:db8::7")) + transaction() + packet(QUIT)),
    # 05 a transaction aborted (RSET), then another
    (0x21, optneg() + smtp_session() + macros(MAIL, i="4X1") + packet(MAIL, strings("<a@b>"))
     + packet(RCPT, strings("<c@d>")) + packet(ABORT) + transaction() + packet(QUIT)),
    # 06 HELO names and addresses that become reply texts (odd first bytes), CR/LF included
    (0x14, optneg() + smtp_session(helo="a\r\nb") + packet(HELO, strings("1" * 40))
     + packet(HELO, strings("Q" + "x" * 1100)) + packet(MAIL, strings("1<x@y>"))
     + packet(RCPT, strings("5<z@y>")) + packet(RCPT, strings("s<z@y>")) + packet(QUIT)),
    # 07 MAIL and RCPT with more than 64 arguments
    (0x63, optneg() + smtp_session()
     + packet(MAIL, strings("<a@example.org>", *("X%d=%d" % (i, i) for i in range(1, 80))))
     + packet(RCPT, strings("<b@example.net>", *("NOTIFY=NEVER",) * 70)) + packet(QUIT)),
    # 08 an old MTA: version 2, nothing offered (the version-1 defaults apply)
    (0x10, optneg(2, 0, 0) + smtp_session() + transaction() + packet(QUIT)),
    # 09 every reply waived that can be, only some actions offered
    (0x27, optneg(6, 0x21, NR_STEPS | 0x7f) + smtp_session() + transaction() + packet(QUIT)),
    # 10 macro lists: odd number of strings, unterminated, empty, unknown stage
    (0x50, optneg() + packet(MACRO, CONNECT + b"j\0mx\0i\0") + packet(MACRO, HELO + b"a\0b\0c")
     + packet(MACRO, MAIL) + packet(MACRO) + packet(MACRO, b"Zz\0v\0")
     + connect("h", b"4", 25, "192.0.2.1") + packet(MAIL, strings("<a@b>")) + packet(BODYEOB)),
    # 11 a command before negotiation
    (0x00, packet(HELO, strings("early.example")) + optneg()),
    # 12 a packet length of 0
    (0x01, optneg() + b"\0\0\0\0" + packet(HELO, strings("x"))),
    # 13 a packet length over 65536
    (0x02, optneg() + b"\x00\x01\x00\x01H" + b"x" * 16),
    # 14 HELO without its NUL, then MAIL without data
    (0x03, optneg() + connect("h", b"U", 0, "") + packet(HELO, b"mx") + packet(MAIL)),
    # 15 an unknown command byte
    (0x04, optneg() + smtp_session() + packet(b"Z", b"zz")),
    # 16 negotiation version 1, then a short negotiation
    (0x05, optneg(1) + packet(OPTNEG, b"\0\0\0\6")),
    # 17 connects of every family: unix, unknown, bad IPv4, truncated
    (0x86, optneg() + connect("local", b"L", 0, "/run/sock") + packet(CONNECT, strings("u") + b"U")
     + connect("bad", b"4", 25, "192.0.2.300") + connect("v6", b"6", 25, "IPv6:")
     + packet(CONNECT, strings("t") + b"4\0") + packet(UNKNOWN, strings("XYZZY")) + packet(QUIT)),
]


def main():
    where = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "milter")
    os.makedirs(where, exist_ok=True)
    for name in os.listdir(where):
        if name.startswith("seed-"):
            os.remove(os.path.join(where, name))
    for n, (control, stream) in enumerate(SEEDS, 1):
        with open(os.path.join(where, "seed-%02d" % n), "wb") as f:
            f.write(bytes([control]) + stream)


if __name__ == "__main__":
    main()
