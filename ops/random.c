/* random.c - TorchLean's deterministic randomness (Spec.Random): rand_uniform (no parents, the
 * declared shape) and bernoulli_mask (parent: a scalar keep probability). Element i of the
 * row-major output is drawn from splitmix64(key + i), key = splitmix64(seed + node id): bitwise
 * TorchLean's generator (docs/kernels.md), reproduced by the emitted module's helpers. */
#include "tl_emit.h"
#include "tl_runtime_internal.h"

static void ex_rand_uniform(const tl_step *st, const float *const *in, float *out) {
    (void)in;
    tl_k_rand_uniform(st->p.rnd.key, out, st->numel);
}

static void ex_bernoulli(const tl_step *st, const float *const *in, float *out) {
    tl_k_bernoulli_mask(st->p.rnd.key, in[0][0], out, st->numel);
}

static int rand_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    if (c->n->op == TL_OP_BERNOULLI_MASK && c->ps[0]->rank != 0)
        return tl_node_err(err, c->n->id, NULL, "bernoulli_mask: expected a scalar keep-probability parent, got %s",
                           TL_SHAPE_STR(c->ps[0]));
    *out = c->n->shape; /* declared */
    return 0;
}

static int rand_batch(const tl_batch_ctx *c, int *bf) {
    (void)c;
    (void)bf; /* bernoulli_mask's parent is the scalar keep probability: never per sample */
    return TL_BATCH_MIXES;
}

static int rand_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    (void)c;
    (void)err;
    st->p.rnd.key = tl_k_rand_key((uint64_t)st->node->a.seed, (uint64_t)st->id);
    st->kernel = st->op == TL_OP_RAND_UNIFORM ? ex_rand_uniform : ex_bernoulli;
    return 0;
}

static int rand_emit(const tl_emit_ctx *c, tl_err *err) {
    (void)err;
    const tl_node *n = c->n;
    if (n->op == TL_OP_RAND_UNIFORM)
        tl_sb_printf(c->b, "_rand_uniform(%lld, %lld, ", (long long)n->a.seed, (long long)n->id);
    else tl_sb_printf(c->b, "_bernoulli_mask(%lld, %lld, %s, ", (long long)n->a.seed, (long long)n->id, c->p[0]);
    tl_sb_py_tuple(c->b, n->shape.dim, n->shape.rank);
    tl_sb_printf(c->b, "%s)", n->op == TL_OP_RAND_UNIFORM ? ", x.device" : "");
    return 0;
}

static bool rand_has(tl_op op) { return op == TL_OP_RAND_UNIFORM || op == TL_OP_BERNOULLI_MASK; }

/* float64: TorchLean's generator over Float (the unit draw u / 2^32 is exact in double) */
static void ex_rand_uniform64(const tl_step *st, const double *const *in, double *out) {
    (void)in;
    tl_k64_rand_uniform(st->p.rnd.key, out, st->numel);
}
static void ex_bernoulli64(const tl_step *st, const double *const *in, double *out) {
    tl_k64_bernoulli_mask(st->p.rnd.key, in[0][0], out, st->numel);
}
static int rand_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (rand_prepare(c, st, err)) return -1;
    st->kernel64 = st->op == TL_OP_RAND_UNIFORM ? ex_rand_uniform64 : ex_bernoulli64;
    return 0;
}

const tl_family tl_fam_random = {
    .name = "random",
    .has = rand_has,
    .infer = rand_infer,
    .batch = rand_batch,
    .prepare = rand_prepare_both,
    .emit = rand_emit,
};
