/* See cuda_util.h. */
#include <math.h>

#include "cuda_util.h"

float *to_device(const float *h, size_t n)
{
    float *d = NULL;
    if (!th_expect_ok("cuda malloc", sq_cuda_malloc(&d, n))) return NULL;
    th_expect_ok("upload", sq_cuda_upload(d, h, n));
    return d;
}

float *device_poisoned(size_t n)
{
    float *d = NULL;
    if (!th_expect_ok("cuda malloc", sq_cuda_malloc(&d, n))) return NULL;
    th_expect_ok("poison", sq_cuda_fill(d, NAN, n));
    return d;
}

double err_vs(const float *dev, const float *host, size_t n)
{
    float *h = sq_alloc_floats(n);
    th_expect_ok("download", sq_cuda_download(h, dev, n));
    double e = th_all_finite(h, n) ? th_rel_err_ff(h, host, n) : INFINITY;
    sq_free(h);
    return e;
}
