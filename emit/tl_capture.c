/* tl_capture.c - prints the capture adapter (scripts/export_torchlean_graph.py, embedded at build
 * time by cmake/embed.cmake) with its options applied:
 *   function_name      renames the helper function (every whole-word occurrence),
 *   prefer_torch_export=false  rewrites the line "PREFER_TORCH_EXPORT = True" to False,
 *   debug_targets=true rewrites the line "INCLUDE_DEBUG_TARGETS = False" to True.
 * With default options the output is the script byte for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tl_emit.h"

extern const unsigned char tl_capture_script_text[];
extern const size_t tl_capture_script_len;

#define TL_CAPTURE_DEFAULT_FN "export_torchlean_graph"

void tl_capture_opts_default(tl_capture_opts *o) {
    o->function_name = TL_CAPTURE_DEFAULT_FN;
    o->prefer_torch_export = true;
    o->debug_targets = false;
}

/* Growable output buffer. */
typedef struct {
    char *p;
    size_t n, cap;
} tl_sbuf;

static int sb_put(tl_sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

static int is_ident_char(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static const char *const PY_KEYWORDS[] = {
    "False", "None",     "True",  "and",    "as",   "assert", "async",  "await",    "break",
    "class", "continue", "def",   "del",    "elif", "else",   "except", "finally",  "for",
    "from",  "global",   "if",    "import", "in",   "is",     "lambda", "nonlocal", "not",
    "or",    "pass",     "raise", "return", "try",  "while",  "with",   "yield",
};

/* A Python identifier (ASCII) that is not a keyword. */
static int valid_function_name(const char *s) {
    if (!s || !*s || (*s >= '0' && *s <= '9')) return 0;
    for (const char *p = s; *p; p++)
        if (!is_ident_char((unsigned char)*p)) return 0;
    for (size_t i = 0; i < sizeof PY_KEYWORDS / sizeof PY_KEYWORDS[0]; i++)
        if (strcmp(s, PY_KEYWORDS[i]) == 0) return 0;
    return strlen(s) <= 200;
}

/* Replace the whole line `from` (exact, at a line start) by `to`; -1 if absent. */
static int replace_line(tl_sbuf *b, const char *from, const char *to) {
    size_t fl = strlen(from), tl = strlen(to);
    for (size_t i = 0; i + fl <= b->n; i++) {
        if ((i == 0 || b->p[i - 1] == '\n') && memcmp(b->p + i, from, fl) == 0 &&
            (i + fl == b->n || b->p[i + fl] == '\n' || b->p[i + fl] == '\r')) {
            tl_sbuf out = {0};
            if (sb_put(&out, b->p, i) || sb_put(&out, to, tl) || sb_put(&out, b->p + i + fl, b->n - i - fl)) {
                free(out.p);
                return -2;
            }
            free(b->p);
            *b = out;
            return 0;
        }
    }
    return -1;
}

int tl_emit_capture_script(const tl_capture_opts *o, FILE *out, tl_err *err) {
    tl_capture_opts def;
    if (!o) {
        tl_capture_opts_default(&def);
        o = &def;
    }
    const char *fn = o->function_name ? o->function_name : TL_CAPTURE_DEFAULT_FN;
    if (!valid_function_name(fn))
        return tl_errf(err, "capture-script: --function-name: \"%s\" is not a Python identifier", fn);

    const char *src = (const char *)tl_capture_script_text;
    size_t len = tl_capture_script_len;
    const char *old = TL_CAPTURE_DEFAULT_FN;
    size_t ol = strlen(old), nl = strlen(fn);
    tl_sbuf b = {0};
    int rc = 0;

    /* Rename every whole-word occurrence of the default helper name. */
    size_t i = 0, start = 0;
    while (i + ol <= len) {
        if (memcmp(src + i, old, ol) == 0 && (i == 0 || !is_ident_char((unsigned char)src[i - 1])) &&
            (i + ol == len || !is_ident_char((unsigned char)src[i + ol]))) {
            if (sb_put(&b, src + start, i - start) || sb_put(&b, fn, nl)) goto oom;
            i += ol;
            start = i;
        } else {
            i++;
        }
    }
    if (sb_put(&b, src + start, len - start)) goto oom;

    if (!o->prefer_torch_export) {
        rc = replace_line(&b, "PREFER_TORCH_EXPORT = True", "PREFER_TORCH_EXPORT = False");
        if (rc == -2) goto oom;
        if (rc == -1) {
            free(b.p);
            return tl_errf(err, "capture-script: embedded script has no line \"PREFER_TORCH_EXPORT = True\"");
        }
    }
    if (o->debug_targets) {
        rc = replace_line(&b, "INCLUDE_DEBUG_TARGETS = False", "INCLUDE_DEBUG_TARGETS = True");
        if (rc == -2) goto oom;
        if (rc == -1) {
            free(b.p);
            return tl_errf(err, "capture-script: embedded script has no line \"INCLUDE_DEBUG_TARGETS = False\"");
        }
    }

    if (b.n && fwrite(b.p, 1, b.n, out) != b.n) {
        free(b.p);
        return tl_errf(err, "capture-script: write failed");
    }
    free(b.p);
    if (fflush(out) != 0) return tl_errf(err, "capture-script: write failed");
    return 0;
oom:
    free(b.p);
    return tl_erroom(err, "capture-script: out of memory");
}
