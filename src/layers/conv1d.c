#include "conv1d.h"

#include <string.h>

#include "../core/core.h"

static int check(const char *op, int B, int T, int C, int W, const float *x, const float *w)
{
    int rc;
    if (B < 1 || T < 1 || C < 1) return sq_fail(SQ_EINVAL, "%s: sizes must be >= 1, got B=%d T=%d C=%d", op, B, T, C);
    if (W < 1) return sq_fail(SQ_EINVAL, "%s: kernel width must be >= 1, got %d", op, W);
    if ((rc = sq_check_ptr(op, "x", x)) || (rc = sq_check_ptr(op, "w", w))) return rc;
    return SQ_OK;
}

/* Input at time t (t may be negative: from the state) of channel c. */
static float input_at(const float *x, const float *st, int T, int C, int W, int b, int t, int c)
{
    if (t >= 0) return x[((size_t)b * T + t) * C + c];
    return st ? st[((size_t)b * (W - 1) + (W - 1 + t)) * C + c] : 0.0f;
}

int sq_conv1d_fwd(int B, int T, int C, int W, const float *x, const float *w, const float *bias,
                  const float *state0, float *y, float *state1)
{
    const char *op = "conv1d fwd";
    int rc;
    if ((rc = check(op, B, T, C, W, x, w)) || (rc = sq_check_ptr(op, "y", y))) return rc;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                float acc = bias ? bias[c] : 0.0f;
                for (int j = 0; j < W; j++) acc += w[(size_t)c * W + j] * input_at(x, state0, T, C, W, b, t - W + 1 + j, c);
                y[((size_t)b * T + t) * C + c] = acc;
            }
    /* The last W-1 inputs. state1 may alias state0: entry i reads state0's
     * entry T+i > i, which ascending i has not overwritten yet. */
    if (state1 && W > 1)
        for (int b = 0; b < B; b++)
            for (int i = 0; i < W - 1; i++)
                for (int c = 0; c < C; c++)
                    state1[((size_t)b * (W - 1) + i) * C + c] = input_at(x, state0, T, C, W, b, T - W + 1 + i, c);
    return SQ_OK;
}

int sq_conv1d_bwd(int B, int T, int C, int W, const float *x, const float *w, const float *state0, const float *dy,
                  float *dx, float *dw, float *dbias, float *dstate0)
{
    const char *op = "conv1d bwd";
    int rc;
    if ((rc = check(op, B, T, C, W, x, w)) || (rc = sq_check_ptr(op, "dy", dy)) || (rc = sq_check_ptr(op, "dx", dx)) ||
        (rc = sq_check_ptr(op, "dw", dw)))
        return rc;
    memset(dx, 0, (size_t)B * T * C * sizeof(float));
    if (dstate0 && W > 1) memset(dstate0, 0, (size_t)B * (W - 1) * C * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                float g = dy[((size_t)b * T + t) * C + c];
                if (dbias) dbias[c] += g;
                for (int j = 0; j < W; j++) {
                    int s = t - W + 1 + j;
                    dw[(size_t)c * W + j] += g * input_at(x, state0, T, C, W, b, s, c);
                    if (s >= 0) dx[((size_t)b * T + s) * C + c] += g * w[(size_t)c * W + j];
                    else if (dstate0) dstate0[((size_t)b * (W - 1) + (W - 1 + s)) * C + c] += g * w[(size_t)c * W + j];
                }
            }
    return SQ_OK;
}
