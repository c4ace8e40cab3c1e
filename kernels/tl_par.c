/* tl_par.c - table kernels split over the worker pool (see tl_par.h). One job struct carries
 * every wrapper's arguments; each wrapper has a part function that offsets the pointers to its
 * range and calls the serial kernel. */
#include "tl_par.h"

#include "tl_kernels_internal.h"
#include "tl_pool.h"

/* elementwise parts are whole 4096-float blocks (a multiple of every vector width) */
#define TL_PAR_BLK ((int64_t)4096)

typedef struct par_job {
    const tl_kernel_table *K;
    tl_unary_fn uf;
    tl_binary_fn bf;
    const float *x, *b, *p0, *p1, *res;
    float *y;
    int64_t n, len, inner, n2, Kd;
    float f0, f1;
    bool flag;
    const tl_window *w;
} par_job;

/* a range of elements [lo, hi) of n, from a range of blocks */
static void blk_range(const par_job *j, int64_t b0, int64_t b1, int64_t *lo, int64_t *len) {
    int64_t e = b1 * TL_PAR_BLK < j->n ? b1 * TL_PAR_BLK : j->n;
    *lo = b0 * TL_PAR_BLK;
    *len = e - *lo;
}

static int64_t nblk(int64_t n) { return (n + TL_PAR_BLK - 1) / TL_PAR_BLK; }

static bool split(int64_t work, int64_t parts) { return work > TL_PAR_MIN && tl_pool_threads(parts) > 1; }

/* ---- elementwise ---- */
static void unary_part(void *c, int64_t b0, int64_t b1) {
    const par_job *j = c;
    int64_t lo, len;
    blk_range(j, b0, b1, &lo, &len);
    j->uf(j->x + lo, j->y + lo, len);
}

void tl_par_unary(tl_unary_fn f, const float *x, float *y, int64_t n) {
    if (!split(n, nblk(n))) {
        f(x, y, n);
        return;
    }
    par_job j = {.uf = f, .x = x, .y = y, .n = n};
    tl_pool_for(nblk(n), unary_part, &j);
}

static void binary_part(void *c, int64_t b0, int64_t b1) {
    const par_job *j = c;
    int64_t lo, len;
    blk_range(j, b0, b1, &lo, &len);
    j->bf(j->x + lo, j->b + lo, j->y + lo, len);
}

void tl_par_binary(tl_binary_fn f, const float *a, const float *b, float *y, int64_t n) {
    if (!split(n, nblk(n))) {
        f(a, b, y, n);
        return;
    }
    par_job j = {.bf = f, .x = a, .b = b, .y = y, .n = n};
    tl_pool_for(nblk(n), binary_part, &j);
}

static void add_clamp_part(void *c, int64_t b0, int64_t b1) {
    const par_job *j = c;
    int64_t lo, len;
    blk_range(j, b0, b1, &lo, &len);
    j->K->add_clamp(j->x + lo, j->b + lo, j->y + lo, len, j->f0, j->f1);
}

void tl_par_add_clamp(const tl_kernel_table *K, const float *a, const float *b, float *y, int64_t n, float lo,
                      float hi) {
    if (!split(n, nblk(n))) {
        K->add_clamp(a, b, y, n, lo, hi);
        return;
    }
    par_job j = {.K = K, .x = a, .b = b, .y = y, .n = n, .f0 = lo, .f1 = hi};
    tl_pool_for(nblk(n), add_clamp_part, &j);
}

static void leaky_part(void *c, int64_t b0, int64_t b1) {
    const par_job *j = c;
    int64_t lo, len;
    blk_range(j, b0, b1, &lo, &len);
    j->K->leaky(j->y + lo, len, j->f0);
}

void tl_par_leaky(const tl_kernel_table *K, float *y, int64_t n, float s) {
    if (!split(n, nblk(n))) {
        K->leaky(y, n, s);
        return;
    }
    par_job j = {.K = K, .y = y, .n = n, .f0 = s};
    tl_pool_for(nblk(n), leaky_part, &j);
}

/* ---- row-wise: [rows][n] ---- */
static void softmax_part(void *c, int64_t o0, int64_t o1) {
    const par_job *j = c;
    int64_t per = j->len * j->inner;
    j->K->softmax(j->x + o0 * per, j->y + o0 * per, o1 - o0, j->len, j->inner);
}

void tl_par_softmax(const tl_kernel_table *K, const float *x, float *y, int64_t outer, int64_t len, int64_t inner) {
    if (!split(outer * len * inner, outer)) {
        K->softmax(x, y, outer, len, inner);
        return;
    }
    par_job j = {.K = K, .x = x, .y = y, .len = len, .inner = inner};
    tl_pool_for(outer, softmax_part, &j);
}

static void layernorm_part(void *c, int64_t r0, int64_t r1) {
    const par_job *j = c;
    j->K->layernorm(j->x + r0 * j->len, j->y + r0 * j->len, r1 - r0, j->len, j->p0, j->p1, j->f0);
}

void tl_par_layernorm(const tl_kernel_table *K, const float *x, float *y, int64_t rows, int64_t cols,
                      const float *gamma, const float *beta, float eps) {
    if (!split(rows * cols, rows)) {
        K->layernorm(x, y, rows, cols, gamma, beta, eps);
        return;
    }
    par_job j = {.K = K, .x = x, .y = y, .len = cols, .p0 = gamma, .p1 = beta, .f0 = eps};
    tl_pool_for(rows, layernorm_part, &j);
}

/* (outer, channel) pairs: each part walks its pairs in runs of consecutive channels of one outer
 * index (one kernel call per run, outer = 1) */
static void affine_part(void *c, int64_t q0, int64_t q1) {
    const par_job *j = c;
    int64_t C = j->len, inner = j->inner;
    for (int64_t q = q0; q < q1;) {
        int64_t ch = q % C, run = C - ch < q1 - q ? C - ch : q1 - q;
        j->K->channel_affine(j->x + q * inner, j->y + q * inner, 1, run, inner, j->p0 + ch, j->p1 + ch);
        q += run;
    }
}

void tl_par_channel_affine(const tl_kernel_table *K, const float *x, float *y, int64_t outer, int64_t C,
                           int64_t inner, const float *scale, const float *shift) {
    if (!split(outer * C * inner, outer * C)) {
        K->channel_affine(x, y, outer, C, inner, scale, shift);
        return;
    }
    par_job j = {.K = K, .x = x, .y = y, .len = C, .inner = inner, .p0 = scale, .p1 = shift};
    tl_pool_for(outer * C, affine_part, &j);
}

static void bias_rows_part(void *c, int64_t r0, int64_t r1) {
    const par_job *j = c;
    if (j->flag) j->K->bias_clamp_rows(j->y + r0 * j->n2, j->b, r1 - r0, j->n2, j->f0, j->f1);
    else j->K->add_bias_rows(j->y + r0 * j->n2, j->b, r1 - r0, j->n2);
}

void tl_par_add_bias_rows(const tl_kernel_table *K, float *y, const float *b, int64_t rows, int64_t n) {
    if (!split(rows * n, rows)) {
        K->add_bias_rows(y, b, rows, n);
        return;
    }
    par_job j = {.K = K, .y = y, .b = b, .n2 = n};
    tl_pool_for(rows, bias_rows_part, &j);
}

void tl_par_bias_clamp_rows(const tl_kernel_table *K, float *y, const float *b, int64_t rows, int64_t n, float lo,
                            float hi) {
    if (!split(rows * n, rows)) {
        K->bias_clamp_rows(y, b, rows, n, lo, hi);
        return;
    }
    par_job j = {.K = K, .y = y, .b = b, .n2 = n, .f0 = lo, .f1 = hi, .flag = true};
    tl_pool_for(rows, bias_rows_part, &j);
}

/* ---- planes ---- */
static int64_t window_numel(const int64_t *v, int rank) {
    int64_t p = 1;
    for (int a = 0; a < rank; a++) p *= v[a];
    return p;
}

static void pool_part(void *c, int64_t p0, int64_t p1) {
    const par_job *j = c;
    int64_t in_sz = window_numel(j->w->in, j->w->rank), out_sz = window_numel(j->w->out, j->w->rank);
    (j->flag ? j->K->max_pool : j->K->avg_pool)(j->x + p0 * in_sz, j->y + p0 * out_sz, p1 - p0, j->w);
}

void tl_par_pool(const tl_kernel_table *K, bool is_max, const float *x, float *y, int64_t planes,
                 const tl_window *w) {
    int64_t out_sz = window_numel(w->out, w->rank);
    /* a window costs several loads per output: a quarter of the elementwise threshold */
    if (!split(4 * planes * out_sz, planes)) {
        (is_max ? K->max_pool : K->avg_pool)(x, y, planes, w);
        return;
    }
    par_job j = {.K = K, .x = x, .y = y, .w = w, .flag = is_max};
    tl_pool_for(planes, pool_part, &j);
}

/* ---- packed GEMM: rows ---- */
static void gemm_packed_part(void *c, int64_t g0, int64_t g1) {
    const par_job *j = c;
    int64_t N = j->n2, r0 = g0 * 24, r1 = g1 * 24 < j->n ? g1 * 24 : j->n;
    j->K->gemm_packed(j->x + r0 * j->Kd, r1 - r0, N, j->Kd, j->p0, j->b, j->res ? j->res + r0 * N : NULL, j->f0,
                      j->f1, j->y + r0 * N);
}

void tl_par_gemm_packed(const tl_kernel_table *K, const float *x, int64_t M, int64_t N, int64_t Kd,
                        const float *packed, const float *bias, const float *res, float lo, float hi, float *y) {
    /* from the size tl_sgemm splits at (a GEMM this small runs faster on one thread); parts of
     * whole 24-row groups so that each part's row tiles are the kernel's full ones */
    int64_t groups = (M + 23) / 24;
    if (M * N * Kd < TL_SGEMM_PAR_MNK || tl_pool_threads(groups) < 2) {
        K->gemm_packed(x, M, N, Kd, packed, bias, res, lo, hi, y);
        return;
    }
    par_job j =
        {.K = K, .x = x, .n2 = N, .Kd = Kd, .p0 = packed, .b = bias, .res = res, .f0 = lo, .f1 = hi, .y = y, .n = M};
    tl_pool_for(groups, gemm_packed_part, &j);
}
