/* The scalar-gate chunkwise forward on the GPU: the math of
 * src/ops/scalar_chunk.h ((U1)-(U3) with scalar decay e^{λ_t} and write
 * e^{w_t}, optional stabilizer m and normalizer n), parallel over
 * (batch, head, chunk) except for two short scans over the chunks.
 * With F_j = Σ_{r<=j} λ_r inside a chunk, r_j = max_{s<=j}(w_s - F_s):
 *   m_j = F_j + max(m_prev, r_j)                 (stabilizer; m_prev: scan 1)
 *   α_j = e^{F_j + m_prev - m_j},  γ_s = e^{F_L - F_s + w_s - m_L},  β = α_L
 *   Z_js = s (q_j·k_s) e^{F_j - F_s + w_s - m_j}  (s <= j)    [batched GEMM Q Kᵀ, then mask]
 *   ΔS = (γ⊙K)ᵀ V, Δn = Σ_s γ_s k_s                          [batched GEMM]
 *   S̄_in(c+1) = β_c S̄_in(c) + ΔS_c                          (scan 2)
 *   h_j = Σ_s Z_js v_s + s α_j S̄_inᵀ q_j                     [batched GEMMs]
 *   o_j = h_j / max(|N_j|, e^{-m_j}),  N_j = Σ_s Z_js + s α_j n̄_in·q_j   (normalize)
 * Heads are first copied to [B,H,T',·] (T' = T rounded up to the chunk,
 * padded steps have λ = 0 and w = -∞, so they write nothing), so every
 * batched GEMM has one stride. Gates in double, as on the CPU; matrix
 * products in float32 through cuBLAS (no TF32).
 * Mamba-2 SSD is the same machinery with λ_t = Δ_t A_h, w = 0, k_t = Δ_t B_t
 * (Δ_t = softplus(Δ̃_t + bias_h)), q = C, B and C shared by the heads of a
 * group, and the skip D_h x_t added to the output. */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>

#include "cuda.h"
#include "cuda_internal.h"
#include "scalar_chunk.h"

static size_t work_floats(const sc_args *a, int bwd)
{
    size_t bh = (size_t)a->B * a->H, tp = bh * a->Tp, nc = bh * a->nc;
    size_t f = cu_r64(tp * a->K) * 3 + cu_r64(tp * a->V) * 2 + cu_r64(nc * a->L * a->L) + 2 * cu_r64(nc * a->K * a->V) +
               2 * cu_r64(nc * a->K) + 3 * cu_r64(2 * tp) + 6 * cu_r64(tp) + cu_r64(2 * nc) + cu_r64(nc) + cu_r64(6 * (size_t)a->H);
    if (bwd)
        f += 2 * cu_r64(tp * a->V) + 3 * cu_r64(tp * a->K) + 3 * cu_r64(tp) + cu_r64(2 * tp) + 2 * cu_r64(nc * a->L * a->L) +
             cu_r64(nc * a->K * a->V) + 2 * cu_r64(nc * a->K);
    return f;
}


static sc_work carve(const sc_args *a, float *p, int bwd)
{
    size_t bh = (size_t)a->B * a->H, tp = bh * a->Tp, nc = bh * a->nc;
    sc_work w;
    w.qt = cu_take(&p, tp * a->K);
    w.kt = cu_take(&p, tp * a->K);
    w.scaled = cu_take(&p, tp * a->K);
    w.vt = cu_take(&p, tp * a->V);
    w.O = cu_take(&p, tp * a->V);
    w.Z = cu_take(&p, nc * a->L * a->L);
    w.dS = cu_take(&p, nc * a->K * a->V);
    w.Sin = cu_take(&p, nc * a->K * a->V);
    w.dn = cu_take(&p, nc * a->K);
    w.nin = cu_take(&p, nc * a->K);
    w.F = (double *)cu_take(&p, 2 * tp);
    w.R = (double *)cu_take(&p, 2 * tp);
    w.M = (double *)cu_take(&p, 2 * tp);
    w.w = cu_take(&p, tp);
    w.alpha = cu_take(&p, tp);
    w.gamma = cu_take(&p, tp);
    w.rowZ = cu_take(&p, tp);
    w.mprev = (double *)cu_take(&p, 2 * nc);
    w.beta = cu_take(&p, nc);
    w.N = cu_take(&p, tp);
    w.delta = cu_take(&p, tp);
    w.acc = (double *)cu_take(&p, 6 * (size_t)a->H);
    if (!bwd) return w;
    w.dH = cu_take(&p, tp * a->V);
    w.dVt = cu_take(&p, tp * a->V);
    w.dQt = cu_take(&p, tp * a->K);
    w.dKt = cu_take(&p, tp * a->K);
    w.Rb = cu_take(&p, tp * a->K);
    w.dN = cu_take(&p, tp);
    w.cs = cu_take(&p, tp);
    w.colE = cu_take(&p, tp);
    w.dF = (double *)cu_take(&p, 2 * tp);
    w.Gm = cu_take(&p, nc * a->L * a->L);
    w.G = cu_take(&p, nc * a->L * a->L);
    w.dSn = cu_take(&p, nc * a->K * a->V);
    w.dnn = cu_take(&p, nc * a->K);
    w.un = cu_take(&p, nc * a->K);
    return w;
}

static unsigned blocks_for(size_t n) { return (unsigned)((n + 255) / 256); }

/* Sum over the 32 lanes of a warp (every lane gets it). */
__device__ static double warp_sum(double x)
{
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

/* Sum over a block of BLOCK threads (thread 0 gets it); red holds BLOCK/32 doubles. */
enum { BLOCK = 256 };
__device__ static double block_sum(double x, double *red)
{
    x = warp_sum(x);
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = x;
    __syncthreads();
    double t = 0;
    if (threadIdx.x == 0)
        for (int i = 0; i < BLOCK / 32; i++) t += red[i];
    return t;
}



/* x [B,T,Hs,C] -> xt [B,H,Tp,C] (head h reads source head h / (H/Hs): a
 * group of heads shares one), zero rows past T. One block per (b, t < Tp). */
__global__ static void to_heads(const float *x, float *xt, int B, int T, int H, int Hs, int C, int Tp)
{
    int b = blockIdx.x / Tp, t = blockIdx.x % Tp, per = H / Hs;
    for (int e = threadIdx.x; e < H * C; e += blockDim.x) {
        int h = e / C, c = e % C;
        xt[(((size_t)b * H + h) * Tp + t) * C + c] = t < T ? x[(((size_t)b * T + t) * Hs + h / per) * C + c] : 0.0f;
    }
}

__device__ static double log_sigmoid(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
__device__ static double softplus(double x) { return x > 20 ? x : log1p(exp(x)); }

/* One thread per step: λ_t (into F), w_t and SSD's Δ_t, in double (the log1p and exp
 * work, in parallel). Padded steps: λ = 0, w = -∞, Δ = 0. */
__global__ static void step_gates(sc_args a, sc_work w)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)a.B * a.H * a.Tp) return;
    size_t bh = i / a.Tp;
    int t = i % a.Tp, b = bh / a.H, h = bh % a.H;
    double lam = 0, wj = 0, delta = 0;
    if (t >= a.T) wj = -INFINITY;
    else if (a.ssd) {
        delta = (float)softplus((double)a.dt[((size_t)b * a.T + t) * a.H + h] + a.dt_bias[h]);
        lam = (float)(delta * a.A[h]); /* rounded as on the CPU */
    } else if (a.gates) {
        size_t g = ((size_t)b * a.T + t) * a.H + h;
        lam = a.exp_forget ? (double)a.fg[g] : log_sigmoid(a.fg[g]);
        wj = a.ig[g];
    }
    w.F[i] = lam;
    w.w[i] = (float)wj;
    w.delta[i] = (float)delta;
}

/* Inclusive scans over the 32 lanes of a warp (shfl_up): sum, and max. */
__device__ static double warp_scan_sum(double x)
{
    int lane = threadIdx.x % 32;
    for (int o = 1; o < 32; o <<= 1) {
        double y = __shfl_up_sync(0xffffffffu, x, o);
        if (lane >= o) x += y;
    }
    return x;
}

__device__ static double warp_scan_max(double x)
{
    int lane = threadIdx.x % 32;
    for (int o = 1; o < 32; o <<= 1) {
        double y = __shfl_up_sync(0xffffffffu, x, o);
        if (lane >= o) x = fmax(x, y);
    }
    return x;
}

/* One warp per (head, chunk), lanes over 32 steps at a time: F_j = Σ_{r<=j} λ_r
 * (in place over λ) and r_j = max_{s<=j}(w_s - F_s). */
__global__ static void chunk_gates(sc_args a, sc_work w)
{
    size_t gid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, id = gid / 32;
    int lane = gid % 32;
    if (id >= (size_t)a.B * a.H * a.nc) return;
    size_t o = (id / a.nc) * a.Tp + (id % a.nc) * a.L;
    double F = 0, r = -INFINITY; /* carried from the steps before this piece */
    for (int j0 = 0; j0 < a.L; j0 += 32) {
        int j = j0 + lane, in = j < a.L;
        double Fj = F + warp_scan_sum(in ? w.F[o + j] : 0.0);
        double rj = fmax(r, warp_scan_max(in ? (double)w.w[o + j] - Fj : -INFINITY));
        if (in) w.F[o + j] = Fj, w.R[o + j] = rj;
        F = __shfl_sync(0xffffffffu, Fj, 31);
        r = __shfl_sync(0xffffffffu, rj, 31);
    }
}

/* Scan 1, one warp per head: the stabilizer entering each chunk. Chunk c maps
 * m to max(m + a_c, b_c) (a_c = F_L, b_c = F_L + r_L: m' = F_L + max(m, r_L));
 * these maps compose as (a, b) then (a2, b2) = (a + a2, max(b + a2, b2)), so
 * the lanes scan 32 chunks at a time. */
__global__ static void stabilizer_scan(sc_args a, sc_work w)
{
    size_t gid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, bh = gid / 32;
    int lane = gid % 32;
    if (bh >= (size_t)a.B * a.H) return;
    double m = (a.stabilize && a.m0) ? (double)a.m0[bh] : 0.0;
    for (int c0 = 0; c0 < a.nc; c0 += 32) {
        int c = c0 + lane, in = c < a.nc;
        size_t last = bh * a.Tp + (size_t)c * a.L + a.L - 1;
        double ca = in && a.stabilize ? w.F[last] : 0.0, cb = in && a.stabilize ? w.F[last] + w.R[last] : -INFINITY;
        for (int o = 1; o < 32; o <<= 1) { /* inclusive: the map of chunks c0..c */
            double pa = __shfl_up_sync(0xffffffffu, ca, o), pb = __shfl_up_sync(0xffffffffu, cb, o);
            if (lane >= o) cb = fmax(pb + ca, cb), ca = pa + ca;
        }
        double ea = __shfl_up_sync(0xffffffffu, ca, 1), eb = __shfl_up_sync(0xffffffffu, cb, 1); /* exclusive */
        if (lane == 0) ea = 0.0, eb = -INFINITY;
        if (in) w.mprev[bh * a.nc + c] = a.stabilize ? fmax(m + ea, eb) : 0.0;
        double la = __shfl_sync(0xffffffffu, ca, 31), lb = __shfl_sync(0xffffffffu, cb, 31);
        m = a.stabilize ? fmax(m + la, lb) : 0.0;
    }
    if (lane == 0 && a.m1) a.m1[bh] = (float)m;
}

/* One thread per step: m_j, α_j, γ_j; β per chunk. */
__global__ static void chunk_factors(sc_args a, sc_work w)
{
    size_t n = (size_t)a.B * a.H * a.Tp;
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) return;
    size_t bh = i / a.Tp;
    int t = i % a.Tp, c = t / a.L, j = t % a.L;
    double mp = w.mprev[bh * a.nc + c];
    size_t last = bh * a.Tp + (size_t)c * a.L + a.L - 1;
    double mj = a.stabilize ? w.F[i] + fmax(mp, w.R[i]) : 0.0;
    double mL = a.stabilize ? w.F[last] + fmax(mp, w.R[last]) : 0.0;
    w.alpha[i] = (float)exp(w.F[i] + mp - mj);
    w.gamma[i] = (float)exp(w.F[last] - w.F[i] + (double)w.w[i] - mL);
    w.M[i] = mj;
    if (j == a.L - 1) w.beta[bh * a.nc + c] = (float)exp(w.F[i] + mp - mj);
}

/* Z_js = P_js e^{F_j - F_s + w_s - m_j} for s <= j, 0 above; rowZ_j = Σ_s Z_js. One warp per row
 * (lanes over s); the exponent in double, its exponential in float. */
__global__ static void mask_scores(sc_args a, sc_work w)
{
    size_t gid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, i = gid / 32;
    int lane = gid % 32;
    if (i >= (size_t)a.B * a.H * a.Tp) return;
    size_t bh = i / a.Tp;
    int t = i % a.Tp, c = t / a.L, j = t % a.L;
    size_t base = bh * a.Tp + (size_t)c * a.L;
    float *z = w.Z + ((bh * a.nc + c) * a.L + j) * a.L;
    double Fj = w.F[i], mj = w.M[i], sum = 0;
    for (int s = lane; s < a.L; s += 32) {
        float v = 0;
        if (s <= j) v = z[s] * expf((float)(Fj - w.F[base + s] + (double)w.w[base + s] - mj));
        z[s] = v;
        sum += v;
    }
    sum = warp_sum(sum);
    if (!lane) w.rowZ[i] = (float)sum;
}

/* scaled = f ⊙ x rows ([BH,Tp,K] by [BH,Tp]); with dn, also Δn per chunk. */
__global__ static void scale_rows(const float *x, const float *f, float *y, size_t rows, int K)
{
    size_t n = rows * K;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = f[i / K] * x[i];
}

/* Δn_c[i] = Σ_s γ_s k_s[i]: one thread per (head, chunk, i). */
__global__ static void chunk_dn(sc_args a, sc_work w)
{
    size_t n = (size_t)a.B * a.H * a.nc * a.K;
    size_t id = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (id >= n) return;
    int i = id % a.K;
    size_t hc = id / a.K; /* bh * nc + c */
    const float *kg = w.scaled + hc * a.L * a.K;
    float acc = 0;
    for (int s = 0; s < a.L; s++) acc += kg[(size_t)s * a.K + i];
    w.dn[id] = acc;
}

/* One part (S̄ or n̄) of a scan over the chunks: x starts at x0 (NULL = 0);
 * at each chunk c, out[c] = x, then x = β_c x + u[c]; the last x goes to
 * fin (may be NULL). stride = the part's floats per head and chunk. */
typedef struct {
    const float *x0, *u;
    float *out, *fin;
    size_t stride;
} scan_part;

/* Scans 2 and 3: S̄_in(c) forward over the chunks, or the gradient of each
 * chunk's outgoing state backward; one thread per (head, element of S̄ and,
 * with n, of n̄). */
__global__ static void chunk_scan(sc_args a, const float *beta, scan_part S, scan_part n, int reverse)
{
    size_t per = S.stride + (n.stride ? n.stride : 0);
    size_t id = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (id >= (size_t)a.B * a.H * per) return;
    size_t bh = id / per, e = id % per;
    const scan_part *p = e < S.stride ? &S : &n;
    size_t ei = e < S.stride ? e : e - S.stride;
    float x = p->x0 ? p->x0[bh * p->stride + ei] : 0.0f;
    for (int k = 0; k < a.nc; k++) {
        int c = reverse ? a.nc - 1 - k : k;
        size_t o = (bh * a.nc + c) * p->stride + ei;
        p->out[o] = x;
        x = beta[bh * a.nc + c] * x + p->u[o];
    }
    if (p->fin) p->fin[bh * p->stride + ei] = x;
}

static void scan(const sc_args *a, const float *beta, scan_part S, scan_part n, int reverse)
{
    if (!a->normalize) n.stride = 0;
    chunk_scan<<<blocks_for((size_t)a->B * a->H * (S.stride + n.stride)), 256>>>(*a, beta, S, n, reverse);
}

/* rowZ_j <- max(|N_j|, e^{-m_j}), N_j = rowZ_j + s α_j q_j·n̄_in; one warp per row. */
__global__ static void normalizer(sc_args a, sc_work w)
{
    size_t gid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, row = gid / 32;
    int lane = gid % 32;
    if (row >= (size_t)a.B * a.H * a.Tp) return;
    size_t bh = row / a.Tp;
    int c = (row % a.Tp) / a.L;
    const float *q = w.qt + row * a.K, *nn = w.nin + (bh * a.nc + c) * a.K;
    double qn = 0;
    for (int i = lane; i < a.K; i += 32) qn += (double)q[i] * nn[i];
    qn = warp_sum(qn);
    if (lane) return;
    float N = w.rowZ[row] + a.qscale * w.alpha[row] * (float)qn;
    w.N[row] = N;
    w.rowZ[row] = fmaxf(fabsf(N), (float)exp(-w.M[row]));
}

/* o = h / divisor (normalize) or h, plus SSD's skip, back to [B,T,H,V]. One block per (b, t < T). */
__global__ static void write_out(sc_args a, sc_work w)
{
    int b = blockIdx.x / a.T, t = blockIdx.x % a.T;
    for (int e = threadIdx.x; e < a.H * a.V; e += blockDim.x) {
        int h = e / a.V, vv = e % a.V;
        size_t row = ((size_t)b * a.H + h) * a.Tp + t, o_i = (((size_t)b * a.T + t) * a.H + h) * a.V + vv;
        float o = w.O[row * a.V + vv];
        if (a.normalize) o /= w.rowZ[row];
        if (a.ssd) o += a.D[h] * a.v[o_i]; /* skip D x */
        a.out[o_i] = o;
    }
}


static int check_launch(const char *op) { return cu_check(op, cudaGetLastError()); }

static void set_chunks(sc_args *a)
{
    a->nc = (a->T + a->L - 1) / a->L;
    a->Tp = a->nc * a->L;
}

int cu_scalar_gates(const char *op, const sc_args *a, const sc_work &w)
{
    size_t rows = (size_t)a->B * a->H * a->Tp;
    step_gates<<<blocks_for(rows), 256>>>(*a, w);
    chunk_gates<<<blocks_for((size_t)a->B * a->H * a->nc * 32), 256>>>(*a, w);
    stabilizer_scan<<<blocks_for((size_t)a->B * a->H * 32), 256>>>(*a, w);
    chunk_factors<<<blocks_for(rows), 256>>>(*a, w);
    return check_launch(op);
}

/* The forward's stages into w (allocated by the caller). */
static int forward_stages(const char *op, const sc_args *a, const sc_work &w)
{
    int rc, BH = a->B * a->H, L = a->L, K = a->K, V = a->V, nbc = BH * a->nc;
    size_t rows = (size_t)BH * a->Tp;
    long long sK = (long long)L * K, sV = (long long)L * V, sLL = (long long)L * L, sKV = (long long)K * V;
    int Hs = a->ssd ? a->G : a->H;
    unsigned bt = (unsigned)(a->B * a->Tp);
    to_heads<<<bt, 256>>>(a->q, w.qt, a->B, a->T, a->H, Hs, K, a->Tp);
    to_heads<<<bt, 256>>>(a->k, w.kt, a->B, a->T, a->H, Hs, K, a->Tp);
    to_heads<<<bt, 256>>>(a->v, w.vt, a->B, a->T, a->H, a->H, V, a->Tp);
    if ((rc = cu_scalar_gates(op, a, w))) return rc;
    if (a->ssd) scale_rows<<<blocks_for(rows * K), 256>>>(w.kt, w.delta, w.kt, rows, K); /* k = Δ B */
    /* P = s Q Kᵀ per chunk, masked into Z */
    if ((rc = cu_gemm_rm(op, 0, 1, L, L, K, a->qscale, w.qt, K, sK, w.kt, K, sK, 0, w.Z, L, sLL, nbc))) return rc;
    mask_scores<<<blocks_for(rows * 32), 256>>>(*a, w);
    /* ΔS = (γ⊙K)ᵀ V, Δn = Σ γ k */
    scale_rows<<<blocks_for(rows * K), 256>>>(w.kt, w.gamma, w.scaled, rows, K);
    if ((rc = cu_gemm_rm(op, 1, 0, K, V, L, 1, w.scaled, K, sK, w.vt, V, sV, 0, w.dS, V, sKV, nbc))) return rc;
    if (a->normalize) chunk_dn<<<blocks_for((size_t)nbc * K), 256>>>(*a, w);
    scan(a, w.beta, scan_part{a->S0, w.dS, w.Sin, a->S1, (size_t)sKV}, scan_part{a->n0, w.dn, w.nin, a->n1, (size_t)K}, 0);
    /* h = Z V + s (α⊙Q) S̄_in */
    if ((rc = cu_gemm_rm(op, 0, 0, L, V, L, 1, w.Z, L, sLL, w.vt, V, sV, 0, w.O, V, sV, nbc))) return rc;
    scale_rows<<<blocks_for(rows * K), 256>>>(w.qt, w.alpha, w.scaled, rows, K);
    if ((rc = cu_gemm_rm(op, 0, 0, L, V, K, a->qscale, w.scaled, K, sK, w.Sin, V, sKV, 1, w.O, V, sV, nbc))) return rc;
    if (a->normalize) normalizer<<<blocks_for(rows * 32), 256>>>(*a, w);
    if (a->out) write_out<<<(unsigned)(a->B * a->T), 256>>>(*a, w);
    return check_launch(op);
}

/* Runs stages(op, a, w, ctx) on a workspace: the caller's, or one allocated for the call. */
static int with_work(const char *op, sc_args *a, float *work, int bwd,
                     int (*stages)(const char *, const sc_args *, const sc_work &, const void *), const void *ctx)
{
    float *owned = NULL;
    int rc;
    set_chunks(a);
    if (!work) {
        if ((rc = sq_cuda_malloc(&owned, work_floats(a, bwd)))) return rc;
        work = owned;
    }
    rc = stages(op, a, carve(a, work, bwd), ctx);
    if (owned) {
        int e = cu_check(op, cudaDeviceSynchronize());
        sq_cuda_free(owned);
        if (!rc) rc = e;
    }
    return rc;
}

static int forward_only(const char *op, const sc_args *a, const sc_work &w, const void *ctx)
{
    return forward_stages(op, a, w);
}

static int sc_forward(const char *op, sc_args *a, float *work) { return with_work(op, a, work, 0, forward_only, NULL); }

/* ---- backward ---------------------------------------------------------------
 * The CPU's chunk backward (scalar_chunk.c) for every chunk at once, with
 * the gradient w.r.t. each chunk's outgoing state from a reverse scan:
 *   dH_j = do_j / D_j,  dN_j = -sign(N_j)(do_j·o_j)/D_j when |N_j| > e^{-m_j}  (normalize)
 *   dS̄_out(c-1) = β_c dS̄_out(c) + s (α⊙Q_c)ᵀ dH_c                        (reverse scan)
 *   G = A ⊙ (dH Vᵀ + dN 1ᵀ),  E = Z ⊙ (dH Vᵀ + dN 1ᵀ)   (E: the mask exponents' gradient)
 *   dQ = s G K + s α⊙(dH S̄_inᵀ + dN n̄_inᵀ),  dK = s Gᵀ Q + γ⊙(V dS̄_outᵀ + 1 dn̄_outᵀ)
 *   dV = Zᵀ dH + (γ⊙K) dS̄_out
 *   dF_j = rowE_j - colE_j + α_j s q_j·(...) - γ_j k_j·(...), plus Σγ-terms and β b at the chunk's end
 *   dλ_r = Σ_{j>=r} dF_j,  dw_s = colE_s + γ_s k_s·(...)                                   */

/* The initial state enters as S̄0 e^{m0}: dm0 = Σ dS̄0 ⊙ S̄0 + Σ dn̄0 ⊙ n̄0 (0 without one). One block per head. */
__global__ static void init_m_grad(sc_args a, sc_grads g)
{
    __shared__ double red[BLOCK / 32];
    size_t bh = blockIdx.x, KV = (size_t)a.K * a.V;
    double dm = 0;
    if (a.S0)
        for (size_t e = threadIdx.x; e < KV; e += BLOCK) dm += (double)g.dS0[bh * KV + e] * a.S0[bh * KV + e];
    if (a.n0)
        for (int i = threadIdx.x; i < a.K; i += BLOCK) dm += (double)g.dn0[bh * a.K + i] * a.n0[bh * a.K + i];
    dm = block_sum(dm, red);
    if (!threadIdx.x) g.dm0[bh] = (float)dm;
}

/* dH, dN per row (zero on padded rows); one warp per row. */
__global__ static void output_grads(sc_args a, sc_work w, const float *dout)
{
    size_t gid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, row = gid / 32;
    int lane = gid % 32;
    if (row >= (size_t)a.B * a.H * a.Tp) return;
    size_t bh = row / a.Tp;
    int t = row % a.Tp, b = bh / a.H, h = bh % a.H;
    float *dh = w.dH + row * a.V;
    if (t >= a.T) {
        for (int i = lane; i < a.V; i += 32) dh[i] = 0;
        if (!lane) w.dN[row] = 0;
        return;
    }
    const float *d = dout + (((size_t)b * a.T + t) * a.H + h) * a.V, *hr = w.O + row * a.V;
    float D = a.normalize ? w.rowZ[row] : 1.0f;
    double dot = 0;
    for (int i = lane; i < a.V; i += 32) {
        dh[i] = d[i] / D;
        dot += (double)d[i] * (hr[i] / D);
    }
    dot = warp_sum(dot);
    if (lane) return;
    float N = a.normalize ? w.N[row] : 0.0f;
    w.dN[row] = a.normalize && fabsf(N) > (float)exp(-w.M[row]) ? -(N > 0 ? 1.0f : -1.0f) * (float)dot / D : 0.0f;
}

/* un_c[i] = s Σ_j (α⊙Q)_j[i] dN_j: one thread per (head, chunk, i). */
__global__ static void chunk_un(sc_args a, sc_work w)
{
    size_t n = (size_t)a.B * a.H * a.nc * a.K;
    size_t id = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (id >= n) return;
    int i = id % a.K;
    size_t hc = id / a.K;
    const float *qa = w.scaled + hc * a.L * a.K, *dn = w.dN + hc * a.L;
    float acc = 0;
    for (int j = 0; j < a.L; j++) acc += qa[(size_t)j * a.K + i] * dn[j];
    w.un[id] = a.qscale * acc;
}


/* Per row j: G_jt = A_jt dp, E_jt = Z_jt dp (dp = Gm_jt + dN_j, t <= j), kept in Gm; dF_j = Σ_t E_jt.
 * One warp per row (lanes over t). */
__global__ static void score_grads(sc_args a, sc_work w)
{
    size_t gid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, i = gid / 32;
    int lane = gid % 32;
    if (i >= (size_t)a.B * a.H * a.Tp) return;
    size_t bh = i / a.Tp;
    int t = i % a.Tp, c = t / a.L, j = t % a.L;
    size_t base = bh * a.Tp + (size_t)c * a.L, off = ((bh * a.nc + c) * a.L + j) * a.L;
    float *gm = w.Gm + off, *gg = w.G + off;
    const float *z = w.Z + off;
    double Fj = w.F[i], mj = w.M[i], rowE = 0;
    float dn = w.dN[i];
    for (int s = lane; s < a.L; s += 32) {
        float G = 0, E = 0;
        if (s <= j) {
            float dp = gm[s] + dn;
            E = z[s] * dp;
            G = expf((float)(Fj - w.F[base + s] + (double)w.w[base + s] - mj)) * dp;
        }
        gg[s] = G;
        gm[s] = E;
        rowE += E;
    }
    rowE = warp_sum(rowE);
    if (!lane) w.dF[i] = rowE;
}

/* Per column s: colE_s = Σ_j E_js; dF_s -= colE_s. */
__global__ static void column_grads(sc_args a, sc_work w)
{
    size_t n = (size_t)a.B * a.H * a.Tp;
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) return;
    size_t bh = i / a.Tp;
    int t = i % a.Tp, c = t / a.L, s = t % a.L;
    const float *e = w.Gm + (bh * a.nc + c) * a.L * a.L;
    float acc = 0;
    for (int j = s; j < a.L; j++) acc += e[(size_t)j * a.L + s];
    w.colE[i] = acc;
    w.dF[i] -= acc;
}

/* dQ_j += s α_j r_j, r = R_j + dN_j n̄_in; dF_j += s α_j q_j·r. One warp per row. */
__global__ static void query_grads(sc_args a, sc_work w)
{
    size_t gid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, row = gid / 32;
    int lane = gid % 32;
    if (row >= (size_t)a.B * a.H * a.Tp) return;
    size_t bh = row / a.Tp;
    int c = (row % a.Tp) / a.L;
    const float *q = w.qt + row * a.K, *nn = w.nin + (bh * a.nc + c) * a.K;
    float *r = w.Rb + row * a.K, *dq = w.dQt + row * a.K, f = a.qscale * w.alpha[row], dn = w.dN[row];
    double acc = 0;
    for (int i = lane; i < a.K; i += 32) {
        float ri = r[i] + (a.normalize ? dn * nn[i] : 0.0f);
        acc += (double)q[i] * ri;
        dq[i] += f * ri;
    }
    acc = warp_sum(acc);
    if (!lane) w.dF[row] += f * acc;
}

/* dK_j += γ_j u_j, u = U_j + dn̄_out; cs_j = γ_j k_j·u; dF_j -= cs_j. One warp per row (U in Rb). */
__global__ static void key_grads(sc_args a, sc_work w)
{
    size_t gid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, row = gid / 32;
    int lane = gid % 32;
    if (row >= (size_t)a.B * a.H * a.Tp) return;
    size_t bh = row / a.Tp;
    int c = (row % a.Tp) / a.L;
    const float *k = w.kt + row * a.K, *dnn = w.dnn + (bh * a.nc + c) * a.K;
    float *u = w.Rb + row * a.K, *dk = w.dKt + row * a.K, gm = w.gamma[row];
    double acc = 0;
    for (int i = lane; i < a.K; i += 32) {
        float ui = u[i] + (a.normalize ? dnn[i] : 0.0f);
        acc += (double)k[i] * ui;
        dk[i] += gm * ui;
    }
    acc = warp_sum(acc);
    if (lane) return;
    w.cs[row] = (float)(gm * acc);
    w.dF[row] -= gm * acc;
}

/* Per (head, chunk), one block: the chunk-end terms dF_last += Σ cs + β (S̄_in·dS̄_out + n̄_in·dn̄_out), then
 * dλ_r = Σ_{j>=r} dF_j (into dF) and dw = colE + cs (into colE). */
__global__ static void chunk_end_grads(sc_args a, sc_work w)
{
    __shared__ double red[BLOCK / 32];
    size_t hc = blockIdx.x, KV = (size_t)a.K * a.V, base = (hc / a.nc) * a.Tp + (hc % a.nc) * a.L;
    const float *S = w.Sin + hc * KV, *dS = w.dSn + hc * KV;
    double b = 0;
    for (size_t e = threadIdx.x; e < KV; e += BLOCK) b += (double)S[e] * dS[e];
    if (a.normalize)
        for (int i = threadIdx.x; i < a.K; i += BLOCK) b += (double)w.nin[hc * a.K + i] * w.dnn[hc * a.K + i];
    b = block_sum(b, red);
    if (threadIdx.x) return;
    double csum = 0, acc = 0;
    for (int j = 0; j < a.L; j++) csum += w.cs[base + j];
    w.dF[base + a.L - 1] += csum + w.beta[hc] * b;
    for (int j = a.L - 1; j >= 0; j--) {
        acc += w.dF[base + j];
        w.dF[base + j] = acc;
        w.colE[base + j] += w.cs[base + j];
    }
}

/* xt [B,H,Tp,C] rows t < T -> x [B,T,H,C]. One block per (b, t < T). */
__global__ static void from_heads(const float *xt, float *x, int B, int T, int H, int C, int Tp)
{
    int b = blockIdx.x / T, t = blockIdx.x % T;
    for (int e = threadIdx.x; e < H * C; e += blockDim.x) {
        int h = e / C, c = e % C;
        x[(((size_t)b * T + t) * H + h) * C + c] = xt[(((size_t)b * H + h) * Tp + t) * C + c];
    }
}

/* The gate pre-activations' gradients: dĩ = dw, df̃ = dλ σ(-f̃) (or dλ). */
__global__ static void gate_grads(sc_args a, sc_work w, float *dig, float *dfg)
{
    size_t n = (size_t)a.B * a.T * a.H;
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) return;
    int h = i % a.H, t = (i / a.H) % a.T, b = i / ((size_t)a.H * a.T);
    size_t row = ((size_t)b * a.H + h) * a.Tp + t;
    double f = a.fg[i], dlam = w.dF[row];
    dfg[i] = (float)(a.exp_forget ? dlam : dlam / (1.0 + exp(f)));
    dig[i] = w.colE[row];
}

/* A gradient element as float32 or rounded to bf16. */
__device__ static void put(float *x, size_t i, float v) { x[i] = v; }
__device__ static void put(sq_bf16 *x, size_t i, float v) { x[i] = __bfloat16_as_ushort(__float2bfloat16_rn(v)); }

/* SSD: dC, dB summed over each group's heads, dCm = Σ_h dQ, dBm = Σ_h Δ ⊙ dK; one thread per (b, t, g, i). */
template <typename O>
__global__ static void ssd_group_grads(sc_args a, sc_work w, O *dB, O *dC)
{
    size_t n = (size_t)a.B * a.T * a.G * a.K;
    size_t id = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (id >= n) return;
    int i = id % a.K;
    size_t r = id / a.K;
    int g = r % a.G, t = (r / a.G) % a.T, b = r / ((size_t)a.G * a.T), hpg = a.H / a.G;
    float sb = 0, sc = 0;
    for (int h = g * hpg; h < (g + 1) * hpg; h++) {
        size_t row = ((size_t)b * a.H + h) * a.Tp + t;
        sc += w.dQt[row * a.K + i];
        sb += w.dKt[row * a.K + i] * w.delta[row];
    }
    put(dB, id, sb);
    put(dC, id, sc);
}

/* SSD per step: dΔ_t = dλ_t A_h + dk_t·B_t, dΔ̃_t = dΔ_t σ(Δ̃_t + bias_h), and dx += D_h dy (dx given).
 * One warp per (b, t, h). dλ is in dF (after chunk_end_grads); dk·B is w.cs when a.k is NULL (fused). */
__global__ static void ssd_step_grads(sc_args a, sc_work w, const float *dy, float *ddt, float *dx)
{
    size_t gid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, i = gid / 32;
    int lane = gid % 32;
    if (i >= (size_t)a.B * a.T * a.H) return;
    int h = i % a.H, t = (i / a.H) % a.T, b = i / ((size_t)a.H * a.T);
    size_t row = ((size_t)b * a.H + h) * a.Tp + t;
    double dot = 0;
    if (a.k) {
        const float *Bt = a.k + (((size_t)b * a.T + t) * a.G + h / (a.H / a.G)) * a.K, *dk = w.dKt + row * a.K;
        for (int c = lane; c < a.K; c += 32) dot += (double)dk[c] * Bt[c];
        dot = warp_sum(dot);
    } else
        dot = w.cs[row];
    for (int c = lane; dx && c < a.V; c += 32) dx[i * a.V + c] += a.D[h] * dy[i * a.V + c];
    if (lane) return;
    double x = (double)a.dt[i] + a.dt_bias[h], ddelta = w.dF[row] * (double)a.A[h] + dot;
    ddt[i] = (float)(ddelta / (1.0 + exp(-x)));
}

/* SSD per head: dA_h = Σ dλ Δ, dbias_h = Σ dΔ̃, dD_h = Σ dy ⊙ x over batch and steps (dy given; the
 * fused backward adds dD's sums itself). Grid (H, SSD_SPLIT): each block sums a share of the rows (b, t),
 * a warp per row with its lanes over the V values, and adds its partial sums into acc [3H] (double
 * atomics; zeroed before). */
enum { SSD_SPLIT = 64 };
__global__ static void ssd_head_grads(sc_args a, sc_work w, const float *dy, const float *ddt, double *acc)
{
    __shared__ double red[BLOCK / 32];
    int h = blockIdx.x, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    double sa = 0, sb = 0, sd = 0;
    for (size_t r = (size_t)blockIdx.y * (BLOCK / 32) + warp; r < (size_t)a.B * a.T; r += (size_t)SSD_SPLIT * (BLOCK / 32)) {
        int b = r / a.T, t = r % a.T;
        size_t row = ((size_t)b * a.H + h) * a.Tp + t, i = ((size_t)b * a.T + t) * a.H + h;
        if (!lane) {
            sa += w.dF[row] * (double)w.delta[row];
            sb += ddt[i];
        }
        for (int c = lane; dy && c < a.V; c += 32) sd += (double)dy[i * a.V + c] * a.v[i * a.V + c];
    }
    sa = block_sum(sa, red);
    __syncthreads();
    sb = block_sum(sb, red);
    __syncthreads();
    sd = block_sum(sd, red);
    if (threadIdx.x) return;
    atomicAdd(&acc[h], sa);
    atomicAdd(&acc[a.H + h], sb);
    atomicAdd(&acc[2 * a.H + h], sd);
}

__global__ static void ssd_head_store(int H, const double *acc, float *dA, float *dbias, float *dD)
{
    int h = blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= H) return;
    dA[h] = (float)acc[h];
    dbias[h] = (float)acc[H + h];
    dD[h] = (float)acc[2 * H + h];
}

/* SSD's per-step and per-head gradients (dΔ̃, dA, dbias, dD; dx += D dy when dx is given), acc zeroed. */
static int ssd_tail(const char *op, const sc_args *a, const sc_work &w, const sc_grads *g, const float *dy, float *dx)
{
    size_t steps = (size_t)a->B * a->T * a->H;
    ssd_step_grads<<<blocks_for(steps * 32), 256>>>(*a, w, dy, g->ddt, dx);
    ssd_head_grads<<<dim3(a->H, SSD_SPLIT), BLOCK>>>(*a, w, dy, g->ddt, w.acc);
    ssd_head_store<<<blocks_for(a->H), 256>>>(a->H, w.acc, g->dA, g->ddt_bias, g->dD);
    return check_launch(op);
}

/* The mLSTM's gate pre-activations' and initial stabilizer's gradients (after dλ, dw). */
static int mlstm_tail(const char *op, const sc_args *a, const sc_work &w, const sc_grads *g)
{
    if (a->gates) gate_grads<<<blocks_for((size_t)a->B * a->T * a->H), 256>>>(*a, w, g->dig, g->dfg);
    if (g->dm0) init_m_grad<<<a->B * a->H, BLOCK>>>(*a, *g);
    return check_launch(op);
}

static int backward_stages(const char *op, const sc_args *a, const sc_work &w, const void *ctx)
{
    const sc_grads *g = (const sc_grads *)ctx;
    int rc, BH = a->B * a->H, L = a->L, K = a->K, V = a->V, nbc = BH * a->nc;
    size_t rows = (size_t)BH * a->Tp;
    long long sK = (long long)L * K, sV = (long long)L * V, sLL = (long long)L * L, sKV = (long long)K * V;
    if ((rc = forward_stages(op, a, w))) return rc; /* recompute: Z, S̄_in, n̄_in, N, D, h; scaled = α⊙Q */
    output_grads<<<blocks_for(rows * 32), 256>>>(*a, w, g->dout);
    /* U_c = s (α⊙Q)ᵀ dH into dS (free now), un for n̄; the reverse scan */
    if ((rc = cu_gemm_rm(op, 1, 0, K, V, L, a->qscale, w.scaled, K, sK, w.dH, V, sV, 0, w.dS, V, sKV, nbc))) return rc;
    if (a->normalize) chunk_un<<<blocks_for((size_t)nbc * K), 256>>>(*a, w);
    scan(a, w.beta, scan_part{g->dS1, w.dS, w.dSn, g->dS0, (size_t)sKV}, scan_part{g->dn1, w.un, w.dnn, g->dn0, (size_t)K}, 1);
    /* G, E from dH Vᵀ */
    if ((rc = cu_gemm_rm(op, 0, 1, L, L, V, 1, w.dH, V, sV, w.vt, V, sV, 0, w.Gm, L, sLL, nbc))) return rc;
    score_grads<<<blocks_for(rows * 32), 256>>>(*a, w);
    column_grads<<<blocks_for(rows), 256>>>(*a, w);
    /* dQ = s G K + s α⊙(dH S̄_inᵀ + dN n̄_inᵀ) */
    if ((rc = cu_gemm_rm(op, 0, 0, L, K, L, a->qscale, w.G, L, sLL, w.kt, K, sK, 0, w.dQt, K, sK, nbc)) ||
        (rc = cu_gemm_rm(op, 0, 1, L, K, V, 1, w.dH, V, sV, w.Sin, V, sKV, 0, w.Rb, K, sK, nbc)))
        return rc;
    query_grads<<<blocks_for(rows * 32), 256>>>(*a, w);
    /* dK = s Gᵀ Q + γ⊙(V dS̄_outᵀ + 1 dn̄_outᵀ) */
    if ((rc = cu_gemm_rm(op, 1, 0, L, K, L, a->qscale, w.G, L, sLL, w.qt, K, sK, 0, w.dKt, K, sK, nbc)) ||
        (rc = cu_gemm_rm(op, 0, 1, L, K, V, 1, w.vt, V, sV, w.dSn, V, sKV, 0, w.Rb, K, sK, nbc)))
        return rc;
    key_grads<<<blocks_for(rows * 32), 256>>>(*a, w);
    /* dV = Zᵀ dH + (γ⊙K) dS̄_out */
    scale_rows<<<blocks_for(rows * K), 256>>>(w.kt, w.gamma, w.scaled, rows, K);
    if ((rc = cu_gemm_rm(op, 1, 0, L, V, L, 1, w.Z, L, sLL, w.dH, V, sV, 0, w.dVt, V, sV, nbc)) ||
        (rc = cu_gemm_rm(op, 0, 0, L, V, K, 1, w.scaled, K, sK, w.dSn, V, sKV, 1, w.dVt, V, sV, nbc)))
        return rc;
    chunk_end_grads<<<nbc, BLOCK>>>(*a, w);
    from_heads<<<(unsigned)(a->B * a->T), 256>>>(w.dVt, g->dv, a->B, a->T, a->H, V, a->Tp);
    if (a->ssd) {
        ssd_group_grads<<<blocks_for((size_t)a->B * a->T * a->G * K), 256>>>(*a, w, g->dk, g->dq);
        if ((rc = cu_check(op, cudaMemsetAsync(w.acc, 0, 3 * (size_t)a->H * sizeof(double))))) return rc;
        return ssd_tail(op, a, w, g, g->dout, g->dv);
    }
    from_heads<<<(unsigned)(a->B * a->T), 256>>>(w.dQt, g->dq, a->B, a->T, a->H, K, a->Tp);
    from_heads<<<(unsigned)(a->B * a->T), 256>>>(w.dKt, g->dk, a->B, a->T, a->H, K, a->Tp);
    return mlstm_tail(op, a, w, g);
}

extern "C" size_t sq_cuda_scalar_work_floats(sq_dims d, int chunk)
{
    sc_args a = {d.B, d.T, d.H, d.K, d.V, chunk < d.T ? chunk : d.T};
    set_chunks(&a);
    return work_floats(&a, 1);
}

/* mLSTM's checks, with q, k, v of either element type. */
static int check_mlstm_in(const char *op, sq_dims d, const sq_mlstm_opts *o, const void *q, const void *k,
                          const void *v, const float *igate, const float *fgate, const sq_mlstm_state *s0)
{
    int rc;
    if ((rc = sq_check_dims(op, d)) || (rc = sq_check_chunk(op, o->chunk))) return rc;
    if ((rc = sq_check_ptr(op, "q", q)) || (rc = sq_check_ptr(op, "k", k)) || (rc = sq_check_ptr(op, "v", v)) ||
        (rc = sq_check_ptr(op, "igate", igate)) || (rc = sq_check_ptr(op, "fgate", fgate)))
        return rc;
    if (s0 && (!s0->S || !s0->n || !s0->m))
        return sq_fail(SQ_EINVAL, "%s: s0 needs all of S, n and m (or pass NULL for the zero state)", op);
    return SQ_OK;
}

static int check_mlstm(const char *op, sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in,
                       const sq_mlstm_state *s0)
{
    int rc = sq_check_ptr(op, "in", in);
    return rc ? rc : check_mlstm_in(op, d, o, in->q, in->k, in->v, in->igate, in->fgate, s0);
}

extern "C" int sq_cuda_mlstm_fwd(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in, const sq_mlstm_state *s0,
                                 float *out, sq_mlstm_state *s1, float *work)
{
    const char *op = "cuda mlstm fwd";
    sq_mlstm_opts def = sq_mlstm_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = check_mlstm(op, d, o, in, s0)) || (rc = sq_check_ptr(op, "out", out))) return rc;
    sc_args a = {d.B, d.T, d.H, d.K, d.V, o->chunk < d.T ? o->chunk : d.T, 0, 0, 1.0f / sqrtf((float)d.K), 1, 1, 1,
                 o->exp_forget, in->q, in->k, in->v, in->igate, in->fgate,
                 s0 ? s0->S : NULL, s0 ? s0->n : NULL, s0 ? s0->m : NULL, out,
                 s1 ? s1->S : NULL, s1 ? s1->n : NULL, s1 ? s1->m : NULL};
    return sc_forward(op, &a, work);
}

extern "C" int sq_cuda_linattn_fwd(sq_dims d, const sq_linattn_opts *o, const float *q, const float *k, const float *v,
                                   const float *S0, float *out, float *S1, float *work)
{
    const char *op = "cuda linattn fwd";
    sq_linattn_opts def = sq_linattn_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sq_check_dims(op, d)) || (rc = sq_check_ptr(op, "q", q)) || (rc = sq_check_ptr(op, "k", k)) ||
        (rc = sq_check_ptr(op, "v", v)) || (rc = sq_check_ptr(op, "out", out)) || (rc = sq_check_chunk(op, o->chunk)))
        return rc;
    sc_args a = {d.B, d.T, d.H, d.K, d.V, o->chunk < d.T ? o->chunk : d.T, 0, 0, 1.0f, 0, 0, 0, 0, q, k, v, NULL, NULL,
                 S0, NULL, NULL, out, S1, NULL, NULL};
    return sc_forward(op, &a, work);
}

extern "C" int sq_cuda_mlstm_bwd(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in, const sq_mlstm_state *s0,
                                 const float *dout, const sq_mlstm_state *ds1, sq_mlstm_grad *gr, sq_mlstm_state *ds0,
                                 float *work)
{
    const char *op = "cuda mlstm bwd";
    sq_mlstm_opts def = sq_mlstm_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = check_mlstm(op, d, o, in, s0)) || (rc = sq_check_ptr(op, "dout", dout)) || (rc = sq_check_ptr(op, "g", gr)))
        return rc;
    if ((rc = sq_check_ptr(op, "g->dq", gr->dq)) || (rc = sq_check_ptr(op, "g->dk", gr->dk)) ||
        (rc = sq_check_ptr(op, "g->dv", gr->dv)) || (rc = sq_check_ptr(op, "g->digate", gr->digate)) ||
        (rc = sq_check_ptr(op, "g->dfgate", gr->dfgate)))
        return rc;
    sc_args a = {d.B, d.T, d.H, d.K, d.V, o->chunk < d.T ? o->chunk : d.T, 0, 0, 1.0f / sqrtf((float)d.K), 1, 1, 1,
                 o->exp_forget, in->q, in->k, in->v, in->igate, in->fgate,
                 s0 ? s0->S : NULL, s0 ? s0->n : NULL, s0 ? s0->m : NULL, NULL, NULL, NULL, NULL};
    if (ds0 && (!ds0->S || !ds0->n || !ds0->m))
        return sq_fail(SQ_EINVAL, "%s: ds0 needs all of S, n and m (or pass NULL)", op);
    if (ds1 && (!ds1->S || !ds1->n)) return sq_fail(SQ_EINVAL, "%s: ds1 needs S and n (or pass NULL)", op);
    sc_grads g = {dout, ds1 ? ds1->S : NULL, ds1 ? ds1->n : NULL, gr->dq, gr->dk, gr->dv, gr->digate, gr->dfgate,
                  ds0 ? ds0->S : NULL, ds0 ? ds0->n : NULL, ds0 ? ds0->m : NULL};
    return with_work(op, &a, work, 1, backward_stages, &g);
}

extern "C" int sq_cuda_linattn_bwd(sq_dims d, const sq_linattn_opts *o, const float *q, const float *k, const float *v,
                                   const float *S0, const float *dout, const float *dS1, float *dq, float *dk,
                                   float *dv, float *dS0, float *work)
{
    const char *op = "cuda linattn bwd";
    sq_linattn_opts def = sq_linattn_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sq_check_dims(op, d)) || (rc = sq_check_ptr(op, "q", q)) || (rc = sq_check_ptr(op, "k", k)) ||
        (rc = sq_check_ptr(op, "v", v)) || (rc = sq_check_ptr(op, "dout", dout)) || (rc = sq_check_ptr(op, "dq", dq)) ||
        (rc = sq_check_ptr(op, "dk", dk)) || (rc = sq_check_ptr(op, "dv", dv)) || (rc = sq_check_chunk(op, o->chunk)))
        return rc;
    sc_args a = {d.B, d.T, d.H, d.K, d.V, o->chunk < d.T ? o->chunk : d.T, 0, 0, 1.0f, 0, 0, 0, 0, q, k, v, NULL, NULL,
                 S0, NULL, NULL, NULL, NULL, NULL, NULL};
    sc_grads g = {dout, dS1, NULL, dq, dk, dv, NULL, NULL, dS0, NULL, NULL};
    return with_work(op, &a, work, 1, backward_stages, &g);
}

/* SSD's arguments as on the CPU; A is read back to check A < 0. */
int cu_check_ssd_in(const char *op, sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in)
{
    int rc;
    if ((rc = sq_check_dims(op, d)) || (rc = sq_check_ptr(op, "in", in)) || (rc = sq_check_chunk(op, o->chunk)))
        return rc;
    if ((rc = sq_check_ptr(op, "x", in->x)) || (rc = sq_check_ptr(op, "Bm", in->Bm)) ||
        (rc = sq_check_ptr(op, "Cm", in->Cm)) || (rc = sq_check_ptr(op, "dt", in->dt)) ||
        (rc = sq_check_ptr(op, "dt_bias", in->dt_bias)) || (rc = sq_check_ptr(op, "A", in->A)) ||
        (rc = sq_check_ptr(op, "D", in->D)))
        return rc;
    if (o->ngroups < 1 || d.H % o->ngroups)
        return sq_fail(SQ_EINVAL, "%s: ngroups must be >= 1 and divide H = %d, got %d", op, d.H, o->ngroups);
    float *A = (float *)malloc((size_t)d.H * sizeof(float));
    if (!A) return sq_fail(SQ_ENOMEM, "%s: out of memory", op);
    rc = sq_cuda_download(A, in->A, d.H);
    for (int h = 0; !rc && h < d.H; h++)
        if (!(A[h] < 0)) rc = sq_fail(SQ_EINVAL, "%s: A[%d] = %g but A must be < 0 (keep A = -exp(A_log))", op, h, A[h]);
    free(A);
    return rc;
}

static sc_args ssd_args(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in, const float *S0, float *y, float *S1)
{
    sc_args a = {d.B, d.T, d.H, d.K, d.V, o->chunk < d.T ? o->chunk : d.T, 0, 0, 1.0f, 0, 0, 0, 0,
                 in->Cm, in->Bm, in->x, NULL, NULL, S0, NULL, NULL, y, S1, NULL, NULL,
                 1, o->ngroups, in->dt, in->dt_bias, in->A, in->D};
    return a;
}

extern "C" int sq_cuda_ssd_fwd(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in, const float *S0, float *y, float *S1,
                               float *work)
{
    const char *op = "cuda ssd fwd";
    sq_ssd_opts def = sq_ssd_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = cu_check_ssd_in(op, d, o, in)) || (rc = sq_check_ptr(op, "y", y))) return rc;
    sc_args a = ssd_args(d, o, in, S0, y, S1);
    return sc_forward(op, &a, work);
}

extern "C" int sq_cuda_ssd_bwd(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in, const float *S0, const float *dy,
                               const float *dS1, sq_ssd_grad *gr, float *dS0, float *work)
{
    const char *op = "cuda ssd bwd";
    sq_ssd_opts def = sq_ssd_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = cu_check_ssd_in(op, d, o, in)) || (rc = sq_check_ptr(op, "dy", dy)) || (rc = sq_check_ptr(op, "g", gr)))
        return rc;
    if ((rc = sq_check_ptr(op, "g->dx", gr->dx)) || (rc = sq_check_ptr(op, "g->dBm", gr->dBm)) ||
        (rc = sq_check_ptr(op, "g->dCm", gr->dCm)) || (rc = sq_check_ptr(op, "g->ddt", gr->ddt)) ||
        (rc = sq_check_ptr(op, "g->ddt_bias", gr->ddt_bias)) || (rc = sq_check_ptr(op, "g->dA", gr->dA)) ||
        (rc = sq_check_ptr(op, "g->dD", gr->dD)))
        return rc;
    sc_args a = ssd_args(d, o, in, S0, NULL, NULL);
    sc_grads g = {dy, dS1, NULL, gr->dCm, gr->dBm, gr->dx, NULL, NULL, dS0, NULL, NULL,
                  gr->ddt, gr->ddt_bias, gr->dA, gr->dD};
    return with_work(op, &a, work, 1, backward_stages, &g);
}

/* ---- the fused bf16 forward (scalar_chunk_bf16.cu) -------------------------- */

extern "C" int sq_cuda_scalar_fused_bf16(sq_dims d, int chunk)
{
    return chunk == 64 && d.T >= 64 && d.K % 8 == 0 && d.K <= 128 && d.V % 64 == 0;
}

/* The backward holds a whole chunk's V and dH, and its states, in shared memory: V <= 128. */
extern "C" int sq_cuda_scalar_fused_bf16_bwd(sq_dims d, int chunk)
{
    return sq_cuda_scalar_fused_bf16(d, chunk) && d.V <= 128;
}

/* Runs the fused stages at chunk 64 (the workspace carved for it: T >= 64 keeps it inside the float32 one). */
static int fused_forward(const char *op, sc_args *a, float *work)
{
    a->L = 64;
    return with_work(op, a, work, 0, cu_scalar_fused_stages, NULL);
}

int cu_mlstm_fwd_fused(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in_bf16 *in, const sq_mlstm_state *s0,
                       sq_bf16 *out, sq_mlstm_state *s1, float *work)
{
    const char *op = "cuda mlstm fwd bf16";
    int rc = check_mlstm_in(op, d, o, in->q, in->k, in->v, in->igate, in->fgate, s0);
    if (rc) return rc;
    sc_args a = {d.B, d.T, d.H, d.K, d.V, 64, 0, 0, 1.0f / sqrtf((float)d.K), 1, 1, 1,
                 o->exp_forget, NULL, NULL, NULL, in->igate, in->fgate,
                 s0 ? s0->S : NULL, s0 ? s0->n : NULL, s0 ? s0->m : NULL, NULL,
                 s1 ? s1->S : NULL, s1 ? s1->n : NULL, s1 ? s1->m : NULL};
    a.qb = in->q, a.kb = in->k, a.vb = in->v, a.outb = out;
    return fused_forward(op, &a, work);
}

int cu_linattn_fwd_fused(sq_dims d, const sq_linattn_opts *o, const sq_bf16 *q, const sq_bf16 *k, const sq_bf16 *v,
                         const float *S0, sq_bf16 *out, float *S1, float *work)
{
    sc_args a = {d.B, d.T, d.H, d.K, d.V, 64, 0, 0, 1.0f, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL,
                 S0, NULL, NULL, NULL, S1, NULL, NULL};
    a.qb = q, a.kb = k, a.vb = v, a.outb = out;
    return fused_forward("cuda linattn fwd bf16", &a, work);
}

int cu_ssd_fwd_fused(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in_bf16 *in, const float *S0, sq_bf16 *y,
                     float *S1, float *work)
{
    const char *op = "cuda ssd fwd bf16";
    sq_ssd_in fin = {(const float *)in->x, (const float *)in->Bm, (const float *)in->Cm, in->dt, in->dt_bias, in->A, in->D};
    int rc = cu_check_ssd_in(op, d, o, &fin); /* the bf16 pointers are only tested for NULL there */
    if (rc) return rc;
    sc_args a = ssd_args(d, o, &fin, S0, NULL, S1);
    a.q = a.k = a.v = NULL;
    a.qb = in->Cm, a.kb = in->Bm, a.vb = in->x, a.outb = y;
    return fused_forward(op, &a, work);
}

/* ---- the fused bf16 backward (scalar_chunk_bf16.cu) ------------------------- */

/* The fused stages, then the float32 path's tails: SSD's group sums (rounded to bf16; where heads share
 * a group) and per-step and per-head gradients, or the mLSTM's gate and dm0 gradients. */
static int fused_backward_stages(const char *op, const sc_args *a, const sc_work &w, const void *ctx)
{
    const sc_grads *g = (const sc_grads *)ctx;
    int rc = cu_scalar_fused_bwd_stages(op, a, w, g);
    if (rc) return rc;
    if (!a->ssd) return mlstm_tail(op, a, w, g);
    if (a->G != a->H) /* with a group per head, chunk_grads wrote dB and dC itself */
        ssd_group_grads<<<blocks_for((size_t)a->B * a->T * a->G * a->K), 256>>>(*a, w, a->dkb, a->dqb);
    return ssd_tail(op, a, w, g, NULL, NULL);
}

static int fused_backward(const char *op, sc_args *a, const sc_grads *g, float *work)
{
    a->L = 64;
    return with_work(op, a, work, 1, fused_backward_stages, g);
}

int cu_mlstm_bwd_fused(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in_bf16 *in, const sq_mlstm_state *s0,
                       const sq_bf16 *dout, const sq_mlstm_state *ds1, sq_mlstm_grad_bf16 *gr, sq_mlstm_state *ds0,
                       float *work)
{
    const char *op = "cuda mlstm bwd bf16";
    int rc = check_mlstm_in(op, d, o, in->q, in->k, in->v, in->igate, in->fgate, s0);
    if (rc) return rc;
    if ((rc = sq_check_ptr(op, "g->digate", gr->digate)) || (rc = sq_check_ptr(op, "g->dfgate", gr->dfgate))) return rc;
    if (ds0 && (!ds0->S || !ds0->n || !ds0->m))
        return sq_fail(SQ_EINVAL, "%s: ds0 needs all of S, n and m (or pass NULL)", op);
    if (ds1 && (!ds1->S || !ds1->n)) return sq_fail(SQ_EINVAL, "%s: ds1 needs S and n (or pass NULL)", op);
    sc_args a = {d.B, d.T, d.H, d.K, d.V, 64, 0, 0, 1.0f / sqrtf((float)d.K), 1, 1, 1,
                 o->exp_forget, NULL, NULL, NULL, in->igate, in->fgate,
                 s0 ? s0->S : NULL, s0 ? s0->n : NULL, s0 ? s0->m : NULL, NULL, NULL, NULL, NULL};
    a.qb = in->q, a.kb = in->k, a.vb = in->v, a.dob = dout, a.dqb = gr->dq, a.dkb = gr->dk, a.dvb = gr->dv;
    sc_grads g = {NULL, ds1 ? ds1->S : NULL, ds1 ? ds1->n : NULL, NULL, NULL, NULL, gr->digate, gr->dfgate,
                  ds0 ? ds0->S : NULL, ds0 ? ds0->n : NULL, ds0 ? ds0->m : NULL};
    return fused_backward(op, &a, &g, work);
}

int cu_linattn_bwd_fused(sq_dims d, const sq_linattn_opts *o, const sq_bf16 *q, const sq_bf16 *k, const sq_bf16 *v,
                         const float *S0, const sq_bf16 *dout, const float *dS1, sq_bf16 *dq, sq_bf16 *dk,
                         sq_bf16 *dv, float *dS0, float *work)
{
    (void)o;
    sc_args a = {d.B, d.T, d.H, d.K, d.V, 64, 0, 0, 1.0f, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL,
                 S0, NULL, NULL, NULL, NULL, NULL, NULL};
    a.qb = q, a.kb = k, a.vb = v, a.dob = dout, a.dqb = dq, a.dkb = dk, a.dvb = dv;
    sc_grads g = {NULL, dS1, NULL, NULL, NULL, NULL, NULL, NULL, dS0, NULL, NULL};
    return fused_backward("cuda linattn bwd bf16", &a, &g, work);
}

int cu_ssd_bwd_fused(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in_bf16 *in, const float *S0, const sq_bf16 *dy,
                     const float *dS1, sq_ssd_grad_bf16 *gr, float *dS0, float *work)
{
    const char *op = "cuda ssd bwd bf16";
    sq_ssd_in fin = {(const float *)in->x, (const float *)in->Bm, (const float *)in->Cm, in->dt, in->dt_bias, in->A, in->D};
    int rc = cu_check_ssd_in(op, d, o, &fin); /* the bf16 pointers are only tested for NULL there */
    if (rc) return rc;
    if ((rc = sq_check_ptr(op, "g->ddt", gr->ddt)) || (rc = sq_check_ptr(op, "g->ddt_bias", gr->ddt_bias)) ||
        (rc = sq_check_ptr(op, "g->dA", gr->dA)) || (rc = sq_check_ptr(op, "g->dD", gr->dD)))
        return rc;
    sc_args a = ssd_args(d, o, &fin, S0, NULL, NULL);
    a.q = a.k = a.v = NULL;
    a.qb = in->Cm, a.kb = in->Bm, a.vb = in->x, a.dob = dy, a.dqb = gr->dCm, a.dkb = gr->dBm, a.dvb = gr->dx;
    sc_grads g = {NULL, dS1, NULL, NULL, NULL, NULL, NULL, NULL, dS0, NULL, NULL,
                  gr->ddt, gr->ddt_bias, gr->dA, gr->dD};
    return fused_backward(op, &a, &g, work);
}
