/* graph_json.c - torchlean.ir.v1 graph JSON -> tl_graph (untrusted input: every field is
 * type-checked, every array bounded, every error one line naming the file, node and field).
 *
 *   graph.json: node[7].perm: expected array of naturals, got "x"
 *   graph.json: node[3].kind: unknown op tag "foo"
 *   graph.json: node[3]: missing field "perm"
 *
 * node[i] names the node by its position in "nodes" (== its id in a valid graph).
 * Naturals are integral JSON numbers in [0, 2^53). Unknown extra fields are ignored ("target" is
 * kept in node->target). Attributes are parsed generically from the op row's tl_attr_spec list;
 * optional ones default to: padding_after <- padding, dilation <- 1, groups <- 1,
 * value_shape <- shape (const), keepdim <- false, in_dim/out_dim <- derived from the input /
 * declared shapes (linear), input_spatial <- the input's spatial extents (conv).
 *
 * Older spellings (NN/IR/Graph.lean before the N-d ops; field names from the old
 * Import/TorchExport.lean) are translated:
 *   conv2d {inC, outC, kH, kW, stride, padding}   -> conv, spatial_rank 2, symmetric padding,
 *        dilation 1, groups 1, channel_axis = input rank - 3 (0 for the CHW input of the old IR)
 *   max_pool2d / avg_pool2d {kH, kW, stride}      -> max_pool / avg_pool, spatial_rank 2, padding 0
 *   max_pool2d_pad / avg_pool2d_pad {.., padding} -> the same with that padding on both axes
 *   swap_first_two -> transpose 0 1;  transpose3d_last_two -> transpose 1 2
 *   reduce_sum / reduce_mean {axis} (no "axes")   -> axes [axis], keepdim false
 *   root "output_id" (no "output_ids")            -> output_ids [output_id]
 * Aliases also accepted for the legacy fields: kernel_h/kernel_w, in_channels/out_channels;
 * stride/padding may be a natural or a [h, w] pair.
 *
 * Inline payloads (TorchLean style): linear weight [out,in] + bias, conv weight + bias, const
 * values (flat or nested), batch_norm_eval gamma/beta/mean/var, layernorm gamma/beta: nested
 * arrays of numbers, checked against tl_param_shape after validation.
 * multihead_attention tuple nodes are lowered (mha_lower.c) like TorchLean's lowerValueGraph. */
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json_text.h"
#include "tl_import.h"
#include "tl_torchlean.h"

/* mha_lower.c (import-internal) */
int tl_mha_lower(tl_graph *g, const cJSON *const *raw, tl_err *err);
/* graph_json.c helpers shared with mha_lower.c */
int tl_json_payload(const char *path, const char *ctx, const cJSON *v, tl_tensor **out, tl_err *err);
char *tl_json_compact(const cJSON *v, char *buf, size_t cap);

#define NAT_LIMIT 9007199254740992.0 /* 2^53 */
#define SS(s) TL_SHAPE_STR(s)
#define SNIP 80
#define JS(v) tl_json_compact((v), (char[SNIP + 8]){0}, SNIP + 8)

/* ------------------------------------------------------------------ compact JSON snippets */
/* Snippets for error messages: the text is built in a tl_strbuf and generation stops once it
 * passes `lim` bytes, so a huge array costs no more than its first few elements. */
typedef struct jout {
    tl_strbuf b;
    size_t lim;
} jout;
#define JFULL(o) ((o)->b.n > (o)->lim || (o)->b.oom)

static void jputs(jout *o, const char *s) { tl_sb_append(&o->b, s, strlen(s)); }

static void jvalue(jout *o, const cJSON *v, int depth) {
    if (JFULL(o)) return;
    if (!v) {
        jputs(o, "null");
        return;
    }
    if (depth > 32) {
        jputs(o, "...");
        return;
    }
    char tmp[40];
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 1e15) {
            snprintf(tmp, sizeof tmp, "%lld", (long long)d);
        } else {
            for (int prec = 15; prec <= 17; prec++) { /* shortest text that reads back exactly */
                snprintf(tmp, sizeof tmp, "%.*g", prec, d);
                if (strtod(tmp, NULL) == d) break;
            }
        }
        jputs(o, tmp);
    } else if (cJSON_IsString(v)) {
        tl_sb_json_string(&o->b, v->valuestring ? v->valuestring : "");
    } else if (cJSON_IsTrue(v)) {
        jputs(o, "true");
    } else if (cJSON_IsFalse(v)) {
        jputs(o, "false");
    } else if (cJSON_IsNull(v)) {
        jputs(o, "null");
    } else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        bool obj = cJSON_IsObject(v);
        jputs(o, obj ? "{" : "[");
        int k = 0;
        for (const cJSON *c = v->child; c && !JFULL(o); c = c->next, k++) {
            if (k) jputs(o, ",");
            if (obj) {
                tl_sb_json_string(&o->b, c->string ? c->string : "");
                jputs(o, ":");
            }
            jvalue(o, c, depth + 1);
        }
        jputs(o, obj ? "}" : "]");
    } else {
        jputs(o, "?");
    }
}

/* Compact JSON text of v, truncated to about cap-4 characters ("..." appended). */
char *tl_json_compact(const cJSON *v, char *buf, size_t cap) {
    if (cap < 8) {
        if (cap) buf[0] = 0;
        return buf;
    }
    jout o = {TL_STRBUF_INIT, cap - 4};
    jvalue(&o, v, 0);
    size_t len = o.b.n < o.lim ? o.b.n : o.lim;
    if (len) memcpy(buf, o.b.p, len);
    if (JFULL(&o)) memcpy(buf + len, "...", 3), len += 3; /* out of memory: cut here too */
    buf[len] = 0;
    tl_sb_free(&o.b);
    return buf;
}

/* ------------------------------------------------------------------ field helpers */
typedef struct pctx {
    const char *path;
    tl_err *err;
} pctx;

static int perr(const pctx *P, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(const pctx *P, const char *fmt, ...) {
    if (!P->err) return -1;
    char msg[TL_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tl_errf(P->err, "%s: %s", P->path, msg);
}

/* perr for allocation failures (kind TL_ERR_OOM). */
#define perr_oom(P, ...) (perr((P), __VA_ARGS__), tl_err_as((P)->err, TL_ERR_OOM))

static bool is_nat(const cJSON *v, int64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d >= NAT_LIMIT || d != floor(d)) return false;
    *out = (int64_t)d;
    return true;
}

static const cJSON *field(const cJSON *o, const char *name) { return cJSON_GetObjectItemCaseSensitive(o, name); }

static int parse_nat(const pctx *P, const char *ctx, const cJSON *v, int64_t *out) {
    if (!is_nat(v, out)) return perr(P, "%s: expected natural number, got %s", ctx, JS(v));
    return 0;
}

/* Array of naturals; at most max entries (max < 0: no limit, then *heap gets a malloc'ed copy). */
static int parse_nats(const pctx *P, const char *ctx, const cJSON *v, int64_t *out, int max, int *n) {
    if (!cJSON_IsArray(v)) return perr(P, "%s: expected array of naturals, got %s", ctx, JS(v));
    int k = 0;
    for (const cJSON *c = v->child; c; c = c->next, k++) {
        int64_t x;
        if (!is_nat(c, &x)) return perr(P, "%s: expected array of naturals, got %s", ctx, JS(v));
        if (k >= max) return perr(P, "%s: expected at most %d entries, got %d", ctx, max, cJSON_GetArraySize(v));
        out[k] = x;
    }
    *n = k;
    return 0;
}

static int parse_shape(const pctx *P, const char *ctx, const cJSON *v, tl_shape *s) {
    memset(s, 0, sizeof *s);
    if (!cJSON_IsArray(v)) return perr(P, "%s: expected array of naturals, got %s", ctx, JS(v));
    int k = 0;
    for (const cJSON *c = v->child; c; c = c->next, k++) {
        int64_t x;
        if (!is_nat(c, &x)) return perr(P, "%s: expected array of naturals, got %s", ctx, JS(v));
        if (k >= TL_MAX_RANK)
            return perr(P, "%s: rank %d exceeds the maximum rank %d", ctx, cJSON_GetArraySize(v), TL_MAX_RANK);
        s->dim[k] = x;
    }
    s->rank = k;
    int64_t n;
    bool big = false; /* an extent above 2^40 is rejected even when another extent is 0 */
    for (int i = 0; i < k; i++) big |= s->dim[i] > TL_MAX_NUMEL;
    if (big || tl_shape_numel_checked(s, &n)) return perr(P, "%s: element count of %s exceeds 2^40", ctx, SS(s));
    return 0;
}

/* ------------------------------------------------------------------ nested number payloads */
static int fill_payload(const pctx *P, const char *ctx, const cJSON *v, const tl_shape *s, int level, float *data,
                        int64_t *pos) {
    if (level == s->rank) {
        if (!cJSON_IsNumber(v)) return perr(P, "%s: expected nested array of numbers, got %s", ctx, JS(v));
        double d = v->valuedouble;
        if (!isfinite(d) || fabs(d) > (double)FLT_MAX)
            return perr(P, "%s: value %s is out of float32 range", ctx, JS(v));
        data[(*pos)++] = (float)d;
        return 0;
    }
    if (!cJSON_IsArray(v))
        return perr(P, "%s: ragged nested array: expected an array at depth %d, got %s", ctx, level, JS(v));
    int cnt = cJSON_GetArraySize(v);
    if (cnt != s->dim[level])
        return perr(P, "%s: ragged nested array: expected %lld entries at depth %d, got %d", ctx,
                    (long long)s->dim[level], level, cnt);
    for (const cJSON *c = v->child; c; c = c->next)
        if (fill_payload(P, ctx, c, s, level + 1, data, pos)) return -1;
    return 0;
}

/* The numbers of a payload as parsed (decimal text -> double, cJSON's strtod), in row-major
 * order, when one of them is not exact in float32: kept in t->data64 for a float64 session.
 * Returns -1 out of memory. */
static void payload64(const cJSON *v, double *d, int64_t *pos) {
    if (cJSON_IsNumber(v)) {
        d[(*pos)++] = v->valuedouble;
        return;
    }
    for (const cJSON *c = v->child; c; c = c->next) payload64(c, d, pos);
}
static int keep_payload64(const cJSON *v, tl_tensor *t, int64_t n) {
    if (n <= 0) return 0;
    double *d = malloc((size_t)n * sizeof(double));
    if (!d) return -1;
    int64_t pos = 0;
    payload64(v, d, &pos);
    bool exact = true;
    for (int64_t i = 0; i < n && exact; i++) exact = d[i] == (double)t->data[i];
    if (exact) free(d);
    else t->data64 = d;
    return 0;
}

/* Parse a (possibly nested) array of numbers into a new float32 tensor of its own shape. */
int tl_json_payload(const char *path, const char *ctx, const cJSON *v, tl_tensor **out, tl_err *err) {
    pctx P = {path, err};
    *out = NULL;
    tl_shape s;
    memset(&s, 0, sizeof s);
    const cJSON *c = v;
    while (cJSON_IsArray(c)) {
        if (s.rank >= TL_MAX_RANK) return perr(&P, "%s: nested deeper than %d levels", ctx, TL_MAX_RANK);
        s.dim[s.rank++] = cJSON_GetArraySize(c);
        c = c->child;
        if (!c) break;
    }
    if (c && !cJSON_IsNumber(c)) return perr(&P, "%s: expected nested array of numbers, got %s", ctx, JS(v));
    int64_t n;
    if (tl_shape_numel_checked(&s, &n)) return perr(&P, "%s: element count exceeds 2^40", ctx);
    tl_tensor *t = tl_tensor_new(&s);
    if (!t) return perr_oom(&P, "%s: out of memory", ctx);
    int64_t pos = 0;
    if (fill_payload(&P, ctx, v, &s, 0, t->data, &pos)) {
        tl_tensor_free(t);
        return -1;
    }
    if (keep_payload64(v, t, n)) {
        tl_tensor_free(t);
        return perr_oom(&P, "%s: out of memory", ctx);
    }
    *out = t;
    return 0;
}

/* ------------------------------------------------------------------ attributes */
static void set_defaults(tl_node *n) {
    tl_attrs *a = &n->a;
    memset(a, 0, sizeof *a);
    for (int i = 0; i < TL_MAX_RANK; i++) a->dilation[i] = 1;
    a->groups = 1;
    a->keepdim = false;
    a->in_dim = -1;
    a->out_dim = -1;
    a->value_shape = n->shape;
}

static int parse_attrs(const pctx *P, const cJSON *jn, tl_node *n, const char *nctx) {
    const tl_op_row *row = tl_op_info(n->op);
    bool have_padding_after = false;
    char ctx[96];
    for (int k = 0; k < row->n_attrs; k++) {
        const tl_attr_spec *sp = &row->attrs[k];
        const cJSON *f = field(jn, sp->name);
        snprintf(ctx, sizeof ctx, "%s.%s", nctx, sp->name);
        if (!f) {
            /* old IR: one reduction axis */
            if ((n->op == TL_OP_REDUCE_SUM || n->op == TL_OP_REDUCE_MEAN) && strcmp(sp->name, "axes") == 0 &&
                field(jn, "axis")) {
                snprintf(ctx, sizeof ctx, "%s.axis", nctx);
                if (parse_nat(P, ctx, field(jn, "axis"), &n->a.axes[0])) return -1;
                n->a.axes_n = 1;
                continue;
            }
            if (sp->required) return perr(P, "%s: missing field \"%s\"", nctx, sp->name);
            continue;
        }
        void *dst = (char *)&n->a + sp->offset;
        switch (sp->kind) {
        case TL_AK_NAT:
            if (parse_nat(P, ctx, f, (int64_t *)dst)) return -1;
            if (sp->offset == offsetof(tl_attrs, spatial_rank) && n->a.spatial_rank > TL_MAX_RANK)
                return perr(P, "%s: %lld exceeds the maximum rank %d", ctx, (long long)n->a.spatial_rank,
                            TL_MAX_RANK);
            break;
        case TL_AK_NATS:
            if (parse_nats(P, ctx, f, (int64_t *)dst, TL_MAX_RANK, (int *)((char *)&n->a + sp->count_offset)))
                return -1;
            break;
        case TL_AK_SPATIAL: {
            int cnt = 0;
            int64_t tmp[TL_MAX_RANK];
            if (!cJSON_IsArray(f)) return perr(P, "%s: expected array of naturals, got %s", ctx, JS(f));
            if (cJSON_GetArraySize(f) != (int)n->a.spatial_rank)
                return perr(P, "%s: expected %lld entries (spatial_rank), got %d", ctx, (long long)n->a.spatial_rank,
                            cJSON_GetArraySize(f));
            if (parse_nats(P, ctx, f, tmp, TL_MAX_RANK, &cnt)) return -1;
            memcpy(dst, tmp, (size_t)cnt * sizeof tmp[0]);
            if (sp->offset == offsetof(tl_attrs, padding_after)) have_padding_after = true;
            break;
        }
        case TL_AK_SHAPE:
            if (parse_shape(P, ctx, f, (tl_shape *)dst)) return -1;
            break;
        case TL_AK_BOOL:
            if (!cJSON_IsBool(f)) return perr(P, "%s: expected boolean, got %s", ctx, JS(f));
            *(bool *)dst = cJSON_IsTrue(f);
            break;
        case TL_AK_NUM:
            if (!cJSON_IsNumber(f) || !isfinite(f->valuedouble))
                return perr(P, "%s: expected finite number, got %s", ctx, JS(f));
            *(double *)dst = f->valuedouble;
            break;
        }
    }
    if ((n->op == TL_OP_CONV) && !have_padding_after) memcpy(n->a.padding_after, n->a.padding, sizeof n->a.padding);
    return 0;
}

/* Legacy field with aliases: natural. */
static int legacy_nat(const pctx *P, const cJSON *jn, const char *nctx, const char *a, const char *b, int64_t *out) {
    const cJSON *f = field(jn, a);
    const char *name = a;
    if (!f && b) {
        f = field(jn, b);
        name = b;
    }
    if (!f) {
        if (b) return perr(P, "%s: missing field \"%s\" (or \"%s\")", nctx, a, b);
        return perr(P, "%s: missing field \"%s\"", nctx, a);
    }
    char ctx[96];
    snprintf(ctx, sizeof ctx, "%s.%s", nctx, name);
    return parse_nat(P, ctx, f, out);
}

/* Legacy stride/padding: a natural (both axes) or [h, w]. */
static int legacy_pair(const pctx *P, const cJSON *jn, const char *nctx, const char *name, bool required,
                       int64_t dflt, int64_t out[2]) {
    const cJSON *f = field(jn, name);
    char ctx[96];
    snprintf(ctx, sizeof ctx, "%s.%s", nctx, name);
    if (!f) {
        if (required) return perr(P, "%s: missing field \"%s\"", nctx, name);
        out[0] = out[1] = dflt;
        return 0;
    }
    if (cJSON_IsArray(f)) {
        int cnt;
        if (parse_nats(P, ctx, f, out, 2, &cnt)) return -1;
        if (cnt != 2) return perr(P, "%s: expected a natural or 2 naturals, got %s", ctx, JS(f));
        return 0;
    }
    if (!is_nat(f, &out[0])) return perr(P, "%s: expected a natural or 2 naturals, got %s", ctx, JS(f));
    out[1] = out[0];
    return 0;
}

static int legacy_translate(const pctx *P, const char *tag, const cJSON *jn, tl_node *n, const tl_graph *g,
                            int64_t index, const char *nctx) {
    tl_attrs *a = &n->a;
    if (!strcmp(tag, "swap_first_two")) {
        a->axis1 = 0;
        a->axis2 = 1;
        return 0;
    }
    if (!strcmp(tag, "transpose3d_last_two")) {
        a->axis1 = 1;
        a->axis2 = 2;
        return 0;
    }
    int64_t kh, kw, st[2], pd[2];
    if (legacy_nat(P, jn, nctx, "kH", "kernel_h", &kh) || legacy_nat(P, jn, nctx, "kW", "kernel_w", &kw)) return -1;
    if (legacy_pair(P, jn, nctx, "stride", true, 1, st)) return -1;
    bool padded = !strcmp(tag, "conv2d") || strstr(tag, "_pad") != NULL;
    if (legacy_pair(P, jn, nctx, "padding", padded, 0, pd)) return -1;
    if (!padded) pd[0] = pd[1] = 0;
    a->spatial_rank = 2;
    a->kernel[0] = kh;
    a->kernel[1] = kw;
    a->stride[0] = st[0];
    a->stride[1] = st[1];
    a->padding[0] = a->padding_after[0] = pd[0];
    a->padding[1] = a->padding_after[1] = pd[1];
    if (!strcmp(tag, "conv2d")) {
        if (legacy_nat(P, jn, nctx, "inC", "in_channels", &a->in_channels) ||
            legacy_nat(P, jn, nctx, "outC", "out_channels", &a->out_channels))
            return -1;
        a->groups = 1;
        a->channel_axis = 0;
        if (n->n_parents == 1 && n->parents[0] < index && !g->nodes[n->parents[0]].is_tuple &&
            g->nodes[n->parents[0]].shape.rank >= 3)
            a->channel_axis = g->nodes[n->parents[0]].shape.rank - 3;
    }
    return 0;
}

/* ------------------------------------------------------------------ nodes */
static int parse_node(const pctx *P, const cJSON *jn, tl_graph *g, int64_t index) {
    tl_node *n = &g->nodes[index];
    char nctx[48], ctx[96];
    snprintf(nctx, sizeof nctx, "node[%lld]", (long long)index);
    if (!cJSON_IsObject(jn)) return perr(P, "nodes[%lld]: expected object, got %s", (long long)index, JS(jn));

    const cJSON *f = field(jn, "id");
    if (!f) return perr(P, "%s: missing field \"id\"", nctx);
    snprintf(ctx, sizeof ctx, "%s.id", nctx);
    if (parse_nat(P, ctx, f, &n->id)) return -1;

    f = field(jn, "kind");
    if (!f) return perr(P, "%s: missing field \"kind\"", nctx);
    if (!cJSON_IsString(f) || !f->valuestring) return perr(P, "%s.kind: expected string, got %s", nctx, JS(f));
    bool legacy = false;
    int op = tl_op_from_tag(f->valuestring, &legacy);
    if (op < 0) return perr(P, "%s.kind: unknown op tag %s", nctx, JS(f));
    n->op = (tl_op)op;
    const char *tag = f->valuestring;

    f = field(jn, "parents");
    if (!f) return perr(P, "%s: missing field \"parents\"", nctx);
    snprintf(ctx, sizeof ctx, "%s.parents", nctx);
    if (!cJSON_IsArray(f)) return perr(P, "%s: expected array of naturals, got %s", ctx, JS(f));
    int np = cJSON_GetArraySize(f);
    if (np > 0) {
        n->parents = calloc((size_t)np, sizeof *n->parents);
        if (!n->parents) return perr_oom(P, "%s: out of memory", ctx);
    }
    int k = 0;
    for (const cJSON *c = f->child; c && k < np; c = c->next, k++)
        if (!is_nat(c, &n->parents[k])) return perr(P, "%s: expected array of naturals, got %s", ctx, JS(f));
    n->n_parents = k;

    const cJSON *vk = field(jn, "value_kind");
    if (vk) {
        if (cJSON_IsString(vk) && vk->valuestring && !strcmp(vk->valuestring, "tuple")) n->is_tuple = true;
        else if (!(cJSON_IsString(vk) && vk->valuestring && !strcmp(vk->valuestring, "tensor")))
            return perr(P, "%s.value_kind: expected \"tensor\" or \"tuple\", got %s", nctx, JS(vk));
    }
    if (n->is_tuple) {
        f = field(jn, "tuple_shapes");
        if (!f) return perr(P, "%s: missing field \"tuple_shapes\"", nctx);
        if (!cJSON_IsArray(f)) return perr(P, "%s.tuple_shapes: expected array of shapes, got %s", nctx, JS(f));
        int nt = cJSON_GetArraySize(f);
        if (nt > 0) {
            n->tuple_shapes = calloc((size_t)nt, sizeof *n->tuple_shapes);
            if (!n->tuple_shapes) return perr_oom(P, "%s.tuple_shapes: out of memory", nctx);
        }
        int t = 0;
        for (const cJSON *c = f->child; c && t < nt; c = c->next, t++) {
            snprintf(ctx, sizeof ctx, "%s.tuple_shapes[%d]", nctx, t);
            if (parse_shape(P, ctx, c, &n->tuple_shapes[t])) return -1;
        }
        n->n_tuple = t;
    } else {
        f = field(jn, "shape");
        if (!f) return perr(P, "%s: missing field \"shape\"", nctx);
        snprintf(ctx, sizeof ctx, "%s.shape", nctx);
        if (parse_shape(P, ctx, f, &n->shape)) return -1;
    }

    f = field(jn, "target");
    if (cJSON_IsString(f) && f->valuestring) {
        n->target = strdup(f->valuestring);
        if (!n->target) return perr_oom(P, "%s.target: out of memory", nctx);
    }

    set_defaults(n);
    if (legacy) {
        if (legacy_translate(P, tag, jn, n, g, index, nctx)) return -1;
    } else if (parse_attrs(P, jn, n, nctx)) {
        return -1;
    }

    /* derived defaults (parents are earlier nodes; an invalid parent is reported by validation) */
    const tl_node *p0 = (n->n_parents >= 1 && n->parents[0] < index) ? &g->nodes[n->parents[0]] : NULL;
    if (p0 && p0->is_tuple) p0 = NULL;
    if (n->op == TL_OP_LINEAR) {
        if (!field(jn, "in_dim") && p0 && p0->shape.rank >= 1) n->a.in_dim = p0->shape.dim[p0->shape.rank - 1];
        if (!field(jn, "out_dim") && !n->is_tuple && n->shape.rank >= 1)
            n->a.out_dim = n->shape.dim[n->shape.rank - 1];
    }
    if (n->op == TL_OP_CONV && (legacy || !field(jn, "input_spatial"))) {
        int64_t ca = n->a.channel_axis, sr = n->a.spatial_rank;
        if (p0 && ca >= 0 && ca + 1 + sr == p0->shape.rank)
            for (int i = 0; i < sr; i++) n->a.input_spatial[i] = p0->shape.dim[ca + 1 + i];
    }

    /* inline payloads */
    const tl_op_row *row = tl_op_info(n->op);
    for (int s = 0; s < row->n_params && s < TL_MAX_PARAMS; s++) {
        const cJSON *pv = field(jn, row->params[s].inline_key);
        if (!pv) continue;
        snprintf(ctx, sizeof ctx, "%s.%s", nctx, row->params[s].inline_key);
        tl_tensor *t;
        if (tl_json_payload(P->path, ctx, pv, &t, P->err)) return -1;
        n->param[s] = t;
        if (n->op == TL_OP_CONV && s == 0) { /* TorchLean's dense grouped layout -> packed */
            char where[160];
            snprintf(where, sizeof where, "%s: %s", P->path, ctx);
            if (tl_conv_weight_unpack_dense(n, &n->param[s], where, P->err)) return -1;
        }
        if (n->op == TL_OP_CONST) {
            /* TorchLean writes const values flat; accept flat or nested of the value shape */
            int64_t want, got = tl_shape_numel(&t->shape);
            if (tl_shape_numel_checked(&n->a.value_shape, &want) == 0 && got == want &&
                (t->shape.rank == 1 || tl_shape_eq(&t->shape, &n->a.value_shape) || want == 1))
                t->shape = n->a.value_shape;
        }
        g->has_inline_params = true;
    }
    return 0;
}

static bool needs_lowering(const tl_graph *g) {
    for (int64_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].is_tuple || g->nodes[i].op == TL_OP_TUPLE_GETITEM ||
            g->nodes[i].op == TL_OP_MULTIHEAD_ATTENTION)
            return true;
    return false;
}

static bool open_at_end(const char *buf, size_t len) {
    bool in_str = false, esc = false;
    long depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_str) {
            if (esc) esc = false;
            else if (c == '\\') esc = true;
            else if (c == '"') in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            depth++;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return in_str || depth > 0;
}

static void line_col(const char *buf, size_t off, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (buf[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

int tl_graph_parse_json(const char *buf, size_t len, const char *name, tl_graph **out, tl_err *err) {
    if (out) *out = NULL;
    pctx P = {name ? name : "graph.json", err};
    if (!buf || !out) return perr(&P, "no input");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!root) {
        size_t off = (end && end >= buf && end <= buf + len) ? (size_t)(end - buf) : 0;
        int line, col;
        line_col(buf, off, &line, &col);
        /* cJSON reports the last byte when it ran out of input: tell that case apart by the
         * document still having an open string or container at its end */
        size_t k = off;
        while (k < len && (buf[k] == ' ' || buf[k] == '\t' || buf[k] == '\n' || buf[k] == '\r')) k++;
        if (k >= len || (off + 1 >= len && open_at_end(buf, len)))
            return perr(&P, "invalid JSON: unexpected end of input");
        return perr(&P, "invalid JSON at line %d, column %d", line, col);
    }
    if (end) { /* only whitespace may follow the document */
        size_t off = (size_t)(end - buf);
        while (off < len && (buf[off] == ' ' || buf[off] == '\t' || buf[off] == '\n' || buf[off] == '\r')) off++;
        if (off < len) {
            int line, col;
            line_col(buf, off, &line, &col);
            cJSON_Delete(root);
            return perr(&P, "invalid JSON: trailing data at line %d, column %d", line, col);
        }
    }

    tl_graph *g = calloc(1, sizeof *g);
    const cJSON **raw = NULL;
    int rc = -1;
    if (!g || !(g->path = strdup(P.path))) {
        perr_oom(&P, "out of memory");
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        perr(&P, "root: expected object, got %s", JS(root));
        goto done;
    }
    const cJSON *f = field(root, "format");
    if (!f) {
        perr(&P, "missing field \"format\"");
        goto done;
    }
    if (!cJSON_IsString(f) || !f->valuestring) {
        perr(&P, "format: expected string, got %s", JS(f));
        goto done;
    }
    if (strcmp(f->valuestring, "torchlean.ir.v1") != 0) {
        perr(&P, "format: unsupported format %s (expected \"torchlean.ir.v1\")", JS(f));
        goto done;
    }
    f = field(root, "input_id");
    if (!f) {
        perr(&P, "missing field \"input_id\"");
        goto done;
    }
    if (parse_nat(&P, "input_id", f, &g->input_id)) goto done;
    f = field(root, "output_ids");
    if (f) {
        if (!cJSON_IsArray(f)) {
            perr(&P, "output_ids: expected array of naturals, got %s", JS(f));
            goto done;
        }
        int no = cJSON_GetArraySize(f);
        g->output_ids = calloc(no > 0 ? (size_t)no : 1, sizeof *g->output_ids);
        if (!g->output_ids) {
            perr_oom(&P, "output_ids: out of memory");
            goto done;
        }
        int k = 0;
        for (const cJSON *c = f->child; c && k < no; c = c->next, k++)
            if (!is_nat(c, &g->output_ids[k])) {
                perr(&P, "output_ids: expected array of naturals, got %s", JS(f));
                goto done;
            }
        g->n_outputs = k;
        if (k == 0) {
            perr(&P, "output_ids must contain at least one output");
            goto done;
        }
    } else if ((f = field(root, "output_id")) != NULL) { /* old IR */
        g->output_ids = calloc(1, sizeof *g->output_ids);
        if (!g->output_ids) {
            perr_oom(&P, "output_id: out of memory");
            goto done;
        }
        if (parse_nat(&P, "output_id", f, &g->output_ids[0])) goto done;
        g->n_outputs = 1;
    } else {
        perr(&P, "missing field \"output_ids\"");
        goto done;
    }
    f = field(root, "nodes");
    if (!f) {
        perr(&P, "missing field \"nodes\"");
        goto done;
    }
    if (!cJSON_IsArray(f)) {
        perr(&P, "nodes: expected array, got %s", JS(f));
        goto done;
    }
    int nn = cJSON_GetArraySize(f);
    if (nn == 0) {
        perr(&P, "graph contains no nodes");
        goto done;
    }
    g->nodes = calloc((size_t)nn, sizeof *g->nodes);
    raw = calloc((size_t)nn, sizeof *raw);
    if (!g->nodes || !raw) {
        perr_oom(&P, "nodes: out of memory");
        goto done;
    }
    int64_t i = 0;
    for (const cJSON *c = f->child; c && i < nn; c = c->next, i++) {
        g->n_nodes = i + 1; /* so a partial node is freed */
        raw[i] = c;
        if (parse_node(&P, c, g, i)) goto done;
    }
    g->n_nodes = i;

    if (tl_graph_validate(g, err)) goto done;
    if (needs_lowering(g)) {
        if (tl_mha_lower(g, raw, err)) goto done;
        if (tl_graph_validate(g, err)) goto done;
    }
    rc = 0;
done:
    free(raw);
    cJSON_Delete(root);
    if (rc) {
        tl_graph_free(g);
        return -1;
    }
    *out = g;
    return 0;
}

int tl_graph_load_json(const char *path, tl_graph **out, tl_err *err) {
    if (out) *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    if (tl_read_file(path, &buf, &len, err)) return -1;
    int rc = tl_graph_parse_json(buf, len, path, out, err);
    free(buf);
    return rc;
}
