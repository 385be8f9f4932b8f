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
