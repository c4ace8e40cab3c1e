#!/usr/bin/env bash
# Fuzz every target: the three readers (fuzz_graph, fuzz_params, fuzz_npy), the executor fuzzer
# (fuzz_exec: random valid graphs planned and run, checked differentially), and the capture
# adapter's writers read back by tlrt (fuzz/fuzz_writers.py, hypothesis).
#
#   scripts/fuzz.sh --seconds S     CI smoke run: S seconds per target on a TEMPORARY copy of each
#                                   seed corpus (the repository is not modified)
#   scripts/fuzz.sh --minutes M     campaign: M minutes per target on fuzz/corpus/<target>/ IN PLACE;
#                                   afterwards each corpus is minimized (-merge=1) and replaced
#   --only graph,exec,...           run a subset (names: graph params npy exec writers)
#
# libFuzzer targets build in build-fuzz with clang (-DTL_FUZZ=ON -DTL_SANITIZE=ON: ASan + UBSan,
# the library compiled with -fsanitize=fuzzer-no-link so coverage reaches inside tlrt). Any
# crash, sanitizer report, leak, timeout, out-of-memory or differential mismatch fails the script;
# the input is kept in build-fuzz/fuzz-artifacts/<target>/ and its path printed. The table at the
# end gives, per target: executions, corpus files before/after, libFuzzer's final coverage
# (cov: edges, ft: features) and findings. TL_FUZZ_CFLAGS (env) adds compiler flags.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$ROOT/build-fuzz
PY=${TL_PYTHON:-$ROOT/.venv/bin/python}
MODE=smoke
SECS=60
ONLY="exec graph params npy writers"
usage() { echo "usage: $0 [--seconds S | --minutes M] [--only graph,params,npy,exec,writers]" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) MODE=smoke; SECS=${2:-}; shift 2 ;;
        --minutes)
            MODE=campaign
            case "${2:-}" in '' | *[!0-9]*) usage ;; esac
            SECS=$(($2 * 60))
            shift 2
            ;;
        --only) ONLY=${2//,/ }; shift 2 ;;
        [0-9]*) SECS=$1; shift ;; # run_fuzzers.sh's positional seconds
        *) usage ;;
    esac
done
case "$SECS" in '' | *[!0-9]*) usage ;; esac

LIBFUZZ=()
for t in $ONLY; do
    case "$t" in graph | params | npy | exec) LIBFUZZ+=("fuzz_$t") ;; writers) ;; *) usage ;; esac
done

# TL_FUZZ_NO_BUILD=1: use the binaries already in build-fuzz (several campaigns side by side)
if [ ${#LIBFUZZ[@]} -gt 0 ] && [ -z "${TL_FUZZ_NO_BUILD:-}" ]; then
    command -v clang >/dev/null || { echo "fuzz: clang not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
    if ! echo '#include <omp.h>' | clang -fopenmp -x c -fsyntax-only - 2>/dev/null; then
        echo "fuzz: clang has no OpenMP runtime (apt-get install libomp-14-dev)" >&2
        exit 2
    fi
    CC=clang CXX=clang++ cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Release \
        -DTL_FUZZ=ON -DTL_SANITIZE=ON -DTL_BENCH=OFF \
        -DCMAKE_C_FLAGS="-g -fsanitize=fuzzer-no-link ${TL_FUZZ_CFLAGS:-}" \
        -DCMAKE_CXX_FLAGS="-g -fsanitize=fuzzer-no-link ${TL_FUZZ_CFLAGS:-}" >/dev/null
    cmake --build "$B" -j2 --target "${LIBFUZZ[@]}"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tl_fuzz.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
status=0
ROWS=()
row() { ROWS+=("$(printf '%-12s %12s %8s %8s %8s %8s  %s' "$@")"); }

for t in $ONLY; do
    [ "$t" = writers ] && continue
    bin=$B/fuzz_$t
    art=$B/fuzz-artifacts/$t
    rm -rf "$art"
    mkdir -p "$art" "$ROOT/fuzz/corpus/$t"
    if [ "$MODE" = campaign ]; then
        corpus=$ROOT/fuzz/corpus/$t
    else
        corpus=$TMP/$t/corpus
        mkdir -p "$corpus"
        cp -R "$ROOT/fuzz/corpus/$t/." "$corpus/"
    fi
    before=$(find "$corpus" -type f | wc -l)
    dict=()
    [ -f "$ROOT/fuzz/$t.dict" ] && dict=(-dict="$ROOT/fuzz/$t.dict")
    [ "$t" = exec ] && dict=(-max_len=2048) # graph-builder bytes: longer inputs add nothing but size
    log=$TMP/$t.log
    rc=0
    echo "== fuzz_$t: ${SECS}s ($MODE)" >&2
    (cd "$TMP" && "$bin" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$art/" "${dict[@]}" "$corpus" >"$log" 2>&1) || rc=$?
    execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    found=$(find "$art" -type f | wc -l)
    if [ "$MODE" = campaign ] && [ "$rc" -eq 0 ]; then
        # minimize in place: keep only the inputs that add coverage
        min=$TMP/$t.min
        mkdir -p "$min"
        "$bin" -merge=1 -rss_limit_mb=2048 -timeout=10 "$min" "$corpus" >"$TMP/$t.merge.log" 2>&1 || rc=$?
        if [ "$rc" -eq 0 ]; then
            find "$corpus" -type f -delete
            cp "$min"/* "$corpus"/ 2>/dev/null || true
        fi
    fi
    after=$(find "$corpus" -type f | wc -l)
    if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
        row "fuzz_$t" "${execs:-?}" "$before" "$after" "${cov:-?}" "${ft:-?}" "FAILED (exit $rc, $found artifacts)"
        grep -E 'ERROR|SUMMARY|runtime error|leak|fuzz_exec:|Test unit written|#0 |#1 |#2 |#3 ' "$log" | head -25 | sed 's/^/    /' >&2
        find "$art" -type f | sed 's/^/    crashing input: /' >&2
        cp "$log" "$art/log.txt"
        echo "    full log: $art/log.txt" >&2
        status=1
    else
        row "fuzz_$t" "${execs:-?}" "$before" "$after" "${cov:-?}" "${ft:-?}" "ok, 0 findings"
        rmdir "$art" 2>/dev/null || true
    fi
done

case " $ONLY " in
*" writers "*)
    # the capture adapter's graph JSON / params.bin writers, read back by tlinfo and tlrun
    [ -x "$ROOT/build/tlrun" ] || cmake --build "$ROOT/build" -j2 --target tlrun tlinfo >/dev/null
    db=$ROOT/fuzz/corpus/writers
    mkdir -p "$db"
    [ "$MODE" = smoke ] && { mkdir -p "$TMP/writers"; cp -R "$db/." "$TMP/writers/" 2>/dev/null || true; db=$TMP/writers; }
    before=$(find "$db" -type f 2>/dev/null | wc -l)
    log=$TMP/writers.log
    echo "== writers: ${SECS}s ($MODE)" >&2
    rc=0
    TL_BUILD_DIR=${TL_BUILD_DIR:-$ROOT/build} "$PY" "$ROOT/fuzz/fuzz_writers.py" --seconds "$SECS" --db "$db" >"$log" 2>&1 || rc=$?
    execs=$(awk '/^executions:/ {print $2}' "$log" | tail -1)
    after=$(find "$db" -type f 2>/dev/null | wc -l)
    if [ "$rc" -ne 0 ]; then
        row writers "${execs:-?}" "$before" "$after" - - "FAILED (exit $rc)"
        tail -40 "$log" | sed 's/^/    /' >&2
        status=1
    else
        row writers "${execs:-?}" "$before" "$after" - - "ok, 0 findings"
    fi
    ;;
esac

printf '\n%-12s %12s %8s %8s %8s %8s  %s\n' target executions before after cov ft result
printf '%s\n' "${ROWS[@]}"
exit $status
