#!/bin/bash
# faults.sh - mxgate killed, stopped or frozen in the middle of a stream of
# mail loses none of it.  A client (tests/e2e/lib/smtp_blast.py) sends
# $FAULTS_MESSAGES messages (2,000), each in an SMTP session of its own,
# 16 at a time, through a real MTA whose milter is mxgate with
# milter_default_action = tempfail (Sendmail: F=T), and records each
# message's final reply.  While it sends:
#   pf-kill  Postfix; mxgate is SIGKILLed and restarted on the same port,
#            twice;
#   pf-term  Postfix; mxgate is stopped with SIGTERM (each of those
#            instances must exit 0) and restarted, twice;
#   pf-stop  Postfix with short milter timeouts; mxgate is frozen
#            (SIGSTOP) for longer than the timeouts, then SIGCONT;
#   sm-kill  Sendmail with F=T; mxgate is SIGKILLed and restarted, twice.
# Each scenario asserts: every message got a final reply (no client-side
# timeout, no connection dropped without one); no 5xx; once the MTA's queue
# is empty, the sink holds exactly the messages that got 250, each once, so
# delivered + tempfailed (4xx) = sent; each fault came mid-stream and the
# MTA answered 4xx while mxgate was away; service resumed within
# $FAULTS_RESUME_LIMIT s (2) of each restart or SIGCONT, measured as the time
# from it to the first accepted message whose session began after it; the
# last instance stops on SIGTERM with status 0; no instance's log holds a
# sanitizer report.  The numbers (sent, delivered, tempfailed, resumed in)
# are printed as TAP diagnostics.
#
# TAP on stdout; exit 0 after the results, 99 when the harness cannot run.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"
. "$here/lib/sendmail.sh"

# Messages per scenario, sessions at a time, and the client's pace (messages
# started per second at most: a fault of a few seconds then meets a few
# hundred messages, not the whole stream).
: "${FAULTS_MESSAGES:=2000}"
: "${FAULTS_THREADS:=16}"
: "${FAULTS_RATE:=100}"
# The scenarios to run (all by default; a subset for a quick look).
: "${FAULTS_SCENARIOS:=pf-kill pf-term pf-stop sm-kill}"
# Seconds from a restart (or SIGCONT) to the first message accepted again.
: "${FAULTS_RESUME_LIMIT:=2}"
# Postfix's milter_connect/command/content_timeout, in seconds.
MILTER_TIMEOUT=3
# The client's bound on each socket operation: above anything the MTA may
# take to answer while mxgate is away (connect plus negotiation timeouts).
CLIENT_TIMEOUT=30

[[ -x $MXGATE ]] || bail "no daemon at $MXGATE (set MXGATE)"
[[ $(id -u) == 0 ]] || bail "needs root (private Postfix and Sendmail)"
pf_need_packages python3 "${PF_PACKAGES[@]}" >&2 || bail "cannot install packages"
sm_setup >&2 || bail "cannot set up Sendmail"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mxgate-faults.XXXXXX") || bail "mktemp"
chmod 0755 "$tmp"
mxpids=()
client_pid=
cleanup() {
    local p
    [[ -n $client_pid ]] && pf_kill_pid "$client_pid" 2
    for p in "${mxpids[@]}"; do
        kill -CONT "$p" 2>/dev/null
        pf_kill_pid "$p" 10
    done
    pf_stop_all
    sm_stop_all
    rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/mxgate.conf" <<'EOF'
# Checks that let the test's mail through: a good HELO, a generous rate limit.
trusted_networks = [ ];
helo: { enabled = true; };
quota: { enabled = false; };
overload: { enabled = false; };
ratelimit: {
  enabled = true;
  rules = ( { name = "client"; key = [ "client_ip" ]; count = "messages"; limits = [ "1000000/1h" ]; } );
};
EOF
mport=$(pf_free_port) || bail "no free port"

# start_instance NAME K: mxgate instance K of scenario NAME on $mport, its
# output in $tmp/NAME.K.log; sets inst_pid and inst_log.  False (with the
# log as diagnostics) when it did not start listening within 20 s.
start_instance() {
    inst_log=$tmp/$1.$2.log
    inst_pid=
    if ! mxgate_start "$tmp/mxgate.conf" "$inst_log" 20 "$mport"; then
        tap_diag "mxgate instance $2 of $1 did not start on port $mport:"
        sed 's/^/#   /' "$inst_log" | tail -20
        return 1
    fi
    inst_pid=$MXGATE_PID
    mxpids+=("$inst_pid")
}

# lines FILE: how many lines FILE has (0 when it does not exist).
lines() {
    local n
    n=$(wc -l <"$1" 2>/dev/null) || n=0
    echo "${n:-0}"
}

# client_alive: the client started by run_scenario still runs.
client_alive() {
    [[ -n $client_pid ]] && mxgate_alive "$client_pid"
}

# wait_replies FILE N SECONDS: wait until FILE records N replies; false when
# the client ended or SECONDS passed before.
wait_replies() {
    local file=$1 n=$2 end=$((SECONDS + $3))
    while ((SECONDS < end)); do
        (($(lines "$file") >= n)) && return 0
        client_alive || return 1
        sleep 0.05
    done
    return 1
}

# wait_accepted FILE SINCE SECONDS: wait until FILE records a message
# accepted (2xx) in a session opened at or after SINCE (epoch seconds).
wait_accepted() {
    local file=$1 since=$2 end=$((SECONDS + $3))
    while ((SECONDS < end)); do
        awk -v t="$since" '$2 >= t && $4 ~ /^2/ { f = 1; exit } END { exit !f }' "$file" && return 0
        client_alive || return 1
        sleep 0.05
    done
    return 1
}

# wait_outage FILE FROM MIN SECONDS: the length of a fault: wait until the
# replies recorded after line FROM of FILE hold 5 refusals with a 4xx code
# (the MTA's milter_default_action at work), and at least MIN seconds
# passed; at most SECONDS.  False when the 4xx replies did not come.
wait_outage() {
    local file=$1 from=$2 min=$3 t0=$EPOCHREALTIME end=$((SECONDS + $4)) n
    while ((SECONDS < end)); do
        n=$(tail -n +"$((from + 1))" "$file" | awk '$4 ~ /^4/' | wc -l)
        if ((n >= 5)) && awk -v a="$t0" -v b="$EPOCHREALTIME" -v m="$min" 'BEGIN { exit !(b - a >= m) }'; then
            return 0
        fi
        client_alive || return 1
        sleep 0.05
    done
    return 1
}

# wait_client SECONDS: wait for the client to end; its exit status, or 124
# (and it is killed) when it ran longer.
wait_client() {
    local end=$((SECONDS + $1)) st
    while ((SECONDS < end)) && client_alive; do
        sleep 0.1
    done
    if client_alive; then
        pf_kill_pid "$client_pid" 2
        st=124
    else
        wait "$client_pid"
        st=$?
    fi
    client_pid=
    return "$st"
}

# queue_left MTA DIR: messages still in the MTA's queue.
queue_left() {
    if [[ $1 == postfix ]]; then
        find "$2"/queue/{maildrop,incoming,active,deferred,hold} -type f 2>/dev/null | wc -l
    else
        sm_queue_count "$2"
    fi
}

# wait_drained MTA DIR SECONDS: wait until the MTA's queue is empty.
wait_drained() {
    local end=$((SECONDS + $3))
    while ((SECONDS < end)); do
        (($(queue_left "$1" "$2") == 0)) && return 0
        sleep 0.2
    done
    return 1
}

# run_scenario NAME MTA DIR SMTPPORT FAULT: one stream of $FAULTS_MESSAGES
# messages into the MTA (postfix or sendmail, instance DIR) on SMTPPORT, with
# FAULT (kill, term: twice, each followed by a restart on the same port;
# stop: once, SIGSTOP then SIGCONT) done to mxgate mid-stream; then the
# checks listed at the top of this file.
run_scenario() {
    local name=$1 mta=$2 dir=$3 smtp=$4 fault=$5
    local res=$tmp/$name.results rounds=2 k n0 want t_fault t_resume min_outage=0.5 ok
    local events=() killed=() t_begin=$SECONDS maillog0=0
    [[ $fault == stop ]] && rounds=1 min_outage=$((MILTER_TIMEOUT + 2))
    [[ $mta == postfix ]] && maillog0=$(lines "$dir/maillog")
    : >"$res"
    start_instance "$name" 1
    tap_result $? "$name: mxgate starts on port $mport" || return 0
    timeout 600 python3 "$here/lib/smtp_blast.py" send --port "$smtp" --count "$FAULTS_MESSAGES" \
        --threads "$FAULTS_THREADS" --rate "$FAULTS_RATE" --timeout "$CLIENT_TIMEOUT" \
        --prefix "$name" --out "$res" </dev/null >"$tmp/$name.client.log" 2>&1 &
    client_pid=$!

    for ((k = 1; k <= rounds; k++)); do
        # The first fault a quarter into the stream (a third for a single
        # one); the second half-way, and not before service resumed after
        # the first and a tenth of the stream more was answered.
        if ((k == 1)); then
            want=$((FAULTS_MESSAGES / (rounds == 1 ? 3 : 4)))
        else
            wait_accepted "$res" "$t_resume" 30
            want=$(($(lines "$res") + FAULTS_MESSAGES / 10))
            ((want >= FAULTS_MESSAGES / 2)) || want=$((FAULTS_MESSAGES / 2))
        fi
        if ! wait_replies "$res" "$want" 120; then
            tap_diag "$name: the stream ended or stalled before fault $k ($(lines "$res") replies)"
            break
        fi
        n0=$(lines "$res")
        t_fault=$EPOCHREALTIME
        case $fault in
        kill)
            kill -KILL "$inst_pid"
            wait "$inst_pid" 2>/dev/null
            killed+=("$inst_log")
            ;;
        term)
            mxgate_stop_check "$inst_pid" "$inst_log" "$name: instance $k, stopped mid-stream,"
            ;;
        stop)
            kill -STOP "$inst_pid"
            ;;
        esac
        wait_outage "$res" "$n0" "$min_outage" 30 ||
            tap_diag "$name: fewer than 5 replies with 4xx while mxgate was away ($fault $k)"
        t_resume=$EPOCHREALTIME
        if [[ $fault == stop ]]; then
            kill -CONT "$inst_pid"
        else
            start_instance "$name" $((k + 1))
        fi
        events+=(--event "$t_fault:$t_resume")
        [[ -n $inst_pid ]] || break
    done

    wait_client 300
    tap_result $? "$name: the client ended within its bound, every session finished" ||
        sed 's/^/# client: /' "$tmp/$name.client.log" | tail -10
    wait_drained "$mta" "$dir" 120
    tap_result $? "$name: the $mta queue drained ($(queue_left "$mta" "$dir") left), so the sink count is final"
    find "$dir/sink" -type f -exec grep -h -m1 '^X-Faults-Id: ' {} + 2>/dev/null |
        sed -e 's/^X-Faults-Id: //' -e 's/\r$//' >"$tmp/$name.delivered"
    local -A t=()
    local key val
    while IFS='=' read -r key val; do
        [[ $key == sample ]] && { tap_diag "$name: $val"; continue; }
        t[$key]=$val
    done < <(python3 "$here/lib/smtp_blast.py" tally --results "$res" \
        --delivered "$tmp/$name.delivered" --prefix "$name" "${events[@]}" 2>&1)
    local sent=${t[sent]:-0} acc=${t[accepted]:-0} tf=${t[tempfailed]:-0}
    local del=${t[delivered]:-0} pf=${t[permfailed]:-0} failed=${t[failed]:-0}

    tap_result "$([[ $sent == "$FAULTS_MESSAGES" && $failed == 0 ]]; echo $?)" \
        "$name: each of the $FAULTS_MESSAGES messages got a final reply: none timed out or was cut off ($sent replies, $failed failed)"
    tap_result "$([[ $pf == 0 ]]; echo $?)" "$name: no message refused with 5xx ($pf)"
    tap_result "$([[ $del == "$acc" && ${t[missing]:-x} == 0 && ${t[unexpected]:-x} == 0 &&
        ${t[duplicates]:-x} == 0 ]]; echo $?)" \
        "$name: the sink holds exactly the messages accepted with 250, each once (accepted $acc, delivered $del, missing ${t[missing]:-?}, unexpected ${t[unexpected]:-?}, duplicates ${t[duplicates]:-?})"
    tap_result "$([[ $((del + tf)) == "$FAULTS_MESSAGES" ]]; echo $?)" \
        "$name: delivered + tempfailed = sent, nothing silently dropped ($del + $tf = $((del + tf)), sent $FAULTS_MESSAGES)"

    # Mid-stream: replies before the first fault, 4xx ones during each, and
    # replies after the last restart.
    local mid=0 during=
    for ((k = 1; k <= ${#events[@]} / 2; k++)); do
        ((${t[during_4xx_$k]:-0} > 0)) || mid=1
        during+=" ${t[during_$k]:-0} (${t[during_4xx_$k]:-0} 4xx),"
    done
    ((${#events[@]} / 2 == rounds && ${t[before]:-0} > 0 && ${t[after]:-0} > 0)) || mid=1
    tap_result "$mid" "$name: $rounds fault(s) came mid-stream and the MTA answered 4xx while mxgate was away (replies before ${t[before]:-0}, during$during after ${t[after]:-0})"

    local resumed=()
    for ((k = 1; k <= rounds; k++)); do
        val=${t[resume_$k]:-none}
        resumed+=("$val")
        ok=1
        [[ $val != none ]] && awk -v v="$val" -v l="$FAULTS_RESUME_LIMIT" 'BEGIN { exit !(v <= l) }' && ok=0
        if [[ $fault == stop ]]; then
            tap_result "$ok" "$name: after SIGCONT, service resumed within $FAULTS_RESUME_LIMIT s ($val s)"
        else
            tap_result "$ok" "$name: restart $k on the same port: service resumed within $FAULTS_RESUME_LIMIT s ($val s)"
        fi
    done
    if [[ $fault == stop ]]; then
        local timeouts
        timeouts=$(tail -n +"$((maillog0 + 1))" "$dir/maillog" | grep -ciE "milter inet:127\.0\.0\.1:$mport: .*(timed out|timeout)")
        tap_result "$([[ $timeouts -gt 0 ]]; echo $?)" \
            "$name: Postfix's milter timeouts ($MILTER_TIMEOUT s) ended the sessions mxgate froze ($timeouts log lines)"
    fi
    if ((${#killed[@]})); then
        ok=0
        for key in "${killed[@]}"; do
            if grep -qE "$MXGATE_REPORT" "$key"; then
                ok=1
                grep -E -A12 "$MXGATE_REPORT" "$key" | head -20 | sed 's/^/# /'
            fi
        done
        tap_result "$ok" "$name: no sanitizer report in the logs of the ${#killed[@]} SIGKILLed instances"
    fi
    mxgate_stop_check "$inst_pid" "$inst_log" "$name: the last instance"

    tap_diag "$name: sent $sent, delivered $del, tempfailed $tf, resumed in ${resumed[*]/%/ s} ($((SECONDS - t_begin)) s in all)"
}

# ---- Postfix -----------------------------------------------------------------
pf=$tmp/pf
PF_SASL=no
smtp_pf=$(pf_free_port) && sink_pf=$(pf_free_port) || bail "no free port"
pf_start "$pf" "$smtp_pf" "$sink_pf" "smtpd_milters = inet:127.0.0.1:$mport" \
    "milter_default_action = tempfail" "milter_connect_timeout = ${MILTER_TIMEOUT}s" \
    "milter_command_timeout = ${MILTER_TIMEOUT}s" "milter_content_timeout = ${MILTER_TIMEOUT}s" >&2 ||
    bail "the private Postfix did not start"

# wanted NAME: NAME is in FAULTS_SCENARIOS.
wanted() { [[ " $FAULTS_SCENARIOS " == *" $1 "* ]]; }
wanted pf-kill && run_scenario pf-kill postfix "$pf" "$smtp_pf" kill
wanted pf-term && run_scenario pf-term postfix "$pf" "$smtp_pf" term
wanted pf-stop && run_scenario pf-stop postfix "$pf" "$smtp_pf" stop
pf_stop "$pf"

# ---- Sendmail (F=T) ----------------------------------------------------------
sm=$tmp/sm
smtp_sm=$(pf_free_port) && sink_sm=$(pf_free_port) || bail "no free port"
if wanted sm-kill; then
    SM_DELIVERY_MODE=background sm_start "$sm" "$smtp_sm" "$sink_sm" "inet:$mport@127.0.0.1" >&2 ||
        bail "the private Sendmail did not start"
    run_scenario sm-kill sendmail "$sm" "$smtp_sm" kill
    sm_stop "$sm"
fi

tap_done
exit 0
