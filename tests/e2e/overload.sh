#!/bin/bash
# tests/e2e/overload.sh -- the overload throttle (mxgate.conf(5), "THE OVERLOAD CHECK"),
# against the real daemon.
#
# Part 1 drives mxgate with miltertest (reply codes and mxgate's own log
# lines on stderr): a fake Postfix queue directory filled and drained, a
# test loadavg file and a flag file, with sample_interval = 1.  Overloaded:
# unauthenticated MAIL gets a custom 4xx reply and the NOQUEUE line says
# 451 4.3.2; {auth_authen} and trusted clients pass; the state clears at
# the low mark and not before; entering and leaving are logged once each.
# Bad input (missing and unreadable queue directory, garbage loadavg, a flag
# path that is a directory) is logged once, reads as not overloaded, and
# the daemon keeps running; SIGUSR1 applies new marks.  mxgate runs as
# nobody (user = "nobody"), so "unreadable" is real even though the test
# runs as root.
#
# Part 2 checks the exact reply text through a private Postfix and swaks
# (tests/e2e/lib/postfix.sh): "451 4.3.2 Server busy, try again later" to
# an unauthenticated client, 250 to an authenticated one.
#
# Part 3 watches that Postfix's own queue (incoming and active 0700, owned
# by postfix), with mail held in incoming: an mxgate with user = "postfix"
# counts it and enters overload; one with user = "nobody" logs "Permission
# denied" once and stays out of overload.
#
# TAP on stdout; exit 0 after the results, 99 for a harness failure.
set -u

. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

[[ -x $MXGATE ]] || bail "no daemon at $MXGATE (set MXGATE)"
[[ $(id -u) == 0 ]] || bail "needs root (user = nobody, private Postfix)"
pf_need_packages miltertest "${PF_PACKAGES[@]}" || bail "cannot install packages"

tmp=$(mktemp -d /tmp/mxgate-overload.XXXXXX) || bail "mktemp"
chmod 0755 "$tmp"
mxpid= mxpids=()
cleanup() {
    local p
    [[ -n $mxpid ]] && pf_kill_pid "$mxpid" 5
    for p in "${mxpids[@]}"; do pf_kill_pid "$p" 10; done
    pf_stop_all
    chmod -R u+rwx "$tmp" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

mport=$(pf_free_port) || bail "no free port"
sock="inet:$mport@127.0.0.1"
q=$tmp/queue
mkdir -p "$q/incoming/A" "$q/active" "$q/maildrop" "$q/deferred"
loadavg=$tmp/loadavg
printf '%s\n' "0.10 0.20 0.30 1/100 4242" >"$loadavg"
flag=$tmp/flag
conf=$tmp/mxgate.conf
log=$tmp/mxgate.log

# write_conf QUEUE_HIGH QUEUE_LOW: the daemon's configuration.
write_conf() {
    cat >"$conf" <<EOF
socket = "$sock";
user = "nobody";
log_level = "debug";
trusted_networks = [ "192.0.2.200/32" ];
quota: { enabled = false; };
ratelimit: { enabled = false; };
overload: {
  flag_file = "$flag";
  queue_directory = "$q";
  queue_format = "postfix";
  queue_high = $1; queue_low = $2;
  load_high = 4.0; load_low = 2.0;
  loadavg_file = "$loadavg";
  sample_interval = 1;
};
EOF
    chmod 0644 "$conf"
}

# The Lua side: one connection, MAIL FROM, print the reply kind.
cat >"$tmp/mail.lua" <<'EOF'
local ok, err = pcall(function()
  local conn = mt.connect(SOCK, 40, 0.05)
  if conn == nil then error("cannot connect to " .. SOCK) end
  if not mt.test_option(conn, SMFIP_NOCONNECT) then
    mt.conninfo(conn, "client.example.net", IP)
  end
  if not mt.test_option(conn, SMFIP_NOHELO) then
    mt.helo(conn, "client.example.net")
  end
  if AUTH ~= nil and AUTH ~= "" then
    mt.macro(conn, SMFIC_MAIL, "{auth_authen}", AUTH)
  end
  if mt.mailfrom(conn, "<sender@example.net>") ~= nil then error("mailfrom failed") end
  local r = mt.getreply(conn)
  local names = { [SMFIR_REPLYCODE] = "replycode", [SMFIR_CONTINUE] = "continue",
    [SMFIR_TEMPFAIL] = "tempfail", [SMFIR_REJECT] = "reject", [SMFIR_ACCEPT] = "accept" }
  mt.echo("MAIL " .. (names[r] or tostring(r)))
  mt.disconnect(conn)
end)
if not ok then mt.echo("ERROR " .. tostring(err)) end
EOF

# mail IP [AUTH]: print the reply kind to MAIL FROM ("continue", "replycode", ...).
mail() {
    local out
    out=$(timeout 20 miltertest -D "SOCK=$sock" -D "IP=$1" -D "AUTH=${2:-}" \
        -s "$tmp/mail.lua" 2>&1)
    out=$(printf '%s\n' "$out" | sed -n 's/^MAIL //p; s/^\(ERROR .*\)/\1/p' | head -1)
    echo "${out:-no answer}"
}
refused() { [[ $(mail 192.0.2.7) == replycode ]]; }
passes() { [[ $(mail "$@") == continue ]]; }

# lines PATTERN: how many log lines match (fixed string).
lines() { grep -cF -- "$1" "$log"; }
# wait_lines PATTERN COUNT SECONDS: until at least COUNT lines match.
wait_lines() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        (($(lines "$1") >= $2)) && return 0
        sleep 0.1
    done
    echo "# waited ${3}s for $2 line(s) with: $1" >&2
    return 1
}
# last_sample: the number of the newest "overload: sample N:" debug line (0
# when there is none yet).
last_sample() {
    local n
    n=$(sed -n 's/.*overload: sample \([0-9]*\): .*/\1/p' "$log" | tail -n 1)
    echo "${n:-0}"
}
# sampled MARK TEXT: wait (10 s at most) for sample MARK+2, where MARK is
# last_sample read just after a change: sample MARK+1 may have been under
# way during the change, MARK+2 began after it.  True when that sample's
# line has TEXT (a fixed string).
sampled() {
    local want=$(($1 + 2)) i line
    for ((i = 0; i < 100; i++)); do
        line=$(grep -F "overload: sample $want: " "$log" | head -n 1)
        [[ -n $line ]] && break
        sleep 0.1
    done
    if [[ -z $line ]]; then
        echo "# no sample $want within 10 s (newest: $(last_sample))" >&2
        return 1
    fi
    [[ $line == *"$2"* ]] && return 0
    echo "# sample $want: ${line#*overload: sample $want: }; wanted: $2" >&2
    return 1
}

# queue_files N: make the queue hold exactly N messages (spread over
# incoming, its hashed subdirectory A, active and maildrop), plus deferred
# mail that never counts.  Files are added or removed one by one, so a
# sample taken meanwhile sees a depth between the old and the new one.
qseq=0
queue_files() {
    local want=$1 i files dirs=("$q/incoming" "$q/incoming/A" "$q/active" "$q/maildrop")
    mapfile -t files < <(find "$q/incoming" "$q/active" "$q/maildrop" -type f | sort)
    if ((${#files[@]} > want)); then
        rm -f -- "${files[@]:want}"
    fi
    for ((i = ${#files[@]}; i < want; i++)); do
        qseq=$((qseq + 1))
        : >"${dirs[qseq % 4]}/$(printf '%05X%05X' "$qseq" $$)"
    done
    for ((i = 0; i < 30; i++)); do : >"$q/deferred/D$i"; done
}
# put_loadavg TEXT: replace the loadavg file by rename (never seen truncated).
put_loadavg() {
    printf '%s\n' "$1" >"$loadavg.new" && mv -f "$loadavg.new" "$loadavg"
}

write_conf 20 5
mxgate_run "$conf" "$log" "$mport" || bail "mxgate did not start"
mxpid=$MXGATE_PID

# ---- queue depth, hysteresis -------------------------------------------
queue_files 19
m=$(last_sample)
tap_check "queue of 19 (high 20): sampled, not overloaded" \
    sampled "$m" "queue depth 19, load average 0.10; not overloaded"
tap_check "queue of 19: unauthenticated MAIL passes" passes 192.0.2.7
queue_files 20
tap_check "queue reaches queue_high: entering logged with signal and value" \
    wait_lines "warning: overload: entering overload state: queue depth 20 reached queue_high 20" 1 5
tap_check "overloaded: unauthenticated MAIL gets a custom temporary reply" refused
tap_check "overloaded: log line names 451 4.3.2 and check=overload" \
    wait_lines "NOQUEUE: reject: MAIL from client.example.net[192.0.2.7]: 451 4.3.2 Server busy, try again later; from=<" 1 3
tap_check "overloaded: the reject line ends with check=overload" \
    bash -c "grep -F 'Server busy, try again later' '$log' | grep -q 'check=overload\$'"
tap_check "overloaded: {auth_authen} client passes" passes 192.0.2.7 alice@example.net
tap_check "overloaded: trusted client passes" passes 192.0.2.200
queue_files 6
m=$(last_sample)
tap_check "drained to 6 (low 5): sampled, still overloaded" \
    sampled "$m" "queue depth 6, load average 0.10; overloaded (queue depth)"
tap_check "drained to 6: unauthenticated MAIL still refused" refused
tap_check "drained to 6: not logged as leaving" test "$(lines 'leaving overload state')" -eq 0
queue_files 5
tap_check "drained to queue_low: leaving logged with signal and value" \
    wait_lines "overload: leaving overload state: queue depth 5 fell to queue_low 5" 1 5
tap_check "after leaving: unauthenticated MAIL passes" passes 192.0.2.7
queue_files 19
m=$(last_sample)
tap_check "refilled to 19: sampled, not overloaded again before queue_high" \
    sampled "$m" "queue depth 19, load average 0.10; not overloaded"
tap_check "refilled to 19: unauthenticated MAIL passes" passes 192.0.2.7
tap_check "entering and leaving were each logged once" \
    test "$(lines 'entering overload state')" -eq 1 -a "$(lines 'leaving overload state')" -eq 1

# ---- load average -------------------------------------------------------
put_loadavg "4.50 1.00 0.50 2/100 4242"
tap_check "load reaches load_high: entering logged with the load" \
    wait_lines "entering overload state: load average 4.50 reached load_high 4" 1 5
tap_check "overloaded by load: unauthenticated MAIL refused" refused
put_loadavg "2.01 1.00 0.50 2/100 4242"
m=$(last_sample)
tap_check "load 2.01 (low 2): sampled, still overloaded" \
    sampled "$m" "load average 2.01; overloaded (load average)"
tap_check "load 2.01: unauthenticated MAIL still refused" refused
put_loadavg "2.00 1.00 0.50 2/100 4242"
tap_check "load at load_low: leaving logged" \
    wait_lines "leaving overload state: load average 2.00 fell to load_low 2" 1 5

# ---- flag file ----------------------------------------------------------
: >"$flag"
tap_check "flag file created: entering logged" \
    wait_lines "entering overload state: flag file $flag exists" 1 5
tap_check "flag file present: unauthenticated MAIL refused" refused
rm -f "$flag"
tap_check "flag file removed: leaving logged" \
    wait_lines "leaving overload state: flag file $flag is gone" 1 5
tap_check "flag file removed: unauthenticated MAIL passes" passes 192.0.2.7

# ---- bad input: logged once, not overloaded, daemon keeps running -------
chmod 0000 "$q/active"
queue_files 25		# would be overloaded if the queue could be read
mkdir "$flag"		# a directory where the flag file goes
put_loadavg "garbage"
tap_check "garbage loadavg: logged" \
    wait_lines "loadavg file $loadavg: no load average at its start; load average treated as not overloaded" 1 5
m=$(last_sample)
tap_check "unreadable queue, flag directory, garbage loadavg: sampled as unreadable, not overloaded" \
    sampled "$m" "flag file unreadable, queue depth unreadable, load average unreadable; not overloaded"
tap_check "unreadable queue, flag directory, garbage loadavg: each logged once" \
    test "$(lines "queue directory $q/active: Permission denied; queue depth treated as not overloaded")" -eq 1 \
    -a "$(lines "flag file $flag: is a directory; flag file treated as not overloaded")" -eq 1 \
    -a "$(lines "loadavg file $loadavg: no load average")" -eq 1
tap_check "bad input: not overloaded, unauthenticated MAIL passes" passes 192.0.2.7
mv "$q" "$q.away"
chmod 0755 "$q.away/active"
tap_check "missing queue directory: logged" \
    wait_lines "queue directory $q: No such file or directory; queue depth treated as not overloaded" 1 5
m=$(last_sample)
tap_check "missing queue directory: sampled as unreadable, not overloaded" \
    sampled "$m" "queue depth unreadable, load average unreadable; not overloaded"
tap_check "missing queue directory: logged once, MAIL passes, daemon alive" \
    bash -c "[[ \$(grep -cF 'queue directory $q: No such file' '$log') -eq 1 ]] && kill -0 $mxpid"
find "$q.away" -type f -delete
mv "$q.away" "$q"
rmdir "$flag"

# ---- SIGUSR1 applies new marks -------------------------------------------
queue_files 10
put_loadavg "0.10 0.20 0.30 1/100 4242"
m=$(last_sample)
tap_check "before the reload: queue of 10 sampled, not overloaded (high 20)" \
    sampled "$m" "flag file absent, queue depth 10, load average 0.10; not overloaded"
tap_check "before the reload: unauthenticated MAIL passes" passes 192.0.2.7
write_conf 8 3
kill -USR1 "$mxpid"
tap_check "SIGUSR1: configuration reloaded" wait_lines "configuration reloaded" 1 5
tap_check "reload to queue_high 8: queue of 10 is overloaded (counted to the bound, 9)" \
    wait_lines "entering overload state: queue depth 9 or more reached queue_high 8" 1 5
tap_check "after reload: unauthenticated MAIL refused" refused

# ---- Postfix end to end: the exact reply text --------------------------
: >"$flag"
port=$(pf_free_port) && sink=$(pf_free_port) || bail "no free port"
if pf_start "$tmp/pf" "$port" "$sink" "smtpd_milters = inet:127.0.0.1:$mport"; then
    replies=$(pf_swaks_replies --port "$port" --helo client.example.net \
        --from sender@example.net --to rcpt@example.org)
    tap_check "Postfix: unauthenticated MAIL gets '451 4.3.2 Server busy, try again later'" \
        grep -qx '451 4.3.2 Server busy, try again later' <<<"$replies"
    [[ $replies == *"451 4.3.2 Server busy"* ]] || printf '# %s\n' "$replies" >&2
    replies=$(pf_swaks_replies --port "$port" --helo client.example.net \
        --from sender@example.net --to rcpt@example.org \
        --auth "$PF_SASL_USER" "$PF_SASL_PASSWORD")
    tap_check "Postfix: authenticated client's MAIL and RCPT are accepted" \
        bash -c 'grep -q "^250 2.1.0 " <<<"$1" && grep -q "^250 2.1.5 " <<<"$1" &&
            ! grep -q "^[45]" <<<"$1"' _ "$replies"
    [[ $replies == *"Server busy"* ]] && printf '# %s\n' "$replies" >&2
else
    tap_result 1 "Postfix: unauthenticated MAIL gets '451 4.3.2 Server busy, try again later' (Postfix did not start)"
    tap_result 1 "Postfix: authenticated client's MAIL and RCPT are accepted (Postfix did not start)"
fi

# ---- a real Postfix queue -------------------------------------------------
# The private Postfix's own queue, as Postfix made it (incoming and active
# owned by postfix, mode 0700), its queue manager taken out of master.cf so
# that mail stays in incoming.  Three messages through Postfix's sendmail
# (pickup and cleanup write them; no milter on that path).  An mxgate
# running as postfix counts them; one running as nobody logs "Permission
# denied" once and is not overloaded.
realq=$tmp/pf/queue
real_conf() { # real_conf NAME USER: $tmp/NAME.conf watching the real queue
    cat >"$tmp/$1.conf" <<EOF
user = "$2";
log_level = "debug";
trusted_networks = [ ];
quota: { enabled = false; };
ratelimit: { enabled = false; };
overload: { queue_directory = "$realq"; queue_format = "postfix"; queue_high = 2; queue_low = 1;
            sample_interval = 1; };
EOF
}
owners=$(stat -c '%U %a' "$realq/incoming" "$realq/active" 2>/dev/null | sort -u | tr '\n' ' ')
tap_check "the private Postfix's queue: incoming and active owned by postfix, mode 700 ($owners)" \
    test "$owners" = "postfix 700 "
postconf -c "$tmp/pf/etc" -MX qmgr/unix >&2 && postfix -c "$tmp/pf/etc" reload >&2 2>&1
for k in 1 2 3; do
    printf 'Subject: queued %s\n\nmessage %s\n' "$k" "$k" |
        timeout 20 /usr/sbin/sendmail -C "$tmp/pf/etc" -f "q$k@example.net" "rcpt@example.org"
done
tap_check "three messages submitted with Postfix's sendmail wait in the real incoming queue" \
    wait_for "(( \$(find '$realq/incoming' '$realq/active' -type f | wc -l) == 3 ))" 15
real_conf qpostfix postfix
real_conf qnobody nobody
mxgate_start "$tmp/qpostfix.conf" "$tmp/qpostfix.log" 20 && qp_pid=$MXGATE_PID || qp_pid=
mxpids+=("$qp_pid")
mxgate_start "$tmp/qnobody.conf" "$tmp/qnobody.log" 20 && qn_pid=$MXGATE_PID || qn_pid=
mxpids+=("$qn_pid")
tap_check "user = postfix: the real queue counted, its 3 messages reach queue_high 2 (counted to the bound)" \
    wait_for "grep -qF 'entering overload state: queue depth 3 or more reached queue_high 2' '$tmp/qpostfix.log'" 10 ||
    tail -n 5 "$tmp/qpostfix.log" | sed 's/^/# qpostfix: /' >&2
tap_check "user = nobody: the real queue cannot be read, logged as Permission denied" \
    wait_for "grep -qF 'queue directory $realq/incoming: Permission denied; queue depth treated as not overloaded' '$tmp/qnobody.log'" 10
log=$tmp/qnobody.log
m=$(last_sample)
tap_check "user = nobody: later samples read it as unreadable, not overloaded" \
    sampled "$m" "queue depth unreadable; not overloaded"
tap_check "user = nobody: Permission denied logged once, no overload state" \
    test "$(lines 'Permission denied')" -eq 1 -a "$(lines 'entering overload state')" -eq 0
log=$tmp/mxgate.log
tap_check "the mxgate as postfix stops on SIGTERM: status 0, no sanitizer report" \
    mxgate_stop "$qp_pid" "$tmp/qpostfix.log"
tap_check "the mxgate as nobody stops on SIGTERM: status 0, no sanitizer report" \
    mxgate_stop "$qn_pid" "$tmp/qnobody.log"
mxpids=()

# ---- clean stop ---------------------------------------------------------
tap_check "SIGTERM stops the daemon (sampler joined): status 0 within 15 s, no sanitizer report" \
    mxgate_stop "$mxpid" "$log"
[[ -n $MXGATE_STOP_WHY ]] && echo "# $MXGATE_STOP_WHY" >&2
mxpid=

grep -E "warning|error" "$log" | sed 's/^/# log: /' >&2
tap_done
exit 0
