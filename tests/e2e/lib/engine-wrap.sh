#!/bin/bash
# engine-wrap.sh - "$MXGATE" for a test pass under a chosen engine: runs
# the real daemon ($MXGATE_REAL) with `engine = "$MXGATE_ENGINE";` put in
# front of the configuration the test gave, so every test script runs
# unchanged under either engine (tests/run-all.sh runs the suite once per
# engine).  The configuration becomes a file beside the test's own,
# holding the engine line and an @include of it (in a directory of its
# own under $TMPDIR, never in the source tree): errors still name the
# test's file and line, and a reload reads the test's file again.  exec
# keeps the pid the test started.  -t and -V pass straight through.
# libconfig 1.5 puts mxgate's include directory ($MXGATE_SYSCONFDIR, the
# build's sysconfdir) in front of every @include path, absolute or not, so
# the path written is relative to it.
set -u
: "${MXGATE_REAL:?engine-wrap.sh: set MXGATE_REAL to the mxgate binary}"
: "${MXGATE_ENGINE:?engine-wrap.sh: set MXGATE_ENGINE to libmilter or builtin}"
: "${MXGATE_SYSCONFDIR:?engine-wrap.sh: set MXGATE_SYSCONFDIR to the sysconfdir of the build}"
args=("$@") conf= at=-1
for ((i = 0; i < ${#args[@]}; i++)); do
    case ${args[i]} in
    -t | -V) exec "$MXGATE_REAL" "$@" ;;
    -c) at=$((i + 1)) conf=${args[i + 1]:-} ;;
    esac
done
if [[ -n $conf ]]; then
    abs=$(cd "$(dirname "$conf")" && pwd)/$(basename "$conf")
    dir=${TMPDIR:-/tmp}/mxgate-engine-wrap
    mkdir -p "$dir" || exit 1
    wrapped=$dir/$MXGATE_ENGINE${abs//\//_}
    [[ -d $MXGATE_SYSCONFDIR ]] || mkdir -p "$MXGATE_SYSCONFDIR" || exit 1
    rel=$(realpath -m --relative-to="$MXGATE_SYSCONFDIR" "$abs")
    printf 'engine = "%s";\n@include "%s"\n' "$MXGATE_ENGINE" "$rel" >"$wrapped"
    args[at]=$wrapped
else
    wrapped=${TMPDIR:-/tmp}/mxgate-engine-wrap-$MXGATE_ENGINE-defaults.conf
    printf 'engine = "%s";\n' "$MXGATE_ENGINE" >"$wrapped"
    args+=(-c "$wrapped")
fi
exec "$MXGATE_REAL" "${args[@]}"
