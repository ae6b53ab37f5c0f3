/* Elementwise and memory primitives of the blocks and the training step:
 * the small pieces that used to be host loops inside src/blocks and
 * src/train, so that every access to activation, gradient and parameter
 * memory goes through the backend table (backend.h) and a device backend
 * can run the same block code. Over n values (n >= 1), all buffers of the
 * same backend's memory, forward and backward side by side:
 *   copy          y = x                       (x, y must not overlap)
 *   zero          x = 0
 *   add_to        y += x                      (x = y allowed)
 *   mul           y = a ⊙ b                   (y may be a or b)
 *   div_scalar    x = x / d                   (d a host float)
 *   copy_cols     dst[i, :n] = src[i, :n] over N rows of strides lds, ldd
 *   neg_exp       y = -exp(x)                 (Mamba-2's A = -exp(A_log))
 *   sigmoid_gate  y = a ⊙ σ(g)                (mLSTM's output gate)
 * neg_exp's backward accumulates (+=) into dx because its x is a
 * parameter (layers' convention, linear.h); sigmoid_gate's da and dg are
 * written. The SiLU gates b ⊙ SiLU(a) of the GDN and Mamba-2 blocks are
 * SwiGLU, or SiLU and mul (act.h). */
#ifndef SUBQ_LAYERS_ELEM_H
#define SUBQ_LAYERS_ELEM_H

#include <stddef.h>

int sq_copy(size_t n, const float *x, float *y);
int sq_zero(size_t n, float *x);
int sq_add_to(size_t n, const float *x, float *y);
int sq_mul(size_t n, const float *a, const float *b, float *y);
int sq_div_scalar(size_t n, float d, float *x);

/* Rows i < N: dst[i·ldd + j] = src[i·lds + j] for j < n (n <= lds, ldd);
 * copies a column block out of or into a wider row-major matrix. */
int sq_copy_cols(int N, int n, const float *src, int lds, float *dst, int ldd);

/* y = -exp(x);  dx += dy ⊙ y   (d(-eˣ)/dx = -eˣ = y) */
int sq_neg_exp_fwd(size_t n, const float *x, float *y);
int sq_neg_exp_bwd(size_t n, const float *y, const float *dy, float *dx);

/* y = a ⊙ σ(g);  da = dy ⊙ σ(g),  dg = dy ⊙ a ⊙ σ(g)(1 - σ(g)) */
int sq_sigmoid_gate_fwd(size_t n, const float *a, const float *g, float *y);
int sq_sigmoid_gate_bwd(size_t n, const float *a, const float *g, const float *dy, float *da, float *dg);

#endif
