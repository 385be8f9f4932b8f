#!/bin/bash
# helo_differential.sh - mxgate's helo check against Postfix's own.
#
# Two private Postfix instances on loopback:
#   A  smtpd_helo_restrictions = reject_invalid_helo_hostname,
#      reject_non_fqdn_helo_hostname (the reference, in the order most
#      sites write them: a malformed name gets 501, a name without a dot
#      504), then check_helo_access with the server's own name and address
#      literal (the admin guides' "You are not me" map), no milter;
#   B  no helo restrictions, smtpd_milters = mxgate (trusted_networks empty,
#      helo.exempt_daemons = [ "submission" ], helo.reject_own_names = the
#      own name; its address comes from {daemon_addr}), plus a second smtpd
#      on another port whose {daemon_name} is "submission".
# Every name of tests/e2e/helo-names.txt is sent (EHLO, MAIL, RCPT, QUIT) to
# both; the server's reply lines must be the same, one TAP line per name.
# Then on B: an authenticated client and a client of the submission port
# with a bad HELO get through, a plain client gets Postfix's 504; and A and
# B both give a malformed name Postfix's 501 "Invalid name".  The own name
# (in other case) and [127.0.0.1] get 554 "You are not me" from B, except
# for an authenticated client, and mxgate logs the refusal.
#
# Names file: one name a line, "#" lines are comments, blank lines skipped,
# bytes written as \xNN (decoded with printf %b).  The empty argument (bare
# "EHLO") is always tested as well.
#
# Environment:
#   MXGATE            the daemon (default $abs_top_builddir/mxgate)
#   HELO_NAMES        names file (default tests/e2e/helo-names.txt)
#   HELO_DIFF_B       "mxgate" (default) or "postfix": B is then a Postfix
#                     with the same restrictions as A plus
#                     permit_sasl_authenticated and none on the submission
#                     port -- the behaviour mxgate must show; it checks the
#                     harness itself without the daemon.
#   HELO_DIFF_JOBS    names run in parallel (default twice the cores: the
#                     run is CPU-bound, mostly swaks's start-up)
#   HELO_DIFF_CLIENT  "swaks" (default) or "raw": every name through
#                     pf_raw_replies (bash /dev/tcp), about 4 times less CPU
#   HELO_DIFF_KEEP    1: keep the work directory (it is kept anyway when a
#                     test fails)
#
# Exit: 0 with TAP on stdout (failures are "not ok" lines); 99 when the
# harness itself cannot run (Postfix or mxgate do not start, packages
# missing); 0 with "1..0 # SKIP" when not root.
set -u
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=${abs_top_srcdir:-$(cd "$here/../.." && pwd)}
builddir=${abs_top_builddir:-$top}
MXGATE=${MXGATE:-$builddir/mxgate}
HELO_NAMES=${HELO_NAMES:-$here/helo-names.txt}
HELO_DIFF_B=${HELO_DIFF_B:-mxgate}
HELO_DIFF_JOBS=${HELO_DIFF_JOBS:-$((2 * $(nproc 2>/dev/null || echo 2)))}
HELO_DIFF_KEEP=${HELO_DIFF_KEEP:-0}
HELO_DIFF_CLIENT=${HELO_DIFF_CLIENT:-swaks}

# shellcheck source-path=SCRIPTDIR source=lib/postfix.sh
. "$here/lib/postfix.sh"
# shellcheck source-path=SCRIPTDIR source=lib/mxgate.sh
. "$here/lib/mxgate.sh"

BAD_HELO=usuario-10c7392
BAD_HELO_REPLY="504 5.5.2 <$BAD_HELO>: Helo command rejected: need fully-qualified hostname"
# A malformed name: the syntax check answers before the FQDN check.
MALFORMED_HELO=ex..ample.com
MALFORMED_HELO_REPLY="501 5.5.2 <$MALFORMED_HELO>: Helo command rejected: Invalid name"
# The server's own name, and the reply for it (the address: [127.0.0.1]).
OWN_NAME=mx1.own.example
OWN_HELO=MX1.Own.Example
own_reply() { echo "554 5.7.1 <$1>: Helo command rejected: You are not me"; }
FROM=sender@example.net
RCPT=rcpt@example.org

failed=0
bail() {
    echo "Bail out! $*"
    failed=1 # keep the work directory, if any, for its logs
    exit 99
}

if [[ $(id -u) != 0 ]]; then
    echo "1..0 # SKIP needs root to run private Postfix instances"
    exit 0
fi
pf_need_packages "${PF_PACKAGES[@]}" >&2 || bail "cannot install ${PF_PACKAGES[*]}"
[[ -r $HELO_NAMES ]] || bail "no names file $HELO_NAMES"
case $HELO_DIFF_B in
    mxgate) [[ -x $MXGATE ]] || bail "no daemon at $MXGATE (build it, or HELO_DIFF_B=postfix)" ;;
    postfix) ;;
    *) bail "HELO_DIFF_B must be mxgate or postfix" ;;
esac

work=
work=$(mktemp -d "${TMPDIR:-/tmp}/mxgate-helodiff.XXXXXX") || bail "mktemp failed"
chmod 0755 "$work"
mxgate_pid=

cleanup() {
    local p
    # SIGTERM to every job, mxgate included, while Postfix stops.
    for p in $(jobs -p); do kill "$p" 2>/dev/null; done
    pf_stop_all
    [[ -n $mxgate_pid ]] && pf_kill_pid "$mxgate_pid" 10
    [[ -n $work ]] || return
    if [[ $HELO_DIFF_KEEP == 1 || $failed != 0 ]]; then
        echo "# work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- the names -----------------------------------------------------------
# names[i] is the escaped form (as in the file), shown in TAP lines.
names=("")
while IFS= read -r line || [[ -n $line ]]; do
    [[ -z $line || $line == '#'* ]] && continue
    names+=("$line")
done <"$HELO_NAMES"
((${#names[@]} > 1)) || bail "no names in $HELO_NAMES"

# --- TAP -----------------------------------------------------------------
n_extra=13
echo "1..$((${#names[@]} + n_extra))"
tap_n=0
tap() { # tap STATUS DESCRIPTION [DIRECTIVE]
    tap_n=$((tap_n + 1))
    local d=${2//#/\\x23}
    d=${d//[^[:print:]]/?}
    if (($1 == 0)); then
        echo "ok $tap_n - $d${3:+ # $3}"
    else
        echo "not ok $tap_n - $d${3:+ # $3}"
        failed=1
    fi
}
diag() { # diag PREFIX FILE: the file's lines as "# PREFIX line", made visible
    cat -v "$2" | cut -c1-300 | sed "s/^/# $1/"
}

# --- instance A and B ----------------------------------------------------
helo_restrictions="reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname, check_helo_access texthash:$work/own_helo"
printf '%s REJECT You are not me\n' "$OWN_NAME" '[127.0.0.1]' >"$work/own_helo"
a_port=$(pf_free_port) && a_sink=$(pf_free_port) &&
    b_port=$(pf_free_port) && b_sink=$(pf_free_port) &&
    b_sub=$(pf_free_port) && milter_port=$(pf_free_port) || bail "no free ports"

# start_b_milter: what makes B decide.  With mxgate: start it and point B's
# smtpd_milters at it.  With HELO_DIFF_B=postfix: Postfix's own restrictions,
# shaped as mxgate's configuration asks (authenticated and submission exempt).
b_main_cf=()
b_sub_opts=
start_b_milter() {
    if [[ $HELO_DIFF_B == postfix ]]; then
        b_main_cf=("smtpd_helo_restrictions = permit_sasl_authenticated, $helo_restrictions")
        b_sub_opts="-o smtpd_helo_restrictions="
        return 0
    fi
    cat >"$work/mxgate.conf" <<EOF
trusted_networks = [ ];
helo: { exempt_daemons = [ "submission" ]; reject_own_names = [ "$OWN_NAME" ]; };
EOF
    "$MXGATE" -f -c "$work/mxgate.conf" -p "inet:$milter_port@127.0.0.1" \
        </dev/null >"$work/mxgate.log" 2>&1 &
    mxgate_pid=$!
    local i
    for ((i = 0; i < 150; i++)); do
        pf_port_listening "$milter_port" && break
        kill -0 "$mxgate_pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! pf_port_listening "$milter_port" || ! kill -0 "$mxgate_pid" 2>/dev/null; then
        sed 's/^/# mxgate: /' "$work/mxgate.log"
        bail "mxgate did not start on inet:$milter_port@127.0.0.1"
    fi
    b_main_cf=("smtpd_milters = inet:127.0.0.1:$milter_port")
}

t_start=$SECONDS
start_b_milter
a_cf=("smtpd_helo_restrictions = $helo_restrictions"
    "smtpd_delay_reject = yes" "smtpd_helo_required = no")
b_cf=("smtpd_helo_restrictions =" "smtpd_delay_reject = yes"
    "smtpd_helo_required = no" "${b_main_cf[@]}")
# Both at once (pf_start is slow in "postfix check"); registered here so the
# EXIT trap stops them whatever happens in the subshells.
PF_STARTED+=("$work/a" "$work/b")
pf_start "$work/a" "$a_port" "$a_sink" "${a_cf[@]}" >"$work/start-a.log" 2>&1 &
a_job=$!
PF_SUBMISSION_PORT=$b_sub PF_SUBMISSION_OPTS=$b_sub_opts \
    pf_start "$work/b" "$b_port" "$b_sink" "${b_cf[@]}" >"$work/start-b.log" 2>&1 &
b_job=$!
wait "$a_job" || { sed 's/^/# A: /' "$work/start-a.log"; bail "Postfix A did not start"; }
wait "$b_job" || { sed 's/^/# B: /' "$work/start-b.log"; bail "Postfix B did not start"; }
echo "# A on 127.0.0.1:$a_port, B on 127.0.0.1:$b_port (submission $b_sub)," \
    "B decides with: $HELO_DIFF_B; started in $((SECONDS - t_start))s"

# --- the differential run ------------------------------------------------
# session PORT ESCAPED-NAME OUTFILE: one session, reply lines into OUTFILE.
# swaks cannot send a NUL byte, nor an empty argument, nor one that starts
# with "-" (it takes that for an option).  NUL and empty go through
# pf_raw_replies (which, unlike swaks, goes on to MAIL and RCPT after a
# refused EHLO/HELO: mail without any HELO name must pass); a leading "-"
# gets one space before it, which smtpd skips like any separator.
session() {
    local port=$1 esc=$2 out=$3 name
    if [[ $HELO_DIFF_CLIENT == raw || -z $esc ]] || ! pf_decode "$esc" name; then
        pf_raw_replies --port "$port" --helo-escaped "$esc" --from "$FROM" --to "$RCPT" >"$out"
        return
    fi
    [[ $name == -* ]] && name=" $name"
    pf_swaks_replies --port "$port" --helo "$name" --from "$FROM" --to "$RCPT" >"$out"
}

mkdir -p "$work/res"
t_run=$SECONDS
# Only the sessions' subshells are waited for (never mxgate, also a child).
case_pids=()
for i in "${!names[@]}"; do
    (
        session "$a_port" "${names[i]}" "$work/res/$i.A"
        session "$b_port" "${names[i]}" "$work/res/$i.B"
    ) &
    case_pids+=($!)
    while (($(jobs -rp | grep -cvx "${mxgate_pid:-none}") >= HELO_DIFF_JOBS)); do
        wait -n
    done
done
wait "${case_pids[@]}"

# replies_match FILE-A FILE-B: the same lines; except that a reply line of
# A longer than 980 characters (Postfix quoting a name of up to 2043
# characters) cannot be matched by a milter, whose reply libmilter limits
# to 980: there B must give the same code, DSN and reason text after the
# quoted name, in at most 980 characters.
replies_match() {
    relaxed=0
    cmp -s "$1" "$2" && return 0
    local -a a b
    local i
    mapfile -t a <"$1"
    mapfile -t b <"$2"
    ((${#a[@]} == ${#b[@]})) || return 1
    for i in "${!a[@]}"; do
        [[ ${a[i]} == "${b[i]}" ]] && continue
        if ((${#a[i]} > 980 && ${#b[i]} <= 980)) &&
            [[ ${a[i]:0:10} == "${b[i]:0:10}" && ${a[i]##*>} == "${b[i]##*>}" ]]; then
            relaxed=1
            continue
        fi
        return 1
    done
    return 0
}

# describe ESCAPED: a short, TAP-safe label for a name.
describe() {
    local d=$1
    [[ -z $d ]] && d='(empty argument)'
    ((${#d} > 70)) && d="${d:0:60}... (${#1} chars escaped)"
    printf '%s' "$d"
}

for i in "${!names[@]}"; do
    ra=$work/res/$i.A
    rb=$work/res/$i.B
    label="helo <$(describe "${names[i]}")>"
    if ! head -n1 "$ra" 2>/dev/null | grep -q '^220 '; then
        tap 1 "$label: A gave no greeting"
        diag "A: " "$ra"
    elif replies_match "$ra" "$rb"; then
        if ((relaxed)); then
            tap 0 "$label: same replies (A's reply over 980 characters: code, DSN and reason compared)"
        else
            tap 0 "$label: same replies ($(grep -E '^[0-9]{3} ' "$ra" | tail -n 2 | head -n 1 | cut -c1-60))"
        fi
    else
        tap 1 "$label: replies differ"
        diff "$ra" "$rb" | cat -v | cut -c1-300 | sed 's/^/# /'
    fi
done
echo "# ${#names[@]} names in $((SECONDS - t_run))s, $HELO_DIFF_JOBS in parallel"

# --- B only: the exemptions, and the daemon's health -----------------------
# rcpt_reply LOG: the reply lines to RCPT TO in a swaks transcript.
rcpt_reply() {
    awk '/^ *-> RCPT TO/ { f = 1; next } /^ *-> / { f = 0 } f' "$1" |
        sed -n -e 's/^<[-~]  //p' -e 's/^<[-~]\*\* //p' -e 's/^<\*\* //p'
}

PF_SWAKS_LOG=$work/auth.log pf_swaks_replies --port "$b_port" --helo "$BAD_HELO" \
    --from "$FROM" --to "$RCPT" --auth "$PF_SASL_USER" "$PF_SASL_PASSWORD" >"$work/auth.out"
r=$(rcpt_reply "$work/auth.log")
[[ $r == 250* ]] && grep -q '^235 ' "$work/auth.out"
tap $? "authenticated client (AUTH PLAIN) with HELO $BAD_HELO passes RCPT ($r)"
[[ $r == 250* ]] || diag "" "$work/auth.out"

PF_SWAKS_LOG=$work/sub.log pf_swaks_replies --port "$b_sub" --helo "$BAD_HELO" \
    --from "$FROM" --to "$RCPT" >"$work/sub.out"
r=$(rcpt_reply "$work/sub.log")
[[ $r == 250* ]]
tap $? "client of the submission service ({daemon_name} submission) with HELO $BAD_HELO passes RCPT ($r)"
[[ $r == 250* ]] || diag "" "$work/sub.out"

PF_SWAKS_LOG=$work/plain.log pf_swaks_replies --port "$b_port" --helo "$BAD_HELO" \
    --from "$FROM" --to "$RCPT" >"$work/plain.out"
r=$(rcpt_reply "$work/plain.log")
[[ $r == "$BAD_HELO_REPLY" ]]
tap $? "unauthenticated client with HELO $BAD_HELO gets: $BAD_HELO_REPLY"
[[ $r == "$BAD_HELO_REPLY" ]] || diag "" "$work/plain.out"

# The reference's restriction order shows: a malformed name gets 501 from
# A, and the same from B.
r_ab=
for port in "$a_port" "$b_port"; do
    PF_SWAKS_LOG=$work/malformed.log pf_swaks_replies --port "$port" --helo "$MALFORMED_HELO" \
        --from "$FROM" --to "$RCPT" >"$work/malformed.out"
    r=$(rcpt_reply "$work/malformed.log")
    r_ab+="$r|"
done
[[ $r_ab == "$MALFORMED_HELO_REPLY|$MALFORMED_HELO_REPLY|" ]]
tap $? "A and B both give HELO $MALFORMED_HELO: $MALFORMED_HELO_REPLY"
[[ $r_ab == "$MALFORMED_HELO_REPLY|$MALFORMED_HELO_REPLY|" ]] || echo "# got (A|B|): $r_ab"

# Own name and address: by name (in other case), by the server's address
# literal (B: from {daemon_addr}, not listed), and an authenticated client
# exempt.
for helo in "$OWN_HELO" '[127.0.0.1]'; do
    PF_SWAKS_LOG=$work/own.log pf_swaks_replies --port "$b_port" --helo "$helo" \
        --from "$FROM" --to "$RCPT" >"$work/own.out"
    r=$(rcpt_reply "$work/own.log")
    [[ $r == "$(own_reply "$helo")" ]]
    tap $? "unauthenticated client with HELO $helo gets: $(own_reply "$helo")"
    [[ $r == "$(own_reply "$helo")" ]] || diag "" "$work/own.out"
done
PF_SWAKS_LOG=$work/own-auth.log pf_swaks_replies --port "$b_port" --helo "$OWN_HELO" \
    --from "$FROM" --to "$RCPT" --auth "$PF_SASL_USER" "$PF_SASL_PASSWORD" >"$work/own-auth.out"
r=$(rcpt_reply "$work/own-auth.log")
[[ $r == 250* ]] && grep -q '^235 ' "$work/own-auth.out"
tap $? "authenticated client with HELO $OWN_HELO passes RCPT ($r)"
[[ $r == 250* ]] || diag "" "$work/own-auth.out"
if [[ $HELO_DIFF_B == mxgate ]]; then
    grep -F "$(own_reply "$OWN_HELO"); from=<$FROM> to=<$RCPT> helo=<$OWN_HELO> check=helo" \
        "$work/mxgate.log" | grep -q 'reject: RCPT from [^ ]*\[127\.0\.0\.1\]: '
    tap $? "mxgate logs the own-name refusal: ... $(own_reply "$OWN_HELO"); ... check=helo"
else
    tap 0 "mxgate logs the own-name refusal" "SKIP B is Postfix itself (HELO_DIFF_B=postfix)"
fi

# mxgate asks for {auth_authen} at MAIL with smfi_setsymlist; Postfix sends
# a macro only when it has it, i.e. with SMTP AUTH on, and lists it by
# default in milter_mail_macros.
macros=$(pf_postconf "$work/b" -h milter_mail_macros)
auth_on=$(pf_postconf "$work/b" -h smtpd_sasl_auth_enable)
[[ " $macros " == *" {auth_authen} "* && $auth_on == yes ]]
tap $? "B: smtpd_sasl_auth_enable = $auth_on, milter_mail_macros has {auth_authen}"

if [[ $HELO_DIFF_B == mxgate ]]; then
    kill -0 "$mxgate_pid" 2>/dev/null
    tap $? "mxgate (pid $mxgate_pid) still runs after every name"
    grep -aiE 'warning: (milter |connect to milter)' "$work/b/maillog" >"$work/milter-warnings"
    [[ ! -s $work/milter-warnings ]]
    tap $? "B's maillog has no milter warning"
    diag "" "$work/milter-warnings"
    mxgate_stop "$mxgate_pid" "$work/mxgate.log"
    tap $? "mxgate stops on SIGTERM: status 0, no sanitizer report${MXGATE_STOP_WHY:+ ($MXGATE_STOP_WHY)}"
    mxgate_pid=
else
    tap 0 "mxgate still runs" "SKIP B is Postfix itself (HELO_DIFF_B=postfix)"
    tap 0 "B's maillog has no milter warning" "SKIP B is Postfix itself (HELO_DIFF_B=postfix)"
    tap 0 "mxgate stops on SIGTERM" "SKIP B is Postfix itself (HELO_DIFF_B=postfix)"
fi

# The sink got nothing: every session stopped after RCPT.
[[ $(pf_sink_count "$work/a") == 0 && $(pf_sink_count "$work/b") == 0 ]]
tap $? "no message was delivered (sessions end after RCPT)"

echo "# total $((SECONDS - t_start))s"
exit 0
