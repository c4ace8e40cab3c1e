/* tl_diff_stats.c - element statistics for tldiff (see tl_diff.h). */
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
