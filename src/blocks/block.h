/* Pre-norm residual blocks (DESIGN.md §3): a sequence mixer, and for most
 * types a SwiGLU channel mixer, each added to the residual stream.
 * Rows are the B·T positions of [B, T, D] activations.
 *
 * Life of a block: sq_block_register declares its parameters (named
 * "blocks.<i>.<what>") in the model's registry; sq_block_init draws them;
 * sq_block_fwd maps x_in -> x_out saving what the backward needs in `acts`
 * (sq_block_act_floats of them), using `work` as scratch; sq_block_bwd
 * maps dx_out -> dx_in and accumulates parameter gradients (+=).
 *
 * The forward, backward and carry paths compute only through the backend
 * table `be` (src/layers/backend.h) that the model passes down: they never
 * read or write activations, gradients or parameters themselves, so with a
 * device table every pointer (x_in, acts, work, the parameters and their
 * gradients, the carried state) is a device pointer. Registration and
 * initialisation work on the host registry (parameters are drawn there and
 * copied to a device later). */
#ifndef SUBQ_BLOCKS_BLOCK_H
#define SUBQ_BLOCKS_BLOCK_H

#include <stddef.h>

#include "../core/core.h"
#include "../core/params.h"
#include "../layers/backend.h"

typedef enum { SQ_BLOCK_MLSTM, SQ_BLOCK_SLSTM, SQ_BLOCK_MAMBA2, SQ_BLOCK_GDN, SQ_BLOCK_ATTN, SQ_BLOCK_NTYPES } sq_block_type;

/* "mlstm", "slstm", "mamba2", "gdn", "attn". */
const char *sq_block_name(sq_block_type t);

typedef struct {
    int D;      /* model width */
    int H;      /* heads */
    int K, V;   /* key and value width per head (sLSTM: K = V = D/H) */
    int F;      /* SwiGLU hidden width */
    int chunk;  /* chunk length of the chunkwise operators */
    int neg_eigval; /* GDN: β ∈ (0,2), state-transition eigenvalues in (-1,1) (Grazzi et al.) */
} sq_block_cfg;

enum { SQ_BLOCK_MAXP = 16 };

typedef struct {
    sq_block_type type;
    sq_block_cfg c;
    int p[SQ_BLOCK_MAXP]; /* indices of its parameters in the registry */
    int np;
} sq_block;

int sq_block_register(sq_block *b, sq_block_type type, const sq_block_cfg *c, int index, sq_params *ps);
/* Published initialisations (see each block's file); output projections
 * are scaled by 1/√(2·depth) as in GPT-2. */
void sq_block_init(const sq_block *b, sq_params *ps, sq_rng *r, int depth);
size_t sq_block_act_floats(const sq_block *b, int B, int T);
/* The scratch of fwd and bwd; it holds the operator's work, whose size
 * depends on the backend. */
size_t sq_block_work_floats(const sq_backend *be, const sq_block *b, int B, int T);
int sq_block_fwd(const sq_backend *be, const sq_block *b, const sq_params *ps, int B, int T, const float *x_in,
                 float *x_out, float *acts, float *work);
int sq_block_bwd(const sq_backend *be, const sq_block *b, sq_params *ps, int B, int T, const float *x_in,
                 const float *acts, const float *dx_out, float *dx_in, float *work);

/* Inference over sequences fed in pieces. `state` (sq_block_state_floats,
 * zeroed to start) carries the block's recurrent state from one call to
 * the next: the operators' states, the short convolutions' last inputs,
 * and for attention the KV cache of at most max_len positions. pos0 is
 * the number of positions already fed. A recurrent block's state does not
 * grow with the length, so neither does the memory of a long evaluation. */
typedef struct {
    float *state;
    int pos0, max_len;
} sq_block_carry;

size_t sq_block_state_floats(const sq_block *b, int B, int max_len);
int sq_block_fwd_carry(const sq_backend *be, const sq_block *b, const sq_params *ps, int B, int T, const float *x_in,
                       float *x_out, float *acts, float *work, const sq_block_carry *carry);

#endif
