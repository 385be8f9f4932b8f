# tests/e2e/lib/postfix.sh -- run a private Postfix instance for the e2e tests.
#
# Sourced by the test scripts (bash only).  Everything here is bounded in
# time and binds to 127.0.0.1 only.  A test script typically does:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib/postfix.sh"
#   pf_need_packages postfix swaks sasl2-bin libsasl2-modules || exit 99
#   trap pf_stop_all EXIT
#   port=$(pf_free_port); sink=$(pf_free_port)
#   pf_start "$tmp/a" "$port" "$sink" 'smtpd_milters = inet:127.0.0.1:8891' || exit 99
#   pf_swaks_replies --port "$port" --helo mx.example.net \
#       --from a@example.net --to b@example.org
#
# Instance layout (DIR): etc/ (main.cf, master.cf, sasl/smtpd.conf), queue/,
# data/, sasldb2, maillog, sink/ (one file per message smtp-sink got),
# sink.pid, sink.log, postfix.out (output of postfix check/start/stop).
#
# Knobs, read by pf_start (set them before calling it):
#   PF_SUBMISSION_PORT  if set, a second smtpd on that port with
#                       syslog_name=postfix/submission and
#                       milter_macro_daemon_name=submission, so a milter sees
#                       {daemon_name} = "submission" there.
#   PF_SUBMISSION_OPTS  extra "-o name=value ..." for that service (one
#                       master.cf continuation line, as written).
#   PF_SASL             "yes" (default): SMTP AUTH PLAIN/LOGIN from a sasldb
#                       in DIR, with user $PF_SASL_USER / $PF_SASL_PASSWORD.
#   PF_SASL_USER        default "user@test.example" (local part @ realm).
#   PF_SASL_PASSWORD    default "secret".
#   PF_MASTER_EXTRA     extra master.cf lines, appended verbatim.
#
# Addressing: clients connect from 127.0.0.1, and mynetworks is 127.0.0.2/32
# on purpose, so test clients are "foreign" and subject to every
# restriction; relaying to the test domains works via permit_auth_destination.
#
# The functions return non-zero on failure and say why on stderr; none of
# them exits the caller.

# Packages the Postfix side of the tests needs on a fresh Debian 12.
# shellcheck disable=SC2034 # used by the test scripts
PF_PACKAGES=(postfix swaks sasl2-bin libsasl2-modules)

: "${PF_SASL:=yes}"
: "${PF_SASL_USER:=user@test.example}"
: "${PF_SASL_PASSWORD:=secret}"

# Instance directories started by pf_start in this shell (for pf_stop_all).
PF_STARTED=()

# pf_log MSG...: a diagnostic on stderr (TAP ignores stderr).
pf_log() {
    printf '# pf: %s\n' "$*" >&2
}

# pf_install LOG SETUP PKG...: apt-get install whichever PKG is not
# installed, saying so through the function LOG.  The function SETUP runs
# first in the installing subshell, holding the apt lock: it keeps a
# package from configuring or starting the system's own service (an EXIT
# trap it sets runs when the install ends).  Runs apt-get update at most
# once per machine run (stamp file, and only if an install is needed);
# serialised with flock against parallel tests.
pf_install() {
    local log=$1 setup=$2 missing=() p st
    shift 2
    for p in "$@"; do
        st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
        [[ $st == *" installed" ]] || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    if [[ $(id -u) != 0 ]]; then
        "$log" "missing packages ${missing[*]} and not root: cannot install"
        return 1
    fi
    "$log" "installing ${missing[*]}"
    (
        export DEBIAN_FRONTEND=noninteractive
        flock -w 600 9 || { "$log" "apt lock timeout"; exit 1; }
        "$setup"
        local stamp=/tmp/.mxgate-e2e-apt-updated
        local opts=(-y -q -o DPkg::Lock::Timeout=300 --no-install-recommends)
        if [[ ! -e $stamp ]]; then
            apt-get -q update >&2 || { "$log" "apt-get update failed"; exit 1; }
            touch "$stamp"
        fi
        apt-get install "${opts[@]}" "${missing[@]}" >&2
    ) 9>/tmp/.mxgate-e2e-apt.lock
}

# Never let the postfix package configure (or start) the system's own
# instance: the tests run private ones.
pf_debconf() {
    printf '%s\n' 'postfix postfix/main_mailer_type select No configuration' \
        'postfix postfix/mailname string mx.test.example' |
        debconf-set-selections 2>/dev/null
}

# pf_need_packages PKG...: pf_install for Postfix and the tools around it.
pf_need_packages() {
    pf_install pf_log pf_debconf "$@"
}

# pf_port_listening PORT: true if something listens on TCP PORT (any
# address), read from /proc/net/tcp so no tool is needed.
pf_port_listening() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v h="$hex" 'NR > 1 { split($2, a, ":"); if (a[2] == h && $4 == "0A") f = 1 }
                     END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# pf_port_in_use PORT: true if any TCP socket (any state) has local PORT.
pf_port_in_use() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v h="$hex" 'NR > 1 { split($2, a, ":"); if (a[2] == h) f = 1 }
                     END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# pf_free_port: print a loopback TCP port nobody uses, below the ephemeral
# range (so no outgoing connection can take it meanwhile), chosen at random.
# Every port handed out is recorded in $TMPDIR/mxgate-e2e-ports/PID (PID of
# the test script's shell, the same in $(...)), and no recorded port of a
# live script is handed out again: so neither two calls of one script nor
# two tests run in parallel get the same port.  Records of scripts that are
# gone are pruned here; pf_stop_all removes the script's own.
pf_free_port() {
    local dir=${TMPDIR:-/tmp}/mxgate-e2e-ports
    mkdir -p "$dir" 2>/dev/null
    (
        flock -w 10 9 || pf_log "pf_free_port: lock timeout, going on"
        local lo port i f
        for f in "$dir"/[0-9]*; do
            [[ -e $f ]] || continue
            kill -0 "${f##*/}" 2>/dev/null || rm -f "$f"
        done
        read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
        ((lo > 20000)) || lo=32768
        for ((i = 0; i < 200; i++)); do
            port=$((10000 + (RANDOM * 32768 + RANDOM) % (lo - 10000)))
            grep -qsx "$port" "$dir"/[0-9]* && continue
            pf_port_in_use "$port" && continue
            echo "$port" >>"$dir/$$"
            echo "$port"
            exit 0
        done
        pf_log "no free port found"
        exit 1
    ) 9>>"$dir/.lock"
}

# pf_poll SECONDS INTERVAL COMMAND...: run COMMAND every INTERVAL seconds
# until it succeeds (true) or SECONDS have passed (false).
pf_poll() {
    local end=$((SECONDS + $1)) interval=$2
    shift 2
    while ((SECONDS < end)); do
        "$@" && return 0
        sleep "$interval"
    done
    return 1
}

# pf_greets PORT: true if 127.0.0.1:PORT answers with an SMTP 220 greeting
# (then it is told QUIT).
pf_greets() {
    local line
    line=$(timeout 3 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        IFS= read -r -t 2 line <&3 || exit 1
        printf "QUIT\r\n" >&3
        IFS= read -r -t 2 _ <&3
        printf "%s" "$line"' _ "$1" 2>/dev/null)
    [[ $line == 220* ]]
}

# pf_wait_banner PORT [SECONDS]: wait until PORT answers with an SMTP 220
# greeting.  Default 20 s.
pf_wait_banner() {
    pf_poll "${2:-20}" 0.2 pf_greets "$1" && return 0
    pf_log "port $1 gave no SMTP greeting within ${2:-20}s"
    return 1
}

# pf_wait_listen PORT [SECONDS]: wait until something listens on PORT.
pf_wait_listen() {
    pf_poll "${2:-20}" 0.1 pf_port_listening "$1" && return 0
    pf_log "nothing listens on port $1 after ${2:-20}s"
    return 1
}

# pf_kill_pid PID [SECONDS]: SIGTERM PID, wait up to SECONDS (default 5)
# for it to go, then SIGKILL.  Only ever given pids this shell started.
pf_kill_pid() {
    local pid=$1 limit=${2:-5} i
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < limit * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        pf_log "pid $pid ignored SIGTERM, killing"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    return 0
}

# pf_postconf DIR ARGS...: postconf on the instance in DIR.
pf_postconf() {
    local dir=$1
    shift
    postconf -c "$dir/etc" "$@"
}

# pf_master_pid DIR: print the master pid of the instance, if it has one.
pf_master_pid() {
    local f=$1/queue/pid/master.pid pid
    [[ -r $f ]] || return 1
    read -r pid <"$f" || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    echo "$pid"
}

# pf_sasl_setup DIR: the Cyrus SASL side of SMTP AUTH for the instance:
# DIR/etc/sasl/smtpd.conf (auxprop/sasldb, PLAIN LOGIN) and DIR/sasldb2
# holding $PF_SASL_USER with $PF_SASL_PASSWORD, readable by the postfix user.
# (Debian's Postfix reads smtpd.conf from $config_directory/sasl whatever
# cyrus_sasl_config_path says, so that is where it goes; the parameter is
# set to the same directory.)
pf_sasl_setup() {
    local dir=$1
    mkdir -p "$dir/etc/sasl" || return 1
    cat >"$dir/etc/sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $dir/sasldb2
mech_list: PLAIN LOGIN
EOF
    chmod 0755 "$dir/etc/sasl"
    chmod 0644 "$dir/etc/sasl/smtpd.conf"
    pf_sasl_add_user "$dir" "$PF_SASL_USER" "$PF_SASL_PASSWORD"
}

# pf_sasl_add_user DIR LOCAL@REALM PASSWORD: add (or replace) a user in the
# instance's sasldb; the client then logs in as LOCAL@REALM.
pf_sasl_add_user() {
    local dir=$1 user=$2 pass=$3 local_part realm
    local_part=${user%@*}
    realm=${user#*@}
    [[ $realm == "$user" ]] && realm=test.example
    printf '%s' "$pass" |
        saslpasswd2 -p -f "$dir/sasldb2" -c -u "$realm" "$local_part" || {
        pf_log "saslpasswd2 failed for $user"
        return 1
    }
    chown root:postfix "$dir/sasldb2" && chmod 0640 "$dir/sasldb2"
}

# pf_write_config DIR SMTPPORT SINKPORT: write DIR/etc/main.cf and master.cf.
pf_write_config() {
    local dir=$1 port=$2 sinkport=$3
    cat >"$dir/etc/main.cf" <<EOF
# Private test instance written by tests/e2e/lib/postfix.sh
compatibility_level = 3.6
myhostname = mx.test.example
mydomain = test.example
myorigin = \$myhostname
queue_directory = $dir/queue
data_directory = $dir/data
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains = example.org example.com example.net test.example
relayhost = [127.0.0.1]:$sinkport
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
# Test clients come from 127.0.0.1 and must NOT be in mynetworks.
mynetworks = 127.0.0.2/32
smtpd_relay_restrictions = permit_sasl_authenticated, permit_auth_destination, reject
smtpd_recipient_restrictions =
smtpd_helo_required = no
smtpd_delay_reject = yes
smtpd_banner = \$myhostname ESMTP
smtpd_tls_security_level = none
smtp_tls_security_level = none
milter_protocol = 6
milter_default_action = tempfail
in_flow_delay = 0
biff = no
EOF
    if [[ $PF_SASL == yes ]]; then
        cat >>"$dir/etc/main.cf" <<EOF
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $dir/etc/sasl
smtpd_sasl_security_options = noanonymous
smtpd_tls_auth_only = no
smtpd_sasl_local_domain =
EOF
    fi

    {
        echo "# service type private unpriv chroot wakeup maxproc command"
        echo "127.0.0.1:$port inet n - n - - smtpd"
        if [[ -n ${PF_SUBMISSION_PORT:-} ]]; then
            echo "127.0.0.1:$PF_SUBMISSION_PORT inet n - n - - smtpd"
            echo "  -o syslog_name=postfix/submission"
            echo "  -o milter_macro_daemon_name=submission"
            if [[ -n ${PF_SUBMISSION_OPTS:-} ]]; then
                echo "  $PF_SUBMISSION_OPTS"
            fi
        fi
        cat <<'EOF'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
        if [[ -n ${PF_MASTER_EXTRA:-} ]]; then
            printf '%s\n' "$PF_MASTER_EXTRA"
        fi
    } >"$dir/etc/master.cf"
}

# pf_start DIR SMTPPORT SINKPORT [MAIN.CF LINE...]: create and start a
# private Postfix in DIR listening on 127.0.0.1:SMTPPORT (and
# $PF_SUBMISSION_PORT if set), relaying the test domains to an smtp-sink on
# 127.0.0.1:SINKPORT.  Each extra "name = value" line is applied with
# postconf -e (so it overrides a default above).  Waits (bounded) until the
# port(s) greet.  Returns non-zero, with the reason on stderr, on failure.
pf_start() {
    local dir=$1 port=$2 sinkport=$3 line
    shift 3
    if [[ $(id -u) != 0 ]]; then
        pf_log "pf_start needs root"
        return 1
    fi
    mkdir -p "$dir"/{etc,queue,data,sink} || return 1
    dir=$(cd "$dir" && pwd -P) || return 1
    # The postfix user must reach its queue, data, sasl and log paths, and
    # nobody (smtp-sink) must write into sink/.
    chmod 0755 "$dir" "$dir/etc"
    chown postfix "$dir/data"
    chown nobody "$dir/sink"
    : >"$dir/maillog"

    pf_write_config "$dir" "$port" "$sinkport" || return 1
    if [[ $PF_SASL == yes ]]; then
        pf_sasl_setup "$dir" || return 1
    fi
    for line in "$@"; do
        postconf -c "$dir/etc" -e "$line" || {
            pf_log "bad main.cf line: $line"
            return 1
        }
    done

    # The sink first, so the instance can relay as soon as it runs.
    smtp-sink -u nobody -d "$dir/sink/%M." "127.0.0.1:$sinkport" 100 \
        </dev/null >"$dir/sink.log" 2>&1 &
    echo $! >"$dir/sink.pid"
    PF_STARTED+=("$dir")

    if ! postfix -c "$dir/etc" check </dev/null >>"$dir/postfix.out" 2>&1; then
        pf_log "postfix check failed for $dir:"
        sed 's/^/#   /' "$dir/postfix.out" >&2
        return 1
    fi
    if ! timeout 30 postfix -c "$dir/etc" start </dev/null >>"$dir/postfix.out" 2>&1; then
        pf_log "postfix start failed for $dir:"
        sed 's/^/#   /' "$dir/postfix.out" "$dir/maillog" >&2
        return 1
    fi
    if ! pf_wait_listen "$sinkport" 10 || ! kill -0 "$(cat "$dir/sink.pid")" 2>/dev/null; then
        pf_log "smtp-sink did not start on $sinkport:"
        sed 's/^/#   /' "$dir/sink.log" >&2
        return 1
    fi
    if ! pf_wait_banner "$port" 20 ||
        { [[ -n ${PF_SUBMISSION_PORT:-} ]] && ! pf_wait_banner "$PF_SUBMISSION_PORT" 20; }; then
        sed 's/^/#   /' "$dir/maillog" >&2
        return 1
    fi
    return 0
}

# pf_stop DIR [purge]: stop the instance and its smtp-sink; wait (bounded,
# ~10 s) for the master to go, so the ports can be reused.  With "purge",
# remove DIR afterwards.
pf_stop() {
    local dir=$1 purge=${2:-} pid i
    [[ -d $dir ]] || return 0
    pid=$(pf_master_pid "$dir")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        timeout 15 postfix -c "$dir/etc" stop </dev/null >>"$dir/postfix.out" 2>&1
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            pf_log "postfix master $pid in $dir did not stop; aborting it"
            timeout 10 postfix -c "$dir/etc" abort </dev/null >>"$dir/postfix.out" 2>&1
            sleep 1
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        fi
    fi
    if [[ -r $dir/sink.pid ]]; then
        pf_kill_pid "$(cat "$dir/sink.pid")" 5
        rm -f "$dir/sink.pid"
    fi
    if [[ $purge == purge ]]; then
        rm -rf "$dir"
    fi
    return 0
}

# pf_stop_all: pf_stop every instance pf_start started in this shell, all
# at once (for an EXIT trap).
# pf_start_milter DIR MILTERPORT: the Postfix part of a milter test, no SASL:
# installs what is missing, starts an instance in DIR with smtpd_milters on
# 127.0.0.1:MILTERPORT, sets $port and $sink, and reports "Postfix
# available" / "private Postfix starts" as TAP failures when it cannot.
# Returns 1 then, so the caller ends its TAP output.
pf_start_milter() {
    local dir=$1 mport=$2
    if ! pf_need_packages "${PF_PACKAGES[@]}" >&2; then
        tap_diag "Postfix packages unavailable: Postfix part skipped"
        tap_result 1 "Postfix available"
        return 1
    fi
    PF_SASL=no
    port=$(pf_free_port) && sink=$(pf_free_port) || { echo "Bail out! no free port"; exit 99; }
    if ! pf_start "$dir" "$port" "$sink" "smtpd_milters = inet:127.0.0.1:$mport" \
        "milter_default_action = tempfail" >&2; then
        tap_result 1 "private Postfix starts"
        return 1
    fi
    tap_result 0 "private Postfix starts"
}

pf_stop_all() {
    local d pids=()
    for d in "${PF_STARTED[@]}"; do
        pf_stop "$d" &
        pids+=($!)
    done
    ((${#pids[@]} == 0)) || wait "${pids[@]}"
    PF_STARTED=()
    rm -f "${TMPDIR:-/tmp}/mxgate-e2e-ports/$$"
}

# pf_sink_count DIR: number of messages the instance's smtp-sink received.
pf_sink_count() {
    find "$1/sink" -type f 2>/dev/null | wc -l
}

# pf_decode ESCAPED [VAR]: ESCAPED with its \xNN (and other printf %b)
# escapes decoded, trailing newlines kept, printed or stored in VAR.  Fails
# when the result holds a NUL byte, which no command-line argument (nor
# bash variable) can carry.  No fork: bash's printf -v stops at a NUL, so
# the sentinel "." is then missing.
pf_decode() {
    local _pf_s
    printf -v _pf_s '%b.' "$1"
    [[ $_pf_s == *. ]] || return 1
    if (($# > 1)); then
        printf -v "$2" '%s' "${_pf_s%.}"
    else
        printf '%s' "${_pf_s%.}"
    fi
}

# pf_swaks_replies [--port P] [--helo NAME] [--from A] [--to A]
#                  [--auth USER PASS] [--data] [--swaks-opt OPT]...:
# run one swaks session against 127.0.0.1:P and print the server's reply
# lines ("<-", "<~", "<**" lines with their prefix stripped), one a line,
# plus swaks's own "*** " error lines as they are.  Without --data the
# session ends after RCPT (--quit-after RCPT).  Bounded: --timeout 15 per
# read and 60 s overall.  The full swaks output is in $PF_SWAKS_LOG if set.
# swaks cannot send a NUL, an empty HELO argument, or one that starts with
# "-" (its option parser takes it for an option): see pf_raw_replies.
pf_swaks_replies() {
    local port=25 helo=mx.example.net from=sender@example.net to=rcpt@example.org
    local data=no args=() extra=()
    while (($#)); do
        case $1 in
            --port) port=$2; shift 2 ;;
            --helo) helo=$2; shift 2 ;;
            --from) from=$2; shift 2 ;;
            --to) to=$2; shift 2 ;;
            --auth) extra+=(--auth PLAIN --auth-user "$2" --auth-password "$3"); shift 3 ;;
            --data) data=yes; shift ;;
            --swaks-opt) extra+=("$2"); shift 2 ;;
            *) pf_log "pf_swaks_replies: unknown option $1"; return 2 ;;
        esac
    done
    args=(--server 127.0.0.1 --port "$port" --timeout 15 "--helo=$helo"
        --from "$from" --to "$to" --hide-informational)
    [[ $data == no ]] && args+=(--quit-after RCPT)
    local out rc
    out=$(timeout 60 swaks "${args[@]}" "${extra[@]}" </dev/null 2>&1)
    rc=$?
    [[ -n ${PF_SWAKS_LOG:-} ]] && printf '%s\n' "$out" >"$PF_SWAKS_LOG"
    printf '%s\n' "$out" | sed -n -e 's/^<[-~]  //p' -e 's/^<[-~]\*\* //p' \
        -e 's/^<\*\* //p' -e '/^\*\*\* /p'
    ((rc == 124)) && echo "*** swaks timed out"
    return 0
}

# swaks_reply_lines: the name the brief used for pf_swaks_replies.
swaks_reply_lines() {
    pf_swaks_replies "$@"
}

# pf_raw_replies [--port P] [--helo-escaped ESC] [--from A] [--to A]:
# the session pf_swaks_replies has (greeting, EHLO -- HELO if EHLO gets a
# 5xx, as swaks does --, MAIL, RCPT, QUIT), spoken over bash's /dev/tcp so
# that the HELO argument can hold any byte: ESC is written with printf %b,
# so a \x00 reaches the server.  Prints the reply lines; bounded (15 s a
# reply, 60 s in all).
pf_raw_replies() {
    local port=25 esc=mx.example.net from=sender@example.net to=rcpt@example.org
    while (($#)); do
        case $1 in
            --port) port=$2; shift 2 ;;
            --helo-escaped) esc=$2; shift 2 ;;
            --from) from=$2; shift 2 ;;
            --to) to=$2; shift 2 ;;
            *) pf_log "pf_raw_replies: unknown option $1"; return 2 ;;
        esac
    done
    timeout 60 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || { echo "*** connect failed"; exit 0; }
        reply() {
            local l
            while IFS= read -r -t 15 l <&3; do
                l=${l%$'"'"'\r'"'"'}
                printf "%s\n" "$l"
                [[ $l =~ ^[0-9]{3}- ]] || { code=${l:0:3}; return 0; }
            done
            echo "*** Remote host closed connection unexpectedly."
            exit 0
        }
        reply
        printf "EHLO %b\r\n" "$2" >&3; reply
        if [[ $code == 5* ]]; then printf "HELO %b\r\n" "$2" >&3; reply; fi
        printf "MAIL FROM:<%s>\r\n" "$3" >&3; reply
        printf "RCPT TO:<%s>\r\n" "$4" >&3; reply
        printf "QUIT\r\n" >&3; reply
    ' _ "$port" "$esc" "$from" "$to" 2>/dev/null
    (($? == 124)) && echo "*** timed out"
    return 0
}

# pf_smtp_mail PORT MAILARG RCPT: a raw SMTP session (swaks sends no SIZE=)
# that sends "MAIL FROM:MAILARG" (e.g. "<a@example.net> SIZE=2000") and,
# when that is accepted, "RCPT TO:<RCPT>"; prints the last line of each of
# the two replies.  Bounded: 30 s in all.
pf_smtp_mail() {
    timeout 30 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        say() { printf "%s\r\n" "$1" >&3; }
        get() {  # the last line of a (multi-line) reply
            local line
            while IFS= read -r -t 15 line <&3; do
                line=${line%$'\''\r'\''}
                [[ $line == [0-9][0-9][0-9]-* ]] || { printf "%s\n" "$line"; return 0; }
            done
            return 1
        }
        get >/dev/null || exit 1
        say "EHLO client.example.net"; get >/dev/null
        say "MAIL FROM:$2"; reply=$(get); printf "%s\n" "$reply"
        [[ $reply == 250* ]] && { say "RCPT TO:<$3>"; get; }
        say "QUIT"; get >/dev/null
    ' _ "$@"
}
