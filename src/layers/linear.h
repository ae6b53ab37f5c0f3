/* Linear layer y = x Wᵀ + b, W [out, in] (PyTorch's layout, so checkpoints
 * match), rows of x [N, in] -> y [N, out], through BLAS.
 * Convention of every layer: activation gradients are written (=),
 * parameter gradients are ACCUMULATED (+=), so micro-batches and shared
 * weights add up; zero them before a step. */
#ifndef SUBQ_LAYERS_LINEAR_H
#define SUBQ_LAYERS_LINEAR_H

/* b may be NULL (no bias). */
int sq_linear_fwd(int N, int in, int out, const float *x, const float *W, const float *b, float *y);
/* The same ACCUMULATED into y: y += x Wᵀ + b (a residual x' = x + f Wᵀ
 * with y holding x). */
int sq_linear_fwd_acc(int N, int in, int out, const float *x, const float *W, const float *b, float *y);
/* dx may be NULL (not wanted); db NULL when there is no bias. */
int sq_linear_bwd(int N, int in, int out, const float *x, const float *W, const float *dy, float *dx, float *dW,
                  float *db);
/* The same with dx ACCUMULATED (+=): for an input feeding several layers. */
int sq_linear_bwd_acc(int N, int in, int out, const float *x, const float *W, const float *dy, float *dx, float *dW,
                      float *db);

#endif
