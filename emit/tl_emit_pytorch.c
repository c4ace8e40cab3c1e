/* tl_emit_pytorch.c - torchlean.ir.v1 graph (+ bound parameters) -> a standalone, readable
 * PyTorch nn.Module source file.
 *
 * Layout of the emitted module:
 *   - __init__ registers every parameter slot under its params.bin name (tl_param_name), so
 *     module.state_dict() and params.bin hold the same names; weights are nn.Parameter, batch-norm
 *     statistics and consts are buffers (consts become Parameters with learnable_consts);
 *   - forward(x, return_all=False) has ONE line per node, `xN = ...  # node N: tag`;
 *   - with return_all the dict {node_id: tensor} of every node is returned.
 * Semantics follow the runtime's kernels (kernels/tl_kernels_scalar.c, tl_move.c), which follow
 * TorchLean's spec: max pooling ignores padded cells (PyTorch's -inf padding: every window holds an
 * input cell since padding <= kernel/2), average pooling counts the padding as zeros
 * (count_include_pad=True), safe_log(x, eps) = log(softplus(x) + eps), softplus has PyTorch's
 * threshold 20, rand_uniform / bernoulli_mask use TorchLean's Spec.Random generator (splitmix64,
 * reproduced with int64 tensor arithmetic by the helpers emit_random_helpers writes). The text is
 * built in memory and written to `out` only when the whole module was generated. */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_emit.h"

/* ---------------------------------------------------------------- string builder */
typedef struct sb {
    char *p;
    size_t n, cap;
    bool oom;
} sb;

static void sb_printf(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = true;
            return;
        }
        if (b->p && (size_t)k < room) {
            b->n += (size_t)k;
            return;
        }
        size_t ncap = b->cap ? b->cap * 2 : 4096;
        while (ncap < b->n + (size_t)k + 1) ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

/* ---------------------------------------------------------------- small formatters */
/* Python tuple of naturals: "()", "(4,)", "(1, 4)". */
static const char *py_tuple(const int64_t *v, int n, char *buf, size_t len) {
    size_t off = 0;
    off += (size_t)snprintf(buf + off, len - off, "(");
    for (int i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%" PRId64, i ? ", " : "", v[i]);
    if (off < len) off += (size_t)snprintf(buf + off, len - off, "%s)", n == 1 ? "," : "");
    return buf;
}
#define TBUF 256
#define PT(v, n) py_tuple((v), (n), (char[TBUF]){0}, TBUF)
#define PS(s) py_tuple((s)->dim, (s)->rank, (char[TBUF]){0}, TBUF)
#define SSTR(s) tl_shape_str((s), (char[TBUF]){0}, TBUF)

/* float32 with %.9g (round-trips exactly); non-finite as the module's names nan / inf. */
static void sb_float(sb *b, float f) {
    if (isnan(f)) sb_printf(b, "nan");
    else if (isinf(f)) sb_printf(b, f > 0 ? "inf" : "-inf");
    else if (f == 0.0f) sb_printf(b, signbit(f) ? "-0.0" : "0.0");  /* "-0" would be the int 0 */
    else sb_printf(b, "%.9g", (double)f);
}

/* double attribute (eps) as a Python float literal. */
static void sb_double(sb *b, double d) {
    if (isnan(d)) sb_printf(b, "nan");
    else if (isinf(d)) sb_printf(b, d > 0 ? "inf" : "-inf");
    else {
        char buf[64];
        for (int prec = 1; prec <= 17; prec++) { /* shortest text that reads back exactly */
            snprintf(buf, sizeof buf, "%.*g", prec, d);
            if (strtod(buf, NULL) == d) break;
        }
        sb_printf(b, "%s%s", buf, strpbrk(buf, ".eE") ? "" : ".0");
    }
}

static bool is_py_identifier(const char *s) {
    static const char *const KW[] = { "False", "None", "True", "and", "as", "assert", "async", "await",
                                      "break", "class", "continue", "def", "del", "elif", "else", "except",
                                      "finally", "for", "from", "global", "if", "import", "in", "is",
                                      "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try",
                                      "while", "with", "yield" };
    if (!s || !*s || !(isalpha((unsigned char)*s) || *s == '_')) return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_')) return false;
    for (size_t i = 0; i < sizeof KW / sizeof KW[0]; i++)
        if (strcmp(s, KW[i]) == 0) return false;
    return true;
}

/* Python string literal (double quotes, escaped). */
static void sb_pystr(sb *b, const char *s) {
    sb_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') sb_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) sb_printf(b, "\\x%02x", *p);
        else sb_printf(b, "%c", *p);
    }
    sb_printf(b, "\"");
}

void tl_emit_opts_default(tl_emit_opts *o) {
    memset(o, 0, sizeof *o);
    o->class_name = "TorchLeanModel";
    o->dtype = "torch.float32";
    o->weights = TL_WEIGHTS_EXTERNAL;
    o->params_path = "params.bin";
}

/* ---------------------------------------------------------------- parameters */
typedef struct pinfo {
    char name[96];
    tl_shape shape;          /* full shape (params.bin) */
    const tl_tensor *t;
    bool parameter;          /* nn.Parameter (else buffer) */
    int compress_k;          /* const compressed: number of leading axes dropped (0 = none) */
} pinfo;

/* Largest k (1..rank-1) such that the const is its trailing block repeated along the first k
 * axes; 0 if none. */
static int const_repeat_axes(const tl_tensor *t) {
    const tl_shape *s = &t->shape;
    int best = 0;
    for (int k = 1; k < s->rank; k++) {
        int64_t block = 1, reps = 1;
        for (int i = k; i < s->rank; i++) block *= s->dim[i];
        for (int i = 0; i < k; i++) reps *= s->dim[i];
        if (block <= 0 || reps <= 1) continue;
        bool same = true;
        for (int64_t r = 1; r < reps && same; r++)
            if (memcmp(t->data, t->data + r * block, (size_t)block * sizeof(float)) != 0) same = false;
        if (same) best = k;
    }
    return best;
}

static int collect_param(const tl_graph *g, const tl_node *n, int slot, const tl_emit_opts *o, pinfo *pi,
                         tl_err *err) {
    memset(pi, 0, sizeof *pi);
    tl_param_name(n, slot, pi->name, sizeof pi->name);
    if (tl_param_shape(n, slot, &pi->shape))
        return tl_errf(err, "%s: node[%" PRId64 "]: cannot derive the shape of parameter %s", g->path, n->id,
                       pi->name);
    const tl_tensor *t = n->param[slot];
    if (!t || !t->data)
        return tl_errf(err, "%s: node[%" PRId64 "]: missing parameter %s (no params.bin entry and no inline payload)",
                       g->path, n->id, pi->name);
    if (!tl_shape_eq(&t->shape, &pi->shape))
        return tl_errf(err, "%s: node[%" PRId64 "]: parameter %s has shape %s, expected %s", g->path, n->id,
                       pi->name, SSTR(&t->shape), SSTR(&pi->shape));
    pi->t = t;
    switch (n->op) {
    case TL_OP_CONST:
        pi->parameter = o->learnable_consts;
        if (o->compress_broadcast) {
            pi->compress_k = const_repeat_axes(t);
            if (pi->compress_k > 0) pi->parameter = true;
        }
        break;
    case TL_OP_BATCH_NORM_EVAL:
        pi->parameter = slot < 2; /* gamma, beta; mean/var are running statistics (buffers) */
        break;
    default:
        pi->parameter = true;
        break;
    }
    return 0;
}

/* Inline literal: _t([v, v, ...], shape). */
static void sb_tensor_literal(sb *b, const float *data, int64_t numel, const tl_shape *shape) {
    sb_printf(b, "_t([");
    for (int64_t i = 0; i < numel; i++) {
        if (i) sb_printf(b, ",");
        if (i && i % 8 == 0) sb_printf(b, "\n            ");
        else if (i) sb_printf(b, " ");
        sb_float(b, data[i]);
    }
    sb_printf(b, "], %s)", PS(shape));
}

static void emit_param_init(sb *b, const pinfo *pi, const tl_emit_opts *o) {
    tl_shape s = pi->shape;
    int64_t numel = tl_shape_numel(&s);
    const float *data = pi->t->data;
    tl_shape row = s;
    if (pi->compress_k > 0) {
        row.rank = s.rank - pi->compress_k;
        for (int i = 0; i < row.rank; i++) row.dim[i] = s.dim[pi->compress_k + i];
        numel = tl_shape_numel(&row);
    }
    /* value expression */
    sb vb = { 0 };
    if (o->weights == TL_WEIGHTS_INLINE) {
        sb_tensor_literal(&vb, data, numel, pi->compress_k > 0 ? &row : &s);
    } else if (pi->compress_k > 0) {
        int64_t dims[TL_MAX_RANK + 1];
        dims[0] = -1;
        for (int i = 0; i < row.rank; i++) dims[1 + i] = row.dim[i];
        sb_printf(&vb, "p[\"%s\"].reshape(%s)[0].clone().to(DTYPE)", pi->name, PT(dims, row.rank + 1));
    } else {
        sb_printf(&vb, "p[\"%s\"].to(DTYPE)", pi->name);
    }
    if (vb.oom) {
        b->oom = true;
        free(vb.p);
        return;
    }
    if (pi->compress_k > 0)
        sb_printf(b, "        # %s: one row %s repeated along the leading %d axes of %s (expanded in forward)\n",
                  pi->name, SSTR(&row), pi->compress_k, SSTR(&s));
    if (pi->parameter) sb_printf(b, "        self.%s = nn.Parameter(%s)\n", pi->name, vb.p ? vb.p : "");
    else sb_printf(b, "        self.register_buffer(\"%s\", %s)\n", pi->name, vb.p ? vb.p : "");
    free(vb.p);
}

/* ---------------------------------------------------------------- forward lines */
#define X(id) ((long long)(id))

static bool all_zero(const int64_t *v, int n) {
    for (int i = 0; i < n; i++)
        if (v[i]) return false;
    return true;
}

/* F.pad tuple for the trailing r spatial axes (last axis first). */
static void sb_pad_tuple(sb *b, const int64_t *before, const int64_t *after, int r) {
    sb_printf(b, "(");
    for (int i = r - 1; i >= 0; i--) sb_printf(b, "%" PRId64 ", %" PRId64 "%s", before[i], after[i], i ? ", " : "");
    sb_printf(b, ")");
}

static int emit_conv(sb *b, const tl_graph *g, const tl_node *n, tl_err *err) {
    const tl_attrs *a = &n->a;
    int r = (int)a->spatial_rank;
    if (r < 1 || r > 3)
        return tl_errf(err, "%s: node[%" PRId64 "]: conv with spatial_rank %d is not supported by PyTorch "
                       "(F.conv1d/2d/3d)", g->path, n->id, r);
    const tl_shape *xs = &g->nodes[n->parents[0]].shape;
    bool direct = a->channel_axis <= 1;    /* (C, *) unbatched or (N, C, *) */
    char xin[TBUF];
    if (direct) snprintf(xin, sizeof xin, "x%lld", X(n->parents[0]));
    else {
        int64_t dims[TL_MAX_RANK];
        dims[0] = -1;
        for (int i = 0; i <= r; i++) dims[1 + i] = xs->dim[a->channel_axis + i];
        snprintf(xin, sizeof xin, "x%lld.reshape(%s)", X(n->parents[0]), PT(dims, r + 2));
    }
    bool sym = true;
    for (int i = 0; i < r; i++)
        if (a->padding[i] != a->padding_after[i]) sym = false;
    sb_printf(b, "F.conv%dd(", r);
    if (!sym) {
        sb_printf(b, "F.pad(%s, ", xin);
        sb_pad_tuple(b, a->padding, a->padding_after, r);
        sb_printf(b, ")");
    } else {
        sb_printf(b, "%s", xin);
    }
    sb_printf(b, ", self.conv2d_%lld_kernel, self.conv2d_%lld_bias, stride=%s, padding=%s, dilation=%s, groups=%" PRId64
                 ")",
              X(n->id), X(n->id), PT(a->stride, r), sym ? PT(a->padding, r) : PT((int64_t[TL_MAX_RANK]){ 0 }, r),
              PT(a->dilation, r), a->groups);
    if (!direct) sb_printf(b, ".reshape(%s)", PS(&n->shape));
    return 0;
}

static int emit_pool(sb *b, const tl_graph *g, const tl_node *n, tl_err *err) {
    const tl_attrs *a = &n->a;
    int r = (int)a->spatial_rank;
    if (r < 1 || r > 3)
        return tl_errf(err, "%s: node[%" PRId64 "]: %s with spatial_rank %d is not supported by PyTorch", g->path,
                       n->id, tl_op_tag(n->op), r);
    const tl_shape *xs = &g->nodes[n->parents[0]].shape;
    bool direct = xs->rank == r + 1 || xs->rank == r + 2;
    char xin[TBUF];
    if (direct) snprintf(xin, sizeof xin, "x%lld", X(n->parents[0]));
    else {
        int64_t dims[TL_MAX_RANK];
        dims[0] = -1;
        for (int i = 0; i < r; i++) dims[1 + i] = xs->dim[xs->rank - r + i];
        snprintf(xin, sizeof xin, "x%lld.reshape(%s)", X(n->parents[0]), PT(dims, r + 1));
    }
    bool pad = !all_zero(a->padding, r);
    if (n->op == TL_OP_MAX_POOL) {
        /* padded cells never win (TorchLean maxPoolValue skips them, like PyTorch's -inf) */
        sb_printf(b, "F.max_pool%dd(%s, kernel_size=%s, stride=%s", r, xin, PT(a->kernel, r), PT(a->stride, r));
        if (pad) sb_printf(b, ", padding=%s", PT(a->padding, r));
        sb_printf(b, ")");
    } else {
        sb_printf(b, "F.avg_pool%dd(%s, kernel_size=%s, stride=%s, padding=%s, count_include_pad=True)", r, xin,
                  PT(a->kernel, r), PT(a->stride, r), PT(a->padding, r));
    }
    if (!direct) sb_printf(b, ".reshape(%s)", PS(&n->shape));
    return 0;
}

static void emit_batchnorm(sb *b, const tl_graph *g, const tl_node *n) {
    const tl_attrs *a = &n->a;
    const tl_shape *xs = &g->nodes[n->parents[0]].shape;
    long long id = X(n->id);
    bool direct = a->channel_axis == 1 && xs->rank >= 2;
    if (direct) sb_printf(b, "F.batch_norm(x%lld", X(n->parents[0]));
    else {
        int64_t lead = 1, rest = 1;
        for (int i = 0; i < a->channel_axis; i++) lead *= xs->dim[i];
        for (int i = (int)a->channel_axis + 1; i < xs->rank; i++) rest *= xs->dim[i];
        int64_t dims[3] = { lead, a->channels, rest };
        sb_printf(b, "F.batch_norm(x%lld.reshape(%s)", X(n->parents[0]), PT(dims, 3));
    }
    sb_printf(b, ", self.batchnorm_%lld_mean, self.batchnorm_%lld_var, self.batchnorm_%lld_gamma, "
                 "self.batchnorm_%lld_beta, training=False, eps=", id, id, id, id);
    sb_double(b, a->eps);
    sb_printf(b, ")");
    if (!direct) sb_printf(b, ".reshape(%s)", PS(&n->shape));
}

static const char *unary_expr(tl_op op) {
    switch (op) {
    case TL_OP_DETACH: return "%s.detach()";
    case TL_OP_ABS: return "torch.abs(%s)";
    case TL_OP_SQRT: return "torch.sqrt(%s)";
    case TL_OP_INV: return "torch.reciprocal(%s)";
    case TL_OP_RELU: return "torch.relu(%s)";
    case TL_OP_TANH: return "torch.tanh(%s)";
    case TL_OP_SIGMOID: return "torch.sigmoid(%s)";
    case TL_OP_EXP: return "torch.exp(%s)";
    case TL_OP_LOG: return "torch.log(%s)";
    case TL_OP_SIN: return "torch.sin(%s)";
    case TL_OP_COS: return "torch.cos(%s)";
    case TL_OP_SOFTPLUS: return "F.softplus(%s)";
    default: return NULL;
    }
}

static const char *binary_fn(tl_op op) {
    switch (op) {
    case TL_OP_ADD: return "torch.add";
    case TL_OP_SUB: return "torch.sub";
    case TL_OP_MUL_ELEM: return "torch.mul";
    case TL_OP_MAX_ELEM: return "torch.maximum";
    case TL_OP_MIN_ELEM: return "torch.minimum";
    case TL_OP_MATMUL: return "torch.matmul";
    case TL_OP_MSE_LOSS: return "F.mse_loss";
    default: return NULL;
    }
}

static int emit_node(sb *b, const tl_graph *g, const tl_node *n, const pinfo *params, int n_params,
                     const char *dtype, tl_err *err) {
    const tl_attrs *a = &n->a;
    long long id = X(n->id);
    const int64_t *pp = n->parents;
    char p0[32] = "", p1[32] = "";
    if (n->n_parents > 0) snprintf(p0, sizeof p0, "x%lld", X(pp[0]));
    if (n->n_parents > 1) snprintf(p1, sizeof p1, "x%lld", X(pp[1]));
    sb_printf(b, "        x%lld = ", id);
    const char *ue = unary_expr(n->op);
    const char *bf = binary_fn(n->op);
    if (ue) {
        sb_printf(b, ue, p0);
    } else if (bf) {
        sb_printf(b, "%s(%s, %s)", bf, p0, p1);
    } else {
        switch (n->op) {
        case TL_OP_INPUT:
            /* cast only for a non-default dtype: capture (torch.export) sees no extra op then */
            sb_printf(b, "%s", strcmp(dtype, "torch.float32") == 0 ? "x" : "x.to(DTYPE)");
            break;
        case TL_OP_CONST: {
            const pinfo *pi = NULL;
            for (int i = 0; i < n_params; i++)
                if (params[i].t == n->param[0]) pi = &params[i];
            if (pi && pi->compress_k > 0) sb_printf(b, "self.const_%lld.expand(%s)", id, PS(&n->shape));
            else sb_printf(b, "self.const_%lld", id);
            break;
        }
        case TL_OP_SAFE_LOG:
            sb_printf(b, "torch.log(F.softplus(%s) + %s)", p0, p1);  /* TorchLean: log(softplus(x) + eps) */
            break;
        case TL_OP_BROADCAST_TO:
            sb_printf(b, "%s.expand(%s)", p0, PS(&a->to_shape));
            break;
        case TL_OP_PERMUTE:
            sb_printf(b, "%s.permute(%s)", p0, PT(a->perm, a->perm_n));
            break;
        case TL_OP_TRANSPOSE:
            sb_printf(b, "%s.transpose(%" PRId64 ", %" PRId64 ")", p0, a->axis1, a->axis2);
            break;
        case TL_OP_RESHAPE:
            sb_printf(b, "%s.reshape(%s)", p0, PS(&a->out_shape));
            break;
        case TL_OP_FLATTEN:
            sb_printf(b, "torch.flatten(%s)", p0);
            if (a->value_shape.rank == 0) sb_printf(b, ".reshape(%s)", PS(&n->shape));
            break;
        case TL_OP_CONCAT:
            sb_printf(b, "torch.cat((");
            for (int i = 0; i < n->n_parents; i++) sb_printf(b, "%sx%lld", i ? ", " : "", X(pp[i]));
            sb_printf(b, "), dim=%" PRId64 ")", a->axis);
            break;
        case TL_OP_REDUCE_SUM:
        case TL_OP_REDUCE_MEAN:
            if (a->axes_n == 0) sb_printf(b, "%s.clone()", p0);  /* no axes: identity */
            else
                sb_printf(b, "torch.%s(%s, dim=%s, keepdim=%s)", n->op == TL_OP_REDUCE_SUM ? "sum" : "mean", p0,
                          PT(a->axes, a->axes_n), a->keepdim ? "True" : "False");
            break;
        case TL_OP_SUM:
            sb_printf(b, "torch.sum(%s)", p0);
            break;
        case TL_OP_LINEAR:
            sb_printf(b, "F.linear(%s, self.linear_%lld_W, self.linear_%lld_b)", p0, id, id);
            break;
        case TL_OP_CONV:
            if (emit_conv(b, g, n, err)) return -1;
            break;
        case TL_OP_MAX_POOL:
        case TL_OP_AVG_POOL:
            if (emit_pool(b, g, n, err)) return -1;
            break;
        case TL_OP_BATCH_NORM_EVAL:
            emit_batchnorm(b, g, n);
            break;
        case TL_OP_SOFTMAX:
            sb_printf(b, "torch.softmax(%s, dim=%" PRId64 ")", p0, a->axis);
            break;
        case TL_OP_LAYERNORM: {
            const tl_shape *xs = &g->nodes[pp[0]].shape;
            sb_printf(b, "F.layer_norm(%s, %s, self.layernorm_%lld_gamma, self.layernorm_%lld_beta, eps=", p0,
                      PT(&xs->dim[a->axis], xs->rank - (int)a->axis), id, id);
            sb_double(b, a->eps);
            sb_printf(b, ")");
            break;
        }
        case TL_OP_RAND_UNIFORM:
            sb_printf(b, "_rand_uniform(%" PRId64 ", %lld, %s, x.device)", a->seed, id, PS(&n->shape));
            break;
        case TL_OP_BERNOULLI_MASK:
            sb_printf(b, "_bernoulli_mask(%" PRId64 ", %lld, %s, %s)", a->seed, id, p0, PS(&n->shape));
            break;
        default:
            return tl_errf(err, "%s: node[%lld]: unsupported tag for the PyTorch emitter: %s", g->path, id,
                           tl_op_tag(n->op));
        }
    }
    sb_printf(b, "  # node %lld: %s\n", id, tl_op_tag(n->op));
    return 0;
}

/* ---------------------------------------------------------------- module */
static void emit_random_helpers(sb *b) {
    sb_printf(b,
              "_M64 = (1 << 64) - 1\n"
              "\n"
              "\n"
              "def _splitmix64(x):\n"
              "    \"\"\"splitmix64 on a Python int (mod 2^64).\"\"\"\n"
              "    z = (x + 0x9E3779B97F4A7C15) & _M64\n"
              "    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64\n"
              "    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64\n"
              "    return z ^ (z >> 31)\n"
              "\n"
              "\n"
              "def _i64(v):\n"
              "    \"\"\"uint64 value -> the int64 with the same bits (torch has no full uint64 arithmetic).\"\"\"\n"
              "    v &= _M64\n"
              "    return v - (1 << 64) if v >> 63 else v\n"
              "\n"
              "\n"
              "def _srl(z, k):\n"
              "    \"\"\"logical right shift of the int64 bits.\"\"\"\n"
              "    return (z >> k) & ((1 << (64 - k)) - 1)\n"
              "\n"
              "\n"
              "def _unit(seed, node_id, shape, device=None):\n"
              "    \"\"\"TorchLean Spec.Random, as tlrt runs it: key = splitmix64(seed + node id); element i is\n"
              "    float32(low 32 bits of splitmix64(key + i)) / 2^32 (int64 tensor ops wrap like uint64).\"\"\"\n"
              "    n = 1\n"
              "    for d in shape:\n"
              "        n *= d\n"
              "    key = _splitmix64(seed + node_id)\n"
              "    z = torch.arange(n, dtype=torch.int64, device=device) + _i64(key + 0x9E3779B97F4A7C15)\n"
              "    z = (z ^ _srl(z, 30)) * _i64(0xBF58476D1CE4E5B9)\n"
              "    z = (z ^ _srl(z, 27)) * _i64(0x94D049BB133111EB)\n"
              "    z = z ^ _srl(z, 31)\n"
              "    return ((z & 0xFFFFFFFF).to(torch.float32) / 4294967296.0).reshape(shape)\n"
              "\n"
              "\n"
              "def _rand_uniform(seed, node_id, shape, device=None):\n"
              "    return _unit(seed, node_id, shape, device).to(DTYPE)\n"
              "\n"
              "\n"
              "def _bernoulli_mask(seed, node_id, keep_prob, shape):\n"
              "    \"\"\"1 where keep_prob > u (keep_prob >= 1: all ones; keep_prob <= 0 or NaN: all zeros).\"\"\"\n"
              "    p = keep_prob.to(torch.float32)\n"
              "    u = _unit(seed, node_id, shape, p.device)\n"
              "    one, zero = torch.ones_like(u), torch.zeros_like(u)\n"
              "    m = torch.where(p > 0, torch.where(p < 1, (p > u).to(torch.float32), one), zero)\n"
              "    return m.to(DTYPE)\n"
              "\n"
              "\n");
}

int tl_emit_pytorch(const tl_graph *g, const tl_emit_opts *o_in, FILE *out, tl_err *err) {
    tl_emit_opts dflt;
    tl_emit_opts_default(&dflt);
    const tl_emit_opts *o = o_in ? o_in : &dflt;
    const char *cls = o->class_name ? o->class_name : dflt.class_name;
    const char *dtype = o->dtype ? o->dtype : dflt.dtype;
    const char *gpath = g && g->path ? g->path : "graph";
    if (!g || !out) return tl_errf(err, "tl_emit_pytorch: no graph or output");
    if (!is_py_identifier(cls)) return tl_errf(err, "--class-name: not a Python identifier: \"%s\"", cls);
    if (!*dtype || strpbrk(dtype, "\n\r#")) return tl_errf(err, "--dtype: expected a one-line torch dtype expression");

    /* 1. parameters (checked before any text is produced) */
    int64_t n_slots = 0;
    bool need_rand = false;
    for (int64_t i = 0; i < g->n_nodes; i++) {
        const tl_node *n = &g->nodes[i];
        const tl_op_row *row = tl_op_info(n->op);
        if (!row) return tl_errf(err, "%s: node[%" PRId64 "]: unknown op", gpath, i);
        if (n->is_tuple || !row->executable || n->op == TL_OP_TUPLE_GETITEM || n->op == TL_OP_MULTIHEAD_ATTENTION)
            return tl_errf(err, "%s: node[%" PRId64 "]: unsupported tag for the PyTorch emitter: %s", gpath, i,
                           row->tag);
        n_slots += row->n_params;
        if (n->op == TL_OP_RAND_UNIFORM || n->op == TL_OP_BERNOULLI_MASK) need_rand = true;
    }
    pinfo *params = calloc(n_slots > 0 ? (size_t)n_slots : 1, sizeof *params);
    if (!params) return tl_erroom(err, "%s: out of memory", gpath);
    int np = 0;
    for (int64_t i = 0; i < g->n_nodes; i++) {
        const tl_node *n = &g->nodes[i];
        const tl_op_row *row = tl_op_info(n->op);
        for (int s = 0; s < row->n_params; s++) {
            tl_graph tmp = *g;
            tmp.path = (char *)gpath;
            if (collect_param(&tmp, n, s, o, &params[np], err)) {
                free(params);
                return -1;
            }
            np++;
        }
    }

    sb b = { 0 };
    const tl_shape *in_shape = &g->nodes[g->input_id].shape;
    const char *base = strrchr(gpath, '/');
    base = base ? base + 1 : gpath;

    /* 2. header */
    sb_printf(&b, "\"\"\"%s: PyTorch module generated by `tlemit pytorch` from ", cls);
    for (const char *c = base; *c; c++) /* file name inside a docstring: keep it inert */
        sb_printf(&b, "%c", (isalnum((unsigned char)*c) || strchr("._-+ ", *c)) ? *c : '_');
    sb_printf(&b, " (torchlean.ir.v1).\n\n");
    sb_printf(&b, "%" PRId64 " nodes, input node %" PRId64 " of shape %s, output node(s)", g->n_nodes, g->input_id,
              SSTR(in_shape));
    for (int i = 0; i < g->n_outputs; i++) sb_printf(&b, "%s %" PRId64, i ? "," : "", g->output_ids[i]);
    sb_printf(&b, ".\n"
                  "forward(x) returns the outputs (a tuple if there are several); forward(x, return_all=True)\n"
                  "returns {node_id: tensor} for every node. state_dict() names match params.bin.\n"
                  "Max pooling ignores padded cells (TorchLean spec, as PyTorch); average pooling counts them as zeros.\n"
                  "\"\"\"\n");
    sb_printf(&b, "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n");
    if (o->weights == TL_WEIGHTS_EXTERNAL && np > 0) sb_printf(&b, "from safetensors.torch import load_file\n");
    sb_printf(&b, "\nDTYPE = %s\n", dtype);
    if (o->weights == TL_WEIGHTS_EXTERNAL && np > 0) {
        sb_printf(&b, "PARAMS_PATH = ");
        sb_pystr(&b, o->params_path ? o->params_path : "params.bin");
        sb_printf(&b, "\n");
    }
    sb_printf(&b, "nan = float(\"nan\")\ninf = float(\"inf\")\n\n\n");
    if (o->weights == TL_WEIGHTS_INLINE && np > 0)
        sb_printf(&b, "def _t(values, shape):\n"
                      "    \"\"\"float32 literal (printed with %%.9g, so exact), then cast to DTYPE.\"\"\"\n"
                      "    return torch.tensor(values, dtype=torch.float32).reshape(shape).to(DTYPE)\n\n\n");
    if (need_rand) emit_random_helpers(&b);

    /* 3. class + __init__ */
    sb_printf(&b, "class %s(nn.Module):\n", cls);
    sb_printf(&b, "    input_shape = %s\n", PS(in_shape));
    sb_printf(&b, "    output_ids = %s\n\n", PT(g->output_ids, g->n_outputs));
    if (o->weights == TL_WEIGHTS_EXTERNAL && np > 0) {
        sb_printf(&b, "    def __init__(self, params_path=PARAMS_PATH):\n");
        sb_printf(&b, "        super().__init__()\n");
        sb_printf(&b, "        p = load_file(params_path)\n");
    } else {
        sb_printf(&b, "    def __init__(self):\n");
        sb_printf(&b, "        super().__init__()\n");
    }
    for (int i = 0; i < np; i++) emit_param_init(&b, &params[i], o);
    sb_printf(&b, "\n");

    /* 4. forward */
    sb_printf(&b, "    def forward(self, x, return_all=False):\n");
    for (int64_t i = 0; i < g->n_nodes; i++) {
        if (emit_node(&b, g, &g->nodes[i], params, np, dtype, err)) {
            free(params);
            free(b.p);
            return -1;
        }
    }
    sb_printf(&b, "        if return_all:\n            return {");
    for (int64_t i = 0; i < g->n_nodes; i++) {
        if (i) sb_printf(&b, i % 8 == 0 ? ",\n                    " : ", ");
        sb_printf(&b, "%" PRId64 ": x%" PRId64, i, i);
    }
    sb_printf(&b, "}\n");
    if (g->n_outputs == 1) sb_printf(&b, "        return x%" PRId64 "\n", g->output_ids[0]);
    else {
        sb_printf(&b, "        return (");
        for (int i = 0; i < g->n_outputs; i++) sb_printf(&b, "%sx%" PRId64, i ? ", " : "", g->output_ids[i]);
        sb_printf(&b, ")\n");
    }

    /* 5. training skeleton */
    if (o->training_skeleton) {
        sb_printf(&b,
                  "\n\nif __name__ == \"__main__\":\n"
                  "    # Smoke test + a few SGD steps on random data with an MSE loss.\n"
                  "    torch.manual_seed(0)\n"
                  "    model = %s()\n"
                  "    x = torch.randn(%s.input_shape, dtype=DTYPE)\n"
                  "    with torch.no_grad():\n"
                  "        y = model(x)\n"
                  "    ys = y if isinstance(y, tuple) else (y,)\n"
                  "    for i, t in enumerate(ys):\n"
                  "        print(f\"output {i}: shape {tuple(t.shape)} dtype {t.dtype} finite {bool(torch.isfinite(t).all())}\")\n"
                  "    params = [q for q in model.parameters() if q.requires_grad]\n"
                  "    targets = [torch.randn_like(t) for t in ys]\n"
                  "    if not params:\n"
                  "        print(\"no trainable parameters: skipping the train step\")\n"
                  "    else:\n"
                  "        opt = torch.optim.SGD(params, lr=1e-2)\n"
                  "        for step in range(10):\n"
                  "            opt.zero_grad()\n"
                  "            y = model(x)\n"
                  "            ys = y if isinstance(y, tuple) else (y,)\n"
                  "            loss = sum(F.mse_loss(a, t) for a, t in zip(ys, targets))\n"
                  "            if not loss.requires_grad:\n"
                  "                print(\"the outputs do not depend on trainable parameters\")\n"
                  "                break\n"
                  "            loss.backward()\n"
                  "            opt.step()\n"
                  "            print(f\"step {step}: loss {loss.item():.9g}\")\n",
                  cls, cls);
    }
    free(params);
    if (b.oom) {
        free(b.p);
        return tl_erroom(err, "%s: out of memory while generating the module", gpath);
    }
    size_t w = fwrite(b.p, 1, b.n, out);
    free(b.p);
    if (w != b.n) return tl_errf(err, "write error while emitting the module");
    return 0;
}
