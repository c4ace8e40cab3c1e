/* tl_strbuf.c - growable string buffer (see tl_strbuf.h). */
#include "tl_strbuf.h"
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *tl_sb_reserve(tl_strbuf *b, size_t len) {
    if (b->oom) return NULL;
    if (len > SIZE_MAX - 1 - b->n) { /* n + len + 1 would wrap around to a small size */
        b->oom = true;
        return NULL;
    }
    if (b->n + len + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < b->n + len + 1) {
            if (ncap > ((size_t)-1) / 2) {
                b->oom = true;
                return NULL;
            }
            ncap *= 2;
        }
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return NULL;
        }
        b->p = np;
        b->cap = ncap;
    }
    return b->p + b->n;
}

void tl_sb_commit(tl_strbuf *b, size_t len) {
    if (b->oom || !b->p) return;
    b->n += len;
    b->p[b->n] = 0;
}

void tl_sb_append(tl_strbuf *b, const void *data, size_t len) {
    char *dst = tl_sb_reserve(b, len);
    if (!dst) return;
    if (len) memcpy(dst, data, len);
    tl_sb_commit(b, len);
}

void tl_sb_putc(tl_strbuf *b, char c) { tl_sb_append(b, &c, 1); }

void tl_sb_printf(tl_strbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0) {
        b->oom = true;
        return;
    }
    char *dst = tl_sb_reserve(b, (size_t)k);
    if (!dst) return;
    va_start(ap, fmt);
    vsnprintf(dst, (size_t)k + 1, fmt, ap);
    va_end(ap);
    tl_sb_commit(b, (size_t)k);
}

void tl_sb_free(tl_strbuf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    b->oom = false;
}

char *tl_sb_take(tl_strbuf *b, size_t *len) {
    if (b->oom) {
        tl_sb_free(b);
        return NULL;
    }
    char *p = b->p ? b->p : calloc(1, 1);
    if (len) *len = b->n;
    b->p = NULL;
    b->n = b->cap = 0;
    return p;
}
