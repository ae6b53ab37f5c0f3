/* Device discovery and buffers. */
#include <cuda_runtime.h>
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

int cu_cublas(const char *op, cublasHandle_t *h)
{
    static cublasHandle_t handle;
    static int ready;
    if (!ready) {
        if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) return sq_fail(SQ_EINVAL, "%s: cannot start cuBLAS", op);
        cublasSetMathMode(handle, CUBLAS_PEDANTIC_MATH); /* float32 products stay float32 */
        ready = 1;
    }
    *h = handle;
    return SQ_OK;
}

extern "C" int sq_cuda_sync(void) { return cu_check("cuda sync", cudaDeviceSynchronize()); }
