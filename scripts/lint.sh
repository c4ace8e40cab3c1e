#!/usr/bin/env bash
# Lint: ruff (ruff.toml: bug-finding rules only) on the Python, and clang-format --dry-run --Werror
# (.clang-format) on the C sources. Exit 0 when both are clean, 1 otherwise; prints what is wrong.
#
#   bash scripts/lint.sh            both
#   bash scripts/lint.sh --py       ruff only
#   bash scripts/lint.sh --c        clang-format only
#   bash scripts/lint.sh --count    lines clang-format would change, per file and in total (no failure)
#
# scripts/test.sh runs it first.
# ruff comes from .venv (scripts/setup.sh pins it); clang-format from Debian (apt-get install clang-format).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

mode="${1:-all}"
case "$mode" in all | --py | --c | --count) ;; *) echo "usage: lint.sh [--py|--c|--count]" >&2; exit 2 ;; esac

# tracked sources only (build trees, .venv and generated files are never linted)
c_files() { git ls-files '*.c' '*.h' '*.inc' '*.cc'; }

# clang-format has no language for .inc: format it as C (--assume-filename)
cf() { # cf FILE ARGS...
  local f="$1"; shift
  case "$f" in
    *.inc) clang-format "$@" --assume-filename="${f%.inc}.c" <"$f" ;;
    *) clang-format "$@" "$f" ;;
  esac
}

rc=0
if [ "$mode" = all ] || [ "$mode" = --py ]; then
  RUFF="$ROOT/.venv/bin/ruff"
  [ -x "$RUFF" ] || RUFF="$(command -v ruff || true)"
  if [ -z "$RUFF" ]; then
    echo "lint: ruff not found (run scripts/setup.sh)" >&2; rc=1
  else
    echo "== ruff check ($("$RUFF" --version))"
    "$RUFF" check . || rc=1
  fi
fi

if [ "$mode" = all ] || [ "$mode" = --c ] || [ "$mode" = --count ]; then
  if ! command -v clang-format >/dev/null; then
    echo "lint: clang-format not found (apt-get install clang-format)" >&2; exit 1
  fi
  if [ "$mode" = --count ]; then
    total=0
    while read -r f; do
      n=$(cf "$f" --style=file | diff "$f" - | grep -c '^<')
      [ "$n" -gt 0 ] && printf '%6d  %s\n' "$n" "$f"
      total=$((total + n))
    done < <(c_files)
    echo "clang-format would change $total lines in $(c_files | wc -l) files ($(c_files | xargs cat | wc -l) lines)"
    exit 0
  fi
  echo "== clang-format --dry-run --Werror ($(clang-format --version))"
  bad=0
  while read -r f; do
    cf "$f" --style=file --dry-run --Werror >/dev/null 2>&1 || { echo "needs formatting: $f"; bad=$((bad + 1)); }
  done < <(c_files)
  [ "$bad" -eq 0 ] || { echo "clang-format: $bad files need formatting (see them: clang-format --dry-run FILE)"; rc=1; }
fi

[ "$rc" -eq 0 ] && echo "lint: clean"
exit "$rc"
