#include "linear.h"

#include <string.h>

#include "../core/core.h"

static int check(const char *op, int N, int in, int out)
{
    if (N < 1 || in < 1 || out < 1)
        return sq_fail(SQ_EINVAL, "%s: sizes must be >= 1, got N=%d in=%d out=%d", op, N, in, out);
    return SQ_OK;
}

int sq_linear_fwd(int N, int in, int out, const float *x, const float *W, const float *b, float *y)
{
    int rc;
    if ((rc = check("linear fwd", N, in, out)) || (rc = sq_check_ptr("linear fwd", "x", x)) ||
        (rc = sq_check_ptr("linear fwd", "W", W)) || (rc = sq_check_ptr("linear fwd", "y", y)))
        return rc;
    if (b)
        for (int n = 0; n < N; n++) memcpy(y + (size_t)n * out, b, (size_t)out * sizeof(float));
    sq_sgemm(0, 1, N, out, in, 1, x, in, W, in, b ? 1 : 0, y, out);
    return SQ_OK;
}

int sq_linear_fwd_acc(int N, int in, int out, const float *x, const float *W, const float *b, float *y)
{
    int rc;
    if ((rc = check("linear fwd acc", N, in, out)) || (rc = sq_check_ptr("linear fwd acc", "x", x)) ||
        (rc = sq_check_ptr("linear fwd acc", "W", W)) || (rc = sq_check_ptr("linear fwd acc", "y", y)))
        return rc;
    sq_sgemm(0, 1, N, out, in, 1, x, in, W, in, 1, y, out);
    if (b)
        for (size_t n = 0; n < (size_t)N; n++)
            for (int o = 0; o < out; o++) y[n * out + o] += b[o];
    return SQ_OK;
}

/* dx = β dx + dy W, dW += dyᵀ x, db += Σ_n dy_n. */
static int linear_bwd(const char *op, float beta, int N, int in, int out, const float *x, const float *W,
                      const float *dy, float *dx, float *dW, float *db)
{
    int rc;
    if ((rc = check(op, N, in, out)) || (rc = sq_check_ptr(op, "x", x)) || (rc = sq_check_ptr(op, "W", W)) ||
        (rc = sq_check_ptr(op, "dy", dy)) || (rc = sq_check_ptr(op, "dW", dW)))
        return rc;
    if (dx) sq_sgemm(0, 0, N, in, out, 1, dy, out, W, in, beta, dx, in);
    sq_sgemm(1, 0, out, in, N, 1, dy, out, x, in, 1, dW, in);
    if (db)
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int n = 0; n < N; n++) s += dy[(size_t)n * out + o];
            db[o] += (float)s;
        }
    return SQ_OK;
}

int sq_linear_bwd(int N, int in, int out, const float *x, const float *W, const float *dy, float *dx, float *dW,
                  float *db)
{
    return linear_bwd("linear bwd", 0, N, in, out, x, W, dy, dx, dW, db);
}

int sq_linear_bwd_acc(int N, int in, int out, const float *x, const float *W, const float *dy, float *dx, float *dW,
                      float *db)
{
    return linear_bwd("linear bwd", 1, N, in, out, x, W, dy, dx, dW, db);
}
