/* tl_family.h - one place per op family.
 *
 * Every op of ir/tl_ops.def names a family; the family's vtable (tl_fam_<name>, defined in the
 * ops/ file that holds it) carries everything the stages need to know about its ops:
 *
 *   stage            entry         called by
 *   shape rule       infer         tl_infer_shape (ir/tl_infer.c), after the generic arity checks
 *   parameter slots  param_shape   tl_param_shape (ir/tl_graph.c)
 *   batch rule       batch,        tl_batch_shapes (runtime/tl_batch.c) when a session runs at
 *                    uniform       another batch than the captured one
 *   plan             prepare       the planner (runtime/tl_plan.c): per-op data from the session
 *                                  shapes, the exec function and its kernels (resolved here, once),
 *                                  scratch size
 *   release          release       frees what prepare allocated
 *   PyTorch          emit          tl_emit_pytorch (emit/tl_emit_pytorch.c): the expression of the
 *                                  node's forward line
 *
 * Families with several ops keep a per-op table indexed by tl_op (e.g. the unary family's kernel
 * code and PyTorch expression); `has` says whether the family knows an op, and test_ir checks it
 * for every row of the table, so an op wired to a family that has no entry for it fails a test
 * instead of running as something else. No stage switches over tl_op with a default case.
 *
 * Ownership: a vtable is static const data. Contexts are borrowed for the duration of a call.
 * prepare may allocate tables owned by the step (freed by release, which must accept a step
 * whose prepare failed half-way). */
#ifndef TL_FAMILY_H
#define TL_FAMILY_H
#include <stdbool.h>
#include <stdint.h>
#include "tl_err.h"
#include "tl_graph.h"
#include "tl_strbuf.h"

struct tl_step;
struct tl_emit_opts;
struct tl_kernel_table;

/* Shape rule input: the node, its row, its parents' shapes (declared shapes), and the tuple
 * parent (tuple_getitem only). */
typedef struct tl_infer_ctx {
    const tl_graph *g;
    const tl_node *n;
    const tl_op_row *row;
    const tl_shape *const *ps;
    const tl_node *tuple_parent;
} tl_infer_ctx;

/* Batch rule input (runtime/tl_batch.c explains the classification). bc[i]: node i carries the
 * batch axis on axis 0; uni[i]: batch-free node i is the same for every sample; nbc: number of
 * batch-carrying parents (>= 1 when `batch` is called); B: the captured batch. */
typedef struct tl_batch_ctx {
    const tl_graph *g;
    const tl_node *n;
    const bool *bc;
    const bool *uni;
    int nbc;
    int64_t B;
} tl_batch_ctx;
enum { TL_BATCH_MIXES = -1, TL_BATCH_FREE = 0, TL_BATCH_CARRY = 1 };

/* Plan input: session shapes of every node, the kernel table in force, and TL_SESSION_EXACT
 * (keep the node-by-node arithmetic: no kernel whose accumulation order differs from the
 * unfused path's, e.g. the packed-weight linear). */
typedef struct tl_prep_ctx {
    const tl_shape *shapes;
    const struct tl_kernel_table *K;
    bool exact;
} tl_prep_ctx;

/* Emission input. p[i] are the Python names of the parents ("x3"). const_compress_k: for a const
 * stored compressed (tlemit --compress-broadcast), the number of leading axes to expand. */
typedef struct tl_emit_ctx {
    const tl_graph *g;
    const tl_node *n;
    const struct tl_emit_opts *o;
    const char *dtype;
    char p[2][32];
    int const_compress_k;
    bool batched; /* axis 0 of this node is the batch axis of a graph that re-batches: shapes
                     * written into the module say -1 there, so the module runs at any batch */
    tl_strbuf *b;
} tl_emit_ctx;

typedef struct tl_family {
    const char *name;
    bool (*has)(tl_op op); /* NULL: every op naming it */
    int (*infer)(const tl_infer_ctx *c, tl_shape *out, tl_err *err);
    int (*param_shape)(const tl_node *n, int slot, tl_shape *out);         /* NULL: no parameters */
    int (*batch)(const tl_batch_ctx *c, int *bf_operand);                  /* TL_BATCH_CARRY or _MIXES */
    bool (*uniform)(const tl_batch_ctx *c);                                /* NULL: never uniform */
    int (*prepare)(const tl_prep_ctx *c, struct tl_step *st, tl_err *err); /* NULL: not run */
    void (*release)(struct tl_step *st);                                   /* NULL: nothing owned */
    int (*emit)(const tl_emit_ctx *c, tl_err *err);                        /* NULL: not emittable */
    /* which kernel a planned step runs, for tlinfo --plan (NULL: the family has one) */
    const char *(*kernel_name)(const struct tl_step *st);
    /* plan-time rewrites (absorb_affine changes rounding: off under TL_SESSION_EXACT; the clamp
     * and residual epilogues are bitwise: on under it) */
    /* the op is y = x * scale[c] + shift[c] along `axis`: fill the per-channel coefficients
     * (arrays of *channels doubles, allocated by the caller after a first call with
     * scale == NULL that only sets *axis and *channels); NULL: not such an op */
    int (*channel_affine)(const struct tl_step *st, int *axis, int64_t *channels, double *scale, double *shift);
    /* fold such an affine map of this op's output into its weights: 0 done, 1 not applicable
     * (another axis, ...), -1 error; NULL: cannot */
    int (*absorb_affine)(struct tl_step *st, int axis, int64_t channels, const double *scale, const double *shift,
                         tl_err *err);
    /* apply y = min(max(y, lo), hi) (as lo > y ? lo : y, then hi < y ? hi : y) to this op's
     * output after everything it computes, replacing an earlier call's clamp (a following
     * relu / max_elem / min_elem with a constant, fused by the planner; bitwise the unfused
     * result): 0 done, 1 not applicable; NULL: cannot */
    int (*absorb_clamp)(struct tl_step *st, float lo, float hi);
    /* add a value of the output's shape (st->res, bound by the planner) to this op's output
     * before any clamp absorbed after this call (a following residual add): 0 done, 1 not
     * applicable; NULL: cannot */
    int (*absorb_residual)(struct tl_step *st);
    /* apply a leaky relu y = max_elem(y, slope * y) last (after any residual; no clamp before
     * or after it): 0 done, 1 not applicable; NULL: cannot */
    int (*absorb_leaky)(struct tl_step *st, float slope);
} tl_family;

#define TL_FAMILY_DECL(NAME) extern const tl_family tl_fam_##NAME;
/* file              vtables */
TL_FAMILY_DECL(source)    /* ops/source.c      input, const */
TL_FAMILY_DECL(unary)     /* ops/elementwise.c abs ... softplus */
TL_FAMILY_DECL(binary)    /*                   add, sub, mul_elem, max_elem, min_elem */
TL_FAMILY_DECL(safe_log)  /*                   safe_log */
TL_FAMILY_DECL(detach)    /* ops/movement.c    detach */
TL_FAMILY_DECL(reshape)   /*                   reshape */
TL_FAMILY_DECL(flatten)   /*                   flatten */
TL_FAMILY_DECL(broadcast) /*                   broadcast_to */
TL_FAMILY_DECL(permute)   /*                   permute */
TL_FAMILY_DECL(transpose) /*                   transpose */
TL_FAMILY_DECL(concat)    /*                   concat */
TL_FAMILY_DECL(reduce)    /* ops/reduce.c      reduce_sum, reduce_mean */
TL_FAMILY_DECL(sum)       /*                   sum */
TL_FAMILY_DECL(mse_loss)  /*                   mse_loss */
TL_FAMILY_DECL(matmul)    /* ops/matmul.c      matmul */
TL_FAMILY_DECL(linear)    /* ops/linear.c      linear */
TL_FAMILY_DECL(conv)      /* ops/conv.c        conv */
TL_FAMILY_DECL(pool)      /* ops/pool.c        max_pool, avg_pool */
TL_FAMILY_DECL(batchnorm) /* ops/norm.c        batch_norm_eval */
TL_FAMILY_DECL(softmax)   /*                   softmax */
TL_FAMILY_DECL(layernorm) /*                   layernorm */
TL_FAMILY_DECL(random)    /* ops/random.c      rand_uniform, bernoulli_mask */
TL_FAMILY_DECL(opaque)    /* ops/structural.c  hard_masked_softmax, custom (not executable) */
TL_FAMILY_DECL(tuple)     /*                   tuple_getitem, multihead_attention (lowered on import) */
#undef TL_FAMILY_DECL

/* ---- helpers the families share (ops/tl_family_util.c) ---- */
/* "node[id].field: msg" (field NULL: "node[id]: msg"), kind TL_ERR_BAD_INPUT. Returns -1. */
int tl_node_err(tl_err *err, int64_t id, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "[1, 2, 3]" of a list of naturals, in buf. */
const char *tl_nats_str(const int64_t *v, int n, char *buf, size_t len);
#define TL_NATS_STR(v, n) tl_nats_str((v), (n), (char[TL_SHAPE_STR_MAX]){0}, TL_SHAPE_STR_MAX)
/* a*b for non-negative operands with overflow (and > TL_MAX_NUMEL) detection: 0 ok, -1 overflow. */
int tl_mul_ok(int64_t a, int64_t b, int64_t *out);
/* axis in [0, rank) or a "node[id].field: invalid axis" error. */
int tl_check_axis(int64_t id, const char *field, int64_t axis, const tl_shape *s, tl_err *err);
/* product of d[from..to) */
int64_t tl_prod(const int64_t *d, int from, int to);
/* Python tuple of naturals into the emitter's buffer: "()", "(4,)", "(1, 4)". */
void tl_sb_py_tuple(tl_strbuf *b, const int64_t *v, int n);
/* The attribute name of a parameter slot in the emitted module: params.bin's name for it
 * (tl_param_file_name), or for the scale constant the tuple lowering generates, which has none,
 * "mha<file id>_" + its own name. Emitter and family emit functions use this one rule. */
void tl_emit_param_name(const tl_graph *g, const tl_node *n, int slot, char *buf, size_t len);
/* `fn` + the tuple in parentheses: tl_sb_py_call(b, ".reshape", dims, 2) -> ".reshape((1, 4))". */
void tl_sb_py_call(tl_strbuf *b, const char *fn, const int64_t *v, int n);
/* tl_sb_py_call of a node's shape, with -1 on axis 0 when c->batched. */
void tl_sb_py_shape_call(const tl_emit_ctx *c, const char *fn, const tl_shape *s);
/* Batch substitution: the session shapes at input shape in_shape (runtime/tl_batch.c). Returns
 * -1 with "batch N does not fit the graph: node[i] (tag) mixes the batch axis (captured batch
 * B)". batch_carrying[] receives per node flags; bf_operand[] (may be NULL) receives, per
 * elementwise binary node that combines a batch-carrying value with a batch-free operand that is
 * the same for every sample, 1 + the index of that operand (0 elsewhere). */
int tl_batch_shapes(const tl_graph *g, const tl_shape *in_shape, tl_shape *shapes, bool *batch_carrying,
                    int *bf_operand, tl_err *err);
/* Weights [rows, per] (+ bias [rows] or NULL) with a per-row affine map y * scale + shift folded
 * in, each value rounded once from double: a new malloc'ed block, folded weights then folded
 * bias (the caller owns it); NULL when out of memory. Shared by conv and linear's absorb_affine. */
float *tl_fold_row_affine(const float *w, const float *b, int64_t rows, int64_t per, const double *scale,
                          const double *shift);
/* Python float literal of a double attribute (shortest text that reads back exactly). */
void tl_sb_py_double(tl_strbuf *b, double d);

#endif
