/* tl_runtime_internal.h - private structures of the runtime: the step (one node of a plan) and
 * the session. Not part of the public API: runtime/, ops/ and tests/c/test_runtime.c only.
 *
 * A step is a common header (what every op has: its node, parents, output, scratch, the exec
 * function resolved at plan time and the planner's decisions) plus per-op prepared data `p`, a
 * union whose member belongs to the op's family (ops/<family>.c fills it in prepare and frees
 * what it allocated in release). Fields of `p` are read only by their family, and by the planner
 * where it rewrites a step on purpose (the matmul layout of zero-copy transposes, the per-sample
 * operand of a binary op), through the functions declared below. */
#ifndef TL_RUNTIME_INTERNAL_H
#define TL_RUNTIME_INTERNAL_H
#include <stdbool.h>
#include <stdint.h>
#include "tl_family.h"
#include "tl_conv.h"
#include "tl_kernels.h"
#include "tl_kernels_f64.h"
#include "tl_runtime.h"

struct tl_model {
    tl_graph *g;
};

struct tl_step;
typedef void (*tl_exec_fn)(const struct tl_step *st, const float *const *in, float *out);
/* The double exec of a float64 session (TL_SESSION_FLOAT64): same contract, doubles. */
typedef void (*tl_exec64_fn)(const struct tl_step *st, const double *const *in, double *out);

/* ---- per-op prepared data, one struct per family ---- */
/* A chain of elementwise nodes computed as one pass by its last node's step (tl_ew_chain.c;
 * the planner's plan_fuse_chains picks them): a program of at most TL_CHAIN_MAX member
 * kernels over blocks of TL_CHAIN_BLK floats, at most TL_CHAIN_TMP block temporaries live. */
#define TL_CHAIN_MAX 16
#define TL_CHAIN_TMP 6
#define TL_CHAIN_BLK 512
typedef struct tl_ew_chain tl_ew_chain;
typedef enum { TL_CHAIN_EXT, TL_CHAIN_SCALAR, TL_CHAIN_MEMBER } tl_chain_kind;
typedef struct tl_chain_arg { /* an operand of a member */
    tl_chain_kind kind;
    int64_t node; /* TL_CHAIN_EXT: a value computed before the chain, of the output's size */
    int member;   /* TL_CHAIN_MEMBER: an earlier member (index into the members) */
    float c;      /* TL_CHAIN_SCALAR: a constant every element of which has these bits */
} tl_chain_arg;
/* members: the steps in run order (the last one is the chain's head, whose value the chain
 * writes), args[m][0..1] their operands (one for a unary member). NULL when the chain does not
 * fit (length, live temporaries) or out of memory: the planner then leaves the nodes alone. */
tl_ew_chain *tl_ew_chain_build(const struct tl_step *const *members, int n, const tl_chain_arg (*args)[2]);
void tl_ew_chain_bind(tl_ew_chain *c, float *const *value); /* value: per node, after placement */
void tl_ew_chain_run(const tl_ew_chain *c, float *y, int64_t n);
int tl_ew_chain_len(const tl_ew_chain *c);
void tl_ew_chain_free(tl_ew_chain *c);
/* ops/elementwise.c: the exec function of a chain's head step */
void tl_exec_ew_chain(const struct tl_step *st, const float *const *in, float *out);

typedef struct tl_prep_ew { /* unary, binary, safe_log */
    int code;               /* tl_unary / tl_binary */
    tl_unary_fn ufn;        /* the kernel, fetched from the table at plan time */
    tl_binary_fn bfn;
    /* binary op with a constant operand re-used for every sample / period (tl_plan_rep_operand):
     * bf_operand = 1 + index of that operand, whose value is `rep` copies of one period of
     * `inner` floats (the exec walks the output in chunks of rep * inner) */
    int bf_operand;
    int64_t rep, inner;
    float *rep_buf; /* owned */
    /* float64 session: the kernels (fetched at plan time) and the replicated operand in double */
    tl_unary64_fn ufn64;
    tl_binary64_fn bfn64;
    double *rep_buf64;  /* owned */
    tl_ew_chain *chain; /* this step runs a chain ending at it (owned), else NULL */
} tl_prep_ew;

typedef struct tl_prep_move { /* broadcast_to, permute, transpose, concat */
    int rank;
    int64_t dims[TL_MAX_RANK], dims2[TL_MAX_RANK], perm[TL_MAX_RANK];
    int64_t outer, inner;
    int64_t *part_len; /* concat, owned */
} tl_prep_move;

typedef struct tl_prep_reduce { /* reduce_sum, reduce_mean, sum, mse_loss */
    bool mean;
    int n_pass; /* runs of adjacent axes, each [outer, len, inner] */
    int64_t pass_outer[TL_MAX_RANK], pass_len[TL_MAX_RANK], pass_inner[TL_MAX_RANK];
    int64_t buf0; /* floats after the first pass (scratch buffer 0) */
    int64_t len;  /* sum / mse_loss: elements */
} tl_prep_reduce;

typedef struct tl_prep_matmul {
    int64_t M, N, K, nbatch;
    int64_t *a_off, *b_off, *c_off; /* per-batch element offsets, owned */
    bool one_gemm;                  /* right side shared: one sgemm over all rows */
    bool ta, tb;                    /* tl_sgemm's trans / leading-dimension arguments */
    int64_t lda, ldb, ldc;
    bool strided;      /* geometry from strided views (tl_matmul_layout) */
    bool clamp, resid; /* fused epilogue (tl_plan_fuse): y + st->res, then clamp to [lo, hi] */
    float lo, hi;
    bool leaky; /* fused leaky relu max(y, slope * y) last (tl_plan_fuse) */
    float slope;
} tl_prep_matmul;

typedef struct tl_prep_linear {
    int64_t M, N, K;
    const float *w, *b; /* the model's W, b, or `own` (batch norm folded in) */
    float *own;         /* owned: folded W then b (tl_plan_fuse), or NULL */
    bool lin_t;         /* Y^T = W X^T into scratch, transposed back (few rows) */
    bool clamp;         /* fused clamp epilogue [lo, hi] after the bias (tl_plan_fuse) */
    bool resid;         /* fused residual add (st->res) after the bias, before the clamp */
    float lo, hi;
    bool leaky; /* fused leaky relu max(y, slope * y) last (tl_plan_fuse) */
    float slope;
    float *packed; /* owned: W packed for the table's gemm_packed (narrow layers), or NULL */
} tl_prep_linear;

typedef struct tl_prep_conv {
    tl_window win;
    int64_t outer, groups, cin_g, cout_g, in_plane, out_plane, kprod;
    bool im2col;
    bool depthwise;     /* one input channel per group and a real window */
    const float *w, *b; /* the model's kernel, bias, or `own` (batch norm folded in) */
    float *own;         /* owned: folded kernel then bias (tl_plan_fuse), or NULL */
    int threads;        /* images computed in parallel (scratch holds that many
                                      * im2col buffers); 1: serial over images */
    /* direct kernels (kernels/tl_conv.h): DIRECT_NONE = im2col + sgemm / the 3-D loop */
    /* DIRECT_IGEMM: tl_conv_igemm, channels in the lanes, its store adds the residual and clamps */
    enum { TL_CONV_IM2COL = 0, TL_CONV_DIRECT_DW, TL_CONV_DIRECT_DENSE, TL_CONV_DIRECT_IGEMM } direct;
    tl_conv_desc desc; /* geometry, bias, clamp of the direct kernels */
    bool clamp;        /* fused clamp epilogue [lo, hi] (tl_plan_fuse): without a residual the
                        * direct kernels apply it to the accumulator (desc.lo / desc.hi), the
                        * other paths in a pass after */
    bool resid;        /* fused residual add (st->res), then the clamp, in a pass after */
    float lo, hi;
    bool leaky; /* fused leaky relu max(y, slope * y) last (tl_plan_fuse) */
    float slope;
    float *packed; /* owned: weights packed for tl_conv_direct / tl_conv_igemm */
} tl_prep_conv;

typedef struct tl_prep_pool {
    tl_window win;
    int64_t planes;
} tl_prep_pool;

typedef struct tl_prep_norm { /* batch_norm_eval, layernorm, softmax */
    int64_t outer, len, inner;
    float *scale, *shift;      /* batch norm folded (owned) */
    const float *gamma, *beta; /* layernorm */
    float eps;
} tl_prep_norm;

typedef struct tl_prep_rand {
    uint64_t key; /* TorchLean keyOf(seed, node id) */
} tl_prep_rand;

/* One node of the plan. */
typedef struct tl_step {
    /* header: every op */
    int64_t id;
    tl_op op;
    const tl_node *node;
    const tl_op_row *row;
    const tl_kernel_table *K; /* kernel table in force when the plan was made */
    tl_exec_fn kernel;        /* the op's exec function (set by the family's prepare; NULL:
                                 * nothing to compute, e.g. input, const, a zero-copy alias) */
    tl_exec_fn exec;          /* what a run calls: kernel, or a planner wrapper (planted bug,
                                 * per-sample operand); NULL: not run (folded, alias, view) */
    int n_in;
    const float **in; /* parent value pointers (resolved at plan time), owned */
    float *out;
    float *scratch;         /* arena scratch for this node (im2col, reductions, ...) */
    const float *res;       /* a fused residual add's other operand (conv / linear), else NULL */
    int64_t scratch_floats; /* set by prepare */
    int64_t numel;          /* output element count */
    tl_shape shape;         /* output shape in this session */
    /* the planner's decisions */
    bool alias;     /* shares its parent's storage (reshape/flatten/detach, views) */
    bool in_place;  /* output storage == a parent's storage (elementwise) */
    bool plant_bug; /* TL_TEST_PLANT_BUG matched this node's tag */
    bool kept;      /* value still readable after a run without KEEP_ALL */
    bool folded;    /* all inputs constant: computed once at plan time, not run */
    bool view;      /* zero-copy strided view its consumers read (transpose into
                                 * matmul) */
    bool out_view;  /* matmul writing straight into its transpose consumer's layout */
    bool fused;     /* computed by its parent's step (a batch norm folded into the
                                 * producing conv/linear, a relu / clamp in its epilogue): shares
                                 * its storage, not run */
    /* float64 (TL_SESSION_FLOAT64): the family's prepare also installs kernel64 (NULL: the op has
     * no double path, refused at plan time) and scratch64 (doubles); the planner then runs
     * exec64 on in64 / out64 / scratch64p and the float fields above are unused. prm64: the
     * node's parameters in double (borrowed from the session), set before prepare. */
    tl_exec64_fn kernel64, exec64;
    const double **in64; /* owned */
    double *out64, *scratch64p;
    int64_t scratch64;
    const double *prm64[TL_MAX_PARAMS];
    const tl_kernel64_table *K64;
    union {
        tl_prep_ew ew;
        tl_prep_move mv;
        tl_prep_reduce rd;
        tl_prep_matmul mm;
        tl_prep_linear lin;
        tl_prep_conv cv;
        tl_prep_pool pool;
        tl_prep_norm nm;
        tl_prep_rand rnd;
    } p;
} tl_step;

struct tl_session {
    tl_model *m;
    int flags;
    int64_t n;        /* nodes */
    tl_step *steps;   /* one per node, owned */
    tl_shape *shapes; /* per node shape in this session, owned */
    float **value;    /* per node value pointer, owned array */
    tl_shape in_shape;
    float *input_buf; /* arena slot of the input node */
    int64_t input_numel;
    const tl_step *input_step;
    char *arena; /* one 64-byte aligned block, owned */
    int64_t arena_bytes;
    int64_t *ns; /* per node time of the last run (PROFILE), owned */
    int n_out;
    int64_t *out_ids; /* owned */
    tl_step **run;    /* the steps that do work in a run, in order, owned array */
    int64_t n_run;
    float **owned; /* folded values (session-owned) */
    int64_t n_owned;
    /* float64 session: per node, per parameter slot, the parameter in double (owned when
     * widened here; else the model tensor's data64) */
    bool f64;
    double **prm64;    /* [n * TL_MAX_PARAMS], owned array */
    bool *prm64_owned; /* [n * TL_MAX_PARAMS] */
    /* micro-batching (tl_microbatch.c; mb_nchild == 0: off): the batch runs as mb_chunks runs of
     * batch mb_m on mb_nchild child sessions (owned), outputs gathered in mb_out (owned) */
    bool pool_idle; /* the last run dispatched no pool job: the next one does not wake the pool */
    int mb_nchild;
    tl_session **mb_child;
    int64_t mb_m, mb_chunks, mb_in_per;
    float **mb_out;      /* [n_out], each [N * mb_out_per[i]] */
    int64_t *mb_out_per; /* [n_out] floats per sample */
    int64_t *mb_ns;      /* PROFILE: [mb_nchild * n] per child node time summed over its chunks */
};

/* tl_microbatch.c: set micro-batching up at the end of tl_session_new (or leave it off), free
 * it, run a micro-batched session. */
int tl_mb_setup(tl_session *s, tl_err *err);
void tl_mb_free(tl_session *s);
int tl_mb_run(tl_session *s, const float *input, tl_err *err);

/* ---- what the planner needs from the families ---- */
/* Free what a step owns (the family's release + the parent pointer array). */
void tl_step_release(tl_step *st);
/* Matmul geometry from operand/output strides (elements; NULL: contiguous in the session
 * shape) for step st (a matmul), parents' session shapes from `shapes`. Returns 1 (step unchanged)
 * when a matrix is not expressible with tl_sgemm's trans/leading-dimension arguments, -1 out of
 * memory, 0 ok. */
int tl_matmul_layout(const tl_shape *shapes, tl_step *st, const int64_t *sa, const int64_t *sb, const int64_t *sc,
                     tl_err *err);
/* Whether an R x C matrix with row stride sr and column stride sc is a tl_sgemm operand. */
bool tl_mat_layout(int64_t R, int64_t C, int64_t sr, int64_t sc, bool *trans, int64_t *ld);
/* Binary op reading operand k (0/1) as `rep` copies of one period of `per` floats held in the
 * owned buffer rb (ops/elementwise.c). */
void tl_binary_set_rep(tl_step *st, int k, float *rb, int64_t rep, int64_t per);
/* Exec of such a step (the planner installs it as st->exec). */
void tl_exec_binary_rep(const tl_step *st, const float *const *in, float *out);
/* Copy parent 0 to out (an alias op that must be materialized: planted bug, eval_node). */
void tl_exec_copy(const tl_step *st, const float *const *in, float *out);
/* float64 versions of the two above (ops/elementwise.c, ops/movement.c). The double rep
 * operand: tl_binary_set_rep64 takes ownership of rb. */
void tl_binary_set_rep64(tl_step *st, int k, double *rb, int64_t rep, int64_t per);
void tl_exec_binary_rep64(const tl_step *st, const double *const *in, double *out);
void tl_exec_copy64(const tl_step *st, const double *const *in, double *out);
/* Window geometry of a conv (conv=true: padding_after, dilation) or pool node over the spatial
 * axes starting at first_spatial of its parent's session shape `in` (ops/pool.c). */
int tl_window_from_node(tl_window *w, const tl_node *n, const tl_shape *in, const tl_shape *out, int first_spatial,
                        bool conv, tl_err *err);
/* Contiguous (row-major) strides of a shape. */
void tl_contig_strides(const tl_shape *s, int64_t *strides);

/* tl_batch_shapes: declared in ops/tl_family.h (the families hold the batch rules). */

#endif
