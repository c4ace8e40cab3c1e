"""Whole graphs through tlrun against PyTorch eager, plus tlrun's options and error paths.

PyTorch comparisons use torch.testing.assert_close with its float32 defaults (rtol 1.3e-6,
atol 1e-5) on the float32 outputs: the graphs are small enough (K <= 256, values O(1)) that
float32 accumulation-order differences between OpenBLAS and PyTorch stay inside atol.
"""
import json
import os
import re
import subprocess

import numpy as np
import pytest
import torch
import torch.nn as nn

from conftest import tool
from graphs import Graph, run_tlrun, save_npy

torch.manual_seed(0)
RNG = np.random.default_rng(7)


def np32(t):
    return t.detach().numpy().astype(np.float32)


# ---------------------------------------------------------------------- graphs from torch modules
def mlp_module(sizes=(784, 256, 256, 10)):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


def mlp_graph(mod, batch=1):
    g = Graph()
    h = g.input([batch, mod[0].in_features])
    for layer in mod:
        if isinstance(layer, nn.Linear):
            h = g.linear(h, np32(layer.weight), np32(layer.bias))
        else:
            h = g.unary("relu", h)
    g.output(h)
    return g


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2)
        self.fc = nn.Linear(8 * 4 * 4, 10)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.5, 0.5)
            self.bn.running_var.uniform_(0.5, 2.0)
            self.bn.weight.uniform_(0.5, 1.5)
            self.bn.bias.uniform_(-0.2, 0.2)

    def forward(self, x):
        x = torch.relu(self.bn(self.c1(x)))
        x = nn.functional.max_pool2d(x, 2)
        x = torch.tanh(self.c2(x))
        x = nn.functional.avg_pool2d(x, 1)
        x = x.reshape(x.shape[0], -1)
        return torch.softmax(self.fc(x), dim=1)


def cnn_graph(m):
    g = Graph()
    x = g.input([1, 3, 16, 16])
    h = g.conv(x, np32(m.c1.weight), np32(m.c1.bias), [1, 1], [1, 1])
    h = g.batch_norm(h, 1, np32(m.bn.weight), np32(m.bn.bias), np32(m.bn.running_mean),
                     np32(m.bn.running_var), eps=m.bn.eps)
    h = g.unary("relu", h)
    h = g.pool("max_pool", h, [2, 2], [2, 2], [0, 0])
    h = g.conv(h, np32(m.c2.weight), np32(m.c2.bias), [2, 2], [1, 1], groups=2)
    h = g.unary("tanh", h)
    h = g.pool("avg_pool", h, [1, 1], [1, 1], [0, 0])
    h = g.node("reshape", [h], in_shape=[1, 8, 4, 4], out_shape=[1, 128])
    h = g.linear(h, np32(m.fc.weight), np32(m.fc.bias))
    g.output(g.node("softmax", [h], axis=1))
    return g


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    d = tmp_path_factory.mktemp("mlp")
    mod = mlp_module()
    g = mlp_graph(mod)
    gp, bp = g.save(d)
    return mod, g, gp, bp


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    d = tmp_path_factory.mktemp("cnn")
    torch.manual_seed(1)
    m = SmallCNN().eval()
    g = cnn_graph(m)
    gp, bp = g.save(d)
    return m, g, gp, bp


# ---------------------------------------------------------------------- numerics vs PyTorch
@pytest.mark.parametrize("batch", [1, 64])
def test_mlp_vs_pytorch(mlp, batch, tmp_path):
    mod, g, gp, bp = mlp
    x = RNG.standard_normal((batch, 784)).astype(np.float32)
    (y,) = run_tlrun(tool("tlrun"), gp, bp, x, tmp_path)
    with torch.no_grad():
        ref = mod(torch.from_numpy(x))
    assert y.shape == (batch, 10)
    torch.testing.assert_close(torch.from_numpy(y), ref)


@pytest.mark.parametrize("batch", [1, 64])
def test_cnn_vs_pytorch(cnn, batch, tmp_path):
    m, g, gp, bp = cnn
    x = RNG.standard_normal((batch, 3, 16, 16)).astype(np.float32)
    (y,) = run_tlrun(tool("tlrun"), gp, bp, x, tmp_path)
    with torch.no_grad():
        ref = m(torch.from_numpy(x))
    assert y.shape == (batch, 10)
    torch.testing.assert_close(torch.from_numpy(y), ref)


def test_cnn_inline_payloads_vs_pytorch(cnn, tmp_path):
    m, g, _, _ = cnn
    gp, bp = g.save(tmp_path, name="inline", inline=True)
    assert bp is None
    x = RNG.standard_normal((1, 3, 16, 16)).astype(np.float32)
    (y,) = run_tlrun(tool("tlrun"), gp, None, x, tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(y), m(torch.from_numpy(x)))


def test_batch_matches_single_runs(cnn, tmp_path):
    """batch 1 -> 5: each row equals the batch-1 run of that sample."""
    m, g, gp, bp = cnn
    x = RNG.standard_normal((5, 3, 16, 16)).astype(np.float32)
    (yb,) = run_tlrun(tool("tlrun"), gp, bp, x, tmp_path)
    for i in range(5):
        (y1,) = run_tlrun(tool("tlrun"), gp, bp, x[i:i + 1], tmp_path)
        np.testing.assert_allclose(yb[i:i + 1], y1, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------- determinism
def non_blas_graph():
    """Large enough (> 65536 elements) that the kernels run multi-threaded."""
    g = Graph()
    x = g.input([4, 8, 64, 64])
    a = g.unary("tanh", x)
    b = g.binary("mul_elem", a, x)
    c = g.node("softmax", [b], axis=3)
    d = g.layernorm(c, 2, RNG.standard_normal((64, 64)).astype(np.float32),
                    RNG.standard_normal((64, 64)).astype(np.float32))
    e = g.pool("max_pool", d, [3, 3], [2, 2], [1, 1])
    f = g.pool("avg_pool", d, [2, 2], [2, 2], [0, 0])
    s = g.node("reduce_sum", [b], axes=[1, 3], keepdim=False)
    t = g.node("permute", [d], perm=[0, 3, 1, 2])
    g.output(e, f, s, g.unary("exp", t))
    return g


def test_bitwise_deterministic_across_runs_and_threads(tmp_path):
    g = non_blas_graph()
    gp, bp = g.save(tmp_path)
    x = RNG.standard_normal((4, 8, 64, 64)).astype(np.float32)
    results = []
    for threads in (1, 2, 2, 1):
        d = tmp_path / f"r{len(results)}"
        d.mkdir()
        results.append(run_tlrun(tool("tlrun"), gp, bp, x, d, "--threads", threads, n_outputs=4))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert a.tobytes() == b.tobytes()
    ref = g.reference(x)
    for o, r in zip(results[0], ref, strict=True):
        np.testing.assert_allclose(o, r, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------- batch error
def flatten_graph():
    g = Graph()
    x = g.input([1, 2, 2])
    r = g.unary("relu", x)
    g.output(g.node("flatten", [r], value_shape=[1, 2, 2]))
    return g


def test_batch_error_message(tmp_path):
    gp, _ = flatten_graph().save(tmp_path)
    r = run_tlrun(tool("tlrun"), gp, None, np.ones((64, 2, 2), np.float32), tmp_path, check=False)
    assert r.returncode == 2
    inp = os.path.join(str(tmp_path), "input.npy")
    assert r.stderr == (f"{inp}: batch 64 does not fit the graph: node[2] (flatten) mixes the "
                        "batch axis (captured batch 1)\n")


@pytest.mark.parametrize("kind", ["softmax0", "sum", "transpose0", "const_add"])
def test_batch_error_other_ops(kind, tmp_path):
    g = Graph()
    x = g.input([1, 3])
    if kind == "softmax0":
        y, tag = g.node("softmax", [x], axis=0), "softmax"
    elif kind == "sum":
        y, tag = g.node("sum", [x]), "sum"
    elif kind == "transpose0":
        y, tag = g.node("transpose", [x], axis1=0, axis2=1), "transpose"
    else:
        y, tag = g.binary("add", x, g.const(np.ones((1, 3), np.float32))), "add"
    g.output(y)
    gp, bp = g.save(tmp_path)
    r = run_tlrun(tool("tlrun"), gp, bp, np.ones((4, 3), np.float32), tmp_path, check=False)
    assert r.returncode == 2
    assert r.stderr.endswith(f"batch 4 does not fit the graph: node[{y}] ({tag}) mixes the batch "
                             "axis (captured batch 1)\n"), r.stderr


def test_batch_reshape_rewritten(tmp_path):
    """reshape [1,2,6] -> [1,12] runs at batch 3 as [3,2,6] -> [3,12]."""
    g = Graph()
    x = g.input([1, 2, 6])
    r = g.node("reshape", [x], in_shape=[1, 2, 6], out_shape=[1, 12])
    g.output(g.node("softmax", [r], axis=1))
    gp, _ = g.save(tmp_path)
    xv = RNG.standard_normal((3, 2, 6)).astype(np.float32)
    (y,) = run_tlrun(tool("tlrun"), gp, None, xv, tmp_path)
    torch.testing.assert_close(torch.from_numpy(y), torch.softmax(torch.from_numpy(xv).reshape(3, 12), 1))


# ---------------------------------------------------------------------- options
def test_dump_node(cnn, tmp_path):
    m, g, gp, bp = cnn
    x = RNG.standard_normal((1, 3, 16, 16)).astype(np.float32)
    inp = save_npy(tmp_path / "x.npy", x)
    ref = g.reference(x, all_values=True)
    for nid in (1, 3, 7):
        out = tmp_path / f"n{nid}.npy"
        r = subprocess.run([tool("tlrun"), gp, bp, inp, "--dump-node", str(nid), str(out)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        v = np.load(out)
        assert v.shape == ref[nid].shape
        np.testing.assert_allclose(v, ref[nid], rtol=1e-5, atol=1e-5)


def test_profile_trace(cnn, tmp_path):
    m, g, gp, bp = cnn
    inp = save_npy(tmp_path / "x.npy", RNG.standard_normal((2, 3, 16, 16)))
    trace = tmp_path / "trace.json"
    r = subprocess.run([tool("tlrun"), gp, bp, inp, "--profile", str(trace)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    doc = json.loads(trace.read_text())
    ev = doc["traceEvents"]
    assert len(ev) == len(g.nodes)
    for i, (e, n) in enumerate(zip(ev, g.nodes, strict=True)):
        assert e["ph"] == "X" and e["name"] == n["kind"]
        assert e["args"]["id"] == i
        assert e["dur"] >= 0 and e["args"]["us"] == e["dur"]
        assert e["args"]["inputs"] == [[2] + g.nodes[p]["shape"][1:] for p in n["parents"]]
        assert e["args"]["output"] == [2] + n["shape"][1:]
    assert [e["ts"] for e in ev] == sorted(e["ts"] for e in ev)
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]


def test_repeat_output(mlp, tmp_path):
    _, _, gp, bp = mlp
    inp = save_npy(tmp_path / "x.npy", RNG.standard_normal((1, 784)))
    r = subprocess.run([tool("tlrun"), gp, bp, inp, "--repeat", "5"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    mt = re.search(r"^repeat 5: min ([0-9.]+) ms, median ([0-9.]+) ms$", r.stdout, re.M)
    assert mt and float(mt.group(1)) <= float(mt.group(2))
    assert "output 0: shape [1, 10]" in r.stdout


def test_summary_without_o(tmp_path):
    g = Graph()
    x = g.input([2, 3])
    g.output(g.unary("relu", x))
    gp, _ = g.save(tmp_path)
    inp = save_npy(tmp_path / "x.npy", np.array([[1, -2, 3], [-4, 5, 6]], np.float32))
    r = subprocess.run([tool("tlrun"), gp, inp], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "output 0: shape [2, 3] min 0 max 6 mean 2.5 first [1, 0, 3, 0, 5, 6]\n"


def test_output_atomic_and_several_outputs(tmp_path):
    g = Graph()
    x = g.input([2, 3])
    g.output(g.unary("relu", x), g.unary("abs", x), g.unary("exp", x))
    gp, _ = g.save(tmp_path / "g")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "y.npy").write_bytes(b"old contents")   # overwritten via rename
    xv = RNG.standard_normal((2, 3)).astype(np.float32)
    inp = save_npy(tmp_path / "x.npy", xv)
    r = subprocess.run([tool("tlrun"), gp, inp, "-o", str(out_dir / "y.npy")], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out_dir)) == ["y.npy", "y_1.npy", "y_2.npy"]
    np.testing.assert_array_equal(np.load(out_dir / "y.npy"), np.maximum(xv, 0))
    np.testing.assert_array_equal(np.load(out_dir / "y_1.npy"), np.abs(xv))
    np.testing.assert_allclose(np.load(out_dir / "y_2.npy"), np.exp(xv.astype(np.float64)), rtol=1e-6)


def test_planted_bug_switch(tmp_path):
    g = Graph()
    x = g.input([2, 3])
    r = g.unary("relu", x)
    g.output(g.unary("tanh", r))
    gp, _ = g.save(tmp_path)
    xv = RNG.standard_normal((2, 3)).astype(np.float32)
    inp = save_npy(tmp_path / "x.npy", xv)
    env = dict(os.environ, TL_TEST_PLANT_BUG="relu")
    r1 = subprocess.run([tool("tlrun"), gp, inp, "--dump-node", "1", str(tmp_path / "r.npy"),
                         "-o", str(tmp_path / "y.npy")], capture_output=True, text=True, env=env)
    assert r1.returncode == 0, r1.stderr
    planted = np.maximum(xv, 0) + np.float32(1e-2)
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), planted)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), np.tanh(planted.astype(np.float64)), rtol=1e-6)


# ---------------------------------------------------------------------- error paths
@pytest.fixture
def small(tmp_path):
    g = Graph()
    x = g.input([1, 4])
    g.output(g.linear(x, np.ones((3, 4), np.float32), np.zeros(3, np.float32)))
    gp, bp = g.save(tmp_path)
    inp = save_npy(tmp_path / "x.npy", np.ones((1, 4), np.float32))
    return gp, bp, inp, tmp_path


USAGE = ("usage: tlrun graph.json [params.bin] input.npy [-o out.npy] [--threads N] [--repeat N] "
         "[--profile trace.json] [--dump-node ID out.npy] [--isa scalar|avx2|avx512] "
         "[--dtype float32|float64] [--exact]")


def error_cases(gp, bp, inp, d):
    bad = str(d / "bad.npy")
    with open(bad, "wb") as f:
        f.write(b"garbage")
    wrong = save_npy(d / "wrong.npy", np.ones((1, 3), np.float32))
    return [
        ([], USAGE),
        ([gp], USAGE),
        ([gp, bp, inp, "extra"], "tlrun: unexpected argument 'extra'"),
        ([gp, bp, inp, "--bogus"], "tlrun: unknown option '--bogus'"),
        ([gp, bp, inp, "--threads", "0"], "tlrun: --threads: expected an integer in [1, 1024], got '0'"),
        ([gp, bp, inp, "--threads", "two"], "tlrun: --threads: expected an integer in [1, 1024], got 'two'"),
        ([gp, bp, inp, "--repeat", "-3"], "tlrun: --repeat: expected an integer >= 1, got '-3'"),
        ([gp, bp, inp, "--isa", "sse"], "tlrun: --isa: expected scalar, avx2 or avx512, got 'sse'"),
        ([gp, bp, inp, "-o"], "tlrun: -o needs a value"),
        ([gp, bp, inp, "--dump-node", "1"], "tlrun: --dump-node needs ID and out.npy"),
        ([gp, bp, inp, "--dump-node", "x", "o.npy"],
         "tlrun: --dump-node: expected an integer >= 0, got 'x'"),
        ([gp, bp, inp, "--dump-node", "9", str(d / "o.npy")],
         f"tlrun: --dump-node 9: no such node ({gp} has 2 nodes)"),
        ([str(d / "missing.json"), bp, inp], f"{d / 'missing.json'}: cannot open: No such file or directory"),
        ([gp, bp, str(d / "missing.npy")], f"{d / 'missing.npy'}: cannot open: No such file or directory"),
        ([gp, bp, bad], f"{bad}: not a .npy file (bad magic)"),
        ([gp, inp], f"{gp}: node[1]: linear has no weight: give params.bin or inline payloads"),
        ([gp, bp, wrong], f"{wrong}: shape [1, 3] does not match the graph input [1, 4]"),
    ]


def test_error_paths(small):
    gp, bp, inp, d = small
    for args, msg in error_cases(gp, bp, inp, d):
        r = subprocess.run([tool("tlrun"), *args], capture_output=True, text=True)
        assert (r.returncode, r.stderr) == (2, msg + "\n"), args


def test_runtime_failure_exit_1(small):
    gp, bp, inp, d = small
    out = d / "no_such_dir" / "y.npy"
    r = subprocess.run([tool("tlrun"), gp, bp, inp, "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr == f"{out}: cannot create: No such file or directory\n"


# ---------------------------------------------------------------------- constant folding
def trace_of(gp, bp, x, tmp_path, *extra, n_outputs=None):
    """tlrun --profile: (outputs, {node id: plan})."""
    trace = tmp_path / "trace.json"
    if n_outputs is None:
        n_outputs = len(json.load(open(gp))["output_ids"])
    outs = run_tlrun(tool("tlrun"), gp, bp, x, tmp_path, "--profile", trace, *extra,
                     n_outputs=n_outputs)
    ev = json.loads(trace.read_text())["traceEvents"]
    return outs, {e["args"]["id"]: e["args"]["plan"] for e in ev}


def folding_graph():
    """x * broadcast(c) + relu(broadcast(c2) - broadcast(c2) * 3) + rand: constant chains."""
    g = Graph()
    x = g.input([2, 3, 4])
    c = g.const(np.float32([[[1.5]]]))
    bc = g.node("broadcast_to", [c], from_shape=[1, 1, 1], to_shape=[2, 3, 4])
    m = g.binary("mul_elem", x, bc)
    c2 = g.const(RNG.standard_normal((4,)).astype(np.float32))
    b2 = g.node("broadcast_to", [c2], from_shape=[4], to_shape=[2, 3, 4])
    three = g.node("broadcast_to", [g.const(np.float32(3.0))], from_shape=[], to_shape=[2, 3, 4])
    t = g.binary("sub", b2, g.binary("mul_elem", b2, three))
    r = g.unary("relu", t)
    y = g.binary("add", m, r)
    g.output(y, r)
    return g, {"bc": bc, "b2": b2, "three": three, "t": t, "r": r, "m": m, "y": y}


def test_constant_folding_gone_from_the_run(tmp_path):
    g, ids = folding_graph()
    gp, bp = g.save(tmp_path)
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    (y, r), plan = trace_of(gp, bp, x, tmp_path)
    for k in ("bc", "b2", "three", "t", "r"):
        assert plan[ids[k]] == "folded", (k, plan)
    # not folded: m runs inside y's elementwise chain (y reads the folded r as a whole value)
    assert plan[ids["m"]] == "fused" and plan[ids["y"]] == "run"
    assert plan[0] == "input"
    ref = g.reference(x)
    np.testing.assert_allclose(y, ref[0], rtol=1e-6, atol=1e-6)
    c2 = g.inline[g.nodes[ids["b2"]]["parents"][0]]["values"]
    exact = np.maximum(c2 - c2 * np.float32(3), np.float32(0))   # float32 ops, as the kernels
    np.testing.assert_array_equal(r, np.broadcast_to(exact, (2, 3, 4)))   # a folded output
    np.testing.assert_allclose(r, ref[1], rtol=1e-6)
    # KEEP_ALL (--dump-node) still returns every folded value
    vals = g.reference(x, all_values=True)
    for k in ("bc", "b2", "t"):
        out = tmp_path / f"{k}.npy"
        p = subprocess.run([tool("tlrun"), gp, bp, str(tmp_path / "input.npy"), "--dump-node",
                            str(ids[k]), str(out)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        np.testing.assert_allclose(np.load(out), vals[ids[k]], rtol=1e-6)


def test_folded_random_keeps_its_values(tmp_path):
    """rand_uniform (and a product over it) is folded; its values are the run-time ones."""
    g = Graph()
    x = g.input([3, 5])
    u = g.node("rand_uniform", [], shape=[3, 5], seed=11)
    s = g.binary("mul_elem", u, u)
    g.output(g.binary("add", x, s), u)
    gp, _ = g.save(tmp_path)
    x0 = np.zeros((3, 5), np.float32)
    (y, u1), plan = trace_of(gp, None, x0, tmp_path)
    assert plan[u] == "folded" and plan[s] == "folded"
    assert ((u1 >= 0) & (u1 < 1)).all() and len(np.unique(u1)) == 15
    np.testing.assert_array_equal(y, u1 * u1)
    # the same draws with another input, and when every value is kept
    x1 = RNG.standard_normal((3, 5)).astype(np.float32)
    d = tmp_path / "b"
    d.mkdir()
    (y1, u2) = run_tlrun(tool("tlrun"), gp, None, x1, d, "--dump-node", u, d / "u.npy", n_outputs=2)
    np.testing.assert_array_equal(u2, u1)
    np.testing.assert_array_equal(np.load(d / "u.npy"), u1)
    np.testing.assert_array_equal(y1, x1 + u1 * u1)


# ---------------------------------------------------------------------- re-batching with constants
@pytest.mark.parametrize("name", ["mlp", "dwconv", "transformer", "two_outputs", "lenet", "resblock"])
def test_zoo_batch1_capture_runs_at_batch_64(name, tmp_path):
    import zoo_util as Z
    fname, cls, shape = Z.ZOO[name]
    r = Z.capture(Z.ZOO_DIR / fname, cls, tmp_path, [1] + shape[1:], *Z.ROUNDED.get(name, []))
    assert r.returncode == 0, r.stderr
    gp, bp = tmp_path / "graph.json", tmp_path / "params.bin"
    n_out = len(Z.load_graph(gp)["output_ids"])
    x = RNG.standard_normal([64] + shape[1:]).astype(np.float32)
    outs = run_tlrun(tool("tlrun"), gp, bp, x, tmp_path, n_outputs=n_out)
    eager = Z.eager_outputs(Z.ZOO_DIR / fname, cls, x)
    assert len(outs) == len(eager)
    for got, ref in zip(outs, eager, strict=True):
        assert got.shape[0] == 64
        torch.testing.assert_close(torch.from_numpy(got), ref)


def rebatch_graph(kind, B=1):
    """x [B,3] combined elementwise with a constant operand built in different ways."""
    g = Graph()
    x = g.input([B, 3])
    if kind == "scalar_bcast":       # const [1,1] -> [B,3]: uniform
        c = g.node("broadcast_to", [g.const(np.float32([[2.5]]))], from_shape=[1, 1], to_shape=[B, 3])
    elif kind == "row_bcast":        # const [3] -> [B,3]: uniform
        c = g.node("broadcast_to", [g.const(np.float32([1, -2, 3]))], from_shape=[3], to_shape=[B, 3])
    elif kind == "unsqueeze":        # const [3] -> reshape [1,3] (B = 1 only)
        c = g.node("reshape", [g.const(np.float32([1, -2, 3]))], in_shape=[3], out_shape=[1, 3])
    elif kind == "chain":            # exp(bcast) * bcast: elementwise over uniform values
        b = g.node("broadcast_to", [g.const(np.float32([[0.5, 1, 2]]))], from_shape=[1, 3],
                   to_shape=[B, 3])
        c = g.binary("mul_elem", g.unary("exp", b), b)
    elif kind == "raw":              # const [B,3]: its axis 0 may be the batch: refused
        c = g.const(np.arange(3 * B, dtype=np.float32).reshape(B, 3))
    elif kind == "raw_relu":         # relu(const [B,3]): still not uniform
        c = g.unary("relu", g.const(np.arange(3 * B, dtype=np.float32).reshape(B, 3)))
    elif kind == "bcast_batch":      # const [B,1] -> [B,3]: expands axis 1 only (B > 1: refused)
        c = g.node("broadcast_to", [g.const(np.arange(B, dtype=np.float32).reshape(B, 1))],
                   from_shape=[B, 1], to_shape=[B, 3])
    y = g.binary("sub", c, g.binary("mul_elem", x, c))
    g.output(g.unary("tanh", y))
    return g, c, y


@pytest.mark.parametrize("kind,B", [("scalar_bcast", 1), ("row_bcast", 1), ("unsqueeze", 1),
                                    ("chain", 1), ("scalar_bcast", 2), ("row_bcast", 2), ("chain", 2)])
def test_rebatch_uniform_constant(kind, B, tmp_path):
    g, c, _ = rebatch_graph(kind, B)
    gp, bp = g.save(tmp_path)
    cval = g.reference(np.zeros((B, 3)), all_values=True)[c][0]   # one sample of the operand
    for N in (1, 5, 64):
        x = RNG.standard_normal((N, 3)).astype(np.float32)
        d = tmp_path / f"n{N}"
        d.mkdir()
        (y,) = run_tlrun(tool("tlrun"), gp, bp, x, d)
        ref = np.tanh(cval - x.astype(np.float64) * cval)
        np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["raw", "raw_relu"])
def test_rebatch_refuses_per_sample_constants(kind, tmp_path):
    g, c, _ = rebatch_graph(kind, 1)
    gp, bp = g.save(tmp_path)
    mul = next(n["id"] for n in g.nodes if n["kind"] == "mul_elem" and c in n["parents"])
    r = run_tlrun(tool("tlrun"), gp, bp, np.ones((4, 3), np.float32), tmp_path, check=False)
    assert r.returncode == 2
    assert r.stderr.endswith(f"batch 4 does not fit the graph: node[{mul}] (mul_elem) mixes the "
                             "batch axis (captured batch 1)\n"), r.stderr


@pytest.mark.parametrize("kind", ["raw", "bcast_batch"])
def test_rebatch_refuses_captured_batch_constant(kind, tmp_path):
    """captured at batch 2 with a constant whose two samples differ (const [2,3], or const [2,1]
    broadcast along axis 1 only): batch 5 is refused."""
    g, c, _ = rebatch_graph(kind, 2)
    gp, bp = g.save(tmp_path)
    mul = next(n["id"] for n in g.nodes if n["kind"] == "mul_elem")
    r = run_tlrun(tool("tlrun"), gp, bp, np.ones((5, 3), np.float32), tmp_path, check=False)
    assert r.returncode == 2
    # the message names the real cause: the constant sized by the captured batch
    kind_c = next(n["kind"] for n in g.nodes if n["id"] == c)
    assert r.stderr.endswith(f"batch 5 does not fit the graph: node[{mul}] (mul_elem) combines the batch with "
                             f"node[{c}] ({kind_c}) [2, 3], a constant value sized by the captured batch 2 (a "
                             "per-sample constant must be captured as extent 1 on axis 0 broadcast to the "
                             "batch)\n"), r.stderr


def test_rebatch_concat_with_a_per_sample_token(tmp_path):
    """A class token (const [1,1,D] broadcast to the captured batch) concatenated with the tokens
    along axis 1, then a mean over the tokens: runs at other batches, the token meeting every
    sample (NumPy float64 oracle)."""
    g = Graph()
    x = g.input([1, 4, 6])
    tok = RNG.standard_normal((1, 1, 6)).astype(np.float32)
    cls = g.node("broadcast_to", [g.const(tok)], from_shape=[1, 1, 6], to_shape=[1, 1, 6])
    cat = g.node("concat", [cls, x], axis=1)
    g.output(g.node("reduce_mean", [cat], axes=[1], keepdim=False))
    gp, bp = g.save(tmp_path)
    for N in (1, 3, 8):
        xv = RNG.standard_normal((N, 4, 6)).astype(np.float32)
        d = tmp_path / f"n{N}"
        d.mkdir()
        (y,) = run_tlrun(tool("tlrun"), gp, bp, xv, d)
        full = np.concatenate([np.broadcast_to(tok.astype(np.float64), (N, 1, 6)), xv.astype(np.float64)], axis=1)
        np.testing.assert_allclose(y, full.mean(axis=1), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------- zero-copy transposes
def attention_graph(T=5, H=2, D=4, scale=0.5):
    """Multi-head attention core as the capture adapter writes it (reshape/transpose/matmul)."""
    g = Graph()
    E = H * D
    x = g.input([1, T, E])
    heads = []
    for _ in range(3):
        lin = g.linear(x, RNG.standard_normal((E, E)).astype(np.float32) / 3,
                       RNG.standard_normal(E).astype(np.float32))
        r = g.node("reshape", [lin], in_shape=[1, T, E], out_shape=[1, T, H, D])
        heads.append(g.node("transpose", [r], axis1=1, axis2=2))          # [1,H,T,D]
    q, k, v = heads
    kt = g.node("transpose", [k], axis1=2, axis2=3)                        # [1,H,D,T]
    s = g.node("matmul", [q, kt])
    sc = g.node("broadcast_to", [g.const(np.float32([[[[scale]]]]))], from_shape=[1, 1, 1, 1],
                to_shape=[1, H, T, T])
    p = g.node("softmax", [g.binary("mul_elem", s, sc)], axis=3)
    o = g.node("matmul", [p, v])                                           # [1,H,T,D]
    ot = g.node("transpose", [o], axis1=1, axis2=2)                        # [1,T,H,D]
    y = g.node("reshape", [ot], in_shape=[1, T, H, D], out_shape=[1, T, E])
    g.output(y)
    return g, {"q": q, "k": k, "v": v, "kt": kt, "s": s, "o": o, "ot": ot}


def attention_ref(g, x):
    """float64 reference at any batch (the graph's reshape attrs name batch 1)."""
    lins = [n for n in g.nodes if n["kind"] == "linear"]
    N, T, E = x.shape
    H = g.nodes[lins[0]["id"] + 1]["out_shape"][2]
    D = E // H
    x = x.astype(np.float64)
    q, k, v = [(x @ g._p(n["id"], "weight").T + g._p(n["id"], "bias")).reshape(N, T, H, D)
               .transpose(0, 2, 1, 3) for n in lins]
    scale = float(g._p(next(n["id"] for n in g.nodes if n["kind"] == "const"), "values").reshape(-1)[0])
    s = q @ k.transpose(0, 1, 3, 2) * scale
    e = np.exp(s - s.max(axis=3, keepdims=True))
    p = e / e.sum(axis=3, keepdims=True)
    return (p @ v).transpose(0, 2, 1, 3).reshape(N, T, E)


def test_matmul_reads_transposes_in_place(tmp_path):
    g, ids = attention_graph()
    gp, bp = g.save(tmp_path)
    for N in (1, 3):
        x = RNG.standard_normal((N, 5, 8)).astype(np.float32)
        d = tmp_path / f"n{N}"
        d.mkdir()
        (y,), plan = trace_of(gp, bp, x, d)
        for k in ("q", "v", "kt"):
            assert plan[ids[k]] == "view", (k, plan)
        assert plan[ids["ot"]] == "alias" and plan[ids["o"]] == "run"
        np.testing.assert_allclose(y, attention_ref(g, x), rtol=1e-5, atol=1e-5)
    # every intermediate is materialized when asked for (KEEP_ALL): the transposes' real values
    x = RNG.standard_normal((1, 5, 8)).astype(np.float32)
    inp = save_npy(tmp_path / "x1.npy", x)
    vals = g.reference(x, all_values=True)
    for k in ("q", "kt", "o", "ot"):
        out = tmp_path / f"{k}.npy"
        p = subprocess.run([tool("tlrun"), gp, bp, inp, "--dump-node", str(ids[k]), str(out)],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        np.testing.assert_allclose(np.load(out), vals[ids[k]], rtol=1e-5, atol=1e-5)


def test_transpose_views_and_materialized_fallbacks(tmp_path):
    """Which permutes a matmul reads in place (chains included) and which are copied: one also
    read by a non-matmul node, and ones whose last two axes have no unit stride."""
    g = Graph()
    x = g.input([2, 3, 4, 5])
    t = g.node("transpose", [x], axis1=2, axis2=3)                  # [2,3,5,4]
    m1 = g.node("matmul", [t, x])                                   # [2,3,5,5]
    e = g.unary("exp", t)                                           # t also read here: copied
    p = g.node("permute", [x], perm=[0, 3, 1, 2])                   # [2,5,3,4]: no unit stride
    q = g.node("permute", [x], perm=[0, 3, 2, 1])                   # [2,5,4,3]: no unit stride
    m2 = g.node("matmul", [p, q])                                   # [2,5,3,3]
    r = g.node("permute", [x], perm=[0, 1, 3, 2])                   # [2,3,5,4]: trans_b
    m3 = g.node("matmul", [x, r])                                   # [2,3,4,4]
    t1 = g.node("transpose", [x], axis1=1, axis2=2)                 # [2,4,3,5]
    tt = g.node("transpose", [t1], axis1=2, axis2=3)                # [2,4,5,3]: view of a view
    y = g.node("transpose", [x], axis1=1, axis2=2)                  # [2,4,3,5]: lda 20
    m4 = g.node("matmul", [tt, y])                                  # [2,4,5,5]
    g.output(m1, e, m2, m3, m4)
    gp, bp = g.save(tmp_path)
    xv = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    outs, plan = trace_of(gp, bp, xv, tmp_path, n_outputs=5)
    assert [plan[i] for i in (t, p, q)] == ["run"] * 3
    assert [plan[i] for i in (r, t1, tt, y)] == ["view"] * 4
    ref = g.reference(xv)
    for o, rr in zip(outs, ref, strict=True):
        np.testing.assert_allclose(o, rr, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rows", [1, 2, 64, 128, 129])
def test_linear_operand_order_vs_pytorch(rows, tmp_path):
    """Rows 2..128 with K >= 512 and N >= 256 run as Y^T = W X^T plus a transpose; the others as
    Y = X W^T: both against PyTorch, bias or no bias."""
    lin = nn.Linear(512, 256).eval()
    g = Graph()
    x = g.input([rows, 512])
    h = g.linear(x, np32(lin.weight), np32(lin.bias))
    h2 = g.linear(x, np32(lin.weight), np.zeros(256, np.float32))
    g.output(h, h2)
    gp, bp = g.save(tmp_path)
    xv = RNG.standard_normal((rows, 512)).astype(np.float32)
    y, y2 = run_tlrun(tool("tlrun"), gp, bp, xv, tmp_path, n_outputs=2)
    with torch.no_grad():
        ref = lin(torch.from_numpy(xv))
        ref2 = torch.from_numpy(xv) @ lin.weight.T
    torch.testing.assert_close(torch.from_numpy(y), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.from_numpy(y2), ref2, rtol=1e-5, atol=1e-5)


def test_view_demotion_reaches_the_parent(tmp_path):
    """A chain of permutes whose base is materialized (also read by exp): with the real strides
    the last permute is no GEMM operand, so it is copied, and so must be the permute it reads."""
    g = Graph()
    x = g.input([2, 3, 4])
    a = g.node("transpose", [x], axis1=1, axis2=2)                   # [2,4,3], read by exp too
    e = g.unary("exp", a)
    t = g.node("permute", [a], perm=[0, 1, 2])                       # identity permute
    c = g.node("permute", [t], perm=[2, 0, 1])                       # [3,2,4]
    m = g.node("matmul", [c, g.const(RNG.standard_normal((4, 5)).astype(np.float32))])
    g.output(m, e)
    gp, bp = g.save(tmp_path)
    xv = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    outs, plan = trace_of(gp, bp, xv, tmp_path)
    assert [plan[i] for i in (a, t, c)] == ["run"] * 3
    for o, r in zip(outs, g.reference(xv), strict=True):
        np.testing.assert_allclose(o, r, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------- value graph + params.bin
def test_mha_value_graph_with_params_bin(tmp_path):
    """params.bin names carry the file's node ids (as the capture script and graphs.Graph write
    them); the multihead_attention lowering renumbers nodes, and the parameters of the nodes after
    it must still be found."""
    E = 8
    g = Graph()
    x = g.input([2, 4, E])
    W = [RNG.standard_normal((E, E)).astype(np.float32) / 3 for _ in range(4)]
    b = [RNG.standard_normal(E).astype(np.float32) for _ in range(4)]
    y = g.mha(x, *W, *b)
    g.output(g.layernorm(y, 2, RNG.standard_normal(E).astype(np.float32),
                         RNG.standard_normal(E).astype(np.float32)))
    gp, bp = g.save(tmp_path)
    xv = RNG.standard_normal((2, 4, E)).astype(np.float32)
    (out,) = run_tlrun(tool("tlrun"), gp, bp, xv, tmp_path)
    np.testing.assert_allclose(out, g.reference(xv)[0], rtol=1e-5, atol=1e-5)
