"""tlemit pytorch: the emitted module against tlrun and a NumPy float64 oracle, every option, every
error path; tlemit capture-script; the capture round trip (emit -> capture -> same graph)."""
import importlib.util
import json
import os
import re
import subprocess
import sys
import uuid

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file as st_load_np
from safetensors.numpy import save_file as st_save_np

import oracle as O
from conftest import ROOT, exec_tags, legacy_tags, lowered_tags, run_tool, tool
from graphs import Graph, run_tlrun
from oracle import unit_draws

PY = sys.executable
RNG = np.random.default_rng(1234)


def rnd(*shape, lo=None):
    a = RNG.standard_normal(shape).astype(np.float32)
    if lo is not None:
        a = np.abs(a) + np.float32(lo)
    return a


def emit(graph, params, out, *opts, check=True):
    args = ["pytorch", graph] + ([params] if params else []) + ["-o", out] + list(opts)
    r = run_tool("tlemit", *args)
    if check:
        assert r.returncode == 0, r.stderr
        assert r.stderr == ""
    return r


def load_module(path, class_name="TorchLeanModel", **kw):
    name = "emitted_" + uuid.uuid4().hex
    spec = importlib.util.spec_from_file_location(name, str(path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, getattr(mod, class_name)(**kw)


def as_tuple(y):
    return y if isinstance(y, tuple) else (y,)


# ---------------------------------------------------------------------- op cases
# each builder returns (graph, x, oracle) where oracle(x) -> list of float64 outputs, or None to use
# Graph.reference (NumPy float64).
def unary_case(kind, lo=None):
    def build():
        g = Graph()
        x = g.input([2, 3, 4])
        g.output(g.unary(kind, x))
        xv = rnd(2, 3, 4, lo=lo)
        if kind == "softplus":
            xv[0, 0, :] = [25.0, -30.0, 19.5, 0.0]
        return g, xv, None
    return build


def binary_case(kind):
    def build():
        g = Graph()
        x = g.input([3, 5])
        c = g.const(rnd(3, 5))
        g.output(g.binary(kind, x, c), g.binary(kind, c, x))
        return g, rnd(3, 5), None
    return build


def scalar_const(g, v):
    """A scalar const (a [1] const reshaped to [], as graphs.Graph stores params with ndim >= 1)."""
    c = g.const(np.array([v], np.float32))
    return g.node("reshape", [c], in_shape=[1], out_shape=[])


def case_detach():
    g = Graph()
    x = g.input([2, 3])
    g.output(g.node("detach", [x]))
    return g, rnd(2, 3), None


def case_safe_log():
    g = Graph()
    x = g.input([2, 5])
    e = scalar_const(g, 1e-3)
    g.output(g.node("safe_log", [x, e]))
    xv = rnd(2, 5)
    xv[0, :3] = [30.0, -40.0, 0.0]

    def oracle(v):
        return [np.log(O.softplus(v.astype(np.float64)) + np.float64(np.float32(1e-3)))]
    return g, xv, oracle


def case_movement():
    g = Graph()
    x = g.input([2, 1, 3])
    b = g.node("broadcast_to", [x], from_shape=[2, 1, 3], to_shape=[4, 2, 5, 3])
    p = g.node("permute", [b], perm=[2, 0, 3, 1])
    t = g.node("transpose", [p], axis1=0, axis2=3)
    r = g.node("reshape", [t], in_shape=g.shape(t), out_shape=[6, 20])
    f = g.node("flatten", [r], value_shape=[6, 20])
    g.output(p, t, r, f)
    return g, rnd(2, 1, 3), None


def case_concat():
    g = Graph()
    x = g.input([2, 3, 2])
    c1 = g.const(rnd(2, 1, 2))
    c2 = g.const(rnd(2, 4, 2))
    g.output(g.node("concat", [x, c1, c2, x], axis=1), g.node("concat", [x, x], axis=2))
    return g, rnd(2, 3, 2), None


def case_reduce():
    g = Graph()
    x = g.input([3, 4, 5])
    g.output(g.node("reduce_sum", [x], axes=[0, 2], keepdim=False),
             g.node("reduce_sum", [x], axes=[1], keepdim=True),
             g.node("reduce_mean", [x], axes=[2, 0], keepdim=True),
             g.node("reduce_mean", [x], axes=[1], keepdim=False),
             g.node("sum", [x]))
    return g, rnd(3, 4, 5), None


def case_matmul():
    g = Graph()
    x = g.input([2, 3, 4])
    w = g.const(rnd(4, 5))
    v = g.const(rnd(4))
    b = g.const(rnd(2, 4, 3))
    g.output(g.binary("matmul", x, w), g.binary("matmul", x, v), g.binary("matmul", x, b))
    return g, rnd(2, 3, 4), None


def case_linear():
    g = Graph()
    x = g.input([2, 3, 4])
    h = g.linear(x, rnd(5, 4), rnd(5))
    g.output(g.linear(g.unary("tanh", h), rnd(2, 5), rnd(2)))
    return g, rnd(2, 3, 4), None


def case_conv2d():
    g = Graph()
    x = g.input([2, 4, 7, 6])
    a = g.conv(x, rnd(6, 2, 3, 2), rnd(6), stride=[2, 1], padding=[1, 0], dilation=[1, 2], groups=2)
    b = g.conv(x, rnd(3, 4, 2, 3), rnd(3), stride=[1, 2], padding=[0, 1], padding_after=[1, 2])
    g.output(a, b)
    return g, rnd(2, 4, 7, 6), None


def case_conv1d_3d():
    g = Graph()
    x = g.input([2, 3, 2, 5, 4])            # conv3d over (2, 5, 4)
    a = g.conv(x, rnd(2, 3, 1, 3, 2), rnd(2), stride=[1, 1, 2], padding=[0, 1, 1])
    r = g.node("reshape", [x], in_shape=[2, 3, 2, 5, 4], out_shape=[6, 40])
    c = g.conv(r, rnd(4, 6, 5), rnd(4), stride=[3], padding=[2])   # unbatched conv1d (C, L)
    g.output(a, c)
    return g, rnd(2, 3, 2, 5, 4), None


def case_conv_lead():
    g = Graph()
    x = g.input([2, 3, 2, 5, 5])            # channel_axis 2: two leading axes
    g.output(g.conv(x, rnd(4, 2, 3, 3), rnd(4), stride=[1, 2], padding=[1, 1]))
    return g, rnd(2, 3, 2, 5, 5), None


def case_pools():
    g = Graph()
    x = g.input([2, 3, 6, 7])
    a = g.pool("avg_pool", x, [3, 2], [2, 1], [1, 1])
    b = g.pool("avg_pool", x, [2], [2], [0])          # 1-d over the last axis, rank 4 input
    c = g.pool("max_pool", x, [2, 3], [2, 2], [0, 0])
    d = g.pool("avg_pool", x, [2, 2, 2], [1, 2, 2], [0, 1, 0])  # 3-d over (3, 6, 7), unbatched
    g.output(a, b, c, d)
    return g, rnd(2, 3, 6, 7), None


def case_maxpool_padded():
    g = Graph()
    x = g.input([2, 3, 5, 6])
    a = g.pool("max_pool", x, [3, 3], [2, 2], [1, 1])
    b = g.pool("max_pool", x, [3], [1], [1])
    g.output(a, b)
    xv = -np.abs(rnd(2, 3, 5, 6)) - 1.0      # all negative: a zero pad would win every border window

    def oracle(v):
        # max pooling whose padded cells never win (TorchLean maxPoolValue / PyTorch -inf)
        return [O.pool_ref(v, "max", [3, 3], [2, 2], [1, 1]), O.pool_ref(v, "max", [3], [1], [1])]
    return g, xv, oracle


def case_batchnorm():
    g = Graph()
    x = g.input([2, 3, 4, 5])
    c = 3
    a = g.batch_norm(x, 1, rnd(c), rnd(c), rnd(c), rnd(c, lo=0.5), eps=1e-3)
    b = g.batch_norm(x, 0, rnd(2), rnd(2), rnd(2), rnd(2, lo=0.5))
    d = g.batch_norm(x, 3, rnd(5), rnd(5), rnd(5), rnd(5, lo=0.5), eps=0.25)
    g.output(a, b, d)
    return g, rnd(2, 3, 4, 5), None


def case_softmax_layernorm():
    g = Graph()
    x = g.input([2, 3, 4])
    s0 = g.node("softmax", [x], axis=0)
    s2 = g.node("softmax", [x], axis=2)
    l1 = g.layernorm(x, 1, rnd(3, 4), rnd(3, 4), eps=1e-3)
    l2 = g.layernorm(x, 2, rnd(4), rnd(4))
    g.output(s0, s2, l1, l2)
    xv = rnd(2, 3, 4) * 30
    return g, xv, None


def case_mse():
    g = Graph()
    x = g.input([3, 4])
    t = g.const(rnd(3, 4))
    g.output(g.binary("mse_loss", x, t))
    return g, rnd(3, 4), None


def case_random():
    g = Graph()
    x = g.input([2, 3])
    r = g.node("rand_uniform", [], shape=[2, 3], seed=42)
    keep = scalar_const(g, 0.3)
    m = g.node("bernoulli_mask", [keep], shape=[4, 5], seed=7)
    keep1 = scalar_const(g, 1.0)
    m1 = g.node("bernoulli_mask", [keep1], shape=[3], seed=9)
    g.output(g.binary("mul_elem", x, r), m, m1)

    def oracle(v):
        u = unit_draws(42, r, 6).reshape(2, 3)
        um = unit_draws(7, m, 20).reshape(4, 5)
        return [v.astype(np.float64) * u, (np.float32(0.3) > um).astype(np.float64), np.ones(3)]
    return g, rnd(2, 3), oracle


def case_legacy():
    """The older spellings, written with their old fields (emitted in the current spelling)."""
    g = Graph()
    x = g.input([1, 3, 7, 7])
    c = g.conv2d_legacy(x, rnd(4, 3, 3, 3), rnd(4), stride=1, padding=1)
    r = g.unary("relu", c)
    outs = [g.pool2d_legacy("max_pool2d", c, 2, 2), g.pool2d_legacy("max_pool2d_pad", r, 3, 2, 1),
            g.pool2d_legacy("avg_pool2d", c, 2, 2), g.pool2d_legacy("avg_pool2d_pad", c, 3, 2, 1)]
    f = g.node("reshape", [outs[0]], in_shape=g.shape(outs[0]), out_shape=[4, 3, 3])
    outs += [g.node("swap_first_two", [f]), g.node("transpose3d_last_two", [f]),
             g.node("reduce_sum", [f], axis=1)]
    g.output(*outs)
    return g, rnd(1, 3, 7, 7), None


CASES = {
    **{f"unary_{k}": unary_case(k, lo) for k, lo in [
        ("abs", None), ("sqrt", 0.1), ("inv", 0.5), ("relu", None), ("tanh", None),
        ("sigmoid", None), ("exp", None), ("log", 0.1), ("sin", None), ("cos", None),
        ("softplus", None)]},
    **{f"binary_{k}": binary_case(k) for k in ["add", "sub", "mul_elem", "max_elem", "min_elem"]},
    "detach": case_detach, "safe_log": case_safe_log, "movement": case_movement,
    "concat": case_concat, "reduce": case_reduce, "matmul": case_matmul, "linear": case_linear,
    "conv2d": case_conv2d, "conv1d_3d": case_conv1d_3d, "conv_lead": case_conv_lead,
    "pools": case_pools, "maxpool_padded": case_maxpool_padded, "batchnorm": case_batchnorm,
    "softmax_layernorm": case_softmax_layernorm, "mse_loss": case_mse, "random": case_random, "legacy": case_legacy,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_emitted_vs_tlrun_vs_numpy(name, tmp_path):
    g, xv, oracle = CASES[name]()
    gp, bp = g.save(tmp_path)
    mp = tmp_path / "model.py"
    emit(gp, bp, mp)
    src = mp.read_text()
    # one forward line per node, naming the node and its tag (a legacy spelling by its current tag)
    current = legacy_tags()
    for n in g.nodes:
        tag = current.get(n["kind"], n["kind"])
        assert re.search(rf"^        x{n['id']} = .*  # node {n['id']}: {tag}$", src, re.M), n
    _, model = load_module(mp)
    with torch.no_grad():
        ys = [y.numpy() for y in as_tuple(model(torch.from_numpy(xv)))]
    refs = oracle(xv) if oracle else g.reference(xv)
    outs = run_tlrun(tool("tlrun"), gp, bp, xv, tmp_path, n_outputs=len(g.output_ids))
    assert len(ys) == len(refs) == len(outs) == len(g.output_ids)
    for y, ref, o in zip(ys, refs, outs, strict=True):
        assert y.dtype == np.float32 and y.shape == np.shape(ref) == o.shape
        np.testing.assert_allclose(y, ref, rtol=2e-5, atol=2e-5)          # vs NumPy float64
        torch.testing.assert_close(torch.from_numpy(o), torch.from_numpy(y),
                                   rtol=1e-5, atol=1e-5)                     # vs tlrun
    # return_all: every node, keyed by id; outputs are the same tensors
    with torch.no_grad():
        allv = model(torch.from_numpy(xv), return_all=True)
    assert sorted(allv) == list(range(len(g.nodes)))
    for oid, y in zip(g.output_ids, ys, strict=True):
        np.testing.assert_array_equal(allv[oid].numpy(), y)


def case_mha():
    """TorchLean's value graph: multihead_attention (tuple) + tuple_getitem(0), lowered on import
    (the emitted module holds the lowered nodes, renumbered)."""
    E = 8
    g = Graph()
    x = g.input([2, 4, E])
    y = g.mha(x, *(rnd(E, E) / 3 for _ in range(4)), *(rnd(E) for _ in range(4)))
    g.output(g.layernorm(y, 2, rnd(E), rnd(E)))
    return g, rnd(2, 4, E), None


VALUE_GRAPH_CASES = {"mha": case_mha}


@pytest.mark.parametrize("store", [
    "inline",
    "params_bin",
])
@pytest.mark.parametrize("name", sorted(VALUE_GRAPH_CASES))
def test_value_graph_emitted_vs_tlrun_vs_numpy(name, store, tmp_path):
    g, xv, _ = VALUE_GRAPH_CASES[name]()
    gp, bp = g.save(tmp_path, inline=store == "inline")
    mp = tmp_path / "model.py"
    emit(gp, bp, mp)
    src = mp.read_text()
    lowered = set(lowered_tags())
    assert lowered and not any(re.search(rf"# node \d+: {t}$", src, re.M) for t in lowered), src
    _, model = load_module(mp)
    with torch.no_grad():
        ys = [y.numpy() for y in as_tuple(model(torch.from_numpy(xv)))]
    refs = g.reference(xv)
    outs = run_tlrun(tool("tlrun"), gp, bp, xv, tmp_path, n_outputs=len(g.output_ids))
    assert len(ys) == len(refs) == len(outs) == len(g.output_ids)
    for y, ref, o in zip(ys, refs, outs, strict=True):
        assert y.dtype == np.float32 and y.shape == np.shape(ref) == o.shape
        np.testing.assert_allclose(y, ref, rtol=2e-5, atol=2e-5)          # vs NumPy float64
        torch.testing.assert_close(torch.from_numpy(o), torch.from_numpy(y), rtol=1e-5, atol=1e-5)


def test_every_executable_op_has_an_emitter_case():
    """Each executable tag of the C op table (`tlinfo --ops`) and each legacy spelling appears in a
    graph that goes through tlemit here: a new row in ir/tl_ops.def without a case fails."""
    seen = set()
    for f in list(CASES.values()) + list(VALUE_GRAPH_CASES.values()):
        seen |= {n["kind"] for n in f()[0].nodes}
    missing = [f"op {t} has no case in test_emit.py" for t in exec_tags() if t not in seen]
    missing += [f"legacy spelling {old} (of {cur}) has no case in test_emit.py"
                for old, cur in legacy_tags().items() if old not in seen]
    assert not missing, "\n".join(missing)


def mixed_graph():
    """linear, conv, const, batch norm, layer norm: every parameter kind."""
    g = Graph()
    x = g.input([1, 2, 5, 5])
    c = g.conv(x, rnd(3, 2, 3, 3), rnd(3), stride=[1, 1], padding=[1, 1])
    bn = g.batch_norm(c, 1, rnd(3), rnd(3), rnd(3), rnd(3, lo=0.5))
    r = g.unary("relu", bn)
    f = g.node("reshape", [r], in_shape=[1, 3, 5, 5], out_shape=[1, 75])
    ln = g.layernorm(f, 1, rnd(75), rnd(75))
    h = g.linear(ln, rnd(4, 75), rnd(4))
    k = g.const(np.tile(rnd(4), (1, 1)))
    g.output(g.binary("add", h, k))
    return g


def test_state_dict_keys_and_values_match_params_bin(tmp_path):
    g = mixed_graph()
    gp, bp = g.save(tmp_path)
    mp = tmp_path / "model.py"
    emit(gp, bp, mp)
    _, model = load_module(mp)
    sd = model.state_dict()
    ref = st_load_np(bp)
    assert sorted(sd) == sorted(ref)
    assert "linear_6_W" in sd and "conv2d_1_kernel" in sd and "batchnorm_2_var" in sd and "const_7" in sd
    for k, v in ref.items():
        assert sd[k].dtype == torch.float32
        np.testing.assert_array_equal(sd[k].numpy(), v)
    # weights are Parameters, batch-norm statistics and consts are buffers
    params = dict(model.named_parameters())
    assert set(params) == {"conv2d_1_kernel", "conv2d_1_bias", "batchnorm_2_gamma", "batchnorm_2_beta",
                           "layernorm_5_gamma", "layernorm_5_beta", "linear_6_W", "linear_6_b"}
    # state_dict round trip: a fresh module accepts it strictly
    _, m2 = load_module(mp)
    m2.load_state_dict(sd, strict=True)
    # the params path is a constructor argument
    moved = tmp_path / "moved.bin"
    os.rename(bp, moved)
    with pytest.raises(FileNotFoundError):
        load_module(mp)
    _, m3 = load_module(mp, params_path=str(moved))
    x = torch.from_numpy(rnd(1, 2, 5, 5))
    with torch.no_grad():
        torch.testing.assert_close(m3(x), model(x), rtol=0, atol=0)
        np.testing.assert_allclose(model(x).numpy(), g.reference(x.numpy())[0], rtol=2e-5, atol=2e-5)


def test_class_name_option(tmp_path):
    g = mixed_graph()
    gp, bp = g.save(tmp_path)
    mp = tmp_path / "model.py"
    emit(gp, bp, mp, "--class-name", "MyNet")
    mod, model = load_module(mp, "MyNet")
    assert not hasattr(mod, "TorchLeanModel")
    assert "class MyNet(nn.Module):" in mp.read_text()


def test_dtype_float64(tmp_path):
    g = mixed_graph()
    gp, bp = g.save(tmp_path)
    mp = tmp_path / "model.py"
    emit(gp, bp, mp, "--dtype", "torch.float64")
    _, model = load_module(mp)
    assert all(v.dtype == torch.float64 for v in model.state_dict().values())
    xv = rnd(1, 2, 5, 5)
    with torch.no_grad():
        y = model(torch.from_numpy(xv))        # float32 input is cast to float64
    assert y.dtype == torch.float64
    # float64 all the way: agrees with the float64 oracle far below float32 resolution
    np.testing.assert_allclose(y.numpy(), g.reference(xv)[0], rtol=1e-10, atol=1e-10)


def test_training_skeleton_runs_and_loss_decreases(tmp_path):
    g = Graph()
    x = g.input([8, 4])
    h = g.unary("relu", g.linear(x, rnd(16, 4), rnd(16)))
    g.output(g.linear(h, rnd(3, 16), rnd(3)))
    gp, bp = g.save(tmp_path)
    mp = tmp_path / "model.py"
    emit(gp, bp, mp, "--training-skeleton")
    r = subprocess.run([PY, str(mp)], capture_output=True, text=True, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "output 0: shape (8, 3) dtype torch.float32 finite True" in r.stdout
    losses = [float(v) for v in re.findall(r"^step \d+: loss (\S+)$", r.stdout, re.M)]
    assert len(losses) == 10
    assert losses[-1] < losses[0]
    assert all(b <= a for a, b in zip(losses, losses[1:], strict=False))
    # without the option there is no __main__ block
    emit(gp, bp, tmp_path / "plain.py")
    assert "__main__" not in (tmp_path / "plain.py").read_text()


def test_learnable_consts(tmp_path):
    g = mixed_graph()
    gp, bp = g.save(tmp_path)
    emit(gp, bp, tmp_path / "a.py")
    emit(gp, bp, tmp_path / "b.py", "--learnable-consts")
    _, ma = load_module(tmp_path / "a.py")
    _, mb = load_module(tmp_path / "b.py")
    assert "const_7" not in dict(ma.named_parameters()) and "const_7" in dict(ma.named_buffers())
    assert isinstance(mb.const_7, torch.nn.Parameter) and mb.const_7.requires_grad
    assert "const_7" in dict(mb.named_parameters())
    x = torch.from_numpy(rnd(1, 2, 5, 5))
    with torch.no_grad():
        torch.testing.assert_close(ma(x), mb(x), rtol=0, atol=0)
    # the learnable const gets a gradient
    mb(x).sum().backward()
    assert mb.const_7.grad is not None and torch.all(mb.const_7.grad == 1)


def test_compress_broadcast(tmp_path):
    g = Graph()
    x = g.input([3, 4, 5])
    row = rnd(5)
    c = g.const(np.broadcast_to(row, (3, 4, 5)).copy())          # one row repeated: compressible
    blk = g.const(np.broadcast_to(rnd(4, 5), (3, 4, 5)).copy())  # a [4, 5] block repeated
    d = g.const(rnd(3, 4, 5))                                     # not compressible
    g.output(g.binary("add", g.binary("mul_elem", x, c), g.binary("add", blk, d)))
    gp, bp = g.save(tmp_path)
    emit(gp, bp, tmp_path / "plain.py")
    for weights in ["external", "inline"]:
        mp = tmp_path / f"c_{weights}.py"
        emit(gp, bp, mp, "--compress-broadcast", "--weights", weights)
        _, mp_ = load_module(tmp_path / "plain.py")
        _, mc = load_module(mp)
        assert isinstance(mc.const_1, torch.nn.Parameter)
        # the largest repeated trailing block: a [5] row for const_1, a [4, 5] block for const_2
        assert tuple(mc.const_1.shape) == (5,) and tuple(mp_.const_1.shape) == (3, 4, 5)
        assert tuple(mc.const_2.shape) == (4, 5)
        assert tuple(mc.const_3.shape) == (3, 4, 5) and not isinstance(mc.const_3, torch.nn.Parameter)
        np.testing.assert_array_equal(mc.const_1.detach().numpy(), row)
        assert mc.state_dict()["const_1"].numel() == 5
        xv = torch.from_numpy(rnd(3, 4, 5))
        with torch.no_grad():
            torch.testing.assert_close(mc(xv), mp_(xv), rtol=0, atol=0)
        assert ".expand((3, 4, 5))" in mp.read_text()


def test_compress_broadcast_row(tmp_path):
    g = Graph()
    x = g.input([6, 3])
    row = rnd(3)
    c = g.const(np.tile(row, (6, 1)))
    g.output(g.binary("add", x, c))
    gp, bp = g.save(tmp_path)
    mp = tmp_path / "m.py"
    emit(gp, bp, mp, "--compress-broadcast")
    _, m = load_module(mp)
    assert tuple(m.const_1.shape) == (3,)
    np.testing.assert_array_equal(m.const_1.detach().numpy(), row)
    xv = rnd(6, 3)
    with torch.no_grad():
        np.testing.assert_array_equal(m(torch.from_numpy(xv)).numpy(), xv + np.tile(row, (6, 1)))


def test_inline_weights_exact(tmp_path):
    g = mixed_graph()
    special = np.array([[np.nan, np.inf, -np.inf, -0.0, 1e-45, 3.4028235e38, 0.1, 1 / 3]], np.float32)
    g.const(special)
    gp, bp = g.save(tmp_path)
    mp = tmp_path / "m.py"
    emit(gp, bp, mp, "--weights", "inline")
    text = mp.read_text()
    assert "safetensors" not in text and "load_file" not in text
    os.remove(bp)                       # the module is standalone
    _, m = load_module(mp)
    ref = st_load_np_from(g)
    sd = m.state_dict()
    assert sorted(sd) == sorted(ref)
    for k, v in ref.items():
        got = sd[k].numpy()
        assert got.tobytes() == v.tobytes(), k       # bit exact, NaN/inf/-0/denormal included


def st_load_np_from(g):
    return {k: np.ascontiguousarray(v) for k, v in g.params.items()}


def test_inline_graph_without_params_bin(tmp_path):
    """A TorchLean-style graph (payloads inline in the JSON) emits inline weights by default."""
    g = mixed_graph()
    gp, _ = g.save(tmp_path, inline=True)
    mp = tmp_path / "m.py"
    emit(gp, None, mp)
    _, m = load_module(mp)
    xv = rnd(1, 2, 5, 5)
    with torch.no_grad():
        np.testing.assert_allclose(m(torch.from_numpy(xv)).numpy(), g.reference(xv)[0], rtol=2e-5, atol=2e-5)
    r = emit(gp, None, tmp_path / "x.py", "--weights", "external", check=False)
    assert r.returncode == 2
    assert r.stderr == ("tlemit: pytorch: --weights external needs a params.bin argument (this graph carries its "
                        "parameters inline: use --weights inline)\n")
    assert not (tmp_path / "x.py").exists()


# ---------------------------------------------------------------------- errors: exit 2, no file
def small_linear(tmp_path):
    g = Graph()
    x = g.input([1, 4])
    g.output(g.linear(x, rnd(3, 4), rnd(3)))
    return g, *g.save(tmp_path)


def expect_fail(tmp_path, args, message):
    out = tmp_path / "out.py"
    r = run_tool("tlemit", *args[:1], *args[1:], "-o", out) if args[0] == "pytorch" else run_tool("tlemit", *args)
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    assert r.stderr == message + "\n"
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("out.py")] == []


def test_error_missing_param(tmp_path):
    g, gp, bp = small_linear(tmp_path)
    p = st_load_np(bp)
    del p["linear_1_b"]
    st_save_np(p, bp)
    expect_fail(tmp_path, ["pytorch", gp, bp], f"{bp}: missing tensor \"linear_1_b\" for node[1] (linear)")


def test_error_wrong_param_shape(tmp_path):
    g, gp, bp = small_linear(tmp_path)
    p = st_load_np(bp)
    p["linear_1_W"] = rnd(4, 3)
    st_save_np(p, bp)
    expect_fail(tmp_path, ["pytorch", gp, bp],
                f"{bp}: tensor \"linear_1_W\": shape [4, 3] does not match node[1] (expected [3, 4])")


def test_error_params_file_missing(tmp_path):
    g, gp, bp = small_linear(tmp_path)
    os.remove(bp)
    r = run_tool("tlemit", "pytorch", gp, bp, "-o", tmp_path / "out.py")
    assert r.returncode == 2 and r.stderr.startswith(f"{bp}: ") and r.stderr.count("\n") == 1
    assert not (tmp_path / "out.py").exists()


def test_error_no_params_at_all(tmp_path):
    g, gp, bp = small_linear(tmp_path)
    expect_fail(tmp_path, ["pytorch", gp],
                f"{gp}: node[1]: linear has no weight: give params.bin or inline payloads")


def test_error_unsupported_tag_custom(tmp_path):
    g = Graph()
    x = g.input([2])
    g.output(g.node("custom", [x], shape=[2]))
    gp, _ = g.save(tmp_path)
    r = run_tool("tlemit", "pytorch", gp, "-o", tmp_path / "out.py")
    assert r.returncode == 2 and r.stderr.startswith(f"{gp}: node[1]") and "custom" in r.stderr
    assert r.stderr.count("\n") == 1
    assert not (tmp_path / "out.py").exists()


def test_error_conv_rank4_not_in_pytorch(tmp_path):
    g = Graph()
    x = g.input([1, 1, 3, 3, 3, 3])
    w = rnd(1, 1, 2, 2, 2, 2)
    i = len(g.nodes)
    g._param(i, "conv", "weight", w)
    g._param(i, "conv", "bias", rnd(1))
    g.output(g.node("conv", [x], shape=[1, 1, 2, 2, 2, 2], spatial_rank=4, kernel=[2] * 4, stride=[1] * 4,
                    padding=[0] * 4, channel_axis=1, in_channels=1, out_channels=1, input_spatial=[3] * 4))
    gp, bp = g.save(tmp_path)
    expect_fail(tmp_path, ["pytorch", gp, bp],
                f"{gp}: node[1]: conv with spatial_rank 4 is not supported by PyTorch (F.conv1d/2d/3d)")


def test_error_options(tmp_path):
    g, gp, bp = small_linear(tmp_path)
    expect_fail(tmp_path, ["pytorch", gp, bp, "--weights", "yaml"],
                "tlemit: pytorch: --weights: expected inline or external, got 'yaml'")
    expect_fail(tmp_path, ["pytorch", gp, bp, "--class-name", "1abc"],
                "--class-name: not a Python identifier: \"1abc\"")
    expect_fail(tmp_path, ["pytorch", gp, bp, "--class-name", "class"],
                "--class-name: not a Python identifier: \"class\"")
    expect_fail(tmp_path, ["pytorch", gp, bp, "--frobnicate"], "tlemit: pytorch: unknown option '--frobnicate'")
    expect_fail(tmp_path, ["pytorch", gp, bp, "--dtype", "torch.float64\nimport os"],
                "--dtype: expected a one-line torch dtype expression")
    r = run_tool("tlemit", "pytorch", gp, bp)
    assert r.returncode == 2 and r.stderr == "tlemit: pytorch: missing -o model.py\n"
    r = run_tool("tlemit", "frob")
    assert r.returncode == 2 and r.stderr == "tlemit: unknown command 'frob' (expected pytorch, torchlean, small or capture-script)\n"
    r = run_tool("tlemit")
    assert r.returncode == 2 and r.stderr.startswith("usage: tlemit")


def test_error_keeps_existing_output_untouched(tmp_path):
    g, gp, bp = small_linear(tmp_path)
    out = tmp_path / "out.py"
    out.write_text("previous\n")
    r = run_tool("tlemit", "pytorch", gp, bp, "-o", out, "--weights", "bogus")
    assert r.returncode == 2 and out.read_text() == "previous\n"
    p = st_load_np(bp)
    del p["linear_1_W"]
    st_save_np(p, bp)
    r = run_tool("tlemit", "pytorch", gp, bp, "-o", out)
    assert r.returncode == 2 and out.read_text() == "previous\n"


# ---------------------------------------------------------------------- capture script + round trip
CAPTURE = ROOT / "scripts" / "export_torchlean_graph.py"


def test_capture_script_default_is_the_script():
    r = run_tool("tlemit", "capture-script")
    assert r.returncode == 0, r.stderr
    assert r.stdout == CAPTURE.read_text()


def test_capture_script_options():
    r = run_tool("tlemit", "capture-script", "--function-name", "grab_graph", "--no-torch-export",
                 "--debug-targets")
    assert r.returncode == 0, r.stderr
    assert "def grab_graph(" in r.stdout
    r = run_tool("tlemit", "capture-script", "--bogus")
    assert r.returncode == 2 and r.stderr == "tlemit: capture-script: unknown option '--bogus'\n"


def capture(model_py, cls, shape, out_json, params_bin, example_dir):
    r = subprocess.run([PY, str(CAPTURE), str(model_py), cls, str(out_json), "--example-shape",
                        ",".join(map(str, shape)), "--params", str(params_bin),
                        "--save-example", str(example_dir)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(open(out_json).read())


def roundtrip_graphs():
    g1 = mixed_graph()
    g2 = Graph()
    x = g2.input([2, 3, 4])
    h = g2.linear(x, rnd(5, 4), rnd(5))
    s = g2.node("softmax", [g2.unary("tanh", h)], axis=2)
    g2.output(g2.binary("add", s, g2.const(rnd(2, 3, 5))))
    return {"mixed": g1, "mlp": g2}


@pytest.mark.parametrize("name", ["mixed", "mlp"])
def test_roundtrip_capture_of_emitted_module(name, tmp_path):
    g = roundtrip_graphs()[name]
    gp, bp = g.save(tmp_path)
    mp = tmp_path / "m.py"
    emit(gp, bp, mp)
    cap_bin = tmp_path / "cap.bin"
    cj = capture(mp, "TorchLeanModel", g.shape(g.input_id), tmp_path / "cap.json", cap_bin, tmp_path / "ex")
    src = json.load(open(gp))
    assert [n["kind"] for n in cj["nodes"]] == [n["kind"] for n in src["nodes"]]
    assert [n["shape"] for n in cj["nodes"]] == [n["shape"] for n in src["nodes"]]
    assert cj["output_ids"] == src["output_ids"] and cj["input_id"] == src["input_id"]
    # same op fields (everything but debug fields)
    for a, b in zip(cj["nodes"], src["nodes"], strict=True):
        for key, v in b.items():
            assert a.get(key) == v, (b["id"], key)
    cp = st_load_np(cap_bin)
    sp = st_load_np(bp)
    assert sorted(cp) == sorted(sp)
    for k in sp:
        np.testing.assert_array_equal(cp[k], sp[k])
    # the captured example outputs are the emitted module's outputs, and tlrun agrees
    xv = np.load(tmp_path / "ex" / "input.npy")
    ref = g.reference(xv)
    for j, r in enumerate(ref):
        np.testing.assert_allclose(np.load(tmp_path / "ex" / f"output_{j}.npy"), r, rtol=2e-5, atol=2e-5)
