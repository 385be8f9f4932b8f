#!/bin/bash
# ratelimit.sh - rate limits against real memcached servers and a real
# Postfix: exactness of a burst across two mxgate processes sharing two
# memcached servers, count = "distinct" (HELOs and recipients of one
# client) exact in the same way and in process, a global key (key = [ ]),
# the format of every stored key after hostile sessions, give-back, each
# on_error under SIGSTOP/SIGKILL/restart, one of two servers down, and the
# exact replies, reject, hold, warn and a SASL class through Postfix and
# swaks.
#
# Milter sessions are driven by lib/rl_milter.py (a raw milter client that
# can claim any client address and send any bytes, and sees reply texts).
# TAP on stdout; exit 99 only when the harness cannot run.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"
. "$here/lib/memcached.sh"

MXGATECTL=${MXGATECTL:-$abs_top_builddir/mxgatectl}
[ -x "$MXGATE" ] || bail "no daemon at $MXGATE"
[ -x "$MXGATECTL" ] || bail "no mxgatectl at $MXGATECTL (set MXGATECTL)"
command -v python3 >/dev/null || bail "python3 missing"
mc_need_package || bail "cannot install memcached"

work=$(mktemp -d "${TMPDIR:-/tmp}/mxgate-ratelimit.XXXXXX")
chmod 0755 "$work"
declare -A MXPORT MXPID
pf_dir=
# stop_daemons: SIGTERM every mxgate at once, SIGKILL what is left after 5 s.
stop_daemons() {
    local p i alive
    for p in "${MXPID[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for ((i = 0; i < 50; i++)); do
        alive=no
        for p in "${MXPID[@]}"; do kill -0 "$p" 2>/dev/null && alive=yes; done
        [[ $alive == no ]] && break
        sleep 0.1
    done
    for p in "${MXPID[@]}"; do
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
}

cleanup() {
    stop_daemons
    [[ -n $pf_dir ]] && pf_stop "$pf_dir"
    pf_stop_all
    mc_stop_all
    if [[ -n ${RL_KEEP:-} ]]; then
        echo "# kept $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

client() {
    timeout 120 "$MC_PYTHON" "$here/lib/rl_milter.py" "$@"
}

# counter_of RULE PERIOD PART BACK PORT...: the value of RULE's counter for
# the key PART (NAME=VALUE) in the window BACK windows before this one,
# summed over the servers given (0 when absent).
counter_of() {
    local rule=$1 period=$2 part=$3 back=$4 key v sum=0 port
    shift 4
    key=$(client key --rule "$rule" --period "$period" --part "$part" --back "$back")
    for port in "$@"; do
        v=$(mc_get "$port" "$key")
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

# counter RULE PERIOD SENDER PORT...: RULE's counter for SENDER in this window.
counter() {
    counter_of "$1" "$2" "sender=$3" 0 "${@:4}"
}

# mx_start NAME CONFIG-TEXT [PORT]: an mxgate in the foreground on PORT
# (default: a free one).
mx_start() {
    local name=$1
    printf '%s\n' "$2" >"$work/$name.conf"
    if ! mxgate_start "$work/$name.conf" "$work/$name.log" 10 "${3:-}"; then
        sed 's/^/#   /' "$work/$name.log" >&2
        return 1
    fi
    MXPID[$name]=$MXGATE_PID
    MXPORT[$name]=$MXGATE_PORT
}

# step_of OUTPUT STEP [N]: the Nth (default 1st) "STEP ..." line of a session.
step_of() {
    grep "^$2 " <<<"$1" | sed -n "${3:-1}p"
}

# ms_of OUTPUT STEP [N]: how long the milter took for that step.
ms_of() {
    awk -v s="$2" -v n="${3:-1}" '$1 == s && $2 != "action" { c++; if (c == n) f = 1; next }
        f && /^ms=/ { sub("ms=", ""); print; exit }' <<<"$1"
}

# phase NAME: how long the previous phase took, as a TAP comment.
phase_start=$SECONDS
phase_name=setup
phase() {
    tap_diag "$phase_name took $((SECONDS - phase_start)) s"
    phase_name=$1
    phase_start=$SECONDS
}

p1=$(pf_free_port) && p2=$(pf_free_port) && p3=$(pf_free_port) || bail "no free ports"
mc_start "$work" one "$p1" && mc_start "$work" two "$p2" && mc_start "$work" three "$p3" ||
    bail "memcached does not start"

# Postfix starts slowly ("postfix check"): in the background, meanwhile.
pf_ok=yes
if pf_need_packages "${PF_PACKAGES[@]}" >&2; then
    pf_dir=$work/pf
    pf_port=$(pf_free_port) && pf_sink=$(pf_free_port) && pf_milter=$(pf_free_port) ||
        bail "no free ports"
    pf_start "$pf_dir" "$pf_port" "$pf_sink" "smtpd_milters = inet:127.0.0.1:$pf_milter" \
        >"$work/pf-start.log" 2>&1 &
    pf_starter=$!
else
    pf_ok=no
fi

common='trusted_networks = [ ];
quota: { enabled = false; };
helo: { enabled = false; };'
shared_rules='ratelimit: { rules = (
  { name = "burst"; key = [ "sender" ]; count = "messages";
    classes = ( { match = "burst-*"; limits = [ "40/1h" ]; }, { match = "*"; limits = [ ]; } ); },
  { name = "rcpt"; key = [ "sender" ]; count = "recipients";
    classes = ( { match = "gb-*"; limits = [ "5/1h" ]; }, { match = "*"; limits = [ ]; } ); },
  { name = "msg"; key = [ "sender" ]; count = "messages";
    classes = ( { match = "gb-*"; limits = [ "100/1h" ]; }, { match = "one-*"; limits = [ "1/1h" ]; },
                { match = "*"; limits = [ ]; } ); },
  { name = "hk1"; key = [ "client_ip", "sender", "helo" ]; count = "messages";
    limits = [ "1000/1h", "2000/1d" ]; ipv4_prefix = 24; },
  { name = "hk2"; key = [ "sasl_user", "sender_domain", "recipient", "recipient_domain" ];
    count = "recipients"; limits = [ "1000/1h" ]; },
  { name = "hk3"; key = [ "client_ip", "helo" ]; count = "connections"; limits = [ "1000/10m" ]; }
); };'
# mx_shared NAME SETTINGS: an mxgate counting in memcached servers one and two.
mx_shared() {
    mx_start "$1" "$common
memcached: { servers = [ \"127.0.0.1:$p1\", \"127.0.0.1:$p2\" ]; timeout_ms = 1000; on_error = \"accept\"; };
$2" || bail "mxgate $1 does not start"
}
for n in A B; do mx_shared "$n" "$shared_rules"; done

# Each process opens its memcached connections on first use: not in the burst.
for n in A B; do
    client burst --ports "${MXPORT[$n]}" --sessions 16 --events 32 --sender "<warm-$n@example.net>" >/dev/null
done

phase "exactness"
# --- exactness: 2 processes x 16 sessions, a burst of 40+24 on one key, 10 times ---
for round in $(seq 1 10); do
    sender="burst-$round-$$@example.net"
    out=$(client burst --ports "${MXPORT[A]},${MXPORT[B]}" --sessions 16 --events 64 --sender "<$sender>")
    adm=$(sed -n 's/^admitted=//p' <<<"$out")
    ref=$(sed -n 's/^refused=//p' <<<"$out")
    err=$(sed -n 's/^errors=//p' <<<"$out")
    cnt=$(counter burst 3600 "$sender" "$p1" "$p2")
    tap_result $([[ $adm == 40 && $ref == 24 && $err == 0 && $cnt == 40 ]]; echo $?) \
        "burst $round: 64 MAIL FROM over 32 sessions of 2 processes: $adm admitted (40), $ref refused, counter $cnt"
    if [[ $adm != 40 ]]; then
        tap_diag "$out" "$(grep -h 'memcached\|backend failure' "$work/A.log" "$work/B.log" | tail -5)"
    fi
    if ((round == 1)); then
        texts=$(grep '^text=' <<<"$out")
        tap_result $([[ $texts == "text=y 450 4.7.1 <$sender>: Rate limit \"burst\" exceeded, try again later" ]]
            echo $?) "refusal text is exact: ${texts#text=}"
    fi
done

phase "distinct"
# --- count = "distinct": the issue's two rules, exact across 2 processes x 16 sessions ---
distinct_rules='ratelimit: { rules = (
  { name = "hrp"; key = ["client_ip"]; count = "distinct"; distinct = "helo"; limits = ["5/1h"]; },
  { name = "dictionary"; key = ["client_ip"]; count = "distinct"; distinct = "recipient"; limits = ["50/10m"]; }
); };'
for n in D1 D2; do mx_shared "$n" "$distinct_rules"; done
mx_start D0 "$common
control_socket = \"unix:$work/d0.sock\";
$distinct_rules" || bail "mxgate D0 does not start"
for n in D1 D2 D0; do
    client distinct --ports "${MXPORT[$n]}" --sessions 16 --events 16 --field helo --ip 192.0.2.250 \
        --tag "warm-$n" >/dev/null
done

# distinct_rounds WHERE PORTS FIELD RULE PERIOD N EVENTS NET: ten bursts of
# EVENTS new values of FIELD, each from a fresh client address NET.ROUND,
# of which exactly N are let through; in memcached (WHERE = memcached) the
# key's counter (this and the previous window: a burst may straddle one's
# edge) is N too.
distinct_rounds() {
    local where=$1 ports=$2 field=$3 rule=$4 period=$5 want=$6 events=$7 net=$8
    local round ip out adm ref err cnt exact=0 texts=
    for round in $(seq 1 10); do
        ip=$net.$round
        out=$(client distinct --ports "$ports" --sessions 16 --events "$events" --field "$field" \
            --ip "$ip" --tag "$where-$round-$$")
        adm=$(sed -n 's/^admitted=//p' <<<"$out")
        ref=$(sed -n 's/^refused=//p' <<<"$out")
        err=$(sed -n 's/^errors=//p' <<<"$out")
        cnt=$want
        if [[ $where == memcached ]]; then
            cnt=$(($(counter_of "$rule" "$period" "client_ip=$ip/32" 0 "$p1" "$p2") +
                $(counter_of "$rule" "$period" "client_ip=$ip/32" 1 "$p1" "$p2")))
        fi
        if [[ $adm == "$want" && $ref == $((events - want)) && $err == 0 && $cnt == "$want" ]]; then
            exact=$((exact + 1))
        else
            tap_diag "$where $field round $round: $adm admitted, $ref refused, $err errors, counter $cnt" "$out"
        fi
        ((round == 1)) && texts=$(grep '^text=' <<<"$out")
    done
    tap_result $([[ $exact == 10 ]]; echo $?) \
        "$where, distinct $field: $events new values over $(($(tr -cd , <<<"$ports" | wc -c) + 1)) x 16 sessions, exactly $want let through in $exact of 10 bursts"
    tap_result $([[ $texts == "text=y 450 4.7.1 <$net.1>: Rate limit \"$rule\" exceeded, try again later" ]]
        echo $?) "$where, distinct $field: the refusal is the rule's reply: ${texts#text=}"
}
distinct_rounds memcached "${MXPORT[D1]},${MXPORT[D2]}" helo hrp 3600 5 37 192.0.2
distinct_rounds memcached "${MXPORT[D1]},${MXPORT[D2]}" recipient dictionary 600 50 64 198.51.100
distinct_rounds in-process "${MXPORT[D0]}" helo hrp 3600 5 37 203.0.113
distinct_rounds in-process "${MXPORT[D0]}" recipient dictionary 600 50 64 192.0.2

# The same values again, one at a time: the 5 counted pass as repeats, the rest stay refused.
out=$(client distinct --ports "${MXPORT[D1]},${MXPORT[D2]}" --sessions 1 --events 37 --field helo \
    --ip 192.0.2.1 --tag "memcached-1-$$")
cnt=$(counter_of hrp 3600 "client_ip=192.0.2.1/32" 0 "$p1" "$p2")
tap_result $([[ $(sed -n 's/^admitted=//p' <<<"$out") == 5 && $(sed -n 's/^refused=//p' <<<"$out") == 32 &&
    $cnt -le 5 ]]; echo $?) \
    "the 37 HELOs of the first burst again: the 5 counted pass uncounted, 32 refused (counter $cnt)" ||
    tap_diag "$out"

# mxgatectl ratelimit show reads a distinct rule's counter (in process).
mxgatectl_on "$work/d0.sock" ratelimit show hrp client_ip=203.0.113.1
[[ $st == 0 ]] && grep -qE 'current 5\b' <<<"$out" && grep -qi 'over' <<<"$out"
tap_result $? "ratelimit show hrp client_ip=203.0.113.1: current 5, the next new value over" ||
    tap_diag "status $st" "$out" "$err"

phase "global"
# --- key = [ ]: one counter for every client, across 2 processes ---------------
for n in G1 G2; do
    mx_shared "$n" "control_socket = \"unix:$work/$n.sock\";
ratelimit: { rules = (
  { name = \"site\"; key = [ ]; count = \"messages\"; limits = [ \"30/1h\" ]; }
); };"
done
# One warm-up message per process (counted), then 2 x 16 sessions from 32 addresses.
for n in G1 G2; do
    client session --port "${MXPORT[$n]}" --sender "<warm-$n@example.net>" --rcpt "<a@example.org>" >/dev/null
done
out=$(client burst --ports "${MXPORT[G1]},${MXPORT[G2]}" --sessions 16 --events 64 --sender "<site-$$@example.net>")
adm=$(sed -n 's/^admitted=//p' <<<"$out")
cnt=$(counter_of site 3600 "global=" 0 "$p1" "$p2")
texts=$(grep '^text=' <<<"$out")
tap_result $([[ $adm == 28 && $cnt == 30 && $texts == 'text=y 450 4.7.1 <*>: Rate limit "site" exceeded, try again later' ]]
    echo $?) "global key: 64 messages from 32 clients over 2 processes: $adm let through (28 after 2), counter $cnt, ${texts#text=}" ||
    tap_diag "$out"
mxgatectl_on "$work/G1.sock" ratelimit show site
[[ $st == 0 ]] && grep -qE 'current 30\b' <<<"$out"
tap_result $? "ratelimit show site (no key parts): current 30" || tap_diag "status $st" "$out" "$err"

phase "keys"
# --- keys: after hostile sessions, every stored key has the documented form ---
out=$(client hostile --port "${MXPORT[A]}")
tap_result $([[ $(sed -n 's/^failed=//p' <<<"$out") == 0 ]] && kill -0 "${MXPID[A]}"; echo $?) \
    "hostile sessions (spaces, CR/LF, %, NUL, 1 KiB) all answered, daemon alive"
keys=$( (mc_keys "$p1"; mc_keys "$p2") | sort -u)
nkeys=$(grep -c . <<<"$keys")
badkeys=$(grep -Evx 'mxgate:[A-Za-z0-9_.-]+(/v)?:[0-9]+:[0-9]+:[0-9a-f]{64}' <<<"$keys")
tap_result $([[ -z $badkeys && $nkeys -gt 30 ]]; echo $?) \
    "all $nkeys stored keys are PREFIX RULE[/v]:PERIOD:WINDOW:SHA256 (metadump of both servers)"
n=$(grep -c '^mxgate:hrp/v:3600:' <<<"$keys")
tap_result $([[ $n -ge 50 ]]; echo $?) "the distinct HELO bursts left their markers, PREFIX RULE/v:... ($n)"
[[ -n $badkeys ]] && tap_diag "bad keys:" "$(head -5 <<<"$badkeys")"
for r in hk1 hk2 hk3; do
    n=$(grep -c "^mxgate:$r:" <<<"$keys")
    tap_result $([[ $n -gt 0 ]]; echo $?) "rule $r (hostile key parts) stored $n keys"
done

phase "give-back"
# --- give-back --------------------------------------------------------------
s=gb-abort-$$@example.net
client session --port "${MXPORT[A]}" --sender "<$s>" --rcpt "<a@example.org>" --rcpt "<b@example.org>" \
    --rcpt "<c@example.org>" --end abort >/dev/null
tap_result $([[ $(counter rcpt 3600 "$s" "$p1" "$p2") == 0 && $(counter msg 3600 "$s" "$p1" "$p2") == 0 ]]
    echo $?) "aborted transaction (3 RCPT, then RSET) leaves its counters at 0"
s=gb-quit-$$@example.net
client session --port "${MXPORT[B]}" --sender "<$s>" --rcpt "<a@example.org>" --end none >/dev/null
tap_result $([[ $(counter rcpt 3600 "$s" "$p1" "$p2") == 0 && $(counter msg 3600 "$s" "$p1" "$p2") == 0 ]]
    echo $?) "disconnect in the middle of a transaction gives everything back"
s=gb-refuse-$$@example.net
args=()
for i in 1 2 3 4 5 6 7; do args+=(--rcpt "<r$i@example.org>"); done
out=$(client session --port "${MXPORT[A]}" --sender "<$s>" "${args[@]}" --end data)
ok=$(grep -c '^RCPT c' <<<"$out")
refused=$(grep -c "^RCPT y 450 4.7.1 <$s>: Rate limit \"rcpt\" exceeded" <<<"$out")
tap_result $([[ $ok == 5 && $refused == 2 && $(counter rcpt 3600 "$s" "$p1" "$p2") == 5 &&
    $(counter msg 3600 "$s" "$p1" "$p2") == 1 ]]; echo $?) \
    "7 RCPT with a 5/1h limit: 5 accepted, 2 refused, counter 5 after DATA ($ok, $refused)"
out=$(client session --port "${MXPORT[B]}" --sender "<$s>" --rcpt "<x@example.org>" --rcpt "<y@example.org>" --end abort)
tap_result $([[ $(grep -c '^RCPT y 450' <<<"$out") == 2 && $(counter rcpt 3600 "$s" "$p1" "$p2") == 5 &&
    $(counter msg 3600 "$s" "$p1" "$p2") == 1 ]]; echo $?) \
    "a transaction whose recipients are all refused gives its message back (rcpt 5, msg 1)"

phase "faults"
# --- faults: each on_error, memcached stopped, killed, restarted ------------------
fault_rules='ratelimit: { rules = (
  { name = "f"; key = [ "sender" ]; count = "messages"; limits = [ "2/1h" ]; }
); };'
for how in accept tempfail local; do
    mx_start "F$how" "$common
memcached: { servers = [ \"127.0.0.1:$p3\" ]; timeout_ms = 300; on_error = \"$how\"; };
$fault_rules" || bail "mxgate F$how does not start"
done
for how in accept tempfail local; do
    out=$(client session --port "${MXPORT[F$how]}" --sender "<warm-$how@example.net>" --rcpt "<a@example.org>")
    [[ $(step_of "$out" MAIL) == "MAIL c" ]] || tap_diag "warm-up of F$how: $out"
done

# fault_checks PHASE: each on_error gives its verdict within timeout_ms + 1 s.
fault_checks() {
    local phase=$1 how out s line ms ms3 want
    for how in accept tempfail local; do
        s="f-$phase-$how@example.net"
        out=$(client session --port "${MXPORT[F$how]}" --sender "<$s>" --rcpt "<a@example.org>" \
            --transactions 3)
        line=$(step_of "$out" MAIL)
        ms=$(ms_of "$out" MAIL)
        case $how in
        accept) want="MAIL c" ;;
        tempfail) want="MAIL y 451 4.3.0 <$s>: Temporary lookup failure" ;;
        local) want="MAIL c" ;;
        esac
        tap_result $([[ $line == "$want" && ${ms:-99999} -le 1300 ]]; echo $?) \
            "memcached $phase, on_error=$how: \"$line\" in ${ms} ms"
        if [[ $how == local ]]; then
            line=$(step_of "$out" MAIL 3)
            ms3=$(ms_of "$out" MAIL 3)
            tap_result $([[ $line == "MAIL y 450 4.7.1 <$s>: Rate limit \"f\" exceeded, try again later" &&
                ${ms3:-99999} -le 1300 ]]; echo $?) \
                "memcached $phase, on_error=local keeps limiting in process: 3rd message \"$line\""
        fi
    done
}

phase "faults: stop, kill"
mc3=$(mc_pid "$work" three)
kill -STOP "$mc3"
fault_checks stopped
kill -CONT "$mc3"
sleep 0.2
kill -KILL "$mc3"
wait "$mc3" 2>/dev/null
fault_checks killed
phase "faults: restart"
mc_start "$work" three "$p3" || bail "memcached three does not restart"
# Shared counting resumes (the breaker probes each second): one message
# through each process, with a limit of 2: the third process must see the
# other two's count.  Bounded retries.
resumed=no
for i in $(seq 1 10); do
    s="f-resume-$i@example.net"
    client session --port "${MXPORT[Faccept]}" --sender "<$s>" --rcpt "<a@example.org>" >/dev/null
    client session --port "${MXPORT[Ftempfail]}" --sender "<$s>" --rcpt "<a@example.org>" >/dev/null
    out=$(client session --port "${MXPORT[Flocal]}" --sender "<$s>" --rcpt "<a@example.org>")
    if [[ $(counter f 3600 "$s" "$p3") == 2 &&
        $(step_of "$out" MAIL) == "MAIL y 450 4.7.1 <$s>: Rate limit \"f\" exceeded, try again later" ]]; then
        resumed=yes
        break
    fi
    sleep 0.5
done
tap_result $([[ $resumed == yes ]]; echo $?) \
    "memcached restarted: three processes count together again, the third is refused (after $i tries)"
nover=$(grep -c 'counting in process until it does' "$work/Flocal.log")
nback=$(grep -c 'answers again: counting in memcached' "$work/Flocal.log")
tap_result $([[ $nover == 1 && $nback == 1 ]]; echo $?) \
    "on_error=local logged switching over ($nover) and back ($nback) once each"

phase "one of two"
# --- one of two servers down: the other keeps counting ---------------------------
mc_stop "$work" two
refused_on_one=0
accepted_both=0
missing=0
wrong=0
slowest=0
senders=
outs=()
for i in $(seq 1 16); do senders+="one-$i-$$@example.net,"; done
# The keys of the window before the sessions and of the one after: a run
# that crosses the hour has its counters under either.
mapfile -t keys < <(client key --rule msg --period 3600 --senders "$senders")
for i in $(seq 1 16); do
    s="one-$i-$$@example.net"
    outs+=("$(client session --port "${MXPORT[A]}" --sender "<$s>" --rcpt "<a@example.org>" --transactions 2)")
done
mapfile -t keys_after < <(client key --rule msg --period 3600 --senders "$senders")
for i in $(seq 1 16); do
    s="one-$i-$$@example.net"
    out=${outs[i - 1]}
    on_one=$([[ -n $(mc_get "$p1" "${keys[i - 1]}") || -n $(mc_get "$p1" "${keys_after[i - 1]}") ]] &&
        echo yes || echo no)
    for ms in $(sed -n 's/^ms=//p' <<<"$out"); do ((ms > slowest)) && slowest=$ms; done
    if [[ $(step_of "$out" MAIL 2) == "MAIL y 450 4.7.1 <$s>: Rate limit \"msg\" exceeded, try again later" ]]; then
        refused_on_one=$((refused_on_one + 1))
        [[ $on_one == yes ]] || wrong=$((wrong + 1))
    elif [[ $(step_of "$out" MAIL 2) == "MAIL c" ]]; then
        accepted_both=$((accepted_both + 1))
        [[ $on_one == no ]] || wrong=$((wrong + 1))
    else
        missing=$((missing + 1))
    fi
done
tap_result $([[ $refused_on_one -gt 0 && $accepted_both -gt 0 && $wrong == 0 && $missing == 0 ]]; echo $?) \
    "server two down: keys on server one still limited ($refused_on_one of 16), the rest pass (on_error=accept), $wrong misplaced"
tap_result $([[ $slowest -le 2000 ]]; echo $?) \
    "with one server down no step waits more than timeout_ms + 1 s (slowest $slowest ms)"

# --- Postfix: exact replies, reject, hold, warn, a SASL class ----------------------
pf_checks() {
    local out i n st
    mx_start P "$common
memcached: { servers = [ \"127.0.0.1:$p1\" ]; timeout_ms = 300; };
ratelimit: { rules = (
  { name = \"pftf\"; key = [ \"sender\" ]; count = \"messages\";
    classes = ( { match = \"tf-*\"; limits = [ \"2/1h\" ]; }, { match = \"*\"; limits = [ ]; } ); },
  { name = \"pfrej\"; key = [ \"sender\" ]; count = \"messages\"; action = \"reject\";
    classes = ( { match = \"rej-*\"; limits = [ \"1/1h\" ]; }, { match = \"*\"; limits = [ ]; } ); },
  { name = \"pfhold\"; key = [ \"sender\" ]; count = \"messages\"; action = \"hold\";
    classes = ( { match = \"hold-*\"; limits = [ \"1/1h\" ]; }, { match = \"*\"; limits = [ ]; } ); },
  { name = \"pfwarn\"; key = [ \"sender\" ]; count = \"messages\"; action = \"warn\";
    classes = ( { match = \"warn-*\"; limits = [ \"1/1h\" ]; }, { match = \"*\"; limits = [ ]; } ); },
  { name = \"sasl\"; key = [ \"sasl_user\" ]; count = \"recipients\"; when = \"authenticated\";
    classes = ( { match = \"user@test.example\"; limits = [ \"1/1h\" ]; }, { match = \"*\"; limits = [ ]; } ); }
); };" "$pf_milter" || return 1

    for i in 1 2; do
        pf_swaks_replies --port "$pf_port" --from "tf-1@example.net" --to "a@example.org" --data >/dev/null
    done
    out=$(pf_swaks_replies --port "$pf_port" --from "tf-1@example.net" --to "a@example.org")
    grep -qFx '450 4.7.1 <tf-1@example.net>: Rate limit "pftf" exceeded, try again later' <<<"$out"
    st=$?
    tap_result $st "Postfix gives the exact 450 4.7.1 <KEY>: Rate limit \"RULE\" exceeded text at MAIL"
    ((st == 0)) || tap_diag "$out"

    pf_swaks_replies --port "$pf_port" --from "rej-1@example.net" --to "a@example.org" --data >/dev/null
    out=$(pf_swaks_replies --port "$pf_port" --from "rej-1@example.net" --to "a@example.org")
    tap_result $(grep -qFx '550 5.7.1 <rej-1@example.net>: Rate limit "pfrej" exceeded, try again later' <<<"$out"
        echo $?) "action = reject: 550 5.7.1 through Postfix"

    out=$(pf_swaks_replies --port "$pf_port" --auth user@test.example secret \
        --from "auth@example.net" --to "a@example.org,b@example.org")
    grep -qFx '450 4.7.1 <user@test.example>: Rate limit "sasl" exceeded, try again later' <<<"$out" &&
        grep -q '^235 ' <<<"$out"
    st=$?
    tap_result $st "SASL class through an authenticated session: 2nd RCPT refused"
    ((st == 0)) || tap_diag "$out"

    for i in 1 2; do
        pf_swaks_replies --port "$pf_port" --from "hold-1@example.net" --to "a@example.org" --data >/dev/null
        pf_swaks_replies --port "$pf_port" --from "warn-1@example.net" --to "w$i@example.org" --data >/dev/null
    done
    for ((i = 0; i < 100; i++)); do
        n=$(find "$pf_dir/queue/hold" -type f 2>/dev/null | wc -l)
        [[ $n -ge 1 ]] && grep -rqs '^X-Mxgate-Warning: ' "$pf_dir/sink" && break
        sleep 0.2
    done
    tap_result $([[ $n == 1 ]]; echo $?) "action = hold: the 2nd message is in Postfix's hold queue ($n)"
    out=$(grep -rhs '^X-Mxgate-Warning: ' "$pf_dir/sink")
    tap_result $([[ $out == 'X-Mxgate-Warning: rate limit "pfwarn" exceeded for warn-1@example.net' ]]; echo $?) \
        "action = warn: the 2nd message reaches the sink with \"$out\""
    n=$(grep -rls '^X-Mxgate-Warning: ' "$pf_dir/sink" | wc -l)
    tap_result $([[ $n == 1 ]]; echo $?) "only the message over the limit carries the header ($n)"
}

phase "Postfix"
if [[ $pf_ok == yes ]] && wait "$pf_starter"; then
    PF_STARTED+=("$pf_dir")
    pf_checks || tap_result 1 "mxgate for Postfix does not start"
else
    sed 's/^/# /' "$work/pf-start.log" 2>/dev/null
    tap_result 1 "private Postfix does not start"
fi

phase "end"
# Every daemon is stopped as an init system would, and must exit 0 with no
# sanitizer report (leak and TSan reports are written at exit).  P runs
# only when the private Postfix started.
stops=()
for n in A B D1 D2 D0 G1 G2 Faccept Ftempfail Flocal ${MXPID[P]:+P}; do
    stops+=("mxgate $n" "${MXPID[$n]:-}" "$work/$n.log")
done
mxgate_stop_checks "${stops[@]}"
MXPID=()
tap_done
exit 0
