/* test_float64.c - float64 sessions (TL_SESSION_FLOAT64): a small graph against values computed
 * here in double from TorchLean's scalar formulas, float64 beating float32 on parameters that are
 * not float32 numbers, re-batching with a per-sample constant operand, isolated evaluation, the
 * typed errors of mixing float32 and float64 entry points, and the float64 .npy input/output path
 * (tl_npy_load_input, tl_npy_save_f64) with its bad-dtype errors. The double kernels themselves
 * are checked against their scalar reference in test_kernels_f64.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tl_check.h"
#include "tl_import.h"
#include "tl_runtime.h"
#include "tl_test_json.h"

/* input [2, 3] -> linear (weights 0.1 ... : not float32 numbers) -> softplus / safe_log(eps 1e-3)
 * -> add -> softmax(axis 1) */
static const char *GRAPH =
    "{'format': 'torchlean.ir.v1', 'input_id': 0, 'output_ids': [6], 'nodes': ["
    "{'id': 0, 'kind': 'input', 'parents': [], 'shape': [2, 3]},"
    "{'id': 1, 'kind': 'linear', 'parents': [0], 'shape': [2, 2], 'weight': [[0.1, 0.2, 0.3], [0.4, -0.5, 0.6]],"
    " 'bias': [0.7, -0.1]},"
    "{'id': 2, 'kind': 'softplus', 'parents': [1], 'shape': [2, 2]},"
    "{'id': 3, 'kind': 'const', 'parents': [], 'shape': [], 'values': 0.001},"
    "{'id': 4, 'kind': 'safe_log', 'parents': [1, 3], 'shape': [2, 2]},"
    "{'id': 5, 'kind': 'add', 'parents': [2, 4], 'shape': [2, 2]},"
    "{'id': 6, 'kind': 'softmax', 'parents': [5], 'shape': [2, 2], 'axis': 1}]}";

static const double X[6] = {1.5, -2.25, 0.3, -0.7, 0.05, 3.1};

/* TorchLean softplusSpec */
static double softplus(double x) { return x > 0 ? x + log(1.0 + exp(-x)) : log(1.0 + exp(x)); }

/* the graph's output, in double, by hand */
static void expected(double *y) {
    const double W[2][3] = {{0.1, 0.2, 0.3}, {0.4, -0.5, 0.6}}, b[2] = {0.7, -0.1};
    for (int i = 0; i < 2; i++) {
        double z[2];
        for (int j = 0; j < 2; j++) {
            double l = X[i * 3] * W[j][0] + X[i * 3 + 1] * W[j][1] + X[i * 3 + 2] * W[j][2] + b[j];
            z[j] = softplus(l) + log(softplus(l) + 0.001);
        }
        double m = z[0] > z[1] ? z[0] : z[1];
        double e0 = exp(z[0] - m), e1 = exp(z[1] - m);
        y[i * 2] = e0 / (e0 + e1);
        y[i * 2 + 1] = e1 / (e0 + e1);
    }
}

static double max_rel(const double *a, const double *b, int n) {
    double r = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]) / fabs(b[i]);
        if (d > r) r = d;
    }
    return r;
}

static void test_graph(void) {
    tl_err e = {0};
    tl_graph *g = parse(GRAPH, &e);
    CHECK(g != NULL);
    if (!g) {
        fprintf(stderr, "%s\n", e.msg);
        return;
    }
    /* inline numbers not exact in float32 keep their double values; exact ones do not */
    CHECK(g->nodes[1].param[0]->data64 != NULL && g->nodes[1].param[0]->data64[0] == 0.1);
    CHECK(g->nodes[1].param[0]->data[0] == 0.1f);
    tl_model *m = NULL;
    CHECK(tl_model_from_graph(g, &m, &e) == 0);
    tl_shape in = {2, {2, 3}};
    tl_session *s64 = NULL, *s32 = NULL;
    CHECK(tl_session_new(m, &in, TL_SESSION_FLOAT64 | TL_SESSION_KEEP_ALL, &s64, &e) == 0);
    CHECK(tl_session_new(m, &in, 0, &s32, &e) == 0);
    if (!s64 || !s32) {
        fprintf(stderr, "%s\n", e.msg);
        goto out;
    }
    CHECK(tl_session_is_f64(s64) && !tl_session_is_f64(s32));
    double want[4];
    expected(want);
    CHECK(tl_session_run_f64(s64, X, &e) == 0);
    tl_shape sh;
    const double *y = tl_session_output_f64(s64, 0, &sh);
    CHECK(y && sh.rank == 2 && sh.dim[0] == 2 && sh.dim[1] == 2);
    /* dgemm may fuse / reorder the three products: a few ulp of double, nothing more */
    double r64 = y ? max_rel(y, want, 4) : 1;
    CHECK(r64 < 1e-14);
    float xf[6];
    for (int i = 0; i < 6; i++) xf[i] = (float)X[i];
    CHECK(tl_session_run(s32, xf, &e) == 0);
    const float *yf = tl_session_output(s32, 0, NULL);
    double y32[4] = {0};
    for (int i = 0; yf && i < 4; i++) y32[i] = (double)yf[i];
    double r32 = max_rel(y32, want, 4);
    CHECK(r32 > 1e-9 && r32 < 1e-5); /* float32 rounding, far above float64's */
    /* intermediate values (KEEP_ALL) and isolated evaluation: bitwise the run's */
    const double *a = tl_session_node_value_f64(s64, 2, NULL, &e), *b = tl_session_node_value_f64(s64, 4, NULL, &e);
    const double *c = tl_session_node_value_f64(s64, 5, NULL, &e);
    CHECK(a && b && c);
    if (a && b && c) {
        const double *pv[2] = {a, b};
        double o[4];
        CHECK(tl_session_eval_node_f64(s64, 5, pv, o, &e) == 0);
        CHECK(memcmp(o, c, sizeof o) == 0);
        double k[1];
        CHECK(tl_session_eval_node_f64(s64, 3, NULL, k, &e) == 0 && k[0] == 0.001);
    }
    /* float32 entry points on a float64 session and the reverse: typed errors / NULL */
    memset(&e, 0, sizeof e);
    CHECK(tl_session_run(s64, xf, &e) == -1 && e.kind == TL_ERR_BAD_INPUT && strstr(e.msg, "tl_session_run_f64"));
    CHECK(tl_session_output(s64, 0, NULL) == NULL);
    memset(&e, 0, sizeof e);
    CHECK(tl_session_node_value(s64, 5, NULL, &e) == NULL && e.kind == TL_ERR_BAD_INPUT && strstr(e.msg, "float64"));
    memset(&e, 0, sizeof e);
    CHECK(tl_session_eval_node(s64, 5, NULL, NULL, &e) == -1 && strstr(e.msg, "tl_session_eval_node_f64"));
    memset(&e, 0, sizeof e);
    CHECK(tl_session_run_f64(s32, X, &e) == -1 && e.kind == TL_ERR_BAD_INPUT && strstr(e.msg, "TL_SESSION_FLOAT64"));
    CHECK(tl_session_output_f64(s32, 0, NULL) == NULL);
    memset(&e, 0, sizeof e);
    CHECK(tl_session_node_value_f64(s32, 6, NULL, &e) == NULL && strstr(e.msg, "float32"));
    memset(&e, 0, sizeof e);
    CHECK(tl_session_eval_node_f64(s32, 5, NULL, NULL, &e) == -1 && strstr(e.msg, "tl_session_eval_node"));
    CHECK(tl_session_run_f64(s64, NULL, &e) == -1);
out:
    tl_session_free(s64);
    tl_session_free(s32);
    tl_model_free(m);
}

/* a re-batched session: the per-sample constant operand of `add` is read one sample at a time */
static void test_rebatch(void) {
    tl_err e = {0};
    tl_graph *g = parse(
        "{'format': 'torchlean.ir.v1', 'input_id': 0, 'output_ids': [3], 'nodes': ["
        "{'id': 0, 'kind': 'input', 'parents': [], 'shape': [2, 2]},"
        "{'id': 1, 'kind': 'const', 'parents': [], 'shape': [1, 2], 'values': [[0.1, 2]]},"
        "{'id': 2, 'kind': 'broadcast_to', 'parents': [1], 'shape': [2, 2], 'from_shape': [1, 2], 'to_shape': [2, "
        "2]},"
        "{'id': 3, 'kind': 'add', 'parents': [0, 2], 'shape': [2, 2]}]}",
        &e);
    tl_model *m = NULL;
    CHECK(g && tl_model_from_graph(g, &m, &e) == 0);
    if (!m) {
        fprintf(stderr, "%s\n", e.msg);
        return;
    }
    tl_shape in = {2, {3, 2}};
    tl_session *s = NULL;
    CHECK(tl_session_new(m, &in, TL_SESSION_FLOAT64, &s, &e) == 0);
    if (!s) fprintf(stderr, "%s\n", e.msg);
    const double x[6] = {1, 2, 3, 4, 5, 6};
    CHECK(s && tl_session_run_f64(s, x, &e) == 0);
    const double *y = s ? tl_session_output_f64(s, 0, NULL) : NULL;
    CHECK(y != NULL);
    for (int i = 0; y && i < 6; i++) CHECK(y[i] == x[i] + (i % 2 ? 2.0 : 0.1));
    tl_session_free(s);
    tl_model_free(m);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(p, 1, n, f);
    fclose(f);
}

/* a v1 .npy of `descr` with one element of `size` bytes */
static void write_npy1(const char *path, const char *descr, const void *elem, size_t size) {
    char h[128];
    int k = snprintf(h + 10, sizeof h - 10, "{'descr': '%s', 'fortran_order': False, 'shape': (1,), }", descr);
    size_t total = 128; /* preamble + dict + padding: a multiple of 64 */
    memset(h + 10 + k, ' ', total - 10 - (size_t)k - 1);
    h[total - 1] = '\n';
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    h[8] = (char)(total - 10);
    h[9] = 0;
    char buf[160];
    memcpy(buf, h, total);
    memcpy(buf + total, elem, size);
    write_bytes(path, buf, total + size);
}

static void test_npy(void) {
    char dir[] = "/tmp/tl_f64_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    char p[256];
    tl_err e = {0};
    tl_tensor *t = NULL;
    const char *descr = NULL;
    /* float64 in double: exact; in float32: rounded */
    double d = 0.1;
    snprintf(p, sizeof p, "%s/f8.npy", dir);
    write_npy1(p, "<f8", &d, 8);
    CHECK(tl_npy_load_input(p, true, &t, &descr, &e) == 0 && t && t->data64 && t->data64[0] == 0.1 &&
          t->data[0] == 0.1f && descr && !strcmp(descr, "<f8"));
    tl_tensor_free(t);
    CHECK(tl_npy_load_input(p, false, &t, &descr, &e) == 0 && t && !t->data64 && t->data[0] == 0.1f);
    tl_tensor_free(t);
    /* float32 widened exactly */
    float f = 0.1f;
    snprintf(p, sizeof p, "%s/f4.npy", dir);
    write_npy1(p, "<f4", &f, 4);
    CHECK(tl_npy_load_input(p, true, &t, &descr, &e) == 0 && t && t->data64 && t->data64[0] == (double)0.1f);
    tl_tensor_free(t);
    /* integers, float16, bool: refused, naming the file and the dtype */
    const char *bad[] = {"<i8", "<i4", "<f2", "|b1", "|u1"};
    const size_t bsz[] = {8, 4, 2, 1, 1};
    for (int i = 0; i < 5; i++) {
        unsigned char z[8] = {0};
        snprintf(p, sizeof p, "%s/bad%d.npy", dir, i);
        write_npy1(p, bad[i], z, bsz[i]);
        memset(&e, 0, sizeof e);
        t = NULL;
        CHECK(tl_npy_load_input(p, i % 2 == 0, &t, &descr, &e) == -1 && t == NULL && e.kind == TL_ERR_BAD_INPUT &&
              strstr(e.msg, p) == e.msg && strstr(e.msg, bad[i]));
    }
    /* tl_npy_save_f64 writes <f8 that reads back bitwise */
    const double v[3] = {0.1, -1e300, 5e-324};
    tl_shape sh = {1, {3}};
    snprintf(p, sizeof p, "%s/out.npy", dir);
    CHECK(tl_npy_save_f64(p, &sh, v, &e) == 0);
    CHECK(tl_npy_load_input(p, true, &t, &descr, &e) == 0 && t && !strcmp(descr, "<f8") &&
          memcmp(t->data64, v, sizeof v) == 0);
    tl_tensor_free(t);
    const char *names[] = {"f8.npy", "f4.npy", "bad0.npy", "bad1.npy", "bad2.npy", "bad3.npy", "bad4.npy", "out.npy"};
    for (int i = 0; i < 8; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

int main(void) {
    test_graph();
    test_rebatch();
    test_npy();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
