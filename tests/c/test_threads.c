/* test_threads.c - the C API's thread-safety contract (include/tlrt/tl_runtime.h), exercised:
 *   1. one model shared by several sessions, one session per thread, all running at once;
 *   2. several models, one session of each per thread;
 *   3. one model, sessions planned under DIFFERENT kernel tables (scalar, avx2, avx512: the ISA is
 *      process-global and snapshotted at tl_session_new, so the main thread sets it and plans
 *      each session before any thread starts) running at once, each against a reference of its
 *      own ISA;
 * every thread's outputs must equal (bitwise) those of a reference run made before the threads
 * start. Run under ThreadSanitizer by scripts/test.sh (build-tsan), where a data race in the
 * runtime (a shared scratch buffer, a lazily initialised table, a global written by a session)
 * is reported and fails the test. tlrt's own kernels run single-threaded here (tl_set_threads(1)
 * once, before any thread starts: it is process-global by contract, which case 4 checks). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_import.h"
#include "tl_runtime.h"

enum { THREADS = 4, RUNS = 50 };

static int failures;

/* x[1, 6] -> linear(6 -> 8) -> tanh -> linear(8 -> 4) -> softmax; with a reshape and a constant */
static const char *G_MLP =
    "{\"format\":\"torchlean.ir.v1\",\"input_id\":0,\"output_ids\":[5],\"nodes\":["
    "{\"id\":0,\"kind\":\"input\",\"parents\":[],\"shape\":[1,6]},"
    "{\"id\":1,\"kind\":\"linear\",\"parents\":[0],\"shape\":[1,8],\"in_dim\":6,\"out_dim\":8,"
    "\"weight\":[[0.1,0.2,-0.3,0.4,0.5,0.6],[0.5,-0.6,0.7,0.8,-0.1,0.2],[-0.9,1.0,0.1,0.2,0.3,0.4],"
    "[0.3,0.4,0.5,-0.6,0.7,-0.8],[0.7,0.8,-0.9,1.0,0.1,0.1],[0.2,-0.1,0.3,0.5,-0.5,0.2],"
    "[0.6,0.1,-0.2,0.3,0.9,-0.4],[-0.3,0.2,0.8,-0.7,0.1,0.6]],"
    "\"bias\":[0.01,-0.02,0.03,0.04,-0.05,0.06,0.07,-0.08]},"
    "{\"id\":2,\"kind\":\"tanh\",\"parents\":[1],\"shape\":[1,8]},"
    "{\"id\":3,\"kind\":\"linear\",\"parents\":[2],\"shape\":[1,4],\"in_dim\":8,\"out_dim\":4,"
    "\"weight\":[[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8],[-0.1,-0.2,0.3,0.4,-0.5,0.6,-0.7,0.8],"
    "[0.5,0.1,-0.3,0.2,0.2,-0.6,0.4,0.1],[0.9,-0.9,0.8,-0.8,0.7,-0.7,0.6,-0.6]],"
    "\"bias\":[0.1,0.2,0.3,0.4]},"
    "{\"id\":4,\"kind\":\"reshape\",\"parents\":[3],\"shape\":[4,1],\"in_shape\":[1,4],\"out_shape\":[4,1]},"
    "{\"id\":5,\"kind\":\"softmax\",\"parents\":[4],\"shape\":[4,1],\"axis\":0}]}";

/* x[1, 2, 6, 6] -> conv 3x3 (2 -> 3, pad 1) -> relu -> max_pool 2 -> reduce_mean over [2, 3] */
static const char *G_CNN =
    "{\"format\":\"torchlean.ir.v1\",\"input_id\":0,\"output_ids\":[4],\"nodes\":["
    "{\"id\":0,\"kind\":\"input\",\"parents\":[],\"shape\":[1,2,6,6]},"
    "{\"id\":1,\"kind\":\"conv\",\"parents\":[0],\"shape\":[1,3,6,6],\"spatial_rank\":2,\"kernel\":[3,3],"
    "\"stride\":[1,1],\"padding\":[1,1],\"channel_axis\":1,\"in_channels\":2,\"out_channels\":3,"
    "\"weight\":[[[[0.1,0.2,0.3],[0.4,0.5,0.6],[0.7,0.8,0.9]],[[-0.1,0.2,-0.3],[0.4,-0.5,0.6],[-0.7,0.8,-0.9]]],"
    "[[[0.3,0.1,0.2],[0.1,0.1,0.1],[0.2,0.2,0.2]],[[0.5,-0.5,0.5],[-0.5,0.5,-0.5],[0.5,-0.5,0.5]]],"
    "[[[0.0,0.1,0.0],[0.1,-0.4,0.1],[0.0,0.1,0.0]],[[0.2,0.3,0.1],[0.3,0.2,0.1],[0.1,0.3,0.2]]]],"
    "\"bias\":[0.1,-0.1,0.05]},"
    "{\"id\":2,\"kind\":\"relu\",\"parents\":[1],\"shape\":[1,3,6,6]},"
    "{\"id\":3,\"kind\":\"max_pool\",\"parents\":[2],\"shape\":[1,3,3,3],\"spatial_rank\":2,"
    "\"kernel\":[2,2],\"stride\":[2,2],\"padding\":[0,0]},"
    "{\"id\":4,\"kind\":\"reduce_mean\",\"parents\":[3],\"shape\":[1,3],\"axes\":[2,3],\"keepdim\":false}]}";

typedef struct model_case {
    const char *json;
    tl_model *m;
    tl_shape in;
    int64_t n_in, n_out;
    float x[72];
    float ref[16];
} model_case;

static model_case CASES[2];

typedef struct job {
    model_case *mc[2]; /* the models this thread runs (one or two) */
    int n_models;
    int bad;
    tl_session *pre; /* case 3: a session planned by the main thread (mc[0]'s model), or NULL */
    float ref[16];   /* case 3: its reference output */
} job;

static int run_once(tl_session *s, model_case *mc, int *bad) {
    tl_err err = {0};
    if (tl_session_run(s, mc->x, &err)) {
        fprintf(stderr, "run: %s\n", err.msg);
        return -1;
    }
    tl_shape ys;
    const float *y = tl_session_output(s, 0, &ys);
    if (memcmp(y, mc->ref, sizeof(float) * (size_t)mc->n_out) != 0) (*bad)++;
    return 0;
}

static void *worker_pre(void *arg) {
    job *j = arg;
    tl_err err = {0};
    for (int r = 0; r < RUNS; r++) {
        if (tl_session_run(j->pre, j->mc[0]->x, &err)) {
            j->bad++;
            continue;
        }
        tl_shape ys;
        const float *y = tl_session_output(j->pre, 0, &ys);
        if (memcmp(y, j->ref, sizeof(float) * (size_t)j->mc[0]->n_out) != 0) j->bad++;
    }
    return NULL;
}

static void *worker(void *arg) {
    job *j = arg;
    if (j->pre) return worker_pre(arg);
    tl_session *s[2] = {NULL, NULL};
    tl_err err = {0};
    for (int k = 0; k < j->n_models; k++)
        if (tl_session_new(j->mc[k]->m, &j->mc[k]->in, 0, &s[k], &err)) {
            fprintf(stderr, "session: %s\n", err.msg);
            j->bad++;
        }
    for (int r = 0; r < RUNS; r++)
        for (int k = 0; k < j->n_models; k++)
            if (s[k] && run_once(s[k], j->mc[k], &j->bad)) j->bad++;
    for (int k = 0; k < j->n_models; k++) tl_session_free(s[k]);
    return NULL;
}

static void load_case(model_case *mc, const char *json) {
    tl_err err = {0};
    tl_graph *g = NULL;
    if (tl_graph_parse_json(json, strlen(json), "t.json", &g, &err) || tl_params_check_complete(g, "t.json", &err) ||
        tl_model_from_graph(g, &mc->m, &err)) {
        fprintf(stderr, "load: %s\n", err.msg);
        exit(1);
    }
    mc->in = g->nodes[g->input_id].shape;
    mc->n_in = tl_shape_numel(&mc->in);
    unsigned seed = 7;
    for (int64_t i = 0; i < mc->n_in; i++) {
        seed = seed * 1664525u + 1013904223u;
        mc->x[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
    tl_session *s = NULL;
    if (tl_session_new(mc->m, &mc->in, 0, &s, &err) || tl_session_run(s, mc->x, &err)) {
        fprintf(stderr, "reference: %s\n", err.msg);
        exit(1);
    }
    tl_shape ys;
    const float *y = tl_session_output(s, 0, &ys);
    mc->n_out = tl_shape_numel(&ys);
    memcpy(mc->ref, y, sizeof(float) * (size_t)mc->n_out);
    tl_session_free(s);
}

static void run_threads(job *jobs, const char *what) {
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, worker, &jobs[t]);
    int bad = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        bad += jobs[t].bad;
    }
    if (bad) {
        fprintf(stderr, "%s: %d mismatching or failed runs\n", what, bad);
        failures++;
    }
}

/* 4. tl_set_threads is process-wide: a thread that never called it sees the count of the one that
 * did (OpenMP's own count is per thread; tlrt's regions and GEMMs ask for tl_get_threads()) */
static void *read_threads(void *arg) {
    *(int *)arg = tl_get_threads();
    return NULL;
}

static void check_threads_global(int n) {
    tl_set_threads(n);
    int seen = -1;
    pthread_t th;
    if (pthread_create(&th, NULL, read_threads, &seen) || pthread_join(th, NULL)) {
        fprintf(stderr, "FAIL thread count: pthread\n");
        failures++;
        return;
    }
    if (seen != n) {
        fprintf(stderr, "FAIL thread count: set %d on the main thread, another thread sees %d\n", n, seen);
        failures++;
    }
}

int main(void) {
    check_threads_global(3);
    check_threads_global(1); /* process-global: set once before any session exists */
    load_case(&CASES[0], G_MLP);
    load_case(&CASES[1], G_CNN);
    job jobs[THREADS];
    /* 1. one model, a session per thread */
    for (int t = 0; t < THREADS; t++) jobs[t] = (job){{&CASES[0], NULL}, 1, 0, NULL, {0}};
    run_threads(jobs, "shared model");
    /* 2. several models, one session of each per thread */
    for (int t = 0; t < THREADS; t++) jobs[t] = (job){{&CASES[t % 2], &CASES[(t + 1) % 2]}, 2, 0, NULL, {0}};
    run_threads(jobs, "several models");
    /* 3. sessions of one model under different ISAs, planned here, run concurrently */
    tl_isa best = tl_kernels_best_isa();
    for (int t = 0; t < THREADS; t++) {
        tl_isa isa = (tl_isa)(t % TL_ISA_COUNT);
        if (!tl_isa_supported(isa)) isa = TL_ISA_SCALAR;
        tl_kernels_set_isa(isa);
        model_case *mc = &CASES[1]; /* the conv model: direct conv and pooling kernels per ISA */
        jobs[t] = (job){{mc, NULL}, 1, 0, NULL, {0}};
        tl_err err = {0};
        if (tl_session_new(mc->m, &mc->in, 0, &jobs[t].pre, &err) || tl_session_run(jobs[t].pre, mc->x, &err)) {
            fprintf(stderr, "isa %s: %s\n", tl_isa_name(isa), err.msg);
            return 1;
        }
        tl_shape ys;
        memcpy(jobs[t].ref, tl_session_output(jobs[t].pre, 0, &ys), sizeof(float) * (size_t)mc->n_out);
    }
    tl_kernels_set_isa(best); /* after planning: the sessions keep the table they were planned with */
    run_threads(jobs, "sessions of several ISAs");
    for (int t = 0; t < THREADS; t++) tl_session_free(jobs[t].pre);
    tl_model_free(CASES[0].m);
    tl_model_free(CASES[1].m);
    printf("%d passed, %d failed\n", 4 - failures, failures);
    return failures ? 1 : 0;
}
