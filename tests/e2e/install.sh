#!/bin/bash
# tests/e2e/install.sh -- "make install DESTDIR=STAGE" from the build tree,
# as a package build runs it, and what it installs: the programs, the man
# pages, the examples, the systemd unit (made from
# contrib/mxgate.service.in with the configured paths, and valid for
# systemd-analyze), the tmpfiles.d and sysusers.d files (applied to an
# empty root: the user, group and directory they promise), then the
# installed programs themselves: mxgate -t on the installed example, an
# installed mxgate answering the installed mxgatectl on its control
# socket, and a clean stop.  Last, "make uninstall DESTDIR=STAGE" takes
# every file away again.  The directories are the build's own (make
# print-install-dirs), so the test holds for any configure options.
# Engine-independent: run once, in the default build's libmilter pass.
#
# TAP on stdout; exit 0 after the results, 99 when the harness cannot run.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

[[ -f $abs_top_builddir/Makefile ]] || bail "no build tree at $abs_top_builddir"
mxpid=
e2e_work install mxpid
stage=$work/stage

# build_make ARGS...: make in the build tree, as a packager runs it, not as
# part of the make check that started this test (its MAKEFLAGS carry
# TESTS=... and a job server this shell does not hold).
build_make() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$abs_top_builddir" "$@"
}

declare -A dir
out=$(build_make -s --no-print-directory print-install-dirs) || bail "make print-install-dirs failed"
for kv in $out; do
    dir[${kv%%=*}]=${kv#*=}
done
[[ -n ${dir[sbindir]-} && -n ${dir[version]-} ]] || bail "make print-install-dirs printed: $out"

build_make install DESTDIR="$stage" >"$work/install.out" 2>&1
tap_result $? "make install DESTDIR=STAGE succeeds in the build tree" ||
    tail -20 "$work/install.out" | sed 's/^/# /'

# files NAME DIRKEY FILE...: one point, "NAME in DIR", that every FILE is
# in the staged DIR (executable for sbindir), naming those that are not.
files() {
    local name=$1 key=$2 f missing=()
    shift 2
    for f in "$@"; do
        if [[ -z ${dir[$key]} ]]; then
            missing+=("$f (no $key configured)")
        elif [[ $key == sbindir ]]; then
            [[ -x $stage${dir[$key]}/$f ]] || missing+=("$f")
        else
            [[ -f $stage${dir[$key]}/$f ]] || missing+=("$f")
        fi
    done
    tap_result ${#missing[@]} "$name in ${dir[$key]}${missing:+ (missing: ${missing[*]})}"
}
files "the programs mxgate, mxgatectl" sbindir mxgate mxgatectl
files "the man pages mxgate(8), mxgate.conf(5), mxgatectl(8)" mandir \
    man8/mxgate.8 man5/mxgate.conf.5 man8/mxgatectl.8
files "the examples" exampledir mxgate.conf.example postfix-main.cf sendmail.mc
files "the systemd unit" systemdsystemunitdir mxgate.service
files "the tmpfiles.d file" tmpfilesdir mxgate.conf
files "the sysusers.d file" sysusersdir mxgate.conf

sbin=$stage${dir[sbindir]}
unit=$stage${dir[systemdsystemunitdir]}/mxgate.service
conf=${dir[sysconfdir]}/mxgate.conf
# The unit's commands, with the configured paths in place of the template's.
want_start="ExecStart=${dir[sbindir]}/mxgate -f -c $conf"
want_pre="ExecStartPre=${dir[sbindir]}/mxgate -t -c $conf"
left=$(grep -o '@[A-Za-z_]*@' "$unit" 2>/dev/null | sort -u | tr '\n' ' ')
[[ -f $unit && -z $left ]] && grep -qxF "$want_start" "$unit" && grep -qxF "$want_pre" "$unit"
tap_result $? "the unit has no @...@ left${left:+ (it has $left)} and runs ${dir[sbindir]}/mxgate -f, after -t, on $conf"

# systemd-analyze verify checks that each command's program exists and is
# executable; the unit names the installed paths, which this test does not
# write to.  --root=STAGE would look the programs up in the stage, but also
# everything else (sysinit.target and the other system units, /bin/kill),
# which a stage does not hold.  So it verifies a copy that differs only in
# naming the staged mxgate, under the unit's own name (verify reads it).
# --man=no: the man pages are the man-pages point above, and are not in
# man's search path.
mkdir -p "$work/verify"
sed "s|${dir[sbindir]}/|$sbin/|g" "$unit" >"$work/verify/mxgate.service" 2>/dev/null
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify --man=no "$work/verify/mxgate.service" >"$work/verify.out" 2>&1
    st=$?
    # verify prints warnings about the other units it loads (their
    # dependencies); a complaint about this unit is a failure too.
    grep -q 'mxgate.service' "$work/verify.out" && st=1
    tap_result $st "systemd-analyze verify accepts the unit (with the staged mxgate)" ||
        sed 's/^/# /' "$work/verify.out"
else
    tap_result 1 "systemd-analyze verify accepts the unit (systemd-analyze missing: apt-get install systemd)"
fi

# The two snippets applied to an empty root: sysusers.d makes the user and
# group (a system account, nologin, no home), tmpfiles.d then makes the
# directory with them (its user names are looked up in that root).
root=$work/root
mkdir -p "$root/etc" "$root/run"
systemd-sysusers --root="$root" "$stage${dir[sysusersdir]}/mxgate.conf" >"$work/sysusers.out" 2>&1 &&
    systemd-tmpfiles --root="$root" --create "$stage${dir[tmpfilesdir]}/mxgate.conf" >"$work/tmpfiles.out" 2>&1
st=$?
pw=$(grep '^mxgate:' "$root/etc/passwd" 2>/dev/null)
IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
grp=$(awk -F: -v g="${gid:-x}" '$3 == g { print $1 }' "$root/etc/group" 2>/dev/null)
got=$(stat -c '%a %u %g' "$root/run/mxgate" 2>/dev/null)
[[ $st == 0 && -n $pw && $uid -lt 1000 && $grp == mxgate && $home == / && $shell == */nologin &&
    $got == "750 $uid $gid" ]]
tap_result $? "sysusers.d makes the system user and group mxgate (no home, nologin), tmpfiles.d /run/mxgate 0750 mxgate:mxgate (passwd: ${pw:-none}; group ${grp:-none}; /run/mxgate: ${got:-none})" ||
    cat "$work/sysusers.out" "$work/tmpfiles.out" | sed 's/^/# /'

"$sbin/mxgate" -t -c "$stage${dir[exampledir]}/mxgate.conf.example" >"$work/t.out" 2>&1
tap_result $? "the installed mxgate -t accepts the installed example configuration" ||
    sed 's/^/# /' "$work/t.out"

# The installed daemon (libmilter, its default), with a control socket.
cat >"$work/mxgate.conf" <<EOF
control_socket = "unix:$work/control.sock";
EOF
MXGATE=$sbin/mxgate mxgate_start "$work/mxgate.conf" "$work/mxgate.log" 20
tap_result $? "the installed mxgate listens on 127.0.0.1:${MXGATE_PORT:-?}" ||
    sed 's/^/# /' "$work/mxgate.log"
mxpid=$MXGATE_PID

timeout 10 "$sbin/mxgatectl" -s "unix:$work/control.sock" status >"$work/status.out" 2>&1
st=$?
[[ $st == 0 ]] && ! grep -qF "${dir[version]}" "$work/status.out" && st=1
tap_result $st "the installed mxgatectl status answers through the control socket: exit 0, version ${dir[version]}" ||
    head -20 "$work/status.out" | sed 's/^/# /'

mxgate_stop_check "$mxpid" "$work/mxgate.log" "the installed mxgate"
mxpid=

build_make uninstall DESTDIR="$stage" >"$work/uninstall.out" 2>&1
st=$?
left=$(cd "$stage" 2>/dev/null && find . ! -type d | head -10 | tr '\n' ' ')
[[ $st == 0 && -z $left ]]
tap_result $? "make uninstall DESTDIR=STAGE removes every file installed${left:+ (left: $left)}" ||
    tail -20 "$work/uninstall.out" | sed 's/^/# /'

tap_done
