/* tl_graph.c - graph/tensor lifetime and the parameter-slot schema (shape + name per slot). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_family.h"
#include "tl_graph.h"

tl_tensor *tl_tensor_new(const tl_shape *s) {
    int64_t n;
    if (!s || s->rank < 0 || s->rank > TL_MAX_RANK || tl_shape_numel_checked(s, &n)) return NULL;
    tl_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->shape = *s;
    t->data = calloc(n > 0 ? (size_t)n : 1, sizeof(float));
    if (!t->data) {
        free(t);
        return NULL;
    }
    t->owned = true;
    return t;
}

void tl_tensor_free(tl_tensor *t) {
    if (!t) return;
    if (t->owned) free(t->data);
    free(t->data64);
    free(t);
}

void tl_graph_free(tl_graph *g) {
    if (!g) return;
    for (int64_t i = 0; i < g->n_nodes && g->nodes; i++) {
        tl_node *n = &g->nodes[i];
        free(n->parents);
        free(n->tuple_shapes);
        free(n->target);
        for (int s = 0; s < TL_MAX_PARAMS; s++) tl_tensor_free(n->param[s]);
    }
    free(g->nodes);
    free(g->output_ids);
    free(g->path);
    free(g);
}

int tl_param_shape(const tl_node *n, int slot, tl_shape *out) {
    const tl_op_row *row = n ? tl_op_info(n->op) : NULL;
    if (!row || !out || slot < 0 || slot >= row->n_params || !row->fam || !row->fam->param_shape) return -1;
    tl_shape s;
    memset(&s, 0, sizeof s);
    if (row->fam->param_shape(n, slot, &s)) return -1;
    int64_t numel;
    if (s.rank < 0 || s.rank > TL_MAX_RANK || tl_shape_numel_checked(&s, &numel)) return -1;
    *out = s;
    return 0;
}

void tl_param_name_as(const tl_node *n, int64_t id, int slot, char *buf, size_t len) {
    const tl_op_row *row = n ? tl_op_info(n->op) : NULL;
    if (!buf || len == 0) return;
    if (!row || slot < 0 || slot >= row->n_params) {
        snprintf(buf, len, "?");
        return;
    }
    snprintf(buf, len, row->params[slot].name_fmt, (long long)id);
}

void tl_param_name(const tl_node *n, int slot, char *buf, size_t len) {
    tl_param_name_as(n, n ? n->id : 0, slot, buf, len);
}

void tl_param_file_name(const tl_graph *g, const tl_node *n, int slot, char *buf, size_t len) {
    static const char *const part[4] = {"q", "k", "v", "out"};
    if (!buf || len == 0) return;
    if (!g->renumbered || n->wire_id >= 0) {
        tl_param_name_as(n, tl_node_file_id(g, n), slot, buf, len);
    } else if (n->op == TL_OP_LINEAR && n->wire_part >= 0 && n->wire_part < 4 && slot >= 0 && slot < 2) {
        snprintf(buf, len, "multihead_attention_%lld_%s_%s", (long long)tl_node_file_id(g, n), part[n->wire_part],
                 slot == 0 ? "weight" : "bias");
    } else {
        buf[0] = 0;
    }
}

int64_t tl_node_file_id(const tl_graph *g, const tl_node *n) {
    if (!g->renumbered) return n->id;
    return n->wire_id >= 0 ? n->wire_id : -1 - n->wire_id;
}

int tl_graph_errf(const tl_graph *g, tl_err *err, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    tl_verrk(err, TL_ERR_BAD_INPUT, fmt, ap);
    va_end(ap);
    return tl_err_prefix(err, g && g->path ? g->path : "graph");
}
