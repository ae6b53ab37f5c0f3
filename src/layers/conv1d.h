/* Causal depthwise convolution over time (the short conv of Mamba-2, GDN
 * and the xLSTM blocks), x, y [B, T, C], weights w [C, W], bias [C]:
 *   y_{t,c} = bias_c + Σ_{j<W} w_{c,j} x_{t-W+1+j, c}
 * where inputs before t = 0 come from the state [B, W-1, C] (the last W-1
 * inputs of the previous piece; NULL = zeros). The final state (may be
 * NULL) receives the last W-1 inputs, so pieces and steps chain exactly.
 * Parameter gradients accumulate (+=); dx and dstate0 are written. */
#ifndef SUBQ_LAYERS_CONV1D_H
#define SUBQ_LAYERS_CONV1D_H

int sq_conv1d_fwd(int B, int T, int C, int W, const float *x, const float *w, const float *bias,
                  const float *state0, float *y, float *state1);
int sq_conv1d_bwd(int B, int T, int C, int W, const float *x, const float *w, const float *state0, const float *dy,
                  float *dx, float *dw, float *dbias, float *dstate0);

#endif
