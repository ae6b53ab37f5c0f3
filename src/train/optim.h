/* The optimizer as training sees it: AdamW with decoupled weight decay and
 * global-norm gradient clipping (their arithmetic over flat buffers is in
 * src/layers/adamw.h, included here, so that the backend table can hold
 * it), the default hyperparameters and the learning-rate schedule (linear
 * warm-up, cosine decay). */
#ifndef SUBQ_TRAIN_OPTIM_H
#define SUBQ_TRAIN_OPTIM_H

#include <stddef.h>

#include "../layers/adamw.h"

/* beta1 0.9, beta2 0.95, eps 1e-8, weight decay 0.1. */
sq_adamw_cfg sq_adamw_defaults(void);

/* Learning rate at step t (0-based) of total: linear warm-up from 0 over
 * `warmup` steps to lr_max, then cosine decay to lr_min at the last step. */
float sq_lr_at(int t, int warmup, int total, float lr_max, float lr_min);

#endif
