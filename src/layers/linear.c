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

int sq_linear_bwd(int N, int in, int out, const float *x, const float *W, const float *dy, float *dx, float *dW,
                  float *db)
{
    int rc;
    if ((rc = check("linear bwd", N, in, out)) || (rc = sq_check_ptr("linear bwd", "x", x)) ||
        (rc = sq_check_ptr("linear bwd", "W", W)) || (rc = sq_check_ptr("linear bwd", "dy", dy)) ||
        (rc = sq_check_ptr("linear bwd", "dW", dW)))
        return rc;
    if (dx) sq_sgemm(0, 0, N, in, out, 1, dy, out, W, in, 0, dx, in);   /* dx = dy W */
    sq_sgemm(1, 0, out, in, N, 1, dy, out, x, in, 1, dW, in);          /* dW += dyᵀ x */
    if (db)
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int n = 0; n < N; n++) s += dy[(size_t)n * out + o];
            db[o] += (float)s;
        }
    return SQ_OK;
}
