#!/usr/bin/env python3
"""Capture a PyTorch nn.Module as a torchlean.ir.v1 graph (JSON) plus its parameters (params.bin).

Usage (see --help):
    python3 <this script> my_model.py MyModel graph.json (--example-shape 1,4 | --example-input x.npy)
        [--allow-rounding] [--params params.bin] [--inline-params] [--save-example DIR]
        [--dtype float32] [--seed 0] [--no-torch-export] [--debug-targets]

The module is built with its zero-argument constructor (or a zero-argument factory function),
put in eval() mode and captured with torch.export.export (in-place ops functionalized), falling
back to FX symbolic tracing.  Every captured operation is lowered to an IR op or a composition of
IR ops, each classified as
  exact             bit for bit PyTorch's result (each IR op evaluated as PyTorch evaluates it),
  exact-for-finite  differs only in NaN/inf propagation or the sign of zero,
  rounded           within k ulp of PyTorch (k stated) or a stated bound;
exact and exact-for-finite lowerings are admitted, rounded ones only with --allow-rounding.
Anything else is rejected, listing every unsupported operation with its source line and module
path, exit status 2.  Nothing is written unless the whole capture succeeds (temporary files +
rename).  Beside the graph goes its lowering report, graph.lowering.json: every non-exact
lowering used, with its class, ulp bound, op, source line, module path and node ids.

params.bin is a safetensors file whose tensor names are the attribute names of the PyTorch
module the tlrt emitter writes: linear_<id>_W / linear_<id>_b, conv2d_<id>_kernel /
conv2d_<id>_bias, const_<id>, batchnorm_<id>_{gamma,beta,mean,var}, layernorm_<id>_{gamma,beta}.
With --inline-params the payloads are written inline in the JSON (TorchLean style) instead.

What lowers to what (ATen names; FX modules/functions/methods map to the same rules).  Exact:
  linear, addmm/mm/matmul with a constant 2-D right operand -> linear (bias zeros if absent);
  matmul/bmm/mm otherwise -> matmul; conv1d/2d/3d, convolution (groups, stride, dilation,
  padding incl. 'same' -> padding/padding_after) -> conv; eval batch_norm -> batch_norm_eval;
  layer_norm (no affine: gamma 1, beta 0) -> layernorm; softmax -> softmax;
  relu tanh sigmoid exp log sqrt abs sin cos -> same; reciprocal -> inv; softplus (beta 1,
  threshold 20 only) -> softplus; pow with exponent 1, 2, 3, 0.5, -1, -2 -> mul_elem/sqrt/inv
  (PyTorch's own special cases); neg -> x * -1; add/sub/mul -> add/sub/mul_elem with an
  explicit reshape + broadcast_to when shapes differ; a Python number becomes a const of shape
  [1,...,1] + broadcast_to; rsub -> sub; x / 2^k -> x * 2^-k; 1 / y -> inv(y);
  avg_pool (count_include_pad=True, or no padding), adaptive_avg_pool -> reduce_mean over the
  spatial axes (output 1) or avg_pool (exact divisors); mean/sum over dims ->
  reduce_mean/reduce_sum (axes, keepdim), sum() -> sum; view/reshape/flatten/squeeze/unsqueeze/
  unflatten -> reshape (flatten when the result is a vector); expand -> broadcast_to (a constant
  expanded over the batch: const [1,...] + broadcast_to, so the graph re-batches); permute,
  transpose, t -> same; cat -> concat, stack -> reshape + concat; slices (split, chunk, unbind,
  select, slice, narrow, x[...]) of a linear/conv output along its feature axis, also through
  reshape/permute (timm's qkv) -> one linear/conv per piece with the sliced weights; x[:, 0] and
  x[:, ::s] -> a one-element max pool; mse_loss (mean) -> mse_loss; eval dropout, clone,
  contiguous, detach, same-dtype casts -> nothing; ops on constants only are folded.
Exact for finite values: max_pool with a window > 1 (padded cells skipped, as PyTorch's -inf
  padding; ceil_mode only where it equals floor mode); leaky_relu (0 <= slope <= 1) ->
  max_elem(x, slope*x); hardtanh/relu6/clamp/maximum/minimum -> max_elem/min_elem; masked_fill
  with a constant mask -> x * keep + fill; other slices -> a linear with a 0/1 selection matrix.
Rounded (--allow-rounding): x / c (c not +-2^k) and x / y -> x * (1/c), x * inv(y) (<= 1 ulp);
  silu -> x * sigmoid(x) (<= 1 ulp); rsqrt, pow(x, -0.5) -> inv(sqrt(x)) (<= 2 ulp);
  gelu(approximate='tanh') -> 0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*x^3))) (abs error
  <= 2^-22 |x|); scaled_dot_product_attention -> matmul/softmax/matmul in the math backend's
  order (not ulp-bounded against the fused CPU kernel).
Rejected (all listed at once): erf GELU, log_softmax, sort, gathers, LSTM/GRU, embedding,
remainder, dtype changes, training-mode dropout/batch norm, add with alpha, division with
rounding_mode, partial ceil_mode windows, dilated max pooling, uneven adaptive pooling,
mutation of inputs or buffers, any other op.

Only torch and numpy are needed; the script is standalone and is embedded in tlrt
(`tlemit capture-script` prints it; its options rewrite the two constants below and the name of
the helper function).
"""
import argparse
import contextlib
import importlib.util
import inspect
import io
import json
import logging
import math
import operator
import os
import re
import sys
import tempfile
import traceback
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PREFER_TORCH_EXPORT = True
INCLUDE_DEBUG_TARGETS = False

FORMAT = "torchlean.ir.v1"


class CaptureError(Exception):
    """Bad input or a model outside the IR: one message, exit status 2."""


class _Unsupported(Exception):
    """One FX node cannot be lowered (collected; all of them are reported at once)."""


# ----------------------------------------------------------------------------------------------
# Values flowing through the lowering
# ----------------------------------------------------------------------------------------------

class _T:
    """A tensor value of the IR graph: node id, shape, provably non-negative?"""
    __slots__ = ("id", "shape", "nonneg", "poisoned", "src")

    def __init__(self, nid, shape, nonneg=False, poisoned=False):
        self.id = nid
        self.shape = [int(d) for d in shape]
        self.nonneg = nonneg
        self.poisoned = poisoned
        # For a linear/conv output and views of it (reshape/permute): the producer, so that a
        # slice along its feature axis can be lowered exactly as a producer with sliced weights.
        self.src = None


def _view_src(t, op):
    return None if t.src is None else dict(t.src, views=t.src["views"] + [op])


class _Unavailable:
    """A tuple component that has no IR value (e.g. max-pool indices, saved batch-norm stats)."""

    def __init__(self, what):
        self.what = what


def _walk(obj):
    if isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _walk(x)
    elif isinstance(obj, dict):
        for x in obj.values():
            yield from _walk(x)
    else:
        yield obj


def _has_ir(obj):
    return any(isinstance(x, (_T, _Unavailable)) for x in _walk(obj))


# ----------------------------------------------------------------------------------------------
# Graph builder
# ----------------------------------------------------------------------------------------------

# Parameter slots per kind: (inline JSON key, params.bin name format).
_PARAM_SLOTS = {
    "linear": (("weight", "linear_{}_W"), ("bias", "linear_{}_b")),
    "conv": (("weight", "conv2d_{}_kernel"), ("bias", "conv2d_{}_bias")),
    "const": (("values", "const_{}"),),
    "batch_norm_eval": (("gamma", "batchnorm_{}_gamma"), ("beta", "batchnorm_{}_beta"),
                        ("mean", "batchnorm_{}_mean"), ("var", "batchnorm_{}_var")),
    "layernorm": (("gamma", "layernorm_{}_gamma"), ("beta", "layernorm_{}_beta")),
}


class _Builder:
    def __init__(self, dtype, allow_rounding=False):
        self.nodes = []          # dicts: id kind parents shape fields payload target
        self.dtype = dtype       # numpy dtype of the payloads
        self.target = None       # debug target of the FX node being lowered
        self.scalar_cache = {}
        self.allow_rounding = allow_rounding
        self.pending = []        # non-exact lowerings of the FX node being lowered
        self.notes = []          # all of them: dicts (class, ulp, what, op, module, source, ids)

    def lowering(self, cls, what, ulp=None, bound=None):
        """Record a non-exact lowering of the FX node being lowered.  cls: 'exact-for-finite'
        (differs from PyTorch only in NaN/inf propagation or the sign of zero) or 'rounded'
        (within `ulp` ulp of PyTorch, or `bound` when no ulp bound holds).  A rounded one is
        refused unless --allow-rounding was given."""
        if cls == "rounded" and not self.allow_rounding:
            how = f"within {ulp} ulp of PyTorch" if ulp is not None else bound
            raise _Unsupported(f"{what} has no exact form in torchlean.ir.v1; the closest lowering "
                               f"is rounded ({how}): --allow-rounding admits it")
        self.pending.append({"class": cls, "ulp": ulp, "bound": bound, "what": what})

    def emit(self, kind, parents, shape, fields=None, payload=None, nonneg=False):
        nid = len(self.nodes)
        self.nodes.append({"id": nid, "kind": kind, "parents": [p.id for p in parents],
                           "shape": [int(d) for d in shape], "fields": dict(fields or {}),
                           "payload": payload or {}, "target": self.target})
        return _T(nid, shape, nonneg)

    def tensor_payload(self, value):
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            if value.dtype == torch.bfloat16:
                value = value.float()
            value = value.numpy()
        return np.array(value, dtype=self.dtype, order="C")   # keeps 0-d arrays 0-d

    def const(self, value):
        arr = self.tensor_payload(value)
        shape = list(arr.shape)
        nonneg = bool(arr.size == 0 or np.all(arr >= 0))
        return self.emit("const", [], shape, {"value_shape": shape}, {"values": arr}, nonneg)

    def scalar(self, value, shape):
        """A Python number at `shape`: const [1,...,1] + explicit broadcast_to."""
        shape = [int(d) for d in shape]
        key = (float(np.asarray(value, dtype=self.dtype)), tuple(shape))
        if key in self.scalar_cache:
            return self.scalar_cache[key]
        small = np.full([1] * len(shape), value, dtype=self.dtype)
        t = self.const(small)
        if shape != t.shape:
            t = self.emit("broadcast_to", [t], shape, {"from_shape": t.shape, "to_shape": shape},
                          nonneg=t.nonneg)
        self.scalar_cache[key] = t
        return t

    def ir(self, v):
        """Any tensor-like value as an IR tensor (static tensors become const nodes)."""
        if isinstance(v, _T):
            return v
        if isinstance(v, _Unavailable):
            raise _Unsupported(f"uses {v.what}, which has no torchlean.ir.v1 value")
        if isinstance(v, torch.Tensor):
            if v.is_complex():
                raise _Unsupported("complex tensors are not supported")
            return self.const(v)
        raise _Unsupported(f"expected a tensor operand, got {type(v).__name__}")

    def bcast(self, t, shape):
        """Explicit broadcast of an IR tensor to `shape` (reshape for missing leading axes)."""
        shape = [int(d) for d in shape]
        if t.shape == shape:
            return t
        if len(t.shape) > len(shape):
            raise _Unsupported(f"cannot broadcast {t.shape} to {shape}")
        if len(t.shape) < len(shape):
            padded = [1] * (len(shape) - len(t.shape)) + t.shape
            t = self.reshape(t, padded)
            if t.shape == shape:
                return t
        for a, b in zip(t.shape, shape, strict=False):
            if a != b and a != 1:
                raise _Unsupported(f"cannot broadcast {t.shape} to {shape}")
        return self.emit("broadcast_to", [t], shape, {"from_shape": t.shape, "to_shape": shape},
                         nonneg=t.nonneg)

    def operand(self, v, shape):
        if isinstance(v, bool) or isinstance(v, (int, float)):
            return self.scalar(float(v), shape)
        return self.bcast(self.ir(v), shape)

    def reshape(self, t, shape):
        shape = [int(d) for d in shape]
        if t.shape == shape:
            return t
        if int(np.prod(t.shape)) != int(np.prod(shape)):
            raise _Unsupported(f"reshape {t.shape} -> {shape} changes the element count")
        if len(shape) == 1:
            out = self.emit("flatten", [t], shape, {"value_shape": t.shape}, nonneg=t.nonneg)
        else:
            out = self.emit("reshape", [t], shape, {"in_shape": t.shape, "out_shape": shape},
                            nonneg=t.nonneg)
        out.src = _view_src(t, ("reshape", shape))
        return out

    def permute(self, t, perm):
        perm = [int(p) for p in perm]
        if perm == list(range(len(t.shape))):
            return t
        out = self.emit("permute", [t], [t.shape[p] for p in perm], {"perm": perm},
                        nonneg=t.nonneg)
        out.src = _view_src(t, ("permute", perm))
        return out

    def binary(self, kind, x, y, shape, nonneg=False):
        return self.emit(kind, [self.operand(x, shape), self.operand(y, shape)], shape,
                         nonneg=nonneg)

    def unary(self, kind, x, nonneg=False):
        x = self.ir(x)
        return self.emit(kind, [x], x.shape, nonneg=nonneg)


# ----------------------------------------------------------------------------------------------
# Argument helpers
# ----------------------------------------------------------------------------------------------

def _norm_axis(axis, rank):
    axis = int(axis)
    r = max(rank, 1)
    if axis < -r or axis >= r:
        raise _Unsupported(f"axis {axis} is outside rank {rank}")
    return axis + r if axis < 0 else axis


def _spatial(v, rank, default, what):
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        return [int(default)] * rank
    if isinstance(v, int):
        return [int(v)] * rank
    if isinstance(v, (list, tuple)):
        if len(v) == 1 and rank > 1:
            return [int(v[0])] * rank
        if len(v) == rank:
            return [int(x) for x in v]
    raise _Unsupported(f"{what}: expected an int or {rank} ints, got {v!r}")


def _static(v, what):
    if isinstance(v, (_T, _Unavailable)):
        raise _Unsupported(f"{what} is computed from the graph input; it must be a parameter, "
                           f"buffer or constant")
    return v


def _number(v, what):
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        return float(v.item())
    if isinstance(v, (bool, int, float)):
        return float(v)
    raise _Unsupported(f"{what} must be a constant number, got {type(v).__name__}")


def _is_num(v):
    return isinstance(v, (bool, int, float)) and not isinstance(v, _T)


def _out_shape(ctx):
    shp = ctx.meta_shape
    if shp is None:
        raise _Unsupported("no static shape recorded for this value")
    return shp


# ----------------------------------------------------------------------------------------------
# Lowering rules.  Each takes (builder, args dict with ATen-style names, ctx) -> value.
# ----------------------------------------------------------------------------------------------

def _r_identity(b, a, ctx):
    return a["input"]


def _r_unary(kind, nonneg=False):
    def rule(b, a, ctx):
        x = b.ir(a["input"])
        nn_ = nonneg(x) if callable(nonneg) else nonneg
        return b.emit(kind, [x], x.shape, nonneg=nn_)
    return rule


def _r_relu_inplace(b, a, ctx):
    if ctx.arg_users is not None and ctx.arg_users > 1:
        raise _Unsupported("in-place relu_ on a tensor that is used again elsewhere mutates it; "
                           "use torch.relu(x) / nn.ReLU() (inplace=False)")
    return b.unary("relu", a["input"], nonneg=True)


def _r_add(b, a, ctx):
    alpha = a.get("alpha", 1)
    if alpha is not None and _number(alpha, "alpha") != 1:
        raise _Unsupported("add/sub with alpha != 1 is not lowered (its fused rounding has no "
                           "exact IR form)")
    x, y = a["input"], a["other"]
    nonneg = all(isinstance(v, _T) and v.nonneg for v in (x, y))
    return b.binary(ctx.kind_override or "add", x, y, _out_shape(ctx), nonneg=nonneg)


def _r_sub(b, a, ctx):
    alpha = a.get("alpha", 1)
    if alpha is not None and _number(alpha, "alpha") != 1:
        raise _Unsupported("sub with alpha != 1 is not lowered")
    return b.binary("sub", a["input"], a["other"], _out_shape(ctx))


def _r_rsub(b, a, ctx):
    alpha = a.get("alpha", 1)
    if alpha is not None and _number(alpha, "alpha") != 1:
        raise _Unsupported("rsub with alpha != 1 is not lowered")
    return b.binary("sub", a["other"], a["input"], _out_shape(ctx))


def _r_mul(b, a, ctx):
    x, y = a["input"], a["other"]
    nonneg = all(isinstance(v, _T) and v.nonneg for v in (x, y))
    return b.binary("mul_elem", x, y, _out_shape(ctx), nonneg=nonneg)


def _r_div(b, a, ctx):
    if a.get("rounding_mode") is not None:
        raise _Unsupported(f"division with rounding_mode={a['rounding_mode']!r} is not in "
                           f"torchlean.ir.v1")
    x, y = a["input"], a["other"]
    shape = _out_shape(ctx)
    if _is_num(y):
        # x / c  ->  x * (1/c): exact when 1/c is exact (c a power of two); otherwise the IR has
        # no division and x * fl(1/c) is within 1 ulp of PyTorch's correctly rounded x / c.
        c = float(y)
        if c == 0:
            raise _Unsupported("division by the constant 0")
        if not _exact_reciprocal(c, b.dtype):
            b.lowering("rounded", f"x / {c!r} (the IR has no division; x * (1/c) with 1/c rounded "
                       f"once)", ulp=1)
        return b.binary("mul_elem", x, 1.0 / c, shape)
    if isinstance(y, torch.Tensor):
        vals = y.detach().double().reshape(-1).tolist()
        if any(v == 0 for v in vals):
            raise _Unsupported("division by a constant tensor that contains 0")
        if not all(_exact_reciprocal(v, b.dtype) for v in vals):
            b.lowering("rounded", "x / c for a constant tensor c (the IR has no division; "
                       "x * (1/c) with 1/c rounded once)", ulp=1)
        recip = b.const(1.0 / y.detach().double())
    else:
        recip = b.unary("inv", y)
        if not (_is_num(x) and float(x) == 1.0):
            b.lowering("rounded", "x / y (the IR has no division; x * inv(y))", ulp=1)
    if _is_num(x) and float(x) == 1.0:
        return b.bcast(recip, shape)
    return b.binary("mul_elem", x, recip, shape)


def _exact_reciprocal(c, dtype):
    """1/c is exactly representable in dtype (c = +-2^k), so x * (1/c) == x / c bit for bit."""
    c = float(c)
    if not math.isfinite(c) or c == 0:
        return False
    m, _ = math.frexp(c)
    if abs(m) != 0.5:
        return False
    r = 1.0 / c
    return float(np.asarray(r, dtype=dtype)) == r and r != 0


def _r_neg(b, a, ctx):
    return b.binary("mul_elem", a["input"], -1.0, _out_shape(ctx))


def _r_minmax(kind):
    def rule(b, a, ctx):
        b.lowering("exact-for-finite", f"{ctx.canon} -> {kind} (NaN propagation and the sign of "
                   f"a zero result follow the IR's {kind})")
        x, y = a["input"], a["other"]
        nonneg = any(isinstance(v, _T) and v.nonneg for v in (x, y)) if kind == "max_elem" else \
            all(isinstance(v, _T) and v.nonneg for v in (x, y))
        return b.binary(kind, x, y, _out_shape(ctx), nonneg=nonneg)
    return rule


def _clamp(b, x, lo, hi):
    x = b.ir(x)
    b.lowering("exact-for-finite", "clamp -> max_elem/min_elem with constants (NaN propagation "
               "follows the IR's max_elem/min_elem)")
    if lo is not None:
        lo = _number(lo, "clamp min")
        x = b.emit("max_elem", [x, b.scalar(lo, x.shape)], x.shape, nonneg=x.nonneg or lo >= 0)
    if hi is not None:
        hi = _number(hi, "clamp max")
        x = b.emit("min_elem", [x, b.scalar(hi, x.shape)], x.shape, nonneg=x.nonneg)
    return x


def _r_clamp(b, a, ctx):
    return _clamp(b, a["input"], a.get("min"), a.get("max"))


def _r_clamp_min(b, a, ctx):
    return _clamp(b, a["input"], a.get("min"), None)


def _r_clamp_max(b, a, ctx):
    return _clamp(b, a["input"], None, a.get("max"))


def _r_hardtanh(b, a, ctx):
    return _clamp(b, a["input"], a.get("min_val", -1.0), a.get("max_val", 1.0))


def _r_relu6(b, a, ctx):
    return _clamp(b, a["input"], 0.0, 6.0)


def _r_leaky_relu(b, a, ctx):
    slope = _number(a.get("negative_slope", 0.01), "negative_slope")
    if not 0.0 <= slope <= 1.0:
        raise _Unsupported(f"leaky_relu with negative_slope={slope} (only 0 <= slope <= 1 is the "
                           f"exact max(x, slope*x))")
    x = b.ir(a["input"])
    b.lowering("exact-for-finite", f"leaky_relu -> max_elem(x, {slope!r}*x) (NaN propagation "
               f"follows the IR's max_elem)")
    sx = b.emit("mul_elem", [b.scalar(slope, x.shape), x], x.shape)
    return b.emit("max_elem", [x, sx], x.shape)


def _r_softplus(b, a, ctx):
    beta = _number(a.get("beta", 1), "beta")
    threshold = _number(a.get("threshold", 20), "threshold")
    if beta != 1.0 or threshold != 20.0:
        raise _Unsupported(f"softplus with beta={beta}, threshold={threshold} (only beta=1, "
                           f"threshold=20 is the IR softplus)")
    return b.unary("softplus", a["input"], nonneg=True)


def _r_silu(b, a, ctx):
    # PyTorch's silu kernel computes x / (1 + exp(-x)) with one division; x * sigmoid(x)
    # rounds 1/(1 + exp(-x)) first.
    b.lowering("rounded", "silu -> x * sigmoid(x) (PyTorch divides once: x / (1 + exp(-x)))",
               ulp=1)
    x = b.ir(a["input"])
    s = b.emit("sigmoid", [x], x.shape, nonneg=True)
    return b.emit("mul_elem", [x, s], x.shape)


def _r_gelu(b, a, ctx):
    approx = a.get("approximate", "none")
    if approx != "tanh":
        raise _Unsupported("GELU with approximate='none' needs erf, which torchlean.ir.v1 does "
                           "not have (GELU(approximate='tanh') is supported)")
    # PyTorch: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))), but its vectorised CPU
    # kernel fuses multiply-adds, so the composition of IR ops rounds differently; where
    # 1 + tanh(...) cancels (x < -4) the relative error is unbounded.
    b.lowering("rounded", "gelu(approximate='tanh') composed of mul_elem/add/tanh (PyTorch's "
               "kernel fuses multiply-adds)", bound="absolute error within 2^-22 * |x|, not "
               "ulp-bounded where 1 + tanh cancels")
    x = b.ir(a["input"])
    s = x.shape
    k_beta = math.sqrt(2.0) * (2.0 / math.sqrt(math.pi)) * 0.5
    x2 = b.emit("mul_elem", [x, x], s)
    x3 = b.emit("mul_elem", [x2, x], s)
    kx3 = b.emit("mul_elem", [b.scalar(0.044715, s), x3], s)
    inner = b.emit("mul_elem", [b.scalar(k_beta, s), b.emit("add", [x, kx3], s)], s)
    th = b.emit("tanh", [inner], s)
    onep = b.emit("add", [b.scalar(1.0, s), th], s)
    hx = b.emit("mul_elem", [b.scalar(0.5, s), x], s)
    return b.emit("mul_elem", [hx, onep], s)


def _r_pow(b, a, ctx):
    e = a.get("exponent")
    if not _is_num(e):
        raise _Unsupported("pow with a tensor exponent is not in torchlean.ir.v1")
    x = b.ir(a["input"])
    s = x.shape
    e = float(e)
    if e == 1.0:
        return x
    if e == 2.0:
        return b.emit("mul_elem", [x, x], s, nonneg=True)
    if e == 3.0:
        return b.emit("mul_elem", [b.emit("mul_elem", [x, x], s, nonneg=True), x], s)
    if e == 0.5:
        return b.emit("sqrt", [x], s, nonneg=True)
    if e == -1.0:
        return b.emit("inv", [x], s, nonneg=x.nonneg)
    if e == -0.5:
        return _rsqrt(b, x, "pow(x, -0.5)")
    if e == -2.0:
        return b.emit("inv", [b.emit("mul_elem", [x, x], s, nonneg=True)], s, nonneg=True)
    raise _Unsupported(f"pow with exponent {e} (exact forms: 1, 2, 3, 0.5, -0.5, -1, -2)")


def _r_square(b, a, ctx):
    x = b.ir(a["input"])
    return b.emit("mul_elem", [x, x], x.shape, nonneg=True)


def _rsqrt(b, x, what):
    # PyTorch's vectorised rsqrt (also pow(x, -0.5)) is not 1/sqrt(x) rounded twice.
    b.lowering("rounded", f"{what} -> inv(sqrt(x)) (PyTorch's rsqrt kernel rounds differently)",
               ulp=2)
    return b.emit("inv", [b.emit("sqrt", [x], x.shape, nonneg=True)], x.shape, nonneg=True)


def _r_rsqrt(b, a, ctx):
    return _rsqrt(b, b.ir(a["input"]), "rsqrt(x)")


def _linear(b, x, w, bias):
    x = b.ir(x)
    w = b.tensor_payload(w)
    if w.ndim != 2:
        raise _Unsupported(f"linear weight must have rank 2, got {list(w.shape)}")
    out_dim, in_dim = (int(d) for d in w.shape)
    if not x.shape or x.shape[-1] != in_dim:
        raise _Unsupported(f"linear input {x.shape} does not end in in_features={in_dim}")
    if bias is None:
        bvec = np.zeros([out_dim], dtype=b.dtype)
    else:
        bvec = b.tensor_payload(bias)
        if bvec.size == out_dim and bvec.ndim <= 2 and bvec.shape[-1] == out_dim:
            bvec = bvec.reshape([out_dim])
        else:
            raise _Unsupported(f"linear bias shape {list(bvec.shape)} is not [{out_dim}]")
    shape = x.shape[:-1] + [out_dim]
    out = b.emit("linear", [x], shape, {"in_dim": in_dim, "out_dim": out_dim},
                 {"weight": w, "bias": bvec})
    out.src = {"kind": "linear", "x": x, "w": w, "bias": bvec, "base": list(shape),
               "axis": len(shape) - 1, "views": []}
    return out


def _r_linear(b, a, ctx):
    w = _static(a.get("weight"), "linear weight")
    bias = _static(a.get("bias"), "linear bias")
    return _linear(b, a["input"], w, bias)


def _matmul(b, x, y, shape):
    if isinstance(x, _T) and isinstance(y, torch.Tensor) and y.dim() == 2 and len(x.shape) >= 1:
        return _linear(b, x, y.detach().t(), None)
    return b.emit("matmul", [b.ir(x), b.ir(y)], shape)


def _r_matmul(b, a, ctx):
    other = a.get("other", a.get("mat2"))
    return _matmul(b, a["input"], other, _out_shape(ctx))


def _r_addmm(b, a, ctx):
    for k in ("beta", "alpha"):
        if a.get(k) is not None and _number(a[k], k) != 1:
            raise _Unsupported(f"addmm with {k} != 1 is not lowered")
    bias, m1, m2 = a["input"], a["mat1"], a["mat2"]
    shape = _out_shape(ctx)
    if isinstance(m1, _T) and isinstance(m2, torch.Tensor) and m2.dim() == 2 and \
            isinstance(bias, torch.Tensor) and bias.numel() == m2.shape[1] and \
            bias.shape[-1] == m2.shape[1]:
        return _linear(b, m1, m2.detach().t(), bias)
    mm = _matmul(b, m1, m2, shape)
    return b.binary("add", mm, bias, shape)


def _r_conv(b, a, ctx):
    if a.get("transposed"):
        raise _Unsupported("transposed convolution is not in torchlean.ir.v1")
    w = b.tensor_payload(_static(a.get("weight"), "convolution weight"))
    bias = _static(a.get("bias"), "convolution bias")
    x = b.ir(a["input"])
    rank = w.ndim - 2
    if rank < 1:
        raise _Unsupported(f"convolution weight shape {list(w.shape)}")
    if len(x.shape) not in (rank + 1, rank + 2):
        raise _Unsupported(f"convolution expects a rank {rank + 2} input, got {x.shape}")
    channel_axis = len(x.shape) - rank - 1
    groups = int(a.get("groups", 1) or 1)
    kernel = [int(k) for k in w.shape[2:]]
    stride = _spatial(a.get("stride", 1), rank, 1, "stride")
    dilation = _spatial(a.get("dilation", 1), rank, 1, "dilation")
    padding = a.get("padding", 0)
    if isinstance(padding, str):
        if padding == "valid":
            before = after = [0] * rank
        elif padding == "same":
            total = [d * (k - 1) for d, k in zip(dilation, kernel, strict=False)]
            before = [t // 2 for t in total]
            after = [t - p for t, p in zip(total, before, strict=False)]
        else:
            raise _Unsupported(f"convolution padding={padding!r}")
    else:
        before = after = _spatial(padding, rank, 0, "padding")
    out_c = int(w.shape[0])
    in_c = int(w.shape[1]) * groups
    if x.shape[channel_axis] != in_c:
        raise _Unsupported(f"convolution input has {x.shape[channel_axis]} channels, weight "
                           f"expects {in_c}")
    bvec = np.zeros([out_c], dtype=b.dtype) if bias is None else \
        b.tensor_payload(bias).reshape([out_c])
    fields = {"spatial_rank": rank, "kernel": kernel, "stride": stride, "padding": before,
              "padding_after": after, "dilation": dilation, "groups": groups,
              "channel_axis": channel_axis, "in_channels": in_c, "out_channels": out_c,
              "input_spatial": x.shape[channel_axis + 1:]}
    out = b.emit("conv", [x], _out_shape(ctx), fields, {"weight": w, "bias": bvec})
    if groups == 1:
        out.src = {"kind": "conv", "x": x, "w": w, "bias": bvec, "fields": fields,
                   "base": list(out.shape), "axis": channel_axis, "views": []}
    return out


def _r_batch_norm(b, a, ctx):
    if a.get("training") or a.get("train"):
        raise _Unsupported("training-mode batch norm uses batch statistics (call model.eval())")
    mean, var = a.get("running_mean"), a.get("running_var")
    if mean is None or var is None:
        raise _Unsupported("batch norm without running statistics (track_running_stats=False) "
                           "uses batch statistics")
    mean = _static(mean, "running_mean")
    var = _static(var, "running_var")
    x = b.ir(a["input"])
    if len(x.shape) < 2:
        raise _Unsupported(f"batch norm expects a rank >= 2 input, got {x.shape}")
    c = x.shape[1]
    gamma = _static(a.get("weight"), "batch norm weight")
    beta = _static(a.get("bias"), "batch norm bias")
    gamma = np.ones([c], b.dtype) if gamma is None else b.tensor_payload(gamma)
    beta = np.zeros([c], b.dtype) if beta is None else b.tensor_payload(beta)
    eps = _number(a.get("eps", 1e-5), "eps")
    return b.emit("batch_norm_eval", [x], x.shape,
                  {"channel_axis": 1, "channels": c, "eps": eps},
                  {"gamma": gamma, "beta": beta, "mean": b.tensor_payload(mean),
                   "var": b.tensor_payload(var)})


def _r_native_batch_norm(b, a, ctx):
    out = _r_batch_norm(b, a, ctx)
    return (out, _Unavailable("the saved batch-norm mean"), _Unavailable("the saved batch-norm rstd"))


def _r_layer_norm(b, a, ctx):
    x = b.ir(a["input"])
    ns = a.get("normalized_shape")
    ns = [int(ns)] if isinstance(ns, int) else [int(d) for d in ns]
    axis = len(x.shape) - len(ns)
    if axis < 0 or x.shape[axis:] != ns:
        raise _Unsupported(f"layer_norm normalized_shape {ns} does not end input shape {x.shape}")
    gamma = _static(a.get("weight"), "layer norm weight")
    beta = _static(a.get("bias"), "layer norm bias")
    gamma = np.ones(ns, b.dtype) if gamma is None else b.tensor_payload(gamma).reshape(ns)
    beta = np.zeros(ns, b.dtype) if beta is None else b.tensor_payload(beta).reshape(ns)
    eps = _number(a.get("eps", 1e-5), "eps")
    return b.emit("layernorm", [x], x.shape, {"axis": axis, "eps": eps},
                  {"gamma": gamma, "beta": beta})


def _r_native_layer_norm(b, a, ctx):
    out = _r_layer_norm(b, a, ctx)
    return (out, _Unavailable("the saved layer-norm mean"), _Unavailable("the saved layer-norm rstd"))


def _r_softmax(b, a, ctx):
    if a.get("half_to_float"):
        raise _Unsupported("softmax with half_to_float")
    dtype = a.get("dtype")
    if dtype is not None and dtype != ctx.torch_dtype:
        raise _Unsupported(f"softmax with dtype={dtype} changes the scalar type")
    x = b.ir(a["input"])
    dim = a.get("dim")
    if dim is None:
        raise _Unsupported("softmax without an explicit dim")
    return b.emit("softmax", [x], x.shape, {"axis": _norm_axis(dim, len(x.shape))}, nonneg=True)


def _pool_rank(ctx, kernel):
    m = re.search(r"(\d)d", ctx.canon)
    if m:
        return int(m.group(1))
    if isinstance(kernel, (list, tuple)):
        return len(kernel)
    raise _Unsupported("cannot tell the pooling rank")


def _pool_len(n, k, s, p, d, ceil):
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= n + p:
        out -= 1
    return out


def _ceil_same_as_floor(x, kernel, stride, padding, dilation, what):
    """ceil_mode=True lowers where it gives floor mode's windows for the captured shape."""
    ins = x.shape[len(x.shape) - len(kernel):]
    args = list(zip(ins, kernel, stride, padding, dilation, strict=False))
    floor = [_pool_len(*t, False) for t in args]
    ceil = [_pool_len(*t, True) for t in args]
    if floor != ceil:
        raise _Unsupported(f"{what} with ceil_mode=True on spatial size {ins} adds partial windows "
                           f"(output {ceil}, floor mode {floor}); torchlean.ir.v1 pools in floor "
                           f"mode")


def _r_max_pool(b, a, ctx):
    kernel_arg = a.get("kernel_size")
    rank = _pool_rank(ctx, kernel_arg)
    kernel = _spatial(kernel_arg, rank, 1, "kernel_size")
    stride_arg = a.get("stride")
    stride = _spatial(stride_arg if stride_arg not in (None, [], ()) else kernel, rank, 1, "stride")
    padding = _spatial(a.get("padding", 0), rank, 0, "padding")
    dilation = _spatial(a.get("dilation", 1), rank, 1, "dilation")
    if a.get("return_indices"):
        raise _Unsupported("max pooling with return_indices=True")
    if dilation != [1] * rank:
        raise _Unsupported("dilated max pooling is not in torchlean.ir.v1")
    x = b.ir(a["input"])
    if a.get("ceil_mode"):
        _ceil_same_as_floor(x, kernel, stride, padding, dilation, "max pooling")
    # Padded cells are skipped (TorchLean's maxPoolValue, tlrt's kernel), as PyTorch's -inf
    # padding does: padding lowers as it is.
    if int(np.prod(kernel)) > 1:
        b.lowering("exact-for-finite", "max pooling (TorchLean's maxPoolValue replaces the "
                   "running maximum only by a strictly greater value, so a NaN in a window is "
                   "not propagated as PyTorch does)")
    if len(x.shape) < rank + 1:
        raise _Unsupported(f"max pooling expects rank >= {rank + 1}, got {x.shape}")
    out = b.emit("max_pool", [x], _out_shape(ctx), {"spatial_rank": rank, "kernel": kernel,
                                                      "stride": stride, "padding": padding},
                 nonneg=x.nonneg)
    if "with_indices" in ctx.canon:
        return (out, _Unavailable("the max-pool indices"))
    return out


def _r_avg_pool(b, a, ctx):
    kernel_arg = a.get("kernel_size")
    rank = _pool_rank(ctx, kernel_arg)
    kernel = _spatial(kernel_arg, rank, 1, "kernel_size")
    stride_arg = a.get("stride")
    stride = _spatial(stride_arg if stride_arg not in (None, [], ()) else kernel, rank, 1, "stride")
    padding = _spatial(a.get("padding", 0), rank, 0, "padding")
    if a.get("ceil_mode"):
        _ceil_same_as_floor(b.ir(a["input"]), kernel, stride, padding, [1] * rank,
                            "average pooling")
    if any(padding) and a.get("count_include_pad", True) is False:
        raise _Unsupported("padded average pooling with count_include_pad=False is not in "
                           "torchlean.ir.v1")
    if a.get("divisor_override") is not None:
        raise _Unsupported("average pooling with divisor_override")
    x = b.ir(a["input"])
    return b.emit("avg_pool", [x], _out_shape(ctx), {"spatial_rank": rank, "kernel": kernel,
                                                       "stride": stride, "padding": padding},
                  nonneg=x.nonneg)


def _r_adaptive_avg_pool(b, a, ctx):
    osz = a.get("output_size")
    rank = _pool_rank(ctx, osz)
    x = b.ir(a["input"])
    if len(x.shape) < rank + 1:
        raise _Unsupported(f"adaptive pooling expects rank >= {rank + 1}, got {x.shape}")
    ins = x.shape[len(x.shape) - rank:]
    if isinstance(osz, int):
        osz = [osz] * rank
    outs = [i if o is None else int(o) for i, o in zip(ins, osz, strict=False)]
    if outs == ins:
        return x
    if all(o == 1 for o in outs):
        axes = list(range(len(x.shape) - rank, len(x.shape)))
        return b.emit("reduce_mean", [x], _out_shape(ctx), {"axes": axes, "keepdim": True},
                      nonneg=x.nonneg)
    if all(o > 0 and i % o == 0 for i, o in zip(ins, outs, strict=False)):
        k = [i // o for i, o in zip(ins, outs, strict=False)]
        return b.emit("avg_pool", [x], _out_shape(ctx), {"spatial_rank": rank, "kernel": k,
                                                           "stride": k, "padding": [0] * rank},
                      nonneg=x.nonneg)
    raise _Unsupported(f"adaptive average pooling {ins} -> {outs} has uneven windows "
                       f"(only output 1 or exact divisors lower)")


def _r_reduce(kind):
    def rule(b, a, ctx):
        dtype = a.get("dtype")
        if dtype is not None and dtype != ctx.torch_dtype:
            raise _Unsupported(f"reduction with dtype={dtype} changes the scalar type")
        x = b.ir(a["input"])
        dim = a.get("dim")
        keepdim = bool(a.get("keepdim", False))
        rank = len(x.shape)
        if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
            axes = list(range(rank))
        elif isinstance(dim, int):
            axes = [_norm_axis(dim, rank)]
        else:
            axes = [_norm_axis(d, rank) for d in dim]
        if len(set(axes)) != len(axes):
            raise _Unsupported(f"duplicate reduction axes {axes}")
        if not axes:
            return x
        if kind == "reduce_sum" and not keepdim and len(axes) == rank:
            return b.emit("sum", [x], [], nonneg=x.nonneg)
        return b.emit(kind, [x], _out_shape(ctx), {"axes": sorted(axes), "keepdim": keepdim},
                      nonneg=x.nonneg)
    return rule


def _r_broadcast_tensors(b, a, ctx):
    ts = list(a["tensors"])
    shape = list(torch.broadcast_shapes(*[tuple(t.shape) for t in ts]))
    return tuple(b.bcast(b.ir(t), shape) for t in ts)


def _r_reshape(b, a, ctx):
    return b.reshape(b.ir(a["input"]), _out_shape(ctx))


def _r_expand(b, a, ctx):
    return b.bcast(b.ir(a["input"]), _out_shape(ctx))


def _r_permute(b, a, ctx):
    x = b.ir(a["input"])
    dims = a.get("dims")
    if isinstance(dims, int):
        dims = [dims]
    perm = [_norm_axis(d, len(x.shape)) for d in dims]
    if sorted(perm) != list(range(len(x.shape))):
        raise _Unsupported(f"invalid permutation {dims} for rank {len(x.shape)}")
    return b.permute(x, perm)


def _transpose(b, x, d0, d1):
    rank = len(x.shape)
    d0, d1 = _norm_axis(d0, rank), _norm_axis(d1, rank)
    if d0 == d1:
        return x
    shape = list(x.shape)
    shape[d0], shape[d1] = shape[d1], shape[d0]
    out = b.emit("transpose", [x], shape, {"axis1": d0, "axis2": d1}, nonneg=x.nonneg)
    perm = list(range(rank))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    out.src = _view_src(x, ("permute", perm))
    return out


def _r_transpose(b, a, ctx):
    return _transpose(b, b.ir(a["input"]), a["dim0"], a["dim1"])


def _r_t(b, a, ctx):
    x = b.ir(a["input"])
    if len(x.shape) < 2:
        return x
    return _transpose(b, x, 0, 1)


def _r_cat(b, a, ctx):
    tensors = [t for t in a["tensors"]
               if not (isinstance(t, torch.Tensor) and t.dim() == 1 and t.numel() == 0)]
    shape = _out_shape(ctx)
    parts = [b.ir(t) for t in tensors]
    if len(parts) == 1:
        return parts[0]
    axis = _norm_axis(a.get("dim", 0), len(shape))
    return b.emit("concat", parts, shape, {"axis": axis}, nonneg=all(p.nonneg for p in parts))


def _r_stack(b, a, ctx):
    shape = _out_shape(ctx)
    axis = _norm_axis(a.get("dim", 0), len(shape))
    parts = []
    for t in a["tensors"]:
        t = b.ir(t)
        parts.append(b.reshape(t, t.shape[:axis] + [1] + t.shape[axis:]))
    if len(parts) == 1:
        return parts[0]
    return b.emit("concat", parts, shape, {"axis": axis}, nonneg=all(p.nonneg for p in parts))


def _static_bool_mask(mask, what):
    if isinstance(mask, (_T, _Unavailable)):
        raise _Unsupported(f"{what} computed from the graph input: only a constant mask (a buffer "
                           f"or parameter) lowers")
    return torch.as_tensor(mask).detach()


def _r_masked_fill(b, a, ctx):
    x = b.ir(a["input"])
    shape = _out_shape(ctx)
    mask = _static_bool_mask(a.get("mask"), "masked_fill mask").bool()
    value = _number(_static(a.get("value"), "masked_fill value"), "masked_fill value")
    b.lowering("exact-for-finite", f"masked_fill(mask, {value!r}) with a constant mask as "
               f"x * keep + fill (keep 1/0, fill 0/value; a NaN/inf of x under the mask "
               f"propagates, a zero may change sign)")
    keep = (~mask).to(torch.float64)
    fill = torch.where(mask, torch.tensor(value, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64))
    xk = b.emit("mul_elem", [b.bcast(x, shape), b.operand(keep, shape)], shape)
    return b.emit("add", [xk, b.operand(fill, shape)], shape)


def _r_sdpa(b, a, ctx):
    q, k, v = b.ir(a["query"]), b.ir(a["key"]), b.ir(a["value"])
    if _number(a.get("dropout_p") or 0.0, "dropout_p") != 0.0:
        raise _Unsupported("scaled_dot_product_attention with dropout_p > 0 is random")
    if a.get("enable_gqa"):
        raise _Unsupported("scaled_dot_product_attention with enable_gqa=True")
    if len(q.shape) < 2 or q.shape[:-2] != k.shape[:-2] or k.shape[:-1] != v.shape[:-1] or \
            q.shape[-1] != k.shape[-1]:
        raise _Unsupported(f"scaled_dot_product_attention shapes q {q.shape}, k {k.shape}, "
                           f"v {v.shape} (only equal batch dims lower)")
    b.lowering("rounded", "scaled_dot_product_attention as matmul/softmax/matmul in the order of "
               "PyTorch's math backend (q and k each scaled by sqrt(scale), an additive 0/-inf "
               "mask)", bound="not ulp-bounded: PyTorch's eager CPU kernel (flash attention, "
               "online softmax) rounds differently; op for op equal to PyTorch's math backend, "
               "except that a fully masked row gives NaN instead of 0")
    seq_l, seq_s, e = q.shape[-2], k.shape[-2], q.shape[-1]
    scale = a.get("scale")
    sf = math.sqrt(1.0 / math.sqrt(e) if scale is None else _number(scale, "scale"))
    qs = b.emit("mul_elem", [q, b.scalar(sf, q.shape)], q.shape)
    ks = b.emit("mul_elem", [k, b.scalar(sf, k.shape)], k.shape)
    kt = _transpose(b, ks, -2, -1)
    att_shape = q.shape[:-1] + [seq_s]
    att = b.emit("matmul", [qs, kt], att_shape)
    mask = a.get("attn_mask")
    if a.get("is_causal"):
        if mask is not None:
            raise _Unsupported("scaled_dot_product_attention with both attn_mask and is_causal")
        mask = torch.ones(seq_l, seq_s, dtype=torch.bool).tril()
    if mask is not None:
        if isinstance(mask, _T):
            add = mask
        else:
            mask = torch.as_tensor(mask).detach()
            if mask.dtype == torch.bool:
                mask = torch.zeros(mask.shape, dtype=torch.float64).masked_fill(~mask, float("-inf"))
            add = mask
        att = b.emit("add", [att, b.operand(add, att_shape)], att_shape)
    att = b.emit("softmax", [att], att_shape, {"axis": len(att_shape) - 1}, nonneg=True)
    return b.emit("matmul", [att, v], q.shape[:-1] + [v.shape[-1]])


def _r_mha_tuple(b, a, ctx):
    """nn.MultiheadAttention on the FX path, the way TorchLean's capture script writes it: a
    tuple-valued multihead_attention node (payload inline) whose component 0 a tuple_getitem
    takes; TorchLean (and tlrt's importer) lower single-head, batch-first, dropout-free
    self-attention of it."""
    mod = a["module"]
    q, k, v = a.get("query"), a.get("key"), a.get("value")
    if not (isinstance(q, _T) and q is k and k is v):
        raise _Unsupported("nn.MultiheadAttention other than self-attention (query, key and value "
                           "the same tensor) is outside TorchLean's multihead_attention lowering")
    why = []
    if mod.num_heads != 1:
        why.append(f"num_heads={mod.num_heads} (TorchLean's multihead_attention node lowers one "
                   f"head; torch.export, the default, captures several heads exactly)")
    if not mod.batch_first:
        why.append("batch_first=False")
    if float(mod.dropout) != 0.0:
        why.append(f"dropout={mod.dropout}")
    if mod.add_zero_attn or mod.bias_k is not None or mod.bias_v is not None:
        why.append("add_zero_attn / bias_k / bias_v")
    if not mod._qkv_same_embed_dim or mod.in_proj_weight is None:
        why.append("kdim/vdim different from embed_dim")
    if a.get("attn_mask") is not None or a.get("key_padding_mask") is not None or a.get("is_causal"):
        why.append("a mask")
    if why:
        raise _Unsupported("nn.MultiheadAttention with " + ", ".join(why) + " is outside "
                           "TorchLean's multihead_attention lowering")
    if len(q.shape) != 3:
        raise _Unsupported(f"nn.MultiheadAttention on a rank-{len(q.shape)} input")
    bsz, n, e = q.shape
    scale = float((e // int(mod.num_heads)) ** -0.5)
    need_weights = a.get("need_weights", True)
    if need_weights is False:
        b.lowering("rounded", "nn.MultiheadAttention(need_weights=False) as TorchLean's "
                   "multihead_attention (PyTorch runs its fused attention kernel)",
                   bound="not ulp-bounded")
    elif _exact_reciprocal(scale, b.dtype):
        b.lowering("exact-for-finite", f"nn.MultiheadAttention as TorchLean's multihead_attention "
                   f"((q k^T) * {scale!r} where PyTorch computes (q * {scale!r}) k^T: equal for a "
                   f"power-of-two scale unless a product underflows or overflows)")
    else:
        b.lowering("rounded", f"nn.MultiheadAttention as TorchLean's multihead_attention ((q k^T) "
                   f"* {scale!r} where PyTorch computes (q * {scale!r}) k^T)",
                   bound="not ulp-bounded")
    w = mod.in_proj_weight.detach().double()
    bias = mod.in_proj_bias.detach().double() if mod.in_proj_bias is not None else \
        torch.zeros(3 * e, dtype=torch.float64)
    ob = mod.out_proj.bias.detach().double() if mod.out_proj.bias is not None else \
        torch.zeros(e, dtype=torch.float64)
    cast = (lambda t: np.asarray(t.numpy(), dtype=b.dtype))
    fields = {"value_kind": "tuple", "tuple_shapes": [[bsz, n, e], [bsz, n, n]],
              "embed_dim": e, "num_heads": int(mod.num_heads), "batch_first": True,
              "dropout_zero": True, "bias": mod.in_proj_bias is not None, "scale": scale}
    payload = {}
    for i, name in enumerate("qkv"):
        payload[f"{name}_weight"] = cast(w[i * e:(i + 1) * e])
        payload[f"{name}_bias"] = cast(bias[i * e:(i + 1) * e])
    payload["out_weight"] = cast(mod.out_proj.weight.detach().double())
    payload["out_bias"] = cast(ob)
    tup = b.emit("multihead_attention", [q, q, q], [], fields, payload)
    out = b.emit("tuple_getitem", [tup], [bsz, n, e], {"index": 0})
    return (out, _Unavailable("nn.MultiheadAttention's attention weights (TorchLean lowers "
                              "component 0 only)"))


def _r_mse_loss(b, a, ctx):
    red = a.get("reduction", "mean")
    if a.get("size_average") is not None or a.get("reduce") is not None:
        raise _Unsupported("mse_loss with the legacy size_average/reduce arguments")
    if red not in ("mean", 1):
        raise _Unsupported(f"mse_loss with reduction={red!r} (only 'mean' is the IR mse_loss)")
    x = b.ir(a["input"])
    y = b.operand(a["target"], x.shape)
    if isinstance(a["target"], _T) and a["target"].shape != x.shape:
        raise _Unsupported("mse_loss with broadcasting input/target shapes")
    return b.emit("mse_loss", [x, y], [], nonneg=True)


def _r_dropout(b, a, ctx):
    if a.get("train") or a.get("training"):
        raise _Unsupported("training-mode dropout is random (call model.eval())")
    return a["input"]


def _r_to_copy(b, a, ctx):
    dtype = a.get("dtype")
    if dtype is not None and dtype != ctx.torch_dtype:
        raise _Unsupported(f"conversion to {dtype} changes the scalar type")
    return a["input"]


def _r_method_to(b, a, ctx):
    for v in list(a.get("args", ())) + list(a.get("kwargs", {}).values()):
        if isinstance(v, torch.dtype) and v != ctx.torch_dtype:
            raise _Unsupported(f"conversion to {v} changes the scalar type")
    return a["input"]


# ---- slicing: no IR op; exact forms where they exist ----------------------------------------

def _take_from_producer(b, x, axis, idxs, out_shape):
    """x is a linear/conv output (or a reshape/permute of one) and the slice keeps whole rows of
    its feature axis: one producer with the sliced weights computes the same dot products, bit
    for bit.  Returns None when the slice is not of that form."""
    src = x.src
    base, fa = src["base"], src["axis"]
    m = int(np.prod(base))
    if m > 50_000_000:
        return None
    idx = np.arange(m, dtype=np.int64).reshape(base)
    for op, arg in src["views"]:
        idx = idx.reshape(arg) if op == "reshape" else idx.transpose(arg)
    if list(idx.shape) != x.shape:
        return None
    sel = np.take(idx, idxs, axis=axis)
    coords = list(np.unravel_index(sel.reshape(-1), base))
    feats = sorted(set(coords[fa].tolist()))
    if sel.size != (m // base[fa]) * len(feats):
        return None                     # the slice also cuts a non-feature axis
    pos = np.zeros(base[fa], dtype=np.int64)
    pos[feats] = np.arange(len(feats))
    new_base = list(base)
    new_base[fa] = len(feats)
    coords[fa] = pos[coords[fa]]
    t = np.ravel_multi_index(coords, new_base).reshape(sel.shape)
    # t: where each kept element sits in the new producer's output.  It must be a reshape +
    # permute of that output (a strided layout).
    shp = [n for n in sel.shape if n > 1] or [1]     # size-1 axes: left to the final reshape
    t = t.reshape(shp)
    strides = []
    origin = (0,) * len(shp)
    for j, n in enumerate(shp):
        e = [0] * len(shp)
        if n > 1:
            e[j] = 1
        strides.append(int(t[tuple(e)]) - int(t[origin]) if n > 1 else 0)
    order = sorted(range(len(shp)), key=lambda j: -strides[j])
    r_shape = [shp[j] for j in order]
    perm = [order.index(k) for k in range(len(shp))]
    if not np.array_equal(np.arange(t.size).reshape(r_shape).transpose(perm), t):
        return None
    w = src["w"][feats]
    bias = src["bias"][feats]
    if src["kind"] == "linear":
        y = _linear(b, src["x"], w, bias)
    else:
        fields = dict(src["fields"], out_channels=len(feats))
        y = b.emit("conv", [src["x"]], new_base, fields, {"weight": w, "bias": bias})
        y.src = dict(src, w=w, bias=bias, fields=fields, base=new_base, views=[])
    y = b.permute(b.reshape(y, r_shape), perm)
    return b.reshape(y, out_shape)


def _take(b, x, axis, idxs, squeeze, what):
    """x indexed along `axis` at the positions idxs (squeeze: an integer index, axis removed)."""
    x = b.ir(x)
    rank = len(x.shape)
    length = x.shape[axis]
    idxs = [int(i) for i in idxs]
    if not idxs:
        raise _Unsupported(f"{what} is empty; torchlean.ir.v1 has no empty tensors")
    out_shape = x.shape[:axis] + ([] if squeeze else [len(idxs)]) + x.shape[axis + 1:]
    if idxs == list(range(length)):
        return b.reshape(x, out_shape)
    if x.src is not None:
        y = _take_from_producer(b, x, axis, idxs, out_shape)
        if y is not None:
            return y
    perm = [d for d in range(rank) if d != axis] + [axis]
    inv = [perm.index(d) for d in range(rank)]
    y = b.permute(x, perm)
    lead = y.shape[:-1]
    step = idxs[1] - idxs[0] if len(idxs) > 1 else length
    if idxs[0] == 0 and step > 0 and idxs == list(range(0, length, step))[:len(idxs)] and \
            len(idxs) == len(range(0, length, step)):
        # positions 0, s, 2s, ...: max pooling with a one-element window (the element itself).
        if len(y.shape) < 2:
            y = b.reshape(y, [1] + y.shape)
        y = b.emit("max_pool", [y], y.shape[:-1] + [len(idxs)],
                   {"spatial_rank": 1, "kernel": [1], "stride": [step], "padding": [0]},
                   nonneg=x.nonneg)
    else:
        b.lowering("exact-for-finite", f"{what} as a linear layer with a 0/1 selection matrix "
                   f"(the IR has no slicing op; an inf/NaN elsewhere along the axis spreads, a "
                   f"zero may change sign)")
        w = np.zeros([len(idxs), length], dtype=b.dtype)
        w[np.arange(len(idxs)), idxs] = 1
        y = _linear(b, y, w, None)
        y.src = None
    y = b.reshape(y, lead + [len(idxs)])
    y = b.permute(y, inv)
    return b.reshape(y, out_shape)


def _slice_idxs(length, start, stop, step):
    step = 1 if step is None else int(step)
    if step <= 0:
        raise _Unsupported(f"slice step {step} (PyTorch requires a positive step)")
    return list(range(*slice(start, stop, step).indices(length)))


def _r_slice(b, a, ctx):
    x = b.ir(a["input"])
    dim = _norm_axis(a.get("dim", 0), len(x.shape))
    idxs = _slice_idxs(x.shape[dim], a.get("start"), a.get("end"), a.get("step", 1))
    return _take(b, x, dim, idxs, False, f"slice along axis {dim}")


def _r_narrow(b, a, ctx):
    x = b.ir(a["input"])
    dim = _norm_axis(a.get("dim", 0), len(x.shape))
    start = int(_static(a.get("start"), "narrow start"))
    if start < 0:
        start += x.shape[dim]
    return _take(b, x, dim, range(start, start + int(a.get("length"))), False,
                 f"narrow along axis {dim}")


def _select_index(x, dim, index):
    n = x.shape[dim]
    index = int(_static(index, "index"))
    if not -n <= index < n:
        raise _Unsupported(f"index {index} is out of range for size {n}")
    return index + n if index < 0 else index


def _r_select(b, a, ctx):
    x = b.ir(a["input"])
    dim = _norm_axis(a.get("dim", 0), len(x.shape))
    i = _select_index(x, dim, a.get("index"))
    return _take(b, x, dim, [i], True, f"index {a.get('index')} along axis {dim}")


def _split_sizes(length, sizes):
    out, start = [], 0
    for n in sizes:
        out.append(list(range(start, min(start + int(n), length))))
        start += int(n)
    return out


def _r_split(b, a, ctx):
    x = b.ir(a["input"])
    dim = _norm_axis(a.get("dim", 0), len(x.shape))
    length = x.shape[dim]
    size = a.get("split_size", a.get("split_size_or_sections", a.get("split_sizes")))
    if isinstance(size, (list, tuple)):
        pieces = _split_sizes(length, size)
    else:
        size = int(size)
        pieces = _split_sizes(length, [size] * max(1, -(-length // size)))
    return tuple(_take(b, x, dim, p, False, f"{ctx.canon} piece {k} along axis {dim}")
                 for k, p in enumerate(pieces))


def _r_chunk(b, a, ctx):
    x = b.ir(a["input"])
    dim = _norm_axis(a.get("dim", 0), len(x.shape))
    length = x.shape[dim]
    size = -(-length // int(a.get("chunks")))
    pieces = _split_sizes(length, [size] * max(1, -(-length // size)))
    return tuple(_take(b, x, dim, p, False, f"chunk {k} along axis {dim}")
                 for k, p in enumerate(pieces))


def _r_unbind(b, a, ctx):
    x = b.ir(a["input"])
    dim = _norm_axis(a.get("dim", 0), len(x.shape))
    return tuple(_take(b, x, dim, [i], True, f"unbind {i} along axis {dim}")
                 for i in range(x.shape[dim]))


def _r_getitem(b, a, ctx):
    src, idx = a["input"], a["index"]
    if isinstance(src, (tuple, list)):
        return src[idx]
    if not isinstance(src, _T):
        return src[idx]
    items = list(idx) if isinstance(idx, tuple) else [idx]
    if any(isinstance(i, (_T, torch.Tensor, list)) or
           (not isinstance(i, (int, slice)) and i is not None and i is not Ellipsis)
           for i in items):
        raise _Unsupported("indexing with a tensor or list (gather) is not in torchlean.ir.v1")
    n_real = sum(1 for i in items if i is not None and i is not Ellipsis)
    if Ellipsis in items:
        k = items.index(Ellipsis)
        items = items[:k] + [slice(None)] * (len(src.shape) - n_real) + items[k + 1:]
    x, axis = src, 0
    for i in items:
        if i is None:
            x = b.reshape(x, x.shape[:axis] + [1] + x.shape[axis:])
            axis += 1
        elif isinstance(i, slice):
            idxs = _slice_idxs(x.shape[axis], i.start, i.stop, i.step)
            x = _take(b, x, axis, idxs, False, f"slice {i.start}:{i.stop}:{i.step} along axis "
                      f"{axis}")
            axis += 1
        else:
            j = _select_index(x, axis, i)
            x = _take(b, x, axis, [j], True, f"index {i} along axis {axis}")
    return x


def _r_getattr(b, a, ctx):
    x, name = a["input"], a["name"]
    if isinstance(x, _T):
        if name == "shape":
            return torch.Size(x.shape)
        if name == "ndim":
            return len(x.shape)
        if name == "dtype":
            return ctx.torch_dtype
        if name == "device":
            return torch.device("cpu")
        if name == "T" and len(x.shape) == 2:
            return _transpose(b, x, 0, 1)
        if name == "mT":
            return _transpose(b, x, -2, -1)
        raise _Unsupported(f"tensor attribute .{name}")
    return getattr(x, name)


def _r_size(b, a, ctx):
    x = b.ir(a["input"])
    dim = a.get("dim")
    if dim is None:
        return torch.Size(x.shape)
    return x.shape[_norm_axis(dim, len(x.shape))]


def _r_dim(b, a, ctx):
    return len(b.ir(a["input"]).shape)


_RULES = {
    # identities (eval mode)
    "clone": _r_identity, "contiguous": _r_identity, "alias": _r_identity,
    "detach": _r_identity, "lift_fresh_copy": _r_identity, "identity": _r_identity,
    "dropout": _r_dropout, "feature_dropout": _r_dropout, "alpha_dropout": _r_dropout,
    "_to_copy": _r_to_copy, "to": _r_to_copy, "method_to": _r_method_to, "type_as": _r_identity,
    "_assert_tensor_metadata": lambda b, a, ctx: None,
    # elementwise
    "relu": _r_unary("relu", True), "relu_": _r_relu_inplace,
    "tanh": _r_unary("tanh"), "sigmoid": _r_unary("sigmoid", True),
    "exp": _r_unary("exp", True), "log": _r_unary("log"), "sqrt": _r_unary("sqrt", True),
    "abs": _r_unary("abs", True), "sin": _r_unary("sin"), "cos": _r_unary("cos"),
    "reciprocal": _r_unary("inv", lambda x: x.nonneg), "rsqrt": _r_rsqrt,
    "square": _r_square, "pow": _r_pow,
    "softplus": _r_softplus, "silu": _r_silu, "gelu": _r_gelu,
    "hardtanh": _r_hardtanh, "relu6": _r_relu6, "clamp": _r_clamp,
    "clamp_min": _r_clamp_min, "clamp_max": _r_clamp_max, "leaky_relu": _r_leaky_relu,
    "add": _r_add, "sub": _r_sub, "rsub": _r_rsub, "mul": _r_mul, "div": _r_div,
    "neg": _r_neg, "maximum": _r_minmax("max_elem"), "minimum": _r_minmax("min_elem"),
    # BLAS / layers
    "linear": _r_linear, "addmm": _r_addmm, "mm": _r_matmul, "bmm": _r_matmul,
    "matmul": _r_matmul,
    "conv": _r_conv, "conv1d": _r_conv, "conv2d": _r_conv, "conv3d": _r_conv, "convolution": _r_conv,
    "_convolution": _r_conv,
    "batch_norm": _r_batch_norm, "_native_batch_norm_legit_no_training": _r_native_batch_norm,
    "layer_norm": _r_layer_norm, "native_layer_norm": _r_native_layer_norm,
    "softmax": _r_softmax, "_softmax": _r_softmax,
    "max_pool1d": _r_max_pool, "max_pool2d": _r_max_pool, "max_pool3d": _r_max_pool,
    "max_pool2d_with_indices": _r_max_pool, "max_pool3d_with_indices": _r_max_pool,
    "avg_pool1d": _r_avg_pool, "avg_pool2d": _r_avg_pool, "avg_pool3d": _r_avg_pool,
    "adaptive_avg_pool1d": _r_adaptive_avg_pool, "adaptive_avg_pool2d": _r_adaptive_avg_pool,
    "adaptive_avg_pool3d": _r_adaptive_avg_pool, "_adaptive_avg_pool2d": _r_adaptive_avg_pool,
    "_adaptive_avg_pool3d": _r_adaptive_avg_pool,
    "mean": _r_reduce("reduce_mean"), "sum": _r_reduce("reduce_sum"),
    "mse_loss": _r_mse_loss,
    # data movement
    "view": _r_reshape, "_unsafe_view": _r_reshape, "reshape": _r_reshape,
    "flatten": _r_reshape, "unflatten": _r_reshape, "squeeze": _r_reshape,
    "unsqueeze": _r_reshape, "view_as": _r_reshape, "reshape_as": _r_reshape,
    "expand": _r_expand, "expand_as": _r_expand, "broadcast_to": _r_expand,
    "broadcast_tensors": _r_broadcast_tensors,
    "permute": _r_permute, "transpose": _r_transpose, "t": _r_t,
    "cat": _r_cat, "stack": _r_stack, "slice": _r_slice, "narrow": _r_narrow,
    "select": _r_select, "split": _r_split, "split_with_sizes": _r_split, "chunk": _r_chunk,
    "unbind": _r_unbind, "masked_fill": _r_masked_fill,
    "scaled_dot_product_attention": _r_sdpa, "multihead_attention": _r_mha_tuple,
    "getitem": _r_getitem, "getattr": _r_getattr, "size": _r_size, "dim": _r_dim,
}

# Known-unsupported ops with a specific reason (anything else: "no lowering").
_REASONS = {
    "erf": "erf is not in torchlean.ir.v1",
    "sort": "sorting is not in torchlean.ir.v1",
    "log_softmax": "log_softmax is not exact in torchlean.ir.v1 and has no bounded form: the IR "
                   "has no max reduction for x - max - log(sum(exp(x - max))), and log(softmax(x)) "
                   "is -inf where softmax underflows",
    "embedding": "embedding lookups (integer gather) are not in torchlean.ir.v1",
    "index": "tensor indexing is not in torchlean.ir.v1",
    "topk": "top-k is not in torchlean.ir.v1",
    "remainder": "remainder (floor modulo) is not in torchlean.ir.v1",
    "fmod": "fmod is not in torchlean.ir.v1",
    "lstm": "recurrent layers (LSTM) are not in torchlean.ir.v1",
    "gru": "recurrent layers (GRU) are not in torchlean.ir.v1",
    "rnn_tanh": "recurrent layers (RNN) are not in torchlean.ir.v1",
    "rnn_relu": "recurrent layers (RNN) are not in torchlean.ir.v1",
    "argmax": "argmax produces integers; torchlean.ir.v1 is float-only",
}

# ----------------------------------------------------------------------------------------------
# FX-level callables / methods / modules -> canonical rule + argument names (ATen spelling)
# ----------------------------------------------------------------------------------------------

_FX_FUNCS = [
    (operator.add, "add", ["input", "other"]), (operator.sub, "sub", ["input", "other"]),
    (operator.mul, "mul", ["input", "other"]), (operator.truediv, "div", ["input", "other"]),
    (operator.neg, "neg", ["input"]), (operator.matmul, "matmul", ["input", "other"]),
    (operator.pow, "pow", ["input", "exponent"]),
    (operator.getitem, "getitem", ["input", "index"]), (getattr, "getattr", ["input", "name"]),
    (torch.add, "add", ["input", "other", "alpha"]), (torch.sub, "sub", ["input", "other", "alpha"]),
    (torch.subtract, "sub", ["input", "other", "alpha"]), (torch.rsub, "rsub", ["input", "other", "alpha"]),
    (torch.mul, "mul", ["input", "other"]), (torch.multiply, "mul", ["input", "other"]),
    (torch.div, "div", ["input", "other", "rounding_mode"]),
    (torch.true_divide, "div", ["input", "other"]), (torch.neg, "neg", ["input"]),
    (torch.maximum, "maximum", ["input", "other"]), (torch.minimum, "minimum", ["input", "other"]),
    (torch.relu, "relu", ["input"]), (torch.relu_, "relu_", ["input"]),
    (torch.tanh, "tanh", ["input"]), (torch.sigmoid, "sigmoid", ["input"]),
    (torch.exp, "exp", ["input"]), (torch.log, "log", ["input"]), (torch.sqrt, "sqrt", ["input"]),
    (torch.rsqrt, "rsqrt", ["input"]), (torch.abs, "abs", ["input"]),
    (torch.sin, "sin", ["input"]), (torch.cos, "cos", ["input"]),
    (torch.reciprocal, "reciprocal", ["input"]), (torch.square, "square", ["input"]),
    (torch.pow, "pow", ["input", "exponent"]),
    (torch.clamp, "clamp", ["input", "min", "max"]), (torch.clip, "clamp", ["input", "min", "max"]),
    (torch.matmul, "matmul", ["input", "other"]), (torch.mm, "mm", ["input", "mat2"]),
    (torch.bmm, "bmm", ["input", "mat2"]),
    (torch.addmm, "addmm", ["input", "mat1", "mat2", "beta", "alpha"]),
    (torch.cat, "cat", ["tensors", "dim"]), (torch.concat, "cat", ["tensors", "dim"]),
    (torch.stack, "stack", ["tensors", "dim"]),
    (torch.split, "split", ["input", "split_size", "dim"]),
    (torch.chunk, "chunk", ["input", "chunks", "dim"]),
    (torch.unbind, "unbind", ["input", "dim"]), (torch.narrow, "narrow", ["input", "dim", "start", "length"]),
    (torch.select, "select", ["input", "dim", "index"]),
    (torch.flatten, "flatten", ["input", "start_dim", "end_dim"]),
    (torch.reshape, "reshape", ["input", "shape"]), (torch.squeeze, "squeeze", ["input", "dim"]),
    (torch.unsqueeze, "unsqueeze", ["input", "dim"]), (torch.permute, "permute", ["input", "dims"]),
    (torch.transpose, "transpose", ["input", "dim0", "dim1"]), (torch.t, "t", ["input"]),
    (torch.broadcast_to, "broadcast_to", ["input", "size"]),
    (torch.broadcast_tensors, "broadcast_tensors", ["*tensors"]),
    (torch.mean, "mean", ["input", "dim", "keepdim", "dtype"]),
    (torch.sum, "sum", ["input", "dim", "keepdim", "dtype"]),
    (torch.softmax, "softmax", ["input", "dim", "dtype"]),
    (torch.clone, "clone", ["input"]), (torch.detach, "detach", ["input"]),
    (F.relu, "relu", ["input", "inplace"]), (F.relu6, "relu6", ["input", "inplace"]),
    (F.hardtanh, "hardtanh", ["input", "min_val", "max_val", "inplace"]),
    (F.leaky_relu, "leaky_relu", ["input", "negative_slope", "inplace"]),
    (F.silu, "silu", ["input", "inplace"]), (F.gelu, "gelu", ["input", "approximate"]),
    (F.softplus, "softplus", ["input", "beta", "threshold"]),
    (F.tanh, "tanh", ["input"]), (F.sigmoid, "sigmoid", ["input"]),
    (F.softmax, "softmax", ["input", "dim", "_stacklevel", "dtype"]),
    (F.linear, "linear", ["input", "weight", "bias"]),
    (F.conv1d, "conv1d", ["input", "weight", "bias", "stride", "padding", "dilation", "groups"]),
    (F.conv2d, "conv2d", ["input", "weight", "bias", "stride", "padding", "dilation", "groups"]),
    (F.conv3d, "conv3d", ["input", "weight", "bias", "stride", "padding", "dilation", "groups"]),
    (F.batch_norm, "batch_norm", ["input", "running_mean", "running_var", "weight", "bias",
                                  "training", "momentum", "eps"]),
    (F.layer_norm, "layer_norm", ["input", "normalized_shape", "weight", "bias", "eps"]),
    (F.max_pool1d, "max_pool1d", ["input", "kernel_size", "stride", "padding", "dilation",
                                  "ceil_mode", "return_indices"]),
    (F.max_pool2d, "max_pool2d", ["input", "kernel_size", "stride", "padding", "dilation",
                                  "ceil_mode", "return_indices"]),
    (F.max_pool3d, "max_pool3d", ["input", "kernel_size", "stride", "padding", "dilation",
                                  "ceil_mode", "return_indices"]),
    (F.avg_pool1d, "avg_pool1d", ["input", "kernel_size", "stride", "padding", "ceil_mode",
                                  "count_include_pad"]),
    (F.avg_pool2d, "avg_pool2d", ["input", "kernel_size", "stride", "padding", "ceil_mode",
                                  "count_include_pad", "divisor_override"]),
    (F.avg_pool3d, "avg_pool3d", ["input", "kernel_size", "stride", "padding", "ceil_mode",
                                  "count_include_pad", "divisor_override"]),
    (F.adaptive_avg_pool1d, "adaptive_avg_pool1d", ["input", "output_size"]),
    (F.adaptive_avg_pool2d, "adaptive_avg_pool2d", ["input", "output_size"]),
    (F.adaptive_avg_pool3d, "adaptive_avg_pool3d", ["input", "output_size"]),
    (F.dropout, "dropout", ["input", "p", "training", "inplace"]),
    (F.scaled_dot_product_attention, "scaled_dot_product_attention",
     ["query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa"]),
    (torch.masked_fill, "masked_fill", ["input", "mask", "value"]),
    (F.mse_loss, "mse_loss", ["input", "target", "size_average", "reduce", "reduction"]),
]

# Tensor methods: name -> (rule, names of the arguments after self; "*" collects varargs).
_FX_METHODS = {
    "add": ("add", ["other", "alpha"]), "sub": ("sub", ["other", "alpha"]),
    "mul": ("mul", ["other"]), "div": ("div", ["other", "rounding_mode"]),
    "neg": ("neg", []), "relu": ("relu", []), "relu_": ("relu_", []), "tanh": ("tanh", []),
    "sigmoid": ("sigmoid", []), "exp": ("exp", []), "log": ("log", []), "sqrt": ("sqrt", []),
    "rsqrt": ("rsqrt", []), "abs": ("abs", []), "sin": ("sin", []), "cos": ("cos", []),
    "reciprocal": ("reciprocal", []), "square": ("square", []), "pow": ("pow", ["exponent"]),
    "clamp": ("clamp", ["min", "max"]), "clip": ("clamp", ["min", "max"]),
    "maximum": ("maximum", ["other"]), "minimum": ("minimum", ["other"]),
    "matmul": ("matmul", ["other"]), "mm": ("mm", ["mat2"]), "bmm": ("bmm", ["mat2"]),
    "softmax": ("softmax", ["dim", "dtype"]),
    "mean": ("mean", ["dim", "keepdim", "dtype"]), "sum": ("sum", ["dim", "keepdim", "dtype"]),
    "view": ("view", ["*"]), "reshape": ("reshape", ["*"]), "expand": ("expand", ["*"]),
    "permute": ("permute", ["*dims"]), "flatten": ("flatten", ["start_dim", "end_dim"]),
    "unflatten": ("unflatten", ["dim", "sizes"]),
    "squeeze": ("squeeze", ["dim"]), "unsqueeze": ("unsqueeze", ["dim"]),
    "transpose": ("transpose", ["dim0", "dim1"]), "t": ("t", []),
    "view_as": ("view_as", ["other"]), "reshape_as": ("reshape_as", ["other"]),
    "expand_as": ("expand_as", ["other"]),
    "contiguous": ("contiguous", ["*"]), "clone": ("clone", ["*"]), "detach": ("detach", []),
    "to": ("method_to", ["*args"]), "type_as": ("type_as", ["other"]),
    "split": ("split", ["split_size", "dim"]), "chunk": ("chunk", ["chunks", "dim"]),
    "unbind": ("unbind", ["dim"]), "narrow": ("narrow", ["dim", "start", "length"]),
    "select": ("select", ["dim", "index"]), "masked_fill": ("masked_fill", ["mask", "value"]),
    "float": ("method_to", ["*args"]), "size": ("size", ["dim"]), "dim": ("dim", []),
}


def _fx_target_name(target):
    if isinstance(target, str):
        return target
    mod = getattr(target, "__module__", None) or ""
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or str(target)
    if mod in ("_operator", "operator"):
        return f"operator.{name}"
    if mod.startswith("torch.nn.functional") or mod == "torch._C._nn":
        return f"torch.nn.functional.{name}"
    if mod.startswith("torch") or not mod:
        return f"torch.{getattr(target, '__name__', name)}"
    return f"{mod}.{name}"


def _bind(names, args, kwargs):
    out = {}
    for i, n in enumerate(names):
        if n.startswith("*"):
            rest = list(args[i:])
            if len(rest) == 1 and isinstance(rest[0], (list, tuple, torch.Size)):
                rest = list(rest[0])
            out[n[1:] or "size"] = rest
            break
        if i < len(args):
            out[n] = args[i]
    if len(args) > len(names) and not any(n.startswith("*") for n in names):
        raise _Unsupported("unexpected extra positional arguments")
    for k, v in kwargs.items():
        out[k] = v
    if "args" in out:   # Tensor.to(...)/float()
        out["kwargs"] = dict(kwargs)
    return out


def _module_call(mod, args, kwargs):
    """call_module -> (rule name, named args)."""
    x = args[0] if args else kwargs.get("input")
    if isinstance(mod, nn.Linear):
        return "linear", {"input": x, "weight": mod.weight, "bias": mod.bias}
    if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        if mod.padding_mode != "zeros":
            raise _Unsupported(f"convolution padding_mode={mod.padding_mode!r}")
        return "conv", {"input": x, "weight": mod.weight, "bias": mod.bias, "stride": mod.stride,
                        "padding": mod.padding, "dilation": mod.dilation, "groups": mod.groups}
    if isinstance(mod, nn.modules.batchnorm._BatchNorm):
        return "batch_norm", {"input": x, "weight": mod.weight, "bias": mod.bias,
                              "running_mean": mod.running_mean, "running_var": mod.running_var,
                              "training": mod.training, "eps": mod.eps}
    if isinstance(mod, nn.LayerNorm):
        return "layer_norm", {"input": x, "normalized_shape": list(mod.normalized_shape),
                              "weight": mod.weight, "bias": mod.bias, "eps": mod.eps}
    if isinstance(mod, nn.ReLU):
        return ("relu_" if mod.inplace else "relu"), {"input": x}
    simple = {nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.SiLU: "silu", nn.ReLU6: "relu6",
              nn.Identity: "identity"}
    for cls, name in simple.items():
        if type(mod) is cls:
            return name, {"input": x}
    if isinstance(mod, nn.GELU):
        return "gelu", {"input": x, "approximate": mod.approximate}
    if isinstance(mod, nn.Softplus):
        return "softplus", {"input": x, "beta": mod.beta, "threshold": mod.threshold}
    if isinstance(mod, nn.LeakyReLU):
        return "leaky_relu", {"input": x, "negative_slope": mod.negative_slope}
    if isinstance(mod, nn.Hardtanh):
        return "hardtanh", {"input": x, "min_val": mod.min_val, "max_val": mod.max_val}
    if isinstance(mod, nn.Softmax):
        return "softmax", {"input": x, "dim": mod.dim}
    if isinstance(mod, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)):
        return "dropout", {"input": x, "train": mod.training}
    if isinstance(mod, (nn.Flatten, nn.Unflatten)):
        return "reshape", {"input": x}
    for d in (1, 2, 3):
        if isinstance(mod, getattr(nn, f"MaxPool{d}d")):
            return f"max_pool{d}d", {"input": x, "kernel_size": mod.kernel_size,
                                     "stride": mod.stride, "padding": mod.padding,
                                     "dilation": mod.dilation, "ceil_mode": mod.ceil_mode,
                                     "return_indices": mod.return_indices}
        if isinstance(mod, getattr(nn, f"AvgPool{d}d")):
            return f"avg_pool{d}d", {"input": x, "kernel_size": mod.kernel_size,
                                     "stride": mod.stride, "padding": mod.padding,
                                     "ceil_mode": mod.ceil_mode,
                                     "count_include_pad": mod.count_include_pad,
                                     "divisor_override": getattr(mod, "divisor_override", None)}
        if isinstance(mod, getattr(nn, f"AdaptiveAvgPool{d}d")):
            return f"adaptive_avg_pool{d}d", {"input": x, "output_size": mod.output_size}
    if isinstance(mod, nn.MultiheadAttention):
        names = ["query", "key", "value", "key_padding_mask", "need_weights", "attn_mask",
                 "average_attn_weights", "is_causal"]
        a = _bind(names, args, kwargs)
        a["module"] = mod
        return "multihead_attention", a
    if isinstance(mod, nn.MSELoss):
        return "mse_loss", {"input": x, "target": args[1] if len(args) > 1 else kwargs["target"],
                            "reduction": mod.reduction}
    raise _Unsupported(f"module {type(mod).__name__} has no lowering to torchlean.ir.v1")


# ----------------------------------------------------------------------------------------------
# Lowering driver
# ----------------------------------------------------------------------------------------------

class _NodeCtx:
    __slots__ = ("canon", "meta_shape", "torch_dtype", "arg_users", "kind_override")

    def __init__(self, canon, meta_shape, torch_dtype, arg_users):
        self.canon = canon
        self.meta_shape = meta_shape
        self.torch_dtype = torch_dtype
        self.arg_users = arg_users
        self.kind_override = None


def _meta_val(node):
    if "val" in node.meta:
        return node.meta["val"]
    return node.meta.get("tensor_meta")


def _shape_of(v):
    if hasattr(v, "shape"):   # FakeTensor / tensor, or FX ShapeProp's TensorMetadata
        try:
            return [int(d) for d in v.shape]
        except (TypeError, ValueError):
            return None
    return None


def _poison_from_meta(val):
    if isinstance(val, (tuple, list)) and not hasattr(val, "shape"):
        return tuple(_poison_from_meta(x) for x in val)
    shp = _shape_of(val)
    return _T(-1, shp if shp is not None else [], poisoned=True)


class _SourceInfo:
    def __init__(self, user_file):
        self.user_file = os.path.realpath(user_file) if user_file else None

    def from_stack(self, stack):
        """'file.py:12: code' for the user's frame in an FX stack_trace string."""
        if not stack:
            return None
        frames = re.findall(r'File "([^"]+)", line (\d+), in [^\n]*\n\s*([^\n]*)', stack)
        return self._pick([(f, int(n), code) for f, n, code in frames])

    def from_exception(self, exc):
        frames = [(f.filename, f.lineno, f.line or "") for f in traceback.extract_tb(exc.__traceback__)]
        return self._pick(frames)

    def _pick(self, frames):
        if not frames:
            return None
        chosen = None
        if self.user_file:
            for f, n, code in frames:
                if os.path.realpath(f) == self.user_file:
                    chosen = (f, n, code)
        if chosen is None:
            for f, n, code in frames:
                if f"{os.sep}torch{os.sep}" not in f and "<" not in f:
                    chosen = (f, n, code)
        if chosen is None:
            return None
        f, n, code = chosen
        return f"{os.path.basename(f)}:{n}: {code.strip()}"


class _Lowering:
    def __init__(self, graph, dtype, source, kind, fx_root=None, params=None,
                 allow_rounding=False):
        self.graph = graph
        self.b = _Builder(np.float64 if dtype == torch.float64 else np.float32, allow_rounding)
        self.torch_dtype = dtype
        self.source = source
        self.kind = kind              # "torch.export" or "fx"
        self.root = fx_root           # GraphModule (fx) for get_attr / call_module
        self.params = params or {}    # export: placeholder name -> tensor
        self.env = {}
        self.problems = []            # (target, reason, source)
        self.input_names = None

    # -- helpers -------------------------------------------------------------------------------
    def target_name(self, node):
        if node.op == "call_module":
            mod = self.root.get_submodule(str(node.target))
            return f"{type(mod).__name__} module self.{node.target}"
        if node.op == "call_method":
            return f"Tensor.{node.target}"
        if isinstance(node.target, torch._ops.OpOverload):
            return str(node.target)
        return _fx_target_name(node.target)

    def debug_target(self, node):
        if node.op == "call_module":
            mod = self.root.get_submodule(str(node.target))
            return f"call_module:{node.target}:{type(mod).__module__}.{type(mod).__name__}"
        return self.target_name(node)

    def resolve(self, obj):
        if isinstance(obj, torch.fx.Node):
            return self.env[obj]
        if isinstance(obj, tuple):
            return tuple(self.resolve(x) for x in obj)
        if isinstance(obj, list):
            return [self.resolve(x) for x in obj]
        if isinstance(obj, dict):
            return {k: self.resolve(v) for k, v in obj.items()}
        if isinstance(obj, slice):
            return slice(self.resolve(obj.start), self.resolve(obj.stop), self.resolve(obj.step))
        return obj

    def canon(self, node, args, kwargs):
        if node.op == "call_module":
            mod = self.root.get_submodule(str(node.target))
            return _module_call(mod, args, kwargs)
        if node.op == "call_method":
            entry = _FX_METHODS.get(node.target)
            if entry is None:
                raise _Unsupported(_REASONS.get(node.target, "no lowering to torchlean.ir.v1"))
            rule, names = entry
            a = _bind(names, args[1:], kwargs)
            a["input"] = args[0]
            return rule, a
        target = node.target
        if isinstance(target, torch._ops.OpOverload):
            schema = target._schema
            ns, _, name = schema.name.partition("::")
            if ns != "aten":
                raise _Unsupported(f"{ns} operators are not lowered")
            a = {}
            for i, arg in enumerate(schema.arguments):
                if i < len(args) and not arg.kwarg_only:
                    v = args[i]
                elif arg.name in kwargs:
                    v = kwargs[arg.name]
                elif arg.has_default_value():
                    v = arg.default_value
                else:
                    v = None
                a["input" if arg.name == "self" else arg.name] = v
            if name == "mse_loss":
                a.setdefault("reduction", 1)
            if name not in _RULES:
                raise _Unsupported(_REASONS.get(name, "no lowering to torchlean.ir.v1"))
            return name, a
        for fn, rule, names in _FX_FUNCS:
            if target is fn:
                return rule, _bind(names, args, kwargs)
        short = getattr(target, "__name__", "")
        raise _Unsupported(_REASONS.get(short, "no lowering to torchlean.ir.v1"))

    def fold(self, node, args, kwargs):
        """Evaluate a node whose inputs are all constants (parameters, buffers, numbers)."""
        try:
            with torch.no_grad():
                if node.op == "call_module":
                    return self.root.get_submodule(str(node.target))(*args, **kwargs)
                if node.op == "call_method":
                    return getattr(args[0], node.target)(*args[1:], **kwargs)
                return node.target(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - reported as an unsupported op
            raise _Unsupported(f"constant folding failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}")

    def lower_node(self, node):
        args = self.resolve(tuple(node.args))
        kwargs = self.resolve(dict(node.kwargs))
        if not _has_ir((args, kwargs)):
            v = self.fold(node, args, kwargs)
            src = args[0] if args else None
            if isinstance(v, torch.Tensor) and isinstance(src, torch.Tensor) and \
                    re.search(r"expand|broadcast_to", self.target_name(node)) and \
                    src.dim() == v.dim() and v.dim() > 0 and src.shape[0] == 1 and v.shape[0] > 1:
                # cls_token.expand(B, -1, -1): a per-sample constant broadcast over the batch,
                # not a constant sized by the captured batch, so the graph re-batches.
                return self.b.bcast(self.b.const(src), list(v.shape))
            return v
        rule, a = self.canon(node, args, kwargs)
        fn = _RULES.get(rule)
        if fn is None:
            raise _Unsupported(_REASONS.get(rule, "no lowering to torchlean.ir.v1"))
        users = None
        if node.args and isinstance(node.args[0], torch.fx.Node):
            users = len(node.args[0].users)
        mv = _meta_val(node)
        if isinstance(mv, (tuple, list)) and mv and not hasattr(mv, "shape"):
            mv = mv[0]     # e.g. max_pool2d_with_indices: (values, indices)
        ctx = _NodeCtx(rule, _shape_of(mv), self.torch_dtype, users)
        return fn(self.b, a, ctx)

    def module_path(self, node):
        """Dotted path of the nn.Module whose forward made this node ('' for the root)."""
        if node.op == "call_module":
            return f"{node.target} ({type(self.root.get_submodule(str(node.target))).__name__})"
        stack = node.meta.get("nn_module_stack")
        if not stack:
            return None
        path, cls = list(stack.values())[-1][:2]
        path = re.sub(r"^L\['self'\]\.?", "", str(path))
        path = re.sub(r"\._modules\['([^']*)'\]", r".\1", path)
        if not path:
            return None
        cls = getattr(cls, "__name__", None) or str(cls).rsplit(".", 1)[-1].strip("'>")
        return f"{path} ({cls})"

    def placeholder_value(self, node):
        if self.kind == "torch.export" and node.name not in self.input_names:
            if node.name not in self.params:
                raise CaptureError(f"exported program input {node.name} has no value")
            return self.params[node.name]
        shp = _shape_of(_meta_val(node))
        if shp is None:
            raise CaptureError(f"graph input {node.name} is not a tensor")
        if self.b.nodes:
            raise CaptureError("torchlean.ir.v1 has exactly one graph input; the captured graph "
                               "has several tensor inputs")
        return self.b.emit("input", [], shp)

    def run(self):
        outputs = None
        for node in self.graph.nodes:
            if node.op == "placeholder":
                self.env[node] = self.placeholder_value(node)
                continue
            if node.op == "get_attr":
                v = self.root
                for part in str(node.target).split("."):
                    v = getattr(v, part)
                self.env[node] = v.detach() if isinstance(v, torch.Tensor) else v
                continue
            if node.op == "output":
                outputs = node.args[0]
                continue
            self.b.target = self.debug_target(node)
            self.b.pending = []
            first_id = len(self.b.nodes)
            try:
                self.env[node] = self.lower_node(node)
            except _Unsupported as e:
                # Keep going (with a stand-in of the recorded shape) so every problem is listed.
                src = self.source.from_stack(node.meta.get("stack_trace"))
                self.problems.append((self.target_name(node), str(e), src,
                                      self.module_path(node)))
                self.env[node] = _poison_from_meta(_meta_val(node))
                continue
            if self.b.pending:
                src = self.source.from_stack(node.meta.get("stack_trace"))
                ids = list(range(first_id, len(self.b.nodes)))
                for note in self.b.pending:
                    note.update(op=self.target_name(node), module=self.module_path(node),
                                source=src, ids=ids)
                    self.b.notes.append(note)
        if not any(n["kind"] == "input" for n in self.b.nodes):
            raise CaptureError("the captured graph does not use its tensor input")
        out_vals = []
        for leaf in _walk(outputs if isinstance(outputs, (tuple, list, dict)) else [outputs]):
            v = self.env[leaf] if isinstance(leaf, torch.fx.Node) else leaf
            if v is None:
                continue
            if isinstance(v, torch.Tensor):
                self.b.target = "output constant"
                v = self.b.const(v)
            if not isinstance(v, _T):
                raise CaptureError(f"model output of type {type(v).__name__} is not a tensor")
            out_vals.append(v)
        if not out_vals:
            raise CaptureError("the model returns no tensor")
        return out_vals


def _finish_graph(builder, outs, inline, debug):
    """Dead-code elimination, renumbering, params naming. Returns (doc, params dict, id map)."""
    keep = set()
    stack = [o.id for o in outs]
    while stack:
        i = stack.pop()
        if i in keep:
            continue
        keep.add(i)
        stack.extend(builder.nodes[i]["parents"])
    input_old = next(n["id"] for n in builder.nodes if n["kind"] == "input")
    keep.add(input_old)
    remap = {}
    for n in builder.nodes:
        if n["id"] in keep:
            remap[n["id"]] = len(remap)
    nodes, params = [], {}
    for n in builder.nodes:
        if n["id"] not in keep:
            continue
        nid = remap[n["id"]]
        pid = nid                  # params.bin names carry the file's node ids
        out = {"id": nid, "kind": n["kind"], "parents": [remap[p] for p in n["parents"]],
               "shape": n["shape"]}
        if "tuple_shapes" in n["fields"]:
            del out["shape"]                  # a tuple value has tuple_shapes instead
        if n["kind"] == "multihead_attention":
            # Inline: TorchLean's q_/k_/v_/out_weight and _bias.  Otherwise in params.bin under
            # the same field names prefixed like every other parameter
            # ("multihead_attention_<id>_q_weight"), which tlrt's importer binds to the linears
            # its lowering generates.
            for name in ("q", "k", "v", "out"):
                for suffix in ("weight", "bias"):
                    arr = n["payload"][f"{name}_{suffix}"]
                    if inline:
                        out[f"{name}_{suffix}"] = arr.astype(np.float64).tolist()
                    else:
                        params[f"multihead_attention_{pid}_{name}_{suffix}"] = arr
        out.update(n["fields"])
        for key, fmt in _PARAM_SLOTS.get(n["kind"], ()):
            arr = n["payload"][key]
            if inline:
                if not np.all(np.isfinite(arr)):
                    raise CaptureError(f"node[{nid}] ({n['kind']}): non-finite {key} values cannot "
                                       f"be written inline in JSON; drop --inline-params")
                groups = n["fields"].get("groups", 1) if n["kind"] == "conv" else 1
                if key == "weight" and groups > 1:
                    # TorchLean's form: the dense block-diagonal [out, in, k...] (zeros off the
                    # group blocks); params.bin keeps PyTorch's packed [out, in/groups, k...]
                    o, ig = arr.shape[:2]
                    og = o // groups
                    dense = np.zeros((o, ig * groups) + arr.shape[2:], arr.dtype)
                    for k in range(groups):
                        dense[k * og:(k + 1) * og, k * ig:(k + 1) * ig] = arr[k * og:(k + 1) * og]
                    arr = dense
                out[key] = [float(v) for v in arr.reshape(-1)] if key == "values" else \
                    arr.astype(np.float64).tolist()
            else:
                params[fmt.format(pid)] = arr
        if debug and n["target"] is not None:
            out["target"] = n["target"]
        nodes.append(out)
    doc = {"format": FORMAT, "input_id": remap[input_old],
           "output_ids": [remap[o.id] for o in outs], "nodes": nodes}
    return doc, params, remap


def _graph_json_text(doc):
    lines = ["{", f'  "format": {json.dumps(doc["format"])},',
             f'  "input_id": {doc["input_id"]},',
             f'  "output_ids": {json.dumps(doc["output_ids"])},', '  "nodes": [']
    for i, n in enumerate(doc["nodes"]):
        lines.append("    " + json.dumps(n, allow_nan=False) + ("," if i + 1 < len(doc["nodes"]) else ""))
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def _safetensors_bytes(params):
    header, blobs, off = {}, [], 0
    for name in sorted(params):
        arr = np.array(params[name], order="C")
        dt = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64"}[arr.dtype]
        raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dt, "shape": [int(d) for d in arr.shape],
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"format": "pt", "producer": "tlrt capture adapter"}
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    return len(hjson).to_bytes(8, "little") + hjson + b"".join(blobs)


def _npy_bytes(arr, dtype=np.float32):
    buf = io.BytesIO()
    np.save(buf, np.array(arr, dtype=dtype, order="C"))
    return buf.getvalue()


def _first_line(e):
    s = str(e).strip()
    return (s.splitlines()[0] if s else type(e).__name__)[:300]


# ----------------------------------------------------------------------------------------------
# Capture
# ----------------------------------------------------------------------------------------------

class _Rejected(CaptureError):
    """Unsupported operations (every one of them, with its source line)."""

    def __init__(self, problems, name="the model"):
        super().__init__(f"{len(problems)} unsupported operation(s)")
        self.problems = problems
        self.name = name

    def __str__(self):
        return _format_rejection(self.name, self.problems)


def _lower_export(ep, dtype, source, allow_rounding=False):
    sig = ep.graph_signature
    bad_out = [s for s in sig.output_specs if s.kind.name != "USER_OUTPUT"]
    if bad_out:
        raise CaptureError("the model mutates its state in forward (" +
                           ", ".join(f"{s.kind.name.lower()} {s.target}" for s in bad_out) +
                           "); torchlean.ir.v1 graphs are pure")
    values = {}
    state, consts = dict(ep.state_dict), dict(getattr(ep, "constants", {}) or {})
    user = set()
    for spec in sig.input_specs:
        if spec.kind.name == "USER_INPUT":
            user.add(spec.arg.name)
            continue
        v = state.get(spec.target, consts.get(spec.target))
        values[spec.arg.name] = v.detach() if isinstance(v, torch.Tensor) else v
    if len(user) != 1:
        raise CaptureError(f"torchlean.ir.v1 has exactly one graph input; the exported program "
                           f"has {len(user)} user inputs")
    low = _Lowering(ep.graph, dtype, source, "torch.export", fx_root=ep.graph_module, params=values,
                    allow_rounding=allow_rounding)
    low.input_names = user
    outs = low.run()
    if low.problems:
        raise _Rejected(low.problems)
    return low.b, outs


def _lower_fx(model, example, dtype, source, allow_rounding=False):
    from torch.fx.passes.shape_prop import ShapeProp
    tracer = torch.fx.Tracer()
    tracer.record_stack_traces = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = tracer.trace(model)
        gm = torch.fx.GraphModule(tracer.root, graph)
        ShapeProp(gm).propagate(example)
    low = _Lowering(gm.graph, dtype, source, "fx", fx_root=gm, allow_rounding=allow_rounding)
    outs = low.run()
    if low.problems:
        raise _Rejected(low.problems)
    return low.b, outs


class _QuietTorch:
    """torch.export logs pages of diagnostics when it fails; the adapter reports one line."""

    def __enter__(self):
        self.warnings = warnings.catch_warnings()
        self.warnings.__enter__()
        warnings.simplefilter("ignore")
        self.disabled = logging.root.manager.disable
        logging.disable(logging.CRITICAL)
        self.stderr = contextlib.redirect_stderr(io.StringIO())
        self.stderr.__enter__()
        return self

    def __exit__(self, *exc):
        self.stderr.__exit__(*exc)
        logging.disable(self.disabled)
        self.warnings.__exit__(*exc)
        return False


def _mutates(ep):
    """The exported graph has in-place ATen ops (out += identity, relu_, ...)."""
    for node in ep.graph.nodes:
        t = node.target
        if node.op == "call_function" and isinstance(t, torch._ops.OpOverload) and \
                t._schema.is_mutable:
            return True
    return False


def _data_dependent(err):
    text = f"{type(err).__name__} {err}"
    return any(w in text for w in ("DataDependent", "data-dependent", "data dependent"))


def _capture(model, example, prefer_export, dtype, source, name, allow_rounding=False):
    """Returns (builder, outputs, how)."""
    first_rejection = None
    export_err = None
    if prefer_export:
        try:
            with _QuietTorch():
                ep = torch.export.export(model, (example,))
                if _mutates(ep):
                    # Functionalize only (an empty decomposition table keeps every op as it is):
                    # in-place ops on intermediate values become their functional forms; a
                    # mutated input or buffer shows up in the signature and is refused below.
                    ep = ep.run_decompositions({})
        except Exception as e:  # noqa: BLE001
            export_err = e
        else:
            try:
                b, outs = _lower_export(ep, dtype, source, allow_rounding)
                return b, outs, "torch.export"
            except _Rejected as r:
                first_rejection = r
    try:
        b, outs = _lower_fx(model, example, dtype, source, allow_rounding)
    except _Rejected as r:
        r = first_rejection or r
        r.name = name
        raise r
    except CaptureError:
        if first_rejection:
            first_rejection.name = name
            raise first_rejection
        raise
    except Exception as fx_err:  # noqa: BLE001
        if first_rejection:
            first_rejection.name = name
            raise first_rejection
        where = source.from_exception(fx_err) or (source.from_exception(export_err) if export_err else None)
        msg = f"cannot capture {name}: "
        if export_err is not None:
            msg += f"torch.export failed ({_first_line(export_err)}) and "
        msg += f"FX symbolic tracing failed ({_first_line(fx_err)})"
        if where:
            msg += f" at {where}"
        if export_err is not None and _data_dependent(export_err):
            msg += ("; data-dependent Python control flow (if/while on tensor values) cannot be "
                    "represented in torchlean.ir.v1")
        elif export_err is None and "control flow" in str(fx_err):
            msg += ("; FX cannot follow Python control flow on traced values (torch.export "
                    "follows control flow on shapes)")
        raise CaptureError(msg)
    if not prefer_export:
        how = "FX symbolic tracing (torch.export disabled)"
    elif export_err is not None:
        how = f"FX symbolic tracing (torch.export failed: {_first_line(export_err)})"
    else:
        ops = sorted({p[0] for p in first_rejection.problems})
        how = (f"FX symbolic tracing (torch.export's graph has "
               f"{len(first_rejection.problems)} unsupported operation(s): {', '.join(ops)})")
    return b, outs, how


def _where(src, module):
    where = f"at {src}" if src else "source line unknown"
    if module:
        where += f"; module {module}"
    return where


def _format_rejection(name, problems):
    seen, lines = set(), []
    for target, reason, src, module in problems:
        key = (target, reason, src, module)   # one line per module instance, not per source line
        if key in seen:
            continue
        seen.add(key)
        lines.append(f"  {target}: {reason} ({_where(src, module)})")
    head = f"cannot lower {name} to torchlean.ir.v1: {len(lines)} unsupported operation(s):"
    return "\n".join([head] + lines)


def _atomic_write_all(files):
    """files: list of (path, bytes). Write temp files next to each target, then rename all."""
    temps = []
    umask = os.umask(0)
    os.umask(umask)
    try:
        for path, data in files:
            d = os.path.dirname(os.path.abspath(path))
            fd, tmp = tempfile.mkstemp(prefix=".tl_capture_", dir=d)
            temps.append(tmp)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o666 & ~umask)   # mkstemp makes 0600; give the usual permissions
        for (path, _), tmp in zip(files, temps, strict=False):
            os.replace(tmp, path)
    except BaseException:
        for tmp in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise


def lowering_report_path(graph_path):
    """Where the lowering report goes: graph.json -> graph.lowering.json."""
    graph_path = str(graph_path)
    stem = graph_path[:-5] if graph_path.endswith(".json") else graph_path
    return stem + ".lowering.json"


def _lowering_report(builder, remap, doc, allow_rounding):
    entries = []
    for note in builder.notes:
        ids = sorted(remap[i] for i in note["ids"] if i in remap)
        if not ids:
            continue                       # lowered, then dropped as dead code
        e = {"class": note["class"], "op": note["op"], "what": note["what"], "nodes": ids,
             "source": note["source"], "module": note["module"]}
        if note["class"] == "rounded":
            e["ulp"] = note["ulp"]
            if note["bound"]:
                e["bound"] = note["bound"]
        entries.append(e)
    return {"format": "tlrt.lowering_report.v1", "graph_format": doc["format"],
            "allow_rounding": bool(allow_rounding),
            "counts": {c: sum(e["class"] == c for e in entries)
                       for c in ("exact-for-finite", "rounded")},
            "lowerings": entries}


def _report_lines(report):
    lines = []
    for e in report["lowerings"]:
        cls = e["class"]
        if cls == "rounded":
            cls += f" (<= {e['ulp']} ulp)" if e.get("ulp") is not None else f" ({e['bound']})"
        lines.append(f"  {cls}: {e['op']}: {e['what']} ({_where(e['source'], e['module'])}; "
                     f"nodes {e['nodes']})")
    return lines


def _check_output_paths(graph_path, params_path, save_example):
    for what, path in (("graph", graph_path), ("params", params_path)):
        if path is None:
            continue
        path = str(path)
        if os.path.isdir(path):
            raise CaptureError(f"{path}: the {what} path is a directory")
        d = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(d):
            raise CaptureError(f"{path}: directory {d} does not exist")
    if save_example is not None and os.path.exists(save_example) and \
            not os.path.isdir(save_example):
        raise CaptureError(f"--save-example {save_example}: not a directory")


def export_torchlean_graph(module, example_inputs, graph_path, params_path=None, *,
                           inline_params=False, save_example=None, prefer_torch_export=None,
                           debug_targets=None, source_file=None, log=print, allow_rounding=False):
    """Capture `module` (an nn.Module) on `example_inputs` (one tensor, or a 1-tuple) and write a
    torchlean.ir.v1 graph to graph_path and its parameters to params_path (default: params.bin
    next to the graph; none with inline_params=True).  save_example=DIR also writes
    DIR/input.npy and DIR/output_<i>.npy (PyTorch eager outputs; float64 for a float64 example,
    else float32).
    The lowering report (every lowering that is not exact, with its class, op, source line and
    module) is written to graph.lowering.json next to the graph.  allow_rounding=True admits
    lowerings that round differently from PyTorch (--allow-rounding).
    Raises CaptureError (bad input, unsupported operations: all listed) and writes nothing then.
    Returns a dict: method, nodes, outputs, params (names), graph (the JSON document), report."""
    if prefer_torch_export is None:
        prefer_torch_export = PREFER_TORCH_EXPORT
    if debug_targets is None:
        debug_targets = INCLUDE_DEBUG_TARGETS
    if not isinstance(module, nn.Module):
        raise CaptureError(f"expected an nn.Module, got {type(module).__name__}")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    example_inputs = tuple(example_inputs)
    name = type(module).__name__
    if len(example_inputs) != 1:
        raise CaptureError(f"torchlean.ir.v1 graphs have exactly one input; got "
                           f"{len(example_inputs)} example inputs for {name} (wrap several tensors "
                           f"into one, e.g. torch.cat, inside the model)")
    example = example_inputs[0]
    if not isinstance(example, torch.Tensor) or not example.is_floating_point():
        raise CaptureError("the example input must be a floating-point tensor")
    try:
        sig = inspect.signature(module.forward)
        required = [p.name for p in sig.parameters.values()
                    if p.default is inspect.Parameter.empty
                    and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        required = []
    if len(required) > 1:
        raise CaptureError(f"{name}.forward takes {len(required)} tensor inputs "
                           f"({', '.join(required)}); torchlean.ir.v1 graphs have exactly one input")
    _check_output_paths(graph_path, params_path, save_example)
    module.eval()
    dtype = example.dtype
    if source_file is None:
        try:
            source_file = inspect.getsourcefile(type(module))
        except (TypeError, OSError):
            source_file = None
    source = _SourceInfo(source_file)
    # A model that does not run eagerly on the example cannot be captured either; say so plainly
    # instead of reporting it as a capture failure.
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module(example)
    except Exception as e:  # noqa: BLE001 - any eager failure is the user's input problem
        msg = " ".join(str(e).split())
        raise CaptureError(f"{name} does not run on an example input of shape "
                           f"{tuple(example.shape)} ({type(e).__name__}: {msg}); "
                           f"check --example-shape") from None
    builder, outs, how = _capture(module, example, prefer_torch_export, dtype, source, name,
                                  allow_rounding)
    doc, params, remap = _finish_graph(builder, outs, inline_params, debug_targets)
    report = _lowering_report(builder, remap, doc, allow_rounding)
    report_path = lowering_report_path(graph_path)

    files = [(graph_path, _graph_json_text(doc).encode()),
             (report_path, (json.dumps(report, indent=1) + "\n").encode())]
    if not inline_params:
        if params_path is None:
            params_path = os.path.join(os.path.dirname(os.path.abspath(graph_path)), "params.bin")
        files.append((params_path, _safetensors_bytes(params)))
    if save_example is not None:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eager = module(example)
        leaves = [t for t in _walk(eager if isinstance(eager, (tuple, list, dict)) else [eager])
                  if t is not None]
        if len(leaves) != len(doc["output_ids"]):
            raise CaptureError(f"eager run returned {len(leaves)} tensors but the graph has "
                               f"{len(doc['output_ids'])} outputs")
        os.makedirs(save_example, exist_ok=True)
        # in the capture's dtype: a float64 capture keeps its float64 input and outputs, which
        # tldiff then uses as its float64 reference
        npy_dt = np.float64 if dtype == torch.float64 else np.float32
        files.append((os.path.join(save_example, "input.npy"),
                      _npy_bytes(example.detach().cpu().numpy(), npy_dt)))
        for i, t in enumerate(leaves):
            files.append((os.path.join(save_example, f"output_{i}.npy"),
                          _npy_bytes(t.detach().to(torch.float64 if npy_dt is np.float64 else torch.float32)
                                     .cpu().numpy(), npy_dt)))
    _atomic_write_all(files)
    if log:
        log(f"captured with {how}")
        log(f"wrote {graph_path} ({len(doc['nodes'])} nodes, outputs {doc['output_ids']})" +
            ("" if inline_params else f", {params_path} ({len(params)} tensors)"))
        n = len(report["lowerings"])
        log(f"lowering report {report_path}: " + (
            "every lowering is exact" if n == 0 else
            f"{report['counts']['exact-for-finite']} exact-for-finite, "
            f"{report['counts']['rounded']} rounded (the rest exact):"))
        for line in _report_lines(report):
            log(line)
    return {"method": how, "nodes": len(doc["nodes"]), "outputs": doc["output_ids"],
            "params": sorted(params), "graph": doc, "report": report}


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

def _parse_shape(text):
    text = text.strip()
    if text in ("", "()", "[]"):
        return []
    try:
        dims = [int(x) for x in text.replace("x", ",").split(",") if x.strip() != ""]
    except ValueError:
        raise CaptureError(f"--example-shape {text!r}: expected comma-separated sizes, e.g. 1,4")
    if any(d < 0 for d in dims):
        raise CaptureError(f"--example-shape {text!r}: sizes must be >= 0")
    return dims


def _load_npy(path, dtype):
    if not os.path.isfile(path):
        raise CaptureError(f"--example-input {path}: no such file")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001
        raise CaptureError(f"--example-input {path}: not a .npy file ({_first_line(e)})")
    if arr.dtype.kind not in "fiu":
        raise CaptureError(f"--example-input {path}: dtype {arr.dtype} is not numeric")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64)).to(dtype)


def _load_model(path, ctor_name, seed):
    if not os.path.isfile(path):
        raise CaptureError(f"{path}: no such file")
    stem = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(f"tl_user_model_{re.sub(r'[^0-9A-Za-z_]', '_', stem)}", path)
    if spec is None or spec.loader is None:
        raise CaptureError(f"{path}: cannot load as a Python module")
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        spec.loader.exec_module(mod)
    except Exception as e:  # noqa: BLE001
        raise CaptureError(f"{path}: import failed: {type(e).__name__}: {_first_line(e)}")
    finally:
        sys.path.pop(0)
    ctor = getattr(mod, ctor_name, None)
    if ctor is None or not callable(ctor):
        raise CaptureError(f"{path}: no class or factory function named {ctor_name}")
    torch.manual_seed(seed)
    try:
        model = ctor()
    except Exception as e:  # noqa: BLE001
        raise CaptureError(f"{path}: {ctor_name}() failed: {type(e).__name__}: {_first_line(e)}")
    if not isinstance(model, nn.Module):
        raise CaptureError(f"{path}: {ctor_name}() returned {type(model).__name__}, not an nn.Module")
    return model


def main(argv=None):
    p = argparse.ArgumentParser(description="Capture a PyTorch nn.Module as a torchlean.ir.v1 graph.")
    p.add_argument("model_file")
    p.add_argument("model_name", help="nn.Module class (zero-argument constructor) or factory function")
    p.add_argument("graph_json")
    p.add_argument("--example-shape", action="append", default=None,
                   help="shape of the example input, e.g. 1,4 (the IR has one input); a seeded "
                   "randn input of that shape is used")
    p.add_argument("--example-input", metavar="NPY", default=None,
                   help="the example input as a .npy file (instead of --example-shape)")
    p.add_argument("--allow-rounding", action="store_true",
                   help="admit lowerings that round differently from PyTorch (listed in the "
                   "lowering report with their ulp bound)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                   help="capture dtype: float64 keeps the model, params.bin (F64), the example input "
                   "and the saved outputs in float64 (tlemit pytorch then emits DTYPE float64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--params", default=None, help="params.bin path (default: next to the graph)")
    p.add_argument("--inline-params", action="store_true",
                   help="write payloads inline in the JSON (TorchLean style), no params.bin")
    p.add_argument("--save-example", metavar="DIR", default=None,
                   help="write DIR/input.npy and DIR/output_<i>.npy (PyTorch eager; float64 with "
                   "--dtype float64, else float32)")
    p.add_argument("--no-torch-export", action="store_true", help="capture with FX symbolic tracing")
    p.add_argument("--debug-targets", action="store_true", help='write "target" per node')
    args = p.parse_args(argv)
    try:
        if args.inline_params and args.params:
            raise CaptureError("--params and --inline-params exclude each other")
        if (args.example_shape is None) == (args.example_input is None):
            raise CaptureError("give the example input as --example-shape or --example-input "
                               "(exactly one of them)")
        dtype = getattr(torch, args.dtype)
        if args.example_input is not None:
            examples = (_load_npy(args.example_input, dtype),)
        else:
            shapes = [_parse_shape(s) for s in args.example_shape]
        model = _load_model(args.model_file, args.model_name, args.seed)
        model = model.to(dtype).eval()
        if args.example_input is None:
            gen = torch.Generator().manual_seed(args.seed)
            examples = tuple(torch.randn(s, generator=gen, dtype=dtype) for s in shapes)
        export_torchlean_graph(
            model, examples, args.graph_json, args.params, inline_params=args.inline_params,
            save_example=args.save_example,
            prefer_torch_export=False if args.no_torch_export else PREFER_TORCH_EXPORT,
            debug_targets=True if args.debug_targets else INCLUDE_DEBUG_TARGETS,
            source_file=args.model_file, allow_rounding=args.allow_rounding)
    except CaptureError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e.filename or ''}{': ' if e.filename else ''}{e.strerror or e}",
              file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - one line, never a traceback
        print(f"error: internal error in the capture adapter: {type(e).__name__}: "
              f"{_first_line(e)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
