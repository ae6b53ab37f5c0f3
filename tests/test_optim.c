/* Tests of AdamW, the learning-rate schedule and gradient clipping against
 * float64 transcriptions of their formulas. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../src/train/optim.h"
#include "harness.h"

/* AdamW in double for `steps` steps with fresh gradients each step. */
static void test_adamw(int decay)
{
    enum { N = 1000, STEPS = 5 };
    sq_adamw_cfg c = sq_adamw_defaults();
    c.weight_decay = 0.05f;
    float *p = th_randn(N, 1), *m = th_randn(N, 0), *v = th_randn(N, 0);
    memset(m, 0, sizeof(float) * N);
    memset(v, 0, sizeof(float) * N);
    double *pd = th_to_double(p, N), md[N] = {0}, vd[N] = {0};
    for (int t = 1; t <= STEPS; t++) {
        float *g = th_randn(N, 0.3f);
        double lr = 1e-2 * t;
        th_expect_ok("adamw step", sq_adamw_update(&c, t, (float)lr, decay, p, g, m, v, N));
        for (int i = 0; i < N; i++) {
            md[i] = 0.9 * md[i] + 0.1 * g[i];
            vd[i] = 0.95 * vd[i] + 0.05 * (double)g[i] * g[i];
            double mh = md[i] / (1 - pow(0.9, t)), vh = vd[i] / (1 - pow(0.95, t));
            pd[i] -= lr * mh / (sqrt(vh) + 1e-8) + (decay ? lr * 0.05 * pd[i] : 0);
        }
        sq_free(g);
    }
    char what[64];
    snprintf(what, sizeof what, "AdamW %d steps (decay %d) vs float64", STEPS, decay);
    th_close(what, th_rel_err(p, pd, N), 1e-5);
    sq_free(p); sq_free(m); sq_free(v); sq_free(pd);
}

static void test_schedule(void)
{
    int ok = 1;
    float prev = 0;
    for (int t = 0; t < 10; t++) {
        float lr = sq_lr_at(t, 10, 110, 1e-3f, 1e-5f);
        ok &= fabsf(lr - 1e-3f * (t + 1) / 10) < 1e-9f && lr > prev;
        prev = lr;
    }
    th_check(ok, "linear warm-up reaches lr_max at the end of warm-up");
    th_check(fabsf(sq_lr_at(10, 10, 110, 1e-3f, 1e-5f) - 1e-3f) < 1e-9f, "cosine starts at lr_max");
    th_check(fabsf(sq_lr_at(109, 10, 110, 1e-3f, 1e-5f) - 1e-5f) < 1e-9f, "cosine ends at lr_min");
    double mid = 1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + cos(M_PI * 49.0 / 99));
    th_check(fabs(sq_lr_at(59, 10, 110, 1e-3f, 1e-5f) - mid) < 1e-9, "cosine midpoint follows the formula");
}

static void test_clip(void)
{
    float *a = th_randn(300, 1), *b = th_randn(77, 2);
    float *g[2] = {a, b};
    size_t n[2] = {300, 77};
    double want = 0;
    for (int i = 0; i < 300; i++) want += (double)a[i] * a[i];
    for (int i = 0; i < 77; i++) want += (double)b[i] * b[i];
    want = sqrt(want);
    double got = sq_clip_global_norm(g, n, 2, want / 2);
    th_check(fabs(got - want) < 1e-9 * want, "global norm %.6f (want %.6f)", got, want);
    double after = sq_global_norm(g, n, 2);
    th_check(fabs(after - want / 2) < 1e-5 * want, "clipped to max_norm: %.6f", after);
    sq_clip_global_norm(g, n, 2, 10 * want);
    th_check(fabs(sq_global_norm(g, n, 2) - after) < 1e-9 * want, "no change below max_norm");
    sq_free(a); sq_free(b);
}

static void test_errors(void)
{
    sq_adamw_cfg c = sq_adamw_defaults();
    float p[2] = {1, 2}, g[2] = {1, 1}, m[2] = {0}, v[2] = {0};
    th_expect_error("step 0", sq_adamw_update(&c, 0, 1e-3f, 1, p, g, m, v, 2), SQ_EINVAL);
    th_expect_error("NULL grads", sq_adamw_update(&c, 1, 1e-3f, 1, p, NULL, m, v, 2), SQ_EINVAL);
    c.beta2 = 1.0f;
    th_expect_error("beta2 = 1", sq_adamw_update(&c, 1, 1e-3f, 1, p, g, m, v, 2), SQ_EINVAL);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "optimizer");
    test_adamw(0);
    test_adamw(1);
    test_schedule();
    test_clip();
    test_errors();
    return th_finish();
}
