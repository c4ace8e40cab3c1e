/* test_memplan.c - the arena planner (runtime/tl_memplan.c) against two references:
 *  - the O(n^2) greedy tl_session.c used before (copied below as old_place): the planner must
 *    give the same offset to every buffer (so the same arena) on random lifetime sets;
 *  - a brute-force pairwise overlap check: every plan is free of overlaps, and the planner's
 *    O(n log n) checker agrees with it on valid plans, planted overlaps and random layouts.
 * Plus edge cases (no buffers, zero-size, huge, INT64_MAX lifetimes, identical lifetimes,
 * merged in-place lifetimes), the limit error, bad arguments and allocation failures
 * (malloc/realloc are interposed here and fail on demand, outside sanitizer builds). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_check.h"
#include "tl_memplan.h"

/* ------------------------------------------------------------------ allocation failure */
#if defined(__SANITIZE_ADDRESS__)
#define TL_NO_INTERPOSE 1
#endif
#ifndef TL_NO_INTERPOSE
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
static long g_fail_at = -1; /* the allocation (counted from 0) that fails; -1: none */
static long g_count;
static bool g_hit; /* the failing allocation happened */
static bool fail_now(void) {
    bool f = g_fail_at >= 0 && g_count++ == g_fail_at;
    g_hit |= f;
    return f;
}
void *malloc(size_t n) { return fail_now() ? NULL : __libc_malloc(n); }
void *calloc(size_t a, size_t b) { return fail_now() ? NULL : __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { return fail_now() ? NULL : __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
static void fail_alloc(long k) {
    g_count = 0;
    g_hit = false;
    g_fail_at = k;
}
#endif

#define END TL_MEMPLAN_LIVE_END

static int64_t r64(int64_t x) { return (x + 63) & ~(int64_t)63; }

static uint64_t rng_state;
static uint64_t rnd(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int64_t rnd_in(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1)); }

typedef struct set {
    int64_t n;
    int64_t *first, *last, *bytes, *off;
} set;

static set set_new(int64_t n) {
    size_t z = (size_t)(n ? n : 1);
    set s = {n, calloc(z, 8), calloc(z, 8), calloc(z, 8), calloc(z, 8)};
    return s;
}
static void set_free(set *s) {
    free(s->first);
    free(s->last);
    free(s->bytes);
    free(s->off);
}

/* The placement tl_session.c made before tl_memplan (its place(), over rounded sizes). */
static int64_t old_place(const set *s, int64_t *off) {
    int64_t n = s->n, *order = malloc(8 * (size_t)(n ? n : 1)), *placed = malloc(8 * (size_t)(n ? n : 1));
    int64_t no = 0, np = 0, total = 0;
    for (int64_t i = 0; i < n; i++) {
        off[i] = 0;
        if (s->bytes[i] > 0) order[no++] = i;
    }
    for (int64_t i = 1; i < no; i++) {
        int64_t v = order[i], j = i - 1;
        while (j >= 0 &&
               (r64(s->bytes[order[j]]) < r64(s->bytes[v]) ||
                (r64(s->bytes[order[j]]) == r64(s->bytes[v]) && s->first[order[j]] > s->first[v]))) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = v;
    }
    for (int64_t k = 0; k < no; k++) {
        int64_t x = order[k], o = 0, xb = r64(s->bytes[x]);
        bool moved = true;
        while (moved) {
            moved = false;
            for (int64_t p = 0; p < np; p++) {
                int64_t y = placed[p], yb = r64(s->bytes[y]);
                bool time = s->first[x] <= s->last[y] && s->first[y] <= s->last[x];
                bool space = o < off[y] + yb && off[y] < o + xb;
                if (time && space) {
                    o = off[y] + yb;
                    moved = true;
                }
            }
        }
        off[x] = o;
        placed[np++] = x;
        if (o + xb > total) total = o + xb;
    }
    free(order);
    free(placed);
    return total;
}

/* Pairwise reference: true when some two time-intersecting non-empty buffers overlap. */
static bool brute_overlap(const set *s) {
    for (int64_t i = 0; i < s->n; i++)
        for (int64_t j = i + 1; j < s->n; j++) {
            if (!s->bytes[i] || !s->bytes[j]) continue;
            bool time = s->first[i] <= s->last[j] && s->first[j] <= s->last[i];
            bool space = s->off[i] < s->off[j] + r64(s->bytes[j]) && s->off[j] < s->off[i] + r64(s->bytes[i]);
            if (time && space) return true;
        }
    return false;
}

static int64_t total_of(const set *s) {
    int64_t t = 0;
    for (int64_t i = 0; i < s->n; i++)
        if (s->bytes[i] && s->off[i] + r64(s->bytes[i]) > t) t = s->off[i] + r64(s->bytes[i]);
    return t;
}

/* Plan s with tl_memplan into s->off; returns the total, -1 on error. */
static int64_t plan(const set *s, int64_t limit, tl_err *err) {
    tl_memplan *p = tl_memplan_new();
    if (!p) return -1;
    for (int64_t i = 0; i < s->n; i++)
        if (tl_memplan_add(p, s->first[i], s->last[i], s->bytes[i], err) != i) {
            tl_memplan_free(p);
            return -1;
        }
    int64_t total = -1;
    if (tl_memplan_place(p, limit, &total, err) == 0) {
        for (int64_t i = 0; i < s->n; i++) s->off[i] = tl_memplan_offset(p, i);
        tl_err e2 = {0};
        if (tl_memplan_check(p, &e2)) {
            fprintf(stderr, "tl_memplan_check: %s\n", e2.msg);
            total = -2;
        }
    }
    tl_memplan_free(p);
    return total;
}

static int check_layout(const set *s, int64_t total, tl_err *err) {
    return tl_memplan_check_layout(s->n, s->first, s->last, s->bytes, s->off, total, err);
}

/* ------------------------------------------------------------------ random sets */
enum { GEN_RANDOM, GEN_CHAIN, GEN_RESIDUAL, GEN_WIDE, GEN_NESTED, GEN_KINDS };
static const char *gen_name[GEN_KINDS] = {"random", "chain", "residual", "wide", "nested"};

static int64_t rnd_size(void) {
    static const int64_t common[] = {64, 256, 4096, 4096, 16384, 1000, 100};
    return rnd() % 3 ? common[rnd() % 7] : rnd_in(0, 50000); /* many ties, some odd sizes, some 0 */
}

static set gen(int kind, int64_t n) {
    set s = set_new(n);
    for (int64_t i = 0; i < n; i++) {
        int64_t f, l;
        switch (kind) {
        case GEN_CHAIN: /* value i defined at step i, read by the next node, sometimes two later */
            f = i;
            l = i + (rnd() % 8 ? 1 : 2);
            break;
        case GEN_RESIDUAL: /* a skip every few nodes lives across a block; a few outputs */
            f = i;
            l = i + (i % 4 == 0 ? 4 : 1);
            if (rnd() % 200 == 0) l = END;
            break;
        case GEN_WIDE: /* many values alive at once, shared first steps */
            f = rnd_in(0, n / 20);
            l = f + rnd_in(0, n / 10);
            break;
        case GEN_NESTED: /* U-Net style: encoder values read back by the mirrored decoder */
            f = i;
            l = i % 2 == 0 && i < n / 2 ? n - i : i + 1;
            break;
        default: /* anything: short and long lifetimes, to the end */
            f = rnd_in(0, n);
            l = rnd() % 10 == 0 ? END : f + (rnd() % 4 ? rnd_in(0, 5) : rnd_in(0, n));
            break;
        }
        s.first[i] = f;
        s.last[i] = l;
        s.bytes[i] = kind == GEN_CHAIN ? (rnd() % 4 ? 4096 : rnd_size()) : rnd_size();
    }
    return s;
}

static void test_random_sets(void) {
    int64_t sizes[] = {1, 2, 7, 100, 1000, 3000};
    int same_offsets = 0, sets = 0;
    for (int kind = 0; kind < GEN_KINDS; kind++)
        for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++)
            for (uint64_t seed = 1; seed <= (sizes[z] >= 1000 ? 3u : 10u); seed++) {
                rng_state = seed * 1000003u + (uint64_t)kind * 7919u + (uint64_t)z;
                set s = gen(kind, sizes[z]);
                tl_err err = {0};
                int64_t total = plan(&s, TL_MEMPLAN_NO_LIMIT, &err);
                CHECK(total >= 0);
                CHECK(total % 64 == 0);
                CHECK(total == total_of(&s));
                CHECK(!brute_overlap(&s));
                CHECK(check_layout(&s, total, &err) == 0);
                bool aligned = true;
                for (int64_t i = 0; i < s.n; i++) aligned &= s.off[i] % 64 == 0 && (s.bytes[i] || s.off[i] == 0);
                CHECK(aligned);
                int64_t *old = malloc(8 * (size_t)s.n);
                int64_t old_total = old_place(&s, old);
                CHECK(total <= old_total);
                bool same = memcmp(old, s.off, 8 * (size_t)s.n) == 0;
                CHECK(same);
                if (!same)
                    fprintf(stderr, "  %s n=%lld seed=%llu: total %lld, old %lld\n", gen_name[kind], (long long)s.n,
                            (unsigned long long)seed, (long long)total, (long long)old_total);
                same_offsets += same;
                sets++;
                /* planted overlaps: move a buffer onto a time-intersecting one (fully, or by a line) */
                int planted = 0;
                for (int t = 0; t < 200 && planted < 20; t++) {
                    int64_t i = (int64_t)(rnd() % (uint64_t)s.n), j = (int64_t)(rnd() % (uint64_t)s.n);
                    if (t % 4) j = i + rnd_in(-3, 3); /* neighbours: chains share few steps */
                    if (j < 0 || j >= s.n) continue;
                    if (i == j || !s.bytes[i] || !s.bytes[j]) continue;
                    if (!(s.first[i] <= s.last[j] && s.first[j] <= s.last[i])) continue;
                    int64_t keep = s.off[i];
                    s.off[i] = s.off[j] + (t % 2 && r64(s.bytes[j]) > 64 ? 64 : 0);
                    int64_t t2 = total_of(&s) > total ? total_of(&s) : total;
                    if (s.n <= 1000) CHECK(brute_overlap(&s)); /* by construction; cheap here */
                    tl_err e2 = {0};
                    CHECK(check_layout(&s, t2, &e2) == -1);
                    CHECK(e2.kind == TL_ERR_INTERNAL && strstr(e2.msg, "overlap"));
                    s.off[i] = keep;
                    planted++;
                }
                if (s.n >= 100) CHECK(planted > 0);
                free(old);
                set_free(&s);
            }
    printf("random sets: %d of %d plans identical to the old greedy, offset by offset\n", same_offsets, sets);
}

/* The checker against the pairwise reference on random layouts (not produced by a planner):
 * it must accept exactly the overlap-free ones. */
static void test_checker_random_layouts(void) {
    int accepted = 0, rejected = 0, agree = 0, trials = 3000;
    rng_state = 42;
    for (int t = 0; t < trials; t++) {
        int64_t n = rnd_in(0, 12);
        set s = set_new(n);
        for (int64_t i = 0; i < n; i++) {
            s.first[i] = rnd_in(0, 20);
            s.last[i] = rnd() % 8 ? s.first[i] + rnd_in(0, 4) : END;
            s.bytes[i] = rnd() % 6 ? 64 * rnd_in(1, 3) - (int64_t)(rnd() % 2) * 10 : 0;
            s.off[i] = 64 * rnd_in(0, 16);
        }
        tl_err err = {0};
        bool ok = check_layout(&s, 64 * 20, &err) == 0;
        bool bad = brute_overlap(&s);
        agree += ok == !bad;
        if (ok != !bad)
            fprintf(stderr, "  trial %d: checker %s, reference %s: %s\n", t, ok ? "ok" : "fails",
                    bad ? "overlap" : "none", err.msg);
        accepted += ok;
        rejected += !ok;
        set_free(&s);
    }
    CHECK(agree == trials);
    CHECK(accepted > 100 && rejected > 100); /* both outcomes exercised */
    printf("checker vs pairwise reference: %d/%d agree (%d accepted, %d rejected)\n", agree, trials, accepted,
           rejected);
}

/* ------------------------------------------------------------------ edge cases */
static void test_edges(void) {
    tl_err err = {0};
    /* no buffers */
    tl_memplan *p = tl_memplan_new();
    int64_t total = -1;
    CHECK(tl_memplan_place(p, TL_MEMPLAN_NO_LIMIT, &total, &err) == 0 && total == 0);
    CHECK(tl_memplan_check(p, &err) == 0);
    CHECK(tl_memplan_count(p) == 0 && tl_memplan_offset(p, 0) == -1);
    tl_memplan_free(p);
    CHECK(tl_memplan_check_layout(0, NULL, NULL, NULL, NULL, 0, &err) == 0);

    /* zero-size buffers occupy nothing; a 1-byte buffer takes a line */
    set s = set_new(4);
    int64_t f[] = {0, 0, 1, 0}, l[] = {5, 5, 2, 5}, b[] = {0, 0, 1, 0};
    memcpy(s.first, f, sizeof f);
    memcpy(s.last, l, sizeof l);
    memcpy(s.bytes, b, sizeof b);
    total = plan(&s, TL_MEMPLAN_NO_LIMIT, &err);
    CHECK(total == 64);
    CHECK(s.off[0] == 0 && s.off[1] == 0 && s.off[2] == 0 && s.off[3] == 0);
    set_free(&s);

    /* one huge buffer (1 TiB + 1 byte): rounded, nothing allocated for it */
    s = set_new(2);
    s.first[0] = 0, s.last[0] = END, s.bytes[0] = ((int64_t)1 << 40) + 1;
    s.first[1] = 3, s.last[1] = 4, s.bytes[1] = 100;
    total = plan(&s, TL_MEMPLAN_NO_LIMIT, &err);
    CHECK(total == ((int64_t)1 << 40) + 64 + 128);
    CHECK(s.off[0] == 0 && s.off[1] == ((int64_t)1 << 40) + 64);
    set_free(&s);

    /* identical lifetimes (KEEP_ALL): everything conflicts, the arena is the sum; the order is
     * size descending, then the order of addition */
    int64_t n = 3000, sum = 0;
    s = set_new(n);
    rng_state = 7;
    for (int64_t i = 0; i < n; i++) {
        s.first[i] = 0;
        s.last[i] = END;
        s.bytes[i] = rnd_size();
        sum += r64(s.bytes[i]);
    }
    total = plan(&s, TL_MEMPLAN_NO_LIMIT, &err);
    CHECK(total == sum);
    CHECK(!brute_overlap(&s));
    int64_t *old = malloc(8 * (size_t)n);
    CHECK(old_place(&s, old) == total && memcmp(old, s.off, 8 * (size_t)n) == 0);
    free(old);
    set_free(&s);

    /* in-place merged lifetimes: y = relu(x) overwrites x, z = tanh(y) overwrites y: one
     * storage over [0, 2] (steps 0..2), a second value w alive over [1, 3] needs its own slot,
     * and v over [3, 4] reuses the merged storage once it died */
    s = set_new(3);
    int64_t mf[] = {0, 1, 3}, ml[] = {2, 3, 4}, mb[] = {4096, 4096, 4096};
    memcpy(s.first, mf, sizeof mf);
    memcpy(s.last, ml, sizeof ml);
    memcpy(s.bytes, mb, sizeof mb);
    total = plan(&s, TL_MEMPLAN_NO_LIMIT, &err);
    CHECK(total == 8192);
    CHECK(s.off[0] == 0 && s.off[1] == 4096 && s.off[2] == 0);
    set_free(&s);

    /* a long chain: two slots in turn (every value dies at the next node), output to the end */
    n = 200000;
    s = set_new(n);
    for (int64_t i = 0; i < n; i++) {
        s.first[i] = i;
        s.last[i] = i == n - 1 ? END : i + 1;
        s.bytes[i] = 4096;
    }
    total = plan(&s, TL_MEMPLAN_NO_LIMIT, &err);
    CHECK(total == 8192);
    CHECK(check_layout(&s, total, &err) == 0);
    bool alternate = true;
    for (int64_t i = 0; i < n; i++) alternate &= s.off[i] == (i % 2) * 4096;
    CHECK(alternate);
    s.off[n / 2] = s.off[n / 2 + 1]; /* a planted overlap deep inside a long sweep */
    CHECK(check_layout(&s, total, &err) == -1);
    CHECK(!strcmp(err.msg,
                  "memory plan check: buffers 99999 and 100000 overlap: bytes [4096, 8192) and "
                  "[4096, 8192), lifetimes [99999, 100000] and [100000, 100001]"));
    set_free(&s);

    /* an offset off the 64-byte grid, or past the arena, is caught */
    s = set_new(1);
    s.bytes[0] = 64;
    s.off[0] = 32;
    CHECK(check_layout(&s, 128, &err) == -1);
    CHECK(!strcmp(err.msg, "memory plan check: buffer 0: offset 32 is not a non-negative multiple of 64"));
    s.off[0] = 64;
    CHECK(check_layout(&s, 64, &err) == -1);
    CHECK(!strcmp(err.msg, "memory plan check: buffer 0: bytes [64, 128) exceed the arena of 64 bytes"));
    s.first[0] = 2, s.last[0] = 1;
    CHECK(check_layout(&s, 128, &err) == -1);
    CHECK(!strcmp(err.msg, "memory plan check: buffer 0: bad lifetime [2, 1]"));
    set_free(&s);

    /* the overlap message names both buffers, their bytes and lifetimes */
    s = set_new(2);
    s.first[0] = 0, s.last[0] = END, s.bytes[0] = 128, s.off[0] = 0;
    s.first[1] = 5, s.last[1] = 6, s.bytes[1] = 64, s.off[1] = 64;
    CHECK(check_layout(&s, 128, &err) == -1);
    CHECK(err.kind == TL_ERR_INTERNAL);
    CHECK(!strcmp(err.msg,
                  "memory plan check: buffers 0 and 1 overlap: bytes [0, 128) and [64, 128), "
                  "lifetimes [0, end] and [5, 6]"));
    s.first[1] = 0, s.last[1] = 0; /* touching lifetimes [0,end] and [0,0] still intersect */
    CHECK(check_layout(&s, 128, &err) == -1);
    s.bytes[1] = 0; /* an empty buffer overlaps nothing */
    CHECK(check_layout(&s, 128, &err) == 0);
    set_free(&s);
}

/* ------------------------------------------------------------------ errors */
static void test_errors(void) {
    tl_err err = {0};
    tl_memplan *p = tl_memplan_new();
    CHECK(tl_memplan_add(p, 3, 2, 64, &err) == -1);
    CHECK(err.kind == TL_ERR_INTERNAL && !strcmp(err.msg, "memory plan: buffer 0: bad lifetime [3, 2]"));
    CHECK(tl_memplan_add(p, -1, 2, 64, &err) == -1);
    CHECK(!strcmp(err.msg, "memory plan: buffer 0: bad lifetime [-1, 2]"));
    CHECK(tl_memplan_add(p, 0, 2, -5, &err) == -1);
    CHECK(err.kind == TL_ERR_INTERNAL && !strcmp(err.msg, "memory plan: buffer 0: negative size -5"));
    CHECK(tl_memplan_add(p, 0, 2, INT64_MAX, &err) == -1);
    CHECK(err.kind == TL_ERR_OOM && tl_err_exit_status(&err) == 3);
    CHECK(!strcmp(err.msg,
                  "memory plan: buffer 0 of 9223372036854775807 bytes: the buffers total more than "
                  "2^62 bytes"));
    CHECK(tl_memplan_add(p, 0, 0, (int64_t)1 << 61, &err) == 0);
    CHECK(tl_memplan_add(p, 0, 0, (int64_t)1 << 61, &err) == 1);
    CHECK(tl_memplan_add(p, 0, 0, 64, &err) == -1 && err.kind == TL_ERR_OOM); /* over 2^62 in all */
    tl_memplan_free(p);
    CHECK(tl_memplan_add(NULL, 0, 0, 1, &err) == -1 && err.kind == TL_ERR_INTERNAL);
    CHECK(tl_memplan_place(NULL, 0, NULL, &err) == -1);
    CHECK(tl_memplan_check(NULL, &err) == -1);

    /* offsets only after placing; the checker refuses an unplaced plan */
    p = tl_memplan_new();
    tl_memplan_add(p, 0, 1, 100, &err);
    CHECK(tl_memplan_offset(p, 0) == -1);
    CHECK(tl_memplan_check(p, &err) == -1 && !strcmp(err.msg, "memory plan check: not placed"));

    /* the limit: buffers 1 (8 KiB, steps 0..1) and 2 (4 KiB, 1..2) conflict: 12 KiB needed;
     * buffer 2 is the one that crosses a 10 KiB limit (placed second, at 8 KiB) */
    tl_memplan_add(p, 0, 2, 8192, &err);
    tl_memplan_add(p, 1, 2, 4096, &err);
    int64_t total = -1;
    CHECK(tl_memplan_place(p, 10240, &total, &err) == -1);
    CHECK(total == 0 && err.kind == TL_ERR_OOM && tl_memplan_failed(p) == 2);
    CHECK(tl_memplan_bytes(p, 2) == 4096 && tl_memplan_bytes(p, 0) == 128 && tl_memplan_bytes(p, 9) == -1);
    CHECK(!strcmp(err.msg,
                  "memory plan: buffer 2 of 4096 bytes, alive over steps [1, 2], would end at byte "
                  "12288, beyond the limit of 10240 bytes"));
    CHECK(tl_memplan_offset(p, 0) == -1);
    /* exactly at the limit passes; a failed buffer is forgotten on the next place */
    CHECK(tl_memplan_place(p, 12288 + 128, &total, &err) == 0 && total == 12288 + 128);
    CHECK(tl_memplan_failed(p) == -1 && tl_memplan_check(p, &err) == 0);
    CHECK(tl_memplan_offset(p, 1) == 0 && tl_memplan_offset(p, 2) == 8192 && tl_memplan_offset(p, 0) == 12288);
    /* adding after placing invalidates the offsets until the next place */
    CHECK(tl_memplan_add(p, 5, 6, 64, &err) == 3 && tl_memplan_offset(p, 0) == -1);
    CHECK(tl_memplan_place(p, TL_MEMPLAN_NO_LIMIT, &total, &err) == 0 && tl_memplan_offset(p, 3) == 0);
    tl_memplan_free(p);
}

#ifndef TL_NO_INTERPOSE
/* Every allocation of add / place / check fails in turn: each call returns -1 with an OOM error
 * naming bytes, or succeeds when that allocation was not needed; a later try succeeds. */
static void test_alloc_failures(void) {
    int64_t n = 600;
    rng_state = 99;
    set s = gen(GEN_RANDOM, n);
    int oom_add = 0, oom_place = 0, oom_check = 0;
    bool hit = true;
    for (long k = 0; hit && k < 1000; k++) { /* until a run needs no more than k allocations */
        tl_err err = {0};
        fail_alloc(k);
        tl_memplan *p = tl_memplan_new();
        if (!p) {
            CHECK(k == 0);
            fail_alloc(-1);
            continue;
        }
        int rc = 0;
        for (int64_t i = 0; i < n && rc == 0; i++)
            rc = tl_memplan_add(p, s.first[i], s.last[i], s.bytes[i], &err) < 0;
        if (rc) {
            oom_add++;
            CHECK(err.kind == TL_ERR_OOM && strstr(err.msg, "out of memory") && strstr(err.msg, "bytes"));
        } else {
            int64_t total;
            if (tl_memplan_place(p, TL_MEMPLAN_NO_LIMIT, &total, &err)) {
                oom_place++;
                CHECK(err.kind == TL_ERR_OOM && strstr(err.msg, "out of memory") && strstr(err.msg, "bytes"));
                CHECK(tl_memplan_offset(p, 0) == -1);
            } else if (tl_memplan_check(p, &err)) {
                oom_check++;
                CHECK(err.kind == TL_ERR_OOM && strstr(err.msg, "out of memory") && strstr(err.msg, "bytes"));
            }
        }
        hit = g_hit;
        fail_alloc(-1);
        if (rc == 0) { /* the same planner recovers once memory is back */
            int64_t total;
            CHECK(tl_memplan_place(p, TL_MEMPLAN_NO_LIMIT, &total, &err) == 0 && tl_memplan_check(p, &err) == 0);
        }
        tl_memplan_free(p);
    }
    CHECK(oom_add > 0 && oom_place > 0 && oom_check > 0);
    printf("allocation failures: %d in add, %d in place, %d in check, all reported as out of memory\n", oom_add,
           oom_place, oom_check);
    set_free(&s);
}
#endif

int main(void) {
    test_random_sets();
    test_checker_random_layouts();
    test_edges();
    test_errors();
#ifndef TL_NO_INTERPOSE
    test_alloc_failures();
#else
    printf("test_memplan: sanitizer build, allocation-failure cases skipped\n");
#endif
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
