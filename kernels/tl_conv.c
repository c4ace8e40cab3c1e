/* tl_conv.c - conv descriptors, sizes, weight packing, input padding, ISA dispatch and the
 * thread split. The arithmetic lives in tl_conv_scalar.c / tl_conv_vec.inc. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "tl_conv_internal.h"
#include "tl_kernels_internal.h"

bool tl_conv_desc_from_window(tl_conv_desc *d, int64_t batch, int64_t in_ch, int64_t out_ch, int64_t groups,
                              const tl_window *w) {
    if (w->rank != 1 && w->rank != 2) return false;
    int h = w->rank == 2 ? 0 : -1, x = w->rank - 1; /* axis of H (-1: none) and of W */
    *d = (tl_conv_desc){
        .batch = batch,
        .in_ch = in_ch,
        .out_ch = out_ch,
        .groups = groups,
        .in_h = h < 0 ? 1 : w->in[h],
        .in_w = w->in[x],
        .out_h = h < 0 ? 1 : w->out[h],
        .out_w = w->out[x],
        .k_h = h < 0 ? 1 : w->kernel[h],
        .k_w = w->kernel[x],
        .stride_h = h < 0 ? 1 : w->stride[h],
        .stride_w = w->stride[x],
        .pad_h = h < 0 ? 0 : w->pad[h],
        .pad_w = w->pad[x],
        .dil_h = h < 0 ? 1 : w->dilation[h],
        .dil_w = w->dilation[x],
        .bias = NULL,
        .lo = -INFINITY,
        .hi = INFINITY,
    };
    return true;
}

bool tl_conv_supported(const tl_conv_desc *d) {
    const int64_t big = (int64_t)1 << 31;
    if (d->batch < 0 || d->in_ch <= 0 || d->out_ch <= 0 || d->groups <= 0) return false;
    if (d->in_ch % d->groups || d->out_ch % d->groups) return false;
    if (d->in_h <= 0 || d->in_w <= 0 || d->out_h <= 0 || d->out_w <= 0) return false;
    if (d->k_h <= 0 || d->k_w <= 0 || d->k_w > TL_CONV_MAX_TAPS || d->k_h * d->k_w > TL_CONV_MAX_TAPS) return false;
    if (d->stride_h <= 0 || d->stride_w <= 0 || d->dil_h <= 0 || d->dil_w <= 0) return false;
    if (d->pad_h < 0 || d->pad_w < 0 || d->pad_h >= big || d->pad_w >= big) return false;
    /* every extent and the padded plane well inside int64 (and one plane inside 2^31 floats) */
    int64_t ext[] = {d->in_h,     d->in_w,  d->out_h, d->out_w, d->k_h,   d->stride_h,
                     d->stride_w, d->dil_h, d->dil_w, d->in_ch, d->out_ch};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (ext[i] >= big) return false;
    tl_conv_geom g;
    tl_conv_geom_init(d, &g);
    return g.plane < big && d->in_h * d->in_w < big && d->out_h * d->out_w < big;
}

bool tl_conv_is_depthwise(const tl_conv_desc *d) { return d->groups == d->in_ch && d->out_ch % d->in_ch == 0; }

void tl_conv_geom_init(const tl_conv_desc *d, tl_conv_geom *g) {
    const int64_t SH = d->stride_h, SW = d->stride_w;
    int64_t reach_h = ((d->k_h - 1) * d->dil_h) / SH, reach_w = ((d->k_w - 1) * d->dil_w) / SW;
    g->hq = d->out_h + reach_h;
    g->wq = d->out_w + reach_w;
    int64_t ext_units = (d->out_h * g->wq + TL_CONV_UNIT - 1) / TL_CONV_UNIT;
    g->upr = (d->out_w + TL_CONV_UNIT - 1) / TL_CONV_UNIT;
    g->rows = d->out_h * g->upr <= ext_units;
    g->units = g->rows ? d->out_h * g->upr : ext_units;
    /* row mode: rows 64-byte aligned (a tap's loads then split fewer cache lines) */
    if (g->rows) g->wq = (g->wq + 15) / 16 * 16;
    /* the loads of the last unit end before (its first extended pixel + 16) + reach_h*wq + reach_w */
    int64_t last = g->rows ? (d->out_h - 1) * g->wq + (g->upr - 1) * TL_CONV_UNIT : (ext_units - 1) * TL_CONV_UNIT;
    int64_t need = last + TL_CONV_UNIT + reach_h * g->wq + reach_w;
    if (need < g->hq * g->wq) need = g->hq * g->wq;
    g->pp = (need + 15) / 16 * 16;
    g->plane = SH * SW * g->pp;
    for (int64_t kh = 0; kh < d->k_h; kh++)
        for (int64_t kw = 0; kw < d->k_w; kw++) {
            int64_t t = kh * d->k_w + kw;
            if (t >= TL_CONV_MAX_TAPS) return;
            int64_t r = kh * d->dil_h, c = kw * d->dil_w;
            g->tapoff[t] = ((r % SH) * SW + c % SW) * g->pp + (r / SH) * g->wq + c / SW;
        }
}

void tl_conv_pad_plane(const tl_conv_desc *d, const tl_conv_geom *g, const float *xp, float *dst) {
    const int64_t H = d->in_h, W = d->in_w, SH = d->stride_h, SW = d->stride_w;
    for (int64_t qr = 0; qr < SH; qr++)
        for (int64_t qc = 0; qc < SW; qc++) {
            float *ph = dst + (qr * SW + qc) * g->pp;
            /* column j holds input column SW*j + qc - PW: valid for j in [lo, hi) */
            int64_t off = qc - d->pad_w;
            int64_t lo = off >= 0 ? 0 : (-off + SW - 1) / SW;
            int64_t hi = W - off <= 0 ? 0 : (W - off - 1) / SW + 1;
            if (hi > g->wq) hi = g->wq;
            if (lo > hi) lo = hi;
            for (int64_t i = 0; i < g->hq; i++) {
                float *row = ph + i * g->wq;
                int64_t ih = SH * i + qr - d->pad_h;
                if (ih < 0 || ih >= H) {
                    memset(row, 0, (size_t)g->wq * sizeof(float));
                    continue;
                }
                const float *xr = xp + ih * W;
                for (int64_t j = 0; j < lo; j++) row[j] = 0.0f;
                for (int64_t j = lo; j < hi; j++) row[j] = xr[j * SW + off];
                for (int64_t j = hi; j < g->wq; j++) row[j] = 0.0f;
            }
            memset(ph + g->hq * g->wq, 0, (size_t)(g->pp - g->hq * g->wq) * sizeof(float));
        }
}

/* Which ISAs run here, detected once: tl_kernels_for runs cpuid on every call, and cpuid traps
 * to the hypervisor in a VM (per-channel dispatch made a conv 10x slower). */
static atomic_int tl_conv_isa_max = -1;
static bool tl_conv_isa_ok(tl_isa isa) {
    int m = atomic_load(&tl_conv_isa_max);
    if (m < 0) {
        m = (int)tl_kernels_best_isa();
        atomic_store(&tl_conv_isa_max, m);
    }
    return (int)isa <= m;
}

static tl_isa tl_conv_active_isa(void) {
    const tl_kernel_table *t = tl_kernels();
#ifdef TL_KERNELS_X86
    if (t == &tl_kernels_avx512_table) return TL_ISA_AVX512;
    if (t == &tl_kernels_avx2_table) return TL_ISA_AVX2;
#endif
    (void)t;
    return TL_ISA_SCALAR;
}

static tl_conv_dw_fn tl_conv_dw_for(tl_isa isa) {
#ifdef TL_KERNELS_X86
    if (isa == TL_ISA_AVX512 && tl_conv_isa_ok(TL_ISA_AVX512)) return tl_conv_dw_avx512;
    if (isa >= TL_ISA_AVX2 && tl_conv_isa_ok(TL_ISA_AVX2)) return tl_conv_dw_avx2;
#endif
    (void)isa;
    return tl_conv_dw_scalar;
}

static tl_conv_direct_fn tl_conv_direct_for(tl_isa isa) {
#ifdef TL_KERNELS_X86
    if (isa == TL_ISA_AVX512 && tl_conv_isa_ok(TL_ISA_AVX512)) return tl_conv_direct_avx512;
    if (isa >= TL_ISA_AVX2 && tl_conv_isa_ok(TL_ISA_AVX2)) return tl_conv_direct_avx2;
#endif
    (void)isa;
    return tl_conv_direct_scalar;
}

static tl_conv_pad_fn tl_conv_pad_for(tl_isa isa) {
#ifdef TL_KERNELS_X86
    if (isa == TL_ISA_AVX512 && tl_conv_isa_ok(TL_ISA_AVX512)) return tl_conv_pad_plane_avx512;
    if (isa >= TL_ISA_AVX2 && tl_conv_isa_ok(TL_ISA_AVX2)) return tl_conv_pad_plane_avx2;
#endif
    (void)isa;
    return tl_conv_pad_plane;
}

/* ---------------------------------------------------------------- depthwise */
size_t tl_conv_dw_scratch_floats(const tl_conv_desc *d) {
    tl_conv_geom g;
    tl_conv_geom_init(d, &g);
    return (size_t)(g.plane * tl_conv_dw_slots(&g));
}

void tl_conv_dw_range(tl_isa isa, const tl_conv_desc *d, const float *x, const float *w, float *y, int64_t plane0,
                      int64_t plane1, float *scratch) {
    tl_conv_dw_for(isa)(d, x, w, y, plane0, plane1, scratch);
}

typedef struct conv_job {
    const tl_conv_desc *d;
    const tl_conv_geom *g;
    tl_conv_dw_fn dw;
    tl_conv_direct_fn direct;
    tl_conv_pad_fn pad;
    const float *x, *w;
    float *y, *scratch;
    size_t per;  /* scratch floats per slot */
    int64_t nt;  /* slots / parts */
    int64_t img; /* the image of a one-image job */
} conv_job;

/* part t of nt: one contiguous block of planes (consecutive planes of a channel multiplier share
 * their padded input) in slot t of the scratch; the split changes nothing in any plane */
static void dw_part(void *c, int64_t t0, int64_t t1) {
    const conv_job *j = c;
    int64_t planes = j->d->batch * j->d->out_ch;
    for (int64_t t = t0; t < t1; t++)
        j->dw(j->d, j->x, j->w, j->y, planes * t / j->nt, planes * (t + 1) / j->nt, j->scratch + (size_t)t * j->per);
}

void tl_conv_dw(const tl_conv_desc *d, const float *x, const float *w, float *y, float *scratch,
                size_t scratch_floats) {
    tl_conv_dw_fn f = tl_conv_dw_for(tl_conv_active_isa());
    int64_t planes = d->batch * d->out_ch;
    size_t per = tl_conv_dw_scratch_floats(d);
    int64_t slots = per ? (int64_t)(scratch_floats / per) : 0;
    int64_t work = planes * d->out_h * d->out_w * d->k_h * d->k_w;
    int64_t nt = tl_pool_threads(planes);
    if (nt > slots) nt = slots;
    if (nt < 2 || work < TL_PAR_MIN) {
        f(d, x, w, y, 0, planes, scratch);
        return;
    }
    conv_job j = {.d = d, .dw = f, .x = x, .w = w, .y = y, .scratch = scratch, .per = per, .nt = nt};
    tl_pool_for(nt, dw_part, &j);
}

/* ---------------------------------------------------------------- dense direct */
static int64_t tl_conv_blocks(const tl_conv_desc *d) {
    return (d->out_ch / d->groups + TL_CONV_OCB - 1) / TL_CONV_OCB;
}

size_t tl_conv_packed_floats(const tl_conv_desc *d) {
    int64_t icg = d->in_ch / d->groups;
    return (size_t)(d->groups * tl_conv_blocks(d) * TL_CONV_OCB * icg * d->k_h * d->k_w);
}

void tl_conv_pack(const tl_conv_desc *d, const float *w, float *packed) {
    int64_t ocg = d->out_ch / d->groups, icg = d->in_ch / d->groups, nb = tl_conv_blocks(d);
    int64_t kk = icg * d->k_h * d->k_w; /* weights per output channel */
    for (int64_t g = 0; g < d->groups; g++)
        for (int64_t b = 0; b < nb; b++) {
            float *dst = packed + (g * nb + b) * kk * TL_CONV_OCB;
            for (int64_t t = 0; t < kk; t++)
                for (int64_t o = 0; o < TL_CONV_OCB; o++) {
                    int64_t oc = b * TL_CONV_OCB + o;
                    dst[t * TL_CONV_OCB + o] = oc < ocg ? w[(g * ocg + oc) * kk + t] : 0.0f;
                }
        }
}

size_t tl_conv_direct_scratch_floats(const tl_conv_desc *d) {
    tl_conv_geom g;
    tl_conv_geom_init(d, &g);
    return (size_t)(d->in_ch * g.plane);
}

static void tl_conv_pad_channels(tl_conv_pad_fn pad, const tl_conv_desc *d, const tl_conv_geom *g, const float *x,
                                 int64_t n, float *scratch, int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) pad(d, g, x + (n * d->in_ch + c) * d->in_h * d->in_w, scratch + c * g->plane);
}

void tl_conv_direct_pad(const tl_conv_desc *d, const float *x, int64_t n, float *scratch, int64_t c0, int64_t c1) {
    tl_conv_geom g;
    tl_conv_geom_init(d, &g);
    /* a copy: the same bits with every ISA's version */
    tl_conv_pad_channels(tl_conv_pad_for(tl_conv_active_isa()), d, &g, x, n, scratch, c0, c1);
}

int64_t tl_conv_direct_items(const tl_conv_desc *d) {
    tl_conv_geom g;
    tl_conv_geom_init(d, &g);
    int64_t units = g.units;
    return d->groups * tl_conv_blocks(d) * ((units + TL_CONV_UNITS - 1) / TL_CONV_UNITS);
}

void tl_conv_direct_range(tl_isa isa, const tl_conv_desc *d, const float *packed, const float *scratch, float *y,
                          int64_t n, int64_t item0, int64_t item1) {
    tl_conv_direct_for(isa)(d, packed, scratch, y, n, item0, item1);
}

static void direct_images_part(void *c, int64_t t0, int64_t t1) {
    const conv_job *j = c;
    const tl_conv_desc *d = j->d;
    int64_t items = tl_conv_direct_items(d);
    for (int64_t t = t0; t < t1; t++) {
        float *s = j->scratch + (size_t)t * j->per;
        for (int64_t n = d->batch * t / j->nt; n < d->batch * (t + 1) / j->nt; n++) {
            tl_conv_pad_channels(j->pad, d, j->g, j->x, n, s, 0, d->in_ch);
            j->direct(d, j->w, s, j->y, n, 0, items);
        }
    }
}

static void pad_part(void *c, int64_t c0, int64_t c1) {
    const conv_job *j = c;
    tl_conv_pad_channels(j->pad, j->d, j->g, j->x, j->img, j->scratch, c0, c1);
}

static void items_part(void *c, int64_t i0, int64_t i1) {
    const conv_job *j = c;
    j->direct(j->d, j->w, j->scratch, j->y, j->img, i0, i1);
}

void tl_conv_direct(const tl_conv_desc *d, const float *packed, const float *x, float *y, float *scratch,
                    size_t scratch_floats) {
    tl_isa isa = tl_conv_active_isa();
    tl_conv_direct_fn f = tl_conv_direct_for(isa);
    tl_conv_pad_fn pad = tl_conv_pad_for(isa);
    tl_conv_geom g;
    tl_conv_geom_init(d, &g);
    int64_t items = tl_conv_direct_items(d);
    int64_t in_img = d->in_ch * d->in_h * d->in_w;
    int64_t macs = d->out_ch * d->out_h * d->out_w * (d->in_ch / d->groups) * d->k_h * d->k_w;
    size_t per = (size_t)(d->in_ch * g.plane);
    int64_t slots = per ? (int64_t)(scratch_floats / per) : 0;
    int64_t nt = d->batch >= 2 ? tl_pool_threads(d->batch) : 1;
    if (nt > slots) nt = slots;
    conv_job j = {.d = d,
                  .g = &g,
                  .direct = f,
                  .pad = pad,
                  .x = x,
                  .w = packed,
                  .y = y,
                  .scratch = scratch,
                  .per = per,
                  .nt = nt};
    if (nt >= 2 && macs * d->batch >= TL_PAR_MIN) {
        /* whole images per thread, each padded into the thread's own slot: no barrier per image */
        tl_pool_for(nt, direct_images_part, &j);
        return;
    }
    /* one image at a time (batch 1, or fewer scratch slots than threads: a session planned for
     * fewer threads), each padded once (split over channels) and its items split */
    bool split = macs >= TL_PAR_MIN && tl_pool_threads(items) >= 2;
    for (int64_t n = 0; n < d->batch; n++) {
        j.img = n;
        if (split && in_img >= TL_PAR_MIN && d->in_ch > 1) tl_pool_for(d->in_ch, pad_part, &j);
        else tl_conv_pad_channels(pad, d, &g, x, n, scratch, 0, d->in_ch);
        if (split) tl_pool_for(items, items_part, &j);
        else f(d, packed, scratch, y, n, 0, items);
    }
}

/* ---------------------------------------------------------------- igemm */
static tl_conv_igemm_fn tl_conv_igemm_for(tl_isa isa) {
#ifdef TL_KERNELS_X86
    if (isa == TL_ISA_AVX512 && tl_conv_isa_ok(TL_ISA_AVX512)) return tl_conv_igemm_avx512;
    if (isa >= TL_ISA_AVX2 && tl_conv_isa_ok(TL_ISA_AVX2)) return tl_conv_igemm_avx2;
#endif
    (void)isa;
    return tl_conv_igemm_scalar;
}

bool tl_conv_igemm_ok(const tl_conv_desc *d) { return d->groups == 1 && tl_conv_supported(d); }

static int64_t tl_conv_ig_blocks(const tl_conv_desc *d) { return (d->out_ch + TL_CONV_IG_NR - 1) / TL_CONV_IG_NR; }

size_t tl_conv_igemm_packed_floats(const tl_conv_desc *d) {
    return (size_t)(tl_conv_ig_blocks(d) * (1 + d->in_ch * d->k_h * d->k_w) * TL_CONV_IG_NR);
}

void tl_conv_igemm_pack(const tl_conv_desc *d, const float *w, float *packed) {
    int64_t K = d->in_ch * d->k_h * d->k_w, nb = tl_conv_ig_blocks(d);
    for (int64_t b = 0; b < nb; b++) {
        float *dst = packed + b * (K + 1) * TL_CONV_IG_NR;
        for (int64_t o = 0; o < TL_CONV_IG_NR; o++) {
            int64_t oc = b * TL_CONV_IG_NR + o;
            dst[o] = oc < d->out_ch && d->bias ? d->bias[oc] : 0.0f;
            for (int64_t k = 0; k < K; k++) dst[(1 + k) * TL_CONV_IG_NR + o] = oc < d->out_ch ? w[oc * K + k] : 0.0f;
        }
    }
}

#define TL_CONV_IG_CHUNK_FLOATS ((int64_t)1 << 18) /* 1 MiB of padded images */
int64_t tl_conv_igemm_chunk(const tl_conv_desc *d) {
    tl_conv_geom g;
    tl_conv_geom_init(d, &g);
    int64_t per = d->in_ch * g.plane, n = per ? TL_CONV_IG_CHUNK_FLOATS / per : 1;
    if (n > d->batch) n = d->batch;
    return n < 1 ? 1 : n;
}

size_t tl_conv_igemm_scratch_floats(const tl_conv_desc *d) {
    tl_conv_geom g;
    tl_conv_geom_init(d, &g);
    return (size_t)(tl_conv_igemm_chunk(d) * d->in_ch * g.plane);
}

int64_t tl_conv_igemm_items(const tl_conv_desc *d, int64_t imgs) {
    int64_t P = imgs * d->out_h * d->out_w;
    return tl_conv_ig_blocks(d) * ((P + TL_CONV_IG_PIX - 1) / TL_CONV_IG_PIX);
}

void tl_conv_igemm_range(tl_isa isa, const tl_conv_desc *d, const float *packed, const float *scratch, float *y,
                         const float *res, int64_t n0, int64_t imgs, int64_t item0, int64_t item1) {
    tl_conv_igemm_for(isa)(d, packed, scratch, y, res, n0, imgs, item0, item1);
}

typedef struct ig_job {
    const tl_conv_desc *d;
    const tl_conv_geom *g;
    tl_conv_igemm_fn f;
    tl_conv_pad_fn pad;
    const float *packed, *x, *res;
    float *y, *scratch;
    int64_t n0, imgs;
} ig_job;

/* planes [p0, p1) of the chunk's imgs * C, one image's channel run at a time */
static void ig_pad_part(void *c, int64_t p0, int64_t p1) {
    const ig_job *j = c;
    const int64_t C = j->d->in_ch;
    for (int64_t p = p0; p < p1;) {
        int64_t n = p / C, c0 = p % C, c1 = c0 + (p1 - p) < C ? c0 + (p1 - p) : C;
        tl_conv_pad_channels(j->pad, j->d, j->g, j->x, j->n0 + n, j->scratch + n * C * j->g->plane, c0, c1);
        p += c1 - c0;
    }
}

void tl_conv_igemm_pad(const tl_conv_desc *d, const float *x, int64_t n0, int64_t imgs, float *scratch) {
    tl_conv_geom g;
    tl_conv_geom_init(d, &g);
    ig_job j = {.d = d, .g = &g, .pad = tl_conv_pad_for(tl_conv_active_isa()), .x = x, .scratch = scratch, .n0 = n0};
    ig_pad_part(&j, 0, imgs * d->in_ch);
}

static void ig_items_part(void *c, int64_t i0, int64_t i1) {
    const ig_job *j = c;
    j->f(j->d, j->packed, j->scratch, j->y, j->res, j->n0, j->imgs, i0, i1);
}

void tl_conv_igemm(const tl_conv_desc *d, const float *packed, const float *x, float *y, const float *res,
                   float *scratch, size_t scratch_floats) {
    tl_isa isa = tl_conv_active_isa();
    tl_conv_geom g;
    tl_conv_geom_init(d, &g);
    int64_t chunk = tl_conv_igemm_chunk(d), per = d->in_ch * g.plane;
    if (per && (int64_t)(scratch_floats / (size_t)per) < chunk) chunk = (int64_t)(scratch_floats / (size_t)per);
    if (chunk < 1) chunk = 1;
    int64_t macs = d->out_ch * d->out_h * d->out_w * d->in_ch * d->k_h * d->k_w;
    ig_job j = {.d = d,
                .g = &g,
                .f = tl_conv_igemm_for(isa),
                .pad = tl_conv_pad_for(isa),
                .packed = packed,
                .x = x,
                .res = res,
                .y = y,
                .scratch = scratch};
    for (int64_t n0 = 0; n0 < d->batch; n0 += chunk) {
        j.n0 = n0;
        j.imgs = d->batch - n0 < chunk ? d->batch - n0 : chunk;
        int64_t planes = j.imgs * d->in_ch, items = tl_conv_igemm_items(d, j.imgs);
        if (planes * g.plane >= TL_PAR_MIN) tl_pool_for(planes, ig_pad_part, &j);
        else ig_pad_part(&j, 0, planes);
        if (macs * j.imgs >= TL_PAR_MIN) tl_pool_for(items, ig_items_part, &j);
        else ig_items_part(&j, 0, items);
    }
}

/* Useful fraction of the FMA lanes of each tiling, for the active ISA's vector width W (igemm is
 * not taken without AVX2: both scalar paths are the reference's loop). Dense: per image, items
 * of 3 units, each cut into W-lane vectors, in tiles of 3 vectors; a 1- or 2-vector tile costs
 * about a full one (its few accumulators leave the FMA latency exposed), and 8-channel blocks.
 * Igemm: 12-pixel tiles over a chunk of images (AVX2 computes them in 6-pixel halves, skipping an
 * empty one), 32-channel blocks (AVX2: 16-channel halves), its kernel at 0.95 of the dense one's
 * rate and the scalar store of each tile (about 5*W/K of the FMA time). Igemm is taken when it
 * is ahead by 10% (AVX2; AVX-512: 1.9x, below). Checked against the AVX2 conv benchmarks (bench_kernels conv/..., docs/conv.md):
 * 512 -> 512 at 7x7 stays dense (0.95x), 256 at 4x4 and 512 at 2x2 over 16 images go igemm
 * (1.3x, 3x). */
bool tl_conv_igemm_better(const tl_conv_desc *d) {
    tl_isa isa = tl_conv_active_isa();
    if (isa == TL_ISA_SCALAR || !tl_conv_igemm_ok(d) || d->batch < 1) return false;
    const int64_t W = isa == TL_ISA_AVX512 ? 16 : 8, MR = isa == TL_ISA_AVX512 ? 12 : 6;
    tl_conv_geom g;
    tl_conv_geom_init(d, &g);
    const int64_t OH = d->out_h, OW = d->out_w, ext = OH * g.wq;
    int64_t tiles = 0;
    for (int64_t u0 = 0; u0 < g.units; u0 += TL_CONV_UNITS) {
        int64_t vecs = 0;
        for (int64_t u = u0; u < u0 + TL_CONV_UNITS && u < g.units; u++) {
            int64_t lanes = g.rows ? OW - u % g.upr * TL_CONV_UNIT : ext - u * TL_CONV_UNIT;
            if (lanes > TL_CONV_UNIT) lanes = TL_CONV_UNIT;
            vecs += (lanes + W - 1) / W;
        }
        tiles += (vecs + 2) / 3;
    }
    double dense = (double)(OH * OW) / (double)(tiles * 3 * W) * (double)d->out_ch /
        (double)(tl_conv_blocks(d) * TL_CONV_OCB);
    int64_t P = tl_conv_igemm_chunk(d) * OH * OW, ntile = (P + TL_CONV_IG_PIX - 1) / TL_CONV_IG_PIX;
    int64_t last = P - (ntile - 1) * TL_CONV_IG_PIX;
    int64_t rows = (ntile - 1) * TL_CONV_IG_PIX + (last + MR - 1) / MR * MR, cw = 2 * W;
    double ig = (double)P / (double)rows * (double)d->out_ch / (double)((d->out_ch + cw - 1) / cw * cw);
    ig *= 0.95 / (1.0 + 5.0 * (double)W / (double)(d->in_ch * d->k_h * d->k_w));
    /* AVX-512: the dense kernel beats its lane count on small planes (a 1-vector tile there is
     * cheaper than the model says) and igemm's broadcasts cost more, so igemm needs 1.9x the
     * useful lanes: single 3x3 convs at 1 thread on the Emerald Rapids VM (tlrun, min of 3
     * alternations, TL_CONV_IGEMM=0/1) had igemm 0.23-0.88x the dense time at 512 @ 2x2 and
     * 256 @ 4x4 (model 1.9-10x the lanes) and 1.03-1.36x at 512 @ 7x7, 256 -> 512 / 2 at 14x14
     * and 128 @ 8x8 over 16 images (1.25-1.9x) */
    return ig > (W == 16 ? 1.9 : 1.1) * dense;
}
