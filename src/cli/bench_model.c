/* `subq bench model`: whole models on a device. For each spec, a model of
 * the given depth and width on random tokens:
 *   training: tokens/s of full steps (forward, backward, AdamW), and the
 *     time of the forward and of the forward+backward alone, so that the
 *     split forward / backward / optimizer is measured;
 *   model FLOPs per token = 6 · (matrix parameters, the embedding lookup
 *     excluded) + 3 · the sequence operators' forward FLOPs (`bench ops
 *     --help-flops`), and MFU = FLOP rate / a GEMM rate measured in the
 *     same run (float32, and bf16 for the record);
 *   decoding: tokens/s of one-token steps with the state carried, at the
 *     batch sizes asked for. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/model.h"
#include "../train/optim.h"
#include "args.h"
#include "bench_gpu.h"
#include "bench_ops.h"
#include "cli.h"
#include "device.h"

typedef struct {
    const char *models, *device, *json, *math;
    int depth, D, H, vocab, B, T, steps, chunk;
    int decode[8], ndecode;
} bm_cfg;

static void bm_usage(FILE *f)
{
    fprintf(f, "usage: subq bench model [options]\n\n"
               "Times whole models on random tokens: training steps (forward, backward, AdamW) with\n"
               "tokens/s, model FLOPs and MFU against GEMM rates measured in the same run, and\n"
               "one-token decoding steps with the state carried.\n\n"
               "options:\n"
               "  --models LIST      specs separated by ';' (default xlstm[7:1];mamba2;gdn;transformer)\n"
               "  --depth N          blocks (default 12)\n"
               "  --width N --heads N   model width and heads (default 768, 12)\n"
               "  --vocab N          vocabulary (default 50304)\n"
               "  --B N --T N        training batch and length (default 8, 2048)\n"
               "  --steps N          timed training steps, median reported (default 5)\n"
               "  --chunk N          operators' chunk length (default 64)\n"
               "  --decode LIST      decoding batch sizes (default 1,8,64)\n"
               "  --device cpu|cuda  where to run (default cuda)\n"
               "  --math f32|tf32|bf16  cuda: the layers' matrix products in float32 (default), TF32 or bf16\n"
               "                     (bf16 also runs attention on the bf16 tensor-core kernel)\n"
               "  --json FILE        also write one object per model\n"
               "  -h, --help         this text\n");
}

static int bm_parse(int argc, char **argv, bm_cfg *c)
{
    static const char *flags[] = {"--models", "--depth", "--width", "--heads", "--vocab", "--B", "--T", "--steps",
                                  "--chunk", "--decode", "--device", "--math", "--json", "--help", "-h", NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return 1;
        if (!args_known(a, flags)) return args_unknown("subq bench model", a, flags), 2;
        if (i + 1 >= argc) return fprintf(stderr, "subq bench model: %s needs a value\n", a), 2;
        const char *v = argv[++i];
        int ok = 1;
        if (!strcmp(a, "--models")) c->models = v;
        else if (!strcmp(a, "--device")) c->device = v;
        else if (!strcmp(a, "--math")) c->math = v;
        else if (!strcmp(a, "--json")) c->json = v;
        else if (!strcmp(a, "--depth")) ok = args_int(a, v, 1, 1024, &c->depth);
        else if (!strcmp(a, "--width")) ok = args_int(a, v, 1, 1 << 16, &c->D);
        else if (!strcmp(a, "--heads")) ok = args_int(a, v, 1, 1 << 12, &c->H);
        else if (!strcmp(a, "--vocab")) ok = args_int(a, v, 2, 1 << 22, &c->vocab);
        else if (!strcmp(a, "--B")) ok = args_int(a, v, 1, 1 << 16, &c->B);
        else if (!strcmp(a, "--T")) ok = args_int(a, v, 1, 1 << 22, &c->T);
        else if (!strcmp(a, "--steps")) ok = args_int(a, v, 1, 64, &c->steps);
        else if (!strcmp(a, "--chunk")) ok = args_int(a, v, 1, 1 << 16, &c->chunk);
        else if (!strcmp(a, "--decode")) ok = args_int_list(a, v, 1, 1 << 16, c->decode, 8, &c->ndecode);
        if (!ok) return 2;
    }
    return 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Waits for the backend: a one-float copy to the host. */
static int bm_sync(const sq_model *m)
{
    float x;
    return m->be->download(&x, m->wp->data, 1);
}

/* Median seconds of n runs of: 0 forward, 1 forward+backward, 2 a full step (with AdamW). */
static int time_steps(sq_model *m, const int32_t *x, const int32_t *y, float *mom, int what, int n, double *sec)
{
    double t[64];
    const sq_adamw_cfg ac = sq_adamw_defaults();
    size_t np = m->ps.total;
    for (int i = -1; i < n; i++) {
        double t0 = sq_now();
        float loss;
        int rc = m->be->zero(np, m->wp->grad);
        if (!rc) rc = sq_model_fwd(m, x, y, &loss);
        if (!rc && what >= 1) rc = sq_model_bwd(m);
        if (!rc && what == 2) rc = m->be->adamw_update(&ac, i + 2, 1e-4f, 1, m->wp->data, m->wp->grad, mom, mom + np, np);
        if (!rc) rc = bm_sync(m);
        if (rc) return rc;
        if (i >= 0) t[i] = sq_now() - t0;
    }
    qsort(t, n, sizeof t[0], cmp_d);
    *sec = t[n / 2];
    return SQ_OK;
}

/* Model FLOPs of one training token: 6 per matrix parameter (the embedding
 * table is a lookup), plus 3x the operators' forward FLOPs per token. */
static double train_flops_per_token(const sq_model *m, int T, int chunk)
{
    double p = 0;
    for (int i = 0; i < m->ps.n; i++)
        if (m->ps.p[i].ndim == 2 && i != m->p_embed) p += (double)m->ps.p[i].n;
    double ops = 0;
    for (int i = 0; i < m->spec.depth; i++) {
        const sq_block *b = &m->blocks[i];
        const char *name = sq_block_name(b->type);
        if (!strcmp(name, "mamba2")) name = "ssd";
        for (int k = 0; k < bench_nops; k++)
            if (!strcmp(bench_ops[k].name, name))
                ops += bench_ops[k].flops_fwd((sq_dims){1, T, b->c.H, b->c.K, b->c.V}, chunk) / T;
    }
    return 6 * p + 3 * ops;
}

/* The operator name of a block type in bench_ops ("mamba2" runs "ssd"). */
static const char *op_name(sq_block_type t)
{
    const char *n = sq_block_name(t);
    return !strcmp(n, "mamba2") ? "ssd" : n;
}

/* Median ms of one operator's forward+backward at d on the device. */
static double op_ms(const char *device, const char *name, sq_dims d, int chunk, int reps)
{
    if (strcmp(device, "cpu") != 0) return bench_gpu_op_fwdbwd_ms(name, d, chunk, reps);
    for (int k = 0; k < bench_nops; k++) {
        if (strcmp(bench_ops[k].name, name) != 0) continue;
        sq_rng r;
        sq_rng_seed(&r, 1);
        void *c = bench_ops[k].create(d, chunk, &r);
        double t[64], best = -1;
        for (int i = -1; c && i < reps; i++) {
            double t0 = sq_now();
            if (bench_ops[k].fwdbwd(c)) break;
            if (i >= 0) t[i] = (sq_now() - t0) * 1e3;
            if (i == reps - 1) qsort(t, reps, sizeof t[0], cmp_d), best = t[reps / 2];
        }
        if (c) bench_ops[k].destroy(c);
        return best;
    }
    return -1;
}

/* Where a training step's forward+backward time goes: the sequence operators
 * (each block's operator timed alone at its shape), the linear layers'
 * matrix products (each distinct [out, in] timed alone, forward and both
 * backward products, at N = B·T rows), and the rest (norms, activations,
 * convolutions, gates, embedding, loss, copies) as the remainder. */
static int time_split(sq_model *m, const char *device, int chunk, int reps, double *ops, double *mm)
{
    *ops = *mm = 0;
    for (int i = 0; i < m->spec.depth; i++) {
        const sq_block *b = &m->blocks[i];
        double t = op_ms(device, op_name(b->type), (sq_dims){m->B, m->T, b->c.H, b->c.K, b->c.V}, chunk, reps);
        if (t < 0) return SQ_EINVAL;
        *ops += t;
    }
    const sq_backend *be = m->be;
    size_t N = (size_t)m->B * m->T, big = 0;
    for (int i = 0; i < m->ps.n; i++)
        if (m->ps.p[i].ndim == 2 && i != m->p_embed) {
            size_t o = m->ps.p[i].shape[0], in = m->ps.p[i].shape[1];
            big = o > big ? o : big, big = in > big ? in : big;
        }
    float *x = be->alloc(N * big), *y = be->alloc(N * big), *dx = be->alloc(N * big);
    int rc = !x || !y || !dx ? SQ_ENOMEM : 0;
    for (int i = 0; !rc && i < m->ps.n; i++) {
        const sq_param *p = &m->ps.p[i];
        if (p->ndim != 2 || i == m->p_embed || strstr(p->name, "conv.")) continue; /* conv: a depthwise filter */
        int o = (int)p->shape[0], in = (int)p->shape[1];
        float *W = m->wp->data + p->off, *dW = m->wp->grad + p->off;
        double t[64];
        for (int r = -1; !rc && r < reps; r++) {
            double t0 = sq_now();
            if ((rc = be->linear_fwd((int)N, in, o, x, W, NULL, y)) ||
                (rc = be->linear_bwd((int)N, in, o, x, W, y, dx, dW, NULL)) || (rc = bm_sync(m)))
                break;
            if (r >= 0) t[r] = (sq_now() - t0) * 1e3;
        }
        if (!rc) qsort(t, reps, sizeof t[0], cmp_d), *mm += t[reps / 2];
    }
    be->release(x), be->release(y), be->release(dx);
    return rc;
}

/* Tokens/s of one-token steps for Bd sequences with the state carried. */
static int decode_rate(sq_model *m, int Bd, double *tok_s)
{
    enum { WARM = 4, STEPS = 32 };
    int rc = sq_model_plan(m, Bd, 1);
    if (rc) return rc;
    size_t ns = sq_model_state_floats(m, WARM + STEPS + 1);
    float *state = m->be->alloc(ns);
    int32_t *tok = calloc((size_t)Bd, sizeof(int32_t));
    if (!state || !tok) rc = sq_fail(SQ_ENOMEM, "bench model: out of memory for the decoding state");
    if (!rc) rc = m->be->zero(ns, state);
    double t0 = 0;
    for (int s = 0; !rc && s < WARM + STEPS; s++) {
        if (s == WARM && !(rc = bm_sync(m))) t0 = sq_now();
        for (int b = 0; b < Bd; b++) tok[b] = (int32_t)((s * 7919 + b * 104729) % m->cfg.vocab);
        if (!rc) rc = sq_model_fwd_carry(m, tok, 1, s, state, WARM + STEPS + 1);
    }
    if (!rc) rc = bm_sync(m);
    *tok_s = rc ? 0 : (double)Bd * STEPS / (sq_now() - t0);
    m->be->release(state);
    free(tok);
    return rc;
}

static int bench_one(const bm_cfg *c, const char *spec, double g32, double g16, FILE *js, int first)
{
    sq_model_cfg mc = {{0}, c->depth, c->D, c->H, c->vocab, c->chunk, 0};
    snprintf(mc.spec, sizeof mc.spec, "%s", spec);
    sq_model m;
    char dev[320];
    const sq_backend *be = cli_backend(c->device, dev, sizeof dev);
    int rc = be ? sq_model_build(&m, &mc) : SQ_EINVAL;
    if (rc) return rc;
    sq_model_init(&m, 1);
    size_t N = (size_t)c->B * c->T, np = m.ps.total;
    int32_t *x = malloc(N * sizeof(int32_t)), *y = malloc(N * sizeof(int32_t));
    float *mom = NULL;
    if (!x || !y) rc = sq_fail(SQ_ENOMEM, "bench model: out of memory");
    for (size_t i = 0; !rc && i < N; i++) x[i] = (int32_t)(i * 2654435761u % (unsigned)c->vocab);
    for (size_t i = 0; !rc && i < N; i++) y[i] = x[(i + 1) % N]; /* next-token targets */
    if (!rc) rc = sq_model_use_backend(&m, be);
    if (!rc && !(mom = be->alloc(2 * np))) rc = SQ_ENOMEM;
    if (!rc) rc = be->zero(2 * np, mom);
    if (!rc) rc = sq_model_plan(&m, c->B, c->T);
    double tf = 0, tfb = 0, tstep = 0, dec[8] = {0}, tops = 0, tmm = 0;
    if (!rc) rc = time_steps(&m, x, y, mom, 0, c->steps, &tf);
    if (!rc) rc = time_steps(&m, x, y, mom, 1, c->steps, &tfb);
    if (!rc) rc = time_steps(&m, x, y, mom, 2, c->steps, &tstep);
    if (!rc) rc = time_split(&m, c->device, c->chunk, c->steps, &tops, &tmm);
    for (int i = 0; !rc && i < c->ndecode; i++) rc = decode_rate(&m, c->decode[i], &dec[i]);
    if (!rc) {
        double fpt = train_flops_per_token(&m, c->T, c->chunk), rate = fpt * N / tstep;
        double rest = tfb * 1e3 - tops - tmm;
        printf("%-14s %8.1fM %10.0f %9.1f %9.1f %9.1f %8.0f %8.0f %8.0f %9.1f %8.1f%% %7.2f%%", spec, np / 1e6,
               N / tstep, tf * 1e3, (tfb - tf) * 1e3, (tstep - tfb) * 1e3, tops, tmm, rest, rate / 1e12,
               100 * rate / 1e12 / g32, 100 * rate / 1e12 / g16);
        for (int i = 0; i < c->ndecode; i++) printf(" %10.0f", dec[i]);
        printf("\n");
        fflush(stdout);
        if (js) {
            fprintf(js, "%s  {\"model\": \"%s\", \"params\": %zu, \"depth\": %d, \"width\": %d, \"heads\": %d, "
                        "\"vocab\": %d, \"B\": %d, \"T\": %d, \"device\": \"%s\", \"math\": \"%s\", \"tokens_per_s\": %.1f, "
                        "\"fwd_ms\": %.3f, \"bwd_ms\": %.3f, \"optim_ms\": %.3f, \"operators_ms\": %.3f, "
                        "\"matmul_ms\": %.3f, \"rest_ms\": %.3f, \"flops_per_token\": %.4g, "
                        "\"tflops\": %.3f, \"mfu_f32\": %.4f, \"mfu_bf16\": %.4f, \"decode_tokens_per_s\": {",
                    first ? "" : ",\n", spec, np, c->depth, c->D, c->H, c->vocab, c->B, c->T, dev, c->math, N / tstep, tf * 1e3,
                    (tfb - tf) * 1e3, (tstep - tfb) * 1e3, tops, tmm, rest, fpt, rate / 1e12, rate / 1e12 / g32, rate / 1e12 / g16);
            for (int i = 0; i < c->ndecode; i++) fprintf(js, "%s\"%d\": %.1f", i ? ", " : "", c->decode[i], dec[i]);
            fprintf(js, "}}");
        }
    }
    if (be) be->release(mom);
    free(x);
    free(y);
    sq_model_free(&m);
    return rc;
}

int bench_model_main(int argc, char **argv)
{
    bm_cfg c = {"xlstm[7:1];mamba2;gdn;transformer", "cuda", NULL, "f32", 12, 768, 12, 50304, 8, 2048, 5, 64,
                {1, 8, 64}, 3};
    int p = bm_parse(argc, argv, &c);
    if (p == 1) bm_usage(stdout);
    if (p) return p == 1 ? 0 : 2;
    char dev[320];
    if (cli_set_math(c.math, c.device) || !cli_backend(c.device, dev, sizeof dev))
        return fprintf(stderr, "subq bench model: %s\n", sq_last_error()), 2;
    double g32 = 0, g16 = 0; /* TFLOP/s; the CPU has no bf16 rate here (its MFU column shows 0) */
    if (!strcmp(c.device, "cpu")) g32 = sgemm_gflops(1024) / 1e3, g16 = INFINITY;
    else if (bench_gpu_gemm_rates(&g32, &g16)) return fprintf(stderr, "subq bench model: %s\n", sq_last_error()), 2;
    printf("subq bench model: depth %d, width %d, %d heads, vocab %d, B=%d T=%d | %s\n", c.depth, c.D, c.H, c.vocab,
           c.B, c.T, dev);
    printf("GEMM rates (same run): float32 %.1f TFLOP/s, bf16 %.1f TFLOP/s; the models compute in float32%s\n\n",
           g32, g16, !strcmp(c.math, "tf32")   ? ", their layers' products on the TF32 tensor cores"
           : !strcmp(c.math, "bf16") ? ", their layers' products and attention on the bf16 tensor cores"
                                     : "");
    printf("%-14s %9s %10s %9s %9s %9s %8s %8s %8s %9s %9s %8s", "model", "params", "tokens/s", "fwd_ms", "bwd_ms",
           "optim_ms", "ops_ms", "mm_ms", "rest_ms", "TFLOP/s", "MFU f32", "bf16");
    for (int i = 0; i < c.ndecode; i++) printf("   dec B=%-3d", c.decode[i]);
    printf("\n");
    FILE *js = c.json ? fopen(c.json, "w") : NULL;
    if (c.json && !js) return fprintf(stderr, "subq bench model: cannot write %s\n", c.json), 1;
    if (js) fprintf(js, "[\n");
    char list[1024];
    snprintf(list, sizeof list, "%s", c.models);
    int status = 0, first = 1;
    for (char *save = NULL, *spec = strtok_r(list, ";", &save); spec; spec = strtok_r(NULL, ";", &save)) {
        if (bench_one(&c, spec, g32, g16, js, first)) {
            fprintf(stderr, "subq bench model: %s: %s\n", spec, sq_last_error());
            status = 1;
        }
        first = 0;
    }
    printf("\ntokens/s: B·T per full training step (forward, backward, AdamW), median of %d; fwd/bwd/optim: the\n"
           "step's split; TFLOP/s and MFU: 6·(matrix parameters) + 3·(operator forward FLOPs) per token, over the\n"
           "GEMM rates above; dec B=n: tokens/s of one-token steps for n sequences, state carried.\n",
           c.steps);
    if (js && (fprintf(js, "\n]\n"), fclose(js))) return fprintf(stderr, "subq bench model: writing %s failed\n", c.json), 1;
    if (js) printf("wrote %s\n", c.json);
    return status;
}
