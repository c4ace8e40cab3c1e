/* source.c - the ops without parents that start a graph: input (the graph's one input) and const
 * (a tensor from params.bin or the JSON payload).
 * Runtime: neither computes anything. The input is copied into its arena slot at the start of a
 * run; a const is the model's tensor itself (folded by the planner, never copied). tl_exec_copy
 * is their kernel only for the planted-bug test switch, which needs a materialized value. */
#include <string.h>
#include "tl_emit.h"
#include "tl_runtime_internal.h"

static int src_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    (void)err;
    *out = c->n->op == TL_OP_CONST ? c->n->a.value_shape : c->n->shape; /* input: the interface */
    return 0;
}

static int src_param_shape(const tl_node *n, int slot, tl_shape *out) {
    if (n->op != TL_OP_CONST || slot != 0) return -1;
    *out = n->a.value_shape;
    return 0;
}

static int src_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    (void)c;
    (void)err;
    st->kernel = tl_exec_copy;
    return 0;
}

static int src_emit(const tl_emit_ctx *c, tl_err *err) {
    (void)err;
    const tl_node *n = c->n;
    if (n->op == TL_OP_INPUT) {
        /* cast only for a non-default dtype: capture (torch.export) sees no extra op then */
        tl_sb_printf(c->b, "%s", strcmp(c->dtype, "torch.float32") == 0 ? "x" : "x.to(DTYPE)");
        return 0;
    }
    char name[96];
    tl_emit_param_name(c->g, n, 0, name, sizeof name);
    tl_sb_printf(c->b, "self.%s", name);
    if (c->const_compress_k > 0) {
        tl_sb_py_call(c->b, ".expand", n->shape.dim, n->shape.rank);
    }
    return 0;
}

/* float64: the same (the planted-bug copy in double) */
static int src_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (src_prepare(c, st, err)) return -1;
    st->kernel64 = tl_exec_copy64;
    return 0;
}

const tl_family tl_fam_source = {
    .name = "source",
    .infer = src_infer,
    .param_shape = src_param_shape,
    .prepare = src_prepare_both,
    .emit = src_emit,
};
