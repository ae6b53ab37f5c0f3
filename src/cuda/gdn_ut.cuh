/* Gated DeltaNet's UT transform in shared memory, shared by gdn.cu's
 * float32 solve and the bf16 chunk kernel (gdn_scan_bf16.cu):
 * Tm = (I + A)^{-1} for a strictly lower A of n = 16·nb <= 64 rows, by
 * blocks of 16. The diagonal blocks by forward substitution, then the
 * blocks below by their distance i - j = 1, 2, ...:
 *   Tm_ij = -Tm_ii Σ_{j<=k<i} A_ik Tm_kj   (from (I + A) Tm = I, block row i).
 * Rows past a chunk's L are zero in A, so there Tm is the identity. */
#ifndef SUBQ_GDN_UT_CUH
#define SUBQ_GDN_UT_CUH

enum { UT_N = 64, UT_P = UT_N + 1 };

typedef struct {
    float A[UT_N][UT_P], X[UT_N][UT_P]; /* A given (zero on and above the diagonal); X = Tm */
    float Z[UT_N / 16 - 1][16][17];     /* the sums Σ_k A_ik Tm_kj of one distance */
} ut_smem;

/* Called by all nthr (>= 16 nb) threads of the block after A is written and
 * a barrier; X is complete after the closing barrier. */
__device__ static void ut_invert_blocks(ut_smem *m, int nb, int tid, int nthr)
{
    if (tid < 16 * nb) {
        int o = 16 * (tid / 16), c = tid % 16;
        for (int r = 0; r < 16; r++) {
            float acc = 0;
            for (int k = c; k < r; k++) acc += m->A[o + r][o + k] * m->X[o + k][o + c];
            m->X[o + r][o + c] = r == c ? 1.0f : r > c ? -acc : 0.0f;
        }
    }
    for (int d = 1; d < nb; d++) {
        __syncthreads();
        for (int e = tid; e < (nb - d) * 256; e += nthr) { /* 256 elements per 16×16 block */
            int p = e / 256, r = e % 256 / 16, c = e % 16, i = p + d;
            float acc = 0;
            for (int k = 16 * p; k < 16 * i; k++) acc += m->A[16 * i + r][k] * m->X[k][16 * p + c];
            m->Z[p][r][c] = acc;
        }
        __syncthreads();
        for (int e = tid; e < (nb - d) * 256; e += nthr) {
            int p = e / 256, r = e % 256 / 16, c = e % 16, i = p + d;
            float acc = 0;
            for (int k = 0; k < 16; k++) acc += m->X[16 * i + r][16 * i + k] * m->Z[p][k][c];
            m->X[16 * i + r][16 * p + c] = -acc;
        }
    }
    __syncthreads();
}

#endif
