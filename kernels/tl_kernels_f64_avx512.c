/* tl_kernels_f64_avx512.c - the AVX-512 double table (compiled with -mavx512f... by CMake's
 * filename rule); the kernels live in tl_kernels_f64_vec.inc (masks as __mmask8). */
#include <immintrin.h>
#include <math.h>

#include "tl_kernels_f64_internal.h"

#define D_W 8
typedef __m512d VD;
#define D_FN(name) tl_avx512_d_##name
#define D_TABLE tl_kernels64_avx512_table
#define D_NAME "avx512"
#define D_SET1(a) _mm512_set1_pd(a)
#define D_ZERO() _mm512_setzero_pd()
#define D_LOAD(p) _mm512_loadu_pd(p)
#define D_STORE(p, v) _mm512_storeu_pd(p, v)
#define D_ADD(a, b) _mm512_add_pd(a, b)
#define D_SUB(a, b) _mm512_sub_pd(a, b)
#define D_MUL(a, b) _mm512_mul_pd(a, b)
#define D_ANDNOT(a, b) _mm512_andnot_pd(a, b)
#define D_LE(a, b) _mm512_cmp_pd_mask(a, b, _CMP_LE_OQ)
#define D_LT(a, b) _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ)
#define D_GT(a, b) _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ)
#define D_UNORD(a, b) _mm512_cmp_pd_mask(a, b, _CMP_UNORD_Q)
#define D_SEL(m, t, f) _mm512_mask_blend_pd(m, f, t)

#include "tl_kernels_f64_vec.inc"
