/* tl_batch.c - running a graph at another batch size than the one it was captured with.
 *
 * Chosen approach: SHAPE SUBSTITUTION (not slicing). When the input's leading dim N differs from
 * the captured leading dim B (all other dims equal), every node is classified once:
 *   batch-carrying  - its axis 0 is the batch axis (the input is; most ops pass it on);
 *   batch-free      - it does not depend on the input (const, rand_uniform, their descendants).
 * A batch-carrying node gets its declared shape with dim 0 replaced by N; a batch-free node keeps
 * its declared shape. All per-node geometry is then derived from these session shapes (reshape,
 * flatten and broadcast_to attributes whose leading dim is B are thereby rewritten to N).
 * A batch-free value that is the SAME FOR EVERY SAMPLE ("uniform": a broadcast_to that expands
 * axis 0 from extent 1 or from no axis, e.g. the capture adapter's scalar constants
 * const [1,..,1] -> broadcast_to [B,..]; a reshape that adds the leading axis, e.g.
 * const [12] -> reshape [1,12]; elementwise ops over uniform values) may be combined
 * elementwise with a batch-carrying value: the runtime applies one sample of it to every sample
 * (bf_operand, tl_exec_binary_rep). Any other batch-free operand of such an op is refused: its
 * axis 0 may be the batch axis (a raw const [1,3] added to the input).
 * Ops that would mix samples (flatten of a rank>1 value, reductions/softmax/concat/layernorm over
 * axis 0, sum, mse_loss, permute/transpose moving axis 0, matmul contracting it, conv/batch norm
 * with channel_axis 0, a non-uniform batch-free value combined elementwise with a batch-carrying
 * one, ...) are rejected with
 *   batch 64 does not fit the graph: node[5] (flatten) mixes the batch axis (captured batch 1)
 * Substitution (rather than running the plan N/B times over slices) keeps one large GEMM per
 * layer, works for any N (not only multiples of B) and costs one pass at plan time. */
#include <stdlib.h>
#include <string.h>
#include "tl_runtime_internal.h"

static int mixes(tl_err *err, const tl_graph *g, int64_t id, int64_t N, int64_t B) {
    return tl_errf(err, "batch %lld does not fit the graph: node[%lld] (%s) mixes the batch axis "
                        "(captured batch %lld)",
                   (long long)N, (long long)id, tl_op_tag(g->nodes[id].op), (long long)B);
}

static int64_t prod_from(const tl_shape *s, int from) {
    int64_t p = 1;
    for (int i = from; i < s->rank; i++) p *= s->dim[i];
    return p;
}

/* Whether the op is evaluated independently per index of axis 0 (given the classification of
 * its parents). Returns 1 = output batch-carrying, 0 = batch-free, -1 = mixes. */
static int classify(const tl_graph *g, const tl_node *n, const bool *bc, const bool *uni,
                    int64_t B, int *bf_operand) {
    int nbc = 0;
    for (int i = 0; i < n->n_parents; i++) nbc += bc[n->parents[i]] ? 1 : 0;
    if (n->op == TL_OP_INPUT) return 1;
    if (nbc == 0) return 0;
    const tl_shape *p0 = &g->nodes[n->parents[0]].shape;
    const tl_shape *out = &n->shape;
    switch (n->op) {
    case TL_OP_DETACH: case TL_OP_ABS: case TL_OP_SQRT: case TL_OP_INV: case TL_OP_RELU:
    case TL_OP_TANH: case TL_OP_SIGMOID: case TL_OP_EXP: case TL_OP_LOG: case TL_OP_SIN:
    case TL_OP_COS: case TL_OP_SOFTPLUS:
        return 1;
    case TL_OP_SAFE_LOG:   /* eps must be batch-free (a scalar) */
        return (bc[n->parents[0]] && !bc[n->parents[1]]) ? 1 : -1;
    case TL_OP_ADD: case TL_OP_SUB: case TL_OP_MUL_ELEM: case TL_OP_MAX_ELEM: case TL_OP_MIN_ELEM: {
        if (nbc == 2) return 1;
        int k = bc[n->parents[0]] ? 1 : 0;   /* the batch-free operand */
        if (!uni[n->parents[k]] || out->rank == 0) return -1;
        *bf_operand = k + 1;
        return 1;
    }
    case TL_OP_BROADCAST_TO: {
        const tl_shape *f = &n->a.from_shape, *t = &n->a.to_shape;
        if (f->rank != t->rank || f->rank == 0 || f->dim[0] != B || t->dim[0] != B) return -1;
        return 1;
    }
    case TL_OP_PERMUTE:
        return (n->a.perm_n > 0 && n->a.perm[0] == 0) ? 1 : -1;
    case TL_OP_TRANSPOSE:
        return (n->a.axis1 == 0 || n->a.axis2 == 0) && n->a.axis1 != n->a.axis2 ? -1 : 1;
    case TL_OP_RESHAPE:
        if (p0->rank == 0 || out->rank == 0 || p0->dim[0] != B || out->dim[0] != B) return -1;
        return prod_from(p0, 1) == prod_from(out, 1) ? 1 : -1;
    case TL_OP_FLATTEN:
        return p0->rank == 1 ? 1 : -1;
    case TL_OP_CONCAT:
        if (n->a.axis == 0 || nbc != n->n_parents) return -1;
        return 1;
    case TL_OP_REDUCE_SUM: case TL_OP_REDUCE_MEAN:
        for (int i = 0; i < n->a.axes_n; i++)
            if (n->a.axes[i] == 0) return -1;
        return 1;
    case TL_OP_SUM: case TL_OP_MSE_LOSS:
        return -1;
    case TL_OP_LINEAR:
        return p0->rank >= 2 ? 1 : -1;
    case TL_OP_MATMUL: {
        const tl_shape *a = &g->nodes[n->parents[0]].shape, *b = &g->nodes[n->parents[1]].shape;
        bool abc = bc[n->parents[0]], bbc = bc[n->parents[1]];
        int ra = a->rank, rb = b->rank;
        /* a's axis 0 reaches output axis 0 as the row axis (rank 2 against a rank<=2 right side)
         * or as the leading batch axis (rank>=3, at least as long as b's rank). */
        bool a_ok = (ra == 2 && rb <= 2) || (ra >= 3 && ra >= rb);
        bool b_ok = rb >= 3 && rb >= ra;
        if (abc && !a_ok) return -1;
        if (bbc && !b_ok) return -1;
        if (abc && bbc && ra != rb) return -1;
        /* same-rank batched product with one batch-free side: that side must broadcast (dim 1) */
        if (ra == rb && ra >= 3) {
            if (abc && !bbc && b->dim[0] != 1) return -1;
            if (bbc && !abc && a->dim[0] != 1) return -1;
        }
        return 1;
    }
    case TL_OP_CONV: case TL_OP_BATCH_NORM_EVAL:
        return n->a.channel_axis >= 1 ? 1 : -1;
    case TL_OP_MAX_POOL: case TL_OP_AVG_POOL:
        return p0->rank > n->a.spatial_rank ? 1 : -1;
    case TL_OP_SOFTMAX: case TL_OP_LAYERNORM:
        return n->a.axis >= 1 ? 1 : -1;
    case TL_OP_INPUT: case TL_OP_CONST: case TL_OP_RAND_UNIFORM:
        return 0;
    case TL_OP_BERNOULLI_MASK:   /* parent is the scalar keep probability */
        return -1;
    case TL_OP_HARD_MASKED_SOFTMAX: case TL_OP_CUSTOM: case TL_OP_TUPLE_GETITEM:
    case TL_OP_MULTIHEAD_ATTENTION: case TL_OP_COUNT:
        return -1;
    }
    return -1;
}

/* Whether batch-free node n is the same for every index of its axis 0 (see the top comment). */
static bool uniform(const tl_graph *g, const tl_node *n, const bool *uni) {
    const tl_shape *out = &n->shape;
    const tl_shape *p0 = n->n_parents > 0 ? &g->nodes[n->parents[0]].shape : NULL;
    bool u0 = n->n_parents > 0 && uni[n->parents[0]];
    if (out->rank == 0) return false;
    switch (n->op) {
    case TL_OP_BROADCAST_TO:
        return u0 || p0->rank < out->rank || p0->dim[0] == 1;
    case TL_OP_RESHAPE:
        if (p0->rank < out->rank && out->dim[0] == 1) return true;
        return u0 && p0->rank > 0 && p0->dim[0] == out->dim[0];
    case TL_OP_DETACH: case TL_OP_ABS: case TL_OP_SQRT: case TL_OP_INV: case TL_OP_RELU:
    case TL_OP_TANH: case TL_OP_SIGMOID: case TL_OP_EXP: case TL_OP_LOG: case TL_OP_SIN:
    case TL_OP_COS: case TL_OP_SOFTPLUS: case TL_OP_SAFE_LOG:
        return u0;
    case TL_OP_ADD: case TL_OP_SUB: case TL_OP_MUL_ELEM: case TL_OP_MAX_ELEM: case TL_OP_MIN_ELEM:
        return u0 && uni[n->parents[1]];
    default:
        return false;
    }
}

int tl_batch_shapes(const tl_graph *g, const tl_shape *in_shape, tl_shape *shapes,
                    bool *batch_carrying, int *bf_operand, tl_err *err) {
    const tl_shape *cap = &g->nodes[g->input_id].shape;
    bool same = tl_shape_eq(cap, in_shape);
    int64_t B = cap->rank ? cap->dim[0] : 1, N = in_shape->rank ? in_shape->dim[0] : 1;
    bool *uni = same ? NULL : calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *uni);
    if (!same && !uni) return tl_erroom(err, "out of memory");
    int rc = 0;
    for (int64_t i = 0; i < g->n_nodes; i++) {
        const tl_node *n = &g->nodes[i];
        shapes[i] = n->shape;
        if (bf_operand) bf_operand[i] = 0;
        if (same) {
            batch_carrying[i] = n->op == TL_OP_INPUT;
            continue;
        }
        int bfo = 0;
        int c = classify(g, n, batch_carrying, uni, B, &bfo);
        if (c < 0) {
            rc = mixes(err, g, i, N, B);
            break;
        }
        batch_carrying[i] = c == 1;
        uni[i] = c == 0 && uniform(g, n, uni);
        if (bf_operand) bf_operand[i] = bfo;
        if (c == 1) {
            if (shapes[i].rank == 0) {
                rc = mixes(err, g, i, N, B);
                break;
            }
            shapes[i].dim[0] = N;
            int64_t numel;
            if (tl_shape_numel_checked(&shapes[i], &numel)) {
                rc = tl_errf(err, "batch %lld: node[%lld] (%s) is too large", (long long)N,
                             (long long)i, tl_op_tag(n->op));
                break;
            }
        }
    }
    free(uni);
    return rc;
}
