"""Minimal ctypes binding of tlrt's public C API (runtime/tl_runtime.h) on libtlrt_c.so.

Used by bench/compare.py; nothing here starts a process, so a timed tl_session_run is one
foreign call. Layouts mirror ir/tl_shape.h (tl_shape) and ir/tl_err.h (tl_err).
"""

import ctypes
import os
from pathlib import Path

import numpy as np

TL_MAX_RANK = 8
TL_ERR_MAX = 1024


class TlShape(ctypes.Structure):
    _fields_ = [("rank", ctypes.c_int), ("dim", ctypes.c_int64 * TL_MAX_RANK)]

    @classmethod
    def of(cls, dims):
        s = cls()
        s.rank = len(dims)
        for i, d in enumerate(dims):
            s.dim[i] = int(d)
        return s

    def dims(self):
        return tuple(int(self.dim[i]) for i in range(self.rank))


class TlErr(ctypes.Structure):
    _fields_ = [("msg", ctypes.c_char * TL_ERR_MAX), ("kind", ctypes.c_int)]  # tl_err: msg, kind


class TlrtError(RuntimeError):
    pass


def find_lib(build_dir=None):
    root = Path(__file__).resolve().parents[1]
    cands = []
    if build_dir:
        cands.append(Path(build_dir) / "libtlrt_c.so")
    if os.environ.get("TL_BUILD_DIR"):
        cands.append(Path(os.environ["TL_BUILD_DIR"]) / "libtlrt_c.so")
    cands.append(root / "build" / "libtlrt_c.so")
    for c in cands:
        if c.exists():
            return str(c)
    raise FileNotFoundError("libtlrt_c.so not found (looked in: %s)" % ", ".join(map(str, cands)))


class Lib:
    def __init__(self, path):
        self.path = path
        L = ctypes.CDLL(path)
        P = ctypes.POINTER
        vp = ctypes.c_void_p
        L.tl_model_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p, P(vp), P(TlErr)]
        L.tl_model_open.restype = ctypes.c_int
        L.tl_model_free.argtypes = [vp]
        L.tl_model_free.restype = None
        L.tl_session_new.argtypes = [vp, P(TlShape), ctypes.c_int, P(vp), P(TlErr)]
        L.tl_session_new.restype = ctypes.c_int
        L.tl_session_free.argtypes = [vp]
        L.tl_session_free.restype = None
        L.tl_session_run.argtypes = [vp, P(ctypes.c_float), P(TlErr)]
        L.tl_session_run.restype = ctypes.c_int
        L.tl_session_n_outputs.argtypes = [vp]
        L.tl_session_n_outputs.restype = ctypes.c_int
        L.tl_session_output.argtypes = [vp, ctypes.c_int, P(TlShape)]
        L.tl_session_output.restype = P(ctypes.c_float)
        L.tl_session_arena_bytes.argtypes = [vp]
        L.tl_session_arena_bytes.restype = ctypes.c_int64
        L.tl_model_param_bytes.argtypes = [vp]
        L.tl_model_param_bytes.restype = ctypes.c_int64
        L.tl_session_node_ns.argtypes = [vp, ctypes.c_int64]
        L.tl_session_node_ns.restype = ctypes.c_int64
        L.tl_session_node_shape.argtypes = [vp, ctypes.c_int64]
        L.tl_session_node_shape.restype = P(TlShape)
        L.tl_set_threads.argtypes = [ctypes.c_int]
        L.tl_set_threads.restype = None
        L.tl_blas_info.argtypes = []
        L.tl_blas_info.restype = ctypes.c_char_p
        self.L = L

    def set_threads(self, n):
        self.L.tl_set_threads(int(n))

    def blas_info(self):
        return self.L.tl_blas_info().decode()


class Model:
    def __init__(self, lib, graph_path, params_path=None):
        self.lib = lib
        self.h = ctypes.c_void_p()
        err = TlErr()
        p = params_path.encode() if params_path else None
        if lib.L.tl_model_open(str(graph_path).encode(), p, ctypes.byref(self.h), ctypes.byref(err)):
            self.h = None
            raise TlrtError(err.msg.decode())

    def param_bytes(self):
        return int(self.lib.L.tl_model_param_bytes(self.h))

    def close(self):
        if self.h:
            self.lib.L.tl_model_free(self.h)
            self.h = None


class Session:
    """A planned session for one input shape. run(x) copies nothing: x must stay alive."""

    KEEP_ALL = 1
    PROFILE = 2
    EXACT = 4  # TL_SESSION_EXACT: follow the IR node by node, no plan-time rewrites

    def __init__(self, model, shape, flags=0):
        self.lib = model.lib
        self.model = model
        self.shape = tuple(int(d) for d in shape)
        self.h = ctypes.c_void_p()
        err = TlErr()
        s = TlShape.of(self.shape)
        if self.lib.L.tl_session_new(model.h, ctypes.byref(s), int(flags), ctypes.byref(self.h), ctypes.byref(err)):
            self.h = None
            raise TlrtError(err.msg.decode())
        self._err = TlErr()
        self._errp = ctypes.byref(self._err)
        self._run = self.lib.L.tl_session_run

    def bind(self, x):
        """Keep x (C-contiguous float32 of self.shape) and return a zero-argument runner."""
        assert x.dtype == np.float32 and x.flags["C_CONTIGUOUS"] and x.shape == self.shape
        self._x = x
        ptr = x.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        run, h, errp = self._run, self.h, self._errp

        def go():
            if run(h, ptr, errp):
                raise TlrtError(self._err.msg.decode())

        return go

    def outputs(self):
        outs = []
        for i in range(self.lib.L.tl_session_n_outputs(self.h)):
            s = TlShape()
            p = self.lib.L.tl_session_output(self.h, i, ctypes.byref(s))
            dims = s.dims()
            n = int(np.prod(dims)) if dims else 1
            outs.append(np.ctypeslib.as_array(p, shape=(n,)).reshape(dims).copy())
        return outs

    def node_ns(self, node_id):
        """Time of node_id in the last run (sessions made with flags=Session.PROFILE)."""
        return int(self.lib.L.tl_session_node_ns(self.h, int(node_id)))

    def node_shape(self, node_id):
        p = self.lib.L.tl_session_node_shape(self.h, int(node_id))
        return p.contents.dims() if p else None

    def arena_bytes(self):
        return int(self.lib.L.tl_session_arena_bytes(self.h))

    def close(self):
        if self.h:
            self.lib.L.tl_session_free(self.h)
            self.h = None
