/* tl_kernels_avx2.c - the AVX2 + FMA table (compiled with -mavx2 -mfma by CMake's filename rule).
 * The kernels themselves live in tl_kernels_vec.inc; this file maps its primitives to AVX2. */
#include <immintrin.h>
#include <math.h>

#include "tl_kernels_internal.h"

#define TL_W 8
typedef __m256 VF;
typedef __m256 VM;
typedef __m256i VI;
typedef __m256d VD;
#define V_FN(name) tl_avx2_##name
#define V_TABLE tl_kernels_avx2_table

static const int32_t tl_avx2_tail_tab[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
/* lanes [0, rem) set, rem in 1..8 */
static inline __m256i tl_avx2_tail(int64_t rem) {
    return _mm256_loadu_si256((const __m256i *)(const void *)(tl_avx2_tail_tab + 8 - rem));
}

#define V_SET1(a) _mm256_set1_ps(a)
#define V_ZERO() _mm256_setzero_ps()
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_STORE(p, v) _mm256_storeu_ps(p, v)
#define V_TAILMASK(rem) _mm256_castsi256_ps(tl_avx2_tail(rem))
/* lanes [0, rem): a plain load / store when that is all 8 (the packed linear's epilogue asks for
 * whole vectors through these; AMD's vmaskmovps store is microcoded, many times a store) */
static inline __m256 tl_avx2_loadm(const float *p, int64_t rem) {
    return rem >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, tl_avx2_tail(rem));
}
static inline void tl_avx2_storem(float *p, __m256 v, int64_t rem) {
    if (rem >= 8) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, tl_avx2_tail(rem), v);
}
#define V_LOADM(p, rem) tl_avx2_loadm(p, rem)
#define V_STOREM(p, v, rem) tl_avx2_storem(p, v, rem)
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_SUB(a, b) _mm256_sub_ps(a, b)
#define V_MUL(a, b) _mm256_mul_ps(a, b)
#define V_DIV(a, b) _mm256_div_ps(a, b)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_FNMA(a, b, c) _mm256_fnmadd_ps(a, b, c)
#define V_MAX(a, b) _mm256_max_ps(a, b)
#define V_MIN(a, b) _mm256_min_ps(a, b)
#define V_SQRT(a) _mm256_sqrt_ps(a)
#define V_RNDN(a) _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_FLOOR(a) _mm256_round_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
#define V_LT(a, b) _mm256_cmp_ps(a, b, _CMP_LT_OQ)
#define V_GT(a, b) _mm256_cmp_ps(a, b, _CMP_GT_OQ)
#define V_GE(a, b) _mm256_cmp_ps(a, b, _CMP_GE_OQ)
#define V_EQ(a, b) _mm256_cmp_ps(a, b, _CMP_EQ_OQ)
#define V_UNORD(a, b) _mm256_cmp_ps(a, b, _CMP_UNORD_Q)
#define V_SEL(m, t, f) _mm256_blendv_ps(f, t, m)
#define V_MOVEMASK(m) _mm256_movemask_ps(m)
#define V_AND(a, b) _mm256_and_ps(a, b)
#define V_OR(a, b) _mm256_or_ps(a, b)
#define V_ANDNOT(a, b) _mm256_andnot_ps(a, b)
#define V_CASTI(a) _mm256_castps_si256(a)
#define V_CASTF(a) _mm256_castsi256_ps(a)
#define V_CVTI2F(a) _mm256_cvtepi32_ps(a)
#define V_CVTF2I(a) _mm256_cvtps_epi32(a)
#define VI_SET1(a) _mm256_set1_epi32(a)
#define VI_ADD(a, b) _mm256_add_epi32(a, b)
#define VI_SUB(a, b) _mm256_sub_epi32(a, b)
#define VI_AND(a, b) _mm256_and_si256(a, b)
#define VI_OR(a, b) _mm256_or_si256(a, b)
#define VI_SRLI(a, n) _mm256_srli_epi32(a, n)
#define VI_SLLI(a, n) _mm256_slli_epi32(a, n)
#define VD_SET1(a) _mm256_set1_pd(a)
#define VD_ADD(a, b) _mm256_add_pd(a, b)
#define VD_SUB(a, b) _mm256_sub_pd(a, b)
#define VD_MUL(a, b) _mm256_mul_pd(a, b)
#define VD_FMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define VD_FNMA(a, b, c) _mm256_fnmadd_pd(a, b, c)
#define VD_RNDN(a) _mm256_round_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VD_FLOOR(a) _mm256_round_pd(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
#define VD_EQ(a, b) _mm256_cmp_pd(a, b, _CMP_EQ_OQ)
#define VD_GE(a, b) _mm256_cmp_pd(a, b, _CMP_GE_OQ)
#define VD_SEL(m, t, f) _mm256_blendv_pd(f, t, m)
#define VD_LO(v) _mm256_cvtps_pd(_mm256_castps256_ps128(v))
#define VD_HI(v) _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))
#define V_FROM_D(lo, hi) _mm256_set_m128(_mm256_cvtpd_ps(hi), _mm256_cvtpd_ps(lo))

/* horizontal reductions in a fixed order */
static inline float tl_avx2_hsum(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}
static inline float tl_avx2_hmax(__m256 v) {
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}
/* pooling: int32 lane indices, arbitrary lane masks, masked gathers */
#define VI_LOAD(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define VI_MULLO(a, b) _mm256_mullo_epi32(a, b)
#define V_IRANGE(i, n) \
    _mm256_castsi256_ps(_mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), i), _mm256_cmpgt_epi32(n, i)))
#define VM_AND(a, b) _mm256_and_ps(a, b)
#define VM_ANDNOT(a, b) _mm256_andnot_ps(a, b)
#define VM_OR(a, b) _mm256_or_ps(a, b)
#define V_GATHERM(src, m, idx, base) _mm256_mask_i32gather_ps(src, base, idx, m, 4)
#define V_HSUM(v) tl_avx2_hsum(v)
#define V_HMAX(v) tl_avx2_hmax(v)

#define TL_GP_NV 2 /* packed linear: vectors of y per register block */
/* 2x2 pooling: even / odd elements of the 16 floats lo:hi, each in the order lo0 lo2 hi0 hi2 |
 * lo4 lo6 hi4 hi6 (in-lane shuffles); lane-wise results are put in order once by
 * V_EVEN_ODD_FIX (64-bit lanes 0 2 1 3) */
#define V_EVEN_ODD(lo, hi, e, o) \
    do { \
        (e) = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)); \
        (o) = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1)); \
    } while (0)
#define V_EVEN_ODD_FIX(v) _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), _MM_SHUFFLE(3, 1, 2, 0)))

#include "tl_kernels_vec.inc"

const tl_kernel_table tl_kernels_avx2_table = {
    .name = "avx2",
    .unary = tl_avx2_unary,
    .binary = tl_avx2_binary,
    .unary_fn = {TL_V_UNARY_OPS(TL_V_UNARY_ENTRY)},
    .binary_fn = {TL_V_BINARY_OPS(TL_V_BINARY_ENTRY)},
    .safe_log = tl_avx2_safe_log,
    .softmax = tl_avx2_softmax,
    .layernorm = tl_avx2_layernorm,
    .channel_affine = tl_avx2_channel_affine,
    .reduce_mid = tl_avx2_reduce_mid,
    .max_pool = tl_avx2_max_pool,
    .avg_pool = tl_avx2_avg_pool,
    .add_bias_rows = tl_avx2_add_bias_rows,
    .bias_clamp_rows = tl_avx2_bias_clamp_rows,
    .add_clamp = tl_avx2_add_clamp,
    .leaky = tl_avx2_leaky,
    .gemm_pack_floats = tl_avx2_gemm_pack_floats,
    .gemm_pack = tl_avx2_gemm_pack,
    .gemm_packed = tl_avx2_gemm_packed,
};
