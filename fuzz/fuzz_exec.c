/* fuzz_exec.c - libFuzzer target for the part that computes: the planner, the executor and the
 * kernels, on small VALID graphs that nobody wrote by hand.
 *
 * The bytes drive a graph builder (in memory, no JSON): an input of random shape, then 1..8 ops
 * drawn from the whole executable op table (tl_ops.def, less the importer-only tuple ops), each
 * with random attributes built around its parent's shape, random constants (helper `const`
 * nodes for a second operand) and random parameters. tl_infer_shape decides: a candidate whose
 * shape inference fails is dropped, so every graph that reaches the planner is valid. Then:
 *
 *   1. memory plan vs no reuse: the planned session (buffer reuse, in-place, folding, fused
 *      batch norm) and a TL_SESSION_KEEP_ALL session of the same ISA must give BITWISE equal
 *      outputs (the plan may not change values, only where they live);
 *   2. 1 thread vs 2 threads: bitwise equal (docs/kernels.md "Threads and determinism": no
 *      reduction is split). The input is sometimes large enough (> 65536 elements) for the
 *      parallel paths to run;
 *   3. a second run of the same session: bitwise equal (no state leaks between runs);
 *   4. every node of the AVX2 and AVX-512 tables against the scalar table IN ISOLATION
 *      (tl_session_eval_node on the scalar session's parent values, TL_SESSION_EXACT plans), within
 *      the op's documented bound (tol_of below, from docs/kernels.md): bitwise for the exact ops,
 *      k ulp for the rounded elementwise functions, a summation bound for reductions and GEMMs.
 *      Comparing node by node keeps a kernel's rounding from being amplified downstream;
 *   5. float32 vs float64 node by node (check_f64_nodes): the scalar float32 kernel against the
 *      float64 kernel on the same parent values, within the bounds stated there.
 *
 * Any mismatch prints the node, op, ISA and values and aborts (libFuzzer keeps the input).
 * Inputs are mostly in [-4, 4]; one byte in the header enables special values (0, -0, +-inf,
 * NaN, subnormals, 1e30) in inputs, constants and weights. NaN compares equal to NaN (payload and
 * sign are not compared: x86 picks which NaN operand survives by operand order). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_import.h"
#include "tl_runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

enum { MAX_NODES = 24, MAX_OPS = 8, SMALL_NUMEL = 4096, BIG_NUMEL = 1 << 17 };

/* ------------------------------------------------------------------ byte reader */
typedef struct rd {
    const uint8_t *p;
    size_t n;
    bool specials;
} rd;

static unsigned u8(rd *r) {
    if (!r->n) return 0;
    r->n--;
    return *r->p++;
}
static unsigned pick(rd *r, unsigned n) { return n ? u8(r) % n : 0; }
static unsigned u16(rd *r) { return u8(r) | (u8(r) << 8); }

static float fval(rd *r) {
    unsigned k = u8(r);
    if (r->specials && k >= 240) {
        static const float sp[] = {0.0f,   -0.0f,           INFINITY, -INFINITY, NAN,   1e-40f, -3e-39f, 1e30f,
                                   -1e30f, 1.17549435e-38f, 88.8f,    -104.0f,   20.0f, 1.0f,   -1.0f,   0.5f};
        return sp[k & 15];
    }
    if (k < 16) return (float)((int)k - 8); /* small integers: ties, exact zeros */
    return ((float)u16(r) / 65535.0f) * 8.0f - 4.0f;
}

/* ------------------------------------------------------------------ graph builder */
typedef struct gb {
    tl_graph *g;
    rd *r;
    int64_t limit; /* largest numel of any node */
} gb;

static tl_node *add_node(gb *b, tl_op op, int np, const int64_t *parents) {
    tl_graph *g = b->g;
    if (g->n_nodes >= MAX_NODES) return NULL;
    tl_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->id = g->n_nodes;
    n->op = op;
    n->n_parents = np;
    if (np) {
        n->parents = malloc(sizeof(int64_t) * (size_t)np);
        memcpy(n->parents, parents, sizeof(int64_t) * (size_t)np);
    }
    for (int i = 0; i < TL_MAX_RANK; i++) n->a.dilation[i] = 1;
    n->a.groups = 1;
    n->a.in_dim = n->a.out_dim = -1;
    g->n_nodes++;
    return n;
}

static void drop_last(tl_graph *g) {
    tl_node *n = &g->nodes[--g->n_nodes];
    free(n->parents);
    for (int s = 0; s < TL_MAX_PARAMS; s++) tl_tensor_free(n->param[s]);
    memset(n, 0, sizeof *n);
}

static void fill(rd *r, tl_tensor *t, bool positive) {
    int64_t n = tl_shape_numel(&t->shape);
    for (int64_t i = 0; i < n; i++) {
        float v = fval(r);
        t->data[i] = positive ? fabsf(v) + 0.25f : v;
    }
}

/* a const node of shape s; returns its id or -1 */
static int64_t add_const(gb *b, const tl_shape *s) {
    tl_node *n = add_node(b, TL_OP_CONST, 0, NULL);
    if (!n) return -1;
    n->shape = *s;
    n->a.value_shape = *s;
    n->param[0] = tl_tensor_new(s);
    if (!n->param[0]) {
        drop_last(b->g);
        return -1;
    }
    fill(b->r, n->param[0], false);
    return n->id;
}

/* random node whose value is a tensor (every node here is) */
static int64_t any_node(gb *b) {
    int64_t n = b->g->n_nodes;
    /* prefer recent nodes: deeper graphs */
    unsigned k = u8(b->r);
    return k < 160 ? n - 1 - (int64_t)(k % (n < 3 ? n : 3)) : (int64_t)(k % n);
}

static tl_shape shp(int rank, const int64_t *d) { return tl_shape_make(rank, d); }

/* Fill the attributes of `n` (parent 0 = x) for op; may add helper const nodes BEFORE n, so it
 * is called before n is appended: it returns the parents to use. */
static int plan_op(gb *b, tl_op op, int64_t x, int64_t *par, tl_attrs *a, tl_shape *declared) {
    rd *r = b->r;
    const tl_shape xs = b->g->nodes[x].shape;
    par[0] = x;
    const tl_op_row *row = tl_op_info(op);
    if (row->elementwise_unary || op == TL_OP_DETACH) return 1;
    if (row->elementwise_binary || op == TL_OP_MSE_LOSS) {
        int64_t y = any_node(b);
        if (!tl_shape_eq(&b->g->nodes[y].shape, &xs) || pick(r, 3) == 0) y = add_const(b, &xs);
        if (y < 0) return -1;
        par[1] = y;
        if (pick(r, 2)) { /* either order */
            par[1] = x;
            par[0] = y;
        }
        if (pick(r, 8) == 0) par[1] = par[0]; /* x op x */
        return 2;
    }
    switch (op) {
    case TL_OP_SAFE_LOG: {
        tl_shape s0 = shp(0, NULL);
        int64_t e = add_const(b, &s0);
        if (e < 0) return -1;
        b->g->nodes[e].param[0]->data[0] = (float)pick(r, 4) * 0.25f * 1e-3f;
        par[1] = e;
        return 2;
    }
    case TL_OP_BROADCAST_TO: {
        a->from_shape = xs;
        tl_shape t = xs;
        for (int i = 0; i < t.rank; i++)
            if (t.dim[i] == 1) t.dim[i] = 1 + pick(r, 5);
        if (pick(r, 3) == 0 && t.rank < TL_MAX_RANK) { /* prepend an axis */
            memmove(&t.dim[1], &t.dim[0], sizeof(int64_t) * (size_t)t.rank);
            t.dim[0] = 1 + pick(r, 3);
            t.rank++;
        }
        a->to_shape = t;
        return 1;
    }
    case TL_OP_PERMUTE: {
        a->perm_n = xs.rank;
        for (int i = 0; i < xs.rank; i++) a->perm[i] = i;
        for (int i = xs.rank - 1; i > 0; i--) {
            int j = (int)pick(r, (unsigned)i + 1);
            int64_t t = a->perm[i];
            a->perm[i] = a->perm[j];
            a->perm[j] = t;
        }
        return 1;
    }
    case TL_OP_TRANSPOSE:
        a->axis1 = pick(r, (unsigned)xs.rank + 1);
        a->axis2 = pick(r, (unsigned)xs.rank + 1);
        return 1;
    case TL_OP_RESHAPE: {
        a->in_shape = xs;
        /* split numel into random factors */
        int64_t rest = tl_shape_numel(&xs);
        tl_shape o = shp(0, NULL);
        while (rest > 1 && o.rank < 5) {
            int64_t f = 2 + pick(r, 6);
            while (f > 1 && rest % f) f--;
            if (f <= 1 || pick(r, 4) == 0) f = rest;
            o.dim[o.rank++] = f;
            rest /= f;
        }
        if (o.rank == 0 || pick(r, 4) == 0) o.dim[o.rank++] = 1;
        if (rest != 1) o.dim[o.rank - 1] *= rest;
        a->out_shape = o;
        return 1;
    }
    case TL_OP_FLATTEN: a->value_shape = xs; return 1;
    case TL_OP_CONCAT: {
        if (xs.rank == 0) return -1;
        a->axis = pick(r, (unsigned)xs.rank);
        int k = 2 + (int)pick(r, 2);
        for (int i = 1; i < k; i++) {
            tl_shape s = xs;
            s.dim[a->axis] = 1 + pick(r, 3);
            int64_t c = add_const(b, &s);
            if (c < 0) return -1;
            par[i] = c;
        }
        return k;
    }
    case TL_OP_REDUCE_SUM:
    case TL_OP_REDUCE_MEAN: {
        a->axes_n = 0;
        for (int i = 0; i < xs.rank; i++)
            if (pick(r, 2)) a->axes[a->axes_n++] = i;
        a->keepdim = pick(r, 2);
        return 1;
    }
    case TL_OP_SUM: return 1;
    case TL_OP_MATMUL: {
        if (xs.rank == 0) return -1;
        int64_t k = xs.dim[xs.rank - 1];
        tl_shape s;
        unsigned form = pick(r, 4);
        if (form == 0) s = shp(1, (int64_t[]){k}); /* matrix @ vector */
        else if (form == 1 || xs.rank < 3) s = shp(2, (int64_t[]){k, 1 + pick(r, 9)});
        else { /* batched: the same leading dims (or 1) */ s = xs;
            s.dim[s.rank - 2] = k;
            s.dim[s.rank - 1] = 1 + pick(r, 9);
            if (pick(r, 2)) s.dim[0] = 1;
        }
        int64_t y = add_const(b, &s);
        if (y < 0) return -1;
        par[1] = y;
        if (xs.rank >= 2 && pick(r, 4) == 0) { /* the const on the left: [m, rows of x] */
            tl_shape l = shp(2, (int64_t[]){1 + pick(r, 7), xs.dim[xs.rank - 2]});
            b->g->nodes[y].shape = l;
            b->g->nodes[y].a.value_shape = l;
            tl_tensor_free(b->g->nodes[y].param[0]);
            b->g->nodes[y].param[0] = tl_tensor_new(&l);
            if (!b->g->nodes[y].param[0]) return -1;
            fill(r, b->g->nodes[y].param[0], false);
            par[0] = y;
            par[1] = x;
        }
        return 2;
    }
    case TL_OP_LINEAR:
        if (xs.rank == 0) return -1;
        a->in_dim = xs.dim[xs.rank - 1];
        a->out_dim = 1 + pick(r, 12);
        return 1;
    case TL_OP_CONV:
    case TL_OP_MAX_POOL:
    case TL_OP_AVG_POOL: {
        if (xs.rank < 2) return -1;
        int sr = 1 + (int)pick(r, xs.rank - 1 < 3 ? (unsigned)xs.rank - 1 : 3);
        a->spatial_rank = sr;
        int lead = xs.rank - sr;
        for (int i = 0; i < sr; i++) {
            int64_t in = xs.dim[lead + i];
            a->kernel[i] = 1 + pick(r, in < 4 ? (unsigned)in + 1 : 4);
            a->stride[i] = 1 + pick(r, 3);
            a->padding[i] = pick(r, (unsigned)a->kernel[i] / 2 + 1);
            a->padding_after[i] = a->padding[i];
            if (op == TL_OP_CONV) {
                if (pick(r, 4) == 0) a->padding_after[i] = pick(r, 3);
                if (pick(r, 4) == 0) a->dilation[i] = 2;
                a->input_spatial[i] = in;
            }
        }
        if (op == TL_OP_CONV) {
            a->channel_axis = lead - 1;
            int64_t c = xs.dim[lead - 1];
            a->in_channels = c;
            int64_t gs = 1;
            if (pick(r, 3) == 0) gs = c; /* depthwise */
            else if (c % 2 == 0 && pick(r, 2)) gs = 2;
            a->groups = gs;
            a->out_channels = gs * (1 + pick(r, 3));
        }
        return 1;
    }
    case TL_OP_BATCH_NORM_EVAL:
        if (xs.rank < 1) return -1;
        a->channel_axis = pick(r, (unsigned)xs.rank);
        if (xs.rank >= 2 && pick(r, 2)) a->channel_axis = 1;
        a->channels = xs.dim[a->channel_axis];
        a->eps = 1e-5;
        return 1;
    case TL_OP_SOFTMAX: a->axis = pick(r, (unsigned)xs.rank + 1); return 1;
    case TL_OP_LAYERNORM:
        a->axis = pick(r, (unsigned)xs.rank + 1);
        a->eps = pick(r, 2) ? 1e-5 : 1e-3;
        return 1;
    case TL_OP_RAND_UNIFORM:
        *declared = xs;
        a->seed = u8(r);
        return 0;
    case TL_OP_BERNOULLI_MASK: {
        tl_shape s0 = shp(0, NULL);
        int64_t k = add_const(b, &s0);
        if (k < 0) return -1;
        b->g->nodes[k].param[0]->data[0] = (float)pick(r, 6) * 0.25f - 0.125f;
        par[0] = k;
        *declared = xs;
        a->seed = u8(r);
        return 1;
    }
    default: return -1;
    }
}

/* the ops the builder draws from: every executable op but the source ops and the tuple ops the
 * importer lowers (multihead_attention, tuple_getitem: lowered before the runtime sees them) */
static tl_op OPS[TL_OP_COUNT];
static int n_ops;

static bool too_big(const tl_shape *s, int64_t limit) {
    int64_t n;
    return tl_shape_numel_checked(s, &n) || n > limit || n == 0;
}

static int try_add_op(gb *b) {
    tl_op op = OPS[pick(b->r, (unsigned)n_ops)];
    int64_t x = any_node(b);
    int64_t keep = b->g->n_nodes;
    int64_t par[4];
    tl_attrs a;
    memset(&a, 0, sizeof a);
    for (int i = 0; i < TL_MAX_RANK; i++) a.dilation[i] = 1;
    a.groups = 1;
    a.in_dim = a.out_dim = -1;
    tl_shape declared = shp(0, NULL);
    /* heavy ops only on small inputs (the fuzzer must stay fast) */
    bool heavy = op == TL_OP_CONV || op == TL_OP_MATMUL || op == TL_OP_LINEAR;
    if (heavy && tl_shape_numel(&b->g->nodes[x].shape) > 1024) return -1;
    int np = plan_op(b, op, x, par, &a, &declared);
    tl_node *n = np >= 0 ? add_node(b, op, np, par) : NULL;
    if (!n) {
        while (b->g->n_nodes > keep) drop_last(b->g);
        return -1;
    }
    n->a = a;
    n->shape = declared;
    tl_err err;
    tl_shape out;
    if (tl_infer_shape(b->g, n->id, &out, &err) || too_big(&out, heavy ? SMALL_NUMEL : b->limit)) {
        while (b->g->n_nodes > keep) drop_last(b->g);
        return -1;
    }
    n->shape = out;
    const tl_op_row *row = tl_op_info(op);
    for (int s = 0; s < row->n_params; s++) {
        tl_shape ps;
        if (tl_param_shape(n, s, &ps) || !(n->param[s] = tl_tensor_new(&ps))) {
            while (b->g->n_nodes > keep) drop_last(b->g);
            return -1;
        }
        fill(b->r, n->param[s], op == TL_OP_BATCH_NORM_EVAL && s == 3); /* var > 0 */
    }
    return 0;
}

static tl_graph *build(rd *r) {
    tl_graph *g = calloc(1, sizeof *g);
    g->nodes = calloc(MAX_NODES, sizeof(tl_node));
    g->path = strdup("fuzz.json");
    gb b = {g, r, SMALL_NUMEL};
    unsigned hdr = u8(r);
    r->specials = (hdr & 7) == 0;
    bool big = (hdr & 0x38) == 0x38; /* 1 in 8: an input past the parallel threshold */
    if (big) b.limit = BIG_NUMEL;
    tl_shape in = shp(0, NULL);
    in.rank = 1 + (int)pick(r, 4);
    for (int i = 0; i < in.rank; i++) in.dim[i] = 1 + pick(r, 6);
    if (big) in.dim[in.rank - 1] = 65536 / (tl_shape_numel(&in) / in.dim[in.rank - 1]) + 1 + pick(r, 64);
    tl_node *n0 = add_node(&b, TL_OP_INPUT, 0, NULL);
    n0->shape = in;
    g->input_id = 0;
    int want = 1 + (int)pick(r, MAX_OPS);
    for (int tries = 0, got = 0; got < want && tries < 3 * MAX_OPS && r->n; tries++)
        if (try_add_op(&b) == 0) got++;
    /* outputs: the last node, and sometimes another one */
    g->output_ids = malloc(2 * sizeof(int64_t));
    g->n_outputs = 1;
    g->output_ids[0] = g->n_nodes - 1;
    if (g->n_nodes > 2 && pick(r, 2)) {
        int64_t o = 1 + pick(r, (unsigned)g->n_nodes - 2);
        if (o != g->output_ids[0]) g->output_ids[g->n_outputs++] = o;
    }
    return g;
}

/* ------------------------------------------------------------------ comparisons */
static void fail(const char *what, const tl_graph *g, int64_t id, int64_t i, float a, float b) {
    fprintf(stderr, "fuzz_exec: %s: node[%lld] (%s) element %lld: %.9g vs %.9g\n", what, (long long)id,
            tl_op_tag(g->nodes[id].op), (long long)i, (double)a, (double)b);
    for (int64_t k = 0; k < g->n_nodes; k++) {
        const tl_node *n = &g->nodes[k];
        fprintf(stderr, "  node[%lld] %s %s parents", (long long)k, tl_op_tag(n->op), TL_SHAPE_STR(&n->shape));
        for (int p = 0; p < n->n_parents; p++) fprintf(stderr, " %lld", (long long)n->parents[p]);
        fprintf(stderr, "\n");
    }
    abort();
}

static bool same_bits(float a, float b) {
    if (isnan(a) && isnan(b)) return true;
    return memcmp(&a, &b, sizeof a) == 0;
}

static int64_t ordered(float f) { /* monotone map float -> integer: ULP distance is a difference */
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i < 0 ? (int64_t)INT32_MIN - i : i;
}

/* How an op's vector result may differ from the scalar table's on the same operands
 * (docs/kernels.md, "Bounds the test asserts", vector vs scalar column; reductions: "within
 * len * eps * sum|x|"). */
typedef struct tol {
    int ulp;    /* 0 with acc == 0: bitwise */
    double acc; /* > 0: |a - b| <= acc * eps * scale (scale from the operands, per node) */
} tol;

static tol tol_of(tl_op op) {
    switch (op) {
    case TL_OP_EXP:
    case TL_OP_LOG:
    case TL_OP_SIN:
    case TL_OP_COS: return (tol){2, 0};
    case TL_OP_TANH:
    case TL_OP_SIGMOID:
    case TL_OP_SOFTPLUS: return (tol){4, 0};
    /* log(softplus(x) + eps): softplus' 4 ulp, then log's 2, near t = 1 an absolute part */
    case TL_OP_SAFE_LOG: return (tol){8, 16};
    /* sums / dot products: lane partial sums, BLAS blocking, direct conv kernels */
    case TL_OP_REDUCE_SUM:
    case TL_OP_REDUCE_MEAN:
    case TL_OP_SUM:
    case TL_OP_MSE_LOSS:
    case TL_OP_MATMUL:
    case TL_OP_LINEAR:
    case TL_OP_CONV: return (tol){4, 4};
    /* exp and a float sum, then a division; mean/variance sums, rsqrt */
    case TL_OP_SOFTMAX: return (tol){8, 8};
    case TL_OP_LAYERNORM: return (tol){8, 64};
    default:
        return (tol){0, 0}; /* exact ops: bitwise (movement, abs/relu/sqrt/inv, binary, pools,
                                  * batch norm's channel_affine, random, const) */
    }
}

/* max |x| over the finite elements; adds n to *len and sum |x| to *sum */
static double maxabs(const float *x, int64_t n, int64_t *len, double *sum) {
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(x[i])) {
            double v = fabs((double)x[i]);
            if (v > m) m = v;
            *sum += v;
        }
    *len += n;
    return m;
}

static bool is_reduction(tl_op op) {
    return op == TL_OP_REDUCE_SUM || op == TL_OP_REDUCE_MEAN || op == TL_OP_SUM || op == TL_OP_MSE_LOSS;
}

/* Compare a node's result y with the reference x (vector vs scalar, float32 vs float64) within t:
 * |y - x| <= acc * 2^-23 * scale for the accumulating ops. scale: reductions, the documented bound len * sum|x| (docs/kernels.md: "within
 * len * eps * sum|x| of float64"; a sequential sum of 70k elements and a lane-partial one differ
 * by far more than a few ulp); GEMMs, conv, softmax, layernorm: (operand lengths) * max|operand| *
 * max|weight|. Loose, but an indexing or tail bug is an O(1) error and fails it. */
static void cmp_node_tol(const tl_graph *g, int64_t id, tol t, const float *x, const float *y, int64_t n,
                         double scale, const char *what) {
    const double eps = 1.0 / 8388608.0; /* 2^-23 */
    for (int64_t i = 0; i < n; i++) {
        float a = x[i], b = y[i];
        if (same_bits(a, b)) continue;
        if (t.ulp == 0 && t.acc == 0) {
            /* avg_pool: a NaN average may carry a different NaN sign/payload (handled above); -0 vs +0
             * is a real difference */
            fail(what, g, id, i, a, b);
        }
        if (isnan(a) != isnan(b)) {
            /* a sum of +inf and -inf terms is NaN in any order; a finite sum that overflows to inf in
             * one order only is within the bound (ordered() puts inf next to FLT_MAX) */
            if (t.acc == 0 || (!isinf(a) && !isinf(b))) fail(what, g, id, i, a, b);
            continue;
        }
        if (llabs(ordered(a) - ordered(b)) <= t.ulp) continue;
        if (t.acc > 0 && isfinite(a) && isfinite(b) && fabs((double)a - (double)b) <= t.acc * eps * scale) continue;
        if (t.acc > 0 && (isinf(a) || isinf(b))) continue; /* overflow in one order only */
        fail(what, g, id, i, a, b);
    }
}

static void cmp_bitwise(const char *what, const tl_graph *g, int64_t id, const float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!same_bits(x[i], y[i])) fail(what, g, id, i, x[i], y[i]);
}

/* 5. float32 vs float64, node by node: the scalar float32 kernel (the scalar session, on its own
 * parent values) against the float64 kernel (TL_SESSION_FLOAT64, tl_session_eval_node_f64) on the
 * same parent values widened (exact), rounded to float32. Bounds (docs/float64.md, docs/kernels.md):
 *   - bitwise: movement, relu/abs/neg-like, max/min, max pooling, and add/sub/mul/div/sqrt/inv
 *     (one IEEE operation on floats; done in double and rounded to float it is the same, since
 *     double has more than 2 x 24 + 2 bits);
 *   - tol_of's ulp for the transcendental functions (the float32 kernel and libm's double one
 *     rounded differ by its documented ulp), and for the sums its accumulation bound;
 *   - avg pooling, batch norm (a few float operations in sequence): 4 ulp plus the sum bound;
 *   - softmax: outputs in [0, 1], the sum's relative error, so the scale is the row length.
 * Not compared: the random ops (float32 rounds the draw first, so a mask may flip where the draw
 * is within an ulp of p), layer norm (ill-conditioned where a row's variance is near 0 and eps
 * tiny: an O(1) float32 error that is not a bug; test_float64.py checks it against the oracle),
 * graphs with the special values (an intermediate that overflows in float32 only turns a finite
 * double into inf or NaN), and nodes whose operands are near float32's overflow. */
static bool f64_compared(tl_op op) {
    return op != TL_OP_RAND_UNIFORM && op != TL_OP_BERNOULLI_MASK && op != TL_OP_LAYERNORM;
}

static tol f64_tol_of(tl_op op) {
    if (op == TL_OP_AVG_POOL || op == TL_OP_BATCH_NORM_EVAL) return (tol){4, 4};
    return tol_of(op);
}

static void check_f64_nodes(tl_model *m, const tl_graph *g, const tl_shape *in, tl_session *ss) {
    tl_err err;
    tl_session *s = NULL;
    if (tl_session_new(m, in, TL_SESSION_FLOAT64, &s, &err)) {
        if (err.msg[0] == 0 || strchr(err.msg, '\n')) abort(); /* refused: one typed line only */
        return;
    }
    for (int64_t id = 1; id < g->n_nodes; id++) {
        const tl_node *n = &g->nodes[id];
        if (n->op == TL_OP_CONST || !f64_compared(n->op) || n->n_parents > 8) continue;
        tl_shape ns;
        const float *ref = tl_session_node_value(ss, id, &ns, &err);
        if (!ref) continue;
        const double *pv[8] = {0};
        double *own[8] = {0};
        int64_t len = 0;
        double mx = 1e-30, sum = 0, w = 1, wsum = 0;
        for (int p = 0; p < n->n_parents; p++) {
            tl_shape ps;
            const float *v = tl_session_node_value(ss, n->parents[p], &ps, &err);
            if (!v) abort();
            int64_t pn = tl_shape_numel(&ps);
            own[p] = malloc(sizeof(double) * (size_t)(pn ? pn : 1));
            for (int64_t i = 0; i < pn; i++) own[p][i] = (double)v[i];
            pv[p] = own[p];
            double a = maxabs(v, pn, &len, &sum);
            if (a > mx) mx = a;
        }
        for (int k = 0; k < TL_MAX_PARAMS; k++)
            if (n->param[k]) {
                double a = maxabs(n->param[k]->data, tl_shape_numel(&n->param[k]->shape), &len, &wsum);
                if (a > w) w = a;
            }
        int64_t numel = tl_shape_numel(&ns);
        double *out = malloc(sizeof(double) * (size_t)(numel ? numel : 1));
        float *outf = malloc(sizeof(float) * (size_t)(numel ? numel : 1));
        if (tl_session_eval_node_f64(s, id, pv, out, &err)) {
            fprintf(stderr, "fuzz_exec: eval_node_f64[%lld]: %s\n", (long long)id, err.msg);
            abort();
        }
        for (int64_t i = 0; i < numel; i++) outf[i] = (float)out[i];
        double scale = n->op == TL_OP_MSE_LOSS                             ? (double)len * (double)len * mx * mx
            : is_reduction(n->op)                                          ? (double)len * (sum + 1e-30)
            : n->op == TL_OP_SOFTMAX || n->op == TL_OP_HARD_MASKED_SOFTMAX ? (double)(len + 4)
                                                                           : (double)(len + 4) * mx * w;
        bool near_overflow = mx * mx > 1e37 || mx * w * (double)(len + 4) > 1e37 || scale > 1e37;
        if (!near_overflow) cmp_node_tol(g, id, f64_tol_of(n->op), ref, outf, numel, scale, "float32 vs float64");
        free(out);
        free(outf);
        for (int p = 0; p < n->n_parents; p++) free(own[p]);
    }
    tl_session_free(s);
}

/* ------------------------------------------------------------------ the target */
static tl_session *plan(tl_model *m, const tl_shape *in, int flags, tl_isa isa) {
    tl_kernels_set_isa(isa);
    tl_session *s = NULL;
    tl_err err;
    if (tl_session_new(m, in, flags, &s, &err)) {
        /* a valid graph that the planner refuses: only a typed, one-line error is acceptable */
        if (err.msg[0] == 0 || strchr(err.msg, '\n')) abort();
        return NULL;
    }
    return s;
}

static void run(tl_session *s, const float *x) {
    tl_err err;
    if (tl_session_run(s, x, &err)) {
        fprintf(stderr, "fuzz_exec: run failed: %s\n", err.msg);
        abort();
    }
}

static void cmp_outputs(const char *what, const tl_graph *g, tl_session *a, tl_session *b) {
    for (int o = 0; o < tl_session_n_outputs(a); o++) {
        tl_shape sa, sb;
        const float *ya = tl_session_output(a, o, &sa), *yb = tl_session_output(b, o, &sb);
        if (!tl_shape_eq(&sa, &sb)) fail(what, g, g->output_ids[o], -1, 0, 0);
        cmp_bitwise(what, g, g->output_ids[o], ya, yb, tl_shape_numel(&sa));
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    for (int op = 0; op < TL_OP_COUNT; op++) {
        const tl_op_row *row = tl_op_info((tl_op)op);
        if (!row->executable || op == TL_OP_INPUT || op == TL_OP_CONST || op == TL_OP_TUPLE_GETITEM ||
            op == TL_OP_MULTIHEAD_ATTENTION)
            continue;
        OPS[n_ops++] = (tl_op)op;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rd r = {data, size, false};
    tl_graph *g = build(&r);
    tl_err err;
    if (tl_graph_validate(g, &err)) {
        /* the builder made a graph the validator rejects: a builder or inference bug */
        fprintf(stderr, "fuzz_exec: built graph fails validation: %s\n", err.msg);
        abort();
    }
    tl_model *m = NULL;
    if (tl_model_from_graph(g, &m, &err)) abort();
    const tl_shape in = g->nodes[0].shape;
    int64_t nin = tl_shape_numel(&in);
    float *x = malloc(sizeof(float) * (size_t)nin);
    for (int64_t i = 0; i < nin; i++) x[i] = fval(&r);

    tl_isa best = tl_kernels_best_isa();
    tl_set_threads(1);
    /* 1 + 3: planned vs keep-all, run twice */
    tl_session *sp = plan(m, &in, 0, best), *sk = plan(m, &in, TL_SESSION_KEEP_ALL, best);
    if (sp && sk) {
        run(sp, x);
        run(sk, x);
        cmp_outputs("planned vs keep-all", g, sp, sk);
        run(sk, x);
        cmp_outputs("second run", g, sp, sk);
        /* 2: 2 threads on the planned session's twin */
        tl_set_threads(2);
        tl_session *s2 = plan(m, &in, 0, best);
        if (s2) {
            run(s2, x);
            cmp_outputs("1 vs 2 threads", g, sp, s2);
            tl_session_free(s2);
        }
        tl_set_threads(1);
    }
    tl_session_free(sp);
    tl_session_free(sk);

    /* 4: node by node, each vector table against the scalar one on the scalar's parent values */
    tl_session *ss = plan(m, &in, TL_SESSION_KEEP_ALL | TL_SESSION_EXACT, TL_ISA_SCALAR);
    if (ss) {
        run(ss, x);
        for (int isa = TL_ISA_AVX2; isa < TL_ISA_COUNT; isa++) {
            if (!tl_isa_supported((tl_isa)isa)) continue;
            tl_session *sv = plan(m, &in, TL_SESSION_KEEP_ALL | TL_SESSION_EXACT, (tl_isa)isa);
            if (!sv) continue;
            for (int64_t id = 1; id < g->n_nodes; id++) {
                const tl_node *n = &g->nodes[id];
                tl_shape ns;
                const float *ref = tl_session_node_value(ss, id, &ns, &err);
                if (!ref) continue;
                const float *pv[8];
                int64_t len = 0;
                double mx = 1e-30, sum = 0, wsum = 0;
                for (int p = 0; p < n->n_parents && p < 8; p++) {
                    tl_shape ps;
                    pv[p] = tl_session_node_value(ss, n->parents[p], &ps, &err);
                    if (!pv[p]) abort();
                    double v = maxabs(pv[p], tl_shape_numel(&ps), &len, &sum);
                    if (v > mx) mx = v;
                }
                double w = 1;
                for (int s = 0; s < TL_MAX_PARAMS; s++)
                    if (n->param[s] && n->op != TL_OP_CONST) {
                        double v = maxabs(n->param[s]->data, tl_shape_numel(&n->param[s]->shape), &len, &wsum);
                        if (v > w) w = v;
                    }
                int64_t numel = tl_shape_numel(&ns);
                float *out = malloc(sizeof(float) * (size_t)(numel ? numel : 1));
                if (tl_session_eval_node(sv, id, pv, out, &err)) {
                    fprintf(stderr, "fuzz_exec: eval_node[%lld]: %s\n", (long long)id, err.msg);
                    abort();
                }
                double scale = n->op == TL_OP_MSE_LOSS ? (double)len * (double)len * mx * mx
                    : is_reduction(n->op)              ? (double)len * (sum + 1e-30)
                                                       : (double)(len + 4) * mx * w;
                char what[64];
                snprintf(what, sizeof what, "%s vs scalar", tl_isa_name((tl_isa)isa));
                cmp_node_tol(g, id, tol_of(n->op), ref, out, numel, scale, what);
                free(out);
            }
            tl_session_free(sv);
        }
        if (!r.specials) check_f64_nodes(m, g, &in, ss);
        tl_session_free(ss);
    }
    tl_kernels_set_isa(best);
    free(x);
    tl_model_free(m);
    return 0;
}
