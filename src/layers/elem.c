#include "elem.h"

#include <math.h>
#include <string.h>

#include "../core/core.h"

/* n >= 1 and the buffers a (an input) and b (an output) given */
static int check(const char *op, size_t n, const void *a, const void *b)
{
    int rc;
    if (n < 1) return sq_fail(SQ_EINVAL, "%s: n must be >= 1", op);
    if ((rc = sq_check_ptr(op, "input", a)) || (rc = sq_check_ptr(op, "output", b))) return rc;
    return SQ_OK;
}

/* n >= 1 and the buffer x (updated in place) given */
static int check_inplace(const char *op, size_t n, const void *x)
{
    if (n < 1) return sq_fail(SQ_EINVAL, "%s: n must be >= 1", op);
    return sq_check_ptr(op, "x", x);
}

/* ---- memory ------------------------------------------------------------------ */

/* y = x */
int sq_copy(size_t n, const float *x, float *y)
{
    int rc = check("copy", n, x, y);
    if (rc) return rc;
    memcpy(y, x, n * sizeof(float));
    return SQ_OK;
}

/* x = 0 */
int sq_zero(size_t n, float *x)
{
    int rc = check_inplace("zero", n, x);
    if (rc) return rc;
    memset(x, 0, n * sizeof(float));
    return SQ_OK;
}

/* y = y + x */
int sq_add_to(size_t n, const float *x, float *y)
{
    int rc = check("add_to", n, x, y);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) y[i] += x[i];
    return SQ_OK;
}

/* y = a ⊙ b */
int sq_mul(size_t n, const float *a, const float *b, float *y)
{
    int rc = check("mul", n, a, y);
    if (rc || (rc = sq_check_ptr("mul", "b", b))) return rc;
    for (size_t i = 0; i < n; i++) y[i] = a[i] * b[i];
    return SQ_OK;
}

/* x = x / d (the mean of gradients summed over d micro-batches) */
int sq_div_scalar(size_t n, float d, float *x)
{
    int rc = check_inplace("div_scalar", n, x);
    if (rc) return rc;
    if (!(d != 0)) return sq_fail(SQ_EINVAL, "div_scalar: the divisor must be nonzero, got %g", d);
    for (size_t i = 0; i < n; i++) x[i] /= d;
    return SQ_OK;
}

/* dst[i, :n] = src[i, :n], rows i < N at strides lds and ldd */
int sq_copy_cols(int N, int n, const float *src, int lds, float *dst, int ldd)
{
    int rc;
    if (N < 1 || n < 1 || lds < n || ldd < n)
        return sq_fail(SQ_EINVAL, "copy_cols: need N, n >= 1 and strides >= n, got N=%d n=%d lds=%d ldd=%d", N, n, lds,
                       ldd);
    if ((rc = check("copy_cols", (size_t)n, src, dst))) return rc;
    for (size_t i = 0; i < (size_t)N; i++) memcpy(dst + i * ldd, src + i * lds, (size_t)n * sizeof(float));
    return SQ_OK;
}

/* ---- y = -exp(x) ----------------------------------------------------------------- */

int sq_neg_exp_fwd(size_t n, const float *x, float *y)
{
    int rc = check("neg_exp fwd", n, x, y);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) y[i] = -expf(x[i]);
    return SQ_OK;
}

/* dy/dx = -exp(x) = y, so dx += dy ⊙ y (x is a parameter: accumulate) */
int sq_neg_exp_bwd(size_t n, const float *y, const float *dy, float *dx)
{
    int rc = check("neg_exp bwd", n, y, dx);
    if (rc || (rc = sq_check_ptr("neg_exp bwd", "dy", dy))) return rc;
    for (size_t i = 0; i < n; i++) dx[i] += dy[i] * y[i];
    return SQ_OK;
}

/* ---- y = a ⊙ σ(g) ---------------------------------------------------------------- */

int sq_sigmoid_gate_fwd(size_t n, const float *a, const float *g, float *y)
{
    int rc = check("sigmoid gate fwd", n, a, y);
    if (rc || (rc = sq_check_ptr("sigmoid gate fwd", "g", g))) return rc;
    for (size_t i = 0; i < n; i++) y[i] = a[i] / (1 + expf(-g[i]));
    return SQ_OK;
}

/* s = σ(g): da = dy s, dg = dy a s (1 - s)  (σ' = σ(1 - σ)) */
int sq_sigmoid_gate_bwd(size_t n, const float *a, const float *g, const float *dy, float *da, float *dg)
{
    const char *op = "sigmoid gate bwd";
    int rc = check(op, n, a, da);
    if (rc || (rc = sq_check_ptr(op, "g", g)) || (rc = sq_check_ptr(op, "dy", dy)) || (rc = sq_check_ptr(op, "dg", dg)))
        return rc;
    for (size_t i = 0; i < n; i++) {
        float s = 1 / (1 + expf(-g[i]));
        da[i] = dy[i] * s;
        dg[i] = dy[i] * a[i] * s * (1 - s);
    }
    return SQ_OK;
}
