#!/bin/bash
# tests/e2e/logging.sh -- the decision log as operators read it (mxgate(8),
# "LOGGING").
#
#  1. syslog: mxgate runs in a mount namespace of its own whose /dev/log is
#     a datagram socket this test reads, as a syslog daemon would.  With
#     syslog_facility = "local3" the decision line arrives with facility
#     local3 (PRI = 19 * 8 + severity), severity info, tagged mxgate[PID],
#     in Postfix's format; a failed reload arrives with severity err.
#  2. the queue ID: through a real Postfix with
#     smtpd_delay_open_until_valid_rcpt = no, Postfix opens the queue file
#     at the end of MAIL FROM and sends {i} at RCPT: the decision line
#     starts with that queue ID, the one Postfix's own log gives the
#     refusal.  With Postfix's default (the queue file opened at the first
#     accepted recipient) the line says NOQUEUE, as Postfix's own does,
#     until a recipient was accepted: a later recipient refused (here by a
#     rate limit) is logged with the queue ID.
#
# TAP on stdout; exit 0 after the results, 99 when the harness cannot run.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

[[ -x $MXGATE ]] || [[ -f $MXGATE ]] || bail "no daemon at $MXGATE (set MXGATE)"
[[ $(id -u) == 0 ]] || bail "needs root (a mount namespace, private Postfix instances)"
command -v unshare >/dev/null || bail "unshare (util-linux) missing"
pf_need_packages python3 swaks "${PF_PACKAGES[@]}" >&2 || bail "cannot install packages"
export PYTHONPATH=$here/lib${PYTHONPATH:+:$PYTHONPATH}

mxpid= sink_pid=
e2e_work logging mxpid sink_pid

# ---- the syslog socket ----------------------------------------------------------
# Every datagram, one line each, to $work/syslog.txt (bounded: 300 s).
: >"$work/syslog.txt"
python3 "$here/lib/syslog_sink.py" "$work/syslog.sock" "$work/syslog.txt" 300 >"$work/sink.out" 2>&1 &
sink_pid=$!
wait_for "[[ -S '$work/syslog.sock' ]]" 10 || bail "the syslog socket did not open: $(cat "$work/sink.out")"

# $work/ns-mxgate: mxgate in a mount namespace whose /dev holds null, zero,
# random, urandom and, as log, the socket above.
mkdir -p "$work/dev"
cat >"$work/ns-mxgate" <<EOF
#!/bin/bash
exec unshare -m --propagation private bash -c '
set -e
for n in null zero random urandom; do
    : >"$work/dev/\$n"
    mount --bind "/dev/\$n" "$work/dev/\$n"
done
: >"$work/dev/log"
mount --bind "$work/syslog.sock" "$work/dev/log"
mount --rbind "$work/dev" /dev
exec "\$@"' _ "$MXGATE" "\$@"
EOF
chmod 0755 "$work/ns-mxgate"

cat >"$work/mxgate.conf" <<'EOF'
trusted_networks = [ ];
syslog_facility = "local3";
quota: { enabled = false; };
ratelimit: { enabled = false; };
overload: { enabled = false; };
EOF
MXGATE=$work/ns-mxgate mxgate_start "$work/mxgate.conf" "$work/mxgate.log" 20 ||
    { sed 's/^/# /' "$work/mxgate.log"; bail "mxgate did not start in its namespace"; }
mxpid=$MXGATE_PID

# A refusal at RCPT (a HELO that is no FQDN), from the raw milter client.
timeout 30 python3 "$here/lib/rl_milter.py" session --port "$MXGATE_PORT" --ip 192.0.2.7 \
    --helo localhost --sender "<a@example.net>" --rcpt "<b@example.org>" --end abort >"$work/s1.out" 2>&1
grep -q '^RCPT y 504 ' "$work/s1.out"
tap_result $? "the session is refused at RCPT (HELO localhost)" || tap_diag "$(cat "$work/s1.out")"

decision="NOQUEUE: reject: RCPT from client.example.net[192.0.2.7]: 504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname; from=<a@example.net> to=<b@example.org> helo=<localhost> check=helo"
wait_for "grep -qF 'NOQUEUE: reject: RCPT' '$work/syslog.txt'" 5
line=$(grep -F 'NOQUEUE: reject: RCPT' "$work/syslog.txt" | head -n 1)
tap_result "$([[ -n $line ]]; echo $?)" "the decision line reaches the syslog socket" ||
    tap_diag "received: $(head -c 2000 "$work/syslog.txt")"
pri=$(sed -n 's/^<\([0-9]*\)>.*/\1/p' <<<"$line")
tap_result "$([[ -n $pri ]] && ((pri >> 3 == 19 && (pri & 7) == 6)); echo $?)" \
    "...with facility local3 and severity info (PRI ${pri:-none}, want 158)"
tap_result "$([[ $line == *"mxgate[$mxpid]: "* ]]; echo $?)" "...tagged mxgate[$mxpid]" ||
    tap_diag "$line"
tap_result "$([[ $line == *"$decision"* ]]; echo $?)" "...in Postfix's format" || tap_diag "$line"
# An error: a reload of a file that does not parse (the running
# configuration stays).
cp "$work/mxgate.conf" "$work/good.conf"
printf 'trusted_networks = [ ;\n' >"$work/mxgate.conf"
kill -USR1 "$mxpid"
wait_for "grep -qF 'reload of ' '$work/syslog.txt'" 5
line=$(grep -F 'reload of ' "$work/syslog.txt" | head -n 1)
pri=$(sed -n 's/^<\([0-9]*\)>.*/\1/p' <<<"$line")
tap_result "$([[ -n $pri ]] && ((pri >> 3 == 19 && (pri & 7) == 3)); echo $?)" \
    "a failed reload arrives with facility local3 and severity err (PRI ${pri:-none}, want 155)" ||
    tap_diag "${line:-nothing about the reload}"
cp "$work/good.conf" "$work/mxgate.conf"
mxgate_stop_check "$mxpid" "$work/mxgate.log" "mxgate in its namespace"
mxpid=

# ---- the queue ID, through Postfix ------------------------------------------------
# One recipient per sender an hour: the second recipient of a message is
# refused after the first was accepted.
cat >"$work/pf.conf" <<'EOF'
trusted_networks = [ ];
quota: { enabled = false; };
ratelimit: { rules = (
  { name = "one"; key = [ "sender" ]; count = "recipients"; limits = [ "1/1h" ]; }
); };
overload: { enabled = false; };
EOF
mxgate_start "$work/pf.conf" "$work/pf-mxgate.log" 20 || { sed 's/^/# /' "$work/pf-mxgate.log"; bail "mxgate did not start"; }
mxpid=$MXGATE_PID
PF_SASL=no
# postfix_case NAME DELAY-OPEN HELO RCPTS: a Postfix with
# smtpd_delay_open_until_valid_rcpt = DELAY-OPEN, one session from
# q-NAME@example.net; sets qid (the queue ID of Postfix's last refusal, or
# NOQUEUE) and mline (mxgate's line for the last recipient).
postfix_case() {
    local dir=$work/$1 smtp sink last=${4##*,}
    smtp=$(pf_free_port) && sink=$(pf_free_port) || bail "no free port"
    qid= mline=
    if ! pf_start "$dir" "$smtp" "$sink" "smtpd_milters = inet:127.0.0.1:$MXGATE_PORT" \
        "milter_default_action = tempfail" "smtpd_delay_open_until_valid_rcpt = $2" >&2; then
        tap_diag "Postfix $1 did not start"
        return 1
    fi
    pf_swaks_replies --port "$smtp" --helo "$3" --from "q-$1@example.net" --to "$4" >"$work/$1.swaks"
    wait_for "grep -q 'milter-reject: RCPT from.* to=<$last>' '$dir/maillog'" 10
    qid=$(grep "milter-reject: RCPT from.* to=<$last>" "$dir/maillog" |
        sed -n 's/.*postfix[^:]*: \([0-9A-Za-z]*\): milter-reject: RCPT from.*/\1/p' | tail -n 1)
    mline=$(grep -F "from=<q-$1@example.net> to=<$last>" "$work/pf-mxgate.log" | tail -n 1)
    pf_stop "$dir"
}
postfix_case early no localhost r-early@example.org
tap_result "$([[ -n $qid && $qid != NOQUEUE ]]; echo $?)" \
    "Postfix with smtpd_delay_open_until_valid_rcpt = no refuses at RCPT with a queue ID (${qid:-none})" ||
    tap_diag "$(grep -F 'milter-reject' "$work/early/maillog" 2>/dev/null | head -3)"
tap_result "$([[ -n $qid && $mline == *"mxgate: $qid: reject: RCPT from "* ]]; echo $?)" \
    "...and mxgate's decision line starts with that queue ID, not NOQUEUE" || tap_diag "mxgate: $mline"
postfix_case default yes localhost r-default@example.org
tap_result "$([[ $qid == NOQUEUE ]]; echo $?)" \
    "Postfix's default (delay open), every recipient refused: no queue ID (${qid:-none})" ||
    tap_diag "$(grep -F 'milter-reject' "$work/default/maillog" 2>/dev/null | head -3)"
tap_result "$([[ $mline == *"mxgate: NOQUEUE: reject: RCPT from "* ]]; echo $?)" \
    "...and mxgate's decision line says NOQUEUE" || tap_diag "mxgate: $mline"
postfix_case second yes mx.example.net r1-second@example.org,r2-second@example.org
tap_result "$([[ -n $qid && $qid != NOQUEUE ]]; echo $?)" \
    "Postfix's default, the second recipient refused after the first was accepted: a queue ID (${qid:-none})" ||
    tap_diag "$(grep -F 'milter-reject' "$work/second/maillog" 2>/dev/null | head -3)"
tap_result "$([[ -n $qid && $mline == *"mxgate: $qid: reject: RCPT from "*'check=ratelimit'* ]]; echo $?)" \
    "...and mxgate's rate-limit line starts with that queue ID" || tap_diag "mxgate: $mline"
mxgate_stop_check "$mxpid" "$work/pf-mxgate.log" "mxgate"
mxpid=
tap_done
exit 0
