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
/* The same rule on float64 values (a float64 capture's emitted-vs-original pair); max_ulp counts
 * float64 ULPs there. */
void tl_diff_compare64(const double *a, const double *e, int64_t n, const tl_diff_tol *tol, tl_diff_stats *st);
/* torch.testing.assert_close float64 defaults (the float64 pair's tolerance) */
#define TL_DIFF_ATOL64 1e-7
#define TL_DIFF_RTOL64 1e-7

/* ---- error against a float64 reference ("error vs float64")
 * a is a lower-precision implementation's value widened to double, r the float64 reference:
 *   max_abs = max |a - r|
 *   max_rel = max |a - r| / max(|r|, FLT_MIN)          (the guard keeps r == 0 finite)
 *   max_ulp = max |a - r| / ulp32(r), ulp32(r) = the float32 spacing at |r| rounded to float32
 *             (fractional: 0.5 is the error of correct rounding)
 *   norm    = ||a - r||_2 / ||r||_2                     (||a - r||_2 when r is all zero)
 * NaN against NaN and an infinity against the same infinity are no error; any other non-finite
 * pair is an infinite error. ref_max = max |r| over the finite r: the tensor's magnitude scale. */
typedef struct tl_err64 {
    int64_t numel;
    double max_abs, max_rel, max_ulp, norm, ref_max;
    double sum_sq_err, sum_sq_ref; /* the norm's sums (kept for tl_err64_merge) */
    int64_t worst;                 /* flat index of the largest |a - r|; -1 when a == r everywhere */
} tl_err64;

/* float32 spacing at |r| rounded to float32 (2^-149 at 0; the spacing below FLT_MAX beyond it). */
double tl_diff_ulp32(double r);
void tl_err64_compare(const double *a, const double *r, int64_t n, tl_err64 *st);
void tl_err64_init(tl_err64 *acc);
/* Over several tensors/inputs: maxima, and the norm of the concatenation. */
void tl_err64_merge(tl_err64 *acc, const tl_err64 *s);

/* ---- agreement of two float64 implementations (tlrt float64 vs PyTorch float64, or vs a float64
 * capture's original outputs): the same quantities at float64 scale,
 *   max_rel = max |a - r| / max(|r|, DBL_MIN)
 *   max_ulp = max |a - r| / ulp64(r), ulp64(r) = the float64 spacing at |r| (fractional; inf when
 *             the quotient overflows: an error of 1e-15 or more where r is 0 or subnormal)
 * max_abs, norm, ref_max and the non-finite cases as tl_err64_compare; tl_err64_merge merges it. */
double tl_diff_ulp64(double r);
void tl_agree64_compare(const double *a, const double *r, int64_t n, tl_err64 *st);

/* ---- the "f64" pass rule (tldiff's default): tlrt passes a tensor when
 *   tlrt.max_abs <= k * torch.max_abs + floor_ulps * ulp32(torch.ref_max)
 * (both errors against the same float64 reference): tlrt's worst error may be k times PyTorch
 * float32's worst error, plus a floor of a few float32 ULPs of the tensor's magnitude scale, so a
 * value PyTorch happens to compute exactly still admits tlrt's ordinary rounding. */
#define TL_DIFF_F64_K 8.0
#define TL_DIFF_F64_FLOOR_ULPS 8.0
double tl_diff_f64_bound(const tl_err64 *torch, double k, double floor_ulps);
bool tl_diff_f64_pass(const tl_err64 *tlrt, const tl_err64 *torch, double k, double floor_ulps);

/* Flat row-major index -> multi-index of `s` (idx has s->rank entries). */
void tl_diff_unravel(int64_t flat, const tl_shape *s, int64_t *idx);

#endif
