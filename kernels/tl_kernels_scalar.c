/* tl_kernels_scalar.c - the scalar reference table: plain C, libm float functions, straightforward
 * loops. Every vectorized table is tested against these functions (tests/c/test_kernels.c), and
 * these against float64 libm. Semantics (NaN, signed zero, thresholds) follow PyTorch; see
 * docs/kernels.md. */
#include <math.h>

#include "tl_kernels_internal.h"

static inline float tl_relu1(float x) { return (0.0f > x) ? 0.0f : x; } /* relu(-0) = -0 */

static inline float tl_sigmoid1(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    float e = expf(x); /* x < 0 or NaN: never overflows */
    return e / (1.0f + e);
}

static inline float tl_softplus1(float x) { return x > TL_SOFTPLUS_THRESHOLD ? x : log1pf(expf(x)); }

/* Every unary op once: (enum suffix, function suffix, expression of v). One function per op, so
 * the runtime can fetch the function at plan time instead of switching on the op per call. */
#define TL_S_UNARY_OPS(X) \
    X(IDENTITY, identity, v) \
    X(ABS, abs, fabsf(v)) \
    X(SQRT, sqrt, sqrtf(v)) \
    X(INV, inv, 1.0f / v) \
    X(RELU, relu, tl_relu1(v)) \
    X(TANH, tanh, tanhf(v)) \
    X(SIGMOID, sigmoid, tl_sigmoid1(v)) \
    X(EXP, exp, expf(v)) \
    X(LOG, log, logf(v)) \
    X(SIN, sin, sinf(v)) \
    X(COS, cos, cosf(v)) \
    X(SOFTPLUS, softplus, tl_softplus1(v))

#define TL_S_UNARY_DEF(OP, NAME, EXPR) \
    static void s_u_##NAME(const float *x, float *y, int64_t n) { \
        TL_PFOR(n > TL_PAR_MIN, i, n, float v = x[i]; y[i] = (EXPR);); \
    }
TL_S_UNARY_OPS(TL_S_UNARY_DEF)
#undef TL_S_UNARY_DEF

/* max/min: the first operand wins ties (so max(-0, +0) = -0, like torch.maximum), NaN in either
 * operand gives NaN. */
static inline float tl_max1(float a, float b) {
    float r = (b > a) ? b : a;
    return (a != a || b != b) ? a + b : r;
}
static inline float tl_min1(float a, float b) {
    float r = (b < a) ? b : a;
    return (a != a || b != b) ? a + b : r;
}

#define TL_S_BINARY_OPS(X) \
    X(ADD, add, p + q) \
    X(SUB, sub, p - q) \
    X(MUL, mul, p *q) \
    X(MAX, max, tl_max1(p, q)) \
    X(MIN, min, tl_min1(p, q))

#define TL_S_BINARY_DEF(OP, NAME, EXPR) \
    static void s_b_##NAME(const float *a, const float *b, float *y, int64_t n) { \
        TL_PFOR(n > TL_PAR_MIN, i, n, float p = a[i], q = b[i]; y[i] = (EXPR);); \
    }
TL_S_BINARY_OPS(TL_S_BINARY_DEF)
#undef TL_S_BINARY_DEF

/* The old per-call dispatchers, kept for call sites that still pass the op. */
static void s_unary(tl_unary op, const float *x, float *y, int64_t n) {
    if ((unsigned)op < TL_U_COUNT) tl_kernels_scalar_table.unary_fn[op](x, y, n);
}
static void s_binary(tl_binary op, const float *a, const float *b, float *y, int64_t n) {
    if ((unsigned)op < TL_B_COUNT) tl_kernels_scalar_table.binary_fn[op](a, b, y, n);
}

/* TorchLean: safe_log(x; eps) = log(softplus(x) + eps). */
static void s_safe_log(const float *x, float eps, float *y, int64_t n) {
    TL_PFOR(n > TL_PAR_MIN, i, n, y[i] = logf(tl_softplus1(x[i]) + eps););
}

static void s_softmax(const float *x, float *y, int64_t outer, int64_t len, int64_t inner) {
    TL_PFOR(outer > 1 && outer * len * inner > TL_PAR_MIN, o, outer, {
        for (int64_t j = 0; j < inner; j++) {
            const float *xr = x + o * len * inner + j;
            float *yr = y + o * len * inner + j;
            float m = -INFINITY;
            for (int64_t k = 0; k < len; k++) m = xr[k * inner] > m ? xr[k * inner] : m;
            float s = 0.0f;
            for (int64_t k = 0; k < len; k++) {
                float e = expf(xr[k * inner] - m);
                yr[k * inner] = e;
                s += e;
            }
            for (int64_t k = 0; k < len; k++) yr[k * inner] = yr[k * inner] / s;
        }
    });
}

static void s_layernorm(const float *x, float *y, int64_t rows, int64_t cols, const float *gamma, const float *beta,
                        float eps) {
    TL_PFOR(rows > 1 && rows * cols > TL_PAR_MIN, r, rows, {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float s = 0.0f;
        for (int64_t c = 0; c < cols; c++) s += xr[c];
        float mean = s / (float)cols;
        float v = 0.0f;
        for (int64_t c = 0; c < cols; c++) v += (xr[c] - mean) * (xr[c] - mean);
        float rstd = 1.0f / sqrtf(v / (float)cols + eps);
        for (int64_t c = 0; c < cols; c++) {
            float t = (xr[c] - mean) * rstd;
            yr[c] = t * (gamma ? gamma[c] : 1.0f) + (beta ? beta[c] : 0.0f);
        }
    });
}

static void s_channel_affine(const float *x, float *y, int64_t outer, int64_t C, int64_t inner, const float *scale,
                             const float *shift) {
    TL_PFOR(outer * C * inner > TL_PAR_MIN, oc, outer * C, {
        int64_t c = oc % C;
        const float *xr = x + oc * inner;
        float *yr = y + oc * inner;
        for (int64_t i = 0; i < inner; i++) yr[i] = xr[i] * scale[c] + shift[c];
    });
}

static void s_reduce_mid(const float *x, float *y, int64_t outer, int64_t len, int64_t inner, float mul) {
    TL_PFOR(outer > 1 && outer * len * inner > TL_PAR_MIN, o, outer, {
        for (int64_t j = 0; j < inner; j++) {
            float s = 0.0f;
            for (int64_t k = 0; k < len; k++) s += x[(o * len + k) * inner + j];
            y[o * inner + j] = s * mul;
        }
    });
}

/* ---- pooling ---- */

/* The window as exactly three axes (missing leading axes have extent 1). */
typedef struct tl_win3 {
    int64_t in[3], out[3], k[3], s[3], p[3], d[3];
} tl_win3;

static tl_win3 tl_win3_of(const tl_window *w) {
    tl_win3 r;
    int off = 3 - w->rank;
    for (int a = 0; a < 3; a++) {
        int b = a - off;
        bool have = b >= 0;
        r.in[a] = have ? w->in[b] : 1;
        r.out[a] = have ? w->out[b] : 1;
        r.k[a] = have ? w->kernel[b] : 1;
        r.s[a] = have ? w->stride[b] : 1;
        r.p[a] = have ? w->pad[b] : 0;
        r.d[a] = have ? (w->dilation[b] > 0 ? w->dilation[b] : 1) : 1;
    }
    return r;
}

/* Max pooling as TorchLean's spec (NN/Spec/Layers/Pooling/Spatial.lean, maxPoolValue): padded
 * cells are skipped (never zero-filled); the window is folded in row-major order keeping the first
 * value and replacing it only when a later value is strictly greater; a window with no input cell
 * gives 0. */
void tl_kscalar_max_pool(const float *x, float *y, int64_t planes, const tl_window *w) {
    tl_win3 g = tl_win3_of(w);
    int64_t in_sz = g.in[0] * g.in[1] * g.in[2], out_sz = g.out[0] * g.out[1] * g.out[2];
    TL_PFOR(planes > 1 && planes * out_sz > TL_PAR_MIN / 4, pl, planes, {
        const float *xp = x + pl * in_sz;
        float *yp = y + pl * out_sz;
        for (int64_t o0 = 0; o0 < g.out[0]; o0++)
            for (int64_t o1 = 0; o1 < g.out[1]; o1++)
                for (int64_t o2 = 0; o2 < g.out[2]; o2++) {
                    bool have = false;
                    float best = 0.0f;
                    for (int64_t k0 = 0; k0 < g.k[0]; k0++) {
                        int64_t i0 = o0 * g.s[0] + k0 * g.d[0] - g.p[0];
                        if (i0 < 0 || i0 >= g.in[0]) continue;
                        for (int64_t k1 = 0; k1 < g.k[1]; k1++) {
                            int64_t i1 = o1 * g.s[1] + k1 * g.d[1] - g.p[1];
                            if (i1 < 0 || i1 >= g.in[1]) continue;
                            for (int64_t k2 = 0; k2 < g.k[2]; k2++) {
                                int64_t i2 = o2 * g.s[2] + k2 * g.d[2] - g.p[2];
                                if (i2 < 0 || i2 >= g.in[2]) continue;
                                float v = xp[(i0 * g.in[1] + i1) * g.in[2] + i2];
                                if (!have) {
                                    best = v;
                                    have = true;
                                } else if (v > best) best = v;
                            }
                        }
                    }
                    yp[(o0 * g.out[1] + o1) * g.out[2] + o2] = best;
                }
    });
}

/* Average pooling as TorchLean's spec (avgPoolValue): padded / out-of-range cells add zero, the
 * window is summed in row-major order from 0, and the sum is divided by the full kernel size
 * (PyTorch count_include_pad=True). */
void tl_kscalar_avg_pool(const float *x, float *y, int64_t planes, const tl_window *w) {
    tl_win3 g = tl_win3_of(w);
    int64_t in_sz = g.in[0] * g.in[1] * g.in[2], out_sz = g.out[0] * g.out[1] * g.out[2];
    float denom = (float)(g.k[0] * g.k[1] * g.k[2]);
    TL_PFOR(planes > 1 && planes * out_sz > TL_PAR_MIN / 4, pl, planes, {
        const float *xp = x + pl * in_sz;
        float *yp = y + pl * out_sz;
        for (int64_t o0 = 0; o0 < g.out[0]; o0++)
            for (int64_t o1 = 0; o1 < g.out[1]; o1++)
                for (int64_t o2 = 0; o2 < g.out[2]; o2++) {
                    float s = 0.0f;
                    for (int64_t k0 = 0; k0 < g.k[0]; k0++) {
                        int64_t i0 = o0 * g.s[0] + k0 * g.d[0] - g.p[0];
                        if (i0 < 0 || i0 >= g.in[0]) continue;
                        for (int64_t k1 = 0; k1 < g.k[1]; k1++) {
                            int64_t i1 = o1 * g.s[1] + k1 * g.d[1] - g.p[1];
                            if (i1 < 0 || i1 >= g.in[1]) continue;
                            for (int64_t k2 = 0; k2 < g.k[2]; k2++) {
                                int64_t i2 = o2 * g.s[2] + k2 * g.d[2] - g.p[2];
                                if (i2 < 0 || i2 >= g.in[2]) continue;
                                s += xp[(i0 * g.in[1] + i1) * g.in[2] + i2];
                            }
                        }
                    }
                    yp[(o0 * g.out[1] + o1) * g.out[2] + o2] = s / denom;
                }
    });
}

static void s_add_bias_rows(float *y, const float *b, int64_t rows, int64_t n) {
    TL_PFOR(rows > 1 && rows * n > TL_PAR_MIN, r, rows, {
        for (int64_t j = 0; j < n; j++) y[r * n + j] += b[j];
    });
}

static void s_bias_clamp_rows(float *y, const float *b, int64_t rows, int64_t n, float lo, float hi) {
    TL_PFOR(rows > 1 && rows * n > TL_PAR_MIN, r, rows, {
        float *yr = y + r * n;
        for (int64_t j = 0; j < n; j++) {
            float v = b ? yr[j] + b[j] : yr[j];
            v = lo > v ? lo : v;
            yr[j] = hi < v ? hi : v;
        }
    });
}

static void s_add_clamp(const float *a, const float *b, float *y, int64_t n, float lo, float hi) {
    TL_PFOR(n > TL_PAR_MIN, i, n, {
        float v = a[i] + b[i];
        v = lo > v ? lo : v;
        y[i] = hi < v ? hi : v;
    });
}

static void s_leaky(float *y, int64_t n, float s) {
    TL_PFOR(n > TL_PAR_MIN, i, n, {
        float v = y[i];
        y[i] = tl_max1(v, s * v);
    });
}

/* packed linear: the reference. Layout: w transposed, [K][N] (no panels). */
static size_t s_gemm_pack_floats(int64_t N, int64_t K) { return (size_t)(N * K); }
static void s_gemm_pack(const float *w, int64_t N, int64_t K, float *packed) {
    for (int64_t k = 0; k < K; k++)
        for (int64_t j = 0; j < N; j++) packed[k * N + j] = w[j * K + k];
}
static void s_gemm_packed(const float *x, int64_t M, int64_t N, int64_t K, const float *packed, const float *bias,
                          const float *res, float lo, float hi, float *y) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < K; k++) acc = fmaf(x[i * K + k], packed[k * N + j], acc);
            float v = bias ? acc + bias[j] : acc;
            if (res) v = v + res[i * N + j];
            v = lo > v ? lo : v;
            y[i * N + j] = hi < v ? hi : v;
        }
}

#define TL_S_UNARY_ENTRY(OP, NAME, EXPR) [TL_U_##OP] = s_u_##NAME,
#define TL_S_BINARY_ENTRY(OP, NAME, EXPR) [TL_B_##OP] = s_b_##NAME,
_Static_assert(0 TL_S_UNARY_OPS(TL_KT_COUNT1) == TL_U_COUNT, "one scalar function per tl_unary");
_Static_assert(0 TL_S_BINARY_OPS(TL_KT_COUNT1) == TL_B_COUNT, "one scalar function per tl_binary");

const tl_kernel_table tl_kernels_scalar_table = {
    .name = "scalar",
    .unary = s_unary,
    .binary = s_binary,
    .unary_fn = {TL_S_UNARY_OPS(TL_S_UNARY_ENTRY)},
    .binary_fn = {TL_S_BINARY_OPS(TL_S_BINARY_ENTRY)},
    .safe_log = s_safe_log,
    .softmax = s_softmax,
    .layernorm = s_layernorm,
    .channel_affine = s_channel_affine,
    .reduce_mid = s_reduce_mid,
    .max_pool = tl_kscalar_max_pool,
    .avg_pool = tl_kscalar_avg_pool,
    .add_bias_rows = s_add_bias_rows,
    .bias_clamp_rows = s_bias_clamp_rows,
    .add_clamp = s_add_clamp,
    .leaky = s_leaky,
    .gemm_pack_floats = s_gemm_pack_floats,
    .gemm_pack = s_gemm_pack,
    .gemm_packed = s_gemm_packed,
};
