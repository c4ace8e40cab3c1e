"""Convs with small output planes run igemm (kernels/tl_conv.h: 12 pixels x 32 output channels per
tile, the pixels taken over a chunk of the batch's images, its store adding a fused residual and
clamping). Checked on a captured model at batches 1, 8 and 13 (2-D 3x3 stride 1 and 2 at 2x2
outputs, 136 channels = four 32-channel blocks and a tail, a 1x3 window, a fused residual add +
relu and a fused leaky relu after it): tlinfo --plan names the kernels; the run matches the float64
oracle (tests/py/oracle.py) within float32 dot-product rounding, is bitwise the same at 1 and 2
threads, and bitwise the dense direct kernel (TL_CONV_IGEMM=0): both compute tl_conv_ref's
per-element FMA chain."""

import os
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
    d = tmp_path_factory.mktemp("conv_igemm")
    (d / "m.py").write_text(MODEL)
    r = Z.capture(d / "m.py", "Tiny", d, [2, 16, 4, 4])
    assert r.returncode == 0, r.stderr
    return d


def _run(d, x, tag, *extra, env=None):
    return Z.tlrun(d, x, tag, *extra, env=env)[0]


def _kernels(d, batch, env=None):
    r = subprocess.run(
        [tool("tlinfo"), str(d / "graph.json"), str(d / "params.bin"), "--plan", "--input-shape", f"{batch},16,4,4"],
        capture_output=True,
        text=True,
        env={**os.environ, "TL_MICROBATCH": "0", **(env or {})},
    )
    assert r.returncode == 0, r.stderr
    return [line.split()[-1] for line in r.stdout.splitlines() if " conv " in line]


@pytest.mark.parametrize("batch", [1, 8, 13])
def test_igemm_vs_oracle_and_direct(captured, batch):
    d = captured
    if Z.has_avx2():
        assert _kernels(d, batch)[:2] == ["igemm", "igemm"]
        assert _kernels(d, batch, {"TL_CONV_IGEMM": "0"})[:2] == ["direct", "direct"]
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
    # the dense direct kernel: the same FMA chain per element, so the same bits
    y_direct = _run(d, x, f"{batch}d", env={"TL_CONV_IGEMM": "0"})
    assert y1.tobytes() == y_direct.tobytes()
    # each sample as its own batch-1 run: the same bits too (tiles over images change nothing)
    if batch > 1:
        y_single = np.concatenate([_run(d, x[i : i + 1], f"{batch}s{i}") for i in range(3)])
        assert y1[:3].tobytes() == y_single.tobytes()
