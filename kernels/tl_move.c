/* tl_move.c - exact data movement (permute, broadcast, concat, im2col) and TorchLean's seeded
 * random tensors. Scalar code: these are memory bound, and exact by construction. */
#include <string.h>

#include "tl_kernels_internal.h"

/* Walk every output index of `dims` (row-major) with an input offset advanced by `istride`.
 * The innermost axis is a tight loop. */
static void tl_strided_copy(const float *x, float *y, int rank, const int64_t *dims,
                            const int64_t *istride) {
    int64_t total = 1;
    for (int a = 0; a < rank; a++) total *= dims[a];
    if (total == 0) return;
    if (rank == 0) { y[0] = x[0]; return; }
    int64_t last = dims[rank - 1], ls = istride[rank - 1];
    int64_t rows = total / last;
#pragma omp parallel for if (total > TL_PAR_MIN && rows > 1) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        /* decode the row index into the leading axes */
        int64_t rem = r, off = 0;
        for (int a = rank - 2; a >= 0; a--) {
            int64_t i = rem % dims[a];
            rem /= dims[a];
            off += i * istride[a];
        }
        float *yr = y + r * last;
        if (ls == 1) memcpy(yr, x + off, (size_t)last * sizeof(float));
        else if (ls == 0) for (int64_t j = 0; j < last; j++) yr[j] = x[off];
        else for (int64_t j = 0; j < last; j++) yr[j] = x[off + j * ls];
    }
}

void tl_k_permute(const float *x, float *y, int rank, const int64_t *in_dims, const int64_t *perm) {
    int64_t in_stride[TL_MAX_RANK_K], out_dims[TL_MAX_RANK_K], istride[TL_MAX_RANK_K];
    int64_t s = 1;
    for (int a = rank - 1; a >= 0; a--) { in_stride[a] = s; s *= in_dims[a]; }
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

void tl_k_concat(const float *const *parts, const int64_t *part_len, int n_parts, float *y,
                 int64_t outer, int64_t inner) {
    int64_t total_len = 0;
    for (int p = 0; p < n_parts; p++) total_len += part_len[p];
    int64_t row = total_len * inner;
#pragma omp parallel for if (outer > 1 && outer * row > TL_PAR_MIN) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
        float *yo = y + o * row;
        for (int p = 0; p < n_parts; p++) {
            int64_t n = part_len[p] * inner;
            if (n) memcpy(yo, parts[p] + o * n, (size_t)n * sizeof(float));
            yo += n;
        }
    }
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
#pragma omp parallel for collapse(2) if (C * K * out_sz > TL_PAR_MIN) schedule(static)
    for (int64_t c = 0; c < C; c++)
        for (int64_t kk = 0; kk < K; kk++) {
            int64_t k0 = kk / (k[1] * k[2]), k1 = kk / k[2] % k[1], k2 = kk % k[2];
            const float *xc = x + c * in_sz;
            float *row = col + (c * K + kk) * out_sz;
            for (int64_t o0 = 0; o0 < out[0]; o0++) {
                int64_t i0 = o0 * st[0] + k0 * dl[0] - pd[0];
                bool ok0 = i0 >= 0 && i0 < in[0];
                for (int64_t o1 = 0; o1 < out[1]; o1++) {
                    int64_t i1 = o1 * st[1] + k1 * dl[1] - pd[1];
                    bool ok = ok0 && i1 >= 0 && i1 < in[1];
                    float *r = row + (o0 * out[1] + o1) * out[2];
                    if (!ok) { memset(r, 0, (size_t)out[2] * sizeof(float)); continue; }
                    const float *xr = xc + (i0 * in[1] + i1) * in[2];
                    for (int64_t o2 = 0; o2 < out[2]; o2++) {
                        int64_t i2 = o2 * st[2] + k2 * dl[2] - pd[2];
                        r[o2] = (i2 >= 0 && i2 < in[2]) ? xr[i2] : 0.0f;
                    }
                }
            }
        }
}

/* ---- TorchLean Spec.Random (NN/Spec/Core/Random.lean) ---- */

uint64_t tl_k_splitmix64(uint64_t x) {
    uint64_t z = x + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t tl_k_rand_key(uint64_t seed, uint64_t node_index) {
    return tl_k_splitmix64(seed + node_index);
}

/* sampleNat key i 2^32 = splitmix64(key + i) mod 2^32; sampleUnit = float(u) / 2^32 (float(u)
 * rounds to nearest, so the largest draws give exactly 1.0f, as TorchLean notes). */
static inline float tl_unit(uint64_t key, int64_t i) {
    uint32_t u = (uint32_t)tl_k_splitmix64(key + (uint64_t)i);
    return (float)u / 4294967296.0f;
}

void tl_k_rand_uniform(uint64_t seed, float *y, int64_t n) {
#pragma omp parallel for if (n > TL_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = tl_unit(seed, i);
}

/* keepBit: keep_prob > 0 ? (1 > keep_prob ? (keep_prob > unit ? 1 : 0) : 1) : 0 (NaN gives 0). */
void tl_k_bernoulli_mask(uint64_t seed, float keep_prob, float *y, int64_t n) {
#pragma omp parallel for if (n > TL_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float v;
        if (keep_prob > 0.0f) v = (1.0f > keep_prob) ? (keep_prob > tl_unit(seed, i) ? 1.0f : 0.0f) : 1.0f;
        else v = 0.0f;
        y[i] = v;
    }
}
