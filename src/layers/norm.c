#include "norm.h"

#include <math.h>

#include "../core/core.h"

static int check(const char *op, int N, int G, int Dg, int center, float eps)
{
    if (N < 1 || G < 1 || Dg < 1) return sq_fail(SQ_EINVAL, "%s: sizes must be >= 1, got N=%d G=%d Dg=%d", op, N, G, Dg);
    if (center != 0 && center != 1) return sq_fail(SQ_EINVAL, "%s: center must be 0 or 1", op);
    if (!(eps > 0)) return sq_fail(SQ_EINVAL, "%s: eps must be > 0, got %g", op, eps);
    return SQ_OK;
}

int sq_norm_fwd(int N, int G, int Dg, int center, float eps, const float *x, const float *w, const float *b,
                float *y, float *mu, float *r)
{
    const char *op = "norm fwd";
    int rc;
    if ((rc = check(op, N, G, Dg, center, eps)) || (rc = sq_check_ptr(op, "x", x)) || (rc = sq_check_ptr(op, "y", y)) ||
        (rc = sq_check_ptr(op, "r", r)) || (center && (rc = sq_check_ptr(op, "mu", mu))))
        return rc;
#pragma omp parallel for schedule(static) if ((size_t)N * G * Dg > 65536)
    for (int ng = 0; ng < N * G; ng++) {
        const float *xg = x + (size_t)ng * Dg;
        const float *wg = w ? w + (size_t)(ng % G) * Dg : NULL, *bg = b ? b + (size_t)(ng % G) * Dg : NULL;
        float *yg = y + (size_t)ng * Dg;
        double m = 0, v = 0;
        if (center) {
            for (int i = 0; i < Dg; i++) m += xg[i];
            m /= Dg;
        }
        for (int i = 0; i < Dg; i++) v += (xg[i] - m) * (xg[i] - m);
        float ri = (float)(1.0 / sqrt(v / Dg + eps)), mf = (float)m;
        for (int i = 0; i < Dg; i++) yg[i] = (xg[i] - mf) * ri * (wg ? wg[i] : 1.0f) + (bg ? bg[i] : 0.0f);
        r[ng] = ri;
        if (center) mu[ng] = mf;
    }
    return SQ_OK;
}

/* With x̂ = (x-μ) r and g = dy ⊙ w:
 *   dx = r (g - mean(g) [center] - x̂ mean(g ⊙ x̂)),  dw += dy ⊙ x̂,  db += dy. */
int sq_norm_bwd(int N, int G, int Dg, int center, const float *x, const float *w, const float *mu, const float *r,
                const float *dy, float *dx, float *dw, float *db)
{
    const char *op = "norm bwd";
    int rc;
    if ((rc = check(op, N, G, Dg, center, 1)) || (rc = sq_check_ptr(op, "x", x)) || (rc = sq_check_ptr(op, "r", r)) ||
        (rc = sq_check_ptr(op, "dy", dy)) || (rc = sq_check_ptr(op, "dx", dx)) ||
        (center && (rc = sq_check_ptr(op, "mu", mu))) || (w && (rc = sq_check_ptr(op, "dw", dw))))
        return rc;
    for (int ng = 0; ng < N * G; ng++) { /* serial over rows: dw, db accumulate */
        const float *xg = x + (size_t)ng * Dg, *dyg = dy + (size_t)ng * Dg;
        const float *wg = w ? w + (size_t)(ng % G) * Dg : NULL;
        float *dxg = dx + (size_t)ng * Dg, m = center ? mu[ng] : 0.0f, ri = r[ng];
        double sg = 0, sgx = 0;
        for (int i = 0; i < Dg; i++) {
            float xh = (xg[i] - m) * ri, g = dyg[i] * (wg ? wg[i] : 1.0f);
            sg += g;
            sgx += (double)g * xh;
            if (dw && wg) dw[(size_t)(ng % G) * Dg + i] += dyg[i] * xh;
            if (db) db[(size_t)(ng % G) * Dg + i] += dyg[i];
        }
        float mg = center ? (float)(sg / Dg) : 0.0f, mgx = (float)(sgx / Dg);
        for (int i = 0; i < Dg; i++) {
            float xh = (xg[i] - m) * ri, g = dyg[i] * (wg ? wg[i] : 1.0f);
            dxg[i] = ri * (g - mg - xh * mgx);
        }
    }
    return SQ_OK;
}

int sq_l2norm_fwd(int N, int D, float eps, const float *x, float *y, float *rnorm)
{
    const char *op = "l2norm fwd";
    int rc;
    if (N < 1 || D < 1) return sq_fail(SQ_EINVAL, "%s: sizes must be >= 1, got N=%d D=%d", op, N, D);
    if (!(eps > 0)) return sq_fail(SQ_EINVAL, "%s: eps must be > 0, got %g", op, eps);
    if ((rc = sq_check_ptr(op, "x", x)) || (rc = sq_check_ptr(op, "y", y)) || (rc = sq_check_ptr(op, "rnorm", rnorm)))
        return rc;
    for (int n = 0; n < N; n++) {
        double s = 0;
        for (int i = 0; i < D; i++) s += (double)x[(size_t)n * D + i] * x[(size_t)n * D + i];
        float rn = (float)(1.0 / sqrt(s + eps));
        for (int i = 0; i < D; i++) y[(size_t)n * D + i] = x[(size_t)n * D + i] * rn;
        rnorm[n] = rn;
    }
    return SQ_OK;
}

/* y = x r, r = (Σx² + eps)^{-1/2}: dx = r (dy - y (y·dy)) */
int sq_l2norm_bwd(int N, int D, const float *x, const float *rnorm, const float *dy, float *dx)
{
    const char *op = "l2norm bwd";
    int rc;
    if (N < 1 || D < 1) return sq_fail(SQ_EINVAL, "%s: sizes must be >= 1, got N=%d D=%d", op, N, D);
    if ((rc = sq_check_ptr(op, "x", x)) || (rc = sq_check_ptr(op, "rnorm", rnorm)) || (rc = sq_check_ptr(op, "dy", dy)) ||
        (rc = sq_check_ptr(op, "dx", dx)))
        return rc;
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D, *dyr = dy + (size_t)n * D;
        float rn = rnorm[n];
        double dot = 0;
        for (int i = 0; i < D; i++) dot += (double)xr[i] * rn * dyr[i];
        for (int i = 0; i < D; i++) dx[(size_t)n * D + i] = rn * (dyr[i] - xr[i] * rn * (float)dot);
    }
    return SQ_OK;
}
