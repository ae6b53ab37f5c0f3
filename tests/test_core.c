/* Tests of src/core: error reporting, argument checks, RNG, SGEMM wrapper. */
#include <math.h>
#include <stdio.h>

#include "harness.h"

static void test_errors(void)
{
    sq_dims ok = {2, 3, 4, 5, 6}, bad = {2, 0, 4, 5, 6};
    th_expect_ok("valid dims", sq_check_dims("core", ok));
    th_expect_error("T = 0 rejected", sq_check_dims("core", bad), SQ_EINVAL);
    th_expect_error("NULL pointer rejected", sq_check_ptr("core", "q", NULL), SQ_EINVAL);
    th_expect_error("chunk 0 rejected", sq_check_chunk("core", 0), SQ_EINVAL);
    sq_dims huge = {1 << 20, 1 << 20, 64, 64, 64};
    th_expect_error("overflowing shape rejected", sq_check_dims("core", huge), SQ_EINVAL);
}

static void test_rng(void)
{
    sq_rng a, b;
    sq_rng_seed(&a, th_seed());
    sq_rng_seed(&b, th_seed());
    int same = 1;
    double mean = 0, var = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double x = sq_rng_normal(&a), y = sq_rng_normal(&b);
        same &= x == y;
        mean += x;
        var += x * x;
    }
    mean /= n;
    var = var / n - mean * mean;
    th_check(same, "same seed gives the same stream");
    th_check(fabs(mean) < 0.02 && fabs(var - 1) < 0.02, "normal mean %.4f var %.4f", mean, var);
}

static void test_sgemm(void)
{
    sq_rng *r = th_rng();
    int M = 7 + (int)(sq_rng_u64(r) % 20), N = 5 + (int)(sq_rng_u64(r) % 20), K = 3 + (int)(sq_rng_u64(r) % 20);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            float *A = th_randn((size_t)M * K, 1), *B = th_randn((size_t)K * N, 1), *C = th_randn((size_t)M * N, 1);
            double *ref = th_to_double(C, (size_t)M * N);
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double s = 0;
                    for (int l = 0; l < K; l++) {
                        double av = ta ? A[l * M + i] : A[i * K + l];
                        double bv = tb ? B[j * K + l] : B[l * N + j];
                        s += av * bv;
                    }
                    ref[i * N + j] = 0.5 * ref[i * N + j] + 1.5 * s;
                }
            sq_sgemm(ta, tb, M, N, K, 1.5f, A, ta ? M : K, B, tb ? K : N, 0.5f, C, N);
            char what[64];
            snprintf(what, sizeof what, "sgemm transA=%d transB=%d (%dx%dx%d)", ta, tb, M, N, K);
            th_close(what, th_rel_err(C, ref, (size_t)M * N), 1e-5);
            sq_free(A); sq_free(B); sq_free(C); sq_free(ref);
        }
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "core");
    test_errors();
    test_rng();
    test_sgemm();
    return th_finish();
}
