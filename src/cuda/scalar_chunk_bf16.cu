/* The scalar-gate chunkwise forward with bf16 inputs and outputs, fused on
 * the tensor cores (mLSTM, linear attention, Mamba-2 SSD; cuda_bf16.h).
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
 * rounded to bf16 for the output kernel, and adds each chunk's (K⊙γ')ᵀV on
 * the tensor cores (K's transpose through ldmatrix.trans, its fragments
 * scaled by γ' in registers and rounded to bf16). The column-0 blocks also
 * carry n̄ as one more 8-column tile (B operand: a column of ones). The
 * K and V tiles of NS - 1 chunks ahead are in flight (cp.async, from
 * addresses each thread works out once), the gates are read a chunk ahead.
 * The output kernel is one block per (head, chunk, 64 columns of V): Q Kᵀ
 * on the tensor cores, the mask's exponent and the row sums in float32, Z
 * rounded to bf16 as the A operand of Z V straight from the registers, and
 * Q S̄_in(c) on the tensor cores. Each warp owns 16 rows (steps) of the chunk.
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

/* Steps t0..t0+63 into the tile s [64][W+PAD]: cp.async, zeros past T and past C. */
template <int W>
__device__ static void tile_fetch(bf16 *s, const tile_src &src, const sc_args &a, int t0)
{
    const int per_row = W / 8, rows_per_pass = NTH / per_row;
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

/* A fragment (rows r0.., k0..) of a tile stored [k][row] (pitch p): the
 * transposing load, so Kᵀ needs no copy. Lane l names k row k0 + l%8 +
 * 8·(l/16), columns r0 + 8·(l/8 % 2). */
__device__ static void frag_at(uint32_t a[4], const bf16 *s, int p, int r0, int k0)
{
    int l = threadIdx.x % 32;
    const bf16 *x = s + (k0 + l % 8 + 8 * (l / 16)) * p + r0 + 8 * (l / 8 % 2);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3])
                 : "r"(smem_addr(x)));
}

/* The 4 elements of C tile n of this lane: row 16 w + g (+8 for e >= 2), column 8n + 2t (+1 for odd e). */
__device__ static int c_row(int e) { return 16 * (threadIdx.x / 32) + threadIdx.x % 32 / 4 + 8 * (e / 2); }
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

/* S̄_in(c)'s tile rounded to bf16 into sin [BH, nc, K, V] (pairs of columns). */
__device__ static void tile_store_bf16(const float S[TW / 8][4], bf16 *sin, const sc_args &a, int bh, int c, int i0,
                                       int j0)
{
    bf16 *x = sin + ((size_t)bh * a.nc + c) * a.K * a.V;
#pragma unroll
    for (int n = 0; n < TW / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e += 2) {
            int i = i0 + c_row(e);
            if (i < a.K) *(uint32_t *)&x[(size_t)i * a.V + j0 + c_col(n, e)] = pack2(S[n][e], S[n][e + 1]);
        }
}

/* γ'_s of chunk c's step tid (threads tid < 64), loaded a chunk ahead of its use (as β_c is). */
__device__ static float walk_gamma(const sc_args &a, const sc_work &w, int bh, int c)
{
    size_t st = (size_t)bh * a.Tp + (size_t)c * CL + threadIdx.x;
    return threadIdx.x < CL ? w.gamma[st] * (a.ssd ? w.delta[st] : 1.0f) : 0.0f;
}

/* n̄ is carried as column 0 of a 16×8 C tile per warp (rows as S̄'s): its
 * B operand is the [s][GP] tile ones whose column 0 holds 1 and the rest
 * zeros, so Kᵀ γ' rides on the same (scaled) A fragments as S̄. */
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

/* The A fragment of Kᵀ at k-step k0 with its columns (the steps s) scaled by γ'_s: a[0], a[1] hold
 * columns 2t, 2t+1, a[2], a[3] columns 2t+8, 2t+9. */
__device__ static void scale_steps(uint32_t a[4], const float *g, int k0)
{
    int t = threadIdx.x % 4;
    float g0 = g[k0 + 2 * t], g1 = g[k0 + 2 * t + 1], g8 = g[k0 + 2 * t + 8], g9 = g[k0 + 2 * t + 9];
    a[0] = scale2(a[0], g0, g1), a[1] = scale2(a[1], g0, g1);
    a[2] = scale2(a[2], g8, g9), a[3] = scale2(a[3], g8, g9);
}

/* Chunk c's K and V tiles into pipeline stage c % NS (K, then V, each [64][TW+PAD]). */
__device__ static bf16 *walk_stage(bf16 *base, int c) { return base + (size_t)(c % NS) * 2 * CL * (TW + PAD); }

__device__ static void walk_load(bf16 *base, const tile_src &ksrc, const tile_src &vsrc, const sc_args &a, int c)
{
    bf16 *kst = walk_stage(base, c);
    tile_fetch<TW>(kst, ksrc, a, c * CL);
    tile_fetch<TW>(kst + CL * (TW + PAD), vsrc, a, c * CL);
}

static size_t walk_smem_bytes(void) { return (size_t)NS * 2 * CL * (TW + PAD) * sizeof(bf16); }

/* Grid (B·H, ⌈K/64⌉, V/64). Chunks c+1 .. c+NS-1 are loading (cp.async) while chunk c is added. */
__global__ static void __launch_bounds__(NTH) state_walk(sc_args a, sc_work w)
{
    extern __shared__ uint4 smem_u4[];
    bf16 *stages = (bf16 *)smem_u4;
    __shared__ __align__(16) bf16 ones[CL * GP];
    __shared__ float gs[CL];
    int bh = blockIdx.x, i0 = blockIdx.y * TW, j0 = blockIdx.z * TW, tid = threadIdx.x;
    int with_n = a.normalize && blockIdx.z == 0;
    bf16 *sin = (bf16 *)w.Sin;
    float S[TW / 8][4], n[4];
    tile_load(S, a.S0, a, bh, i0, j0);
    n_load(n, a.n0, a, bh, i0);
    for (int e = tid; e < CL * GP; e += NTH) ones[e] = __float2bfloat16_rn(e % GP == 0 ? 1.0f : 0.0f);
    float g_next = walk_gamma(a, w, bh, 0), b_next = w.beta[(size_t)bh * a.nc];
    tile_src ksrc = tile_src_of<TW>(a, a.kb, bh, a.ssd ? a.G : a.H, a.K, i0);
    tile_src vsrc = tile_src_of<TW>(a, a.vb, bh, a.H, a.V, j0);
    for (int p = 0; p < NS - 1; p++) {
        if (p < a.nc) walk_load(stages, ksrc, vsrc, a, p);
        cp_commit();
    }
    for (int c = 0; c < a.nc; c++) {
        if (c + NS - 1 < a.nc) walk_load(stages, ksrc, vsrc, a, c + NS - 1); /* into chunk c-1's stage */
        cp_commit();
        tile_store_bf16(S, sin, a, bh, c, i0, j0);
        if (with_n) n_store(n, w.nin, a, ((size_t)bh * a.nc + c) * a.K, i0);
        float g = g_next, beta = b_next;
        if (c + 1 < a.nc) g_next = walk_gamma(a, w, bh, c + 1), b_next = w.beta[(size_t)bh * a.nc + c + 1];
        if (tid < CL) gs[tid] = g;
        cp_wait<NS - 1>();
        __syncthreads();
        const bf16 *kst = walk_stage(stages, c), *vst = kst + CL * (TW + PAD);
#pragma unroll
        for (int nt = 0; nt < TW / 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) S[nt][e] *= beta;
#pragma unroll
        for (int e = 0; e < 4; e++) n[e] *= beta;
#pragma unroll
        for (int k0 = 0; k0 < CL; k0 += 16) { /* S̄ += (K⊙γ')ᵀ V, n̄ += Kᵀ γ' over the chunk's steps */
            uint32_t af[4], b[2];
            frag_at(af, kst, TW + PAD, 16 * (tid / 32), k0);
            scale_steps(af, gs, k0);
#pragma unroll
            for (int nt = 0; nt < TW / 8; nt++) {
                frag_bt(b, vst, TW + PAD, 8 * nt, k0);
                mma(S[nt], af, b);
            }
            if (with_n) {
                frag_bt(b, ones, GP, 0, k0);
                mma(n, af, b);
            }
        }
        __syncthreads(); /* stage c % NS is free for chunk c + NS */
    }
    if (a.S1) tile_store(S, a.S1, a, bh, i0, j0);
    if (with_n && a.n1) n_store(n, a.n1, a, (size_t)bh * a.K, i0);
}

/* ---- the output of each chunk ---- */

template <int DK>
static size_t out_smem_bytes(void)
{
    return (size_t)(2 * CL * (DK + PAD) + CL * (TW + PAD) + DK * (TW + PAD)) * sizeof(bf16);
}

/* Grid (B·H·nc, V/64); DK: K padded to 64 or 128. */
template <int DK>
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
    for (int e = tid; e < DK * (TW / 8); e += NTH) { /* S̄_in(c) rows < K, columns j0.. */
        int r = e / (TW / 8), u = e % (TW / 8);
        put8(&ss[r * (TW + PAD) + 8 * u], r < a.K ? sin + (size_t)r * a.V + j0 : NULL, NULL, u, TW, 1);
    }
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
#pragma unroll
    for (int k0 = 0; k0 < DK; k0 += 16) { /* Q S̄_in */
        uint32_t af[4];
        frag_a(af, qs, DK + PAD, 16 * warp, k0);
#pragma unroll
        for (int n = 0; n < TW / 8; n++) {
            uint32_t b[2];
            frag_bt(b, ss, TW + PAD, 8 * n, k0);
            mma(qsn[0][n], af, b);
        }
    }
    int b = bh / a.H, h = bh % a.H;
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
        }
        if (t0 + j >= a.T) continue;
        size_t row = (((size_t)b * a.T + t0 + j) * a.H + h) * a.V + j0;
#pragma unroll
        for (int n = 0; n < TW / 8; n++) {
            int col = c_col(n, 0);
            float y0 = (o[0][n][2 * half] + f * qsn[0][n][2 * half]) / div;
            float y1 = (o[0][n][2 * half + 1] + f * qsn[0][n][2 * half + 1]) / div;
            if (a.ssd) { /* the skip D x, x = v */
                y0 += a.D[h] * __bfloat162float(vs[j * (TW + PAD) + col]);
                y1 += a.D[h] * __bfloat162float(vs[j * (TW + PAD) + col + 1]);
            }
            *(uint32_t *)&a.outb[row + col] = pack2(y0, y1);
        }
    }
}

template <int DK>
static int launch_output(const char *op, const sc_args *a, const sc_work &w)
{
    size_t bytes = out_smem_bytes<DK>();
    int rc = cu_check(op, cudaFuncSetAttribute(chunk_output<DK>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    if (rc) return rc;
    chunk_output<DK><<<dim3((unsigned)(a->B * a->H * a->nc), (unsigned)(a->V / TW)), NTH, bytes>>>(*a, w);
    return cu_check(op, cudaGetLastError());
}

int cu_scalar_fused_stages(const char *op, const sc_args *a, const sc_work &w, const void *ctx)
{
    (void)ctx;
    int rc = cu_scalar_gates(op, a, w);
    if (rc) return rc;
    size_t bytes = walk_smem_bytes();
    if ((rc = cu_check(op, cudaFuncSetAttribute(state_walk, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes))))
        return rc;
    dim3 grid((unsigned)(a->B * a->H), (unsigned)((a->K + TW - 1) / TW), (unsigned)(a->V / TW));
    state_walk<<<grid, NTH, bytes>>>(*a, w);
    if ((rc = cu_check(op, cudaGetLastError()))) return rc;
    return a->K <= 64 ? launch_output<64>(op, a, w) : launch_output<128>(op, a, w);
}
