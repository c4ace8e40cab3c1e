/* tl_validate.c - structural + shape validation of a whole graph (see tl_graph.h).
 * Order: non-empty; per node: id discipline, known/executable tag, arity, parents below the id,
 * tuple usage; exactly one input and it is input_id; outputs; declared shapes (element counts,
 * then declared == inferred in id order); bound parameter shapes. First failure wins. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "tl_graph.h"

#define SS(s) TL_SHAPE_STR(s)

#define gerr tl_graph_errf

static bool shape_sane(const tl_shape *s) {
    int64_t n;
    if (s->rank < 0 || s->rank > TL_MAX_RANK) return false;
    for (int i = 0; i < s->rank; i++)
        if (s->dim[i] > TL_MAX_NUMEL) return false; /* even when another extent is 0 */
    return tl_shape_numel_checked(s, &n) == 0;
}

int tl_graph_validate(const tl_graph *g, tl_err *err) {
    if (!g) return tl_errf(err, "graph: no graph");
    if (g->n_nodes <= 0 || !g->nodes) return gerr(g, err, "graph contains no nodes");

    for (int64_t i = 0; i < g->n_nodes; i++) {
        const tl_node *n = &g->nodes[i];
        long long li = (long long)i;
        if (n->id != i)
            return gerr(g, err, "nodes[%lld]: id discipline violated: id is %lld, expected %lld", li,
                        (long long)n->id, li);
        const tl_op_row *row = tl_op_info(n->op);
        if (!row) return gerr(g, err, "node[%lld].kind: unknown op", li);
        if (!row->executable) {
            if (n->op == TL_OP_HARD_MASKED_SOFTMAX)
                return gerr(g, err,
                            "node[%lld]: hard_masked_softmax is not executable: TorchLean has no artifact encoding "
                            "for its mask yet",
                            li);
            return gerr(g, err, "node[%lld]: %s is not executable (no runtime semantics)", li, row->tag);
        }
        int np = n->n_parents;
        if (np < 0 || (np > 0 && !n->parents)) return gerr(g, err, "node[%lld].parents: malformed parent list", li);
        if (np < row->min_parents || (row->max_parents >= 0 && np > row->max_parents)) {
            if (row->max_parents >= 0)
                return gerr(g, err, "node[%lld]: bad parent count for %s: expected %d..%d, got %d", li, row->tag,
                            row->min_parents, row->max_parents, np);
            return gerr(g, err, "node[%lld]: bad parent count for %s: expected at least %d, got %d", li, row->tag,
                        row->min_parents, np);
        }
        for (int k = 0; k < np; k++)
            if (n->parents[k] < 0 || n->parents[k] >= i)
                return gerr(g, err, "node[%lld]: parent id %lld is not < %lld", li, (long long)n->parents[k], li);
        if (n->is_tuple && n->op != TL_OP_MULTIHEAD_ATTENTION)
            return gerr(g, err, "node[%lld]: value_kind \"tuple\" is only supported for multihead_attention, not %s",
                        li, row->tag);
        if (!n->is_tuple && n->op == TL_OP_MULTIHEAD_ATTENTION)
            return gerr(g, err, "node[%lld]: multihead_attention must be tuple-valued (value_kind \"tuple\")", li);
        if (n->is_tuple && (n->n_tuple < 0 || (n->n_tuple > 0 && !n->tuple_shapes)))
            return gerr(g, err, "node[%lld].tuple_shapes: malformed", li);
        for (int k = 0; k < np; k++) {
            const tl_node *p = &g->nodes[n->parents[k]];
            if (p->is_tuple && n->op != TL_OP_TUPLE_GETITEM)
                return gerr(g, err,
                            "node[%lld]: parent node[%lld] is tuple-valued (%s); only tuple_getitem may consume it",
                            li, (long long)p->id, tl_op_tag(p->op));
        }
    }

    int inputs = 0;
    for (int64_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == TL_OP_INPUT) inputs++;
    if (inputs != 1) return gerr(g, err, "expected exactly one input node, got %d", inputs);
    if (g->input_id < 0 || g->input_id >= g->n_nodes)
        return gerr(g, err, "input_id %lld is out of range (%lld nodes)", (long long)g->input_id,
                    (long long)g->n_nodes);
    if (g->nodes[g->input_id].op != TL_OP_INPUT)
        return gerr(g, err, "input_id %lld designates %s, not input", (long long)g->input_id,
                    tl_op_tag(g->nodes[g->input_id].op));
    if (g->n_outputs <= 0 || !g->output_ids) return gerr(g, err, "output_ids must contain at least one output");
    for (int k = 0; k < g->n_outputs; k++) {
        int64_t o = g->output_ids[k];
        if (o < 0 || o >= g->n_nodes)
            return gerr(g, err, "output_ids[%d]: node %lld does not exist (%lld nodes)", k, (long long)o,
                        (long long)g->n_nodes);
        if (g->nodes[o].is_tuple)
            return gerr(g, err, "output_ids[%d]: node[%lld] is tuple-valued; select a component with tuple_getitem",
                        k, (long long)o);
    }

    for (int64_t i = 0; i < g->n_nodes; i++) {
        const tl_node *n = &g->nodes[i];
        long long li = (long long)i;
        if (n->is_tuple) {
            for (int t = 0; t < n->n_tuple; t++)
                if (!shape_sane(&n->tuple_shapes[t]))
                    return gerr(g, err, "node[%lld].tuple_shapes[%d]: element count exceeds 2^40", li, t);
            continue; /* container values have no tensor shape rule; tuple_getitem checks components */
        }
        if (!shape_sane(&n->shape)) return gerr(g, err, "node[%lld].shape: element count exceeds 2^40", li);
        tl_shape inf;
        if (tl_infer_shape(g, i, &inf, err)) return tl_err_prefix(err, g->path ? g->path : "graph");
        if (!tl_shape_eq(&inf, &n->shape))
            return gerr(g, err, "node[%lld]: declared shape %s does not match inferred shape %s (%s)", li,
                        SS(&n->shape), SS(&inf), tl_op_tag(n->op));
    }

    for (int64_t i = 0; i < g->n_nodes; i++) {
        const tl_node *n = &g->nodes[i];
        const tl_op_row *row = tl_op_info(n->op);
        for (int s = 0; s < row->n_params && s < TL_MAX_PARAMS; s++) {
            if (!n->param[s]) continue;
            tl_shape want;
            if (tl_param_shape(n, s, &want))
                return gerr(g, err, "node[%lld].%s: parameter shape cannot be formed", (long long)i,
                            row->params[s].inline_key);
            if (!tl_shape_eq(&want, &n->param[s]->shape))
                return gerr(g, err, "node[%lld].%s: expected shape %s, got %s", (long long)i,
                            row->params[s].inline_key, SS(&want), SS(&n->param[s]->shape));
        }
    }
    return 0;
}
