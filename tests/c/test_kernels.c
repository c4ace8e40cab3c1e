/* test_kernels.c - every kernel of every available ISA against the scalar reference, the scalar
 * reference against float64 libm, data movement and pooling against naive index loops, 1 vs 2
 * threads bitwise, and tl_sgemm against a double-accumulated GEMM.
 *
 *   test_kernels                 run the tests, print "N passed, M failed"
 *   test_kernels --ulp-report    dense ULP sweep (the table in docs/kernels.md)
 *   test_kernels --print-isa     print the active table's name (used by the TL_ISA test) */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tl_kernels.h"
#include "tl_kernels_internal.h" /* the direct sgemm kernels, tested on their own */

static int n_pass, n_fail;
#define CHECK(cond, ...) \
    do { \
        if (cond) n_pass++; \
        else { \
            n_fail++; \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__); \
            printf("\n"); \
        } \
    } while (0)

/* ---- helpers ---- */

static uint64_t rng_state = 0x1234567887654321ull;
static uint64_t rnd64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rndu(void) { return (double)(rnd64() >> 11) * 0x1.0p-53; }
static float rndf(double lo, double hi) { return (float)(lo + (hi - lo) * rndu()); }

static float bits_f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t f_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Error of y in units of the float ULP at the (double) reference value. */
static double ulp_err(float y, double ref) {
    if (isnan(ref) || isnan(y)) return (isnan(ref) && isnan(y)) ? 0.0 : (double)INFINITY;
    float rf = (float)ref;
    if (isinf(rf) || isinf(y)) return (y == rf) ? 0.0 : (double)INFINITY;
    double a = fabs(ref);
    int e;
    frexp(a, &e); /* a in [2^(e-1), 2^e) */
    int ue = e - 24;
    if (ue < -149) ue = -149;
    return fabs((double)y - ref) / ldexp(1.0, ue);
}

static const tl_kernel_table *isa_tables[TL_ISA_COUNT];
static int n_tables;

/* ---- float64 references ---- */

static double d_sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}
static double d_softplus(float x) { return x > 20.0f ? (double)x : log1p(exp((double)x)); }

static double ref_unary(tl_unary op, float xf) {
    double x = (double)xf;
    switch (op) {
    case TL_U_IDENTITY: return x;
    case TL_U_ABS: return fabs(x);
    case TL_U_SQRT: return sqrt(x);
    case TL_U_INV: return 1.0 / x;
    case TL_U_RELU: return x < 0 ? 0.0 : x;
    case TL_U_TANH: return tanh(x);
    case TL_U_SIGMOID: return d_sigmoid(x);
    case TL_U_EXP: return exp(x);
    case TL_U_LOG: return log(x);
    case TL_U_SIN: return sin(x);
    case TL_U_COS: return cos(x);
    case TL_U_SOFTPLUS: return d_softplus(xf);
    default: return (double)NAN;
    }
}

static const char *unary_name[TL_U_COUNT] = {"identity", "abs", "sqrt", "inv", "relu", "tanh",
                                             "sigmoid",  "exp", "log",  "sin", "cos",  "softplus"};

/* Stated bounds (ULP).
 * scalar_vs_f64: the scalar reference (glibc float libm) against float64 libm.
 * vec_vs_f64:    each vectorized table against float64 (measured maxima in docs/kernels.md).
 * vec_vs_scalar: vector against the scalar reference on the same inputs. 0 = bitwise equal. */
static const double scalar_vs_f64[TL_U_COUNT] = {0, 0, 0.5, 0.5, 0, 2.5, 3, 1, 1, 1, 1, 2};
static const double vec_vs_f64[TL_U_COUNT] = {0, 0, 0.5, 0.5, 0, 2, 3, 1.5, 1.5, 1, 1, 3.5};
static const double vec_vs_scalar[TL_U_COUNT] = {0, 0, 0, 0, 0, 4, 4, 2, 2, 2, 2, 4};
/* safe_log is log(t), t = float(softplus(x)) + eps rounded to float: near t = 1 the rounding of t
 * (not the kernel) dominates, so its bound vs float64 is ULP plus an absolute term in 2^-24. */
#define SAFE_LOG_ULP 3.0
#define SAFE_LOG_ABS 4.0

/* ---- input generation ---- */

static const float edge_vals[] =
    {0.0f,    -0.0f,  1.0f,    -1.0f,           1e30f,    -1e30f,      3e38f,       -3e38f,  100.0f, -100.0f, 88.7f,
     88.73f,  89.5f,  -87.0f,  -103.0f,         -104.5f,  20.0f,       20.0001f,    19.999f, 9.0f,   -9.0f,   0.625f,
     -0.625f, 1e-40f, -1e-40f, 1.17549435e-38f, 1.4e-45f, 16777216.0f, 16777218.0f, -3e7f,   1e10f,  0.5f,    1e-8f};

static void fill_inputs(tl_unary op, float *x, int64_t n, bool edges) {
    double lo = -10, hi = 10;
    if (op == TL_U_LOG || op == TL_U_SQRT) {
        lo = 0;
        hi = 100;
    }
    if (op == TL_U_SIN || op == TL_U_COS) {
        lo = -1000;
        hi = 1000;
    }
    if (op == TL_U_EXP) {
        lo = -100;
        hi = 88;
    }
    if (op == TL_U_SOFTPLUS) {
        lo = -30;
        hi = 30;
    }
    for (int64_t i = 0; i < n; i++) x[i] = rndf(lo, hi);
    if (edges) {
        int ne = (int)(sizeof edge_vals / sizeof edge_vals[0]);
        for (int j = 0; j < ne + 4; j++) {
            int64_t pos = (int64_t)(rnd64() % (uint64_t)n);
            x[pos] = j < ne ? edge_vals[j]
                            : (j == ne           ? NAN
                                   : j == ne + 1 ? INFINITY
                                   : j == ne + 2 ? -INFINITY
                                                 : -NAN);
        }
    }
}

static const int64_t test_sizes_extra[] = {1000, 4099};

/* ---- unary / safe_log ---- */

static void test_unary(void) {
    int64_t maxn = 4099;
    float *x = malloc(sizeof(float) * (size_t)maxn), *ys = malloc(sizeof(float) * (size_t)maxn),
          *yv = malloc(sizeof(float) * (size_t)maxn);
    const tl_kernel_table *S = tl_kernels_for(TL_ISA_SCALAR);
    for (int op = 0; op < TL_U_COUNT; op++) {
        double worst_sf = 0, worst_vs[TL_ISA_COUNT] = {0}, worst_vf[TL_ISA_COUNT] = {0};
        bool bitwise_ok[TL_ISA_COUNT] = {true, true, true}, nan_ok = true;
        for (int si = 0; si < 67 + 2; si++) {
            int64_t n = si < 67 ? si + 1 : test_sizes_extra[si - 67];
            for (int rep = 0; rep < 3; rep++) {
                fill_inputs((tl_unary)op, x, n, rep > 0);
                S->unary((tl_unary)op, x, ys, n);
                for (int64_t i = 0; i < n; i++) {
                    double r = ref_unary((tl_unary)op, x[i]);
                    double e = ulp_err(ys[i], r);
                    if (e > worst_sf) worst_sf = e;
                    if (isnan(r) != isnan(ys[i])) nan_ok = false;
                }
                for (int t = 1; t < n_tables; t++) {
                    memset(yv, 0xff, sizeof(float) * (size_t)n);
                    isa_tables[t]->unary((tl_unary)op, x, yv, n);
                    for (int64_t i = 0; i < n; i++) {
                        double e = ulp_err(yv[i], (double)ys[i]);
                        if (e > worst_vs[t]) worst_vs[t] = e;
                        double ef = ulp_err(yv[i], ref_unary((tl_unary)op, x[i]));
                        if (ef > worst_vf[t]) worst_vf[t] = ef;
                        if (vec_vs_scalar[op] == 0 && f_bits(yv[i]) != f_bits(ys[i]) &&
                            !(isnan(yv[i]) && isnan(ys[i])))
                            bitwise_ok[t] = false;
                    }
                }
            }
        }
        printf("  %-8s max ULP: scalar vs f64 %.3f", unary_name[op], worst_sf);
        for (int t = 1; t < n_tables; t++)
            printf(" | %s vs f64 %.3f, vs scalar %.3f", isa_tables[t]->name, worst_vf[t], worst_vs[t]);
        printf("\n");
        CHECK(nan_ok, "scalar %s: NaN where float64 has none (or vice versa)", unary_name[op]);
        CHECK(worst_sf <= scalar_vs_f64[op], "scalar %s vs float64: %.3f ULP > %.2f", unary_name[op], worst_sf,
              scalar_vs_f64[op]);
        for (int t = 1; t < n_tables; t++) {
            CHECK(worst_vs[t] <= vec_vs_scalar[op], "%s %s vs scalar: %.3f ULP > %.2f", isa_tables[t]->name,
                  unary_name[op], worst_vs[t], vec_vs_scalar[op]);
            CHECK(worst_vf[t] <= vec_vs_f64[op], "%s %s vs float64: %.3f ULP > %.2f", isa_tables[t]->name,
                  unary_name[op], worst_vf[t], vec_vs_f64[op]);
            CHECK(bitwise_ok[t], "%s %s not bitwise equal to scalar", isa_tables[t]->name, unary_name[op]);
        }
    }
    /* PyTorch semantics at the edges, every table */
    for (int t = 0; t < n_tables; t++) {
        const tl_kernel_table *K = isa_tables[t];
        float in[4] = {-0.0f, NAN, -5.0f, 3.0f}, out[4];
        K->unary(TL_U_RELU, in, out, 4);
        CHECK(f_bits(out[0]) == f_bits(-0.0f) && isnan(out[1]) && out[2] == 0.0f && out[3] == 3.0f,
              "%s relu edge semantics", K->name);
        float sp[5] = {20.0f, 20.5f, INFINITY, -INFINITY, -200.0f}, so[5];
        K->unary(TL_U_SOFTPLUS, sp, so, 5);
        CHECK(so[1] == 20.5f && so[2] == INFINITY && so[3] == 0.0f && so[4] == 0.0f &&
                  fabs((double)so[0] - 20.0) < 1e-5,
              "%s softplus edges: %g %g %g %g %g", K->name, (double)so[0], (double)so[1], (double)so[2],
              (double)so[3], (double)so[4]);
        float sg[4] = {-INFINITY, INFINITY, -200.0f, 200.0f}, sgo[4];
        K->unary(TL_U_SIGMOID, sg, sgo, 4);
        CHECK(sgo[0] == 0.0f && sgo[1] == 1.0f && sgo[2] == 0.0f && sgo[3] == 1.0f, "%s sigmoid saturation", K->name);
        float th[4] = {-0.0f, INFINITY, -INFINITY, 50.0f}, tho[4];
        K->unary(TL_U_TANH, th, tho, 4);
        CHECK(f_bits(tho[0]) == f_bits(-0.0f) && tho[1] == 1.0f && tho[2] == -1.0f && tho[3] == 1.0f, "%s tanh edges",
              K->name);
        float lg[4] = {0.0f, -1.0f, INFINITY, 1e-45f}, lgo[4];
        K->unary(TL_U_LOG, lg, lgo, 4);
        CHECK(lgo[0] == -INFINITY && isnan(lgo[1]) && lgo[2] == INFINITY &&
                  fabs((double)lgo[3] - log((double)lg[3])) < 1e-5,
              "%s log edges", K->name);
        float ex[4] = {-INFINITY, INFINITY, 89.0f, -105.0f}, exo[4];
        K->unary(TL_U_EXP, ex, exo, 4);
        CHECK(exo[0] == 0.0f && exo[1] == INFINITY && exo[2] == INFINITY && exo[3] == 0.0f, "%s exp edges", K->name);
        float tr[3] = {-0.0f, INFINITY, 1e-40f}, tro[3], tco[3];
        K->unary(TL_U_SIN, tr, tro, 3);
        K->unary(TL_U_COS, tr, tco, 3);
        CHECK(f_bits(tro[0]) == f_bits(-0.0f) && isnan(tro[1]) && tro[2] == 1e-40f && tco[0] == 1.0f &&
                  isnan(tco[1]) && tco[2] == 1.0f,
              "%s sin/cos edges", K->name);
    }
    /* safe_log = log(softplus(x) + eps) (TorchLean), several eps: bitwise equal to the table's own
     * softplus, a float add and the table's own log; within SAFE_LOG_ULP ulp + SAFE_LOG_ABS 2^-24
     * of float64 log(softplus(x) + eps). */
    const float epss[3] = {1e-6f, 0.0f, 0.5f};
    float *t1 = malloc(sizeof(float) * (size_t)maxn);
    for (int ei = 0; ei < 3; ei++) {
        double worst[TL_ISA_COUNT] = {0};
        bool comp_ok[TL_ISA_COUNT] = {true, true, true};
        for (int64_t n = 1; n <= 4099; n = n < 67 ? n + 1 : n * 4 + 7) {
            fill_inputs(TL_U_SOFTPLUS, x, n, true);
            for (int t = 0; t < n_tables; t++) {
                isa_tables[t]->safe_log(x, epss[ei], yv, n);
                isa_tables[t]->unary(TL_U_SOFTPLUS, x, t1, n);
                for (int64_t i = 0; i < n; i++) t1[i] += epss[ei];
                isa_tables[t]->unary(TL_U_LOG, t1, ys, n);
                for (int64_t i = 0; i < n; i++) {
                    if (f_bits(ys[i]) != f_bits(yv[i]) && !(isnan(ys[i]) && isnan(yv[i]))) comp_ok[t] = false;
                    double r = log(d_softplus(x[i]) + (double)epss[ei]);
                    if (isinf(yv[i]) && (float)(d_softplus(x[i]) + (double)epss[ei]) == 0.0f)
                        continue; /* t underflows */
                    double e = fabs((double)yv[i] - r);
                    double tol = SAFE_LOG_ULP * ulp_err(nextafterf((float)r, INFINITY), r) + SAFE_LOG_ABS * 0x1.0p-24;
                    if (isnan(r) || isinf(r)) e = ulp_err(yv[i], r), tol = 0;
                    if (!(e <= tol)) {
                        if (worst[t] < 1) worst[t] = 1 + e;
                    }
                }
            }
        }
        for (int t = 0; t < n_tables; t++) {
            CHECK(comp_ok[t], "%s safe_log eps=%g != log(softplus(x) + eps) of the same table", isa_tables[t]->name,
                  (double)epss[ei]);
            CHECK(worst[t] == 0, "%s safe_log eps=%g vs float64 beyond bound (err %.3g)", isa_tables[t]->name,
                  (double)epss[ei], worst[t] - 1);
        }
    }
    free(t1);
    free(x);
    free(ys);
    free(yv);
}

/* ---- binary ---- */

static float ref_max(float a, float b) { return (isnan(a) || isnan(b)) ? NAN : (b > a ? b : a); }
static float ref_min(float a, float b) { return (isnan(a) || isnan(b)) ? NAN : (b < a ? b : a); }

static void test_binary(void) {
    int64_t maxn = 4099;
    float *a = malloc(4 * (size_t)maxn), *b = malloc(4 * (size_t)maxn), *y = malloc(4 * (size_t)maxn);
    for (int op = 0; op < TL_B_COUNT; op++) {
        bool ok[TL_ISA_COUNT] = {true, true, true};
        for (int si = 0; si < 69; si++) {
            int64_t n = si < 67 ? si + 1 : test_sizes_extra[si - 67];
            fill_inputs(TL_U_TANH, a, n, true);
            fill_inputs(TL_U_TANH, b, n, true);
            if (n > 4) {
                a[0] = -0.0f;
                b[0] = 0.0f;
                a[1] = 0.0f;
                b[1] = -0.0f;
                a[2] = b[2] = 7.0f;
            }
            for (int t = 0; t < n_tables; t++) {
                isa_tables[t]->binary((tl_binary)op, a, b, y, n);
                for (int64_t i = 0; i < n; i++) {
                    float r;
                    switch (op) {
                    case TL_B_ADD: r = (float)((double)a[i] + (double)b[i]); break;
                    case TL_B_SUB: r = (float)((double)a[i] - (double)b[i]); break;
                    case TL_B_MUL: r = (float)((double)a[i] * (double)b[i]); break;
                    case TL_B_MAX: r = ref_max(a[i], b[i]); break;
                    default: r = ref_min(a[i], b[i]); break;
                    }
                    bool same = (isnan(r) && isnan(y[i])) || f_bits(r) == f_bits(y[i]);
                    if (!same) ok[t] = false;
                }
            }
        }
        for (int t = 0; t < n_tables; t++)
            CHECK(ok[t], "%s binary op %d differs from the float64-rounded / torch.maximum reference",
                  isa_tables[t]->name, op);
    }
    /* torch.maximum(-0., 0.) = -0. (first operand wins ties) */
    for (int t = 0; t < n_tables; t++) {
        float p[2] = {-0.0f, 0.0f}, q[2] = {0.0f, -0.0f}, r[2];
        isa_tables[t]->binary(TL_B_MAX, p, q, r, 2);
        CHECK(f_bits(r[0]) == f_bits(-0.0f) && f_bits(r[1]) == f_bits(0.0f), "%s max(-0,0)", isa_tables[t]->name);
    }
    free(a);
    free(b);
    free(y);
}

/* ---- softmax / layernorm / channel_affine / reduce_mid / add_bias_rows ---- */

static void ref_softmax(const float *x, double *y, int64_t outer, int64_t len, int64_t inner) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            double m = -(double)INFINITY, s = 0;
            for (int64_t k = 0; k < len; k++) m = fmax(m, (double)x[(o * len + k) * inner + j]);
            for (int64_t k = 0; k < len; k++) s += exp((double)x[(o * len + k) * inner + j] - m);
            for (int64_t k = 0; k < len; k++)
                y[(o * len + k) * inner + j] = exp((double)x[(o * len + k) * inner + j] - m) / s;
        }
}

static void test_rowwise(void) {
    const int64_t shapes[][3] = {{1, 1, 1}, {1, 7, 1}, {3, 17, 1},  {2, 67, 1},  {1, 1000, 1}, {1, 4099, 1},
                                 {2, 5, 3}, {3, 9, 8}, {2, 13, 17}, {1, 33, 67}, {4, 3, 16},   {5, 1, 9}};
    int nsh = (int)(sizeof shapes / sizeof shapes[0]);
    for (int s = 0; s < nsh; s++) {
        int64_t O = shapes[s][0], L = shapes[s][1], I = shapes[s][2], n = O * L * I;
        float *x = malloc(4 * (size_t)n), *y = malloc(4 * (size_t)n), *y0 = malloc(4 * (size_t)n);
        double *r = malloc(8 * (size_t)n);
        for (int64_t i = 0; i < n; i++) x[i] = rndf(-12, 12);
        if (n > 3) {
            x[0] = 1e30f;
            x[1] = -INFINITY;
        } /* max subtraction must keep this finite */
        ref_softmax(x, r, O, L, I);
        for (int t = 0; t < n_tables; t++) {
            isa_tables[t]->softmax(x, y, O, L, I);
            double worst = 0;
            for (int64_t i = 0; i < n; i++) {
                double e = fabs((double)y[i] - r[i]) / (fabs(r[i]) + 1e-30);
                if (!(e <= worst)) worst = e;
            }
            CHECK(worst < 2e-5, "%s softmax [%lld,%lld,%lld]: rel err %.3g", isa_tables[t]->name, (long long)O,
                  (long long)L, (long long)I, worst);
        }
        /* layernorm over rows of length L*I, gamma/beta random, and NULL (unit/zero) */
        int64_t rows = O, cols = L * I;
        float *g = malloc(4 * (size_t)cols), *b = malloc(4 * (size_t)cols);
        for (int64_t c = 0; c < cols; c++) {
            g[c] = rndf(0.5, 2);
            b[c] = rndf(-1, 1);
        }
        for (int64_t i = 0; i < n; i++) x[i] = rndf(2, 6);
        for (int withaff = 0; withaff < 2; withaff++) {
            for (int64_t rr = 0; rr < rows; rr++) {
                double m = 0, v = 0;
                for (int64_t c = 0; c < cols; c++) m += (double)x[rr * cols + c];
                m /= (double)cols;
                for (int64_t c = 0; c < cols; c++)
                    v += ((double)x[rr * cols + c] - m) * ((double)x[rr * cols + c] - m);
                v /= (double)cols;
                for (int64_t c = 0; c < cols; c++) {
                    double t = ((double)x[rr * cols + c] - m) / sqrt(v + 1e-5);
                    r[rr * cols + c] = withaff ? t * (double)g[c] + (double)b[c] : t;
                }
            }
            for (int t = 0; t < n_tables; t++) {
                isa_tables[t]->layernorm(x, y, rows, cols, withaff ? g : NULL, withaff ? b : NULL, 1e-5f);
                double worst = 0;
                for (int64_t i = 0; i < n; i++) {
                    double e = fabs((double)y[i] - r[i]);
                    if (!(e <= worst)) worst = e;
                }
                CHECK(worst < 2e-4, "%s layernorm [%lld,%lld] affine=%d: abs err %.3g", isa_tables[t]->name,
                      (long long)rows, (long long)cols, withaff, worst);
            }
        }
        /* channel_affine over [O, L, I] with C = L: bitwise vs scalar, <= 1 ULP of two roundings */
        float *sc = malloc(4 * (size_t)L), *sh = malloc(4 * (size_t)L);
        for (int64_t c = 0; c < L; c++) {
            sc[c] = rndf(-2, 2);
            sh[c] = rndf(-1, 1);
        }
        for (int64_t i = 0; i < n; i++) x[i] = rndf(-5, 5);
        isa_tables[0]->channel_affine(x, y0, O, L, I, sc, sh);
        double worst = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t c = i / I % L;
            double e = fabs((double)y0[i] - ((double)x[i] * (double)sc[c] + (double)sh[c]));
            double tol = 1.2e-7 * (fabs((double)x[i] * (double)sc[c]) + fabs((double)sh[c])) + 1e-30;
            if (!(e / tol <= worst)) worst = e / tol;
        }
        CHECK(worst <= 1.0, "scalar channel_affine vs float64: %.3g of bound", worst);
        for (int t = 1; t < n_tables; t++) {
            isa_tables[t]->channel_affine(x, y, O, L, I, sc, sh);
            CHECK(!memcmp(y, y0, 4 * (size_t)n), "%s channel_affine not bitwise equal to scalar",
                  isa_tables[t]->name);
        }
        /* reduce_mid: vs float64 sum, bitwise vs scalar when inner > 1 */
        float *rm = malloc(4 * (size_t)(O * I)), *rm0 = malloc(4 * (size_t)(O * I));
        isa_tables[0]->reduce_mid(x, rm0, O, L, I, 0.25f);
        for (int t = 0; t < n_tables; t++) {
            isa_tables[t]->reduce_mid(x, rm, O, L, I, 0.25f);
            double w = 0;
            for (int64_t o = 0; o < O; o++)
                for (int64_t j = 0; j < I; j++) {
                    double s2 = 0, sa = 0;
                    for (int64_t k = 0; k < L; k++) {
                        s2 += (double)x[(o * L + k) * I + j];
                        sa += fabs((double)x[(o * L + k) * I + j]);
                    }
                    double e = fabs((double)rm[o * I + j] - 0.25 * s2) / (0.25 * sa * (double)L * 6e-8 + 1e-30);
                    if (!(e <= w)) w = e;
                }
            CHECK(w <= 1.0, "%s reduce_mid [%lld,%lld,%lld]: %.3g of the L*eps*sum|x| bound", isa_tables[t]->name,
                  (long long)O, (long long)L, (long long)I, w);
            if (I > 1)
                CHECK(!memcmp(rm, rm0, 4 * (size_t)(O * I)), "%s reduce_mid inner>1 not bitwise",
                      isa_tables[t]->name);
        }
        /* add_bias_rows over [O*L, I]: bitwise equal to float64 add rounded once */
        for (int t = 0; t < n_tables; t++) {
            memcpy(y, x, 4 * (size_t)n);
            isa_tables[t]->add_bias_rows(y, sh, O * I, L);
            bool ok = true;
            for (int64_t i = 0; i < n; i++)
                if (f_bits(y[i]) != f_bits((float)((double)x[i] + (double)sh[i % L]))) ok = false;
            CHECK(ok, "%s add_bias_rows", isa_tables[t]->name);
        }
        free(rm);
        free(rm0);
        free(sc);
        free(sh);
        free(g);
        free(b);
        free(x);
        free(y);
        free(y0);
        free(r);
    }
    /* softmax of a row with NaN is all NaN; a row with -inf entries gives exact zeros there */
    for (int t = 0; t < n_tables; t++) {
        float x[20], y[20];
        for (int i = 0; i < 20; i++) x[i] = (float)i * 0.1f;
        x[7] = NAN;
        isa_tables[t]->softmax(x, y, 1, 20, 1);
        bool alln = true;
        for (int i = 0; i < 20; i++) alln = alln && isnan(y[i]);
        CHECK(alln, "%s softmax NaN row", isa_tables[t]->name);
        x[7] = -INFINITY;
        isa_tables[t]->softmax(x, y, 1, 20, 1);
        CHECK(y[7] == 0.0f && y[19] > y[18], "%s softmax -inf entry", isa_tables[t]->name);
    }
}

/* ---- pooling vs a naive definition ---- */

/* Naive TorchLean pooling: list every in-range window cell (row-major), then fold. */
static void naive_pool(bool is_max, const float *x, float *y, int64_t planes, const tl_window *w) {
    int R = w->rank;
    int64_t in_sz = 1, out_sz = 1, ksz = 1;
    for (int a = 0; a < R; a++) {
        in_sz *= w->in[a];
        out_sz *= w->out[a];
        ksz *= w->kernel[a];
    }
    for (int64_t p = 0; p < planes; p++)
        for (int64_t oi = 0; oi < out_sz; oi++) {
            int64_t o[3], rem = oi;
            for (int a = R - 1; a >= 0; a--) {
                o[a] = rem % w->out[a];
                rem /= w->out[a];
            }
            float vals[512];
            int nv = 0;
            for (int64_t ki = 0; ki < ksz; ki++) {
                int64_t k[3], r2 = ki, off = 0;
                bool in = true;
                for (int a = R - 1; a >= 0; a--) {
                    k[a] = r2 % w->kernel[a];
                    r2 /= w->kernel[a];
                }
                for (int a = 0; a < R; a++) {
                    int64_t i = o[a] * w->stride[a] + k[a] * w->dilation[a] - w->pad[a];
                    if (i < 0 || i >= w->in[a]) in = false;
                    off = off * w->in[a] + i;
                }
                if (in) vals[nv++] = x[p * in_sz + off];
            }
            float r;
            if (is_max) {
                r = 0.0f;
                for (int j = 0; j < nv; j++)
                    if (j == 0 || vals[j] > r) r = vals[j];
            } else {
                double s = 0;
                for (int j = 0; j < nv; j++) s += (double)vals[j];
                r = (float)(s / (double)ksz);
            }
            y[p * out_sz + oi] = r;
        }
}

static int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t pa, int64_t d) {
    int64_t span = in + p + pa - d * (k - 1) - 1;
    return span < 0 ? 0 : span / s + 1;
}

static tl_window make_window(int R, const int64_t *in, const int64_t *k, const int64_t *s, const int64_t *p,
                             const int64_t *pa, const int64_t *d) {
    tl_window w;
    memset(&w, 0, sizeof w);
    w.rank = R;
    for (int a = 0; a < R; a++) {
        w.in[a] = in[a];
        w.kernel[a] = k[a];
        w.stride[a] = s[a];
        w.pad[a] = p[a];
        w.pad_after[a] = pa[a];
        w.dilation[a] = d[a];
        w.out[a] = pool_out(in[a], k[a], s[a], p[a], pa[a], d[a]);
    }
    return w;
}

/* pooling inputs: ties, +-0, NaN and +-inf among random values */
static void fill_pool_special(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint64_t c = rnd64() % 16;
        x[i] = c == 0 ? NAN
            : c == 1  ? -0.0f
            : c == 2  ? 0.0f
            : c == 3  ? INFINITY
            : c == 4  ? -INFINITY
            : c < 8   ? (float)(int)(rnd64() % 3)
                      : rndf(-5, 5);
    }
}

/* One case of a pooling fast path, kind 2: 2x2 / stride 2 / no padding (max and avg), kind 3:
 * 3x3 / stride 2 / padding 1 (max); iter % 8 in 5..7 moves the geometry just off the path. Every
 * vector table bitwise vs the scalar one (a NaN may differ in payload), the scalar max vs the
 * naive definition, and nothing stored past the output. */
static void pool_fast_path_case(int kind, int iter) {
    int R = iter % 4 == 3 ? 3 : 2, off = R - 2;
    int64_t in[3], k[3], s[3], p[3], pa[3], d[3];
    if (R == 3) {
        in[0] = 1 + (int64_t)(rnd64() % 3);
        k[0] = s[0] = d[0] = 1;
        p[0] = pa[0] = 0;
    }
    for (int a = off; a < R; a++) {
        in[a] = 1 + (int64_t)(rnd64() % (a == R - 1 ? (kind == 2 ? 41 : 70) : (kind == 2 ? 9 : 12)));
        if (kind == 2 && in[a] < 2) in[a] = 2;
        k[a] = kind;
        s[a] = 2;
        p[a] = kind == 2 ? 0 : 1;
        pa[a] = kind == 2 ? (iter % 5 == 1 && in[a] % 2 == 0 ? 1 : 0) : (rnd64() % 3 == 0 ? 0 : 1);
        d[a] = 1;
    }
    int variant = iter % 8; /* 0..4: the fast path; 5: padding changed; 6: stride 1 / dilation; 7: the other */
    if (kind == 2) {
        if (variant == 5) p[R - 1] = pa[R - 1] = 1;
        if (variant == 6) d[off] = 2, in[off] += 2;
        if (variant == 7) s[R - 1] = 1;
    } else {
        if (variant == 5) p[R - 1] = pa[R - 1] = 0, in[R - 1] += 3;
        if (variant == 6) s[off] = 1;
        if (variant == 7) d[R - 1] = 2, in[R - 1] += 4;
    }
    tl_window w = make_window(R, in, k, s, p, pa, d);
    int64_t planes = 1 + (int64_t)(rnd64() % (kind == 2 ? 37 : 13)), in_sz = planes, out_sz = planes;
    for (int a = 0; a < R; a++) {
        in_sz *= w.in[a];
        out_sz *= w.out[a];
    }
    float *x = malloc(4 * (size_t)in_sz), *r = malloc(4 * (size_t)out_sz + 4), *y = malloc(4 * (size_t)out_sz + 8);
    fill_pool_special(x, in_sz);
    for (int is_max = kind == 2 ? 0 : 1; is_max < 2; is_max++) {
        (is_max ? isa_tables[0]->max_pool : isa_tables[0]->avg_pool)(x, r, planes, &w);
        if (is_max) { /* the scalar reference itself vs the naive definition */
            naive_pool(true, x, y, planes, &w);
            bool ok = true;
            for (int64_t i = 0; i < out_sz; i++)
                if (f_bits(y[i]) != f_bits(r[i])) ok = false;
            CHECK(ok, "scalar max pool %dx%d/2 vs naive, rank %d iter %d", kind, kind, R, iter);
        }
        for (int t = 1; t < n_tables; t++) {
            const tl_kernel_table *K = isa_tables[t];
            y[out_sz] = 77.0f; /* the masked tail stores nothing past the output */
            (is_max ? K->max_pool : K->avg_pool)(x, y, planes, &w);
            bool ok = y[out_sz] == 77.0f;
            for (int64_t i = 0; i < out_sz; i++)
                if (f_bits(y[i]) != f_bits(r[i]) && !(isnan(y[i]) && isnan(r[i]))) ok = false;
            CHECK(ok, "%s %s pool %dx%d/2 bitwise vs scalar, rank %d variant %d iter %d", K->name,
                  is_max ? "max" : "avg", kind, kind, R, variant, iter);
        }
    }
    free(x);
    free(y);
    free(r);
}

static void test_pool(void) {
    for (int iter = 0; iter < 60; iter++) {
        int R = 1 + iter % 3;
        int64_t in[3], k[3], s[3], p[3], pa[3], d[3];
        for (int a = 0; a < R; a++) {
            in[a] = 1 + (int64_t)(rnd64() % (R == 3 ? 7 : 13));
            k[a] = 1 + (int64_t)(rnd64() % 3);
            s[a] = 1 + (int64_t)(rnd64() % 3);
            p[a] = (int64_t)(rnd64() % (uint64_t)(k[a] / 2 + 1));
            pa[a] = p[a];
            d[a] = iter % 4 == 3 ? 2 : 1;
        }
        tl_window w = make_window(R, in, k, s, p, pa, d);
        int64_t planes = 1 + iter % 4, in_sz = planes, out_sz = planes;
        for (int a = 0; a < R; a++) {
            in_sz *= w.in[a];
            out_sz *= w.out[a];
        }
        float *x = malloc(4 * (size_t)in_sz), *y = malloc(4 * (size_t)out_sz + 4),
              *r = malloc(4 * (size_t)out_sz + 4);
        for (int64_t i = 0; i < in_sz; i++) x[i] = rndf(-9, -1); /* all negative: padding must be skipped */
        for (int is_max = 0; is_max < 2; is_max++) {
            naive_pool(is_max, x, r, planes, &w);
            for (int t = 0; t < n_tables; t++) {
                const tl_kernel_table *K = isa_tables[t];
                (is_max ? K->max_pool : K->avg_pool)(x, y, planes, &w);
                bool ok = true;
                for (int64_t i = 0; i < out_sz; i++) {
                    if (is_max ? f_bits(y[i]) != f_bits(r[i])
                               : fabs((double)y[i] - (double)r[i]) > 4e-7 * fabs((double)r[i]) + 1e-30)
                        ok = false;
                }
                CHECK(ok, "%s %s pool rank %d iter %d", K->name, is_max ? "max" : "avg", R, iter);
            }
        }
        free(x);
        free(y);
        free(r);
    }
    /* vector tables bitwise equal to the scalar reference (same per-output fold order): random
     * geometries incl. stride, dilation, asymmetric padding, many planes (lanes span planes),
     * inputs with ties, +-0, NaN and +-inf */
    for (int iter = 0; iter < 120; iter++) {
        int R = 1 + iter % 3;
        int64_t in[3], k[3], s[3], p[3], pa[3], d[3];
        for (int a = 0; a < R; a++) {
            in[a] = 1 + (int64_t)(rnd64() % (R == 3 ? 6 : R == 2 ? 11 : 40));
            k[a] = 1 + (int64_t)(rnd64() % 3);
            s[a] = 1 + (int64_t)(rnd64() % 3);
            p[a] = (int64_t)(rnd64() % (uint64_t)(k[a] / 2 + 1));
            pa[a] = (int64_t)(rnd64() % 3);
            d[a] = 1 + (int64_t)(rnd64() % 2);
        }
        tl_window w = make_window(R, in, k, s, p, pa, d);
        int64_t planes = 1 + (int64_t)(rnd64() % 9), in_sz = planes, out_sz = planes;
        for (int a = 0; a < R; a++) {
            in_sz *= w.in[a];
            out_sz *= w.out[a];
        }
        float *x = malloc(4 * (size_t)in_sz), *r = malloc(4 * (size_t)out_sz + 4),
              *y = malloc(4 * (size_t)out_sz + 4);
        fill_pool_special(x, in_sz);
        for (int is_max = 0; is_max < 2; is_max++) {
            (is_max ? isa_tables[0]->max_pool : isa_tables[0]->avg_pool)(x, r, planes, &w);
            for (int t = 1; t < n_tables; t++) {
                const tl_kernel_table *K = isa_tables[t];
                (is_max ? K->max_pool : K->avg_pool)(x, y, planes, &w);
                /* bitwise; a NaN result may differ in sign/payload only (which NaN operand x86
                 * returns depends on the compiler's operand order in the scalar sum) */
                bool ok = true;
                for (int64_t i = 0; i < out_sz; i++)
                    if (f_bits(y[i]) != f_bits(r[i]) && !(isnan(y[i]) && isnan(r[i]))) ok = false;
                CHECK(ok, "%s %s pool bitwise vs scalar, rank %d iter %d", K->name, is_max ? "max" : "avg", R, iter);
            }
        }
        free(x);
        free(y);
        free(r);
    }
    /* the 2x2 / stride-2 fast path (rank 2, and rank 3 with a 1-extent first window axis): odd
     * and even widths 1..41 (vector tails, an unused last column / row), right padding that
     * leaves every window inside (pad_after 1 on an even extent: out = in / 2), many planes; and
     * geometries just off it (padding, dilation, a window past the input) through the general
     * path; bitwise vs scalar with NaN, +-0, +-inf and ties */
    for (int iter = 0; iter < 160; iter++) pool_fast_path_case(2, iter);
    /* the 3x3 / stride-2 / pad-1 max fast path (AVX-512; ResNet's stem pool): widths 1..70 (one
     * or several 16-output vectors, odd widths whose last window has no right column), pad_after
     * 0..1, the same rank-3 form; and geometries just off it (pad 0, stride 1, dilation 2) */
    for (int iter = 0; iter < 120; iter++) pool_fast_path_case(3, iter);
    /* padding semantics, explicitly: 1-D [-1,-2,-3], k=3, s=1, pad=1 -> max [-1,-1,-2] (pads
     * skipped, PyTorch -inf), avg [(-3)/3, (-6)/3, (-5)/3] (zeros counted) */
    {
        int64_t in = 3, k = 3, s = 1, p = 1, d = 1;
        tl_window w = make_window(1, &in, &k, &s, &p, &p, &d);
        float x[3] = {-1, -2, -3}, y[3];
        for (int t = 0; t < n_tables; t++) {
            isa_tables[t]->max_pool(x, y, 1, &w);
            CHECK(w.out[0] == 3 && y[0] == -1 && y[1] == -1 && y[2] == -2, "%s max pool padding",
                  isa_tables[t]->name);
            isa_tables[t]->avg_pool(x, y, 1, &w);
            CHECK(y[0] == -1.0f && y[1] == -2.0f && fabsf(y[2] + 5.0f / 3.0f) < 1e-6f,
                  "%s avg pool count_include_pad", isa_tables[t]->name);
        }
    }
    /* a window with no input cell (dilated past the input) gives 0 */
    {
        int64_t in = 1, k = 2, s = 1, p = 1, d = 3;
        tl_window w = make_window(1, &in, &k, &s, &p, &p, &d);
        w.out[0] = 1; /* window covers -1 and 2: both outside */
        float x[1] = {-4}, y[1] = {123};
        isa_tables[0]->max_pool(x, y, 1, &w);
        CHECK(y[0] == 0.0f, "empty max window gives 0, got %g", (double)y[0]);
    }
}

/* ---- data movement ---- */

static void test_movement(void) {
    /* permute: every permutation of rank 1..4 on odd dims */
    for (int R = 1; R <= 4; R++) {
        int64_t dims[4] = {3, 5, 2, 7}, perm[4];
        int64_t n = 1;
        for (int a = 0; a < R; a++) n *= dims[a];
        float *x = malloc(4 * (size_t)n), *y = malloc(4 * (size_t)n);
        for (int64_t i = 0; i < n; i++) x[i] = (float)i;
        int nperm = 1;
        for (int a = 2; a <= R; a++) nperm *= a;
        bool ok = true;
        for (int pi = 0; pi < nperm; pi++) {
            /* decode pi into a permutation (Lehmer code) */
            int avail[4] = {0, 1, 2, 3}, na = R, code = pi;
            for (int a = 0; a < R; a++) {
                int f = 1;
                for (int b = 2; b < R - a; b++) f *= b;
                int idx = code / f;
                code %= f;
                perm[a] = avail[idx];
                for (int b = idx; b < na - 1; b++) avail[b] = avail[b + 1];
                na--;
            }
            tl_k_permute(x, y, R, dims, perm);
            int64_t od[4];
            for (int a = 0; a < R; a++) od[a] = dims[perm[a]];
            for (int64_t oi = 0; oi < n; oi++) {
                int64_t oidx[4], rem = oi, ii[4];
                for (int a = R - 1; a >= 0; a--) {
                    oidx[a] = rem % od[a];
                    rem /= od[a];
                }
                for (int a = 0; a < R; a++) ii[perm[a]] = oidx[a];
                int64_t off = 0;
                for (int a = 0; a < R; a++) off = off * dims[a] + ii[a];
                if (y[oi] != x[off]) ok = false;
            }
        }
        CHECK(ok, "permute rank %d", R);
        free(x);
        free(y);
    }
    /* broadcast */
    {
        int64_t from[4] = {1, 3, 1, 5}, to[4] = {4, 3, 6, 5};
        float x[15], y[360];
        for (int i = 0; i < 15; i++) x[i] = (float)i + 0.5f;
        tl_k_broadcast(x, y, 4, from, to);
        bool ok = true;
        for (int64_t a = 0; a < 4; a++)
            for (int64_t b = 0; b < 3; b++)
                for (int64_t c = 0; c < 6; c++)
                    for (int64_t d = 0; d < 5; d++)
                        if (y[((a * 3 + b) * 6 + c) * 5 + d] != x[b * 5 + d]) ok = false;
        CHECK(ok, "broadcast [1,3,1,5] -> [4,3,6,5]");
        int64_t f2[2] = {1, 1}, t2[2] = {3, 1};
        float s = 2.5f, y2[3];
        tl_k_broadcast(&s, y2, 2, f2, t2);
        CHECK(y2[0] == 2.5f && y2[1] == 2.5f && y2[2] == 2.5f, "broadcast scalar-like");
    }
    /* concat along the middle axis of [2, len_i, 3] */
    {
        float a[2 * 1 * 3], b[2 * 4 * 3], c[2 * 2 * 3], y[2 * 7 * 3];
        for (int i = 0; i < 6; i++) a[i] = 100 + (float)i;
        for (int i = 0; i < 24; i++) b[i] = 200 + (float)i;
        for (int i = 0; i < 12; i++) c[i] = 300 + (float)i;
        const float *parts[3] = {a, b, c};
        int64_t lens[3] = {1, 4, 2};
        tl_k_concat(parts, lens, 3, y, 2, 3);
        bool ok = true;
        for (int o = 0; o < 2; o++)
            for (int k = 0; k < 7; k++)
                for (int j = 0; j < 3; j++) {
                    float e = k < 1 ? a[(o * 1 + k) * 3 + j]
                        : k < 5     ? b[(o * 4 + k - 1) * 3 + j]
                                    : c[(o * 2 + k - 5) * 3 + j];
                    if (y[(o * 7 + k) * 3 + j] != e) ok = false;
                }
        CHECK(ok, "concat");
    }
    /* im2col with dilation, stride and asymmetric padding vs naive */
    for (int iter = 0; iter < 30; iter++) {
        int R = 1 + iter % 3;
        int64_t in[3], k[3], s[3], p[3], pa[3], d[3];
        for (int a = 0; a < R; a++) {
            in[a] = 2 + (int64_t)(rnd64() % 6);
            k[a] = 1 + (int64_t)(rnd64() % 3);
            s[a] = 1 + (int64_t)(rnd64() % 2);
            p[a] = (int64_t)(rnd64() % 3);
            pa[a] = (int64_t)(rnd64() % 3);
            d[a] = 1 + (int64_t)(rnd64() % 2);
        }
        tl_window w = make_window(R, in, k, s, p, pa, d);
        int64_t C = 1 + iter % 3, isz = 1, osz = 1, ksz = 1;
        for (int a = 0; a < R; a++) {
            isz *= w.in[a];
            osz *= w.out[a];
            ksz *= w.kernel[a];
        }
        float *x = malloc(4 * (size_t)(C * isz)), *col = malloc(4 * (size_t)(C * ksz * osz) + 4);
        for (int64_t i = 0; i < C * isz; i++) x[i] = 1.0f + (float)i;
        tl_k_im2col(x, col, C, &w);
        bool ok = true;
        for (int64_t c = 0; c < C; c++)
            for (int64_t ki = 0; ki < ksz; ki++)
                for (int64_t oi = 0; oi < osz; oi++) {
                    int64_t kk[3], oo[3], r1 = ki, r2 = oi, off = 0;
                    bool inb = true;
                    for (int a = R - 1; a >= 0; a--) {
                        kk[a] = r1 % w.kernel[a];
                        r1 /= w.kernel[a];
                        oo[a] = r2 % w.out[a];
                        r2 /= w.out[a];
                    }
                    for (int a = 0; a < R; a++) {
                        int64_t i = oo[a] * w.stride[a] + kk[a] * w.dilation[a] - w.pad[a];
                        if (i < 0 || i >= w.in[a]) inb = false;
                        off = off * w.in[a] + i;
                    }
                    float e = inb ? x[c * isz + off] : 0.0f;
                    if (col[(c * ksz + ki) * osz + oi] != e) ok = false;
                }
        CHECK(ok, "im2col rank %d iter %d", R, iter);
        free(x);
        free(col);
    }
}

/* ---- randomness: TorchLean Spec.Random ---- */

static void test_random(void) {
    /* splitmix64 against the published reference sequence (Vigna's splitmix64.c, seed 0):
     * output k is mix(k * gamma), i.e. tl_k_splitmix64((k - 1) * gamma). */
    CHECK(tl_k_splitmix64(0) == 0xe220a8397b1dcdafull, "splitmix64 #1: %016llx",
          (unsigned long long)tl_k_splitmix64(0));
    CHECK(tl_k_splitmix64(0x9e3779b97f4a7c15ull) == 0x6e789e6aa1b965f4ull, "splitmix64 #2");
    CHECK(tl_k_splitmix64(2 * 0x9e3779b97f4a7c15ull) == 0x06c45d188009454full, "splitmix64 #3");
    CHECK(tl_k_rand_key(40, 2) == tl_k_splitmix64(42), "keyOf(seed, node) = splitmix64(seed + node)");
    int64_t n = 100003;
    float *y = malloc(4 * (size_t)n);
    uint64_t key = tl_k_rand_key(7, 3);
    tl_k_rand_uniform(key, y, n);
    bool ok = true;
    double mean = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)(tl_k_splitmix64(key + (uint64_t)i) & 0xffffffffu);
        float e = (float)((double)u / 4294967296.0);
        if (y[i] != e || y[i] < 0.0f || y[i] > 1.0f) ok = false;
        mean += (double)y[i];
    }
    mean /= (double)n;
    CHECK(ok, "rand_uniform = float(low32(splitmix64(key + i))) / 2^32");
    CHECK(fabs(mean - 0.5) < 0.005, "rand_uniform mean %.4f", mean);
    float kp[5] = {0.3f, 1.0f, 0.0f, NAN, 1.5f};
    for (int j = 0; j < 5; j++) {
        tl_k_bernoulli_mask(key, kp[j], y, n);
        bool okm = true;
        double frac = 0;
        for (int64_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)tl_k_splitmix64(key + (uint64_t)i);
            float unit = (float)((double)u / 4294967296.0);
            float e = !(kp[j] > 0) ? 0.0f : kp[j] >= 1.0f ? 1.0f : (kp[j] > unit ? 1.0f : 0.0f);
            if (y[i] != e) okm = false;
            frac += (double)y[i];
        }
        frac /= (double)n;
        double want = isnan(kp[j]) ? 0.0 : fmin(fmax((double)kp[j], 0.0), 1.0);
        CHECK(okm && fabs(frac - want) < 0.01, "bernoulli_mask keep=%g: frac %.4f", (double)kp[j], frac);
    }
    free(y);
}

/* ---- table completeness, per-op functions, in place ---- */

/* Every function pointer of every table is set (the _Static_asserts in the table files count the
 * per-op rows; this also catches a table initializer that forgot a field). */
static void test_tables_complete(void) {
    for (int t = 0; t < n_tables; t++) {
        const tl_kernel_table *K = isa_tables[t];
        int missing = 0;
        for (int op = 0; op < TL_U_COUNT; op++) missing += K->unary_fn[op] == NULL;
        for (int op = 0; op < TL_B_COUNT; op++) missing += K->binary_fn[op] == NULL;
        missing += !K->unary + !K->binary + !K->safe_log + !K->softmax + !K->layernorm + !K->channel_affine +
            !K->reduce_mid + !K->max_pool + !K->avg_pool + !K->add_bias_rows + !K->bias_clamp_rows + !K->add_clamp +
            !K->name;
        CHECK(missing == 0, "%s table: %d NULL entries", K ? K->name : "?", missing);
    }
}

/* Sizes around every vector width (8, 16), the masked tail, and a block boundary (4096). */
static const int64_t ip_sizes[] = {1, 7, 15, 16, 17, 31, 33, 1003, 4099};
#define IP_NS ((int)(sizeof ip_sizes / sizeof ip_sizes[0]))
#define IP_GUARD 16         /* sentinel floats after every output: tails must not write past n */
#define IP_SENT 0x7fa5a5a5u /* a NaN pattern no kernel produces */

static float *ip_alloc(int64_t n) {
    float *p = malloc(4 * (size_t)(n + IP_GUARD));
    for (int64_t i = 0; i < n + IP_GUARD; i++) p[i] = bits_f(IP_SENT);
    return p;
}
static bool ip_guard_ok(const float *p, int64_t n) {
    for (int64_t i = n; i < n + IP_GUARD; i++)
        if (f_bits(p[i]) != IP_SENT) return false;
    return true;
}
/* a copy of src[0..n) into a fresh guarded buffer */
static float *ip_dup(const float *src, int64_t n) {
    float *p = ip_alloc(n);
    memcpy(p, src, 4 * (size_t)n);
    return p;
}

/* The runtime runs unary/binary elementwise ops in place (output storage = a dying parent's), and
 * fetches per-op functions: in place must be bitwise equal to out of place, the per-op function
 * bitwise equal to the op-indexed dispatcher, and no kernel may write past n. */
static void test_in_place(void) {
    for (int t = 0; t < n_tables; t++) {
        const tl_kernel_table *K = isa_tables[t];
        for (int si = 0; si < IP_NS; si++) {
            int64_t n = ip_sizes[si];
            float *x = ip_alloc(n), *a = ip_alloc(n), *b = ip_alloc(n);
            fill_inputs(TL_U_TANH, a, n, n > 40);
            fill_inputs(TL_U_TANH, b, n, n > 40);
            for (int op = 0; op < TL_U_COUNT; op++) {
                fill_inputs((tl_unary)op, x, n, n > 40);
                float *ref = ip_alloc(n), *via = ip_alloc(n), *z = ip_dup(x, n);
                K->unary_fn[op](x, ref, n);
                K->unary((tl_unary)op, x, via, n);
                K->unary_fn[op](z, z, n);
                CHECK(!memcmp(ref, via, 4 * (size_t)n), "%s %s n=%lld: unary_fn differs from unary()", K->name,
                      unary_name[op], (long long)n);
                CHECK(!memcmp(ref, z, 4 * (size_t)n), "%s %s n=%lld: in place differs", K->name, unary_name[op],
                      (long long)n);
                CHECK(ip_guard_ok(ref, n) && ip_guard_ok(via, n) && ip_guard_ok(z, n), "%s %s n=%lld: wrote past n",
                      K->name, unary_name[op], (long long)n);
                free(ref);
                free(via);
                free(z);
            }
            for (int op = 0; op < TL_B_COUNT; op++) {
                float *ref = ip_alloc(n), *via = ip_alloc(n), *ya = ip_dup(a, n), *yb = ip_dup(b, n);
                float *sq = ip_alloc(n), *yy = ip_dup(a, n);
                K->binary_fn[op](a, b, ref, n);
                K->binary((tl_binary)op, a, b, via, n);
                K->binary_fn[op](ya, b, ya, n); /* y == a */
                K->binary_fn[op](a, yb, yb, n); /* y == b */
                K->binary_fn[op](a, a, sq, n);
                K->binary_fn[op](yy, yy, yy, n); /* y == a == b (x op x) */
                CHECK(!memcmp(ref, via, 4 * (size_t)n), "%s binary %d n=%lld: binary_fn differs from binary()",
                      K->name, op, (long long)n);
                CHECK(!memcmp(ref, ya, 4 * (size_t)n), "%s binary %d n=%lld: y == a differs", K->name, op,
                      (long long)n);
                CHECK(!memcmp(ref, yb, 4 * (size_t)n), "%s binary %d n=%lld: y == b differs", K->name, op,
                      (long long)n);
                CHECK(!memcmp(sq, yy, 4 * (size_t)n), "%s binary %d n=%lld: y == a == b differs", K->name, op,
                      (long long)n);
                CHECK(ip_guard_ok(ref, n) && ip_guard_ok(via, n) && ip_guard_ok(ya, n) && ip_guard_ok(yb, n) &&
                          ip_guard_ok(sq, n) && ip_guard_ok(yy, n),
                      "%s binary %d n=%lld: wrote past n", K->name, op, (long long)n);
                free(ref);
                free(via);
                free(ya);
                free(yb);
                free(sq);
                free(yy);
            }
            { /* safe_log */
                fill_inputs(TL_U_SOFTPLUS, x, n, n > 40);
                float *ref = ip_alloc(n), *z = ip_dup(x, n);
                K->safe_log(x, 1e-6f, ref, n);
                K->safe_log(z, 1e-6f, z, n);
                CHECK(!memcmp(ref, z, 4 * (size_t)n) && ip_guard_ok(ref, n) && ip_guard_ok(z, n),
                      "%s safe_log n=%lld: in place differs or wrote past n", K->name, (long long)n);
                free(ref);
                free(z);
            }
            { /* channel_affine over [2, 3, n]: n is the vectorized row */
                int64_t m = 6 * n;
                float *cx = ip_alloc(m), sc[3] = {1.5f, -0.25f, 3.0f}, sh[3] = {0.5f, 2.0f, -1.0f};
                for (int64_t i = 0; i < m; i++) cx[i] = rndf(-10, 10);
                float *ref = ip_alloc(m), *z = ip_dup(cx, m);
                K->channel_affine(cx, ref, 2, 3, n, sc, sh);
                K->channel_affine(z, z, 2, 3, n, sc, sh);
                CHECK(!memcmp(ref, z, 4 * (size_t)m) && ip_guard_ok(ref, m) && ip_guard_ok(z, m),
                      "%s channel_affine inner=%lld: in place differs or wrote past", K->name, (long long)n);
                free(cx);
                free(ref);
                free(z);
            }
            { /* add_bias_rows is in place by contract: rows of [3, n] += b, equal to binary add */
                int64_t m = 3 * n;
                float *yr = ip_alloc(m), *ref = ip_alloc(m);
                for (int64_t i = 0; i < m; i++) yr[i] = rndf(-10, 10);
                for (int64_t r = 0; r < 3; r++) isa_tables[0]->binary_fn[TL_B_ADD](yr + r * n, b, ref + r * n, n);
                K->add_bias_rows(yr, b, 3, n);
                CHECK(!memcmp(ref, yr, 4 * (size_t)m) && ip_guard_ok(yr, m),
                      "%s add_bias_rows n=%lld: differs from row-wise add or wrote past", K->name, (long long)n);
                free(yr);
                free(ref);
            }
            { /* softmax: [2, n, 1] (a contiguous row) and [2, 5, n] (columns in lanes) */
                for (int lay = 0; lay < 2; lay++) {
                    int64_t L = lay ? 5 : n, I = lay ? n : 1, m = 2 * L * I;
                    float *sx = ip_alloc(m);
                    for (int64_t i = 0; i < m; i++) sx[i] = rndf(-12, 12);
                    float *ref = ip_alloc(m), *z = ip_dup(sx, m);
                    K->softmax(sx, ref, 2, L, I);
                    K->softmax(z, z, 2, L, I);
                    CHECK(!memcmp(ref, z, 4 * (size_t)m) && ip_guard_ok(ref, m) && ip_guard_ok(z, m),
                          "%s softmax [2,%lld,%lld]: in place differs or wrote past", K->name, (long long)L,
                          (long long)I);
                    free(sx);
                    free(ref);
                    free(z);
                }
            }
            { /* layernorm over [3, n], with and without gamma/beta */
                int64_t m = 3 * n;
                float *lx = ip_alloc(m), *gb = ip_alloc(2 * n);
                for (int64_t i = 0; i < m; i++) lx[i] = rndf(2, 6);
                for (int64_t i = 0; i < 2 * n; i++) gb[i] = rndf(-2, 2);
                for (int aff = 0; aff < 2; aff++) {
                    const float *g = aff ? gb : NULL, *be = aff ? gb + n : NULL;
                    float *ref = ip_alloc(m), *z = ip_dup(lx, m);
                    K->layernorm(lx, ref, 3, n, g, be, 1e-5f);
                    K->layernorm(z, z, 3, n, g, be, 1e-5f);
                    CHECK(!memcmp(ref, z, 4 * (size_t)m) && ip_guard_ok(ref, m) && ip_guard_ok(z, m),
                          "%s layernorm [3,%lld]%s: in place differs or wrote past", K->name, (long long)n,
                          aff ? " affine" : "");
                    free(ref);
                    free(z);
                }
                free(lx);
                free(gb);
            }
            free(x);
            free(a);
            free(b);
        }
    }
}

/* ---- threads: 1 vs 2 bitwise ---- */

typedef struct run_out {
    float *v[24];
    int64_t n[24];
    int k;
} run_out;

static void run_all(const tl_kernel_table *K, const float *x, int64_t n, run_out *ro) {
    ro->k = 0;
#define OUT(len) (ro->n[ro->k] = (len), ro->v[ro->k++] = malloc(4 * (size_t)(len)))
    for (int op = 0; op < TL_U_COUNT; op++) K->unary((tl_unary)op, x, OUT(n), n);
    K->binary(TL_B_MAX, x, x + 1, OUT(n - 1), n - 1);
    K->safe_log(x, 1e-6f, OUT(n), n);
    K->softmax(x, OUT(n), n / 1000, 1000, 1);
    K->softmax(x, OUT(n), n / 1000, 100, 10);
    K->layernorm(x, OUT(n), n / 1000, 1000, NULL, NULL, 1e-5f);
    K->reduce_mid(x, OUT(n / 1000), n / 1000, 1000, 1, 1.0f);
    int64_t in[2] = {n / 1600, 400}, k[2] = {3, 3}, s[2] = {2, 2}, p[2] = {1, 1}, d[2] = {1, 1};
    tl_window w = make_window(2, in, k, s, p, p, d);
    int64_t osz = w.out[0] * w.out[1] * 4;
    K->max_pool(x, OUT(osz), 4, &w);
    K->avg_pool(x, OUT(osz), 4, &w);
    int64_t k2[2] = {2, 2}, p0[2] = {0, 0}, in2[2] = {n / 1600, 400}; /* the 2x2 / stride-2 fast path */
    tl_window w2 = make_window(2, in2, k2, k2, p0, p0, d);
    int64_t osz2 = w2.out[0] * w2.out[1] * 4;
    K->max_pool(x, OUT(osz2), 4, &w2);
    K->avg_pool(x, OUT(osz2), 4, &w2);
#undef OUT
}

static void test_threads(void) {
    int64_t n = 400000;
    float *x = malloc(4 * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = rndf(-20, 20);
    for (int t = 0; t < n_tables; t++) {
        run_out a, b;
        tl_set_threads(1);
        run_all(isa_tables[t], x, n, &a);
        tl_set_threads(2);
        CHECK(tl_get_threads() == 2, "tl_get_threads after tl_set_threads(2)");
        run_all(isa_tables[t], x, n, &b);
        bool ok = true;
        for (int i = 0; i < a.k; i++) {
            if (memcmp(a.v[i], b.v[i], 4 * (size_t)a.n[i])) {
                ok = false;
                printf("  %s: output %d differs between 1 and 2 threads\n", isa_tables[t]->name, i);
            }
            free(a.v[i]);
            free(b.v[i]);
        }
        CHECK(ok, "%s: 1 vs 2 threads bitwise identical", isa_tables[t]->name);
    }
    free(x);
}

/* ---- sgemm ---- */

static void check_gemm(const char *what,
                       void (*gemm)(bool, bool, int64_t, int64_t, int64_t, float, const float *, int64_t,
                                    const float *, int64_t, float, float *, int64_t)) {
    /* tl_sgemm's paths: the direct kernel (M*N*K <= 65536, not trans_a && trans_b: partial
     * blocks of 4 rows / 2 vectors, K tails), cblas_sgemv (M == 1 or N == 1 above that),
     * cblas_sgemm, and K = 0 */
    const int64_t sizes[][3] = {{1, 1, 1},      {3, 5, 7},    {17, 33, 65}, {64, 64, 64},
                                {100, 37, 129}, {5, 300, 3},  {2, 1, 0},    {1, 33, 17},
                                {37, 1, 9},     {4, 32, 8},   {9, 70, 3},   {1, 300, 700},
                                {700, 1, 300},  {8, 64, 128}, {1, 16, 1},   {6, 17, 31}};
    for (int si = 0; si < (int)(sizeof sizes / sizeof sizes[0]); si++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int bi = 0; bi < 2; bi++) {
                    int64_t M = sizes[si][0], N = sizes[si][1], K = sizes[si][2];
                    int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 5;
                    int64_t ar = ta ? K : M, br = tb ? N : K;
                    float *A = malloc(4 * (size_t)(ar * lda + 1)), *B = malloc(4 * (size_t)(br * ldb + 1)),
                          *C = malloc(4 * (size_t)(M * ldc));
                    for (int64_t i = 0; i < ar * lda; i++) A[i] = rndf(-1, 1);
                    for (int64_t i = 0; i < br * ldb; i++) B[i] = rndf(-1, 1);
                    float beta = bi ? 0.5f : 0.0f, alpha = 1.5f;
                    for (int64_t i = 0; i < M * ldc; i++) C[i] = bi ? rndf(-1, 1) : NAN; /* beta 0 ignores C */
                    double *R = malloc(8 * (size_t)(M * N + 1)), *T = malloc(8 * (size_t)(M * N + 1));
                    for (int64_t i = 0; i < M; i++)
                        for (int64_t j = 0; j < N; j++) {
                            double s = 0, sa = 0;
                            for (int64_t k = 0; k < K; k++) {
                                double a = (double)(ta ? A[k * lda + i] : A[i * lda + k]);
                                double b = (double)(tb ? B[j * ldb + k] : B[k * ldb + j]);
                                s += a * b;
                                sa += fabs(a * b);
                            }
                            double c0 = bi ? (double)C[i * ldc + j] : 0.0;
                            R[i * N + j] = (double)alpha * s + (double)beta * c0;
                            T[i * N + j] = ((double)alpha * sa * (double)(K + 2) + fabs((double)beta * c0) * 2) *
                                    1.2e-7 +
                                1e-30;
                        }
                    gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
                    double worst = 0;
                    for (int64_t i = 0; i < M; i++)
                        for (int64_t j = 0; j < N; j++) {
                            double e = fabs((double)C[i * ldc + j] - R[i * N + j]) / T[i * N + j];
                            if (!(e <= worst)) worst = e;
                        }
                    CHECK(worst <= 1.0, "%s M=%lld N=%lld K=%lld ta=%d tb=%d beta=%g: %.3g of bound", what,
                          (long long)M, (long long)N, (long long)K, ta, tb, (double)beta, worst);
                    free(A);
                    free(B);
                    free(C);
                    free(R);
                    free(T);
                }
}

#ifdef TL_KERNELS_X86
/* tl_sgemm uses the direct kernels only for some shapes and OpenBLAS core types: test them on
 * every shape (trans_a && trans_b is not theirs: the reference fallback there). */
static void gemm_direct_avx2(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                             int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    (ta && tb ? tl_sgemm_builtin : tl_avx2_sgemm_small)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
static void gemm_direct_avx512(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                               int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    (ta && tb ? tl_sgemm_builtin : tl_avx512_sgemm_small)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
#endif

/* ---- ISA dispatch ---- */

static bool cpuinfo_has(const char *flag) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return false;
    char line[8192];
    bool has = false;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5)) continue;
        char pat[64];
        snprintf(pat, sizeof pat, " %s ", flag);
        size_t L = strlen(line);
        if (L && line[L - 1] == '\n') line[L - 1] = ' ';
        has = strstr(line, pat) != NULL;
        break;
    }
    fclose(f);
    return has;
}

static void test_dispatch(void) {
    bool a512 = cpuinfo_has("avx512f") && cpuinfo_has("avx512bw") && cpuinfo_has("avx512dq") &&
        cpuinfo_has("avx512vl");
    bool a2 = cpuinfo_has("avx2") && cpuinfo_has("fma");
    tl_isa want = a512 ? TL_ISA_AVX512 : a2 ? TL_ISA_AVX2 : TL_ISA_SCALAR;
    CHECK(tl_kernels_best_isa() == want, "best isa %d, /proc/cpuinfo says %d", tl_kernels_best_isa(), want);
    CHECK(tl_kernels_for(TL_ISA_SCALAR) && !strcmp(tl_kernels_for(TL_ISA_SCALAR)->name, "scalar"), "scalar table");
    CHECK((tl_kernels_for(TL_ISA_AVX2) != NULL) == a2, "avx2 table availability");
    CHECK((tl_kernels_for(TL_ISA_AVX512) != NULL) == a512, "avx512 table availability");
    const char *names[3] = {"scalar", "avx2", "avx512"};
    CHECK(!strcmp(tl_kernels()->name, names[want]) || getenv("TL_ISA"), "default table is the best");
    tl_kernels_set_isa(TL_ISA_SCALAR);
    CHECK(!strcmp(tl_kernels()->name, "scalar"), "set_isa scalar");
    tl_kernels_set_isa(TL_ISA_AVX512);
    CHECK(!strcmp(tl_kernels()->name, names[want]), "set_isa avx512 clamps to the CPU");
    /* TL_ISA in the environment, in a child process */
    for (int i = 0; i < 3; i++) {
        char cmd[256], out[64] = "";
        snprintf(cmd, sizeof cmd, "TL_ISA=%s /proc/%d/exe --print-isa", names[i], (int)getpid());
        FILE *p = popen(cmd, "r");
        if (p) {
            if (!fgets(out, sizeof out, p)) out[0] = 0;
            pclose(p);
        }
        out[strcspn(out, "\n")] = 0;
        const char *expect = names[i <= (int)want ? i : (int)want];
        CHECK(!strcmp(out, expect), "TL_ISA=%s gives '%s', expected '%s'", names[i], out, expect);
    }
}

/* ---- dense ULP report (docs/kernels.md) ---- */

typedef struct sweep {
    tl_unary op;
    const char *range;
    float lo, hi;
    bool bits;
} sweep;

static void ulp_report(void) {
    const sweep sw[] = {
        {TL_U_EXP, "[-104, 89] all-float sweep", -104.0f, 89.0f, true},
        {TL_U_LOG, "(0, FLT_MAX] incl. subnormals", 0.0f, FLT_MAX, true},
        {TL_U_SIN, "|x| <= 2^24 all-float sweep", -16777216.0f, 16777216.0f, true},
        {TL_U_COS, "|x| <= 2^24 all-float sweep", -16777216.0f, 16777216.0f, true},
        {TL_U_TANH, "all finite floats", -FLT_MAX, FLT_MAX, true},
        {TL_U_SIGMOID, "all finite floats", -FLT_MAX, FLT_MAX, true},
        {TL_U_SOFTPLUS, "all finite floats", -FLT_MAX, FLT_MAX, true},
        {TL_U_SQRT, "[0, FLT_MAX]", 0.0f, FLT_MAX, true},
        {TL_U_INV, "all finite floats", -FLT_MAX, FLT_MAX, true},
        {TL_U_EXP, "[-10, 10] uniform", -10, 10, false},
        {TL_U_LOG, "[1e-3, 1e3] uniform", 1e-3f, 1e3f, false},
        {TL_U_SIN, "[-100, 100] uniform", -100, 100, false},
        {TL_U_COS, "[-100, 100] uniform", -100, 100, false},
        {TL_U_TANH, "[-10, 10] uniform", -10, 10, false},
        {TL_U_SIGMOID, "[-20, 20] uniform", -20, 20, false},
        {TL_U_SOFTPLUS, "[-30, 30] uniform", -30, 30, false},
    };
    const uint32_t step = getenv("TL_ULP_STEP") ? (uint32_t)atoi(getenv("TL_ULP_STEP")) : 97;
    const int64_t chunk = 1 << 16;
    float *x = malloc(4 * chunk), *y = malloc(4 * chunk);
    printf("| function | inputs | points |");
    for (int t = 0; t < n_tables; t++) printf(" %s max ULP |", isa_tables[t]->name);
    printf("\n|---|---|---|");
    for (int t = 0; t < n_tables; t++) printf("---|");
    printf("\n");
    for (size_t s = 0; s < sizeof sw / sizeof sw[0]; s++) {
        double worst[TL_ISA_COUNT] = {0};
        float worst_x[TL_ISA_COUNT] = {0};
        int64_t points = 0;
        /* generate all inputs chunk by chunk */
        uint32_t lo_b = 0, hi_b = 0;
        int sign_pass = 0;
        if (sw[s].bits) hi_b = f_bits(fmaxf(fabsf(sw[s].lo), fabsf(sw[s].hi)));
        uint32_t u = lo_b;
        int64_t rnd_left = sw[s].bits ? 0 : 4000000;
        for (;;) {
            int64_t m = 0;
            while (m < chunk) {
                if (sw[s].bits) {
                    if (u > hi_b || u < lo_b) {
                        if (sign_pass == 0) {
                            sign_pass = 1;
                            u = lo_b;
                            continue;
                        }
                        break;
                    }
                    float v = bits_f(u | (sign_pass ? 0x80000000u : 0));
                    uint32_t nu = u + step;
                    if (nu < u) nu = hi_b + 1; /* wrap */
                    u = nu;
                    if (v < sw[s].lo || v > sw[s].hi) continue;
                    x[m++] = v;
                } else {
                    if (rnd_left-- <= 0) break;
                    x[m++] = rndf((double)sw[s].lo, (double)sw[s].hi);
                }
            }
            if (m == 0) break;
            points += m;
            for (int t = 0; t < n_tables; t++) {
                isa_tables[t]->unary(sw[s].op, x, y, m);
                for (int64_t i = 0; i < m; i++) {
                    double e = ulp_err(y[i], ref_unary(sw[s].op, x[i]));
                    if (e > worst[t]) {
                        worst[t] = e;
                        worst_x[t] = x[i];
                    }
                }
            }
            if (m < chunk) break;
        }
        printf("| %s | %s | %lld |", unary_name[sw[s].op], sw[s].range, (long long)points);
        for (int t = 0; t < n_tables; t++) printf(" %.3f (x=%.9g) |", worst[t], (double)worst_x[t]);
        printf("\n");
        fflush(stdout);
    }
    free(x);
    free(y);
}

/* ---- bias_clamp_rows (the fused conv / linear epilogue): bitwise the unfused sequence, the
 * scalar table's add, then max_elem(y, lo), then min_elem(y, hi) with the value first; every
 * table, odd widths and tails, NaN / +-0 / inf values, with and without a bias ---- */
static void test_bias_clamp(void) {
    const tl_kernel_table *S = isa_tables[0];
    const int64_t widths[] = {1, 5, 16, 17, 33, 100};
    const float bounds[][2] = {{-INFINITY, INFINITY}, {0.0f, INFINITY},  {-0.0f, INFINITY},
                               {-0.25f, 0.5f},        {-INFINITY, 0.0f}, {0.0f, 6.0f}};
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++)
        for (int64_t rows = 1; rows <= 7; rows += 3) {
            int64_t n = widths[wi], tot = rows * n;
            float *x = malloc(4 * (size_t)tot), *b = malloc(4 * (size_t)n), *r = malloc(4 * (size_t)tot),
                  *y = malloc(4 * (size_t)tot), *c = malloc(4 * (size_t)tot);
            const float special[] = {NAN, 0.0f, -0.0f, INFINITY, -INFINITY, 0.5f, -0.25f};
            for (int64_t i = 0; i < tot; i++) x[i] = i % 5 == 0 ? special[(i / 5) % 7] : rndf(-2, 2);
            for (int64_t j = 0; j < n; j++) b[j] = j % 4 == 1 ? special[j % 7] : rndf(-1, 1);
            for (size_t bi = 0; bi < sizeof bounds / sizeof bounds[0]; bi++)
                for (int wb = 0; wb < 2; wb++) {
                    memcpy(r, x, 4 * (size_t)tot);
                    if (wb) S->add_bias_rows(r, b, rows, n);
                    for (int64_t i = 0; i < tot; i++) c[i] = bounds[bi][0];
                    S->binary_fn[TL_B_MAX](r, c, r, tot);
                    for (int64_t i = 0; i < tot; i++) c[i] = bounds[bi][1];
                    S->binary_fn[TL_B_MIN](r, c, r, tot);
                    for (int t = 0; t < n_tables; t++) {
                        memcpy(y, x, 4 * (size_t)tot);
                        isa_tables[t]->bias_clamp_rows(y, wb ? b : NULL, rows, n, bounds[bi][0], bounds[bi][1]);
                        bool ok = true;
                        for (int64_t i = 0; i < tot; i++) ok = ok && f_bits(y[i]) == f_bits(r[i]);
                        CHECK(ok, "%s bias_clamp_rows [%lld,%lld] bias=%d lo=%g hi=%g", isa_tables[t]->name,
                              (long long)rows, (long long)n, wb, (double)bounds[bi][0], (double)bounds[bi][1]);
                    }
                    /* add_clamp of x and the rows' bias pattern (a residual), out of place and in place */
                    float *rr = malloc(4 * (size_t)tot);
                    for (int64_t i = 0; i < tot; i++) rr[i] = b[i % n];
                    S->binary_fn[TL_B_ADD](x, rr, r, tot);
                    for (int64_t i = 0; i < tot; i++) c[i] = bounds[bi][0];
                    S->binary_fn[TL_B_MAX](r, c, r, tot);
                    for (int64_t i = 0; i < tot; i++) c[i] = bounds[bi][1];
                    S->binary_fn[TL_B_MIN](r, c, r, tot);
                    for (int t = 0; t < n_tables; t++)
                        for (int inpl = 0; inpl < 2; inpl++) {
                            memcpy(y, x, 4 * (size_t)tot);
                            isa_tables[t]->add_clamp(inpl ? y : x, rr, y, tot, bounds[bi][0], bounds[bi][1]);
                            bool ok = true;
                            for (int64_t i = 0; i < tot; i++) ok = ok && f_bits(y[i]) == f_bits(r[i]);
                            CHECK(ok, "%s add_clamp n=%lld in_place=%d lo=%g hi=%g", isa_tables[t]->name,
                                  (long long)tot, inpl, (double)bounds[bi][0], (double)bounds[bi][1]);
                        }
                    free(rr);
                    /* leaky (slope from the bounds' hi where finite and <= 1): mul_elem(s, y), then
                     * max_elem(y, that), in place */
                    float sl = bounds[bi][1] <= 1.0f ? bounds[bi][1] : 0.01f;
                    for (int64_t i = 0; i < tot; i++) c[i] = sl;
                    S->binary_fn[TL_B_MUL](c, x, r, tot);
                    S->binary_fn[TL_B_MAX](x, r, r, tot);
                    for (int t = 0; t < n_tables; t++) {
                        memcpy(y, x, 4 * (size_t)tot);
                        isa_tables[t]->leaky(y, tot, sl);
                        bool ok = true;
                        for (int64_t i = 0; i < tot; i++) ok = ok && f_bits(y[i]) == f_bits(r[i]);
                        CHECK(ok, "%s leaky n=%lld s=%g", isa_tables[t]->name, (long long)tot, (double)sl);
                    }
                }
            free(x);
            free(b);
            free(r);
            free(y);
            free(c);
        }
}

/* ---- gemm_packed (narrow batched linear with pre-packed weights): every table bitwise equal
 * to the scalar reference (the same FMA chain per element), the reference within K ulp-scale of
 * a float64 dot product; odd sizes, panel and row tails, bias / residual / clamp on and off, the
 * residual in place (y == res) ---- */
static void test_gemm_packed(void) {
    const int64_t Ms[] = {1, 5, 6, 7, 13}, Ns[] = {1, 5, 17, 50, 64, 65, 130}, Ks[] = {1, 3, 50, 64, 784, 1024};
    for (size_t a = 0; a < sizeof Ms / sizeof Ms[0]; a++)
        for (size_t b = 0; b < sizeof Ns / sizeof Ns[0]; b++)
            for (size_t c = 0; c < sizeof Ks / sizeof Ks[0]; c++) {
                int64_t M = Ms[a], N = Ns[b], K = Ks[c];
                float *x = malloc(4 * (size_t)(M * K)), *w = malloc(4 * (size_t)(N * K)),
                      *bias = malloc(4 * (size_t)N), *res = malloc(4 * (size_t)(M * N)),
                      *y0 = malloc(4 * (size_t)(M * N)), *y = malloc(4 * (size_t)(M * N));
                for (int64_t i = 0; i < M * K; i++) x[i] = rndf(-1, 1);
                for (int64_t i = 0; i < N * K; i++) w[i] = rndf(-1, 1);
                for (int64_t i = 0; i < N; i++) bias[i] = rndf(-1, 1);
                for (int64_t i = 0; i < M * N; i++) res[i] = rndf(-1, 1);
                for (int mode = 0; mode < 3; mode++) {
                    const float *bp = mode >= 1 ? bias : NULL;
                    bool wr = mode == 2;
                    float lo = mode == 2 ? 0.0f : -INFINITY, hi = mode == 2 ? 0.5f : INFINITY;
                    float *pk0 = malloc(4 * isa_tables[0]->gemm_pack_floats(N, K));
                    isa_tables[0]->gemm_pack(w, N, K, pk0);
                    isa_tables[0]->gemm_packed(x, M, N, K, pk0, bp, wr ? res : NULL, lo, hi, y0);
                    double worst = 0;
                    for (int64_t i = 0; i < M; i++)
                        for (int64_t j = 0; j < N; j++) {
                            double d = 0, s = 0;
                            for (int64_t k = 0; k < K; k++) {
                                d += (double)x[i * K + k] * (double)w[j * K + k];
                                s += fabs((double)x[i * K + k] * (double)w[j * K + k]);
                            }
                            double v = d + (bp ? (double)bp[j] : 0) + (wr ? (double)res[i * N + j] : 0);
                            double dlo = (double)lo, dhi = (double)hi;
                            v = v < dlo ? dlo : v > dhi ? dhi : v;
                            double e = fabs((double)y0[i * N + j] - v) / ((s + 3) * (double)(K + 2) * 6e-8);
                            if (!(e <= worst)) worst = e;
                        }
                    CHECK(worst <= 1.0, "scalar gemm_packed %lldx%lldx%lld mode %d: %.3g of the bound", (long long)M,
                          (long long)N, (long long)K, mode, worst);
                    for (int t = 1; t < n_tables; t++) {
                        float *pk = malloc(4 * isa_tables[t]->gemm_pack_floats(N, K));
                        isa_tables[t]->gemm_pack(w, N, K, pk);
                        for (int inpl = 0; inpl < (wr ? 2 : 1); inpl++) {
                            float *out = y;
                            if (inpl) memcpy(y, res, 4 * (size_t)(M * N));
                            isa_tables[t]->gemm_packed(x, M, N, K, pk, bp, wr ? (inpl ? y : res) : NULL, lo, hi, out);
                            CHECK(!memcmp(y, y0, 4 * (size_t)(M * N)),
                                  "%s gemm_packed %lldx%lldx%lld mode %d in_place %d not bitwise the scalar one",
                                  isa_tables[t]->name, (long long)M, (long long)N, (long long)K, mode, inpl);
                        }
                        free(pk);
                    }
                    free(pk0);
                }
                free(x);
                free(w);
                free(bias);
                free(res);
                free(y0);
                free(y);
            }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    isa_tables[0] = tl_kernels_for(TL_ISA_SCALAR);
    n_tables = 1;
    for (int i = 1; i < TL_ISA_COUNT; i++)
        if (tl_kernels_for((tl_isa)i)) isa_tables[n_tables++] = tl_kernels_for((tl_isa)i);
    if (argc > 1 && !strcmp(argv[1], "--print-isa")) {
        printf("%s\n", tl_kernels()->name);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--print-blas")) { /* info, then a 2x2 product */
        float A[4] = {1, 2, 3, 4}, B[4] = {5, 6, 7, 8}, C[4];
        tl_sgemm(false, false, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2);
        printf("%s\n%g %g %g %g\n", tl_blas_info(), (double)C[0], (double)C[1], (double)C[2], (double)C[3]);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--ulp-report")) {
        ulp_report();
        return 0;
    }
    /* must be read before the first BLAS call sets OPENBLAS_CORETYPE */
    bool env_core = getenv("OPENBLAS_CORETYPE") || getenv("TL_BLAS_CORETYPE");
    test_dispatch();
    test_unary();
    test_binary();
    test_tables_complete();
    test_in_place();
    test_rowwise();
    test_bias_clamp();
    test_gemm_packed();
    test_pool();
    test_movement();
    test_random();
    test_threads();
    const char *info = tl_blas_info();
    printf("blas: %s\n", info);
    CHECK(info && *info, "tl_blas_info");
    if (!env_core && tl_kernels_best_isa() == TL_ISA_AVX512 && strstr(info, "OpenBLAS"))
        CHECK(strstr(info, "SkylakeX (OPENBLAS_CORETYPE set by tlrt)") != NULL,
              "AVX-512 CPU: tlrt selects SkylakeX: %s", info);
    /* OpenBLAS that cannot be loaded: the built-in sgemm, and tl_blas_info says why */
    {
        char cmd[256], l1[512] = "", l2[128] = "";
        snprintf(cmd, sizeof cmd, "TL_OPENBLAS_LIB=/nonexistent/libopenblas.so /proc/%d/exe --print-blas",
                 (int)getpid());
        FILE *p = popen(cmd, "r");
        if (p) {
            if (!fgets(l1, sizeof l1, p)) l1[0] = 0;
            if (!fgets(l2, sizeof l2, p)) l2[0] = 0;
            pclose(p);
        }
        CHECK(!strcmp(l1,
                      "built-in blocked sgemm (OpenBLAS not loaded: /nonexistent/libopenblas.so: "
                      "cannot open shared object file: No such file or directory)\n"),
              "fallback info: %s", l1);
        CHECK(!strcmp(l2, "19 22 43 50\n"), "fallback sgemm [[1,2],[3,4]]x[[5,6],[7,8]]: %s", l2);
    }
    /* tl_sgemm's direct kernel comes from the active table: every table once */
    for (int t = 0; t < n_tables; t++) {
        char what[64];
        snprintf(what, sizeof what, "tl_sgemm (%s table)", isa_tables[t]->name);
        tl_kernels_set_isa((tl_isa)t);
        check_gemm(what, tl_sgemm);
    }
    tl_kernels_set_isa(tl_kernels_best_isa());
#ifdef TL_KERNELS_X86
    if (tl_kernels_for(TL_ISA_AVX2)) check_gemm("direct sgemm avx2", gemm_direct_avx2);
    if (tl_kernels_for(TL_ISA_AVX512)) check_gemm("direct sgemm avx512", gemm_direct_avx512);
#endif
    check_gemm("tl_sgemm_builtin", tl_sgemm_builtin);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
