#!/usr/bin/env python3
"""Figures for docs/reliability.md that are measurements, not tests (speed lives in benchmarks).

reliability_figures.py bigparams [--gb 3] [--tlrun build/tlrun ...]
    a linear [1, IN] -> [1, OUT] graph whose params.bin holds ~GB gigabytes (one F32 weight);
    runs each tlrun given on it once and prints wall time and peak RSS (the child's ru_maxrss).
    The file is written sparse (zeros): the read path, not the disk, is measured.
reliability_figures.py denormal [--tlrun build/tlrun] [--repeat 200]
    a conv and a linear run on normal inputs and on subnormal inputs (weights normal): tlrun
    --repeat's median per run for each, so the cost of subnormal arithmetic (tlrt sets no
    FTZ/DAZ, as PyTorch does not) is visible.
"""

import argparse
import json
import os
import re

import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_measured(args):
    """wall time and peak RSS of args, through /usr/bin/time (the child's own memory only)."""
    t0 = time.monotonic()
    r = subprocess.run(["/usr/bin/time", "-f", "TL_MAXRSS_KB=%M", *args], capture_output=True, text=True)
    wall = time.monotonic() - t0
    kb = [int(ln.split("=")[1]) for ln in r.stderr.splitlines() if ln.startswith("TL_MAXRSS_KB=")]
    return wall, (kb[-1] if kb else 0) * 1024, r, r.stdout, r.stderr


def bigparams(a):
    d = tempfile.mkdtemp(prefix="tl_big_", dir=a.dir)
    IN = 25000
    OUT = max(1, int(a.gb * 1e9 / 4 / IN))
    g = {
        "format": "torchlean.ir.v1",
        "input_id": 0,
        "output_ids": [1],
        "nodes": [
            {"id": 0, "kind": "input", "parents": [], "shape": [1, IN]},
            {"id": 1, "kind": "linear", "parents": [0], "shape": [1, OUT], "in_dim": IN, "out_dim": OUT},
        ],
    }
    gp, bp, xp = (os.path.join(d, f) for f in ("g.json", "p.bin", "x.npy"))
    with open(gp, "w") as f:
        json.dump(g, f)
    # the bias as a second tensor would be tiny; one weight plus a zero-length-free bias
    n_w = OUT * IN * 4
    hdr = json.dumps(
        {
            "linear_1_W": {"dtype": "F32", "shape": [OUT, IN], "data_offsets": [0, n_w]},
            "linear_1_b": {"dtype": "F32", "shape": [OUT], "data_offsets": [n_w, n_w + OUT * 4]},
        }
    ).encode()
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    with open(bp, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr)
        f.truncate(8 + len(hdr) + n_w + OUT * 4)
    np.save(xp, np.ones((1, IN), np.float32))
    size = os.path.getsize(bp)
    print(f"params.bin: {size / 1e9:.2f} GB (linear {OUT} x {IN}, F32, sparse file)")
    for tl in a.tlrun:
        # drop nothing from the page cache (no root needed): the first run warms it, report the second
        for _k in range(2):
            wall, rss, p, _, errs = run_measured([tl, gp, bp, xp, "-o", os.path.join(d, "y.npy")])
            if p.returncode != 0:
                print(f"{tl}: exit {p.returncode}: {errs.strip()}")
                break
        else:
            print(f"{tl}: {wall:.2f} s, peak RSS {rss / 1e9:.2f} GB = {rss / size:.2f} x the file")
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    os.rmdir(d)


def median_ms(text):
    m = re.search(r"median\s*[=:]?\s*([0-9.]+)\s*(ms|us|µs|s)", text)
    if not m:
        return None
    v, u = float(m.group(1)), m.group(2)
    return v * {"ms": 1.0, "us": 1e-3, "µs": 1e-3, "s": 1e3}[u]


def denormal(a):
    sys.path.insert(0, os.path.join(ROOT, "tests", "py"))
    from graphs import Graph

    rng = np.random.default_rng(0)
    d = tempfile.mkdtemp(prefix="tl_dn_")
    cases = []
    g = Graph()
    x = g.input([1, 16, 32, 32])
    g.output(
        g.conv(
            x, rng.standard_normal((16, 16, 3, 3)).astype(np.float32) * 0.1, np.zeros(16, np.float32), [1, 1], [1, 1]
        )
    )
    cases.append(("conv 16->16 3x3 on 32x32", g, (1, 16, 32, 32)))
    g = Graph()
    x = g.input([64, 512])
    g.output(g.linear(x, rng.standard_normal((512, 512)).astype(np.float32) * 0.05, np.zeros(512, np.float32)))
    cases.append(("linear 512->512, batch 64", g, (64, 512)))
    for what, g, shape in cases:
        gp, bp = g.save(d, name=what.split()[0])
        res = {}
        for kind, scale in (("normal", 1.0), ("subnormal", 1e-39)):
            xv = (rng.uniform(0.5, 1.0, shape) * scale).astype(np.float32)
            xp = os.path.join(d, "x.npy")
            np.save(xp, xv)
            r = subprocess.run(
                [a.tlrun, gp, bp, xp, "--repeat", str(a.repeat), "--threads", "1"], capture_output=True, text=True
            )
            res[kind] = median_ms(r.stdout + r.stderr)
            if res[kind] is None:
                print(r.stdout, r.stderr)
        ratio = res["subnormal"] / res["normal"] if res["normal"] else float("nan")
        print(f"{what}: normal {res['normal']:.3f} ms, subnormal inputs {res['subnormal']:.3f} ms ({ratio:.2f}x)")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bigparams")
    b.add_argument("--gb", type=float, default=3.0)
    b.add_argument("--tlrun", nargs="+", default=[os.path.join(ROOT, "build", "tlrun")])
    b.add_argument("--dir", default=None)
    dn = sub.add_parser("denormal")
    dn.add_argument("--tlrun", default=os.path.join(ROOT, "build", "tlrun"))
    dn.add_argument("--repeat", type=int, default=200)
    a = ap.parse_args()
    {"bigparams": bigparams, "denormal": denormal}[a.cmd](a)


if __name__ == "__main__":
    main()
