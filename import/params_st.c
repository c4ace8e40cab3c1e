/* params_st.c - params.bin reader: a safetensors file bound to the graph's parameter slots.
 *
 * Layout: u64 LE header length N, N bytes of JSON header, then the data section.
 *   {"__metadata__": {...}, "linear_3_W": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]}, ...}
 * Checks (each failure is one line naming the file and the tensor):
 *   - 2 <= N <= file size - 8 and N <= 100 MB; the header is one JSON object, then only spaces;
 *   - per tensor: dtype F32 / F64 / F16 / BF16 (F64/F16/BF16 are converted to float32); shape a
 *     list of at most 8 naturals with at most 2^40 elements; data_offsets [begin, end] with
 *     begin <= end <= size of the data section and end - begin == numel * itemsize;
 *   - the tensors tile the data section exactly like safetensors requires: sorted by offset they
 *     start at 0, do not overlap, leave no gap and end at the end of the file;
 *   - each name is the params.bin name (tl_param_name) of exactly one slot of a node, and the
 *     shape equals tl_param_shape of that slot.
 * Every tensor is copied into an owned, aligned float buffer (the file may place F32 data at any
 * alignment), so the caller's buffer can be freed right after the call.
 * How the bytes arrive: tl_params_parse reads a buffer; tl_params_load reads a regular file with
 * pread, the header first, then each tensor's bytes through a 1 MiB staging chunk straight into
 * that tensor's buffer. Peak memory is the tensors plus one chunk (reading the whole file first,
 * then copying, peaked at twice the file); a file truncated while it is read is a short read and
 * an error naming the file (an mmap would turn it into SIGBUS), and a file replaced (renamed over)
 * while it is read is read whole from the old inode we hold open. Non-regular files (pipes) are
 * read whole, then parsed. No size cap but the format's: a multi-GB params.bin loads.
 * Policy for slots already bound from inline JSON payloads: params.bin wins (the inline tensor is
 * replaced). Binding is all-or-nothing: on any error the graph is left unchanged. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "tl_import.h"
#include "tl_torchlean.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tlrt's params.bin reader assumes a little-endian host"
#endif

#define HEADER_MAX ((uint64_t)100 * 1000 * 1000)

typedef struct {
    char name[96];
    int64_t node; /* index into g->nodes */
    int slot;
    int taken; /* index+1 of the tensor that bound it (duplicate detection) */
} slot_ref;

typedef struct {
    const char *name;
    uint64_t begin, end;
    slot_ref *ref;
    tl_tensor *t;
} entry;

/* Where the data section's bytes come from: memory (mem != NULL) or a file descriptor at `off`. */
typedef struct data_src {
    const unsigned char *mem;
    int fd;
    uint64_t off;
} data_src;

static const char *graph_name(const tl_graph *g) { return g && g->path ? g->path : "graph.json"; }

static int cmp_slot(const void *a, const void *b) {
    return strcmp(((const slot_ref *)a)->name, ((const slot_ref *)b)->name);
}

static int cmp_entry_off(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    float f;
    if (exp == 0) {
        f = ldexpf((float)man, -24);
        return sign ? -f : f;
    }
    uint32_t bits;
    if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 112) << 23) | (man << 13);
    memcpy(&f, &bits, 4);
    return f;
}

/* All parameter slots of the graph with their names, sorted by name. */
static int collect_slots(const tl_graph *g, slot_ref **out, size_t *count, const char *name, tl_err *err) {
    size_t n = 0, cap = 0;
    slot_ref *v = NULL;
    for (int64_t i = 0; i < g->n_nodes; i++) {
        const tl_op_row *row = tl_op_info(g->nodes[i].op);
        if (!row) continue;
        for (int s = 0; s < row->n_params && s < TL_MAX_PARAMS; s++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                slot_ref *nv = realloc(v, cap * sizeof *v);
                if (!nv) {
                    free(v);
                    return tl_erroom(err, "%s: out of memory", name);
                }
                v = nv;
            }
            tl_param_file_name(g, &g->nodes[i], s, v[n].name, sizeof v[n].name);
            if (!v[n].name[0]) continue; /* no params.bin tensor can fill it */
            v[n].node = i;
            v[n].slot = s;
            v[n].taken = 0;
            n++;
        }
    }
    if (n > 1) qsort(v, n, sizeof *v, cmp_slot);
    *out = v;
    *count = n;
    return 0;
}

static bool is_nat(const cJSON *x, uint64_t *out) {
    if (!cJSON_IsNumber(x)) return false;
    double d = x->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d)) return false;
    *out = (uint64_t)d;
    return true;
}

static int dtype_size(const char *dt) {
    if (strcmp(dt, "F32") == 0) return 4;
    if (strcmp(dt, "F64") == 0) return 8;
    if (strcmp(dt, "F16") == 0 || strcmp(dt, "BF16") == 0) return 2;
    return 0;
}

/* An F64 tensor whose values are not all exact in float32 keeps them in t->data64 (a float64
 * session computes with them). Returns -1 out of memory. */
/* F64 values of elements [at, at + n) of `t`, whose float32 data already holds them rounded:
 * t->data64 is allocated at the first value float32 does not hold exactly (the elements before
 * it widen back exactly), so a float64 run sees the file's values and an F64 file of
 * float32-representable values costs no second copy. */
static int keep_f64(const unsigned char *src, tl_tensor *t, int64_t at, int64_t n) {
    if (!t->data64) {
        bool exact = true;
        for (int64_t i = 0; i < n && exact; i++) {
            double d;
            memcpy(&d, src + (size_t)i * 8, 8);
            exact = d == (double)t->data[at + i] || (d != d && t->data[at + i] != t->data[at + i]);
        }
        if (exact) return 0;
        int64_t total = tl_shape_numel(&t->shape);
        t->data64 = malloc((size_t)total * sizeof(double));
        if (!t->data64) return -1;
        for (int64_t i = 0; i < at; i++) t->data64[i] = (double)t->data[i];
    }
    memcpy(t->data64 + at, src, (size_t)n * sizeof(double));
    return 0;
}

static void convert(const char *dt, const unsigned char *src, float *dst, int64_t n) {
    if (strcmp(dt, "F32") == 0) {
        memcpy(dst, src, (size_t)n * 4);
    } else if (strcmp(dt, "F64") == 0) {
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, src + (size_t)i * 8, 8);
            dst[i] = (float)d;
        }
    } else if (strcmp(dt, "F16") == 0) {
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + (size_t)i * 2, 2);
            dst[i] = half_to_float(h);
        }
    } else { /* BF16: the top half of a float32 */
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + (size_t)i * 2, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&dst[i], &bits, 4);
        }
    }
}

/* numel elements of dtype dt at data-section offset b into dst (converted to float32). */
static int fetch(const data_src *src, const char *dt, int isz, uint64_t b, tl_tensor *t, int64_t numel,
                 const char *name, const char *tn, tl_err *err) {
    float *dst = t->data;
    bool f64 = strcmp(dt, "F64") == 0;
    if (src->mem) {
        convert(dt, src->mem + b, dst, numel);
        if (f64 && keep_f64(src->mem + b, t, 0, numel))
            return tl_erroom(err, "%s: tensor \"%s\": out of memory", name, tn);
        return 0;
    }
    const size_t chunk_elems = ((size_t)1 << 20) / (size_t)isz;
    size_t first = (size_t)numel < chunk_elems ? (size_t)numel : chunk_elems;
    unsigned char *stage = malloc(first * (size_t)isz);
    if (!stage) return tl_erroom(err, "%s: tensor \"%s\": out of memory", name, tn);
    for (int64_t done = 0; done < numel;) {
        size_t k = (size_t)(numel - done) < chunk_elems ? (size_t)(numel - done) : chunk_elems;
        size_t want = k * (size_t)isz, got = 0;
        uint64_t at = src->off + b + (uint64_t)done * (uint64_t)isz;
        while (got < want) {
            ssize_t r = pread(src->fd, stage + got, want - got, (off_t)(at + got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                int e = errno;
                free(stage);
                if (r == 0)
                    return tl_errk(err, TL_ERR_IO,
                                   "%s: cannot read: file changed while being read (tensor \"%s\" ends past byte "
                                   "%llu, the end of the file)",
                                   name, tn, (unsigned long long)(at + got));
                return tl_errk(err, TL_ERR_IO, "%s: cannot read: %s", name, strerror(e));
            }
            got += (size_t)r;
        }
        convert(dt, stage, dst + done, (int64_t)k);
        if (f64 && keep_f64(stage, t, done, (int64_t)k)) {
            free(stage);
            return tl_erroom(err, "%s: tensor \"%s\": out of memory", name, tn);
        }
        done += (int64_t)k;
    }
    free(stage);
    return 0;
}

/* Parse one header entry (not yet bound). */
static int parse_entry(const char *name, const cJSON *item, const data_src *src, uint64_t dlen, entry *e,
                       tl_shape *shape, tl_err *err) {
    const char *tn = item->string;
    if (!cJSON_IsObject(item))
        return tl_errf(err, "%s: tensor \"%s\": expected an object with dtype, shape and data_offsets", name, tn);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!jd) return tl_errf(err, "%s: tensor \"%s\": missing \"dtype\"", name, tn);
    if (!js) return tl_errf(err, "%s: tensor \"%s\": missing \"shape\"", name, tn);
    if (!jo) return tl_errf(err, "%s: tensor \"%s\": missing \"data_offsets\"", name, tn);
    if (!cJSON_IsString(jd)) return tl_errf(err, "%s: tensor \"%s\": dtype: expected a string", name, tn);
    const char *dt = jd->valuestring;
    int isz = dtype_size(dt);
    if (!isz)
        return tl_errf(err, "%s: tensor \"%s\": dtype %s is not supported (use F32, F64, F16 or BF16)", name, tn, dt);
    if (!cJSON_IsArray(js)) return tl_errf(err, "%s: tensor \"%s\": shape: expected an array of naturals", name, tn);
    int rank = cJSON_GetArraySize(js);
    if (rank > TL_MAX_RANK)
        return tl_errf(err, "%s: tensor \"%s\": shape has %d dims (max %d)", name, tn, rank, TL_MAX_RANK);
    memset(shape, 0, sizeof *shape);
    shape->rank = rank;
    int k = 0;
    bool dim_too_big = false;
    for (const cJSON *d = js->child; d; d = d->next, k++) {
        uint64_t v;
        if (!is_nat(d, &v))
            return tl_errf(err, "%s: tensor \"%s\": shape[%d]: expected a natural number", name, tn, k);
        shape->dim[k] = (int64_t)v;
        dim_too_big |= v > (uint64_t)TL_MAX_NUMEL; /* even next to a zero dim */
    }
    int64_t numel;
    char sb[256];
    if (dim_too_big || tl_shape_numel_checked(shape, &numel) != 0)
        return tl_errf(err, "%s: tensor \"%s\": shape %s has too many elements (max 2^40)", name, tn,
                       tl_shape_str(shape, sb, sizeof sb));
    uint64_t b, en;
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !is_nat(jo->child, &b) || !is_nat(jo->child->next, &en))
        return tl_errf(err, "%s: tensor \"%s\": data_offsets: expected [begin, end] (naturals)", name, tn);
    if (b > en)
        return tl_errf(err, "%s: tensor \"%s\": data_offsets [%llu, %llu]: begin is after end", name, tn,
                       (unsigned long long)b, (unsigned long long)en);
    if (en > dlen)
        return tl_errf(err, "%s: tensor \"%s\": data_offsets [%llu, %llu] outside the data section (%llu bytes)",
                       name, tn, (unsigned long long)b, (unsigned long long)en, (unsigned long long)dlen);
    uint64_t need = (uint64_t)numel * (uint64_t)isz;
    if (en - b != need)
        return tl_errf(err, "%s: tensor \"%s\": data_offsets [%llu, %llu] hold %llu bytes, shape %s of %s needs %llu",
                       name, tn, (unsigned long long)b, (unsigned long long)en, (unsigned long long)(en - b),
                       tl_shape_str(shape, sb, sizeof sb), dt, (unsigned long long)need);
    e->name = tn;
    e->begin = b;
    e->end = en;
    e->ref = NULL;
    e->t = tl_tensor_new(shape);
    if (!e->t) return tl_erroom(err, "%s: tensor \"%s\": out of memory", name, tn);
    if (numel > 0 && fetch(src, dt, isz, b, e->t, numel, name, tn, err)) return -1;
    return 0;
}

static int parse_with(tl_graph *g, const char *h, uint64_t hlen, uint64_t dlen, const data_src *src, const char *name,
                      tl_err *err);

int tl_params_parse(tl_graph *g, const void *buf, size_t len, const char *name, tl_err *err) {
    const unsigned char *b = buf;
    if (len < 8) return tl_errf(err, "%s: too short for a safetensors file (%zu bytes)", name, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b[i];
    if (hlen < 2 || hlen > (uint64_t)len - 8 || hlen > HEADER_MAX)
        return tl_errf(err, "%s: header length %llu out of range (file has %zu bytes, limit 100 MB)", name,
                       (unsigned long long)hlen, len);
    const data_src src = {b + 8 + hlen, -1, 0};
    return parse_with(g, (const char *)b + 8, hlen, (uint64_t)len - 8 - hlen, &src, name, err);
}

/* The header h[0, hlen) (in memory), a data section of dlen bytes read through src. */
static int parse_with(tl_graph *g, const char *h, uint64_t hlen, uint64_t dlen, const data_src *src, const char *name,
                      tl_err *err) {
    if (h[0] != '{') return tl_errf(err, "%s: header: expected a JSON object", name);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, (size_t)hlen, &end, 0);
    if (!root) {
        size_t at = end && end >= h && end <= h + hlen ? (size_t)(end - h) : 0;
        return tl_errf(err, "%s: header: invalid JSON near byte %zu", name, at);
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return tl_errf(err, "%s: header: expected a JSON object", name);
    }
    for (const char *p = end; p < h + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return tl_errf(err, "%s: header: unexpected data after the JSON object at byte %zu", name,
                           (size_t)(p - h));
        }

    slot_ref *slots = NULL;
    size_t nslots = 0;
    entry *ents = NULL;
    size_t nents = 0;
    int count = 0, rc = -1;
    if (collect_slots(g, &slots, &nslots, name, err)) goto out;
    count = cJSON_GetArraySize(root);
    ents = calloc((size_t)(count > 0 ? count : 1), sizeof *ents);
    if (!ents) {
        tl_erroom(err, "%s: out of memory", name);
        goto out;
    }
    for (const cJSON *item = root->child; item; item = item->next) {
        if (strcmp(item->string, "__metadata__") == 0) continue;
        entry *e = &ents[nents];
        tl_shape shape;
        if (parse_entry(name, item, src, dlen, e, &shape, err)) goto out;
        nents++;
        slot_ref key;
        snprintf(key.name, sizeof key.name, "%s", item->string);
        slot_ref *r = strlen(item->string) < sizeof key.name && nslots
            ? bsearch(&key, slots, nslots, sizeof *slots, cmp_slot)
            : NULL;
        if (!r) {
            tl_errf(err, "%s: tensor \"%s\": no such parameter in %s", name, item->string, graph_name(g));
            goto out;
        }
        if (r->taken) {
            tl_errf(err, "%s: tensor \"%s\" appears twice in the header", name, item->string);
            goto out;
        }
        const tl_node *n = &g->nodes[r->node];
        tl_shape want;
        char s1[256], s2[256];
        if (tl_param_shape(n, r->slot, &want) != 0) {
            tl_errf(err, "%s: tensor \"%s\": node[%lld] has no valid shape for this parameter", name, item->string,
                    (long long)tl_node_file_id(g, n));
            goto out;
        }
        if (n->op == TL_OP_CONV && r->slot == 0) { /* TorchLean's dense grouped layout -> packed */
            char where[160];
            snprintf(where, sizeof where, "%s: tensor \"%s\" (node[%lld])", name, item->string,
                     (long long)tl_node_file_id(g, n));
            if (tl_conv_weight_unpack_dense(n, &e->t, where, err)) goto out;
            shape = e->t->shape;
        }
        if (!tl_shape_eq(&shape, &want)) {
            tl_errf(err, "%s: tensor \"%s\": shape %s does not match node[%lld] (expected %s)", name, item->string,
                    tl_shape_str(&shape, s1, sizeof s1), (long long)tl_node_file_id(g, n),
                    tl_shape_str(&want, s2, sizeof s2));
            goto out;
        }
        r->taken = (int)nents;
        e->ref = r;
    }
    /* The tensors must tile the data section: no overlap, no gap, nothing after the last one. */
    if (nents > 1) qsort(ents, nents, sizeof *ents, cmp_entry_off);
    uint64_t pos = 0;
    for (size_t i = 0; i < nents; i++) {
        if (ents[i].begin < pos) {
            const entry *prev = &ents[i - 1];
            tl_errf(err, "%s: tensor \"%s\": data_offsets [%llu, %llu] overlap tensor \"%s\" [%llu, %llu]", name,
                    ents[i].name, (unsigned long long)ents[i].begin, (unsigned long long)ents[i].end, prev->name,
                    (unsigned long long)prev->begin, (unsigned long long)prev->end);
            goto out;
        }
        if (ents[i].begin > pos) {
            tl_errf(err, "%s: data section: bytes [%llu, %llu) belong to no tensor", name, (unsigned long long)pos,
                    (unsigned long long)ents[i].begin);
            goto out;
        }
        pos = ents[i].end;
    }
    if (pos != dlen) {
        tl_errf(err, "%s: data section: bytes [%llu, %llu) belong to no tensor", name, (unsigned long long)pos,
                (unsigned long long)dlen);
        goto out;
    }
    /* Commit: bind every tensor (params.bin wins over an inline payload). */
    for (size_t i = 0; i < nents; i++) {
        tl_node *n = &g->nodes[ents[i].ref->node];
        int s = ents[i].ref->slot;
        if (n->param[s]) tl_tensor_free(n->param[s]);
        n->param[s] = ents[i].t;
        ents[i].t = NULL;
    }
    rc = 0;
out:
    for (size_t i = 0; ents && i < (size_t)count; i++) /* calloc'ed: unused entries hold NULL */
        if (ents[i].t) tl_tensor_free(ents[i].t);
    free(ents);
    free(slots);
    cJSON_Delete(root);
    return rc;
}

static int read_at(int fd, void *p, size_t n, uint64_t at) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)p + got, n - got, (off_t)(at + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) {
            errno = 0; /* shorter than fstat said: truncated under us */
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

int tl_params_load(tl_graph *g, const char *path, tl_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        /* missing, a directory, a pipe: tl_read_file's messages and its whole-file read */
        if (fd >= 0) close(fd);
        char *buf;
        size_t len;
        if (tl_read_file(path, &buf, &len, err)) return -1;
        int rc = tl_params_parse(g, buf, len, path, err);
        free(buf);
        return rc;
    }
    uint64_t size = (uint64_t)st.st_size;
    unsigned char len8[8];
    char *h = NULL;
    int rc = -1;
    if (size < 8) {
        tl_errf(err, "%s: too short for a safetensors file (%llu bytes)", path, (unsigned long long)size);
        goto out;
    }
    if (read_at(fd, len8, 8, 0)) goto read_error;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
    if (hlen < 2 || hlen > size - 8 || hlen > HEADER_MAX) {
        tl_errf(err, "%s: header length %llu out of range (file has %llu bytes, limit 100 MB)", path,
                (unsigned long long)hlen, (unsigned long long)size);
        goto out;
    }
    h = malloc((size_t)hlen + 1);
    if (!h) {
        tl_erroom(err, "%s: out of memory reading the %llu-byte header", path, (unsigned long long)hlen);
        goto out;
    }
    if (read_at(fd, h, (size_t)hlen, 8)) goto read_error;
    h[hlen] = 0;
    const data_src src = {NULL, fd, 8 + hlen};
    rc = parse_with(g, h, hlen, size - 8 - hlen, &src, path, err);
    goto out;
read_error:
    if (errno) tl_errk(err, TL_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    else tl_errk(err, TL_ERR_IO, "%s: cannot read: file changed while being read (shorter than its size)", path);
out:
    free(h);
    close(fd);
    return rc;
}

/* `name` is the params file the slots were loaded from; NULL (or the graph's own path, as a caller
 * checking a graph with inline payloads passes it) means there is no params file, and the message
 * then names the graph and the inline field instead:
 *   params.bin: missing tensor "linear_3_b" for node[3] (linear)
 *   graph.json: node[3]: linear has no weight: give params.bin or inline payloads */
int tl_params_check_complete(const tl_graph *g, const char *name, tl_err *err) {
    if (name && g->path && strcmp(name, g->path) == 0) name = NULL;
    for (int64_t i = 0; i < g->n_nodes; i++) {
        const tl_node *n = &g->nodes[i];
        const tl_op_row *row = tl_op_info(n->op);
        if (!row) continue;
        for (int s = 0; s < row->n_params && s < TL_MAX_PARAMS; s++) {
            if (n->param[s]) continue;
            long long fid = (long long)tl_node_file_id(g, n);
            const char *tag = g->renumbered && n->wire_id < 0 ? "multihead_attention" : row->tag;
            if (name) {
                char pn[96];
                tl_param_file_name(g, n, s, pn, sizeof pn);
                return tl_errf(err, "%s: missing tensor \"%s\" for node[%lld] (%s)", name, pn, fid, tag);
            }
            return tl_errf(err, "%s: node[%lld]: %s has no %s: give params.bin or inline payloads", graph_name(g),
                           fid, row->tag, row->params[s].inline_key);
        }
    }
    return 0;
}
