/* The subq command line, run as a user would (from the repository root):
 * bench ops at a tiny shape with --json, --help, and refusals. */
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
    th_check(run("./subq bench ops --B 1 --T 8 --H 1 --K 4 --V 4 --reps 1 --json /nonexistent/x.json", out, sizeof out) == 1 &&
                 strstr(out, "cannot write"),
             "an unwritable --json path is reported");
    return th_finish();
}
