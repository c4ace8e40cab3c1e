/* graph_write.c - tl_graph -> torchlean.ir.v1 JSON (one node per line, current spellings only).
 * Every attribute of the op row is written with its effective value (TorchLean requires e.g.
 * conv's dilation/padding_after/groups/input_spatial and reductions' keepdim), linear always
 * gets in_dim/out_dim. inline_params=true adds the bound payloads the way TorchLean reads them:
 * const "values" flat, every other slot nested by its shape. Floats use %.9g (float32
 * round-trips exactly); a non-finite value cannot be written to JSON and is an error.
 * The file is written atomically (tl_write_file_atomic). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "json_text.h"
#include "tl_import.h"
#include "tl_torchlean.h"

static void sb_puts(tl_strbuf *b, const char *s) { tl_sb_append(b, s, strlen(s)); }

/* prefix + "%.9g" of v: the payload hot path (one snprintf into reserved room, not two) */
static void sb_num9(tl_strbuf *b, const char *prefix, float v) {
    char *dst = tl_sb_reserve(b, 40);
    if (!dst) return;
    int k = snprintf(dst, 40, "%s%.9g", prefix, (double)v);
    if (k < 0 || k >= 40) b->oom = true; /* cannot happen: at most 2 + 15 characters */
    else tl_sb_commit(b, (size_t)k);
}

static void sb_nats(tl_strbuf *b, const int64_t *v, int n) {
    sb_puts(b, "[");
    for (int i = 0; i < n; i++) tl_sb_printf(b, "%s%lld", i ? ", " : "", (long long)v[i]);
    sb_puts(b, "]");
}

static void sb_shape(tl_strbuf *b, const tl_shape *s) { sb_nats(b, s->dim, s->rank); }

/* nested (or flat when flat=true) numbers of t; returns -1 on a non-finite value */
static int sb_payload(tl_strbuf *b, const tl_tensor *t, bool flat) {
    int64_t n = tl_shape_numel(&t->shape);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(t->data[i])) return -1;
    if (flat || t->shape.rank == 0) {
        if (t->shape.rank == 0 && !flat) {
            sb_num9(b, "", t->data[0]);
            return 0;
        }
        sb_puts(b, "[");
        for (int64_t i = 0; i < n; i++) sb_num9(b, i ? ", " : "", t->data[i]);
        sb_puts(b, "]");
        return 0;
    }
    /* iterate with an index vector; open/close brackets as indices roll over */
    int r = t->shape.rank;
    int64_t idx[TL_MAX_RANK] = {0};
    for (int d = 0; d < r; d++) sb_puts(b, "[");
    if (n == 0) {
        for (int d = 0; d < r; d++) sb_puts(b, "]");
        return 0;
    }
    for (int64_t i = 0; i < n; i++) {
        sb_num9(b, "", t->data[i]);
        int d = r - 1;
        while (d >= 0) {
            idx[d]++;
            if (idx[d] < t->shape.dim[d]) break;
            idx[d] = 0;
            sb_puts(b, "]");
            d--;
        }
        if (d < 0) break;
        sb_puts(b, ", ");
        for (int e = d + 1; e < r; e++) sb_puts(b, "[");
    }
    return 0;
}

static int write_node(tl_strbuf *b, const tl_graph *g, const tl_node *n, bool inline_params, tl_err *err) {
    const tl_op_row *row = tl_op_info(n->op);
    if (!row) return tl_errf(err, "%s: node[%lld]: unknown op", g->path ? g->path : "graph", (long long)n->id);
    tl_sb_printf(b, "{\"id\": %lld, \"kind\": ", (long long)n->id);
    tl_sb_json_string(b, row->tag);
    sb_puts(b, ", \"parents\": ");
    sb_nats(b, n->parents, n->n_parents);
    if (n->is_tuple) {
        sb_puts(b, ", \"value_kind\": \"tuple\", \"tuple_shapes\": [");
        for (int t = 0; t < n->n_tuple; t++) {
            if (t) sb_puts(b, ", ");
            sb_shape(b, &n->tuple_shapes[t]);
        }
        sb_puts(b, "]");
    } else {
        sb_puts(b, ", \"shape\": ");
        sb_shape(b, &n->shape);
    }
    const tl_attrs *a = &n->a;
    for (int k = 0; k < row->n_attrs; k++) {
        const tl_attr_spec *sp = &row->attrs[k];
        const void *src = (const char *)a + sp->offset;
        if (n->op == TL_OP_LINEAR && *(const int64_t *)src < 0) continue; /* underivable in/out dim */
        sb_puts(b, ", ");
        tl_sb_json_string(b, sp->name);
        sb_puts(b, ": ");
        switch (sp->kind) {
        case TL_AK_NAT: tl_sb_printf(b, "%lld", (long long)*(const int64_t *)src); break;
        case TL_AK_NATS: sb_nats(b, (const int64_t *)src, *(const int *)((const char *)a + sp->count_offset)); break;
        case TL_AK_SPATIAL:
            sb_nats(b, (const int64_t *)src, (int)(a->spatial_rank > TL_MAX_RANK ? TL_MAX_RANK : a->spatial_rank));
            break;
        case TL_AK_SHAPE: sb_shape(b, (const tl_shape *)src); break;
        case TL_AK_BOOL: sb_puts(b, *(const bool *)src ? "true" : "false"); break;
        case TL_AK_NUM: {
            double d = *(const double *)src;
            if (!isfinite(d))
                return tl_errf(err, "%s: node[%lld].%s: non-finite value cannot be written to JSON",
                               g->path ? g->path : "graph", (long long)n->id, sp->name);
            tl_sb_printf(b, "%.17g", d);
            break;
        }
        }
    }
    if (inline_params) {
        for (int s = 0; s < row->n_params && s < TL_MAX_PARAMS; s++) {
            if (!n->param[s]) continue;
            sb_puts(b, ", ");
            tl_sb_json_string(b, row->params[s].inline_key);
            sb_puts(b, ": ");
            /* TorchLean reads grouped conv weights only dense block-diagonal [out, in, k...] */
            bool grouped = n->op == TL_OP_CONV && s == 0 && a->groups > 1;
            tl_tensor *dense = grouped ? tl_conv_weight_dense(n, n->param[s]) : NULL;
            if (grouped && !dense)
                return tl_erroom(err, "%s: out of memory while writing", g->path ? g->path : "graph");
            int bad = sb_payload(b, dense ? dense : n->param[s], n->op == TL_OP_CONST);
            tl_tensor_free(dense);
            if (bad)
                return tl_errf(err, "%s: node[%lld].%s: non-finite value cannot be written to JSON",
                               g->path ? g->path : "graph", (long long)n->id, row->params[s].inline_key);
        }
    }
    if (n->target) {
        sb_puts(b, ", \"target\": ");
        tl_sb_json_string(b, n->target);
    }
    sb_puts(b, "}");
    return 0;
}

int tl_graph_save_json(const tl_graph *g, const char *path, bool inline_params, tl_err *err) {
    if (!g || !path) return tl_errf(err, "%s: nothing to write", path ? path : "graph");
    tl_strbuf b = TL_STRBUF_INIT;
    tl_sb_printf(&b, "{\n  \"format\": \"torchlean.ir.v1\",\n  \"input_id\": %lld,\n  \"output_ids\": ",
                 (long long)g->input_id);
    sb_nats(&b, g->output_ids, g->n_outputs);
    sb_puts(&b, ",\n  \"nodes\": [\n");
    for (int64_t i = 0; i < g->n_nodes; i++) {
        sb_puts(&b, "    ");
        if (write_node(&b, g, &g->nodes[i], inline_params, err)) {
            tl_sb_free(&b);
            return -1;
        }
        sb_puts(&b, i + 1 < g->n_nodes ? ",\n" : "\n");
    }
    sb_puts(&b, "  ]\n}\n");
    if (b.oom) {
        tl_sb_free(&b);
        return tl_erroom(err, "%s: out of memory while writing", path);
    }
    const void *bufs[1] = {b.p};
    size_t lens[1] = {b.n};
    int rc = tl_write_file_atomic(path, 1, bufs, lens, err);
    tl_sb_free(&b);
    return rc;
}
