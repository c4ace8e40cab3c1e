#!/usr/bin/env bash
# The package test: builds the wheel (scikit-build-core, the same CMake project) in a clean venv,
# installs it there, runs the Python API tests against the INSTALLED package (tests/pkg/test_api.py),
# then installs the C library into a temporary prefix and builds + runs examples/embed against it
# (tests/pkg/test_embed.sh).
#   venv: build-pkg/venv (made once; TL_PKG_VENV overrides): numpy, pytest, scikit-build-core
#         pinned; torch is NOT installed a second time: a .pth file appends the main .venv's
#         site-packages (after the venv's own), so torch==2.13.0 comes from there.
#   wheel build folder: build-pkg/wheel (kept between runs: incremental).
# usage: tests/pkg/run.sh [BUILD_DIR]   (BUILD_DIR: the CMake build for the embed test, default build)
set -euo pipefail
quiet() { "$@" 2> >(grep -v "^WARNING: Location" >&2); }   # pip: drop the unused-index notes
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BUILD="${1:-${TL_BUILD_DIR:-$ROOT/build}}"
MAIN_PY="$ROOT/.venv/bin/python"
VENV="${TL_PKG_VENV:-$ROOT/build-pkg/venv}"
OUTW="$ROOT/build-pkg/dist"
t0=$(date +%s)
now() { echo $(( $(date +%s) - t0 ))s; }

if [ ! -x "$VENV/bin/python" ]; then
  BASE_PY="$("$MAIN_PY" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')"
  "$BASE_PY" -m venv "$VENV"
  quiet "$VENV/bin/pip" install -q --disable-pip-version-check numpy==2.4.6 pytest==9.2.0 scikit-build-core==1.1.2
fi
MAIN_SITE="$("$MAIN_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
VENV_SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$MAIN_SITE" > "$VENV_SITE/zz_tlrt_main_venv.pth"    # torch (+ safetensors) from the main venv
echo "pkg: venv ready ($(now))"

rm -rf "$OUTW"
quiet "$VENV/bin/pip" wheel -q --disable-pip-version-check --no-build-isolation --no-deps -w "$OUTW" \
  -C build-dir="$ROOT/build-pkg/wheel" "$ROOT"
WHEEL="$(ls "$OUTW"/tlrt-*.whl)"
quiet "$VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"
echo "pkg: built and installed $(basename "$WHEEL") ($(now))"

# Not from the source tree: run from an empty folder, no TL_BUILD_DIR / TLRT_* overrides.
W="$(mktemp -d "${TMPDIR:-/tmp}/tlrt-pkg.XXXXXX")"
trap 'rm -rf "$W"' EXIT
(cd "$W" && env -u TL_BUILD_DIR -u TLRT_LIBRARY -u TLRT_BIN_DIR -u TLRT_CAPTURE_SCRIPT -u PYTHONPATH \
   "$VENV/bin/python" -m pytest -q "$ROOT/tests/pkg")
echo "pkg: API tests passed ($(now))"

cmake --build "$BUILD" -j2 >/dev/null
bash "$ROOT/tests/pkg/test_embed.sh" "$BUILD" "$VENV/bin/python"
echo "pkg: all passed ($(now))"
