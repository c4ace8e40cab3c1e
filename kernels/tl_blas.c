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

#include "tl_kernels_internal.h"

#ifndef TL_OPENBLAS_PATH
#define TL_OPENBLAS_PATH "libopenblas.so.0"
#endif

enum { TL_CBLAS_ROW_MAJOR = 101, TL_CBLAS_NO_TRANS = 111, TL_CBLAS_TRANS = 112 };
typedef void (*tl_cblas_sgemm_fn)(int order, int ta, int tb, int M, int N, int K, float alpha,
                                  const float *A, int lda, const float *B, int ldb, float beta,
                                  float *C, int ldc);
typedef void (*tl_set_threads_fn)(int n);
typedef char *(*tl_get_str_fn)(void);

static struct {
    void *handle;
    tl_cblas_sgemm_fn sgemm;
    tl_set_threads_fn set_threads;
    char info[512];
} tl_blas;

static atomic_int tl_blas_threads_wanted; /* 0: not set yet */
static pthread_once_t tl_blas_once = PTHREAD_ONCE_INIT;

static void tl_blas_load(void) {
    char why[160];
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
    if (!path || !*path) path = TL_OPENBLAS_PATH;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    tl_cblas_sgemm_fn sg = h ? (tl_cblas_sgemm_fn)dlsym(h, "cblas_sgemm") : NULL;
    if (!h || !sg) {
        const char *e = dlerror();
        snprintf(tl_blas.info, sizeof tl_blas.info,
                 "built-in blocked sgemm (OpenBLAS not loaded: %s)", e ? e : "cblas_sgemm missing");
        if (h) dlclose(h);
        return;
    }
    tl_blas.handle = h;
    tl_blas.sgemm = sg;
    tl_blas.set_threads = (tl_set_threads_fn)dlsym(h, "openblas_set_num_threads");
    tl_get_str_fn cfg = (tl_get_str_fn)dlsym(h, "openblas_get_config");
    tl_get_str_fn core = (tl_get_str_fn)dlsym(h, "openblas_get_corename");
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
    snprintf(tl_blas.info, sizeof tl_blas.info, "%s %s (%s)", ver,
             core && core() ? core() : "unknown-core", why);
    int n = atomic_load(&tl_blas_threads_wanted);
    if (tl_blas.set_threads) tl_blas.set_threads(n > 0 ? n : omp_get_max_threads());
}

static void tl_blas_init(void) { pthread_once(&tl_blas_once, tl_blas_load); }

const char *tl_blas_info(void) {
    tl_blas_init();
    return tl_blas.info;
}

void tl_blas_set_threads(int n) {
    if (n < 1) n = 1;
    atomic_store(&tl_blas_threads_wanted, n);
    tl_blas_init();
    if (tl_blas.set_threads) tl_blas.set_threads(n);
}

void tl_set_threads(int n) {
    if (n < 1) n = 1;
    omp_set_num_threads(n);
    tl_blas_set_threads(n);
}

int tl_get_threads(void) { return omp_get_max_threads(); }

/* ---- built-in fallback: blocked, op(B) panels packed on the stack ---- */

#define TL_GEMM_KB 64
#define TL_GEMM_NB 256

void tl_sgemm_builtin(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                      float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f) memset(c, 0, (size_t)N * sizeof(float));
        else if (beta != 1.0f) for (int64_t j = 0; j < N; j++) c[j] *= beta;
    }
    if (K <= 0 || alpha == 0.0f) return;
    int64_t nblk = (N + TL_GEMM_NB - 1) / TL_GEMM_NB;
#pragma omp parallel for if (M * N * K > TL_PAR_MIN * 16 && nblk > 1) schedule(static)
    for (int64_t jb = 0; jb < nblk; jb++) {
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
    }
}

void tl_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
              int64_t ldc) {
    tl_blas_init();
    const int64_t lim = 0x7fffffff;
    bool fits = M > 0 && N > 0 && K > 0 && M <= lim && N <= lim && K <= lim && lda <= lim &&
                ldb <= lim && ldc <= lim;
    if (tl_blas.sgemm && fits) {
        tl_blas.sgemm(TL_CBLAS_ROW_MAJOR, trans_a ? TL_CBLAS_TRANS : TL_CBLAS_NO_TRANS,
                      trans_b ? TL_CBLAS_TRANS : TL_CBLAS_NO_TRANS, (int)M, (int)N, (int)K, alpha,
                      A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
        return;
    }
    tl_sgemm_builtin(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
