"""milter_wire.py - the MTA's side of the milter protocol, for the e2e tests
(hostile.sh, quota_maildir.sh, lib/rl_milter.py).  Python 3, standard
library only.

A packet is a 4-byte big-endian length (command byte plus data), the
command byte, the data.  Milter(port) opens a TCP connection to 127.0.0.1;
optneg() negotiates as Postfix 3.7 does by default (protocol version 6,
every action, every step flag: milter8.c's my_actions and
MILTER8_V6_PROTO_MASK), or with the version, actions and steps given.

The step methods (connect, helo, mail, rcpt, data, eom) honour what was
negotiated, as Postfix does: a step the milter asked not to get (SMFIP_NO*)
is not sent and gives None; a step it will not answer (SMFIP_NR_*) is sent
and gives NO_REPLY without waiting; any other gives the milter's Reply.
send() and raw() write any packet or any bytes, read() and outcome() read
one packet, whatever it is.
"""
import socket
import struct

# Commands, MTA to milter.
SMFIC_ABORT = b"A"
SMFIC_BODY = b"B"
SMFIC_CONNECT = b"C"
SMFIC_MACRO = b"D"
SMFIC_BODYEOB = b"E"
SMFIC_HELO = b"H"
SMFIC_QUIT_NC = b"K"
SMFIC_HEADER = b"L"
SMFIC_MAIL = b"M"
SMFIC_EOH = b"N"
SMFIC_OPTNEG = b"O"
SMFIC_QUIT = b"Q"
SMFIC_RCPT = b"R"
SMFIC_DATA = b"T"
SMFIC_UNKNOWN = b"U"

# Replies, milter to MTA.  The modifications and progress come before a
# step's final reply (at end of message only, from a well-behaved milter).
SMFIR_ADDRCPT = b"+"
SMFIR_DELRCPT = b"-"
SMFIR_ADDRCPT_PAR = b"2"
SMFIR_ACCEPT = b"a"
SMFIR_REPLBODY = b"b"
SMFIR_CONTINUE = b"c"
SMFIR_DISCARD = b"d"
SMFIR_CHGFROM = b"e"
SMFIR_ADDHEADER = b"h"
SMFIR_INSHEADER = b"i"
SMFIR_CHGHEADER = b"m"
SMFIR_PROGRESS = b"p"
SMFIR_QUARANTINE = b"q"
SMFIR_REJECT = b"r"
SMFIR_SKIP = b"s"
SMFIR_TEMPFAIL = b"t"
SMFIR_REPLYCODE = b"y"
INTERIM = frozenset((SMFIR_ADDRCPT, SMFIR_DELRCPT, SMFIR_ADDRCPT_PAR, SMFIR_REPLBODY,
                     SMFIR_CHGFROM, SMFIR_ADDHEADER, SMFIR_INSHEADER, SMFIR_CHGHEADER,
                     SMFIR_PROGRESS, SMFIR_QUARANTINE))

# Actions the milter may take (SMFIF_*).
SMFIF_ADDHDRS = 0x01
SMFIF_CHGBODY = 0x02
SMFIF_ADDRCPT = 0x04
SMFIF_DELRCPT = 0x08
SMFIF_CHGHDRS = 0x10
SMFIF_QUARANTINE = 0x20
SMFIF_CHGFROM = 0x40
SMFIF_ADDRCPT_PAR = 0x80
SMFIF_SETSYMLIST = 0x100
SMFIF_ALL = 0x1FF

# Protocol flags (SMFIP_*): steps not sent, replies not given, extensions.
SMFIP_NOCONNECT = 0x01
SMFIP_NOHELO = 0x02
SMFIP_NOMAIL = 0x04
SMFIP_NORCPT = 0x08
SMFIP_NOBODY = 0x10
SMFIP_NOHDRS = 0x20
SMFIP_NOEOH = 0x40
SMFIP_NR_HDR = 0x80
SMFIP_NOUNKNOWN = 0x100
SMFIP_NODATA = 0x200
SMFIP_SKIP = 0x400
SMFIP_RCPT_REJ = 0x800
SMFIP_NR_CONN = 0x1000
SMFIP_NR_HELO = 0x2000
SMFIP_NR_MAIL = 0x4000
SMFIP_NR_RCPT = 0x8000
SMFIP_NR_DATA = 0x10000
SMFIP_NR_UNKN = 0x20000
SMFIP_NR_EOH = 0x40000
SMFIP_NR_BODY = 0x80000
SMFIP_HDR_LEADSPC = 0x100000
SMFIP_ALL = 0x1FFFFF

# What Postfix 3.7 offers with its default milter_protocol = 6.
POSTFIX_VERSION = 6
POSTFIX_ACTIONS = SMFIF_ALL
POSTFIX_PROTOCOL = SMFIP_ALL

# Each step: its command, the flag that skips it, the flag that leaves it unanswered.
STEPS = {
    "connect": (SMFIC_CONNECT, SMFIP_NOCONNECT, SMFIP_NR_CONN),
    "helo": (SMFIC_HELO, SMFIP_NOHELO, SMFIP_NR_HELO),
    "mail": (SMFIC_MAIL, SMFIP_NOMAIL, SMFIP_NR_MAIL),
    "rcpt": (SMFIC_RCPT, SMFIP_NORCPT, SMFIP_NR_RCPT),
    "data": (SMFIC_DATA, SMFIP_NODATA, SMFIP_NR_DATA),
    "header": (SMFIC_HEADER, SMFIP_NOHDRS, SMFIP_NR_HDR),
    "eoh": (SMFIC_EOH, SMFIP_NOEOH, SMFIP_NR_EOH),
    "body": (SMFIC_BODY, SMFIP_NOBODY, SMFIP_NR_BODY),
    "unknown": (SMFIC_UNKNOWN, SMFIP_NOUNKNOWN, SMFIP_NR_UNKN),
    "eom": (SMFIC_BODYEOB, 0, 0),
}

MAX_PACKET = 1 << 20            # a longer reply is a protocol error


class MilterError(Exception):
    pass


class Closed(MilterError):
    """The milter closed the connection."""


class ProtocolError(MilterError, ValueError):
    """A reply no milter may send (bad length, bad negotiation)."""


class Reply(tuple):
    """A step's final reply, (command byte, data) as on the wire, e.g.
    (b"y", b"550 5.7.1 No\\0"); it compares and prints as that tuple.
    .actions: the interim packets that came before it, (command, data) each."""

    def __new__(cls, cmd, data=b"", actions=()):
        r = tuple.__new__(cls, (cmd, data))
        r.actions = list(actions)
        return r

    @property
    def cmd(self):
        return self[0]

    @property
    def data(self):
        return self[1]

    @property
    def code(self):
        """The command as text: "c", "y", ..., "n" for NO_REPLY."""
        return self[0].decode("latin-1")

    @property
    def text(self):
        """An SMFIR_REPLYCODE's text ("550 5.7.1 ..."), "" for any other reply."""
        return self[1].rstrip(b"\0").decode("latin-1") if self[0] == SMFIR_REPLYCODE else ""


NO_REPLY = Reply(b"n")          # sent, and the milter said it would not answer


class Milter:
    """One milter connection, speaking as the MTA."""

    def __init__(self, port, timeout=10.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        # Without it, a packet that gets no reply (abort, an NR step)
        # followed by one that does waits ~40 ms for a delayed ACK.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.version = self.actions = self.pflags = 0

    # ---- packets -----------------------------------------------------------

    def raw(self, b):
        self.sock.sendall(b)

    def send(self, cmd, data=b""):
        self.sock.sendall(struct.pack(">I", len(data) + 1) + cmd + data)

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed("connection closed by mxgate")
            self.buf += chunk

    def read(self, timeout=None):
        """One packet, (command byte, data).  A timeout given stays the socket's."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        self._fill(4)
        n, = struct.unpack(">I", self.buf[:4])
        if n == 0 or n > MAX_PACKET:
            raise ProtocolError("reply with length %d" % n)
        self._fill(4 + n)
        pkt, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return pkt[:1], pkt[1:]

    def outcome(self, timeout=1.0):
        """A packet, or 'closed' / 'silent' when none comes."""
        try:
            return self.read(timeout)
        except socket.timeout:
            return "silent"
        except (Closed, OSError):
            return "closed"

    def reply(self, timeout=None):
        """The next final reply, with the interim packets before it."""
        actions = []
        while True:
            cmd, data = self.read(timeout)
            if cmd not in INTERIM:
                return Reply(cmd, data, actions)
            actions.append((cmd, data))

    # ---- the session -------------------------------------------------------

    def optneg(self, version=POSTFIX_VERSION, actions=POSTFIX_ACTIONS, protocol=POSTFIX_PROTOCOL):
        """Negotiate; sets .version, .actions and .pflags from the milter's answer."""
        self.send(SMFIC_OPTNEG, struct.pack(">III", version, actions, protocol))
        cmd, data = self.read()
        if cmd != SMFIC_OPTNEG or len(data) < 12:
            raise ProtocolError("negotiation answered %r" % cmd)
        self.version, self.actions, self.pflags = struct.unpack(">III", data[:12])
        # then the macro lists asked for: 4-byte stage, NUL-terminated names
        self.symlists, rest = {}, data[12:]
        while len(rest) >= 5 and b"\0" in rest[4:]:
            stage, = struct.unpack(">I", rest[:4])
            names, rest = rest[4:].split(b"\0", 1)
            self.symlists[stage] = names
        return self

    def macro(self, stage, *items):
        """SMFIC_MACRO for STAGE (a command byte): name, value, name, value..."""
        self.send(SMFIC_MACRO, stage + b"".join(x + b"\0" for x in items))

    def step(self, name, data=b"", macros=None):
        """Send step NAME (a key of STEPS) after its macros (a dict, sent even
        when the step is not, as Postfix does); None, NO_REPLY or the Reply."""
        cmd, skip, noreply = STEPS[name]
        if macros:
            self.macro(cmd, *[x for kv in macros.items() for x in kv])
        if self.pflags & skip:
            return None
        self.send(cmd, data)
        if self.pflags & noreply:
            return NO_REPLY
        return self.reply()

    def connect(self, host=b"client.example.net", family=None, addr=b"192.0.2.1", port=25,
                macros=None):
        """FAMILY: b"4", b"6" (the default: by ADDR), b"L" (ADDR a path), b"U" (no port, no ADDR)."""
        if family is None:
            family = b"6" if b":" in addr else b"4"
        data = host + b"\0" + family
        if family != b"U":
            data += struct.pack(">H", port) + addr + b"\0"
        return self.step("connect", data, macros)

    def helo(self, name, macros=None):
        return self.step("helo", name + b"\0", macros)

    def mail(self, *args, macros=None):
        return self.step("mail", b"".join(a + b"\0" for a in args), macros)

    def rcpt(self, *args, macros=None):
        return self.step("rcpt", b"".join(a + b"\0" for a in args), macros)

    def data(self, macros=None):
        return self.step("data", b"", macros)

    def eom(self, macros=None):
        return self.step("eom", b"", macros)

    def abort(self):
        self.send(SMFIC_ABORT)

    def quit(self):
        try:
            self.send(SMFIC_QUIT)
        except OSError:
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
