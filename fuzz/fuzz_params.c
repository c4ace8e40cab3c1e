/* fuzz_params.c - libFuzzer target: tl_params_parse on arbitrary bytes against a fixed small graph
 * (input -> linear -> add(const) -> layernorm, no inline payloads). After each input every slot
 * is unbound again so runs stay independent. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_import.h"

/* libFuzzer's entry points: no header declares them (-Wmissing-prototypes) */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char GRAPH[] =
    "{\"format\": \"torchlean.ir.v1\", \"input_id\": 0, \"output_ids\": [4], \"nodes\": ["
    "{\"id\": 0, \"kind\": \"input\", \"parents\": [], \"shape\": [2, 4]},"
    "{\"id\": 1, \"kind\": \"linear\", \"parents\": [0], \"shape\": [2, 3], \"in_dim\": 4, \"out_dim\": 3},"
    "{\"id\": 2, \"kind\": \"const\", \"parents\": [], \"shape\": [2, 3]},"
    "{\"id\": 3, \"kind\": \"add\", \"parents\": [1, 2], \"shape\": [2, 3]},"
    "{\"id\": 4, \"kind\": \"layernorm\", \"parents\": [3], \"shape\": [2, 3], \"axis\": 1, \"eps\": 1e-05}]}";

static tl_graph *G;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    tl_err err;
    if (tl_graph_parse_json(GRAPH, sizeof GRAPH - 1, "graph.json", &G, &err) != 0) {
        fprintf(stderr, "fuzz_params: fixed graph does not parse: %s\n", err.msg);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tl_err err;
    err.msg[0] = 0;
    int rc = tl_params_parse(G, data, size, "fuzz.bin", &err);
    if (rc != 0 && (err.msg[0] == 0 || strchr(err.msg, '\n') || strncmp(err.msg, "fuzz.bin: ", 10) != 0)) abort();
    tl_err e2;
    (void)tl_params_check_complete(G, "fuzz.bin", &e2);
    for (int64_t i = 0; i < G->n_nodes; i++)
        for (int s = 0; s < TL_MAX_PARAMS; s++) {
            tl_tensor *t = G->nodes[i].param[s];
            if (!t) continue;
            int64_t n;
            tl_shape want;
            if (tl_param_shape(&G->nodes[i], s, &want) != 0 || !tl_shape_eq(&want, &t->shape) ||
                tl_shape_numel_checked(&t->shape, &n) != 0)
                abort(); /* a bound tensor must have its slot's shape */
            volatile float acc = 0;
            for (int64_t k = 0; k < n; k++) acc += t->data[k];
            (void)acc;
            tl_tensor_free(t);
            G->nodes[i].param[s] = NULL;
        }
    return 0;
}
