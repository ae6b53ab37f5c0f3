/* A small test harness: checks with messages, error measures, a seed that is
 * fresh each run and printed (rerun with --seed N), and the closing line
 * "N passed, N failed". */
#ifndef SUBQ_TEST_HARNESS_H
#define SUBQ_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "../src/core/core.h"

/* Parses --seed N (default: from the clock) and prints the suite and seed. */
void th_init(int argc, char **argv, const char *suite);
sq_rng *th_rng(void);
uint64_t th_seed(void);

/* Records one check; prints FAIL lines (and PASS lines with -v). */
int th_check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Passes when err is finite and err < tol; prints the measured err. */
int th_close(const char *what, double err, double tol);
/* Passes when rc == want and sq_last_error() holds a message; clears it. */
int th_expect_error(const char *what, int rc, int want);
/* Passes when rc == SQ_OK; prints sq_last_error() otherwise. */
int th_expect_ok(const char *what, int rc);

/* ‖a - ref‖₂ / ‖ref‖₂ (absolute ‖a - ref‖ when ‖ref‖ < 1e-30); INFINITY
 * if any element of a or ref is not finite. */
double th_rel_err(const float *a, const double *ref, size_t n);
double th_rel_err_ff(const float *a, const float *ref, size_t n);
double th_rel_err_dd(const double *a, const double *ref, size_t n);
/* 1 when every element is finite. */
int th_all_finite(const float *x, size_t n);

/* Buffers: fresh random float32 data, and float32 -> float64 copies. */
float *th_randn(size_t n, float std);
float *th_randu(size_t n, float lo, float hi);
double *th_to_double(const float *x, size_t n);
/* Fills with NaN so that an unwritten output element fails a check. */
void th_poison(float *x, size_t n);

/* Central finite differences in float64: grad[i] = (L(x+h e_i) - L(x-h e_i))/2h
 * with h = eps * max(1, |x_i|); loss reads x through ctx. */
void th_fd_grad(double (*loss)(void *ctx), void *ctx, double *x, size_t n, double eps, double *grad);
/* Σ w_i a_i in double. */
double th_dot(const double *w, const double *a, size_t n);

/* Time slices of a [B, T, per_t] tensor (d.B, d.T give B, T): a new buffer
 * holding rows [t0, t0+n) as [B, n, per_t], and the way back. */
float *th_slice_time(const float *x, sq_dims d, int per_t, int t0, int n);
void th_put_time(float *x, sq_dims d, int per_t, int t0, int n, const float *y);

/* Prints "N passed, N failed" and returns the process exit status. */
int th_finish(void);

#endif
