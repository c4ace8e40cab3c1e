#!/usr/bin/env bash
# Command-line error tests: every directory tests/cli/cases/<case>/ holds
#   cmd              one line: tool name, then arguments (paths relative to the case dir,
#                    split on whitespace, no quoting; the word '' is an empty argument)
#   expected_stderr  the exact stderr (one line for an error; empty for success)
#   expected_status  the exit status, e.g. 2
# optionally
#   stdout_lines     lines that must each appear, whole and exact, as a line of stdout
#   stdout_regex     extended regular expressions that must each match some line of stdout
#   env              KEY=VALUE lines set for the command (e.g. TL_MEMORY_LIMIT, so that a
#                    message naming the memory limit is the same on every machine)
# plus whatever input files the command names. Each case runs from its own directory.
# Allocation failures are part of what is tested (exit status 3), so a sanitizer build is told to
# let malloc return NULL instead of aborting.
# usage: run_cli_tests.sh BUILD_DIR [NAME_FILTER]   (prints "N passed, M failed")
set -u
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: run_cli_tests.sh BUILD_DIR [NAME_FILTER]" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
filter=${2:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}allocator_may_return_null=1"
pass=0
fail=0
for dir in "$here"/cases/*/; do
  dir=${dir%/}
  name=$(basename "$dir")
  if [ -n "$filter" ] && [[ "$name" != *"$filter"* ]]; then continue; fi
  if [ ! -f "$dir/cmd" ] || [ ! -f "$dir/expected_stderr" ] || [ ! -f "$dir/expected_status" ]; then
    echo "FAIL $name: needs cmd, expected_stderr and expected_status"
    fail=$((fail + 1))
    continue
  fi
  read -r -a words < "$dir/cmd"
  if [ ${#words[@]} -lt 1 ]; then
    echo "FAIL $name: empty cmd"
    fail=$((fail + 1))
    continue
  fi
  for k in "${!words[@]}"; do [ "${words[$k]}" = "''" ] && words[$k]=""; done
  exe="$build/${words[0]}"
  if [ ! -x "$exe" ]; then
    echo "FAIL $name: $exe is not built"
    fail=$((fail + 1))
    continue
  fi
  want_status=$(tr -d '[:space:]' < "$dir/expected_status")
  errfile=$(mktemp)
  outfile=$(mktemp)
  envs=()
  [ -f "$dir/env" ] && mapfile -t envs < "$dir/env"
  (cd "$dir" && env "${envs[@]}" timeout 60 "$exe" "${words[@]:1}" > "$outfile" 2> "$errfile")
  status=$?
  # (the sanitizer's own notice of a refused allocation is not the tool's output)
  got_err=$(grep -v '^==[0-9]*==WARNING: AddressSanitizer failed to allocate' "$errfile")
  rm -f "$errfile"
  want_err=$(cat "$dir/expected_stderr")
  missing=()
  if [ -f "$dir/stdout_lines" ]; then
    while IFS= read -r line; do
      grep -Fxq -- "$line" "$outfile" || missing+=("line: $line")
    done < "$dir/stdout_lines"
  fi
  if [ -f "$dir/stdout_regex" ]; then
    while IFS= read -r re; do
      grep -Eq -- "$re" "$outfile" || missing+=("regex: $re")
    done < "$dir/stdout_regex"
  fi
  rm -f "$outfile"
  if [ "$status" = "$want_status" ] && [ "$got_err" == "$want_err" ] && [ ${#missing[@]} -eq 0 ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL $name: ${words[*]}"
    [ "$status" = "$want_status" ] || echo "  status: got $status, want $want_status"
    if [ "$got_err" != "$want_err" ]; then
      echo "  stderr got:  $got_err"
      echo "  stderr want: $want_err"
    fi
    for m in "${missing[@]}"; do echo "  stdout lacks $m"; done
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
