#!/bin/bash
# daemon.sh - the daemon's life: -V, -t, start-up errors, pidfile, the
# foreground and background modes, SIGUSR1 reload (new snapshot for new
# sessions, old one kept by sessions in flight, invalid file rejected),
# SIGTERM, and dropping to `user` with a unix socket the MTA's user can use;
# the engine: libmilter by default, `engine = "builtin"` the other, named
# in the start-up line, validated, kept across a reload that changes it.
# Under MXGATE_ENGINE (tests/e2e/lib/engine-wrap.sh) the daemon-life checks
# run on that engine; the engine checks use the real binary, MXGATE_REAL.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=${abs_top_srcdir:-$(cd "$here/../.." && pwd)}
MXGATE=${MXGATE:-${abs_top_builddir:-$(pwd)}/mxgate}
MXGATE_REAL=${MXGATE_REAL:-$MXGATE}
engine=${MXGATE_ENGINE:-libmilter}
. "$here/lib/tap.sh"
. "$here/lib/postfix.sh"
. "$here/lib/mxgate.sh"

pf_need_packages miltertest >/dev/null 2>&1 || command -v miltertest >/dev/null || {
    echo "Bail out! miltertest missing"; exit 99; }
[ -x "$MXGATE" ] || { echo "Bail out! no daemon at $MXGATE"; exit 99; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mxgate-daemon.XXXXXX")
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do pf_kill_pid "$p" 3; done
    rm -rf "$work"
}
trap cleanup EXIT

# bad_helo_rcpt SOCKET WANT: one miltertest session on milter socket SOCKET
# with HELO bad-helo; true when its RCPT gets WANT (an SMFIR_* name):
# SMFIR_REPLYCODE while the HELO check is on, SMFIR_CONTINUE once it is off.
cat >"$work/bad-helo.lua" <<'LUA'
local conn = mt.connect(os.getenv("SOCKET"), 20, 0.1)
if conn == nil then error("connect failed") end
mt.conninfo(conn, "client.example", "192.0.2.9")
mt.helo(conn, "bad-helo")
mt.mailfrom(conn, "<a@example.net>")
mt.rcptto(conn, "<b@example.org>")
if mt.getreply(conn) ~= _G[os.getenv("WANT")] then error("RCPT did not get " .. os.getenv("WANT")) end
mt.disconnect(conn)
LUA
bad_helo_rcpt() {
    SOCKET=$1 WANT=$2 timeout 20 miltertest -s "$work/bad-helo.lua" >/dev/null 2>&1
}

# --- -V and -t -------------------------------------------------------------
out=$("$MXGATE" -V 2>&1)
tap_result $([[ $out =~ ^mxgate\ [0-9]+\.[0-9]+ ]]; echo $?) "-V prints the version (${out%%$'\n'*})"
tap_result $(grep -qE '^libmilter [0-9]+\.[0-9]+\.[0-9]+$' <<<"$out"; echo $?) \
    "-V prints libmilter's version too ($(tail -1 <<<"$out"))"

: >"$work/empty.conf"
"$MXGATE" -t -c "$work/empty.conf" >/dev/null 2>&1
tap_result $? "-t accepts an empty file"

"$MXGATE" -t -c "$top/tests/unit/configs/full.conf" >/dev/null 2>&1
tap_result $? "-t accepts a file with every key"

"$MXGATE" -t -c "$top/contrib/mxgate.conf.example" >/dev/null 2>&1
tap_result $? "-t accepts contrib/mxgate.conf.example"

out=$("$MXGATE" -t -c "$top/tests/unit/configs/many_errors.conf" 2>&1)
st=$?
n=$(grep -c "many_errors.conf:[0-9]*: " <<<"$out")
tap_result $([ $st -eq 1 ] && [ "$n" -eq 3 ]; echo $?) "-t prints every error as FILE:LINE and exits 1 (status $st, $n lines)"

out=$("$MXGATE" -f -c "$top/tests/unit/configs/unknown_key.conf" -p "inet:$(pf_free_port)@127.0.0.1" 2>&1)
st=$?
tap_result $([ $st -eq 1 ] && grep -q 'unknown_key.conf:4: unknown setting "enable"' <<<"$out"; echo $?) \
    "start-up with a bad file exits 1 naming FILE:LINE"

"$MXGATE" -t -c "$work/no-such.conf" >/dev/null 2>&1
tap_result $([ $? -eq 1 ]; echo $?) "-t with a missing file exits 1"

"$MXGATE" -x >/dev/null 2>&1
tap_result $([ $? -eq 1 ]; echo $?) "an unknown option exits 1"

# --- foreground, pidfile, reload, stop ----------------------------------------
port=$(pf_free_port)
cat >"$work/a.conf" <<CONF
pidfile = "$work/mxgate.pid";
trusted_networks = [ ];
CONF
cp "$work/a.conf" "$work/live.conf"
"$MXGATE" -f -c "$work/live.conf" -p "inet:$port@127.0.0.1" 2>"$work/fg.log" &
fg=$!
pids+=("$fg")
wait_for "pf_port_listening $port" 10
tap_result $? "foreground daemon listens on inet:$port@127.0.0.1"
wait_for "[ -s '$work/mxgate.pid' ]" 5
tap_result $([ "$(cat "$work/mxgate.pid" 2>/dev/null)" = "$fg" ]; echo $?) "pidfile holds the daemon's pid"

# A session that starts before a reload keeps its snapshot; a new one sees the new file.
cat >"$work/reload.lua" <<'LUA'
local port = os.getenv("MXPORT")
local function session(helo)
    local conn = mt.connect("inet:" .. port .. "@127.0.0.1", 20, 0.1)
    if conn == nil then error("connect failed") end
    mt.conninfo(conn, "client.example", "192.0.2.9")
    mt.helo(conn, helo)
    return conn
end
local function rcpt_reply(conn)
    mt.mailfrom(conn, "<a@example.net>")
    mt.rcptto(conn, "<b@example.org>")
    return mt.getreply(conn)
end
local old = session("bad-helo")
os.execute(os.getenv("RELOAD"))
local new = session("bad-helo")
local r_old = rcpt_reply(old)
local r_new = rcpt_reply(new)
if r_old ~= SMFIR_REPLYCODE then error("in-flight session lost its snapshot") end
if r_new ~= SMFIR_CONTINUE then error("new session did not get the new configuration") end
mt.disconnect(old)
mt.disconnect(new)
LUA
printf 'pidfile = "%s";\ntrusted_networks = [ ];\nhelo: { enabled = false; };\n' "$work/mxgate.pid" >"$work/b.conf"
MXPORT=$port RELOAD="cp $work/b.conf $work/live.conf && kill -USR1 $fg && sleep 1" \
    timeout 30 miltertest -s "$work/reload.lua" >"$work/reload.out" 2>&1
st=$?
tap_result $st "SIGUSR1: sessions in flight keep their snapshot, new sessions get the new one"
[ $st -eq 0 ] || tap_diag "$(cat "$work/reload.out")"
tap_result $(grep -q "configuration reloaded" "$work/fg.log"; echo $?) "reload is logged"

printf 'helo: { enforce_at = "never"; };\n' >"$work/live.conf"
kill -USR1 "$fg"
wait_for "grep -q 'reload of .* failed' '$work/fg.log'" 5
tap_result $? "an invalid file at reload is logged"
tap_result $(grep -q 'live.conf:1: enforce_at: unknown value "never"' "$work/fg.log"; echo $?) \
    "the reload error names FILE:LINE"
kill -0 "$fg" 2>/dev/null
tap_result $? "the daemon keeps running on the old configuration"
# The old configuration (helo disabled) is still in force.
bad_helo_rcpt "inet:$port@127.0.0.1" SMFIR_CONTINUE
tap_result $? "after a failed reload the running configuration still applies"

mxgate_stop "$fg" "$work/fg.log"
tap_result $? "SIGTERM stops the daemon${MXGATE_STOP_WHY:+ ($MXGATE_STOP_WHY)}"
tap_result "$([[ $MXGATE_STOP_STATUS == 0 ]]; echo $?)" "exit status 0 after SIGTERM ($MXGATE_STOP_STATUS)"
tap_result $([ ! -e "$work/mxgate.pid" ]; echo $?) "pidfile removed at exit"

# --- background mode, unix socket, dropping privileges -------------------------
# A detached daemon's stderr is /dev/null and its exit status goes to init:
# a sanitizer build writes its reports to files under $work/san instead
# (log_path), which must stay empty; the pidfile gone shows a clean stop.
bg_names=("background start returns 0" "background daemon runs" "dropped to user nobody"
    "unix socket owned by the user, mode 770" "the unix socket serves sessions after the privilege drop"
    "a second mxgate on the same unix socket refuses to start" "the first one still serves on its socket"
    "background daemon stops on SIGTERM" "background daemon (user nobody) removed its pidfile and socket"
    "no sanitizer report from the background daemon")
if [ "$(id -u)" -eq 0 ]; then
    mkdir -p "$work/run" "$work/san"
    chmod 755 "$work" "$work/run"
    chmod 1777 "$work/san"
    cat >"$work/bg.conf" <<CONF
socket = "unix:$work/run/mxgate.sock";
pidfile = "$work/run/mxgate.pid";
user = "nobody";
CONF
    san_log=log_path=$work/san/report
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}$san_log UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}$san_log \
        TSAN_OPTIONS=${TSAN_OPTIONS:+$TSAN_OPTIONS:}$san_log "$MXGATE" -c "$work/bg.conf" 2>"$work/bg.err"
    st=$?
    tap_result $st "background start returns 0"
    wait_for "[ -s '$work/run/mxgate.pid' ]" 5
    bg=$(cat "$work/run/mxgate.pid" 2>/dev/null)
    pids+=("$bg")
    tap_result $(kill -0 "$bg" 2>/dev/null; echo $?) "background daemon runs (pid $bg)"
    # The pidfile is written as root, just before the drop: wait for it.
    wait_for "[[ \$(awk '/^Uid:/ {print \$2}' /proc/$bg/status 2>/dev/null) == $(id -u nobody) ]]" 10
    uid=$(awk '/^Uid:/ {print $2}' "/proc/$bg/status" 2>/dev/null)
    tap_result $([ "$uid" = "$(id -u nobody)" ]; echo $?) "dropped to user nobody (uid $uid)"
    owner=$(stat -c '%U %a' "$work/run/mxgate.sock" 2>/dev/null)
    tap_result $([ "$owner" = "nobody 770" ]; echo $?) "unix socket owned by the user, mode 770 ($owner)"
    bad_helo_rcpt "unix:$work/run/mxgate.sock" SMFIR_REPLYCODE
    tap_result $? "the unix socket serves sessions after the privilege drop"
    # A second mxgate on the same socket must not take it over.
    timeout 10 "$MXGATE" -f -c "$work/bg.conf" 2>"$work/second.err"
    st=$?
    tap_result $([ $st -eq 1 ] && grep -q 'another process is listening' "$work/second.err"; echo $?) \
        "a second mxgate on the same unix socket refuses to start (status $st)"
    bad_helo_rcpt "unix:$work/run/mxgate.sock" SMFIR_REPLYCODE
    tap_result $? "the first one still serves on its socket"
    kill -TERM "$bg" 2>/dev/null
    wait_for "! kill -0 $bg 2>/dev/null" 15
    tap_result $? "background daemon stops on SIGTERM"
    [[ ! -e $work/run/mxgate.pid && ! -e $work/run/mxgate.sock ]]
    tap_result $? "background daemon (user nobody) removed its pidfile and socket" ||
        tap_diag "left: $(ls "$work/run")"
    reports=$(find "$work/san" -type f | tr '\n' ' ')
    grep -qE "$MXGATE_REPORT" "$work/bg.err" && reports+="$work/bg.err"
    tap_result "$([[ -z $reports ]]; echo $?)" "no sanitizer report from the background daemon${reports:+: $reports}" ||
        tap_diag "$(cat "$work"/san/* "$work/bg.err" | head -40)"
else
    for n in "${bg_names[@]}"; do echo "ok $((TAP_N += 1)) - $n # SKIP not root"; done
fi


# --- engines ------------------------------------------------------------------
# real ENGINE ARGS...: the real binary, with the sanitizer options of that
# engine: in the TSan build, run-all.sh gives the options for a libmilter
# process (libmilter is not instrumented) as MXGATE_TSAN_LIBMILTER_OPTIONS,
# since this script starts both engines whichever pass it runs in.  Run in
# the background only: it execs, so $! is mxgate's own pid (a signal sent
# to a subshell would not reach mxgate).
real() {
    local e=$1
    shift
    if [[ $e == libmilter && -n ${MXGATE_TSAN_LIBMILTER_OPTIONS:-} ]]; then
        TSAN_OPTIONS=$MXGATE_TSAN_LIBMILTER_OPTIONS exec "$MXGATE_REAL" "$@"
    fi
    exec "$MXGATE_REAL" "$@"
}

# start_real ENGINE CONF LOG [ARGS...]: the real binary in the foreground on
# a free port; sets rpid and rport, true once it listens.
start_real() {
    local e=$1 conf=$2 log=$3
    shift 3
    rport=$(pf_free_port)
    real "$e" -f -c "$conf" -p "inet:$rport@127.0.0.1" "$@" 2>"$log" &
    rpid=$!
    pids+=("$rpid")
    wait_for "pf_port_listening $rport" 10
}
# stop_real LOG: SIGTERM, reap; true when it exited 0 with no sanitizer report.
stop_real() {
    mxgate_stop "$rpid" "$1"
}

: >"$work/empty.conf"
start_real libmilter "$work/empty.conf" "$work/default.log"
tap_result $? "an empty configuration starts"
tap_result $(grep -q "listening on inet:$rport@127.0.0.1 (engine libmilter, configuration $work/empty.conf)" \
    "$work/default.log"; echo $?) "the default engine is libmilter, named in the start-up line"
tap_result $(grep -q 'libmilter\.so' "/proc/$rpid/maps" 2>/dev/null; echo $?) \
    "the default process has libmilter mapped"
tap_result $(ls -l "/proc/$rpid/task" 2>/dev/null | grep -c '^d' | awk '{exit !($1 >= 2)}'; echo $?) \
    "libmilter's threads run (signal and listener threads)"
stop_real "$work/default.log"
tap_result $? "the libmilter process stops on SIGTERM, status 0, no sanitizer report"

for e in builtin libmilter; do
    printf 'engine = "%s";\ntrusted_networks = [ ];\n' "$e" >"$work/engine-$e.conf"
    start_real "$e" "$work/engine-$e.conf" "$work/engine-$e.log"
    tap_result $? "engine = \"$e\" starts"
    tap_result $(grep -q "(engine $e, configuration" "$work/engine-$e.log"; echo $?) \
        "engine = \"$e\": the start-up line names it"
    # A reload that changes the engine, or another setting read at start
    # only, says so and keeps the running one.
    other=$([ $e = builtin ] && echo libmilter || echo builtin)
    printf 'engine = "%s";\ntrusted_networks = [ ];\nsocket = "inet:1@127.0.0.1";\npidfile = "%s";\n' \
        "$other" "$work/elsewhere-$e.pid" >"$work/engine-$e.conf"
    kill -USR1 "$rpid"
    wait_for "grep -q 'configuration reloaded' '$work/engine-$e.log'" 5
    tap_result $(grep -q "engine \"$other\" takes a restart; the $e engine keeps running" \
        "$work/engine-$e.log"; echo $?) "engine = \"$e\": a reload to \"$other\" is logged and ignored"
    tap_result $(grep -q 'socket takes a restart; the running value "inet:8891@127.0.0.1" stays' "$work/engine-$e.log" &&
        grep -q 'pidfile takes a restart; the running value' "$work/engine-$e.log" &&
        [ ! -e "$work/elsewhere-$e.pid" ]; echo $?) \
        "engine = \"$e\": a reload that changes socket and pidfile says each takes a restart"
    bad_helo_rcpt "inet:$rport@127.0.0.1" SMFIR_REPLYCODE
    tap_result $? "engine = \"$e\": still serves with its checks after that reload"
    stop_real "$work/engine-$e.log"
    tap_result $? "engine = \"$e\": stops on SIGTERM, status 0, no sanitizer report"
done

printf 'engine = "postfix";\n' >"$work/bad-engine.conf"
out=$("$MXGATE_REAL" -t -c "$work/bad-engine.conf" 2>&1)
st=$?
tap_result $([ $st -eq 1 ] && grep -q 'bad-engine.conf:1: engine: unknown value "postfix" (expected libmilter | builtin)' <<<"$out"; echo $?) \
    "an unknown engine is a configuration error naming FILE:LINE ($out)"

out=$("$MXGATE_REAL" -f -c "$work/empty.conf" -p "tcp:25" 2>&1)
st=$?
tap_result $([ $st -eq 1 ] && grep -q '"tcp:25" is not a milter socket' <<<"$out"; echo $?) \
    "-p with a bad socket spec exits 1 saying why ($out)"

# Every spelling of a unix socket goes through one parser: -p /PATH too is
# handed to `user` (it was not, once).
if [ "$(id -u)" -eq 0 ]; then
    for e in libmilter builtin; do
        # the directory is the user's, as /run/mxgate would be, so the
        # socket can be removed at exit after the privilege drop
        mkdir -p "$work/run-$e" && chown nobody "$work/run-$e" && chmod 755 "$work/run-$e"
        printf 'engine = "%s";\nuser = "nobody";\n' "$e" >"$work/user-$e.conf"
        real "$e" -f -c "$work/user-$e.conf" -p "$work/run-$e/x.sock" 2>"$work/user-$e.log" &
        rpid=$!
        pids+=("$rpid")
        wait_for "[ -S '$work/run-$e/x.sock' ] && grep -q 'listening on' '$work/user-$e.log'" 10
        owner=$(stat -c '%U %a' "$work/run-$e/x.sock" 2>/dev/null)
        tap_result $([ "$owner" = "nobody 770" ]; echo $?) \
            "engine $e: -p /PATH: the socket is given to user, mode 770 ($owner)"
        stop_real "$work/user-$e.log"
        tap_result $? "engine $e: -p /PATH daemon stops cleanly"
        tap_result $([ ! -e "$work/run-$e/x.sock" ]; echo $?) \
            "engine $e: the socket file is removed at exit"
    done
else
    for e in libmilter builtin; do
        for n in "-p /PATH: the socket is given to user" "-p /PATH daemon stops cleanly" \
            "the socket file is removed at exit"; do
            echo "ok $((TAP_N += 1)) - engine $e: $n # SKIP not root"
        done
    done
fi

! grep -qE "$MXGATE_REPORT" "$work/fg.log"
tap_result $? "no sanitizer report in the foreground daemon's log"

tap_done
exit 0
