#!/bin/bash
# run-all.sh - the whole test suite, as README.md and .ci/run run it:
#   1. install what is missing (Debian packages);
#   2. build with warnings as errors and run every test (make check);
#   3. build with ASan+UBSan and run every test again;
#   4. run each libFuzzer target for a bounded time;
#   5. make distcheck (with the unit tests).
# Ends with "N passed, N failed, N skipped" over every TAP test point.
# Exit status 0 only when nothing failed.
set -u
# Debian's tools first: the tests are written against them (a python3 shim
# of a version manager earlier in PATH costs seconds per start).
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
top=$(cd "$(dirname "$0")/.." && pwd)
builds=${MXGATE_BUILD_ROOT:-$top/build}
jobs=${MXGATE_JOBS:-2}
fuzz_seconds=${MXGATE_FUZZ_SECONDS:-30}
passed=0 failed=0 skipped=0
start=$SECONDS

note() { printf '\n=== %s (%ds)\n' "$*" $((SECONDS - start)); }

# count_trs DIR: add the :test-result: lines of DIR's .trs files to the totals.
count_trs() {
    local p f s
    p=$(find "$1" -name '*.trs' -exec grep -h '^:test-result: \(PASS\|XFAIL\)' {} + | wc -l)
    f=$(find "$1" -name '*.trs' -exec grep -h '^:test-result: \(FAIL\|XPASS\|ERROR\)' {} + | wc -l)
    s=$(find "$1" -name '*.trs' -exec grep -h '^:test-result: SKIP' {} + | wc -l)
    echo "  $1: $p passed, $f failed, $s skipped"
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
    find "$1" -name '*.trs' -exec grep -l '^:test-result: \(FAIL\|XPASS\|ERROR\)' {} + |
        sed 's/\.trs$/.log/' | while read -r log; do
            echo "---- $log"
            grep -E '^(not ok|#|Bail)' "$log" | head -40
        done
}

# one_result STATUS NAME: a stage that is a single test.
one_result() {
    if [ "$1" -eq 0 ]; then passed=$((passed + 1)); echo "  ok: $2"
    else failed=$((failed + 1)); echo "  FAILED: $2"; fi
}

note "dependencies"
bash "$top/tests/install-deps.sh" all
one_result $? "dependencies installed"

note "autoreconf"
(cd "$top" && autoreconf -fi >/dev/null 2>&1)
one_result $? "autoreconf"

# build NAME CONFIGURE-ARGS...: configure and make in $builds/NAME.
build() {
    local name=$1
    shift
    rm -rf "${builds:?}/$name" && mkdir -p "$builds/$name" &&
        (cd "$builds/$name" && "$top/configure" -q "$@" >configure.out 2>&1 &&
            make -j"$jobs" >make.out 2>&1 && make -j"$jobs" check TESTS= >>make.out 2>&1)
    local st=$?
    [ $st -eq 0 ] || tail -30 "$builds/$name/configure.out" "$builds/$name/make.out" 2>/dev/null
    one_result $st "build $name ($*)"
    return $st
}

note "build: default, warnings are errors"
if build default --enable-werror; then
    note "tests: default build"
    (cd "$builds/default" && make check >check.out 2>&1)
    count_trs "$builds/default"
fi

note "build: ASan + UBSan"
san="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
if build asan --enable-werror CFLAGS="$san" LDFLAGS="-fsanitize=address,undefined"; then
    note "tests: ASan + UBSan build"
    sanitized_tests=$(cd "$builds/asan" && make -s print-sanitized-tests 2>/dev/null | tail -1)
    (cd "$builds/asan" &&
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        make check TESTS="$sanitized_tests" >check.out 2>&1)
    count_trs "$builds/asan"
fi

note "build: TSan (clang)"
# The threaded parts: the engine's connection threads and pool, the quota
# cache, the memcached handle pool, reload under load.
if build tsan --enable-werror CC=clang CFLAGS="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread"; then
    note "tests: TSan build"
    tsan_tests="$(cd "$builds/tsan" && make -s print-unit-tests 2>/dev/null | tail -1)"
    tsan_tests+=" tests/milter/miltertest.sh tests/e2e/daemon.sh tests/e2e/hostile.sh tests/e2e/ratelimit.sh"
    (cd "$builds/tsan" &&
        TSAN_OPTIONS=halt_on_error=0:second_deadlock_stack=1 \
        make check TESTS="$tsan_tests" >check.out 2>&1)
    count_trs "$builds/tsan"
fi

note "libFuzzer targets, ${fuzz_seconds}s each"
if out=$(bash "$top/tests/fuzz/run-libfuzzer.sh" "$builds/fuzz" "$fuzz_seconds" 2>&1); then :; fi
echo "$out" | grep -E '^(ok|not ok)' | sed 's/^/  /'
p=$(grep -c '^ok' <<<"$out"); f=$(grep -c '^not ok' <<<"$out")
[ "$p" -gt 0 ] || { f=$((f + 1)); echo "$out" | tail -20; }
passed=$((passed + p)) failed=$((failed + f))

note "make distcheck (unit tests)"
(cd "$builds/default" && make distcheck TESTS="$(make -s print-unit-tests | tail -1)" >distcheck.out 2>&1)
st=$?
[ $st -eq 0 ] || tail -30 "$builds/default/distcheck.out"
one_result $st "make distcheck"

note "done in $((SECONDS - start))s"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
