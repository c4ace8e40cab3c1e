/* tl_test_json.h - graph JSON fixtures written inline in C tests (test_graph_json, test_torchlean):
 * single quotes for readability, turned into double quotes before parsing. */
#ifndef TL_TEST_JSON_H
#define TL_TEST_JSON_H
#include <stdlib.h>
#include <string.h>
#include "tl_import.h"

/* JSON written with single quotes: ' -> " (malloc'ed; the caller frees it) */
static char *dq(const char *s) {
    char *r = strdup(s);
    for (char *p = r; *p; p++)
        if (*p == '\'') *p = '"';
    return r;
}

/* Parse a single-quoted graph as "t.json"; NULL with e filled on failure. */
static tl_graph *parse(const char *json_sq, tl_err *e) {
    char *j = dq(json_sq);
    tl_graph *g = NULL;
    memset(e, 0, sizeof *e);
    if (tl_graph_parse_json(j, strlen(j), "t.json", &g, e)) g = NULL;
    free(j);
    return g;
}

#endif
