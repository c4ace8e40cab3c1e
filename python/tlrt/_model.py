"""tlrt.Model: a loaded graph, planned once per input shape, run on NumPy arrays."""
from __future__ import annotations

import ctypes
import json
import os
import threading
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _lib
from ._errors import BadInputError, Error
from ._graph import Graph, PathLike, _input_shape, as_files

_F32P = ctypes.POINTER(ctypes.c_float)
_F64P = ctypes.POINTER(ctypes.c_double)


@dataclass(frozen=True)
class NodeProfile:
    """One node of a profiled run: id, tag, what the plan does for it ("run", "input",
    "folded", "alias", "view"), its shape in that session and its time in nanoseconds."""
    id: int
    tag: Optional[str]
    plan: Optional[str]
    shape: Tuple[int, ...]
    ns: int


def _copy_out(p, shape: "_lib.TlShape", dtype=np.float32) -> np.ndarray:
    dims = shape.dims()
    n = int(np.prod(dims, dtype=np.int64)) if dims else 1
    if n == 0 or not p:
        return np.zeros(dims, dtype=dtype)
    return np.ctypeslib.as_array(p, shape=(n,)).reshape(dims).copy()



class _Session:
    """One tl_session (one input shape, one set of flags) and the lock that keeps it to one
    thread at a time."""

    def __init__(self, model: "Model", shape: Tuple[int, ...], flags: int):
        self.L = _lib.lib()
        self.shape, self.flags = shape, flags
        self.h = ctypes.c_void_p()
        self.lock = threading.Lock()
        self.err = _lib.TlErr()
        s = _lib.TlShape.of(shape)
        _lib.check(self.L.tl_session_new(model._h, ctypes.byref(s), flags, ctypes.byref(self.h),
                                         ctypes.byref(self.err)), self.err)
        self.n_outputs = int(self.L.tl_session_n_outputs(self.h))
        self.threads = 0  # the thread count it was planned for (Model._session)

    def run(self, x: np.ndarray) -> List[np.ndarray]:
        # x: C-contiguous, aligned float32 of self.shape, passed as it is (no copy); the GIL is
        # released during the call (ctypes.CDLL).
        # (a float64 session: C-contiguous, aligned float64, and float64 outputs)
        if self.flags & _lib.FLOAT64:
            _lib.check(self.L.tl_session_run_f64(self.h, x.ctypes.data_as(_F64P), ctypes.byref(self.err)), self.err)
        else:
            _lib.check(self.L.tl_session_run(self.h, x.ctypes.data_as(_F32P), ctypes.byref(self.err)), self.err)
        outs = []
        for i in range(self.n_outputs):
            sh = _lib.TlShape()
            if self.flags & _lib.FLOAT64:
                outs.append(_copy_out(self.L.tl_session_output_f64(self.h, i, ctypes.byref(sh)), sh, np.float64))
            else:
                outs.append(_copy_out(self.L.tl_session_output(self.h, i, ctypes.byref(sh)), sh))
        return outs

    def free(self) -> None:
        if self.h:
            self.L.tl_session_free(self.h)
            self.h = ctypes.c_void_p()


class Model:
    """A torchlean.ir.v1 graph loaded into tlrt.

    Model(graph, params=None, *, threads=None, keep_all=False, profile=False, dtype="float32")

    graph: path to graph.json, or a tlrt.Graph (from tlrt.capture). params: path to params.bin
    (None: the graph carries its payloads inline, TorchLean's form). threads: set tlrt's and
    OpenBLAS's thread count (process-wide, tl_set_threads). keep_all: every node's value stays
    readable after run (node_value); profile: every run records per-node times (profile()).
    dtype: "float32" (default) or "float64": every op computed in double (TL_SESSION_FLOAT64, the
    reference run of TorchLean's Float evaluator, docs/float64.md); inputs are converted to
    float64 (exactly, from float32) and run / node_value return float64 arrays.

    run(x) plans a session the first time it sees an input shape (any batch the graph admits)
    and reuses it afterwards; sessions live until close() / clear_sessions(). One Model may be
    used from several threads (each session runs on one thread at a time)."""

    def __init__(self, graph, params: Optional[PathLike] = None, *, threads: Optional[int] = None,
                 keep_all: bool = False, profile: bool = False, dtype="float32"):
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            self.dtype = None
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise BadInputError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
        self._L = _lib.lib()
        self._h = ctypes.c_void_p()
        self._sessions: Dict[Tuple[Tuple[int, ...], int], _Session] = {}
        self._slock = threading.Lock()
        self._last: Optional[_Session] = None
        self._flags = (_lib.KEEP_ALL if keep_all else 0) | (_lib.PROFILE if profile else 0) | (
            _lib.FLOAT64 if self.dtype == np.float64 else 0)
        if threads is not None:
            set_threads(threads)
        err = _lib.TlErr()
        with as_files(graph, params) as (gp, pp, _):
            _lib.check(self._L.tl_model_open(gp.encode(), pp.encode() if pp else None,
                                             ctypes.byref(self._h), ctypes.byref(err)), err)
            self.graph_path = os.fspath(graph) if not isinstance(graph, Graph) else None
            if isinstance(graph, Graph):
                doc = graph.document
            else:
                try:
                    with open(gp, "rb") as f:
                        doc = json.load(f)
                except (OSError, ValueError):
                    doc = {}
        g = self._L.tl_model_graph(self._h).contents
        self.n_nodes: int = int(g.n_nodes)
        self.input_id: int = int(g.input_id)
        self.output_ids: Tuple[int, ...] = tuple(int(g.output_ids[i]) for i in range(g.n_outputs))
        self.input_shape: Optional[Tuple[int, ...]] = _input_shape(doc)
        self._tags: Dict[int, str] = {}
        for n in doc.get("nodes", []) if isinstance(doc, dict) else []:
            if isinstance(n, dict) and isinstance(n.get("id"), int):
                t = n.get("kind", n.get("tag"))
                if isinstance(t, str):
                    self._tags[n["id"]] = t

    # ------------------------------------------------------------------ running
    def _input(self, x) -> np.ndarray:
        if isinstance(x, (str, os.PathLike)):
            return load_npy(x)
        try:
            a = np.asarray(x)
        except Exception as e:  # noqa: BLE001 - anything that is not array-like is bad input
            raise BadInputError(f"input: cannot be read as an array ({type(e).__name__}: {e})") from None
        if a.dtype.kind not in "fiub":
            raise BadInputError(f"input: dtype {a.dtype} is not supported (give real numbers; tlrt runs float32 or float64)")
        if a.ndim > _lib.TL_MAX_RANK:
            raise BadInputError(f"input: rank {a.ndim} exceeds tlrt's maximum rank {_lib.TL_MAX_RANK}")
        if self.input_shape is not None and a.ndim != len(self.input_shape):
            raise BadInputError(f"input: shape {list(a.shape)} does not match the graph input "
                                f"node[{self.input_id}] {list(self.input_shape)} (rank {a.ndim} vs "
                                f"{len(self.input_shape)})")
        if a.dtype != self.dtype or not a.flags.c_contiguous or not a.flags.aligned:
            a = np.ascontiguousarray(a, dtype=self.dtype)
        return a

    def _session(self, shape: Tuple[int, ...], flags: int) -> _Session:
        self._check_open()
        key = (tuple(int(d) for d in shape), flags)
        # a session is planned for the thread count of its creation (docs/threads.md): a
        # set_threads since then plans a new one
        threads = get_threads()
        with self._slock:
            s = self._sessions.get(key)
            if s is not None and s.threads != threads:
                with s.lock:  # not while another thread runs it
                    s.free()
                s = None
            if s is None:
                s = _Session(self, key[0], flags)
                s.threads = threads
                self._sessions[key] = s
        return s

    def _run(self, x, flags: int) -> Tuple[_Session, List[np.ndarray]]:
        a = self._input(x)
        s = self._session(a.shape, flags)
        with s.lock:
            outs = s.run(a)
        self._last = s
        return s, outs

    def run(self, x) -> List[np.ndarray]:
        """Run on x (a NumPy array or anything np.asarray takes, or a path to a .npy file) and
        return the outputs as arrays of the model's dtype (copies: float32, or float64 for
        dtype="float64"). x is used without a copy when it is a C-contiguous array of that dtype;
        other real dtypes are converted."""
        return self._run(x, self._flags)[1]

    __call__ = run

    def node_value(self, node_id: int) -> np.ndarray:
        """Value of node `node_id` in the last run (a copy). Needs keep_all=True unless the
        node is an output."""
        s = self._last
        if s is None:
            raise Error("node_value: run the model first")
        err, sh = _lib.TlErr(), _lib.TlShape()
        f64 = bool(s.flags & _lib.FLOAT64)
        get = self._L.tl_session_node_value_f64 if f64 else self._L.tl_session_node_value
        with s.lock:
            p = get(s.h, int(node_id), ctypes.byref(sh), ctypes.byref(err))
            if not p and err.msg:
                raise err.exception()
            return _copy_out(p, sh, np.float64 if f64 else np.float32)

    def profile(self, x=None) -> List[NodeProfile]:
        """Per-node times. With x: run x on a profiling session first; without: the last run,
        which must have been profiled (Model(..., profile=True))."""
        if x is not None:
            s, _ = self._run(x, self._flags | _lib.PROFILE)
        else:
            s = self._last
            if s is None or not s.flags & _lib.PROFILE:
                raise Error("profile(): the last run was not profiled: pass an input, profile(x), "
                            "or load with profile=True")
        out = []
        with s.lock:
            for i in range(self.n_nodes):
                plan = self._L.tl_session_node_plan(s.h, i)
                shp = self._L.tl_session_node_shape(s.h, i)
                out.append(NodeProfile(i, self._tags.get(i), plan.decode() if plan else None,
                                       shp.contents.dims() if shp else (),
                                       int(self._L.tl_session_node_ns(s.h, i))))
        return out

    def plan(self, shape: Optional[Sequence[int]] = None) -> str:
        """The memory plan for an input shape (default: the captured one) as text: a header
        line, then one line per node (tl_session_write_plan, `tlinfo --plan`)."""
        if shape is None:
            if self.input_shape is None:
                raise BadInputError("plan: give the input shape (the graph's could not be read)")
            shape = self.input_shape
        s = self._session(tuple(shape), self._flags)
        err = _lib.TlErr()
        rc = [0]

        def write(f):
            rc[0] = self._L.tl_session_write_plan(s.h, f, ctypes.byref(err))
            return rc[0]
        with s.lock:
            text = _lib.write_to_string(write)
        _lib.check(rc[0], err)
        return text

    def arena_bytes(self, shape: Optional[Sequence[int]] = None) -> int:
        """Bytes of the activation arena planned for an input shape (default: the captured one)."""
        s = self._session(tuple(shape if shape is not None else self.input_shape or ()), self._flags)
        return int(self._L.tl_session_arena_bytes(s.h))

    @property
    def param_bytes(self) -> int:
        self._check_open()
        return int(self._L.tl_model_param_bytes(self._h))

    @property
    def sessions(self) -> List[Tuple[Tuple[int, ...], int]]:
        """(input shape, flags) of every planned session."""
        with self._slock:
            return list(self._sessions)

    # ------------------------------------------------------------------ lifetime
    def _check_open(self) -> None:
        if not self._h:
            raise Error("the model is closed")

    def clear_sessions(self) -> None:
        with self._slock:
            for s in self._sessions.values():
                with s.lock:
                    s.free()
            self._sessions.clear()
            self._last = None

    def close(self) -> None:
        """Free the sessions and the model (also done when the object is collected)."""
        if getattr(self, "_h", None):
            self.clear_sessions()
            self._L.tl_model_free(self._h)
            self._h = ctypes.c_void_p()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __repr__(self) -> str:
        return (f"tlrt.Model({self.n_nodes} nodes, input {list(self.input_shape or [])}, "
                f"outputs {list(self.output_ids)})")


def load(graph, params: Optional[PathLike] = None, **kwargs) -> Model:
    """tlrt.load(graph_json, params=None, *, threads=None, keep_all=False, profile=False) -> Model."""
    return Model(graph, params, **kwargs)


def load_npy(path: PathLike) -> np.ndarray:
    """Read a .npy file with tlrt's reader (v1/v2/v3, f4/f8/i4/i8/u1/b1 -> float32, C order);
    errors are tlrt.Error subclasses with tlrt's message."""
    L = _lib.lib()
    t, err = ctypes.POINTER(_lib.TlTensor)(), _lib.TlErr()
    _lib.check(L.tl_npy_load(os.fspath(path).encode(), ctypes.byref(t), ctypes.byref(err)), err)
    try:
        return _copy_out(t.contents.data, t.contents.shape)
    finally:
        L.tl_tensor_free(t)


def set_threads(n: int) -> None:
    """Threads for tlrt's kernels and OpenBLAS, process-wide (tl_set_threads)."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise BadInputError(f"threads: expected a positive integer, got {n!r}")
    _lib.lib().tl_set_threads(int(n))


def get_threads() -> int:
    return int(_lib.lib().tl_get_threads())


def blas_info() -> str:
    """e.g. "OpenBLAS 0.3.21 SkylakeX (OPENBLAS_CORETYPE set by tlrt)"."""
    return _lib.lib().tl_blas_info().decode()


def best_isa() -> str:
    L = _lib.lib()
    return L.tl_isa_name(L.tl_kernels_best_isa()).decode()
