/* tl_model.c - a loaded, validated graph with every parameter bound. */
#include <stdlib.h>
#include "tl_import.h"
#include "tl_runtime_internal.h"

int tl_model_from_graph(tl_graph *g, tl_model **out, tl_err *err) {
    *out = NULL;
    if (!g) return tl_errf(err, "tl_model_from_graph: no graph");
    tl_model *m = calloc(1, sizeof *m);
    if (!m) return tl_erroom(err, "%s: out of memory", g->path ? g->path : "graph");
    m->g = g;
    *out = m;
    return 0;
}

int tl_model_open(const char *graph_path, const char *params_path, tl_model **out, tl_err *err) {
    *out = NULL;
    tl_graph *g = NULL;
    if (tl_graph_load_json(graph_path, &g, err)) return -1;
    if (params_path && tl_params_load(g, params_path, err)) {
        tl_graph_free(g);
        return -1;
    }
    if (tl_params_check_complete(g, params_path ? params_path : graph_path, err)) {
        tl_graph_free(g);
        return -1;
    }
    if (tl_model_from_graph(g, out, err)) {
        tl_graph_free(g);
        return -1;
    }
    return 0;
}

void tl_model_free(tl_model *m) {
    if (!m) return;
    tl_graph_free(m->g);
    free(m);
}

const tl_graph *tl_model_graph(const tl_model *m) { return m ? m->g : NULL; }

int64_t tl_model_param_bytes(const tl_model *m) {
    if (!m || !m->g) return 0;
    int64_t bytes = 0;
    for (int64_t i = 0; i < m->g->n_nodes; i++) {
        const tl_node *n = &m->g->nodes[i];
        for (int s = 0; s < TL_MAX_PARAMS; s++)
            if (n->param[s]) bytes += tl_shape_numel(&n->param[s]->shape) * (int64_t)sizeof(float);
    }
    return bytes;
}
