#!/bin/bash
# run-all.sh - the whole test suite, as README.md and .ci/run run it:
#   1. install what is missing (Debian packages);
#   2. build with warnings as errors and run every test (make check, the
#      default engine, libmilter), then the server tests again under the
#      builtin engine;
#   3. build with ASan+UBSan and do the same two passes;
#   4. build with TSan (clang) and run the unit tests and the threaded
#      server tests under the builtin engine, then those server tests under
#      libmilter (with tests/tsan-libmilter.supp);
#   5. run each libFuzzer target for a bounded time;
#   6. make distcheck (with the unit tests).
# The unit tests and the fuzz corpora do not depend on the engine: they run
# once per build.  Each pass is counted on its own (make check rewrites the
# .trs files of the tests it runs), and the logs of a pass's failing tests
# are kept in BUILD/passes/ENGINE/.
# Builds go to $MXGATE_BUILD_ROOT (default build/ in the source tree), in
# default, asan, tsan and fuzz; build/local, where README.md's first
# command builds, is left alone.  A source tree configured in place
# (./configure run in it) is cleaned with make distclean first: configure
# refuses to build out of tree from it.
# Ends with "N passed, N failed, N skipped" over every TAP test point.
# A pass that ran fewer test points than it is known to have (min_points
# below: a test that stopped early, a script that bailed out, a TESTS list
# gone short) is a failure, and so is any skipped test point: the suite
# installs what it needs and runs as root, so a skip means a test did not
# run.  Exit status 0 only when nothing failed.
set -u
# Debian's tools first: the tests are written against them (a python3 shim
# of a version manager earlier in PATH costs seconds per start).
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
top=$(cd "$(dirname "$0")/.." && pwd)
builds=${MXGATE_BUILD_ROOT:-$top/build}
jobs=${MXGATE_JOBS:-2}
fuzz_seconds=${MXGATE_FUZZ_SECONDS:-20}
passed=0 failed=0 skipped=0
start=$SECONDS
stage= stage_start=$SECONDS times=()

# The test points each pass is known to run (BUILD-ENGINE, and "fuzz" for
# the libFuzzer targets), as counted in a full run.  A change that adds
# points may raise these; one that removes points must say why it lowers
# them.
declare -A min_points=(
    [default-libmilter]=1587 [default-builtin]=1243
    [asan-libmilter]=1512 [asan-builtin]=1190
    [tsan-builtin]=1041 [tsan-libmilter]=721
    [fuzz]=6
)

# note TEXT: a heading; it also starts a new stage for the timing summary.
note() {
    [ -n "$stage" ] && times+=("$(printf '%6ds  %s' $((SECONDS - stage_start)) "$stage")")
    stage=$* stage_start=$SECONDS
    printf '\n=== %s (%ds)\n' "$*" $((SECONDS - start))
}

# one_result STATUS NAME: a stage that is a single test.
one_result() {
    if [ "$1" -eq 0 ]; then passed=$((passed + 1)); echo "  ok: $2"
    else failed=$((failed + 1)); echo "  FAILED: $2"; fi
}

# show_logs FILE...: the last lines of each file that exists, under its name.
show_logs() {
    local f
    for f in "$@"; do
        [ -f "$f" ] || continue
        echo "---- $f (last 30 lines)"
        tail -30 "$f"
    done
}

# make_var BUILD TARGET: what "make print-TARGET" prints in $builds/BUILD.
make_var() {
    (cd "$builds/$1" && make -s "print-$2" 2>/dev/null | tail -1)
}

# both LIST1 LIST2: the words of LIST1 that are also in LIST2, in order.
both() {
    local a b out=
    for a in $1; do
        for b in $2; do
            [ "$a" = "$b" ] && { out+=" $a"; break; }
        done
    done
    echo $out
}

# check_pass BUILD ENGINE LABEL TESTS [VAR=VALUE...]: one "make check
# TESTS=..." in $builds/BUILD under ENGINE (libmilter: the daemon's default,
# $MXGATE is the binary itself; builtin: through engine-wrap.sh), with the
# extra environment given.  Counts the results of TESTS' .trs files only; a
# test that left no .trs is a failure, and so is a make check that failed
# while no test did.  Logs of failing tests are copied to passes/ENGINE/.
check_pass() {
    local build=$1 engine=$2 label=$3 tests=$4
    shift 4
    local dir=$builds/$build out=check-$engine.out keep=passes/$engine
    local env_engine=(-u MXGATE_ENGINE) t base st p=0 f=0 s=0 bad=() shown=
    [ "$engine" = libmilter ] || env_engine=(MXGATE_ENGINE="$engine")
    note "tests: $label"
    (cd "$dir" && env "${env_engine[@]}" "$@" make check TESTS="$tests" >"$out" 2>&1)
    st=$?
    rm -rf "${dir:?}/$keep" && mkdir -p "$dir/$keep"
    for t in $tests; do
        base=${t%.sh}
        if [ ! -f "$dir/$base.trs" ]; then
            f=$((f + 1)) bad+=("$t: no result (.trs) file")
            continue
        fi
        p=$((p + $(grep -c '^:test-result: \(PASS\|XFAIL\)' "$dir/$base.trs")))
        s=$((s + $(grep -c '^:test-result: SKIP' "$dir/$base.trs")))
        if grep -q '^:test-result: \(FAIL\|XPASS\|ERROR\)' "$dir/$base.trs"; then
            f=$((f + $(grep -c '^:test-result: \(FAIL\|XPASS\|ERROR\)' "$dir/$base.trs")))
            mkdir -p "$dir/$keep/$(dirname "$base")"
            cp -p "$dir/$base.log" "$dir/$base.trs" "$dir/$keep/$(dirname "$base")/" 2>/dev/null
            bad+=("$t: $keep/$base.log")
        fi
    done
    if [ "$st" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 bad+=("make check exited $st with no failing test result: see $out")
    fi
    if [ $((p + f)) -lt "${min_points[$build-$engine]:-1}" ]; then
        f=$((f + 1))
        bad+=("$label ran $((p + f - 1)) test points, fewer than the ${min_points[$build-$engine]:-1} it is known to have")
    fi
    if [ "$s" -gt 0 ]; then
        f=$((f + 1))
        bad+=("$label skipped $s test points: $(cd "$dir" && grep -l '^:test-result: SKIP' $(for t in $tests; do echo "${t%.sh}.trs"; done) 2>/dev/null | tr '\n' ' ')")
    fi
    echo "  $label: $p passed, $f failed, $s skipped"
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
    for t in "${bad[@]}"; do
        echo "---- FAILED $t"
        case $t in
        *"$keep/"*.log) grep -E '^(not ok|#|Bail)' "$dir/$keep/${t#*"$keep/"}" | head -40 ;;
        "$label "*) ;;
        *) [ -n "$shown" ] || show_logs "$dir/$out"; shown=yes ;;
        esac
    done
}

mkdir -p "$builds" || exit 1

note "dependencies"
bash "$top/tests/install-deps.sh" all
one_result $? "dependencies installed"

# configure refuses an out-of-tree build from a source tree that was
# configured in place ("source directory already configured"), and the
# objects of such a build would be found through VPATH: clean it first,
# before autoreconf regenerates what its Makefile would rebuild from.
if [ -f "$top/config.status" ]; then
    note "source tree configured in place"
    echo "  $top/config.status exists: the source tree was configured in place;"
    echo "  running make distclean there (removes its ./mxgate and objects; build/ is kept),"
    echo "  since every build here is out of tree, in $builds"
    (cd "$top" && make distclean) >"$builds/distclean.out" 2>&1
    st=$?
    [ $st -eq 0 ] && [ ! -f "$top/config.status" ] || { show_logs "$builds/distclean.out"; st=1; }
    one_result $st "make distclean in the source tree"
fi

note "autoreconf"
(cd "$top" && autoreconf -fi) >"$builds/autoreconf.out" 2>&1
st=$?
[ $st -eq 0 ] || show_logs "$builds/autoreconf.out"
one_result $st "autoreconf"

# build NAME CONFIGURE-ARGS...: configure and make in $builds/NAME.
build() {
    local name=$1
    shift
    rm -rf "${builds:?}/$name" && mkdir -p "$builds/$name" &&
        (cd "$builds/$name" && "$top/configure" -q "$@" >configure.out 2>&1 &&
            make -j"$jobs" >make.out 2>&1 && make -j"$jobs" check TESTS= >>make.out 2>&1)
    local st=$?
    [ $st -eq 0 ] || show_logs "$builds/$name/configure.out" "$builds/$name/config.log" "$builds/$name/make.out"
    one_result $st "build $name ($*)"
    return $st
}

note "build: default, warnings are errors"
if build default --enable-werror; then
    check_pass default libmilter "default build, engine libmilter" "$(make_var default tests)"
    check_pass default builtin "default build, engine builtin" "$(make_var default server-tests)"
fi

note "build: ASan + UBSan"
san="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
san_env=(ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)
if build asan --enable-werror CFLAGS="$san" LDFLAGS="-fsanitize=address,undefined"; then
    sanitized_tests=$(make_var asan sanitized-tests)
    check_pass asan libmilter "ASan+UBSan build, engine libmilter" "$sanitized_tests" "${san_env[@]}"
    check_pass asan builtin "ASan+UBSan build, engine builtin" \
        "$(both "$sanitized_tests" "$(make_var asan server-tests)")" "${san_env[@]}"
fi

note "build: TSan (clang)"
# The threaded parts: the builtin engine's connection threads and pool,
# libmilter's worker pool calling mxgate, the quota cache, the memcached
# handle pool, reload under load, the control thread and the metrics
# endpoint's thread.  Under libmilter, TSan also sees
# libmilter's own (uninstrumented) threads through the pthread calls it
# intercepts: that pass checks only the accesses of instrumented code
# (ignore_noninstrumented_modules=1; the synchronisation libmilter's calls
# make still counts), and tests/tsan-libmilter.supp names the rest, by
# function, in that pass only.
tsan_server_tests="tests/milter/miltertest.sh tests/e2e/daemon.sh tests/e2e/hostile.sh tests/e2e/ratelimit.sh tests/e2e/reload_load.sh tests/e2e/control.sh tests/e2e/metrics.sh"
tsan_opts=halt_on_error=0:second_deadlock_stack=1
if build tsan --enable-werror CC=clang CFLAGS="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread"; then
    # daemon.sh starts a process of each engine in either pass: it gives a
    # libmilter one these options.
    tsan_lm_opts="$tsan_opts:ignore_noninstrumented_modules=1:suppressions=$top/tests/tsan-libmilter.supp:print_suppressions=0"
    check_pass tsan builtin "TSan build, engine builtin" \
        "$(make_var tsan unit-tests) $tsan_server_tests" TSAN_OPTIONS="$tsan_opts" \
        MXGATE_TSAN_LIBMILTER_OPTIONS="$tsan_lm_opts"
    check_pass tsan libmilter "TSan build, engine libmilter" "$tsan_server_tests" \
        TSAN_OPTIONS="$tsan_lm_opts" MXGATE_TSAN_LIBMILTER_OPTIONS="$tsan_lm_opts"
fi

note "libFuzzer targets, ${fuzz_seconds}s each"
if out=$(bash "$top/tests/fuzz/run-libfuzzer.sh" "$builds/fuzz" "$fuzz_seconds" 2>&1); then :; fi
echo "$out" | grep -E '^(ok|not ok)' | sed 's/^/  /'
p=$(grep -c '^ok' <<<"$out"); f=$(grep -c '^not ok' <<<"$out")
[ $((p + f)) -ge "${min_points[fuzz]}" ] ||
    { f=$((f + 1)); echo "  FAILED: $((p + f - 1)) fuzz targets ran, fewer than ${min_points[fuzz]}"; echo "$out" | tail -20; }
passed=$((passed + p)) failed=$((failed + f))

note "make distcheck (unit tests)"
(cd "$builds/default" && make distcheck TESTS="$(make_var default unit-tests)" >distcheck.out 2>&1)
st=$?
[ $st -eq 0 ] || show_logs "$builds/default/distcheck.out"
one_result $st "make distcheck"

note "done"
echo "  stage times:"
printf '  %s\n' "${times[@]}"
echo "  total: $((SECONDS - start))s"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
