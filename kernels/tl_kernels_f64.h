/* tl_kernels_f64.h - the float64 kernels of a float64 session (TL_SESSION_FLOAT64): a scalar
 * double reference for every op, and AVX2 / AVX-512 double versions of the simple,
 * bandwidth-bound elementwise ops (add, sub, mul, max, min, relu, abs), each bitwise equal to the
 * scalar one (one IEEE operation per element, or a selection). How each kernel relates to
 * TorchLean's scalar semantics over Lean's Float (IEEE binary64): docs/float64.md.
 * Kernels never allocate; scratch comes from the caller. */
#ifndef TL_KERNELS_F64_H
#define TL_KERNELS_F64_H
#include <stdbool.h>
#include <stdint.h>
#include "tl_kernels.h"

typedef void (*tl_unary64_fn)(const double *x, double *y, int64_t n);                   /* y may equal x */
typedef void (*tl_binary64_fn)(const double *a, const double *b, double *y, int64_t n); /* y may be a or b */

typedef struct tl_kernel64_table {
    const char *name; /* "scalar", "avx2", "avx512" */
    /* vector tables hold only the ops they vectorize; NULL: the scalar reference's (every entry
     * of the scalar table is set). Fetch through tl_k64_unary / tl_k64_binary. */
    tl_unary64_fn unary_fn[TL_U_COUNT];
    tl_binary64_fn binary_fn[TL_B_COUNT];
} tl_kernel64_table;
tl_unary64_fn tl_k64_unary(const tl_kernel64_table *T, tl_unary op);
tl_binary64_fn tl_k64_binary(const tl_kernel64_table *T, tl_binary op);

/* The double table of an ISA (NULL if not compiled/supported by the CPU), and the one matching the
 * active float32 table (tl_kernels(): TL_ISA, tl_kernels_set_isa). */
const tl_kernel64_table *tl_kernels64_for(tl_isa isa);
const tl_kernel64_table *tl_kernels64(void);

/* TorchLean safe_log: y[i] = log(softplus(x[i]) + eps) */
void tl_k64_safe_log(const double *x, double eps, double *y, int64_t n);
/* softmax over the middle axis of [outer, len, inner]: max subtracted, exp, left-to-right sum,
 * divide */
void tl_k64_softmax(const double *x, double *y, int64_t outer, int64_t len, int64_t inner);
/* per row of [rows, cols]: (x-mean)/sqrt(var+eps)*gamma+beta, biased variance, two passes */
void tl_k64_layernorm(const double *x, double *y, int64_t rows, int64_t cols, const double *gamma, const double *beta,
                      double eps);
/* batch norm (eval) over [outer, C, inner], unfolded: (x - mean[c]) / sqrt(var[c] + eps) *
 * gamma[c] + beta[c] (gamma/beta NULL: 1 / 0) */
void tl_k64_batch_norm(const double *x, double *y, int64_t outer, int64_t C, int64_t inner, const double *gamma,
                       const double *beta, const double *mean, const double *var, double eps);
/* sum over the middle axis of [outer, len, inner] -> [outer, inner], left to right from 0, the
 * sum then multiplied by `mul` (1, or 1/len for a mean) */
void tl_k64_reduce_mid(const double *x, double *y, int64_t outer, int64_t len, int64_t inner, double mul);
/* pooling as the float32 scalar reference (tl_kernels.h), in double */
void tl_k64_max_pool(const double *x, double *y, int64_t planes, const tl_window *w);
void tl_k64_avg_pool(const double *x, double *y, int64_t planes, const tl_window *w);
/* y[r*n + j] += b[j] */
void tl_k64_add_bias_rows(double *y, const double *b, int64_t rows, int64_t n);
/* data movement (exact) */
void tl_k64_permute(const double *x, double *y, int rank, const int64_t *in_dims, const int64_t *perm);
void tl_k64_broadcast(const double *x, double *y, int rank, const int64_t *from, const int64_t *to);
void tl_k64_concat(const double *const *parts, const int64_t *part_len, int n_parts, double *y, int64_t outer,
                   int64_t inner);
void tl_k64_im2col(const double *x, double *col, int64_t C, const tl_window *w);
/* TorchLean Spec.Random over Float: unit = Float.ofNat(u32) / 2^32, exact in double */
void tl_k64_rand_uniform(uint64_t key, double *y, int64_t n);
void tl_k64_bernoulli_mask(uint64_t key, double keep_prob, double *y, int64_t n);

/* C[M,N] = alpha*op(A)*op(B) + beta*C, row-major, like cblas_dgemm(CblasRowMajor, ...) (OpenBLAS
 * when loaded, else a plain i-j-k loop summing k left to right) */
void tl_dgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double *A, int64_t lda,
              const double *B, int64_t ldb, double beta, double *C, int64_t ldc);
/* The loop tl_dgemm falls back to (exposed for tests). */
void tl_dgemm_builtin(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double *A,
                      int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc);

#endif
