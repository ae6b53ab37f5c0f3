/* Causal softmax attention: tiled float32 vs the float64 softmax, finite-
 * difference gradients of q, k, v and the cached keys and values, the KV
 * cache carried over pieces and steps, large scores, bad arguments. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../src/ops/attn.h"
#include "harness.h"
#include "ref.h"

static size_t nk(sq_dims d) { return (size_t)d.B * d.T * d.H * d.K; }
static size_t nv(sq_dims d) { return (size_t)d.B * d.T * d.H * d.V; }

typedef struct {
    sq_dims d;
    int P;
    float *q, *k, *v, *kc, *vc; /* cache [B,H,P,·] (cap = P) */
} acase;

static acase make_case(sq_dims d, int P, float scale)
{
    acase c = {d, P, th_randn(nk(d), scale), th_randn(nk(d), scale), th_randn(nv(d), 1), NULL, NULL};
    if (P > 0) {
        c.kc = th_randn((size_t)d.B * d.H * P * d.K, scale);
        c.vc = th_randn((size_t)d.B * d.H * P * d.V, 1);
    }
    return c;
}

static void free_case(acase *c)
{
    sq_free(c->q); sq_free(c->k); sq_free(c->v); sq_free(c->kc); sq_free(c->vc);
}

static void ref_run(const acase *c, const double *q, const double *k, const double *v, const double *kc,
                    const double *vc, double *out)
{
    ref_attn_fwd(c->d, q, k, v, c->P, kc, vc, out);
}

static void check_fwd(sq_dims d, int L, int P, float scale)
{
    acase c = make_case(d, P, scale);
    sq_attn_opts o = {L};
    sq_attn_cache c0 = {c.kc, c.vc, P, P};
    float *out = sq_alloc_floats(nv(d));
    th_poison(out, nv(d));
    int rc = sq_attn_fwd(d, &o, c.q, c.k, c.v, P ? &c0 : NULL, out, NULL, NULL);
    double *q = th_to_double(c.q, nk(d)), *k = th_to_double(c.k, nk(d)), *v = th_to_double(c.v, nv(d));
    double *kc = P ? th_to_double(c.kc, (size_t)d.B * d.H * P * d.K) : NULL;
    double *vc = P ? th_to_double(c.vc, (size_t)d.B * d.H * P * d.V) : NULL;
    double *ro = sq_alloc_doubles(nv(d));
    ref_run(&c, q, k, v, kc, vc, ro);
    char what[128];
    snprintf(what, sizeof what, "attn B%d T%d H%d K%d V%d tile%d P%d scale%g", d.B, d.T, d.H, d.K, d.V, L, P, scale);
    if (th_expect_ok(what, rc)) th_close(what, th_rel_err(out, ro, nv(d)), 1e-4);
    sq_free(out); sq_free(q); sq_free(k); sq_free(v); sq_free(kc); sq_free(vc); sq_free(ro);
    free_case(&c);
}

typedef struct {
    const acase *c;
    double *q, *k, *v, *kc, *vc, *W, *out;
} fdctx;

static double fd_loss(void *p)
{
    fdctx *f = p;
    ref_run(f->c, f->q, f->k, f->v, f->kc, f->vc, f->out);
    return th_dot(f->W, f->out, nv(f->c->d));
}

static void check_grads(sq_dims d, int L, int P)
{
    acase c = make_case(d, P, 1);
    size_t nck = (size_t)d.B * d.H * P * d.K, ncv = (size_t)d.B * d.H * P * d.V;
    float *W = th_randn(nv(d), 1);
    fdctx f = {&c, th_to_double(c.q, nk(d)), th_to_double(c.k, nk(d)), th_to_double(c.v, nv(d)),
               P ? th_to_double(c.kc, nck) : NULL, P ? th_to_double(c.vc, ncv) : NULL, th_to_double(W, nv(d)),
               sq_alloc_doubles(nv(d))};
    float *dq = sq_alloc_floats(nk(d)), *dk = sq_alloc_floats(nk(d)), *dv = sq_alloc_floats(nv(d));
    float *dkc = sq_alloc_floats(nck + 1), *dvc = sq_alloc_floats(ncv + 1);
    th_poison(dq, nk(d)); th_poison(dk, nk(d)); th_poison(dv, nv(d));
    th_poison(dkc, nck); th_poison(dvc, ncv);
    sq_attn_opts o = {L};
    sq_attn_cache c0 = {c.kc, c.vc, P, P}, dc0 = {dkc, dvc, 0, P};
    char what[128];
    snprintf(what, sizeof what, "attn bwd T%d tile%d P%d", d.T, L, P);
    if (th_expect_ok(what, sq_attn_bwd(d, &o, c.q, c.k, c.v, P ? &c0 : NULL, W, dq, dk, dv, P ? &dc0 : NULL, NULL))) {
        struct { const char *n; double *x; size_t len; float *g; } gs[] = {
            {"q", f.q, nk(d), dq}, {"k", f.k, nk(d), dk}, {"v", f.v, nv(d), dv}, {"cache k", f.kc, nck, dkc},
            {"cache v", f.vc, ncv, dvc}};
        for (int i = 0; i < (P ? 5 : 3); i++) {
            double *fd = sq_alloc_doubles(gs[i].len);
            th_fd_grad(fd_loss, &f, gs[i].x, gs[i].len, 1e-6, fd);
            snprintf(what, sizeof what, "attn T%d tile%d P%d: grad %s", d.T, L, P, gs[i].n);
            th_close(what, th_rel_err(gs[i].g, fd, gs[i].len), 2e-4);
            sq_free(fd);
        }
    }
    sq_free(W); sq_free(f.q); sq_free(f.k); sq_free(f.v); sq_free(f.kc); sq_free(f.vc); sq_free(f.W); sq_free(f.out);
    sq_free(dq); sq_free(dk); sq_free(dv); sq_free(dkc); sq_free(dvc);
    free_case(&c);
}

/* Time slices of a [B,T,H,w] tensor. */
static float *slice_t(const float *x, sq_dims d, int w, int t0, int n) { return th_slice_time(x, d, d.H * w, t0, n); }
static void put_t(float *x, sq_dims d, int w, int t0, int n, const float *y) { th_put_time(x, d, d.H * w, t0, n, y); }

/* A cache of capacity cap holding c's P cached positions. */
static sq_attn_cache cache_copy(const acase *c, int cap)
{
    sq_dims d = c->d;
    sq_attn_cache r = {sq_alloc_floats((size_t)d.B * d.H * cap * d.K), sq_alloc_floats((size_t)d.B * d.H * cap * d.V),
                       c->P, cap};
    for (int bh = 0; bh < d.B * d.H && c->P > 0; bh++) {
        memcpy(r.k + (size_t)bh * cap * d.K, c->kc + (size_t)bh * c->P * d.K, (size_t)c->P * d.K * sizeof(float));
        memcpy(r.v + (size_t)bh * cap * d.V, c->vc + (size_t)bh * c->P * d.V, (size_t)c->P * d.V * sizeof(float));
    }
    return r;
}

static void test_carry(sq_dims d, int L, int P, int T1)
{
    acase c = make_case(d, P, 1);
    sq_attn_opts o = {L};
    int cap = P + d.T + 3;
    sq_attn_cache whole = cache_copy(&c, cap), pcs = cache_copy(&c, cap), steps = cache_copy(&c, cap);
    float *o_all = sq_alloc_floats(nv(d)), *o_pc = sq_alloc_floats(nv(d)), *o_st = sq_alloc_floats(nv(d));
    int rc = sq_attn_fwd(d, &o, c.q, c.k, c.v, &whole, o_all, &whole, NULL);
    int lens[2] = {T1, d.T - T1};
    for (int p = 0, t0 = 0; p < 2; t0 += lens[p], p++) {
        sq_dims dp = d;
        dp.T = lens[p];
        float *q = slice_t(c.q, d, d.K, t0, lens[p]), *k = slice_t(c.k, d, d.K, t0, lens[p]),
              *v = slice_t(c.v, d, d.V, t0, lens[p]), *op = sq_alloc_floats((size_t)d.B * lens[p] * d.H * d.V);
        rc |= sq_attn_fwd(dp, &o, q, k, v, &pcs, op, &pcs, NULL);
        put_t(o_pc, d, d.V, t0, lens[p], op);
        sq_free(q); sq_free(k); sq_free(v); sq_free(op);
    }
    for (int t = 0; t < d.T; t++) {
        sq_dims d1 = d;
        d1.T = 1;
        float *q = slice_t(c.q, d, d.K, t, 1), *k = slice_t(c.k, d, d.K, t, 1), *v = slice_t(c.v, d, d.V, t, 1),
              *op = sq_alloc_floats((size_t)d.B * d.H * d.V);
        rc |= sq_attn_step(d1, &o, q, k, v, &steps, op);
        put_t(o_st, d, d.V, t, 1, op);
        sq_free(q); sq_free(k); sq_free(v); sq_free(op);
    }
    char what[128];
    th_expect_ok("attn carry runs", rc);
    snprintf(what, sizeof what, "attn P%d: fwd(%d) == fwd(%d)+fwd(%d) with the cache", P, d.T, T1, d.T - T1);
    th_close(what, th_rel_err_ff(o_pc, o_all, nv(d)), 1e-5);
    snprintf(what, sizeof what, "attn P%d: %d steps == fwd", P, d.T);
    th_close(what, th_rel_err_ff(o_st, o_all, nv(d)), 1e-5);
    int same = whole.len == P + d.T && pcs.len == whole.len && steps.len == whole.len;
    for (int bh = 0; bh < d.B * d.H && same; bh++) {
        size_t at = (size_t)bh * cap, nkv = (size_t)whole.len;
        same &= !memcmp(whole.k + at * d.K, pcs.k + at * d.K, nkv * d.K * sizeof(float)) &&
                !memcmp(whole.k + at * d.K, steps.k + at * d.K, nkv * d.K * sizeof(float)) &&
                !memcmp(whole.v + at * d.V, steps.v + at * d.V, nkv * d.V * sizeof(float));
    }
    th_check(same, "attn caches agree after whole / pieces / steps (len %d)", whole.len);
    sq_free(whole.k); sq_free(whole.v); sq_free(pcs.k); sq_free(pcs.v); sq_free(steps.k); sq_free(steps.v);
    sq_free(o_all); sq_free(o_pc); sq_free(o_st);
    free_case(&c);
}

static void bad_args(void)
{
    sq_dims d = {1, 4, 1, 2, 2}, dz = {1, 4, 1, 2, 0}, d1 = {1, 1, 1, 2, 2};
    float buf[256] = {0};
    sq_attn_opts o = sq_attn_defaults(), z = {0};
    sq_attn_cache small = {buf, buf, 2, 3}, bad = {buf, buf, 5, 3}, full = {buf, buf, 3, 3}, nul = {NULL, buf, 2, 3};
    th_expect_error("fwd: NULL q", sq_attn_fwd(d, &o, NULL, buf, buf, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: V = 0", sq_attn_fwd(dz, &o, buf, buf, buf, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: tile 0", sq_attn_fwd(d, &z, buf, buf, buf, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: cache1 cap too small", sq_attn_fwd(d, &o, buf, buf, buf, &small, buf, &small, NULL), SQ_EINVAL);
    th_expect_error("fwd: len > cap", sq_attn_fwd(d, &o, buf, buf, buf, &bad, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: cache with NULL keys", sq_attn_fwd(d, &o, buf, buf, buf, &nul, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("bwd: NULL dv", sq_attn_bwd(d, &o, buf, buf, buf, NULL, buf, buf, buf, NULL, NULL, NULL), SQ_EINVAL);
    th_expect_error("step: T = 4", sq_attn_step(d, &o, buf, buf, buf, &small, buf), SQ_EINVAL);
    th_expect_error("step: full cache", sq_attn_step(d1, &o, buf, buf, buf, &full, buf), SQ_EINVAL);
    th_expect_error("step: NULL cache", sq_attn_step(d1, &o, buf, buf, buf, NULL, buf), SQ_EINVAL);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "attn");
    check_fwd((sq_dims){2, 13, 3, 4, 6}, 4, 0, 1);
    check_fwd((sq_dims){2, 13, 3, 4, 6}, 5, 7, 1);
    check_fwd((sq_dims){1, 1, 1, 5, 3}, 64, 0, 1);
    check_fwd((sq_dims){1, 1, 1, 5, 3}, 64, 9, 1);
    check_fwd((sq_dims){1, 9, 2, 3, 5}, 1, 3, 1);
    check_fwd((sq_dims){2, 100, 1, 16, 7}, 64, 0, 1);
    check_fwd((sq_dims){1, 4096, 1, 16, 16}, 64, 0, 1);
    check_fwd((sq_dims){1, 300, 2, 8, 8}, 32, 17, 20); /* large scores: q, k ×20 */
    check_grads((sq_dims){1, 7, 2, 3, 4}, 1, 0);
    check_grads((sq_dims){1, 7, 2, 3, 4}, 3, 0);
    check_grads((sq_dims){1, 7, 2, 3, 4}, 16, 5);
    check_grads((sq_dims){2, 10, 1, 4, 2}, 4, 6);
    test_carry((sq_dims){2, 29, 2, 4, 5}, 6, 0, 11);
    test_carry((sq_dims){1, 21, 3, 4, 4}, 5, 8, 7);
    bad_args();
    return th_finish();
}
