/* tl_err.c - typed one-line errors (see tl_err.h). */
#include "tl_err.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int vset(tl_err *err, tl_err_kind kind, const char *fmt, va_list ap) {
    if (!err) return -1;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    err->kind = kind;
    /* keep it one line */
    for (char *p = err->msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return -1;
}

int tl_verrk(tl_err *err, tl_err_kind kind, const char *fmt, va_list ap) { return vset(err, kind, fmt, ap); }

int tl_errf(tl_err *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset(err, TL_ERR_BAD_INPUT, fmt, ap);
    va_end(ap);
    return -1;
}

int tl_errk(tl_err *err, tl_err_kind kind, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset(err, kind, fmt, ap);
    va_end(ap);
    return -1;
}

int tl_erroom(tl_err *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset(err, TL_ERR_OOM, fmt, ap);
    va_end(ap);
    return -1;
}

int tl_err_as(tl_err *err, tl_err_kind kind) {
    if (err) err->kind = kind;
    return -1;
}

int tl_err_prefix(tl_err *err, const char *prefix) {
    if (!err) return -1;
    char tmp[TL_ERR_MAX];
    size_t n = strlen(prefix);
    if (n > TL_ERR_MAX / 2) n = TL_ERR_MAX / 2;
    memcpy(tmp, prefix, n);
    tmp[n] = ':';
    tmp[n + 1] = ' ';
    size_t rest = TL_ERR_MAX - n - 3;
    size_t m = strnlen(err->msg, rest);
    memcpy(tmp + n + 2, err->msg, m);
    tmp[n + 2 + m] = 0;
    memcpy(err->msg, tmp, sizeof tmp);
    return -1;
}

int tl_err_exit_status(const tl_err *err) {
    if (!err) return 1;
    switch (err->kind) {
    case TL_ERR_BAD_INPUT:
    case TL_ERR_UNSUPPORTED: return 2;
    case TL_ERR_OOM: return 3;
    case TL_ERR_IO:
    case TL_ERR_INTERNAL:
    case TL_ERR_KIND_COUNT: return 1;
    }
    return 1;
}

const char *tl_err_kind_name(tl_err_kind kind) {
    switch (kind) {
    case TL_ERR_BAD_INPUT: return "bad input";
    case TL_ERR_UNSUPPORTED: return "unsupported";
    case TL_ERR_OOM: return "out of memory";
    case TL_ERR_IO: return "I/O error";
    case TL_ERR_INTERNAL: return "internal error";
    case TL_ERR_KIND_COUNT: break;
    }
    return "error";
}
