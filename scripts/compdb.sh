#!/bin/sh
# compdb.sh - writes a compile database (compile_commands.json) to stdout
# for the given sources, one entry each, from the compiler command line the
# Makefile uses for the normal build; nothing is compiled.  The Makefile's
# compdb target calls it, so the flags cannot drift from the real build.
#   compdb.sh DIR OBJDIR "CC CFLAGS..." SOURCE...
set -eu
dir=$1 objdir=$2 cmd=$3
shift 3
# JSON string escaping of backslashes and double quotes
esc() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
dir_j=$(esc "$dir")
cmd_j=$(esc "$cmd")
echo "["
sep=""
for src in "$@"; do
    src_j=$(esc "$src")
    obj_j=$(esc "$objdir/${src%.c}.o")
    printf '%s  {\n    "directory": "%s",\n    "file": "%s",\n' "$sep" "$dir_j" "$src_j"
    printf '    "command": "%s -c -o %s %s"\n  }' "$cmd_j" "$obj_j" "$src_j"
    sep=",
"
done
printf '\n]\n'
