/* tl_exec.c - one exec function per op, and the plan-time preparation of each step.
 * Exec functions read parents from `in`, write `out`, use st->scratch, and never allocate:
 * every table they need (batch offsets, folded batch norm, concat lengths) is built by
 * tl_exec_prepare when the session is created. The op -> exec mapping is a switch without a
 * default case, so -Wswitch (-Wall -Werror) rejects a new tl_op that has no line here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tl_runtime_internal.h"

static int64_t prod(const int64_t *d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

/* ---------------------------------------------------------------- elementwise */
static void ex_unary(const tl_step *st, const float *const *in, float *out) {
    tl_kernels()->unary((tl_unary)st->code, in[0], out, st->numel);
}
static void ex_binary(const tl_step *st, const float *const *in, float *out) {
    tl_kernels()->binary((tl_binary)st->code, in[0], in[1], out, st->numel);
}
/* One operand batch-free and the same for every sample: in[bf_operand - 1] holds `rep` copies of
 * one sample (`inner` floats); the output is walked in chunks of rep samples. Each element is the
 * same single IEEE operation as in ex_binary, so the result does not depend on the chunking. */
void tl_exec_binary_rep(const tl_step *st, const float *const *in, float *out) {
    const tl_kernel_table *K = tl_kernels();
    int64_t chunk = st->rep * st->inner;
    if (chunk <= 0) return;
    int k = st->bf_operand - 1;
    for (int64_t o = 0; o < st->numel; o += chunk) {
        int64_t len = st->numel - o < chunk ? st->numel - o : chunk;
        const float *a = k == 0 ? in[0] : in[0] + o;
        const float *b = k == 1 ? in[1] : in[1] + o;
        K->binary((tl_binary)st->code, a, b, out + o, len);
    }
}
/* TorchLean's safe_log (NN/Spec Activation.safeLogSpec): log(softplus(x) + eps), eps being the
 * scalar second parent. (The kernel table's safe_log computes log(max(x, eps)), which is NOT
 * TorchLean's definition, so it is not used here.) */
static void ex_safe_log(const tl_step *st, const float *const *in, float *out) {
    const tl_kernel_table *K = tl_kernels();
    float eps = in[1][0];
    K->unary(TL_U_SOFTPLUS, in[0], out, st->numel);
    for (int64_t i = 0; i < st->numel; i++) out[i] += eps;
    K->unary(TL_U_LOG, out, out, st->numel);
}
static void ex_copy(const tl_step *st, const float *const *in, float *out) {
    if (out != in[0]) memmove(out, in[0], (size_t)st->numel * sizeof(float));
}

/* ---------------------------------------------------------------- movement */
static void ex_permute(const tl_step *st, const float *const *in, float *out) {
    tl_k_permute(in[0], out, st->rank, st->dims, st->perm);
}
static void ex_broadcast(const tl_step *st, const float *const *in, float *out) {
    tl_k_broadcast(in[0], out, st->rank, st->dims, st->dims2);
}
static void ex_concat(const tl_step *st, const float *const *in, float *out) {
    tl_k_concat(in, st->part_len, st->n_in, out, st->outer, st->inner);
}

/* ---------------------------------------------------------------- reductions */
static void ex_reduce(const tl_step *st, const float *const *in, float *out) {
    const tl_kernel_table *K = tl_kernels();
    const float *src = in[0];
    float *bufs[2] = { st->scratch, st->scratch + st->M };  /* M: size after the first pass */
    for (int p = 0; p < st->n_pass; p++) {
        float *dst = p == st->n_pass - 1 ? out : bufs[p & 1];
        float mul = st->op == TL_OP_REDUCE_MEAN ? 1.0f / (float)st->pass_len[p] : 1.0f;
        K->reduce_mid(src, dst, st->pass_outer[p], st->pass_len[p], st->pass_inner[p], mul);
        src = dst;
    }
    if (st->n_pass == 0) memcpy(out, in[0], (size_t)st->numel * sizeof(float));
}
static void ex_sum(const tl_step *st, const float *const *in, float *out) {
    tl_kernels()->reduce_mid(in[0], out, 1, st->len, 1, 1.0f);
}
static void ex_mse(const tl_step *st, const float *const *in, float *out) {
    const tl_kernel_table *K = tl_kernels();
    K->binary(TL_B_SUB, in[0], in[1], st->scratch, st->len);
    K->binary(TL_B_MUL, st->scratch, st->scratch, st->scratch, st->len);
    K->reduce_mid(st->scratch, out, 1, st->len, 1, st->len ? 1.0f / (float)st->len : 0.0f);
}

/* ---------------------------------------------------------------- BLAS ops */
/* Few rows, wide layer (st->lin_t): OpenBLAS runs Y^T = W X^T faster than Y = X W^T for these
 * shapes (64x1024x1024: ~1000 vs ~1180 us, 8-30% over 2..128 rows with K >= 512, N >= 256; equal
 * or slower below: the rule is in tl_exec_prepare), so the product goes to scratch as
 * [N, M] and is transposed back in 16x16 tiles with the bias added on the way (the same single
 * addition add_bias_rows does). */
#define LIN_T_TILE 16
static void ex_linear(const tl_step *st, const float *const *in, float *out) {
    if (st->M == 0 || st->N == 0) return;
    if (st->lin_t) {
        int64_t M = st->M, N = st->N;
        float *yt = st->scratch;
        tl_sgemm(false, true, N, M, st->K, 1.0f, st->w, st->K, in[0], st->K, 0.0f, yt, M);
        for (int64_t i0 = 0; i0 < N; i0 += LIN_T_TILE)
            for (int64_t j0 = 0; j0 < M; j0 += LIN_T_TILE) {
                int64_t ie = i0 + LIN_T_TILE < N ? i0 + LIN_T_TILE : N;
                int64_t je = j0 + LIN_T_TILE < M ? j0 + LIN_T_TILE : M;
                for (int64_t j = j0; j < je; j++) {
                    float *y = out + j * N;
                    if (st->b)
                        for (int64_t i = i0; i < ie; i++) y[i] = yt[i * M + j] + st->b[i];
                    else
                        for (int64_t i = i0; i < ie; i++) y[i] = yt[i * M + j];
                }
            }
        return;
    }
    tl_sgemm(false, true, st->M, st->N, st->K, 1.0f, in[0], st->K, st->w, st->K, 0.0f, out, st->N);
    if (st->b) tl_kernels()->add_bias_rows(out, st->b, st->M, st->N);
}
static void ex_matmul(const tl_step *st, const float *const *in, float *out) {
    if (st->M == 0 || st->N == 0) return;
    if (st->one_gemm) {   /* every batch's rows follow each other with the same stride */
        tl_sgemm(false, st->tb, st->nbatch * st->M, st->N, st->K, 1.0f, in[0] + st->a_off[0],
                 st->lda, in[1] + st->b_off[0], st->ldb, 0.0f, out + st->c_off[0], st->ldc);
        return;
    }
    for (int64_t bi = 0; bi < st->nbatch; bi++)
        tl_sgemm(st->ta, st->tb, st->M, st->N, st->K, 1.0f, in[0] + st->a_off[bi], st->lda,
                 in[1] + st->b_off[bi], st->ldb, 0.0f, out + st->c_off[bi], st->ldc);
}
/* Depthwise convolution (one input channel per group): direct loop, no im2col. For each kernel
 * tap, the valid output range of the innermost axis is computed once, so the inner loop is a
 * plain multiply-add over contiguous outputs (strided inputs). Accumulation order: bias, then the
 * taps in row-major kernel order. */
static void dw_plane(const float *x, const float *w, float bias, float *y, const int64_t *in,
                     const int64_t *ou, const int64_t *k, const int64_t *s, const int64_t *p,
                     const int64_t *d) {
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

static void ex_conv_depthwise(const tl_step *st, const float *const *in, float *out) {
    /* window padded to 3 axes (leading axes of extent 1) */
    int64_t iv[3], ov[3], kv[3], sv[3], pv[3], dv[3];
    int off = 3 - st->win.rank;
    for (int a = 0; a < 3; a++) {
        int b = a - off;
        iv[a] = b >= 0 ? st->win.in[b] : 1;
        ov[a] = b >= 0 ? st->win.out[b] : 1;
        kv[a] = b >= 0 ? st->win.kernel[b] : 1;
        sv[a] = b >= 0 ? st->win.stride[b] : 1;
        pv[a] = b >= 0 ? st->win.pad[b] : 0;
        dv[a] = b >= 0 ? st->win.dilation[b] : 1;
    }
    int64_t C = st->groups, OC = st->cout_g * st->groups;
    int64_t planes = st->outer * OC;
    /* branch before the pragma: an OpenMP region whose `if` is false still builds a team */
    if (planes > 1 && planes * st->out_plane * st->kprod > 65536 && tl_get_threads() > 1) {
#pragma omp parallel for schedule(static)
        for (int64_t pl = 0; pl < planes; pl++) {
            int64_t o = pl / OC, oc = pl % OC, g = oc / st->cout_g;
            const float *x = in[0] + (o * C + g) * st->in_plane;
            dw_plane(x, st->w + oc * st->kprod, st->b ? st->b[oc] : 0.0f,
                     out + pl * st->out_plane, iv, ov, kv, sv, pv, dv);
        }
        return;
    }
    for (int64_t pl = 0; pl < planes; pl++) {
        int64_t o = pl / OC, oc = pl % OC, g = oc / st->cout_g;
        const float *x = in[0] + (o * C + g) * st->in_plane;
        dw_plane(x, st->w + oc * st->kprod, st->b ? st->b[oc] : 0.0f, out + pl * st->out_plane, iv,
                 ov, kv, sv, pv, dv);
    }
}

static void ex_conv(const tl_step *st, const float *const *in, float *out) {
    if (st->depthwise) {
        ex_conv_depthwise(st, in, out);
        return;
    }
    int64_t C = st->cin_g * st->groups, OC = st->cout_g * st->groups;
    int64_t kk = st->cin_g * st->kprod;
    for (int64_t o = 0; o < st->outer; o++) {
        const float *x = in[0] + o * C * st->in_plane;
        float *y = out + o * OC * st->out_plane;
        for (int64_t g = 0; g < st->groups; g++) {
            const float *xg = x + g * st->cin_g * st->in_plane;
            const float *col = xg;
            if (st->im2col) {
                tl_k_im2col(xg, st->scratch, st->cin_g, &st->win);
                col = st->scratch;
            }
            float *yg = y + g * st->cout_g * st->out_plane;
            float beta = 0.0f;
            if (st->b) {
                for (int64_t c = 0; c < st->cout_g; c++) {
                    float bv = st->b[g * st->cout_g + c];
                    float *row = yg + c * st->out_plane;
                    for (int64_t i = 0; i < st->out_plane; i++) row[i] = bv;
                }
                beta = 1.0f;
            }
            if (st->out_plane == 0 || st->cout_g == 0) continue;
            tl_sgemm(false, false, st->cout_g, st->out_plane, kk, 1.0f,
                     st->w + g * st->cout_g * kk, kk, col, st->out_plane, beta, yg, st->out_plane);
        }
    }
}

/* ---------------------------------------------------------------- windows / normalization */
static void ex_max_pool(const tl_step *st, const float *const *in, float *out) {
    tl_kernels()->max_pool(in[0], out, st->outer, &st->win);
}
static void ex_avg_pool(const tl_step *st, const float *const *in, float *out) {
    tl_kernels()->avg_pool(in[0], out, st->outer, &st->win);
}
static void ex_batch_norm(const tl_step *st, const float *const *in, float *out) {
    tl_kernels()->channel_affine(in[0], out, st->outer, st->len, st->inner, st->scale, st->shift);
}
static void ex_softmax(const tl_step *st, const float *const *in, float *out) {
    tl_kernels()->softmax(in[0], out, st->outer, st->len, st->inner);
}
static void ex_layernorm(const tl_step *st, const float *const *in, float *out) {
    tl_kernels()->layernorm(in[0], out, st->M, st->N, st->w, st->b, st->f0);
}

/* ---------------------------------------------------------------- random */
/* TorchLean Spec.Random: key = keyOf(seed, node id) (st->seed holds the key, set at plan time) */
static void ex_rand_uniform(const tl_step *st, const float *const *in, float *out) {
    (void)in;
    tl_k_rand_uniform(st->seed, out, st->numel);
}
static void ex_bernoulli(const tl_step *st, const float *const *in, float *out) {
    tl_k_bernoulli_mask(st->seed, in[0][0], out, st->numel);
}

/* ---------------------------------------------------------------- the table */
tl_exec_fn tl_exec_for(tl_op op) {
    switch (op) {
    case TL_OP_INPUT: case TL_OP_CONST: case TL_OP_DETACH: case TL_OP_RESHAPE: case TL_OP_FLATTEN:
        return ex_copy;   /* used only when the planner cannot alias (planted bug, eval_node) */
    case TL_OP_ADD: case TL_OP_SUB: case TL_OP_MUL_ELEM: case TL_OP_MAX_ELEM: case TL_OP_MIN_ELEM:
        return ex_binary;
    case TL_OP_ABS: case TL_OP_SQRT: case TL_OP_INV: case TL_OP_RELU: case TL_OP_TANH:
    case TL_OP_SIGMOID: case TL_OP_EXP: case TL_OP_LOG: case TL_OP_SIN: case TL_OP_COS:
    case TL_OP_SOFTPLUS:
        return ex_unary;
    case TL_OP_SAFE_LOG: return ex_safe_log;
    case TL_OP_BROADCAST_TO: return ex_broadcast;
    case TL_OP_PERMUTE: case TL_OP_TRANSPOSE: return ex_permute;
    case TL_OP_CONCAT: return ex_concat;
    case TL_OP_REDUCE_SUM: case TL_OP_REDUCE_MEAN: return ex_reduce;
    case TL_OP_SUM: return ex_sum;
    case TL_OP_MATMUL: return ex_matmul;
    case TL_OP_LINEAR: return ex_linear;
    case TL_OP_CONV: return ex_conv;
    case TL_OP_MAX_POOL: return ex_max_pool;
    case TL_OP_AVG_POOL: return ex_avg_pool;
    case TL_OP_BATCH_NORM_EVAL: return ex_batch_norm;
    case TL_OP_SOFTMAX: return ex_softmax;
    case TL_OP_LAYERNORM: return ex_layernorm;
    case TL_OP_RAND_UNIFORM: return ex_rand_uniform;
    case TL_OP_BERNOULLI_MASK: return ex_bernoulli;
    case TL_OP_MSE_LOSS: return ex_mse;
    /* rejected on import, or lowered by the importer before the runtime sees them */
    case TL_OP_HARD_MASKED_SOFTMAX: case TL_OP_CUSTOM: case TL_OP_TUPLE_GETITEM:
    case TL_OP_MULTIHEAD_ATTENTION: case TL_OP_COUNT:
        return NULL;
    }
    return NULL;
}

bool tl_exec_known(tl_op op) { return tl_exec_for(op) != NULL; }

static int unary_code(tl_op op) {
    switch (op) {
    case TL_OP_ABS: return TL_U_ABS;
    case TL_OP_SQRT: return TL_U_SQRT;
    case TL_OP_INV: return TL_U_INV;
    case TL_OP_RELU: return TL_U_RELU;
    case TL_OP_TANH: return TL_U_TANH;
    case TL_OP_SIGMOID: return TL_U_SIGMOID;
    case TL_OP_EXP: return TL_U_EXP;
    case TL_OP_LOG: return TL_U_LOG;
    case TL_OP_SIN: return TL_U_SIN;
    case TL_OP_COS: return TL_U_COS;
    case TL_OP_SOFTPLUS: return TL_U_SOFTPLUS;
    default: return TL_U_IDENTITY;
    }
}
static int binary_code(tl_op op) {
    switch (op) {
    case TL_OP_SUB: return TL_B_SUB;
    case TL_OP_MUL_ELEM: return TL_B_MUL;
    case TL_OP_MAX_ELEM: return TL_B_MAX;
    case TL_OP_MIN_ELEM: return TL_B_MIN;
    default: return TL_B_ADD;
    }
}

void tl_contig_strides(const tl_shape *sh, int64_t *strides) {
    int64_t acc = 1;
    for (int i = sh->rank - 1; i >= 0; i--) {
        strides[i] = acc;
        acc *= sh->dim[i];
    }
}

bool tl_exec_mat_layout(int64_t R, int64_t C, int64_t sr, int64_t sc, bool *trans, int64_t *ld) {
    if (R <= 0 || C <= 0) {   /* nothing is read */
        *trans = false;
        *ld = C > 1 ? C : 1;
        return true;
    }
    if (C == 1 || sc == 1) {   /* rows of C contiguous floats, sr apart */
        *trans = false;
        *ld = R == 1 ? C : sr;
        return *ld >= C && *ld >= 1;
    }
    if (R == 1 || sr == 1) {   /* stored transposed: C rows of R contiguous floats, sc apart */
        *trans = true;
        *ld = sc;
        return *ld >= R && *ld >= 1;
    }
    return false;
}

/* Matmul geometry (torch.matmul: rank-1 operands are a row / a column; batch dims broadcast,
 * right-aligned). Strides are in elements over each operand's session shape. */
int tl_exec_matmul_layout(tl_session *s, tl_step *st, const int64_t *sa_in, const int64_t *sb_in,
                          const int64_t *sc_in, tl_err *err) {
    const tl_node *n = st->node;
    const tl_shape *a = &s->shapes[n->parents[0]], *b = &s->shapes[n->parents[1]];
    const tl_shape *c = &st->shape;
    int64_t sa[TL_MAX_RANK], sb[TL_MAX_RANK], sc[TL_MAX_RANK];
    if (sa_in) memcpy(sa, sa_in, sizeof sa); else tl_contig_strides(a, sa);
    if (sb_in) memcpy(sb, sb_in, sizeof sb); else tl_contig_strides(b, sb);
    if (sc_in) memcpy(sc, sc_in, sizeof sc); else tl_contig_strides(c, sc);
    int ra = a->rank, rb = b->rank, rc = c->rank;
    int la = ra >= 2 ? ra - 2 : 0, lb = rb >= 2 ? rb - 2 : 0;
    int64_t M = ra >= 2 ? a->dim[ra - 2] : 1, K = a->dim[ra - 1], N = rb >= 2 ? b->dim[rb - 1] : 1;
    /* matrix strides: rows, columns */
    int64_t a_r = ra >= 2 ? sa[ra - 2] : K, a_c = sa[ra - 1];
    int64_t b_r = rb >= 2 ? sb[rb - 2] : sb[0], b_c = rb >= 2 ? sb[rb - 1] : 1;
    int64_t c_r, c_c;
    if (ra >= 2 && rb >= 2) { c_r = sc[rc - 2]; c_c = sc[rc - 1]; }
    else if (ra >= 2) { c_r = sc[rc - 1]; c_c = 1; }        /* [..., M] */
    else if (rb >= 2) { c_r = N; c_c = sc[rc - 1]; }        /* [..., N] */
    else { c_r = 1; c_c = 1; }                              /* scalar */
    bool ta, tb, tc;
    int64_t lda, ldb, ldc;
    if (!tl_exec_mat_layout(M, K, a_r, a_c, &ta, &lda) ||
        !tl_exec_mat_layout(K, N, b_r, b_c, &tb, &ldb) ||
        !tl_exec_mat_layout(M, N, c_r, c_c, &tc, &ldc) || tc)
        return 1;
    int lo = la > lb ? la : lb;
    int64_t lead[TL_MAX_RANK];
    for (int k = 0; k < lo; k++) {   /* right-aligned broadcast of batch dims */
        int64_t ea = k < la ? a->dim[la - 1 - k] : 1, eb = k < lb ? b->dim[lb - 1 - k] : 1;
        lead[lo - 1 - k] = ea == 1 ? eb : ea;
    }
    int64_t nbatch = prod(lead, 0, lo);
    int64_t nb = nbatch ? nbatch : 1;
    int64_t *ao = malloc(sizeof(int64_t) * (size_t)nb), *bo = malloc(sizeof(int64_t) * (size_t)nb),
            *co = malloc(sizeof(int64_t) * (size_t)nb);
    if (!ao || !bo || !co) {
        free(ao);
        free(bo);
        free(co);
        return tl_erroom(err, "out of memory");
    }
    ao[0] = bo[0] = co[0] = 0;
    for (int64_t bi = 0; bi < nbatch; bi++) {
        int64_t idx = bi, oa = 0, ob = 0, oc = 0;
        for (int k = lo - 1; k >= 0; k--) {   /* output batch axis k, innermost first */
            int64_t coord = idx % lead[k];
            idx /= lead[k];
            int ka = k - (lo - la), kb = k - (lo - lb);
            if (ka >= 0 && a->dim[ka] != 1) oa += coord * sa[ka];
            if (kb >= 0 && b->dim[kb] != 1) ob += coord * sb[kb];
            oc += coord * sc[k];
        }
        ao[bi] = oa;
        bo[bi] = ob;
        co[bi] = oc;
    }
    /* one GEMM over all rows when the right side is shared and the batches' rows (of A and C)
     * follow each other with the row stride */
    bool one = !ta && nbatch > 0;
    for (int64_t bi = 0; one && bi < nbatch; bi++)
        one = bo[bi] == 0 && ao[bi] == bi * M * lda && co[bi] == bi * M * ldc;
    if (one && nbatch > 1 && M == 1) one = lda >= K && ldc >= N;
    free(st->a_off);
    free(st->b_off);
    free(st->c_off);
    st->a_off = ao;
    st->b_off = bo;
    st->c_off = co;
    st->M = M;
    st->K = K;
    st->N = N;
    st->nbatch = nbatch;
    st->ta = ta;
    st->tb = tb;
    st->lda = lda;
    st->ldb = ldb;
    st->ldc = ldc;
    st->one_gemm = one;
    st->mm_strided = sa_in || sb_in || sc_in;
    return 0;
}

void tl_step_free_tables(tl_step *st) {
    free(st->in);
    free(st->a_off);
    free(st->b_off);
    free(st->c_off);
    free(st->scale);
    free(st->shift);
    free(st->part_len);
    free(st->rep_buf);
    st->in = NULL;
    st->a_off = st->b_off = st->c_off = NULL;
    st->scale = st->shift = st->rep_buf = NULL;
    st->part_len = NULL;
}

static int param_data(const tl_node *n, int slot, const float **p) {
    *p = n->param[slot] ? n->param[slot]->data : NULL;
    return 0;
}

static int set_window(tl_step *st, const tl_node *n, const tl_shape *in, const tl_shape *out,
                      int first_spatial, bool conv, tl_err *err) {
    int sr = (int)n->a.spatial_rank;
    if (sr < 1 || sr > 3)
        return tl_errf(err, "node[%lld] (%s): spatial_rank %d is not supported (1..3)",
                       (long long)n->id, tl_op_tag(n->op), sr);
    memset(&st->win, 0, sizeof st->win);
    st->win.rank = sr;
    for (int i = 0; i < sr; i++) {
        st->win.in[i] = in->dim[first_spatial + i];
        st->win.out[i] = out->dim[first_spatial + i];
        st->win.kernel[i] = n->a.kernel[i];
        st->win.stride[i] = n->a.stride[i];
        st->win.pad[i] = n->a.padding[i];
        st->win.pad_after[i] = conv ? n->a.padding_after[i] : n->a.padding[i];
        st->win.dilation[i] = conv ? (n->a.dilation[i] ? n->a.dilation[i] : 1) : 1;
    }
    return 0;
}

int tl_exec_prepare(tl_session *s, tl_step *st, tl_err *err) {
    const tl_node *n = st->node;
    const tl_shape *out = &st->shape;
    const tl_shape *p0 = n->n_parents > 0 ? &s->shapes[n->parents[0]] : NULL;
    st->numel = tl_shape_numel(out);
    switch (n->op) {
    case TL_OP_ABS: case TL_OP_SQRT: case TL_OP_INV: case TL_OP_RELU: case TL_OP_TANH:
    case TL_OP_SIGMOID: case TL_OP_EXP: case TL_OP_LOG: case TL_OP_SIN: case TL_OP_COS:
    case TL_OP_SOFTPLUS:
        st->code = unary_code(n->op);
        break;
    case TL_OP_ADD: case TL_OP_SUB: case TL_OP_MUL_ELEM: case TL_OP_MAX_ELEM: case TL_OP_MIN_ELEM:
        st->code = binary_code(n->op);
        break;
    case TL_OP_BROADCAST_TO: {
        st->rank = out->rank;
        int pad = out->rank - p0->rank;
        for (int i = 0; i < out->rank; i++) {
            st->dims[i] = i < pad ? 1 : p0->dim[i - pad];
            st->dims2[i] = out->dim[i];
        }
        break;
    }
    case TL_OP_PERMUTE:
        st->rank = p0->rank;
        for (int i = 0; i < p0->rank; i++) {
            st->dims[i] = p0->dim[i];
            st->perm[i] = n->a.perm[i];
        }
        break;
    case TL_OP_TRANSPOSE:
        st->rank = p0->rank;
        for (int i = 0; i < p0->rank; i++) {
            st->dims[i] = p0->dim[i];
            st->perm[i] = i;
        }
        st->perm[n->a.axis1] = n->a.axis2;
        st->perm[n->a.axis2] = n->a.axis1;
        break;
    case TL_OP_CONCAT: {
        int ax = (int)n->a.axis;
        st->outer = prod(out->dim, 0, ax);
        st->inner = prod(out->dim, ax + 1, out->rank);
        st->part_len = malloc(sizeof(int64_t) * (size_t)n->n_parents);
        if (!st->part_len) return tl_erroom(err, "out of memory");
        for (int i = 0; i < n->n_parents; i++) st->part_len[i] = s->shapes[n->parents[i]].dim[ax];
        break;
    }
    case TL_OP_REDUCE_SUM: case TL_OP_REDUCE_MEAN: {
        bool red[TL_MAX_RANK] = { false };
        for (int i = 0; i < n->a.axes_n; i++) red[n->a.axes[i]] = true;
        int64_t cur[TL_MAX_RANK];
        for (int i = 0; i < p0->rank; i++) cur[i] = p0->dim[i];
        int64_t total = tl_shape_numel(p0);
        st->n_pass = 0;
        st->M = 0;
        int64_t scratch = 0, after_prev = total;
        for (int hi = p0->rank - 1; hi >= 0; hi--) {   /* runs of adjacent axes, largest first */
            if (!red[hi]) continue;
            int lo = hi;
            while (lo > 0 && red[lo - 1]) lo--;
            int k = st->n_pass++;
            st->pass_outer[k] = prod(cur, 0, lo);
            st->pass_len[k] = prod(cur, lo, hi + 1);
            st->pass_inner[k] = prod(cur, hi + 1, p0->rank);
            for (int i = lo; i <= hi; i++) cur[i] = 1;
            int64_t after = st->pass_len[k] ? after_prev / st->pass_len[k] : 0;
            if (k == 0) st->M = after;            /* buffer 0 size */
            if (k == 1) scratch = after;          /* buffer 1 size */
            after_prev = after;
            hi = lo;
        }
        st->K = st->n_pass > 1 ? st->M + scratch : 0;   /* scratch floats */
        break;
    }
    case TL_OP_SUM:
        st->len = tl_shape_numel(p0);
        break;
    case TL_OP_MSE_LOSS:
        st->len = tl_shape_numel(p0);
        break;
    case TL_OP_SAFE_LOG:
        break;
    case TL_OP_LINEAR:
        st->K = p0->rank ? p0->dim[p0->rank - 1] : 1;
        st->N = out->rank ? out->dim[out->rank - 1] : 1;
        st->M = st->K ? tl_shape_numel(p0) / st->K : 0;
        param_data(n, 0, &st->w);
        param_data(n, 1, &st->b);
        if (!st->w)
            return tl_errf(err, "node[%lld] (linear): weight is not bound", (long long)n->id);
        /* operand order by shape (measured with tl_sgemm + this transpose, 1 thread, OpenBLAS
         * SkylakeX): swapped wins for 2..128 rows when K >= 512 and N >= 256 */
        st->lin_t = st->M >= 2 && st->M <= 128 && st->K >= 512 && st->N >= 256;
        break;
    case TL_OP_MATMUL: {
        int rc = tl_exec_matmul_layout(s, st, NULL, NULL, NULL, err);
        if (rc < 0) return -1;
        if (rc > 0) return tl_errf(err, "node[%lld] (matmul): bad geometry", (long long)n->id);
        st->mm_strided = false;
        break;
    }
    case TL_OP_CONV: {
        int sr = (int)n->a.spatial_rank;
        int ca = (int)n->a.channel_axis;
        if (ca != p0->rank - sr - 1)
            return tl_errf(err, "node[%lld] (conv): channel_axis %d is not rank - spatial_rank - 1",
                           (long long)n->id, ca);
        if (set_window(st, n, p0, out, ca + 1, true, err)) return -1;
        st->outer = prod(p0->dim, 0, ca);
        st->groups = n->a.groups ? n->a.groups : 1;
        st->cin_g = p0->dim[ca] / st->groups;
        st->cout_g = out->dim[ca] / st->groups;
        st->in_plane = prod(p0->dim, ca + 1, p0->rank);
        st->out_plane = prod(out->dim, ca + 1, out->rank);
        st->kprod = 1;
        bool trivial = true;
        for (int i = 0; i < sr; i++) {
            st->kprod *= st->win.kernel[i];
            if (st->win.kernel[i] != 1 || st->win.stride[i] != 1 || st->win.pad[i] != 0 ||
                st->win.pad_after[i] != 0)
                trivial = false;
        }
        st->im2col = !trivial;
        /* one input channel per group and a real window: direct loop (no im2col, no GEMV) */
        st->depthwise = st->cin_g == 1 && st->groups > 1 && !trivial;
        if (st->depthwise) st->im2col = false;
        param_data(n, 0, &st->w);
        param_data(n, 1, &st->b);
        if (!st->w) return tl_errf(err, "node[%lld] (conv): weight is not bound", (long long)n->id);
        break;
    }
    case TL_OP_MAX_POOL: case TL_OP_AVG_POOL: {
        int sr = (int)n->a.spatial_rank;
        if (set_window(st, n, p0, out, p0->rank - sr, false, err)) return -1;
        st->outer = prod(p0->dim, 0, p0->rank - sr);
        break;
    }
    case TL_OP_BATCH_NORM_EVAL: {
        int ca = (int)n->a.channel_axis;
        st->outer = prod(p0->dim, 0, ca);
        st->len = p0->dim[ca];
        st->inner = prod(p0->dim, ca + 1, p0->rank);
        const float *gm, *bt, *mu, *var;
        param_data(n, 0, &gm);
        param_data(n, 1, &bt);
        param_data(n, 2, &mu);
        param_data(n, 3, &var);
        if (!mu || !var)
            return tl_errf(err, "node[%lld] (batch_norm_eval): mean/var are not bound",
                           (long long)n->id);
        st->scale = malloc(sizeof(float) * (size_t)(st->len ? st->len : 1));
        st->shift = malloc(sizeof(float) * (size_t)(st->len ? st->len : 1));
        if (!st->scale || !st->shift) return tl_erroom(err, "out of memory");
        for (int64_t c = 0; c < st->len; c++) {
            double sc = (gm ? (double)gm[c] : 1.0) / sqrt((double)var[c] + n->a.eps);
            st->scale[c] = (float)sc;
            st->shift[c] = (float)((bt ? (double)bt[c] : 0.0) - (double)mu[c] * sc);
        }
        break;
    }
    case TL_OP_SOFTMAX: {
        int ax = (int)n->a.axis;
        st->outer = prod(p0->dim, 0, ax);
        st->len = p0->dim[ax];
        st->inner = prod(p0->dim, ax + 1, p0->rank);
        break;
    }
    case TL_OP_LAYERNORM: {
        int ax = (int)n->a.axis;
        st->M = prod(p0->dim, 0, ax);
        st->N = prod(p0->dim, ax, p0->rank);
        st->f0 = (float)n->a.eps;
        param_data(n, 0, &st->w);
        param_data(n, 1, &st->b);
        break;
    }
    case TL_OP_RAND_UNIFORM: case TL_OP_BERNOULLI_MASK:
        st->seed = tl_k_rand_key((uint64_t)n->a.seed, (uint64_t)n->id);
        break;
    case TL_OP_INPUT: case TL_OP_CONST: case TL_OP_DETACH: case TL_OP_RESHAPE: case TL_OP_FLATTEN:
        break;
    case TL_OP_HARD_MASKED_SOFTMAX: case TL_OP_CUSTOM: case TL_OP_TUPLE_GETITEM:
    case TL_OP_MULTIHEAD_ATTENTION: case TL_OP_COUNT:
        return tl_errf(err, "node[%lld] (%s): not executable by the runtime", (long long)n->id,
                       tl_op_tag(n->op));
    }
    return 0;
}

int64_t tl_exec_scratch(const tl_step *st) {
    switch (st->op) {
    case TL_OP_CONV:
        return st->im2col ? st->cin_g * st->kprod * st->out_plane : 0;
    case TL_OP_LINEAR:
        return st->lin_t ? st->M * st->N : 0;
    case TL_OP_REDUCE_SUM: case TL_OP_REDUCE_MEAN:
        return st->K;
    case TL_OP_MSE_LOSS:
        return st->len;
    default:
        return 0;
    }
}
