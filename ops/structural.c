/* structural.c - ops the runtime never executes.
 *   opaque: hard_masked_softmax, custom: no runtime semantics in tlrt; the validator rejects a
 *           graph holding them, naming the node (the shape rule still runs so that messages
 *           about their consumers are accurate).
 *   tuple:  multihead_attention (tuple-valued) and tuple_getitem: the importer lowers them into
 *           linear/reshape/matmul/softmax nodes exactly as TorchLean does (import/mha_lower.c)
 *           before validation, so only the shape rule is needed here. */
#include "tl_runtime_internal.h"

static int opaque_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    if (c->n->op == TL_OP_CUSTOM)
        return tl_node_err(err, c->n->id, NULL, "custom is not executable (no runtime semantics)");
    *out = *c->ps[0]; /* hard_masked_softmax keeps its parent's shape */
    return 0;
}

static bool opaque_has(tl_op op) { return op == TL_OP_HARD_MASKED_SOFTMAX || op == TL_OP_CUSTOM; }

const tl_family tl_fam_opaque = {
    .name = "opaque",
    .has = opaque_has,
    .infer = opaque_infer,
};

static int tuple_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    const tl_node *n = c->n;
    if (n->op == TL_OP_MULTIHEAD_ATTENTION)
        return tl_node_err(err, n->id, NULL, "multihead_attention is tuple-valued: it has no tensor shape");
    const tl_node *tp = c->tuple_parent;
    if (!tp)
        return tl_node_err(err, n->id, NULL, "tuple_getitem: parent node[%lld] is not tuple-valued",
                           (long long)n->parents[0]);
    if (n->a.index < 0 || n->a.index >= tp->n_tuple || !tp->tuple_shapes)
        return tl_node_err(err, n->id, "index", "tuple index %lld is out of bounds for %d components",
                           (long long)n->a.index, tp->n_tuple);
    *out = tp->tuple_shapes[n->a.index];
    return 0;
}

static bool tuple_has(tl_op op) { return op == TL_OP_TUPLE_GETITEM || op == TL_OP_MULTIHEAD_ATTENTION; }

const tl_family tl_fam_tuple = {
    .name = "tuple",
    .has = tuple_has,
    .infer = tuple_infer,
};
