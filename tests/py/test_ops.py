"""Every executable op (and the legacy spellings) through tlrun, against NumPy float64
(graphs.Graph.reference) and PyTorch (float64) where the op maps to a PyTorch function.

Tolerances (asserted on the float32 tlrun output against the float64 oracles):
  EXACT  - movement, abs/relu/neg-free elementwise, add/sub/mul/max/min, sqrt, inv, const, the
           seeded random ops: bit-identical to the float64 result rounded to float32
           (these are single correctly-rounded float32 operations, or no arithmetic at all);
  TRANS  - tanh/sigmoid/exp/log/sin/cos/softplus/safe_log/softmax/layernorm/batch norm:
           rtol 1e-5, atol 1e-6 (vectorized float32 approximations, a few ulp);
  ACCUM  - GEMM and reductions (linear, matmul, conv, pools' averages, sums, mse):
           rtol 1e-5, atol 1e-5 (float32 accumulation order differs from float64).
Each case runs with the default (best) kernel table and with --isa scalar.
"""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import exec_tags, legacy_tags, tool
from graphs import Graph, run_tlrun
from oracle import evaluate, unit_draws

EXACT = dict(rtol=0, atol=0)
TRANS = dict(rtol=1e-5, atol=1e-6)
ACCUM = dict(rtol=1e-5, atol=1e-5)

RNG = np.random.default_rng(1234)


def rnd(*shape, lo=None, hi=None):
    if lo is not None:
        return RNG.uniform(lo, hi, size=shape).astype(np.float32)
    return RNG.standard_normal(shape).astype(np.float32)


def T(a):
    return torch.tensor(np.asarray(a, np.float64))


# ---------------------------------------------------------------------- cases
# each case: () -> (graph, x, tol, torch_outputs or None)
CASES = {}


def case(name):
    def deco(f):
        CASES[name] = f
        return f
    return deco


UNARY_TORCH = {
    "abs": (torch.abs, EXACT, None), "relu": (torch.relu, EXACT, None),
    "sqrt": (torch.sqrt, EXACT, (0.1, 4.0)), "inv": (torch.reciprocal, EXACT, (0.2, 3.0)),
    "tanh": (torch.tanh, TRANS, None), "sigmoid": (torch.sigmoid, TRANS, None),
    "exp": (torch.exp, TRANS, None), "log": (torch.log, TRANS, (0.05, 5.0)),
    "sin": (torch.sin, TRANS, None), "cos": (torch.cos, TRANS, None),
    "softplus": (F.softplus, TRANS, None),
}
for _op, (_tf, _tol, _dom) in UNARY_TORCH.items():
    def _mk(op=_op, tf=_tf, tol=_tol, dom=_dom):
        g = Graph()
        x = g.input([2, 3, 17])
        g.output(g.unary(op, x))
        xv = rnd(2, 3, 17, lo=dom[0], hi=dom[1]) if dom else 3 * rnd(2, 3, 17)
        return g, xv, tol, [tf(T(xv))]
    CASES["unary_" + _op] = _mk

BINARY_TORCH = {"add": torch.add, "sub": torch.sub, "mul_elem": torch.mul,
                "max_elem": torch.maximum, "min_elem": torch.minimum}
for _op, _tf in BINARY_TORCH.items():
    def _mk(op=_op, tf=_tf):
        g = Graph()
        x = g.input([3, 19])
        c = g.const(rnd(3, 19))
        g.output(g.binary(op, x, c), g.binary(op, c, x), g.binary(op, x, x))
        xv = rnd(3, 19)
        cv = g.inline[c]["values"]
        return g, xv, EXACT, [tf(T(xv), T(cv)), tf(T(cv), T(xv)), tf(T(xv), T(xv))]
    CASES["binary_" + _op] = _mk


@case("detach_and_const_output")
def _():
    g = Graph()
    x = g.input([2, 5])
    c = g.const(rnd(2, 5))
    g.output(g.unary("detach", x), c)
    xv = rnd(2, 5)
    return g, xv, EXACT, [T(xv), T(g.inline[c]["values"])]


@case("safe_log")
def _():
    g = Graph()
    x = g.input([4, 9])
    eps = g.const(np.float32(1e-3))
    g.output(g.binary("safe_log", x, eps))
    xv = 4 * rnd(4, 9)
    return g, xv, TRANS, [torch.log(F.softplus(T(xv)) + T(np.float32(1e-3)))]


@case("broadcast_to")
def _():
    g = Graph()
    x = g.input([3, 1])
    b1 = g.node("broadcast_to", [x], from_shape=[3, 1], to_shape=[2, 3, 4])
    b2 = g.node("broadcast_to", [x], from_shape=[3, 1], to_shape=[3, 5])
    g.output(b1, b2)
    xv = rnd(3, 1)
    return g, xv, EXACT, [T(xv).expand(2, 3, 4), T(xv).expand(3, 5)]


@case("permute")
def _():
    g = Graph()
    x = g.input([2, 3, 4, 5])
    g.output(g.node("permute", [x], perm=[0, 2, 3, 1]), g.node("permute", [x], perm=[3, 1, 0, 2]))
    xv = rnd(2, 3, 4, 5)
    return g, xv, EXACT, [T(xv).permute(0, 2, 3, 1), T(xv).permute(3, 1, 0, 2)]


@case("transpose")
def _():
    g = Graph()
    x = g.input([2, 3, 4, 5])
    g.output(g.node("transpose", [x], axis1=1, axis2=3), g.node("transpose", [x], axis1=0, axis2=2))
    xv = rnd(2, 3, 4, 5)
    return g, xv, EXACT, [T(xv).transpose(1, 3), T(xv).transpose(0, 2)]


@case("legacy_swap_first_two")
def _():
    g = Graph()
    x = g.input([3, 4, 5])
    g.output(g.node("swap_first_two", [x]))
    xv = rnd(3, 4, 5)
    return g, xv, EXACT, [T(xv).transpose(0, 1)]


@case("legacy_transpose3d_last_two")
def _():
    g = Graph()
    x = g.input([3, 4, 5])
    g.output(g.node("transpose3d_last_two", [x]))
    xv = rnd(3, 4, 5)
    return g, xv, EXACT, [T(xv).transpose(1, 2)]


@case("reshape_flatten")
def _():
    g = Graph()
    x = g.input([2, 3, 4])
    r = g.node("reshape", [x], in_shape=[2, 3, 4], out_shape=[4, 6])
    f = g.node("flatten", [x], value_shape=[2, 3, 4])
    g.output(r, f, g.unary("relu", r))
    xv = rnd(2, 3, 4)
    return g, xv, EXACT, [T(xv).reshape(4, 6), T(xv).reshape(-1), torch.relu(T(xv).reshape(4, 6))]


@case("concat")
def _():
    g = Graph()
    x = g.input([2, 3, 4])
    c1 = g.const(rnd(2, 2, 4))
    c2 = g.const(rnd(2, 1, 4))
    c3 = g.const(rnd(1, 3, 4))
    c4 = g.const(rnd(2, 3, 2))
    g.output(g.node("concat", [c1, x, c2], axis=1), g.node("concat", [x, c3], axis=0),
             g.node("concat", [x, c4, x], axis=2))
    xv = rnd(2, 3, 4)
    v = lambda i: T(g.inline[i]["values"])
    return g, xv, EXACT, [torch.cat([v(c1), T(xv), v(c2)], 1), torch.cat([T(xv), v(c3)], 0),
                          torch.cat([T(xv), v(c4), T(xv)], 2)]


REDUCE_AXES = [([1], False), ([1], True), ([0, 2], False), ([0, 2], True), ([1, 2], False),
               ([0, 1, 2, 3], True), ([3], False)]


@case("reduce_sum_mean")
def _():
    g = Graph()
    x = g.input([3, 4, 5, 6])
    outs, tref = [], []
    xv = rnd(3, 4, 5, 6)
    for kind, tf in (("reduce_sum", torch.sum), ("reduce_mean", torch.mean)):
        for axes, keep in REDUCE_AXES:
            outs.append(g.node(kind, [x], axes=axes, keepdim=keep))
            tref.append(tf(T(xv), dim=tuple(axes), keepdim=keep))
    g.output(*outs)
    return g, xv, ACCUM, tref


@case("legacy_reduce_axis")
def _():
    g = Graph()
    x = g.input([3, 4, 5])
    r = g.node("reduce_sum", [x], axis=1)       # old IR: one axis, no keepdim
    g.output(r)
    xv = rnd(3, 4, 5)
    return g, xv, ACCUM, [T(xv).sum(1)]


@case("sum_mse")
def _():
    g = Graph()
    x = g.input([3, 7])
    c = g.const(rnd(3, 7))
    g.output(g.node("sum", [x]), g.binary("mse_loss", x, c))
    xv = rnd(3, 7)
    return g, xv, ACCUM, [T(xv).sum(), F.mse_loss(T(xv), T(g.inline[c]["values"]))]


MATMUL_SHAPES = [([3, 4], [4, 5]), ([4], [4, 5]), ([3, 4], [4]), ([4], [4]), ([2, 3, 4], [4, 5]),
                 ([2, 3, 4], [2, 4, 5]), ([2, 1, 3, 4], [5, 4, 6]), ([3, 4], [2, 4, 5]),
                 ([4], [2, 4, 5]), ([2, 3, 4], [4])]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES, ids=[f"{a}x{b}" for a, b in MATMUL_SHAPES])
def test_matmul(sa, sb, tmp_path):
    for rhs_const in (True, False):
        g = Graph()
        if rhs_const:
            x = g.input(sa)
            c = g.const(rnd(*sb))
            g.output(g.binary("matmul", x, c))
            xv = rnd(*sa)
            tref = torch.matmul(T(xv), T(g.inline[c]["values"]))
        else:
            x = g.input(sb)
            c = g.const(rnd(*sa))
            g.output(g.binary("matmul", c, x))
            xv = rnd(*sb)
            tref = torch.matmul(T(g.inline[c]["values"]), T(xv))
        check(g, xv, ACCUM, [tref], tmp_path, [])


@case("linear_ranks")
def _():
    g = Graph()
    x = g.input([2, 3, 8])
    W, b = rnd(5, 8), rnd(5)
    r = g.node("reshape", [x], in_shape=[2, 3, 8], out_shape=[48])
    v = g.node("reshape", [g.node("reshape", [x], in_shape=[2, 3, 8], out_shape=[6, 8])],
               in_shape=[6, 8], out_shape=[6, 8])
    g.output(g.linear(x, W, b), g.linear(v, W, b))
    xv = rnd(2, 3, 8)
    del r
    return g, xv, ACCUM, [F.linear(T(xv), T(W), T(b)), F.linear(T(xv).reshape(6, 8), T(W), T(b))]


@case("linear_rank1")
def _():
    g = Graph()
    x = g.input([8])
    W, b = rnd(3, 8), rnd(3)
    g.output(g.linear(x, W, b))
    xv = rnd(8)
    return g, xv, ACCUM, [F.linear(T(xv), T(W), T(b))]


def torch_conv(x, W, b, stride, padding, padding_after, dilation, groups):
    sr = W.ndim - 2
    pads = []
    for i in reversed(range(sr)):
        pads += [padding[i], padding_after[i]]
    xp = F.pad(T(x), pads)
    f = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[sr]
    return f(xp, T(W), T(b), stride=stride, dilation=dilation, groups=groups)


CONV_CASES = {
    "conv1d_groups_dil_asym": ([2, 4, 11], [6, 2, 3], [2], [1], [2], [2], 2),
    "conv2d_groups_stride_asym": ([2, 4, 7, 6], [4, 2, 3, 2], [2, 1], [1, 0], [2, 1], [1, 2], 2),
    "conv2d_plain_pad": ([1, 3, 8, 8], [5, 3, 3, 3], [1, 1], [1, 1], [1, 1], [1, 1], 1),
    "conv2d_1x1": ([2, 6, 5, 5], [4, 6, 1, 1], [1, 1], [0, 0], [0, 0], [1, 1], 1),
    "conv2d_1x1_stride2": ([1, 6, 5, 5], [4, 6, 1, 1], [2, 2], [0, 0], [0, 0], [1, 1], 1),
    "conv2d_depthwise": ([2, 4, 6, 6], [8, 1, 3, 3], [1, 1], [1, 1], [1, 1], [1, 1], 4),
    "conv1d_depthwise_stride_dil_asym": ([2, 3, 17], [3, 1, 4], [2], [2], [1], [2], 3),
    "conv3d_depthwise_mult2": ([1, 2, 4, 5, 6], [4, 1, 2, 3, 3], [1, 2, 1], [0, 1, 1], [1, 1, 2], [1, 1, 2], 2),
    "conv2d_depthwise_stride2": ([1, 5, 9, 8], [5, 1, 3, 3], [2, 2], [1, 1], [1, 0], [1, 1], 5),
    "conv3d_pad": ([1, 2, 5, 6, 4], [3, 2, 2, 3, 2], [1, 2, 1], [1, 1, 0], [1, 0, 1], [1, 1, 2], 1),
    "conv2d_two_leading": ([2, 2, 3, 6, 6], [4, 3, 3, 3], [1, 1], [0, 0], [0, 0], [1, 1], 1),
}
for _name, (_xs, _ws, _st, _pd, _pa, _dl, _gr) in CONV_CASES.items():
    def _mk(xs=_xs, ws=_ws, st=_st, pd=_pd, pa=_pa, dl=_dl, gr=_gr):
        g = Graph()
        x = g.input(xs)
        W, b = rnd(*ws), rnd(ws[0])
        g.output(g.conv(x, W, b, st, pd, pa, dl, gr))
        xv = rnd(*xs)
        if len(xs) == len(ws):
            tref = [torch_conv(xv, W, b, st, pd, pa, dl, gr)]
        else:   # two leading dims: torch takes one batch dim
            lead = xs[:2]
            t = torch_conv(xv.reshape((-1,) + tuple(xs[2:])), W, b, st, pd, pa, dl, gr)
            tref = [t.reshape(tuple(lead) + tuple(t.shape[1:]))]
        return g, xv, ACCUM, tref
    CASES[_name] = _mk


@case("conv_chw_no_batch")
def _():
    g = Graph()
    x = g.input([3, 6, 6])
    W, b = rnd(2, 3, 3, 3), rnd(2)
    g.output(g.conv(x, W, b, [1, 1], [1, 1]))
    xv = rnd(3, 6, 6)
    return g, xv, ACCUM, [torch_conv(xv[None], W, b, [1, 1], [1, 1], [1, 1], [1, 1], 1)[0]]


@case("legacy_conv2d")
def _():
    g = Graph()
    x = g.input([1, 3, 7, 7])
    W, b = rnd(4, 3, 3, 3), rnd(4)
    g.output(g.conv2d_legacy(x, W, b, stride=2, padding=1))
    xv = rnd(1, 3, 7, 7)
    return g, xv, ACCUM, [torch_conv(xv, W, b, [2, 2], [1, 1], [1, 1], [1, 1], 1)]


@case("pools_2d")
def _():
    g = Graph()
    x = g.input([2, 3, 7, 6])
    r = g.unary("relu", x)
    outs = [g.pool("max_pool", x, [2, 2], [2, 2], [0, 0]),
            g.pool("max_pool", r, [3, 3], [2, 2], [1, 1]),      # padded, non-negative input
            g.pool("avg_pool", x, [3, 2], [2, 1], [1, 1]),
            g.pool("avg_pool", x, [2, 2], [2, 2], [0, 0])]
    g.output(*outs)
    xv = rnd(2, 3, 7, 6)
    tx = T(xv)
    return g, xv, ACCUM, [F.max_pool2d(tx, 2, 2), F.max_pool2d(torch.relu(tx), 3, 2, 1),
                          F.avg_pool2d(tx, (3, 2), (2, 1), 1, count_include_pad=True),
                          F.avg_pool2d(tx, 2, 2)]


@case("max_pool_padding_negative_input")
def _():
    # negative inputs next to the padded border: padded cells are skipped (TorchLean's
    # maxPoolValue; PyTorch pads with -inf), never read as zero
    g = Graph()
    x = g.input([1, 2, 5, 5])
    g.output(g.pool("max_pool", x, [3, 3], [2, 2], [1, 1]))
    xv = -np.abs(rnd(1, 2, 5, 5)) - 0.1
    return g, xv, EXACT, [F.max_pool2d(T(xv), 3, 2, 1)]


@case("pools_1d_3d")
def _():
    g = Graph()
    x = g.input([2, 2, 4, 6, 5])
    f = g.node("reshape", [x], in_shape=[2, 2, 4, 6, 5], out_shape=[2, 8, 30])
    outs = [g.pool("max_pool", x, [2, 3, 2], [2, 2, 1], [0, 1, 1]),
            g.pool("avg_pool", x, [2, 2, 2], [1, 2, 2], [1, 0, 1]),
            g.pool("avg_pool", f, [4], [3], [2]),
            g.pool("max_pool", f, [3], [2], [0])]
    g.output(*outs)
    xv = np.abs(rnd(2, 2, 4, 6, 5))
    tx = T(xv)
    tf = tx.reshape(2, 8, 30)
    return g, xv, ACCUM, [F.max_pool3d(tx, (2, 3, 2), (2, 2, 1), (0, 1, 1)),
                          F.avg_pool3d(tx, 2, (1, 2, 2), (1, 0, 1), count_include_pad=True),
                          F.avg_pool1d(tf, 4, 3, 2, count_include_pad=True),
                          F.max_pool1d(tf, 3, 2)]


@case("legacy_pools")
def _():
    g = Graph()
    x = g.input([1, 2, 6, 6])
    r = g.unary("relu", x)
    outs = [g.pool2d_legacy("max_pool2d", x, 2, 2), g.pool2d_legacy("max_pool2d_pad", r, 3, 2, 1),
            g.pool2d_legacy("avg_pool2d", x, 2, 2), g.pool2d_legacy("avg_pool2d_pad", x, 3, 2, 1)]
    g.output(*outs)
    xv = rnd(1, 2, 6, 6)
    tx = T(xv)
    return g, xv, ACCUM, [F.max_pool2d(tx, 2, 2), F.max_pool2d(torch.relu(tx), 3, 2, 1),
                          F.avg_pool2d(tx, 2, 2), F.avg_pool2d(tx, 3, 2, 1, count_include_pad=True)]


@case("batch_norm_eval")
def _():
    g = Graph()
    x = g.input([2, 3, 4, 5])
    gm, bt, mu, var = rnd(3), rnd(3), rnd(3), rnd(3, lo=0.5, hi=2.0)
    y1 = g.batch_norm(x, 1, gm, bt, mu, var, eps=1e-5)
    f = g.node("reshape", [x], in_shape=[2, 3, 4, 5], out_shape=[6, 4, 5])
    gm2, bt2, mu2, var2 = rnd(4), rnd(4), rnd(4), rnd(4, lo=0.5, hi=2.0)
    y2 = g.batch_norm(f, 1, gm2, bt2, mu2, var2, eps=1e-3)
    g.output(y1, y2)
    xv = rnd(2, 3, 4, 5)
    return g, xv, TRANS, [
        F.batch_norm(T(xv), T(mu), T(var), T(gm), T(bt), training=False, eps=1e-5),
        F.batch_norm(T(xv).reshape(6, 4, 5), T(mu2), T(var2), T(gm2), T(bt2), training=False, eps=1e-3)]


@case("softmax")
def _():
    g = Graph()
    x = g.input([2, 3, 5])
    big = g.binary("mul_elem", x, g.const(np.full((2, 3, 5), 100.0, np.float32)))
    g.output(*[g.node("softmax", [x], axis=a) for a in range(3)], g.node("softmax", [big], axis=2))
    xv = rnd(2, 3, 5)
    return g, xv, TRANS, [torch.softmax(T(xv), a) for a in range(3)] + [torch.softmax(T(xv) * 100, 2)]


@case("layernorm")
def _():
    g = Graph()
    x = g.input([2, 3, 4, 5])
    g1, b1 = rnd(3, 4, 5), rnd(3, 4, 5)
    g2, b2 = rnd(5), rnd(5)
    g.output(g.layernorm(x, 1, g1, b1, eps=1e-5), g.layernorm(x, 3, g2, b2, eps=1e-3))
    xv = rnd(2, 3, 4, 5)
    return g, xv, dict(rtol=1e-5, atol=1e-5), [
        F.layer_norm(T(xv), (3, 4, 5), T(g1), T(b1), 1e-5), F.layer_norm(T(xv), (5,), T(g2), T(b2), 1e-3)]


@case("rand_uniform_bernoulli")
def _():
    g = Graph()
    x = g.input([3, 5])
    r = g.node("rand_uniform", [], shape=[3, 5], seed=42)
    p = g.const(np.float32(0.7))
    m = g.node("bernoulli_mask", [p], shape=[3, 5], seed=7)
    g.output(r, m, g.binary("mul_elem", x, m))
    # TorchLean Spec.Random, element by element (the oracle evaluates the nodes themselves)
    rv = unit_draws(42, r, 15).reshape(3, 5)
    mv = (np.float32(0.7) > unit_draws(7, m, 15)).astype(np.float32).reshape(3, 5)
    xv = rnd(3, 5)
    assert 0 < mv.sum() < 15
    return g, xv, EXACT, [T(rv), T(mv), T(xv) * T(mv)]


@case("multihead_attention")
def _():
    # TorchLean's value graph: a tuple-valued nn.MultiheadAttention node (single head, batch-first,
    # self-attention, no dropout) and tuple_getitem(0); tlrt lowers it on import
    E = 8
    g = Graph()
    x = g.input([2, 5, E])
    Wq, Wk, Wv, Wo = (rnd(E, E) / 3 for _ in range(4))
    bq, bk, bv, bo = (rnd(E) for _ in range(4))
    y = g.mha(x, Wq, Wk, Wv, Wo, bq, bk, bv, bo)
    g.output(g.unary("tanh", y), y)
    xv = rnd(2, 5, E)
    m = torch.nn.MultiheadAttention(E, 1, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        m.in_proj_weight.copy_(torch.cat([T(Wq), T(Wk), T(Wv)]))
        m.in_proj_bias.copy_(torch.cat([T(bq), T(bk), T(bv)]))
        m.out_proj.weight.copy_(T(Wo))
        m.out_proj.bias.copy_(T(bo))
        ty = m(T(xv), T(xv), T(xv), need_weights=False)[0]
    return g, xv, dict(rtol=1e-5, atol=1e-5), [torch.tanh(ty), ty]


# ---------------------------------------------------------------------- runner
def check(g, xv, tol, tref, tmp_path, extra, inline=False):
    ref = g.reference(xv)
    gp, bp = g.save(tmp_path, inline=inline)
    outs = run_tlrun(tool("tlrun"), gp, bp, xv, tmp_path, *extra, n_outputs=len(ref))
    assert len(outs) == len(ref)
    for k, (o, r) in enumerate(zip(outs, ref, strict=True)):
        assert o.dtype == np.float32
        assert o.shape == r.shape, (k, o.shape, r.shape)
        if tol is EXACT:
            np.testing.assert_array_equal(o, r.astype(np.float32), err_msg=f"output {k}")
        else:
            np.testing.assert_allclose(o, r, err_msg=f"output {k} vs numpy", **tol)
        if tref is not None:
            t = tref[k].numpy()
            # the NumPy reference and PyTorch agree (validates the reference itself)
            np.testing.assert_allclose(r, t, rtol=1e-12, atol=1e-12, err_msg=f"output {k} ref")
            if tol is EXACT:
                np.testing.assert_array_equal(o, t.astype(np.float32), err_msg=f"output {k} torch")
            else:
                np.testing.assert_allclose(o, t, err_msg=f"output {k} vs torch", **tol)


@pytest.mark.parametrize("isa", ["best", "scalar"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_op(name, isa, tmp_path):
    g, xv, tol, tref = CASES[name]()
    check(g, xv, tol, tref, tmp_path, [] if isa == "best" else ["--isa", "scalar"])


INLINE_CASES = ["linear_ranks", "conv2d_groups_stride_asym", "batch_norm_eval", "layernorm",
                "binary_add", "concat", "legacy_conv2d", "safe_log"]


@pytest.mark.parametrize("name", INLINE_CASES)
def test_op_inline_payloads(name, tmp_path):
    """TorchLean-style graph (payloads inline in the JSON, no params.bin)."""
    g, xv, tol, tref = CASES[name]()
    check(g, xv, tol, tref, tmp_path, [], inline=True)


def test_every_executable_op_is_covered():
    """Each executable tag of the C op table (`tlinfo --ops`, flag "exec") and each legacy spelling
    appears in some case's graph: a new row in ir/tl_ops.def without a case here fails."""
    seen = {"matmul"}  # test_matmul
    for f in CASES.values():
        g = f()[0]
        seen |= {n["kind"] for n in g.nodes}
    missing = [f"op {t} has no case in test_ops.py" for t in exec_tags() if t not in seen]
    missing += [f"legacy spelling {old} (of {cur}) has no case in test_ops.py"
                for old, cur in legacy_tags().items() if old not in seen]
    assert not missing, "\n".join(missing)


# ---------------------------------------------------------------------- TorchLean's dense grouped conv weight
def dense_grouped_conv_graph():
    """A grouped conv written as TorchLean writes it inline: weight DENSE block-diagonal
    [out, in, k...] with zeros off the group blocks (Export/TorchExport.lean _convolution_payload)."""
    g = Graph()
    x = g.input([2, 4, 6, 5])
    W, b = rnd(6, 2, 3, 3), rnd(6)
    g.output(g.conv(x, W, b, [1, 2], [1, 1], groups=2))
    doc = g.to_json(inline=True)
    dense = np.zeros((6, 4, 3, 3), np.float32)
    dense[:3, :2], dense[3:, 2:] = W[:3], W[3:]
    doc["nodes"][1]["weight"] = dense.tolist()
    xv = rnd(2, 4, 6, 5)
    return doc, xv, torch_conv(xv, W, b, [1, 2], [1, 1], [1, 1], [1, 1], 2)


def test_oracle_reads_dense_grouped_conv_weight():
    doc, xv, tref = dense_grouped_conv_graph()
    np.testing.assert_allclose(evaluate(doc, None, xv)[0], tref.numpy(), rtol=1e-12, atol=1e-12)
    doc["nodes"][1]["weight"][0][3][0][0] = 1.0      # an entry off the group blocks
    with pytest.raises(AssertionError, match="off the group blocks"):
        evaluate(doc, None, xv)


def test_conv_inline_dense_grouped_weight(tmp_path):
    doc, xv, tref = dense_grouped_conv_graph()
    gp = tmp_path / "graph.json"
    gp.write_text(json.dumps(doc))
    (y,) = run_tlrun(tool("tlrun"), str(gp), None, xv, tmp_path)
    np.testing.assert_allclose(y, tref.numpy(), **ACCUM)
