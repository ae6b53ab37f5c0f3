/* subq bench ops: times each operator's forward and forward+backward at one
 * shape, measures the SGEMM rate of the same BLAS and threads as the
 * ceiling, checks each forward against the float64 reference on the run's
 * own inputs, and prints a table (and JSON with --json). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_gpu.h"
#include "bench_ops.h"
#include "cli.h"
#include "args.h"

typedef struct {
    sq_dims d;
    int chunk, threads, reps;
    const char *ops, *json, *device, *dtype;
    unsigned long long seed;
    int shape_given;
} bench_cfg;

static void bench_usage(FILE *f)
{
    fprintf(f,
            "usage: subq bench ops [options]\n"
            "\n"
            "Times each sequence operator (chunkwise forward, forward+backward) at one shape,\n"
            "measures the single-precision GEMM rate of the same BLAS and threads as a ceiling,\n"
            "and checks each forward against the float64 reference recurrence on the run's own\n"
            "inputs (first batch element). Prints a table; --json writes one object per operator.\n"
            "\n"
            "options:\n"
            "  --ops LIST      comma-separated subset of: mlstm,slstm,ssd,gdn,attn,linattn (default all)\n"
            "  --B N --T N --H N --K N --V N   shape (default B=4 T=2048 H=4 K=64 V=64 on the CPU,\n"
            "                  B=4 T=4096 H=16 K=V=128 on the GPU)\n"
            "  --chunk N       chunk / tile length (default 64)\n"
            "  --threads N     OpenMP and BLAS threads (default: all cores)\n"
            "  --reps N        timed repetitions per measurement, median reported (default 3)\n"
            "  --seed N        input seed (default 1)\n"
            "  --device cpu|cuda  where to run (default cpu); cuda times the operators built on the GPU,\n"
            "                  checks them against the CPU and measures the GPU's ceilings\n"
            "  --dtype f32|bf16   cuda: float32 tensors (default) or bf16 inputs and outputs (cuda_bf16.h;\n"
            "                  mLSTM, SSD and linear attention forward on the fused tensor-core kernels,\n"
            "                  GDN's chunk products and scans on the tensor cores)\n"
            "  --json FILE     also write the results as a JSON array\n"
            "  -h, --help      this text\n"
            "\n"
            "FLOP counts used for GFLOP/s are listed by --help-flops and in docs/bench.md.\n");
}

static void print_flops_doc(void)
{
    for (int i = 0; i < bench_nops; i++) printf("%-8s %s\n", bench_ops[i].name, bench_ops[i].flops_doc);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median wall time in ms of reps calls after one warm-up call; a negative
 * value when a call fails (its message stays in sq_last_error()). */
static double time_ms(int (*fn)(void *), void *c, int reps)
{
    if (fn(c)) return -1;
    double t[64];
    if (reps > 64) reps = 64;
    for (int i = 0; i < reps; i++) {
        double t0 = sq_now();
        if (fn(c)) return -1;
        t[i] = (sq_now() - t0) * 1e3;
    }
    qsort(t, reps, sizeof t[0], cmp_double);
    return t[reps / 2];
}

/* The SGEMM rate (GFLOP/s) of n×n×n products, best of a few, same threads. */
double sgemm_gflops(int n)
{
    float *a = sq_alloc_floats((size_t)n * n), *b = sq_alloc_floats((size_t)n * n), *c = sq_alloc_floats((size_t)n * n);
    double best = 0;
    if (a && b && c) {
        sq_rng r;
        sq_rng_seed(&r, 7);
        sq_rng_fill_normal(&r, a, (size_t)n * n, 0, 1);
        sq_rng_fill_normal(&r, b, (size_t)n * n, 0, 1);
        sq_sgemm(0, 0, n, n, n, 1, a, n, b, n, 0, c, n);
        for (int i = 0; i < 5; i++) {
            double t0 = sq_now();
            sq_sgemm(0, 0, n, n, n, 1, a, n, b, n, 0, c, n);
            double g = 2.0 * n * n * (double)n / (sq_now() - t0) / 1e9;
            if (g > best) best = g;
        }
    }
    sq_free(a);
    sq_free(b);
    sq_free(c);
    return best;
}

/* "cpu: <model name>" from /proc/cpuinfo. */
static void cpu_name(char *out, size_t n)
{
    snprintf(out, n, "cpu");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *p = strchr(line, ':');
            if (p) {
                p += 1 + strspn(p + 1, " \t");
                p[strcspn(p, "\n")] = 0;
                snprintf(out, n, "cpu: %s", p);
            }
            break;
        }
    }
    fclose(f);
}

static const bench_op *find_op(const char *name, size_t len)
{
    for (int i = 0; i < bench_nops; i++)
        if (strlen(bench_ops[i].name) == len && !strncmp(bench_ops[i].name, name, len)) return &bench_ops[i];
    return NULL;
}

/* Resolves --ops into a list; prints what was wrong and returns -1. */
static int select_ops(const char *list, const bench_op **sel)
{
    int n = 0;
    if (!list) {
        for (int i = 0; i < bench_nops; i++) sel[n++] = &bench_ops[i];
        return n;
    }
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        const bench_op *op = find_op(p, len);
        if (!op) {
            fprintf(stderr, "subq bench ops: unknown operator '%.*s' in --ops; choose from:", (int)len, p);
            for (int i = 0; i < bench_nops; i++) fprintf(stderr, " %s", bench_ops[i].name);
            fprintf(stderr, "\n");
            return -1;
        }
        if (n < 32) sel[n++] = op;
        p += len;
        if (*p == ',') p++;
    }
    if (n == 0) fprintf(stderr, "subq bench ops: --ops is empty\n");
    return n ? n : -1;
}

static int parse_bench_args(int argc, char **argv, bench_cfg *c)
{
    static const char *flags[] = {"--ops", "--B", "--T", "--H", "--K", "--V", "--chunk", "--threads", "--reps",
                                  "--seed", "--device", "--dtype", "--json", "--help", "-h", "--help-flops", NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            bench_usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--help-flops")) {
            print_flops_doc();
            exit(0);
        }
        if (i + 1 >= argc || !args_known(a, flags)) {
            if (!args_known(a, flags)) args_unknown("subq bench ops", a, flags);
            else fprintf(stderr, "subq bench ops: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        int ok = 1;
        if (strlen(a) == 3 && strchr("BTHKV", a[2])) c->shape_given = 1;
        if (!strcmp(a, "--ops")) c->ops = v;
        else if (!strcmp(a, "--json")) c->json = v;
        else if (!strcmp(a, "--device")) c->device = v;
        else if (!strcmp(a, "--dtype")) c->dtype = v;
        else if (!strcmp(a, "--B")) ok = args_int(a, v, 1, 1 << 20, &c->d.B);
        else if (!strcmp(a, "--T")) ok = args_int(a, v, 1, 1 << 24, &c->d.T);
        else if (!strcmp(a, "--H")) ok = args_int(a, v, 1, 1 << 16, &c->d.H);
        else if (!strcmp(a, "--K")) ok = args_int(a, v, 1, 1 << 14, &c->d.K);
        else if (!strcmp(a, "--V")) ok = args_int(a, v, 1, 1 << 14, &c->d.V);
        else if (!strcmp(a, "--chunk")) ok = args_int(a, v, 1, 1 << 16, &c->chunk);
        else if (!strcmp(a, "--threads")) ok = args_int(a, v, 1, 4096, &c->threads);
        else if (!strcmp(a, "--reps")) ok = args_int(a, v, 1, 64, &c->reps);
        else if (!strcmp(a, "--seed")) {
            int s;
            ok = args_int(a, v, 0, 2147483647, &s);
            c->seed = (unsigned long long)s;
        }
        if (!ok) return -1;
    }
    if (strcmp(c->device, "cpu") != 0 && strcmp(c->device, "cuda") != 0) {
        fprintf(stderr, "subq bench ops: unknown --device '%s'; choose cpu or cuda\n", c->device);
        return -1;
    }
    if (strcmp(c->dtype, "f32") != 0 && strcmp(c->dtype, "bf16") != 0) {
        fprintf(stderr, "subq bench ops: unknown --dtype '%s'; choose f32 or bf16\n", c->dtype);
        return -1;
    }
    if (!strcmp(c->dtype, "bf16") && strcmp(c->device, "cuda") != 0) {
        fprintf(stderr, "subq bench ops: --dtype bf16 runs on the GPU only; add --device cuda\n");
        return -1;
    }
    return 0;
}

typedef struct {
    const bench_op *op;
    sq_dims d;
    double fwd_ms, fwdbwd_ms, gflops, err;
    int ok;
} bench_row;

static void write_json(FILE *f, const bench_row *rows, int n, const char *device, int threads, int chunk,
                       double gemm)
{
    fprintf(f, "[\n");
    for (int i = 0; i < n; i++) {
        const bench_row *r = &rows[i];
        fprintf(f,
                "  {\"op\": \"%s\", \"B\": %d, \"T\": %d, \"H\": %d, \"K\": %d, \"V\": %d, \"chunk\": %d, "
                "\"device\": \"%s\", \"threads\": %d, ",
                r->op->name, r->d.B, r->d.T, r->d.H, r->d.K, r->d.V, chunk, device, threads);
        if (r->ok)
            fprintf(f,
                    "\"fwd_ms\": %.4f, \"fwdbwd_ms\": %.4f, \"gflops_fwd\": %.3f, \"max_rel_err\": %.3e, "
                    "\"sgemm_gflops\": %.3f, \"frac_of_sgemm\": %.4f}",
                    r->fwd_ms, r->fwdbwd_ms, r->gflops, r->err, gemm, gemm > 0 ? r->gflops / gemm : 0.0);
        else
            fprintf(f, "\"error\": \"failed\"}");
        fprintf(f, "%s\n", i + 1 < n ? "," : "");
    }
    fprintf(f, "]\n");
}

static int bench_ops_main(int argc, char **argv)
{
    bench_cfg c = {{4, 2048, 4, 64, 64}, 64, 0, 3, NULL, NULL, "cpu", "f32", 1, 0};
    if (parse_bench_args(argc, argv, &c)) return 2;
    const bench_op *sel[32];
    int nsel = select_ops(c.ops, sel);
    if (nsel < 0) return 2;
    if (!strcmp(c.device, "cuda")) {
        bench_gpu_cfg g = {c.shape_given ? c.d : (sq_dims){4, 4096, 16, 128, 128}, c.chunk, c.reps, c.ops, c.json,
                           c.seed, !strcmp(c.dtype, "bf16")};
        return bench_ops_gpu(&g);
    }
    sq_set_threads(c.threads);
    int threads = sq_get_threads();
    char device[256];
    cpu_name(device, sizeof device);

    printf("subq bench ops: B=%d T=%d H=%d K=%d V=%d chunk=%d | %s | %d threads\n", c.d.B, c.d.T, c.d.H, c.d.K,
           c.d.V, c.chunk, device, threads);
    fflush(stdout);
    double gemm = sgemm_gflops(1024);
    printf("sgemm ceiling: %.1f GFLOP/s (1024x1024x1024, float32, same BLAS and threads)\n\n", gemm);
    printf("%-8s %10s %12s %12s %10s %12s\n", "op", "fwd_ms", "fwdbwd_ms", "GFLOP/s fwd", "% sgemm", "max_rel_err");

    bench_row rows[32];
    int status = 0;
    for (int i = 0; i < nsel; i++) {
        bench_row *r = &rows[i];
        memset(r, 0, sizeof *r);
        r->op = sel[i];
        r->d = c.d;
        if (!strcmp(sel[i]->name, "slstm")) r->d.V = r->d.K;
        sq_rng rng;
        sq_rng_seed(&rng, c.seed + (unsigned long long)i);
        void *cs = sel[i]->create(r->d, c.chunk, &rng);
        if (!cs) {
            fprintf(stderr, "subq bench ops: %s: could not set up: %s\n", sel[i]->name, sq_last_error());
            status = 1;
            continue;
        }
        r->fwd_ms = time_ms(sel[i]->fwd, cs, c.reps);
        r->fwdbwd_ms = r->fwd_ms < 0 ? -1 : time_ms(sel[i]->fwdbwd, cs, c.reps);
        if (r->fwd_ms < 0 || r->fwdbwd_ms < 0) {
            fprintf(stderr, "subq bench ops: %s failed: %s\n", sel[i]->name, sq_last_error());
            sel[i]->destroy(cs);
            status = 1;
            continue;
        }
        sel[i]->fwd(cs); /* the outputs the check compares */
        r->err = sel[i]->check(cs);
        r->gflops = sel[i]->flops_fwd(r->d, c.chunk) / (r->fwd_ms * 1e-3) / 1e9;
        r->ok = 1;
        sel[i]->destroy(cs);
        printf("%-8s %10.2f %12.2f %12.1f %9.1f%% %12.2e\n", r->op->name, r->fwd_ms, r->fwdbwd_ms, r->gflops,
               gemm > 0 ? 100 * r->gflops / gemm : 0.0, r->err);
        fflush(stdout);
        if (!(r->err < 1e-3)) {
            fprintf(stderr, "subq bench ops: %s: error against the float64 reference is %.3g (> 1e-3)\n",
                    r->op->name, r->err);
            status = 1;
        }
    }
    printf("\nmax_rel_err: ‖out − ref‖/‖ref‖ against the float64 recurrence on batch element 0 (output and final "
           "state);\nGFLOP/s from the FLOP counts of `subq bench ops --help-flops`.\n");
    if (c.json) {
        FILE *f = fopen(c.json, "w");
        if (!f) {
            fprintf(stderr, "subq bench ops: cannot write %s; check the folder exists and is writable\n", c.json);
            return 1;
        }
        write_json(f, rows, nsel, device, threads, c.chunk, gemm);
        if (fclose(f)) {
            fprintf(stderr, "subq bench ops: writing %s failed\n", c.json);
            return 1;
        }
        printf("wrote %s\n", c.json);
    }
    return status;
}

int cli_bench(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: subq bench ops [options]     the sequence operators (subq bench ops --help)\n"
                   "       subq bench model [options]   whole models: training and decoding (subq bench model --help)\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "ops")) return bench_ops_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "model")) return bench_model_main(argc - 1, argv + 1);
    fprintf(stderr, "subq bench: unknown benchmark '%s'; choose ops or model\n", argv[1]);
    return 2;
}
