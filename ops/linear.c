/* linear.c - y = x W^T + b over the last axis (nn.Linear; W is [out_dim, in_dim], b optional), on
 * tl_sgemm. The bias is added after the product (one more rounding per element); the zoo tests
 * hold the result to PyTorch within assert_close's float32 tolerances. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tl_emit.h"
#include "tl_par.h"
#include "tl_runtime_internal.h"

/* Few rows, wide layer (l->lin_t): OpenBLAS runs Y^T = W X^T faster than Y = X W^T for these
 * shapes (64x1024x1024: ~1000 vs ~1180 us, 8-30% over 2..128 rows with K >= 512, N >= 256; equal
 * or slower below: the rule is in linear_prepare), so the product goes to scratch as
 * [N, M] and is transposed back in 16x16 tiles with the bias added on the way (the same single
 * addition add_bias_rows does). */
#define LIN_T_TILE 16
static void ex_linear_gemm(const tl_step *st, const float *const *in, float *out);

/* the fused leaky relu goes last, after whichever path ran */
static void ex_linear(const tl_step *st, const float *const *in, float *out) {
    ex_linear_gemm(st, in, out);
    if (st->p.lin.leaky && st->p.lin.M > 0 && st->p.lin.N > 0) tl_par_leaky(st->K, out, st->numel, st->p.lin.slope);
}

static void ex_linear_gemm(const tl_step *st, const float *const *in, float *out) {
    const tl_prep_linear *l = &st->p.lin;
    if (l->M == 0 || l->N == 0) return;
    if (l->packed) { /* bias, residual and clamp in the kernel's store, in the same order */
        tl_par_gemm_packed(st->K, in[0], l->M, l->N, l->K, l->packed, l->b, l->resid ? st->res : NULL, l->lo, l->hi,
                           out);
        return;
    }
    if (l->lin_t) {
        int64_t M = l->M, N = l->N;
        float *yt = st->scratch;
        tl_sgemm(false, true, N, M, l->K, 1.0f, l->w, l->K, in[0], l->K, 0.0f, yt, M);
        for (int64_t i0 = 0; i0 < N; i0 += LIN_T_TILE)
            for (int64_t j0 = 0; j0 < M; j0 += LIN_T_TILE) {
                int64_t ie = i0 + LIN_T_TILE < N ? i0 + LIN_T_TILE : N;
                int64_t je = j0 + LIN_T_TILE < M ? j0 + LIN_T_TILE : M;
                for (int64_t j = j0; j < je; j++) {
                    float *y = out + j * N;
                    if (l->b)
                        for (int64_t i = i0; i < ie; i++) y[i] = yt[i * M + j] + l->b[i];
                    else
                        for (int64_t i = i0; i < ie; i++) y[i] = yt[i * M + j];
                }
            }
        if (l->resid) tl_par_add_clamp(st->K, out, st->res, out, st->numel, l->lo, l->hi);
        else if (l->clamp) tl_par_bias_clamp_rows(st->K, out, NULL, M, N, l->lo, l->hi);
        return;
    }
    tl_sgemm(false, true, l->M, l->N, l->K, 1.0f, in[0], l->K, l->w, l->K, 0.0f, out, l->N);
    /* bias then a fused clamp in one pass: the same operations as add_bias_rows followed by the
     * relu / max_elem / min_elem nodes it replaces; a fused residual add between the two */
    if (l->resid) {
        if (l->b) tl_par_add_bias_rows(st->K, out, l->b, l->M, l->N);
        tl_par_add_clamp(st->K, out, st->res, out, st->numel, l->lo, l->hi);
    } else if (l->clamp) {
        tl_par_bias_clamp_rows(st->K, out, l->b, l->M, l->N, l->lo, l->hi);
    } else if (l->b) {
        tl_par_add_bias_rows(st->K, out, l->b, l->M, l->N);
    }
}

static int linear_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    const tl_attrs *a = &c->n->a;
    const tl_shape *x = c->ps[0];
    int64_t id = c->n->id;
    if (x->rank < 1)
        return tl_node_err(err, id, NULL, "linear: expected an input of rank >= 1, got %s", TL_SHAPE_STR(x));
    if (a->in_dim < 0) return tl_node_err(err, id, "in_dim", "missing and cannot be derived");
    if (a->out_dim < 0) return tl_node_err(err, id, "out_dim", "missing and cannot be derived");
    if (x->dim[x->rank - 1] != a->in_dim)
        return tl_node_err(err, id, "in_dim", "input last dimension is %lld (input %s), but in_dim is %lld",
                           (long long)x->dim[x->rank - 1], TL_SHAPE_STR(x), (long long)a->in_dim);
    *out = *x;
    out->dim[out->rank - 1] = a->out_dim;
    return 0;
}

static int linear_param_shape(const tl_node *n, int slot, tl_shape *out) {
    const tl_attrs *a = &n->a;
    if (a->out_dim < 0 || a->in_dim < 0) return -1;
    memset(out, 0, sizeof *out);
    if (slot == 0) { /* W [out_dim, in_dim] */
        out->rank = 2;
        out->dim[0] = a->out_dim;
        out->dim[1] = a->in_dim;
    } else { /* b [out_dim] */
        out->rank = 1;
        out->dim[0] = a->out_dim;
    }
    return 0;
}

static int linear_batch(const tl_batch_ctx *c, int *bf) {
    (void)bf; /* a rank-1 input is one sample: its axis 0 is the feature axis */
    return c->g->nodes[c->n->parents[0]].shape.rank >= 2 ? TL_BATCH_CARRY : TL_BATCH_MIXES;
}

static int linear_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    const tl_node *n = st->node;
    const tl_shape *p0 = &c->shapes[n->parents[0]], *out = &st->shape;
    tl_prep_linear *l = &st->p.lin;
    l->K = p0->rank ? p0->dim[p0->rank - 1] : 1;
    l->N = out->rank ? out->dim[out->rank - 1] : 1;
    l->M = l->K ? tl_shape_numel(p0) / l->K : 0;
    l->w = n->param[0] ? n->param[0]->data : NULL;
    l->b = n->param[1] ? n->param[1]->data : NULL;
    if (!l->w) return tl_errf(err, "node[%lld] (linear): weight is not bound", (long long)n->id);
    l->clamp = l->resid = l->leaky = false;
    l->lo = -INFINITY;
    l->hi = INFINITY;
    /* layers of a batched MLP or transformer (K <= 1024, 16+ rows): the table's packed-weight
     * kernel (no per-call packing of x and W: ACAS 5-50x6-5 batch 1024 0.25 -> 0.21 ms at 1
     * thread; MNIST 784-256x3-10 with its 784-wide layer packed too, 1 thread: batch 16 72 -> 69
     * us, 64 249 -> 223, 256 870 -> 776, 1024 unchanged; docs/kernels.md); one FMA chain per output in k
     * order, so rounded like sgemm (not bitwise sgemm), bitwise across ISAs and thread counts;
     * not under TL_SESSION_EXACT, which keeps the sgemm path. With the AVX2 table every width
     * (16+ rows): OpenBLAS's Haswell/Zen sgemm kernels ran 1024x256x784 at 11.5 GFLOP/s on an AMD
     * EPYC guest where this kernel ran 35-46 (and ahead of the swapped product for 16-128 rows:
     * MNIST batch 1024 in micro-batches of 128, 36 -> 22 ms; docs/kernels.md). The AVX-512 table
     * takes K <= 1024 at any width: single linears against OpenBLAS's SkylakeX sgemm (or the
     * swapped product), 1 thread, min of 6 alternations on the Emerald Rapids VM: 0.55-0.92x its
     * time at 16x1024x1024, 32x256x512, 197x192x768 (ViT), 3152x192x768, 64x1024x1024,
     * 256x512x512, 1024x512x1024 and 64x1024x4096, 1.03x at 128x768x3072 (0.87x at 2 threads);
     * with K = 3072 (128x3072x768) sgemm stayed ahead (1.06x), so longer rows keep it. */
    l->packed = NULL;
    bool vec = c->K != tl_kernels_for(TL_ISA_SCALAR), avx2 = c->K == tl_kernels_for(TL_ISA_AVX2);
    bool narrow = l->N >= 1 && l->K >= 1 && l->K <= 1024;
    const char *pk_env = getenv("TL_LINEAR_PACKED"); /* "0": never (A/B measurements) */
    if (!(pk_env && pk_env[0] == '0') && !c->exact && vec && l->M >= 16 && l->N >= 1 && l->K >= 1 &&
        (narrow || avx2)) {
        size_t np = c->K->gemm_pack_floats(l->N, l->K);
        l->packed = malloc(sizeof(float) * (np ? np : 1));
        if (!l->packed) return tl_erroom(err, "node[%lld] (linear): out of memory packing weights", (long long)n->id);
        c->K->gemm_pack(l->w, l->N, l->K, l->packed);
    }
    /* operand order by shape (measured with tl_sgemm + this transpose, 1 thread, OpenBLAS
     * SkylakeX): swapped wins for 2..128 rows when K >= 512 and N >= 256 */
    l->lin_t = !l->packed && l->M >= 2 && l->M <= 128 && l->K >= 512 && l->N >= 256;
    st->scratch_floats = l->lin_t ? l->M * l->N : 0;
    st->kernel = ex_linear;
    return 0;
}

static int linear_emit(const tl_emit_ctx *c, tl_err *err) {
    (void)err;
    char w[96], b[96];
    tl_emit_param_name(c->g, c->n, 0, w, sizeof w);
    tl_emit_param_name(c->g, c->n, 1, b, sizeof b);
    tl_sb_printf(c->b, "F.linear(%s, self.%s, self.%s)", c->p[0], w, b);
    return 0;
}

/* Fold y * scale[n] + shift[n] over the output features (a following batch norm on the last
 * axis) into W's rows and b, each rounded once from double; off under TL_SESSION_EXACT. */
static int linear_absorb_affine(tl_step *st, int axis, int64_t channels, const double *scale, const double *shift,
                                tl_err *err) {
    tl_prep_linear *l = &st->p.lin;
    if (axis != st->shape.rank - 1 || channels != l->N || l->own) return 1;
    float *own = tl_fold_row_affine(l->w, l->b, l->N, l->K, scale, shift);
    if (!own) return tl_erroom(err, "node[%lld] (linear): out of memory folding a batch norm", (long long)st->id);
    l->own = own;
    l->w = own;
    l->b = own + l->N * l->K;
    if (l->packed) st->K->gemm_pack(l->w, l->N, l->K, l->packed);
    return 0;
}

static int linear_absorb_clamp(tl_step *st, float lo, float hi) {
    tl_prep_linear *l = &st->p.lin;
    l->clamp = true;
    l->lo = lo;
    l->hi = hi;
    return 0;
}

static int linear_absorb_leaky(tl_step *st, float slope) {
    tl_prep_linear *x = &st->p.lin;
    if (x->clamp || x->leaky) return 1;
    x->leaky = true;
    x->slope = slope;
    return 0;
}

static int linear_absorb_residual(tl_step *st) {
    tl_prep_linear *l = &st->p.lin;
    if (l->clamp || l->leaky) return 1; /* a clamp before the add: not expressible */
    l->resid = true;
    return 0;
}

static void linear_release(tl_step *st) {
    free(st->p.lin.own);
    free(st->p.lin.packed);
    st->p.lin.own = NULL;
    st->p.lin.packed = NULL;
}

/* ---------------------------------------------------------------- float64
 * y = x W^T through tl_dgemm, then + b (one more rounding per element, as the float path) on the
 * session's double parameters (st->prm64). */
static void ex_linear64(const tl_step *st, const double *const *in, double *out) {
    const tl_prep_linear *l = &st->p.lin;
    if (l->M == 0 || l->N == 0) return;
    tl_dgemm(false, true, l->M, l->N, l->K, 1.0, in[0], l->K, st->prm64[0], l->K, 0.0, out, l->N);
    if (st->prm64[1]) tl_k64_add_bias_rows(out, st->prm64[1], l->M, l->N);
}
static int linear_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (linear_prepare(c, st, err)) return -1;
    st->scratch64 = 0;
    st->kernel64 = st->prm64[0] ? ex_linear64 : NULL;
    return 0;
}

const tl_family tl_fam_linear = {
    .name = "linear",
    .infer = linear_infer,
    .param_shape = linear_param_shape,
    .batch = linear_batch,
    .prepare = linear_prepare_both,
    .release = linear_release,
    .absorb_affine = linear_absorb_affine,
    .absorb_clamp = linear_absorb_clamp,
    .absorb_residual = linear_absorb_residual,
    .absorb_leaky = linear_absorb_leaky,
    .emit = linear_emit,
};
