/* tl_runtime_internal.h - private structures of the runtime (plan, steps, session).
 * Not part of the public API: runtime/ sources and tests/c/test_runtime.c only. */
#ifndef TL_RUNTIME_INTERNAL_H
#define TL_RUNTIME_INTERNAL_H
#include <stdbool.h>
#include <stdint.h>
#include "tl_runtime.h"

struct tl_model {
    tl_graph *g;
};

/* Where a value lives. */
typedef enum tl_store_kind {
    TL_STORE_ARENA = 0,   /* a slot of the session arena */
    TL_STORE_PARAM,       /* the model's tensor (const nodes): never written */
} tl_store_kind;

struct tl_step;
typedef void (*tl_exec_fn)(const struct tl_step *st, const float *const *in, float *out);

/* One node of the plan with everything precomputed. */
typedef struct tl_step {
    int64_t id;
    tl_op op;
    const tl_node *node;
    tl_exec_fn exec;          /* NULL: alias/const/input (no work) */
    bool alias;               /* zero-copy view of parent 0 (reshape/flatten/detach) */
    bool in_place;            /* output storage == parent 0's (or 1's) storage */
    bool plant_bug;           /* TL_TEST_PLANT_BUG matched this node's tag */
    bool kept;                /* value still readable after a run without KEEP_ALL */
    int n_in;
    const float **in;         /* parent value pointers (resolved at plan time) */
    float *out;
    float *scratch;           /* arena scratch for this node (im2col, reductions, ...) */
    int64_t numel;            /* output element count */
    tl_shape shape;           /* output shape in this session */
    /* generic geometry */
    int64_t outer, len, inner;
    int64_t M, N, K;
    int code;                 /* tl_unary / tl_binary */
    float f0;                 /* eps, mul, ... */
    /* matmul */
    int64_t nbatch;
    int64_t *a_off, *b_off;   /* per-batch element offsets (plan-time tables) */
    bool one_gemm;            /* right side shared: one sgemm over all rows */
    /* conv / pool */
    tl_window win;
    int64_t groups, cin_g, cout_g, in_plane, out_plane, kprod;
    bool im2col;
    bool depthwise;           /* groups == in_channels: direct loop */
    const float *w, *b;       /* weights/bias of linear, conv; gamma/beta of layernorm */
    float *scale, *shift;     /* batch norm folded (plan-time, owned) */
    /* movement */
    int rank;
    int64_t dims[TL_MAX_RANK], dims2[TL_MAX_RANK], perm[TL_MAX_RANK];
    int64_t *part_len;        /* concat (owned) */
    /* reductions over several axis runs: passes of [outer, len, inner] */
    int n_pass;
    int64_t pass_outer[TL_MAX_RANK], pass_len[TL_MAX_RANK], pass_inner[TL_MAX_RANK];
    uint64_t seed;
} tl_step;

struct tl_session {
    tl_model *m;
    int flags;
    int64_t n;                /* nodes */
    tl_step *steps;
    tl_shape *shapes;         /* per node shape in this session */
    float **value;            /* per node value pointer */
    tl_shape in_shape;
    float *input_buf;         /* arena slot of the input node */
    int64_t input_numel;
    char *arena;              /* one 64-byte aligned block */
    int64_t arena_bytes;
    int64_t *ns;              /* per node time of the last run (PROFILE) */
    int n_out;
    int64_t *out_ids;
};

/* Executor table: exec function of an op (NULL for alias-like ops and non-executable ops). */
tl_exec_fn tl_exec_for(tl_op op);
/* Prepare the step's geometry (shapes known, parents known); allocates plan-time tables. */
int tl_exec_prepare(tl_session *s, tl_step *st, tl_err *err);
/* Scratch floats a step needs (after prepare). */
int64_t tl_exec_scratch(const tl_step *st);
/* Whether the op has a dedicated executor or is handled by the planner (input/const/alias). */
bool tl_exec_known(tl_op op);

/* Batch substitution: fill shapes[] (and per-node attr rewrites are applied in prepare).
 * Returns -1 with "batch N does not fit the graph: node[i] (tag) mixes the batch axis
 * (captured batch B)". batch_carrying[] receives per node flags. */
int tl_batch_shapes(const tl_graph *g, const tl_shape *in_shape, tl_shape *shapes,
                    bool *batch_carrying, tl_err *err);

/* For tests: malloc-free run checks and the like use these counters. */
#endif
