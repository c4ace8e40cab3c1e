/* mha_lower.c - lowering the value graph (tuple-valued nodes) to the tensor-only IR, like
 * TorchLean's lowerValueGraph (Import/TorchExport.lean): tuple-valued nodes are dropped; a
 * tuple_getitem(0) of a single-head, batch-first, dropout-free self-attention
 * multihead_attention node x:[b,n,E] becomes
 *   q = linear(x)  k = linear(x)  v = linear(x)          (q_/k_/v_weight [E,E], _bias [E])
 *   kt = transpose(k, 1, 2)                    [b,E,n]
 *   scores = matmul(q, kt)                     [b,n,n]
 *   scale = const [b,n,n] (filled with `scale`)
 *   scaled = mul_elem(scores, scale); probs = softmax(scaled, axis 2)
 *   ctx = matmul(probs, v)                     [b,n,E]
 *   out = linear(ctx)                          (out_weight, out_bias)
 * Ids are renumbered (new id = position); input_id/output_ids follow. Every other node is copied
 * with its parents remapped and keeps its file id as `wire_id`, so params.bin names (which carry
 * the file's ids, as the capture script writes them) still bind; the generated projections take
 * their payloads from the multihead_attention node's inline fields or from params.bin under
 * tl_param_file_name's names. The graph must already have passed tl_graph_validate. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_import.h"

int tl_mha_lower(tl_graph *g, const cJSON *const *raw, tl_err *err);
int tl_json_payload(const char *path, const char *ctx, const cJSON *v, tl_tensor **out, tl_err *err);

#define SS(s) TL_SHAPE_STR(s)

#define lerr tl_graph_errf

static void node_release(tl_node *n) {
    free(n->parents);
    free(n->tuple_shapes);
    free(n->target);
    for (int s = 0; s < TL_MAX_PARAMS; s++) tl_tensor_free(n->param[s]);
    memset(n, 0, sizeof *n);
}

/* Append a generated node; returns its id or -1 on OOM. */
static int64_t emit(tl_node *nn, int64_t *m, tl_op op, int np, int64_t p0, int64_t p1, const tl_shape *shape) {
    tl_node *n = &nn[*m];
    memset(n, 0, sizeof *n);
    n->id = *m;
    n->op = op;
    n->shape = *shape;
    /* the reader's defaults, so a saved + reloaded lowered graph compares equal */
    n->a.groups = 1;
    for (int i = 0; i < TL_MAX_RANK; i++) n->a.dilation[i] = 1;
    n->a.in_dim = n->a.out_dim = -1;
    n->a.value_shape = *shape;
    if (np > 0) {
        n->parents = calloc((size_t)np, sizeof *n->parents);
        if (!n->parents) return -1;
        n->parents[0] = p0;
        if (np > 1) n->parents[1] = p1;
    }
    n->n_parents = np;
    return (*m)++;
}

static int bind_linear(const tl_graph *g, const cJSON *jm, int64_t mha_id, const char *pfx, int64_t E, tl_node *lin,
                       tl_err *err) {
    static const char *const suffix[2] = {"weight", "bias"};
    for (int s = 0; s < 2; s++) {
        char key[32], ctx[96];
        snprintf(key, sizeof key, "%s_%s", pfx, suffix[s]);
        const cJSON *v = jm ? cJSON_GetObjectItemCaseSensitive(jm, key) : NULL;
        if (!v) continue; /* from params.bin ("multihead_attention_K_q_weight": tl_param_file_name) */
        snprintf(ctx, sizeof ctx, "node[%lld].%s", (long long)mha_id, key);
        tl_tensor *t;
        if (tl_json_payload(g->path ? g->path : "graph", ctx, v, &t, err)) return -1;
        tl_shape want;
        memset(&want, 0, sizeof want);
        want.rank = s == 0 ? 2 : 1;
        want.dim[0] = E;
        want.dim[1] = s == 0 ? E : 0;
        if (!tl_shape_eq(&want, &t->shape)) {
            lerr(g, err, "%s: expected shape %s, got %s", ctx, SS(&want), SS(&t->shape));
            tl_tensor_free(t);
            return -1;
        }
        lin->param[s] = t;
    }
    return 0;
}

int tl_mha_lower(tl_graph *g, const cJSON *const *raw, tl_err *err) {
    int64_t n = g->n_nodes, cap = 0;
    for (int64_t i = 0; i < n; i++) {
        if (g->nodes[i].is_tuple) continue;
        cap += g->nodes[i].op == TL_OP_TUPLE_GETITEM ? 10 : 1;
    }
    tl_node *nn = calloc(cap > 0 ? (size_t)cap : 1, sizeof *nn);
    int64_t *map = malloc((size_t)n * sizeof *map);
    int64_t m = 0;
    int rc = -1;
    if (!nn || !map) {
        lerr(g, err, "out of memory lowering tuple values"), tl_err_as(err, TL_ERR_OOM);
        goto done;
    }
    for (int64_t i = 0; i < n; i++) map[i] = -1;

    for (int64_t i = 0; i < n; i++) {
        tl_node *r = &g->nodes[i];
        long long li = (long long)i;
        if (r->is_tuple) continue;
        if (r->op != TL_OP_TUPLE_GETITEM) {
            for (int k = 0; k < r->n_parents; k++) {
                int64_t p = map[r->parents[k]];
                if (p < 0) {
                    lerr(g, err, "node[%lld]: parent node[%lld] is not a tensor value", li, (long long)r->parents[k]);
                    goto done;
                }
                r->parents[k] = p;
            }
            nn[m] = *r;
            nn[m].id = m;
            nn[m].wire_id = i;
            memset(r, 0, sizeof *r); /* ownership moved */
            map[i] = m++;
            continue;
        }
        const tl_node *mha = &g->nodes[r->parents[0]];
        const tl_attrs *ma = &mha->a;
        if (mha->op != TL_OP_MULTIHEAD_ATTENTION) {
            lerr(g, err, "node[%lld]: tuple producer %s has no tensor-lowering rule", li, tl_op_tag(mha->op));
            goto done;
        }
        if (r->a.index != 0) {
            lerr(g, err,
                 "node[%lld].index: nn.MultiheadAttention attention weights (tuple index %lld) are not lowered "
                 "to tensor IR",
                 li, (long long)r->a.index);
            goto done;
        }
        if (ma->num_heads != 1) {
            lerr(g, err, "node[%lld]: nn.MultiheadAttention lowering supports only num_heads=1, got %lld",
                 (long long)mha->id, (long long)ma->num_heads);
            goto done;
        }
        if (!ma->batch_first) {
            lerr(g, err, "node[%lld]: nn.MultiheadAttention lowering supports only batch_first=True",
                 (long long)mha->id);
            goto done;
        }
        if (!ma->dropout_zero) {
            lerr(g, err,
                 "node[%lld]: nn.MultiheadAttention lowering requires dropout=0 (deterministic eval semantics)",
                 (long long)mha->id);
            goto done;
        }
        if (mha->parents[0] != mha->parents[1] || mha->parents[1] != mha->parents[2]) {
            lerr(g, err,
                 "node[%lld]: nn.MultiheadAttention lowering supports self-attention only (query/key/value must "
                 "be the same value)",
                 (long long)mha->id);
            goto done;
        }
        int64_t x = map[mha->parents[0]];
        if (x < 0) {
            lerr(g, err, "node[%lld]: MHA input node[%lld] is not a tensor value", (long long)mha->id,
                 (long long)mha->parents[0]);
            goto done;
        }
        tl_shape xs = nn[x].shape;
        if (xs.rank != 3) {
            lerr(g, err,
                 "node[%lld]: single-head MHA lowering expects a batch-first rank-3 input (batch, seq, embed), "
                 "got %s",
                 (long long)mha->id, SS(&xs));
            goto done;
        }
        int64_t sq = xs.dim[1], E = xs.dim[2];
        if (E != ma->embed_dim) {
            lerr(g, err, "node[%lld].embed_dim: MHA metadata embed_dim=%lld but input last dimension is %lld",
                 (long long)mha->id, (long long)ma->embed_dim, (long long)E);
            goto done;
        }
        if (!tl_shape_eq(&r->shape, &xs)) {
            lerr(g, err, "node[%lld]: MHA output shape mismatch: expected %s, got %s", li, SS(&xs), SS(&r->shape));
            goto done;
        }
        tl_shape kt = xs, sc = xs;
        kt.dim[1] = E;
        kt.dim[2] = sq;
        sc.dim[1] = sq;
        sc.dim[2] = sq;
        int64_t ids[10];
        ids[0] = emit(nn, &m, TL_OP_LINEAR, 1, x, 0, &xs);
        ids[1] = ids[0] < 0 ? -1 : emit(nn, &m, TL_OP_LINEAR, 1, x, 0, &xs);
        ids[2] = ids[1] < 0 ? -1 : emit(nn, &m, TL_OP_LINEAR, 1, x, 0, &xs);
        ids[3] = ids[2] < 0 ? -1 : emit(nn, &m, TL_OP_TRANSPOSE, 1, ids[1], 0, &kt);
        ids[4] = ids[3] < 0 ? -1 : emit(nn, &m, TL_OP_MATMUL, 2, ids[0], ids[3], &sc);
        ids[5] = ids[4] < 0 ? -1 : emit(nn, &m, TL_OP_CONST, 0, 0, 0, &sc);
        ids[6] = ids[5] < 0 ? -1 : emit(nn, &m, TL_OP_MUL_ELEM, 2, ids[4], ids[5], &sc);
        ids[7] = ids[6] < 0 ? -1 : emit(nn, &m, TL_OP_SOFTMAX, 1, ids[6], 0, &sc);
        ids[8] = ids[7] < 0 ? -1 : emit(nn, &m, TL_OP_MATMUL, 2, ids[7], ids[2], &xs);
        ids[9] = ids[8] < 0 ? -1 : emit(nn, &m, TL_OP_LINEAR, 1, ids[8], 0, &r->shape);
        if (ids[9] < 0) {
            lerr(g, err, "out of memory lowering node[%lld]", li), tl_err_as(err, TL_ERR_OOM);
            goto done;
        }
        for (int q = 0; q < 10; q++) {
            nn[ids[q]].wire_id = -1 - mha->id;
            nn[ids[q]].wire_part = -1;
        }
        static const int lin_at[4] = {0, 1, 2, 9};
        static const char *const lin_pfx[4] = {"q", "k", "v", "out"};
        for (int q = 0; q < 4; q++) {
            tl_node *lin = &nn[ids[lin_at[q]]];
            lin->wire_part = (int8_t)q;
            lin->a.in_dim = E;
            lin->a.out_dim = E;
            if (bind_linear(g, raw ? raw[mha->id] : NULL, mha->id, lin_pfx[q], E, lin, err)) goto done;
            if (lin->param[0] || lin->param[1]) g->has_inline_params = true;
        }
        nn[ids[3]].a.axis1 = 1;
        nn[ids[3]].a.axis2 = 2;
        nn[ids[5]].a.value_shape = sc;
        nn[ids[7]].a.axis = 2;
        tl_tensor *st = tl_tensor_new(&sc);
        if (!st) {
            lerr(g, err, "out of memory lowering node[%lld]", li), tl_err_as(err, TL_ERR_OOM);
            goto done;
        }
        int64_t cnt = tl_shape_numel(&sc);
        for (int64_t k = 0; k < cnt; k++) st->data[k] = (float)ma->scale;
        if ((double)(float)ma->scale != ma->scale) { /* a float64 session multiplies by the exact scale */
            st->data64 = malloc(sizeof(double) * (size_t)(cnt > 0 ? cnt : 1));
            if (!st->data64) {
                tl_tensor_free(st);
                lerr(g, err, "out of memory lowering node[%lld]", li), tl_err_as(err, TL_ERR_OOM);
                goto done;
            }
            for (int64_t k = 0; k < cnt; k++) st->data64[k] = ma->scale;
        }
        nn[ids[5]].param[0] = st;
        g->has_inline_params = true;
        if (r->target) {
            nn[ids[9]].target = r->target;
            r->target = NULL;
        }
        map[i] = ids[9];
    }

    if (g->input_id < 0 || g->input_id >= n || map[g->input_id] < 0) {
        lerr(g, err, "input_id %lld is not a tensor value", (long long)g->input_id);
        goto done;
    }
    for (int k = 0; k < g->n_outputs; k++) {
        int64_t o = g->output_ids[k];
        if (o < 0 || o >= n || map[o] < 0) {
            lerr(g, err, "output_ids[%d]: node %lld is not a tensor value", k, (long long)o);
            goto done;
        }
    }
    g->input_id = map[g->input_id];
    for (int k = 0; k < g->n_outputs; k++) g->output_ids[k] = map[g->output_ids[k]];
    for (int64_t i = 0; i < n; i++) node_release(&g->nodes[i]);
    free(g->nodes);
    g->nodes = nn;
    g->n_nodes = m;
    g->renumbered = true;
    nn = NULL;
    rc = 0;
done:
    if (nn) {
        for (int64_t i = 0; i < m; i++) node_release(&nn[i]);
        free(nn);
    }
    free(map);
    return rc;
}
