#!/usr/bin/env bash
# Build tlrt, run every benchmark and render the dashboard.
#
#   bash scripts/bench.sh            full run (~10 minutes on 2 cores)
#   bash scripts/bench.sh --quick    smoke run (~2 minutes: fewer sizes, shorter timing, no memory)
#   bash scripts/bench.sh --docs     also rewrite the tables of docs/benchmarks.md (bench/report.py)
#                                    and docs/dashboard.png
#
# Environment: TL_BUILD_DIR (default build), PYTHON (default .venv/bin/python).
# Writes bench/results/{tlbench,tlbench_haswell,layers,compare}.json and dashboard.html
# (Google Benchmark JSON) and, when chromium is installed, bench/results/dashboard.png.
# Steps:
#   1. cmake configure + build (Release) in $TL_BUILD_DIR
#   2. capture the zoo (tests/zoo + bench/zoo_large.py) into bench/out/models/<name>/
#      (graph.json + params.bin for tlrt, model.onnx for ORT, state_dict.pt for PyTorch)
#   3. tlbench: kernels (scalar/avx2/avx512), sgemm, FMA peak, memory bandwidth, models
#   4. tlbench again, sgemm only, with TL_BLAS_CORETYPE=Haswell (OpenBLAS fixes its core type
#      when it is loaded, so the comparison needs a second process)
#   5. bench/layers.py: per-node GEMM efficiency of tlrt vs the measured sgemm rate
#   6. bench/compare.py: tlrt vs PyTorch eager vs ONNX Runtime, interleaved, + peak memory
#   7. bench/dashboard.py -> bench/results/dashboard.html (+ headless chromium screenshot)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
QUICK=0
DOCS=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    --docs) DOCS=1 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument: $a" >&2; exit 2 ;;
  esac
done
BUILD="${TL_BUILD_DIR:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
PY="${PYTHON:-$ROOT/.venv/bin/python}"
RES="$ROOT/bench/results"
MODELS_DIR="$ROOT/bench/out/models"
mkdir -p "$RES" "$MODELS_DIR"
t0=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - t0 ))s] $*"; }

step "build ($BUILD)"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j2 --target tlbench tlrt_c >/dev/null
[ -x "$BUILD/tlbench" ] || { echo "bench.sh: $BUILD/tlbench was not built (Google Benchmark missing?)" >&2; exit 1; }
export TL_BUILD_DIR="$BUILD"

step "capture the zoo into $MODELS_DIR"
"$PY" bench/compare.py --capture-only "$MODELS_DIR" 2> >(grep -v -i "warn" >&2) || \
  echo "bench.sh: some captures failed (see above); going on with the others" >&2
MODEL_LIST=$(for d in "$MODELS_DIR"/*/; do [ -f "$d/graph.json" ] && printf '%s,' "${d%/}"; done)

if [ "$QUICK" = 1 ]; then
  KFILTER='^(peak/|mem/.*/(L2|DRAM)$|kern/.*/262144$|sgemm/|model/)'
  MINTIME=0.05
  CMP_ARGS=(--quick --no-memory --budget 0.5)
  LAYER_ARGS=(--budget 0.3 --min-runs 3)
else
  KFILTER='.'
  MINTIME=0.1
  CMP_ARGS=(--budget 1.5)
  LAYER_ARGS=(--budget 1.0 --min-runs 5)
fi

step "tlbench (kernels, sgemm, peak, bandwidth, models)"
unset OPENBLAS_CORETYPE TL_BLAS_CORETYPE || true
"$BUILD/tlbench" --benchmark_filter="$KFILTER" --benchmark_min_time="$MINTIME" \
  --tl_models="$MODEL_LIST" --benchmark_out="$RES/tlbench.json" --benchmark_out_format=json \
  | grep -v -E "^\s*$" | tail -n 400

step "tlbench sgemm with TL_BLAS_CORETYPE=Haswell"
TL_BLAS_CORETYPE=Haswell "$BUILD/tlbench" --benchmark_filter='^(sgemm/|peak/fma)' \
  --benchmark_min_time="$MINTIME" --benchmark_out="$RES/tlbench_haswell.json" \
  --benchmark_out_format=json

step "layers: per-node GEMM efficiency of tlrt (TL_SESSION_PROFILE)"
"$PY" bench/layers.py --work-dir "$MODELS_DIR" --build-dir "$BUILD" --peak-from "$RES/tlbench.json" \
  --out "$RES/layers.json" "${LAYER_ARGS[@]}"

step "compare: tlrt vs PyTorch eager vs ONNX Runtime"
"$PY" bench/compare.py --reuse-capture --work-dir "$MODELS_DIR" --build-dir "$BUILD" \
  --out "$RES/compare.json" "${CMP_ARGS[@]}" 2> >(grep -v -i "warn" >&2)

step "dashboard"
"$PY" bench/dashboard.py --results "$RES"
CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -n "$CHROME" ]; then
  "$CHROME" --headless --no-sandbox --disable-gpu --hide-scrollbars --screenshot="$RES/dashboard.png" \
    --window-size=1400,1800 "file://$RES/dashboard.html" >/dev/null 2>&1 || \
    echo "bench.sh: chromium screenshot failed" >&2
  [ -f "$RES/dashboard.png" ] && echo "screenshot: $RES/dashboard.png"
else
  echo "bench.sh: chromium not found; skipping the screenshot (apt-get install -y chromium)"
fi
if [ "$DOCS" = 1 ]; then
  step "docs: docs/benchmarks.md tables and docs/dashboard.png"
  "$PY" bench/report.py --results "$RES" --doc "$ROOT/docs/benchmarks.md"
  [ -f "$RES/dashboard.png" ] && cp "$RES/dashboard.png" "$ROOT/docs/dashboard.png"
fi
step "done in $(( $(date +%s) - t0 ))s: $RES/dashboard.html"
