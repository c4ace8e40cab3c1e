/* tl_kernels_avx512.c - the AVX-512 (F+DQ+BW+VL) table. Same kernels as the AVX2 table
 * (tl_kernels_vec.inc) on 16 lanes, with opmask tails. */
#include <immintrin.h>
#include <math.h>

#include "tl_avx512_lanes.h"
#include "tl_kernels_internal.h"

#define TL_W 16
typedef __m512 VF;
typedef __mmask16 VM;
typedef __m512i VI;
typedef __m512d VD;
#define V_FN(name) tl_avx512_##name
#define V_TABLE tl_kernels_avx512_table

#define V_SET1(a) _mm512_set1_ps(a)
#define V_ZERO() _mm512_setzero_ps()
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_STORE(p, v) _mm512_storeu_ps(p, v)
#define V_TAILMASK(rem) ((__mmask16)((1u << (rem)) - 1u))
#define V_LOADM(p, rem) _mm512_maskz_loadu_ps(V_TAILMASK(rem), p)
#define V_STOREM(p, v, rem) _mm512_mask_storeu_ps(p, V_TAILMASK(rem), v)
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_SUB(a, b) _mm512_sub_ps(a, b)
#define V_MUL(a, b) _mm512_mul_ps(a, b)
#define V_DIV(a, b) _mm512_div_ps(a, b)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_FNMA(a, b, c) _mm512_fnmadd_ps(a, b, c)
#define V_MAX(a, b) _mm512_max_ps(a, b)
#define V_MIN(a, b) _mm512_min_ps(a, b)
#define V_SQRT(a) _mm512_sqrt_ps(a)
#define V_RNDN(a) _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_FLOOR(a) _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
#define V_LT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ)
#define V_GT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ)
#define V_GE(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ)
#define V_EQ(a, b) _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ)
#define V_UNORD(a, b) _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q)
#define V_SEL(m, t, f) _mm512_mask_blend_ps(m, f, t)
#define V_MOVEMASK(m) ((int)(m))
#define V_AND(a, b) _mm512_and_ps(a, b)
#define V_OR(a, b) _mm512_or_ps(a, b)
#define V_ANDNOT(a, b) _mm512_andnot_ps(a, b)
#define V_CASTI(a) _mm512_castps_si512(a)
#define V_CASTF(a) _mm512_castsi512_ps(a)
#define V_CVTI2F(a) _mm512_cvtepi32_ps(a)
#define V_CVTF2I(a) _mm512_cvtps_epi32(a)
#define VI_SET1(a) _mm512_set1_epi32(a)
#define VI_ADD(a, b) _mm512_add_epi32(a, b)
#define VI_SUB(a, b) _mm512_sub_epi32(a, b)
#define VI_AND(a, b) _mm512_and_si512(a, b)
#define VI_OR(a, b) _mm512_or_si512(a, b)
#define VI_SRLI(a, n) _mm512_srli_epi32(a, n)
#define VI_SLLI(a, n) _mm512_slli_epi32(a, n)
#define VD_SET1(a) _mm512_set1_pd(a)
#define VD_ADD(a, b) _mm512_add_pd(a, b)
#define VD_SUB(a, b) _mm512_sub_pd(a, b)
#define VD_MUL(a, b) _mm512_mul_pd(a, b)
#define VD_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define VD_FNMA(a, b, c) _mm512_fnmadd_pd(a, b, c)
#define VD_RNDN(a) _mm512_roundscale_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VD_FLOOR(a) _mm512_roundscale_pd(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
#define VD_EQ(a, b) _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ)
#define VD_GE(a, b) _mm512_cmp_pd_mask(a, b, _CMP_GE_OQ)
#define VD_SEL(m, t, f) _mm512_mask_blend_pd(m, f, t)
#define VD_LO(v) _mm512_cvtps_pd(_mm512_castps512_ps256(v))
#define VD_HI(v) _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1))
#define V_FROM_D(lo, hi) _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo)), _mm512_cvtpd_ps(hi), 1)

/* horizontal reductions in a fixed order (halving tree) */
static inline float tl_avx512_hsum(__m512 v) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}
static inline float tl_avx512_hmax(__m512 v) {
    __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}
/* pooling: int32 lane indices, arbitrary lane masks, masked gathers */
#define VI_LOAD(p) _mm512_loadu_si512((const void *)(p))
#define VI_MULLO(a, b) _mm512_mullo_epi32(a, b)
#define V_IRANGE(i, n) _mm512_cmplt_epu32_mask(i, n) /* 0 <= i < n (n >= 0) */
#define VM_AND(a, b) ((__mmask16)((a) & (b)))
#define VM_ANDNOT(a, b) ((__mmask16)(~(a) & (b)))
#define VM_OR(a, b) ((__mmask16)((a) | (b)))
#define V_GATHERM(src, m, idx, base) _mm512_mask_i32gather_ps(src, m, idx, base, 4)
#define V_HSUM(v) tl_avx512_hsum(v)
#define V_HMAX(v) tl_avx512_hmax(v)

/* pooling: even / odd elements of the 32 floats lo:hi, in order (no fix-up needed); the odds
 * moved up a lane (3x3 / 2 max pooling) */
#define V_EVEN_ODD(lo, hi, e, o) TL_AVX512_EVEN_ODD(lo, hi, e, o)
#define V_EVEN_ODD_FIX(v) (v)
#define V_SHIFT_IN(s, v) TL_AVX512_SHIFT_IN(s, v)
#define V_POOL2_NARROW tl_avx2_pool_2x2s2 /* output rows of <= 8: 8 lanes waste fewer */

#define TL_GP_NV 4 /* packed linear: vectors of y per register block */
#include "tl_kernels_vec.inc"

const tl_kernel_table tl_kernels_avx512_table = {
    .name = "avx512",
    .unary = tl_avx512_unary,
    .binary = tl_avx512_binary,
    .unary_fn = {TL_V_UNARY_OPS(TL_V_UNARY_ENTRY)},
    .binary_fn = {TL_V_BINARY_OPS(TL_V_BINARY_ENTRY)},
    .safe_log = tl_avx512_safe_log,
    .softmax = tl_avx512_softmax,
    .layernorm = tl_avx512_layernorm,
    .channel_affine = tl_avx512_channel_affine,
    .reduce_mid = tl_avx512_reduce_mid,
    .max_pool = tl_avx512_max_pool,
    .avg_pool = tl_avx512_avg_pool,
    .add_bias_rows = tl_avx512_add_bias_rows,
    .bias_clamp_rows = tl_avx512_bias_clamp_rows,
    .add_clamp = tl_avx512_add_clamp,
    .leaky = tl_avx512_leaky,
    .gemm_pack_floats = tl_avx512_gemm_pack_floats,
    .gemm_pack = tl_avx512_gemm_pack,
    .gemm_packed = tl_avx512_gemm_packed,
};
