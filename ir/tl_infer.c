/* tl_infer.c - output shape of every op from its parents' declared shapes and its attributes.
 * The rules follow TorchLean's NN/IR/Infer.lean + NN/IR/OpContracts.lean (facts, not code):
 * elementwise ops need equal shapes (broadcast is explicit), matmul is torch.matmul with 1-D
 * promotion and batch broadcasting, conv is inferConvConfigOutShape, pooling is planPool +
 * poolOutDim (tlrt additionally rejects an empty output axis), reductions drop (or keep as 1) the
 * listed axes in ONE node. Messages name the node and, when there is one, the field:
 *   node[7].perm: invalid permutation [0, 0] for shape [2, 3]
 *   node[5]: add: shape mismatch: [1, 4] vs [1, 3]                                          */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_graph.h"

#define SS(s) TL_SHAPE_STR(s)

/* "node[id].field: msg" (field NULL: "node[id]: msg"). Returns -1. */
static int nerr(tl_err *err, int64_t id, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int nerr(tl_err *err, int64_t id, const char *field, const char *fmt, ...) {
    if (!err) return -1;
    char msg[TL_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (field)
        return tl_errf(err, "node[%lld].%s: %s", (long long)id, field, msg);
    return tl_errf(err, "node[%lld]: %s", (long long)id, msg);
}

static char *nats_str(const int64_t *v, int n, char *buf, size_t len) {
    tl_shape s;
    memset(&s, 0, sizeof s);
    s.rank = n < 0 ? 0 : (n > TL_MAX_RANK ? TL_MAX_RANK : n);
    for (int i = 0; i < s.rank; i++) s.dim[i] = v[i];
    return tl_shape_str(&s, buf, len);
}
#define NS(v, n) nats_str((v), (n), (char[TL_SHAPE_STR_MAX]){0}, TL_SHAPE_STR_MAX)

/* a*b with overflow (and > TL_MAX_NUMEL) detection on non-negative operands. */
static int mul_ok(int64_t a, int64_t b, int64_t *out) {
    if (a < 0 || b < 0) return -1;
    if (a != 0 && b > TL_MAX_NUMEL / a) return -1;
    *out = a * b;
    return 0;
}

/* torch.expand / TorchLean CanBroadcastTo: right-aligned, each source extent equals the target
 * extent or is 1; the source rank may not exceed the target rank. */
static bool can_broadcast(const tl_shape *from, const tl_shape *to) {
    if (from->rank > to->rank) return false;
    int off = to->rank - from->rank;
    for (int i = 0; i < from->rank; i++) {
        int64_t f = from->dim[i], t = to->dim[off + i];
        if (f != t && f != 1) return false;
    }
    return true;
}

static int infer_matmul(int64_t id, const tl_shape *a, const tl_shape *b, tl_shape *out, tl_err *err) {
    if (a->rank == 0 || b->rank == 0)
        return nerr(err, id, NULL, "matmul: expected non-scalar inputs, got %s and %s", SS(a), SS(b));
    int64_t ka = a->dim[a->rank - 1];
    int64_t kb = b->rank >= 2 ? b->dim[b->rank - 2] : b->dim[0];
    if (ka != kb)
        return nerr(err, id, NULL, "matmul: inner dims mismatch: %lld vs %lld (%s @ %s)", (long long)ka,
                    (long long)kb, SS(a), SS(b));
    tl_shape o;
    memset(&o, 0, sizeof o);
    if (a->rank == 1 && b->rank == 1) { /* dot product */
        *out = o;
        return 0;
    }
    /* batch dims: leading axes of each operand (none for a promoted vector) */
    int la = a->rank >= 2 ? a->rank - 2 : 0, lb = b->rank >= 2 ? b->rank - 2 : 0;
    int lr = la > lb ? la : lb;
    for (int i = 0; i < lr; i++) {
        /* right-aligned */
        int ia = i - (lr - la), ib = i - (lr - lb);
        int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
        int64_t d;
        if (ia < 0) d = db;
        else if (ib < 0) d = da;
        else if (da == db) d = da;
        else if (da == 1) d = db;
        else if (db == 1) d = da;
        else
            return nerr(err, id, NULL, "matmul: incompatible batch dimensions %lld and %lld (%s @ %s)",
                        (long long)da, (long long)db, SS(a), SS(b));
        o.dim[o.rank++] = d;
    }
    if (a->rank >= 2) o.dim[o.rank++] = a->dim[a->rank - 2];
    if (b->rank >= 2) o.dim[o.rank++] = b->dim[b->rank - 1];
    *out = o;
    return 0;
}

static int check_axis(int64_t id, const char *field, int64_t axis, const tl_shape *s, tl_err *err) {
    if (axis < 0 || axis >= s->rank)
        return nerr(err, id, field, "invalid axis %lld for rank %d", (long long)axis, s->rank);
    return 0;
}

static int infer_conv(const tl_node *n, const tl_shape *x, tl_shape *out, tl_err *err) {
    const tl_attrs *a = &n->a;
    int64_t id = n->id;
    if (a->in_channels <= 0) return nerr(err, id, "in_channels", "must be > 0");
    if (a->out_channels <= 0) return nerr(err, id, "out_channels", "must be > 0");
    if (a->groups <= 0) return nerr(err, id, "groups", "must be > 0");
    if (a->in_channels % a->groups)
        return nerr(err, id, "groups", "in_channels=%lld is not divisible by groups=%lld",
                    (long long)a->in_channels, (long long)a->groups);
    if (a->out_channels % a->groups)
        return nerr(err, id, "groups", "out_channels=%lld is not divisible by groups=%lld",
                    (long long)a->out_channels, (long long)a->groups);
    if (a->spatial_rank <= 0) return nerr(err, id, "spatial_rank", "must be > 0");
    if (check_axis(id, "channel_axis", a->channel_axis, x, err)) return -1;
    int ca = (int)a->channel_axis;
    if (x->dim[ca] != a->in_channels)
        return nerr(err, id, "in_channels", "input-channel mismatch: op=%lld vs input=%lld (input %s)",
                    (long long)a->in_channels, (long long)x->dim[ca], SS(x));
    int nsp = x->rank - ca - 1;
    if (nsp != a->spatial_rank)
        return nerr(err, id, "spatial_rank",
                    "kernel rank %lld does not match the %d spatial axes after channel axis %d of %s",
                    (long long)a->spatial_rank, nsp, ca, SS(x));
    tl_shape o = *x;
    o.dim[ca] = a->out_channels;
    for (int i = 0; i < nsp; i++) {
        int ax = ca + 1 + i;
        int64_t in = x->dim[ax], k = a->kernel[i], s = a->stride[i], d = a->dilation[i];
        int64_t pb = a->padding[i], pa = a->padding_after[i];
        if (k <= 0) return nerr(err, id, "kernel", "axis %d kernel must be > 0", ax);
        if (s <= 0) return nerr(err, id, "stride", "axis %d stride must be > 0", ax);
        if (d <= 0) return nerr(err, id, "dilation", "axis %d dilation must be > 0", ax);
        if (a->input_spatial[i] != in)
            return nerr(err, id, "input_spatial", "expected %s (the spatial axes of input %s), got %s",
                        NS(&x->dim[ca + 1], nsp), SS(x), NS(a->input_spatial, nsp));
        int64_t eff; /* dilation*(k-1)+1, all operands < 2^53 */
        if (mul_ok(d, k - 1, &eff)) eff = INT64_MAX;
        else eff += 1;
        int64_t padded = in + pb + pa; /* each < 2^53: no overflow */
        if (padded < eff)
            return nerr(err, id, NULL,
                        "conv: axis %d window does not fit padded input: input=%lld, padding=(%lld, %lld), "
                        "effectiveKernel=%lld",
                        ax, (long long)in, (long long)pb, (long long)pa, (long long)eff);
        o.dim[ax] = (padded - eff) / s + 1;
    }
    *out = o;
    return 0;
}

static int infer_pool(const tl_node *n, const tl_shape *x, tl_shape *out, tl_err *err) {
    const tl_attrs *a = &n->a;
    int64_t id = n->id;
    const char *tag = tl_op_tag(n->op);
    if (a->spatial_rank <= 0) return nerr(err, id, "spatial_rank", "must be > 0");
    if (a->spatial_rank > x->rank)
        return nerr(err, id, "spatial_rank", "kernel rank %lld exceeds input rank %d (input %s)",
                    (long long)a->spatial_rank, x->rank, SS(x));
    int sr = (int)a->spatial_rank, lead = x->rank - sr;
    for (int i = 0; i < sr; i++) {
        if (a->kernel[i] <= 0) return nerr(err, id, "kernel", "axis %d kernel must be > 0", lead + i);
        if (a->stride[i] <= 0) return nerr(err, id, "stride", "axis %d stride must be > 0", lead + i);
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
            return nerr(err, id, NULL,
                        "%s: axis %d has an empty output (input=%lld, kernel=%lld, stride=%lld, padding=%lld); "
                        "tlrt rejects empty pooling outputs",
                        tag, ax, (long long)in, (long long)k, (long long)s, (long long)p);
        o.dim[ax] = od;
    }
    *out = o;
    return 0;
}

static int infer_reduce(const tl_node *n, const tl_shape *x, tl_shape *out, tl_err *err) {
    const tl_attrs *a = &n->a;
    bool mark[TL_MAX_RANK] = { false };
    if (a->axes_n < 0 || a->axes_n > TL_MAX_RANK)
        return nerr(err, n->id, "axes", "expected at most %d axes, got %d", TL_MAX_RANK, a->axes_n);
    for (int i = 0; i < a->axes_n; i++) {
        int64_t ax = a->axes[i];
        if (ax < 0 || ax >= x->rank)
            return nerr(err, n->id, "axes", "axis %lld out of range for rank %d", (long long)ax, x->rank);
        if (mark[ax]) return nerr(err, n->id, "axes", "duplicate axis %lld in %s", (long long)ax, NS(a->axes, a->axes_n));
        if (x->dim[ax] == 0)
            return nerr(err, n->id, "axes", "empty reduction axis %lld for shape %s", (long long)ax, SS(x));
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

static int infer_concat(const tl_node *n, const tl_shape *const *ps, tl_shape *out, tl_err *err) {
    const tl_shape *first = ps[0];
    if (check_axis(n->id, "axis", n->a.axis, first, err)) return -1;
    tl_shape o = *first;
    int ax = (int)n->a.axis;
    for (int p = 1; p < n->n_parents; p++) {
        const tl_shape *s = ps[p];
        if (s->rank != first->rank)
            return nerr(err, n->id, NULL, "concat: rank mismatch: parent %d has shape %s, parent 0 has %s", p,
                        SS(s), SS(first));
        for (int i = 0; i < s->rank; i++) {
            if (i == ax) continue;
            if (s->dim[i] != first->dim[i])
                return nerr(err, n->id, NULL, "concat: non-axis dim mismatch at axis %d: expected %lld, got %lld (parent %d)",
                            i, (long long)first->dim[i], (long long)s->dim[i], p);
        }
        o.dim[ax] += s->dim[ax];
        if (o.dim[ax] > TL_MAX_NUMEL)
            return nerr(err, n->id, NULL, "concat: output element count exceeds 2^40");
    }
    *out = o;
    return 0;
}

static int infer_node(const tl_graph *g, const tl_node *n, const tl_op_row *row, const tl_shape *const *ps,
                      const tl_node *tuple_parent, tl_shape *out, tl_err *err);

int tl_infer_shape(const tl_graph *g, int64_t id, tl_shape *out, tl_err *err) {
    if (!g || !out || id < 0 || id >= g->n_nodes) return tl_errf(err, "node[%lld]: no such node", (long long)id);
    const tl_node *n = &g->nodes[id];
    const tl_op_row *row = tl_op_info(n->op);
    if (!row) return nerr(err, id, "kind", "unknown op");
    int np = n->n_parents;
    if (np < 0 || (np > 0 && !n->parents)) return nerr(err, id, "parents", "malformed parent list");
    if (np < row->min_parents || (row->max_parents >= 0 && np > row->max_parents)) {
        if (row->max_parents >= 0)
            return nerr(err, id, NULL, "bad parent count for %s: expected %d..%d, got %d", row->tag, row->min_parents,
                        row->max_parents, np);
        return nerr(err, id, NULL, "bad parent count for %s: expected at least %d, got %d", row->tag,
                    row->min_parents, np);
    }
    enum { MAXP = 16 };
    const tl_shape *pbuf[MAXP];
    const tl_shape **ps = pbuf;
    if (np > MAXP) {
        ps = malloc((size_t)np * sizeof *ps);
        if (!ps) return nerr(err, id, NULL, "out of memory"), tl_err_as(err, TL_ERR_OOM);
    }
    const tl_node *tuple_parent = NULL;
    int rc = 0;
    for (int i = 0; i < np; i++) {
        int64_t p = n->parents[i];
        if (p < 0 || p >= id) {
            rc = nerr(err, id, NULL, "parent id %lld is not < %lld", (long long)p, (long long)id);
            break;
        }
        const tl_node *pn = &g->nodes[p];
        if (pn->is_tuple) {
            if (n->op != TL_OP_TUPLE_GETITEM) {
                rc = nerr(err, id, NULL, "parent node[%lld] is tuple-valued (%s); only tuple_getitem may consume it",
                          (long long)p, tl_op_tag(pn->op));
                break;
            }
            tuple_parent = pn;
        }
        ps[i] = &pn->shape;
    }
    if (!rc) rc = infer_node(g, n, row, ps, tuple_parent, out, err);
    if (ps != pbuf) free(ps);
    return rc;
}

static int infer_node(const tl_graph *g, const tl_node *n, const tl_op_row *row, const tl_shape *const *ps,
                      const tl_node *tuple_parent, tl_shape *out, tl_err *err) {
    (void)g;
    int64_t id = n->id;
    const tl_attrs *a = &n->a;
    tl_shape o;
    memset(&o, 0, sizeof o);
    int rc = 0;
    switch (n->op) {
    case TL_OP_INPUT:
    case TL_OP_RAND_UNIFORM:
        o = n->shape; /* part of the interface / declared */
        break;
    case TL_OP_CONST:
        o = a->value_shape;
        break;
    case TL_OP_DETACH: case TL_OP_ABS: case TL_OP_SQRT: case TL_OP_INV: case TL_OP_RELU:
    case TL_OP_TANH: case TL_OP_SIGMOID: case TL_OP_EXP: case TL_OP_LOG: case TL_OP_SIN:
    case TL_OP_COS: case TL_OP_SOFTPLUS: case TL_OP_HARD_MASKED_SOFTMAX:
        o = *ps[0];
        break;
    case TL_OP_ADD: case TL_OP_SUB: case TL_OP_MUL_ELEM: case TL_OP_MAX_ELEM: case TL_OP_MIN_ELEM:
        if (!tl_shape_eq(ps[0], ps[1]))
            return nerr(err, id, NULL, "%s: shape mismatch: %s vs %s", row->tag, SS(ps[0]), SS(ps[1]));
        o = *ps[0];
        break;
    case TL_OP_SAFE_LOG:
        if (ps[1]->rank != 0)
            return nerr(err, id, NULL, "safe_log: epsilon (parent 1) must be a scalar, got %s", SS(ps[1]));
        o = *ps[0];
        break;
    case TL_OP_BERNOULLI_MASK:
        if (ps[0]->rank != 0)
            return nerr(err, id, NULL, "bernoulli_mask: expected a scalar keep-probability parent, got %s", SS(ps[0]));
        o = n->shape;
        break;
    case TL_OP_BROADCAST_TO:
        if (!tl_shape_eq(ps[0], &a->from_shape))
            return nerr(err, id, "from_shape", "parent shape mismatch: expected %s, got %s", SS(&a->from_shape),
                        SS(ps[0]));
        if (!can_broadcast(&a->from_shape, &a->to_shape))
            return nerr(err, id, "to_shape", "invalid broadcast from %s to %s", SS(&a->from_shape), SS(&a->to_shape));
        o = a->to_shape;
        break;
    case TL_OP_PERMUTE: {
        const tl_shape *x = ps[0];
        bool seen[TL_MAX_RANK] = { false };
        bool ok = a->perm_n == x->rank;
        for (int i = 0; ok && i < a->perm_n; i++) {
            int64_t p = a->perm[i];
            if (p < 0 || p >= x->rank || seen[p]) ok = false;
            else seen[p] = true;
        }
        if (!ok)
            return nerr(err, id, "perm", "invalid permutation %s for shape %s", NS(a->perm, a->perm_n), SS(x));
        o.rank = x->rank;
        for (int i = 0; i < x->rank; i++) o.dim[i] = x->dim[a->perm[i]];
        break;
    }
    case TL_OP_TRANSPOSE: {
        const tl_shape *x = ps[0];
        if (a->axis1 < 0 || a->axis1 >= x->rank)
            return nerr(err, id, "axis1", "axis %lld out of range for rank %d", (long long)a->axis1, x->rank);
        if (a->axis2 < 0 || a->axis2 >= x->rank)
            return nerr(err, id, "axis2", "axis %lld out of range for rank %d", (long long)a->axis2, x->rank);
        o = *x;
        o.dim[a->axis1] = x->dim[a->axis2];
        o.dim[a->axis2] = x->dim[a->axis1];
        break;
    }
    case TL_OP_RESHAPE: {
        int64_t ni, no;
        if (!tl_shape_eq(ps[0], &a->in_shape))
            return nerr(err, id, "in_shape", "parent shape mismatch: expected %s, got %s", SS(&a->in_shape), SS(ps[0]));
        if (tl_shape_numel_checked(&a->in_shape, &ni) || tl_shape_numel_checked(&a->out_shape, &no))
            return nerr(err, id, "out_shape", "element count exceeds 2^40");
        if (ni != no)
            return nerr(err, id, "out_shape", "numel mismatch: %lld vs %lld (%s -> %s)", (long long)ni, (long long)no,
                        SS(&a->in_shape), SS(&a->out_shape));
        o = a->out_shape;
        break;
    }
    case TL_OP_FLATTEN: {
        int64_t ne;
        if (!tl_shape_eq(ps[0], &a->value_shape))
            return nerr(err, id, "value_shape", "parent shape mismatch: expected %s, got %s", SS(&a->value_shape),
                        SS(ps[0]));
        if (tl_shape_numel_checked(&a->value_shape, &ne)) return nerr(err, id, "value_shape", "element count exceeds 2^40");
        o.rank = 1;
        o.dim[0] = ne;
        break;
    }
    case TL_OP_CONCAT:
        rc = infer_concat(n, ps, &o, err);
        break;
    case TL_OP_REDUCE_SUM:
    case TL_OP_REDUCE_MEAN:
        rc = infer_reduce(n, ps[0], &o, err);
        break;
    case TL_OP_SUM:
        break; /* scalar */
    case TL_OP_MSE_LOSS:
        if (!tl_shape_eq(ps[0], ps[1]))
            return nerr(err, id, NULL, "mse_loss: yhat/target shape mismatch: %s vs %s", SS(ps[0]), SS(ps[1]));
        break; /* scalar */
    case TL_OP_MATMUL:
        rc = infer_matmul(id, ps[0], ps[1], &o, err);
        break;
    case TL_OP_LINEAR: {
        const tl_shape *x = ps[0];
        if (x->rank < 1) return nerr(err, id, NULL, "linear: expected an input of rank >= 1, got %s", SS(x));
        if (a->in_dim < 0) return nerr(err, id, "in_dim", "missing and cannot be derived");
        if (a->out_dim < 0) return nerr(err, id, "out_dim", "missing and cannot be derived");
        if (x->dim[x->rank - 1] != a->in_dim)
            return nerr(err, id, "in_dim", "input last dimension is %lld (input %s), but in_dim is %lld",
                        (long long)x->dim[x->rank - 1], SS(x), (long long)a->in_dim);
        o = *x;
        o.dim[o.rank - 1] = a->out_dim;
        break;
    }
    case TL_OP_CONV:
        rc = infer_conv(n, ps[0], &o, err);
        break;
    case TL_OP_MAX_POOL:
    case TL_OP_AVG_POOL:
        rc = infer_pool(n, ps[0], &o, err);
        break;
    case TL_OP_BATCH_NORM_EVAL: {
        const tl_shape *x = ps[0];
        if (a->channels <= 0) return nerr(err, id, "channels", "must be > 0");
        if (check_axis(id, "channel_axis", a->channel_axis, x, err)) return -1;
        if (x->dim[a->channel_axis] != a->channels)
            return nerr(err, id, "channels", "channel mismatch: op=%lld vs input=%lld (input %s)", (long long)a->channels,
                        (long long)x->dim[a->channel_axis], SS(x));
        o = *x;
        break;
    }
    case TL_OP_SOFTMAX:
        if (check_axis(id, "axis", a->axis, ps[0], err)) return -1;
        o = *ps[0];
        break;
    case TL_OP_LAYERNORM: {
        const tl_shape *x = ps[0];
        if (check_axis(id, "axis", a->axis, x, err)) return -1;
        int64_t m = 1;
        for (int i = (int)a->axis; i < x->rank; i++) m *= x->dim[i]; /* x already numel-checked */
        if (m <= 0)
            return nerr(err, id, "axis", "normalized size must be > 0 (shape %s from axis %lld)", SS(x), (long long)a->axis);
        o = *x;
        break;
    }
    case TL_OP_TUPLE_GETITEM:
        if (!tuple_parent)
            return nerr(err, id, NULL, "tuple_getitem: parent node[%lld] is not tuple-valued", (long long)n->parents[0]);
        if (a->index < 0 || a->index >= tuple_parent->n_tuple || !tuple_parent->tuple_shapes)
            return nerr(err, id, "index", "tuple index %lld is out of bounds for %d components", (long long)a->index,
                        tuple_parent->n_tuple);
        o = tuple_parent->tuple_shapes[a->index];
        break;
    case TL_OP_MULTIHEAD_ATTENTION:
        return nerr(err, id, NULL, "multihead_attention is tuple-valued: it has no tensor shape");
    case TL_OP_CUSTOM:
        return nerr(err, id, NULL, "custom is not executable (no runtime semantics)");
    default:
        return nerr(err, id, "kind", "unknown op");
    }
    if (rc) return -1;
    int64_t ne;
    if (o.rank < 0 || o.rank > TL_MAX_RANK || tl_shape_numel_checked(&o, &ne))
        return nerr(err, id, NULL, "%s: output element count of %s exceeds 2^40", row->tag, SS(&o));
    *out = o;
    return 0;
}
