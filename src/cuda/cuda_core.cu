/* Device discovery and buffers. */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>

#include "cuda.h"
#include "cuda_internal.h"

extern "C" int sq_cuda_device(char *name, size_t n)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0)
        return sq_fail(SQ_EINVAL, "no CUDA device is usable here (%s)",
                       e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    cudaDeviceProp p;
    int rc = cu_check("cuda device", cudaGetDeviceProperties(&p, 0));
    if (!rc && name)
        snprintf(name, n, "cuda: %s (sm_%d%d, %d SMs, %.0f GiB)", p.name, p.major, p.minor, p.multiProcessorCount,
                 p.totalGlobalMem / 1073741824.0);
    return rc;
}

extern "C" int sq_cuda_malloc(float **p, size_t n)
{
    *p = NULL;
    if (cudaMalloc((void **)p, (n ? n : 1) * sizeof(float)) != cudaSuccess) {
        *p = NULL;
        return sq_fail(SQ_ENOMEM, "cuda: out of device memory for %zu floats", n);
    }
    return SQ_OK;
}

extern "C" void sq_cuda_free(void *p)
{
    if (p) cudaFree(p);
}

extern "C" int sq_cuda_upload(float *dst, const float *src, size_t n)
{
    return cu_check("cuda upload", cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyHostToDevice));
}

extern "C" int sq_cuda_download(float *dst, const float *src, size_t n)
{
    return cu_check("cuda download", cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyDeviceToHost));
}

__global__ static void fill_kernel(float *dst, float v, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = v;
}

extern "C" int sq_cuda_fill(float *dst, float v, size_t n)
{
    fill_kernel<<<256, 256>>>(dst, v, n);
    return cu_check("cuda fill", cudaGetLastError());
}

/* A cuBLAS handle created on first use with math mode m. */
static int make_handle(const char *op, cublasHandle_t *h, cublasMath_t m)
{
    if (cublasCreate(h) != CUBLAS_STATUS_SUCCESS) return sq_fail(SQ_EINVAL, "%s: cannot start cuBLAS", op);
    if (cublasSetMathMode(*h, m) != CUBLAS_STATUS_SUCCESS)
        return sq_fail(SQ_EINVAL, "%s: cannot set cuBLAS's math mode", op);
    return SQ_OK;
}

int cu_cublas(const char *op, cublasHandle_t *h)
{
    static cublasHandle_t handle;
    static int ready;
    if (!ready) {
        int rc = make_handle(op, &handle, CUBLAS_PEDANTIC_MATH); /* float32 products stay float32 */
        if (rc) return rc;
        ready = 1;
    }
    *h = handle;
    return SQ_OK;
}

static int g_layer_math = SQ_CUDA_MATH_F32;

extern "C" int sq_cuda_set_layer_math(int mode)
{
    if (mode != SQ_CUDA_MATH_F32 && mode != SQ_CUDA_MATH_TF32 && mode != SQ_CUDA_MATH_BF16)
        return sq_fail(SQ_EINVAL,
                       "cuda: the layers' math must be SQ_CUDA_MATH_F32 (0), SQ_CUDA_MATH_TF32 (1) or "
                       "SQ_CUDA_MATH_BF16 (2), got %d",
                       mode);
    g_layer_math = mode;
    return SQ_OK;
}

int cu_layer_math(void) { return g_layer_math; }

/* The handle whose float32 products run on the TF32 tensor cores, created on first use. */
static int cublas_tf32(const char *op, cublasHandle_t *h)
{
    static cublasHandle_t handle;
    static int ready;
    if (!ready) {
        int rc = make_handle(op, &handle, CUBLAS_TF32_TENSOR_OP_MATH);
        if (rc) return rc;
        ready = 1;
    }
    *h = handle;
    return SQ_OK;
}

int cu_cublas_layers(const char *op, cublasHandle_t *h)
{
    return g_layer_math == SQ_CUDA_MATH_TF32 ? cublas_tf32(op, h) : cu_cublas(op, h);
}

static int g_op_tf32;

int cu_op_tf32(int on)
{
    int prev = g_op_tf32;
    g_op_tf32 = on;
    return prev;
}

int cu_op_tf32_on(void) { return g_op_tf32; }

int cu_gemm_rm(const char *op, int ta, int tb, int M, int N, int Kd, float alpha, const float *A, int lda,
               long long sa, const float *B, int ldb, long long sb, float beta, float *C, int ldc, long long sc,
               int batch)
{
    cublasHandle_t hd = NULL;
    int rc = g_op_tf32 ? cublas_tf32(op, &hd) : cu_cublas(op, &hd);
    if (rc) return rc;
    cublasStatus_t st = cublasSgemmStridedBatched(hd, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                                  N, M, Kd, &alpha, B, ldb, sb, A, lda, sa, &beta, C, ldc, sc, batch);
    return st == CUBLAS_STATUS_SUCCESS ? SQ_OK
                                       : sq_fail(SQ_EINVAL, "%s: cuBLAS batched GEMM failed (status %d)", op, (int)st);
}

extern "C" int sq_cuda_sync(void) { return cu_check("cuda sync", cudaDeviceSynchronize()); }

/* Median-free best of `reps` timed calls of fn after one warm-up, in seconds (events). */
static int best_seconds(const char *op, int (*fn)(void *), void *ctx, int reps, double *best)
{
    cudaEvent_t a, b;
    int rc = cu_check(op, cudaEventCreate(&a));
    if (!rc) rc = cu_check(op, cudaEventCreate(&b));
    if (rc) return rc;
    *best = INFINITY;
    for (int i = -1; !rc && i < reps; i++) {
        float ms = 0;
        if ((rc = cu_check(op, cudaEventRecord(a))) || (rc = fn(ctx)) || (rc = cu_check(op, cudaEventRecord(b))) ||
            (rc = cu_check(op, cudaEventSynchronize(b))) || (rc = cu_check(op, cudaEventElapsedTime(&ms, a, b))))
            break;
        if (i >= 0 && ms * 1e-3 < *best) *best = ms * 1e-3;
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return rc;
}

typedef struct {
    void *src, *dst;
    size_t bytes;
} copy_ctx;

static int do_copy(void *p)
{
    copy_ctx *c = (copy_ctx *)p;
    return cu_check("cuda copy rate", cudaMemcpyAsync(c->dst, c->src, c->bytes, cudaMemcpyDeviceToDevice));
}

extern "C" int sq_cuda_copy_rate(double *tb_per_s)
{
    copy_ctx c = {NULL, NULL, (size_t)1 << 30};
    int rc = cu_check("cuda copy rate", cudaMalloc(&c.src, c.bytes));
    if (!rc) rc = cu_check("cuda copy rate", cudaMalloc(&c.dst, c.bytes));
    if (!rc) rc = cu_check("cuda copy rate", cudaMemset(c.src, 1, c.bytes));
    double s = 0;
    if (!rc) rc = best_seconds("cuda copy rate", do_copy, &c, 5, &s);
    if (!rc) *tb_per_s = 2.0 * c.bytes / s / 1e12;
    cudaFree(c.src);
    cudaFree(c.dst);
    return rc;
}

typedef struct {
    int bf16, n;
    void *A, *B, *C;
} gemm_ctx;

static int do_gemm(void *p)
{
    gemm_ctx *g = (gemm_ctx *)p;
    cublasHandle_t h = NULL;
    int rc = cu_cublas("cuda gemm rate", &h);
    if (rc) return rc;
    float one = 1, zero = 0;
    cudaDataType t = g->bf16 ? CUDA_R_16BF : CUDA_R_32F;
    cublasComputeType_t ct = g->bf16 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_PEDANTIC;
    cublasStatus_t st = cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, g->n, g->n, g->n, &one, g->A, t, g->n, g->B, t, g->n,
                                     &zero, g->C, t, g->n, ct, CUBLAS_GEMM_DEFAULT);
    return st == CUBLAS_STATUS_SUCCESS ? SQ_OK : sq_fail(SQ_EINVAL, "cuda gemm rate: cuBLAS failed (status %d)", (int)st);
}

__global__ static void fill_random(void *x, size_t n, int bf16)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        unsigned u = (unsigned)(i * 2654435761u);
        float v = (float)(u >> 8) / 16777216.0f - 0.5f; /* random data, not zeros */
        if (bf16) ((__nv_bfloat16 *)x)[i] = __float2bfloat16(v);
        else ((float *)x)[i] = v;
    }
}

extern "C" int sq_cuda_gemm_rate(int bf16, int n, double *tflops)
{
    gemm_ctx g = {bf16, n, NULL, NULL, NULL};
    size_t bytes = (size_t)n * n * (bf16 ? 2 : 4);
    int rc = cu_check("cuda gemm rate", cudaMalloc(&g.A, bytes));
    if (!rc) rc = cu_check("cuda gemm rate", cudaMalloc(&g.B, bytes));
    if (!rc) rc = cu_check("cuda gemm rate", cudaMalloc(&g.C, bytes));
    if (!rc) {
        fill_random<<<1024, 256>>>(g.A, (size_t)n * n, bf16);
        fill_random<<<1024, 256>>>(g.B, (size_t)n * n, bf16);
        rc = cu_check("cuda gemm rate", cudaGetLastError());
    }
    double s = 0;
    if (!rc) rc = best_seconds("cuda gemm rate", do_gemm, &g, 5, &s);
    if (!rc) *tflops = 2.0 * n * n * (double)n / s / 1e12;
    cudaFree(g.A);
    cudaFree(g.B);
    cudaFree(g.C);
    return rc;
}
