/* Normalisations as one family: each row of N is split into G groups of
 * Dg values (G = 1: the whole row; G = heads: head-wise), and each group is
 *   centred (LayerNorm / GroupNorm, center = 1) or not (RMSNorm, center = 0):
 *   μ = mean(x) or 0,  r = 1/sqrt(mean((x-μ)²) + eps),  y = (x-μ) r ⊙ w + b
 * with w, b of size G·Dg (NULL w = 1, NULL b = 0). The backward needs the
 * saved μ and r ([N·G] each; μ may be NULL when center = 0).
 * Also the L2 norm y = x / sqrt(Σx² + eps) of rows (used on q and k).
 * Parameter gradients accumulate (+=), dx is written. */
#ifndef SUBQ_LAYERS_NORM_H
#define SUBQ_LAYERS_NORM_H

int sq_norm_fwd(int N, int G, int Dg, int center, float eps, const float *x, const float *w, const float *b,
                float *y, float *mu, float *r);
int sq_norm_bwd(int N, int G, int Dg, int center, const float *x, const float *w, const float *mu, const float *r,
                const float *dy, float *dx, float *dw, float *db);

/* rnorm [N] saved: 1/sqrt(Σx² + eps). */
int sq_l2norm_fwd(int N, int D, float eps, const float *x, float *y, float *rnorm);
int sq_l2norm_bwd(int N, int D, const float *x, const float *rnorm, const float *dy, float *dx);

#endif
