/* Shared by the .cu files: turning a CUDA error into subq's error. */
#ifndef SUBQ_CUDA_INTERNAL_H
#define SUBQ_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "cuda.h"
#include "cuda_bf16.h"

/* SQ_OK, or SQ_EINVAL with "op: <CUDA's message>". */
static inline int cu_check(const char *op, cudaError_t e)
{
    if (e == cudaSuccess) return SQ_OK;
    return sq_fail(SQ_EINVAL, "%s: CUDA error: %s", op, cudaGetErrorString(e));
}

/* Workspace carving: sizes rounded up to 64 floats (256-byte aligned pieces). */
static inline size_t cu_r64(size_t n) { return (n + 63) / 64 * 64; }
/* The next n floats of a workspace cursor *p (which moves past them, rounded up). */
static inline float *cu_take(float **p, size_t n)
{
    float *r = *p;
    *p += cu_r64(n);
    return r;
}

/* The process's cuBLAS handle for the operators, created on first use
 * (float32 math, no TF32). */
int cu_cublas(const char *op, cublasHandle_t *h);
/* The operators' row-major batched float32 products through that handle:
 * C_i = α op(A_i) op(B_i) + β C_i for i < batch (op = transpose when ta/tb),
 * op(A) M×Kd, op(B) Kd×N, element strides sa, sb, sc between the batch's
 * matrices (as column-major cuBLAS computing Cᵀ = op(B)ᵀ op(A)ᵀ). */
int cu_gemm_rm(const char *op, int ta, int tb, int M, int N, int Kd, float alpha, const float *A, int lda,
               long long sa, const float *B, int ldb, long long sb, float beta, float *C, int ldc, long long sc,
               int batch);
/* Whether cu_gemm_rm multiplies on the TF32 tensor cores (10-bit
 * mantissas, float32 accumulation) instead of in float32: set on by the
 * bf16 entry points around their float32 operator (their bound is 1e-2;
 * the layers' math modes leave it alone). Returns the previous setting,
 * which the caller restores. */
int cu_op_tf32(int on);
/* Whether cu_op_tf32 is on: the operators may also run products of their
 * own kernels on the tensor cores (gdn.cu's scans, bf16 in hi and lo halves). */
int cu_op_tf32_on(void);

/* Gated DeltaNet's chunk scan on the tensor cores (gdn_scan_bf16.cu; its
 * header gives the math): per chunk c (reversed when `reverse`)
 * Sst[c] = S; Y_c = Y0_c + s1 X1_c S; S <- eL[c] S + G_c + s2 X2_cᵀ Y_c,
 * G_c read from Sst[c] first when g_in_sst. Rows [BH, Tp, K] and [BH, Tp, V]
 * (chunks of 64 rows), states [BH, nc, K, V]; S_init, S_final [BH, K, V]
 * or NULL (zero; not written). X1 and X2 [BH, Tp, K] come as bf16 hi and lo
 * halves (x ≈ hi + lo). Y may be Y0. Needs cu_gdn_scan_tc_fits. */
typedef struct {
    int BH, nc, Tp, K, V, reverse, g_in_sst;
    float s1, s2;
    const __nv_bfloat16 *X1h, *X1l, *X2h, *X2l;
    const float *Y0, *eL, *S_init;
    float *Y, *Sst, *S_final;
} cu_gdn_scan;
int cu_gdn_scan_tc_fits(int K, int L);
int cu_gdn_scan_tc(const char *op, const cu_gdn_scan *s);

/* GDN's chunk-parallel forward products on the tensor cores (gdn_scan_bf16.cu),
 * per chunk of 64 rows: M = strictly-lower(K̂K̂ᵀ ⊙ Γ), P = causal(Q̂K̂ᵀ ⊙ Γ)
 * [BH·nc, 64, 64], Tm = (I + diag(β) M)^{-1}, W = Tm (βe^γ ⊙ K̂) (as bf16 hi and lo
 * halves Wh, Wl, for the scans), U = Tm (β ⊙ V), from the rows q̂, k̂ [BH·Tp, K], v [BH·Tp, V]
 * and γ (double), β, βe^γ (bg) [BH·Tp]. Same conditions as the scans (cu_gdn_scan_tc_fits). */
typedef struct {
    int BH, nc, Tp, K, V;
    const float *qh, *kh, *vt, *beta, *bg;
    const double *gam;
    float *M, *P, *Tm;
    __nv_bfloat16 *Wh, *Wl;
    float *U;
} cu_gdn_chunk;
int cu_gdn_chunk_tc(const char *op, const cu_gdn_chunk *c);

/* GDN's output on the tensor cores (gdn_scan_bf16.cu): O = Qg Sin + P Ṽ per chunk of 64 rows,
 * from Qg [BH·Tp, K], Sin [BH·nc, K, V], P [BH·nc, 64, 64], Ṽ [BH·Tp, V], written to out
 * [B, T, H, V] (float32), or outb (bf16) when that is not NULL. */
typedef struct {
    int BH, nc, Tp, K, V, B, T, H;
    const float *Qg, *Sin, *P, *Vt;
    float *out;
    __nv_bfloat16 *outb;
} cu_gdn_out;
int cu_gdn_out_tc(const char *op, const cu_gdn_out *c);

/* GDN's backward after the reverse scan on the tensor cores (gdn_scan_bf16.cu), per chunk of
 * 64 rows: Y = Tmᵀ dṼ, the masked dP, dA, dq̂, dk̂, and dγ, dβ, dg of every row, from the
 * forward's workspace (gdn.cu's gd_work, same names) and the scan's dṼ (dVt), dS' (dSn). */
typedef struct {
    int BH, nc, Tp, K, V;
    const float *Tm, *P, *M, *Vt, *dVt, *dOt, *Sin, *dSn, *qh, *kh, *vt, *beta, *eg, *egL, *bg;
    const double *gam;
    float *Y, *dP, *dA, *dQh, *dKh, *dbeta, *dg;
    double *dgam;
} cu_gdn_bwd;
int cu_gdn_bwd_tc(const char *op, const cu_gdn_bwd *c);

/* GDN for the bf16 entry points (gdn.cu): the float32 operator's stages reading q, k, v
 * and dout as bf16 and writing out, dq, dk, dv as bf16 themselves (no staging copies),
 * with cu_op_tf32 on for the call. The caller has checked d, q, k, v, out (dout and dq,
 * dk, dv); these check the rest. `work`: at least sq_cuda_gdn_work_floats, or NULL. */
int cu_gdn_fwd_bf16(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in_bf16 *in, const float *S0, sq_bf16 *out,
                    float *S1, float *work);
int cu_gdn_bwd_bf16(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in_bf16 *in, const float *S0, const sq_bf16 *dout,
                    const float *dS1, sq_gdn_grad_bf16 *g, float *dS0, float *work);

/* The handle of the layers' products, in the mode of sq_cuda_set_layer_math
 * (for SQ_CUDA_MATH_BF16 the float32 one: the caller asks cublasGemmEx for
 * bf16 compute), and that mode. */
int cu_cublas_layers(const char *op, cublasHandle_t *h);
int cu_layer_math(void);

/* The SSD inputs' checks (pointers, groups, chunk) including A < 0 on
 * the device's copy of A (a download of H floats). */
int cu_check_ssd_in(const char *op, sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in);

/* Attention's argument checks on the GPU (the CPU operator's, with q, k, v
 * of any element type, and head sizes up to 128; the backward's adds its
 * gradients' pointers and dcache0's room), and the copy of cache0's
 * positions into cache1 (nothing when they are the same buffer); shared by
 * the float32 and the bf16 attention. */
int cu_attn_check_args(const char *op, sq_dims d, const sq_attn_opts *o, const void *q, const void *k,
                       const void *v, const sq_attn_cache *c0);
int cu_attn_check_bwd(const char *op, sq_dims d, const sq_attn_opts *o, const void *q, const void *k, const void *v,
                      const sq_attn_cache *c0, const void *dout, const void *dq, const void *dk, const void *dv,
                      const sq_attn_cache *dc0);
int cu_attn_copy_prefix(const char *op, sq_dims d, const sq_attn_cache *c0, sq_attn_cache *c1);

#endif
