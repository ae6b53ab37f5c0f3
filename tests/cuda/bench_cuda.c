/* Times the CUDA operators built so far at FLA's standard shapes (median
 * of repeated runs, synchronized wall clock) next to the device-to-device
 * copy rate measured in the same run. A benchmark, not a test: it checks
 * nothing but prints what it measured, with shape and device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/cuda/cuda.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *dev_rand(size_t n, sq_rng *r, float lo, float hi)
{
    float *h = sq_alloc_floats(n), *d = NULL;
    sq_rng_fill_uniform(r, h, n, lo, hi);
    if (sq_cuda_malloc(&d, n) || sq_cuda_upload(d, h, n)) d = NULL;
    sq_free(h);
    return d;
}

int main(void)
{
    char name[256];
    if (sq_cuda_device(name, sizeof name)) {
        fprintf(stderr, "bench_cuda: %s\n", sq_last_error());
        return 1;
    }
    printf("%s\n", name);
    const sq_dims shapes[] = {{4, 4096, 16, 128, 128}, {8, 2048, 8, 64, 64}, {1, 16384, 16, 128, 128},
                              {2, 16384, 16, 128, 128}};
    printf("%-8s %-22s %10s %12s %12s\n", "op", "shape", "fwd_ms", "GFLOP/s", "fwdbwd_ms");
    sq_rng r;
    sq_rng_seed(&r, 1);
    for (int s = 0; s < 4; s++) {
        sq_dims d = shapes[s];
        size_t nq = (size_t)d.B * d.T * d.H * d.K, ng = (size_t)d.B * d.T * d.H;
        float *q = dev_rand(nq, &r, -1, 1), *k = dev_rand(nq, &r, -1, 1), *v = dev_rand(nq, &r, -1, 1);
        float *ig = dev_rand(ng, &r, -3, 3), *fg = dev_rand(ng, &r, 0, 6), *out = NULL;
        if (!q || !k || !v || !ig || !fg || sq_cuda_malloc(&out, nq)) {
            fprintf(stderr, "bench_cuda: %s\n", sq_last_error());
            return 1;
        }
        sq_mlstm_in in = {q, k, v, ig, fg};
        float *dq = NULL, *dk = NULL, *dv = NULL, *dig = NULL, *dfg = NULL;
        if (sq_cuda_malloc(&dq, nq) || sq_cuda_malloc(&dk, nq) || sq_cuda_malloc(&dv, nq) || sq_cuda_malloc(&dig, ng) ||
            sq_cuda_malloc(&dfg, ng)) {
            fprintf(stderr, "bench_cuda: %s\n", sq_last_error());
            return 1;
        }
        sq_mlstm_grad gr = {dq, dk, dv, dig, dfg};
        float *work = NULL;
        if (sq_cuda_malloc(&work, sq_cuda_scalar_work_floats(d, 64))) {
            fprintf(stderr, "bench_cuda: %s\n", sq_last_error());
            return 1;
        }
        for (int op = 0; op < 2; op++) {
            double t[10], tb[10];
            for (int rep = -2; rep < 10; rep++) {
                double t0 = sq_now();
                int rc = op == 0 ? sq_cuda_mlstm_fwd(d, NULL, &in, NULL, out, NULL, work)
                                 : sq_cuda_linattn_fwd(d, NULL, q, k, v, NULL, out, NULL, work);
                if (rc || sq_cuda_sync()) {
                    fprintf(stderr, "bench_cuda: %s\n", sq_last_error());
                    return 1;
                }
                double t1 = sq_now();
                /* the backward recomputes the forward itself: fwd+bwd = fwd + bwd call */
                rc = op == 0 ? sq_cuda_mlstm_bwd(d, NULL, &in, NULL, out, NULL, &gr, NULL, work)
                             : sq_cuda_linattn_bwd(d, NULL, q, k, v, NULL, out, NULL, dq, dk, dv, NULL, work);
                if (rc || sq_cuda_sync()) {
                    fprintf(stderr, "bench_cuda: %s\n", sq_last_error());
                    return 1;
                }
                if (rep >= 0) t[rep] = (t1 - t0) * 1e3, tb[rep] = (sq_now() - t0) * 1e3;
            }
            qsort(t, 10, sizeof t[0], cmp);
            qsort(tb, 10, sizeof tb[0], cmp);
            /* the chunkwise FLOP count of docs/bench.md at chunk L = 64: B·T·H·(2L(K+V) + 4KV) */
            double flops = (double)d.B * d.T * d.H * (2.0 * 64 * (d.K + d.V) + 4.0 * d.K * d.V);
            char shape[64];
            snprintf(shape, sizeof shape, "B%d_T%d_H%d_D%d", d.B, d.T, d.H, d.K);
            printf("%-8s %-22s %10.3f %12.1f %12.3f\n", op == 0 ? "mlstm" : "linattn", shape, t[5], flops / t[5] / 1e6,
                   tb[5]);
        }
        /* SSD with one group per head (mamba's reference setting): B, C [B,T,H,K] */
        float *dtb = dev_rand(d.H, &r, -1, 1), *A = dev_rand(d.H, &r, -2, -0.5f), *D = dev_rand(d.H, &r, 0, 1);
        float *gb = NULL, *gh = NULL;
        if (!dtb || !A || !D || sq_cuda_malloc(&gb, d.H) || sq_cuda_malloc(&gh, d.H)) {
            fprintf(stderr, "bench_cuda: %s\n", sq_last_error());
            return 1;
        }
        sq_ssd_opts so = {64, d.H};
        sq_ssd_in sin = {v, k, q, ig, dtb, A, D};
        sq_ssd_grad sg = {dv, dk, dq, dig, gb, gh, gb};
        double t[10], tb[10];
        for (int rep = -2; rep < 10; rep++) {
            double t0 = sq_now();
            if (sq_cuda_ssd_fwd(d, &so, &sin, NULL, out, NULL, work) || sq_cuda_sync()) {
                fprintf(stderr, "bench_cuda: %s\n", sq_last_error());
                return 1;
            }
            double t1 = sq_now();
            if (sq_cuda_ssd_bwd(d, &so, &sin, NULL, out, NULL, &sg, NULL, work) || sq_cuda_sync()) {
                fprintf(stderr, "bench_cuda: %s\n", sq_last_error());
                return 1;
            }
            if (rep >= 0) t[rep] = (t1 - t0) * 1e3, tb[rep] = (sq_now() - t0) * 1e3;
        }
        qsort(t, 10, sizeof t[0], cmp);
        qsort(tb, 10, sizeof tb[0], cmp);
        double flops = (double)d.B * d.T * d.H * (2.0 * 64 * (d.K + d.V) + 4.0 * d.K * d.V);
        char shape[64];
        snprintf(shape, sizeof shape, "B%d_T%d_H%d_D%d", d.B, d.T, d.H, d.K);
        printf("%-8s %-22s %10.3f %12.1f %12.3f\n", "ssd", shape, t[5], flops / t[5] / 1e6, tb[5]);
        float *all[] = {q, k, v, ig, fg, out, work, dq, dk, dv, dig, dfg, dtb, A, D, gb, gh};
        for (int i = 0; i < 17; i++) sq_cuda_free(all[i]);
    }
    return 0;
}
