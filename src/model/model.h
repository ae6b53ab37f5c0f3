/* A model (DESIGN.md §3): token embedding -> a stack of blocks named by a
 * spec -> final RMSNorm -> LM head, trained with softmax cross-entropy.
 * Parameters live in one registry; activations and gradients for a batch
 * shape are planned once into one arena (sq_model_plan), so a training
 * step allocates nothing.
 *
 * The model computes through its backend table `be` (src/layers/backend.h),
 * chosen once: sq_model_build sets the CPU's, and the forward, backward
 * and carry paths (and the blocks, which get it passed down) touch
 * activations, gradients and parameters only through it. Building,
 * initialisation and checkpoint I/O work on the host registry. */
#ifndef SUBQ_MODEL_MODEL_H
#define SUBQ_MODEL_MODEL_H

#include <stdint.h>

#include "../blocks/block.h"
#include "../core/arena.h"
#include "../core/params.h"
#include "../layers/backend.h"
#include "spec.h"

typedef struct {
    char spec[128]; /* e.g. "xlstm[1:1]" (spec.h) */
    int depth;      /* 0: the spec's pattern length */
    int D, H;       /* width and heads; head size D/H */
    int vocab;
    int chunk;      /* operators' chunk length */
    int neg_eigval; /* GDN blocks with β ∈ (0,2) (negative eigenvalues) */
} sq_model_cfg;

typedef struct {
    sq_model_cfg cfg;
    const sq_backend *be; /* &sq_backend_cpu from sq_model_build (sq_model_use_backend) */
    sq_spec spec;
    sq_params ps;   /* the registry, data and gradient on the host: init, checkpoints */
    sq_params dev;  /* on a device backend: the same entries with data and gradient there */
    sq_params *wp;  /* the working copy the blocks compute with: &ps on the CPU, &dev otherwise */
    int32_t *dtok, *dtgt; /* a device backend's copies of a batch's tokens and targets */
    size_t ntok;
    sq_block *blocks;
    int p_embed, p_norm, p_head; /* registry indices */
    /* planned for (B, T) */
    int B, T;
    sq_arena arena;
    float *xs;     /* [(depth+1), N, D] the residual stream at every block boundary */
    float **acts;  /* per block */
    float *work, *hf, *rf, *logits, *dlogits, *dx, *dx2;
    const int32_t *tokens;
} sq_model;

/* Parses the spec, registers and allocates the parameters (zeroed); the
 * backend is the CPU's. */
int sq_model_build(sq_model *m, const sq_model_cfg *c);
/* Draws the parameters from a seed (published initialisations). */
void sq_model_init(sq_model *m, uint64_t seed);
/* Moves the model's computation to backend be (before sq_model_plan,
 * which it undoes): on a device it allocates the parameters and their
 * gradients there and copies the host parameters over. Tokens and targets
 * stay host arrays for the caller; the logits, the carried state and the
 * gradient live in the backend's memory (m->be->download to read them). */
int sq_model_use_backend(sq_model *m, const sq_backend *be);
/* Copies the parameters host -> backend (after loading a checkpoint) and
 * backend -> host (before saving one); no-ops on the CPU. */
int sq_model_to_backend(sq_model *m);
int sq_model_to_host(sq_model *m);
/* Plans the activation arena for batches of B sequences of length T (the
 * blocks' work sizes come from the backend's operators). */
int sq_model_plan(sq_model *m, int B, int T);
/* Forward over tokens [B,T]; with targets (may be NULL) the mean loss over
 * targets >= 0 goes to *loss (a host float) and the logits' gradient is
 * kept for bwd. tokens and targets are in the backend's memory. */
int sq_model_fwd(sq_model *m, const int32_t *tokens, const int32_t *targets, float *loss);
/* Backward of the last forward (with targets): accumulates into m->ps.grad. */
int sq_model_bwd(sq_model *m);
/* Inference over sequences fed in pieces of at most the planned T, with
 * each block's recurrent state carried in `state` (sq_model_state_floats
 * for the planned B and sequences of at most max_len; zero it to start):
 * the logits of the piece tokens [B, T] at positions pos0.. go to
 * m->logits. Memory does not grow with the length for the recurrent
 * blocks (attention keeps its KV cache). */
size_t sq_model_state_floats(const sq_model *m, int max_len);
int sq_model_fwd_carry(sq_model *m, const int32_t *tokens, int T, int pos0, float *state, int max_len);
/* The config as JSON text (for checkpoints); writes at most n bytes. */
int sq_model_cfg_json(const sq_model_cfg *c, char *buf, int n);
void sq_model_free(sq_model *m);

#endif
