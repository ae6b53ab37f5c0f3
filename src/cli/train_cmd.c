/* subq train / eval / compare: training on the synthetic tasks, answer
 * accuracy per length, and the side-by-side length-generalisation table. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/json.h"
#include "../train/train.h"
#include "args.h"
#include "cli.h"
#include "device.h"
#include "run.h"

volatile int run_interrupted;

void run_on_sigint(int sig)
{
    (void)sig;
    run_interrupted = 1;
}

static const char *const train_help =
    "  --task NAME        parity, count, modsum, modarith, s3, s5, anbn, flipflop (default parity;\n"
    "                     docs/tasks.md defines them)\n"
    "  --depth N          blocks (default: the spec's pattern length)\n"
    "  --width D          model width (default 64)     --heads H    heads (default 4)\n"
    "  --chunk N          chunk length of the operators (default 64)\n"
    "  --neg-eigval 0|1   GDN blocks with β in (0,2): negative state eigenvalues (default 0)\n"
    "  --steps N          optimizer steps (default 1000)\n"
    "  --batch N          sequences per micro-batch (default 32)\n"
    "  --accum N          micro-batches per step, gradient accumulation (default 1)\n"
    "  --len N            training length L_train (default 64)\n"
    "  --lr X             peak learning rate (default 3e-3), --lr-min X final (default 3e-4)\n"
    "  --warmup N         linear warm-up steps (default 10% of --steps), then cosine decay\n"
    "  --wd X             AdamW weight decay on matrices (default 0.1)\n"
    "  --clip X           global gradient-norm clip, <= 0 for none (default 1)\n"
    "  --seed N           initialisation and data seed (default 1)\n"
    "  --config FILE      JSON with any of the keys of a checkpoint's config.json; flags override it\n"
    "  --lengths LIST     evaluation lengths (default L,2L,4L,8L)\n"
    "  --eval-n N         sequences per evaluation length (default 256)\n"
    "  --threads N        OpenMP and BLAS threads (default: all cores)\n"
    "  --device cpu|cuda  where the model computes (default cpu); cuda needs a build with nvcc and a GPU\n"
    "  --math f32|tf32|bf16  cuda: the layers' matrix products in float32 (default), or on the TF32 or bf16\n"
    "                     tensor cores (bf16 also runs attention on the bf16 tensor-core kernel); weights,\n"
    "                     activations and AdamW stay float32\n"
    "  --log-every N      progress line every N steps (default 50)\n";

static void usage_train(FILE *f)
{
    fprintf(f, "usage: subq train --task TASK --model SPEC [options]\n\n"
               "Trains a model on a synthetic task, saves a checkpoint (safetensors weights, AdamW state,\n"
               "config.json) under --out, logs metrics.jsonl there, and prints the answer accuracy at\n"
               "the evaluation lengths. Ctrl-C saves a checkpoint and stops; --resume continues it.\n"
               "The run folder holds ckpt/ (config.json, model.safetensors, optim.safetensors) and metrics.jsonl.\n\n"
               "options:\n"
               "  --model SPEC       xlstm[a:b], mamba2, gdn, transformer, or a list like m,m,s (default xlstm[1:1])\n"
               "  --out DIR          run folder (default runs/<task>-<model>)\n"
               "  --resume           continue from the checkpoint in --out (same flags needed)\n"
               "  --save-every N     also save every N steps (default: at the end only)\n"
               "%s  -h, --help         this text\n",
            train_help);
}

void run_usage_compare(FILE *f)
{
    fprintf(f, "usage: subq compare --task TASK --models LIST [options]\n\n"
               "Trains each model with the same budget and seed, evaluates the answer accuracy at each\n"
               "length, prints the table (rows models, columns lengths) and writes compare.csv,\n"
               "compare.json and compare.svg (a plot, with gnuplot) under --out.\n\n"
               "options:\n"
               "  --models LIST      specs separated by commas, e.g. xlstm[1:1],xlstm[1:0],mamba2,gdn,transformer;\n"
               "                     use ';' as separator when a spec is itself a list (m,m,s;gdn,attn)\n"
               "                     (default xlstm[1:1],xlstm[1:0],mamba2,gdn,transformer)\n"
               "  --out DIR          output folder (default runs/compare-<task>); one checkpoint per model inside\n"
               "%s  -h, --help         this text\n",
            train_help);
}

static void usage_eval(FILE *f)
{
    fprintf(f, "usage: subq eval --ckpt DIR [options]\n\n"
               "Loads a checkpoint written by subq train and prints the answer accuracy of its task at\n"
               "each length, over a fixed evaluation set per length.\n\n"
               "options:\n"
               "  --ckpt DIR         run folder of subq train (or its ckpt/ folder)\n"
               "  --lengths LIST     lengths (default L,2L,4L,8L of the training length)\n"
               "  --eval-n N         sequences per length (default 256)\n"
               "  --json FILE        write {task, model, params, accuracy: {length: value}}\n"
               "  --threads N        threads (default: all cores)\n"
               "  --device cpu|cuda  where the model computes (default cpu)\n"
               "  --math f32|tf32|bf16  cuda: the layers' matrix products in float32 (default), TF32 or bf16\n"
               "  -h, --help         this text\n");
}


/* Flags that take no value. */
static int is_switch(const char *a) { return !strcmp(a, "--resume"); }

static int read_file(const char *path, char **text)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        return 0;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    *text = n >= 0 ? malloc((size_t)n + 1) : NULL;
    int ok = *text && fread(*text, 1, (size_t)n, f) == (size_t)n;
    if (ok) (*text)[n] = 0;
    else fprintf(stderr, "cannot read %s\n", path);
    fclose(f);
    return ok;
}

/* --config first, so that the flags override the file. */
static int apply_config_file(int argc, char **argv, run_opts *o)
{
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--config")) continue;
        char *text = NULL;
        if (!read_file(argv[i + 1], &text)) return 0;
        int rc = sq_train_cfg_parse(text, &o->tc);
        free(text);
        if (rc) {
            fprintf(stderr, "%s: %s\n", argv[i + 1], sq_last_error());
            return 0;
        }
    }
    return 1;
}

static int set_flag(run_opts *o, const char *a, const char *v)
{
    sq_train_cfg *c = &o->tc;
    int u = 0;
    if (!strcmp(a, "--task")) {
        if (strlen(v) >= sizeof c->task) {
            fprintf(stderr, "--task: unknown task '%s' (docs/tasks.md lists them)\n", v);
            return 0;
        }
        snprintf(c->task, sizeof c->task, "%s", v);
    } else if (!strcmp(a, "--model")) {
        if (run_set_spec(c, v)) {
            fprintf(stderr, "--model: %s\n", sq_last_error());
            return 0;
        }
    }
    else if (!strcmp(a, "--models")) o->models = v;
    else if (!strcmp(a, "--depth")) return args_int(a, v, 0, 1024, &c->model.depth);
    else if (!strcmp(a, "--width")) return args_int(a, v, 1, 1 << 16, &c->model.D);
    else if (!strcmp(a, "--heads")) return args_int(a, v, 1, 1 << 12, &c->model.H);
    else if (!strcmp(a, "--chunk")) return args_int(a, v, 1, 1 << 16, &c->model.chunk);
    else if (!strcmp(a, "--neg-eigval")) return args_int(a, v, 0, 1, &c->model.neg_eigval);
    else if (!strcmp(a, "--steps")) return args_int(a, v, 1, 1 << 30, &c->steps);
    else if (!strcmp(a, "--batch")) return args_int(a, v, 1, 1 << 20, &c->batch);
    else if (!strcmp(a, "--accum")) return args_int(a, v, 1, 1 << 16, &c->accum);
    else if (!strcmp(a, "--len")) return args_int(a, v, 1, 1 << 20, &c->len);
    else if (!strcmp(a, "--warmup")) return args_int(a, v, 0, 1 << 30, &c->warmup);
    else if (!strcmp(a, "--lr")) return args_float(a, v, 1e-12, 10, &c->lr);
    else if (!strcmp(a, "--lr-min")) return args_float(a, v, 0, 10, &c->lr_min);
    else if (!strcmp(a, "--wd")) return args_float(a, v, 0, 10, &c->adamw.weight_decay);
    else if (!strcmp(a, "--clip")) return args_float(a, v, -1, 1e9, &c->clip);
    else if (!strcmp(a, "--seed")) {
        if (!args_int(a, v, 0, 2147483647, &u)) return 0;
        c->seed = (uint64_t)u;
    } else if (!strcmp(a, "--lengths"))
        return args_int_list(a, v, 1, 1 << 20, o->lengths, MAX_LENGTHS, &o->nlengths);
    else if (!strcmp(a, "--eval-n")) return args_int(a, v, 1, 1 << 20, &o->eval_n);
    else if (!strcmp(a, "--threads")) return args_int(a, v, 1, 4096, &o->threads);
    else if (!strcmp(a, "--device")) o->device = v;
    else if (!strcmp(a, "--math")) o->math = v;
    else if (!strcmp(a, "--log-every")) return args_int(a, v, 1, 1 << 30, &o->log_every);
    else if (!strcmp(a, "--save-every")) return args_int(a, v, 1, 1 << 30, &o->save_every);
    else if (!strcmp(a, "--out")) o->out = v;
    else if (!strcmp(a, "--ckpt")) o->ckpt = v;
    else if (!strcmp(a, "--json")) o->json = v;
    return 1;
}

/* Parses argv against the command's own flags (a subset of train_flags).
 * Returns 0 to go on, 1 when --help was printed, 2 on an error. */
int run_parse_opts(const char *cmd, int argc, char **argv, const char *const *flags, run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->tc = sq_train_defaults();
    o->eval_n = 256;
    o->log_every = 50;
    o->max_tokens = 1 << 15;
    o->device = "cpu";
    o->math = "f32";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return 1;
        if (!args_known(a, flags)) {
            args_unknown(cmd, a, flags);
            return 2;
        }
        if (is_switch(a)) {
            o->resume = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s: %s needs a value\n", cmd, a);
            return 2;
        }
        if (!set_flag(o, a, argv[++i])) return 2;
    }
    return apply_config_file(argc, argv, o) ? 0 : 2;
}

int run_resolve_device(const char *cmd, run_opts *o, char *desc, size_t n)
{
    o->be = cli_set_math(o->math, o->device) ? NULL : cli_backend(o->device, desc, n);
    if (o->be && !strcmp(o->math, "tf32") && strlen(desc) + 40 < n) strcat(desc, ", TF32 layer products");
    if (o->be && !strcmp(o->math, "bf16") && strlen(desc) + 60 < n) strcat(desc, ", bf16 layer products and attention");
    if (o->be) return 0;
    fprintf(stderr, "%s: %s\n", cmd, sq_last_error());
    return 2;
}

/* Applies the flags again after --config so that they win over the file. */
int run_reparse_over_config(int argc, char **argv, run_opts *o)
{
    for (int i = 1; i < argc; i++) {
        if (is_switch(argv[i])) continue;
        if (strcmp(argv[i], "--config") && !set_flag(o, argv[i], argv[i + 1])) return 0;
        i++;
    }
    return 1;
}

void run_default_lengths(run_opts *o, int len)
{
    if (o->nlengths) return;
    for (int k = 0; k < 4; k++) o->lengths[k] = len << k;
    o->nlengths = 4;
}

/* "xlstm[1:1]" -> "xlstm-1-1" (a folder name). */
void run_slug(const char *s, char *out, size_t n)
{
    size_t k = 0;
    for (; *s && k + 1 < n; s++) {
        int ok = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_';
        if (ok) out[k++] = *s;
        else if (k > 0 && out[k - 1] != '-') out[k++] = '-';
    }
    while (k > 0 && out[k - 1] == '-') k--;
    out[k] = 0;
}

int run_make_dirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) && errno != EEXIST) break;
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST) {
        fprintf(stderr, "cannot create folder %s: %s\n", path, strerror(errno));
        return 0;
    }
    return 1;
}

void run_print_model(const sq_train_cfg *c, const sq_model *m)
{
    char list[256];
    sq_spec_format(&m->spec, list, sizeof list);
    printf("model %s: %d blocks (%s), width %d, %d heads, %zu parameters\n", c->model.spec, m->spec.depth, list,
           c->model.D, c->model.H, m->ps.total);
}

/* Accuracy at each length into acc[]; prints one line per length when verbose. */
int run_eval_lengths(sq_model *m, const sq_train_cfg *c, const run_opts *o, double *acc, int verbose)
{
    const sq_task *t = sq_task_find(c->task);
    if (!t) return SQ_EINVAL;
    for (int i = 0; i < o->nlengths; i++) {
        int rc = sq_eval_accuracy(m, t, o->lengths[i], o->eval_n, SQ_EVAL_SEED, o->max_tokens, &acc[i]);
        if (rc) return rc;
        if (verbose) printf("  length %6d  accuracy %.3f\n", o->lengths[i], acc[i]);
    }
    return SQ_OK;
}

/* Trains one model: run_dir/ckpt gets its checkpoint (replaced as a whole
 * at each save), run_dir/metrics.jsonl its metrics. */
int run_train_one(const run_opts *o, const sq_train_cfg *c, const char *run_dir, sq_model *m,
                  sq_train_result *res)
{
    char path[4096], ckpt[4096];
    int rc = run_path(path, sizeof path, run_dir, "metrics.jsonl");
    if (!rc) rc = run_path(ckpt, sizeof ckpt, run_dir, "ckpt");
    if (rc) return rc;
    if (!run_make_dirs(run_dir)) return SQ_EIO;
    FILE *metrics = fopen(path, o->resume ? "a" : "w");
    if (!metrics) return sq_fail(SQ_EIO, "cannot write %s: %s", path, strerror(errno));
    sq_train_io io = {stdout, o->log_every, metrics, ckpt, o->save_every, o->resume, &run_interrupted, NULL, o->be};
    rc = sq_train_run(c, &io, m, res);
    if (fclose(metrics) && !rc) rc = sq_fail(SQ_EIO, "cannot finish writing %s", path);
    return rc;
}

int run_path(char *out, size_t n, const char *dir, const char *name)
{
    int k = name ? snprintf(out, n, "%s/%s", dir, name) : snprintf(out, n, "%s", dir);
    if (k < 0 || (size_t)k >= n) return sq_fail(SQ_EINVAL, "the path %s/%s is too long", dir, name ? name : "");
    return SQ_OK;
}

int run_set_spec(sq_train_cfg *c, const char *spec)
{
    int k = snprintf(c->model.spec, sizeof c->model.spec, "%s", spec);
    if (k < 0 || (size_t)k >= sizeof c->model.spec)
        return sq_fail(SQ_EINVAL, "model spec '%s' is longer than %zu characters", spec, sizeof c->model.spec - 1);
    return SQ_OK;
}

int run_fail(const char *cmd)
{
    fprintf(stderr, "%s: %s\n", cmd, sq_last_error());
    return 1;
}

int cli_train(int argc, char **argv)
{
    static const char *const flags[] = {"--task",  "--model", "--depth",  "--width",   "--heads",     "--chunk", "--neg-eigval",
                                        "--steps", "--batch", "--accum",  "--len",     "--lr",        "--lr-min",
                                        "--warmup", "--wd",   "--clip",   "--seed",    "--config",    "--lengths",
                                        "--eval-n", "--threads", "--log-every", "--out", "--resume", "--save-every",
                                        "--device", "--math", NULL};
    run_opts o;
    int p = run_parse_opts("subq train", argc, argv, flags, &o);
    if (p == 1) usage_train(stdout);
    if (p) return p == 1 ? 0 : 2;
    if (!run_reparse_over_config(argc, argv, &o)) return 2;
    if (sq_train_validate(&o.tc)) return run_fail("subq train"), 2;
    if (o.threads) sq_set_threads(o.threads);
    char desc[320];
    if (run_resolve_device("subq train", &o, desc, sizeof desc)) return 2;
    run_default_lengths(&o, o.tc.len);
    char dir[4096], s[128];
    run_slug(o.tc.model.spec, s, sizeof s);
    if (o.out) snprintf(dir, sizeof dir, "%s", o.out);
    else snprintf(dir, sizeof dir, "runs/%s-%s", o.tc.task, s);
    signal(SIGINT, run_on_sigint);
    sq_model m;
    sq_train_result res;
    printf("subq train: task %s, %d steps of %d x %d x %d tokens, %s, out %s\n", o.tc.task, o.tc.steps, o.tc.accum,
           o.tc.batch, o.tc.len, desc, dir);
    int rc = run_train_one(&o, &o.tc, dir, &m, &res);
    if (!rc) run_print_model(&o.tc, &m);
    if (!rc && res.interrupted) {
        printf("interrupted at step %d: checkpoint saved in %s (continue with --resume)\n", res.steps_done, dir);
        sq_model_free(&m);
        return 130;
    }
    if (!rc) {
        printf("trained %d steps in %.1f s (%.1fk tokens/s), final loss %.4f; checkpoint in %s\n", res.steps_done,
               res.seconds, res.tokens_per_s / 1e3, res.final_loss, dir);
        double acc[MAX_LENGTHS];
        rc = run_eval_lengths(&m, &o.tc, &o, acc, 1);
    }
    sq_model_free(&m);
    return rc ? run_fail("subq train") : 0;
}

static int write_eval_json(const char *path, const sq_train_cfg *c, size_t params, const run_opts *o, const double *acc)
{
    FILE *f = fopen(path, "w");
    if (!f) return sq_fail(SQ_EIO, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "{\"task\": ");
    sq_json_write_string(f, c->task);
    fprintf(f, ", \"model\": ");
    sq_json_write_string(f, c->model.spec);
    fprintf(f, ", \"params\": %zu, \"steps\": %d, \"accuracy\": {", params, c->steps);
    for (int i = 0; i < o->nlengths; i++) fprintf(f, "%s\"%d\": %.6g", i ? ", " : "", o->lengths[i], acc[i]);
    fprintf(f, "}}\n");
    return fclose(f) ? sq_fail(SQ_EIO, "cannot finish writing %s", path) : SQ_OK;
}

int cli_eval(int argc, char **argv)
{
    static const char *const flags[] = {"--ckpt", "--lengths", "--eval-n", "--json", "--threads", "--device",
                                        "--math", NULL};
    run_opts o;
    int p = run_parse_opts("subq eval", argc, argv, flags, &o);
    if (p == 1) usage_eval(stdout);
    if (p) return p == 1 ? 0 : 2;
    if (!o.ckpt) {
        fprintf(stderr, "subq eval: --ckpt DIR is required (a folder written by subq train)\n");
        return 2;
    }
    if (o.threads) sq_set_threads(o.threads);
    char desc[320];
    if (run_resolve_device("subq eval", &o, desc, sizeof desc)) return 2;
    sq_train_cfg c;
    sq_model m;
    char inner[4096], probe[4096];
    struct stat st;
    /* a run folder (with ckpt/ inside) or the checkpoint folder itself */
    if (!run_path(inner, sizeof inner, o.ckpt, "ckpt") && !run_path(probe, sizeof probe, inner, "config.json") &&
        !stat(probe, &st))
        o.ckpt = inner;
    if (sq_train_load_model(o.ckpt, &c, &m) || sq_model_use_backend(&m, o.be)) {
        sq_model_free(&m);
        return run_fail("subq eval");
    }
    run_default_lengths(&o, c.len);
    run_print_model(&c, &m);
    printf("task %s, trained at length %d for %d steps; %d sequences per length; %s\n", c.task, c.len, c.steps,
           o.eval_n, desc);
    double acc[MAX_LENGTHS];
    int rc = run_eval_lengths(&m, &c, &o, acc, 1);
    if (!rc && o.json) rc = write_eval_json(o.json, &c, m.ps.total, &o, acc);
    sq_model_free(&m);
    return rc ? run_fail("subq eval") : 0;
}
