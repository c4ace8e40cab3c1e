"""Random graphs (hypothesis) through tlrun against the NumPy float64 oracle, node by node.

A graph is an input of random shape and 1..6 ops drawn from every op family (elementwise unary and
binary, safe_log, movement, concat, reductions, matmul, linear, conv 1-d/2-d with stride, padding,
dilation and groups, pools, batch norm, layernorm, softmax, rand_uniform, bernoulli_mask,
mse_loss), random attributes around the parent's shape (a draw the oracle's shape rule rejects is
discarded), random weights and input. EVERY op node is an output, so tlrun (--exact: no rewrite
that changes rounding) writes every value, and each node is checked IN ISOLATION: the oracle
evaluates it in float64 on tlrt's own float32 parent values, and tlrt's value must be within that
op's bound (BOUNDS below; docs/kernels.md):

  exact      bitwise float32(reference): movement, relu/abs/max/min, add/sub/mul, sqrt/inv
             (correctly rounded), pools, random ops
  k ulp      exp/log/sin/cos 2, tanh 3, sigmoid/softplus 4, safe_log 4 ulp + 4 * 2^-24
  summed     linear, matmul, conv, reductions, avg_pool: |err| <= (K + 2) 2^-23 S where
             S is the op applied to |operands| (the sum of the absolute terms) and K the number of
             terms (bounded by the operand size)
  relative   batch norm 1e-5 (1 + max|x|)(1 + |ref|), softmax 4e-5, layernorm 2e-4 * (1 + |ref|), mse_loss (n + 2) 2^-23 S

Comparing node by node keeps one op's rounding from being amplified by the next (a cancellation in
sub followed by inv is not an error of inv). NaN must be NaN where the reference is NaN, infinities
must match in sign.

A failure is shrunk by hypothesis to a minimal graph; set TL_FUZZ_SAVE=1 to write it to
tests/data/fuzz_regressions/graphs/<hash>.json, which test_regression replays forever after.
max_examples is fixed (TL_FUZZ_EXAMPLES, default 60) with no deadline: about 30 s here.
"""

import hashlib
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import oracle as O
from conftest import tool
from graphs import Graph, save_npy

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "data" / "fuzz_regressions" / "graphs"
EXAMPLES = int(os.environ.get("TL_FUZZ_EXAMPLES", "60"))
EPS = 2.0**-23

UNARY = ["abs", "sqrt", "inv", "relu", "tanh", "sigmoid", "exp", "log", "sin", "cos", "softplus", "detach"]
BINARY = ["add", "sub", "mul_elem", "max_elem", "min_elem"]
ULP = {"exp": 2, "log": 2, "sin": 2, "cos": 2, "tanh": 3, "sigmoid": 4, "softplus": 4, "safe_log": 4}
EXACT = {
    "abs",
    "sqrt",
    "inv",
    "relu",
    "detach",
    "add",
    "sub",
    "mul_elem",
    "max_elem",
    "min_elem",
    "permute",
    "transpose",
    "reshape",
    "flatten",
    "broadcast_to",
    "concat",
    "max_pool",
    "rand_uniform",
    "bernoulli_mask",
}
SUMMED = {"linear", "matmul", "conv", "reduce_sum", "reduce_mean", "sum", "avg_pool"}


def arr(draw, shape, lo=-2.0, hi=2.0):
    n = int(np.prod(shape)) if shape else 1
    v = draw(st.lists(st.floats(lo, hi, width=32), min_size=n, max_size=n))
    return np.array(v, np.float32).reshape(shape)


def add_op(draw, g, x):
    """Append one random op reading node x; returns its id (raises on a draw the oracle rejects)."""
    xs = g.shape(x)
    kind = draw(
        st.sampled_from(
            [
                "unary",
                "binary",
                "safe_log",
                "permute",
                "transpose",
                "reshape",
                "flatten",
                "broadcast_to",
                "concat",
                "reduce",
                "sum",
                "matmul",
                "linear",
                "conv",
                "pool",
                "batch_norm",
                "layernorm",
                "softmax",
                "rand_uniform",
                "bernoulli_mask",
                "mse_loss",
            ]
        )
    )
    r = len(xs)
    if kind == "unary":
        return g.unary(draw(st.sampled_from(UNARY)), x)
    if kind == "binary":
        c = g.const(arr(draw, xs))
        a, b = (x, c) if draw(st.booleans()) else (c, x)
        return g.binary(draw(st.sampled_from(BINARY)), a, b)
    if kind == "safe_log":
        return g.node("safe_log", [x, g.const(np.float32(draw(st.sampled_from([0.0, 1e-6, 0.5]))))])
    if kind == "mse_loss":
        return g.node("mse_loss", [x, g.const(arr(draw, xs))])
    if kind == "permute":
        return g.node("permute", [x], perm=draw(st.permutations(range(r))))
    if kind == "transpose":
        return g.node(
            "transpose", [x], axis1=draw(st.integers(0, max(r - 1, 0))), axis2=draw(st.integers(0, max(r - 1, 0)))
        )
    if kind == "reshape":
        n = int(np.prod(xs))
        d = draw(st.sampled_from([k for k in range(1, n + 1) if n % k == 0]))
        return g.node("reshape", [x], in_shape=xs, out_shape=[d, n // d])
    if kind == "flatten":
        return g.node("flatten", [x], value_shape=xs)
    if kind == "broadcast_to":
        to = [draw(st.integers(1, 3)) if d == 1 else d for d in xs]
        return g.node("broadcast_to", [x], from_shape=xs, to_shape=[draw(st.integers(1, 2))] + to)
    if kind == "concat":
        ax = draw(st.integers(0, r - 1))
        other = list(xs)
        other[ax] = draw(st.integers(1, 3))
        return g.node("concat", [x, g.const(arr(draw, other))], axis=ax)
    if kind == "reduce":
        axes = sorted(draw(st.sets(st.integers(0, r - 1), max_size=r)))
        return g.node(draw(st.sampled_from(["reduce_sum", "reduce_mean"])), [x], axes=axes, keepdim=draw(st.booleans()))
    if kind == "sum":
        return g.node("sum", [x])
    if kind == "matmul":
        m = draw(st.integers(1, 5))
        return g.node("matmul", [x, g.const(arr(draw, [xs[-1], m]))])
    if kind == "linear":
        m = draw(st.integers(1, 6))
        return g.linear(x, arr(draw, [m, xs[-1]]), arr(draw, [m]))
    if kind in ("conv", "pool"):
        assume(r >= 3)
        sr = draw(st.integers(1, min(2, r - 2)))
        sp = xs[r - sr :]
        k = [draw(st.integers(1, min(3, d))) for d in sp]
        s = [draw(st.integers(1, 2)) for _ in sp]
        p = [draw(st.integers(0, kk // 2)) for kk in k]
        if kind == "pool":
            return g.pool(draw(st.sampled_from(["max_pool", "avg_pool"])), x, k, s, p)
        cin = xs[r - sr - 1]
        groups = draw(st.sampled_from([1, cin] if cin > 1 else [1]))
        cout = groups * draw(st.integers(1, 2))
        dil = [draw(st.integers(1, 2)) for _ in sp]
        return g.conv(x, arr(draw, [cout, cin // groups] + k), arr(draw, [cout]), s, p, dilation=dil, groups=groups)
    if kind == "batch_norm":
        ca = draw(st.integers(0, r - 1))
        c = xs[ca]
        return g.batch_norm(x, ca, arr(draw, [c]), arr(draw, [c]), arr(draw, [c]), arr(draw, [c], 0.25, 3.0))
    if kind == "layernorm":
        ax = draw(st.integers(0, r - 1))
        return g.layernorm(x, ax, arr(draw, xs[ax:]), arr(draw, xs[ax:]))
    if kind == "softmax":
        return g.node("softmax", [x], axis=draw(st.integers(0, r - 1)))
    if kind == "rand_uniform":
        return g.node("rand_uniform", [], shape=xs, seed=draw(st.integers(0, 255)))
    keep = g.const(np.float32(draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))))
    return g.node("bernoulli_mask", [keep], shape=xs, seed=draw(st.integers(0, 255)))


@st.composite
def graphs(draw):
    g = Graph()
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    cur = g.input(shape)
    ops = []
    for _ in range(draw(st.integers(1, 6))):
        src = draw(st.sampled_from([cur] + ops)) if ops else cur
        try:
            cur = add_op(draw, g, src)
        except Exception:  # the oracle's shape rule rejects this draw
            assume(False)
        assume(int(np.prod(g.shape(cur))) <= 4096 and 0 not in g.shape(cur))
        ops.append(cur)
    g.output(*ops)
    return g, arr(draw, shape)


def ulps(a, b):
    """ULP distance between float32 arrays (monotone integer map)."""

    def key(v):
        i = np.asarray(v, np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(2**31) - i, i)

    return np.abs(key(a) - key(b))


def check_node(n, got, parents, slots):
    """got: tlrt's float32 value; parents: tlrt's float32 parent values."""
    kind = n["kind"]
    ref = np.asarray(O.eval_node(n, [p.astype(np.float64) for p in parents], slots), np.float64)
    got = np.asarray(got, np.float32).reshape(ref.shape)
    nan = np.isnan(ref)
    assert (np.isnan(got) == nan).all(), f"NaN positions differ: {got} vs {ref}"
    fin = ~nan & np.isfinite(ref)
    inf = ~nan & ~np.isfinite(ref)
    assert (got[inf] == ref[inf]).all(), f"infinities differ: {got} vs {ref}"
    g, r = got[fin].astype(np.float64), ref[fin]
    r32 = r.astype(np.float32)
    if kind in EXACT:
        bad = ulps(got[fin], r32) > 0
    elif kind in ULP:
        bad = ulps(got[fin], r32) > ULP[kind]
        if kind == "safe_log":
            bad &= np.abs(g - r) > 4 * 2.0**-24
    elif kind in SUMMED or kind == "mse_loss":
        aslots = {k: (None if v is None else np.abs(v)) for k, v in slots.items()}
        if kind == "mse_loss":
            S = np.full_like(r, np.abs(r))
        else:
            S = np.abs(np.asarray(O.eval_node(n, [np.abs(p.astype(np.float64)) for p in parents], aslots)))
            S = S[fin] if S.shape == ref.shape else np.full_like(r, np.max(S))
        K = max(int(np.prod(p.shape)) for p in parents) if parents else 1
        bad = np.abs(g - r) > (K + 2) * EPS * S + 1e-30
    elif kind == "batch_norm_eval":  # (x - mean) * (gamma / sqrt(var + eps)) + beta, a few roundings
        m = max(float(np.max(np.abs(p))) for p in parents)
        bad = np.abs(g - r) > 1e-5 * (1 + m) * (1 + np.abs(r))
    elif kind == "softmax":
        bad = np.abs(g - r) > 4e-5 * np.abs(r) + 1e-37
    elif kind == "layernorm":
        bad = np.abs(g - r) > 2e-4 * (1 + np.abs(r))
    else:
        raise AssertionError(f"no bound for {kind}")
    assert not bad.any(), f"{kind}: {got[fin][bad][:5]} vs reference {r[bad][:5]}"


def run_case(g, x, tmp):
    doc = g.to_json()
    gp, bp = g.save(tmp)
    inp = save_npy(os.path.join(str(tmp), "x.npy"), x)
    out = os.path.join(str(tmp), "o.npy")
    args = [tool("tlrun"), gp] + ([bp] if bp else []) + [inp, "-o", out, "--exact"]
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode == 0, f"tlrun failed ({r.returncode}): {r.stderr}"
    vals = {doc["input_id"]: np.asarray(x, np.float32)}
    for k, o in enumerate(doc["output_ids"]):
        vals[o] = np.load(out if k == 0 else os.path.join(str(tmp), f"o_{k}.npy"))
    for n in doc["nodes"]:
        if n["kind"] == "const":
            vals[n["id"]] = np.asarray(g.params[f"const_{n['id']}"], np.float32)
    params64 = {k: np.asarray(v, np.float64) for k, v in g.params.items()}
    for n in doc["nodes"]:
        if n["id"] not in doc["output_ids"]:
            continue
        parents = [vals[p] for p in n["parents"]]
        slots = O.node_slots(n, params64, [list(p.shape) for p in parents])
        check_node(n, vals[n["id"]], parents, slots)
    return doc


def save_fixture(g, x):
    FIXTURES.mkdir(parents=True, exist_ok=True)
    case = {
        "graph": g.to_json(),
        "params": {k: v.tolist() for k, v in g.params.items()},
        "x": np.asarray(x).tolist(),
        "x_shape": list(np.shape(x)),
    }
    text = json.dumps(case, sort_keys=True)
    (FIXTURES / (hashlib.sha1(text.encode()).hexdigest()[:12] + ".json")).write_text(text)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
@given(graphs())
def test_random_graphs(tmp_path_factory, case):
    g, x = case
    tmp = tmp_path_factory.mktemp("g")
    try:
        run_case(g, x, tmp)
    except AssertionError:
        if os.environ.get("TL_FUZZ_SAVE"):
            save_fixture(g, x)
        raise


def fixture_files():
    return sorted(FIXTURES.glob("*.json")) if FIXTURES.is_dir() else []


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.stem)
def test_regression(path, tmp_path):
    case = json.loads(path.read_text())
    g = Graph()
    doc = case["graph"]
    g.nodes = doc["nodes"]
    g.input_id = doc["input_id"]
    g.output_ids = doc["output_ids"]
    g.params = {k: np.asarray(v, np.float32) for k, v in case["params"].items()}
    run_case(g, np.asarray(case["x"], np.float32).reshape(case["x_shape"]), tmp_path)


def test_a_wrong_kernel_is_caught(tmp_path):
    """The check can fail: a planted kernel bug (TL_TEST_PLANT_BUG adds 1e-2 to a tag's output)
    is reported on that node."""
    g = Graph()
    x = g.input([2, 3])
    y = g.unary("tanh", x)
    g.output(y)
    os.environ["TL_TEST_PLANT_BUG"] = "tanh"
    try:
        with pytest.raises(AssertionError, match="tanh"):
            run_case(g, np.full((2, 3), 0.5, np.float32), tmp_path)
    finally:
        del os.environ["TL_TEST_PLANT_BUG"]
