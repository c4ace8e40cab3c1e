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
    for (int64_t i = 0; i < s->n; i++) {
        tl_step *st = &s->steps[i];
        free(st->in);
        free(st->a_off);
        free(st->b_off);
        free(st->scale);
        free(st->shift);
        free(st->part_len);
    }
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

int tl_session_new(tl_model *m, const tl_shape *input_shape, int flags, tl_session **out,
                   tl_err *err) {
    *out = NULL;
    if (!m || !m->g) return tl_errf(err, "tl_session_new: no model");
    const tl_graph *g = m->g;
    if (check_input_shape(g, input_shape, err)) return -1;
    int64_t n = g->n_nodes;
    tl_session *s = calloc(1, sizeof *s);
    if (!s) return tl_errf(err, "out of memory");
    s->m = m;
    s->flags = flags;
    s->n = n;
    s->in_shape = *input_shape;
    s->steps = calloc((size_t)n, sizeof *s->steps);
    s->shapes = calloc((size_t)n, sizeof *s->shapes);
    s->value = calloc((size_t)n, sizeof *s->value);
    s->ns = calloc((size_t)n, sizeof *s->ns);
    bool *bc = calloc((size_t)n, sizeof *bc);
    int64_t *sid = malloc(sizeof(int64_t) * (size_t)n);
    int64_t *scr = malloc(sizeof(int64_t) * (size_t)n);    /* scratch storage per node or -1 */
    storage *S = calloc((size_t)(2 * n + 1), sizeof *S);     /* <= one value + one scratch each */
    int64_t ns = 0;
    s->n_out = g->n_outputs;
    s->out_ids = malloc(sizeof(int64_t) * (size_t)(g->n_outputs ? g->n_outputs : 1));
    if (!s->steps || !s->shapes || !s->value || !s->ns || !bc || !sid || !scr || !S || !s->out_ids) {
        tl_errf(err, "out of memory");
        goto fail;
    }
    for (int i = 0; i < g->n_outputs; i++) s->out_ids[i] = g->output_ids[i];
    if (tl_batch_shapes(g, input_shape, s->shapes, bc, err)) goto fail;

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
            tl_errf(err, "out of memory");
            goto fail;
        }
        if (tl_exec_prepare(s, st, err)) goto fail;
    }

    /* storages (aliases share; in-place decided after liveness) */
    for (int64_t i = 0; i < n; i++) {
        tl_step *st = &s->steps[i];
        const tl_node *nd = st->node;
        scr[i] = -1;
        if (nd->op == TL_OP_CONST && !st->plant_bug) {
            if (!nd->param[0] || !nd->param[0]->data) {
                tl_errf(err, "node[%lld] (const): value is not bound", (long long)i);
                goto fail;
            }
            S[ns] = (storage){ TL_STORE_PARAM, 0, i, i, 0, nd->param[0]->data, false };
            sid[i] = ns++;
            continue;
        }
        if (is_alias_op(nd->op) && !st->plant_bug) {
            st->alias = true;
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
        } else if (nd->op == TL_OP_CONST) {
            st->exec = tl_exec_for(nd->op);   /* planted bug: copy, then perturb */
        } else {
            st->exec = tl_exec_for(nd->op);
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
            if (st->alias || !is_elementwise(tl_op_info(nd->op), nd->op)) continue;
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
        tl_errf(err, "out of memory");
        goto fail;
    }
    s->arena_bytes = align64(total);
    {   /* at least one cache line, so that empty values still point into the arena */
        s->arena = aligned_alloc(64, (size_t)(s->arena_bytes ? s->arena_bytes : 64));
        if (!s->arena) {
            tl_errf(err, "out of memory: arena of %lld bytes", (long long)s->arena_bytes);
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
        if (nd->op == TL_OP_CONST) st->in[0] = nd->param[0]->data;   /* planted-bug copy source */
        if (scr[i] >= 0) st->scratch = (float *)(s->arena + S[scr[i]].offset);
        if (nd->op == TL_OP_INPUT) s->input_buf = st->out;
    }
    /* which values stay readable after a run */
    for (int64_t i = 0; i < n; i++) s->steps[i].kept = S[sid[i]].last == LIVE_END ||
                                                      S[sid[i]].kind == TL_STORE_PARAM;
    free(bc);
    free(sid);
    free(scr);
    free(S);
    *out = s;
    return 0;
fail:
    free(bc);
    free(sid);
    free(scr);
    free(S);
    tl_session_free(s);
    return -1;
}

static void plant(const tl_step *st, float *y) {
    for (int64_t i = 0; i < st->numel; i++) y[i] += 1e-2f;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int tl_session_run(tl_session *s, const float *input, tl_err *err) {
    if (!s) return tl_errf(err, "tl_session_run: no session");
    if (!input && s->input_numel) return tl_errf(err, "tl_session_run: no input");
    bool prof = (s->flags & TL_SESSION_PROFILE) != 0;
    for (int64_t i = 0; i < s->n; i++) {
        const tl_step *st = &s->steps[i];
        int64_t t0 = prof ? now_ns() : 0;
        if (st->op == TL_OP_INPUT) {
            if (st->numel) memcpy(st->out, input, (size_t)st->numel * sizeof(float));
        } else if (st->exec) {
            st->exec(st, st->in, st->out);
        }
        if (st->plant_bug && (st->exec || st->op == TL_OP_INPUT)) plant(st, st->out);
        if (prof) s->ns[i] = now_ns() - t0;
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
        tl_exec_for(nd->op)(st, parent_values, out);
    }
    if (st->plant_bug) plant(st, out);
    return 0;
}

int64_t tl_session_arena_bytes(const tl_session *s) { return s ? s->arena_bytes : 0; }

const tl_shape *tl_session_node_shape(const tl_session *s, int64_t id) {
    if (!s || id < 0 || id >= s->n) return NULL;
    return &s->shapes[id];
}
