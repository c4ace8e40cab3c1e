/* tl_blas.c - sgemm through OpenBLAS, loaded with dlopen at first use (never linked), and the
 * thread-count controls.
 *
 * Why dlopen: OpenBLAS picks its kernels (its "core type") when the library loads. Debian's
 * OpenBLAS 0.3.21 does not know recent CPUs (Zen 5 reads as Haswell, a KVM Sapphire/Emerald Rapids
 * guest as Prescott) and runs sgemm at a fraction of the speed its SkylakeX (AVX-512) kernels
 * reach. The core type can only be chosen through the OPENBLAS_CORETYPE environment variable
 * before the library is loaded, so tlrt loads it itself, after deciding:
 *   1. TL_BLAS_CORETYPE set       -> OPENBLAS_CORETYPE = that (the user forces a core);
 *   2. else OPENBLAS_CORETYPE set -> left alone (a user-set value always wins);
 *   3. else CPU has AVX-512 F+BW+DQ+VL (with OS support) -> OPENBLAS_CORETYPE = SkylakeX;
 *   4. else OpenBLAS detects the core itself.
 * If the library cannot be loaded, a built-in blocked sgemm is used; tl_blas_info says which. */
#include <dlfcn.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tl_kernels_internal.h"

#ifndef TL_OPENBLAS_PATH
#define TL_OPENBLAS_PATH "libopenblas.so.0"
#endif
/* The OpenMP build of OpenBLAS (Debian libopenblas0-openmp), preferred when installed. tlrt
 * keeps OpenBLAS at one thread (its GEMMs are split over tlrt's pool), so either build works;
 * the OpenMP one is kept because its single-threaded calls never start a thread of its own,
 * where the pthread build's server threads idle next to the pool's (at 2 threads, before the
 * pool, cnn_large batch 1 went from 2.4 ms at 1 thread to 16-24 ms). */
#ifndef TL_OPENBLAS_OPENMP_PATH
#define TL_OPENBLAS_OPENMP_PATH "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0"
#endif

/* tl_sgemm uses the direct kernel up to this M*N*K when OpenBLAS has no small-matrix kernels for
 * its core (measured: docs/kernels.md). */
#ifndef TL_SGEMM_SMALL_MNK
#define TL_SGEMM_SMALL_MNK ((int64_t)65536)
#endif

enum { TL_CBLAS_ROW_MAJOR = 101, TL_CBLAS_NO_TRANS = 111, TL_CBLAS_TRANS = 112 };
typedef void (*tl_cblas_sgemm_fn)(int order, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                                  int lda, const float *B, int ldb, float beta, float *C, int ldc);
typedef void (*tl_cblas_sgemv_fn)(int order, int trans, int M, int N, float alpha, const float *A, int lda,
                                  const float *X, int incx, float beta, float *Y, int incy);
typedef void (*tl_set_threads_fn)(int n);
typedef char *(*tl_get_str_fn)(void);
typedef int (*tl_get_int_fn)(void);

static struct {
    void *handle;
    tl_cblas_sgemm_fn sgemm;
    tl_cblas_sgemv_fn sgemv;
    int64_t small_mnk; /* tl_sgemm's direct kernel up to this M*N*K */
    tl_set_threads_fn set_threads;
    char info[512];
} tl_blas;

static pthread_once_t tl_blas_once = PTHREAD_ONCE_INIT;

/* dlsym returns an object pointer; ISO C has no conversion from it to a function pointer
 * (-Wpedantic), POSIX guarantees the representation is the same, so copy the bits. */
static void (*tl_dlsym_fn(void *h, const char *name))(void) {
    void *p = dlsym(h, name);
    void (*f)(void) = NULL;
    _Static_assert(sizeof p == sizeof f, "function and object pointers have the same size");
    memcpy(&f, &p, sizeof f);
    return f;
}

static void tl_blas_load(void) {
    char why[160];
    tl_blas.small_mnk = INT64_MAX; /* OpenBLAS not loaded: the direct kernel beats the built-in */
    const char *force = getenv("TL_BLAS_CORETYPE");
    const char *user = getenv("OPENBLAS_CORETYPE");
    if (force && *force) {
        setenv("OPENBLAS_CORETYPE", force, 1);
        snprintf(why, sizeof why, "OPENBLAS_CORETYPE=%s from TL_BLAS_CORETYPE", force);
    } else if (user && *user) {
        snprintf(why, sizeof why, "OPENBLAS_CORETYPE=%s from the environment", user);
    } else if (tl_cpu_detect().avx512) {
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
        snprintf(why, sizeof why, "OPENBLAS_CORETYPE set by tlrt");
    } else {
        snprintf(why, sizeof why, "core type detected by OpenBLAS");
    }

    const char *path = getenv("TL_OPENBLAS_LIB"); /* override (tests, other installs) */
    if (!path || !*path)
        path = access(TL_OPENBLAS_OPENMP_PATH, R_OK) == 0 ? TL_OPENBLAS_OPENMP_PATH : TL_OPENBLAS_PATH;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    tl_cblas_sgemm_fn sg = h ? (tl_cblas_sgemm_fn)tl_dlsym_fn(h, "cblas_sgemm") : NULL;
    if (!h || !sg) {
        const char *e = dlerror();
        snprintf(tl_blas.info, sizeof tl_blas.info, "built-in blocked sgemm (OpenBLAS not loaded: %s)",
                 e ? e : "cblas_sgemm missing");
        if (h) dlclose(h);
        return;
    }
    tl_blas.handle = h;
    tl_blas.sgemm = sg;
    tl_blas.sgemv = (tl_cblas_sgemv_fn)tl_dlsym_fn(h, "cblas_sgemv");
    tl_blas.set_threads = (tl_set_threads_fn)tl_dlsym_fn(h, "openblas_set_num_threads");
    tl_get_str_fn cfg = (tl_get_str_fn)tl_dlsym_fn(h, "openblas_get_config");
    tl_get_str_fn core = (tl_get_str_fn)tl_dlsym_fn(h, "openblas_get_corename");
    /* "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ..." -> "OpenBLAS 0.3.21" */
    char ver[64] = "OpenBLAS";
    if (cfg && cfg()) {
        const char *c = cfg();
        const char *sp = strchr(c, ' ');
        if (sp) sp = strchr(sp + 1, ' ');
        size_t len = sp ? (size_t)(sp - c) : strlen(c);
        if (len >= sizeof ver) len = sizeof ver - 1;
        memcpy(ver, c, len);
        ver[len] = 0;
    }
    const char *cn = core && core() ? core() : "unknown-core";
    /* openblas_get_parallel: 0 sequential, 1 pthreads, 2 OpenMP */
    tl_get_int_fn par = (tl_get_int_fn)tl_dlsym_fn(h, "openblas_get_parallel");
    int pv = par ? par() : -1;
    snprintf(tl_blas.info, sizeof tl_blas.info, "%s %s (%s) [%s build]", ver, cn, why,
             pv == 2       ? "openmp"
                 : pv == 1 ? "pthread"
                 : pv == 0 ? "sequential"
                           : "unknown");
    /* OpenBLAS's AVX-512 cores have SMALL_MATRIX_OPT sgemm kernels (no packing for small
     * problems) that beat tlrt's direct kernel at every size measured; its other cores pack
     * every operand, and there the direct kernel wins below TL_SGEMM_SMALL_MNK. */
    bool small_opt = strstr(cn, "SkylakeX") || strstr(cn, "Cooperlake") || strstr(cn, "SapphireRapids");
    tl_blas.small_mnk = small_opt ? 0 : TL_SGEMM_SMALL_MNK;
    /* OpenBLAS always runs on the calling thread: tlrt splits every large GEMM over its own pool
     * (tl_gemm_split below), and each call runs with the caller's OpenMP count at 1
     * (TL_BLAS_ONE_THREAD), so the OpenMP build never forks a team. */
    if (tl_blas.set_threads) tl_blas.set_threads(1);
}

static void tl_blas_init(void) { pthread_once(&tl_blas_once, tl_blas_load); }

const char *tl_blas_info(void) {
    tl_blas_init();
    return tl_blas.info;
}

/* The thread count of tl_set_threads, for every thread of the process (0: never set, then the
 * OpenMP default). OpenMP's own count (omp_set_num_threads) is per thread: a session run from a
 * thread other than the one that called tl_set_threads would otherwise use that thread's
 * default. The worker pool (tl_pool.c) and every remaining OpenMP loop ask tl_get_threads(). */
static _Atomic int tl_threads_set;

void tl_set_threads(int n) {
    if (n < 1) n = 1;
    atomic_store(&tl_threads_set, n);
    omp_set_num_threads(n);
}

int tl_get_threads(void) {
    int n = atomic_load(&tl_threads_set);
    return n > 0 ? n : omp_get_max_threads();
}

/* ---- built-in fallback: blocked, op(B) panels packed on the stack ---- */

#define TL_GEMM_KB 64
#define TL_GEMM_NB 256

void tl_sgemm_builtin(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                      int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f) memset(c, 0, (size_t)N * sizeof(float));
        else if (beta != 1.0f)
            for (int64_t j = 0; j < N; j++) c[j] *= beta;
    }
    if (K <= 0 || alpha == 0.0f) return;
    int64_t nblk = (N + TL_GEMM_NB - 1) / TL_GEMM_NB;
    TL_PFOR(M * N * K > TL_PAR_MIN * 16 && nblk > 1, jb, nblk, {
        float bp[TL_GEMM_KB * TL_GEMM_NB];
        int64_t j0 = jb * TL_GEMM_NB, nb = N - j0 < TL_GEMM_NB ? N - j0 : TL_GEMM_NB;
        for (int64_t k0 = 0; k0 < K; k0 += TL_GEMM_KB) {
            int64_t kb = K - k0 < TL_GEMM_KB ? K - k0 : TL_GEMM_KB;
            for (int64_t k = 0; k < kb; k++)
                for (int64_t j = 0; j < nb; j++)
                    bp[k * nb + j] = trans_b ? B[(j0 + j) * ldb + k0 + k] : B[(k0 + k) * ldb + j0 + j];
            for (int64_t i = 0; i < M; i++) {
                float *c = C + i * ldc + j0;
                for (int64_t k = 0; k < kb; k++) {
                    float a = alpha * (trans_a ? A[(k0 + k) * lda + i] : A[i * lda + k0 + k]);
                    const float *b = bp + k * nb;
                    for (int64_t j = 0; j < nb; j++) c[j] += a * b[j];
                }
            }
        }
    });
}

/* ---- one GEMM over the pool ----
 * A GEMM of at least TL_SGEMM_PAR_MNK multiply-adds is cut along its larger output dimension
 * (N when N >= M, else M) into one contiguous part per thread, in units of 16 rows / columns,
 * and each part is one single-threaded OpenBLAS call. The K loop of every output element is
 * OpenBLAS's own and is never split, so the parts compute the same dot products as one call. */
typedef struct tl_gemm_job {
    bool dbl, ta, tb;
    int64_t M, N, K, lda, ldb, ldc;
    double alpha, beta;
    const void *A, *B;
    void *C;
} tl_gemm_job;

typedef void (*tl_cblas_dgemm_fn)(int order, int ta, int tb, int M, int N, int K, double alpha, const double *A,
                                  int lda, const double *B, int ldb, double beta, double *C, int ldc);
static tl_cblas_dgemm_fn tl_blas_dgemm;

#define TL_GEMM_UNIT 16

/* OpenBLAS's OpenMP build sizes every call by the calling thread's omp_get_max_threads() (and
 * resets its own count to it), whatever openblas_set_num_threads said: each call runs with this
 * thread's count at 1, so it never forks a team (pool workers keep 1 for good). */
#define TL_BLAS_ONE_THREAD(CALL) \
    do { \
        int cur_ = omp_get_max_threads(); \
        if (cur_ != 1) omp_set_num_threads(1); \
        CALL; \
        if (cur_ != 1) omp_set_num_threads(cur_); \
    } while (0)

static void tl_gemm_call(const tl_gemm_job *j, int64_t i0, int64_t m, int64_t j0, int64_t n) {
    int64_t ao = j->ta ? i0 : i0 * j->lda, bo = j->tb ? j0 * j->ldb : j0, co = i0 * j->ldc + j0;
    int ta = j->ta ? TL_CBLAS_TRANS : TL_CBLAS_NO_TRANS, tb = j->tb ? TL_CBLAS_TRANS : TL_CBLAS_NO_TRANS;
    if (j->dbl)
        TL_BLAS_ONE_THREAD(tl_blas_dgemm(TL_CBLAS_ROW_MAJOR, ta, tb, (int)m, (int)n, (int)j->K, j->alpha,
                                         (const double *)j->A + ao, (int)j->lda, (const double *)j->B + bo,
                                         (int)j->ldb, j->beta, (double *)j->C + co, (int)j->ldc));
    else
        TL_BLAS_ONE_THREAD(tl_blas.sgemm(TL_CBLAS_ROW_MAJOR, ta, tb, (int)m, (int)n, (int)j->K, (float)j->alpha,
                                         (const float *)j->A + ao, (int)j->lda, (const float *)j->B + bo, (int)j->ldb,
                                         (float)j->beta, (float *)j->C + co, (int)j->ldc));
}

static void tl_gemm_part(void *ctx, int64_t u0, int64_t u1) {
    const tl_gemm_job *j = ctx;
    bool by_n = j->N >= j->M;
    int64_t dim = by_n ? j->N : j->M, lo = u0 * TL_GEMM_UNIT, hi = u1 * TL_GEMM_UNIT < dim ? u1 * TL_GEMM_UNIT : dim;
    if (by_n) tl_gemm_call(j, 0, j->M, lo, hi - lo);
    else tl_gemm_call(j, lo, hi - lo, 0, j->N);
}

static void tl_gemm_split(tl_gemm_job *j) {
    int64_t dim = j->N >= j->M ? j->N : j->M, units = (dim + TL_GEMM_UNIT - 1) / TL_GEMM_UNIT;
    if (j->M * j->N * j->K < TL_SGEMM_PAR_MNK || tl_pool_threads(units) < 2) {
        tl_gemm_call(j, 0, j->M, 0, j->N);
        return;
    }
    tl_pool_for(units, tl_gemm_part, j);
}

/* The direct kernel of the active table (NULL for the scalar table). */
static tl_sgemm_fn tl_sgemm_small_fn(void) {
#ifdef TL_KERNELS_X86
    const tl_kernel_table *t = tl_kernels();
    if (t == &tl_kernels_avx512_table) return tl_avx512_sgemm_small;
    if (t == &tl_kernels_avx2_table) return tl_avx2_sgemm_small;
#endif
    return NULL;
}

/* M == 1 or N == 1 as one cblas_sgemv (OpenBLAS 0.3.21's sgemm packs the whole op(B) even for
 * one row). beta == 0: y is zeroed first so that NaN in C never propagates. */
static void tl_sgemm_as_gemv(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                             int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M == 1) { /* C[0, :] = alpha * op(B)^T x + beta C, x = op(A)[0, :] */
        if (beta == 0.0f) memset(C, 0, (size_t)N * sizeof(float));
        int incx = trans_a ? (int)lda : 1;
        if (trans_b) /* B is [N, K] */
            TL_BLAS_ONE_THREAD(tl_blas.sgemv(TL_CBLAS_ROW_MAJOR, TL_CBLAS_NO_TRANS, (int)N, (int)K, alpha, B,
                                             (int)ldb, A, incx, beta, C, 1));
        else /* B is [K, N] */
            TL_BLAS_ONE_THREAD(tl_blas.sgemv(TL_CBLAS_ROW_MAJOR, TL_CBLAS_TRANS, (int)K, (int)N, alpha, B, (int)ldb,
                                             A, incx, beta, C, 1));
    } else { /* N == 1: C[:, 0] = alpha * op(A) x + beta C, x = op(B)[:, 0] */
        if (beta == 0.0f)
            for (int64_t i = 0; i < M; i++) C[i * ldc] = 0.0f;
        int incx = trans_b ? 1 : (int)ldb;
        if (trans_a) /* A is [K, M] */
            TL_BLAS_ONE_THREAD(tl_blas.sgemv(TL_CBLAS_ROW_MAJOR, TL_CBLAS_TRANS, (int)K, (int)M, alpha, A, (int)lda,
                                             B, incx, beta, C, (int)ldc));
        else /* A is [M, K] */
            TL_BLAS_ONE_THREAD(tl_blas.sgemv(TL_CBLAS_ROW_MAJOR, TL_CBLAS_NO_TRANS, (int)M, (int)K, alpha, A,
                                             (int)lda, B, incx, beta, C, (int)ldc));
    }
}

void tl_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    tl_blas_init();
    /* small problems: the direct kernel (no packing, no library call). With trans_b it is a
     * dot-product kernel, a win only for one row. */
    if (!(trans_a && trans_b) && (!trans_b || M == 1 || !tl_blas.sgemm) && M * N * K <= tl_blas.small_mnk) {
        tl_sgemm_fn small = tl_sgemm_small_fn();
        if (small) {
            small(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            return;
        }
    }
    const int64_t lim = 0x7fffffff;
    bool fits = K > 0 && M <= lim && N <= lim && K <= lim && lda <= lim && ldb <= lim && ldc <= lim;
    if (fits && tl_blas.sgemv && (M == 1 || N == 1)) {
        tl_sgemm_as_gemv(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (tl_blas.sgemm && fits) {
        tl_gemm_job j = {false, trans_a, trans_b, M, N, K, lda, ldb, ldc, (double)alpha, (double)beta, A, B, C};
        tl_gemm_split(&j);
        return;
    }
    tl_sgemm_builtin(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ---- float64: dgemm (a float64 session's linear / matmul / conv) ---- */
#include "tl_kernels_f64.h"

static pthread_once_t tl_dgemm_once = PTHREAD_ONCE_INIT;
static void tl_dgemm_load(void) {
    tl_blas_init();
    if (tl_blas.handle) tl_blas_dgemm = (tl_cblas_dgemm_fn)tl_dlsym_fn(tl_blas.handle, "cblas_dgemm");
}

/* Each C[i][j] = beta * C[i][j] + alpha * (sum over k left to right from 0 of a_ik * b_kj). */
void tl_dgemm_builtin(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double *A,
                      int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc) {
    TL_PFOR(M > 1 && M * N * K > TL_PAR_MIN, i, M, {
        for (int64_t j = 0; j < N; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < K; k++)
                s += (trans_a ? A[k * lda + i] : A[i * lda + k]) * (trans_b ? B[j * ldb + k] : B[k * ldb + j]);
            double *c = &C[i * ldc + j];
            *c = (beta == 0.0 ? 0.0 : beta * *c) + (alpha == 1.0 ? s : alpha * s);
        }
    });
}

void tl_dgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double *A, int64_t lda,
              const double *B, int64_t ldb, double beta, double *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    pthread_once(&tl_dgemm_once, tl_dgemm_load);
    const int64_t lim = 0x7fffffff;
    bool fits = K > 0 && M <= lim && N <= lim && K <= lim && lda <= lim && ldb <= lim && ldc <= lim;
    if (tl_blas_dgemm && fits) {
        tl_gemm_job j = {true, trans_a, trans_b, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C};
        tl_gemm_split(&j);
        return;
    }
    tl_dgemm_builtin(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
