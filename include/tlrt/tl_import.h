/* tl_import.h - turning untrusted files into checked structures (or one-line errors).
 * Every message starts with the file name given by the caller, then the place:
 *   graph.json: node[7].perm: expected array of naturals, got "x"
 *   params.bin: tensor "linear_3_W": shape [4, 3] does not match node[3] (expected [3, 4])
 *   input.npy: header: fortran_order True is not supported (write C order)
 * Ownership: every `out` object (tl_graph, tl_tensor, buffer) is the caller's on success — free
 * with tl_graph_free / tl_tensor_free / free — and untouched (NULL) on failure. Parameters bound
 * to a graph belong to the graph. `buf` arguments are borrowed for the call only. */
#ifndef TL_IMPORT_H
#define TL_IMPORT_H
#include <stdbool.h>
#include <stddef.h>
#include "tl_graph.h"

/* ---- graph JSON (torchlean.ir.v1) ---- */
/* Parse + validate (tl_graph_validate) + bind inline payloads (weight/bias/values/gamma/...).
 * multihead_attention tuple nodes are lowered like TorchLean does (see README). */
int tl_graph_load_json(const char *path, tl_graph **out, tl_err *err);
int tl_graph_parse_json(const char *buf, size_t len, const char *name, tl_graph **out, tl_err *err);
/* Write the graph; inline_params=true writes payloads inline (TorchLean reads that form),
 * false writes the small form that goes with params.bin. */
int tl_graph_save_json(const tl_graph *g, const char *path, bool inline_params, tl_err *err);

/* ---- params.bin (safetensors) ---- */
/* Bind every tensor to its node slot by name (tl_param_name). Missing, extra, wrong shape, bad
 * dtype, offsets outside the file or overlapping -> error. F32 is used in place; F64/F16/BF16 are
 * converted to float32. */
int tl_params_load(tl_graph *g, const char *path, tl_err *err);
int tl_params_parse(tl_graph *g, const void *buf, size_t len, const char *name, tl_err *err);
/* After loading: every slot of every node must be bound (from params.bin or inline). */
int tl_params_check_complete(const tl_graph *g, const char *name, tl_err *err);
int tl_params_save(const tl_graph *g, const char *path, tl_err *err);

/* ---- .npy ---- */
/* v1/v2/v3 headers; <f4 <f8 <i4 <i8 (and |u1 |b1) converted to float32; C order only. */
int tl_npy_load(const char *path, tl_tensor **out, tl_err *err);
int tl_npy_parse(const void *buf, size_t len, const char *name, tl_tensor **out, tl_err *err);
/* float32 .npy (v1 header), written atomically: temp file in the same directory + rename. */
int tl_npy_save(const char *path, const tl_shape *shape, const float *data, tl_err *err);
/* A graph input (tlrun, the Python package): only <f4 and <f8 are accepted (the IR declares no
 * input dtype, so an integer / float16 / bool array is a TL_ERR_BAD_INPUT error naming the file
 * and its dtype). `data` holds the float32 values (float64 rounded to nearest); f64: `data64`
 * also holds the exact values (float64 as stored, float32 widened). *descr (may be NULL):
 * the file's dtype ("<f4", "<f8", ...), static. */
int tl_npy_load_input(const char *path, bool f64, tl_tensor **out, const char **descr, tl_err *err);
/* float64 .npy ('<f8'), written like tl_npy_save. */
int tl_npy_save_f64(const char *path, const tl_shape *shape, const double *data, tl_err *err);

/* Read a whole file (for the *_parse entry points). Returns malloc'ed buffer. */
int tl_read_file(const char *path, char **buf, size_t *len, tl_err *err);
/* Write nparts buffers, in order, as the whole file `path`, atomically: a temporary file in the
 * same directory, fsync, rename over `path`. Errors name `path`. (added by the params/npy work) */
int tl_write_file_atomic(const char *path, int nparts, const void *const *bufs, const size_t *lens, tl_err *err);

#endif
