#!/bin/sh
# run.sh - runs every libFuzzer harness in build/fuzz/ for SECONDS each
# (default 60), each on a scratch copy of its seed corpus
# tests/fuzz/corpus/<name without fuzz_>/ so that the repository's corpus
# is not flooded with generated inputs, and with tests/fuzz/<name>.dict when
# there is one.  Prints one line per harness with its exec count; a crash,
# leak, timeout or OOM leaves its input in build/fuzz/artifacts/ (the path
# is printed) and makes the script exit non-zero.  Add such an input to the
# corpus as a regression case once the bug is fixed.
#   sh tests/fuzz/run.sh [SECONDS]        BUILD=dir selects another build
set -u
cd "$(dirname "$0")/../.." || exit 2
secs=${1:-60}
BUILD=${BUILD:-build}
case $secs in ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
artifacts=$BUILD/fuzz/artifacts
mkdir -p "$artifacts" || exit 2
work=$(mktemp -d "${TMPDIR:-/tmp}/lockbox-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT INT TERM

ran=0
failed=0
for f in "$BUILD"/fuzz/fuzz_*; do
    [ -f "$f" ] && [ -x "$f" ] || continue
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
    ran=$((ran + 1))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    execs=${execs:-0}
    size=$(ls "$corpus" | wc -l)
    if [ "$rc" -eq 0 ]; then
        echo "ok   $name: $execs execs in ${secs}s, corpus $seeds -> $size"
    else
        failed=$((failed + 1))
        crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
        after=$(ls "$artifacts" | grep -c "^$name-" || true)
        if [ -z "$crash" ] && [ "$after" -gt "$before" ]; then
            crash=$artifacts/$(ls -t "$artifacts" | grep "^$name-" | head -n1)
        fi
        echo "FAIL $name: exit $rc after $execs execs; input: ${crash:-none saved}"
        grep -E 'ERROR: |SUMMARY: |runtime error|^==[0-9]+==|#[0-9] 0x' "$log" |
            head -n 25 | sed 's/^/    /'
    fi
done
if [ "$ran" -eq 0 ]; then
    echo "no harnesses in $BUILD/fuzz/: build them with 'make fuzz'" >&2
    exit 2
fi
echo "$ran harnesses, $failed failed"
[ "$failed" -eq 0 ]
