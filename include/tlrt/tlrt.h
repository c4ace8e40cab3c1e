/* tlrt.h - the public C API of tlrt, one include:
 *   tl_err.h      typed one-line errors (every fallible call)
 *   tl_shape.h    shapes
 *   tl_ops.h      the op table (tl_ops.def) and attributes
 *   tl_graph.h    the in-memory torchlean.ir.v1 graph (read it; build it via tl_import.h)
 *   tl_import.h   graph JSON, params.bin (safetensors), .npy: read, validate, write
 *   tl_runtime.h  model + session: plan once per input shape, run without allocating
 *   tl_cpu.h      ISA, threads, BLAS (process-wide)
 *   tl_emit.h     PyTorch module emitter, capture-script printer
 *   tl_diff.h     element comparison statistics (tldiff)
 *   tl_torchlean.h  TorchLean conformance: grouped-conv layouts, the strict check, converters
 * Everything else in the source tree (ir/, ops/, kernels/, runtime/..._internal.h) is private.
 * Each header states who owns what its functions return and for how long it is valid. */
#ifndef TLRT_H
#define TLRT_H
#include "tl_cpu.h"
#include "tl_diff.h"
#include "tl_emit.h"
#include "tl_err.h"
#include "tl_graph.h"
#include "tl_import.h"
#include "tl_ops.h"
#include "tl_runtime.h"
#include "tl_shape.h"
#include "tl_torchlean.h"
#endif
