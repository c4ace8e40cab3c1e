/* tl_kernels_internal.h - what the per-ISA kernel files share (not part of the public API). */
#ifndef TL_KERNELS_INTERNAL_H
#define TL_KERNELS_INTERNAL_H
#include "tl_kernels.h"
#include "tl_shape.h"

#include <omp.h>
#include "tl_cpu.h"
#include "tl_pool.h"

#define TL_MAX_RANK_K TL_MAX_RANK

/* Work is split over threads (the pool's tl_par wrappers, or OpenMP's TL_PFOR outside session
 * runs) only above this many elements. Work is always split
 * along element-independent boundaries, so 1 and N threads give bitwise identical results. */
#define TL_PAR_MIN ((int64_t)65536)

/* GEMMs (tl_sgemm, tl_dgemm, the packed kernel) are split over the pool from this M*N*K on
 * (multiply-adds, about 20 us on one core); smaller ones run faster on one thread. */
#ifndef TL_SGEMM_PAR_MNK
#define TL_SGEMM_PAR_MNK ((int64_t)1 << 21)
#endif

/* Whether a loop should be split across threads: only when the work is big enough AND more than
 * one thread is configured. Every parallel loop branches on this in plain C BEFORE its pragma,
 * because `#pragma omp parallel for if (false)` still enters GOMP_parallel, which builds (and
 * mallocs) a one-thread team on every call: ~38% of a small model's instructions. Inside an
 * enclosing parallel region the loop runs serially (nested regions would be one-thread teams). */
static inline bool tl_par(bool big) {
    /* serial inside a pool job and while a session run holds the pool hot: the pool's workers
     * spin there, an OpenMP team would compete with them for the same cores */
    return big && tl_get_threads() > 1 && !omp_in_parallel() && !tl_pool_in_job() && !tl_pool_is_hot();
}

/* for (int64_t I = 0; I < N; I++) BODY, split across threads (static schedule) iff BIG and more
 * than one thread is configured. The body is compiled twice; the split never changes results. */
#define TL_PFOR(BIG, I, N, ...) \
    do { \
        int64_t tl_pn_ = (N); \
        if (tl_par(BIG)) { \
            int tl_pt_ = tl_get_threads(); \
            _Pragma("omp parallel for schedule(static) num_threads(tl_pt_)") for (int64_t I = 0; I < tl_pn_; I++) { \
                __VA_ARGS__ \
            } \
        } else { \
            for (int64_t I = 0; I < tl_pn_; I++) { \
                __VA_ARGS__ \
            } \
        } \
    } while (0)

/* softplus(x) = x for x > TL_SOFTPLUS_THRESHOLD (PyTorch's default threshold, beta = 1). */
#define TL_SOFTPLUS_THRESHOLD 20.0f

/* Each table file lists its per-op functions as X(OP, NAME, EXPR) rows (OP: the TL_U_ / TL_B_
 * suffix). The table's unary_fn / binary_fn arrays are filled from the same rows with designated
 * initializers, so a duplicate row fails -Woverride-init (-Wextra) and a missing one fails
 * `_Static_assert(0 LIST(TL_KT_COUNT1) == TL_U_COUNT)`: no entry can be left NULL. */
#define TL_KT_COUNT1(OP, NAME, EXPR) +1

extern const tl_kernel_table tl_kernels_scalar_table;
#if defined(__x86_64__) || defined(__i386__)
#define TL_KERNELS_X86 1
extern const tl_kernel_table tl_kernels_avx2_table;
extern const tl_kernel_table tl_kernels_avx512_table;
#endif

/* Scalar pooling: the reference every vector pooling kernel is bitwise equal to. */
/* 2x2 / stride-2 pooling without padding (tl_kernels_vec.inc): false if the geometry differs */
bool tl_avx2_pool_2x2s2(bool is_max, const float *x, float *y, int64_t planes, const int64_t *in, const int64_t *out,
                        const int64_t *k, const int64_t *s, const int64_t *p, const int64_t *d);
bool tl_avx512_pool_2x2s2(bool is_max, const float *x, float *y, int64_t planes, const int64_t *in,
                          const int64_t *out, const int64_t *k, const int64_t *s, const int64_t *p, const int64_t *d);
void tl_kscalar_max_pool(const float *x, float *y, int64_t planes, const tl_window *w);
void tl_kscalar_avg_pool(const float *x, float *y, int64_t planes, const tl_window *w);

/* Direct (unpacked, register-blocked) sgemm for small problems, tl_sgemm's contract; not for
 * trans_a && trans_b (tl_blas.c routes that case elsewhere). Single-threaded. */
typedef void (*tl_sgemm_fn)(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                            int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
#ifdef TL_KERNELS_X86
void tl_avx2_sgemm_small(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                         int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
void tl_avx512_sgemm_small(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                           int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
#endif

/* CPU feature bits (tl_cpu.c). */
typedef struct tl_cpu_features {
    bool avx2_fma; /* AVX2 + FMA + OS saves YMM */
    bool avx512;   /* AVX-512 F+BW+DQ+VL + OS saves ZMM/opmask */
} tl_cpu_features;
tl_cpu_features tl_cpu_detect(void);

#endif
