/* See cuda_util.h. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

sq_bf16 bf16_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if (isnan(x)) return (sq_bf16)((u >> 16) | 0x40); /* a quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                  /* round to nearest, ties to even */
    return (sq_bf16)(u >> 16);
}

float bf16_value(sq_bf16 b)
{
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

float bf16_round(float x) { return bf16_value(bf16_bits(x)); }

void bf16_round_all(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = bf16_round(x[i]);
}

sq_bf16 *to_device_bf16(const float *h, size_t n)
{
    sq_bf16 *d = NULL, *b = malloc((n + 1) * sizeof *b);
    if (!th_check(b != NULL, "host malloc of %zu bf16", n)) return NULL;
    for (size_t i = 0; i < n; i++) b[i] = bf16_bits(h[i]);
    if (th_expect_ok("cuda malloc bf16", sq_cuda_malloc_bf16(&d, n)))
        th_expect_ok("upload bf16", sq_cuda_upload_bf16(d, b, n));
    free(b);
    return d;
}

sq_bf16 *device_poisoned_bf16(size_t n)
{
    float *nan = sq_alloc_floats(n);
    for (size_t i = 0; i < n; i++) nan[i] = NAN;
    sq_bf16 *d = to_device_bf16(nan, n);
    sq_free(nan);
    return d;
}

double err_vs_bf16(const sq_bf16 *dev, const float *host, size_t n)
{
    sq_bf16 *b = malloc((n + 1) * sizeof *b);
    float *h = sq_alloc_floats(n);
    double e = INFINITY;
    if (th_check(b != NULL && h != NULL, "host malloc of %zu bf16", n) &&
        th_expect_ok("download bf16", sq_cuda_download_bf16(b, dev, n))) {
        for (size_t i = 0; i < n; i++) h[i] = bf16_value(b[i]);
        e = th_all_finite(h, n) ? th_rel_err_ff(h, host, n) : INFINITY;
    }
    free(b);
    sq_free(h);
    return e;
}
