/* The scalar-gate chunkwise operators' shared pieces (scalar_chunk.cu: the
 * float32 forward and backward; scalar_chunk_bf16.cu: the fused bf16
 * forward on the tensor cores): their arguments, workspace and the gate
 * stages that both run. */
#ifndef SUBQ_SCALAR_CHUNK_H
#define SUBQ_SCALAR_CHUNK_H

#include "cuda.h"
#include "cuda_bf16.h"

typedef struct {
    int B, T, H, K, V, L, nc, Tp;
    float qscale;
    int stabilize, normalize;
    int gates; /* 0: λ = w = 0 (linear attention); 1: λ = logsigmoid(f̃) (or f̃), w = ĩ (mLSTM) */
    int exp_forget;
    const float *q, *k, *v, *ig, *fg;
    const float *S0, *n0, *m0;
    float *out, *S1, *n1, *m1;
    int ssd, G;            /* Mamba-2 SSD with G groups sharing q = C and k = B */
    const float *dt, *dt_bias, *A, *D;
    const sq_bf16 *qb, *kb, *vb; /* the fused bf16 kernels' q, k, v (SSD: q = Cm, k = Bm, v = x) and out */
    sq_bf16 *outb;
    const sq_bf16 *dob;          /* the fused bf16 backward: the output's gradient, */
    sq_bf16 *dhb;                /* dH = dO / D (normalize; workspace, [B,T,H,V]), */
    sq_bf16 *dqb, *dkb, *dvb;    /* and the inputs' gradients (SSD: dCm, dBm, dx) */
} sc_args;

/* Device workspace, carved from one allocation. */
typedef struct {
    float *qt, *kt, *vt;   /* [BH, Tp, K|V] */
    float *scaled;         /* [BH, Tp, K]: γ⊙K, then α⊙Q */
    float *Z;              /* [BH, nc, L, L] */
    float *O;              /* [BH, Tp, V] */
    float *dS, *Sin;       /* [BH, nc, K, V] (the fused bf16 forward: Sin holds bf16) */
    float *dn, *nin;       /* [BH, nc, K] */
    double *F, *R, *M;     /* [BH, Tp]: F_j, r_j, m_j */
    float *w, *alpha, *gamma, *rowZ; /* [BH, Tp]; rowZ becomes the divisor max(|N|, e^{-m}) */
    double *mprev;         /* [BH, nc] */
    float *beta;           /* [BH, nc] */
    float *N;              /* [BH, Tp] the normalizer before max(|N|, e^{-m}) */
    float *delta;          /* [BH, Tp] SSD's Δ_t (0 on padded steps) */
    double *acc;           /* [3H] SSD's per-head gradient sums */
    /* backward only */
    float *dH, *dVt;       /* [BH, Tp, V] */
    float *dQt, *dKt, *Rb; /* [BH, Tp, K] */
    float *dN, *cs, *colE; /* [BH, Tp] */
    double *dF;            /* [BH, Tp] */
    float *Gm, *G;         /* [BH, nc, L, L] */
    float *dSn, *dnn, *un; /* [BH, nc, K, V], [BH, nc, K] x2: the gradient w.r.t. each chunk's outgoing state */
} sc_work;


/* The backward's gradients: dout and the final state's (may be NULL) in,
 * the rest out (scalar_chunk.cu's backward header gives the math). The
 * fused bf16 backward takes dout, dq, dk, dv from sc_args' bf16 fields. */
typedef struct {
    const float *dout, *dS1, *dn1;           /* [B,T,H,V]; final-state gradients (may be NULL) */
    float *dq, *dk, *dv, *dig, *dfg, *dS0, *dn0, *dm0; /* dig, dfg, dm0: mLSTM only; dS0, dn0, dm0 may be NULL */
    float *ddt, *ddt_bias, *dA, *dD;                   /* SSD only (then dq = dCm, dk = dBm) */
} sc_grads;

/* The gates of every step, in parallel except two short scans: F_j, r_j,
 * the stabilizer m_j and m_prev per chunk (m1 written when asked), α_j,
 * γ_j, β per chunk, and SSD's Δ_t (scalar_chunk.cu's header gives the math). */
int cu_scalar_gates(const char *op, const sc_args *a, const sc_work &w);

/* The fused bf16 forward's stages (scalar_chunk_bf16.cu) on a workspace
 * carved at chunk a->L = 64; ctx unused. */
int cu_scalar_fused_stages(const char *op, const sc_args *a, const sc_work &w, const void *ctx);

/* The fused bf16 backward's stages up to the gate pre-activations
 * (scalar_chunk_bf16.cu): gates, walk, dH and dN, reverse walk, per-chunk
 * gradients. Leaves dλ in w.dF, dw in w.colE; SSD: dQ, dK (k = Δ B) in
 * w.dQt, w.dKt, dK·B in w.cs, Σ dy ⊙ x per head in w.acc[2H..3H). */
int cu_scalar_fused_bwd_stages(const char *op, const sc_args *a, const sc_work &w, const sc_grads *g);

/* The bf16 forwards on the fused kernels, with the float32 ones' checks;
 * for shapes where sq_cuda_scalar_fused_bf16 holds and q, k, v, out
 * 16-byte aligned (bf16.cu decides). */
int cu_mlstm_fwd_fused(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in_bf16 *in, const sq_mlstm_state *s0,
                       sq_bf16 *out, sq_mlstm_state *s1, float *work);
int cu_linattn_fwd_fused(sq_dims d, const sq_linattn_opts *o, const sq_bf16 *q, const sq_bf16 *k, const sq_bf16 *v,
                         const float *S0, sq_bf16 *out, float *S1, float *work);
int cu_ssd_fwd_fused(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in_bf16 *in, const float *S0, sq_bf16 *y,
                     float *S1, float *work);

/* The bf16 backwards on the fused kernels (sq_cuda_scalar_fused_bf16_bwd's
 * shapes, 16-byte aligned tensors; bf16.cu decides), with the float32
 * ones' checks of everything but the bf16 pointers. */
int cu_mlstm_bwd_fused(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in_bf16 *in, const sq_mlstm_state *s0,
                       const sq_bf16 *dout, const sq_mlstm_state *ds1, sq_mlstm_grad_bf16 *g, sq_mlstm_state *ds0,
                       float *work);
int cu_linattn_bwd_fused(sq_dims d, const sq_linattn_opts *o, const sq_bf16 *q, const sq_bf16 *k, const sq_bf16 *v,
                         const float *S0, const sq_bf16 *dout, const float *dS1, sq_bf16 *dq, sq_bf16 *dk,
                         sq_bf16 *dv, float *dS0, float *work);
int cu_ssd_bwd_fused(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in_bf16 *in, const float *S0, const sq_bf16 *dy,
                     const float *dS1, sq_ssd_grad_bf16 *g, float *dS0, float *work);

#endif
