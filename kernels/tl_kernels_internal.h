/* tl_kernels_internal.h - what the per-ISA kernel files share (not part of the public API). */
#ifndef TL_KERNELS_INTERNAL_H
#define TL_KERNELS_INTERNAL_H
#include "tl_kernels.h"
#include "tl_shape.h"

#define TL_MAX_RANK_K TL_MAX_RANK

/* OpenMP splits independent outer work only above this many elements. Work is always split
 * along element-independent boundaries, so 1 and N threads give bitwise identical results. */
#define TL_PAR_MIN ((int64_t)65536)

/* softplus(x) = x for x > TL_SOFTPLUS_THRESHOLD (PyTorch's default threshold, beta = 1). */
#define TL_SOFTPLUS_THRESHOLD 20.0f

extern const tl_kernel_table tl_kernels_scalar_table;
#if defined(__x86_64__) || defined(__i386__)
#define TL_KERNELS_X86 1
extern const tl_kernel_table tl_kernels_avx2_table;
extern const tl_kernel_table tl_kernels_avx512_table;
#endif

/* Scalar pooling, shared by every table (pooling is gather-bound, see docs/kernels.md). */
void tl_kscalar_max_pool(const float *x, float *y, int64_t planes, const tl_window *w);
void tl_kscalar_avg_pool(const float *x, float *y, int64_t planes, const tl_window *w);

/* CPU feature bits (tl_cpu.c). */
typedef struct tl_cpu_features {
    bool avx2_fma;   /* AVX2 + FMA + OS saves YMM */
    bool avx512;     /* AVX-512 F+BW+DQ+VL + OS saves ZMM/opmask */
} tl_cpu_features;
tl_cpu_features tl_cpu_detect(void);

#endif
