/* pool.c - max_pool and avg_pool over the trailing `spatial_rank` axes (TorchLean
 * NN/Spec/Layers/Pooling/Spatial.lean): max SKIPS padded cells (PyTorch's -inf padding; every
 * window holds an input cell since padding <= kernel / 2), avg adds padded cells as zero and
 * divides by the full window (count_include_pad=True). Floor-mode windows; an empty output axis
 * is rejected. Both are exact w.r.t. the scalar reference kernels (docs/kernels.md). */
#include <string.h>
#include "tl_emit.h"
#include "tl_par.h"
#include "tl_runtime_internal.h"

int tl_window_from_node(tl_window *w, const tl_node *n, const tl_shape *in, const tl_shape *out, int first_spatial,
                        bool conv, tl_err *err) {
    int sr = (int)n->a.spatial_rank;
    if (sr < 1 || sr > 3)
        return tl_errk(err, TL_ERR_UNSUPPORTED, "node[%lld] (%s): spatial_rank %d is not supported (1..3)",
                       (long long)n->id, tl_op_tag(n->op), sr);
    memset(w, 0, sizeof *w);
    w->rank = sr;
    for (int i = 0; i < sr; i++) {
        w->in[i] = in->dim[first_spatial + i];
        w->out[i] = out->dim[first_spatial + i];
        w->kernel[i] = n->a.kernel[i];
        w->stride[i] = n->a.stride[i];
        w->pad[i] = n->a.padding[i];
        w->pad_after[i] = conv ? n->a.padding_after[i] : n->a.padding[i];
        w->dilation[i] = conv ? (n->a.dilation[i] ? n->a.dilation[i] : 1) : 1;
    }
    return 0;
}

static void ex_max_pool(const tl_step *st, const float *const *in, float *out) {
    tl_par_pool(st->K, true, in[0], out, st->p.pool.planes, &st->p.pool.win);
}
static void ex_avg_pool(const tl_step *st, const float *const *in, float *out) {
    tl_par_pool(st->K, false, in[0], out, st->p.pool.planes, &st->p.pool.win);
}

static int pool_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    const tl_node *n = c->n;
    const tl_shape *x = c->ps[0];
    const tl_attrs *a = &n->a;
    int64_t id = n->id;
    const char *tag = tl_op_tag(n->op);
    if (a->spatial_rank <= 0) return tl_node_err(err, id, "spatial_rank", "must be > 0");
    if (a->spatial_rank > x->rank)
        return tl_node_err(err, id, "spatial_rank", "kernel rank %lld exceeds input rank %d (input %s)",
                           (long long)a->spatial_rank, x->rank, TL_SHAPE_STR(x));
    int sr = (int)a->spatial_rank, lead = x->rank - sr;
    for (int i = 0; i < sr; i++) {
        if (a->kernel[i] <= 0) return tl_node_err(err, id, "kernel", "axis %d kernel must be > 0", lead + i);
        if (a->stride[i] <= 0) return tl_node_err(err, id, "stride", "axis %d stride must be > 0", lead + i);
    }
    tl_shape o = *x;
    for (int i = 0; i < sr; i++) {
        int ax = lead + i;
        int64_t in = x->dim[ax], k = a->kernel[i], s = a->stride[i], p = a->padding[i];
        int64_t od = 0;
        /* TorchLean poolOutDim: empty input or padding beyond half the window -> empty axis;
         * otherwise the floor-mode sliding window (empty when the window does not fit). */
        if (in > 0 && p <= k / 2) {
            int64_t padded = in + 2 * p;
            od = padded < k ? 0 : (padded - k) / s + 1;
        }
        if (od == 0)
            return tl_node_err(err, id, NULL,
                               "%s: axis %d has an empty output (input=%lld, kernel=%lld, stride=%lld, "
                               "padding=%lld); "
                               "tlrt rejects empty pooling outputs",
                               tag, ax, (long long)in, (long long)k, (long long)s, (long long)p);
        o.dim[ax] = od;
    }
    *out = o;
    return 0;
}

static int pool_batch(const tl_batch_ctx *c, int *bf) {
    (void)bf;
    return c->g->nodes[c->n->parents[0]].shape.rank > c->n->a.spatial_rank ? TL_BATCH_CARRY : TL_BATCH_MIXES;
}

static int pool_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    const tl_node *n = st->node;
    const tl_shape *p0 = &c->shapes[n->parents[0]];
    int sr = (int)n->a.spatial_rank;
    if (tl_window_from_node(&st->p.pool.win, n, p0, &st->shape, p0->rank - sr, false, err)) return -1;
    st->p.pool.planes = tl_prod(p0->dim, 0, p0->rank - sr);
    st->kernel = n->op == TL_OP_MAX_POOL ? ex_max_pool : ex_avg_pool;
    return 0;
}

static int pool_emit(const tl_emit_ctx *c, tl_err *err) {
    const tl_node *n = c->n;
    const tl_attrs *a = &n->a;
    tl_strbuf *b = c->b;
    int r = (int)a->spatial_rank;
    if (r < 1 || r > 3)
        return tl_node_err(err, n->id, NULL, "%s with spatial_rank %d is not supported by PyTorch", tl_op_tag(n->op),
                           r);
    const tl_shape *xs = &c->g->nodes[n->parents[0]].shape;
    bool direct = xs->rank == r + 1 || xs->rank == r + 2;
    bool pad = false;
    for (int i = 0; i < r; i++) pad = pad || a->padding[i] != 0;
    tl_sb_printf(b, "F.%s_pool%dd(%s", n->op == TL_OP_MAX_POOL ? "max" : "avg", r, c->p[0]);
    if (!direct) { /* fold the leading axes into one */
        int64_t dims[TL_MAX_RANK];
        dims[0] = -1;
        for (int i = 0; i < r; i++) dims[1 + i] = xs->dim[xs->rank - r + i];
        tl_sb_py_call(b, ".reshape", dims, r + 1);
    }
    tl_sb_printf(b, ", kernel_size=");
    tl_sb_py_tuple(b, a->kernel, r);
    tl_sb_printf(b, ", stride=");
    tl_sb_py_tuple(b, a->stride, r);
    if (n->op == TL_OP_MAX_POOL) {
        /* padded cells never win (TorchLean maxPoolValue skips them, like PyTorch's -inf) */
        if (pad) {
            tl_sb_printf(b, ", padding=");
            tl_sb_py_tuple(b, a->padding, r);
        }
        tl_sb_putc(b, ')');
    } else {
        tl_sb_printf(b, ", padding=");
        tl_sb_py_tuple(b, a->padding, r);
        tl_sb_printf(b, ", count_include_pad=True)");
    }
    if (!direct) {
        tl_sb_py_shape_call(c, ".reshape", &n->shape);
    }
    return 0;
}

static bool pool_has(tl_op op) { return op == TL_OP_MAX_POOL || op == TL_OP_AVG_POOL; }

/* ---------------------------------------------------------------- float64: the same loops */
static void ex_max_pool64(const tl_step *st, const double *const *in, double *out) {
    tl_k64_max_pool(in[0], out, st->p.pool.planes, &st->p.pool.win);
}
static void ex_avg_pool64(const tl_step *st, const double *const *in, double *out) {
    tl_k64_avg_pool(in[0], out, st->p.pool.planes, &st->p.pool.win);
}
static int pool_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (pool_prepare(c, st, err)) return -1;
    st->kernel64 = st->op == TL_OP_MAX_POOL ? ex_max_pool64 : ex_avg_pool64;
    return 0;
}

const tl_family tl_fam_pool = {
    .name = "pool",
    .has = pool_has,
    .infer = pool_infer,
    .batch = pool_batch,
    .prepare = pool_prepare_both,
    .emit = pool_emit,
};
