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
    bool folded;              /* all inputs constant: computed once by tl_session_new, not run */
    bool view;                /* zero-copy: a strided view its consumers read (transpose into
                               * matmul), or the storage its matmul parent writes into */
    bool out_view;            /* matmul writing straight into its transpose consumer's layout */
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
    /* binary op with a batch-free operand re-used for every sample (re-batched sessions):
     * bf_operand = 1 + index of that operand, whose value is `rep` copies of one sample of
     * `inner` floats (the exec walks the output in chunks of rep * inner) */
    int bf_operand;
    int64_t rep;
    float *rep_buf;           /* owned */
    /* matmul operand layouts (row-major, tl_sgemm's trans / leading-dimension arguments) */
    bool ta, tb;
    int64_t lda, ldb, ldc;
    int64_t *c_off;           /* per-batch output offsets */
    bool mm_strided;          /* geometry from strided views (tl_exec_matmul_layout) */
    /* linear: Y^T = W X^T into scratch, then transposed into out (few-row batches) */
    bool lin_t;
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
    tl_step **run;            /* the steps that do work in a run, in order (no input/alias/
                               * view/folded steps) */
    int64_t n_run;
    float **owned;            /* folded values (session-owned) */
    int64_t n_owned;
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
 * (captured batch B)". batch_carrying[] receives per node flags; bf_operand[] receives, per
 * elementwise binary node that combines a
 * batch-carrying value with a batch-free operand that is the same for every sample, 1 + the
 * index of that operand (0 elsewhere). */
int tl_batch_shapes(const tl_graph *g, const tl_shape *in_shape, tl_shape *shapes,
                    bool *batch_carrying, int *bf_operand, tl_err *err);

/* Binary op with a per-sample batch-free operand (st->bf_operand, st->rep, st->inner). */
void tl_exec_binary_rep(const tl_step *st, const float *const *in, float *out);
/* Matmul geometry from operand/output strides (elements; NULL: contiguous in the session
 * shape). Returns 1 (step unchanged) when a matrix is not expressible with tl_sgemm's
 * trans/leading-dimension arguments, -1 out of memory, 0 ok. */
int tl_exec_matmul_layout(tl_session *s, tl_step *st, const int64_t *sa, const int64_t *sb,
                          const int64_t *sc, tl_err *err);
/* Whether an R x C matrix with row stride sr and column stride sc is a tl_sgemm operand. */
bool tl_exec_mat_layout(int64_t R, int64_t C, int64_t sr, int64_t sc, bool *trans, int64_t *ld);
/* Free the plan-time tables a step owns. */
void tl_step_free_tables(tl_step *st);
/* Contiguous (row-major) strides of a shape. */
void tl_contig_strides(const tl_shape *s, int64_t *strides);

/* For tests: malloc-free run checks and the like use these counters. */
#endif
