"""float64 vs float32 run time of tlrun (docs/float64.md "Cost"): an MLP, a small CNN and a
transformer-ish block, each timed with `tlrun --repeat N` in both modes (median of N runs).

    .venv/bin/python bench/f64_time.py [--repeat 20] [--threads 1]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "py"))
from graphs import Graph  # noqa: E402

RNG = np.random.default_rng(0)


def rnd(*s, scale=1.0):
    return (RNG.standard_normal(s) * scale).astype(np.float32)


def mlp():
    g = Graph()
    x = g.input([64, 512])
    h = g.unary("relu", g.linear(x, rnd(1024, 512, scale=0.04), rnd(1024)))
    h = g.unary("relu", g.linear(h, rnd(1024, 1024, scale=0.03), rnd(1024)))
    g.output(g.node("softmax", [g.linear(h, rnd(10, 1024, scale=0.03), rnd(10))], axis=1))
    return g, rnd(64, 512)


def cnn():
    g = Graph()
    x = g.input([8, 3, 32, 32])
    h = g.unary("relu", g.conv(x, rnd(16, 3, 3, 3, scale=0.2), rnd(16), [1, 1], [1, 1]))
    h = g.pool("max_pool", h, [2, 2], [2, 2], [0, 0])
    h = g.unary("relu", g.conv(h, rnd(32, 16, 3, 3, scale=0.1), rnd(32), [1, 1], [1, 1]))
    h = g.pool("avg_pool", h, [2, 2], [2, 2], [0, 0])
    f = g.node("reshape", [h], in_shape=[8, 32, 8, 8], out_shape=[8, 2048])
    g.output(g.linear(f, rnd(10, 2048, scale=0.02), rnd(10)))
    return g, rnd(8, 3, 32, 32)


def block():
    g = Graph()
    x = g.input([16, 64, 128])
    h = g.layernorm(x, 2, rnd(128), rnd(128), eps=1e-5)
    h = g.unary("tanh", g.linear(h, rnd(512, 128, scale=0.08), rnd(512)))
    h = g.linear(h, rnd(128, 512, scale=0.04), rnd(128))
    g.output(g.binary("add", x, h))
    return g, rnd(16, 64, 128)


def median_ms(args):
    r = subprocess.run(args, capture_output=True, text=True, check=True)
    return float(re.search(r"median ([0-9.]+) ms", r.stdout).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    tlrun = os.environ.get("TL_BUILD_DIR", str(ROOT / "build")) + "/tlrun"
    print(f"{'model':8} {'float32 ms':>11} {'float64 ms':>11} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as d:
        for name, f in (("mlp", mlp), ("cnn", cnn), ("block", block)):
            g, x = f()
            gp, bp = g.save(Path(d) / name)
            xp = Path(d) / f"{name}.npy"
            np.save(xp, x)
            base = [tlrun, gp, bp, str(xp), "--repeat", str(a.repeat), "--threads", str(a.threads)]
            t32 = median_ms(base)
            t64 = median_ms(base + ["--dtype", "float64"])
            print(f"{name:8} {t32:11.3f} {t64:11.3f} {t64 / t32:6.2f}")


if __name__ == "__main__":
    main()
