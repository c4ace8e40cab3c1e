/* tl_diff_stats.c - element statistics for tldiff (see tl_diff.h). */
#include <float.h>
#include <math.h>
#include <string.h>
#include "tl_diff.h"

static int64_t ordered(float f) {
    int32_t i;
    memcpy(&i, &f, sizeof i);
    /* sign-magnitude -> monotonic integer line; +0 and -0 both map to 0 */
    return i >= 0 ? (int64_t)i : -(int64_t)(i & 0x7fffffff);
}

int64_t tl_diff_ulp(float a, float b) {
    bool na = isnan(a), nb = isnan(b);
    if (na && nb) return 0;
    if (na || nb) return INT64_MAX;
    int64_t d = ordered(a) - ordered(b);
    return d < 0 ? -d : d;
}

bool tl_diff_elem_ok(float a, float e, const tl_diff_tol *tol) {
    bool na = isnan(a), ne = isnan(e);
    if (na || ne) return na && ne;
    if (isinf(a) || isinf(e)) return a == e;
    double d = fabs((double)a - (double)e);
    if (d <= tol->atol + tol->rtol * fabs((double)e)) return true;
    return tol->ulp >= 0 && tl_diff_ulp(a, e) <= tol->ulp;
}

void tl_diff_compare(const float *a, const float *e, int64_t n, const tl_diff_tol *tol, tl_diff_stats *st) {
    memset(st, 0, sizeof *st);
    st->numel = n;
    st->worst = -1;
    double worst_excess = -HUGE_VAL, worst_abs = 0.0;
    bool worst_is_mismatch = false;
    for (int64_t i = 0; i < n; i++) {
        float x = a[i], y = e[i];
        bool ok = tl_diff_elem_ok(x, y, tol);
        double d, rel, excess;
        int64_t ulp = tl_diff_ulp(x, y);
        if (isnan(x) || isnan(y)) {
            d = ok ? 0.0 : HUGE_VAL;
        } else if (isinf(x) || isinf(y)) {
            d = x == y ? 0.0 : HUGE_VAL;
        } else {
            d = fabs((double)x - (double)y);
        }
        if (d == 0.0) rel = 0.0;
        else if (!isnan(y) && !isinf(y) && y != 0.0f) rel = d / fabs((double)y);
        else rel = HUGE_VAL;
        excess = isinf(d) ? HUGE_VAL : d - (tol->atol + tol->rtol * (isinf(y) || isnan(y) ? 0.0 : fabs((double)y)));
        if (!ok) st->mismatches++;
        if (d > st->max_abs) st->max_abs = d;
        if (rel > st->max_rel) st->max_rel = rel;
        if (ulp > st->max_ulp) st->max_ulp = ulp;
        /* worst: a mismatch beats a pass; then the larger excess; among passes the larger |a-e| */
        if (!ok) {
            if (!worst_is_mismatch || excess > worst_excess) {
                worst_is_mismatch = true;
                worst_excess = excess;
                st->worst = i;
            }
        } else if (!worst_is_mismatch && d > worst_abs) {
            worst_abs = d;
            st->worst = i;
        }
    }
    st->pass = st->mismatches == 0;
}

static int64_t ordered64(double f) {
    int64_t i;
    memcpy(&i, &f, sizeof i);
    return i >= 0 ? i : -(i & INT64_MAX);
}

static int64_t ulp64(double a, double b) {
    bool na = isnan(a), nb = isnan(b);
    if (na && nb) return 0;
    if (na || nb) return INT64_MAX;
    /* the difference of two ordered doubles can overflow int64: saturate */
    int64_t x = ordered64(a), y = ordered64(b);
    if ((x > 0 && y < 0 && x > INT64_MAX + y) || (x < 0 && y > 0 && y > INT64_MAX + x)) return INT64_MAX;
    int64_t d = x - y;
    return d < 0 ? -d : d;
}

static bool elem_ok64(double a, double e, const tl_diff_tol *tol) {
    bool na = isnan(a), ne = isnan(e);
    if (na || ne) return na && ne;
    if (isinf(a) || isinf(e)) return a == e;
    if (fabs(a - e) <= tol->atol + tol->rtol * fabs(e)) return true;
    return tol->ulp >= 0 && ulp64(a, e) <= tol->ulp;
}

/* tl_diff_compare's loop on doubles (kept apart: the float version's ULPs are float32 ULPs). */
void tl_diff_compare64(const double *a, const double *e, int64_t n, const tl_diff_tol *tol, tl_diff_stats *st) {
    memset(st, 0, sizeof *st);
    st->numel = n;
    st->worst = -1;
    double worst_excess = -HUGE_VAL, worst_abs = 0.0;
    bool worst_is_mismatch = false;
    for (int64_t i = 0; i < n; i++) {
        double x = a[i], y = e[i];
        bool ok = elem_ok64(x, y, tol);
        double d, rel, excess;
        int64_t ulp = ulp64(x, y);
        if (isnan(x) || isnan(y)) d = ok ? 0.0 : HUGE_VAL;
        else if (isinf(x) || isinf(y)) d = x == y ? 0.0 : HUGE_VAL;
        else d = fabs(x - y);
        if (d == 0.0) rel = 0.0;
        else if (!isnan(y) && !isinf(y) && y != 0.0) rel = d / fabs(y);
        else rel = HUGE_VAL;
        excess = isinf(d) ? HUGE_VAL : d - (tol->atol + tol->rtol * (isinf(y) || isnan(y) ? 0.0 : fabs(y)));
        if (!ok) st->mismatches++;
        if (d > st->max_abs) st->max_abs = d;
        if (rel > st->max_rel) st->max_rel = rel;
        if (ulp > st->max_ulp) st->max_ulp = ulp;
        if (!ok) {
            if (!worst_is_mismatch || excess > worst_excess) {
                worst_is_mismatch = true;
                worst_excess = excess;
                st->worst = i;
            }
        } else if (!worst_is_mismatch && d > worst_abs) {
            worst_abs = d;
            st->worst = i;
        }
    }
    st->pass = st->mismatches == 0;
}

/* ---------------------------------------------------------------- error vs float64 */
double tl_diff_ulp32(double r) {
    float f = (float)fabs(r);
    if (isnan(f)) return (double)NAN;
    if (f >= FLT_MAX) return (double)FLT_MAX - (double)nextafterf(FLT_MAX, 0.0f);
    return (double)nextafterf(f, INFINITY) - (double)f;
}

void tl_err64_init(tl_err64 *acc) {
    memset(acc, 0, sizeof *acc);
    acc->worst = -1;
}

static void err64_norm(tl_err64 *st) {
    st->norm = st->sum_sq_ref > 0.0 ? sqrt(st->sum_sq_err / st->sum_sq_ref) : sqrt(st->sum_sq_err);
}

double tl_diff_ulp64(double r) {
    double f = fabs(r);
    if (isnan(f)) return (double)NAN;
    if (f >= DBL_MAX) return DBL_MAX - nextafter(DBL_MAX, 0.0);
    return nextafter(f, (double)INFINITY) - f;
}

/* One loop for both scales: float32 (f64 false: ulp32, FLT_MIN guard) or float64 (ulp64, DBL_MIN). */
static void err64_compare(const double *a, const double *r, int64_t n, bool f64, tl_err64 *st) {
    const double tiny = f64 ? DBL_MIN : (double)FLT_MIN;
    tl_err64_init(st);
    st->numel = n;
    for (int64_t i = 0; i < n; i++) {
        double x = a[i], y = r[i], d;
        if (isnan(x) || isnan(y)) d = isnan(x) && isnan(y) ? 0.0 : HUGE_VAL;
        else if (isinf(x) || isinf(y)) d = x == y ? 0.0 : HUGE_VAL;
        else d = fabs(x - y);
        if (isfinite(y)) {
            if (fabs(y) > st->ref_max) st->ref_max = fabs(y);
            st->sum_sq_ref += y * y;
        }
        if (d == 0.0) continue;
        double den = fabs(y) > tiny ? fabs(y) : tiny;
        double rel = isfinite(y) ? d / den : HUGE_VAL;
        double u = isfinite(y) ? d / (f64 ? tl_diff_ulp64(y) : tl_diff_ulp32(y)) : HUGE_VAL;
        st->sum_sq_err += d * d;
        if (d > st->max_abs || st->worst < 0) {
            st->max_abs = d > st->max_abs ? d : st->max_abs;
            st->worst = i;
        }
        if (rel > st->max_rel) st->max_rel = rel;
        if (u > st->max_ulp) st->max_ulp = u;
    }
    err64_norm(st);
}

void tl_err64_compare(const double *a, const double *r, int64_t n, tl_err64 *st) {
    err64_compare(a, r, n, false, st);
}

void tl_agree64_compare(const double *a, const double *r, int64_t n, tl_err64 *st) {
    err64_compare(a, r, n, true, st);
}

void tl_err64_merge(tl_err64 *acc, const tl_err64 *s) {
    acc->numel += s->numel;
    if (s->max_abs > acc->max_abs) acc->max_abs = s->max_abs;
    if (s->max_rel > acc->max_rel) acc->max_rel = s->max_rel;
    if (s->max_ulp > acc->max_ulp) acc->max_ulp = s->max_ulp;
    if (s->ref_max > acc->ref_max) acc->ref_max = s->ref_max;
    acc->sum_sq_err += s->sum_sq_err;
    acc->sum_sq_ref += s->sum_sq_ref;
    err64_norm(acc);
}

double tl_diff_f64_bound(const tl_err64 *torch, double k, double floor_ulps) {
    return k * torch->max_abs + floor_ulps * tl_diff_ulp32(torch->ref_max);
}

bool tl_diff_f64_pass(const tl_err64 *tlrt, const tl_err64 *torch, double k, double floor_ulps) {
    /* an infinite tlrt error passes only against an infinite PyTorch error (both overflowed) */
    if (isinf(tlrt->max_abs)) return isinf(torch->max_abs);
    return tlrt->max_abs <= tl_diff_f64_bound(torch, k, floor_ulps);
}

void tl_diff_stats_init(tl_diff_stats *acc) {
    memset(acc, 0, sizeof *acc);
    acc->worst = -1;
    acc->pass = true;
}

void tl_diff_merge(tl_diff_stats *acc, const tl_diff_stats *s) {
    acc->numel += s->numel;
    acc->mismatches += s->mismatches;
    if (s->max_abs > acc->max_abs) acc->max_abs = s->max_abs;
    if (s->max_rel > acc->max_rel) acc->max_rel = s->max_rel;
    if (s->max_ulp > acc->max_ulp) acc->max_ulp = s->max_ulp;
    acc->pass = acc->pass && s->pass;
}

void tl_diff_unravel(int64_t flat, const tl_shape *s, int64_t *idx) {
    for (int i = s->rank - 1; i >= 0; i--) {
        int64_t d = s->dim[i] > 0 ? s->dim[i] : 1;
        idx[i] = flat % d;
        flat /= d;
    }
}
