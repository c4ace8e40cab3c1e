/* tl_diff.h - element comparison for tldiff (runtime-independent helpers).
 * Pass rule per element (torch.testing.assert_close style): |a - e| <= atol + rtol * |e|, where e is
 * the reference; with ulp >= 0 an element within that many float32 ULPs passes too. NaN vs NaN is
 * equal, NaN vs a number is a mismatch, an infinity must match exactly. */
#ifndef TL_DIFF_H
#define TL_DIFF_H
#include <stdbool.h>
#include <stdint.h>
#include "tl_shape.h"

/* torch.testing.assert_close float32 defaults */
#define TL_DIFF_ATOL 1e-5
#define TL_DIFF_RTOL 1.3e-6

typedef struct tl_diff_tol {
    double atol, rtol;
    int64_t ulp; /* < 0: ULP rule off */
} tl_diff_tol;

typedef struct tl_diff_stats {
    int64_t numel;
    int64_t mismatches;
    double max_abs;  /* inf for NaN-vs-number / inf-vs-finite */
    double max_rel;  /* |a-e|/|e|; inf where e == 0 and a != e */
    int64_t max_ulp; /* INT64_MAX where not comparable (NaN vs number) */
    int64_t worst;   /* flat index of the worst element (largest excess over the tolerance,
                              * else largest |a-e|); -1 when every element is identical */
    bool pass;
} tl_diff_stats;

/* Distance in float32 ULPs (+0 == -0); INT64_MAX if exactly one is NaN, 0 if both are. */
int64_t tl_diff_ulp(float a, float b);
/* Element passes the rule above? */
bool tl_diff_elem_ok(float a, float e, const tl_diff_tol *tol);
/* Compare a (actual) against e (expected), n elements. */
void tl_diff_compare(const float *a, const float *e, int64_t n, const tl_diff_tol *tol, tl_diff_stats *st);
/* Aggregate over several comparisons: init (all zero, pass) then merge each (worst stays -1). */
void tl_diff_stats_init(tl_diff_stats *acc);
void tl_diff_merge(tl_diff_stats *acc, const tl_diff_stats *s);
/* Flat row-major index -> multi-index of `s` (idx has s->rank entries). */
void tl_diff_unravel(int64_t flat, const tl_shape *s, int64_t *idx);

#endif
