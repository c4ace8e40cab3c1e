/* tlrt's worker pool (see tl_pool.h for why it exists and its contract).
 *
 * One job at a time: the caller that wins `busy` writes the job, bumps `gen` and runs its own
 * part; each worker runs part w of every generation it sees (or nothing when w >= T) and
 * decrements `pending`; the caller spins until pending is 0. Workers spin on `gen` while `hot` is
 * non-zero and sleep on `cv` otherwise. All shared words are seq_cst atomics: a worker that reads
 * hot == 0 and then gen unchanged under the mutex cannot miss a job, because the caller bumps gen
 * before it reads hot and broadcasts under the mutex when it reads 0. */
#include "tl_pool.h"

#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>

#include "tlrt/tl_cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TL_PAUSE() _mm_pause()
#else
#define TL_PAUSE() ((void)0)
#endif

#define TL_POOL_MAX 256

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic uint64_t gen;
    _Atomic int hot;
    _Atomic int busy;
    _Atomic int pending;
    _Atomic int nworkers;
    _Atomic uint64_t jobs;
    /* the current job, written by the caller before gen is bumped */
    tl_pool_fn fn;
    void *ctx;
    int64_t n;
    int nt;
} P = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static _Thread_local bool tl_in_job;
/* gen when worker w was created (before the job that created it is published) */
static uint64_t start_gen[TL_POOL_MAX];

bool tl_pool_in_job(void) { return tl_in_job; }

bool tl_pool_is_hot(void) { return atomic_load(&P.hot) > 0; }

static void part(tl_pool_fn fn, void *ctx, int64_t n, int nt, int t) {
    int64_t lo = n * t / nt, hi = n * (t + 1) / nt;
    if (lo < hi) fn(ctx, lo, hi);
}

static void *worker(void *arg) {
    int w = (int)(intptr_t)arg;
    tl_in_job = true;       /* never a caller: nested tl_pool_for / TL_PFOR run serially here */
    omp_set_num_threads(1); /* OpenBLAS's OpenMP build sizes each call by this thread's count */
    uint64_t seen = start_gen[w];
    for (;;) {
        uint64_t g;
        while ((g = atomic_load(&P.gen)) == seen) {
            if (atomic_load(&P.hot) > 0) {
                TL_PAUSE();
                continue;
            }
            pthread_mutex_lock(&P.mu);
            while (atomic_load(&P.gen) == seen && atomic_load(&P.hot) == 0) pthread_cond_wait(&P.cv, &P.mu);
            pthread_mutex_unlock(&P.mu);
        }
        seen = g;
        if (w < P.nt) part(P.fn, P.ctx, P.n, P.nt, w);
        atomic_fetch_sub(&P.pending, 1);
    }
    return NULL;
}

/* fork() copies only the calling thread: the child starts with no workers (and a free pool);
 * without this, its first parallel job would wait for workers that do not exist */
static void after_fork_child(void) {
    pthread_mutex_init(&P.mu, NULL);
    pthread_cond_init(&P.cv, NULL);
    atomic_store(&P.nworkers, 0);
    atomic_store(&P.busy, 0);
    atomic_store(&P.hot, 0);
    atomic_store(&P.pending, 0);
    tl_in_job = false;
}
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void atfork_register(void) { pthread_atfork(NULL, NULL, after_fork_child); }

static void wake_all(void) {
    pthread_mutex_lock(&P.mu);
    pthread_cond_broadcast(&P.cv);
    pthread_mutex_unlock(&P.mu);
}

/* Called with busy held: at least want - 1 workers exist afterwards (fewer if a thread cannot be
 * created; the job then runs on fewer threads, same bits). */
static int grow(int want) {
    pthread_once(&atfork_once, atfork_register);
    int have = atomic_load(&P.nworkers);
    while (have < want - 1 && have < TL_POOL_MAX - 1) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        start_gen[have + 1] = atomic_load(&P.gen);
        int rc = pthread_create(&th, &at, worker, (void *)(intptr_t)(have + 1));
        pthread_attr_destroy(&at);
        if (rc != 0) break;
        have++;
        atomic_store(&P.nworkers, have);
    }
    return have + 1;
}

int tl_pool_threads(int64_t n) {
    if (tl_in_job || n < 2) return 1;
    int t = tl_get_threads();
    if (t > TL_POOL_MAX) t = TL_POOL_MAX;
    return n < t ? (int)n : t;
}

void tl_pool_for(int64_t n, tl_pool_fn fn, void *ctx) {
    if (n <= 0) return;
    int nt = tl_pool_threads(n);
    int idle = 0;
    if (nt < 2 || !atomic_compare_exchange_strong(&P.busy, &idle, 1)) {
        fn(ctx, 0, n);
        return;
    }
    int have = grow(nt);
    if (have < nt) nt = have;
    if (nt < 2) {
        atomic_store(&P.busy, 0);
        fn(ctx, 0, n);
        return;
    }
    P.fn = fn;
    P.ctx = ctx;
    P.n = n;
    P.nt = nt;
    atomic_store(&P.pending, atomic_load(&P.nworkers));
    atomic_fetch_add(&P.jobs, 1);
    atomic_fetch_add(&P.gen, 1);
    if (atomic_load(&P.hot) == 0) wake_all();
    tl_in_job = true;
    part(fn, ctx, n, nt, 0);
    tl_in_job = false;
    while (atomic_load(&P.pending) > 0) TL_PAUSE();
    atomic_store(&P.busy, 0);
}

uint64_t tl_pool_jobs(void) { return atomic_load(&P.jobs); }

void tl_pool_hot_begin(void) {
    if (atomic_fetch_add(&P.hot, 1) == 0 && atomic_load(&P.nworkers) > 0) wake_all();
}

void tl_pool_hot_end(void) { atomic_fetch_sub(&P.hot, 1); }
