/* fuzz_graph.c - libFuzzer target: tl_graph_parse_json (parse + validate + inline payloads) on
 * arbitrary bytes. Either a graph or a one-line error naming the file; never a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tl_import.h"

/* libFuzzer's entry points: no header declares them (-Wmissing-prototypes) */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tl_graph *g = NULL;
    tl_err err;
    err.msg[0] = 0;
    if (tl_graph_parse_json((const char *)data, size, "fuzz.json", &g, &err) == 0) {
        if (!g) abort();
        /* the completeness check walks every slot of every node */
        tl_err e2;
        (void)tl_params_check_complete(g, NULL, &e2);
        tl_graph_free(g);
    } else {
        if (g || err.msg[0] == 0 || strchr(err.msg, '\n') || strncmp(err.msg, "fuzz.json: ", 11) != 0) abort();
    }
    return 0;
}
