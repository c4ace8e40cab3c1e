#!/usr/bin/env bash
# Line and branch coverage of the C code (gcc --coverage, gcov's JSON output, no gcovr/lcov needed).
#
#   scripts/coverage.sh [--no-py] [--report-only]
#
# Builds build-cov (Debug, -DTL_COVERAGE=ON: --coverage -O0), clears old counters, runs ctest (the C
# tests, the CLI error cases, the fuzz corpus replays) and the Python tests that drive the built
# tools (tests/py, less the capture-model zoo and the TorchLean conformance corpus, the two that
# take minutes), then prints line and branch coverage per directory (ir/ import/ runtime/ ops/
# kernels/ emit/ tools/) and in total, and the least-covered files. Nothing is written into the
# source tree; the per-file table is also left in build-cov/coverage.txt.
# --no-py skips the Python tests (C tests + CLI only); --report-only reuses existing counters.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$ROOT/build-cov
PY=${TL_PYTHON:-$ROOT/.venv/bin/python}
RUN_PY=1
RUN=1
for a in "$@"; do
    case "$a" in
        --no-py) RUN_PY=0 ;;
        --report-only) RUN=0 ;;
        *) echo "usage: $0 [--no-py] [--report-only]" >&2; exit 2 ;;
    esac
done
command -v gcov >/dev/null || { echo "coverage: gcov not found (it comes with gcc)" >&2; exit 2; }

if [ "$RUN" = 1 ]; then
    cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Debug -DTL_COVERAGE=ON -DTL_BENCH=OFF >/dev/null
    cmake --build "$B" -j"${TL_JOBS:-2}"
    find "$B" -name '*.gcda' -delete
    # a failing test still leaves its counters; the report is what this script is for
    ctest --test-dir "$B" --output-on-failure -j"${TL_JOBS:-2}" || echo "coverage: some ctest cases failed" >&2
    if [ "$RUN_PY" = 1 ]; then
        TL_BUILD_DIR="$B" TL_PYTHON="$PY" "$PY" -m pytest -q -x -p no:cacheprovider tests/py \
            --ignore=tests/py/test_capture_models.py --ignore=tests/py/test_torchlean_conformance.py ||
            echo "coverage: some Python tests failed" >&2
    fi
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tl_cov.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# one gcov run per object directory (gcov wants -o DIR and the .gcda files of that directory)
find "$B" -name '*.gcda' -printf '%h\n' | sort -u | while read -r d; do
    (cd "$WORK" && gcov --json-format --branch-probabilities -o "$d" "$d"/*.gcda >/dev/null 2>&1) || true
done

"$PY" - "$ROOT" "$WORK" "$B/coverage.txt" <<'EOF'
import collections
import gzip
import json
import os
import sys

root, work, out_path = sys.argv[1], sys.argv[2], sys.argv[3]
DIRS = ["ir", "import", "runtime", "ops", "kernels", "emit", "tools"]
lines = collections.defaultdict(dict)  # file -> line -> count (max over objects: a line is covered if any run hit it)
branches = collections.defaultdict(dict)  # file -> (line, k) -> taken
for name in os.listdir(work):
    if not name.endswith(".gcov.json.gz"):
        continue
    with gzip.open(os.path.join(work, name), "rt") as f:
        doc = json.load(f)
    cwd = doc.get("current_working_directory", "")
    for fe in doc["files"]:
        path = os.path.normpath(os.path.join(cwd, fe["file"]))
        rel = os.path.relpath(path, root)
        if rel.startswith("..") or rel.split(os.sep)[0] not in DIRS:
            continue
        for ln in fe["lines"]:
            n = ln["line_number"]
            lines[rel][n] = max(lines[rel].get(n, 0), ln["count"])
            for k, br in enumerate(ln.get("branches", [])):
                key = (n, k)
                branches[rel][key] = branches[rel].get(key, False) or br["count"] > 0


def pct(a, b):
    return 100.0 * a / b if b else 100.0


rows, per_dir = [], collections.defaultdict(lambda: [0, 0, 0, 0])
for f in sorted(lines):
    lh, lt = sum(1 for c in lines[f].values() if c > 0), len(lines[f])
    bh, bt = sum(1 for t in branches[f].values() if t), len(branches[f])
    rows.append((f, lh, lt, bh, bt))
    d = per_dir[f.split(os.sep)[0]]
    d[0] += lh
    d[1] += lt
    d[2] += bh
    d[3] += bt
out = [f"{'directory':<12} {'lines':>16} {'line %':>7} {'branches':>16} {'branch %':>8}"]
tot = [0, 0, 0, 0]
for d in DIRS:
    if d not in per_dir:
        continue
    lh, lt, bh, bt = per_dir[d]
    tot = [a + b for a, b in zip(tot, per_dir[d], strict=True)]
    out.append(f"{d + '/':<12} {f'{lh}/{lt}':>16} {pct(lh, lt):>6.1f}% {f'{bh}/{bt}':>16} {pct(bh, bt):>7.1f}%")
lh, lt, bh, bt = tot
out.append(f"{'total':<12} {f'{lh}/{lt}':>16} {pct(lh, lt):>6.1f}% {f'{bh}/{bt}':>16} {pct(bh, bt):>7.1f}%")
out.append("")
out.append("least-covered files (lines):")
for f, lh, lt, bh, bt in sorted(rows, key=lambda r: pct(r[1], r[2]))[:15]:
    out.append(f"  {f:<36} {pct(lh, lt):6.1f}% of {lt:5d} lines, {pct(bh, bt):6.1f}% of {bt:5d} branches")
text = "\n".join(out)
print(text)
with open(out_path, "w") as f:
    f.write(text + "\n\nper file:\n")
    for f_, lh, lt, bh, bt in rows:
        f.write(f"  {f_:<36} {lh:5d}/{lt:<5d} {pct(lh, lt):6.1f}%  {bh:5d}/{bt:<5d} {pct(bh, bt):6.1f}%\n")
        miss = sorted(n for n, c in lines[f_].items() if c == 0)
        if miss:
            f.write("      uncovered lines: " + ",".join(map(str, miss)) + "\n")
EOF
