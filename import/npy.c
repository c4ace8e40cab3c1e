/* npy.c - NumPy .npy reader (v1.0/v2.0/v3.0, C order, little-endian numbers converted to float32)
 * and float32 writer (v1.0 header, atomic).
 * Format: "\x93NUMPY" major minor, header length (u16 LE for v1, u32 LE for v2/v3), then an ASCII
 * Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with
 * spaces and ending in '\n', then the raw data. The dict is parsed strictly: exactly these three
 * keys in any order, Python literal syntax (a trailing comma and spaces are fine). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_import.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tlrt's .npy reader assumes a little-endian host"
#endif

typedef enum { K_F, K_I, K_U, K_B } npy_kind;
typedef struct {
    const char *descr;
    npy_kind kind;
    int size;
} npy_dtype;

static const npy_dtype DTYPES[] = {
    {"<f4", K_F, 4}, {"<f8", K_F, 8}, {"<f2", K_F, 2}, {"<i4", K_I, 4}, {"<i8", K_I, 8},
    {"<i2", K_I, 2}, {"|i1", K_I, 1}, {"|u1", K_U, 1}, {"|b1", K_B, 1},
};
#define SUPPORTED "<f4, <f8, <f2, <i8, <i4, <i2, |i1, |u1 or |b1"

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    float f;
    if (exp == 0) {
        f = ldexpf((float)man, -24); /* zero or subnormal: man * 2^-24 */
        return sign ? -f : f;
    }
    uint32_t bits;
    if (exp == 31) bits = sign | 0x7f800000u | (man << 13); /* inf / nan */
    else bits = sign | ((exp + 112) << 23) | (man << 13);
    memcpy(&f, &bits, 4);
    return f;
}

/* ---- header dict parser ---- */
typedef struct {
    const char *s;
    size_t n, i;
} cur;

static void skip_ws(cur *c) {
    while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' || c->s[c->i] == '\r'))
        c->i++;
}

static int syntax(const char *name, const cur *c, const char *expected, tl_err *err) {
    if (c->i >= c->n) return tl_errf(err, "%s: header: syntax error at end of header: expected %s", name, expected);
    char ch = c->s[c->i];
    if (ch >= 0x20 && ch < 0x7f)
        return tl_errf(err, "%s: header: syntax error at byte %zu: expected %s, got '%c'", name, c->i, expected, ch);
    return tl_errf(err, "%s: header: syntax error at byte %zu: expected %s, got byte 0x%02x", name, c->i, expected,
                   (unsigned)(unsigned char)ch);
}

/* A quoted string without escapes (Python repr of a short ASCII string). */
static int parse_str(const char *name, cur *c, char *out, size_t cap, tl_err *err) {
    if (c->i >= c->n || (c->s[c->i] != '\'' && c->s[c->i] != '"')) return syntax(name, c, "a quoted string", err);
    char q = c->s[c->i++];
    size_t k = 0;
    while (c->i < c->n && c->s[c->i] != q) {
        char ch = c->s[c->i];
        if (ch == '\\' || (unsigned char)ch < 0x20 || (unsigned char)ch >= 0x7f)
            return syntax(name, c, "a plain ASCII string", err);
        if (k + 1 >= cap) return tl_errf(err, "%s: header: string at byte %zu is too long", name, c->i);
        out[k++] = ch;
        c->i++;
    }
    if (c->i >= c->n) return syntax(name, c, "a closing quote", err);
    c->i++;
    out[k] = 0;
    return 0;
}

static int parse_nat(const char *name, cur *c, int64_t *out, tl_err *err) {
    if (c->i >= c->n || c->s[c->i] < '0' || c->s[c->i] > '9') return syntax(name, c, "a natural number", err);
    size_t start = c->i;
    int64_t v = 0;
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
        int d = c->s[c->i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return tl_errf(err, "%s: header: shape entry at byte %zu is too large", name, start);
        v = v * 10 + d;
        c->i++;
    }
    if (c->s[start] == '0' && c->i - start > 1) {
        c->i = start + 1;
        return syntax(name, c, "',' or ')' (no leading zeros)", err);
    }
    *out = v;
    return 0;
}

static int parse_shape(const char *name, cur *c, tl_shape *s, tl_err *err) {
    memset(s, 0, sizeof *s);
    if (c->i >= c->n || c->s[c->i] != '(') return syntax(name, c, "'(' starting the shape tuple", err);
    c->i++;
    skip_ws(c);
    int count = 0;
    bool trailing_comma = false;
    while (c->i < c->n && c->s[c->i] != ')') {
        int64_t v = 0;
        if (parse_nat(name, c, &v, err)) return -1;
        if (count >= TL_MAX_RANK) return tl_errf(err, "%s: header: shape has more than %d dims", name, TL_MAX_RANK);
        s->dim[count++] = v;
        skip_ws(c);
        trailing_comma = false;
        if (c->i < c->n && c->s[c->i] == ',') {
            c->i++;
            trailing_comma = true;
            skip_ws(c);
        } else if (c->i >= c->n || c->s[c->i] != ')') {
            return syntax(name, c, "',' or ')' in the shape tuple", err);
        }
    }
    if (c->i >= c->n) return syntax(name, c, "')' closing the shape tuple", err);
    if (count == 1 && !trailing_comma) /* Python: (3) is the int 3, not a tuple */
        return syntax(name, c, "',' (a one-element tuple is written (n,))", err);
    c->i++;
    s->rank = count;
    return 0;
}

static int parse_header(const char *name, const char *h, size_t hlen, const npy_dtype **dt, tl_shape *shape,
                        tl_err *err) {
    cur c = {h, hlen, 0};
    bool have_descr = false, have_fortran = false, have_shape = false, fortran = false;
    char descr[64] = "";
    skip_ws(&c);
    if (c.i >= c.n || c.s[c.i] != '{') return syntax(name, &c, "'{'", err);
    c.i++;
    for (;;) {
        skip_ws(&c);
        if (c.i < c.n && c.s[c.i] == '}') {
            c.i++;
            break;
        }
        char key[64];
        if (parse_str(name, &c, key, sizeof key, err)) return -1;
        skip_ws(&c);
        if (c.i >= c.n || c.s[c.i] != ':') return syntax(name, &c, "':'", err);
        c.i++;
        skip_ws(&c);
        bool *have;
        if (strcmp(key, "descr") == 0) {
            have = &have_descr;
            if (*have) return tl_errf(err, "%s: header: duplicate key '%s'", name, key);
            if (c.i < c.n && (c.s[c.i] == '[' || c.s[c.i] == '('))
                return tl_errf(err, "%s: header: structured dtypes are not supported", name);
            if (parse_str(name, &c, descr, sizeof descr, err)) return -1;
        } else if (strcmp(key, "fortran_order") == 0) {
            have = &have_fortran;
            if (*have) return tl_errf(err, "%s: header: duplicate key '%s'", name, key);
            if (c.n - c.i >= 4 && memcmp(c.s + c.i, "True", 4) == 0) {
                fortran = true;
                c.i += 4;
            } else if (c.n - c.i >= 5 && memcmp(c.s + c.i, "False", 5) == 0) {
                fortran = false;
                c.i += 5;
            } else {
                return syntax(name, &c, "True or False for fortran_order", err);
            }
        } else if (strcmp(key, "shape") == 0) {
            have = &have_shape;
            if (*have) return tl_errf(err, "%s: header: duplicate key '%s'", name, key);
            if (parse_shape(name, &c, shape, err)) return -1;
        } else {
            return tl_errf(err, "%s: header: unknown key '%s'", name, key);
        }
        *have = true;
        skip_ws(&c);
        if (c.i < c.n && c.s[c.i] == ',') {
            c.i++;
            continue;
        }
        if (c.i < c.n && c.s[c.i] == '}') {
            c.i++;
            break;
        }
        return syntax(name, &c, "',' or '}'", err);
    }
    skip_ws(&c);
    if (c.i != c.n) return syntax(name, &c, "only spaces after '}'", err);
    if (!have_descr) return tl_errf(err, "%s: header: missing key 'descr'", name);
    if (!have_fortran) return tl_errf(err, "%s: header: missing key 'fortran_order'", name);
    if (!have_shape) return tl_errf(err, "%s: header: missing key 'shape'", name);
    if (descr[0] == '>') return tl_errf(err, "%s: header: big-endian data ('%s') is not supported", name, descr);
    *dt = NULL;
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (strcmp(descr, DTYPES[i].descr) == 0) *dt = &DTYPES[i];
    if (!*dt) return tl_errf(err, "%s: header: dtype '%s' is not supported (use " SUPPORTED ")", name, descr);
    if (fortran) return tl_errf(err, "%s: header: fortran_order True is not supported (write C order)", name);
    return 0;
}

static void convert(const npy_dtype *dt, const unsigned char *src, float *dst, int64_t n) {
    if (dt->kind == K_F && dt->size == 4) {
        memcpy(dst, src, (size_t)n * 4);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        const unsigned char *p = src + (size_t)i * (size_t)dt->size;
        float v = 0;
        switch (dt->kind) {
        case K_F:
            if (dt->size == 8) {
                double d;
                memcpy(&d, p, 8);
                v = (float)d;
            } else {
                uint16_t hh;
                memcpy(&hh, p, 2);
                v = half_to_float(hh);
            }
            break;
        case K_I:
            if (dt->size == 8) {
                int64_t x;
                memcpy(&x, p, 8);
                v = (float)x;
            } else if (dt->size == 4) {
                int32_t x;
                memcpy(&x, p, 4);
                v = (float)x;
            } else if (dt->size == 2) {
                int16_t x;
                memcpy(&x, p, 2);
                v = (float)x;
            } else {
                v = (float)(int8_t)p[0];
            }
            break;
        case K_U: v = (float)p[0]; break;
        case K_B: v = p[0] ? 1.0f : 0.0f; break;
        }
        dst[i] = v;
    }
}

/* float_only: only <f4 / <f8 (else a bad-input error naming the dtype); want64: also fill
 * data64 with the exact values (float64 copied, float32 widened). *dtp: the file's dtype. */
static int npy_parse(const void *buf, size_t len, const char *name, bool float_only, bool want64, tl_tensor **out,
                     const npy_dtype **dtp, tl_err *err) {
    *out = NULL;
    const unsigned char *b = buf;
    if (len < 8 || memcmp(b, "\x93NUMPY", 6) != 0) return tl_errf(err, "%s: not a .npy file (bad magic)", name);
    unsigned major = b[6], minor = b[7];
    if (!((major == 1 || major == 2 || major == 3) && minor == 0))
        return tl_errf(err, "%s: header: unsupported .npy format version %u.%u", name, major, minor);
    size_t lenbytes = major == 1 ? 2 : 4;
    if (len < 8 + lenbytes) return tl_errf(err, "%s: header: truncated (file has %zu bytes)", name, len);
    size_t hlen = major == 1 ? (size_t)b[8] | (size_t)b[9] << 8
                             : (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    size_t hstart = 8 + lenbytes;
    if (hlen > len - hstart)
        return tl_errf(err, "%s: header: length %zu runs past the end of the file (%zu bytes)", name, hlen, len);
    const npy_dtype *dt = NULL;
    tl_shape shape;
    if (parse_header(name, (const char *)b + hstart, hlen, &dt, &shape, err)) return -1;
    if (dtp) *dtp = dt;
    if (float_only && !(dt->kind == K_F && (dt->size == 4 || dt->size == 8)))
        return tl_errk(err, TL_ERR_BAD_INPUT,
                       "%s: dtype '%s' is not a float32/float64 input (the graph input is a float tensor; convert "
                       "the array with .astype(numpy.float32 or numpy.float64))",
                       name, dt->descr);
    int64_t numel;
    char sb[256];
    bool dim_too_big = false; /* also with a zero dim elsewhere: later stride products must not overflow */
    for (int i = 0; i < shape.rank; i++) dim_too_big |= shape.dim[i] > TL_MAX_NUMEL;
    if (dim_too_big || tl_shape_numel_checked(&shape, &numel) != 0)
        return tl_errf(err, "%s: header: shape %s has too many elements (max 2^40)", name,
                       tl_shape_str(&shape, sb, sizeof sb));
    size_t need = (size_t)numel * (size_t)dt->size; /* numel <= 2^40, size <= 8: no overflow */
    size_t have = len - hstart - hlen;
    if (have < need)
        return tl_errf(err, "%s: data: truncated: shape %s of %s needs %zu bytes, file has %zu", name,
                       tl_shape_str(&shape, sb, sizeof sb), dt->descr, need, have);
    if (have > need)
        return tl_errf(err, "%s: data: %zu trailing bytes after shape %s of %s (%zu bytes)", name, have - need,
                       tl_shape_str(&shape, sb, sizeof sb), dt->descr, need);
    tl_tensor *t = tl_tensor_new(&shape);
    if (!t) return tl_erroom(err, "%s: out of memory for shape %s", name, tl_shape_str(&shape, sb, sizeof sb));
    if (numel > 0) convert(dt, b + hstart + hlen, t->data, numel);
    if (want64) {
        t->data64 = malloc(sizeof(double) * (size_t)(numel > 0 ? numel : 1));
        if (!t->data64) {
            tl_tensor_free(t);
            return tl_erroom(err, "%s: out of memory for shape %s", name, tl_shape_str(&shape, sb, sizeof sb));
        }
        const unsigned char *src = b + hstart + hlen;
        if (dt->kind == K_F && dt->size == 8) memcpy(t->data64, src, (size_t)numel * 8);
        else
            for (int64_t i = 0; i < numel; i++) t->data64[i] = (double)t->data[i]; /* exact */
    }
    *out = t;
    return 0;
}

int tl_npy_parse(const void *buf, size_t len, const char *name, tl_tensor **out, tl_err *err) {
    return npy_parse(buf, len, name, false, false, out, NULL, err);
}

int tl_npy_load_input(const char *path, bool f64, tl_tensor **out, const char **descr, tl_err *err) {
    char *buf;
    size_t len;
    *out = NULL;
    if (tl_read_file(path, &buf, &len, err)) return -1;
    const npy_dtype *dt = NULL;
    int rc = npy_parse(buf, len, path, true, f64, out, &dt, err);
    if (descr) *descr = dt ? dt->descr : NULL;
    free(buf);
    return rc;
}

int tl_npy_load(const char *path, tl_tensor **out, tl_err *err) {
    char *buf;
    size_t len;
    *out = NULL;
    if (tl_read_file(path, &buf, &len, err)) return -1;
    int rc = tl_npy_parse(buf, len, path, out, err);
    free(buf);
    return rc;
}

static int npy_save(const char *path, const tl_shape *shape, const void *data, bool f64, tl_err *err) {
    int64_t numel;
    char sb[256];
    if (shape->rank < 0 || shape->rank > TL_MAX_RANK || tl_shape_numel_checked(shape, &numel) != 0)
        return tl_errf(err, "%s: cannot write shape %s", path, tl_shape_str(shape, sb, sizeof sb));
    /* 10-byte preamble + dict, padded with spaces and a final '\n' to a multiple of 64 bytes */
    char hdr[512];
    int k = snprintf(hdr + 10, sizeof hdr - 10, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     f64 ? "<f8" : "<f4");
    for (int i = 0; i < shape->rank; i++)
        k += snprintf(hdr + 10 + k, sizeof hdr - 10 - (size_t)k, "%s%lld", i ? ", " : "", (long long)shape->dim[i]);
    k += snprintf(hdr + 10 + k, sizeof hdr - 10 - (size_t)k, "%s), }", shape->rank == 1 ? "," : "");
    size_t total = (size_t)(10 + k + 1 + 63) / 64 * 64;
    memset(hdr + 10 + k, ' ', total - 10 - (size_t)k - 1);
    hdr[total - 1] = '\n';
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    size_t hl = total - 10;
    hdr[8] = (char)(hl & 0xff);
    hdr[9] = (char)(hl >> 8);
    const void *bufs[2] = {hdr, data};
    size_t lens[2] = {total, (size_t)numel * (f64 ? 8 : 4)};
    return tl_write_file_atomic(path, 2, bufs, lens, err);
}

int tl_npy_save(const char *path, const tl_shape *shape, const float *data, tl_err *err) {
    return npy_save(path, shape, data, false, err);
}

int tl_npy_save_f64(const char *path, const tl_shape *shape, const double *data, tl_err *err) {
    return npy_save(path, shape, data, true, err);
}
