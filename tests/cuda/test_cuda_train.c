/* The whole training step on the GPU (src/cuda/backend.cu behind the
 * model's backend table) against the CPU: one step's loss and every
 * gradient, at initialisation and after 100 steps of training; the same
 * model, seed and data trained for 200 steps on each gives losses that
 * agree to 1e-3 relative at every step (or within 3x the CPU's own spread
 * under another rounding, when training amplifies rounding more); a checkpoint written by the GPU run loads on the CPU and
 * gives the GPU model's logits; the GPU evaluation (state carried in
 * pieces) gives the CPU's accuracy; GPU runs stopped and resumed, finished
 * on the CPU from the GPU's checkpoint, follow the uninterrupted GPU run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/model/model.h"
#include "../../src/tasks/tasks.h"
#include "../../src/train/train.h"
#include "cuda_util.h"

static sq_train_cfg small_cfg(const char *spec, int steps)
{
    sq_train_cfg c = sq_train_defaults();
    snprintf(c.task, sizeof c.task, "parity");
    snprintf(c.model.spec, sizeof c.model.spec, "%s", spec);
    c.model.depth = 2;
    c.model.D = 32;
    c.model.H = 2;
    c.model.chunk = 16;
    c.steps = steps;
    c.batch = 8;
    c.len = 40;
    c.seed = th_seed() % 100000 + 1; /* fresh each run */
    return c;
}

/* Trains c on be (NULL: CPU); losses into L; the model is kept in m. */
static int train(const sq_train_cfg *c, const sq_backend *be, float *L, const char *ckpt, sq_model *m)
{
    sq_train_io io = {0};
    io.losses = L;
    io.be = be;
    io.ckpt_dir = ckpt;
    sq_train_result res;
    int rc = sq_train_run(c, &io, m, &res);
    th_expect_ok("training", rc);
    return rc;
}

/* Largest |a - b| / max(|b|, 1e-3) over n steps (INFINITY with a non-finite value). */
static double worst_rel(const float *a, const float *b, int n)
{
    double w = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        w = fmax(w, fabs((double)a[i] - b[i]) / fmax(fabs((double)b[i]), 1e-3));
    }
    return w;
}

/* One forward and backward of the same model and batch on each device:
 * the loss, and every parameter tensor's gradient (‖gpu − cpu‖/‖cpu‖,
 * the worst tensor named), to 1e-4. trained > 0: the parameters are first
 * trained that many steps on the CPU (gates and norms away from their
 * initial values), then copied to the GPU model. math: the GPU's
 * SQ_CUDA_MATH_* mode (the CPU stays float32). */
static void check_one_step(const char *spec, int trained, int math)
{
    sq_train_cfg c = small_cfg(spec, trained > 0 ? trained : 1);
    th_expect_ok("config", sq_train_validate(&c));
    sq_model mc, mg;
    int B = 4, T = 40, rc;
    size_t n = (size_t)B * T;
    int32_t *x = malloc(n * sizeof(int32_t)), *y = malloc(n * sizeof(int32_t));
    th_expect_ok("batch", sq_task_batch(sq_task_find("parity"), T, B, th_seed(), x, y));
    if (trained > 0) {
        sq_train_io io = {0};
        sq_train_result res;
        rc = sq_train_run(&c, &io, &mc, &res);
    } else {
        rc = sq_model_build(&mc, &c.model);
        if (!rc) sq_model_init(&mc, c.seed);
    }
    if (!rc) rc = sq_model_build(&mg, &c.model);
    if (!th_expect_ok("build", rc)) return;
    memcpy(mg.ps.data, mc.ps.data, mc.ps.total * sizeof(float));
    memset(mc.ps.grad, 0, mc.ps.total * sizeof(float));
    float lc = NAN, lg = NAN;
    /* Reduced precision (TF32, or bf16 in the layers and attention): the whole
     * gradient to the 1e-2, a single tensor to 5e-2 (a norm weight's
     * gradient is a sum over rows that can cancel: 2.6e-2 was seen with TF32;
     * bf16 gave at most 4e-3, cuBLAS choosing its own kernels for the
     * layers), the loss to 1e-3. */
    static const double tol_all[3] = {1e-4, 1e-2, 1e-2}, tol_one[3] = {1e-4, 5e-2, 5e-2},
                        tol_loss[3] = {1e-5, 1e-3, 1e-3};
    static const char *const mode_name[3] = {"", " (TF32 layers)", " (bf16 layers and attention)"};
    th_expect_ok("layer math", sq_cuda_set_layer_math(math));
    rc = sq_model_use_backend(&mg, sq_cuda_backend()) || sq_model_plan(&mc, B, T) || sq_model_plan(&mg, B, T) ||
         sq_model_fwd(&mc, x, y, &lc) || sq_model_bwd(&mc) || sq_model_fwd(&mg, x, y, &lg) || sq_model_bwd(&mg);
    char what[200];
    if (th_expect_ok("forward and backward on both devices", rc)) {
        const char *mode = math ? mode_name[math] : trained ? " after training" : "";
        snprintf(what, sizeof what, "%s one step%s: loss GPU %.7f CPU %.7f", spec, mode, lg, lc);
        th_close(what, fabs((double)lg - lc) / fabs((double)lc), tol_loss[math]);
        float *g = sq_alloc_floats(mc.ps.total);
        th_expect_ok("download", sq_cuda_download(g, mg.dev.grad, mc.ps.total));
        double worst = 0;
        int wi = 0;
        for (int i = 0; i < mc.ps.n; i++) {
            const sq_param *p = &mc.ps.p[i];
            double e = th_all_finite(g + p->off, p->n) ? th_rel_err_ff(g + p->off, mc.ps.grad + p->off, p->n) : INFINITY;
            if (!(e <= worst)) worst = e, wi = i;
        }
        snprintf(what, sizeof what, "%s one step%s: every gradient tensor (worst %s)", spec, mode, mc.ps.p[wi].name);
        th_close(what, worst, tol_one[math]);
        if (math) {
            snprintf(what, sizeof what, "%s one step%s: the whole gradient", spec, mode);
            th_close(what, th_all_finite(g, mc.ps.total) ? th_rel_err_ff(g, mc.ps.grad, mc.ps.total) : INFINITY,
                     tol_all[math]);
        }
        sq_free(g);
    }
    th_expect_ok("layer math", sq_cuda_set_layer_math(SQ_CUDA_MATH_F32));
    free(x), free(y);
    sq_model_free(&mc);
    sq_model_free(&mg);
}

/* 200 steps on each device. The bound is 1e-3 relative at every step, or
 * 5x the CPU's own spread when that is larger. The spread is measured in the
 * same test, from three CPU runs that differ from the reference run only at
 * the level of float32 rounding: chunk 8 instead of 16 (the same math, another
 * order), and a learning rate or a weight decay larger by 1e-6 relative (every
 * update moved by about one rounding step). Their largest distance from the
 * reference curve shows how much this model's training amplifies rounding:
 * GDN and the transformer on parity can move by several percent from that
 * alone. The GPU rounds differently in every operation of every step, a larger
 * perturbation than any one probe: its distance reached 3x the probes' largest
 * in the runs seen (Mamba-2, 6.3e-3 against 2.1e-3), hence 5x. */
static void check_losses_agree(const char *spec)
{
    enum { STEPS = 200, PROBES = 3 };
    sq_train_cfg c = small_cfg(spec, STEPS), probe[PROBES] = {c, c, c};
    probe[0].model.chunk = 8;
    probe[1].lr *= 1 + 1e-6f;
    probe[2].adamw.weight_decay *= 1 + 1e-6f;
    th_expect_ok("config", sq_train_validate(&c));
    float cpu[STEPS], other[STEPS], gpu[STEPS];
    for (int i = 0; i < STEPS; i++) cpu[i] = gpu[i] = NAN;
    sq_model mc = {0}, mg = {0};
    int rc = train(&c, NULL, cpu, NULL, &mc);
    double self = 0;
    for (int p = 0; !rc && p < PROBES; p++) {
        sq_model mp = {0};
        for (int i = 0; i < STEPS; i++) other[i] = NAN;
        if (!(rc = sq_train_validate(&probe[p])) && !(rc = train(&probe[p], NULL, other, NULL, &mp)))
            self = fmax(self, worst_rel(other, cpu, STEPS));
        sq_model_free(&mp);
    }
    if (!rc) rc = train(&c, sq_cuda_backend(), gpu, NULL, &mg);
    double tol = fmax(1e-3, 5 * self);
    int first = 0; /* the first step off by more than 1e-4 */
    while (first < STEPS - 1 && fabs((double)gpu[first] - cpu[first]) <= 1e-4 * fabs((double)cpu[first])) first++;
    char what[240];
    snprintf(what, sizeof what,
             "train %s 200 steps: GPU losses vs CPU (CPU %.4f -> %.4f, GPU -> %.4f; first apart at step %d; "
             "CPU's own spread: %.2g)",
             spec, cpu[0], cpu[STEPS - 1], gpu[STEPS - 1], first + 1, self);
    th_close(what, rc ? INFINITY : worst_rel(gpu, cpu, STEPS), tol);
    if (!rc) {
        /* Evaluation with the state carried in pieces. The GPU-trained model on
         * each device (the same parameters): to rounding, at most two of the 64
         * answers flip. The two trained models: as close when their training
         * agreed; when the CPU's own spread shows a chaotic trajectory (GDN on
         * parity: 0.25) they are different models, reported and not compared. */
        const sq_task *t = sq_task_find("parity");
        double acc_c = -1, acc_g = -2, acc_gc = -3;
        sq_model mh = {0};
        th_expect_ok("cpu eval", sq_eval_accuracy(&mc, t, 300, 64, SQ_EVAL_SEED, 4096, &acc_c));
        th_expect_ok("gpu eval", sq_eval_accuracy(&mg, t, 300, 64, SQ_EVAL_SEED, 4096, &acc_g));
        if (th_expect_ok("the GPU model's parameters to a CPU model",
                         sq_model_to_host(&mg) || sq_model_build(&mh, &c.model))) {
            memcpy(mh.ps.data, mg.ps.data, mg.ps.total * sizeof(float));
            th_expect_ok("cpu eval of the GPU model", sq_eval_accuracy(&mh, t, 300, 64, SQ_EVAL_SEED, 4096, &acc_gc));
        }
        sq_model_free(&mh);
        snprintf(what, sizeof what, "eval %s at length 300 (pieces of 256), the GPU-trained model: on the GPU %.3f, "
                 "on the CPU %.3f", spec, acc_g, acc_gc);
        th_check(fabs(acc_g - acc_gc) <= 2.0 / 64 + 1e-9, "%s", what);
        snprintf(what, sizeof what, "eval %s at length 300: the GPU-trained model %.3f, the CPU-trained %.3f%s", spec,
                 acc_g, acc_c, self > 1e-3 ? " (chaotic training: not compared)" : "");
        if (self > 1e-3) printf("  note %s\n", what);
        else th_check(fabs(acc_g - acc_c) <= 2.0 / 64 + 1e-9, "%s", what);
    }
    sq_model_free(&mc);
    sq_model_free(&mg);
}

/* The logits of one batch from model m (any backend) into host memory. */
static float *logits_of(sq_model *m, const int32_t *x, size_t n)
{
    float *h = sq_alloc_floats(n);
    if (!th_expect_ok("forward", sq_model_fwd(m, x, NULL, NULL))) return h;
    th_expect_ok("download", m->be->download(h, m->logits, n));
    return h;
}

/* A GPU-trained checkpoint loads on the CPU (and back on the GPU), and a
 * resumed GPU run continues the uninterrupted one exactly. */
static void check_checkpoints(void)
{
    enum { STEPS = 30 };
    char dir[] = "/tmp/subq-cuda-ckpt-XXXXXX";
    if (!th_check(mkdtemp(dir) != NULL, "temporary folder")) return;
    sq_train_cfg c = small_cfg("m,s", STEPS);
    th_expect_ok("config", sq_train_validate(&c));
    float L[STEPS], R[STEPS];
    sq_model mg;
    if (train(&c, sq_cuda_backend(), L, dir, &mg)) return;

    sq_train_cfg lc;
    sq_model mc;
    th_expect_ok("load the GPU's checkpoint on the CPU", sq_train_load_model(dir, &lc, &mc));
    int B = 4, T = 40;
    size_t n = (size_t)B * T;
    int32_t *x = malloc(n * sizeof(int32_t)), *y = malloc(n * sizeof(int32_t));
    th_expect_ok("batch", sq_task_batch(sq_task_find("parity"), T, B, 77, x, y));
    th_expect_ok("plan", sq_model_plan(&mc, B, T));
    th_expect_ok("plan", sq_model_plan(&mg, B, T));
    size_t nl = n * mc.cfg.vocab;
    float *lc_ = logits_of(&mc, x, nl), *lg = logits_of(&mg, x, nl);
    th_close("a GPU checkpoint on the CPU: logits vs the GPU model's", th_all_finite(lc_, nl) ? th_rel_err_ff(lg, lc_, nl) : INFINITY,
             1e-4);
    sq_free(lc_), sq_free(lg);

    /* two one-step GPU runs, each stopped and resumed, then the CPU resumes
     * the GPU's checkpoint to the end: the loss curve of the uninterrupted
     * GPU run (to float32 rounding: the GPU's embedding gradient adds with
     * atomics, and the CPU finishes) */
    char dir2[] = "/tmp/subq-cuda-resume-XXXXXX";
    if (th_check(mkdtemp(dir2) != NULL, "temporary folder")) {
        volatile int stop = 1;
        sq_train_io io = {0};
        io.ckpt_dir = dir2;
        io.resume = 1;
        io.interrupt = &stop;
        io.losses = R;
        for (int i = 0; i < STEPS; i++) R[i] = NAN;
        int ok = 1;
        for (int k = 0; k < 2; k++) {
            sq_model m1;
            sq_train_result res;
            io.be = sq_cuda_backend();
            ok &= !sq_train_run(&c, &io, &m1, &res) && res.interrupted && res.steps_done == k + 1;
            sq_model_free(&m1);
        }
        stop = 0;
        io.be = NULL;
        sq_model m2;
        sq_train_result res;
        ok &= !sq_train_run(&c, &io, &m2, &res) && !res.interrupted && res.steps_done == STEPS;
        sq_model_free(&m2);
        th_check(ok, "GPU runs stopped at steps 1 and 2, the CPU resumed the GPU's checkpoint to %d", STEPS);
        th_close("resumed across devices: losses vs the uninterrupted GPU run", worst_rel(R, L, STEPS), 1e-3);
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf %s %s", dir, dir2);
        th_check(system(cmd) == 0, "clean up %s", dir2);
    }
    free(x), free(y);
    sq_model_free(&mg);
    sq_model_free(&mc);
}

/* One-token decoding with the state carried (the operators' steps), the
 * same parameters on each device: every step's logits to 1e-4. */
static void check_decode(const char *spec)
{
    sq_train_cfg c = small_cfg(spec, 1);
    th_expect_ok("config", sq_train_validate(&c));
    sq_model mc, mg;
    if (!th_expect_ok("build", sq_model_build(&mc, &c.model) || sq_model_build(&mg, &c.model))) return;
    sq_model_init(&mc, c.seed);
    sq_rng_fill_normal(th_rng(), mc.ps.data, mc.ps.total, 0, 0.2f); /* away from the initialisation */
    memcpy(mg.ps.data, mc.ps.data, mc.ps.total * sizeof(float));
    enum { B = 3, T = 20 };
    int V = mc.cfg.vocab, rc = sq_model_use_backend(&mg, sq_cuda_backend()) || sq_model_plan(&mc, B, 1) ||
                              sq_model_plan(&mg, B, 1);
    size_t ns = sq_model_state_floats(&mc, T);
    float *sc = sq_alloc_floats(ns), *sg = mg.be->alloc(ns), *lg = sq_alloc_floats((size_t)B * V);
    rc = rc || !sg || mg.be->zero(ns, sg);
    memset(sc, 0, ns * sizeof(float));
    double worst = 0;
    for (int t = 0; !rc && t < T; t++) {
        int32_t tok[B];
        for (int b = 0; b < B; b++) tok[b] = (int32_t)(sq_rng_u64(th_rng()) % (uint64_t)V);
        rc = sq_model_fwd_carry(&mc, tok, 1, t, sc, T) || sq_model_fwd_carry(&mg, tok, 1, t, sg, T) ||
             mg.be->download(lg, mg.logits, (size_t)B * V);
        if (!rc) worst = fmax(worst, th_all_finite(lg, (size_t)B * V) ? th_rel_err_ff(lg, mc.logits, (size_t)B * V) : INFINITY);
    }
    char what[160];
    snprintf(what, sizeof what, "%s: %d one-token steps with the state carried, GPU logits vs CPU", spec, T);
    th_close(what, rc ? INFINITY : worst, 1e-4);
    sq_free(sc), sq_free(lg);
    mg.be->release(sg);
    sq_model_free(&mc);
    sq_model_free(&mg);
}

void cuda_test_train(int small)
{
    check_decode("m,s,attn");
    check_decode("gdn,mamba2");
    static const char *const specs[] = {"xlstm[1:1]", "mamba2", "gdn", "transformer"};
    static const char *const mixed[] = {"m,s", "mamba2", "gdn", "attn,gdn"};
    for (int i = 0; i < 4; i++) check_one_step(mixed[i], 0, 0);
    for (int i = 0; i < 4; i++) check_one_step(mixed[i], 100, 0);
    for (int i = 0; i < 4; i++) check_one_step(mixed[i], 100, SQ_CUDA_MATH_TF32);
    for (int i = 0; i < 4; i++) check_one_step(mixed[i], 100, SQ_CUDA_MATH_BF16);
    th_expect_error("layer math 7 is refused", sq_cuda_set_layer_math(7), SQ_EINVAL);
    for (int i = 0; i < 4 && !small; i++) check_losses_agree(specs[i]);
    check_checkpoints();
}
