#include "harness.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int n_pass, n_fail, verbose;
static uint64_t seed;
static sq_rng rng;

void th_init(int argc, char **argv, const char *suite)
{
    seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-v")) verbose = 1;
    }
    sq_rng_seed(&rng, seed);
    printf("== %s (seed %llu; rerun with --seed %llu)\n", suite, (unsigned long long)seed,
           (unsigned long long)seed);
    fflush(stdout);
}

sq_rng *th_rng(void) { return &rng; }
uint64_t th_seed(void) { return seed; }

int th_check(int ok, const char *fmt, ...)
{
    if (ok) n_pass++;
    else n_fail++;
    if (!ok || verbose) {
        va_list ap;
        va_start(ap, fmt);
        printf("  %s ", ok ? "PASS" : "FAIL");
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
        fflush(stdout);
    }
    return ok;
}

int th_close(const char *what, double err, double tol)
{
    int ok = isfinite(err) && err < tol;
    if (ok) n_pass++;
    else n_fail++;
    printf("  %s %-60s err %.3g (tol %.1g)\n", ok ? "ok  " : "FAIL", what, err, tol);
    fflush(stdout);
    return ok;
}

int th_expect_error(const char *what, int rc, int want)
{
    const char *msg = sq_last_error();
    int ok = rc == want && strcmp(msg, "no error") != 0 && msg[0];
    th_check(ok, "%s: rc=%d (want %d), message: %s", what, rc, want, msg);
    sq_clear_error();
    return ok;
}

int th_expect_ok(const char *what, int rc)
{
    return th_check(rc == SQ_OK, "%s: rc=%d %s", what, rc, rc ? sq_last_error() : "");
}

double th_rel_err(const float *a, const double *ref, size_t n) { return sq_rel_err(a, ref, n); }

double th_rel_err_ff(const float *a, const float *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(ref[i])) return INFINITY;
        double e = (double)a[i] - ref[i];
        num += e * e;
        den += (double)ref[i] * ref[i];
    }
    return den < 1e-60 ? sqrt(num) : sqrt(num / den);
}

double th_rel_err_dd(const double *a, const double *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(ref[i])) return INFINITY;
        double e = a[i] - ref[i];
        num += e * e;
        den += ref[i] * ref[i];
    }
    return den < 1e-60 ? sqrt(num) : sqrt(num / den);
}

int th_all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "test harness: out of memory\n");
        exit(2);
    }
    return p;
}

float *th_randn(size_t n, float std)
{
    float *x = must(sq_alloc_floats(n));
    sq_rng_fill_normal(&rng, x, n, 0.0f, std);
    return x;
}

float *th_randu(size_t n, float lo, float hi)
{
    float *x = must(sq_alloc_floats(n));
    sq_rng_fill_uniform(&rng, x, n, lo, hi);
    return x;
}

double *th_to_double(const float *x, size_t n)
{
    double *y = must(sq_alloc_doubles(n));
    for (size_t i = 0; i < n; i++) y[i] = x[i];
    return y;
}

void th_poison(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = NAN;
}

void th_fd_grad(double (*loss)(void *ctx), void *ctx, double *x, size_t n, double eps, double *grad)
{
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i], h = eps * (fabs(x0) > 1 ? fabs(x0) : 1);
        x[i] = x0 + h;
        double lp = loss(ctx);
        x[i] = x0 - h;
        double lm = loss(ctx);
        x[i] = x0;
        grad[i] = (lp - lm) / (2 * h);
    }
}

double th_dot(const double *w, const double *a, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += w[i] * a[i];
    return s;
}

float *th_slice_time(const float *x, sq_dims d, int per_t, int t0, int n)
{
    float *y = must(sq_alloc_floats((size_t)d.B * n * per_t));
    for (int b = 0; b < d.B; b++)
        memcpy(y + (size_t)b * n * per_t, x + ((size_t)b * d.T + t0) * per_t, (size_t)n * per_t * sizeof(float));
    return y;
}

void th_put_time(float *x, sq_dims d, int per_t, int t0, int n, const float *y)
{
    for (int b = 0; b < d.B; b++)
        memcpy(x + ((size_t)b * d.T + t0) * per_t, y + (size_t)b * n * per_t, (size_t)n * per_t * sizeof(float));
}

int th_finish(void)
{
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
