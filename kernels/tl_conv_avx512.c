/* tl_conv_avx512.c - the conv kernels (tl_conv_vec.inc) on AVX-512: 16 output pixels per
 * vector, opmask stores for row tails, 8 output channels x 3 vectors per dense tile. */
#include <immintrin.h>

#include "tl_avx512_lanes.h"
#include "tl_conv_internal.h"

#define TL_W 16
#define TL_OCT 8
#define TL_IG_MR 12
typedef __m512 VF;
#define V_FN(name) tl_conv_##name##_avx512
#define V_SET1(a) _mm512_set1_ps(a)
#define V_ZERO() _mm512_setzero_ps()
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_STORE(p, v) _mm512_storeu_ps(p, v)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_MAX(a, b) _mm512_max_ps(a, b)
#define V_MIN(a, b) _mm512_min_ps(a, b)
/* lanes [a, b) loaded, the others zero (masked-off lanes are never read) */
#define V_LOADR(p, a, b) _mm512_maskz_loadu_ps((__mmask16)(((1u << (b)) - 1u) & ~((1u << (a)) - 1u)), p)
#define V_DEINTERLEAVE(lo, hi, even, odd) TL_AVX512_EVEN_ODD(lo, hi, even, odd)
#define V_SHIFT_IN(s, v) TL_AVX512_SHIFT_IN(s, v)

/* lanes [a, b) stored */
#define V_STORER(p, v, a, b) _mm512_mask_storeu_ps(p, (__mmask16)(((1u << (b)) - 1u) & ~((1u << (a)) - 1u)), v)

#include "tl_conv_vec.inc"
