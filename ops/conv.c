/* conv.c - convolution over the spatial axes after channel_axis (TorchLean conv: NCHW-style,
 * `spatial_rank` 1..3, stride, asymmetric padding (padding / padding_after), dilation, groups).
 * Weights are PyTorch's packed layout [out_channels, in_channels / groups, kernel...]
 * (params.bin); bias optional.
 *
 * Execution: per image and group, im2col (or the input itself for a 1x1 stride-1 unpadded conv)
 * then one tl_sgemm; depthwise convs (one input channel per group) run a direct loop. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tl_emit.h"
#include "tl_par.h"
#include "tl_pool.h"
#include "tl_runtime_internal.h"

/* Depthwise convolution (one input channel per group): direct loop, no im2col. For each kernel
 * tap, the valid output range of the innermost axis is computed once, so the inner loop is a
 * plain multiply-add over contiguous outputs (strided inputs). Accumulation order: bias, then the
 * taps in row-major kernel order. */
static void dw_plane(const float *x, const float *w, float bias, float *y, const int64_t *in, const int64_t *ou,
                     const int64_t *k, const int64_t *s, const int64_t *p, const int64_t *d) {
    int64_t out_sz = ou[0] * ou[1] * ou[2];
    for (int64_t i = 0; i < out_sz; i++) y[i] = bias;
    for (int64_t k0 = 0; k0 < k[0]; k0++)
        for (int64_t k1 = 0; k1 < k[1]; k1++)
            for (int64_t k2 = 0; k2 < k[2]; k2++) {
                float wv = w[(k0 * k[1] + k1) * k[2] + k2];
                int64_t off2 = k2 * d[2] - p[2];
                /* o2 valid iff 0 <= o2*s2 + off2 < in2 */
                int64_t lo = off2 >= 0 ? 0 : (-off2 + s[2] - 1) / s[2];
                int64_t hi = in[2] - off2 <= 0 ? 0 : (in[2] - off2 - 1) / s[2] + 1;
                if (hi > ou[2]) hi = ou[2];
                if (lo >= hi) continue;
                for (int64_t o0 = 0; o0 < ou[0]; o0++) {
                    int64_t i0 = o0 * s[0] + k0 * d[0] - p[0];
                    if (i0 < 0 || i0 >= in[0]) continue;
                    for (int64_t o1 = 0; o1 < ou[1]; o1++) {
                        int64_t i1 = o1 * s[1] + k1 * d[1] - p[1];
                        if (i1 < 0 || i1 >= in[1]) continue;
                        const float *xr = x + (i0 * in[1] + i1) * in[2];
                        float *yr = y + (o0 * ou[1] + o1) * ou[2];
                        if (s[2] == 1) {
                            const float *xs = xr + (lo + off2);
                            float *ys = yr + lo;
                            for (int64_t o2 = 0; o2 < hi - lo; o2++) ys[o2] += wv * xs[o2];
                        } else {
                            for (int64_t o2 = lo; o2 < hi; o2++) yr[o2] += wv * xr[o2 * s[2] + off2];
                        }
                    }
                }
            }
}

typedef struct dw_job {
    const tl_prep_conv *cv;
    const float *x;
    float *y;
    int64_t iv[3], ov[3], kv[3], sv[3], pv[3], dv[3];
    int64_t C, OC;
} dw_job;

static void dw_planes(void *c, int64_t p0, int64_t p1) {
    const dw_job *j = c;
    const tl_prep_conv *cv = j->cv;
    for (int64_t pl = p0; pl < p1; pl++) {
        int64_t o = pl / j->OC, oc = pl % j->OC, g = oc / cv->cout_g;
        const float *x = j->x + (o * j->C + g) * cv->in_plane;
        dw_plane(x, cv->w + oc * cv->kprod, cv->b ? cv->b[oc] : 0.0f, j->y + pl * cv->out_plane, j->iv, j->ov, j->kv,
                 j->sv, j->pv, j->dv);
    }
}

static void ex_conv_depthwise(const tl_step *st, const float *const *in, float *out) {
    const tl_prep_conv *cv = &st->p.cv;
    int64_t C = cv->groups, OC = cv->cout_g * cv->groups;
    dw_job j = {.cv = cv, .x = in[0], .y = out, .C = C, .OC = OC};
    /* window padded to 3 axes (leading axes of extent 1) */
    int off = 3 - cv->win.rank;
    for (int a = 0; a < 3; a++) {
        int b = a - off;
        j.iv[a] = b >= 0 ? cv->win.in[b] : 1;
        j.ov[a] = b >= 0 ? cv->win.out[b] : 1;
        j.kv[a] = b >= 0 ? cv->win.kernel[b] : 1;
        j.sv[a] = b >= 0 ? cv->win.stride[b] : 1;
        j.pv[a] = b >= 0 ? cv->win.pad[b] : 0;
        j.dv[a] = b >= 0 ? cv->win.dilation[b] : 1;
    }
    int64_t planes = cv->outer * OC;
    if (planes * cv->out_plane * cv->kprod > 65536) tl_pool_for(planes, dw_planes, &j);
    else dw_planes(&j, 0, planes);
}

/* One image: per group, im2col into `col_buf` (or the input itself) and one GEMM. */
static void conv_image(const tl_prep_conv *cv, const float *x, float *y, float *col_buf) {
    int64_t kk = cv->cin_g * cv->kprod;
    for (int64_t g = 0; g < cv->groups; g++) {
        const float *xg = x + g * cv->cin_g * cv->in_plane;
        const float *col = xg;
        if (cv->im2col) {
            tl_k_im2col(xg, col_buf, cv->cin_g, &cv->win);
            col = col_buf;
        }
        float *yg = y + g * cv->cout_g * cv->out_plane;
        float beta = 0.0f;
        if (cv->b) {
            for (int64_t c = 0; c < cv->cout_g; c++) {
                float bv = cv->b[g * cv->cout_g + c];
                float *row = yg + c * cv->out_plane;
                for (int64_t i = 0; i < cv->out_plane; i++) row[i] = bv;
            }
            beta = 1.0f;
        }
        if (cv->out_plane == 0 || cv->cout_g == 0) continue;
        tl_sgemm(false, false, cv->cout_g, cv->out_plane, kk, 1.0f, cv->w + g * cv->cout_g * kk, kk, col,
                 cv->out_plane, beta, yg, cv->out_plane);
    }
}

/* Several images and threads: a block of images per pool thread, each thread with its own im2col
 * slice of the scratch (sized at plan time for cv->threads) and its GEMMs on that thread. Each
 * image is computed by the same calls in the same order whichever thread runs it, so the result
 * is bitwise the same at any thread count. One image (or small work): tl_sgemm splits the GEMM. */
typedef struct img_job {
    const tl_prep_conv *cv;
    const float *x;
    float *y, *scratch;
    int64_t col_sz, C, OC, nt;
} img_job;

/* part t: images [outer*t/nt, outer*(t+1)/nt) with im2col slice t */
static void img_part(void *c, int64_t t0, int64_t t1) {
    const img_job *j = c;
    const tl_prep_conv *cv = j->cv;
    for (int64_t t = t0; t < t1; t++)
        for (int64_t o = cv->outer * t / j->nt; o < cv->outer * (t + 1) / j->nt; o++)
            conv_image(cv, j->x + o * j->C * cv->in_plane, j->y + o * j->OC * cv->out_plane,
                       j->scratch + t * j->col_sz);
}

static void ex_conv_paths(const tl_step *st, const float *const *in, float *out) {
    const tl_prep_conv *cv = &st->p.cv;
    if (cv->direct == TL_CONV_DIRECT_DW) {
        tl_conv_dw(&cv->desc, in[0], cv->w, out, st->scratch, (size_t)st->scratch_floats);
        return;
    }
    if (cv->direct == TL_CONV_DIRECT_DENSE) {
        tl_conv_direct(&cv->desc, cv->packed, in[0], out, st->scratch, (size_t)st->scratch_floats);
        return;
    }
    if (cv->direct == TL_CONV_DIRECT_IGEMM) {
        tl_conv_igemm(&cv->desc, cv->packed, in[0], out, cv->resid ? st->res : NULL, st->scratch,
                      (size_t)st->scratch_floats);
        return;
    }
    if (cv->depthwise) {
        ex_conv_depthwise(st, in, out);
        return;
    }
    int64_t C = cv->cin_g * cv->groups, OC = cv->cout_g * cv->groups;
    int64_t col_sz = cv->im2col ? cv->cin_g * cv->kprod * cv->out_plane : 0;
    int64_t nt = tl_pool_threads(cv->outer);
    if (nt > cv->threads) nt = cv->threads;
    if (nt > 1) {
        img_job j = {cv, in[0], out, st->scratch, col_sz, C, OC, nt};
        tl_pool_for(nt, img_part, &j);
        return;
    }
    for (int64_t o = 0; o < cv->outer; o++)
        conv_image(cv, in[0] + o * C * cv->in_plane, out + o * OC * cv->out_plane, st->scratch);
}

/* A fused clamp: the direct kernels apply it to each finished accumulator; the im2col and 3-D
 * depthwise paths in one pass over the output after (the same two comparisons on the same
 * value: bitwise either way, and bitwise the unfused relu / max_elem / min_elem). A fused
 * residual add: one pass y = clamp(y + res) after the conv (bitwise the unfused add: IEEE
 * addition is commutative). */
static void ex_conv(const tl_step *st, const float *const *in, float *out) {
    const tl_prep_conv *cv = &st->p.cv;
    ex_conv_paths(st, in, out);
    /* igemm's store adds the residual and clamps */
    bool stored = cv->direct == TL_CONV_DIRECT_IGEMM;
    if (cv->resid && !stored) tl_par_add_clamp(st->K, out, st->res, out, st->numel, cv->lo, cv->hi);
    else if (cv->clamp && cv->direct == TL_CONV_IM2COL)
        tl_par_bias_clamp_rows(st->K, out, NULL, cv->outer * cv->groups * cv->cout_g, cv->out_plane, cv->lo, cv->hi);
    if (cv->leaky) tl_par_leaky(st->K, out, st->numel, cv->slope);
}

static int conv_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    const tl_node *n = c->n;
    const tl_shape *x = c->ps[0];
    const tl_attrs *a = &n->a;
    int64_t id = n->id;
    if (a->in_channels <= 0) return tl_node_err(err, id, "in_channels", "must be > 0");
    if (a->out_channels <= 0) return tl_node_err(err, id, "out_channels", "must be > 0");
    if (a->groups <= 0) return tl_node_err(err, id, "groups", "must be > 0");
    if (a->in_channels % a->groups)
        return tl_node_err(err, id, "groups", "in_channels=%lld is not divisible by groups=%lld",
                           (long long)a->in_channels, (long long)a->groups);
    if (a->out_channels % a->groups)
        return tl_node_err(err, id, "groups", "out_channels=%lld is not divisible by groups=%lld",
                           (long long)a->out_channels, (long long)a->groups);
    if (a->spatial_rank <= 0) return tl_node_err(err, id, "spatial_rank", "must be > 0");
    if (tl_check_axis(id, "channel_axis", a->channel_axis, x, err)) return -1;
    int ca = (int)a->channel_axis;
    if (x->dim[ca] != a->in_channels)
        return tl_node_err(err, id, "in_channels", "input-channel mismatch: op=%lld vs input=%lld (input %s)",
                           (long long)a->in_channels, (long long)x->dim[ca], TL_SHAPE_STR(x));
    int nsp = x->rank - ca - 1;
    if (nsp != a->spatial_rank)
        return tl_node_err(err, id, "spatial_rank",
                           "kernel rank %lld does not match the %d spatial axes after channel axis %d of %s",
                           (long long)a->spatial_rank, nsp, ca, TL_SHAPE_STR(x));
    tl_shape o = *x;
    o.dim[ca] = a->out_channels;
    for (int i = 0; i < nsp; i++) {
        int ax = ca + 1 + i;
        int64_t in = x->dim[ax], k = a->kernel[i], s = a->stride[i], d = a->dilation[i];
        int64_t pb = a->padding[i], pa = a->padding_after[i];
        if (k <= 0) return tl_node_err(err, id, "kernel", "axis %d kernel must be > 0", ax);
        if (s <= 0) return tl_node_err(err, id, "stride", "axis %d stride must be > 0", ax);
        if (d <= 0) return tl_node_err(err, id, "dilation", "axis %d dilation must be > 0", ax);
        if (a->input_spatial[i] != in)
            return tl_node_err(err, id, "input_spatial", "expected %s (the spatial axes of input %s), got %s",
                               TL_NATS_STR(&x->dim[ca + 1], nsp), TL_SHAPE_STR(x),
                               TL_NATS_STR(a->input_spatial, nsp));
        int64_t eff; /* dilation*(k-1)+1, all operands < 2^53 */
        if (tl_mul_ok(d, k - 1, &eff)) eff = INT64_MAX;
        else eff += 1;
        int64_t padded = in + pb + pa; /* each < 2^53: no overflow */
        if (padded < eff)
            return tl_node_err(err, id, NULL,
                               "conv: axis %d window does not fit padded input: input=%lld, padding=(%lld, %lld), "
                               "effectiveKernel=%lld",
                               ax, (long long)in, (long long)pb, (long long)pa, (long long)eff);
        o.dim[ax] = (padded - eff) / s + 1;
    }
    *out = o;
    return 0;
}

static int conv_param_shape(const tl_node *n, int slot, tl_shape *out) {
    const tl_attrs *a = &n->a;
    memset(out, 0, sizeof *out);
    if (slot == 0) { /* kernel [out, in / groups, k...] */
        if (a->groups <= 0 || a->spatial_rank < 0 || a->spatial_rank > TL_MAX_RANK - 2) return -1;
        out->rank = 2 + (int)a->spatial_rank;
        out->dim[0] = a->out_channels;
        out->dim[1] = a->in_channels / a->groups;
        for (int i = 0; i < (int)a->spatial_rank; i++) out->dim[2 + i] = a->kernel[i];
    } else { /* bias [out] */
        out->rank = 1;
        out->dim[0] = a->out_channels;
    }
    return 0;
}

static int conv_batch(const tl_batch_ctx *c, int *bf) {
    (void)bf;
    return c->n->a.channel_axis >= 1 ? TL_BATCH_CARRY : TL_BATCH_MIXES;
}

static int conv_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    const tl_node *n = st->node;
    const tl_shape *p0 = &c->shapes[n->parents[0]], *out = &st->shape;
    tl_prep_conv *cv = &st->p.cv;
    int sr = (int)n->a.spatial_rank;
    int ca = (int)n->a.channel_axis;
    if (ca != p0->rank - sr - 1)
        return tl_errk(err, TL_ERR_UNSUPPORTED, "node[%lld] (conv): channel_axis %d is not rank - spatial_rank - 1",
                       (long long)n->id, ca);
    if (tl_window_from_node(&cv->win, n, p0, out, ca + 1, true, err)) return -1;
    cv->outer = tl_prod(p0->dim, 0, ca);
    cv->groups = n->a.groups ? n->a.groups : 1;
    cv->cin_g = p0->dim[ca] / cv->groups;
    cv->cout_g = out->dim[ca] / cv->groups;
    cv->in_plane = tl_prod(p0->dim, ca + 1, p0->rank);
    cv->out_plane = tl_prod(out->dim, ca + 1, out->rank);
    cv->kprod = 1;
    bool trivial = true;
    for (int i = 0; i < sr; i++) {
        cv->kprod *= cv->win.kernel[i];
        if (cv->win.kernel[i] != 1 || cv->win.stride[i] != 1 || cv->win.pad[i] != 0 || cv->win.pad_after[i] != 0)
            trivial = false;
    }
    cv->im2col = !trivial;
    /* one input channel per group and a real window: direct loop (no im2col, no GEMV) */
    cv->depthwise = cv->cin_g == 1 && cv->groups > 1 && !trivial;
    if (cv->depthwise) cv->im2col = false;
    cv->w = n->param[0] ? n->param[0]->data : NULL;
    cv->b = n->param[1] ? n->param[1]->data : NULL;
    if (!cv->w) return tl_errf(err, "node[%lld] (conv): weight is not bound", (long long)n->id);
    /* 1-D/2-D convs within the direct kernels' limits run them (kernels/tl_conv.h: one FMA per
     * tap in a fixed order, bitwise the same at any thread count; 2-3x the im2col + sgemm path
     * on AVX-512, docs/conv.md); 3-D convs keep im2col + sgemm */
    int64_t C = cv->cin_g * cv->groups, OC = cv->cout_g * cv->groups;
    cv->direct = TL_CONV_IM2COL;
    cv->clamp = cv->resid = cv->leaky = false;
    cv->lo = -INFINITY;
    cv->hi = INFINITY;
    /* small planes and large K (ResNet's later stages; a batch's images fill its tiles together):
     * igemm, where the dense kernel's pixel vectors would be mostly junk lanes (tl_conv.h) */
    tl_conv_desc ig;
    const char *ig_env = getenv("TL_CONV_IGEMM"); /* "0": never, "1": wherever it can (A/B) */
    int ig_force = ig_env && (ig_env[0] == '0' || ig_env[0] == '1') ? ig_env[0] - '0' : -1;
    if (cv->groups == 1 && ig_force != 0 && tl_conv_desc_from_window(&ig, cv->outer, C, OC, 1, &cv->win) &&
        (ig_force == 1 ? tl_conv_igemm_ok(&ig) : tl_conv_igemm_better(&ig))) {
        ig.bias = cv->b;
        cv->desc = ig;
        size_t np = tl_conv_igemm_packed_floats(&ig);
        cv->packed = malloc(sizeof(float) * (np ? np : 1));
        if (!cv->packed)
            return tl_erroom(err, "node[%lld] (conv): out of memory packing %zu weights", (long long)n->id, np);
        tl_conv_igemm_pack(&ig, cv->w, cv->packed);
        cv->direct = TL_CONV_DIRECT_IGEMM;
        st->scratch_floats = (int64_t)tl_conv_igemm_scratch_floats(&ig);
        st->kernel = ex_conv;
        return 0;
    }
    if (tl_conv_desc_from_window(&cv->desc, cv->outer, C, OC, cv->groups, &cv->win) && tl_conv_supported(&cv->desc)) {
        int64_t threads = tl_get_threads();
        cv->desc.bias = cv->b;
        if (tl_conv_is_depthwise(&cv->desc)) {
            cv->direct = TL_CONV_DIRECT_DW;
            st->scratch_floats = (int64_t)tl_conv_dw_scratch_floats(&cv->desc) * threads;
        } else {
            size_t np = tl_conv_packed_floats(&cv->desc);
            cv->packed = malloc(sizeof(float) * (np ? np : 1));
            if (!cv->packed)
                return tl_erroom(err, "node[%lld] (conv): out of memory packing %zu weights", (long long)n->id, np);
            tl_conv_pack(&cv->desc, cv->w, cv->packed);
            cv->direct = TL_CONV_DIRECT_DENSE;
            int64_t imgs = threads < cv->outer ? threads : cv->outer;
            st->scratch_floats = (int64_t)tl_conv_direct_scratch_floats(&cv->desc) * (imgs > 0 ? imgs : 1);
        }
        st->kernel = ex_conv;
        return 0;
    }
    /* images run in parallel when there are several and the work pays for a team (> 0.5 MFLOP,
     * some microseconds: a team costs about one) */
    int64_t flops = 2 * cv->outer * cv->cout_g * cv->groups * cv->out_plane * cv->cin_g * cv->kprod;
    cv->threads = 1;
    if (!cv->depthwise && cv->outer > 1 && flops > ((int64_t)1 << 19)) {
        int64_t t = tl_get_threads();
        cv->threads = (int)(t < cv->outer ? t : cv->outer);
    }
    st->scratch_floats = cv->im2col ? cv->cin_g * cv->kprod * cv->out_plane * cv->threads : 0;
    st->kernel = ex_conv;
    return 0;
}

/* F.pad tuple for the trailing r spatial axes (last axis first). */
static void sb_pad_tuple(tl_strbuf *b, const int64_t *before, const int64_t *after, int r) {
    tl_sb_putc(b, '(');
    for (int i = r - 1; i >= 0; i--)
        tl_sb_printf(b, "%lld, %lld%s", (long long)before[i], (long long)after[i], i ? ", " : "");
    tl_sb_putc(b, ')');
}

static int conv_emit(const tl_emit_ctx *c, tl_err *err) {
    const tl_node *n = c->n;
    const tl_attrs *a = &n->a;
    tl_strbuf *b = c->b;
    int r = (int)a->spatial_rank;
    if (r < 1 || r > 3)
        return tl_node_err(err, n->id, NULL, "conv with spatial_rank %d is not supported by PyTorch (F.conv1d/2d/3d)",
                           r);
    const tl_shape *xs = &c->g->nodes[n->parents[0]].shape;
    bool direct = a->channel_axis <= 1; /* (C, *) unbatched or (N, C, *) */
    bool sym = true;
    for (int i = 0; i < r; i++)
        if (a->padding[i] != a->padding_after[i]) sym = false;
    tl_sb_printf(b, "F.conv%dd(", r);
    if (!sym) tl_sb_printf(b, "F.pad(");
    tl_sb_printf(b, "%s", c->p[0]);
    if (!direct) { /* fold the leading axes into one batch axis */
        int64_t dims[TL_MAX_RANK];
        dims[0] = -1;
        for (int i = 0; i <= r; i++) dims[1 + i] = xs->dim[a->channel_axis + i];
        tl_sb_py_call(b, ".reshape", dims, r + 2);
    }
    if (!sym) {
        tl_sb_printf(b, ", ");
        sb_pad_tuple(b, a->padding, a->padding_after, r);
        tl_sb_putc(b, ')');
    }
    char w[96], bias[96];
    tl_emit_param_name(c->g, n, 0, w, sizeof w);
    tl_emit_param_name(c->g, n, 1, bias, sizeof bias);
    static const int64_t zeros[TL_MAX_RANK] = {0};
    tl_sb_printf(b, ", self.%s, self.%s, stride=", w, bias);
    tl_sb_py_tuple(b, a->stride, r);
    tl_sb_printf(b, ", padding=");
    tl_sb_py_tuple(b, sym ? a->padding : zeros, r);
    tl_sb_printf(b, ", dilation=");
    tl_sb_py_tuple(b, a->dilation, r);
    tl_sb_printf(b, ", groups=%lld)", (long long)a->groups);
    if (!direct) {
        tl_sb_py_shape_call(c, ".reshape", &n->shape);
    }
    return 0;
}

/* Fold y * scale[oc] + shift[oc] (a following batch norm) into the kernel and bias: each weight
 * and the bias rounded once from double. A rounded rewrite (the conv's products now use the
 * scaled weights): within float32 tolerance of conv-then-batch-norm, off under
 * TL_SESSION_EXACT. */
static int conv_absorb_affine(tl_step *st, int axis, int64_t channels, const double *scale, const double *shift,
                              tl_err *err) {
    tl_prep_conv *cv = &st->p.cv;
    int64_t oc_n = cv->cout_g * cv->groups;
    if (axis != (int)st->node->a.channel_axis || channels != oc_n || cv->own) return 1;
    int64_t per = cv->cin_g * cv->kprod; /* weights per output channel */
    float *own = tl_fold_row_affine(cv->w, cv->b, oc_n, per, scale, shift);
    if (!own) return tl_erroom(err, "node[%lld] (conv): out of memory folding a batch norm", (long long)st->id);
    cv->own = own;
    cv->w = own;
    cv->b = own + oc_n * per;
    cv->desc.bias = cv->b;
    /* the direct kernels' copies (igemm's carries the bias) */
    if (cv->packed && cv->direct == TL_CONV_DIRECT_IGEMM) tl_conv_igemm_pack(&cv->desc, cv->w, cv->packed);
    else if (cv->packed) tl_conv_pack(&cv->desc, cv->w, cv->packed);
    return 0;
}

static int conv_absorb_clamp(tl_step *st, float lo, float hi) {
    tl_prep_conv *cv = &st->p.cv;
    cv->clamp = true;
    cv->lo = lo;
    cv->hi = hi;
    /* the direct kernels clamp the accumulator; igemm clamps after its fused residual too */
    if (!cv->resid || cv->direct == TL_CONV_DIRECT_IGEMM) {
        cv->desc.lo = lo;
        cv->desc.hi = hi;
    }
    return 0;
}

static int conv_absorb_leaky(tl_step *st, float slope) {
    tl_prep_conv *x = &st->p.cv;
    if (x->clamp || x->leaky) return 1;
    x->leaky = true;
    x->slope = slope;
    return 0;
}

static int conv_absorb_residual(tl_step *st) {
    tl_prep_conv *cv = &st->p.cv;
    if (cv->clamp || cv->leaky) return 1; /* a clamp before the add: not expressible */
    cv->resid = true;
    return 0;
}

static void conv_release(tl_step *st) {
    free(st->p.cv.own);
    free(st->p.cv.packed);
    st->p.cv.own = NULL;
    st->p.cv.packed = NULL;
}

/* ---------------------------------------------------------------- float64
 * Every conv as per image and group: im2col (unless 1x1, stride 1, unpadded: the input itself),
 * bias rows, one tl_dgemm with beta = 1 (docs/float64.md: dgemm's accumulation order). Serial
 * over images; the direct float32 kernels have no double version. */
static bool conv64_needs_col(const tl_prep_conv *cv) {
    for (int i = 0; i < cv->win.rank; i++)
        if (cv->win.kernel[i] != 1 || cv->win.stride[i] != 1 || cv->win.pad[i] != 0 || cv->win.pad_after[i] != 0)
            return true;
    return false;
}
static void ex_conv64(const tl_step *st, const double *const *in, double *out) {
    const tl_prep_conv *cv = &st->p.cv;
    const double *w = st->prm64[0], *b = st->prm64[1];
    int64_t kk = cv->cin_g * cv->kprod;
    bool col_needed = conv64_needs_col(cv);
    for (int64_t o = 0; o < cv->outer; o++) {
        const double *x = in[0] + o * cv->groups * cv->cin_g * cv->in_plane;
        double *y = out + o * cv->groups * cv->cout_g * cv->out_plane;
        for (int64_t g = 0; g < cv->groups; g++) {
            const double *xg = x + g * cv->cin_g * cv->in_plane, *col = xg;
            if (col_needed) {
                tl_k64_im2col(xg, st->scratch64p, cv->cin_g, &cv->win);
                col = st->scratch64p;
            }
            double *yg = y + g * cv->cout_g * cv->out_plane;
            for (int64_t c = 0; c < cv->cout_g; c++) {
                double bv = b ? b[g * cv->cout_g + c] : 0.0;
                for (int64_t i = 0; i < cv->out_plane; i++) yg[c * cv->out_plane + i] = bv;
            }
            if (cv->out_plane == 0 || cv->cout_g == 0) continue;
            tl_dgemm(false, false, cv->cout_g, cv->out_plane, kk, 1.0, w + g * cv->cout_g * kk, kk, col,
                     cv->out_plane, b ? 1.0 : 0.0, yg, cv->out_plane);
        }
    }
}
static int conv_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (conv_prepare(c, st, err)) return -1;
    const tl_prep_conv *cv = &st->p.cv;
    st->scratch64 = conv64_needs_col(cv) ? cv->cin_g * cv->kprod * cv->out_plane : 0;
    st->kernel64 = st->prm64[0] ? ex_conv64 : NULL;
    return 0;
}

static const char *conv_kernel_name(const tl_step *st) {
    const tl_prep_conv *cv = &st->p.cv;
    switch (cv->direct) {
    case TL_CONV_DIRECT_DW: return "depthwise";
    case TL_CONV_DIRECT_DENSE: return "direct";
    case TL_CONV_DIRECT_IGEMM: return "igemm";
    default: return cv->depthwise ? "depthwise-loop" : cv->im2col ? "im2col+sgemm" : "sgemm";
    }
}

const tl_family tl_fam_conv = {
    .name = "conv",
    .infer = conv_infer,
    .param_shape = conv_param_shape,
    .batch = conv_batch,
    .prepare = conv_prepare_both,
    .release = conv_release,
    .absorb_affine = conv_absorb_affine,
    .absorb_clamp = conv_absorb_clamp,
    .absorb_residual = conv_absorb_residual,
    .absorb_leaky = conv_absorb_leaky,
    .emit = conv_emit,
    .kernel_name = conv_kernel_name,
};
