#!/bin/bash
# tests/e2e/control.sh - the control socket and mxgatectl (mxgatectl(8)),
# against one mxgate whose rate limits count in a real memcached: status
# (text and JSON), stats matching the refusals the test provoked, reload
# (ok, and a broken file with its FILE:LINE while the old configuration
# keeps running), quota flush, help, the protocol's bounds (an unknown
# command, a request line of exactly 4096 bytes and one over, a client
# that sends nothing is dropped after the 2 s timeout and the next one is
# served), the socket's mode, mxgatectl's exit statuses, a bad
# control_socket value under -t, and a clean stop that removes the socket;
# then, as root, a daemon with user = nobody: the socket's owner, who may
# use it, and its removal from a root-owned directory (SKIP unless root).
#
# The HELO refusals are sessions of lib/rl_milter.py (a raw milter client).
# TAP on stdout; exit 99 only when the harness cannot run.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"
. "$here/lib/memcached.sh"

MXGATECTL=${MXGATECTL:-$abs_top_builddir/mxgatectl}
[[ -x $MXGATE ]] || bail "no daemon at $MXGATE (set MXGATE)"
[[ -x $MXGATECTL ]] || bail "no mxgatectl at $MXGATECTL (set MXGATECTL)"
command -v python3 >/dev/null || pf_need_packages python3 >&2 || bail "python3 missing"
mc_need_package || bail "cannot install memcached"
export PYTHONPATH=$here/lib${PYTHONPATH:+:$PYTHONPATH}

mxpid=
e2e_work control mxpid
trap 'mc_stop_all; e2e_cleanup' EXIT
mcport=$(pf_free_port) || bail "no free port"
mc_start "$work" mc "$mcport" || bail "memcached did not start"

sock=$work/control.sock
conf=$work/control.conf
log=$work/mxgate.log
# write_conf [HELO_ENABLED]: the configuration (replaced by rename); a
# HELO_ENABLED that is not true or false is an error on line 3.
write_conf() {
    cat >"$conf.new" <<EOF
trusted_networks = [ ];
control_socket = "unix:$sock";
helo: { enabled = ${1:-true}; enforce_at = "rcpt"; };
quota: { enabled = false; };
memcached: { servers = [ "127.0.0.1:$mcport" ]; };
ratelimit: { rules = (
  { name = "msgs"; key = [ "client_ip" ]; count = "messages"; limits = [ "100000/1h" ]; }
); };
EOF
    mv -f "$conf.new" "$conf"
}
write_conf
mxgate_start_control "$conf" "$log" "$sock"
started=$?
mxpid=$MXGATE_PID # stopped at exit, also when it started without its socket
((started == 0)) || bail "mxgate did not start with its control socket $sock"

# ctl ARGS...: mxgatectl on the socket (lib/mxgate.sh); sets out, err and st.
ctl() { mxgatectl_on "$sock" "$@"; }
# raw.py PATH WORD TOTAL: WORD padded with spaces to TOTAL bytes, its
# newline included, sent on one connection; prints the answer's status line.
# raw.py PATH silent: one client connects and sends nothing while a second
# asks "status"; prints when each got its answer.
cat >"$work/raw.py" <<'PY'
import socket, sys, time

def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(8)
    s.connect(path)
    return s

def answer(s):
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data, "eof"
            data += chunk
    except socket.timeout:
        return data, "timeout"
    except OSError as e:
        return data, "error " + str(e)

def first(data):
    return data.split(b"\n", 1)[0].decode("latin-1")

path = sys.argv[1]
if sys.argv[2] == "silent":
    t0 = time.monotonic()
    a = connect(path)
    b = connect(path)
    b.sendall(b"status\n")
    b.shutdown(socket.SHUT_WR)
    data_a, end_a = answer(a)
    t_a = time.monotonic() - t0
    data_b, end_b = answer(b)
    t_b = time.monotonic() - t0
    print("silent %s after %.2f s (%s); second %s after %.2f s (%s)"
          % (first(data_a), t_a, end_a, first(data_b), t_b, end_b))
else:
    word, total = sys.argv[2].encode(), int(sys.argv[3])
    s = connect(path)
    s.sendall(word + b" " * (total - len(word) - 1) + b"\n")
    data, end = answer(s)
    print("%s (%s)" % (first(data), end))
PY

# ---- status -----------------------------------------------------------------
engine=${MXGATE_ENGINE:-libmilter}
version=$("$MXGATE" -V | sed -n 's/^mxgate //p')
ctl status
[[ $st == 0 ]] && grep -qx "engine: $engine" <<<"$out" && grep -qx "version: $version" <<<"$out"
tap_result $? "status: exit 0, names the engine ($engine) and the version ($version)" ||
    tap_diag "status $st: $err" "$out"
grep -A1 -x "  memcached 127.0.0.1:$mcport:" <<<"$out" | grep -qx "    breaker: closed"
tap_result $? "status: lists the memcached server with its breaker closed" || tap_diag "$out"
ctl status --json
[[ $st == 0 && $(json '(d["engine"], d["version"], d["backends"][0]["breaker"])') == \
    "('$engine', '$version', 'closed')" ]]
tap_result $? "status --json: one JSON object with the engine, version and breaker" ||
    tap_diag "status $st: $err" "$out"

# ---- stats: the refusals provoked ---------------------------------------------
refusals=3
for ((i = 0; i < refusals; i++)); do
    timeout 30 python3 "$here/lib/rl_milter.py" session --port "$MXGATE_PORT" --ip 192.0.2.7 \
        --helo bogus --sender "<s$i@example.net>" --rcpt "<r@example.org>" --end abort \
        >"$work/session.$i" 2>&1
done
n=$(grep -lE '^RCPT y 504 5\.5\.2 <bogus>' "$work"/session.* | wc -l)
tap_result $([[ $n == "$refusals" ]]; echo $?) "$refusals sessions with a bare HELO are refused at RCPT ($n)" ||
    tap_diag "$(cat "$work"/session.*)"
ctl stats
count=$(awk '$1 == "helo" && $2 == "reject" { print $3 }' <<<"$out")
tap_result $([[ $st == 0 && $count == "$refusals" ]]; echo $?) \
    "stats: helo reject counts the $refusals refusals (${count:-none})" || tap_diag "$out"
ok=$(awk -v s="127.0.0.1:$mcport" '$1 == "memcached" && $2 == s { print $3 }' <<<"$out")
tap_result $([[ ${ok:-0} -ge $refusals ]]; echo $?) \
    "stats: memcached requests answered ok are counted (${ok:-none})" || tap_diag "$out"
ctl stats --json
[[ $st == 0 && $(json 'd["decisions"]["helo"]["reject"]') == "$refusals" ]]
tap_result $? "stats --json: decisions.helo.reject is $refusals" || tap_diag "$out"

# ---- reload -----------------------------------------------------------------
gen() { ctl status --json && json 'd["configuration"]["generation"]'; }
gen0=$(gen)
ctl reload
gen1=$(gen)
[[ $st == 0 && $gen1 -gt $gen0 ]]
tap_result $? "reload: 200, and a new configuration runs (generation $gen0 -> $gen1)" ||
    tap_diag "reload $st: $err" "$out"
write_conf '"maybe"'
ctl reload
[[ $st == 1 && $err == *"mxgatectl: 5"[0-9][0-9]" "* ]] &&
    grep -q "control.conf:3: enabled: expected true or false" <<<"$out"
tap_result $? "reload of a broken file: 5xx, the body names FILE:LINE" || tap_diag "reload $st: $err" "$out"
gen2=$(gen)
timeout 30 python3 "$here/lib/rl_milter.py" session --port "$MXGATE_PORT" --ip 192.0.2.7 \
    --helo bogus --rcpt "<r@example.org>" --end abort >"$work/session.after" 2>&1
mxgate_alive "$mxpid" && [[ $gen2 == "$gen1" ]] && grep -qE '^RCPT y 504 ' "$work/session.after"
tap_result $? "after the failed reload mxgate runs on, on the old configuration (generation $gen2)" ||
    tap_diag "$(cat "$work/session.after")"
write_conf
ctl stats --json
[[ $(json '(d["reloads"]["ok"], d["reloads"]["failed"])') == "(1, 1)" ]]
tap_result $? "stats counts the reloads: 1 ok, 1 failed" || tap_diag "$out"

# ---- the other commands -------------------------------------------------------
ctl quota flush
[[ $st == 0 && $out == "flushed the whole cache" ]]
tap_result $? "quota flush: 200 ($out)"
ctl quota flush bob@example.org
[[ $st == 0 && $out == *"whole cache"* ]]
tap_result $? "quota flush ADDRESS: 200, says the whole cache was flushed"
ctl help
missing=
for c in status stats reload "quota flush" explain "ratelimit show" help; do
    grep -q "^$c" <<<"$out" || missing+=" $c"
done
tap_result $([[ $st == 0 && -z $missing ]]; echo $?) "help lists every command${missing:+ (missing:$missing)}"
ctl frobnicate
[[ $st == 1 && $err == "mxgatectl: 400 unknown command frobnicate" ]]
tap_result $? "an unknown command: 400, mxgatectl exits 1 ($err)"

# ---- the protocol's bounds ------------------------------------------------------
r=$(timeout 20 python3 "$work/raw.py" "$sock" help 4096)
tap_result $([[ $r == "200 ok (eof)" ]]; echo $?) "a request line of 4096 bytes, its newline included, is served ($r)"
r=$(timeout 20 python3 "$work/raw.py" "$sock" status 5000)
tap_result $([[ $r == "400 request too long"* ]]; echo $?) "a request line of 5000 bytes: 400 request too long ($r)"
r=$(timeout 30 python3 "$work/raw.py" "$sock" silent)
re='^silent 400 [^;]* after ([0-9.]+) s \(eof\); second 200 ok after ([0-9.]+) s \(eof\)$'
[[ $r =~ $re ]] && python3 -c 'import sys; a, b = map(float, sys.argv[1:]); sys.exit(not (1.5 <= a <= 3.5 and b <= 4.5))' \
    "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
tap_result $? "a client that sends nothing is dropped after about 2 s, and the next one is served ($r)"

# ---- the socket and mxgatectl ---------------------------------------------------
mode=$(stat -c %a "$sock")
tap_result $([[ $mode == 660 ]]; echo $?) "the control socket's mode is 0660 ($mode)"
out=$(timeout 20 "$MXGATECTL" -c "$conf" status 2>&1)
tap_result $? "mxgatectl -c CONFIG finds the socket in control_socket"
out=$(timeout 20 "$MXGATECTL" -s "unix:$work/none.sock" status 2>&1)
st=$?
[[ $st == 2 && $out == *"$work/none.sock"* ]]
tap_result $? "mxgatectl exits 2 when the socket is missing, naming it ($out)"
out=$(timeout 20 "$MXGATECTL" -s "unix:$sock" 2>&1)
tap_result $([[ $? == 2 && $out == usage:* ]]; echo $?) "mxgatectl without a command: usage, exit 2"
printf '# control_socket must be unix:/PATH\ncontrol_socket = "inet:1234";\n' >"$work/bad.conf"
out=$("$MXGATE" -t -c "$work/bad.conf" 2>&1)
st=$?
[[ $st == 1 && $out == *'bad.conf:2: control_socket: "inet:1234" is not unix:/PATH'* ]]
tap_result $? "-t: a control_socket that is not unix:/PATH is an error naming FILE:LINE ($out)"

# ---- stop ------------------------------------------------------------------------
mxgate_stop_check "$mxpid" "$log" "mxgate with a control socket"
mxpid=
tap_result $([[ ! -e $sock ]]; echo $?) "the control socket is removed at stop"

# ---- started as root with user = nobody -----------------------------------------
# The socket in a root-owned directory nobody cannot write: it belongs to
# nobody and nobody's group, nobody may use it, another uid may not, and
# the process main.c keeps as root removes it at stop.
root_points=("as root with user = nobody: the control socket is nobody's and its group's, mode 0660"
    "nobody may ask for the status"
    "another uid outside the group is refused (exit 2, permission denied)"
    "mxgate run as nobody stops on SIGTERM: status 0, no sanitizer report"
    "the control socket in the root-owned directory is removed at stop")
if [[ $(id -u) != 0 ]] || ! command -v setpriv >/dev/null; then
    for p in "${root_points[@]}"; do echo "ok $((++TAP_N)) # SKIP not root: $p"; done
else
    mkdir -m 0755 "$work/run"
    # The other uids run a copy: the build tree may sit in a 0700 directory (mktemp -d).
    chmod 0755 "$work"
    install -m 0755 "$MXGATECTL" "$work/run/mxgatectl"
    # and so does a TSan build's suppressions file, which mxgatectl reads at start
    supp=${TSAN_OPTIONS:-}
    if [[ $supp == *suppressions=* ]]; then
        supp=${supp#*suppressions=} supp=${supp%%:*}
        install -m 0644 "$supp" "$work/run/tsan.supp" &&
            export TSAN_OPTIONS=${TSAN_OPTIONS//"$supp"/"$work/run/tsan.supp"}
    fi
    sock=$work/run/control.sock
    printf 'trusted_networks = [ ];\nuser = "nobody";\ncontrol_socket = "unix:%s";\n' "$sock" \
        >"$work/nobody.conf"
    mxgate_start "$work/nobody.conf" "$work/nobody.log" 20 || sed 's/^/# /' "$work/nobody.log"
    mxpid=$MXGATE_PID
    wait_for "[[ -S '$sock' ]]" 10
    owner=$(stat -c '%U:%G %a' "$sock" 2>&1)
    tap_result $([[ $owner == "nobody:$(id -gn nobody) 660" ]]; echo $?) "${root_points[0]} ($owner)"
    out=$(setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups \
        timeout 20 "$work/run/mxgatectl" -s "unix:$sock" status 2>&1)
    tap_result $? "${root_points[1]}" || tap_diag "$out"
    out=$(setpriv --reuid=54321 --regid=54321 --clear-groups \
        timeout 20 "$work/run/mxgatectl" -s "unix:$sock" status 2>&1)
    st=$?
    tap_result $([[ $st == 2 && $out == *"Permission denied"* ]]; echo $?) "${root_points[2]} ($out)"
    mxgate_stop_check "$mxpid" "$work/nobody.log" "mxgate run as nobody"
    mxpid=
    [[ ! -e $sock ]] && ! grep -q 'cannot remove' "$work/nobody.log"
    tap_result $? "${root_points[4]}" || tap_diag "$(grep 'cannot remove' "$work/nobody.log")"
fi
tap_done
exit 0
