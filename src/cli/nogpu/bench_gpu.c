/* The GPU benchmark in a build without CUDA. */
#include <stdio.h>

#include "../bench_gpu.h"

int bench_ops_gpu(const bench_gpu_cfg *c)
{
    (void)c;
    fprintf(stderr, "subq bench ops: --device cuda is not available: this subq was built without CUDA "
                    "(nvcc was not found at build time; see README, 'On a GPU')\n");
    return 2;
}

int bench_gpu_gemm_rates(double *f32, double *bf16)
{
    *f32 = *bf16 = 0;
    return sq_fail(SQ_EINVAL, "this subq was built without CUDA");
}

double bench_gpu_op_fwdbwd_ms(const char *name, sq_dims d, int chunk, int reps)
{
    (void)name, (void)d, (void)chunk, (void)reps;
    sq_fail(SQ_EINVAL, "this subq was built without CUDA");
    return -1;
}
