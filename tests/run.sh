#!/bin/sh
# run.sh - runs every test: the cmocka unit tests of the normal build
# (under valgrind memcheck with VALGRIND=1) and of the ASan/UBSan build,
# the fuzz harnesses over their seed corpora, and the integration scenarios
# in tests/integration/; with ANALYZE=1 also scripts/analyze.sh.  The unit
# tests and the analysis are CPU-bound and run in the background while the
# integration scenarios (which wait on the network and on timers much of
# their time) run; their reports print at the end.  Prints each phase's
# time, lists what was skipped, ends with one line "N passed, N failed,
# N skipped" and exits non-zero on any failure.  A skip is never a pass:
# a cmocka test that calls skip(), an integration check recorded with
# lib.sh's skip; with LOCKBOX_NO_SKIP=1 (CI) each counts as a failure
# instead.  A phase that runs nothing (no binary, no scenario) fails.
#   tests/run.sh [PATTERN]    only integration scenarios whose name matches
# Environment: BUILD (build), VALGRIND=1 (or =only: nothing but the unit
# tests under valgrind, `make valgrind`), ANALYZE=1, JOBS (2): how many
# unit-test binaries of the normal build run at once, LOCKBOX_NO_SKIP=1.
set -u
cd "$(dirname "$0")/.." || exit 2
SRC=$(pwd)
BUILD=${BUILD:-build}
VALGRIND=${VALGRIND:-0}
ANALYZE=${ANALYZE:-0}
JOBS=${JOBS:-2}
pattern=${1:-}
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
NO_SKIP=${LOCKBOX_NO_SKIP:-0}
export LOCKBOX_NO_SKIP=$NO_SKIP
passed=0
failed=0
skipped=0
work=$(mktemp -d "${TMPDIR:-/tmp}/lockbox-tests.XXXXXX") || exit 2
log=$work/log
bg_pids=""
# shellcheck disable=SC2086
trap '[ -n "$bg_pids" ] && kill $bg_pids 2>/dev/null; rm -rf "$work"' EXIT
t0=$(date +%s)
phase_t=$t0
phase_name=""

# phase TITLE: starts a phase; phase_end prints the running one's duration
phase() {
    phase_end
    phase_t=$(date +%s)
    phase_name=$1
    echo "== $1"
}
phase_end() {
    [ -n "$phase_name" ] && echo "   ($phase_name: $(($(date +%s) - phase_t)) s)"
    phase_name=""
}

# count_cmocka BINARY OUTFILE RC SECONDS: prints the summary of one cmocka
# binary's run and adds its counts; a crash, a sanitizer report, a
# valgrind error (exit 99) or a binary that ran no test counts as a
# failure of its own; skipped tests are counted and named (in $work/skips),
# or counted as failures with NO_SKIP=1.
count_cmocka() {
    echo "  $1 ($4 s)"
    grep -E '^\[  (FAILED|ERROR)|^\[  PASSED|^\[ +FAILED|^\[  SKIPPED|^\[==========\]|ERROR|runtime error|Sanitizer' "$2" |
        sed 's/^/    /'
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$2" | tail -n1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$2" | tail -n1)
    k=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$2" | tail -n1)
    p=${p:-0}; f=${f:-0}; k=${k:-0}
    if [ "$k" -gt 0 ] && [ "$NO_SKIP" = 1 ]; then
        echo "    FAIL $k skipped test(s), and LOCKBOX_NO_SKIP=1 requires every test to run"
        f=$((f + k)); k=0
    fi
    # the names, from cmocka's list after the counts (each also stands
    # where the test ran)
    [ "$k" -eq 0 ] || sed -n '/^\[  SKIPPED \] [0-9]* test(s), listed below:$/,$ s/^\[  SKIPPED \] \([a-z_][a-z0-9_]*\)$/\1/p' "$2" |
        sed "s|^|  $1: |" >>"$work/skips"
    if [ "$3" -eq 0 ] && [ $((p + f + k)) -eq 0 ]; then
        echo "    FAIL ran no test"
        f=1
    elif [ "$3" -eq 99 ] && grep -q '^==[0-9]*== ' "$2"; then
        echo "    valgrind memcheck reported errors:"
        grep '^==[0-9]*== ' "$2" | head -n 60 | sed 's/^/    /'
        f=$((f + 1))
    elif [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then
        # crashed or a sanitizer fired: count it as a failure of its own
        tail -n 30 "$2" | sed 's/^/    /'
        f=1
    fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + k))
}

# run_units DIR JOBS [WRAPPER...]: runs DIR/test_* (under WRAPPER), JOBS
# at a time, each into its own log, then prints their summaries in order;
# a DIR without test binaries is a failure
run_units() {
    dir=$1 jobs=$2; shift 2
    tag=$(printf '%s' "$dir" | tr / _)
    if ! ls "$dir"/test_* >/dev/null 2>&1; then
        echo "  FAIL no unit-test binaries in $dir (make unit asan)"
        failed=$((failed + 1))
        return
    fi
    for t in "$dir"/test_*; do
        [ -x "$t" ] || continue
        echo "$t"
    done | W=$work/$tag xargs -P "$jobs" -I{} sh -c \
        't=$1; shift; s=$(date +%s); "$@" "$t" >"$W.${t##*/}.out" 2>&1
         echo "$? $(($(date +%s) - s))" >"$W.${t##*/}.rc"' \
        sh {} "$@"
    for t in "$dir"/test_*; do
        [ -x "$t" ] || continue
        out=$work/$tag.${t##*/}
        read -r rc secs <"$out.rc" || rc=1 secs=0
        count_cmocka "$t" "$out.out" "$rc" "$secs"
        rm -f "$out.out" "$out.rc"
    done
}

# background NAME CMD...: runs CMD (a shell function or command) in the
# background with its output in $work/NAME.out, then its duration and its
# pass, fail and skip counts in $work/NAME.counts; bg_join NAME TITLE PID
# waits for it, prints its output and adds its counts.
background() {
    name=$1; shift
    (
        st=$(date +%s); passed=0; failed=0; skipped=0
        "$@"
        echo "$(($(date +%s) - st)) $passed $failed $skipped" >"$work/$name.counts"
    ) >"$work/$name.out" 2>&1 &
    bg_pids="$bg_pids $!"
}
bg_join() {
    phase_end
    echo "== $2 (in the background)"
    wait "$3"
    cat "$work/$1.out"
    if [ -f "$work/$1.counts" ]; then
        read -r secs p f k <"$work/$1.counts"
        echo "   ($1, in the background: $secs s)"
    else
        echo "  FAIL $2 did not finish"; p=0 f=1 k=0
    fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + k))
}

# summary: the skipped tests and checks, one line each, then the last
# line; exits 0 when nothing failed and something passed
summary() {
    if [ -s "$work/skips" ]; then
        echo "== skipped ($skipped)"
        cat "$work/skips"
    fi
    echo "   (total: $(($(date +%s) - t0)) s)"
    echo "$passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
    exit
}

# valgrind memcheck over the normal build's unit tests: every memory error
# and every definite leak fails (exit 99); tests/valgrind.supp holds only
# third-party false positives, each with its reason.  OPENSSL_ia32cap=0:0
# makes libcrypto take its generic code paths: under valgrind its vector
# bignum code makes an RSA key generation about 3 times slower, and
# lockbox's own code is checked the same either way.
# LOCKBOX_UNDER_VALGRIND tells the tests what cannot run there: the signer
# process lowers its RLIMIT_NOFILE hard limit, which valgrind refuses
# (EPERM; the signer then fails closed), so test_signer runs its decoder
# tests only (the rest run under ASan/UBSan); timing bounds stretch.
valgrind_units() {
    run_units "$BUILD/tests" "$1" env OPENSSL_ia32cap=0:0 \
        LOCKBOX_UNDER_VALGRIND=1 \
        valgrind -q --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite --show-leak-kinds=definite \
        --num-callers=30 --suppressions=tests/valgrind.supp
}

# the static analysis, one process at a time; fails on any finding
analyze() {
    if BUILD=$BUILD JOBS=1 sh scripts/analyze.sh; then passed=1; else
        echo "  FAIL static analysis"; failed=1; fi
}

vpid="" apid="" zpid="" upid=""
if [ "$VALGRIND" = only ]; then
    phase "unit tests under valgrind memcheck"
    valgrind_units "$JOBS"
    phase_end
    summary
fi
if [ -z "$pattern" ]; then
    if [ "$ANALYZE" = 1 ]; then
        background analyze analyze
        zpid=$!
    fi
    if [ "$VALGRIND" = 1 ]; then
        background valgrind valgrind_units "$JOBS"
        vpid=$!
    else
        background units run_units "$BUILD/tests" 1
        upid=$!
    fi
    background asan run_units "$BUILD/asan/tests" 1
    apid=$!
    phase "fuzz harnesses over their corpora"
    if ! ls "$BUILD"/fuzz/fuzz_* >/dev/null 2>&1; then
        echo "  FAIL no fuzz harnesses in $BUILD/fuzz (make test builds them)"
        failed=$((failed + 1))
    fi
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

phase "integration scenarios"
nscen=0
for s in tests/integration/[0-9]*.sh; do
    [ -f "$s" ] || continue
    case "$s" in *"$pattern"*) ;; *) continue ;; esac
    nscen=$((nscen + 1))
    st=$(date +%s)
    echo "-- $s"
    : >"$log.results"
    LOCKBOX="$SRC/$BUILD/lockbox" LOCKBOX_ASAN="$SRC/$BUILD/asan/lockbox" \
        RESULTS="$log.results" SRC="$SRC" bash "$s" </dev/null
    rc=$?
    p=$(grep -c '^pass ' "$log.results"); f=$(grep -c '^fail ' "$log.results")
    k=$(grep -c '^skip ' "$log.results")
    sed -n 's/^skip /  /p' "$log.results" >>"$work/skips"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "  FAIL $s exited $rc"; f=1
    elif [ $((p + f + k)) -eq 0 ]; then
        echo "  FAIL $s made no check"; f=1
    fi
    echo "   ($(basename "$s" .sh): $(($(date +%s) - st)) s)"
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + k))
done
if [ "$nscen" -eq 0 ]; then
    echo "  FAIL no integration scenario matches '$pattern'"
    failed=$((failed + 1))
fi

[ -n "$upid" ] && bg_join units "unit tests" "$upid"
[ -n "$apid" ] && bg_join asan "unit tests under AddressSanitizer and UBSan" "$apid"
[ -n "$vpid" ] && bg_join valgrind "unit tests under valgrind memcheck" "$vpid"
[ -n "$zpid" ] && bg_join analyze "static analysis (cppcheck, clang-tidy)" "$zpid"
bg_pids=""
phase_end
summary
