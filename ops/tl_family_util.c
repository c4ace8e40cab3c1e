/* tl_family_util.c - small helpers the op families share (see tl_family.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_family.h"

int tl_node_err(tl_err *err, int64_t id, const char *field, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    tl_verrk(err, TL_ERR_BAD_INPUT, fmt, ap);
    va_end(ap);
    char where[128];
    snprintf(where, sizeof where, "node[%lld]%s%s", (long long)id, field ? "." : "", field ? field : "");
    return tl_err_prefix(err, where);
}

const char *tl_nats_str(const int64_t *v, int n, char *buf, size_t len) {
    tl_shape s;
    memset(&s, 0, sizeof s);
    s.rank = n < 0 ? 0 : (n > TL_MAX_RANK ? TL_MAX_RANK : n);
    for (int i = 0; i < s.rank; i++) s.dim[i] = v[i];
    return tl_shape_str(&s, buf, len);
}

int tl_mul_ok(int64_t a, int64_t b, int64_t *out) {
    if (a < 0 || b < 0) return -1;
    if (a != 0 && b > TL_MAX_NUMEL / a) return -1;
    *out = a * b;
    return 0;
}

int tl_check_axis(int64_t id, const char *field, int64_t axis, const tl_shape *s, tl_err *err) {
    if (axis < 0 || axis >= s->rank)
        return tl_node_err(err, id, field, "invalid axis %lld for rank %d", (long long)axis, s->rank);
    return 0;
}

int64_t tl_prod(const int64_t *d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

void tl_emit_param_name(const tl_graph *g, const tl_node *n, int slot, char *buf, size_t len) {
    tl_param_file_name(g, n, slot, buf, len);
    if (buf[0] || len == 0) return;
    char own[80];
    tl_param_name(n, slot, own, sizeof own);
    snprintf(buf, len, "mha%lld_%s", (long long)tl_node_file_id(g, n), own);
}

void tl_sb_py_tuple(tl_strbuf *b, const int64_t *v, int n) {
    tl_sb_putc(b, '(');
    for (int i = 0; i < n; i++) tl_sb_printf(b, "%s%lld", i ? ", " : "", (long long)v[i]);
    tl_sb_printf(b, "%s)", n == 1 ? "," : "");
}

void tl_sb_py_call(tl_strbuf *b, const char *fn, const int64_t *v, int n) {
    tl_sb_printf(b, "%s(", fn);
    tl_sb_py_tuple(b, v, n);
    tl_sb_putc(b, ')');
}

void tl_sb_py_shape_call(const tl_emit_ctx *c, const char *fn, const tl_shape *s) {
    int64_t d[TL_MAX_RANK];
    for (int i = 0; i < s->rank; i++) d[i] = s->dim[i];
    if (c->batched && s->rank > 0) d[0] = -1;
    tl_sb_py_call(c->b, fn, d, s->rank);
}

void tl_sb_py_double(tl_strbuf *b, double d) {
    if (isnan(d)) tl_sb_printf(b, "nan");
    else if (isinf(d)) tl_sb_printf(b, d > 0 ? "inf" : "-inf");
    else {
        char buf[64];
        for (int prec = 1; prec <= 17; prec++) { /* shortest text that reads back exactly */
            snprintf(buf, sizeof buf, "%.*g", prec, d);
            if (strtod(buf, NULL) == d) break;
        }
        tl_sb_printf(b, "%s%s", buf, strpbrk(buf, ".eE") ? "" : ".0");
    }
}

float *tl_fold_row_affine(const float *w, const float *b, int64_t rows, int64_t per, const double *scale,
                          const double *shift) {
    float *own = malloc(sizeof(float) * (size_t)(rows * per + rows));
    if (!own) return NULL;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t k = 0; k < per; k++) own[r * per + k] = (float)((double)w[r * per + k] * scale[r]);
        own[rows * per + r] = (float)((b ? (double)b[r] : 0.0) * scale[r] + shift[r]);
    }
    return own;
}
