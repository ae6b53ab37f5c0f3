#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/json.h"
#include "../model/checkpoint.h"

sq_train_cfg sq_train_defaults(void)
{
    sq_train_cfg c;
    memset(&c, 0, sizeof c);
    snprintf(c.task, sizeof c.task, "parity");
    snprintf(c.model.spec, sizeof c.model.spec, "xlstm[1:1]");
    c.model.depth = 0;
    c.model.D = 64;
    c.model.H = 4;
    c.model.chunk = 64;
    c.steps = 1000;
    c.batch = 32;
    c.accum = 1;
    c.len = 64;
    c.warmup = -1;
    c.lr = 3e-3f;
    c.lr_min = 3e-4f;
    c.clip = 1.0f;
    c.adamw = sq_adamw_defaults();
    c.seed = 1;
    return c;
}

static int check_range(const char *what, double v, double lo, double hi)
{
    if (!(v >= lo && v <= hi)) return sq_fail(SQ_EINVAL, "training config: %s = %g is outside [%g, %g]", what, v, lo, hi);
    return SQ_OK;
}

int sq_train_validate(sq_train_cfg *c)
{
    int rc;
    const sq_task *t = sq_task_find(c->task);
    if (!t) return SQ_EINVAL; /* sq_task_find left the message with a suggestion */
    if ((rc = check_range("steps", c->steps, 1, 1e9)) || (rc = check_range("batch", c->batch, 1, 1 << 20)) ||
        (rc = check_range("accum", c->accum, 1, 1 << 16)) || (rc = check_range("len", c->len, t->min_len, 1 << 20)) ||
        (rc = check_range("warmup", c->warmup, -1, c->steps)) || (rc = check_range("lr", c->lr, 1e-12, 10)) ||
        (rc = check_range("lr_min", c->lr_min, 0, c->lr)) || (rc = check_range("clip", c->clip, -1, 1e9)) ||
        (rc = check_range("weight_decay", c->adamw.weight_decay, 0, 10)) ||
        (rc = check_range("beta1", c->adamw.beta1, 0, 0.9999999)) ||
        (rc = check_range("beta2", c->adamw.beta2, 0, 0.9999999)) || (rc = check_range("eps", c->adamw.eps, 0, 1)) ||
        (rc = check_range("neg_eigval", c->model.neg_eigval, 0, 1)))
        return rc;
    if (c->warmup < 0) c->warmup = c->steps / 10;
    c->model.vocab = t->vocab;
    sq_spec *spec = malloc(sizeof *spec);
    if (!spec) return sq_fail(SQ_ENOMEM, "training config: out of memory");
    rc = sq_spec_parse(c->model.spec, c->model.depth, spec);
    if (!rc) c->model.depth = spec->depth;
    free(spec);
    return rc;
}

int sq_train_cfg_json(const sq_train_cfg *c, char *buf, int n)
{
    const sq_model_cfg *m = &c->model;
    int k = snprintf(buf, (size_t)n,
                     "{\"task\": \"%s\", \"spec\": \"%s\", \"depth\": %d, \"d_model\": %d, \"heads\": %d, "
                     "\"vocab\": %d, \"chunk\": %d, \"neg_eigval\": %d, \"steps\": %d, \"batch\": %d, \"accum\": %d, \"len\": %d, "
                     "\"warmup\": %d, \"lr\": %.9g, \"lr_min\": %.9g, \"clip\": %.9g, \"beta1\": %.9g, "
                     "\"beta2\": %.9g, \"eps\": %.9g, \"weight_decay\": %.9g, \"seed\": %llu}\n",
                     c->task, m->spec, m->depth, m->D, m->H, m->vocab, m->chunk, m->neg_eigval, c->steps, c->batch, c->accum, c->len,
                     c->warmup, c->lr, c->lr_min, c->clip, c->adamw.beta1, c->adamw.beta2, c->adamw.eps,
                     c->adamw.weight_decay, (unsigned long long)c->seed);
    if (k < 0 || k >= n) return sq_fail(SQ_EINVAL, "training config: JSON buffer too small");
    return SQ_OK;
}

static int json_str(const sq_json *o, const char *key, char *dst, size_t n)
{
    const sq_json *j = sq_json_get(o, key);
    if (!j) return SQ_OK;
    if (j->kind != SQ_JSON_STRING || strlen(j->str) >= n)
        return sq_fail(SQ_EINVAL, "config: \"%s\" must be a string shorter than %zu characters", key, n);
    snprintf(dst, n, "%s", j->str);
    return SQ_OK;
}

static int json_num(const sq_json *o, const char *key, double *dst)
{
    const sq_json *j = sq_json_get(o, key);
    if (!j) return 0;
    if (j->kind != SQ_JSON_NUMBER) return -1;
    *dst = j->num;
    return 1;
}

static const char *const int_keys[] = {"depth", "d_model", "heads", "vocab",  "chunk",      "steps",
                                       "batch", "accum",   "len",   "warmup", "neg_eigval", NULL};
static const char *const float_keys[] = {"lr", "lr_min", "clip", "beta1", "beta2", "eps", "weight_decay", NULL};

static int *int_field(sq_train_cfg *c, int i)
{
    int *f[] = {&c->model.depth, &c->model.D, &c->model.H, &c->model.vocab, &c->model.chunk, &c->steps,
                &c->batch,       &c->accum,   &c->len,     &c->warmup,      &c->model.neg_eigval};
    return f[i];
}

static float *float_field(sq_train_cfg *c, int i)
{
    float *f[] = {&c->lr, &c->lr_min, &c->clip, &c->adamw.beta1, &c->adamw.beta2, &c->adamw.eps,
                  &c->adamw.weight_decay};
    return f[i];
}

/* Every key of o must be known: a misspelt key is an error, not a silent default. */
static int check_keys(const sq_json *o)
{
    static const char *const others[] = {"task", "spec", "seed", NULL};
    for (const sq_json *j = o->child; j; j = j->next) {
        int known = 0;
        for (int i = 0; int_keys[i] && !known; i++) known = !strcmp(j->key, int_keys[i]);
        for (int i = 0; float_keys[i] && !known; i++) known = !strcmp(j->key, float_keys[i]);
        for (int i = 0; others[i] && !known; i++) known = !strcmp(j->key, others[i]);
        if (!known) return sq_fail(SQ_EINVAL, "config: unknown key \"%s\"", j->key);
    }
    return SQ_OK;
}

int sq_train_cfg_parse(const char *text, sq_train_cfg *c)
{
    sq_json *o = sq_json_parse(text, strlen(text));
    if (!o) return SQ_EINVAL;
    int rc = o->kind == SQ_JSON_OBJECT ? check_keys(o) : sq_fail(SQ_EINVAL, "config: expected a JSON object");
    if (!rc) rc = json_str(o, "task", c->task, sizeof c->task);
    if (!rc) rc = json_str(o, "spec", c->model.spec, sizeof c->model.spec);
    double v;
    for (int i = 0; !rc && int_keys[i]; i++) {
        int got = json_num(o, int_keys[i], &v);
        if (got < 0 || (got && (v != floor(v) || fabs(v) > 2e9)))
            rc = sq_fail(SQ_EINVAL, "config: \"%s\" must be an integer", int_keys[i]);
        else if (got) *int_field(c, i) = (int)v;
    }
    for (int i = 0; !rc && float_keys[i]; i++) {
        int got = json_num(o, float_keys[i], &v);
        if (got < 0) rc = sq_fail(SQ_EINVAL, "config: \"%s\" must be a number", float_keys[i]);
        else if (got) *float_field(c, i) = (float)v;
    }
    if (!rc) {
        int got = json_num(o, "seed", &v);
        if (got < 0 || (got && (v < 0 || v != floor(v) || v > 9007199254740992.0)))
            rc = sq_fail(SQ_EINVAL, "config: \"seed\" must be a non-negative integer");
        else if (got) c->seed = (uint64_t)v;
    }
    sq_json_free(o);
    return rc;
}

/* ---- the training loop ---------------------------------------------------- */

/* The data seed of micro-batch a of step s: a splitmix64 hash of
 * (seed, s, a), so the batches of a step never depend on earlier steps. */
static uint64_t data_seed(uint64_t seed, long s, int a)
{
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + (uint64_t)s * 0xBF58476D1CE4E5B9ull + (uint64_t)a * 0x94D049BB133111EBull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int has_checkpoint(const char *dir)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/config.json", dir);
    return stat(path, &st) == 0;
}

static void format_eta(double s, char *buf, size_t n)
{
    if (!(s >= 0) || s > 359999) snprintf(buf, n, "?");
    else if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)s / 3600, (int)s / 60 % 60);
    else snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
}

typedef struct {
    const sq_train_cfg *c;
    const sq_task *task;
    sq_model *m;
    float *mom1, *mom2; /* AdamW moments, like ps.data, in the backend's memory */
    float *hmom1, *hmom2; /* their host copies for checkpoints (a device backend only) */
    const sq_backend *be; /* where mom1, mom2 live (NULL until allocated) */
    int32_t *x, *y;     /* one micro-batch */
    char config[2048];
} trainer;

/* Loss of step s (mean over its micro-batches) with the gradient in ps.grad.
 * The step computes through the model's backend (the batches are drawn on
 * the host: tr->x, tr->y are what the backend reads as tokens, targets). */
static int forward_backward(trainer *tr, long s, float *loss)
{
    const sq_train_cfg *c = tr->c;
    const sq_backend *be = tr->m->be;
    sq_params *ps = tr->m->wp;
    int rc;
    if ((rc = be->zero(ps->total, ps->grad))) return rc;
    double sum = 0;
    for (int a = 0; a < c->accum; a++) {
        float L = 0;
        if ((rc = sq_task_batch(tr->task, c->len, c->batch, data_seed(c->seed, s, a), tr->x, tr->y)) ||
            (rc = sq_model_fwd(tr->m, tr->x, tr->y, &L)) || (rc = sq_model_bwd(tr->m)))
            return rc;
        sum += L;
    }
    if (c->accum > 1 && (rc = be->div_scalar(ps->total, (float)c->accum, ps->grad))) return rc;
    *loss = (float)(sum / c->accum);
    if (!isfinite(*loss))
        return sq_fail(SQ_EINVAL, "training: the loss became %g at step %ld; lower --lr or raise --warmup "
                                  "(the last saved checkpoint is kept)", *loss, s + 1);
    return SQ_OK;
}

/* Clips the gradient and applies AdamW at step s (0-based); the norm before
 * clipping and the learning rate go to *gnorm and *lr. */
static int optimizer_step(trainer *tr, long s, double *gnorm, float *lr)
{
    const sq_train_cfg *c = tr->c;
    const sq_backend *be = tr->m->be;
    sq_params *ps = tr->m->wp;
    int rc;
    *gnorm = be->clip_global_norm(&ps->grad, &ps->total, 1, c->clip);
    if (!isfinite(*gnorm))
        return sq_fail(SQ_ENUM, "training: the gradient norm became %g at step %ld; lower --lr or raise --warmup "
                                "(the last saved checkpoint is kept)", *gnorm, s + 1);
    *lr = sq_lr_at((int)s, c->warmup, c->steps, c->lr, c->lr_min);
    for (int i = 0; i < ps->n; i++) {
        const sq_param *p = &ps->p[i];
        if ((rc = be->adamw_update(&c->adamw, (int)s + 1, *lr, p->decay, ps->data + p->off, ps->grad + p->off,
                                   tr->mom1 + p->off, tr->mom2 + p->off, p->n)))
            return rc;
    }
    return SQ_OK;
}

/* The checkpoint is written from the host: a device backend's parameters
 * and moments are copied back first. */
static int save(trainer *tr, const sq_train_io *io, long step)
{
    if (!io->ckpt_dir) return SQ_OK;
    const sq_backend *be = tr->m->be;
    size_t n = tr->m->ps.total;
    int rc;
    if (be->host_memory) return sq_ckpt_save(io->ckpt_dir, tr->config, &tr->m->ps, tr->mom1, tr->mom2, step, 0);
    if ((rc = sq_model_to_host(tr->m)) || (rc = be->download(tr->hmom1, tr->mom1, n)) ||
        (rc = be->download(tr->hmom2, tr->mom2, n)))
        return rc;
    return sq_ckpt_save(io->ckpt_dir, tr->config, &tr->m->ps, tr->hmom1, tr->hmom2, step, 0);
}

/* Resumes from io's checkpoint into the host copies, then the backend's. */
static int resume(trainer *tr, const sq_train_io *io, long *step0)
{
    sq_model *m = tr->m;
    const sq_backend *be = m->be;
    size_t n = m->ps.total;
    float *h1 = be->host_memory ? tr->mom1 : tr->hmom1, *h2 = be->host_memory ? tr->mom2 : tr->hmom2;
    uint64_t rng;
    int rc;
    if ((rc = sq_ckpt_load(io->ckpt_dir, tr->config, &m->ps, h1, h2, step0, &rng))) return rc;
    if (*step0 < 0 || *step0 > tr->c->steps)
        return sq_fail(SQ_EIO, "resume: the checkpoint in %s is at step %ld, outside 0..%d", io->ckpt_dir, *step0,
                       tr->c->steps);
    if (!be->host_memory && ((rc = sq_model_to_backend(m)) || (rc = be->upload(tr->mom1, h1, n)) ||
                             (rc = be->upload(tr->mom2, h2, n))))
        return rc;
    if (io->progress) fprintf(io->progress, "resuming %s at step %ld\n", io->ckpt_dir, *step0);
    return SQ_OK;
}

static void report(const sq_train_io *io, const sq_train_cfg *c, long s, float loss, float lr, double gnorm,
                   double t0, long s0)
{
    double el = sq_now() - t0, tok = (double)(s + 1 - s0) * c->batch * c->accum * c->len;
    if (io->metrics) {
        fprintf(io->metrics, "{\"step\": %ld, \"loss\": %.7g, \"lr\": %.6g, \"grad_norm\": %.6g, \"tokens_per_s\": %.1f}\n",
                s + 1, loss, lr, gnorm, tok / el);
        fflush(io->metrics);
    }
    if (io->progress && ((s + 1) % (io->log_every > 0 ? io->log_every : 1) == 0 || s + 1 == c->steps)) {
        char eta[32];
        format_eta(el / (double)(s + 1 - s0) * (double)(c->steps - s - 1), eta, sizeof eta);
        fprintf(io->progress, "step %6ld/%d  loss %.4f  lr %.2e  |g| %.3g  %.1fk tok/s  ETA %s\n", s + 1, c->steps,
                loss, lr, gnorm, tok / el / 1e3, eta);
        fflush(io->progress);
    }
}

static int trainer_setup(trainer *tr, const sq_train_cfg *c, const sq_train_io *io, sq_model *m, long *step0)
{
    int rc;
    memset(tr, 0, sizeof *tr);
    tr->c = c;
    tr->m = m;
    tr->task = sq_task_find(c->task);
    if (!tr->task) return SQ_EINVAL;
    if ((rc = sq_train_cfg_json(c, tr->config, sizeof tr->config)) || (rc = sq_model_build(m, &c->model))) return rc;
    sq_model_init(m, c->seed);
    const sq_backend *be = io->be ? io->be : &sq_backend_cpu;
    if ((rc = sq_model_use_backend(m, be))) return rc;
    size_t n = (size_t)c->batch * c->len, np = m->ps.total;
    tr->be = be;
    tr->mom1 = be->alloc(np);
    tr->mom2 = be->alloc(np);
    tr->x = malloc(n * sizeof(int32_t));
    tr->y = malloc(n * sizeof(int32_t));
    if (!tr->mom1 || !tr->mom2 || !tr->x || !tr->y) return sq_fail(SQ_ENOMEM, "training: out of memory");
    if (!be->host_memory) {
        tr->hmom1 = sq_alloc_floats(np);
        tr->hmom2 = sq_alloc_floats(np);
        if (!tr->hmom1 || !tr->hmom2) return sq_fail(SQ_ENOMEM, "training: out of memory");
    }
    if ((rc = be->zero(np, tr->mom1)) || (rc = be->zero(np, tr->mom2)) || (rc = sq_model_plan(m, c->batch, c->len)))
        return rc;
    *step0 = 0;
    if (io->resume && io->ckpt_dir && has_checkpoint(io->ckpt_dir)) return resume(tr, io, step0);
    return SQ_OK;
}

static void trainer_free(trainer *tr)
{
    if (tr->be) {
        tr->be->release(tr->mom1);
        tr->be->release(tr->mom2);
    }
    sq_free(tr->hmom1);
    sq_free(tr->hmom2);
    free(tr->x);
    free(tr->y);
}

int sq_train_run(const sq_train_cfg *c, const sq_train_io *io, sq_model *m, sq_train_result *res)
{
    trainer tr;
    long s0 = 0, s;
    int rc = trainer_setup(&tr, c, io, m, &s0);
    memset(res, 0, sizeof *res);
    double t0 = sq_now();
    for (s = s0; !rc && s < c->steps; s++) {
        float loss = 0, lr = 0;
        double gnorm = 0;
        if ((rc = forward_backward(&tr, s, &loss)) || (rc = optimizer_step(&tr, s, &gnorm, &lr))) break;
        if (io->losses) io->losses[s] = loss;
        res->final_loss = loss;
        report(io, c, s, loss, lr, gnorm, t0, s0);
        int interrupted = io->interrupt && *io->interrupt;
        if (interrupted || (io->save_every > 0 && (s + 1) % io->save_every == 0 && s + 1 < c->steps))
            rc = save(&tr, io, s + 1);
        if (interrupted) {
            res->interrupted = 1;
            s++;
            break;
        }
    }
    res->steps_done = (int)s;
    res->seconds = sq_now() - t0;
    res->tokens_per_s = res->seconds > 0 ? (double)(s - s0) * c->batch * c->accum * c->len / res->seconds : 0;
    if (!rc && !res->interrupted) rc = save(&tr, io, s);
    trainer_free(&tr);
    return rc;
}

/* ---- evaluation ----------------------------------------------------------- */

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Counts the sequences of a batch whose answer falls in the piece
 * [p0, p0 + Tp) and is predicted right. Reads the logits on the host (the
 * one read of model memory outside the backend; a device backend copies
 * them back first). */
static long score_piece(const sq_model *m, const float *logits, const int32_t *y, int T, int nb, int p0, int Tp)
{
    long right = 0;
    for (int b = 0; b < nb; b++) {
        const int32_t *ys = y + (size_t)b * T;
        int pos = sq_task_answer_pos(ys, T);
        if (pos < p0 || pos >= p0 + Tp) continue;
        right += argmax(logits + ((size_t)b * Tp + pos - p0) * m->cfg.vocab, m->cfg.vocab) == ys[pos];
    }
    return right;
}

int sq_eval_accuracy(sq_model *m, const sq_task *t, int T, int n, uint64_t eval_seed, int max_tokens, double *acc)
{
    int rc;
    if (T < t->min_len) return sq_fail(SQ_EINVAL, "eval: task %s needs length >= %d, got %d", t->name, t->min_len, T);
    if (n < 1) return sq_fail(SQ_EINVAL, "eval: the evaluation set needs at least 1 sequence, got %d", n);
    /* pieces of P positions with the state carried: memory set by P, not T */
    int P = T < SQ_EVAL_PIECE ? T : SQ_EVAL_PIECE, bsz = max_tokens / P;
    bsz = bsz < 1 ? 1 : bsz > n ? n : bsz;
    int32_t *x = malloc((size_t)n * T * sizeof(int32_t)), *y = malloc((size_t)n * T * sizeof(int32_t));
    int32_t *px = malloc((size_t)bsz * P * sizeof(int32_t));
    float *state = NULL, *hlogits = NULL; /* hlogits: the logits copied to the host (device backends) */
    size_t ns = 0;
    if (!x || !y || !px) rc = sq_fail(SQ_ENOMEM, "eval: out of memory for %d sequences of length %d", n, T);
    else rc = sq_task_batch(t, T, n, eval_seed, x, y);
    if (!rc) rc = sq_model_plan(m, bsz, P);
    if (!rc) {
        ns = sq_model_state_floats(m, T);
        state = m->be->alloc(ns);
        if (!state) rc = sq_fail(SQ_ENOMEM, "eval: out of memory for the carried state (%zu floats)", ns);
    }
    size_t nl = (size_t)bsz * P * m->cfg.vocab;
    if (!rc && !m->be->host_memory && !(hlogits = sq_alloc_floats(nl)))
        rc = sq_fail(SQ_ENOMEM, "eval: out of memory for the logits");
    long right = 0;
    for (int i0 = 0; !rc && i0 < n; i0 += bsz) {
        int nb = n - i0 < bsz ? n - i0 : bsz; /* a last partial batch repeats its first sequence */
        rc = m->be->zero(ns, state);
        for (int p0 = 0; !rc && p0 < T; p0 += P) {
            int Tp = T - p0 < P ? T - p0 : P;
            for (int b = 0; b < bsz; b++)
                memcpy(px + (size_t)b * Tp, x + (size_t)(i0 + (b < nb ? b : 0)) * T + p0, (size_t)Tp * sizeof(int32_t));
            if ((rc = sq_model_fwd_carry(m, px, Tp, p0, state, T))) break;
            const float *logits = m->logits;
            if (hlogits) {
                if ((rc = m->be->download(hlogits, m->logits, (size_t)bsz * Tp * m->cfg.vocab))) break;
                logits = hlogits;
            }
            right += score_piece(m, logits, y + (size_t)i0 * T, T, nb, p0, Tp);
        }
    }
    *acc = (double)right / n;
    free(x);
    free(y);
    free(px);
    m->be->release(state);
    sq_free(hlogits);
    return rc;
}

int sq_train_load_model(const char *dir, sq_train_cfg *c, sq_model *m)
{
    int rc;
    memset(m, 0, sizeof *m);
    char *text = sq_ckpt_read_config(dir);
    if (!text) return SQ_EIO;
    *c = sq_train_defaults();
    if ((rc = sq_train_cfg_parse(text, c)) || (rc = sq_train_validate(c)) || (rc = sq_model_build(m, &c->model)))
        goto done;
    long step;
    uint64_t rng;
    rc = sq_ckpt_load(dir, text, &m->ps, NULL, NULL, &step, &rng);
done:
    free(text);
    return rc;
}
