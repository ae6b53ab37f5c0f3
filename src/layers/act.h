/* Elementwise activations over n values, forward and backward:
 *   SiLU  y = x σ(x)
 *   GELU  y = x/2 (1 + tanh(√(2/π)(x + 0.044715 x³)))   (the tanh approximation, as GPT-2)
 *   SwiGLU y = SiLU(a) ⊙ b                                (the gated MLP of DESIGN.md §3)
 * dx is written. */
#ifndef SUBQ_LAYERS_ACT_H
#define SUBQ_LAYERS_ACT_H

#include <stddef.h>

int sq_silu_fwd(size_t n, const float *x, float *y);
int sq_silu_bwd(size_t n, const float *x, const float *dy, float *dx);
int sq_gelu_fwd(size_t n, const float *x, float *y);
int sq_gelu_bwd(size_t n, const float *x, const float *dy, float *dx);
int sq_swiglu_fwd(size_t n, const float *a, const float *b, float *y);
int sq_swiglu_bwd(size_t n, const float *a, const float *b, const float *dy, float *da, float *dbv);

#endif
