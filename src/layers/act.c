#include "act.h"

#include <math.h>

#include "../core/core.h"

static int check(const char *op, size_t n, const void *a, const void *b, const void *c)
{
    int rc;
    if (n < 1) return sq_fail(SQ_EINVAL, "%s: n must be >= 1", op);
    if ((rc = sq_check_ptr(op, "input", a)) || (rc = sq_check_ptr(op, "input/output", b)) ||
        (rc = sq_check_ptr(op, "output", c)))
        return rc;
    return SQ_OK;
}

static inline float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

int sq_silu_fwd(size_t n, const float *x, float *y)
{
    int rc = check("silu fwd", n, x, y, y);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) y[i] = x[i] * sigm(x[i]);
    return SQ_OK;
}

/* d/dx x σ(x) = σ(x) (1 + x (1 - σ(x))) */
int sq_silu_bwd(size_t n, const float *x, const float *dy, float *dx)
{
    int rc = check("silu bwd", n, x, dy, dx);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        float s = sigm(x[i]);
        dx[i] = dy[i] * s * (1 + x[i] * (1 - s));
    }
    return SQ_OK;
}

static const float GELU_C = 0.7978845608028654f; /* √(2/π) */

int sq_gelu_fwd(size_t n, const float *x, float *y)
{
    int rc = check("gelu fwd", n, x, y, y);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        float u = GELU_C * (x[i] + 0.044715f * x[i] * x[i] * x[i]);
        y[i] = 0.5f * x[i] * (1 + tanhf(u));
    }
    return SQ_OK;
}

/* d/dx = ½(1 + tanh u) + ½ x (1 - tanh² u) √(2/π)(1 + 3·0.044715 x²) */
int sq_gelu_bwd(size_t n, const float *x, const float *dy, float *dx)
{
    int rc = check("gelu bwd", n, x, dy, dx);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        float u = GELU_C * (x[i] + 0.044715f * x[i] * x[i] * x[i]), t = tanhf(u);
        float du = GELU_C * (1 + 3 * 0.044715f * x[i] * x[i]);
        dx[i] = dy[i] * (0.5f * (1 + t) + 0.5f * x[i] * (1 - t * t) * du);
    }
    return SQ_OK;
}

int sq_swiglu_fwd(size_t n, const float *a, const float *b, float *y)
{
    int rc = check("swiglu fwd", n, a, b, y);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) y[i] = a[i] * sigm(a[i]) * b[i];
    return SQ_OK;
}

int sq_swiglu_bwd(size_t n, const float *a, const float *b, const float *dy, float *da, float *dbv)
{
    int rc = check("swiglu bwd", n, a, b, dy);
    if (rc || (rc = sq_check_ptr("swiglu bwd", "da", da)) || (rc = sq_check_ptr("swiglu bwd", "db", dbv))) return rc;
    for (size_t i = 0; i < n; i++) {
        float s = sigm(a[i]);
        da[i] = dy[i] * b[i] * s * (1 + a[i] * (1 - s));
        dbv[i] = dy[i] * a[i] * s;
    }
    return SQ_OK;
}
