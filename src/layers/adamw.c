#include "adamw.h"

#include <math.h>

#include "../core/core.h"

int sq_adamw_update(const sq_adamw_cfg *c, int t, float lr, int decay, float *p, const float *g, float *m, float *v,
                    size_t n)
{
    int rc;
    if ((rc = sq_check_ptr("adamw", "config", c)) || (rc = sq_check_ptr("adamw", "params", p)) ||
        (rc = sq_check_ptr("adamw", "grads", g)) || (rc = sq_check_ptr("adamw", "m", m)) ||
        (rc = sq_check_ptr("adamw", "v", v)))
        return rc;
    if (t < 1) return sq_fail(SQ_EINVAL, "adamw: step must be >= 1, got %d", t);
    if (!(c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1 && c->eps > 0 && c->weight_decay >= 0))
        return sq_fail(SQ_EINVAL, "adamw: need 0 <= beta1, beta2 < 1, eps > 0, weight_decay >= 0");
    float b1 = c->beta1, b2 = c->beta2;
    float bc1 = 1.0f - powf(b1, (float)t), bc2 = 1.0f - powf(b2, (float)t);
    float wd = decay ? lr * c->weight_decay : 0.0f;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        float mhat = m[i] / bc1, vhat = v[i] / bc2;
        p[i] -= lr * mhat / (sqrtf(vhat) + c->eps) + wd * p[i];
    }
    return SQ_OK;
}

double sq_global_norm(float *const *g, const size_t *n, int k)
{
    double s = 0;
    for (int b = 0; b < k; b++)
        for (size_t i = 0; i < n[b]; i++) s += (double)g[b][i] * g[b][i];
    return sqrt(s);
}

double sq_clip_global_norm(float *const *g, const size_t *n, int k, double max_norm)
{
    double norm = sq_global_norm(g, n, k);
    if (max_norm > 0 && norm > max_norm) {
        float scale = (float)(max_norm / norm);
        for (int b = 0; b < k; b++)
            for (size_t i = 0; i < n[b]; i++) g[b][i] *= scale;
    }
    return norm;
}
