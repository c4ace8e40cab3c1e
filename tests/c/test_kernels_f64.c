/* test_kernels_f64.c - every vectorized double kernel (kernels/tl_kernels_f64_*.c) bitwise
 * against the scalar double reference: sizes 0..70 (every tail), a few large ones (the threaded
 * block split), in place (y == x, y == a, y == b), with NaN, +-0, +-inf and denormals in the data.
 * Plus the scalar reference itself against TorchLean's formulas where it chooses one (relu at
 * zero, softplus's branch), tl_dgemm against its built-in loop, and the movement kernels. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_check.h"
#include "tl_kernels_f64_internal.h"

static double val(uint64_t *st) {
    *st = tl_k_splitmix64(*st);
    uint64_t r = *st;
    switch (r % 16) {
    case 0: return (double)NAN;
    case 1: return 0.0;
    case 2: return -0.0;
    case 3: return (double)INFINITY;
    case 4: return -(double)INFINITY;
    case 5: return 5e-324;
    default: return ((double)(r >> 11) / 9007199254740992.0 - 0.5) * 40.0;
    }
}

static void fill(double *p, int64_t n, uint64_t seed) {
    for (int64_t i = 0; i < n; i++) p[i] = val(&seed);
}

static const int64_t SIZES[] = {1000, 4096, 4097, 70001};

static void test_table(const tl_kernel64_table *T) {
    const tl_kernel64_table *S = tl_kernels64_for(TL_ISA_SCALAR);
    int64_t nmax = 70001;
    double *a = malloc(sizeof(double) * (size_t)nmax), *b = malloc(sizeof(double) * (size_t)nmax);
    double *y = malloc(sizeof(double) * (size_t)nmax), *r = malloc(sizeof(double) * (size_t)nmax);
    double *t = malloc(sizeof(double) * (size_t)nmax);
    int nvec = 0;
    for (int op = 0; op < TL_U_COUNT; op++) {
        if (!T->unary_fn[op]) continue;
        nvec++;
        for (int64_t k = 0; k < 71 + 4; k++) {
            int64_t n = k < 71 ? k : SIZES[k - 71];
            fill(a, n, (uint64_t)(op * 1000 + k));
            S->unary_fn[op](a, r, n);
            T->unary_fn[op](a, y, n);
            CHECK(memcmp(r, y, sizeof(double) * (size_t)n) == 0);
            memcpy(t, a, sizeof(double) * (size_t)n); /* in place */
            T->unary_fn[op](t, t, n);
            CHECK(memcmp(r, t, sizeof(double) * (size_t)n) == 0);
        }
    }
    for (int op = 0; op < TL_B_COUNT; op++) {
        if (!T->binary_fn[op]) continue;
        nvec++;
        for (int64_t k = 0; k < 71 + 4; k++) {
            int64_t n = k < 71 ? k : SIZES[k - 71];
            fill(a, n, (uint64_t)(op * 1000 + k));
            fill(b, n, (uint64_t)(op * 1000 + k + 77777));
            S->binary_fn[op](a, b, r, n);
            T->binary_fn[op](a, b, y, n);
            CHECK(memcmp(r, y, sizeof(double) * (size_t)n) == 0);
            memcpy(t, a, sizeof(double) * (size_t)n); /* y == a */
            T->binary_fn[op](t, b, t, n);
            CHECK(memcmp(r, t, sizeof(double) * (size_t)n) == 0);
            memcpy(t, b, sizeof(double) * (size_t)n); /* y == b */
            T->binary_fn[op](a, t, t, n);
            CHECK(memcmp(r, t, sizeof(double) * (size_t)n) == 0);
        }
    }
    CHECK(nvec == 7); /* relu, abs, add, sub, mul, max, min */
    printf("%s: %d vector double kernels checked\n", T->name, nvec);
    free(a);
    free(b);
    free(y);
    free(r);
    free(t);
}

/* the scalar reference's chosen formulas (TorchLean Activation.Math) */
static void test_scalar_formulas(void) {
    const tl_kernel64_table *S = tl_kernels64_for(TL_ISA_SCALAR);
    double x[6] = {-0.0, 0.0, -3.0, 2.5, (double)NAN, 40.0}, y[6];
    S->unary_fn[TL_U_RELU](x, y, 6);
    CHECK(y[0] == 0.0 && !signbit(y[0]) && y[1] == 0.0 && y[2] == 0.0 && y[3] == 2.5 && isnan(y[4]) && y[5] == 40.0);
    S->unary_fn[TL_U_SOFTPLUS](x, y, 6);
    CHECK(y[2] == log(1.0 + exp(-3.0)) && y[3] == 2.5 + log(1.0 + exp(-2.5)) && isnan(y[4]));
    CHECK(y[5] == 40.0 + log(1.0 + exp(-40.0))); /* no threshold: TorchLean's branch */
    S->unary_fn[TL_U_SIGMOID](x, y, 6);
    CHECK(y[2] == exp(-3.0) / (1.0 + exp(-3.0)) && y[3] == 1.0 / (1.0 + exp(-2.5)) && y[1] == 0.5);
    double e[2] = {-1.0, 3.0}, z[2];
    tl_k64_safe_log(e, 1e-3, z, 2);
    CHECK(z[0] == log(log(1.0 + exp(-1.0)) + 1e-3) && z[1] == log(3.0 + log(1.0 + exp(-3.0)) + 1e-3));
    /* softmax: max subtracted, sum left to right */
    double s[3] = {1000.0, 1001.0, 999.5}, o[3];
    tl_k64_softmax(s, o, 1, 3, 1);
    double e0 = exp(-1.0), e1 = exp(0.0), e2 = exp(-1.5), den = (e0 + e1) + e2;
    CHECK(o[0] == e0 / den && o[1] == e1 / den && o[2] == e2 / den);
    /* reduce: left to right from 0 */
    double v[4] = {1e16, 1.0, -1e16, 1.0}, sum;
    tl_k64_reduce_mid(v, &sum, 1, 4, 1, 1.0);
    CHECK(sum == ((((0.0 + 1e16) + 1.0) + -1e16) + 1.0));
}

static void test_dgemm(void) {
    enum { M = 13, N = 7, K = 29 };
    double A[M * K], B[K * N], C[M * N], R[M * N];
    fill(A, M * K, 1);
    fill(B, K * N, 2);
    for (int i = 0; i < M * K; i++) A[i] = isfinite(A[i]) ? A[i] : 0.5; /* finite operands */
    for (int i = 0; i < K * N; i++) B[i] = isfinite(B[i]) ? B[i] : -0.25;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            /* the same matrices, stored transposed when asked */
            double At[M * K], Bt[K * N];
            for (int i = 0; i < M; i++)
                for (int k = 0; k < K; k++) At[k * M + i] = A[i * K + k];
            for (int k = 0; k < K; k++)
                for (int j = 0; j < N; j++) Bt[j * K + k] = B[k * N + j];
            for (int i = 0; i < M * N; i++) C[i] = R[i] = 0.5;
            tl_dgemm_builtin(false, false, M, N, K, 1.5, A, K, B, N, 1.0, R, N);
            tl_dgemm(ta, tb, M, N, K, 1.5, ta ? At : A, ta ? M : K, tb ? Bt : B, tb ? K : N, 1.0, C, N);
            double worst = 0;
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double mag = 0.5; /* |beta C| + |alpha| sum |a||b|: the rounding bound's scale */
                    for (int k = 0; k < K; k++) mag += 1.5 * fabs(A[i * K + k] * B[k * N + j]);
                    double d = fabs(C[i * N + j] - R[i * N + j]) / mag;
                    if (d > worst) worst = d;
                }
            CHECK(worst < 2.0 * K * 1.2e-16); /* two orders of K products: within K ulp of the scale */
        }
    /* the built-in loop sums k left to right */
    double a1[3] = {1e16, 1.0, -1e16}, b1[3] = {1.0, 1.0, 1.0}, c1 = 0;
    tl_dgemm_builtin(false, false, 1, 1, 3, 1.0, a1, 3, b1, 1, 0.0, &c1, 1);
    CHECK(c1 == ((1e16 + 1.0) + -1e16));
}

static void test_move(void) {
    double x[24], y[24];
    for (int i = 0; i < 24; i++) x[i] = i + 0.1;
    int64_t dims[3] = {2, 3, 4}, perm[3] = {2, 0, 1};
    tl_k64_permute(x, y, 3, dims, perm); /* y[k][i][j] = x[i][j][k] */
    bool ok = true;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) ok &= y[(k * 2 + i) * 3 + j] == x[(i * 3 + j) * 4 + k];
    CHECK(ok);
    int64_t from[2] = {1, 3}, to[2] = {4, 3};
    tl_k64_broadcast(x, y, 2, from, to);
    ok = true;
    for (int i = 0; i < 12; i++) ok &= y[i] == x[i % 3];
    CHECK(ok);
    /* im2col of one 1-channel 3x3 image, 2x2 kernel, padding 1: [4 taps, 4x4 outputs] */
    tl_window w = {.rank = 2,
                   .in = {3, 3},
                   .out = {4, 4},
                   .kernel = {2, 2},
                   .stride = {1, 1},
                   .pad = {1, 1},
                   .pad_after = {1, 1},
                   .dilation = {1, 1}};
    double col[64];
    tl_k64_im2col(x, col, 1, &w);
    ok = true;
    for (int t = 0; t < 4; t++)
        for (int o = 0; o < 16; o++) {
            int i0 = o / 4 + t / 2 - 1, i1 = o % 4 + t % 2 - 1;
            double want = i0 >= 0 && i0 < 3 && i1 >= 0 && i1 < 3 ? x[i0 * 3 + i1] : 0.0;
            ok &= col[t * 16 + o] == want;
        }
    CHECK(ok);
}

int main(void) {
    for (int isa = TL_ISA_AVX2; isa < TL_ISA_COUNT; isa++) {
        const tl_kernel64_table *T = tl_kernels64_for((tl_isa)isa);
        if (T) test_table(T);
        else printf("%s: not supported here\n", tl_isa_name((tl_isa)isa));
    }
    test_scalar_formulas();
    test_dgemm();
    test_move();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
