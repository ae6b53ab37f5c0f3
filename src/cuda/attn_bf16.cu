/* Causal softmax attention with bf16 inputs and outputs on the tensor cores
 * (cuda_bf16.h; src/ops/attn.h is the math, attn.cu the float32 version).
 *
 * The same FlashAttention-2 structure as attn.cu (log2 units: scores are
 * multiplied by qs = log2(e)/√K after the product, so every exponential is
 * an exp2f), with the products on mma.sync.m16n8k16 (bf16 × bf16, float32
 * accumulation):
 *   fwd  per (b, h, 64·fwd_mt queries): S = Q Kᵀ, online softmax, O += P V;
 *        in the backward it writes lse = m + log2 l and D_t = do_t·o_t.
 *   dq   per (b, h, 64 queries): P = 2^{qs S - lse}, dS = P ⊙ (dO Vᵀ - D),
 *        dQ = c dS K  (c = 1/√K).
 *   dkv  per (b, h, 64 keys), over the queries that see them, 16 at a time:
 *        dV += Pᵀ dO, dK += c dSᵀ Q  (no atomics; cached keys to dcache0).
 * P and dS are rounded to bf16 before they multiply (as FlashAttention);
 * m, l, lse, D and every accumulator are float32.
 *
 * Each block is 4 warps; warp w owns 16 rows (queries, or keys in dkv) of
 * the block's 64, or in the forward fwd_mt tiles of 16 (so each B fragment
 * feeds fwd_mt products). Key/value tiles (query tiles in dkv) are double
 * buffered: cp.async copies tile i+1 while tile i is used. Tiles are bf16 in
 * shared memory, row-major as in global
 * memory (rows padded by 8 bf16 so that ldmatrix's 8 row reads hit
 * different banks), loaded 16 bytes at a time; a tile contracted over its
 * rows (V in P V, K in dS K, dO and Q in dkv) gives its B fragments through
 * ldmatrix.trans. Head sizes are padded with zeros to 64 or 128 (template
 * arguments DK, DV).
 *
 * The tile loads, fragments and mma are mma_bf16.cuh's.
 */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "cuda.h"
#include "cuda_internal.h"
#include "mma_bf16.cuh"

enum { TB = 64, NW = 4, NTH = NW * 32, PADB = 8 };
#define LOG2E_B 1.4426950408889634f

typedef struct {
    int B, T, H, K, V;
    int P, cap0;   /* cache0's positions and capacity */
    float qs;      /* log2(e)/√K */
    float c;       /* 1/√K */
    const bf16 *q, *k, *v, *dout;
    const float *kc, *vc; /* cache0 (float32) */
    bf16 *out, *dq, *dk, *dv;
    float *lse, *D;       /* [B*H, T] */
    float *dkc, *dvc;     /* dcache0 */
    int capd;
    int vec;              /* every tensor read is 16-byte aligned: rows of C % 8 == 0 load 16 bytes at a time */
} ab_args;

/* ---- tile loads: global rows (bf16, or the float32 cache) into bf16 shared memory ---- */

/* Row j of the keys (val 0) or values (val 1) of head bh: the cache below P
 * (float32, *cf set), the new rows from P on (bf16, *cb set); neither past P+T. */
__device__ static void kv_src(const ab_args &a, int bh, int j, int val, const float **cf, const bf16 **cb)
{
    int C = val ? a.V : a.K;
    *cf = NULL, *cb = NULL;
    if (j >= a.P + a.T) return;
    if (j < a.P) {
        *cf = (val ? a.vc : a.kc) + ((size_t)bh * a.cap0 + j) * C;
        return;
    }
    int b = bh / a.H, h = bh % a.H;
    *cb = (val ? a.v : a.k) + (((size_t)b * a.T + (j - a.P)) * a.H + h) * C;
}

/* Row i of x [B,T,H,C] for head bh (NULL past T). */
__device__ static const bf16 *t_src(const ab_args &a, const bf16 *x, int bh, int i, int C)
{
    if (i >= a.T) return NULL;
    int b = bh / a.H, h = bh % a.H;
    return x + (((size_t)b * a.T + i) * a.H + h) * C;
}

/* A 64-row tile s [TB][D+PADB] of keys or values from position j0; 16-byte pieces, threads over (row, piece). */
template <int D>
__device__ static void load_keys(bf16 *s, const ab_args &a, int bh, int j0, int val)
{
    int C = val ? a.V : a.K;
    for (int x = threadIdx.x; x < TB * (D / 8); x += NTH) {
        int r = x / (D / 8), u = x % (D / 8);
        const float *rf;
        const bf16 *rb;
        kv_src(a, bh, j0 + r, val, &rf, &rb);
        put8(&s[r * (D + PADB) + 8 * u], rb, rf, u, C, a.vec);
    }
}

/* The same for R rows i0.. of x [B,T,H,C]. */
template <int D, int R = TB>
__device__ static void load_rows(bf16 *s, const ab_args &a, const bf16 *src, int bh, int i0, int C)
{
    for (int x = threadIdx.x; x < R * (D / 8); x += NTH) {
        int r = x / (D / 8), u = x % (D / 8);
        put8(&s[r * (D + PADB) + 8 * u], t_src(a, src, bh, i0 + r, C), NULL, u, C, a.vec);
    }
}

/* Block id -> (head, first query) for blocks of BM queries, the longest (last) first. */
__device__ static void query_tile(const ab_args &a, int BM, int *bh, int *i0)
{
    int BH = a.B * a.H, nq = (a.T + BM - 1) / BM;
    *bh = blockIdx.x % BH;
    *i0 = (nq - 1 - (int)(blockIdx.x / BH)) * BM;
}

/* ---- forward ---- */

/* Query rows of a forward block: MT tiles of 16 per warp (B fragments shared
 * by MT mma), BM = 64 MT per block. 2, except at DK = 64, DV = 128, where the
 * compiler's register allocation for 2 collapses (thousands of bytes spilled). */
__host__ __device__ constexpr int fwd_mt(int DK, int DV) { return DK == 64 && DV == 128 ? 1 : 2; }

/* o = O/l to out (bf16); or lse = m + log2 l and D = do·o (the backward's).
 * Row tile mt of warp w starts at query i0 + 16 (MT w + mt). */
template <int DV, int MT>
__device__ static void fwd_store(const ab_args &a, int bh, int i0, const float m[MT][2], const float l[MT][2],
                                 const float o[MT][DV / 8][4])
{
    int w = threadIdx.x / 32, g = threadIdx.x % 32 / 4, t = threadIdx.x % 4, b = bh / a.H, h = bh % a.H;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int half = 0; half < 2; half++) {
            int i = i0 + 16 * (MT * w + mt) + g + 8 * half;
            float L = quad_sum(l[mt][half]), inv = 1.0f / L, dsum = 0.0f;
            if (i < a.T) {
                size_t row = (((size_t)b * a.T + i) * a.H + h) * a.V;
#pragma unroll
                for (int n = 0; n < DV / 8; n++)
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        int col = 8 * n + 2 * t + e;
                        float x = o[mt][n][2 * half + e] * inv;
                        if (col < a.V) {
                            if (a.out) a.out[row + col] = __float2bfloat16_rn(x);
                            if (a.dout) dsum += __bfloat162float(a.dout[row + col]) * x;
                        }
                    }
            }
            dsum = quad_sum(dsum);
            if (t == 0 && i < a.T) {
                if (a.lse) a.lse[(size_t)bh * a.T + i] = m[mt][half] + log2f(L);
                if (a.D) a.D[(size_t)bh * a.T + i] = dsum;
            }
        }
}

/* The online softmax of one key tile (keys j0..j0+63) for this lane's rows:
 * s (raw scores) becomes P = 2^{qs s - m'}, m and l updated, o rescaled. */
template <int DV, int MT>
__device__ static void online_softmax(const ab_args &a, int i0, int j0, float s[MT][TB / 8][4], float m[MT][2],
                                      float l[MT][2], float o[MT][DV / 8][4])
{
    int w = threadIdx.x / 32, g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int half = 0; half < 2; half++) {
            int qpos = a.P + i0 + 16 * (MT * w + mt) + g + 8 * half;
            float mx = m[mt][half];
#pragma unroll
            for (int n = 0; n < TB / 8; n++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    float &x = s[mt][n][2 * half + e];
                    x = j0 + 8 * n + 2 * t + e <= qpos ? x * a.qs : -INFINITY;
                    mx = fmaxf(mx, x);
                }
            mx = quad_max(mx);
            float ref = mx == -INFINITY ? 0.0f : mx, sc = exp2f(m[mt][half] - ref), ps = 0.0f;
            m[mt][half] = mx;
#pragma unroll
            for (int n = 0; n < TB / 8; n++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    float p = exp2f(s[mt][n][2 * half + e] - ref);
                    s[mt][n][2 * half + e] = p;
                    ps += p;
                }
            l[mt][half] = l[mt][half] * sc + ps; /* this lane's columns; summed over the quad at the end */
#pragma unroll
            for (int n = 0; n < DV / 8; n++) o[mt][n][2 * half] *= sc, o[mt][n][2 * half + 1] *= sc;
        }
}

template <int DK, int DV>
__global__ static void __launch_bounds__(NTH) fwd_kernel(ab_args a)
{
    enum { MT = fwd_mt(DK, DV), BM = NW * 16 * MT };
    extern __shared__ uint4 smem_u4[];
    /* Q (BM rows), then K and V twice: tile it+1 is copied in while tile it is used */
    bf16 *Qs = (bf16 *)smem_u4, *Kb = Qs + BM * (DK + PADB), *Vb = Kb + 2 * TB * (DK + PADB);
    int w = threadIdx.x / 32, bh, i0;
    query_tile(a, BM, &bh, &i0);
    float m[MT][2], l[MT][2], o[MT][DV / 8][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        m[mt][0] = m[mt][1] = -INFINITY;
        l[mt][0] = l[mt][1] = 0.0f;
#pragma unroll
        for (int n = 0; n < DV / 8; n++) o[mt][n][0] = o[mt][n][1] = o[mt][n][2] = o[mt][n][3] = 0.0f;
    }
    int last = a.P + min(i0 + BM, a.T) - 1, ntiles = last / TB + 1;
    load_rows<DK, BM>(Qs, a, a.q, bh, i0, a.K);
    load_keys<DK>(Kb, a, bh, 0, 0);
    load_keys<DV>(Vb, a, bh, 0, 1);
    cp_commit();
    for (int it = 0; it < ntiles; it++) {
        int j0 = it * TB;
        if (it + 1 < ntiles) {
            load_keys<DK>(Kb + (it + 1) % 2 * TB * (DK + PADB), a, bh, j0 + TB, 0);
            load_keys<DV>(Vb + (it + 1) % 2 * TB * (DV + PADB), a, bh, j0 + TB, 1);
        }
        cp_commit();
        cp_wait<1>(); /* tile it has arrived */
        __syncthreads();
        const bf16 *Ks = Kb + it % 2 * TB * (DK + PADB), *Vs = Vb + it % 2 * TB * (DV + PADB);
        float s[MT][TB / 8][4];
        tile_mma<DK, TB / 8, MT>(s, Qs, DK + PADB, 16 * MT * w, Ks, DK + PADB); /* S = Q Kᵀ */
        online_softmax<DV, MT>(a, i0, j0, s, m, l, o);
        regs_mma<TB / 8, DV / 8, MT>(o, s, Vs, DV + PADB); /* O += P V */
        __syncthreads(); /* this buffer's readers are done before it is refilled */
    }
    fwd_store<DV, MT>(a, bh, i0, m, l, o);
}

/* ---- backward ---- */

template <int DK, int DV>
__global__ static void __launch_bounds__(NTH) dq_kernel(ab_args a)
{
    extern __shared__ uint4 smem_u4[];
    /* Q and dO, then K and V twice (double-buffered as in the forward) */
    bf16 *Qs = (bf16 *)smem_u4, *Os = Qs + TB * (DK + PADB), *Kb = Os + TB * (DV + PADB),
         *Vb = Kb + 2 * TB * (DK + PADB);
    int w = threadIdx.x / 32, g = threadIdx.x % 32 / 4, t = threadIdx.x % 4, bh, i0;
    query_tile(a, TB, &bh, &i0);
    load_rows<DK>(Qs, a, a.q, bh, i0, a.K);
    load_rows<DV>(Os, a, a.dout, bh, i0, a.V);
    load_keys<DK>(Kb, a, bh, 0, 0);
    load_keys<DV>(Vb, a, bh, 0, 1);
    cp_commit();
    float lse[2], D[2], acc[1][DK / 8][4];
#pragma unroll
    for (int half = 0; half < 2; half++) {
        int i = i0 + 16 * w + g + 8 * half;
        lse[half] = i < a.T ? a.lse[(size_t)bh * a.T + i] : 0.0f;
        D[half] = i < a.T ? a.D[(size_t)bh * a.T + i] : 0.0f;
    }
#pragma unroll
    for (int n = 0; n < DK / 8; n++) acc[0][n][0] = acc[0][n][1] = acc[0][n][2] = acc[0][n][3] = 0.0f;
    int last = a.P + min(i0 + TB, a.T) - 1, ntiles = last / TB + 1;
    for (int it = 0; it < ntiles; it++) {
        int j0 = it * TB;
        if (it + 1 < ntiles) {
            load_keys<DK>(Kb + (it + 1) % 2 * TB * (DK + PADB), a, bh, j0 + TB, 0);
            load_keys<DV>(Vb + (it + 1) % 2 * TB * (DV + PADB), a, bh, j0 + TB, 1);
        }
        cp_commit();
        cp_wait<1>();
        __syncthreads();
        const bf16 *Ks = Kb + it % 2 * TB * (DK + PADB), *Vs = Vb + it % 2 * TB * (DV + PADB);
        float s[1][TB / 8][4], dp[1][TB / 8][4];
        tile_mma<DK, TB / 8, 1>(s, Qs, DK + PADB, 16 * w, Ks, DK + PADB);  /* S = Q Kᵀ */
        tile_mma<DV, TB / 8, 1>(dp, Os, DV + PADB, 16 * w, Vs, DV + PADB); /* dP = dO Vᵀ */
#pragma unroll
        for (int n = 0; n < TB / 8; n++)
#pragma unroll
            for (int x = 0; x < 4; x++) {
                int half = x / 2, j = j0 + 8 * n + 2 * t + x % 2;
                int vis = j <= a.P + i0 + 16 * w + g + 8 * half;
                float p = vis ? exp2f(s[0][n][x] * a.qs - lse[half]) : 0.0f;
                s[0][n][x] = p * (dp[0][n][x] - D[half]); /* dS */
            }
        regs_mma<TB / 8, DK / 8, 1>(acc, s, Ks, DK + PADB); /* Σ dS K */
        __syncthreads();
    }
    int b = bh / a.H, h = bh % a.H;
#pragma unroll
    for (int half = 0; half < 2; half++) {
        int i = i0 + 16 * w + g + 8 * half;
        if (i >= a.T) continue;
        size_t row = (((size_t)b * a.T + i) * a.H + h) * a.K;
#pragma unroll
        for (int n = 0; n < DK / 8; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int col = 8 * n + 2 * t + e;
                if (col < a.K) a.dq[row + col] = __float2bfloat16_rn(a.c * acc[0][n][2 * half + e]);
            }
    }
}

/* Query tile i0 of the dkv kernel: Q and dO rows, and the rows' lse and D. */
template <int DK, int DV>
__device__ static void load_queries(const ab_args &a, int bh, int i0, bf16 *Qs, bf16 *Os, float *ls, float *Ds)
{
    load_rows<DK>(Qs, a, a.q, bh, i0, a.K);
    load_rows<DV>(Os, a, a.dout, bh, i0, a.V);
    if (threadIdx.x < TB) {
        int i = i0 + threadIdx.x;
        ls[threadIdx.x] = i < a.T ? a.lse[(size_t)bh * a.T + i] : 0.0f;
        Ds[threadIdx.x] = i < a.T ? a.D[(size_t)bh * a.T + i] : 0.0f;
    }
}

/* dK, dV rows of this warp's keys to dk/dv (bf16, new positions) or dcache0 (float32, cached ones). */
template <int DK, int DV>
__device__ static void dkv_store(const ab_args &a, int bh, int j0, const float ak[DK / 8][4],
                                 const float av[DV / 8][4])
{
    int w = threadIdx.x / 32, g = threadIdx.x % 32 / 4, t = threadIdx.x % 4, b = bh / a.H, h = bh % a.H;
#pragma unroll
    for (int half = 0; half < 2; half++) {
        int j = j0 + 16 * w + g + 8 * half;
        if (j >= a.P + a.T || (j < a.P && !a.dkc)) continue;
        size_t rk = j < a.P ? ((size_t)bh * a.capd + j) * a.K : (((size_t)b * a.T + j - a.P) * a.H + h) * a.K;
        size_t rv = j < a.P ? ((size_t)bh * a.capd + j) * a.V : (((size_t)b * a.T + j - a.P) * a.H + h) * a.V;
#pragma unroll
        for (int n = 0; n < DK / 8; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int col = 8 * n + 2 * t + e;
                float x = a.c * ak[n][2 * half + e];
                if (col >= a.K) continue;
                if (j < a.P) a.dkc[rk + col] = x;
                else a.dk[rk + col] = __float2bfloat16_rn(x);
            }
#pragma unroll
        for (int n = 0; n < DV / 8; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int col = 8 * n + 2 * t + e;
                float x = av[n][2 * half + e];
                if (col >= a.V) continue;
                if (j < a.P) a.dvc[rv + col] = x;
                else a.dv[rv + col] = __float2bfloat16_rn(x);
            }
    }
}

template <int DK, int DV>
__global__ static void __launch_bounds__(NTH) dkv_kernel(ab_args a)
{
    extern __shared__ uint4 smem_u4[];
    /* K and V, then Q, dO and the rows' lse and D twice (double-buffered over the query tiles) */
    bf16 *Ks = (bf16 *)smem_u4, *Vs = Ks + TB * (DK + PADB), *Qb = Vs + TB * (DV + PADB),
         *Ob = Qb + 2 * TB * (DK + PADB);
    float *lb = (float *)(Ob + 2 * TB * (DV + PADB)), *Db = lb + 2 * TB;
    int w = threadIdx.x / 32, g = threadIdx.x % 32 / 4, t = threadIdx.x % 4, BH = a.B * a.H;
    int bh = blockIdx.x % BH, j0 = (int)(blockIdx.x / BH) * TB;
    if (!a.dkc && j0 + TB <= a.P) return; /* cached keys whose gradient nobody wants (whole block) */
    load_keys<DK>(Ks, a, bh, j0, 0);
    load_keys<DV>(Vs, a, bh, j0, 1);
    float ak[DK / 8][4], av[DV / 8][4];
#pragma unroll
    for (int n = 0; n < DK / 8; n++) ak[n][0] = ak[n][1] = ak[n][2] = ak[n][3] = 0.0f;
#pragma unroll
    for (int n = 0; n < DV / 8; n++) av[n][0] = av[n][1] = av[n][2] = av[n][3] = 0.0f;
    /* query i sees key j iff P + i >= j: start at the tile holding i = j0 - P */
    int first = max(0, j0 - a.P) / TB * TB, ntiles = a.T > first ? (a.T - first + TB - 1) / TB : 0;
    if (ntiles > 0) load_queries<DK, DV>(a, bh, first, Qb, Ob, lb, Db);
    cp_commit();
    for (int it = 0; it < ntiles; it++) {
        int i0 = first + it * TB, nb = (it + 1) % 2;
        if (it + 1 < ntiles)
            load_queries<DK, DV>(a, bh, i0 + TB, Qb + nb * TB * (DK + PADB), Ob + nb * TB * (DV + PADB),
                                 lb + nb * TB, Db + nb * TB);
        cp_commit();
        cp_wait<1>();
        __syncthreads();
        const bf16 *Qs = Qb + it % 2 * TB * (DK + PADB), *Os = Ob + it % 2 * TB * (DV + PADB);
        const float *ls = lb + it % 2 * TB, *Ds = Db + it % 2 * TB;
        /* 16 queries at a time: Sᵀ, dPᵀ (this warp's keys × 16 queries), then one k-step of dV, dK */
#pragma unroll 1
        for (int q0 = 0; q0 < TB; q0 += 16) {
            float s[2][4], dp[2][4];
#pragma unroll
            for (int n = 0; n < 2; n++)
#pragma unroll
                for (int x = 0; x < 4; x++) s[n][x] = dp[n][x] = 0.0f;
#pragma unroll
            for (int k0 = 0; k0 < DK; k0 += 16) {
                uint32_t fa[4], fb[2];
                frag_a(fa, Ks, DK + PADB, 16 * w, k0);
#pragma unroll
                for (int n = 0; n < 2; n++) frag_b(fb, Qs, DK + PADB, q0 + 8 * n, k0), mma(s[n], fa, fb);
            }
#pragma unroll
            for (int k0 = 0; k0 < DV; k0 += 16) {
                uint32_t fa[4], fb[2];
                frag_a(fa, Vs, DV + PADB, 16 * w, k0);
#pragma unroll
                for (int n = 0; n < 2; n++) frag_b(fb, Os, DV + PADB, q0 + 8 * n, k0), mma(dp[n], fa, fb);
            }
#pragma unroll
            for (int n = 0; n < 2; n++)
#pragma unroll
                for (int x = 0; x < 4; x++) {
                    int c = q0 + 8 * n + 2 * t + x % 2, i = i0 + c, j = j0 + 16 * w + g + 8 * (x / 2);
                    float p = i < a.T && j <= a.P + i ? exp2f(s[n][x] * a.qs - ls[c]) : 0.0f;
                    s[n][x] = p;                      /* Pᵀ */
                    dp[n][x] = p * (dp[n][x] - Ds[c]); /* dSᵀ */
                }
            uint32_t fp[4], fs[4];
            c_to_a(fp, s[0], s[1]);
            c_to_a(fs, dp[0], dp[1]);
#pragma unroll
            for (int n = 0; n < DV / 8; n++) {
                uint32_t fb[2];
                frag_bt(fb, Os, DV + PADB, 8 * n, q0);
                mma(av[n], fp, fb); /* dV += Pᵀ dO */
            }
#pragma unroll
            for (int n = 0; n < DK / 8; n++) {
                uint32_t fb[2];
                frag_bt(fb, Qs, DK + PADB, 8 * n, q0);
                mma(ak[n], fs, fb); /* dK += dSᵀ Q */
            }
        }
        __syncthreads();
    }
    dkv_store<DK, DV>(a, bh, j0, ak, av);
}

/* cache [B,H,cap,C] rows P .. P+T-1 = x [B,T,H,C] widened to float32. */
__global__ static void append_bf16_kernel(const bf16 *x, float *cache, int B, int T, int H, int C, int P, int cap)
{
    size_t n = (size_t)B * T * H * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / C;
        int c = (int)(i % C), h = (int)(r % H);
        r /= H;
        int t = (int)(r % T), b = (int)(r / T);
        cache[(((size_t)b * H + h) * cap + P + t) * C + c] = __bfloat162float(x[i]);
    }
}

/* ---- host side ---- */

enum { FWD, DQ, DKV };

/* fwd: Q (64·fwd_mt rows), 2 K, 2 V; dq: Q, dO, 2 K, 2 V; dkv: K, V, 2 Q, 2 dO, 2×(lse, D). */
static size_t smem_bytes(int which, int DK, int DV)
{
    size_t qk = (size_t)TB * (DK + PADB), vv = (size_t)TB * (DV + PADB), e = sizeof(bf16);
    if (which == FWD) return ((size_t)NW * 16 * fwd_mt(DK, DV) * (DK + PADB) + 2 * qk + 2 * vv) * e;
    if (which == DQ) return (3 * qk + 3 * vv) * e;
    return (3 * qk + 3 * vv) * e + 4 * TB * sizeof(float);
}

template <int DK, int DV>
static int launch_t(const char *op, const ab_args &a, int which)
{
    void (*kern)(ab_args) = which == FWD ? fwd_kernel<DK, DV> : which == DQ ? dq_kernel<DK, DV> : dkv_kernel<DK, DV>;
    size_t bytes = smem_bytes(which, DK, DV);
    size_t rows = which == FWD ? (size_t)NW * 16 * fwd_mt(DK, DV) : TB; /* a block's queries (keys in dkv) */
    size_t tiles = which == DKV ? ((size_t)a.P + a.T + TB - 1) / TB : ((size_t)a.T + rows - 1) / rows;
    size_t blocks = tiles * a.B * a.H;
    if (blocks > 0x7fffffffu) return sq_fail(SQ_EINVAL, "%s: %zu blocks are too many for one launch", op, blocks);
    int rc = cu_check(op, cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    if (rc) return rc;
    kern<<<(unsigned)blocks, NTH, bytes>>>(a);
    return cu_check(op, cudaGetLastError());
}

static int launch(const char *op, const ab_args &a, int which)
{
    if (a.K <= 64) return a.V <= 64 ? launch_t<64, 64>(op, a, which) : launch_t<64, 128>(op, a, which);
    return a.V <= 64 ? launch_t<128, 64>(op, a, which) : launch_t<128, 128>(op, a, which);
}

static int aligned16(const void *p) { return (uintptr_t)p % 16 == 0; }

static ab_args make_args(sq_dims d, const sq_bf16 *q, const sq_bf16 *k, const sq_bf16 *v, const sq_attn_cache *c0)
{
    ab_args a = {};
    a.B = d.B, a.T = d.T, a.H = d.H, a.K = d.K, a.V = d.V;
    a.P = c0 ? c0->len : 0;
    a.cap0 = c0 ? c0->cap : 0;
    a.kc = c0 ? c0->k : NULL;
    a.vc = c0 ? c0->v : NULL;
    a.qs = LOG2E_B / sqrtf((float)d.K);
    a.c = 1.0f / sqrtf((float)d.K);
    a.q = (const bf16 *)q, a.k = (const bf16 *)k, a.v = (const bf16 *)v;
    a.vec = aligned16(q) && aligned16(k) && aligned16(v) && aligned16(a.kc) && aligned16(a.vc);
    return a;
}

static unsigned grid_for(size_t n) { return (unsigned)(n / 256 + 1 < 4096 ? n / 256 + 1 : 4096); }

extern "C" size_t sq_cuda_attn_bf16_work_floats(sq_dims d, const sq_attn_opts *o)
{
    return sq_cuda_attn_work_floats(d, o); /* lse and D */
}

/* The forward needs no workspace (work is accepted and unused). */
extern "C" int sq_cuda_attn_fwd_bf16(sq_dims d, const sq_attn_opts *o, const sq_bf16 *q, const sq_bf16 *k,
                                     const sq_bf16 *v, const sq_attn_cache *cache0, sq_bf16 *out,
                                     sq_attn_cache *cache1, float *work)
{
    const char *op = "cuda attn fwd bf16";
    sq_attn_opts def = sq_attn_defaults();
    if (!o) o = &def;
    (void)work;
    int rc;
    if ((rc = cu_attn_check_args(op, d, o, q, k, v, cache0)) || (rc = sq_check_ptr(op, "out", out))) return rc;
    if ((rc = sq_attn_check_cache1(op, d, cache0, cache1))) return rc;
    ab_args a = make_args(d, q, k, v, cache0);
    a.out = (bf16 *)out;
    if ((rc = launch(op, a, FWD))) return rc;
    if (!cache1) return SQ_OK;
    /* cache1 = cache0's positions, then k and v widened */
    int P = cache0 ? cache0->len : 0;
    if ((rc = cu_attn_copy_prefix(op, d, cache0, cache1))) return rc;
    size_t nk = (size_t)d.B * d.T * d.H * d.K, nv = (size_t)d.B * d.T * d.H * d.V;
    append_bf16_kernel<<<grid_for(nk), 256>>>(a.k, cache1->k, d.B, d.T, d.H, d.K, P, cache1->cap);
    append_bf16_kernel<<<grid_for(nv), 256>>>(a.v, cache1->v, d.B, d.T, d.H, d.V, P, cache1->cap);
    if ((rc = cu_check(op, cudaGetLastError()))) return rc;
    cache1->len = P + d.T;
    return SQ_OK;
}

extern "C" int sq_cuda_attn_bwd_bf16(sq_dims d, const sq_attn_opts *o, const sq_bf16 *q, const sq_bf16 *k,
                                     const sq_bf16 *v, const sq_attn_cache *cache0, const sq_bf16 *dout,
                                     sq_bf16 *dq, sq_bf16 *dk, sq_bf16 *dv, sq_attn_cache *dcache0, float *work)
{
    const char *op = "cuda attn bwd bf16";
    sq_attn_opts def = sq_attn_defaults();
    if (!o) o = &def;
    int rc, P = cache0 ? cache0->len : 0;
    if ((rc = cu_attn_check_bwd(op, d, o, q, k, v, cache0, dout, dq, dk, dv, dcache0))) return rc;
    float *owned = NULL;
    if (!work && (rc = sq_cuda_malloc(&owned, sq_cuda_attn_bf16_work_floats(d, o)))) return rc;
    float *ws = work ? work : owned;
    ab_args a = make_args(d, q, k, v, cache0);
    a.dout = (const bf16 *)dout;
    a.vec = a.vec && aligned16(dout);
    a.lse = ws;
    a.D = ws + cu_r64((size_t)d.B * d.H * d.T);
    a.dq = (bf16 *)dq, a.dk = (bf16 *)dk, a.dv = (bf16 *)dv;
    if (dcache0 && P > 0) a.dkc = dcache0->k, a.dvc = dcache0->v, a.capd = dcache0->cap;
    /* recompute lse and D = rowsum(dO ∘ O), then dQ, then dK and dV */
    if (!(rc = launch(op, a, FWD)) && !(rc = launch(op, a, DQ))) rc = launch(op, a, DKV);
    if (owned) {
        int rs = cu_check(op, cudaDeviceSynchronize());
        sq_cuda_free(owned);
        if (!rc) rc = rs;
    }
    if (!rc && dcache0) dcache0->len = P;
    return rc;
}
