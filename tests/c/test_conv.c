/* test_conv.c - the conv kernels (kernels/tl_conv.h):
 *   - tl_conv_ref against a float64 naive conv, within the FMA recursive-summation bound
 *       |y - y64| <= 1.01 * (T+1) * 2^-24 * (|b| + sum|w*x|),  T = ICg*KH*KW taps
 *     (one rounding per tap plus the bias; the clamp is 1-Lipschitz so it keeps the bound);
 *   - every ISA's depthwise, dense and igemm kernels against tl_conv_ref, BITWISE (same FMA
 *     order; NaN results only have to be NaN: which NaN payload x86 returns depends on operand
 *     order); igemm also with a residual (clamp(unclamped reference + res)), over chunks of one
 *     image and of the batch (tiles across images), item ranges split in two;
 *   - the threaded entry points at 1 and 2 threads (bitwise);
 *   - no write outside y or the scratch sizes the planner is told (guard words).
 * Shapes: C in {1,3,16,17,32,64}, odd/even H and W, stride 1/2/3, asymmetric padding 0..2,
 * dilation 1/2, groups 1/2/C (and depthwise channel multiplier 2), 1x1, 5x5, 1x7, bias and clamp
 * on and off, special values (NaN, inf, -0). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tl_check.h"
#include "tl_conv.h"
#include "tl_conv_internal.h" /* which unit mode a shape takes, to count both */

static uint64_t rng = 0x243F6A8885A308D3ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 40) / 8388608.0 - 1.0);
}
static int irand(int n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (int)((rng >> 33) % (uint64_t)n);
}

#define GUARD 64
#define GUARD_VAL 12345.678f
static float *alloc_guarded(size_t n) {
    float *p = malloc((n + GUARD) * sizeof(float));
    for (size_t i = 0; i < n + GUARD; i++) p[i] = GUARD_VAL;
    return p;
}
static bool guard_ok(const float *p, size_t n) {
    for (size_t i = n; i < n + GUARD; i++)
        if (p[i] != GUARD_VAL) return false;
    return true;
}

static bool same(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    uint32_t ua, ub;
    memcpy(&ua, &a, 4);
    memcpy(&ub, &b, 4);
    return ua == ub;
}
static int64_t count_diff(const float *a, const float *b, size_t n) {
    int64_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += !same(a[i], b[i]);
    return bad;
}

/* float64 conv with zero padding; also sum |w*x| (+ |b|) per output for the error bound */
static void conv64(const tl_conv_desc *d, const float *x, const float *w, double *y, double *mag) {
    int64_t icg = d->in_ch / d->groups, ocg = d->out_ch / d->groups;
    for (int64_t n = 0; n < d->batch; n++)
        for (int64_t oc = 0; oc < d->out_ch; oc++)
            for (int64_t oh = 0; oh < d->out_h; oh++)
                for (int64_t ow = 0; ow < d->out_w; ow++) {
                    double s = d->bias ? (double)d->bias[oc] : 0.0, m = fabs(s);
                    for (int64_t i = 0; i < icg; i++)
                        for (int64_t kh = 0; kh < d->k_h; kh++)
                            for (int64_t kw = 0; kw < d->k_w; kw++) {
                                int64_t ih = oh * d->stride_h + kh * d->dil_h - d->pad_h;
                                int64_t iw = ow * d->stride_w + kw * d->dil_w - d->pad_w;
                                if (ih < 0 || ih >= d->in_h || iw < 0 || iw >= d->in_w) continue;
                                int64_t ic = oc / ocg * icg + i;
                                double p = (double)w[((oc * icg + i) * d->k_h + kh) * d->k_w + kw] *
                                    (double)x[((n * d->in_ch + ic) * d->in_h + ih) * d->in_w + iw];
                                s += p;
                                m += fabs(p);
                            }
                    if (s < (double)d->lo) s = (double)d->lo;
                    if (s > (double)d->hi) s = (double)d->hi;
                    int64_t at = ((n * d->out_ch + oc) * d->out_h + oh) * d->out_w + ow;
                    y[at] = s;
                    mag[at] = m;
                }
}

static int64_t out_extent(int64_t in, int64_t k, int64_t s, int64_t p0, int64_t p1, int64_t dil) {
    int64_t span = in + p0 + p1 - dil * (k - 1) - 1;
    return span < 0 ? 0 : span / s + 1;
}

typedef struct shape {
    int64_t N, C, OC, G, H, W, KH, KW, SH, SW, PT, PB, PL, PR, DH, DW;
    int bias, clamp; /* clamp: 0 none, 1 relu, 2 relu6, 3 hi only */
    int special;     /* plant NaN / inf / -0 */
} shape;

static int cases, dw_cases, dense_cases, ig_cases, ig_multi_img, row_mode, ext_mode, multirow;

static void run_case(const shape *s) {
    tl_conv_desc d = {
        .batch = s->N,
        .in_ch = s->C,
        .out_ch = s->OC,
        .groups = s->G,
        .in_h = s->H,
        .in_w = s->W,
        .out_h = out_extent(s->H, s->KH, s->SH, s->PT, s->PB, s->DH),
        .out_w = out_extent(s->W, s->KW, s->SW, s->PL, s->PR, s->DW),
        .k_h = s->KH,
        .k_w = s->KW,
        .stride_h = s->SH,
        .stride_w = s->SW,
        .pad_h = s->PT,
        .pad_w = s->PL,
        .dil_h = s->DH,
        .dil_w = s->DW,
        .lo = -INFINITY,
        .hi = INFINITY,
    };
    if (d.out_h <= 0 || d.out_w <= 0) return;
    CHECK(tl_conv_supported(&d));
    cases++;
    tl_conv_geom geo;
    tl_conv_geom_init(&d, &geo);
    row_mode += geo.rows;
    ext_mode += !geo.rows;
    multirow += !geo.rows && geo.wq < 16; /* vectors spanning several output rows */
    int64_t icg = s->C / s->G;
    size_t nx = (size_t)(s->N * s->C * s->H * s->W), nw = (size_t)(s->OC * icg * s->KH * s->KW);
    size_t ny = (size_t)(s->N * s->OC * d.out_h * d.out_w);
    float *x = malloc(nx * sizeof(float)), *w = malloc(nw * sizeof(float));
    float *b = malloc((size_t)s->OC * sizeof(float));
    for (size_t i = 0; i < nx; i++) x[i] = frand();
    for (size_t i = 0; i < nw; i++) w[i] = frand();
    for (int64_t i = 0; i < s->OC; i++) b[i] = frand();
    if (s->special) {
        x[irand((int)nx)] = NAN;
        x[irand((int)nx)] = INFINITY;
        x[irand((int)nx)] = -0.0f;
        w[irand((int)nw)] = -0.0f;
        for (size_t i = 0; i < nx; i += 7) x[i] = 0.0f; /* zeros: exact -0/+0 sums happen */
    }
    if (s->bias) d.bias = b;
    if (s->clamp == 1) d.lo = 0.0f;
    if (s->clamp == 2) {
        d.lo = 0.0f;
        d.hi = 6.0f;
    }
    if (s->clamp == 3) d.hi = 0.25f;

    float *ref = malloc(ny * sizeof(float));
    tl_conv_ref(&d, x, w, ref);
    if (!s->special) { /* the reference against float64 */
        double *y64 = malloc(ny * sizeof(double)), *mag = malloc(ny * sizeof(double));
        conv64(&d, x, w, y64, mag);
        double taps = (double)(icg * s->KH * s->KW) + 1.0, worst = 0.0;
        for (size_t i = 0; i < ny; i++) {
            double bound = 1.01 * taps * 0x1p-24 * mag[i] + 1e-37, e = fabs((double)ref[i] - y64[i]);
            if (e / bound > worst) worst = e / bound;
        }
        CHECK(worst <= 1.0);
        if (worst > 1.0) fprintf(stderr, "  ref vs float64: err/bound %.3g\n", worst);
        free(y64);
        free(mag);
    }

    float *y = alloc_guarded(ny);
    bool dw = tl_conv_is_depthwise(&d);
    for (int isa = 0; isa < TL_ISA_COUNT; isa++) {
        if (!tl_kernels_for((tl_isa)isa)) continue;
        int64_t bad;
        if (dw) {
            size_t per = tl_conv_dw_scratch_floats(&d);
            float *scr = alloc_guarded(per);
            for (size_t i = 0; i < ny; i++) y[i] = NAN;
            /* two ranges: the split point must not matter */
            int64_t planes = s->N * s->OC, mid = planes / 3;
            tl_conv_dw_range((tl_isa)isa, &d, x, w, y, 0, mid, scr);
            tl_conv_dw_range((tl_isa)isa, &d, x, w, y, mid, planes, scr);
            bad = count_diff(y, ref, ny);
            CHECK(bad == 0);
            CHECK(guard_ok(y, ny));
            CHECK(guard_ok(scr, per));
            if (bad) fprintf(stderr, "  dw isa %d: %lld of %zu differ\n", isa, (long long)bad, ny);
            free(scr);
            dw_cases++;
        }
        /* the dense kernel takes depthwise shapes too (groups == C) */
        size_t np = tl_conv_packed_floats(&d), ns = tl_conv_direct_scratch_floats(&d);
        float *packed = alloc_guarded(np), *scr = alloc_guarded(ns);
        tl_conv_pack(&d, w, packed);
        CHECK(guard_ok(packed, np));
        for (size_t i = 0; i < ny; i++) y[i] = NAN;
        int64_t items = tl_conv_direct_items(&d);
        tl_kernels_set_isa((tl_isa)isa); /* the padding copy of this ISA */
        for (int64_t n = 0; n < s->N; n++) {
            tl_conv_direct_pad(&d, x, n, scr, 0, s->C);
            int64_t mid = items / 2;
            tl_conv_direct_range((tl_isa)isa, &d, packed, scr, y, n, mid, items);
            tl_conv_direct_range((tl_isa)isa, &d, packed, scr, y, n, 0, mid);
        }
        bad = count_diff(y, ref, ny);
        CHECK(bad == 0);
        CHECK(guard_ok(y, ny));
        CHECK(guard_ok(scr, ns));
        if (bad) fprintf(stderr, "  dense isa %d: %lld of %zu differ\n", isa, (long long)bad, ny);
        dense_cases++;
        tl_kernels_set_isa(tl_kernels_best_isa());
        free(packed);
        free(scr);
    }

    /* igemm (groups 1): every ISA's items bitwise the reference, split in two ranges, over chunks
     * of one image and of the whole batch (tiles then span images); with a residual the
     * expected value is clamp(unclamped reference + res), the unfused add then clamp */
    if (tl_conv_igemm_ok(&d)) {
        tl_conv_desc dn = d;
        dn.lo = -INFINITY;
        dn.hi = INFINITY;
        float *ref_nc = malloc(ny * sizeof(float)), *res = malloc(ny * sizeof(float));
        float *want = malloc(ny * sizeof(float));
        tl_conv_ref(&dn, x, w, ref_nc);
        for (size_t i = 0; i < ny; i++) res[i] = frand();
        if (s->special) res[irand((int)ny)] = -INFINITY;
        for (size_t i = 0; i < ny; i++) want[i] = tl_conv_clamp(ref_nc[i] + res[i], d.lo, d.hi);
        size_t np = tl_conv_igemm_packed_floats(&d), ns = tl_conv_igemm_scratch_floats(&d);
        float *packed = alloc_guarded(np), *scr = alloc_guarded(ns);
        tl_conv_igemm_pack(&d, w, packed);
        CHECK(guard_ok(packed, np));
        int64_t chunk = tl_conv_igemm_chunk(&d);
        CHECK(chunk >= 1 && chunk <= s->N);
        ig_multi_img += chunk > 1;
        for (int isa = 0; isa < TL_ISA_COUNT; isa++) {
            if (!tl_kernels_for((tl_isa)isa)) continue;
            tl_kernels_set_isa((tl_isa)isa);
            for (int with_res = 0; with_res < 2; with_res++)
                for (int per = 0; per < 2; per++) { /* chunks of one image, then of `chunk` */
                    int64_t c = per ? chunk : 1;
                    for (size_t i = 0; i < ny; i++) y[i] = NAN;
                    for (int64_t n0 = 0; n0 < s->N; n0 += c) {
                        int64_t imgs = s->N - n0 < c ? s->N - n0 : c, items = tl_conv_igemm_items(&d, imgs);
                        tl_conv_igemm_pad(&d, x, n0, imgs, scr);
                        int64_t mid = items / 3;
                        tl_conv_igemm_range((tl_isa)isa, &d, packed, scr, y, with_res ? res : NULL, n0, imgs, mid,
                                            items);
                        tl_conv_igemm_range((tl_isa)isa, &d, packed, scr, y, with_res ? res : NULL, n0, imgs, 0, mid);
                    }
                    int64_t bad = count_diff(y, with_res ? want : ref, ny);
                    CHECK(bad == 0);
                    CHECK(guard_ok(y, ny));
                    CHECK(guard_ok(scr, ns));
                    if (bad)
                        fprintf(stderr, "  igemm isa %d res %d chunk %lld: %lld of %zu differ\n", isa, with_res,
                                (long long)c, (long long)bad, ny);
                }
            ig_cases++;
        }
        tl_kernels_set_isa(tl_kernels_best_isa());
        /* the threaded entry: full scratch and one image's worth (chunks of 1), 1 and 2 threads */
        for (int t = 1; t <= 2; t++) {
            tl_set_threads(t);
            for (size_t i = 0; i < ny; i++) y[i] = NAN;
            tl_conv_igemm(&d, packed, x, y, res, scr, ns);
            CHECK(count_diff(y, want, ny) == 0);
            for (size_t i = 0; i < ny; i++) y[i] = NAN;
            tl_conv_igemm(&d, packed, x, y, NULL, scr, ns / (size_t)chunk);
            CHECK(count_diff(y, ref, ny) == 0);
            CHECK(guard_ok(scr, ns));
            CHECK(guard_ok(y, ny));
        }
        tl_set_threads(1);
        free(packed);
        free(scr);
        free(ref_nc);
        free(res);
        free(want);
    }

    /* the threaded entry points with the active table, 1 and 2 threads */
    for (int t = 1; t <= 2; t++) {
        tl_set_threads(t);
        for (size_t i = 0; i < ny; i++) y[i] = NAN;
        if (dw) {
            size_t per = tl_conv_dw_scratch_floats(&d);
            float *scr = alloc_guarded(2 * per);
            tl_conv_dw(&d, x, w, y, scr, 2 * per);
            CHECK(guard_ok(scr, 2 * per));
            free(scr);
        } else {
            /* one scratch image (images in turn) and two (images split over threads) */
            size_t np = tl_conv_packed_floats(&d), ns = tl_conv_direct_scratch_floats(&d);
            float *packed = malloc(np * sizeof(float)), *scr = alloc_guarded(2 * ns);
            tl_conv_pack(&d, w, packed);
            tl_conv_direct(&d, packed, x, y, scr, ns);
            CHECK(guard_ok(scr, ns));
            CHECK(count_diff(y, ref, ny) == 0);
            for (size_t i = 0; i < ny; i++) y[i] = NAN;
            tl_conv_direct(&d, packed, x, y, scr, 2 * ns);
            CHECK(guard_ok(scr, 2 * ns));
            free(packed);
            free(scr);
        }
        CHECK(count_diff(y, ref, ny) == 0);
        CHECK(guard_ok(y, ny));
    }
    tl_set_threads(1);
    free(y);
    free(ref);
    free(x);
    free(w);
    free(b);
}

static void test_grid(void) {
    static const int64_t chans[] = {1, 3, 16, 17, 32, 64};
    static const int64_t sizes[][2] = {{7, 9}, {8, 8}, {13, 6}, {5, 33}, {16, 17}, {1, 20}};
    for (size_t ci = 0; ci < sizeof chans / sizeof chans[0]; ci++)
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
            for (int variant = 0; variant < 4; variant++) {
                int64_t C = chans[ci];
                shape s = {.N = 1 + (variant == 3), .C = C, .H = sizes[si][0], .W = sizes[si][1]};
                int g = irand(3); /* groups 1, 2 (when C is even) or C */
                s.G = g == 0 ? 1 : g == 1 ? (C % 2 == 0 ? 2 : 1) : C;
                int64_t oc_pick[] = {C, 8, 17, 24, 2 * C};
                s.OC = s.G == C ? C * (1 + (variant == 2)) : oc_pick[irand(5)];
                if (s.OC % s.G) s.OC = s.G * (1 + irand(3));
                int k = irand(5); /* 3x3 mostly, then 1x1, 5x5, 1x7, 2x3 */
                s.KH = k == 1 ? 1 : k == 2 ? 5 : k == 3 ? 1 : k == 4 ? 2 : 3;
                s.KW = k == 1 ? 1 : k == 2 ? 5 : k == 3 ? 7 : 3;
                s.SH = 1 + irand(2);
                s.SW = 1 + irand(variant == 1 ? 3 : 2);
                s.DH = 1 + (irand(4) == 0);
                s.DW = 1 + (irand(4) == 0);
                s.PT = irand(3);
                s.PB = irand(3);
                s.PL = irand(3);
                s.PR = irand(3);
                s.bias = irand(2);
                s.clamp = irand(4);
                s.special = variant == 0 && irand(3) == 0;
                if (s.H < s.KH) s.KH = 1;
                run_case(&s);
            }
}

static void test_fixed(void) {
    /* the benchmark shapes (smaller batch) and shapes with many vectors per tile */
    shape list[] = {
        {1, 32, 32, 1, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 64, 64, 1, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
        {2, 16, 16, 1, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 2, 0},
        {1, 96, 96, 96, 48, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 0},
        {1, 96, 96, 96, 48, 48, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 2, 0},
        {1, 96, 24, 1, 24, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},
        {1, 8, 8, 8, 40, 70, 7, 7, 1, 1, 3, 3, 3, 3, 1, 1, 1, 0, 1},   /* 7x7 depthwise, 5 vectors/row */
        {1, 17, 9, 1, 11, 100, 3, 3, 2, 3, 2, 0, 0, 2, 2, 2, 1, 3, 1}, /* stride 3, dilation 2 */
        {3, 4, 4, 4, 1, 37, 1, 5, 1, 2, 0, 0, 2, 1, 1, 1, 1, 1, 0},    /* 1-D depthwise */
        {2, 64, 64, 64, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 0},  /* MobileNet's small planes */
        {2, 32, 40, 1, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 24, 48, 1, 12, 12, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},
        /* the 3x3 / 2 / pad 1 depthwise fast path (AVX-512): odd and even sizes, rows of several
         * 16-output vectors, pad after 0 / 1 / 2, batch 2, NaN / inf planted */
        {2, 24, 24, 24, 57, 71, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 2, 1},
        {1, 16, 16, 16, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 1, 0},
        {1, 5, 5, 5, 7, 33, 3, 3, 2, 2, 1, 0, 1, 0, 1, 1, 1, 0, 1},
        {1, 3, 3, 3, 5, 5, 3, 3, 2, 2, 1, 2, 1, 2, 1, 1, 1, 0, 0},
        {1, 7, 7, 7, 2, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        /* and the 3x3 / 1 / pad 1 one: one row, one column, 16- and 17-wide rows, H % 4 != 0 */
        {2, 24, 24, 24, 57, 71, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1},
        {1, 6, 6, 6, 1, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 6, 6, 6, 9, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},
        {1, 4, 4, 4, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 0},
        {1, 144, 144, 144, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1},
        /* igemm's shapes: ResNet-18's small planes over a batch (tiles across images), channel
         * counts off the 32-channel blocks, stride 2, 1x1, 7x7 */
        {5, 40, 70, 1, 2, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {3, 33, 33, 1, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1},
        {4, 64, 64, 1, 8, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 1, 0},
        {7, 48, 17, 1, 4, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 3, 0},
        {2, 96, 128, 1, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 8, 33, 1, 11, 13, 3, 3, 1, 1, 0, 2, 1, 0, 2, 1, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) run_case(&list[i]);
}

static void test_desc(void) {
    tl_window w;
    memset(&w, 0, sizeof w);
    w.rank = 1;
    w.in[0] = 20;
    w.out[0] = 10;
    w.kernel[0] = 3;
    w.stride[0] = 2;
    w.pad[0] = 1;
    w.dilation[0] = 1;
    tl_conv_desc d;
    CHECK(tl_conv_desc_from_window(&d, 2, 4, 8, 1, &w));
    CHECK(d.in_h == 1 && d.out_h == 1 && d.k_h == 1 && d.in_w == 20 && d.out_w == 10);
    CHECK(d.k_w == 3 && d.stride_w == 2 && d.pad_w == 1 && d.dil_w == 1 && d.bias == NULL);
    CHECK(d.lo == -INFINITY && d.hi == INFINITY && tl_conv_supported(&d));
    CHECK(!tl_conv_is_depthwise(&d));
    w.rank = 3;
    CHECK(!tl_conv_desc_from_window(&d, 2, 4, 8, 1, &w));
    tl_conv_desc bad = {.batch = 1,
                        .in_ch = 3,
                        .out_ch = 4,
                        .groups = 2,
                        .in_h = 4,
                        .in_w = 4,
                        .out_h = 2,
                        .out_w = 2,
                        .k_h = 3,
                        .k_w = 3,
                        .stride_h = 1,
                        .stride_w = 1,
                        .dil_h = 1,
                        .dil_w = 1};
    CHECK(!tl_conv_supported(&bad)); /* 3 channels in 2 groups */
    bad.groups = 1;
    bad.k_w = 17;
    bad.k_h = 16; /* 272 taps > TL_CONV_MAX_TAPS */
    CHECK(!tl_conv_supported(&bad));
}

int main(void) {
    test_desc();
    test_fixed();
    test_grid();
    printf(
        "test_conv: %d shapes (%d row-mode, %d extended-grid, %d of them with vectors over "
        "several rows); %d depthwise, %d dense and %d igemm kernel runs over the ISAs (%d igemm shapes "
        "with tiles over several images)\n",
        cases, row_mode, ext_mode, multirow, dw_cases, dense_cases, ig_cases, ig_multi_img);
    CHECK(row_mode > 10 && ext_mode > 10 && multirow > 5 && ig_cases > 50 && ig_multi_img > 5);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
