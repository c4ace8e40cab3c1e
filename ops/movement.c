/* movement.c - data movement: detach, reshape, flatten (zero-copy aliases of their parent),
 * broadcast_to, permute, transpose, concat. No arithmetic: every lowering is exact.
 *
 * Batch rules: an op carries the batch when axis 0 stays axis 0 with the same meaning (a permute
 * keeping axis 0 first, a reshape/broadcast whose leading extent is the batch on both sides, a
 * concat along another axis of batch-carrying parts); flatten of a rank > 1 value, a transpose
 * moving axis 0, ... mix samples. Uniform (the same for every sample): a broadcast that expands
 * axis 0 from extent 1 or from no axis, a reshape that adds a leading axis of extent 1. */
#include <stdlib.h>
#include <string.h>
#include "tl_emit.h"
#include "tl_runtime_internal.h"

static int64_t prod_from(const tl_shape *s, int from) { return tl_prod(s->dim, from, s->rank); }

void tl_exec_copy(const tl_step *st, const float *const *in, float *out) {
    if (out != in[0]) memmove(out, in[0], (size_t)st->numel * sizeof(float));
}

static void ex_permute(const tl_step *st, const float *const *in, float *out) {
    tl_k_permute(in[0], out, st->p.mv.rank, st->p.mv.dims, st->p.mv.perm);
}
static void ex_broadcast(const tl_step *st, const float *const *in, float *out) {
    tl_k_broadcast(in[0], out, st->p.mv.rank, st->p.mv.dims, st->p.mv.dims2);
}
static void ex_concat(const tl_step *st, const float *const *in, float *out) {
    tl_k_concat(in, st->p.mv.part_len, st->n_in, out, st->p.mv.outer, st->p.mv.inner);
}
/* A re-batched concat with a part that is the same for every sample (a class token broadcast
 * over the captured batch): that part keeps its captured batch and is read at sample 0 for every
 * sample (part_len[n_in + i] = its rows per sample; 0 for a batch-carrying part). Copies only. */
static void ex_concat_uniform(const tl_step *st, const float *const *in, float *out) {
    const tl_prep_move *m = &st->p.mv;
    int np = st->n_in;
    float *dst = out;
    for (int64_t o = 0; o < m->outer; o++)
        for (int i = 0; i < np; i++) {
            int64_t len = m->part_len[i] * m->inner, per = m->part_len[np + i];
            memcpy(dst, in[i] + (per ? o % per : o) * len, sizeof(float) * (size_t)len);
            dst += len;
        }
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

/* ---------------------------------------------------------------- shared pieces */
static int carry(const tl_batch_ctx *c, int *bf) {
    (void)c;
    (void)bf;
    return TL_BATCH_CARRY;
}
static bool uniform_if_parent(const tl_batch_ctx *c) { return c->uni[c->n->parents[0]]; }

static int alias_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    (void)c;
    (void)err;
    st->kernel = tl_exec_copy; /* only run when the planner must materialize it */
    return 0;
}

static int perm_prepare_dims(const tl_prep_ctx *c, tl_step *st) {
    const tl_shape *p0 = &c->shapes[st->node->parents[0]];
    st->p.mv.rank = p0->rank;
    for (int i = 0; i < p0->rank; i++) st->p.mv.dims[i] = p0->dim[i];
    st->kernel = ex_permute;
    return 0;
}

/* ---------------------------------------------------------------- float64
 * A float64 session's movement ops: the same copies over doubles (exact). */
static int broadcast_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err);
static int permute_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err);
static int transpose_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err);
static int concat_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err);

void tl_exec_copy64(const tl_step *st, const double *const *in, double *out) {
    if (out != in[0]) memmove(out, in[0], (size_t)st->numel * sizeof(double));
}
static void ex_permute64(const tl_step *st, const double *const *in, double *out) {
    tl_k64_permute(in[0], out, st->p.mv.rank, st->p.mv.dims, st->p.mv.perm);
}
static void ex_broadcast64(const tl_step *st, const double *const *in, double *out) {
    tl_k64_broadcast(in[0], out, st->p.mv.rank, st->p.mv.dims, st->p.mv.dims2);
}
static void ex_concat64(const tl_step *st, const double *const *in, double *out) {
    const tl_prep_move *m = &st->p.mv;
    int np = st->n_in;
    bool uniform = false;
    for (int i = 0; i < np; i++) uniform |= m->part_len[np + i] != 0;
    if (!uniform) {
        tl_k64_concat(in, m->part_len, np, out, m->outer, m->inner);
        return;
    }
    double *dst = out; /* as ex_concat_uniform */
    for (int64_t o = 0; o < m->outer; o++)
        for (int i = 0; i < np; i++) {
            int64_t len = m->part_len[i] * m->inner, per = m->part_len[np + i];
            memcpy(dst, in[i] + (per ? o % per : o) * len, sizeof(double) * (size_t)len);
            dst += len;
        }
}
static int alias_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (alias_prepare(c, st, err)) return -1;
    st->kernel64 = tl_exec_copy64;
    return 0;
}
static int broadcast_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (broadcast_prepare(c, st, err)) return -1;
    st->kernel64 = ex_broadcast64;
    return 0;
}
static int permute_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (permute_prepare(c, st, err)) return -1;
    st->kernel64 = ex_permute64;
    return 0;
}
static int transpose_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (transpose_prepare(c, st, err)) return -1;
    st->kernel64 = ex_permute64;
    return 0;
}
static int concat_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (concat_prepare(c, st, err)) return -1;
    st->kernel64 = ex_concat64;
    return 0;
}

/* ---------------------------------------------------------------- detach */
static int detach_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    (void)err;
    *out = *c->ps[0];
    return 0;
}
static int detach_emit(const tl_emit_ctx *c, tl_err *err) {
    (void)err;
    tl_sb_printf(c->b, "%s.detach()", c->p[0]);
    return 0;
}
const tl_family tl_fam_detach = {
    .name = "detach",
    .infer = detach_infer,
    .batch = carry,
    .uniform = uniform_if_parent,
    .prepare = alias_prepare_both,
    .emit = detach_emit,
};

/* ---------------------------------------------------------------- reshape */
static int reshape_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    const tl_attrs *a = &c->n->a;
    int64_t id = c->n->id, ni, no;
    if (!tl_shape_eq(c->ps[0], &a->in_shape))
        return tl_node_err(err, id, "in_shape", "parent shape mismatch: expected %s, got %s",
                           TL_SHAPE_STR(&a->in_shape), TL_SHAPE_STR(c->ps[0]));
    if (tl_shape_numel_checked(&a->in_shape, &ni) || tl_shape_numel_checked(&a->out_shape, &no))
        return tl_node_err(err, id, "out_shape", "element count exceeds 2^40");
    if (ni != no)
        return tl_node_err(err, id, "out_shape", "numel mismatch: %lld vs %lld (%s -> %s)", (long long)ni,
                           (long long)no, TL_SHAPE_STR(&a->in_shape), TL_SHAPE_STR(&a->out_shape));
    *out = a->out_shape;
    return 0;
}
static int reshape_batch(const tl_batch_ctx *c, int *bf) {
    (void)bf;
    const tl_shape *p0 = &c->g->nodes[c->n->parents[0]].shape, *out = &c->n->shape;
    if (p0->rank == 0 || out->rank == 0 || p0->dim[0] != c->B || out->dim[0] != c->B) return TL_BATCH_MIXES;
    return prod_from(p0, 1) == prod_from(out, 1) ? TL_BATCH_CARRY : TL_BATCH_MIXES;
}
static bool reshape_uniform(const tl_batch_ctx *c) {
    const tl_shape *p0 = &c->g->nodes[c->n->parents[0]].shape, *out = &c->n->shape;
    if (p0->rank < out->rank && out->dim[0] == 1) return true; /* adds a leading axis */
    return c->uni[c->n->parents[0]] && p0->rank > 0 && p0->dim[0] == out->dim[0];
}
static int reshape_emit(const tl_emit_ctx *c, tl_err *err) {
    (void)err;
    tl_sb_printf(c->b, "%s", c->p[0]);
    tl_sb_py_shape_call(c, ".reshape", &c->n->a.out_shape);
    return 0;
}
const tl_family tl_fam_reshape = {
    .name = "reshape",
    .infer = reshape_infer,
    .batch = reshape_batch,
    .uniform = reshape_uniform,
    .prepare = alias_prepare_both,
    .emit = reshape_emit,
};

/* ---------------------------------------------------------------- flatten */
static int flatten_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    const tl_attrs *a = &c->n->a;
    int64_t ne;
    if (!tl_shape_eq(c->ps[0], &a->value_shape))
        return tl_node_err(err, c->n->id, "value_shape", "parent shape mismatch: expected %s, got %s",
                           TL_SHAPE_STR(&a->value_shape), TL_SHAPE_STR(c->ps[0]));
    if (tl_shape_numel_checked(&a->value_shape, &ne))
        return tl_node_err(err, c->n->id, "value_shape", "element count exceeds 2^40");
    memset(out, 0, sizeof *out);
    out->rank = 1;
    out->dim[0] = ne;
    return 0;
}
static int flatten_batch(const tl_batch_ctx *c, int *bf) {
    (void)bf; /* flattening [B, ...] into one axis mixes samples; a vector stays as it is */
    return c->g->nodes[c->n->parents[0]].shape.rank == 1 ? TL_BATCH_CARRY : TL_BATCH_MIXES;
}
static int flatten_emit(const tl_emit_ctx *c, tl_err *err) {
    (void)err;
    tl_sb_printf(c->b, "torch.flatten(%s)", c->p[0]);
    if (c->n->a.value_shape.rank == 0) {
        tl_sb_py_call(c->b, ".reshape", c->n->shape.dim, c->n->shape.rank);
    }
    return 0;
}
const tl_family tl_fam_flatten = {
    .name = "flatten",
    .infer = flatten_infer,
    .batch = flatten_batch,
    .prepare = alias_prepare_both,
    .emit = flatten_emit,
};

/* ---------------------------------------------------------------- broadcast_to */
static int broadcast_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    const tl_attrs *a = &c->n->a;
    if (!tl_shape_eq(c->ps[0], &a->from_shape))
        return tl_node_err(err, c->n->id, "from_shape", "parent shape mismatch: expected %s, got %s",
                           TL_SHAPE_STR(&a->from_shape), TL_SHAPE_STR(c->ps[0]));
    if (!can_broadcast(&a->from_shape, &a->to_shape))
        return tl_node_err(err, c->n->id, "to_shape", "invalid broadcast from %s to %s", TL_SHAPE_STR(&a->from_shape),
                           TL_SHAPE_STR(&a->to_shape));
    *out = a->to_shape;
    return 0;
}
static int broadcast_batch(const tl_batch_ctx *c, int *bf) {
    (void)bf;
    const tl_shape *f = &c->n->a.from_shape, *t = &c->n->a.to_shape;
    if (f->rank != t->rank || f->rank == 0 || f->dim[0] != c->B || t->dim[0] != c->B) return TL_BATCH_MIXES;
    return TL_BATCH_CARRY;
}
static bool broadcast_uniform(const tl_batch_ctx *c) {
    const tl_shape *p0 = &c->g->nodes[c->n->parents[0]].shape;
    return c->uni[c->n->parents[0]] || p0->rank < c->n->shape.rank || p0->dim[0] == 1;
}
static int broadcast_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    (void)err;
    const tl_shape *p0 = &c->shapes[st->node->parents[0]], *out = &st->shape;
    st->p.mv.rank = out->rank;
    int pad = out->rank - p0->rank;
    for (int i = 0; i < out->rank; i++) {
        st->p.mv.dims[i] = i < pad ? 1 : p0->dim[i - pad];
        st->p.mv.dims2[i] = out->dim[i];
    }
    st->kernel = ex_broadcast;
    return 0;
}
static int broadcast_emit(const tl_emit_ctx *c, tl_err *err) {
    (void)err;
    tl_sb_printf(c->b, "%s", c->p[0]);
    tl_sb_py_shape_call(c, ".expand", &c->n->a.to_shape);
    return 0;
}
const tl_family tl_fam_broadcast = {
    .name = "broadcast",
    .infer = broadcast_infer,
    .batch = broadcast_batch,
    .uniform = broadcast_uniform,
    .prepare = broadcast_prepare_both,
    .emit = broadcast_emit,
};

/* ---------------------------------------------------------------- permute */
static int permute_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    const tl_attrs *a = &c->n->a;
    const tl_shape *x = c->ps[0];
    bool seen[TL_MAX_RANK] = {false};
    bool ok = a->perm_n == x->rank;
    for (int i = 0; ok && i < a->perm_n; i++) {
        int64_t p = a->perm[i];
        if (p < 0 || p >= x->rank || seen[p]) ok = false;
        else seen[p] = true;
    }
    if (!ok)
        return tl_node_err(err, c->n->id, "perm", "invalid permutation %s for shape %s",
                           TL_NATS_STR(a->perm, a->perm_n), TL_SHAPE_STR(x));
    memset(out, 0, sizeof *out);
    out->rank = x->rank;
    for (int i = 0; i < x->rank; i++) out->dim[i] = x->dim[a->perm[i]];
    return 0;
}
static int permute_batch(const tl_batch_ctx *c, int *bf) {
    (void)bf;
    return (c->n->a.perm_n > 0 && c->n->a.perm[0] == 0) ? TL_BATCH_CARRY : TL_BATCH_MIXES;
}
static int permute_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    (void)err;
    perm_prepare_dims(c, st);
    for (int i = 0; i < st->p.mv.rank; i++) st->p.mv.perm[i] = st->node->a.perm[i];
    return 0;
}
static int permute_emit(const tl_emit_ctx *c, tl_err *err) {
    (void)err;
    tl_sb_printf(c->b, "%s", c->p[0]);
    tl_sb_py_call(c->b, ".permute", c->n->a.perm, c->n->a.perm_n);
    return 0;
}
const tl_family tl_fam_permute = {
    .name = "permute",
    .infer = permute_infer,
    .batch = permute_batch,
    .prepare = permute_prepare_both,
    .emit = permute_emit,
};

/* ---------------------------------------------------------------- transpose */
static int transpose_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    const tl_attrs *a = &c->n->a;
    const tl_shape *x = c->ps[0];
    if (a->axis1 < 0 || a->axis1 >= x->rank)
        return tl_node_err(err, c->n->id, "axis1", "axis %lld out of range for rank %d", (long long)a->axis1,
                           x->rank);
    if (a->axis2 < 0 || a->axis2 >= x->rank)
        return tl_node_err(err, c->n->id, "axis2", "axis %lld out of range for rank %d", (long long)a->axis2,
                           x->rank);
    *out = *x;
    out->dim[a->axis1] = x->dim[a->axis2];
    out->dim[a->axis2] = x->dim[a->axis1];
    return 0;
}
static int transpose_batch(const tl_batch_ctx *c, int *bf) {
    (void)bf;
    const tl_attrs *a = &c->n->a;
    return (a->axis1 == 0 || a->axis2 == 0) && a->axis1 != a->axis2 ? TL_BATCH_MIXES : TL_BATCH_CARRY;
}
static int transpose_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    (void)err;
    perm_prepare_dims(c, st);
    for (int i = 0; i < st->p.mv.rank; i++) st->p.mv.perm[i] = i;
    st->p.mv.perm[st->node->a.axis1] = st->node->a.axis2;
    st->p.mv.perm[st->node->a.axis2] = st->node->a.axis1;
    return 0;
}
static int transpose_emit(const tl_emit_ctx *c, tl_err *err) {
    (void)err;
    tl_sb_printf(c->b, "%s.transpose(%lld, %lld)", c->p[0], (long long)c->n->a.axis1, (long long)c->n->a.axis2);
    return 0;
}
const tl_family tl_fam_transpose = {
    .name = "transpose",
    .infer = transpose_infer,
    .batch = transpose_batch,
    .prepare = transpose_prepare_both,
    .emit = transpose_emit,
};

/* ---------------------------------------------------------------- concat */
static int concat_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    const tl_node *n = c->n;
    const tl_shape *first = c->ps[0];
    if (tl_check_axis(n->id, "axis", n->a.axis, first, err)) return -1;
    tl_shape o = *first;
    int ax = (int)n->a.axis;
    for (int p = 1; p < n->n_parents; p++) {
        const tl_shape *s = c->ps[p];
        if (s->rank != first->rank)
            return tl_node_err(err, n->id, NULL, "concat: rank mismatch: parent %d has shape %s, parent 0 has %s", p,
                               TL_SHAPE_STR(s), TL_SHAPE_STR(first));
        for (int i = 0; i < s->rank; i++) {
            if (i == ax) continue;
            if (s->dim[i] != first->dim[i])
                return tl_node_err(err, n->id, NULL,
                                   "concat: non-axis dim mismatch at axis %d: expected %lld, got %lld (parent %d)", i,
                                   (long long)first->dim[i], (long long)s->dim[i], p);
        }
        o.dim[ax] += s->dim[ax];
        if (o.dim[ax] > TL_MAX_NUMEL)
            return tl_node_err(err, n->id, NULL, "concat: output element count exceeds 2^40");
    }
    *out = o;
    return 0;
}
static int concat_batch(const tl_batch_ctx *c, int *bf) {
    (void)bf; /* along another axis than the batch; batch-free parts must be the same per sample */
    if (c->n->a.axis == 0) return TL_BATCH_MIXES;
    for (int i = 0; i < c->n->n_parents; i++) {
        int64_t p = c->n->parents[i];
        if (!c->bc[p] && !c->uni[p]) return TL_BATCH_MIXES;
    }
    return TL_BATCH_CARRY;
}
static int concat_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    const tl_node *n = st->node;
    const tl_shape *out = &st->shape;
    int ax = (int)n->a.axis;
    st->p.mv.outer = tl_prod(out->dim, 0, ax);
    st->p.mv.inner = tl_prod(out->dim, ax + 1, out->rank);
    int np = n->n_parents;
    st->p.mv.part_len = calloc((size_t)(2 * np), sizeof(int64_t)); /* lengths, then rows per sample */
    if (!st->p.mv.part_len) return tl_erroom(err, "node[%lld] (concat): out of memory", (long long)n->id);
    bool uniform = false;
    for (int i = 0; i < np; i++) {
        const tl_shape *ps = &c->shapes[n->parents[i]];
        st->p.mv.part_len[i] = ps->dim[ax];
        if (ps->dim[0] != out->dim[0]) { /* batch-free part of a re-batched session */
            st->p.mv.part_len[np + i] = tl_prod(ps->dim, 1, ax);
            uniform = true;
        }
    }
    st->kernel = uniform ? ex_concat_uniform : ex_concat;
    return 0;
}
static void concat_release(tl_step *st) {
    free(st->p.mv.part_len);
    st->p.mv.part_len = NULL;
}
static int concat_emit(const tl_emit_ctx *c, tl_err *err) {
    (void)err;
    tl_sb_printf(c->b, "torch.cat((");
    for (int i = 0; i < c->n->n_parents; i++)
        tl_sb_printf(c->b, "%sx%lld", i ? ", " : "", (long long)c->n->parents[i]);
    tl_sb_printf(c->b, "), dim=%lld)", (long long)c->n->a.axis);
    return 0;
}
const tl_family tl_fam_concat = {
    .name = "concat",
    .infer = concat_infer,
    .batch = concat_batch,
    .prepare = concat_prepare_both,
    .release = concat_release,
    .emit = concat_emit,
};
