/* matmul.c - torch.matmul semantics (TorchLean Infer: 1-D operands are a row / a column, batch
 * dims broadcast right-aligned) on tl_sgemm (OpenBLAS): one GEMM per broadcast batch, or one GEMM
 * over all rows when the right side is shared. The planner may rewrite a step's layout
 * (tl_matmul_layout with strides) so that a transpose/permute feeding or consuming the matmul is
 * read or written in place through sgemm's trans/leading-dimension arguments: the products are
 * the same dot products in the same order, so this is exact. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tl_emit.h"
#include "tl_kernels_internal.h"
#include "tl_par.h"
#include "tl_pool.h"
#include "tl_runtime_internal.h"

typedef struct mm_job {
    const tl_prep_matmul *m;
    const float *a, *b;
    float *c;
} mm_job;

static void mm_part(void *ctx, int64_t b0, int64_t b1) {
    const mm_job *j = ctx;
    const tl_prep_matmul *m = j->m;
    for (int64_t bi = b0; bi < b1; bi++)
        tl_sgemm(m->ta, m->tb, m->M, m->N, m->K, 1.0f, j->a + m->a_off[bi], m->lda, j->b + m->b_off[bi], m->ldb, 0.0f,
                 j->c + m->c_off[bi], m->ldc);
}

static void ex_matmul_gemms(const tl_step *st, const float *const *in, float *out) {
    const tl_prep_matmul *m = &st->p.mm;
    if (m->one_gemm) { /* every batch's rows follow each other with the same stride */
        tl_sgemm(false, m->tb, m->nbatch * m->M, m->N, m->K, 1.0f, in[0] + m->a_off[0], m->lda, in[1] + m->b_off[0],
                 m->ldb, 0.0f, out + m->c_off[0], m->ldc);
        return;
    }
    mm_job j = {m, in[0], in[1], out};
    /* several GEMMs each too small to split (attention's per-head products): whole GEMMs per
     * thread; a large one splits itself inside tl_sgemm */
    if (m->nbatch > 1 && m->M * m->N * m->K < TL_SGEMM_PAR_MNK) tl_pool_for(m->nbatch, mm_part, &j);
    else mm_part(&j, 0, m->nbatch);
}

/* Fused epilogues (the planner fuses only into a matmul writing its own contiguous output, not
 * into a transpose consumer's layout):
 * a residual add then the clamp, or the clamp, in one pass after the GEMMs (bitwise the add /
 * relu / max_elem / min_elem nodes they replace). */
static void ex_matmul(const tl_step *st, const float *const *in, float *out) {
    const tl_prep_matmul *m = &st->p.mm;
    if (m->M == 0 || m->N == 0) return;
    ex_matmul_gemms(st, in, out);
    if (m->resid) tl_par_add_clamp(st->K, out, st->res, out, st->numel, m->lo, m->hi);
    else if (m->clamp) tl_par_bias_clamp_rows(st->K, out, NULL, st->numel / m->N, m->N, m->lo, m->hi);
    if (m->leaky) tl_par_leaky(st->K, out, st->numel, m->slope);
}

static int matmul_absorb_clamp(tl_step *st, float lo, float hi) {
    tl_prep_matmul *m = &st->p.mm;
    m->clamp = true;
    m->lo = lo;
    m->hi = hi;
    return 0;
}

static int matmul_absorb_leaky(tl_step *st, float slope) {
    tl_prep_matmul *x = &st->p.mm;
    if (x->clamp || x->leaky) return 1;
    x->leaky = true;
    x->slope = slope;
    return 0;
}

static int matmul_absorb_residual(tl_step *st) {
    tl_prep_matmul *m = &st->p.mm;
    if (m->clamp || m->leaky) return 1; /* a clamp before the add: not expressible */
    m->resid = true;
    m->lo = -INFINITY;
    m->hi = INFINITY;
    return 0;
}

void tl_contig_strides(const tl_shape *sh, int64_t *strides) {
    int64_t acc = 1;
    for (int i = sh->rank - 1; i >= 0; i--) {
        strides[i] = acc;
        acc *= sh->dim[i];
    }
}

bool tl_mat_layout(int64_t R, int64_t C, int64_t sr, int64_t sc, bool *trans, int64_t *ld) {
    if (R <= 0 || C <= 0) { /* nothing is read */
        *trans = false;
        *ld = C > 1 ? C : 1;
        return true;
    }
    if (C == 1 || sc == 1) { /* rows of C contiguous floats, sr apart */
        *trans = false;
        *ld = R == 1 ? C : sr;
        return *ld >= C && *ld >= 1;
    }
    if (R == 1 || sr == 1) { /* stored transposed: C rows of R contiguous floats, sc apart */
        *trans = true;
        *ld = sc;
        return *ld >= R && *ld >= 1;
    }
    return false;
}

/* Matmul geometry (torch.matmul: rank-1 operands are a row / a column; batch dims broadcast,
 * right-aligned). Strides are in elements over each operand's session shape. */
int tl_matmul_layout(const tl_shape *shapes, tl_step *st, const int64_t *sa_in, const int64_t *sb_in,
                     const int64_t *sc_in, tl_err *err) {
    const tl_node *n = st->node;
    const tl_shape *a = &shapes[n->parents[0]], *b = &shapes[n->parents[1]];
    const tl_shape *c = &st->shape;
    int64_t sa[TL_MAX_RANK], sb[TL_MAX_RANK], sc[TL_MAX_RANK];
    if (sa_in) memcpy(sa, sa_in, sizeof sa);
    else tl_contig_strides(a, sa);
    if (sb_in) memcpy(sb, sb_in, sizeof sb);
    else tl_contig_strides(b, sb);
    if (sc_in) memcpy(sc, sc_in, sizeof sc);
    else tl_contig_strides(c, sc);
    int ra = a->rank, rb = b->rank, rc = c->rank;
    int la = ra >= 2 ? ra - 2 : 0, lb = rb >= 2 ? rb - 2 : 0;
    int64_t M = ra >= 2 ? a->dim[ra - 2] : 1, K = a->dim[ra - 1], N = rb >= 2 ? b->dim[rb - 1] : 1;
    /* matrix strides: rows, columns */
    int64_t a_r = ra >= 2 ? sa[ra - 2] : K, a_c = sa[ra - 1];
    int64_t b_r = rb >= 2 ? sb[rb - 2] : sb[0], b_c = rb >= 2 ? sb[rb - 1] : 1;
    int64_t c_r, c_c;
    if (ra >= 2 && rb >= 2) {
        c_r = sc[rc - 2];
        c_c = sc[rc - 1];
    } else if (ra >= 2) {
        c_r = sc[rc - 1];
        c_c = 1;
    } /* [..., M] */
    else if (rb >= 2) {
        c_r = N;
        c_c = sc[rc - 1];
    } /* [..., N] */
    else {
        c_r = 1;
        c_c = 1;
    } /* scalar */
    bool ta, tb, tc;
    int64_t lda, ldb, ldc;
    if (!tl_mat_layout(M, K, a_r, a_c, &ta, &lda) || !tl_mat_layout(K, N, b_r, b_c, &tb, &ldb) ||
        !tl_mat_layout(M, N, c_r, c_c, &tc, &ldc) || tc)
        return 1;
    int lo = la > lb ? la : lb;
    int64_t lead[TL_MAX_RANK];
    for (int k = 0; k < lo; k++) { /* right-aligned broadcast of batch dims */
        int64_t ea = k < la ? a->dim[la - 1 - k] : 1, eb = k < lb ? b->dim[lb - 1 - k] : 1;
        lead[lo - 1 - k] = ea == 1 ? eb : ea;
    }
    int64_t nbatch = tl_prod(lead, 0, lo);
    int64_t nb = nbatch ? nbatch : 1;
    int64_t *ao = malloc(sizeof(int64_t) * (size_t)nb), *bo = malloc(sizeof(int64_t) * (size_t)nb),
            *co = malloc(sizeof(int64_t) * (size_t)nb);
    if (!ao || !bo || !co) {
        free(ao);
        free(bo);
        free(co);
        return tl_erroom(err, "node[%lld] (matmul): out of memory for %lld batch offsets", (long long)n->id,
                         (long long)nb);
    }
    ao[0] = bo[0] = co[0] = 0;
    for (int64_t bi = 0; bi < nbatch; bi++) {
        int64_t idx = bi, oa = 0, ob = 0, oc = 0;
        for (int k = lo - 1; k >= 0; k--) { /* output batch axis k, innermost first */
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
    free(st->p.mm.a_off);
    free(st->p.mm.b_off);
    free(st->p.mm.c_off);
    st->p.mm = (tl_prep_matmul){.M = M,
                                .N = N,
                                .K = K,
                                .nbatch = nbatch,
                                .a_off = ao,
                                .b_off = bo,
                                .c_off = co,
                                .one_gemm = one,
                                .ta = ta,
                                .tb = tb,
                                .lda = lda,
                                .ldb = ldb,
                                .ldc = ldc,
                                .strided = sa_in || sb_in || sc_in};
    return 0;
}

static int matmul_infer(const tl_infer_ctx *c, tl_shape *out, tl_err *err) {
    int64_t id = c->n->id;
    const tl_shape *a = c->ps[0], *b = c->ps[1];
    if (a->rank == 0 || b->rank == 0)
        return tl_node_err(err, id, NULL, "matmul: expected non-scalar inputs, got %s and %s", TL_SHAPE_STR(a),
                           TL_SHAPE_STR(b));
    int64_t ka = a->dim[a->rank - 1];
    int64_t kb = b->rank >= 2 ? b->dim[b->rank - 2] : b->dim[0];
    if (ka != kb)
        return tl_node_err(err, id, NULL, "matmul: inner dims mismatch: %lld vs %lld (%s @ %s)", (long long)ka,
                           (long long)kb, TL_SHAPE_STR(a), TL_SHAPE_STR(b));
    tl_shape o;
    memset(&o, 0, sizeof o);
    if (a->rank == 1 && b->rank == 1) { /* dot product */
        *out = o;
        return 0;
    }
    /* batch dims: leading axes of each operand (none for a promoted vector) */
    int la = a->rank >= 2 ? a->rank - 2 : 0, lb = b->rank >= 2 ? b->rank - 2 : 0;
    int lr = la > lb ? la : lb;
    for (int i = 0; i < lr; i++) {
        /* right-aligned */
        int ia = i - (lr - la), ib = i - (lr - lb);
        int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
        int64_t d;
        if (ia < 0) d = db;
        else if (ib < 0) d = da;
        else if (da == db) d = da;
        else if (da == 1) d = db;
        else if (db == 1) d = da;
        else
            return tl_node_err(err, id, NULL, "matmul: incompatible batch dimensions %lld and %lld (%s @ %s)",
                               (long long)da, (long long)db, TL_SHAPE_STR(a), TL_SHAPE_STR(b));
        o.dim[o.rank++] = d;
    }
    if (a->rank >= 2) o.dim[o.rank++] = a->dim[a->rank - 2];
    if (b->rank >= 2) o.dim[o.rank++] = b->dim[b->rank - 1];
    *out = o;
    return 0;
}

static int matmul_batch(const tl_batch_ctx *c, int *bf) {
    (void)bf;
    const tl_graph *g = c->g;
    const tl_node *n = c->n;
    const tl_shape *a = &g->nodes[n->parents[0]].shape, *b = &g->nodes[n->parents[1]].shape;
    bool abc = c->bc[n->parents[0]], bbc = c->bc[n->parents[1]];
    int ra = a->rank, rb = b->rank;
    /* a's axis 0 reaches output axis 0 as the row axis (rank 2 against a rank<=2 right side)
     * or as the leading batch axis (rank>=3, at least as long as b's rank). */
    bool a_ok = (ra == 2 && rb <= 2) || (ra >= 3 && ra >= rb);
    bool b_ok = rb >= 3 && rb >= ra;
    if (abc && !a_ok) return TL_BATCH_MIXES;
    if (bbc && !b_ok) return TL_BATCH_MIXES;
    if (abc && bbc && ra != rb) return TL_BATCH_MIXES;
    /* same-rank batched product with one batch-free side: that side must broadcast (dim 1) */
    if (ra == rb && ra >= 3) {
        if (abc && !bbc && b->dim[0] != 1) return TL_BATCH_MIXES;
        if (bbc && !abc && a->dim[0] != 1) return TL_BATCH_MIXES;
    }
    return TL_BATCH_CARRY;
}

static int matmul_prepare(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    int rc = tl_matmul_layout(c->shapes, st, NULL, NULL, NULL, err);
    if (rc < 0) return -1;
    if (rc > 0) return tl_errk(err, TL_ERR_INTERNAL, "node[%lld] (matmul): bad geometry", (long long)st->id);
    st->kernel = ex_matmul;
    return 0;
}

static void matmul_release(tl_step *st) {
    free(st->p.mm.a_off);
    free(st->p.mm.b_off);
    free(st->p.mm.c_off);
    st->p.mm.a_off = st->p.mm.b_off = st->p.mm.c_off = NULL;
}

static int matmul_emit(const tl_emit_ctx *c, tl_err *err) {
    (void)err;
    tl_sb_printf(c->b, "torch.matmul(%s, %s)", c->p[0], c->p[1]);
    return 0;
}

/* ---------------------------------------------------------------- float64
 * The same GEMMs through tl_dgemm (a float64 session has no strided views: the contiguous
 * geometry matmul_prepare computed). */
static void ex_matmul64(const tl_step *st, const double *const *in, double *out) {
    const tl_prep_matmul *m = &st->p.mm;
    if (m->M == 0 || m->N == 0) return;
    if (m->one_gemm) {
        tl_dgemm(false, m->tb, m->nbatch * m->M, m->N, m->K, 1.0, in[0] + m->a_off[0], m->lda, in[1] + m->b_off[0],
                 m->ldb, 0.0, out + m->c_off[0], m->ldc);
        return;
    }
    for (int64_t bi = 0; bi < m->nbatch; bi++)
        tl_dgemm(m->ta, m->tb, m->M, m->N, m->K, 1.0, in[0] + m->a_off[bi], m->lda, in[1] + m->b_off[bi], m->ldb, 0.0,
                 out + m->c_off[bi], m->ldc);
}
static int matmul_prepare_both(const tl_prep_ctx *c, tl_step *st, tl_err *err) {
    if (matmul_prepare(c, st, err)) return -1;
    st->kernel64 = ex_matmul64;
    return 0;
}

const tl_family tl_fam_matmul = {
    .name = "matmul",
    .infer = matmul_infer,
    .batch = matmul_batch,
    .prepare = matmul_prepare_both,
    .release = matmul_release,
    .absorb_clamp = matmul_absorb_clamp,
    .absorb_residual = matmul_absorb_residual,
    .absorb_leaky = matmul_absorb_leaky,
    .emit = matmul_emit,
};
