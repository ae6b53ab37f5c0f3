/* The shared chunkwise machinery of (U1)-(U3) for scalar gates (b_t = 0):
 * mLSTM, Mamba-2 SSD and linear attention are this one recurrence per
 * (batch, head) with different gates (DESIGN.md §2).
 *
 * For one head, with log-decay λ_t = log a_t and log-write w_t = log c_t:
 *   S_t = e^{λ_t} S_{t-1} + e^{w_t} k_t v_tᵀ                       (U1)
 *   n_t = e^{λ_t} n_{t-1} + e^{w_t} k_t                             (U2, with normalize)
 *   h_t = s S_tᵀ q_t,  N_t = s n_tᵀ q_t   (s = qscale)
 *   o_t = h_t                   (no normalizer)
 *   o_t = h_t / max(|N_t|, 1)   (normalize, (U3) of mLSTM)
 * With stabilize, states are kept scaled, S̄ = S e^{-m}, by the stabilizer
 * m_t = max(λ_t + m_{t-1}, w_t); in chunk-local cumulative log-decays
 * F_j = Σ_{r<=j} λ_r this is the running maximum
 *   m_j = F_j + max(m_prev, max_{s<=j}(w_s - F_s)),
 * so every exponent below is <= 0. Without stabilize, m ≡ 0.
 *
 * Chunkwise form, chunk of length L with incoming state S̄_prev:
 *   A_js = e^{F_j - F_s + w_s - m_j} (s <= j),  α_j = e^{F_j + m_prev - m_j}
 *   h̄_j  = Σ_{s<=j} s (q_j·k_s) A_js v_s + α_j s S̄_prevᵀ q_j
 *   S̄_next = e^{F_L + m_prev - m_L} S̄_prev + Σ_s e^{F_L - F_s + w_s - m_L} k_s v_sᵀ
 * computed with GEMMs: Q Kᵀ masked by A, times V, plus (α⊙Q) S̄_prev.
 *
 * The output does not depend on m mathematically, so the backward treats m
 * as a constant (exact for o, and for a final-state gradient taken w.r.t.
 * the unscaled state S̄ e^{m}, which is what any continuation sees).
 */
#ifndef SUBQ_OPS_SCALAR_CHUNK_H
#define SUBQ_OPS_SCALAR_CHUNK_H

#include <stddef.h>

typedef struct {
    int T, K, V, L;        /* steps, key width, value width, chunk length */
    float qscale;          /* s */
    int stabilize;         /* keep m (mLSTM) */
    int normalize;         /* divide by max(|N|, e^{-m}) (mLSTM) */
    const float *q, *k, *v; /* row t at q + t*ldq etc. */
    size_t ldq, ldk, ldv;
    const float *lam;      /* λ [T] */
    const float *w;        /* w [T], NULL = 0 */
} sc_seq;

/* A head's state: S̄ [K,V]; n̄ [K] (normalize); m (stabilize). NULL S or n
 * in an initial state means zero. */
typedef struct {
    float *S, *n, *m;
} sc_state;

/* Floats of workspace one head needs for sc_fwd (bwd = 0) or sc_bwd (bwd = 1). */
size_t sc_work_floats(int T, int K, int V, int L, int bwd);

/* Forward of one head: o rows at o + t*ldo; s1 (fields may be NULL)
 * receives the final state. */
void sc_fwd(const sc_seq *s, const sc_state *s0, float *o, size_t ldo, sc_state *s1, float *work);

/* Backward of one head. dout rows at dout + t*lddo; ds1 (fields may be
 * NULL) is the gradient w.r.t. the final S̄, n̄. Writes dq, dk, dv (rows
 * with their strides), dlam [T], dw [T] (may be NULL), and ds0's S, n (may
 * be NULL) with the gradient w.r.t. the initial S̄, n̄. */
void sc_bwd(const sc_seq *s, const sc_state *s0, const float *dout, size_t lddo, const sc_state *ds1,
            float *dq, size_t lddq, float *dk, size_t lddk, float *dv, size_t lddv, float *dlam, float *dw,
            sc_state *ds0, float *work);

#endif
