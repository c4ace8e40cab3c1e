"""Micro-batching (runtime/tl_microbatch.c): a float32 batch whose activations overflow L2 runs
as several runs of a smaller batch of the same plan, whole micro-batches per thread. Checked on
a captured MobileNet-style net (stride-2 conv, depthwise, 1x1, BN, relu6, pooling, linear):

- every micro-batch size (forced with TL_MICROBATCH) against the float64 oracle and against the
  one-plan run (TL_MICROBATCH=0), and bitwise at 1 and 2 threads;
- the default rule picks micro-batches for large activations only (tlinfo --plan says so);
- --dump-node (KEEP_ALL: every node at the full batch) and a graph that mixes the batch
  (x - x.mean(0)) run one plan, with the right values.
"""

import subprocess
import textwrap

import numpy as np
import pytest

import zoo_util as Z
from conftest import tool

NET = textwrap.dedent("""
    import torch, torch.nn as nn, torch.nn.functional as F

    class Net(nn.Module):
        def __init__(self, c=16, hw=32):
            super().__init__()
            self.stem = nn.Conv2d(3, c, 3, stride=2, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(c)
            self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c)
            self.pw = nn.Conv2d(c, 2 * c, 1)
            self.fc = nn.Linear(2 * c * (hw // 4) ** 2, 10)
            with torch.no_grad():
                self.bn.running_mean.uniform_(-0.5, 0.5)
                self.bn.running_var.uniform_(0.5, 1.5)
        def forward(self, x):
            y = F.relu6(self.bn(self.stem(x)))
            y = F.relu6(self.pw(self.dw(y)))
            y = F.max_pool2d(y, 2)
            return self.fc(y.flatten(1))

    class Wide(Net):
        def __init__(self):
            super().__init__(c=32, hw=96)

    class Mixes(nn.Module):
        def forward(self, x):
            return torch.tanh(x - x.mean(0, keepdim=True))
""")

BATCH = 12


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("microbatch")
    (root / "m.py").write_text(NET)
    out = {}
    for name, shape in (("Net", [1, 3, 32, 32]), ("Wide", [1, 3, 96, 96]), ("Mixes", [4, 8])):
        d = root / name
        d.mkdir()
        r = Z.capture(root / "m.py", name, d, shape)
        assert r.returncode == 0, r.stderr
        out[name] = d
    return out


def _env(mb):
    env = Z.env_with_build()
    env.pop("TL_MICROBATCH", None)
    if mb is not None:
        env["TL_MICROBATCH"] = str(mb)
    return env


def _run(d, x, tag, mb, *extra):
    np.save(d / f"x{tag}.npy", x)
    r = subprocess.run(
        [tool("tlrun"), str(d / "graph.json"), str(d / "params.bin"), str(d / f"x{tag}.npy"), "-o",
         str(d / f"y{tag}.npy"), *extra],
        capture_output=True, text=True, env=_env(mb),
    )
    assert r.returncode == 0, r.stderr
    return np.load(d / f"y{tag}.npy")


def _plan_head(d, shape, mb):
    r = subprocess.run(
        [tool("tlinfo"), str(d / "graph.json"), str(d / "params.bin"), "--plan", "--input-shape",
         ",".join(map(str, shape))],
        capture_output=True, text=True, env=_env(mb),
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()[0]


def _oracle(d, x):
    doc = Z.load_graph(d / "graph.json")
    params = Z.read_safetensors(d / "params.bin")
    return np.concatenate([Z.ir_eval(doc, params, x[i : i + 1].astype(np.float64))[0].numpy() for i in range(len(x))])


@pytest.mark.parametrize("mb", [1, 2, 3, 4, 6])
def test_forced_micro_batches(models, mb):
    d = models["Net"]
    x = np.random.default_rng(mb).uniform(-1, 1, size=(BATCH, 3, 32, 32)).astype(np.float32)
    one = _run(d, x, f"one{mb}", 0, "--threads", "1")
    y1 = _run(d, x, f"mb{mb}t1", mb, "--threads", "1")
    y2 = _run(d, x, f"mb{mb}t2", mb, "--threads", "2")
    assert y1.tobytes() == y2.tobytes()  # bitwise across thread counts
    y64 = _oracle(d, x)
    scale = np.abs(y64).max()
    np.testing.assert_allclose(y1, y64, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(y1, one, rtol=0, atol=1e-5 * scale)
    assert _plan_head(d, [BATCH, 3, 32, 32], mb).startswith(f"micro-batched: batch {BATCH} as {BATCH // mb} runs")


def test_not_a_divisor_or_off(models):
    d = models["Net"]
    for mb in (0, 5, BATCH, -1):
        assert _plan_head(d, [BATCH, 3, 32, 32], mb).startswith("plan:"), mb


def test_default_rule(models):
    # ~100 KiB of activations per 32x32 sample: 12 of them fit the budget, one plan
    assert _plan_head(models["Net"], [BATCH, 3, 32, 32], None).startswith("plan:")
    # ~1.3 MiB per 96x96 sample: one sample at a time
    head = _plan_head(models["Wide"], [4, 3, 96, 96], None)
    assert head.startswith("micro-batched: batch 4 as 4 runs of batch 1"), head
    d = models["Wide"]
    x = np.random.default_rng(7).uniform(-1, 1, size=(4, 3, 96, 96)).astype(np.float32)
    y = _run(d, x, "wide", None, "--threads", "2")
    y64 = _oracle(d, x)
    np.testing.assert_allclose(y, y64, rtol=0, atol=1e-5 * np.abs(y64).max())


def test_keep_all_runs_one_plan(models):
    d = models["Net"]
    x = np.random.default_rng(3).uniform(-1, 1, size=(BATCH, 3, 32, 32)).astype(np.float32)
    np.save(d / "xk.npy", x)
    doc = Z.load_graph(d / "graph.json")
    pool = next(n["id"] for n in doc["nodes"] if n["kind"] == "max_pool")
    r = subprocess.run(
        [tool("tlrun"), str(d / "graph.json"), str(d / "params.bin"), str(d / "xk.npy"), "--dump-node", str(pool),
         str(d / "n3.npy")],
        capture_output=True, text=True, env=_env(3),
    )
    assert r.returncode == 0, r.stderr
    v = np.load(d / "n3.npy")
    assert v.shape == (BATCH, 32, 8, 8)  # the full batch's value, not one micro-batch's
    # the pool's value against the oracle's (the model up to that node in float64)
    part = dict(doc, output_ids=[pool])
    params = Z.read_safetensors(d / "params.bin")
    v64 = np.concatenate([Z.ir_eval(part, params, x[i : i + 1].astype(np.float64))[0].numpy() for i in range(BATCH)])
    np.testing.assert_allclose(v, v64, rtol=0, atol=1e-5 * np.abs(v64).max())


def test_graph_that_mixes_the_batch(models):
    d = models["Mixes"]
    x = np.random.default_rng(5).uniform(-1, 1, size=(4, 8)).astype(np.float32)
    assert _plan_head(d, [4, 8], 2).startswith("plan:")  # batch 2 does not fit: one plan
    y = _run(d, x, "mix", 2)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(y, np.tanh(x64 - x64.mean(0, keepdims=True)), rtol=0, atol=1e-6)
