/* tl_graph.h - the in-memory torchlean.ir.v1 graph and the checks every stage relies on.
 * Ownership: a tl_graph owns its nodes, each node its parent/tuple arrays, target string and
 * bound parameter tensors (tl_graph_free releases everything). A tl_tensor owns its data when
 * `owned` (else it borrows it, e.g. from a buffer that outlives the tensor). Graphs are built by
 * tl_import.h and read-only afterwards (a tl_model shares it between sessions). */
#ifndef TL_GRAPH_H
#define TL_GRAPH_H
#include <stdbool.h>
#include <stdint.h>
#include "tl_err.h"
#include "tl_ops.h"
#include "tl_shape.h"

/* A float32 tensor (parameters, inputs, outputs). Row-major, contiguous. */
typedef struct tl_tensor {
    tl_shape shape;
    float *data;
    bool owned; /* data was malloc'ed by the tensor (else it borrows, e.g. an mmap) */
    /* the source's exact values when the source is wider than float32 (an F64 safetensors tensor,
     * inline JSON numbers): owned, freed by tl_tensor_free; NULL when `data` is exact. A float64
     * session reads it (else widens `data`, which is exact). */
    double *data64;
} tl_tensor;

typedef struct tl_node {
    int64_t id;
    tl_op op;
    int n_parents;
    int64_t *parents;
    tl_shape shape; /* declared output shape (tensor-valued nodes) */
    bool is_tuple;  /* value_kind == "tuple" */
    int n_tuple;
    tl_shape *tuple_shapes;
    tl_attrs a;
    tl_tensor *param[TL_MAX_PARAMS]; /* slots of the op row's params; NULL until bound */
    char *target;                    /* optional debug field: raw PyTorch target string */
    /* Only meaningful when the graph is `renumbered`: >= 0 is the node's id in the file it was
     * read from (params.bin names and error messages use it); < 0 marks a node the tuple
     * lowering generated from the file's node -1 - wire_id (its payloads are that node's). */
    int64_t wire_id;
    int8_t wire_part; /* a linear the lowering generated: its projection, 0 q, 1 k, 2 v, 3 out */
} tl_node;

typedef struct tl_graph {
    char *path; /* file name used in error messages */
    int64_t n_nodes;
    tl_node *nodes;
    int64_t input_id;
    int n_outputs;
    int64_t *output_ids;
    bool has_inline_params; /* any payload came from the JSON itself (TorchLean style) */
    bool renumbered;        /* tl_mha_lower dropped tuple nodes and renumbered `id`s (see wire_id) */
} tl_graph;

void tl_graph_free(tl_graph *g);
/* tl_errf with the graph's file name first: "graph.json: <message>". Returns -1. */
int tl_graph_errf(const tl_graph *g, tl_err *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void tl_tensor_free(tl_tensor *t);
tl_tensor *tl_tensor_new(const tl_shape *s); /* zeroed, owned; NULL on OOM */

/* Infer the output shape of node `id` from its parents' declared shapes and its attributes.
 * Error message names "node[id]" and the field at fault (no file prefix). */
int tl_infer_shape(const tl_graph *g, int64_t id, tl_shape *out, tl_err *err);

/* Full structural validation (id discipline, topological order, arity, shapes, exactly one input
 * which is input_id, outputs exist, tuples only through tuple_getitem, executable tags).
 * Messages are prefixed with g->path: "graph.json: node[7]: ...". */
int tl_graph_validate(const tl_graph *g, tl_err *err);

/* Shape a parameter slot must have, from the node's attributes. */
int tl_param_shape(const tl_node *n, int slot, tl_shape *out);
/* params.bin / state_dict name of a parameter slot, e.g. "linear_3_W". */
void tl_param_name(const tl_node *n, int slot, char *buf, size_t len);
/* The same name for another node id. */
void tl_param_name_as(const tl_node *n, int64_t id, int slot, char *buf, size_t len);
/* The name params.bin gives the slot in the file the graph was read from: tl_param_name with the
 * file's node id; for the projections the tuple lowering generates from multihead_attention node
 * K, "multihead_attention_K_q_weight" ... "multihead_attention_K_out_bias" (TorchLean's inline
 * field names); "" for a slot no params.bin tensor can fill (the lowering's scale constant). */
void tl_param_file_name(const tl_graph *g, const tl_node *n, int slot, char *buf, size_t len);
/* The id node `n` has in the file the graph was read from (its own id unless the graph is
 * renumbered; for a node the tuple lowering generated, the id of the node it came from). */
int64_t tl_node_file_id(const tl_graph *g, const tl_node *n);

#endif
