/* tl_session.c - the execution plan of a model for one input shape, and running it.
 *
 * Plan (tl_session_new), once per input shape:
 *  1. session shapes: the declared ones, or batch-substituted ones (tl_batch.c explains how);
 *  2. per-node geometry (tl_exec_prepare): strides, windows, folded batch norm, matmul batch
 *     offset tables, reduction passes; scratch sizes;
 *  3. storages: every value lives in a storage. detach/reshape/flatten share their parent's
 *     storage (zero-copy alias); const nodes point at the model's tensor (no copy); the input is
 *     copied into its arena slot at the start of a run (so outputs never point at caller memory);
 *     an elementwise unary/binary op whose parent storage dies at that node writes in place;
 *  4. liveness: a storage lives from its defining node to the last node reading it (through any
 *     alias); outputs live to the end; scratch lives during its node only;
 *  5. one 64-byte aligned arena: storages placed greedily by decreasing size at the lowest offset
 *     that does not overlap a placed storage with an intersecting lifetime (TL_SESSION_KEEP_ALL:
 *     every storage lives for the whole run, so nothing is reused and nothing runs in place);
 *  6. every step's parent/output/scratch pointers are resolved once.
 * tl_session_run then is a loop over the steps: no allocation, no shape arithmetic.
 * How that is checked: tests/c/test_runtime.c interposes malloc/calloc/realloc/aligned_alloc/
 * posix_memalign in its executable and counts calls during steady-state runs: zero with one
 * thread; with several threads the only allocations come from inside OpenBLAS's multi-threaded
 * level-3 driver (0.3.21 mallocs a job array per threaded sgemm call), never from tlrt or OpenMP.
 *
 * Test-only switch: env TL_TEST_PLANT_BUG=<tag> (read once per session) adds 1e-2 to every output
 * element of the nodes with that tag (tldiff's tests use it to find the first diverging node). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tl_runtime_internal.h"

#define LIVE_END INT64_MAX

typedef struct storage {
    tl_store_kind kind;
    int64_t bytes;
    int64_t def, last;
    int64_t offset;
    const float *param;   /* TL_STORE_PARAM */
    bool dead;            /* merged into another storage (in-place) */
} storage;

static int64_t align64(int64_t x) { return (x + 63) & ~(int64_t)63; }

static void steps_free(tl_session *s) {
    if (!s->steps) return;
    for (int64_t i = 0; i < s->n; i++) tl_step_free_tables(&s->steps[i]);
    free(s->steps);
}

void tl_session_free(tl_session *s) {
    if (!s) return;
    steps_free(s);
    free(s->shapes);
    free(s->value);
    free(s->arena);
    free(s->ns);
    free(s->out_ids);
    free(s->run);
    for (int64_t i = 0; i < s->n_owned; i++) free(s->owned[i]);
    free(s->owned);
    free(s);
}

static bool is_alias_op(tl_op op) {
    return op == TL_OP_DETACH || op == TL_OP_RESHAPE || op == TL_OP_FLATTEN;
}

static bool is_elementwise(const tl_op_row *row, tl_op op) {
    return (row->elementwise_unary && op != TL_OP_DETACH) || row->elementwise_binary ||
           op == TL_OP_SAFE_LOG;
}

static int check_input_shape(const tl_graph *g, const tl_shape *in, tl_err *err) {
    const tl_shape *cap = &g->nodes[g->input_id].shape;
    bool ok = in->rank == cap->rank;
    for (int i = 1; ok && i < in->rank; i++) ok = in->dim[i] == cap->dim[i];
    if (!ok) {
        char a[128], b[128];
        return tl_errf(err, "shape %s does not match the graph input %s",
                       tl_shape_str(in, a, sizeof a), tl_shape_str(cap, b, sizeof b));
    }
    return 0;
}

/* greedy-by-size placement; returns total bytes */
static int64_t place(storage *S, int64_t ns) {
    int64_t *order = malloc(sizeof(int64_t) * (size_t)(ns ? ns : 1));
    int64_t *placed = malloc(sizeof(int64_t) * (size_t)(ns ? ns : 1));
    if (!order || !placed) {
        free(order);
        free(placed);
        return -1;
    }
    int64_t no = 0, np = 0, total = 0;
    for (int64_t i = 0; i < ns; i++)
        if (!S[i].dead && S[i].kind == TL_STORE_ARENA && S[i].bytes > 0) order[no++] = i;
    /* insertion sort by bytes desc, then def asc (deterministic) */
    for (int64_t i = 1; i < no; i++) {
        int64_t v = order[i], j = i - 1;
        while (j >= 0 && (S[order[j]].bytes < S[v].bytes ||
                          (S[order[j]].bytes == S[v].bytes && S[order[j]].def > S[v].def))) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = v;
    }
    for (int64_t k = 0; k < no; k++) {
        storage *x = &S[order[k]];
        int64_t off = 0;
        bool moved = true;
        while (moved) {   /* bump past every conflicting placed block until none overlaps */
            moved = false;
            for (int64_t p = 0; p < np; p++) {
                storage *y = &S[placed[p]];
                bool time = x->def <= y->last && y->def <= x->last;
                bool space = off < y->offset + y->bytes && y->offset < off + x->bytes;
                if (time && space) {
                    off = y->offset + y->bytes;
                    moved = true;
                }
            }
        }
        x->offset = off;
        placed[np++] = order[k];
        if (off + x->bytes > total) total = off + x->bytes;
    }
    free(order);
    free(placed);
    return total;
}

static void plant(const tl_step *st, float *y) {
    for (int64_t i = 0; i < st->numel; i++) y[i] += 1e-2f;
}

static bool is_permute(tl_op op) { return op == TL_OP_PERMUTE || op == TL_OP_TRANSPOSE; }

/* Folded values of the plan (nodes whose inputs are all constant), computed once. */
typedef struct fold_state {
    bool *cf;          /* node is constant (folded) */
    float **fv;        /* its value (param data, or a buffer of buf[owner]) */
    int64_t *owner;    /* node owning the buffer fv points into, -1: the model's tensor */
    float **buf;       /* malloc'd value buffer per owner node */
} fold_state;

/* Step 3: constant folding. Every node that does not depend on the input (const, rand_uniform,
 * bernoulli_mask over a constant probability, and every op over those only) is evaluated once
 * here with the same exec function the run would use, so its value is bitwise what a run
 * computes (rand_uniform/bernoulli_mask draw from the same per-node keys). A planted bug is
 * applied to the folded value once. */
static int fold_constants(tl_session *s, fold_state *F, tl_err *err) {
    const tl_graph *g = s->m->g;
    for (int64_t i = 0; i < s->n; i++) {
        const tl_node *nd = &g->nodes[i];
        tl_step *st = &s->steps[i];
        F->cf[i] = false;
        F->fv[i] = NULL;
        F->owner[i] = -1;
        F->buf[i] = NULL;
        if (nd->op == TL_OP_INPUT) continue;
        bool all = true;
        for (int k = 0; k < nd->n_parents && all; k++) all = F->cf[nd->parents[k]];
        if (!all) continue;
        F->cf[i] = true;
        st->folded = true;
        if (nd->op == TL_OP_CONST) {
            if (!nd->param[0] || !nd->param[0]->data)
                return tl_errf(err, "node[%lld] (const): value is not bound", (long long)i);
            if (!st->plant_bug) {
                F->fv[i] = nd->param[0]->data;
                continue;
            }
        }
        if (is_alias_op(nd->op) && !st->plant_bug) {
            F->fv[i] = F->fv[nd->parents[0]];
            F->owner[i] = F->owner[nd->parents[0]];
            continue;
        }
        float *out = malloc(sizeof(float) * (size_t)(st->numel > 0 ? st->numel : 1));
        int64_t sc = tl_exec_scratch(st);
        float *scratch = sc > 0 ? malloc(sizeof(float) * (size_t)sc) : NULL;
        if (!out || (sc > 0 && !scratch)) {
            free(out);
            free(scratch);
            return tl_erroom(err, "out of memory");
        }
        for (int k = 0; k < nd->n_parents; k++) st->in[k] = F->fv[nd->parents[k]];
        if (nd->op == TL_OP_CONST) st->in[0] = nd->param[0]->data;
        st->scratch = scratch;
        tl_exec_for(nd->op)(st, st->in, out);
        st->scratch = NULL;
        free(scratch);
        if (st->plant_bug) plant(st, out);
        F->fv[i] = out;
        F->owner[i] = i;
        F->buf[i] = out;
    }
    return 0;
}

/* Smallest period p (a product of trailing dims, or 1) with v[j] == v[j % p] bitwise for all j,
 * among those dividing `limit` floats; 0 if none. */
static int64_t value_period(const float *v, const tl_shape *sh, int64_t limit) {
    int64_t numel = tl_shape_numel(sh);
    int64_t cand[TL_MAX_RANK + 1];
    int nc = 0;
    cand[nc++] = 1;
    int64_t acc = 1;
    for (int i = sh->rank - 1; i >= 0; i--) {
        acc *= sh->dim[i];
        if (acc > cand[nc - 1]) cand[nc++] = acc;
    }
    for (int c = 0; c < nc; c++) {
        int64_t p = cand[c];
        if (p <= 0 || limit % p != 0 || numel % p != 0) continue;
        bool ok = true;
        for (int64_t j = p; j < numel && ok; j += p) ok = memcmp(v, v + j, sizeof(float) * (size_t)p) == 0;
        if (ok) return p;
    }
    return 0;
}

#define REP_FLOATS 16384   /* a periodic constant operand is replicated up to 64 KiB */

/* Step 3b: an elementwise binary node with one constant operand reads a small replicated copy
 * of one period of it (tl_exec_binary_rep) instead of the full-size folded value; in a
 * re-batched session this is how a batch-free per-sample operand meets every sample. */
static int plan_rep_operands(tl_session *s, const fold_state *F, const int *bfo, tl_err *err) {
    const tl_graph *g = s->m->g;
    const tl_shape *cap = &g->nodes[g->input_id].shape;
    int64_t B = cap->rank ? cap->dim[0] : 1, N = s->in_shape.rank ? s->in_shape.dim[0] : 1;
    for (int64_t i = 0; i < s->n; i++) {
        const tl_node *nd = &g->nodes[i];
        tl_step *st = &s->steps[i];
        if (F->cf[i] || !tl_op_info(nd->op)->elementwise_binary || nd->n_parents != 2) continue;
        if (st->numel == 0) continue;
        int k = F->cf[nd->parents[0]] ? 0 : F->cf[nd->parents[1]] ? 1 : -1;
        if (k < 0) continue;
        int64_t p = nd->parents[k];
        const tl_shape *ps = &s->shapes[p];
        int64_t pn = tl_shape_numel(ps);
        int64_t limit = pn;
        if (bfo[i]) {   /* batch-free operand of a re-batched node: one sample of it */
            if (ps->rank == 0 || ps->dim[0] <= 0)
                return tl_errf(err, "batch %lld does not fit the graph: node[%lld] (%s) mixes the "
                               "batch axis (captured batch %lld)", (long long)N, (long long)i,
                               tl_op_tag(nd->op), (long long)B);
            limit = pn / ps->dim[0];
        } else if (pn != st->numel) {
            continue;
        }
        int64_t per = value_period(F->fv[p], ps, limit);
        if (per == 0) {
            if (bfo[i])
                return tl_errf(err, "batch %lld does not fit the graph: node[%lld] (%s) mixes the "
                               "batch axis (captured batch %lld)", (long long)N, (long long)i,
                               tl_op_tag(nd->op), (long long)B);
            continue;
        }
        if (!bfo[i] && per == pn) continue;   /* not periodic: read the folded value */
        int64_t rep = REP_FLOATS / per;
        if (rep < 1) rep = 1;
        int64_t need = (st->numel + per - 1) / per;
        if (rep > need) rep = need;
        float *rb = malloc(sizeof(float) * (size_t)(rep * per));
        if (!rb) return tl_erroom(err, "out of memory");
        for (int64_t r = 0; r < rep; r++) memcpy(rb + r * per, F->fv[p], sizeof(float) * (size_t)per);
        free(st->rep_buf);
        st->rep_buf = rb;
        st->rep = rep;
        st->inner = per;
        st->bf_operand = k + 1;
    }
    return 0;
}

/* Step 4: zero-copy transposes around matmul.
 *  - out-view: a matmul whose only consumer is a permute/transpose keeping the last axis writes
 *    its product straight into that node's layout (ldc + per-batch offsets); the permute is
 *    then an alias of that storage.
 *  - in-view: a permute/transpose whose consumers are all matmuls (or other in-views) is not
 *    materialized: each matmul reads its base storage through tl_sgemm's trans/lda arguments.
 * Off for KEEP_ALL, outputs, planted bugs and folded nodes (every such value is materialized).
 * vstr[i] receives the strides of view i over its base storage. */
typedef int64_t strides_t[TL_MAX_RANK];

static bool operand_ok(const tl_shape *sh, const int64_t *st, bool is_b) {
    bool t;
    int64_t ld;
    int r = sh->rank;
    if (r == 0) return false;
    if (r == 1)
        return is_b ? tl_exec_mat_layout(sh->dim[0], 1, st[0], 1, &t, &ld)
                    : tl_exec_mat_layout(1, sh->dim[0], sh->dim[0], st[0], &t, &ld);
    return tl_exec_mat_layout(sh->dim[r - 2], sh->dim[r - 1], st[r - 2], st[r - 1], &t, &ld);
}

static void permuted(const tl_step *st, const int64_t *src, int64_t *dst) {
    for (int i = 0; i < st->rank; i++) dst[i] = src[st->perm[i]];
}

static int plan_views(tl_session *s, const fold_state *F, const bool *is_out, bool *view,
                      int64_t *outview, strides_t *vstr, tl_err *err) {
    const tl_graph *g = s->m->g;
    int64_t n = s->n;
    for (int64_t i = 0; i < n; i++) {
        view[i] = false;
        outview[i] = -1;
    }
    if (s->flags & TL_SESSION_KEEP_ALL) return 0;
    /* consumers (CSR) */
    size_t nz = (size_t)(n > 0 ? n : 1);
    int64_t *cstart = calloc(nz + 1, sizeof *cstart);
    int64_t *clist = NULL, *fill = calloc(nz + 1, sizeof *fill);
    bool *target = calloc(nz, sizeof *target);   /* out-view targets */
    strides_t *tent = malloc(sizeof *tent * nz);
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) total += g->nodes[i].n_parents;
    clist = malloc(sizeof *clist * (size_t)(total ? total : 1));
    int rc = -1;
    if (!cstart || !fill || !target || !tent || !clist) {
        tl_erroom(err, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_parents; k++) cstart[g->nodes[i].parents[k] + 1]++;
    for (int64_t i = 0; i < n; i++) cstart[i + 1] += cstart[i];
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_parents; k++) {
            int64_t p = g->nodes[i].parents[k];
            clist[cstart[p] + fill[p]++] = i;
        }
    /* out-views */
    for (int64_t i = 0; i < n; i++) {
        tl_step *st = &s->steps[i];
        if (st->op != TL_OP_MATMUL || F->cf[i] || st->plant_bug || is_out[i] || st->numel == 0) continue;
        if (cstart[i + 1] - cstart[i] != 1) continue;
        int64_t t = clist[cstart[i]];
        tl_step *tt = &s->steps[t];
        if (!is_permute(tt->op) || tt->plant_bug || tt->rank != st->shape.rank || tt->rank < 2 ||
            tt->perm[tt->rank - 1] != tt->rank - 1)
            continue;
        int64_t ct[TL_MAX_RANK], sc[TL_MAX_RANK];
        tl_contig_strides(&tt->shape, ct);
        for (int a = 0; a < tt->rank; a++) sc[tt->perm[a]] = ct[a];
        int r = tl_exec_matmul_layout(s, st, NULL, NULL, sc, err);
        if (r < 0) goto done;
        if (r > 0) continue;
        outview[i] = t;
        target[t] = true;
        memcpy(vstr[i], sc, sizeof sc);
    }
    /* in-views: candidates, tentative strides (as if every candidate were a view) */
    for (int64_t i = 0; i < n; i++) {
        tl_step *st = &s->steps[i];
        bool c = is_permute(st->op) && !F->cf[i] && !st->plant_bug && !is_out[i] && !target[i] &&
                 st->numel > 0;
        int64_t p = c ? st->node->parents[0] : -1;
        int64_t base[TL_MAX_RANK];
        if (c) {
            if (view[p]) memcpy(base, tent[p], sizeof base);   /* view[] holds "candidate" here */
            else tl_contig_strides(&s->shapes[p], base);
            permuted(st, base, tent[i]);
        }
        view[i] = c;
    }
    for (int64_t i = n - 1; i >= 0; i--) {   /* consumers decide: matmuls or in-views only */
        if (!view[i]) continue;
        bool ok = true;
        for (int64_t e = cstart[i]; e < cstart[i + 1] && ok; e++) {
            int64_t c = clist[e];
            const tl_node *cn = &g->nodes[c];
            if (cn->op == TL_OP_MATMUL && !s->steps[c].plant_bug && !F->cf[c]) {
                for (int k = 0; k < 2 && ok; k++)
                    if (cn->parents[k] == i) ok = operand_ok(&s->shapes[i], tent[i], k == 1);
            } else {
                ok = is_permute(cn->op) && view[c];
            }
        }
        view[i] = ok;
    }
    /* final strides over the real bases; demote until every view's consumers can read it (a
     * materialized parent changes its children's strides; a materialized child needs its
     * parent materialized) */
    for (bool changed = true; changed;) {
        changed = false;
        for (int64_t i = 0; i < n; i++) {
            if (!view[i]) continue;
            tl_step *st = &s->steps[i];
            int64_t p = st->node->parents[0];
            int64_t base[TL_MAX_RANK];
            if (view[p]) memcpy(base, vstr[p], sizeof base);
            else tl_contig_strides(&s->shapes[p], base);
            permuted(st, base, vstr[i]);
            bool ok = true;
            for (int64_t e = cstart[i]; e < cstart[i + 1] && ok; e++) {
                int64_t c = clist[e];
                const tl_node *cn = &g->nodes[c];
                if (cn->op == TL_OP_MATMUL) {
                    for (int k = 0; k < 2; k++)
                        if (cn->parents[k] == i && !operand_ok(&s->shapes[i], vstr[i], k == 1)) ok = false;
                } else {
                    ok = view[c];
                }
            }
            if (!ok) {
                view[i] = false;
                changed = true;
            }
        }
    }
    /* matmul geometry over the final layouts */
    for (int64_t i = 0; i < n; i++) {
        tl_step *st = &s->steps[i];
        if (st->op != TL_OP_MATMUL || F->cf[i]) continue;
        int64_t a = st->node->parents[0], b = st->node->parents[1];
        if (!view[a] && !view[b] && outview[i] < 0) continue;
        int r = tl_exec_matmul_layout(s, st, view[a] ? vstr[a] : NULL, view[b] ? vstr[b] : NULL,
                                      outview[i] >= 0 ? vstr[i] : NULL, err);
        if (r < 0) goto done;
        if (r > 0) {
            tl_errf(err, "node[%lld] (matmul): internal error: strided operand layout",
                    (long long)i);
            goto done;
        }
    }
    for (int64_t i = 0; i < n; i++)
        if (outview[i] >= 0) view[outview[i]] = true;   /* the permute aliases the matmul's storage */
    rc = 0;
done:
    free(cstart);
    free(clist);
    free(fill);
    free(target);
    free(tent);
    return rc;
}

int tl_session_new(tl_model *m, const tl_shape *input_shape, int flags, tl_session **out,
                   tl_err *err) {
    *out = NULL;
    if (!m || !m->g) return tl_errf(err, "tl_session_new: no model");
    const tl_graph *g = m->g;
    if (check_input_shape(g, input_shape, err)) return -1;
    int64_t n = g->n_nodes;
    size_t nz = (size_t)(n ? n : 1);
    tl_session *s = calloc(1, sizeof *s);
    if (!s) return tl_erroom(err, "out of memory");
    int rc = -1;
    s->m = m;
    s->flags = flags;
    s->n = n;
    s->in_shape = *input_shape;
    s->steps = calloc(nz, sizeof *s->steps);
    s->shapes = calloc(nz, sizeof *s->shapes);
    s->value = calloc(nz, sizeof *s->value);
    s->ns = calloc(nz, sizeof *s->ns);
    s->run = calloc(nz, sizeof *s->run);
    s->owned = calloc(nz, sizeof *s->owned);
    bool *bc = calloc(nz, sizeof *bc);
    int *bfo = calloc(nz, sizeof *bfo);
    int64_t *sid = malloc(sizeof(int64_t) * nz);
    int64_t *scr = malloc(sizeof(int64_t) * nz);    /* scratch storage per node or -1 */
    storage *S = calloc(2 * nz + 1, sizeof *S);      /* <= one value + one scratch each */
    fold_state F = { calloc(nz, sizeof(bool)), calloc(nz, sizeof(float *)),
                     calloc(nz, sizeof(int64_t)), calloc(nz, sizeof(float *)) };
    bool *is_out = calloc(nz, sizeof *is_out), *view = calloc(nz, sizeof *view);
    bool *needed = calloc(nz, sizeof *needed);
    int64_t *outview = calloc(nz, sizeof *outview);
    strides_t *vstr = calloc(nz, sizeof *vstr);
    int64_t ns = 0;
    s->n_out = g->n_outputs;
    s->out_ids = malloc(sizeof(int64_t) * (size_t)(g->n_outputs ? g->n_outputs : 1));
    if (!s->steps || !s->shapes || !s->value || !s->ns || !s->run || !s->owned || !bc || !bfo ||
        !sid || !scr || !S || !s->out_ids || !F.cf || !F.fv || !F.owner || !F.buf || !is_out ||
        !view || !needed || !outview || !vstr) {
        tl_erroom(err, "out of memory");
        goto fail;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        s->out_ids[i] = g->output_ids[i];
        is_out[g->output_ids[i]] = true;
    }
    if (tl_batch_shapes(g, input_shape, s->shapes, bc, bfo, err)) goto fail;

    const char *bug = getenv("TL_TEST_PLANT_BUG");
    bool keep = (flags & TL_SESSION_KEEP_ALL) != 0;

    /* steps + geometry */
    for (int64_t i = 0; i < n; i++) {
        const tl_node *nd = &g->nodes[i];
        tl_step *st = &s->steps[i];
        st->id = i;
        st->op = nd->op;
        st->node = nd;
        st->shape = s->shapes[i];
        st->n_in = nd->n_parents;
        st->plant_bug = bug && *bug && strcmp(bug, tl_op_tag(nd->op)) == 0;
        if (!tl_exec_known(nd->op)) {
            tl_errf(err, "node[%lld] (%s): not executable by the runtime", (long long)i,
                    tl_op_tag(nd->op));
            goto fail;
        }
        st->in = calloc((size_t)(nd->n_parents ? nd->n_parents : 1), sizeof *st->in);
        if (!st->in) {
            tl_erroom(err, "out of memory");
            goto fail;
        }
        if (tl_exec_prepare(s, st, err)) goto fail;
    }

    /* constants, replicated constant operands, zero-copy transposes */
    if (fold_constants(s, &F, err)) goto fail;
    if (plan_rep_operands(s, &F, bfo, err)) goto fail;
    if (plan_views(s, &F, is_out, view, outview, vstr, err)) goto fail;
    /* folded values still read at run time (or kept); free the others */
    for (int64_t i = 0; i < n; i++) {
        const tl_node *nd = &g->nodes[i];
        if (!F.cf[i] || F.owner[i] < 0) continue;
        bool need = keep || is_out[i];
        for (int64_t j = i + 1; j < n && !need; j++) {
            if (F.cf[j]) continue;
            const tl_node *c = &g->nodes[j];
            for (int k = 0; k < c->n_parents; k++)
                if (c->parents[k] == i && s->steps[j].bf_operand != k + 1) need = true;
        }
        (void)nd;
        if (need) needed[F.owner[i]] = true;
    }
    for (int64_t i = 0; i < n; i++) {
        if (!F.buf[i]) continue;
        if (needed[i]) s->owned[s->n_owned++] = F.buf[i];
        else free(F.buf[i]);
        F.buf[i] = NULL;
    }
    for (int64_t i = 0; i < n; i++)
        if (F.owner[i] >= 0 && !needed[F.owner[i]]) F.fv[i] = NULL;

    /* storages (aliases and views share; in-place decided after liveness) */
    for (int64_t i = 0; i < n; i++) {
        tl_step *st = &s->steps[i];
        const tl_node *nd = st->node;
        scr[i] = -1;
        if (F.cf[i]) {
            S[ns] = (storage){ TL_STORE_PARAM, 0, i, i, 0, F.fv[i], false };
            sid[i] = ns++;
            continue;
        }
        if ((is_alias_op(nd->op) && !st->plant_bug) || view[i]) {
            st->alias = true;
            /* a permute its matmul parent wrote into is materialized: a plain alias */
            st->view = view[i] && outview[nd->parents[0]] != i;
            sid[i] = sid[nd->parents[0]];
            continue;
        }
        S[ns] = (storage){ TL_STORE_ARENA, align64(st->numel * (int64_t)sizeof(float)), i, i, 0,
                           NULL, false };
        sid[i] = ns++;
        int64_t sc = tl_exec_scratch(st);
        if (sc > 0) {
            S[ns] = (storage){ TL_STORE_ARENA, align64(sc * (int64_t)sizeof(float)), i, i, 0, NULL,
                               false };
            scr[i] = ns++;
        }
        if (nd->op == TL_OP_INPUT) {
            s->input_numel = st->numel;
        } else {
            st->exec = st->bf_operand ? tl_exec_binary_rep : tl_exec_for(nd->op);
            st->out_view = outview[i] >= 0;
        }
    }
    /* liveness */
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_parents; k++) {
            storage *x = &S[sid[g->nodes[i].parents[k]]];
            if (x->last < i) x->last = i;
        }
    for (int i = 0; i < g->n_outputs; i++) S[sid[g->output_ids[i]]].last = LIVE_END;
    if (keep)
        for (int64_t k = 0; k < ns; k++) {
            S[k].def = 0;
            S[k].last = LIVE_END;
        }
    /* in-place elementwise: reuse a parent storage that dies here */
    if (!keep)
        for (int64_t i = 0; i < n; i++) {
            tl_step *st = &s->steps[i];
            const tl_node *nd = st->node;
            if (st->alias || F.cf[i] || !is_elementwise(tl_op_info(nd->op), nd->op)) continue;
            int cand = tl_op_info(nd->op)->elementwise_binary ? 2 : 1;
            for (int k = 0; k < cand; k++) {
                int64_t ps = sid[nd->parents[k]], me = sid[i];
                if (ps == me || S[ps].kind != TL_STORE_ARENA || S[ps].last != i) continue;
                if (S[ps].bytes != S[me].bytes) continue;
                S[ps].last = S[me].last;
                S[me].dead = true;
                for (int64_t j = i; j < n; j++)
                    if (sid[j] == me) sid[j] = ps;
                st->in_place = true;
                break;
            }
        }

    int64_t total = place(S, ns);
    if (total < 0) {
        tl_erroom(err, "out of memory");
        goto fail;
    }
    s->arena_bytes = align64(total);
    {   /* at least one cache line, so that empty values still point into the arena */
        s->arena = aligned_alloc(64, (size_t)(s->arena_bytes ? s->arena_bytes : 64));
        if (!s->arena) {
            tl_erroom(err, "out of memory: arena of %lld bytes", (long long)s->arena_bytes);
            goto fail;
        }
        memset(s->arena, 0, (size_t)(s->arena_bytes ? s->arena_bytes : 64));
    }
    for (int64_t i = 0; i < n; i++) {
        storage *x = &S[sid[i]];
        s->value[i] = x->kind == TL_STORE_PARAM ? (float *)x->param
                                                 : (float *)(s->arena + x->offset);
    }
    for (int64_t i = 0; i < n; i++) {
        tl_step *st = &s->steps[i];
        const tl_node *nd = st->node;
        st->out = s->value[i];
        for (int k = 0; k < nd->n_parents; k++) st->in[k] = s->value[nd->parents[k]];
        if (st->bf_operand) st->in[st->bf_operand - 1] = st->rep_buf;
        if (scr[i] >= 0) st->scratch = (float *)(s->arena + S[scr[i]].offset);
        if (nd->op == TL_OP_INPUT) s->input_buf = st->out;
        if (st->exec) s->run[s->n_run++] = st;
    }
    /* which values stay readable after a run: materialized in their own layout, and either
     * live to the end or constant */
    for (int64_t i = 0; i < n; i++) {
        tl_step *st = &s->steps[i];
        bool layout = !st->view && !st->out_view;
        st->kept = layout && s->value[i] &&
                   (S[sid[i]].last == LIVE_END || S[sid[i]].kind == TL_STORE_PARAM);
    }
    *out = s;
    rc = 0;
fail: /* success falls through here too: the planning scratch is freed either way */
    if (rc) {
        if (F.buf)
            for (int64_t i = 0; i < n; i++) free(F.buf[i]);
        tl_session_free(s);
    }
    free(bc);
    free(bfo);
    free(sid);
    free(scr);
    free(S);
    free(F.cf);
    free(F.fv);
    free(F.owner);
    free(F.buf);
    free(is_out);
    free(view);
    free(needed);
    free(outview);
    free(vstr);
    return rc;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int tl_session_run(tl_session *s, const float *input, tl_err *err) {
    if (!s) return tl_errf(err, "tl_session_run: no session");
    if (!input && s->input_numel) return tl_errf(err, "tl_session_run: no input");
    tl_step *const *run = s->run;
    int64_t nr = s->n_run;
    if (!(s->flags & TL_SESSION_PROFILE)) {
        if (s->input_numel) {
            memcpy(s->input_buf, input, (size_t)s->input_numel * sizeof(float));
            if (s->steps[s->m->g->input_id].plant_bug) plant(&s->steps[s->m->g->input_id], s->input_buf);
        }
        for (int64_t k = 0; k < nr; k++) {
            const tl_step *st = run[k];
            st->exec(st, (const float *const *)st->in, st->out);
            if (st->plant_bug) plant(st, st->out);
        }
        return 0;
    }
    int64_t t0 = now_ns();
    int64_t in_id = s->m->g->input_id;
    if (s->input_numel) {
        memcpy(s->input_buf, input, (size_t)s->input_numel * sizeof(float));
        if (s->steps[in_id].plant_bug) plant(&s->steps[in_id], s->input_buf);
    }
    s->ns[in_id] = now_ns() - t0;
    for (int64_t k = 0; k < nr; k++) {
        const tl_step *st = run[k];
        t0 = now_ns();
        st->exec(st, (const float *const *)st->in, st->out);
        if (st->plant_bug) plant(st, st->out);
        s->ns[st->id] = now_ns() - t0;
    }
    return 0;
}

int tl_session_n_outputs(const tl_session *s) { return s ? s->n_out : 0; }

const float *tl_session_output(const tl_session *s, int i, tl_shape *shape) {
    if (!s || i < 0 || i >= s->n_out) return NULL;
    int64_t id = s->out_ids[i];
    if (shape) *shape = s->shapes[id];
    return s->value[id];
}

const float *tl_session_node_value(const tl_session *s, int64_t id, tl_shape *shape, tl_err *err) {
    if (!s || id < 0 || id >= s->n) {
        tl_errf(err, "node[%lld]: no such node", (long long)id);
        return NULL;
    }
    if (!(s->flags & TL_SESSION_KEEP_ALL) && !s->steps[id].kept) {
        tl_errf(err, "node[%lld]: value is not kept after the run (use TL_SESSION_KEEP_ALL)",
                (long long)id);
        return NULL;
    }
    if (shape) *shape = s->shapes[id];
    return s->value[id];
}

int64_t tl_session_node_ns(const tl_session *s, int64_t id) {
    if (!s || id < 0 || id >= s->n) return 0;
    return s->ns[id];
}

int tl_session_eval_node(tl_session *s, int64_t id, const float *const *parent_values, float *out,
                         tl_err *err) {
    if (!s || id < 0 || id >= s->n) return tl_errf(err, "node[%lld]: no such node", (long long)id);
    const tl_step *st = &s->steps[id];
    const tl_node *nd = st->node;
    if (nd->op == TL_OP_INPUT)
        return tl_errf(err, "node[%lld] (input): has no parents to evaluate from", (long long)id);
    if (nd->op == TL_OP_CONST) {
        memcpy(out, nd->param[0]->data, (size_t)st->numel * sizeof(float));
    } else {
        if (nd->n_parents > 0 && !parent_values)
            return tl_errf(err, "node[%lld]: no parent values", (long long)id);
        if (st->bf_operand && tl_shape_numel(&s->shapes[nd->parents[st->bf_operand - 1]]) !=
                                  st->numel) {
            /* re-batched: the batch-free operand holds the captured batch; use its first sample
             * for every sample */
            const tl_shape *ps = &s->shapes[nd->parents[st->bf_operand - 1]];
            int64_t per = ps->dim[0] ? tl_shape_numel(ps) / ps->dim[0] : 0;
            int k = st->bf_operand - 1;
            for (int64_t o = 0; per > 0 && o < st->numel; o += per) {
                const float *a = k == 0 ? parent_values[0] : parent_values[0] + o;
                const float *b = k == 1 ? parent_values[1] : parent_values[1] + o;
                tl_kernels()->binary((tl_binary)st->code, a, b, out + o, per);
            }
        } else if (st->op == TL_OP_MATMUL && st->mm_strided) {
            /* the plan reads strided views; isolated parents are contiguous */
            tl_step tmp = *st;
            tmp.a_off = tmp.b_off = tmp.c_off = NULL;
            int rc = tl_exec_matmul_layout(s, &tmp, NULL, NULL, NULL, err);
            if (rc == 0) tl_exec_for(nd->op)(&tmp, parent_values, out);
            free(tmp.a_off);
            free(tmp.b_off);
            free(tmp.c_off);
            if (rc) return rc < 0 ? -1 : tl_errf(err, "node[%lld] (matmul): bad geometry", (long long)id);
        } else if (tl_exec_scratch(st) > 0) {
            /* own scratch: the plan's scratch slot may hold other values (kept outputs) now */
            tl_step tmp = *st;
            tmp.scratch = malloc(sizeof(float) * (size_t)tl_exec_scratch(st));
            if (!tmp.scratch) return tl_erroom(err, "out of memory");
            tl_exec_for(nd->op)(&tmp, parent_values, out);
            free(tmp.scratch);
        } else {
            tl_exec_for(nd->op)(st, parent_values, out);
        }
    }
    if (st->plant_bug) plant(st, out);
    return 0;
}

int64_t tl_session_arena_bytes(const tl_session *s) { return s ? s->arena_bytes : 0; }

const char *tl_session_node_plan(const tl_session *s, int64_t id) {
    if (!s || id < 0 || id >= s->n) return NULL;
    const tl_step *st = &s->steps[id];
    if (st->op == TL_OP_INPUT) return "input";
    if (st->folded) return "folded";
    if (st->view) return "view";
    if (st->alias) return "alias";
    return "run";
}

const tl_shape *tl_session_node_shape(const tl_session *s, int64_t id) {
    if (!s || id < 0 || id >= s->n) return NULL;
    return &s->shapes[id];
}

int tl_session_write_plan(const tl_session *s, FILE *out, tl_err *err) {
    if (!s || !out) return tl_errk(err, TL_ERR_INTERNAL, "tl_session_write_plan: no session");
    const tl_graph *g = s->m->g;
    fprintf(out, "plan: %lld nodes, %lld run per call, arena %lld bytes\n", (long long)s->n,
            (long long)s->n_run, (long long)s->arena_bytes);
    fprintf(out, "%6s  %-16s %-16s %-22s %s\n", "id", "kind", "plan", "shape", "storage");
    for (int64_t i = 0; i < s->n; i++) {
        const tl_step *st = &s->steps[i];
        char shape[TL_SHAPE_STR_MAX], plan[32], where[96];
        tl_shape_str(&s->shapes[i], shape, sizeof shape);
        snprintf(plan, sizeof plan, "%s%s", tl_session_node_plan(s, i), st->in_place ? " in-place" : "");
        const char *v = (const char *)s->value[i];
        int64_t bytes = st->numel * (int64_t)sizeof(float);
        if (st->view || (st->alias && !st->folded))
            snprintf(where, sizeof where, "view of node[%lld]", (long long)g->nodes[i].parents[0]);
        else if (v && v >= s->arena && v < s->arena + (s->arena_bytes ? s->arena_bytes : 64))
            snprintf(where, sizeof where, "arena +%lld %lld", (long long)(v - s->arena), (long long)bytes);
        else
            snprintf(where, sizeof where, "param %lld", (long long)bytes);
        fprintf(out, "%6lld  %-16s %-16s %-22s %s\n", (long long)i, tl_op_tag(g->nodes[i].op), plan, shape, where);
    }
    if (ferror(out)) return tl_errk(err, TL_ERR_IO, "cannot write the plan");
    return 0;
}
