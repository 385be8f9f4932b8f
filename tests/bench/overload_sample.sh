#!/bin/bash
# tests/bench/overload_sample.sh -- what one overload sample costs with
# 100,000 messages in the queue: the sampler's bounded scan against a full
# count, for a flat Postfix incoming/ queue, a hashed one (16 x 16
# subdirectories, hash_queue_depth = 2) and a Sendmail queue (a qf and a df
# file per message).  Not a test (not in TESTS); run it by hand:
#
#   make check TESTS=   # builds tests/bench/bench_overload
#   tests/bench/overload_sample.sh [MESSAGES] [QUEUE_HIGH...]
#
# BENCH names the program (default: the build tree's); TMPDIR says where the
# fixture goes (default /tmp; the numbers depend on the file system).  The
# page cache is warm after each configuration's first round.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${abs_top_builddir:=$(cd "$here/../.." && pwd)}"
: "${BENCH:=$abs_top_builddir/tests/bench/bench_overload}"
messages=${1:-100000}
shift
marks=("$@")
((${#marks[@]})) || marks=(1000 20000)

[[ -x $BENCH ]] || { echo "no benchmark program at $BENCH (make check TESTS=)" >&2; exit 99; }
[[ $messages =~ ^[0-9]+$ ]] && ((messages <= 2000000)) || { echo "bad MESSAGES" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mxgate-bench.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT

# files DIR PREFIX N: N empty files in DIR.
files() {
    mkdir -p "$1"
    (cd "$1" && seq -f "$2%07.0f" 1 "$3" | xargs touch)
}

echo "# creating $messages messages in three layouts under $tmp"
mkdir -p "$tmp/flat/active" "$tmp/flat/maildrop"
files "$tmp/flat/incoming" 1A2B3C "$messages"

mkdir -p "$tmp/hashed/active" "$tmp/hashed/maildrop"
per=$((messages / 256))
for a in 0 1 2 3 4 5 6 7 8 9 A B C D E F; do
    for b in 0 1 2 3 4 5 6 7 8 9 A B C D E F; do
        files "$tmp/hashed/incoming/$a/$b" "$a$b" "$per"
    done
done

files "$tmp/sendmail" qfx "$messages"
files "$tmp/sendmail" dfx "$messages"

uname -sr
grep -m1 'model name' /proc/cpuinfo
df -T "$tmp" | tail -1
for high in "${marks[@]}"; do
    "$BENCH" "$tmp/flat" postfix "$high" 20
    "$BENCH" "$tmp/hashed" postfix "$high" 20
    "$BENCH" "$tmp/sendmail" sendmail "$high" 20
done
