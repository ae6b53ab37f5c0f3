/* Shared by the CUDA test files: device copies of host arrays, poisoned
 * outputs and the error of a device array against a host reference. */
#ifndef SUBQ_TESTS_CUDA_UTIL_H
#define SUBQ_TESTS_CUDA_UTIL_H

#include <stddef.h>

#include "../../src/cuda/cuda.h"
#include "../harness.h"

/* A device copy of a host array (NULL on failure, after a failed check). */
float *to_device(const float *h, size_t n);
/* A device array of n NaNs, so that an unwritten element fails a check. */
float *device_poisoned(size_t n);
/* ‖gpu − cpu‖/‖cpu‖ of a device array against a host one (INFINITY when
 * the device array holds a non-finite value). */
double err_vs(const float *dev, const float *host, size_t n);

/* bf16 on the host: the bits of x rounded to nearest even (NaN stays NaN),
 * their float value, x rounded to bf16 as a float, and a host array rounded
 * in place (so that the CPU reference sees the values the GPU gets). */
sq_bf16 bf16_bits(float x);
float bf16_value(sq_bf16 b);
float bf16_round(float x);
void bf16_round_all(float *x, size_t n);
/* A device bf16 copy of a host float array (rounded), a device bf16 array
 * of NaNs, and ‖gpu − cpu‖/‖cpu‖ of a device bf16 array against a host one
 * (INFINITY when the device array holds a non-finite value). */
sq_bf16 *to_device_bf16(const float *h, size_t n);
sq_bf16 *device_poisoned_bf16(size_t n);
double err_vs_bf16(const sq_bf16 *dev, const float *host, size_t n);

/* The test groups, one file each (tests/cuda/test_cuda_<op>.c); small != 0
 * (SUBQ_CUDA_SMALL=1, for the slow sanitizer runs) skips the long sequences. */
void cuda_test_gdn(int small);
void cuda_test_slstm(int small);
void cuda_test_attn(int small);
void cuda_test_layers(int small);
void cuda_test_train(int small);
void cuda_test_bf16(int small);
void cuda_test_gdn_bf16(void);

#endif
