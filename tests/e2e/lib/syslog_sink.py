"""syslog_sink.py SOCKET OUT SECONDS - what a syslog daemon's /dev/log is
to the tests: a datagram socket at SOCKET (mode 0666) whose every message
is appended to OUT as one line ("<PRI>... text", newlines inside a message
made spaces, a trailing NUL or newline dropped).  Ends by itself after
SECONDS.  Python 3, standard library only."""
import os
import socket
import sys
import time

path, out, life = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
s.settimeout(0.2)
end = time.time() + life
with open(out, "a", buffering=1) as f:
    while time.time() < end:
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        f.write(data.decode("utf-8", "replace").rstrip("\n\0").replace("\n", " ") + "\n")
