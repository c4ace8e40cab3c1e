"""tlrt.emit_pytorch (the C emitter through a memstream) and tlrt.diff (the bundled tldiff tool,
--json)."""
from __future__ import annotations

import ctypes
import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from . import _lib
from ._errors import BadInputError, error_for_exit
from ._graph import Graph, PathLike, as_files


def emit_pytorch(graph, params: Optional[PathLike] = None, *, class_name: Optional[str] = None,
                 dtype: Optional[str] = None, weights: str = "external", params_path: Optional[str] = None,
                 training_skeleton: bool = False, learnable_consts: bool = False,
                 compress_broadcast: bool = False) -> str:
    """The graph as a standalone PyTorch nn.Module (source text), like `tlemit pytorch`.
    weights="external" loads params.bin at `params_path` (default: the absolute path of
    `params` for a graph on disk, "params.bin" next to the module for a tlrt.Graph);
    weights="inline" writes the parameters as literals."""
    if weights not in ("external", "inline"):
        raise BadInputError(f'weights: expected "external" or "inline", got {weights!r}')
    L = _lib.lib()
    with as_files(graph, params) as (gp, pp, _):
        o = _lib.TlEmitOpts()
        L.tl_emit_opts_default(ctypes.byref(o))
        keep = []   # the bytes objects must outlive the call

        def s(v):
            b = v.encode()
            keep.append(b)
            return b
        if class_name is not None:
            if not class_name.isidentifier():
                raise BadInputError(f"class_name: {class_name!r} is not a Python identifier")
            o.class_name = s(class_name)
        if dtype is not None:
            o.dtype = s(dtype)
        o.training_skeleton, o.learnable_consts = bool(training_skeleton), bool(learnable_consts)
        o.compress_broadcast = bool(compress_broadcast)
        o.weights = 1 if weights == "inline" else 0
        if params_path is not None:
            o.params_path = s(os.fspath(params_path))
        elif pp is not None and not isinstance(graph, Graph):
            o.params_path = s(os.path.abspath(pp))
        err, rc = _lib.TlErr(), [0]
        with _lib.c_graph(gp, pp) as g:
            def write(f):
                rc[0] = L.tl_emit_pytorch(g, ctypes.byref(o), f, ctypes.byref(err))
                return rc[0]
            text = _lib.write_to_string(write)
        _lib.check(rc[0], err)
    return text


def _num(v) -> float:
    if isinstance(v, str):
        return {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}.get(v, math.nan)
    return float(v)


@dataclass(frozen=True)
class DiffStats:
    """One comparison (tldiff's JSON "stats"): elements, max abs/rel/ULP error (inf where not
    comparable), mismatching elements, the worst element's index, and whether it passed."""
    numel: int
    max_abs: float
    max_rel: float
    max_ulp: float
    mismatches: int
    worst_index: Optional[List[int]]
    passed: bool

    @classmethod
    def from_json(cls, o: Dict[str, Any]) -> "DiffStats":
        return cls(int(o["numel"]), _num(o["max_abs"]), _num(o["max_rel"]), _num(o["max_ulp"]),
                   int(o["mismatches"]), o.get("worst_index"), bool(o["pass"]))


@dataclass(frozen=True)
class Float64Error:
    """One float32 implementation's error against the float64 reference (tldiff's "vs_float64"
    columns): max |a - r|, max |a - r| / max(|r|, FLT_MIN), max |a - r| in float32 ULPs of r,
    ||a - r||_2 / ||r||_2, and max |r| (the scale the f64 rule's floor is measured in)."""
    numel: int
    max_abs: float
    max_rel: float
    max_ulp: float
    norm: float
    ref_max: float

    @classmethod
    def from_json(cls, o: Dict[str, Any]) -> "Float64Error":
        return cls(int(o["numel"]), _num(o["max_abs"]), _num(o["max_rel"]), _num(o["max_ulp"]),
                   _num(o["norm"]), _num(o["ref_max"]))


@dataclass(frozen=True)
class VsFloat64:
    """Error vs float64 for one tensor: reference ("emitted_f64" or "original_f64"), columns
    ({"tlrt_f32", "pytorch_f32", and "original_f32" for a float32 capture's outputs}: Float64Error),
    bound (k * pytorch_f32.max_abs + floor) and passed (the f64 rule: tlrt_f32.max_abs <= bound)."""
    reference: str
    columns: Dict[str, Float64Error]
    bound: float
    passed: bool

    @classmethod
    def from_json(cls, o: Dict[str, Any]) -> "VsFloat64":
        cols = {k: Float64Error.from_json(v) for k, v in o.items() if isinstance(v, dict)}
        return cls(o["reference"], cols, _num(o["bound"]), bool(o["pass"]))


@dataclass(frozen=True)
class Float64Agreement:
    """tlrt float64 (a TL_SESSION_FLOAT64 session) against the float64 sides (tldiff's
    "float64_agreement", report only): available (False when tlrt could not plan or run the graph
    in float64; reason says why); columns {"tlrt_f64_vs_pytorch_f64", and "tlrt_f64_vs_original_f64"
    for a float64 capture's outputs}: Float64Error with max_rel guarded by DBL_MIN and max_ulp in
    float64 ULPs of the reference."""
    available: bool
    reason: Optional[str]
    columns: Dict[str, Float64Error]

    @classmethod
    def from_json(cls, o: Dict[str, Any]) -> "Float64Agreement":
        cols = {k: Float64Error.from_json(v) for k, v in o.items() if k.startswith("tlrt_f64_vs_")}
        return cls(bool(o["available"]), o.get("reason"), cols)


@dataclass(frozen=True)
class OutputDiff:
    """Summary over all inputs for one graph output: its index, node id, one DiffStats per
    pair compared ("tlrt_vs_emitted", "tlrt_vs_original", "emitted_vs_original"), and the
    error vs float64 (vs_float64), and tlrt float64's agreement (float64_agreement)."""
    index: int
    node: int
    pairs: Dict[str, DiffStats]
    vs_float64: Optional[VsFloat64] = None
    float64_agreement: Optional[Float64Agreement] = None


@dataclass
class DiffReport:
    """tldiff's report. verdict "pass" or "fail"; passed; outputs (the summary per output);
    first_diverging_node (with per_node: {"id", "tag", "input", "shape", "stats"} or None);
    inputs / config: tldiff's JSON as it is; text: tldiff's printed report."""
    verdict: str
    passed: bool
    outputs: List[OutputDiff]
    first_diverging_node: Optional[Dict[str, Any]]
    n_inputs: int
    inputs: List[Dict[str, Any]]
    config: Dict[str, Any]
    text: str = ""
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, doc: Dict[str, Any], text: str = "") -> "DiffReport":
        outs = [OutputDiff(int(o["index"]), int(o["node"]),
                           {k: DiffStats.from_json(v) for k, v in o.items()
                            if isinstance(v, dict) and k not in ("vs_float64", "float64_agreement")},
                           VsFloat64.from_json(o["vs_float64"]) if "vs_float64" in o else None,
                           Float64Agreement.from_json(o["float64_agreement"]) if "float64_agreement" in o else None)
                for o in doc.get("summary", [])]
        return cls(doc["verdict"], doc["verdict"] == "pass", outs, doc.get("first_diverging_node"),
                   int(doc.get("n_inputs", 0)), doc.get("inputs", []), doc.get("config", {}), text, doc)

    def __bool__(self) -> bool:
        return self.passed


def tool_path(name: str) -> Path:
    """Path of a bundled tool: tlrun, tlinfo, tlemit, tldiff."""
    if name not in ("tlrun", "tlinfo", "tlemit", "tldiff"):
        raise BadInputError(f"no tool named {name!r}")
    return _lib.find_file(name)


def paths() -> Dict[str, Path]:
    """Where the package keeps its C side: "lib" (libtlrt.so, libtlrt.a), "include" (for
    <tlrt/tlrt.h>), "bin" (the tools), "cmake_prefix" (for CMAKE_PREFIX_PATH: find_package(tlrt)),
    "pkgconfig" (for PKG_CONFIG_PATH: tlrt.pc)."""
    lib = _lib.find_file("libtlrt.so").parent
    root = lib.parent
    return {"lib": lib, "include": root / "include", "bin": tool_path("tlrun").parent,
            "cmake_prefix": root, "pkgconfig": lib / "pkgconfig"}


def diff(graph, x=None, params: Optional[PathLike] = None, *, reference: Optional[PathLike] = None,
         random: Optional[int] = None, seed: Optional[int] = None, atol: Optional[float] = None,
         rtol: Optional[float] = None, ulp: Optional[int] = None, per_node: bool = False,
         mode: Optional[str] = None, python: Optional[str] = None,
         timeout: Optional[float] = None, rule: Optional[str] = None, f64_k: Optional[float] = None,
         f64_floor: Optional[float] = None, batch: Optional[int] = None) -> DiffReport:
    """tlrt vs the emitted PyTorch module (vs the original model's outputs when known), via
    `tldiff --json`. x: an input array or .npy path; None: a tlrt.Graph's example input (and its
    original outputs as the reference), else `random` (default 1) seeded inputs. python: the
    interpreter that runs the emitted module (default: this one; it needs torch and
    safetensors). rule: "f64" (tldiff's default: tlrt's error vs float64 within f64_k times
    PyTorch float32's plus f64_floor float32 ULPs of the tensor's scale), "atol" or "both";
    batch: the batch of the random inputs. Every output (and node) carries vs_float64: each
    float32 implementation's error against the float64 reference, and float64_agreement: tlrt
    float64's agreement with PyTorch float64 (report only, not in the verdict). Bad input raises
    tlrt.BadInputError with tldiff's message; a mismatch is a report with passed False."""
    if batch is not None and x is not None:
        raise BadInputError("batch: goes with random inputs (x has its own batch)")
    exe = str(tool_path("tldiff"))
    with tempfile.TemporaryDirectory(prefix="tlrt.diff.") as d, \
            as_files(graph, params, example=x is None and random is None and reference is None) as (gp, pp, exd):
        args = [exe, gp] + ([pp] if pp else [])
        if x is not None:
            if isinstance(x, (str, os.PathLike)):
                args.append(os.fspath(x))
            else:
                a = np.asarray(x)
                if a.dtype.kind not in "fiub":
                    raise BadInputError(f"input: dtype {a.dtype} is not supported (give real numbers)")
                xp = os.path.join(d, "input.npy")
                np.save(xp, np.ascontiguousarray(a, dtype=np.float64 if a.dtype == np.float64 else np.float32))
                args.append(xp)
        elif exd is not None:
            args.append(os.path.join(exd, "input.npy"))
        else:
            args += ["--random", str(int(random if random is not None else 1))]
            if seed is not None:
                args += ["--seed", str(int(seed))]
            if batch is not None:
                args += ["--batch", str(int(batch))]
        if reference is not None:
            args += ["--reference", os.fspath(reference)]
        if rule is not None:
            args += ["--rule", str(rule)]
        for flag, v in (("--atol", atol), ("--rtol", rtol), ("--ulp", ulp), ("--f64-k", f64_k),
                        ("--f64-floor", f64_floor)):
            if v is not None:
                args += [flag, repr(v) if isinstance(v, float) else str(v)]
        if per_node:
            args.append("--per-node")
            if mode is not None:
                args += ["--mode", mode]
        jp = os.path.join(d, "report.json")
        args += ["--json", jp, "--python", python or sys.executable]
        env = dict(os.environ, TMPDIR=d)
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
        if p.returncode not in (0, 1) or not os.path.exists(jp):
            lines = [ln for ln in (p.stderr or p.stdout or "").splitlines() if ln.strip()]
            msg = lines[-1] if lines else f"tldiff exited with status {p.returncode}"
            raise error_for_exit(p.returncode, msg)
        with open(jp) as f:
            doc = json.load(f)
    return DiffReport.from_json(doc, p.stdout)
