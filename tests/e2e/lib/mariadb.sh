# tests/e2e/lib/mariadb.sh -- run a private MariaDB server for the e2e tests.
#
# Sourced by the test scripts (bash only), after postfix.sh (its
# pf_install installs the packages).  The server is Debian's
# mariadb-server, started directly (no mysqld_safe, no system service) on a
# data directory that mariadb-install-db creates inside DIR, listening on
# 127.0.0.1:PORT and on DIR/mysqld.sock.  It is stopped by its pid.  Every
# wait is bounded.  A test script typically does:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"     # postfix.sh among others
#   . "$here/lib/mariadb.sh"
#   mdb_need_packages || exit 99
#   trap mdb_stop_all EXIT
#   port=$(mdb_free_port)
#   mdb_init "$tmp/db" && mdb_start "$tmp/db" "$port" || exit 99
#   mdb_sql "$tmp/db" <"$top/sql/schema.sql"
#
# Several servers run side by side, each on its own DIR and PORT (as for a
# primary and a replica: tests/e2e/quota_mysql_failover.sh).
#
# Instance layout (DIR): data/ (the datadir), mysqld.sock, mysqld.pid (the
# server's pid, written by this file), port, error.log, install.log.
#
# The root account authenticates by unix_socket (the tests run as root), so
# mdb_sql needs no password and nothing else can log in as root.
#
# The functions return non-zero on failure and say why on stderr; none of
# them exits the caller.

MDB_PACKAGES=(mariadb-server mariadb-client)

# Small server: a test needs kilobytes, not the 128 MiB pool and 96 MiB redo
# log of the defaults (which also make start-up slow on a small machine).
MDB_SERVER_OPTS=(
    --innodb-buffer-pool-size=16M
    --innodb-log-file-size=4M
    --performance-schema=0
    --skip-log-bin
    --skip-name-resolve
    --character-set-server=utf8mb4
    --collation-server=utf8mb4_general_ci
    --max-connections=200
)

# Instance directories started in this shell (for mdb_stop_all).
MDB_STARTED=()

# mdb_log MSG...: a diagnostic on stderr (TAP ignores stderr).
mdb_log() {
    printf '# mariadb: %s\n' "$*" >&2
}

# Never let the package start the system's own server: a policy-rc.d that
# refuses every start, for as long as the install runs (pf_install's SETUP).
mdb_no_service_start() {
    local policy=/usr/sbin/policy-rc.d
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
}

# mdb_need_packages: install mariadb-server and mariadb-client if missing
# (pf_install: apt-get update at most once per machine run, serialised
# with flock).
mdb_need_packages() {
    pf_install mdb_log mdb_no_service_start "${MDB_PACKAGES[@]}"
}

# mdb_preflight WHAT: what a MariaDB test script needs before it starts: the
# daemon, root (else a TAP skip and exit 0; WHAT is what the script runs),
# the MariaDB packages and python3 (else bail, exit 99: e2e.sh's bail).
mdb_preflight() {
    [ -x "$MXGATE" ] || bail "no daemon at $MXGATE"
    [ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root (runs $1)"; exit 0; }
    mdb_need_packages >&2 || bail "mariadb-server missing"
    command -v python3 >/dev/null || pf_need_packages python3 >&2 ||
        bail "python3 missing"
}

# mdb_port_in_use PORT: true if something listens on 127.0.0.1:PORT.
mdb_port_in_use() {
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# mdb_free_port: print a port nobody listens on (and that this shell has not
# handed out before), below the kernel's ephemeral range.
mdb_free_port() {
    local lo hi port i given=${TMPDIR:-/tmp}/.mxgate-e2e-ports.$$
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
    ((lo > 20000)) || lo=32768
    for ((i = 0; i < 200; i++)); do
        port=$((10000 + (RANDOM * 32768 + RANDOM) % (lo - 10000)))
        [[ -e $given ]] && grep -qx "$port" "$given" && continue
        mdb_port_in_use "$port" && continue
        echo "$port" >>"$given"
        echo "$port"
        return 0
    done
    mdb_log "no free port found"
    return 1
}

# mdb_server: the server binary.
mdb_server() {
    local b
    for b in /usr/sbin/mariadbd /usr/sbin/mysqld; do
        [[ -x $b ]] && { echo "$b"; return 0; }
    done
    command -v mariadbd || command -v mysqld
}

# mdb_init DIR: create DIR and an empty datadir in DIR/data (system tables
# only).  Each server has its own tmpdir, DIR/tmp: a server starting up
# removes the temporary tables it finds in its tmpdir, so two of them
# sharing /tmp (two installs at once) could fail each other.
mdb_init() {
    local dir=$1
    mkdir -p "$dir/tmp" || return 1
    chmod 755 "$dir"
    if ! timeout 120 mariadb-install-db --no-defaults --datadir="$dir/data" --user=root \
        --auth-root-authentication-method=socket --skip-test-db --tmpdir="$dir/tmp" \
        "${MDB_SERVER_OPTS[@]}" >"$dir/install.log" 2>&1; then
        mdb_log "mariadb-install-db failed:"
        { grep -iE 'error|fail|denied|cannot|abort' "$dir/install.log" | head -15
          tail -5 "$dir/install.log"; } | sed 's/^/#   /' >&2
        return 1
    fi
}

# mdb_alive DIR: true if the server of DIR answers on its socket.
mdb_alive() {
    timeout 5 mariadb-admin --no-defaults --socket="$1/mysqld.sock" -uroot \
        --connect-timeout=2 ping >/dev/null 2>&1
}

# mdb_start DIR PORT [SECONDS]: start the server of DIR on 127.0.0.1:PORT and
# wait (default 60 s) until it answers.  Also used to restart a stopped or
# killed server on the same port.
mdb_start() {
    local dir=$1 port=$2 limit=${3:-60} pid end server
    server=$(mdb_server) || { mdb_log "no mariadbd"; return 1; }
    rm -f "$dir/mysqld.sock" "$dir/mysqld.sock.lock"
    echo "$port" >"$dir/port"
    # setsid: a SIGINT to the test's process group must not reach the server
    # behind the test's back; the test stops it by pid.
    setsid "$server" --no-defaults --user=root --datadir="$dir/data" \
        --socket="$dir/mysqld.sock" --port="$port" --bind-address=127.0.0.1 --tmpdir="$dir/tmp" \
        --pid-file="$dir/data/mariadbd.pid" --log-error="$dir/error.log" \
        "${MDB_SERVER_OPTS[@]}" </dev/null >/dev/null 2>&1 &
    pid=$!
    # Not a job of this shell: a SIGKILL in mdb_kill is not reported as one.
    disown "$pid" 2>/dev/null
    echo "$pid" >"$dir/mysqld.pid"
    [[ " ${MDB_STARTED[*]} " == *" $dir "* ]] || MDB_STARTED+=("$dir")
    end=$((SECONDS + limit))
    while ((SECONDS < end)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            mdb_log "server exited during start-up:"
            tail -20 "$dir/error.log" | sed 's/^/#   /' >&2
            return 1
        fi
        mdb_alive "$dir" && mdb_port_in_use "$port" && return 0
        sleep 0.2
    done
    mdb_log "server did not answer within ${limit}s"
    tail -20 "$dir/error.log" | sed 's/^/#   /' >&2
    return 1
}

# mdb_pid DIR: the server's pid (empty if none recorded).
mdb_pid() {
    cat "$1/mysqld.pid" 2>/dev/null
}

# mdb_wait_gone PID SECONDS: wait until PID has exited.
mdb_wait_gone() {
    local pid=$1 limit=$2 i
    for ((i = 0; i < limit * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# mdb_stop DIR: SIGTERM (clean shutdown), then SIGKILL after 30 s.
mdb_stop() {
    local dir=$1 pid
    pid=$(mdb_pid "$dir")
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        if ! mdb_wait_gone "$pid" 30; then
            mdb_log "server $pid ignored SIGTERM, killing"
            kill -KILL "$pid" 2>/dev/null
            mdb_wait_gone "$pid" 10
        fi
    fi
    rm -f "$dir/mysqld.pid"
    return 0
}

# mdb_kill DIR: SIGKILL, as a crash would (the test of a server that dies).
mdb_kill() {
    local dir=$1 pid
    pid=$(mdb_pid "$dir")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -KILL "$pid" 2>/dev/null
    mdb_wait_gone "$pid" 10
    rm -f "$dir/mysqld.pid"
    return 0
}

# mdb_freeze DIR / mdb_thaw DIR: SIGSTOP / SIGCONT (a server that hangs).
mdb_freeze() {
    kill -STOP "$(mdb_pid "$1")" 2>/dev/null
}
mdb_thaw() {
    kill -CONT "$(mdb_pid "$1")" 2>/dev/null
}

# mdb_stop_all: stop every server this shell started (for an EXIT trap).
mdb_stop_all() {
    local d
    for d in "${MDB_STARTED[@]}"; do
        mdb_thaw "$d"
        mdb_stop "$d"
    done
}

# mdb_sql DIR [CLIENT-ARGS...]: run SQL from stdin (or -e '...') as root over
# the socket, in batch mode (tab-separated, no headers); bounded to 60 s.
mdb_sql() {
    local dir=$1
    shift
    timeout 60 mariadb --no-defaults --socket="$dir/mysqld.sock" -uroot \
        --batch --skip-column-names --default-character-set=utf8mb4 "$@"
}

# mdb_postfix DIR PASSWORD LOG [SQL-FILE]: the database "postfix" from
# sql/schema.sql and sample-data.sql, mxgate's user from sql/grant.sql with
# PASSWORD, then SQL-FILE's statements (more rows); output in LOG.
mdb_postfix() {
    local top=${abs_top_srcdir:?}
    {
        echo "CREATE DATABASE postfix;"
        echo "USE postfix;"
        cat "$top/sql/schema.sql" "$top/sql/sample-data.sql"
        sed "s/'change-me'/'$2'/" "$top/sql/grant.sql"
        [[ -z ${4:-} ]] || cat "$4"
    } | mdb_sql "$1" >"$3" 2>&1
}

# mdb_mysql_group PORT|SERVERS PASSWORD TIMEOUT_MS: mxgate's mysql group for
# the server on 127.0.0.1:PORT loaded by mdb_postfix (or, when the first
# argument is not a number, for the list SERVERS, given as its quoted
# entries: '"127.0.0.1:P1", "127.0.0.1:P2"'), with queries that return the
# stored key as their last column (sql/README.md).
mdb_mysql_group() {
    local where="host = \"127.0.0.1\"; port = $1;"
    [[ $1 =~ ^[0-9]+$ ]] || where="servers = [ $1 ];"
    cat <<EOF
mysql: {
  $where user = "mxgate"; password = "$2";
  database = "postfix"; timeout_ms = $3;
  quota_query = "SELECT quota, maildir, username FROM mailbox WHERE username = ? AND active = 1";
  alias_query = "SELECT goto, address FROM alias WHERE address = ? AND active = 1";
  alias_domain_query = "SELECT target_domain, alias_domain FROM alias_domain WHERE alias_domain = ? AND active = 1";
};
EOF
}

# mdb_status DIR NAME: the value of a global status variable (e.g. Com_stmt_execute).
mdb_status() {
    mdb_sql "$1" -e "SHOW GLOBAL STATUS LIKE '$2'" | awk '{print $2}'
}
