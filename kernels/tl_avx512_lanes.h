/* tl_avx512_lanes.h - lane shuffles shared by the AVX-512 kernel files (tl_kernels_avx512.c for
 * pooling, tl_conv_avx512.c for the padding copy and the depthwise fast paths). */
#ifndef TL_AVX512_LANES_H
#define TL_AVX512_LANES_H
#include <immintrin.h>

/* 32 consecutive floats lo:hi -> their even and odd elements, in order */
#define TL_AVX512_EVEN_ODD(lo, hi, e, o) \
    do { \
        const __m512i ie_ = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30); \
        const __m512i io_ = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31); \
        (e) = _mm512_permutex2var_ps(lo, ie_, hi); \
        (o) = _mm512_permutex2var_ps(lo, io_, hi); \
    } while (0)

/* [s, v[0], ..., v[14]]: v moved up one lane, s in lane 0 */
#define TL_AVX512_SHIFT_IN(s, v) \
    _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(v), _mm512_castps_si512(_mm512_set1_ps(s)), 15))

#endif
