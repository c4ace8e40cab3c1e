/* tl_conv_internal.h - what the conv kernel files share: the padded-input layout and the
 * per-ISA entry points (tl_conv.c dispatches to them). Not part of the public API. */
#ifndef TL_CONV_INTERNAL_H
#define TL_CONV_INTERNAL_H
#include "tl_conv.h"

/* Pixels of one output row are grouped in units of 16 (one AVX-512 vector, two AVX2 vectors);
 * a dense work item is TL_CONV_UNITS consecutive units of the [OH][ceil(OW/16)] list, so the
 * items (and the thread split) are the same for every ISA. */
#define TL_CONV_UNIT 16
#define TL_CONV_UNITS 3

/* The zero-padded input plane. Padded row r is input row r - PH; its SW column phases are
 * stored one after the other, phase q holding padded columns q, q+SW, q+2SW, ... (input column
 * i*SW + q - PW at index i). Output pixel ow of tap kw then reads phase (kw*DW) % SW at index
 * ow + (kw*DW) / SW: consecutive outputs read consecutive floats whatever the stride. Phases are
 * long enough for a full last unit, so vector loads never leave the row. */
typedef struct tl_conv_geom {
    int64_t hp;        /* padded rows: (OH-1)*SH + (KH-1)*DH + 1 */
    int64_t wq;        /* floats per phase */
    int64_t rs;        /* floats per padded row: SW * wq */
    int64_t plane;     /* floats per padded plane: hp * rs */
    int64_t units_w;   /* ceil(OW / 16) */
    int64_t tapoff[TL_CONV_MAX_KW]; /* offset of tap kw inside a padded row */
} tl_conv_geom;

void tl_conv_geom_init(const tl_conv_desc *d, tl_conv_geom *g);
/* Pads input plane xp ([H][W]) into dst (g->plane floats). The per-ISA versions write the same
 * floats with vector loads/stores. */
typedef void (*tl_conv_pad_fn)(const tl_conv_desc *d, const tl_conv_geom *g, const float *xp,
                               float *dst);
void tl_conv_pad_plane(const tl_conv_desc *d, const tl_conv_geom *g, const float *xp, float *dst);

/* Per-ISA kernels: same contract as tl_conv_dw_range / tl_conv_direct_range. */
typedef void (*tl_conv_dw_fn)(const tl_conv_desc *d, const float *x, const float *w, float *y,
                              int64_t plane0, int64_t plane1, float *scratch);
typedef void (*tl_conv_direct_fn)(const tl_conv_desc *d, const float *packed, const float *xpad,
                                  float *y, int64_t n, int64_t item0, int64_t item1);
void tl_conv_dw_scalar(const tl_conv_desc *d, const float *x, const float *w, float *y,
                       int64_t plane0, int64_t plane1, float *scratch);
void tl_conv_direct_scalar(const tl_conv_desc *d, const float *packed, const float *xpad, float *y,
                           int64_t n, int64_t item0, int64_t item1);
#if defined(__x86_64__) || defined(__i386__)
void tl_conv_dw_avx2(const tl_conv_desc *d, const float *x, const float *w, float *y,
                     int64_t plane0, int64_t plane1, float *scratch);
void tl_conv_direct_avx2(const tl_conv_desc *d, const float *packed, const float *xpad, float *y,
                         int64_t n, int64_t item0, int64_t item1);
void tl_conv_pad_plane_avx2(const tl_conv_desc *d, const tl_conv_geom *g, const float *xp,
                            float *dst);
void tl_conv_pad_plane_avx512(const tl_conv_desc *d, const tl_conv_geom *g, const float *xp,
                              float *dst);
void tl_conv_dw_avx512(const tl_conv_desc *d, const float *x, const float *w, float *y,
                       int64_t plane0, int64_t plane1, float *scratch);
void tl_conv_direct_avx512(const tl_conv_desc *d, const float *packed, const float *xpad,
                           float *y, int64_t n, int64_t item0, int64_t item1);
#endif

/* The clamp epilogue, the reference form every kernel matches bitwise. */
static inline float tl_conv_clamp(float acc, float lo, float hi) {
    float y = lo > acc ? lo : acc;
    return hi < y ? hi : y;
}

#endif
