# tap.sh - TAP output for the shell tests: tap_result STATUS NAME, tap_check,
# tap_diag, tap_relay (a client's "TAP ..." lines), tap_done.
# Sourced; keeps its own counter.  Results go to stdout, diagnostics as "# ..." lines.
TAP_N=0
TAP_FAILED=0

# tap_result STATUS NAME...: "ok N - NAME" when STATUS is 0, else "not ok";
# returns STATUS, so "tap_result ... || tap_diag ..." shows why it failed.
tap_result() {
    local status=$1
    shift
    TAP_N=$((TAP_N + 1))
    if [ "$status" -eq 0 ]; then
        echo "ok $TAP_N - $*"
    else
        echo "not ok $TAP_N - $*"
        TAP_FAILED=$((TAP_FAILED + 1))
    fi
    return "$status"
}

# tap_check NAME COMMAND...: run COMMAND, report its status under NAME.
tap_check() {
    local name=$1
    shift
    "$@"
    tap_result $? "$name"
}

tap_diag() {
    printf '%s\n' "$@" | sed 's/^/# /'
}

# tap_relay PREFIX [OTHER]: turn the "TAP ok - ..." / "TAP not ok - ..." /
# "TAP # ..." lines of a client (stdin: lib.lua's miltertest scripts, the
# raw protocol client) into numbered TAP lines and diagnostics, each name
# prefixed with PREFIX; any other non-empty line becomes a diagnostic
# prefixed with OTHER (default PREFIX).  True if the client said "done".
# Read from a redirection, not a pipe: the counters live in this shell.
tap_relay() {
    local prefix=$1 other=${2-$1} line finished=no
    while IFS= read -r line; do
        case $line in
            "TAP ok - "*) tap_result 0 "$prefix${line#TAP ok - }" ;;
            "TAP not ok - "*) tap_result 1 "$prefix${line#TAP not ok - }" ;;
            "TAP # "*) tap_diag "$prefix${line#TAP # }" ;;
            "TAP done"*) finished=yes ;;
            *) [[ -n $line ]] && tap_diag "$other$line" ;;
        esac
    done
    [[ $finished == yes ]]
}

# tap_done: the plan goes last (TAP allows it), so a script need not count ahead.
tap_done() {
    echo "1..$TAP_N"
}
