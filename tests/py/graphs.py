"""Build small torchlean.ir.v1 graphs for tests, and evaluate them in NumPy float64.

    g = Graph()
    x = g.input([1, 4])
    h = g.linear(x, W, b)            # W: [out, in] float32 arrays
    y = g.unary("relu", h)
    g.output(y)
    graph_json, params_bin = g.save(tmp_path)              # params in params.bin (safetensors)
    graph_json, _ = g.save(tmp_path, inline=True)          # TorchLean-style inline payloads
    ref = g.reference(x_value)                             # list of float64 outputs

Every node's declared shape is computed by running the float64 reference op on zeros of the
parents' shapes, so the declared shapes are exactly what the reference produces. Legacy
spellings (conv2d, max_pool2d, ...) are written with their old fields and evaluated with the
current semantics (the node keeps a private `_sem` copy in the current spelling).

Reference semantics (TorchLean's NN/Spec/Layers/Pooling/Spatial.lean): max pooling SKIPS padded
cells (same as PyTorch's -inf padding; a window without any input cell gives 0), avg pooling adds
padded cells as zero and divides by the full window (count_include_pad); pool output extents
follow TorchLean's poolOutDim (0 when padding > kernel // 2). safe_log is TorchLean's
log(softplus(x) + eps).
"""
import itertools
import json
import os
import subprocess

import numpy as np

ELEMENTWISE_UNARY = {
    "abs": np.abs,
    "sqrt": np.sqrt,
    "inv": lambda v: 1.0 / v,
    "relu": lambda v: np.maximum(v, 0.0),
    "tanh": np.tanh,
    "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
    "exp": np.exp,
    "log": np.log,
    "sin": np.sin,
    "cos": np.cos,
    # PyTorch's softplus (beta 1, threshold 20)
    "softplus": lambda v: np.where(v > 20.0, v, np.log1p(np.exp(np.minimum(v, 20.0)))),
}
ELEMENTWISE_BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul_elem": np.multiply,
    "max_elem": np.maximum,
    "min_elem": np.minimum,
}


def pool_out_dim(n, k, s, p):
    if n == 0 or k == 0 or p > k // 2:
        return 0
    if n + 2 * p < k:
        return 0
    return (n + 2 * p - k) // s + 1


def conv_ref(x, w, b, stride, padding, padding_after, dilation, groups, channel_axis):
    """N-d convolution over the axes after channel_axis, float64."""
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
    x = np.asarray(x, np.float64)
    sr = len(kernel)
    lead = x.shape[:x.ndim - sr]
    sp = x.shape[x.ndim - sr:]
    outs = [pool_out_dim(sp[i], kernel[i], stride[i], padding[i]) for i in range(sr)]
    xs = x.reshape((-1,) + sp)
    fill = -np.inf if kind == "max" else 0.0   # max skips padded cells, avg counts them as 0
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


class Graph:
    def __init__(self):
        self.nodes = []
        self.params = {}  # params.bin name -> float32 array
        self.inline = {}  # node id -> {inline key: array}
        self.input_id = None
        self.output_ids = []

    # ------------------------------------------------------------------ basics
    def shape(self, i):
        return list(self.nodes[i]["shape"])

    def _add(self, kind, parents, shape=None, sem=None, **fields):
        i = len(self.nodes)
        node = {"id": i, "kind": kind, "parents": list(parents)}
        node.update(fields)
        node["_sem"] = dict(sem) if sem is not None else {"kind": kind, **fields}
        self.nodes.append(node)
        if shape is None:
            zeros = [np.zeros(self.shape(p)) + 0.5 for p in parents]
            shape = list(np.shape(self._eval(i, zeros)))
        node["shape"] = [int(d) for d in shape]
        return i

    def _param(self, i, name, key, value):
        v = np.array(value, dtype=np.float32, order="C")  # (ascontiguousarray would make 0-d 1-d)
        self.params[name % i] = v
        self.inline.setdefault(i, {})[key] = v
        return v

    def input(self, shape):
        self.input_id = self._add("input", [], shape)
        return self.input_id

    def output(self, *ids):
        self.output_ids.extend(ids)

    def const(self, value):
        v = np.asarray(value, np.float32)
        i = len(self.nodes)
        self._param(i, "const_%d", "values", v)
        return self._add("const", [], list(v.shape), value_shape=list(v.shape))

    def unary(self, kind, x):
        return self._add(kind, [x])

    def binary(self, kind, a, b):
        return self._add(kind, [a, b])

    def node(self, kind, parents, shape=None, **fields):
        """Any op by tag with its wire fields."""
        return self._add(kind, parents, shape, **fields)

    def linear(self, x, W, b):
        W = np.asarray(W, np.float32)
        i = len(self.nodes)
        self._param(i, "linear_%d_W", "weight", W)
        self._param(i, "linear_%d_b", "bias", b)
        return self._add("linear", [x], in_dim=int(W.shape[1]), out_dim=int(W.shape[0]))

    def conv(self, x, W, b, stride, padding, padding_after=None, dilation=None, groups=1):
        W = np.asarray(W, np.float32)
        sr = W.ndim - 2
        xs = self.shape(x)
        ca = len(xs) - sr - 1
        padding_after = padding if padding_after is None else padding_after
        dilation = [1] * sr if dilation is None else dilation
        i = len(self.nodes)
        self._param(i, "conv2d_%d_kernel", "weight", W)
        self._param(i, "conv2d_%d_bias", "bias", b)
        return self._add("conv", [x], spatial_rank=sr, kernel=list(W.shape[2:]), stride=list(stride),
                         padding=list(padding), padding_after=list(padding_after),
                         dilation=list(dilation), groups=groups, channel_axis=ca,
                         in_channels=xs[ca], out_channels=int(W.shape[0]),
                         input_spatial=xs[ca + 1:])

    def conv2d_legacy(self, x, W, b, stride, padding):
        """Old spelling: conv2d {inC, outC, kH, kW, stride, padding}."""
        W = np.asarray(W, np.float32)
        xs = self.shape(x)
        i = len(self.nodes)
        self._param(i, "conv2d_%d_kernel", "weight", W)
        self._param(i, "conv2d_%d_bias", "bias", b)
        sem = dict(kind="conv", spatial_rank=2, kernel=list(W.shape[2:]), stride=[stride] * 2,
                   padding=[padding] * 2, padding_after=[padding] * 2, dilation=[1, 1], groups=1,
                   channel_axis=len(xs) - 3)
        return self._add("conv2d", [x], sem=sem, inC=int(W.shape[1]), outC=int(W.shape[0]),
                         kH=int(W.shape[2]), kW=int(W.shape[3]), stride=stride, padding=padding)

    def pool(self, kind, x, kernel, stride, padding):
        return self._add(kind, [x], spatial_rank=len(kernel), kernel=list(kernel),
                         stride=list(stride), padding=list(padding))

    def pool2d_legacy(self, kind, x, k, stride, padding=None):
        """max_pool2d / avg_pool2d {kH, kW, stride} and the *_pad variants."""
        cur = "max_pool" if kind.startswith("max") else "avg_pool"
        p = padding or 0
        sem = dict(kind=cur, spatial_rank=2, kernel=[k, k], stride=[stride, stride], padding=[p, p])
        fields = dict(kH=k, kW=k, stride=stride)
        if padding is not None:
            fields["padding"] = padding
        return self._add(kind, [x], sem=sem, **fields)

    def batch_norm(self, x, channel_axis, gamma, beta, mean, var, eps=1e-5):
        i = len(self.nodes)
        self._param(i, "batchnorm_%d_gamma", "gamma", gamma)
        self._param(i, "batchnorm_%d_beta", "beta", beta)
        self._param(i, "batchnorm_%d_mean", "mean", mean)
        self._param(i, "batchnorm_%d_var", "var", var)
        return self._add("batch_norm_eval", [x], channel_axis=channel_axis,
                         channels=self.shape(x)[channel_axis], eps=eps)

    def layernorm(self, x, axis, gamma, beta, eps=1e-5):
        i = len(self.nodes)
        self._param(i, "layernorm_%d_gamma", "gamma", gamma)
        self._param(i, "layernorm_%d_beta", "beta", beta)
        return self._add("layernorm", [x], axis=axis, eps=eps)

    # ------------------------------------------------------------------ reference (float64)
    def _p(self, i, key):
        v = self.inline.get(i, {}).get(key)
        return None if v is None else np.asarray(v, np.float64)

    def _eval(self, i, vals):
        n = self.nodes[i]
        s = n["_sem"]
        k = s["kind"]
        if k in ELEMENTWISE_UNARY:
            return ELEMENTWISE_UNARY[k](vals[0])
        if k in ELEMENTWISE_BINARY:
            return ELEMENTWISE_BINARY[k](vals[0], vals[1])
        if k == "detach":
            return vals[0]
        if k == "const":
            return self._p(i, "values").reshape(s["value_shape"])
        if k == "safe_log":   # TorchLean: log(softplus(x) + eps)
            return np.log(ELEMENTWISE_UNARY["softplus"](vals[0]) + vals[1])
        if k == "broadcast_to":
            return np.broadcast_to(vals[0].reshape(s["from_shape"]), s["to_shape"]).copy()
        if k == "permute":
            return np.transpose(vals[0], s["perm"]).copy()
        if k == "transpose":
            return np.swapaxes(vals[0], s["axis1"], s["axis2"]).copy()
        if k == "swap_first_two":
            return np.swapaxes(vals[0], 0, 1).copy()
        if k == "transpose3d_last_two":
            return np.swapaxes(vals[0], 1, 2).copy()
        if k == "reshape":
            return vals[0].reshape(s["out_shape"])
        if k == "flatten":
            return vals[0].reshape(-1)
        if k == "concat":
            return np.concatenate(vals, axis=s["axis"])
        if k in ("reduce_sum", "reduce_mean"):
            f = np.sum if k == "reduce_sum" else np.mean
            return f(vals[0], axis=tuple(s["axes"]), keepdims=s.get("keepdim", False))
        if k == "sum":
            return np.sum(vals[0])
        if k == "mse_loss":
            return np.mean((vals[0] - vals[1]) ** 2)
        if k == "matmul":
            return np.matmul(vals[0], vals[1])
        if k == "linear":
            return vals[0] @ self._p(i, "weight").T + self._p(i, "bias")
        if k == "conv":
            return conv_ref(vals[0], self._p(i, "weight"), self._p(i, "bias"), s["stride"],
                            s["padding"], s["padding_after"], s["dilation"], s["groups"],
                            s["channel_axis"])
        if k in ("max_pool", "avg_pool"):
            return pool_ref(vals[0], k[:3], s["kernel"], s["stride"], s["padding"])
        if k == "batch_norm_eval":
            ca = s["channel_axis"]
            shp = [1] * vals[0].ndim
            shp[ca] = -1
            g, b, m, v = (self._p(i, key).reshape(shp) for key in ("gamma", "beta", "mean", "var"))
            return (vals[0] - m) / np.sqrt(v + s["eps"]) * g + b
        if k == "softmax":
            x = vals[0]
            e = np.exp(x - x.max(axis=s["axis"], keepdims=True))
            return e / e.sum(axis=s["axis"], keepdims=True)
        if k == "layernorm":
            x = vals[0]
            axes = tuple(range(s["axis"], x.ndim))
            mu = x.mean(axis=axes, keepdims=True)
            var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
            g = self._p(i, "gamma").reshape(x.shape[s["axis"]:])
            b = self._p(i, "beta").reshape(x.shape[s["axis"]:])
            return (x - mu) / np.sqrt(var + s["eps"]) * g + b
        raise NotImplementedError(k)

    def reference(self, x, all_values=False):
        """float64 outputs (list) for input x; all_values=True returns every node's value."""
        vals = []
        for i, n in enumerate(self.nodes):
            if n["kind"] == "input":
                v = np.asarray(x, np.float64)
            else:
                v = np.asarray(self._eval(i, [vals[p] for p in n["parents"]]), np.float64)
            vals.append(v)
        return vals if all_values else [vals[o] for o in self.output_ids]

    # ------------------------------------------------------------------ serialization
    def to_json(self, inline=False):
        nodes = []
        for n in self.nodes:
            d = {k: v for k, v in n.items() if not k.startswith("_")}
            if inline:
                for key, v in self.inline.get(n["id"], {}).items():
                    d[key] = v.reshape(-1).tolist() if n["kind"] == "const" else v.tolist()
            nodes.append(d)
        return {"format": "torchlean.ir.v1", "input_id": self.input_id,
                "output_ids": list(self.output_ids), "nodes": nodes}

    def save(self, d, name="graph", inline=False):
        """Write <d>/<name>.json (+ <d>/<name>.bin unless inline). Returns (json, bin or None)."""
        os.makedirs(d, exist_ok=True)
        gp = os.path.join(str(d), name + ".json")
        with open(gp, "w") as f:
            json.dump(self.to_json(inline), f)
        if inline or not self.params:
            return gp, None
        from safetensors.numpy import save_file
        bp = os.path.join(str(d), name + ".bin")
        save_file(dict(self.params), bp)
        return gp, bp


# ---------------------------------------------------------------------- running tlrun
def save_npy(path, x):
    np.save(str(path), np.ascontiguousarray(np.asarray(x, np.float32)))
    return str(path)


def run_tlrun(tlrun, graph, params, x, tmp, *extra, n_outputs=1, check=True):
    """Run tlrun on x; returns list of float32 outputs (or the CompletedProcess when check=False
    and it failed)."""
    inp = save_npy(os.path.join(str(tmp), "input.npy"), x)
    out = os.path.join(str(tmp), "out.npy")
    args = [tlrun, graph] + ([params] if params else []) + [inp, "-o", out] + [str(e) for e in extra]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        if check:
            raise AssertionError(f"tlrun failed ({r.returncode}): {r.stderr}")
        return r
    names = [out] + [os.path.join(str(tmp), f"out_{k}.npy") for k in range(1, n_outputs)]
    return [np.load(p) for p in names]


# ---- oracle for the random ops (independent Python port of TorchLean's Spec.Random) ----------
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
