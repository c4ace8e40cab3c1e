/* tlemit - code emitters.
 *   tlemit pytorch graph.json [params.bin] -o model.py [--class-name NAME] [--dtype EXPR]
 *          [--training-skeleton] [--learnable-consts] [--compress-broadcast] [--weights inline|external]
 *   tlemit capture-script [--function-name NAME] [--no-torch-export] [--debug-targets]
 * Bad input: one line on stderr, exit 2, and no output file (the module is built in memory and
 * written atomically: temporary file in the same directory + rename). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tl_emit.h"
#include "tl_import.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: tlemit pytorch graph.json [params.bin] -o model.py [--class-name NAME] [--dtype EXPR]\n"
            "                      [--training-skeleton] [--learnable-consts] [--compress-broadcast]\n"
            "                      [--weights inline|external]\n"
            "       tlemit capture-script [--function-name NAME] [--no-torch-export] [--debug-targets]\n");
}

static int fail(const char *msg) {
    fprintf(stderr, "%s\n", msg);
    return 2;
}

static int failf(const char *fmt, const char *a) {
    fprintf(stderr, "tlemit: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    return 2;
}

static int cmd_capture(int argc, char **argv) {
    tl_capture_opts o;
    tl_capture_opts_default(&o);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--function-name") == 0) {
            if (i + 1 >= argc) return failf("%s needs a value", argv[i]);
            o.function_name = argv[++i];
        } else if (strcmp(argv[i], "--no-torch-export") == 0) {
            o.prefer_torch_export = false;
        } else if (strcmp(argv[i], "--debug-targets") == 0) {
            o.debug_targets = true;
        } else {
            return failf("capture-script: unknown argument \"%s\"", argv[i]);
        }
    }
    tl_err err = { 0 };
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) return fail("tlemit: out of memory");
    int rc = tl_emit_capture_script(&o, mem, &err);
    fclose(mem);
    if (rc) {
        free(buf);
        return fail(err.msg);
    }
    fwrite(buf, 1, len, stdout);
    free(buf);
    return fflush(stdout) == 0 ? 0 : 2;
}

static int cmd_pytorch(int argc, char **argv) {
    tl_emit_opts o;
    tl_emit_opts_default(&o);
    const char *graph_path = NULL, *params_path = NULL, *out_path = NULL;
    bool weights_given = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (!has_val) return failf("%s needs a value", a);
            out_path = argv[++i];
        } else if (strcmp(a, "--class-name") == 0) {
            if (!has_val) return failf("%s needs a value", a);
            o.class_name = argv[++i];
        } else if (strcmp(a, "--dtype") == 0) {
            if (!has_val) return failf("%s needs a value", a);
            o.dtype = argv[++i];
        } else if (strcmp(a, "--weights") == 0) {
            if (!has_val) return failf("%s needs a value", a);
            const char *v = argv[++i];
            if (strcmp(v, "inline") == 0) o.weights = TL_WEIGHTS_INLINE;
            else if (strcmp(v, "external") == 0) o.weights = TL_WEIGHTS_EXTERNAL;
            else return failf("--weights: expected inline or external, got \"%s\"", v);
            weights_given = true;
        } else if (strcmp(a, "--training-skeleton") == 0) {
            o.training_skeleton = true;
        } else if (strcmp(a, "--learnable-consts") == 0) {
            o.learnable_consts = true;
        } else if (strcmp(a, "--compress-broadcast") == 0) {
            o.compress_broadcast = true;
        } else if (a[0] == '-' && a[1]) {
            return failf("pytorch: unknown option \"%s\"", a);
        } else if (!graph_path) {
            graph_path = a;
        } else if (!params_path) {
            params_path = a;
        } else {
            return failf("pytorch: unexpected argument \"%s\"", a);
        }
    }
    if (!graph_path) return failf("%s", "pytorch: missing graph.json");
    if (!out_path) return failf("%s", "pytorch: missing -o model.py");

    tl_err err = { 0 };
    tl_graph *g = NULL;
    if (tl_graph_load_json(graph_path, &g, &err)) return fail(err.msg);
    if (params_path && tl_params_load(g, params_path, &err)) {
        tl_graph_free(g);
        return fail(err.msg);
    }
    if (tl_params_check_complete(g, params_path ? params_path : graph_path, &err)) {
        tl_graph_free(g);
        return fail(err.msg);
    }
    char abs_params[PATH_MAX];
    if (o.weights == TL_WEIGHTS_EXTERNAL) {
        if (params_path) {
            /* absolute, so the module loads from any working directory */
            if (!realpath(params_path, abs_params)) {
                tl_graph_free(g);
                fprintf(stderr, "%s: %s\n", params_path, strerror(errno));
                return 2;
            }
            o.params_path = abs_params;
        } else if (weights_given) {
            bool any = false;
            for (int64_t i = 0; i < g->n_nodes && !any; i++) any = tl_op_info(g->nodes[i].op)->n_params > 0;
            if (any) {
                tl_graph_free(g);
                return failf("%s", "--weights external needs a params.bin argument (this graph carries its "
                                   "parameters inline: use --weights inline)");
            }
        } else {
            o.weights = TL_WEIGHTS_INLINE; /* payloads came from the graph JSON itself */
        }
    }

    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) {
        tl_graph_free(g);
        return fail("tlemit: out of memory");
    }
    int rc = tl_emit_pytorch(g, &o, mem, &err);
    fclose(mem);
    tl_graph_free(g);
    if (rc) {
        free(buf);
        return fail(err.msg);
    }
    if (strcmp(out_path, "-") == 0) {
        fwrite(buf, 1, len, stdout);
        free(buf);
        return fflush(stdout) == 0 ? 0 : 2;
    }
    const void *parts[1] = { buf };
    size_t lens[1] = { len };
    rc = tl_write_file_atomic(out_path, 1, parts, lens, &err);
    free(buf);
    if (rc) return fail(err.msg);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "pytorch") == 0) return cmd_pytorch(argc - 2, argv + 2);
    if (strcmp(argv[1], "capture-script") == 0) return cmd_capture(argc - 2, argv + 2);
    return failf("unknown command \"%s\" (expected pytorch or capture-script)", argv[1]);
}
