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

#endif
