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
    return tl_errk(err, TL_ERR_UNSUPPORTED,
                   "batch %lld does not fit the graph: node[%lld] (%s) mixes the batch axis "
                   "(captured batch %lld)",
                   (long long)N, (long long)id, tl_op_tag(g->nodes[id].op), (long long)B);
}

/* The refusal names the real cause when it is a constant sized by the captured batch: a
 * batch-free parent whose axis 0 has the captured extent B > 1 and whose values differ along it
 * (so it may hold one row per captured sample). */
static int mixes_with(tl_err *err, const tl_graph *g, const tl_node *n, const bool *bc, const bool *uni, int64_t N,
                      int64_t B) {
    bool any_bc = false;
    for (int k = 0; k < n->n_parents; k++) any_bc = any_bc || bc[n->parents[k]];
    for (int k = 0; any_bc && B > 1 && k < n->n_parents; k++) {
        const tl_node *p = &g->nodes[n->parents[k]];
        if (bc[p->id] || (uni && uni[p->id]) || p->shape.rank == 0 || p->shape.dim[0] != B) continue;
        return tl_errk(err, TL_ERR_UNSUPPORTED,
                       "batch %lld does not fit the graph: node[%lld] (%s) combines the batch with node[%lld] "
                       "(%s) %s, a constant value sized by the captured batch %lld (a per-sample constant must "
                       "be captured as extent 1 on axis 0 broadcast to the batch)",
                       (long long)N, (long long)n->id, tl_op_tag(n->op), (long long)p->id, tl_op_tag(p->op),
                       TL_SHAPE_STR(&p->shape), (long long)B);
    }
    return mixes(err, g, n->id, N, B);
}

/* Whether node n is evaluated independently per index of axis 0, given the classification of its
 * parents: TL_BATCH_CARRY (output batch-carrying), TL_BATCH_FREE, TL_BATCH_MIXES. The op's own
 * rule is its family's `batch` (ops/<family>.c); a family without one mixes. */
static int classify(const tl_graph *g, const tl_node *n, const bool *bc, const bool *uni, int64_t B,
                    int *bf_operand) {
    if (n->op == TL_OP_INPUT) return TL_BATCH_CARRY;
    int nbc = 0;
    for (int i = 0; i < n->n_parents; i++) nbc += bc[n->parents[i]] ? 1 : 0;
    if (nbc == 0) return TL_BATCH_FREE;
    const tl_op_row *row = tl_op_info(n->op);
    if (!row->fam || !row->fam->batch) return TL_BATCH_MIXES;
    tl_batch_ctx c = {g, n, bc, uni, nbc, B};
    return row->fam->batch(&c, bf_operand);
}

/* Whether batch-free node n is the same for every index of its axis 0 (see the top comment). */
static bool uniform(const tl_graph *g, const tl_node *n, const bool *uni) {
    if (n->shape.rank == 0) return false;
    const tl_op_row *row = tl_op_info(n->op);
    if (!row->fam || !row->fam->uniform || n->n_parents == 0) return false;
    tl_batch_ctx c = {g, n, NULL, uni, 0, 0};
    return row->fam->uniform(&c);
}

int tl_batch_shapes(const tl_graph *g, const tl_shape *in_shape, tl_shape *shapes, bool *batch_carrying,
                    int *bf_operand, tl_err *err) {
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
            rc = mixes_with(err, g, n, batch_carrying, uni, N, B);
            break;
        }
        batch_carrying[i] = c == TL_BATCH_CARRY;
        uni[i] = c == TL_BATCH_FREE && uniform(g, n, uni);
        if (bf_operand) bf_operand[i] = bfo;
        if (c == TL_BATCH_CARRY) {
            if (shapes[i].rank == 0) {
                rc = mixes(err, g, i, N, B);
                break;
            }
            shapes[i].dim[0] = N;
            int64_t numel;
            if (tl_shape_numel_checked(&shapes[i], &numel)) {
                rc = tl_errf(err, "batch %lld: node[%lld] (%s) is too large", (long long)N, (long long)i,
                             tl_op_tag(n->op));
                break;
            }
        }
    }
    free(uni);
    return rc;
}
