/* tl_cpu.h - process-wide execution settings of tlrt: which kernel table (ISA) runs, how many
 * threads tlrt's kernels and OpenBLAS use, which BLAS was loaded.
 *
 * These are PROCESS-GLOBAL: a session snapshots the kernel table when it is planned
 * (tl_session_new), so changing the ISA later affects only sessions planned afterwards; the
 * thread count is read at every parallel step (tlrt's worker pool, kernels/tl_pool.h; OpenBLAS
 * always runs single-threaded, tlrt splits large GEMMs itself). Set them before creating
 * sessions, from one thread. */
#ifndef TL_CPU_H
#define TL_CPU_H
#include <stdbool.h>

typedef enum tl_isa { TL_ISA_SCALAR = 0, TL_ISA_AVX2 = 1, TL_ISA_AVX512 = 2, TL_ISA_COUNT } tl_isa;

tl_isa tl_kernels_best_isa(void);    /* CPU detection (cpuid + xgetbv) */
bool tl_isa_supported(tl_isa isa);   /* compiled in and supported by this CPU */
void tl_kernels_set_isa(tl_isa isa); /* override the best one (tests, benchmarks; env TL_ISA) */
const char *tl_isa_name(tl_isa isa); /* "scalar", "avx2", "avx512" */

/* Threads for tlrt's kernels and GEMMs together (n >= 1): the worker pool's size. */
void tl_set_threads(int n);
int tl_get_threads(void);

/* e.g. "OpenBLAS 0.3.21 SkylakeX (OPENBLAS_CORETYPE set by tlrt)"; loads OpenBLAS if needed.
 * Static string, valid for the life of the process. */
const char *tl_blas_info(void);

#endif
