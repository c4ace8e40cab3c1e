/* tl_conv_avx2.c - the conv kernels (tl_conv_vec.inc) on AVX2+FMA: 8 output pixels per vector,
 * maskstore for row tails, shuffles for the stride-2 even/odd split; the dense tile keeps 4 output channels x 3 vectors (12 of the 16 ymm
 * registers), two passes per 8-channel packed block. */
#include <immintrin.h>

#include "tl_conv_internal.h"

#define TL_W 8
#define TL_OCT 4
#define TL_IG_MR 6
typedef __m256 VF;
#define V_FN(name) tl_conv_##name##_avx2
#define V_SET1(a) _mm256_set1_ps(a)
#define V_ZERO() _mm256_setzero_ps()
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_STORE(p, v) _mm256_storeu_ps(p, v)
/* lanes 0..lanes-1 stored: lane i is set when lanes > i */
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_MAX(a, b) _mm256_max_ps(a, b)
#define V_MIN(a, b) _mm256_min_ps(a, b)
/* lanes [a, b) loaded, the others zero (maskload never reads masked-off lanes) */
#define V_LOADR(p, a, b) \
    _mm256_maskload_ps(p, \
                       _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(a), tl_conv_iota8()), \
                                           _mm256_cmpgt_epi32(_mm256_set1_epi32(b), tl_conv_iota8())))
static inline __m256i tl_conv_iota8(void) { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }

/* lanes [a, b) stored */
#define V_STORER(p, v, a, b) \
    _mm256_maskstore_ps(p, \
                        _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(a), tl_conv_iota8()), \
                                            _mm256_cmpgt_epi32(_mm256_set1_epi32(b), tl_conv_iota8())), \
                        v)

/* 16 consecutive floats lo:hi -> their even and odd elements, in order: shuffle_ps picks the
 * evens (odds) of each 128-bit half, permute4x64 puts the four 64-bit pairs back in order */
#define V_DEINTERLEAVE(lo, hi, even, odd) \
    do { \
        __m256 a_ = (lo), b_ = (hi); \
        (even) = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a_, b_, 0x88)), 0xD8)); \
        (odd) = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a_, b_, 0xDD)), 0xD8)); \
    } while (0)
/* [s, v[0], ..., v[6]]: v rotated up one lane, s blended into lane 0 */
#define V_SHIFT_IN(s, v) \
    _mm256_blend_ps(_mm256_permutevar8x32_ps(v, _mm256_setr_epi32(7, 0, 1, 2, 3, 4, 5, 6)), _mm256_set1_ps(s), 1)

#include "tl_conv_vec.inc"
