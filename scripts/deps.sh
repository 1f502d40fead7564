#!/bin/sh
# deps.sh - install the Debian packages lockbox needs to build, run and test.
#
# Checks each package with dpkg-query and installs only the missing ones:
# as root, `apt-get update` once then `apt-get install -y`; otherwise it
# prints the exact command to run and fails.  Usage: deps.sh [build|test|bench]
set -eu

build="build-essential pkg-config openssl libssl-dev libsqlite3-dev sqlite3
libmicrohttpd-dev libgnutls28-dev libldap2-dev libjansson-dev
libcurl4-openssl-dev libgfshare-dev libcmocka-dev curl"
# clang: the libFuzzer harnesses; cppcheck, clang-tidy: make analyze;
# valgrind: the unit tests under memcheck
test="clang slapd ldap-utils gpgsm libnss3-tools gnutls-bin cppcheck clang-tidy
valgrind"
bench="hyperfine python3-cryptography golang-cfssl"

want=$build
case "${1:-build}" in
    build) ;;
    test) want="$build $test" ;;
    bench) want="$build $test $bench" ;;
    *) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$s" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing Debian packages:$missing" >&2
    echo "run as root: apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y$missing" >&2
    exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# slapd must not configure a system instance: tests run their own.
echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
