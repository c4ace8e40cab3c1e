/* tl_torchlean.h - conformance with TorchLean's own importer, both ways.
 *
 * TorchLean (lean-dojo/TorchLean, NN/Runtime/PyTorch/Import/TorchExport.lean: parseGraph,
 * parseOpKind, parsePayload) is stricter than tlrt's reader: tlrt reads older spellings, the small
 * JSON + params.bin form and PyTorch's packed grouped-conv weights; TorchLean reads none of them.
 * This header holds
 *   - the grouped-conv weight layouts: TorchLean's inline `weight` is DENSE block-diagonal
 *     [out_channels, in_channels, kernel...] (zeros off the group blocks); tlrt keeps PyTorch's
 *     packed [out_channels, in_channels / groups, kernel...] internally and in params.bin;
 *   - tl_torchlean_check: every place TorchLean's importer would reject or misread a graph file,
 *     all at once, one line each ("graph.json: node[3].keepdim: missing (...)");
 *   - the converters between tlrt's small form (graph.json + params.bin) and TorchLean's inline
 *     form (one graph JSON with every payload inline).
 * Ownership: tensors returned here are the caller's (tl_tensor_free); a tl_torchlean_issues list
 * is the caller's after the call (tl_torchlean_issues_free), also when the call fails. */
#ifndef TL_TORCHLEAN_H
#define TL_TORCHLEAN_H
#include <stddef.h>
#include <stdio.h>
#include "tl_graph.h"

/* ---- grouped / depthwise conv weights ---- */
/* Dense TorchLean shape [out_channels, in_channels, kernel...] of conv node n's weight. */
int tl_conv_dense_shape(const tl_node *n, tl_shape *out);
/* If *t is a conv weight in the dense layout and n->a.groups > 1: check every off-block entry is
 * exactly 0 and replace *t by its packed [out, in/groups, k...] copy (the old tensor is freed).
 * Any other shape is left alone (the caller's shape check reports it). On a nonzero off-block
 * entry: -1 with "<where>: dense grouped weight (groups G) has nonzero off-block entry V at
 * [o, i, k...] (output channel o reads input channels a..b only)"; `where` names file, node and
 * field, e.g. "graph.json: node[1].weight". */
int tl_conv_weight_unpack_dense(const tl_node *n, tl_tensor **t, const char *where, tl_err *err);
/* Dense block-diagonal copy of a packed conv weight (zeros off the blocks); NULL on OOM. */
tl_tensor *tl_conv_weight_dense(const tl_node *n, const tl_tensor *packed);

/* ---- the strict check ---- */
typedef struct tl_torchlean_issues {
    int n;       /* number of lines */
    char **line; /* n malloc'ed one-line messages, each "<file>: <where>: <what> (<why>)" */
} tl_torchlean_issues;
/* Check the graph file (or buffer) against TorchLean's importer. 0: TorchLean reads it as it is
 * (out->n == 0). -1: out holds every line (out may be NULL: then only err), and err a summary:
 *   "graph.json: not TorchLean-compatible: 3 problems (first: node[3].keepdim: missing ...)"
 * A file that cannot be read or parsed as JSON is one line (the reader's error). */
int tl_torchlean_check_file(const char *path, tl_torchlean_issues *out, tl_err *err);
int tl_torchlean_check_buf(const char *buf, size_t len, const char *name, tl_torchlean_issues *out, tl_err *err);
/* The same on an already parsed document (cJSON root; `name` is used in the lines). */
struct cJSON;
int tl_torchlean_check_json(const struct cJSON *root, const char *name, tl_torchlean_issues *out, tl_err *err);
void tl_torchlean_issues_free(tl_torchlean_issues *issues);
/* `tlinfo --torchlean`: check the file and print every line to `out` (or "<file>: TorchLean-compatible"). */
int tl_torchlean_check_print(const char *path, FILE *out, tl_err *err);

/* ---- converters ---- */
/* `tlemit torchlean graph.json [params.bin] -o out.json`: load the graph, bind params.bin (NULL:
 * the graph's inline payloads), require every payload, write TorchLean's inline form (dense grouped
 * conv weights, const values flat) and hold the written text to tl_torchlean_check. */
int tl_torchlean_to_inline(const char *graph_path, const char *params_path, const char *out_path, tl_err *err);
/* The way back: an inline graph (TorchLean's or tlrt's) -> tlrt's small graph JSON + params.bin
 * (packed conv weights: PyTorch's state_dict layout). */
int tl_torchlean_from_inline(const char *inline_path, const char *graph_out, const char *params_out, tl_err *err);

#endif
