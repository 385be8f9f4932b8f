# tests/bench/lib.sh -- helpers of the benchmark (sourced by run.sh, bash).
#
# CPU accounting from /proc, the back ends of the "all checks"
# configuration (memcached and MariaDB, private instances on 127.0.0.1),
# mxgate configuration files, and medians.  Every wait is bounded in time;
# every process started here is stopped by its pid (by run.sh's trap).

BENCH_HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)

# bench_log MSG...: progress on stderr.
bench_log() {
    printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2
}

# bench_proc_ticks PID: utime+stime of PID (all its threads, living and
# dead), in clock ticks; 0 when it is gone.
bench_proc_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    # Fields after the command name, which may hold spaces: state is $1 there.
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}

# bench_tree_ticks PID: CPU ticks of PID, of its reaped children (cutime,
# cstime) and of every living descendant: a Postfix master and all the
# daemons it forked, including those that exited meanwhile.
bench_tree_ticks() {
    local root=$1
    # cat skips the files of processes that exit meanwhile; awk would stop.
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$root" '
        {
            line = $0
            pid = $1
            sub(/^[^(]*\(.*\) /, "", line)
            split(line, f, " ")
            ppid[pid] = f[2]
            self[pid] = f[12] + f[13]
            kids[pid] = f[14] + f[15]
        }
        END {
            total = self[root] + kids[root]
            for (p in ppid) {
                q = ppid[p]
                for (d = 0; d < 8 && q != "" && q != 0; d++) {
                    if (q == root) { total += self[p]; break }
                    q = ppid[q]
                }
            }
            print total + 0
        }'
}

# bench_sys_busy: busy clock ticks of the whole machine, all CPUs (user,
# nice, system, irq, softirq, steal of /proc/stat's first line): what every
# process, ours or not, used.
bench_sys_busy() {
    local user nice sys irq softirq steal rest
    read -r _ user nice sys _ _ irq softirq steal rest </proc/stat
    echo $((user + nice + sys + irq + softirq + steal))
}

# bench_stat_read PID: sets STAT_COMM (command name) and STAT_TICKS
# (utime+stime+cutime+cstime: the process, all its threads, and the
# children it reaped) from /proc/PID/stat; false when PID is gone.  No fork.
bench_stat_read() {
    local l rest f
    { IFS= read -r l <"/proc/$1/stat"; } 2>/dev/null || return 1
    [[ -n $l ]] || return 1
    STAT_COMM=${l#*(}
    STAT_COMM=${STAT_COMM%) *}
    rest=${l##*) }
    read -r -a f <<<"$rest"
    STAT_TICKS=$((f[11] + f[12] + f[13] + f[14]))
    STAT_SELF=$((f[11] + f[12]))
}

# bench_pf_sampler MASTER OUT STOPFILE READYFILE: CPU of a Postfix master's
# tree by command name, over the interval from its first sample (then it
# creates READYFILE) to the moment STOPFILE appears (it takes one last
# sample then, at most 0.2 s later; and stops by itself after 20 minutes).
# It samples every 0.2 s, with shell built-ins only (no fork per process),
# every child of MASTER (/proc/MASTER/task/MASTER/children): a process's
# share is its last sample minus its first (0 when born after the first
# sample).  What a process used between its last sample and its exit is
# seen only in MASTER's cutime+cstime (master reaps every daemon); so the
# exact total of the tree is
#     (master self + master's reaped children + living children) at the end
#   - the same at the start,
# and the part of it no name accounts for goes to "exited".  Writes OUT:
# one "NAME TICKS" line per command name, then "exited TICKS" and
# "total TICKS".  The master's own CPU is named "master".
bench_pf_sampler() {
    local master=$1 out=$2 stop=$3 ready=$4
    local -A first=() last=() pname=() sum=()
    local kids p i n t0 t1 done=0 attributed=0
    sample() {
        local c
        bench_stat_read "$master" || return 1
        T_MASTER=$STAT_TICKS
        last[$master]=$STAT_SELF
        pname[$master]=master
        [[ -n ${first[$master]+x} ]] || first[$master]=$STAT_SELF
        T_LIVE=0
        # (No newline ends that file, so read says false even when it read.)
        kids=()
        { read -r -a kids <"/proc/$master/task/$master/children"; } 2>/dev/null
        for c in "${kids[@]}"; do
            bench_stat_read "$c" || continue
            pname[$c]=$STAT_COMM
            last[$c]=$STAT_TICKS
            [[ -n ${first[$c]+x} ]] || first[$c]=$(($1 ? STAT_TICKS : 0))
            T_LIVE=$((T_LIVE + STAT_TICKS))
        done
    }
    sample 1 || { : >"$ready"; echo "total 0" >"$out"; return 1; }
    t0=$((T_MASTER + T_LIVE))
    : >"$ready"
    for ((i = 0; i < 6000; i++)); do
        [[ -e $stop ]] && done=1
        sample 0 || break
        ((done)) && break
        sleep 0.2
    done
    t1=$((T_MASTER + T_LIVE))
    for p in "${!last[@]}"; do
        n=${pname[$p]}
        sum[$n]=$((${sum[$n]:-0} + last[$p] - first[$p]))
        attributed=$((attributed + last[$p] - first[$p]))
    done
    {
        for n in "${!sum[@]}"; do echo "$n ${sum[$n]}"; done
        echo "exited $((t1 - t0 - attributed))"
        echo "total $((t1 - t0))"
    } >"$out"
}

# bench_tsv_values FILE CONFIG S COLUMN: the values of COLUMN (a header
# name of runs.tsv) in the runs of CONFIG at concurrency S whose status is
# ok, one a line, "-" left out.
bench_tsv_values() {
    awk -F'\t' -v c="$2" -v s="$3" -v col="$4" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) k = i; if (!k) exit; next }
        $2 == c && $3 == s && $9 == "ok" && $k != "-" && $k != "" { print $k }' "$1"
}

# bench_tsv_median FILE CONFIG S COLUMN: their median ("nan" when none).
bench_tsv_median() {
    local v
    mapfile -t v < <(bench_tsv_values "$@")
    bench_median "${v[@]}"
}

# bench_median V...: the median of the numbers (mean of the middle two).
bench_median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_wait_file PATH SECONDS: wait until PATH exists.
bench_wait_file() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [[ -e $1 ]] && return 0
        sleep 0.1
    done
    return 1
}

# bench_memcached_start DIR PORT: a private memcached on 127.0.0.1:PORT;
# its pid goes to DIR/memcached.pid.
bench_memcached_start() {
    local dir=$1 port=$2
    mkdir -p "$dir"
    memcached -u nobody -l 127.0.0.1 -p "$port" -U 0 -t 2 -m 64 -c 4096 \
        </dev/null >"$dir/memcached.log" 2>&1 &
    echo $! >"$dir/memcached.pid"
    pf_wait_listen "$port" 10
}

# bench_mariadb_start DIR PORT: a private MariaDB server in DIR (data in
# DIR/data, socket DIR/mysql.sock) on 127.0.0.1:PORT, with database
# "mailserver" and user mxgate/bench; its pid goes to DIR/mariadb.pid.
bench_mariadb_start() {
    local dir=$1 port=$2 i
    mkdir -p "$dir/data" || return 1
    chown -R mysql:mysql "$dir" 2>/dev/null
    chmod 0755 "$dir"
    if ! timeout 120 mariadb-install-db --no-defaults --user=mysql --datadir="$dir/data" \
        --auth-root-authentication-method=socket --skip-test-db \
        >"$dir/install.log" 2>&1; then
        bench_log "mariadb-install-db failed:"
        tail -20 "$dir/install.log" >&2
        return 1
    fi
    mariadbd --no-defaults --user=mysql --datadir="$dir/data" --socket="$dir/mysql.sock" \
        --port="$port" --bind-address=127.0.0.1 --pid-file="$dir/mariadbd.pid" \
        --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=64M \
        --log-error="$dir/error.log" </dev/null >/dev/null 2>&1 &
    echo $! >"$dir/mariadb.pid"
    for ((i = 0; i < 300; i++)); do
        mariadb --no-defaults -S "$dir/mysql.sock" -u root -e 'SELECT 1' >/dev/null 2>&1 && break
        sleep 0.1
    done
    ((i < 300)) || { bench_log "MariaDB did not start:"; tail -20 "$dir/error.log" >&2; return 1; }
    mariadb --no-defaults -S "$dir/mysql.sock" -u root <<'SQL'
CREATE DATABASE mailserver;
CREATE USER 'mxgate'@'127.0.0.1' IDENTIFIED BY 'bench';
CREATE USER 'mxgate'@'localhost' IDENTIFIED BY 'bench';
GRANT SELECT ON mailserver.* TO 'mxgate'@'127.0.0.1';
GRANT SELECT ON mailserver.* TO 'mxgate'@'localhost';
SQL
}

# bench_mariadb_load DIR TOP VMAIL: the postfixadmin-style tables of
# TOP/sql/schema.sql and the benchmark's mailboxes: rcpt@example.org and
# user0..user999@example.org, 1 GB quota each, maildirs under VMAIL.
bench_mariadb_load() {
    local dir=$1 top=$2 vmail=$3 i
    {
        echo "USE mailserver;"
        cat "$top/sql/schema.sql"
        echo "DELETE FROM mailbox WHERE username LIKE '%@example.org';"
        echo "INSERT INTO mailbox (username, quota, maildir, local_part, domain, active) VALUES"
        echo "('rcpt@example.org', 1073741824, 'example.org/rcpt/', 'rcpt', 'example.org', 1)"
        for ((i = 0; i < 1000; i++)); do
            echo ",('user$i@example.org', 1073741824, 'example.org/user$i/', 'user$i', 'example.org', 1)"
        done
        echo ";"
    } | mariadb --no-defaults -S "$dir/mysql.sock" -u root || return 1
    bench_maildir "$vmail/example.org/rcpt"
    for ((i = 0; i < 1000; i++)); do
        bench_maildir "$vmail/example.org/user$i"
    done
}

# bench_maildir DIR: a Maildir++ with a small maildirsize (1 GB limit).
bench_maildir() {
    mkdir -p "$1/cur" "$1/new" "$1/tmp"
    printf '1073741824S\n12345 3\n' >"$1/maildirsize"
}

# bench_mxgate_conf FILE SOCKET CHECKS QUEUEDIR MCPORT DBDIR VMAIL ENGINE: a
# configuration with only CHECKS on (words: helo quota ratelimit overload,
# or "none"; bytes adds a count = "bytes" rule to ratelimit's, realsize
# turns quota.check_real_size on), everything else off, run by ENGINE
# (libmilter or builtin);
# no trusted networks, so Postfix's 127.0.0.1 clients are checked.
bench_mxgate_conf() {
    local file=$1 socket=$2 checks=" $3 " queue=$4 mcport=$5 dbdir=$6 vmail=$7 engine=${8:-libmilter}
    local on
    on() { [[ $checks == *" $1 "* ]] && echo true || echo false; }
    cat >"$file" <<EOF
# written by tests/bench/run.sh: engine $engine, checks on: $3
engine = "$engine";
socket = "$socket";
log_level = "warning";
trusted_networks = [ ];
helo: { enabled = $(on helo); };
quota: { enabled = $(on quota); maildir_root = "$vmail"; cache_ttl = 30;$([[ $checks == *" realsize "* ]] && echo " check_real_size = true;") };
overload: {
  enabled = $(on overload);
  queue_directory = "$queue";
  queue_high = 100000; queue_low = 50000;
  load_high = 100.0; load_low = 90.0;
  sample_interval = 1;
};
EOF
    if [[ $checks == *" quota "* ]]; then
        cat >>"$file" <<EOF
mysql: { socket = "$dbdir/mysql.sock"; user = "mxgate"; password = "bench";
         database = "mailserver"; timeout_ms = 1000; };
EOF
    fi
    if [[ $checks == *" ratelimit "* ]]; then
        cat >>"$file" <<EOF
memcached: { servers = [ "127.0.0.1:$mcport" ]; timeout_ms = 200; on_error = "accept"; };
ratelimit: {
  enabled = true;
  rules = (
    { name = "client"; key = [ "client_ip" ]; count = "messages"; limits = [ "10000000/1h" ]; },
    { name = "rcpt"; key = [ "recipient" ]; count = "recipients"; limits = [ "10000000/1h" ]; }$(
        [[ $checks == *" bytes "* ]] && printf ',\n    %s' \
            '{ name = "volume"; key = [ "sender" ]; count = "bytes"; limits = [ "1000G/1h" ]; }')
  );
};
EOF
    else
        echo 'ratelimit: { enabled = false; };' >>"$file"
    fi
}
