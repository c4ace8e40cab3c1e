/* tlinfo - print a torchlean.ir.v1 graph as a node table plus totals; or, with --plan, the memory
 * plan tlrt builds for it (tl_session_write_plan); or, with --ops, tlrt's op table as JSON.
 * The arguments are declared once, in main's tables (tl_cli.h).
 * With params.bin the parameters are bound and checked complete; a graph with inline payloads
 * is checked complete on its own. Errors: the one-line message on stderr, exit status from its
 * kind (tl_err_exit_status: 2 bad input, 3 out of memory, 1 I/O or internal). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_cli.h"
#include "tl_import.h"
#include "tl_runtime.h"
#include "tl_torchlean.h"

static const char *shape_s(const tl_shape *s, char *buf, size_t n) { return tl_shape_str(s, buf, n); }

/* --plan: a session at the captured input shape or the given one, and its plan. */
static int print_plan(const char *graph_path, const char *params_path, const tl_shape *shape) {
    tl_err err = {0};
    tl_model *m = NULL;
    tl_session *s = NULL;
    int rc = 0;
    if (tl_model_open(graph_path, params_path, &m, &err)) return tl_cli_fail(&err);
    const tl_graph *g = tl_model_graph(m);
    const tl_shape *in = shape ? shape : &g->nodes[g->input_id].shape;
    if (tl_session_new(m, in, 0, &s, &err)) {
        /* name what the shape came from: the command line, or the graph's own input */
        tl_err_prefix(&err, shape ? "tlinfo: --input-shape" : graph_path);
        rc = tl_cli_fail(&err);
    } else if (tl_session_write_plan(s, stdout, &err) || fflush(stdout) != 0) {
        if (!err.msg[0]) tl_errk(&err, TL_ERR_IO, "tlinfo: cannot write the plan to stdout");
        rc = tl_cli_fail(&err);
    }
    tl_session_free(s);
    tl_model_free(m);
    return rc;
}

static int print_table(const char *graph_path, const char *params_path) {
    tl_err err = {0};
    tl_graph *g = NULL;
    if (tl_graph_load_json(graph_path, &g, &err)) return tl_cli_fail(&err);
    if (params_path ? (tl_params_load(g, params_path, &err) || tl_params_check_complete(g, params_path, &err))
                    : (g->has_inline_params && tl_params_check_complete(g, graph_path, &err))) {
        tl_graph_free(g);
        return tl_cli_fail(&err);
    }

    printf("graph %s: %lld nodes, input node[%lld], outputs", graph_path, (long long)g->n_nodes,
           (long long)g->input_id);
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
            off += (size_t)snprintf(parents + off, sizeof parents - off, "%s%lld", k ? "," : "",
                                    (long long)n->parents[k]);
        if (n->n_parents > 0 && off >= sizeof parents - 24) snprintf(parents + off, sizeof parents - off, ",...");
        shape_s(&n->shape, shape, sizeof shape);
        int64_t nb = 0;
        off = 0;
        for (int s = 0; s < row->n_params && s < TL_MAX_PARAMS; s++) {
            char name[96], ps[200];
            tl_shape want;
            const tl_shape *sh = n->param[s] ? &n->param[s]->shape : (tl_param_shape(n, s, &want) ? NULL : &want);
            tl_param_file_name(g, n, s, name, sizeof name); /* params.bin's name for it */
            if (!name[0]) tl_param_name(n, s, name, sizeof name);
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
        printf("%5lld  %-16s %-14s %-22s %12lld  %s\n", (long long)i, row->tag, parents, shape, (long long)nb,
               params);
    }
    char bs[200];
    printf(
        "totals: %lld nodes, %lld param tensors (%lld unbound), %lld param elements, %lld param bytes, "
        "largest activation node[%lld] %s (%lld bytes)\n",
        (long long)g->n_nodes, (long long)n_params, (long long)unbound, (long long)param_elems,
        (long long)param_bytes, (long long)big_id, shape_s(&g->nodes[big_id].shape, bs, sizeof bs),
        (long long)(4 * big_elems));
    tl_graph_free(g);
    return 0;
}

int main(int argc, char **argv) {
    const char *graph_path = NULL, *params_path = NULL;
    bool ops = false, plan = false, shape_given = false, torchlean = false;
    tl_shape shape = {0};
    const tl_cli_pos pos[] = {
        {"graph.json", &graph_path, 0, "the graph (torchlean.ir.v1 JSON)"},
        {"params.bin", &params_path, TL_CLI_OPTIONAL | TL_CLI_PARAMS,
         "its weights (safetensors); leave out for a graph with inline weights"},
        {0},
    };
    const tl_cli_opt opts[] = {
        {.name = "--ops",
         .kind = TL_CLI_FLAG,
         .dest = &ops,
         .alone = true,
         .help = "print tlrt's op table as JSON (takes no graph)"},
        {.name = "--plan",
         .kind = TL_CLI_FLAG,
         .dest = &plan,
         .help = "print the memory plan instead of the node table: per node, what a run does and where "
                 "its value lives"},
        {.name = "--torchlean",
         .kind = TL_CLI_FLAG,
         .dest = &torchlean,
         .help = "report every place TorchLean's importer would reject or misread the graph (one line each, "
                 "exit 2), or that it is TorchLean-compatible"},
        {.name = "--input-shape",
         .meta = "SHAPE",
         .kind = TL_CLI_SHAPE,
         .dest = &shape,
         .seen = &shape_given,
         .help = "plan for this input shape (e.g. 1,3,32,32) instead of the captured one (with --plan)"},
        {0},
    };
    const tl_cli cli = {
        .tool = "tlinfo",
        .pos = pos,
        .opts = opts,
        .about = "Print a torchlean.ir.v1 graph: its node table and totals, or its memory plan.",
        .notes =
            "exit status: 0 ok, 2 bad input (one line on stderr, file name first), 3 out of memory, "
            "1 I/O or internal failure",
    };
    int rc = tl_cli_parse(&cli, argc - 1, argv + 1);
    if (rc >= 0) return rc;
    if (ops) { /* the op table as JSON (tests derive op lists from it) */
        tl_op_table_json(stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (shape_given && !plan) return tl_cli_usage_error(&cli, "--input-shape needs --plan");
    if (torchlean) {
        if (plan || params_path) return tl_cli_usage_error(&cli, "--torchlean takes the graph alone");
        tl_err e = {0};
        if (tl_torchlean_check_print(graph_path, stdout, &e)) {
            fflush(stdout);
            return tl_cli_fail(&e);
        }
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (plan) return print_plan(graph_path, params_path, shape_given ? &shape : NULL);
    return print_table(graph_path, params_path);
}
