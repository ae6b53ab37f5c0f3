/* Causal softmax attention on the GPU (src/ops/attn.h is the reference):
 * float32 on the CUDA cores, FlashAttention-2 style, no T×T buffer.
 *
 * Per (batch, head) the keys are the P cached positions followed by the T
 * new ones; query t sits at position P + t and sees positions s <= P + t:
 *   o_t = Σ_s e^{c q_t·k_s - lse_t} v_s,   c = 1/√K.
 * Scores are kept in log2 units (q is scaled by c·log2 e when loaded), so
 * every exponential is an exp2f and lse is stored as log2 Σ 2^{s}.
 *
 * Kernels, 256 threads and 64×64 tiles each (thread (ty, tx) = (tid/16,
 * tid%16) owns rows 4ty..4ty+3 of a tile, score columns tx + 16j and
 * accumulator columns 4tx + 64c .. +3):
 *   fwd  one block per (b, h, query tile): loops over the key tiles up to
 *        the diagonal with the online softmax (running max m, sum l):
 *          m' = max(m, max_s S), l' = 2^{m-m'} l + Σ_s 2^{S-m'},
 *          O' = 2^{m-m'} O + 2^{S-m'} V;   o = O/l, lse = m + log2 l.
 *        In the backward it writes lse and D_t = do_t·o_t instead of o.
 *   dq   one block per (b, h, query tile), over its key tiles:
 *          P = 2^{S - lse}, dS = P ⊙ (dO Vᵀ - D), dQ = c dS K.
 *   dkv  one block per (b, h, key tile) over the query tiles that see it
 *        (no atomics): dV = Pᵀ dO, dK = c dSᵀ Q; cache rows go to dcache0.
 *   step one block per (b, h): one query against the cache's n positions,
 *        each warp an online softmax over 32 positions at a time, then merged.
 * Tiles live in dynamic shared memory, rows padded by 4 floats so that the
 * float4 reads of 16 different rows hit different banks. Head sizes are
 * padded to 64 or 128 (template arguments DK, DV); K, V <= 128.
 * Workspace (backward only): lse and D, [B*H, T] each. */
#include <cuda_runtime.h>
#include <math.h>

#include "cuda.h"
#include "cuda_internal.h"

enum { TILE = 64, NT = 256, SP = TILE + 4 /* pitch of the score tiles */, MAXD = 128 };
#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f

typedef struct {
    int B, T, H, K, V;
    int P, cap0;    /* cache0's positions and capacity */
    float qs;       /* scale of q on load: log2(e)/√K */
    const float *q, *k, *v, *kc, *vc, *dout;
    float *out, *lse, *D; /* lse (log2 units), D: [B*H, T] */
    float *dq, *dk, *dv, *dkc, *dvc;
    int capd;       /* dcache0's capacity */
} attn_args;

/* ---- addressing ---- */

/* Key (val 0) or value (val 1) row of absolute position j for head bh:
 * the cache [B,H,cap,C] below P, the new rows [B,T,H,C] from P on. */
__device__ static const float *kv_row(const attn_args &a, int bh, int j, int val)
{
    int C = val ? a.V : a.K;
    if (j < a.P) return (val ? a.vc : a.kc) + ((size_t)bh * a.cap0 + j) * C;
    int b = bh / a.H, h = bh % a.H;
    return (val ? a.v : a.k) + (((size_t)b * a.T + (j - a.P)) * a.H + h) * C;
}

/* Offset of step i's row of head bh in a [B,T,H,C] tensor. */
__device__ static size_t t_off(const attn_args &a, int bh, int i, int C)
{
    int b = bh / a.H, h = bh % a.H;
    return (((size_t)b * a.T + i) * a.H + h) * C;
}

/* ---- tile loads: one warp per row, lanes over columns (coalesced) ---- */

/* Key or value rows j0 .. j0+63 into s [TILE][D+4]; zero past P+T and past the width. */
template <int D>
__device__ static void load_kv(float *s, const attn_args &a, int bh, int j0, int val)
{
    int C = val ? a.V : a.K, n = a.P + a.T;
    for (int r = threadIdx.x / 32; r < TILE; r += NT / 32) {
        const float *src = j0 + r < n ? kv_row(a, bh, j0 + r, val) : NULL;
        for (int c = threadIdx.x % 32; c < D; c += 32) s[r * (D + 4) + c] = src && c < C ? src[c] : 0.0f;
    }
}

/* Rows i0 .. i0+63 of x [B,T,H,C] (head bh) times scale into s [TILE][D+4]; zero past T and C. */
template <int D>
__device__ static void load_t(float *s, const float *x, const attn_args &a, int bh, int i0, int C, float scale)
{
    for (int r = threadIdx.x / 32; r < TILE; r += NT / 32) {
        const float *src = i0 + r < a.T ? x + t_off(a, bh, i0 + r, C) : NULL;
        for (int c = threadIdx.x % 32; c < D; c += 32) s[r * (D + 4) + c] = src && c < C ? src[c] * scale : 0.0f;
    }
}

/* ---- register-tiled products on shared memory ---- */

/* acc[r][j] = Σ_x A[4ty+r][x] Bm[tx+16j][x], both [TILE][D+4] row-major. */
template <int D>
__device__ static void tile_dot(const float *A, const float *Bm, float acc[4][4])
{
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
    for (int r = 0; r < 4; r++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[r][j] = 0.0f;
#pragma unroll 4
    for (int x = 0; x < D; x += 4) {
        float4 a[4], b[4];
#pragma unroll
        for (int r = 0; r < 4; r++) a[r] = *(const float4 *)&A[(ty * 4 + r) * (D + 4) + x];
#pragma unroll
        for (int j = 0; j < 4; j++) b[j] = *(const float4 *)&Bm[(tx + 16 * j) * (D + 4) + x];
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int j = 0; j < 4; j++)
            {
                acc[r][j] = fmaf(a[r].x, b[j].x, acc[r][j]);
                acc[r][j] = fmaf(a[r].y, b[j].y, acc[r][j]);
                acc[r][j] = fmaf(a[r].z, b[j].z, acc[r][j]);
                acc[r][j] = fmaf(a[r].w, b[j].w, acc[r][j]);
            }
    }
}

/* acc[r][4c+e] += Σ_j S[4ty+r][j] M[j][4tx+64c+e]: S [TILE][SP], M [TILE][D+4]. */
template <int D>
__device__ static void tile_acc(const float *S, const float *M, float acc[4][D / 16])
{
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll 2
    for (int j = 0; j < TILE; j += 4) {
        float4 p[4];
#pragma unroll
        for (int r = 0; r < 4; r++) p[r] = *(const float4 *)&S[(ty * 4 + r) * SP + j];
#pragma unroll
        for (int jj = 0; jj < 4; jj++)
#pragma unroll
            for (int c = 0; c < D / 64; c++) {
                float4 m = *(const float4 *)&M[(j + jj) * (D + 4) + tx * 4 + 64 * c];
#pragma unroll
                for (int r = 0; r < 4; r++) {
                    float pr = jj == 0 ? p[r].x : jj == 1 ? p[r].y : jj == 2 ? p[r].z : p[r].w;
                    acc[r][4 * c + 0] += pr * m.x;
                    acc[r][4 * c + 1] += pr * m.y;
                    acc[r][4 * c + 2] += pr * m.z;
                    acc[r][4 * c + 3] += pr * m.w;
                }
            }
    }
}

/* Max and sum over the 16 lanes tx of one row (all 32 lanes must call). */
__device__ static float row_max16(float x)
{
    for (int o = 8; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}

__device__ static float row_sum16(float x)
{
    for (int o = 8; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

/* Block id -> (head, query tile), the longest (last) query tiles first. */
__device__ static void query_block(const attn_args &a, int *bh, int *i0)
{
    int BH = a.B * a.H, nq = (a.T + TILE - 1) / TILE;
    *bh = blockIdx.x % BH;
    *i0 = (nq - 1 - (int)(blockIdx.x / BH)) * TILE;
}

/* ---- forward ---- */

/* The online-softmax update of one key tile: s (scores, log2 units)
 * becomes P = 2^{s - m'} in Ps; m, l, o rescaled. Masked: key j0+tx+16j
 * after query P+i0+4ty+r. */
template <int DV>
__device__ static void softmax_tile(const attn_args &a, int i0, int j0, float s[4][4], float m[4], float l[4],
                                    float o[4][DV / 16], float *Ps)
{
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
    for (int r = 0; r < 4; r++) {
        int qpos = a.P + i0 + ty * 4 + r;
        float mx = m[r];
#pragma unroll
        for (int j = 0; j < 4; j++) {
            if (j0 + tx + 16 * j > qpos) s[r][j] = -INFINITY;
            mx = fmaxf(mx, s[r][j]);
        }
        mx = row_max16(mx);
        float ref = mx == -INFINITY ? 0.0f : mx; /* a row with nothing visible yet keeps zeros */
        float sc = exp2f(m[r] - ref), ps = 0.0f;
        m[r] = mx;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            float p = exp2f(s[r][j] - ref);
            Ps[(ty * 4 + r) * SP + tx + 16 * j] = p;
            ps += p;
        }
        l[r] = l[r] * sc + ps; /* partial over this thread's columns; summed at the end */
#pragma unroll
        for (int x = 0; x < DV / 16; x++) o[r][x] *= sc;
    }
}

/* o = O/l into out; or, in the backward, lse = m + log2 l and D = do·o. */
template <int DV>
__device__ static void fwd_epilogue(const attn_args &a, int bh, int i0, const float m[4], const float l[4],
                                    const float o[4][DV / 16])
{
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
    for (int r = 0; r < 4; r++) {
        float L = row_sum16(l[r]), inv = 1.0f / L, dsum = 0.0f;
        int i = i0 + ty * 4 + r;
        if (i < a.T) {
            size_t row = t_off(a, bh, i, a.V);
#pragma unroll
            for (int x = 0; x < DV / 16; x++) {
                int col = tx * 4 + 64 * (x / 4) + x % 4;
                if (col < a.V) {
                    if (a.out) a.out[row + col] = o[r][x] * inv;
                    if (a.dout) dsum += a.dout[row + col] * (o[r][x] * inv);
                }
            }
        }
        dsum = row_sum16(dsum);
        if (tx == 0 && i < a.T) {
            if (a.lse) a.lse[(size_t)bh * a.T + i] = m[r] + log2f(L);
            if (a.D) a.D[(size_t)bh * a.T + i] = dsum;
        }
    }
}

template <int DK, int DV>
__global__ static void __launch_bounds__(NT, 2) fwd_kernel(attn_args a)
{
    extern __shared__ float4 smem4[];
    /* P takes K's place once S = Q Kᵀ is done: 3 tiles, two blocks an SM at K = V = 128 */
    float *Qs = (float *)smem4, *Ks = Qs + TILE * (DK + 4), *Vs = Ks + TILE * (DK + 4), *Ps = Ks;
    int bh, i0;
    query_block(a, &bh, &i0);
    load_t<DK>(Qs, a.q, a, bh, i0, a.K, a.qs);
    float m[4], l[4], o[4][DV / 16];
#pragma unroll
    for (int r = 0; r < 4; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
#pragma unroll
        for (int x = 0; x < DV / 16; x++) o[r][x] = 0.0f;
    }
    int last = a.P + min(i0 + TILE, a.T) - 1; /* the last position these queries see */
    for (int j0 = 0; j0 <= last; j0 += TILE) {
        __syncthreads(); /* the previous tile's readers are done */
        load_kv<DK>(Ks, a, bh, j0, 0);
        load_kv<DV>(Vs, a, bh, j0, 1);
        __syncthreads();
        float s[4][4];
        tile_dot<DK>(Qs, Ks, s);
        __syncthreads(); /* Ks is read by all: now Ps */
        softmax_tile<DV>(a, i0, j0, s, m, l, o, Ps);
        __syncthreads();
        tile_acc<DV>(Ps, Vs, o);
    }
    fwd_epilogue<DV>(a, bh, i0, m, l, o);
}

/* ---- backward ---- */

/* dS = P ⊙ (dP - D) into Ss, P = 2^{S - lse} (0 where not visible); lse, D per row r. */
__device__ static void grad_scores(const float s[4][4], const float dp[4][4], const float lse[4], const float D[4],
                                   const int vis[4][4], float *Ss)
{
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
    for (int r = 0; r < 4; r++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            float p = vis[r][j] ? exp2f(s[r][j] - lse[r]) : 0.0f;
            Ss[(ty * 4 + r) * SP + tx + 16 * j] = p * (dp[r][j] - D[r]);
        }
}

template <int DK, int DV>
__global__ static void __launch_bounds__(NT, 1) dq_kernel(attn_args a)
{
    extern __shared__ float4 smem4[];
    float *Qs = (float *)smem4, *Ks = Qs + TILE * (DK + 4), *Os = Ks + TILE * (DK + 4), *Vs = Os + TILE * (DV + 4),
          *Ss = Vs + TILE * (DV + 4);
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16, bh, i0;
    query_block(a, &bh, &i0);
    load_t<DK>(Qs, a.q, a, bh, i0, a.K, a.qs);
    load_t<DV>(Os, a.dout, a, bh, i0, a.V, 1.0f);
    float lse[4], D[4], acc[4][DK / 16];
#pragma unroll
    for (int r = 0; r < 4; r++) {
        int i = i0 + ty * 4 + r;
        lse[r] = i < a.T ? a.lse[(size_t)bh * a.T + i] : 0.0f;
        D[r] = i < a.T ? a.D[(size_t)bh * a.T + i] : 0.0f;
#pragma unroll
        for (int x = 0; x < DK / 16; x++) acc[r][x] = 0.0f;
    }
    int last = a.P + min(i0 + TILE, a.T) - 1;
    for (int j0 = 0; j0 <= last; j0 += TILE) {
        __syncthreads();
        load_kv<DK>(Ks, a, bh, j0, 0);
        load_kv<DV>(Vs, a, bh, j0, 1);
        __syncthreads();
        float s[4][4], dp[4][4];
        int vis[4][4];
        tile_dot<DK>(Qs, Ks, s);  /* S = Q Kᵀ (log2 units) */
        tile_dot<DV>(Os, Vs, dp); /* dP = dO Vᵀ */
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int j = 0; j < 4; j++) vis[r][j] = j0 + tx + 16 * j <= a.P + i0 + ty * 4 + r;
        grad_scores(s, dp, lse, D, vis, Ss);
        __syncthreads();
        tile_acc<DK>(Ss, Ks, acc); /* Σ dS K */
    }
    float c = 1.0f / sqrtf((float)a.K);
#pragma unroll
    for (int r = 0; r < 4; r++) {
        int i = i0 + ty * 4 + r;
        if (i >= a.T) continue;
        size_t row = t_off(a, bh, i, a.K);
#pragma unroll
        for (int x = 0; x < DK / 16; x++) {
            int col = tx * 4 + 64 * (x / 4) + x % 4;
            if (col < a.K) a.dq[row + col] = c * acc[r][x];
        }
    }
}

/* dK, dV rows of key tile j0 to dk/dv (new positions) or dcache0 (cached ones, when wanted). */
template <int DK, int DV>
__device__ static void dkv_epilogue(const attn_args &a, int bh, int j0, const float ak[4][DK / 16],
                                    const float av[4][DV / 16])
{
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
    for (int r = 0; r < 4; r++) {
        int j = j0 + ty * 4 + r;
        if (j >= a.P + a.T || (j < a.P && !a.dkc)) continue;
        float *dk = j < a.P ? a.dkc + ((size_t)bh * a.capd + j) * a.K : a.dk + t_off(a, bh, j - a.P, a.K);
        float *dv = j < a.P ? a.dvc + ((size_t)bh * a.capd + j) * a.V : a.dv + t_off(a, bh, j - a.P, a.V);
#pragma unroll
        for (int x = 0; x < DK / 16; x++) {
            int col = tx * 4 + 64 * (x / 4) + x % 4;
            if (col < a.K) dk[col] = LN2 * ak[r][x]; /* Q was scaled by c·log2 e */
        }
#pragma unroll
        for (int x = 0; x < DV / 16; x++) {
            int col = tx * 4 + 64 * (x / 4) + x % 4;
            if (col < a.V) dv[col] = av[r][x];
        }
    }
}

template <int DK, int DV>
__global__ static void __launch_bounds__(NT, 1) dkv_kernel(attn_args a)
{
    extern __shared__ float4 smem4[];
    float *Ks = (float *)smem4, *Qs = Ks + TILE * (DK + 4), *Vs = Qs + TILE * (DK + 4), *Os = Vs + TILE * (DV + 4),
          *Ps = Os + TILE * (DV + 4), *Ss = Ps + TILE * SP, *ls = Ss + TILE * SP, *Ds = ls + TILE;
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16, BH = a.B * a.H;
    int bh = blockIdx.x % BH, j0 = (int)(blockIdx.x / BH) * TILE;
    if (!a.dkc && j0 + TILE <= a.P) return; /* cached keys whose gradient nobody wants (whole block) */
    load_kv<DK>(Ks, a, bh, j0, 0);
    load_kv<DV>(Vs, a, bh, j0, 1);
    float ak[4][DK / 16], av[4][DV / 16];
#pragma unroll
    for (int r = 0; r < 4; r++) {
#pragma unroll
        for (int x = 0; x < DK / 16; x++) ak[r][x] = 0.0f;
#pragma unroll
        for (int x = 0; x < DV / 16; x++) av[r][x] = 0.0f;
    }
    /* query i sees key j iff P + i >= j: start at the tile holding i = j0 - P */
    for (int i0 = max(0, j0 - a.P) / TILE * TILE; i0 < a.T; i0 += TILE) {
        __syncthreads();
        load_t<DK>(Qs, a.q, a, bh, i0, a.K, a.qs);
        load_t<DV>(Os, a.dout, a, bh, i0, a.V, 1.0f);
        if (threadIdx.x < TILE) {
            int i = i0 + threadIdx.x;
            ls[threadIdx.x] = i < a.T ? a.lse[(size_t)bh * a.T + i] : 0.0f;
            Ds[threadIdx.x] = i < a.T ? a.D[(size_t)bh * a.T + i] : 0.0f;
        }
        __syncthreads();
        /* transposed tiles: rows are keys 4ty+r, columns queries tx+16j */
        float s[4][4], dp[4][4];
        tile_dot<DK>(Ks, Qs, s);  /* Sᵀ */
        tile_dot<DV>(Vs, Os, dp); /* dPᵀ = V dOᵀ */
        /* P = 2^{S - lse}, dS = P ⊙ (dP - D); lse and D vary along the columns here */
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int j = 0; j < 4; j++) {
                int c = tx + 16 * j, i = i0 + c;
                float p = i < a.T && j0 + ty * 4 + r <= a.P + i ? exp2f(s[r][j] - ls[c]) : 0.0f;
                Ps[(ty * 4 + r) * SP + c] = p;
                Ss[(ty * 4 + r) * SP + c] = p * (dp[r][j] - Ds[c]);
            }
        __syncthreads();
        tile_acc<DV>(Ps, Os, av); /* dV += Pᵀ dO */
        tile_acc<DK>(Ss, Qs, ak); /* dK += dSᵀ Q (Q scaled by c·log2 e) */
    }
    dkv_epilogue<DK, DV>(a, bh, j0, ak, av);
}

/* ---- decode step and cache appends ---- */

/* cache [B,H,cap,C] rows P .. P+T-1 = x [B,T,H,C]. */
__global__ static void append_kernel(const float *x, float *cache, int B, int T, int H, int C, int P, int cap)
{
    size_t n = (size_t)B * T * H * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / C;
        int c = (int)(i % C), h = (int)(r % H);
        r /= H;
        int t = (int)(r % T), b = (int)(r / T);
        cache[(((size_t)b * H + h) * cap + P + t) * C + c] = x[i];
    }
}

/* out[bh] = Σ_{s<n} softmax_s(c q·k_s) v_s over the cache's first n positions.
 * Warp w takes 32 positions at a time (w·32 + 256 i + lane), a lane's dot
 * product each, and folds them into its online softmax (m, l, o over the
 * lanes' value columns); then the 8 warps' partial results are merged:
 *   o = Σ_w 2^{m_w - M} o_w / Σ_w 2^{m_w - M} l_w,  M = max_w m_w. */
__global__ static void __launch_bounds__(NT) step_kernel(const float *q, const float *kc, const float *vc, float *out,
                                                       int K, int V, int n, int cap, float qs)
{
    __shared__ float qv[MAXD], wm[NT / 32], wl[NT / 32], wo[NT / 32][MAXD];
    int bh = blockIdx.x, w = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int x = threadIdx.x; x < K; x += NT) qv[x] = q[(size_t)bh * K + x] * qs;
    __syncthreads();
    const float *kb = kc + (size_t)bh * cap * K, *vb = vc + (size_t)bh * cap * V;
    float m = -INFINITY, l = 0.0f, o[MAXD / 32] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int p0 = w * 32; p0 < n; p0 += NT) { /* warp-uniform: lane 0's position p0 < n */
        float s = -INFINITY;
        if (p0 + lane < n) {
            const float *kr = kb + (size_t)(p0 + lane) * K;
            float acc = 0.0f;
            for (int x = 0; x < K; x++) acc = fmaf(qv[x], kr[x], acc);
            s = acc;
        }
        float mx = s;
        for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
        float mn = fmaxf(m, mx), sc = exp2f(m - mn), e = exp2f(s - mn), es = e;
        for (int off = 16; off > 0; off >>= 1) es += __shfl_xor_sync(0xffffffffu, es, off);
        l = l * sc + es;
#pragma unroll
        for (int u = 0; u < MAXD / 32; u++) o[u] *= sc;
        int cnt = min(32, n - p0);
        for (int src = 0; src < cnt; src++) { /* o += e_src v_src, lanes over the value columns */
            float f = __shfl_sync(0xffffffffu, e, src);
            const float *vr = vb + (size_t)(p0 + src) * V;
#pragma unroll
            for (int u = 0; u < MAXD / 32; u++)
                if (lane + 32 * u < V) o[u] = fmaf(f, vr[lane + 32 * u], o[u]);
        }
        m = mn;
    }
    if (lane == 0) wm[w] = m, wl[w] = l;
#pragma unroll
    for (int u = 0; u < MAXD / 32; u++)
        if (lane + 32 * u < V) wo[w][lane + 32 * u] = o[u];
    __syncthreads();
    if (threadIdx.x < V) {
        float M = -INFINITY, L = 0.0f, O = 0.0f;
        for (int i = 0; i < NT / 32; i++) M = fmaxf(M, wm[i]);
        for (int i = 0; i < NT / 32; i++) {
            float f = exp2f(wm[i] - M); /* 0 for a warp that saw nothing */
            L += f * wl[i];
            O += f * wo[i][threadIdx.x];
        }
        out[(size_t)bh * V + threadIdx.x] = O / L;
    }
}

/* ---- host side ---- */

enum { FWD, DQ, DKV };

static size_t smem_floats(int which, int DK, int DV)
{
    size_t kt = (size_t)TILE * (DK + 4), vt = (size_t)TILE * (DV + 4), st = (size_t)TILE * SP;
    if (which == FWD) return 2 * kt + vt; /* P aliases K (st <= kt) */
    if (which == DQ) return 2 * kt + 2 * vt + st;
    return 2 * kt + 2 * vt + 2 * st + 2 * TILE;
}

template <int DK, int DV>
static int launch_t(const char *op, const attn_args &a, int which)
{
    void (*kern)(attn_args) = which == FWD ? fwd_kernel<DK, DV> : which == DQ ? dq_kernel<DK, DV> : dkv_kernel<DK, DV>;
    size_t bytes = smem_floats(which, DK, DV) * sizeof(float);
    size_t tiles = which == DKV ? ((size_t)a.P + a.T + TILE - 1) / TILE : ((size_t)a.T + TILE - 1) / TILE;
    size_t blocks = tiles * a.B * a.H;
    if (blocks > 0x7fffffffu) return sq_fail(SQ_EINVAL, "%s: %zu blocks are too many for one launch", op, blocks);
    int rc = cu_check(op, cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    if (rc) return rc;
    kern<<<(unsigned)blocks, NT, bytes>>>(a);
    return cu_check(op, cudaGetLastError());
}

/* One of the three tiled kernels, instantiated for head sizes padded to 64 or 128. */
static int launch(const char *op, const attn_args &a, int which)
{
    if (a.K <= 64) return a.V <= 64 ? launch_t<64, 64>(op, a, which) : launch_t<64, 128>(op, a, which);
    return a.V <= 64 ? launch_t<128, 64>(op, a, which) : launch_t<128, 128>(op, a, which);
}

/* The CPU operator's checks, and the GPU's head-size limit. */
int cu_attn_check_args(const char *op, sq_dims d, const sq_attn_opts *o, const void *q, const void *k,
                       const void *v, const sq_attn_cache *c0)
{
    /* the CPU's checks read the tensors' pointers only (NULL or not), whatever their element type */
    int rc = sq_attn_check_args(op, d, o, (const float *)q, (const float *)k, (const float *)v, c0);
    if (!rc && (d.K > MAXD || d.V > MAXD))
        rc = sq_fail(SQ_EINVAL, "%s: head sizes up to %d on the GPU, got K=%d V=%d", op, MAXD, d.K, d.V);
    return rc;
}

/* The backward's checks: the forward's, dout, dq, dk, dv given, and dcache0
 * (when given and cache0 has positions) with buffers for them. */
int cu_attn_check_bwd(const char *op, sq_dims d, const sq_attn_opts *o, const void *q, const void *k, const void *v,
                      const sq_attn_cache *c0, const void *dout, const void *dq, const void *dk, const void *dv,
                      const sq_attn_cache *dc0)
{
    int rc, P = c0 ? c0->len : 0;
    if ((rc = cu_attn_check_args(op, d, o, q, k, v, c0)) || (rc = sq_check_ptr(op, "dout", dout)) ||
        (rc = sq_check_ptr(op, "dq", dq)) || (rc = sq_check_ptr(op, "dk", dk)) || (rc = sq_check_ptr(op, "dv", dv)))
        return rc;
    if (dc0 && P > 0 && (!dc0->k || !dc0->v || dc0->cap < P))
        return sq_fail(SQ_EINVAL, "%s: dcache0 needs buffers with cap >= %d", op, P);
    return SQ_OK;
}

static attn_args make_args(sq_dims d, const float *q, const float *k, const float *v, const sq_attn_cache *c0)
{
    attn_args a = {};
    a.B = d.B, a.T = d.T, a.H = d.H, a.K = d.K, a.V = d.V;
    a.P = c0 ? c0->len : 0;
    a.cap0 = c0 ? c0->cap : 0;
    a.kc = c0 ? c0->k : NULL;
    a.vc = c0 ? c0->v : NULL;
    a.qs = LOG2E / sqrtf((float)d.K);
    a.q = q, a.k = k, a.v = v;
    return a;
}

static unsigned grid_for(size_t n) { return (unsigned)(n / 256 + 1 < 4096 ? n / 256 + 1 : 4096); }

/* cache1's first P positions = cache0's (copied unless it is the same buffer). */
int cu_attn_copy_prefix(const char *op, sq_dims d, const sq_attn_cache *c0, sq_attn_cache *c1)
{
    int P = c0 ? c0->len : 0, rc = SQ_OK;
    size_t BH = (size_t)d.B * d.H, fs = sizeof(float);
    if (P > 0 && c1->k != c0->k)
        rc = cu_check(op, cudaMemcpy2DAsync(c1->k, (size_t)c1->cap * d.K * fs, c0->k, (size_t)c0->cap * d.K * fs,
                                            (size_t)P * d.K * fs, BH, cudaMemcpyDeviceToDevice));
    if (!rc && P > 0 && c1->v != c0->v)
        rc = cu_check(op, cudaMemcpy2DAsync(c1->v, (size_t)c1->cap * d.V * fs, c0->v, (size_t)c0->cap * d.V * fs,
                                            (size_t)P * d.V * fs, BH, cudaMemcpyDeviceToDevice));
    return rc;
}

/* cache1 = cache0's P positions followed by k, v. */
static int append(const char *op, sq_dims d, const float *k, const float *v, const sq_attn_cache *c0,
                  sq_attn_cache *c1)
{
    int P = c0 ? c0->len : 0, rc = cu_attn_copy_prefix(op, d, c0, c1);
    if (rc) return rc;
    size_t BH = (size_t)d.B * d.H, nk = BH * d.T * d.K, nv = BH * d.T * d.V;
    append_kernel<<<grid_for(nk), 256>>>(k, c1->k, d.B, d.T, d.H, d.K, P, c1->cap);
    append_kernel<<<grid_for(nv), 256>>>(v, c1->v, d.B, d.T, d.H, d.V, P, c1->cap);
    if ((rc = cu_check(op, cudaGetLastError()))) return rc;
    c1->len = P + d.T;
    return SQ_OK;
}


extern "C" size_t sq_cuda_attn_work_floats(sq_dims d, const sq_attn_opts *o)
{
    int L = o ? o->chunk : 64;
    if (L < 1 || d.B < 1 || d.T < 1 || d.H < 1 || d.K < 1 || d.V < 1) return 0;
    return 2 * cu_r64((size_t)d.B * d.H * d.T); /* lse, D */
}

/* The forward needs no workspace (work is accepted and unused). */
extern "C" int sq_cuda_attn_fwd(sq_dims d, const sq_attn_opts *o, const float *q, const float *k, const float *v,
                                const sq_attn_cache *cache0, float *out, sq_attn_cache *cache1, float *work)
{
    const char *op = "cuda attn fwd";
    sq_attn_opts def = sq_attn_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = cu_attn_check_args(op, d, o, q, k, v, cache0)) || (rc = sq_check_ptr(op, "out", out))) return rc;
    if ((rc = sq_attn_check_cache1(op, d, cache0, cache1))) return rc;
    attn_args a = make_args(d, q, k, v, cache0);
    a.out = out;
    if ((rc = launch(op, a, FWD))) return rc;
    return cache1 ? append(op, d, k, v, cache0, cache1) : SQ_OK;
}

extern "C" int sq_cuda_attn_bwd(sq_dims d, const sq_attn_opts *o, const float *q, const float *k, const float *v,
                                const sq_attn_cache *cache0, const float *dout, float *dq, float *dk, float *dv,
                                sq_attn_cache *dcache0, float *work)
{
    const char *op = "cuda attn bwd";
    sq_attn_opts def = sq_attn_defaults();
    if (!o) o = &def;
    int rc, P = cache0 ? cache0->len : 0;
    if ((rc = cu_attn_check_bwd(op, d, o, q, k, v, cache0, dout, dq, dk, dv, dcache0))) return rc;
    float *owned = NULL;
    if (!work && (rc = sq_cuda_malloc(&owned, sq_cuda_attn_work_floats(d, o)))) return rc;
    float *ws = work ? work : owned;
    attn_args a = make_args(d, q, k, v, cache0);
    a.dout = dout;
    a.lse = ws;
    a.D = ws + cu_r64((size_t)d.B * d.H * d.T);
    a.dq = dq, a.dk = dk, a.dv = dv;
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

extern "C" int sq_cuda_attn_step(sq_dims d, const sq_attn_opts *o, const float *q, const float *k, const float *v,
                                 sq_attn_cache *cache, float *out)
{
    const char *op = "cuda attn step";
    sq_attn_opts def = sq_attn_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sq_check_ptr(op, "cache", cache))) return rc;
    if (d.T != 1) return sq_fail(SQ_EINVAL, "%s: one token at a time (T must be 1, got %d)", op, d.T);
    if ((rc = cu_attn_check_args(op, d, o, q, k, v, cache)) || (rc = sq_check_ptr(op, "out", out))) return rc;
    if (!cache->k || !cache->v || cache->len >= cache->cap)
        return sq_fail(SQ_EINVAL, "%s: the cache is full or has no buffers (len %d, cap %d); allocate a larger one",
                       op, cache->len, cache->cap);
    if ((rc = append(op, d, k, v, cache, cache))) return rc;
    step_kernel<<<d.B * d.H, NT>>>(q, cache->k, cache->v, out, d.K, d.V, cache->len, cache->cap,
                                   LOG2E / sqrtf((float)d.K));
    return cu_check(op, cudaGetLastError());
}
