/* tl_optable.c - one row per torchlean.ir.v1 tag. See tl_ops.h. */
#include <stddef.h>
#include <string.h>
#include "tl_ops.h"

#define NAT(f, req)      { #f, TL_AK_NAT, offsetof(tl_attrs, f), 0, req }
#define NATS(f, req)     { #f, TL_AK_NATS, offsetof(tl_attrs, f), offsetof(tl_attrs, f##_n), req }
#define SPATIAL(f, req)  { #f, TL_AK_SPATIAL, offsetof(tl_attrs, f), 0, req }
#define SHAPE(f, req)    { #f, TL_AK_SHAPE, offsetof(tl_attrs, f), 0, req }
#define BOOL(f, req)     { #f, TL_AK_BOOL, offsetof(tl_attrs, f), 0, req }
#define NUM(f, req)      { #f, TL_AK_NUM, offsetof(tl_attrs, f), 0, req }
#define LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const tl_attr_spec A_CONST[] = { SHAPE(value_shape, false) };
static const tl_attr_spec A_BROADCAST[] = { SHAPE(from_shape, true), SHAPE(to_shape, true) };
static const tl_attr_spec A_PERMUTE[] = { NATS(perm, true) };
static const tl_attr_spec A_TRANSPOSE[] = { NAT(axis1, true), NAT(axis2, true) };
static const tl_attr_spec A_RESHAPE[] = { SHAPE(in_shape, true), SHAPE(out_shape, true) };
static const tl_attr_spec A_FLATTEN[] = { SHAPE(value_shape, true) };
static const tl_attr_spec A_AXIS[] = { NAT(axis, true) };
static const tl_attr_spec A_REDUCE[] = { NATS(axes, true), BOOL(keepdim, false) };
/* in_dim/out_dim are optional: the reader derives them from the shapes when absent. */
static const tl_attr_spec A_LINEAR[] = { NAT(in_dim, false), NAT(out_dim, false) };
static const tl_attr_spec A_CONV[] = {
    NAT(spatial_rank, true), SPATIAL(kernel, true), SPATIAL(stride, true), SPATIAL(padding, true),
    SPATIAL(padding_after, false), SPATIAL(dilation, false), NAT(groups, false),
    NAT(channel_axis, true), NAT(in_channels, true), NAT(out_channels, true),
    SPATIAL(input_spatial, false),
};
static const tl_attr_spec A_POOL[] = {
    NAT(spatial_rank, true), SPATIAL(kernel, true), SPATIAL(stride, true), SPATIAL(padding, true),
};
static const tl_attr_spec A_BATCHNORM[] = { NAT(channel_axis, true), NAT(channels, true), NUM(eps, true) };
static const tl_attr_spec A_LAYERNORM[] = { NAT(axis, true), NUM(eps, true) };
static const tl_attr_spec A_SEED[] = { NAT(seed, true) };
static const tl_attr_spec A_GETITEM[] = { NAT(index, true) };
static const tl_attr_spec A_MHA[] = {
    NAT(embed_dim, true), NAT(num_heads, true), BOOL(batch_first, true), BOOL(dropout_zero, true),
    NUM(scale, true),
};

static const tl_param_spec P_CONST[] = { { "values", "const_%lld" } };
static const tl_param_spec P_LINEAR[] = { { "weight", "linear_%lld_W" }, { "bias", "linear_%lld_b" } };
static const tl_param_spec P_CONV[] = { { "weight", "conv2d_%lld_kernel" }, { "bias", "conv2d_%lld_bias" } };
static const tl_param_spec P_BATCHNORM[] = {
    { "gamma", "batchnorm_%lld_gamma" }, { "beta", "batchnorm_%lld_beta" },
    { "mean", "batchnorm_%lld_mean" }, { "var", "batchnorm_%lld_var" },
};
static const tl_param_spec P_LAYERNORM[] = { { "gamma", "layernorm_%lld_gamma" }, { "beta", "layernorm_%lld_beta" } };

#define ROW(E, TAG, MINP, MAXP, ATTRS, PARAMS, EXEC, UN, BIN) \
    [E] = { E, TAG, MINP, MAXP, ATTRS, LEN_##ATTRS, PARAMS, LEN_##PARAMS, EXEC, UN, BIN }
/* lengths for the ROW macro */
enum {
    LEN_NULL = 0,
    LEN_A_CONST = LEN(A_CONST), LEN_A_BROADCAST = LEN(A_BROADCAST), LEN_A_PERMUTE = LEN(A_PERMUTE),
    LEN_A_TRANSPOSE = LEN(A_TRANSPOSE), LEN_A_RESHAPE = LEN(A_RESHAPE), LEN_A_FLATTEN = LEN(A_FLATTEN),
    LEN_A_AXIS = LEN(A_AXIS), LEN_A_REDUCE = LEN(A_REDUCE), LEN_A_LINEAR = LEN(A_LINEAR),
    LEN_A_CONV = LEN(A_CONV), LEN_A_POOL = LEN(A_POOL), LEN_A_BATCHNORM = LEN(A_BATCHNORM),
    LEN_A_LAYERNORM = LEN(A_LAYERNORM), LEN_A_SEED = LEN(A_SEED), LEN_A_GETITEM = LEN(A_GETITEM),
    LEN_A_MHA = LEN(A_MHA),
    LEN_P_CONST = LEN(P_CONST), LEN_P_LINEAR = LEN(P_LINEAR), LEN_P_CONV = LEN(P_CONV),
    LEN_P_BATCHNORM = LEN(P_BATCHNORM), LEN_P_LAYERNORM = LEN(P_LAYERNORM),
};

static const tl_op_row ROWS[TL_OP_COUNT] = {
    /*  op                        tag                    parents  attrs        params       exec   un     bin */
    ROW(TL_OP_INPUT,              "input",               0, 0,    NULL,        NULL,        true,  false, false),
    ROW(TL_OP_CONST,              "const",               0, 0,    A_CONST,     P_CONST,     true,  false, false),
    ROW(TL_OP_DETACH,             "detach",              1, 1,    NULL,        NULL,        true,  true,  false),
    ROW(TL_OP_ADD,                "add",                 2, 2,    NULL,        NULL,        true,  false, true),
    ROW(TL_OP_SUB,                "sub",                 2, 2,    NULL,        NULL,        true,  false, true),
    ROW(TL_OP_MUL_ELEM,           "mul_elem",            2, 2,    NULL,        NULL,        true,  false, true),
    ROW(TL_OP_MAX_ELEM,           "max_elem",            2, 2,    NULL,        NULL,        true,  false, true),
    ROW(TL_OP_MIN_ELEM,           "min_elem",            2, 2,    NULL,        NULL,        true,  false, true),
    ROW(TL_OP_ABS,                "abs",                 1, 1,    NULL,        NULL,        true,  true,  false),
    ROW(TL_OP_SQRT,               "sqrt",                1, 1,    NULL,        NULL,        true,  true,  false),
    ROW(TL_OP_INV,                "inv",                 1, 1,    NULL,        NULL,        true,  true,  false),
    ROW(TL_OP_RELU,               "relu",                1, 1,    NULL,        NULL,        true,  true,  false),
    ROW(TL_OP_TANH,               "tanh",                1, 1,    NULL,        NULL,        true,  true,  false),
    ROW(TL_OP_SIGMOID,            "sigmoid",             1, 1,    NULL,        NULL,        true,  true,  false),
    ROW(TL_OP_EXP,                "exp",                 1, 1,    NULL,        NULL,        true,  true,  false),
    ROW(TL_OP_LOG,                "log",                 1, 1,    NULL,        NULL,        true,  true,  false),
    ROW(TL_OP_SIN,                "sin",                 1, 1,    NULL,        NULL,        true,  true,  false),
    ROW(TL_OP_COS,                "cos",                 1, 1,    NULL,        NULL,        true,  true,  false),
    ROW(TL_OP_SOFTPLUS,           "softplus",            1, 1,    NULL,        NULL,        true,  true,  false),
    ROW(TL_OP_SAFE_LOG,           "safe_log",            2, 2,    NULL,        NULL,        true,  false, false),
    ROW(TL_OP_BROADCAST_TO,       "broadcast_to",        1, 1,    A_BROADCAST, NULL,        true,  false, false),
    ROW(TL_OP_PERMUTE,            "permute",             1, 1,    A_PERMUTE,   NULL,        true,  false, false),
    ROW(TL_OP_TRANSPOSE,          "transpose",           1, 1,    A_TRANSPOSE, NULL,        true,  false, false),
    ROW(TL_OP_RESHAPE,            "reshape",             1, 1,    A_RESHAPE,   NULL,        true,  false, false),
    ROW(TL_OP_FLATTEN,            "flatten",             1, 1,    A_FLATTEN,   NULL,        true,  false, false),
    ROW(TL_OP_CONCAT,             "concat",              2, -1,   A_AXIS,      NULL,        true,  false, false),
    ROW(TL_OP_REDUCE_SUM,         "reduce_sum",          1, 1,    A_REDUCE,    NULL,        true,  false, false),
    ROW(TL_OP_REDUCE_MEAN,        "reduce_mean",         1, 1,    A_REDUCE,    NULL,        true,  false, false),
    ROW(TL_OP_SUM,                "sum",                 1, 1,    NULL,        NULL,        true,  false, false),
    ROW(TL_OP_MATMUL,             "matmul",              2, 2,    NULL,        NULL,        true,  false, false),
    ROW(TL_OP_LINEAR,             "linear",              1, 1,    A_LINEAR,    P_LINEAR,    true,  false, false),
    ROW(TL_OP_CONV,               "conv",                1, 1,    A_CONV,      P_CONV,      true,  false, false),
    ROW(TL_OP_MAX_POOL,           "max_pool",            1, 1,    A_POOL,      NULL,        true,  false, false),
    ROW(TL_OP_AVG_POOL,           "avg_pool",            1, 1,    A_POOL,      NULL,        true,  false, false),
    ROW(TL_OP_BATCH_NORM_EVAL,    "batch_norm_eval",     1, 1,    A_BATCHNORM, P_BATCHNORM, true,  false, false),
    ROW(TL_OP_SOFTMAX,            "softmax",             1, 1,    A_AXIS,      NULL,        true,  false, false),
    ROW(TL_OP_LAYERNORM,          "layernorm",           1, 1,    A_LAYERNORM, P_LAYERNORM, true,  false, false),
    ROW(TL_OP_RAND_UNIFORM,       "rand_uniform",        0, 0,    A_SEED,      NULL,        true,  false, false),
    ROW(TL_OP_BERNOULLI_MASK,     "bernoulli_mask",      1, 1,    A_SEED,      NULL,        true,  false, false),
    ROW(TL_OP_MSE_LOSS,           "mse_loss",            2, 2,    NULL,        NULL,        true,  false, false),
    ROW(TL_OP_HARD_MASKED_SOFTMAX,"hard_masked_softmax", 1, 1,    NULL,        NULL,        false, false, false),
    ROW(TL_OP_CUSTOM,             "custom",              0, -1,   NULL,        NULL,        false, false, false),
    ROW(TL_OP_TUPLE_GETITEM,      "tuple_getitem",       1, 1,    A_GETITEM,   NULL,        true,  false, false),
    ROW(TL_OP_MULTIHEAD_ATTENTION,"multihead_attention", 3, 3,    A_MHA,       NULL,        true,  false, false),
};

const tl_op_row *tl_op_info(tl_op op) {
    if ((int)op < 0 || op >= TL_OP_COUNT) return NULL;
    return &ROWS[op];
}

const char *tl_op_tag(tl_op op) {
    const tl_op_row *r = tl_op_info(op);
    return r ? r->tag : "?";
}

/* Older IR spellings (accepted on import, never written). */
static const struct { const char *tag; tl_op op; } LEGACY[] = {
    { "conv2d", TL_OP_CONV },           { "max_pool2d", TL_OP_MAX_POOL },
    { "max_pool2d_pad", TL_OP_MAX_POOL }, { "avg_pool2d", TL_OP_AVG_POOL },
    { "avg_pool2d_pad", TL_OP_AVG_POOL }, { "swap_first_two", TL_OP_TRANSPOSE },
    { "transpose3d_last_two", TL_OP_TRANSPOSE },
};

int tl_op_from_tag(const char *tag, bool *legacy) {
    if (legacy) *legacy = false;
    for (int i = 0; i < TL_OP_COUNT; i++)
        if (strcmp(ROWS[i].tag, tag) == 0) return i;
    for (size_t i = 0; i < sizeof LEGACY / sizeof LEGACY[0]; i++)
        if (strcmp(LEGACY[i].tag, tag) == 0) {
            if (legacy) *legacy = true;
            return (int)LEGACY[i].op;
        }
    return -1;
}
