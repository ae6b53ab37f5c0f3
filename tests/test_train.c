/* The training loop: bit-identical losses for one seed, resume exactness
 * across interruptions, refusal of a mismatched resume, the config's JSON
 * round trip, learning on an easy task, and evaluation of a reloaded
 * checkpoint. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/train/train.h"
#include "harness.h"

static sq_train_cfg tiny_cfg(const char *spec, int steps)
{
    sq_train_cfg c = sq_train_defaults();
    snprintf(c.model.spec, sizeof c.model.spec, "%s", spec);
    c.model.D = 16;
    c.model.H = 2;
    c.model.chunk = 8;
    c.steps = steps;
    c.batch = 4;
    c.len = 12;
    c.seed = th_seed() % 100000 + 1;
    return c;
}

/* Trains c, losses into L[c.steps]; io fields beyond the losses from base. */
static int train(const sq_train_cfg *c, const sq_train_io *base, float *L, sq_train_result *res)
{
    sq_train_io io = base ? *base : (sq_train_io){0};
    io.losses = L;
    sq_model m;
    int rc = sq_train_run(c, &io, &m, res);
    sq_model_free(&m);
    return rc;
}

static int same_bits(const float *a, const float *b, int n)
{
    return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

static void test_determinism(void)
{
    sq_train_cfg c = tiny_cfg("m,s", 8);
    th_expect_ok("validate", sq_train_validate(&c));
    float a[8], b[8], d[8];
    sq_train_result r;
    th_expect_ok("run 1", train(&c, NULL, a, &r));
    th_expect_ok("run 2", train(&c, NULL, b, &r));
    th_check(same_bits(a, b, 8), "the same seed gives bit-identical losses (%.7f .. %.7f)", a[0], a[7]);
    c.seed += 1;
    th_expect_ok("run 3", train(&c, NULL, d, &r));
    th_check(!same_bits(a, d, 8) && th_all_finite(d, 8), "another seed gives other (finite) losses");
    c.accum = 2;
    th_expect_ok("gradient accumulation", train(&c, NULL, d, &r));
    th_check(th_all_finite(d, 8) && r.steps_done == 8, "2 micro-batches per step train 8 steps");
}

static void test_resume(void)
{
    const char *specs[] = {"m,s", "xlstm[1:0]"};
    for (int si = 0; si < 2; si++) {
        sq_train_cfg c = tiny_cfg(specs[si], 10);
        c.accum = 2;
        th_expect_ok("validate", sq_train_validate(&c));
        float whole[10], parts[10];
        sq_train_result r;
        th_expect_ok("uninterrupted run", train(&c, NULL, whole, &r));
        char dir[128];
        snprintf(dir, sizeof dir, "/tmp/subq_test_resume_%ld", (long)getpid());
        volatile int stop = 1;
        sq_train_io io = {0};
        io.ckpt_dir = dir;
        io.resume = 1;
        io.interrupt = &stop;
        /* a stop request is served after the step in flight: three one-step
         * runs, then one to the end, each resuming from the last */
        int ok = 1;
        for (int k = 0; k < 3; k++) {
            ok &= !train(&c, &io, parts, &r) && r.interrupted && r.steps_done == k + 1;
        }
        stop = 0;
        ok &= !train(&c, &io, parts, &r) && !r.interrupted && r.steps_done == 10;
        th_check(ok, "%s: interrupted at steps 1, 2, 3, resumed to 10", specs[si]);
        th_check(same_bits(whole, parts, 10), "%s: the resumed loss curve equals the uninterrupted one bit for bit",
                 specs[si]);
        sq_train_cfg other = c;
        other.lr *= 2;
        io.interrupt = NULL;
        th_expect_error("resuming with another config is refused", train(&other, &io, parts, &r), SQ_EIO);
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        th_check(system(cmd) == 0, "clean up %s", dir);
    }
}

static void test_config_json(void)
{
    sq_train_cfg c = tiny_cfg("gdn", 77), d = sq_train_defaults();
    c.lr = 3.3e-3f;
    c.clip = 0.5f;
    c.adamw.beta2 = 0.99f;
    c.seed = 123456789;
    char a[2048], b[2048];
    th_expect_ok("to json", sq_train_cfg_json(&c, a, sizeof a));
    th_expect_ok("parse json", sq_train_cfg_parse(a, &d));
    th_expect_ok("to json again", sq_train_cfg_json(&d, b, sizeof b));
    th_check(!strcmp(a, b), "the config survives a JSON round trip: %s", a);
    th_expect_error("an unknown key is refused", sq_train_cfg_parse("{\"lr\": 1e-3, \"steppes\": 10}", &d), SQ_EINVAL);
    th_expect_error("a string where a number belongs is refused", sq_train_cfg_parse("{\"steps\": \"ten\"}", &d),
                    SQ_EINVAL);
    th_expect_error("a fractional step count is refused", sq_train_cfg_parse("{\"steps\": 10.5}", &d), SQ_EINVAL);
    th_expect_error("malformed JSON is refused", sq_train_cfg_parse("{\"steps\": 10", &d), SQ_EINVAL);
    sq_train_cfg e = tiny_cfg("m", 10);
    snprintf(e.task, sizeof e.task, "partiy");
    int rc = sq_train_validate(&e);
    th_check(strstr(sq_last_error(), "parity") != NULL, "an unknown task gets a suggestion: %s", sq_last_error());
    th_expect_error("an unknown task is refused", rc, SQ_EINVAL);
    e = tiny_cfg("m", 10);
    e.len = 0;
    th_expect_error("length 0 is refused", sq_train_validate(&e), SQ_EINVAL);
    e = tiny_cfg("m,x", 10);
    th_expect_error("a bad spec is refused", sq_train_validate(&e), SQ_EINVAL);
}

/* An sLSTM learns parity at a short length, and a reloaded checkpoint
 * evaluates exactly as the model in memory. */
static void test_learns_and_reloads(void)
{
    sq_train_cfg c = tiny_cfg("s", 150);
    c.len = 8;
    c.batch = 16;
    c.lr = 1e-2f;
    c.lr_min = 1e-3f;
    th_expect_ok("validate", sq_train_validate(&c));
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/subq_test_learn_%ld", (long)getpid());
    sq_train_io io = {0};
    io.ckpt_dir = dir;
    float L[150];
    io.losses = L;
    sq_model m, m2;
    sq_train_result r;
    th_expect_ok("train", sq_train_run(&c, &io, &m, &r));
    double first = 0, last = 0;
    for (int i = 0; i < 10; i++) {
        first += L[i] / 10;
        last += L[140 + i] / 10;
    }
    th_check(last < 0.5 * first, "the loss falls (first 10 steps %.3f, last 10 %.3f)", first, last);
    const sq_task *t = sq_task_find("parity");
    double acc = 0, acc2 = -1;
    th_expect_ok("eval", sq_eval_accuracy(&m, t, 8, 200, SQ_EVAL_SEED, 4096, &acc));
    th_check(acc > 0.9, "answer accuracy at the training length %.3f > 0.9", acc);
    sq_train_cfg c2;
    th_expect_ok("reload", sq_train_load_model(dir, &c2, &m2));
    th_expect_ok("eval reloaded", sq_eval_accuracy(&m2, t, 8, 200, SQ_EVAL_SEED, 4096, &acc2));
    th_check(acc == acc2, "the reloaded checkpoint evaluates the same (%.3f, %.3f)", acc, acc2);
    th_expect_error("length below the task's minimum", sq_eval_accuracy(&m2, t, 0, 10, 1, 4096, &acc2), SQ_EINVAL);
    sq_model_free(&m);
    sq_model_free(&m2);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    th_check(system(cmd) == 0, "clean up %s", dir);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "train");
    sq_set_threads(1);
    test_config_json();
    test_determinism();
    test_resume();
    test_learns_and_reloads();
    return th_finish();
}
