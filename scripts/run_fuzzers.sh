#!/usr/bin/env bash
# Build and run the libFuzzer targets (fuzz/fuzz_*.c) with ASan + UBSan.
#   scripts/run_fuzzers.sh [seconds per target, default 60]
# Configures build-fuzz with clang (-DTL_FUZZ=ON -DTL_SANITIZE=ON -DTL_BENCH=OFF; the library itself is
# compiled with -fsanitize=fuzzer-no-link so libFuzzer sees coverage inside tlrt), builds the three
# targets, and runs each for the given time on a copy of its seed corpus (fuzz/corpus/<target>/) in a
# temporary directory, so the repository is not modified. Any crash, sanitizer report, leak, timeout
# or out-of-memory fails the script; the input that triggered it is kept in
# build-fuzz/fuzz-artifacts/<target>/ and its path printed. Per target it prints executions and the
# final corpus size. TL_FUZZ_CFLAGS (env) adds compiler flags, e.g. to get past another file's
# clang-only warning while it is being fixed: TL_FUZZ_CFLAGS=-Wno-error=pass-failed.
set -euo pipefail
SECS=${1:-60}
case "$SECS" in '' | *[!0-9]*) echo "usage: $0 [seconds]" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$ROOT/build-fuzz
TARGETS=(fuzz_graph fuzz_params fuzz_npy)

command -v clang >/dev/null || { echo "run_fuzzers: clang not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
if ! echo '#include <omp.h>' | clang -fopenmp -x c -fsyntax-only - 2>/dev/null; then
    echo "run_fuzzers: clang has no OpenMP runtime (apt-get install libomp-14-dev)" >&2
    exit 2
fi
CC=clang CXX=clang++ cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Release \
    -DTL_FUZZ=ON -DTL_SANITIZE=ON -DTL_BENCH=OFF \
    -DCMAKE_C_FLAGS="-g -fsanitize=fuzzer-no-link ${TL_FUZZ_CFLAGS:-}" \
    -DCMAKE_CXX_FLAGS="-g -fsanitize=fuzzer-no-link ${TL_FUZZ_CFLAGS:-}" >/dev/null
cmake --build "$B" -j2 --target "${TARGETS[@]}"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tl_fuzz.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
status=0
printf '\n%-12s %12s %10s %10s  %s\n' target executions seeds corpus result
for t in "${TARGETS[@]}"; do
    short=${t#fuzz_}
    art=$B/fuzz-artifacts/$short
    rm -rf "$art"
    mkdir -p "$art" "$TMP/$short/corpus"
    cp -R "$ROOT/fuzz/corpus/$short/." "$TMP/$short/corpus/"
    seeds=$(find "$TMP/$short/corpus" -type f | wc -l)
    dict=()
    [ -f "$ROOT/fuzz/$short.dict" ] && dict=(-dict="$ROOT/fuzz/$short.dict")
    log=$TMP/$short/log
    rc=0
    (cd "$TMP/$short" && "$B/$t" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$art/" "${dict[@]}" corpus >"$log" 2>&1) || rc=$?
    execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
    corpus=$(find "$TMP/$short/corpus" -type f | wc -l)
    found=$(find "$art" -type f | wc -l)
    if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
        printf '%-12s %12s %10s %10s  FAILED (exit %s)\n' "$t" "${execs:-?}" "$seeds" "$corpus" "$rc"
        grep -E 'ERROR|SUMMARY|runtime error|leak|Test unit written|#0 |#1 |#2 |#3 ' "$log" | head -25 | sed 's/^/    /'
        find "$art" -type f | sed 's/^/    crashing input: /'
        cp "$log" "$art/log.txt"
        echo "    full log: $art/log.txt"
        status=1
    else
        printf '%-12s %12s %10s %10s  ok\n' "$t" "${execs:-?}" "$seeds" "$corpus"
        rmdir "$art" 2>/dev/null || true
    fi
done
exit $status
