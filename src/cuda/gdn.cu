/* Gated DeltaNet (src/ops/gdn.h) on the GPU, float32: the chunkwise WY/UT
 * forward and backward of src/ops/gdn.c and the decode step (DESIGN.md §2,
 * (U1) with erase b_t = write c_t = β_t, (U3)).
 *
 * Per (batch, head) and chunk of length L, with the chunk-local cumulative
 * log-decay γ_t = Σ_{r<=t} g_r (double), Γ_ts = e^{γ_t - γ_s} (s <= t),
 * incoming state S (K×V) and M = strictly-lower((K̂K̂ᵀ) ⊙ Γ):
 *   A  = diag(β) M,  Tm = (I + A)^{-1}                  (UT transform, forward substitution)
 *   W  = Tm (β e^{γ} ⊙ K̂),  U = Tm (β ⊙ V)             (WY form, no S in them)
 *   Ṽ  = U - W S                                         (pseudo-values; = Tm(βV - βe^γ K̂ S) on the CPU)
 *   S' = e^{γ_L} S + Kdᵀ Ṽ,  Kd = e^{γ_L - γ} ⊙ K̂       (state to the next chunk)
 *   O  = (e^{γ} ⊙ Q̂) S + P Ṽ,  P = causal((Q̂K̂ᵀ) ⊙ Γ)   (output, (U3))
 * Everything except the two lines with S is parallel over (head, chunk):
 * batched cuBLAS GEMMs and small kernels. The recurrence over the chunks
 * (gd_scan_fwd) runs one thread block per (head, 32 columns of V): the columns
 * of S evolve independently, the block keeps its K×32 tile of S in shared
 * memory and stores every chunk's incoming S (Sin) and Ṽ for the rest. Called
 * from the bf16 entry points (cu_gdn_fwd_bf16: q, k, v, dout read as bf16, out
 * and dq, dk, dv written as bf16), where the chunk is 64 and K % 8 == 0, the
 * scans, the chunk products (Gram matrices, mask, UT transform, W, U) and the
 * output run on the tensor cores instead (gdn_scan_bf16.cu).
 *
 * The backward is the CPU's reverse mode, rearranged so that only the
 * state gradient is sequential. With dS' the gradient of a chunk's outgoing
 * state and Y = Tmᵀ dṼ (so Kxᵀ Y = Wᵀ dṼ):
 *   dṼ = Pᵀ dO + Kd dS',  dS = e^{γ_L} dS' + Qgᵀ dO - Wᵀ dṼ      (gd_scan_bwd, chunks in reverse)
 * and then, parallel over the chunks again,
 *   dV = β Y,  dA = -Y Ṽᵀ,  dP = dO Ṽᵀ,  dQ̂ = (dP⊙Γ) K̂ + e^γ dO Sᵀ
 *   dK̂ = (dP⊙Γ)ᵀ Q̂ + (dA⊙βΓ + (dA⊙βΓ)ᵀ) K̂ + e^{γ_L-γ} Ṽ dS'ᵀ - βe^γ Y Sᵀ
 *   dγ_t = Σ_{s<t} E_ts - Σ_{u>t} E_ut - c_t + e^γ q̂_t·(dO Sᵀ)_t - βe^γ k̂_t·(Y Sᵀ)_t
 *          (+ Σ c + e^{γ_L} S·dS' at the chunk's last row),
 *   E = dP ⊙ P + dA ⊙ A,  c_t = Kd_t·(Ṽ dS'ᵀ)_t,  dg_r = Σ_{t>=r} dγ_t (inside the chunk)
 *   dβ_t = Y_t·v_t - e^γ k̂_t·(Y Sᵀ)_t + Σ_s dA_ts M_ts
 * and the chain rule through the L2 norms and the gates, as on the CPU.
 *
 * Heads are first copied to [B,H,T',·] (T' = T rounded up to the chunk);
 * padded steps have q̂ = k̂ = v = 0, g = 0, β = 0, so they change nothing.
 * Gates and reductions in double as on the CPU; matrix products float32
 * through cuBLAS (pedantic, no TF32). */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>

#include "cuda.h"
#include "cuda_internal.h"
#include "gdn_ut.cuh"

typedef struct {
    int B, T, H, K, V;
    int L, nc, Tp;   /* chunk length (<= T), chunks, padded length nc*L */
    int neg, l2;     /* opts: β ∈ (0,2); L2 norm inside the op */
    int tc;          /* the scans, the chunk products and the output on the tensor cores
                      * (gdn_scan_bf16.cu): bf16 callers, L = 64, K % 8 == 0, K <= 128 */
    int vec;         /* K % 8 == 0, V % 8 == 0 and the caller's q, k, v (dout, dq, dk, dv) 16-byte
                      * aligned: the row kernels move 8 elements at a time */
    const float *q, *k, *v, *alpha, *beta, *A_log, *dt_bias;
    /* the bf16 entry points (cuda_bf16.h): q, k, v, dout read as bf16 in place of the
     * float32 tensors, out and dq, dk, dv written as bf16; NULL otherwise */
    const __nv_bfloat16 *qb, *kb, *vb, *dob;
    __nv_bfloat16 *ob, *dqb, *dkb, *dvb;
} gd_args;

/* Device workspace, carved from one allocation. "rows" = B*H*T' steps in the
 * heads layout, "nbc" = B*H*nc chunks. */
typedef struct {
    float *qh, *kh;          /* [rows, K] q̂ (with 1/√K), k̂ */
    float *vt;               /* [rows, V] v */
    float *Kx, *Kd, *Qg;     /* [rows, K] βe^γ k̂, e^{γ_L-γ} k̂, e^γ q̂ */
    float *Vb;               /* [rows, V] β v, then (forward) the output rows O */
    float *W, *U;            /* [rows, K], [rows, V] the WY factors */
    float *Vt;               /* [rows, V] pseudo-values Ṽ */
    float *M, *Tm, *P;       /* [nbc, L, L] masked K̂K̂ᵀ⊙Γ, (I + diag(β)M)^{-1}, masked Q̂K̂ᵀ⊙Γ */
    float *Sin;              /* [nbc, K, V] each chunk's incoming state */
    float *g, *beta;         /* [rows] g_t, β_t */
    float *qn, *kn;          /* [rows] the norms divided by */
    float *eg, *egL, *bg;    /* [rows] e^γ, e^{γ_L-γ}, β e^γ */
    double *gam;             /* [rows] γ */
    float *eL;               /* [nbc] e^{γ_L} */
    /* backward only */
    float *dOt, *dVt, *Y;    /* [rows, V] dO, dṼ, Tmᵀ dṼ */
    float *TK1, *TK2, *TK3;  /* [rows, K] Ṽ dS'ᵀ, dO Sᵀ, -Y Sᵀ */
    float *dQh, *dKh;        /* [rows, K] gradients w.r.t. q̂, k̂ */
    float *dP, *dA;          /* [nbc, L, L] */
    float *dSn;              /* [nbc, K, V] Qgᵀ dO, then the gradient w.r.t. each chunk's outgoing state */
    double *dgam, *colE, *ct; /* [rows] */
    float *dbeta, *dg;       /* [rows] */
} gd_work;

enum { GD_BLOCK = 256, GD_WARPS = GD_BLOCK / 32, GD_SOLVE_SMEM_L = UT_N };
/* The scans: GD_VT columns of V per block (one per lane), GD_SW warps, 4 rows per warp at a time. */
enum { GD_VT = 32, GD_SW = 16, GD_SCAN = 32 * GD_SW, GD_RT = 4 };

static unsigned gd_blocks(size_t threads) { return (unsigned)((threads + GD_BLOCK - 1) / GD_BLOCK); }

static size_t gd_work_size(const gd_args *a, int bwd)
{
    size_t bh = (size_t)a->B * a->H, rows = bh * a->Tp, nbc = bh * a->nc;
    size_t rk = cu_r64(rows * a->K), rv = cu_r64(rows * a->V), ll = cu_r64(nbc * a->L * a->L);
    size_t kv = cu_r64(nbc * a->K * a->V), r1 = cu_r64(rows), r2 = cu_r64(2 * rows);
    size_t f = 6 * rk + 4 * rv + 3 * ll + kv + 7 * r1 + r2 + cu_r64(nbc);
    if (bwd) f += 3 * rv + 5 * rk + 2 * ll + kv + 3 * r2 + 2 * r1;
    return f;
}


static gd_work gd_carve(const gd_args *a, float *p, int bwd)
{
    size_t bh = (size_t)a->B * a->H, rows = bh * a->Tp, nbc = bh * a->nc;
    size_t rk = rows * a->K, rv = rows * a->V, ll = nbc * a->L * a->L, kv = nbc * a->K * a->V;
    gd_work w = {};
    w.qh = cu_take(&p, rk), w.kh = cu_take(&p, rk), w.Kx = cu_take(&p, rk), w.Kd = cu_take(&p, rk);
    w.Qg = cu_take(&p, rk), w.W = cu_take(&p, rk);
    w.vt = cu_take(&p, rv), w.Vb = cu_take(&p, rv), w.U = cu_take(&p, rv), w.Vt = cu_take(&p, rv);
    w.M = cu_take(&p, ll), w.Tm = cu_take(&p, ll), w.P = cu_take(&p, ll);
    w.Sin = cu_take(&p, kv);
    w.g = cu_take(&p, rows), w.beta = cu_take(&p, rows), w.qn = cu_take(&p, rows), w.kn = cu_take(&p, rows);
    w.eg = cu_take(&p, rows), w.egL = cu_take(&p, rows), w.bg = cu_take(&p, rows);
    w.gam = (double *)cu_take(&p, 2 * rows);
    w.eL = cu_take(&p, nbc);
    if (!bwd) return w;
    w.dOt = cu_take(&p, rv), w.dVt = cu_take(&p, rv), w.Y = cu_take(&p, rv);
    w.TK1 = cu_take(&p, rk), w.TK2 = cu_take(&p, rk), w.TK3 = cu_take(&p, rk);
    w.dQh = cu_take(&p, rk), w.dKh = cu_take(&p, rk);
    w.dP = cu_take(&p, ll), w.dA = cu_take(&p, ll);
    w.dSn = cu_take(&p, kv);
    w.dgam = (double *)cu_take(&p, 2 * rows), w.colE = (double *)cu_take(&p, 2 * rows);
    w.ct = (double *)cu_take(&p, 2 * rows);
    w.dbeta = cu_take(&p, rows), w.dg = cu_take(&p, rows);
    return w;
}

/* ---- device helpers ---------------------------------------------------------- */

/* On the tensor cores the scans read W and Kd as bf16 hi and lo halves [rows][K] each, kept in
 * the float32 arrays' place (the same bytes). */
__host__ __device__ static __nv_bfloat16 *gd_halves_hi(float *x) { return (__nv_bfloat16 *)x; }
__host__ __device__ static __nv_bfloat16 *gd_halves_lo(const gd_args &a, float *x)
{
    return (__nv_bfloat16 *)x + (size_t)a.B * a.H * a.Tp * a.K;
}
__host__ __device__ static __nv_bfloat16 *gd_kd_hi(const gd_args &, const gd_work &w) { return gd_halves_hi(w.Kd); }
__host__ __device__ static __nv_bfloat16 *gd_kd_lo(const gd_args &a, const gd_work &w) { return gd_halves_lo(a, w.Kd); }

__device__ static double gd_warp_sum(double x)
{
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

/* Sum over a block of GD_BLOCK threads (thread 0 gets it); red holds GD_WARPS doubles.
 * Two calls in a row need a __syncthreads() between them. */
__device__ static double gd_block_sum(double x, double *red)
{
    x = gd_warp_sum(x);
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = x;
    __syncthreads();
    double t = 0;
    if (threadIdx.x == 0)
        for (int i = 0; i < GD_WARPS; i++) t += red[i];
    return t;
}

/* Element i of a tensor given as float32 (f) or as bf16 (b, when not NULL). */
__device__ static float gd_in(const float *f, const __nv_bfloat16 *b, size_t i)
{
    return b ? __bfloat162float(b[i]) : f[i];
}

/* Element i of a result, into float32 (f) or rounded into bf16 (b, when not NULL). */
__device__ static void gd_out(float *f, __nv_bfloat16 *b, size_t i, float x)
{
    if (b) b[i] = __float2bfloat16_rn(x);
    else f[i] = x;
}

/* Sum over the 16 lanes of a half warp (all 32 lanes call it). */
__device__ static double gd_half_sum(double x)
{
    for (int o = 8; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

/* Elements i .. i+7 of a tensor given as float32 (f) or bf16 (b, when not NULL), zero past n of
 * them; with vec (n >= 8, 16-byte aligned) in one or two 16-byte loads. */
__device__ static void gd_in8(const float *f, const __nv_bfloat16 *b, size_t i, int n, int vec, float x[8])
{
    if (vec && n >= 8 && b) {
        uint4 u = *(const uint4 *)(b + i);
        const __nv_bfloat162 *p = (const __nv_bfloat162 *)&u;
#pragma unroll
        for (int e = 0; e < 4; e++) {
            float2 t = __bfloat1622float2(p[e]);
            x[2 * e] = t.x, x[2 * e + 1] = t.y;
        }
        return;
    }
    if (vec && n >= 8) {
        float4 u = *(const float4 *)(f + i), v = *(const float4 *)(f + i + 4);
        x[0] = u.x, x[1] = u.y, x[2] = u.z, x[3] = u.w, x[4] = v.x, x[5] = v.y, x[6] = v.z, x[7] = v.w;
        return;
    }
#pragma unroll
    for (int e = 0; e < 8; e++) x[e] = e < n ? gd_in(f, b, i + e) : 0.0f;
}

/* Elements i .. i+7 (the first n of them) of a result, float32 (f) or bf16 (b, when not NULL);
 * with vec as gd_in8. */
__device__ static void gd_out8(float *f, __nv_bfloat16 *b, size_t i, int n, int vec, const float x[8])
{
    if (vec && n >= 8 && b) {
        uint4 u;
        __nv_bfloat162 *p = (__nv_bfloat162 *)&u;
#pragma unroll
        for (int e = 0; e < 4; e++) p[e] = __floats2bfloat162_rn(x[2 * e], x[2 * e + 1]);
        *(uint4 *)(b + i) = u;
        return;
    }
    if (vec && n >= 8) {
        *(float4 *)(f + i) = make_float4(x[0], x[1], x[2], x[3]);
        *(float4 *)(f + i + 4) = make_float4(x[4], x[5], x[6], x[7]);
        return;
    }
    for (int e = 0; e < 8 && e < n; e++) gd_out(f, b, i + e, x[e]);
}

/* 8 floats as bf16 halves at h, l (16-byte aligned): hi = round(x), lo = round(x - hi). */
__device__ static void gd_halves8(__nv_bfloat16 *h, __nv_bfloat16 *l, const float x[8])
{
    uint4 uh, ul;
    __nv_bfloat162 *ph = (__nv_bfloat162 *)&uh, *pl = (__nv_bfloat162 *)&ul;
#pragma unroll
    for (int e = 0; e < 4; e++) {
        ph[e] = __floats2bfloat162_rn(x[2 * e], x[2 * e + 1]);
        pl[e] = __floats2bfloat162_rn(x[2 * e] - __low2float(ph[e]), x[2 * e + 1] - __high2float(ph[e]));
    }
    *(uint4 *)h = uh;
    *(uint4 *)l = ul;
}

/* x ← s x, 8 elements. */
__device__ static void gd_scale8(float x[8], float s)
{
#pragma unroll
    for (int e = 0; e < 8; e++) x[e] *= s;
}

/* As src/ops/gates.h. */
__device__ static double gd_softplus(double x) { return (x > 0 ? x : 0) + log1p(exp(-fabs(x))); }
__device__ static double gd_sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }

/* ---- forward kernels ---------------------------------------------------------- */

/* The row kernels: a half warp (16 lanes) per row, 8 elements per lane at a time (gd_in8). */
enum { GD_HW = 16, GD_ROW8 = 8 * GD_HW };

/* A half warp's row (bh, t < T'): q̂ = q/(‖q‖√K), k̂ = k/‖k‖ (or q/√K, k), v, and in
 * double g = -e^{A_log} softplus(α̃ + bias), β = σ(β̃) (×2). Padded rows: zeros. Rows
 * past the last (live = 0) take part in the sums only. */
__device__ static void gd_prep_row(const gd_args &a, const gd_work &w, size_t row, int live, int l)
{
    size_t bh = live ? row / a.Tp : 0;
    int t = live ? row % a.Tp : 0, b = bh / a.H, h = bh % a.H, real = live && t < a.T;
    size_t gi = ((size_t)b * a.T + t) * a.H + h, iq = gi * a.K, iv = gi * a.V;
    double sq = 0, sk = 0;
    for (int i = 8 * l; real && i < a.K; i += GD_ROW8) {
        float x[8], y[8];
        gd_in8(a.q, a.qb, iq + i, a.K - i, a.vec, x);
        gd_in8(a.k, a.kb, iq + i, a.K - i, a.vec, y);
#pragma unroll
        for (int e = 0; e < 8; e++) sq += (double)x[e] * x[e], sk += (double)y[e] * y[e];
    }
    sq = gd_half_sum(sq);
    sk = gd_half_sum(sk);
    if (!live) return;
    float *qh = w.qh + row * a.K, *kh = w.kh + row * a.K, *vt = w.vt + row * a.V;
    const float zero[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int wv = a.K % 8 == 0 && a.V % 8 == 0; /* the workspace's rows are 32-byte aligned */
    if (!real) {
        for (int i = 8 * l; i < a.K; i += GD_ROW8) gd_out8(qh, NULL, i, a.K - i, wv, zero), gd_out8(kh, NULL, i, a.K - i, wv, zero);
        for (int i = 8 * l; i < a.V; i += GD_ROW8) gd_out8(vt, NULL, i, a.V - i, wv, zero);
        if (!l) w.g[row] = 0, w.beta[row] = 0, w.qn[row] = 1, w.kn[row] = 1;
        return;
    }
    double nq = a.l2 ? sqrt(sq + 1e-12) : 1.0, nk = a.l2 ? sqrt(sk + 1e-12) : 1.0;
    float fq = (float)(1.0 / sqrt((double)a.K) / nq), fk = (float)(1.0 / nk);
    for (int i = 8 * l; i < a.K; i += GD_ROW8) {
        float x[8], y[8];
        gd_in8(a.q, a.qb, iq + i, a.K - i, a.vec, x);
        gd_in8(a.k, a.kb, iq + i, a.K - i, a.vec, y);
        gd_scale8(x, fq);
        gd_scale8(y, fk);
        gd_out8(qh, NULL, i, a.K - i, wv, x);
        gd_out8(kh, NULL, i, a.K - i, wv, y);
    }
    for (int i = 8 * l; i < a.V; i += GD_ROW8) {
        float x[8];
        gd_in8(a.v, a.vb, iv + i, a.V - i, a.vec, x);
        gd_out8(vt, NULL, i, a.V - i, wv, x);
    }
    if (l) return;
    double z = (double)a.alpha[gi] + a.dt_bias[h];
    w.g[row] = (float)(-exp((double)a.A_log[h]) * gd_softplus(z));
    w.beta[row] = (float)((a.neg ? 2.0 : 1.0) * gd_sigmoid(a.beta[gi]));
    w.qn[row] = (float)nq;
    w.kn[row] = (float)nk;
}

/* A half warp's row: the row factors e^γ, e^{γ_L-γ}, β e^γ and the scaled copies
 * Qg = e^γ q̂, Kx = βe^γ k̂, Kd = e^{γ_L-γ} k̂, Vb = β v. On the tensor cores (a.tc)
 * Qg, and Kd as the scans read it: bf16 hi and lo halves (gd_kd_halves); the chunk
 * kernel scales k̂ and v as it reads them. */
__device__ static void gd_scale_row(const gd_args &a, const gd_work &w, size_t row, int l)
{
    size_t last = row - row % a.L + a.L - 1; /* the chunk's last row (T' is a multiple of L) */
    double gm = w.gam[row];
    float e = (float)exp(gm), eLt = (float)exp(w.gam[last] - gm), bt = w.beta[row], be = bt * e;
    if (!l) w.eg[row] = e, w.egL[row] = eLt, w.bg[row] = be;
    size_t rk = row * a.K, rv = row * a.V;
    int wv = a.K % 8 == 0 && a.V % 8 == 0;
    __nv_bfloat16 *kdh = gd_kd_hi(a, w), *kdl = gd_kd_lo(a, w);
    for (int i = 8 * l; i < a.K; i += GD_ROW8) {
        float q[8], k[8], kd[8];
        gd_in8(w.qh, NULL, rk + i, a.K - i, wv, q);
        gd_scale8(q, e);
        gd_out8(w.Qg, NULL, rk + i, a.K - i, wv, q);
        gd_in8(w.kh, NULL, rk + i, a.K - i, wv, k);
        for (int j = 0; j < 8; j++) kd[j] = k[j];
        gd_scale8(kd, eLt);
        if (a.tc) { /* K % 8 == 0 there */
            gd_halves8(kdh + rk + i, kdl + rk + i, kd);
            continue;
        }
        gd_scale8(k, be);
        gd_out8(w.Kx, NULL, rk + i, a.K - i, wv, k);
        gd_out8(w.Kd, NULL, rk + i, a.K - i, wv, kd);
    }
    for (int i = 8 * l; !a.tc && i < a.V; i += GD_ROW8) {
        float v[8];
        gd_in8(w.vt, NULL, rv + i, a.V - i, wv, v);
        gd_scale8(v, bt);
        gd_out8(w.Vb, NULL, rv + i, a.V - i, wv, v);
    }
}

/* A half warp per row (bh, t < T'): gd_prep_row. */
__global__ static void gd_prep_rows(gd_args a, gd_work w)
{
    size_t gid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, row = gid / GD_HW;
    gd_prep_row(a, w, row, row < (size_t)a.B * a.H * a.Tp, gid % GD_HW);
}

/* One thread per (bh, chunk): γ_t = Σ_{r<=t} g_r in double, e^{γ_L}. */
__global__ static void gd_chunk_gates(gd_args a, gd_work w)
{
    size_t id = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (id >= (size_t)a.B * a.H * a.nc) return;
    size_t base = (id / a.nc) * a.Tp + (id % a.nc) * a.L;
    double acc = 0;
    for (int j = 0; j < a.L; j++) w.gam[base + j] = (acc += w.g[base + j]);
    w.eL[id] = (float)exp(acc);
}

/* A half warp per row: gd_scale_row. */
__global__ static void gd_scaled_rows(gd_args a, gd_work w)
{
    size_t gid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, row = gid / GD_HW;
    if (row < (size_t)a.B * a.H * a.Tp) gd_scale_row(a, w, row, gid % GD_HW);
}

/* One warp per row t of a chunk (lanes over s): M_ts = (K̂K̂ᵀ)_ts Γ_ts for s < t,
 * P_ts = (Q̂K̂ᵀ)_ts Γ_ts for s <= t, zero elsewhere (in place over the Gram matrices). */
__global__ static void gd_mask_chunk(gd_args a, gd_work w)
{
    size_t gid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, row = gid / 32;
    int lane = gid % 32;
    if (row >= (size_t)a.B * a.H * a.Tp) return;
    size_t bh = row / a.Tp;
    int c = (row % a.Tp) / a.L, j = (row % a.Tp) % a.L;
    size_t base = bh * a.Tp + (size_t)c * a.L, off = ((bh * a.nc + c) * a.L + j) * a.L;
    double gj = w.gam[row];
    for (int s = lane; s < a.L; s += 32) {
        float m = 0, p = 0;
        if (s <= j) {
            float G = expf((float)(gj - w.gam[base + s]));
            p = w.P[off + s] * G;
            if (s < j) m = w.M[off + s] * G;
        }
        w.M[off + s] = m;
        w.P[off + s] = p;
    }
}

/* Tm = (I + A)^{-1}, A_ts = β_t M_ts (strictly lower), for L > GD_SOLVE_SMEM_L: one block per
 * (bh, chunk), forward substitution column by column in place in Tm,
 * Tm_tj = δ_tj - Σ_{s<t} A_ts Tm_sj, s ascending as on the CPU. Thread j owns column j
 * (and j + blockDim, ...), so it reads only its own writes. */
__global__ static void gd_solve_ut(gd_args a, gd_work w)
{
    size_t hc = blockIdx.x, L = a.L;
    size_t base = (hc / a.nc) * a.Tp + (hc % a.nc) * L;
    const float *M = w.M + hc * L * L;
    float *X = w.Tm + hc * L * L;
    for (int j = threadIdx.x; j < (int)L; j += blockDim.x)
        for (int t = 0; t < (int)L; t++) {
            float x = t == j ? 1.0f : 0.0f;
            if (t > j) {
                float bt = w.beta[base + t];
                const float *mt = M + (size_t)t * L;
                for (int s = j; s < t; s++) x -= bt * mt[s] * X[(size_t)s * L + j];
            }
            X[(size_t)t * L + j] = x;
        }
}

/* The same for L <= GD_SOLVE_SMEM_L, by blocks of 16 in shared memory (gdn_ut.cuh). */
__global__ static void __launch_bounds__(GD_BLOCK) gd_solve_ut_blocks(gd_args a, gd_work w)
{
    __shared__ ut_smem m;
    size_t hc = blockIdx.x;
    int L = a.L, nb = (L + 15) / 16, n = 16 * nb, tid = threadIdx.x;
    size_t base = (hc / a.nc) * a.Tp + (hc % a.nc) * L;
    const float *M = w.M + hc * (size_t)L * L;
    for (int e = tid; e < n * n; e += GD_BLOCK) {
        int t = e / n, s = e % n;
        m.A[t][s] = t < L && s < t ? w.beta[base + t] * M[(size_t)t * L + s] : 0.0f;
    }
    __syncthreads();
    ut_invert_blocks(&m, nb, tid, GD_BLOCK);
    float *out = w.Tm + hc * (size_t)L * L;
    for (int e = tid; e < L * L; e += GD_BLOCK) {
        int t = e / L, s = e % L;
        out[e] = s <= t ? m.X[t][s] : 0.0f;
    }
}

/* acc[i] = Σ_k X[r0 + t_i][k] S[k][lane] for the rows t_i = t + i GD_SW of a chunk (X rows of K
 * floats; rows past the chunk are clamped to its last, the caller drops their results). */
__device__ static void gd_rows_times_S(const float *X, size_t r0, int t, int L, int K, const float *S, int lane,
                                       float acc[GD_RT])
{
    const float *x[GD_RT];
#pragma unroll
    for (int i = 0; i < GD_RT; i++) x[i] = X + (r0 + min(t + i * GD_SW, L - 1)) * K, acc[i] = 0;
    for (int k = 0; k < K; k++) {
        float s = S[k * GD_VT + lane];
#pragma unroll
        for (int i = 0; i < GD_RT; i++) acc[i] += x[i][k] * s;
    }
}

/* acc[i] = Σ_t X[r0 + t][k_i] Y[r0 + t][j] over the chunk's L rows, for k_i = k + i GD_SW
 * (clamped to K - 1, dropped by the caller); X rows of K floats, Y rows of V. */
__device__ static void gd_cols_times_Y(const float *X, const float *Y, size_t r0, int k, int L, int K, int V, int j,
                                       float acc[GD_RT])
{
    int kk[GD_RT];
#pragma unroll
    for (int i = 0; i < GD_RT; i++) kk[i] = min(k + i * GD_SW, K - 1), acc[i] = 0;
    for (int t = 0; t < L; t++) {
        const float *x = X + (r0 + t) * K;
        float y = Y[(r0 + t) * V + j];
#pragma unroll
        for (int i = 0; i < GD_RT; i++) acc[i] += x[kk[i]] * y;
    }
}

/* dst[0, n) = src[0, n) by the whole block (coalesced), for a chunk's rows. */
__device__ static void gd_stage(float *dst, const float *src, int n)
{
    for (int i = threadIdx.x; i < n; i += blockDim.x) dst[i] = src[i];
}

/* The scans' shared memory: the K×GD_VT tile of the state first; when `staged`,
 * then the chunk's rows of the two L×K operands and an L×GD_VT tile of Ṽ (or dṼ),
 * so that the inner products read shared memory instead of global memory. */
typedef struct {
    float *S, *X1, *X2, *Y;
} gd_scan_smem_t;

__device__ static gd_scan_smem_t gd_scan_carve(float *base, int K, int L, int staged)
{
    gd_scan_smem_t m = {base, NULL, NULL, NULL};
    if (staged) {
        m.X1 = base + (size_t)K * GD_VT;
        m.X2 = m.X1 + (size_t)L * K;
        m.Y = m.X2 + (size_t)L * K;
    }
    return m;
}

/* The state recurrence over the chunks, one block of GD_SCAN threads per (bh, GD_VT
 * columns of V); the block's K×GD_VT tile of S sits in shared memory. Per chunk:
 * Sin = S;  Ṽ = U - W S;  S ← e^{γ_L} S + Kdᵀ Ṽ. Lane = column, warps over rows.
 * S1 may be S0: each block reads its tile first and writes it last. */
__global__ static void __launch_bounds__(GD_SCAN) gd_scan_fwd(gd_args a, gd_work w, const float *S0, float *S1,
                                                                 int staged)
{
    extern __shared__ float sm[];
    gd_scan_smem_t m = gd_scan_carve(sm, a.K, a.L, staged);
    float *S = m.S; /* [K][GD_VT] */
    size_t bh = blockIdx.x, KV = (size_t)a.K * a.V;
    int lane = threadIdx.x % 32, wp = threadIdx.x / 32, j = blockIdx.y * GD_VT + lane, on = j < a.V;
    float acc[GD_RT];
    for (int k = wp; k < a.K; k += GD_SW) S[k * GD_VT + lane] = on && S0 ? S0[bh * KV + (size_t)k * a.V + j] : 0.0f;
    __syncthreads();
    for (int c = 0; c < a.nc; c++) {
        size_t hc = bh * a.nc + c, r0 = bh * a.Tp + (size_t)c * a.L;
        /* the operands' rows: the staged copies (row 0 = the chunk's first) or global memory */
        const float *Wr = w.W, *Kr = w.Kd;
        size_t rb = r0;
        if (staged) {
            gd_stage(m.X1, w.W + r0 * a.K, a.L * a.K);
            gd_stage(m.X2, w.Kd + r0 * a.K, a.L * a.K);
            Wr = m.X1, Kr = m.X2, rb = 0;
            __syncthreads();
        }
        if (on) {
            for (int k = wp; k < a.K; k += GD_SW) w.Sin[hc * KV + (size_t)k * a.V + j] = S[k * GD_VT + lane];
            for (int t = wp; t < a.L; t += GD_RT * GD_SW) {
                gd_rows_times_S(Wr, rb, t, a.L, a.K, S, lane, acc);
                for (int i = 0; i < GD_RT && t + i * GD_SW < a.L; i++) {
                    size_t o = (r0 + t + i * GD_SW) * a.V + j;
                    float v = w.U[o] - acc[i];
                    w.Vt[o] = v;
                    if (staged) m.Y[(t + i * GD_SW) * GD_VT + lane] = v;
                }
            }
        }
        __syncthreads(); /* Ṽ visible to the block; S no longer read */
        if (on) {
            float e = w.eL[hc];
            for (int k = wp; k < a.K; k += GD_RT * GD_SW) {
                if (staged) gd_cols_times_Y(Kr, m.Y, 0, k, a.L, a.K, GD_VT, lane, acc);
                else gd_cols_times_Y(Kr, w.Vt, r0, k, a.L, a.K, a.V, j, acc);
                for (int i = 0; i < GD_RT && k + i * GD_SW < a.K; i++) {
                    float *s = S + (k + i * GD_SW) * GD_VT + lane;
                    *s = e * *s + acc[i];
                }
            }
        }
        __syncthreads();
    }
    if (S1 && on)
        for (int k = wp; k < a.K; k += GD_SW) S1[bh * KV + (size_t)k * a.V + j] = S[k * GD_VT + lane];
}

/* x [B,T,H,C] (float32, or bf16 xb) -> xt [B,H,T',C], zero rows past T. One block per (b, t < T');
 * with vec (C % 8 == 0, x 16-byte aligned), 8 elements per thread at a time. */
__global__ static void gd_to_heads(const float *x, const __nv_bfloat16 *xb, float *xt, int B, int T, int H, int C,
                                   int Tp, int vec)
{
    int b = blockIdx.x / Tp, t = blockIdx.x % Tp;
    for (int e = 8 * threadIdx.x; vec && e < H * C; e += 8 * blockDim.x) {
        int h = e / C, c = e % C;
        float v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        if (t < T) gd_in8(x, xb, (((size_t)b * T + t) * H + h) * C + c, 8, 1, v);
        gd_out8(xt, NULL, (((size_t)b * H + h) * Tp + t) * C + c, 8, 1, v);
    }
    for (int e = threadIdx.x; !vec && e < H * C; e += blockDim.x) {
        int h = e / C, c = e % C;
        xt[(((size_t)b * H + h) * Tp + t) * C + c] = t < T ? gd_in(x, xb, (((size_t)b * T + t) * H + h) * C + c) : 0.0f;
    }
}

/* xt [B,H,T',C] rows t < T -> x [B,T,H,C] (float32, or bf16 xb). One block per (b, t < T). */
__global__ static void gd_from_heads(const float *xt, float *x, __nv_bfloat16 *xb, int B, int T, int H, int C, int Tp)
{
    int b = blockIdx.x / T, t = blockIdx.x % T;
    for (int e = threadIdx.x; e < H * C; e += blockDim.x) {
        int h = e / C, c = e % C;
        gd_out(x, xb, (((size_t)b * T + t) * H + h) * C + c, xt[(((size_t)b * H + h) * Tp + t) * C + c]);
    }
}

/* ---- host plumbing -------------------------------------------------------------- */

static int gd_launched(const char *op) { return cu_check(op, cudaGetLastError()); }

/* The per-chunk GEMM shapes: strides of [L,K], [L,V], [L,L], [K,V] blocks and the batch. */
typedef struct {
    int L, K, V, n;
    long long sK, sV, sLL, sKV;
} gd_shape;

static gd_shape gd_shape_of(const gd_args *a)
{
    gd_shape s = {a->L, a->K, a->V, a->B * a->H * a->nc, (long long)a->L * a->K, (long long)a->L * a->V,
                  (long long)a->L * a->L, (long long)a->K * a->V};
    return s;
}

/* SQ_OK when the scans' K×32 tile of the state fits the device's shared memory per block. */
static int gd_scan_fits(const char *op, int K)
{
    size_t bytes = (size_t)K * GD_VT * sizeof(float);
    int dev = 0, max = 0, rc;
    if (bytes <= 48 * 1024) return SQ_OK;
    if ((rc = cu_check(op, cudaGetDevice(&dev))) ||
        (rc = cu_check(op, cudaDeviceGetAttribute(&max, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev))))
        return rc;
    if (bytes > (size_t)max)
        return sq_fail(SQ_EINVAL, "%s: K = %d needs %zu bytes of shared memory per block, the device has %d", op, K,
                       bytes, max);
    return SQ_OK;
}

/* The scans' shared memory: the K×32 tile of the state, plus (staged) the
 * chunk's two L×K operands and an L×32 tile when they fit the device's
 * per-block limit. Above 48 KB it needs the opt-in, set here for kernel fn. */
static int gd_scan_smem(const char *op, const void *fn, int K, int L, size_t *bytes, int *staged)
{
    size_t tile = (size_t)K * GD_VT * sizeof(float), full = tile + ((size_t)2 * L * K + (size_t)L * GD_VT) * sizeof(float);
    int dev = 0, max = 0, rc;
    if ((rc = cu_check(op, cudaGetDevice(&dev))) ||
        (rc = cu_check(op, cudaDeviceGetAttribute(&max, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev))))
        return rc;
    *staged = full <= (size_t)max;
    *bytes = *staged ? full : tile;
    if ((rc = gd_scan_fits(op, K))) return rc;
    if (*bytes > 48 * 1024)
        return cu_check(op, cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)*bytes));
    return SQ_OK;
}

/* Forward through the state recurrence: Sin, Ṽ (and P, Qg for the output). */
static int gd_forward_stages(const char *op, const gd_args *a, const gd_work &w, const float *S0, float *S1)
{
    gd_shape s = gd_shape_of(a);
    size_t bh = (size_t)a->B * a->H, rows = bh * a->Tp, smem = 0;
    int rc, staged = 0;
    if (!a->tc && (rc = gd_scan_smem(op, (const void *)gd_scan_fwd, a->K, a->L, &smem, &staged))) return rc;
    /* three kernels: one per chunk (gates, scan of γ and the scaling together) measured 900 µs
     * against their 798 at B4_T4096_H16_D128 (2026-12-04) */
    gd_prep_rows<<<gd_blocks(rows * GD_HW), GD_BLOCK>>>(*a, w);
    gd_chunk_gates<<<gd_blocks((size_t)s.n), GD_BLOCK>>>(*a, w);
    gd_scaled_rows<<<gd_blocks(rows * GD_HW), GD_BLOCK>>>(*a, w);
    if ((rc = gd_launched(op))) return rc;
    if (a->tc) {
        __nv_bfloat16 *Wh = gd_halves_hi(w.W), *Wl = gd_halves_lo(*a, w.W);
        cu_gdn_chunk ch = {(int)bh, a->nc, a->Tp, a->K, a->V, w.qh, w.kh, w.vt, w.beta, w.bg, w.gam,
                           w.M, w.P, w.Tm, Wh, Wl, w.U};
        cu_gdn_scan sc = {(int)bh, a->nc, a->Tp, a->K, a->V, 0, 0, -1.0f, 1.0f, Wh, Wl, gd_kd_hi(*a, w),
                          gd_kd_lo(*a, w), w.U, w.eL, S0, w.Vt, w.Sin, S1}; /* X1 = W, X2 = Kd */
        if ((rc = cu_gdn_chunk_tc(op, &ch))) return rc;
        return cu_gdn_scan_tc(op, &sc);
    }
    /* Gram matrices K̂K̂ᵀ, Q̂K̂ᵀ per chunk, masked with Γ into M and P */
    if ((rc = cu_gemm_rm(op, 0, 1, s.L, s.L, s.K, 1, w.kh, s.K, s.sK, w.kh, s.K, s.sK, 0, w.M, s.L, s.sLL, s.n)) ||
        (rc = cu_gemm_rm(op, 0, 1, s.L, s.L, s.K, 1, w.qh, s.K, s.sK, w.kh, s.K, s.sK, 0, w.P, s.L, s.sLL, s.n)))
        return rc;
    gd_mask_chunk<<<gd_blocks(rows * 32), GD_BLOCK>>>(*a, w);
    if (a->L <= GD_SOLVE_SMEM_L) gd_solve_ut_blocks<<<(unsigned)s.n, GD_BLOCK>>>(*a, w);
    else gd_solve_ut<<<(unsigned)s.n, 64>>>(*a, w);
    if ((rc = gd_launched(op))) return rc;
    /* W = Tm Kx, U = Tm Vb */
    if ((rc = cu_gemm_rm(op, 0, 0, s.L, s.K, s.L, 1, w.Tm, s.L, s.sLL, w.Kx, s.K, s.sK, 0, w.W, s.K, s.sK, s.n)) ||
        (rc = cu_gemm_rm(op, 0, 0, s.L, s.V, s.L, 1, w.Tm, s.L, s.sLL, w.Vb, s.V, s.sV, 0, w.U, s.V, s.sV, s.n)))
        return rc;
    gd_scan_fwd<<<dim3((unsigned)bh, (unsigned)((a->V + GD_VT - 1) / GD_VT)), GD_SCAN, smem>>>(*a, w, S0, S1, staged);
    return gd_launched(op);
}

/* O = Qg Sin + P Ṽ (into Vb, free by now), then back to [B,T,H,V]. */
static int gd_output_stage(const char *op, const gd_args *a, const gd_work &w, float *out)
{
    gd_shape s = gd_shape_of(a);
    int rc;
    if (a->tc) {
        cu_gdn_out c = {a->B * a->H, a->nc, a->Tp, a->K, a->V, a->B, a->T, a->H, w.Qg, w.Sin, w.P, w.Vt, out, a->ob};
        return cu_gdn_out_tc(op, &c);
    }
    if ((rc = cu_gemm_rm(op, 0, 0, s.L, s.V, s.K, 1, w.Qg, s.K, s.sK, w.Sin, s.V, s.sKV, 0, w.Vb, s.V, s.sV, s.n)) ||
        (rc = cu_gemm_rm(op, 0, 0, s.L, s.V, s.L, 1, w.P, s.L, s.sLL, w.Vt, s.V, s.sV, 1, w.Vb, s.V, s.sV, s.n)))
        return rc;
    gd_from_heads<<<(unsigned)(a->B * a->T), GD_BLOCK>>>(w.Vb, out, a->ob, a->B, a->T, a->H, a->V, a->Tp);
    return gd_launched(op);
}

/* ---- backward kernels ------------------------------------------------------------- */

/* The reverse recurrence, blocks as in gd_scan_fwd; the tile of dS in shared memory.
 * Per chunk, last first: dṼ = D0 + Kd dS (in place over D0 = Pᵀ dO in dVt), then
 * dSn[c] = dS (the outgoing state's gradient, kept) and dS ← e^{γ_L} dS + Qgᵀ dO - Wᵀ dṼ,
 * with Qgᵀ dO read from dSn[c] before it is overwritten (by the same thread). */
__global__ static void __launch_bounds__(GD_SCAN) gd_scan_bwd(gd_args a, gd_work w, const float *dS1, float *dS0,
                                                                 int staged)
{
    extern __shared__ float sm[];
    gd_scan_smem_t m = gd_scan_carve(sm, a.K, a.L, staged);
    float *S = m.S; /* [K][GD_VT]: dS */
    size_t bh = blockIdx.x, KV = (size_t)a.K * a.V;
    int lane = threadIdx.x % 32, wp = threadIdx.x / 32, j = blockIdx.y * GD_VT + lane, on = j < a.V;
    float acc[GD_RT];
    for (int k = wp; k < a.K; k += GD_SW) S[k * GD_VT + lane] = on && dS1 ? dS1[bh * KV + (size_t)k * a.V + j] : 0.0f;
    __syncthreads();
    for (int c = a.nc - 1; c >= 0; c--) {
        size_t hc = bh * a.nc + c, r0 = bh * a.Tp + (size_t)c * a.L;
        const float *Kr = w.Kd, *Wr = w.W;
        size_t rb = r0;
        if (staged) {
            gd_stage(m.X1, w.Kd + r0 * a.K, a.L * a.K);
            gd_stage(m.X2, w.W + r0 * a.K, a.L * a.K);
            Kr = m.X1, Wr = m.X2, rb = 0;
            __syncthreads();
        }
        if (on)
            for (int t = wp; t < a.L; t += GD_RT * GD_SW) {
                gd_rows_times_S(Kr, rb, t, a.L, a.K, S, lane, acc);
                for (int i = 0; i < GD_RT && t + i * GD_SW < a.L; i++) {
                    size_t o = (r0 + t + i * GD_SW) * a.V + j;
                    float v = w.dVt[o] + acc[i];
                    w.dVt[o] = v;
                    if (staged) m.Y[(t + i * GD_SW) * GD_VT + lane] = v;
                }
            }
        __syncthreads(); /* dṼ visible to the block; dS no longer read by other threads */
        if (on) {
            float e = w.eL[hc];
            for (int k = wp; k < a.K; k += GD_RT * GD_SW) {
                if (staged) gd_cols_times_Y(Wr, m.Y, 0, k, a.L, a.K, GD_VT, lane, acc);
                else gd_cols_times_Y(Wr, w.dVt, r0, k, a.L, a.K, a.V, j, acc);
                for (int i = 0; i < GD_RT && k + i * GD_SW < a.K; i++) {
                    int kk = k + i * GD_SW;
                    size_t o = hc * KV + (size_t)kk * a.V + j;
                    float old = S[kk * GD_VT + lane], gq = w.dSn[o];
                    w.dSn[o] = old;
                    S[kk * GD_VT + lane] = e * old + gq - acc[i];
                }
            }
        }
        __syncthreads();
    }
    if (dS0 && on)
        for (int k = wp; k < a.K; k += GD_SW) dS0[bh * KV + (size_t)k * a.V + j] = S[k * GD_VT + lane];
}

/* One thread per column s of a chunk: colE_s = Σ_{t>s} E_ts, E = dP ⊙ P + dA ⊙ βM (raw dP, dA). */
__global__ static void gd_column_grads(gd_args a, gd_work w)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)a.B * a.H * a.Tp) return;
    size_t bh = i / a.Tp;
    int c = (i % a.Tp) / a.L, s = (i % a.Tp) % a.L;
    size_t off = (bh * a.nc + c) * a.L * a.L, base = bh * a.Tp + (size_t)c * a.L;
    double acc = 0;
    for (int t = s + 1; t < a.L; t++) {
        size_t e = off + (size_t)t * a.L + s;
        acc += (double)w.dP[e] * w.P[e] + (double)w.dA[e] * w.beta[base + t] * w.M[e];
    }
    w.colE[i] = acc;
}

/* One warp per row t (lanes over s): the row sums Σ_{s<t} E_ts into dγ_t (less colE_t),
 * Σ_s dA_ts M_ts into dβ_t, and in place dP ← dP ⊙ Γ (s <= t), dA ← dA ⊙ β_t Γ (s < t). */
__global__ static void gd_score_rows(gd_args a, gd_work w)
{
    size_t gid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, row = gid / 32;
    int lane = gid % 32;
    if (row >= (size_t)a.B * a.H * a.Tp) return;
    size_t bh = row / a.Tp;
    int c = (row % a.Tp) / a.L, j = (row % a.Tp) % a.L;
    size_t base = bh * a.Tp + (size_t)c * a.L, off = ((bh * a.nc + c) * a.L + j) * a.L;
    double gj = w.gam[row], rowE = 0, dbA = 0;
    float bt = w.beta[row];
    for (int s = lane; s < a.L; s += 32) {
        float dpm = 0, dam = 0;
        if (s <= j) {
            float G = expf((float)(gj - w.gam[base + s])), dp = w.dP[off + s];
            if (s < j) {
                float da = w.dA[off + s], m = w.M[off + s];
                rowE += (double)dp * w.P[off + s] + (double)da * bt * m;
                dbA += (double)da * m;
                dam = da * bt * G;
            }
            dpm = dp * G;
        }
        w.dP[off + s] = dpm;
        w.dA[off + s] = dam;
    }
    rowE = gd_warp_sum(rowE);
    dbA = gd_warp_sum(dbA);
    if (lane) return;
    w.dgam[row] = rowE - w.colE[row];
    w.dbeta[row] = (float)dbA;
}

/* One warp per row: the per-row terms of dq̂, dk̂, dγ, dβ (TK1 = Ṽ dS'ᵀ, TK2 = dO Sᵀ, TK3 = -Y Sᵀ):
 *   dq̂ += e^γ TK2,  dk̂ += e^{γ_L-γ} TK1 + βe^γ TK3
 *   c_t = Kd_t·TK1_t,  dγ_t += -c_t + e^γ q̂_t·TK2_t + βe^γ k̂_t·TK3_t,  dβ_t += Y_t·v_t + e^γ k̂_t·TK3_t */
__global__ static void gd_row_grads(gd_args a, gd_work w)
{
    size_t gid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, row = gid / 32;
    int lane = gid % 32;
    if (row >= (size_t)a.B * a.H * a.Tp) return;
    size_t rk = row * a.K, rv = row * a.V;
    float eg = w.eg[row], egL = w.egL[row], bt = w.beta[row], be = w.bg[row];
    double c = 0, aq = 0, dx = 0, yv = 0;
    for (int i = lane; i < a.K; i += 32) {
        float t1 = w.TK1[rk + i], t2 = w.TK2[rk + i], t3 = w.TK3[rk + i];
        c += (double)t1 * w.Kd[rk + i];
        aq += (double)t2 * w.qh[rk + i] * eg;
        dx += (double)t3 * w.kh[rk + i];
        w.dQh[rk + i] += t2 * eg;
        w.dKh[rk + i] += t1 * egL + t3 * be;
    }
    for (int i = lane; i < a.V; i += 32) yv += (double)w.Y[rv + i] * w.vt[rv + i];
    c = gd_warp_sum(c);
    aq = gd_warp_sum(aq);
    dx = gd_warp_sum(dx);
    yv = gd_warp_sum(yv);
    if (lane) return;
    w.ct[row] = c;
    w.dgam[row] += -c + aq + dx * eg * bt;
    w.dbeta[row] += (float)(yv + dx * eg);
}

/* One block per (bh, chunk): the chunk-end term dγ_L += Σ c + e^{γ_L} (S·dS'), then
 * dg_r = Σ_{t>=r} dγ_t. */
__global__ static void __launch_bounds__(GD_BLOCK) gd_chunk_end(gd_args a, gd_work w)
{
    __shared__ double red[GD_WARPS];
    size_t hc = blockIdx.x, KV = (size_t)a.K * a.V, base = (hc / a.nc) * a.Tp + (hc % a.nc) * a.L;
    const float *S = w.Sin + hc * KV, *dS = w.dSn + hc * KV;
    double sdot = 0;
    for (size_t e = threadIdx.x; e < KV; e += GD_BLOCK) sdot += (double)S[e] * dS[e];
    sdot = gd_block_sum(sdot, red);
    if (threadIdx.x) return;
    double csum = 0, acc = 0;
    for (int t = 0; t < a.L; t++) csum += w.ct[base + t];
    size_t last = base + a.L - 1;
    w.dgam[last] += csum + exp(w.gam[last]) * sdot;
    for (int t = a.L - 1; t >= 0; t--) {
        acc += w.dgam[base + t];
        w.dg[base + t] = (float)acc;
    }
}

/* Through the L2 norm x̂ = s x/‖x‖ (or s x): dx = s/‖x‖ (dx̂ - x (x·dx̂)/‖x‖²); a half warp
 * (all 32 lanes call it; live = 0: the sum only). x and dx are the K elements from i0 of x, xb
 * and dx, dxb (float32, or bf16 where not NULL); dxh the workspace's row of dx̂. */
__device__ static void gd_l2_backward(const gd_args &a, const float *x, const __nv_bfloat16 *xb, size_t i0,
                                      const float *dxh, float nrm, double s, int l, int live, float *dx,
                                      __nv_bfloat16 *dxb)
{
    const int K = a.K, wv = K % 8 == 0;
    double d = 0;
    for (int i = 8 * l; live && a.l2 && i < K; i += GD_ROW8) {
        float u[8], g[8];
        gd_in8(x, xb, i0 + i, K - i, a.vec, u);
        gd_in8(dxh, NULL, i, K - i, wv, g);
#pragma unroll
        for (int e = 0; e < 8; e++) d += (double)u[e] * g[e];
    }
    float dot = (float)gd_half_sum(d);
    if (!live) return;
    float inv = a.l2 ? 1.0f / nrm : 1.0f, av = (float)s * inv, bv = dot * inv * inv;
    for (int i = 8 * l; i < K; i += GD_ROW8) {
        float u[8], g[8];
        gd_in8(dxh, NULL, i, K - i, wv, g);
        if (a.l2) gd_in8(x, xb, i0 + i, K - i, a.vec, u);
#pragma unroll
        for (int e = 0; e < 8; e++) g[e] = av * (a.l2 ? g[e] - u[e] * bv : g[e]);
        gd_out8(dx, dxb, i0 + i, K - i, a.vec, g);
    }
}

/* A half warp per step (b, t, h): dq, dk through the norms, dv = β Y, dα̃, dβ̃ in double. */
__global__ static void gd_input_grads(gd_args a, gd_work w, sq_gdn_grad g)
{
    size_t gid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, i = gid / GD_HW;
    int l = gid % GD_HW, live = i < (size_t)a.B * a.T * a.H;
    if (!live) i = 0;
    int h = i % a.H, t = (i / a.H) % a.T, b = i / ((size_t)a.H * a.T);
    size_t row = ((size_t)b * a.H + h) * a.Tp + t;
    gd_l2_backward(a, a.q, a.qb, i * a.K, w.dQh + row * a.K, w.qn[row], 1.0 / sqrt((double)a.K), l, live, g.dq,
                   a.dqb);
    gd_l2_backward(a, a.k, a.kb, i * a.K, w.dKh + row * a.K, w.kn[row], 1.0, l, live, g.dk, a.dkb);
    if (!live) return;
    float bt = w.beta[row];
    for (int c = 8 * l; c < a.V; c += GD_ROW8) {
        float y[8];
        gd_in8(w.Y, NULL, row * a.V + c, a.V - c, a.V % 8 == 0, y);
        gd_scale8(y, bt);
        gd_out8(g.dv, a.dvb, i * a.V + c, a.V - c, a.vec, y);
    }
    if (l) return;
    double z = (double)a.alpha[i] + a.dt_bias[h];
    g.dalpha[i] = (float)(w.dg[row] * -exp((double)a.A_log[h]) * gd_sigmoid(z)); /* g = -e^{A_log} softplus(z) */
    double sb = gd_sigmoid(a.beta[i]);
    g.dbeta[i] = (float)(w.dbeta[row] * (a.neg ? 2.0 : 1.0) * sb * (1 - sb));
}

/* One block per head: dA_log_h = Σ dg g, ddt_bias_h = Σ dg (-e^{A_log}) σ(z) over batch and steps. */
__global__ static void __launch_bounds__(GD_BLOCK) gd_head_grads(gd_args a, gd_work w, sq_gdn_grad g)
{
    __shared__ double red[GD_WARPS];
    int h = blockIdx.x;
    double ea = exp((double)a.A_log[h]), dAl = 0, dbias = 0;
    for (size_t r = threadIdx.x; r < (size_t)a.B * a.T; r += GD_BLOCK) {
        int b = r / a.T, t = r % a.T;
        size_t row = ((size_t)b * a.H + h) * a.Tp + t, i = ((size_t)b * a.T + t) * a.H + h;
        double z = (double)a.alpha[i] + a.dt_bias[h];
        dbias += w.dg[row] * -ea * gd_sigmoid(z);
        dAl += (double)w.dg[row] * w.g[row];
    }
    dAl = gd_block_sum(dAl, red);
    __syncthreads();
    dbias = gd_block_sum(dbias, red);
    if (threadIdx.x) return;
    g.dA_log[h] = (float)dAl;
    g.ddt_bias[h] = (float)dbias;
}

/* dO to heads; D0 = Pᵀ dO (into dVt), Qgᵀ dO (into dSn); the reverse scan. */
static int gd_backward_scan(const char *op, const gd_args *a, const gd_work &w, const float *dout, const float *dS1,
                            float *dS0)
{
    gd_shape s = gd_shape_of(a);
    size_t smem = 0;
    int rc, staged = 0;
    if (!a->tc && (rc = gd_scan_smem(op, (const void *)gd_scan_bwd, a->K, a->L, &smem, &staged))) return rc;
    gd_to_heads<<<(unsigned)(a->B * a->Tp), GD_BLOCK>>>(dout, a->dob, w.dOt, a->B, a->T, a->H, a->V, a->Tp, a->vec);
    if ((rc = gd_launched(op))) return rc;
    if ((rc = cu_gemm_rm(op, 1, 0, s.L, s.V, s.L, 1, w.P, s.L, s.sLL, w.dOt, s.V, s.sV, 0, w.dVt, s.V, s.sV, s.n)) ||
        (rc = cu_gemm_rm(op, 1, 0, s.K, s.V, s.L, 1, w.Qg, s.K, s.sK, w.dOt, s.V, s.sV, 0, w.dSn, s.V, s.sKV, s.n)))
        return rc;
    if (a->tc) {
        cu_gdn_scan sc = {a->B * a->H, a->nc, a->Tp, a->K, a->V, 1, 1, 1.0f, -1.0f, gd_kd_hi(*a, w),
                          gd_kd_lo(*a, w), gd_halves_hi(w.W), gd_halves_lo(*a, w.W), w.dVt, w.eL, dS1,
                          w.dVt, w.dSn, dS0}; /* X1 = Kd, X2 = W */
        return cu_gdn_scan_tc(op, &sc);
    }
    unsigned tiles = (unsigned)((a->V + GD_VT - 1) / GD_VT);
    gd_scan_bwd<<<dim3((unsigned)(a->B * a->H), tiles), GD_SCAN, smem>>>(*a, w, dS1, dS0, staged);
    return gd_launched(op);
}

/* The products of the backward after the scan, parallel over the chunks. */
static int gd_backward_products(const char *op, const gd_args *a, const gd_work &w)
{
    gd_shape s = gd_shape_of(a);
    int rc;
    /* Y = Tmᵀ dṼ; dP = dO Ṽᵀ; dA = -Y Ṽᵀ */
    if ((rc = cu_gemm_rm(op, 1, 0, s.L, s.V, s.L, 1, w.Tm, s.L, s.sLL, w.dVt, s.V, s.sV, 0, w.Y, s.V, s.sV, s.n)) ||
        (rc = cu_gemm_rm(op, 0, 1, s.L, s.L, s.V, 1, w.dOt, s.V, s.sV, w.Vt, s.V, s.sV, 0, w.dP, s.L, s.sLL, s.n)) ||
        (rc = cu_gemm_rm(op, 0, 1, s.L, s.L, s.V, -1, w.Y, s.V, s.sV, w.Vt, s.V, s.sV, 0, w.dA, s.L, s.sLL, s.n)))
        return rc;
    /* TK1 = Ṽ dS'ᵀ, TK2 = dO Sᵀ, TK3 = -Y Sᵀ */
    if ((rc = cu_gemm_rm(op, 0, 1, s.L, s.K, s.V, 1, w.Vt, s.V, s.sV, w.dSn, s.V, s.sKV, 0, w.TK1, s.K, s.sK, s.n)) ||
        (rc = cu_gemm_rm(op, 0, 1, s.L, s.K, s.V, 1, w.dOt, s.V, s.sV, w.Sin, s.V, s.sKV, 0, w.TK2, s.K, s.sK, s.n)) ||
        (rc = cu_gemm_rm(op, 0, 1, s.L, s.K, s.V, -1, w.Y, s.V, s.sV, w.Sin, s.V, s.sKV, 0, w.TK3, s.K, s.sK, s.n)))
        return rc;
    return SQ_OK;
}

/* E sums and the masked dP⊙Γ, dA⊙βΓ; dq̂ = (dP⊙Γ) K̂, dk̂ = (dP⊙Γ)ᵀ Q̂ + (dA⊙βΓ) K̂ + (dA⊙βΓ)ᵀ K̂;
 * the per-row terms; the chunk ends and dg. */
static int gd_backward_grads(const char *op, const gd_args *a, const gd_work &w)
{
    gd_shape s = gd_shape_of(a);
    size_t rows = (size_t)a->B * a->H * a->Tp;
    int rc;
    gd_column_grads<<<gd_blocks(rows), GD_BLOCK>>>(*a, w);
    gd_score_rows<<<gd_blocks(rows * 32), GD_BLOCK>>>(*a, w);
    if ((rc = gd_launched(op))) return rc;
    if ((rc = cu_gemm_rm(op, 0, 0, s.L, s.K, s.L, 1, w.dP, s.L, s.sLL, w.kh, s.K, s.sK, 0, w.dQh, s.K, s.sK, s.n)) ||
        (rc = cu_gemm_rm(op, 1, 0, s.L, s.K, s.L, 1, w.dP, s.L, s.sLL, w.qh, s.K, s.sK, 0, w.dKh, s.K, s.sK, s.n)) ||
        (rc = cu_gemm_rm(op, 0, 0, s.L, s.K, s.L, 1, w.dA, s.L, s.sLL, w.kh, s.K, s.sK, 1, w.dKh, s.K, s.sK, s.n)) ||
        (rc = cu_gemm_rm(op, 1, 0, s.L, s.K, s.L, 1, w.dA, s.L, s.sLL, w.kh, s.K, s.sK, 1, w.dKh, s.K, s.sK, s.n)))
        return rc;
    gd_row_grads<<<gd_blocks(rows * 32), GD_BLOCK>>>(*a, w);
    gd_chunk_end<<<(unsigned)s.n, GD_BLOCK>>>(*a, w);
    return gd_launched(op);
}

/* After the reverse scan, parallel over the chunks: on the tensor cores (tc), else the
 * float32 products and row kernels. */
static int gd_backward_chunks(const char *op, const gd_args *a, const gd_work &w)
{
    int rc;
    if (a->tc) {
        cu_gdn_bwd c = {a->B * a->H, a->nc, a->Tp, a->K, a->V, w.Tm, w.P, w.M, w.Vt, w.dVt, w.dOt, w.Sin, w.dSn,
                        w.qh, w.kh, w.vt, w.beta, w.eg, w.egL, w.bg, w.gam, w.Y, w.dP, w.dA, w.dQh, w.dKh,
                        w.dbeta, w.dg, w.dgam};
        return cu_gdn_bwd_tc(op, &c);
    }
    if ((rc = gd_backward_products(op, a, w))) return rc;
    return gd_backward_grads(op, a, w);
}

/* ---- arguments and entry points ------------------------------------------------------ */

static int gd_aligned(const void *p) { return (uintptr_t)p % 16 == 0; }

static gd_args gd_args_of(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in)
{
    gd_args a = {d.B, d.T, d.H, d.K, d.V, o->chunk < d.T ? o->chunk : d.T, 0, 0, o->neg_eigval, o->qk_l2norm};
    a.nc = (a.T + a.L - 1) / a.L;
    a.tc = cu_op_tf32_on() && cu_gdn_scan_tc_fits(a.K, a.L);
    a.vec = a.K % 8 == 0 && a.V % 8 == 0;
    a.Tp = a.nc * a.L;
    if (in) {
        a.q = in->q, a.k = in->k, a.v = in->v, a.alpha = in->alpha, a.beta = in->beta;
        a.A_log = in->A_log, a.dt_bias = in->dt_bias;
        a.vec = a.vec && gd_aligned(in->q) && gd_aligned(in->k) && gd_aligned(in->v);
    }
    return a;
}

/* The row kernels' 16-byte loads and stores also need the backward's tensors aligned. */
static void gd_vec_bwd(gd_args *a, const void *dout, const void *dq, const void *dk, const void *dv)
{
    a->vec = a->vec && gd_aligned(dout) && gd_aligned(dq) && gd_aligned(dk) && gd_aligned(dv);
}

/* The caller's workspace, or one allocated for the call (*owned). */
static int gd_work_or_alloc(const char *op, const gd_args *a, int bwd, float *work, float **ws, float **owned)
{
    *owned = NULL;
    *ws = work;
    if (work && !gd_aligned(work))
        return sq_fail(SQ_EINVAL, "%s: work must be 16-byte aligned (sq_cuda_malloc's buffers are); got %p", op,
                       (void *)work);
    if (work) return SQ_OK;
    int rc = sq_cuda_malloc(owned, gd_work_size(a, bwd));
    *ws = *owned;
    return rc;
}

/* Frees an owned workspace after the device is done with it. */
static int gd_release(const char *op, float *owned, int rc)
{
    if (!owned) return rc;
    int e = cu_check(op, cudaDeviceSynchronize());
    sq_cuda_free(owned);
    return rc ? rc : e;
}

extern "C" size_t sq_cuda_gdn_work_floats(sq_dims d, const sq_gdn_opts *o)
{
    sq_gdn_opts def = sq_gdn_defaults();
    if (!o) o = &def;
    if (o->chunk < 1 || d.B < 1 || d.T < 1 || d.H < 1 || d.K < 1 || d.V < 1) return 0;
    gd_args a = gd_args_of(d, o, NULL);
    return gd_work_size(&a, 1);
}

/* The forward on checked arguments (float32 or bf16 tensors: gd_args). */
static int gd_fwd(const char *op, const gd_args *a, const float *S0, float *out, float *S1, float *work)
{
    float *ws, *owned;
    int rc;
    if ((rc = gd_work_or_alloc(op, a, 0, work, &ws, &owned))) return rc;
    gd_work w = gd_carve(a, ws, 0);
    rc = gd_forward_stages(op, a, w, S0, S1);
    if (!rc) rc = gd_output_stage(op, a, w, out);
    return gd_release(op, owned, rc);
}

/* The backward on checked arguments: recompute the forward's Sin and Ṽ; then the reverse
 * scan and the parallel rest. */
static int gd_bwd(const char *op, const gd_args *a, const float *S0, const float *dout, const float *dS1,
                  const sq_gdn_grad *g, float *dS0, float *work)
{
    float *ws, *owned;
    int rc;
    if ((rc = gd_work_or_alloc(op, a, 1, work, &ws, &owned))) return rc;
    gd_work w = gd_carve(a, ws, 1);
    if (!(rc = gd_forward_stages(op, a, w, S0, NULL)) && !(rc = gd_backward_scan(op, a, w, dout, dS1, dS0)) &&
        !(rc = gd_backward_chunks(op, a, w))) {
        size_t steps = (size_t)a->B * a->T * a->H;
        gd_input_grads<<<gd_blocks(steps * GD_HW), GD_BLOCK>>>(*a, w, *g);
        gd_head_grads<<<(unsigned)a->H, GD_BLOCK>>>(*a, w, *g);
        rc = gd_launched(op);
    }
    return gd_release(op, owned, rc);
}

extern "C" int sq_cuda_gdn_fwd(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in, const float *S0, float *out,
                               float *S1, float *work)
{
    const char *op = "cuda gdn fwd";
    sq_gdn_opts def = sq_gdn_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sq_gdn_check_in(op, d, o, in)) || (rc = sq_check_ptr(op, "out", out)) || (rc = gd_scan_fits(op, d.K)))
        return rc;
    gd_args a = gd_args_of(d, o, in);
    return gd_fwd(op, &a, S0, out, S1, work);
}

extern "C" int sq_cuda_gdn_bwd(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in, const float *S0,
                               const float *dout, const float *dS1, sq_gdn_grad *g, float *dS0, float *work)
{
    const char *op = "cuda gdn bwd";
    sq_gdn_opts def = sq_gdn_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sq_gdn_check_in(op, d, o, in)) || (rc = sq_check_ptr(op, "dout", dout)) ||
        (rc = sq_gdn_check_grad(op, g)) || (rc = gd_scan_fits(op, d.K)))
        return rc;
    gd_args a = gd_args_of(d, o, in);
    gd_vec_bwd(&a, dout, g->dq, g->dk, g->dv);
    return gd_bwd(op, &a, S0, dout, dS1, g, dS0, work);
}

/* The arguments of a bf16 call: the gates from `in`, q, k, v as bf16; checked as the
 * float32 operator's (q, k, v only for NULL, through the float32 view of their pointers). */
static int gd_args_bf16(const char *op, sq_dims d, const sq_gdn_opts *o, const sq_gdn_in_bf16 *in, gd_args *a)
{
    int rc;
    if ((rc = sq_check_ptr(op, "in", in))) return rc;
    sq_gdn_in chk = {(const float *)in->q, (const float *)in->k, (const float *)in->v, in->alpha, in->beta,
                     in->A_log, in->dt_bias};
    if ((rc = sq_gdn_check_in(op, d, o, &chk)) || (rc = gd_scan_fits(op, d.K))) return rc;
    *a = gd_args_of(d, o, &chk);
    a->q = a->k = a->v = NULL;
    a->qb = (const __nv_bfloat16 *)in->q, a->kb = (const __nv_bfloat16 *)in->k, a->vb = (const __nv_bfloat16 *)in->v;
    return SQ_OK;
}

int cu_gdn_fwd_bf16(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in_bf16 *in, const float *S0, sq_bf16 *out,
                    float *S1, float *work)
{
    const char *op = "cuda gdn fwd bf16";
    sq_gdn_opts def = sq_gdn_defaults();
    if (!o) o = &def;
    int before = cu_op_tf32(1), rc;
    gd_args a;
    if (!(rc = gd_args_bf16(op, d, o, in, &a))) {
        a.ob = (__nv_bfloat16 *)out;
        rc = gd_fwd(op, &a, S0, NULL, S1, work);
    }
    cu_op_tf32(before);
    return rc;
}

int cu_gdn_bwd_bf16(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in_bf16 *in, const float *S0, const sq_bf16 *dout,
                    const float *dS1, sq_gdn_grad_bf16 *g, float *dS0, float *work)
{
    const char *op = "cuda gdn bwd bf16";
    sq_gdn_opts def = sq_gdn_defaults();
    if (!o) o = &def;
    int before = cu_op_tf32(1), rc;
    gd_args a;
    sq_gdn_grad fg = {(float *)g->dq, (float *)g->dk, (float *)g->dv, g->dalpha, g->dbeta, g->dA_log, g->ddt_bias};
    if (!(rc = gd_args_bf16(op, d, o, in, &a)) && !(rc = sq_gdn_check_grad(op, &fg))) {
        a.dob = (const __nv_bfloat16 *)dout;
        a.dqb = (__nv_bfloat16 *)g->dq, a.dkb = (__nv_bfloat16 *)g->dk, a.dvb = (__nv_bfloat16 *)g->dv;
        gd_vec_bwd(&a, dout, g->dq, g->dk, g->dv);
        fg.dq = fg.dk = fg.dv = NULL;
        rc = gd_bwd(op, &a, S0, NULL, dS1, &fg, dS0, work);
    }
    cu_op_tf32(before);
    return rc;
}

/* ---- decode step ---------------------------------------------------------------------- */

/* One thread per (bh, column i of S), as sq_gdn_step: (U1) S = a S + k̂ (β (v - a Sᵀk̂))ᵀ,
 * (U3) o = Sᵀ q̂, with the column's sums in double. The norms are recomputed by every
 * thread of the head (the same float sums, so the same values). */
__global__ static void gd_step_kernel(gd_args a, float *S, float *out)
{
    size_t bh = blockIdx.x;
    int h = bh % a.H, i = blockIdx.y * blockDim.x + threadIdx.x;
    if (i >= a.V) return;
    const float *q = a.q + bh * a.K, *k = a.k + bh * a.K;
    float sq = 0, sk = 0;
    for (int r = 0; r < a.K; r++) {
        sq += q[r] * q[r];
        sk += k[r] * k[r];
    }
    double nq = a.l2 ? sqrt(sq + 1e-12) : 1.0, nk = a.l2 ? sqrt(sk + 1e-12) : 1.0, qs = 1.0 / sqrt((double)a.K);
    double av = exp(-exp((double)a.A_log[h]) * gd_softplus((double)a.alpha[bh] + a.dt_bias[h]));
    double beta = (a.neg ? 2.0 : 1.0) * gd_sigmoid(a.beta[bh]);
    float *Sh = S + bh * a.K * a.V;
    double u = 0;
    for (int r = 0; r < a.K; r++) u += (double)Sh[(size_t)r * a.V + i] * k[r] / nk;
    float wv = (float)(beta * (a.v[bh * a.V + i] - av * u));
    double acc = 0;
    for (int r = 0; r < a.K; r++) {
        float *s = Sh + (size_t)r * a.V + i;
        *s = (float)(av * *s + k[r] / nk * wv);
        acc += (double)*s * q[r] * qs / nq;
    }
    out[bh * a.V + i] = (float)acc;
}

extern "C" int sq_cuda_gdn_step(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in, float *S, float *out)
{
    const char *op = "cuda gdn step";
    sq_gdn_opts def = sq_gdn_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sq_gdn_check_in(op, d, o, in)) || (rc = sq_check_ptr(op, "S", S)) || (rc = sq_check_ptr(op, "out", out)))
        return rc;
    if (d.T != 1) return sq_fail(SQ_EINVAL, "%s: one token at a time (T must be 1, got %d)", op, d.T);
    gd_args a = gd_args_of(d, o, in);
    gd_step_kernel<<<dim3((unsigned)(d.B * d.H), (unsigned)((d.V + 127) / 128)), 128>>>(a, S, out);
    return gd_launched(op);
}
