# mxgate.sh - start the mxgate under test on a free loopback port, for the
# test scripts (sourced after tap.sh and postfix.sh, which gives
# pf_free_port, pf_port_listening and pf_kill_pid).  Needs $MXGATE.

# mxgate_alive PID: running and not a zombie (a child that died stays a
# zombie until waited for, and kill -0 still succeeds on it).
mxgate_alive() {
    local st
    st=$(sed -n 's/^.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)
    [[ -n $st && $st != Z && $st != X ]]
}

# wait_for COND-COMMAND SECONDS: poll (every 0.1 s) until the command
# succeeds; false when SECONDS pass first.
wait_for() {
    local limit=$2 i
    for ((i = 0; i < limit * 10; i++)); do
        eval "$1" && return 0
        sleep 0.1
    done
    return 1
}

# mxgate_start CONF LOG [SECONDS [PORT]]: "$MXGATE -f -c CONF" on a free
# 127.0.0.1 port (or on PORT, when an MTA already points there), its
# output in LOG; waits up to SECONDS (default 10) for it to listen, and
# tries another free port when the one chosen was taken meanwhile.  Sets
# MXGATE_PID and MXGATE_PORT; false (nothing left running) when it did
# not start.  Not in $(...): the daemon must be a
# child of the calling shell.
mxgate_start() {
    local conf=$1 log=$2 limit=${3:-10} fixed=${4:-} port end
    MXGATE_PID= MXGATE_PORT=
    for _ in 1 2 3; do
        port=$fixed
        [[ -n $port ]] || port=$(pf_free_port) || return 1
        "$MXGATE" -f -c "$conf" -p "inet:$port@127.0.0.1" >"$log" 2>&1 &
        MXGATE_PID=$!
        end=$((SECONDS + limit))
        while ((SECONDS < end)); do
            if ! mxgate_alive "$MXGATE_PID"; then
                wait "$MXGATE_PID" 2>/dev/null
                MXGATE_PID=
                break
            fi
            if pf_port_listening "$port"; then
                MXGATE_PORT=$port
                return 0
            fi
            sleep 0.05
        done
        if [[ -n $MXGATE_PID ]]; then
            pf_kill_pid "$MXGATE_PID" 2
            MXGATE_PID=
            return 1
        fi
        [[ -z $fixed ]] && grep -q 'cannot open milter socket' "$log" || return 1
    done
    return 1
}

# mxgate_run CONF LOG PORT: "$MXGATE -f -c CONF" for a CONF whose socket
# is inet:PORT@127.0.0.1 (chosen by the script, which also reloads CONF),
# its output in LOG; waits up to 10 s for it to listen.  Sets MXGATE_PID;
# false, with LOG shown as TAP diagnostics and nothing left running, when
# it did not listen.  Not in $(...): the daemon must be a child of the
# calling shell.
mxgate_run() {
    "$MXGATE" -f -c "$1" </dev/null >"$2" 2>&1 &
    MXGATE_PID=$!
    pf_wait_listen "$3" 10 && return 0
    pf_kill_pid "$MXGATE_PID" 2
    MXGATE_PID=
    sed 's/^/# /' "$2"
    return 1
}

# MXGATE_REPORT: what a sanitizer writes (AddressSanitizer, LeakSanitizer,
# ThreadSanitizer, UndefinedBehaviorSanitizer's "runtime error:").
MXGATE_REPORT='AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:'

# mxgate_stop PID LOG [SECONDS]: stop a daemon the test started, as an init
# system does: SIGTERM, then wait up to SECONDS (default 15: libmilter
# takes 3-5 s) for it to exit, SIGKILL if it does not.  Sets
# MXGATE_STOP_STATUS (the exit status, or "killed", or "gone" when PID is
# empty).  True when it exited 0 and LOG holds no sanitizer report (leak
# and TSan reports are written at exit, so LOG is read only after the
# wait); otherwise false, with the reason in MXGATE_STOP_WHY and the
# report's first lines as TAP diagnostics.  With MXGATE_TERM_SENT set, the
# caller has sent the SIGTERM already (to stop several at once).
mxgate_stop() {
    local pid=$1 log=$2 limit=${3:-15} i
    MXGATE_STOP_STATUS= MXGATE_STOP_WHY=
    if [[ ! $pid =~ ^[0-9]+$ ]]; then
        MXGATE_STOP_STATUS=gone MXGATE_STOP_WHY="it was never started"
    elif [[ -z ${MXGATE_TERM_SENT:-} ]] && ! mxgate_alive "$pid"; then
        wait "$pid" 2>/dev/null
        MXGATE_STOP_STATUS=$?
        MXGATE_STOP_WHY="it had exited before the SIGTERM (status $MXGATE_STOP_STATUS)"
    else
        [[ -n ${MXGATE_TERM_SENT:-} ]] || kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < limit * 20; i++)); do
            mxgate_alive "$pid" || break
            sleep 0.05
        done
        if mxgate_alive "$pid"; then
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            MXGATE_STOP_STATUS=killed
            MXGATE_STOP_WHY="still running ${limit} s after SIGTERM"
        else
            wait "$pid"
            MXGATE_STOP_STATUS=$?
            [[ $MXGATE_STOP_STATUS == 0 ]] || MXGATE_STOP_WHY="exit status $MXGATE_STOP_STATUS"
        fi
    fi
    if [[ -f $log ]] && grep -qE "$MXGATE_REPORT" "$log"; then
        MXGATE_STOP_WHY="${MXGATE_STOP_WHY:+$MXGATE_STOP_WHY; }a sanitizer report in $log"
        grep -E -A12 "$MXGATE_REPORT" "$log" | head -40 | sed 's/^/# /'
    fi
    [[ -z $MXGATE_STOP_WHY ]]
}

# mxgate_stop_check PID LOG NAME: mxgate_stop as a TAP point, "NAME stops
# on SIGTERM: status 0, no sanitizer report".
mxgate_stop_check() {
    mxgate_stop "$1" "$2"
    tap_result $? "$3 stops on SIGTERM: status 0, no sanitizer report${MXGATE_STOP_WHY:+ ($MXGATE_STOP_WHY)}"
}

# mxgate_stop_checks NAME PID LOG [NAME PID LOG...]: SIGTERM to every
# daemon at once (each libmilter one takes 3-5 s), then a
# mxgate_stop_check for each, in order.
mxgate_stop_checks() {
    local a=("$@") i
    for ((i = 0; i + 2 < ${#a[@]}; i += 3)); do
        if [[ ${a[i + 1]} =~ ^[0-9]+$ ]] && mxgate_alive "${a[i + 1]}"; then
            kill -TERM "${a[i + 1]}" 2>/dev/null
        else
            a[i + 1]=${a[i + 1]:+exited:${a[i + 1]}}
        fi
    done
    for ((i = 0; i + 2 < ${#a[@]}; i += 3)); do
        if [[ ${a[i + 1]} == exited:* ]]; then
            mxgate_stop_check "${a[i + 1]#exited:}" "${a[i + 2]}" "${a[i]}"
        else
            MXGATE_TERM_SENT=yes mxgate_stop_check "${a[i + 1]}" "${a[i + 2]}" "${a[i]}"
        fi
    done
}

# mxgatectl_on SOCK ARGS...: $MXGATECTL on unix:SOCK (bounded to 20 s);
# sets out (its stdout), err (its stderr) and st (its exit status).
mxgatectl_on() {
    local sock=$1 errfile
    shift
    errfile=$(mktemp "${TMPDIR:-/tmp}/mxgatectl.XXXXXX")
    out=$(timeout 20 "$MXGATECTL" -s "unix:$sock" "$@" 2>"$errfile")
    st=$?
    err=$(cat "$errfile")
    rm -f "$errfile"
}

# json EXPR: the Python expression EXPR evaluated on $out parsed as JSON (d).
json() {
    python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" <<<"$out"
}

# mxgate_start_control CONF LOG SOCK: mxgate_start (20 s), then wait up to
# 10 s for its control socket SOCK; false, with LOG as TAP diagnostics when
# it did not start, otherwise.  Sets MXGATE_PID and MXGATE_PORT.
mxgate_start_control() {
    mxgate_start "$1" "$2" 20 || { sed 's/^/# /' "$2"; return 1; }
    wait_for "[[ -S '$3' ]]" 10
}
