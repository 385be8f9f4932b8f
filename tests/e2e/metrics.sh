#!/bin/bash
# metrics.sh - the metrics endpoint (`metrics`, doc/METRICS.md) of a real
# mxgate with a real memcached behind a rate-limit rule: a known number
# of HELO and rate-limit refusals made through the milter protocol
# (lib/rl_milter.py), then a scrape parsed by prometheus_client's own
# text parser (lib/metrics_client.py), whose decisions must equal the
# refusals the client saw, exactly; memcached requests counted, latency
# histograms consistent, build_info naming the engine under test, the
# session counters, a reload, the overload gauges following the flag
# file, 404 and 405 and HEAD, an idle connection closed, a clean stop,
# and start-up refused for a bad `metrics` value or a busy port.
#
# Runs under the engine the pass chose ($MXGATE_ENGINE, libmilter when
# unset).  TAP on stdout; loopback only; every wait bounded; exit 99 only
# when the harness cannot run.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"
. "$here/lib/memcached.sh"

[ -x "$MXGATE" ] || bail "no daemon at $MXGATE"
command -v "$MC_PYTHON" >/dev/null || bail "python3 missing"
"$MC_PYTHON" -c 'import prometheus_client.parser' 2>/dev/null ||
    bail "python3-prometheus-client missing (tests/install-deps.sh)"
mc_need_package || bail "cannot install memcached"

MXGATE_PID=
e2e_work metrics MXGATE_PID
trap 'e2e_cleanup_all' EXIT
e2e_cleanup_all() {
    mc_stop_all
    e2e_cleanup
}

HELO_REFUSALS=3		# sessions whose HELO name is refused at RCPT
RL_SESSIONS=5 RL_LIMIT=2	# one sender: RL_SESSIONS - RL_LIMIT refused at MAIL
engine=${MXGATE_ENGINE:-libmilter}

client() {
    timeout 60 "$MC_PYTHON" "$here/lib/rl_milter.py" "$@"
}
mclient() {
    timeout 60 "$MC_PYTHON" "$here/lib/metrics_client.py" "$@"
}

# scrape NAME: GET /metrics into $work/NAME.txt, its status lines into
# $work/NAME.http, and the parsed samples into $work/NAME.samples; false
# when it is not a 200 that parses.
scrape() {
    mclient http "$mport" GET /metrics --out "$work/$1.txt" >"$work/$1.http" 2>&1 &&
        grep -qx 'status 200' "$work/$1.http" &&
        mclient dump "$work/$1.txt" >"$work/$1.samples" 2>"$work/$1.err"
}

# sample NAME SERIES: the value of SERIES (NAME{LABELS}, labels sorted by
# name) in scrape NAME; empty when absent.
sample() {
    awk -v s="$2" 'substr($0, 1, length(s) + 1) == s " " { print $NF; exit }' "$work/$1.samples"
}

# wait_sample SERIES VALUE SECONDS: scrape (as "poll") until SERIES has VALUE.
wait_sample() {
    local end=$((SECONDS + $3))
    while ((SECONDS < end)); do
        scrape poll && [[ $(sample poll "$1") == "$2" ]] && return 0
        sleep 0.2
    done
    return 1
}

# check_eq NAME GOT WANT: a TAP point that GOT equals WANT.
check_eq() {
    [[ $2 == "$3" ]]
    tap_result $? "$1 (got ${2:-nothing}, want $3)"
}

mcport=$(pf_free_port) && mport=$(pf_free_port) || bail "no free ports"
mc_start "$work" mc "$mcport" || bail "memcached does not start"

flag=$work/overload.flag
cat >"$work/mxgate.conf" <<EOF
metrics = "inet:$mport@127.0.0.1";
log_level = "info";
trusted_networks = [ ];
quota: { enabled = false; };
helo: { enabled = true; };
overload: { enabled = true; flag_file = "$flag"; sample_interval = 1; };
memcached: { servers = [ "127.0.0.1:$mcport" ]; timeout_ms = 1000; on_error = "tempfail"; };
ratelimit: { rules = (
  { name = "msg"; key = [ "sender" ]; count = "messages"; limits = [ "$RL_LIMIT/1h" ]; }
); };
EOF
log=$work/mxgate.log
if mxgate_start "$work/mxgate.conf" "$log" && pf_wait_listen "$mport" 10; then
    tap_result 0 "mxgate starts with metrics on 127.0.0.1:$mport"
else
    tap_result 1 "mxgate starts with metrics on 127.0.0.1:$mport"
    sed 's/^/# /' "$log"
    bail "mxgate did not start"
fi
log_engine=$(sed -n 's/.*listening on .*(engine \([a-z]*\),.*/\1/p' "$log" | head -1)

# ---- known decisions ------------------------------------------------------
helo_seen=0
for ((i = 1; i <= HELO_REFUSALS; i++)); do
    out=$(client session --port "$MXGATE_PORT" --ip "192.0.2.$((10 + i))" --helo localhost \
        --sender "<helo-$i@example.net>" --rcpt "<rcpt@example.org>" --end abort)
    grep -qE '^RCPT [yr] 504 ' <<<"$out" && helo_seen=$((helo_seen + 1))
done
check_eq "the client saw each non-FQDN HELO refused at RCPT" "$helo_seen" "$HELO_REFUSALS"

rl_seen=0
for ((i = 1; i <= RL_SESSIONS; i++)); do
    out=$(client session --port "$MXGATE_PORT" --ip 192.0.2.50 --helo mx.example.net \
        --sender "<limited@example.net>" --rcpt "<rcpt@example.org>")
    grep -qE '^MAIL [yrt]' <<<"$out" && rl_seen=$((rl_seen + 1))
done
check_eq "the client saw the sender refused past its limit of $RL_LIMIT" "$rl_seen" \
    "$((RL_SESSIONS - RL_LIMIT))"
sessions=$((HELO_REFUSALS + RL_SESSIONS))

# ---- the scrape ----------------------------------------------------------
scrape first
tap_result $? "GET /metrics answers 200 and parses with prometheus_client" ||
    sed 's/^/# /' "$work/first.http" "$work/first.err" | head -20
grep -q '^content-type text/plain; version=0.0.4' "$work/first.http"
tap_result $? "its content type is text/plain; version=0.0.4" || sed 's/^/# /' "$work/first.http"

check_eq "decisions: helo reject equals the client's count" \
    "$(sample first 'mxgate_decisions_total{action="reject",check="helo"}')" "$helo_seen"
check_eq "decisions: ratelimit reject equals the client's count" \
    "$(sample first 'mxgate_decisions_total{action="reject",check="ratelimit"}')" "$rl_seen"
total=$(awk '/^mxgate_decisions_total\{/ { n += $NF } END { print n + 0 }' "$work/first.samples")
check_eq "decisions: no other decision was counted" "$total" "$((helo_seen + rl_seen))"

srv="127.0.0.1:$mcport"
ok=$(sample first "mxgate_backend_requests_total{backend=\"memcached\",result=\"ok\",server=\"$srv\"}")
err=$(sample first "mxgate_backend_requests_total{backend=\"memcached\",result=\"error\",server=\"$srv\"}")
[[ ${ok:-0} -gt 0 && $err == 0 ]]
tap_result $? "memcached $srv: requests counted with result ok (ok=${ok:-none}, error=${err:-none})"

hist=$(mclient histograms "$work/first.txt" 2>"$work/hist.err")
[[ $? == 0 && $hist != "histograms 0" && -n $hist ]]
tap_result $? "latency histograms: cumulative buckets, _count = +Inf = the sum of results ($hist)" ||
    sed 's/^/# /' "$work/hist.err"

version=$("$MXGATE" -V 2>/dev/null | sed -n 's/^mxgate //p' | head -1)
check_eq "build_info names the engine under test and the version" \
    "$(sample first "mxgate_build_info{engine=\"$engine\",version=\"$version\"}")/$log_engine" "1/$engine"

st=$(sample first 'mxgate_sessions_total{}')
[[ ${st:-0} -ge $sessions ]]
tap_result $? "sessions_total at least the $sessions sessions made (${st:-none})"
wait_sample 'mxgate_sessions_active{}' 0 10
tap_result $? "sessions_active falls back to 0 once the sessions are closed"

check_eq "overload: not overloaded, flag signal read as 0, queue and load not watched" \
    "$(sample first 'mxgate_overload{}')/$(sample first 'mxgate_overload_signal{signal="flag"}')/$(
        sample first 'mxgate_overload_signal{signal="queue"}')$(sample first 'mxgate_overload_signal{signal="load"}')" \
    "0/0/"

# ---- a reload ---------------------------------------------------------------
kill -USR1 "$MXGATE_PID"
wait_sample 'mxgate_reloads_total{result="ok"}' 1 10
tap_result $? "after SIGUSR1, reloads_total{result=\"ok\"} is 1"
check_eq "and reloads_total{result=\"failed\"} is 0" "$(sample poll 'mxgate_reloads_total{result="failed"}')" 0

# ---- the overload gauges follow the flag file --------------------------------
: >"$flag"
wait_sample 'mxgate_overload{}' 1 10
ov=$?
check_eq "overload: the flag file makes mxgate_overload 1, the flag signal 1 and over" \
    "$ov/$(sample poll 'mxgate_overload_signal{signal="flag"}')/$(sample poll 'mxgate_overload_signal_over{signal="flag"}')" "0/1/1"
rm -f "$flag"
wait_sample 'mxgate_overload{}' 0 10
tap_result $? "overload: without the flag file mxgate_overload is 0 again"

# ---- HTTP ------------------------------------------------------------------------
mclient http "$mport" GET /other >"$work/404.http" 2>&1
grep -qx 'status 404' "$work/404.http"
tap_result $? "another path answers 404" || sed 's/^/# /' "$work/404.http"
mclient http "$mport" HEAD /metrics >"$work/head.http" 2>&1
grep -qx 'status 200' "$work/head.http" && grep -qx 'length 0' "$work/head.http" &&
    grep -q '^content-type text/plain; version=0.0.4' "$work/head.http"
tap_result $? "HEAD /metrics answers 200 with the headers and no body" || sed 's/^/# /' "$work/head.http"
mclient http "$mport" POST /metrics >"$work/post.http" 2>&1
grep -qx 'status 405' "$work/post.http" && grep -qx 'allow GET, HEAD' "$work/post.http"
tap_result $? "POST answers 405 with Allow: GET, HEAD" || sed 's/^/# /' "$work/post.http"
idle=$(mclient idle "$mport" --timeout 15 2>&1)
[[ $idle == "closed after"* ]]
tap_result $? "an idle connection is closed by the server within 15 s ($idle)"
scrape last
tap_result $? "the endpoint still answers after all that"

mxgate_stop_check "$MXGATE_PID" "$log" "mxgate with metrics"
MXGATE_PID=

# ---- start-up errors -------------------------------------------------------------
# start_fails NAME VALUE PATTERN: mxgate with metrics = VALUE exits 1 within
# 20 s, its log matching PATTERN.
start_fails() {
    local conf=$work/$1.conf out=$work/$1.log port st
    printf 'metrics = "%s";\nquota: { enabled = false; };\nratelimit: { enabled = false; };\n' \
        "$2" >"$conf"
    port=$(pf_free_port) || return 1
    timeout 20 "$MXGATE" -f -c "$conf" -p "inet:$port@127.0.0.1" >"$out" 2>&1
    st=$?
    [[ $st == 1 ]] && grep -qE "$3" "$out" && ! grep -qE "$MXGATE_REPORT" "$out" && return 0
    tap_diag "status $st" "$(cat "$out")"
    return 1
}
# Refused by the configuration loader, as mxgate -t refuses it, with its
# FILE:LINE (under tests/e2e/lib/engine-wrap.sh FILE is relative to the
# include directory: only its name is matched).
start_fails bad "unix:$work/metrics.sock" "bad\.conf:1: metrics: not an inet: or inet6: address\$"
tap_result $? "metrics = \"unix:...\" is a start-up error naming the key"
start_fails busy "inet:$mcport@127.0.0.1" "metrics = \"inet:$mcport@127.0.0.1\": cannot serve HTTP"
tap_result $? "metrics on a port already taken is a start-up error naming the key"

tap_done
