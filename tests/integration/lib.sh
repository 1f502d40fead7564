# lib.sh - shared by the integration scenarios in tests/integration/.
#
# Each scenario is a shell script run by tests/run.sh with:
#   LOCKBOX   the binary under test (normal build; ASan build via LOCKBOX_ASAN)
#   RESULTS   a file: one line "pass NAME" or "fail NAME" per check
#   SRC       the source tree (for fixtures in tests/data/)
# A scenario sources this file, makes its checks with check/expect_fail/ok/
# fail, and cleans up with the trap that lib.sh installs.
set -u

: "${LOCKBOX:=build/lockbox}"
: "${SRC:=$(pwd)}"
: "${RESULTS:=/dev/null}"
SCENARIO=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/lockbox-$SCENARIO.XXXXXX")
CLEANUP=""

cleanup() {
    eval "$CLEANUP"
    rm -rf "$T"
}
trap cleanup EXIT

# at_exit CMD: run CMD (a string) when the scenario ends.
at_exit() { CLEANUP="$1; $CLEANUP"; }

ok()   { echo "pass $SCENARIO: $*" >>"$RESULTS"; echo "  ok   $*"; }
fail() { echo "fail $SCENARIO: $*" >>"$RESULTS"; echo "  FAIL $*"; }

# The output (stdout and stderr) of the last check/expect_* command is in
# $T/.out once it has finished, so the next check may grep it.

# check DESC CMD...: passes when CMD exits 0; shows its output otherwise.
check() {
    local desc=$1; shift
    if "$@" >"$T/.run" 2>&1; then ok "$desc"; else fail "$desc"; sed 's/^/       /' "$T/.run" | head -20; fi
    mv "$T/.run" "$T/.out"
}

# expect_fail DESC CMD...: passes when CMD exits non-zero.
expect_fail() {
    local desc=$1; shift
    if "$@" >"$T/.run" 2>&1; then fail "$desc (unexpectedly succeeded)"; sed 's/^/       /' "$T/.run" | head -20; else ok "$desc"; fi
    mv "$T/.run" "$T/.out"
}

# expect_code DESC CODE CMD...: passes when CMD exits with CODE.
expect_code() {
    local desc=$1 want=$2 got; shift 2
    "$@" >"$T/.run" 2>&1; got=$?
    if [ "$got" = "$want" ]; then ok "$desc"; else fail "$desc (exit $got, want $want)"; sed 's/^/       /' "$T/.run" | head -20; fi
    mv "$T/.run" "$T/.out"
}

# free_port: prints a TCP port nothing listens on.
free_port() {
    local p
    while :; do
        p=$(shuf -i 20000-60999 -n 1)
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
}

# wait_port PORT: waits up to 10 s for a listener on 127.0.0.1:PORT.
wait_port() {
    local i
    for i in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# db_count SQL: prints the single number a query returns on $DIR/lockbox.db.
db_count() { sqlite3 "$DIR/lockbox.db" "$1"; }
