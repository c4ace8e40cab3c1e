/* tldiff - run a graph with tlrt (in process) and with its emitted PyTorch module (python
 * subprocess), optionally against the original PyTorch outputs, and compare.
 *
 * The arguments are declared once, in parse_args's tables (tl_cli.h: usage line, --help, parsing).
 *
 * Exit status: 0 every comparison passes, 1 a mismatch; an error prints one line on stderr and
 * exits with tl_err_exit_status of it (2 bad input, 3 out of memory, 1 I/O or internal failure:
 * the one line on stderr tells that 1 from a mismatch), except that a failure of the python side
 * (it cannot start, it fails, it returns other shapes than tlrt) is exit status 2 as well.
 * Pass rule per element: |a - e| <= atol + rtol*|e| (e = the reference side: emitted for tlrt vs
 * emitted, original for the others), float32 assert_close defaults; --ulp U passes elements within
 * U ULPs too; NaN == NaN; an infinity must match exactly.
 * --per-node cumulative: both sides run end to end, every node's value is compared.
 * --per-node isolated: every tlrt node is evaluated on the emitted module's parent values
 * (tl_session_eval_node), so an error does not propagate: the first diverging node is the culprit.
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
    bool exact; /* --exact: no rounding-changing plan rewrites */
} cfg;

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
static const char *DRIVER =
    "# tldiff driver: runs the emitted module on every input, writes the values back as .npy\n"
    "import os, sys\n"
    "import numpy as np\n"
    "import torch\n"
    "d = sys.argv[1]\n"
    "n_inputs = int(sys.argv[2])\n"
    "per_node = sys.argv[3] == '1'\n"
    "sys.path.insert(0, d)\n"
    "import tldiff_model as M\n"
    "model = M.TldiffModel()\n"
    "model.eval()\n"
    "def save(path, t):\n"
    "    a = np.array(t.detach().to(torch.float32).cpu().numpy(), order='C')  # keeps 0-d\n"
    "    np.save(path, a)\n"
    "with torch.no_grad():\n"
    "    for k in range(n_inputs):\n"
    "        x = torch.from_numpy(np.load(os.path.join(d, f'in_{k}.npy')))\n"
    "        if per_node:\n"
    "            vals = model(x, return_all=True)\n"
    "            for nid, v in vals.items():\n"
    "                save(os.path.join(d, f'node_{k}_{nid}.npy'), v)\n"
    "        else:\n"
    "            y = model(x)\n"
    "            ys = y if isinstance(y, tuple) else (y,)\n"
    "            for j, t in enumerate(ys):\n"
    "                save(os.path.join(d, f'out_{k}_{j}.npy'), t)\n";

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

/* ---------------------------------------------------------------- arguments */
static int parse_args(int argc, char **argv, cfg *c) {
    memset(c, 0, sizeof *c);
    c->tol.atol = TL_DIFF_ATOL;
    c->tol.rtol = TL_DIFF_RTOL;
    long long random_n = 1, seed = 0, ulp = -1;
    int mode = 1; /* index into --mode's choices: 0 isolated, 1 cumulative */
    bool mode_given = false;
    const tl_cli_pos pos[] = {
        {"graph.json", &c->graph, 0, "the graph (torchlean.ir.v1 JSON)"},
        {"params.bin", &c->params, TL_CLI_OPTIONAL | TL_CLI_PARAMS,
         "its weights (safetensors); leave out for a graph with inline weights"},
        {"input.npy", &c->input, TL_CLI_OPTIONAL | TL_CLI_NPY,
         "the input (at the graph's input shape); without it, --random"},
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
         .help = "relative tolerance, default 1.3e-6; an element passes when |a - e| <= atol + rtol*|e|"},
        {.name = "--ulp",
         .meta = "U",
         .kind = TL_CLI_INT,
         .min = 0,
         .dest = &ulp,
         .help = "also pass elements within U ULPs"},
        {.name = "--per-node",
         .kind = TL_CLI_FLAG,
         .dest = &c->per_node,
         .help = "compare every node's value and name the first diverging node"},
        {.name = "--mode",
         .kind = TL_CLI_CHOICE,
         .choices = "isolated|cumulative",
         .dest = &mode,
         .seen = &mode_given,
         .help = "with --per-node: each tlrt node is fed the emitted module's values for its parents, or "
                 "both sides run end to end (cumulative, the default)"},
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
            "original model, element by element.",
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
    if (mode_given && !c->per_node) return tl_cli_usage_error(&cli, "--mode needs --per-node");
    if (c->input && c->random_given) return tl_cli_usage_error(&cli, "give either input.npy or --random N, not both");
    if (c->seed_given && c->input) return tl_cli_usage_error(&cli, "--seed goes with --random, not with input.npy");
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
    tl_tensor **ref; /* reference outputs (n_outputs) or NULL */
    tl_diff_stats agg[64][N_PAIRS];
    bool agg_used[N_PAIRS];
    bool any_fail;
    /* first diverging node over all inputs */
    int64_t fd_id, fd_input;
    tl_diff_stats fd_stats;
    int64_t nodes_compared, nodes_diverging;
    cJSON *jinputs;
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

/* Compare one input. Returns 0, or the exit status of a hard error (printed). */
static int compare_input(run_state *R, int64_t k, const float *x) {
    const cfg *c = R->c;
    const tl_graph *g = R->g;
    tl_err err;
    int rc = 0;
    if (tl_session_run(R->s, x, &err)) return tl_cli_fail(&err);
    int n_out = g->n_outputs;
    tl_tensor **em = calloc((size_t)(c->per_node ? g->n_nodes : n_out), sizeof *em);
    if (!em) return oom("out of memory");
    int64_t n_em = c->per_node ? g->n_nodes : n_out;
    for (int64_t i = 0; i < n_em && !rc; i++) {
        char *p = c->per_node ? xsprintf("%s/node_%" PRId64 "_%" PRId64 ".npy", R->dir, k, i)
                              : xsprintf("%s/out_%" PRId64 "_%" PRId64 ".npy", R->dir, k, i);
        em[i] = load_npy_or_die(p, &rc);
        free(p);
    }
    cJSON *jin = cJSON_CreateObject();
    cJSON_AddNumberToObject(jin, "index", (double)k);
    cJSON *jouts = cJSON_AddArrayToObject(jin, "outputs");
    bool verbose = R->n_inputs == 1;
    for (int j = 0; j < n_out && !rc; j++) {
        int64_t id = g->output_ids[j];
        tl_shape ts;
        const float *tv = tl_session_output(R->s, j, &ts);
        const tl_tensor *ev = c->per_node ? em[id] : em[j];
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
        int64_t numel = tl_shape_numel(&ts);
        for (int p = 0; p < N_PAIRS; p++) {
            const float *A, *E;
            if (p == PAIR_TE) A = tv, E = ev->data;
            else if (!ov) continue;
            else if (p == PAIR_TO) A = tv, E = ov->data;
            else A = ev->data, E = ov->data;
            tl_diff_stats st;
            tl_diff_compare(A, E, numel, &c->tol, &st);
            if (!st.pass) R->any_fail = true;
            R->agg_used[p] = true;
            if (j < 64) tl_diff_merge(&R->agg[j][p], &st);
            cJSON_AddItemToObject(jp, PAIR_KEY[p], jstats(&st, &ts));
            if (verbose) print_stats(PAIR_TXT[p], &st, &ts);
        }
        cJSON_AddItemToArray(jouts, jo);
    }
    /* per node */
    if (!rc && c->per_node) {
        cJSON *jn = cJSON_AddArrayToObject(jin, "nodes");
        float *buf = NULL;
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
                if ((size_t)numel > buf_cap) {
                    free(buf);
                    buf_cap = (size_t)numel;
                    buf = malloc(buf_cap * sizeof(float));
                    if (!buf) {
                        rc = oom("out of memory");
                        break;
                    }
                }
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
                if (tl_session_eval_node(R->s, id, pvp, buf ? buf : (float[1]){0}, &err)) {
                    free(heap);
                    rc = tl_cli_fail(&err);
                    break;
                }
                free(heap);
                tv = buf;
            }
            tl_diff_stats st;
            tl_diff_compare(tv ? tv : (const float[1]){0}, ev->data, numel, &c->tol, &st);
            R->nodes_compared++;
            if (!st.pass) {
                R->nodes_diverging++;
                R->any_fail = true;
                if (first < 0) first = id;
                if (R->fd_id < 0 || id < R->fd_id) {
                    R->fd_id = id;
                    R->fd_input = k;
                    R->fd_stats = st;
                }
            }
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "id", (double)id);
            cJSON_AddStringToObject(o, "tag", tl_op_tag(nd->op));
            cJSON_AddItemToObject(o, "shape", jshape(ss));
            cJSON_AddItemToObject(o, "stats", jstats(&st, ss));
            cJSON_AddItemToArray(jn, o);
        }
        free(buf);
        if (first >= 0) cJSON_AddNumberToObject(jin, "first_diverging_node", (double)first);
        else cJSON_AddNullToObject(jin, "first_diverging_node");
    }
    cJSON_AddItemToArray(R->jinputs, jin);
    for (int64_t i = 0; i < n_em; i++) tl_tensor_free(em[i]);
    free(em);
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
    for (int j = 0; j < 64; j++)
        for (int p = 0; p < N_PAIRS; p++) tl_diff_stats_init(&R.agg[j][p]);

    /* 1. tlrt model */
    if (tl_model_open(c.graph, c.params, &R.m, &err)) return tl_cli_fail(&err);
    R.g = tl_model_graph(R.m);
    const tl_graph *g = R.g;
    const tl_shape in_shape = g->nodes[g->input_id].shape;
    int64_t in_numel = tl_shape_numel(&in_shape);

    /* 2. inputs */
    char *ref_auto = NULL;
    R.n_inputs = c.input ? 1 : c.random_n;
    float *inputs = NULL;
    tl_tensor *in_t = NULL;
    if (c.input) {
        if (tl_npy_load(c.input, &in_t, &err)) {
            tl_model_free(R.m);
            return tl_cli_fail(&err);
        }
        if (!tl_shape_eq(&in_t->shape, &in_shape)) {
            tl_errf(&err, "%s: shape %s does not match the graph input node[%" PRId64 "] %s", c.input,
                    TL_SHAPE_STR(&in_t->shape), g->input_id, TL_SHAPE_STR(&in_shape));
            tl_tensor_free(in_t);
            tl_model_free(R.m);
            return tl_cli_fail(&err);
        }
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
    } else {
        if ((uint64_t)in_numel > (uint64_t)(SIZE_MAX / sizeof(float)) / (uint64_t)R.n_inputs ||
            (inputs = malloc((size_t)(in_numel * R.n_inputs + 1) * sizeof(float))) == NULL) {
            tl_model_free(R.m);
            return oom("out of memory for %" PRId64 " random inputs", R.n_inputs);
        }
        uint64_t st = c.seed;
        for (int64_t k = 0; k < R.n_inputs; k++) fill_normal(&st, inputs + k * in_numel, in_numel);
    }
    if (c.reference) {
        R.ref = calloc((size_t)g->n_outputs, sizeof *R.ref);
        if (!R.ref) rc = oom("out of memory");
        for (int j = 0; j < g->n_outputs && !rc; j++) {
            char *p = xsprintf("%s/output_%d.npy", c.reference, j);
            R.ref[j] = load_npy_or_die(p, &rc);
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
    for (int64_t k = 0; k < R.n_inputs && !rc; k++) {
        char *ip = xsprintf("%s/in_%" PRId64 ".npy", R.dir, k);
        const float *x = in_t ? in_t->data : inputs + k * in_numel;
        if (tl_npy_save(ip, &in_shape, x, &err)) rc = tl_cli_fail(&err);
        free(ip);
    }

    /* 4. python side */
    if (!rc) rc = run_python(&c, R.dir, R.n_inputs);

    /* 5. tlrt side + comparisons */
    /* per node: every value kept and each node computed as the graph says (no fused rewrites) */
    int flags = (c.per_node && !c.isolated ? TL_SESSION_KEEP_ALL : 0) |
        (c.per_node || c.exact ? TL_SESSION_EXACT : 0);
    if (!rc && tl_session_new(R.m, &in_shape, flags, &R.s, &err)) rc = tl_cli_fail(&err);
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
                printf("output %d (node %" PRId64 ", %s) %s, over %" PRId64 " inputs:\n", j, id,
                       tl_op_tag(g->nodes[id].op), tl_shape_str(&g->nodes[id].shape, sb, sizeof sb), R.n_inputs);
                for (int p = 0; p < N_PAIRS; p++)
                    if (R.agg_used[p]) print_stats(PAIR_TXT[p], &R.agg[j][p], NULL);
            }
        }
        if (c.per_node) {
            printf("per-node (%s): %" PRId64 " node values compared, %" PRId64 " diverging\n",
                   c.isolated ? "isolated" : "cumulative", R.nodes_compared, R.nodes_diverging);
            if (R.fd_id >= 0) {
                const tl_node *nd = &g->nodes[R.fd_id];
                printf("first diverging node: %" PRId64 " (%s) on input %" PRId64 ":\n", R.fd_id, tl_op_tag(nd->op),
                       R.fd_input);
                print_stats("tlrt vs emitted", &R.fd_stats, &nd->shape);
            } else {
                printf("first diverging node: none\n");
            }
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
            cJSON_AddItemToArray(sum, o);
        }
        if (c.per_node && R.fd_id >= 0) {
            cJSON *fd = cJSON_AddObjectToObject(root, "first_diverging_node");
            const tl_node *nd = &g->nodes[R.fd_id];
            cJSON_AddNumberToObject(fd, "id", (double)R.fd_id);
            cJSON_AddStringToObject(fd, "tag", tl_op_tag(nd->op));
            cJSON_AddNumberToObject(fd, "input", (double)R.fd_input);
            cJSON_AddItemToObject(fd, "shape", jshape(&nd->shape));
            cJSON_AddItemToObject(fd, "stats", jstats(&R.fd_stats, &nd->shape));
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
    tl_session_free(R.s);
    tl_tensor_free(in_t);
    free(inputs);
    tl_model_free(R.m);
    free(ref_auto);
    if (rc) return rc;
    return R.any_fail ? 1 : 0;
}
