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
