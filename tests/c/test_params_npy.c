/* test_params_npy.c - params.bin (safetensors) and .npy readers/writers.
 * Numbers are checked against oracles written by NumPy / PyTorch (tests/data/make_params_npy_fixtures.py
 * writes each fixture next to a *.expected.txt with the float32 values NumPy computes); every error
 * class is checked with a malformed input and its exact one-line message.
 * Run from the source root (ctest does; TL_SOURCE_DIR is honoured too). */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tl_import.h"

static int passed, failed;

#define CHECK(cond, ...) \
    do { \
        if (cond) { \
            passed++; \
        } else { \
            failed++; \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__); \
            fprintf(stderr, "\n"); \
        } \
    } while (0)

static void expect_msg(int rc, const tl_err *e, const char *want, int line) {
    if (rc == -1 && strcmp(e->msg, want) == 0) {
        passed++;
        return;
    }
    failed++;
    fprintf(stderr, "FAIL %s:%d: rc=%d\n   got: %s\n  want: %s\n", __FILE__, line, rc, rc ? e->msg : "(success)",
            want);
}
#define EXPECT_ERR(rc, e, want) expect_msg((rc), (e), (want), __LINE__)

/* ---------------- oracle files ---------------- */
typedef struct {
    char name[96];
    tl_shape shape;
    int64_t n;
    float *v;
} oracle;

/* Parse one "name rank dims... values..." line. */
static int parse_oracle_line(char *line, oracle *o) {
    char *save = NULL, *tok = strtok_r(line, " \n", &save);
    if (!tok) return -1;
    snprintf(o->name, sizeof o->name, "%s", tok);
    memset(&o->shape, 0, sizeof o->shape);
    o->shape.rank = atoi(strtok_r(NULL, " \n", &save));
    o->n = 1;
    for (int i = 0; i < o->shape.rank; i++) {
        o->shape.dim[i] = atoll(strtok_r(NULL, " \n", &save));
        o->n *= o->shape.dim[i];
    }
    o->v = calloc((size_t)(o->n ? o->n : 1), sizeof(float));
    for (int64_t i = 0; i < o->n; i++) {
        tok = strtok_r(NULL, " \n", &save);
        if (!tok) return -1;
        o->v[i] = strtof(tok, NULL);
    }
    return 0;
}

static int load_oracles(const char *path, oracle *out, int max) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[8192];
    int n = 0;
    while (n < max && fgets(line, sizeof line, f))
        if (parse_oracle_line(line, &out[n]) == 0) n++;
    fclose(f);
    return n;
}

static bool same_float(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return a == b && signbit(a) == signbit(b);
}

static void check_tensor(const char *what, const tl_tensor *t, const oracle *o) {
    char s1[128], s2[128];
    if (!t) {
        CHECK(0, "%s: tensor %s not bound", what, o->name);
        return;
    }
    CHECK(tl_shape_eq(&t->shape, &o->shape), "%s %s: shape %s, want %s", what, o->name,
          tl_shape_str(&t->shape, s1, sizeof s1), tl_shape_str(&o->shape, s2, sizeof s2));
    if (!tl_shape_eq(&t->shape, &o->shape)) return;
    int bad = 0;
    for (int64_t i = 0; i < o->n; i++)
        if (!same_float(t->data[i], o->v[i])) {
            if (bad++ < 3)
                fprintf(stderr, "  %s %s[%lld]: got %.9g want %.9g\n", what, o->name, (long long)i,
                        (double)t->data[i], (double)o->v[i]);
        }
    CHECK(bad == 0, "%s %s: %d of %lld values differ", what, o->name, bad, (long long)o->n);
}

/* ---------------- a graph like tests/data/params/graph.json, built by hand ----------------
 *   0 input [2,4]; 1 linear in 4 out 3 [2,3]; 2 const [2,3]; 3 add(1,2); 4 layernorm axis 1 [2,3] */
static tl_shape shp(int rank, int64_t a, int64_t b) {
    int64_t d[2] = {a, b};
    return tl_shape_make(rank, d);
}

static tl_graph *make_graph(void) {
    tl_graph *g = calloc(1, sizeof *g);
    g->path = strdup("graph.json");
    g->n_nodes = 5;
    g->nodes = calloc(5, sizeof *g->nodes);
    tl_op ops[5] = {TL_OP_INPUT, TL_OP_LINEAR, TL_OP_CONST, TL_OP_ADD, TL_OP_LAYERNORM};
    for (int i = 0; i < 5; i++) {
        g->nodes[i].id = i;
        g->nodes[i].op = ops[i];
        g->nodes[i].shape = shp(2, 2, 3);
    }
    g->nodes[0].shape = shp(2, 2, 4);
    g->nodes[1].a.in_dim = 4;
    g->nodes[1].a.out_dim = 3;
    g->nodes[2].a.value_shape = shp(2, 2, 3);
    g->nodes[4].a.axis = 1;
    g->nodes[4].a.eps = 1e-5;
    g->input_id = 0;
    g->n_outputs = 1;
    g->output_ids = calloc(1, sizeof(int64_t));
    g->output_ids[0] = 4;
    return g;
}

static tl_tensor *slot_by_name(const tl_graph *g, const char *name) {
    for (int64_t i = 0; i < g->n_nodes; i++) {
        const tl_op_row *r = tl_op_info(g->nodes[i].op);
        for (int s = 0; s < r->n_params; s++) {
            char pn[96];
            tl_param_name(&g->nodes[i], s, pn, sizeof pn);
            if (strcmp(pn, name) == 0) return g->nodes[i].param[s];
        }
    }
    return NULL;
}

/* ---------------- byte builders ---------------- */
typedef struct {
    unsigned char *p;
    size_t n;
} bytes;

static bytes cat3(const void *a, size_t an, const void *b, size_t bn, const void *c, size_t cn) {
    bytes r;
    r.n = an + bn + cn;
    r.p = malloc(r.n ? r.n : 1);
    if (an) memcpy(r.p, a, an);
    if (bn) memcpy(r.p + an, b, bn);
    if (cn) memcpy(r.p + an + bn, c, cn);
    return r;
}

/* safetensors: 8-byte LE length + header (unpadded) + data */
static bytes st(const char *header, const void *data, size_t dn) {
    unsigned char len8[8];
    uint64_t h = strlen(header);
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(h >> (8 * i));
    return cat3(len8, 8, header, strlen(header), data, dn);
}

/* npy with the given version and header text (padded like numpy when pad is set) */
static bytes npy(int major, const char *dict, const void *data, size_t dn) {
    char h[1024];
    size_t pre = major == 1 ? 10 : 12;
    size_t k = (size_t)snprintf(h, sizeof h, "%s", dict);
    size_t total = (pre + k + 1 + 63) / 64 * 64;
    memset(h + k, ' ', total - pre - k - 1);
    h[total - pre - 1] = '\n';
    size_t hl = total - pre;
    unsigned char pre_b[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0};
    pre_b[8] = (unsigned char)(hl & 0xff);
    pre_b[9] = (unsigned char)(hl >> 8);
    pre_b[10] = (unsigned char)(hl >> 16);
    pre_b[11] = (unsigned char)(hl >> 24);
    return cat3(pre_b, pre, h, hl, data, dn);
}

/* ================= tl_read_file ================= */
static void test_read_file(void) {
    tl_err e;
    char *buf;
    size_t len;
    EXPECT_ERR(tl_read_file("tests/data/no/such/params.bin", &buf, &len, &e), &e,
               "tests/data/no/such/params.bin: cannot open: No such file or directory");
    EXPECT_ERR(tl_read_file("tests/data", &buf, &len, &e), &e, "tests/data: cannot read: Is a directory");
    int rc = tl_read_file("tests/data/params/graph.json", &buf, &len, &e);
    struct stat st;
    stat("tests/data/params/graph.json", &st);
    CHECK(rc == 0 && len == (size_t)st.st_size && buf[len] == 0 && buf[0] == '{', "read graph.json: rc %d len %zu",
          rc, len);
    if (rc == 0) free(buf);
}

/* ================= .npy ================= */
static const char *NPY_VALID[] = {
    "f4_2x3",    "f8_5",     "f2_6",  "i4_4",  "i8_2x2",
    "i2_3",      "i1_3",     "u1_5",  "b1_4",  "scalar_f4",
    "empty_0x3", "rank4_f4", "v2_f4", "v3_f8", "f4_big_header_pad",
};

static void test_npy_fixtures(void) {
    for (size_t i = 0; i < sizeof NPY_VALID / sizeof NPY_VALID[0]; i++) {
        char p[256], q[256];
        snprintf(p, sizeof p, "tests/data/npy/%s.npy", NPY_VALID[i]);
        snprintf(q, sizeof q, "tests/data/npy/%s.expected.txt", NPY_VALID[i]);
        oracle o;
        CHECK(load_oracles(q, &o, 1) == 1, "oracle %s", q);
        tl_tensor *t = NULL;
        tl_err e;
        int rc = tl_npy_load(p, &t, &e);
        CHECK(rc == 0, "%s: %s", p, e.msg);
        if (rc == 0) check_tensor(p, t, &o);
        tl_tensor_free(t);
        free(o.v);
    }
}

static void npy_bad_file(const char *file, const char *tail) {
    char p[256], want[512];
    snprintf(p, sizeof p, "tests/data/npy/%s", file);
    snprintf(want, sizeof want, "%s: %s", p, tail);
    tl_tensor *t = (tl_tensor *)1;
    tl_err e;
    int rc = tl_npy_load(p, &t, &e);
    EXPECT_ERR(rc, &e, want);
    CHECK(t == NULL, "%s: *out not reset on error", file);
}

static void test_npy_bad_files(void) {
    npy_bad_file("bad_magic.npy", "not a .npy file (bad magic)");
    npy_bad_file("bad_version.npy", "header: unsupported .npy format version 4.0");
    npy_bad_file("bad_hlen.npy", "header: length 5000 runs past the end of the file (26 bytes)");
    npy_bad_file("bad_big_endian.npy", "header: big-endian data ('>f4') is not supported");
    npy_bad_file("bad_fortran.npy", "header: fortran_order True is not supported (write C order)");
    npy_bad_file("bad_fortran_numpy.npy", "header: fortran_order True is not supported (write C order)");
    npy_bad_file("bad_complex.npy",
                 "header: dtype '<c8' is not supported (use <f4, <f8, <f2, <i8, <i4, <i2, |i1, |u1 or |b1)");
    npy_bad_file("bad_truncated.npy", "data: truncated: shape [2, 3] of <f4 needs 24 bytes, file has 20");
    npy_bad_file("bad_trailing.npy", "data: 4 trailing bytes after shape [2, 3] of <f4 (24 bytes)");
    npy_bad_file("bad_shape_overflow.npy", "header: shape [4294967296, 4294967296] has too many elements (max 2^40)");
    npy_bad_file("bad_missing_shape.npy", "header: missing key 'shape'");
    npy_bad_file("bad_unknown_key.npy", "header: unknown key 'extra'");
    npy_bad_file("bad_dup_key.npy", "header: duplicate key 'descr'");
    npy_bad_file("bad_syntax.npy", "header: syntax error at byte 50: expected '(' starting the shape tuple, got '['");
    npy_bad_file("bad_one_tuple.npy",
                 "header: syntax error at byte 52: expected ',' (a one-element tuple is written (n,)), got ')'");
    npy_bad_file("bad_structured.npy", "header: structured dtypes are not supported");
    npy_bad_file("bad_rank9.npy", "header: shape has more than 8 dims");
    npy_bad_file("bad_after_dict.npy", "header: syntax error at byte 58: expected only spaces after '}', got 'x'");
    npy_bad_file("no_such.npy", "cannot open: No such file or directory");
}

static void npy_mem(bytes b, const char *want) {
    tl_tensor *t = NULL;
    tl_err e;
    int rc = tl_npy_parse(b.p, b.n, "x.npy", &t, &e);
    if (want) {
        EXPECT_ERR(rc, &e, want);
    } else {
        CHECK(rc == 0, "expected success: %s", e.msg);
    }
    tl_tensor_free(t);
    free(b.p);
}

static void test_npy_memory(void) {
    float six[6] = {1, 2, 3, 4, 5, 6};
    const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    /* accepted spellings: any key order, no trailing comma, double quotes, v2 and v3 headers */
    npy_mem(npy(1, "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}", six, 24), NULL);
    npy_mem(npy(1, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (6,)}", six, 24), NULL);
    npy_mem(npy(2, ok, six, 24), NULL);
    npy_mem(npy(3, ok, six, 24), NULL);
    npy_mem(npy(1, "{'descr':'<f4','fortran_order':False,'shape':( 2 , 3 , ),}", six, 24), NULL);
    { /* values survive an unaligned buffer */
        bytes b = npy(1, ok, six, 24);
        unsigned char *u = malloc(b.n + 1);
        memcpy(u + 1, b.p, b.n);
        tl_tensor *t = NULL;
        tl_err e;
        int rc = tl_npy_parse(u + 1, b.n, "x.npy", &t, &e);
        CHECK(rc == 0 && t->data[0] == 1 && t->data[5] == 6 && t->shape.rank == 2 && t->shape.dim[1] == 3,
              "unaligned npy");
        tl_tensor_free(t);
        free(u);
        free(b.p);
    }
    /* every error class */
    npy_mem(cat3("\x93NUMP", 5, NULL, 0, NULL, 0), "x.npy: not a .npy file (bad magic)");
    npy_mem(cat3("\x93NUMPY\x01\x01", 8, "\x10\x00", 2, NULL, 0),
            "x.npy: header: unsupported .npy format version 1.1");
    npy_mem(cat3("\x93NUMPY\x02\x00", 8, "\x10\x00", 2, NULL, 0), "x.npy: header: truncated (file has 10 bytes)");
    npy_mem(cat3("\x93NUMPY\x01\x00", 8, "\x10\x00", 2, "{}", 2),
            "x.npy: header: length 16 runs past the end of the file (12 bytes)");
    npy_mem(npy(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (3,), }", six, 24),
            "x.npy: header: big-endian data ('>f8') is not supported");
    npy_mem(npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", six, 24),
            "x.npy: header: fortran_order True is not supported (write C order)");
    npy_mem(npy(1, "{'descr': '<u8', 'fortran_order': False, 'shape': (3,), }", six, 24),
            "x.npy: header: dtype '<u8' is not supported (use <f4, <f8, <f2, <i8, <i4, <i2, |i1, |u1 or |b1)");
    npy_mem(npy(1, ok, six, 23), "x.npy: data: truncated: shape [2, 3] of <f4 needs 24 bytes, file has 23");
    npy_mem(npy(1, ok, six, 0), "x.npy: data: truncated: shape [2, 3] of <f4 needs 24 bytes, file has 0");
    npy_mem(npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", six, 20),
            "x.npy: data: 4 trailing bytes after shape [2] of <f8 (16 bytes)");
    npy_mem(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 2), }", six, 0),
            "x.npy: header: shape [1099511627776, 2] has too many elements (max 2^40)");
    npy_mem(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387904), }", six, 0),
            "x.npy: header: shape [0, 4611686018427387904] has too many elements (max 2^40)");
    npy_mem(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", six, 0),
            "x.npy: header: shape entry at byte 51 is too large");
    npy_mem(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", six, 0),
            "x.npy: header: syntax error at byte 51: expected a natural number, got '-'");
    npy_mem(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (03,), }", six, 0),
            "x.npy: header: syntax error at byte 52: expected ',' or ')' (no leading zeros), got '3'");
    npy_mem(npy(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (6,), }", six, 24),
            "x.npy: header: syntax error at byte 34: expected True or False for fortran_order, got '0'");
    npy_mem(npy(1, "{'descr': '<f4', 'shape': (6,), }", six, 24), "x.npy: header: missing key 'fortran_order'");
    npy_mem(npy(1, "{'fortran_order': False, 'shape': (6,), }", six, 24), "x.npy: header: missing key 'descr'");
    npy_mem(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'shape': (6,)}", six, 24),
            "x.npy: header: duplicate key 'shape'");
    npy_mem(npy(1, "{'descr': '<f4' 'fortran_order': False, 'shape': (6,)}", six, 24),
            "x.npy: header: syntax error at byte 16: expected ',' or '}', got '''");
    npy_mem(npy(1, "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (6,)}", six, 24),
            "x.npy: header: syntax error at byte 13: expected a plain ASCII string, got '\\'");
    npy_mem(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)", six, 24),
            "x.npy: header: syntax error at end of header: expected ',' or '}'");
    npy_mem(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)\x01}", six, 24),
            "x.npy: header: syntax error at byte 54: expected ',' or '}', got byte 0x01");
    npy_mem(npy(1, "['descr']", six, 24), "x.npy: header: syntax error at byte 0: expected '{', got '['");
    npy_mem(cat3("\x93NUMPY\x01\x00\x04\x00{'de", 14, NULL, 0, NULL, 0),
            "x.npy: header: syntax error at end of header: expected a closing quote");
}

static void test_npy_save(const char *dir) {
    char p[512];
    snprintf(p, sizeof p, "%s/out.npy", dir);
    float v[6] = {1.5f, -2.25f, 3e-41f /* subnormal */, INFINITY, -0.0f, 12345.678f};
    tl_shape shapes[4] = {shp(2, 2, 3), shp(1, 6, 0), shp(0, 0, 0), shp(2, 0, 5)};
    const char *dicts[4] = {"(2, 3)", "(6,)", "()", "(0, 5)"};
    for (int k = 0; k < 4; k++) {
        tl_err e;
        int rc = tl_npy_save(p, &shapes[k], v, &e);
        CHECK(rc == 0, "npy save: %s", e.msg);
        char *buf;
        size_t len;
        if (tl_read_file(p, &buf, &len, &e) != 0) {
            CHECK(0, "read back: %s", e.msg);
            continue;
        }
        size_t hl = (size_t)(unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8;
        int64_t numel = tl_shape_numel(&shapes[k]);
        CHECK(memcmp(buf, "\x93NUMPY\x01\x00", 8) == 0 && (10 + hl) % 64 == 0 && buf[10 + hl - 1] == '\n' &&
                  len == 10 + hl + (size_t)numel * 4,
              "npy header layout (shape %s)", dicts[k]);
        char want[128];
        snprintf(want, sizeof want, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", dicts[k]);
        CHECK(strncmp(buf + 10, want, strlen(want)) == 0, "npy dict: %.80s", buf + 10);
        tl_tensor *t = NULL;
        rc = tl_npy_parse(buf, len, p, &t, &e);
        CHECK(rc == 0 && tl_shape_eq(&t->shape, &shapes[k]), "npy reparse: %s", rc ? e.msg : "shape");
        for (int64_t i = 0; rc == 0 && i < numel; i++)
            CHECK(same_float(t->data[i], v[i]), "npy value %lld", (long long)i);
        tl_tensor_free(t);
        free(buf);
    }
    /* no temporary files left behind */
    DIR *d = opendir(dir);
    int others = 0;
    for (struct dirent *de; d && (de = readdir(d));)
        if (de->d_name[0] != '.' && strcmp(de->d_name, "out.npy") != 0 && strcmp(de->d_name, "params.bin") != 0)
            others++;
    if (d) closedir(d);
    CHECK(others == 0, "temporary files left in %s", dir);
    tl_err e;
    char bad[600];
    snprintf(bad, sizeof bad, "%s/missing_dir/out.npy", dir);
    char want[700];
    snprintf(want, sizeof want, "%s: cannot create: No such file or directory", bad);
    EXPECT_ERR(tl_npy_save(bad, &shapes[0], v, &e), &e, want);
}

/* ================= params.bin ================= */
static const char *PARAMS_VALID[] = {"params_f32", "params_f64", "params_f16", "params_bf16", "params_mixed"};

static void test_params_fixtures(void) {
    for (size_t i = 0; i < sizeof PARAMS_VALID / sizeof PARAMS_VALID[0]; i++) {
        char p[256], q[256];
        snprintf(p, sizeof p, "tests/data/params/%s.bin", PARAMS_VALID[i]);
        snprintf(q, sizeof q, "tests/data/params/%s.expected.txt", PARAMS_VALID[i]);
        oracle o[8];
        int no = load_oracles(q, o, 8);
        CHECK(no == 5, "oracle %s: %d lines", q, no);
        tl_graph *g = make_graph();
        tl_err e;
        int rc = tl_params_load(g, p, &e);
        CHECK(rc == 0, "%s: %s", p, e.msg);
        rc = tl_params_check_complete(g, p, &e);
        CHECK(rc == 0, "complete %s: %s", p, e.msg);
        for (int k = 0; k < no; k++) {
            check_tensor(p, slot_by_name(g, o[k].name), &o[k]);
            free(o[k].v);
        }
        tl_graph_free(g);
    }
}

static void params_mem(tl_graph *g, bytes b, const char *want) {
    tl_err e;
    int rc = tl_params_parse(g, b.p, b.n, "params.bin", &e);
    if (want) {
        EXPECT_ERR(rc, &e, want);
    } else {
        CHECK(rc == 0, "expected success: %s", e.msg);
    }
    free(b.p);
}

static void params_bad_file(const char *file, const char *tail) {
    char p[256], want[600];
    snprintf(p, sizeof p, "tests/data/params/%s", file);
    snprintf(want, sizeof want, "%s: %s", p, tail);
    tl_graph *g = make_graph();
    tl_err e;
    EXPECT_ERR(tl_params_load(g, p, &e), &e, want);
    for (int s = 0; s < 2; s++) CHECK(g->nodes[1].param[s] == NULL, "%s: graph modified on error", file);
    tl_graph_free(g);
}

static void test_params_bad_files(void) {
    params_bad_file("bad_unknown_name.bin", "tensor \"foo\": no such parameter in graph.json");
    params_bad_file("bad_wrong_shape.bin",
                    "tensor \"linear_1_W\": shape [4, 3] does not match node[1] (expected [3, 4])");
    params_bad_file("bad_dtype_i32.bin",
                    "tensor \"linear_1_b\": dtype I32 is not supported (use F32, F64, F16 or BF16)");
    params_bad_file("bad_overlap.bin",
                    "tensor \"linear_1_b\": data_offsets [40, 52] overlap tensor \"linear_1_W\" [0, 48]");
    params_bad_file("bad_gap.bin", "data section: bytes [0, 4) belong to no tensor");
    params_bad_file("bad_trailing.bin", "data section: bytes [12, 20) belong to no tensor");
    params_bad_file("bad_offsets_outside.bin",
                    "tensor \"linear_1_b\": data_offsets [0, 12] outside the data section (8 bytes)");
    params_bad_file("bad_size_mismatch.bin",
                    "tensor \"linear_1_b\": data_offsets [0, 8] hold 8 bytes, shape [3] of F32 needs 12");
    params_bad_file("bad_numel_overflow.bin",
                    "tensor \"linear_1_b\": shape [2147483648, 2147483648, 2147483648] has too many elements (max "
                    "2^40)");
    params_bad_file("bad_bad_json.bin", "header: invalid JSON near byte 15");
    params_bad_file("bad_header_len.bin",
                    "header length 1099511627776 out of range (file has 10 bytes, limit 100 MB)");
    params_bad_file("bad_short.bin", "too short for a safetensors file (3 bytes)");
    params_bad_file("bad_not_object.bin", "header: expected a JSON object");
    params_bad_file("bad_missing_dtype.bin", "tensor \"linear_1_b\": missing \"dtype\"");
    params_bad_file("bad_shape_not_nat.bin", "tensor \"linear_1_b\": shape[0]: expected a natural number");
    params_bad_file("bad_offsets_bad.bin", "tensor \"linear_1_b\": data_offsets [12, 0]: begin is after end");
    params_bad_file("bad_duplicate.bin", "tensor \"linear_1_b\" appears twice in the header");
    params_bad_file("bad_garbage_after_json.bin", "header: unexpected data after the JSON object at byte 7");
    params_bad_file("nope.bin", "cannot open: No such file or directory");
}

static void test_params_memory(void) {
    float w[12], b3[3] = {7, 8, 9};
    for (int i = 0; i < 12; i++) w[i] = (float)i * 0.5f - 1;
    float wb[15];
    memcpy(wb, w, sizeof w);
    memcpy(wb + 12, b3, sizeof b3);
    tl_graph *g = make_graph();
    /* __metadata__ is ignored; a subset of the tensors binds; offsets in any header order */
    params_mem(g,
               st("{\"linear_1_b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[48,60]},"
                  "\"__metadata__\":{\"format\":\"pt\"},"
                  "\"linear_1_W\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]}}   ",
                  wb, 60),
               NULL);
    CHECK(g->nodes[1].param[0] && g->nodes[1].param[0]->data[11] == 4.5f && g->nodes[1].param[1]->data[2] == 9,
          "in-memory F32 bind");
    /* unaligned F32 data: the data section starts at an odd offset */
    {
        const char *hdr = "{\"linear_1_b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}} ";
        CHECK((8 + strlen(hdr)) % 4 != 0, "header length must make the data unaligned");
        params_mem(g, st(hdr, b3, 12), NULL);
        CHECK(g->nodes[1].param[1]->data[0] == 7 && g->nodes[1].param[1]->data[2] == 9, "unaligned F32");
    }
    /* F16 special values and BF16, against IEEE definitions */
    {
        uint16_t h[3] = {0x0001 /* 2^-24 */, 0xfc00 /* -inf */, 0x3555 /* 0.333251953125 */};
        params_mem(g, st("{\"linear_1_b\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]}}", h, 6), NULL);
        float *d = g->nodes[1].param[1]->data;
        CHECK(d[0] == ldexpf(1, -24) && isinf(d[1]) && d[1] < 0 && d[2] == 0.333251953125f, "F16 specials %g %g %g",
              (double)d[0], (double)d[1], (double)d[2]);
        uint16_t bf[3] = {0x3f80 /* 1 */, 0xc0a0 /* -5 */, 0x7fc0 /* nan */};
        params_mem(g, st("{\"linear_1_b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]}}", bf, 6), NULL);
        d = g->nodes[1].param[1]->data;
        CHECK(d[0] == 1 && d[1] == -5 && isnan(d[2]), "BF16 %g %g %g", (double)d[0], (double)d[1], (double)d[2]);
        uint16_t h2[2] = {0x8000 /* -0 */, 0x7c01 /* nan */};
        params_mem(g, st("{\"linear_1_b\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]}}", h2, 4),
                   "params.bin: tensor \"linear_1_b\": data_offsets [0, 6] outside the data section (4 bytes)");
    }
    /* zero-element tensors are fine (numel 0, begin == end) */
    {
        tl_graph *g0 = make_graph();
        g0->nodes[2].a.value_shape = shp(2, 0, 3);
        params_mem(g0, st("{\"const_2\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]}}", NULL, 0), NULL);
        CHECK(g0->nodes[2].param[0] && g0->nodes[2].param[0]->shape.dim[0] == 0, "zero-size const");
        tl_graph_free(g0);
    }
    /* error classes in memory */
    params_mem(g, st("{\"linear_1_b\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[0,24]}}", w, 24),
               "params.bin: tensor \"linear_1_b\": dtype I64 is not supported (use F32, F64, F16 or BF16)");
    params_mem(g, st("{\"linear_1_b\":{\"dtype\":7,\"shape\":[3],\"data_offsets\":[0,12]}}", w, 12),
               "params.bin: tensor \"linear_1_b\": dtype: expected a string");
    params_mem(g, st("{\"linear_1_b\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,12]}}", w, 12),
               "params.bin: tensor \"linear_1_b\": shape[0]: expected a natural number");
    params_mem(g, st("{\"linear_1_b\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,12]}}", w, 12),
               "params.bin: tensor \"linear_1_b\": shape: expected an array of naturals");
    params_mem(g, st("{\"linear_1_b\":{\"dtype\":\"F32\",\"shape\":[0,2199023255553],\"data_offsets\":[0,0]}}", w, 0),
               "params.bin: tensor \"linear_1_b\": shape [0, 2199023255553] has too many elements (max 2^40)");
    params_mem(g,
               st("{\"linear_1_b\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,3],\"data_offsets\":[0,12]}}", w,
                  12),
               "params.bin: tensor \"linear_1_b\": shape has 9 dims (max 8)");
    params_mem(g, st("{\"linear_1_b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0]}}", w, 12),
               "params.bin: tensor \"linear_1_b\": data_offsets: expected [begin, end] (naturals)");
    params_mem(g, st("{\"linear_1_b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,1e300]}}", w, 12),
               "params.bin: tensor \"linear_1_b\": data_offsets: expected [begin, end] (naturals)");
    params_mem(g, st("{\"linear_1_b\":{\"dtype\":\"F32\",\"shape\":[3]}}", w, 12),
               "params.bin: tensor \"linear_1_b\": missing \"data_offsets\"");
    params_mem(g, st("{\"linear_1_b\":{\"dtype\":\"F32\",\"data_offsets\":[0,12]}}", w, 12),
               "params.bin: tensor \"linear_1_b\": missing \"shape\"");
    params_mem(g, st("{\"linear_1_b\":[1,2]}", w, 12),
               "params.bin: tensor \"linear_1_b\": expected an object with dtype, shape and data_offsets");
    params_mem(g,
               st("{\"linear_1_b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                  "\"const_2\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[8,32]}}",
                  w, 32),
               "params.bin: tensor \"const_2\": data_offsets [8, 32] overlap tensor \"linear_1_b\" [0, 12]");
    params_mem(g, st("{\"layernorm_4_gamma\":{\"dtype\":\"F32\",\"shape\":[1,3],\"data_offsets\":[0,12]}}", w, 12),
               "params.bin: tensor \"layernorm_4_gamma\": shape [1, 3] does not match node[4] (expected [3])");
    params_mem(g, st("{\"linear_3_W\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}", w, 12),
               "params.bin: tensor \"linear_3_W\": no such parameter in graph.json");
    params_mem(g, st("{}", NULL, 0), NULL); /* empty header: nothing to bind, valid */
    params_mem(g, st("{", NULL, 0), "params.bin: header length 1 out of range (file has 9 bytes, limit 100 MB)");
    params_mem(g, st("{}", w, 4), "params.bin: data section: bytes [0, 4) belong to no tensor");
    params_mem(g, st(" {}", NULL, 0), "params.bin: header: expected a JSON object");
    params_mem(g, st("{\"a\":1,}", NULL, 0), "params.bin: header: invalid JSON near byte 7");
    /* transactional: a failing file leaves the graph as it was (including inline payloads) */
    {
        tl_graph *gi = make_graph();
        tl_shape ws = shp(2, 3, 4);
        tl_tensor *inl = tl_tensor_new(&ws);
        for (int i = 0; i < 12; i++) inl->data[i] = 42;
        gi->nodes[1].param[0] = inl;
        params_mem(gi,
                   st("{\"linear_1_W\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]},"
                      "\"foo\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[48,48]}}",
                      w, 48),
                   "params.bin: tensor \"foo\": no such parameter in graph.json");
        CHECK(gi->nodes[1].param[0] == inl && inl->data[0] == 42, "graph changed by a failed parse");
        /* params.bin wins over an inline payload */
        params_mem(gi, st("{\"linear_1_W\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]}}", w, 48),
                   NULL);
        CHECK(gi->nodes[1].param[0] && gi->nodes[1].param[0]->data[0] == -1 &&
                  gi->nodes[1].param[0]->data[11] == 4.5f,
              "params.bin must replace the inline payload");
        tl_err e;
        EXPECT_ERR(tl_params_check_complete(gi, "params.bin", &e), &e,
                   "params.bin: missing tensor \"linear_1_b\" for node[1] (linear)");
        tl_graph_free(gi);
    }
    tl_graph_free(g);
}

static void test_check_complete(void) {
    tl_graph *g = make_graph();
    tl_err e;
    EXPECT_ERR(tl_params_check_complete(g, NULL, &e), &e,
               "graph.json: node[1]: linear has no weight: give params.bin or inline payloads");
    EXPECT_ERR(tl_params_check_complete(g, "graph.json", &e), &e, /* the graph's own path: no params file */
               "graph.json: node[1]: linear has no weight: give params.bin or inline payloads");
    EXPECT_ERR(tl_params_check_complete(g, "params.bin", &e), &e,
               "params.bin: missing tensor \"linear_1_W\" for node[1] (linear)");
    EXPECT_ERR(tl_params_load(g, "tests/data/params/params_partial.bin", &e) == 0
                   ? tl_params_check_complete(g, "tests/data/params/params_partial.bin", &e)
                   : 0,
               &e, "tests/data/params/params_partial.bin: missing tensor \"linear_1_b\" for node[1] (linear)");
    tl_shape s3 = shp(1, 3, 0), s23 = shp(2, 2, 3);
    g->nodes[1].param[1] = tl_tensor_new(&s3);
    g->nodes[2].param[0] = tl_tensor_new(&s23);
    EXPECT_ERR(tl_params_check_complete(g, NULL, &e), &e,
               "graph.json: node[4]: layernorm has no gamma: give params.bin or inline payloads");
    g->nodes[4].param[0] = tl_tensor_new(&s3);
    EXPECT_ERR(tl_params_check_complete(g, "p.bin", &e), &e,
               "p.bin: missing tensor \"layernorm_4_beta\" for node[4] (layernorm)");
    g->nodes[4].param[1] = tl_tensor_new(&s3);
    CHECK(tl_params_check_complete(g, "p.bin", &e) == 0, "complete graph: %s", e.msg);
    tl_graph_free(g);
}

static void test_params_save(const char *dir) {
    char out[512];
    snprintf(out, sizeof out, "%s/params.bin", dir);
    tl_graph *g = make_graph();
    tl_err e;
    int rc = tl_params_load(g, "tests/data/params/params_f64.bin", &e);
    CHECK(rc == 0, "load f64: %s", e.msg);
    rc = tl_params_save(g, out, &e);
    CHECK(rc == 0, "save: %s", e.msg);
    char *buf;
    size_t len;
    if (tl_read_file(out, &buf, &len, &e) == 0) {
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--) hl = hl << 8 | (unsigned char)buf[i];
        CHECK((8 + hl) % 8 == 0 && buf[8] == '{' && hl <= len - 8, "header padding: length %llu",
              (unsigned long long)hl);
        /* sorted names, contiguous F32 offsets */
        const char *want =
            "{\"__metadata__\":{\"format\":\"pt\"},"
            "\"const_2\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
            "\"layernorm_4_beta\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]},"
            "\"layernorm_4_gamma\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[36,48]},"
            "\"linear_1_W\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[48,96]},"
            "\"linear_1_b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[96,108]}}";
        CHECK(strncmp(buf + 8, want, strlen(want)) == 0, "saved header: %.*s", (int)hl, buf + 8);
        CHECK(len == 8 + hl + 108, "saved size %zu", len);
        free(buf);
    }
    /* read it back into a fresh graph: identical values */
    tl_graph *g2 = make_graph();
    rc = tl_params_load(g2, out, &e);
    CHECK(rc == 0, "reload: %s", e.msg);
    oracle o[8];
    int no = load_oracles("tests/data/params/params_f64.expected.txt", o, 8);
    for (int k = 0; k < no; k++) {
        check_tensor("saved", slot_by_name(g2, o[k].name), &o[k]);
        free(o[k].v);
    }
    /* writing is deterministic: save(load(save(g))) is byte-identical to save(g) */
    {
        char out2[600];
        snprintf(out2, sizeof out2, "%s/params2.bin", dir);
        CHECK(tl_params_save(g2, out2, &e) == 0, "re-save: %s", e.msg);
        char *b1 = NULL, *b2 = NULL;
        size_t l1 = 0, l2 = 0;
        CHECK(tl_read_file(out, &b1, &l1, &e) == 0 && tl_read_file(out2, &b2, &l2, &e) == 0 && l1 == l2 && l1 > 8 &&
                  !memcmp(b1, b2, l1),
              "save(load(save)) differs: %zu vs %zu bytes", l1, l2);
        free(b1);
        free(b2);
        unlink(out2);
    }
    tl_graph_free(g2);
    /* a graph with nothing bound writes a valid empty file */
    tl_graph *g3 = make_graph();
    rc = tl_params_save(g3, out, &e);
    CHECK(rc == 0, "empty save: %s", e.msg);
    tl_graph *g4 = make_graph();
    CHECK(tl_params_load(g4, out, &e) == 0, "empty reload: %s", e.msg);
    tl_graph_free(g3);
    tl_graph_free(g4);
    char bad[600], want[700];
    snprintf(bad, sizeof bad, "%s/nodir/params.bin", dir);
    snprintf(want, sizeof want, "%s: cannot create: No such file or directory", bad);
    EXPECT_ERR(tl_params_save(g, bad, &e), &e, want);
    tl_graph_free(g);
}

int main(void) {
    const char *src = getenv("TL_SOURCE_DIR");
    if (src && chdir(src) != 0) {
        fprintf(stderr, "cannot chdir to %s\n", src);
        return 1;
    }
    char dir[] = "/tmp/tl_test_params_npy.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_read_file();
    test_npy_fixtures();
    test_npy_bad_files();
    test_npy_memory();
    test_npy_save(dir);
    test_params_fixtures();
    test_params_bad_files();
    test_params_memory();
    test_check_complete();
    test_params_save(dir);
    char p[600];
    snprintf(p, sizeof p, "%s/out.npy", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/params.bin", dir);
    unlink(p);
    rmdir(dir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
