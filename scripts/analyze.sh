#!/bin/sh
# analyze.sh - static analysis: cppcheck and clang-tidy over the compile
# database $BUILD/compile_commands.json, which `make compdb` writes from the
# normal build's own flags (no build is needed).  Both run JOBS wide
# (default 2).  Exits non-zero on any finding.  Suppressions belong inline
# in the code, each with its reason.
#   BUILD=dir JOBS=n sh scripts/analyze.sh
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
JOBS=${JOBS:-2}
out=$BUILD/analyze
rm -rf "$out"
mkdir -p "$out/tidy"
"${MAKE:-make}" -s BUILD="$BUILD" compdb
db=$BUILD/compile_commands.json
rc=0
cppcheck --quiet -j"$JOBS" --error-exitcode=1 \
    --enable=warning,portability,performance \
    --inline-suppr --std=c11 -D__GNUC__ -I. --project="$db" \
    --suppress=missingIncludeSystem 2>"$out/cppcheck.txt" || rc=1
cat "$out/cppcheck.txt"
# clang-tidy one process per file, JOBS at a time, each into its own log so
# that the findings print in source order
checks='-*,clang-analyzer-*,-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling,bugprone-*,-bugprone-easily-swappable-parameters,-bugprone-reserved-identifier,-bugprone-narrowing-conversions,-bugprone-assignment-in-if-condition'
sed -n 's/^ *"file": "\(.*\)",$/\1/p' "$db" >"$out/files"
# shellcheck disable=SC2016
xargs -P "$JOBS" -n 1 sh -c '
    log=$0/tidy/$(printf "%s" "$3" | tr / _).txt
    clang-tidy --quiet -p "$1" --warnings-as-errors="*" --checks="$2" "$3" \
        >"$log" 2>&1 || echo "$3" >>"$0/tidy-failed"' \
    "$out" "$BUILD" "$checks" <"$out/files"
while read -r f; do
    cat "$out/tidy/$(printf '%s' "$f" | tr / _).txt"
done <"$out/files" >"$out/clang-tidy.txt"
[ -s "$out/tidy-failed" ] && rc=1
# paths relative to the source tree, as cppcheck prints them
grep -E "warning:|error:" "$out/clang-tidy.txt" | sed "s|^$(pwd)/||" || true
[ "$rc" -eq 0 ] && echo "analyze: no findings"
exit "$rc"
