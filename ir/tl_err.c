#include "tl_err.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int tl_errf(tl_err *err, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    /* keep it one line */
    for (char *p = err->msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
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
