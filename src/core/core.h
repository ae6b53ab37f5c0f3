/* subq core: errors, dimensions, memory, random numbers, threads, BLAS, timing.
 * No model knowledge lives here (DESIGN.md §4). */
#ifndef SUBQ_CORE_H
#define SUBQ_CORE_H

#include <stddef.h>
#include <stdint.h>

/* ---- errors ------------------------------------------------------------
 * Every fallible function returns an int status: SQ_OK (0) or one of the
 * codes below, and leaves a message for sq_last_error() that says what was
 * wrong and what to do. The message is per thread. */
enum {
    SQ_OK = 0,
    SQ_EINVAL = 1, /* bad argument: shape, NULL pointer, option out of range */
    SQ_ENOMEM = 2, /* allocation failed */
    SQ_EIO = 3,    /* file system or format error */
    SQ_ENUM = 4    /* non-finite value where a finite one is needed */
};

/* Record a message (printf-style) and return code, so callers write
 * `return sq_fail(SQ_EINVAL, "mlstm: T must be >= 1, got %d", T);`. */
int sq_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *sq_last_error(void);
void sq_clear_error(void);
const char *sq_status_name(int code);

/* ---- dimensions ----------------------------------------------------------
 * Sequence activations are row-major [B, T, H, K] (DESIGN.md §1). */
typedef struct {
    int B; /* batch */
    int T; /* time steps */
    int H; /* heads */
    int K; /* key/query width per head */
    int V; /* value width per head */
} sq_dims;

/* Checks B, T, H, K, V >= 1 and that B*T*H*max(K,V) fits in a size_t and
 * an int index; `op` names the caller in the message. */
int sq_check_dims(const char *op, sq_dims d);
/* SQ_EINVAL with "op: NAME is NULL" when p is NULL. */
int sq_check_ptr(const char *op, const char *name, const void *p);
/* SQ_EINVAL unless chunk >= 1. */
int sq_check_chunk(const char *op, int chunk);

/* ---- memory --------------------------------------------------------------
 * 64-byte aligned float buffers. sq_alloc_floats returns NULL (with a
 * message) on failure; n == 0 returns a valid 1-element buffer. */
float *sq_alloc_floats(size_t n);
double *sq_alloc_doubles(size_t n);
void sq_free(void *p);

/* Workspace convention of the operators: a caller passes `work` of at least
 * sq_<op>_work_floats() floats (planned up front, e.g. in a model's arena),
 * or NULL, in which case the operator allocates it for the call. This helper
 * returns the buffer to use and sets *owned to what must be freed (or NULL). */
float *sq_work_or_alloc(float *work, size_t nfloats, float **owned);

/* ---- random numbers (splitmix64; deterministic for a seed) ---------------- */
typedef struct { uint64_t s; } sq_rng;
void sq_rng_seed(sq_rng *r, uint64_t seed);
uint64_t sq_rng_u64(sq_rng *r);
double sq_rng_uniform(sq_rng *r);              /* [0, 1) */
double sq_rng_normal(sq_rng *r);               /* N(0, 1), Box-Muller */
void sq_rng_fill_uniform(sq_rng *r, float *x, size_t n, float lo, float hi);
void sq_rng_fill_normal(sq_rng *r, float *x, size_t n, float mean, float std);

/* ---- threads -------------------------------------------------------------
 * One thread count for OpenMP and BLAS. n <= 0 means "all cores". */
void sq_set_threads(int n);
int sq_get_threads(void);

/* ---- BLAS ----------------------------------------------------------------
 * Row-major single-precision C = alpha * op(A) op(B) + beta * C, op(X) = X or
 * Xᵀ (transX != 0). op(A) is M×Kd, op(B) is Kd×N. Inside an OpenMP parallel
 * region OpenBLAS (the OpenMP build) runs single-threaded. */
void sq_sgemm(int transA, int transB, int M, int N, int Kd, float alpha,
              const float *A, int lda, const float *Bm, int ldb, float beta,
              float *C, int ldc);

/* ---- comparison ---------------------------------------------------------
 * ‖a - ref‖₂ / ‖ref‖₂ (the absolute ‖a - ref‖₂ when ref is all zero), in
 * double; INFINITY when any element of either is not finite. */
double sq_rel_err(const float *a, const double *ref, size_t n);

/* ---- text ------------------------------------------------------------------
 * Levenshtein distance between short strings (99 when either is longer than
 * 62 characters), for "did you mean" suggestions. */
int sq_edit_distance(const char *a, const char *b);

/* ---- time ------------------------------------------------------------------ */
double sq_now(void); /* seconds, monotonic */

#endif
