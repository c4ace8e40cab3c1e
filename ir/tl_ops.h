/* tl_ops.h - THE op table. Every stage (parser, validator, shape inference, executor, emitter)
 * reads the row of an op from tl_op_info(). Adding an op: one enum value + one row in
 * tl_optable.c, one shape rule (tl_infer.c), one kernel + exec line (runtime/), one emitter
 * line (emit/), one test. */
#ifndef TL_OPS_H
#define TL_OPS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "tl_shape.h"

typedef enum tl_op {
    TL_OP_INPUT = 0,
    TL_OP_CONST,
    TL_OP_DETACH,
    /* binary elementwise, same shapes */
    TL_OP_ADD, TL_OP_SUB, TL_OP_MUL_ELEM, TL_OP_MAX_ELEM, TL_OP_MIN_ELEM,
    /* unary elementwise */
    TL_OP_ABS, TL_OP_SQRT, TL_OP_INV, TL_OP_RELU, TL_OP_TANH, TL_OP_SIGMOID, TL_OP_EXP,
    TL_OP_LOG, TL_OP_SIN, TL_OP_COS, TL_OP_SOFTPLUS,
    TL_OP_SAFE_LOG,          /* parents: x, eps (scalar): log(softplus(x) + eps), as TorchLean */
    /* data movement */
    TL_OP_BROADCAST_TO, TL_OP_PERMUTE, TL_OP_TRANSPOSE, TL_OP_RESHAPE, TL_OP_FLATTEN, TL_OP_CONCAT,
    /* reductions */
    TL_OP_REDUCE_SUM, TL_OP_REDUCE_MEAN, TL_OP_SUM,
    /* BLAS ops */
    TL_OP_MATMUL, TL_OP_LINEAR, TL_OP_CONV,
    /* windows / normalization */
    TL_OP_MAX_POOL, TL_OP_AVG_POOL, TL_OP_BATCH_NORM_EVAL, TL_OP_SOFTMAX, TL_OP_LAYERNORM,
    /* random / loss */
    TL_OP_RAND_UNIFORM, TL_OP_BERNOULLI_MASK, TL_OP_MSE_LOSS,
    /* rejected on import (named in the error) */
    TL_OP_HARD_MASKED_SOFTMAX, TL_OP_CUSTOM,
    /* value graph only */
    TL_OP_TUPLE_GETITEM, TL_OP_MULTIHEAD_ATTENTION,
    TL_OP_COUNT
} tl_op;

/* Attribute value kinds (JSON types). */
typedef enum tl_attr_kind {
    TL_AK_NAT,      /* natural number -> int64_t */
    TL_AK_NATS,     /* array of naturals -> int64_t[TL_MAX_RANK] + count */
    TL_AK_SPATIAL,  /* array of naturals, exactly spatial_rank entries -> int64_t[TL_MAX_RANK] */
    TL_AK_SHAPE,    /* array of naturals -> tl_shape */
    TL_AK_BOOL,     /* true/false -> bool */
    TL_AK_NUM,      /* JSON number -> double */
} tl_attr_kind;

/* All attributes any op can carry (a node uses the ones of its row). */
typedef struct tl_attrs {
    int64_t axis, axis1, axis2, index, seed;
    int64_t perm[TL_MAX_RANK];  int perm_n;
    int64_t axes[TL_MAX_RANK];  int axes_n;
    bool keepdim;
    tl_shape value_shape;   /* const (defaults to shape), flatten (the input shape) */
    tl_shape from_shape, to_shape, in_shape, out_shape;
    int64_t in_dim, out_dim;
    int64_t spatial_rank;
    int64_t kernel[TL_MAX_RANK], stride[TL_MAX_RANK], padding[TL_MAX_RANK];
    int64_t padding_after[TL_MAX_RANK], dilation[TL_MAX_RANK], input_spatial[TL_MAX_RANK];
    int64_t groups, channel_axis, in_channels, out_channels, channels;
    double eps;
    /* multihead_attention */
    int64_t embed_dim, num_heads;
    bool batch_first, dropout_zero;
    double scale;
} tl_attrs;

/* One attribute of an op's schema. Lists of kind SPATIAL have spatial_rank entries; NATS store
 * their count at count_offset. Optional attributes keep the default the parser set (see
 * tl_attrs_defaults in tl_optable.c: padding_after <- padding, dilation <- 1, groups <- 1,
 * value_shape <- shape, keepdim <- false). */
typedef struct tl_attr_spec {
    const char *name;       /* JSON field */
    tl_attr_kind kind;
    size_t offset;          /* offsetof(tl_attrs, ...) */
    size_t count_offset;    /* NATS only: offsetof the int count */
    bool required;
} tl_attr_spec;

/* A parameter tensor slot of an op (weights live in params.bin or inline in the JSON). */
#define TL_MAX_PARAMS 4
typedef struct tl_param_spec {
    const char *inline_key;  /* TorchLean's inline JSON field: "weight", "bias", "values", ... */
    const char *name_fmt;    /* params.bin / state_dict name, printf with the node id: "linear_%lld_W" */
} tl_param_spec;

struct tl_node;
typedef struct tl_op_row {
    tl_op op;
    const char *tag;         /* current wire spelling */
    int min_parents;
    int max_parents;         /* -1: no maximum */
    const tl_attr_spec *attrs; int n_attrs;
    const tl_param_spec *params; int n_params;
    bool executable;         /* false: import rejects it naming the node (custom, hard_masked_softmax) */
    bool elementwise_unary;  /* same shape in and out, one value in -> one value out */
    bool elementwise_binary;
} tl_op_row;

const tl_op_row *tl_op_info(tl_op op);
/* Current or legacy spelling -> op; returns -1 if unknown. *legacy is set for old spellings
 * (conv2d, max_pool2d, max_pool2d_pad, avg_pool2d, avg_pool2d_pad, swap_first_two,
 * transpose3d_last_two), whose fields the JSON reader translates (tl_legacy_translate). */
int tl_op_from_tag(const char *tag, bool *legacy);
const char *tl_op_tag(tl_op op);

#endif
