/* tl_optable.c - one row per torchlean.ir.v1 tag. See tl_ops.h. */
#include <stddef.h>
#include <string.h>
#include "tl_ops.h"
#include <stdio.h>

#include "tl_family.h"

#define TL_FAM_PTR(FAM) &tl_fam_##FAM

#define NAT(f, req) \
    { #f, TL_AK_NAT, offsetof(tl_attrs, f), 0, req }
#define NATS(f, req) \
    { #f, TL_AK_NATS, offsetof(tl_attrs, f), offsetof(tl_attrs, f##_n), req }
#define SPATIAL(f, req) \
    { #f, TL_AK_SPATIAL, offsetof(tl_attrs, f), 0, req }
#define SHAPE(f, req) \
    { #f, TL_AK_SHAPE, offsetof(tl_attrs, f), 0, req }
#define BOOL(f, req) \
    { #f, TL_AK_BOOL, offsetof(tl_attrs, f), 0, req }
#define NUM(f, req) \
    { #f, TL_AK_NUM, offsetof(tl_attrs, f), 0, req }
#define LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const tl_attr_spec A_CONST[] = {SHAPE(value_shape, false)};
static const tl_attr_spec A_BROADCAST[] = {SHAPE(from_shape, true), SHAPE(to_shape, true)};
static const tl_attr_spec A_PERMUTE[] = {NATS(perm, true)};
static const tl_attr_spec A_TRANSPOSE[] = {NAT(axis1, true), NAT(axis2, true)};
static const tl_attr_spec A_RESHAPE[] = {SHAPE(in_shape, true), SHAPE(out_shape, true)};
static const tl_attr_spec A_FLATTEN[] = {SHAPE(value_shape, true)};
static const tl_attr_spec A_AXIS[] = {NAT(axis, true)};
static const tl_attr_spec A_REDUCE[] = {NATS(axes, true), BOOL(keepdim, false)};
/* in_dim/out_dim are optional: the reader derives them from the shapes when absent. */
static const tl_attr_spec A_LINEAR[] = {NAT(in_dim, false), NAT(out_dim, false)};
static const tl_attr_spec A_CONV[] = {
    NAT(spatial_rank, true), SPATIAL(kernel, true),         SPATIAL(stride, true),
    SPATIAL(padding, true),  SPATIAL(padding_after, false), SPATIAL(dilation, false),
    NAT(groups, false),      NAT(channel_axis, true),       NAT(in_channels, true),
    NAT(out_channels, true), SPATIAL(input_spatial, false),
};
static const tl_attr_spec A_POOL[] = {
    NAT(spatial_rank, true),
    SPATIAL(kernel, true),
    SPATIAL(stride, true),
    SPATIAL(padding, true),
};
static const tl_attr_spec A_BATCHNORM[] = {NAT(channel_axis, true), NAT(channels, true), NUM(eps, true)};
static const tl_attr_spec A_LAYERNORM[] = {NAT(axis, true), NUM(eps, true)};
static const tl_attr_spec A_SEED[] = {NAT(seed, true)};
static const tl_attr_spec A_GETITEM[] = {NAT(index, true)};
static const tl_attr_spec A_MHA[] = {
    NAT(embed_dim, true), NAT(num_heads, true), BOOL(batch_first, true), BOOL(dropout_zero, true),
    NUM(scale, true),     BOOL(bias, false), /* TorchLean writes it; the projections' biases come with the payload */
};

static const tl_param_spec P_CONST[] = {{"values", "const_%lld", true}};
static const tl_param_spec P_LINEAR[] = {{"weight", "linear_%lld_W", false}, {"bias", "linear_%lld_b", false}};
static const tl_param_spec P_CONV[] = {
    {"weight", "conv2d_%lld_kernel", false},
    {"bias", "conv2d_%lld_bias", false},
};
static const tl_param_spec P_BATCHNORM[] = {
    {"gamma", "batchnorm_%lld_gamma", false},
    {"beta", "batchnorm_%lld_beta", false},
    {"mean", "batchnorm_%lld_mean", true},
    {"var", "batchnorm_%lld_var", true},
};
static const tl_param_spec P_LAYERNORM[] = {
    {"gamma", "layernorm_%lld_gamma", false},
    {"beta", "layernorm_%lld_beta", false},
};

/* lengths for the rows (NONE: no attributes / no parameters) */
#define NONE NULL
enum {
    LEN_NONE = 0,
    LEN_A_CONST = LEN(A_CONST),
    LEN_A_BROADCAST = LEN(A_BROADCAST),
    LEN_A_PERMUTE = LEN(A_PERMUTE),
    LEN_A_TRANSPOSE = LEN(A_TRANSPOSE),
    LEN_A_RESHAPE = LEN(A_RESHAPE),
    LEN_A_FLATTEN = LEN(A_FLATTEN),
    LEN_A_AXIS = LEN(A_AXIS),
    LEN_A_REDUCE = LEN(A_REDUCE),
    LEN_A_LINEAR = LEN(A_LINEAR),
    LEN_A_CONV = LEN(A_CONV),
    LEN_A_POOL = LEN(A_POOL),
    LEN_A_BATCHNORM = LEN(A_BATCHNORM),
    LEN_A_LAYERNORM = LEN(A_LAYERNORM),
    LEN_A_SEED = LEN(A_SEED),
    LEN_A_GETITEM = LEN(A_GETITEM),
    LEN_A_MHA = LEN(A_MHA),
    LEN_P_CONST = LEN(P_CONST),
    LEN_P_LINEAR = LEN(P_LINEAR),
    LEN_P_CONV = LEN(P_CONV),
    LEN_P_BATCHNORM = LEN(P_BATCHNORM),
    LEN_P_LAYERNORM = LEN(P_LAYERNORM),
};

/* One row per line of tl_ops.def. */
static const tl_op_row ROWS[TL_OP_COUNT] = {
#define TL_OP(E, TAG, FAM, MINP, MAXP, ATTRS, PARAMS, FLAGS) \
    [TL_OP_##E] = {TL_OP_##E, \
                   TAG, \
                   #FAM, \
                   TL_FAM_PTR(FAM), \
                   MINP, \
                   MAXP, \
                   ATTRS, \
                   LEN_##ATTRS, \
                   PARAMS, \
                   LEN_##PARAMS, \
                   (FLAGS), \
                   ((FLAGS)&TL_F_EXEC) != 0, \
                   ((FLAGS)&TL_F_UNARY) != 0, \
                   ((FLAGS)&TL_F_BINARY) != 0, \
                   ((FLAGS)&TL_F_ALIAS) != 0},
#include "tl_ops.def"
#undef TL_OP
};
#undef NONE

const tl_op_row *tl_op_info(tl_op op) {
    if ((int)op < 0 || op >= TL_OP_COUNT) return NULL;
    return &ROWS[op];
}

const char *tl_op_tag(tl_op op) {
    const tl_op_row *r = tl_op_info(op);
    return r ? r->tag : "?";
}

/* Older IR spellings (accepted on import, never written). */
static const struct {
    const char *tag;
    tl_op op;
} LEGACY[] = {
    {"conv2d", TL_OP_CONV},
    {"max_pool2d", TL_OP_MAX_POOL},
    {"max_pool2d_pad", TL_OP_MAX_POOL},
    {"avg_pool2d", TL_OP_AVG_POOL},
    {"avg_pool2d_pad", TL_OP_AVG_POOL},
    {"swap_first_two", TL_OP_TRANSPOSE},
    {"transpose3d_last_two", TL_OP_TRANSPOSE},
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

static const char *const ENUM_NAMES[TL_OP_COUNT] = {
#define TL_OP(E, TAG, FAM, MINP, MAXP, ATTRS, PARAMS, FLAGS) [TL_OP_##E] = #E,
#include "tl_ops.def"
#undef TL_OP
};

static const char *attr_kind_name(tl_attr_kind k) {
    switch (k) {
    case TL_AK_NAT: return "nat";
    case TL_AK_NATS: return "nats";
    case TL_AK_SPATIAL: return "spatial";
    case TL_AK_SHAPE: return "shape";
    case TL_AK_BOOL: return "bool";
    case TL_AK_NUM: return "num";
    }
    return "?";
}

void tl_op_table_json(FILE *out) {
    static const struct {
        int flag;
        const char *name;
    } FLAGS[] = {
        {TL_F_EXEC, "exec"},   {TL_F_UNARY, "unary"},     {TL_F_BINARY, "binary"},
        {TL_F_ALIAS, "alias"}, {TL_F_INPLACE, "inplace"},
    };
    fprintf(out, "[\n");
    for (int i = 0; i < TL_OP_COUNT; i++) {
        const tl_op_row *r = &ROWS[i];
        fprintf(out,
                "  {\"tag\": \"%s\", \"enum\": \"%s\", \"family\": \"%s\", \"min_parents\": %d, "
                "\"max_parents\": %d, \"flags\": [",
                r->tag, ENUM_NAMES[i], r->family, r->min_parents, r->max_parents);
        int nf = 0;
        for (size_t f = 0; f < sizeof FLAGS / sizeof FLAGS[0]; f++)
            if (r->flags & FLAGS[f].flag) fprintf(out, "%s\"%s\"", nf++ ? ", " : "", FLAGS[f].name);
        fprintf(out, "], \"attrs\": [");
        for (int a = 0; a < r->n_attrs; a++)
            fprintf(out, "%s{\"name\": \"%s\", \"kind\": \"%s\", \"required\": %s}", a ? ", " : "", r->attrs[a].name,
                    attr_kind_name(r->attrs[a].kind), r->attrs[a].required ? "true" : "false");
        fprintf(out, "], \"params\": [");
        for (int p = 0; p < r->n_params; p++)
            fprintf(out, "%s{\"inline_key\": \"%s\", \"name\": \"%s\", \"buffer\": %s}", p ? ", " : "",
                    r->params[p].inline_key, r->params[p].name_fmt, r->params[p].buffer ? "true" : "false");
        fprintf(out, "], \"legacy\": [");
        int nl = 0;
        for (size_t l = 0; l < sizeof LEGACY / sizeof LEGACY[0]; l++)
            if ((int)LEGACY[l].op == i) fprintf(out, "%s\"%s\"", nl++ ? ", " : "", LEGACY[l].tag);
        fprintf(out, "]}%s\n", i + 1 < TL_OP_COUNT ? "," : "");
    }
    fprintf(out, "]\n");
}
