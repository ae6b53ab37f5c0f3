/* Gated DeltaNet on the tensor cores, for the bf16 entry points: the state
 * recurrence over the chunks (gdn.cu's scans), and below it the forward's
 * chunk products (cu_gdn_chunk_tc), its output (cu_gdn_out_tc) and the backward's
 * chunk products (cu_gdn_bwd_tc). Both scans of gdn.cu have
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
 * own rounding. X1 and X2 come already split (W's halves from the chunk kernel,
 * Kd's from gdn.cu's scaled rows); the next chunk's are copied (cp.async) into a
 * second stage of shared memory while this one is worked on.
 * Block: NW = 16 warps (8 for tiles of 16 columns). Product 1: warp w owns rows 16(w%4).. of
 * Y and the (w/4)-th of NW/4 groups of the tile's columns; product 2: warp w owns rows
 * 16(w%8).. of S (K <= 128) and the (w/8)-th of NW/8 column groups.
 * Chunk length 64; K a multiple of 8, at most 128. */
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "cuda.h"
#include "cuda_internal.h"
#include "gdn_ut.cuh"
#include "mma_bf16.cuh"

enum { GS_L = 64, GS_KMAX = 128, GS_KP = GS_KMAX + 8 };

/* Shared memory of a block with a tile of TV columns: two stages (this chunk's, the next
 * one's in flight) of the X1, X2 halves [L][KP] (x[stage][0..3]: X1 hi, lo, X2 hi, lo);
 * S halves [KMAX][TV+8]; Y halves [L][TV+8]. */
typedef struct {
    bf16 *xs, *sh, *sl, *yh, *yl; /* xs: the 8 halves, stage-major (gs_x) */
} gs_smem;

/* Half a (0..3: X1 hi, lo, X2 hi, lo) of stage st. */
__device__ static bf16 *gs_x(const gs_smem &m, int st, int a) { return m.xs + (size_t)(4 * st + a) * GS_L * GS_KP; }

template <int TV>
__host__ __device__ static size_t gs_smem_bytes(void)
{
    return (8 * (size_t)GS_L * GS_KP + 2 * (size_t)GS_KMAX * (TV + 8) + 2 * (size_t)GS_L * (TV + 8)) * sizeof(bf16);
}

template <int TV>
__device__ static gs_smem gs_carve(bf16 *p)
{
    gs_smem m;
    size_t x = (size_t)GS_L * GS_KP, s = (size_t)GS_KMAX * (TV + 8), y = (size_t)GS_L * (TV + 8);
    m.xs = p;
    m.sh = p + 8 * x, m.sl = m.sh + s, m.yh = m.sl + s, m.yl = m.yh + y;
    return m;
}

/* The chunk's 64 rows (from row r0) of the four halves X1h, X1l, X2h, X2l [rows][K] into stage
 * st, asynchronously (16 bytes per copy; K % 8 == 0). */
__device__ static void gs_fetch(const gs_smem &m, int st, const cu_gdn_scan &s, size_t r0)
{
    const bf16 *src[4] = {s.X1h, s.X1l, s.X2h, s.X2l};
    const int K = s.K, per = K / 8;
    for (int i = threadIdx.x; i < GS_L * per; i += blockDim.x) {
        int t = i / per, u = 8 * (i % per);
#pragma unroll
        for (int a = 0; a < 4; a++) cp_async16(gs_x(m, st, a) + t * GS_KP + u, src[a] + (r0 + t) * K + u);
    }
    cp_commit();
}

/* 4 floats as bf16 halves: hi = round(x), lo = round(x - hi). */
__device__ static void gs_split4(const float *f, uint2 *hi, uint2 *lo)
{
    float h[4], l[4];
#pragma unroll
    for (int e = 0; e < 4; e++) {
        h[e] = __bfloat162float(__float2bfloat16_rn(f[e]));
        l[e] = f[e] - h[e];
    }
    *hi = make_uint2(pack2(h[0], h[1]), pack2(h[2], h[3]));
    *lo = make_uint2(pack2(l[0], l[1]), pack2(l[2], l[3]));
}

/* Columns j, j+1 of a row (p at column j, C columns): one 8-byte access where both are inside
 * and p is 8-byte aligned, else one element at a time; zero past C. */
__device__ static float2 gs_load2(const float *p, int j, int C)
{
    if (j + 1 < C && (uintptr_t)p % 8 == 0) return *(const float2 *)p;
    return make_float2(j < C ? p[0] : 0.0f, j + 1 < C ? p[1] : 0.0f);
}

__device__ static void gs_store2(float *p, int j, int C, float x0, float x1)
{
    if (j + 1 < C && (uintptr_t)p % 8 == 0) {
        *(float2 *)p = make_float2(x0, x1);
        return;
    }
    if (j < C) p[0] = x0;
    if (j + 1 < C) p[1] = x1;
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

/* acc (NN C tiles of a 16-row block: rows r.., columns c0 + 8n..) = A B, on the halves:
 * A = X rows r.. (TA: Xᵀ, X's columns r..) of the [L][KP] halves xh, xl, over depth kd (at most
 * 16 KS; the halves zero from kd to the next multiple of 16); B from the halves bh, bl stored
 * [depth][column] (pitch p). */
template <bool TA, int NN, int KS>
__device__ static void gs_product(float acc[NN][4], const bf16 *xh, const bf16 *xl, int r, int kd, const bf16 *bh,
                                  const bf16 *bl, int p, int c0)
{
#pragma unroll
    for (int n = 0; n < NN; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < KS; ks++) {
        if (16 * ks >= kd) break;
        uint32_t ah[4], al[4];
        if (TA) {
            frag_at(ah, xh, GS_KP, r, 16 * ks);
            frag_at(al, xl, GS_KP, r, 16 * ks);
        } else {
            frag_a(ah, xh, GS_KP, r, 16 * ks);
            frag_a(al, xl, GS_KP, r, 16 * ks);
        }
#pragma unroll
        for (int n = 0; n < NN; n++) {
            uint32_t bhi[2], blo[2];
            frag_bt(bhi, bh, p, c0 + 8 * n, 16 * ks);
            frag_bt(blo, bl, p, c0 + 8 * n, 16 * ks);
            gs_mma3(acc[n], ah, al, bhi, blo);
        }
    }
}

/* Grid (B·H, ⌈V/TV⌉), 32·NW threads (NW = 8 or 16 warps). */
template <int TV, int NW>
__global__ static void __launch_bounds__(32 * NW, 1) gdn_scan_tc(cu_gdn_scan s)
{
    extern __shared__ __align__(16) bf16 gs_sm[];
    const gs_smem m = gs_carve<TV>(gs_sm);
    /* product 1 (64 × TV): 4 row blocks × NW/4 column groups of NN1 C tiles; product 2 (K × TV):
     * 8 row blocks of the state × NW/8 column groups of NN2 C tiles */
    enum { NN1 = TV / 8 / (NW / 4), NN2 = TV / 8 / (NW / 8), SP = TV + 8 };
    static_assert(NN1 >= 1 && NN2 >= 1 && NW % 8 == 0, "gdn_scan_tc: TV >= 2 NW");
    const int w = threadIdx.x / 32, g = threadIdx.x % 32 / 4, t4 = threadIdx.x % 4;
    const int bh = blockIdx.x, j0 = blockIdx.y * TV, K = s.K, V = s.V;
    const size_t KV = (size_t)K * V;
    /* product 1: rows r1.., columns cb..; product 2: state rows i2.., columns c2.. (when i2 < K) */
    const int r1 = 16 * (w % 4), cb = (w / 4) * 8 * NN1, i2 = 16 * (w % 8), c2 = (w / 8) * 8 * NN2, own = i2 < K;

    float S[NN2][4]; /* this warp's piece of the state: C tiles n (rows i2+g, +8; columns c2+8n+2t4, +1) */
#pragma unroll
    for (int n = 0; n < NN2; n++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            int i = i2 + g + 8 * h, j = j0 + c2 + 8 * n + 2 * t4;
            float2 x = own && s.S_init && i < K ? gs_load2(s.S_init + bh * KV + (size_t)i * V + j, j, V)
                                                : make_float2(0.0f, 0.0f);
            S[n][2 * h] = x.x, S[n][2 * h + 1] = x.y;
        }
    for (int i = threadIdx.x; i < GS_KMAX * SP; i += 32 * NW) m.sh[i] = m.sl[i] = __float2bfloat16_rn(0.0f);
    /* the halves' columns K .. KMAX stay zero (the copies write columns < K) */
    for (int i = threadIdx.x; i < 8 * GS_L * (GS_KMAX - K); i += 32 * NW) {
        int a = i / (GS_L * (GS_KMAX - K)), r = i % (GS_L * (GS_KMAX - K));
        gs_x(m, a / 4, a % 4)[(r / (GS_KMAX - K)) * GS_KP + K + r % (GS_KMAX - K)] = __float2bfloat16_rn(0.0f);
    }
    __syncthreads();
    if (own)
#pragma unroll
        for (int n = 0; n < NN2; n++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                int o = (i2 + g + 8 * h) * SP + c2 + 8 * n + 2 * t4;
                gs_put_pair(m.sh + o, m.sl + o, S[n][2 * h], S[n][2 * h + 1]);
            }
    gs_fetch(m, 0, s, (size_t)bh * s.Tp + (size_t)(s.reverse ? s.nc - 1 : 0) * GS_L);

    for (int it = 0; it < s.nc; it++) {
        const int c = s.reverse ? s.nc - 1 - it : it, st = it % 2;
        const size_t hc = (size_t)bh * s.nc + c, r0 = (size_t)bh * s.Tp + (size_t)c * GS_L;
        const bf16 *x1h = gs_x(m, st, 0), *x1l = gs_x(m, st, 1), *x2h = gs_x(m, st, 2), *x2l = gs_x(m, st, 3);
        cp_wait<0>();
        __syncthreads(); /* this chunk's rows have landed; last chunk's S halves are written and its stage read */
        if (it + 1 < s.nc) {
            int cn = s.reverse ? c - 1 : c + 1;
            gs_fetch(m, 1 - st, s, (size_t)bh * s.Tp + (size_t)cn * GS_L);
        }
        /* Y0 of this warp's product-1 tile and G of its state rows, read early */
        float y0[NN1][4], G[NN2][4];
#pragma unroll
        for (int n = 0; n < NN1; n++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                int j = j0 + cb + 8 * n + 2 * t4;
                float2 x = gs_load2(s.Y0 + (r0 + r1 + g + 8 * h) * V + j, j, V);
                y0[n][2 * h] = x.x, y0[n][2 * h + 1] = x.y;
            }
        float *sst = s.Sst + hc * KV;
#pragma unroll
        for (int n = 0; n < NN2; n++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                int i = i2 + g + 8 * h, j = j0 + c2 + 8 * n + 2 * t4;
                float2 x = own && s.g_in_sst && i < K ? gs_load2(sst + (size_t)i * V + j, j, V) : make_float2(0.0f, 0.0f);
                G[n][2 * h] = x.x, G[n][2 * h + 1] = x.y;
            }
        /* product 1: Y = Y0 + s1 X1 S (rows r1.., columns cb..) */
        float acc[NN1][4];
        gs_product<false, NN1, GS_KMAX / 16>(acc, x1h, x1l, r1, K, m.sh, m.sl, SP, cb);
#pragma unroll
        for (int n = 0; n < NN1; n++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                int row = r1 + g + 8 * h, jl = cb + 8 * n + 2 * t4, j = j0 + jl;
                float ya = y0[n][2 * h] + s.s1 * acc[n][2 * h], yb = y0[n][2 * h + 1] + s.s1 * acc[n][2 * h + 1];
                gs_store2(s.Y + (r0 + row) * V + j, j, V, ya, yb);
                gs_put_pair(m.yh + row * SP + jl, m.yl + row * SP + jl, j < V ? ya : 0.0f, j + 1 < V ? yb : 0.0f);
            }
        /* Sst[c] = S, stored only now: a store behind a load of the same address (G) waits for
         * that load, and G's loads have had product 1's time to land */
#pragma unroll
        for (int n = 0; n < NN2; n++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                int i = i2 + g + 8 * h, j = j0 + c2 + 8 * n + 2 * t4;
                if (own && i < K) gs_store2(sst + (size_t)i * V + j, j, V, S[n][2 * h], S[n][2 * h + 1]);
            }
        __syncthreads(); /* Y halves visible; S halves no longer read */
        /* product 2: S = e S + G + s2 X2ᵀ Y (state rows i2..) */
        if (own) {
            float p[NN2][4];
            gs_product<true, NN2, GS_L / 16>(p, x2h, x2l, i2, GS_L, m.yh, m.yl, SP, c2);
            float e = s.eL[hc];
#pragma unroll
            for (int n = 0; n < NN2; n++) {
#pragma unroll
                for (int q = 0; q < 4; q++) S[n][q] = e * S[n][q] + G[n][q] + s.s2 * p[n][q];
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    int o = (i2 + g + 8 * h) * SP + c2 + 8 * n + 2 * t4;
                    gs_put_pair(m.sh + o, m.sl + o, S[n][2 * h], S[n][2 * h + 1]);
                }
            }
        }
    }
    if (!own || !s.S_final) return;
#pragma unroll
    for (int n = 0; n < NN2; n++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            int i = i2 + g + 8 * h, j = j0 + c2 + 8 * n + 2 * t4;
            if (i < K) gs_store2(s.S_final + bh * KV + (size_t)i * V + j, j, V, S[n][2 * h], S[n][2 * h + 1]);
        }
}

int cu_gdn_scan_tc_fits(int K, int L) { return L == GS_L && K % 8 == 0 && K <= GS_KMAX; }

template <int TV, int NW>
static int gs_launch(const char *op, const cu_gdn_scan *s)
{
    size_t bytes = gs_smem_bytes<TV>();
    int rc = cu_check(op, cudaFuncSetAttribute(gdn_scan_tc<TV, NW>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                (int)bytes));
    if (rc) return rc;
    gdn_scan_tc<TV, NW><<<dim3((unsigned)s->BH, (unsigned)((s->V + TV - 1) / TV)), 32 * NW, bytes>>>(*s);
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
    if (4 * b64 <= (size_t)sms) return gs_launch<16, 8>(op, s);
    if (2 * b64 <= (size_t)sms) return gs_launch<32, 16>(op, s);
    return gs_launch<64, 16>(op, s);
}

/* ---- the chunk-parallel kernels: forward products, output, backward products ----
 * Each is a block of 8 warps per (head, chunk of 64 rows) on 64×64 tiles in shared memory
 * (bf16 hi and lo halves, as the scans): warp w owns rows 16·(w%4).. and columns 32·(w/4)..
 * of every 64×64 product; it keeps those in 4 C tiles of m16n8 (GC_NN). */
enum { GC_L = 64, GC_NTH = 256, GC_W = 64, GC_WP = GC_W + 8, GC_NN = 4, GC_IT = GC_L * GC_W / 4 / GC_NTH };

typedef float gc_acc[GC_NN][4]; /* a warp's 16×32 piece of a product */

/* The warp's row block (16 rows from gc_row0) and column half (32 columns from gc_col0). */
__device__ static int gc_row0(void) { return 16 * (threadIdx.x / 32 % 4); }
__device__ static int gc_col0(void) { return 32 * (threadIdx.x / 128); }

/* Row and column (within the 64×64 product) of element e of C tile n of this lane. */
__device__ static int gc_row(int e) { return gc_row0() + threadIdx.x % 32 / 4 + 8 * (e / 2); }
__device__ static int gc_col(int n, int e) { return gc_col0() + 8 * n + 2 * (threadIdx.x % 4) + e % 2; }

__device__ static void gc_zero(gc_acc acc)
{
#pragma unroll
    for (int n = 0; n < GC_NN; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
}

/* 4 floats of a row from p (n of them inside the row; none when !ok), zeros after; one 16-byte
 * load with vec (n >= 4 there). */
__device__ static void gc_load4(const float *p, int n, int ok, int vec, float f[4])
{
    f[0] = f[1] = f[2] = f[3] = 0.0f;
    if (!ok) return;
    if (vec && n >= 4) {
        float4 a = *(const float4 *)p;
        f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w;
        return;
    }
#pragma unroll
    for (int e = 0; e < 4; e++) f[e] = e < n ? p[e] : 0.0f;
}

/* Columns c0 .. c0+63 of rows r0 .. r0+63 of x [rows][C] as bf16 halves; zero past C and
 * from row r0 + nrows on; with rs, row t scaled by rs[t] first. 16 lanes read a row's 64
 * floats (16 bytes each); a thread's loads go out NB at a time (of its GC_IT), each batch
 * before its stores (NB < GC_IT: fewer registers). */
template <int NB = GC_IT>
__device__ static void gc_piece(const float *x, size_t r0, int C, int c0, bf16 (*hi)[GC_WP], bf16 (*lo)[GC_WP],
                                int nrows, const float *rs = NULL)
{
    const int vec = C % 4 == 0 && (uintptr_t)x % 16 == 0;
#pragma unroll
    for (int i0 = 0; i0 < GC_IT; i0 += NB) {
        float f[NB][4];
#pragma unroll
        for (int b = 0; b < NB; b++) {
            int i = threadIdx.x + (i0 + b) * GC_NTH, t = i / (GC_W / 4), col = c0 + 4 * (i % (GC_W / 4));
            gc_load4(x + (r0 + t) * C + col, C - col, t < nrows, vec, f[b]);
        }
#pragma unroll
        for (int b = 0; b < NB; b++) {
            int i = threadIdx.x + (i0 + b) * GC_NTH, t = i / (GC_W / 4), u = 4 * (i % (GC_W / 4));
            if (rs)
#pragma unroll
                for (int e = 0; e < 4; e++) f[b][e] *= rs[t];
            uint2 h, l;
            gs_split4(f[b], &h, &l);
            *(uint2 *)&hi[t][u] = h;
            *(uint2 *)&lo[t][u] = l;
        }
    }
}

/* acc (this warp's 16×32 piece) += A B over 64, A and B as halves of 64×64 tiles:
 * A stored [row][k] (AT: [k][row], so A is the tile's transpose), B stored [k][n] (BT: [n][k]). */
template <bool AT, bool BT>
__device__ static void gc_piece_mma(gc_acc acc, bf16 (*aH)[GC_WP], bf16 (*aL)[GC_WP], bf16 (*bH)[GC_WP],
                                    bf16 (*bL)[GC_WP])
{
    const int r0 = gc_row0(), n0 = gc_col0();
#pragma unroll
    for (int ks = 0; ks < GC_L / 16; ks++) {
        uint32_t ah[4], al[4];
        if (AT) {
            frag_at(ah, &aH[0][0], GC_WP, r0, 16 * ks);
            frag_at(al, &aL[0][0], GC_WP, r0, 16 * ks);
        } else {
            frag_a(ah, &aH[0][0], GC_WP, r0, 16 * ks);
            frag_a(al, &aL[0][0], GC_WP, r0, 16 * ks);
        }
#pragma unroll
        for (int n = 0; n < GC_NN; n++) {
            uint32_t bhi[2], blo[2];
            if (BT) {
                frag_b(bhi, &bH[0][0], GC_WP, n0 + 8 * n, 16 * ks);
                frag_b(blo, &bL[0][0], GC_WP, n0 + 8 * n, 16 * ks);
            } else {
                frag_bt(bhi, &bH[0][0], GC_WP, n0 + 8 * n, 16 * ks);
                frag_bt(blo, &bL[0][0], GC_WP, n0 + 8 * n, 16 * ks);
            }
            gs_mma3(acc[n], ah, al, bhi, blo);
        }
    }
}

/* This warp's piece (columns c0 + its own) into out [rows][C] from row r0, columns < C. */
__device__ static void gc_store(const gc_acc acc, float *out, size_t r0, int C, int c0)
{
#pragma unroll
    for (int n = 0; n < GC_NN; n++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            int col = c0 + gc_col(n, 0);
            gs_store2(out + (r0 + gc_row(2 * h)) * C + col, col, C, acc[n][2 * h], acc[n][2 * h + 1]);
        }
}

/* This warp's piece as bf16 halves into a 64×64 tile. */
__device__ static void gc_put(const gc_acc acc, bf16 (*hi)[GC_WP], bf16 (*lo)[GC_WP])
{
#pragma unroll
    for (int n = 0; n < GC_NN; n++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            int t = gc_row(2 * h), s = gc_col(n, 0);
            gs_put_pair(&hi[t][s], &lo[t][s], acc[n][2 * h], acc[n][2 * h + 1]);
        }
}

/* This thread's share of Σ x⊙y over two 64×64 tiles given as bf16 halves ([0] hi, [1] lo): the
 * halves carry x and y to about 16 bits. */
__device__ static double gc_dot_halves(bf16 (*x)[GC_L][GC_WP], bf16 (*y)[GC_L][GC_WP])
{
    double d = 0;
    for (int i = threadIdx.x; i < GC_L * GC_W; i += GC_NTH) {
        int t = i / GC_W, u = i % GC_W;
        float a = __bfloat162float(x[0][t][u]) + __bfloat162float(x[1][t][u]);
        float b = __bfloat162float(y[0][t][u]) + __bfloat162float(y[1][t][u]);
        d += (double)a * b;
    }
    return d;
}

/* Sum over the 4 lanes of a row group, in double. */
__device__ static double gc_quad_sum(double x)
{
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

/* ---- the forward's products (cu_gdn_chunk_tc) ----
 * Replacing two Gram GEMMs, the mask, the UT transform and the W, U GEMMs of gdn.cu's
 * float32 path:
 *   K̂K̂ᵀ, Q̂K̂ᵀ on the tensor cores (by pieces of 64 columns of K);
 *   M = strictly-lower(K̂K̂ᵀ ⊙ Γ), P = causal(Q̂K̂ᵀ ⊙ Γ), Γ_ts = e^{γ_t - γ_s};
 *   Tm = (I + diag(β) M)^{-1} (gdn_ut.cuh);  W = Tm (βe^γ ⊙ K̂), U = Tm (β ⊙ V) (by pieces of
 *   64 columns, the rows scaled as they are read).
 * M, P, Tm, W and U are written in float32 (the backward reads them). The UT transform's
 * matrices share their shared memory with the pieces (used before and after it). */
typedef struct {
    union {
        struct {
            bf16 aH[GC_L][GC_WP], aL[GC_L][GC_WP], bH[GC_L][GC_WP], bL[GC_L][GC_WP]; /* pieces of 64 columns */
        } p;
        ut_smem ut;
    } u;
    bf16 tH[GC_L][GC_WP], tL[GC_L][GC_WP]; /* Tm's halves */
    double gam[GC_L];
    float beta[GC_L], bg[GC_L];
} gc_smem;

/* This warp's piece (columns c0 + its own) as bf16 halves into oh, ol [rows][C] from row r0,
 * columns < C (C even). */
__device__ static void gc_store_halves(const gc_acc acc, bf16 *oh, bf16 *ol, size_t r0, int C, int c0)
{
#pragma unroll
    for (int n = 0; n < GC_NN; n++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            int col = c0 + gc_col(n, 0);
            size_t o = (r0 + gc_row(2 * h)) * C + col;
            if (col < C) gs_put_pair(oh + o, ol + o, acc[n][2 * h], acc[n][2 * h + 1]);
        }
}

/* out [rows][C] (from row r0) = Tm diag(rs) X, X [rows][C]: Tm's halves in m->tH, m->tL; float32
 * into out, or bf16 halves into oh, ol where out is NULL. Starts after a barrier. */
__device__ static void gc_tm_times(gc_smem *m, const float *X, const float *rs, size_t r0, int C, float *out,
                                   bf16 *oh = NULL, bf16 *ol = NULL)
{
    for (int c0 = 0; c0 < C; c0 += GC_W) {
        gc_piece(X, r0, C, c0, m->u.p.aH, m->u.p.aL, GC_L, rs);
        __syncthreads();
        gc_acc acc;
        gc_zero(acc);
        gc_piece_mma<false, false>(acc, m->tH, m->tL, m->u.p.aH, m->u.p.aL);
        if (out) gc_store(acc, out, r0, C, c0);
        else gc_store_halves(acc, oh, ol, r0, C, c0);
        __syncthreads(); /* the piece is read; the next one may overwrite it */
    }
}

/* Grid B·H·nc, GC_NTH threads. */
__global__ static void __launch_bounds__(GC_NTH, 3) gdn_chunk_tc(cu_gdn_chunk c)
{
    extern __shared__ __align__(16) unsigned char gc_raw[];
    gc_smem *m = (gc_smem *)gc_raw;
    const int tid = threadIdx.x, r0w = gc_row0(), n0w = gc_col0();
    const size_t hc = blockIdx.x, r0 = (hc / c.nc) * c.Tp + (hc % c.nc) * GC_L;
    if (tid < GC_L) m->gam[tid] = c.gam[r0 + tid], m->beta[tid] = c.beta[r0 + tid], m->bg[tid] = c.bg[r0 + tid];
    /* the Gram matrices: this warp's 16×32 pieces */
    gc_acc G, Q;
    gc_zero(G);
    gc_zero(Q);
    for (int c0 = 0; c0 < c.K; c0 += GC_W) {
        __syncthreads(); /* the last piece is read */
        gc_piece(c.kh, r0, c.K, c0, m->u.p.aH, m->u.p.aL, GC_L);
        gc_piece(c.qh, r0, c.K, c0, m->u.p.bH, m->u.p.bL, GC_L);
        __syncthreads();
#pragma unroll
        for (int ks = 0; ks < GC_W / 16; ks++) {
            uint32_t kh[4], kl[4], qh[4], ql[4];
            frag_a(kh, &m->u.p.aH[0][0], GC_WP, r0w, 16 * ks);
            frag_a(kl, &m->u.p.aL[0][0], GC_WP, r0w, 16 * ks);
            frag_a(qh, &m->u.p.bH[0][0], GC_WP, r0w, 16 * ks);
            frag_a(ql, &m->u.p.bL[0][0], GC_WP, r0w, 16 * ks);
#pragma unroll
            for (int n = 0; n < GC_NN; n++) {
                uint32_t bhi[2], blo[2]; /* K̂ᵀ: the k̂ piece is stored [s][k] */
                frag_b(bhi, &m->u.p.aH[0][0], GC_WP, n0w + 8 * n, 16 * ks);
                frag_b(blo, &m->u.p.aL[0][0], GC_WP, n0w + 8 * n, 16 * ks);
                gs_mma3(G[n], kh, kl, bhi, blo);
                gs_mma3(Q[n], qh, ql, bhi, blo);
            }
        }
    }
    __syncthreads(); /* the pieces are read: the transform's matrices take their place */
    /* the mask; M and P out; A = β M for the transform */
    float *Mo = c.M + hc * GC_L * GC_L, *Po = c.P + hc * GC_L * GC_L;
#pragma unroll
    for (int n = 0; n < GC_NN; n++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            int t = gc_row(2 * h), s0 = gc_col(n, 0);
            float mv[2], pv[2];
#pragma unroll
            for (int q = 0; q < 2; q++) {
                int s = s0 + q;
                float Gm = s <= t ? expf((float)(m->gam[t] - m->gam[s])) : 0.0f;
                mv[q] = s < t ? G[n][2 * h + q] * Gm : 0.0f, pv[q] = s <= t ? Q[n][2 * h + q] * Gm : 0.0f;
                m->u.ut.A[t][s] = m->beta[t] * mv[q];
            }
            *(float2 *)&Mo[t * GC_L + s0] = make_float2(mv[0], mv[1]);
            *(float2 *)&Po[t * GC_L + s0] = make_float2(pv[0], pv[1]);
        }
    __syncthreads();
    ut_invert_blocks(&m->u.ut, GC_L / 16, tid, GC_NTH);
    float *To = c.Tm + hc * GC_L * GC_L;
    for (int e = tid; e < GC_L * GC_L; e += GC_NTH) {
        int t = e / GC_L, s = e % GC_L;
        float x = s <= t ? m->u.ut.X[t][s] : 0.0f;
        bf16 h = __float2bfloat16_rn(x);
        To[e] = x;
        m->tH[t][s] = h;
        m->tL[t][s] = __float2bfloat16_rn(x - __bfloat162float(h));
    }
    __syncthreads(); /* X is read: the pieces take its place again */
    gc_tm_times(m, c.kh, m->bg, r0, c.K, NULL, c.Wh, c.Wl); /* W = Tm (βe^γ ⊙ K̂), as the scans read it */
    gc_tm_times(m, c.vt, m->beta, r0, c.V, c.U); /* U = Tm (β ⊙ V) */
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
 * One block per (head, chunk, 64 columns of V): O = Qg Sin + P Ṽ (DESIGN.md (U3) in the WY
 * form, gdn.cu's header), written straight to [B,T,H,V] (float32, or bf16). */
__global__ static void __launch_bounds__(GC_NTH, 3) gdn_out_tc(cu_gdn_out c)
{
    __shared__ __align__(16) bf16 aH[GC_L][GC_WP], aL[GC_L][GC_WP], bH[GC_L][GC_WP], bL[GC_L][GC_WP];
    const size_t hc = blockIdx.x, bh = hc / c.nc, r0 = bh * c.Tp + (hc % c.nc) * GC_L, KV = (size_t)c.K * c.V;
    const int v0 = GC_W * blockIdx.y, t0 = (int)(hc % c.nc) * GC_L;
    gc_acc acc;
    gc_zero(acc);
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
    for (int n = 0; n < GC_NN; n++)
#pragma unroll
        for (int q = 0; q < 2; q++) {
            int t = t0 + gc_row(2 * q), j = v0 + gc_col(n, 0);
            if (t >= c.T) continue;
            size_t o = (((size_t)b * c.T + t) * c.H + h) * c.V + j;
            float x0 = acc[n][2 * q], x1 = acc[n][2 * q + 1];
            if (!c.outb) gs_store2(c.out + o, j, c.V, x0, x1);
            else if (j + 1 < c.V && (uintptr_t)(c.outb + o) % 4 == 0)
                *(__nv_bfloat162 *)(c.outb + o) = __floats2bfloat162_rn(x0, x1);
            else {
                if (j < c.V) c.outb[o] = __float2bfloat16_rn(x0);
                if (j + 1 < c.V) c.outb[o + 1] = __float2bfloat16_rn(x1);
            }
        }
}

int cu_gdn_out_tc(const char *op, const cu_gdn_out *c)
{
    gdn_out_tc<<<dim3((unsigned)(c->BH * c->nc), (unsigned)((c->V + GC_W - 1) / GC_W)), GC_NTH>>>(*c);
    return cu_check(op, cudaGetLastError());
}

/* ---- the backward's chunk products (cu_gdn_bwd_tc) ----
 * After the reverse scan (dṼ, dS' per chunk), per chunk, as gdn.cu's float32 backward
 * (its header gives the math), by pieces of 64 columns, in two kernels:
 * scores: Y = Tmᵀ dṼ, dP = dO Ṽᵀ, dA = -Y Ṽᵀ; E = dP ⊙ P + dA ⊙ βM summed by rows and
 *         columns into dγ, Σ dA ⊙ M into dβ; dP ← dP ⊙ Γ, dA ← dA ⊙ βΓ (masked, in place).
 * rows:   dq̂ = (e^γ dO) Sᵀ + dP K̂,  dk̂ = (e^{γ_L-γ} Ṽ) dS'ᵀ - βe^γ Y Sᵀ + dPᵀ Q̂ + dA K̂ + dAᵀ K̂;
 *         the rows' terms of dγ, dβ, the chunk end (Σ c + e^{γ_L} S·dS') and dg.
 * A row's sums are split over the two warps of its column halves: their lanes' quad sums
 * meet in shared memory (half[2][64]). */
typedef struct {
    bf16 t[2][GC_L][GC_WP], a[2][GC_L][GC_WP], b[2][GC_L][GC_WP], c[2][GC_L][GC_WP]; /* halves: [0] hi, [1] lo */
    double gam[GC_L], colw[4][GC_L], rowE[2][GC_L], dbA[2][GC_L];
} gb_scores_smem;

/* Grid B·H·nc, GC_NTH threads. */
__global__ static void __launch_bounds__(GC_NTH) gdn_bwd_scores_tc(cu_gdn_bwd c)
{
    extern __shared__ __align__(16) unsigned char gb_raw[];
    gb_scores_smem *m = (gb_scores_smem *)gb_raw;
    const int tid = threadIdx.x, rw = tid / 32 % 4, cw = tid / 128, g = tid % 32 / 4, t4 = tid % 4, V = c.V;
    const size_t hc = blockIdx.x, r0 = (hc / c.nc) * c.Tp + (hc % c.nc) * GC_L, LL = GC_L * GC_L;
    if (tid < GC_L) m->gam[tid] = c.gam[r0 + tid];
    gc_piece(c.Tm + hc * LL, 0, GC_L, 0, m->t[0], m->t[1], GC_L);
    gc_acc dP, dA;
    gc_zero(dP);
    gc_zero(dA);
    for (int v0 = 0; v0 < V; v0 += GC_W) {
        gc_piece(c.dVt, r0, V, v0, m->a[0], m->a[1], GC_L);
        gc_piece(c.Vt, r0, V, v0, m->b[0], m->b[1], GC_L);
        gc_piece(c.dOt, r0, V, v0, m->c[0], m->c[1], GC_L);
        __syncthreads();
        gc_acc Y;
        gc_zero(Y);
        gc_piece_mma<true, false>(Y, m->t[0], m->t[1], m->a[0], m->a[1]); /* Tmᵀ dṼ */
        gc_store(Y, c.Y, r0, V, v0);
        gc_piece_mma<false, true>(dP, m->c[0], m->c[1], m->b[0], m->b[1]); /* dO Ṽᵀ */
        __syncthreads(); /* dṼ is read: Y takes its place */
        gc_put(Y, m->a[0], m->a[1]);
        __syncthreads();
        gc_piece_mma<false, true>(dA, m->a[0], m->a[1], m->b[0], m->b[1]); /* Y Ṽᵀ (= -dA) */
        __syncthreads();
    }
    /* E's sums, the masks */
    const float *Pc = c.P + hc * LL, *Mc = c.M + hc * LL;
    double rowE[2] = {0, 0}, dbA[2] = {0, 0}, colp[GC_NN][2];
#pragma unroll
    for (int n = 0; n < GC_NN; n++) {
        colp[n][0] = colp[n][1] = 0;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            int t = gc_row(2 * h), s0 = gc_col(n, 0);
            float2 p2 = *(const float2 *)&Pc[t * GC_L + s0], m2 = *(const float2 *)&Mc[t * GC_L + s0];
            float p[2] = {p2.x, p2.y}, mm[2] = {m2.x, m2.y}, bt = c.beta[r0 + t], oP[2], oA[2];
#pragma unroll
            for (int q = 0; q < 2; q++) {
                int s = s0 + q;
                float dp = dP[n][2 * h + q], da = -dA[n][2 * h + q];
                float G = s <= t ? expf((float)(m->gam[t] - m->gam[s])) : 0.0f;
                if (s < t) {
                    double E = (double)dp * p[q] + (double)da * bt * mm[q];
                    rowE[h] += E;
                    colp[n][q] += E;
                    dbA[h] += (double)da * mm[q];
                }
                oP[q] = s <= t ? dp * G : 0.0f;
                oA[q] = s < t ? da * bt * G : 0.0f;
            }
            *(float2 *)&c.dP[hc * LL + t * GC_L + s0] = make_float2(oP[0], oP[1]);
            *(float2 *)&c.dA[hc * LL + t * GC_L + s0] = make_float2(oA[0], oA[1]);
        }
    }
    /* column sums: over the warp's 8 row groups, then over the 4 row blocks */
#pragma unroll
    for (int n = 0; n < GC_NN; n++)
#pragma unroll
        for (int q = 0; q < 2; q++) {
            double x = colp[n][q];
            for (int o = 4; o < 32; o <<= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
            if (g == 0) m->colw[rw][gc_col(n, q)] = x;
        }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        double re = gc_quad_sum(rowE[h]), db = gc_quad_sum(dbA[h]);
        if (t4 == 0) m->rowE[cw][gc_row(2 * h)] = re, m->dbA[cw][gc_row(2 * h)] = db;
    }
    __syncthreads();
    if (tid < GC_L) {
        double col = m->colw[0][tid] + m->colw[1][tid] + m->colw[2][tid] + m->colw[3][tid];
        c.dgam[r0 + tid] = m->rowE[0][tid] + m->rowE[1][tid] - col;
        c.dbeta[r0 + tid] = (float)(m->dbA[0][tid] + m->dbA[1][tid]);
    }
}

typedef struct {
    bf16 a1[2][GC_L][GC_WP], a2[2][GC_L][GC_WP], a3[2][GC_L][GC_WP], b1[2][GC_L][GC_WP], b2[2][GC_L][GC_WP];
    float eg[GC_L], egL[GC_L], be[GC_L], beta[GC_L];
    double yv[GC_L], dgam[GC_L], half[2][GC_L][3], red[GC_NTH / 32][2];
} gb_rows_smem;

/* Grid B·H·nc, GC_NTH threads; after gdn_bwd_scores_tc. */
__global__ static void __launch_bounds__(GC_NTH, 2) gdn_bwd_rows_tc(cu_gdn_bwd c)
{
    extern __shared__ __align__(16) unsigned char gb_raw[];
    gb_rows_smem *m = (gb_rows_smem *)gb_raw;
    const int tid = threadIdx.x, w = tid / 32, lane = tid % 32, cw = tid / 128, t4 = lane % 4, K = c.K, V = c.V;
    const size_t hc = blockIdx.x, r0 = (hc / c.nc) * c.Tp + (hc % c.nc) * GC_L, LL = GC_L * GC_L;
    const size_t KV = (size_t)K * V;
    if (tid < GC_L) {
        m->eg[tid] = c.eg[r0 + tid], m->egL[tid] = c.egL[r0 + tid];
        m->be[tid] = c.bg[r0 + tid], m->beta[tid] = c.beta[r0 + tid];
    }
    /* yv_t = Y_t·v_t, a warp per row */
    for (int r = w; r < GC_L; r += GC_NTH / 32) {
        double x = 0;
        for (int j = lane; j < V; j += 32) x += (double)c.Y[(r0 + r) * V + j] * c.vt[(r0 + r) * V + j];
        for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
        if (!lane) m->yv[r] = x;
    }
    __syncthreads();
    double dot = 0, cp[2] = {0, 0}, aqp[2] = {0, 0}, dxp[2] = {0, 0};
    for (int k0 = 0; k0 < K; k0 += GC_W) {
        gc_acc aQ, aK, a3;
        gc_zero(aQ);
        gc_zero(aK);
        gc_zero(a3);
        /* (e^{γ_L-γ} Ṽ) dS'ᵀ, (e^γ dO) Sᵀ, Y Sᵀ over V; S·dS' along (from the halves) */
        for (int v0 = 0; v0 < V; v0 += GC_W) {
            gc_piece(c.Vt, r0, V, v0, m->a1[0], m->a1[1], GC_L, m->egL);
            gc_piece(c.dOt, r0, V, v0, m->a2[0], m->a2[1], GC_L, m->eg);
            gc_piece(c.Y, r0, V, v0, m->a3[0], m->a3[1], GC_L);
            gc_piece(c.dSn + hc * KV, (size_t)k0, V, v0, m->b1[0], m->b1[1], K - k0);
            gc_piece(c.Sin + hc * KV, (size_t)k0, V, v0, m->b2[0], m->b2[1], K - k0);
            __syncthreads();
            dot += gc_dot_halves(m->b1, m->b2);
            gc_piece_mma<false, true>(aK, m->a1[0], m->a1[1], m->b1[0], m->b1[1]);
            gc_piece_mma<false, true>(aQ, m->a2[0], m->a2[1], m->b2[0], m->b2[1]);
            gc_piece_mma<false, true>(a3, m->a3[0], m->a3[1], m->b2[0], m->b2[1]);
            __syncthreads();
        }
        /* the rows' terms: c = Kd·TK1 = k̂·aK, aq = e^γ q̂·TK2 = q̂·aQ, dx = k̂·TK3 = -k̂·a3; dk̂ += βe^γ TK3 */
#pragma unroll
        for (int n = 0; n < GC_NN; n++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                int t = gc_row(2 * h), k = k0 + gc_col(n, 0);
                float2 kp = gs_load2(c.kh + (r0 + t) * K + k, k, K), qp = gs_load2(c.qh + (r0 + t) * K + k, k, K);
                float kh[2] = {kp.x, kp.y}, qh[2] = {qp.x, qp.y};
#pragma unroll
                for (int q = 0; q < 2; q++) {
                    int e = 2 * h + q; /* past K: kh = qh = 0, and the C tiles are not stored there */
                    cp[h] += (double)kh[q] * aK[n][e];
                    aqp[h] += (double)qh[q] * aQ[n][e];
                    dxp[h] -= (double)kh[q] * a3[n][e];
                    aK[n][e] -= m->be[t] * a3[n][e];
                }
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
    /* the two column halves' row sums meet */
#pragma unroll
    for (int h = 0; h < 2; h++) {
        double cc = gc_quad_sum(cp[h]), aq = gc_quad_sum(aqp[h]), dx = gc_quad_sum(dxp[h]);
        if (t4 == 0) {
            double *x = m->half[cw][gc_row(2 * h)];
            x[0] = cc, x[1] = aq, x[2] = dx;
        }
    }
    __syncthreads();
    /* dγ_t += -c + aq + dx e^γ β;  dβ_t += Y·v + dx e^γ;  Σ c and S·dS' over the block */
    double csum = 0;
    if (tid < GC_L) {
        int t = tid;
        double cc = m->half[0][t][0] + m->half[1][t][0], aq = m->half[0][t][1] + m->half[1][t][1];
        double dx = m->half[0][t][2] + m->half[1][t][2];
        m->dgam[t] = c.dgam[r0 + t] - cc + aq + dx * m->eg[t] * m->beta[t];
        c.dbeta[r0 + t] += (float)(m->yv[t] + dx * m->eg[t]);
        csum = cc;
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
