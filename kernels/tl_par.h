/* tl_par.h - kernel-table calls split over tlrt's worker pool (tl_pool.h).
 *
 * Each table kernel is serial over a contiguous range of independent work (elements, rows,
 * planes, (outer, channel) pairs); these wrappers cut that range into one contiguous part per
 * thread and call the same kernel on each part, so every output element is computed by the same
 * operations whatever the thread count: the bits never change. Small work (below TL_PAR_MIN
 * elements, or one part) is one direct call. The ops (ops/) call these instead of the table
 * entries; the kernels' own TL_PFOR loops run serially inside a pool part. */
#ifndef TL_PAR_H
#define TL_PAR_H

#include "tl_kernels.h"

void tl_par_unary(tl_unary_fn f, const float *x, float *y, int64_t n);
void tl_par_binary(tl_binary_fn f, const float *a, const float *b, float *y, int64_t n);
void tl_par_softmax(const tl_kernel_table *K, const float *x, float *y, int64_t outer, int64_t len, int64_t inner);
void tl_par_layernorm(const tl_kernel_table *K, const float *x, float *y, int64_t rows, int64_t cols,
                      const float *gamma, const float *beta, float eps);
void tl_par_channel_affine(const tl_kernel_table *K, const float *x, float *y, int64_t outer, int64_t C,
                           int64_t inner, const float *scale, const float *shift);
void tl_par_pool(const tl_kernel_table *K, bool is_max, const float *x, float *y, int64_t planes, const tl_window *w);
void tl_par_add_bias_rows(const tl_kernel_table *K, float *y, const float *b, int64_t rows, int64_t n);
void tl_par_bias_clamp_rows(const tl_kernel_table *K, float *y, const float *b, int64_t rows, int64_t n, float lo,
                            float hi);
void tl_par_add_clamp(const tl_kernel_table *K, const float *a, const float *b, float *y, int64_t n, float lo,
                      float hi);
void tl_par_leaky(const tl_kernel_table *K, float *y, int64_t n, float s);
void tl_par_gemm_packed(const tl_kernel_table *K, const float *x, int64_t M, int64_t N, int64_t Kd,
                        const float *packed, const float *bias, const float *res, float lo, float hi, float *y);

#endif
