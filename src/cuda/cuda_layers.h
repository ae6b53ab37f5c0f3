/* The layers (src/layers) and the optimizer update (src/train/optim.h)
 * on the GPU, float32: same names with the sq_cuda_ prefix, same arguments,
 * layouts and semantics as on the CPU (read those headers for the math),
 * with DEVICE pointers for every tensor, token and target array.
 * Parameter gradients accumulate (+=), activation gradients are written.
 * Matrix products go through the layers' cuBLAS handle: float32 (pedantic,
 * no TF32) unless sq_cuda_set_layer_math chose TF32.
 *
 * Host-side results: sq_cuda_xent_fwd_bwd's loss and count, and the global
 * norm, are host values (those calls wait for the device). The token and
 * target checks run on the device and are reported back, so the embedding
 * calls and the cross-entropy also wait for the device.
 *
 * Determinism: every reduction runs in a fixed order (bitwise repeatable)
 * except sq_cuda_embed_bwd, which adds rows of repeated tokens with float
 * atomics (the order of those additions may vary from run to run).
 *
 * Not safe to call from several host threads at once: like the cuBLAS
 * handle, a small per-device scratch buffer (flags, per-row losses, norm
 * partials) is shared by the calls of the process. */
#ifndef SUBQ_CUDA_LAYERS_H
#define SUBQ_CUDA_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "../train/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* int32 token / target arrays on the device (free with sq_cuda_free). */
int sq_cuda_malloc_i32(int32_t **p, size_t n);
int sq_cuda_upload_i32(int32_t *dst, const int32_t *src, size_t n);

/* linear.h: y = x Wᵀ + b, W [out, in]; b, db, dx may be NULL as on the CPU. */
int sq_cuda_linear_fwd(int N, int in, int out, const float *x, const float *W, const float *b, float *y);
/* y += x Wᵀ + b (linear.h's sq_linear_fwd_acc). */
int sq_cuda_linear_fwd_acc(int N, int in, int out, const float *x, const float *W, const float *b, float *y);
int sq_cuda_linear_bwd(int N, int in, int out, const float *x, const float *W, const float *dy, float *dx,
                       float *dW, float *db);
int sq_cuda_linear_bwd_acc(int N, int in, int out, const float *x, const float *W, const float *dy, float *dx,
                           float *dW, float *db);

/* norm.h: grouped LayerNorm / RMSNorm with saved μ, r; and the row L2 norm. */
int sq_cuda_norm_fwd(int N, int G, int Dg, int center, float eps, const float *x, const float *w, const float *b,
                     float *y, float *mu, float *r);
int sq_cuda_norm_bwd(int N, int G, int Dg, int center, const float *x, const float *w, const float *mu,
                     const float *r, const float *dy, float *dx, float *dw, float *db);
int sq_cuda_l2norm_fwd(int N, int D, float eps, const float *x, float *y, float *rnorm);
int sq_cuda_l2norm_bwd(int N, int D, const float *x, const float *rnorm, const float *dy, float *dx);

/* act.h: SiLU, GELU (tanh approximation), SwiGLU. */
int sq_cuda_silu_fwd(size_t n, const float *x, float *y);
int sq_cuda_silu_bwd(size_t n, const float *x, const float *dy, float *dx);
int sq_cuda_gelu_fwd(size_t n, const float *x, float *y);
int sq_cuda_gelu_bwd(size_t n, const float *x, const float *dy, float *dx);
int sq_cuda_swiglu_fwd(size_t n, const float *a, const float *b, float *y);
int sq_cuda_swiglu_bwd(size_t n, const float *a, const float *b, const float *dy, float *da, float *dbv);

/* conv1d.h: causal depthwise conv over time with the state of the last W-1 inputs. */
int sq_cuda_conv1d_fwd(int B, int T, int C, int W, const float *x, const float *w, const float *bias,
                       const float *state0, float *y, float *state1);
int sq_cuda_conv1d_bwd(int B, int T, int C, int W, const float *x, const float *w, const float *state0,
                       const float *dy, float *dx, float *dw, float *dbias, float *dstate0);

/* embed.h: embedding (tokens: device int32; a token outside [0, vocab) is
 * SQ_EINVAL and nothing is written), RoPE, and the fused cross-entropy
 * (targets: device int32; loss and count: HOST pointers). */
int sq_cuda_embed_fwd(int N, int vocab, int D, const int32_t *tokens, const float *W, float *y);
int sq_cuda_embed_bwd(int N, int vocab, int D, const int32_t *tokens, const float *dy, float *dW);
int sq_cuda_rope_fwd(int B, int T, int H, int D, int pos0, float base, const float *x, float *y);
int sq_cuda_rope_bwd(int B, int T, int H, int D, int pos0, float base, const float *dy, float *dx);
int sq_cuda_xent_fwd_bwd(int N, int V, const float *logits, const int32_t *targets, float *loss, float *dlogits,
                         int *count);

/* elem.h: the blocks' elementwise and memory primitives (src/cuda/elem.cu). */
int sq_cuda_copy(size_t n, const float *x, float *y);
int sq_cuda_zero(size_t n, float *x);
int sq_cuda_add_to(size_t n, const float *x, float *y);
int sq_cuda_mul(size_t n, const float *a, const float *b, float *y);
int sq_cuda_div_scalar(size_t n, float d, float *x);
int sq_cuda_copy_cols(int N, int n, const float *src, int lds, float *dst, int ldd);
int sq_cuda_neg_exp_fwd(size_t n, const float *x, float *y);
int sq_cuda_neg_exp_bwd(size_t n, const float *y, const float *dy, float *dx);
int sq_cuda_sigmoid_gate_fwd(size_t n, const float *a, const float *g, float *y);
int sq_cuda_sigmoid_gate_bwd(size_t n, const float *a, const float *g, const float *dy, float *da, float *dg);

/* optim.h: AdamW on device p, g, m, v (c, t, lr on the host). */
int sq_cuda_adamw_update(const sq_adamw_cfg *c, int t, float lr, int decay, float *p, const float *g, float *m,
                         float *v, size_t n);
/* sqrt(Σ g²) over k device buffers g[i] of n[i] floats (the arrays g and n
 * are on the host), accumulated in double in a fixed order. Returns NAN
 * (message in sq_last_error()) when the arguments or the device fail. */
double sq_cuda_global_norm(float *const *g, const size_t *n, int k);
/* Scales every buffer by max_norm / norm when norm > max_norm (max_norm <= 0:
 * no clipping); returns the norm before clipping (NAN on failure). */
double sq_cuda_clip_global_norm(float *const *g, const size_t *n, int k, double max_norm);

#ifdef __cplusplus
}
#endif

#endif
