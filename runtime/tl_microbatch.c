/* tl_microbatch.c - a batch run as a sequence of small-batch runs (micro-batches).
 *
 * Why: a conv net's activations at batch N are N times its batch-1 activations. MobileNetV2 at
 * 96x96 holds about 1 MiB per image between two layers, so from batch 2-3 on every layer reads
 * its input from L3 instead of L2 and the depthwise and 1x1 convs (a few FLOPs per byte) slow
 * down 2-4x. Running the plan on m samples at a time keeps each layer's input in L2, and with T
 * threads whole micro-batches go to different threads (one child session each, every kernel
 * single-threaded inside), so the threads never meet at a per-layer barrier.
 *
 * When: float32 sessions at batch N >= 2 whose graph keeps samples apart (the planner accepts
 * batch m: tl_batch.c) and whose outputs all lead with the batch; not under KEEP_ALL (every node's
 * value must be readable at batch N), and only when the weights are no more than the batch's
 * activations (every micro-batch reads them again). m is the largest divisor of N whose child
 * arena fits TL_MB_BUDGET bytes, at least 1 (TL_MICROBATCH=m forces m, 0 turns it off). m depends on the model and N
 * only, never on the thread count, and each micro-batch is the same child session run whichever
 * thread runs it, so outputs are bitwise the same at any thread count.
 *
 * What changes: each sample is computed by the batch-m plan instead of the batch-N plan. For
 * every op tlrt computes per sample (all but the batched-GEMM conv path of docs/conv.md, which
 * needs batch >= 8) that is the same arithmetic; otherwise the rounding class of the path taken. */
#include <stdlib.h>
#include <string.h>
#include "tl_pool.h"
#include "tl_runtime_internal.h"

/* a micro-batch's activations should stay in this much of the 2 MiB L2 (measured: docs/threads.md) */
#define TL_MB_BUDGET ((int64_t)1 << 20)

static int64_t per_sample(const tl_shape *s) {
    int64_t p = 1;
    for (int d = 1; d < s->rank; d++) p *= s->dim[d];
    return p;
}

void tl_mb_free(tl_session *s) {
    for (int i = 0; i < s->mb_nchild; i++) tl_session_free(s->mb_child[i]);
    free(s->mb_child);
    if (s->mb_out)
        for (int i = 0; i < s->n_out; i++) free(s->mb_out[i]);
    free(s->mb_out);
    free(s->mb_out_per);
    free(s->mb_ns);
}

static void mb_off(tl_session *s) {
    tl_mb_free(s);
    s->mb_child = NULL;
    s->mb_out = NULL;
    s->mb_out_per = NULL;
    s->mb_ns = NULL;
    s->mb_nchild = 0;
}

/* m for batch N: the forced value, or the largest divisor of N with a child arena <= budget. */
static int64_t choose_m(const tl_session *s, int64_t N) {
    const char *env = getenv("TL_MICROBATCH");
    if (env && *env) {
        long long v = atoll(env);
        if (v <= 0 || v >= N || N % v) return 0;
        return (int64_t)v;
    }
    tl_shape one = s->in_shape;
    one.dim[0] = 1;
    tl_session *c = NULL;
    tl_err e = {0};
    if (tl_session_new(s->m, &one, s->flags | TL_SESSION_NO_MICROBATCH, &c, &e)) return 0;
    int64_t a1 = c->arena_bytes > 0 ? c->arena_bytes : 1;
    tl_session_free(c);
    /* each micro-batch reads every weight again: worth it only while the weights are no more
     * than half the batch's activations (ResNet-18: 45 MiB of weights, 0.4 MiB per 64x64 sample,
     * ran 1.7x slower one sample at a time at batch 16; MobileNetV2: 2.4 MiB of weights, 1.2 MiB
     * per 96x96 sample, 1.5x faster; ViT-Ti: 22 MiB, 1.5 MiB per sample, 289-293 ms one plan vs
     * 302-333 ms per sample at batch 16, 2 threads) */
    if (2 * tl_model_param_bytes(s->m) > N * a1) return 0;
    int64_t mmax = TL_MB_BUDGET / a1;
    if (mmax < 1) mmax = 1;  /* one sample overflows it already: one at a time spills least */
    if (mmax >= N) return 0; /* the whole batch fits: one plan */
    for (int64_t m = mmax; m >= 1; m--)
        if (N % m == 0) return m;
    return 0;
}

int tl_mb_setup(tl_session *s, tl_err *err) {
    int64_t N = s->in_shape.rank >= 1 ? s->in_shape.dim[0] : 0;
    if (s->f64 || (s->flags & (TL_SESSION_KEEP_ALL | TL_SESSION_NO_MICROBATCH)) || N < 2) return 0;
    for (int i = 0; i < s->n_out; i++) {
        const tl_shape *o = &s->shapes[s->out_ids[i]];
        if (o->rank < 1 || o->dim[0] != N) return 0;
    }
    int64_t m = choose_m(s, N);
    if (m < 1) return 0;
    tl_shape ms = s->in_shape;
    ms.dim[0] = m;
    int threads = tl_get_threads();
    int64_t chunks = N / m;
    /* whole micro-batches per thread when they divide evenly (or there are many); else one child
     * whose kernels split over the pool */
    int nchild = threads > 1 && (chunks % threads == 0 || chunks >= 4 * threads) ? threads : 1;
    if (nchild > chunks) nchild = (int)chunks;
    s->mb_child = calloc((size_t)nchild, sizeof *s->mb_child);
    s->mb_out = calloc((size_t)s->n_out, sizeof *s->mb_out);
    s->mb_out_per = calloc((size_t)s->n_out, sizeof *s->mb_out_per);
    if (!s->mb_child || !s->mb_out || !s->mb_out_per) goto oom;
    for (int t = 0; t < nchild; t++) {
        tl_err e = {0};
        if (tl_session_new(s->m, &ms, s->flags | TL_SESSION_NO_MICROBATCH, &s->mb_child[t], &e)) {
            /* the graph does not run at batch m (it mixes samples): the batch-N plan runs */
            mb_off(s);
            return 0;
        }
        s->mb_nchild = t + 1;
    }
    for (int i = 0; i < s->n_out; i++) {
        const tl_shape *o = &s->shapes[s->out_ids[i]], *co = &s->mb_child[0]->shapes[s->mb_child[0]->out_ids[i]];
        if (co->rank != o->rank || co->dim[0] != m || per_sample(co) != per_sample(o)) {
            mb_off(s);
            return 0;
        }
        s->mb_out_per[i] = per_sample(o);
        s->mb_out[i] = malloc(sizeof(float) * (size_t)(N * s->mb_out_per[i] > 0 ? N * s->mb_out_per[i] : 1));
        if (!s->mb_out[i]) goto oom;
    }
    if (s->ns && !(s->mb_ns = calloc((size_t)(nchild * s->n), sizeof *s->mb_ns))) goto oom;
    s->mb_m = m;
    s->mb_chunks = chunks;
    s->mb_in_per = per_sample(&s->in_shape);
    /* the batch-N plan never runs now: its arena goes, its outputs are the gathered ones */
    char *a = s->arena;
    int64_t abytes = s->arena_bytes;
    for (int64_t id = 0; id < s->n; id++) {
        const char *v = (const char *)s->value[id];
        if (v && v >= a && v < a + (abytes ? abytes : 64)) s->value[id] = NULL;
    }
    for (int i = 0; i < s->n_out; i++) s->value[s->out_ids[i]] = s->mb_out[i];
    free(s->arena);
    s->arena = NULL;
    s->input_buf = NULL;
    s->arena_bytes = 0;
    for (int t = 0; t < nchild; t++) s->arena_bytes += s->mb_child[t]->arena_bytes;
    return 0;
oom:
    mb_off(s);
    return tl_erroom(err, "out of memory (micro-batch sessions)");
}

typedef struct mb_job {
    tl_session *s;
    const float *input;
    _Atomic int rc;
} mb_job;

static void run_chunk(tl_session *s, int t, const float *input, int64_t k, _Atomic int *rc) {
    tl_session *c = s->mb_child[t];
    int64_t m = s->mb_m;
    tl_err e = {0};
    if (tl_session_run(c, input + k * m * s->mb_in_per, &e)) {
        *rc = -1;
        return;
    }
    for (int i = 0; i < s->n_out; i++) {
        int64_t per = s->mb_out_per[i];
        memcpy(s->mb_out[i] + k * m * per, tl_session_output(c, i, NULL), sizeof(float) * (size_t)(m * per));
    }
    if (s->mb_ns && c->ns)
        for (int64_t id = 0; id < s->n; id++) s->mb_ns[t * s->n + id] += c->ns[id];
}

/* part t: chunks [chunks*t/T, chunks*(t+1)/T) on child t */
static void mb_part(void *ctx, int64_t t0, int64_t t1) {
    mb_job *j = ctx;
    tl_session *s = j->s;
    int64_t T = s->mb_nchild;
    for (int64_t t = t0; t < t1; t++)
        for (int64_t k = s->mb_chunks * t / T; k < s->mb_chunks * (t + 1) / T; k++)
            run_chunk(s, (int)t, j->input, k, &j->rc);
}

int tl_mb_run(tl_session *s, const float *input, tl_err *err) {
    if (s->mb_ns) memset(s->mb_ns, 0, sizeof(int64_t) * (size_t)(s->mb_nchild * s->n));
    mb_job j = {s, input, 0};
    if (s->mb_nchild > 1) tl_pool_for(s->mb_nchild, mb_part, &j);
    else mb_part(&j, 0, 1);
    /* PROFILE: a node's time summed over the micro-batches; children that ran side by side on
     * different threads count once per thread (their mean) */
    if (s->mb_ns && s->ns)
        for (int64_t id = 0; id < s->n; id++) {
            int64_t sum = 0;
            for (int t = 0; t < s->mb_nchild; t++) sum += s->mb_ns[t * s->n + id];
            s->ns[id] = sum / s->mb_nchild;
        }
    if (j.rc) return tl_errf(err, "tl_session_run: a micro-batch run failed");
    return 0;
}
