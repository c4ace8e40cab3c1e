/* tl_cpu.c - CPU feature detection (cpuid + xgetbv) and the choice of kernel table.
 * TL_ISA=scalar|avx2|avx512 in the environment overrides the choice (clamped to what the CPU
 * supports); tl_kernels_set_isa does the same from code. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tl_kernels_internal.h"

#ifdef TL_KERNELS_X86
#include <cpuid.h>

static uint64_t tl_xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

tl_cpu_features tl_cpu_detect(void) {
    tl_cpu_features f = {false, false};
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx) return f;
    uint64_t xcr0 = tl_xgetbv0();
    bool ymm_os = (xcr0 & 0x6) == 0x6;   /* XMM + YMM state */
    bool zmm_os = (xcr0 & 0xe6) == 0xe6; /* + opmask, ZMM_Hi256, Hi16_ZMM */
    if (__get_cpuid_max(0, NULL) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    bool avx2 = (b >> 5) & 1;
    bool avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    f.avx2_fma = ymm_os && avx2 && fma;
    f.avx512 = f.avx2_fma && zmm_os && avx512f && avx512dq && avx512bw && avx512vl;
    return f;
}
#else
tl_cpu_features tl_cpu_detect(void) {
    tl_cpu_features f = {false, false};
    return f;
}
#endif

tl_isa tl_kernels_best_isa(void) {
    tl_cpu_features f = tl_cpu_detect();
    if (f.avx512) return TL_ISA_AVX512;
    if (f.avx2_fma) return TL_ISA_AVX2;
    return TL_ISA_SCALAR;
}

const tl_kernel_table *tl_kernels_for(tl_isa isa) {
    switch (isa) {
    case TL_ISA_SCALAR: return &tl_kernels_scalar_table;
#ifdef TL_KERNELS_X86
    case TL_ISA_AVX2: return tl_cpu_detect().avx2_fma ? &tl_kernels_avx2_table : NULL;
    case TL_ISA_AVX512: return tl_cpu_detect().avx512 ? &tl_kernels_avx512_table : NULL;
#endif
    default: return NULL;
    }
}

/* The best supported table at or below `isa`. */
static const tl_kernel_table *tl_clamped(tl_isa isa) {
    if ((int)isa < 0 || isa >= TL_ISA_COUNT) isa = TL_ISA_AVX512;
    for (int i = (int)isa; i > 0; i--) {
        const tl_kernel_table *t = tl_kernels_for((tl_isa)i);
        if (t) return t;
    }
    return &tl_kernels_scalar_table;
}

static _Atomic(const tl_kernel_table *) tl_active;
static pthread_once_t tl_active_once = PTHREAD_ONCE_INIT;

static void tl_active_init(void) {
    tl_isa isa = tl_kernels_best_isa();
    const char *env = getenv("TL_ISA");
    if (env && *env) {
        if (!strcmp(env, "scalar")) isa = TL_ISA_SCALAR;
        else if (!strcmp(env, "avx2")) isa = TL_ISA_AVX2;
        else if (!strcmp(env, "avx512")) isa = TL_ISA_AVX512;
        /* anything else: keep the detected best */
    }
    const tl_kernel_table *expected = NULL;
    atomic_compare_exchange_strong(&tl_active, &expected, tl_clamped(isa));
}

const tl_kernel_table *tl_kernels(void) {
    pthread_once(&tl_active_once, tl_active_init);
    return atomic_load(&tl_active);
}

void tl_kernels_set_isa(tl_isa isa) {
    pthread_once(&tl_active_once, tl_active_init);
    atomic_store(&tl_active, tl_clamped(isa));
}

bool tl_isa_supported(tl_isa isa) { return tl_kernels_for(isa) != NULL; }

const char *tl_isa_name(tl_isa isa) {
    switch (isa) {
    case TL_ISA_SCALAR: return "scalar";
    case TL_ISA_AVX2: return "avx2";
    case TL_ISA_AVX512: return "avx512";
    case TL_ISA_COUNT: break;
    }
    return "?";
}
