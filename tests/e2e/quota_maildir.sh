#!/bin/bash
# quota_maildir.sh - the quota check with the maildir source, against real
# maildirs in a temporary directory and the real daemon:
#   1. milter level (a raw milter-protocol client, so reply texts and any
#      byte of an address can be checked): full / room left / SIZE= pushes
#      over; maildirsize files that are empty, binary, 1 MiB, negative, with
#      20-digit numbers, without a trailing newline, a directory, a FIFO,
#      stale; maildirs that are missing, unreadable (the daemon runs as
#      nobody) or symlinked; hostile addresses.  Each gives a reply or no
#      opinion, never a crash, and never an accept of a full mailbox whose
#      data is readable.  on_error switches between tempfail and accept by
#      a SIGUSR1 reload.
#   2. through a private Postfix (tests/e2e/lib/postfix.sh) driven by swaks
#      and a raw SMTP client: one message to one full and two non-full
#      recipients gets exactly the 552 for the full one and reaches
#      smtp-sink for the other two; SIZE= pushes a nearly full mailbox over;
#      a Maildir++ message limit ("0S,5C") reached is refused the same way,
#      one message under it is accepted.
# TAP on stdout; exit 0 after the results, 99 when the harness cannot run.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

[ -x "$MXGATE" ] || bail "no daemon at $MXGATE"
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root (drops to nobody, runs Postfix)"; exit 0; }
command -v python3 >/dev/null || pf_need_packages python3 >&2 ||
    bail "python3 missing"

work=$(mktemp -d "${TMPDIR:-/tmp}/mxgate-quota.XXXXXX")
chmod 0755 "$work"
daemon=
cleanup() {
    [ -n "$daemon" ] && pf_kill_pid "$daemon" 5
    pf_stop_all
    chmod -R u+rwx "$work" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# ---- a raw milter-protocol client (protocol 6, every reply asked for) -------
# A thin command line on top of lib/milter_wire.py.
export PYTHONPATH=$here/lib${PYTHONPATH:+:$PYTHONPATH}
cat >"$work/milter_client.py" <<'EOF'
"""Send one milter session; print one line per RCPT: continue, reject,
tempfail, accept, discard, the text of a custom reply ("552 5.2.2 ..."),
or "eof ..." (the filter went away).
usage: milter_client.py [--each] PORT HELO MAILARG... -- RCPT...
With --each, every RCPT goes in a session of its own.  Arguments take
backslash escapes (\r \n \x00 ...), so any byte can be sent."""
import socket, sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree (make dist copies tests/e2e)
from milter_wire import Milter, MilterError, SMFIF_ALL

def unescape(s):
    return s.encode("utf-8").decode("unicode_escape").encode("latin-1")

def show(r):
    names = {b"c": "continue", b"r": "reject", b"t": "tempfail", b"a": "accept",
             b"d": "discard"}
    if r.cmd == b"y":
        return r.text
    return names.get(r.cmd, "other " + repr(r.cmd))

def session(port, helo, mail_args, rcpts):
    out = []
    try:
        m = Milter(port, timeout=20).optneg(6, SMFIF_ALL, 0)
        m.connect(host=b"client.example", addr=b"192.0.2.10")
        m.helo(helo)
        r = m.mail(*mail_args)
        if r.cmd != b"c":
            out.append("mail " + show(r))
        for rcpt in rcpts:
            out.append(show(m.rcpt(rcpt)))
        m.abort()
        m.quit()
    except (MilterError, ConnectionError, socket.timeout) as e:
        out.append("eof " + type(e).__name__)
    return out

args = sys.argv[1:]
each = args[0] == "--each"
if each:
    args = args[1:]
port, helo = int(args[0]), unescape(args[1])
split = args.index("--")
mail_args = [unescape(a) for a in args[2:split]]
rcpts = [unescape(a) for a in args[split + 1:]]
if each:
    out = [line for r in rcpts for line in session(port, helo, mail_args, [r])]
else:
    out = session(port, helo, mail_args, rcpts)
print("\n".join(out))
EOF

# rcpt [--size N] ADDRESS...: the reply line for each RCPT of one session.
rcpt() {
    local mail=("<sender@example.net>")
    if [ "$1" = --size ]; then
        mail+=("SIZE=$2")
        shift 2
    fi
    timeout 30 python3 "$work/milter_client.py" "$mport" mx.example.net "${mail[@]}" -- "$@" 2>&1
}

FULL_TEXT="552 5.2.2 <full@example.org>: Recipient address rejected: Mailbox full"

# expect NAME WANT [--size N] ADDRESS: one RCPT whose reply is exactly WANT.
expect() {
    local name=$1 want=$2 got
    shift 2
    got=$(rcpt "$@")
    [ "$got" = "$want" ]
    local st=$?
    tap_result $st "$name"
    [ $st -eq 0 ] || tap_diag "sent: $*" "want: $want" "got:  $got"
}

# ---- maildirs -----------------------------------------------------------------
vmail=$work/vmail
dom=$vmail/example.org
# mkmaildir NAME [MAILDIRSIZE-TEXT]: a maildir with cur/ new/ tmp/.
mkmaildir() {
    mkdir -p "$dom/$1/cur" "$dom/$1/new" "$dom/$1/tmp"
    [ $# -ge 2 ] && printf '%b' "$2" >"$dom/$1/maildirsize"
    return 0
}
# message NAME BYTES: one message of BYTES in NAME's cur/ (size from the name).
message() {
    : >"$dom/$1/cur/$RANDOM$RANDOM.M1P1.mx,S=$2:2,S"
}

mkmaildir full '1000S\n1500 3\n'
mkmaildir room '100000S\n1000 1\n'
mkmaildir room2 '100000S\n1000 1\n'
mkmaildir near '10000S\n9000 9\n'
mkmaildir unlimited '0S\n999999999 1\n'
# Maildir++ message limits ("NC"), no byte limit: 5 of 5 is full, 4 of 5 is not.
mkmaildir counted '0S,5C\n500 5\n'
mkmaildir countroom '0S,5C\n400 4\n'
for i in 1 2 3 4 5; do message counted 100; done
for i in 1 2 3 4; do message countroom 100; done
mkmaildir nofile
message nofile 5000
# Malformed usage with a good quota line: the walk finds 2000 bytes > 1000.
for m in huge negative digits20 nonewline; do
    mkmaildir "$m"
    message "$m" 1200
    message "$m" 800
done
{ printf '1000S\n'; head -c $((1 << 20)) /dev/zero | tr '\0' '7'; } >"$dom/huge/maildirsize"
printf '1000S\n100 1\n-5000 -2\n' >"$dom/negative/maildirsize"
printf '1000S\n99999999999999999999 1\n' >"$dom/digits20/maildirsize"
printf '1000S\n100 1' >"$dom/nonewline/maildirsize"
# No usable quota line: no limit known, no opinion.
mkmaildir empty ''
mkmaildir binary
head -c 4096 /dev/urandom >"$dom/binary/maildirsize"
printf '\001\002' >>"$dom/binary/maildirsize"
mkmaildir dirsize
mkdir "$dom/dirsize/maildirsize"
mkmaildir fifo
mkfifo "$dom/fifo/maildirsize"
mkmaildir negquota '-1000S\n1 1\n'
# Over quota: trusted when fresh, recalculated when older than 15 minutes.
mkmaildir stale '1000S\n5000 5\n'
message stale 100
touch -d '20 minutes ago' "$dom/stale/maildirsize"
mkmaildir fresh '1000S\n5000 5\n'
message fresh 100
# Unreadable by the daemon (it runs as nobody), a symlinked maildir, a
# symlink inside a maildir pointing at a big file (not counted).
mkmaildir locked '1000S\n5000 5\n'
chmod 0700 "$dom/locked"
ln -s "$dom/full" "$dom/linked"
mkmaildir withlink '1000S\n'
message withlink 10
head -c 100000 /dev/zero >"$work/big"
ln -s "$work/big" "$dom/withlink/cur/1.M1P1.mx:2,S"
# A nobody-readable tree, as a vmail tree would be for its own user.
chmod -R a+rX "$vmail"
chmod 0700 "$dom/locked"

# ---- the daemon ---------------------------------------------------------------
mport=$(pf_free_port) || bail "no free port"
conf=$work/mxgate.conf
# write_conf ON_ERROR
write_conf() {
    cat >"$conf.new" <<EOF
socket = "inet:$mport@127.0.0.1";
user = "nobody";
log_level = "debug";
trusted_networks = [ ];
helo: { enabled = false; };
ratelimit: { enabled = false; };
overload: { enabled = false; };
quota: {
  maildir_root = "$vmail";
  maildir_template = "%d/%l/";
  cache_ttl = 0;
  on_error = "$1";
};
EOF
    mv "$conf.new" "$conf"
    chmod 0644 "$conf"
}
write_conf tempfail
log=$work/mxgate.log
mxgate_run "$conf" "$log" "$mport" || bail "mxgate did not listen"
daemon=$MXGATE_PID

# finish: stop mxgate (status 0, no sanitizer report: a point) and end.
finish() {
    mxgate_stop_check "$daemon" "$log" "mxgate"
    daemon=
    tap_done
    exit 0
}

# ---- 1. milter level ----------------------------------------------------------
expect "full mailbox: exact 552 reply" "$FULL_TEXT" "<full@example.org>"
expect "room left: no opinion" continue "<room@example.org>"
expect "5 messages of a 5-message limit (0S,5C): the same 552 reply" \
    "552 5.2.2 <counted@example.org>: Recipient address rejected: Mailbox full" "<counted@example.org>"
got=$(rcpt "<full@example.org>" "<room@example.org>" "<room2@example.org>")
tap_result $([ "$got" = "$FULL_TEXT"$'\n'continue$'\n'continue ]; echo $?) \
    "one session: only the full recipient is refused"
expect "nearly full, no SIZE=: no opinion" continue "<near@example.org>"
expect "nearly full, SIZE=500 fits: no opinion" continue --size 500 "<near@example.org>"
expect "nearly full, SIZE=2000 pushes it over: 552" \
    "552 5.2.2 <near@example.org>: Recipient address rejected: Mailbox full" \
    --size 2000 "<near@example.org>"
expect "20-digit SIZE= to a mailbox with room: 552" \
    "552 5.2.2 <room@example.org>: Recipient address rejected: Mailbox full" \
    --size 99999999999999999999 "<room@example.org>"
expect "quota 0S is unlimited" continue --size 5000 "<unlimited@example.org>"
expect "no maildirsize: no limit known" continue "<nofile@example.org>"

# The same full mailbox however the address is spelled (the reply shows it as sent).
for a in "<Full@EXAMPLE.org>" "<full+tag@example.org>" "<\"full\"@example.org>" \
    "<@relay.example:full@example.org>" "<full@example.org.>" "full@example.org"; do
    shown=$a
    [[ $a == \<*\> ]] && shown=${a:1:${#a}-2}
    expect "full mailbox spelled $a: 552" \
        "552 5.2.2 <$shown>: Recipient address rejected: Mailbox full" "$a"
done

# Broken maildirsize files.
for m in huge negative digits20 nonewline; do
    expect "maildirsize $m: recalculated by a walk, 552" \
        "552 5.2.2 <$m@example.org>: Recipient address rejected: Mailbox full" "<$m@example.org>"
done
for m in empty binary dirsize fifo negquota; do
    expect "maildirsize $m: no quota line, no opinion" continue "<$m@example.org>"
done
expect "over quota and fresh: trusted, 552" \
    "552 5.2.2 <fresh@example.org>: Recipient address rejected: Mailbox full" "<fresh@example.org>"
expect "over quota and 20 minutes old: walk finds room" continue "<stale@example.org>"
expect "symlink inside a maildir is not counted" continue "<withlink@example.org>"
expect "missing maildir: no opinion" continue "<missing@example.org>"
expect "unknown domain: no opinion" continue "<full@example.net>"
expect "unreadable maildir, on_error=tempfail: 451" \
    "451 4.3.0 <locked@example.org>: Temporary lookup failure" "<locked@example.org>"
expect "symlinked maildir (not followed), on_error=tempfail: 451" \
    "451 4.3.0 <linked@example.org>: Temporary lookup failure" "<linked@example.org>"

# Hostile addresses: a reply or no opinion, the daemon stays up.
long=$(printf 'a%.0s' $(seq 1 1024))
hostile=(
    '<"fu ll"@example.org>' '<fu\\ll@example.org>' '<"fu\\"ll"@example.org>'
    '<full%example.org@example.org>' '<%d%l%u@example.org>' '<100%@example.org>'
    '<full@example.org>\r\nRCPT TO:<x@example.org>' '<fu\rll@example.org>' '<full\n@example.org>'
    "<$long@example.org>" "<full@$long.org>" "<$long$long$long$long$long$long@example.org>"
    '<..@example.org>' '<full@..>' '<../full@example.org>' '<../../../etc/passwd@example.org>'
    '<a/b@example.org>' '<full@example.org/../example.org>' '<full@example.org/>'
    '<full>' '<>' '' '<' '>' '<@>' '<@example.org>' '<full@>' '<full@@example.org>'
    '<fu\x00ll@example.org>' '<\x00>' '<f\xc3\xbcll@example.org>' '<\xff\xfe@example.org>'
    '<full@[127.0.0.1]>' '<"unterminated@example.org>' '<full@exa mple.org>'
    '<full@example.org>>' '<<full@example.org>'
)
# Each in a session of its own: one line per address, "eof" if the daemon died.
got=$(timeout 60 python3 "$work/milter_client.py" --each "$mport" mx.example.net \
    "<sender@example.net>" -- "${hostile[@]}" 2>&1)
crashed=0
i=0
while IFS= read -r line; do
    case $line in
    continue | [45][0-9][0-9]" "*) ;;
    *) crashed=1; tap_diag "address ${hostile[$i]} gave: $line" ;;
    esac
    i=$((i + 1))
done <<<"$got"
[ "$i" -eq "${#hostile[@]}" ] || { crashed=1; tap_diag "$i answers for ${#hostile[@]} addresses"; }
mxgate_alive "$daemon" || { crashed=1; tap_diag "the daemon died"; }
tap_result $crashed "${#hostile[@]} hostile addresses: each a reply or no opinion"
got=$(rcpt "${hostile[@]:0:12}")
tap_result $([ "$(grep -c '^continue$' <<<"$got")" -eq 12 ]; echo $?) \
    "twelve hostile recipients in one session: no opinion on each"
big=$(head -c 60000 /dev/zero | tr '\0' 'x')
expect "a 60 KB RCPT argument: no opinion" continue "<$big@example.org>"
mxgate_alive "$daemon"
tap_result $? "the daemon is still running"
expect "and still refuses the full mailbox" "$FULL_TEXT" "<full@example.org>"

# on_error = accept, by reload.
write_conf accept
kill -USR1 "$daemon"
for ((i = 0; i < 50; i++)); do
    grep -q "configuration reloaded" "$log" && break
    sleep 0.1
done
expect "unreadable maildir, on_error=accept: no opinion" continue "<locked@example.org>"
tap_result $(grep -q "backend failure, on_error=accept" "$log"; echo $?) \
    "on_error=accept logs the failure it let through"
tap_result $(grep -q "NOQUEUE: reject: RCPT from client.example\[192.0.2.10\]: $FULL_TEXT; from=<sender@example.net> to=<full@example.org>.*check=quota" "$log"; echo $?) \
    "the refusal is logged in Postfix style"

# ---- 2. through Postfix --------------------------------------------------------
pf=$work/pf
pf_start_milter "$pf" "$mport" || finish

out=$(pf_swaks_replies --port "$port" --from sender@example.net \
    --to full@example.org,room@example.org,room2@example.org --data)
tap_result $(grep -qxF "$FULL_TEXT" <<<"$out"; echo $?) \
    "Postfix: exactly '$FULL_TEXT' for the full recipient"
tap_result $([ "$(grep -c '^250 2.1.5 Ok' <<<"$out")" -eq 2 ]; echo $?) \
    "Postfix: the two other recipients are accepted"
tap_result $(grep -q '^250 2.0.0 Ok: queued as' <<<"$out"; echo $?) "Postfix: the message is queued"
[ $? -eq 0 ] || tap_diag "$out"
for ((i = 0; i < 150; i++)); do
    (($(pf_sink_count "$pf") >= 1)) && break
    sleep 0.2
done
tap_result $([ "$(pf_sink_count "$pf")" -eq 1 ]; echo $?) "smtp-sink received the message once"
rcpts=$(cat "$pf"/sink/* 2>/dev/null | tr -d '\r' | grep -ci '^X-Rcpt-Args: <room2\?@example.org>')
tap_result $([ "$rcpts" -eq 2 ]; echo $?) "...addressed to the two recipients with room ($rcpts)"
tap_result $(! cat "$pf"/sink/* 2>/dev/null | grep -qi 'X-Rcpt-Args: <full@'; echo $?) \
    "...and not to the full one"

# SIZE= from a raw SMTP client (swaks does not send it).
# smtp_size SIZE RCPT: the reply to RCPT TO after MAIL FROM with SIZE= (the
# reply to MAIL if that was refused).
smtp_size() { pf_smtp_mail "$port" "<sender@example.net>${1:+ SIZE=$1}" "$2" | tail -1; }
got=$(smtp_size "" near@example.org)
tap_result $([[ $got == 250* ]]; echo $?) "Postfix: nearly full mailbox, no SIZE=: accepted ($got)"
got=$(smtp_size 500 near@example.org)
tap_result $([[ $got == 250* ]]; echo $?) "Postfix: SIZE=500 fits: accepted ($got)"
got=$(smtp_size 2000 near@example.org)
tap_result $([ "$got" = "552 5.2.2 <near@example.org>: Recipient address rejected: Mailbox full" ]; echo $?) \
    "Postfix: SIZE=2000 pushes it over: 552 ($got)"
tap_result $(grep -q "milter-reject: RCPT from" "$pf/maillog"; echo $?) \
    "Postfix logs the milter's refusal"

# Message-count limits through Postfix.
COUNT_TEXT="552 5.2.2 <counted@example.org>: Recipient address rejected: Mailbox full"
got=$(smtp_size "" counted@example.org)
tap_result $([ "$got" = "$COUNT_TEXT" ]; echo $?) \
    "Postfix: 5 messages in a mailbox limited to 5 (0S,5C): $got"
got=$(smtp_size 5000000 countroom@example.org)
tap_result $([[ $got == 250* ]]; echo $?) \
    "Postfix: 4 of 5 messages, no byte limit, SIZE=5000000: accepted ($got)"
tap_result $(grep -F "$COUNT_TEXT; from=<sender@example.net> to=<counted@example.org>" "$log" |
    grep -q 'reject: RCPT from .*check=quota'; echo $?) "the count refusal is logged like a byte refusal"
tap_result $(grep -q "mailbox counted@example.org full by count: 5 messages, limit 5" "$log"; echo $?) \
    "the debug log says it is full by count"

pf_stop "$pf"
finish
