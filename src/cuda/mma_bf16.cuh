/* bf16 tensor-core building blocks shared by the kernels on mma.sync
 * (attn_bf16.cu, scalar_chunk_bf16.cu): 16-byte tile loads into shared
 * memory (cp.async), ldmatrix fragments and mma.m16n8k16 (bf16 × bf16,
 * float32 accumulation).
 *
 * mma.m16n8k16 fragments (lane = 4g + t): A (16×16, row-major) holds rows
 * g and g+8, columns 2t, 2t+1 and 2t+8, 2t+9; B (16×8) holds k = 2t, 2t+1,
 * 2t+8, 2t+9 of column g; C (16×8 float) holds rows g, g+8, columns 2t, 2t+1.
 * So a C tile pair (n-tiles 2kk, 2kk+1) is, converted, the A fragment of
 * the next product's k-step kk: a product's result can feed the next one
 * from the registers. Tiles in shared memory are bf16, row-major, rows
 * padded by 8 bf16 so that ldmatrix's 8 row reads hit different banks. */
#ifndef SUBQ_MMA_BF16_CUH
#define SUBQ_MMA_BF16_CUH

#include <cuda_bf16.h>
#include <stdint.h>

typedef __nv_bfloat16 bf16;

/* Two floats as a bf16 pair (lo in the low half), rounded to nearest even. */
__device__ static uint32_t pack2(float lo, float hi)
{
    __nv_bfloat162 p = __floats2bfloat162_rn(lo, hi);
    return (uint32_t)__bfloat16_as_ushort(p.x) | (uint32_t)__bfloat16_as_ushort(p.y) << 16;
}

__device__ static uint32_t smem_addr(const bf16 *p) { return (uint32_t)__cvta_generic_to_shared(p); }

/* 16 bytes from global src to shared dst, asynchronously (cp.async; both 16-byte aligned). */
__device__ static void cp_async16(bf16 *dst, const bf16 *src)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(dst)), "l"(src));
}

/* The copies issued so far form a group; wait until at most n groups are pending. */
__device__ static void cp_commit(void) { asm volatile("cp.async.commit_group;\n" ::); }
template <int n>
__device__ static void cp_wait(void)
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(n));
}

/* Columns 8u .. 8u+7 of a source row as 8 bf16 (zero past the width C or
 * without a row). Rows start at multiples of C, so with aligned tensors
 * (vec) C % 8 == 0 allows 16-byte loads (8 bf16, or two float4 of the
 * cache); otherwise one element at a time. */
__device__ static uint4 eight(const bf16 *rb, const float *rf, int u, int C, int vec)
{
    int c0 = 8 * u;
    if (c0 >= C || (!rb && !rf)) return make_uint4(0, 0, 0, 0);
    if (vec && C % 8 == 0 && rb) return *(const uint4 *)(rb + c0);
    if (vec && C % 8 == 0) {
        float4 f0 = *(const float4 *)(rf + c0), f1 = *(const float4 *)(rf + c0 + 4);
        return make_uint4(pack2(f0.x, f0.y), pack2(f0.z, f0.w), pack2(f1.x, f1.y), pack2(f1.z, f1.w));
    }
    float f[8];
#pragma unroll
    for (int e = 0; e < 8; e++)
        f[e] = c0 + e >= C ? 0.0f : rb ? __bfloat162float(rb[c0 + e]) : rf[c0 + e]; /* bf16 -> float -> bf16 is exact */
    return make_uint4(pack2(f[0], f[1]), pack2(f[2], f[3]), pack2(f[4], f[5]), pack2(f[6], f[7]));
}

/* 8 bf16 of a source row into shared memory at dst: an asynchronous 16-byte
 * copy (cp.async) when the row is bf16 and the 8 are inside it; a plain
 * store otherwise (zeros, a partial piece, the float32 cache converted). */
__device__ static void put8(bf16 *dst, const bf16 *rb, const float *rf, int u, int C, int vec)
{
    if (vec && rb && C % 8 == 0 && 8 * u < C) {
        cp_async16(dst, rb + 8 * u);
        return;
    }
    *(uint4 *)dst = eight(rb, rf, u, C, vec);
}


/* ---- fragments (ldmatrix) and the mma ---- */


/* A fragment: rows r0.., columns k0.. of a [row][k] tile of pitch p. Lane l
 * names row r0 + l%8 + 8·(l/8 % 2), column k0 + 8·(l/16) of the 4 8×8 pieces. */
__device__ static void frag_a(uint32_t a[4], const bf16 *s, int p, int r0, int k0)
{
    int l = threadIdx.x % 32;
    const bf16 *x = s + (r0 + l % 8 + 8 * (l / 8 % 2)) * p + k0 + 8 * (l / 16);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3])
                 : "r"(smem_addr(x)));
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

/* B fragment (k0.., columns n0..) of a tile stored [n][k] (pitch p). */
__device__ static void frag_b(uint32_t b[2], const bf16 *s, int p, int n0, int k0)
{
    int l = threadIdx.x % 16;
    const bf16 *x = s + (n0 + l % 8) * p + k0 + 8 * (l / 8);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(b[0]), "=r"(b[1])
                 : "r"(smem_addr(x)));
}

/* B fragment (k0.., columns n0..) of a tile stored [k][n] (pitch p): the
 * transposing load, so a tile contracted over its rows needs no copy. */
__device__ static void frag_bt(uint32_t b[2], const bf16 *s, int p, int n0, int k0)
{
    int l = threadIdx.x % 16;
    const bf16 *x = s + (k0 + l) * p + n0;
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(b[0]), "=r"(b[1])
                 : "r"(smem_addr(x)));
}

/* c += a b on the tensor cores (16×16 bf16 times 16×8 bf16, float32). */
__device__ static void mma(float c[4], const uint32_t a[4], const uint32_t b[2])
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* The A fragment of k-step kk from C tiles 2kk and 2kk+1 (rounded to bf16). */
__device__ static void c_to_a(uint32_t a[4], const float c0[4], const float c1[4])
{
    a[0] = pack2(c0[0], c0[1]);
    a[1] = pack2(c0[2], c0[3]);
    a[2] = pack2(c1[0], c1[1]);
    a[3] = pack2(c1[2], c1[3]);
}

/* acc[mt][n][·] = Σ_k A[r0+16mt..+15][k] Bt[8n..8n+7][k], k < KD (A, Bt [·][k]
 * tiles): MT row tiles of 16 share each B fragment (loaded once). */
template <int KD, int NN, int MT>
__device__ static void tile_mma(float acc[MT][NN][4], const bf16 *A, int pa, int r0, const bf16 *Bt, int pb)
{
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int n = 0; n < NN; n++) acc[mt][n][0] = acc[mt][n][1] = acc[mt][n][2] = acc[mt][n][3] = 0.0f;
#pragma unroll
    for (int k0 = 0; k0 < KD; k0 += 16) {
        uint32_t a[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++) frag_a(a[mt], A, pa, r0 + 16 * mt, k0);
#pragma unroll
        for (int n = 0; n < NN; n++) {
            uint32_t b[2];
            frag_b(b, Bt, pb, 8 * n, k0);
#pragma unroll
            for (int mt = 0; mt < MT; mt++) mma(acc[mt][n], a[mt], b);
        }
    }
}

/* acc[mt][n] += Σ_kk A_kk M[16kk..16kk+15][8n..8n+7]: A_kk from the C tiles
 * c[mt][2kk], c[mt][2kk+1] (NC of them, in registers), M a [k][n] tile of
 * pitch pm whose B fragments the MT row tiles share. */
template <int NC, int NN, int MT>
__device__ static void regs_mma(float acc[MT][NN][4], const float c[MT][NC][4], const bf16 *M, int pm)
{
#pragma unroll
    for (int kk = 0; kk < NC / 2; kk++) {
        uint32_t a[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++) c_to_a(a[mt], c[mt][2 * kk], c[mt][2 * kk + 1]);
#pragma unroll
        for (int n = 0; n < NN; n++) {
            uint32_t b[2];
            frag_bt(b, M, pm, 8 * n, 16 * kk);
#pragma unroll
            for (int mt = 0; mt < MT; mt++) mma(acc[mt][n], a[mt], b);
        }
    }
}

/* Max and sum over the 4 lanes of a row group. */
__device__ static float quad_max(float x)
{
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
    return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

__device__ static float quad_sum(float x)
{
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

#endif
