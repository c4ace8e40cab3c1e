#include "tl_shape.h"
#include <stdio.h>
#include <string.h>

bool tl_shape_eq(const tl_shape *a, const tl_shape *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i]) return false;
    return true;
}

int tl_shape_numel_checked(const tl_shape *s, int64_t *out) {
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        int64_t d = s->dim[i];
        if (d < 0 || d > TL_MAX_NUMEL) return -1;
        if (d != 0 && n > TL_MAX_NUMEL / d) return -1;
        n *= d;
    }
    if (n > TL_MAX_NUMEL) return -1;
    *out = n;
    return 0;
}

int64_t tl_shape_numel(const tl_shape *s) {
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= s->dim[i];
    return n;
}

char *tl_shape_str(const tl_shape *s, char *buf, size_t n) {
    size_t off = 0;
    off += (size_t)snprintf(buf + off, n - off, "[");
    for (int i = 0; i < s->rank && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld", i ? ", " : "", (long long)s->dim[i]);
    if (off < n) snprintf(buf + off, n - off, "]");
    return buf;
}

tl_shape tl_shape_make(int rank, const int64_t *dims) {
    tl_shape s;
    memset(&s, 0, sizeof s);
    s.rank = rank;
    for (int i = 0; i < rank; i++) s.dim[i] = dims[i];
    return s;
}
