/* reduce.c - reductions: reduce_sum / reduce_mean over a list of axes (one node; TorchLean lowers
 * them one axis at a time, the values are the same), sum (all elements -> scalar), mse_loss
 * (mean of squared differences -> scalar).
 *
 * Multi-axis reductions run as passes over runs of adjacent axes, largest axis first, each pass
 * a [outer, len, inner] middle-axis sum (kernel reduce_mid); reduce_mean multiplies each pass by
 * 1/len (so a mean over several runs is a mean of means: the same rounding TorchLean's one-axis-
 * at-a-time lowering has). Summation order and accuracy: docs/kernels.md. */
#include <stdlib.h>
#include <string.h>
#include "tl_emit.h"
#include "tl_runtime_internal.h"

/* ---------------------------------------------------------------- exec */
static void ex_reduce(const tl_step *st, const float *const *in, float *out) {
    const tl_prep_reduce *r = &st->p.rd;
    const float *src = in[0];
    /* one pass has no scratch (NULL): NULL + offset is UB even when unused */
    float *bufs[2] = {st->scratch, st->scratch ? st->scratch + r->buf0 : NULL};
    for (int p = 0; p < r->n_pass; p++) {
        float *dst = p == r->n_pass - 1 ? out : bufs[p & 1];
        float mul = r->mean ? 1.0f / (float)r->pass_len[p] : 1.0f;
        st->K->reduce_mid(src, dst, r->pass_outer[p], r->pass_len[p], r->pass_inner[p], mul);
        src = dst;
    }
    if (r->n_pass == 0) memcpy(out, in[0], (size_t)st->numel * sizeof(float));
}

static void ex_sum(const tl_step *st, const float *const *in, float *out) {
    st->K->reduce_mid(in[0], out, 1, st->p.rd.len, 1, 1.0f);
}

static void ex_mse(const tl_step *st, const float *const *in, float *out) {
    const tl_kernel_table *K = st->K;
    int64_t n = st->p.rd.len;
    K->binary_fn[TL_B_SUB](in[0], in[1], st->scratch, n);
    K->binary_fn[TL_B_MUL](st->scratch, st->scratch, st->scratch, n);
    K->reduce_mid(st->scratch, out, 1, n, 1, n ? 1.0f / (float)n : 0.0f);
}

/* ---------------------------------------------------------------- reduce_sum / reduce_mean */
static int reduce_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    const tl_node *n = c->n;
    const tl_attrs *a = &n->a;
    const tl_shape *x = c->ps[0];
    bool mark[TL_MAX_RANK] = {false};
    if (a->axes_n < 0 || a->axes_n > TL_MAX_RANK)
        return tl_node_err(err, n->id, "axes", "expected at most %d axes, got %d", TL_MAX_RANK, a->axes_n);
    for (int i = 0; i < a->axes_n; i++) {
        int64_t ax = a->axes[i];
        if (ax < 0 || ax >= x->rank)
            return tl_node_err(err, n->id, "axes", "axis %lld out of range for rank %d", (long long)ax, x->rank);
        if (mark[ax])
            return tl_node_err(err, n->id, "axes", "duplicate axis %lld in %s", (long long)ax,
                               TL_NATS_STR(a->axes, a->axes_n));
        if (x->dim[ax] == 0)
            return tl_node_err(err, n->id, "axes", "empty reduction axis %lld for shape %s", (long long)ax,
                               TL_SHAPE_STR(x));
        mark[ax] = true;
    }
    tl_shape o;
    memset(&o, 0, sizeof o);
    for (int i = 0; i < x->rank; i++) {
        if (!mark[i]) o.dim[o.rank++] = x->dim[i];
        else if (a->keepdim) o.dim[o.rank++] = 1;
    }
    *out = o;
    return 0;
}

static int reduce_batch(const tl_batch_ctx *c, int *bf) {
    (void)bf;
    for (int i = 0; i < c->n->a.axes_n; i++)
        if (c->n->a.axes[i] == 0) return TL_BATCH_MIXES;
    return TL_BATCH_CARRY;
}

static int reduce_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    (void)err;
    const tl_node *n = st->node;
    const tl_shape *p0 = &c->shapes[n->parents[0]];
    tl_prep_reduce *r = &st->p.rd;
    bool red[TL_MAX_RANK] = {false};
    for (int i = 0; i < n->a.axes_n; i++) red[n->a.axes[i]] = true;
    int64_t cur[TL_MAX_RANK];
    for (int i = 0; i < p0->rank; i++) cur[i] = p0->dim[i];
    int64_t after_prev = tl_shape_numel(p0), buf1 = 0;
    r->mean = n->op == TL_OP_REDUCE_MEAN;
    r->n_pass = 0;
    r->buf0 = 0;
    for (int hi = p0->rank - 1; hi >= 0; hi--) { /* runs of adjacent axes, largest first */
        if (!red[hi]) continue;
        int lo = hi;
        while (lo > 0 && red[lo - 1]) lo--;
        int k = r->n_pass++;
        r->pass_outer[k] = tl_prod(cur, 0, lo);
        r->pass_len[k] = tl_prod(cur, lo, hi + 1);
        r->pass_inner[k] = tl_prod(cur, hi + 1, p0->rank);
        for (int i = lo; i <= hi; i++) cur[i] = 1;
        int64_t after = r->pass_len[k] ? after_prev / r->pass_len[k] : 0;
        if (k == 0) r->buf0 = after; /* scratch buffer 0 */
        if (k == 1) buf1 = after;    /* scratch buffer 1 */
        after_prev = after;
        hi = lo;
    }
    st->scratch_floats = r->n_pass > 1 ? r->buf0 + buf1 : 0;
    st->kernel = ex_reduce;
    return 0;
}

static int reduce_emit(const tl_emit_ctx *c, tl_err *err) {
    (void)err;
    const tl_attrs *a = &c->n->a;
    if (a->axes_n == 0) { /* no axes: identity */
        tl_sb_printf(c->b, "%s.clone()", c->p[0]);
        return 0;
    }
    tl_sb_printf(c->b, "torch.%s(%s, dim=", c->n->op == TL_OP_REDUCE_SUM ? "sum" : "mean", c->p[0]);
    tl_sb_py_tuple(c->b, a->axes, a->axes_n);
    tl_sb_printf(c->b, ", keepdim=%s)", a->keepdim ? "True" : "False");
    return 0;
}

static bool reduce_has(tl_op op) { return op == TL_OP_REDUCE_SUM || op == TL_OP_REDUCE_MEAN; }

/* ---------------------------------------------------------------- float64
 * The same passes in double: each output the left-to-right sum from 0 of its elements in
 * row-major order of the reduced run (a mean: that sum times 1/len, per pass). */
static void ex_reduce64(const tl_step *st, const double *const *in, double *out) {
    const tl_prep_reduce *r = &st->p.rd;
    const double *src = in[0];
    double *bufs[2] = {st->scratch64p, st->scratch64p ? st->scratch64p + r->buf0 : NULL}; /* as ex_reduce */
    for (int p = 0; p < r->n_pass; p++) {
        double *dst = p == r->n_pass - 1 ? out : bufs[p & 1];
        double mul = r->mean ? 1.0 / (double)r->pass_len[p] : 1.0;
        tl_k64_reduce_mid(src, dst, r->pass_outer[p], r->pass_len[p], r->pass_inner[p], mul);
        src = dst;
    }
    if (r->n_pass == 0) memcpy(out, in[0], (size_t)st->numel * sizeof(double));
}
static int reduce_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (reduce_prepare(c, st, err)) return -1;
    st->scratch64 = st->scratch_floats; /* the same element counts */
    st->kernel64 = ex_reduce64;
    return 0;
}

const tl_family tl_fam_reduce = {
    .name = "reduce",
    .has = reduce_has,
    .infer = reduce_infer,
    .batch = reduce_batch,
    .prepare = reduce_prepare_both,
    .emit = reduce_emit,
};

/* ---------------------------------------------------------------- sum, mse_loss (-> scalar) */
static int scalar_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    if (c->n->op == TL_OP_MSE_LOSS && !tl_shape_eq(c->ps[0], c->ps[1]))
        return tl_node_err(err, c->n->id, NULL, "mse_loss: yhat/target shape mismatch: %s vs %s",
                           TL_SHAPE_STR(c->ps[0]), TL_SHAPE_STR(c->ps[1]));
    memset(out, 0, sizeof *out);
    return 0;
}

static int mixes(const tl_batch_ctx *c, int *bf) {
    (void)c;
    (void)bf; /* a scalar over every sample */
    return TL_BATCH_MIXES;
}

static int sum_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    (void)err;
    st->p.rd.len = tl_shape_numel(&c->shapes[st->node->parents[0]]);
    st->kernel = ex_sum;
    return 0;
}

static int mse_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    (void)err;
    st->p.rd.len = tl_shape_numel(&c->shapes[st->node->parents[0]]);
    st->scratch_floats = st->p.rd.len;
    st->kernel = ex_mse;
    return 0;
}

static int sum_emit(const tl_emit_ctx *c, tl_err *err) {
    (void)err;
    tl_sb_printf(c->b, "torch.sum(%s)", c->p[0]);
    return 0;
}

static int mse_emit(const tl_emit_ctx *c, tl_err *err) {
    (void)err;
    tl_sb_printf(c->b, "F.mse_loss(%s, %s)", c->p[0], c->p[1]);
    return 0;
}

/* float64: sum left to right from 0; mse = (sum of (a-b)*(a-b) left to right) * (1/n) */
static void ex_sum64(const tl_step *st, const double *const *in, double *out) {
    tl_k64_reduce_mid(in[0], out, 1, st->p.rd.len, 1, 1.0);
}
static void ex_mse64(const tl_step *st, const double *const *in, double *out) {
    int64_t n = st->p.rd.len;
    double *d = st->scratch64p;
    for (int64_t i = 0; i < n; i++) d[i] = (in[0][i] - in[1][i]) * (in[0][i] - in[1][i]);
    tl_k64_reduce_mid(d, out, 1, n, 1, n ? 1.0 / (double)n : 0.0);
}
static int sum_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (sum_prepare(c, st, err)) return -1;
    st->kernel64 = ex_sum64;
    return 0;
}
static int mse_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (mse_prepare(c, st, err)) return -1;
    st->scratch64 = st->p.rd.len;
    st->kernel64 = ex_mse64;
    return 0;
}

const tl_family tl_fam_sum = {
    .name = "sum",
    .infer = scalar_infer,
    .batch = mixes,
    .prepare = sum_prepare_both,
    .emit = sum_emit,
};

const tl_family tl_fam_mse_loss = {
    .name = "mse_loss",
    .infer = scalar_infer,
    .batch = mixes,
    .prepare = mse_prepare_both,
    .emit = mse_emit,
};
