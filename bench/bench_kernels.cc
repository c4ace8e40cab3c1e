// bench_kernels.cc - micro benchmarks of tlrt's kernel tables (scalar vs avx2 vs avx512), of
// tl_sgemm (OpenBLAS, dlopen'ed with the core type tlrt picks), and two machine references for the
// roofline: the single-thread FP32 FMA peak and the memory bandwidth (STREAM triad / memcpy).
//
// Names are parsed by bench/dashboard.py, keep them stable:
//   kern/<kernel>/<isa>/<n>          counters: bytes_per_second, items_per_second, GFLOPS, AI
//   sgemm/<n>/threads:<t>            counters: GFLOPS, AI
//   sgemm_shape/<layer>              counters: GFLOPS, AI, M, N, K (the zoo's layer GEMMs, 1 thread)
//   sgemv/<layer>                    cblas_sgemv of the loaded OpenBLAS (batch-1 linear as GEMV)
//   peak/fma_<isa>                   counter : GFLOPS (single thread)
//   mem/<triad|memcpy>/<L2|DRAM>     counters: bytes_per_second (STREAM convention: no write-allocate)
//   conv/<layer>/<impl>              counters: GFLOPS (2*N*OC*OH*OW*ICg*KH*KW), 1 thread; impl =
//                                    im2col_sgemm (the runtime's path), direct_<isa>, dw_<isa>,
//                                    dw_loop (the runtime's current depthwise loop); conv + bias +
//                                    relu (the sgemm path without the relu pass)
//   conv/<layer>/<impl>/threads:<t>  the same at t threads, wall time
// GFLOPS is a rate counter whose JSON value is already in GFLOP/s; AI is flops per byte moved
// (compulsory traffic, nominal flop counts noted per kernel).
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include "kernels/tl_conv.h"
#include "kernels/tl_kernels.h"
}

namespace {

// ---------------------------------------------------------------- buffers
struct Buf {
    float *p = nullptr;
    size_t n = 0;
    explicit Buf(size_t count, float lo = -1.f, float hi = 1.f, unsigned seed = 1) : n(count) {
        size_t bytes = ((count * sizeof(float)) + 63) / 64 * 64;
        if (bytes == 0) bytes = 64;
        p = static_cast<float *>(std::aligned_alloc(64, bytes));
        uint64_t x = 0x9E3779B97F4A7C15ull * (seed + 1);  // xorshift64: fast for 256 MiB buffers
        for (size_t i = 0; i < count; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            p[i] = lo + (hi - lo) * float(x >> 40) * (1.0f / 16777216.0f);
        }
    }
    ~Buf() { std::free(p); }
    Buf(const Buf &) = delete;
    Buf &operator=(const Buf &) = delete;
};

const char *isa_name(tl_isa isa) {
    switch (isa) {
    case TL_ISA_SCALAR: return "scalar";
    case TL_ISA_AVX2: return "avx2";
    case TL_ISA_AVX512: return "avx512";
    default: return "?";
    }
}

void set_counters(benchmark::State &st, double flops, double bytes, double items) {
    st.SetBytesProcessed(static_cast<int64_t>(bytes * static_cast<double>(st.iterations())));
    st.SetItemsProcessed(static_cast<int64_t>(items * static_cast<double>(st.iterations())));
    if (flops > 0) {
        st.counters["GFLOPS"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
        st.counters["AI"] = benchmark::Counter(flops / bytes);
    }
}

// One kernel case: prepares its buffers for size n and returns the call to time, with the
// nominal flop / byte / item counts of one call.
struct Case {
    std::function<void()> run;
    double flops, bytes, items;
};
using Maker = std::function<Case(const tl_kernel_table *, int64_t n, std::vector<Buf *> &keep)>;

Buf *keep_buf(std::vector<Buf *> &keep, size_t n, float lo = -1.f, float hi = 1.f) {
    Buf *b = new Buf(n, lo, hi, static_cast<unsigned>(keep.size() + 1));
    keep.push_back(b);
    return b;
}

Maker unary(tl_unary op, bool counts_flops, float lo = -1.f, float hi = 1.f) {
    return [=](const tl_kernel_table *t, int64_t n, std::vector<Buf *> &keep) {
        float *x = keep_buf(keep, n, lo, hi)->p, *y = keep_buf(keep, n)->p;
        return Case{[=] { t->unary(op, x, y, n); }, counts_flops ? double(n) : 0.0, 8.0 * n, double(n)};
    };
}

Maker binary(tl_binary op) {
    return [=](const tl_kernel_table *t, int64_t n, std::vector<Buf *> &keep) {
        float *a = keep_buf(keep, n)->p, *b = keep_buf(keep, n)->p, *y = keep_buf(keep, n)->p;
        return Case{[=] { t->binary(op, a, b, y, n); }, double(n), 12.0 * n, double(n)};
    };
}

std::vector<std::pair<std::string, Maker>> kernel_cases() {
    std::vector<std::pair<std::string, Maker>> v;
    v.push_back({"relu", unary(TL_U_RELU, true)});
    v.push_back({"exp", unary(TL_U_EXP, false, -4.f, 4.f)});
    v.push_back({"tanh", unary(TL_U_TANH, false)});
    v.push_back({"sigmoid", unary(TL_U_SIGMOID, false)});
    v.push_back({"sqrt", unary(TL_U_SQRT, true, 0.f, 4.f)});
    v.push_back({"add", binary(TL_B_ADD)});
    v.push_back({"mul", binary(TL_B_MUL)});
    v.push_back({"max", binary(TL_B_MAX)});
    v.push_back({"safe_log", [](const tl_kernel_table *t, int64_t n, std::vector<Buf *> &keep) {
                     float *x = keep_buf(keep, n, 0.f, 4.f)->p, *y = keep_buf(keep, n)->p;
                     return Case{[=] { t->safe_log(x, 1e-12f, y, n); }, 0.0, 8.0 * n, double(n)};
                 }});
    // softmax over rows of 256 (attention-like); nominal 0 flops (exp dominated)
    v.push_back({"softmax_r256", [](const tl_kernel_table *t, int64_t n, std::vector<Buf *> &keep) {
                     float *x = keep_buf(keep, n, -8.f, 8.f)->p, *y = keep_buf(keep, n)->p;
                     return Case{[=] { t->softmax(x, y, n / 256, 256, 1); }, 0.0, 8.0 * n, double(n)};
                 }});
    // layernorm over rows of 256: nominal 7 flops/elem (sum, centered square sum (2),
    // normalize (2), affine (2))
    v.push_back({"layernorm_r256", [](const tl_kernel_table *t, int64_t n, std::vector<Buf *> &keep) {
                     float *x = keep_buf(keep, n)->p, *y = keep_buf(keep, n)->p;
                     float *g = keep_buf(keep, 256)->p, *b = keep_buf(keep, 256)->p;
                     return Case{[=] { t->layernorm(x, y, n / 256, 256, g, b, 1e-5f); }, 7.0 * n, 8.0 * n, double(n)};
                 }});
    // batch-norm style affine over [1, 64, n/64]: 2 flops/elem
    v.push_back({"channel_affine_c64", [](const tl_kernel_table *t, int64_t n, std::vector<Buf *> &keep) {
                     float *x = keep_buf(keep, n)->p, *y = keep_buf(keep, n)->p;
                     float *s = keep_buf(keep, 64)->p, *h = keep_buf(keep, 64)->p;
                     return Case{[=] { t->channel_affine(x, y, 1, 64, n / 64, s, h); }, 2.0 * n, 8.0 * n, double(n)};
                 }});
    // global average pool pattern: [64 planes, n/64 spatial, 1] -> [64]
    v.push_back({"reduce_mid_gap", [](const tl_kernel_table *t, int64_t n, std::vector<Buf *> &keep) {
                     float *x = keep_buf(keep, n)->p, *y = keep_buf(keep, 64)->p;
                     return Case{[=] { t->reduce_mid(x, y, 64, n / 64, 1, 1.0f / float(n / 64)); }, double(n),
                                 4.0 * n, double(n)};
                 }});
    // reduction over a middle axis with a contiguous inner axis: [16, n/1024, 64]
    v.push_back({"reduce_mid_inner64", [](const tl_kernel_table *t, int64_t n, std::vector<Buf *> &keep) {
                     float *x = keep_buf(keep, n)->p, *y = keep_buf(keep, 1024)->p;
                     return Case{[=] { t->reduce_mid(x, y, 16, n / 1024, 64, 1.0f); }, double(n), 4.0 * n, double(n)};
                 }});
    // 2x2 stride-2 pooling over 32x32 planes (n/1024 planes); 1 flop (compare/add) per input
    auto pool = [](bool is_max) {
        return [=](const tl_kernel_table *t, int64_t n, std::vector<Buf *> &keep) {
            float *x = keep_buf(keep, n)->p, *y = keep_buf(keep, n / 4)->p;
            tl_window w;
            std::memset(&w, 0, sizeof w);
            w.rank = 2;
            for (int i = 0; i < 2; i++) {
                w.in[i] = 32;
                w.out[i] = 16;
                w.kernel[i] = 2;
                w.stride[i] = 2;
                w.pad[i] = 0;
                w.pad_after[i] = 0;
                w.dilation[i] = 1;
            }
            int64_t planes = n / 1024;
            return Case{[=] {
                            if (is_max) t->max_pool(x, y, planes, &w);
                            else t->avg_pool(x, y, planes, &w);
                        },
                        double(n), 5.0 * n, double(n)};
        };
    };
    v.push_back({"max_pool_2x2", pool(true)});
    v.push_back({"avg_pool_2x2", pool(false)});
    // bias add after a GEMM with 512 output features
    v.push_back({"add_bias_rows_n512", [](const tl_kernel_table *t, int64_t n, std::vector<Buf *> &keep) {
                     float *y = keep_buf(keep, n)->p, *b = keep_buf(keep, 512)->p;
                     return Case{[=] { t->add_bias_rows(y, b, n / 512, 512); }, double(n), 8.0 * n, double(n)};
                 }});
    // the packed-weight linear (narrow batched MLPs) on the sgemm_shape acas50_b1024 layer, with
    // bias and relu: compare with sgemm_shape/acas50_b1024 (n ignored)
    v.push_back({"gemm_packed_acas50_b1024", [](const tl_kernel_table *t, int64_t, std::vector<Buf *> &keep) {
                     const int64_t M = 1024, N = 50, K = 50;
                     float *x = keep_buf(keep, M * K)->p, *w = keep_buf(keep, N * K)->p, *b = keep_buf(keep, N)->p;
                     float *y = keep_buf(keep, M * N)->p, *pk = keep_buf(keep, t->gemm_pack_floats(N, K))->p;
                     t->gemm_pack(w, N, K, pk);
                     return Case{[=] { t->gemm_packed(x, M, N, K, pk, b, nullptr, 0.0f, INFINITY, y); },
                                 2.0 * M * N * K, 4.0 * double(M * K + N * K + M * N), double(M * N)};
                 }});
    return v;
}

void run_kernel(benchmark::State &st, tl_isa isa, Maker make, int64_t n) {
    const tl_kernel_table *t = tl_kernels_for(isa);
    if (!t) {
        st.SkipWithError("ISA not available on this CPU/build");
        for (auto _ : st) {
        }
        return;
    }
    tl_set_threads(1);  // single-thread figures (the roofline is per core)
    std::vector<Buf *> keep;
    Case c = make(t, n, keep);
    c.run();  // touch
    for (auto _ : st) {
        c.run();
        benchmark::ClobberMemory();
    }
    set_counters(st, c.flops, c.bytes, c.items);
    for (Buf *b : keep) delete b;
}

// ---------------------------------------------------------------- sgemm
void run_sgemm(benchmark::State &st, int64_t n, int threads) {
    Buf a(size_t(n * n)), b(size_t(n * n)), c(size_t(n * n));
    tl_set_threads(threads);
    // linear-layer layout: C = A * B^T (weights [out, in])
    tl_sgemm(false, true, n, n, n, 1.f, a.p, n, b.p, n, 0.f, c.p, n);
    for (auto _ : st) {
        tl_sgemm(false, true, n, n, n, 1.f, a.p, n, b.p, n, 0.f, c.p, n);
        benchmark::ClobberMemory();
    }
    double flops = 2.0 * double(n) * double(n) * double(n);
    set_counters(st, flops, 4.0 * 3.0 * double(n) * double(n), 1.0);
    st.counters["threads"] = threads;
    st.SetLabel(tl_blas_info());
    tl_set_threads(1);
}

// The GEMM shapes the zoo's large layers hand to tl_sgemm (per sample / per image, 1 thread):
// how far from the square-matrix rate is OpenBLAS on them, and would another layout help?
struct GemmShape {
    const char *label;
    int64_t M, N, K;
    bool tb;
};
const GemmShape kLayerShapes[] = {
    {"linear1024_b1", 1, 1024, 1024, true},           // mlp_large fc at batch 1 (GEMV-shaped)
    {"linear1024_b64", 64, 1024, 1024, true},         // mlp_large fc at batch 64
    {"linear1024_b64_T", 1024, 64, 1024, true},       // the same as Y^T = W X^T (weights as A)
    {"linear1024_b256", 256, 1024, 1024, true},       // 4 batches of 64 in one call
    {"ff1024_T64", 64, 1024, 256, true},              // transformer_large ff1 per sample (T=64)
    {"conv32to64_32x32", 64, 1024, 288, false},       // cnn_large conv1: W[64,288] x col[288,1024]
    {"conv64to64_32x32", 64, 1024, 576, false},       // cnn_large conv2
    {"conv64to128_16x16", 128, 256, 576, false},      // cnn_large conv3
    {"conv64to64_32x32_T", 1024, 64, 576, true},      // conv2 as col^T x W^T (pixels as rows)
    {"conv64to64_32x32_b64", 64, 65536, 576, false},  // conv2 with the batch folded into N
    {"acas50_b1024", 1024, 50, 50, true},             // ACAS Xu hidden layer at batch 1024
    {"mnist256_b256", 256, 256, 256, true},           // MNIST MLP hidden layer at batch 256
};

void run_sgemm_shape(benchmark::State &st, GemmShape g) {
    Buf a(size_t(g.M * g.K)), b(size_t(g.K * g.N)), c(size_t(g.M * g.N));
    tl_set_threads(1);
    int64_t ldb = g.tb ? g.K : g.N;
    tl_sgemm(false, g.tb, g.M, g.N, g.K, 1.f, a.p, g.K, b.p, ldb, 0.f, c.p, g.N);
    for (auto _ : st) {
        tl_sgemm(false, g.tb, g.M, g.N, g.K, 1.f, a.p, g.K, b.p, ldb, 0.f, c.p, g.N);
        benchmark::ClobberMemory();
    }
    double flops = 2.0 * double(g.M) * double(g.N) * double(g.K);
    set_counters(st, flops, 4.0 * double(g.M * g.K + g.K * g.N + g.M * g.N), 1.0);
    st.counters["M"] = double(g.M);
    st.counters["N"] = double(g.N);
    st.counters["K"] = double(g.K);
}

// cblas_sgemv of the OpenBLAS library tlrt loaded: what a batch-1 linear layer would cost if
// tl_sgemm forwarded M == 1 to GEMV (OpenBLAS 0.3.21 does not do that itself).
typedef void (*sgemv_fn)(int order, int trans, int m, int n, float alpha, const float *a, int lda, const float *x,
                         int incx, float beta, float *y, int incy);
sgemv_fn find_sgemv() {
    (void)tl_blas_info();  // make tlrt load OpenBLAS first
    const char *names[] = {"libopenblas.so.0", "libopenblasp-r0.3.21.so", "libopenblas.so"};
    for (const char *n : names) {
        void *h = dlopen(n, RTLD_NOLOAD | RTLD_LAZY);
        if (h) {
            void *f = dlsym(h, "cblas_sgemv");
            if (f) return reinterpret_cast<sgemv_fn>(f);
        }
    }
    return nullptr;
}

void run_sgemv(benchmark::State &st, int64_t out, int64_t in) {
    sgemv_fn f = find_sgemv();
    if (!f) {
        st.SkipWithError("cblas_sgemv not found in the loaded OpenBLAS");
        for (auto _ : st) {
        }
        return;
    }
    tl_set_threads(1);
    Buf w{size_t(out * in)}, x{size_t(in)}, y{size_t(out)};
    // y = W x  (W [out, in] row-major: the linear layer's weight)
    f(101 /* RowMajor */, 111 /* NoTrans */, int(out), int(in), 1.f, w.p, int(in), x.p, 1, 0.f, y.p, 1);
    for (auto _ : st) {
        f(101, 111, int(out), int(in), 1.f, w.p, int(in), x.p, 1, 0.f, y.p, 1);
        benchmark::ClobberMemory();
    }
    set_counters(st, 2.0 * double(out * in), 4.0 * double(out * in + in + out), 1.0);
}

// ---------------------------------------------------------------- machine peak
// 16 independent FMA chains hide the 4-cycle FMA latency on 2 FMA ports.
constexpr int kFmaIters = 4096;

__attribute__((target("avx512f"), noinline)) float fma_avx512(float s) {
    __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
    // distinct start values, or the compiler folds the identical chains into one
#define TL_X(i) _mm512_set1_ps(s + 0.01f * (i))
    __m512 x0 = TL_X(0), x1 = TL_X(1), x2 = TL_X(2), x3 = TL_X(3), x4 = TL_X(4), x5 = TL_X(5);
    __m512 x6 = TL_X(6), x7 = TL_X(7), x8 = TL_X(8), x9 = TL_X(9), x10 = TL_X(10), x11 = TL_X(11);
    __m512 x12 = TL_X(12), x13 = TL_X(13), x14 = TL_X(14), x15 = TL_X(15);
#undef TL_X
    for (int i = 0; i < kFmaIters; i++) {
        x0 = _mm512_fmadd_ps(x0, a, b);
        x1 = _mm512_fmadd_ps(x1, a, b);
        x2 = _mm512_fmadd_ps(x2, a, b);
        x3 = _mm512_fmadd_ps(x3, a, b);
        x4 = _mm512_fmadd_ps(x4, a, b);
        x5 = _mm512_fmadd_ps(x5, a, b);
        x6 = _mm512_fmadd_ps(x6, a, b);
        x7 = _mm512_fmadd_ps(x7, a, b);
        x8 = _mm512_fmadd_ps(x8, a, b);
        x9 = _mm512_fmadd_ps(x9, a, b);
        x10 = _mm512_fmadd_ps(x10, a, b);
        x11 = _mm512_fmadd_ps(x11, a, b);
        x12 = _mm512_fmadd_ps(x12, a, b);
        x13 = _mm512_fmadd_ps(x13, a, b);
        x14 = _mm512_fmadd_ps(x14, a, b);
        x15 = _mm512_fmadd_ps(x15, a, b);
    }
    __m512 s0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(x0, x1), _mm512_add_ps(x2, x3)),
                              _mm512_add_ps(_mm512_add_ps(x4, x5), _mm512_add_ps(x6, x7)));
    __m512 s1 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(x8, x9), _mm512_add_ps(x10, x11)),
                              _mm512_add_ps(_mm512_add_ps(x12, x13), _mm512_add_ps(x14, x15)));
    float o[16];
    _mm512_storeu_ps(o, _mm512_add_ps(s0, s1));
    float r = 0.f;
    for (float v : o) r += v;
    return r;
}

__attribute__((target("avx2,fma"), noinline)) float fma_avx2(float s) {
    __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
#define TL_X(i) _mm256_set1_ps(s + 0.01f * (i))
    __m256 x0 = TL_X(0), x1 = TL_X(1), x2 = TL_X(2), x3 = TL_X(3), x4 = TL_X(4), x5 = TL_X(5);
    __m256 x6 = TL_X(6), x7 = TL_X(7), x8 = TL_X(8), x9 = TL_X(9), x10 = TL_X(10), x11 = TL_X(11);
#undef TL_X
    for (int i = 0; i < kFmaIters; i++) {
        x0 = _mm256_fmadd_ps(x0, a, b);
        x1 = _mm256_fmadd_ps(x1, a, b);
        x2 = _mm256_fmadd_ps(x2, a, b);
        x3 = _mm256_fmadd_ps(x3, a, b);
        x4 = _mm256_fmadd_ps(x4, a, b);
        x5 = _mm256_fmadd_ps(x5, a, b);
        x6 = _mm256_fmadd_ps(x6, a, b);
        x7 = _mm256_fmadd_ps(x7, a, b);
        x8 = _mm256_fmadd_ps(x8, a, b);
        x9 = _mm256_fmadd_ps(x9, a, b);
        x10 = _mm256_fmadd_ps(x10, a, b);
        x11 = _mm256_fmadd_ps(x11, a, b);
    }
    __m256 s0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3)),
                              _mm256_add_ps(_mm256_add_ps(x4, x5), _mm256_add_ps(x6, x7)));
    s0 = _mm256_add_ps(s0, _mm256_add_ps(_mm256_add_ps(x8, x9), _mm256_add_ps(x10, x11)));
    float o[8];
    _mm256_storeu_ps(o, s0);
    return o[0] + o[1] + o[2] + o[3] + o[4] + o[5] + o[6] + o[7];
}

bool cpu_has_avx512() { return __builtin_cpu_supports("avx512f"); }
bool cpu_has_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

void run_peak(benchmark::State &st, bool avx512) {
    if (avx512 ? !cpu_has_avx512() : !cpu_has_avx2()) {
        st.SkipWithError("ISA not available");
        for (auto _ : st) {
        }
        return;
    }
    float acc = 1.f;
    for (auto _ : st) {
        float r = avx512 ? fma_avx512(acc) : fma_avx2(acc);
        benchmark::DoNotOptimize(r);
    }
    double lanes = avx512 ? 16 : 8, chains = avx512 ? 16 : 12;
    st.counters["GFLOPS"] = benchmark::Counter(2.0 * lanes * chains * kFmaIters / 1e9,
                                               benchmark::Counter::kIsIterationInvariantRate);
}

// ---------------------------------------------------------------- memory bandwidth
// explicit AVX-512 (the -O2 auto-vectorizer leaves the plain loop scalar); n is a multiple of 16
__attribute__((target("avx512f"), noinline)) void triad512(float *a, const float *b, const float *c, float s,
                                                           size_t lo, size_t hi) {
    __m512 vs = _mm512_set1_ps(s);
    for (size_t i = lo; i < hi; i += 16)
        _mm512_store_ps(a + i, _mm512_fmadd_ps(vs, _mm512_load_ps(c + i), _mm512_load_ps(b + i)));
}
__attribute__((noinline)) void triad_plain(float *a, const float *b, const float *c, float s, size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; i++) a[i] = b[i] + s * c[i];
}
void triad(float *a, const float *b, const float *c, float s, size_t n, size_t lo, size_t hi) {
    (void)n;
    lo &= ~size_t(15);
    hi &= ~size_t(15);
    if (__builtin_cpu_supports("avx512f")) triad512(a, b, c, s, lo, hi);
    else triad_plain(a, b, c, s, lo, hi);
}

void run_triad(benchmark::State &st, size_t bytes, int threads) {
    size_t n = bytes / sizeof(float);
    Buf a(n, 0, 1, 1), b(n, 0, 1, 2), c(n, 0, 1, 3);
    auto once = [&] {
        if (threads == 1) {
            triad(a.p, b.p, c.p, 3.f, n, 0, n);
        } else {
            std::vector<std::thread> ts;
            for (int t = 0; t < threads; t++)
                ts.emplace_back(triad, a.p, b.p, c.p, 3.f, n, n * t / threads, n * (t + 1) / threads);
            for (auto &t : ts) t.join();
        }
    };
    once();
    for (auto _ : st) {
        once();
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(static_cast<int64_t>(3.0 * 4.0 * double(n) * double(st.iterations())));
    st.counters["threads"] = threads;
}

void run_memcpy(benchmark::State &st, size_t bytes) {
    size_t n = bytes / sizeof(float);
    Buf a(n, 0, 1, 1), b(n, 0, 1, 2);
    std::memcpy(b.p, a.p, n * sizeof(float));
    for (auto _ : st) {
        std::memcpy(b.p, a.p, n * sizeof(float));
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(static_cast<int64_t>(2.0 * 4.0 * double(n) * double(st.iterations())));
}

// ---------------------------------------------------------------- conv
struct ConvShape {
    const char *label;
    int64_t N, C, OC, G, H, W, K, S, P;  // square kernel K, stride S, padding P on every side
};
const ConvShape kConvShapes[] = {
    {"c3x3_32to32_32x32", 1, 32, 32, 1, 32, 32, 3, 1, 1},
    {"c3x3_64to64_16x16", 1, 64, 64, 1, 16, 16, 3, 1, 1},
    {"c3x3_16to16_32x32", 1, 16, 16, 1, 32, 32, 3, 1, 1},
    {"c3x3_32to32_32x32_b64", 64, 32, 32, 1, 32, 32, 3, 1, 1},  // CIFAR CNN layer at batch 64
    {"c3x3_64to128_16x16", 1, 64, 128, 1, 16, 16, 3, 1, 1},
    {"c3x3_32to64_32x32_s2", 1, 32, 64, 1, 32, 32, 3, 2, 1},
    {"dw3x3_c96_48x48_s1", 1, 96, 96, 96, 48, 48, 3, 1, 1},
    {"dw3x3_c96_48x48_s2", 1, 96, 96, 96, 48, 48, 3, 2, 1},
    {"dw3x3_c16_48x48_s1", 1, 16, 16, 16, 48, 48, 3, 1, 1},  // in + out fit in L2 (288 KiB)
    {"c1x1_96to24_24x24", 1, 96, 24, 1, 24, 24, 1, 1, 0},
    {"c1x1_24to144_24x24", 1, 24, 144, 1, 24, 24, 1, 1, 0},
    // small planes (MobileNetV2 at 96x96, CIFAR's last stage): vectors span several rows
    {"dw3x3_c576_6x6_s1", 1, 576, 576, 576, 6, 6, 3, 1, 1},
    {"dw3x3_c192_12x12_s1", 1, 192, 192, 192, 12, 12, 3, 1, 1},
    {"dw3x3_c960_3x3_s1", 1, 960, 960, 960, 3, 3, 3, 1, 1},
    {"c3x3_64to64_8x8", 1, 64, 64, 1, 8, 8, 3, 1, 1},
    {"c1x1_576to96_6x6", 1, 576, 96, 1, 6, 6, 1, 1, 0},
    // large K (ResNet-sized): does the full-K register tile still hold up?
    {"c3x3_128to128_28x28", 1, 128, 128, 1, 28, 28, 3, 1, 1},
    {"c1x1_256to256_28x28", 1, 256, 256, 1, 28, 28, 1, 1, 0},
    {"c3x3_64to64_32x32_g2", 1, 64, 64, 2, 32, 32, 3, 1, 1},  // grouped
    {"c3x3_3to32_96x96_s2", 1, 3, 32, 1, 96, 96, 3, 2, 1},    // MobileNetV2's first conv
    {"c3x3_3to32_32x32", 1, 3, 32, 1, 32, 32, 3, 1, 1},       // a CIFAR CNN's first conv
    // ResNet-18's stages at 224 (batch 1) and 64 (batch 16): small planes, large K (igemm)
    {"c3x3_64to64_56x56", 1, 64, 64, 1, 56, 56, 3, 1, 1},
    {"c3x3_256to256_14x14", 1, 256, 256, 1, 14, 14, 3, 1, 1},
    {"c3x3_512to512_7x7", 1, 512, 512, 1, 7, 7, 3, 1, 1},
    {"c3x3_256to512_14x14_s2", 1, 256, 512, 1, 14, 14, 3, 2, 1},
    {"c3x3_256to256_4x4_b16", 16, 256, 256, 1, 4, 4, 3, 1, 1},
    {"c3x3_512to512_2x2_b16", 16, 512, 512, 1, 2, 2, 3, 1, 1},
    {"c3x3_128to128_8x8_b16", 16, 128, 128, 1, 8, 8, 3, 1, 1},
};

tl_conv_desc conv_desc(const ConvShape &c) {
    tl_conv_desc d{};
    d.batch = c.N;
    d.in_ch = c.C;
    d.out_ch = c.OC;
    d.groups = c.G;
    d.in_h = c.H;
    d.in_w = c.W;
    d.out_h = (c.H + 2 * c.P - c.K) / c.S + 1;
    d.out_w = (c.W + 2 * c.P - c.K) / c.S + 1;
    d.k_h = d.k_w = c.K;
    d.stride_h = d.stride_w = c.S;
    d.pad_h = d.pad_w = c.P;
    d.dil_h = d.dil_w = 1;
    d.lo = 0.0f;
    d.hi = INFINITY;  // conv + relu
    return d;
}

tl_window conv_window(const tl_conv_desc &d) {
    tl_window w;
    std::memset(&w, 0, sizeof w);
    w.rank = 2;
    int64_t in[2] = {d.in_h, d.in_w}, out[2] = {d.out_h, d.out_w};
    for (int i = 0; i < 2; i++) {
        w.in[i] = in[i];
        w.out[i] = out[i];
        w.kernel[i] = d.k_h;
        w.stride[i] = d.stride_h;
        w.pad[i] = w.pad_after[i] = d.pad_h;
        w.dilation[i] = 1;
    }
    return w;
}

// The runtime's current depthwise loop (runtime/tl_exec.c dw_plane, 2-D): the baseline.
void dw_loop_plane(const float *x, const float *w, float bias, float *y, const tl_conv_desc &d) {
    int64_t OH = d.out_h, OW = d.out_w, s = d.stride_w, p = d.pad_w;
    for (int64_t i = 0; i < OH * OW; i++) y[i] = bias;
    for (int64_t k1 = 0; k1 < d.k_h; k1++)
        for (int64_t k2 = 0; k2 < d.k_w; k2++) {
            float wv = w[k1 * d.k_w + k2];
            int64_t off2 = k2 - p;
            int64_t lo = off2 >= 0 ? 0 : (-off2 + s - 1) / s;
            int64_t hi = d.in_w - off2 <= 0 ? 0 : (d.in_w - off2 - 1) / s + 1;
            if (hi > OW) hi = OW;
            if (lo >= hi) continue;
            for (int64_t o1 = 0; o1 < OH; o1++) {
                int64_t i1 = o1 * s + k1 - p;
                if (i1 < 0 || i1 >= d.in_h) continue;
                const float *xr = x + i1 * d.in_w;
                float *yr = y + o1 * OW;
                for (int64_t o2 = lo; o2 < hi; o2++) yr[o2] += wv * xr[o2 * s + off2];
            }
        }
}

enum class ConvImpl { Im2colSgemm, Direct, Igemm, Dw, DwLoop };

void run_conv(benchmark::State &st, ConvShape c, ConvImpl impl, tl_isa isa, int threads) {
    if (!tl_kernels_for(isa)) {
        st.SkipWithError("ISA not available on this CPU/build");
        for (auto _ : st) {
        }
        return;
    }
    tl_set_threads(threads);
    tl_kernels_set_isa(isa);
    tl_conv_desc d = conv_desc(c);
    int64_t icg = c.C / c.G, kk = icg * c.K * c.K, ohw = d.out_h * d.out_w;
    Buf x(size_t(c.N * c.C * c.H * c.W)), w(size_t(c.OC * kk)), b(size_t(c.OC));
    Buf y(size_t(c.N * c.OC * ohw));
    d.bias = b.p;
    std::function<void()> call;
    std::vector<Buf *> keep;
    if (impl == ConvImpl::Im2colSgemm) {
        tl_window win = conv_window(d);
        bool im2col = !(c.K == 1 && c.S == 1 && c.P == 0);
        float *col = keep_buf(keep, size_t(c.C * c.K * c.K * ohw))->p;
        call = [=, &x, &w, &b, &y] {
            for (int64_t n = 0; n < c.N; n++)
                for (int64_t g = 0; g < c.G; g++) {
                    const float *xg = x.p + (n * c.C + g * icg) * c.H * c.W;
                    if (im2col) tl_k_im2col(xg, col, icg, &win);
                    int64_t ocg = c.OC / c.G;
                    float *yg = y.p + (n * c.OC + g * ocg) * ohw;
                    for (int64_t o = 0; o < ocg; o++)
                        for (int64_t i = 0; i < ohw; i++) yg[o * ohw + i] = b.p[g * ocg + o];
                    tl_sgemm(false, false, ocg, ohw, kk, 1.f, w.p + g * ocg * kk, kk, im2col ? col : xg, ohw, 1.f, yg,
                             ohw);
                }
        };
    } else if (impl == ConvImpl::Direct) {
        float *packed = keep_buf(keep, tl_conv_packed_floats(&d))->p;
        size_t ns = tl_conv_direct_scratch_floats(&d) * size_t(threads);  // images per thread
        float *scr = keep_buf(keep, ns)->p;
        tl_conv_pack(&d, w.p, packed);
        call = [=, &x, &y] { tl_conv_direct(&d, packed, x.p, y.p, scr, ns); };
    } else if (impl == ConvImpl::Igemm) {
        float *packed = keep_buf(keep, tl_conv_igemm_packed_floats(&d))->p;
        size_t ns = tl_conv_igemm_scratch_floats(&d);
        float *scr = keep_buf(keep, ns)->p;
        tl_conv_igemm_pack(&d, w.p, packed);
        call = [=, &x, &y] { tl_conv_igemm(&d, packed, x.p, y.p, nullptr, scr, ns); };
    } else if (impl == ConvImpl::Dw) {
        size_t per = tl_conv_dw_scratch_floats(&d) * size_t(threads);  // a plane per thread
        float *scr = keep_buf(keep, per)->p;
        call = [=, &x, &w, &y] { tl_conv_dw(&d, x.p, w.p, y.p, scr, per); };
    } else {
        call = [=, &x, &w, &b, &y] {
            for (int64_t pl = 0; pl < c.N * c.OC; pl++)
                dw_loop_plane(x.p + pl * c.H * c.W, w.p + (pl % c.OC) * c.K * c.K, b.p[pl % c.OC], y.p + pl * ohw, d);
        };
    }
    call();
    for (auto _ : st) {
        call();
        benchmark::ClobberMemory();
    }
    double flops = 2.0 * double(c.N * c.OC * ohw * kk);
    set_counters(st, flops, 4.0 * double(x.n + w.n + y.n), 1.0);
    st.counters["threads"] = threads;
    tl_kernels_set_isa(tl_kernels_best_isa());
    tl_set_threads(1);
    for (Buf *p : keep) delete p;
}

// ---------------------------------------------------------------- registration
struct Register {
    Register() {
        benchmark::RegisterBenchmark("peak/fma_avx512", run_peak, true);
        benchmark::RegisterBenchmark("peak/fma_avx2", run_peak, false);
        // 256 KiB arrays stay in L2 (2 MiB/core); 256 MiB arrays exceed the 260 MiB L3 together.
        for (auto lvl : {std::make_pair("L2", size_t(256) << 10), std::make_pair("DRAM", size_t(256) << 20)}) {
            benchmark::RegisterBenchmark((std::string("mem/triad/") + lvl.first).c_str(), run_triad, lvl.second, 1);
            benchmark::RegisterBenchmark((std::string("mem/memcpy/") + lvl.first).c_str(), run_memcpy, lvl.second);
        }
        benchmark::RegisterBenchmark("mem/triad/DRAM/threads:2", run_triad, size_t(256) << 20, 2)->UseRealTime();
        for (auto &kc : kernel_cases()) {
            for (tl_isa isa : {TL_ISA_SCALAR, TL_ISA_AVX2, TL_ISA_AVX512}) {
                for (int64_t n : {int64_t(16384), int64_t(262144), int64_t(4194304)}) {
                    std::string name = "kern/" + kc.first + "/" + isa_name(isa) + "/" + std::to_string(n);
                    benchmark::RegisterBenchmark(name.c_str(), run_kernel, isa, kc.second, n);
                }
            }
        }
        // single thread: CPU time is the robust measure on a shared machine
        for (const GemmShape &g : kLayerShapes)
            benchmark::RegisterBenchmark((std::string("sgemm_shape/") + g.label).c_str(), run_sgemm_shape, g);
        for (const ConvShape &c : kConvShapes) {
            std::string base = std::string("conv/") + c.label + "/";
            bool dw = c.G == c.C && c.OC == c.C;
            benchmark::RegisterBenchmark((base + "im2col_sgemm").c_str(), run_conv, c, ConvImpl::Im2colSgemm,
                                         TL_ISA_SCALAR, 1);
            for (tl_isa isa : {TL_ISA_AVX2, TL_ISA_AVX512})
                benchmark::RegisterBenchmark((base + "direct_" + isa_name(isa)).c_str(), run_conv, c,
                                             ConvImpl::Direct, isa, 1);
            if (c.G == 1)
                for (tl_isa isa : {TL_ISA_AVX2, TL_ISA_AVX512})
                    benchmark::RegisterBenchmark((base + "igemm_" + isa_name(isa)).c_str(), run_conv, c,
                                                 ConvImpl::Igemm, isa, 1);
            if (dw) {
                benchmark::RegisterBenchmark((base + "dw_loop").c_str(), run_conv, c, ConvImpl::DwLoop, TL_ISA_SCALAR,
                                             1);
                for (tl_isa isa : {TL_ISA_SCALAR, TL_ISA_AVX2, TL_ISA_AVX512})
                    benchmark::RegisterBenchmark((base + "dw_" + isa_name(isa)).c_str(), run_conv, c, ConvImpl::Dw,
                                                 isa, 1);
            }
        }
        // the thread split (wall time; the machine's 2 cores are shared, so indicative only)
        for (const ConvShape &c : kConvShapes) {
            std::string l = c.label;
            if (l != "c3x3_32to32_32x32_b64" && l != "c3x3_64to64_16x16" && l != "dw3x3_c96_48x48_s1") continue;
            ConvImpl impl = c.G == c.C ? ConvImpl::Dw : ConvImpl::Direct;
            std::string base = "conv/" + l + (impl == ConvImpl::Dw ? "/dw_avx512" : "/direct_avx512");
            for (int t : {1, 2})
                benchmark::RegisterBenchmark((base + "/threads:" + std::to_string(t)).c_str(), run_conv, c, impl,
                                             TL_ISA_AVX512, t)
                    ->UseRealTime();
        }
        benchmark::RegisterBenchmark("sgemv/linear1024_b1", run_sgemv, int64_t(1024), int64_t(1024));
        for (int64_t n : {int64_t(256), int64_t(512), int64_t(1024)}) {
            for (int t : {1, 2}) {
                std::string name = "sgemm/" + std::to_string(n) + "/threads:" + std::to_string(t);
                benchmark::RegisterBenchmark(name.c_str(), run_sgemm, n, t)->UseRealTime();
            }
        }
    }
} reg;

}  // namespace
