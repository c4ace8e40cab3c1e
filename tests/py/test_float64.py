"""tlrun --dtype float64: every executable op (the cases of test_ops.py) against the NumPy float64
oracle (oracle.py), with the oracle switched to TorchLean's own scalar formulas where tlrt's float64
kernels follow TorchLean rather than PyTorch (docs/float64.md):
  - softplus (and safe_log through it): TorchLean's sign branch x > 0: x + log(1 + exp(-x)), else
    log(1 + exp(x)) (no threshold, log not log1p);
  - rand_uniform / bernoulli_mask: the unit draw u32 / 2^32 in double (exact; float32 rounds it).
Tolerances (the float32 run's are ~1e-5):
  EXACT  - movement, abs/relu/sqrt/inv, add/sub/mul/max/min, max_pool, the random ops: bitwise
           equal (one correctly rounded double operation, or none, per element);
  TRANS  - libm double exp/log/tanh/sin/cos/sigmoid vs NumPy's: rtol 1e-13, atol 1e-15;
  ACCUM  - dgemm / left-to-right sums vs NumPy's pairwise sums: rtol 1e-12, atol 1e-12.
Plus: a model with float64 parameters (F64 safetensors) and a float64 input, where float64 mode
must be orders of magnitude closer to the oracle than float32 mode; float64 .npy in and out.
"""

import subprocess

import numpy as np
import pytest

import oracle
import test_ops
from conftest import exec_tags, tool
from graphs import Graph

EXACT = dict(rtol=0, atol=0)
TRANS64 = dict(rtol=1e-13, atol=1e-15)
ACCUM64 = dict(rtol=1e-12, atol=1e-12)


def tl_softplus(v):
    """TorchLean Activation.Math.softplusSpec over Float."""
    v = np.asarray(v, np.float64)
    with np.errstate(over="ignore"):
        pos = v + np.log(1.0 + np.exp(-np.abs(v)))
        neg = np.log(1.0 + np.exp(np.minimum(v, 0.0)))
    return np.where(v > 0, pos, neg)


def unit_draws64(seed, node_id, n):
    """TorchLean Spec.Random over Float: u32 / 2^32 (exact in double)."""
    key = oracle.splitmix64((seed + node_id) & oracle.M64)
    u = [oracle.splitmix64((key + i) & oracle.M64) & 0xFFFFFFFF for i in range(n)]
    return np.array(u, np.float64) / 2.0**32


@pytest.fixture
def torchlean_oracle(monkeypatch):
    monkeypatch.setitem(oracle.UNARY, "softplus", tl_softplus)
    monkeypatch.setattr(oracle, "softplus", tl_softplus)
    monkeypatch.setattr(oracle, "unit_draws", unit_draws64)


def run64(g, xv, tmp_path, *extra, inline=False, dtype="float64"):
    """tlrun on xv (written as float64 .npy); returns (outputs, stderr)."""
    gp, bp = g.save(tmp_path, inline=inline)
    inp = tmp_path / "x64.npy"
    np.save(inp, np.ascontiguousarray(np.asarray(xv, np.float64)))
    out = tmp_path / "out.npy"
    args = [tool("tlrun"), gp] + ([bp] if bp else []) + [str(inp), "-o", str(out), "--dtype", dtype]
    r = subprocess.run(args + [str(e) for e in extra], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    n_out = len(g.output_ids)
    names = [out] + [tmp_path / f"out_{k}.npy" for k in range(1, n_out)]
    return [np.load(p) for p in names], r.stderr


def tol64(tol):
    if tol is test_ops.EXACT:
        return EXACT
    if tol is test_ops.TRANS:
        return TRANS64
    return ACCUM64


def check64(g, xv, tol, tmp_path, extra=(), inline=False):
    ref = g.reference(xv)
    outs, err = run64(g, xv, tmp_path, *extra, inline=inline)
    assert err == ""
    assert len(outs) == len(ref)
    t = tol64(tol)
    for k, (o, r) in enumerate(zip(outs, ref, strict=True)):
        assert o.dtype == np.float64, (k, o.dtype)
        assert o.shape == r.shape, (k, o.shape, r.shape)
        if t is EXACT:
            np.testing.assert_array_equal(o, r, err_msg=f"output {k}")
        else:
            np.testing.assert_allclose(o, r, err_msg=f"output {k}", **t)


@pytest.mark.parametrize("isa", ["best", "scalar"])
@pytest.mark.parametrize("name", sorted(test_ops.CASES))
def test_op_float64(name, isa, tmp_path, torchlean_oracle):
    g, xv, tol, _ = test_ops.CASES[name]()
    check64(g, xv, tol, tmp_path, [] if isa == "best" else ["--isa", "scalar"])


@pytest.mark.parametrize("sa,sb", test_ops.MATMUL_SHAPES[:6])
def test_matmul_float64(sa, sb, tmp_path):
    g = Graph()
    x = g.input(sa)
    g.output(g.binary("matmul", x, g.const(test_ops.rnd(*sb))))
    check64(g, test_ops.rnd(*sa), test_ops.ACCUM, tmp_path)


@pytest.mark.parametrize(
    "name", ["linear_ranks", "conv2d_groups_stride_asym", "batch_norm_eval", "layernorm", "safe_log", "concat"]
)
def test_op_inline_payloads_float64(name, tmp_path, torchlean_oracle):
    """TorchLean-style graph: payloads inline in the JSON (decimal text read as double)."""
    g, xv, tol, _ = test_ops.CASES[name]()
    check64(g, xv, tol, tmp_path, inline=True)


def test_every_executable_op_runs_in_float64():
    """The cases above cover every executable tag (test_ops' own coverage test checks the same
    CASES table, plus matmul here)."""
    seen = {"matmul"}
    for f in test_ops.CASES.values():
        seen |= {n["kind"] for n in f()[0].nodes}
    assert not [t for t in exec_tags() if t not in seen]


def test_rebatched_float64(tmp_path, torchlean_oracle):
    """A captured batch of 2 run at batch 5: per-sample constants read one sample at a time."""
    g = Graph()
    x = g.input([2, 6])
    c = g.const(test_ops.rnd(1, 6))
    b = g.node("broadcast_to", [c], from_shape=[1, 6], to_shape=[2, 6])
    W, bias = test_ops.rnd(6, 6), test_ops.rnd(6)
    g.output(g.unary("softplus", g.binary("mul_elem", g.linear(x, W, bias), b)))
    xv = test_ops.rnd(5, 6)
    outs, _ = run64(g, xv, tmp_path)
    W, bias = W.astype(np.float64), bias.astype(np.float64)
    cv = np.asarray(g.inline[c]["values"], np.float64)
    want = tl_softplus((xv.astype(np.float64) @ W.T + bias) * cv)
    np.testing.assert_allclose(outs[0], want, **ACCUM64)


def f64_mlp():
    """An MLP with float64 parameters that are not float32 numbers (F64 safetensors)."""
    rng = np.random.default_rng(7)
    g = Graph()
    x = g.input([4, 16])
    h = g.unary("tanh", g.linear(x, rng.standard_normal((32, 16)), rng.standard_normal(32)))
    y = g.linear(h, rng.standard_normal((5, 32)) / 4, rng.standard_normal(5))
    g.output(g.node("softmax", [y], axis=1))
    params64 = {}
    for k in g.params:  # replace the float32 values by float64 ones near them
        params64[k] = g.params[k].astype(np.float64) + rng.standard_normal(g.params[k].shape) * 1e-4
    g.params = params64
    return g, rng.standard_normal((4, 16))


def test_float64_params_beat_float32(tmp_path):
    g, xv = f64_mlp()
    from safetensors.numpy import load_file

    gp, bp = g.save(tmp_path)
    assert all(v.dtype == np.float64 for v in load_file(bp).values())  # F64 in params.bin
    ref = g.reference(xv)[0]
    y64, err64 = run64(g, xv, tmp_path)
    y32, err32 = run64(g, xv, tmp_path, dtype="float32")
    assert err64 == ""
    assert (
        err32.strip() == f"tlrun: {tmp_path / 'x64.npy'}: float64 input rounded to float32 (--dtype float64 "
        "runs in double)"
    )
    assert y64[0].dtype == np.float64 and y32[0].dtype == np.float32
    e64 = np.abs(y64[0] - ref).max()
    e32 = np.abs(y32[0].astype(np.float64) - ref).max()
    assert e64 < 1e-14, e64
    assert e32 > 1e-9, e32  # float32 rounding of inputs, weights and every op
    assert e32 > 1e4 * e64, (e32, e64)
    print(f"max abs error vs the float64 oracle: float64 mode {e64:.3g}, float32 mode {e32:.3g}")


def test_float64_keep_and_dump(tmp_path):
    """--dump-node in a float64 run writes the intermediate as float64."""
    g, xv = f64_mlp()
    gp, bp = g.save(tmp_path)
    inp = tmp_path / "x.npy"
    np.save(inp, xv)
    d = tmp_path / "d.npy"
    r = subprocess.run(
        [tool("tlrun"), gp, bp, str(inp), "--dtype", "float64", "--dump-node", "2", str(d)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    v = np.load(d)
    assert v.dtype == np.float64
    np.testing.assert_allclose(v, g.reference(xv, all_values=True)[2], **TRANS64)


def test_float64_params_past_the_read_chunk(tmp_path):
    """params.bin is read in 1 MiB chunks (131072 doubles): an F64 weight whose only value float32
    cannot hold lies past the first chunk, and float64 mode must still see every exact value
    (the elements before it widen back from float32, the rest come from the file)."""
    rng = np.random.default_rng(11)
    g = Graph()
    x = g.input([2, 400])
    w = rng.standard_normal((400, 400)).astype(np.float32).astype(np.float64)  # float32 numbers
    w[399, 398] += 1e-9  # element 159998 > 131072: not a float32 number
    g.output(g.linear(x, w, np.zeros(400)))
    g.params = {k: v.astype(np.float64) for k, v in g.params.items()}
    k_w = next(k for k in g.params if k.endswith("_W"))
    g.params[k_w] = w
    xv = np.zeros((2, 400))
    xv[:, 398] = 1.0  # picks column 398: y[:, 399] == w[399, 398] exactly
    xv[:, 0] = 0.5
    (y,), _ = run64(g, xv, tmp_path)
    assert y[0, 399] == w[399, 398] + 0.5 * w[399, 0]
    np.testing.assert_array_equal(y, xv @ w.T)  # two nonzero terms per output: exact in double
