/* float64 references: the naive recurrences of DESIGN.md §2, step by step,
 * written for clarity, not speed. Every operator is checked against these
 * (tests/) and `subq bench ops` reports its error against them.
 * Inputs and outputs use the same layouts as the float32 operators in
 * src/ops/<op>.h, in double. A NULL initial state means the zero state (m = 0);
 * a NULL final-state pointer means "not wanted". */
#ifndef SUBQ_TEST_REF_H
#define SUBQ_TEST_REF_H

#include "../src/core/core.h"

/* mLSTM (src/ops/mlstm.h). */
typedef struct { const double *q, *k, *v, *igate, *fgate; } ref_mlstm_in;
typedef struct { double *S, *n, *m; } ref_mlstm_state;
void ref_mlstm_fwd(sq_dims d, int exp_forget, const ref_mlstm_in *in, const ref_mlstm_state *s0,
                   double *out, ref_mlstm_state *s1);

/* Linear attention (src/ops/linattn.h). */
void ref_linattn_fwd(sq_dims d, const double *q, const double *k, const double *v, const double *S0,
                     double *out, double *S1);

/* Mamba-2 SSD (src/ops/ssd.h); G = ngroups. */
typedef struct { const double *x, *Bm, *Cm, *dt, *dt_bias, *A, *D; } ref_ssd_in;
void ref_ssd_fwd(sq_dims d, int ngroups, const ref_ssd_in *in, const double *S0, double *y, double *S1);

/* Gated DeltaNet (src/ops/gdn.h). */
typedef struct { const double *q, *k, *v, *alpha, *beta, *A_log, *dt_bias; } ref_gdn_in;
void ref_gdn_fwd(sq_dims d, int neg_eigval, int qk_l2norm, const ref_gdn_in *in, const double *S0,
                 double *out, double *S1);

/* sLSTM (src/ops/slstm.h). */
typedef struct { const double *gx, *R, *bias; } ref_slstm_in;
typedef struct { double *c, *n, *m, *h; } ref_slstm_state;
void ref_slstm_fwd(sq_dims d, int exp_forget, const ref_slstm_in *in, const ref_slstm_state *s0,
                   double *out, ref_slstm_state *s1);

/* Causal softmax attention (src/ops/attn.h) over P cached positions
 * kc [B,H,P,K], vc [B,H,P,V] (P may be 0, then kc, vc may be NULL) followed
 * by the T new ones. */
void ref_attn_fwd(sq_dims d, const double *q, const double *k, const double *v, int P,
                  const double *kc, const double *vc, double *out);

#endif
