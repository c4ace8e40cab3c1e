/* tl_ops.h - THE op table. The op list is tl_ops.def (X-macro); every stage (parser, validator,
 * shape inference, planner, executor, batch rule, emitter) reads an op's row from tl_op_info()
 * and reaches the op's family (ops/<family>.c) through row->fam. See CONTRIBUTING.md, "Adding
 * an op". */
#ifndef TL_OPS_H
#define TL_OPS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "tl_shape.h"

/* Row flags (tl_ops.def). */
enum {
    TL_F_EXEC = 1,     /* executable by the runtime (else import rejects it, naming the node) */
    TL_F_UNARY = 2,    /* elementwise, one parent: same shape in and out */
    TL_F_BINARY = 4,   /* elementwise, two parents of the same shape */
    TL_F_ALIAS = 8,    /* output is a zero-copy view of parent 0 (reshape, flatten, detach) */
    TL_F_INPLACE = 16, /* may overwrite a parent (elementwise) that dies at this node */
};

typedef enum tl_op {
#define TL_OP(E, TAG, FAM, MINP, MAXP, ATTRS, PARAMS, FLAGS) TL_OP_##E,
#include "tl_ops.def"
#undef TL_OP
    TL_OP_COUNT
} tl_op;

/* Attribute value kinds (JSON types). */
typedef enum tl_attr_kind {
    TL_AK_NAT,     /* natural number -> int64_t */
    TL_AK_NATS,    /* array of naturals -> int64_t[TL_MAX_RANK] + count */
    TL_AK_SPATIAL, /* array of naturals, exactly spatial_rank entries -> int64_t[TL_MAX_RANK] */
    TL_AK_SHAPE,   /* array of naturals -> tl_shape */
    TL_AK_BOOL,    /* true/false -> bool */
    TL_AK_NUM,     /* JSON number -> double */
} tl_attr_kind;

/* All attributes any op can carry (a node uses the ones of its row). */
typedef struct tl_attrs {
    int64_t axis, axis1, axis2, index, seed;
    int64_t perm[TL_MAX_RANK];
    int perm_n;
    int64_t axes[TL_MAX_RANK];
    int axes_n;
    bool keepdim;
    tl_shape value_shape; /* const (defaults to shape), flatten (the input shape) */
    tl_shape from_shape, to_shape, in_shape, out_shape;
    int64_t in_dim, out_dim;
    int64_t spatial_rank;
    int64_t kernel[TL_MAX_RANK], stride[TL_MAX_RANK], padding[TL_MAX_RANK];
    int64_t padding_after[TL_MAX_RANK], dilation[TL_MAX_RANK], input_spatial[TL_MAX_RANK];
    int64_t groups, channel_axis, in_channels, out_channels, channels;
    double eps;
    /* multihead_attention */
    int64_t embed_dim, num_heads;
    bool batch_first, dropout_zero, bias;
    double scale;
} tl_attrs;

/* One attribute of an op's schema. Lists of kind SPATIAL have spatial_rank entries; NATS store
 * their count at count_offset. Optional attributes keep the default the parser set (see
 * tl_attrs_defaults in tl_optable.c: padding_after <- padding, dilation <- 1, groups <- 1,
 * value_shape <- shape, keepdim <- false). */
typedef struct tl_attr_spec {
    const char *name; /* JSON field */
    tl_attr_kind kind;
    size_t offset;       /* offsetof(tl_attrs, ...) */
    size_t count_offset; /* NATS only: offsetof the int count */
    bool required;
} tl_attr_spec;

/* A parameter tensor slot of an op (weights live in params.bin or inline in the JSON). */
#define TL_MAX_PARAMS 4
typedef struct tl_param_spec {
    const char *inline_key; /* TorchLean's inline JSON field: "weight", "bias", "values", ... */
    const char *name_fmt;   /* params.bin / state_dict name, printf with the node id: "linear_%lld_W" */
    bool buffer;            /* not trained: a const's values, running statistics (an emitted
                              * module registers it as a buffer, not an nn.Parameter) */
} tl_param_spec;

struct tl_node;
struct tl_family;
typedef struct tl_op_row {
    tl_op op;
    const char *tag;             /* current wire spelling */
    const char *family;          /* family name ("unary", "conv", ...): ops/<file>.c holds it */
    const struct tl_family *fam; /* the family's vtable (ops/tl_family.h) */
    int min_parents;
    int max_parents; /* -1: no maximum */
    const tl_attr_spec *attrs;
    int n_attrs;
    const tl_param_spec *params;
    int n_params;
    int flags;               /* TL_F_* */
    bool executable;         /* TL_F_EXEC; false: import rejects it naming the node */
    bool elementwise_unary;  /* TL_F_UNARY */
    bool elementwise_binary; /* TL_F_BINARY */
    bool alias;              /* TL_F_ALIAS */
} tl_op_row;

const tl_op_row *tl_op_info(tl_op op);
/* Current or legacy spelling -> op; returns -1 if unknown. *legacy is set for old spellings
 * (conv2d, max_pool2d, max_pool2d_pad, avg_pool2d, avg_pool2d_pad, swap_first_two,
 * transpose3d_last_two), whose fields the JSON reader translates (tl_legacy_translate). */
int tl_op_from_tag(const char *tag, bool *legacy);
const char *tl_op_tag(tl_op op);
/* The whole table as JSON (`tlinfo --ops`): [{"tag", "enum", "family", "min_parents",
 * "max_parents", "flags": [...], "attrs": [{"name", "kind", "required"}], "params":
 * [{"inline_key", "name"}], "legacy": [...]}]. Tests and the capture script's checks derive
 * their op lists and parameter names from it. */
#include <stdio.h>
void tl_op_table_json(FILE *out);

#endif
