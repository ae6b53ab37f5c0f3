/* A generic checker for a sequence operator described by its tensors:
 * float32 forward vs the float64 reference, finite-difference gradients of
 * every input and initial-state tensor, state carrying (two pieces, T
 * steps) forward and backward. Used by the per-operator test programs. */
#ifndef SUBQ_TEST_OPTEST_H
#define SUBQ_TEST_OPTEST_H

#include "../src/core/core.h"

enum { OT_MAX = 10 };

/* An input tensor: per_t > 0 means [B, T, per_t] (sliced along time);
 * otherwise fixed floats, not per batch. Drawn N(mean, std) or U(lo, hi). */
typedef struct {
    const char *name;
    int per_t;
    size_t fixed;
    int uniform;
    float a, b; /* mean, std or lo, hi */
} ot_tensor;

typedef struct {
    const char *name;
    size_t per_b;  /* floats per batch element: the state is [B, per_b] */
    int in_loss;   /* part of the finite-difference loss (0 for stabilizers) */
    int uniform;
    float a, b;
} ot_state;

typedef struct {
    const char *name;
    int n_in, n_state;
    ot_tensor in[OT_MAX];
    ot_state st[OT_MAX];
    int out_per_t; /* out is [B, T, out_per_t] */
    const void *opts;
    /* s0, s1, ds1, ds0 are arrays of n_state pointers, or NULL (zero state / not wanted). */
    int (*fwd)(sq_dims d, const void *opts, float **in, float **s0, float *out, float **s1);
    int (*bwd)(sq_dims d, const void *opts, float **in, float **s0, const float *dout, float **ds1, float **gin,
               float **ds0);
    int (*step)(sq_dims d, const void *opts, float **in, float **s, float *out); /* NULL: none */
    void (*ref)(sq_dims d, const void *opts, double **in, double **s0, double *out, double **s1);
} ot_op;

/* Each returns the number of failed checks. label names the case. */
int ot_check_fwd(const ot_op *op, sq_dims d, const char *label, int with_state, double tol);
int ot_check_grads(const ot_op *op, sq_dims d, const char *label, double tol);
int ot_check_carry(const ot_op *op, sq_dims d, int T1, const char *label);

#endif
