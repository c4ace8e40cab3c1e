"""Conformance fixtures in TorchLean's exact artifact form, written from what its sources say.

TorchLean's capture script (NN/Runtime/PyTorch/Export/TorchExport.lean) writes
    json.dumps(payload, indent=2, sort_keys=True, allow_nan=False)
with every node carrying "value_kind" ("tensor" + "shape", or "tuple" + "tuple_shapes"), a
"debug_target", and payloads inline as nested lists from Tensor.tolist(): linear in_dim/out_dim/
weight/bias, conv weight DENSE block-diagonal [out_channels, in_channels, k...] (groups > 1 expanded
with zeros) + bias, layernorm/batch_norm_eval gamma/beta(/mean/var)/eps, multihead_attention
q/k/v/out _weight/_bias + scale (+ "bias": bool). Its importer reads const values flat.

`python tests/data/torchlean/make_fixtures.py` rewrites the files next to this script; the test
(tests/py/test_torchlean_conformance.py) imports FIXTURES, asserts every file equals what this
script produces, runs the accepted ones in tlrt against the PyTorch oracle given here, and holds
every file to its expected tl_torchlean_check lines.

Each fixture: name -> (document, input array, oracle(x) -> list of float64 outputs, or None,
params dict for a small-form fixture or None).
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
M64 = (1 << 64) - 1


def vals(t):
    """TorchLean's _tensor_values: nested Python floats of the float32 tensor."""
    return torch.as_tensor(t).detach().to(torch.float32).tolist()


def flat(t):
    return torch.as_tensor(t).detach().to(torch.float32).reshape(-1).tolist()


def dense_grouped(w, groups):
    """PyTorch's packed [out, in/g, k...] -> TorchLean's dense block-diagonal [out, in, k...]."""
    out_c, in_g = w.shape[0], w.shape[1]
    d = torch.zeros((out_c, in_g * groups) + tuple(w.shape[2:]), dtype=w.dtype)
    og = out_c // groups
    for g in range(groups):
        d[g * og:(g + 1) * og, g * in_g:(g + 1) * in_g] = w[g * og:(g + 1) * og]
    return d


class Doc:
    def __init__(self):
        self.nodes = []
        self.outputs = []

    def add(self, kind, parents, shape, target, **fields):
        node = {"id": len(self.nodes), "kind": kind, "parents": list(parents), "value_kind": "tensor",
                "shape": list(shape), "debug_target": target, **fields}
        self.nodes.append(node)
        return node["id"]

    def add_tuple(self, kind, parents, shapes, target, **fields):
        node = {"id": len(self.nodes), "kind": kind, "parents": list(parents), "value_kind": "tuple",
                "tuple_shapes": [list(s) for s in shapes], "debug_target": target, **fields}
        self.nodes.append(node)
        return node["id"]

    def doc(self, **root):
        d = {"format": "torchlean.ir.v1", "input_id": 0, "output_ids": list(self.outputs), "nodes": self.nodes}
        d.update(root)
        return d


def text(doc):
    return json.dumps(doc, indent=2, sort_keys=True, allow_nan=False)


def rnd(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def T(x):
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def conv_fields(w, groups, stride, padding, dilation, input_spatial, dense=True):
    sr = w.dim() - 2
    return dict(spatial_rank=sr, kernel=list(w.shape[2:]), stride=list(stride), padding=list(padding),
                padding_after=list(padding), dilation=list(dilation), groups=groups, channel_axis=1,
                in_channels=int(w.shape[1]) * groups, out_channels=int(w.shape[0]),
                input_spatial=list(input_spatial),
                weight=vals(dense_grouped(w, groups) if dense else w))


# ---------------------------------------------------------------------- accepted, every tag
def fx_elementwise():
    d = Doc()
    s = [2, 3]
    x = d.add("input", [], s, "x")
    un = {}
    for k in ("relu", "tanh", "sigmoid", "exp", "sin", "cos", "abs", "softplus", "detach"):
        un[k] = d.add(k, [x], s, k)
    un["log"] = d.add("log", [un["exp"]], s, "log")
    un["sqrt"] = d.add("sqrt", [un["abs"]], s, "sqrt")
    un["inv"] = d.add("inv", [un["exp"]], s, "reciprocal")
    bi = {}
    for k, other in (("add", "tanh"), ("sub", "sigmoid"), ("mul_elem", "tanh"), ("max_elem", "sin"),
                     ("min_elem", "cos")):
        bi[k] = d.add(k, [x, un[other]], s, k)
    eps = d.add("const", [], [], "eps", value_shape=[], values=[1e-3])
    sl = d.add("safe_log", [x, eps], s, "safe_log")
    sm = d.add("sum", [x], [], "sum")
    ms = d.add("mse_loss", [x, un["tanh"]], [], "mse_loss")
    order = ["relu", "tanh", "sigmoid", "exp", "sin", "cos", "abs", "softplus", "detach", "log", "sqrt", "inv"]
    d.outputs = [un[k] for k in order] + list(bi.values()) + [sl, sm, ms]

    def oracle(xv):
        t = T(xv)
        u = {"relu": torch.relu(t), "tanh": torch.tanh(t), "sigmoid": torch.sigmoid(t), "exp": torch.exp(t),
             "sin": torch.sin(t), "cos": torch.cos(t), "abs": t.abs(), "softplus": F.softplus(t), "detach": t}
        u["log"] = torch.log(u["exp"])
        u["sqrt"] = torch.sqrt(u["abs"])
        u["inv"] = 1 / u["exp"]
        b = [t + u["tanh"], t - u["sigmoid"], t * u["tanh"], torch.maximum(t, u["sin"]), torch.minimum(t, u["cos"])]
        return [u[k] for k in order] + b + [torch.log(F.softplus(t) + 1e-3), t.sum(), ((t - u["tanh"]) ** 2).mean()]
    return d.doc(), rnd(1, *s), oracle, None


def fx_shapes():
    d = Doc()
    x = d.add("input", [], [2, 3, 4], "x")
    p = d.add("permute", [x], [4, 2, 3], "permute", perm=[2, 0, 1])
    t = d.add("transpose", [x], [2, 4, 3], "transpose", axis1=1, axis2=2)
    r = d.add("reshape", [x], [6, 4], "view", in_shape=[2, 3, 4], out_shape=[6, 4])
    f = d.add("flatten", [x], [24], "flatten", value_shape=[2, 3, 4])
    c = d.add("concat", [x, x], [2, 6, 4], "cat", axis=1)
    rs = d.add("reduce_sum", [x], [2, 3, 1], "sum", axes=[2], keepdim=True)
    b = d.add("broadcast_to", [rs], [2, 3, 4], "expand", from_shape=[2, 3, 1], to_shape=[2, 3, 4])
    rm = d.add("reduce_mean", [x], [3], "mean", axes=[0, 2], keepdim=False)
    sm = d.add("softmax", [x], [2, 3, 4], "softmax", axis=2)
    mm = d.add("matmul", [x, t], [2, 3, 3], "matmul")
    d.outputs = [p, t, r, f, c, rs, b, rm, sm, mm]

    def oracle(xv):
        t_ = T(xv)
        s = t_.sum(2, keepdim=True)
        return [t_.permute(2, 0, 1), t_.transpose(1, 2), t_.reshape(6, 4), t_.reshape(-1), torch.cat([t_, t_], 1), s,
                s.expand(2, 3, 4), t_.mean((0, 2)), torch.softmax(t_, 2), t_ @ t_.transpose(1, 2)]
    return d.doc(), rnd(2, 2, 3, 4), oracle, None


def _layers(doc_inline=True):
    torch.manual_seed(3)
    lin = torch.nn.Linear(4, 5)
    ln = torch.nn.LayerNorm(4)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-0.5, 0.5)
    gamma, beta = torch.rand(3) + 0.5, torch.randn(3)
    mean, var = torch.randn(3), torch.rand(3) + 0.5
    cval = torch.randn(2, 3, 4)
    d = Doc()
    x = d.add("input", [], [2, 3, 4], "x")
    pay = (lambda **kw: kw) if doc_inline else (lambda **kw: {})
    y = d.add("linear", [x], [2, 3, 5], "linear", in_dim=4, out_dim=5,
              **pay(weight=vals(lin.weight), bias=vals(lin.bias)))
    z = d.add("layernorm", [x], [2, 3, 4], "layer_norm", axis=2, eps=1e-5,
              **pay(gamma=vals(ln.weight), beta=vals(ln.bias)))
    bn = d.add("batch_norm_eval", [x], [2, 3, 4], "batch_norm", channel_axis=1, channels=3, eps=1e-3,
               **pay(gamma=vals(gamma), beta=vals(beta), mean=vals(mean), var=vals(var)))
    k = d.add("const", [], [2, 3, 4], "const", value_shape=[2, 3, 4], **pay(values=flat(cval)))
    a = d.add("add", [x, k], [2, 3, 4], "add")
    d.outputs = [y, z, bn, a]
    params = {"linear_1_W": lin.weight, "linear_1_b": lin.bias, "layernorm_2_gamma": ln.weight,
              "layernorm_2_beta": ln.bias, "batchnorm_3_gamma": gamma, "batchnorm_3_beta": beta,
              "batchnorm_3_mean": mean, "batchnorm_3_var": var, "const_4": cval}
    params = {k_: v.detach().to(torch.float32).numpy().copy() for k_, v in params.items()}

    def oracle(xv):
        t = T(xv)
        f64 = {k_: torch.as_tensor(v, dtype=torch.float64) for k_, v in params.items()}
        bn_ = F.batch_norm(t, f64["batchnorm_3_mean"], f64["batchnorm_3_var"], f64["batchnorm_3_gamma"],
                           f64["batchnorm_3_beta"], False, 0.0, 1e-3)
        return [F.linear(t, f64["linear_1_W"], f64["linear_1_b"]),
                F.layer_norm(t, (4,), f64["layernorm_2_gamma"], f64["layernorm_2_beta"], 1e-5), bn_, t + f64["const_4"]]
    return d.doc(), rnd(4, 2, 3, 4), oracle, (None if doc_inline else params)


def fx_layers():
    return _layers(True)


def fx_conv_pool():
    torch.manual_seed(5)
    w1, b1 = torch.randn(4, 4, 3, 3) * 0.3, torch.randn(4)
    w2, b2 = torch.randn(6, 2, 3, 3) * 0.3, torch.randn(6)   # groups 2
    w3, b3 = torch.randn(4, 1, 3, 3) * 0.3, torch.randn(4)   # depthwise
    d = Doc()
    x = d.add("input", [], [1, 4, 6, 6], "x")
    c1 = d.add("conv", [x], [1, 4, 6, 6], "conv2d", **conv_fields(w1, 1, [1, 1], [1, 1], [1, 1], [6, 6]), bias=vals(b1))
    c2 = d.add("conv", [x], [1, 6, 3, 3], "conv2d", **conv_fields(w2, 2, [2, 2], [1, 1], [1, 1], [6, 6]), bias=vals(b2))
    c3 = d.add("conv", [x], [1, 4, 6, 6], "conv2d", **conv_fields(w3, 4, [1, 1], [2, 2], [2, 2], [6, 6]), bias=vals(b3))
    mp = d.add("max_pool", [c1], [1, 4, 3, 3], "max_pool2d", spatial_rank=2, kernel=[2, 2], stride=[2, 2],
               padding=[0, 0])
    mpp = d.add("max_pool", [c3], [1, 4, 3, 3], "max_pool2d", spatial_rank=2, kernel=[3, 3], stride=[2, 2],
                padding=[1, 1])
    ap = d.add("avg_pool", [c1], [1, 4, 6, 6], "avg_pool2d", spatial_rank=2, kernel=[3, 3], stride=[1, 1],
               padding=[1, 1])
    d.outputs = [c1, c2, c3, mp, mpp, ap]

    def oracle(xv):
        t = T(xv)
        y1 = F.conv2d(t, w1.double(), b1.double(), 1, 1)
        y3 = F.conv2d(t, w3.double(), b3.double(), 1, 2, 2, groups=4)
        return [y1, F.conv2d(t, w2.double(), b2.double(), 2, 1, 1, groups=2), y3, F.max_pool2d(y1, 2, 2),
                F.max_pool2d(y3, 3, 2, 1), F.avg_pool2d(y1, 3, 1, 1, count_include_pad=True)]
    return d.doc(), rnd(6, 1, 4, 6, 6), oracle, None


def splitmix64(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def draws(seed, node_id, n):
    """TorchLean's Spec.Random: key = splitmix64(seed + id), element i from splitmix64(key + i)."""
    key = splitmix64((seed + node_id) & M64)
    u = [splitmix64((key + i) & M64) & 0xFFFFFFFF for i in range(n)]
    return np.array(u, np.uint64).astype(np.float32) / np.float32(2.0 ** 32)


def fx_random():
    d = Doc()
    x = d.add("input", [], [3, 5], "x")
    r = d.add("rand_uniform", [], [3, 5], "rand", seed=42)
    p = d.add("const", [], [], "keep", value_shape=[], values=[0.7])
    m = d.add("bernoulli_mask", [p], [3, 5], "bernoulli", seed=7)
    y = d.add("mul_elem", [x, m], [3, 5], "mul")
    d.outputs = [r, m, y]

    def oracle(xv):
        rv = draws(42, r, 15).reshape(3, 5)
        mv = (np.float32(0.7) > draws(7, m, 15)).astype(np.float32).reshape(3, 5)
        return [T(rv), T(mv), T(xv) * T(mv)]
    return d.doc(), rnd(7, 3, 5), oracle, None


def _mha(num_heads=1, index=0):
    torch.manual_seed(8)
    mha = torch.nn.MultiheadAttention(4, num_heads, batch_first=True).eval()
    qw, kw, vw = mha.in_proj_weight.chunk(3, 0)
    qb, kb, vb = mha.in_proj_bias.chunk(3, 0)
    d = Doc()
    x = d.add("input", [], [1, 3, 4], "x")
    a = d.add_tuple("multihead_attention", [x, x, x], [[1, 3, 4], [1, 3, 3]], "attn", embed_dim=4,
                    num_heads=num_heads, batch_first=True, dropout_zero=True, bias=True,
                    q_weight=vals(qw), q_bias=vals(qb), k_weight=vals(kw), k_bias=vals(kb), v_weight=vals(vw),
                    v_bias=vals(vb), out_weight=vals(mha.out_proj.weight), out_bias=vals(mha.out_proj.bias),
                    scale=float((4 // num_heads) ** -0.5))
    g = d.add("tuple_getitem", [a], [1, 3, 4] if index == 0 else [1, 3, 3], "getitem", index=index)
    y = d.add("relu", [g], [1, 3, 4] if index == 0 else [1, 3, 3], "relu")
    d.outputs = [y]

    def oracle(xv):
        m64 = mha.double()
        t = T(xv)
        return [torch.relu(m64(t, t, t, need_weights=False)[0])]
    return d.doc(), rnd(9, 1, 3, 4), oracle, None


def fx_mha():
    return _mha()


def _grouped(dense):
    torch.manual_seed(10)
    conv_g = torch.nn.Conv2d(4, 8, 3, padding=1, groups=2)
    conv_dw = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
    d = Doc()
    x = d.add("input", [], [2, 4, 5, 5], "x")
    y = d.add("conv", [x], [2, 8, 5, 5], "conv",
              **conv_fields(conv_g.weight, 2, [1, 1], [1, 1], [1, 1], [5, 5], dense), bias=vals(conv_g.bias))
    r = d.add("relu", [y], [2, 8, 5, 5], "relu")
    z = d.add("conv", [r], [2, 8, 5, 5], "dw",
              **conv_fields(conv_dw.weight, 8, [1, 1], [1, 1], [1, 1], [5, 5], dense), bias=vals(conv_dw.bias))
    d.outputs = [y, z]

    def oracle(xv):
        t = T(xv)
        y_ = F.conv2d(t, conv_g.weight.double(), conv_g.bias.double(), padding=1, groups=2)
        return [y_, F.conv2d(torch.relu(y_), conv_dw.weight.double(), conv_dw.bias.double(), padding=1, groups=8)]
    return d.doc(), rnd(11, 2, 4, 5, 5), oracle, None


def fx_grouped_dense():
    return _grouped(True)


# ---------------------------------------------------------------------- tlrt runs, TorchLean rejects
def fx_grouped_packed():
    return _grouped(False)


def fx_legacy():
    torch.manual_seed(12)
    w, b = torch.randn(3, 2, 3, 3) * 0.3, torch.randn(3)
    d = Doc()
    x = d.add("input", [], [1, 2, 6, 6], "x")
    c = d.add("conv2d", [x], [1, 3, 6, 6], "conv", inC=2, outC=3, kH=3, kW=3, stride=1, padding=1, weight=vals(w),
              bias=vals(b))
    m = d.add("max_pool2d", [c], [1, 3, 3, 3], "mp", kH=2, kW=2, stride=2)
    a = d.add("avg_pool2d_pad", [m], [1, 3, 3, 3], "ap", kH=3, kW=3, stride=1, padding=1)
    mpp = d.add("max_pool2d_pad", [a], [1, 3, 3, 3], "mpp", kH=3, kW=3, stride=1, padding=1)
    a1 = d.add("avg_pool2d", [mpp], [1, 3, 3, 3], "ap1", kH=1, kW=1, stride=1)
    s = d.add("swap_first_two", [a1], [3, 1, 3, 3], "swap")
    r = d.add("reshape", [s], [3, 3, 3], "view", in_shape=[3, 1, 3, 3], out_shape=[3, 3, 3])
    t = d.add("transpose3d_last_two", [r], [3, 3, 3], "t")
    doc = d.doc(output_id=t)
    del doc["output_ids"]

    def oracle(xv):
        y = F.avg_pool2d(F.max_pool2d(F.conv2d(T(xv), w.double(), b.double(), padding=1), 2, 2), 3, 1, 1)
        y = F.avg_pool2d(F.max_pool2d(y, 3, 1, 1), 1, 1)
        return [y.transpose(0, 1).reshape(3, 3, 3).transpose(1, 2)]
    return doc, rnd(13, 1, 2, 6, 6), oracle, None


def fx_small_form():
    return _layers(False)


def _edit(fx, f):
    doc, xv, oracle, params = fx()
    f(doc["nodes"])
    return doc, xv, oracle, params


def fx_reduce_no_keepdim():
    return _edit(fx_shapes, lambda ns: ns[8].pop("keepdim"))


def fx_reduce_axis():
    def f(ns):
        ns[8].pop("keepdim")
        ns[8].pop("axes")
        ns[8]["axis"] = 1
        ns[8]["shape"] = [2, 4]
    doc, xv, _, params = _edit(fx_shapes, f)
    doc["output_ids"] = [8]
    return doc, xv, lambda xv: [T(xv).mean(1)], params


def fx_conv_fields_missing():
    def f(ns):
        for k in ("dilation", "groups", "padding_after", "input_spatial"):
            ns[1].pop(k)
    return _edit(fx_conv_pool, f)


def fx_const_nested():
    def f(ns):
        ns[4]["values"] = np.asarray(ns[4]["values"], np.float64).reshape(2, 3, 4).tolist()
    return _edit(fx_layers, f)


def fx_linear_no_dims():
    def f(ns):
        ns[1].pop("in_dim")
        ns[1].pop("out_dim")
    return _edit(fx_layers, f)


# ---------------------------------------------------------------------- both reject
def fx_dense_offblock():
    def f(ns):
        ns[1]["weight"][0][3][1][1] = 0.5   # output channel 0 (group 0) reading input channel 3 (group 1)
    doc, xv, _, p = _edit(fx_grouped_dense, f)
    return doc, xv, None, p


def fx_mha_two_heads():
    doc, xv, _, p = _mha(num_heads=2)
    return doc, xv, None, p


def fx_mha_weights():
    doc, xv, _, p = _mha(index=1)
    return doc, xv, None, p


def fx_hard_masked_softmax():
    d = Doc()
    x = d.add("input", [], [2, 3], "x")
    d.outputs = [d.add("hard_masked_softmax", [x], [2, 3], "masked_softmax")]
    return d.doc(), rnd(14, 2, 3), None, None


def fx_custom():
    d = Doc()
    x = d.add("input", [], [2, 3], "x")
    d.outputs = [d.add("custom", [x], [2, 3], "my_op")]
    return d.doc(), rnd(15, 2, 3), None, None


FIXTURES = {name[3:]: f for name, f in sorted(globals().items()) if name.startswith("fx_")}


def write_all(outdir=HERE):
    from safetensors.numpy import save_file
    for name, f in FIXTURES.items():
        doc, _, _, params = f()
        with open(os.path.join(outdir, name + ".json"), "w", encoding="utf-8") as fh:
            fh.write(text(doc))
        if params is not None:
            save_file(params, os.path.join(outdir, name + ".bin"))


if __name__ == "__main__":
    write_all(sys.argv[1] if len(sys.argv) > 1 else HERE)
    print(f"wrote {len(FIXTURES)} fixtures to {sys.argv[1] if len(sys.argv) > 1 else HERE}")
