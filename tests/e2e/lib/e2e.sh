# tests/e2e/lib/e2e.sh - the start of an end-to-end test script: sourced as
# `. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"`.  Sets here (the
# script's directory), abs_top_srcdir, abs_top_builddir and MXGATE (as
# make check sets them, or from the source tree), sources the TAP, Postfix
# and mxgate helpers, and defines bail.
# shellcheck shell=bash
here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
: "${abs_top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${abs_top_builddir:=$abs_top_srcdir}"
: "${MXGATE:=$abs_top_builddir/mxgate}"
. "$here/lib/tap.sh"
. "$here/lib/postfix.sh"
. "$here/lib/mxgate.sh"

# bail REASON: the harness cannot run (TAP "Bail out!", exit 99).
bail() {
    echo "Bail out! $*"
    exit 99
}

# e2e_work NAME [PIDVAR...]: $work, a fresh directory (mode 0755: a daemon
# that dropped to nobody reads it).  At exit, whatever the script's end:
# the process whose pid each variable PIDVAR still holds is stopped (a
# script empties the variable once it stopped that process itself), then
# every private Postfix, and $work is removed.
e2e_work() {
    e2e_pidvars=("${@:2}")
    work=$(mktemp -d "${TMPDIR:-/tmp}/mxgate-$1.XXXXXX") || bail "mktemp"
    chmod 0755 "$work"
    trap e2e_cleanup EXIT
}
e2e_cleanup() {
    local v
    for v in "${e2e_pidvars[@]}"; do
        [[ -n ${!v:-} ]] && pf_kill_pid "${!v}" 30
    done
    pf_stop_all
    rm -rf "$work"
}
