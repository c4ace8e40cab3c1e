/* torchlean_check.c - every place TorchLean's importer would reject or misread a graph file.
 *
 * The rules are TorchLean's (lean-dojo/TorchLean, NN/Runtime/PyTorch/Import/TorchExport.lean):
 *   parseValueGraph  format == "torchlean.ir.v1"; input_id; output_ids (non-empty; the old IR's
 *                    output_id is not read); nodes
 *   parseValueNode   id, parents, kind (string), value_kind "tensor" (default: needs shape) or
 *                    "tuple" (needs tuple_shapes)
 *   parseOpKind      the tag through Wire.parseOpTag? (current spellings only: no conv2d,
 *                    max_pool2d, ...), then each tag's required fields (listed in check_node)
 *   lowerValueGraph  reductions read axes + keepdim; tuple_getitem only of multihead_attention's
 *                    component 0 (num_heads 1, batch_first, dropout_zero, q = k = v)
 *   parsePayload     linear in_dim/out_dim + weight [out,in] + bias; conv input_spatial, nonzero
 *                    in_channels/kernel/stride, weight DENSE [out_channels, in_channels, kernel...]
 *                    + bias; layernorm gamma/beta of shape[axis:] + eps; batch_norm_eval
 *                    gamma/beta/mean/var [channels] + eps; const values flat [numel(shape)];
 *                    multihead_attention q/k/v/out _weight [E,E] + _bias [E] + scale
 *   parseTensor      a nested array of numbers exactly the expected shape (so const values must be
 *                    flat: a nested or bare-number value is rejected)
 * A const without `values` parses in TorchLean but has no value to evaluate (TorchLean carries
 * payloads only inline), so it is reported too: a tlrt small-form graph fails here until converted
 * (tl_torchlean_to_inline). Structure and shapes (ids, parent order, arity, declared == inferred,
 * one input) use the same rules as tlrt's reader (NN/IR/Infer.lean), so the check finally runs
 * tlrt's reader and adds its error unless that node was already reported.
 * Each problem is one line "<file>: <where>: <what> (<why>)"; all are collected, none stops it. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_import.h"
#include "tl_torchlean.h"

#define NAT_LIMIT 9007199254740992.0 /* 2^53 */

typedef struct ck {
    const char *name;
    tl_torchlean_issues *out; /* the caller's list, or `own` (also when the caller wants none:
                                 * the reader's error is de-duplicated against the lines) */
    tl_torchlean_issues own;
    int n;
    char first[TL_ERR_MAX];
    bool oom;
} ck;

static void issue(ck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void issue(ck *c, const char *fmt, ...) {
    char msg[TL_ERR_MAX], line[TL_ERR_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->n == 0) snprintf(c->first, sizeof c->first, "%s", msg);
    c->n++;
    if (!c->out || c->oom) return;
    snprintf(line, sizeof line, "%s: %s", c->name, msg);
    char **nl = realloc(c->out->line, (size_t)(c->out->n + 1) * sizeof *nl);
    char *s = strdup(line);
    if (!nl || !s) {
        if (nl) c->out->line = nl;
        free(s);
        c->oom = true;
        return;
    }
    c->out->line = nl;
    c->out->line[c->out->n++] = s;
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static bool nat(const cJSON *v, int64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d >= NAT_LIMIT || d != floor(d)) return false;
    if (out) *out = (int64_t)d;
    return true;
}

/* Required natural field; false (and one line) when missing or not a natural. */
static bool need_nat(ck *c, const char *nctx, const cJSON *jn, const char *key, int64_t *out, const char *why) {
    const cJSON *f = get(jn, key);
    if (!f) {
        issue(c, "%s.%s: missing (%s)", nctx, key, why);
        return false;
    }
    if (!nat(f, out)) {
        issue(c, "%s.%s: expected a natural number (TorchLean's jsonNat)", nctx, key);
        return false;
    }
    return true;
}

/* Required array of naturals; want >= 0 demands exactly that many entries. */
static bool need_nats(ck *c, const char *nctx, const cJSON *jn, const char *key, int want, int64_t *out, int *count,
                      const char *why) {
    const cJSON *f = get(jn, key);
    if (!f) {
        issue(c, "%s.%s: missing (%s)", nctx, key, why);
        return false;
    }
    bool ok = cJSON_IsArray(f);
    int k = 0;
    for (const cJSON *e = ok ? f->child : NULL; e; e = e->next, k++) {
        int64_t x;
        if (!nat(e, &x)) ok = false;
        else if (out && k < TL_MAX_RANK) out[k] = x;
    }
    if (!ok) {
        issue(c, "%s.%s: expected an array of naturals (TorchLean's parseNatArray)", nctx, key);
        return false;
    }
    if (want >= 0 && k != want) {
        issue(c, "%s.%s: expected %d entries (spatial_rank), got %d", nctx, key, want, k);
        return false;
    }
    if (count) *count = k;
    return true;
}

static bool need_shape(ck *c, const char *nctx, const cJSON *jn, const char *key, tl_shape *s, const char *why) {
    int k = 0;
    memset(s, 0, sizeof *s);
    if (!need_nats(c, nctx, jn, key, -1, s->dim, &k, why)) return false;
    if (k > TL_MAX_RANK) {
        issue(c, "%s.%s: rank %d exceeds tlrt's maximum rank %d", nctx, key, k, TL_MAX_RANK);
        return false;
    }
    s->rank = k;
    return true;
}

static void need_bool(ck *c, const char *nctx, const cJSON *jn, const char *key, bool *out, const char *why) {
    const cJSON *f = get(jn, key);
    if (!f) issue(c, "%s.%s: missing (%s)", nctx, key, why);
    else if (!cJSON_IsBool(f)) issue(c, "%s.%s: expected a boolean (TorchLean's boolField)", nctx, key);
    else if (out) *out = cJSON_IsTrue(f);
}

static void need_num(ck *c, const char *nctx, const cJSON *jn, const char *key, const char *why) {
    const cJSON *f = get(jn, key);
    if (!f) issue(c, "%s.%s: missing (%s)", nctx, key, why);
    else if (!cJSON_IsNumber(f) || !isfinite(f->valuedouble))
        issue(c, "%s.%s: expected a finite number (TorchLean's floatField)", nctx, key);
}

static bool nested_match(const cJSON *v, const tl_shape *s, int level) {
    if (level == s->rank) return cJSON_IsNumber(v);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != s->dim[level]) return false;
    for (const cJSON *e = v->child; e; e = e->next)
        if (!nested_match(e, s, level + 1)) return false;
    return true;
}

/* Shape of a rectangular nested array of numbers (a bare number: rank 0); false when ragged or a
 * leaf is not a number. The first element at each depth gives the extents; then all must match. */
static bool nested_shape(const cJSON *v, tl_shape *s) {
    memset(s, 0, sizeof *s);
    for (const cJSON *c = v; cJSON_IsArray(c); c = c->child) {
        if (s->rank >= TL_MAX_RANK) return false;
        s->dim[s->rank++] = cJSON_GetArraySize(c);
        if (!c->child) break;
    }
    return nested_match(v, s, 0);
}

/* An inline payload TorchLean's parsePayload reads: a nested array of exactly `want`. */
static const cJSON *need_payload(ck *c, const char *nctx, const cJSON *jn, const char *key, const tl_shape *want,
                                 const char *tag) {
    const cJSON *f = get(jn, key);
    char ws[160], gs[160];
    if (!f) {
        issue(c,
              "%s.%s: missing (TorchLean's parsePayload reads the %s %s inline; tlrt's small form keeps it in "
              "params.bin: convert with tlemit torchlean)",
              nctx, key, tag, key);
        return NULL;
    }
    tl_shape got;
    if (!nested_shape(f, &got)) {
        issue(c,
              "%s.%s: expected a nested array of numbers of shape %s (TorchLean's parseTensor), got a ragged or "
              "non-numeric value",
              nctx, key, tl_shape_str(want, ws, sizeof ws));
        return NULL;
    }
    if (!tl_shape_eq(&got, want)) {
        issue(c, "%s.%s: expected a nested array of shape %s (TorchLean's parseTensor), got %s", nctx, key,
              tl_shape_str(want, ws, sizeof ws), tl_shape_str(&got, gs, sizeof gs));
        return NULL;
    }
    return f;
}

static tl_shape shape1(int64_t n) {
    tl_shape s;
    memset(&s, 0, sizeof s);
    s.rank = 1;
    s.dim[0] = n;
    return s;
}

/* ------------------------------------------------------------------ per tag */
static const char *const WHY_CONV = "TorchLean's parseOpKind requires every conv field";
static const char *const WHY_POOL = "TorchLean's windowConfig requires it";

static void check_conv(ck *c, const char *nctx, const cJSON *jn) {
    int64_t sr = 0, groups = 1, in_c = 0, out_c = 0, kernel[TL_MAX_RANK] = {0}, stride[TL_MAX_RANK] = {0};
    bool have_sr = need_nat(c, nctx, jn, "spatial_rank", &sr, WHY_CONV);
    if (have_sr && sr > TL_MAX_RANK - 2) {
        issue(c, "%s.spatial_rank: %lld exceeds tlrt's maximum %d", nctx, (long long)sr, TL_MAX_RANK - 2);
        have_sr = false;
    }
    int want = have_sr ? (int)sr : -1;
    bool have_k = need_nats(c, nctx, jn, "kernel", want, kernel, NULL, WHY_CONV) && have_sr;
    bool have_s = need_nats(c, nctx, jn, "stride", want, stride, NULL, WHY_CONV) && have_sr;
    need_nats(c, nctx, jn, "padding", want, NULL, NULL, WHY_CONV);
    need_nats(c, nctx, jn, "padding_after", want, NULL, NULL, WHY_CONV);
    need_nats(c, nctx, jn, "dilation", want, NULL, NULL, WHY_CONV);
    bool have_g = need_nat(c, nctx, jn, "groups", &groups, WHY_CONV);
    need_nat(c, nctx, jn, "channel_axis", NULL, WHY_CONV);
    bool have_in = need_nat(c, nctx, jn, "in_channels", &in_c, WHY_CONV);
    bool have_out = need_nat(c, nctx, jn, "out_channels", &out_c, WHY_CONV);
    need_nats(c, nctx, jn, "input_spatial", want, NULL, NULL, "TorchLean's parsePayload requires it for conv");
    if (have_in && in_c == 0) issue(c, "%s.in_channels: must be nonzero (TorchLean's parsePayload)", nctx);
    for (int i = 0; have_k && i < (int)sr; i++)
        if (kernel[i] == 0) {
            issue(c, "%s.kernel: extents must be nonzero (TorchLean's parsePayload)", nctx);
            break;
        }
    for (int i = 0; have_s && i < (int)sr; i++)
        if (stride[i] == 0) {
            issue(c, "%s.stride: extents must be nonzero (TorchLean's parsePayload)", nctx);
            break;
        }
    if (!(have_sr && have_k && have_g && have_in && have_out) || groups == 0) {
        /* the weight's shape is unknown without the geometry: only say whether it is there */
        if (!get(jn, "weight")) need_payload(c, nctx, jn, "weight", &(tl_shape){0}, "conv");
        if (!get(jn, "bias")) need_payload(c, nctx, jn, "bias", &(tl_shape){0}, "conv");
        return;
    }
    tl_shape dense;
    memset(&dense, 0, sizeof dense);
    dense.rank = 2 + (int)sr;
    dense.dim[0] = out_c;
    dense.dim[1] = in_c;
    for (int i = 0; i < (int)sr; i++) dense.dim[2 + i] = kernel[i];
    const cJSON *w = get(jn, "weight");
    tl_shape got;
    if (w && groups > 1 && in_c % groups == 0 && nested_shape(w, &got)) {
        tl_shape packed = dense;
        packed.dim[1] = in_c / groups;
        if (tl_shape_eq(&got, &packed)) {
            char ps[160], ds[160];
            issue(c,
                  "%s.weight: packed grouped layout %s (TorchLean's parsePayload requires the dense block-diagonal "
                  "[out_channels, in_channels, kernel...] = %s)",
                  nctx, tl_shape_str(&packed, ps, sizeof ps), tl_shape_str(&dense, ds, sizeof ds));
            w = NULL;
        }
    }
    if (w || !get(jn, "weight")) need_payload(c, nctx, jn, "weight", &dense, "conv");
    tl_shape b = shape1(out_c);
    need_payload(c, nctx, jn, "bias", &b, "conv");
}

static void check_pool(ck *c, const char *nctx, const cJSON *jn) {
    int64_t sr = 0;
    bool have = need_nat(c, nctx, jn, "spatial_rank", &sr, WHY_POOL);
    int want = have && sr <= TL_MAX_RANK ? (int)sr : -1;
    need_nats(c, nctx, jn, "kernel", want, NULL, NULL, WHY_POOL);
    need_nats(c, nctx, jn, "stride", want, NULL, NULL, WHY_POOL);
    need_nats(c, nctx, jn, "padding", want, NULL, NULL, WHY_POOL);
}

static void check_const(ck *c, const char *nctx, const cJSON *jn, const tl_shape *shape, bool have_shape) {
    if (get(jn, "value_shape")) {
        tl_shape vs;
        need_shape(c, nctx, jn, "value_shape", &vs, "");
    }
    const cJSON *v = get(jn, "values");
    if (!v) {
        issue(c,
              "%s.values: missing (TorchLean carries const values only inline; tlrt's small form keeps them in "
              "params.bin: convert with tlemit torchlean)",
              nctx);
        return;
    }
    if (!have_shape) return;
    int64_t numel;
    if (tl_shape_numel_checked(shape, &numel)) return; /* the reader reports the element count */
    tl_shape flat = shape1(numel), got;
    char fs[64], gs[160];
    if (!nested_shape(v, &got) || !tl_shape_eq(&got, &flat))
        issue(c,
              "%s.values: expected a flat array of %lld numbers (TorchLean's parsePayload reads const values as "
              "%s), got %s",
              nctx, (long long)flat.dim[0], tl_shape_str(&flat, fs, sizeof fs),
              nested_shape(v, &got) ? tl_shape_str(&got, gs, sizeof gs) : "a ragged or non-numeric value");
}

static void check_mha(ck *c, const char *nctx, const cJSON *jn, bool is_tuple) {
    const char *why = "TorchLean's multihead_attention lowering reads it";
    if (!is_tuple)
        issue(c,
              "%s.value_kind: multihead_attention must be \"tuple\" (TorchLean keeps it in the value graph; as a "
              "tensor node its tag is unknown to parseOpKind)",
              nctx);
    int64_t e = 0, heads = 0;
    bool bf = true, dz = true;
    bool have_e = need_nat(c, nctx, jn, "embed_dim", &e, why);
    if (need_nat(c, nctx, jn, "num_heads", &heads, why) && heads != 1)
        issue(c, "%s.num_heads: %lld (TorchLean lowers only num_heads=1)", nctx, (long long)heads);
    need_bool(c, nctx, jn, "batch_first", &bf, why);
    need_bool(c, nctx, jn, "dropout_zero", &dz, why);
    if (!bf) issue(c, "%s.batch_first: false (TorchLean lowers only batch_first=True)", nctx);
    if (!dz) issue(c, "%s.dropout_zero: false (TorchLean requires dropout=0 eval semantics)", nctx);
    need_num(c, nctx, jn, "scale", why);
    const cJSON *p = get(jn, "parents");
    int64_t q, k, v;
    if (cJSON_GetArraySize(p) != 3 || !nat(cJSON_GetArrayItem(p, 0), &q) || !nat(cJSON_GetArrayItem(p, 1), &k) ||
        !nat(cJSON_GetArrayItem(p, 2), &v) || q != k || k != v)
        issue(c, "%s.parents: TorchLean lowers self-attention only (query, key and value must be one node)", nctx);
    if (!have_e) return;
    static const char *const PFX[] = {"q", "k", "v", "out"};
    tl_shape ee = shape1(e), e1 = shape1(e);
    ee.rank = 2;
    ee.dim[1] = e;
    for (int i = 0; i < 4; i++) {
        char key[32];
        snprintf(key, sizeof key, "%s_weight", PFX[i]);
        need_payload(c, nctx, jn, key, &ee, "multihead_attention");
        snprintf(key, sizeof key, "%s_bias", PFX[i]);
        need_payload(c, nctx, jn, key, &e1, "multihead_attention");
    }
}

/* The value shape of node `id` as its JSON declares it (tensor: 1 shape; tuple: its components). */
typedef struct vinfo {
    bool ok, is_tuple, is_mha;
    int n_tuple;
    const cJSON *tuple_shapes;
    tl_shape shape;
} vinfo;

static void check_getitem(ck *c, const char *nctx, const cJSON *jn, const vinfo *vi, int64_t nn,
                          const tl_shape *shape, bool have_shape) {
    int64_t index = 0;
    bool have_i = need_nat(c, nctx, jn, "index", &index, "TorchLean's tuple_getitem reads it");
    const cJSON *p = get(jn, "parents");
    int64_t pid;
    if (cJSON_GetArraySize(p) != 1 || !nat(p->child, &pid) || pid >= nn || !vi[pid].ok) {
        issue(c, "%s.parents: tuple_getitem expects one tuple parent (TorchLean's lowerValueGraph)", nctx);
        return;
    }
    const vinfo *pv = &vi[pid];
    if (!pv->is_tuple) {
        issue(c,
              "%s: tuple_getitem of tensor node[%lld] (TorchLean: getitem on a tensor value is not "
              "tensor-lowered)",
              nctx, (long long)pid);
        return;
    }
    if (!pv->is_mha) {
        issue(c, "%s: tuple_getitem of node[%lld], a tuple producer TorchLean has no tensor-lowering rule for", nctx,
              (long long)pid);
        return;
    }
    if (!have_i) return;
    if (index >= pv->n_tuple) {
        issue(c, "%s.index: %lld is out of bounds for %d components", nctx, (long long)index, pv->n_tuple);
        return;
    }
    if (index != 0) {
        issue(c,
              "%s.index: %lld (TorchLean lowers only component 0 of nn.MultiheadAttention: the attention weights "
              "are not lowered)",
              nctx, (long long)index);
        return;
    }
    tl_shape comp;
    memset(&comp, 0, sizeof comp);
    const cJSON *cs = cJSON_GetArrayItem(pv->tuple_shapes, (int)index);
    int k = 0;
    for (const cJSON *d = cs ? cs->child : NULL; d && k < TL_MAX_RANK; d = d->next, k++) nat(d, &comp.dim[k]);
    comp.rank = k;
    char a[160], b[160];
    if (have_shape && !tl_shape_eq(&comp, shape))
        issue(c, "%s.shape: %s, but tuple component %lld of node[%lld] has shape %s", nctx,
              tl_shape_str(shape, a, sizeof a), (long long)index, (long long)pid, tl_shape_str(&comp, b, sizeof b));
}

static void check_node(ck *c, const cJSON *jn, int64_t i, vinfo *vi, int64_t nn) {
    char nctx[48];
    snprintf(nctx, sizeof nctx, "node[%lld]", (long long)i);
    if (!cJSON_IsObject(jn)) {
        issue(c, "nodes[%lld]: expected an object", (long long)i);
        return;
    }
    int64_t id;
    if (need_nat(c, nctx, jn, "id", &id, "TorchLean's parseValueNode requires it") && id != i)
        issue(c, "%s.id: %lld (TorchLean's id discipline: nodes[i].id == i)", nctx, (long long)id);
    const cJSON *p = get(jn, "parents");
    if (!p) {
        issue(c, "%s.parents: missing (TorchLean's parseValueNode requires it)", nctx);
    } else {
        bool ok = cJSON_IsArray(p);
        for (const cJSON *e = ok ? p->child : NULL; e; e = e->next) {
            int64_t x;
            if (!nat(e, &x)) ok = false;
            else if (x >= i) {
                issue(c, "%s.parents: parent id %lld is not < %lld (TorchLean's topological order)", nctx,
                      (long long)x, (long long)i);
                break;
            }
        }
        if (!ok) issue(c, "%s.parents: expected an array of naturals (TorchLean's parseParents)", nctx);
    }

    /* value_kind / shape */
    bool is_tuple = false, have_shape = false;
    tl_shape shape;
    memset(&shape, 0, sizeof shape);
    const cJSON *vk = get(jn, "value_kind");
    if (vk && !(cJSON_IsString(vk) && (!strcmp(vk->valuestring, "tensor") || !strcmp(vk->valuestring, "tuple")))) {
        issue(c, "%s.value_kind: expected \"tensor\" or \"tuple\" (TorchLean's parseValueShape)", nctx);
    } else if (vk && !strcmp(vk->valuestring, "tuple")) {
        is_tuple = true;
        const cJSON *ts = get(jn, "tuple_shapes");
        bool ok = cJSON_IsArray(ts);
        for (const cJSON *s = ok ? ts->child : NULL; s; s = s->next) {
            if (!cJSON_IsArray(s)) ok = false;
            for (const cJSON *d = cJSON_IsArray(s) ? s->child : NULL; d; d = d->next)
                if (!nat(d, NULL)) ok = false;
        }
        if (!ts) issue(c, "%s.tuple_shapes: missing (TorchLean's parseValueShape requires it for a tuple)", nctx);
        else if (!ok) issue(c, "%s.tuple_shapes: expected an array of shapes (TorchLean's parseShapeArray)", nctx);
        else {
            vi[i].n_tuple = cJSON_GetArraySize(ts);
            vi[i].tuple_shapes = ts;
        }
    } else {
        have_shape = need_shape(c, nctx, jn, "shape", &shape, "TorchLean's parseValueShape requires it");
    }

    const cJSON *kf = get(jn, "kind");
    if (!kf) {
        issue(c, "%s.kind: missing (TorchLean's parseValueNode requires it)", nctx);
        return;
    }
    if (!cJSON_IsString(kf)) {
        issue(c, "%s.kind: expected a string (TorchLean's jsonString)", nctx);
        return;
    }
    bool legacy = false;
    int op = tl_op_from_tag(kf->valuestring, &legacy);
    vi[i].ok = true;
    vi[i].is_tuple = is_tuple;
    vi[i].shape = shape;
    if (op < 0) {
        issue(c, "%s.kind: unknown op tag \"%s\" (not in TorchLean's Wire.parseOpTag?)", nctx, kf->valuestring);
        return;
    }
    if (legacy) {
        issue(c,
              "%s.kind: legacy spelling \"%s\" (TorchLean's Wire.parseOpTag? reads only the current tags: \"%s\" "
              "with its fields)",
              nctx, kf->valuestring, tl_op_tag((tl_op)op));
        return;
    }
    vi[i].is_mha = op == TL_OP_MULTIHEAD_ATTENTION;
    if (is_tuple && op != TL_OP_MULTIHEAD_ATTENTION) return; /* value-graph only; a getitem of it is reported */
    char why[96];
    switch ((tl_op)op) {
    case TL_OP_CONST: check_const(c, nctx, jn, &shape, have_shape); break;
    case TL_OP_PERMUTE: need_nats(c, nctx, jn, "perm", -1, NULL, NULL, "TorchLean's parseOpKind requires it"); break;
    case TL_OP_TRANSPOSE:
        need_nat(c, nctx, jn, "axis1", NULL, "TorchLean's parseOpKind requires it");
        need_nat(c, nctx, jn, "axis2", NULL, "TorchLean's parseOpKind requires it");
        break;
    case TL_OP_RAND_UNIFORM:
    case TL_OP_BERNOULLI_MASK: need_nat(c, nctx, jn, "seed", NULL, "TorchLean's parseOpKind requires it"); break;
    case TL_OP_MAX_POOL:
    case TL_OP_AVG_POOL: check_pool(c, nctx, jn); break;
    case TL_OP_BROADCAST_TO: {
        tl_shape s;
        need_shape(c, nctx, jn, "from_shape", &s, "TorchLean's parseOpKind requires it");
        need_shape(c, nctx, jn, "to_shape", &s, "TorchLean's parseOpKind requires it");
        break;
    }
    case TL_OP_REDUCE_SUM:
    case TL_OP_REDUCE_MEAN: {
        int64_t axes[TL_MAX_RANK];
        int na = 0;
        if (!get(jn, "axes") && get(jn, "axis"))
            issue(c,
                  "%s.axes: missing (TorchLean lowers reductions from \"axes\"; \"axis\" is the old IR's "
                  "spelling)",
                  nctx);
        else if (need_nats(c, nctx, jn, "axes", -1, axes, &na, "TorchLean lowers reductions from their axes"))
            for (int a = 0; a < na && a < TL_MAX_RANK; a++)
                for (int b = a + 1; b < na && b < TL_MAX_RANK; b++)
                    if (axes[a] == axes[b]) {
                        issue(c, "%s.axes: duplicate axis %lld (TorchLean rejects duplicates)", nctx,
                              (long long)axes[a]);
                        a = b = na;
                    }
        need_bool(c, nctx, jn, "keepdim", NULL, "TorchLean's reductions require keepdim");
        break;
    }
    case TL_OP_CONV: check_conv(c, nctx, jn); break;
    case TL_OP_BATCH_NORM_EVAL: {
        int64_t ch = 0;
        need_nat(c, nctx, jn, "channel_axis", NULL, "TorchLean's parseOpKind requires it");
        bool have = need_nat(c, nctx, jn, "channels", &ch, "TorchLean's parseOpKind requires it");
        need_num(c, nctx, jn, "eps", "TorchLean's parsePayload reads batch_norm_eval eps inline");
        tl_shape s = shape1(ch);
        static const char *const K[] = {"gamma", "beta", "mean", "var"};
        for (int k = 0; k < 4; k++) {
            if (have) need_payload(c, nctx, jn, K[k], &s, "batch_norm_eval");
            else if (!get(jn, K[k])) need_payload(c, nctx, jn, K[k], &s, "batch_norm_eval");
        }
        break;
    }
    case TL_OP_SOFTMAX:
    case TL_OP_CONCAT: need_nat(c, nctx, jn, "axis", NULL, "TorchLean's parseOpKind requires it"); break;
    case TL_OP_LAYERNORM: {
        int64_t axis = 0;
        bool have = need_nat(c, nctx, jn, "axis", &axis, "TorchLean's parseOpKind requires it");
        need_num(c, nctx, jn, "eps", "TorchLean's parsePayload reads layernorm eps inline");
        tl_shape ns;
        memset(&ns, 0, sizeof ns);
        if (have && have_shape && axis <= shape.rank) {
            ns.rank = shape.rank - (int)axis;
            for (int d = 0; d < ns.rank; d++) ns.dim[d] = shape.dim[axis + d];
        } else {
            have = false;
        }
        static const char *const K[] = {"gamma", "beta"};
        for (int k = 0; k < 2; k++)
            if (have || !get(jn, K[k])) need_payload(c, nctx, jn, K[k], &ns, "layernorm");
        break;
    }
    case TL_OP_RESHAPE: {
        tl_shape s;
        need_shape(c, nctx, jn, "in_shape", &s, "TorchLean's parseOpKind requires it");
        need_shape(c, nctx, jn, "out_shape", &s, "TorchLean's parseOpKind requires it");
        break;
    }
    case TL_OP_FLATTEN: {
        tl_shape s;
        need_shape(c, nctx, jn, "value_shape", &s, "TorchLean's parseOpKind requires it");
        break;
    }
    case TL_OP_LINEAR: {
        int64_t in = 0, out = 0;
        snprintf(why, sizeof why, "TorchLean's parsePayload reads linear %s", "in_dim");
        bool hi = need_nat(c, nctx, jn, "in_dim", &in, why);
        snprintf(why, sizeof why, "TorchLean's parsePayload reads linear %s", "out_dim");
        bool ho = need_nat(c, nctx, jn, "out_dim", &out, why);
        tl_shape w = shape1(out), b = shape1(out);
        w.rank = 2;
        w.dim[1] = in;
        if (hi && ho) need_payload(c, nctx, jn, "weight", &w, "linear");
        else if (!get(jn, "weight")) need_payload(c, nctx, jn, "weight", &w, "linear");
        if (ho) need_payload(c, nctx, jn, "bias", &b, "linear");
        else if (!get(jn, "bias")) need_payload(c, nctx, jn, "bias", &b, "linear");
        break;
    }
    case TL_OP_HARD_MASKED_SOFTMAX:
        issue(c, "%s.kind: hard_masked_softmax (TorchLean has no artifact encoding for its mask yet)", nctx);
        break;
    case TL_OP_CUSTOM:
        issue(c, "%s.kind: custom (TorchLean's importer has no wire encoding for custom nodes)", nctx);
        break;
    case TL_OP_TUPLE_GETITEM:
        if (is_tuple) issue(c, "%s.value_kind: tuple_getitem yields a tensor, not a tuple", nctx);
        else check_getitem(c, nctx, jn, vi, nn, &shape, have_shape);
        break;
    case TL_OP_MULTIHEAD_ATTENTION: check_mha(c, nctx, jn, is_tuple); break;
    default: /* attribute-free tags (Wire.parseOpKind?): nothing more to read */ break;
    }
}

/* Whether a line about the same place (the root field or node[N] the reader's message starts
 * with) was already reported: the reader stops at its first error, often one the check also saw. */
static bool already_reported(const ck *c, const char *msg) {
    if (!c->out) return false;
    size_t nl = strlen(c->name);
    if (strncmp(msg, c->name, nl) || msg[nl] != ':' || msg[nl + 1] != ' ') return false;
    size_t len = nl + 2 + strcspn(msg + nl + 2, ".:"); /* "name: format" / "name: node[3]" */
    for (int k = 0; k < c->out->n; k++)
        if (strncmp(c->out->line[k], msg, len) == 0 && (c->out->line[k][len] == '.' || c->out->line[k][len] == ':'))
            return true;
    return false;
}

static void check_root(ck *c, const cJSON *root, const char *buf, size_t len) {
    if (!cJSON_IsObject(root)) {
        issue(c, "root: expected an object (TorchLean's parseValueGraph)");
        return;
    }
    const cJSON *f = get(root, "format");
    if (!f) issue(c, "format: missing (TorchLean requires \"torchlean.ir.v1\")");
    else if (!cJSON_IsString(f) || strcmp(f->valuestring, "torchlean.ir.v1"))
        issue(c, "format: expected \"torchlean.ir.v1\" (TorchLean's parseValueGraph)");
    f = get(root, "input_id");
    if (!f) issue(c, "input_id: missing (TorchLean's parseValueGraph requires it)");
    else if (!nat(f, NULL)) issue(c, "input_id: expected a natural number (TorchLean's jsonNat)");
    f = get(root, "output_ids");
    if (!f && get(root, "output_id"))
        issue(c, "output_ids: missing (TorchLean reads output_ids only; \"output_id\" is the old IR's spelling)");
    else if (!f) issue(c, "output_ids: missing (TorchLean's parseValueGraph requires it)");
    else {
        bool ok = cJSON_IsArray(f);
        for (const cJSON *e = ok ? f->child : NULL; e; e = e->next)
            if (!nat(e, NULL)) ok = false;
        if (!ok) issue(c, "output_ids: expected an array of naturals (TorchLean's parseNatArray)");
        else if (cJSON_GetArraySize(f) == 0) issue(c, "output_ids: must contain at least one output (TorchLean)");
    }
    const cJSON *nodes = get(root, "nodes");
    if (!nodes) issue(c, "nodes: missing (TorchLean's parseValueGraph requires it)");
    else if (!cJSON_IsArray(nodes)) issue(c, "nodes: expected an array (TorchLean's jsonArray)");
    else if (cJSON_GetArraySize(nodes) == 0) issue(c, "nodes: graph contains no nodes (TorchLean's checkValueGraph)");
    else {
        int64_t nn = cJSON_GetArraySize(nodes), i = 0;
        vinfo *vi = calloc((size_t)nn, sizeof *vi);
        if (!vi) {
            c->oom = true;
            return;
        }
        for (const cJSON *jn = nodes->child; jn; jn = jn->next, i++) check_node(c, jn, i, vi, nn);
        free(vi);
    }
    /* structure and shapes: tlrt's reader holds TorchLean's checkValueGraph / checkShapes rules */
    char *text = NULL;
    if (!buf) {
        text = cJSON_PrintUnformatted(root);
        if (!text) {
            c->oom = true;
            return;
        }
        buf = text;
        len = strlen(text);
    }
    tl_graph *g = NULL;
    tl_err e = {0};
    if (tl_graph_parse_json(buf, len, c->name, &g, &e)) {
        const char *msg = e.msg;
        size_t nl = strlen(c->name);
        if (!already_reported(c, msg)) {
            if (strncmp(msg, c->name, nl) == 0 && msg[nl] == ':' && msg[nl + 1] == ' ') msg += nl + 2;
            issue(c, "%s", msg);
        }
    }
    tl_graph_free(g);
    free(text);
}

static int finish(ck *c, tl_err *err) {
    tl_torchlean_issues_free(&c->own);
    if (c->oom) return tl_erroom(err, "%s: out of memory while checking", c->name);
    if (c->n == 0) return 0;
    return tl_errk(err, TL_ERR_UNSUPPORTED, "%s: not TorchLean-compatible: %d problem%s (first: %s)", c->name, c->n,
                   c->n == 1 ? "" : "s", c->first);
}

static void init(ck *c, const char *name, tl_torchlean_issues *out) {
    memset(c, 0, sizeof *c);
    c->name = name ? name : "graph.json";
    c->out = out ? out : &c->own;
    memset(c->out, 0, sizeof *c->out);
}

int tl_torchlean_check_json(const cJSON *root, const char *name, tl_torchlean_issues *out, tl_err *err) {
    ck c;
    init(&c, name, out);
    check_root(&c, root, NULL, 0);
    return finish(&c, err);
}

int tl_torchlean_check_buf(const char *buf, size_t len, const char *name, tl_torchlean_issues *out, tl_err *err) {
    ck c;
    init(&c, name, out);
    cJSON *root = buf ? cJSON_ParseWithLength(buf, len) : NULL;
    if (!root) { /* the reader's message says where the JSON breaks */
        tl_graph *g = NULL;
        tl_err e = {0};
        if (buf && tl_graph_parse_json(buf, len, c.name, &g, &e) == 0) tl_graph_free(g);
        const char *msg = e.msg[0] ? e.msg + (strncmp(e.msg, c.name, strlen(c.name)) ? 0 : strlen(c.name) + 2)
                                   : "invalid JSON";
        issue(&c, "%s", msg);
        return finish(&c, err);
    }
    check_root(&c, root, buf, len);
    cJSON_Delete(root);
    return finish(&c, err);
}

int tl_torchlean_check_file(const char *path, tl_torchlean_issues *out, tl_err *err) {
    char *buf = NULL;
    size_t len = 0;
    if (out) memset(out, 0, sizeof *out);
    if (tl_read_file(path, &buf, &len, err)) {
        if (out && (out->line = malloc(sizeof *out->line)) && (out->line[0] = strdup(err ? err->msg : path)))
            out->n = 1;
        return -1;
    }
    int rc = tl_torchlean_check_buf(buf, len, path, out, err);
    free(buf);
    return rc;
}

void tl_torchlean_issues_free(tl_torchlean_issues *issues) {
    if (!issues) return;
    for (int k = 0; k < issues->n; k++) free(issues->line[k]);
    free(issues->line);
    issues->line = NULL;
    issues->n = 0;
}

int tl_torchlean_check_print(const char *path, FILE *out, tl_err *err) {
    tl_torchlean_issues is;
    int rc = tl_torchlean_check_file(path, &is, err);
    for (int k = 0; k < is.n; k++) fprintf(out, "%s\n", is.line[k]);
    if (rc == 0) fprintf(out, "%s: TorchLean-compatible\n", path);
    tl_torchlean_issues_free(&is);
    return rc;
}
