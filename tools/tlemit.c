/* tlemit - code emitters: `tlemit pytorch` (IR + params -> a standalone PyTorch nn.Module) and
 * `tlemit capture-script` (prints the capture script embedded at build time).
 * Each command's arguments are declared once, in its tables below (tl_cli.h).
 * Errors: one line on stderr, exit status from its kind (2 bad input, 3 out of memory, 1 I/O or
 * internal), and no output file (the module is built in memory and written atomically:
 * temporary file in the same directory + rename). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_emit.h"
#include "tl_import.h"
#include "tl_cli.h"

/* ------------------------------------------------------------------ tlemit pytorch */
/* File-scope destinations, so that the tables are static and `tlemit --help` can show both. */
static struct {
    const char *graph, *params, *out, *class_name, *dtype;
    bool training_skeleton, learnable_consts, compress_broadcast, weights_given;
    int weights;  /* index into --weights' choices: 0 inline, 1 external */
} P = { .weights = -1 };

static const tl_cli_pos PYTORCH_POS[] = {
    { "graph.json", &P.graph, 0, "the graph (torchlean.ir.v1 JSON)" },
    { "params.bin", &P.params, TL_CLI_OPTIONAL | TL_CLI_PARAMS,
      "its weights (safetensors); leave out for a graph with inline weights" },
    { NULL },
};
static const tl_cli_opt PYTORCH_OPTS[] = {
    { .name = "--output", .alias = "-o", .meta = "model.py", .kind = TL_CLI_PATH, .dest = &P.out,
      .required = true, .help = "write the module here (atomically); '-' writes it to stdout" },
    { .name = "--class-name", .meta = "NAME", .kind = TL_CLI_STR, .dest = &P.class_name,
      .help = "the module's class name (default TorchLeanModel)" },
    { .name = "--dtype", .meta = "EXPR", .kind = TL_CLI_STR, .dest = &P.dtype,
      .help = "torch dtype expression of parameters and computation (default torch.float32)" },
    { .name = "--training-skeleton", .kind = TL_CLI_FLAG, .dest = &P.training_skeleton,
      .help = "append a small training step and smoke test" },
    { .name = "--learnable-consts", .kind = TL_CLI_FLAG, .dest = &P.learnable_consts,
      .help = "make constants nn.Parameters instead of buffers" },
    { .name = "--compress-broadcast", .kind = TL_CLI_FLAG, .dest = &P.compress_broadcast,
      .help = "store a constant that is one row repeated as that row, expanded in forward" },
    { .name = "--weights", .kind = TL_CLI_CHOICE, .choices = "inline|external", .dest = &P.weights,
      .seen = &P.weights_given,
      .help = "exact literals in the module, or load params.bin with safetensors (the default when "
              "params.bin is given)" },
    { NULL },
};
static const tl_cli PYTORCH = {
    .tool = "tlemit", .command = "pytorch", .pos = PYTORCH_POS, .opts = PYTORCH_OPTS,
    .about = "Emit a standalone, readable PyTorch nn.Module for a torchlean.ir.v1 graph; its "
             "state_dict keys are params.bin's names.",
    .notes = "exit status: 0 ok, 2 bad input (one line on stderr, file name first; no file written), "
             "3 out of memory, 1 I/O or internal failure",
};

static bool graph_has_params(const tl_graph *g) {
    for (int64_t i = 0; i < g->n_nodes; i++)
        if (tl_op_info(g->nodes[i].op)->n_params > 0) return true;
    return false;
}

static int cmd_pytorch(int argc, char **argv) {
    int rc = tl_cli_parse(&PYTORCH, argc, argv);
    if (rc >= 0) return rc;
    tl_emit_opts o;
    tl_emit_opts_default(&o);
    if (P.class_name) o.class_name = P.class_name;
    if (P.dtype) o.dtype = P.dtype;
    o.training_skeleton = P.training_skeleton;
    o.learnable_consts = P.learnable_consts;
    o.compress_broadcast = P.compress_broadcast;
    if (P.weights_given) o.weights = P.weights == 0 ? TL_WEIGHTS_INLINE : TL_WEIGHTS_EXTERNAL;

    tl_err err = { 0 };
    tl_graph *g = NULL;
    char *buf = NULL;
    size_t len = 0;
    char abs_params[PATH_MAX];
    if (tl_graph_load_json(P.graph, &g, &err) || (P.params && tl_params_load(g, P.params, &err)) ||
        tl_params_check_complete(g, P.params ? P.params : P.graph, &err))
        goto fail;
    if (o.weights == TL_WEIGHTS_EXTERNAL) {
        if (P.params) {
            /* absolute, so the module loads from any working directory */
            if (!realpath(P.params, abs_params)) {
                tl_errk(&err, TL_ERR_IO, "%s: %s", P.params, strerror(errno));
                goto fail;
            }
            o.params_path = abs_params;
        } else if (P.weights_given) {
            if (graph_has_params(g)) {
                tl_graph_free(g);
                return tl_cli_usage_error(&PYTORCH, "--weights external needs a params.bin argument (this "
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
        const void *parts[1] = { buf };
        size_t lens[1] = { len };
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

static const tl_cli_pos CAPTURE_POS[] = { { NULL } };
static const tl_cli_opt CAPTURE_OPTS[] = {
    { .name = "--function-name", .meta = "NAME", .kind = TL_CLI_STR, .dest = &C.function_name,
      .help = "the capture helper's name (default export_torchlean_graph)" },
    { .name = "--no-torch-export", .kind = TL_CLI_FLAG, .dest = &C.no_torch_export,
      .help = "try FX symbolic tracing first instead of torch.export" },
    { .name = "--debug-targets", .kind = TL_CLI_FLAG, .dest = &C.debug_targets,
      .help = "write each node's raw PyTorch target into the graph" },
    { NULL },
};
static const tl_cli CAPTURE = {
    .tool = "tlemit", .command = "capture-script", .pos = CAPTURE_POS, .opts = CAPTURE_OPTS,
    .about = "Print the capture script (scripts/export_torchlean_graph.py, embedded at build time); with "
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
    tl_err err = { 0 };
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

/* ------------------------------------------------------------------ tlemit */
static void usage(FILE *f) {
    tl_cli_usage(&PYTORCH, f);
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
    if (strcmp(argv[1], "capture-script") == 0) return cmd_capture(argc - 2, argv + 2);
    fprintf(stderr, "tlemit: unknown command '%s' (expected pytorch or capture-script)\n", argv[1]);
    return 2;
}
