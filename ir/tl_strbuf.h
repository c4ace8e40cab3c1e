/* tl_strbuf.h - the one growable string buffer of tlrt (emitters, JSON and safetensors writers).
 * Appends never fail loudly: an allocation failure sets `oom`, later appends are no-ops, and the
 * owner checks `oom` once at the end (so a writer has one error path, not one per append).
 * Ownership: the buffer owns `p`; tl_strbuf_free releases it; tl_strbuf_take hands it over. */
#ifndef TL_STRBUF_H
#define TL_STRBUF_H
#include <stdbool.h>
#include <stddef.h>

typedef struct tl_strbuf {
    char *p;       /* NUL-terminated once anything was appended; NULL while empty */
    size_t n, cap; /* bytes used (without the NUL), bytes allocated */
    bool oom;      /* an append failed: the contents are incomplete */
} tl_strbuf;

#define TL_STRBUF_INIT \
    { NULL, 0, 0, false }

void tl_sb_printf(tl_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tl_sb_append(tl_strbuf *b, const void *data, size_t len); /* raw bytes (may hold NULs) */
void tl_sb_putc(tl_strbuf *b, char c);
/* Make room for `len` more bytes; returns a pointer to write them (then tl_sb_commit), or NULL. */
char *tl_sb_reserve(tl_strbuf *b, size_t len);
void tl_sb_commit(tl_strbuf *b, size_t len);
void tl_sb_free(tl_strbuf *b);
/* Hand the buffer to the caller (free() it); the strbuf is empty afterwards. NULL on oom. */
char *tl_sb_take(tl_strbuf *b, size_t *len);

#endif
