/* The optimizer's arithmetic over flat parameter buffers: one AdamW update
 * and global-norm gradient clipping. It lives with the layers (not in
 * src/train) because the backend table (backend.h) holds it beside the
 * layers, and lower layers never include higher ones (DESIGN.md §4);
 * src/train/optim.h re-exports it with the hyperparameter defaults and the
 * learning-rate schedule, which are training policy. */
#ifndef SUBQ_LAYERS_ADAMW_H
#define SUBQ_LAYERS_ADAMW_H

#include <stddef.h>

typedef struct {
    float beta1, beta2, eps, weight_decay;
} sq_adamw_cfg;

/* One AdamW update of n parameters p with gradient g and moments m, v, at
 * step t >= 1 (bias correction) and learning rate lr (Loshchilov & Hutter):
 *   m ← β1 m + (1−β1) g,  v ← β2 v + (1−β2) g²
 *   p ← p − lr (m/(1−β1ᵗ)) / (sqrt(v/(1−β2ᵗ)) + ε) − lr λ p   (λ only when decay != 0)
 * Norms and biases are passed with decay = 0. */
int sq_adamw_update(const sq_adamw_cfg *c, int t, float lr, int decay, float *p, const float *g, float *m, float *v,
                    size_t n);

/* sqrt(Σ_i Σ_j g_i[j]²) over several buffers, accumulated in double. */
double sq_global_norm(float *const *g, const size_t *n, int k);
/* Scales every buffer by max_norm / norm when norm > max_norm (max_norm
 * <= 0: no clipping). Returns the norm before clipping. */
double sq_clip_global_norm(float *const *g, const size_t *n, int k, double max_norm);

#endif
