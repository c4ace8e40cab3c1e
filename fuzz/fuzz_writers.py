#!/usr/bin/env python3
"""fuzz_writers.py - the capture adapter's writers, read back by tlrt (a hypothesis target).

scripts/export_torchlean_graph.py writes graph JSON with `_graph_json_text(doc)` and params.bin with
`_safetensors_bytes(params)`. This target draws random small graphs and parameter sets, writes
them with THOSE functions (the adapter's own code, not a copy), and reads them back with tlrt:

    x[1, n] -> add(x, const c)            -> output 0 == float32(c) bitwise (x = 0 and 0 + c == c,
                                             -0 + 0 = +0 aside: compared with ==, NaN with isnan)
            -> linear(W[m, n], b[m])       -> output 1 == W x + b within a summation bound of the
                                             float64 value (numpy)
            -> a chain of unary ops        -> loads and runs (shapes as declared)

c, W and b are F32 or F64 tensors (the adapter writes both; tlrt rounds F64 to nearest float32,
as numpy's astype does) holding any float32 value: +-0, subnormals, +-inf, NaN, FLT_MAX. Every
node carries a `target` debug string of arbitrary (non-surrogate) unicode: the JSON writer
escapes it and tlrt must read it back. tlinfo must load the pair as well.

    fuzz_writers.py --seconds S [--db DIR]     run for S seconds (fuzz.sh's `writers` target);
                                               prints `executions: N` (examples run)
A failure prints hypothesis's shrunk example and exits 1; the failing example is kept in --db
(hypothesis' example database) so the next run replays it first.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import export_torchlean_graph as cap  # noqa: E402  (the writers under test)

BUILD = Path(os.environ.get("TL_BUILD_DIR", ROOT / "build"))
TLRUN, TLINFO = str(BUILD / "tlrun"), str(BUILD / "tlinfo")
UNARY = ["relu", "abs", "tanh", "sigmoid", "detach", "exp", "sin"]
F32 = st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
EXECUTIONS = 0


@st.composite
def cases(draw):
    n = draw(st.integers(1, 8))
    m = draw(st.integers(1, 6))
    c = np.array(draw(st.lists(F32, min_size=n, max_size=n)), np.float32).reshape(1, n)
    # finite weights for the linear output (an inf weight makes inf - inf = NaN order-dependent)
    fin = st.floats(-1e3, 1e3, width=32)
    W = np.array(draw(st.lists(fin, min_size=m * n, max_size=m * n)), np.float32).reshape(m, n)
    b = np.array(draw(st.lists(fin, min_size=m, max_size=m)), np.float32)
    dt = {k: draw(st.sampled_from([np.float32, np.float64])) for k in ("c", "W", "b")}
    chain = draw(st.lists(st.sampled_from(UNARY), max_size=3))
    targets = draw(st.lists(TEXT, min_size=4 + len(chain), max_size=4 + len(chain)))
    x = np.array(draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n)), np.float32).reshape(1, n)
    return n, m, c, W, b, dt, chain, targets, x


def build(n, m, c, W, b, dt, chain, targets):
    nodes = [
        {"id": 0, "kind": "input", "parents": [], "shape": [1, n]},
        {"id": 1, "kind": "const", "parents": [], "shape": [1, n]},
        {"id": 2, "kind": "add", "parents": [0, 1], "shape": [1, n]},
        {"id": 3, "kind": "linear", "parents": [0], "shape": [1, m], "in_dim": n, "out_dim": m},
    ]
    for k, op in enumerate(chain):
        nodes.append({"id": 4 + k, "kind": op, "parents": [3 + k], "shape": [1, m]})
    for node, t in zip(nodes, targets, strict=False):
        node["target"] = t
    doc = {"format": cap.FORMAT, "input_id": 0, "output_ids": [2, 3, len(nodes) - 1], "nodes": nodes}
    params = {"const_1": c.astype(dt["c"]), "linear_3_W": W.astype(dt["W"]), "linear_3_b": b.astype(dt["b"])}
    return cap._graph_json_text(doc), cap._safetensors_bytes(params)


def check(case):
    global EXECUTIONS
    EXECUTIONS += 1
    n, m, c, W, b, dt, chain, targets, x = case
    text, blob = build(n, m, c, W, b, dt, chain, targets)
    with tempfile.TemporaryDirectory() as d:
        g, p = os.path.join(d, "g.json"), os.path.join(d, "p.bin")
        with open(g, "w", encoding="utf-8") as f:
            f.write(text)
        with open(p, "wb") as f:
            f.write(blob)
        r = subprocess.run([TLINFO, g, p], capture_output=True, text=True)
        assert r.returncode == 0, f"tlinfo: {r.stderr}"
        zero = os.path.join(d, "zero.npy")
        np.save(zero, np.zeros((1, n), np.float32))
        out = os.path.join(d, "o.npy")
        r = subprocess.run([TLRUN, g, p, zero, "-o", out], capture_output=True, text=True)
        assert r.returncode == 0, f"tlrun: {r.stderr}"
        y0 = np.load(out)
        # the const arrives exactly: F32 as written, F64 rounded once to nearest (= c here)
        ok = (y0 == c) | (np.isnan(y0) & np.isnan(c))
        assert ok.all(), f"const round trip: {y0} vs {c}"
        xin = os.path.join(d, "x.npy")
        np.save(xin, x)
        r = subprocess.run([TLRUN, g, p, xin, "-o", out], capture_output=True, text=True)
        assert r.returncode == 0, f"tlrun: {r.stderr}"
        y1 = np.load(os.path.join(d, "o_1.npy"))
        ref = x.astype(np.float64) @ W.astype(np.float64).T + b
        bound = (n + 2) * 2.0**-23 * (np.abs(x) @ np.abs(W).T + np.abs(b)).astype(np.float64) + 1e-30
        assert y1.shape == (1, m) and (np.abs(y1 - ref) <= bound).all(), f"linear: {y1} vs {ref}"
        y2 = np.load(os.path.join(d, "o_2.npy"))
        assert y2.shape == (1, m)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--db", default=None)
    a = ap.parse_args()
    db = DirectoryBasedExampleDatabase(a.db) if a.db else None
    end = time.monotonic() + a.seconds
    rounds = 0
    while time.monotonic() < end:
        # one hypothesis run per round (fresh random seed), until the time budget is spent
        test = settings(
            max_examples=200,
            deadline=None,
            database=db,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        )(given(cases())(check))
        try:
            test()
        except Exception as e:
            print(f"executions: {EXECUTIONS}")
            print(f"FAILED: {type(e).__name__}: {e}")
            return 1
        rounds += 1
    print(f"executions: {EXECUTIONS}")
    print(f"rounds: {rounds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
