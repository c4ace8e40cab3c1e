/* tlrun - run a torchlean.ir.v1 graph on one .npy input.
 *
 * The arguments are declared once, in main's tables (tl_cli.h: usage line, --help, parsing).
 * -o out.npy writes output 0 to out.npy and output k (k >= 1) to out_k.npy (".npy" stripped from
 * the given name, then "_k.npy" appended); every file is written atomically (temp + rename).
 * Without -o, each output's shape and a short summary go to stdout.
 * --repeat N: one warm-up run, then N timed runs: "repeat N: min X ms, median Y ms".
 * --profile: Chrome trace JSON, one complete ("X") event per node; args.plan says what a run does
 *   for it ("run", "input", "folded": constant, computed once at plan time, "alias", "view": a
 *   transpose read in place by matmul), so only "run"/"input" events have a nonzero duration.
 * --dump-node ID file.npy: any intermediate value (the session keeps every value).
 * --dtype float64: every op in double (docs/float64.md); the input .npy is read at its precision
 *   (float32 widened exactly), outputs and dumps are written as float64 ('<f8'). A float32 run
 *   given a float64 .npy rounds it to float32 and says so in one stderr line; integer, float16 and
 *   bool inputs are refused (the IR declares no input dtype other than float).
 * Exit status: 0 ok, else tl_err_exit_status of the error (one line on stderr, file name first):
 * 2 bad input (usage, graph, params, input), 3 out of memory, 1 I/O or internal failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tl_strbuf.h"
#include "tl_cli.h"
#include "tl_import.h"
#include "tl_runtime.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* out.npy -> out_k.npy */
static void output_name(const char *base, int k, char *buf, size_t n) {
    if (k == 0) {
        snprintf(buf, n, "%s", base);
        return;
    }
    size_t len = strlen(base);
    if (len >= 4 && strcmp(base + len - 4, ".npy") == 0) len -= 4;
    snprintf(buf, n, "%.*s_%d.npy", (int)len, base, k);
}

static void shape_json(tl_strbuf *b, const tl_shape *s) {
    tl_sb_putc(b, '[');
    for (int i = 0; i < s->rank; i++) tl_sb_printf(b, "%s%lld", i ? "," : "", (long long)s->dim[i]);
    tl_sb_putc(b, ']');
}

/* Built in memory, then written atomically: a failed run never leaves half a trace behind. */
static int write_profile(const char *path, const tl_session *s, const tl_graph *g, tl_err *err) {
    tl_strbuf b = TL_STRBUF_INIT;
    tl_sb_printf(&b, "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
    double ts = 0.0;
    for (int64_t i = 0; i < g->n_nodes; i++) {
        const tl_node *n = &g->nodes[i];
        double us = (double)tl_session_node_ns(s, i) / 1e3;
        tl_sb_printf(&b,
                     "%s{\"name\":\"%s\",\"cat\":\"node\",\"ph\":\"X\",\"pid\":1,\"tid\":1,"
                     "\"ts\":%.3f,\"dur\":%.3f,\"args\":{\"id\":%lld,\"inputs\":[",
                     i ? ",\n" : "", tl_op_tag(n->op), ts, us, (long long)i);
        for (int k = 0; k < n->n_parents; k++) {
            if (k) tl_sb_putc(&b, ',');
            shape_json(&b, tl_session_node_shape(s, n->parents[k]));
        }
        tl_sb_printf(&b, "],\"output\":");
        shape_json(&b, tl_session_node_shape(s, i));
        tl_sb_printf(&b, ",\"us\":%.3f,\"plan\":\"%s\"}}", us, tl_session_node_plan(s, i));
        ts += us;
    }
    tl_sb_printf(&b, "\n]}\n");
    if (b.oom) {
        tl_sb_free(&b);
        return tl_erroom(err, "%s: out of memory building the trace", path);
    }
    const void *parts[1] = {b.p};
    size_t lens[1] = {b.n};
    int rc = tl_write_file_atomic(path, 1, parts, lens, err);
    tl_sb_free(&b);
    return rc;
}

/* y: float32 values, or yd: float64 ones */
static void summary(int k, const float *y, const double *yd, const tl_shape *s) {
    char b[256];
    int64_t n = tl_shape_numel(s);
    printf("output %d: shape %s", k, tl_shape_str(s, b, sizeof b));
#define TL_Y(i) (yd ? yd[i] : (double)y[i])
    if (n > 0) {
        double mn = TL_Y(0), mx = TL_Y(0), sum = 0;
        for (int64_t i = 0; i < n; i++) {
            double v = TL_Y(i);
            if (v < mn) mn = v;
            if (v > mx) mx = v;
            sum += v;
        }
        printf(" min %.6g max %.6g mean %.6g first [", mn, mx, sum / (double)n);
        for (int64_t i = 0; i < n && i < 8; i++) printf("%s%.6g", i ? ", " : "", TL_Y(i));
        printf("%s]", n > 8 ? ", ..." : "");
    }
#undef TL_Y
    printf("\n");
}

int main(int argc, char **argv) {
    const char *graph_path = NULL, *params_path = NULL, *input_path = NULL;
    const char *out_path = NULL, *profile = NULL, *dump_path = NULL;
    long long threads = 0, repeat = 0, dump_id = -1;
    bool exact = false;
    int isa = -1;   /* index into --isa's choices, which are in tl_isa order */
    int dtype = -1; /* --dtype: 0 float32 (default), 1 float64 */
    const tl_cli_pos pos[] = {
        {"graph.json", &graph_path, 0, "the graph (torchlean.ir.v1 JSON)"},
        {"params.bin", &params_path, TL_CLI_OPTIONAL | TL_CLI_PARAMS,
         "its weights (safetensors); leave out for a graph with inline weights"},
        {"input.npy", &input_path, 0,
         "the input; a leading (batch) dimension other than the captured one runs when the graph "
         "keeps samples apart"},
        {0},
    };
    const tl_cli_opt opts[] = {
        {.name = "--output",
         .alias = "-o",
         .meta = "out.npy",
         .kind = TL_CLI_PATH,
         .dest = &out_path,
         .help = "write output 0 to out.npy and output k to out_k.npy (atomically); without -o, print "
                 "each output's shape and a summary"},
        {.name = "--threads",
         .meta = "N",
         .kind = TL_CLI_INT,
         .min = 1,
         .max = 1024,
         .dest = &threads,
         .help = "threads for tlrt's kernels and GEMMs (its worker pool)"},
        {.name = "--repeat",
         .meta = "N",
         .kind = TL_CLI_INT,
         .min = 1,
         .dest = &repeat,
         .help = "one warm-up run, then N timed runs: prints min and median"},
        {.name = "--profile",
         .meta = "trace.json",
         .kind = TL_CLI_PATH,
         .dest = &profile,
         .help = "write a Chrome trace: one event per node with its tag, shapes, time and plan"},
        {.name = "--dump-node",
         .meta = "ID",
         .kind = TL_CLI_INT,
         .min = 0,
         .dest = &dump_id,
         .meta2 = "out.npy",
         .dest2 = &dump_path,
         .help = "write node ID's value (any intermediate) to out.npy"},
        {.name = "--isa",
         .kind = TL_CLI_CHOICE,
         .choices = "scalar|avx2|avx512",
         .dest = &isa,
         .help = "use this kernel set instead of the best one the CPU has"},
        {.name = "--dtype",
         .kind = TL_CLI_CHOICE,
         .choices = "float32|float64",
         .dest = &dtype,
         .help = "compute in this precision (default float32); float64 runs every op in double and "
                 "writes float64 .npy files"},
        {.name = "--exact",
         .kind = TL_CLI_FLAG,
         .dest = &exact,
         .help = "follow the graph node by node: no plan-time rewrite that changes rounding (batch norm "
                 "folded into the conv/linear before it)"},
        {0},
    };
    const tl_cli cli = {
        .tool = "tlrun",
        .pos = pos,
        .opts = opts,
        .about = "Run a torchlean.ir.v1 graph on one .npy input.",
        .notes =
            "exit status: 0 ok, 2 bad input (one line on stderr, file name first), 3 out of memory, "
            "1 I/O or internal failure",
    };
    int rc = tl_cli_parse(&cli, argc - 1, argv + 1);
    if (rc >= 0) return rc;

    tl_err err = {0};
    if (isa >= 0) {
        static const char *const name[] = {"scalar", "avx2", "avx512"};
        if (!tl_isa_supported((tl_isa)isa)) {
            tl_errk(&err, TL_ERR_UNSUPPORTED, "tlrun: --isa %s: not supported on this CPU", name[isa]);
            return tl_cli_fail(&err);
        }
        tl_kernels_set_isa((tl_isa)isa);
    }
    if (threads > 0) tl_set_threads((int)threads);

    tl_model *m = NULL;
    tl_tensor *x = NULL;
    tl_session *s = NULL;
    double *t = NULL;
    rc = 0;
    if (tl_model_open(graph_path, params_path, &m, &err)) goto fail;
    const tl_graph *g = tl_model_graph(m);
    if (dump_path && dump_id >= g->n_nodes) {
        tl_errf(&err, "tlrun: --dump-node %lld: no such node (%s has %lld nodes)", dump_id, graph_path,
                (long long)g->n_nodes);
        goto fail;
    }
    bool f64 = dtype == 1;
    const char *descr = NULL;
    if (tl_npy_load_input(input_path, f64, &x, &descr, &err)) goto fail;
    if (!f64 && descr && strcmp(descr, "<f8") == 0)
        fprintf(stderr, "tlrun: %s: float64 input rounded to float32 (--dtype float64 runs in double)\n", input_path);
    int flags = (profile ? TL_SESSION_PROFILE : 0) | (dump_path ? TL_SESSION_KEEP_ALL : 0) |
        (exact ? TL_SESSION_EXACT : 0) | (f64 ? TL_SESSION_FLOAT64 : 0);
    if (tl_session_new(m, &x->shape, flags, &s, &err)) {
        tl_err_prefix(&err, input_path);
        goto fail;
    }
    if (f64 ? tl_session_run_f64(s, x->data64, &err) : tl_session_run(s, x->data, &err)) goto fail;
    if (repeat > 0) {
        t = (size_t)repeat <= SIZE_MAX / sizeof(double) ? malloc(sizeof(double) * (size_t)repeat) : NULL;
        if (!t) {
            tl_erroom(&err, "tlrun: --repeat %lld: out of memory for the timings", repeat);
            goto fail;
        }
        for (long long r = 0; r < repeat; r++) {
            double t0 = now_ms();
            if (f64 ? tl_session_run_f64(s, x->data64, &err) : tl_session_run(s, x->data, &err)) goto fail;
            t[r] = now_ms() - t0;
        }
        qsort(t, (size_t)repeat, sizeof(double), cmp_double);
        double med = repeat % 2 ? t[repeat / 2] : 0.5 * (t[repeat / 2 - 1] + t[repeat / 2]);
        printf("repeat %lld: min %.5f ms, median %.5f ms\n", repeat, t[0], med);
    }
    if (profile && write_profile(profile, s, g, &err)) goto fail;
    if (dump_path) {
        tl_shape sh;
        if (f64) {
            const double *v = tl_session_node_value_f64(s, dump_id, &sh, &err);
            if (!v || tl_npy_save_f64(dump_path, &sh, v, &err)) goto fail;
        } else {
            const float *v = tl_session_node_value(s, dump_id, &sh, &err);
            if (!v || tl_npy_save(dump_path, &sh, v, &err)) goto fail;
        }
    }
    for (int k = 0; k < tl_session_n_outputs(s); k++) {
        tl_shape sh;
        const float *y = f64 ? NULL : tl_session_output(s, k, &sh);
        const double *yd = f64 ? tl_session_output_f64(s, k, &sh) : NULL;
        if (out_path) {
            char name[4096];
            output_name(out_path, k, name, sizeof name);
            if (f64 ? tl_npy_save_f64(name, &sh, yd, &err) : tl_npy_save(name, &sh, y, &err)) goto fail;
        } else {
            summary(k, y, yd, &sh);
        }
    }
    goto done;
fail:
    rc = tl_cli_fail(&err);
done:
    free(t);
    tl_session_free(s);
    tl_tensor_free(x);
    tl_model_free(m);
    return rc;
}
