"""NumPy float64 oracle for graphs made of input / linear / relu nodes (the bundled example),
reading params.bin (safetensors) directly, independent of tlrt."""
import json
import struct
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GRAPH, PARAMS, INPUT = EXAMPLES / "graph.json", EXAMPLES / "params.bin", EXAMPLES / "input.npy"

_DT = {"F32": np.float32, "F64": np.float64, "F16": np.float16}


def read_safetensors(path):
    blob = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(blob[8 + n + a:8 + n + b], dtype=_DT[t["dtype"]]).reshape(t["shape"])
    return out


def mlp_reference(x, graph=GRAPH, params=PARAMS, keep_all=False):
    """Every node's value (dict id -> float64 array) or the outputs (list)."""
    doc = json.loads(Path(graph).read_text())
    p = read_safetensors(params)
    vals = {}
    for n in doc["nodes"]:
        k, i = n["kind"], n["id"]
        if k == "input":
            vals[i] = np.asarray(x, dtype=np.float64)
        elif k == "linear":
            W, b = p[f"linear_{i}_W"].astype(np.float64), p[f"linear_{i}_b"].astype(np.float64)
            vals[i] = vals[n["parents"][0]] @ W.T + b
        elif k == "relu":
            vals[i] = np.maximum(vals[n["parents"][0]], 0.0)
        else:
            raise ValueError(f"reference: node kind {k} not handled")
    return vals if keep_all else [vals[o] for o in doc["output_ids"]]
