/* test_runtime.c - plan invariants of the runtime.
 *  - arena reuse and in-place execution never alias a live value: every output of a reused plan
 *    equals (bitwise) the KEEP_ALL plan, and every KEEP_ALL value equals an isolated evaluation of
 *    its node (tl_session_eval_node) from its parents' values;
 *  - the reused arena is smaller than the KEEP_ALL one (reuse happens);
 *  - no allocation in tl_session_run: malloc/calloc/realloc/aligned_alloc/posix_memalign are
 *    interposed in this executable (they forward to glibc's __libc_* entry points) and counted
 *    while a steady-state run is in progress;
 *  - batch substitution (batch 1 graph run at batch 5 equals five batch-1 runs), the batch error
 *    message, the input shape error, the planted-bug switch, KEEP_ALL-only node values;
 *  - constant folding, per-sample constant operands and zero-copy transposes around matmul
 *    (G_ATTN): what each node's plan is, the same values as the KEEP_ALL plan (which
 *    materializes everything), eval_node on strided matmuls, re-batching, no allocation. */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_import.h"
#include "tl_runtime.h"
#include "tl_runtime_internal.h"

/* ------------------------------------------------------------------ malloc interposition */
/* Under AddressSanitizer (-DTL_SANITIZE=ON) ASan owns malloc: no interposition, and the
 * no-allocation check is skipped (it runs in the normal build). */
#if defined(__SANITIZE_ADDRESS__)
#define TL_NO_INTERPOSE 1
#endif
#ifndef TL_NO_INTERPOSE
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);
static volatile int g_counting;
static volatile long g_allocs;
/* a counted allocation calls this (a breakpoint here in gdb shows who allocated) */
void tl_test_alloc_in_run(void);
__attribute__((noinline)) void tl_test_alloc_in_run(void) { __asm__ volatile(""); }
#define MAX_CALLERS 256
static void *g_callers[MAX_CALLERS]; /* return addresses of allocations during runs */
static volatile long g_ncallers;
#define COUNT() \
    do { \
        if (g_counting) g_allocs++; \
        if (g_counting == 2) { \
            if (g_ncallers < MAX_CALLERS) g_callers[g_ncallers] = __builtin_return_address(0); \
            g_ncallers++; \
            tl_test_alloc_in_run(); \
        } \
    } while (0)

void *malloc(size_t n) {
    COUNT();
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    COUNT();
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    COUNT();
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t al, size_t n) {
    COUNT();
    return __libc_memalign(al, n);
}
int posix_memalign(void **p, size_t al, size_t n) {
    COUNT();
    *p = __libc_memalign(al, n);
    return *p ? 0 : 12;
}
void free(void *p) { __libc_free(p); }
#endif

/* ------------------------------------------------------------------ helpers */
static int failures;
#define CHECK(c, ...) \
    do { \
        if (!(c)) { \
            failures++; \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #c); \
            fprintf(stderr, __VA_ARGS__); \
            fprintf(stderr, "\n"); \
        } \
    } while (0)

static tl_model *load(const char *json) {
    tl_err err = {0};
    tl_graph *g = NULL;
    if (tl_graph_parse_json(json, strlen(json), "t.json", &g, &err) || tl_params_check_complete(g, "t.json", &err)) {
        fprintf(stderr, "load failed: %s\n", err.msg);
        exit(1);
    }
    tl_model *m = NULL;
    if (tl_model_from_graph(g, &m, &err)) {
        fprintf(stderr, "model failed: %s\n", err.msg);
        exit(1);
    }
    return m;
}

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* A graph with branches, reuse and in-place candidates, several outputs (one intermediate).
 * x[1,4] -> linear(4->6) -> relu -> a ; a -> tanh -> b ; add(a, b) -> c ; c -> sigmoid -> d ;
 * reshape d [1,6]->[2,3] -> e ; softmax(e, 1) -> f ; mul(c, c) -> h ; sub(h, d) -> k ;
 * linear(k, 6->3) -> o ; exp(o) -> p ; outputs [p, f, b] */
static const char *G1 =
    "{\"format\":\"torchlean.ir.v1\",\"input_id\":0,\"output_ids\":[12,7,3],\"nodes\":["
    "{\"id\":0,\"kind\":\"input\",\"parents\":[],\"shape\":[1,4]},"
    "{\"id\":1,\"kind\":\"linear\",\"parents\":[0],\"shape\":[1,6],\"in_dim\":4,\"out_dim\":6,"
    "\"weight\":[[0.1,0.2,-0.3,0.4],[0.5,-0.6,0.7,0.8],[-0.9,1.0,0.1,0.2],[0.3,0.4,0.5,-0.6],"
    "[0.7,0.8,-0.9,1.0],[0.2,-0.1,0.3,0.5]],\"bias\":[0.01,-0.02,0.03,0.04,-0.05,0.06]},"
    "{\"id\":2,\"kind\":\"relu\",\"parents\":[1],\"shape\":[1,6]},"
    "{\"id\":3,\"kind\":\"tanh\",\"parents\":[2],\"shape\":[1,6]},"
    "{\"id\":4,\"kind\":\"add\",\"parents\":[2,3],\"shape\":[1,6]},"
    "{\"id\":5,\"kind\":\"sigmoid\",\"parents\":[4],\"shape\":[1,6]},"
    "{\"id\":6,\"kind\":\"reshape\",\"parents\":[5],\"shape\":[1,2,3],\"in_shape\":[1,6],\"out_shape\":[1,2,3]},"
    "{\"id\":7,\"kind\":\"softmax\",\"parents\":[6],\"shape\":[1,2,3],\"axis\":2},"
    "{\"id\":8,\"kind\":\"mul_elem\",\"parents\":[4,4],\"shape\":[1,6]},"
    "{\"id\":9,\"kind\":\"sub\",\"parents\":[8,5],\"shape\":[1,6]},"
    "{\"id\":10,\"kind\":\"linear\",\"parents\":[9],\"shape\":[1,3],\"in_dim\":6,\"out_dim\":3,"
    "\"weight\":[[0.1,0.2,0.3,0.4,0.5,0.6],[-0.1,-0.2,0.3,0.1,0.2,0.3],[0.6,0.5,0.4,0.3,0.2,0.1]],"
    "\"bias\":[0.1,0.2,0.3]},"
    "{\"id\":11,\"kind\":\"abs\",\"parents\":[10],\"shape\":[1,3]},"
    "{\"id\":12,\"kind\":\"exp\",\"parents\":[11],\"shape\":[1,3]}]}";

/* Attention core: x[1,4,6] -> reshape [1,4,2,3] -> transpose(1,2) q [1,2,4,3] -> transpose(2,3)
 * kt [1,2,3,4]; s = q @ kt; s * broadcast(const 0.5) -> softmax -> @ q -> transpose(1,2)
 * [1,4,2,3] -> reshape [1,4,6] -> tanh. Views: 2 (A of 5, B of 9), 3 (B of 5); 9 writes into
 * 10's layout; 4 and 6 are folded; 7 reads one sample of 6. */
static const char *G_ATTN =
    "{\"format\":\"torchlean.ir.v1\",\"input_id\":0,\"output_ids\":[12],\"nodes\":["
    "{\"id\":0,\"kind\":\"input\",\"parents\":[],\"shape\":[1,4,6]},"
    "{\"id\":1,\"kind\":\"reshape\",\"parents\":[0],\"shape\":[1,4,2,3],\"in_shape\":[1,4,6],\"out_shape\":[1,4,2,3]}"
    ","
    "{\"id\":2,\"kind\":\"transpose\",\"parents\":[1],\"shape\":[1,2,4,3],\"axis1\":1,\"axis2\":2},"
    "{\"id\":3,\"kind\":\"transpose\",\"parents\":[2],\"shape\":[1,2,3,4],\"axis1\":2,\"axis2\":3},"
    "{\"id\":4,\"kind\":\"const\",\"parents\":[],\"shape\":[1,1,1,1],\"value_shape\":[1,1,1,1],\"values\":[0.5]},"
    "{\"id\":5,\"kind\":\"matmul\",\"parents\":[2,3],\"shape\":[1,2,4,4]},"
    "{\"id\":6,\"kind\":\"broadcast_to\",\"parents\":[4],\"shape\":[1,2,4,4],\"from_shape\":[1,1,1,1],\"to_shape\":["
    "1,2,4,4]},"
    "{\"id\":7,\"kind\":\"mul_elem\",\"parents\":[5,6],\"shape\":[1,2,4,4]},"
    "{\"id\":8,\"kind\":\"softmax\",\"parents\":[7],\"shape\":[1,2,4,4],\"axis\":3},"
    "{\"id\":9,\"kind\":\"matmul\",\"parents\":[8,2],\"shape\":[1,2,4,3]},"
    "{\"id\":10,\"kind\":\"transpose\",\"parents\":[9],\"shape\":[1,4,2,3],\"axis1\":1,\"axis2\":2},"
    "{\"id\":11,\"kind\":\"reshape\",\"parents\":[10],\"shape\":[1,4,6],\"in_shape\":[1,4,2,3],\"out_shape\":[1,4,6]}"
    ","
    "{\"id\":12,\"kind\":\"tanh\",\"parents\":[11],\"shape\":[1,4,6]}]}";

/* The batch-mixing graph: flatten of [1,2,2]. */
static const char *G_FLAT =
    "{\"format\":\"torchlean.ir.v1\",\"input_id\":0,\"output_ids\":[2],\"nodes\":["
    "{\"id\":0,\"kind\":\"input\",\"parents\":[],\"shape\":[1,2,2]},"
    "{\"id\":1,\"kind\":\"relu\",\"parents\":[0],\"shape\":[1,2,2]},"
    "{\"id\":2,\"kind\":\"flatten\",\"parents\":[1],\"shape\":[4],\"value_shape\":[1,2,2]}]}";

/* Big enough that the kernels go parallel (OpenMP) and BLAS sees a real GEMM. */
static const char *G_BIG =
    "{\"format\":\"torchlean.ir.v1\",\"input_id\":0,\"output_ids\":[6,7],\"nodes\":["
    "{\"id\":0,\"kind\":\"input\",\"parents\":[],\"shape\":[128,1024]},"
    "{\"id\":1,\"kind\":\"relu\",\"parents\":[0],\"shape\":[128,1024]},"
    "{\"id\":2,\"kind\":\"tanh\",\"parents\":[1],\"shape\":[128,1024]},"
    "{\"id\":3,\"kind\":\"transpose\",\"parents\":[2],\"shape\":[1024,128],\"axis1\":0,\"axis2\":1},"
    "{\"id\":4,\"kind\":\"matmul\",\"parents\":[2,3],\"shape\":[128,128]},"
    "{\"id\":5,\"kind\":\"sigmoid\",\"parents\":[4],\"shape\":[128,128]},"
    "{\"id\":6,\"kind\":\"softmax\",\"parents\":[5],\"shape\":[128,128],\"axis\":1},"
    "{\"id\":7,\"kind\":\"reduce_sum\",\"parents\":[2],\"shape\":[128],\"axes\":[1]}]}";

/* Direct plan invariant: no node's output or scratch overlaps a value that is still needed.
 * need[a] = last step reading a's memory (through any chain of zero-copy aliases); outputs are
 * needed to the end. Writing over a value at its last reader is allowed only for an in-place
 * elementwise step writing exactly onto it. */
static bool overlap(const void *p, int64_t pn, const void *q, int64_t qn) {
    const char *a = p, *b = q;
    return pn > 0 && qn > 0 && a < b + qn && b < a + pn;
}
static void check_plan(const tl_session *s, const char *what) {
    int64_t n = s->n;
    int64_t *need = malloc(sizeof(int64_t) * (size_t)n);
    int64_t *root = malloc(sizeof(int64_t) * (size_t)n); /* memory owner of each value */
    for (int64_t i = 0; i < n; i++) {
        need[i] = -1;
        root[i] = s->steps[i].alias ? root[s->steps[i].node->parents[0]] : i;
    }
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < s->steps[i].n_in; k++) {
            int64_t r = root[s->steps[i].node->parents[k]];
            if (need[r] < i) need[r] = i;
        }
    for (int o = 0; o < s->n_out; o++) need[root[s->out_ids[o]]] = INT64_MAX;
    long bad = 0;
    for (int64_t b = 0; b < n; b++) {
        const tl_step *sb = &s->steps[b];
        if (sb->alias) continue;
        int64_t ob = sb->numel * 4, scb = sb->scratch_floats * 4;
        for (int64_t a = 0; a < b; a++) {
            const tl_step *sa = &s->steps[a];
            if (sa->alias || need[a] < b) continue;
            int64_t oa = sa->numel * 4;
            if (sb->scratch && overlap(sb->scratch, scb, s->value[a], oa)) bad++;
            if (!sb->exec && sb->op != TL_OP_INPUT) continue; /* const: writes nothing */
            if (!overlap(sb->out, ob, s->value[a], oa)) continue;
            bool ok = need[a] == b && sb->in_place && sb->out == s->value[a] && ob == oa;
            if (!ok) {
                bad++;
                fprintf(stderr, "%s: node %lld overwrites live node %lld (needed until %lld)\n", what, (long long)b,
                        (long long)a, (long long)need[a]);
            }
        }
    }
    CHECK(bad == 0, "%s: %ld overlaps with live values", what, bad);
    free(need);
    free(root);
}

/* Many branches and long-lived values: x -> 8 relu/tanh/exp chains, pairwise adds, all joined. */
static const char *G_DIAMOND =
    "{\"format\":\"torchlean.ir.v1\",\"input_id\":0,\"output_ids\":[14,5],\"nodes\":["
    "{\"id\":0,\"kind\":\"input\",\"parents\":[],\"shape\":[3,50]},"
    "{\"id\":1,\"kind\":\"tanh\",\"parents\":[0],\"shape\":[3,50]},"
    "{\"id\":2,\"kind\":\"relu\",\"parents\":[0],\"shape\":[3,50]},"
    "{\"id\":3,\"kind\":\"sin\",\"parents\":[1],\"shape\":[3,50]},"
    "{\"id\":4,\"kind\":\"add\",\"parents\":[2,3],\"shape\":[3,50]},"
    "{\"id\":5,\"kind\":\"reshape\",\"parents\":[1],\"shape\":[150],\"in_shape\":[3,50],\"out_shape\":[150]},"
    "{\"id\":6,\"kind\":\"cos\",\"parents\":[4],\"shape\":[3,50]},"
    "{\"id\":7,\"kind\":\"mul_elem\",\"parents\":[6,0],\"shape\":[3,50]},"
    "{\"id\":8,\"kind\":\"transpose\",\"parents\":[7],\"shape\":[50,3],\"axis1\":0,\"axis2\":1},"
    "{\"id\":9,\"kind\":\"matmul\",\"parents\":[7,8],\"shape\":[3,3]},"
    "{\"id\":10,\"kind\":\"reduce_mean\",\"parents\":[4],\"shape\":[3,1],\"axes\":[1],\"keepdim\":true},"
    "{\"id\":11,\"kind\":\"broadcast_to\",\"parents\":[10],\"shape\":[3,3],\"from_shape\":[3,1],\"to_shape\":[3,3]},"
    "{\"id\":12,\"kind\":\"sub\",\"parents\":[9,11],\"shape\":[3,3]},"
    "{\"id\":13,\"kind\":\"softmax\",\"parents\":[12],\"shape\":[3,3],\"axis\":1},"
    "{\"id\":14,\"kind\":\"exp\",\"parents\":[13],\"shape\":[3,3]}]}";

static void test_plan_invariants(void) {
    const char *graphs[] = {G1, G_BIG, G_DIAMOND};
    tl_shape shapes[] = {{2, {1, 4}}, {2, {128, 1024}}, {2, {3, 50}}};
    for (int gi = 0; gi < 3; gi++) {
        tl_err err = {0};
        tl_model *m = load(graphs[gi]);
        tl_session *a = NULL, *k = NULL;
        CHECK(tl_session_new(m, &shapes[gi], 0, &a, &err) == 0, "%s", err.msg);
        CHECK(tl_session_new(m, &shapes[gi], TL_SESSION_KEEP_ALL, &k, &err) == 0, "%s", err.msg);
        if (!a || !k) continue;
        char what[32];
        snprintf(what, sizeof what, "graph %d", gi);
        check_plan(a, what);
        check_plan(k, what);
        int in_place = 0, alias = 0;
        for (int64_t i = 0; i < a->n; i++) {
            in_place += a->steps[i].in_place;
            alias += a->steps[i].alias;
            CHECK(!k->steps[i].in_place, "KEEP_ALL must not run in place");
        }
        if (gi != 1) CHECK(in_place > 0 && alias > 0, "%s: in_place %d alias %d", what, in_place, alias);
        /* run both: outputs bitwise equal */
        int64_t nin = tl_shape_numel(&shapes[gi]);
        float *x = malloc(sizeof(float) * (size_t)nin);
        unsigned seed = 9;
        for (int64_t i = 0; i < nin; i++) x[i] = frand(&seed);
        CHECK(tl_session_run(a, x, &err) == 0 && tl_session_run(k, x, &err) == 0, "%s", err.msg);
        for (int o = 0; o < tl_session_n_outputs(a); o++) {
            tl_shape sa;
            const float *ya = tl_session_output(a, o, &sa), *yk = tl_session_output(k, o, NULL);
            CHECK(memcmp(ya, yk, sizeof(float) * (size_t)tl_shape_numel(&sa)) == 0,
                  "%s: output %d differs between plans", what, o);
        }
        free(x);
        tl_session_free(a);
        tl_session_free(k);
        tl_model_free(m);
    }
}

static void test_reuse_vs_keep_all(void) {
    tl_err err = {0};
    tl_model *m = load(G1);
    tl_shape in = {2, {1, 4}};
    tl_session *a = NULL, *k = NULL;
    CHECK(tl_session_new(m, &in, 0, &a, &err) == 0, "%s", err.msg);
    CHECK(tl_session_new(m, &in, TL_SESSION_KEEP_ALL, &k, &err) == 0, "%s", err.msg);
    if (!a || !k) return;
    CHECK(tl_session_arena_bytes(a) < tl_session_arena_bytes(k), "reuse %lld vs keep_all %lld",
          (long long)tl_session_arena_bytes(a), (long long)tl_session_arena_bytes(k));
    unsigned seed = 7;
    for (int trial = 0; trial < 5; trial++) {
        float x[4];
        for (int i = 0; i < 4; i++) x[i] = 2.0f * frand(&seed);
        CHECK(tl_session_run(a, x, &err) == 0, "%s", err.msg);
        CHECK(tl_session_run(k, x, &err) == 0, "%s", err.msg);
        CHECK(tl_session_n_outputs(a) == 3, "outputs");
        for (int o = 0; o < 3; o++) {
            tl_shape sa, sk;
            const float *ya = tl_session_output(a, o, &sa), *yk = tl_session_output(k, o, &sk);
            CHECK(tl_shape_eq(&sa, &sk), "shape of output %d", o);
            CHECK(memcmp(ya, yk, sizeof(float) * (size_t)tl_shape_numel(&sa)) == 0,
                  "output %d differs between reused and KEEP_ALL plans", o);
        }
        /* every KEEP_ALL value equals its node evaluated in isolation */
        const tl_graph *g = tl_model_graph(m);
        for (int64_t id = 1; id < g->n_nodes; id++) {
            const tl_node *n = &g->nodes[id];
            const float *pv[4];
            for (int p = 0; p < n->n_parents; p++) pv[p] = tl_session_node_value(k, n->parents[p], NULL, &err);
            float buf[16];
            tl_shape s;
            const float *v = tl_session_node_value(k, id, &s, &err);
            CHECK(v != NULL, "%s", err.msg);
            CHECK(tl_session_eval_node(k, id, pv, buf, &err) == 0, "%s", err.msg);
            if (v)
                CHECK(memcmp(v, buf, sizeof(float) * (size_t)tl_shape_numel(&s)) == 0,
                      "node %lld: eval_node differs from the run", (long long)id);
        }
        /* value of node 2 (relu) by hand */
        const float *h = tl_session_node_value(k, 1, NULL, &err), *r = tl_session_node_value(k, 2, NULL, &err);
        for (int i = 0; i < 6; i++) CHECK(r[i] == (h[i] > 0 ? h[i] : 0.0f), "relu[%d]", i);
    }
    /* non-kept intermediate in a reused plan is refused */
    CHECK(tl_session_node_value(a, 1, NULL, &err) == NULL, "node 1 should not be kept");
    CHECK(strcmp(err.msg, "node[1]: value is not kept after the run (use TL_SESSION_KEEP_ALL)") == 0, "%s", err.msg);
    tl_session_free(a);
    tl_session_free(k);
    tl_model_free(m);
}

#ifndef TL_NO_INTERPOSE
static void no_malloc_case(const char *json, tl_shape in, int threads) {
    tl_err err = {0};
    tl_set_threads(threads);
    tl_model *m = load(json);
    tl_session *s = NULL;
    g_allocs = 0;
    g_counting = 1; /* sanity: the interposition sees the planner's allocations */
    CHECK(tl_session_new(m, &in, TL_SESSION_PROFILE, &s, &err) == 0, "%s", err.msg);
    g_counting = 0;
    CHECK(g_allocs > 0, "malloc interposition is not active");
    if (!s) return;
    int64_t n = tl_shape_numel(&in);
    float *x = malloc(sizeof(float) * (size_t)n);
    unsigned seed = 3;
    for (int64_t i = 0; i < n; i++) x[i] = frand(&seed);
    CHECK(tl_session_run(s, x, &err) == 0, "%s", err.msg); /* warm-up: BLAS/OpenMP init */
    g_allocs = 0;
    g_ncallers = 0;
    g_counting = 2; /* 2: steady-state runs */
    int rc = 0;
    for (int r = 0; r < 10; r++) rc |= tl_session_run(s, x, &err);
    g_counting = 0;
    CHECK(rc == 0, "%s", err.msg);
    /* OpenBLAS 0.3.21's multi-threaded level-3 driver (sgemm_thread_*) mallocs its job array on
     * every call; that is inside OpenBLAS and only with more than one thread. Everything else
     * (tlrt, its kernels, OpenMP) must allocate nothing. */
    long foreign = 0, blas = 0;
    for (long k = 0; k < g_ncallers && k < MAX_CALLERS; k++) {
        Dl_info info;
        if (dladdr(g_callers[k], &info) && info.dli_fname && strstr(info.dli_fname, "openblas")) blas++;
        else foreign++;
    }
    if (g_ncallers > MAX_CALLERS) foreign += g_ncallers - MAX_CALLERS;
    CHECK(foreign == 0, "%ld allocations outside OpenBLAS during 10 runs (threads %d)", foreign, threads);
    if (threads == 1) CHECK(g_allocs == 0, "%ld allocations during 10 single-threaded runs", g_allocs);
    else if (blas)
        printf("note: %ld allocations inside multi-threaded OpenBLAS during 10 runs (threads %d)\n", blas, threads);
    free(x);
    tl_session_free(s);
    tl_model_free(m);
}

static void test_no_malloc_in_run(int threads) {
    no_malloc_case(G1, (tl_shape){2, {64, 4}}, threads); /* batch 64 */
    no_malloc_case(G_BIG, (tl_shape){2, {128, 1024}}, threads);
    no_malloc_case(G_ATTN, (tl_shape){3, {3, 4, 6}}, threads); /* views, folding, re-batch */
}
#endif

/* Outputs of the reused plan equal the KEEP_ALL plan's, bitwise (bigger graph, two outputs). */
static void test_big_reuse(void) {
    tl_err err = {0};
    tl_model *m = load(G_BIG);
    tl_shape in = {2, {128, 1024}};
    tl_session *a = NULL, *k = NULL;
    CHECK(tl_session_new(m, &in, 0, &a, &err) == 0, "%s", err.msg);
    CHECK(tl_session_new(m, &in, TL_SESSION_KEEP_ALL, &k, &err) == 0, "%s", err.msg);
    if (!a || !k) return;
    CHECK(tl_session_arena_bytes(a) < tl_session_arena_bytes(k), "no reuse");
    float *x = malloc(sizeof(float) * 128 * 1024);
    unsigned seed = 5;
    for (int i = 0; i < 128 * 1024; i++) x[i] = frand(&seed);
    CHECK(tl_session_run(a, x, &err) == 0 && tl_session_run(k, x, &err) == 0, "%s", err.msg);
    for (int o = 0; o < 2; o++) {
        tl_shape sa, sk;
        const float *ya = tl_session_output(a, o, &sa), *yk = tl_session_output(k, o, &sk);
        CHECK(tl_shape_eq(&sa, &sk) && memcmp(ya, yk, sizeof(float) * (size_t)tl_shape_numel(&sa)) == 0,
              "big graph output %d differs between plans", o);
    }
    free(x);
    tl_session_free(a);
    tl_session_free(k);
    tl_model_free(m);
}

static void test_batch(void) {
    tl_err err = {0};
    tl_model *m = load(G1);
    tl_shape in1 = {2, {1, 4}}, in5 = {2, {5, 4}};
    tl_session *s1 = NULL, *s5 = NULL;
    CHECK(tl_session_new(m, &in1, 0, &s1, &err) == 0, "%s", err.msg);
    CHECK(tl_session_new(m, &in5, 0, &s5, &err) == 0, "%s", err.msg);
    if (!s1 || !s5) return;
    const tl_shape *sh = tl_session_node_shape(s5, 7);
    CHECK(sh->rank == 3 && sh->dim[0] == 5 && sh->dim[1] == 2 && sh->dim[2] == 3, "reshape batch");
    float x[20];
    unsigned seed = 11;
    for (int i = 0; i < 20; i++) x[i] = 2.0f * frand(&seed);
    CHECK(tl_session_run(s5, x, &err) == 0, "%s", err.msg);
    for (int b = 0; b < 5; b++) {
        CHECK(tl_session_run(s1, x + 4 * b, &err) == 0, "%s", err.msg);
        for (int o = 0; o < 3; o++) {
            tl_shape s1s, s5s;
            const float *y1 = tl_session_output(s1, o, &s1s), *y5 = tl_session_output(s5, o, &s5s);
            int64_t per = tl_shape_numel(&s1s);
            CHECK(s5s.dim[0] == 5 && tl_shape_numel(&s5s) == 5 * per, "output %d shape", o);
            for (int64_t i = 0; i < per; i++)
                CHECK(fabsf(y1[i] - y5[b * per + i]) <= 1e-5f * (1 + fabsf(y1[i])),
                      "batch %d output %d [%lld]: %g vs %g", b, o, (long long)i, (double)y1[i],
                      (double)y5[b * per + i]);
        }
    }
    tl_session_free(s1);
    tl_session_free(s5);
    tl_model_free(m);

    m = load(G_FLAT);
    tl_shape in64 = {3, {64, 2, 2}}, bad = {3, {1, 2, 3}};
    tl_session *s = NULL;
    CHECK(tl_session_new(m, &in64, 0, &s, &err) != 0, "flatten must refuse batch 64");
    CHECK(strcmp(err.msg,
                 "batch 64 does not fit the graph: node[2] (flatten) mixes the batch axis "
                 "(captured batch 1)") == 0,
          "%s", err.msg);
    CHECK(tl_session_new(m, &bad, 0, &s, &err) != 0, "bad shape");
    CHECK(strcmp(err.msg, "shape [1, 2, 3] does not match the graph input [1, 2, 2]") == 0, "%s", err.msg);
    tl_model_free(m);
}

static bool close_arrays(const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) <= 1e-5f * (1.0f + fabsf(b[i])))) return false;
    return true;
}

static void test_fold_views(void) {
    tl_err err = {0};
    tl_model *m = load(G_ATTN);
    const tl_graph *g = tl_model_graph(m);
    for (int N = 1; N <= 3; N += 2) {
        tl_shape in = {3, {N, 4, 6}};
        tl_session *a = NULL, *k = NULL;
        CHECK(tl_session_new(m, &in, 0, &a, &err) == 0, "N %d: %s", N, err.msg);
        CHECK(tl_session_new(m, &in, TL_SESSION_KEEP_ALL, &k, &err) == 0, "N %d: %s", N, err.msg);
        if (!a || !k) return;
        static const char *want[] = {"input", "alias", "view", "view",  "folded", "run", "folded",
                                     "run",   "run",   "run",  "alias", "alias",  "run"};
        static const char *want_k[] = {"input", "alias", "run", "run", "folded", "run", "folded",
                                       "run",   "run",   "run", "run", "alias",  "run"};
        for (int64_t i = 0; i < g->n_nodes; i++) {
            CHECK(strcmp(tl_session_node_plan(a, i), want[i]) == 0, "N %d node %lld: %s", N, (long long)i,
                  tl_session_node_plan(a, i));
            CHECK(strcmp(tl_session_node_plan(k, i), want_k[i]) == 0, "N %d keep node %lld: %s", N, (long long)i,
                  tl_session_node_plan(k, i));
        }
        CHECK(tl_session_node_plan(a, 13) == NULL, "bad id");
        CHECK(a->steps[5].p.mm.strided && a->steps[9].p.mm.strided && a->steps[9].out_view, "strided");
        CHECK(a->steps[7].p.ew.bf_operand == 2 && !k->steps[5].p.mm.strided, "rep / keep");
        check_plan(a, "attn");
        check_plan(k, "attn keep");
        float x[72];
        unsigned seed = 21;
        for (int i = 0; i < 24 * N; i++) x[i] = 2.0f * frand(&seed);
        CHECK(tl_session_run(a, x, &err) == 0 && tl_session_run(k, x, &err) == 0, "%s", err.msg);
        tl_shape sa;
        const float *ya = tl_session_output(a, 0, &sa), *yk = tl_session_output(k, 0, NULL);
        CHECK(sa.dim[0] == N && close_arrays(ya, yk, tl_shape_numel(&sa)), "N %d: outputs differ", N);
        /* a view and a matmul writing into its consumer's layout are not readable values */
        CHECK(tl_session_node_value(a, 2, NULL, &err) == NULL &&
                  strcmp(err.msg, "node[2]: value is not kept after the run (use TL_SESSION_KEEP_ALL)") == 0,
              "%s", err.msg);
        CHECK(tl_session_node_value(a, 9, NULL, &err) == NULL, "out-view matmul kept");
        CHECK(tl_session_node_value(a, 6, NULL, &err) == NULL, "folded, read per sample only");
        CHECK(tl_session_node_value(a, 4, NULL, &err) != NULL, "const");
        /* the folded broadcast in KEEP_ALL: every element 0.5 */
        tl_shape s6;
        const float *v6 = tl_session_node_value(k, 6, &s6, &err);
        CHECK(v6 && s6.dim[0] == 1 && tl_shape_numel(&s6) == 32, "folded value");
        for (int i = 0; v6 && i < 32; i++) CHECK(v6[i] == 0.5f, "folded [%d]", i);
        /* eval_node on the plan's strided matmuls and per-sample operand, from contiguous parents */
        for (int64_t id = 5; id <= 9; id++) {
            const tl_node *nd = &g->nodes[id];
            const float *pv[2];
            for (int p = 0; p < nd->n_parents; p++) pv[p] = tl_session_node_value(k, nd->parents[p], NULL, &err);
            float buf[128];
            tl_shape sv;
            const float *v = tl_session_node_value(k, id, &sv, &err);
            CHECK(tl_session_eval_node(a, id, pv, buf, &err) == 0, "%s", err.msg);
            CHECK(v && close_arrays(buf, v, tl_shape_numel(&sv)), "N %d eval node %lld", N, (long long)id);
        }
        /* each sample of the batch-3 run equals a batch-1 run */
        if (N == 3) {
            tl_shape in1 = {3, {1, 4, 6}};
            tl_session *s1 = NULL;
            CHECK(tl_session_new(m, &in1, 0, &s1, &err) == 0, "%s", err.msg);
            for (int b = 0; s1 && b < 3; b++) {
                CHECK(tl_session_run(s1, x + 24 * b, &err) == 0, "%s", err.msg);
                CHECK(close_arrays(ya + 24 * b, tl_session_output(s1, 0, NULL), 24), "sample %d", b);
            }
            tl_session_free(s1);
        }
        tl_session_free(a);
        tl_session_free(k);
    }
    tl_model_free(m);
}

static void test_plant_bug(void) {
    tl_err err = {0};
    tl_model *m = load(G1);
    tl_shape in = {2, {1, 4}};
    tl_session *a = NULL, *b = NULL;
    CHECK(tl_session_new(m, &in, TL_SESSION_KEEP_ALL, &a, &err) == 0, "%s", err.msg);
    setenv("TL_TEST_PLANT_BUG", "tanh", 1);
    CHECK(tl_session_new(m, &in, TL_SESSION_KEEP_ALL, &b, &err) == 0, "%s", err.msg);
    unsetenv("TL_TEST_PLANT_BUG");
    float x[4] = {0.5f, -1.0f, 0.25f, 2.0f};
    tl_session_run(a, x, &err);
    tl_session_run(b, x, &err);
    const float *va = tl_session_node_value(a, 3, NULL, &err), *vb = tl_session_node_value(b, 3, NULL, &err);
    for (int i = 0; i < 6; i++) CHECK(vb[i] == va[i] + 1e-2f, "planted tanh[%d]", i);
    va = tl_session_node_value(a, 2, NULL, &err);
    vb = tl_session_node_value(b, 2, NULL, &err);
    CHECK(memcmp(va, vb, 6 * sizeof(float)) == 0, "relu must be untouched");
    tl_session_free(a);
    tl_session_free(b);
    tl_model_free(m);
}

/* Batch norm folded into the producing conv (default plan) vs TL_SESSION_EXACT (node by node):
 * the exact plan runs the batch norm and equals the KEEP_ALL plan bitwise; the folded plan is
 * within float32 rounding of it (each weight rounded once from double). Re-batched too. */
static const char *G_CONV_BN =
    "{\"format\":\"torchlean.ir.v1\",\"input_id\":0,\"output_ids\":[3],\"nodes\":["
    "{\"id\":0,\"kind\":\"input\",\"parents\":[],\"shape\":[1,2,4,4]},"
    "{\"id\":1,\"kind\":\"conv\",\"parents\":[0],\"shape\":[1,3,4,4],\"spatial_rank\":2,\"kernel\":[3,3],"
    "\"stride\":[1,1],\"padding\":[1,1],\"channel_axis\":1,\"in_channels\":2,\"out_channels\":3,"
    "\"weight\":[[[[0.1,0.2,0.3],[0.4,0.5,0.6],[0.7,0.8,0.9]],[[-0.1,0.2,-0.3],[0.4,-0.5,0.6],[-0.7,0.8,-0.9]]],"
    "[[[0.3,0.1,0.2],[0.1,0.1,0.1],[0.2,0.2,0.2]],[[0.5,-0.5,0.5],[-0.5,0.5,-0.5],[0.5,-0.5,0.5]]],"
    "[[[0.0,0.1,0.0],[0.1,-0.4,0.1],[0.0,0.1,0.0]],[[0.2,0.3,0.1],[0.3,0.2,0.1],[0.1,0.3,0.2]]]],"
    "\"bias\":[0.1,-0.1,0.05]},"
    "{\"id\":2,\"kind\":\"batch_norm_eval\",\"parents\":[1],\"shape\":[1,3,4,4],\"channel_axis\":1,"
    "\"channels\":3,\"eps\":1e-5,\"gamma\":[1.5,0.7,-1.1],\"beta\":[0.2,-0.3,0.1],\"mean\":[0.05,-0.2,0.3],"
    "\"var\":[0.9,1.7,0.4]},"
    "{\"id\":3,\"kind\":\"relu\",\"parents\":[2],\"shape\":[1,3,4,4]}]}";

static void test_fuse_exact(void) {
    tl_model *m = load(G_CONV_BN);
    tl_err err = {0};
    for (int64_t N = 1; N <= 3; N += 2) {
        tl_shape in = {4, {N, 2, 4, 4}};
        tl_session *f = NULL, *e = NULL, *k = NULL;
        CHECK(tl_session_new(m, &in, 0, &f, &err) == 0 && tl_session_new(m, &in, TL_SESSION_EXACT, &e, &err) == 0 &&
                  tl_session_new(m, &in, TL_SESSION_KEEP_ALL, &k, &err) == 0,
              "%s", err.msg);
        CHECK(strcmp(tl_session_node_plan(f, 2), "fused") == 0 && strcmp(tl_session_node_plan(e, 2), "run") == 0 &&
                  strcmp(tl_session_node_plan(k, 2), "run") == 0,
              "plans %s %s", tl_session_node_plan(f, 2), tl_session_node_plan(e, 2));
        float x[96];
        unsigned seed = 5;
        for (int i = 0; i < 32 * N; i++) x[i] = frand(&seed);
        CHECK(tl_session_run(f, x, &err) == 0 && tl_session_run(e, x, &err) == 0 && tl_session_run(k, x, &err) == 0,
              "%s", err.msg);
        tl_shape ys;
        const float *yf = tl_session_output(f, 0, &ys), *ye = tl_session_output(e, 0, &ys),
                    *yk = tl_session_output(k, 0, &ys);
        int64_t n = tl_shape_numel(&ys);
        CHECK(memcmp(ye, yk, sizeof(float) * (size_t)n) == 0, "exact != keep-all");
        double worst = 0;
        for (int64_t i = 0; i < n; i++) {
            double d = fabs((double)yf[i] - (double)ye[i]) / (1e-6 + fabs((double)ye[i]));
            if (d > worst) worst = d;
        }
        CHECK(worst < 1e-5, "folded vs exact rel %g", worst);
        /* the fused batch norm's value is the output of the producing conv's storage; the conv's
         * own value is not readable (it holds the batch norm's) */
        float conv_only[144];
        const float *pv[1] = {x};
        CHECK(tl_session_eval_node(f, 1, pv, conv_only, &err) == 0, "%s", err.msg);
        const float *kc = tl_session_node_value(k, 1, NULL, &err);
        CHECK(kc && memcmp(conv_only, kc, sizeof(float) * (size_t)(48 * N)) == 0,
              "eval_node uses the model's weights");
        tl_session_free(f);
        tl_session_free(e);
        tl_session_free(k);
    }
    tl_model_free(m);
}

/* A batched conv runs its images in parallel at 2 threads (the direct kernel, one padded image
 * per thread) and gives bitwise the 1-thread result; the folded batch norm too. */
static void test_conv_threads(void) {
    tl_model *m = load(G_CONV_BN);
    tl_err err = {0};
    enum { N = 512 };
    tl_shape in = {4, {N, 2, 4, 4}};
    static float x[N * 32], y1[N * 48];
    unsigned seed = 9;
    for (int i = 0; i < N * 32; i++) x[i] = frand(&seed);
    float *ys[2] = {y1, NULL};
    for (int t = 1; t <= 2; t++) {
        tl_set_threads(t);
        tl_session *s = NULL;
        CHECK(tl_session_new(m, &in, 0, &s, &err) == 0 && tl_session_run(s, x, &err) == 0, "%s", err.msg);
        CHECK(s->steps[1].p.cv.direct == TL_CONV_DIRECT_DENSE, "direct conv kernel");
        tl_shape ys_;
        const float *y = tl_session_output(s, 0, &ys_);
        if (t == 1) memcpy(y1, y, sizeof y1);
        else CHECK(memcmp(y1, y, sizeof y1) == 0, "conv at 2 threads differs from 1 thread");
        tl_session_free(s);
    }
    (void)ys;
    tl_set_threads(1);
    tl_model_free(m);
}

/* ---- clamp epilogues: relu / max_elem / min_elem with a constant fused into the producing conv
 * or linear. Bitwise the node-by-node result, so the default plan, TL_SESSION_EXACT (which keeps
 * these rewrites) and KEEP_ALL (which runs every node) agree bit for bit, at batch 1 and 3. */
static char *sq(const char *s) { /* single-quoted JSON fixture -> JSON (malloc'ed) */
    char *r = strdup(s);
    for (char *p = r; *p; p++)
        if (*p == '\'') *p = '"';
    return r;
}

/* conv -> max_elem(y, -0.25) -> min_elem(y, 0.5): fused (output 7); max_elem(-0.25, conv) (the
 * constant first) and a conv read twice (9 and 10): not fused */
static const char *G_CLAMP_CONV =
    "{'format':'torchlean.ir.v1','input_id':0,'output_ids':[7,9,10],'nodes':["
    "{'id':0,'kind':'input','parents':[],'shape':[1,2,4,4]},"
    "{'id':1,'kind':'conv','parents':[0],'shape':[1,3,4,5],'spatial_rank':2,'kernel':[1,2],'stride':[1,1],"
    "'padding':[0,1],'padding_after':[0,1],'channel_axis':1,'in_channels':2,'out_channels':3,"
    "'weight':[[[[0.5,-0.75]],[[0.25,1.0]]],[[[-1.0,0.5]],[[0.75,0.25]]],[[[0.3,0.6]],[[-0.9,0.1]]]],"
    "'bias':[0.1,-0.2,0.05]},"
    "{'id':2,'kind':'const','parents':[],'shape':[1,1,1,1],'value_shape':[1,1,1,1],'values':[-0.25]},"
    "{'id':3,'kind':'broadcast_to','parents':[2],'shape':[1,3,4,5],'from_shape':[1,1,1,1],'to_shape':[1,3,4,5]},"
    "{'id':4,'kind':'max_elem','parents':[1,3],'shape':[1,3,4,5]},"
    "{'id':5,'kind':'const','parents':[],'shape':[1,1,1,1],'value_shape':[1,1,1,1],'values':[0.5]},"
    "{'id':6,'kind':'broadcast_to','parents':[5],'shape':[1,3,4,5],'from_shape':[1,1,1,1],'to_shape':[1,3,4,5]},"
    "{'id':7,'kind':'min_elem','parents':[4,6],'shape':[1,3,4,5]},"
    "{'id':8,'kind':'conv','parents':[0],'shape':[1,3,4,5],'spatial_rank':2,'kernel':[1,2],'stride':[1,1],"
    "'padding':[0,1],'padding_after':[0,1],'channel_axis':1,'in_channels':2,'out_channels':3,"
    "'weight':[[[[0.5,-0.75]],[[0.25,1.0]]],[[[-1.0,0.5]],[[0.75,0.25]]],[[[0.3,0.6]],[[-0.9,0.1]]]],'bias':[0,0,0]},"
    "{'id':9,'kind':'max_elem','parents':[3,8],'shape':[1,3,4,5]},"
    "{'id':10,'kind':'relu','parents':[8],'shape':[1,3,4,5]}]}";

/* linear -> relu (fused) -> linear -> min_elem(y, 0.1) (fused) -> relu (a lower bound after an
 * upper one: not fused) */
static const char *G_CLAMP_LIN =
    "{'format':'torchlean.ir.v1','input_id':0,'output_ids':[7],'nodes':["
    "{'id':0,'kind':'input','parents':[],'shape':[2,4]},"
    "{'id':1,'kind':'linear','parents':[0],'shape':[2,5],'in_dim':4,'out_dim':5,"
    "'weight':[[0.5,-0.25,0.75,0.1],[-0.5,0.3,0.2,-0.8],[0.9,0.1,-0.4,0.3],[0.2,0.2,0.2,-0.6],[-0.3,0.7,0.5,0.4]],"
    "'bias':[0.05,-0.1,0.2,0.0,-0.3]},"
    "{'id':2,'kind':'relu','parents':[1],'shape':[2,5]},"
    "{'id':3,'kind':'linear','parents':[2],'shape':[2,3],'in_dim':5,'out_dim':3,"
    "'weight':[[0.5,-0.5,0.25,1.0,-0.75],[0.3,0.6,-0.9,0.2,0.1],[-0.4,0.8,0.2,-0.1,0.5]],'bias':[0.1,-0.05,0.0]},"
    "{'id':4,'kind':'const','parents':[],'shape':[1,1],'value_shape':[1,1],'values':[0.1]},"
    "{'id':5,'kind':'broadcast_to','parents':[4],'shape':[2,3],'from_shape':[1,1],'to_shape':[2,3]},"
    "{'id':6,'kind':'min_elem','parents':[3,5],'shape':[2,3]},"
    "{'id':7,'kind':'relu','parents':[6],'shape':[2,3]}]}";

/* a 3-D conv (im2col + sgemm, the clamp in a pass after) -> relu: fused */
static const char *G_CLAMP_CONV3 =
    "{'format':'torchlean.ir.v1','input_id':0,'output_ids':[2],'nodes':["
    "{'id':0,'kind':'input','parents':[],'shape':[1,2,3,3,3]},"
    "{'id':1,'kind':'conv','parents':[0],'shape':[1,2,3,3,2],'spatial_rank':3,'kernel':[1,1,2],"
    "'stride':[1,1,1],'padding':[0,0,0],'channel_axis':1,'in_channels':2,'out_channels':2,"
    "'weight':[[[[[0.5,-0.75]]],[[[0.25,1.0]]]],[[[[-1.0,0.5]]],[[[0.75,0.25]]]]],'bias':[0.1,-0.2]},"
    "{'id':2,'kind':'relu','parents':[1],'shape':[1,2,3,3,2]}]}";

static void fuse_clamp_case(const char *what, const char *json_sq, const int64_t *fused, int nf,
                            const int64_t *unfused, int nu, bool bounded) {
    char *json = sq(json_sq);
    tl_model *m = load(json);
    free(json);
    tl_err err = {0};
    const tl_shape *cap = &m->g->nodes[m->g->input_id].shape;
    for (int64_t N = 1; N <= 3; N += 2) {
        tl_shape in = *cap;
        in.dim[0] = N;
        int64_t n_in = tl_shape_numel(&in);
        float *x = malloc(sizeof(float) * (size_t)n_in);
        unsigned seed = 11;
        for (int64_t i = 0; i < n_in; i++) x[i] = 1.5f * frand(&seed);
        if (N > 1) x[n_in / 2] = NAN; /* a NaN accumulator passes both bounds, fused or not */
        tl_session *s[3] = {NULL, NULL, NULL};
        const int flags[3] = {0, TL_SESSION_EXACT, TL_SESSION_KEEP_ALL};
        for (int k = 0; k < 3; k++)
            CHECK(tl_session_new(m, &in, flags[k], &s[k], &err) == 0 && tl_session_run(s[k], x, &err) == 0, "%s: %s",
                  what, err.msg);
        for (int j = 0; j < nf; j++) {
            CHECK(strcmp(tl_session_node_plan(s[0], fused[j]), "fused") == 0 &&
                      strcmp(tl_session_node_plan(s[1], fused[j]), "fused") == 0 &&
                      strcmp(tl_session_node_plan(s[2], fused[j]), "run") == 0,
                  "%s: node %lld plans %s / %s / %s", what, (long long)fused[j], tl_session_node_plan(s[0], fused[j]),
                  tl_session_node_plan(s[1], fused[j]), tl_session_node_plan(s[2], fused[j]));
        }
        for (int j = 0; j < nu; j++)
            CHECK(strcmp(tl_session_node_plan(s[0], unfused[j]), "run") == 0, "%s: node %lld plans %s", what,
                  (long long)unfused[j], tl_session_node_plan(s[0], unfused[j]));
        int changed = 0;
        for (int o = 0; o < m->g->n_outputs; o++) {
            tl_shape ys;
            const float *y0 = tl_session_output(s[0], o, &ys), *y1 = tl_session_output(s[1], o, NULL),
                        *y2 = tl_session_output(s[2], o, NULL);
            int64_t n = tl_shape_numel(&ys);
            CHECK(memcmp(y0, y2, sizeof(float) * (size_t)n) == 0 && memcmp(y1, y2, sizeof(float) * (size_t)n) == 0,
                  "%s: output %d fused != node by node (batch %lld)", what, o, (long long)N);
            /* the clamp did something: some outputs sit on the bound, some not */
            for (int64_t i = 0; i < n; i++)
                changed += y2[i] == 0.5f || y2[i] == -0.25f || y2[i] == 0.1f || y2[i] == 0.0f;
        }
        CHECK(!bounded || changed > 0, "%s: the fixture never reaches a bound", what);
        for (int k = 0; k < 3; k++) tl_session_free(s[k]);
        free(x);
    }
    tl_model_free(m);
}

static void test_fuse_clamp(void) {
    const int64_t conv_f[] = {4, 7}, conv_u[] = {9, 10}, lin_f[] = {2, 6}, lin_u[] = {7}, c3_f[] = {2};
    fuse_clamp_case("conv relu6-style", G_CLAMP_CONV, conv_f, 2, conv_u, 2, true);
    fuse_clamp_case("linear", G_CLAMP_LIN, lin_f, 2, lin_u, 1, true);
    fuse_clamp_case("conv3d", G_CLAMP_CONV3, c3_f, 1, NULL, 0, true);
}

/* residual adds: add(x, conv(x)) then relu (fused: y + r, then the clamp); add(conv_a, conv_b)
 * (producer conv_b, r = conv_a computed before it) then min_elem (fused); an add after a fused
 * relu (a clamp before the add) and of a value read twice: not fused. linear + x then relu. */
#define W33 "'weight':[[[[0.5]],[[-0.75]],[[0.25]]],[[[1.0]],[[-1.0]],[[0.5]]],[[[0.3]],[[0.6]],[[-0.9]]]]"
#define CONV11(ID, P) \
    "{'id':" ID ",'kind':'conv','parents':[" P \
    "],'shape':[1,3,4,4],'spatial_rank':2,'kernel':[1,1]," \
    "'stride':[1,1],'padding':[0,0],'channel_axis':1,'in_channels':3,'out_channels':3," W33 \
    ",'bias':[0.1,-0.2,0.05]},"
static const char *G_RESID_CONV = "{'format':'torchlean.ir.v1','input_id':0,'output_ids':[12],'nodes':["
                                  "{'id':0,'kind':'input','parents':[],'shape':[1,3,4,4]}," CONV11("1", "0")
                                  "{'id':2,'kind':'add','parents':[0,1],'shape':[1,3,4,4]},"
                                  "{'id':3,'kind':'relu','parents':[2],'shape':[1,3,4,4]}," CONV11("4", "3")
                                      CONV11("5", "3") "{'id':6,'kind':'add','parents':[4,5],'shape':[1,3,4,4]},"
                                  "{'id':7,'kind':'const','parents':[],'shape':[1,1,1,1],'value_shape':[1,1,1,1],"
                                  "'values':[0.5]},"
                                  "{'id':8,'kind':'broadcast_to','parents':[7],'shape':[1,3,4,4],'from_shape':[1,1,1,"
                                  "1],'to_shape':[1,3,4,4]},"
                                  "{'id':9,'kind':'min_elem','parents':[6,8],'shape':[1,3,4,4]}," CONV11("10", "9")
                                  "{'id':11,'kind':'relu','parents':[10],'shape':[1,3,4,4]},"
                                  "{'id':12,'kind':'add','parents':[11,9],'shape':[1,3,4,4]}]}";
static const char *G_RESID_LIN =
    "{'format':'torchlean.ir.v1','input_id':0,'output_ids':[3],'nodes':["
    "{'id':0,'kind':'input','parents':[],'shape':[2,4]},"
    "{'id':1,'kind':'linear','parents':[0],'shape':[2,4],'in_dim':4,'out_dim':4,"
    "'weight':[[0.5,-0.25,0.75,0.1],[-0.5,0.3,0.2,-0.8],[0.9,0.1,-0.4,0.3],[0.2,0.2,0.2,-0.6]],"
    "'bias':[0.05,-2.5,0.2,0.0]},"
    "{'id':2,'kind':'add','parents':[1,0],'shape':[2,4]},"
    "{'id':3,'kind':'relu','parents':[2],'shape':[2,4]}]}";

static void test_fuse_residual(void) {
    const int64_t conv_f[] = {2, 3, 6, 9, 11}, conv_u[] = {12}, lin_f[] = {2, 3};
    fuse_clamp_case("conv residual", G_RESID_CONV, conv_f, 5, conv_u, 1, true);
    fuse_clamp_case("linear residual", G_RESID_LIN, lin_f, 2, NULL, 0, true);
}

/* leaky relu as captured, max_elem(y, mul_elem(s, y)), after a conv (fused: both nodes) and after
 * a residual add into a conv (fused); after a conv read a third time not into the conv, but the
 * two nodes form an elementwise chain (the mul fused into the max, which runs) */
static const char *G_LEAKY = "{'format':'torchlean.ir.v1','input_id':0,'output_ids':[5,10,12],'nodes':["
                             "{'id':0,'kind':'input','parents':[],'shape':[1,3,4,4]}," CONV11("1", "0")
                             "{'id':2,'kind':'const','parents':[],'shape':[1,1,1,1],'value_shape':[1,1,1,1],"
                             "'values':[0.25]},"
                             "{'id':3,'kind':'broadcast_to','parents':[2],'shape':[1,3,4,4],'from_shape':[1,1,1,1],"
                             "'to_shape':[1,3,4,4]},"
                             "{'id':4,'kind':'mul_elem','parents':[3,1],'shape':[1,3,4,4]},"
                             "{'id':5,'kind':'max_elem','parents':[1,4],'shape':[1,3,4,4]}," CONV11("6", "5")
                             "{'id':7,'kind':'add','parents':[5,6],'shape':[1,3,4,4]},"
                             "{'id':8,'kind':'mul_elem','parents':[3,7],'shape':[1,3,4,4]},"
                             "{'id':9,'kind':'max_elem','parents':[7,8],'shape':[1,3,4,4]}," CONV11("10", "9")
                             "{'id':11,'kind':'mul_elem','parents':[3,10],'shape':[1,3,4,4]},"
                             "{'id':12,'kind':'max_elem','parents':[10,11],'shape':[1,3,4,4]}]}";

static void test_fuse_leaky(void) {
    const int64_t f[] = {4, 5, 7, 8, 9, 11}, u[] = {12};
    fuse_clamp_case("leaky", G_LEAKY, f, 6, u, 1, false);
}

/* The packed-weight linear (16+ rows, narrow layers) runs by default and not under
 * TL_SESSION_EXACT, which keeps sgemm + the bias pass (bitwise EXACT | KEEP_ALL, node by node);
 * the two agree within float32 GEMM reassociation. */
static void test_linear_packed(void) {
    char *json = sq(G_CLAMP_LIN);
    tl_model *m = load(json);
    free(json);
    tl_err err = {0};
    enum { N = 37 };
    tl_shape in = {2, {N, 4}};
    float x[N * 4];
    unsigned seed = 3;
    for (int i = 0; i < N * 4; i++) x[i] = frand(&seed);
    tl_session *d = NULL, *e = NULL, *ek = NULL;
    CHECK(tl_session_new(m, &in, 0, &d, &err) == 0 && tl_session_new(m, &in, TL_SESSION_EXACT, &e, &err) == 0 &&
              tl_session_new(m, &in, TL_SESSION_EXACT | TL_SESSION_KEEP_ALL, &ek, &err) == 0,
          "%s", err.msg);
    bool vec = tl_kernels() != tl_kernels_for(TL_ISA_SCALAR);
    CHECK((d->steps[1].p.lin.packed != NULL) == vec, "default plan: packed linear on a vector table");
    CHECK(e->steps[1].p.lin.packed == NULL && e->steps[3].p.lin.packed == NULL, "exact plan: no packed linear");
    CHECK(tl_session_run(d, x, &err) == 0 && tl_session_run(e, x, &err) == 0 && tl_session_run(ek, x, &err) == 0,
          "%s", err.msg);
    const float *yd = tl_session_output(d, 0, NULL), *ye = tl_session_output(e, 0, NULL),
                *yk = tl_session_output(ek, 0, NULL);
    CHECK(memcmp(ye, yk, sizeof(float) * N * 3) == 0, "exact != exact keep-all");
    double worst = 0;
    for (int i = 0; i < N * 3; i++) {
        double dd = fabs((double)yd[i] - (double)ye[i]);
        if (dd > worst) worst = dd;
    }
    CHECK(worst < 1e-5, "packed vs sgemm linear: %g", worst);
    tl_session_free(d);
    tl_session_free(e);
    tl_session_free(ek);
    tl_model_free(m);
}

/* A plan larger than the memory limit is refused before the arena is allocated, naming the node
 * and the bytes (kind TL_ERR_OOM, exit status 3); under the limit the same graph plans. The
 * declared [100000, 100000] activation is 40 GB: more than this machine has. */
static void test_memory_limit(void) {
    static const char *BIG =
        "{\"format\":\"torchlean.ir.v1\",\"input_id\":0,\"output_ids\":[2],\"nodes\":["
        "{\"id\":0,\"kind\":\"input\",\"parents\":[],\"shape\":[1,1]},"
        "{\"id\":1,\"kind\":\"broadcast_to\",\"parents\":[0],\"shape\":[100000,100000],"
        "\"from_shape\":[1,1],\"to_shape\":[100000,100000]},"
        "{\"id\":2,\"kind\":\"sum\",\"parents\":[1],\"shape\":[]}]}";
    tl_model *m = load(BIG);
    tl_err err = {0};
    tl_session *s = NULL;
    tl_shape in = {2, {1, 1}};
    unsetenv("TL_MEMORY_LIMIT");
    CHECK(tl_session_new(m, &in, 0, &s, &err) == -1 && s == NULL, "40 GB plan accepted");
    CHECK(err.kind == TL_ERR_OOM && tl_err_exit_status(&err) == 3, "kind %d", (int)err.kind);
    CHECK(strstr(err.msg, "node[1] (broadcast_to): its value [100000, 100000] needs 40000000000 bytes") != NULL,
          "message: %s", err.msg);
    /* the limit is the environment's when set: a small graph over a tiny limit */
    tl_model_free(m);
    m = load(G1);
    tl_shape in1 = {2, {1, 4}};
    setenv("TL_MEMORY_LIMIT", "64", 1);
    CHECK(tl_session_new(m, &in1, 0, &s, &err) == -1 && err.kind == TL_ERR_OOM, "limit 64: %s", err.msg);
    setenv("TL_MEMORY_LIMIT", "100000000", 1);
    CHECK(tl_session_new(m, &in1, 0, &s, &err) == 0, "limit 1e8: %s", err.msg);
    tl_session_free(s);
    unsetenv("TL_MEMORY_LIMIT");
    tl_model_free(m);
}

int main(void) {
    test_memory_limit();
    test_fuse_exact();
    test_fuse_clamp();
    test_fuse_residual();
    test_fuse_leaky();
    test_linear_packed();
    test_conv_threads();
    test_plan_invariants();
    test_reuse_vs_keep_all();
    test_big_reuse();
    test_batch();
    test_fold_views();
    test_plant_bug();
#ifndef TL_NO_INTERPOSE
    test_no_malloc_in_run(1);
    test_no_malloc_in_run(2);
#else
    printf("test_runtime: sanitizer build, allocation check skipped\n");
#endif
    if (failures) {
        fprintf(stderr, "test_runtime: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_runtime: ok\n");
    return 0;
}
