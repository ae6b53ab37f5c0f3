/* `subq bench ops --device cuda`: the operators on the GPU, with the
 * device's ceilings measured in the same run. A build without nvcc links
 * src/cli/nogpu/bench_gpu.c, which says so. */
#ifndef SUBQ_CLI_BENCH_GPU_H
#define SUBQ_CLI_BENCH_GPU_H

#include "../core/core.h"

typedef struct {
    sq_dims d;
    int chunk, reps;
    const char *ops, *json; /* NULL: all / none */
    unsigned long long seed;
    int bf16; /* the operators' bf16 entry points (bf16 q, k, v, out and their gradients) */
} bench_gpu_cfg;

/* Prints the table (and writes the JSON); returns the exit status. */
int bench_ops_gpu(const bench_gpu_cfg *c);
/* The GPU's cuBLAS GEMM rates at 8192³ in TFLOP/s (float32, bf16); SQ_EINVAL without CUDA. */
int bench_gpu_gemm_rates(double *f32, double *bf16);
/* Median ms of operator `name`'s forward+backward on the GPU at d (random
 * inputs); -1 (message set) on failure. */
double bench_gpu_op_fwdbwd_ms(const char *name, sq_dims d, int chunk, int reps);

#endif
