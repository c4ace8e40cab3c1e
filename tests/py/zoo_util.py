"""Helpers for the capture tests: the model zoo, running the capture script, and the float64
evaluation of a captured graph (oracle.evaluate: an oracle for the graph's meaning that depends
neither on tlrt nor on the capture script)."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

import oracle

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
# zoo models whose capture uses a rounded lowering (silu, tanh-GELU, ...): captured with
# --allow-rounding (the capture refuses them by default; tests/py/test_capture*.py test that)
ROUNDED = {k: ["--allow-rounding"] for k in ("activations", "transformer", "dwconv", "two_outputs")}


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


def capture_source(out_dir, source, name, shape, *extra):
    """Write `source` (model classes) to out_dir/models.py and capture class `name` into out_dir;
    returns (model file, graph document, {node id: kind})."""
    mf = Path(out_dir) / "models.py"
    mf.write_text(source)
    r = capture(mf, name, out_dir, shape, *extra)
    assert r.returncode == 0, r.stderr
    doc = load_graph(Path(out_dir) / "graph.json")
    return mf, doc, {n["id"]: n.get("kind") for n in doc["nodes"]}


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


# ---- float64 evaluation of a captured graph: the one oracle (tests/py/oracle.py), which imports
# neither the capture script nor tlrt's emitter, so it checks the graph's meaning independently

def ir_eval(doc, params, x):
    """Evaluate a torchlean.ir.v1 document in float64 (oracle.evaluate). Returns the outputs as
    float64 torch tensors (a list)."""
    return [torch.from_numpy(np.array(v, np.float64)) for v in oracle.evaluate(doc, params, x)]  # (keeps 0-d)


def load_graph(path):
    with open(path) as f:
        return json.load(f)


def files_in(d):
    return sorted(p.name for p in Path(d).iterdir())


def env_with_build():
    return dict(os.environ)


def has_avx2():
    """Whether tlrt's conv kernels run vectorized here (AVX2+FMA, and TL_ISA does not force scalar):
    igemm is only chosen then (kernels/tl_conv.c tl_conv_igemm_better)."""
    if os.environ.get("TL_ISA", "").lower() == "scalar":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx2" in flags and "fma" in flags


def tlrun(d, x, tag, *extra, env=None):
    """Run tlrun on d/graph.json + d/params.bin with input x (saved as d/x{tag}.npy), extra
    arguments and environment additions; return its outputs (y{tag}.npy, y{tag}_1.npy, ...)."""
    from conftest import tool

    np.save(d / f"x{tag}.npy", x)
    cmd = [tool("tlrun"), str(d / "graph.json"), str(d / "params.bin"), str(d / f"x{tag}.npy")]
    r = subprocess.run(
        [*cmd, "-o", str(d / f"y{tag}.npy"), *extra], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    assert r.returncode == 0, r.stderr
    outs = [np.load(d / f"y{tag}.npy")]
    k = 1
    while (d / f"y{tag}_{k}.npy").exists():
        outs.append(np.load(d / f"y{tag}_{k}.npy"))
        k += 1
    return outs
