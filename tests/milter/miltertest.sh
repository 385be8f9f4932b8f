#!/bin/bash
# miltertest.sh - run each tests/milter/*.lua (one behaviour each) with
# miltertest against an mxgate of its own, and report TAP.
#
# Each script says what it needs in comment lines:
#   --@conf TEXT    a line of the configuration file the daemon gets (none:
#                   an empty file, i.e. every default)
#   --@log TEXT     TEXT must appear in the daemon's log (stderr, -f) once
#                   the script has run: how reply texts, which miltertest
#                   cannot see, are checked
#   --@nolog TEXT   TEXT must not appear there
# The script prints its assertions through lib.lua ("TAP ok - ..."); each
# becomes one TAP line here, prefixed with the script's name.  Per script
# the runner adds: the script ran to its end, each --@log/--@nolog, the
# daemon is still running afterwards, and its log holds no sanitizer
# report.
#
# Usage: miltertest.sh [NAME...]   (NAME: a script without .lua; default all)
# Environment: MXGATE (the daemon; default $abs_top_builddir/mxgate, else
# ./mxgate), abs_top_srcdir or srcdir (to find the scripts; default this
# script's directory), MXGATE_MT_TIMEOUT (seconds per reply, default 5).
# Everything listens on 127.0.0.1 only and is bounded in time; the
# daemons are stopped by pid and the temporary directory removed at exit.
set -u

here=$(cd "$(dirname "$0")" && pwd)
if [[ -n ${abs_top_srcdir:-} && -f $abs_top_srcdir/tests/milter/lib.lua ]]; then
    luadir=$abs_top_srcdir/tests/milter
elif [[ -n ${srcdir:-} && -f $srcdir/tests/milter/lib.lua ]]; then
    luadir=$(cd "$srcdir/tests/milter" && pwd)
else
    luadir=$here
fi
top=$(cd "$luadir/../.." && pwd)
MXGATE=${MXGATE:-${abs_top_builddir:-$(pwd)}/mxgate}

. "$top/tests/e2e/lib/tap.sh"
. "$top/tests/e2e/lib/postfix.sh"
. "$top/tests/e2e/lib/mxgate.sh"

SCRIPT_TIMEOUT=60        # seconds for one miltertest run
START_TIMEOUT=10         # seconds for the daemon to listen

if ! command -v miltertest >/dev/null 2>&1; then
    pf_need_packages miltertest >&2
    if ! command -v miltertest >/dev/null 2>&1; then
        echo "1..0 # SKIP miltertest is not installed and could not be installed"
        exit 0
    fi
fi
[[ -x $MXGATE ]] || { echo "Bail out! no mxgate at $MXGATE (set MXGATE)"; exit 99; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mxgate-miltertest.XXXXXX") || {
    echo "Bail out! mktemp failed"; exit 99; }
daemon_pid=
stopping=()             # daemons sent SIGTERM, not yet reaped
cleanup() {
    local p
    [[ -n $daemon_pid ]] && kill -TERM "$daemon_pid" 2>/dev/null
    for p in $daemon_pid "${stopping[@]%%:*}"; do pf_kill_pid "$p" 6; done
    rm -rf "$work"
    rm -f "${TMPDIR:-/tmp}/.mxgate-e2e-ports.$$"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# directives FILE KEY: the text of the "--@KEY " lines of FILE.
directives() {
    sed -n "s/^--@$2 //p" "$1"
}

run_script() {
    local lua=$1 name conf log out rc done=no text st
    name=$(basename "$lua" .lua)
    conf=$work/$name.conf
    log=$work/$name.log
    directives "$lua" conf >"$conf"

    if ! mxgate_start "$conf" "$log" "$START_TIMEOUT"; then
        tap_result 1 "$name: mxgate starts with the script's configuration"
        tap_diag "configuration:" "$(cat "$conf")" "log:" "$(cat "$log" 2>/dev/null)"
        return
    fi
    daemon_pid=$MXGATE_PID

    out=$(cd "$work" && MXGATE_PORT=$MXGATE_PORT MXGATE_TEST_DIR=$luadir \
        timeout -k 5 "$SCRIPT_TIMEOUT" miltertest -s "$lua" 2>&1 </dev/null)
    rc=$?
    tap_relay "$name: " "$name (miltertest): " <<<"$out" && done=yes
    [[ $rc == 124 || $rc == 137 ]] && tap_diag "$name: miltertest timed out after ${SCRIPT_TIMEOUT}s"
    tap_result "$([[ $rc == 0 && $done == yes ]]; echo $?)" \
        "$name: miltertest ran the script to its end (exit $rc)"

    while IFS= read -r text; do
        [[ -n $text ]] || continue
        grep -qF -- "$text" "$log"
        tap_result $? "$name: log has \"$text\""
    done < <(directives "$lua" log)
    while IFS= read -r text; do
        [[ -n $text ]] || continue
        ! grep -qF -- "$text" "$log"
        tap_result $? "$name: log lacks \"$text\""
    done < <(directives "$lua" nolog)

    mxgate_alive "$daemon_pid"
    st=$?
    tap_result $st "$name: mxgate still running after the script"
    ! grep -qE "$MXGATE_REPORT" "$log"
    tap_result $? "$name: no sanitizer report in mxgate's log while it runs"

    if [[ $TAP_FAILED != "$failed_before" ]]; then
        tap_diag "$name: configuration:" "$(cat "$conf")" "$name: mxgate log:" \
            "$(tail -n 40 "$log")"
    fi
    # Let the daemons stop in parallel while the next scripts run, and reap
    # them at the end (each must stop with status 0 within 10 s).
    kill -TERM "$daemon_pid" 2>/dev/null
    stopping+=("$daemon_pid:$name")
    daemon_pid=
}

# reap_daemons: each daemon sent SIGTERM stops, with status 0, in 10 s.
reap_daemons() {
    local entry pid name st bad=() end=$((SECONDS + 10))
    for entry in "${stopping[@]}"; do
        pid=${entry%%:*} name=${entry#*:}
        while mxgate_alive "$pid" && ((SECONDS < end)); do sleep 0.1; done
        if mxgate_alive "$pid"; then
            kill -KILL "$pid" 2>/dev/null
            bad+=("$name (still running 10 s after SIGTERM)")
        fi
        wait "$pid" 2>/dev/null
        st=$?
        ((st == 0)) || bad+=("$name (exit status $st)")
        # leak and TSan reports are written at exit: read after the wait
        if grep -qE "$MXGATE_REPORT" "$work/$name.log"; then
            bad+=("$name (a sanitizer report at exit)")
            grep -E -A12 "$MXGATE_REPORT" "$work/$name.log" | head -40 | sed "s/^/# $name: /"
        fi
    done
    stopping=()
    ((${#bad[@]} == 0))
    tap_result $? "every mxgate stopped on SIGTERM: status 0, no sanitizer report${bad:+: ${bad[*]}}"
}

scripts=()
if (($#)); then
    for n in "$@"; do
        [[ -f $luadir/${n%.lua}.lua ]] || { echo "Bail out! no script $luadir/${n%.lua}.lua"; exit 99; }
        scripts+=("$luadir/${n%.lua}.lua")
    done
else
    for f in "$luadir"/*.lua; do
        [[ $(basename "$f") == lib.lua ]] && continue
        scripts+=("$f")
    done
fi

for lua in "${scripts[@]}"; do
    failed_before=$TAP_FAILED
    run_script "$lua"
done
reap_daemons
tap_done
exit 0
