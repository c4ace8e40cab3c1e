/* tldiff - run a graph with tlrt (in process) and with its emitted PyTorch module (python
 * subprocess, in float32 and in float64), optionally against the original PyTorch outputs, and
 * compare.
 *
 * The arguments are declared once, in parse_args's tables (tl_cli.h: usage line, --help, parsing).
 *
 * Exit status: 0 every comparison passes, 1 a mismatch; an error prints one line on stderr and
 * exits with tl_err_exit_status of it (2 bad input, 3 out of memory, 1 I/O or internal failure:
 * the one line on stderr tells that 1 from a mismatch), except that a failure of the python side
 * (it cannot start, it fails, it returns other shapes than tlrt) is exit status 2 as well.
 *
 * Error vs float64: the emitted module also runs in float64 (params.bin's values cast to float64:
 * exact for F32 tensors, the F64 values themselves for a float64 capture; the input cast to
 * float64). Against that reference (or the original outputs, when they were saved in float64)
 * every float32 implementation's error is measured (tl_diff.h: max abs, max rel, max ULP, norm):
 * tlrt-f32, pytorch-f32 (the emitted module in float32) and original-f32 (a float32 capture's
 * saved outputs).
 * Pass rules (--rule):
 *   f64 (default): tlrt passes a tensor when its max abs error vs float64 is within k times
 *       pytorch-f32's plus floor ULPs (float32) of the tensor's largest |value| (tl_diff_f64_pass;
 *       --f64-k, --f64-floor). It judges tlrt vs emitted, and tlrt vs original (where a float32
 *       original must pass it too, judged like tlrt).
 *   atol: per element |a - e| <= atol + rtol*|e| (e = the reference side: emitted for tlrt vs
 *       emitted, original for the others), float32 assert_close defaults; --ulp U passes elements
 *       within U ULPs too; NaN == NaN; an infinity must match exactly.
 *   both: a tensor passes when it passes both.
 * emitted vs original is always the atol rule (at float64 tolerance for a float64 capture).
 * tlrt float64: a second session (TL_SESSION_FLOAT64, KEEP_ALL for --per-node cumulative) runs on
 * the float64 input (input.npy's values as stored, the random inputs widened) and its agreement
 * with the emitted module in float64 (and, for a float64 capture, with the original outputs) is
 * reported per output and per node (tl_agree64_compare: max abs, max rel, max float64 ULP, norm).
 * It is report only: no part of the verdict under any --rule. A graph tlrt cannot plan or run in
 * float64 reports the column as unavailable with the reason, and everything else goes on.
 * --per-node cumulative: both sides run end to end, every node's value is compared.
 * --per-node isolated: every tlrt node is evaluated on the emitted module's float32 parent values
 * (tl_session_eval_node), so an error does not propagate: the first diverging node is the culprit.
 * Both modes judge nodes by the same rule as the outputs.
 * Any batch tlrun runs: the session is planned at the input's shape (--batch B for --random), and
 * every shape reported is the session's.
 * --random N: inputs are drawn one after another from one normal(0, 1) stream (splitmix64 +
 * Box-Muller, float32) seeded with S (default 0). No input argument means --random 1. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tl_diff.h"
#include "tl_emit.h"
#include "tl_import.h"
#include "tl_runtime.h"
#include "tl_cli.h"

extern char **environ;

enum { PAIR_TE = 0, PAIR_TO = 1, PAIR_EO = 2, N_PAIRS = 3 };
static const char *const PAIR_KEY[N_PAIRS] = {"tlrt_vs_emitted", "tlrt_vs_original", "emitted_vs_original"};
static const char *const PAIR_TXT[N_PAIRS] = {"tlrt vs emitted", "tlrt vs original", "emitted vs original"};

typedef struct cfg {
    const char *graph, *params, *input, *reference, *json, *python;
    int64_t random_n;
    uint64_t seed;
    bool random_given, seed_given;
    tl_diff_tol tol;
    bool per_node, isolated, keep_temp;
    bool exact;    /* --exact: no rounding-changing plan rewrites */
    int64_t batch; /* --batch B with --random; 0: the graph's */
    bool batch_given;
    int rule; /* RULE_* */
    double f64_k, f64_floor;
} cfg;

enum { RULE_F64 = 0, RULE_ATOL = 1, RULE_BOTH = 2 };
static const char *const RULE_NAME[] = {"f64", "atol", "both"};

/* The float32 implementations measured against the float64 reference (columns of the report, in
 * float32 ULPs). tlrt's float64 side is not one of them: its agreement with the float64 sides is
 * measured in float64 ULPs (agree64 below), a scale on which these columns' numbers mean nothing. */
enum { COL_TLRT = 0, COL_TORCH = 1, COL_ORIG = 2, N_COLS = 3 };
static const char *const COL_KEY[N_COLS] = {"tlrt_f32", "pytorch_f32", "original_f32"};

/* ---------------------------------------------------------------- small helpers */
/* "tldiff: ..." as an error of this kind: printed, and its exit status returned. */
static int failk(tl_err_kind kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failk(tl_err_kind kind, const char *fmt, ...) {
    tl_err err = {0};
    char msg[TL_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tl_errk(&err, kind, "tldiff: %s", msg);
    return tl_cli_fail(&err);
}
/* Bad input, or a failure of the python side: exit status 2. */
#define bad(...) failk(TL_ERR_BAD_INPUT, __VA_ARGS__)
#define io_fail(...) failk(TL_ERR_IO, __VA_ARGS__)
#define oom(...) failk(TL_ERR_OOM, __VA_ARGS__)

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static char *xsprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xsprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    if (!s) exit(oom("out of memory"));
    return s;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_tree(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* ---------------------------------------------------------------- random inputs */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void fill_normal(uint64_t *state, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = ((double)(splitmix64(state) >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
        double u2 = (double)(splitmix64(state) >> 11) * 0x1.0p-53;
        double r = sqrt(-2.0 * log(u1)), t = 2.0 * M_PI * u2;
        y[i] = (float)(r * cos(t));
        if (i + 1 < n) y[i + 1] = (float)(r * sin(t));
    }
}

/* ---------------------------------------------------------------- progress */
static void progress(int64_t done, int64_t total, bool tty) {
    if (total <= 1) return;
    if (tty) {
        int w = 30, fill = (int)(w * done / total);
        fprintf(stderr, "\rtldiff [");
        for (int i = 0; i < w; i++) fputc(i < fill ? '#' : ' ', stderr);
        fprintf(stderr, "] %" PRId64 "/%" PRId64 " inputs", done, total);
        if (done == total) fputc('\n', stderr);
        fflush(stderr);
    } else {
        int64_t step = total / 10 > 0 ? total / 10 : 1;
        if (done == total || done % step == 0)
            fprintf(stderr, "tldiff: %" PRId64 "/%" PRId64 " inputs compared\n", done, total);
    }
}

/* ---------------------------------------------------------------- python side */
/* The emitted module is built twice from one source: with DTYPE float32 and with DTYPE float64
 * (the module reads its global DTYPE when it builds its parameters and while it runs, so the
 * driver sets it before each). in_K.npy is float64; the float32 run gets it rounded to float32,
 * as tlrt does. */
static const char *DRIVER =
    "# tldiff driver: runs the emitted module in float32 and float64 on every input\n"
    "import os, sys\n"
    "import numpy as np\n"
    "import torch\n"
    "d = sys.argv[1]\n"
    "n_inputs = int(sys.argv[2])\n"
    "per_node = sys.argv[3] == '1'\n"
    "sys.path.insert(0, d)\n"
    "import tldiff_model as M\n"
    "DT = {'': torch.float32, '64': torch.float64}\n"
    "def build(dt):\n"
    "    M.DTYPE = dt\n"
    "    m = M.TldiffModel()\n"
    "    m.eval()\n"
    "    return m\n"
    "models = {s: build(dt) for s, dt in DT.items()}\n"
    "def save(path, t, dt):\n"
    "    a = np.array(t.detach().to(dt).cpu().numpy(), order='C')  # keeps 0-d\n"
    "    np.save(path, a)\n"
    "with torch.no_grad():\n"
    "    for k in range(n_inputs):\n"
    "        x = torch.from_numpy(np.load(os.path.join(d, f'in_{k}.npy')))\n"
    "        for s, dt in DT.items():\n"
    "            M.DTYPE = dt\n"
    "            xs = x.to(torch.float32).to(dt) if s == '' else x.to(dt)\n"
    "            if per_node:\n"
    "                vals = models[s](xs, return_all=True)\n"
    "                for nid, v in vals.items():\n"
    "                    save(os.path.join(d, f'node{s}_{k}_{nid}.npy'), v, dt)\n"
    "            else:\n"
    "                y = models[s](xs)\n"
    "                ys = y if isinstance(y, tuple) else (y,)\n"
    "                for j, t in enumerate(ys):\n"
    "                    save(os.path.join(d, f'out{s}_{k}_{j}.npy'), t, dt)\n";

/* ---------------------------------------------------------------- float64 .npy */
/* The .npy at `path` as doubles: float64 data ('<f8') as it is, any other dtype tl_npy_load reads
 * widened from its float32 values. *is_f64 says which. */
static int npy_load_f64(const char *path, tl_shape *shape, double **out, bool *is_f64, tl_err *err) {
    char *buf = NULL;
    size_t len = 0;
    tl_tensor *t = NULL;
    *out = NULL;
    *is_f64 = false;
    if (tl_read_file(path, &buf, &len, err)) return -1;
    if (tl_npy_parse(buf, len, path, &t, err)) {
        free(buf);
        return -1;
    }
    int64_t n = tl_shape_numel(&t->shape);
    *shape = t->shape;
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (!v) {
        free(buf);
        tl_tensor_free(t);
        return tl_errk(err, TL_ERR_OOM, "%s: out of memory", path);
    }
    /* tl_npy_parse has checked magic, version and header; only the descr is looked at here */
    size_t hstart = (unsigned char)buf[6] == 1 ? 10 : 12;
    size_t hlen = hstart == 10 ? (size_t)(unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8
                               : (size_t)(unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8 |
            (size_t)(unsigned char)buf[10] << 16 | (size_t)(unsigned char)buf[11] << 24;
    char hdr[256] = "";
    memcpy(hdr, buf + hstart, hlen < sizeof hdr - 1 ? hlen : sizeof hdr - 1);
    if (strstr(hdr, "'<f8'") && len >= hstart + hlen + (size_t)n * sizeof(double)) {
        memcpy(v, buf + hstart + hlen, (size_t)n * sizeof(double)); /* little-endian host, as npy.c */
        *is_f64 = true;
    } else {
        for (int64_t i = 0; i < n; i++) v[i] = (double)t->data[i];
    }
    free(buf);
    tl_tensor_free(t);
    *out = v;
    return 0;
}

/* float64 .npy (v1 header, 64-byte aligned like numpy's), written atomically. */
static int npy_save_f64(const char *path, const tl_shape *s, const double *v, tl_err *err) {
    char dims[TL_MAX_RANK * 24 + 8] = "", hdr[512];
    size_t o = 0;
    for (int i = 0; i < s->rank; i++)
        o += (size_t)snprintf(dims + o, sizeof dims - o, "%" PRId64 "%s", s->dim[i],
                              s->rank == 1 ? "," : (i + 1 < s->rank ? ", " : ""));
    int h = snprintf(hdr + 10, sizeof hdr - 10, "{'descr': '<f8', 'fortran_order': False, 'shape': (%s), }", dims);
    size_t total = 10 + (size_t)h + 1;
    size_t padded = (total + 63) / 64 * 64;
    memset(hdr + 10 + h, ' ', padded - total);
    hdr[padded - 1] = '\n';
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    hdr[8] = (char)((padded - 10) & 0xff);
    hdr[9] = (char)((padded - 10) >> 8);
    const void *parts[2] = {hdr, v};
    size_t lens[2] = {padded, (size_t)tl_shape_numel(s) * sizeof(double)};
    return tl_write_file_atomic(path, 2, parts, lens, err);
}

static const char *last_line(char *log) {
    size_t n = strlen(log);
    while (n && (log[n - 1] == '\n' || log[n - 1] == '\r')) log[--n] = 0;
    char *p = strrchr(log, '\n');
    return p ? p + 1 : log;
}

static int run_python(const cfg *c, const char *dir, int64_t n_inputs) {
    char *driver = xsprintf("%s/tldiff_driver.py", dir);
    char *logp = xsprintf("%s/python.log", dir);
    char nbuf[32];
    snprintf(nbuf, sizeof nbuf, "%" PRId64, n_inputs);
    /* posix_spawn takes char *const argv[]: writable copies, not casts of const strings */
    char *py = xsprintf("%s", c->python), *dcopy = xsprintf("%s", dir), per[2] = {c->per_node ? '1' : '0', 0};
    char *argv[] = {py, driver, dcopy, nbuf, per, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, c->python, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    free(driver);
    free(py);
    free(dcopy);
    if (rc != 0) {
        free(logp);
        return bad("cannot run python \"%s\": %s", c->python, strerror(rc));
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        free(logp);
        return 0;
    }
    char *log = NULL;
    size_t len = 0;
    tl_err err;
    const char *why = "(no output)";
    if (tl_read_file(logp, &log, &len, &err) == 0 && log && len) why = last_line(log);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && strstr(why, "No such file"))
        bad("cannot run python \"%s\": %s", c->python, why);
    else if (WIFEXITED(st))
        bad("python (%s) failed running the emitted module (exit %d): %s", c->python, WEXITSTATUS(st), why);
    else bad("python (%s) was killed by signal %d", c->python, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    free(log);
    free(logp);
    return 2;
}

/* ---------------------------------------------------------------- JSON helpers */
static cJSON *jnum(double v) {
    if (isnan(v)) return cJSON_CreateString("nan");
    if (isinf(v)) return cJSON_CreateString(v > 0 ? "inf" : "-inf");
    return cJSON_CreateNumber(v);
}

static cJSON *jshape(const tl_shape *s) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < s->rank; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)s->dim[i]));
    return a;
}

static cJSON *jstats(const tl_diff_stats *st, const tl_shape *shape) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "numel", (double)st->numel);
    cJSON_AddItemToObject(o, "max_abs", jnum(st->max_abs));
    cJSON_AddItemToObject(o, "max_rel", jnum(st->max_rel));
    if (st->max_ulp == INT64_MAX) cJSON_AddStringToObject(o, "max_ulp", "inf");
    else cJSON_AddNumberToObject(o, "max_ulp", (double)st->max_ulp);
    cJSON_AddNumberToObject(o, "mismatches", (double)st->mismatches);
    if (st->worst >= 0 && shape) {
        int64_t idx[TL_MAX_RANK];
        tl_diff_unravel(st->worst, shape, idx);
        tl_shape s = *shape;
        for (int i = 0; i < s.rank; i++) s.dim[i] = idx[i];
        cJSON_AddItemToObject(o, "worst_index", jshape(&s));
    } else {
        cJSON_AddNullToObject(o, "worst_index");
    }
    cJSON_AddBoolToObject(o, "pass", st->pass);
    return o;
}

/* ---------------------------------------------------------------- text helpers */
static const char *fmt_num(double v, char *buf, size_t n) {
    if (isinf(v)) snprintf(buf, n, "inf");
    else if (isnan(v)) snprintf(buf, n, "nan");
    else snprintf(buf, n, "%.3g", v);
    return buf;
}
#define FN(v) fmt_num((v), (char[32]){0}, 32)

static const char *fmt_idx(int64_t flat, const tl_shape *s, char *buf, size_t n) {
    if (flat < 0) {
        snprintf(buf, n, "-");
        return buf;
    }
    int64_t idx[TL_MAX_RANK];
    tl_diff_unravel(flat, s, idx);
    tl_shape t = *s;
    for (int i = 0; i < t.rank; i++) t.dim[i] = idx[i];
    return tl_shape_str(&t, buf, n);
}
#define FI(f, s) fmt_idx((f), (s), (char[200]){0}, 200)

static void print_stats(const char *label, const tl_diff_stats *st, const tl_shape *shape) {
    char ulp[32];
    if (st->max_ulp == INT64_MAX) snprintf(ulp, sizeof ulp, "inf");
    else snprintf(ulp, sizeof ulp, "%" PRId64, st->max_ulp);
    printf("    %-20s max_abs %-9s max_rel %-9s max_ulp %-6s mismatches %" PRId64 "/%" PRId64, label, FN(st->max_abs),
           FN(st->max_rel), ulp, st->mismatches, st->numel);
    if (shape) printf(" worst %s", FI(st->worst, shape));
    printf("  %s\n", st->pass ? "ok" : "MISMATCH");
}

/* ---------------------------------------------------------------- error vs float64 */
/* One tensor judged against the float64 reference: each float32 column's error, the f64 rule's
 * bound (k * pytorch-f32 + floor) and its verdict. */
typedef struct f64_eval {
    tl_err64 col[N_COLS];
    bool used[N_COLS];
    double bound;
    bool pass;
} f64_eval;

/* A column's values: float32 (widened here) or, for a future float64-computing side, doubles. */
typedef struct col_src {
    const float *f;
    const double *d;
} col_src;

static void f64_eval_init(f64_eval *fe) {
    memset(fe, 0, sizeof *fe);
    for (int q = 0; q < N_COLS; q++) tl_err64_init(&fe->col[q]);
    fe->pass = true;
}

/* scratch: numel doubles */
static void f64_evaluate(const cfg *c, const double *ref, int64_t numel, const col_src src[N_COLS], double *scratch,
                         f64_eval *fe) {
    f64_eval_init(fe);
    for (int q = 0; q < N_COLS; q++) {
        if (!src[q].f && !src[q].d) continue;
        const double *a = src[q].d;
        if (!a) {
            for (int64_t i = 0; i < numel; i++) scratch[i] = (double)src[q].f[i];
            a = scratch;
        }
        tl_err64_compare(a, ref, numel, &fe->col[q]);
        fe->used[q] = true;
    }
    fe->bound = tl_diff_f64_bound(&fe->col[COL_TORCH], c->f64_k, c->f64_floor);
    fe->pass = tl_diff_f64_pass(&fe->col[COL_TLRT], &fe->col[COL_TORCH], c->f64_k, c->f64_floor);
}

/* Over inputs: the columns merged, the verdict the AND, the bound the largest. */
static void f64_merge(f64_eval *acc, const f64_eval *fe) {
    for (int q = 0; q < N_COLS; q++)
        if (fe->used[q]) {
            tl_err64_merge(&acc->col[q], &fe->col[q]);
            acc->used[q] = true;
        }
    if (fe->bound > acc->bound) acc->bound = fe->bound;
    acc->pass = acc->pass && fe->pass;
}

static cJSON *jerr64(const tl_err64 *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "numel", (double)e->numel);
    cJSON_AddItemToObject(o, "max_abs", jnum(e->max_abs));
    cJSON_AddItemToObject(o, "max_rel", jnum(e->max_rel));
    cJSON_AddItemToObject(o, "max_ulp", jnum(e->max_ulp));
    cJSON_AddItemToObject(o, "norm", jnum(e->norm));
    cJSON_AddItemToObject(o, "ref_max", jnum(e->ref_max));
    return o;
}

static cJSON *jf64(const f64_eval *fe, const char *ref_key) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "reference", ref_key);
    for (int q = 0; q < N_COLS; q++)
        if (fe->used[q]) cJSON_AddItemToObject(o, COL_KEY[q], jerr64(&fe->col[q]));
    cJSON_AddItemToObject(o, "bound", jnum(fe->bound));
    cJSON_AddBoolToObject(o, "pass", fe->pass);
    return o;
}

static void print_f64(const cfg *c, const f64_eval *fe, const char *ref_txt) {
    static const char *const LABEL[N_COLS] = {"tlrt-f32", "pytorch-f32", "original-f32"};
    printf("    error vs float64 (%s):\n", ref_txt);
    for (int q = 0; q < N_COLS; q++)
        if (fe->used[q])
            printf("      %-14s max_abs %-9s max_rel %-9s max_ulp %-9s norm %s\n", LABEL[q], FN(fe->col[q].max_abs),
                   FN(fe->col[q].max_rel), FN(fe->col[q].max_ulp), FN(fe->col[q].norm));
    printf("      rule f64: tlrt %s <= %g x pytorch %s + %g ulp32(%s) = %s  %s\n", FN(fe->col[COL_TLRT].max_abs),
           c->f64_k, FN(fe->col[COL_TORCH].max_abs), c->f64_floor, FN(fe->col[COL_TORCH].ref_max), FN(fe->bound),
           fe->pass ? "ok" : "MISMATCH");
}

/* A tensor's verdict under the rule: the atol stats' pass, the f64 verdict, or both. */
static bool rule_pass(const cfg *c, bool atol_pass, bool f64_pass) {
    return c->rule == RULE_ATOL ? atol_pass : c->rule == RULE_F64 ? f64_pass : atol_pass && f64_pass;
}

/* ---------------------------------------------------------------- tlrt float64 agreement */
/* tlrt float64 against the emitted module in float64 (AG_PT) and, for a float64 capture's
 * outputs, against the original (AG_ORIG); or unavailable, with why. Report only. */
enum { AG_PT = 0, AG_ORIG = 1, N_AG = 2 };
static const char *const AG_KEY[N_AG] = {"tlrt_f64_vs_pytorch_f64", "tlrt_f64_vs_original_f64"};
static const char *const AG_TXT[N_AG] = {"tlrt-f64 vs pytorch-f64", "tlrt-f64 vs original-f64"};

typedef struct agree64 {
    tl_err64 e[N_AG];
    bool used[N_AG];
    bool available;
    const char *why; /* when unavailable (static storage: run_state's why64 or a literal) */
} agree64;

static void agree_init(agree64 *a, bool available, const char *why) {
    memset(a, 0, sizeof *a);
    for (int q = 0; q < N_AG; q++) tl_err64_init(&a->e[q]);
    a->available = available;
    a->why = why;
}

static void agree_merge(agree64 *acc, const agree64 *a) {
    if (!a->available) {
        if (acc->available || !acc->why) acc->why = a->why;
        acc->available = false;
        return;
    }
    for (int q = 0; q < N_AG; q++)
        if (a->used[q]) {
            tl_err64_merge(&acc->e[q], &a->e[q]);
            acc->used[q] = true;
        }
}

static cJSON *jagree(const agree64 *a) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "available", a->available);
    if (a->available) cJSON_AddNullToObject(o, "reason");
    else cJSON_AddStringToObject(o, "reason", a->why ? a->why : "not run");
    cJSON_AddStringToObject(o, "ulp", "float64");
    for (int q = 0; q < N_AG; q++)
        if (a->available && a->used[q]) cJSON_AddItemToObject(o, AG_KEY[q], jerr64(&a->e[q]));
    return o;
}

static void print_agree(const agree64 *a) {
    if (!a->available) {
        printf("    tlrt-f64: unavailable (%s)\n", a->why ? a->why : "not run");
        return;
    }
    for (int q = 0; q < N_AG; q++)
        if (a->used[q])
            printf("    %-24s max_abs %-9s max_rel %-9s max_ulp64 %-9s norm %s\n", AG_TXT[q], FN(a->e[q].max_abs),
                   FN(a->e[q].max_rel), FN(a->e[q].max_ulp), FN(a->e[q].norm));
}

/* ---------------------------------------------------------------- arguments */
static int parse_args(int argc, char **argv, cfg *c) {
    memset(c, 0, sizeof *c);
    c->tol.atol = TL_DIFF_ATOL;
    c->tol.rtol = TL_DIFF_RTOL;
    long long random_n = 1, seed = 0, ulp = -1, batch = 0;
    int mode = 1;        /* index into --mode's choices: 0 isolated, 1 cumulative */
    int rule = RULE_F64; /* index into --rule's choices */
    c->f64_k = TL_DIFF_F64_K;
    c->f64_floor = TL_DIFF_F64_FLOOR_ULPS;
    bool mode_given = false;
    const tl_cli_pos pos[] = {
        {"graph.json", &c->graph, 0, "the graph (torchlean.ir.v1 JSON)"},
        {"params.bin", &c->params, TL_CLI_OPTIONAL | TL_CLI_PARAMS,
         "its weights (safetensors); leave out for a graph with inline weights"},
        {"input.npy", &c->input, TL_CLI_OPTIONAL | TL_CLI_NPY,
         "the input (a .npy by name or by content); another batch than the captured one runs when the graph "
         "keeps samples apart, as with tlrun; without it, --random"},
        {0},
    };
    const tl_cli_opt opts[] = {
        {.name = "--random",
         .meta = "N",
         .kind = TL_CLI_INT,
         .min = 1,
         .dest = &random_n,
         .seen = &c->random_given,
         .help = "compare on N inputs drawn from normal(0, 1); without input.npy the default is 1"},
        {.name = "--seed",
         .meta = "S",
         .kind = TL_CLI_INT,
         .min = 0,
         .dest = &seed,
         .seen = &c->seed_given,
         .help = "seed of the --random stream, default 0"},
        {.name = "--batch",
         .meta = "B",
         .kind = TL_CLI_INT,
         .min = 1,
         .dest = &batch,
         .seen = &c->batch_given,
         .help = "draw the --random inputs at batch B (the input's leading dimension; default the graph's)"},
        {.name = "--reference",
         .meta = "DIR",
         .kind = TL_CLI_PATH,
         .dest = &c->reference,
         .help = "the original model's outputs DIR/output_K.npy for input.npy (default: next to input.npy, "
                 "when there)"},
        {.name = "--atol",
         .meta = "A",
         .kind = TL_CLI_REAL,
         .min = 0,
         .dest = &c->tol.atol,
         .help = "absolute tolerance, default 1e-5"},
        {.name = "--rtol",
         .meta = "R",
         .kind = TL_CLI_REAL,
         .min = 0,
         .dest = &c->tol.rtol,
         .help = "relative tolerance, default 1.3e-6; under the atol rule an element passes when |a - e| <= "
                 "atol + rtol*|e|"},
        {.name = "--ulp",
         .meta = "U",
         .kind = TL_CLI_INT,
         .min = 0,
         .dest = &ulp,
         .help = "also pass elements within U ULPs"},
        {.name = "--rule",
         .kind = TL_CLI_CHOICE,
         .choices = "f64|atol|both",
         .dest = &rule,
         .help = "how tlrt is judged, per output and per node: f64 (the default) passes a tensor when tlrt's "
                 "max abs error vs float64 (the emitted module run in float64) <= K x PyTorch float32's + F "
                 "float32 ULPs of the tensor's largest |value|; atol: every element within atol/rtol/ulp of "
                 "the other side; both: both rules. emitted vs original always uses atol/rtol (float64 "
                 "assert_close defaults, atol 1e-7 rtol 1e-7, for a float64 capture). tlrt's own float64 run "
                 "(tlrt-f64 vs pytorch-f64, vs original-f64) is reported under every rule and never judged"},
        {.name = "--f64-k",
         .meta = "K",
         .kind = TL_CLI_REAL,
         .min = 0,
         .dest = &c->f64_k,
         .help = "the f64 rule's factor K, default 8"},
        {.name = "--f64-floor",
         .meta = "F",
         .kind = TL_CLI_REAL,
         .min = 0,
         .dest = &c->f64_floor,
         .help = "the f64 rule's floor F in float32 ULPs of the tensor's largest |value|, default 8"},
        {.name = "--per-node",
         .kind = TL_CLI_FLAG,
         .dest = &c->per_node,
         .help = "compare every node's value and name the first diverging node"},
        {.name = "--mode",
         .kind = TL_CLI_CHOICE,
         .choices = "isolated|cumulative",
         .dest = &mode,
         .seen = &mode_given,
         .help = "with --per-node: each tlrt node is fed the emitted module's float32 values for its parents, "
                 "or both sides run end to end (cumulative, the default); both modes judge nodes by --rule"},
        {.name = "--exact",
         .kind = TL_CLI_FLAG,
         .dest = &c->exact,
         .help = "run tlrt node by node, with no plan-time rewrite that changes rounding (--per-node always "
                 "does)"},
        {.name = "--json",
         .meta = "report.json",
         .kind = TL_CLI_PATH,
         .dest = &c->json,
         .help = "also write the whole report as JSON"},
        {.name = "--python",
         .meta = "EXE",
         .kind = TL_CLI_PATH,
         .dest = &c->python,
         .help = "the python that runs the emitted module (default $TL_PYTHON, else python3)"},
        {.name = "--keep-temp",
         .kind = TL_CLI_FLAG,
         .dest = &c->keep_temp,
         .help = "keep the temporary directory (emitted module, driver, inputs, values)"},
        {0},
    };
    const tl_cli cli = {
        .tool = "tldiff",
        .pos = pos,
        .opts = opts,
        .about =
            "Compare tlrt with the emitted PyTorch module and, when its outputs were saved, with the "
            "original model, element by element; the emitted module also runs in float64, and each float32 "
            "side's error against it (max abs, max rel, max ULP, norm) is reported side by side; tlrt also runs "
            "in float64 (TL_SESSION_FLOAT64), and its agreement with PyTorch float64 (and a float64 "
            "original) is reported per output and per node, in float64 ULPs, report only.",
        .notes =
            "exit status: 0 every comparison passes, 1 a mismatch (verdict MISMATCH) or an I/O or "
            "internal failure (one line on stderr), 2 bad input or a failure of the python side, "
            "3 out of memory",
    };
    int rc = tl_cli_parse(&cli, argc - 1, argv + 1);
    if (rc >= 0) return rc;
    c->random_n = random_n;
    c->seed = (uint64_t)seed;
    c->tol.ulp = ulp;
    c->isolated = mode == 0;
    c->rule = rule;
    c->batch = batch;
    if (mode_given && !c->per_node) return tl_cli_usage_error(&cli, "--mode needs --per-node");
    if (c->input && c->random_given) return tl_cli_usage_error(&cli, "give either input.npy or --random N, not both");
    if (c->seed_given && c->input) return tl_cli_usage_error(&cli, "--seed goes with --random, not with input.npy");
    if (c->batch_given && c->input)
        return tl_cli_usage_error(&cli, "--batch goes with --random, not with input.npy (its shape is the batch)");
    if (c->reference && !c->input)
        return tl_cli_usage_error(&cli, "--reference needs an input.npy (the input the reference outputs belong to)");
    if (!c->python) {
        const char *e = getenv("TL_PYTHON");
        c->python = e && *e ? e : "python3";
    }
    return -1;
}

typedef struct run_state {
    const cfg *c;
    tl_model *m;
    const tl_graph *g;
    tl_session *s;
    char *dir;
    int64_t n_inputs;
    tl_tensor **ref; /* reference outputs (n_outputs, float32 values) or NULL */
    double **ref64;  /* the same as doubles (exact when saved in float64) */
    bool ref_is_f64; /* every reference output was saved in float64: a float64 capture */
    bool input_f64;  /* input.npy holds float64 */
    tl_diff_stats agg[64][N_PAIRS];
    bool agg_used[N_PAIRS];
    f64_eval agg64[64];
    bool any_fail;
    /* first diverging node over all inputs */
    int64_t fd_id, fd_input;
    tl_diff_stats fd_stats;
    f64_eval fd_f64;
    tl_shape fd_shape;
    int64_t nodes_compared, nodes_diverging;
    cJSON *jinputs;
    /* tlrt float64 (report only) */
    tl_session *s64;                     /* NULL: unavailable, why64 says why */
    char why64[TL_ERR_MAX + 32];         /* the reason it is unavailable */
    const double *x64;                   /* input.npy as doubles, or NULL: the random input widened into xk64 */
    double *xk64;                        /* in_numel doubles */
    agree64 agg_ag[64];                  /* per output over inputs */
    agree64 nodes_ag;                    /* over every node and input (--per-node) */
    int64_t ag_worst_id, ag_worst_input; /* the node with the largest max_abs / ref_max */
    double ag_worst_rel;
    tl_err64 ag_worst;
} run_state;

static tl_tensor *load_npy_or_die(const char *path, int *rc) {
    tl_tensor *t = NULL;
    tl_err err;
    if (tl_npy_load(path, &t, &err)) {
        *rc = tl_cli_fail(&err);
        return NULL;
    }
    return t;
}

/* The emitted module's values for input k, per output or per node (--per-node): float32 as
 * tensors, float64 as doubles (checked to have the float32 run's shape). */
static int load_emitted(run_state *R, int64_t k, int64_t n, tl_tensor **em, double **em64) {
    int rc = 0;
    const char *what = R->c->per_node ? "node" : "out";
    for (int64_t i = 0; i < n && !rc; i++) {
        char *p = xsprintf("%s/%s_%" PRId64 "_%" PRId64 ".npy", R->dir, what, k, i);
        em[i] = load_npy_or_die(p, &rc);
        free(p);
        if (rc) break;
        p = xsprintf("%s/%s64_%" PRId64 "_%" PRId64 ".npy", R->dir, what, k, i);
        tl_err err;
        tl_shape s;
        bool f64;
        if (npy_load_f64(p, &s, &em64[i], &f64, &err)) rc = tl_cli_fail(&err);
        else if (!tl_shape_eq(&s, &em[i]->shape))
            rc = bad("%s: the emitted module in float64 gave shape %s, in float32 %s", p, TL_SHAPE_STR(&s),
                     TL_SHAPE_STR(&em[i]->shape));
        free(p);
    }
    return rc;
}

/* tlrt float64 is off from here on, with why (report only: tldiff goes on without it). */
static void drop64(run_state *R, const char *what, const tl_err *err) {
    snprintf(R->why64, sizeof R->why64, "%s: %s", what, err->msg);
    tl_session_free(R->s64);
    R->s64 = NULL;
}

/* One tensor's agreement: tlrt float64's values t64 (NULL: unavailable) against the emitted
 * module in float64 and, when given, the float64 original. */
static void agree_eval(const run_state *R, const double *t64, int64_t numel, const double *pt64, const double *orig64,
                       agree64 *ag) {
    agree_init(ag, t64 != NULL, R->why64);
    if (!t64) return;
    tl_agree64_compare(t64, pt64, numel, &ag->e[AG_PT]);
    ag->used[AG_PT] = true;
    if (orig64) {
        tl_agree64_compare(t64, orig64, numel, &ag->e[AG_ORIG]);
        ag->used[AG_ORIG] = true;
    }
}

/* Compare one input. Returns 0, or the exit status of a hard error (printed). */
static int compare_input(run_state *R, int64_t k, const float *x) {
    const cfg *c = R->c;
    const tl_graph *g = R->g;
    tl_err err;
    int rc = 0;
    if (tl_session_run(R->s, x, &err)) return tl_cli_fail(&err);
    /* tlrt float64 on the float64 input: input.npy's doubles, or this float32 input widened */
    const double *xd = R->x64;
    if (R->s64 && !xd) {
        int64_t n = tl_shape_numel(tl_session_node_shape(R->s, g->input_id));
        for (int64_t i = 0; i < n; i++) R->xk64[i] = (double)x[i];
        xd = R->xk64;
    }
    if (R->s64 && tl_session_run_f64(R->s64, xd, &err)) drop64(R, "run", &err);
    int n_out = g->n_outputs;
    int64_t n_em = c->per_node ? g->n_nodes : n_out;
    tl_tensor **em = calloc((size_t)n_em, sizeof *em);
    double **em64 = calloc((size_t)n_em, sizeof *em64);
    if (!em || !em64) {
        free(em);
        free(em64);
        return oom("out of memory");
    }
    rc = load_emitted(R, k, n_em, em, em64);
    double *scratch = NULL;
    size_t scratch_cap = 0;
    cJSON *jin = cJSON_CreateObject();
    cJSON_AddNumberToObject(jin, "index", (double)k);
    cJSON *jouts = cJSON_AddArrayToObject(jin, "outputs");
    bool verbose = R->n_inputs == 1;
    for (int j = 0; j < n_out && !rc; j++) {
        int64_t id = g->output_ids[j];
        tl_shape ts;
        const float *tv = tl_session_output(R->s, j, &ts);
        int64_t ei = c->per_node ? id : j;
        const tl_tensor *ev = em[ei];
        const tl_tensor *ov = R->ref ? R->ref[j] : NULL;
        if (!tl_shape_eq(&ev->shape, &ts)) {
            char a[128], b[128];
            rc = bad("output %d (node %" PRId64 "): the emitted module returned shape %s, tlrt %s", j, id,
                     tl_shape_str(&ev->shape, a, sizeof a), tl_shape_str(&ts, b, sizeof b));
            break;
        }
        if (ov && !tl_shape_eq(&ov->shape, &ts)) {
            char a[128], b[128];
            rc = bad("%s/output_%d.npy: shape %s does not match output %d (node %" PRId64 ") %s", c->reference, j,
                     tl_shape_str(&ov->shape, a, sizeof a), j, id, tl_shape_str(&ts, b, sizeof b));
            break;
        }
        int64_t numel = tl_shape_numel(&ts);
        if ((size_t)numel > scratch_cap) {
            free(scratch);
            scratch_cap = (size_t)numel;
            if (!(scratch = malloc(scratch_cap * sizeof *scratch))) {
                rc = oom("out of memory");
                break;
            }
        }
        /* error vs float64: against the original outputs when they are float64, else against the
         * emitted module in float64 */
        bool orig64 = ov && R->ref_is_f64;
        const double *ref64 = orig64 ? R->ref64[j] : em64[ei];
        col_src src[N_COLS] = {{tv, NULL}, {ev->data, NULL}, {ov && !orig64 ? ov->data : NULL, NULL}};
        f64_eval fe;
        f64_evaluate(c, ref64, numel, src, scratch, &fe);
        const double *t64 = NULL;
        if (R->s64) {
            tl_shape s64;
            t64 = tl_session_output_f64(R->s64, j, &s64);
            if (t64 && !tl_shape_eq(&s64, &ts)) {
                tl_err e2;
                tl_errf(&e2, "output %d: shape %s, float32 %s", j, TL_SHAPE_STR(&s64), TL_SHAPE_STR(&ts));
                drop64(R, "output", &e2);
                t64 = NULL;
            }
        }
        agree64 ag;
        agree_eval(R, t64, numel, em64[ei], orig64 ? R->ref64[j] : NULL, &ag);
        cJSON *jo = cJSON_CreateObject();
        cJSON_AddNumberToObject(jo, "index", j);
        cJSON_AddNumberToObject(jo, "node", (double)id);
        cJSON_AddItemToObject(jo, "shape", jshape(&ts));
        cJSON *jp = cJSON_AddObjectToObject(jo, "pairs");
        if (verbose) {
            char sb[128];
            printf("output %d (node %" PRId64 ", %s) %s:\n", j, id, tl_op_tag(g->nodes[id].op),
                   tl_shape_str(&ts, sb, sizeof sb));
        }
        for (int p = 0; p < N_PAIRS; p++) {
            tl_diff_stats st;
            if (p == PAIR_TE) tl_diff_compare(tv, ev->data, numel, &c->tol, &st);
            else if (!ov) continue;
            else if (p == PAIR_TO) tl_diff_compare(tv, ov->data, numel, &c->tol, &st);
            else if (!orig64) tl_diff_compare(ev->data, ov->data, numel, &c->tol, &st);
            else
                tl_diff_compare64(em64[ei], R->ref64[j], numel, &(tl_diff_tol){TL_DIFF_ATOL64, TL_DIFF_RTOL64, -1},
                                  &st);
            /* tlrt vs a float32 original: both must be in proportion to PyTorch float32's error vs
             * float64 (the original is judged like tlrt), so a wrong original fails it too */
            bool orig_ok = !fe.used[COL_ORIG] ||
                tl_diff_f64_pass(&fe.col[COL_ORIG], &fe.col[COL_TORCH], c->f64_k, c->f64_floor);
            if (p == PAIR_TE) st.pass = rule_pass(c, st.pass, fe.pass);
            else if (p == PAIR_TO) st.pass = rule_pass(c, st.pass, fe.pass && orig_ok);
            if (!st.pass) R->any_fail = true;
            R->agg_used[p] = true;
            if (j < 64) tl_diff_merge(&R->agg[j][p], &st);
            cJSON_AddItemToObject(jp, PAIR_KEY[p], jstats(&st, &ts));
            if (verbose) print_stats(PAIR_TXT[p], &st, &ts);
        }
        const char *ref_key = orig64 ? "original_f64" : "emitted_f64";
        cJSON_AddItemToObject(jo, "vs_float64", jf64(&fe, ref_key));
        cJSON_AddItemToObject(jo, "float64_agreement", jagree(&ag));
        if (j < 64) {
            f64_merge(&R->agg64[j], &fe);
            agree_merge(&R->agg_ag[j], &ag);
        }
        if (verbose) {
            print_f64(c, &fe, orig64 ? "the original outputs, float64" : "the emitted module in float64");
            print_agree(&ag);
        }
        cJSON_AddItemToArray(jouts, jo);
    }
    /* per node */
    if (!rc && c->per_node) {
        cJSON *jn = cJSON_AddArrayToObject(jin, "nodes");
        float *buf = NULL;
        double *buf64 = NULL;
        size_t buf_cap = 0;
        int64_t first = -1;
        for (int64_t id = 0; id < g->n_nodes && !rc; id++) {
            const tl_node *nd = &g->nodes[id];
            const tl_tensor *ev = em[id];
            const tl_shape *ss = tl_session_node_shape(R->s, id);
            if (!ss || !tl_shape_eq(&ev->shape, ss)) {
                char a[128], b[128];
                rc = bad("node[%" PRId64 "]: the emitted module produced shape %s, tlrt %s", id,
                         tl_shape_str(&ev->shape, a, sizeof a), ss ? tl_shape_str(ss, b, sizeof b) : "?");
                break;
            }
            int64_t numel = tl_shape_numel(ss);
            if ((size_t)numel > buf_cap || (size_t)numel > scratch_cap) {
                free(buf);
                free(buf64);
                free(scratch);
                buf_cap = scratch_cap = (size_t)(numel > 0 ? numel : 1);
                buf = malloc(buf_cap * sizeof(float));
                buf64 = malloc(buf_cap * sizeof *buf64);
                scratch = malloc(scratch_cap * sizeof *scratch);
                if (!buf || !buf64 || !scratch) {
                    rc = oom("out of memory");
                    break;
                }
            }
            const float *tv = NULL;
            if (!c->isolated) {
                tv = tl_session_node_value(R->s, id, NULL, &err);
                if (!tv && numel) {
                    rc = tl_cli_fail(&err);
                    break;
                }
            } else if (nd->op == TL_OP_INPUT) {
                tv = x; /* nothing to evaluate: the input itself */
            } else {
                const float *pv[64];
                const float **pvp = pv;
                const float **heap = NULL;
                if (nd->n_parents > 64) {
                    heap = malloc((size_t)nd->n_parents * sizeof *heap);
                    if (!heap) {
                        rc = oom("out of memory");
                        break;
                    }
                    pvp = heap;
                }
                for (int q = 0; q < nd->n_parents; q++) pvp[q] = em[nd->parents[q]]->data;
                if (tl_session_eval_node(R->s, id, pvp, buf, &err)) {
                    free(heap);
                    rc = tl_cli_fail(&err);
                    break;
                }
                free(heap);
                tv = buf;
            }
            if (!tv) tv = (const float[1]){0};
            tl_diff_stats st;
            tl_diff_compare(tv, ev->data, numel, &c->tol, &st);
            col_src src[N_COLS] = {{tv, NULL}, {ev->data, NULL}, {NULL, NULL}};
            f64_eval fe;
            f64_evaluate(c, em64[id], numel, src, scratch, &fe);
            st.pass = rule_pass(c, st.pass, fe.pass);
            /* tlrt float64 at this node: its kept value (cumulative), or the node evaluated on the
             * emitted module's float64 parent values (isolated) */
            const double *t64 = NULL;
            if (R->s64 && !c->isolated) {
                t64 = tl_session_node_value_f64(R->s64, id, NULL, &err);
                if (!t64 && numel) drop64(R, "node value", &err);
            } else if (R->s64 && nd->op == TL_OP_INPUT) {
                t64 = xd;
            } else if (R->s64) {
                const double *pv[64];
                const double **pvp = pv, **heap = NULL;
                if (nd->n_parents > 64 && !(pvp = heap = malloc((size_t)nd->n_parents * sizeof *heap))) {
                    rc = oom("out of memory");
                    break;
                }
                for (int q = 0; q < nd->n_parents; q++) pvp[q] = em64[nd->parents[q]];
                if (tl_session_eval_node_f64(R->s64, id, pvp, buf64, &err)) drop64(R, "node evaluation", &err);
                else t64 = buf64;
                free(heap);
            }
            if (!t64 && R->s64) t64 = (const double[1]){0}; /* an empty value */
            agree64 ag;
            agree_eval(R, t64, numel, em64[id], NULL, &ag);
            agree_merge(&R->nodes_ag, &ag);
            if (ag.available) {
                const tl_err64 *e = &ag.e[AG_PT];
                double rel = e->max_abs / (e->ref_max > 0 ? e->ref_max : 1.0);
                if (rel > R->ag_worst_rel) {
                    R->ag_worst_rel = rel;
                    R->ag_worst_id = id;
                    R->ag_worst_input = k;
                    R->ag_worst = *e;
                }
            }
            R->nodes_compared++;
            if (!st.pass) {
                R->nodes_diverging++;
                R->any_fail = true;
                if (first < 0) first = id;
                if (R->fd_id < 0 || id < R->fd_id) {
                    R->fd_id = id;
                    R->fd_input = k;
                    R->fd_stats = st;
                    R->fd_f64 = fe;
                    R->fd_shape = *ss;
                }
            }
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "id", (double)id);
            cJSON_AddStringToObject(o, "tag", tl_op_tag(nd->op));
            cJSON_AddItemToObject(o, "shape", jshape(ss));
            cJSON_AddItemToObject(o, "stats", jstats(&st, ss));
            cJSON_AddItemToObject(o, "vs_float64", jf64(&fe, "emitted_f64"));
            cJSON_AddItemToObject(o, "float64_agreement", jagree(&ag));
            cJSON_AddItemToArray(jn, o);
        }
        free(buf);
        free(buf64);
        if (first >= 0) cJSON_AddNumberToObject(jin, "first_diverging_node", (double)first);
        else cJSON_AddNullToObject(jin, "first_diverging_node");
    }
    cJSON_AddItemToArray(R->jinputs, jin);
    free(scratch);
    for (int64_t i = 0; i < n_em; i++) {
        tl_tensor_free(em[i]);
        free(em64[i]);
    }
    free(em);
    free(em64);
    return rc;
}

static int graph_has_params(const tl_graph *g) {
    for (int64_t i = 0; i < g->n_nodes; i++)
        if (tl_op_info(g->nodes[i].op)->n_params > 0) return 1;
    return 0;
}

int main(int argc, char **argv) {
    cfg c;
    int rc = parse_args(argc, argv, &c);
    if (rc >= 0) return rc;
    rc = 0;
    tl_err err;
    run_state R;
    memset(&R, 0, sizeof R);
    R.c = &c;
    R.fd_id = -1;
    R.fd_input = -1;
    for (int j = 0; j < 64; j++) {
        for (int p = 0; p < N_PAIRS; p++) tl_diff_stats_init(&R.agg[j][p]);
        f64_eval_init(&R.agg64[j]);
        agree_init(&R.agg_ag[j], true, NULL);
    }
    agree_init(&R.nodes_ag, true, NULL);
    R.ag_worst_id = R.ag_worst_input = -1;
    R.ag_worst_rel = -1.0;

    /* 1. tlrt model */
    if (tl_model_open(c.graph, c.params, &R.m, &err)) return tl_cli_fail(&err);
    R.g = tl_model_graph(R.m);
    const tl_graph *g = R.g;
    const tl_shape decl_shape = g->nodes[g->input_id].shape;
    tl_shape in_shape = decl_shape; /* the input's: the session is planned at it */

    /* 2. inputs */
    char *ref_auto = NULL;
    R.n_inputs = c.input ? 1 : c.random_n;
    float *inputs = NULL;
    double *x64 = NULL; /* input.npy as doubles (exact when it holds float64) */
    tl_tensor *in_t = NULL;
    if (c.input) {
        tl_shape s64;
        if (tl_npy_load(c.input, &in_t, &err) || npy_load_f64(c.input, &s64, &x64, &R.input_f64, &err)) {
            tl_tensor_free(in_t);
            tl_model_free(R.m);
            return tl_cli_fail(&err);
        }
        in_shape = in_t->shape;
        /* reference outputs next to the input (capture --save-example layout) */
        if (!c.reference) {
            char *dirbuf = strdup(c.input);
            char *slash = dirbuf ? strrchr(dirbuf, '/') : NULL;
            const char *d = slash ? (*slash = 0, dirbuf[0] ? dirbuf : "/") : ".";
            char *probe = xsprintf("%s/output_0.npy", d);
            if (file_exists(probe)) c.reference = ref_auto = strdup(d);
            free(probe);
            free(dirbuf);
        }
    } else if (c.batch_given) {
        if (in_shape.rank == 0) {
            tl_model_free(R.m);
            return bad("--batch %" PRId64 ": the graph input node[%" PRId64 "] is a scalar (no batch axis)", c.batch,
                       g->input_id);
        }
        in_shape.dim[0] = c.batch;
    }
    int64_t in_numel = tl_shape_numel(&in_shape);
    /* the session first: an input shape the graph does not admit is refused before python runs */
    /* per node: every value kept and each node computed as the graph says (no fused rewrites) */
    int flags = (c.per_node && !c.isolated ? TL_SESSION_KEEP_ALL : 0) |
        (c.per_node || c.exact ? TL_SESSION_EXACT : 0);
    if (tl_session_new(R.m, &in_shape, flags, &R.s, &err)) {
        if (c.input && !tl_shape_eq(&in_shape, &decl_shape))
            tl_errf(&err, "%s: shape %s does not match the graph input node[%" PRId64 "] %s", c.input,
                    TL_SHAPE_STR(&in_shape), g->input_id, TL_SHAPE_STR(&decl_shape));
        else if (c.batch_given) {
            char why[TL_ERR_MAX];
            snprintf(why, sizeof why, "%s", err.msg);
            tl_errf(&err, "tldiff: --batch %" PRId64 ": %s", c.batch, why);
        }
        tl_tensor_free(in_t);
        free(x64);
        tl_model_free(R.m);
        return tl_cli_fail(&err);
    }
    /* tlrt float64 (report only): a graph it cannot plan is reported, not refused */
    int flags64 = TL_SESSION_FLOAT64 | (c.per_node && !c.isolated ? TL_SESSION_KEEP_ALL : 0);
    if (tl_session_new(R.m, &in_shape, flags64, &R.s64, &err)) {
        snprintf(R.why64, sizeof R.why64, "%s", err.msg);
        R.s64 = NULL;
    }
    R.x64 = x64;
    if (!c.input && !(R.xk64 = malloc((size_t)(in_numel > 0 ? in_numel : 1) * sizeof *R.xk64))) {
        tl_session_free(R.s64);
        tl_session_free(R.s);
        tl_model_free(R.m);
        return oom("out of memory");
    }
    if (!c.input) {
        if ((uint64_t)in_numel > (uint64_t)(SIZE_MAX / sizeof(float)) / (uint64_t)R.n_inputs ||
            (inputs = malloc((size_t)(in_numel * R.n_inputs + 1) * sizeof(float))) == NULL) {
            tl_session_free(R.s64);
            free(R.xk64);
            tl_session_free(R.s);
            tl_model_free(R.m);
            return oom("out of memory for %" PRId64 " random inputs", R.n_inputs);
        }
        uint64_t st = c.seed;
        for (int64_t k = 0; k < R.n_inputs; k++) fill_normal(&st, inputs + k * in_numel, in_numel);
    }
    if (c.reference) {
        R.ref = calloc((size_t)g->n_outputs, sizeof *R.ref);
        R.ref64 = calloc((size_t)g->n_outputs, sizeof *R.ref64);
        if (!R.ref || !R.ref64) rc = oom("out of memory");
        R.ref_is_f64 = true;
        for (int j = 0; j < g->n_outputs && !rc; j++) {
            char *p = xsprintf("%s/output_%d.npy", c.reference, j);
            R.ref[j] = load_npy_or_die(p, &rc);
            tl_shape s64;
            bool f64 = false;
            if (!rc && npy_load_f64(p, &s64, &R.ref64[j], &f64, &err)) rc = tl_cli_fail(&err);
            R.ref_is_f64 = R.ref_is_f64 && f64;
            free(p);
        }
        char *extra = xsprintf("%s/output_%d.npy", c.reference, g->n_outputs);
        if (!rc && file_exists(extra))
            rc = bad("%s: the reference has more outputs than the graph's %d", extra, g->n_outputs);
        free(extra);
    }

    /* 3. temp dir: emitted module, params, inputs, driver */
    const char *tmp = getenv("TMPDIR");
    R.dir = xsprintf("%s/tldiff.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!rc && !mkdtemp(R.dir)) rc = io_fail("cannot create a temporary directory %s: %s", R.dir, strerror(errno));
    bool made_dir = rc == 0;
    if (!rc) {
        tl_graph *eg = NULL;
        char abs_params[PATH_MAX];
        tl_emit_opts eo;
        tl_emit_opts_default(&eo);
        eo.class_name = "TldiffModel";
        if (tl_graph_load_json(c.graph, &eg, &err) || (c.params && tl_params_load(eg, c.params, &err))) {
            rc = tl_cli_fail(&err);
        } else if (c.params) {
            if (!realpath(c.params, abs_params)) rc = io_fail("%s: %s", c.params, strerror(errno));
            eo.params_path = abs_params;
        } else if (graph_has_params(eg)) {
            char *pp = xsprintf("%s/params.bin", R.dir);
            if (tl_params_save(eg, pp, &err)) rc = tl_cli_fail(&err);
            snprintf(abs_params, sizeof abs_params, "%s", pp);
            eo.params_path = abs_params;
            free(pp);
        }
        if (!rc) {
            char *mp = xsprintf("%s/tldiff_model.py", R.dir);
            FILE *f = fopen(mp, "w");
            if (!f) rc = io_fail("%s: %s", mp, strerror(errno));
            else {
                if (tl_emit_pytorch(eg, &eo, f, &err)) rc = tl_cli_fail(&err);
                if (fclose(f) && !rc) rc = io_fail("%s: write error", mp);
            }
            free(mp);
        }
        tl_graph_free(eg);
    }
    if (!rc) {
        char *dp = xsprintf("%s/tldiff_driver.py", R.dir);
        FILE *f = fopen(dp, "w");
        if (!f || fputs(DRIVER, f) < 0) rc = io_fail("%s: cannot write", dp);
        if (f && fclose(f) && !rc) rc = io_fail("%s: write error", dp);
        free(dp);
    }
    /* the driver's inputs in float64: input.npy's values as they are, the random ones widened */
    double *wide = x64 ? NULL : malloc((size_t)(in_numel > 0 ? in_numel : 1) * sizeof *wide);
    if (!rc && !x64 && !wide) rc = oom("out of memory");
    for (int64_t k = 0; k < R.n_inputs && !rc; k++) {
        char *ip = xsprintf("%s/in_%" PRId64 ".npy", R.dir, k);
        if (!x64)
            for (int64_t i = 0; i < in_numel; i++) wide[i] = (double)inputs[k * in_numel + i];
        if (npy_save_f64(ip, &in_shape, x64 ? x64 : wide, &err)) rc = tl_cli_fail(&err);
        free(ip);
    }
    free(wide);

    /* 4. python side */
    if (!rc) rc = run_python(&c, R.dir, R.n_inputs);

    /* 5. tlrt side + comparisons */
    R.jinputs = cJSON_CreateArray();
    if (!rc) {
        char sb[128];
        printf("tldiff: %s%s%s (%" PRId64 " nodes), input %s %s", c.graph, c.params ? " + " : "",
               c.params ? c.params : "", g->n_nodes, tl_shape_str(&in_shape, sb, sizeof sb), c.input ? c.input : "");
        if (!c.input) printf("random x%" PRId64 " (seed %" PRIu64 ")", R.n_inputs, c.seed);
        printf("\n  tolerance: atol %g rtol %g", c.tol.atol, c.tol.rtol);
        if (c.tol.ulp >= 0) printf(" ulp %" PRId64, c.tol.ulp);
        printf("%s%s\n", c.reference ? "; reference outputs: " : "; no reference outputs",
               c.reference ? c.reference : "");
        printf("  rule: %s", RULE_NAME[c.rule]);
        if (c.rule != RULE_ATOL)
            printf(" (tlrt's max abs error vs float64 <= %g x pytorch-f32's + %g ulp32 of the largest |value|)",
                   c.f64_k, c.f64_floor);
        printf("; float64 reference: %s\n",
               R.ref_is_f64 ? "the original outputs (float64)" : "the emitted module in float64");
        if (R.s64)
            printf(
                "  tlrt float64: a second session (TL_SESSION_FLOAT64) on the float64 input, compared with "
                "pytorch-f64%s in float64 ULPs; report only, no part in the verdict\n",
                R.ref_is_f64 ? " and original-f64" : "");
        else printf("  tlrt float64: unavailable (%s)\n", R.why64);
        if (R.ref_is_f64 || R.input_f64)
            printf(
                "  note: float64 capture: tlrt-f32 is judged by its error vs float64, emitted vs original at "
                "float64 tolerance, tlrt-f64 vs original-f64 is reported\n");
    }
    bool tty = isatty(2);
    for (int64_t k = 0; k < R.n_inputs && !rc; k++) {
        rc = compare_input(&R, k, in_t ? in_t->data : inputs + k * in_numel);
        progress(k + 1, R.n_inputs, tty);
    }

    /* 6. report */
    if (!rc) {
        if (R.n_inputs > 1) {
            for (int j = 0; j < g->n_outputs && j < 64; j++) {
                char sb[128];
                int64_t id = g->output_ids[j];
                tl_shape ts = g->nodes[id].shape;
                tl_session_output(R.s, j, &ts); /* the session's shape (another batch) */
                printf("output %d (node %" PRId64 ", %s) %s, over %" PRId64 " inputs:\n", j, id,
                       tl_op_tag(g->nodes[id].op), tl_shape_str(&ts, sb, sizeof sb), R.n_inputs);
                for (int p = 0; p < N_PAIRS; p++)
                    if (R.agg_used[p]) print_stats(PAIR_TXT[p], &R.agg[j][p], NULL);
                print_f64(&c, &R.agg64[j],
                          R.ref_is_f64 ? "the original outputs, float64" : "the emitted module in float64");
                print_agree(&R.agg_ag[j]);
            }
        }
        if (c.per_node) {
            printf("per-node (%s): %" PRId64 " node values compared, %" PRId64 " diverging\n",
                   c.isolated ? "isolated" : "cumulative", R.nodes_compared, R.nodes_diverging);
            if (R.fd_id >= 0) {
                const tl_node *nd = &g->nodes[R.fd_id];
                printf("first diverging node: %" PRId64 " (%s) on input %" PRId64 ":\n", R.fd_id, tl_op_tag(nd->op),
                       R.fd_input);
                print_stats("tlrt vs emitted", &R.fd_stats, &R.fd_shape);
                print_f64(&c, &R.fd_f64, "the emitted module in float64");
            } else {
                printf("first diverging node: none\n");
            }
            if (!R.nodes_ag.available) printf("per-node tlrt-f64: unavailable (%s)\n", R.nodes_ag.why);
            else if (R.ag_worst_id >= 0)
                printf("per-node tlrt-f64 vs pytorch-f64: largest max_abs / max |value| %s at node %" PRId64
                       " (%s) on input %" PRId64
                       " (max_abs %s, max_ulp64 %s, norm %s); over all nodes max_ulp64 %s\n",
                       FN(R.ag_worst_rel), R.ag_worst_id, tl_op_tag(g->nodes[R.ag_worst_id].op), R.ag_worst_input,
                       FN(R.ag_worst.max_abs), FN(R.ag_worst.max_ulp), FN(R.ag_worst.norm),
                       FN(R.nodes_ag.e[AG_PT].max_ulp));
        }
        printf("verdict: %s\n", R.any_fail ? "MISMATCH" : "PASS");
        fflush(stdout);
    }
    if (!rc && c.json) {
        cJSON *root = cJSON_CreateObject();
        cJSON *cf = cJSON_AddObjectToObject(root, "config");
        cJSON_AddStringToObject(cf, "graph", c.graph);
        if (c.params) cJSON_AddStringToObject(cf, "params", c.params);
        else cJSON_AddNullToObject(cf, "params");
        if (c.input) cJSON_AddStringToObject(cf, "input", c.input);
        else cJSON_AddNullToObject(cf, "input");
        if (c.input) cJSON_AddNullToObject(cf, "random");
        else cJSON_AddNumberToObject(cf, "random", (double)R.n_inputs);
        if (c.input) cJSON_AddNullToObject(cf, "seed");
        else cJSON_AddNumberToObject(cf, "seed", (double)c.seed);
        if (c.reference) cJSON_AddStringToObject(cf, "reference", c.reference);
        else cJSON_AddNullToObject(cf, "reference");
        cJSON_AddNumberToObject(cf, "atol", c.tol.atol);
        cJSON_AddNumberToObject(cf, "rtol", c.tol.rtol);
        if (c.tol.ulp >= 0) cJSON_AddNumberToObject(cf, "ulp", (double)c.tol.ulp);
        else cJSON_AddNullToObject(cf, "ulp");
        cJSON_AddBoolToObject(cf, "per_node", c.per_node);
        if (c.per_node) cJSON_AddStringToObject(cf, "mode", c.isolated ? "isolated" : "cumulative");
        else cJSON_AddNullToObject(cf, "mode");
        cJSON_AddStringToObject(cf, "rule", RULE_NAME[c.rule]);
        cJSON_AddNumberToObject(cf, "f64_k", c.f64_k);
        cJSON_AddNumberToObject(cf, "f64_floor_ulps", c.f64_floor);
        cJSON_AddStringToObject(cf, "float64_reference", R.ref_is_f64 ? "original_f64" : "emitted_f64");
        cJSON_AddStringToObject(cf, "capture_dtype", R.ref_is_f64 || R.input_f64 ? "float64" : "float32");
        cJSON_AddStringToObject(cf, "tlrt_dtype", "float32");
        cJSON *t64 = cJSON_AddObjectToObject(cf, "tlrt_f64");
        cJSON_AddBoolToObject(t64, "available", R.s64 != NULL);
        if (R.s64) cJSON_AddNullToObject(t64, "reason");
        else cJSON_AddStringToObject(t64, "reason", R.why64);
        cJSON_AddBoolToObject(t64, "judged", false);
        if (c.batch_given) cJSON_AddNumberToObject(cf, "batch", (double)c.batch);
        else cJSON_AddNullToObject(cf, "batch");
        cJSON_AddStringToObject(cf, "python", c.python);
        cJSON_AddItemToObject(cf, "input_shape", jshape(&in_shape));
        cJSON *outs = cJSON_AddArrayToObject(cf, "output_ids");
        for (int j = 0; j < g->n_outputs; j++)
            cJSON_AddItemToArray(outs, cJSON_CreateNumber((double)g->output_ids[j]));
        cJSON_AddNumberToObject(root, "n_inputs", (double)R.n_inputs);
        cJSON_AddItemToObject(root, "inputs", R.jinputs);
        R.jinputs = NULL;
        cJSON *sum = cJSON_AddArrayToObject(root, "summary");
        for (int j = 0; j < g->n_outputs && j < 64; j++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "index", j);
            cJSON_AddNumberToObject(o, "node", (double)g->output_ids[j]);
            for (int p = 0; p < N_PAIRS; p++)
                if (R.agg_used[p]) cJSON_AddItemToObject(o, PAIR_KEY[p], jstats(&R.agg[j][p], NULL));
            cJSON_AddItemToObject(o, "vs_float64", jf64(&R.agg64[j], R.ref_is_f64 ? "original_f64" : "emitted_f64"));
            cJSON_AddItemToObject(o, "float64_agreement", jagree(&R.agg_ag[j]));
            cJSON_AddItemToArray(sum, o);
        }
        if (c.per_node) {
            cJSON *na = jagree(&R.nodes_ag);
            if (R.nodes_ag.available && R.ag_worst_id >= 0) {
                cJSON *w = cJSON_AddObjectToObject(na, "worst_node");
                cJSON_AddNumberToObject(w, "id", (double)R.ag_worst_id);
                cJSON_AddStringToObject(w, "tag", tl_op_tag(g->nodes[R.ag_worst_id].op));
                cJSON_AddNumberToObject(w, "input", (double)R.ag_worst_input);
                cJSON_AddItemToObject(w, "rel_to_max", jnum(R.ag_worst_rel));
                cJSON_AddItemToObject(w, AG_KEY[AG_PT], jerr64(&R.ag_worst));
            }
            cJSON_AddItemToObject(root, "nodes_float64_agreement", na);
        } else {
            cJSON_AddNullToObject(root, "nodes_float64_agreement");
        }
        if (c.per_node && R.fd_id >= 0) {
            cJSON *fd = cJSON_AddObjectToObject(root, "first_diverging_node");
            const tl_node *nd = &g->nodes[R.fd_id];
            cJSON_AddNumberToObject(fd, "id", (double)R.fd_id);
            cJSON_AddStringToObject(fd, "tag", tl_op_tag(nd->op));
            cJSON_AddNumberToObject(fd, "input", (double)R.fd_input);
            cJSON_AddItemToObject(fd, "shape", jshape(&R.fd_shape));
            cJSON_AddItemToObject(fd, "stats", jstats(&R.fd_stats, &R.fd_shape));
            cJSON_AddItemToObject(fd, "vs_float64", jf64(&R.fd_f64, "emitted_f64"));
        } else {
            cJSON_AddNullToObject(root, "first_diverging_node");
        }
        cJSON_AddStringToObject(root, "verdict", R.any_fail ? "fail" : "pass");
        char *txt = cJSON_Print(root);
        cJSON_Delete(root);
        if (!txt) rc = oom("out of memory writing the JSON report");
        else {
            const void *parts[2] = {txt, "\n"};
            size_t lens[2] = {strlen(txt), 1};
            if (tl_write_file_atomic(c.json, 2, parts, lens, &err)) rc = tl_cli_fail(&err);
            free(txt);
        }
    }

    /* cleanup */
    cJSON_Delete(R.jinputs);
    if (made_dir) {
        if (c.keep_temp) fprintf(stderr, "tldiff: kept %s\n", R.dir);
        else rm_tree(R.dir);
    }
    free(R.dir);
    if (R.ref) {
        for (int j = 0; j < g->n_outputs; j++) tl_tensor_free(R.ref[j]);
        free(R.ref);
    }
    if (R.ref64) {
        for (int j = 0; j < g->n_outputs; j++) free(R.ref64[j]);
        free(R.ref64);
    }
    free(x64);
    free(R.xk64);
    tl_session_free(R.s64);
    tl_session_free(R.s);
    tl_tensor_free(in_t);
    free(inputs);
    tl_model_free(R.m);
    free(ref_auto);
    if (rc) return rc;
    return R.any_fail ? 1 : 0;
}
