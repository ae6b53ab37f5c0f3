/* The sLSTM cell (src/ops/slstm.h) on the GPU, float32 storage with the
 * gate arithmetic in double, as on the CPU. Per (batch b, head h), cells
 * j < K, gates g ∈ {i, f, z, o} (rows r = g·K + j of the 4K pre-activations):
 *   p_t = gx_t + R_h h_{t-1} + b_h
 *   m_t = max(log f_t + m_{t-1}, p_i)  (m_t = p_i when n_{t-1} = 0)
 *   c_t = f' c_{t-1} + i' z,  n_t = f' n_{t-1} + i',  h_t = σ(p_o) c_t / n_t
 * The recurrence is sequential in t, so every kernel is one thread block per
 * (b, h) walking t, with NT threads: thread r owns pre-activation row r
 * (up to RPT ≤ 4 rows when 4K > 1024), thread j < K owns cell j, and
 * h_{t-1} (forward) or dp_t (backward) is shared through shared memory.
 *
 * Forward (per step, two barriers):
 *   A: p[r] = Σ_l Rᵀ[l][r] h_{t-1}[l] + (gx[r] + b[r])     Rᵀ [K][4K], in shared memory when it fits
 *   B: cell j: (c, n, m) ← cell(p, c, n, m), h_t[j] written to shared memory and out.
 * Backward (m held constant, as on the CPU): the forward is recomputed into
 * the workspace (P, C, N, M per step, and H_{t-1} in [B,T,H,K]), then per
 * block t = T-1..0:
 *   B': cell j: dh = (R_hᵀ dp_{t+1})[j] + dout_t[j] (or ds1.h at t = T-1);
 *       dp = ∂cell/∂p, carries dc, dn ← ·f'; dgx_t = dp; Σ_t dp for dbias.
 *   A': partial sums of (R_hᵀ dp_t)[l] over P = NT/K slices of the rows.
 * dR_h = Σ_{b,t} dp_{b,t}ᵀ h_{b,t-1} is one strided-batched GEMM over the
 * heads (cuBLAS, float32); dbias sums the blocks' per-(b,h) double partials
 * over b in a fixed order (deterministic, no atomics).
 * The decode step reads R in its own layout, one warp per row. */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>

#include "cuda.h"
#include "cuda_internal.h"

enum { SL_MAX_K = 1024, SL_MAX_RPT = 4 };

/* ---- the cell, in double (mirrors src/ops/slstm.c) ---- */

__device__ static double sl_logsigmoid(double x) { return (x < 0 ? x : 0) - log1p(exp(-fabs(x))); }
__device__ static double sl_sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }

typedef struct {
    double i, f, z, o; /* i', f', z, σ(p_o) */
    double c, n, m, h;
} sl_cell;

/* One cell's update from its four pre-activations p4 = (p_i, p_f, p_z, p_o). */
__device__ static sl_cell sl_cell_fwd(const float p4[4], int exp_forget, double c0, double n0, double m0)
{
    sl_cell r;
    double pi = p4[0], pf = p4[1];
    double lf = exp_forget ? pf : sl_logsigmoid(pf);
    r.m = n0 == 0 ? pi : fmax(lf + m0, pi); /* stabilizer; an empty state takes m = p_i */
    r.i = exp(pi - r.m);
    r.f = n0 == 0 ? 0 : exp(lf + m0 - r.m);
    r.z = tanh((double)p4[2]);
    r.o = sl_sigmoid(p4[3]);
    r.c = r.f * c0 + r.i * r.z;
    r.n = r.f * n0 + r.i;
    r.h = r.o * r.c / r.n;
    return r;
}

/* Backward of one cell step at fixed m: given the total dh and the carried
 * dc, dn (updated to the carries into t-1), writes dp4. */
__device__ static void sl_cell_bwd(const float p4[4], int exp_forget, double c0, double n0, double m0, double dh,
                                   float *dc, float *dn, float dp4[4])
{
    sl_cell r = sl_cell_fwd(p4, exp_forget, c0, n0, m0);
    /* h = σ(p_o) c / n */
    dp4[3] = (float)(dh * r.c / r.n * r.o * (1 - r.o));
    double dcc = *dc + dh * r.o / r.n, dnn = *dn - dh * r.o * r.c / (r.n * r.n);
    /* c = f' c0 + i' z, n = f' n0 + i', i' = e^{p_i - m}, f' = e^{lf + m0 - m} */
    dp4[2] = (float)(dcc * r.i * (1 - r.z * r.z));
    dp4[0] = (float)((dcc * r.z + dnn) * r.i);
    double dlf = (dcc * c0 + dnn * n0) * r.f;
    dp4[1] = (float)(exp_forget ? dlf : dlf * sl_sigmoid(-(double)p4[1]));
    *dc = (float)(dcc * r.f);
    *dn = (float)(dnn * r.f);
}

/* ---- launch shape ---- */

/* Rows of the 4K pre-activations per thread (≤ 4 for K ≤ 1024). */
static int sl_rpt(int K) { return (4 * K + 1023) / 1024; }
/* Threads per block: ceil(4K / rpt) rounded up to a warp; always >= K. */
static int sl_threads(int K)
{
    int rpt = sl_rpt(K), n = (4 * K + rpt - 1) / rpt;
    return (n + 31) / 32 * 32;
}

/* ---- forward ---- */

typedef struct {
    int B, T, H, K, exp_forget, rpt;
    const float *gx, *bias, *Rt;         /* Rt [H][K][4K] = R_hᵀ */
    const float *c0, *n0, *m0, *h0;      /* initial state, or all NULL (zero) */
    float *out;                          /* [B,T,H,K] or NULL */
    float *c1, *n1, *m1, *h1;            /* final state or NULL (m1 may be NULL alone) */
    float *P, *C, *N, *M, *Hs;           /* saves for the backward, or NULL */
} sl_fwd_args;

/* Σ_l Rt[l][r] h[l], four accumulators for latency. */
__device__ static float sl_dot_col(const float *Rt, int F, int K, int r, const float *h)
{
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int l = 0;
    for (; l + 4 <= K; l += 4) {
        a0 = fmaf(Rt[l * F + r], h[l], a0);
        a1 = fmaf(Rt[(l + 1) * F + r], h[l + 1], a1);
        a2 = fmaf(Rt[(l + 2) * F + r], h[l + 2], a2);
        a3 = fmaf(Rt[(l + 3) * F + r], h[l + 3], a3);
    }
    for (; l < K; l++) a0 = fmaf(Rt[l * F + r], h[l], a0);
    return (a0 + a1) + (a2 + a3);
}

/* xg[k] = gx_t[r] + b[r] for this thread's rows r = tid + k·NT. */
__device__ static void sl_load_x(const sl_fwd_args &a, int b, int h, int t, const float bv[SL_MAX_RPT],
                                 float xg[SL_MAX_RPT])
{
    int F = 4 * a.K;
    const float *gx = a.gx + (((size_t)b * a.T + t) * a.H + h) * F;
#pragma unroll
    for (int k = 0; k < SL_MAX_RPT; k++) {
        int r = threadIdx.x + k * blockDim.x;
        if (k < a.rpt && r < F) xg[k] = gx[r] + bv[k];
    }
}

/* One block per (b, h). Shared memory: p [4K], h [K], then Rᵀ [K·4K] when SMEM. */
template <bool SMEM>
__global__ static void __launch_bounds__(1024) sl_fwd_kernel(sl_fwd_args a)
{
    extern __shared__ float sl_sm[];
    int K = a.K, F = 4 * K, T = a.T, tid = threadIdx.x, NT = blockDim.x;
    int bh = blockIdx.x, b = bh / a.H, h = bh % a.H;
    float *p_s = sl_sm, *h_s = sl_sm + F;
    const float *Rt = a.Rt + (size_t)h * K * F;
    if (SMEM) {
        float *r_s = sl_sm + F + K;
        for (int i = tid; i < K * F; i += NT) r_s[i] = Rt[i];
        Rt = r_s;
    }
    size_t si = (size_t)bh * K + tid; /* state [B,H,K] */
    float c = 0, n = 0, m = 0;
    if (tid < K) {
        if (a.c0) c = a.c0[si], n = a.n0[si], m = a.m0[si];
        h_s[tid] = a.h0 ? a.h0[si] : 0.0f;
    }
    float bv[SL_MAX_RPT] = {0, 0, 0, 0}, xg[SL_MAX_RPT] = {0, 0, 0, 0};
#pragma unroll
    for (int k = 0; k < SL_MAX_RPT; k++) {
        int r = tid + k * NT;
        if (k < a.rpt && r < F) bv[k] = a.bias[(size_t)h * F + r];
    }
    sl_load_x(a, b, h, 0, bv, xg);
    __syncthreads();
    for (int t = 0; t < T; t++) {
        /* A: p = Rh h_{t-1} + (gx + b) */
#pragma unroll
        for (int k = 0; k < SL_MAX_RPT; k++) {
            int r = tid + k * NT;
            if (k < a.rpt && r < F) {
                float p = sl_dot_col(Rt, F, K, r, h_s) + xg[k];
                p_s[r] = p;
                if (a.P) a.P[((size_t)bh * T + t) * F + r] = p;
            }
        }
        if (t + 1 < T) sl_load_x(a, b, h, t + 1, bv, xg); /* prefetch the next step's input */
        __syncthreads();
        /* B: the cells */
        if (tid < K) {
            float p4[4] = {p_s[tid], p_s[K + tid], p_s[2 * K + tid], p_s[3 * K + tid]};
            sl_cell r = sl_cell_fwd(p4, a.exp_forget, c, n, m);
            c = (float)r.c, n = (float)r.n, m = (float)r.m;
            float hn = (float)r.h;
            size_t ti = ((size_t)bh * T + t) * K + tid, oi = (((size_t)b * T + t) * a.H + h) * K + tid;
            if (a.C) a.C[ti] = c, a.N[ti] = n, a.M[ti] = m;
            if (a.Hs) a.Hs[oi] = h_s[tid]; /* h_{t-1} */
            if (a.out) a.out[oi] = hn;
            h_s[tid] = hn;
        }
        __syncthreads();
    }
    if (tid < K) {
        if (a.c1) a.c1[si] = c, a.n1[si] = n, a.h1[si] = h_s[tid];
        if (a.m1) a.m1[si] = m;
    }
}

/* The device's opt-in shared memory per block, in bytes. */
static int sl_smem_limit(const char *op, size_t *bytes)
{
    int dev = 0, v = 0, rc;
    if ((rc = cu_check(op, cudaGetDevice(&dev))) ||
        (rc = cu_check(op, cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev))))
        return rc;
    *bytes = (size_t)v;
    return SQ_OK;
}

static int sl_launch_fwd(const char *op, const sl_fwd_args *a)
{
    int K = a->K, F = 4 * K, NT = sl_threads(K);
    size_t base = (size_t)(F + K) * sizeof(float), full = base + (size_t)K * F * sizeof(float), limit = 0;
    int rc = sl_smem_limit(op, &limit);
    if (rc) return rc;
    unsigned grid = (unsigned)(a->B * a->H);
    if (full <= limit) {
        if ((rc = cu_check(op, cudaFuncSetAttribute(sl_fwd_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                    (int)full))))
            return rc;
        sl_fwd_kernel<true><<<grid, NT, full>>>(*a);
    } else {
        sl_fwd_kernel<false><<<grid, NT, base>>>(*a);
    }
    return cu_check(op, cudaGetLastError());
}

/* Rt[h][l][r] = R[h][r][l]. */
__global__ static void sl_transpose(const float *R, float *Rt, int H, int K)
{
    size_t F = 4 * (size_t)K, n = (size_t)H * K * F;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t h = i / (K * F), rem = i % (K * F), l = rem / F, r = rem % F;
        Rt[i] = R[(h * F + r) * K + l];
    }
}

static unsigned sl_blocks(size_t n, size_t per)
{
    size_t b = (n + per - 1) / per;
    return (unsigned)(b < 4096 ? (b ? b : 1) : 4096);
}

/* ---- workspace ---- */


typedef struct {
    float *Rt, *P, *C, *N, *M, *Hs;
    double *dbias; /* [B·H][4K] per-block partial sums */
} sl_work;

/* Floats of the forward's part (Rᵀ) and of the whole (the backward's). */
static size_t sl_fwd_floats(sq_dims d) { return cu_r64((size_t)d.H * 4 * d.K * d.K); }
static size_t sl_bwd_floats(sq_dims d)
{
    size_t bht = (size_t)d.B * d.H * d.T, F = 4 * (size_t)d.K;
    return sl_fwd_floats(d) + cu_r64(bht * F) + 4 * cu_r64(bht * d.K) + cu_r64(2 * (size_t)d.B * d.H * F);
}

static sl_work sl_carve(sq_dims d, float *p, int bwd)
{
    sl_work w = {NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t bht = (size_t)d.B * d.H * d.T, F = 4 * (size_t)d.K;
    w.Rt = p, p += sl_fwd_floats(d);
    if (!bwd) return w;
    w.P = p, p += cu_r64(bht * F);
    w.C = p, p += cu_r64(bht * d.K);
    w.N = p, p += cu_r64(bht * d.K);
    w.M = p, p += cu_r64(bht * d.K);
    w.Hs = p, p += cu_r64(bht * d.K);
    w.dbias = (double *)p;
    return w;
}

extern "C" size_t sq_cuda_slstm_work_floats(sq_dims d, const sq_slstm_opts *o)
{
    if (d.B < 1 || d.T < 1 || d.H < 1 || d.K < 1) return 0;
    return sl_bwd_floats(d);
}

/* ---- argument checks (as the CPU's, plus K <= 1024) ---- */

static int sl_check_in(const char *op, sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in)
{
    int rc;
    if ((rc = sq_check_dims(op, d)) || (rc = sq_check_ptr(op, "in", in)) || (rc = sq_check_ptr(op, "gx", in->gx)) ||
        (rc = sq_check_ptr(op, "R", in->R)) || (rc = sq_check_ptr(op, "bias", in->bias)))
        return rc;
    if (d.K != d.V) return sq_fail(SQ_EINVAL, "%s: sLSTM cells need K == V (the head size), got K=%d V=%d", op, d.K, d.V);
    if (d.K > SL_MAX_K) return sq_fail(SQ_EINVAL, "%s: the GPU sLSTM takes K <= %d, got K=%d", op, SL_MAX_K, d.K);
    if (o->exp_forget != 0 && o->exp_forget != 1)
        return sq_fail(SQ_EINVAL, "%s: exp_forget must be 0 or 1, got %d", op, o->exp_forget);
    return SQ_OK;
}

static int sl_check_state(const char *op, const char *name, const sq_slstm_state *s, int need_m)
{
    if (s && (!s->c || !s->n || !s->h || (need_m && !s->m)))
        return sq_fail(SQ_EINVAL, "%s: %s needs c, n, m and h (or pass NULL)", op, name);
    return SQ_OK;
}

/* A workspace of n floats: the caller's, or a fresh one in *owned. */
static int sl_work_or_alloc(const char *op, float *work, size_t n, float **ws, float **owned)
{
    *owned = NULL;
    *ws = work;
    if (work) return SQ_OK;
    int rc = sq_cuda_malloc(owned, n);
    if (rc) return rc;
    *ws = *owned;
    return SQ_OK;
}

/* Frees an owned workspace after the device is done with it; keeps the first error. */
static int sl_release(const char *op, float *owned, int rc)
{
    if (!owned) return rc;
    int e = cu_check(op, cudaDeviceSynchronize());
    sq_cuda_free(owned);
    return rc ? rc : e;
}

static sl_fwd_args sl_fwd_setup(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in, const sq_slstm_state *s0,
                                const float *Rt)
{
    sl_fwd_args a;
    a.B = d.B, a.T = d.T, a.H = d.H, a.K = d.K, a.exp_forget = o->exp_forget, a.rpt = sl_rpt(d.K);
    a.gx = in->gx, a.bias = in->bias, a.Rt = Rt;
    a.c0 = s0 ? s0->c : NULL, a.n0 = s0 ? s0->n : NULL, a.m0 = s0 ? s0->m : NULL, a.h0 = s0 ? s0->h : NULL;
    a.out = NULL, a.c1 = a.n1 = a.m1 = a.h1 = NULL;
    a.P = a.C = a.N = a.M = a.Hs = NULL;
    return a;
}

static int sl_transpose_R(const char *op, sq_dims d, const float *R, float *Rt)
{
    size_t n = (size_t)d.H * 4 * d.K * d.K;
    sl_transpose<<<sl_blocks(n, 256), 256>>>(R, Rt, d.H, d.K);
    return cu_check(op, cudaGetLastError());
}

extern "C" int sq_cuda_slstm_fwd(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in, const sq_slstm_state *s0,
                                 float *out, sq_slstm_state *s1, float *work)
{
    const char *op = "cuda slstm fwd";
    sq_slstm_opts def = sq_slstm_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sl_check_in(op, d, o, in)) || (rc = sq_check_ptr(op, "out", out)) ||
        (rc = sl_check_state(op, "s0", s0, 1)) || (rc = sl_check_state(op, "s1", s1, 0)))
        return rc;
    float *ws, *owned;
    if ((rc = sl_work_or_alloc(op, work, sl_fwd_floats(d), &ws, &owned))) return rc;
    sl_work w = sl_carve(d, ws, 0);
    sl_fwd_args a = sl_fwd_setup(d, o, in, s0, w.Rt);
    a.out = out;
    if (s1) a.c1 = s1->c, a.n1 = s1->n, a.m1 = s1->m, a.h1 = s1->h;
    if (!(rc = sl_transpose_R(op, d, in->R, w.Rt))) rc = sl_launch_fwd(op, &a);
    return sl_release(op, owned, rc);
}

/* ---- backward ---- */

typedef struct {
    int B, T, H, K, exp_forget;
    const float *R;                     /* [H][4K][K] */
    const float *c0, *n0, *m0;          /* initial state or NULL (zero) */
    const float *dout;                  /* [B,T,H,K] */
    const float *dc1, *dn1, *dh1;       /* final-state gradient or NULL (zero) */
    const float *P, *C, *N, *M;         /* the forward's saves */
    float *dgx;                         /* [B,T,H,4K] */
    double *dbias;                      /* [B·H][4K] partials */
    float *dc0, *dn0, *dm0, *dh0;       /* initial-state gradient or NULL */
} sl_bwd_args;

/* What cell j needs at step t: p_t, dout_t and the state before t. */
typedef struct {
    float p[4], dout, c0, n0, m0;
} sl_bw_in;

__device__ static sl_bw_in sl_load_bw(const sl_bwd_args &a, int bh, int t, int j)
{
    int K = a.K, b = bh / a.H, h = bh % a.H;
    sl_bw_in v;
    const float *P = a.P + ((size_t)bh * a.T + t) * 4 * K;
    for (int g = 0; g < 4; g++) v.p[g] = P[g * K + j];
    v.dout = a.dout[(((size_t)b * a.T + t) * a.H + h) * K + j];
    if (t > 0) {
        size_t i = ((size_t)bh * a.T + t - 1) * K + j;
        v.c0 = a.C[i], v.n0 = a.N[i], v.m0 = a.M[i];
    } else {
        size_t si = (size_t)bh * K + j;
        v.c0 = a.c0 ? a.c0[si] : 0.0f, v.n0 = a.c0 ? a.n0[si] : 0.0f, v.m0 = a.c0 ? a.m0[si] : 0.0f;
    }
    return v;
}

/* (R_hᵀ dp)[l] over rows r ≡ q (mod P), two accumulators. */
__device__ static float sl_dot_rows(const float *R, const float *dp, int K, int F, int l, int q, int P)
{
    float a0 = 0, a1 = 0;
    int r = q;
    for (; r + P < F; r += 2 * P) {
        a0 = fmaf(R[r * K + l], dp[r], a0);
        a1 = fmaf(R[(r + P) * K + l], dp[r + P], a1);
    }
    if (r < F) a0 = fmaf(R[r * K + l], dp[r], a0);
    return a0 + a1;
}

/* One block per (b, h). Shared memory: dp [4K], partial dh [NT], then R_h [4K·K] when SMEM. */
template <bool SMEM>
__global__ static void __launch_bounds__(1024) sl_bwd_kernel(sl_bwd_args a)
{
    extern __shared__ float sl_sm[];
    int K = a.K, F = 4 * K, T = a.T, tid = threadIdx.x, NT = blockDim.x;
    int bh = blockIdx.x, b = bh / a.H, h = bh % a.H, P = NT / K; /* NT >= K */
    float *dp_s = sl_sm, *part_s = sl_sm + F;
    const float *R = a.R + (size_t)h * F * K;
    if (SMEM) {
        float *r_s = sl_sm + F + NT;
        for (int i = tid; i < K * F; i += NT) r_s[i] = R[i];
        R = r_s;
    }
    size_t si = (size_t)bh * K + tid;
    float dc = 0, dn = 0;
    double db[4] = {0, 0, 0, 0};
    if (tid < P * K) part_s[tid] = tid < K && a.dh1 ? a.dh1[si] : 0.0f; /* dh_T = ds1.h */
    if (tid < K && a.dc1) dc = a.dc1[si], dn = a.dn1[si];
    sl_bw_in cur = {{0, 0, 0, 0}, 0, 0, 0, 0};
    if (tid < K) cur = sl_load_bw(a, bh, T - 1, tid);
    sl_bw_in nxt = cur;
    __syncthreads();
    for (int t = T - 1; t >= 0; t--) {
        /* B': the cells, dh = (R_hᵀ dp_{t+1})[j] + dout_t[j] */
        if (tid < K) {
            if (t > 0) nxt = sl_load_bw(a, bh, t - 1, tid); /* prefetch */
            float carry = 0;
            for (int q = 0; q < P; q++) carry += part_s[q * K + tid];
            float dp4[4];
            sl_cell_bwd(cur.p, a.exp_forget, cur.c0, cur.n0, cur.m0, (double)carry + cur.dout, &dc, &dn, dp4);
            float *dgx = a.dgx + (((size_t)b * T + t) * a.H + h) * F;
            for (int g = 0; g < 4; g++) {
                dp_s[g * K + tid] = dp4[g];
                dgx[g * K + tid] = dp4[g];
                db[g] += dp4[g];
            }
            cur = nxt;
        }
        __syncthreads();
        /* A': part[q][l] = Σ_{r ≡ q mod P} R[r][l] dp[r] */
        if (tid < P * K) part_s[tid] = sl_dot_rows(R, dp_s, K, F, tid % K, tid / K, P);
        __syncthreads();
    }
    if (tid < K) {
        for (int g = 0; g < 4; g++) a.dbias[(size_t)bh * F + g * K + tid] = db[g];
        if (a.dc0) {
            float dh = 0;
            for (int q = 0; q < P; q++) dh += part_s[q * K + tid];
            a.dc0[si] = dc, a.dn0[si] = dn, a.dh0[si] = dh;
            /* the initial state enters as c̄0 e^{m0}, n̄0 e^{m0} */
            a.dm0[si] = a.c0 ? (float)((double)dc * a.c0[si] + (double)dn * a.n0[si]) : 0.0f;
        }
    }
}

static int sl_launch_bwd(const char *op, const sl_bwd_args *a)
{
    int K = a->K, F = 4 * K, NT = sl_threads(K);
    size_t base = (size_t)(F + NT) * sizeof(float), full = base + (size_t)K * F * sizeof(float), limit = 0;
    int rc = sl_smem_limit(op, &limit);
    if (rc) return rc;
    unsigned grid = (unsigned)(a->B * a->H);
    if (full <= limit) {
        if ((rc = cu_check(op, cudaFuncSetAttribute(sl_bwd_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                    (int)full))))
            return rc;
        sl_bwd_kernel<true><<<grid, NT, full>>>(*a);
    } else {
        sl_bwd_kernel<false><<<grid, NT, base>>>(*a);
    }
    return cu_check(op, cudaGetLastError());
}

/* dbias[h][r] = Σ_b part[b][h][r], b in order. */
__global__ static void sl_dbias_reduce(const double *part, float *dbias, int B, int HF)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= HF) return;
    double s = 0;
    for (int b = 0; b < B; b++) s += part[(size_t)b * HF + i];
    dbias[i] = (float)s;
}

/* dR_h = Σ_{b,t} dp_{b,t}ᵀ h_{b,t-1}: in column-major terms dR_hᵀ (K × 4K) =
 * Hp_h (K × BT, ld H·K) · dP_h (4K × BT, ld H·4K)ᵀ, batched over h. */
static int sl_dR_gemm(const char *op, sq_dims d, const float *Hs, const float *dgx, float *dR)
{
    cublasHandle_t hd = NULL;
    int rc = cu_cublas(op, &hd);
    if (rc) return rc;
    int K = d.K, F = 4 * K, BT = d.B * d.T;
    float one = 1, zero = 0;
    cublasStatus_t st = cublasSgemmStridedBatched(hd, CUBLAS_OP_N, CUBLAS_OP_T, K, F, BT, &one, Hs, d.H * K,
                                                  (long long)K, dgx, d.H * F, (long long)F, &zero, dR, K,
                                                  (long long)F * K, d.H);
    return st == CUBLAS_STATUS_SUCCESS ? SQ_OK : sq_fail(SQ_EINVAL, "%s: cuBLAS batched GEMM failed (status %d)", op, (int)st);
}

static int sl_bwd_stages(const char *op, sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in,
                         const sq_slstm_state *s0, const float *dout, const sq_slstm_state *ds1, sq_slstm_grad *g,
                         sq_slstm_state *ds0, const sl_work &w)
{
    int rc;
    if ((rc = sl_transpose_R(op, d, in->R, w.Rt))) return rc;
    sl_fwd_args f = sl_fwd_setup(d, o, in, s0, w.Rt);
    f.P = w.P, f.C = w.C, f.N = w.N, f.M = w.M, f.Hs = w.Hs;
    if ((rc = sl_launch_fwd(op, &f))) return rc;
    sl_bwd_args a;
    a.B = d.B, a.T = d.T, a.H = d.H, a.K = d.K, a.exp_forget = o->exp_forget;
    a.R = in->R;
    a.c0 = s0 ? s0->c : NULL, a.n0 = s0 ? s0->n : NULL, a.m0 = s0 ? s0->m : NULL;
    a.dout = dout;
    a.dc1 = ds1 ? ds1->c : NULL, a.dn1 = ds1 ? ds1->n : NULL, a.dh1 = ds1 ? ds1->h : NULL;
    a.P = w.P, a.C = w.C, a.N = w.N, a.M = w.M;
    a.dgx = g->dgx, a.dbias = w.dbias;
    a.dc0 = ds0 ? ds0->c : NULL, a.dn0 = ds0 ? ds0->n : NULL, a.dm0 = ds0 ? ds0->m : NULL, a.dh0 = ds0 ? ds0->h : NULL;
    if ((rc = sl_launch_bwd(op, &a))) return rc;
    if ((rc = sl_dR_gemm(op, d, w.Hs, g->dgx, g->dR))) return rc;
    int HF = d.H * 4 * d.K;
    sl_dbias_reduce<<<(HF + 255) / 256, 256>>>(w.dbias, g->dbias, d.B, HF);
    return cu_check(op, cudaGetLastError());
}

extern "C" int sq_cuda_slstm_bwd(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in, const sq_slstm_state *s0,
                                 const float *dout, const sq_slstm_state *ds1, sq_slstm_grad *g, sq_slstm_state *ds0,
                                 float *work)
{
    const char *op = "cuda slstm bwd";
    sq_slstm_opts def = sq_slstm_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sl_check_in(op, d, o, in)) || (rc = sq_check_ptr(op, "dout", dout)) || (rc = sq_check_ptr(op, "g", g)) ||
        (rc = sl_check_state(op, "s0", s0, 1)) || (rc = sl_check_state(op, "ds1", ds1, 0)) ||
        (rc = sl_check_state(op, "ds0", ds0, 1)))
        return rc;
    if ((rc = sq_check_ptr(op, "g->dgx", g->dgx)) || (rc = sq_check_ptr(op, "g->dR", g->dR)) ||
        (rc = sq_check_ptr(op, "g->dbias", g->dbias)))
        return rc;
    float *ws, *owned;
    if ((rc = sl_work_or_alloc(op, work, sl_bwd_floats(d), &ws, &owned))) return rc;
    rc = sl_bwd_stages(op, d, o, in, s0, dout, ds1, g, ds0, sl_carve(d, ws, 1));
    return sl_release(op, owned, rc);
}

/* ---- decode step ---- */

typedef struct {
    int H, K, exp_forget;
    const float *gx, *R, *bias; /* gx [B,H,4K] */
    float *c, *n, *m, *h, *out;
} sl_step_args;

/* One block per (b, h): p = gx + b + R_h h (one warp per row, in double),
 * then the cells; the state is updated in place. Shared: p [4K], h [K]. */
__global__ static void __launch_bounds__(1024) sl_step_kernel(sl_step_args a)
{
    extern __shared__ float sl_sm[];
    int K = a.K, F = 4 * K, tid = threadIdx.x, lane = tid % 32, warp = tid / 32, nw = blockDim.x / 32;
    int bh = blockIdx.x, h = bh % a.H;
    float *p_s = sl_sm, *h_s = sl_sm + F;
    size_t si = (size_t)bh * K + tid;
    if (tid < K) h_s[tid] = a.h[si];
    __syncthreads();
    const float *R = a.R + (size_t)h * F * K;
    for (int r = warp; r < F; r += nw) {
        double acc = 0;
        for (int l = lane; l < K; l += 32) acc += (double)R[(size_t)r * K + l] * h_s[l];
        for (int s = 16; s > 0; s >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, s);
        if (lane == 0) p_s[r] = (float)((double)a.gx[(size_t)bh * F + r] + a.bias[(size_t)h * F + r] + acc);
    }
    __syncthreads();
    if (tid < K) {
        float p4[4] = {p_s[tid], p_s[K + tid], p_s[2 * K + tid], p_s[3 * K + tid]};
        sl_cell r = sl_cell_fwd(p4, a.exp_forget, a.c[si], a.n[si], a.m[si]);
        float hn = (float)r.h;
        a.c[si] = (float)r.c, a.n[si] = (float)r.n, a.m[si] = (float)r.m;
        a.out[si] = hn;
        a.h[si] = hn;
    }
}

extern "C" int sq_cuda_slstm_step(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in, sq_slstm_state *s,
                                  float *out)
{
    const char *op = "cuda slstm step";
    sq_slstm_opts def = sq_slstm_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sl_check_in(op, d, o, in)) || (rc = sq_check_ptr(op, "out", out)) ||
        (rc = sq_check_ptr(op, "state", s)) || (rc = sl_check_state(op, "state", s, 1)))
        return rc;
    if (d.T != 1) return sq_fail(SQ_EINVAL, "%s: one token at a time (T must be 1, got %d)", op, d.T);
    sl_step_args a = {d.H, d.K, o->exp_forget, in->gx, in->R, in->bias, s->c, s->n, s->m, s->h, out};
    size_t smem = (size_t)5 * d.K * sizeof(float);
    sl_step_kernel<<<(unsigned)(d.B * d.H), sl_threads(d.K), smem>>>(a);
    return cu_check(op, cudaGetLastError());
}
