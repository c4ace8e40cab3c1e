/* norm.c - normalization: batch_norm_eval (per channel, running statistics), layernorm (over the
 * axes from `axis` on, biased variance like PyTorch, optional affine), softmax (over one axis,
 * max-subtracted). Each uses its node's eps, never a hard-coded one.
 *
 * batch_norm_eval is folded at plan time into scale = gamma / sqrt(var + eps) and
 * shift = beta - mean * scale (computed in double, rounded once to float32), then one
 * y = x * scale + shift per element: a rounded lowering against PyTorch's
 * (x - mean) / sqrt(var + eps) * gamma + beta, within the zoo tests' float32 tolerances. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tl_emit.h"
#include "tl_par.h"
#include "tl_runtime_internal.h"

static void ex_batch_norm(const tl_step *st, const float *const *in, float *out) {
    const tl_prep_norm *m = &st->p.nm;
    tl_par_channel_affine(st->K, in[0], out, m->outer, m->len, m->inner, m->scale, m->shift);
}
static void ex_softmax(const tl_step *st, const float *const *in, float *out) {
    const tl_prep_norm *m = &st->p.nm;
    tl_par_softmax(st->K, in[0], out, m->outer, m->len, m->inner);
}
static void ex_layernorm(const tl_step *st, const float *const *in, float *out) {
    const tl_prep_norm *m = &st->p.nm;
    tl_par_layernorm(st->K, in[0], out, m->outer, m->len, m->gamma, m->beta, m->eps);
}

/* [outer, len, inner] around axis ax of the parent's session shape */
static void around_axis(const tl_shape *p0, int ax, tl_prep_norm *m) {
    m->outer = tl_prod(p0->dim, 0, ax);
    m->len = p0->dim[ax];
    m->inner = tl_prod(p0->dim, ax + 1, p0->rank);
}

static int axis_batch(const tl_batch_ctx *c, int *bf) {
    (void)bf; /* normalizing over axis 0 mixes samples */
    return c->n->a.axis >= 1 ? TL_BATCH_CARRY : TL_BATCH_MIXES;
}

/* ---------------------------------------------------------------- batch_norm_eval */
static int bn_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    const tl_attrs *a = &c->n->a;
    const tl_shape *x = c->ps[0];
    int64_t id = c->n->id;
    if (a->channels <= 0) return tl_node_err(err, id, "channels", "must be > 0");
    if (tl_check_axis(id, "channel_axis", a->channel_axis, x, err)) return -1;
    if (x->dim[a->channel_axis] != a->channels)
        return tl_node_err(err, id, "channels", "channel mismatch: op=%lld vs input=%lld (input %s)",
                           (long long)a->channels, (long long)x->dim[a->channel_axis], TL_SHAPE_STR(x));
    *out = *x;
    return 0;
}

static int bn_param_shape(const tl_node *n, int slot, tl_shape *out) {
    (void)slot; /* gamma, beta, mean, var: [channels] */
    memset(out, 0, sizeof *out);
    out->rank = 1;
    out->dim[0] = n->a.channels;
    return 0;
}

static int bn_batch(const tl_batch_ctx *c, int *bf) {
    (void)bf;
    return c->n->a.channel_axis >= 1 ? TL_BATCH_CARRY : TL_BATCH_MIXES;
}

static int bn_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    const tl_node *n = st->node;
    tl_prep_norm *m = &st->p.nm;
    around_axis(&c->shapes[n->parents[0]], (int)n->a.channel_axis, m);
    const float *gm = n->param[0] ? n->param[0]->data : NULL, *bt = n->param[1] ? n->param[1]->data : NULL;
    const float *mu = n->param[2] ? n->param[2]->data : NULL, *var = n->param[3] ? n->param[3]->data : NULL;
    if (!mu || !var) return tl_errf(err, "node[%lld] (batch_norm_eval): mean/var are not bound", (long long)n->id);
    size_t cn = (size_t)(m->len ? m->len : 1);
    m->scale = malloc(sizeof(float) * cn);
    m->shift = malloc(sizeof(float) * cn);
    if (!m->scale || !m->shift)
        return tl_erroom(err, "node[%lld] (batch_norm_eval): out of memory for %zu channels", (long long)n->id, cn);
    for (int64_t ch = 0; ch < m->len; ch++) {
        double sc = (gm ? (double)gm[ch] : 1.0) / sqrt((double)var[ch] + n->a.eps);
        m->scale[ch] = (float)sc;
        m->shift[ch] = (float)((bt ? (double)bt[ch] : 0.0) - (double)mu[ch] * sc);
    }
    st->kernel = ex_batch_norm;
    return 0;
}

static void bn_release(tl_step *st) {
    free(st->p.nm.scale);
    free(st->p.nm.shift);
    st->p.nm.scale = st->p.nm.shift = NULL;
}

static int bn_emit(const tl_emit_ctx *c, tl_err *err) {
    (void)err;
    const tl_node *n = c->n;
    const tl_attrs *a = &n->a;
    const tl_shape *xs = &c->g->nodes[n->parents[0]].shape;
    tl_strbuf *b = c->b;
    bool direct = a->channel_axis == 1 && xs->rank >= 2;
    tl_sb_printf(b, "F.batch_norm(%s", c->p[0]);
    if (!direct) { /* [lead, C, rest] */
        int64_t lead = 1, rest = 1;
        for (int i = 0; i < a->channel_axis; i++) lead *= xs->dim[i];
        for (int i = (int)a->channel_axis + 1; i < xs->rank; i++) rest *= xs->dim[i];
        int64_t dims[3] = {c->batched ? -1 : lead, a->channels, rest};
        tl_sb_py_call(b, ".reshape", dims, 3);
    }
    char nm[4][96]; /* slots: gamma, beta, mean, var; F.batch_norm takes mean, var, weight, bias */
    for (int s = 0; s < 4; s++) tl_emit_param_name(c->g, n, s, nm[s], sizeof nm[s]);
    tl_sb_printf(b, ", self.%s, self.%s, self.%s, self.%s, training=False, eps=", nm[2], nm[3], nm[0], nm[1]);
    tl_sb_py_double(b, a->eps);
    tl_sb_putc(b, ')');
    if (!direct) tl_sb_py_shape_call(c, ".reshape", &n->shape);
    return 0;
}

/* batch norm is the per-channel affine map y = x * scale + shift (in double, unrounded) */
static int bn_channel_affine(const tl_step *st, int *axis, int64_t *channels, double *scale, double *shift) {
    const tl_node *n = st->node;
    *axis = (int)n->a.channel_axis;
    *channels = n->a.channels;
    if (!scale) return 0;
    const float *gm = n->param[0] ? n->param[0]->data : NULL, *bt = n->param[1] ? n->param[1]->data : NULL;
    const float *mu = n->param[2]->data, *var = n->param[3]->data;
    for (int64_t ch = 0; ch < n->a.channels; ch++) {
        scale[ch] = (gm ? (double)gm[ch] : 1.0) / sqrt((double)var[ch] + n->a.eps);
        shift[ch] = (bt ? (double)bt[ch] : 0.0) - (double)mu[ch] * scale[ch];
    }
    return 0;
}

/* float64: unfolded, (x - mean) / sqrt(var + eps) * gamma + beta per element, eps the node's
 * double (docs/float64.md) */
static void ex_batch_norm64(const tl_step *st, const double *const *in, double *out) {
    const tl_prep_norm *m = &st->p.nm;
    tl_k64_batch_norm(in[0], out, m->outer, m->len, m->inner, st->prm64[0], st->prm64[1], st->prm64[2], st->prm64[3],
                      st->node->a.eps);
}
static int bn_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (bn_prepare(c, st, err)) return -1;
    st->kernel64 = st->prm64[2] && st->prm64[3] ? ex_batch_norm64 : NULL;
    return 0;
}

const tl_family tl_fam_batchnorm = {
    .channel_affine = bn_channel_affine,
    .name = "batchnorm",
    .infer = bn_infer,
    .param_shape = bn_param_shape,
    .batch = bn_batch,
    .prepare = bn_prepare_both,
    .release = bn_release,
    .emit = bn_emit,
};

/* ---------------------------------------------------------------- softmax */
static int softmax_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    if (tl_check_axis(c->n->id, "axis", c->n->a.axis, c->ps[0], err)) return -1;
    *out = *c->ps[0];
    return 0;
}

static int softmax_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    (void)err;
    around_axis(&c->shapes[st->node->parents[0]], (int)st->node->a.axis, &st->p.nm);
    st->kernel = ex_softmax;
    return 0;
}

static int softmax_emit(const tl_emit_ctx *c, tl_err *err) {
    (void)err;
    tl_sb_printf(c->b, "torch.softmax(%s, dim=%lld)", c->p[0], (long long)c->n->a.axis);
    return 0;
}

/* float64: TorchLean's softmaxVecSpec (max seeded with the first element, exp, sum, divide) */
static void ex_softmax64(const tl_step *st, const double *const *in, double *out) {
    const tl_prep_norm *m = &st->p.nm;
    tl_k64_softmax(in[0], out, m->outer, m->len, m->inner);
}
static int softmax_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (softmax_prepare(c, st, err)) return -1;
    st->kernel64 = ex_softmax64;
    return 0;
}

const tl_family tl_fam_softmax = {
    .name = "softmax",
    .infer = softmax_infer,
    .batch = axis_batch,
    .prepare = softmax_prepare_both,
    .emit = softmax_emit,
};

/* ---------------------------------------------------------------- layernorm */
static int ln_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    const tl_shape *x = c->ps[0];
    int64_t id = c->n->id, axis = c->n->a.axis;
    if (tl_check_axis(id, "axis", axis, x, err)) return -1;
    int64_t m = 1;
    for (int i = (int)axis; i < x->rank; i++) m *= x->dim[i]; /* x already numel-checked */
    if (m <= 0)
        return tl_node_err(err, id, "axis", "normalized size must be > 0 (shape %s from axis %lld)", TL_SHAPE_STR(x),
                           (long long)axis);
    *out = *x;
    return 0;
}

static int ln_param_shape(const tl_node *n, int slot, tl_shape *out) {
    (void)slot; /* gamma, beta: the normalized trailing shape */
    const tl_attrs *a = &n->a;
    if (a->axis < 0 || a->axis > n->shape.rank) return -1;
    memset(out, 0, sizeof *out);
    out->rank = n->shape.rank - (int)a->axis;
    for (int i = 0; i < out->rank; i++) out->dim[i] = n->shape.dim[a->axis + i];
    return 0;
}

static int ln_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    (void)err;
    const tl_node *n = st->node;
    const tl_shape *p0 = &c->shapes[n->parents[0]];
    tl_prep_norm *m = &st->p.nm;
    int ax = (int)n->a.axis;
    m->outer = tl_prod(p0->dim, 0, ax);      /* rows */
    m->len = tl_prod(p0->dim, ax, p0->rank); /* normalized size */
    m->inner = 1;
    m->eps = (float)n->a.eps;
    m->gamma = n->param[0] ? n->param[0]->data : NULL;
    m->beta = n->param[1] ? n->param[1]->data : NULL;
    st->kernel = ex_layernorm;
    return 0;
}

static int ln_emit(const tl_emit_ctx *c, tl_err *err) {
    (void)err;
    const tl_node *n = c->n;
    const tl_shape *xs = &c->g->nodes[n->parents[0]].shape;
    char g[96], bt[96];
    tl_emit_param_name(c->g, n, 0, g, sizeof g);
    tl_emit_param_name(c->g, n, 1, bt, sizeof bt);
    tl_sb_printf(c->b, "F.layer_norm(%s, ", c->p[0]);
    tl_sb_py_tuple(c->b, &xs->dim[n->a.axis], xs->rank - (int)n->a.axis);
    tl_sb_printf(c->b, ", self.%s, self.%s, eps=", g, bt);
    tl_sb_py_double(c->b, n->a.eps);
    tl_sb_putc(c->b, ')');
    return 0;
}

/* float64: two-pass mean / biased variance, (x - mean) / sqrt(var + eps) * gamma + beta, eps the
 * node's double */
static void ex_layernorm64(const tl_step *st, const double *const *in, double *out) {
    const tl_prep_norm *m = &st->p.nm;
    tl_k64_layernorm(in[0], out, m->outer, m->len, st->prm64[0], st->prm64[1], st->node->a.eps);
}
static int ln_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (ln_prepare(c, st, err)) return -1;
    st->kernel64 = ex_layernorm64;
    return 0;
}

const tl_family tl_fam_layernorm = {
    .name = "layernorm",
    .infer = ln_infer,
    .param_shape = ln_param_shape,
    .batch = axis_batch,
    .prepare = ln_prepare_both,
    .emit = ln_emit,
};
