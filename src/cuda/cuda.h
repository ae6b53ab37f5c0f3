/* The CUDA backend (DESIGN.md §4, roadmap step 3): device buffers and the
 * operators on the GPU, with the same math, layouts and state conventions
 * as src/ops (which is their reference). Built when nvcc is present
 * (Makefile: build/libsubq_cuda.a); every function returns SQ_OK or an
 * error code with a message in sq_last_error().
 *
 * All tensor pointers given to sq_cuda_* operators are DEVICE pointers.
 *
 * Built: the five operators and linear attention (chunkwise or tiled
 * forward, backward, decode step) and the layers (cuda_layers.h), in
 * float32; bf16 entry points in cuda_bf16.h (docs/cuda.md). */
#ifndef SUBQ_CUDA_H
#define SUBQ_CUDA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "../core/core.h"
#include "../ops/attn.h"
#include "../ops/gdn.h"
#include "../ops/linattn.h"
#include "../ops/mlstm.h"
#include "../ops/slstm.h"
#include "../ops/ssd.h"
#include "../layers/backend.h"
#include "cuda_layers.h"
#include "cuda_bf16.h"

/* SQ_OK when a CUDA device is usable; its description goes to name. */
int sq_cuda_device(char *name, size_t n);
int sq_cuda_malloc(float **p, size_t n);
void sq_cuda_free(void *p);
int sq_cuda_upload(float *dst, const float *src, size_t n);
int sq_cuda_download(float *dst, const float *src, size_t n);
/* dst[0..n) = v (to poison outputs in tests). */
int sq_cuda_fill(float *dst, float v, size_t n);
/* Waits for the device and reports an asynchronous error. */
int sq_cuda_sync(void);
/* The device's ceilings, measured: device-to-device copy rate in TB/s
 * (bytes read plus written, best of a few 1 GiB copies) and the cuBLAS
 * GEMM rate in TFLOP/s at n×n×n (float32 pedantic, or bf16 with float32
 * accumulation on the tensor cores). */
int sq_cuda_copy_rate(double *tb_per_s);
int sq_cuda_gemm_rate(int bf16, int n, double *tflops);

/* The layers' matrix products (linear fwd/bwd: the projections, the MLPs,
 * the LM head): SQ_CUDA_MATH_F32 (default: float32 on the CUDA cores),
 * SQ_CUDA_MATH_TF32 (float32 in and out, products on the tensor cores with
 * inputs rounded to TF32's 10-bit mantissa, as PyTorch's allow_tf32) or
 * SQ_CUDA_MATH_BF16 (float32 in and out, inputs rounded to bf16 on the
 * tensor cores, float32 accumulation: cuBLAS's COMPUTE_32F_FAST_16BF; and
 * the model's causal attention through the bf16 tensor-core kernel of
 * cuda_bf16.h, its q, k, v rounded to bf16). The other operators' products
 * stay float32 in every mode (their normalisers and decays need it).
 * Parameters, activations and optimizer state stay float32. Process-wide. */
enum { SQ_CUDA_MATH_F32 = 0, SQ_CUDA_MATH_TF32 = 1, SQ_CUDA_MATH_BF16 = 2 };
int sq_cuda_set_layer_math(int mode);

/* Device floats of workspace for the scalar-gate operators (mLSTM,
 * linear attention, SSD) at dims d and chunk length; `work` NULL lets a call
 * allocate (and free) it itself. */
size_t sq_cuda_scalar_work_floats(sq_dims d, int chunk);
/* sq_mlstm_fwd on the device (float32). States as on the CPU (device
 * pointers; s0 NULL = zero state; s1 may be NULL or equal to s0). */
int sq_cuda_mlstm_fwd(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in, const sq_mlstm_state *s0, float *out,
                      sq_mlstm_state *s1, float *work);
/* sq_mlstm_bwd on the device (float32): gradients of q, k, v, both gates
 * and the initial state (ds0 may be NULL), given dout and optionally the
 * final state's gradient ds1 (S and n; NULL = zero). */
int sq_cuda_mlstm_bwd(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in, const sq_mlstm_state *s0,
                      const float *dout, const sq_mlstm_state *ds1, sq_mlstm_grad *g, sq_mlstm_state *ds0, float *work);
/* sq_linattn_fwd on the device (float32); S0/S1 [B,H,K,V] as on the CPU. */
int sq_cuda_linattn_fwd(sq_dims d, const sq_linattn_opts *o, const float *q, const float *k, const float *v,
                        const float *S0, float *out, float *S1, float *work);
/* sq_linattn_bwd on the device (float32); dS1, dS0 may be NULL. */
int sq_cuda_linattn_bwd(sq_dims d, const sq_linattn_opts *o, const float *q, const float *k, const float *v,
                        const float *S0, const float *dout, const float *dS1, float *dq, float *dk, float *dv,
                        float *dS0, float *work);

/* sq_ssd_fwd / sq_ssd_bwd (Mamba-2 SSD) on the device (float32), same
 * layouts, groups and gradients as on the CPU; dS1, dS0 may be NULL. */
int sq_cuda_ssd_fwd(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in, const float *S0, float *y, float *S1,
                    float *work);
int sq_cuda_ssd_bwd(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in, const float *S0, const float *dy,
                    const float *dS1, sq_ssd_grad *g, float *dS0, float *work);

/* The decode steps (d.T must be 1; states updated in place), as
 * sq_mlstm_step / sq_linattn_step / sq_ssd_step on the CPU. */
int sq_cuda_mlstm_step(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in, sq_mlstm_state *s, float *out);
int sq_cuda_linattn_step(sq_dims d, const float *q, const float *k, const float *v, float *S, float *out);
int sq_cuda_ssd_step(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in, float *S, float *y);

/* Gated DeltaNet (src/ops/gdn.h) on the device (float32): chunkwise WY/UT
 * forward, backward and the decode step; same layouts, options, states
 * and gradients as on the CPU. work NULL lets a call allocate its own;
 * a given one must be 16-byte aligned (sq_cuda_malloc's are). */
size_t sq_cuda_gdn_work_floats(sq_dims d, const sq_gdn_opts *o);
int sq_cuda_gdn_fwd(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in, const float *S0, float *out, float *S1,
                    float *work);
int sq_cuda_gdn_bwd(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in, const float *S0, const float *dout,
                    const float *dS1, sq_gdn_grad *g, float *dS0, float *work);
int sq_cuda_gdn_step(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in, float *S, float *out);

/* sLSTM (src/ops/slstm.h) on the device (float32): forward, backward
 * through time and the step; same layouts, states and gradients. */
size_t sq_cuda_slstm_work_floats(sq_dims d, const sq_slstm_opts *o);
int sq_cuda_slstm_fwd(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in, const sq_slstm_state *s0, float *out,
                      sq_slstm_state *s1, float *work);
int sq_cuda_slstm_bwd(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in, const sq_slstm_state *s0,
                      const float *dout, const sq_slstm_state *ds1, sq_slstm_grad *g, sq_slstm_state *ds0,
                      float *work);
int sq_cuda_slstm_step(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in, sq_slstm_state *s, float *out);

/* Causal softmax attention (src/ops/attn.h) on the device (float32), tile
 * by tile with an online softmax; the KV cache's k, v are device arrays
 * (len and cap are host ints, as on the CPU). */
size_t sq_cuda_attn_work_floats(sq_dims d, const sq_attn_opts *o);
int sq_cuda_attn_fwd(sq_dims d, const sq_attn_opts *o, const float *q, const float *k, const float *v,
                     const sq_attn_cache *cache0, float *out, sq_attn_cache *cache1, float *work);
int sq_cuda_attn_bwd(sq_dims d, const sq_attn_opts *o, const float *q, const float *k, const float *v,
                     const sq_attn_cache *cache0, const float *dout, float *dq, float *dk, float *dv,
                     sq_attn_cache *dcache0, float *work);
int sq_cuda_attn_step(sq_dims d, const sq_attn_opts *o, const float *q, const float *k, const float *v,
                      sq_attn_cache *cache, float *out);

/* The backend table of the GPU (src/layers/backend.h): every member is the
 * sq_cuda_* function of the CPU member's name, on device memory. */
const sq_backend *sq_cuda_backend(void);

#ifdef __cplusplus
}
#endif

#endif
