/* tl_memplan.h - the activation-arena planner: buffers with lifetimes in, one offset per buffer
 * and the arena size out. It knows nothing about graphs or steps; tl_session.c turns its values,
 * scratch slots and in-place merges into buffers and maps a failing buffer back to its node.
 *
 *   tl_memplan *p = tl_memplan_new();
 *   int64_t b = tl_memplan_add(p, first, last, bytes, &err);   // -> 0, 1, 2, ... (or -1)
 *   ...
 *   int64_t total;
 *   if (tl_memplan_place(p, TL_MEMPLAN_NO_LIMIT, &total, &err)) ...  // tl_memplan_failed(p)
 *   off = tl_memplan_offset(p, b);
 *   tl_memplan_free(p);
 *
 * Lifetimes are inclusive step indices [first, last], 0 <= first <= last; last may be
 * TL_MEMPLAN_LIVE_END (INT64_MAX: alive to the end of the run). Two buffers conflict when their
 * lifetimes intersect; conflicting buffers never overlap in memory. Every size is rounded up to
 * 64 bytes and every offset is a multiple of 64. A zero-byte buffer occupies nothing (offset 0).
 *
 * Ownership: the planner owns all its memory (tl_memplan_free releases it); it keeps no pointer
 * to caller memory. tl_memplan_check_layout reads the caller's arrays and keeps nothing.
 *
 * Everything here is deterministic: the same buffers added in the same order give the same
 * offsets. The algorithm and its cost are described at the top of tl_memplan.c. */
#ifndef TL_MEMPLAN_H
#define TL_MEMPLAN_H
#include <stdint.h>
#include "tl_err.h"

#define TL_MEMPLAN_LIVE_END INT64_MAX
#define TL_MEMPLAN_NO_LIMIT INT64_MAX
#define TL_MEMPLAN_ALIGN 64

typedef struct tl_memplan tl_memplan;

/* A new, empty planner; NULL when out of memory. */
tl_memplan *tl_memplan_new(void);
void tl_memplan_free(tl_memplan *p);

/* Add a buffer alive over steps [first, last] (inclusive) of `bytes` bytes. Returns its index
 * (0, 1, 2, ... in order of addition) or -1: TL_ERR_INTERNAL for a bad lifetime or size (a bug
 * in the caller), TL_ERR_OOM when the planner cannot grow. Adding after tl_memplan_place is
 * allowed; place again to get offsets for the new buffer set. */
int64_t tl_memplan_add(tl_memplan *p, int64_t first, int64_t last, int64_t bytes, tl_err *err);

/* Place every buffer; *total receives the arena size in bytes (a multiple of 64; 0 when nothing
 * occupies memory). A buffer that would end beyond `limit` bytes fails the plan with TL_ERR_OOM
 * and a message naming that buffer's bytes; tl_memplan_failed then says which buffer it was, so
 * that the caller can name the node ("node[i] needs N bytes"). Pass TL_MEMPLAN_NO_LIMIT for
 * none. Returns 0 or -1. */
int tl_memplan_place(tl_memplan *p, int64_t limit, int64_t *total, tl_err *err);

int64_t tl_memplan_count(const tl_memplan *p);
/* Offset of buffer i after a successful tl_memplan_place; -1 for a bad index or before placing. */
int64_t tl_memplan_offset(const tl_memplan *p, int64_t i);
/* The buffer that crossed the limit in the last failed tl_memplan_place, else -1. */
int64_t tl_memplan_failed(const tl_memplan *p);
/* Its size as the plan counts it (rounded up to 64), for the caller's message; -1 bad index. */
int64_t tl_memplan_bytes(const tl_memplan *p, int64_t i);

/* Verify the placement of p (after tl_memplan_place): tl_memplan_check_layout over its buffers. */
int tl_memplan_check(const tl_memplan *p, tl_err *err);

/* Verify a layout given as arrays of n buffers: every offset is a non-negative multiple of 64,
 * offset + round64(bytes) <= total, and no two buffers whose lifetimes [first[i], last[i]]
 * intersect overlap in [offset, offset + round64(bytes)). Zero-byte buffers are not checked for
 * overlap. O(n log n): a sweep over time keeping the live buffers ordered by offset (a new
 * buffer only needs checking against its neighbours there, since the live set is disjoint).
 * Returns 0, or -1 with TL_ERR_INTERNAL naming the two buffers that overlap (or the bad one);
 * TL_ERR_OOM when its scratch cannot be allocated. */
int tl_memplan_check_layout(int64_t n, const int64_t *first, const int64_t *last, const int64_t *bytes,
                            const int64_t *offset, int64_t total, tl_err *err);

#endif
