/* test_pool.c - the worker pool (kernels/tl_pool.h) and what is split over it (kernels/tl_par.h,
 * tl_sgemm / tl_dgemm):
 *   1. tl_pool_for calls every index exactly once, in the static parts the header documents, at
 *      1-4 threads, hot and cold;
 *   2. a call from inside a part (nested) runs serially on the calling thread;
 *   3. several application threads calling at once: one holds the pool, the others run serially,
 *      every index still exactly once (scripts/test.sh also runs this under ThreadSanitizer);
 *   4. every tl_par wrapper, at odd sizes with tails and in place, is bitwise the table kernel
 *      called directly, at 1 and 2 threads;
 *   5. split GEMMs (both split directions, every transpose) are bitwise the 1-thread GEMM and
 *      within the recursive-summation bound of a float64 product;
 *   6. a forked child (no workers copied) still runs its jobs. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tl_check.h"
#include "tl_kernels.h"
#include "tl_kernels_f64.h"
#include "tl_par.h"
#include "tl_pool.h"
#include "tlrt/tl_cpu.h"

enum { MAXN = 5000 };

typedef struct cover {
    _Atomic int hits[MAXN];
    _Atomic int bad_part; /* a range that is not one of the documented static parts */
    _Atomic int nested_parallel;
    int64_t n;
    int nt;
    bool nest;
} cover;

static void cover_fn(void *c, int64_t lo, int64_t hi) {
    cover *v = c;
    bool part = false;
    for (int t = 0; t < v->nt && !part; t++) part = lo == v->n * t / v->nt && hi == v->n * (t + 1) / v->nt;
    if (!part && v->nt > 1) atomic_fetch_add(&v->bad_part, 1);
    if (!tl_pool_in_job() && v->nt > 1) atomic_fetch_add(&v->bad_part, 1);
    for (int64_t i = lo; i < hi; i++) atomic_fetch_add(&v->hits[i], 1);
    if (v->nest) { /* a nested call: serial, so its one range is the whole */
        cover *inner = calloc(1, sizeof *inner);
        inner->n = 7;
        inner->nt = 1;
        tl_pool_for(7, cover_fn, inner);
        for (int i = 0; i < 7; i++)
            if (atomic_load(&inner->hits[i]) != 1) atomic_fetch_add(&v->nested_parallel, 1);
        free(inner);
    }
}

static bool all_once(cover *v) {
    for (int64_t i = 0; i < v->n; i++)
        if (atomic_load(&v->hits[i]) != 1) return false;
    return true;
}

static void test_cover(void) {
    static const int64_t ns[] = {1, 2, 3, 7, 100, 1001, MAXN};
    for (int t = 1; t <= 4; t++) {
        tl_set_threads(t);
        for (int hot = 0; hot < 2; hot++) {
            if (hot) tl_pool_hot_begin();
            for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
                cover *v = calloc(1, sizeof *v);
                v->n = ns[k];
                v->nt = tl_pool_threads(ns[k]);
                CHECK(v->nt == (ns[k] < t ? (int)ns[k] : t));
                v->nest = k == 3;
                tl_pool_for(ns[k], cover_fn, v);
                CHECK(all_once(v));
                CHECK(atomic_load(&v->bad_part) == 0);
                CHECK(atomic_load(&v->nested_parallel) == 0);
                free(v);
            }
            if (hot) tl_pool_hot_end();
        }
    }
    CHECK(!tl_pool_is_hot());
    CHECK(!tl_pool_in_job());
}

/* ---- 3. concurrent callers ---- */
static void *caller(void *arg) {
    cover *v = arg;
    for (int r = 0; r < 20; r++) {
        for (int64_t i = 0; i < v->n; i++) atomic_store(&v->hits[i], 0);
        tl_pool_hot_begin();
        tl_pool_for(v->n, cover_fn, v);
        tl_pool_hot_end();
        if (!all_once(v)) atomic_fetch_add(&v->nested_parallel, 1);
    }
    return NULL;
}

static void test_concurrent(void) {
    tl_set_threads(2);
    pthread_t th[3];
    cover *v[3];
    for (int i = 0; i < 3; i++) {
        v[i] = calloc(1, sizeof *v[i]);
        v[i]->n = 999 + i;
        v[i]->nt = 1; /* parts are not checked: a caller may have run serially */
        pthread_create(&th[i], NULL, caller, v[i]);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        CHECK(atomic_load(&v[i]->nested_parallel) == 0);
        free(v[i]);
    }
}

/* ---- 4. the wrappers ---- */
static float *rnd(int64_t n, unsigned seed) {
    float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((int)(seed >> 9) % 20001 - 10000) / 2500.0f;
    }
    return p;
}

static bool same(const float *a, const float *b, int64_t n) { return memcmp(a, b, sizeof(float) * (size_t)n) == 0; }

static void test_wrappers(void) {
    const tl_kernel_table *K = tl_kernels();
    const int64_t n = 3 * 65536 + 4099; /* several pool parts, a tail in the last block */
    float *a = rnd(n, 1), *b = rnd(n, 2), *ref = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
    for (int t = 1; t <= 2; t++) {
        tl_set_threads(t);
        tl_pool_hot_begin();
        K->unary_fn[TL_U_TANH](a, ref, n);
        tl_par_unary(K->unary_fn[TL_U_TANH], a, got, n);
        CHECK(same(ref, got, n));
        memcpy(got, a, sizeof(float) * n); /* in place */
        tl_par_unary(K->unary_fn[TL_U_TANH], got, got, n);
        CHECK(same(ref, got, n));
        K->binary_fn[TL_B_MUL](a, b, ref, n);
        tl_par_binary(K->binary_fn[TL_B_MUL], a, b, got, n);
        CHECK(same(ref, got, n));
        K->add_clamp(a, b, ref, n, 0.0f, 6.0f);
        tl_par_add_clamp(K, a, b, got, n, 0.0f, 6.0f);
        CHECK(same(ref, got, n));
        memcpy(ref, a, sizeof(float) * n);
        memcpy(got, a, sizeof(float) * n);
        K->leaky(ref, n, 0.01f);
        tl_par_leaky(K, got, n, 0.01f);
        CHECK(same(ref, got, n));
        /* rows: [rows][cols] with an odd width */
        int64_t rows = 1000, cols = 197;
        K->softmax(a, ref, rows, cols, 1);
        tl_par_softmax(K, a, got, rows, cols, 1);
        CHECK(same(ref, got, rows * cols));
        K->softmax(a, ref, 37, 19, 101); /* over a middle axis */
        tl_par_softmax(K, a, got, 37, 19, 101);
        CHECK(same(ref, got, 37 * 19 * 101));
        K->layernorm(a, ref, rows, cols, b, b + cols, 1e-5f);
        tl_par_layernorm(K, a, got, rows, cols, b, b + cols, 1e-5f);
        CHECK(same(ref, got, rows * cols));
        K->channel_affine(a, ref, 3, 37, 1025, b, b + 37);
        tl_par_channel_affine(K, a, got, 3, 37, 1025, b, b + 37);
        CHECK(same(ref, got, 3 * 37 * 1025));
        K->channel_affine(a, ref, 1, 301, 601, b, b + 301); /* batch 1: split over channels */
        tl_par_channel_affine(K, a, got, 1, 301, 601, b, b + 301);
        CHECK(same(ref, got, 301 * 601));
        memcpy(ref, a, sizeof(float) * rows * cols);
        memcpy(got, a, sizeof(float) * rows * cols);
        K->bias_clamp_rows(ref, b, rows, cols, -1.0f, 1.0f);
        tl_par_bias_clamp_rows(K, got, b, rows, cols, -1.0f, 1.0f);
        CHECK(same(ref, got, rows * cols));
        K->add_bias_rows(ref, b, rows, cols);
        tl_par_add_bias_rows(K, got, b, rows, cols);
        CHECK(same(ref, got, rows * cols));
        /* pooling: 3x3 / 2 with padding over 60 planes of 57x57 */
        tl_window w = {.rank = 2,
                       .in = {57, 57},
                       .out = {29, 29},
                       .kernel = {3, 3},
                       .stride = {2, 2},
                       .pad = {1, 1},
                       .pad_after = {1, 1},
                       .dilation = {1, 1}};
        for (int mx = 0; mx < 2; mx++) {
            (mx ? K->max_pool : K->avg_pool)(a, ref, 60, &w);
            tl_par_pool(K, mx, a, got, 60, &w);
            CHECK(same(ref, got, 60 * 29 * 29));
        }
        /* packed GEMM: 1000 rows (not a multiple of the 24-row parts), 200 x 150 */
        int64_t M = 1000, N = 200, Kd = 150;
        float *packed = malloc(sizeof(float) * K->gemm_pack_floats(N, Kd));
        K->gemm_pack(b, N, Kd, packed);
        float *res = rnd(M * N, 7);
        K->gemm_packed(a, M, N, Kd, packed, b + 5, res, 0.0f, INFINITY, ref);
        tl_par_gemm_packed(K, a, M, N, Kd, packed, b + 5, res, 0.0f, INFINITY, got);
        CHECK(same(ref, got, M * N));
        free(packed);
        free(res);
        tl_pool_hot_end();
    }
    free(a);
    free(b);
    free(ref);
    free(got);
}

/* ---- 5. split GEMMs ---- */
static void test_gemm(void) {
    bool skx = strstr(tl_blas_info(), "SkylakeX") != NULL;
    printf("test_gemm: %s (split GEMMs %s)\n", tl_blas_info(), skx ? "bitwise" : "within the bound");
    /* (M, N, K): N-split, M-split, and one below the split size */
    static const int64_t shapes[][3] = {{64, 1031, 77}, {1029, 96, 81}, {33, 65, 40}};
    for (size_t s = 0; s < 3; s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        for (int tr = 0; tr < 4; tr++) {
            bool ta = tr & 1, tb = tr & 2;
            float *A = rnd(M * K, 11 + tr), *B = rnd(K * N, 23 + tr), *C1 = rnd(M * N, 5),
                  *C2 = malloc(sizeof(float) * M * N);
            memcpy(C2, C1, sizeof(float) * M * N);
            int64_t lda = ta ? M : K, ldb = tb ? K : N;
            tl_set_threads(1);
            tl_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.5f, C1, N);
            tl_set_threads(2);
            tl_pool_hot_begin();
            tl_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.5f, C2, N);
            tl_pool_hot_end();
            /* bitwise with OpenBLAS's SkylakeX kernels (tlrt's choice on AVX-512): their dot
             * products do not depend on which rows / columns a call covers; other core types'
             * (OPENBLAS_CORETYPE=Haswell) do, by an ulp: then only the bound below holds */
            if (skx) CHECK(same(C1, C2, M * N));
            /* against a float64 product (C started as rnd(.., 5) for both) */
            float *C0 = rnd(M * N, 5);
            bool ok = true;
            for (int64_t i = 0; i < M && ok; i++)
                for (int64_t j = 0; j < N; j++) {
                    double acc = 0.5 * (double)C0[i * N + j], mag = fabs(acc);
                    for (int64_t k = 0; k < K; k++) {
                        double p = (double)(ta ? A[k * lda + i] : A[i * lda + k]) *
                            (double)(tb ? B[j * ldb + k] : B[k * ldb + j]);
                        acc += p;
                        mag += fabs(p);
                    }
                    if (fabs((double)C2[i * N + j] - acc) > (double)(K + 2) * 0x1p-24 * mag) {
                        ok = false;
                        break;
                    }
                }
            CHECK(ok);
            /* the double GEMM the same way */
            double *dA = malloc(sizeof(double) * M * K), *dB = malloc(sizeof(double) * K * N);
            double *d1 = calloc((size_t)(M * N), sizeof(double)), *d2 = calloc((size_t)(M * N), sizeof(double));
            for (int64_t i = 0; i < M * K; i++) dA[i] = (double)A[i];
            for (int64_t i = 0; i < K * N; i++) dB[i] = (double)B[i];
            tl_set_threads(1);
            tl_dgemm(ta, tb, M, N, K, 1.0, dA, lda, dB, ldb, 0.0, d1, N);
            tl_set_threads(2);
            tl_dgemm(ta, tb, M, N, K, 1.0, dA, lda, dB, ldb, 0.0, d2, N);
            CHECK(memcmp(d1, d2, sizeof(double) * M * N) == 0);
            free(dA);
            free(dB);
            free(d1);
            free(d2);
            free(C0);
            free(A);
            free(B);
            free(C1);
            free(C2);
        }
    }
}

/* ---- 6. fork: the child has no workers; its jobs still run (on the threads it starts) ---- */
static void test_fork(void) {
#if defined(__SANITIZE_THREAD__)
    return; /* ThreadSanitizer does not support threads started after a multi-threaded fork */
#endif
    tl_set_threads(2);
    cover *v = calloc(1, sizeof *v);
    v->n = 100;
    v->nt = 2;
    tl_pool_for(100, cover_fn, v); /* workers exist in the parent */
    CHECK(all_once(v));
    pid_t pid = fork();
    if (pid == 0) {
        cover *w = calloc(1, sizeof *w);
        w->n = 100;
        w->nt = 2;
        tl_pool_for(100, cover_fn, w);
        _exit(all_once(w) && atomic_load(&w->bad_part) == 0 ? 0 : 3);
    }
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(v);
}

int main(void) {
    test_cover();
    test_fork();
    test_concurrent();
    test_wrappers();
    test_gemm();
    tl_set_threads(1);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
