#!/bin/sh
# run.sh - runs every libFuzzer harness in build/fuzz/ for SECONDS each
# (default 60), each on a scratch copy of its seed corpus
# tests/fuzz/corpus/<name without fuzz_>/ so that the repository's corpus
# is not flooded with generated inputs, and with tests/fuzz/<name>.dict when
# there is one.  Prints one line per harness with its exec count; a crash,
# leak, timeout or OOM leaves its input in build/fuzz/artifacts/ (the path
# is printed) and makes the script exit non-zero.  Add such an input to the
# corpus as a regression case once the bug is fixed.  JOBS harnesses run at
# a time (default 2, one per core); each one's lines print when its batch is
# done, in the harnesses' order.
#   sh tests/fuzz/run.sh [SECONDS]        BUILD=dir selects another build,
#                                         JOBS=n how many run at once
set -u
cd "$(dirname "$0")/../.." || exit 2
secs=${1:-60}
BUILD=${BUILD:-build}
JOBS=${JOBS:-2}
case $secs in ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
case $JOBS in ''|0|*[!0-9]*) echo "$0: JOBS must be a number >= 1" >&2; exit 2 ;; esac
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
artifacts=$BUILD/fuzz/artifacts
mkdir -p "$artifacts" || exit 2
work=$(mktemp -d "${TMPDIR:-/tmp}/lockbox-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT INT TERM

# run_one HARNESS: fuzzes it, writes its report to $work/NAME.out and its
# status (0 ok, 1 failed) to $work/NAME.rc
run_one() {
    f=$1
    name=$(basename "$f")
    short=${name#fuzz_}
    corpus=$work/$short
    mkdir -p "$corpus"
    [ -d "tests/fuzz/corpus/$short" ] &&
        cp -R "tests/fuzz/corpus/$short"/. "$corpus"/
    seeds=$(ls "$corpus" | wc -l)
    set -- -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/$name-"
    [ -f "tests/fuzz/$short.dict" ] && set -- "$@" -dict="tests/fuzz/$short.dict"
    log=$work/$name.log
    before=$(ls "$artifacts" | grep -c "^$name-" || true)
    "$f" "$@" "$corpus" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    execs=${execs:-0}
    size=$(ls "$corpus" | wc -l)
    if [ "$rc" -eq 0 ]; then
        echo "ok   $name: $execs execs in ${secs}s, corpus $seeds -> $size"
        echo 0 >"$work/$name.rc"
    else
        crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
        after=$(ls "$artifacts" | grep -c "^$name-" || true)
        if [ -z "$crash" ] && [ "$after" -gt "$before" ]; then
            crash=$artifacts/$(ls -t "$artifacts" | grep "^$name-" | head -n1)
        fi
        echo "FAIL $name: exit $rc after $execs execs; input: ${crash:-none saved}"
        grep -E 'ERROR: |SUMMARY: |runtime error|^==[0-9]+==|#[0-9] 0x' "$log" |
            head -n 25 | sed 's/^/    /'
        echo 1 >"$work/$name.rc"
    fi >"$work/$name.out"
}

# report BATCH...: prints the finished harnesses' reports in order
report() {
    for n in "$@"; do
        cat "$work/$n.out" 2>/dev/null
        ran=$((ran + 1))
        [ "$(cat "$work/$n.rc" 2>/dev/null)" = 0 ] || failed=$((failed + 1))
    done
}

ran=0
failed=0
batch=""
inbatch=0
for f in "$BUILD"/fuzz/fuzz_*; do
    [ -f "$f" ] && [ -x "$f" ] || continue
    run_one "$f" &
    batch="$batch $(basename "$f")"
    inbatch=$((inbatch + 1))
    if [ "$inbatch" -ge "$JOBS" ]; then
        wait
        # shellcheck disable=SC2086
        report $batch
        batch=""
        inbatch=0
    fi
done
wait
# shellcheck disable=SC2086
[ -n "$batch" ] && report $batch
if [ "$ran" -eq 0 ]; then
    echo "no harnesses in $BUILD/fuzz/: build them with 'make fuzz'" >&2
    exit 2
fi
echo "$ran harnesses, $failed failed"
[ "$failed" -eq 0 ]
