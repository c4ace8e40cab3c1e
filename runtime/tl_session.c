/* tl_session.c - a planned model (tl_plan.c makes the plan): running it, reading its values,
 * evaluating one node in isolation, describing the plan.
 *
 * Ownership: a session owns its steps (and what their families allocated), its arena, its
 * folded values and its tables; it borrows the model, which must outlive it. Pointers returned
 * by tl_session_output / tl_session_node_value point into the session (arena or constants) and
 * are valid until the next tl_session_run or tl_session_free. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tl_runtime_internal.h"
#include "tl_pool.h"

void tl_step_release(tl_step *st) {
    if (st->row && st->row->fam && st->row->fam->release) st->row->fam->release(st);
    free(st->in);
    st->in = NULL;
    free(st->in64);
    st->in64 = NULL;
}

void tl_session_free(tl_session *s) {
    if (!s) return;
    tl_mb_free(s);
    if (s->steps)
        for (int64_t i = 0; i < s->n; i++) tl_step_release(&s->steps[i]);
    free(s->steps);
    free(s->shapes);
    free(s->value);
    free(s->arena);
    free(s->ns);
    free(s->out_ids);
    free(s->run);
    for (int64_t i = 0; i < s->n_owned; i++) free(s->owned[i]);
    free(s->owned);
    if (s->prm64)
        for (int64_t j = 0; j < s->n * TL_MAX_PARAMS; j++)
            if (s->prm64_owned[j]) free(s->prm64[j]);
    free(s->prm64);
    free(s->prm64_owned);
    free(s);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* More than one thread: the pool's workers spin between a run's parallel steps and go back to
 * sleep when it returns (kernels/tl_pool.h); they are not woken for a session whose last run had
 * no parallel step (a tiny model: waking them costs more than its run). */
static bool pool_begin(const tl_session *s, uint64_t *jobs0) {
    bool hot = tl_get_threads() > 1 && !s->pool_idle;
    *jobs0 = tl_pool_jobs();
    if (hot) tl_pool_hot_begin();
    return hot;
}

static void pool_end(tl_session *s, bool hot, uint64_t jobs0) {
    if (hot) tl_pool_hot_end();
    s->pool_idle = tl_pool_jobs() == jobs0;
}

int tl_session_run(tl_session *s, const float *input, tl_err *err) {
    if (!s) return tl_errk(err, TL_ERR_INTERNAL, "tl_session_run: no session");
    if (s->f64)
        return tl_errk(err, TL_ERR_BAD_INPUT, "tl_session_run: a float64 session runs with tl_session_run_f64");
    if (!input && s->input_numel) return tl_errf(err, "tl_session_run: no input");
    tl_step *const *run = s->run;
    int64_t nr = s->n_run;
    uint64_t jobs0;
    bool hot = pool_begin(s, &jobs0);
    int rc = 0;
    if (s->mb_nchild) {
        rc = tl_mb_run(s, input, err);
    } else if (!(s->flags & TL_SESSION_PROFILE)) {
        if (s->input_numel) memcpy(s->input_buf, input, (size_t)s->input_numel * sizeof(float));
        for (int64_t k = 0; k < nr; k++) {
            const tl_step *st = run[k];
            st->exec(st, (const float *const *)st->in, st->out);
        }
    } else {
        int64_t t0 = now_ns();
        if (s->input_numel) memcpy(s->input_buf, input, (size_t)s->input_numel * sizeof(float));
        s->ns[s->m->g->input_id] = now_ns() - t0;
        for (int64_t k = 0; k < nr; k++) {
            const tl_step *st = run[k];
            t0 = now_ns();
            st->exec(st, (const float *const *)st->in, st->out);
            s->ns[st->id] = now_ns() - t0;
        }
    }
    pool_end(s, hot, jobs0);
    return rc;
}

/* The float64 run: the same loop over exec64 (doubles). */
int tl_session_run_f64(tl_session *s, const double *input, tl_err *err) {
    if (!s) return tl_errk(err, TL_ERR_INTERNAL, "tl_session_run_f64: no session");
    if (!s->f64)
        return tl_errk(err, TL_ERR_BAD_INPUT,
                       "tl_session_run_f64: a float32 session runs with tl_session_run (create the session with "
                       "TL_SESSION_FLOAT64)");
    if (!input && s->input_numel) return tl_errf(err, "tl_session_run_f64: no input");
    tl_step *const *run = s->run;
    int64_t nr = s->n_run;
    bool prof = (s->flags & TL_SESSION_PROFILE) != 0;
    uint64_t jobs0;
    bool hot = pool_begin(s, &jobs0);
    int64_t t0 = prof ? now_ns() : 0;
    if (s->input_numel) memcpy(s->input_buf, input, (size_t)s->input_numel * sizeof(double));
    if (prof) s->ns[s->m->g->input_id] = now_ns() - t0;
    for (int64_t k = 0; k < nr; k++) {
        const tl_step *st = run[k];
        if (prof) t0 = now_ns();
        st->exec64(st, st->in64, st->out64);
        if (prof) s->ns[st->id] = now_ns() - t0;
    }
    pool_end(s, hot, jobs0);
    return 0;
}

bool tl_session_is_f64(const tl_session *s) { return s && s->f64; }

int tl_session_n_outputs(const tl_session *s) { return s ? s->n_out : 0; }

const double *tl_session_output_f64(const tl_session *s, int i, tl_shape *shape) {
    if (!s || !s->f64 || i < 0 || i >= s->n_out) return NULL;
    int64_t id = s->out_ids[i];
    if (shape) *shape = s->shapes[id];
    return (const double *)(const void *)s->value[id];
}

static const void *node_value(const tl_session *s, int64_t id, tl_shape *shape, bool f64, tl_err *err) {
    if (!s || id < 0 || id >= s->n) {
        tl_errf(err, "node[%lld]: no such node", (long long)id);
        return NULL;
    }
    if (s->f64 != f64) {
        tl_errk(err, TL_ERR_BAD_INPUT, "node[%lld]: this is a %s session: use tl_session_node_value%s", (long long)id,
                s->f64 ? "float64" : "float32", s->f64 ? "_f64" : "");
        return NULL;
    }
    if (!(s->flags & TL_SESSION_KEEP_ALL) && !s->steps[id].kept) {
        tl_errf(err, "node[%lld]: value is not kept after the run (use TL_SESSION_KEEP_ALL)", (long long)id);
        return NULL;
    }
    if (shape) *shape = s->shapes[id];
    return s->value[id];
}

const double *tl_session_node_value_f64(const tl_session *s, int64_t id, tl_shape *shape, tl_err *err) {
    return node_value(s, id, shape, true, err);
}

const float *tl_session_output(const tl_session *s, int i, tl_shape *shape) {
    if (!s || s->f64 || i < 0 || i >= s->n_out) return NULL;
    int64_t id = s->out_ids[i];
    if (shape) *shape = s->shapes[id];
    return s->value[id];
}

const float *tl_session_node_value(const tl_session *s, int64_t id, tl_shape *shape, tl_err *err) {
    return node_value(s, id, shape, false, err);
}

int64_t tl_session_node_ns(const tl_session *s, int64_t id) {
    if (!s || id < 0 || id >= s->n) return 0;
    return s->ns[id];
}

/* A fresh plan of step st alone into tmp: contiguous operands, the model's own weights (no folded
 * batch norm, no strided views), no fused epilogue, a scratch of its own in the session's
 * precision. Returns whether the node's batch-free operand of a re-batched binary op holds the
 * captured batch (its first sample then meets every sample: tmp is set up for the rep exec). */
static int fresh_step(const tl_session *s, const tl_step *st, tl_step *tmp, bool *rep, tl_err *err) {
    const tl_node *nd = st->node;
    *tmp = *st;
    memset(&tmp->p, 0, sizeof tmp->p);
    tmp->res = NULL;
    tmp->kernel = NULL;
    tmp->kernel64 = NULL;
    tmp->scratch = NULL;
    tmp->scratch64p = NULL;
    tmp->scratch_floats = 0;
    tmp->scratch64 = 0;
    tl_prep_ctx pc = {s->shapes, st->K, (s->flags & TL_SESSION_EXACT) != 0};
    int rc = st->row->fam->prepare(&pc, tmp, err);
    if (!rc && s->f64 && tmp->scratch64 > 0 && !(tmp->scratch64p = malloc(sizeof(double) * (size_t)tmp->scratch64)))
        rc = tl_erroom(err, "node[%lld]: out of memory for scratch", (long long)nd->id);
    if (!rc && !s->f64 && tmp->scratch_floats > 0 &&
        !(tmp->scratch = malloc(sizeof(float) * (size_t)tmp->scratch_floats)))
        rc = tl_erroom(err, "node[%lld]: out of memory for scratch", (long long)nd->id);
    *rep = !rc && st->row->elementwise_binary && st->p.ew.bf_operand &&
        tl_shape_numel(&s->shapes[nd->parents[st->p.ew.bf_operand - 1]]) != st->numel;
    if (*rep) {
        const tl_shape *ps = &s->shapes[nd->parents[st->p.ew.bf_operand - 1]];
        tmp->p.ew.bf_operand = st->p.ew.bf_operand;
        tmp->p.ew.rep = 1;
        tmp->p.ew.inner = ps->dim[0] ? tl_shape_numel(ps) / ps->dim[0] : 0;
    }
    return rc;
}

static void fresh_step_free(tl_step *tmp, bool rep) {
    if (rep) tmp->p.ew.bf_operand = 0; /* the rep fields are not the family's to release */
    free(tmp->scratch);
    free(tmp->scratch64p);
    if (tmp->row->fam->release) tmp->row->fam->release(tmp);
}

/* What both precisions check first: the node exists, the session's precision, and it can be
 * evaluated from parents. Returns the step, or NULL with err set. */
static const tl_step *eval_step(const tl_session *s, int64_t id, bool f64, const void *parent_values, tl_err *err) {
    if (!s || id < 0 || id >= s->n) {
        tl_errf(err, "node[%lld]: no such node", (long long)id);
        return NULL;
    }
    if (s->f64 != f64) {
        tl_errk(err, TL_ERR_BAD_INPUT, "node[%lld]: a %s session evaluates with tl_session_eval_node%s",
                (long long)id, s->f64 ? "float64" : "float32", s->f64 ? "_f64" : "");
        return NULL;
    }
    const tl_step *st = &s->steps[id];
    if (st->node->op == TL_OP_INPUT) {
        tl_errf(err, "node[%lld] (input): has no parents to evaluate from", (long long)id);
        return NULL;
    }
    if (st->node->op != TL_OP_CONST && st->node->n_parents > 0 && !parent_values) {
        tl_errf(err, "node[%lld]: no parent values", (long long)id);
        return NULL;
    }
    return st;
}

/* Isolated evaluation: the step's kernel on caller-given contiguous parent values, with the plan's
 * strided/replicated reading undone and a scratch of its own (the plan's scratch slot may hold
 * other, kept values now). Allocates: diagnostics only, never on the run path. */
int tl_session_eval_node(tl_session *s, int64_t id, const float *const *parent_values, float *out, tl_err *err) {
    const tl_step *st = eval_step(s, id, false, parent_values, err);
    if (!st) return -1;
    if (st->node->op == TL_OP_CONST) {
        memcpy(out, st->node->param[0]->data, (size_t)st->numel * sizeof(float));
    } else {
        tl_step tmp;
        bool rep;
        int rc = fresh_step(s, st, &tmp, &rep, err);
        if (!rc && rep) tl_exec_binary_rep(&tmp, parent_values, out);
        else if (!rc && tmp.kernel) tmp.kernel(&tmp, parent_values, out);
        fresh_step_free(&tmp, rep);
        if (rc) return rc;
    }
    if (st->plant_bug)
        for (int64_t i = 0; i < st->numel; i++) out[i] += 1e-2f;
    return 0;
}

/* tl_session_eval_node in double: the same fresh plan of the node, its double exec. */
int tl_session_eval_node_f64(tl_session *s, int64_t id, const double *const *parent_values, double *out,
                             tl_err *err) {
    const tl_step *st = eval_step(s, id, true, parent_values, err);
    if (!st) return -1;
    if (st->node->op == TL_OP_CONST) {
        memcpy(out, s->prm64[id * TL_MAX_PARAMS], (size_t)st->numel * sizeof(double));
    } else {
        tl_step tmp;
        bool rep;
        int rc = fresh_step(s, st, &tmp, &rep, err);
        if (!rc && rep) tl_exec_binary_rep64(&tmp, parent_values, out);
        else if (!rc && tmp.kernel64) tmp.kernel64(&tmp, parent_values, out);
        fresh_step_free(&tmp, rep);
        if (rc) return rc;
    }
    if (st->plant_bug)
        for (int64_t i = 0; i < st->numel; i++) out[i] += 1e-2;
    return 0;
}

int64_t tl_session_arena_bytes(const tl_session *s) { return s ? s->arena_bytes : 0; }

const char *tl_session_node_plan(const tl_session *s, int64_t id) {
    if (!s || id < 0 || id >= s->n) return NULL;
    const tl_step *st = &s->steps[id];
    if (st->op == TL_OP_INPUT) return "input";
    if (st->folded) return "folded";
    if (st->fused) return "fused";
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
    if (s->mb_nchild) {
        fprintf(out, "micro-batched: batch %lld as %lld runs of batch %lld on %d child session(s), each:\n",
                (long long)s->in_shape.dim[0], (long long)s->mb_chunks, (long long)s->mb_m, s->mb_nchild);
        return tl_session_write_plan(s->mb_child[0], out, err);
    }
    const tl_graph *g = s->m->g;
    fprintf(out, "plan: %lld nodes, %lld run per call, arena %lld bytes\n", (long long)s->n, (long long)s->n_run,
            (long long)s->arena_bytes);
    fprintf(out, "%6s  %-16s %-16s %-22s %-24s%s\n", "id", "kind", "plan", "shape", "storage", "kernel");
    for (int64_t i = 0; i < s->n; i++) {
        const tl_step *st = &s->steps[i];
        char shape[TL_SHAPE_STR_MAX], plan[32], where[96];
        tl_shape_str(&s->shapes[i], shape, sizeof shape);
        snprintf(plan, sizeof plan, "%s%s", tl_session_node_plan(s, i), st->in_place ? " in-place" : "");
        const char *v = (const char *)s->value[i];
        int64_t bytes = st->numel * (int64_t)(s->f64 ? sizeof(double) : sizeof(float));
        if (st->view || (st->alias && !st->folded)) {
            /* a fused node shares the storage of the parent computing it, which is not always the
             * first: add(r, conv), mul_elem(s, y); the one whose value it is (else the first) */
            const tl_node *nd = &g->nodes[i];
            int64_t p = nd->parents[0];
            for (int k = 0; st->fused && k < nd->n_parents; k++)
                if (s->value[nd->parents[k]] == s->value[i]) {
                    p = nd->parents[k];
                    break;
                }
            snprintf(where, sizeof where, "view of node[%lld]", (long long)p);
        } else if (v && v >= s->arena && v < s->arena + (s->arena_bytes ? s->arena_bytes : 64))
            snprintf(where, sizeof where, "arena +%lld %lld", (long long)(v - s->arena), (long long)bytes);
        else snprintf(where, sizeof where, "param %lld", (long long)bytes);
        const char *kn = st->kernel && st->row && st->row->fam && st->row->fam->kernel_name && !st->folded
            ? st->row->fam->kernel_name(st)
            : NULL;
        /* the kernel column only where a family names one (no trailing blanks otherwise) */
        if (kn)
            fprintf(out, "%6lld  %-16s %-16s %-22s %-24s%s\n", (long long)i, tl_op_tag(g->nodes[i].op), plan, shape,
                    where, kn);
        else
            fprintf(out, "%6lld  %-16s %-16s %-22s %s\n", (long long)i, tl_op_tag(g->nodes[i].op), plan, shape,
                    where);
    }
    if (ferror(out)) return tl_errk(err, TL_ERR_IO, "cannot write the plan");
    return 0;
}
