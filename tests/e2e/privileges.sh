#!/bin/bash
# privileges.sh - what mxgate is after it drops to `user`, and the unix and
# IPv6 sockets as an MTA uses them:
#   - user = "nobody": the uid and gid (real, effective, saved, file
#     system) and the supplementary groups are nobody's, no capability is
#     left, and the pidfile, in a directory owned by root that nobody cannot
#     write, is removed at stop (exit 0), leaving no process behind;
#   - a unix socket in a directory owned by root, for a real Postfix: the
#     socket belongs to `user` and its group, mode 770; Postfix's smtpd,
#     running as postfix with that group among its groups (as the README
#     tells to set up), gets a message through and a bad HELO refused; a
#     process outside the group is refused at connect (EACCES), the same
#     process in the group is not; the socket is removed at stop;
#   - a stale socket left by a SIGKILL is replaced at the next start, and
#     Postfix is served again;
#   - inet6:PORT@[::1]: listens on ::1 only, and a milter client
#     (lib/milter_wire.py: miltertest speaks no inet6) gets the verdicts
#     over it (a TAP SKIP when the machine has no ::1).
# Runs under the engine of the pass (MXGATE_ENGINE, tests/e2e/lib/engine-wrap.sh).
# Needs root (the privilege drop, the private Postfix, a test account):
# every point is a SKIP otherwise.  The account, `mxgate-e2e-PID` with a
# group of its name and postfix added to that group, is removed at exit.
set -u
here=$(cd "$(dirname "$0")" && pwd)
MXGATE=${MXGATE:-${abs_top_builddir:-$(pwd)}/mxgate}
engine=${MXGATE_ENGINE:-libmilter}
. "$here/lib/tap.sh"
. "$here/lib/postfix.sh"
. "$here/lib/mxgate.sh"

# Python for the processes run as nobody: the system's, whoever runs it.
PY=/usr/bin/python3
BAD_HELO=usuario-10c7392
BAD_HELO_REPLY="504 5.5.2 <$BAD_HELO>: Helo command rejected: need fully-qualified hostname"
FROM=sender@example.net
RCPT=rcpt@example.org

# Every point, in order, for the SKIP lines when the script cannot run.
point_names=(
    "user = nobody: mxgate starts"
    "pidfile holds the daemon's pid"
    "Uid: real, effective, saved and file system uid are nobody's"
    "Gid: real, effective, saved and file system gid are nobody's"
    "Groups: exactly nobody's groups"
    "no capability left"
    "user = nobody daemon stops on SIGTERM: status 0, no sanitizer report"
    "the pidfile is removed at stop from a root-owned 0755 directory nobody cannot write"
    "no process forked by mxgate outlives it"
    "unix socket daemon starts as the test account"
    "the socket is the account's and its group's, mode 770"
    "private Postfix starts with smtpd_milters = unix:PATH"
    "a message goes through Postfix and mxgate over the unix socket"
    "a bad HELO is refused at RCPT over the unix socket"
    "Postfix's smtpd runs as postfix, with the socket's group among its groups"
    "a process outside the socket's group is refused at connect"
    "the same process in the socket's group connects"
    "unix socket daemon stops on SIGTERM: status 0, no sanitizer report"
    "the socket in the root-owned directory is removed at stop"
    "SIGKILL leaves a stale socket file nobody listens on"
    "the next start replaces the stale socket"
    "after the restart a bad HELO through Postfix is refused again"
    "restarted daemon stops on SIGTERM: status 0, no sanitizer report"
    "inet6:PORT@[::1]: mxgate starts"
    "inet6: it listens on [::1] only"
    "inet6: a good HELO passes RCPT (SMFIR_CONTINUE)"
    "inet6: a bad HELO is refused at RCPT with the HELO reply"
    "inet6 daemon stops on SIGTERM: status 0, no sanitizer report"
)

# skip_points FROM TO REASON: the points FROM..TO (indexes in point_names)
# as TAP SKIPs.
skip_points() {
    local i
    for ((i = $1; i <= $2; i++)); do
        echo "ok $((TAP_N += 1)) - engine $engine: ${point_names[i]} # SKIP $3"
    done
}

# point I STATUS [DETAIL]: tap_result for point_names[I], with the engine
# and DETAIL in the name; returns STATUS.
point() {
    local i=$1 st=$2
    tap_result "$st" "engine $engine: ${point_names[i]}${3:+ ($3)}"
}

if [[ $(id -u) != 0 ]]; then
    skip_points 0 $((${#point_names[@]} - 1)) "not root"
    tap_done
    exit 0
fi
[[ -x $MXGATE ]] || { echo "Bail out! no daemon at $MXGATE"; exit 99; }
pf_need_packages "${PF_PACKAGES[@]}" >&2 || { echo "Bail out! packages missing"; exit 99; }
for t in setpriv useradd userdel gpasswd "$PY"; do
    command -v "$t" >/dev/null || { echo "Bail out! $t missing"; exit 99; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/mxgate-priv.XXXXXX") || { echo "Bail out! mktemp"; exit 99; }
# nobody and postfix reach the sockets below it
chmod 755 "$work"
account=mxgate-e2e-$$
account_made=no
pids=()

# account_remove NAME: remove a test account, its group and postfix's
# membership of it.
account_remove() {
    gpasswd -d postfix "$1" >/dev/null 2>&1
    userdel "$1" >/dev/null 2>&1
    groupdel "$1" >/dev/null 2>&1
    return 0
}

cleanup() {
    local p
    for p in "${pids[@]}"; do pf_kill_pid "$p" 5; done
    pf_stop_all
    [[ $account_made == yes ]] && account_remove "$account"
    rm -rf "$work"
}
trap cleanup EXIT

# forget PID: drop PID from the pids the cleanup kills (it was reaped).
forget() {
    local p keep=()
    for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    pids=("${keep[@]}")
}

# ids_of PID FIELD: the values of a line of /proc/PID/status (Uid, Gid,
# Groups, CapEff...), on one line.
ids_of() {
    awk -v f="$2:" '$1 == f { $1 = ""; sub(/^ /, ""); print }' "/proc/$1/status" 2>/dev/null
}

# same_set A B: true when the words of A and of B are the same set.
same_set() {
    [[ $(tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -u) == $(tr ' ' '\n' <<<"$2" | sed '/^$/d' | sort -u) ]]
}

# children_of PID: the pids whose parent is PID.
children_of() {
    local f ppid
    for f in /proc/[0-9]*/stat; do
        ppid=$(sed -n 's/^.*) . \([0-9]*\) .*/\1/p' "$f" 2>/dev/null)
        [[ $ppid == "$1" ]] && { f=${f#/proc/}; echo "${f%/stat}"; }
    done
}

# as_nobody GROUPS ARGS...: run ARGS as uid nobody, gid nogroup, with the
# supplementary GROUPS (comma-separated gids; "" for none), in a clean
# environment, from /.
as_nobody() {
    local groups=$1
    shift
    if [[ -z $groups ]]; then
        (cd / && timeout 20 env -i PATH=/usr/bin:/bin \
            setpriv --reuid=nobody --regid=nogroup --clear-groups "$@")
    else
        (cd / && timeout 20 env -i PATH=/usr/bin:/bin \
            setpriv --reuid=nobody --regid=nogroup --groups="$groups" "$@")
    fi
}

# $work/connect.py PATH: connect to the unix socket PATH and print
# "connected" or the errno's name (EACCES, ECONNREFUSED...).  A file, so
# that a process run as nobody can read it too.
cat >"$work/connect.py" <<'PY'
import errno, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
    sys.exit(0)
print("connected")
PY
chmod 644 "$work/connect.py"

# unix_connect PATH: $work/connect.py PATH, as root.
unix_connect() {
    timeout 20 "$PY" "$work/connect.py" "$1"
}

# all_gone PID...: true when none of the PIDs runs (a zombie is gone).
all_gone() {
    local p
    for p in "$@"; do mxgate_alive "$p" && return 1; done
    return 0
}

# start_conf CONF LOG [ARGS...]: "$MXGATE -f -c CONF ARGS..." in the
# background, output in LOG; sets dpid; true once the start-up line is
# logged (bounded: 20 s), false when it exits or does not get there.
start_conf() {
    local conf=$1 log=$2 i
    shift 2
    "$MXGATE" -f -c "$conf" "$@" </dev/null >"$log" 2>&1 &
    dpid=$!
    pids+=("$dpid")
    for ((i = 0; i < 200; i++)); do
        grep -q 'listening on' "$log" && return 0
        mxgate_alive "$dpid" || return 1
        sleep 0.1
    done
    return 1
}

# stop_point I PID LOG: mxgate_stop as point I, then forget PID.
stop_point() {
    mxgate_stop "$2" "$3"
    point "$1" $? "${MXGATE_STOP_WHY:-status $MXGATE_STOP_STATUS}"
    forget "$2"
}

# rcpt_reply LOG: the reply lines to RCPT TO in a swaks transcript.
rcpt_reply() {
    awk '/^ *-> RCPT TO/ { f = 1; next } /^ *-> / { f = 0 } f' "$1" |
        sed -n -e 's/^<[-~]  //p' -e 's/^<[-~]\*\* //p' -e 's/^<\*\* //p'
}

# root_dir DIR: DIR made root's, mode 755, as /run is.
root_dir() {
    mkdir -p "$1" && chown root:root "$1" && chmod 755 "$1"
}

# === 1. user = "nobody": identity after the drop, pidfile at stop =========
# The pidfile's directory is root's, mode 755, as /run is.
root_dir "$work/run"
cat >"$work/nobody.conf" <<CONF
user = "nobody";
pidfile = "$work/run/mxgate.pid";
trusted_networks = [ ];
CONF
mxgate_start "$work/nobody.conf" "$work/nobody.log" 20
point 0 $? "on inet:${MXGATE_PORT:-?}@127.0.0.1"
if [[ -n $MXGATE_PID ]]; then
    npid=$MXGATE_PID
    pids+=("$npid")
    wait_for "[ -s '$work/run/mxgate.pid' ]" 10
    point 1 "$([[ $(cat "$work/run/mxgate.pid" 2>/dev/null) == "$npid" ]]; echo $?)" "pid $npid"
    nuid=$(id -u nobody) ngid=$(id -g nobody)
    # The pidfile is written as root, just before the drop: wait for it
    # (every id is checked below).
    wait_for "[[ \$(ids_of $npid Uid) == '$nuid $nuid $nuid $nuid' ]]" 10
    uids=$(ids_of "$npid" Uid) gids=$(ids_of "$npid" Gid) groups=$(ids_of "$npid" Groups)
    point 2 "$([[ $uids == "$nuid $nuid $nuid $nuid" ]]; echo $?)" "Uid: $uids"
    point 3 "$([[ $gids == "$ngid $ngid $ngid $ngid" ]]; echo $?)" "Gid: $gids"
    point 4 "$(same_set "$groups" "$(id -G nobody)"; echo $?)" "Groups: $groups; id -G nobody: $(id -G nobody)"
    caps="$(ids_of "$npid" CapEff) $(ids_of "$npid" CapPrm)"
    point 5 "$([[ $caps == "0000000000000000 0000000000000000" ]]; echo $?)" "CapEff CapPrm: $caps"
    kids=$(children_of "$npid" | tr '\n' ' ')
    [[ -n $kids ]] && tap_diag "children of mxgate while it runs: $(for k in $kids; do
        printf '%s (uid %s) ' "$k" "$(ids_of "$k" Uid | cut -d' ' -f2)"; done)"
    stop_point 6 "$npid" "$work/nobody.log"
    # nobody could not have removed it: the directory is root's, 755
    dir_state=$(stat -c '%U %a' "$work/run")
    as_nobody "" test -w "$work/run"
    writable=$?
    [[ ! -e $work/run/mxgate.pid && $dir_state == "root 755" && $writable != 0 ]]
    point 7 $? "directory $dir_state, writable by nobody: $([[ $writable == 0 ]] && echo yes || echo no)"
    # shellcheck disable=SC2086 # a list of pids
    all_gone $kids
    point 8 $? "${kids:+forked: $kids}"
    [[ -e $work/run/mxgate.pid ]] && tap_diag "$(tail -5 "$work/nobody.log")"
else
    tap_diag "$(tail -20 "$work/nobody.log" 2>/dev/null)"
    skip_points 1 8 "mxgate did not start"
fi

# === 2. unix socket for a real Postfix ======================================
# The socket's group is the primary group of `user`; postfix is added to
# it, as the README says to (usermod -a -G).  Accounts of earlier runs that
# were killed before their clean-up are removed first.
while IFS=: read -r name _; do
    [[ $name =~ ^mxgate-e2e-([0-9]+)$ ]] || continue
    kill -0 "${BASH_REMATCH[1]}" 2>/dev/null || account_remove "$name"
done < <(getent passwd)
if useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$account" >"$work/useradd.out" 2>&1 &&
    gpasswd -a postfix "$account" >>"$work/useradd.out" 2>&1; then
    account_made=yes
else
    tap_diag "$(cat "$work/useradd.out")"
    account_remove "$account"
fi

sock=$work/sock/mxgate.sock
root_dir "$work/sock"
cat >"$work/unix.conf" <<CONF
socket = "unix:$sock";
user = "$account";
trusted_networks = [ ];
CONF

if [[ $account_made != yes ]]; then
    skip_points 9 22 "cannot create the test account $account"
elif ! start_conf "$work/unix.conf" "$work/unix.log"; then
    point 9 1 "unix:$sock"
    tap_diag "$(tail -20 "$work/unix.log")"
    skip_points 10 22 "mxgate did not start"
else
    upid=$dpid
    point 9 0 "unix:$sock as $account"
    owner=$(stat -c '%U:%G %a' "$sock" 2>/dev/null)
    point 10 "$([[ $owner == "$account:$account 770" ]]; echo $?)" "$owner"
    agid=$(getent group "$account" | cut -d: -f3)
    # shellcheck disable=SC2034 # read by pf_start
    PF_SASL=no
    pport=$(pf_free_port) && psink=$(pf_free_port) || { echo "Bail out! no free port"; exit 99; }
    pf_start "$work/pf" "$pport" "$psink" "smtpd_milters = unix:$sock" \
        "milter_default_action = tempfail" >"$work/pf-start.log" 2>&1
    if ! point 11 $? "127.0.0.1:$pport"; then
        tap_diag "$(tail -20 "$work/pf-start.log")"
        skip_points 12 14 "Postfix did not start"
    else
        # With milter_default_action = tempfail a message is queued only
        # when the milter was reached and let it through.
        PF_SWAKS_LOG=$work/good.log pf_swaks_replies --port "$pport" --helo mx.example.net \
            --from "$FROM" --to "$RCPT" --data >"$work/good.out"
        wait_for "[ \$(pf_sink_count '$work/pf') -ge 1 ]" 30
        n=$(pf_sink_count "$work/pf")
        # the reply to the end of the message: the last one before QUIT's
        last=$(grep -E '^[245][0-9][0-9] ' "$work/good.out" | grep -v '^221 ' | tail -1)
        [[ $n == 1 && $last == "250 "*"queued as"* ]]
        point 12 $? "$n in the sink; $last" ||
            tap_diag "$(cat "$work/good.out")" "$(grep -i milter "$work/pf/maillog" | tail -5)"
        # The smtpd that served the session lingers (max_idle): its identity.
        master=$(pf_master_pid "$work/pf")
        smtpd=
        for k in $(children_of "$master"); do
            [[ $(ids_of "$k" Name) == smtpd ]] && { smtpd=$k; break; }
        done
        PF_SWAKS_LOG=$work/bad.log pf_swaks_replies --port "$pport" --helo "$BAD_HELO" \
            --from "$FROM" --to "$RCPT" >"$work/bad.out"
        r=$(rcpt_reply "$work/bad.log")
        point 13 "$([[ $r == "$BAD_HELO_REPLY" ]]; echo $?)" "$r" ||
            tap_diag "$(cat "$work/bad.out")" "$(grep -i milter "$work/pf/maillog" | tail -5)"
        puid=$(id -u postfix)
        sids=${smtpd:+$(ids_of "$smtpd" Uid)} sgroups=${smtpd:+$(ids_of "$smtpd" Groups)}
        [[ -n $smtpd && $sids == "$puid $puid $puid $puid" ]] &&
            [[ " $sgroups " == *" $agid "* ]]
        point 14 $? "smtpd ${smtpd:-not found}: Uid: $sids; Groups: $sgroups; the socket's gid $agid"
    fi
    r=$(as_nobody "" "$PY" "$work/connect.py" "$sock" 2>&1)
    point 15 "$([[ $r == EACCES ]]; echo $?)" "uid nobody, gid nogroup, no other group: $r"
    r=$(as_nobody "$agid" "$PY" "$work/connect.py" "$sock" 2>&1)
    point 16 "$([[ $r == connected ]]; echo $?)" "uid nobody, gid nogroup, groups $agid: $r"
    stop_point 17 "$upid" "$work/unix.log"
    point 18 "$([[ ! -e $sock ]]; echo $?)" "$(stat -c '%U %a' "$work/sock")"

    # === 3. a stale socket after SIGKILL ====================================
    if start_conf "$work/unix.conf" "$work/kill.log"; then
        kpid=$dpid
        kids=$(children_of "$kpid")
        kill -KILL "$kpid"
        wait "$kpid" 2>/dev/null
        st=$?
        forget "$kpid"
        stale=$(stat -c %i "$sock" 2>/dev/null)
        r=$(unix_connect "$sock")
        [[ $st == 137 && -S $sock && $r == ECONNREFUSED ]]
        point 19 $? "status $st, inode ${stale:-none}, connect: $r"
        # what mxgate forked goes with it, and held the socket no longer
        wait_for "all_gone $kids" 10 || tap_diag "processes of the killed mxgate still running: $kids"
        if start_conf "$work/unix.conf" "$work/restart.log"; then
            rpid=$dpid
            new=$(stat -c %i "$sock" 2>/dev/null)
            r=$(unix_connect "$sock")
            # a socket that refused connections now takes them (an inode
            # number may be reused, so it is only shown)
            [[ $r == connected ]] && ! grep -q 'another process is listening' "$work/restart.log"
            point 20 $? "inode $stale -> ${new:-none}, connect: $r"
            if [[ -n ${pport:-} ]] && pf_master_pid "$work/pf" >/dev/null; then
                PF_SWAKS_LOG=$work/bad2.log pf_swaks_replies --port "$pport" --helo "$BAD_HELO" \
                    --from "$FROM" --to "$RCPT" >"$work/bad2.out"
                r=$(rcpt_reply "$work/bad2.log")
                point 21 "$([[ $r == "$BAD_HELO_REPLY" ]]; echo $?)" "$r" ||
                    tap_diag "$(cat "$work/bad2.out")"
            else
                skip_points 21 21 "Postfix did not start"
            fi
            stop_point 22 "$rpid" "$work/restart.log"
        else
            point 20 1 "mxgate did not start again"
            tap_diag "$(tail -20 "$work/restart.log")"
            skip_points 21 22 "mxgate did not start again"
        fi
    else
        point 19 1 "mxgate did not start"
        tap_diag "$(tail -20 "$work/kill.log")"
        skip_points 20 22 "mxgate did not start"
    fi
fi

# === 4. IPv6 ==================================================================
# ::1 must be configured and bindable.
have_v6() {
    grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null &&
        "$PY" -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null
}
if ! have_v6; then
    skip_points 23 27 "no ::1 on this machine (IPv6 loopback not configured)"
else
    v6port=$(pf_free_port) || { echo "Bail out! no free port"; exit 99; }
    printf 'trusted_networks = [ ];\n' >"$work/v6.conf"
    spec="inet6:$v6port@[::1]"
    if start_conf "$work/v6.conf" "$work/v6.log" -p "$spec" &&
        wait_for "pf_port_listening $v6port" 10; then
        vpid=$dpid
        point 23 0 "$(grep -o 'listening on [^ ]*' "$work/v6.log")"
        # /proc/net/tcp6 writes ::1 as 00000000000000000000000001000000
        hex=$(printf '%04X' "$v6port")
        listen6=$(awk -v h="$hex" 'NR > 1 { split($2, a, ":"); if (a[2] == h && $4 == "0A") print a[1] }' \
            /proc/net/tcp6 | sort -u | tr '\n' ' ')
        listen4=$(awk -v h="$hex" 'NR > 1 { split($2, a, ":"); if (a[2] == h && $4 == "0A") print a[1] }' \
            /proc/net/tcp | tr '\n' ' ')
        [[ $listen6 == "00000000000000000000000001000000 " && -z $listen4 ]]
        point 24 $? "tcp6: ${listen6:-none}; tcp: ${listen4:-none}"
        # miltertest speaks no inet6: the MTA's side is milter_wire.py, as
        # Postfix 3.7 negotiates, for a client at 2001:db8::9.
        cat >"$work/v6.py" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from milter_wire import Milter
m = Milter(int(sys.argv[2]), timeout=20, host="::1").optneg()
m.connect(host=b"client.example", addr=b"2001:db8::9")
m.helo(sys.argv[3].encode())
m.mail(b"<a@example.net>")
r = m.rcpt(b"<b@example.org>")
print(r.code, r.text)
m.quit()
PY
        r=$(timeout 30 "$PY" "$work/v6.py" "$here/lib" "$v6port" mx.example.net 2>&1)
        point 25 "$([[ $r == "c " ]]; echo $?)" "RCPT reply: $r"
        r=$(timeout 30 "$PY" "$work/v6.py" "$here/lib" "$v6port" "$BAD_HELO" 2>&1)
        point 26 "$([[ $r == "y $BAD_HELO_REPLY" ]]; echo $?)" "RCPT reply: $r"
        stop_point 27 "$vpid" "$work/v6.log"
    else
        point 23 1 "$spec"
        tap_diag "$(tail -20 "$work/v6.log")"
        [[ -n ${dpid:-} ]] && mxgate_alive "$dpid" && mxgate_stop "$dpid" "$work/v6.log"
        skip_points 24 27 "mxgate did not start on $spec"
    fi
fi

tap_done
exit 0
