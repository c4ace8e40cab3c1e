/* tl_infer.c - output shape of a node from its parents' declared shapes and its attributes.
 * The generic part lives here (parent ids, arity, tuple discipline, the element-count limit);
 * each op's own rule is its family's `infer` (ops/<family>.c). The rules follow TorchLean's
 * NN/IR/Infer.lean + NN/IR/OpContracts.lean (facts, not code). Messages name the node and, when
 * there is one, the field:
 *   node[7].perm: invalid permutation [0, 0] for shape [2, 3]
 *   node[5]: add: shape mismatch: [1, 4] vs [1, 3]                                          */
#include <stdlib.h>
#include <string.h>
#include "tl_family.h"
#include "tl_graph.h"

static int infer_node(const tl_graph *g, const tl_node *n, const tl_op_row *row, const tl_shape *const *ps,
                      const tl_node *tuple_parent, tl_shape *out, tl_err *err);

int tl_infer_shape(const tl_graph *g, int64_t id, tl_shape *out, tl_err *err) {
    if (!g || !out || id < 0 || id >= g->n_nodes) return tl_errf(err, "node[%lld]: no such node", (long long)id);
    const tl_node *n = &g->nodes[id];
    const tl_op_row *row = tl_op_info(n->op);
    if (!row) return tl_node_err(err, id, "kind", "unknown op");
    int np = n->n_parents;
    if (np < 0 || (np > 0 && !n->parents)) return tl_node_err(err, id, "parents", "malformed parent list");
    if (np < row->min_parents || (row->max_parents >= 0 && np > row->max_parents)) {
        if (row->max_parents >= 0)
            return tl_node_err(err, id, NULL, "bad parent count for %s: expected %d..%d, got %d", row->tag,
                               row->min_parents, row->max_parents, np);
        return tl_node_err(err, id, NULL, "bad parent count for %s: expected at least %d, got %d", row->tag,
                           row->min_parents, np);
    }
    enum { MAXP = 16 };
    const tl_shape *pbuf[MAXP];
    const tl_shape **ps = pbuf;
    if (np > MAXP) {
        ps = malloc((size_t)np * sizeof *ps);
        if (!ps) return tl_node_err(err, id, NULL, "out of memory"), tl_err_as(err, TL_ERR_OOM);
    }
    const tl_node *tuple_parent = NULL;
    int rc = 0;
    for (int i = 0; i < np; i++) {
        int64_t p = n->parents[i];
        if (p < 0 || p >= id) {
            rc = tl_node_err(err, id, NULL, "parent id %lld is not < %lld", (long long)p, (long long)id);
            break;
        }
        const tl_node *pn = &g->nodes[p];
        if (pn->is_tuple) {
            if (n->op != TL_OP_TUPLE_GETITEM) {
                rc = tl_node_err(err, id, NULL,
                                 "parent node[%lld] is tuple-valued (%s); only tuple_getitem may consume it",
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
    if (!row->fam || !row->fam->infer) return tl_node_err(err, n->id, "kind", "op %s has no shape rule", row->tag);
    tl_infer_ctx c = {g, n, row, ps, tuple_parent};
    tl_shape o;
    memset(&o, 0, sizeof o);
    if (row->fam->infer(&c, &o, err)) return -1;
    int64_t ne;
    if (o.rank < 0 || o.rank > TL_MAX_RANK || tl_shape_numel_checked(&o, &ne))
        return tl_node_err(err, n->id, NULL, "%s: output element count of %s exceeds 2^40", row->tag,
                           TL_SHAPE_STR(&o));
    *out = o;
    return 0;
}
