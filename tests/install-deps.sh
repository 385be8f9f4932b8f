#!/bin/bash
# install-deps.sh - install what mxgate needs on Debian: "build" for the
# daemon alone, "all" (default) for the whole test suite as well.
# Installs only what is missing; runs apt-get update once, only if needed.
set -eu
what=${1:-all}

build_pkgs="gcc make autoconf automake pkg-config libmilter-dev libmemcached-dev
  libmariadb-dev libconfig-dev libcmocka-dev nettle-dev libmicrohttpd-dev"
test_pkgs="clang libclang-rt-14-dev miltertest swaks postfix memcached mariadb-server
  sasl2-bin libsasl2-modules python3 python3-prometheus-client iproute2 procps psmisc m4 gnuplot-nox valgrind mandoc"

case $what in
build) pkgs=$build_pkgs ;;
all) pkgs="$build_pkgs $test_pkgs" ;;
*) echo "usage: $0 [build|all]" >&2; exit 2 ;;
esac
# systemd-analyze, systemd-sysusers, systemd-tmpfiles (tests/e2e/install.sh).
[ "$what" = all ] && pkgs="$pkgs systemd"

missing=()
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: missing packages (${missing[*]}); run as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix asks how to configure the system's mail; the tests run private instances.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string mx.test.example" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps.sh: installed ${missing[*]}"
