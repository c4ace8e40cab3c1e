/* test_ir.c - shape inference (every op, good and bad), parameter slots, graph validation.
 * Expected shapes of matmul/conv/pool/expand/sum were checked against PyTorch 2.13
 * (torch.matmul, F.conv1d/2d, F.max_pool2d/avg_pool2d, Tensor.expand, Tensor.sum). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_family.h"
#include "tl_graph.h"

#include "tl_check.h"

/* ---- tiny graph builder ---- */
static tl_graph *G;

static tl_shape mk(const int64_t *d, int r) { return tl_shape_make(r, d); }
#define SH(...) mk((int64_t[]){__VA_ARGS__}, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define S0 mk(NULL, 0)

static bool shape_is(const tl_shape *s, tl_shape want) { return tl_shape_eq(s, &want); }
static tl_tensor *tnew(tl_shape s) { return tl_tensor_new(&s); }

static void g_new(void) {
    tl_graph_free(G);
    G = calloc(1, sizeof *G);
    G->path = strdup("t.json");
    G->nodes = calloc(64, sizeof *G->nodes);
    G->output_ids = calloc(4, sizeof *G->output_ids);
}

static tl_node *add_node(tl_op op, tl_shape shape, int np, ...) {
    tl_node *n = &G->nodes[G->n_nodes];
    n->id = G->n_nodes++;
    n->op = op;
    n->shape = shape;
    n->a.groups = 1;
    for (int i = 0; i < TL_MAX_RANK; i++) n->a.dilation[i] = 1;
    n->a.in_dim = n->a.out_dim = -1;
    n->n_parents = np;
    n->parents = calloc(np > 0 ? (size_t)np : 1, sizeof(int64_t));
    va_list ap;
    va_start(ap, np);
    for (int i = 0; i < np; i++) n->parents[i] = va_arg(ap, int64_t);
    va_end(ap);
    return n;
}
#define P(x) ((int64_t)(x))

static char got[TL_ERR_MAX + 16];
/* infer node id: returns shape string or "ERR: msg" */
static const char *inf(int64_t id) {
    tl_err e = {0};
    tl_shape s;
    if (tl_infer_shape(G, id, &s, &e)) snprintf(got, sizeof got, "ERR: %s", e.msg);
    else tl_shape_str(&s, got, sizeof got);
    return got;
}
#define EXPECT_INF(id, want) \
    do { \
        const char *g_ = inf(id); \
        if (strcmp(g_, want) == 0) passed++; \
        else { \
            failed++; \
            fprintf(stderr, "%s:%d: infer node %d: got '%s', want '%s'\n", __FILE__, __LINE__, (int)(id), g_, want); \
        } \
    } while (0)

static const char *val(void) {
    tl_err e = {0};
    if (tl_graph_validate(G, &e)) return strcpy(got, e.msg);
    return "OK";
}
#define EXPECT_VAL(want) \
    do { \
        const char *g_ = val(); \
        if (strcmp(g_, want) == 0) passed++; \
        else { \
            failed++; \
            fprintf(stderr, "%s:%d: validate: got '%s', want '%s'\n", __FILE__, __LINE__, g_, want); \
        } \
    } while (0)

/* one-op graph helpers: input x (id 0), optional second input-like const (id 1) */
static tl_node *unary(tl_op op, tl_shape in) {
    g_new();
    add_node(TL_OP_INPUT, in, 0);
    return add_node(op, in, 1, P(0));
}
static tl_node *binary(tl_op op, tl_shape a, tl_shape b) {
    g_new();
    add_node(TL_OP_INPUT, a, 0);
    tl_node *c = add_node(TL_OP_CONST, b, 0);
    c->a.value_shape = b;
    return add_node(op, a, 2, P(0), P(1));
}

static void test_elementwise(void) {
    tl_op un[] = {TL_OP_DETACH,  TL_OP_ABS, TL_OP_SQRT, TL_OP_INV, TL_OP_RELU, TL_OP_TANH,
                  TL_OP_SIGMOID, TL_OP_EXP, TL_OP_LOG,  TL_OP_SIN, TL_OP_COS,  TL_OP_SOFTPLUS};
    for (size_t i = 0; i < sizeof un / sizeof un[0]; i++) {
        unary(un[i], SH(2, 3, 4));
        EXPECT_INF(1, "[2, 3, 4]");
    }
    tl_op bin[] = {TL_OP_ADD, TL_OP_SUB, TL_OP_MUL_ELEM, TL_OP_MAX_ELEM, TL_OP_MIN_ELEM};
    for (size_t i = 0; i < sizeof bin / sizeof bin[0]; i++) {
        binary(bin[i], SH(1, 4), SH(1, 4));
        EXPECT_INF(2, "[1, 4]");
    }
    binary(TL_OP_ADD, SH(1, 4), SH(1, 3));
    EXPECT_INF(2, "ERR: node[2]: add: shape mismatch: [1, 4] vs [1, 3]");
    binary(TL_OP_MIN_ELEM, SH(4), S0);
    EXPECT_INF(2, "ERR: node[2]: min_elem: shape mismatch: [4] vs []");
    binary(TL_OP_SAFE_LOG, SH(2, 2), S0);
    EXPECT_INF(2, "[2, 2]");
    binary(TL_OP_SAFE_LOG, SH(2, 2), SH(1));
    EXPECT_INF(2, "ERR: node[2]: safe_log: epsilon (parent 1) must be a scalar, got [1]");
    binary(TL_OP_MSE_LOSS, SH(3, 2), SH(3, 2));
    EXPECT_INF(2, "[]");
    binary(TL_OP_MSE_LOSS, SH(3, 2), SH(2, 3));
    EXPECT_INF(2, "ERR: node[2]: mse_loss: yhat/target shape mismatch: [3, 2] vs [2, 3]");
    unary(TL_OP_SUM, SH(3, 2));
    EXPECT_INF(1, "[]");
}

static void test_sources(void) {
    g_new();
    add_node(TL_OP_INPUT, SH(2, 5), 0);
    tl_node *c = add_node(TL_OP_CONST, SH(7), 0);
    c->a.value_shape = SH(3, 3);
    EXPECT_INF(0, "[2, 5]");
    EXPECT_INF(1, "[3, 3]");
    add_node(TL_OP_RAND_UNIFORM, SH(4, 4), 0);
    EXPECT_INF(2, "[4, 4]");
    tl_node *k = add_node(TL_OP_CONST, S0, 0);
    k->a.value_shape = S0;
    add_node(TL_OP_BERNOULLI_MASK, SH(2, 5), 1, P(3));
    EXPECT_INF(4, "[2, 5]");
    add_node(TL_OP_BERNOULLI_MASK, SH(2, 5), 1, P(0));
    EXPECT_INF(5, "ERR: node[5]: bernoulli_mask: expected a scalar keep-probability parent, got [2, 5]");
}

static void test_movement(void) {
    tl_node *n;
    /* broadcast_to (torch.expand) */
    n = unary(TL_OP_BROADCAST_TO, SH(1, 3));
    n->a.from_shape = SH(1, 3);
    n->a.to_shape = SH(4, 3);
    EXPECT_INF(1, "[4, 3]");
    n = unary(TL_OP_BROADCAST_TO, SH(3));
    n->a.from_shape = SH(3);
    n->a.to_shape = SH(2, 3);
    EXPECT_INF(1, "[2, 3]");
    n = unary(TL_OP_BROADCAST_TO, S0);
    n->a.from_shape = S0;
    n->a.to_shape = SH(2, 2);
    EXPECT_INF(1, "[2, 2]");
    n = unary(TL_OP_BROADCAST_TO, SH(2));
    n->a.from_shape = SH(2);
    n->a.to_shape = SH(3);
    EXPECT_INF(1, "ERR: node[1].to_shape: invalid broadcast from [2] to [3]");
    n = unary(TL_OP_BROADCAST_TO, SH(2, 3));
    n->a.from_shape = SH(2, 3);
    n->a.to_shape = SH(3);
    EXPECT_INF(1, "ERR: node[1].to_shape: invalid broadcast from [2, 3] to [3]");
    n = unary(TL_OP_BROADCAST_TO, SH(2, 3));
    n->a.from_shape = SH(1, 3);
    n->a.to_shape = SH(2, 3);
    EXPECT_INF(1, "ERR: node[1].from_shape: parent shape mismatch: expected [1, 3], got [2, 3]");

    /* permute */
    n = unary(TL_OP_PERMUTE, SH(2, 3, 4));
    n->a.perm_n = 3;
    n->a.perm[0] = 2, n->a.perm[1] = 0, n->a.perm[2] = 1;
    EXPECT_INF(1, "[4, 2, 3]");
    n->a.perm[2] = 0;
    EXPECT_INF(1, "ERR: node[1].perm: invalid permutation [2, 0, 0] for shape [2, 3, 4]");
    n->a.perm_n = 2;
    n->a.perm[0] = 1, n->a.perm[1] = 0;
    EXPECT_INF(1, "ERR: node[1].perm: invalid permutation [1, 0] for shape [2, 3, 4]");
    n->a.perm_n = 3;
    n->a.perm[0] = 0, n->a.perm[1] = 1, n->a.perm[2] = 3;
    EXPECT_INF(1, "ERR: node[1].perm: invalid permutation [0, 1, 3] for shape [2, 3, 4]");

    /* transpose */
    n = unary(TL_OP_TRANSPOSE, SH(2, 3, 4));
    n->a.axis1 = 0, n->a.axis2 = 2;
    EXPECT_INF(1, "[4, 3, 2]");
    n->a.axis2 = 3;
    EXPECT_INF(1, "ERR: node[1].axis2: axis 3 out of range for rank 3");
    n->a.axis1 = 5;
    EXPECT_INF(1, "ERR: node[1].axis1: axis 5 out of range for rank 3");

    /* reshape */
    n = unary(TL_OP_RESHAPE, SH(2, 6));
    n->a.in_shape = SH(2, 6);
    n->a.out_shape = SH(3, 2, 2);
    EXPECT_INF(1, "[3, 2, 2]");
    n->a.out_shape = SH(5);
    EXPECT_INF(1, "ERR: node[1].out_shape: numel mismatch: 12 vs 5 ([2, 6] -> [5])");
    n->a.in_shape = SH(12);
    EXPECT_INF(1, "ERR: node[1].in_shape: parent shape mismatch: expected [12], got [2, 6]");

    /* flatten */
    n = unary(TL_OP_FLATTEN, SH(2, 3, 4));
    n->a.value_shape = SH(2, 3, 4);
    EXPECT_INF(1, "[24]");
    n->a.value_shape = SH(2, 12);
    EXPECT_INF(1, "ERR: node[1].value_shape: parent shape mismatch: expected [2, 12], got [2, 3, 4]");

    /* concat */
    g_new();
    add_node(TL_OP_INPUT, SH(2, 3), 0);
    tl_node *c1 = add_node(TL_OP_CONST, SH(2, 5), 0);
    c1->a.value_shape = SH(2, 5);
    tl_node *c2 = add_node(TL_OP_CONST, SH(2, 1), 0);
    c2->a.value_shape = SH(2, 1);
    n = add_node(TL_OP_CONCAT, SH(2, 9), 3, P(0), P(1), P(2));
    n->a.axis = 1;
    EXPECT_INF(3, "[2, 9]");
    n->a.axis = 0;
    EXPECT_INF(3, "ERR: node[3]: concat: non-axis dim mismatch at axis 1: expected 3, got 5 (parent 1)");
    n->a.axis = 2;
    EXPECT_INF(3, "ERR: node[3].axis: invalid axis 2 for rank 2");
    c2->a.value_shape = c2->shape = SH(2, 1, 1);
    n->a.axis = 1;
    EXPECT_INF(3, "ERR: node[3]: concat: rank mismatch: parent 2 has shape [2, 1, 1], parent 0 has [2, 3]");
    /* many parents (beyond the on-stack buffer) */
    g_new();
    add_node(TL_OP_INPUT, SH(1, 2), 0);
    tl_node *big = add_node(TL_OP_CONCAT, SH(40, 2), 0);
    big->n_parents = 40;
    free(big->parents);
    big->parents = calloc(40, sizeof(int64_t));
    EXPECT_INF(1, "[40, 2]");
}

static void test_reduce(void) {
    tl_node *n = unary(TL_OP_REDUCE_SUM, SH(2, 3, 4));
    n->a.axes_n = 2;
    n->a.axes[0] = 0, n->a.axes[1] = 2;
    EXPECT_INF(1, "[3]");
    n->a.keepdim = true;
    EXPECT_INF(1, "[1, 3, 1]");
    n->op = TL_OP_REDUCE_MEAN;
    n->a.keepdim = false;
    n->a.axes[1] = 0;
    EXPECT_INF(1, "ERR: node[1].axes: duplicate axis 0 in [0, 0]");
    n->a.axes[1] = 3;
    EXPECT_INF(1, "ERR: node[1].axes: axis 3 out of range for rank 3");
    n->a.axes_n = 0;
    EXPECT_INF(1, "[2, 3, 4]"); /* TorchLean: no axes, no reduction */
    n = unary(TL_OP_REDUCE_SUM, SH(2, 0, 4));
    n->a.axes_n = 1;
    n->a.axes[0] = 1;
    EXPECT_INF(1, "ERR: node[1].axes: empty reduction axis 1 for shape [2, 0, 4]");
    n->a.axes[0] = 2;
    EXPECT_INF(1, "[2, 0]");
}

static void mm(tl_shape a, tl_shape b, const char *want, int line) {
    binary(TL_OP_MATMUL, a, b);
    const char *g_ = inf(2);
    if (!strcmp(g_, want)) passed++;
    else {
        failed++;
        fprintf(stderr, "%s:%d: matmul: got '%s', want '%s'\n", __FILE__, line, g_, want);
    }
}

static void test_matmul(void) {
    mm(SH(2, 3), SH(3, 4), "[2, 4]", __LINE__);
    mm(SH(3), SH(3), "[]", __LINE__);
    mm(SH(3), SH(3, 4), "[4]", __LINE__);
    mm(SH(2, 3), SH(3), "[2]", __LINE__);
    mm(SH(5, 2, 3), SH(3, 4), "[5, 2, 4]", __LINE__);
    mm(SH(2, 3), SH(5, 3, 4), "[5, 2, 4]", __LINE__);
    mm(SH(5, 1, 2, 3), SH(4, 3, 7), "[5, 4, 2, 7]", __LINE__);
    mm(SH(3), SH(5, 3, 4), "[5, 4]", __LINE__);
    mm(SH(5, 2, 3), SH(3), "[5, 2]", __LINE__);
    mm(SH(0, 2, 3), SH(1, 3, 4), "[0, 2, 4]", __LINE__);
    mm(SH(2, 2, 3), SH(3, 3, 4),
       "ERR: node[2]: matmul: incompatible batch dimensions 2 and 3 ([2, 2, 3] @ [3, 3, 4])", __LINE__);
    mm(SH(2, 3), SH(4, 5), "ERR: node[2]: matmul: inner dims mismatch: 3 vs 4 ([2, 3] @ [4, 5])", __LINE__);
    mm(SH(3), SH(2), "ERR: node[2]: matmul: inner dims mismatch: 3 vs 2 ([3] @ [2])", __LINE__);
    mm(S0, SH(2), "ERR: node[2]: matmul: expected non-scalar inputs, got [] and [2]", __LINE__);
}

static void test_linear(void) {
    tl_node *n = unary(TL_OP_LINEAR, SH(2, 5, 4));
    n->a.in_dim = 4, n->a.out_dim = 3;
    EXPECT_INF(1, "[2, 5, 3]");
    n->a.in_dim = 5;
    EXPECT_INF(1, "ERR: node[1].in_dim: input last dimension is 4 (input [2, 5, 4]), but in_dim is 5");
    n->a.in_dim = -1;
    EXPECT_INF(1, "ERR: node[1].in_dim: missing and cannot be derived");
    n = unary(TL_OP_LINEAR, S0);
    n->a.in_dim = 1, n->a.out_dim = 1;
    EXPECT_INF(1, "ERR: node[1]: linear: expected an input of rank >= 1, got []");
    tl_shape s;
    n = unary(TL_OP_LINEAR, SH(7, 4));
    n->a.in_dim = 4, n->a.out_dim = 3;
    CHECK(tl_param_shape(n, 0, &s) == 0 && shape_is(&s, SH(3, 4)));
    CHECK(tl_param_shape(n, 1, &s) == 0 && shape_is(&s, SH(3)));
    CHECK(tl_param_shape(n, 2, &s) == -1);
    char name[64];
    tl_param_name(n, 0, name, sizeof name);
    CHECK(!strcmp(name, "linear_1_W"));
    tl_param_name(n, 1, name, sizeof name);
    CHECK(!strcmp(name, "linear_1_b"));
}

static tl_node *conv(tl_shape in, int64_t cin, int64_t cout, int64_t ca, int sr) {
    tl_node *n = unary(TL_OP_CONV, in);
    n->a.in_channels = cin, n->a.out_channels = cout, n->a.channel_axis = ca, n->a.spatial_rank = sr;
    for (int i = 0; i < sr; i++) {
        n->a.kernel[i] = 3, n->a.stride[i] = 1, n->a.padding[i] = n->a.padding_after[i] = 1;
        n->a.input_spatial[i] = in.dim[ca + 1 + i];
    }
    return n;
}

static void test_conv(void) {
    tl_node *n = conv(SH(1, 3, 8, 8), 3, 16, 1, 2);
    EXPECT_INF(1, "[1, 16, 8, 8]");
    tl_shape s;
    CHECK(tl_param_shape(n, 0, &s) == 0 && shape_is(&s, SH(16, 3, 3, 3)));
    CHECK(tl_param_shape(n, 1, &s) == 0 && shape_is(&s, SH(16)));
    char name[64];
    tl_param_name(n, 0, name, sizeof name);
    CHECK(!strcmp(name, "conv2d_1_kernel"));
    /* F.conv2d([2,4,9,7], [6,2,3,2], stride=(2,1), dilation=(2,1), groups=2) -> [2,6,3,6] */
    n = conv(SH(2, 4, 9, 7), 4, 6, 1, 2);
    n->a.kernel[1] = 2, n->a.stride[0] = 2, n->a.dilation[0] = 2, n->a.groups = 2;
    n->a.padding[0] = n->a.padding[1] = n->a.padding_after[0] = n->a.padding_after[1] = 0;
    EXPECT_INF(1, "[2, 6, 3, 6]");
    CHECK(tl_param_shape(n, 0, &s) == 0 && shape_is(&s, SH(6, 2, 3, 2)));
    /* asymmetric padding: F.pad(x,(0,2,1,0)) then conv k3 s2 -> [2,6,4,4] */
    n = conv(SH(2, 4, 9, 7), 4, 6, 1, 2);
    n->a.stride[0] = n->a.stride[1] = 2;
    n->a.padding[0] = 1, n->a.padding_after[0] = 0, n->a.padding[1] = 0, n->a.padding_after[1] = 2;
    EXPECT_INF(1, "[2, 6, 4, 4]");
    /* conv1d [1,2,10] k3 s3 -> [1,4,3] */
    n = conv(SH(1, 2, 10), 2, 4, 1, 1);
    n->a.stride[0] = 3, n->a.padding[0] = n->a.padding_after[0] = 0;
    EXPECT_INF(1, "[1, 4, 3]");
    /* CHW (channel axis 0) */
    n = conv(SH(3, 5, 5), 3, 2, 0, 2);
    EXPECT_INF(1, "[2, 5, 5]");
    /* errors */
    n = conv(SH(1, 3, 8, 8), 4, 16, 1, 2);
    EXPECT_INF(1, "ERR: node[1].in_channels: input-channel mismatch: op=4 vs input=3 (input [1, 3, 8, 8])");
    n = conv(SH(1, 4, 8, 8), 4, 6, 1, 2);
    n->a.groups = 3;
    EXPECT_INF(1, "ERR: node[1].groups: in_channels=4 is not divisible by groups=3");
    n->a.groups = 4;
    EXPECT_INF(1, "ERR: node[1].groups: out_channels=6 is not divisible by groups=4");
    n->a.groups = 0;
    EXPECT_INF(1, "ERR: node[1].groups: must be > 0");
    n = conv(SH(1, 3, 8, 8), 3, 16, 1, 1);
    EXPECT_INF(1,
               "ERR: node[1].spatial_rank: kernel rank 1 does not match the 2 spatial axes after channel axis 1 of "
               "[1, 3, 8, 8]");
    n = conv(SH(1, 3, 8, 8), 3, 16, 4, 2);
    EXPECT_INF(1, "ERR: node[1].channel_axis: invalid axis 4 for rank 4");
    n = conv(SH(1, 3, 8, 8), 3, 16, 1, 2);
    n->a.kernel[1] = 0;
    EXPECT_INF(1, "ERR: node[1].kernel: axis 3 kernel must be > 0");
    n->a.kernel[1] = 3, n->a.stride[0] = 0;
    EXPECT_INF(1, "ERR: node[1].stride: axis 2 stride must be > 0");
    n->a.stride[0] = 1, n->a.dilation[1] = 0;
    EXPECT_INF(1, "ERR: node[1].dilation: axis 3 dilation must be > 0");
    n->a.dilation[1] = 5;
    EXPECT_INF(1,
               "ERR: node[1]: conv: axis 3 window does not fit padded input: input=8, padding=(1, 1), "
               "effectiveKernel=11");
    n->a.dilation[1] = 1, n->a.input_spatial[0] = 9;
    EXPECT_INF(1, "ERR: node[1].input_spatial: expected [8, 8] (the spatial axes of input [1, 3, 8, 8]), got [9, 8]");
    n->a.input_spatial[0] = 8, n->a.in_channels = 0;
    EXPECT_INF(1, "ERR: node[1].in_channels: must be > 0");
    /* huge dilation must not overflow */
    n = conv(SH(1, 3, 8, 8), 3, 16, 1, 2);
    n->a.dilation[0] = (int64_t)1 << 52, n->a.kernel[0] = (int64_t)1 << 52;
    EXPECT_INF(1,
               "ERR: node[1]: conv: axis 2 window does not fit padded input: input=8, padding=(1, 1), "
               "effectiveKernel=9223372036854775807");
}

static tl_node *pool(tl_op op, tl_shape in, int sr, int64_t k, int64_t s, int64_t p) {
    tl_node *n = unary(op, in);
    n->a.spatial_rank = sr;
    for (int i = 0; i < sr; i++) n->a.kernel[i] = k, n->a.stride[i] = s, n->a.padding[i] = p;
    return n;
}

static void test_pool(void) {
    pool(TL_OP_MAX_POOL, SH(1, 3, 8, 8), 2, 2, 2, 0);
    EXPECT_INF(1, "[1, 3, 4, 4]");
    pool(TL_OP_AVG_POOL, SH(1, 1, 5, 5), 2, 3, 2, 1);
    EXPECT_INF(1, "[1, 1, 3, 3]");
    tl_node *n = pool(TL_OP_MAX_POOL, SH(3, 7, 6), 2, 3, 2, 1);
    n->a.kernel[1] = 2;
    EXPECT_INF(1, "[3, 4, 4]");
    pool(TL_OP_MAX_POOL, SH(2, 9), 1, 3, 3, 0);
    EXPECT_INF(1, "[2, 3]");
    pool(TL_OP_MAX_POOL, SH(1, 1, 4, 4), 2, 2, 1, 2);
    EXPECT_INF(1,
               "ERR: node[1]: max_pool: axis 2 has an empty output (input=4, kernel=2, stride=1, padding=2); tlrt "
               "rejects empty pooling outputs");
    pool(TL_OP_AVG_POOL, SH(1, 1, 2, 2), 2, 3, 1, 0);
    EXPECT_INF(1,
               "ERR: node[1]: avg_pool: axis 2 has an empty output (input=2, kernel=3, stride=1, padding=0); tlrt "
               "rejects empty pooling outputs");
    pool(TL_OP_AVG_POOL, SH(1, 0, 4), 2, 1, 1, 0);
    EXPECT_INF(1,
               "ERR: node[1]: avg_pool: axis 1 has an empty output (input=0, kernel=1, stride=1, padding=0); tlrt "
               "rejects empty pooling outputs");
    pool(TL_OP_MAX_POOL, SH(4, 4), 3, 2, 2, 0);
    EXPECT_INF(1, "ERR: node[1].spatial_rank: kernel rank 3 exceeds input rank 2 (input [4, 4])");
    pool(TL_OP_MAX_POOL, SH(4, 4), 0, 2, 2, 0);
    EXPECT_INF(1, "ERR: node[1].spatial_rank: must be > 0");
    pool(TL_OP_MAX_POOL, SH(4, 4), 2, 2, 0, 0);
    EXPECT_INF(1, "ERR: node[1].stride: axis 0 stride must be > 0");
    pool(TL_OP_MAX_POOL, SH(4, 4), 2, 0, 1, 0);
    EXPECT_INF(1, "ERR: node[1].kernel: axis 0 kernel must be > 0");
}

static void test_norm(void) {
    tl_node *n = unary(TL_OP_BATCH_NORM_EVAL, SH(2, 3, 4, 4));
    n->a.channel_axis = 1, n->a.channels = 3;
    EXPECT_INF(1, "[2, 3, 4, 4]");
    tl_shape s;
    CHECK(tl_param_shape(n, 3, &s) == 0 && shape_is(&s, SH(3)));
    char name[64];
    tl_param_name(n, 2, name, sizeof name);
    CHECK(!strcmp(name, "batchnorm_1_mean"));
    n->a.channels = 4;
    EXPECT_INF(1, "ERR: node[1].channels: channel mismatch: op=4 vs input=3 (input [2, 3, 4, 4])");
    n->a.channel_axis = 4;
    EXPECT_INF(1, "ERR: node[1].channel_axis: invalid axis 4 for rank 4");
    n->a.channels = 0;
    EXPECT_INF(1, "ERR: node[1].channels: must be > 0");

    n = unary(TL_OP_SOFTMAX, SH(2, 5));
    n->a.axis = 1;
    EXPECT_INF(1, "[2, 5]");
    n->a.axis = 2;
    EXPECT_INF(1, "ERR: node[1].axis: invalid axis 2 for rank 2");

    n = unary(TL_OP_LAYERNORM, SH(2, 5, 6));
    n->a.axis = 1;
    EXPECT_INF(1, "[2, 5, 6]");
    CHECK(tl_param_shape(n, 0, &s) == 0 && shape_is(&s, SH(5, 6)));
    tl_param_name(n, 1, name, sizeof name);
    CHECK(!strcmp(name, "layernorm_1_beta"));
    n->a.axis = 3;
    EXPECT_INF(1, "ERR: node[1].axis: invalid axis 3 for rank 3");
    n = unary(TL_OP_LAYERNORM, SH(2, 0, 6));
    n->a.axis = 1;
    EXPECT_INF(1, "ERR: node[1].axis: normalized size must be > 0 (shape [2, 0, 6] from axis 1)");
    n->a.axis = 2;
    EXPECT_INF(1, "[2, 0, 6]"); /* empty leading batch is fine */

    g_new();
    tl_node *c = add_node(TL_OP_CONST, SH(2, 2), 0);
    c->a.value_shape = SH(2, 2);
    CHECK(tl_param_shape(c, 0, &s) == 0 && shape_is(&s, SH(2, 2)));
    tl_param_name(c, 0, name, sizeof name);
    CHECK(!strcmp(name, "const_0"));
    tl_param_name(c, 1, name, sizeof name);
    CHECK(!strcmp(name, "?"));
}

static void test_tuple(void) {
    g_new();
    add_node(TL_OP_INPUT, SH(1, 4, 8), 0);
    tl_node *m = add_node(TL_OP_MULTIHEAD_ATTENTION, S0, 3, P(0), P(0), P(0));
    m->is_tuple = true;
    m->n_tuple = 2;
    m->tuple_shapes = calloc(2, sizeof(tl_shape));
    m->tuple_shapes[0] = SH(1, 4, 8);
    m->tuple_shapes[1] = SH(1, 4, 4);
    tl_node *gi = add_node(TL_OP_TUPLE_GETITEM, SH(1, 4, 4), 1, P(1));
    gi->a.index = 1;
    EXPECT_INF(2, "[1, 4, 4]");
    gi->a.index = 2;
    EXPECT_INF(2, "ERR: node[2].index: tuple index 2 is out of bounds for 2 components");
    gi->a.index = 1;
    add_node(TL_OP_RELU, SH(1, 4, 8), 1, P(1));
    EXPECT_INF(
        3, "ERR: node[3]: parent node[1] is tuple-valued (multihead_attention); only tuple_getitem may consume it");
    G->output_ids[0] = 2;
    G->n_outputs = 1;
    EXPECT_VAL(
        "t.json: node[3]: parent node[1] is tuple-valued (multihead_attention); only tuple_getitem may consume it");
    G->nodes[3].parents[0] = 2;
    G->nodes[3].shape = SH(1, 4, 4);
    EXPECT_VAL("OK");
    gi->shape = SH(1, 4, 8);
    EXPECT_VAL("t.json: node[2]: declared shape [1, 4, 8] does not match inferred shape [1, 4, 4] (tuple_getitem)");
    gi->shape = SH(1, 4, 4);
    G->output_ids[0] = 1;
    EXPECT_VAL("t.json: output_ids[0]: node[1] is tuple-valued; select a component with tuple_getitem");
    G->output_ids[0] = 3;
    G->nodes[3].parents[0] = 0;
    G->nodes[3].op = TL_OP_TUPLE_GETITEM;
    EXPECT_VAL("t.json: node[3]: tuple_getitem: parent node[0] is not tuple-valued");
}

static void test_validate(void) {
    g_new();
    EXPECT_VAL("t.json: graph contains no nodes");
    /* a good small graph: x -> linear -> relu -> out */
    add_node(TL_OP_INPUT, SH(1, 4), 0);
    tl_node *l = add_node(TL_OP_LINEAR, SH(1, 3), 1, P(0));
    l->a.in_dim = 4, l->a.out_dim = 3;
    add_node(TL_OP_RELU, SH(1, 3), 1, P(1));
    G->n_outputs = 1;
    G->output_ids[0] = 2;
    EXPECT_VAL("OK");
    G->nodes[2].shape = SH(1, 4);
    EXPECT_VAL("t.json: node[2]: declared shape [1, 4] does not match inferred shape [1, 3] (relu)");
    G->nodes[2].shape = SH(1, 3);
    G->nodes[1].id = 5;
    EXPECT_VAL("t.json: nodes[1]: id discipline violated: id is 5, expected 1");
    G->nodes[1].id = 1;
    G->nodes[2].parents[0] = 2;
    EXPECT_VAL("t.json: node[2]: parent id 2 is not < 2");
    G->nodes[2].parents[0] = 1;
    G->nodes[2].n_parents = 0;
    EXPECT_VAL("t.json: node[2]: bad parent count for relu: expected 1..1, got 0");
    G->nodes[2].n_parents = 1;
    G->nodes[2].op = TL_OP_CONCAT;
    EXPECT_VAL("t.json: node[2]: bad parent count for concat: expected at least 2, got 1");
    G->nodes[2].op = TL_OP_CUSTOM;
    EXPECT_VAL("t.json: node[2]: custom is not executable (no runtime semantics)");
    G->nodes[2].op = TL_OP_HARD_MASKED_SOFTMAX;
    EXPECT_VAL(
        "t.json: node[2]: hard_masked_softmax is not executable: TorchLean has no artifact encoding for its mask "
        "yet");
    G->nodes[2].op = TL_OP_RELU;
    G->input_id = 1;
    EXPECT_VAL("t.json: input_id 1 designates linear, not input");
    G->input_id = 7;
    EXPECT_VAL("t.json: input_id 7 is out of range (3 nodes)");
    G->input_id = 0;
    G->output_ids[0] = 3;
    EXPECT_VAL("t.json: output_ids[0]: node 3 does not exist (3 nodes)");
    G->output_ids[0] = 2;
    G->n_outputs = 0;
    EXPECT_VAL("t.json: output_ids must contain at least one output");
    G->n_outputs = 1;
    G->nodes[2].op = TL_OP_INPUT;
    G->nodes[2].n_parents = 0;
    EXPECT_VAL("t.json: expected exactly one input node, got 2");
    G->nodes[0].op = TL_OP_CONST;
    G->nodes[0].a.value_shape = SH(1, 4);
    G->nodes[2].op = TL_OP_RELU;
    G->nodes[2].n_parents = 1;
    EXPECT_VAL("t.json: expected exactly one input node, got 0");
    G->nodes[0].op = TL_OP_INPUT;
    G->nodes[1].is_tuple = true;
    EXPECT_VAL("t.json: node[1]: value_kind \"tuple\" is only supported for multihead_attention, not linear");
    G->nodes[1].is_tuple = false;
    /* declared shape too large */
    G->nodes[0].shape = SH((int64_t)1 << 21, (int64_t)1 << 20);
    EXPECT_VAL("t.json: node[0].shape: element count exceeds 2^40");
    G->nodes[0].shape = SH(0, (int64_t)1 << 41);
    EXPECT_VAL("t.json: node[0].shape: element count exceeds 2^40");
    G->nodes[0].shape = SH(1, 4);
    /* bound parameter of the wrong shape */
    G->nodes[1].param[0] = tnew(SH(4, 3));
    EXPECT_VAL("t.json: node[1].weight: expected shape [3, 4], got [4, 3]");
    tl_tensor_free(G->nodes[1].param[0]);
    G->nodes[1].param[0] = tnew(SH(3, 4));
    CHECK(G->nodes[1].param[0] && G->nodes[1].param[0]->owned && G->nodes[1].param[0]->data[11] == 0.0f);
    EXPECT_VAL("OK");
    CHECK(tnew(SH((int64_t)1 << 41)) == NULL);
    /* the infer entry point never reads out of bounds */
    tl_err e;
    tl_shape s;
    CHECK(tl_infer_shape(G, 3, &s, &e) == -1 && !strcmp(e.msg, "node[3]: no such node"));
    CHECK(tl_infer_shape(G, -1, &s, &e) == -1);
}

/* Every row of ir/tl_ops.def reaches a family that knows it: a shape rule for all; for ops the
 * runtime executes (all but the tuple ops the importer lowers) a plan and a PyTorch emission;
 * parameter shapes for ops with parameter slots; the flags agree with the arity. An op wired to
 * the wrong family, or a family table missing its entry, fails here. */
static void test_families(void) {
    for (int i = 0; i < TL_OP_COUNT; i++) {
        const tl_op_row *r = tl_op_info((tl_op)i);
        CHECK(r && r->op == (tl_op)i && r->tag && r->fam);
        if (!r || !r->fam) continue;
        bool knows = !r->fam->has || r->fam->has((tl_op)i);
        CHECK(knows);
        if (!knows) fprintf(stderr, "op %s: family %s has no entry for it\n", r->tag, r->fam->name);
        CHECK(r->fam->infer != NULL);
        CHECK(strcmp(r->family, r->fam->name) == 0);
        bool lowered = r->fam == &tl_fam_tuple;
        if (r->executable && !lowered) {
            CHECK(r->fam->prepare != NULL);
            CHECK(r->fam->emit != NULL);
        }
        if (!r->executable) CHECK(r->fam->prepare == NULL);
        if (r->n_params > 0) CHECK(r->fam->param_shape != NULL);
        if (r->elementwise_unary) CHECK(r->min_parents == 1 && r->max_parents == 1);
        if (r->elementwise_binary) CHECK(r->min_parents == 2 && r->max_parents == 2);
        if (r->alias) CHECK(r->min_parents == 1 && r->max_parents == 1 && !(r->flags & TL_F_INPLACE));
        CHECK(tl_op_from_tag(r->tag, NULL) == i);
    }
    CHECK(tl_op_info(TL_OP_COUNT) == NULL);
}

int main(void) {
    test_families();
    test_elementwise();
    test_sources();
    test_movement();
    test_reduce();
    test_matmul();
    test_linear();
    test_conv();
    test_pool();
    test_norm();
    test_tuple();
    test_validate();
    tl_graph_free(G);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
