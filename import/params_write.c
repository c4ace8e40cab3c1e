/* params_write.c - write every bound parameter slot of a graph as a safetensors params.bin.
 * Tensors are F32, sorted by name, laid out back to back (safetensors allows no gaps); the JSON
 * header is padded with spaces so the data section starts 8-byte aligned, which keeps every F32
 * tensor 4-byte aligned. The file is written atomically (temp file + fsync + rename).
 * Python reads it with safetensors.numpy.load_file / safetensors.torch.load_file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json_text.h"
#include "tl_import.h"

typedef struct {
    char name[96];
    const tl_tensor *t;
    int64_t node_id;
} out_tensor;

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const out_tensor *)a)->name, ((const out_tensor *)b)->name);
}

int tl_params_save(const tl_graph *g, const char *path, tl_err *err) {
    size_t n = 0, cap = 0;
    out_tensor *v = NULL;
    for (int64_t i = 0; i < g->n_nodes; i++) {
        const tl_node *nd = &g->nodes[i];
        const tl_op_row *row = tl_op_info(nd->op);
        if (!row) continue;
        for (int s = 0; s < row->n_params && s < TL_MAX_PARAMS; s++) {
            if (!nd->param[s]) continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                out_tensor *nv = realloc(v, cap * sizeof *v);
                if (!nv) {
                    free(v);
                    return tl_erroom(err, "%s: out of memory", path);
                }
                v = nv;
            }
            tl_param_name(nd, s, v[n].name, sizeof v[n].name);
            v[n].t = nd->param[s];
            v[n].node_id = nd->id;
            n++;
        }
    }
    if (n > 1) qsort(v, n, sizeof *v, cmp_name);
    tl_strbuf h = TL_STRBUF_INIT;
    tl_sb_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t numel;
        if (i > 0 && strcmp(v[i].name, v[i - 1].name) == 0) {
            tl_errf(err, "%s: two parameters are both named \"%s\"", path, v[i].name);
            free(v);
            tl_sb_free(&h);
            return -1;
        }
        if (tl_shape_numel_checked(&v[i].t->shape, &numel) != 0) {
            tl_errf(err, "%s: tensor \"%s\" of node[%lld] has an invalid shape", path, v[i].name,
                    (long long)v[i].node_id);
            free(v);
            tl_sb_free(&h);
            return -1;
        }
        tl_sb_putc(&h, ',');
        tl_sb_json_string(&h, v[i].name);
        tl_sb_printf(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < v[i].t->shape.rank; d++)
            tl_sb_printf(&h, "%s%lld", d ? "," : "", (long long)v[i].t->shape.dim[d]);
        uint64_t end = off + (uint64_t)numel * 4;
        tl_sb_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)end);
        off = end;
    }
    tl_sb_putc(&h, '}');
    while ((8 + h.n) % 8 != 0 && !h.oom) tl_sb_putc(&h, ' ');
    if (h.oom) {
        free(v);
        tl_sb_free(&h);
        return tl_erroom(err, "%s: out of memory", path);
    }
    size_t nparts = n + 2;
    const void **bufs = malloc(nparts * sizeof *bufs);
    size_t *lens = malloc(nparts * sizeof *lens);
    if (!bufs || !lens) {
        free(bufs);
        free(lens);
        free(v);
        tl_sb_free(&h);
        return tl_erroom(err, "%s: out of memory", path);
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(((uint64_t)h.n >> (8 * i)) & 0xff);
    bufs[0] = len8;
    lens[0] = 8;
    bufs[1] = h.p;
    lens[1] = h.n;
    for (size_t i = 0; i < n; i++) {
        bufs[2 + i] = v[i].t->data;
        lens[2 + i] = (size_t)tl_shape_numel(&v[i].t->shape) * 4;
    }
    int rc = tl_write_file_atomic(path, (int)nparts, (const void *const *)bufs, lens, err);
    free(bufs);
    free(lens);
    free(v);
    tl_sb_free(&h);
    return rc;
}
