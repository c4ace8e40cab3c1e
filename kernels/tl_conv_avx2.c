/* tl_conv_avx2.c - the conv kernels (tl_conv_vec.inc) on AVX2+FMA: 8 output pixels per vector,
 * maskstore for row tails; the dense tile keeps 4 output channels x 3 vectors (12 of the 16 ymm
 * registers), two passes per 8-channel packed block. */
#include <immintrin.h>

#include "tl_conv_internal.h"

#define TL_W 8
#define TL_OCT 4
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

#include "tl_conv_vec.inc"
