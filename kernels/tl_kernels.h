/* tl_kernels.h - compute kernels. Each vectorized kernel has a scalar reference with the same
 * signature; a table per ISA is chosen at run time by CPU detection (tl_kernels_best_isa).
 * Kernels never allocate; scratch comes from the caller (the runtime's arena). */
#ifndef TL_KERNELS_H
#define TL_KERNELS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "tl_cpu.h" /* tl_isa, threads, BLAS info (public) */

typedef enum tl_unary {
    TL_U_IDENTITY,
    TL_U_ABS,
    TL_U_SQRT,
    TL_U_INV,
    TL_U_RELU,
    TL_U_TANH,
    TL_U_SIGMOID,
    TL_U_EXP,
    TL_U_LOG,
    TL_U_SIN,
    TL_U_COS,
    TL_U_SOFTPLUS,
    TL_U_COUNT
} tl_unary;
typedef enum tl_binary { TL_B_ADD, TL_B_SUB, TL_B_MUL, TL_B_MAX, TL_B_MIN, TL_B_COUNT } tl_binary;

/* Pooling / conv geometry over the trailing `rank` spatial axes (rank 1..3). */
typedef struct tl_window {
    int rank;
    int64_t in[3], out[3], kernel[3], stride[3], pad[3], pad_after[3], dilation[3];
} tl_window;

typedef void (*tl_unary_fn)(const float *x, float *y, int64_t n);                  /* y may equal x */
typedef void (*tl_binary_fn)(const float *a, const float *b, float *y, int64_t n); /* y may be a or b */

typedef struct tl_kernel_table {
    const char *name; /* "scalar", "avx2", "avx512" */
    /* op-indexed dispatchers (they index unary_fn / binary_fn on every call); prefer fetching
     * the function once at plan time: K->unary_fn[op] */
    void (*unary)(tl_unary op, const float *x, float *y, int64_t n);
    void (*binary)(tl_binary op, const float *a, const float *b, float *y, int64_t n);
    tl_unary_fn unary_fn[TL_U_COUNT]; /* every entry non-NULL in every table */
    tl_binary_fn binary_fn[TL_B_COUNT];
    /* TorchLean safe_log: y[i] = log(softplus(x[i]) + eps), softplus as TL_U_SOFTPLUS */
    void (*safe_log)(const float *x, float eps, float *y, int64_t n);
    /* softmax over the middle axis of [outer, len, inner], max-subtracted */
    void (*softmax)(const float *x, float *y, int64_t outer, int64_t len, int64_t inner);
    /* per row of [rows, cols]: (x-mean)/sqrt(var+eps)*gamma+beta (biased var, like PyTorch) */
    void (*layernorm)(const float *x, float *y, int64_t rows, int64_t cols, const float *gamma, const float *beta,
                      float eps);
    /* y = x*scale[c] + shift[c] over [outer, C, inner] (batch norm folded into scale/shift) */
    void (*channel_affine)(const float *x, float *y, int64_t outer, int64_t C, int64_t inner, const float *scale,
                           const float *shift);
    /* sum over the middle axis of [outer, len, inner] -> [outer, inner], times `mul` */
    void (*reduce_mid)(const float *x, float *y, int64_t outer, int64_t len, int64_t inner, float mul);
    /* pooling over [planes, spatial...] (TorchLean NN/Spec/Layers/Pooling/Spatial.lean): max
     * SKIPS padded cells (like PyTorch's -inf padding; a window with no input cell gives 0),
     * avg adds padded cells as zero and divides by the full window (count_include_pad=True).
     * See docs/kernels.md. */
    void (*max_pool)(const float *x, float *y, int64_t planes, const tl_window *w);
    void (*avg_pool)(const float *x, float *y, int64_t planes, const tl_window *w);
    /* y[i] += b[i % n] for i < rows*n (bias add after GEMM) */
    void (*add_bias_rows)(float *y, const float *b, int64_t rows, int64_t n);
    /* the fused epilogue of a GEMM / conv output (ops/linear.c, ops/conv.c): per element
     * v = y[i] (+ b[i % n] when b != NULL), then v = lo > v ? lo : v, then y[i] = hi < v ? hi : v
     * (lo = -INFINITY / hi = INFINITY: no clamp; NaN passes). Each step is one IEEE operation, the
     * same ones add_bias_rows, relu, max_elem and min_elem (with the value first) do. */
    void (*bias_clamp_rows)(float *y, const float *b, int64_t rows, int64_t n, float lo, float hi);
    /* a fused residual add: v = a[i] + b[i], then the clamp of bias_clamp_rows (y may be a) */
    void (*add_clamp)(const float *a, const float *b, float *y, int64_t n, float lo, float hi);
    /* a fused leaky relu, in place: y[i] = max_elem(y[i], s * y[i]) (the capture's
     * max_elem(x, mul_elem(s, x)): the same two operations, max_elem's tie and NaN rules) */
    void (*leaky)(float *y, int64_t n, float s);
    /* linear with pre-packed weights (narrow batched MLPs): y[i][j] = clamp(acc + bias[j]
     * (+ res[i*N + j])) with acc = 0, then acc = fma(x[i][k], w[j][k], acc) for k = 0..K-1 in
     * order (bias / res NULL: none). The weights w [N][K] are packed once by gemm_pack into
     * gemm_pack_floats(N, K) floats, a layout of this table's own (panels of its column block,
     * zero-filled). Bitwise equal across tables and thread counts (rows are split in blocks). */
    size_t (*gemm_pack_floats)(int64_t N, int64_t K);
    void (*gemm_pack)(const float *w, int64_t N, int64_t K, float *packed);
    void (*gemm_packed)(const float *x, int64_t M, int64_t N, int64_t K, const float *packed, const float *bias,
                        const float *res, float lo, float hi, float *y);
} tl_kernel_table;

const tl_kernel_table *tl_kernels_for(tl_isa isa); /* NULL if not compiled/supported by the CPU */
const tl_kernel_table *tl_kernels(void);           /* the active table (best unless overridden) */

/* Data movement (exact; scalar only is fine, memory bound). */
void tl_k_permute(const float *x, float *y, int rank, const int64_t *in_dims, const int64_t *perm);
void tl_k_broadcast(const float *x, float *y, int rank, const int64_t *from, const int64_t *to);
/* concat along `axis`: parts[i] has dims equal to out except axis extent part_len[i] */
void tl_k_concat(const float *const *parts, const int64_t *part_len, int n_parts, float *y, int64_t outer,
                 int64_t inner);
/* im2col for conv over [C, spatial...] of one image/group: col is [C*prod(k), prod(out)] */
void tl_k_im2col(const float *x, float *col, int64_t C, const tl_window *w);
/* deterministic randomness, TorchLean's Spec.Random generator (docs/kernels.md). The first
 * argument is the per-node KEY: pass tl_k_rand_key(node.seed, node.id). Element i of the
 * row-major output is drawn from splitmix64(key + i). */
void tl_k_rand_uniform(uint64_t seed, float *y, int64_t n);
void tl_k_bernoulli_mask(uint64_t seed, float keep_prob, float *y, int64_t n);
/* TorchLean Spec.Random.keyOf: splitmix64(seed + node_index) (wrapping 64-bit add). */
uint64_t tl_k_rand_key(uint64_t seed, uint64_t node_index);
uint64_t tl_k_splitmix64(uint64_t x);

/* ---- BLAS (OpenBLAS loaded with the fast core type by default; see tl_blas.c) ---- */
/* C[M,N] = alpha*op(A)*op(B) + beta*C, row-major, like cblas_sgemm(CblasRowMajor, ...) */
void tl_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* The built-in blocked sgemm tl_sgemm falls back to when OpenBLAS cannot be loaded (or a size
 * exceeds its 32-bit int API); same contract as tl_sgemm. Exposed for tests. */
void tl_sgemm_builtin(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                      int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

#endif
