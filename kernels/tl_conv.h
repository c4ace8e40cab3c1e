/* tl_conv.h - direct convolution kernels on NCHW tensors: depthwise and dense/grouped KxK.
 *
 * Both kinds compute, per output element (n, oc, oh, ow) of group g = oc / (OC/groups),
 *     acc = bias ? bias[oc] : 0
 *     for ic in the group's input channels, kh in 0..KH-1, kw in 0..KW-1 (in that order):
 *         acc = fmaf(w[oc][ic][kh][kw], xpad(n, ic, oh*SH + kh*DH - PH, ow*SW + kw*DW - PW), acc)
 *     y = min(max(acc, lo), hi)       as  (lo > acc ? lo : acc), then (hi < y ? hi : y)
 * where xpad is the input, 0 outside it (padded taps are multiplied, like im2col's zero fill,
 * so an inf weight on a padded tap gives NaN as in PyTorch). One rounding per tap (FMA), a fixed
 * order per element: the vector kernels are BITWISE equal to the scalar reference, and every
 * thread split gives the same bits. lo = -INFINITY / hi = INFINITY disable the clamp (NaN passes
 * through: max/min return the accumulator when it is NaN); relu is lo = 0, relu6 lo = 0, hi = 6.
 *
 * Geometry is 2-D; a 1-D conv is H = OH = KH = 1 (tl_conv_desc_from_window does that). Padding
 * after the input is implied by the output extents (taps beyond the input read 0).
 * Kernels never allocate: scratch sizes are queried at plan time and passed in. */
#ifndef TL_CONV_H
#define TL_CONV_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tl_kernels.h"

typedef struct tl_conv_desc {
    int64_t batch, in_ch, out_ch, groups;                             /* N, C, OC; C and OC divisible by groups */
    int64_t in_h, in_w, out_h, out_w;                                 /* H, W, OH, OW */
    int64_t k_h, k_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w; /* pad: before (top/left) */
    const float *bias;                                                /* [OC] or NULL */
    float lo, hi;                                                     /* clamp epilogue (-INFINITY, INFINITY: none) */
} tl_conv_desc;

/* Fills d from the runtime's window (rank 1 or 2; rank 3 -> false: use im2col + sgemm). Bias
 * NULL, no clamp; set d->bias / d->lo / d->hi afterwards. */
bool tl_conv_desc_from_window(tl_conv_desc *d, int64_t batch, int64_t in_ch, int64_t out_ch, int64_t groups,
                              const tl_window *w);
/* Whether the direct kernels take d (sizes > 0, KH*KW <= TL_CONV_MAX_TAPS, sizes below 2^31). */
#define TL_CONV_MAX_TAPS 256
bool tl_conv_supported(const tl_conv_desc *d);
/* groups == C and OC a multiple of C (channel multiplier OC/C, usually 1) */
bool tl_conv_is_depthwise(const tl_conv_desc *d);

/* ---- depthwise: weights as given, [OC][1][KH][KW] (no packing) ----
 * Each output plane (n, oc) reads input plane (n, oc / (OC/C)), zero-padded into scratch.
 * Scratch: tl_conv_dw_scratch_floats(d) floats PER THREAD. */
size_t tl_conv_dw_scratch_floats(const tl_conv_desc *d);
/* Output planes [plane0, plane1) of the N*OC planes, one thread; scratch of one thread. */
void tl_conv_dw_range(tl_isa isa, const tl_conv_desc *d, const float *x, const float *w, float *y, int64_t plane0,
                      int64_t plane1, float *scratch);
/* All planes with the active ISA, in contiguous blocks of planes over threads (when the work is
 * over TL_PAR_MIN and more than one thread is set): as many threads as
 * scratch_floats / tl_conv_dw_scratch_floats(d) allows (one slot is always enough). */
void tl_conv_dw(const tl_conv_desc *d, const float *x, const float *w, float *y, float *scratch,
                size_t scratch_floats);

/* ---- dense / grouped direct conv: weights packed once at plan time ----
 * Packed layout: [groups][ceil(OCg/8)][ICg][KH][KW][8] (8 output channels of a group innermost,
 * the last block zero-filled). The kernel keeps 8 output channels x 3 vectors of output pixels
 * (48 with AVX-512) in registers; the input is first zero-padded and, for strides > 1, split
 * into SH*SW phases so every tap reads contiguous pixels (see tl_conv_internal.h). */
#define TL_CONV_OCB 8
size_t tl_conv_packed_floats(const tl_conv_desc *d);
void tl_conv_pack(const tl_conv_desc *d, const float *w, float *packed); /* w: [OC][ICg][KH][KW] */
/* Scratch: one padded image (all C channels), shared by the threads working on it. */
size_t tl_conv_direct_scratch_floats(const tl_conv_desc *d);
/* Zero-pads / phase-splits image `n` of x into scratch (channels [c0, c1), so it can be split). */
void tl_conv_direct_pad(const tl_conv_desc *d, const float *x, int64_t n, float *scratch, int64_t c0, int64_t c1);
/* Work items of one image: groups x ceil(OCg/8) x pixel tiles; independent (disjoint outputs). */
int64_t tl_conv_direct_items(const tl_conv_desc *d);
/* Items [item0, item1) of image n from its padded scratch, one thread. */
void tl_conv_direct_range(tl_isa isa, const tl_conv_desc *d, const float *packed, const float *scratch, float *y,
                          int64_t n, int64_t item0, int64_t item1);
/* The whole batch with the active ISA. scratch_floats >= tl_conv_direct_scratch_floats(d); with
 * k times that (k >= 2) and a batch of 2 or more, up to k threads take whole images (each in its
 * own slot); otherwise images go one at a time, pad split over channels and compute over items
 * (TL_PFOR). Same bits either way. */
void tl_conv_direct(const tl_conv_desc *d, const float *packed, const float *x, float *y, float *scratch,
                    size_t scratch_floats);

/* ---- igemm: output channels in the lanes, pixels broadcast (groups 1) ----
 * The transposed tile of the dense kernel: TL_CONV_IG_PIX output pixels x TL_CONV_IG_NR output
 * channels per work item, the pixels taken consecutively over a chunk of images (so a 2x2 or 7x7
 * plane fills every tile: the dense kernel's pixel vectors there are mostly junk lanes), each
 * pixel's tap read as one broadcast from the padded input (the indirect GEMM of XNNPACK / MLAS,
 * with NCHW planes instead of NHWC rows). The same per-element arithmetic as tl_conv_ref (bias,
 * taps in (ic, kh, kw) order, one FMA each), so BITWISE equal to it and to the dense kernel; a
 * residual y = clamp(acc + res) is added in the store (the unfused add's bits: acc is rounded
 * first). Packed: [ceil(OC/32)][1 + IC*KH*KW][32], row 0 the bias (0 without one), output
 * channels beyond OC zero. */
#define TL_CONV_IG_PIX 12
#define TL_CONV_IG_NR 32
bool tl_conv_igemm_ok(const tl_conv_desc *d); /* supported and groups == 1 */
size_t tl_conv_igemm_packed_floats(const tl_conv_desc *d);
void tl_conv_igemm_pack(const tl_conv_desc *d, const float *w, float *packed); /* bias from d->bias */
/* Images per chunk: the padded chunk stays near 1 MiB (L2 with a block of weights). Scratch: one
 * padded chunk, shared by the threads. */
int64_t tl_conv_igemm_chunk(const tl_conv_desc *d);
size_t tl_conv_igemm_scratch_floats(const tl_conv_desc *d);
/* Zero-pads images [n0, n0 + imgs) of x into the chunk scratch (image-major, C planes each). */
void tl_conv_igemm_pad(const tl_conv_desc *d, const float *x, int64_t n0, int64_t imgs, float *scratch);
/* Work items of a chunk of imgs images: ceil(OC/32) channel blocks x ceil(imgs*OH*OW / 12)
 * pixel tiles, block-major (a thread's contiguous range shares one block of weights). */
int64_t tl_conv_igemm_items(const tl_conv_desc *d, int64_t imgs);
/* Items [item0, item1) of the chunk of images [n0, n0 + imgs) padded in scratch; res (NULL:
 * none) has y's shape. One thread. */
void tl_conv_igemm_range(tl_isa isa, const tl_conv_desc *d, const float *packed, const float *scratch, float *y,
                         const float *res, int64_t n0, int64_t imgs, int64_t item0, int64_t item1);
/* The whole batch with the active ISA, chunk by chunk (pad and items split over the pool when
 * the work is over TL_PAR_MIN): the same bits at any thread count. */
void tl_conv_igemm(const tl_conv_desc *d, const float *packed, const float *x, float *y, const float *res,
                   float *scratch, size_t scratch_floats);
/* Whether igemm beats the dense kernel on d: the fraction of useful lanes of each tiling
 * (channel blocks x pixel tiles against pixel vectors x 8-channel blocks) with igemm's store
 * cost; docs/conv.md has the measurements behind it. */
bool tl_conv_igemm_better(const tl_conv_desc *d);

/* ---- the reference: plain loops over the raw NCHW input and [OC][ICg][KH][KW] weights, any
 * groups (depthwise included), exactly the arithmetic stated at the top. All of N*OC planes. */
void tl_conv_ref(const tl_conv_desc *d, const float *x, const float *w, float *y);

#endif
