/* elementwise.c - the elementwise families: unary (abs, sqrt, ..., softplus), binary (add, sub,
 * mul_elem, max_elem, min_elem) and safe_log (TorchLean: log(softplus(x) + eps), eps a scalar
 * second parent).
 *
 * Shapes: unary keeps its parent's shape; binary needs equal shapes (broadcasting is an explicit
 * broadcast_to node in the IR). Batch: a unary op carries the batch; a binary op over two
 * batch-carrying values does too, and one batch-carrying and one batch-free operand is allowed
 * when the batch-free one is the same for every sample (the planner then reads one sample of it
 * for every sample: tl_exec_binary_rep). Each output element is one IEEE operation (or one call
 * of the kernel's scalar-equivalent function) on the same elements, so in-place execution and
 * any chunking give bitwise the same result.
 *
 * Adding a unary op: a row in ir/tl_ops.def (family unary), an entry in UNARY below (kernel
 * code, PyTorch expression), the kernel in kernels/ (scalar reference + vector versions),
 * a case in tests/py/test_ops.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_emit.h"
#include "tl_par.h"
#include "tl_runtime_internal.h"

/* ---------------------------------------------------------------- per-op tables */
typedef struct unary_entry {
    bool set;
    tl_unary code;
    const char *py; /* PyTorch expression, %s = the parent */
} unary_entry;

static const unary_entry UNARY[TL_OP_COUNT] = {
    [TL_OP_ABS] = {true, TL_U_ABS, "torch.abs(%s)"},
    [TL_OP_SQRT] = {true, TL_U_SQRT, "torch.sqrt(%s)"},
    [TL_OP_INV] = {true, TL_U_INV, "torch.reciprocal(%s)"},
    [TL_OP_RELU] = {true, TL_U_RELU, "torch.relu(%s)"},
    [TL_OP_TANH] = {true, TL_U_TANH, "torch.tanh(%s)"},
    [TL_OP_SIGMOID] = {true, TL_U_SIGMOID, "torch.sigmoid(%s)"},
    [TL_OP_EXP] = {true, TL_U_EXP, "torch.exp(%s)"},
    [TL_OP_LOG] = {true, TL_U_LOG, "torch.log(%s)"},
    [TL_OP_SIN] = {true, TL_U_SIN, "torch.sin(%s)"},
    [TL_OP_COS] = {true, TL_U_COS, "torch.cos(%s)"},
    [TL_OP_SOFTPLUS] = {true, TL_U_SOFTPLUS, "F.softplus(%s)"},
};

typedef struct binary_entry {
    bool set;
    tl_binary code;
    const char *py; /* PyTorch function of two tensors */
} binary_entry;

static const binary_entry BINARY[TL_OP_COUNT] = {
    [TL_OP_ADD] = {true, TL_B_ADD, "torch.add"},          [TL_OP_SUB] = {true, TL_B_SUB, "torch.sub"},
    [TL_OP_MUL_ELEM] = {true, TL_B_MUL, "torch.mul"},     [TL_OP_MAX_ELEM] = {true, TL_B_MAX, "torch.maximum"},
    [TL_OP_MIN_ELEM] = {true, TL_B_MIN, "torch.minimum"},
};

static bool unary_has(tl_op op) { return op >= 0 && op < TL_OP_COUNT && UNARY[op].set; }
static bool binary_has(tl_op op) { return op >= 0 && op < TL_OP_COUNT && BINARY[op].set; }

/* ---------------------------------------------------------------- exec */
static void ex_unary(const tl_step *st, const float *const *in, float *out) {
    tl_par_unary(st->p.ew.ufn, in[0], out, st->numel);
}

static void ex_binary(const tl_step *st, const float *const *in, float *out) {
    tl_par_binary(st->p.ew.bfn, in[0], in[1], out, st->numel);
}

/* The head of an elementwise chain (tl_ew_chain.c): its members' kernels over blocks, bitwise the
 * node-by-node values; in[] (the graph parents) is not read, the chain holds its operands. */
void tl_exec_ew_chain(const tl_step *st, const float *const *in, float *out) {
    (void)in;
    tl_ew_chain_run(st->p.ew.chain, out, st->numel);
}

/* One operand holds `rep` copies of one period (`inner` floats) of a value that repeats along
 * the output (a per-sample constant in a re-batched session, or a periodic constant): the output
 * is walked in chunks of rep periods. Each element is the same single IEEE operation as in
 * ex_binary, so the result does not depend on the chunking. */
void tl_exec_binary_rep(const tl_step *st, const float *const *in, float *out) {
    const tl_prep_ew *e = &st->p.ew;
    int64_t chunk = e->rep * e->inner;
    if (chunk <= 0) return;
    int k = e->bf_operand - 1;
    for (int64_t o = 0; o < st->numel; o += chunk) {
        int64_t len = st->numel - o < chunk ? st->numel - o : chunk;
        const float *a = k == 0 ? in[0] : in[0] + o;
        const float *b = k == 1 ? in[1] : in[1] + o;
        tl_par_binary(e->bfn, a, b, out + o, len);
    }
}

void tl_binary_set_rep(tl_step *st, int k, float *rb, int64_t rep, int64_t per) {
    free(st->p.ew.rep_buf);
    st->p.ew.rep_buf = rb;
    st->p.ew.rep = rep;
    st->p.ew.inner = per;
    st->p.ew.bf_operand = k + 1;
}

/* TorchLean's safe_log (NN/Spec Activation.safeLogSpec): log(softplus(x) + eps), eps being the
 * scalar second parent; the kernel table's fused safe_log computes exactly that. */
static void ex_safe_log(const tl_step *st, const float *const *in, float *out) {
    st->K->safe_log(in[0], in[1][0], out, st->numel);
}

/* ---------------------------------------------------------------- shape rules */
static int same_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    (void)err;
    *out = *c->ps[0];
    return 0;
}

static int binary_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    if (!tl_shape_eq(c->ps[0], c->ps[1]))
        return tl_node_err(err, c->n->id, NULL, "%s: shape mismatch: %s vs %s", c->row->tag, TL_SHAPE_STR(c->ps[0]),
                           TL_SHAPE_STR(c->ps[1]));
    *out = *c->ps[0];
    return 0;
}

static int safe_log_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    if (c->ps[1]->rank != 0)
        return tl_node_err(err, c->n->id, NULL, "safe_log: epsilon (parent 1) must be a scalar, got %s",
                           TL_SHAPE_STR(c->ps[1]));
    *out = *c->ps[0];
    return 0;
}

/* ---------------------------------------------------------------- batch rules */
static int unary_batch(const tl_batch_ctx *c, int *bf_operand) {
    (void)c;
    (void)bf_operand;
    return TL_BATCH_CARRY;
}

static bool unary_uniform(const tl_batch_ctx *c) { return c->uni[c->n->parents[0]]; }

static int binary_batch(const tl_batch_ctx *c, int *bf_operand) {
    if (c->nbc == 2) return TL_BATCH_CARRY;
    int k = c->bc[c->n->parents[0]] ? 1 : 0; /* the batch-free operand */
    if (!c->uni[c->n->parents[k]] || c->n->shape.rank == 0) return TL_BATCH_MIXES;
    *bf_operand = k + 1;
    return TL_BATCH_CARRY;
}

static bool binary_uniform(const tl_batch_ctx *c) { return c->uni[c->n->parents[0]] && c->uni[c->n->parents[1]]; }

static int safe_log_batch(const tl_batch_ctx *c, int *bf_operand) {
    (void)bf_operand; /* eps must be batch-free (a scalar) */
    return (c->bc[c->n->parents[0]] && !c->bc[c->n->parents[1]]) ? TL_BATCH_CARRY : TL_BATCH_MIXES;
}

/* ---------------------------------------------------------------- plan */
static int unary_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (!unary_has(st->op))
        return tl_errk(err, TL_ERR_INTERNAL, "node[%lld] (%s): no unary kernel", (long long)st->id, st->row->tag);
    st->p.ew.code = UNARY[st->op].code;
    st->p.ew.ufn = c->K->unary_fn[UNARY[st->op].code];
    st->kernel = ex_unary;
    return 0;
}

static int binary_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (!binary_has(st->op))
        return tl_errk(err, TL_ERR_INTERNAL, "node[%lld] (%s): no binary kernel", (long long)st->id, st->row->tag);
    st->p.ew.code = BINARY[st->op].code;
    st->p.ew.bfn = c->K->binary_fn[BINARY[st->op].code];
    st->kernel = ex_binary;
    return 0;
}

static void unary_release(tl_step *st) {
    tl_ew_chain_free(st->p.ew.chain);
    st->p.ew.chain = NULL;
}

static void binary_release(tl_step *st) {
    unary_release(st);
    free(st->p.ew.rep_buf);
    st->p.ew.rep_buf = NULL;
    free(st->p.ew.rep_buf64);
    st->p.ew.rep_buf64 = NULL;
}

static int safe_log_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    (void)c;
    (void)err;
    st->kernel = ex_safe_log;
    return 0;
}

/* ---------------------------------------------------------------- float64
 * The double path of a float64 session: the same single operation per element, through the
 * double kernel table (kernels/tl_kernels_f64.h). */
static void ex_unary64(const tl_step *st, const double *const *in, double *out) {
    st->p.ew.ufn64(in[0], out, st->numel);
}
static void ex_binary64(const tl_step *st, const double *const *in, double *out) {
    st->p.ew.bfn64(in[0], in[1], out, st->numel);
}
void tl_exec_binary_rep64(const tl_step *st, const double *const *in, double *out) {
    const tl_prep_ew *e = &st->p.ew;
    int64_t chunk = e->rep * e->inner;
    if (chunk <= 0) return;
    int k = e->bf_operand - 1;
    for (int64_t o = 0; o < st->numel; o += chunk) {
        int64_t len = st->numel - o < chunk ? st->numel - o : chunk;
        const double *a = k == 0 ? in[0] : in[0] + o;
        const double *b = k == 1 ? in[1] : in[1] + o;
        e->bfn64(a, b, out + o, len);
    }
}
void tl_binary_set_rep64(tl_step *st, int k, double *rb, int64_t rep, int64_t per) {
    free(st->p.ew.rep_buf64);
    st->p.ew.rep_buf64 = rb;
    st->p.ew.rep = rep;
    st->p.ew.inner = per;
    st->p.ew.bf_operand = k + 1;
}
static void ex_safe_log64(const tl_step *st, const double *const *in, double *out) {
    tl_k64_safe_log(in[0], in[1][0], out, st->numel);
}
static int unary_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (unary_prepare(c, st, err)) return -1;
    st->p.ew.ufn64 = tl_k64_unary(st->K64, UNARY[st->op].code);
    st->kernel64 = ex_unary64;
    return 0;
}
static int binary_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (binary_prepare(c, st, err)) return -1;
    st->p.ew.bfn64 = tl_k64_binary(st->K64, BINARY[st->op].code);
    st->kernel64 = ex_binary64;
    return 0;
}
static int safe_log_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (safe_log_prepare(c, st, err)) return -1;
    st->kernel64 = ex_safe_log64;
    return 0;
}

/* tlinfo --plan: a chain's head names it */
static const char *ew_kernel_name(const tl_step *st) { return st->p.ew.chain ? "chain" : NULL; }

/* ---------------------------------------------------------------- PyTorch */
static int unary_emit(const tl_emit_ctx *c, tl_err *err) {
    if (!unary_has(c->n->op)) return tl_errk(err, TL_ERR_INTERNAL, "no PyTorch form for %s", tl_op_tag(c->n->op));
    tl_sb_printf(c->b, UNARY[c->n->op].py, c->p[0]);
    return 0;
}

static int binary_emit(const tl_emit_ctx *c, tl_err *err) {
    if (!binary_has(c->n->op)) return tl_errk(err, TL_ERR_INTERNAL, "no PyTorch form for %s", tl_op_tag(c->n->op));
    tl_sb_printf(c->b, "%s(%s, %s)", BINARY[c->n->op].py, c->p[0], c->p[1]);
    return 0;
}

static int safe_log_emit(const tl_emit_ctx *c, tl_err *err) {
    (void)err; /* TorchLean: log(softplus(x) + eps) */
    tl_sb_printf(c->b, "torch.log(F.softplus(%s) + %s)", c->p[0], c->p[1]);
    return 0;
}

const tl_family tl_fam_unary = {
    .name = "unary",
    .has = unary_has,
    .infer = same_infer,
    .batch = unary_batch,
    .uniform = unary_uniform,
    .prepare = unary_prepare_both,
    .release = unary_release,
    .emit = unary_emit,
    .kernel_name = ew_kernel_name,
};

const tl_family tl_fam_binary = {
    .name = "binary",
    .has = binary_has,
    .infer = binary_infer,
    .batch = binary_batch,
    .uniform = binary_uniform,
    .prepare = binary_prepare_both,
    .release = binary_release,
    .emit = binary_emit,
    .kernel_name = ew_kernel_name,
};

const tl_family tl_fam_safe_log = {
    .name = "safe_log",
    .infer = safe_log_infer,
    .batch = safe_log_batch,
    .uniform = unary_uniform,
    .prepare = safe_log_prepare_both,
    .emit = safe_log_emit,
};
