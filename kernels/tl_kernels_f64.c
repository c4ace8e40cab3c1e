/* tl_kernels_f64.c - the scalar double reference of every op of a float64 session (tl_kernels_f64.h)
 * and the per-ISA table selection. Each function is the plain loop TorchLean's scalar spec
 * describes over Lean's Float (IEEE binary64, libm double functions); where a formula is chosen
 * (softplus's sign branch, sigmoid's branch, relu at zero), it is TorchLean's
 * (NN/Spec/Layers/Activation.lean), not PyTorch's. docs/float64.md lists each op. */
#include <math.h>
#include <string.h>

#include "tl_kernels_f64_internal.h"

/* ---- unary: TorchLean Activation.Math ---- */
/* reluSpec: if x == 0 then 0 else max x 0 (Lean's max: if x <= 0 then 0 else x): +0 for +-0,
 * NaN stays NaN */
static inline double d_relu1(double x) { return x <= 0.0 ? 0.0 : x; }
/* sigmoidSpec: x > 0: 1 / (1 + exp(-x)); else z / (1 + z), z = exp(x) */
static inline double d_sigmoid1(double x) {
    if (x > 0.0) return 1.0 / (1.0 + exp(-x));
    double z = exp(x);
    return z / (1.0 + z);
}
/* softplusSpec: x > 0: x + log(1 + exp(-x)); else log(1 + exp(x)) (log, not log1p: TorchLean's
 * formula, so the rounding of 1 + exp(..) is TorchLean's too) */
static inline double d_softplus1(double x) { return x > 0.0 ? x + log(1.0 + exp(-x)) : log(1.0 + exp(x)); }

#define TL_D_UNARY_OPS(X) \
    X(IDENTITY, identity, v) \
    X(ABS, abs, fabs(v)) \
    X(SQRT, sqrt, sqrt(v)) \
    X(INV, inv, 1.0 / v) \
    X(RELU, relu, d_relu1(v)) \
    X(TANH, tanh, tanh(v)) \
    X(SIGMOID, sigmoid, d_sigmoid1(v)) \
    X(EXP, exp, exp(v)) \
    X(LOG, log, log(v)) \
    X(SIN, sin, sin(v)) \
    X(COS, cos, cos(v)) \
    X(SOFTPLUS, softplus, d_softplus1(v))

#define TL_D_UNARY_DEF(OP, NAME, EXPR) \
    static void d_u_##NAME(const double *x, double *y, int64_t n) { \
        TL_PFOR(n > TL_PAR_MIN, i, n, double v = x[i]; y[i] = (EXPR);); \
    }
TL_D_UNARY_OPS(TL_D_UNARY_DEF)
#undef TL_D_UNARY_DEF

#define TL_D_BINARY_OPS(X) \
    X(ADD, add, p + q) \
    X(SUB, sub, p - q) \
    X(MUL, mul, p *q) \
    X(MAX, max, tl_dmax1(p, q)) \
    X(MIN, min, tl_dmin1(p, q))

#define TL_D_BINARY_DEF(OP, NAME, EXPR) \
    static void d_b_##NAME(const double *a, const double *b, double *y, int64_t n) { \
        TL_PFOR(n > TL_PAR_MIN, i, n, double p = a[i], q = b[i]; y[i] = (EXPR);); \
    }
TL_D_BINARY_OPS(TL_D_BINARY_DEF)
#undef TL_D_BINARY_DEF

#define TL_D_UNARY_ENTRY(OP, NAME, EXPR) [TL_U_##OP] = d_u_##NAME,
#define TL_D_BINARY_ENTRY(OP, NAME, EXPR) [TL_B_##OP] = d_b_##NAME,
_Static_assert(0 TL_D_UNARY_OPS(TL_KT_COUNT1) == TL_U_COUNT, "one double function per tl_unary");
_Static_assert(0 TL_D_BINARY_OPS(TL_KT_COUNT1) == TL_B_COUNT, "one double function per tl_binary");

const tl_kernel64_table tl_kernels64_scalar_table = {
    .name = "scalar",
    .unary_fn = {TL_D_UNARY_OPS(TL_D_UNARY_ENTRY)},
    .binary_fn = {TL_D_BINARY_OPS(TL_D_BINARY_ENTRY)},
};

tl_unary64_fn tl_k64_unary(const tl_kernel64_table *T, tl_unary op) {
    if ((unsigned)op >= TL_U_COUNT) return NULL;
    return T && T->unary_fn[op] ? T->unary_fn[op] : tl_kernels64_scalar_table.unary_fn[op];
}
tl_binary64_fn tl_k64_binary(const tl_kernel64_table *T, tl_binary op) {
    if ((unsigned)op >= TL_B_COUNT) return NULL;
    return T && T->binary_fn[op] ? T->binary_fn[op] : tl_kernels64_scalar_table.binary_fn[op];
}

const tl_kernel64_table *tl_kernels64_for(tl_isa isa) {
    if (!tl_kernels_for(isa)) return NULL; /* not compiled in / not supported by this CPU */
    switch (isa) {
    case TL_ISA_SCALAR: return &tl_kernels64_scalar_table;
#ifdef TL_KERNELS_X86
    case TL_ISA_AVX2: return &tl_kernels64_avx2_table;
    case TL_ISA_AVX512: return &tl_kernels64_avx512_table;
#else
    case TL_ISA_AVX2:
    case TL_ISA_AVX512: return NULL;
#endif
    case TL_ISA_COUNT: break;
    }
    return NULL;
}

const tl_kernel64_table *tl_kernels64(void) {
    const char *name = tl_kernels()->name;
    for (int i = TL_ISA_COUNT - 1; i > 0; i--)
        if (!strcmp(tl_isa_name((tl_isa)i), name) && tl_kernels64_for((tl_isa)i)) return tl_kernels64_for((tl_isa)i);
    return &tl_kernels64_scalar_table;
}

/* ---- fused elementwise, normalization, reductions ---- */
void tl_k64_safe_log(const double *x, double eps, double *y, int64_t n) {
    TL_PFOR(n > TL_PAR_MIN, i, n, y[i] = log(d_softplus1(x[i]) + eps););
}

/* TorchLean softmaxVecSpec: m = fold max seeded with the first element (Lean's max: the later
 * value when acc <= it), e_k = exp(x_k - m), denominator summed left to right from 0, e_k / s. */
void tl_k64_softmax(const double *x, double *y, int64_t outer, int64_t len, int64_t inner) {
    if (len <= 0) return;
    TL_PFOR(outer > 1 && outer * len * inner > TL_PAR_MIN, o, outer, {
        for (int64_t j = 0; j < inner; j++) {
            const double *xr = x + o * len * inner + j;
            double *yr = y + o * len * inner + j;
            double m = xr[0];
            for (int64_t k = 1; k < len; k++) m = m <= xr[k * inner] ? xr[k * inner] : m;
            double s = 0.0;
            for (int64_t k = 0; k < len; k++) {
                double e = exp(xr[k * inner] - m);
                yr[k * inner] = e;
                s += e;
            }
            for (int64_t k = 0; k < len; k++) yr[k * inner] = yr[k * inner] / s;
        }
    });
}

/* Two passes: mean = (sum left to right) / cols, var = (sum of (x - mean)^2 left to right) / cols
 * (biased), y = (x - mean) / sqrt(var + eps) * gamma + beta: TorchLean's layerNormSpec form. */
void tl_k64_layernorm(const double *x, double *y, int64_t rows, int64_t cols, const double *gamma, const double *beta,
                      double eps) {
    TL_PFOR(rows > 1 && rows * cols > TL_PAR_MIN, r, rows, {
        const double *xr = x + r * cols;
        double *yr = y + r * cols;
        double s = 0.0;
        for (int64_t c = 0; c < cols; c++) s += xr[c];
        double mean = s / (double)cols;
        double v = 0.0;
        for (int64_t c = 0; c < cols; c++) v += (xr[c] - mean) * (xr[c] - mean);
        double sd = sqrt(v / (double)cols + eps);
        for (int64_t c = 0; c < cols; c++) {
            double t = (xr[c] - mean) / sd;
            if (gamma) t = t * gamma[c];
            if (beta) t = t + beta[c];
            yr[c] = t;
        }
    });
}

void tl_k64_batch_norm(const double *x, double *y, int64_t outer, int64_t C, int64_t inner, const double *gamma,
                       const double *beta, const double *mean, const double *var, double eps) {
    TL_PFOR(outer * C * inner > TL_PAR_MIN, oc, outer * C, {
        int64_t c = oc % C;
        const double *xr = x + oc * inner;
        double *yr = y + oc * inner;
        double sd = sqrt(var[c] + eps);
        for (int64_t i = 0; i < inner; i++) {
            double t = (xr[i] - mean[c]) / sd;
            if (gamma) t = t * gamma[c];
            if (beta) t = t + beta[c];
            yr[i] = t;
        }
    });
}

void tl_k64_reduce_mid(const double *x, double *y, int64_t outer, int64_t len, int64_t inner, double mul) {
    TL_PFOR(outer > 1 && outer * len * inner > TL_PAR_MIN, o, outer, {
        for (int64_t j = 0; j < inner; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < len; k++) s += x[(o * len + k) * inner + j];
            y[o * inner + j] = mul == 1.0 ? s : s * mul;
        }
    });
}

/* ---- pooling: the float32 scalar reference's loops (TorchLean Pooling/Spatial.lean) ---- */
typedef struct d_win3 {
    int64_t in[3], out[3], k[3], s[3], p[3], d[3];
} d_win3;

static d_win3 d_win3_of(const tl_window *w) {
    d_win3 r;
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

/* one window of one plane: max (skip padded cells, first value kept unless a later one is
 * strictly greater, 0 when empty) or the zero-padded sum */
static double d_window(const double *xp, const d_win3 *g, int64_t o0, int64_t o1, int64_t o2, bool max) {
    bool have = false;
    double acc = 0.0;
    for (int64_t k0 = 0; k0 < g->k[0]; k0++) {
        int64_t i0 = o0 * g->s[0] + k0 * g->d[0] - g->p[0];
        if (i0 < 0 || i0 >= g->in[0]) continue;
        for (int64_t k1 = 0; k1 < g->k[1]; k1++) {
            int64_t i1 = o1 * g->s[1] + k1 * g->d[1] - g->p[1];
            if (i1 < 0 || i1 >= g->in[1]) continue;
            for (int64_t k2 = 0; k2 < g->k[2]; k2++) {
                int64_t i2 = o2 * g->s[2] + k2 * g->d[2] - g->p[2];
                if (i2 < 0 || i2 >= g->in[2]) continue;
                double v = xp[(i0 * g->in[1] + i1) * g->in[2] + i2];
                if (!max) acc += v;
                else if (!have) {
                    acc = v;
                    have = true;
                } else if (v > acc) acc = v;
            }
        }
    }
    return acc;
}

static void d_pool(const double *x, double *y, int64_t planes, const tl_window *w, bool max) {
    d_win3 g = d_win3_of(w);
    int64_t in_sz = g.in[0] * g.in[1] * g.in[2], out_sz = g.out[0] * g.out[1] * g.out[2];
    double denom = (double)(g.k[0] * g.k[1] * g.k[2]);
    TL_PFOR(planes > 1 && planes * out_sz > TL_PAR_MIN / 4, pl, planes, {
        const double *xp = x + pl * in_sz;
        double *yp = y + pl * out_sz;
        for (int64_t o0 = 0; o0 < g.out[0]; o0++)
            for (int64_t o1 = 0; o1 < g.out[1]; o1++)
                for (int64_t o2 = 0; o2 < g.out[2]; o2++) {
                    double v = d_window(xp, &g, o0, o1, o2, max);
                    yp[(o0 * g.out[1] + o1) * g.out[2] + o2] = max ? v : v / denom;
                }
    });
}

void tl_k64_max_pool(const double *x, double *y, int64_t planes, const tl_window *w) {
    d_pool(x, y, planes, w, true);
}
void tl_k64_avg_pool(const double *x, double *y, int64_t planes, const tl_window *w) {
    d_pool(x, y, planes, w, false);
}

void tl_k64_add_bias_rows(double *y, const double *b, int64_t rows, int64_t n) {
    TL_PFOR(rows > 1 && rows * n > TL_PAR_MIN, r, rows, {
        for (int64_t j = 0; j < n; j++) y[r * n + j] += b[j];
    });
}

/* ---- data movement (exact) ---- */
static void d_strided_copy(const double *x, double *y, int rank, const int64_t *dims, const int64_t *istride) {
    int64_t total = 1;
    for (int a = 0; a < rank; a++) total *= dims[a];
    if (total == 0) return;
    if (rank == 0) {
        y[0] = x[0];
        return;
    }
    int64_t last = dims[rank - 1], ls = istride[rank - 1];
    int64_t rows = total / last;
    TL_PFOR(total > TL_PAR_MIN && rows > 1, r, rows, {
        int64_t rem = r, off = 0;
        for (int a = rank - 2; a >= 0; a--) {
            off += (rem % dims[a]) * istride[a];
            rem /= dims[a];
        }
        double *yr = y + r * last;
        for (int64_t j = 0; j < last; j++) yr[j] = x[off + j * ls];
    });
}

void tl_k64_permute(const double *x, double *y, int rank, const int64_t *in_dims, const int64_t *perm) {
    int64_t in_stride[TL_MAX_RANK_K], out_dims[TL_MAX_RANK_K], istride[TL_MAX_RANK_K];
    int64_t s = 1;
    for (int a = rank - 1; a >= 0; a--) {
        in_stride[a] = s;
        s *= in_dims[a];
    }
    for (int a = 0; a < rank; a++) {
        out_dims[a] = in_dims[perm[a]];
        istride[a] = in_stride[perm[a]];
    }
    d_strided_copy(x, y, rank, out_dims, istride);
}

void tl_k64_broadcast(const double *x, double *y, int rank, const int64_t *from, const int64_t *to) {
    int64_t istride[TL_MAX_RANK_K];
    int64_t s = 1;
    for (int a = rank - 1; a >= 0; a--) {
        istride[a] = (from[a] == 1 && to[a] != 1) ? 0 : s;
        s *= from[a];
    }
    d_strided_copy(x, y, rank, to, istride);
}

void tl_k64_concat(const double *const *parts, const int64_t *part_len, int n_parts, double *y, int64_t outer,
                   int64_t inner) {
    int64_t total_len = 0;
    for (int p = 0; p < n_parts; p++) total_len += part_len[p];
    int64_t row = total_len * inner;
    for (int64_t o = 0; o < outer; o++) {
        double *yo = y + o * row;
        for (int p = 0; p < n_parts; p++) {
            int64_t n = part_len[p] * inner;
            if (n) memcpy(yo, parts[p] + o * n, (size_t)n * sizeof(double));
            yo += n;
        }
    }
}

/* col[(c*K + kk), o] = x[c, o*stride + k*dilation - pad] or 0 outside: the float32 im2col's
 * layout, written plainly (one bounds test per cell) */
void tl_k64_im2col(const double *x, double *col, int64_t C, const tl_window *w) {
    d_win3 g = d_win3_of(w);
    int64_t in_sz = g.in[0] * g.in[1] * g.in[2], out_sz = g.out[0] * g.out[1] * g.out[2];
    int64_t K = g.k[0] * g.k[1] * g.k[2];
    TL_PFOR(C * K * out_sz > TL_PAR_MIN, ck, C * K, {
        int64_t c = ck / K, kk = ck % K;
        int64_t k0 = kk / (g.k[1] * g.k[2]), k1 = kk / g.k[2] % g.k[1], k2 = kk % g.k[2];
        const double *xc = x + c * in_sz;
        double *row = col + ck * out_sz;
        for (int64_t o0 = 0; o0 < g.out[0]; o0++) {
            int64_t i0 = o0 * g.s[0] + k0 * g.d[0] - g.p[0];
            for (int64_t o1 = 0; o1 < g.out[1]; o1++) {
                int64_t i1 = o1 * g.s[1] + k1 * g.d[1] - g.p[1];
                double *r = row + (o0 * g.out[1] + o1) * g.out[2];
                bool ok01 = i0 >= 0 && i0 < g.in[0] && i1 >= 0 && i1 < g.in[1];
                for (int64_t o2 = 0; o2 < g.out[2]; o2++) {
                    int64_t i2 = o2 * g.s[2] + k2 * g.d[2] - g.p[2];
                    r[o2] = ok01 && i2 >= 0 && i2 < g.in[2] ? xc[(i0 * g.in[1] + i1) * g.in[2] + i2] : 0.0;
                }
            }
        }
    });
}

/* ---- TorchLean Spec.Random over Float: sampleUnit = Float.ofNat u / 2^32 (exact in double) ---- */
static inline double d_unit(uint64_t key, int64_t i) {
    uint32_t u = (uint32_t)tl_k_splitmix64(key + (uint64_t)i);
    return (double)u / 4294967296.0;
}

void tl_k64_rand_uniform(uint64_t key, double *y, int64_t n) {
    TL_PFOR(n > TL_PAR_MIN, i, n, y[i] = d_unit(key, i););
}

void tl_k64_bernoulli_mask(uint64_t key, double keep_prob, double *y, int64_t n) {
    TL_PFOR(n > TL_PAR_MIN, i, n, {
        double v;
        if (keep_prob > 0.0) v = (1.0 > keep_prob) ? (keep_prob > d_unit(key, i) ? 1.0 : 0.0) : 1.0;
        else v = 0.0;
        y[i] = v;
    });
}
