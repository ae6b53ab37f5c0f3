/* AdamW with decoupled weight decay, the learning-rate schedule (linear
 * warm-up, cosine decay) and global-norm gradient clipping. */
#ifndef SUBQ_TRAIN_OPTIM_H
#define SUBQ_TRAIN_OPTIM_H

#include <stddef.h>

typedef struct {
    float beta1, beta2, eps, weight_decay;
} sq_adamw_cfg;

/* beta1 0.9, beta2 0.95, eps 1e-8, weight decay 0.1. */
sq_adamw_cfg sq_adamw_defaults(void);

/* One AdamW update of n parameters p with gradient g and moments m, v, at
 * step t >= 1 (bias correction) and learning rate lr (Loshchilov & Hutter):
 *   m ← β1 m + (1−β1) g,  v ← β2 v + (1−β2) g²
 *   p ← p − lr (m/(1−β1ᵗ)) / (sqrt(v/(1−β2ᵗ)) + ε) − lr λ p   (λ only when decay != 0)
 * Norms and biases are passed with decay = 0. */
int sq_adamw_update(const sq_adamw_cfg *c, int t, float lr, int decay, float *p, const float *g, float *m, float *v,
                    size_t n);

/* Learning rate at step t (0-based) of total: linear warm-up from 0 over
 * `warmup` steps to lr_max, then cosine decay to lr_min at the last step. */
float sq_lr_at(int t, int warmup, int total, float lr_max, float lr_min);

/* sqrt(Σ_i Σ_j g_i[j]²) over several buffers, accumulated in double. */
double sq_global_norm(float *const *g, const size_t *n, int k);
/* Scales every buffer by max_norm / norm when norm > max_norm (max_norm
 * <= 0: no clipping). Returns the norm before clipping. */
double sq_clip_global_norm(float *const *g, const size_t *n, int k, double max_norm);

#endif
