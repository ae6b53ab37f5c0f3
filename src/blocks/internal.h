/* Shared pieces of the block files: the table each block type fills,
 * parameter access and the SwiGLU channel mixer. Not part of the public API. */
#ifndef SUBQ_BLOCKS_INTERNAL_H
#define SUBQ_BLOCKS_INTERNAL_H

#include "block.h"

/* What one block type provides (see block.h for the life of a block).
 * out_std is the output projections' std, 0.02/√(2·depth). fwd, bwd and
 * every helper below that computes take the backend `be` and compute only
 * through it (block.h). */
typedef struct {
    int (*reg)(sq_block *b, sq_params *ps, int index);
    void (*init)(const sq_block *b, sq_params *ps, sq_rng *r, float out_std);
    size_t (*act_floats)(const sq_block_cfg *c, size_t N);
    size_t (*work_floats)(const sq_backend *be, const sq_block_cfg *c, int B, int T);
    /* carry NULL: training (zero initial state, nothing carried) */
    int (*fwd)(const sq_backend *be, const sq_block *b, const sq_params *ps, int B, int T, const float *x, float *out,
               float *acts, float *work, const sq_block_carry *carry);
    int (*bwd)(const sq_backend *be, const sq_block *b, sq_params *ps, int B, int T, const float *x, const float *acts,
               const float *dout, float *dx, float *work);
    size_t (*state_floats)(const sq_block_cfg *c, int B, int max_len);
} blk_ops;

extern const blk_ops mlstm_block_ops, slstm_block_ops, mamba2_block_ops, gdn_block_ops, attn_block_ops;

#define SQ_NORM_EPS 1e-5f

/* Registers blocks.<index>.<what> with shape [d0] (d1 = 0) or [d0, d1].
 * blk_w, blk_g give a parameter's and its gradient's address (pointer
 * arithmetic only: the memory is the backend's); blk_normal, blk_const
 * fill a parameter on the host (initialisation only). */
int blk_add(sq_block *b, sq_params *ps, int index, const char *what, int64_t d0, int64_t d1, int decay);
float *blk_w(const sq_block *b, const sq_params *ps, int slot);
float *blk_g(const sq_block *b, const sq_params *ps, int slot);
size_t blk_n(const sq_block *b, const sq_params *ps, int slot);
/* Fills a parameter with N(0, std), or a constant. */
void blk_normal(const sq_block *b, sq_params *ps, int slot, sq_rng *r, float std);
void blk_const(const sq_block *b, sq_params *ps, int slot, float v);

/* The channel mixer out = x + W2 (SiLU(W1 h) ⊙ W3 h), h = RMSNorm(x),
 * parameters in 4 slots from `slot`: norm weight [D], W1, W3 [F, D], W2 [D, F]. */
int mlp_register(sq_block *b, sq_params *ps, int index);
void mlp_init(const sq_block *b, sq_params *ps, int slot, sq_rng *r, float out_std);
size_t mlp_act_floats(const sq_block_cfg *c, size_t N);
int mlp_fwd(const sq_backend *be, const sq_block *b, const sq_params *ps, int slot, int N, const float *x, float *out,
            float *acts);
/* dout -> dx (written; includes the residual path). work: ds, da, dg [N,F], dh [N,D]. */
int mlp_bwd(const sq_backend *be, const sq_block *b, sq_params *ps, int slot, int N, const float *x,
            const float *acts, const float *dout, float *dx, float *work);

/* Backward of x' = x + f(RMSNorm(x)) (weight in `slot`, saved 1/rms r)
 * from dh = the gradient at RMSNorm's output and dres at x': dx = dres +
 * RMSNorm'ᵀ dh; the norm weight's gradient accumulates. */
int blk_prenorm_bwd(const sq_backend *be, const sq_block *b, sq_params *ps, int slot, int N, const float *x,
                    const float *r, const float *dh, const float *dres, float *dx);
/* n rounded up to a multiple of 16 floats (what blk_take consumes). */
size_t blk_r16(size_t n);
/* The operator's dimensions [B, T, H, K, V] of a block. */
sq_dims blk_op_dims(const sq_block_cfg *c, int B, int T);
/* Floats from a bump pointer (16-float aligned). */
float *blk_take(float **p, size_t n);
#endif
