#!/usr/bin/env bash
# Runs every tlrt test: installs what is missing (scripts/setup.sh), builds (Release), runs the C
# tests (ctest), the Python tests (pytest), then the ASan+UBSan build's tests, then the libFuzzer
# targets for the three readers (60 s each; TL_FUZZ_SECONDS overrides, 0 skips).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# --coverage: line and branch coverage of the C code instead (scripts/coverage.sh)
if [ "${1:-}" = "--coverage" ]; then exec bash scripts/coverage.sh "${@:2}"; fi
bash scripts/setup.sh
PY="$ROOT/.venv/bin/python"
JOBS=2

SUITES=(); CURRENT=""
step() { [ -n "$CURRENT" ] && SUITES+=("$CURRENT"); CURRENT="$*"; printf '\n=== %s\n' "$*"; }
trap 'rc=$?; if [ $rc -ne 0 ]; then printf "\n=== FAILED: %s\nsteps: %d passed, 1 failed\n" "$CURRENT" "${#SUITES[@]}"; fi' EXIT

step "lint (ruff, clang-format)"
bash scripts/lint.sh

step "build (Release)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$JOBS"

step "C tests (ctest, Release)"
ctest --test-dir build --output-on-failure

step "Python tests (pytest)"
TL_BUILD_DIR="$ROOT/build" TL_PYTHON="$PY" "$PY" -m pytest -q tests/py

step "Python package: wheel in a clean venv, API tests on the installed package, C embed example (tests/pkg/run.sh)"
bash tests/pkg/run.sh "$ROOT/build"

step "ASan+UBSan build"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTL_SANITIZE=ON -DTL_BENCH=OFF >/dev/null
cmake --build build-asan -j"$JOBS"

step "C tests (ctest, ASan+UBSan)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan --output-on-failure

step "Python tests against the ASan+UBSan tools (pytest)"
TL_BUILD_DIR="$ROOT/build-asan" TL_PYTHON="$PY" "$PY" -m pytest -q -m "not no_asan" tests/py

step "ThreadSanitizer build: concurrent sessions and the worker pool (test_threads, test_pool)"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTL_TSAN=ON -DTL_BENCH=OFF >/dev/null
cmake --build build-tsan -j"$JOBS" --target test_threads test_pool
TSAN_OPTIONS=halt_on_error=1 build-tsan/test_threads
TSAN_OPTIONS=halt_on_error=1 build-tsan/test_pool

FUZZ_SECONDS="${TL_FUZZ_SECONDS:-60}"
if [ "$FUZZ_SECONDS" != "0" ]; then
  step "fuzzers (${FUZZ_SECONDS}s each)"
  bash scripts/fuzz.sh --seconds "$FUZZ_SECONDS"
fi
step "all tests passed"
printf 'steps: %d passed, 0 failed\n' "${#SUITES[@]}"
