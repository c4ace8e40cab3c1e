"""Build small torchlean.ir.v1 graphs for tests; their float64 reference is the one oracle
(tests/py/oracle.py).

    g = Graph()
    x = g.input([1, 4])
    h = g.linear(x, W, b)            # W: [out, in] float32 arrays
    y = g.unary("relu", h)
    g.output(y)
    graph_json, params_bin = g.save(tmp_path)              # params in params.bin (safetensors)
    graph_json, _ = g.save(tmp_path, inline=True)          # TorchLean-style inline payloads
    ref = g.reference(x_value)                             # list of float64 outputs (oracle.evaluate)

Every node's declared shape is computed by running the oracle on zeros of the parents' shapes, so
the declared shapes are exactly what the reference produces. Legacy spellings (conv2d,
max_pool2d, swap_first_two, reduce_sum {axis}, ...) are written with their old fields; the oracle
reads them as it reads any wire file. Parameter names come from the oracle's table
(oracle.PARAM_SLOTS, checked against `tlinfo --ops` by test_wire_table.py).
"""
import json
import os
import subprocess

import numpy as np

import oracle as O
from oracle import unit_draws  # noqa: F401  (re-exported for the tests)


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

    def _add(self, kind, parents, shape=None, **fields):
        i = len(self.nodes)
        node = {"id": i, "kind": kind, "parents": list(parents)}
        node.update(fields)
        if shape is None:
            zeros = [np.zeros(self.shape(p)) + 0.5 for p in parents]
            slots = O.node_slots(node, self.params, [self.shape(p) for p in parents])
            shape = list(np.shape(O.eval_node(node, zeros, slots)))
        node["shape"] = [int(d) for d in shape]
        self.nodes.append(node)
        return i

    def _param(self, i, kind, key, value):
        """Store slot `key` of node i (of op `kind`) under its params.bin name (oracle.PARAM_SLOTS)."""
        v = np.array(value, dtype=np.float32, order="C")  # (ascontiguousarray would make 0-d 1-d)
        fmt = dict(O.PARAM_SLOTS[O.LEGACY.get(kind, kind)])[key]
        self.params[fmt.format(i)] = v
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
        self._param(i, "const", "values", v)
        return self._add("const", [], list(v.shape), value_shape=list(v.shape))

    def unary(self, kind, x):
        return self._add(kind, [x])

    def binary(self, kind, a, b):
        return self._add(kind, [a, b])

    def node(self, kind, parents, shape=None, **fields):
        """Any op by tag (current or legacy spelling) with its wire fields."""
        return self._add(kind, parents, shape, **fields)

    def linear(self, x, W, b):
        W = np.asarray(W, np.float32)
        i = len(self.nodes)
        self._param(i, "linear", "weight", W)
        self._param(i, "linear", "bias", b)
        return self._add("linear", [x], in_dim=int(W.shape[1]), out_dim=int(W.shape[0]))

    def conv(self, x, W, b, stride, padding, padding_after=None, dilation=None, groups=1):
        W = np.asarray(W, np.float32)
        sr = W.ndim - 2
        xs = self.shape(x)
        ca = len(xs) - sr - 1
        padding_after = padding if padding_after is None else padding_after
        dilation = [1] * sr if dilation is None else dilation
        i = len(self.nodes)
        self._param(i, "conv", "weight", W)
        self._param(i, "conv", "bias", b)
        return self._add("conv", [x], spatial_rank=sr, kernel=list(W.shape[2:]), stride=list(stride),
                         padding=list(padding), padding_after=list(padding_after),
                         dilation=list(dilation), groups=groups, channel_axis=ca,
                         in_channels=xs[ca], out_channels=int(W.shape[0]),
                         input_spatial=xs[ca + 1:])

    def conv2d_legacy(self, x, W, b, stride, padding):
        """Old spelling: conv2d {inC, outC, kH, kW, stride, padding}."""
        W = np.asarray(W, np.float32)
        i = len(self.nodes)
        self._param(i, "conv2d", "weight", W)
        self._param(i, "conv2d", "bias", b)
        return self._add("conv2d", [x], inC=int(W.shape[1]), outC=int(W.shape[0]),
                         kH=int(W.shape[2]), kW=int(W.shape[3]), stride=stride, padding=padding)

    def pool(self, kind, x, kernel, stride, padding):
        return self._add(kind, [x], spatial_rank=len(kernel), kernel=list(kernel),
                         stride=list(stride), padding=list(padding))

    def pool2d_legacy(self, kind, x, k, stride, padding=None):
        """max_pool2d / avg_pool2d {kH, kW, stride} and the *_pad variants."""
        fields = dict(kH=k, kW=k, stride=stride)
        if padding is not None:
            fields["padding"] = padding
        return self._add(kind, [x], **fields)

    def batch_norm(self, x, channel_axis, gamma, beta, mean, var, eps=1e-5):
        i = len(self.nodes)
        for key, v in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)):
            self._param(i, "batch_norm_eval", key, v)
        return self._add("batch_norm_eval", [x], channel_axis=channel_axis,
                         channels=self.shape(x)[channel_axis], eps=eps)

    def layernorm(self, x, axis, gamma, beta, eps=1e-5):
        i = len(self.nodes)
        self._param(i, "layernorm", "gamma", gamma)
        self._param(i, "layernorm", "beta", beta)
        return self._add("layernorm", [x], axis=axis, eps=eps)

    def mha(self, x, Wq, Wk, Wv, Wo, bq, bk, bv, bo, num_heads=1):
        """nn.MultiheadAttention(E, num_heads, batch_first=True)(x, x, x) as TorchLean's value graph:
        a tuple node (payloads inline in its fields: the op table has no params.bin names for them)
        and tuple_getitem(0). Returns the getitem's id."""
        xs = self.shape(x)
        E = int(np.shape(Wq)[0])
        D = E // num_heads
        f = {key: np.asarray(v, np.float32).astype(np.float64).tolist() for key, v in zip(
            O.MHA_KEYS, (Wq, Wk, Wv, Wo, bq, bk, bv, bo), strict=True)}
        i = len(self.nodes)
        node = {"id": i, "kind": "multihead_attention", "parents": [x, x, x], "value_kind": "tuple",
                "tuple_shapes": [xs, xs[:-2] + [xs[-2], xs[-2]]], "embed_dim": E,
                "num_heads": num_heads, "batch_first": True, "dropout_zero": True,
                "scale": 1.0 / float(np.sqrt(D)), **f}
        self.nodes.append(node)
        return self._add("tuple_getitem", [i], shape=xs, index=0)

    # ------------------------------------------------------------------ reference (float64)
    def _p(self, i, key):
        v = self.inline.get(i, {}).get(key)
        return None if v is None else np.asarray(v, np.float64)

    def reference(self, x, all_values=False):
        """float64 outputs (list) for input x; all_values=True returns every node's value."""
        return O.evaluate(self.to_json(), self.params, x, all_values=all_values)

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
