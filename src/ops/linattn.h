/* Linear attention, DESIGN.md §2 (U1)/(U3) with a_t = 1, b_t = 0, c_t = 1,
 * d_t = 1 (no scaling of q):  S_t = S_{t-1} + k_t v_tᵀ,  o_t = S_tᵀ q_t.
 * The unified scalar-gate chunkwise code with its gates switched off; a test
 * case for that code. Layouts as mLSTM: q, k [B,T,H,K]; v, out [B,T,H,V];
 * state S [B,H,K,V] (NULL = zero). */
#ifndef SUBQ_OPS_LINATTN_H
#define SUBQ_OPS_LINATTN_H

#include "../core/core.h"

typedef struct { int chunk; } sq_linattn_opts; /* chunk >= 1 (default 64) */
sq_linattn_opts sq_linattn_defaults(void);

size_t sq_linattn_work_floats(sq_dims d, const sq_linattn_opts *o);
int sq_linattn_fwd(sq_dims d, const sq_linattn_opts *o, const float *q, const float *k, const float *v,
                   const float *S0, float *out, float *S1, float *work);
/* dS1 may be NULL; dS0 may be NULL. */
int sq_linattn_bwd(sq_dims d, const sq_linattn_opts *o, const float *q, const float *k, const float *v,
                   const float *S0, const float *dout, const float *dS1,
                   float *dq, float *dk, float *dv, float *dS0, float *work);
int sq_linattn_step(sq_dims d, const float *q, const float *k, const float *v, float *S, float *out);

#endif
