# tests/e2e/lib/sendmail.sh -- run a real, private Sendmail for the e2e tests.
#
# Sourced after tests/e2e/lib/postfix.sh (bash only; uses pf_need_packages,
# pf_wait_banner, pf_kill_pid).  Debian's sendmail-bin cannot be installed
# beside postfix, so it is downloaded (apt-get download) and unpacked with
# dpkg-deb -x into a cache directory, never installed; only the libraries
# it links are installed.  Each instance runs as root in its own mount and
# UTS namespace (unshare -m -u) with a private /etc/hosts and host name (so
# it does not sleep 60 s on an unqualified host name) and a private /dev
# whose /dev/log is this instance's syslog listener.  Everything binds to
# loopback; every wait is bounded; sm_stop stops the instance by its pid.
#
#   . "$here/lib/postfix.sh"; . "$here/lib/sendmail.sh"
#   sm_setup || exit 99                     # download, unpack, libraries
#   sm_start DIR SMTPPORT SINKPORT "inet:MILTERPORT@127.0.0.1" [OPTS] || ...
#   sm_stop DIR
#
# Instance layout (DIR): sendmail.mc/.cf, mqueue/ (QUEUE_DIR: one qf*/df*
# pair per queued message), hosts, service.switch, aliases, sendmail.pid,
# syslog (every line Sendmail logged), sink/ (messages smtp-sink got on
# 127.0.0.2:SINKPORT), sendmail.out (its stdout/stderr).
#
# Knobs read by sm_start:
#   SM_DELIVERY_MODE   confDELIVERY_MODE: "background" (default) delivers at
#                      once; "queueonly" leaves messages in mqueue/ until
#                      sm_run_queue DIR.

# Where the unpacked packages live (kept between runs: only a download).
: "${SM_CACHE:=${TMPDIR:-/tmp}/.mxgate-e2e-sendmail}"
: "${SM_DELIVERY_MODE:=background}"
# This file's directory (syslog_sink.py is beside it).
SM_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SM_ROOT=$SM_CACHE/root
SM_BIN=$SM_ROOT/usr/libexec/sendmail/sendmail
SM_PACKAGES=(sendmail-bin sendmail-base sendmail-cf)

sm_log() {
    printf '# sm: %s\n' "$*" >&2
}

# sm_setup: make $SM_BIN runnable: the tools the test needs, the libraries
# Sendmail links, and the unpacked packages.  Serialised with flock.
sm_setup() {
    pf_need_packages postfix m4 python3 util-linux libwrap0 liblockfile1 libdb5.3 libnsl2 \
        libldap-2.5-0 libsasl2-2 libssl3 || return 1
    (
        flock -w 600 9 || { sm_log "lock timeout"; exit 1; }
        [[ -x $SM_BIN && -r $SM_ROOT/usr/share/sendmail/cf/m4/cf.m4 ]] && exit 0
        rm -rf "$SM_CACHE/debs" "$SM_ROOT"
        mkdir -p "$SM_CACHE/debs" "$SM_ROOT" || exit 1
        chmod 0755 "$SM_CACHE" "$SM_CACHE/debs"
        cd "$SM_CACHE/debs" || exit 1
        if ! timeout 300 apt-get download "${SM_PACKAGES[@]}" >download.log 2>&1; then
            # The package lists may be missing or stale on a fresh machine.
            timeout 300 apt-get -q update >>download.log 2>&1
            timeout 300 apt-get download "${SM_PACKAGES[@]}" >>download.log 2>&1 ||
                { sm_log "apt-get download failed:"; sed 's/^/#   /' download.log >&2; exit 1; }
        fi
        for f in ./*.deb; do
            dpkg-deb -x "$f" "$SM_ROOT" || exit 1
        done
    ) 9>"${TMPDIR:-/tmp}/.mxgate-e2e-sendmail.lock" || return 1
    if [[ ! -x $SM_BIN ]]; then
        sm_log "no $SM_BIN after unpacking"
        return 1
    fi
    if ldd "$SM_BIN" | grep -q 'not found'; then
        sm_log "libraries missing for sendmail:"
        ldd "$SM_BIN" | grep 'not found' | sed 's/^/#   /' >&2
        return 1
    fi
    return 0
}

# sm_syslog_start DIR: a datagram listener at DIR/log.sock that appends
# every message to DIR/syslog (it exits by itself after 600 s).
sm_syslog_start() {
    local dir=$1 i
    rm -f "$dir/log.sock"
    : >"$dir/syslog"
    python3 "$SM_LIB/syslog_sink.py" "$dir/log.sock" "$dir/syslog" 600 </dev/null >"$dir/syslog.err" 2>&1 &
    echo $! >"$dir/syslog.pid"
    for ((i = 0; i < 50; i++)); do
        [[ -S $dir/log.sock ]] && return 0
        sleep 0.1
    done
    sm_log "syslog listener did not start"
    return 1
}

# sm_write_config DIR SMTPPORT SINKPORT MILTER: DIR/sendmail.cf from a .mc.
sm_write_config() {
    local dir=$1 port=$2 sinkport=$3 milter=$4 cfroot=$SM_ROOT/usr/share/sendmail/cf
    printf '127.0.0.1\tmx.test.example mx localhost\n127.0.0.2\tsink.test.example\n' >"$dir/hosts"
    printf 'hosts files\naliases files\n' >"$dir/service.switch"
    : >"$dir/aliases"
    cat >"$dir/sendmail.mc" <<EOF
divert(-1)
# Private test instance written by tests/e2e/lib/sendmail.sh
divert(0)dnl
include(\`$cfroot/m4/cf.m4')dnl
VERSIONID(\`mxgate e2e')dnl
OSTYPE(\`linux')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confDONT_BLAME_SENDMAIL', \`GroupWritableDirPathSafe,TrustStickyBit,AssumeSafeChown')dnl
define(\`SMART_HOST', \`[127.0.0.2]')dnl
define(\`RELAY_MAILER_ARGS', \`TCP \$h $sinkport')dnl
define(\`ESMTP_MAILER_ARGS', \`TCP \$h $sinkport')dnl
define(\`SMTP_MAILER_ARGS', \`TCP \$h $sinkport')dnl
define(\`QUEUE_DIR', \`$dir/mqueue')dnl
define(\`confPID_FILE', \`$dir/sendmail.pid')dnl
define(\`STATUS_FILE', \`$dir/statistics')dnl
define(\`ALIAS_FILE', \`$dir/aliases')dnl
define(\`confHOSTS_FILE', \`$dir/hosts')dnl
define(\`confSERVICE_SWITCH_FILE', \`$dir/service.switch')dnl
define(\`confDELIVERY_MODE', \`$SM_DELIVERY_MODE')dnl
define(\`confDEF_USER_ID', \`nobody:nogroup')dnl
define(\`confRUN_AS_USER', \`root')dnl
define(\`confTO_IDENT', \`0s')dnl
define(\`confTO_CONNECT', \`10s')dnl
define(\`confTO_INITIAL', \`10s')dnl
define(\`confQUEUE_LA', \`100')dnl
define(\`confREFUSE_LA', \`200')dnl
define(\`confMAX_DAEMON_CHILDREN', \`40')dnl
define(\`confPRIVACY_FLAGS', \`authwarnings')dnl
define(\`confLOG_LEVEL', \`14')dnl
FEATURE(\`no_default_msa')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`promiscuous_relay')dnl
FEATURE(\`accept_unresolvable_domains')dnl
FEATURE(\`accept_unqualified_senders')dnl
DAEMON_OPTIONS(\`Port=$port, Addr=127.0.0.1, Name=MTA-test')dnl
INPUT_MAIL_FILTER(\`mxgate', \`S=$milter, F=T, T=S:10s;R:10s;E:1m')dnl
MAILER(\`smtp')dnl
EOF
    m4 "$dir/sendmail.mc" >"$dir/sendmail.cf" 2>"$dir/m4.err" || {
        sm_log "m4 failed:"
        sed 's/^/#   /' "$dir/m4.err" >&2
        return 1
    }
}

# sm_exec DIR ARGS...: run $SM_BIN -C DIR/sendmail.cf ARGS... in a private
# mount and UTS namespace: host name mx.test.example, DIR/hosts as
# /etc/hosts, and a private /dev whose /dev/log is DIR/log.sock.
sm_exec() {
    local dir=$1
    shift
    mkdir -p "$dir/ns/realdev"
    SM_DIR=$dir SM_BIN=$SM_BIN unshare -m -u /bin/bash -c '
        set -e
        mount --make-rprivate /
        mount --bind "$SM_DIR/hosts" /etc/hosts
        mount --rbind /dev "$SM_DIR/ns/realdev"
        mount -t tmpfs -o mode=0755 tmpfs /dev
        for n in null zero full random urandom tty; do
            [ -e "$SM_DIR/ns/realdev/$n" ] || continue
            : >"/dev/$n"
            mount --bind "$SM_DIR/ns/realdev/$n" "/dev/$n"
        done
        ln -s /proc/self/fd /dev/fd
        : >/dev/log
        mount --bind "$SM_DIR/log.sock" /dev/log
        hostname mx.test.example
        exec "$SM_BIN" -C "$SM_DIR/sendmail.cf" "$@"' sm "$@"
}

# sm_start DIR SMTPPORT SINKPORT MILTER: configure and start Sendmail in DIR
# on 127.0.0.1:SMTPPORT with INPUT_MAIL_FILTER(mxgate, S=MILTER), relaying
# everything to an smtp-sink on 127.0.0.2:SINKPORT.  Waits (bounded) for
# its greeting.  Non-zero, with the reason on stderr, on failure.
sm_start() {
    local dir=$1 port=$2 sinkport=$3 milter=$4
    if [[ $(id -u) != 0 ]]; then
        sm_log "sm_start needs root"
        return 1
    fi
    mkdir -p "$dir/mqueue" "$dir/sink" || return 1
    dir=$(cd "$dir" && pwd -P) || return 1
    chmod 0755 "$dir"
    chmod 0700 "$dir/mqueue"
    chown nobody "$dir/sink"
    sm_write_config "$dir" "$port" "$sinkport" "$milter" || return 1
    sm_syslog_start "$dir" || return 1

    smtp-sink -u nobody -d "$dir/sink/%M." "127.0.0.2:$sinkport" 100 \
        </dev/null >"$dir/sink.log" 2>&1 &
    echo $! >"$dir/sink.pid"
    SM_STARTED+=("$dir")

    # -bd forks the daemon and returns; the daemon stays in the namespace.
    if ! timeout 30 bash -c "$(declare -f sm_exec); SM_BIN='$SM_BIN'; sm_exec '$dir' -bd" \
        </dev/null >"$dir/sendmail.out" 2>&1; then
        sm_log "sendmail -bd failed:"
        sed 's/^/#   /' "$dir/sendmail.out" "$dir/syslog" >&2
        return 1
    fi
    if ! pf_wait_banner "$port" 30; then
        sm_log "sendmail gave no greeting; its log:"
        sed 's/^/#   /' "$dir/sendmail.out" "$dir/syslog" | tail -30 >&2
        return 1
    fi
    return 0
}

# sm_pid DIR: the daemon's pid (first line of its pid file).
sm_pid() {
    local pid
    [[ -r $1/sendmail.pid ]] || return 1
    read -r pid <"$1/sendmail.pid" || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    echo "$pid"
}

# sm_run_queue DIR: deliver the queue now (sendmail -q, bounded).
sm_run_queue() {
    local dir=$1
    timeout 60 bash -c "$(declare -f sm_exec); SM_BIN='$SM_BIN'; sm_exec '$dir' -q" \
        </dev/null >>"$dir/sendmail.out" 2>&1
}

# sm_queue_count DIR: messages in DIR/mqueue (qf files).
sm_queue_count() {
    find "$1/mqueue" -name 'qf*' -type f 2>/dev/null | wc -l
}

# sm_stop DIR: stop the daemon (and the children it forked for
# connections), the sink and the syslog listener; bounded.
sm_stop() {
    local dir=$1 pid p
    [[ -d $dir ]] || return 0
    if pid=$(sm_pid "$dir"); then
        # Children of the daemon first: each serves one connection.
        for p in $(pgrep -P "$pid" 2>/dev/null); do pf_kill_pid "$p" 2; done
        pf_kill_pid "$pid" 10
    fi
    for p in sink syslog; do
        [[ -r $dir/$p.pid ]] && pf_kill_pid "$(cat "$dir/$p.pid")" 5
        rm -f "$dir/$p.pid"
    done
    return 0
}

SM_STARTED=()

# sm_stop_all: sm_stop every instance sm_start started in this shell.
sm_stop_all() {
    local d
    for d in "${SM_STARTED[@]}"; do
        sm_stop "$d"
    done
    SM_STARTED=()
}
