/* tlemit - code emitters: `tlemit pytorch` (IR + params -> a standalone PyTorch nn.Module) and
 * `tlemit capture-script` (prints the capture script embedded at build time).
 * Each command's arguments are declared once, in its tables below (tl_cli.h).
 * Errors: one line on stderr, exit status from its kind (2 bad input, 3 out of memory, 1 I/O or
 * internal), and no output file (the module is built in memory and written atomically:
 * temporary file in the same directory + rename). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_emit.h"
#include "tl_import.h"
#include "tl_torchlean.h"
#include "tl_cli.h"

/* ------------------------------------------------------------------ tlemit pytorch */
/* File-scope destinations, so that the tables are static and `tlemit --help` can show both. */
static struct {
    const char *graph, *params, *out, *class_name, *dtype;
    bool training_skeleton, learnable_consts, compress_broadcast, weights_given;
    int weights; /* index into --weights' choices: 0 inline, 1 external */
} P = {.weights = -1};

static const tl_cli_pos PYTORCH_POS[] = {
    {"graph.json", &P.graph, 0, "the graph (torchlean.ir.v1 JSON)"},
    {"params.bin", &P.params, TL_CLI_OPTIONAL | TL_CLI_PARAMS,
     "its weights (safetensors); leave out for a graph with inline weights"},
    {0},
};
static const tl_cli_opt PYTORCH_OPTS[] = {
    {.name = "--output",
     .alias = "-o",
     .meta = "model.py",
     .kind = TL_CLI_PATH,
     .dest = &P.out,
     .required = true,
     .help = "write the module here (atomically); '-' writes it to stdout"},
    {.name = "--class-name",
     .meta = "NAME",
     .kind = TL_CLI_STR,
     .dest = &P.class_name,
     .help = "the module's class name (default TorchLeanModel)"},
    {.name = "--dtype",
     .meta = "EXPR",
     .kind = TL_CLI_STR,
     .dest = &P.dtype,
     .help = "torch dtype expression of parameters and computation (default torch.float64 when params.bin "
             "holds F64 tensors, a float64 capture; else torch.float32)"},
    {.name = "--training-skeleton",
     .kind = TL_CLI_FLAG,
     .dest = &P.training_skeleton,
     .help = "append a small training step and smoke test"},
    {.name = "--learnable-consts",
     .kind = TL_CLI_FLAG,
     .dest = &P.learnable_consts,
     .help = "make constants nn.Parameters instead of buffers"},
    {.name = "--compress-broadcast",
     .kind = TL_CLI_FLAG,
     .dest = &P.compress_broadcast,
     .help = "store a constant that is one row repeated as that row, expanded in forward"},
    {.name = "--weights",
     .kind = TL_CLI_CHOICE,
     .choices = "inline|external",
     .dest = &P.weights,
     .seen = &P.weights_given,
     .help = "exact literals in the module, or load params.bin with safetensors (the default when "
             "params.bin is given)"},
    {0},
};
static const tl_cli PYTORCH = {
    .tool = "tlemit",
    .command = "pytorch",
    .pos = PYTORCH_POS,
    .opts = PYTORCH_OPTS,
    .about =
        "Emit a standalone, readable PyTorch nn.Module for a torchlean.ir.v1 graph; its "
        "state_dict keys are params.bin's names.",
    .notes =
        "exit status: 0 ok, 2 bad input (one line on stderr, file name first; no file written), "
        "3 out of memory, 1 I/O or internal failure",
};

static bool graph_has_params(const tl_graph *g) {
    for (int64_t i = 0; i < g->n_nodes; i++)
        if (tl_op_info(g->nodes[i].op)->n_params > 0) return true;
    return false;
}

/* Does the safetensors file hold an F64 tensor (a float64 capture)? Only its JSON header is read;
 * a file that is not one answers false here and fails in tl_params_load with its message. */
static bool params_hold_f64(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    unsigned char n8[8];
    bool any = false;
    if (fread(n8, 1, 8, f) == 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | n8[i];
        char *h = n > 0 && n < (100u << 20) ? malloc((size_t)n + 1) : NULL;
        if (h && fread(h, 1, (size_t)n, f) == (size_t)n) {
            h[n] = 0;
            cJSON *doc = cJSON_Parse(h);
            for (cJSON *t = doc ? doc->child : NULL; t && !any; t = t->next) {
                const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
                any = cJSON_IsString(dt) && strcmp(dt->valuestring, "F64") == 0;
            }
            cJSON_Delete(doc);
        }
        free(h);
    }
    fclose(f);
    return any;
}

static int cmd_pytorch(int argc, char **argv) {
    int rc = tl_cli_parse(&PYTORCH, argc, argv);
    if (rc >= 0) return rc;
    tl_emit_opts o;
    tl_emit_opts_default(&o);
    if (P.class_name) o.class_name = P.class_name;
    if (P.dtype) o.dtype = P.dtype;
    else if (P.params && params_hold_f64(P.params)) o.dtype = "torch.float64"; /* the capture's dtype */
    o.training_skeleton = P.training_skeleton;
    o.learnable_consts = P.learnable_consts;
    o.compress_broadcast = P.compress_broadcast;
    if (P.weights_given) o.weights = P.weights == 0 ? TL_WEIGHTS_INLINE : TL_WEIGHTS_EXTERNAL;

    tl_err err = {0};
    tl_graph *g = NULL;
    char *buf = NULL;
    size_t len = 0;
    char abs_params[PATH_MAX];
    if (tl_graph_load_json(P.graph, &g, &err) || (P.params && tl_params_load(g, P.params, &err)) ||
        tl_params_check_complete(g, P.params ? P.params : P.graph, &err))
        goto fail;
    if (o.weights == TL_WEIGHTS_EXTERNAL) {
        if (P.params) {
            /* next to the module: its file name, which the module resolves against its own
             * directory (module and params.bin move together); elsewhere: absolute, so the module
             * loads from any working directory */
            char abs_out_dir[PATH_MAX];
            if (!realpath(P.params, abs_params)) {
                tl_errk(&err, TL_ERR_IO, "%s: %s", P.params, strerror(errno));
                goto fail;
            }
            o.params_path = abs_params;
            if (strcmp(P.out, "-") != 0) {
                char dir[PATH_MAX];
                const char *slash = strrchr(P.out, '/');
                snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - P.out) : 1, slash ? P.out : ".");
                if (slash == P.out) snprintf(dir, sizeof dir, "/");
                const char *pslash = strrchr(abs_params, '/');
                if (realpath(dir, abs_out_dir) && pslash && strlen(abs_out_dir) == (size_t)(pslash - abs_params) &&
                    strncmp(abs_out_dir, abs_params, (size_t)(pslash - abs_params)) == 0)
                    o.params_path = pslash + 1;
            }
        } else if (P.weights_given) {
            if (graph_has_params(g)) {
                tl_graph_free(g);
                return tl_cli_usage_error(&PYTORCH,
                                          "--weights external needs a params.bin argument (this "
                                          "graph carries its parameters inline: use --weights inline)");
            }
        } else {
            o.weights = TL_WEIGHTS_INLINE; /* payloads came from the graph JSON itself */
        }
    }
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) {
        tl_erroom(&err, "tlemit: out of memory");
        goto fail;
    }
    rc = tl_emit_pytorch(g, &o, mem, &err);
    if (fclose(mem) != 0 && !rc) rc = tl_erroom(&err, "tlemit: out of memory");
    if (rc) goto fail;
    if (strcmp(P.out, "-") == 0) {
        if (fwrite(buf, 1, len, stdout) != len || fflush(stdout) != 0) {
            tl_errk(&err, TL_ERR_IO, "tlemit: cannot write to stdout");
            goto fail;
        }
    } else {
        const void *parts[1] = {buf};
        size_t lens[1] = {len};
        if (tl_write_file_atomic(P.out, 1, parts, lens, &err)) goto fail;
    }
    free(buf);
    tl_graph_free(g);
    return 0;
fail:
    free(buf);
    tl_graph_free(g);
    return tl_cli_fail(&err);
}

/* ------------------------------------------------------------------ tlemit capture-script */
static struct {
    const char *function_name;
    bool no_torch_export, debug_targets;
} C;

static const tl_cli_pos CAPTURE_POS[] = {{0}};
static const tl_cli_opt CAPTURE_OPTS[] = {
    {.name = "--function-name",
     .meta = "NAME",
     .kind = TL_CLI_STR,
     .dest = &C.function_name,
     .help = "the capture helper's name (default export_torchlean_graph)"},
    {.name = "--no-torch-export",
     .kind = TL_CLI_FLAG,
     .dest = &C.no_torch_export,
     .help = "try FX symbolic tracing first instead of torch.export"},
    {.name = "--debug-targets",
     .kind = TL_CLI_FLAG,
     .dest = &C.debug_targets,
     .help = "write each node's raw PyTorch target into the graph"},
    {0},
};
static const tl_cli CAPTURE = {
    .tool = "tlemit",
    .command = "capture-script",
    .pos = CAPTURE_POS,
    .opts = CAPTURE_OPTS,
    .about =
        "Print the capture script (scripts/export_torchlean_graph.py, embedded at build time); with "
        "no options the output equals that file.",
};

static int cmd_capture(int argc, char **argv) {
    int rc = tl_cli_parse(&CAPTURE, argc, argv);
    if (rc >= 0) return rc;
    tl_capture_opts o;
    tl_capture_opts_default(&o);
    if (C.function_name) o.function_name = C.function_name;
    if (C.no_torch_export) o.prefer_torch_export = false;
    if (C.debug_targets) o.debug_targets = true;
    tl_err err = {0};
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) {
        tl_erroom(&err, "tlemit: out of memory");
        return tl_cli_fail(&err);
    }
    rc = tl_emit_capture_script(&o, mem, &err);
    if (fclose(mem) != 0 && !rc) rc = tl_erroom(&err, "tlemit: out of memory");
    if (!rc && (fwrite(buf, 1, len, stdout) != len || fflush(stdout) != 0))
        rc = tl_errk(&err, TL_ERR_IO, "tlemit: cannot write to stdout");
    free(buf);
    return rc ? tl_cli_fail(&err) : 0;
}

/* ------------------------------------------------------------------ tlemit torchlean / small */
static struct { const char *graph, *params, *out, *params_out; } T;
static const tl_cli_pos TORCHLEAN_POS[] = {
    {"graph.json", &T.graph, 0, "the graph (tlrt's small form, or any form tlrt reads)"},
    {"params.bin", &T.params, TL_CLI_OPTIONAL | TL_CLI_PARAMS, "its weights (safetensors)"},
    {0},
};
static const tl_cli_opt TORCHLEAN_OPTS[] = {
    {.name = "--output",
     .alias = "-o",
     .meta = "graph_inline.json",
     .kind = TL_CLI_PATH,
     .dest = &T.out,
     .required = true,
     .help = "write TorchLean's inline form here (checked with tlinfo --torchlean's rules)"},
    {0},
};
static const tl_cli TORCHLEAN = {
    .tool = "tlemit",
    .command = "torchlean",
    .pos = TORCHLEAN_POS,
    .opts = TORCHLEAN_OPTS,
    .about =
        "Write a graph in TorchLean's form: payloads inline (dense grouped conv weights), current tags, "
        "every field TorchLean's importer requires.",
    .notes = "exit status: 0 ok, 2 bad input, 3 out of memory, 1 I/O or internal failure",
};
static const tl_cli_pos SMALL_POS[] = {
    {"graph_inline.json", &T.graph, 0, "a graph with its payloads inline (TorchLean's form)"},
    {0},
};
static const tl_cli_opt SMALL_OPTS[] = {
    {.name = "--output",
     .alias = "-o",
     .meta = "graph.json",
     .kind = TL_CLI_PATH,
     .dest = &T.out,
     .required = true,
     .help = "write the small JSON here"},
    {.name = "--params",
     .meta = "params.bin",
     .kind = TL_CLI_PATH,
     .dest = &T.params_out,
     .help = "write the weights here (default: params.bin next to the output)"},
    {0},
};
static const tl_cli SMALL = {
    .tool = "tlemit",
    .command = "small",
    .pos = SMALL_POS,
    .opts = SMALL_OPTS,
    .about = "The way back from TorchLean's inline form: a small graph JSON plus params.bin.",
    .notes = "exit status: 0 ok, 2 bad input, 3 out of memory, 1 I/O or internal failure",
};

static int cmd_torchlean(int argc, char **argv) {
    int rc = tl_cli_parse(&TORCHLEAN, argc, argv);
    if (rc >= 0) return rc;
    tl_err err = {0};
    return tl_torchlean_to_inline(T.graph, T.params, T.out, &err) ? tl_cli_fail(&err) : 0;
}

static int cmd_small(int argc, char **argv) {
    int rc = tl_cli_parse(&SMALL, argc, argv);
    if (rc >= 0) return rc;
    char def[PATH_MAX];
    if (!T.params_out) { /* params.bin next to the output */
        const char *slash = strrchr(T.out, '/');
        snprintf(def, sizeof def, "%.*sparams.bin", slash ? (int)(slash - T.out + 1) : 0, T.out);
        T.params_out = def;
    }
    tl_err err = {0};
    return tl_torchlean_from_inline(T.graph, T.out, T.params_out, &err) ? tl_cli_fail(&err) : 0;
}

/* ------------------------------------------------------------------ tlemit */
static void usage(FILE *f) {
    tl_cli_usage(&PYTORCH, f);
    tl_cli_usage(&TORCHLEAN, f);
    tl_cli_usage(&SMALL, f);
    tl_cli_usage(&CAPTURE, f);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        printf("\nCode emitters; 'tlemit COMMAND --help' describes each command.\n");
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (strcmp(argv[1], "pytorch") == 0) return cmd_pytorch(argc - 2, argv + 2);
    if (strcmp(argv[1], "torchlean") == 0) return cmd_torchlean(argc - 2, argv + 2);
    if (strcmp(argv[1], "small") == 0) return cmd_small(argc - 2, argv + 2);
    if (strcmp(argv[1], "capture-script") == 0) return cmd_capture(argc - 2, argv + 2);
    fprintf(stderr, "tlemit: unknown command '%s' (expected pytorch, torchlean, small or capture-script)\n", argv[1]);
    return 2;
}
