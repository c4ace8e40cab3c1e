#!/usr/bin/env bash
# The main job on the bundled example (examples/model.py, a 4-16-16-3 MLP):
#   capture (PyTorch -> torchlean.ir.v1 graph + params.bin) -> validate (tlinfo) -> run (tlrun)
#   -> emit the PyTorch module (tlemit) -> diff tlrt vs emitted module vs original (tldiff).
# Installs what is missing first (scripts/setup.sh). Writes everything under out/demo/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
PY="$ROOT/.venv/bin/python"
export TL_PYTHON="$PY"

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 >/dev/null
OUT=out/demo
rm -rf "$OUT"; mkdir -p "$OUT"

echo "== 1. capture examples/model.py (DemoMLP) with torch.export"
"$PY" scripts/export_torchlean_graph.py examples/model.py DemoMLP "$OUT/graph.json" \
    --example-shape 2,4 --seed 0 --save-example "$OUT"

echo; echo "== 2. validate: tlinfo"
build/tlinfo "$OUT/graph.json" "$OUT/params.bin"

echo; echo "== 3. run natively: tlrun"
build/tlrun "$OUT/graph.json" "$OUT/params.bin" "$OUT/input.npy" -o "$OUT/tlrt_out.npy"
build/tlrun "$OUT/graph.json" "$OUT/params.bin" "$OUT/input.npy" --repeat 1000

echo; echo "== 4. emit a standalone PyTorch module: tlemit pytorch"
build/tlemit pytorch "$OUT/graph.json" "$OUT/params.bin" -o "$OUT/model_emitted.py"
sed -n '1,200p' "$OUT/model_emitted.py" | grep -E "^class|node [0-9]+:" || true

echo; echo "== 5. numerical equivalence: tldiff (tlrt vs emitted module vs original PyTorch model)"
build/tldiff "$OUT/graph.json" "$OUT/params.bin" "$OUT/input.npy" --reference "$OUT" --per-node \
    --json "$OUT/report.json"
echo; echo "demo: OK (files in $OUT/)"
