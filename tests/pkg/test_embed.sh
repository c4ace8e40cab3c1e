#!/usr/bin/env bash
# Installs the C library from a CMake build folder into a temporary prefix, builds
# examples/embed against the INSTALLED package three ways (pkg-config + make, find_package with
# tlrt::tlrt, find_package with tlrt::tlrt_static), runs each on the bundled graph and checks the
# numbers against NumPy float64 and PyTorch (check_embed.py),
# and builds it once more against the copy in the installed wheel (PYTHON's tlrt.paths()).
# usage: test_embed.sh BUILD_DIR PYTHON
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$(cd "$1" && pwd)"; PY="$2"; case "$PY" in /*) ;; *) PY="$PWD/$PY" ;; esac
T="$(mktemp -d "${TMPDIR:-/tmp}/tlrt-embed.XXXXXX")"
trap 'rm -rf "$T"' EXIT
P="$T/prefix"
cmake --install "$BUILD" --prefix "$P" >/dev/null
LIBDIR="$(dirname "$(find "$P" -name libtlrt.so -print -quit)")"
for f in "$LIBDIR/libtlrt.so" "$LIBDIR/libtlrt.a" "$LIBDIR/pkgconfig/tlrt.pc" "$LIBDIR/cmake/tlrt/tlrtConfig.cmake" \
         "$P/include/tlrt/tlrt.h" "$P/include/tlrt/tl_ops.def" "$P/bin/tlrun" "$P/bin/tlinfo" "$P/bin/tlemit" "$P/bin/tldiff"; do
  [ -e "$f" ] || { echo "test_embed: $f was not installed"; exit 1; }
done
cp -r "$ROOT/examples/embed" "$T/src"
G=("$ROOT/examples/graph.json" "$ROOT/examples/params.bin" "$ROOT/examples/input.npy")
uses_lib() {   # binary: does it load the installed libtlrt.so?
  local got; got="$(ldd "$1" | awk '/libtlrt/ {print $3}')"
  [ -n "$got" ] && [ "$(readlink -f "$got")" = "$(readlink -f "$LIBDIR/libtlrt.so")" ]
}
check() {   # name binary
  "$2" "${G[@]}" > "$T/$1.txt"
  (cd "$ROOT/tests/pkg" && "$PY" check_embed.py "$T/$1.txt") | sed "s/^/  $1: /"
  set +e; "$2" "${G[0]}" "${G[1]}" "$T/missing.npy" 2> "$T/$1.err"; rc=$?; set -e
  [ $rc -eq 2 ] && grep -q "missing.npy: cannot open" "$T/$1.err" || { echo "$1: bad-input exit $rc: $(cat "$T/$1.err")"; exit 1; }
}
# 1. pkg-config (the Makefile)
PKG_CONFIG_PATH="$LIBDIR/pkgconfig" make -s -C "$T/src" >/dev/null
[ "$(PKG_CONFIG_PATH="$LIBDIR/pkgconfig" pkg-config --modversion tlrt)" = 0.1.0 ]
uses_lib "$T/src/embed" || { echo "pkg-config build does not use the installed libtlrt.so"; exit 1; }
check pkg-config "$T/src/embed"
# 2. find_package(tlrt) -> tlrt::tlrt (shared) and tlrt::tlrt_static
for kind in shared static; do
  st=OFF; [ $kind = static ] && st=ON
  cmake -S "$T/src" -B "$T/b-$kind" -DCMAKE_PREFIX_PATH="$P" -DTLRT_STATIC=$st -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$T/b-$kind" >/dev/null
  if [ $kind = static ]; then
    ! ldd "$T/b-$kind/embed" | grep -q libtlrt || { echo "static build links libtlrt.so"; exit 1; }
  else
    uses_lib "$T/b-$kind/embed" || { echo "find_package build does not use the installed libtlrt.so"; exit 1; }
  fi
  check "find_package-$kind" "$T/b-$kind/embed"
done
# 3. the copy inside the installed wheel (python -c 'import tlrt; print(tlrt.paths())')
WP="$("$PY" -c 'import tlrt; print(tlrt.paths()["cmake_prefix"])')"
cmake -S "$T/src" -B "$T/b-wheel" -DCMAKE_PREFIX_PATH="$WP" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$T/b-wheel" >/dev/null
check "wheel-find_package" "$T/b-wheel/embed"
WPC="$("$PY" -c 'import tlrt; print(tlrt.paths()["pkgconfig"])')"
[ "$(PKG_CONFIG_PATH="$WPC" pkg-config --variable=libdir tlrt | xargs readlink -f)" = "$(readlink -f "$WP/lib")" ]
echo "test_embed: OK (pkg-config, find_package shared, find_package static, the wheel's find_package + tlrt.pc)"
