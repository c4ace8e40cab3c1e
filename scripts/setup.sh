#!/usr/bin/env bash
# Installs what tlrt needs and is missing: Debian packages (apt) and the Python venv .venv.
# Idempotent: a second run only checks. Used by scripts/demo.sh and scripts/test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

APT_PKGS=(build-essential cmake pkg-config libopenblas-dev libopenblas0-openmp libcjson-dev libbenchmark-dev clang
          libclang-rt-14-dev libomp-14-dev clang-format)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

VENV="$ROOT/.venv"
RUFF_VERSION=0.17.6   # scripts/lint.sh
# openvino: the second peer of bench/compare.py; hypothesis: random graphs of tests/py/test_fuzz_graphs.py
PY_PKGS=(torch==2.13.0 numpy pytest safetensors onnx onnxruntime openvino hypothesis "ruff==$RUFF_VERSION")
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import torch, numpy, pytest, safetensors, onnx, onnxruntime, openvino, hypothesis; assert torch.__version__.startswith('2.13.0')" 2>/dev/null ||
   [ "$("$VENV/bin/ruff" --version 2>/dev/null)" != "ruff $RUFF_VERSION" ]; then
  echo "setup: installing Python packages into .venv: ${PY_PKGS[*]}"
  "$VENV/bin/pip" install -q "${PY_PKGS[@]}"
fi
