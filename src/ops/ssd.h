/* Mamba-2 SSD (state space duality), DESIGN.md §2, (U1)/(U3) with b_t = 0.
 *
 * Per (batch, head h of group g = h / (H/G)), for t = 1..T:
 *   Δ_t  = softplus(Δ̃_t + dt_bias_h)
 *   a_t  = exp(Δ_t A_h),  A_h < 0                                   (decay)
 *   S_t  = a_t S_{t-1} + Δ_t B_t x_tᵀ                               (U1), B_t ∈ R^K (mamba's N)
 *   y_t  = S_tᵀ C_t + D_h x_t                                       (U3) plus skip, x_t ∈ R^V (mamba's P)
 * B and C are shared by the H/G heads of a group (mamba's ngroups = G).
 *
 * Layouts: x, y [B,T,H,V]; Bm, Cm [B,T,G,K]; dt (Δ̃) [B,T,H];
 * dt_bias, A, D [H]. State S [B,H,K,V] (NULL initial state = 0).
 * Every A_h must be < 0 (callers keep A = -exp(A_log)); A_h >= 0 is SQ_EINVAL.
 */
#ifndef SUBQ_OPS_SSD_H
#define SUBQ_OPS_SSD_H

#include "../core/core.h"

typedef struct {
    int chunk;   /* chunk length L >= 1 (default 64) */
    int ngroups; /* G >= 1, must divide H (default 1) */
} sq_ssd_opts;

sq_ssd_opts sq_ssd_defaults(void);

typedef struct {
    const float *x, *Bm, *Cm, *dt;
    const float *dt_bias, *A, *D;
} sq_ssd_in;

typedef struct {
    float *dx, *dBm, *dCm, *ddt, *ddt_bias, *dA, *dD; /* overwritten */
} sq_ssd_grad;

size_t sq_ssd_work_floats(sq_dims d, const sq_ssd_opts *o);

/* S0 NULL = zero state; S1 may be NULL or equal to S0. */
int sq_ssd_fwd(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in, const float *S0,
               float *y, float *S1, float *work);
/* dS1 may be NULL (= zero), dS0 may be NULL. */
int sq_ssd_bwd(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in, const float *S0,
               const float *dy, const float *dS1, sq_ssd_grad *g, float *dS0, float *work);
/* d.T must be 1; S updated in place. */
int sq_ssd_step(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in, float *S, float *y);

#endif
