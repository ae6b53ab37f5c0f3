/* A model's parameters as one registry of named tensors in one buffer
 * (with a gradient buffer of the same layout), so that the optimizer and
 * checkpoints see one flat array and names match the safetensors file. */
#ifndef SUBQ_MODEL_PARAMS_H
#define SUBQ_MODEL_PARAMS_H

#include <stddef.h>
#include <stdint.h>

enum { SQ_PARAM_NAME = 96, SQ_PARAM_MAXDIM = 4 };

typedef struct {
    char name[SQ_PARAM_NAME];
    int ndim;
    int64_t shape[SQ_PARAM_MAXDIM];
    size_t off, n; /* offset into data/grad, number of floats */
    int decay;     /* 1: weight decay applies (matrices); 0: norms, biases, gates */
} sq_param;

typedef struct {
    sq_param *p;
    int n, cap;
    size_t total;      /* floats */
    float *data, *grad; /* NULL until sq_params_alloc */
} sq_params;

/* Registers a tensor (before sq_params_alloc); names must be unique. */
int sq_params_add(sq_params *ps, const char *name, int ndim, const int64_t *shape, int decay);
/* Allocates data and grad, zeroed. */
int sq_params_alloc(sq_params *ps);
/* The tensor of that name, or NULL. */
const sq_param *sq_params_find(const sq_params *ps, const char *name);
void sq_params_free(sq_params *ps);

#endif
