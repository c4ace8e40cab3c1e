"""ctypes declarations of tlrt's public C API (include/tlrt/*.h) on libtlrt.so.

The library is looked up in this order: $TLRT_LIBRARY; the copy installed in the package
(tlrt/lib/libtlrt.so, put there by `pip install .`); a development build ($TL_BUILD_DIR, then
build/ at the top of the source tree). ctypes.CDLL releases the GIL for every foreign call.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from pathlib import Path
from typing import Callable, Iterator, Optional

from ._errors import OutOfMemoryError, error_for_kind

TL_MAX_RANK = 8
TL_ERR_MAX = 1024
KEEP_ALL = 1   # TL_SESSION_KEEP_ALL
PROFILE = 2    # TL_SESSION_PROFILE
FLOAT64 = 8    # TL_SESSION_FLOAT64

_PKG = Path(__file__).resolve().parent


class TlShape(ctypes.Structure):
    _fields_ = [("rank", ctypes.c_int), ("dim", ctypes.c_int64 * TL_MAX_RANK)]

    @classmethod
    def of(cls, dims) -> "TlShape":
        s = cls()
        s.rank = len(dims)
        for i, d in enumerate(dims):
            s.dim[i] = int(d)
        return s

    def dims(self) -> tuple:
        return tuple(int(self.dim[i]) for i in range(self.rank))


class TlErr(ctypes.Structure):
    _fields_ = [("msg", ctypes.c_char * TL_ERR_MAX), ("kind", ctypes.c_int)]

    def exception(self):
        return error_for_kind(int(self.kind), self.msg.decode("utf-8", "replace"))


class TlTensor(ctypes.Structure):
    _fields_ = [("shape", TlShape), ("data", ctypes.POINTER(ctypes.c_float)), ("owned", ctypes.c_bool)]


class TlGraph(ctypes.Structure):   # the head of tl_graph (tl_graph.h); nodes stay opaque
    _fields_ = [("path", ctypes.c_char_p), ("n_nodes", ctypes.c_int64), ("nodes", ctypes.c_void_p),
                ("input_id", ctypes.c_int64), ("n_outputs", ctypes.c_int),
                ("output_ids", ctypes.POINTER(ctypes.c_int64)), ("has_inline_params", ctypes.c_bool)]


class TlEmitOpts(ctypes.Structure):
    _fields_ = [("class_name", ctypes.c_char_p), ("dtype", ctypes.c_char_p),
                ("training_skeleton", ctypes.c_bool), ("learnable_consts", ctypes.c_bool),
                ("compress_broadcast", ctypes.c_bool), ("weights", ctypes.c_int),
                ("params_path", ctypes.c_char_p)]


def _candidates(name: str) -> list:
    out = []
    if name == "libtlrt.so" and os.environ.get("TLRT_LIBRARY"):
        out.append(Path(os.environ["TLRT_LIBRARY"]))
    sub = "lib" if name.startswith("lib") else "bin"
    if name != "libtlrt.so" and os.environ.get("TLRT_BIN_DIR"):
        out.append(Path(os.environ["TLRT_BIN_DIR"]) / name)
    out.append(_PKG / sub / name)
    if os.environ.get("TL_BUILD_DIR"):
        out.append(Path(os.environ["TL_BUILD_DIR"]) / name)
    out.append(_PKG.parents[1] / "build" / name)
    return out


def find_file(name: str) -> Path:
    """Path of libtlrt.so or of a bundled tool (tlrun, tlinfo, tlemit, tldiff)."""
    cands = _candidates(name)
    for c in cands:
        if c.is_file():
            return c
    raise FileNotFoundError(f"{name} not found (looked in: {', '.join(map(str, cands))})")


def _declare(L) -> None:
    P, vp, i64, c_int = ctypes.POINTER, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    E = P(TlErr)
    sigs = {
        "tl_model_open": ([ctypes.c_char_p, ctypes.c_char_p, P(vp), E], c_int),
        "tl_model_free": ([vp], None),
        "tl_model_graph": ([vp], P(TlGraph)),
        "tl_model_param_bytes": ([vp], i64),
        "tl_session_new": ([vp, P(TlShape), c_int, P(vp), E], c_int),
        "tl_session_free": ([vp], None),
        "tl_session_run": ([vp, P(ctypes.c_float), E], c_int),
        "tl_session_n_outputs": ([vp], c_int),
        "tl_session_output": ([vp, c_int, P(TlShape)], P(ctypes.c_float)),
        "tl_session_node_value": ([vp, i64, P(TlShape), E], P(ctypes.c_float)),
        "tl_session_run_f64": ([vp, P(ctypes.c_double), E], c_int),
        "tl_session_output_f64": ([vp, c_int, P(TlShape)], P(ctypes.c_double)),
        "tl_session_node_value_f64": ([vp, i64, P(TlShape), E], P(ctypes.c_double)),
        "tl_session_node_ns": ([vp, i64], i64),
        "tl_session_node_shape": ([vp, i64], P(TlShape)),
        "tl_session_node_plan": ([vp, i64], ctypes.c_char_p),
        "tl_session_arena_bytes": ([vp], i64),
        "tl_session_write_plan": ([vp, vp, E], c_int),
        "tl_set_threads": ([c_int], None),
        "tl_get_threads": ([], c_int),
        "tl_blas_info": ([], ctypes.c_char_p),
        "tl_isa_name": ([c_int], ctypes.c_char_p),
        "tl_kernels_best_isa": ([], c_int),
        "tl_npy_load": ([ctypes.c_char_p, P(P(TlTensor)), E], c_int),
        "tl_tensor_free": ([P(TlTensor)], None),
        "tl_graph_load_json": ([ctypes.c_char_p, P(vp), E], c_int),
        "tl_params_load": ([vp, ctypes.c_char_p, E], c_int),
        "tl_params_check_complete": ([vp, ctypes.c_char_p, E], c_int),
        "tl_graph_free": ([vp], None),
        "tl_emit_opts_default": ([P(TlEmitOpts)], None),
        "tl_emit_pytorch": ([vp, P(TlEmitOpts), vp, E], c_int),
    }
    for name, (args, res) in sigs.items():
        f = getattr(L, name)
        f.argtypes = args
        f.restype = res


_lock = threading.Lock()
_L = None
_C = None


def lib():
    """The loaded libtlrt (a ctypes.CDLL), loaded on first use."""
    global _L, _C
    if _L is None:
        with _lock:
            if _L is None:
                L = ctypes.CDLL(str(find_file("libtlrt.so")))
                _declare(L)
                C = ctypes.CDLL("libc.so.6")
                C.open_memstream.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t)]
                C.open_memstream.restype = ctypes.c_void_p
                C.fclose.argtypes = [ctypes.c_void_p]
                C.fclose.restype = ctypes.c_int
                C.free.argtypes = [ctypes.c_void_p]
                C.free.restype = None
                _C = C
                _L = L
    return _L


def check(rc: int, err: TlErr) -> None:
    if rc != 0:
        raise err.exception()


def write_to_string(fn: Callable[[int], int]) -> str:
    """Run fn(FILE *) on an open_memstream and return what it wrote. fn returns 0 or -1
    (raising is fn's business)."""
    lib()
    buf, size = ctypes.c_void_p(), ctypes.c_size_t()
    f = _C.open_memstream(ctypes.byref(buf), ctypes.byref(size))
    if not f:
        raise OutOfMemoryError("open_memstream failed")
    try:
        fn(f)
    finally:
        _C.fclose(f)
        text = ctypes.string_at(buf, size.value).decode("utf-8", "replace") if buf else ""
        _C.free(buf)
    return text


@contextlib.contextmanager
def c_graph(graph_path: str, params_path: Optional[str]) -> Iterator[int]:
    """A tl_graph* loaded (and parameter-bound) for the duration of the block."""
    L = lib()
    g, err = ctypes.c_void_p(), TlErr()
    check(L.tl_graph_load_json(graph_path.encode(), ctypes.byref(g), ctypes.byref(err)), err)
    try:
        if params_path:
            check(L.tl_params_load(g, params_path.encode(), ctypes.byref(err)), err)
        check(L.tl_params_check_complete(g, (params_path or graph_path).encode(), ctypes.byref(err)), err)
        yield g.value
    finally:
        L.tl_graph_free(g)
