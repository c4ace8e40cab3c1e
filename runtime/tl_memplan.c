/* tl_memplan.c - greedy-by-size arena placement in O(m log m) for realistic lifetimes.
 *
 * What it computes (the plan tl_session.c has always made, now without the O(n^2) scans):
 * buffers in order of size descending, then first step ascending, then index (the old stable
 * insertion sort's order); each at the LOWEST offset where it overlaps no already placed buffer
 * whose lifetime intersects its own. The old loop "bump past any conflicting block until none
 * conflicts" finds exactly that lowest offset (its candidate never passes the lowest feasible
 * one L: a block conflicting at a candidate c <= L ends at or below L, else L would conflict
 * with it too), so offsets and arena size are identical to it, buffer by buffer
 * (tests/c/test_memplan.c keeps the old loop as its reference).
 *
 * How it is fast:
 *  - Time points. Two inclusive lifetimes intersect iff the later of the two first steps lies
 *    in both, so only the distinct first steps matter: P <= m "points". A buffer covers the
 *    points inside its lifetime (its span, a range [t0, t1) of point indices); two buffers
 *    conflict iff their spans share a point.
 *  - A segment tree over the points. A placed buffer's span decomposes into O(log P) nodes;
 *    own[v] holds the memory of the buffers that decompose into v (alive at every point of
 *    v), sub[v] that of every buffer decomposing into v or below (alive somewhere in v). Each
 *    set is a sorted array of disjoint intervals where touching or overlapping pieces are
 *    merged: it only says which bytes are taken, so stacks of buffers (what greedy-by-size
 *    builds) are one interval.
 *  - Placing a buffer: the placed buffers alive somewhere in its span are exactly those in
 *    sub[] of the nodes its span decomposes into plus own[] of the nodes above those (at most
 *    4 log P sets). From offset 0, visit these sets in turn; in each, one binary search finds
 *    whether taken bytes overlap the candidate, which then moves past them; done when every set
 *    in turn accepts the candidate (lowest_gap). Then the chosen interval goes into sub[] of
 *    every node visited and own[] of the nodes of the decomposition (O(log P) sets).
 *    A long-lived buffer is stored O(log P) times, not once per point of its lifetime.
 *
 * Cost, with m buffers of non-zero size, P <= m points, S the most intervals one set holds and
 * J(b) the moves of the candidate while placing b: sorting O(m log m); placing
 * O(sum over b of log P * ((J(b) + 1) log S + S)) (lookups, then inserts that shift a set's
 * array). S stays small when the taken bytes have few holes, which lowest-offset placement
 * keeps so; J(b) is at most the number of intervals below b's offset in the sets it consults.
 * Measured (bench/plan_scale.c and a stress driver): 1M-buffer chain 1.2 s; 100k buffers with
 * 1% alive to the end 0.3 s; 100k with nested skip lifetimes (U-Net style, half the buffers
 * long-lived) 0.44 s; every lifetime identical (KEEP_ALL) is one point and one interval.
 * Memory: 2P - 1 tree nodes of two 16-byte set headers, plus the intervals.
 *
 * The checker (tl_memplan_check_layout) is independent of all this: a sweep over first steps
 * with the live buffers in a 64-ary bit tree over their offset rank (see its comment). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_memplan.h"

#define MAX_BYTES ((int64_t)1 << 62) /* total of all sizes stays below this: no overflow */
#define MAX_BUFFERS INT32_MAX        /* interval counts per point are int32 */

typedef struct mp_buf {
    int64_t first, last;
    int64_t bytes; /* rounded up to TL_MEMPLAN_ALIGN */
    int64_t offset;
} mp_buf;

struct tl_memplan {
    mp_buf *b; /* owned */
    int64_t n, cap;
    int64_t sum;    /* total of all rounded sizes (<= MAX_BYTES) */
    bool placed;    /* offsets are valid for the current buffer set */
    int64_t failed; /* buffer that crossed the limit, or -1 */
};

static int64_t round64(int64_t x) { return (x + (TL_MEMPLAN_ALIGN - 1)) & ~(int64_t)(TL_MEMPLAN_ALIGN - 1); }

/* "[first, last]" with "end" for TL_MEMPLAN_LIVE_END; buf must hold 48 bytes. */
static const char *life_str(int64_t first, int64_t last, char *buf) {
    if (last == TL_MEMPLAN_LIVE_END) snprintf(buf, 48, "[%lld, end]", (long long)first);
    else snprintf(buf, 48, "[%lld, %lld]", (long long)first, (long long)last);
    return buf;
}

tl_memplan *tl_memplan_new(void) {
    tl_memplan *p = calloc(1, sizeof *p);
    if (p) p->failed = -1;
    return p;
}

void tl_memplan_free(tl_memplan *p) {
    if (!p) return;
    free(p->b);
    free(p);
}

int64_t tl_memplan_add(tl_memplan *p, int64_t first, int64_t last, int64_t bytes, tl_err *err) {
    if (!p) return tl_errk(err, TL_ERR_INTERNAL, "memory plan: no planner");
    char life[48];
    if (first < 0 || last < first)
        return tl_errk(err, TL_ERR_INTERNAL, "memory plan: buffer %lld: bad lifetime %s", (long long)p->n,
                       life_str(first, last, life));
    if (bytes < 0)
        return tl_errk(err, TL_ERR_INTERNAL, "memory plan: buffer %lld: negative size %lld", (long long)p->n,
                       (long long)bytes);
    if (bytes > MAX_BYTES || p->sum > MAX_BYTES - round64(bytes))
        return tl_erroom(err, "memory plan: buffer %lld of %lld bytes: the buffers total more than 2^62 bytes",
                         (long long)p->n, (long long)bytes);
    if (p->n == p->cap) {
        if (p->n >= MAX_BUFFERS) return tl_erroom(err, "memory plan: more than %lld buffers", (long long)MAX_BUFFERS);
        int64_t cap = p->cap ? 2 * p->cap : 64;
        if (cap > MAX_BUFFERS) cap = MAX_BUFFERS;
        mp_buf *nb = realloc(p->b, sizeof *nb * (size_t)cap);
        if (!nb)
            return tl_erroom(err, "memory plan: out of memory growing the buffer list to %zu bytes",
                             sizeof *nb * (size_t)cap);
        p->b = nb;
        p->cap = cap;
    }
    p->b[p->n] = (mp_buf){first, last, round64(bytes), 0};
    p->sum += round64(bytes);
    p->placed = false;
    return p->n++;
}

int64_t tl_memplan_count(const tl_memplan *p) { return p ? p->n : 0; }

int64_t tl_memplan_offset(const tl_memplan *p, int64_t i) {
    if (!p || !p->placed || i < 0 || i >= p->n) return -1;
    return p->b[i].offset;
}

int64_t tl_memplan_bytes(const tl_memplan *p, int64_t i) {
    if (!p || i < 0 || i >= p->n) return -1;
    return p->b[i].bytes;
}

int64_t tl_memplan_failed(const tl_memplan *p) { return p ? p->failed : -1; }

/* ------------------------------------------------------------------ placement */
typedef struct iv {
    int64_t lo, hi;
} iv; /* [lo, hi) bytes */

/* A sorted array of disjoint intervals in the pool; adding merges everything it touches. */
typedef struct iset {
    int64_t at;     /* first interval in the pool */
    int32_t n, cap; /* intervals used / reserved there */
} iset;

typedef struct key { /* placement order: bytes desc, first asc, index asc */
    int64_t bytes, first, idx;
} key;

/* Segment tree over the points [0, P): node v covering [nl, nr) has children v + 1 ([nl, mid))
 * and v + 2 (mid - nl) ([mid, nr)), 2P - 1 nodes in all.
 *   own[v]: memory of the buffers whose span decomposes into v (v's range inside the span, its
 *           parent's not): they are alive at every point of v;
 *   sub[v]: memory of the buffers that decompose into v or any node below it: each is alive
 *           somewhere inside v's range. */
typedef struct placer {
    iset *own, *sub;
    int64_t npt;
    iv *pool; /* every set's intervals; a set that outgrows its room moves to the end */
    int64_t pool_n, pool_cap;
    const iset **list; /* the sets a query consults */
    int nlist;
} placer;

static int cmp_key(const void *a, const void *b) {
    const key *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes > y->bytes ? -1 : 1;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* first index in v[0..n) with v[i] > x (upper) or >= x (lower) */
static int64_t bound(const int64_t *v, int64_t n, int64_t x, bool upper) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (upper ? v[mid] <= x : v[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int pool_reserve(placer *P, int64_t more, tl_err *err) {
    if (P->pool_n + more <= P->pool_cap) return 0;
    int64_t cap = P->pool_cap ? P->pool_cap : 1024;
    while (cap < P->pool_n + more) cap *= 2;
    iv *np = realloc(P->pool, sizeof *np * (size_t)cap);
    if (!np)
        return tl_erroom(err, "memory plan: out of memory growing the occupancy pool to %zu bytes",
                         sizeof *np * (size_t)cap);
    P->pool = np;
    P->pool_cap = cap;
    return 0;
}

/* first interval of q with hi > y (ends are sorted: the intervals are disjoint and sorted) */
static int32_t first_above(const iv *v, int32_t n, int64_t y) {
    int32_t k = 0, h = n;
    while (k < h) {
        int32_t mid = k + (h - k) / 2;
        if (v[mid].hi <= y) k = mid + 1;
        else h = mid;
    }
    return k;
}

/* Add [lo, hi) to q, merging it with every interval it overlaps or touches (a set keeps only
 * which bytes are taken: touching or overlapping pieces become one interval). */
static int iset_add(placer *P, iset *q, int64_t lo, int64_t hi, tl_err *err) {
    iv *v = P->pool ? P->pool + q->at : NULL;               /* no pool yet (first buffer): NULL + 0 is UB */
    int32_t n = q->n, a = first_above(v, n, lo - 1), b = a; /* v[a..b): hi >= lo and lo <= hi */
    while (b < n && v[b].lo <= hi) b++;
    if (b > a) { /* merge into v[a], close the gap */
        if (v[a].lo < lo) lo = v[a].lo;
        if (v[b - 1].hi > hi) hi = v[b - 1].hi;
        v[a] = (iv){lo, hi};
        memmove(v + a + 1, v + b, sizeof *v * (size_t)(n - b));
        q->n -= b - a - 1;
        return 0;
    }
    if (n == q->cap) { /* move this set to fresh room at the pool's end */
        int32_t cap = q->cap ? (q->cap > INT32_MAX / 2 ? INT32_MAX : 2 * q->cap) : 2;
        if (pool_reserve(P, cap, err)) return -1;
        memcpy(P->pool + P->pool_n, P->pool + q->at, sizeof *v * (size_t)n);
        q->at = P->pool_n;
        q->cap = cap;
        P->pool_n += cap;
        v = P->pool + q->at;
    }
    memmove(v + a + 1, v + a, sizeof *v * (size_t)(n - a));
    v[a] = (iv){lo, hi};
    q->n++;
    return 0;
}

/* The sets holding every placed buffer alive at some point of [t0, t1): sub[] of the nodes the
 * span decomposes into, own[] of the nodes above them (their buffers cover the whole node, so
 * they cover part of the span too). */
static void collect(placer *P, int64_t v, int64_t nl, int64_t nr, int64_t t0, int64_t t1) {
    if (t0 <= nl && nr <= t1) {
        if (P->sub[v].n) P->list[P->nlist++] = &P->sub[v];
        return;
    }
    if (P->own[v].n) P->list[P->nlist++] = &P->own[v];
    int64_t mid = nl + (nr - nl) / 2;
    if (t0 < mid) collect(P, v + 1, nl, mid, t0, t1);
    if (t1 > mid) collect(P, v + 2 * (mid - nl), mid, nr, t0, t1);
}

static int insert(placer *P, int64_t v, int64_t nl, int64_t nr, int64_t t0, int64_t t1, int64_t lo, int64_t hi,
                  tl_err *err) {
    if (iset_add(P, &P->sub[v], lo, hi, err)) return -1;
    if (t0 <= nl && nr <= t1) return iset_add(P, &P->own[v], lo, hi, err);
    int64_t mid = nl + (nr - nl) / 2;
    if (t0 < mid && insert(P, v + 1, nl, mid, t0, t1, lo, hi, err)) return -1;
    if (t1 > mid && insert(P, v + 2 * (mid - nl), mid, nr, t0, t1, lo, hi, err)) return -1;
    return 0;
}

/* Lowest offset where `bytes` fit in none of the collected sets. Round robin over the sets: in
 * a set, the first interval ending above the candidate y either clears [y, y + bytes) or moves
 * y to its end (every offset below that end overlaps taken bytes); the candidate is the answer
 * once every set in turn cleared it. y only grows, and never past the answer. */
static int64_t lowest_gap(const placer *P, int64_t bytes) {
    int64_t y = 0;
    int clean = 0, k = 0;
    while (clean < P->nlist) {
        const iset *q = P->list[k];
        const iv *v = P->pool ? P->pool + q->at : NULL; /* nothing placed yet */
        int32_t j = first_above(v, q->n, y);
        if (j < q->n && v[j].lo < y + bytes) {
            y = v[j].hi; /* this set may conflict again at the new y: look again */
            clean = 0;
            continue;
        }
        clean++;
        if (++k == P->nlist) k = 0;
    }
    return y;
}

static void placer_free(placer *P) {
    free(P->own);
    free(P->sub);
    free(P->pool);
    free(P->list);
}

int tl_memplan_place(tl_memplan *p, int64_t limit, int64_t *total, tl_err *err) {
    if (!p) return tl_errk(err, TL_ERR_INTERNAL, "memory plan: no planner");
    if (total) *total = 0;
    p->placed = false;
    p->failed = -1;
    int64_t m = 0;
    for (int64_t i = 0; i < p->n; i++) {
        p->b[i].offset = 0;
        if (p->b[i].bytes > 0) m++;
    }
    size_t mz = (size_t)(m ? m : 1);
    key *order = malloc(sizeof *order * mz);
    int64_t *pts = malloc(sizeof *pts * mz);
    placer P = {0};
    int rc = -1;
    if (!order || !pts) {
        tl_erroom(err, "memory plan: out of memory sorting %lld buffers (%zu bytes)", (long long)m,
                  (sizeof *order + sizeof *pts) * mz);
        goto done;
    }
    int64_t k = 0;
    for (int64_t i = 0; i < p->n; i++)
        if (p->b[i].bytes > 0) {
            order[k] = (key){p->b[i].bytes, p->b[i].first, i};
            pts[k++] = p->b[i].first;
        }
    qsort(order, (size_t)m, sizeof *order, cmp_key);
    qsort(pts, (size_t)m, sizeof *pts, cmp_i64);
    for (int64_t i = 0; i < m; i++)
        if (P.npt == 0 || pts[P.npt - 1] != pts[i]) pts[P.npt++] = pts[i];
    int depth = 1; /* levels of the tree: a query takes at most 2 sets per level */
    for (int64_t w = 1; w < P.npt; w *= 2) depth++;
    size_t nodes = (size_t)(P.npt ? 2 * P.npt - 1 : 1);
    P.own = calloc(nodes, sizeof *P.own);
    P.sub = calloc(nodes, sizeof *P.sub);
    P.list = malloc(sizeof *P.list * (size_t)(4 * depth + 4));
    if (!P.own || !P.sub || !P.list) {
        tl_erroom(err, "memory plan: out of memory for a tree over %lld time points (%zu bytes)", (long long)P.npt,
                  2 * sizeof *P.own * nodes);
        goto done;
    }
    int64_t top = 0;
    for (int64_t r = 0; r < m; r++) {
        mp_buf *x = &p->b[order[r].idx];
        int64_t t0 = bound(pts, P.npt, x->first, false), t1 = bound(pts, P.npt, x->last, true);
        P.nlist = 0;
        collect(&P, 0, 0, P.npt, t0, t1);
        int64_t off = lowest_gap(&P, x->bytes);
        /* off + bytes <= sum of all sizes <= 2^62: no overflow */
        if (off + x->bytes > limit) {
            char life[48];
            p->failed = order[r].idx;
            tl_erroom(err,
                      "memory plan: buffer %lld of %lld bytes, alive over steps %s, would end at byte %lld, "
                      "beyond the limit of %lld bytes",
                      (long long)order[r].idx, (long long)x->bytes, life_str(x->first, x->last, life),
                      (long long)(off + x->bytes), (long long)limit);
            goto done;
        }
        x->offset = off;
        if (off + x->bytes > top) top = off + x->bytes;
        if (insert(&P, 0, 0, P.npt, t0, t1, off, off + x->bytes, err)) goto done;
    }
    p->placed = true;
    if (total) *total = top;
    rc = 0;
done:
    free(order);
    free(pts);
    placer_free(&P);
    return rc;
}

/* ------------------------------------------------------------------ checker */
/* A set of ranks 0..n-1 as a 64-ary tree of bit words: insert, erase, predecessor and
 * successor in O(log64 n). */
#define BT_LEVELS 12 /* 64^11 > 2^63 ranks */

typedef struct bittree {
    int nl;
    uint64_t *w[BT_LEVELS];
} bittree;

static void bt_free(bittree *b) {
    for (int l = 0; l < b->nl; l++) free(b->w[l]);
}

static int bt_init(bittree *b, int64_t n) {
    memset(b, 0, sizeof *b);
    int64_t words = n;
    do {
        words = (words + 63) / 64;
        b->w[b->nl] = calloc((size_t)(words ? words : 1), sizeof(uint64_t));
        if (!b->w[b->nl]) return -1;
        b->nl++;
    } while (words > 1 && b->nl < BT_LEVELS);
    return 0;
}

static void bt_set(bittree *b, int64_t i) {
    for (int l = 0; l < b->nl; l++, i >>= 6) b->w[l][i >> 6] |= (uint64_t)1 << (i & 63);
}

static void bt_clear(bittree *b, int64_t i) {
    for (int l = 0; l < b->nl; l++, i >>= 6) {
        b->w[l][i >> 6] &= ~((uint64_t)1 << (i & 63));
        if (b->w[l][i >> 6]) break; /* the word still has members: ancestors keep their bit */
    }
}

/* Walk down from a set bit at (level l, index pos) to a rank, taking the highest or lowest. */
static int64_t bt_down(const bittree *b, int l, int64_t pos, bool high) {
    for (; l > 0; l--) {
        uint64_t w = b->w[l - 1][pos];
        pos = pos * 64 + (high ? 63 - __builtin_clzll(w) : __builtin_ctzll(w));
    }
    return pos;
}

/* largest member < i, or -1 */
static int64_t bt_pred(const bittree *b, int64_t i) {
    for (int l = 0; l < b->nl; l++, i >>= 6) {
        int s = (int)(i & 63);
        uint64_t m = s ? b->w[l][i >> 6] & (((uint64_t)1 << s) - 1) : 0;
        if (m) return bt_down(b, l, (i >> 6) * 64 + 63 - __builtin_clzll(m), true);
    }
    return -1;
}

/* smallest member > i, or -1 */
static int64_t bt_succ(const bittree *b, int64_t i) {
    for (int l = 0; l < b->nl; l++, i >>= 6) {
        int s = (int)(i & 63);
        uint64_t m = s == 63 ? 0 : b->w[l][i >> 6] & (~(uint64_t)0 << (s + 1));
        if (m) return bt_down(b, l, (i >> 6) * 64 + __builtin_ctzll(m), false);
    }
    return -1;
}

typedef struct ckey {
    int64_t k, idx;
} ckey;

static int cmp_ckey(const void *a, const void *b) {
    const ckey *x = a, *y = b;
    if (x->k != y->k) return x->k < y->k ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Sweep: buffers enter in order of first step, and leave (before the next one enters) once
 * their last step is below its first. The live set is kept by offset rank; since it is pairwise
 * disjoint, a buffer overlapping any live buffer overlaps its predecessor or its successor by
 * offset, so two lookups per buffer suffice. */
int tl_memplan_check_layout(int64_t n, const int64_t *first, const int64_t *last, const int64_t *bytes,
                            const int64_t *offset, int64_t total, tl_err *err) {
    if (n < 0 || (n > 0 && (!first || !last || !bytes || !offset)))
        return tl_errk(err, TL_ERR_INTERNAL, "memory plan check: no layout");
    int64_t m = 0;
    char l1[48], l2[48];
    for (int64_t i = 0; i < n; i++) {
        if (first[i] < 0 || last[i] < first[i])
            return tl_errk(err, TL_ERR_INTERNAL, "memory plan check: buffer %lld: bad lifetime %s", (long long)i,
                           life_str(first[i], last[i], l1));
        if (bytes[i] < 0 || bytes[i] > MAX_BYTES)
            return tl_errk(err, TL_ERR_INTERNAL, "memory plan check: buffer %lld: bad size %lld", (long long)i,
                           (long long)bytes[i]);
        if (offset[i] < 0 || offset[i] % TL_MEMPLAN_ALIGN)
            return tl_errk(err, TL_ERR_INTERNAL,
                           "memory plan check: buffer %lld: offset %lld is not a non-negative "
                           "multiple of %d",
                           (long long)i, (long long)offset[i], TL_MEMPLAN_ALIGN);
        if (offset[i] > total - round64(bytes[i]))
            return tl_errk(err, TL_ERR_INTERNAL,
                           "memory plan check: buffer %lld: bytes [%lld, %lld) exceed the arena "
                           "of %lld bytes",
                           (long long)i, (long long)offset[i], (long long)offset[i] + round64(bytes[i]),
                           (long long)total);
        if (bytes[i] > 0) m++;
    }
    size_t mz = (size_t)(m ? m : 1);
    ckey *byoff = malloc(sizeof *byoff * mz), *bystart = malloc(sizeof *bystart * mz);
    ckey *byend = malloc(sizeof *byend * mz);
    int64_t *rank = malloc(sizeof *rank * (size_t)(n ? n : 1));
    int64_t *who = malloc(sizeof *who * mz); /* buffer at each offset rank */
    bittree live;
    int bt = bt_init(&live, m);
    int rc = -1;
    if (!byoff || !bystart || !byend || !rank || !who || bt) {
        tl_erroom(err, "memory plan check: out of memory for %lld buffers (%zu bytes)", (long long)m,
                  (3 * sizeof(ckey) + 2 * sizeof(int64_t)) * mz);
        goto done;
    }
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (bytes[i] > 0) {
            byoff[k] = (ckey){offset[i], i};
            bystart[k] = (ckey){first[i], i};
            byend[k++] = (ckey){last[i], i};
        }
    qsort(byoff, (size_t)m, sizeof *byoff, cmp_ckey);
    qsort(bystart, (size_t)m, sizeof *bystart, cmp_ckey);
    qsort(byend, (size_t)m, sizeof *byend, cmp_ckey);
    for (int64_t r = 0; r < m; r++) {
        rank[byoff[r].idx] = r;
        who[r] = byoff[r].idx;
    }
    int64_t e = 0;
    for (int64_t s = 0; s < m; s++) {
        int64_t i = bystart[s].idx;
        while (e < m && byend[e].k < first[i]) bt_clear(&live, rank[byend[e++].idx]);
        int64_t nb[2] = {bt_pred(&live, rank[i]), bt_succ(&live, rank[i])};
        for (int q = 0; q < 2; q++) {
            if (nb[q] < 0) continue;
            int64_t j = who[nb[q]];
            int64_t ie = offset[i] + round64(bytes[i]), je = offset[j] + round64(bytes[j]);
            if (offset[i] < je && offset[j] < ie) {
                int64_t a = i < j ? i : j, b = i < j ? j : i;
                tl_errk(err, TL_ERR_INTERNAL,
                        "memory plan check: buffers %lld and %lld overlap: bytes [%lld, %lld) "
                        "and [%lld, %lld), lifetimes %s and %s",
                        (long long)a, (long long)b, (long long)offset[a], (long long)(offset[a] + round64(bytes[a])),
                        (long long)offset[b], (long long)(offset[b] + round64(bytes[b])),
                        life_str(first[a], last[a], l1), life_str(first[b], last[b], l2));
                goto done;
            }
        }
        bt_set(&live, rank[i]);
    }
    rc = 0;
done:
    free(byoff);
    free(bystart);
    free(byend);
    free(rank);
    free(who);
    bt_free(&live);
    return rc;
}

int tl_memplan_check(const tl_memplan *p, tl_err *err) {
    if (!p) return tl_errk(err, TL_ERR_INTERNAL, "memory plan check: no planner");
    if (!p->placed && p->n > 0) return tl_errk(err, TL_ERR_INTERNAL, "memory plan check: not placed");
    int64_t n = p->n;
    size_t nz = (size_t)(n ? n : 1);
    int64_t *a = malloc(sizeof *a * nz * 4);
    if (!a)
        return tl_erroom(err, "memory plan check: out of memory for %lld buffers (%zu bytes)", (long long)n,
                         sizeof *a * nz * 4);
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        a[i] = p->b[i].first;
        a[n + i] = p->b[i].last;
        a[2 * n + i] = p->b[i].bytes;
        a[3 * n + i] = p->b[i].offset;
        if (p->b[i].bytes > 0 && p->b[i].offset + p->b[i].bytes > total) total = p->b[i].offset + p->b[i].bytes;
    }
    int rc = tl_memplan_check_layout(n, a, a + n, a + 2 * n, a + 3 * n, total, err);
    free(a);
    return rc;
}
