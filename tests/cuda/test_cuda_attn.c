/* Causal softmax attention on the GPU against the CPU operator (its
 * reference), on fresh random inputs with NaN-poisoned outputs: the output
 * and cache1, the gradients of q, k, v and of cache0, with and without an
 * earlier cache (in place or into another cache), odd shapes, large scores,
 * the decode step chained over a sequence, and refusals. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cuda_util.h"

typedef struct {
    sq_dims d;
    int P;         /* cache0 positions */
    int inplace;   /* cache1 == cache0 */
    float scale;   /* std of q and k */
    int bwd;       /* also the backward */
} acase;

static size_t nk(sq_dims d) { return (size_t)d.B * d.T * d.H * d.K; }
static size_t nv(sq_dims d) { return (size_t)d.B * d.T * d.H * d.V; }

/* The first len positions of each head of a cache [B,H,cap,C] as [B,H,len,C]. */
static float *cache_rows(const float *c, sq_dims d, int cap, int len, int C)
{
    float *r = sq_alloc_floats((size_t)d.B * d.H * len * C + 1);
    for (int bh = 0; bh < d.B * d.H; bh++)
        memcpy(r + (size_t)bh * len * C, c + (size_t)bh * cap * C, (size_t)len * C * sizeof(float));
    return r;
}

/* ‖gpu − cpu‖/‖cpu‖ over the first len positions of two caches of capacity cap. */
static double cache_err(const float *dev, const float *host, sq_dims d, int cap, int len, int C)
{
    size_t n = (size_t)d.B * d.H * cap * C, m = (size_t)d.B * d.H * len * C;
    float *h = sq_alloc_floats(n);
    th_expect_ok("download", sq_cuda_download(h, dev, n));
    float *a = cache_rows(h, d, cap, len, C), *b = cache_rows(host, d, cap, len, C);
    double e = th_all_finite(a, m) ? th_rel_err_ff(a, b, m) : INFINITY;
    sq_free(h), sq_free(a), sq_free(b);
    return e;
}

/* max |x| of a device array (INFINITY when not finite). */
static double max_abs(const float *dev, size_t n)
{
    float *h = sq_alloc_floats(n);
    th_expect_ok("download", sq_cuda_download(h, dev, n));
    double m = 0;
    for (size_t i = 0; i < n; i++) m = isfinite(h[i]) ? fmax(m, fabs(h[i])) : INFINITY;
    sq_free(h);
    return m;
}

static void check_case(const acase *c)
{
    sq_dims d = c->d;
    int P = c->P, cap = P + d.T + 2;
    size_t nck = (size_t)d.B * d.H * cap * d.K, ncv = (size_t)d.B * d.H * cap * d.V;
    size_t npk = (size_t)d.B * d.H * P * d.K, npv = (size_t)d.B * d.H * P * d.V;
    float *q = th_randn(nk(d), c->scale), *k = th_randn(nk(d), c->scale), *v = th_randn(nv(d), 1);
    float *kc = th_randn(nck, c->scale), *vc = th_randn(ncv, 1), *dout = th_randn(nv(d), 1);
    float *out = sq_alloc_floats(nv(d)), *k1 = sq_alloc_floats(nck), *v1 = sq_alloc_floats(ncv);
    memcpy(k1, kc, nck * sizeof(float)); /* cache1's rows past P are the CPU's to write */
    memcpy(v1, vc, ncv * sizeof(float));
    sq_attn_cache c0 = {kc, vc, P, cap}, c1 = {k1, v1, c->inplace ? P : 0, cap};
    th_expect_ok("cpu attn fwd", sq_attn_fwd(d, NULL, q, k, v, c->inplace ? &c1 : P ? &c0 : NULL, out, &c1, NULL));

    float *gq = to_device(q, nk(d)), *gk = to_device(k, nk(d)), *gv = to_device(v, nv(d)), *gkc = to_device(kc, nck),
          *gvc = to_device(vc, ncv), *gdo = to_device(dout, nv(d)), *gout = device_poisoned(nv(d));
    float *gk1 = c->inplace ? gkc : device_poisoned(nck), *gv1 = c->inplace ? gvc : device_poisoned(ncv);
    sq_attn_cache g0 = {gkc, gvc, P, cap}, g1 = {gk1, gv1, c->inplace ? P : 0, cap};
    sq_attn_opts o = {64};
    th_expect_ok("cuda attn fwd", sq_cuda_attn_fwd(d, &o, gq, gk, gv, c->inplace ? &g1 : P ? &g0 : NULL, gout, &g1, NULL));
    th_expect_ok("sync", sq_cuda_sync());
    char what[200];
    snprintf(what, sizeof what, "attn B%d T%d H%d K%d V%d P%d%s scale %g: output", d.B, d.T, d.H, d.K, d.V, P,
             c->inplace ? " in place" : "", c->scale);
    th_close(what, err_vs(gout, out, nv(d)), 1e-4);
    snprintf(what, sizeof what, "attn B%d T%d H%d K%d V%d P%d: cache1 keys and values", d.B, d.T, d.H, d.K, d.V, P);
    th_close(what, fmax(cache_err(gk1, k1, d, cap, P + d.T, d.K), cache_err(gv1, v1, d, cap, P + d.T, d.V)), 1e-4);
    th_check(g1.len == P + d.T, "attn: cache1 len %d (want %d)", g1.len, P + d.T);

    if (c->bwd) {
        /* cache0 as before the forward (an in-place append leaves its first P rows alone) */
        const size_t osz[5] = {nk(d), nk(d), nv(d), npk, npv};
        float *ref[5], *gout5[5];
        for (int i = 0; i < 5; i++) ref[i] = sq_alloc_floats(osz[i] + 1), gout5[i] = device_poisoned(osz[i] + 1);
        sq_attn_cache h0 = {kc, vc, P, cap}, dh0 = {ref[3], ref[4], 0, P}, dg0 = {gout5[3], gout5[4], 0, P};
        g0 = (sq_attn_cache){gkc, gvc, P, cap};
        th_expect_ok("cpu attn bwd", sq_attn_bwd(d, NULL, q, k, v, P ? &h0 : NULL, dout, ref[0], ref[1], ref[2],
                                                 P ? &dh0 : NULL, NULL));
        th_expect_ok("cuda attn bwd", sq_cuda_attn_bwd(d, &o, gq, gk, gv, P ? &g0 : NULL, gdo, gout5[0], gout5[1],
                                                       gout5[2], P ? &dg0 : NULL, NULL));
        th_expect_ok("sync", sq_cuda_sync());
        static const char *const names[5] = {"dq", "dk", "dv", "dcache0 k", "dcache0 v"};
        for (int i = 0; i < (P ? 5 : 3); i++) {
            snprintf(what, sizeof what, "attn bwd B%d T%d H%d K%d V%d P%d scale %g: %s", d.B, d.T, d.H, d.K, d.V, P,
                     c->scale, names[i]);
            /* one query, one key: dq = dk = 0 exactly, a relative error of rounding noise means nothing */
            if (d.T == 1 && P == 0 && i < 2) th_close(what, max_abs(gout5[i], osz[i]), 1e-5);
            else th_close(what, err_vs(gout5[i], ref[i], osz[i]), 1e-4);
        }
        if (P) th_check(dg0.len == P, "attn bwd: dcache0 len %d (want %d)", dg0.len, P);
        if (P) { /* again without dcache0 (its tiles skipped), in a given, poisoned workspace */
            float *work = device_poisoned(sq_cuda_attn_work_floats(d, &o));
            for (int i = 0; i < 3; i++) th_expect_ok("poison", sq_cuda_fill(gout5[i], NAN, osz[i]));
            th_expect_ok("cuda attn bwd (work, no dcache0)", sq_cuda_attn_bwd(d, &o, gq, gk, gv, &g0, gdo, gout5[0],
                                                                             gout5[1], gout5[2], NULL, work));
            double e = 0;
            for (int i = 0; i < 3; i++) e = fmax(e, err_vs(gout5[i], ref[i], osz[i]));
            snprintf(what, sizeof what, "attn bwd B%d T%d P%d, no dcache0, given work: dq, dk, dv", d.B, d.T, P);
            th_close(what, e, 1e-4);
            sq_cuda_free(work);
        }
        for (int i = 0; i < 5; i++) sq_free(ref[i]), sq_cuda_free(gout5[i]);
    }
    float *dev[] = {gq, gk, gv, gkc, gvc, gdo, gout};
    for (int i = 0; i < 7; i++) sq_cuda_free(dev[i]);
    if (!c->inplace) sq_cuda_free(gk1), sq_cuda_free(gv1);
    float *host[] = {q, k, v, kc, vc, dout, out, k1, v1};
    for (int i = 0; i < 9; i++) sq_free(host[i]);
}

/* T tokens one step at a time on the GPU after a cache of P positions,
 * against the CPU's forward over the T tokens, the CPU's steps and the
 * GPU's forward: every output, and the final caches. */
static void check_steps(sq_dims d, int P)
{
    int T = d.T, cap = P + T + 1;
    sq_dims one = d;
    one.T = 1;
    size_t nck = (size_t)d.B * d.H * cap * d.K, ncv = (size_t)d.B * d.H * cap * d.V, per = (size_t)d.B * d.H;
    float *q = th_randn(nk(d), 1), *k = th_randn(nk(d), 1), *v = th_randn(nv(d), 1);
    float *kc = th_randn(nck, 1), *vc = th_randn(ncv, 1);
    float *ref = sq_alloc_floats(nv(d)), *cpu = sq_alloc_floats(nv(d)), *got = sq_alloc_floats(nv(d));
    sq_attn_cache c0 = {kc, vc, P, cap};
    th_expect_ok("cpu attn fwd", sq_attn_fwd(d, NULL, q, k, v, P ? &c0 : NULL, ref, NULL, NULL));
    float *gkc = to_device(kc, nck), *gvc = to_device(vc, ncv), *gq = to_device(q, nk(d)), *gk = to_device(k, nk(d)),
          *gv = to_device(v, nv(d)), *gfwd = device_poisoned(nv(d));
    sq_attn_cache g0 = {gkc, gvc, P, cap};
    th_expect_ok("cuda attn fwd", sq_cuda_attn_fwd(d, NULL, gq, gk, gv, P ? &g0 : NULL, gfwd, NULL, NULL));
    float *tq = device_poisoned(per * d.K), *tk = device_poisoned(per * d.K), *tv = device_poisoned(per * d.V),
          *tout = device_poisoned(per * d.V), *yt = sq_alloc_floats(per * d.V);
    sq_attn_cache hc = c0;
    for (int t = 0; t < T; t++) {
        float *sq = th_slice_time(q, d, d.H * d.K, t, 1), *sk = th_slice_time(k, d, d.H * d.K, t, 1),
              *sv = th_slice_time(v, d, d.H * d.V, t, 1);
        th_expect_ok("cpu attn step", sq_attn_step(one, NULL, sq, sk, sv, &hc, yt));
        th_put_time(cpu, d, d.H * d.V, t, 1, yt);
        th_expect_ok("upload", sq_cuda_upload(tq, sq, per * d.K));
        th_expect_ok("upload", sq_cuda_upload(tk, sk, per * d.K));
        th_expect_ok("upload", sq_cuda_upload(tv, sv, per * d.V));
        sq_free(sq), sq_free(sk), sq_free(sv);
        if (!th_expect_ok("cuda attn step", sq_cuda_attn_step(one, NULL, tq, tk, tv, &g0, tout))) break;
        th_expect_ok("download", sq_cuda_download(yt, tout, per * d.V));
        th_put_time(got, d, d.H * d.V, t, 1, yt);
    }
    char what[200];
    double fin = th_all_finite(got, nv(d));
    snprintf(what, sizeof what, "attn step x%d B%d H%d K%d V%d P%d: outputs vs the CPU forward", T, d.B, d.H, d.K,
             d.V, P);
    th_close(what, fin ? th_rel_err_ff(got, ref, nv(d)) : INFINITY, 1e-4);
    snprintf(what, sizeof what, "attn step x%d P%d: outputs vs the CPU steps", T, P);
    th_close(what, fin ? th_rel_err_ff(got, cpu, nv(d)) : INFINITY, 1e-4);
    snprintf(what, sizeof what, "attn step x%d P%d: the GPU forward vs the CPU forward", T, P);
    th_close(what, err_vs(gfwd, ref, nv(d)), 1e-4);
    snprintf(what, sizeof what, "attn step x%d P%d: final cache", T, P);
    th_close(what, fmax(cache_err(gkc, kc, d, cap, P + T, d.K), cache_err(gvc, vc, d, cap, P + T, d.V)), 1e-6);
    th_check(g0.len == P + T && hc.len == P + T, "attn step: cache len %d (want %d)", g0.len, P + T);
    float *dev[] = {gkc, gvc, gq, gk, gv, gfwd, tq, tk, tv, tout};
    for (int i = 0; i < 10; i++) sq_cuda_free(dev[i]);
    float *host[] = {q, k, v, kc, vc, ref, cpu, got, yt};
    for (int i = 0; i < 9; i++) sq_free(host[i]);
}

static void check_refusals(void)
{
    sq_dims d = {1, 8, 1, 4, 4}, d0 = {1, 0, 1, 4, 4}, d1 = {1, 1, 1, 4, 4}, big = {1, 8, 1, 129, 4};
    float *x = NULL;
    th_expect_ok("malloc", sq_cuda_malloc(&x, 256));
    sq_attn_opts z = {0};
    sq_attn_cache small = {x, x, 2, 9}, full = {x, x, 3, 3}, bad = {x, x, 5, 3}, dsmall = {x, x, 0, 1};
    th_expect_error("attn fwd: NULL q", sq_cuda_attn_fwd(d, NULL, NULL, x, x, NULL, x, NULL, NULL), SQ_EINVAL);
    th_expect_error("attn fwd: NULL out", sq_cuda_attn_fwd(d, NULL, x, x, x, NULL, NULL, NULL, NULL), SQ_EINVAL);
    th_expect_error("attn fwd: T = 0", sq_cuda_attn_fwd(d0, NULL, x, x, x, NULL, x, NULL, NULL), SQ_EINVAL);
    th_expect_error("attn fwd: chunk 0", sq_cuda_attn_fwd(d, &z, x, x, x, NULL, x, NULL, NULL), SQ_EINVAL);
    th_expect_error("attn fwd: K = 129", sq_cuda_attn_fwd(big, NULL, x, x, x, NULL, x, NULL, NULL), SQ_EINVAL);
    th_expect_error("attn fwd: cache1 cap too small", sq_cuda_attn_fwd(d, NULL, x, x, x, &small, x, &small, NULL),
                    SQ_EINVAL);
    th_expect_error("attn fwd: len > cap", sq_cuda_attn_fwd(d, NULL, x, x, x, &bad, x, NULL, NULL), SQ_EINVAL);
    th_expect_error("attn bwd: NULL dq", sq_cuda_attn_bwd(d, NULL, x, x, x, NULL, x, NULL, x, x, NULL, NULL),
                    SQ_EINVAL);
    th_expect_error("attn bwd: dcache0 cap too small",
                    sq_cuda_attn_bwd(d, NULL, x, x, x, &small, x, x, x, x, &dsmall, NULL), SQ_EINVAL);
    th_expect_error("attn step: T = 8", sq_cuda_attn_step(d, NULL, x, x, x, &small, x), SQ_EINVAL);
    th_expect_error("attn step: full cache", sq_cuda_attn_step(d1, NULL, x, x, x, &full, x), SQ_EINVAL);
    th_expect_error("attn step: NULL cache", sq_cuda_attn_step(d1, NULL, x, x, x, NULL, x), SQ_EINVAL);
    th_check(small.len == 2 && full.len == 3, "attn: refused calls leave the caches alone");
    sq_cuda_free(x);
}

/* The bf16 attention (tensor cores) against the CPU operator on the same
 * bf16 values: q, k, v, dout and the cache rounded to bf16 on the host, so
 * the difference is the GPU's internal rounding (P and dS to bf16) and the
 * outputs' bf16 rounding; bound 1e-2 as the issue sets. The cache stays
 * float32: cache1 must hold exactly cache0's rows and the widened k, v. */
static sq_bf16 *to_device_bf16_at(const float *h, size_t n, int off, sq_bf16 **base)
{
    float *pad = sq_alloc_floats(n + off);
    for (int i = 0; i < off; i++) pad[i] = 0;
    memcpy(pad + off, h, n * sizeof(float));
    *base = to_device_bf16(pad, n + off);
    sq_free(pad);
    return *base + off;
}

static void check_bf16(const acase *c, int off)
{
    sq_dims d = c->d;
    int P = c->P, cap = P + d.T + 2;
    size_t nck = (size_t)d.B * d.H * cap * d.K, ncv = (size_t)d.B * d.H * cap * d.V;
    size_t npk = (size_t)d.B * d.H * P * d.K, npv = (size_t)d.B * d.H * P * d.V;
    float *q = th_randn(nk(d), c->scale), *k = th_randn(nk(d), c->scale), *v = th_randn(nv(d), 1);
    float *kc = th_randn(nck, c->scale), *vc = th_randn(ncv, 1), *dout = th_randn(nv(d), 1);
    float *host[] = {q, k, v, kc, vc, dout};
    const size_t hsz[] = {nk(d), nk(d), nv(d), nck, ncv, nv(d)};
    for (int i = 0; i < 6; i++) bf16_round_all(host[i], hsz[i]);
    float *out = sq_alloc_floats(nv(d)), *k1 = sq_alloc_floats(nck), *v1 = sq_alloc_floats(ncv);
    memcpy(k1, kc, nck * sizeof(float));
    memcpy(v1, vc, ncv * sizeof(float));
    sq_attn_cache c0 = {kc, vc, P, cap}, c1 = {k1, v1, 0, cap};
    th_expect_ok("cpu attn fwd", sq_attn_fwd(d, NULL, q, k, v, P ? &c0 : NULL, out, &c1, NULL));

    /* off > 0: q, k, v and dout start off elements past a 16-byte boundary (the element-wise loads) */
    sq_bf16 *bq, *bk, *bv, *bdo;
    sq_bf16 *gq = to_device_bf16_at(q, nk(d), off, &bq), *gk = to_device_bf16_at(k, nk(d), off, &bk),
            *gv = to_device_bf16_at(v, nv(d), off, &bv), *gdo = to_device_bf16_at(dout, nv(d), off, &bdo),
            *gout = device_poisoned_bf16(nv(d));
    float *gkc = to_device(kc, nck), *gvc = to_device(vc, ncv), *gk1 = device_poisoned(nck), *gv1 = device_poisoned(ncv);
    sq_attn_cache g0 = {gkc, gvc, P, cap}, g1 = {gk1, gv1, 0, cap};
    th_expect_ok("cuda attn fwd bf16", sq_cuda_attn_fwd_bf16(d, NULL, gq, gk, gv, P ? &g0 : NULL, gout, &g1, NULL));
    th_expect_ok("sync", sq_cuda_sync());
    char what[200];
    snprintf(what, sizeof what, "attn bf16 B%d T%d H%d K%d V%d P%d scale %g%s: output", d.B, d.T, d.H, d.K, d.V, P,
             c->scale, off ? " unaligned" : "");
    th_close(what, err_vs_bf16(gout, out, nv(d)), 1e-2);
    snprintf(what, sizeof what, "attn bf16 B%d T%d P%d: cache1 keys and values (exact)", d.B, d.T, P);
    th_close(what, fmax(cache_err(gk1, k1, d, cap, P + d.T, d.K), cache_err(gv1, v1, d, cap, P + d.T, d.V)), 1e-7);
    th_check(g1.len == P + d.T, "attn bf16: cache1 len %d (want %d)", g1.len, P + d.T);

    if (c->bwd) {
        float *ref[5];
        const size_t osz[5] = {nk(d), nk(d), nv(d), npk, npv};
        for (int i = 0; i < 5; i++) ref[i] = sq_alloc_floats(osz[i] + 1);
        sq_attn_cache dh0 = {ref[3], ref[4], 0, P};
        th_expect_ok("cpu attn bwd", sq_attn_bwd(d, NULL, q, k, v, P ? &c0 : NULL, dout, ref[0], ref[1], ref[2],
                                                 P ? &dh0 : NULL, NULL));
        sq_bf16 *gd[3];
        for (int i = 0; i < 3; i++) gd[i] = device_poisoned_bf16(osz[i]);
        float *gdk0 = device_poisoned(npk + 1), *gdv0 = device_poisoned(npv + 1);
        float *work = device_poisoned(sq_cuda_attn_bf16_work_floats(d, NULL));
        sq_attn_cache dg0 = {gdk0, gdv0, 0, P};
        th_expect_ok("cuda attn bwd bf16", sq_cuda_attn_bwd_bf16(d, NULL, gq, gk, gv, P ? &g0 : NULL, gdo, gd[0],
                                                                 gd[1], gd[2], P ? &dg0 : NULL, work));
        th_expect_ok("sync", sq_cuda_sync());
        static const char *const names[5] = {"dq", "dk", "dv", "dcache0 k", "dcache0 v"};
        for (int i = 0; i < (P ? 5 : 3); i++) {
            snprintf(what, sizeof what, "attn bf16 bwd B%d T%d H%d K%d V%d P%d scale %g%s: %s", d.B, d.T, d.H,
                     d.K, d.V, P, c->scale, off ? " unaligned" : "", names[i]);
            double e = i < 3 ? err_vs_bf16(gd[i], ref[i], osz[i]) : err_vs(i == 3 ? gdk0 : gdv0, ref[i], osz[i]);
            /* one query, one key: dq = dk = 0 exactly */
            if (d.T == 1 && P == 0 && i < 2) {
                float *wide = device_poisoned(osz[i]);
                th_expect_ok("widen", sq_cuda_from_bf16(wide, gd[i], osz[i]));
                e = max_abs(wide, osz[i]);
                sq_cuda_free(wide);
                th_close(what, e, 1e-6);
            } else th_close(what, e, 1e-2);
        }
        if (P) th_check(dg0.len == P, "attn bf16 bwd: dcache0 len %d (want %d)", dg0.len, P);
        for (int i = 0; i < 3; i++) sq_cuda_free(gd[i]);
        for (int i = 0; i < 5; i++) sq_free(ref[i]);
        sq_cuda_free(gdk0), sq_cuda_free(gdv0), sq_cuda_free(work);
    }
    void *dev[] = {bq, bk, bv, bdo, gout, gkc, gvc, gk1, gv1};
    for (int i = 0; i < 9; i++) sq_cuda_free(dev[i]);
    for (int i = 0; i < 6; i++) sq_free(host[i]);
    sq_free(out), sq_free(k1), sq_free(v1);
}

void cuda_test_attn(int small)
{
    const acase cases[] = {
        {{1, 1, 1, 8, 8}, 0, 0, 1, 1},        {{2, 1, 3, 16, 24}, 5, 1, 1, 1},
        {{2, 100, 3, 32, 48}, 0, 0, 1, 1},    {{1, 130, 2, 64, 64}, 70, 1, 1, 1},
        {{2, 77, 2, 128, 128}, 20, 0, 1, 1},  {{1, 65, 2, 100, 36}, 64, 0, 1, 1},
        {{2, 50, 2, 5, 7}, 3, 1, 1, 1},       {{1, 200, 2, 128, 64}, 0, 0, 3, 1},
        {{1, 300, 2, 8, 8}, 17, 0, 10, 0},    {{1, 4096, 2, 64, 64}, 0, 0, 1, 1},
        {{1, 1000, 2, 128, 128}, 300, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!small || cases[i].d.T <= 512) check_case(&cases[i]);
    check_steps((sq_dims){2, 20, 3, 16, 24}, 0);
    check_steps((sq_dims){1, 9, 2, 128, 128}, 33);
    check_steps((sq_dims){1, 70, 1, 64, 100}, 0);
    check_steps((sq_dims){2, 5, 2, 32, 40}, 600); /* more positions than a block takes at once (256) */
    check_refusals();
    const acase bf[] = {
        {{2, 200, 3, 64, 64}, 0, 0, 1, 1},    {{1, 130, 2, 128, 128}, 70, 0, 1, 1},
        {{2, 77, 2, 40, 24}, 5, 0, 1, 1},     {{1, 1, 1, 16, 16}, 0, 0, 1, 1},
        {{2, 1, 2, 64, 64}, 9, 0, 1, 1},      {{1, 100, 2, 128, 64}, 0, 0, 3, 1},
        {{1, 100, 2, 64, 128}, 33, 0, 1, 1},  {{2, 65, 1, 100, 36}, 64, 0, 1, 1},
        {{1, 2048, 2, 128, 128}, 300, 0, 1, 1},
    };
    for (size_t i = 0; i < sizeof bf / sizeof bf[0]; i++)
        if (!small || bf[i].d.T <= 512) check_bf16(&bf[i], 0);
    check_bf16(&bf[1], 3); /* K = V = 128 with a cache, tensors off alignment */
}
