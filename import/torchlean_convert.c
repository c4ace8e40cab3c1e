/* torchlean_convert.c - tlrt's small form (graph.json + params.bin) <-> TorchLean's inline form.
 *
 * To inline: load + bind + require every payload, write with tl_graph_save_json(inline), then
 * hold the written file to tl_torchlean_check: a writer that produced something TorchLean cannot
 * read is a tlrt bug (TL_ERR_INTERNAL), never a silent bad artifact.
 * Back: load the inline graph (dense grouped conv weights are packed on read), then write the small
 * JSON and params.bin. params.bin stays PyTorch's packed state_dict layout: the emitted module's
 * state_dict and safetensors readers expect it, and it is `groups` times smaller. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tl_import.h"
#include "tl_torchlean.h"

int tl_torchlean_to_inline(const char *graph_path, const char *params_path, const char *out_path, tl_err *err) {
    tl_graph *g = NULL;
    if (tl_graph_load_json(graph_path, &g, err)) return -1;
    int rc = -1;
    if (params_path && tl_params_load(g, params_path, err)) goto done;
    if (tl_params_check_complete(g, params_path ? params_path : graph_path, err)) goto done;
    if (tl_graph_save_json(g, out_path, true, err)) goto done;
    tl_torchlean_issues is;
    tl_err ce = {0};
    if (tl_torchlean_check_file(out_path, &is, &ce)) {
        if (ce.kind == TL_ERR_OOM || ce.kind == TL_ERR_IO) {
            if (err) *err = ce;
        } else {
            tl_errk(err, TL_ERR_INTERNAL, "%s: tlrt wrote a graph TorchLean would not read: %s", out_path,
                    is.n ? is.line[0] : ce.msg);
        }
        tl_torchlean_issues_free(&is);
        goto done;
    }
    rc = 0;
done:
    tl_graph_free(g);
    return rc;
}

int tl_torchlean_from_inline(const char *inline_path, const char *graph_out, const char *params_out, tl_err *err) {
    tl_graph *g = NULL;
    if (tl_graph_load_json(inline_path, &g, err)) return -1;
    int rc = -1;
    if (tl_params_check_complete(g, inline_path, err)) goto done;
    if (tl_graph_save_json(g, graph_out, false, err)) goto done;
    if (tl_params_save(g, params_out, err)) goto done;
    rc = 0;
done:
    tl_graph_free(g);
    return rc;
}
