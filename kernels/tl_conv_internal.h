/* tl_conv_internal.h - what the conv kernel files share: the padded-input layout and the
 * per-ISA entry points (tl_conv.c dispatches to them). Not part of the public API. */
#ifndef TL_CONV_INTERNAL_H
#define TL_CONV_INTERNAL_H
#include "tl_conv.h"

/* The output plane is computed on an EXTENDED grid [OH][wq], wq = OW + ((KW-1)*DW)/SW: each row
 * carries wq - OW junk columns, so that consecutive extended pixels read consecutive input
 * floats for every tap, across row ends too (small planes still fill all 16 lanes; junk lanes
 * are computed on zeros and not stored). When whole rows waste fewer lanes (OW a multiple of 16,
 * or wide rows) the units follow the rows instead ("row mode": unit u is pixels
 * [16*(u % upr), +16) of row u / upr, at extended pixel oh*wq + ow). Units are 16 pixels (one
 * AVX-512 vector, two AVX2 vectors); a dense work item is TL_CONV_UNITS consecutive units, so
 * the items (and the thread split) are the same for every ISA. */
#define TL_CONV_UNIT 16
#define TL_CONV_UNITS 3

/* The zero-padded input plane, split into SH*SW phases: phase (qr, qc) is a [hq][wq] grid whose
 * (i, j) holds input (SH*i + qr - PH, SW*j + qc - PW), 0 outside the input. Tap (kh, kw) of
 * extended pixel p = oh*wq + ow reads padded (SH*oh + kh*DH, SW*ow + kw*DW), that is phase
 * ((kh*DH) % SH, (kw*DW) % SW) at p + ((kh*DH)/SH)*wq + (kw*DW)/SW: one offset per tap, the
 * same for every pixel. Each phase has zeroed slack after its grid, so the loads of the last
 * unit stay inside it. */
typedef struct tl_conv_geom {
    int64_t hq, wq;                   /* phase grid: OH + ((KH-1)*DH)/SH rows, OW + ((KW-1)*DW)/SW columns */
    int64_t pp;                       /* floats per phase: hq*wq + slack, a multiple of 16 */
    int64_t plane;                    /* floats per padded plane: SH*SW*pp */
    bool rows;                        /* row mode: units never cross a row (fewer units than the extended grid) */
    int64_t upr;                      /* row mode: units per row, ceil(OW / 16) */
    int64_t units;                    /* row mode: OH * upr; else ceil(OH*wq / 16) */
    int64_t tapoff[TL_CONV_MAX_TAPS]; /* per tap kh*KW + kw: its offset in the padded plane */
} tl_conv_geom;

void tl_conv_geom_init(const tl_conv_desc *d, tl_conv_geom *g);
/* Padded planes a depthwise thread keeps: small planes (<= 4 units) go TL_CONV_DW_SLOTS at a time
 * through one tile, so their FMA chains overlap. */
#define TL_CONV_DW_SLOTS 8
static inline int64_t tl_conv_dw_slots(const tl_conv_geom *g) { return g->units <= 4 ? TL_CONV_DW_SLOTS : 1; }
/* Pads input plane xp ([H][W]) into dst (g->plane floats). The per-ISA versions write the same
 * floats with vector loads/stores. */
typedef void (*tl_conv_pad_fn)(const tl_conv_desc *d, const tl_conv_geom *g, const float *xp, float *dst);
void tl_conv_pad_plane(const tl_conv_desc *d, const tl_conv_geom *g, const float *xp, float *dst);

/* Per-ISA kernels: same contract as tl_conv_dw_range / tl_conv_direct_range. */
typedef void (*tl_conv_dw_fn)(const tl_conv_desc *d, const float *x, const float *w, float *y, int64_t plane0,
                              int64_t plane1, float *scratch);
typedef void (*tl_conv_direct_fn)(const tl_conv_desc *d, const float *packed, const float *xpad, float *y, int64_t n,
                                  int64_t item0, int64_t item1);
void tl_conv_dw_scalar(const tl_conv_desc *d, const float *x, const float *w, float *y, int64_t plane0,
                       int64_t plane1, float *scratch);
void tl_conv_direct_scalar(const tl_conv_desc *d, const float *packed, const float *xpad, float *y, int64_t n,
                           int64_t item0, int64_t item1);
typedef void (*tl_conv_igemm_fn)(const tl_conv_desc *d, const float *packed, const float *xpad, float *y,
                                 const float *res, int64_t n0, int64_t imgs, int64_t item0, int64_t item1);
void tl_conv_igemm_scalar(const tl_conv_desc *d, const float *packed, const float *xpad, float *y, const float *res,
                          int64_t n0, int64_t imgs, int64_t item0, int64_t item1);
#if defined(__x86_64__) || defined(__i386__)
void tl_conv_dw_avx2(const tl_conv_desc *d, const float *x, const float *w, float *y, int64_t plane0, int64_t plane1,
                     float *scratch);
void tl_conv_direct_avx2(const tl_conv_desc *d, const float *packed, const float *xpad, float *y, int64_t n,
                         int64_t item0, int64_t item1);
void tl_conv_pad_plane_avx2(const tl_conv_desc *d, const tl_conv_geom *g, const float *xp, float *dst);
void tl_conv_pad_plane_avx512(const tl_conv_desc *d, const tl_conv_geom *g, const float *xp, float *dst);
void tl_conv_dw_avx512(const tl_conv_desc *d, const float *x, const float *w, float *y, int64_t plane0,
                       int64_t plane1, float *scratch);
void tl_conv_direct_avx512(const tl_conv_desc *d, const float *packed, const float *xpad, float *y, int64_t n,
                           int64_t item0, int64_t item1);
void tl_conv_igemm_avx2(const tl_conv_desc *d, const float *packed, const float *xpad, float *y, const float *res,
                        int64_t n0, int64_t imgs, int64_t item0, int64_t item1);
void tl_conv_igemm_avx512(const tl_conv_desc *d, const float *packed, const float *xpad, float *y, const float *res,
                          int64_t n0, int64_t imgs, int64_t item0, int64_t item1);
#endif

/* The clamp epilogue, the reference form every kernel matches bitwise. */
static inline float tl_conv_clamp(float acc, float lo, float hi) {
    float y = lo > acc ? lo : acc;
    return hi < y ? hi : y;
}

/* Item `it` of a chunk of imgs images starting at image n0 (tl_conv_igemm_items): its channel
 * block, each pixel's offset in the padded chunk (xo) and in y at channel 0 (yo). Returns the
 * pixel count np <= TL_CONV_IG_PIX; xo[np..] repeat the last pixel (computed, never stored). */
static inline int tl_conv_ig_item(const tl_conv_desc *d, const tl_conv_geom *g, int64_t n0, int64_t imgs, int64_t it,
                                  int64_t *cb, int64_t *xo, int64_t *yo) {
    int64_t ohw = d->out_h * d->out_w, P = imgs * ohw, ntile = (P + TL_CONV_IG_PIX - 1) / TL_CONV_IG_PIX;
    int64_t q0 = it % ntile * TL_CONV_IG_PIX;
    int np = (int)(P - q0 < TL_CONV_IG_PIX ? P - q0 : TL_CONV_IG_PIX);
    *cb = it / ntile;
    for (int r = 0; r < TL_CONV_IG_PIX; r++) {
        int64_t q = q0 + (r < np ? r : np - 1), nl = q / ohw, p = q % ohw;
        xo[r] = nl * d->in_ch * g->plane + p / d->out_w * g->wq + p % d->out_w;
        yo[r] = (n0 + nl) * d->out_ch * ohw + p;
    }
    return np;
}

/* The igemm store: tile [np][TL_CONV_IG_NR] (channels of block cb) to y, residual, clamp. */
static inline void tl_conv_ig_store(const tl_conv_desc *d, const float *tile, int np, int64_t cb, const int64_t *yo,
                                    float *y, const float *res) {
    int64_t ohw = d->out_h * d->out_w, oc0 = cb * TL_CONV_IG_NR;
    int noc = (int)(d->out_ch - oc0 < TL_CONV_IG_NR ? d->out_ch - oc0 : TL_CONV_IG_NR);
    for (int c = 0; c < noc; c++) {
        int64_t co = (oc0 + c) * ohw;
        for (int r = 0; r < np; r++) {
            float v = tile[r * TL_CONV_IG_NR + c];
            if (res) v += res[yo[r] + co];
            y[yo[r] + co] = tl_conv_clamp(v, d->lo, d->hi);
        }
    }
}

#endif
