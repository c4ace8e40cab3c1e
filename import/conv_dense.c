/* conv_dense.c - grouped conv weights between TorchLean's dense block-diagonal layout
 * [out_channels, in_channels, kernel...] and PyTorch's packed [out_channels, in_channels/groups,
 * kernel...] (tlrt's internal and params.bin layout).
 *
 * Why both: TorchLean's capture script expands a grouped weight with zeros off the group blocks
 * and its importer (parsePayload) only reads `outChannels :: inChannels :: kernel`, so its graphs
 * carry the dense form; PyTorch, the kernels and params.bin (a state_dict) use the packed one,
 * which is `groups` times smaller. Output channel o belongs to group g = o / (out/groups) and reads
 * input channels g*(in/groups) .. (g+1)*(in/groups)-1 only: every other entry must be exactly 0,
 * or the dense tensor is not a grouped conv at all and packing it would silently drop weights. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_torchlean.h"

int tl_conv_dense_shape(const tl_node *n, tl_shape *out) {
    const tl_attrs *a = &n->a;
    memset(out, 0, sizeof *out);
    if (n->op != TL_OP_CONV || a->spatial_rank < 0 || a->spatial_rank > TL_MAX_RANK - 2) return -1;
    out->rank = 2 + (int)a->spatial_rank;
    out->dim[0] = a->out_channels;
    out->dim[1] = a->in_channels;
    for (int i = 0; i < (int)a->spatial_rank; i++) out->dim[2 + i] = a->kernel[i];
    return 0;
}

/* Geometry shared by both directions; false when the node cannot hold a grouped weight. */
typedef struct geom {
    int64_t out, in, groups, cin_g, cout_g, k; /* k: elements of one kernel window */
} geom;

static bool conv_geom(const tl_node *n, geom *g) {
    const tl_attrs *a = &n->a;
    if (n->op != TL_OP_CONV || a->groups <= 0 || a->in_channels <= 0 || a->out_channels <= 0) return false;
    if (a->in_channels % a->groups || a->out_channels % a->groups) return false;
    g->out = a->out_channels;
    g->in = a->in_channels;
    g->groups = a->groups;
    g->cin_g = a->in_channels / a->groups;
    g->cout_g = a->out_channels / a->groups;
    g->k = 1;
    for (int i = 0; i < (int)a->spatial_rank; i++) g->k *= a->kernel[i];
    return true;
}

/* "[o, i, k0, k1]" of flat kernel offset kk (row-major over the kernel extents). */
static void index_str(const tl_node *n, int64_t o, int64_t i, int64_t kk, char *buf, size_t cap) {
    int64_t kidx[TL_MAX_RANK] = {0};
    int sr = (int)n->a.spatial_rank;
    for (int d = sr - 1; d >= 0; d--) {
        kidx[d] = kk % n->a.kernel[d];
        kk /= n->a.kernel[d];
    }
    int len = snprintf(buf, cap, "[%lld, %lld", (long long)o, (long long)i);
    for (int d = 0; d < sr && len > 0 && (size_t)len < cap; d++)
        len += snprintf(buf + len, cap - (size_t)len, ", %lld", (long long)kidx[d]);
    if (len > 0 && (size_t)len < cap) snprintf(buf + len, cap - (size_t)len, "]");
}

int tl_conv_weight_unpack_dense(const tl_node *n, tl_tensor **t, const char *where, tl_err *err) {
    geom g;
    tl_shape dense;
    if (!t || !*t || !conv_geom(n, &g) || g.groups <= 1 || tl_conv_dense_shape(n, &dense)) return 0;
    const tl_tensor *src = *t;
    if (!tl_shape_eq(&src->shape, &dense)) return 0; /* packed, or wrong: the shape check says which */
    for (int64_t o = 0; o < g.out; o++) {
        int64_t lo = (o / g.cout_g) * g.cin_g, hi = lo + g.cin_g; /* this output's input block */
        for (int64_t i = 0; i < g.in; i++) {
            if (i >= lo && i < hi) continue;
            const float *w = src->data + (o * g.in + i) * g.k;
            for (int64_t kk = 0; kk < g.k; kk++)
                if (w[kk] != 0.0f) {
                    char idx[160];
                    index_str(n, o, i, kk, idx, sizeof idx);
                    return tl_errf(err,
                                   "%s: dense grouped weight (groups %lld) has nonzero off-block entry %.9g at %s "
                                   "(output channel %lld reads input channels %lld..%lld only)",
                                   where, (long long)g.groups, (double)w[kk], idx, (long long)o, (long long)lo,
                                   (long long)(hi - 1));
                }
        }
    }
    tl_shape ps = dense;
    ps.dim[1] = g.cin_g;
    tl_tensor *p = tl_tensor_new(&ps);
    if (!p) return tl_erroom(err, "%s: out of memory packing the dense grouped weight", where);
    for (int64_t o = 0; o < g.out; o++) {
        int64_t lo = (o / g.cout_g) * g.cin_g;
        memcpy(p->data + o * g.cin_g * g.k, src->data + (o * g.in + lo) * g.k,
               (size_t)(g.cin_g * g.k) * sizeof(float));
    }
    tl_tensor_free(*t);
    *t = p;
    return 0;
}

tl_tensor *tl_conv_weight_dense(const tl_node *n, const tl_tensor *packed) {
    geom g;
    tl_shape dense;
    if (!packed || !conv_geom(n, &g) || tl_conv_dense_shape(n, &dense)) return NULL;
    int64_t need = g.out * g.cin_g * g.k;
    if (tl_shape_numel(&packed->shape) != need) return NULL;
    tl_tensor *d = tl_tensor_new(&dense); /* zeroed: the off-block entries */
    if (!d) return NULL;
    for (int64_t o = 0; o < g.out; o++) {
        int64_t lo = (o / g.cout_g) * g.cin_g;
        memcpy(d->data + (o * g.in + lo) * g.k, packed->data + o * g.cin_g * g.k,
               (size_t)(g.cin_g * g.k) * sizeof(float));
    }
    return d;
}
