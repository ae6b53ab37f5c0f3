/* The subq command line, run as a user would (from the repository root):
 * bench ops at a tiny shape with --json; train, eval and compare on a tiny
 * model with their files; --help everywhere, and refusals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/core/json.h"
#include "harness.h"

/* Runs cmd with output to a file; returns the exit status, the output in out. */
static int run(const char *cmd, char *out, size_t n)
{
    char full[1024], path[64];
    snprintf(path, sizeof path, "/tmp/subq_cli_%ld.txt", (long)getpid());
    snprintf(full, sizeof full, "%s > %s 2>&1", cmd, path);
    int st = system(full);
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(out, 1, n - 1, f) : 0;
    out[got] = 0;
    if (f) fclose(f);
    unlink(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The file's text into out (empty when it cannot be read); its length. */
static size_t slurp(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(out, 1, n - 1, f) : 0;
    out[got] = 0;
    if (f) fclose(f);
    return got;
}

static int has_keys(const sq_json *o, const char *const *keys)
{
    for (int i = 0; keys[i]; i++)
        if (!sq_json_get(o, keys[i])) return 0;
    return 1;
}

static void test_train_eval_compare(char *out, size_t n)
{
    char dir[64], cmd[512], path[128];
    static char text[65536];
    const char *tiny = "--width 16 --heads 2 --chunk 8 --steps 6 --batch 4 --len 8 --lengths 8,16 --eval-n 16 --threads 1";
    snprintf(dir, sizeof dir, "/tmp/subq_cli_run_%ld", (long)getpid());
    th_check(run("./subq train --help", out, n) == 0 && strstr(out, "--resume") && strstr(out, "--task"), "train --help");
    th_check(run("./subq eval --help", out, n) == 0 && strstr(out, "--ckpt"), "eval --help");
    th_check(run("./subq compare --help", out, n) == 0 && strstr(out, "--models"), "compare --help");
    th_check(run("./subq trian", out, n) == 2 && strstr(out, "did you mean 'train'"), "a misspelt command gets a suggestion");
    th_check(run("./subq train --task partiy --steps 1", out, n) == 2 && strstr(out, "parity"),
             "an unknown task is refused with a suggestion: %.200s", out);
    th_check(run("./subq train --model m,x --steps 1", out, n) == 2 && strstr(out, "^"),
             "a bad spec is refused with a caret: %.300s", out);
    th_check(run("./subq train --steps 1 --lr", out, n) == 2 && strstr(out, "needs a value"), "a flag without its value");
    th_check(run("./subq train --stesp 5", out, n) == 2 && strstr(out, "did you mean '--steps'"), "a misspelt flag");
    snprintf(cmd, sizeof cmd, "./subq train --task parity --model m,s %s --out %s", tiny, dir);
    th_check(run(cmd, out, n) == 0 && strstr(out, "step      6/6") && strstr(out, "length     16  accuracy"),
             "train runs with a progress line and the accuracy per length: %.400s", out);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    slurp(path, text, sizeof text);
    int lines = 0;
    for (char *p = text; (p = strstr(p, "\"loss\"")); p++) lines++;
    th_check(lines == 6, "metrics.jsonl has one line per step (%d)", lines);
    snprintf(path, sizeof path, "%s/eval.json", dir);
    snprintf(cmd, sizeof cmd, "./subq eval --ckpt %s --lengths 8,16 --eval-n 16 --threads 1 --json %s", dir, path);
    th_check(run(cmd, out, n) == 0 && strstr(out, "accuracy"), "eval of the run's checkpoint: %.300s", out);
    size_t len = slurp(path, text, sizeof text);
    sq_json *j = sq_json_parse(text, len);
    static const char *const eval_keys[] = {"task", "model", "params", "accuracy", NULL};
    const sq_json *acc = j ? sq_json_get(j, "accuracy") : NULL;
    th_check(j && has_keys(j, eval_keys) && acc && sq_json_get(acc, "8") && sq_json_get(acc, "16"),
             "eval --json has task, model, params and accuracy per length: %.300s", text);
    sq_json_free(j);
    th_check(run("./subq eval --lengths 8", out, n) == 2 && strstr(out, "--ckpt"), "eval without --ckpt is refused");
    snprintf(cmd, sizeof cmd, "truncate -s 100 %s/ckpt/model.safetensors && ./subq eval --ckpt %s", dir, dir);
    th_check(run(cmd, out, n) == 1 && strstr(out, "model.safetensors"), "a truncated checkpoint is refused: %.300s", out);
    snprintf(cmd, sizeof cmd, "./subq compare --task parity --models 'xlstm[1:0],s' --depth 1 %s --out %s/cmp", tiny,
             dir);
    th_check(run(cmd, out, n) == 0 && strstr(out, "xlstm[1:0]") && strstr(out, "compare.csv"),
             "compare of two models runs: %.400s", out);
    snprintf(path, sizeof path, "%s/cmp/compare.json", dir);
    len = slurp(path, text, sizeof text);
    j = sq_json_parse(text, len);
    static const char *const cmp_keys[] = {"model", "task", "params", "steps", "accuracy", NULL};
    int ok = j && j->kind == SQ_JSON_ARRAY && sq_json_count(j) == 2;
    for (const sq_json *e = j ? j->child : NULL; e && ok; e = e->next) ok = has_keys(e, cmp_keys);
    th_check(ok, "compare.json is a list of two objects with model, task, params, steps, accuracy");
    sq_json_free(j);
    snprintf(path, sizeof path, "%s/cmp/compare.csv", dir);
    slurp(path, text, sizeof text);
    th_check(!strncmp(text, "model,task,params,steps,final_loss,8,16\n", 39) && strstr(text, "\"s\",parity"),
             "compare.csv has a header and a row per model: %.200s", text);
    th_check(run("./subq compare --models xlstm[1:0],lstm --steps 1", out, n) == 2 && strstr(out, "lstm"),
             "an unknown model in the list is refused before training: %.200s", out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    th_check(system(cmd) == 0, "clean up");
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "cli");
    if (access("./subq", X_OK)) {
        th_check(0, "./subq exists (run the tests from the repository root after make)");
        return th_finish();
    }
    static char out[65536];
    char json[64], cmd[256];
    snprintf(json, sizeof json, "/tmp/subq_cli_%ld.json", (long)getpid());
    snprintf(cmd, sizeof cmd, "./subq bench ops --B 1 --T 70 --H 2 --K 8 --V 8 --chunk 16 --reps 1 --threads 1 --json %s", json);
    th_check(run(cmd, out, sizeof out) == 0, "bench ops at a tiny shape runs: %.300s", out);
    th_check(strstr(out, "mlstm") && strstr(out, "gdn") && strstr(out, "attn") && strstr(out, "sgemm ceiling"),
             "the table lists the operators and the ceiling");
    FILE *f = fopen(json, "r");
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = 0;
    if (f) fclose(f);
    unlink(json);
    sq_json *j = sq_json_parse(out, n);
    int ok = j && j->kind == SQ_JSON_ARRAY && sq_json_count(j) == 6;
    const char *keys[] = {"op", "B", "T", "H", "K", "V", "device", "threads", "fwd_ms", "fwdbwd_ms", "gflops_fwd",
                          "max_rel_err"};
    for (const sq_json *e = j ? j->child : NULL; e && ok; e = e->next) {
        for (int i = 0; i < 12; i++) ok &= sq_json_get(e, keys[i]) != NULL;
        ok &= sq_json_get(e, "max_rel_err")->num < 1e-4 && sq_json_get(e, "fwd_ms")->num > 0 &&
              sq_json_get(e, "T")->num == 70;
    }
    th_check(ok, "the JSON has one object per operator with every field, errors < 1e-4");
    sq_json_free(j);
    th_check(run("./subq bench ops --help", out, sizeof out) == 0 && strstr(out, "--threads"), "bench ops --help");
    th_check(run("./subq --help", out, sizeof out) == 0 && strstr(out, "bench"), "subq --help");
    th_check(run("./subq bench ops --thread 2", out, sizeof out) == 2 && strstr(out, "did you mean '--threads'"),
             "a misspelt flag is refused with a suggestion: %.200s", out);
    th_check(run("./subq bench ops --ops mlstm,foo", out, sizeof out) == 2 && strstr(out, "unknown operator 'foo'"),
             "an unknown operator is refused");
    th_check(run("./subq bench ops --T 0", out, sizeof out) == 2 && strstr(out, "--T expects"), "T = 0 is refused");
    th_check(run("./subq bench ops --device cuda", out, sizeof out) == 2, "--device cuda is refused in a CPU build");
    th_check(run("./subq frobnicate", out, sizeof out) == 2 && strstr(out, "unknown command"), "unknown command");
    th_check(run("./subq train --task parity --steps 1 --device tpu", out, sizeof out) == 2 &&
                 strstr(out, "choose cpu or cuda"),
             "an unknown --device is refused: %.200s", out);
    th_check(run("./subq train --task parity --steps 1 --math tf32", out, sizeof out) == 2 && strstr(out, "--device cuda"),
             "--math tf32 on the CPU is refused: %.200s", out);
    th_check(run("./subq train --task parity --steps 1 --math bf16", out, sizeof out) == 2 && strstr(out, "--device cuda"),
             "--math bf16 on the CPU is refused: %.200s", out);
    th_check(run("./subq eval --ckpt x --math bf12", out, sizeof out) == 2 && strstr(out, "choose f32, tf32 or bf16"),
             "an unknown --math is refused: %.200s", out);
    th_check(run("./subq bench ops --dtype bf16", out, sizeof out) == 2 && strstr(out, "--device cuda"),
             "bench ops --dtype bf16 on the CPU is refused: %.200s", out);
    th_check(run("./subq bench ops --device cuda --dtype f16", out, sizeof out) == 2 && strstr(out, "choose f32 or bf16"),
             "an unknown --dtype is refused: %.200s", out);
    th_check(run("./subq bench model --help", out, sizeof out) == 0 && strstr(out, "--decode"), "bench model --help");
    snprintf(cmd, sizeof cmd, "./subq bench model --device cpu --models gdn --depth 1 --width 16 --heads 2 --vocab 11 "
                              "--B 1 --T 24 --steps 1 --decode 1,2 --json %s", json);
    th_check(run(cmd, out, sizeof out) == 0 && strstr(out, "dec B=2") && strstr(out, "gdn"),
             "bench model on the CPU at a tiny size runs: %.300s", out);
    f = fopen(json, "r");
    n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = 0;
    if (f) fclose(f);
    unlink(json);
    j = sq_json_parse(out, n);
    const sq_json *row = j && j->kind == SQ_JSON_ARRAY ? j->child : NULL;
    th_check(row && sq_json_get(row, "tokens_per_s") && sq_json_get(row, "tokens_per_s")->num > 0 &&
                 sq_json_get(row, "decode_tokens_per_s") && sq_json_get(row, "operators_ms"),
             "bench model's JSON has the throughput, the split and the decoding rates");
    sq_json_free(j);
    th_check(run("./subq bench ops --B 1 --T 8 --H 1 --K 4 --V 4 --reps 1 --json /nonexistent/x.json", out, sizeof out) == 1 &&
                 strstr(out, "cannot write"),
             "an unwritable --json path is reported");
    test_train_eval_compare(out, sizeof out);
    return th_finish();
}
