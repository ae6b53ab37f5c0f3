/* Training on a synthetic task and answer-accuracy evaluation
 * (DESIGN.md §5, step 2; the protocol of docs/tasks.md).
 *
 * The data of step s is drawn from (seed, s) alone, so a run resumed from
 * a checkpoint at step s sees exactly the batches an uninterrupted run
 * would, and with the same thread count produces the same losses.
 *
 * A step (zeroing the gradient, forward, backward, the mean over
 * micro-batches, clipping, AdamW) and the evaluation's carried forward
 * compute through the model's backend table (m->be, src/layers/backend.h)
 * on its memory: the gradient, the AdamW moments and the carried state are
 * touched only through it. On the host remain drawing the batches (tokens
 * and targets), the scalars (loss, norm, learning rate), checkpoint I/O
 * and reading the logits to score the evaluation's answers. */
#ifndef SUBQ_TRAIN_TRAIN_H
#define SUBQ_TRAIN_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "../model/model.h"
#include "../tasks/tasks.h"
#include "optim.h"

typedef struct {
    char task[32];
    sq_model_cfg model;  /* vocab is set from the task */
    int steps;           /* optimizer steps */
    int batch;           /* sequences per micro-batch */
    int accum;           /* micro-batches per step (gradient accumulation) */
    int len;             /* training length L_train */
    int warmup;          /* warm-up steps (-1: 10% of steps) */
    float lr, lr_min;    /* peak and final learning rate (cosine) */
    float clip;          /* global gradient-norm clip (<= 0: none) */
    sq_adamw_cfg adamw;
    uint64_t seed;       /* initialisation and data */
} sq_train_cfg;

sq_train_cfg sq_train_defaults(void);
/* Checks ranges and that the task exists; sets model.vocab. */
int sq_train_validate(sq_train_cfg *c);
/* The whole config as one JSON object (saved as the checkpoint's config). */
int sq_train_cfg_json(const sq_train_cfg *c, char *buf, int n);
/* Reads a config written by sq_train_cfg_json (or a user's JSON file with
 * any subset of its keys over the defaults). */
int sq_train_cfg_parse(const char *text, sq_train_cfg *c);

typedef struct {
    FILE *progress;          /* progress lines (NULL: quiet) */
    int log_every;           /* progress line every this many steps */
    FILE *metrics;           /* JSONL, one object per step (NULL: none) */
    const char *ckpt_dir;    /* checkpoints (NULL: none saved) */
    int save_every;          /* save every this many steps (0: only at the end) */
    int resume;              /* continue from ckpt_dir's checkpoint if there is one */
    volatile int *interrupt; /* set asynchronously (Ctrl-C): save and stop */
    float *losses;           /* [steps] losses (may be NULL) */
    const sq_backend *be;    /* where the model computes (NULL: the CPU); checkpoints are the same */
} sq_train_io;

typedef struct {
    int steps_done;   /* step reached (== cfg steps when complete) */
    int interrupted;  /* stopped by *interrupt */
    float final_loss; /* mean loss of the last step */
    double seconds, tokens_per_s;
} sq_train_result;

/* Trains a model with c (already validated) from scratch or from a
 * checkpoint; on return m holds the trained model (free it with
 * sq_model_free). */
int sq_train_run(const sq_train_cfg *c, const sq_train_io *io, sq_model *m, sq_train_result *res);

/* Answer accuracy of model m on n sequences of length T of task t drawn
 * from eval_seed (docs/tasks.md). Sequences are fed in pieces of
 * SQ_EVAL_PIECE positions with the recurrent state carried (memory
 * constant in T for the recurrent blocks), batches of max_tokens / piece
 * sequences. Re-plans m's arena. */
int sq_eval_accuracy(sq_model *m, const sq_task *t, int T, int n, uint64_t eval_seed, int max_tokens, double *acc);

/* The seed of the fixed evaluation sets (independent of training data). */
enum { SQ_EVAL_SEED = 1000003, SQ_EVAL_PIECE = 256 };

/* Builds and loads the model of a checkpoint folder; *c receives its config. */
int sq_train_load_model(const char *dir, sq_train_cfg *c, sq_model *m);

#endif
