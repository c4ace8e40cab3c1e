/* tl_ew_chain.c - a chain of elementwise nodes run as one pass (the planner's plan_fuse_chains
 * decides which nodes; tl_runtime_internal.h has the interface).
 *
 * A chain is a small program over blocks of TL_CHAIN_BLK floats: each instruction is one
 * member node's own kernel (the unary / binary function its family's prepare fetched) on one
 * block of its operands, writing a stack temporary or, for the last member, the output. An
 * operand is a value computed before the chain (read at the block's offset), a uniform
 * constant (a block filled with it once, at plan time) or an earlier member's temporary.
 *
 * Why bitwise: every output element of an elementwise kernel is one IEEE operation (or one call
 * of its scalar-equivalent function) on the same input elements, whatever the chunking
 * (elementwise.c); blocks start at multiples of TL_CHAIN_BLK from element 0, so even a kernel's
 * vector tail covers the same elements as in the node-by-node run. So the chain computes exactly
 * the values the members would, without writing the intermediate ones to memory: one read of
 * each operand and one write of the result instead of a full pass per node (ViT's composed
 * tanh-GELU: 9 nodes over a [B, 197, 768] value).
 *
 * Ownership: the chain (and its constant blocks) is owned by the head step (p.ew.chain) and
 * freed by the elementwise families' release through tl_ew_chain_free. */
#include <stdlib.h>
#include <string.h>
#include "tl_kernels_internal.h"
#include "tl_pool.h"
#include "tl_runtime_internal.h"

typedef enum { SRC_EXT, SRC_CONST, SRC_TMP } src_kind;

typedef struct chain_src {
    src_kind kind;
    int idx; /* into ext / cbuf blocks / temporaries */
} chain_src;

typedef struct chain_ins {
    tl_unary_fn uf; /* one of the two */
    tl_binary_fn bf;
    chain_src src[2];
    int dst; /* temporary, or -1: the output */
} chain_ins;

struct tl_ew_chain {
    int n_ins, n_ext, n_const, n_tmp;
    chain_ins ins[TL_CHAIN_MAX];
    int64_t ext_node[2 * TL_CHAIN_MAX];
    const float *ext[2 * TL_CHAIN_MAX]; /* bound by tl_ew_chain_bind */
    float *cbuf;                        /* n_const blocks of TL_CHAIN_BLK copies, owned */
};

void tl_ew_chain_free(tl_ew_chain *c) {
    if (!c) return;
    free(c->cbuf);
    free(c);
}

/* the operand of member m's argument k: its index in ext[] (one slot per distinct node) */
static int ext_slot(tl_ew_chain *c, int64_t node) {
    for (int e = 0; e < c->n_ext; e++)
        if (c->ext_node[e] == node) return e;
    c->ext_node[c->n_ext] = node;
    return c->n_ext++;
}

tl_ew_chain *tl_ew_chain_build(const struct tl_step *const *members, int n, const tl_chain_arg (*args)[2]) {
    if (n < 2 || n > TL_CHAIN_MAX) return NULL;
    tl_ew_chain *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    int last_use[TL_CHAIN_MAX];
    for (int m = 0; m < n; m++) last_use[m] = -1;
    for (int m = 0; m < n; m++)
        for (int k = 0; k < 2; k++)
            if (args[m][k].kind == TL_CHAIN_MEMBER) last_use[args[m][k].member] = m;
    int n_const = 0;
    for (int m = 0; m < n; m++)
        for (int k = 0; k < 2; k++) n_const += args[m][k].kind == TL_CHAIN_SCALAR;
    if (n_const && !(c->cbuf = malloc(sizeof(float) * (size_t)(n_const * TL_CHAIN_BLK)))) goto fail;
    /* temporaries: a member's block lives from its instruction to its last reader; a reader's
     * dying operand may be its own destination (the kernels allow y == a or b) */
    int tmp_of[TL_CHAIN_MAX];
    bool busy[TL_CHAIN_TMP] = {false};
    for (int m = 0; m < n; m++) {
        chain_ins *in = &c->ins[m];
        bool binary = members[m]->row->elementwise_binary;
        if (binary) in->bf = members[m]->p.ew.bfn;
        else in->uf = members[m]->p.ew.ufn;
        for (int k = 0; k < (binary ? 2 : 1); k++) {
            const tl_chain_arg *a = &args[m][k];
            if (a->kind == TL_CHAIN_EXT) in->src[k] = (chain_src){SRC_EXT, ext_slot(c, a->node)};
            else if (a->kind == TL_CHAIN_SCALAR) {
                float *blk = c->cbuf + c->n_const * TL_CHAIN_BLK;
                for (int j = 0; j < TL_CHAIN_BLK; j++) blk[j] = a->c;
                in->src[k] = (chain_src){SRC_CONST, c->n_const++};
            } else {
                if (a->member < 0 || a->member >= m) goto fail;
                in->src[k] = (chain_src){SRC_TMP, tmp_of[a->member]};
            }
        }
        for (int k = 0; k < (binary ? 2 : 1); k++)
            if (args[m][k].kind == TL_CHAIN_MEMBER && last_use[args[m][k].member] == m)
                busy[tmp_of[args[m][k].member]] = false;
        if (m == n - 1) {
            in->dst = -1;
            break;
        }
        if (last_use[m] < 0) goto fail; /* a member nobody in the chain reads */
        int t = 0;
        while (t < TL_CHAIN_TMP && busy[t]) t++;
        if (t == TL_CHAIN_TMP) goto fail; /* too many values live at once */
        busy[t] = true;
        tmp_of[m] = in->dst = t;
        if (t + 1 > c->n_tmp) c->n_tmp = t + 1;
    }
    c->n_ins = n;
    return c;
fail:
    tl_ew_chain_free(c);
    return NULL;
}

void tl_ew_chain_bind(tl_ew_chain *c, float *const *value) {
    for (int e = 0; e < c->n_ext; e++) c->ext[e] = value[c->ext_node[e]];
}

typedef struct chain_job {
    const tl_ew_chain *c;
    float *y;
    int64_t n;
} chain_job;

static void chain_part(void *p, int64_t b0, int64_t b1) {
    const chain_job *j = p;
    const tl_ew_chain *c = j->c;
    float tmp[TL_CHAIN_TMP][TL_CHAIN_BLK] __attribute__((aligned(64)));
    for (int64_t b = b0; b < b1; b++) {
        int64_t o = b * TL_CHAIN_BLK, len = j->n - o < TL_CHAIN_BLK ? j->n - o : TL_CHAIN_BLK;
        for (int i = 0; i < c->n_ins; i++) {
            const chain_ins *in = &c->ins[i];
            const float *s[2] = {NULL, NULL};
            for (int k = 0; k < 2; k++) {
                const chain_src *src = &in->src[k];
                if (k == 1 && !in->bf) break;
                s[k] = src->kind == SRC_EXT  ? c->ext[src->idx] + o
                    : src->kind == SRC_CONST ? c->cbuf + src->idx * TL_CHAIN_BLK
                                             : tmp[src->idx];
            }
            float *d = in->dst < 0 ? j->y + o : tmp[in->dst];
            if (in->bf) in->bf(s[0], s[1], d, len);
            else in->uf(s[0], d, len);
        }
    }
}

void tl_ew_chain_run(const tl_ew_chain *c, float *y, int64_t n) {
    int64_t blocks = (n + TL_CHAIN_BLK - 1) / TL_CHAIN_BLK;
    chain_job j = {c, y, n};
    /* the same work threshold as one elementwise pass (tl_par.c) */
    if (n * c->n_ins > TL_PAR_MIN && tl_pool_threads(blocks) > 1) tl_pool_for(blocks, chain_part, &j);
    else chain_part(&j, 0, blocks);
}

int tl_ew_chain_len(const tl_ew_chain *c) { return c ? c->n_ins : 0; }
