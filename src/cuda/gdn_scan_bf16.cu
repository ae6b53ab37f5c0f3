/* Gated DeltaNet on the tensor cores, for the bf16 entry points: the state
 * recurrence over the chunks (gdn.cu's scans), and below it the forward's
 * chunk products (cu_gdn_chunk_tc) and output (cu_gdn_out_tc). Both scans of gdn.cu have
 * one form. Per chunk c (in order, or reversed), with the block's K×TV tile
 * of the state S in float32 registers:
 *   Sst[c] = S                                  (the state a chunk sees)
 *   Y_c    = Y0_c + s1 · X1_c S                 (L×TV; X1_c the chunk's L×K rows)
 *   S      ← e_c S + G_c + s2 · X2_cᵀ Y_c       (G_c read from Sst[c] before it is written)
 * forward  (DESIGN.md (U1), WY form):  X1 = W, s1 = -1, Y0 = U → Ṽ;  X2 = Kd, s2 = +1, no G;
 * backward (reverse, dS the carried):   X1 = Kd, s1 = +1, Y0 = Pᵀ dO → dṼ;  X2 = W, s2 = -1,
 *                                        G = Qgᵀ dO (in dSn, overwritten by dS').
 * The products are bf16 mma with float32 accumulation, each operand split in
 * a bf16 hi half and what its rounding left (lo): x y ≈ xh yh + xh yl + xl yh,
 * about 16 bits of mantissa, so the scan adds little to the bf16 inputs'
 * own rounding. The chunk's X1, X2 rows (float32) are copied a chunk ahead
 * (cp.async) and split into the two halves in shared memory.
 * Block: 8 warps. Product 1: warp w owns rows 16(w%4).. of Y and columns
 * (w/4)·TV/2 .. of the tile; product 2: warp w owns rows 16w.. of S (K <= 128).
 * Chunk length 64; K a multiple of 8, at most 128. */
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "cuda.h"
#include "cuda_internal.h"
#include "gdn_ut.cuh"
#include "mma_bf16.cuh"

enum { GS_L = 64, GS_NTH = 256, GS_KMAX = 128, GS_KP = GS_KMAX + 8 };

/* Shared memory of a block with a tile of TV columns: X1, X2 halves [L][KP];
 * S halves [KMAX][TV+8]; Y halves [L][TV+8]; X1, X2 float32 [L][K] (copies in flight). */
typedef struct {
    bf16 *x1h, *x1l, *x2h, *x2l, *sh, *sl, *yh, *yl;
    float *f1, *f2;
} gs_smem;

template <int TV>
__host__ __device__ static size_t gs_smem_bytes(void)
{
    return (4 * (size_t)GS_L * GS_KP + 2 * (size_t)GS_KMAX * (TV + 8) + 2 * (size_t)GS_L * (TV + 8)) * sizeof(bf16) +
           2 * (size_t)GS_L * GS_KMAX * sizeof(float);
}

template <int TV>
__device__ static gs_smem gs_carve(bf16 *p)
{
    gs_smem m;
    size_t x = (size_t)GS_L * GS_KP, s = (size_t)GS_KMAX * (TV + 8), y = (size_t)GS_L * (TV + 8);
    m.x1h = p, m.x1l = p + x, m.x2h = p + 2 * x, m.x2l = p + 3 * x;
    m.sh = p + 4 * x, m.sl = m.sh + s, m.yh = m.sl + s, m.yl = m.yh + y;
    m.f1 = (float *)(m.yl + y), m.f2 = m.f1 + (size_t)GS_L * GS_KMAX;
    return m;
}

/* The chunk's L×K float32 rows of X1 and X2 (contiguous from row r0) into f1, f2, asynchronously. */
__device__ static void gs_fetch(const gs_smem &m, const float *X1, const float *X2, size_t r0, int K)
{
    int n4 = GS_L * K / 4;
    const float *a = X1 + r0 * K, *b = X2 + r0 * K;
    for (int i = threadIdx.x; i < n4; i += GS_NTH) {
        cp_async16((bf16 *)(m.f1 + 4 * i), (const bf16 *)(a + 4 * i));
        cp_async16((bf16 *)(m.f2 + 4 * i), (const bf16 *)(b + 4 * i));
    }
    cp_commit();
}

/* 8 floats as bf16 halves: hi = round(x), lo = round(x - hi). */
__device__ static void gs_split8(const float *f, uint4 *hi, uint4 *lo)
{
    float h[8], l[8];
#pragma unroll
    for (int e = 0; e < 8; e++) {
        h[e] = __bfloat162float(__float2bfloat16_rn(f[e]));
        l[e] = f[e] - h[e];
    }
    *hi = make_uint4(pack2(h[0], h[1]), pack2(h[2], h[3]), pack2(h[4], h[5]), pack2(h[6], h[7]));
    *lo = make_uint4(pack2(l[0], l[1]), pack2(l[2], l[3]), pack2(l[4], l[5]), pack2(l[6], l[7]));
}

/* f [L][K] -> halves [L][KP], columns K.. KMAX zero. */
__device__ static void gs_split_rows(const float *f, bf16 *hi, bf16 *lo, int K)
{
    for (int i = threadIdx.x; i < GS_L * GS_KMAX / 8; i += GS_NTH) {
        int t = i / (GS_KMAX / 8), c0 = 8 * (i % (GS_KMAX / 8));
        uint4 h = make_uint4(0, 0, 0, 0), l = h;
        if (c0 < K) gs_split8(f + (size_t)t * K + c0, &h, &l);
        *(uint4 *)(hi + t * GS_KP + c0) = h;
        *(uint4 *)(lo + t * GS_KP + c0) = l;
    }
}

/* x as bf16 halves at hi[i], lo[i] (a pair: columns j, j+1). */
__device__ static void gs_put_pair(bf16 *hi, bf16 *lo, float x0, float x1)
{
    __nv_bfloat162 h = __floats2bfloat162_rn(x0, x1);
    *(__nv_bfloat162 *)hi = h;
    *(__nv_bfloat162 *)lo = __floats2bfloat162_rn(x0 - __low2float(h), x1 - __high2float(h));
}

/* acc += (ah + al)(bh + bl) less the lo·lo term. */
__device__ static void gs_mma3(float acc[4], const uint32_t ah[4], const uint32_t al[4], const uint32_t bh[2],
                               const uint32_t bl[2])
{
    mma(acc, ah, bh);
    mma(acc, ah, bl);
    mma(acc, al, bh);
}

/* Grid (B·H, ⌈V/TV⌉), GS_NTH threads. */
template <int TV>
__global__ static void __launch_bounds__(GS_NTH, 1) gdn_scan_tc(cu_gdn_scan s)
{
    extern __shared__ __align__(16) bf16 gs_sm[];
    const gs_smem m = gs_carve<TV>(gs_sm);
    enum { NN1 = TV / 16, NN2 = TV / 8, SP = TV + 8 };
    const int w = threadIdx.x / 32, g = threadIdx.x % 32 / 4, t4 = threadIdx.x % 4;
    const int bh = blockIdx.x, j0 = blockIdx.y * TV, K = s.K, V = s.V;
    const size_t KV = (size_t)K * V;
    /* product 1: rows r1.., columns cb..; product 2: state rows i2.. (when i2 < K) */
    const int r1 = 16 * (w % 4), cb = (w / 4) * (TV / 2), i2 = 16 * w, own = i2 < K;

    float S[NN2][4]; /* this warp's rows of the state: C tiles n (rows i2+g, +8; columns 8n+2t4, +1) */
#pragma unroll
    for (int n = 0; n < NN2; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int i = i2 + g + 8 * (e / 2), j = j0 + 8 * n + 2 * t4 + e % 2;
            S[n][e] = own && s.S_init && i < K && j < V ? s.S_init[bh * KV + (size_t)i * V + j] : 0.0f;
        }
    for (int i = threadIdx.x; i < GS_KMAX * SP; i += GS_NTH) m.sh[i] = m.sl[i] = __float2bfloat16_rn(0.0f);
    __syncthreads();
    if (own)
#pragma unroll
        for (int n = 0; n < NN2; n++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                int o = (i2 + g + 8 * h) * SP + 8 * n + 2 * t4;
                gs_put_pair(m.sh + o, m.sl + o, S[n][2 * h], S[n][2 * h + 1]);
            }
    gs_fetch(m, s.X1, s.X2, (size_t)bh * s.Tp + (size_t)(s.reverse ? s.nc - 1 : 0) * GS_L, K);

    for (int it = 0; it < s.nc; it++) {
        const int c = s.reverse ? s.nc - 1 - it : it;
        const size_t hc = (size_t)bh * s.nc + c, r0 = (size_t)bh * s.Tp + (size_t)c * GS_L;
        cp_wait<0>();
        __syncthreads(); /* this chunk's rows have landed; last chunk's S halves are written */
        gs_split_rows(m.f1, m.x1h, m.x1l, K);
        gs_split_rows(m.f2, m.x2h, m.x2l, K);
        __syncthreads();
        if (it + 1 < s.nc) {
            int cn = s.reverse ? c - 1 : c + 1;
            gs_fetch(m, s.X1, s.X2, (size_t)bh * s.Tp + (size_t)cn * GS_L, K);
        }
        /* Y0 of this warp's product-1 tile and G of its state rows, read early */
        float y0[NN1][4], G[NN2][4];
#pragma unroll
        for (int n = 0; n < NN1; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int j = j0 + cb + 8 * n + 2 * t4 + e % 2;
                y0[n][e] = j < V ? s.Y0[(r0 + r1 + g + 8 * (e / 2)) * V + j] : 0.0f;
            }
        float *sst = s.Sst + hc * KV;
#pragma unroll
        for (int n = 0; n < NN2; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int i = i2 + g + 8 * (e / 2), j = j0 + 8 * n + 2 * t4 + e % 2;
                G[n][e] = own && s.g_in_sst && i < K && j < V ? sst[(size_t)i * V + j] : 0.0f;
            }
        /* product 1: Y = Y0 + s1 X1 S (rows r1.., columns cb..) */
        float acc[NN1][4];
#pragma unroll
        for (int n = 0; n < NN1; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
#pragma unroll
        for (int ks = 0; ks < GS_KMAX / 16; ks++) {
            if (16 * ks >= K) break;
            uint32_t ah[4], al[4];
            frag_a(ah, m.x1h, GS_KP, r1, 16 * ks);
            frag_a(al, m.x1l, GS_KP, r1, 16 * ks);
#pragma unroll
            for (int n = 0; n < NN1; n++) {
                uint32_t bhi[2], blo[2];
                frag_bt(bhi, m.sh, SP, cb + 8 * n, 16 * ks);
                frag_bt(blo, m.sl, SP, cb + 8 * n, 16 * ks);
                gs_mma3(acc[n], ah, al, bhi, blo);
            }
        }
#pragma unroll
        for (int n = 0; n < NN1; n++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                int row = r1 + g + 8 * h, jl = cb + 8 * n + 2 * t4, j = j0 + jl;
                float ya = y0[n][2 * h] + s.s1 * acc[n][2 * h], yb = y0[n][2 * h + 1] + s.s1 * acc[n][2 * h + 1];
                if (j < V) s.Y[(r0 + row) * V + j] = ya;
                if (j + 1 < V) s.Y[(r0 + row) * V + j + 1] = yb;
                gs_put_pair(m.yh + row * SP + jl, m.yl + row * SP + jl, j < V ? ya : 0.0f, j + 1 < V ? yb : 0.0f);
            }
        /* Sst[c] = S, stored only now: a store behind a load of the same address (G) waits for
         * that load, and G's loads have had product 1's time to land */
#pragma unroll
        for (int n = 0; n < NN2; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int i = i2 + g + 8 * (e / 2), j = j0 + 8 * n + 2 * t4 + e % 2;
                if (own && i < K && j < V) sst[(size_t)i * V + j] = S[n][e];
            }
        __syncthreads(); /* Y halves visible; S halves no longer read */
        /* product 2: S = e S + G + s2 X2ᵀ Y (state rows i2..) */
        if (own) {
            float p[NN2][4];
#pragma unroll
            for (int n = 0; n < NN2; n++) p[n][0] = p[n][1] = p[n][2] = p[n][3] = 0.0f;
#pragma unroll
            for (int ks = 0; ks < GS_L / 16; ks++) {
                uint32_t ah[4], al[4];
                frag_at(ah, m.x2h, GS_KP, i2, 16 * ks);
                frag_at(al, m.x2l, GS_KP, i2, 16 * ks);
#pragma unroll
                for (int n = 0; n < NN2; n++) {
                    uint32_t bhi[2], blo[2];
                    frag_bt(bhi, m.yh, SP, 8 * n, 16 * ks);
                    frag_bt(blo, m.yl, SP, 8 * n, 16 * ks);
                    gs_mma3(p[n], ah, al, bhi, blo);
                }
            }
            float e = s.eL[hc];
#pragma unroll
            for (int n = 0; n < NN2; n++) {
#pragma unroll
                for (int q = 0; q < 4; q++) S[n][q] = e * S[n][q] + G[n][q] + s.s2 * p[n][q];
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    int o = (i2 + g + 8 * h) * SP + 8 * n + 2 * t4;
                    gs_put_pair(m.sh + o, m.sl + o, S[n][2 * h], S[n][2 * h + 1]);
                }
            }
        }
    }
    if (!own || !s.S_final) return;
#pragma unroll
    for (int n = 0; n < NN2; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int i = i2 + g + 8 * (e / 2), j = j0 + 8 * n + 2 * t4 + e % 2;
            if (i < K && j < V) s.S_final[bh * KV + (size_t)i * V + j] = S[n][e];
        }
}

int cu_gdn_scan_tc_fits(int K, int L) { return L == GS_L && K % 8 == 0 && K <= GS_KMAX; }

template <int TV>
static int gs_launch(const char *op, const cu_gdn_scan *s)
{
    size_t bytes = gs_smem_bytes<TV>();
    int rc = cu_check(op, cudaFuncSetAttribute(gdn_scan_tc<TV>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    if (rc) return rc;
    gdn_scan_tc<TV><<<dim3((unsigned)s->BH, (unsigned)((s->V + TV - 1) / TV)), GS_NTH, bytes>>>(*s);
    return cu_check(op, cudaGetLastError());
}

/* The tile width: the widest that still fills the device with one block per SM. */
int cu_gdn_scan_tc(const char *op, const cu_gdn_scan *s)
{
    int dev = 0, sms = 0, rc;
    if ((rc = cu_check(op, cudaGetDevice(&dev))) ||
        (rc = cu_check(op, cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev))))
        return rc;
    size_t b64 = (size_t)s->BH * ((s->V + 63) / 64);
    if (4 * b64 <= (size_t)sms) return gs_launch<16>(op, s);
    if (2 * b64 <= (size_t)sms) return gs_launch<32>(op, s);
    return gs_launch<64>(op, s);
}

/* ---- the chunk-parallel products of the forward (cu_gdn_chunk_tc) ----
 * One block of 4 warps per (head, chunk of 64), replacing two Gram GEMMs, the mask, the
 * UT transform and the W, U GEMMs of gdn.cu's float32 path:
 *   K̂K̂ᵀ, Q̂K̂ᵀ on the tensor cores (hi/lo halves, by pieces of 64 columns of K);
 *   M = strictly-lower(K̂K̂ᵀ ⊙ Γ), P = causal(Q̂K̂ᵀ ⊙ Γ), Γ_ts = e^{γ_t - γ_s};
 *   Tm = (I + diag(β) M)^{-1} (gdn_ut.cuh);  W = Tm Kx, U = Tm Vb (hi/lo, by pieces of 64 columns).
 * Warp w owns rows 16w.. of every product. M, P, Tm, W and U are written in float32 (the
 * backward reads them). */
enum { GC_L = 64, GC_NTH = 128, GC_W = 64, GC_WP = GC_W + 8 };

typedef struct {
    ut_smem ut;
    bf16 aH[GC_L][GC_WP], aL[GC_L][GC_WP], bH[GC_L][GC_WP], bL[GC_L][GC_WP]; /* pieces of 64 columns */
    bf16 tH[GC_L][GC_WP], tL[GC_L][GC_WP];                                   /* Tm's halves */
    double gam[GC_L];
    float beta[GC_L];
} gc_smem;

/* Columns c0 .. c0+63 of rows r0 .. r0+63 of x [rows][C] as bf16 halves; zero past C and
 * from row r0 + nrows on. With rs, row t is scaled by rs[t] first; with y (the same shape
 * as x), Σ x⊙y over the piece is added to *dot. */
__device__ static void gc_piece(const float *x, size_t r0, int C, int c0, bf16 (*hi)[GC_WP], bf16 (*lo)[GC_WP],
                                int nrows, const float *rs = NULL, const float *y = NULL, double *dot = NULL)
{
    for (int i = threadIdx.x; i < GC_L * GC_W / 8; i += GC_NTH) {
        int t = i / (GC_W / 8), u = 8 * (i % (GC_W / 8)), col = c0 + u;
        size_t o = (r0 + t) * C + col;
        float f[8];
#pragma unroll
        for (int e = 0; e < 8; e++) f[e] = 0.0f;
        if (t < nrows && C % 4 == 0 && col + 8 <= C) {
            float4 a = *(const float4 *)(x + o), b = *(const float4 *)(x + o + 4);
            f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
        } else if (t < nrows) {
#pragma unroll
            for (int e = 0; e < 8; e++) f[e] = col + e < C ? x[o + e] : 0.0f;
        }
        if (y && t < nrows)
#pragma unroll
            for (int e = 0; e < 8; e++) *dot += col + e < C ? (double)f[e] * y[o + e] : 0.0;
        if (rs)
#pragma unroll
            for (int e = 0; e < 8; e++) f[e] *= rs[t];
        uint4 h, l;
        gs_split8(f, &h, &l);
        *(uint4 *)&hi[t][u] = h;
        *(uint4 *)&lo[t][u] = l;
    }
}

/* acc (this warp's rows 16w.., 64 columns) += A B over 64, A and B as halves of 64×64 tiles:
 * A stored [row][k] (AT: [k][row], so A is the tile's transpose), B stored [k][n] (BT: [n][k]). */
template <bool AT, bool BT>
__device__ static void gc_piece_mma(float acc[GC_W / 8][4], bf16 (*aH)[GC_WP], bf16 (*aL)[GC_WP],
                                    bf16 (*bH)[GC_WP], bf16 (*bL)[GC_WP])
{
    const int w = threadIdx.x / 32;
#pragma unroll
    for (int ks = 0; ks < GC_L / 16; ks++) {
        uint32_t ah[4], al[4];
        if (AT) {
            frag_at(ah, &aH[0][0], GC_WP, 16 * w, 16 * ks);
            frag_at(al, &aL[0][0], GC_WP, 16 * w, 16 * ks);
        } else {
            frag_a(ah, &aH[0][0], GC_WP, 16 * w, 16 * ks);
            frag_a(al, &aL[0][0], GC_WP, 16 * w, 16 * ks);
        }
#pragma unroll
        for (int n = 0; n < GC_W / 8; n++) {
            uint32_t bhi[2], blo[2];
            if (BT) {
                frag_b(bhi, &bH[0][0], GC_WP, 8 * n, 16 * ks);
                frag_b(blo, &bL[0][0], GC_WP, 8 * n, 16 * ks);
            } else {
                frag_bt(bhi, &bH[0][0], GC_WP, 8 * n, 16 * ks);
                frag_bt(blo, &bL[0][0], GC_WP, 8 * n, 16 * ks);
            }
            gs_mma3(acc[n], ah, al, bhi, blo);
        }
    }
}

/* This warp's C tiles (rows 16w.., columns c0 + 8n..) into out [rows][C] from row r0, columns < C. */
__device__ static void gc_store(const float acc[GC_W / 8][4], float *out, size_t r0, int C, int c0)
{
    const int w = threadIdx.x / 32, g = threadIdx.x % 32 / 4, t4 = threadIdx.x % 4;
#pragma unroll
    for (int n = 0; n < GC_W / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int row = 16 * w + g + 8 * (e / 2), col = c0 + 8 * n + 2 * t4 + e % 2;
            if (col < C) out[(r0 + row) * C + col] = acc[n][e];
        }
}

/* out [rows][C] (from row r0) = Tm X, X [rows][C]: Tm's halves in m->tH, m->tL. Starts after a barrier. */
__device__ static void gc_tm_times(gc_smem *m, const float *X, size_t r0, int C, float *out)
{
    for (int c0 = 0; c0 < C; c0 += GC_W) {
        gc_piece(X, r0, C, c0, m->aH, m->aL, GC_L);
        __syncthreads();
        float acc[GC_W / 8][4];
#pragma unroll
        for (int n = 0; n < GC_W / 8; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
        gc_piece_mma<false, false>(acc, m->tH, m->tL, m->aH, m->aL);
        gc_store(acc, out, r0, C, c0);
        __syncthreads(); /* the piece is read; the next one may overwrite it */
    }
}

/* Grid B·H·nc, GC_NTH threads. */
__global__ static void __launch_bounds__(GC_NTH) gdn_chunk_tc(cu_gdn_chunk c)
{
    extern __shared__ __align__(16) unsigned char gc_raw[];
    gc_smem *m = (gc_smem *)gc_raw;
    const int tid = threadIdx.x, w = tid / 32, g = tid % 32 / 4, t4 = tid % 4;
    const size_t hc = blockIdx.x, r0 = (hc / c.nc) * c.Tp + (hc % c.nc) * GC_L;
    if (tid < GC_L) m->gam[tid] = c.gam[r0 + tid], m->beta[tid] = c.beta[r0 + tid];
    /* the Gram matrices, rows 16w.., all 64 columns */
    float G[GC_L / 8][4], Q[GC_L / 8][4];
#pragma unroll
    for (int n = 0; n < GC_L / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) G[n][e] = Q[n][e] = 0.0f;
    for (int c0 = 0; c0 < c.K; c0 += GC_W) {
        __syncthreads(); /* the last piece is read */
        gc_piece(c.kh, r0, c.K, c0, m->aH, m->aL, GC_L);
        gc_piece(c.qh, r0, c.K, c0, m->bH, m->bL, GC_L);
        __syncthreads();
#pragma unroll
        for (int ks = 0; ks < GC_W / 16; ks++) {
            uint32_t kh[4], kl[4], qh[4], ql[4];
            frag_a(kh, &m->aH[0][0], GC_WP, 16 * w, 16 * ks);
            frag_a(kl, &m->aL[0][0], GC_WP, 16 * w, 16 * ks);
            frag_a(qh, &m->bH[0][0], GC_WP, 16 * w, 16 * ks);
            frag_a(ql, &m->bL[0][0], GC_WP, 16 * w, 16 * ks);
#pragma unroll
            for (int n = 0; n < GC_L / 8; n++) {
                uint32_t bhi[2], blo[2]; /* K̂ᵀ: the k̂ piece is stored [s][k] */
                frag_b(bhi, &m->aH[0][0], GC_WP, 8 * n, 16 * ks);
                frag_b(blo, &m->aL[0][0], GC_WP, 8 * n, 16 * ks);
                gs_mma3(G[n], kh, kl, bhi, blo);
                gs_mma3(Q[n], qh, ql, bhi, blo);
            }
        }
    }
    /* the mask; M and P out; A = β M for the transform */
    float *Mo = c.M + hc * GC_L * GC_L, *Po = c.P + hc * GC_L * GC_L;
#pragma unroll
    for (int n = 0; n < GC_L / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int t = 16 * w + g + 8 * (e / 2), s = 8 * n + 2 * t4 + e % 2;
            float Gm = s <= t ? expf((float)(m->gam[t] - m->gam[s])) : 0.0f;
            float mv = s < t ? G[n][e] * Gm : 0.0f, pv = s <= t ? Q[n][e] * Gm : 0.0f;
            Mo[t * GC_L + s] = mv;
            Po[t * GC_L + s] = pv;
            m->ut.A[t][s] = m->beta[t] * mv;
        }
    __syncthreads();
    ut_invert_blocks(&m->ut, GC_L / 16, tid, GC_NTH);
    float *To = c.Tm + hc * GC_L * GC_L;
    for (int e = tid; e < GC_L * GC_L; e += GC_NTH) {
        int t = e / GC_L, s = e % GC_L;
        float x = s <= t ? m->ut.X[t][s] : 0.0f;
        bf16 h = __float2bfloat16_rn(x);
        To[e] = x;
        m->tH[t][s] = h;
        m->tL[t][s] = __float2bfloat16_rn(x - __bfloat162float(h));
    }
    __syncthreads();
    gc_tm_times(m, c.Kx, r0, c.K, c.W);
    gc_tm_times(m, c.Vb, r0, c.V, c.U);
}

int cu_gdn_chunk_tc(const char *op, const cu_gdn_chunk *c)
{
    size_t bytes = sizeof(gc_smem);
    int rc = cu_check(op, cudaFuncSetAttribute(gdn_chunk_tc, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    if (rc) return rc;
    gdn_chunk_tc<<<(unsigned)(c->BH * c->nc), GC_NTH, bytes>>>(*c);
    return cu_check(op, cudaGetLastError());
}

/* ---- the output (cu_gdn_out_tc) ----
 * One block of 4 warps per (head, chunk, 64 columns of V): O = Qg Sin + P Ṽ (DESIGN.md (U3) in
 * the WY form, gdn.cu's header), both products on the tensor cores in hi/lo halves, written
 * straight to [B,T,H,V] (float32, or bf16). */
__global__ static void __launch_bounds__(GC_NTH) gdn_out_tc(cu_gdn_out c)
{
    __shared__ __align__(16) bf16 aH[GC_L][GC_WP], aL[GC_L][GC_WP], bH[GC_L][GC_WP], bL[GC_L][GC_WP];
    const int w = threadIdx.x / 32, g = threadIdx.x % 32 / 4, t4 = threadIdx.x % 4;
    const size_t hc = blockIdx.x, bh = hc / c.nc, r0 = bh * c.Tp + (hc % c.nc) * GC_L, KV = (size_t)c.K * c.V;
    const int v0 = GC_W * blockIdx.y, t0 = (int)(hc % c.nc) * GC_L;
    float acc[GC_W / 8][4];
#pragma unroll
    for (int n = 0; n < GC_W / 8; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
    for (int k0 = 0; k0 < c.K; k0 += GC_W) { /* Qg Sin, by 64 rows of the state */
        gc_piece(c.Qg, r0, c.K, k0, aH, aL, GC_L);
        gc_piece(c.Sin + hc * KV, (size_t)k0, c.V, v0, bH, bL, c.K - k0);
        __syncthreads();
        gc_piece_mma<false, false>(acc, aH, aL, bH, bL);
        __syncthreads();
    }
    gc_piece(c.P + hc * GC_L * GC_L, 0, GC_L, 0, aH, aL, GC_L); /* P Ṽ */
    gc_piece(c.Vt, r0, c.V, v0, bH, bL, GC_L);
    __syncthreads();
    gc_piece_mma<false, false>(acc, aH, aL, bH, bL);
    const int b = (int)(bh / c.H), h = (int)(bh % c.H);
#pragma unroll
    for (int n = 0; n < GC_W / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int t = t0 + 16 * w + g + 8 * (e / 2), j = v0 + 8 * n + 2 * t4 + e % 2;
            if (t >= c.T || j >= c.V) continue;
            size_t o = (((size_t)b * c.T + t) * c.H + h) * c.V + j;
            if (c.outb) c.outb[o] = __float2bfloat16_rn(acc[n][e]);
            else c.out[o] = acc[n][e];
        }
}

int cu_gdn_out_tc(const char *op, const cu_gdn_out *c)
{
    gdn_out_tc<<<dim3((unsigned)(c->BH * c->nc), (unsigned)((c->V + GC_W - 1) / GC_W)), GC_NTH>>>(*c);
    return cu_check(op, cudaGetLastError());
}

/* ---- the backward's chunk products (cu_gdn_bwd_tc) ----
 * After the reverse scan (dṼ, dS' per chunk), per chunk, as gdn.cu's float32 backward
 * (its header gives the math) but on the tensor cores in hi/lo halves, by pieces of 64
 * columns; two kernels of 4 warps per (head, chunk), warp w owning rows 16w..:
 * scores: Y = Tmᵀ dṼ, dP = dO Ṽᵀ, dA = -Y Ṽᵀ; E = dP ⊙ P + dA ⊙ βM summed by rows and
 *         columns into dγ, Σ dA ⊙ M into dβ; dP ← dP ⊙ Γ, dA ← dA ⊙ βΓ (masked, in place).
 * rows:   dq̂ = (e^γ dO) Sᵀ + dP K̂,  dk̂ = (e^{γ_L-γ} Ṽ) dS'ᵀ - βe^γ Y Sᵀ + dPᵀ Q̂ + dA K̂ + dAᵀ K̂;
 *         the rows' terms of dγ, dβ, the chunk end (Σ c + e^{γ_L} S·dS') and dg. */

/* A fragments (hi and lo halves) of k-step kk from C tiles c0 = 2kk, c1 = 2kk + 1. */
__device__ static void gc_c_to_a_hilo(uint32_t ah[4], uint32_t al[4], const float c0[4], const float c1[4])
{
    float h0[4], h1[4], l0[4], l1[4];
#pragma unroll
    for (int e = 0; e < 4; e++) {
        h0[e] = __bfloat162float(__float2bfloat16_rn(c0[e])), l0[e] = c0[e] - h0[e];
        h1[e] = __bfloat162float(__float2bfloat16_rn(c1[e])), l1[e] = c1[e] - h1[e];
    }
    c_to_a(ah, h0, h1);
    c_to_a(al, l0, l1);
}

/* acc += X Bᵀ over 64: X this warp's 16×64 rows in C tiles (registers), B stored [n][k] as halves. */
__device__ static void gc_regs_mma_bt(float acc[GC_W / 8][4], const float X[GC_W / 8][4], bf16 (*bH)[GC_WP],
                                      bf16 (*bL)[GC_WP])
{
#pragma unroll
    for (int kk = 0; kk < GC_W / 16; kk++) {
        uint32_t ah[4], al[4];
        gc_c_to_a_hilo(ah, al, X[2 * kk], X[2 * kk + 1]);
#pragma unroll
        for (int n = 0; n < GC_W / 8; n++) {
            uint32_t bhi[2], blo[2];
            frag_b(bhi, &bH[0][0], GC_WP, 8 * n, 16 * kk);
            frag_b(blo, &bL[0][0], GC_WP, 8 * n, 16 * kk);
            gs_mma3(acc[n], ah, al, bhi, blo);
        }
    }
}

/* Sum over the 4 lanes of a row group, in double. */
__device__ static double gc_quad_sum(double x)
{
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

typedef struct {
    bf16 t[2][GC_L][GC_WP], a[2][GC_L][GC_WP], b[2][GC_L][GC_WP], c[2][GC_L][GC_WP]; /* halves: [0] hi, [1] lo */
    double gam[GC_L], colw[GC_NTH / 32][GC_L], col[GC_L];
} gb_scores_smem;

/* Grid B·H·nc, GC_NTH threads. */
__global__ static void __launch_bounds__(GC_NTH) gdn_bwd_scores_tc(cu_gdn_bwd c)
{
    extern __shared__ __align__(16) unsigned char gb_raw[];
    gb_scores_smem *m = (gb_scores_smem *)gb_raw;
    const int tid = threadIdx.x, w = tid / 32, g = tid % 32 / 4, t4 = tid % 4, V = c.V;
    const size_t hc = blockIdx.x, r0 = (hc / c.nc) * c.Tp + (hc % c.nc) * GC_L, LL = GC_L * GC_L;
    if (tid < GC_L) m->gam[tid] = c.gam[r0 + tid];
    gc_piece(c.Tm + hc * LL, 0, GC_L, 0, m->t[0], m->t[1], GC_L);
    float dP[GC_W / 8][4], dA[GC_W / 8][4];
#pragma unroll
    for (int n = 0; n < GC_W / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) dP[n][e] = dA[n][e] = 0.0f;
    for (int v0 = 0; v0 < V; v0 += GC_W) {
        gc_piece(c.dVt, r0, V, v0, m->a[0], m->a[1], GC_L);
        gc_piece(c.Vt, r0, V, v0, m->b[0], m->b[1], GC_L);
        gc_piece(c.dOt, r0, V, v0, m->c[0], m->c[1], GC_L);
        __syncthreads();
        float Y[GC_W / 8][4];
#pragma unroll
        for (int n = 0; n < GC_W / 8; n++) Y[n][0] = Y[n][1] = Y[n][2] = Y[n][3] = 0.0f;
        gc_piece_mma<true, false>(Y, m->t[0], m->t[1], m->a[0], m->a[1]); /* Tmᵀ dṼ */
        gc_store(Y, c.Y, r0, V, v0);
        gc_piece_mma<false, true>(dP, m->c[0], m->c[1], m->b[0], m->b[1]); /* dO Ṽᵀ */
        gc_regs_mma_bt(dA, Y, m->b[0], m->b[1]);                           /* Y Ṽᵀ (= -dA) */
        __syncthreads();
    }
    /* E's sums, the masks */
    const float *Pc = c.P + hc * LL, *Mc = c.M + hc * LL;
    double rowE[2] = {0, 0}, dbA[2] = {0, 0}, colp[GC_W / 8][2];
#pragma unroll
    for (int n = 0; n < GC_W / 8; n++) {
        colp[n][0] = colp[n][1] = 0;
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int t = 16 * w + g + 8 * (e / 2), s = 8 * n + 2 * t4 + e % 2;
            float p = Pc[t * GC_L + s], mm = Mc[t * GC_L + s], bt = c.beta[r0 + t], dp = dP[n][e], da = -dA[n][e];
            float G = s <= t ? expf((float)(m->gam[t] - m->gam[s])) : 0.0f;
            if (s < t) {
                double E = (double)dp * p + (double)da * bt * mm;
                rowE[e / 2] += E;
                colp[n][e % 2] += E;
                dbA[e / 2] += (double)da * mm;
            }
            c.dP[hc * LL + t * GC_L + s] = s <= t ? dp * G : 0.0f;
            c.dA[hc * LL + t * GC_L + s] = s < t ? da * bt * G : 0.0f;
        }
    }
    /* column sums: over the warp's 8 row groups, then over the warps */
#pragma unroll
    for (int n = 0; n < GC_W / 8; n++)
#pragma unroll
        for (int q = 0; q < 2; q++) {
            double x = colp[n][q];
            for (int o = 4; o < 32; o <<= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
            if (g == 0) m->colw[w][8 * n + 2 * t4 + q] = x;
        }
    __syncthreads();
    if (tid < GC_L) {
        double x = 0;
        for (int i = 0; i < GC_NTH / 32; i++) x += m->colw[i][tid];
        m->col[tid] = x;
    }
    __syncthreads();
#pragma unroll
    for (int h = 0; h < 2; h++) {
        double re = gc_quad_sum(rowE[h]), db = gc_quad_sum(dbA[h]);
        int t = 16 * w + g + 8 * h;
        if (t4 == 0) {
            c.dgam[r0 + t] = re - m->col[t];
            c.dbeta[r0 + t] = (float)db;
        }
    }
}

typedef struct {
    bf16 a1[2][GC_L][GC_WP], a2[2][GC_L][GC_WP], a3[2][GC_L][GC_WP], b1[2][GC_L][GC_WP], b2[2][GC_L][GC_WP];
    float eg[GC_L], egL[GC_L], be[GC_L], beta[GC_L];
    double yv[GC_L], dgam[GC_L], red[GC_NTH / 32][2];
} gb_rows_smem;

/* Grid B·H·nc, GC_NTH threads; after gdn_bwd_scores_tc. */
__global__ static void __launch_bounds__(GC_NTH) gdn_bwd_rows_tc(cu_gdn_bwd c)
{
    extern __shared__ __align__(16) unsigned char gb_raw[];
    gb_rows_smem *m = (gb_rows_smem *)gb_raw;
    const int tid = threadIdx.x, w = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4, K = c.K, V = c.V;
    const size_t hc = blockIdx.x, r0 = (hc / c.nc) * c.Tp + (hc % c.nc) * GC_L, LL = GC_L * GC_L;
    const size_t KV = (size_t)K * V;
    if (tid < GC_L) {
        m->eg[tid] = c.eg[r0 + tid], m->egL[tid] = c.egL[r0 + tid];
        m->be[tid] = c.bg[r0 + tid], m->beta[tid] = c.beta[r0 + tid];
    }
    /* yv_t = Y_t·v_t, a warp per row */
    for (int r = 16 * w; r < 16 * w + 16; r++) {
        double x = 0;
        for (int j = lane; j < V; j += 32) x += (double)c.Y[(r0 + r) * V + j] * c.vt[(r0 + r) * V + j];
        for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
        if (!lane) m->yv[r] = x;
    }
    __syncthreads();
    double dot = 0, cp[2] = {0, 0}, aqp[2] = {0, 0}, dxp[2] = {0, 0};
    for (int k0 = 0; k0 < K; k0 += GC_W) {
        float aQ[GC_W / 8][4], aK[GC_W / 8][4], a3[GC_W / 8][4];
#pragma unroll
        for (int n = 0; n < GC_W / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) aQ[n][e] = aK[n][e] = a3[n][e] = 0.0f;
        /* (e^{γ_L-γ} Ṽ) dS'ᵀ, (e^γ dO) Sᵀ, Y Sᵀ over V; S·dS' along */
        for (int v0 = 0; v0 < V; v0 += GC_W) {
            gc_piece(c.Vt, r0, V, v0, m->a1[0], m->a1[1], GC_L, m->egL);
            gc_piece(c.dOt, r0, V, v0, m->a2[0], m->a2[1], GC_L, m->eg);
            gc_piece(c.Y, r0, V, v0, m->a3[0], m->a3[1], GC_L);
            gc_piece(c.dSn + hc * KV, (size_t)k0, V, v0, m->b1[0], m->b1[1], K - k0, NULL, c.Sin + hc * KV, &dot);
            gc_piece(c.Sin + hc * KV, (size_t)k0, V, v0, m->b2[0], m->b2[1], K - k0);
            __syncthreads();
            gc_piece_mma<false, true>(aK, m->a1[0], m->a1[1], m->b1[0], m->b1[1]);
            gc_piece_mma<false, true>(aQ, m->a2[0], m->a2[1], m->b2[0], m->b2[1]);
            gc_piece_mma<false, true>(a3, m->a3[0], m->a3[1], m->b2[0], m->b2[1]);
            __syncthreads();
        }
        /* the rows' terms: c = Kd·TK1 = k̂·aK, aq = e^γ q̂·TK2 = q̂·aQ, dx = k̂·TK3 = -k̂·a3; dk̂ += βe^γ TK3 */
#pragma unroll
        for (int n = 0; n < GC_W / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int t = 16 * w + g + 8 * (e / 2), k = k0 + 8 * n + 2 * t4 + e % 2;
                if (k >= K) continue;
                float kh = c.kh[(r0 + t) * K + k], qh = c.qh[(r0 + t) * K + k];
                cp[e / 2] += (double)kh * aK[n][e];
                aqp[e / 2] += (double)qh * aQ[n][e];
                dxp[e / 2] -= (double)kh * a3[n][e];
                aK[n][e] -= m->be[t] * a3[n][e];
            }
        /* dP K̂ into dq̂; dPᵀ Q̂ + dA K̂ + dAᵀ K̂ into dk̂ */
        gc_piece(c.dP + hc * LL, 0, GC_L, 0, m->a1[0], m->a1[1], GC_L);
        gc_piece(c.dA + hc * LL, 0, GC_L, 0, m->a2[0], m->a2[1], GC_L);
        gc_piece(c.kh, r0, K, k0, m->b1[0], m->b1[1], GC_L);
        gc_piece(c.qh, r0, K, k0, m->b2[0], m->b2[1], GC_L);
        __syncthreads();
        gc_piece_mma<false, false>(aQ, m->a1[0], m->a1[1], m->b1[0], m->b1[1]);
        gc_piece_mma<true, false>(aK, m->a1[0], m->a1[1], m->b2[0], m->b2[1]);
        gc_piece_mma<false, false>(aK, m->a2[0], m->a2[1], m->b1[0], m->b1[1]);
        gc_piece_mma<true, false>(aK, m->a2[0], m->a2[1], m->b1[0], m->b1[1]);
        __syncthreads();
        gc_store(aQ, c.dQh, r0, K, k0);
        gc_store(aK, c.dKh, r0, K, k0);
    }
    /* dγ_t += -c + aq + dx e^γ β;  dβ_t += Y·v + dx e^γ;  Σ c and S·dS' over the block */
    double csum = 0;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        double cc = gc_quad_sum(cp[h]), aq = gc_quad_sum(aqp[h]), dx = gc_quad_sum(dxp[h]);
        int t = 16 * w + g + 8 * h;
        if (t4 == 0) {
            double dg = c.dgam[r0 + t] - cc + aq + dx * m->eg[t] * m->beta[t];
            m->dgam[t] = dg;
            c.dbeta[r0 + t] += (float)(m->yv[t] + dx * m->eg[t]);
            csum += cc;
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        csum += __shfl_xor_sync(0xffffffffu, csum, o);
        dot += __shfl_xor_sync(0xffffffffu, dot, o);
    }
    if (!lane) m->red[w][0] = csum, m->red[w][1] = dot;
    __syncthreads();
    if (tid) return;
    double cs = 0, sd = 0;
    for (int i = 0; i < GC_NTH / 32; i++) cs += m->red[i][0], sd += m->red[i][1];
    m->dgam[GC_L - 1] += cs + exp(c.gam[r0 + GC_L - 1]) * sd;
    double acc = 0;
    for (int t = GC_L - 1; t >= 0; t--) {
        acc += m->dgam[t];
        c.dgam[r0 + t] = m->dgam[t];
        c.dg[r0 + t] = (float)acc;
    }
}

int cu_gdn_bwd_tc(const char *op, const cu_gdn_bwd *c)
{
    size_t b1 = sizeof(gb_scores_smem), b2 = sizeof(gb_rows_smem);
    int rc;
    if ((rc = cu_check(op, cudaFuncSetAttribute(gdn_bwd_scores_tc, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                (int)b1))) ||
        (rc = cu_check(op, cudaFuncSetAttribute(gdn_bwd_rows_tc, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                (int)b2))))
        return rc;
    gdn_bwd_scores_tc<<<(unsigned)(c->BH * c->nc), GC_NTH, b1>>>(*c);
    gdn_bwd_rows_tc<<<(unsigned)(c->BH * c->nc), GC_NTH, b2>>>(*c);
    return cu_check(op, cudaGetLastError());
}
