/* The scalar-gate chunkwise forward and backward with bf16 inputs and
 * outputs, fused on the tensor cores (mLSTM, linear attention, Mamba-2 SSD;
 * cuda_bf16.h). The forward:
 * The math is scalar_chunk.cu's ((U1)-(U3) with scalar decay, stabilizer m
 * and normalizer n; its header lists the symbols), at chunk L = 64:
 *   gates    F_j, m_j, α_j, γ_s, β_c, Δ_t: cu_scalar_gates (float64 exponents)
 *   walk     S̄_in(c+1) = β_c S̄_in(c) + Σ_s γ'_s k_sᵀ v_s,
 *            n̄_in(c+1) = β_c n̄_in(c) + Σ_s γ'_s k_s      (γ'_s = γ_s, SSD: γ_s Δ_s)
 *   output   Z_js = s (q_j·k_s) e^{(F_j - m_j) + (w_s - F_s)} Δ'_s   (s <= j; Δ'_s = Δ_s in SSD, else 1)
 *            h_j = Σ_s Z_js v_s + s α_j S̄_in(c)ᵀ q_j
 *            o_j = h_j / max(|N_j|, e^{-m_j}),  N_j = Σ_s Z_js + s α_j n̄_in(c)·q_j  (mLSTM)
 *            y_j = h_j + D_h x_j                                      (SSD, k = B, q = C, v = x)
 * The walk is one block per (head, 64 rows of S̄, 64 columns): it keeps its
 * 64×64 tile of S̄ in registers (float32) across the chunks, stores S̄_in(c)
 * rounded to bf16 for the output kernel (with the mLSTM's normalizer also
 * what that rounding left, as a second bf16 half: chunk_output says why),
 * and adds each chunk's (K⊙γ')ᵀV on
 * the tensor cores (K's transpose through ldmatrix.trans, its fragments
 * scaled by γ' in registers and rounded to bf16). The column-0 blocks also
 * carry n̄ as one more 8-column tile (B operand: a column of ones). The
 * K and V tiles of NS - 1 chunks ahead are in flight (cp.async, from
 * addresses each thread works out once), the gates are read a chunk ahead.
 * The output kernel is one block per (head, chunk, 64 columns of V): Q Kᵀ
 * on the tensor cores, the mask's exponent and the row sums in float32, Z
 * rounded to bf16 as the A operand of Z V straight from the registers, and
 * Q S̄_in(c) on the tensor cores. Each warp owns 16 rows (steps) of the chunk.
 * The backward (cu_scalar_fused_bwd_stages): the same walk; the mLSTM's
 * output kernel again for D, N, dH = dO / D and dN; a reverse walk for each
 * chunk's outgoing state gradient dS̄_out(c); and chunk_grads per chunk.
 * Tiles, fragments and mma: mma_bf16.cuh. */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>

#include "cuda.h"
#include "cuda_bf16.h"
#include "cuda_internal.h"
#include "mma_bf16.cuh"
#include "scalar_chunk.h"

enum { CL = 64, NTH = 128, PAD = 8, TW = 64 }; /* chunk, threads, row padding, tile width of S̄ and V */

/* A thread's share of loading W columns (from c0) of 64 steps of x
 * [B,T,Hs,C] for head bh (Hs source heads: SSD's groups share B and C):
 * the 16-byte piece tid % (W/8) of rows tid / (W/8) + k·NTH/(W/8). The
 * addresses are worked out once per block (the walk is bound by the
 * instructions of its loads otherwise). */
typedef struct {
    const bf16 *p;  /* this thread's piece in step 0 */
    size_t stride;  /* elements from one step to the next */
    int in_width;   /* the piece lies inside C (else it stays zero) */
} tile_src;

template <int W>
__device__ static tile_src tile_src_of(const sc_args &a, const sq_bf16 *x, int bh, int Hs, int C, int c0)
{
    int b = bh / a.H, h = bh % a.H, col = c0 + 8 * (threadIdx.x % (W / 8));
    tile_src s;
    s.stride = (size_t)Hs * C;
    s.p = (const bf16 *)x + ((size_t)b * a.T * Hs + h / (a.H / Hs)) * C + col;
    s.in_width = col < C; /* C % 8 == 0: a piece is wholly inside or outside */
    return s;
}

/* Steps t0..t0+63 into the tile s [64][W+PAD] by a block of NT threads: cp.async, zeros past T and past C. */
template <int W, int NT = NTH>
__device__ static void tile_fetch(bf16 *s, const tile_src &src, const sc_args &a, int t0)
{
    const int per_row = W / 8, rows_per_pass = NT / per_row;
    int u = threadIdx.x % per_row;
#pragma unroll
    for (int k = 0; k < CL / rows_per_pass; k++) {
        int r = threadIdx.x / per_row + k * rows_per_pass, t = t0 + r;
        bf16 *d = &s[r * (W + PAD) + 8 * u];
        if (src.in_width && t < a.T)
            cp_async16(d, src.p + (size_t)t * src.stride);
        else
            *(uint4 *)d = make_uint4(0, 0, 0, 0);
    }
}

/* The 4 elements of C tile n of this lane: row 16 (w % 4) + g (+8 for e >= 2), column 8n + 2t (+1 for odd e). */
__device__ static int c_row(int e) { return 16 * (threadIdx.x / 32 % 4) + threadIdx.x % 32 / 4 + 8 * (e / 2); }
__device__ static int c_col(int n, int e) { return 8 * n + 2 * (threadIdx.x % 4) + e % 2; }

/* ---- the walk over the chunks ---- */

/* S̄ tile rows i0.. (of K), columns j0.. (of V) of head bh, from x [BH,K,V] (float32; 0 without). */
__device__ static void tile_load(float S[TW / 8][4], const float *x, const sc_args &a, int bh, int i0, int j0)
{
#pragma unroll
    for (int n = 0; n < TW / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int i = i0 + c_row(e);
            S[n][e] = x && i < a.K ? x[((size_t)bh * a.K + i) * a.V + j0 + c_col(n, e)] : 0.0f;
        }
}

__device__ static void tile_store(const float S[TW / 8][4], float *x, const sc_args &a, int bh, int i0, int j0)
{
#pragma unroll
    for (int n = 0; n < TW / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int i = i0 + c_row(e);
            if (i < a.K) x[((size_t)bh * a.K + i) * a.V + j0 + c_col(n, e)] = S[n][e];
        }
}

/* x rounded to bf16 (lo = 0), or what that rounding left (lo = 1): x's hi and lo halves. */
__device__ static float part(float x, int lo) { return lo ? x - __bfloat162float(__float2bfloat16_rn(x)) : x; }

/* Chunk c's state tile into sin [BH, nc, K, V] (pairs of columns): rounded to bf16, or (lo) the
 * rounding's remainder rounded to bf16, so that hi + lo holds the state to about 16 bits. */
__device__ static void tile_store_bf16(const float S[TW / 8][4], bf16 *sin, const sc_args &a, int bh, int c, int i0,
                                       int j0, int lo)
{
    bf16 *x = sin + ((size_t)bh * a.nc + c) * a.K * a.V;
#pragma unroll
    for (int n = 0; n < TW / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e += 2) {
            int i = i0 + c_row(e);
            if (i < a.K)
                *(uint32_t *)&x[(size_t)i * a.V + j0 + c_col(n, e)] = pack2(part(S[n][e], lo), part(S[n][e + 1], lo));
        }
}

/* Where a chunk state's lo half lies: after all BH·nc hi halves (the float32 workspace holds both). */
__device__ static size_t lo_offset(const sc_args &a) { return (size_t)a.B * a.H * a.nc * a.K * a.V; }

/* What a walk reads and writes. The forward walk carries S̄ and n̄:
 * A = K scaled by γ', B = V, extra column 1, from S0, n0, storing each
 * chunk's incoming S̄_in(c), n̄_in(c), ending in S1, n1. The backward's
 * reverse walk carries dS̄ and dn̄ over the chunks from the last:
 *   dS̄_out(c-1) = β_c dS̄_out(c) + s (α⊙Q_c)ᵀ dH_c,  dn̄_out(c-1) = β_c dn̄_out(c) + s (α⊙Q_c)ᵀ dN_c
 * with A = Q scaled by s α, B = dH, extra column dN, from dS1, dn1,
 * storing each chunk's outgoing dS̄_out(c), dn̄_out(c), ending in dS0, dn0. */
typedef struct {
    const sq_bf16 *xa, *xb;       /* A's and B's rows, [B,T,Hs,K] and [B,T,H,V] */
    const float *init_S, *init_n; /* [BH,K,V], [BH,K] (NULL: zeros) */
    bf16 *each_S;                 /* [BH,nc,K,V]; with split, the lo halves after them (lo_offset) */
    int split;                    /* store the lo halves too (the normalized mLSTM: see chunk_output) */
    float *each_n;                /* [BH,nc,K] */
    float *last_S, *last_n;       /* (NULL: not stored) */
} walk_io;

/* The final dN_j of row st: -sign(N_j) (dO_j·o_j) / D_j where |N_j| > e^{-m_j}, else 0. w.dN holds
 * dH_j·h_j = dO_j·o_j with dH_j = dO_j / D_j as rounded to bf16 (chunk_output's backward pass): the
 * rounded dH and dN stay one consistent gradient, so dq ⊥ q (o is invariant to q's scale) survives the
 * rounding instead of amplifying it. w.N and w.rowZ hold N_j and D_j. */
__device__ static float final_dn(const sc_args &a, const sc_work &w, size_t st)
{
    if (!a.normalize) return 0.0f;
    float N = w.N[st];
    return fabsf(N) > (float)exp(-w.M[st]) ? -(N > 0 ? 1.0f : -1.0f) * w.dN[st] / w.rowZ[st] : 0.0f;
}

/* The A operand's scale of chunk c's step tid (threads tid < 64): γ'_s (forward), s α_j (reverse);
 * loaded a chunk ahead of its use, as β_c is. */
template <bool REV>
__device__ static float walk_scale(const sc_args &a, const sc_work &w, int bh, int c)
{
    size_t st = (size_t)bh * a.Tp + (size_t)c * CL + threadIdx.x;
    if (threadIdx.x >= CL) return 0.0f;
    if (REV) return a.qscale * w.alpha[st];
    return w.gamma[st] * (a.ssd ? w.delta[st] : 1.0f);
}

/* The extra column's value at chunk c's step tid: 1 (forward), dN (reverse). */
template <bool REV>
__device__ static float walk_extra(const sc_args &a, const sc_work &w, int bh, int c)
{
    if (!REV || threadIdx.x >= CL) return 1.0f;
    return final_dn(a, w, (size_t)bh * a.Tp + (size_t)c * CL + threadIdx.x);
}

/* n̄ (or dn̄) is carried as column 0 of a 16×8 C tile per warp (rows as
 * S̄'s): its B operand is the [s][GP] tile xcol whose column 0 holds the
 * extra column and the rest zeros, so Aᵀ's scaled fragments serve both. */
enum { GP = 24, NS = 4 }; /* NS: the walk's pipeline depth (chunks in flight) */

/* n̄'s rows i0 + c_row(0) and i0 + c_row(2) of head bh: lanes with t = 0 hold them in n[0] and n[2]. */
__device__ static void n_load(float n[4], const float *x, const sc_args &a, int bh, int i0)
{
    n[1] = n[3] = 0.0f;
    for (int e = 0; e < 4; e += 2) {
        int i = i0 + c_row(e);
        n[e] = x && threadIdx.x % 4 == 0 && i < a.K ? x[(size_t)bh * a.K + i] : 0.0f;
    }
}

__device__ static void n_store(const float n[4], float *x, const sc_args &a, size_t at, int i0)
{
    for (int e = 0; e < 4; e += 2) {
        int i = i0 + c_row(e);
        if (threadIdx.x % 4 == 0 && i < a.K) x[at + i] = n[e];
    }
}

/* A bf16 pair times (lo, hi), rounded back to bf16. */
__device__ static uint32_t scale2(uint32_t x, float lo, float hi)
{
    float2 f = __bfloat1622float2(*(__nv_bfloat162 *)&x);
    return pack2(f.x * lo, f.y * hi);
}

/* The A fragment of Aᵀ at k-step k0 with its columns (the steps s) scaled by g_s: a[0], a[1] hold
 * columns 2t, 2t+1, a[2], a[3] columns 2t+8, 2t+9. */
__device__ static void scale_steps(uint32_t a[4], const float *g, int k0)
{
    int t = threadIdx.x % 4;
    float g0 = g[k0 + 2 * t], g1 = g[k0 + 2 * t + 1], g8 = g[k0 + 2 * t + 8], g9 = g[k0 + 2 * t + 9];
    a[0] = scale2(a[0], g0, g1), a[1] = scale2(a[1], g0, g1);
    a[2] = scale2(a[2], g8, g9), a[3] = scale2(a[3], g8, g9);
}

/* The A and B tiles of the walk's k-th chunk into pipeline stage k % NS (A, then B, each [64][TW+PAD]). */
__device__ static bf16 *walk_stage(bf16 *base, int k) { return base + (size_t)(k % NS) * 2 * CL * (TW + PAD); }

__device__ static void walk_load(bf16 *base, const tile_src &asrc, const tile_src &bsrc, const sc_args &a, int k, int c)
{
    bf16 *st = walk_stage(base, k);
    tile_fetch<TW>(st, asrc, a, c * CL);
    tile_fetch<TW>(st + CL * (TW + PAD), bsrc, a, c * CL);
}

static size_t walk_smem_bytes(void) { return (size_t)NS * 2 * CL * (TW + PAD) * sizeof(bf16); }

/* Grid (B·H, ⌈K/64⌉, V/64). The walk's k-th chunk is c = k (forward) or nc-1-k (reverse); chunks
 * k+1 .. k+NS-1 are loading (cp.async) while chunk k is added. */
template <bool REV>
__global__ static void __launch_bounds__(NTH) state_walk(sc_args a, sc_work w, walk_io io)
{
    extern __shared__ uint4 smem_u4[];
    bf16 *stages = (bf16 *)smem_u4;
    __shared__ __align__(16) bf16 xcol[CL * GP];
    __shared__ float gs[CL];
    int bh = blockIdx.x, i0 = blockIdx.y * TW, j0 = blockIdx.z * TW, tid = threadIdx.x, nc = a.nc;
    int with_n = a.normalize && blockIdx.z == 0;
    float S[TW / 8][4], n[4];
    tile_load(S, io.init_S, a, bh, i0, j0);
    n_load(n, io.init_n, a, bh, i0);
    for (int e = tid; e < CL * GP; e += NTH) xcol[e] = __float2bfloat16_rn(e % GP == 0 ? 1.0f : 0.0f);
    __syncthreads(); /* before the reverse walk's threads write column 0 */
    int c0 = REV ? nc - 1 : 0;
    float g_next = walk_scale<REV>(a, w, bh, c0), x_next = walk_extra<REV>(a, w, bh, c0);
    float b_next = w.beta[(size_t)bh * nc + c0];
    tile_src asrc = tile_src_of<TW>(a, io.xa, bh, a.ssd ? a.G : a.H, a.K, i0);
    tile_src bsrc = tile_src_of<TW>(a, io.xb, bh, a.H, a.V, j0);
    for (int p = 0; p < NS - 1; p++) {
        if (p < nc) walk_load(stages, asrc, bsrc, a, p, REV ? nc - 1 - p : p);
        cp_commit();
    }
    for (int k = 0; k < nc; k++) {
        int c = REV ? nc - 1 - k : k, kn = k + NS - 1;
        if (kn < nc) walk_load(stages, asrc, bsrc, a, kn, REV ? nc - 1 - kn : kn); /* into chunk k-1's stage */
        cp_commit();
        tile_store_bf16(S, io.each_S, a, bh, c, i0, j0, 0);
        if (io.split) tile_store_bf16(S, io.each_S + lo_offset(a), a, bh, c, i0, j0, 1);
        if (with_n) n_store(n, io.each_n, a, ((size_t)bh * nc + c) * a.K, i0);
        float g = g_next, x = x_next, beta = b_next;
        if (k + 1 < nc) {
            int cn = REV ? c - 1 : c + 1;
            g_next = walk_scale<REV>(a, w, bh, cn), x_next = walk_extra<REV>(a, w, bh, cn);
            b_next = w.beta[(size_t)bh * nc + cn];
        }
        if (tid < CL) {
            gs[tid] = g;
            if (REV) xcol[tid * GP] = __float2bfloat16_rn(x);
        }
        cp_wait<NS - 1>();
        __syncthreads();
        const bf16 *ast = walk_stage(stages, k), *bst = ast + CL * (TW + PAD);
#pragma unroll
        for (int nt = 0; nt < TW / 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) S[nt][e] *= beta;
#pragma unroll
        for (int e = 0; e < 4; e++) n[e] *= beta;
#pragma unroll
        for (int k0 = 0; k0 < CL; k0 += 16) { /* S̄ += (A⊙g)ᵀ B, n̄ += (A⊙g)ᵀ x over the chunk's steps */
            uint32_t af[4], b[2];
            frag_at(af, ast, TW + PAD, 16 * (tid / 32), k0);
            scale_steps(af, gs, k0);
#pragma unroll
            for (int nt = 0; nt < TW / 8; nt++) {
                frag_bt(b, bst, TW + PAD, 8 * nt, k0);
                mma(S[nt], af, b);
            }
            if (with_n) {
                frag_bt(b, xcol, GP, 0, k0);
                mma(n, af, b);
            }
        }
        __syncthreads(); /* stage k % NS is free for chunk k + NS */
    }
    if (io.last_S) tile_store(S, io.last_S, a, bh, i0, j0);
    if (with_n && io.last_n) n_store(n, io.last_n, a, (size_t)bh * a.K, i0);
}

template <bool REV>
static int launch_walk(const char *op, const sc_args *a, const sc_work &w, const walk_io &io)
{
    size_t bytes = walk_smem_bytes();
    int rc = cu_check(op, cudaFuncSetAttribute(state_walk<REV>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    if (rc) return rc;
    dim3 grid((unsigned)(a->B * a->H), (unsigned)((a->K + TW - 1) / TW), (unsigned)(a->V / TW));
    state_walk<REV><<<grid, NTH, bytes>>>(*a, w, io);
    return cu_check(op, cudaGetLastError());
}

/* ---- the output of each chunk ---- */

/* Columns j0.. of a chunk's state x [K][V] (bf16) into the tile s [DK][TW+PAD] (rows past K zero). */
template <int DK>
__device__ static void state_cols(bf16 *s, const bf16 *x, const sc_args &a, int j0)
{
    for (int e = threadIdx.x; e < DK * (TW / 8); e += NTH) {
        int r = e / (TW / 8), u = e % (TW / 8);
        put8(&s[r * (TW + PAD) + 8 * u], r < a.K ? x + (size_t)r * a.V + j0 : NULL, NULL, u, TW, 1);
    }
}

/* acc[n] += Q S̄ over k < DK for this warp's 16 rows: Q [row][k] (pitch DK+PAD), S̄ [k][n] (pitch TW+PAD). */
template <int DK>
__device__ static void q_state(float acc[TW / 8][4], const bf16 *qs, const bf16 *ss)
{
#pragma unroll
    for (int k0 = 0; k0 < DK; k0 += 16) {
        uint32_t af[4];
        frag_a(af, qs, DK + PAD, 16 * (threadIdx.x / 32), k0);
#pragma unroll
        for (int n = 0; n < TW / 8; n++) {
            uint32_t b[2];
            frag_bt(b, ss, TW + PAD, 8 * n, k0);
            mma(acc[n], af, b);
        }
    }
}

template <int DK>
static size_t out_smem_bytes(void)
{
    return (size_t)(2 * CL * (DK + PAD) + CL * (TW + PAD) + DK * (TW + PAD)) * sizeof(bf16);
}

/* Grid (B·H·nc, V/64); DK: K padded to 64 or 128. BWD: the backward's recompute (mLSTM): instead of
 * the output, dH = dO / D into a.dhb, dH·h per row added into w.dN, N and D into w.N, w.rowZ.
 * The forward with the normalizer takes S̄_in as its hi and lo bf16 halves: where one step
 * dominates the state, S̄ ≈ w k vᵀ and n̄ ≈ w k, and o = (S̄ᵀq)/(n̄·q) ≈ v even when q·k is small;
 * S̄ rounded alone to bf16 (n̄ is float32) would add an error of 2⁻⁹ |q||k|/|q·k| to such a row
 * (measured: 0.1 to 0.4 of the output, test_cuda_bf16.c's case 3). The backward needs no lo half:
 * it differentiates its own function, so it only has to use one S̄ throughout (the hi half). */
template <int DK, bool BWD>
__global__ static void __launch_bounds__(NTH) chunk_output(sc_args a, sc_work w)
{
    extern __shared__ uint4 smem_u4[];
    bf16 *qs = (bf16 *)smem_u4, *ks = qs + CL * (DK + PAD), *vs = ks + CL * (DK + PAD), *ss = vs + CL * (TW + PAD);
    __shared__ float colb[CL], colf[CL], nin[DK];
    int BH = a.B * a.H, bh = blockIdx.x % BH, c = blockIdx.x / BH, j0 = blockIdx.y * TW, t0 = c * CL;
    int tid = threadIdx.x, Hs = a.ssd ? a.G : a.H;
    tile_fetch<DK>(qs, tile_src_of<DK>(a, a.qb, bh, Hs, a.K, 0), a, t0);
    tile_fetch<DK>(ks, tile_src_of<DK>(a, a.kb, bh, Hs, a.K, 0), a, t0);
    cp_commit(); /* Q and K first: Q Kᵀ starts while V and S̄_in arrive */
    tile_fetch<TW>(vs, tile_src_of<TW>(a, a.vb, bh, a.H, a.V, j0), a, t0);
    const bf16 *sin = (const bf16 *)w.Sin + ((size_t)bh * a.nc + c) * a.K * a.V;
    state_cols<DK>(ss, sin, a, j0); /* S̄_in(c)'s hi half */
    cp_commit();
    size_t st0 = (size_t)bh * a.Tp + t0;
    if (tid < CL) {
        colb[tid] = (float)((double)w.w[st0 + tid] - w.F[st0 + tid]); /* -∞ on padded steps */
        colf[tid] = a.ssd ? w.delta[st0 + tid] : 1.0f;
    }
    for (int i = tid; i < DK; i += NTH) nin[i] = a.normalize && i < a.K ? w.nin[((size_t)bh * a.nc + c) * a.K + i] : 0;
    cp_wait<1>();
    __syncthreads();

    int warp = tid / 32, t = tid % 4;
    float z[1][CL / 8][4], o[1][TW / 8][4], qsn[1][TW / 8][4];
    tile_mma<DK, CL / 8, 1>(z, qs, DK + PAD, 16 * warp, ks, DK + PAD); /* Q Kᵀ */
    float rowa[2], rsum[2] = {0.0f, 0.0f};
    for (int half = 0; half < 2; half++) {
        size_t st = st0 + c_row(2 * half);
        rowa[half] = (float)(w.F[st] - w.M[st]);
    }
#pragma unroll
    for (int n = 0; n < CL / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int j = c_row(e), s = c_col(n, e);
            float x = s <= j ? a.qscale * z[0][n][e] * expf(rowa[e / 2] + colb[s]) * colf[s] : 0.0f;
            z[0][n][e] = x;
            rsum[e / 2] += x;
        }
    cp_wait<0>();
    __syncthreads();
#pragma unroll
    for (int n = 0; n < TW / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) o[0][n][e] = qsn[0][n][e] = 0.0f;
    regs_mma<CL / 8, TW / 8, 1>(o, z, vs, TW + PAD); /* Z V */
    if (BWD) { /* and Z's rounding error times V: h to about 16 bits, so dN = -(dH·h)/D matches dp's terms */
#pragma unroll
        for (int n = 0; n < CL / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) z[0][n][e] = part(z[0][n][e], 1);
        regs_mma<CL / 8, TW / 8, 1>(o, z, vs, TW + PAD);
    }
    q_state<DK>(qsn[0], qs, ss);
    if (!BWD && a.normalize) { /* then its lo half, in the same tile once every warp is done with the hi half */
        __syncthreads();
        state_cols<DK>(ss, sin + lo_offset(a), a, j0);
        cp_commit();
        cp_wait<0>();
        __syncthreads();
        q_state<DK>(qsn[0], qs, ss);
    }
    int b = bh / a.H, h = bh % a.H;
#pragma unroll
    for (int half = 0; half < 2; half++) {
        int j = c_row(2 * half);
        size_t st = st0 + j;
        float f = a.qscale * w.alpha[st], div = 1.0f;
        float rs = quad_sum(rsum[half]), qn = 0.0f;
        if (a.normalize) {
            for (int i = t; i < DK; i += 4) qn += __bfloat162float(qs[j * (DK + PAD) + i]) * nin[i];
            qn = quad_sum(qn);
            float N = rs + f * qn;
            div = fmaxf(fabsf(N), (float)exp(-w.M[st]));
            if (BWD && blockIdx.y == 0 && t == 0) w.N[st] = N, w.rowZ[st] = div;
        }
        if (t0 + j >= a.T) continue;
        size_t row = (((size_t)b * a.T + t0 + j) * a.H + h) * a.V + j0;
        float dot = 0.0f; /* the backward's dH_j·h_j over these columns */
#pragma unroll
        for (int n = 0; n < TW / 8; n++) {
            int col = c_col(n, 0);
            float h0 = o[0][n][2 * half] + f * qsn[0][n][2 * half], y0 = h0 / div;
            float h1 = o[0][n][2 * half + 1] + f * qsn[0][n][2 * half + 1], y1 = h1 / div;
            if (BWD) { /* backward (normalize): dH = dO / D into dhb, and dN's dot from the rounded dH */
                float2 d = __bfloat1622float2(*(const __nv_bfloat162 *)&a.dob[row + col]);
                uint32_t p = pack2(d.x / div, d.y / div);
                float2 r = __bfloat1622float2(*(const __nv_bfloat162 *)&p);
                dot += r.x * h0 + r.y * h1;
                *(uint32_t *)&a.dhb[row + col] = p;
            } else {
                if (a.ssd) { /* the skip D x, x = v */
                    y0 += a.D[h] * __bfloat162float(vs[j * (TW + PAD) + col]);
                    y1 += a.D[h] * __bfloat162float(vs[j * (TW + PAD) + col + 1]);
                }
                *(uint32_t *)&a.outb[row + col] = pack2(y0, y1);
            }
        }
        dot = quad_sum(dot);
        if (BWD && t == 0) atomicAdd(&w.dN[st], dot);
    }
}

template <int DK, bool BWD>
static int launch_output(const char *op, const sc_args *a, const sc_work &w)
{
    size_t bytes = out_smem_bytes<DK>();
    int rc = cu_check(op, cudaFuncSetAttribute(chunk_output<DK, BWD>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    if (rc) return rc;
    chunk_output<DK, BWD><<<dim3((unsigned)(a->B * a->H * a->nc), (unsigned)(a->V / TW)), NTH, bytes>>>(*a, w);
    return cu_check(op, cudaGetLastError());
}

int cu_scalar_fused_stages(const char *op, const sc_args *a, const sc_work &w, const void *ctx)
{
    (void)ctx;
    int rc = cu_scalar_gates(op, a, w);
    if (rc) return rc;
    walk_io io = {a->kb, a->vb, a->S0, a->n0, (bf16 *)w.Sin, a->normalize, w.nin, a->S1, a->n1};
    if ((rc = launch_walk<false>(op, a, w, io))) return rc;
    return a->K <= 64 ? launch_output<64, false>(op, a, w) : launch_output<128, false>(op, a, w);
}

/* ---- the backward: the gradients of each chunk ----
 * One block of GW = 8 warps per (head, chunk), with the chunk's Q, K [64][DK],
 * V, dH [64][DV] and the states S̄_in(c), dS̄_out(c) [DK][DV] in shared memory
 * (bf16; DK, DV: K, V padded to 64 or 128). Warp w owns the 16 rows 16·(w%4)..
 * (steps) of the chunk and the half w/4 of each product's columns; the rows'
 * sums meet in shared memory. With A_js = e^{(F_j - m_j) + (w_s - F_s)} (s <= j),
 * Δ' as in the forward, dp = dH Vᵀ + dN 1ᵀ and u = V dS̄_outᵀ + 1 dn̄_outᵀ:
 *   Z = s (Q Kᵀ) ⊙ A ⊙ Δ'ᵀ,  E = Z ⊙ dp,  G = s A ⊙ dp   (Z rounded to bf16, G and G ⊙ Δ'ᵀ as hi and lo bf16 halves)
 *   dQ = (G ⊙ Δ'ᵀ) K + s α ⊙ (dH S̄_inᵀ + dN n̄_inᵀ)
 *   dK' = Gᵀ Q + γ ⊙ u                   (the gradient w.r.t. k' = Δ'⊙k; = dK where Δ' = 1;
 *                                         SSD: dB = Δ ⊙ dK', summed over a group's heads after)
 *   dV = Zᵀ dH + (γΔ') ⊙ (K dS̄_out)     (+ D_h dy in SSD)
 *   dF_j = rowE_j - colE_j + s α_j q_j·r_j - cs_j,  cs_s = γ_s k'_s·u_s,
 *   dF_last += Σ_s cs_s + β_c (S̄_in·dS̄_out + n̄_in·dn̄_out),  dλ_r = Σ_{j>=r} dF_j,  dw_s = colE_s + cs_s. */
enum { GW = 8, GNT = 32 * GW };

template <int DK, int DV>
static size_t grad_smem_bytes(void)
{
    return (size_t)(2 * CL * (DK + PAD) + 2 * CL * (DV + PAD) + 2 * DK * (DV + PAD) + 5 * CL * (CL + PAD)) * sizeof(bf16);
}

/* A chunk's state [K][V] (bf16, rows past K zero) into the tile s [DK][DV+PAD] (V = DV). */
template <int DK, int DV>
__device__ static void state_fetch(bf16 *s, const bf16 *x, const sc_args &a)
{
    for (int e = threadIdx.x; e < DK * (DV / 8); e += blockDim.x) {
        int r = e / (DV / 8), u = e % (DV / 8);
        put8(&s[r * (DV + PAD) + 8 * u], r < a.K ? x + (size_t)r * a.V : NULL, NULL, u, DV, 1);
    }
}

/* The hi (lo = 0) or lo half (part) of NN C tiles (columns c0 + c_col) as bf16 into the [64][CL+PAD]
 * tile s, by pairs. */
template <int NN>
__device__ static void c_store_bf16(bf16 *s, const float x[NN][4], int c0, int lo)
{
#pragma unroll
    for (int n = 0; n < NN; n++)
#pragma unroll
        for (int e = 0; e < 4; e += 2)
            *(uint32_t *)&s[c_row(e) * (CL + PAD) + c0 + c_col(n, e)] = pack2(part(x[n][e], lo), part(x[n][e + 1], lo));
}

/* acc[n] += Σ_k X[r0.., k] M[k][8n..] over k < KD: X [row][k] (pitch px), M [k][n] (pitch pm). */
template <int KD, int NN>
__device__ static void rows_times(float acc[NN][4], const bf16 *X, int px, int r0, const bf16 *M, int pm)
{
#pragma unroll
    for (int k0 = 0; k0 < KD; k0 += 16) {
        uint32_t af[4], b[2];
        frag_a(af, X, px, r0, k0);
#pragma unroll
        for (int n = 0; n < NN; n++) {
            frag_bt(b, M, pm, 8 * n, k0);
            mma(acc[n], af, b);
        }
    }
}

/* acc[n] += Σ_j X[j][r0..]ᵀ M[j][8n..] over the chunk's 64 rows j: X [j][row] (pitch CL+PAD), M [j][n]. */
template <int NN>
__device__ static void cols_times(float acc[NN][4], const bf16 *X, int r0, const bf16 *M, int pm)
{
#pragma unroll
    for (int k0 = 0; k0 < CL; k0 += 16) {
        uint32_t af[4], b[2];
        frag_at(af, X, CL + PAD, r0, k0);
#pragma unroll
        for (int n = 0; n < NN; n++) {
            frag_bt(b, M, pm, 8 * n, k0);
            mma(acc[n], af, b);
        }
    }
}

/* A row gradient's C tiles (rows c_row, columns c0 + c_col, those < C) to global: bf16 into xb
 * [B,T,Hs?,C] at head rows (b, t, h), or float32 into xf [BH,Tp,C] when xf is given. */
template <int NN>
__device__ static void rows_store(const float x[NN][4], const sc_args &a, sq_bf16 *xb, float *xf, int bh, int t0,
                                  int c0, int C)
{
    int b = bh / a.H, h = bh % a.H;
#pragma unroll
    for (int e = 0; e < 4; e += 2) {
        int j = c_row(e), t = t0 + j;
        if (t >= a.T) continue;
        size_t rb = (((size_t)b * a.T + t) * a.H + h) * C, rf = ((size_t)bh * a.Tp + t) * C;
#pragma unroll
        for (int n = 0; n < NN; n++) {
            int col = c0 + c_col(n, e);
            if (col >= C) continue;
            if (xf)
                *(float2 *)&xf[rf + col] = make_float2(x[n][e], x[n][e + 1]);
            else
                *(uint32_t *)&xb[rb + col] = pack2(x[n][e], x[n][e + 1]);
        }
    }
}

__device__ static float bf(const bf16 *s) { return __bfloat162float(*s); }

/* Sum over the block's GNT threads (every thread gets it); red holds GW floats. */
__device__ static float block_total(float x, float *red)
{
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    __syncthreads();
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = x;
    __syncthreads();
    float t = 0.0f;
    for (int i = 0; i < GW; i++) t += red[i];
    return t;
}

/* This warp's part of row j's sum: the quad's lanes summed, into half[cw][j] (the warps of the two
 * column halves each write theirs). */
__device__ static void row_part(float x, float half[2][CL], int cw, int j)
{
    x = quad_sum(x);
    if (threadIdx.x % 4 == 0) half[cw][j] = x;
}

/* Grid B·H·nc, GNT threads. */
template <int DK, int DV>
__global__ static void __launch_bounds__(GNT) chunk_grads(sc_args a, sc_work w)
{
    extern __shared__ uint4 smem_u4[];
    bf16 *qs = (bf16 *)smem_u4, *ks = qs + CL * (DK + PAD), *vs = ks + CL * (DK + PAD), *hs = vs + CL * (DV + PAD);
    bf16 *sis = hs + CL * (DV + PAD), *dss = sis + DK * (DV + PAD), *zs = dss + DK * (DV + PAD), *gsm = zs + CL * (CL + PAD);
    bf16 *gsl = gsm + CL * (CL + PAD), *gdm = gsl + CL * (CL + PAD), *gdl = gdm + CL * (CL + PAD);
    __shared__ float colb[CL], colf[CL], gam[CL], colE[CL], nin[DK], dnn[DK], red[GW];
    __shared__ float rowE[2][CL], qr[2][CL], ku[2][CL], kb[2][CL], dFs[CL], csum[CL];
    enum { NS = CL / 16, NK = DK / 16, NV = DV / 16 }; /* a warp's C tiles: half of 64, of DK, of DV */
    int BH = a.B * a.H, bh = blockIdx.x % BH, c = blockIdx.x / BH, t0 = c * CL, tid = threadIdx.x;
    int Hs = a.ssd ? a.G : a.H, r0 = 16 * (tid / 32 % 4), cw = tid / 128, h = bh % a.H;
    int s0 = cw * CL / 2, i0 = cw * DK / 2, v0 = cw * DV / 2; /* this warp's columns */
    int to_groups = a.ssd && a.G != a.H; /* SSD's heads share B and C: float32 rows for ssd_group_grads */
    size_t hc = (size_t)bh * a.nc + c, st0 = (size_t)bh * a.Tp + t0;
    tile_fetch<DK, GNT>(qs, tile_src_of<DK>(a, a.qb, bh, Hs, a.K, 0), a, t0);
    tile_fetch<DK, GNT>(ks, tile_src_of<DK>(a, a.kb, bh, Hs, a.K, 0), a, t0);
    tile_fetch<DV, GNT>(vs, tile_src_of<DV>(a, a.vb, bh, a.H, a.V, 0), a, t0);
    tile_fetch<DV, GNT>(hs, tile_src_of<DV>(a, a.normalize ? a.dhb : a.dob, bh, a.H, a.V, 0), a, t0);
    state_fetch<DK, DV>(sis, (const bf16 *)w.Sin + hc * a.K * a.V, a);
    state_fetch<DK, DV>(dss, (const bf16 *)w.dSn + hc * a.K * a.V, a);
    cp_commit();
    if (tid < CL) {
        size_t st = st0 + tid;
        colb[tid] = (float)((double)w.w[st] - w.F[st]); /* -∞ on padded steps */
        colf[tid] = a.ssd ? w.delta[st] : 1.0f;
        gam[tid] = w.gamma[st];
        colE[tid] = 0.0f;
    }
    for (int i = tid; i < DK; i += GNT) {
        nin[i] = a.normalize && i < a.K ? w.nin[hc * a.K + i] : 0.0f;
        dnn[i] = a.normalize && i < a.K ? w.dnn[hc * a.K + i] : 0.0f;
    }
    float rowa[2], sa[2], dn[2]; /* per row j = c_row(2 half): F_j - m_j, s α_j, dN_j */
    for (int half = 0; half < 2; half++) {
        size_t st = st0 + c_row(2 * half);
        rowa[half] = (float)(w.F[st] - w.M[st]);
        sa[half] = a.qscale * w.alpha[st];
        dn[half] = final_dn(a, w, st);
    }
    cp_wait<0>();
    __syncthreads();
    float bsum = 0.0f; /* the chunk end's S̄_in·dS̄_out + n̄_in·dn̄_out */
    for (int e = tid; e < a.K * DV; e += GNT) { /* V = DV */
        int i = e / DV, v = e % DV;
        bsum += bf(&sis[i * (DV + PAD) + v]) * bf(&dss[i * (DV + PAD) + v]);
    }
    for (int i = tid; i < DK; i += GNT) bsum += nin[i] * dnn[i];

    /* Z, E, G from Q Kᵀ and dH Vᵀ, columns s0.. */
    {
        float z[1][NS][4], g[1][NS][4], re[2] = {0.0f, 0.0f};
        tile_mma<DK, NS, 1>(z, qs, DK + PAD, r0, ks + s0 * (DK + PAD), DK + PAD);
        tile_mma<DV, NS, 1>(g, hs, DV + PAD, r0, vs + s0 * (DV + PAD), DV + PAD);
#pragma unroll
        for (int n = 0; n < NS; n++) {
            float ce[2] = {0.0f, 0.0f};
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int j = c_row(e), s = s0 + c_col(n, e), hf = e / 2;
                float A = s <= j ? expf(rowa[hf] + colb[s]) : 0.0f, dp = g[0][n][e] + dn[hf];
                float Z = a.qscale * z[0][n][e] * A * colf[s], E = Z * dp;
                re[hf] += E, ce[e % 2] += E;
                z[0][n][e] = Z;
                g[0][n][e] = a.qscale * A * dp;
            }
            for (int p = 0; p < 2; p++) { /* the column sums over this warp's 16 rows */
                float x = ce[p];
                for (int o = 4; o < 32; o <<= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
                if (tid % 32 < 4) atomicAdd(&colE[s0 + c_col(n, p)], x);
            }
        }
        for (int hf = 0; hf < 2; hf++) row_part(re[hf], rowE, cw, c_row(2 * hf));
        c_store_bf16<NS>(zs, z[0], s0, 0);
        c_store_bf16<NS>(gsm, g[0], s0, 0);
        c_store_bf16<NS>(gsl, g[0], s0, 1);
        if (a.ssd) { /* G ⊙ Δ'ᵀ for dQ */
#pragma unroll
            for (int n = 0; n < NS; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) g[0][n][e] *= colf[s0 + c_col(n, e)];
            c_store_bf16<NS>(gdm, g[0], s0, 0);
            c_store_bf16<NS>(gdl, g[0], s0, 1);
        }
    }
    if (!a.ssd) gdm = gsm, gdl = gsl; /* Δ' = 1 */
    __syncthreads(); /* Z and G are read across the warps' rows and columns */

    /* dQ (columns i0..) = s α ⊙ r + (G ⊙ Δ'ᵀ) K,  r = dH S̄_inᵀ + dN n̄_inᵀ;  dF_j = rowE_j + s α_j q_j·r_j */
    {
        float dq[1][NK][4], qp[2] = {0.0f, 0.0f};
        tile_mma<DV, NK, 1>(dq, hs, DV + PAD, r0, sis + i0 * (DV + PAD), DV + PAD);
#pragma unroll
        for (int n = 0; n < NK; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int j = c_row(e), i = i0 + c_col(n, e), hf = e / 2;
                float r = dq[0][n][e] + dn[hf] * nin[i];
                qp[hf] += bf(&qs[j * (DK + PAD) + i]) * r;
                dq[0][n][e] = sa[hf] * r;
            }
        rows_times<CL, NK>(dq[0], gdm, CL + PAD, r0, ks + i0, DK + PAD); /* G's hi half, then its lo half: */
        rows_times<CL, NK>(dq[0], gdl, CL + PAD, r0, ks + i0, DK + PAD); /* dq's two terms cancel along q */
        for (int hf = 0; hf < 2; hf++) row_part(qp[hf], qr, cw, c_row(2 * hf));
        rows_store<NK>(dq[0], a, a.dqb, to_groups ? w.dQt : NULL, bh, t0, i0, a.K);
    }

    /* The rows are steps s now:
     *   dV = (γΔ') ⊙ (K dS̄_out) + Zᵀ dH (+ D_h dy);  SSD: Σ dy ⊙ x for dD
     *   dK' = Gᵀ Q + γ ⊙ u,  u = V dS̄_outᵀ + 1 dn̄_outᵀ;  cs_s = γ_s Δ'_s k_s·u_s */
    float dyx = 0.0f;
    {
        float dv[1][NV][4];
#pragma unroll
        for (int n = 0; n < NV; n++) dv[0][n][0] = dv[0][n][1] = dv[0][n][2] = dv[0][n][3] = 0.0f;
        rows_times<DK, NV>(dv[0], ks, DK + PAD, r0, dss + v0, DV + PAD);
#pragma unroll
        for (int n = 0; n < NV; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) dv[0][n][e] *= gam[c_row(e)] * colf[c_row(e)];
        cols_times<NV>(dv[0], zs, r0, hs + v0, DV + PAD);
        if (a.ssd)
#pragma unroll
            for (int n = 0; n < NV; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int x = c_row(e) * (DV + PAD) + v0 + c_col(n, e);
                    float dy = bf(&hs[x]);
                    dv[0][n][e] += a.D[h] * dy;
                    dyx += dy * bf(&vs[x]);
                }
        rows_store<NV>(dv[0], a, a.dvb, NULL, bh, t0, v0, a.V);
    }
    {
        float dk[1][NK][4], kup[2] = {0.0f, 0.0f}, kbp[2] = {0.0f, 0.0f};
        tile_mma<DV, NK, 1>(dk, vs, DV + PAD, r0, dss + i0 * (DV + PAD), DV + PAD);
#pragma unroll
        for (int n = 0; n < NK; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int s = c_row(e), i = i0 + c_col(n, e);
                float u = dk[0][n][e] + dnn[i];
                kup[e / 2] += bf(&ks[s * (DK + PAD) + i]) * u;
                dk[0][n][e] = gam[s] * u;
            }
        cols_times<NK>(dk[0], gsm, r0, qs + i0, DK + PAD); /* Gᵀ Q, G's hi and lo halves */
        cols_times<NK>(dk[0], gsl, r0, qs + i0, DK + PAD);
        if (a.ssd) /* dK'·B for dΔ */
#pragma unroll
            for (int n = 0; n < NK; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) kbp[e / 2] += dk[0][n][e] * bf(&ks[c_row(e) * (DK + PAD) + i0 + c_col(n, e)]);
        for (int hf = 0; hf < 2; hf++) {
            row_part(kup[hf], ku, cw, c_row(2 * hf));
            row_part(kbp[hf], kb, cw, c_row(2 * hf));
        }
        if (a.ssd && !to_groups) /* a group per head: dB_s = Δ_s dK'_s straight to bf16 */
#pragma unroll
            for (int n = 0; n < NK; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) dk[0][n][e] *= colf[c_row(e)];
        rows_store<NK>(dk[0], a, a.dkb, to_groups ? w.dKt : NULL, bh, t0, i0, a.K);
    }

    /* the chunk's end: β_c (S̄_in·dS̄_out + n̄_in·dn̄_out), then dλ and dw */
    bsum = block_total(bsum, red); /* its syncs also complete colE and the rows' halves */
    if (a.ssd) {
        dyx = block_total(dyx, red);
        if (tid == 0) atomicAdd(&w.acc[2 * a.H + h], (double)dyx);
    }
    if (tid < CL) {
        int s = tid;
        csum[s] = gam[s] * colf[s] * (ku[0][s] + ku[1][s]);
        if (a.ssd) w.cs[st0 + s] = kb[0][s] + kb[1][s];
        float saj = a.qscale * w.alpha[st0 + s];
        dFs[s] = rowE[0][s] + rowE[1][s] + saj * (qr[0][s] + qr[1][s]) - colE[s] - csum[s];
    }
    __syncthreads();
    if (tid) return;
    float cs_all = 0.0f;
    for (int s = 0; s < CL; s++) cs_all += csum[s];
    double acc = 0;
    dFs[CL - 1] += cs_all + w.beta[hc] * bsum;
    for (int j = CL - 1; j >= 0; j--) {
        acc += dFs[j];
        w.dF[st0 + j] = acc;
        w.colE[st0 + j] = colE[j] + csum[j];
    }
}

template <int DK, int DV>
static int launch_grads(const char *op, const sc_args *a, const sc_work &w)
{
    size_t bytes = grad_smem_bytes<DK, DV>();
    int rc = cu_check(op, cudaFuncSetAttribute(chunk_grads<DK, DV>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    if (rc) return rc;
    chunk_grads<DK, DV><<<(unsigned)(a->B * a->H * a->nc), GNT, bytes>>>(*a, w);
    return cu_check(op, cudaGetLastError());
}

int cu_scalar_fused_bwd_stages(const char *op, const sc_args *a, const sc_work &w, const sc_grads *g)
{
    sc_args b = *a;
    b.outb = NULL;
    b.dhb = (sq_bf16 *)w.dH; /* [B,T,H,V] bf16 in the float32 dH's room */
    b.S1 = b.n1 = NULL;
    int rc = cu_scalar_gates(op, &b, w);
    if (rc) return rc;
    walk_io fwd = {b.kb, b.vb, b.S0, b.n0, (bf16 *)w.Sin, 0, w.nin, NULL, NULL};
    if ((rc = launch_walk<false>(op, &b, w, fwd))) return rc;
    if (b.normalize) { /* D, N and dO·o per row, dH = dO / D */
        if ((rc = cu_check(op, cudaMemsetAsync(w.dN, 0, (size_t)b.B * b.H * b.Tp * sizeof(float))))) return rc;
        if ((rc = b.K <= 64 ? launch_output<64, true>(op, &b, w) : launch_output<128, true>(op, &b, w))) return rc;
    }
    walk_io rev = {b.qb, b.normalize ? b.dhb : b.dob, g->dS1, g->dn1, (bf16 *)w.dSn, 0, w.dnn, g->dS0, g->dn0};
    if ((rc = launch_walk<true>(op, &b, w, rev))) return rc;
    if (b.ssd && (rc = cu_check(op, cudaMemsetAsync(w.acc, 0, 3 * (size_t)b.H * sizeof(double))))) return rc;
    if (b.K <= 64) return b.V == 64 ? launch_grads<64, 64>(op, &b, w) : launch_grads<64, 128>(op, &b, w);
    return b.V == 64 ? launch_grads<128, 64>(op, &b, w) : launch_grads<128, 128>(op, &b, w);
}
