"""THE float64 oracle of torchlean.ir.v1: every executable op of the IR evaluated in NumPy float64,
following TorchLean's semantics (NN/IR/Semantics.lean, NN/Spec/...; the wire digest is
shared/torchlean-ir-v1.md). It reads graph documents as they are written (current and legacy
spellings, params.bin tensors or TorchLean's inline payloads) and imports nothing from tlrt: not the
capture script, not the emitter. Its own parameter-name table (PARAM_SLOTS) and legacy table (LEGACY)
are checked against the C op table (`tlinfo --ops`) by tests/py/test_wire_table.py.

    outs = evaluate(doc, params, x)                 # list of float64 arrays (PyTorch return order)
    vals = evaluate(doc, params, x, all_values=True)  # every node's value, by position

Semantics (where PyTorch and older IR texts differ, TorchLean wins):
  - max_pool SKIPS padded cells (TorchLean maxPoolValue / getPaddedMaxInputVal?, = PyTorch's -inf
    padding); a window without any input cell gives 0. avg_pool adds padded cells as zero and
    divides by the full window (count_include_pad=True). Output extents are TorchLean's poolOutDim
    (0 when padding > kernel // 2 or the padded input is shorter than the kernel).
  - softplus is PyTorch's (beta 1, threshold 20): x for x > 20, else log1p(exp(x)).
  - safe_log(x, eps) = log(softplus(x) + eps), eps the scalar second parent.
  - reduce_sum / reduce_mean over several axes in one node (TorchLean lowers one axis at a time;
    the values are the same); legacy {axis} means axes [axis], keepdim false.
  - rand_uniform / bernoulli_mask: TorchLean Spec.Random, element i from splitmix64(key + i) with
    key = splitmix64(seed + node id); uniform = float32(u32) / 2^32; mask = keep > uniform.
  - conv: N-d over the axes after channel_axis; padding / padding_after, dilation, groups. Weights
    [out, in/groups, k...] (params.bin, PyTorch) or TorchLean's dense block-diagonal
    [out, in, k...] (inline; the off-block entries must be zero).
  - layernorm normalizes over every axis from `axis` on; layernorm / batch_norm_eval use the
    node's eps.
  - multihead_attention (value graph): PyTorch nn.MultiheadAttention(batch_first) on (q, k, v);
    component 0 the attention output, component 1 the head-averaged weights. tuple_getitem picks.
"""
import itertools

import numpy as np

# (inline JSON key, params.bin name format) per op, in the op table's slot order.
PARAM_SLOTS = {
    "const": (("values", "const_{}"),),
    "linear": (("weight", "linear_{}_W"), ("bias", "linear_{}_b")),
    "conv": (("weight", "conv2d_{}_kernel"), ("bias", "conv2d_{}_bias")),
    "batch_norm_eval": (("gamma", "batchnorm_{}_gamma"), ("beta", "batchnorm_{}_beta"),
                        ("mean", "batchnorm_{}_mean"), ("var", "batchnorm_{}_var")),
    "layernorm": (("gamma", "layernorm_{}_gamma"), ("beta", "layernorm_{}_beta")),
}

# older spelling -> current tag
LEGACY = {
    "conv2d": "conv",
    "max_pool2d": "max_pool", "max_pool2d_pad": "max_pool",
    "avg_pool2d": "avg_pool", "avg_pool2d_pad": "avg_pool",
    "swap_first_two": "transpose", "transpose3d_last_two": "transpose",
}

MHA_KEYS = ("q_weight", "k_weight", "v_weight", "out_weight", "q_bias", "k_bias", "v_bias", "out_bias")


def softplus(v):
    v = np.asarray(v, np.float64)
    return np.where(v > 20.0, v, np.log1p(np.exp(np.minimum(v, 20.0))))


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-np.asarray(v, np.float64)))


UNARY = {
    "abs": np.abs,
    "sqrt": np.sqrt,
    "inv": lambda v: 1.0 / v,
    "relu": lambda v: np.maximum(v, 0.0),
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "exp": np.exp,
    "log": np.log,
    "sin": np.sin,
    "cos": np.cos,
    "softplus": softplus,
}
BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul_elem": np.multiply,
    "max_elem": np.maximum,
    "min_elem": np.minimum,
}


# ---------------------------------------------------------------------- random ops (Spec.Random)
M64 = (1 << 64) - 1


def splitmix64(x):
    z = (x + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def unit_draws(seed, node_id, n):
    """TorchLean Spec.Random: key = splitmix64(seed + id); element i = float(u32(splitmix64(key + i))) / 2^32."""
    key = splitmix64((seed + node_id) & M64)
    u = [splitmix64((key + i) & M64) & 0xFFFFFFFF for i in range(n)]
    return np.array(u, np.uint64).astype(np.float32) / np.float32(2.0 ** 32)


# ---------------------------------------------------------------------- windows
def pool_out_dim(n, k, s, p):
    if n == 0 or k == 0 or p > k // 2:
        return 0
    if n + 2 * p < k:
        return 0
    return (n + 2 * p - k) // s + 1


def conv_ref(x, w, b, stride, padding, padding_after, dilation, groups, channel_axis):
    """N-d convolution over the axes after channel_axis, float64; w [out, in/groups, k...]."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    sr = x.ndim - channel_axis - 1
    lead = x.shape[:channel_axis]
    C = x.shape[channel_axis]
    xs = x.reshape((-1, C) + x.shape[channel_axis + 1:])
    pad = [(0, 0), (0, 0)] + [(padding[i], padding_after[i]) for i in range(sr)]
    xp = np.pad(xs, pad)
    OC = w.shape[0]
    ks = w.shape[2:]
    outs = []
    for i in range(sr):
        eff = dilation[i] * (ks[i] - 1) + 1
        outs.append((xp.shape[2 + i] - eff) // stride[i] + 1)
    cig, cog = C // groups, OC // groups
    y = np.zeros((xs.shape[0], OC) + tuple(outs))
    for kidx in itertools.product(*[range(k) for k in ks]):
        sl = [slice(None), slice(None)]
        for i in range(sr):
            start = kidx[i] * dilation[i]
            sl.append(slice(start, start + (outs[i] - 1) * stride[i] + 1, stride[i]))
        win = xp[tuple(sl)]  # [O, C, out...]
        for gi in range(groups):
            wk = w[(slice(gi * cog, (gi + 1) * cog), slice(None)) + kidx]  # [cog, cig]
            y[:, gi * cog:(gi + 1) * cog] += np.einsum(
                "oc...,dc->od...", win[:, gi * cig:(gi + 1) * cig], wk)
    if b is not None:
        y += np.asarray(b, np.float64).reshape((1, OC) + (1,) * sr)
    return y.reshape(lead + (OC,) + tuple(outs))


def pool_ref(x, kind, kernel, stride, padding):
    """kind "max" (padded cells skipped) or "avg" (padded cells count as zero)."""
    x = np.asarray(x, np.float64)
    sr = len(kernel)
    lead = x.shape[:x.ndim - sr]
    sp = x.shape[x.ndim - sr:]
    outs = [pool_out_dim(sp[i], kernel[i], stride[i], padding[i]) for i in range(sr)]
    xs = x.reshape((-1,) + sp)
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(xs, [(0, 0)] + [(p, p) for p in padding], constant_values=fill)
    y = np.zeros((xs.shape[0],) + tuple(outs))
    for oidx in itertools.product(*[range(o) for o in outs]):
        sl = [slice(None)] + [slice(oidx[i] * stride[i], oidx[i] * stride[i] + kernel[i])
                              for i in range(sr)]
        win = xp[tuple(sl)].reshape(xs.shape[0], -1)
        if kind == "max":
            m = win.max(axis=1) if win.shape[1] else np.zeros(win.shape[0])
            y[(slice(None),) + oidx] = np.where(np.isneginf(m), 0.0, m)
        else:
            y[(slice(None),) + oidx] = win.mean(axis=1)
    return y.reshape(lead + tuple(outs))


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ---------------------------------------------------------------------- reading a node
def _pair(v):
    return [int(v[0]), int(v[1])] if isinstance(v, (list, tuple)) else [int(v), int(v)]


def _first(n, *names):
    for k in names:
        if k in n:
            return n[k]
    raise KeyError(f"node[{n.get('id')}] ({n['kind']}): missing field {names[0]!r}")


def current_form(n, parent_shapes):
    """The node in the current spelling with every optional field at its default (a new dict)."""
    k = n["kind"]
    c = dict(n)
    if k in ("swap_first_two", "transpose3d_last_two"):
        c.update(kind="transpose", axis1=0 if k == "swap_first_two" else 1,
                 axis2=1 if k == "swap_first_two" else 2)
    elif k in ("max_pool2d", "max_pool2d_pad", "avg_pool2d", "avg_pool2d_pad", "conv2d"):
        kh, kw = int(_first(n, "kH", "kernel_h")), int(_first(n, "kW", "kernel_w"))
        padded = k == "conv2d" or k.endswith("_pad")
        pad = _pair(n["padding"]) if padded else [0, 0]
        c.update(kind=LEGACY[k], spatial_rank=2, kernel=[kh, kw], stride=_pair(n["stride"]), padding=pad)
        if k == "conv2d":
            rank = len(parent_shapes[0])
            c.update(padding_after=list(pad), dilation=[1, 1], groups=1,
                     channel_axis=rank - 3 if rank >= 3 else 0,
                     in_channels=int(_first(n, "inC", "in_channels")),
                     out_channels=int(_first(n, "outC", "out_channels")))
    k = c["kind"]
    if k == "conv":
        r = c["spatial_rank"]
        c.setdefault("padding_after", list(c["padding"]))
        c.setdefault("dilation", [1] * r)
        c.setdefault("groups", 1)
    elif k in ("reduce_sum", "reduce_mean"):
        if "axes" not in c:
            c["axes"] = [int(c["axis"])]
            c["keepdim"] = False
        c.setdefault("keepdim", False)
    elif k == "const":
        c.setdefault("value_shape", c.get("shape"))
    return c


def param_shape(c, key, parent_shapes):
    """Expected shape of a parameter slot of the (current-form) node c."""
    k = c["kind"]
    if k == "const":
        return list(c["value_shape"])
    if k == "linear":
        out_dim = c.get("out_dim", c["shape"][-1] if c.get("shape") else None)
        in_dim = c.get("in_dim", parent_shapes[0][-1] if parent_shapes and parent_shapes[0] else None)
        return [out_dim, in_dim] if key == "weight" else [out_dim]
    if k == "conv":
        if key == "bias":
            return [c["out_channels"]]
        return [c["out_channels"], c["in_channels"] // c["groups"]] + list(c["kernel"])
    if k == "batch_norm_eval":
        return [c["channels"]]
    if k == "layernorm":
        return list(parent_shapes[0][c["axis"]:])
    raise KeyError(k)


def _pack_dense_conv(w, c):
    """TorchLean's dense block-diagonal grouped weight [out, in, k...] -> [out, in/groups, k...]."""
    G, OC, C = c["groups"], c["out_channels"], c["in_channels"]
    cog, cig = OC // G, C // G
    packed = np.empty((OC, cig) + w.shape[2:])
    for gi in range(G):
        rows = slice(gi * cog, (gi + 1) * cog)
        packed[rows] = w[rows, gi * cig:(gi + 1) * cig]
        off = w[rows].copy()
        off[:, gi * cig:(gi + 1) * cig] = 0
        assert not off.any(), f"node[{c['id']}] (conv): dense grouped weight has entries off the group blocks"
    return packed


def node_slots(n, params, parent_shapes):
    """{inline key: float64 array} of node n, from params.bin tensors (name -> array) or inline."""
    c = current_form(n, parent_shapes)
    slots = {}
    for key, fmt in PARAM_SLOTS.get(c["kind"], ()):
        name = fmt.format(n["id"])
        if params is not None and name in params:
            arr = np.asarray(params[name], np.float64)
        elif key in n:
            arr = np.asarray(n[key], np.float64)
        else:
            raise AssertionError(f"node[{n['id']}] ({n['kind']}): no {name} in params and no inline {key!r}")
        shape = param_shape(c, key, parent_shapes)
        if c["kind"] == "linear" and None in shape:
            shape = list(arr.shape)
        if c["kind"] == "conv" and key == "weight" and c["groups"] > 1 and arr.ndim >= 2 \
                and arr.shape[1] == c["in_channels"]:
            arr = _pack_dense_conv(arr, c)
        assert arr.size == int(np.prod(shape)), (n["id"], name, arr.shape, shape)
        if c["kind"] != "const":   # const values may be flat; every other payload has its shape
            assert list(arr.shape) == list(shape), (n["id"], name, list(arr.shape), shape)
        slots[key] = arr.reshape(shape)
    if c["kind"] == "multihead_attention":
        for key in MHA_KEYS:   # inline only (TorchLean's form; the table has no params.bin names)
            slots[key] = np.asarray(n[key], np.float64)
    return slots


def _mha(c, q, k, v, P):
    """PyTorch nn.MultiheadAttention (batch_first when c["batch_first"]) in float64."""
    E, H = c["embed_dim"], c["num_heads"]
    D = E // H
    if not c.get("batch_first", False):
        q, k, v = (np.swapaxes(t, 0, 1) for t in (q, k, v))
    qp = q @ P["q_weight"].T + P["q_bias"]
    kp = k @ P["k_weight"].T + P["k_bias"]
    vp = v @ P["v_weight"].T + P["v_bias"]
    split = lambda t: t.reshape(t.shape[:-1] + (H, D)).swapaxes(-2, -3)   # [.., H, n, D]
    s = split(qp) @ np.swapaxes(split(kp), -1, -2) * c["scale"]
    p = softmax(s, -1)
    ctx = (p @ split(vp)).swapaxes(-2, -3)
    ctx = ctx.reshape(ctx.shape[:-2] + (E,))
    out = ctx @ P["out_weight"].T + P["out_bias"]
    w = p.mean(axis=-3)
    if not c.get("batch_first", False):
        out = np.swapaxes(out, 0, 1)
    return (out, w)


def _shape_of(v):
    return [list(np.shape(t)) for t in v] if isinstance(v, tuple) else list(np.shape(v))


def eval_node(n, vals, slots):
    """Value of node n (any spelling) from its parents' values and its parameter slots."""
    c = current_form(n, [_shape_of(v) for v in vals])
    k = c["kind"]
    if k in UNARY:
        return UNARY[k](vals[0])
    if k in BINARY:
        return BINARY[k](vals[0], vals[1])
    if k == "detach":
        return vals[0]
    if k == "const":
        return slots["values"]
    if k == "safe_log":
        return np.log(softplus(vals[0]) + vals[1])
    if k == "broadcast_to":
        assert list(np.shape(vals[0])) == list(c["from_shape"]), (n["id"], np.shape(vals[0]), c["from_shape"])
        return np.broadcast_to(vals[0], c["to_shape"]).copy()
    if k == "permute":
        return np.transpose(vals[0], c["perm"]).copy()
    if k == "transpose":
        return np.swapaxes(vals[0], c["axis1"], c["axis2"]).copy()
    if k == "reshape":
        assert list(np.shape(vals[0])) == list(c["in_shape"]), (n["id"], np.shape(vals[0]), c["in_shape"])
        return vals[0].reshape(c["out_shape"])
    if k == "flatten":
        return vals[0].reshape(-1)
    if k == "concat":
        return np.concatenate(vals, axis=c["axis"])
    if k in ("reduce_sum", "reduce_mean"):
        f = np.sum if k == "reduce_sum" else np.mean
        return f(vals[0], axis=tuple(c["axes"]), keepdims=bool(c["keepdim"]))
    if k == "sum":
        return np.sum(vals[0])
    if k == "mse_loss":
        return np.mean((vals[0] - vals[1]) ** 2)
    if k == "matmul":
        return np.matmul(vals[0], vals[1])
    if k == "linear":
        return vals[0] @ slots["weight"].T + slots["bias"]
    if k == "conv":
        return conv_ref(vals[0], slots["weight"], slots["bias"], c["stride"], c["padding"],
                        c["padding_after"], c["dilation"], c["groups"], c["channel_axis"])
    if k in ("max_pool", "avg_pool"):
        return pool_ref(vals[0], k[:3], c["kernel"], c["stride"], c["padding"])
    if k == "batch_norm_eval":
        shp = [1] * np.ndim(vals[0])
        shp[c["channel_axis"]] = -1
        g, b, m, v = (slots[key].reshape(shp) for key in ("gamma", "beta", "mean", "var"))
        return (vals[0] - m) / np.sqrt(v + c["eps"]) * g + b
    if k == "softmax":
        return softmax(vals[0], c["axis"])
    if k == "layernorm":
        x = vals[0]
        axes = tuple(range(c["axis"], x.ndim))
        mu = x.mean(axis=axes, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
        return (x - mu) / np.sqrt(var + c["eps"]) * slots["gamma"] + slots["beta"]
    if k == "rand_uniform":
        shape = c["shape"]
        return unit_draws(c["seed"], c["id"], int(np.prod(shape))).astype(np.float64).reshape(shape)
    if k == "bernoulli_mask":
        shape = c["shape"]
        u = unit_draws(c["seed"], c["id"], int(np.prod(shape))).astype(np.float64).reshape(shape)
        return (np.asarray(vals[0], np.float64) > u).astype(np.float64)
    if k == "multihead_attention":
        return _mha(c, vals[0], vals[1], vals[2], slots)
    if k == "tuple_getitem":
        return vals[0][c["index"]]
    raise NotImplementedError(f"node[{n.get('id')}]: the oracle has no semantics for {n['kind']!r}")


# every tag eval_node evaluates (current spellings; LEGACY holds the older ones)
OPS = frozenset(["input"] + list(UNARY) + list(BINARY) + [
    "detach", "const", "safe_log", "broadcast_to", "permute", "transpose", "reshape", "flatten",
    "concat", "reduce_sum", "reduce_mean", "sum", "mse_loss", "matmul", "linear", "conv",
    "max_pool", "avg_pool", "batch_norm_eval", "softmax", "layernorm", "rand_uniform",
    "bernoulli_mask", "multihead_attention", "tuple_getitem"])


def _declared(n):
    if n.get("value_kind") == "tuple":
        return [list(s) for s in n["tuple_shapes"]]
    return list(n["shape"])


def evaluate(doc, params, x, all_values=False, check_shapes=True):
    """Evaluate a torchlean.ir.v1 document in float64. params: params.bin tensors by name (or None
    for inline payloads). Returns the outputs (list), or every node's value with all_values=True.
    With check_shapes, each value's shape must equal the node's declared shape."""
    vals = []
    for i, n in enumerate(doc["nodes"]):
        assert n["id"] == i, (i, n["id"])
        if n["kind"] == "input":
            v = np.asarray(x, np.float64)
        else:
            ps = [vals[p] for p in n["parents"]]
            slots = node_slots(n, params, [_shape_of(p) for p in ps])
            v = eval_node(n, ps, slots)
            v = tuple(np.asarray(t, np.float64) for t in v) if isinstance(v, tuple) else np.asarray(v, np.float64)
        if check_shapes:
            assert _shape_of(v) == _declared(n), (i, n["kind"], _shape_of(v), _declared(n))
        vals.append(v)
    return vals if all_values else [vals[o] for o in doc["output_ids"]]
