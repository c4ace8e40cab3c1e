/* tl_move.c - exact data movement (permute, broadcast, concat, im2col) and TorchLean's seeded
 * random tensors. Scalar code: these are memory bound, and exact by construction. */
#include <string.h>

#include "tl_kernels_internal.h"
#ifdef TL_KERNELS_X86
#include <immintrin.h>
#endif

/* Walk every output index of `dims` (row-major) with an input offset advanced by `istride`.
 * The innermost axis is a tight loop. */
static void tl_strided_copy(const float *x, float *y, int rank, const int64_t *dims, const int64_t *istride) {
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
        /* decode the row index into the leading axes */
        int64_t rem = r, off = 0;
        for (int a = rank - 2; a >= 0; a--) {
            int64_t i = rem % dims[a];
            rem /= dims[a];
            off += i * istride[a];
        }
        float *yr = y + r * last;
        if (ls == 1) memcpy(yr, x + off, (size_t)last * sizeof(float));
        else if (ls == 0)
            for (int64_t j = 0; j < last; j++) yr[j] = x[off];
        else
            for (int64_t j = 0; j < last; j++) yr[j] = x[off + j * ls];
    });
}

void tl_k_permute(const float *x, float *y, int rank, const int64_t *in_dims, const int64_t *perm) {
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
    tl_strided_copy(x, y, rank, out_dims, istride);
}

void tl_k_broadcast(const float *x, float *y, int rank, const int64_t *from, const int64_t *to) {
    int64_t istride[TL_MAX_RANK_K];
    int64_t s = 1;
    for (int a = rank - 1; a >= 0; a--) {
        istride[a] = (from[a] == 1 && to[a] != 1) ? 0 : s;
        s *= from[a];
    }
    tl_strided_copy(x, y, rank, to, istride);
}

void tl_k_concat(const float *const *parts, const int64_t *part_len, int n_parts, float *y, int64_t outer,
                 int64_t inner) {
    int64_t total_len = 0;
    for (int p = 0; p < n_parts; p++) total_len += part_len[p];
    int64_t row = total_len * inner;
    TL_PFOR(outer > 1 && outer * row > TL_PAR_MIN, o, outer, {
        float *yo = y + o * row;
        for (int p = 0; p < n_parts; p++) {
            int64_t n = part_len[p] * inner;
            if (n) memcpy(yo, parts[p] + o * n, (size_t)n * sizeof(float));
            yo += n;
        }
    });
}

/* Short fills and copies inline (SSE, part of the x86-64 baseline); long ones through libc.
 * im2col rows are often 8-32 floats, where a libc call costs more than the copy. */
static inline void tl_fill0(float *r, int64_t n) {
    if (n >= 64) {
        memset(r, 0, (size_t)n * sizeof(float));
        return;
    }
    int64_t j = 0;
#ifdef TL_KERNELS_X86
    for (; j + 4 <= n; j += 4) _mm_storeu_ps(r + j, _mm_setzero_ps());
#endif
    for (; j < n; j++) r[j] = 0.0f;
}
static inline void tl_copy(float *d, const float *s, int64_t n) {
    if (n >= 64) {
        memcpy(d, s, (size_t)n * sizeof(float));
        return;
    }
#ifdef TL_KERNELS_X86
    if (n >= 4) { /* 4-float chunks, the last one overlapping */
        for (int64_t j = 0; j + 4 < n; j += 4) _mm_storeu_ps(d + j, _mm_loadu_ps(s + j));
        _mm_storeu_ps(d + n - 4, _mm_loadu_ps(s + n - 4));
        return;
    }
#endif
    for (int64_t j = 0; j < n; j++) d[j] = s[j];
}

/* Outputs o in [lo, hi) of one axis read an input cell: 0 <= o*s + off < in (off = k*d - pad). */
static inline void tl_valid_range(int64_t off, int64_t s, int64_t in, int64_t out, int64_t *lo, int64_t *hi) {
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t h = in - off <= 0 ? 0 : (in - off - 1) / s + 1;
    if (h > out) h = out;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

void tl_k_im2col(const float *x, float *col, int64_t C, const tl_window *w) {
    int64_t in[3], out[3], k[3], st[3], pd[3], dl[3];
    int off = 3 - w->rank;
    for (int a = 0; a < 3; a++) {
        int b = a - off;
        bool have = b >= 0;
        in[a] = have ? w->in[b] : 1;
        out[a] = have ? w->out[b] : 1;
        k[a] = have ? w->kernel[b] : 1;
        st[a] = have ? w->stride[b] : 1;
        pd[a] = have ? w->pad[b] : 0;
        dl[a] = have ? (w->dilation[b] > 0 ? w->dilation[b] : 1) : 1;
    }
    int64_t in_sz = in[0] * in[1] * in[2], out_sz = out[0] * out[1] * out[2];
    int64_t K = k[0] * k[1] * k[2];
    if (out_sz == 0) return;
    /* One row of col per (channel, tap), row c*K + kk. The per-tap work (valid output range
     * of every axis, copy strategy) is done once per tap, outside the channel loop. Padded
     * borders are zero-filled, the interior copied (contiguous for stride 1, a strided loop
     * otherwise). */
    int64_t n1 = out[1], n2 = out[2], plane = n1 * n2;
    /* stride 1 along the rows and source row pitch == output row pitch (e.g. "same" padding):
     * the valid rows of a tap are one contiguous span in both, shifted by lo2 */
    bool span = st[2] == 1 && st[1] * in[2] == n2;
    TL_PFOR(C * K * out_sz > TL_PAR_MIN, kk, K, {
        int64_t k0 = kk / (k[1] * k[2]), k1 = kk / k[2] % k[1], k2 = kk % k[2];
        int64_t off0 = k0 * dl[0] - pd[0], off1 = k1 * dl[1] - pd[1], off2 = k2 * dl[2] - pd[2];
        int64_t lo0, hi0, lo1, hi1, lo2, hi2;
        tl_valid_range(off0, st[0], in[0], out[0], &lo0, &hi0);
        tl_valid_range(off1, st[1], in[1], out[1], &lo1, &hi1);
        tl_valid_range(off2, st[2], in[2], out[2], &lo2, &hi2);
        int64_t len2 = hi2 - lo2, rows = hi1 - lo1;
        bool empty = rows == 0 || len2 == 0, borders = lo2 > 0 || hi2 < n2;
        /* source offset of the first valid cell of output row (o0, lo1), without o0's part */
        int64_t src0 = (lo1 * st[1] + off1) * in[2] + lo2 * st[2] + off2;
        int64_t s0 = st[0] * in[1] * in[2], s1 = st[1] * in[2], s2 = st[2];
        for (int64_t c = 0; c < C; c++) {
            int64_t xc = c * in_sz + off0 * in[1] * in[2] + src0; /* offset; >= 0 once o0 is valid */
            float *row = col + (c * K + kk) * out_sz;
            for (int64_t o0 = 0; o0 < out[0]; o0++) {
                float *blk = row + o0 * plane;
                if (empty || o0 < lo0 || o0 >= hi0) {
                    tl_fill0(blk, plane);
                    continue;
                }
                tl_fill0(blk, lo1 * n2);
                tl_fill0(blk + hi1 * n2, (n1 - hi1) * n2);
                const float *xs = x + (xc + o0 * s0);
                if (span) {
                    /* one copy of the whole span; it also writes the border columns of all
                     * but the first row (with neighbouring input cells): zeroed after it */
                    tl_copy(blk + lo1 * n2 + lo2, xs, (rows - 1) * n2 + len2);
                    if (borders)
                        for (int64_t o1 = lo1; o1 < hi1; o1++) {
                            float *r = blk + o1 * n2;
                            for (int64_t j = 0; j < lo2; j++) r[j] = 0.0f;
                            for (int64_t j = hi2; j < n2; j++) r[j] = 0.0f;
                        }
                    continue;
                }
                for (int64_t o1 = lo1; o1 < hi1; o1++, xs += s1) {
                    float *r = blk + o1 * n2;
                    for (int64_t j = 0; j < lo2; j++) r[j] = 0.0f;
                    if (s2 == 1) tl_copy(r + lo2, xs, len2);
                    else
                        for (int64_t j = 0; j < len2; j++) r[lo2 + j] = xs[j * s2];
                    for (int64_t j = hi2; j < n2; j++) r[j] = 0.0f;
                }
            }
        }
    });
}

/* ---- TorchLean Spec.Random (NN/Spec/Core/Random.lean) ---- */

uint64_t tl_k_splitmix64(uint64_t x) {
    uint64_t z = x + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t tl_k_rand_key(uint64_t seed, uint64_t node_index) { return tl_k_splitmix64(seed + node_index); }

/* sampleNat key i 2^32 = splitmix64(key + i) mod 2^32; sampleUnit = float(u) / 2^32 (float(u)
 * rounds to nearest, so the largest draws give exactly 1.0f, as TorchLean notes). */
static inline float tl_unit(uint64_t key, int64_t i) {
    uint32_t u = (uint32_t)tl_k_splitmix64(key + (uint64_t)i);
    return (float)u / 4294967296.0f;
}

void tl_k_rand_uniform(uint64_t seed, float *y, int64_t n) {
    TL_PFOR(n > TL_PAR_MIN, i, n, y[i] = tl_unit(seed, i););
}

/* keepBit: keep_prob > 0 ? (1 > keep_prob ? (keep_prob > unit ? 1 : 0) : 1) : 0 (NaN gives 0). */
void tl_k_bernoulli_mask(uint64_t seed, float keep_prob, float *y, int64_t n) {
    TL_PFOR(n > TL_PAR_MIN, i, n, {
        float v;
        if (keep_prob > 0.0f) v = (1.0f > keep_prob) ? (keep_prob > tl_unit(seed, i) ? 1.0f : 0.0f) : 1.0f;
        else v = 0.0f;
        y[i] = v;
    });
}
