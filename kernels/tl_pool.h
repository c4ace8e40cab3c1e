/* tlrt's worker pool: the threads every float32 kernel and GEMM splits its work over.
 *
 * Why not OpenMP's team: each `omp parallel` ends with the workers going back to libgomp's dock,
 * and under OMP_WAIT_POLICY=PASSIVE (or once GOMP_SPINCOUNT runs out) the next region wakes them
 * with a futex. On the KVM dev machine that wake-up costs 40-75 us (median; measured with an empty
 * region, /tmp-free harness in docs/threads.md) -- more than most steps of a batch-1 run take, so
 * a second thread made every small model slower. Here the workers spin (pause loop) while a
 * session run is in progress (tl_pool_hot_begin / _end bracket each run) and sleep on a condition
 * variable otherwise: a hand-off inside a run costs well under a microsecond, and no worker spins
 * on a core outside tlrt's own calls.
 *
 * Split: tl_pool_for(n, fn, ctx) calls fn(ctx, lo, hi) on T = min(tl_get_threads(), n) threads
 * with the static schedule lo = n*t/T, hi = n*(t+1)/T (the caller is thread 0), like OpenMP's
 * schedule(static): callers make each index write disjoint outputs, so the bits never depend on T.
 * A call made while the pool is busy (a nested call, or a session run on another application
 * thread) runs fn(ctx, 0, n) on the calling thread.
 *
 * The remaining OpenMP loops (TL_PFOR) run serially while the pool is hot, so two pools never
 * spin against each other on the same cores. */
#ifndef TL_POOL_H
#define TL_POOL_H

#include <stdbool.h>
#include <stdint.h>

typedef void (*tl_pool_fn)(void *ctx, int64_t lo, int64_t hi);

void tl_pool_for(int64_t n, tl_pool_fn fn, void *ctx);

/* Threads tl_pool_for would use for n items right now (1 when busy, nested or single-threaded). */
int tl_pool_threads(int64_t n);

/* Jobs dispatched to workers so far (process-wide): a session compares it before and after a
 * run to learn whether its runs use the pool at all. */
uint64_t tl_pool_jobs(void);

/* A session run starts / ends: workers spin between jobs while at least one run is hot. */
void tl_pool_hot_begin(void);
void tl_pool_hot_end(void);
bool tl_pool_is_hot(void);

/* True on a pool worker thread and on a caller inside its own part of a job. */
bool tl_pool_in_job(void);

#endif
