/* tl_emit.h - code emitters: IR + params -> PyTorch nn.Module source; the capture script. */
#ifndef TL_EMIT_H
#define TL_EMIT_H
#include <stdbool.h>
#include <stdio.h>
#include "tl_graph.h"

typedef enum { TL_WEIGHTS_EXTERNAL = 0, TL_WEIGHTS_INLINE = 1 } tl_weights_mode;

typedef struct tl_emit_opts {
    const char *class_name;  /* default "TorchLeanModel" */
    const char *dtype;       /* torch dtype expression, default "torch.float32" */
    bool training_skeleton;  /* append a small train step + smoke test */
    bool learnable_consts;   /* consts as nn.Parameter instead of buffers */
    bool compress_broadcast; /* a const that is one row repeated -> learnable vector expanded */
    tl_weights_mode weights; /* inline literals or load params.bin with safetensors */
    const char *params_path; /* external: default path written into the script */
} tl_emit_opts;

void tl_emit_opts_default(tl_emit_opts *o);
/* Writes the whole module to `out` only on success (built in memory first: never a partial file). */
int tl_emit_pytorch(const tl_graph *g, const tl_emit_opts *o, FILE *out, tl_err *err);

typedef struct tl_capture_opts {
    const char *function_name; /* helper function name, default "export_torchlean_graph" */
    bool prefer_torch_export;  /* default true; false = FX symbolic tracing first */
    bool debug_targets;        /* write the raw PyTorch target string per node */
} tl_capture_opts;

void tl_capture_opts_default(tl_capture_opts *o);
/* Prints the capture script (scripts/export_torchlean_graph.py embedded at build time); with
 * default options the output equals that file byte for byte. */
int tl_emit_capture_script(const tl_capture_opts *o, FILE *out, tl_err *err);

#endif
