# tap.sh - TAP output for the shell tests: tap_ok COND-STATUS NAME, tap_plan_end.
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

# tap_done: the plan goes last (TAP allows it), so a script need not count ahead.
tap_done() {
    echo "1..$TAP_N"
}
