"""Elementwise chains (runtime/tl_ew_chain.c, the planner's plan_fuse_chains): elementwise nodes
whose intermediate values nobody else reads run as one blocked pass computed by the chain's last
node. The rewrite is bitwise, so it stays on under --exact.

Checked on captured models written the way such activations are written: `tlinfo --plan` names
the chain on its head and says "fused" for its members; outputs are bitwise those of the same plan
with chains off (TL_EW_CHAIN=0), at batch 1 and a larger batch, 1 and 2 threads, with and without
--exact, and within assert_close's float32 defaults of PyTorch eager. Values a chain must not
swallow (an output, a value a linear reads) stay materialized; a chain with more values live at
once than it has temporaries, or longer than TL_CHAIN_MAX, still computes the same bits."""

import math
import subprocess
import textwrap

import numpy as np
import pytest
import torch

import zoo_util as Z
from conftest import tool

MODELS = textwrap.dedent(f'''
    import math, torch, torch.nn as nn, torch.nn.functional as F

    class GeluTanh(nn.Module):
        """ViT / GPT-2's composed tanh-GELU after a linear (9 elementwise nodes), then a linear"""
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(24, 96); self.b = nn.Linear(96, 24)
        def forward(self, x):
            h = self.a(x)
            h = 0.5 * h * (1.0 + torch.tanh({math.sqrt(2.0 / math.pi)!r} * (h + 0.044715 * h * h * h)))
            return self.b(h)

    class SiluMix(nn.Module):
        """SiLU written out, a chain over two computed values, an intermediate that is an output
        and one a linear reads (neither may be fused away)"""
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(16, 40); self.b = nn.Linear(16, 40); self.c = nn.Linear(40, 8)
        def forward(self, x):
            u, v = self.a(x), self.b(x)
            s = u * torch.sigmoid(u)
            t = torch.tanh(s - v)          # an output
            w = torch.exp(-torch.abs(t)) * v
            q = torch.sigmoid(w + 1.0)     # read by a linear
            return t, self.c(q) + 0.0, q * q - w

    class Wide(nn.Module):
        """seven values live at once, more than a chain's temporaries (the 13 nodes run one by
        one), and a 20-node chain (cut at TL_CHAIN_MAX)"""
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(8, 48)
        def forward(self, x):
            h = self.a(x)
            p = [torch.tanh(h), torch.sigmoid(h), torch.exp(h), torch.sin(h), torch.cos(h),
                 torch.abs(h), torch.relu(h)]
            wide = p[0] * p[1] * p[2] * p[3] * p[4] * p[5] * p[6]
            y = h
            for i in range(10):
                y = torch.tanh(y * 0.9 + 0.1)
            return wide, y
''')

CASES = {"GeluTanh": [2, 24], "SiluMix": [2, 16], "Wide": [2, 8]}


def _plan(d):
    r = subprocess.run(
        [tool("tlinfo"), str(d / "graph.json"), str(d / "params.bin"), "--plan"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    rows = {}
    for line in r.stdout.splitlines():
        f = line.split()
        if f and f[0].isdigit():
            rows[int(f[0])] = (f[1], f[2], f[-1])
    return rows


def _bits(a):
    return a.view(np.uint32)


@pytest.mark.parametrize("name", sorted(CASES))
def test_chain_bitwise_and_vs_eager(tmp_path, name):
    shape = CASES[name]
    mf, doc, kinds = Z.capture_source(tmp_path, MODELS, name, shape)
    outs = set(doc["output_ids"])
    assert outs
    plan = _plan(tmp_path)
    heads = [i for i, p in plan.items() if p[2] == "chain"]
    assert heads, plan
    ew = [i for i, k in kinds.items() if k in ("mul_elem", "add", "sub", "tanh", "sigmoid", "exp", "abs")]
    fused = [i for i in ew if plan[i][1] == "fused"]
    assert fused, plan
    if name == "GeluTanh":  # the whole GELU is one chain: 8 members and a head
        assert len(heads) == 1 and len(fused) == 8, plan
    if name == "SiluMix":  # the output t and q (read by a linear) are computed, each heading a chain
        t_id = [i for i, k in kinds.items() if k == "tanh"][0]
        q_id = max(i for i, k in kinds.items() if k == "sigmoid")
        assert plan[t_id][1] == "run" and plan[q_id][1] == "run", plan
        assert plan[t_id][2] == "chain" and plan[q_id][2] == "chain", plan
    if name == "Wide":  # the product's 13 nodes do not fit a chain; the 30-node tail is cut in two
        assert all(plan[i][1] == "run" for i, k in kinds.items() if k in ("sin", "cos", "exp")), plan
        assert len(heads) == 2, plan
    for o in outs:
        assert plan.get(o, ("", "run"))[1] != "fused"
    rng = np.random.default_rng(7)
    for n in (1, 33):
        x = (rng.standard_normal([n, *shape[1:]]) * 1.5).astype(np.float32)
        ref = Z.eager_outputs(mf, name, x)
        for extra in ((), ("--exact",), ("--threads", "2")):
            tag = f"{n}{''.join(extra).replace('-', '')}"
            got = Z.tlrun(tmp_path, x, "c" + tag, *extra)
            off = Z.tlrun(tmp_path, x, "o" + tag, *extra, env={"TL_EW_CHAIN": "0"})
            assert len(got) == len(ref)
            for g, o, rf in zip(got, off, ref, strict=True):
                assert np.array_equal(_bits(g), _bits(o)), (name, n, extra)
                torch.testing.assert_close(torch.from_numpy(g), rf)


def test_chain_large_threads(tmp_path):
    """a chain long enough to split over the pool: the same bits at 1 and 2 threads and with
    chains off"""
    mf = tmp_path / "models.py"
    mf.write_text(MODELS)
    r = Z.capture(mf, "GeluTanh", tmp_path, [2, 24])
    assert r.returncode == 0, r.stderr
    x = np.random.default_rng(9).standard_normal([4099, 24]).astype(np.float32)
    one = Z.tlrun(tmp_path, x, "t1", "--threads", "1")
    two = Z.tlrun(tmp_path, x, "t2", "--threads", "2")
    off = Z.tlrun(tmp_path, x, "t0", "--threads", "2", env={"TL_EW_CHAIN": "0"})
    assert np.array_equal(_bits(one[0]), _bits(two[0]))
    assert np.array_equal(_bits(one[0]), _bits(off[0]))
    torch.testing.assert_close(torch.from_numpy(one[0]), Z.eager_outputs(mf, "GeluTanh", x)[0])
    assert math.isfinite(float(one[0].sum()))
