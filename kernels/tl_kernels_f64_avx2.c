/* tl_kernels_f64_avx2.c - the AVX2 double table (compiled with -mavx2 -mfma by CMake's filename
 * rule); the kernels live in tl_kernels_f64_vec.inc. */
#include <immintrin.h>
#include <math.h>

#include "tl_kernels_f64_internal.h"

#define D_W 4
typedef __m256d VD;
#define D_FN(name) tl_avx2_d_##name
#define D_TABLE tl_kernels64_avx2_table
#define D_NAME "avx2"
#define D_SET1(a) _mm256_set1_pd(a)
#define D_ZERO() _mm256_setzero_pd()
#define D_LOAD(p) _mm256_loadu_pd(p)
#define D_STORE(p, v) _mm256_storeu_pd(p, v)
#define D_ADD(a, b) _mm256_add_pd(a, b)
#define D_SUB(a, b) _mm256_sub_pd(a, b)
#define D_MUL(a, b) _mm256_mul_pd(a, b)
#define D_ANDNOT(a, b) _mm256_andnot_pd(a, b)
#define D_LE(a, b) _mm256_cmp_pd(a, b, _CMP_LE_OQ)
#define D_LT(a, b) _mm256_cmp_pd(a, b, _CMP_LT_OQ)
#define D_GT(a, b) _mm256_cmp_pd(a, b, _CMP_GT_OQ)
#define D_UNORD(a, b) _mm256_cmp_pd(a, b, _CMP_UNORD_Q)
#define D_SEL(m, t, f) _mm256_blendv_pd(f, t, m)

#include "tl_kernels_f64_vec.inc"
