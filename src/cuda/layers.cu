/* The layers (src/layers) and the AdamW update (src/train/optim.h) on the
 * GPU, float32, with the CPU functions' checks and arithmetic (double where
 * the CPU uses double). See cuda_layers.h for the contract.
 *
 * Reductions:
 *  - over a row (norms, L2 norm, softmax): one warp (norms) or one block
 *    (softmax rows) per row, shuffles then shared memory, fixed order;
 *  - over rows, per column (bias, norm weight and conv weight gradients):
 *    one block of 32 columns × ROWS row-threads, each thread walks its rows,
 *    then the ROWS partials are added in order in shared memory. No
 *    workspace and no atomics, so bitwise repeatable;
 *  - the global norm and the loss: per-block partials in a scratch buffer,
 *    then one block adds them in a fixed order;
 *  - the embedding's backward adds dy rows into dW with float atomicAdd:
 *    rows of repeated tokens meet in an unspecified order (the only
 *    non-deterministic result here; a deterministic scheme needs the tokens
 *    sorted, i.e. workspace and a sort per call).
 * Scratch: a per-device buffer grown on demand and kept for the process
 * (flags copied back, per-row losses, norm partials); it is never freed. */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>

#include "cuda.h"
#include "cuda_internal.h"

enum {
    BLOCK = 256,    /* threads of the 1-D kernels */
    WARPS = 8,      /* warps per block in the warp-per-row kernels */
    ROWS = 16,      /* row-threads of the per-column reductions (blocks of 32 × ROWS) */
    ONE_BLOCK = 1024, /* threads of the single-block kernels */
    MAX_DEV = 64
};

/* ---- helpers ------------------------------------------------------------ */

/* What the device reports back: the token / target check and a total. */
typedef struct {
    double total;  /* the loss sum or Σg² */
    int count;     /* ids >= 0 */
    int bad;       /* first position with a bad id, or N */
    int bad_value; /* the id there */
    int pad;
} cu_flags;

/* Bytes before the scratch's array part (keeps the doubles aligned). */
static const size_t HEAD = 256;

/* The per-device scratch of at least `bytes` (grown, never shrunk or freed). */
static int scratch(const char *op, size_t bytes, void **p)
{
    static void *buf[MAX_DEV];
    static size_t cap[MAX_DEV];
    int dev = 0, rc;
    if ((rc = cu_check(op, cudaGetDevice(&dev)))) return rc;
    if (dev < 0 || dev >= MAX_DEV) return sq_fail(SQ_EINVAL, "%s: device %d is beyond %d", op, dev, MAX_DEV);
    if (cap[dev] < bytes) {
        if (buf[dev]) {
            if ((rc = cu_check(op, cudaDeviceSynchronize()))) return rc; /* no kernel still uses it */
            cudaFree(buf[dev]);
        }
        buf[dev] = NULL;
        cap[dev] = 0;
        size_t want = bytes < 65536 ? 65536 : bytes + bytes / 2;
        if (cudaMalloc(&buf[dev], want) != cudaSuccess) {
            buf[dev] = NULL;
            return sq_fail(SQ_ENOMEM, "%s: out of device memory for %zu bytes of scratch", op, want);
        }
        cap[dev] = want;
    }
    *p = buf[dev];
    return SQ_OK;
}

static int launched(const char *op) { return cu_check(op, cudaGetLastError()); }

/* Blocks of BLOCK threads for n elements, capped (the kernels stride over the rest). */
static unsigned grid_for(size_t n)
{
    size_t b = (n + BLOCK - 1) / BLOCK;
    return (unsigned)(b < 1 ? 1 : b > 65536 ? 65536 : b);
}

static unsigned grid_warps(size_t rows) { return (unsigned)((rows + WARPS - 1) / WARPS); }

__device__ static double warp_sum(double x)
{
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

__device__ static float warp_max(float x)
{
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}

__device__ static int warp_min_i(int x)
{
    for (int o = 16; o > 0; o >>= 1) x = min(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}

/* Σ x over the block (blockDim.x a multiple of 32), in a fixed order, to every thread. */
__device__ static double block_sum(double x)
{
    __shared__ double red[32];
    int nw = blockDim.x / 32;
    x = warp_sum(x);
    __syncthreads(); /* a previous call's readers are done */
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = x;
    __syncthreads();
    double t = 0;
    for (int i = 0; i < nw; i++) t += red[i];
    return t;
}

/* max x over the block, to every thread. */
__device__ static float block_max(float x)
{
    __shared__ float red[32];
    int nw = blockDim.x / 32;
    x = warp_max(x);
    __syncthreads();
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = x;
    __syncthreads();
    float t = red[0];
    for (int i = 1; i < nw; i++) t = fmaxf(t, red[i]);
    return t;
}

/* min x over the block, to every thread. */
__device__ static int block_min_i(int x)
{
    __shared__ int red[32];
    int nw = blockDim.x / 32;
    x = warp_min_i(x);
    __syncthreads();
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = x;
    __syncthreads();
    int t = red[0];
    for (int i = 1; i < nw; i++) t = min(t, red[i]);
    return t;
}

/* Σ over threadIdx.y of acc (blocks of 32 × ROWS), in order; valid where threadIdx.y == 0. */
__device__ static double col_sum(double acc)
{
    __shared__ double red[ROWS][33];
    __syncthreads();
    red[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    double t = 0;
    if (threadIdx.y == 0)
        for (int k = 0; k < ROWS; k++) t += red[k][threadIdx.x];
    return t;
}

/* The id check (one block): count = #{ids >= 0}; bad = first n with id >= hi
 * (or id < 0 when neg_bad), N if none; bad_value = that id. */
__global__ static void check_ids(const int32_t *ids, int N, int hi, int neg_bad, cu_flags *f)
{
    int cnt = 0, bad = N;
    for (int n = threadIdx.x; n < N; n += blockDim.x) {
        int v = ids[n];
        if (v >= hi || (neg_bad && v < 0)) bad = min(bad, n);
        cnt += v >= 0;
    }
    double c = block_sum((double)cnt);
    bad = block_min_i(bad);
    if (threadIdx.x == 0) {
        f->total = 0;
        f->count = (int)c;
        f->bad = bad;
        f->bad_value = bad < N ? ids[bad] : 0;
    }
}

/* Σ of n doubles into *out, one block, fixed order. */
__global__ static void sum_doubles(const double *a, size_t n, double *out)
{
    double s = 0;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) s += a[i];
    s = block_sum(s);
    if (threadIdx.x == 0) *out = s;
}

static int get_flags(const char *op, const cu_flags *dev, cu_flags *host)
{
    return cu_check(op, cudaMemcpy(host, dev, sizeof *host, cudaMemcpyDeviceToHost));
}

/* ---- int32 arrays ------------------------------------------------------- */

extern "C" int sq_cuda_malloc_i32(int32_t **p, size_t n)
{
    int rc = sq_check_ptr("cuda malloc i32", "p", p);
    if (rc) return rc;
    *p = NULL;
    if (cudaMalloc((void **)p, (n ? n : 1) * sizeof(int32_t)) != cudaSuccess) {
        *p = NULL;
        return sq_fail(SQ_ENOMEM, "cuda: out of device memory for %zu int32s", n);
    }
    return SQ_OK;
}

extern "C" int sq_cuda_upload_i32(int32_t *dst, const int32_t *src, size_t n)
{
    return cu_check("cuda upload i32", cudaMemcpy(dst, src, n * sizeof(int32_t), cudaMemcpyHostToDevice));
}

/* ---- linear ------------------------------------------------------------- */

static int check_linear(const char *op, int N, int in, int out)
{
    if (N < 1 || in < 1 || out < 1)
        return sq_fail(SQ_EINVAL, "%s: sizes must be >= 1, got N=%d in=%d out=%d", op, N, in, out);
    return SQ_OK;
}

/* Column-major C (m×n, ldc) = op(A) op(B) + beta C through the process's cuBLAS handle. */
static int sgemm(const char *op, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    cublasHandle_t h = NULL;
    float one = 1;
    int rc = cu_cublas_layers(op, &h);
    if (rc) return rc;
    cublasStatus_t st =
        cu_layer_math() == SQ_CUDA_MATH_BF16
            ? cublasGemmEx(h, ta, tb, m, n, k, &one, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, &beta, C, CUDA_R_32F, ldc,
                           CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_GEMM_DEFAULT)
            : cublasSgemm(h, ta, tb, m, n, k, &one, A, lda, B, ldb, &beta, C, ldc);
    return st == CUBLAS_STATUS_SUCCESS ? SQ_OK : sq_fail(SQ_EINVAL, "%s: cuBLAS GEMM failed (status %d)", op, (int)st);
}

/* y[n, o] = b[o]. */
__global__ static void rows_of_bias(size_t N, int out, const float *b, float *y)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < N * out; i += (size_t)gridDim.x * blockDim.x)
        y[i] = b[i % out];
}

/* acc[c] += Σ_n a[n, c] (double sum), one block per 32 columns. */
__global__ static void col_sum_acc(int N, int C, const float *a, float *acc)
{
    int c = blockIdx.x * 32 + threadIdx.x;
    double s = 0;
    if (c < C)
        for (int n = threadIdx.y; n < N; n += ROWS) s += a[(size_t)n * C + c];
    s = col_sum(s);
    if (threadIdx.y == 0 && c < C) acc[c] += (float)s;
}

static dim3 col_grid(int C, int extra) { return dim3((unsigned)((C + 31) / 32), (unsigned)extra); }

/* y = x Wᵀ + b. Row-major y [N,out] is column-major yᵀ (out×N) = W xᵀ:
 * W row-major [out,in] read column-major is Wᵀ (in×out, ld in), hence op T;
 * x row-major is xᵀ (in×N, ld in). */
extern "C" int sq_cuda_linear_fwd(int N, int in, int out, const float *x, const float *W, const float *b, float *y)
{
    const char *op = "cuda linear fwd";
    int rc;
    if ((rc = check_linear(op, N, in, out)) || (rc = sq_check_ptr(op, "x", x)) || (rc = sq_check_ptr(op, "W", W)) ||
        (rc = sq_check_ptr(op, "y", y)))
        return rc;
    if (b) {
        rows_of_bias<<<grid_for((size_t)N * out), BLOCK>>>((size_t)N, out, b, y);
        if ((rc = launched(op))) return rc;
    }
    return sgemm(op, CUBLAS_OP_T, CUBLAS_OP_N, out, N, in, W, in, x, in, b ? 1.0f : 0.0f, y, out);
}

/* y[n, o] += b[o]. */
__global__ static void add_bias_rows(size_t N, int out, const float *b, float *y)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < N * out; i += (size_t)gridDim.x * blockDim.x)
        y[i] += b[i % out];
}

/* y += x Wᵀ + b (the residual x' = x + f W_outᵀ with y holding x). */
extern "C" int sq_cuda_linear_fwd_acc(int N, int in, int out, const float *x, const float *W, const float *b, float *y)
{
    const char *op = "cuda linear fwd acc";
    int rc;
    if ((rc = check_linear(op, N, in, out)) || (rc = sq_check_ptr(op, "x", x)) || (rc = sq_check_ptr(op, "W", W)) ||
        (rc = sq_check_ptr(op, "y", y)))
        return rc;
    if ((rc = sgemm(op, CUBLAS_OP_T, CUBLAS_OP_N, out, N, in, W, in, x, in, 1.0f, y, out))) return rc;
    if (!b) return SQ_OK;
    add_bias_rows<<<grid_for((size_t)N * out), BLOCK>>>((size_t)N, out, b, y);
    return launched(op);
}

/* dx = beta dx + dy W   (column-major dxᵀ (in×N) = Wᵀ (in×out, ld in) dyᵀ (out×N, ld out)),
 * dW += dyᵀ x           (column-major dWᵀ (in×out) = xᵀ (in×N) (dyᵀ)ᵀ),
 * db += Σ_n dy_n. */
static int linear_bwd(const char *op, float beta, int N, int in, int out, const float *x, const float *W,
                      const float *dy, float *dx, float *dW, float *db)
{
    int rc;
    if ((rc = check_linear(op, N, in, out)) || (rc = sq_check_ptr(op, "x", x)) || (rc = sq_check_ptr(op, "W", W)) ||
        (rc = sq_check_ptr(op, "dy", dy)) || (rc = sq_check_ptr(op, "dW", dW)))
        return rc;
    if (dx && (rc = sgemm(op, CUBLAS_OP_N, CUBLAS_OP_N, in, N, out, W, in, dy, out, beta, dx, in))) return rc;
    if ((rc = sgemm(op, CUBLAS_OP_N, CUBLAS_OP_T, in, out, N, x, in, dy, out, 1.0f, dW, in))) return rc;
    if (db) {
        col_sum_acc<<<col_grid(out, 1), dim3(32, ROWS)>>>(N, out, dy, db);
        return launched(op);
    }
    return SQ_OK;
}

extern "C" int sq_cuda_linear_bwd(int N, int in, int out, const float *x, const float *W, const float *dy, float *dx,
                                  float *dW, float *db)
{
    return linear_bwd("cuda linear bwd", 0.0f, N, in, out, x, W, dy, dx, dW, db);
}

extern "C" int sq_cuda_linear_bwd_acc(int N, int in, int out, const float *x, const float *W, const float *dy,
                                      float *dx, float *dW, float *db)
{
    return linear_bwd("cuda linear bwd", 1.0f, N, in, out, x, W, dy, dx, dW, db);
}

/* ---- norms -------------------------------------------------------------- */

static int check_norm(const char *op, int N, int G, int Dg, int center, float eps)
{
    if (N < 1 || G < 1 || Dg < 1) return sq_fail(SQ_EINVAL, "%s: sizes must be >= 1, got N=%d G=%d Dg=%d", op, N, G, Dg);
    if (center != 0 && center != 1) return sq_fail(SQ_EINVAL, "%s: center must be 0 or 1", op);
    if (!(eps > 0)) return sq_fail(SQ_EINVAL, "%s: eps must be > 0, got %g", op, eps);
    return SQ_OK;
}

/* One warp per group ng of Dg values (g = ng mod G):
 *   μ = mean(x) [center] or 0, r = 1/sqrt(mean((x-μ)²) + eps) (sums in double),
 *   y = (x-μ) r ⊙ w + b. */
__global__ static void norm_fwd_kernel(int NG, int G, int Dg, int center, float eps, const float *x, const float *w,
                                       const float *b, float *y, float *mu, float *r)
{
    int ng = blockIdx.x * WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (ng >= NG) return; /* the whole warp */
    const float *xg = x + (size_t)ng * Dg;
    const float *wg = w ? w + (size_t)(ng % G) * Dg : NULL, *bg = b ? b + (size_t)(ng % G) * Dg : NULL;
    float *yg = y + (size_t)ng * Dg;
    double m = 0, v = 0;
    if (center) {
        for (int i = lane; i < Dg; i += 32) m += xg[i];
        m = warp_sum(m) / Dg;
    }
    for (int i = lane; i < Dg; i += 32) v += (xg[i] - m) * (xg[i] - m);
    v = warp_sum(v);
    float ri = (float)(1.0 / sqrt(v / Dg + eps)), mf = (float)m;
    for (int i = lane; i < Dg; i += 32) yg[i] = (xg[i] - mf) * ri * (wg ? wg[i] : 1.0f) + (bg ? bg[i] : 0.0f);
    if (lane == 0) {
        r[ng] = ri;
        if (center) mu[ng] = mf;
    }
}

extern "C" int sq_cuda_norm_fwd(int N, int G, int Dg, int center, float eps, const float *x, const float *w,
                                const float *b, float *y, float *mu, float *r)
{
    const char *op = "cuda norm fwd";
    int rc;
    if ((rc = check_norm(op, N, G, Dg, center, eps)) || (rc = sq_check_ptr(op, "x", x)) ||
        (rc = sq_check_ptr(op, "y", y)) || (rc = sq_check_ptr(op, "r", r)) ||
        (center && (rc = sq_check_ptr(op, "mu", mu))))
        return rc;
    int NG = N * G;
    norm_fwd_kernel<<<grid_warps(NG), WARPS * 32>>>(NG, G, Dg, center, eps, x, w, b, y, mu, r);
    return launched(op);
}

/* One warp per group, with x̂ = (x-μ) r and g = dy ⊙ w:
 *   dx = r (g - mean(g) [center] - x̂ mean(g ⊙ x̂))   (means in double). */
__global__ static void norm_bwd_dx(int NG, int G, int Dg, int center, const float *x, const float *w, const float *mu,
                                   const float *r, const float *dy, float *dx)
{
    int ng = blockIdx.x * WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (ng >= NG) return;
    const float *xg = x + (size_t)ng * Dg, *dyg = dy + (size_t)ng * Dg;
    const float *wg = w ? w + (size_t)(ng % G) * Dg : NULL;
    float *dxg = dx + (size_t)ng * Dg, m = center ? mu[ng] : 0.0f, ri = r[ng];
    double sg = 0, sgx = 0;
    for (int i = lane; i < Dg; i += 32) {
        float xh = (xg[i] - m) * ri, g = dyg[i] * (wg ? wg[i] : 1.0f);
        sg += g;
        sgx += (double)g * xh;
    }
    sg = warp_sum(sg);
    sgx = warp_sum(sgx);
    float mg = center ? (float)(sg / Dg) : 0.0f, mgx = (float)(sgx / Dg);
    for (int i = lane; i < Dg; i += 32) {
        float xh = (xg[i] - m) * ri, g = dyg[i] * (wg ? wg[i] : 1.0f);
        dxg[i] = ri * (g - mg - xh * mgx);
    }
}

/* Per column j of the G·Dg (g = j / Dg), over the N rows:
 *   dw[j] += Σ_n dy x̂ (when dw),  db[j] += Σ_n dy (when db). */
__global__ static void norm_bwd_params(int N, int G, int Dg, int center, const float *x, const float *mu,
                                       const float *r, const float *dy, float *dw, float *db)
{
    int C = G * Dg, j = blockIdx.x * 32 + threadIdx.x, g = j / Dg;
    double sw = 0, sb = 0;
    if (j < C)
        for (int n = threadIdx.y; n < N; n += ROWS) {
            size_t at = (size_t)n * C + j, ng = (size_t)n * G + g;
            float xh = (x[at] - (center ? mu[ng] : 0.0f)) * r[ng];
            sw += dy[at] * xh;
            sb += dy[at];
        }
    sw = col_sum(sw);
    sb = col_sum(sb);
    if (threadIdx.y == 0 && j < C) {
        if (dw) dw[j] += (float)sw;
        if (db) db[j] += (float)sb;
    }
}

extern "C" int sq_cuda_norm_bwd(int N, int G, int Dg, int center, const float *x, const float *w, const float *mu,
                                const float *r, const float *dy, float *dx, float *dw, float *db)
{
    const char *op = "cuda norm bwd";
    int rc;
    if ((rc = check_norm(op, N, G, Dg, center, 1)) || (rc = sq_check_ptr(op, "x", x)) ||
        (rc = sq_check_ptr(op, "r", r)) || (rc = sq_check_ptr(op, "dy", dy)) || (rc = sq_check_ptr(op, "dx", dx)) ||
        (center && (rc = sq_check_ptr(op, "mu", mu))) || (w && (rc = sq_check_ptr(op, "dw", dw))))
        return rc;
    int NG = N * G;
    norm_bwd_dx<<<grid_warps(NG), WARPS * 32>>>(NG, G, Dg, center, x, w, mu, r, dy, dx);
    if ((rc = launched(op))) return rc;
    float *dwp = w ? dw : NULL; /* as the CPU: no weight, no weight gradient */
    if (dwp || db) {
        norm_bwd_params<<<col_grid(G * Dg, 1), dim3(32, ROWS)>>>(N, G, Dg, center, x, mu, r, dy, dwp, db);
        rc = launched(op);
    }
    return rc;
}

/* One warp per row: rn = 1/sqrt(Σx² + eps) (double sum), y = x rn. */
__global__ static void l2norm_fwd_kernel(int N, int D, float eps, const float *x, float *y, float *rnorm)
{
    int n = blockIdx.x * WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (n >= N) return;
    const float *xr = x + (size_t)n * D;
    double s = 0;
    for (int i = lane; i < D; i += 32) s += (double)xr[i] * xr[i];
    s = warp_sum(s);
    float rn = (float)(1.0 / sqrt(s + eps));
    for (int i = lane; i < D; i += 32) y[(size_t)n * D + i] = xr[i] * rn;
    if (lane == 0) rnorm[n] = rn;
}

extern "C" int sq_cuda_l2norm_fwd(int N, int D, float eps, const float *x, float *y, float *rnorm)
{
    const char *op = "cuda l2norm fwd";
    int rc;
    if (N < 1 || D < 1) return sq_fail(SQ_EINVAL, "%s: sizes must be >= 1, got N=%d D=%d", op, N, D);
    if (!(eps > 0)) return sq_fail(SQ_EINVAL, "%s: eps must be > 0, got %g", op, eps);
    if ((rc = sq_check_ptr(op, "x", x)) || (rc = sq_check_ptr(op, "y", y)) || (rc = sq_check_ptr(op, "rnorm", rnorm)))
        return rc;
    l2norm_fwd_kernel<<<grid_warps(N), WARPS * 32>>>(N, D, eps, x, y, rnorm);
    return launched(op);
}

/* One warp per row, y = x r: dx = r (dy - y (y·dy)) (dot in double). */
__global__ static void l2norm_bwd_kernel(int N, int D, const float *x, const float *rnorm, const float *dy, float *dx)
{
    int n = blockIdx.x * WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (n >= N) return;
    const float *xr = x + (size_t)n * D, *dyr = dy + (size_t)n * D;
    float rn = rnorm[n];
    double dot = 0;
    for (int i = lane; i < D; i += 32) dot += (double)xr[i] * rn * dyr[i];
    float d = (float)warp_sum(dot);
    for (int i = lane; i < D; i += 32) dx[(size_t)n * D + i] = rn * (dyr[i] - xr[i] * rn * d);
}

extern "C" int sq_cuda_l2norm_bwd(int N, int D, const float *x, const float *rnorm, const float *dy, float *dx)
{
    const char *op = "cuda l2norm bwd";
    int rc;
    if (N < 1 || D < 1) return sq_fail(SQ_EINVAL, "%s: sizes must be >= 1, got N=%d D=%d", op, N, D);
    if ((rc = sq_check_ptr(op, "x", x)) || (rc = sq_check_ptr(op, "rnorm", rnorm)) || (rc = sq_check_ptr(op, "dy", dy)) ||
        (rc = sq_check_ptr(op, "dx", dx)))
        return rc;
    l2norm_bwd_kernel<<<grid_warps(N), WARPS * 32>>>(N, D, x, rnorm, dy, dx);
    return launched(op);
}

/* ---- activations -------------------------------------------------------- */

static int check_act(const char *op, size_t n, const void *a, const void *b, const void *c)
{
    int rc;
    if (n < 1) return sq_fail(SQ_EINVAL, "%s: n must be >= 1", op);
    if ((rc = sq_check_ptr(op, "input", a)) || (rc = sq_check_ptr(op, "input/output", b)) ||
        (rc = sq_check_ptr(op, "output", c)))
        return rc;
    return SQ_OK;
}

__device__ static float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

static constexpr float GELU_C = 0.7978845608028654f; /* √(2/π) */

/* y = x σ(x) */
__global__ static void silu_fwd_kernel(size_t n, const float *x, float *y)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = x[i] * sigm(x[i]);
}

/* dx = dy σ(x) (1 + x (1 - σ(x))) */
__global__ static void silu_bwd_kernel(size_t n, const float *x, const float *dy, float *dx)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float s = sigm(x[i]);
        dx[i] = dy[i] * s * (1 + x[i] * (1 - s));
    }
}

/* y = x/2 (1 + tanh u), u = √(2/π)(x + 0.044715 x³) */
__global__ static void gelu_fwd_kernel(size_t n, const float *x, float *y)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float u = GELU_C * (x[i] + 0.044715f * x[i] * x[i] * x[i]);
        y[i] = 0.5f * x[i] * (1 + tanhf(u));
    }
}

/* dx = dy (½(1 + tanh u) + ½ x (1 - tanh² u) √(2/π)(1 + 3·0.044715 x²)) */
__global__ static void gelu_bwd_kernel(size_t n, const float *x, const float *dy, float *dx)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float u = GELU_C * (x[i] + 0.044715f * x[i] * x[i] * x[i]), t = tanhf(u);
        float du = GELU_C * (1 + 3 * 0.044715f * x[i] * x[i]);
        dx[i] = dy[i] * (0.5f * (1 + t) + 0.5f * x[i] * (1 - t * t) * du);
    }
}

/* y = SiLU(a) b */
__global__ static void swiglu_fwd_kernel(size_t n, const float *a, const float *b, float *y)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = a[i] * sigm(a[i]) * b[i];
}

/* da = dy b σ(a)(1 + a(1 - σ(a))),  db = dy SiLU(a) */
__global__ static void swiglu_bwd_kernel(size_t n, const float *a, const float *b, const float *dy, float *da,
                                         float *dbv)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float s = sigm(a[i]);
        da[i] = dy[i] * b[i] * s * (1 + a[i] * (1 - s));
        dbv[i] = dy[i] * a[i] * s;
    }
}

extern "C" int sq_cuda_silu_fwd(size_t n, const float *x, float *y)
{
    int rc = check_act("cuda silu fwd", n, x, y, y);
    if (rc) return rc;
    silu_fwd_kernel<<<grid_for(n), BLOCK>>>(n, x, y);
    return launched("cuda silu fwd");
}

extern "C" int sq_cuda_silu_bwd(size_t n, const float *x, const float *dy, float *dx)
{
    int rc = check_act("cuda silu bwd", n, x, dy, dx);
    if (rc) return rc;
    silu_bwd_kernel<<<grid_for(n), BLOCK>>>(n, x, dy, dx);
    return launched("cuda silu bwd");
}

extern "C" int sq_cuda_gelu_fwd(size_t n, const float *x, float *y)
{
    int rc = check_act("cuda gelu fwd", n, x, y, y);
    if (rc) return rc;
    gelu_fwd_kernel<<<grid_for(n), BLOCK>>>(n, x, y);
    return launched("cuda gelu fwd");
}

extern "C" int sq_cuda_gelu_bwd(size_t n, const float *x, const float *dy, float *dx)
{
    int rc = check_act("cuda gelu bwd", n, x, dy, dx);
    if (rc) return rc;
    gelu_bwd_kernel<<<grid_for(n), BLOCK>>>(n, x, dy, dx);
    return launched("cuda gelu bwd");
}

extern "C" int sq_cuda_swiglu_fwd(size_t n, const float *a, const float *b, float *y)
{
    int rc = check_act("cuda swiglu fwd", n, a, b, y);
    if (rc) return rc;
    swiglu_fwd_kernel<<<grid_for(n), BLOCK>>>(n, a, b, y);
    return launched("cuda swiglu fwd");
}

extern "C" int sq_cuda_swiglu_bwd(size_t n, const float *a, const float *b, const float *dy, float *da, float *dbv)
{
    const char *op = "cuda swiglu bwd";
    int rc = check_act(op, n, a, b, dy);
    if (rc || (rc = sq_check_ptr(op, "da", da)) || (rc = sq_check_ptr(op, "db", dbv))) return rc;
    swiglu_bwd_kernel<<<grid_for(n), BLOCK>>>(n, a, b, dy, da, dbv);
    return launched(op);
}

/* ---- causal depthwise conv1d ---------------------------------------------- */

static int check_conv(const char *op, int B, int T, int C, int W, const float *x, const float *w)
{
    int rc;
    if (B < 1 || T < 1 || C < 1) return sq_fail(SQ_EINVAL, "%s: sizes must be >= 1, got B=%d T=%d C=%d", op, B, T, C);
    if (W < 1) return sq_fail(SQ_EINVAL, "%s: kernel width must be >= 1, got %d", op, W);
    if ((rc = sq_check_ptr(op, "x", x)) || (rc = sq_check_ptr(op, "w", w))) return rc;
    return SQ_OK;
}

/* Input at time t of channel c in sequence b; t < 0 reads the state [B, W-1, C] (NULL = 0). */
__device__ static float input_at(const float *x, const float *st, int T, int C, int W, int b, int t, int c)
{
    if (t >= 0) return x[((size_t)b * T + t) * C + c];
    return st ? st[((size_t)b * (W - 1) + (W - 1 + t)) * C + c] : 0.0f;
}

/* One thread per (b, t, c): y = bias_c + Σ_{j<W} w_{c,j} x_{t-W+1+j, c}. */
__global__ static void conv_fwd_kernel(int B, int T, int C, int W, const float *x, const float *w, const float *bias,
                                       const float *state0, float *y)
{
    size_t n = (size_t)B * T * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C);
        size_t bt = i / C;
        int t = (int)(bt % T), b = (int)(bt / T);
        float acc = bias ? bias[c] : 0.0f;
        for (int j = 0; j < W; j++) acc += w[(size_t)c * W + j] * input_at(x, state0, T, C, W, b, t - W + 1 + j, c);
        y[i] = acc;
    }
}

/* One thread per (b, c): state1 gets the last W-1 inputs, in ascending order,
 * so that state1 may alias state0 (entry i reads state0's entry T+i > i). */
__global__ static void conv_state_kernel(int B, int T, int C, int W, const float *x, const float *state0, float *state1)
{
    size_t n = (size_t)B * C;
    for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(k % C), b = (int)(k / C);
        for (int i = 0; i < W - 1; i++)
            state1[((size_t)b * (W - 1) + i) * C + c] = input_at(x, state0, T, C, W, b, T - W + 1 + i, c);
    }
}

extern "C" int sq_cuda_conv1d_fwd(int B, int T, int C, int W, const float *x, const float *w, const float *bias,
                                  const float *state0, float *y, float *state1)
{
    const char *op = "cuda conv1d fwd";
    int rc;
    if ((rc = check_conv(op, B, T, C, W, x, w)) || (rc = sq_check_ptr(op, "y", y))) return rc;
    conv_fwd_kernel<<<grid_for((size_t)B * T * C), BLOCK>>>(B, T, C, W, x, w, bias, state0, y);
    if ((rc = launched(op))) return rc;
    if (state1 && W > 1) { /* after the forward (same stream): state0 is read there */
        conv_state_kernel<<<grid_for((size_t)B * C), BLOCK>>>(B, T, C, W, x, state0, state1);
        rc = launched(op);
    }
    return rc;
}

/* One thread per (b, s, c): dx_s = Σ_j dy_{s+W-1-j} w_j over t = s+W-1-j < T
 * (t ascending, as the CPU adds them). */
__global__ static void conv_bwd_dx(int B, int T, int C, int W, const float *w, const float *dy, float *dx)
{
    size_t n = (size_t)B * T * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C);
        size_t bt = i / C;
        int s = (int)(bt % T), b = (int)(bt / T);
        float acc = 0.0f;
        for (int j = W - 1; j >= 0; j--) {
            int t = s + W - 1 - j;
            if (t < T) acc += dy[((size_t)b * T + t) * C + c] * w[(size_t)c * W + j];
        }
        dx[i] = acc;
    }
}

/* One thread per (b, i < W-1, c): dstate0_i = Σ_{j<=i, t=i-j<T} dy_t w_j (t ascending). */
__global__ static void conv_bwd_dstate(int B, int T, int C, int W, const float *w, const float *dy, float *dstate0)
{
    size_t n = (size_t)B * (W - 1) * C;
    for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(k % C);
        size_t bi = k / C;
        int i = (int)(bi % (W - 1)), b = (int)(bi / (W - 1));
        float acc = 0.0f;
        for (int j = i; j >= 0; j--) {
            int t = i - j;
            if (t < T) acc += dy[((size_t)b * T + t) * C + c] * w[(size_t)c * W + j];
        }
        dstate0[k] = acc;
    }
}

/* Per column c and tap jj (blockIdx.y strides over jj = 0..W; jj = W is the bias),
 * over the B·T rows: dw[c, jj] += Σ dy_t x_{t-W+1+jj},  dbias[c] += Σ dy_t. */
__global__ static void conv_bwd_params(int B, int T, int C, int W, const float *x, const float *state0,
                                       const float *dy, float *dw, float *dbias)
{
    int c = blockIdx.x * 32 + threadIdx.x, taps = W + (dbias ? 1 : 0);
    size_t rows = (size_t)B * T;
    for (int jj = blockIdx.y; jj < taps; jj += gridDim.y) { /* uniform over the block */
        double s = 0;
        if (c < C)
            for (size_t row = threadIdx.y; row < rows; row += ROWS) {
                int b = (int)(row / T), t = (int)(row % T);
                float g = dy[row * C + c];
                s += jj < W ? g * input_at(x, state0, T, C, W, b, t - W + 1 + jj, c) : g;
            }
        s = col_sum(s);
        if (threadIdx.y == 0 && c < C) {
            if (jj < W) dw[(size_t)c * W + jj] += (float)s;
            else dbias[c] += (float)s;
        }
    }
}

extern "C" int sq_cuda_conv1d_bwd(int B, int T, int C, int W, const float *x, const float *w, const float *state0,
                                  const float *dy, float *dx, float *dw, float *dbias, float *dstate0)
{
    const char *op = "cuda conv1d bwd";
    int rc;
    if ((rc = check_conv(op, B, T, C, W, x, w)) || (rc = sq_check_ptr(op, "dy", dy)) ||
        (rc = sq_check_ptr(op, "dx", dx)) || (rc = sq_check_ptr(op, "dw", dw)))
        return rc;
    conv_bwd_dx<<<grid_for((size_t)B * T * C), BLOCK>>>(B, T, C, W, w, dy, dx);
    if (dstate0 && W > 1) conv_bwd_dstate<<<grid_for((size_t)B * (W - 1) * C), BLOCK>>>(B, T, C, W, w, dy, dstate0);
    int taps = W + (dbias ? 1 : 0);
    conv_bwd_params<<<col_grid(C, taps < 65535 ? taps : 65535), dim3(32, ROWS)>>>(B, T, C, W, x, state0, dy, dw, dbias);
    return launched(op);
}

/* ---- embedding, RoPE, cross-entropy --------------------------------------- */

/* y[n] = W[tokens[n]] (nothing when the check found a bad token). */
__global__ static void embed_gather(int N, int D, const int32_t *tokens, const float *W, float *y, const cu_flags *f)
{
    if (f->bad < N) return;
    size_t n = (size_t)N * D;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = W[(size_t)tokens[i / D] * D + i % D];
}

/* dW[tokens[n]] += dy[n] (float atomics: repeated tokens add in any order). */
__global__ static void embed_scatter(int N, int D, const int32_t *tokens, const float *dy, float *dW, const cu_flags *f)
{
    if (f->bad < N) return;
    size_t n = (size_t)N * D;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        atomicAdd(&dW[(size_t)tokens[i / D] * D + i % D], dy[i]);
}

/* Checks the tokens on the device, runs the gather (bwd = 0) or the scatter, reads the check back. */
static int embed(const char *op, int bwd, int N, int vocab, int D, const int32_t *tokens, const float *src,
                 float *dst)
{
    void *s = NULL;
    cu_flags fl;
    int rc;
    if (N < 1 || vocab < 1 || D < 1) return sq_fail(SQ_EINVAL, "%s: sizes must be >= 1", op);
    if ((rc = sq_check_ptr(op, "tokens", tokens)) || (rc = sq_check_ptr(op, bwd ? "dy" : "W", src)) ||
        (rc = sq_check_ptr(op, bwd ? "dW" : "y", dst)) || (rc = scratch(op, HEAD, &s)))
        return rc;
    cu_flags *f = (cu_flags *)s;
    check_ids<<<1, ONE_BLOCK>>>(tokens, N, vocab, 1, f);
    if (bwd) embed_scatter<<<grid_for((size_t)N * D), BLOCK>>>(N, D, tokens, src, dst, f);
    else embed_gather<<<grid_for((size_t)N * D), BLOCK>>>(N, D, tokens, src, dst, f);
    if ((rc = launched(op)) || (rc = get_flags(op, f, &fl))) return rc;
    if (fl.bad < N)
        return sq_fail(SQ_EINVAL, "%s: token %d at position %d is outside the vocabulary [0, %d)", op, fl.bad_value,
                       fl.bad, vocab);
    return SQ_OK;
}

extern "C" int sq_cuda_embed_fwd(int N, int vocab, int D, const int32_t *tokens, const float *W, float *y)
{
    return embed("cuda embedding fwd", 0, N, vocab, D, tokens, W, y);
}

extern "C" int sq_cuda_embed_bwd(int N, int vocab, int D, const int32_t *tokens, const float *dy, float *dW)
{
    return embed("cuda embedding bwd", 1, N, vocab, D, tokens, dy, dW);
}

/* One thread per (b, t, i < D/2), over the heads: the pair (i, i + D/2) rotated
 * by sign·θ, θ = (pos0 + t) base^{-2i/D} (in double, as the CPU). y may equal x. */
__global__ static void rope_kernel(int B, int T, int H, int D, int pos0, float base, const float *x, float *y, int sign)
{
    int half = D / 2;
    size_t n = (size_t)B * T * half;
    for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
        int i = (int)(k % half);
        size_t bt = k / half;
        int t = (int)(bt % T);
        double th = (double)(pos0 + t) * pow((double)base, -2.0 * i / D);
        float c = (float)cos(th), s = (float)(sign * sin(th));
        for (int h = 0; h < H; h++) {
            size_t at = (bt * H + h) * D;
            float x0 = x[at + i], x1 = x[at + i + half];
            y[at + i] = x0 * c - x1 * s;
            y[at + i + half] = x0 * s + x1 * c;
        }
    }
}

static int rope(const char *op, int B, int T, int H, int D, int pos0, float base, const float *x, float *y, int sign)
{
    int rc;
    if (B < 1 || T < 1 || H < 1 || D < 2 || D % 2)
        return sq_fail(SQ_EINVAL, "%s: need B, T, H >= 1 and an even head size D >= 2, got D=%d", op, D);
    if (pos0 < 0 || !(base > 1)) return sq_fail(SQ_EINVAL, "%s: need pos0 >= 0 and base > 1", op);
    if ((rc = sq_check_ptr(op, "x", x)) || (rc = sq_check_ptr(op, "y", y))) return rc;
    rope_kernel<<<grid_for((size_t)B * T * (D / 2)), BLOCK>>>(B, T, H, D, pos0, base, x, y, sign);
    return launched(op);
}

extern "C" int sq_cuda_rope_fwd(int B, int T, int H, int D, int pos0, float base, const float *x, float *y)
{
    return rope("cuda rope fwd", B, T, H, D, pos0, base, x, y, 1);
}

extern "C" int sq_cuda_rope_bwd(int B, int T, int H, int D, int pos0, float base, const float *dy, float *dx)
{
    return rope("cuda rope bwd", B, T, H, D, pos0, base, dy, dx, -1);
}

/* One block per row n (nothing when a target was bad). Ignored row (target < 0):
 * dz = 0, loss 0. Else lse = max + log Σ exp(z - max) (double), rows[n] = lse - z_t,
 * dz = exp(z - lse)/count - [v = t]/count. */
__global__ static void xent_rows(int N, int V, const float *logits, const int32_t *targets, float *dlogits,
                                 const cu_flags *f, double *rows)
{
    int n = blockIdx.x;
    if (f->bad < N) return; /* uniform over the block */
    int tg = targets[n], cnt = f->count;
    const float *z = logits + (size_t)n * V;
    float *dz = dlogits ? dlogits + (size_t)n * V : NULL;
    if (tg < 0) {
        if (dz)
            for (int v = threadIdx.x; v < V; v += blockDim.x) dz[v] = 0.0f;
        if (threadIdx.x == 0) rows[n] = 0;
        return;
    }
    float mx = -INFINITY;
    for (int v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, z[v]);
    mx = block_max(mx);
    double s = 0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) s += exp((double)z[v] - mx);
    double lse = mx + log(block_sum(s));
    if (threadIdx.x == 0) rows[n] = lse - z[tg];
    if (!dz) return;
    float inv = 1.0f / cnt;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        float d = (float)(exp((double)z[v] - lse) / cnt);
        dz[v] = v == tg ? d - inv : d;
    }
}

/* Mean cross-entropy: the target check and count, one block per row, then the
 * row losses added in a fixed order; waits for the device (loss is a host value). */
extern "C" int sq_cuda_xent_fwd_bwd(int N, int V, const float *logits, const int32_t *targets, float *loss,
                                    float *dlogits, int *count)
{
    const char *op = "cuda cross-entropy";
    void *s = NULL;
    cu_flags fl;
    int rc;
    if (N < 1 || V < 1) return sq_fail(SQ_EINVAL, "%s: sizes must be >= 1", op);
    if ((rc = sq_check_ptr(op, "logits", logits)) || (rc = sq_check_ptr(op, "targets", targets)) ||
        (rc = sq_check_ptr(op, "loss", loss)) || (rc = scratch(op, HEAD + (size_t)N * sizeof(double), &s)))
        return rc;
    cu_flags *f = (cu_flags *)s;
    double *rows = (double *)((char *)s + HEAD);
    check_ids<<<1, ONE_BLOCK>>>(targets, N, V, 0, f);
    xent_rows<<<(unsigned)N, BLOCK>>>(N, V, logits, targets, dlogits, f, rows);
    sum_doubles<<<1, ONE_BLOCK>>>(rows, (size_t)N, &f->total); /* read only when no target was bad */
    if ((rc = launched(op)) || (rc = get_flags(op, f, &fl))) return rc;
    if (fl.bad < N)
        return sq_fail(SQ_EINVAL, "%s: target %d at row %d is >= the vocabulary %d", op, fl.bad_value, fl.bad, V);
    *loss = fl.count ? (float)(fl.total / fl.count) : 0.0f;
    if (count) *count = fl.count;
    return SQ_OK;
}

/* ---- optimizer ---------------------------------------------------------- */

/* m ← β1 m + (1−β1) g, v ← β2 v + (1−β2) g², p ← p − lr m̂/(sqrt(v̂) + ε) − wd p,
 * m̂ = m/bc1, v̂ = v/bc2 (bc1, bc2 and wd = lr λ or 0 from the host, as the CPU). */
__global__ static void adamw_kernel(size_t n, float b1, float b2, float bc1, float bc2, float lr, float eps, float wd,
                                    float *p, const float *g, float *m, float *v)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float mi = b1 * m[i] + (1.0f - b1) * g[i];
        float vi = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, vhat = vi / bc2;
        p[i] -= lr * mhat / (sqrtf(vhat) + eps) + wd * p[i];
    }
}

extern "C" int sq_cuda_adamw_update(const sq_adamw_cfg *c, int t, float lr, int decay, float *p, const float *g,
                                    float *m, float *v, size_t n)
{
    const char *op = "cuda adamw";
    int rc;
    if ((rc = sq_check_ptr(op, "config", c)) || (rc = sq_check_ptr(op, "params", p)) ||
        (rc = sq_check_ptr(op, "grads", g)) || (rc = sq_check_ptr(op, "m", m)) || (rc = sq_check_ptr(op, "v", v)))
        return rc;
    if (t < 1) return sq_fail(SQ_EINVAL, "%s: step must be >= 1, got %d", op, t);
    if (!(c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1 && c->eps > 0 && c->weight_decay >= 0))
        return sq_fail(SQ_EINVAL, "%s: need 0 <= beta1, beta2 < 1, eps > 0, weight_decay >= 0", op);
    if (n == 0) return SQ_OK;
    float b1 = c->beta1, b2 = c->beta2;
    float bc1 = 1.0f - powf(b1, (float)t), bc2 = 1.0f - powf(b2, (float)t);
    float wd = decay ? lr * c->weight_decay : 0.0f;
    adamw_kernel<<<grid_for(n), BLOCK>>>(n, b1, b2, bc1, bc2, lr, c->eps, wd, p, g, m, v);
    return launched(op);
}

/* Blocks of the Σg² kernel for n values (at most 256; fixed for a given n). */
static unsigned sumsq_blocks(size_t n)
{
    size_t b = (n + 4 * BLOCK - 1) / (4 * BLOCK);
    return (unsigned)(b > 256 ? 256 : b);
}

/* part[blockIdx.x] = Σ g² over this block's share (double). */
__global__ static void sumsq_kernel(const float *g, size_t n, double *part)
{
    double s = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        s += (double)g[i] * g[i];
    s = block_sum(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

/* g *= scale. */
__global__ static void scale_kernel(float *g, size_t n, float scale)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        g[i] *= scale;
}

static int check_bufs(const char *op, float *const *g, const size_t *n, int k)
{
    int rc;
    if (k < 0) return sq_fail(SQ_EINVAL, "%s: buffer count must be >= 0, got %d", op, k);
    if (k > 0 && ((rc = sq_check_ptr(op, "buffers", g)) || (rc = sq_check_ptr(op, "sizes", n)))) return rc;
    for (int b = 0; b < k; b++)
        if (n[b] && !g[b]) return sq_fail(SQ_EINVAL, "%s: buffer %d is NULL", op, b);
    return SQ_OK;
}

/* Σ over buffers of Σ g² into *sum: per-block partials, then one block adds them in order. */
static int sum_squares(const char *op, float *const *g, const size_t *n, int k, double *sum)
{
    size_t parts = 0;
    void *s = NULL;
    cu_flags fl;
    int rc;
    for (int b = 0; b < k; b++) parts += sumsq_blocks(n[b]);
    *sum = 0;
    if (parts == 0) return SQ_OK;
    if ((rc = scratch(op, HEAD + parts * sizeof(double), &s))) return rc;
    cu_flags *f = (cu_flags *)s;
    double *part = (double *)((char *)s + HEAD);
    size_t at = 0;
    for (int b = 0; b < k; b++) {
        unsigned nb = sumsq_blocks(n[b]);
        if (!nb) continue;
        sumsq_kernel<<<nb, BLOCK>>>(g[b], n[b], part + at);
        at += nb;
    }
    sum_doubles<<<1, ONE_BLOCK>>>(part, parts, &f->total);
    if ((rc = launched(op)) || (rc = get_flags(op, f, &fl))) return rc;
    *sum = fl.total;
    return SQ_OK;
}

extern "C" double sq_cuda_global_norm(float *const *g, const size_t *n, int k)
{
    const char *op = "cuda global norm";
    double s = 0;
    if (check_bufs(op, g, n, k) || sum_squares(op, g, n, k, &s)) return NAN;
    return sqrt(s);
}

extern "C" double sq_cuda_clip_global_norm(float *const *g, const size_t *n, int k, double max_norm)
{
    const char *op = "cuda clip global norm";
    double s = 0;
    if (check_bufs(op, g, n, k) || sum_squares(op, g, n, k, &s)) return NAN;
    double norm = sqrt(s);
    if (max_norm > 0 && norm > max_norm) {
        float scale = (float)(max_norm / norm);
        for (int b = 0; b < k; b++)
            if (n[b]) scale_kernel<<<grid_for(n[b]), BLOCK>>>(g[b], n[b], scale);
        if (launched(op)) return NAN;
    }
    return norm;
}
