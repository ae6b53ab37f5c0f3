/* `subq bench ops --device cuda`: each operator built on the GPU at one
 * shape, forward and forward+backward (median of reps, synchronized), its
 * output checked against the CPU implementation on batch element 0, and
 * the device's ceilings (device-to-device copy rate, cuBLAS GEMM rates)
 * measured in the same run. Operators not yet on the GPU get a row that
 * says so. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cuda/cuda.h"
#include "../bench_gpu.h"
#include "../bench_ops.h"

enum { MAXBUF = 24 };

/* A case: host inputs (for the CPU check) and their device copies. */
typedef struct {
    const char *name;
    sq_dims d;
    int chunk;
    float *host[MAXBUF], *dev[MAXBUF];
    size_t n[MAXBUF];
    int nbuf;
    float *work;
} gcase;

/* Adds a buffer of n floats: random in [lo, hi] on both sides (lo == hi: on the device only, uninitialised). */
static int add(gcase *c, size_t n, sq_rng *r, float lo, float hi)
{
    int i = c->nbuf++;
    c->n[i] = n;
    c->host[i] = NULL;
    if (lo < hi) {
        c->host[i] = sq_alloc_floats(n);
        if (!c->host[i]) return sq_fail(SQ_ENOMEM, "bench: out of host memory");
        sq_rng_fill_uniform(r, c->host[i], n, lo, hi);
    }
    int rc = sq_cuda_malloc(&c->dev[i], n);
    if (!rc && c->host[i]) rc = sq_cuda_upload(c->dev[i], c->host[i], n);
    return rc;
}

static void gcase_free(gcase *c)
{
    for (int i = 0; i < c->nbuf; i++) {
        sq_free(c->host[i]);
        sq_cuda_free(c->dev[i]);
    }
    sq_cuda_free(c->work);
}

/* Buffers per op (in order): mlstm q k v ig fg out dq dk dv dig dfg; linattn q k v out dq dk dv;
 * ssd x Bm Cm dt bias A D y dx dB dC ddt dbias dA dD (one group per head). */
static int setup(gcase *c, sq_rng *r)
{
    sq_dims d = c->d;
    size_t nk = (size_t)d.B * d.T * d.H * d.K, nv = (size_t)d.B * d.T * d.H * d.V, ng = (size_t)d.B * d.T * d.H;
    int rc = 0;
    if (!strcmp(c->name, "mlstm")) {
        size_t n[11] = {nk, nk, nv, ng, ng, nv, nk, nk, nv, ng, ng};
        float lo[11] = {-1, -1, -1, -3, 0}, hi[11] = {1, 1, 1, 3, 6};
        for (int i = 0; i < 11 && !rc; i++) rc = add(c, n[i], r, lo[i], hi[i]);
    } else if (!strcmp(c->name, "linattn")) {
        size_t n[7] = {nk, nk, nv, nv, nk, nk, nv};
        float lo[7] = {-1, -0.1f, -1}, hi[7] = {1, 0.1f, 1};
        for (int i = 0; i < 7 && !rc; i++) rc = add(c, n[i], r, lo[i], hi[i]);
    } else {
        size_t h = d.H, n[15] = {nv, nk, nk, ng, h, h, h, nv, nv, nk, nk, ng, h, h, h};
        float lo[15] = {-1, -1, -1, -3, -1, -2, 0}, hi[15] = {1, 1, 1, 3, 1, -0.5f, 1};
        for (int i = 0; i < 15 && !rc; i++) rc = add(c, n[i], r, lo[i], hi[i]);
    }
    if (!rc) rc = sq_cuda_malloc(&c->work, sq_cuda_scalar_work_floats(d, c->chunk));
    return rc;
}

static int run_fwd(gcase *c, int bwd)
{
    float **g = c->dev;
    if (!strcmp(c->name, "mlstm")) {
        sq_mlstm_opts o = {c->chunk, 0};
        sq_mlstm_in in = {g[0], g[1], g[2], g[3], g[4]};
        sq_mlstm_grad gr = {g[6], g[7], g[8], g[9], g[10]};
        int rc = sq_cuda_mlstm_fwd(c->d, &o, &in, NULL, g[5], NULL, c->work);
        return rc || !bwd ? rc : sq_cuda_mlstm_bwd(c->d, &o, &in, NULL, g[5], NULL, &gr, NULL, c->work);
    }
    if (!strcmp(c->name, "linattn")) {
        sq_linattn_opts o = {c->chunk};
        int rc = sq_cuda_linattn_fwd(c->d, &o, g[0], g[1], g[2], NULL, g[3], NULL, c->work);
        return rc || !bwd ? rc : sq_cuda_linattn_bwd(c->d, &o, g[0], g[1], g[2], NULL, g[3], NULL, g[4], g[5], g[6],
                                                     NULL, c->work);
    }
    sq_ssd_opts o = {c->chunk, c->d.H};
    sq_ssd_in in = {g[0], g[1], g[2], g[3], g[4], g[5], g[6]};
    sq_ssd_grad gr = {g[8], g[9], g[10], g[11], g[12], g[13], g[14]};
    int rc = sq_cuda_ssd_fwd(c->d, &o, &in, NULL, g[7], NULL, c->work);
    return rc || !bwd ? rc : sq_cuda_ssd_bwd(c->d, &o, &in, NULL, g[7], NULL, &gr, NULL, c->work);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median ms of reps synchronized calls after a warm-up; -1 on failure. */
static double time_gpu(gcase *c, int bwd, int reps)
{
    double t[64];
    if (reps > 64) reps = 64;
    for (int i = -1; i < reps; i++) {
        double t0 = sq_now();
        if (run_fwd(c, bwd) || sq_cuda_sync()) return -1;
        if (i >= 0) t[i] = (sq_now() - t0) * 1e3;
    }
    qsort(t, reps, sizeof t[0], cmp_double);
    return t[reps / 2];
}

static double rel_err(const float *a, const float *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)a[i] - ref[i];
        num += e * e;
        den += (double)ref[i] * ref[i];
    }
    return isfinite(num) ? sqrt(num / (den > 0 ? den : 1)) : INFINITY;
}

/* ‖gpu − cpu‖/‖cpu‖ of the forward output on batch element 0 (the CPU
 * operator on that element's inputs, which lead each [B,...] array). */
static double check_vs_cpu(gcase *c)
{
    sq_dims d1 = c->d;
    d1.B = 1;
    size_t nv = (size_t)d1.T * d1.H * d1.V;
    float *cpu = sq_alloc_floats(nv), *gpu = sq_alloc_floats(nv);
    float **h = c->host;
    int rc = !cpu || !gpu ? sq_fail(SQ_ENOMEM, "bench: out of memory") : 0, out = 5;
    if (!rc && !strcmp(c->name, "mlstm")) {
        sq_mlstm_opts o = {c->chunk, 0};
        sq_mlstm_in in = {h[0], h[1], h[2], h[3], h[4]};
        rc = sq_mlstm_fwd(d1, &o, &in, NULL, cpu, NULL, NULL);
    } else if (!rc && !strcmp(c->name, "linattn")) {
        sq_linattn_opts o = {c->chunk};
        rc = sq_linattn_fwd(d1, &o, h[0], h[1], h[2], NULL, cpu, NULL, NULL);
        out = 3;
    } else if (!rc) {
        sq_ssd_opts o = {c->chunk, d1.H};
        sq_ssd_in in = {h[0], h[1], h[2], h[3], h[4], h[5], h[6]};
        rc = sq_ssd_fwd(d1, &o, &in, NULL, cpu, NULL, NULL);
        out = 7;
    }
    if (!rc) rc = run_fwd(c, 0);
    if (!rc) rc = sq_cuda_download(gpu, c->dev[out], nv);
    double e = rc ? INFINITY : rel_err(gpu, cpu, nv);
    sq_free(cpu);
    sq_free(gpu);
    return e;
}

/* The fewest bytes a forward must move: every input read once, the output written once. */
static double fwd_bytes(const gcase *c)
{
    double b = 0;
    int nin = !strcmp(c->name, "mlstm") ? 5 : !strcmp(c->name, "linattn") ? 3 : 7;
    for (int i = 0; i <= nin; i++) b += 4.0 * c->n[i];
    return b;
}

static const bench_op *cpu_op(const char *name)
{
    for (int i = 0; i < bench_nops; i++)
        if (!strcmp(bench_ops[i].name, name)) return &bench_ops[i];
    return NULL;
}

/* name is one of the comma-separated list (NULL: all). */
static int selected(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
        if (strcspn(p, ",") == n && !strncmp(p, name, n)) return 1;
        if (!p[strcspn(p, ",")]) break;
    }
    return !list;
}

static int on_gpu(const char *name) { return !strcmp(name, "mlstm") || !strcmp(name, "ssd") || !strcmp(name, "linattn"); }

int bench_ops_gpu(const bench_gpu_cfg *cfg)
{
    char device[256];
    double copy = 0, g32 = 0, g16 = 0;
    if (sq_cuda_device(device, sizeof device) || sq_cuda_copy_rate(&copy) || sq_cuda_gemm_rate(0, 8192, &g32) ||
        sq_cuda_gemm_rate(1, 8192, &g16)) {
        fprintf(stderr, "subq bench ops: %s\n", sq_last_error());
        return 2;
    }
    sq_dims d = cfg->d;
    printf("subq bench ops: B=%d T=%d H=%d K=%d V=%d chunk=%d | %s | float32\n", d.B, d.T, d.H, d.K, d.V, cfg->chunk,
           device);
    printf("ceilings (same run): copy %.2f TB/s (device to device, read + write); cuBLAS GEMM 8192^3 float32 %.1f "
           "TFLOP/s, bf16 %.1f TFLOP/s\n\n",
           copy, g32, g16);
    printf("%-8s %10s %12s %10s %10s %9s %12s\n", "op", "fwd_ms", "fwdbwd_ms", "TFLOP/s", "TB/s", "% f32GEMM",
           "rel_err_cpu");
    FILE *js = cfg->json ? fopen(cfg->json, "w") : NULL;
    if (cfg->json && !js) {
        fprintf(stderr, "subq bench ops: cannot write %s; check the folder exists and is writable\n", cfg->json);
        return 1;
    }
    if (js) fprintf(js, "[\n");
    int status = 0, first = 1;
    for (int i = 0; i < bench_nops; i++) {
        const char *name = bench_ops[i].name;
        if (!selected(cfg->ops, name)) continue;
        if (js) fprintf(js, "%s  {\"op\": \"%s\", \"B\": %d, \"T\": %d, \"H\": %d, \"K\": %d, \"V\": %d, \"chunk\": %d, "
                            "\"device\": \"%s\", \"threads\": 0, ",
                        first ? "" : ",\n", name, d.B, d.T, d.H, d.K, d.V, cfg->chunk, device);
        first = 0;
        if (!on_gpu(name)) {
            printf("%-8s   not on the GPU yet (docs/cuda.md)\n", name);
            if (js) fprintf(js, "\"error\": \"not on the GPU yet\"}");
            continue;
        }
        gcase c;
        memset(&c, 0, sizeof c);
        c.name = name;
        c.d = d;
        c.chunk = cfg->chunk;
        sq_rng r;
        sq_rng_seed(&r, cfg->seed + (unsigned long long)i);
        double f = -1, fb = -1, e = INFINITY;
        if (!setup(&c, &r)) {
            f = time_gpu(&c, 0, cfg->reps);
            fb = f < 0 ? -1 : time_gpu(&c, 1, cfg->reps);
            e = fb < 0 ? INFINITY : check_vs_cpu(&c);
        }
        if (fb < 0 || !(e < 1e-3)) {
            fprintf(stderr, "subq bench ops: %s: %s\n", name, fb < 0 ? sq_last_error() : "GPU and CPU disagree");
            status = 1;
        }
        double tf = fb < 0 ? 0 : cpu_op(name)->flops_fwd(d, cfg->chunk) / (f * 1e-3) / 1e12;
        double tb = fb < 0 ? 0 : fwd_bytes(&c) / (f * 1e-3) / 1e12;
        printf("%-8s %10.3f %12.3f %10.2f %10.3f %8.1f%% %12.2e\n", name, f, fb, tf, tb, 100 * tf / g32, e);
        if (js)
            fprintf(js, "\"fwd_ms\": %.4f, \"fwdbwd_ms\": %.4f, \"tflops_fwd\": %.4f, \"tbs_fwd\": %.4f, "
                        "\"max_rel_err\": %.3e, \"copy_tbs\": %.3f, \"gemm_f32_tflops\": %.2f, \"gemm_bf16_tflops\": %.2f}",
                    f, fb, tf, tb, e, copy, g32, g16);
        gcase_free(&c);
    }
    printf("\nfloat32 throughout (no TF32); rel_err_cpu: ‖gpu − cpu‖/‖cpu‖ of the forward on batch element 0;\n"
           "TFLOP/s from the FLOP counts of `subq bench ops --help-flops`; TB/s from the fewest bytes a forward moves.\n");
    if (js) {
        fprintf(js, "\n]\n");
        if (fclose(js)) {
            fprintf(stderr, "subq bench ops: writing %s failed\n", cfg->json);
            return 1;
        }
        printf("wrote %s\n", cfg->json);
    }
    return status;
}
