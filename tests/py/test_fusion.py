"""Plan-time epilogue fusion (runtime/tl_plan.c plan_fuse): a residual add and relu / relu6 /
hardtanh (captured as relu or max_elem / min_elem with a constant) after a conv or linear become
that producer's epilogue; a batch norm after a conv / linear is folded into its weights.

Checked on captured models: `tlinfo --plan` says "fused" for those nodes; the fused run matches
PyTorch eager within assert_close's float32 defaults; the clamp and residual fusions are bitwise,
so without a batch norm (and without the packed-weight linear of 16+ row batches, which --exact
replaces by sgemm) the default run equals `tlrun --exact` bit for bit (--exact keeps these
fusions: tests/c/test_runtime.c test_fuse_clamp); otherwise the two agree within float32
rounding."""

import subprocess
import textwrap

import numpy as np
import pytest
import torch

import zoo_util as Z
from conftest import tool

MODELS = textwrap.dedent('''
    import torch, torch.nn as nn, torch.nn.functional as F

    class ConvClamps(nn.Module):
        """no batch norm: every fusion here is bitwise"""
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3, padding=1)
            self.c2 = nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.c3 = nn.Conv2d(8, 16, 1)
            self.c4 = nn.Conv1d(4, 6, 3)
            self.f = nn.Linear(16, 5)
        def forward(self, x):
            y = F.relu6(self.c1(x))
            y = F.hardtanh(self.c2(y), -0.5, 0.5)
            y = F.relu(self.c3(y))
            z = F.relu(self.c4(y.mean(dim=3)[:, :4, :]))
            return F.relu(self.f(y.mean(dim=(2, 3)))), z

    class ConvBN(nn.Module):
        """batch norm folded (rounded), then relu6 fused"""
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            self.b = nn.BatchNorm2d(8)
            self.b.running_mean.uniform_(-0.2, 0.2)
            self.b.running_var.uniform_(0.5, 1.5)
            self.f = nn.Linear(8, 4)
        def forward(self, x):
            y = F.relu6(self.b(self.c(x)))
            return self.f(y.mean(dim=(2, 3)))

    class Residual(nn.Module):
        """add(x, conv(...)) then relu, add(conv_a, conv_b), linear + x, matmul + x, matmul relu6"""
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(4, 4, 3, padding=1); self.c2 = nn.Conv2d(4, 4, 3, padding=1)
            self.c3 = nn.Conv2d(4, 4, 1); self.f = nn.Linear(4, 4)
            self.p = nn.Parameter(torch.randn(4, 4))
        def forward(self, x):
            y = F.relu(x + self.c2(F.relu(self.c1(x))))
            y = self.c3(y) + self.c1(y)
            m = y.mean(dim=(2, 3))
            m = F.relu(self.f(m) + m)
            return F.relu(torch.matmul(m, self.p) + m), F.relu6(torch.matmul(m.unsqueeze(2), m.unsqueeze(1)))

    class Threads(nn.Module):
        """conv (direct), pools, depthwise, 1x1, elementwise, a GEMM big enough for OpenBLAS threads"""
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 16, 3, padding=1); self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
            self.pw = nn.Conv2d(16, 16, 1); self.f = nn.Linear(256, 256)
        def forward(self, x):
            y = F.max_pool2d(F.relu(self.c1(x)), 2)
            y = F.avg_pool2d(F.relu6(self.dw(y)), 2)
            y = torch.sigmoid(self.pw(y)) * y
            return torch.tanh(self.f(y.reshape(y.shape[0], -1))), y

    class Leaky(nn.Module):
        """leaky relu (captured as max_elem(x, mul_elem(s, x))) after conv, linear, a residual add"""
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 4, 3, padding=1); self.c2 = nn.Conv2d(4, 4, 3, padding=1)
            self.f = nn.Linear(4, 6)
        def forward(self, x):
            y = F.leaky_relu(self.c1(x), 0.1)
            y = F.leaky_relu(y + self.c2(y), 0.2)
            return F.leaky_relu(self.f(y.mean(dim=(2, 3))), 0.05)

    class MLPBN(nn.Module):
        """batch norm folded into a linear that runs the packed-weight kernel (16+ rows)"""
        def __init__(self):
            super().__init__()
            self.l1 = nn.Linear(5, 50); self.b = nn.BatchNorm1d(50); self.l2 = nn.Linear(50, 5)
            self.b.running_mean.uniform_(-0.2, 0.2); self.b.running_var.uniform_(0.5, 1.5)
        def forward(self, x):
            return self.l2(F.relu(self.b(self.l1(x))))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = nn.Linear(5, 50); self.l2 = nn.Linear(50, 50); self.l3 = nn.Linear(50, 5)
        def forward(self, x):
            return self.l3(F.relu(self.l2(F.relu(self.l1(x)))))
''')

CASES = {  # name: (example shape, a batch to run too, bitwise vs --exact)
    "ConvClamps": ([2, 3, 10, 10], 5, True),
    "ConvBN": ([2, 3, 10, 10], 3, False),
    "MLP": ([4, 5], 33, False),  # batch 33 runs the packed linear; --exact keeps sgemm
    "MLPBN": ([32, 5], 64, False),
    "Leaky": ([2, 3, 8, 8], 3, True),
    "Residual": ([2, 4, 6, 6], 3, True),
}


def _run(d, x, tag, *extra):
    return Z.tlrun(d, x, tag, *extra)


def _plan(d, *extra):
    r = subprocess.run(
        [tool("tlinfo"), str(d / "graph.json"), str(d / "params.bin"), "--plan", *extra], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    rows = {}
    for line in r.stdout.splitlines()[2:]:
        f = line.split()
        rows[int(f[0])] = (f[1], f[2])
    return rows


@pytest.mark.parametrize("name", sorted(CASES))
def test_fusion_vs_eager_and_exact(tmp_path, name):
    shape, batch, bitwise = CASES[name]
    mf, doc, kinds = Z.capture_source(tmp_path, MODELS, name, shape)
    plan = _plan(tmp_path)
    # every relu / constant max / min right after a conv / linear (or its folded batch norm) is fused
    clamps = [i for i, k in kinds.items() if k in ("relu", "max_elem", "min_elem", "add", "mul_elem")]
    assert clamps and all(plan[i][1] == "fused" for i in clamps), (clamps, plan)
    assert all(plan[i][1] == "run" for i, k in kinds.items() if k in ("conv", "linear"))
    assert all(plan[i][1] == "fused" for i, k in kinds.items() if k == "batch_norm_eval")
    rng = np.random.default_rng(3)
    for n in sorted({shape[0], batch}):
        x = rng.standard_normal([n, *shape[1:]]).astype(np.float32) * 2
        got = _run(tmp_path, x, f"f{n}")
        exact = _run(tmp_path, x, f"e{n}", "--exact")
        ref = Z.eager_outputs(mf, name, x)
        assert len(got) == len(ref)
        for g, e, rf in zip(got, exact, ref, strict=True):
            torch.testing.assert_close(torch.from_numpy(g), rf)
            torch.testing.assert_close(torch.from_numpy(e), rf)
            if bitwise:
                assert np.array_equal(g.view(np.uint32), e.view(np.uint32))


def test_threads_bitwise(tmp_path):
    """tlrt's own kernels give the same bits at 1 and 2 threads (blocks that do not depend on the
    thread count), fused epilogues included, at a batch big enough for every parallel path. The
    GEMM is OpenBLAS's: bitwise with its SkylakeX kernels, not with the Haswell ones this test
    environment may force (their M tails differ), so only close."""
    mf = tmp_path / "models.py"
    mf.write_text(MODELS)
    r = Z.capture(mf, "Threads", tmp_path, [2, 3, 16, 16])
    assert r.returncode == 0, r.stderr
    x = np.random.default_rng(5).standard_normal([128, 3, 16, 16]).astype(np.float32)
    one = _run(tmp_path, x, "t1", "--threads", "1")
    two = _run(tmp_path, x, "t2", "--threads", "2")
    assert np.array_equal(one[1].view(np.uint32), two[1].view(np.uint32))
    ref = Z.eager_outputs(mf, "Threads", x)
    for a, b, rf in zip(one, two, ref, strict=True):
        torch.testing.assert_close(torch.from_numpy(a), rf)
        torch.testing.assert_close(torch.from_numpy(b), rf)
