/* Gated DeltaNet (gated delta rule), DESIGN.md §2, (U1)/(U3) with erase b_t = write c_t = β_t.
 *
 * Per (batch, head h), for t = 1..T:
 *   k̂_t = k_t / ‖k_t‖,  q̂_t = q_t / (‖q_t‖ √K)        (L2 norm inside the op; opts.qk_l2norm = 0
 *                                                      skips it: k̂ = k, q̂ = q / √K)
 *   g_t = -exp(A_log_h) softplus(α̃_t + dt_bias_h),  a_t = exp(g_t)
 *   β_t = σ(β̃_t)            (opts.neg_eigval = 1: β_t = 2σ(β̃_t) ∈ (0,2), eigenvalues of
 *                             I - β k̂k̂ᵀ in (-1,1), Grazzi et al.)
 *   S_t = a_t (I - β_t k̂_t k̂_tᵀ) S_{t-1} + β_t k̂_t v_tᵀ           (U1)
 *   o_t = S_tᵀ q̂_t                                                   (U3)
 * The chunkwise form uses the WY/UT representation (DESIGN.md §2, "Three forms").
 *
 * Layouts: q, k [B,T,H,K]; v, out [B,T,H,V]; alpha (α̃), beta (β̃) [B,T,H];
 * A_log, dt_bias [H]. State S [B,H,K,V] (NULL initial state = 0).
 */
#ifndef SUBQ_OPS_GDN_H
#define SUBQ_OPS_GDN_H

#include "../core/core.h"

typedef struct {
    int chunk;      /* chunk length L >= 1 (default 64) */
    int neg_eigval; /* 0: β ∈ (0,1) (default); 1: β ∈ (0,2) */
    int qk_l2norm;  /* 1: L2-normalise q and k inside the op (default); 0: caller did */
} sq_gdn_opts;

sq_gdn_opts sq_gdn_defaults(void);

typedef struct {
    const float *q, *k, *v, *alpha, *beta;
    const float *A_log, *dt_bias;
} sq_gdn_in;

typedef struct {
    float *dq, *dk, *dv, *dalpha, *dbeta, *dA_log, *ddt_bias; /* overwritten */
} sq_gdn_grad;

size_t sq_gdn_work_floats(sq_dims d, const sq_gdn_opts *o);

/* The inputs' checks of every call (dims, pointers, chunk, options); the
 * CUDA operator shares them. op names the caller in the message. */
int sq_gdn_check_in(const char *op, sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in);
/* The backward's: g and every gradient pointer given. */
int sq_gdn_check_grad(const char *op, const sq_gdn_grad *g);
/* S0 NULL = zero state; S1 may be NULL or equal to S0. */
int sq_gdn_fwd(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in, const float *S0,
               float *out, float *S1, float *work);
/* dS1 may be NULL (= zero), dS0 may be NULL. */
int sq_gdn_bwd(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in, const float *S0,
               const float *dout, const float *dS1, sq_gdn_grad *g, float *dS0, float *work);
/* d.T must be 1; S updated in place. */
int sq_gdn_step(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in, float *S, float *out);

#endif
