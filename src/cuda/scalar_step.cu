/* The decode steps of the scalar-gate operators on the GPU (one token, the
 * state updated in place), the same recurrences as the CPU steps:
 *   mLSTM:   m = max(λ + m_prev, ĩ),  f' = e^{λ + m_prev - m},  i' = e^{ĩ - m}
 *            S̄ = f' S̄ + i' k vᵀ (U1),  n̄ = f' n̄ + i' k (U2),
 *            o = S̄ᵀ q̂ / max(|n̄ᵀ q̂|, e^{-m}) (U3),  q̂ = q/√K
 *   linattn: S = S + k vᵀ,  o = Sᵀ q
 *   SSD:     Δ = softplus(Δ̃ + bias_h),  S = e^{Δ A_h} S + Δ B xᵀ,  y = Sᵀ C + D_h x
 * Two kernels: the heads' scalars (and mLSTM's n̄, m), then the state update
 * spread over (batch, head, 32-column tile) blocks. A step moves the whole
 * state once, so it is bound by memory bandwidth. */
#include <cuda_runtime.h>
#include <math.h>

#include "cuda.h"
#include "cuda_internal.h"

enum { STEP_LINATTN, STEP_MLSTM, STEP_SSD };
enum { STEP_THREADS = 128 };

typedef struct {
    int kind, B, H, K, V, G, exp_forget;
    const float *q, *k, *v;      /* SSD: q = C, k = B (per group), v = x */
    const float *ig, *fg;        /* mLSTM gates ĩ, f̃ [B,H] */
    const float *dt, *dt_bias, *A, *D; /* SSD */
    float *S, *n, *m, *out;
} step_args;

__device__ static double step_log_sigmoid(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
__device__ static double step_softplus(double x) { return x > 20 ? x : log1p(exp(x)); }

/* The head's scalars: decay f (S ← f S), write scale w (k ← w k), output
 * scale of q, and for mLSTM the new stabilizer (written back) and the
 * divisor floor e^{-m}. */
__device__ static void head_scalars(const step_args *a, int bh, float *f, float *w, float *qs, float *floor_)
{
    int h = bh % a->H;
    *f = 1, *w = 1, *qs = 1, *floor_ = 0;
    if (a->kind == STEP_MLSTM) {
        double fg = a->fg[bh], ig = a->ig[bh], lam = a->exp_forget ? fg : step_log_sigmoid(fg);
        double m_new = fmax(lam + a->m[bh], ig);
        *f = (float)exp(lam + a->m[bh] - m_new);
        *w = (float)exp(ig - m_new);
        *qs = 1.0f / sqrtf((float)a->K);
        *floor_ = (float)exp(-m_new);
        a->m[bh] = (float)m_new;
    } else if (a->kind == STEP_SSD) {
        double delta = step_softplus((double)a->dt[bh] + a->dt_bias[h]);
        *f = (float)exp(delta * a->A[h]);
        *w = (float)delta;
    }
}

/* Per (batch, head): the head's scalars into hs [B·H, 3] (decay f, write
 * scale w, divisor), and for mLSTM the stabilizer m and normalizer n̄
 * updated (U2) with the divisor max(|n̄ᵀq̂|, e^{-m}) from their sum in
 * double. One block of STEP_THREADS per (batch, head). */
__global__ static void step_heads(step_args a, float *hs)
{
    __shared__ double red[STEP_THREADS];
    __shared__ float sc[4];
    int bh = blockIdx.x, K = a.K;
    if (threadIdx.x == 0) head_scalars(&a, bh, &sc[0], &sc[1], &sc[2], &sc[3]);
    __syncthreads();
    double N = 0;
    if (a.kind == STEP_MLSTM)
        for (int r = threadIdx.x; r < K; r += blockDim.x) {
            size_t i = (size_t)bh * K + r;
            float nr = sc[0] * a.n[i] + sc[1] * a.k[i];
            a.n[i] = nr;
            N += (double)(sc[2] * a.q[i]) * nr;
        }
    red[threadIdx.x] = N;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0;
        for (int i = 0; i < (int)blockDim.x; i++) t += red[i];
        hs[3 * bh] = sc[0];
        hs[3 * bh + 1] = sc[1];
        hs[3 * bh + 2] = a.kind == STEP_MLSTM ? fmaxf(fabsf((float)t), sc[3]) : 1.0f;
    }
}

/* S = f S + (w k) vᵀ (U1) and y = Sᵀ q̂ / divisor (U3), plus SSD's D x. Grid
 * (B·H, ⌈V/32⌉), block 32 columns × STEP_ROWS row groups: each thread walks
 * every STEP_ROWS-th row of its column, the groups' partial sums meet in
 * shared memory. q̂ and w k sit in shared memory (2K floats). */
enum { STEP_ROWS = 8 };
__global__ static void step_state(step_args a, const float *hs)
{
    extern __shared__ float sm[]; /* q̂ [K], w·k [K], partial y [STEP_ROWS][32] */
    int bh = blockIdx.x, b = bh / a.H, h = bh % a.H, K = a.K, V = a.V;
    int tx = threadIdx.x % 32, ty = threadIdx.x / 32, col = blockIdx.y * 32 + tx;
    float *qh = sm, *kh = sm + K, *part = sm + 2 * K;
    size_t qk = a.kind == STEP_SSD ? ((size_t)b * a.G + h / (a.H / a.G)) * K : (size_t)bh * K;
    float f = hs[3 * bh], w = hs[3 * bh + 1];
    float qs = a.kind == STEP_MLSTM ? 1.0f / sqrtf((float)K) : 1.0f;
    for (int r = threadIdx.x; r < K; r += blockDim.x) qh[r] = qs * a.q[qk + r], kh[r] = w * a.k[qk + r];
    __syncthreads();
    float y = 0;
    if (col < V) {
        float *S = a.S + (size_t)bh * K * V + col, vi = a.v[(size_t)bh * V + col];
        for (int r = ty; r < K; r += STEP_ROWS) {
            float s = f * S[(size_t)r * V] + kh[r] * vi;
            S[(size_t)r * V] = s;
            y += qh[r] * s;
        }
    }
    part[ty * 32 + tx] = y;
    __syncthreads();
    if (ty == 0 && col < V) {
        float t = a.kind == STEP_SSD ? a.D[h] * a.v[(size_t)bh * V + col] : 0.0f;
        for (int g = 0; g < STEP_ROWS; g++) t += part[g * 32 + tx];
        a.out[(size_t)bh * V + col] = t / hs[3 * bh + 2];
    }
}

/* The head scalars' device buffer [B·H, 3], kept between steps and grown
 * when a larger B·H comes (the step has no workspace argument). */
static int head_buffer(const char *op, int bh, float **hs)
{
    static float *buf;
    static int cap;
    if (bh > cap) {
        cudaFree(buf);
        buf = NULL, cap = 0;
        int rc = cu_check(op, cudaMalloc((void **)&buf, (size_t)3 * bh * sizeof(float)));
        if (rc) return rc;
        cap = bh;
    }
    *hs = buf;
    return SQ_OK;
}

static int launch_step(const char *op, const step_args *a)
{
    size_t smem = ((size_t)2 * a->K + STEP_ROWS * 32) * sizeof(float);
    if (smem > 48 * 1024) return sq_fail(SQ_EINVAL, "%s: K = %d is too large for the step (at most 6000)", op, a->K);
    float *hs = NULL;
    int rc = head_buffer(op, a->B * a->H, &hs);
    if (rc) return rc;
    step_heads<<<a->B * a->H, STEP_THREADS>>>(*a, hs);
    if ((rc = cu_check(op, cudaGetLastError()))) return rc;
    dim3 grid(a->B * a->H, (a->V + 31) / 32);
    step_state<<<grid, 32 * STEP_ROWS, smem>>>(*a, hs);
    return cu_check(op, cudaGetLastError());
}

static int check_one_token(const char *op, sq_dims d)
{
    int rc = sq_check_dims(op, d);
    if (!rc && d.T != 1) rc = sq_fail(SQ_EINVAL, "%s: one token at a time (T must be 1, got %d)", op, d.T);
    return rc;
}

extern "C" int sq_cuda_mlstm_step(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in, sq_mlstm_state *s,
                                  float *out)
{
    const char *op = "cuda mlstm step";
    sq_mlstm_opts def = sq_mlstm_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = check_one_token(op, d)) || (rc = sq_check_ptr(op, "in", in)) || (rc = sq_check_ptr(op, "state", s)) ||
        (rc = sq_check_ptr(op, "out", out)))
        return rc;
    if ((rc = sq_check_ptr(op, "q", in->q)) || (rc = sq_check_ptr(op, "k", in->k)) || (rc = sq_check_ptr(op, "v", in->v)) ||
        (rc = sq_check_ptr(op, "igate", in->igate)) || (rc = sq_check_ptr(op, "fgate", in->fgate)))
        return rc;
    if (!s->S || !s->n || !s->m) return sq_fail(SQ_EINVAL, "%s: the state needs all of S, n and m", op);
    if (o->exp_forget != 0 && o->exp_forget != 1)
        return sq_fail(SQ_EINVAL, "%s: exp_forget must be 0 or 1, got %d", op, o->exp_forget);
    step_args a = {STEP_MLSTM, d.B, d.H, d.K, d.V, 1, o->exp_forget, in->q, in->k, in->v, in->igate, in->fgate,
                   NULL, NULL, NULL, NULL, s->S, s->n, s->m, out};
    return launch_step(op, &a);
}

extern "C" int sq_cuda_linattn_step(sq_dims d, const float *q, const float *k, const float *v, float *S, float *out)
{
    const char *op = "cuda linattn step";
    int rc;
    if ((rc = check_one_token(op, d)) || (rc = sq_check_ptr(op, "q", q)) || (rc = sq_check_ptr(op, "k", k)) ||
        (rc = sq_check_ptr(op, "v", v)) || (rc = sq_check_ptr(op, "S", S)) || (rc = sq_check_ptr(op, "out", out)))
        return rc;
    step_args a = {STEP_LINATTN, d.B, d.H, d.K, d.V, 1, 0, q, k, v, NULL, NULL, NULL, NULL, NULL, NULL,
                   S, NULL, NULL, out};
    return launch_step(op, &a);
}

/* A < 0 is checked by the SSD forward; here it is checked on the device's
 * copy too (a small download), since a step with A >= 0 would grow S. */
extern "C" int sq_cuda_ssd_step(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in, float *S, float *y)
{
    const char *op = "cuda ssd step";
    sq_ssd_opts def = sq_ssd_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = check_one_token(op, d)) || (rc = sq_check_ptr(op, "in", in)) || (rc = sq_check_ptr(op, "S", S)) ||
        (rc = sq_check_ptr(op, "y", y)) || (rc = cu_check_ssd_in(op, d, o, in)))
        return rc;
    step_args a = {STEP_SSD, d.B, d.H, d.K, d.V, o->ngroups, 0, in->Cm, in->Bm, in->x, NULL, NULL,
                   in->dt, in->dt_bias, in->A, in->D, S, NULL, NULL, y};
    return launch_step(op, &a);
}
