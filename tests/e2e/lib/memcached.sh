# tests/e2e/lib/memcached.sh -- real memcached servers for the e2e tests.
#
# Sourced by test scripts (bash).  Servers listen on 127.0.0.1 only, on
# ports the caller chose (pf_free_port from lib/postfix.sh gives free ones),
# and every wait is bounded.  Typical use:
#
#   . "$here/lib/memcached.sh"
#   mc_need_package || exit 99
#   trap 'mc_stop_all' EXIT
#   mc_start "$tmp" one "$port1" || exit 99
#   mc_cmd "$port1" "stats" | grep curr_items
#   mc_keys "$port1"            # every key stored, one a line (decoded)
#   mc_stop "$tmp" one
#
# State: DIR/NAME.pid and DIR/NAME.log for each server started.  The
# functions return non-zero on failure and say why on stderr ("# mc: ...",
# which TAP ignores); none of them exits the caller.

MC_STARTED=()

# Debian's own interpreter starts in a tenth of the time of a shim in PATH.
MC_PYTHON=python3
[[ -x /usr/bin/python3 ]] && MC_PYTHON=/usr/bin/python3

mc_log() {
    printf '# mc: %s\n' "$*" >&2
}

# mc_need_package: install Debian's memcached if it is missing (apt-get
# update at most once per machine run, serialised with the other tests).
mc_need_package() {
    command -v memcached >/dev/null 2>&1 && return 0
    if [[ $(id -u) != 0 ]]; then
        mc_log "memcached is not installed and we are not root"
        return 1
    fi
    (
        export DEBIAN_FRONTEND=noninteractive
        flock -w 600 9 || exit 1
        stamp=/tmp/.mxgate-e2e-apt-updated
        if [[ ! -e $stamp ]]; then
            apt-get -q update >&2 || exit 1
            touch "$stamp"
        fi
        apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends memcached >&2
    ) 9>/tmp/.mxgate-e2e-apt.lock
    command -v memcached >/dev/null 2>&1
}

# mc_listening PORT: true if something listens on 127.0.0.1:PORT.
mc_listening() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v h="$hex" 'NR > 1 { split($2, a, ":"); if (a[2] == h && $4 == "0A") f = 1 }
                     END { exit !f }' /proc/net/tcp 2>/dev/null
}

# mc_start DIR NAME PORT [EXTRA memcached OPTIONS...]: start a memcached on
# 127.0.0.1:PORT (64 MiB, no UDP) and wait (at most 10 s) until it answers.
mc_start() {
    local dir=$1 name=$2 port=$3 i
    shift 3
    local user=()
    [[ $(id -u) == 0 ]] && user=(-u nobody)
    memcached "${user[@]}" -l 127.0.0.1 -p "$port" -U 0 -m 64 -c 1024 -t 2 "$@" \
        </dev/null >"$dir/$name.log" 2>&1 &
    echo $! >"$dir/$name.pid"
    MC_STARTED+=("$dir/$name")
    for ((i = 0; i < 100; i++)); do
        if mc_listening "$port" && [[ $(mc_cmd "$port" version) == VERSION* ]]; then
            return 0
        fi
        kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null || break
        sleep 0.1
    done
    mc_log "memcached $name did not start on port $port:"
    sed 's/^/#   /' "$dir/$name.log" >&2
    return 1
}

# mc_pid DIR NAME: the pid of a server mc_start started.
mc_pid() {
    local pid
    read -r pid 2>/dev/null <"$1/$2.pid" || return 1
    [[ $pid =~ ^[0-9]+$ ]] && echo "$pid"
}

# mc_stop DIR NAME: stop the server (SIGCONT first, in case a test stopped
# it; SIGKILL after 5 s) and wait for it.
mc_stop() {
    local pid i
    pid=$(mc_pid "$1" "$2") || return 0
    kill -CONT "$pid" 2>/dev/null
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rm -f "$1/$2.pid"
    return 0
}

# mc_stop_all: mc_stop every server this shell started (for an EXIT trap).
mc_stop_all() {
    local s
    for s in "${MC_STARTED[@]}"; do
        mc_stop "$(dirname "$s")" "$(basename "$s")"
    done
    MC_STARTED=()
}

# mc_cmd PORT COMMAND: send one text-protocol command and print the reply
# lines (CR removed) up to and including its last line.  At most 5 s.
mc_cmd() {
    timeout 5 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "%s\r\n" "$2" >&3
        numeric=no
        case $2 in incr\ * | decr\ *) numeric=yes ;; esac
        while IFS= read -r -t 4 line <&3; do
            line=${line%$'"'"'\r'"'"'}
            printf "%s\n" "$line"
            case $line in
            END | ERROR | STORED | NOT_STORED | NOT_FOUND | DELETED | OK | EXISTS | VERSION* | \
                CLIENT_ERROR* | SERVER_ERROR*) break ;;
            esac
            [[ $numeric == yes && $line =~ ^[0-9]+$ ]] && break
        done' _ "$1" "$2" 2>/dev/null
}

# mc_get PORT KEY: print the value of KEY ("" when absent).
mc_get() {
    mc_cmd "$1" "get $2" | awk 'NR == 2 && !/^END$/ { print; exit }'
}

# mc_stat PORT NAME: print one "stats" value.
mc_stat() {
    mc_cmd "$1" stats | awk -v n="$2" '$1 == "STAT" && $2 == n { print $3; exit }'
}

# mc_keys PORT: every key the server holds, URL-decoded, one a line
# (memcached's "lru_crawler metadump all").
mc_keys() {
    mc_cmd "$1" "lru_crawler metadump all" |
        sed -n 's/^key=\([^ ]*\) .*/\1/p' |
        "$MC_PYTHON" -c 'import sys, urllib.parse
for line in sys.stdin:
    sys.stdout.write(urllib.parse.unquote(line.rstrip("\n")) + "\n")'
}

# mc_keys_raw PORT: the metadump's key= fields exactly as memcached printed them.
mc_keys_raw() {
    mc_cmd "$1" "lru_crawler metadump all" | sed -n 's/^key=\([^ ]*\) .*/\1/p'
}
