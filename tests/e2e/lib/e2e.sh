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
