/* tlrun - run a torchlean.ir.v1 graph on one .npy input.
 *
 *   tlrun graph.json [params.bin] input.npy [-o out.npy] [--threads N] [--repeat N]
 *         [--profile trace.json] [--dump-node ID out.npy] [--isa scalar|avx2|avx512]
 *
 * params.bin is optional (graphs carrying their payloads inline): with two positional arguments
 * they are graph and input, with three graph, params and input.
 * -o out.npy writes output 0 to out.npy and output k (k >= 1) to out_k.npy (".npy" stripped from
 * the given name, then "_k.npy" appended); every file is written atomically (temp + rename).
 * Without -o, each output's shape and a short summary go to stdout.
 * --repeat N: one warm-up run, then N timed runs: "repeat N: min X ms, median Y ms".
 * --profile: Chrome trace JSON, one complete ("X") event per node; args.plan says what a run does
 *   for it ("run", "input", "folded": constant, computed once at plan time, "alias", "view": a
 *   transpose read in place by matmul), so only "run"/"input" events have a nonzero duration.
 * --dump-node ID file.npy: any intermediate value (the session keeps every value).
 * Exit status: 0 ok, 2 bad input (usage, graph, params, input; one line on stderr, file name
 * first), 1 runtime failure (running, writing results). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "tl_import.h"
#include "tl_runtime.h"

static const char *USAGE =
    "usage: tlrun graph.json [params.bin] input.npy [-o out.npy] [--threads N] [--repeat N] "
    "[--profile trace.json] [--dump-node ID out.npy] [--isa scalar|avx2|avx512]";

static int fail(int code, const char *msg) {
    fprintf(stderr, "%s\n", msg);
    return code;
}

static int parse_count(const char *opt, const char *v, long long min, long long *out, tl_err *err) {
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < min || x > 1000000000LL)
        return tl_errf(err, "tlrun: %s: expected an integer >= %lld, got '%s'", opt, min, v);
    *out = x;
    return 0;
}

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

static void shape_json(FILE *f, const tl_shape *s) {
    fputc('[', f);
    for (int i = 0; i < s->rank; i++) fprintf(f, "%s%lld", i ? "," : "", (long long)s->dim[i]);
    fputc(']', f);
}

static int write_profile(const char *path, const tl_session *s, const tl_graph *g, tl_err *err) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return tl_errf(err, "%s: cannot write: %s", path, strerror(errno));
    fprintf(f, "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
    double ts = 0.0;
    int first = 1;
    for (int64_t i = 0; i < g->n_nodes; i++) {
        const tl_node *n = &g->nodes[i];
        double us = (double)tl_session_node_ns(s, i) / 1e3;
        fprintf(f, "%s{\"name\":\"%s\",\"cat\":\"node\",\"ph\":\"X\",\"pid\":1,\"tid\":1,"
                   "\"ts\":%.3f,\"dur\":%.3f,\"args\":{\"id\":%lld,\"inputs\":[",
                first ? "" : ",\n", tl_op_tag(n->op), ts, us, (long long)i);
        for (int k = 0; k < n->n_parents; k++) {
            if (k) fputc(',', f);
            shape_json(f, tl_session_node_shape(s, n->parents[k]));
        }
        fprintf(f, "],\"output\":");
        shape_json(f, tl_session_node_shape(s, i));
        fprintf(f, ",\"us\":%.3f,\"plan\":\"%s\"}}", us, tl_session_node_plan(s, i));
        ts += us;
        first = 0;
    }
    fprintf(f, "\n]}\n");
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        remove(tmp);
        return tl_errf(err, "%s: cannot write: %s", path, strerror(errno));
    }
    return 0;
}

static void summary(int k, const float *y, const tl_shape *s) {
    char b[256];
    int64_t n = tl_shape_numel(s);
    printf("output %d: shape %s", k, tl_shape_str(s, b, sizeof b));
    if (n > 0) {
        double mn = y[0], mx = y[0], sum = 0;
        for (int64_t i = 0; i < n; i++) {
            if (y[i] < mn) mn = y[i];
            if (y[i] > mx) mx = y[i];
            sum += y[i];
        }
        printf(" min %.6g max %.6g mean %.6g first [", mn, mx, sum / (double)n);
        for (int64_t i = 0; i < n && i < 8; i++) printf("%s%.6g", i ? ", " : "", y[i]);
        printf("%s]", n > 8 ? ", ..." : "");
    }
    printf("\n");
}

int main(int argc, char **argv) {
    tl_err err = { 0 };
    const char *pos[4];
    int npos = 0;
    const char *out_path = NULL, *profile = NULL, *dump_path = NULL, *isa = NULL;
    long long threads = 0, repeat = 0, dump_id = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            printf("%s\n", USAGE);
            return 0;
        }
        if (strcmp(a, "-o") == 0 || strcmp(a, "--threads") == 0 || strcmp(a, "--repeat") == 0 ||
            strcmp(a, "--profile") == 0 || strcmp(a, "--isa") == 0 || strcmp(a, "--dump-node") == 0) {
            if (!has || (strcmp(a, "--dump-node") == 0 && i + 2 >= argc)) {
                tl_errf(&err, "tlrun: %s needs %s", a,
                        strcmp(a, "--dump-node") == 0 ? "ID and a file name" : "a value");
                return fail(2, err.msg);
            }
            const char *v = argv[++i];
            if (strcmp(a, "-o") == 0) out_path = v;
            else if (strcmp(a, "--profile") == 0) profile = v;
            else if (strcmp(a, "--isa") == 0) isa = v;
            else if (strcmp(a, "--threads") == 0) {
                if (parse_count(a, v, 1, &threads, &err)) return fail(2, err.msg);
            } else if (strcmp(a, "--repeat") == 0) {
                if (parse_count(a, v, 1, &repeat, &err)) return fail(2, err.msg);
            } else {
                if (parse_count(a, v, 0, &dump_id, &err)) return fail(2, err.msg);
                dump_path = argv[++i];
            }
            continue;
        }
        if (a[0] == '-' && a[1]) {
            tl_errf(&err, "tlrun: unknown option %s", a);
            return fail(2, err.msg);
        }
        if (npos == 3) {
            tl_errf(&err, "tlrun: too many arguments (%s); %s", a, USAGE);
            return fail(2, err.msg);
        }
        pos[npos++] = a;
    }
    if (npos < 2) return fail(2, USAGE);
    const char *graph_path = pos[0];
    const char *params_path = npos == 3 ? pos[1] : NULL;
    const char *input_path = pos[npos - 1];

    if (isa) {
        tl_isa want;
        if (strcmp(isa, "scalar") == 0) want = TL_ISA_SCALAR;
        else if (strcmp(isa, "avx2") == 0) want = TL_ISA_AVX2;
        else if (strcmp(isa, "avx512") == 0) want = TL_ISA_AVX512;
        else {
            tl_errf(&err, "tlrun: --isa: expected scalar, avx2 or avx512, got '%s'", isa);
            return fail(2, err.msg);
        }
        if (!tl_isa_supported(want)) {
            tl_errf(&err, "tlrun: --isa %s: not supported on this CPU", isa);
            return fail(2, err.msg);
        }
        tl_kernels_set_isa(want);
    }
    if (threads > 0) tl_set_threads((int)threads);

    tl_model *m = NULL;
    if (tl_model_open(graph_path, params_path, &m, &err)) return fail(2, err.msg);
    const tl_graph *g = tl_model_graph(m);
    if (dump_path && dump_id >= g->n_nodes) {
        tl_errf(&err, "tlrun: --dump-node %lld: no such node (%s has %lld nodes)", dump_id,
                graph_path, (long long)g->n_nodes);
        tl_model_free(m);
        return fail(2, err.msg);
    }
    tl_tensor *x = NULL;
    if (tl_npy_load(input_path, &x, &err)) {
        tl_model_free(m);
        return fail(2, err.msg);
    }
    int flags = (profile ? TL_SESSION_PROFILE : 0) | (dump_path ? TL_SESSION_KEEP_ALL : 0);
    tl_session *s = NULL;
    int rc = 0;
    if (tl_session_new(m, &x->shape, flags, &s, &err)) {
        tl_err_prefix(&err, input_path);
        rc = fail(2, err.msg);
        goto done;
    }
    if (tl_session_run(s, x->data, &err)) {
        rc = fail(1, err.msg);
        goto done;
    }
    if (repeat > 0) {
        double *t = malloc(sizeof(double) * (size_t)repeat);
        if (!t) {
            rc = fail(1, "tlrun: out of memory");
            goto done;
        }
        for (long long r = 0; r < repeat; r++) {
            double t0 = now_ms();
            if (tl_session_run(s, x->data, &err)) {
                free(t);
                rc = fail(1, err.msg);
                goto done;
            }
            t[r] = now_ms() - t0;
        }
        qsort(t, (size_t)repeat, sizeof(double), cmp_double);
        double med = repeat % 2 ? t[repeat / 2] : 0.5 * (t[repeat / 2 - 1] + t[repeat / 2]);
        printf("repeat %lld: min %.5f ms, median %.5f ms\n", repeat, t[0], med);
        free(t);
    }
    if (profile && write_profile(profile, s, g, &err)) {
        rc = fail(1, err.msg);
        goto done;
    }
    if (dump_path) {
        tl_shape sh;
        const float *v = tl_session_node_value(s, dump_id, &sh, &err);
        if (!v || tl_npy_save(dump_path, &sh, v, &err)) {
            rc = fail(1, err.msg);
            goto done;
        }
    }
    for (int k = 0; k < tl_session_n_outputs(s); k++) {
        tl_shape sh;
        const float *y = tl_session_output(s, k, &sh);
        if (out_path) {
            char name[4096];
            output_name(out_path, k, name, sizeof name);
            if (tl_npy_save(name, &sh, y, &err)) {
                rc = fail(1, err.msg);
                goto done;
            }
        } else {
            summary(k, y, &sh);
        }
    }
done:
    tl_session_free(s);
    tl_tensor_free(x);
    tl_model_free(m);
    return rc;
}
