/* test_graph_json.c - the torchlean.ir.v1 reader and writer: fields, defaults, legacy spellings,
 * inline payloads, MHA lowering, exact error messages, save/load round trips, and a
 * deterministic mutation sweep (never a crash; always a one-line message naming the file). */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tl_import.h"

#include "tl_check.h"
#include "tl_test_json.h"

static void expect_err_at(const char *json_sq, const char *want, int line) {
    tl_err e;
    tl_graph *g = parse(json_sq, &e);
    if (g) {
        failed++;
        fprintf(stderr, "%s:%d: parse succeeded, want error '%s'\n", __FILE__, line, want);
        tl_graph_free(g);
        return;
    }
    char *w = dq(want);
    if (strcmp(e.msg, w)) {
        failed++;
        fprintf(stderr, "%s:%d: error\n  got  '%s'\n  want '%s'\n", __FILE__, line, e.msg, w);
    } else {
        passed++;
    }
    free(w);
}
#define EXPECT_ERR(j, w) expect_err_at(j, w, __LINE__)

static tl_graph *expect_ok_at(const char *json_sq, int line) {
    tl_err e;
    tl_graph *g = parse(json_sq, &e);
    if (!g) {
        failed++;
        fprintf(stderr, "%s:%d: parse failed: %s\n", __FILE__, line, e.msg);
    } else {
        passed++;
    }
    return g;
}
#define EXPECT_OK(j) expect_ok_at(j, __LINE__)

#define HEAD "{'format': 'torchlean.ir.v1', 'input_id': 0, 'output_ids': [%d], 'nodes': [%s]}"
static char doc[1 << 16];
/* a document with output id `out` and the given node list */
static const char *D(int out, const char *nodes) {
    snprintf(doc, sizeof doc, HEAD, out, nodes);
    return doc;
}
#define IN(shape) "{'id': 0, 'kind': 'input', 'parents': [], 'shape': " shape "}"

static bool shape_is(const tl_shape *s, int rank, ...) {
    va_list ap;
    va_start(ap, rank);
    bool ok = s->rank == rank;
    for (int i = 0; i < rank; i++) {
        int64_t d = va_arg(ap, int64_t);
        if (ok && s->dim[i] != d) ok = false;
    }
    va_end(ap);
    return ok;
}
#define L(x) ((int64_t)(x))

static void test_basic_and_payloads(void) {
    tl_graph *g = EXPECT_OK(
        D(2,
          IN("[1, 3]") ",{'id': 1, 'kind': 'linear', 'parents': [0], 'shape': [1, 2],"
                       "'weight': [[1, 2, 3], [4, 5, 6.5]], 'bias': [0.5, -1], 'target': 'aten.linear',"
                       "'whatever': {'nested': [1, 2]}},"
                       "{'id': 2, 'kind': 'relu', 'parents': [1], 'shape': [1, 2]}"));
    if (g) {
        CHECK(g->n_nodes == 3 && g->input_id == 0 && g->n_outputs == 1 && g->output_ids[0] == 2);
        tl_node *l = &g->nodes[1];
        CHECK(l->op == TL_OP_LINEAR && l->a.in_dim == 3 && l->a.out_dim == 2);
        CHECK(l->param[0] && shape_is(&l->param[0]->shape, 2, L(2), L(3)) && l->param[0]->data[5] == 6.5f &&
              l->param[0]->data[1] == 2.0f);
        CHECK(l->param[1] && shape_is(&l->param[1]->shape, 1, L(2)) && l->param[1]->data[1] == -1.0f);
        CHECK(l->target && !strcmp(l->target, "aten.linear"));
        CHECK(g->has_inline_params);
        tl_err e;
        CHECK(tl_params_check_complete(g, "t.json", &e) == 0);
        tl_graph_free(g);
    }
    /* const values: flat (TorchLean), nested, scalar; value_shape defaults to shape */
    g = EXPECT_OK(
        D(3,
          IN("[2, 2]") ",{'id': 1, 'kind': 'const', 'parents': [], 'shape': [2, 2], 'values': [1, 2, 3, 4]},"
                       "{'id': 2, 'kind': 'const', 'parents': [], 'shape': [2, 2], 'values': [[5, 6], [7, 8]]},"
                       "{'id': 3, 'kind': 'add', 'parents': [1, 2], 'shape': [2, 2]},"
                       "{'id': 4, 'kind': 'const', 'parents': [], 'shape': [], 'values': [0.25]},"
                       "{'id': 5, 'kind': 'const', 'parents': [], 'shape': [], 'values': 0.5}"));
    if (g) {
        CHECK(shape_is(&g->nodes[1].a.value_shape, 2, L(2), L(2)));
        CHECK(shape_is(&g->nodes[1].param[0]->shape, 2, L(2), L(2)) && g->nodes[1].param[0]->data[3] == 4.0f);
        CHECK(shape_is(&g->nodes[2].param[0]->shape, 2, L(2), L(2)) && g->nodes[2].param[0]->data[2] == 7.0f);
        CHECK(g->nodes[4].param[0]->shape.rank == 0 && g->nodes[4].param[0]->data[0] == 0.25f);
        CHECK(g->nodes[5].param[0]->shape.rank == 0 && g->nodes[5].param[0]->data[0] == 0.5f);
        tl_graph_free(g);
    }
    /* no payload: small form */
    g = EXPECT_OK(
        D(1,
          IN("[1, 3]") ",{'id': 1, 'kind': 'linear', 'parents': [0], 'shape': [1, 2], 'in_dim': 3, 'out_dim': 2}"));
    if (g) {
        CHECK(!g->has_inline_params && !g->nodes[1].param[0]);
        tl_graph_free(g);
    }
}

static void test_defaults_and_legacy(void) {
    tl_graph *g = EXPECT_OK(
        D(4,
          IN("[1, 2, 5, 5]") ","
                             "{'id': 1, 'kind': 'conv', 'parents': [0], 'shape': [1, 4, 5, 5], 'spatial_rank': 2, "
                             "'kernel': [3, 3],"
                             " 'stride': [1, 1], 'padding': [1, 1], 'channel_axis': 1, 'in_channels': 2, "
                             "'out_channels': 4},"
                             "{'id': 2, 'kind': 'reduce_sum', 'parents': [1], 'shape': [1, 5, 5], 'axes': [1]},"
                             "{'id': 3, 'kind': 'reduce_mean', 'parents': [2], 'shape': [1, 5], 'axis': 2},"
                             "{'id': 4, 'kind': 'swap_first_two', 'parents': [3], 'shape': [5, 1]}"));
    if (g) {
        const tl_attrs *a = &g->nodes[1].a;
        CHECK(a->groups == 1 && a->dilation[0] == 1 && a->dilation[1] == 1);
        CHECK(a->padding_after[0] == 1 && a->padding_after[1] == 1);
        CHECK(a->input_spatial[0] == 5 && a->input_spatial[1] == 5);
        CHECK(!g->nodes[2].a.keepdim && g->nodes[2].a.axes_n == 1);
        CHECK(g->nodes[3].a.axes_n == 1 && g->nodes[3].a.axes[0] == 2);
        CHECK(g->nodes[4].op == TL_OP_TRANSPOSE && g->nodes[4].a.axis1 == 0 && g->nodes[4].a.axis2 == 1);
        tl_graph_free(g);
    }
    /* old IR: conv2d / *_pool2d(_pad) / transpose3d_last_two / output_id */
    g = EXPECT_OK("{'format': 'torchlean.ir.v1', 'input_id': 0, 'output_id': 4, 'nodes': [" IN(
        "[3, 8, 8]") ","
                     "{'id': 1, 'kind': 'conv2d', 'parents': [0], 'shape': [4, 4, 4], 'inC': 3, 'outC': 4, 'kH': 3, "
                     "'kW': 3, 'stride': 2, 'padding': 1},"
                     "{'id': 2, 'kind': 'max_pool2d_pad', 'parents': [1], 'shape': [4, 5, 5], 'kH': 2, 'kW': 2, "
                     "'stride': 1, 'padding': 1},"
                     "{'id': 3, 'kind': 'avg_pool2d', 'parents': [2], 'shape': [4, 3, 4], 'kernel_h': 3, 'kernel_w': "
                     "2, 'stride': [1, 1]},"
                     "{'id': 4, 'kind': 'transpose3d_last_two', 'parents': [3], 'shape': [4, 4, 3]}]}");
    if (g) {
        const tl_node *c = &g->nodes[1];
        CHECK(c->op == TL_OP_CONV && c->a.spatial_rank == 2 && c->a.channel_axis == 0 && c->a.in_channels == 3 &&
              c->a.out_channels == 4 && c->a.kernel[1] == 3 && c->a.stride[1] == 2 && c->a.padding_after[1] == 1 &&
              c->a.groups == 1 && c->a.dilation[1] == 1 && c->a.input_spatial[0] == 8);
        CHECK(g->nodes[2].op == TL_OP_MAX_POOL && g->nodes[2].a.padding[0] == 1);
        CHECK(g->nodes[3].op == TL_OP_AVG_POOL && g->nodes[3].a.padding[0] == 0 && g->nodes[3].a.kernel[1] == 2);
        CHECK(g->nodes[4].op == TL_OP_TRANSPOSE && g->nodes[4].a.axis1 == 1 && g->nodes[4].a.axis2 == 2);
        CHECK(g->n_outputs == 1 && g->output_ids[0] == 4);
        tl_graph_free(g);
    }
    /* legacy conv2d on an NCHW input uses channel axis 1 */
    g = EXPECT_OK(
        D(1,
          IN("[2, 3, 8, 8]") ",{'id': 1, 'kind': 'conv2d', 'parents': [0], 'shape': [2, 4, 6, 6],"
                             "'in_channels': 3, 'out_channels': 4, 'kH': 3, 'kW': 3, 'stride': 1, 'padding': 0}"));
    if (g) {
        CHECK(g->nodes[1].a.channel_axis == 1);
        tl_graph_free(g);
    }
    EXPECT_ERR(D(1,
                 IN("[3, 8, 8]") ",{'id': 1, 'kind': 'conv2d', 'parents': [0], 'shape': [4, 6, 6], 'inC': 3, 'outC': "
                                 "4, 'kW': 3, 'stride': 1, 'padding': 0}"),
               "t.json: node[1]: missing field 'kH' (or 'kernel_h')");
    EXPECT_ERR(D(1,
                 IN("[3, 8, 8]") ",{'id': 1, 'kind': 'max_pool2d', 'parents': [0], 'shape': [3, 4, 4], 'kH': 2, "
                                 "'kW': 2, 'stride': [2, 2, 2]}"),
               "t.json: node[1].stride: expected at most 2 entries, got 3");
    EXPECT_ERR(D(1,
                 IN("[3, 8, 8]") ",{'id': 1, 'kind': 'max_pool2d', 'parents': [0], 'shape': [3, 4, 4], 'kH': 2, "
                                 "'kW': 2, 'stride': 'x'}"),
               "t.json: node[1].stride: expected a natural or 2 naturals, got 'x'");
}

static void test_errors(void) {
    EXPECT_ERR("{'format': 'torchlean.ir.v1', ", "t.json: invalid JSON: unexpected end of input");
    EXPECT_ERR("{'format': 'torchlean.ir.v1',\n  'x': nope}", "t.json: invalid JSON at line 2, column 8");
    EXPECT_ERR("{} []", "t.json: invalid JSON: trailing data at line 1, column 4");
    EXPECT_ERR("[1, 2]", "t.json: root: expected object, got [1,2]");
    EXPECT_ERR("{'input_id': 0}", "t.json: missing field 'format'");
    EXPECT_ERR("{'format': 2}", "t.json: format: expected string, got 2");
    EXPECT_ERR("{'format': 'torchlean.ir.v2'}",
               "t.json: format: unsupported format 'torchlean.ir.v2' (expected 'torchlean.ir.v1')");
    EXPECT_ERR("{'format': 'torchlean.ir.v1', 'input_id': -1}", "t.json: input_id: expected natural number, got -1");
    EXPECT_ERR("{'format': 'torchlean.ir.v1', 'input_id': 1.5}",
               "t.json: input_id: expected natural number, got 1.5");
    EXPECT_ERR("{'format': 'torchlean.ir.v1', 'input_id': 9007199254740992}",
               "t.json: input_id: expected natural number, got 9007199254740992");
    EXPECT_ERR("{'format': 'torchlean.ir.v1', 'input_id': 0}", "t.json: missing field 'output_ids'");
    EXPECT_ERR("{'format': 'torchlean.ir.v1', 'input_id': 0, 'output_ids': []}",
               "t.json: output_ids must contain at least one output");
    EXPECT_ERR("{'format': 'torchlean.ir.v1', 'input_id': 0, 'output_ids': [true]}",
               "t.json: output_ids: expected array of naturals, got [true]");
    EXPECT_ERR("{'format': 'torchlean.ir.v1', 'input_id': 0, 'output_ids': [0], 'nodes': {}}",
               "t.json: nodes: expected array, got {}");
    EXPECT_ERR(D(0, ""), "t.json: graph contains no nodes");
    EXPECT_ERR(D(0, "7"), "t.json: nodes[0]: expected object, got 7");
    EXPECT_ERR(D(0, "{'kind': 'input', 'parents': [], 'shape': []}"), "t.json: node[0]: missing field 'id'");
    EXPECT_ERR(D(0, "{'id': 0, 'parents': [], 'shape': []}"), "t.json: node[0]: missing field 'kind'");
    EXPECT_ERR(D(0, "{'id': 0, 'kind': 5, 'parents': [], 'shape': []}"),
               "t.json: node[0].kind: expected string, got 5");
    EXPECT_ERR(D(0, "{'id': 0, 'kind': 'foo', 'parents': [], 'shape': []}"),
               "t.json: node[0].kind: unknown op tag 'foo'");
    EXPECT_ERR(D(0, "{'id': 0, 'kind': 'input', 'shape': []}"), "t.json: node[0]: missing field 'parents'");
    EXPECT_ERR(D(0, "{'id': 0, 'kind': 'input', 'parents': ['a'], 'shape': []}"),
               "t.json: node[0].parents: expected array of naturals, got ['a']");
    EXPECT_ERR(D(0, "{'id': 0, 'kind': 'input', 'parents': []}"), "t.json: node[0]: missing field 'shape'");
    EXPECT_ERR(D(0, "{'id': 0, 'kind': 'input', 'parents': [], 'shape': [1, -2]}"),
               "t.json: node[0].shape: expected array of naturals, got [1,-2]");
    EXPECT_ERR(D(0, "{'id': 0, 'kind': 'input', 'parents': [], 'shape': [1,1,1,1,1,1,1,1,1]}"),
               "t.json: node[0].shape: rank 9 exceeds the maximum rank 8");
    EXPECT_ERR(D(0, "{'id': 0, 'kind': 'input', 'parents': [], 'shape': [1048576, 1048577]}"),
               "t.json: node[0].shape: element count of [1048576, 1048577] exceeds 2^40");
    EXPECT_ERR(D(0, "{'id': 0, 'kind': 'input', 'parents': [], 'shape': [], 'value_kind': 'list'}"),
               "t.json: node[0].value_kind: expected 'tensor' or 'tuple', got 'list'");
    EXPECT_ERR(D(0, "{'id': 0, 'kind': 'input', 'parents': [], 'value_kind': 'tuple'}"),
               "t.json: node[0]: missing field 'tuple_shapes'");
    EXPECT_ERR(D(0, "{'id': 0, 'kind': 'input', 'parents': [], 'value_kind': 'tuple', 'tuple_shapes': [[1], 2]}"),
               "t.json: node[0].tuple_shapes[1]: expected array of naturals, got 2");
    /* attribute kinds */
    EXPECT_ERR(D(1, IN("[2, 3]") ",{'id': 1, 'kind': 'permute', 'parents': [0], 'shape': [3, 2], 'perm': 'x'}"),
               "t.json: node[1].perm: expected array of naturals, got 'x'");
    EXPECT_ERR(D(1, IN("[2, 3]") ",{'id': 1, 'kind': 'permute', 'parents': [0], 'shape': [3, 2]}"),
               "t.json: node[1]: missing field 'perm'");
    EXPECT_ERR(D(1,
                 IN("[2, 3]") ",{'id': 1, 'kind': 'permute', 'parents': [0], 'shape': [3, 2], 'perm': "
                              "[0,1,2,3,4,5,6,7,8]}"),
               "t.json: node[1].perm: expected at most 8 entries, got 9");
    EXPECT_ERR(D(1, IN("[2, 3]") ",{'id': 1, 'kind': 'softmax', 'parents': [0], 'shape': [2, 3], 'axis': [1]}"),
               "t.json: node[1].axis: expected natural number, got [1]");
    EXPECT_ERR(D(1,
                 IN("[2, 3]") ",{'id': 1, 'kind': 'reduce_sum', 'parents': [0], 'shape': [2], 'axes': [1], "
                              "'keepdim': 1}"),
               "t.json: node[1].keepdim: expected boolean, got 1");
    EXPECT_ERR(D(1,
                 IN("[2, 3]") ",{'id': 1, 'kind': 'layernorm', 'parents': [0], 'shape': [2, 3], 'axis': 1, 'eps': "
                              "'1e-5'}"),
               "t.json: node[1].eps: expected finite number, got '1e-5'");
    EXPECT_ERR(D(1,
                 IN("[2, 3]") ",{'id': 1, 'kind': 'reshape', 'parents': [0], 'shape': [6], 'in_shape': [2, 3], "
                              "'out_shape': {}}"),
               "t.json: node[1].out_shape: expected array of naturals, got {}");
    EXPECT_ERR(D(1,
                 IN("[1, 2, 4, 4]") ",{'id': 1, 'kind': 'max_pool', 'parents': [0], 'shape': [1, 2, 2, 2], "
                                    "'spatial_rank': 2, 'kernel': [2], 'stride': [2, 2], 'padding': [0, 0]}"),
               "t.json: node[1].kernel: expected 2 entries (spatial_rank), got 1");
    EXPECT_ERR(D(1,
                 IN("[1, 2, 4, 4]") ",{'id': 1, 'kind': 'max_pool', 'parents': [0], 'shape': [1, 2, 2, 2], "
                                    "'spatial_rank': 9, 'kernel': [2], 'stride': [2, 2], 'padding': [0, 0]}"),
               "t.json: node[1].spatial_rank: 9 exceeds the maximum rank 8");
    /* structure and shapes */
    EXPECT_ERR(D(1, IN("[2]") ",{'id': 2, 'kind': 'relu', 'parents': [0], 'shape': [2]}"),
               "t.json: nodes[1]: id discipline violated: id is 2, expected 1");
    EXPECT_ERR(D(1, IN("[2]") ",{'id': 1, 'kind': 'relu', 'parents': [1], 'shape': [2]}"),
               "t.json: node[1]: parent id 1 is not < 1");
    EXPECT_ERR(D(1, IN("[2]") ",{'id': 1, 'kind': 'add', 'parents': [0], 'shape': [2]}"),
               "t.json: node[1]: bad parent count for add: expected 2..2, got 1");
    EXPECT_ERR(D(1, IN("[2]") ",{'id': 1, 'kind': 'custom', 'parents': [0], 'shape': [2]}"),
               "t.json: node[1]: custom is not executable (no runtime semantics)");
    EXPECT_ERR(D(1, IN("[1, 4]") ",{'id': 1, 'kind': 'linear', 'parents': [0], 'shape': [1, 3], 'in_dim': 5}"),
               "t.json: node[1].in_dim: input last dimension is 4 (input [1, 4]), but in_dim is 5");
    EXPECT_ERR(D(1, IN("[1, 4]") ",{'id': 1, 'kind': 'linear', 'parents': [0], 'shape': [1, 3], 'out_dim': 2}"),
               "t.json: node[1]: declared shape [1, 3] does not match inferred shape [1, 2] (linear)");
    /* payloads */
    EXPECT_ERR(D(1,
                 IN("[1, 3]") ",{'id': 1, 'kind': 'linear', 'parents': [0], 'shape': [1, 2], 'weight': [[1, 2], [3, "
                              "4], [5, 6]]}"),
               "t.json: node[1].weight: expected shape [2, 3], got [3, 2]");
    EXPECT_ERR(D(1,
                 IN("[1, 3]") ",{'id': 1, 'kind': 'linear', 'parents': [0], 'shape': [1, 2], 'weight': [[1, 2, 3], "
                              "[4, 5]]}"),
               "t.json: node[1].weight: ragged nested array: expected 3 entries at depth 1, got 2");
    EXPECT_ERR(D(1,
                 IN("[1, 3]") ",{'id': 1, 'kind': 'linear', 'parents': [0], 'shape': [1, 2], 'weight': [[1, 2, 3], "
                              "[4, 5, 'x']]}"),
               "t.json: node[1].weight: expected nested array of numbers, got 'x'");
    EXPECT_ERR(D(1, IN("[1, 3]") ",{'id': 1, 'kind': 'linear', 'parents': [0], 'shape': [1, 2], 'bias': 'zero'}"),
               "t.json: node[1].bias: expected nested array of numbers, got 'zero'");
    EXPECT_ERR(D(1, IN("[1, 3]") ",{'id': 1, 'kind': 'linear', 'parents': [0], 'shape': [1, 2], 'bias': [1e300, 0]}"),
               "t.json: node[1].bias: value 1e+300 is out of float32 range");
    EXPECT_ERR(D(1,
                 IN("[1, 3]") ",{'id': 1, 'kind': 'linear', 'parents': [0], 'shape': [1, 2], 'bias': "
                              "[[[[[[[[[1]]]]]]]]]}"),
               "t.json: node[1].bias: nested deeper than 8 levels");
    EXPECT_ERR(D(1, IN("[2, 2]") ",{'id': 1, 'kind': 'const', 'parents': [], 'shape': [2, 2], 'values': [1, 2, 3]}"),
               "t.json: node[1].values: expected shape [2, 2], got [3]");
    EXPECT_ERR(D(1,
                 IN("[2, 2]") ",{'id': 1, 'kind': 'layernorm', 'parents': [0], 'shape': [2, 2], 'axis': 1, 'eps': "
                              "1e-5, 'gamma': [1, 1, 1]}"),
               "t.json: node[1].gamma: expected shape [2], got [3]");
    /* a long offending value is shown truncated */
    EXPECT_ERR(D(1,
                 IN("[2, 3]") ",{'id': 1, 'kind': 'permute', 'parents': [0], 'shape': [3, 2], 'perm': [0, 1, "
                              "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                              "a']}"),
               "t.json: node[1].perm: expected array of naturals, got "
               "[0,1,'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...");
}

#define MHA_NODE(extra) \
    "{'id': 1, 'kind': 'multihead_attention', 'parents': [0, 0, 0], 'value_kind': 'tuple'," \
    " 'tuple_shapes': [[1, 3, 2], [1, 3, 3]], 'embed_dim': 2, 'num_heads': 1, 'batch_first': true," \
    " 'dropout_zero': true, 'scale': 0.7071067811865476" extra "}"

static void test_mha(void) {
    tl_graph *g = EXPECT_OK(
        D(3,
          IN("[1, 3, 2]") "," MHA_NODE(
              ", 'q_weight': [[1, 0], [0, 1]], 'q_bias': [0.5, 0.25],"
              " 'out_weight': [[2, 0], [0, 2]], 'out_bias': [1, 2]") ",{'id': 2, 'kind': 'tuple_getitem', 'parents': "
                                                                     "[1], 'shape': [1, 3, 2], 'index': 0, 'target': "
                                                                     "'getitem'},"
                                                                     "{'id': 3, 'kind': 'relu', 'parents': [2], "
                                                                     "'shape': [1, 3, 2]}"));
    if (g) {
        static const tl_op want[] = {TL_OP_INPUT,     TL_OP_LINEAR, TL_OP_LINEAR, TL_OP_LINEAR,
                                     TL_OP_TRANSPOSE, TL_OP_MATMUL, TL_OP_CONST,  TL_OP_MUL_ELEM,
                                     TL_OP_SOFTMAX,   TL_OP_MATMUL, TL_OP_LINEAR, TL_OP_RELU};
        CHECK(g->n_nodes == 12);
        for (int i = 0; i < 12 && i < g->n_nodes; i++) CHECK(g->nodes[i].op == want[i] && g->nodes[i].id == i);
        if (g->n_nodes == 12) {
            CHECK(g->input_id == 0 && g->output_ids[0] == 11);
            CHECK(g->nodes[11].parents[0] == 10 && g->nodes[10].parents[0] == 9);
            CHECK(g->nodes[9].parents[0] == 8 && g->nodes[9].parents[1] == 3);
            CHECK(g->nodes[5].parents[0] == 1 && g->nodes[5].parents[1] == 4);
            CHECK(g->nodes[4].parents[0] == 2 && g->nodes[4].a.axis1 == 1 && g->nodes[4].a.axis2 == 2);
            CHECK(shape_is(&g->nodes[4].shape, 3, L(1), L(2), L(3)));
            CHECK(shape_is(&g->nodes[6].shape, 3, L(1), L(3), L(3)) && g->nodes[6].param[0] &&
                  g->nodes[6].param[0]->data[8] == (float)0.7071067811865476);
            CHECK(g->nodes[8].a.axis == 2);
            CHECK(g->nodes[1].param[0] && g->nodes[1].param[1] && g->nodes[1].param[1]->data[1] == 0.25f);
            CHECK(!g->nodes[2].param[0] && !g->nodes[3].param[0]); /* k/v from params.bin (not given) */
            CHECK(g->nodes[10].param[0] && g->nodes[10].param[0]->data[3] == 2.0f && g->nodes[10].a.in_dim == 2);
            CHECK(g->nodes[10].target && !strcmp(g->nodes[10].target, "getitem"));
            char name[64];
            tl_param_name(&g->nodes[2], 0, name, sizeof name);
            CHECK(!strcmp(name, "linear_2_W"));
        }
        tl_graph_free(g);
    }
#define MHA_DOC(extra, index) \
    D(2, \
      IN("[1, 3, 2]") "," MHA_NODE( \
          extra) ",{'id': 2, 'kind': 'tuple_getitem', 'parents': [1], 'shape': [1, 3, 2], 'index': " index "}")
    EXPECT_ERR(D(2,
                 IN("[1, 3, 2]") "," MHA_NODE(
                     "") ",{'id': 2, 'kind': 'tuple_getitem', 'parents': [1], 'shape': [1, 3, 3], 'index': 1}"),
               "t.json: node[2].index: nn.MultiheadAttention attention weights (tuple index 1) are not lowered to "
               "tensor IR");
    EXPECT_ERR(MHA_DOC(", 'q_weight': [[1, 0]]", "0"), "t.json: node[1].q_weight: expected shape [2, 2], got [1, 2]");
#define MHA_RAW(heads, bf, drop) \
    D(2, IN("[1, 3, 2]") ",{'id': 1, 'kind': 'multihead_attention', 'parents': [0, 0, 0], 'value_kind': 'tuple',"  \
         " 'tuple_shapes': [[1, 3, 2], [1, 3, 3]], 'embed_dim': 2, 'num_heads': " heads ", 'batch_first': " bf \
         ", 'dropout_zero': " drop ", 'scale': 1},"                                                       \
         "{'id': 2, 'kind': 'tuple_getitem', 'parents': [1], 'shape': [1, 3, 2], 'index': 0}")
    EXPECT_ERR(MHA_RAW("2", "true", "true"),
               "t.json: node[1]: nn.MultiheadAttention lowering supports only num_heads=1, got 2");
    EXPECT_ERR(MHA_RAW("1", "0", "true"), "t.json: node[1].batch_first: expected boolean, got 0");
    EXPECT_ERR(MHA_RAW("1", "true", "false"),
               "t.json: node[1]: nn.MultiheadAttention lowering requires dropout=0 (deterministic eval semantics)");
    EXPECT_ERR(D(2,
                 IN("[1, 3, 2]") ",{'id': 1, 'kind': 'multihead_attention', 'parents': [0, 0, 0], 'value_kind': "
                                 "'tuple',"
                                 " 'tuple_shapes': [[1, 3, 2], [1, 3, 3]], 'embed_dim': 2, 'num_heads': 1, "
                                 "'batch_first': false,"
                                 " 'dropout_zero': true, 'scale': 1},{'id': 2, 'kind': 'tuple_getitem', 'parents': "
                                 "[1], 'shape': [1, 3, 2], 'index': 0}"),
               "t.json: node[1]: nn.MultiheadAttention lowering supports only batch_first=True");
    EXPECT_ERR(D(3,
                 IN("[1, 3, 2]") ",{'id': 1, 'kind': 'relu', 'parents': [0], 'shape': [1, 3, 2]},"
                                 "{'id': 2, 'kind': 'multihead_attention', 'parents': [0, 1, 1], 'value_kind': "
                                 "'tuple',"
                                 " 'tuple_shapes': [[1, 3, 2], [1, 3, 3]], 'embed_dim': 2, 'num_heads': 1, "
                                 "'batch_first': true,"
                                 " 'dropout_zero': true, 'scale': 1},{'id': 3, 'kind': 'tuple_getitem', 'parents': "
                                 "[2], 'shape': [1, 3, 2], 'index': 0}"),
               "t.json: node[2]: nn.MultiheadAttention lowering supports self-attention only (query/key/value must "
               "be the same value)");
    EXPECT_ERR(
        D(2, IN("[1, 3, 2]") "," MHA_NODE("") ",{'id': 2, 'kind': 'relu', 'parents': [1], 'shape': [1, 3, 2]}"),
        "t.json: node[2]: parent node[1] is tuple-valued (multihead_attention); only tuple_getitem may consume it");
    EXPECT_ERR(D(1, IN("[1, 3, 2]") "," MHA_NODE("")),
               "t.json: output_ids[0]: node[1] is tuple-valued; select a component with tuple_getitem");
}

/* deep equality of two graphs (payloads compared exactly when both bound) */
static bool graphs_equal(const tl_graph *a, const tl_graph *b, bool params) {
    if (a->n_nodes != b->n_nodes || a->input_id != b->input_id || a->n_outputs != b->n_outputs) return false;
    for (int k = 0; k < a->n_outputs; k++)
        if (a->output_ids[k] != b->output_ids[k]) return false;
    for (int64_t i = 0; i < a->n_nodes; i++) {
        const tl_node *x = &a->nodes[i], *y = &b->nodes[i];
        if (x->id != y->id || x->op != y->op || x->n_parents != y->n_parents || !tl_shape_eq(&x->shape, &y->shape))
            return false;
        for (int k = 0; k < x->n_parents; k++)
            if (x->parents[k] != y->parents[k]) return false;
        if (memcmp(&x->a, &y->a, sizeof x->a) != 0) return false;
        if ((x->target == NULL) != (y->target == NULL) || (x->target && strcmp(x->target, y->target))) return false;
        for (int s = 0; s < TL_MAX_PARAMS; s++) {
            if (!params) {
                if (y->param[s]) return false;
                continue;
            }
            if ((x->param[s] == NULL) != (y->param[s] == NULL)) return false;
            if (!x->param[s]) continue;
            if (!tl_shape_eq(&x->param[s]->shape, &y->param[s]->shape)) return false;
            if (memcmp(x->param[s]->data, y->param[s]->data,
                       sizeof(float) * (size_t)tl_shape_numel(&x->param[s]->shape)))
                return false;
        }
    }
    return true;
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (b) b[n] = 0;
    fclose(f);
    return b;
}

static void test_round_trip(void) {
    const char *src = getenv("TL_SOURCE_DIR");
    static const char *const files[] = {"mlp", "cnn", "mha", "legacy_cnn"};
    char tmpdir[] = "/tmp/tl_test_gj_XXXXXX";
    if (!mkdtemp(tmpdir)) {
        failed++;
        return;
    }
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[1024], out1[1100], out2[1100];
        snprintf(path, sizeof path, "%s/tests/data/graphs/%s.json", src ? src : ".", files[f]);
        snprintf(out1, sizeof out1, "%s/%s.inline.json", tmpdir, files[f]);
        snprintf(out2, sizeof out2, "%s/%s.small.json", tmpdir, files[f]);
        tl_err e;
        tl_graph *g = NULL, *g1 = NULL, *g2 = NULL;
        if (tl_graph_load_json(path, &g, &e)) {
            failed++;
            fprintf(stderr, "load %s: %s\n", path, e.msg);
            continue;
        }
        CHECK(g->has_inline_params && tl_params_check_complete(g, path, &e) == 0);
        CHECK(tl_graph_save_json(g, out1, true, &e) == 0);
        CHECK(tl_graph_load_json(out1, &g1, &e) == 0);
        if (g1) CHECK(graphs_equal(g, g1, true));
        CHECK(tl_graph_save_json(g, out2, false, &e) == 0);
        CHECK(tl_graph_load_json(out2, &g2, &e) == 0);
        if (g2) {
            CHECK(graphs_equal(g, g2, false) && !g2->has_inline_params);
            /* the small form names every slot as unbound */
            CHECK(tl_params_check_complete(g2, out2, &e) == -1);
        }
        /* writing is deterministic: save(load(save(g))) is byte-identical */
        if (g1) {
            char out3[1200];
            snprintf(out3, sizeof out3, "%s.again", out1);
            CHECK(tl_graph_save_json(g1, out3, true, &e) == 0);
            char *t1 = read_all(out1), *t3 = read_all(out3);
            CHECK(t1 && t3 && !strcmp(t1, t3));
            CHECK(t1 && !strstr(t1, "conv2d\"") && !strstr(t1, "max_pool2d") && !strstr(t1, "swap_first_two"));
            free(t1);
            free(t3);
            unlink(out3);
        }
        tl_graph_free(g);
        tl_graph_free(g1);
        tl_graph_free(g2);
        unlink(out1);
        unlink(out2);
    }
    rmdir(tmpdir);
    tl_err e;
    tl_graph *g = NULL;
    CHECK(tl_graph_load_json("/nonexistent/graph.json", &g, &e) == -1 && g == NULL &&
          !strcmp(e.msg, "/nonexistent/graph.json: cannot open: No such file or directory"));
}

/* deterministic mutation sweep: every result is a graph or a one-line error naming the file */
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_mutations(void) {
    const char *src = getenv("TL_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/graphs/mha.json", src ? src : ".");
    char *base = read_all(path);
    CHECK(base != NULL);
    if (!base) return;
    size_t n = strlen(base);
    static const char tokens[][8] = {"[", "]", "{", "}", "\"", ",", ":", "-1", "0", "1e9", "null", "true", "9999"};
    int bad = 0, ok = 0;
    char *buf = malloc(n + 64);
    for (int it = 0; it < 3000; it++) {
        memcpy(buf, base, n + 1);
        size_t len = n;
        int muts = 1 + (int)(next() % 3);
        for (int m = 0; m < muts; m++) {
            size_t at = (size_t)(next() % len);
            const char *tk = tokens[next() % (sizeof tokens / sizeof tokens[0])];
            size_t tl = strlen(tk);
            if (next() % 2 && len + tl < n + 60) { /* insert */
                memmove(buf + at + tl, buf + at, len - at + 1);
                memcpy(buf + at, tk, tl);
                len += tl;
            } else { /* overwrite one char */
                buf[at] = tk[0];
            }
        }
        if (it % 10 == 0) len = (size_t)(next() % len); /* truncation */
        tl_graph *g = NULL;
        tl_err e;
        memset(&e, 0, sizeof e);
        if (tl_graph_parse_json(buf, len, "m.json", &g, &e) == 0) {
            ok++;
            tl_graph_free(g);
        } else if (strncmp(e.msg, "m.json: ", 8) || strchr(e.msg, '\n') || g != NULL) {
            bad++;
            if (bad < 5) fprintf(stderr, "mutation %d: bad error '%s'\n", it, e.msg);
        }
    }
    free(buf);
    free(base);
    CHECK(bad == 0);
    CHECK(ok < 3000); /* the sweep does produce rejections */
}

/* The writer's text, exactly: JSON escapes in a string field ('"', '\\', control bytes as
 * \u00XX, UTF-8 as is) and a 5000-byte target (longer than the buffer's first 4096 bytes), and
 * the target reads back unchanged. */
static void test_write_escapes(void) {
    char *tgt = malloc(5001);
    for (int i = 0; i < 5000; i++) tgt[i] = (char)('a' + i % 26);
    tgt[5000] = 0;
    size_t cap = 6000;
    char *js = malloc(cap);
    snprintf(js, cap,
             "{'format': 'torchlean.ir.v1', 'input_id': 0, 'output_ids': [1], 'nodes': ["
             "{'id': 0, 'kind': 'input', 'parents': [], 'shape': [2], 'target': 'a\\'b\\\\c\\n\\u0001\\u001f\xc3\xa9 "
             "z'},"
             "{'id': 1, 'kind': 'relu', 'parents': [0], 'shape': [2], 'target': '%s'}]}",
             tgt);
    tl_err e;
    tl_graph *g = parse(js, &e);
    CHECK(g != NULL);
    char tmpl[] = "/tmp/tl_test_gjw_XXXXXX";
    if (g && mkdtemp(tmpl)) {
        char out[64], *want = malloc(cap);
        snprintf(out, sizeof out, "%s/g.json", tmpl);
        CHECK(tl_graph_save_json(g, out, false, &e) == 0);
        char *txt = read_all(out);
        snprintf(want, cap,
                 "{\n  \"format\": \"torchlean.ir.v1\",\n  \"input_id\": 0,\n  \"output_ids\": [1],\n  \"nodes\": [\n"
                 "    {\"id\": 0, \"kind\": \"input\", \"parents\": [], \"shape\": [2], "
                 "\"target\": \"a\\\"b\\\\c\\u000a\\u0001\\u001f\xc3\xa9 z\"},\n"
                 "    {\"id\": 1, \"kind\": \"relu\", \"parents\": [0], \"shape\": [2], \"target\": \"%s\"}\n"
                 "  ]\n}\n",
                 tgt);
        CHECK(txt && !strcmp(txt, want));
        if (txt && strcmp(txt, want)) fprintf(stderr, "written:\n%.400s\n", txt);
        tl_graph *g2 = NULL;
        CHECK(tl_graph_load_json(out, &g2, &e) == 0 && g2 && g2->n_nodes == 2 &&
              !strcmp(g2->nodes[0].target, "a\"b\\c\n\x01\x1f\xc3\xa9 z") && !strcmp(g2->nodes[1].target, tgt));
        tl_graph_free(g2);
        free(txt);
        free(want);
        unlink(out);
        rmdir(tmpl);
    }
    tl_graph_free(g);
    free(js);
    free(tgt);
}

/* graph_json.c's error snippets: compact JSON, cut to cap-4 bytes plus "..." only when longer. */
char *tl_json_compact(const cJSON *v, char *buf, size_t cap);
static int compact_is(const char *json, size_t cap, const char *want) {
    cJSON *v = cJSON_Parse(json);
    char buf[256];
    memset(buf, 'Z', sizeof buf);
    tl_json_compact(v, buf, cap);
    cJSON_Delete(v);
    int ok = !strcmp(buf, want);
    if (!ok) fprintf(stderr, "tl_json_compact(%s, %zu) = '%s', want '%s'\n", json, cap, buf, want);
    return ok;
}
static void test_json_compact(void) {
    CHECK(compact_is("[1, 2, 3]", 100, "[1,2,3]"));
    CHECK(compact_is("[1, 2, 3]", 11, "[1,2,3]"));   /* 7 bytes fit in cap-4 = 7 */
    CHECK(compact_is("[1, 2, 3]", 10, "[1,2,3...")); /* 6 of 7 */
    CHECK(compact_is("\"ab\"", 8, "\"ab\""));
    CHECK(compact_is("\"abc\"", 8, "\"abc..."));
    CHECK(compact_is("[1]", 7, "")); /* too small for any snippet */
    CHECK(compact_is("\"a\\\"b\\\\c\\n\\u0001\"", 100, "\"a\\\"b\\\\c\\u000a\\u0001\""));
    CHECK(compact_is("{\"k\\\"\": [true, false, null], \"n\": [1.5, 0.1, 1e300, 123456789012345, 1e16, -0.0]}", 200,
                     "{\"k\\\"\":[true,false,null],\"n\":[1.5,0.1,1e+300,123456789012345,1e+16,0]}"));
    /* an escape is cut like any other text */
    CHECK(compact_is("\"\\u0001\\u0001\"", 10, "\"\\u000..."));
    /* deep nesting stops at depth 32; a huge array costs only its first elements */
    char deep[100] = "";
    for (int i = 0; i < 34; i++) strcat(deep, "[");
    for (int i = 0; i < 34; i++) strcat(deep, "]");
    char want[100] = "";
    for (int i = 0; i < 33; i++) strcat(want, "[");
    strcat(want, "...");
    for (int i = 0; i < 33; i++) strcat(want, "]");
    CHECK(compact_is(deep, 100, want));
    cJSON *big = cJSON_CreateArray();
    for (int i = 0; i < 200000; i++) cJSON_AddItemToArray(big, cJSON_CreateNumber(i % 10));
    char buf[88];
    tl_json_compact(big, buf, sizeof buf);
    CHECK(strlen(buf) == 87 && !strcmp(buf + 84, "...") && !strncmp(buf, "[0,1,2,3,4,5,6,7,8,9,0,1", 24));
    cJSON_Delete(big);
}

int main(void) {
    test_basic_and_payloads();
    test_defaults_and_legacy();
    test_errors();
    test_mha();
    test_round_trip();
    test_write_escapes();
    test_json_compact();
    test_mutations();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
