/* mLSTM (xLSTM's matrix-memory cell), DESIGN.md §2, (U1)-(U3) with b_t = 0.
 *
 * Per (batch, head), for t = 1..T, with q scaled by 1/sqrt(K):
 *   log a_t = logsigmoid(f̃_t)           (default; exponential forget gate: log a_t = f̃_t)
 *   m_t     = max(log a_t + m_{t-1}, ĩ_t)                           (stabilizer)
 *   S̄_t     = e^{log a_t + m_{t-1} - m_t} S̄_{t-1} + e^{ĩ_t - m_t} k_t v_tᵀ   (U1)
 *   n̄_t     = e^{log a_t + m_{t-1} - m_t} n̄_{t-1} + e^{ĩ_t - m_t} k_t        (U2)
 *   o_t     = S̄_tᵀ q_t / max(|n̄_tᵀ q_t|, e^{-m_t})                          (U3)
 * The output does not depend on the stabilizer m mathematically (it is
 * Sᵀq / max(|nᵀq|, 1) in unscaled terms), so the backward treats m_t as a
 * constant; it only keeps every exponent <= 0.
 *
 * Layouts: q, k [B,T,H,K]; v, out [B,T,H,V]; igate ĩ, fgate f̃ [B,T,H].
 * State: S̄ [B,H,K,V], n̄ [B,H,K], m [B,H]. A NULL initial state means
 * S̄ = 0, n̄ = 0, m = 0.
 */
#ifndef SUBQ_OPS_MLSTM_H
#define SUBQ_OPS_MLSTM_H

#include "../core/core.h"

typedef struct {
    int chunk;      /* chunk length L >= 1 (default 64) */
    int exp_forget; /* 0: sigmoid forget gate (default); 1: exponential, log a_t = f̃_t */
} sq_mlstm_opts;

sq_mlstm_opts sq_mlstm_defaults(void);

typedef struct {
    const float *q, *k, *v;
    const float *igate, *fgate; /* pre-activations ĩ, f̃ */
} sq_mlstm_in;

typedef struct {
    float *dq, *dk, *dv, *digate, *dfgate; /* same layouts as the inputs; overwritten */
} sq_mlstm_grad;

typedef struct {
    float *S; /* [B,H,K,V] scaled matrix memory S̄ */
    float *n; /* [B,H,K]   scaled normalizer n̄ */
    float *m; /* [B,H]     stabilizer m */
} sq_mlstm_state;

/* Floats of workspace that fwd and bwd need for dims d (see sq_work_or_alloc). */
size_t sq_mlstm_work_floats(sq_dims d, const sq_mlstm_opts *o);

/* Chunkwise forward over [B,T,H,·]. opts NULL = defaults. s0 NULL = zero
 * state. s1 (may be NULL) receives the final state; s1 may equal s0. */
int sq_mlstm_fwd(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in,
                 const sq_mlstm_state *s0, float *out, sq_mlstm_state *s1, float *work);

/* Backward of sq_mlstm_fwd. dout [B,T,H,V]; ds1 (may be NULL = zero) is the
 * gradient w.r.t. the final state's S̄ and n̄ (its m is ignored). Gradients of
 * every input are written to g; ds0 (may be NULL) receives the gradient
 * w.r.t. the initial S̄, n̄ and m. */
int sq_mlstm_bwd(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in,
                 const sq_mlstm_state *s0, const float *dout, const sq_mlstm_state *ds1,
                 sq_mlstm_grad *g, sq_mlstm_state *ds0, float *work);

/* One token (d.T must be 1): the recurrence above, state updated in place. */
int sq_mlstm_step(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in,
                  sq_mlstm_state *s, float *out);

#endif
