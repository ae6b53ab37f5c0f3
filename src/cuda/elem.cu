/* The elementwise and memory primitives of src/layers/elem.h on the GPU
 * (device pointers, same semantics; the math is in that header):
 *   copy, zero, add_to (y += x), mul (y = a ⊙ b), div_scalar (x /= d), copy_cols,
 *   neg_exp (y = -eˣ; dx += dy ⊙ y), sigmoid_gate (y = a ⊙ σ(g)).
 * Grid-stride kernels of 256 threads; the copies are cudaMemcpy calls. */
#include <cuda_runtime.h>
#include <math.h>

#include "cuda.h"
#include "cuda_internal.h"

enum { ELEM_BLOCK = 256 };

static unsigned elem_grid(size_t n)
{
    size_t g = (n + ELEM_BLOCK - 1) / ELEM_BLOCK;
    return (unsigned)(g < 4096 ? (g ? g : 1) : 4096);
}

static int elem_check(const char *op, size_t n, const void *a, const void *b)
{
    int rc;
    if (n < 1) return sq_fail(SQ_EINVAL, "%s: n must be >= 1", op);
    if ((rc = sq_check_ptr(op, "input", a)) || (rc = sq_check_ptr(op, "output", b))) return rc;
    return SQ_OK;
}

extern "C" int sq_cuda_copy(size_t n, const float *x, float *y)
{
    int rc = elem_check("cuda copy", n, x, y);
    return rc ? rc : cu_check("cuda copy", cudaMemcpyAsync(y, x, n * sizeof(float), cudaMemcpyDeviceToDevice));
}

extern "C" int sq_cuda_zero(size_t n, float *x)
{
    int rc = elem_check("cuda zero", n, x, x);
    return rc ? rc : cu_check("cuda zero", cudaMemsetAsync(x, 0, n * sizeof(float)));
}

__global__ static void add_to_kernel(size_t n, const float *x, float *y)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}

extern "C" int sq_cuda_add_to(size_t n, const float *x, float *y)
{
    int rc = elem_check("cuda add_to", n, x, y);
    if (rc) return rc;
    add_to_kernel<<<elem_grid(n), ELEM_BLOCK>>>(n, x, y);
    return cu_check("cuda add_to", cudaGetLastError());
}

__global__ static void mul_kernel(size_t n, const float *a, const float *b, float *y)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = a[i] * b[i];
}

extern "C" int sq_cuda_mul(size_t n, const float *a, const float *b, float *y)
{
    int rc = elem_check("cuda mul", n, a, y);
    if (rc || (rc = sq_check_ptr("cuda mul", "b", b))) return rc;
    mul_kernel<<<elem_grid(n), ELEM_BLOCK>>>(n, a, b, y);
    return cu_check("cuda mul", cudaGetLastError());
}

__global__ static void div_kernel(size_t n, float d, float *x)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] /= d;
}

extern "C" int sq_cuda_div_scalar(size_t n, float d, float *x)
{
    int rc = elem_check("cuda div_scalar", n, x, x);
    if (rc) return rc;
    if (!(d != 0)) return sq_fail(SQ_EINVAL, "cuda div_scalar: the divisor must be nonzero, got %g", d);
    div_kernel<<<elem_grid(n), ELEM_BLOCK>>>(n, d, x);
    return cu_check("cuda div_scalar", cudaGetLastError());
}

extern "C" int sq_cuda_copy_cols(int N, int n, const float *src, int lds, float *dst, int ldd)
{
    const char *op = "cuda copy_cols";
    if (N < 1 || n < 1 || lds < n || ldd < n)
        return sq_fail(SQ_EINVAL, "%s: need N, n >= 1 and strides >= n, got N=%d n=%d lds=%d ldd=%d", op, N, n, lds,
                       ldd);
    int rc = elem_check(op, (size_t)n, src, dst);
    if (rc) return rc;
    return cu_check(op, cudaMemcpy2DAsync(dst, (size_t)ldd * sizeof(float), src, (size_t)lds * sizeof(float),
                                          (size_t)n * sizeof(float), (size_t)N, cudaMemcpyDeviceToDevice));
}

__global__ static void neg_exp_fwd_kernel(size_t n, const float *x, float *y)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = -expf(x[i]);
}

__global__ static void neg_exp_bwd_kernel(size_t n, const float *y, const float *dy, float *dx)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dx[i] += dy[i] * y[i];
}

extern "C" int sq_cuda_neg_exp_fwd(size_t n, const float *x, float *y)
{
    int rc = elem_check("cuda neg_exp fwd", n, x, y);
    if (rc) return rc;
    neg_exp_fwd_kernel<<<elem_grid(n), ELEM_BLOCK>>>(n, x, y);
    return cu_check("cuda neg_exp fwd", cudaGetLastError());
}

extern "C" int sq_cuda_neg_exp_bwd(size_t n, const float *y, const float *dy, float *dx)
{
    int rc = elem_check("cuda neg_exp bwd", n, y, dx);
    if (rc || (rc = sq_check_ptr("cuda neg_exp bwd", "dy", dy))) return rc;
    neg_exp_bwd_kernel<<<elem_grid(n), ELEM_BLOCK>>>(n, y, dy, dx);
    return cu_check("cuda neg_exp bwd", cudaGetLastError());
}

__global__ static void sigmoid_gate_fwd_kernel(size_t n, const float *a, const float *g, float *y)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = a[i] / (1 + expf(-g[i]));
}

/* s = σ(g): da = dy s, dg = dy a s (1 - s) */
__global__ static void sigmoid_gate_bwd_kernel(size_t n, const float *a, const float *g, const float *dy, float *da,
                                               float *dg)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float s = 1 / (1 + expf(-g[i]));
        da[i] = dy[i] * s; /* then dy read again, as on the CPU (da may be dy) */
        dg[i] = dy[i] * a[i] * s * (1 - s);
    }
}

extern "C" int sq_cuda_sigmoid_gate_fwd(size_t n, const float *a, const float *g, float *y)
{
    int rc = elem_check("cuda sigmoid gate fwd", n, a, y);
    if (rc || (rc = sq_check_ptr("cuda sigmoid gate fwd", "g", g))) return rc;
    sigmoid_gate_fwd_kernel<<<elem_grid(n), ELEM_BLOCK>>>(n, a, g, y);
    return cu_check("cuda sigmoid gate fwd", cudaGetLastError());
}

extern "C" int sq_cuda_sigmoid_gate_bwd(size_t n, const float *a, const float *g, const float *dy, float *da,
                                        float *dg)
{
    const char *op = "cuda sigmoid gate bwd";
    int rc = elem_check(op, n, a, da);
    if (rc || (rc = sq_check_ptr(op, "g", g)) || (rc = sq_check_ptr(op, "dy", dy)) || (rc = sq_check_ptr(op, "dg", dg)))
        return rc;
    sigmoid_gate_bwd_kernel<<<elem_grid(n), ELEM_BLOCK>>>(n, a, g, dy, da, dg);
    return cu_check(op, cudaGetLastError());
}
