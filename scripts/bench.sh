#!/usr/bin/env bash
# Build tlrt, run every benchmark and render the dashboard.
#
#   bash scripts/bench.sh            full run, both zoos (~15 minutes on 2 cores)
#   bash scripts/bench.sh --quick    smoke run (~3 minutes: fewer sizes, shorter timing, no memory)
#   bash scripts/bench.sh --docs     also rewrite the tables of docs/benchmarks.md and README.md (bench/report.py)
#                                    and docs/dashboard.png
#   bash scripts/bench.sh --zoo real only the realistic zoo (bench/zoo_real.py) against eager, ORT
#                                    and OpenVINO (+ the FMA/sgemm peaks): ~7 min full, ~2 min --quick
#   --zoo base                       only the base zoo (tests/zoo + zoo_large); default: all
#
# Environment: TL_BUILD_DIR (default build), PYTHON (default .venv/bin/python).
# Writes bench/results/{tlbench,tlbench_haswell,layers,compare}.json (base zoo),
# {compare_real,layers_real,tlbench_peaks}.json (realistic zoo; tlbench_peaks only with --zoo real) and dashboard.html
# (Google Benchmark JSON) and, when chromium is installed, bench/results/dashboard.png.
# Steps:
#   1. cmake configure + build (Release) in $TL_BUILD_DIR
#   2. capture the zoo (tests/zoo + bench/zoo_large.py + bench/zoo_real.py) into bench/out/models/<name>/
#      (graph.json + params.bin for tlrt, model.onnx for ORT, state_dict.pt for PyTorch)
#   3. tlbench: kernels (scalar/avx2/avx512), sgemm, FMA peak, memory bandwidth, models
#   4. tlbench again, sgemm only, with TL_BLAS_CORETYPE=Haswell (OpenBLAS fixes its core type
#      when it is loaded, so the comparison needs a second process)
#   5. bench/layers.py: per-node GFLOP/s of tlrt vs the FMA peak and the sgemm rate (base zoo:
#      layers.json; realistic zoo at threads 1,2: layers_real.json)
#   6. bench/compare.py: tlrt vs PyTorch eager vs ONNX Runtime vs OpenVINO, interleaved, + peak
#      memory (base zoo: compare.json); the realistic zoo at every (model, batch, threads 1 and 2)
#      with tlrt/best-peer and the assert_close checks (compare_real.json; layers_real.json from
#      step 5 profiles the same rows)
#   7. bench/dashboard.py -> bench/results/dashboard.html (+ headless chromium screenshot)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
QUICK=0
DOCS=0
ZOO=all
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --docs) DOCS=1 ;;
    --zoo) shift; ZOO="${1:-}" ;;
    --zoo=*) ZOO="${1#--zoo=}" ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
case "$ZOO" in all|base|real) ;; *) echo "bench.sh: --zoo takes all, base or real (got '$ZOO')" >&2; exit 2 ;; esac
BASE=1; REAL=1
[ "$ZOO" = real ] && BASE=0
[ "$ZOO" = base ] && REAL=0
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
"$PY" bench/compare.py --zoo "$ZOO" --capture-only "$MODELS_DIR" 2> >(grep -v -i "warn" >&2) || \
  echo "bench.sh: some captures failed (see above); going on with the others" >&2
# tlbench's C-side model benchmarks: the base zoo only (the realistic zoo is timed by compare.py)
MODEL_LIST=""
if [ "$BASE" = 1 ]; then
  for n in $("$PY" bench/compare.py --list --zoo base | cut -d' ' -f1); do
    [ -f "$MODELS_DIR/$n/graph.json" ] && MODEL_LIST+="$MODELS_DIR/$n,"
  done
fi

if [ "$QUICK" = 1 ]; then
  KFILTER='^(peak/|mem/.*/(L2|DRAM)$|kern/.*/262144$|sgemm/|model/)'
  MINTIME=0.05
  CMP_ARGS=(--quick --no-memory --budget 0.5)
  LAYER_ARGS=(--budget 0.3 --min-runs 3)
  REAL_CMP_ARGS=(--quick --budget 0.3)
  REAL_LAYER_ARGS=(--quick --budget 0.2 --min-runs 3)
else
  KFILTER='.'
  MINTIME=0.1
  CMP_ARGS=(--budget 1.5)
  LAYER_ARGS=(--budget 1.0 --min-runs 5)
  REAL_CMP_ARGS=(--budget 1.0)
  REAL_LAYER_ARGS=(--budget 0.4 --min-runs 5)
fi
# only the realistic zoo: the machine references (FMA peak, sgemm) are all tlbench has to give;
# they go to tlbench_peaks.json so a full run's tlbench.json (kernel tables) stays
TLB_OUT="$RES/tlbench.json"
if [ "$BASE" = 0 ]; then
  KFILTER='^(peak/|sgemm/[0-9]+/threads:1)'
  TLB_OUT="$RES/tlbench_peaks.json"
fi


step "tlbench (kernels, sgemm, peak, bandwidth, models)"
unset OPENBLAS_CORETYPE TL_BLAS_CORETYPE || true
"$BUILD/tlbench" --benchmark_filter="$KFILTER" --benchmark_min_time="$MINTIME" \
  --tl_models="$MODEL_LIST" --benchmark_out="$TLB_OUT" --benchmark_out_format=json \
  | grep -v -E "^\s*$" | tail -n 400

if [ "$BASE" = 1 ]; then
  step "tlbench sgemm with TL_BLAS_CORETYPE=Haswell"
  TL_BLAS_CORETYPE=Haswell "$BUILD/tlbench" --benchmark_filter='^(sgemm/|peak/fma)' \
    --benchmark_min_time="$MINTIME" --benchmark_out="$RES/tlbench_haswell.json" \
    --benchmark_out_format=json
fi

if [ "$BASE" = 1 ]; then
  step "layers: per-node GEMM efficiency of tlrt (TL_SESSION_PROFILE), base zoo"
  "$PY" bench/layers.py --zoo base --batches 1,64 --work-dir "$MODELS_DIR" --build-dir "$BUILD" \
    --peak-from "$RES/tlbench.json" --out "$RES/layers.json" "${LAYER_ARGS[@]}"

  step "compare: tlrt vs PyTorch eager vs ONNX Runtime vs OpenVINO, base zoo"
  "$PY" bench/compare.py --zoo base --reuse-capture --work-dir "$MODELS_DIR" --build-dir "$BUILD" \
    --out "$RES/compare.json" "${CMP_ARGS[@]}" 2> >(grep -v -i "warn" >&2)
fi
if [ "$REAL" = 1 ]; then
  step "layers: per-node profile of the realistic zoo, threads 1 and 2"
  "$PY" bench/layers.py --zoo real --threads 1,2 --work-dir "$MODELS_DIR" --build-dir "$BUILD" \
    --peak-from "$TLB_OUT" --out "$RES/layers_real.json" "${REAL_LAYER_ARGS[@]}"

  step "compare: the realistic zoo, tlrt / best of (eager, ORT, OpenVINO)"
  "$PY" bench/compare.py --zoo real --reuse-capture --no-memory --work-dir "$MODELS_DIR" --build-dir "$BUILD" \
    --out "$RES/compare_real.json" "${REAL_CMP_ARGS[@]}" 2> >(grep -v -i "warn" >&2)
fi

step "dashboard"
"$PY" bench/dashboard.py --results "$RES"
CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -n "$CHROME" ]; then
  "$CHROME" --headless --no-sandbox --disable-gpu --hide-scrollbars --screenshot="$RES/dashboard.png" \
    --window-size=1400,2400 "file://$RES/dashboard.html" >/dev/null 2>&1 || \
    echo "bench.sh: chromium screenshot failed" >&2
  [ -f "$RES/dashboard.png" ] && echo "screenshot: $RES/dashboard.png"
else
  echo "bench.sh: chromium not found; skipping the screenshot (apt-get install -y chromium)"
fi
if [ "$DOCS" = 1 ]; then
  step "docs: docs/benchmarks.md tables and docs/dashboard.png"
  "$PY" bench/report.py --results "$RES" --doc "$ROOT/docs/benchmarks.md" --readme "$ROOT/README.md"
  [ -f "$RES/dashboard.png" ] && cp "$RES/dashboard.png" "$ROOT/docs/dashboard.png"
fi
step "done in $(( $(date +%s) - t0 ))s: $RES/dashboard.html"
