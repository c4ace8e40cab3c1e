/* test_strbuf.c - ir/tl_strbuf: appends across growth boundaries (compared with a plain array
 * filled the same way), NUL bytes, printf longer than any internal chunk, reserve/commit,
 * take/free ownership, and the oom flag (set by hand and by a size that cannot be allocated). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tl_strbuf.h"
#include "tl_check.h"

/* the contents are exactly want[0..n) followed by a NUL */
static int same(const tl_strbuf *b, const char *want, size_t n) {
    return !b->oom && b->n == n && b->cap > n && b->p && !memcmp(b->p, want, n) && b->p[n] == 0;
}

static void test_growth(void) {
    /* chunks of every length 1..97 until 40000 bytes: crosses 4096, 8192, 16384 and 32768 at
     * every offset mod 97; the oracle is the same bytes written into a plain array */
    enum { TOTAL = 40000 };
    char *want = malloc(TOTAL + 200);
    tl_strbuf b = TL_STRBUF_INIT;
    CHECK(b.p == NULL && b.n == 0 && b.cap == 0 && !b.oom);
    size_t n = 0, k = 1;
    int ok = 1;
    unsigned seed = 12345;
    while (n < TOTAL) {
        char chunk[97];
        for (size_t i = 0; i < k; i++) {
            seed = seed * 1103515245u + 12345u;
            chunk[i] = (char)(seed >> 16); /* any byte, NUL included */
        }
        tl_sb_append(&b, chunk, k);
        memcpy(want + n, chunk, k);
        n += k;
        ok &= same(&b, want, n);
        k = k % 97 + 1;
    }
    CHECK(ok);
    CHECK(b.cap >= n && b.cap <= 2 * 65536); /* doubling from 4096 */
    tl_sb_free(&b);
    CHECK(b.p == NULL && b.n == 0 && b.cap == 0 && !b.oom);
    free(want);
}

static void test_nul_and_putc(void) {
    tl_strbuf b = TL_STRBUF_INIT;
    tl_sb_append(&b, "a\0b", 3);
    tl_sb_putc(&b, '\0');
    tl_sb_putc(&b, 'c');
    tl_sb_append(&b, "", 0);
    CHECK(same(&b, "a\0b\0c", 5));
    size_t len = 99;
    char *p = tl_sb_take(&b, &len);
    CHECK(p && len == 5 && !memcmp(p, "a\0b\0c", 6));
    CHECK(b.p == NULL && b.n == 0 && b.cap == 0); /* the buffer is empty and reusable */
    free(p);
    tl_sb_putc(&b, 'z');
    CHECK(same(&b, "z", 1));
    tl_sb_free(&b);
    tl_sb_free(&b); /* twice is harmless */
    CHECK(b.p == NULL);
}

static void test_printf(void) {
    tl_strbuf b = TL_STRBUF_INIT;
    tl_sb_printf(&b, "%d-%s-%.3f", 42, "x", 0.5);
    CHECK(same(&b, "42-x-0.500", 10));
    tl_sb_printf(&b, "%s", ""); /* an empty format result appends nothing */
    CHECK(same(&b, "42-x-0.500", 10));
    /* strings longer than the first allocation and than any stack chunk a printf might use */
    size_t L = 10000;
    char *big = malloc(L + 1), *want = malloc(2 * L + 64);
    for (size_t i = 0; i < L; i++) big[i] = (char)('a' + i % 26);
    big[L] = 0;
    tl_sb_printf(&b, "<%s|%5d>", big, 7);
    int w = snprintf(want, 2 * L + 64, "42-x-0.500<%s|%5d>", big, 7);
    CHECK(same(&b, want, (size_t)w));
    tl_sb_printf(&b, "%s", big);
    memcpy(want + w, big, L);
    CHECK(same(&b, want, (size_t)w + L));
    free(big);
    free(want);
    tl_sb_free(&b);
}

static void test_reserve_commit(void) {
    tl_strbuf b = TL_STRBUF_INIT;
    tl_sb_append(&b, "ab", 2);
    char *d = tl_sb_reserve(&b, 5000); /* grows past the first 4096 */
    CHECK(d != NULL && b.cap >= 5003 && d == b.p + 2);
    if (d) {
        memset(d, 'x', 3);
        tl_sb_commit(&b, 3);
    }
    CHECK(same(&b, "abxxx", 5));
    d = tl_sb_reserve(&b, 10); /* reserve without commit leaves the contents as they were */
    CHECK(d != NULL && same(&b, "abxxx", 5));
    tl_sb_free(&b);
    /* take of a buffer that never held anything: an empty, freeable string */
    size_t len = 7;
    char *p = tl_sb_take(&b, &len);
    CHECK(p && len == 0 && p[0] == 0);
    free(p);
}

static void test_oom(void) {
    /* set by hand (what a failed realloc does): later appends are no-ops, take returns NULL and
     * releases the memory, free clears the flag */
    tl_strbuf b = TL_STRBUF_INIT;
    tl_sb_append(&b, "keep", 4);
    b.oom = true;
    tl_sb_append(&b, "more", 4);
    tl_sb_putc(&b, '!');
    tl_sb_printf(&b, "%d", 123);
    CHECK(b.n == 4 && !memcmp(b.p, "keep", 5));
    CHECK(tl_sb_reserve(&b, 1) == NULL);
    tl_sb_commit(&b, 1);
    CHECK(b.n == 4);
    size_t len = 99;
    CHECK(tl_sb_take(&b, &len) == NULL);
    CHECK(b.p == NULL && b.n == 0 && !b.oom);
    /* a size that cannot be allocated sets the flag instead of wrapping around */
    tl_strbuf e = TL_STRBUF_INIT;
    CHECK(tl_sb_reserve(&e, SIZE_MAX - 8) == NULL && e.oom);
    tl_sb_free(&e);
    tl_strbuf f = TL_STRBUF_INIT;
    tl_sb_append(&f, "0123456789abcdef", 16); /* n > 0: n + len + 1 would wrap */
    CHECK(tl_sb_reserve(&f, SIZE_MAX - 8) == NULL && f.oom);
    CHECK(tl_sb_reserve(&f, SIZE_MAX) == NULL);
    tl_sb_free(&f);
    tl_strbuf g = TL_STRBUF_INIT;
    tl_sb_append(&g, "x", 1);
    CHECK(tl_sb_reserve(&g, SIZE_MAX) == NULL && g.oom);
    tl_sb_free(&g);
}

int main(void) {
    test_growth();
    test_nul_and_putc();
    test_printf();
    test_reserve_commit();
    test_oom();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
