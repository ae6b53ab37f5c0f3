/* The operators as `subq bench ops` sees them: random inputs of a shape,
 * a forward, a forward+backward, and the error of the forward against the
 * float64 reference (tests/ref.h) on the first batch element of the same run. */
#ifndef SUBQ_CLI_BENCH_OPS_H
#define SUBQ_CLI_BENCH_OPS_H

#include "../core/core.h"

typedef struct {
    const char *name;
    const char *flops_doc; /* the FLOP count used for gflops_fwd, in words */
    double (*flops_fwd)(sq_dims d, int chunk);
    void *(*create)(sq_dims d, int chunk, sq_rng *r); /* NULL (message set) on failure */
    int (*fwd)(void *c);
    int (*fwdbwd)(void *c);
    double (*check)(void *c); /* after fwd: ‖out − ref‖/‖ref‖ on batch 0, max over out and final state */
    void (*destroy)(void *c);
} bench_op;

extern const bench_op bench_ops[];
extern const int bench_nops;

/* The host's float32 GEMM rate at n×n×n in GFLOP/s (the BLAS, its threads). */
double sgemm_gflops(int n);
/* `subq bench model` (src/cli/bench_model.c). */
int bench_model_main(int argc, char **argv);

#endif
