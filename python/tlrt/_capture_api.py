"""tlrt.capture: an in-memory nn.Module -> tlrt.Graph, through the capture script's
export_torchlean_graph (scripts/export_torchlean_graph.py, installed as tlrt._capture).
Imports torch only when called."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from ._errors import BadInputError, UnsupportedError
from ._graph import Graph


def _capture_module():
    """tlrt._capture (the wheel's copy of the capture script); in a source tree, the script
    itself ($TLRT_CAPTURE_SCRIPT, else scripts/export_torchlean_graph.py)."""
    try:
        importlib.import_module("torch")
    except ImportError:
        raise UnsupportedError("tlrt.capture needs PyTorch: pip install 'tlrt[capture]' "
                               "(or torch==2.13.0)") from None
    if "tlrt._capture" in sys.modules:
        return sys.modules["tlrt._capture"]
    here = Path(__file__).resolve().parent
    cands = [here / "_capture.py"]
    if os.environ.get("TLRT_CAPTURE_SCRIPT"):
        cands.insert(0, Path(os.environ["TLRT_CAPTURE_SCRIPT"]))
    cands.append(here.parents[1] / "scripts" / "export_torchlean_graph.py")
    for c in cands:
        if c.is_file():
            spec = importlib.util.spec_from_file_location("tlrt._capture", c)
            mod = importlib.util.module_from_spec(spec)
            sys.modules["tlrt._capture"] = mod
            try:
                spec.loader.exec_module(mod)
            except BaseException:
                del sys.modules["tlrt._capture"]
                raise
            return mod
    raise UnsupportedError("the capture script is missing (looked in: " + ", ".join(map(str, cands)) + ")")


def capture(module, example_inputs, *, prefer_export: bool = True, inline_params: bool = False,
            allow_rounding: bool = False, debug_targets: bool = False) -> Graph:
    """Capture `module` (a torch.nn.Module, put in eval mode) on `example_inputs` (a tensor or
    a 1-tuple) into a tlrt.Graph. prefer_export: torch.export first (else FX tracing first);
    inline_params: payloads inline in the JSON (TorchLean's form, no params.bin);
    allow_rounding: accept lowerings that round differently from PyTorch (only if this
    capture script supports it). Unsupported operations raise tlrt.UnsupportedError listing
    every one (`.problems`); other capture failures raise tlrt.BadInputError."""
    cap = _capture_module()
    fn = cap.export_torchlean_graph
    log = []
    kw = dict(inline_params=bool(inline_params), prefer_torch_export=bool(prefer_export),
              debug_targets=bool(debug_targets), log=log.append)
    if "allow_rounding" in inspect.signature(fn).parameters:
        kw["allow_rounding"] = bool(allow_rounding)
    elif allow_rounding:
        raise UnsupportedError("capture: allow_rounding=True is not supported by this tlrt's capture "
                               "script (export_torchlean_graph has no allow_rounding parameter)")
    with tempfile.TemporaryDirectory(prefix="tlrt.capture.") as d:
        gp, pp = os.path.join(d, "graph.json"), os.path.join(d, "params.bin")
        ex = os.path.join(d, "example")
        try:
            info = fn(module, example_inputs, gp, None if inline_params else pp, save_example=ex, **kw)
        except cap.CaptureError as e:
            cls = UnsupportedError if hasattr(e, "problems") else BadInputError
            err = cls(str(e))
            err.problems = list(getattr(e, "problems", []))
            raise err from None
        outs, i = [], 0
        while os.path.exists(os.path.join(ex, f"output_{i}.npy")):
            outs.append(np.load(os.path.join(ex, f"output_{i}.npy")))
            i += 1
        return Graph(Path(gp).read_text(), None if inline_params else Path(pp).read_bytes(),
                     np.load(os.path.join(ex, "input.npy")), outs,
                     method=str(info.get("method", "")) if isinstance(info, dict) else "", log=log)
