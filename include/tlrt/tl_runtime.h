/* tl_runtime.h - the public C API of tlrt: load a model once, plan it per input shape, run it
 * with no allocation in steady state.
 *
 *   tl_err err;
 *   tl_model *m;  tl_session *s;
 *   if (tl_model_open("graph.json", "params.bin", &m, &err)) { puts(err.msg); return 2; }
 *   tl_shape in = ...;                       // captured shape, or another leading (batch) dim
 *   if (tl_session_new(m, &in, 0, &s, &err)) ...
 *   tl_session_run(s, input, &err);          // input: tl_shape_numel(&in) floats
 *   const float *y = tl_session_output(s, 0, &yshape);
 *
 * Ownership and lifetimes:
 *   - tl_model owns its graph and every parameter tensor; free it with tl_model_free after every
 *     session made from it is freed (a session borrows its model).
 *   - tl_session owns its plan, arena and folded constants; tl_session_free releases them.
 *   - `input` of tl_session_run is borrowed for the call only (copied into the arena).
 *   - Pointers returned by tl_session_output / tl_session_node_value / tl_session_node_shape
 *     point into the session; the values are valid until the next tl_session_run on that
 *     session or its tl_session_free.
 *   - tl_model_graph returns the model's graph (borrowed, valid while the model lives).
 *   - Every string from tl_session_node_plan is static.
 * Threads: a model may be shared by sessions on several threads (it is read-only after loading);
 * one session must not be run from two threads at once. tl_cpu.h's settings are process-global.
 * Errors: -1 with `err` filled (one line, err->kind says bad input / unsupported / out of
 * memory / I/O / internal; tl_err_exit_status maps it to a tool's exit status). */
#ifndef TL_RUNTIME_H
#define TL_RUNTIME_H
#include <stdbool.h>
#include <stdint.h>
#include "tl_graph.h"
#include "tl_cpu.h"

typedef struct tl_model tl_model;
typedef struct tl_session tl_session;

/* Load graph JSON (+ params.bin, or NULL when the graph carries its payloads inline), validate,
 * bind and check parameters. */
int tl_model_open(const char *graph_path, const char *params_path, tl_model **out, tl_err *err);
/* Take ownership of an already loaded + bound graph (on success the model frees it; on failure
 * the caller still owns it). */
int tl_model_from_graph(tl_graph *g, tl_model **out, tl_err *err);
void tl_model_free(tl_model *m);
const tl_graph *tl_model_graph(const tl_model *m);

enum {
    TL_SESSION_KEEP_ALL = 1, /* no buffer reuse: every node's value stays readable after run */
    TL_SESSION_PROFILE = 2,  /* time every node (tl_session_node_ns) */
    TL_SESSION_EXACT = 4,    /* follow the IR node by node: no plan-time rewrite that changes
                                * rounding (today: batch norm folded into the producing conv or
                                * linear's weights); every result is then each node's own
                                * kernel on its parents' values */
    TL_SESSION_FLOAT64 = 8,  /* run every op in double (docs/float64.md): the reference run of
                                * TorchLean's own Float (binary64) evaluator. Implies EXACT.
                                * Parameters are widened once at session creation (or read at
                                * their source's precision: tl_tensor.data64). Use the _f64 entry
                                * points; the float32 ones fail on such a session (and the _f64
                                * ones on a float32 session) */
    /* run a batch through one plan at the full batch. By default a float32 batch whose
     * activations overflow L2 runs as several smaller batches of the same plan (docs/threads.md) */
    TL_SESSION_NO_MICROBATCH = 16,
};

/* Build the execution plan for this input shape: order, liveness, one arena with reuse and
 * in-place elementwise ops. An input whose leading dim differs from the captured one runs as
 * that many samples when the graph allows it; otherwise a clear error. */
int tl_session_new(tl_model *m, const tl_shape *input_shape, int flags, tl_session **out, tl_err *err);
void tl_session_free(tl_session *s);
/* Execute. `input` has tl_shape_numel(input_shape) floats. Allocates nothing. */
int tl_session_run(tl_session *s, const float *input, tl_err *err);
int tl_session_n_outputs(const tl_session *s);
const float *tl_session_output(const tl_session *s, int i, tl_shape *shape);
/* Value of any node after a run (needs TL_SESSION_KEEP_ALL unless it is an output). */
const float *tl_session_node_value(const tl_session *s, int64_t id, tl_shape *shape, tl_err *err);
/* Per-node time of the last run in ns (TL_SESSION_PROFILE). */
int64_t tl_session_node_ns(const tl_session *s, int64_t id);
/* Evaluate one node in isolation on given parent values (per-node diff in isolated mode).
 * parent_values[i] holds the parent's declared shape; out holds the node's shape. */
int tl_session_eval_node(tl_session *s, int64_t id, const float *const *parent_values, float *out, tl_err *err);
/* ---- float64 sessions (TL_SESSION_FLOAT64): the same contracts in double ---- */
bool tl_session_is_f64(const tl_session *s);
/* `input` has tl_shape_numel(input_shape) doubles. Allocates nothing. */
int tl_session_run_f64(tl_session *s, const double *input, tl_err *err);
/* NULL for a bad index or a float32 session */
const double *tl_session_output_f64(const tl_session *s, int i, tl_shape *shape);
const double *tl_session_node_value_f64(const tl_session *s, int64_t id, tl_shape *shape, tl_err *err);
/* tl_session_eval_node in double (float64 session only) */
int tl_session_eval_node_f64(tl_session *s, int64_t id, const double *const *parent_values, double *out, tl_err *err);
/* Bytes of the activation arena (memory plan) and of the parameters. */
int64_t tl_session_arena_bytes(const tl_session *s);
int64_t tl_model_param_bytes(const tl_model *m);
/* Shape of node `id` in this session (the batch may differ from the declared shape). */
const tl_shape *tl_session_node_shape(const tl_session *s, int64_t id);
/* What a run does for node `id`: "run" (executed every run), "input" (copied in), "fused"
 * (computed by its parent's step: a batch norm folded into a conv/linear), "folded"
 * (all its inputs are constant: computed once by tl_session_new), "alias" (shares its parent's
 * memory: reshape/flatten/detach, or a transpose a matmul wrote into), "view" (a transpose its
 * matmul consumers read in place). NULL for a bad id. */
const char *tl_session_node_plan(const tl_session *s, int64_t id);

/* The memory plan as text (`tlinfo --plan`): a header line (arena bytes, nodes, steps run), then one
 * line per node in execution order: id, tag, what a run does for it (tl_session_node_plan, plus
 * "in-place" when it overwrites a parent that dies there), its session shape, and where its
 * value lives: "arena +OFFSET BYTES", "param" (a constant: the model's tensor or a folded value),
 * or "view of node[P]". Returns 0, or -1 with err set when writing fails. */
#include <stdio.h>
int tl_session_write_plan(const tl_session *s, FILE *out, tl_err *err);

#endif
