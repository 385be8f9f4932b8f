#!/bin/bash
# run-libfuzzer.sh BUILDDIR SECONDS - build every tests/fuzz/fuzz_NAME.c with
# clang's libFuzzer (plus ASan and UBSan) and run each for SECONDS on a copy
# of its seed corpus tests/fuzz/corpus/NAME.  Prints one TAP line per
# target; a crash, leak or sanitizer report is "not ok".  New inputs stay
# in BUILDDIR, never in the source tree.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build/fuzz}
seconds=${2:-30}
n=0

rm -rf "$build" && mkdir -p "$build" || exit 1
cd "$build" || exit 1
flags="-g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
if ! "$top/configure" -q CC=clang CFLAGS="$flags" >configure.out 2>&1 ||
    ! make -j2 libmxgate.a >make.out 2>&1; then
    tail -20 configure.out make.out
    echo "not ok 1 - clang build of libmxgate.a for libFuzzer"
    echo "1..1"
    exit 1
fi
libs="$(pkg-config --libs libconfig libmemcached libmariadb) -lpthread"
for src in "$top"/tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    corpus=${name#fuzz_}
    n=$((n + 1))
    mkdir -p "corpus-$corpus"
    if ! clang $flags -fsanitize=fuzzer -I"$top/milter" -D_GNU_SOURCE -std=gnu11 \
        "$src" libmxgate.a $libs -o "$name" >"$name.build" 2>&1; then
        echo "not ok $n - $name builds with libFuzzer"
        sed 's/^/# /' "$name.build" | head -20
        continue
    fi
    if timeout $((seconds + 60)) "./$name" -max_total_time="$seconds" -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 "corpus-$corpus" "$top/tests/fuzz/corpus/$corpus" \
        >"$name.out" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$name.out" | grep -o '[0-9]*$')
        echo "ok $n - $name: ${runs:-?} runs in ${seconds}s, no crash"
    else
        echo "not ok $n - $name crashed or timed out"
        grep -E 'ERROR|SUMMARY|Test unit written' "$name.out" | head -10 | sed 's/^/# /'
    fi
done
echo "1..$n"
