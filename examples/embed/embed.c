/* embed.c - tlrt embedded in a C program: load a graph (+ params.bin), read an input .npy, run
 * it, print every output element, one per line (%.9g), after a "output <i> <shape>" line.
 *
 *   embed graph.json [params.bin] input.npy
 *
 * Build against an installed tlrt (see Makefile / CMakeLists.txt next to this file). */
#include <stdio.h>
#include <string.h>
#include <tlrt/tlrt.h>

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s graph.json [params.bin] input.npy\n", argv[0]);
        return 2;
    }
    const char *graph = argv[1], *params = argc == 4 ? argv[2] : NULL, *input = argv[argc - 1];
    tl_err err = {0};
    tl_model *m = NULL;
    tl_session *s = NULL;
    tl_tensor *x = NULL;
    int rc = 0;
    if (tl_model_open(graph, params, &m, &err) || tl_npy_load(input, &x, &err) ||
        tl_session_new(m, &x->shape, 0, &s, &err) || tl_session_run(s, x->data, &err)) {
        fprintf(stderr, "%s (%s)\n", err.msg, tl_err_kind_name(err.kind));
        rc = tl_err_exit_status(&err);
    } else {
        for (int i = 0; i < tl_session_n_outputs(s); i++) {
            tl_shape sh;
            const float *y = tl_session_output(s, i, &sh);
            printf("output %d %s\n", i, TL_SHAPE_STR(&sh));
            for (int64_t k = 0; k < tl_shape_numel(&sh); k++) printf("%.9g\n", (double)y[k]);
        }
    }
    tl_session_free(s);
    tl_tensor_free(x);
    tl_model_free(m);
    return rc;
}
