#!/bin/bash
# tests/bench/ratelimit_bench.sh -- what rate limiting costs: counter
# operations per second against one memcached (started here on a free
# loopback port), memcached round trips per counted event, and the latency
# check_ratelimit adds per RCPT with no limits, with the in-process store
# and with memcached.  Not a test (not in TESTS); run it by hand:
#
#   make check TESTS=   # builds tests/bench/bench_ratelimit
#   tests/bench/ratelimit_bench.sh [SECONDS] [THREADS]
#
# BENCH names the program (default: the build tree's).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${abs_top_builddir:=$(cd "$here/../.." && pwd)}"
: "${BENCH:=$abs_top_builddir/tests/bench/bench_ratelimit}"
. "$here/../e2e/lib/postfix.sh"
. "$here/../e2e/lib/memcached.sh"

[[ -x $BENCH ]] || { echo "no benchmark program at $BENCH (make check TESTS=)" >&2; exit 99; }
mc_need_package || exit 99
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mxgate-bench.XXXXXX") || exit 99
trap 'mc_stop_all; rm -rf "$tmp"' EXIT
port=$(pf_free_port) || exit 99
mc_start "$tmp" bench "$port" || exit 99
echo "# memcached $(memcached -V | awk '{print $2}') on 127.0.0.1:$port, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$BENCH" "127.0.0.1:$port" "${1:-3}" "${2:-4}"
