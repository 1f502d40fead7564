#!/bin/sh
# run.sh - runs every test: the cmocka unit tests of the normal and the
# ASan/UBSan builds, the fuzz harnesses over their seed corpora, and the
# integration scenarios in tests/integration/.  Ends with one line
# "N passed, N failed" and exits non-zero on any failure.
#   tests/run.sh [PATTERN]    only integration scenarios whose name matches
set -u
cd "$(dirname "$0")/.." || exit 2
SRC=$(pwd)
BUILD=${BUILD:-build}
pattern=${1:-}
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
passed=0
failed=0
log=$(mktemp "${TMPDIR:-/tmp}/lockbox-tests.XXXXXX")
trap 'rm -f "$log" "$log.results"' EXIT

count_cmocka() { # $1 = binary
    out=$("$1" 2>&1); rc=$?
    printf '%s\n' "$out" | grep -E '^\[  (FAILED|ERROR)|^\[  PASSED|^\[ +FAILED|^\[==========\]|ERROR|runtime error|Sanitizer' | sed 's/^/    /'
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n1)
    p=${p:-0}; f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        # crashed or a sanitizer fired: count it as a failure of its own
        printf '%s\n' "$out" | tail -n 30 | sed 's/^/    /'
        f=1
    fi
    passed=$((passed + p)); failed=$((failed + f))
}

if [ -z "$pattern" ]; then
    echo "== unit tests"
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        echo "  $t"; count_cmocka "$t"
    done
    echo "== unit tests under AddressSanitizer and UBSan"
    for t in "$BUILD"/asan/tests/test_*; do
        [ -x "$t" ] || continue
        echo "  $t"
        count_cmocka "$t"
    done
    echo "== fuzz harnesses over their corpora"
    for f in "$BUILD"/fuzz/fuzz_*; do
        [ -x "$f" ] || continue
        name=$(basename "$f"); corpus=tests/fuzz/corpus/${name#fuzz_}
        if [ -d "$corpus" ] && "$f" -runs=0 "$corpus" >"$log" 2>&1; then
            echo "  ok   $name ($(ls "$corpus" | wc -l) inputs)"; passed=$((passed + 1))
        else
            echo "  FAIL $name"; tail -n 30 "$log" | sed 's/^/    /'; failed=$((failed + 1))
        fi
    done
fi

echo "== integration scenarios"
for s in tests/integration/[0-9]*.sh; do
    [ -f "$s" ] || continue
    case "$s" in *"$pattern"*) ;; *) continue ;; esac
    echo "-- $s"
    : >"$log.results"
    LOCKBOX="$SRC/$BUILD/lockbox" LOCKBOX_ASAN="$SRC/$BUILD/asan/lockbox" \
        RESULTS="$log.results" SRC="$SRC" bash "$s"
    rc=$?
    p=$(grep -c '^pass ' "$log.results"); f=$(grep -c '^fail ' "$log.results")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "  FAIL $s exited $rc"; f=1
    fi
    passed=$((passed + p)); failed=$((failed + f))
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
