"""Helpers for the capture tests: the model zoo, running the capture script, and a float64
PyTorch evaluator of torchlean.ir.v1 graphs (an oracle for the graph's meaning that does not
depend on tlrt)."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "export_torchlean_graph.py"
ZOO_DIR = ROOT / "tests" / "zoo"
PYTHON = sys.executable

# name: (file, class/factory, example shape)
ZOO = {
    "mlp": ("mlp.py", "MLP", [3, 8]),
    "lenet": ("lenet.py", "LeNet", [2, 1, 12, 12]),
    "resblock": ("resblock.py", "ResNetTiny", [2, 3, 16, 16]),
    "dwconv": ("dwconv.py", "DWBlock", [2, 6, 8, 8]),
    "transformer": ("transformer.py", "EncoderLayer", [2, 5, 16]),
    "two_outputs": ("two_outputs.py", "TwoHeads", [4, 6]),
    "misc_ops": ("misc_ops.py", "MiscOps", [2, 5]),
    "activations": ("activations.py", "make_activations", [2, 2, 3, 6, 6]),
}


def shape_arg(shape):
    return ",".join(str(d) for d in shape)


def capture(model_file, name, out_dir, shape, *extra, script=SCRIPT):
    """Run the capture script; returns CompletedProcess (text)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [PYTHON, str(script), str(model_file), name, str(out_dir / "graph.json"),
           "--example-shape", shape_arg(shape), *map(str, extra)]
    return subprocess.run(cmd, capture_output=True, text=True)


def load_model(model_file, name, seed=0):
    spec = importlib.util.spec_from_file_location(f"zoo_{Path(model_file).stem}", model_file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(seed)
    return getattr(mod, name)().eval()


def eager_outputs(model_file, name, x, seed=0):
    """PyTorch eager outputs (list of tensors) for input x, the model built as the script does."""
    model = load_model(model_file, name, seed)
    with torch.no_grad():
        out = model(torch.as_tensor(x))
    if isinstance(out, torch.Tensor):
        return [out]
    return list(out)


def read_safetensors(path):
    from safetensors.numpy import load_file
    return load_file(str(path))


# ---- float64 evaluator of the IR (our reading of the TorchLean semantics) -------------------

_PARAMS = {
    "linear": (("weight", "linear_{}_W"), ("bias", "linear_{}_b")),
    "conv": (("weight", "conv2d_{}_kernel"), ("bias", "conv2d_{}_bias")),
    "const": (("values", "const_{}"),),
    "batch_norm_eval": (("gamma", "batchnorm_{}_gamma"), ("beta", "batchnorm_{}_beta"),
                        ("mean", "batchnorm_{}_mean"), ("var", "batchnorm_{}_var")),
    "layernorm": (("gamma", "layernorm_{}_gamma"), ("beta", "layernorm_{}_beta")),
}


def _param_shape(n, key):
    k = n["kind"]
    if k == "linear":
        return [n["out_dim"], n["in_dim"]] if key == "weight" else [n["out_dim"]]
    if k == "conv":
        if key == "bias":
            return [n["out_channels"]]
        return [n["out_channels"], n["in_channels"] // n.get("groups", 1)] + n["kernel"]
    if k == "const":
        return n.get("value_shape", n["shape"])
    if k == "batch_norm_eval":
        return [n["channels"]]
    if k == "layernorm":
        return n["shape"][n["axis"]:]
    raise KeyError(k)


def node_params(doc, params):
    """{node id: {slot: float64 tensor}} from params.bin tensors or inline payloads."""
    out = {}
    for n in doc["nodes"]:
        slots = {}
        for key, fmt in _PARAMS.get(n["kind"], ()):
            name = fmt.format(n["id"])
            shape = _param_shape(n, key)
            if params is not None and name in params:
                arr = np.asarray(params[name], dtype=np.float64)
            else:
                arr = np.asarray(n[key], dtype=np.float64)
            assert list(arr.reshape(shape).shape) == list(shape), (name, arr.shape, shape)
            slots[key] = torch.from_numpy(arr.reshape(shape).copy())
        out[n["id"]] = slots
    return out


def _pool_pad(x, n, value):
    r = n["spatial_rank"]
    pads = []
    for p in reversed(n["padding"][:r]):
        pads += [p, p]
    return F.pad(x, pads, value=value) if any(n["padding"]) else x


def _window(x, n, kind):
    r = n["spatial_rank"]
    lead = list(x.shape[: x.dim() - r])
    y = x.reshape([-1, 1] + list(x.shape[x.dim() - r:]))
    fn = {("max", 1): F.max_pool1d, ("max", 2): F.max_pool2d, ("max", 3): F.max_pool3d,
          ("avg", 1): F.avg_pool1d, ("avg", 2): F.avg_pool2d, ("avg", 3): F.avg_pool3d}[(kind, r)]
    y = fn(_pool_pad(y, n, 0.0), n["kernel"], n["stride"])
    return y.reshape(lead + list(y.shape[2:]))


def ir_eval(doc, params, x):
    """Evaluate a torchlean.ir.v1 document in float64 with PyTorch ops. Returns outputs list."""
    P = node_params(doc, params)
    vals = {}
    for n in doc["nodes"]:
        k, ps = n["kind"], [vals[p] for p in n["parents"]]
        i = n["id"]
        if k == "input":
            v = torch.as_tensor(np.asarray(x, dtype=np.float64))
        elif k == "const":
            v = P[i]["values"]
        elif k in ("detach",):
            v = ps[0]
        elif k == "add":
            v = ps[0] + ps[1]
        elif k == "sub":
            v = ps[0] - ps[1]
        elif k == "mul_elem":
            v = ps[0] * ps[1]
        elif k == "max_elem":
            v = torch.maximum(ps[0], ps[1])
        elif k == "min_elem":
            v = torch.minimum(ps[0], ps[1])
        elif k in ("abs", "sqrt", "relu", "tanh", "sigmoid", "exp", "log", "sin", "cos"):
            v = getattr(torch, k)(ps[0])
        elif k == "inv":
            v = 1.0 / ps[0]
        elif k == "softplus":
            v = F.softplus(ps[0])
        elif k == "broadcast_to":
            assert list(ps[0].shape) == n["from_shape"]
            v = ps[0].expand(n["to_shape"])
        elif k == "permute":
            v = ps[0].permute(n["perm"])
        elif k == "transpose":
            v = ps[0].transpose(n["axis1"], n["axis2"])
        elif k == "reshape":
            assert list(ps[0].shape) == n["in_shape"]
            v = ps[0].reshape(n["out_shape"])
        elif k == "flatten":
            v = ps[0].reshape(-1)
        elif k == "concat":
            v = torch.cat(ps, dim=n["axis"])
        elif k == "reduce_sum":
            v = ps[0].sum(dim=n["axes"], keepdim=n.get("keepdim", False))
        elif k == "reduce_mean":
            v = ps[0].mean(dim=n["axes"], keepdim=n.get("keepdim", False))
        elif k == "sum":
            v = ps[0].sum()
        elif k == "matmul":
            v = torch.matmul(ps[0], ps[1])
        elif k == "linear":
            v = F.linear(ps[0], P[i]["weight"], P[i]["bias"])
        elif k == "conv":
            r, ca = n["spatial_rank"], n["channel_axis"]
            assert ca == ps[0].dim() - r - 1
            xin = ps[0] if ca == 1 else ps[0].unsqueeze(0)
            pads = []
            for pb, pa in zip(reversed(n["padding"]), reversed(n.get("padding_after", n["padding"]))):
                pads += [pb, pa]
            xin = F.pad(xin, pads)
            conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[r]
            v = conv(xin, P[i]["weight"], P[i]["bias"], stride=n["stride"],
                     dilation=n.get("dilation", [1] * r), groups=n.get("groups", 1))
            if ca == 0:
                v = v.squeeze(0)
        elif k == "max_pool":
            v = _window(ps[0], n, "max")      # zero padding: TorchLean's max-pool semantics
        elif k == "avg_pool":
            v = _window(ps[0], n, "avg")      # zero padding counted (count_include_pad=True)
        elif k == "batch_norm_eval":
            shp = [1] * ps[0].dim()
            shp[n["channel_axis"]] = n["channels"]
            p = {key: t.reshape(shp) for key, t in P[i].items()}
            v = (ps[0] - p["mean"]) / torch.sqrt(p["var"] + n["eps"]) * p["gamma"] + p["beta"]
        elif k == "softmax":
            v = torch.softmax(ps[0], dim=n["axis"])
        elif k == "layernorm":
            dims = list(range(n["axis"], ps[0].dim()))
            mu = ps[0].mean(dim=dims, keepdim=True)
            var = ((ps[0] - mu) ** 2).mean(dim=dims, keepdim=True)
            v = (ps[0] - mu) / torch.sqrt(var + n["eps"]) * P[i]["gamma"] + P[i]["beta"]
        elif k == "mse_loss":
            v = ((ps[0] - ps[1]) ** 2).mean()
        else:
            raise NotImplementedError(k)
        assert list(v.shape) == n["shape"], (i, k, list(v.shape), n["shape"])
        vals[i] = v
    return [vals[o] for o in doc["output_ids"]]


def load_graph(path):
    with open(path) as f:
        return json.load(f)


def files_in(d):
    return sorted(p.name for p in Path(d).iterdir())


def env_with_build():
    return dict(os.environ)
