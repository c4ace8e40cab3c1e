/* tl_conv_scalar.c - the conv reference (tl_conv_ref, raw NCHW input and weights) and the scalar
 * kernels with the vector kernels' contracts. The order of operations per output element is the
 * one stated in tl_conv.h; fmaf gives the single rounding per tap the vector FMA gives. */
#include <math.h>

#include "tl_conv_internal.h"

/* One output plane of tl_conv_ref: output channel oc of image n. */
static void tl_conv_ref_plane(const tl_conv_desc *d, const float *x, const float *w, float *y, int64_t n,
                              int64_t oc) {
    const int64_t H = d->in_h, W = d->in_w, OH = d->out_h, OW = d->out_w;
    const int64_t KH = d->k_h, KW = d->k_w;
    int64_t icg = d->in_ch / d->groups, ocg = d->out_ch / d->groups, g = oc / ocg;
    const float *wo = w + oc * icg * KH * KW;
    float *yp = y + (n * d->out_ch + oc) * OH * OW;
    for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
            float acc = d->bias ? d->bias[oc] : 0.0f;
            for (int64_t i = 0; i < icg; i++) {
                const float *xc = x + (n * d->in_ch + g * icg + i) * H * W;
                for (int64_t kh = 0; kh < KH; kh++) {
                    int64_t ih = oh * d->stride_h + kh * d->dil_h - d->pad_h;
                    for (int64_t kw = 0; kw < KW; kw++) {
                        int64_t iw = ow * d->stride_w + kw * d->dil_w - d->pad_w;
                        float xv = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? xc[ih * W + iw] : 0.0f;
                        acc = fmaf(wo[(i * KH + kh) * KW + kw], xv, acc);
                    }
                }
            }
            yp[oh * OW + ow] = tl_conv_clamp(acc, d->lo, d->hi);
        }
}

void tl_conv_ref(const tl_conv_desc *d, const float *x, const float *w, float *y) {
    for (int64_t n = 0; n < d->batch; n++)
        for (int64_t oc = 0; oc < d->out_ch; oc++) tl_conv_ref_plane(d, x, w, y, n, oc);
}

/* Depthwise: the reference itself, per plane (it needs no scratch). */
void tl_conv_dw_scalar(const tl_conv_desc *d, const float *x, const float *w, float *y, int64_t plane0,
                       int64_t plane1, float *scratch) {
    (void)scratch;
    for (int64_t pl = plane0; pl < plane1; pl++) tl_conv_ref_plane(d, x, w, y, pl / d->out_ch, pl % d->out_ch);
}

/* Dense: the vector kernels' data path (padded input, packed weights, work items) in plain C,
 * so a machine without AVX2 runs the same contract; tested bitwise against tl_conv_ref. */
void tl_conv_direct_scalar(const tl_conv_desc *d, const float *packed, const float *xpad, float *y, int64_t n,
                           int64_t item0, int64_t item1) {
    tl_conv_geom g;
    tl_conv_geom_init(d, &g);
    const int64_t OH = d->out_h, OW = d->out_w, KH = d->k_h, KW = d->k_w;
    int64_t icg = d->in_ch / d->groups, ocg = d->out_ch / d->groups;
    int64_t nb = (ocg + TL_CONV_OCB - 1) / TL_CONV_OCB, kk = icg * KH * KW;
    int64_t units = g.units, ntile = (units + TL_CONV_UNITS - 1) / TL_CONV_UNITS;
    for (int64_t it = item0; it < item1; it++) {
        int64_t gi = it / (nb * ntile), b = it / ntile % nb, t = it % ntile;
        const float *wb = packed + (gi * nb + b) * kk * TL_CONV_OCB;
        const float *xg = xpad + gi * icg * g.plane;
        int64_t oc0 = gi * ocg + b * TL_CONV_OCB;
        int64_t noc = ocg - b * TL_CONV_OCB < TL_CONV_OCB ? ocg - b * TL_CONV_OCB : TL_CONV_OCB;
        int64_t ext = OH * g.wq;
        for (int64_t q = t * TL_CONV_UNITS * TL_CONV_UNIT;
             q < (t + 1) * TL_CONV_UNITS * TL_CONV_UNIT && q < units * TL_CONV_UNIT; q++) {
            int64_t u = q / TL_CONV_UNIT, l = q % TL_CONV_UNIT; /* lane l of unit u */
            int64_t oh, ow, p;
            if (g.rows) {
                oh = u / g.upr;
                ow = u % g.upr * TL_CONV_UNIT + l;
                p = oh * g.wq + ow;
            } else {
                p = u * TL_CONV_UNIT + l;
                oh = p / g.wq;
                ow = p % g.wq;
            }
            if (p >= ext || ow >= OW) continue; /* junk of the last unit / a row */
            for (int64_t o = 0; o < noc; o++) {
                float acc = d->bias ? d->bias[oc0 + o] : 0.0f;
                const float *wp = wb + o;
                for (int64_t i = 0; i < icg; i++) {
                    const float *xc = xg + i * g.plane + p;
                    for (int64_t k = 0; k < KH * KW; k++, wp += TL_CONV_OCB) acc = fmaf(*wp, xc[g.tapoff[k]], acc);
                }
                y[((n * d->out_ch + oc0 + o) * OH + oh) * OW + ow] = tl_conv_clamp(acc, d->lo, d->hi);
            }
        }
    }
}

/* igemm: the vector kernels' items (chunk of padded images, packed weights with the bias row) in
 * plain C; each element the reference's loop. */
void tl_conv_igemm_scalar(const tl_conv_desc *d, const float *packed, const float *xpad, float *y, const float *res,
                          int64_t n0, int64_t imgs, int64_t item0, int64_t item1) {
    tl_conv_geom g;
    tl_conv_geom_init(d, &g);
    const int64_t taps = d->k_h * d->k_w, K = d->in_ch * taps;
    float tile[TL_CONV_IG_PIX * TL_CONV_IG_NR];
    int64_t xo[TL_CONV_IG_PIX], yo[TL_CONV_IG_PIX], cb;
    for (int64_t it = item0; it < item1; it++) {
        int np = tl_conv_ig_item(d, &g, n0, imgs, it, &cb, xo, yo);
        const float *wb = packed + cb * (K + 1) * TL_CONV_IG_NR;
        for (int r = 0; r < np; r++)
            for (int c = 0; c < TL_CONV_IG_NR; c++) {
                float acc = wb[c];
                const float *wp = wb + TL_CONV_IG_NR + c;
                for (int64_t i = 0; i < d->in_ch; i++) {
                    const float *xc = xpad + xo[r] + i * g.plane;
                    for (int64_t t = 0; t < taps; t++, wp += TL_CONV_IG_NR) acc = fmaf(*wp, xc[g.tapoff[t]], acc);
                }
                tile[r * TL_CONV_IG_NR + c] = acc;
            }
        tl_conv_ig_store(d, tile, np, cb, yo, y, res);
    }
}
