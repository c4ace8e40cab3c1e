"""Convs with output planes of <= 4 pixels over a batch of >= 8 (groups 1) run as one GEMM
across the batch (ops/conv.c ex_conv_batch_gemm: im2col of every image, N = batch * pixels);
batch 1 keeps the direct kernel. Checked on a captured model at batches 1, 8 and 13 (2-D 3x3
stride 1 and 2, a 1x3 window, a fused residual add + relu and a fused leaky relu after it)
against the float64 oracle (tests/py/oracle.py) within float32 dot-product rounding, and bitwise
at 1 and 2 threads (136 output channels: two blocks of <= 128, one per thread at 2 threads)."""

import subprocess
import textwrap

import numpy as np
import pytest

import zoo_util as Z
from conftest import tool

MODEL = textwrap.dedent("""
    import torch, torch.nn as nn, torch.nn.functional as F

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(16, 136, 3, stride=2, padding=1)  # 4x4 -> 2x2
            self.c2 = nn.Conv2d(136, 136, 3, padding=1)  # 2 blocks of <= 128 channels
            self.c3 = nn.Conv2d(136, 8, (1, 3), padding=(0, 1))
        def forward(self, x):
            y = self.c1(x)
            y = F.relu(y + self.c2(y))
            return F.leaky_relu(self.c3(y), 0.1)
""")


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    d = tmp_path_factory.mktemp("conv_batch_gemm")
    (d / "m.py").write_text(MODEL)
    r = Z.capture(d / "m.py", "Tiny", d, [2, 16, 4, 4])
    assert r.returncode == 0, r.stderr
    return d


def _run(d, x, tag, *extra):
    np.save(d / f"x{tag}.npy", x)
    r = subprocess.run(
        [
            tool("tlrun"),
            str(d / "graph.json"),
            str(d / "params.bin"),
            str(d / f"x{tag}.npy"),
            "-o",
            str(d / f"y{tag}.npy"),
            *extra,
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    return np.load(d / f"y{tag}.npy")


@pytest.mark.parametrize("batch", [1, 8, 13])
def test_batch_gemm_vs_oracle(captured, batch):
    d = captured
    rng = np.random.default_rng(batch)
    x = rng.uniform(-2, 2, size=(batch, 16, 4, 4)).astype(np.float32)
    y1 = _run(d, x, f"{batch}t1", "--threads", "1")
    y2 = _run(d, x, f"{batch}t2", "--threads", "2")
    assert y1.shape == (batch, 8, 2, 2)
    assert y1.tobytes() == y2.tobytes()  # bitwise across thread counts
    doc = Z.load_graph(d / "graph.json")
    params = Z.read_safetensors(d / "params.bin")
    # the oracle runs the captured batch (2): the samples two at a time
    xp = np.concatenate([x, np.zeros_like(x[:1])]) if batch % 2 else x
    y64 = np.concatenate(
        [Z.ir_eval(doc, params, xp[i : i + 2].astype(np.float64))[0].numpy() for i in range(0, len(xp), 2)]
    )[:batch]
    # three chained convs of <= 1224 terms each: float32 dot-product rounding
    scale = np.abs(y64).max()
    np.testing.assert_allclose(y1, y64, rtol=0, atol=2e-5 * scale)
    # each sample as its own batch-1 run (the direct kernel): the same values within rounding
    if batch > 1:
        y_single = np.concatenate([_run(d, x[i : i + 1], f"{batch}s{i}") for i in range(3)])
        np.testing.assert_allclose(y1[:3], y_single, rtol=0, atol=2e-5 * scale)
