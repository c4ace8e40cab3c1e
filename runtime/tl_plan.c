/* tl_plan.c - the execution plan of a model for one input shape (tl_session_new).
 *
 * Planning runs as named phases over one plan struct (tl_plan below); each phase reads what the
 * earlier ones decided and is linear in the graph size (plus the memory planner's n log n):
 *
 *   plan_shapes     session shapes: the declared ones, or batch-substituted (tl_batch.c)
 *   plan_steps      one step per node: the op family's prepare (per-op data, exec function and
 *                   kernels resolved once, scratch size)
 *   plan_consumers  who reads each node (CSR), once
 *   plan_fold       constant folding: every node that does not depend on the input is evaluated
 *                   here, with the exec function a run would use (so bitwise what a run computes)
 *   plan_rep        a binary op with a constant operand that repeats (a per-sample constant in a
 *                   re-batched session, a periodic constant) reads a small replicated copy of one
 *                   period of it
 *   plan_views      zero-copy transposes around matmul (read through sgemm's trans/ld, or written
 *                   straight into the consumer's layout)
 *   plan_fuse       rewrites that change rounding (off under TL_SESSION_EXACT): a per-channel
 *                   affine op (batch norm) whose only parent is a conv/linear read by it alone is
 *                   folded into that parent's weights and shares its storage; then bitwise ones
 *                   (on under EXACT too): a residual add and relu / max / min with a constant
 *                   after a conv/linear become its epilogue; then chains of elementwise nodes
 *                   whose intermediate values nobody else reads run as one pass (bitwise, on
 *                   under EXACT: tl_ew_chain.c). All off under KEEP_ALL
 *   plan_drop_folded  folded values nobody reads at run time are freed
 *   plan_storages   every value lives in a storage: aliases (reshape/flatten/detach) and views
 *                   share their parent's; consts point at the model's tensor; the rest get arena
 *                   storages (+ scratch storages living during their node only)
 *   plan_liveness   a storage lives from its defining node to its last reader (through any
 *                   alias); outputs to the end; KEEP_ALL: everything lives for the whole run
 *   plan_in_place   an elementwise op (TL_F_INPLACE) whose parent storage dies at that node
 *                   writes into it (merged lifetimes, forwarding instead of renumbering)
 *   plan_place      the memory planner (tl_memplan.c) places the storages in one arena; a plan
 *                   over the memory limit is refused naming its largest value
 *   plan_bind       parent/output/scratch pointers resolved once; the run list; what stays
 *                   readable after a run
 *
 * tl_session_run then is a loop over the run list: no allocation, no shape arithmetic, no test
 * hooks. The planted-bug test switch (env TL_TEST_PLANT_BUG=<tag>, read once per session; adds
 * 1e-2 to every output element of the nodes with that tag) is a wrapper exec function installed
 * on the matching steps only, so it costs nothing elsewhere.
 * How the no-allocation promise is checked: tests/c/test_runtime.c interposes malloc & co. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tl_memplan.h"
#include "tl_runtime_internal.h"

#define LIVE_END INT64_MAX
#define REP_FLOATS 16384 /* a periodic constant operand is replicated up to 64 KiB */

typedef int64_t strides_t[TL_MAX_RANK];

typedef enum tl_store_kind {
    TL_STORE_ARENA = 0, /* a slot of the session arena */
    TL_STORE_PARAM,     /* a constant: the model's tensor or a folded value, never written */
} tl_store_kind;

typedef struct storage {
    tl_store_kind kind;
    int64_t bytes;
    int64_t def, last; /* lifetime, node indices (inclusive) */
    int64_t offset;    /* arena offset after plan_place */
    int64_t node;      /* the node that defines it (error messages) */
    int64_t fwd;       /* merged into another storage (in place): that one; else -1 */
    float *param;      /* TL_STORE_PARAM (never written: a constant) */
} storage;

/* Planning state of one tl_session_new call; everything here is freed when planning ends
 * (plan_free) except what was handed to the session. */
typedef struct tl_plan {
    tl_session *s;
    const tl_graph *g;
    tl_err *err;
    int64_t n;
    bool keep;       /* TL_SESSION_KEEP_ALL */
    bool exact;      /* TL_SESSION_EXACT: no rounding-changing rewrites */
    bool f64;        /* TL_SESSION_FLOAT64: doubles everywhere (values are double * stored in the
                      * float * slots below, never read as floats); implies exact */
    int64_t esz;     /* bytes per element: 4 or 8 */
    const char *bug; /* TL_TEST_PLANT_BUG, or NULL */
    /* per node */
    bool *is_out;
    bool *bc;                /* batch-carrying */
    int *bfo;                /* 1 + batch-free per-sample operand of a binary op, or 0 */
    int64_t *cstart, *clist; /* consumers: clist[cstart[i] .. cstart[i+1]) read node i */
    bool *cf;                /* constant (folded) */
    float **fv;              /* folded value (model tensor, or a buffer of fbuf[owner]) */
    int64_t *owner;          /* node whose buffer fv points into; -1: the model's tensor */
    float **fbuf;            /* malloc'd folded value per owner node */
    bool *view;              /* read in place by matmul (or aliasing a matmul's output) */
    bool *absorbed;          /* its storage holds a fused consumer's value, not its own */
    int *fpar;               /* fused node: the parent whose storage it shares (0 but for add) */
    int64_t *resid;          /* producer with a fused residual add: the other operand, else -1 */
    int64_t *outview;        /* matmul writing into this permute's layout, or -1 */
    int64_t *chain_at;       /* member of an elementwise chain: the head that computes it, else -1 */
    strides_t *vstr;         /* strides of a view over its base storage */
    /* storages */
    storage *S;
    int64_t ns;
    int64_t *sid; /* storage of each node's value */
    int64_t *scr; /* scratch storage of each node, or -1 */
} tl_plan;

static int64_t align64(int64_t x) { return (x + 63) & ~(int64_t)63; }

static int64_t find(tl_plan *P, int64_t k) { /* storage forwarding, with path halving */
    while (P->S[k].fwd >= 0) {
        int64_t f = P->S[k].fwd;
        if (P->S[f].fwd >= 0) P->S[k].fwd = P->S[f].fwd;
        k = f;
    }
    return k;
}

static void plan_free(tl_plan *P) {
    if (P->fbuf)
        for (int64_t i = 0; i < P->n; i++) free(P->fbuf[i]);
    free(P->is_out);
    free(P->bc);
    free(P->bfo);
    free(P->cstart);
    free(P->clist);
    free(P->cf);
    free(P->fv);
    free(P->owner);
    free(P->fbuf);
    free(P->view);
    free(P->absorbed);
    free(P->fpar);
    free(P->resid);
    free(P->outview);
    free(P->chain_at);
    free(P->vstr);
    free(P->S);
    free(P->sid);
    free(P->scr);
}

/* Memory this process may use for a plan: TL_MEMORY_LIMIT (bytes) if set, else the machine's
 * physical memory. A plan above it is refused before anything large is allocated. */
static int64_t memory_limit(void) {
    const char *e = getenv("TL_MEMORY_LIMIT");
    if (e && *e) {
        char *end = NULL;
        long long v = strtoll(e, &end, 10);
        if (end && !*end && v > 0) return v;
    }
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages > 0 && psz > 0) return (int64_t)pages * (int64_t)psz;
    return INT64_MAX;
}

/* The input-shape check of the public API (the batch may differ). */
static int check_input_shape(const tl_graph *g, const tl_shape *in, tl_err *err) {
    const tl_shape *cap = &g->nodes[g->input_id].shape;
    bool ok = in->rank == cap->rank;
    for (int i = 1; ok && i < in->rank; i++) ok = in->dim[i] == cap->dim[i];
    if (!ok) return tl_errf(err, "shape %s does not match the graph input %s", TL_SHAPE_STR(in), TL_SHAPE_STR(cap));
    return 0;
}

/* ---------------------------------------------------------------- test hook: planted bug */
static void plant(const tl_step *st, float *y) {
    for (int64_t i = 0; i < st->numel; i++) y[i] += 1e-2f;
}
static void exec_planted(const tl_step *st, const float *const *in, float *out) {
    if (st->kernel) st->kernel(st, in, out);
    plant(st, out);
}
static void plant64(const tl_step *st, double *y) {
    for (int64_t i = 0; i < st->numel; i++) y[i] += 1e-2;
}
static void exec_planted64(const tl_step *st, const double *const *in, double *out) {
    if (st->kernel64) st->kernel64(st, in, out);
    plant64(st, out);
}

/* ---------------------------------------------------------------- phases */
static int plan_alloc(tl_plan *P) {
    size_t nz = (size_t)(P->n ? P->n : 1);
    tl_session *s = P->s;
    s->steps = calloc(nz, sizeof *s->steps);
    s->shapes = calloc(nz, sizeof *s->shapes);
    s->value = calloc(nz, sizeof *s->value);
    s->ns = calloc(nz, sizeof *s->ns);
    s->run = calloc(nz + 1, sizeof *s->run);
    s->owned = calloc(nz, sizeof *s->owned);
    s->out_ids = malloc(sizeof(int64_t) * (size_t)(P->g->n_outputs ? P->g->n_outputs : 1));
    P->is_out = calloc(nz, sizeof *P->is_out);
    P->bc = calloc(nz, sizeof *P->bc);
    P->bfo = calloc(nz, sizeof *P->bfo);
    P->cstart = calloc(nz + 1, sizeof *P->cstart);
    P->cf = calloc(nz, sizeof *P->cf);
    P->fv = calloc(nz, sizeof *P->fv);
    P->owner = malloc(sizeof *P->owner * nz);
    P->fbuf = calloc(nz, sizeof *P->fbuf);
    P->view = calloc(nz, sizeof *P->view);
    P->absorbed = calloc(nz, sizeof *P->absorbed);
    P->fpar = calloc(nz, sizeof *P->fpar);
    P->resid = malloc(sizeof *P->resid * nz);
    P->outview = malloc(sizeof *P->outview * nz);
    P->chain_at = malloc(sizeof *P->chain_at * nz);
    P->vstr = calloc(nz, sizeof *P->vstr);
    P->S = calloc(2 * nz + 1, sizeof *P->S); /* <= one value + one scratch each */
    P->sid = malloc(sizeof *P->sid * nz);
    P->scr = malloc(sizeof *P->scr * nz);
    if (!s->steps || !s->shapes || !s->value || !s->ns || !s->run || !s->owned || !s->out_ids || !P->is_out ||
        !P->bc || !P->bfo || !P->cstart || !P->cf || !P->fv || !P->owner || !P->fbuf || !P->view || !P->absorbed ||
        !P->fpar || !P->resid || !P->outview || !P->chain_at || !P->vstr || !P->S || !P->sid || !P->scr)
        return tl_erroom(P->err, "out of memory planning %lld nodes", (long long)P->n);
    for (int64_t i = 0; i < P->n; i++) {
        P->owner[i] = -1;
        P->outview[i] = -1;
        P->chain_at[i] = -1;
        P->scr[i] = -1;
        P->resid[i] = -1;
    }
    s->n_out = P->g->n_outputs;
    for (int i = 0; i < P->g->n_outputs; i++) {
        s->out_ids[i] = P->g->output_ids[i];
        P->is_out[P->g->output_ids[i]] = true;
    }
    return 0;
}

static int plan_shapes(tl_plan *P) {
    return tl_batch_shapes(P->g, &P->s->in_shape, P->s->shapes, P->bc, P->bfo, P->err);
}

/* float64: every parameter in double, once: the tensor's data64 (its source's exact values) when
 * present, else its float32 data widened (exact). */
static int plan_params64(tl_plan *P) {
    if (!P->f64) return 0;
    tl_session *s = P->s;
    size_t nz = (size_t)(P->n ? P->n : 1) * TL_MAX_PARAMS;
    s->prm64 = calloc(nz, sizeof *s->prm64);
    s->prm64_owned = calloc(nz, sizeof *s->prm64_owned);
    if (!s->prm64 || !s->prm64_owned) return tl_erroom(P->err, "out of memory planning %lld nodes", (long long)P->n);
    for (int64_t i = 0; i < P->n; i++)
        for (int k = 0; k < TL_MAX_PARAMS; k++) {
            const tl_tensor *t = P->g->nodes[i].param[k];
            if (!t || !t->data) continue;
            size_t j = (size_t)i * TL_MAX_PARAMS + (size_t)k;
            if (t->data64) {
                s->prm64[j] = t->data64;
                continue;
            }
            int64_t ne = tl_shape_numel(&t->shape);
            double *d = malloc(sizeof(double) * (size_t)(ne > 0 ? ne : 1));
            if (!d)
                return tl_erroom(P->err, "node[%lld]: out of memory widening a parameter of %lld elements",
                                 (long long)i, (long long)ne);
            for (int64_t e = 0; e < ne; e++) d[e] = (double)t->data[e];
            s->prm64[j] = d;
            s->prm64_owned[j] = true;
        }
    return 0;
}

static int plan_steps(tl_plan *P) {
    tl_session *s = P->s;
    tl_prep_ctx pc = {s->shapes, tl_kernels(), P->exact};
    const tl_kernel64_table *K64 = tl_kernels64();
    for (int64_t i = 0; i < P->n; i++) {
        const tl_node *nd = &P->g->nodes[i];
        tl_step *st = &s->steps[i];
        st->id = i;
        st->op = nd->op;
        st->node = nd;
        st->row = tl_op_info(nd->op);
        st->K = pc.K;
        st->shape = s->shapes[i];
        st->numel = tl_shape_numel(&st->shape);
        st->n_in = nd->n_parents;
        st->plant_bug = P->bug && strcmp(P->bug, st->row->tag) == 0;
        if (!st->row->executable || !st->row->fam || !st->row->fam->prepare)
            return tl_errk(P->err, TL_ERR_UNSUPPORTED, "node[%lld] (%s): not executable by the runtime", (long long)i,
                           st->row->tag);
        st->in = calloc((size_t)(nd->n_parents ? nd->n_parents : 1), sizeof *st->in);
        if (!st->in) return tl_erroom(P->err, "node[%lld] (%s): out of memory", (long long)i, st->row->tag);
        st->K64 = K64;
        if (P->f64) {
            st->in64 = calloc((size_t)(nd->n_parents ? nd->n_parents : 1), sizeof *st->in64);
            if (!st->in64) return tl_erroom(P->err, "node[%lld] (%s): out of memory", (long long)i, st->row->tag);
            for (int k = 0; k < TL_MAX_PARAMS; k++) st->prm64[k] = s->prm64[i * TL_MAX_PARAMS + k];
        }
        if (st->row->fam->prepare(&pc, st, P->err)) return -1;
        if (P->f64 && st->kernel && !st->kernel64)
            return tl_errk(P->err, TL_ERR_UNSUPPORTED, "node[%lld] (%s): no float64 kernel", (long long)i,
                           st->row->tag);
    }
    return 0;
}

static int plan_consumers(tl_plan *P) {
    const tl_graph *g = P->g;
    int64_t total = 0;
    for (int64_t i = 0; i < P->n; i++) total += g->nodes[i].n_parents;
    P->clist = malloc(sizeof *P->clist * (size_t)(total ? total : 1));
    int64_t *fill = calloc((size_t)(P->n ? P->n : 1), sizeof *fill);
    if (!P->clist || !fill) {
        free(fill);
        return tl_erroom(P->err, "out of memory planning %lld edges", (long long)total);
    }
    for (int64_t i = 0; i < P->n; i++)
        for (int k = 0; k < g->nodes[i].n_parents; k++) P->cstart[g->nodes[i].parents[k] + 1]++;
    for (int64_t i = 0; i < P->n; i++) P->cstart[i + 1] += P->cstart[i];
    for (int64_t i = 0; i < P->n; i++)
        for (int k = 0; k < g->nodes[i].n_parents; k++) {
            int64_t p = g->nodes[i].parents[k];
            P->clist[P->cstart[p] + fill[p]++] = i;
        }
    free(fill);
    return 0;
}

static int plan_fold(tl_plan *P) {
    const tl_graph *g = P->g;
    tl_session *s = P->s;
    int64_t limit = memory_limit(), held = 0;
    for (int64_t i = 0; i < P->n; i++) {
        const tl_node *nd = &g->nodes[i];
        tl_step *st = &s->steps[i];
        if (nd->op == TL_OP_INPUT) continue;
        bool all = true;
        for (int k = 0; k < nd->n_parents && all; k++) all = P->cf[nd->parents[k]];
        if (!all) continue;
        P->cf[i] = true;
        st->folded = true;
        /* the const's value: the model's tensor (float64: the session's double copy) */
        float *cval = NULL;
        if (nd->op == TL_OP_CONST) {
            if (!nd->param[0] || !nd->param[0]->data)
                return tl_errf(P->err, "node[%lld] (const): value is not bound", (long long)i);
            cval = P->f64 ? (float *)s->prm64[i * TL_MAX_PARAMS] : nd->param[0]->data;
            if (!st->plant_bug) {
                P->fv[i] = cval;
                continue;
            }
        }
        if (st->row->alias && !st->plant_bug) {
            P->fv[i] = P->fv[nd->parents[0]];
            P->owner[i] = P->owner[nd->parents[0]];
            continue;
        }
        int64_t bytes = (st->numel > 0 ? st->numel : 1) * P->esz;
        int64_t sbytes = P->f64 ? st->scratch64 * P->esz : st->scratch_floats * (int64_t)sizeof(float);
        if (bytes + sbytes > limit - held)
            return tl_erroom(P->err,
                             "node[%lld] (%s): its constant value %s needs %lld bytes, over the memory limit "
                             "of %lld bytes",
                             (long long)i, st->row->tag, TL_SHAPE_STR(&st->shape), (long long)(bytes + sbytes),
                             (long long)limit);
        float *out = malloc((size_t)bytes);
        float *scratch = sbytes > 0 ? malloc((size_t)sbytes) : NULL;
        if (!out || (sbytes > 0 && !scratch)) {
            free(out);
            free(scratch);
            return tl_erroom(P->err, "node[%lld] (%s): out of memory folding a constant of %lld bytes", (long long)i,
                             st->row->tag, (long long)(bytes + sbytes));
        }
        held += bytes;
        for (int k = 0; k < nd->n_parents; k++) st->in[k] = P->fv[nd->parents[k]];
        if (nd->op == TL_OP_CONST) st->in[0] = cval;
        if (P->f64) {
            for (int k = 0; k < nd->n_parents; k++) st->in64[k] = (const double *)st->in[k];
            if (nd->op == TL_OP_CONST) st->in64[0] = (const double *)cval;
            st->scratch64p = (double *)(void *)scratch;
            if (st->kernel64) st->kernel64(st, st->in64, (double *)(void *)out);
            st->scratch64p = NULL;
            if (st->plant_bug) plant64(st, (double *)(void *)out);
        } else {
            st->scratch = scratch;
            if (st->kernel) st->kernel(st, st->in, out);
            st->scratch = NULL;
            if (st->plant_bug) plant(st, out);
        }
        free(scratch);
        P->fv[i] = out;
        P->owner[i] = i;
        P->fbuf[i] = out;
    }
    return 0;
}

/* Smallest period p (a product of trailing dims, or 1) with v[j] == v[j % p] bitwise for all j,
 * among those dividing `limit` floats; 0 if none. */
static int64_t value_period(const float *v, const tl_shape *sh, int64_t limit, int64_t esz) {
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
        const char *b = (const char *)v;
        for (int64_t j = p; j < numel && ok; j += p) ok = memcmp(b, b + j * esz, (size_t)(esz * p)) == 0;
        if (ok) return p;
    }
    return 0;
}

static int batch_mix_err(tl_plan *P, int64_t i) {
    const tl_shape *cap = &P->g->nodes[P->g->input_id].shape;
    int64_t B = cap->rank ? cap->dim[0] : 1, N = P->s->in_shape.rank ? P->s->in_shape.dim[0] : 1;
    return tl_errk(P->err, TL_ERR_UNSUPPORTED,
                   "batch %lld does not fit the graph: node[%lld] (%s) mixes the batch axis (captured batch %lld)",
                   (long long)N, (long long)i, tl_op_tag(P->g->nodes[i].op), (long long)B);
}

static int plan_rep(tl_plan *P) {
    const tl_graph *g = P->g;
    tl_session *s = P->s;
    for (int64_t i = 0; i < P->n; i++) {
        const tl_node *nd = &g->nodes[i];
        tl_step *st = &s->steps[i];
        if (P->cf[i] || !st->row->elementwise_binary || nd->n_parents != 2 || st->numel == 0) continue;
        int k = P->cf[nd->parents[0]] ? 0 : P->cf[nd->parents[1]] ? 1 : -1;
        if (k < 0) continue;
        int64_t p = nd->parents[k];
        const tl_shape *ps = &s->shapes[p];
        int64_t pn = tl_shape_numel(ps);
        int64_t limit = pn;
        if (P->bfo[i]) { /* batch-free operand of a re-batched node: one sample of it */
            if (ps->rank == 0 || ps->dim[0] <= 0) return batch_mix_err(P, i);
            limit = pn / ps->dim[0];
        } else if (pn != st->numel) {
            continue;
        }
        int64_t per = value_period(P->fv[p], ps, limit, P->esz);
        if (per == 0) {
            if (P->bfo[i]) return batch_mix_err(P, i);
            continue;
        }
        if (!P->bfo[i] && per == pn) continue; /* not periodic: read the folded value */
        if (P->f64) {                 /* the operand in double: one period (the exec walks the output by periods) */
            if (!P->bfo[i]) continue; /* a periodic constant is only a speed-up: read it whole */
            double *rb = malloc(sizeof(double) * (size_t)per);
            if (!rb) return tl_erroom(P->err, "node[%lld] (%s): out of memory", (long long)i, st->row->tag);
            memcpy(rb, P->fv[p], sizeof(double) * (size_t)per);
            tl_binary_set_rep64(st, k, rb, 1, per);
            continue;
        }
        int64_t rep = REP_FLOATS / per;
        if (rep < 1) rep = 1;
        int64_t need = (st->numel + per - 1) / per;
        if (rep > need) rep = need;
        float *rb = malloc(sizeof(float) * (size_t)(rep * per));
        if (!rb) return tl_erroom(P->err, "node[%lld] (%s): out of memory", (long long)i, st->row->tag);
        for (int64_t r = 0; r < rep; r++) memcpy(rb + r * per, P->fv[p], sizeof(float) * (size_t)per);
        tl_binary_set_rep(st, k, rb, rep, per);
    }
    return 0;
}

static bool is_permute(tl_op op) { return op == TL_OP_PERMUTE || op == TL_OP_TRANSPOSE; }

static bool operand_ok(const tl_shape *sh, const int64_t *st, bool is_b) {
    bool t;
    int64_t ld;
    int r = sh->rank;
    if (r == 0) return false;
    if (r == 1)
        return is_b ? tl_mat_layout(sh->dim[0], 1, st[0], 1, &t, &ld)
                    : tl_mat_layout(1, sh->dim[0], sh->dim[0], st[0], &t, &ld);
    return tl_mat_layout(sh->dim[r - 2], sh->dim[r - 1], st[r - 2], st[r - 1], &t, &ld);
}

static void permuted(const tl_step *st, const int64_t *src, int64_t *dst) {
    for (int i = 0; i < st->p.mv.rank; i++) dst[i] = src[st->p.mv.perm[i]];
}

/* Zero-copy transposes around matmul.
 *  - out-view: a matmul whose only consumer is a permute/transpose keeping the last axis writes
 *    its product straight into that node's layout (ldc + per-batch offsets); the permute is
 *    then an alias of that storage.
 *  - in-view: a permute/transpose whose consumers are all matmuls (or other in-views) is not
 *    materialized: each matmul reads its base storage through tl_sgemm's trans/lda arguments.
 * Off for KEEP_ALL, outputs, planted bugs and folded nodes (every such value is materialized). */
static int plan_views(tl_plan *P) {
    if (P->keep || P->f64) return 0; /* float64: every transpose materialized (dgemm, contiguous) */
    const tl_graph *g = P->g;
    tl_session *s = P->s;
    int64_t n = P->n;
    const int64_t *cstart = P->cstart, *clist = P->clist;
    bool *view = P->view;
    size_t nz = (size_t)(n > 0 ? n : 1);
    bool *target = calloc(nz, sizeof *target); /* out-view targets */
    strides_t *tent = malloc(sizeof *tent * nz);
    int rc = -1;
    if (!target || !tent) {
        tl_erroom(P->err, "out of memory planning views of %lld nodes", (long long)n);
        goto done;
    }
    /* out-views */
    for (int64_t i = 0; i < n; i++) {
        tl_step *st = &s->steps[i];
        if (st->op != TL_OP_MATMUL || P->cf[i] || st->plant_bug || P->is_out[i] || st->numel == 0) continue;
        if (cstart[i + 1] - cstart[i] != 1) continue;
        int64_t t = clist[cstart[i]];
        tl_step *tt = &s->steps[t];
        if (!is_permute(tt->op) || tt->plant_bug || P->cf[t] || tt->p.mv.rank != st->shape.rank ||
            tt->p.mv.rank < 2 || tt->p.mv.perm[tt->p.mv.rank - 1] != tt->p.mv.rank - 1)
            continue;
        int64_t ct[TL_MAX_RANK], sc[TL_MAX_RANK];
        tl_contig_strides(&tt->shape, ct);
        for (int a = 0; a < tt->p.mv.rank; a++) sc[tt->p.mv.perm[a]] = ct[a];
        int r = tl_matmul_layout(s->shapes, st, NULL, NULL, sc, P->err);
        if (r < 0) goto done;
        if (r > 0) continue;
        P->outview[i] = t;
        target[t] = true;
        memcpy(P->vstr[i], sc, sizeof sc);
    }
    /* in-views: candidates, tentative strides (as if every candidate were a view) */
    for (int64_t i = 0; i < n; i++) {
        tl_step *st = &s->steps[i];
        bool c = is_permute(st->op) && !P->cf[i] && !st->plant_bug && !P->is_out[i] && !target[i] && st->numel > 0;
        int64_t p = c ? st->node->parents[0] : -1;
        int64_t base[TL_MAX_RANK];
        if (c) {
            if (view[p]) memcpy(base, tent[p], sizeof base); /* view[] holds "candidate" here */
            else tl_contig_strides(&s->shapes[p], base);
            permuted(st, base, tent[i]);
        }
        view[i] = c;
    }
    for (int64_t i = n - 1; i >= 0; i--) { /* consumers decide: matmuls or in-views only */
        if (!view[i]) continue;
        bool ok = true;
        for (int64_t e = cstart[i]; e < cstart[i + 1] && ok; e++) {
            int64_t c = clist[e];
            const tl_node *cn = &g->nodes[c];
            if (cn->op == TL_OP_MATMUL && !s->steps[c].plant_bug && !P->cf[c]) {
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
            if (view[p]) memcpy(base, P->vstr[p], sizeof base);
            else tl_contig_strides(&s->shapes[p], base);
            permuted(st, base, P->vstr[i]);
            bool ok = true;
            for (int64_t e = cstart[i]; e < cstart[i + 1] && ok; e++) {
                int64_t c = clist[e];
                const tl_node *cn = &g->nodes[c];
                if (cn->op == TL_OP_MATMUL) {
                    for (int k = 0; k < 2; k++)
                        if (cn->parents[k] == i && !operand_ok(&s->shapes[i], P->vstr[i], k == 1)) ok = false;
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
        if (st->op != TL_OP_MATMUL || P->cf[i]) continue;
        int64_t a = st->node->parents[0], b = st->node->parents[1];
        if (!view[a] && !view[b] && P->outview[i] < 0) continue;
        int r = tl_matmul_layout(s->shapes, st, view[a] ? P->vstr[a] : NULL, view[b] ? P->vstr[b] : NULL,
                                 P->outview[i] >= 0 ? P->vstr[i] : NULL, P->err);
        if (r < 0) goto done;
        if (r > 0) {
            tl_errk(P->err, TL_ERR_INTERNAL, "node[%lld] (matmul): internal error: strided operand layout",
                    (long long)i);
            goto done;
        }
    }
    for (int64_t i = 0; i < n; i++)
        if (P->outview[i] >= 0) view[P->outview[i]] = true; /* the permute aliases the matmul's storage */
    rc = 0;
done:
    free(target);
    free(tent);
    return rc;
}

/* Whether step i is a clamp of its parent 0 by a constant: relu (lower 0), max_elem (lower c) or
 * min_elem (upper c) with parent 1 a folded value whose elements all have c's bits (not NaN).
 * With the value first these are bitwise what the conv / linear clamp epilogue computes
 * (lo > y ? lo : y, hi < y ? hi : y): ties keep the value, as max_elem / min_elem keep their
 * first operand, and a NaN value passes through both. */
/* Whether node k is a folded value whose elements all have the bits of one non-NaN float c. */
static bool uniform_const(tl_plan *P, int64_t k, float *c) {
    const float *v = P->cf[k] ? P->fv[k] : NULL;
    int64_t n = tl_shape_numel(&P->s->shapes[k]);
    if (!v || n <= 0 || v[0] != v[0]) return false;
    for (int64_t j = 1; j < n; j++)
        if (memcmp(&v[j], &v[0], sizeof v[0]) != 0) return false;
    *c = v[0];
    return true;
}

static bool clamp_of(tl_plan *P, int64_t i, bool *upper, float *c) {
    const tl_step *st = &P->s->steps[i];
    if (st->op == TL_OP_RELU) {
        *upper = false;
        *c = 0.0f;
        return true;
    }
    if (st->op != TL_OP_MAX_ELEM && st->op != TL_OP_MIN_ELEM) return false;
    if (P->cf[st->node->parents[0]] || !uniform_const(P, st->node->parents[1], c)) return false;
    *upper = st->op == TL_OP_MIN_ELEM;
    return true;
}

/* Whether step i is the capture's leaky relu max_elem(y, mul_elem(s, y)) (or mul_elem(y, s)),
 * s a uniform constant: the mul node in *mul, y its parent 0. */
static bool leaky_of(tl_plan *P, int64_t i, int64_t *mul, float *slope) {
    const tl_step *st = &P->s->steps[i];
    if (st->op != TL_OP_MAX_ELEM) return false;
    int64_t y = st->node->parents[0], m = st->node->parents[1];
    const tl_step *ms = &P->s->steps[m];
    if (ms->op != TL_OP_MUL_ELEM || P->cf[m] || P->cf[y] || ms->plant_bug || P->is_out[m] || P->view[m] ||
        P->cstart[m + 1] - P->cstart[m] != 1)
        return false;
    const int64_t *mp = ms->node->parents;
    if (!((mp[1] == y && uniform_const(P, mp[0], slope)) || (mp[0] == y && uniform_const(P, mp[1], slope))))
        return false;
    *mul = m;
    return true;
}

/* The producer whose epilogue can absorb a node reading value p: p itself or, through batch
 * norms already folded in, the conv / linear computing it; -1 when p is read by anyone else, is
 * an output, a view or constant, or carries the planted bug. */
static int64_t epi_producer(tl_plan *P, int64_t p, int64_t readers) {
    tl_session *s = P->s;
    if (P->cf[p] || P->is_out[p] || P->view[p] || P->outview[p] >= 0 || s->steps[p].plant_bug ||
        P->cstart[p + 1] - P->cstart[p] != readers)
        return -1;
    int64_t q = p;
    while (s->steps[q].fused) q = s->steps[q].node->parents[P->fpar[q]];
    const tl_step *qs = &s->steps[q];
    if (!qs->row->fam->absorb_clamp || P->cf[q] || qs->plant_bug || P->outview[q] >= 0) return -1;
    return q;
}

/* Epilogues (bitwise: on under TL_SESSION_EXACT too, off under KEEP_ALL, where every value is
 * computed as the graph says), in node order, per producer (a conv or linear, possibly through
 * its folded batch norm) whose value only the absorbed node reads:
 *   - a residual add(y, r) / add(r, y) with r of the same shape, computed before the producer
 *     runs (a lower node id; not a constant or a strided view): y + r, first (IEEE addition is
 *     commutative: bitwise the add node);
 *   - then relu / max_elem(y, c) and then min_elem(y, c), or a min_elem alone: the producer's
 *     clamp min(max(y, lo), hi). At most one lower and then one upper bound: their composition is
 *     then exactly that clamp;
 *   - or (no clamp) a leaky relu max_elem(y, mul_elem(s, y)): both nodes fused, the same two
 *     operations last (nothing after it).
 * The fused node shares the producer's storage (the parent P->fpar[i]) and is not run. */
static int plan_fuse_epilogues(tl_plan *P) {
    tl_session *s = P->s;
    uint8_t *state = calloc((size_t)(P->n ? P->n : 1), 1); /* per producer: 1 lower, 2 upper, 4 residual,
                                                             * 8 leaky */
    float *lo = malloc(sizeof *lo * (size_t)(P->n ? P->n : 1)), *hi = malloc(sizeof *hi * (size_t)(P->n ? P->n : 1));
    if (!state || !lo || !hi) {
        free(state);
        free(lo);
        free(hi);
        return tl_erroom(P->err, "out of memory planning %lld nodes", (long long)P->n);
    }
    for (int64_t i = 0; i < P->n; i++) {
        tl_step *st = &s->steps[i];
        if (P->cf[i] || st->plant_bug || st->fused) continue;
        const int64_t *par = st->node->parents;
        if (st->op == TL_OP_ADD) {
            for (int k = 1; k >= 0; k--) { /* the operand computed last is the producer */
                int64_t q = epi_producer(P, par[k], 1), r = par[1 - k];
                if (q < 0 || state[q] || r >= q || r == par[k] || P->cf[r] || P->view[r] || P->outview[r] >= 0 ||
                    !s->steps[q].row->fam->absorb_residual || s->steps[q].row->fam->absorb_residual(&s->steps[q]))
                    continue;
                state[q] = 4;
                lo[q] = -INFINITY;
                hi[q] = INFINITY;
                P->resid[q] = r;
                P->fpar[i] = k;
                st->fused = true;
                P->absorbed[par[k]] = true;
                break;
            }
            continue;
        }
        bool upper = false;
        float c = 0.0f;
        int64_t mul = -1;
        if (leaky_of(P, i, &mul, &c)) { /* y read by the mul and this max only */
            int64_t q = epi_producer(P, par[0], 2);
            if (q < 0 || state[q] & 11 || !s->steps[q].row->fam->absorb_leaky ||
                s->steps[q].row->fam->absorb_leaky(&s->steps[q], c))
                continue;
            state[q] |= 11; /* nothing after it */
            st->fused = s->steps[mul].fused = true;
            P->fpar[mul] = s->steps[mul].node->parents[0] == par[0] ? 0 : 1; /* shares y's storage */
            P->absorbed[par[0]] = P->absorbed[mul] = true;
            continue;
        }
        if (!clamp_of(P, i, &upper, &c)) continue;
        int64_t q = epi_producer(P, par[0], 1);
        if (q < 0 || state[q] & 2 || (!upper && state[q] & 1)) continue;
        if (!state[q]) {
            lo[q] = -INFINITY;
            hi[q] = INFINITY;
        }
        if (upper) hi[q] = c;
        else lo[q] = c;
        if (s->steps[q].row->fam->absorb_clamp(&s->steps[q], lo[q], hi[q])) continue;
        state[q] |= upper ? 2 : 1;
        st->fused = true;
        P->absorbed[par[0]] = true;
    }
    free(state);
    free(lo);
    free(hi);
    return 0;
}

/* ---- elementwise chains (bitwise; tl_ew_chain.c) ----
 * An elementwise node (unary, or binary over same-shape values) can be run by a chain: each
 * operand is a value of the output's size that is not a strided view, or a uniform constant.
 * Walking the nodes backwards, such a node joins its readers' chain when it is not an output,
 * every reader is a node of one chain, and the chain has room; otherwise it heads a chain of
 * its own. A chain of two or more nodes is computed by its head: the members are marked fused
 * (not run, no value of their own) and, for liveness, read their operands at the head. */
static bool chain_node(tl_plan *P, int64_t i) {
    const tl_step *st = &P->s->steps[i];
    const tl_family *f = st->row->fam;
    if ((f != &tl_fam_unary && f != &tl_fam_binary) || P->cf[i] || st->plant_bug || st->fused || P->absorbed[i] ||
        P->view[i] || P->outview[i] >= 0)
        return false;
    for (int k = 0; k < st->node->n_parents; k++) {
        int64_t p = st->node->parents[k];
        float c;
        if (uniform_const(P, p, &c)) continue;
        if (tl_shape_numel(&P->s->shapes[p]) != st->numel || P->view[p]) return false;
    }
    return true;
}

static int plan_fuse_chains(tl_plan *P) {
    const char *env = getenv("TL_EW_CHAIN"); /* "0": off (A/B measurements) */
    if (env && strcmp(env, "0") == 0) return 0;
    tl_session *s = P->s;
    size_t nz = (size_t)(P->n ? P->n : 1);
    int64_t *root = malloc(sizeof *root * nz), *next = malloc(sizeof *next * nz), *first = malloc(sizeof *first * nz);
    int *size = calloc(nz, sizeof *size), *pos = calloc(nz, sizeof *pos);
    int rc = -1;
    if (!root || !next || !first || !size || !pos) {
        tl_erroom(P->err, "out of memory planning %lld nodes", (long long)P->n);
        goto done;
    }
    for (int64_t i = P->n - 1; i >= 0; i--) {
        root[i] = -1;
        if (!chain_node(P, i)) continue;
        int64_t g = -1;
        bool join = !P->is_out[i] && P->cstart[i + 1] > P->cstart[i];
        for (int64_t e = P->cstart[i]; e < P->cstart[i + 1] && join; e++) {
            int64_t r = root[P->clist[e]];
            if (r < 0 || (g >= 0 && r != g)) join = false;
            g = r;
        }
        if (join && size[g] < TL_CHAIN_MAX) {
            root[i] = g;
            size[g]++;
        } else {
            root[i] = i;
            size[i] = 1;
        }
    }
    /* members per head in node order (a list built backwards) */
    for (int64_t i = 0; i < P->n; i++) first[i] = -1;
    for (int64_t i = P->n - 1; i >= 0; i--)
        if (root[i] >= 0) {
            next[i] = first[root[i]];
            first[root[i]] = i;
        }
    for (int64_t h = 0; h < P->n; h++) {
        if (root[h] != h || size[h] < 2) continue;
        const tl_step *mem[TL_CHAIN_MAX];
        tl_chain_arg args[TL_CHAIN_MAX][2];
        int m = 0;
        for (int64_t i = first[h]; i >= 0; i = next[i], m++) {
            const tl_node *nd = &P->g->nodes[i];
            mem[m] = &s->steps[i];
            pos[i] = m;
            for (int k = 0; k < 2; k++) {
                args[m][k] = (tl_chain_arg){TL_CHAIN_EXT, -1, -1, 0.0f};
                if (k >= nd->n_parents) continue;
                int64_t p = nd->parents[k];
                if (uniform_const(P, p, &args[m][k].c)) args[m][k].kind = TL_CHAIN_SCALAR;
                else if (root[p] == h && p != h) {
                    args[m][k].kind = TL_CHAIN_MEMBER;
                    args[m][k].member = pos[p];
                } else args[m][k].node = p;
            }
        }
        tl_ew_chain *c = tl_ew_chain_build(mem, m, (const tl_chain_arg(*)[2])args);
        if (!c) continue; /* does not fit: the nodes run one by one */
        for (int64_t i = first[h]; i >= 0; i = next[i]) {
            tl_step *st = &s->steps[i];
            st->p.ew.bf_operand = 0; /* the chain reads the constant itself */
            if (i == h) break;
            st->fused = true;
            P->fpar[i] = 0;
            P->absorbed[i] = true;
            P->chain_at[i] = h;
        }
        s->steps[h].p.ew.chain = c;
        s->steps[h].kernel = tl_exec_ew_chain;
    }
    rc = 0;
done:
    free(root);
    free(next);
    free(first);
    free(size);
    free(pos);
    return rc;
}

static int plan_fuse(tl_plan *P) {
    /* float64 runs the IR node by node: the fused epilogues are float32 kernels */
    if (P->keep || P->f64) return 0;
    if (P->exact) return plan_fuse_epilogues(P) || plan_fuse_chains(P);
    tl_session *s = P->s;
    for (int64_t i = 0; i < P->n; i++) {
        tl_step *st = &s->steps[i];
        const tl_family *f = st->row->fam;
        if (!f->channel_affine || P->cf[i] || st->plant_bug || st->node->n_parents != 1) continue;
        int64_t p = st->node->parents[0];
        tl_step *ps = &s->steps[p];
        const tl_family *pf = ps->row->fam;
        if (!pf->absorb_affine || P->cf[p] || ps->plant_bug || P->is_out[p] || ps->fused ||
            P->cstart[p + 1] - P->cstart[p] != 1)
            continue;
        int axis = 0;
        int64_t ch = 0;
        f->channel_affine(st, &axis, &ch, NULL, NULL);
        double *sc = malloc(sizeof(double) * (size_t)(2 * (ch > 0 ? ch : 1)));
        if (!sc) return tl_erroom(P->err, "node[%lld] (%s): out of memory", (long long)i, st->row->tag);
        f->channel_affine(st, &axis, &ch, sc, sc + ch);
        int r = pf->absorb_affine(ps, axis, ch, sc, sc + ch, P->err);
        free(sc);
        if (r < 0) return -1;
        if (r == 0) {
            st->fused = true;
            P->absorbed[p] = true;
        }
    }
    return plan_fuse_epilogues(P) || plan_fuse_chains(P);
}

static bool is_ew_step(const tl_step *st) { return st->row->fam == &tl_fam_unary || st->row->fam == &tl_fam_binary; }

/* A folded value is still needed at run time when it is kept (KEEP_ALL, outputs) or a
 * non-folded consumer reads it directly (not through a replicated per-sample copy). */
static int plan_drop_folded(tl_plan *P) {
    tl_session *s = P->s;
    bool *needed = calloc((size_t)(P->n ? P->n : 1), sizeof *needed);
    if (!needed) return tl_erroom(P->err, "out of memory planning %lld nodes", (long long)P->n);
    for (int64_t i = 0; i < P->n; i++) {
        if (!P->cf[i] || P->owner[i] < 0) continue;
        bool need = P->keep || P->is_out[i];
        for (int64_t e = P->cstart[i]; e < P->cstart[i + 1] && !need; e++) {
            int64_t j = P->clist[e];
            /* a fused clamp holds its constant; a chain reads a non-uniform one, a uniform one
             * from its own block */
            bool chained = P->chain_at[j] >= 0 || (is_ew_step(&s->steps[j]) && s->steps[j].p.ew.chain);
            float c1;
            if (P->cf[j] || (s->steps[j].fused && !chained) || (chained && uniform_const(P, i, &c1))) continue;
            const tl_node *c = &P->g->nodes[j];
            const tl_step *cj = &s->steps[j];
            int bfo = cj->row->elementwise_binary ? cj->p.ew.bf_operand : 0;
            for (int k = 0; k < c->n_parents; k++)
                if (c->parents[k] == i && bfo != k + 1) need = true;
        }
        if (need) needed[P->owner[i]] = true;
    }
    for (int64_t i = 0; i < P->n; i++) {
        if (!P->fbuf[i]) continue;
        if (needed[i]) s->owned[s->n_owned++] = P->fbuf[i];
        else free(P->fbuf[i]);
        P->fbuf[i] = NULL;
    }
    for (int64_t i = 0; i < P->n; i++)
        if (P->owner[i] >= 0 && !needed[P->owner[i]]) P->fv[i] = NULL;
    free(needed);
    return 0;
}

static void add_storage(tl_plan *P, tl_store_kind kind, int64_t bytes, int64_t node, float *param) {
    P->S[P->ns] = (storage){kind, bytes, node, node, 0, node, -1, param};
    P->ns++;
}

static int plan_storages(tl_plan *P) {
    tl_session *s = P->s;
    for (int64_t i = 0; i < P->n; i++) {
        tl_step *st = &s->steps[i];
        const tl_node *nd = st->node;
        if (P->cf[i]) {
            P->sid[i] = P->ns;
            add_storage(P, TL_STORE_PARAM, 0, i, P->fv[i]);
            continue;
        }
        if ((st->row->alias && !st->plant_bug) || P->view[i] || st->fused) {
            st->alias = true;
            /* a permute its matmul parent wrote into is materialized: a plain alias */
            st->view = P->view[i] && P->outview[nd->parents[0]] != i;
            P->sid[i] = P->sid[nd->parents[st->fused ? P->fpar[i] : 0]];
            continue;
        }
        P->sid[i] = P->ns;
        add_storage(P, TL_STORE_ARENA, align64(st->numel * P->esz), i, NULL);
        int64_t scratch_bytes = P->f64 ? st->scratch64 * P->esz : st->scratch_floats * (int64_t)sizeof(float);
        if (scratch_bytes > 0) {
            P->scr[i] = P->ns;
            add_storage(P, TL_STORE_ARENA, align64(scratch_bytes), i, NULL);
        }
        if (nd->op == TL_OP_INPUT) {
            s->input_numel = st->numel;
            s->input_step = st;
            st->kernel = NULL; /* the run copies the input in */
            st->kernel64 = NULL;
            if (st->plant_bug && !P->f64) st->exec = exec_planted; /* adds the bug after the copy */
            if (st->plant_bug && P->f64) st->exec64 = exec_planted64;
        } else if (P->f64) {
            bool rep64 = st->row->elementwise_binary && st->p.ew.bf_operand;
            tl_exec64_fn base = rep64 ? tl_exec_binary_rep64 : st->kernel64;
            if (st->plant_bug) {
                st->kernel64 = base;
                st->exec64 = exec_planted64;
            } else {
                st->exec64 = base;
            }
            st->exec = NULL; /* a float64 run calls exec64 only */
        } else {
            tl_exec_fn base = st->row->elementwise_binary && st->p.ew.bf_operand ? tl_exec_binary_rep : st->kernel;
            if (st->plant_bug) {
                st->kernel = base;
                st->exec = exec_planted;
            } else {
                st->exec = base;
            }
            st->out_view = P->outview[i] >= 0;
        }
    }
    return 0;
}

static void plan_liveness(tl_plan *P) {
    const tl_graph *g = P->g;
    for (int64_t i = 0; i < P->n; i++) {
        int64_t at = P->chain_at[i] >= 0 ? P->chain_at[i] : i; /* a chain member reads at its head */
        for (int k = 0; k < g->nodes[i].n_parents; k++) {
            storage *x = &P->S[P->sid[g->nodes[i].parents[k]]];
            if (x->last < at) x->last = at;
        }
    }
    for (int i = 0; i < g->n_outputs; i++) P->S[P->sid[g->output_ids[i]]].last = LIVE_END;
    if (P->keep)
        for (int64_t k = 0; k < P->ns; k++) {
            P->S[k].def = 0;
            P->S[k].last = LIVE_END;
        }
}

/* An elementwise op whose parent storage dies at this node (and has its size) writes into it:
 * the two storages merge (the parent's lifetime extends to the child's last use; the child's
 * storage forwards to it, so aliases of the child follow without renumbering). */
static void plan_in_place(tl_plan *P) {
    if (P->keep) return;
    tl_session *s = P->s;
    for (int64_t i = 0; i < P->n; i++) {
        tl_step *st = &s->steps[i];
        const tl_node *nd = st->node;
        if (st->alias || P->cf[i] || !(st->row->flags & TL_F_INPLACE)) continue;
        int cand = st->row->elementwise_binary ? 2 : 1;
        for (int k = 0; k < cand; k++) {
            int64_t ps = find(P, P->sid[nd->parents[k]]), me = find(P, P->sid[i]);
            if (ps == me || P->S[ps].kind != TL_STORE_ARENA || P->S[ps].last != i) continue;
            if (P->S[ps].bytes != P->S[me].bytes) continue;
            P->S[ps].last = P->S[me].last;
            P->S[me].fwd = ps;
            st->in_place = true;
            break;
        }
    }
}

static int plan_place(tl_plan *P) {
    tl_session *s = P->s;
    int64_t limit = memory_limit();
    tl_memplan *mp = tl_memplan_new();
    int64_t *slot = malloc(sizeof *slot * (size_t)(P->ns ? P->ns : 1));
    int64_t *owner = malloc(sizeof *owner * (size_t)(P->ns ? P->ns : 1)); /* memplan buffer -> storage */
    int rc = -1;
    if (!mp || !slot || !owner) {
        tl_erroom(P->err, "out of memory planning %lld storages", (long long)P->ns);
        goto done;
    }
    for (int64_t k = 0; k < P->ns; k++) {
        storage *x = &P->S[k];
        slot[k] = -1;
        if (x->fwd >= 0 || x->kind != TL_STORE_ARENA || x->bytes <= 0) continue;
        slot[k] = tl_memplan_add(mp, x->def, x->last, x->bytes, P->err);
        if (slot[k] < 0) goto done;
        owner[slot[k]] = k;
    }
    int64_t total = 0;
    if (tl_memplan_place(mp, limit, &total, P->err)) {
        int64_t f = tl_memplan_failed(mp);
        if (f >= 0) { /* over the memory limit: name the node whose value crossed it */
            const storage *x = &P->S[owner[f]];
            const tl_step *bs = &s->steps[x->node];
            tl_erroom(P->err,
                      "node[%lld] (%s): its %s %s needs %lld bytes; the plan needs more than the memory limit of "
                      "%lld bytes",
                      (long long)x->node, bs->row->tag, owner[f] == P->scr[x->node] ? "scratch for" : "value",
                      TL_SHAPE_STR(&bs->shape), (long long)x->bytes, (long long)limit);
        }
        goto done;
    }
#ifdef TL_MEMPLAN_DEBUG
    if (tl_memplan_check(mp, P->err)) goto done;
#endif
    s->arena_bytes = total;
    for (int64_t k = 0; k < P->ns; k++)
        if (slot[k] >= 0) P->S[k].offset = tl_memplan_offset(mp, slot[k]);
    /* at least one cache line, so that empty values still point into the arena */
    size_t abytes = (size_t)(s->arena_bytes ? s->arena_bytes : 64);
    s->arena = aligned_alloc(64, abytes);
    if (!s->arena) {
        tl_erroom(P->err, "out of memory: arena of %lld bytes", (long long)s->arena_bytes);
        goto done;
    }
    memset(s->arena, 0, abytes);
    rc = 0;
done:
    free(slot);
    free(owner);
    tl_memplan_free(mp);
    return rc;
}

static void plan_bind(tl_plan *P) {
    tl_session *s = P->s;
    for (int64_t i = 0; i < P->n; i++) {
        storage *x = &P->S[find(P, P->sid[i])];
        s->value[i] = x->kind == TL_STORE_PARAM ? x->param : (float *)(s->arena + x->offset);
    }
    /* the input's planted bug runs first (after the copy-in) */
    if (s->input_step && (P->f64 ? s->input_step->exec64 != NULL : s->input_step->exec != NULL))
        s->run[s->n_run++] = &s->steps[s->input_step->id];
    for (int64_t i = 0; i < P->n; i++) {
        tl_step *st = &s->steps[i];
        const tl_node *nd = st->node;
        st->out = s->value[i];
        for (int k = 0; k < nd->n_parents; k++) st->in[k] = s->value[nd->parents[k]];
        if (st->row->elementwise_binary && st->p.ew.bf_operand) st->in[st->p.ew.bf_operand - 1] = st->p.ew.rep_buf;
        if (P->scr[i] >= 0) st->scratch = (float *)(s->arena + P->S[P->scr[i]].offset);
        if (P->f64) {
            st->out64 = (double *)(void *)st->out;
            for (int k = 0; k < nd->n_parents; k++) st->in64[k] = (const double *)(const void *)st->in[k];
            if (st->row->elementwise_binary && st->p.ew.bf_operand)
                st->in64[st->p.ew.bf_operand - 1] = st->p.ew.rep_buf64;
            st->scratch64p = (double *)(void *)st->scratch;
        }
        if (P->resid[i] >= 0) st->res = s->value[P->resid[i]];
        if (is_ew_step(st) && st->p.ew.chain) tl_ew_chain_bind(st->p.ew.chain, s->value);
        if (nd->op == TL_OP_INPUT) s->input_buf = st->out;
        else if (P->f64 ? st->exec64 != NULL : st->exec != NULL) s->run[s->n_run++] = st;
    }
    /* which values stay readable after a run: materialized in their own layout, and either
     * live to the end or constant */
    for (int64_t i = 0; i < P->n; i++) {
        tl_step *st = &s->steps[i];
        const storage *x = &P->S[find(P, P->sid[i])];
        bool layout = !st->view && !st->out_view && !P->absorbed[i];
        st->kept = layout && s->value[i] && (x->last == LIVE_END || x->kind == TL_STORE_PARAM);
    }
}

int tl_session_new(tl_model *m, const tl_shape *input_shape, int flags, tl_session **out, tl_err *err) {
    *out = NULL;
    if (!m || !m->g) return tl_errk(err, TL_ERR_INTERNAL, "tl_session_new: no model");
    const tl_graph *g = m->g;
    if (check_input_shape(g, input_shape, err)) return -1;
    tl_session *s = calloc(1, sizeof *s);
    if (!s) return tl_erroom(err, "out of memory");
    s->m = m;
    s->flags = flags;
    s->n = g->n_nodes;
    s->in_shape = *input_shape;
    s->f64 = (flags & TL_SESSION_FLOAT64) != 0;
    if (s->f64) s->flags |= TL_SESSION_EXACT;
    const char *bug = getenv("TL_TEST_PLANT_BUG");
    tl_plan P = {.s = s,
                 .g = g,
                 .err = err,
                 .n = g->n_nodes,
                 .keep = (flags & TL_SESSION_KEEP_ALL) != 0,
                 .exact = (flags & (TL_SESSION_EXACT | TL_SESSION_FLOAT64)) != 0,
                 .f64 = (flags & TL_SESSION_FLOAT64) != 0,
                 .esz = (flags & TL_SESSION_FLOAT64) ? (int64_t)sizeof(double) : (int64_t)sizeof(float),
                 .bug = bug && *bug ? bug : NULL};
    int rc = -1;
    if (plan_alloc(&P) || plan_shapes(&P) || plan_params64(&P) || plan_steps(&P) || plan_consumers(&P) ||
        plan_fold(&P) || plan_rep(&P) || plan_views(&P) || plan_fuse(&P) || plan_drop_folded(&P) || plan_storages(&P))
        goto done;
    plan_liveness(&P);
    plan_in_place(&P);
    if (plan_place(&P)) goto done;
    plan_bind(&P);
    if (tl_mb_setup(s, err)) goto done;
    *out = s;
    rc = 0;
done:
    plan_free(&P);
    if (rc) tl_session_free(s);
    return rc;
}
