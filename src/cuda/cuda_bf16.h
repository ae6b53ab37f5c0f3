/* bf16 inputs and outputs on the GPU (the bf16 mode; docs/cuda.md).
 *
 * A bf16 entry point takes the sequence tensors (q, k, v, x, B, C, the
 * sLSTM's gate pre-activations gx), the output and their gradients as
 * bfloat16 (sq_bf16: the upper 16 bits of a float32, rounded to nearest
 * even), and everything else as float32: the gates and per-head parameters
 * (and their gradients), the states (the attention's KV cache included) and
 * every accumulation. The result is the float32 operator's on the same
 * (bf16) values, to bf16 rounding and the internal rounding stated below.
 *
 * How each runs:
 *   attention   tensor cores (mma.sync m16n8k16, bf16 operands, float32
 *               accumulation); the scores' P and dS are rounded to bf16
 *               before they multiply V, dO, K and Q, as in FlashAttention.
 *   mLSTM, linear attention, SSD forward, where sq_cuda_scalar_fused_bf16
 *               holds (chunk 64, T >= 64, K % 8 == 0, K <= 128, V % 64 == 0)
 *               and q, k, v, out are 16-byte aligned: fused chunkwise
 *               kernels on the tensor cores (scalar_chunk_bf16.cu): a walk
 *               over the chunks keeps the state in registers and stores
 *               each chunk's incoming state in bf16; a kernel per chunk
 *               computes the masked scores, Z V and the state's term. The
 *               decays, the scores' mask and the normalizer are float32,
 *               Z and the states are rounded to bf16 before they multiply
 *               (the mLSTM's incoming state as two bf16 halves, hi + lo).
 *   their backward, where sq_cuda_scalar_fused_bf16_bwd holds (also
 *               V <= 128) and q, k, v, dout and the gradients are 16-byte
 *               aligned: the forward's walk, then (mLSTM) the output kernel
 *               again for dH = dO / D and dN, a reverse walk for each
 *               chunk's outgoing state gradient (bf16), and one kernel per
 *               chunk for dQ, dK, dV and the gates' terms; Z, dH and the
 *               states are rounded to bf16 before they multiply, the
 *               scores' gradient G is taken as two bf16 halves.
 *   Gated DeltaNet  q, k, v, dout read as bf16 and out, dq, dk, dv written
 *               as bf16 by gdn.cu itself, its workspace float32; where the
 *               chunk is 64 and K % 8 == 0, K <= 128 (cu_gdn_scan_tc_fits):
 *               the chunk products (Gram matrices, UT transform, W, U, the
 *               output, the backward's per-chunk products) and both scans
 *               on the tensor cores with every operand in two bf16 halves
 *               (hi + lo, about 16 bits), float32 states; otherwise its
 *               float32 kernels with TF32 products.
 *   the others  the bf16 tensors are widened into a float32 staging area,
 *               the float32 operator runs with its matrix products on the
 *               TF32 tensor cores (the mLSTM's in float32: its normalizer
 *               amplified TF32's rounding), and the outputs are rounded to bf16:
 *               half the caller's memory, the float32 operator's time
 *               (less the products') plus the conversions.
 *
 * Workspace: `work` NULL lets a call allocate its own; otherwise at least
 * sq_cuda_<op>_bf16_work_floats(d, o) floats (the float32 operator's
 * workspace plus the staging), 16-byte aligned as sq_cuda_malloc's buffers
 * are (GDN refuses a workspace that is not). */
#ifndef SUBQ_CUDA_BF16_H
#define SUBQ_CUDA_BF16_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint16_t sq_bf16;

/* Device arrays of bf16: allocation (n elements) and conversions; upload
 * and download copy bf16 bits between host and device as they are. */
int sq_cuda_malloc_bf16(sq_bf16 **p, size_t n);
int sq_cuda_to_bf16(sq_bf16 *dst, const float *src, size_t n);   /* round to nearest even */
int sq_cuda_from_bf16(float *dst, const sq_bf16 *src, size_t n); /* exact */
int sq_cuda_upload_bf16(sq_bf16 *dst, const sq_bf16 *src, size_t n);
int sq_cuda_download_bf16(sq_bf16 *dst, const sq_bf16 *src, size_t n);

/* 1 when the mLSTM, linear attention and SSD bf16 forwards at dims d and
 * this chunk run the fused tensor-core kernels (given aligned tensors); 0
 * when they take the staging path. */
int sq_cuda_scalar_fused_bf16(sq_dims d, int chunk);
/* Likewise for their bf16 backwards: the forward's shapes with V <= 128. */
int sq_cuda_scalar_fused_bf16_bwd(sq_dims d, int chunk);

/* ---- mLSTM: q, k [B,T,H,K], v, out [B,T,H,V] bf16; gates, states float32 ---- */
typedef struct {
    const sq_bf16 *q, *k, *v;
    const float *igate, *fgate;
} sq_mlstm_in_bf16;
typedef struct {
    sq_bf16 *dq, *dk, *dv;
    float *digate, *dfgate;
} sq_mlstm_grad_bf16;
size_t sq_cuda_mlstm_bf16_work_floats(sq_dims d, const sq_mlstm_opts *o);
int sq_cuda_mlstm_fwd_bf16(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in_bf16 *in, const sq_mlstm_state *s0,
                           sq_bf16 *out, sq_mlstm_state *s1, float *work);
int sq_cuda_mlstm_bwd_bf16(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in_bf16 *in, const sq_mlstm_state *s0,
                           const sq_bf16 *dout, const sq_mlstm_state *ds1, sq_mlstm_grad_bf16 *g,
                           sq_mlstm_state *ds0, float *work);

/* ---- Mamba-2 SSD: x [B,T,H,V], Bm, Cm [B,T,G,K], y bf16; dt and the per-head
 * parameters float32 ---- */
typedef struct {
    const sq_bf16 *x, *Bm, *Cm;
    const float *dt, *dt_bias, *A, *D;
} sq_ssd_in_bf16;
typedef struct {
    sq_bf16 *dx, *dBm, *dCm;
    float *ddt, *ddt_bias, *dA, *dD;
} sq_ssd_grad_bf16;
size_t sq_cuda_ssd_bf16_work_floats(sq_dims d, const sq_ssd_opts *o);
int sq_cuda_ssd_fwd_bf16(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in_bf16 *in, const float *S0, sq_bf16 *y,
                         float *S1, float *work);
int sq_cuda_ssd_bwd_bf16(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in_bf16 *in, const float *S0,
                         const sq_bf16 *dy, const float *dS1, sq_ssd_grad_bf16 *g, float *dS0, float *work);

/* ---- Gated DeltaNet: q, k, v, out bf16; alpha, beta and parameters float32 ---- */
typedef struct {
    const sq_bf16 *q, *k, *v;
    const float *alpha, *beta, *A_log, *dt_bias;
} sq_gdn_in_bf16;
typedef struct {
    sq_bf16 *dq, *dk, *dv;
    float *dalpha, *dbeta, *dA_log, *ddt_bias;
} sq_gdn_grad_bf16;
size_t sq_cuda_gdn_bf16_work_floats(sq_dims d, const sq_gdn_opts *o);
int sq_cuda_gdn_fwd_bf16(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in_bf16 *in, const float *S0, sq_bf16 *out,
                         float *S1, float *work);
int sq_cuda_gdn_bwd_bf16(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in_bf16 *in, const float *S0,
                         const sq_bf16 *dout, const float *dS1, sq_gdn_grad_bf16 *g, float *dS0, float *work);

/* ---- sLSTM: gx [B,T,H,4K] and out [B,T,H,K] bf16; R, bias, states float32 ---- */
typedef struct {
    const sq_bf16 *gx;
    const float *R, *bias;
} sq_slstm_in_bf16;
typedef struct {
    sq_bf16 *dgx;
    float *dR, *dbias;
} sq_slstm_grad_bf16;
size_t sq_cuda_slstm_bf16_work_floats(sq_dims d, const sq_slstm_opts *o);
int sq_cuda_slstm_fwd_bf16(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in_bf16 *in, const sq_slstm_state *s0,
                           sq_bf16 *out, sq_slstm_state *s1, float *work);
int sq_cuda_slstm_bwd_bf16(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in_bf16 *in, const sq_slstm_state *s0,
                           const sq_bf16 *dout, const sq_slstm_state *ds1, sq_slstm_grad_bf16 *g,
                           sq_slstm_state *ds0, float *work);

/* ---- linear attention: q, k, v, out bf16; S0, S1 float32 ---- */
size_t sq_cuda_linattn_bf16_work_floats(sq_dims d, const sq_linattn_opts *o);
int sq_cuda_linattn_fwd_bf16(sq_dims d, const sq_linattn_opts *o, const sq_bf16 *q, const sq_bf16 *k,
                             const sq_bf16 *v, const float *S0, sq_bf16 *out, float *S1, float *work);
int sq_cuda_linattn_bwd_bf16(sq_dims d, const sq_linattn_opts *o, const sq_bf16 *q, const sq_bf16 *k,
                             const sq_bf16 *v, const float *S0, const sq_bf16 *dout, const float *dS1, sq_bf16 *dq,
                             sq_bf16 *dk, sq_bf16 *dv, float *dS0, float *work);

/* ---- causal softmax attention on the tensor cores: q, k [B,T,H,K], v, out
 * [B,T,H,V] bf16, K and V <= 128; the KV cache stays float32 (cache0 is
 * read and rounded to bf16 on load; cache1 receives k, v widened) ---- */
size_t sq_cuda_attn_bf16_work_floats(sq_dims d, const sq_attn_opts *o);
int sq_cuda_attn_fwd_bf16(sq_dims d, const sq_attn_opts *o, const sq_bf16 *q, const sq_bf16 *k, const sq_bf16 *v,
                          const sq_attn_cache *cache0, sq_bf16 *out, sq_attn_cache *cache1, float *work);
/* dcache0 (float32, may be NULL) receives the gradient of cache0's positions. */
int sq_cuda_attn_bwd_bf16(sq_dims d, const sq_attn_opts *o, const sq_bf16 *q, const sq_bf16 *k, const sq_bf16 *v,
                          const sq_attn_cache *cache0, const sq_bf16 *dout, sq_bf16 *dq, sq_bf16 *dk, sq_bf16 *dv,
                          sq_attn_cache *dcache0, float *work);

#ifdef __cplusplus
}
#endif

#endif
