/* Gated DeltaNet's state recurrence over the chunks on the tensor cores
 * (gdn.cu's scans, for the bf16 entry points). Both scans of gdn.cu have
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
