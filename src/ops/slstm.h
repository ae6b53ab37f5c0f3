/* sLSTM (xLSTM's scalar-memory cell with memory mixing), DESIGN.md §2.
 *
 * Per (batch, head h), cells j = 1..K (K = V = head size), for t = 1..T, with
 * gate pre-activations for g ∈ {i, f, z, o} (in that order):
 *   p_{g,t} = gx_{g,t} + R_{h,g} h_{t-1} + b_{h,g}     (R_{h,g} ∈ R^{K×K}, block-diagonal over heads)
 *   z_t  = tanh(p_z),  log f_t = logsigmoid(p_f)   (exponential forget gate: log f_t = p_f)
 *   m_t  = max(log f_t + m_{t-1}, p_i)                                  (stabilizer)
 *   i'_t = e^{p_i - m_t},  f'_t = e^{log f_t + m_{t-1} - m_t}
 *   c_t  = f'_t c_{t-1} + i'_t z_t,   n_t = f'_t n_{t-1} + i'_t
 *   h_t  = σ(p_o) c_t / n_t
 * (R_{h,g} h)_j = Σ_l R[h][g][j][l] h_l. The output h does not depend on m
 * mathematically; the backward treats m as a constant (the final-state
 * gradient of c and n is taken at fixed m). A cell whose n_{t-1} is 0 (an
 * empty state) takes m_t = p_i: same output, no underflow of e^{p_i - m}.
 *
 * Layouts: gx [B,T,H,4,K] (W x, computed by the block), R [H,4,K,K],
 * bias [H,4,K], out h [B,T,H,K]. State c, n, m, h [B,H,K] each; NULL
 * initial state = c = n = h = 0, m = 0. d.V must equal d.K.
 */
#ifndef SUBQ_OPS_SLSTM_H
#define SUBQ_OPS_SLSTM_H

#include "../core/core.h"

typedef struct {
    int exp_forget; /* 0: sigmoid forget gate (default); 1: exponential */
} sq_slstm_opts;

sq_slstm_opts sq_slstm_defaults(void);

typedef struct { const float *gx, *R, *bias; } sq_slstm_in;
typedef struct { float *dgx, *dR, *dbias; } sq_slstm_grad; /* overwritten */
typedef struct { float *c, *n, *m, *h; } sq_slstm_state;

size_t sq_slstm_work_floats(sq_dims d, const sq_slstm_opts *o);

/* s0 NULL = zero state; s1 may be NULL or equal to s0. */
int sq_slstm_fwd(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in, const sq_slstm_state *s0,
                 float *out, sq_slstm_state *s1, float *work);
/* Backward through time. ds1 (may be NULL = zero) is the gradient w.r.t. the
 * final c, n, h (its m is ignored); ds0 (may be NULL) receives the gradient
 * w.r.t. the initial c, n, m, h. */
int sq_slstm_bwd(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in, const sq_slstm_state *s0,
                 const float *dout, const sq_slstm_state *ds1, sq_slstm_grad *g,
                 sq_slstm_state *ds0, float *work);
/* d.T must be 1; state updated in place. */
int sq_slstm_step(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in, sq_slstm_state *s, float *out);

#endif
