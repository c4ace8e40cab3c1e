/* tlinfo - print a torchlean.ir.v1 graph as a node table plus totals.
 *   tlinfo graph.json [params.bin]
 * With params.bin the parameters are bound and checked complete; a graph with inline payloads
 * is checked complete on its own. Bad input: the one-line message on stderr, exit status 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_import.h"

static void usage(void) { fprintf(stderr, "usage: tlinfo graph.json [params.bin]\n"); }

static const char *shape_s(const tl_shape *s, char *buf, size_t n) { return tl_shape_str(s, buf, n); }

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--ops")) { /* the op table as JSON (tests derive op lists from it) */
        tl_op_table_json(stdout);
        return 0;
    }
    if (argc < 2 || argc > 3 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage();
        return 2;
    }
    tl_err err = { 0 };
    tl_graph *g = NULL;
    if (tl_graph_load_json(argv[1], &g, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    if (argc == 3) {
        if (tl_params_load(g, argv[2], &err) || tl_params_check_complete(g, argv[2], &err)) {
            fprintf(stderr, "%s\n", err.msg);
            tl_graph_free(g);
            return 2;
        }
    } else if (g->has_inline_params) {
        if (tl_params_check_complete(g, argv[1], &err)) {
            fprintf(stderr, "%s\n", err.msg);
            tl_graph_free(g);
            return 2;
        }
    }

    printf("graph %s: %lld nodes, input node[%lld], outputs", argv[1], (long long)g->n_nodes, (long long)g->input_id);
    for (int k = 0; k < g->n_outputs; k++) printf("%s node[%lld]", k ? "," : "", (long long)g->output_ids[k]);
    printf("\n%5s  %-16s %-14s %-22s %12s  %s\n", "id", "kind", "parents", "shape", "param bytes", "params");

    int64_t n_params = 0, param_bytes = 0, param_elems = 0, unbound = 0;
    int64_t big_id = -1, big_elems = -1;
    for (int64_t i = 0; i < g->n_nodes; i++) {
        const tl_node *n = &g->nodes[i];
        const tl_op_row *row = tl_op_info(n->op);
        char parents[256] = "-", shape[200], params[1024] = "-";
        size_t off = 0;
        for (int k = 0; k < n->n_parents && off < sizeof parents - 24; k++)
            off += (size_t)snprintf(parents + off, sizeof parents - off, "%s%lld", k ? "," : "", (long long)n->parents[k]);
        if (n->n_parents > 0 && off >= sizeof parents - 24) snprintf(parents + off, sizeof parents - off, ",...");
        shape_s(&n->shape, shape, sizeof shape);
        int64_t nb = 0;
        off = 0;
        for (int s = 0; s < row->n_params && s < TL_MAX_PARAMS; s++) {
            char name[96], ps[200];
            tl_shape want;
            const tl_shape *sh = n->param[s] ? &n->param[s]->shape : (tl_param_shape(n, s, &want) ? NULL : &want);
            tl_param_name(n, s, name, sizeof name);
            if (sh) {
                int64_t e = tl_shape_numel(sh);
                nb += 4 * e;
                param_elems += e;
            }
            if (!n->param[s]) unbound++;
            n_params++;
            if (off < sizeof params - 1)
                off += (size_t)snprintf(params + off, sizeof params - off, "%s%s %s%s", s ? ", " : "", name,
                                        sh ? shape_s(sh, ps, sizeof ps) : "[?]", n->param[s] ? "" : " (unbound)");
        }
        param_bytes += nb;
        int64_t e = tl_shape_numel(&n->shape);
        if (e > big_elems) {
            big_elems = e;
            big_id = i;
        }
        printf("%5lld  %-16s %-14s %-22s %12lld  %s\n", (long long)i, row->tag, parents, shape, (long long)nb, params);
    }
    char bs[200];
    printf("totals: %lld nodes, %lld param tensors (%lld unbound), %lld param elements, %lld param bytes, "
           "largest activation node[%lld] %s (%lld bytes)\n",
           (long long)g->n_nodes, (long long)n_params, (long long)unbound, (long long)param_elems, (long long)param_bytes,
           (long long)big_id, shape_s(&g->nodes[big_id].shape, bs, sizeof bs), (long long)(4 * big_elems));
    tl_graph_free(g);
    return 0;
}
