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
#include "tl_family.h"
#include "tl_strbuf.h"

/* The module text is built in one tl_strbuf (ir/tl_strbuf.h). */
typedef tl_strbuf sb;
#define sb_printf tl_sb_printf

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
    else if (f == 0.0f) sb_printf(b, signbit(f) ? "-0.0" : "0.0"); /* "-0" would be the int 0 */
    else sb_printf(b, "%.9g", (double)f);
}

static bool is_py_identifier(const char *s) {
    static const char *const KW[] = {"False",  "None",   "True",    "and",      "as",       "assert", "async",
                                     "await",  "break",  "class",   "continue", "def",      "del",    "elif",
                                     "else",   "except", "finally", "for",      "from",     "global", "if",
                                     "import", "in",     "is",      "lambda",   "nonlocal", "not",    "or",
                                     "pass",   "raise",  "return",  "try",      "while",    "with",   "yield"};
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
    tl_shape shape; /* full shape (params.bin) */
    const tl_tensor *t;
    bool parameter; /* nn.Parameter (else buffer) */
    int compress_k; /* const compressed: number of leading axes dropped (0 = none) */
    bool literal;   /* written as a literal even when the others load params.bin: a payload of a
                     * node the tuple lowering generated (params.bin has no name for it) */
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

static int collect_param(const tl_graph *g, const char *gpath, const tl_node *n, int slot, const tl_emit_opts *o,
                         pinfo *pi, tl_err *err) {
    memset(pi, 0, sizeof *pi);
    /* state_dict names are params.bin's (tl_emit_param_name); a node the tuple lowering generated
     * is written as a literal (its payload may have come inline, not from params.bin) */
    pi->literal = g->renumbered && n->wire_id < 0;
    tl_emit_param_name(g, n, slot, pi->name, sizeof pi->name);
    if (tl_param_shape(n, slot, &pi->shape))
        return tl_errf(err, "%s: node[%" PRId64 "]: cannot derive the shape of parameter %s", gpath, n->id, pi->name);
    const tl_tensor *t = n->param[slot];
    if (!t || !t->data)
        return tl_errf(err, "%s: node[%" PRId64 "]: missing parameter %s (no params.bin entry and no inline payload)",
                       gpath, n->id, pi->name);
    if (!tl_shape_eq(&t->shape, &pi->shape))
        return tl_errf(err, "%s: node[%" PRId64 "]: parameter %s has shape %s, expected %s", gpath, n->id, pi->name,
                       SSTR(&t->shape), SSTR(&pi->shape));
    pi->t = t;
    /* weights are nn.Parameters; consts and running statistics buffers (the table says which) */
    pi->parameter = !tl_op_info(n->op)->params[slot].buffer;
    if (n->op == TL_OP_CONST) { /* the const options of tlemit */
        pi->parameter = o->learnable_consts;
        if (o->compress_broadcast) {
            pi->compress_k = const_repeat_axes(t);
            if (pi->compress_k > 0) pi->parameter = true;
        }
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
    sb vb = TL_STRBUF_INIT;
    if (o->weights == TL_WEIGHTS_INLINE || pi->literal) {
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
/* One line per node: `xN = <expression>  # node N: tag`; the expression is the op family's
 * (ops/<family>.c, tl_family.emit). */
static int emit_node(sb *b, const tl_graph *g, const tl_node *n, const pinfo *params, int n_params,
                     const tl_emit_opts *o, const char *dtype, bool batched, tl_err *err) {
    const tl_op_row *row = tl_op_info(n->op);
    tl_emit_ctx c;
    memset(&c, 0, sizeof c);
    c.g = g;
    c.n = n;
    c.o = o;
    c.dtype = dtype;
    c.b = b;
    c.batched = batched;
    for (int k = 0; k < 2 && k < n->n_parents; k++)
        snprintf(c.p[k], sizeof c.p[k], "x%lld", (long long)n->parents[k]);
    if (n->op == TL_OP_CONST)
        for (int i = 0; i < n_params; i++)
            if (params[i].t == n->param[0]) c.const_compress_k = params[i].compress_k;
    sb_printf(b, "        x%lld = ", (long long)n->id);
    if (!row->fam || !row->fam->emit)
        return tl_errf(err, "%s: node[%lld]: unsupported tag for the PyTorch emitter: %s", g->path, (long long)n->id,
                       row->tag);
    if (row->fam->emit(&c, err)) return tl_err_prefix(err, g->path ? g->path : "graph");
    sb_printf(b, "  # node %lld: %s\n", (long long)n->id, row->tag);
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
    if (!*dtype || strpbrk(dtype, "\n\r#"))
        return tl_errf(err, "--dtype: expected a one-line torch dtype expression");

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
            if (collect_param(g, gpath, n, s, o, &params[np], err)) {
                free(params);
                return -1;
            }
            np++;
        }
    }

    sb b = TL_STRBUF_INIT;
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
    sb_printf(&b,
              ".\n"
              "forward(x) returns the outputs (a tuple if there are several); forward(x, return_all=True)\n"
              "returns {node_id: tensor} for every node. state_dict() names match params.bin.\n"
              "Max pooling ignores padded cells (TorchLean spec, as PyTorch); average pooling counts them as zeros.\n"
              "\"\"\"\n");
    bool external = o->weights == TL_WEIGHTS_EXTERNAL && np > 0;
    const char *ppath = o->params_path ? o->params_path : "params.bin";
    bool relative = ppath[0] != '/';
    if (external && relative) sb_printf(&b, "import os\n");
    sb_printf(&b, "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n");
    if (external) sb_printf(&b, "from safetensors.torch import load_file\n");
    sb_printf(&b, "\nDTYPE = %s\n", dtype);
    if (external) {
        /* a relative params path is the module file's neighbour, wherever the module is run from */
        if (relative) sb_printf(&b, "PARAMS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), ");
        else sb_printf(&b, "PARAMS_PATH = ");
        sb_pystr(&b, ppath);
        sb_printf(&b, relative ? ")\n" : "\n");
    }
    sb_printf(&b, "nan = float(\"nan\")\ninf = float(\"inf\")\n\n\n");
    bool any_literal = o->weights == TL_WEIGHTS_INLINE && np > 0;
    for (int i = 0; i < np; i++) any_literal |= params[i].literal;
    if (any_literal)
        sb_printf(&b,
                  "def _t(values, shape):\n"
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

    /* 4. forward. Nodes whose axis 0 is the batch axis (when the graph re-batches: the runtime's
     * batch rule at another batch accepts it) get -1 there in the shapes the module writes, so
     * the module runs at any batch tlrun runs. */
    bool *bc = NULL;
    {
        tl_shape other = *in_shape;
        tl_shape *tmp = malloc(sizeof *tmp * (size_t)(g->n_nodes ? g->n_nodes : 1));
        bc = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *bc);
        tl_err berr = {0};
        if (other.rank > 0) other.dim[0] += 1;
        if (!tmp || !bc || other.rank == 0 || tl_batch_shapes(g, &other, tmp, bc, NULL, &berr)) {
            free(bc);
            bc = NULL; /* fixed batch: literal shapes */
        }
        free(tmp);
    }
    sb_printf(&b, "    def forward(self, x, return_all=False):\n");
    for (int64_t i = 0; i < g->n_nodes; i++) {
        if (emit_node(&b, g, &g->nodes[i], params, np, o, dtype, bc && bc[i], err)) {
            free(params);
            free(bc);
            free(b.p);
            return -1;
        }
    }
    free(bc);
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
                  "        print(f\"output {i}: shape {tuple(t.shape)} dtype {t.dtype} finite "
                  "{bool(torch.isfinite(t).all())}\")\n"
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
