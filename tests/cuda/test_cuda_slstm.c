/* The sLSTM on the GPU (src/cuda/slstm.cu) against the CPU operator (its
 * reference) on fresh random inputs, outputs poisoned with NaN: float32
 * relative error < 1e-4 for the output, the final state, every gradient
 * and the initial-state gradient; both forget gates, zero and given
 * initial states, s1 == s0 in place, ds1 given and NULL, the caller's
 * workspace and the call's own, R in shared memory (K <= ~110) and in
 * global memory (K = 128, 300), extreme gate pre-activations, a long
 * sequence (not when small), the decode step chained T times, refusals. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cuda_util.h"

static const double sl_tol = 1e-4;

typedef struct {
    sq_dims d;
    int ef;         /* exp_forget */
    int extreme;    /* gx U(-30, 30) (U(-30, 0) with the exponential forget gate) instead of N(0, 1) */
    int with_state; /* s0 given (else NULL = zero state) */
    int inplace;    /* the forward's s1 == s0 (needs with_state) */
    int with_ds1;   /* ds1 given (else NULL) */
    int s1_null;    /* the forward's s1 NULL */
    int give_work;  /* the caller's workspace (else the call allocates) */
} sl_case;

/* Host inputs: gx, R, bias, s0 (c, n, m, h), dout, ds1 (c, n, h). */
enum { GX, RR, BIAS, C0, N0, M0, H0, DOUT, DC1, DN1, DH1, NIN };
/* Results: out, s1 (c, n, m, h), dgx, dR, dbias, ds0 (c, n, m, h). */
enum { OUT, C1, N1, M1, H1, DGX, DR, DBIAS, DC0, DN0, DM0, DH0, NRES };
static const char *const sl_names[NRES] = {"out", "final c", "final n", "final m", "final h", "dgx",
                                           "dR",  "dbias",   "ds0 c",   "ds0 n",   "ds0 m",   "ds0 h"};

/* With the exponential forget gate log f = p_f itself: gx's forget rows
 * shifted by -1 keep it mostly negative (as trained gates are), so that m
 * stays bounded rather than drifting to hundreds over a long sequence
 * (where one float ulp of m is ~1e-4 of c and n). */
static void sl_forget_shift(float *gx, size_t rows, int K, int ef)
{
    if (!ef) return;
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < K; j++) gx[r * 4 * K + K + j] -= 1.0f;
}

static void sl_inputs(const sl_case *c, float **h, size_t *sz)
{
    sq_dims d = c->d;
    size_t F = 4 * (size_t)d.K, ns = (size_t)d.B * d.H * d.K, no = (size_t)d.B * d.T * d.H * d.K;
    const size_t s[NIN] = {(size_t)d.B * d.T * d.H * F, d.H * F * d.K, d.H * F, ns, ns, ns, ns, no, ns, ns, ns};
    memcpy(sz, s, sizeof s);
    h[GX] = c->extreme ? th_randu(sz[GX], -30, c->ef ? 0 : 30) : th_randn(sz[GX], 1);
    if (!c->extreme) sl_forget_shift(h[GX], (size_t)d.B * d.T * d.H, d.K, c->ef);
    h[RR] = th_randn(sz[RR], 1 / sqrtf((float)d.K));
    h[BIAS] = th_randn(sz[BIAS], 0.3f);
    h[C0] = th_randn(ns, 1), h[N0] = th_randu(ns, 0.5f, 2), h[M0] = th_randu(ns, -1, 1), h[H0] = th_randn(ns, 0.5f);
    h[DOUT] = th_randn(no, 1);
    h[DC1] = th_randn(ns, 0.5f), h[DN1] = th_randn(ns, 0.5f), h[DH1] = th_randn(ns, 0.5f);
}

/* The CPU's forward and backward into ref. */
static void sl_cpu(const sl_case *c, float **h, float **ref)
{
    sq_slstm_opts o = {c->ef};
    sq_slstm_in in = {h[GX], h[RR], h[BIAS]};
    sq_slstm_state s0 = {h[C0], h[N0], h[M0], h[H0]}, s1 = {ref[C1], ref[N1], ref[M1], ref[H1]};
    sq_slstm_state ds1 = {h[DC1], h[DN1], NULL, h[DH1]}, ds0 = {ref[DC0], ref[DN0], ref[DM0], ref[DH0]};
    sq_slstm_grad g = {ref[DGX], ref[DR], ref[DBIAS]};
    const sq_slstm_state *ps0 = c->with_state ? &s0 : NULL;
    th_expect_ok("cpu slstm fwd", sq_slstm_fwd(c->d, &o, &in, ps0, ref[OUT], &s1, NULL));
    th_expect_ok("cpu slstm bwd",
                 sq_slstm_bwd(c->d, &o, &in, ps0, h[DOUT], c->with_ds1 ? &ds1 : NULL, &g, &ds0, NULL));
}

/* ds0's m = dc0·c0 + dn0·n0 can cancel: its error over Σ|terms|. */
static double sl_dm0_err(const float *dev, float **ref, float **h, size_t ns)
{
    float *g = sq_alloc_floats(ns);
    th_expect_ok("download", sq_cuda_download(g, dev, ns));
    double err = 0, scale = 0;
    for (size_t i = 0; i < ns; i++) {
        err += fabs((double)g[i] - ref[DM0][i]);
        scale += fabs((double)ref[DC0][i] * h[C0][i]) + fabs((double)ref[DN0][i] * h[N0][i]);
    }
    int ok = th_all_finite(g, ns);
    sq_free(g);
    return !ok ? INFINITY : scale > 0 ? err / scale : err;
}

static void check_case(const sl_case *c)
{
    sq_dims d = c->d;
    float *h[NIN], *ref[NRES], *dev[NIN], *got[NRES], *cp[4] = {NULL, NULL, NULL, NULL};
    size_t sz[NIN];
    sl_inputs(c, h, sz);
    size_t ns = sz[C0], osz[NRES] = {sz[DOUT], ns, ns, ns, ns, sz[GX], sz[RR], sz[BIAS], ns, ns, ns, ns};
    for (int i = 0; i < NRES; i++) ref[i] = sq_alloc_floats(osz[i]);
    sl_cpu(c, h, ref);

    for (int i = 0; i < NIN; i++) dev[i] = to_device(h[i], sz[i]);
    for (int i = 0; i < NRES; i++) got[i] = device_poisoned(osz[i]);
    float *work = NULL;
    sq_slstm_opts o = {c->ef};
    if (c->give_work) th_expect_ok("cuda malloc", sq_cuda_malloc(&work, sq_cuda_slstm_work_floats(d, &o)));
    sq_slstm_in in = {dev[GX], dev[RR], dev[BIAS]};
    sq_slstm_state s0 = {dev[C0], dev[N0], dev[M0], dev[H0]}, s1 = {got[C1], got[N1], got[M1], got[H1]};
    if (c->inplace) { /* the state goes in and comes out in one copy of s0 */
        for (int k = 0; k < 4; k++) cp[k] = to_device(h[C0 + k], ns);
        s1 = (sq_slstm_state){cp[0], cp[1], cp[2], cp[3]};
        for (int k = 0; k < 4; k++) sq_cuda_free(got[C1 + k]), got[C1 + k] = cp[k];
    }
    const sq_slstm_state *fs0 = !c->with_state ? NULL : c->inplace ? &s1 : &s0;
    th_expect_ok("cuda slstm fwd", sq_cuda_slstm_fwd(d, &o, &in, fs0, got[OUT], c->s1_null ? NULL : &s1, work));
    sq_slstm_state ds1 = {dev[DC1], dev[DN1], NULL, dev[DH1]}, ds0 = {got[DC0], got[DN0], got[DM0], got[DH0]};
    sq_slstm_grad g = {got[DGX], got[DR], got[DBIAS]};
    th_expect_ok("cuda slstm bwd", sq_cuda_slstm_bwd(d, &o, &in, c->with_state ? &s0 : NULL, dev[DOUT],
                                                     c->with_ds1 ? &ds1 : NULL, &g, &ds0, work));
    th_expect_ok("sync", sq_cuda_sync());

    for (int i = 0; i < NRES; i++) {
        if (c->s1_null && i >= C1 && i <= H1) continue;
        char what[200];
        snprintf(what, sizeof what, "slstm B%d T%d H%d K%d ef%d%s%s%s%s%s: %s", d.B, d.T, d.H, d.K, c->ef,
                 c->extreme ? " extreme" : "", c->with_state ? " s0" : "", c->inplace ? " in place" : "",
                 c->with_ds1 ? " ds1" : "", c->give_work ? " work" : "", sl_names[i]);
        double e = i == DM0 && c->with_state ? sl_dm0_err(got[i], ref, h, ns) : err_vs(got[i], ref[i], osz[i]);
        th_close(what, e, sl_tol);
    }
    sq_cuda_free(work);
    for (int i = 0; i < NIN; i++) sq_cuda_free(dev[i]), sq_free(h[i]);
    for (int i = 0; i < NRES; i++) sq_cuda_free(got[i]), sq_free(ref[i]);
}

/* The decode step chained T times (gx uploaded per step) against the CPU's
 * forward over the same tokens and the CPU's step: every output and the final state. */
static void check_step(sq_dims d, int ef, int with_state)
{
    int T = d.T;
    sq_dims one = d;
    one.T = 1;
    size_t F = 4 * (size_t)d.K, ngx = (size_t)d.B * T * d.H * F, nR = d.H * F * d.K, nb = d.H * F;
    size_t ns = (size_t)d.B * d.H * d.K, no = (size_t)d.B * T * d.H * d.K;
    float *gx = th_randn(ngx, 1), *R = th_randn(nR, 1 / sqrtf((float)d.K)), *bias = th_randn(nb, 0.3f);
    float *st[4], *cs[4], *ref1[4], *dst[4];
    sl_forget_shift(gx, (size_t)d.B * T * d.H, d.K, ef);
    st[0] = th_randn(ns, 1), st[1] = th_randu(ns, 0.5f, 2), st[2] = th_randu(ns, -1, 1), st[3] = th_randn(ns, 0.5f);
    for (int k = 0; k < 4; k++) {
        if (!with_state) memset(st[k], 0, ns * sizeof(float));
        cs[k] = sq_alloc_floats(ns), ref1[k] = sq_alloc_floats(ns);
        memcpy(cs[k], st[k], ns * sizeof(float));
    }
    sq_slstm_opts o = {ef};
    sq_slstm_in in = {gx, R, bias};
    sq_slstm_state s0 = {st[0], st[1], st[2], st[3]}, s1 = {ref1[0], ref1[1], ref1[2], ref1[3]};
    sq_slstm_state cst = {cs[0], cs[1], cs[2], cs[3]};
    float *ref = sq_alloc_floats(no), *cpu = sq_alloc_floats(no), *got = sq_alloc_floats(no), *yt = sq_alloc_floats(ns);
    th_expect_ok("cpu slstm fwd", sq_slstm_fwd(d, &o, &in, with_state ? &s0 : NULL, ref, &s1, NULL));
    for (int k = 0; k < 4; k++) dst[k] = to_device(st[k], ns);
    float *dR = to_device(R, nR), *db = to_device(bias, nb), *tgx = device_poisoned(ngx / T), *tout = device_poisoned(ns);
    sq_slstm_state ds = {dst[0], dst[1], dst[2], dst[3]};
    sq_slstm_in din = {tgx, dR, db};
    for (int t = 0; t < T; t++) {
        float *sl = th_slice_time(gx, d, d.H * (int)F, t, 1);
        sq_slstm_in cin = {sl, R, bias};
        th_expect_ok("cpu slstm step", sq_slstm_step(one, &o, &cin, &cst, yt));
        th_put_time(cpu, d, d.H * d.K, t, 1, yt);
        th_expect_ok("upload", sq_cuda_upload(tgx, sl, ngx / T));
        sq_free(sl);
        if (!th_expect_ok("cuda slstm step", sq_cuda_slstm_step(one, &o, &din, &ds, tout))) break;
        th_expect_ok("download", sq_cuda_download(yt, tout, ns));
        th_put_time(got, d, d.H * d.K, t, 1, yt);
    }
    char what[200];
    int fin = th_all_finite(got, no);
    snprintf(what, sizeof what, "slstm step x%d B%d H%d K%d ef%d%s: outputs vs the forward", T, d.B, d.H, d.K, ef,
             with_state ? " s0" : "");
    th_close(what, fin ? th_rel_err_ff(got, ref, no) : INFINITY, sl_tol);
    snprintf(what, sizeof what, "slstm step x%d B%d H%d K%d ef%d: outputs vs the CPU step", T, d.B, d.H, d.K, ef);
    th_close(what, fin ? th_rel_err_ff(got, cpu, no) : INFINITY, sl_tol);
    double es = 0;
    for (int k = 0; k < 4; k++) es = fmax(es, err_vs(dst[k], ref1[k], ns));
    snprintf(what, sizeof what, "slstm step x%d B%d H%d K%d ef%d: final c, n, m, h", T, d.B, d.H, d.K, ef);
    th_close(what, es, sl_tol);
    for (int k = 0; k < 4; k++) sq_cuda_free(dst[k]), sq_free(st[k]), sq_free(cs[k]), sq_free(ref1[k]);
    sq_cuda_free(dR), sq_cuda_free(db), sq_cuda_free(tgx), sq_cuda_free(tout);
    sq_free(gx), sq_free(R), sq_free(bias), sq_free(ref), sq_free(cpu), sq_free(got), sq_free(yt);
}

static void check_refusals(void)
{
    sq_dims d = {1, 4, 1, 4, 4}, t0 = {1, 0, 1, 4, 4}, kv = {1, 4, 1, 4, 5}, one = {1, 1, 1, 4, 4},
           big = {1, 1, 1, 1100, 1100};
    float *x = NULL;
    th_expect_ok("cuda malloc", sq_cuda_malloc(&x, 256));
    sq_slstm_in in = {x, x, x}, noR = {x, NULL, x};
    sq_slstm_opts bad = {3};
    sq_slstm_state st = {x, x, x, x}, part = {x, x, NULL, x};
    sq_slstm_grad g = {x, x, x}, gn = {x, NULL, x};
    th_expect_error("slstm fwd: NULL R", sq_cuda_slstm_fwd(d, NULL, &noR, NULL, x, NULL, NULL), SQ_EINVAL);
    th_expect_error("slstm fwd: T = 0", sq_cuda_slstm_fwd(t0, NULL, &in, NULL, x, NULL, NULL), SQ_EINVAL);
    th_expect_error("slstm fwd: K != V", sq_cuda_slstm_fwd(kv, NULL, &in, NULL, x, NULL, NULL), SQ_EINVAL);
    th_expect_error("slstm fwd: K > 1024", sq_cuda_slstm_fwd(big, NULL, &in, NULL, x, NULL, NULL), SQ_EINVAL);
    th_expect_error("slstm fwd: exp_forget 3", sq_cuda_slstm_fwd(d, &bad, &in, NULL, x, NULL, NULL), SQ_EINVAL);
    th_expect_error("slstm fwd: NULL out", sq_cuda_slstm_fwd(d, NULL, &in, NULL, NULL, NULL, NULL), SQ_EINVAL);
    th_expect_error("slstm fwd: partial s0", sq_cuda_slstm_fwd(d, NULL, &in, &part, x, NULL, NULL), SQ_EINVAL);
    th_expect_error("slstm bwd: NULL dR", sq_cuda_slstm_bwd(d, NULL, &in, NULL, x, NULL, &gn, NULL, NULL), SQ_EINVAL);
    th_expect_error("slstm bwd: NULL dout", sq_cuda_slstm_bwd(d, NULL, &in, NULL, NULL, NULL, &g, NULL, NULL),
                    SQ_EINVAL);
    th_expect_error("slstm bwd: T = 0", sq_cuda_slstm_bwd(t0, NULL, &in, NULL, x, NULL, &g, NULL, NULL), SQ_EINVAL);
    th_expect_error("slstm bwd: partial ds0", sq_cuda_slstm_bwd(d, NULL, &in, NULL, x, NULL, &g, &part, NULL),
                    SQ_EINVAL);
    th_expect_error("slstm step: T = 4", sq_cuda_slstm_step(d, NULL, &in, &st, x), SQ_EINVAL);
    th_expect_error("slstm step: NULL state", sq_cuda_slstm_step(one, NULL, &in, NULL, x), SQ_EINVAL);
    th_expect_error("slstm step: state without m", sq_cuda_slstm_step(one, NULL, &in, &part, x), SQ_EINVAL);
    th_expect_error("slstm step: NULL out", sq_cuda_slstm_step(one, NULL, &in, &st, NULL), SQ_EINVAL);
    sq_cuda_free(x);
}

void cuda_test_slstm(int small)
{
    /* d, ef, extreme, with_state, inplace, with_ds1, s1_null, give_work */
    const sl_case cases[] = {
        {{2, 13, 3, 4, 4}, 0, 0, 1, 0, 1, 0, 0},      {{2, 13, 3, 4, 4}, 1, 0, 0, 0, 0, 0, 0},
        {{1, 1, 1, 1, 1}, 0, 0, 1, 1, 1, 0, 0},       {{1, 1, 2, 8, 8}, 1, 0, 1, 0, 1, 1, 1},
        {{3, 50, 1, 8, 8}, 0, 0, 1, 0, 0, 0, 1},      {{2, 200, 2, 64, 64}, 0, 0, 1, 1, 1, 0, 1},
        {{2, 100, 3, 64, 64}, 1, 0, 0, 0, 0, 0, 0},   {{1, 30, 2, 100, 100}, 0, 0, 1, 0, 1, 0, 0},
        {{1, 60, 2, 128, 128}, 0, 0, 1, 0, 1, 0, 0},  {{1, 60, 1, 128, 128}, 1, 0, 0, 0, 1, 0, 1},
        {{1, 20, 1, 300, 300}, 1, 0, 1, 0, 1, 0, 0},  {{2, 300, 2, 16, 16}, 0, 1, 1, 0, 1, 0, 0},
        {{2, 300, 2, 16, 16}, 1, 1, 1, 0, 1, 0, 0},   {{2, 2048, 2, 64, 64}, 0, 0, 1, 0, 1, 0, 0},
        {{1, 2048, 4, 32, 32}, 1, 0, 0, 0, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!small || cases[i].d.T <= 512) check_case(&cases[i]);
    check_step((sq_dims){2, 40, 3, 16, 16}, 0, 1);
    check_step((sq_dims){2, 30, 2, 64, 64}, 0, 0);
    check_step((sq_dims){1, 9, 2, 128, 128}, 1, 0);
    check_step((sq_dims){1, 5, 1, 1, 1}, 1, 1);
    check_refusals();
}
