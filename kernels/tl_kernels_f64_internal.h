/* tl_kernels_f64_internal.h - what the float64 kernel files share (not part of the public API). */
#ifndef TL_KERNELS_F64_INTERNAL_H
#define TL_KERNELS_F64_INTERNAL_H
#include "tl_kernels_f64.h"
#include "tl_kernels_internal.h"

/* max/min as the float32 kernels: the first operand wins ties, NaN in either gives NaN */
static inline double tl_dmax1(double a, double b) {
    double r = (b > a) ? b : a;
    return (a != a || b != b) ? a + b : r;
}
static inline double tl_dmin1(double a, double b) {
    double r = (b < a) ? b : a;
    return (a != a || b != b) ? a + b : r;
}

extern const tl_kernel64_table tl_kernels64_scalar_table;
#ifdef TL_KERNELS_X86
extern const tl_kernel64_table tl_kernels64_avx2_table;
extern const tl_kernel64_table tl_kernels64_avx512_table;
#endif

#endif
