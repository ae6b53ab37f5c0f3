/* Gated DeltaNet on the GPU (src/cuda/gdn.cu) against the CPU operator
 * (its reference) on fresh random inputs, outputs poisoned with NaN:
 * float32 relative error < 1e-4 for the output, the final state, every
 * gradient (dq, dk, dv, dalpha, dbeta, dA_log, ddt_bias) and dS0, given
 * dS1 or not; T = 1, T not a multiple of the chunk, chunk 1, chunk > T,
 * B = 1, H = 1, K != V, V not a multiple of 32, S0 given and NULL, S1 NULL
 * and S1 == S0 in place, both β ranges, with and without the in-op L2
 * norm, long and short memory, the caller's workspace and the call's own,
 * a long sequence (not when small); the decode step chained T times
 * against the CPU's forward and the CPU's step; refusals. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cuda_util.h"

static const double gd_tol = 1e-4;

typedef struct {
    sq_dims d;
    int chunk, neg, l2;
    float amean;    /* α̃ ~ N(amean, 1): -3 decays slowly (long memory), 0 fast */
    int with_state; /* S0 given (else NULL = zero state) */
    int inplace;    /* the forward's S1 == S0 (needs with_state) */
    int with_ds1;   /* dS1 given (else NULL) */
    int s1_null;    /* the forward's S1 NULL */
    int give_work;  /* the caller's workspace (else the call allocates) */
    int unaligned;  /* q, k, v, dout, dq, dk, dv one float past a 16-byte boundary */
} gd_case;

/* Host inputs and results. */
enum { IQ, IK, IV, IALPHA, IBETA, IALOG, IDTB, IS0, IDOUT, IDS1, NIN };
enum { ROUT, RS1, RDQ, RDK, RDV, RDALPHA, RDBETA, RDALOG, RDDTB, RDS0, NRES };
static const char *const gd_names[NRES] = {"out",    "final S", "dq",     "dk",       "dv",
                                           "dalpha", "dbeta",   "dA_log", "ddt_bias", "dS0"};

static float *randn_shift(size_t n, float mean, float std)
{
    float *x = th_randn(n, std);
    for (size_t i = 0; i < n; i++) x[i] += mean;
    return x;
}

/* Without the in-op L2 norm, small k keeps the recurrence contracting (as test_gdn.c). */
static void gd_inputs(sq_dims d, int l2, float amean, float **h, size_t *sz)
{
    size_t nq = (size_t)d.B * d.T * d.H * d.K, nv = (size_t)d.B * d.T * d.H * d.V, ng = (size_t)d.B * d.T * d.H;
    size_t nS = (size_t)d.B * d.H * d.K * d.V;
    const size_t s[NIN] = {nq, nq, nv, ng, ng, (size_t)d.H, (size_t)d.H, nS, nv, nS};
    memcpy(sz, s, sizeof s);
    h[IQ] = th_randn(nq, 1);
    h[IK] = th_randn(nq, l2 ? 1.0f : 0.4f / (float)d.K);
    h[IV] = th_randn(nv, 1);
    h[IALPHA] = randn_shift(ng, amean, 1);
    h[IBETA] = th_randn(ng, 1);
    h[IALOG] = th_randu(d.H, -1, 1);
    h[IDTB] = th_randu(d.H, -1, 0.5f);
    h[IS0] = th_randn(nS, 0.5f);
    h[IDOUT] = th_randn(nv, 1);
    h[IDS1] = th_randn(nS, 0.5f);
}

static void gd_cpu(const gd_case *c, float **h, float **ref)
{
    sq_gdn_opts o = {c->chunk, c->neg, c->l2};
    sq_gdn_in in = {h[IQ], h[IK], h[IV], h[IALPHA], h[IBETA], h[IALOG], h[IDTB]};
    sq_gdn_grad g = {ref[RDQ], ref[RDK], ref[RDV], ref[RDALPHA], ref[RDBETA], ref[RDALOG], ref[RDDTB]};
    const float *S0 = c->with_state ? h[IS0] : NULL;
    th_expect_ok("cpu gdn fwd", sq_gdn_fwd(c->d, &o, &in, S0, ref[ROUT], ref[RS1], NULL));
    th_expect_ok("cpu gdn bwd", sq_gdn_bwd(c->d, &o, &in, S0, h[IDOUT], c->with_ds1 ? h[IDS1] : NULL, &g, ref[RDS0],
                                           NULL));
}

static void check_case(const gd_case *c)
{
    sq_dims d = c->d;
    float *h[NIN], *ref[NRES], *dev[NIN], *got[NRES], *work = NULL;
    size_t sz[NIN];
    gd_inputs(d, c->l2, c->amean, h, sz);
    const size_t osz[NRES] = {sz[IV], sz[IS0], sz[IQ], sz[IK], sz[IV], sz[IALPHA], sz[IBETA], sz[IALOG], sz[IDTB],
                              sz[IS0]};
    for (int i = 0; i < NRES; i++) ref[i] = sq_alloc_floats(osz[i]);
    gd_cpu(c, h, ref);

    /* with unaligned, the row tensors start one float into their allocations (base[], gbase[]) */
    float *base[NIN], *gbase[NRES];
    for (int i = 0; i < NIN; i++) {
        int off = c->unaligned && (i == IQ || i == IK || i == IV || i == IDOUT);
        float *pad = sq_alloc_floats(sz[i] + 1);
        pad[0] = 1.0f;
        memcpy(pad + off, h[i], sz[i] * sizeof(float));
        base[i] = to_device(pad, sz[i] + off);
        dev[i] = base[i] + off;
        sq_free(pad);
    }
    for (int i = 0; i < NRES; i++) {
        int off = c->unaligned && (i == RDQ || i == RDK || i == RDV);
        gbase[i] = device_poisoned(osz[i] + off);
        got[i] = gbase[i] + off;
    }
    sq_gdn_opts o = {c->chunk, c->neg, c->l2};
    if (c->give_work) th_expect_ok("cuda malloc", sq_cuda_malloc(&work, sq_cuda_gdn_work_floats(d, &o)));
    sq_gdn_in in = {dev[IQ], dev[IK], dev[IV], dev[IALPHA], dev[IBETA], dev[IALOG], dev[IDTB]};
    const float *S0 = c->with_state ? dev[IS0] : NULL;
    float *S1 = c->s1_null ? NULL : got[RS1];
    if (c->inplace) { /* the state goes in and comes out in one copy of S0 */
        sq_cuda_free(gbase[RS1]);
        got[RS1] = gbase[RS1] = to_device(h[IS0], sz[IS0]);
        S0 = S1 = got[RS1];
    }
    th_expect_ok("cuda gdn fwd", sq_cuda_gdn_fwd(d, &o, &in, S0, got[ROUT], S1, work));
    sq_gdn_grad g = {got[RDQ], got[RDK], got[RDV], got[RDALPHA], got[RDBETA], got[RDALOG], got[RDDTB]};
    th_expect_ok("cuda gdn bwd", sq_cuda_gdn_bwd(d, &o, &in, c->with_state ? dev[IS0] : NULL, dev[IDOUT],
                                                 c->with_ds1 ? dev[IDS1] : NULL, &g, got[RDS0], work));
    th_expect_ok("sync", sq_cuda_sync());

    for (int i = 0; i < NRES; i++) {
        if (i == RS1 && c->s1_null) continue;
        char what[200];
        snprintf(what, sizeof what, "gdn B%d T%d H%d K%d V%d chunk %d neg%d l2%d α̃~%g%s%s%s%s%s: %s", d.B, d.T,
                 d.H, d.K, d.V, c->chunk, c->neg, c->l2, c->amean, c->with_state ? " S0" : "",
                 c->inplace ? " in place" : "", c->with_ds1 ? " dS1" : "", c->give_work ? " work" : "",
                 c->unaligned ? " unaligned" : "", gd_names[i]);
        if (i == RDDTB) {
            /* ddt_bias_h = Σ_{b,t} dalpha_{b,t,h} (α̃ and the bias enter the gate as one sum): a
             * sum that can cancel, so its error is measured against Σ|terms| per head */
            float *gh = sq_alloc_floats(osz[i]);
            th_expect_ok("download", sq_cuda_download(gh, got[i], osz[i]));
            double err = 0, scale = 0;
            for (int h2 = 0; h2 < d.H; h2++) err += fabs((double)gh[h2] - ref[i][h2]);
            for (size_t r = 0; r < osz[RDALPHA]; r++) scale += fabs((double)ref[RDALPHA][r]);
            /* (no terms, as at T = 1 from a zero state: the absolute error) */
            th_close(what, th_all_finite(gh, osz[i]) ? err / (scale > 1e-30 ? scale : 1) : INFINITY, gd_tol);
            sq_free(gh);
            continue;
        }
        th_close(what, err_vs(got[i], ref[i], osz[i]), gd_tol);
    }
    sq_cuda_free(work);
    for (int i = 0; i < NIN; i++) sq_cuda_free(base[i]), sq_free(h[i]);
    for (int i = 0; i < NRES; i++) sq_cuda_free(gbase[i]), sq_free(ref[i]);
}

/* The decode step chained T times (inputs uploaded per step) against the CPU's
 * chunkwise forward over the same tokens and the CPU's step: every output and
 * the final state. */
static void check_step(sq_dims d, int neg, int l2, int with_state)
{
    int T = d.T;
    sq_dims one = d;
    one.T = 1;
    float *h[NIN];
    size_t sz[NIN];
    gd_inputs(d, l2, -2, h, sz);
    size_t nv = sz[IV], nS = sz[IS0];
    if (!with_state) memset(h[IS0], 0, nS * sizeof(float));
    sq_gdn_opts o = {64, neg, l2};
    sq_gdn_in in = {h[IQ], h[IK], h[IV], h[IALPHA], h[IBETA], h[IALOG], h[IDTB]};
    float *ref = sq_alloc_floats(nv), *ref1 = sq_alloc_floats(nS), *cpu = sq_alloc_floats(nv), *got = sq_alloc_floats(nv);
    float *cS = sq_alloc_floats(nS), *yt = sq_alloc_floats(nv / T);
    th_expect_ok("cpu gdn fwd", sq_gdn_fwd(d, &o, &in, with_state ? h[IS0] : NULL, ref, ref1, NULL));
    memcpy(cS, h[IS0], nS * sizeof(float));
    float *dS = to_device(h[IS0], nS), *dAl = to_device(h[IALOG], d.H), *dDt = to_device(h[IDTB], d.H);
    float *tin[5], *tout = device_poisoned(nv / T);
    const int per[5] = {d.H * d.K, d.H * d.K, d.H * d.V, d.H, d.H};
    for (int i = 0; i < 5; i++) tin[i] = device_poisoned((size_t)d.B * per[i]);
    sq_gdn_in din = {tin[0], tin[1], tin[2], tin[3], tin[4], dAl, dDt};
    for (int t = 0; t < T; t++) {
        float *sl[5];
        for (int i = 0; i < 5; i++) {
            sl[i] = th_slice_time(h[IQ + i], d, per[i], t, 1);
            th_expect_ok("upload", sq_cuda_upload(tin[i], sl[i], (size_t)d.B * per[i]));
        }
        sq_gdn_in cin = {sl[0], sl[1], sl[2], sl[3], sl[4], h[IALOG], h[IDTB]};
        th_expect_ok("cpu gdn step", sq_gdn_step(one, &o, &cin, cS, yt));
        th_put_time(cpu, d, d.H * d.V, t, 1, yt);
        for (int i = 0; i < 5; i++) sq_free(sl[i]);
        if (!th_expect_ok("cuda gdn step", sq_cuda_gdn_step(one, &o, &din, dS, tout))) break;
        th_expect_ok("download", sq_cuda_download(yt, tout, nv / T));
        th_put_time(got, d, d.H * d.V, t, 1, yt);
    }
    char what[200];
    int fin = th_all_finite(got, nv);
    snprintf(what, sizeof what, "gdn step x%d B%d H%d K%d V%d neg%d l2%d%s: outputs vs the forward", T, d.B, d.H, d.K,
             d.V, neg, l2, with_state ? " S0" : "");
    th_close(what, fin ? th_rel_err_ff(got, ref, nv) : INFINITY, gd_tol);
    snprintf(what, sizeof what, "gdn step x%d B%d H%d K%d V%d: outputs vs the CPU step", T, d.B, d.H, d.K, d.V);
    th_close(what, fin ? th_rel_err_ff(got, cpu, nv) : INFINITY, gd_tol);
    snprintf(what, sizeof what, "gdn step x%d B%d H%d K%d V%d: final state vs the forward, the CPU step", T, d.B, d.H,
             d.K, d.V);
    th_close(what, fmax(err_vs(dS, ref1, nS), err_vs(dS, cS, nS)), gd_tol);
    for (int i = 0; i < 5; i++) sq_cuda_free(tin[i]);
    sq_cuda_free(dS), sq_cuda_free(dAl), sq_cuda_free(dDt), sq_cuda_free(tout);
    for (int i = 0; i < NIN; i++) sq_free(h[i]);
    sq_free(ref), sq_free(ref1), sq_free(cpu), sq_free(got), sq_free(cS), sq_free(yt);
}

static void check_refusals(void)
{
    sq_dims d = {1, 4, 1, 4, 4}, t0 = {1, 0, 1, 4, 4}, one = {1, 1, 1, 4, 4};
    float *x = NULL;
    th_expect_ok("cuda malloc", sq_cuda_malloc(&x, 256));
    sq_gdn_in in = {x, x, x, x, x, x, x}, nob = {x, x, x, x, NULL, x, x};
    sq_gdn_opts zero = {0, 0, 1}, bad = {64, 2, 1}, badl2 = {64, 0, 3};
    sq_gdn_grad g = {x, x, x, x, x, x, x}, gn = {x, x, x, x, x, NULL, x};
    th_expect_error("gdn fwd: NULL beta", sq_cuda_gdn_fwd(d, NULL, &nob, NULL, x, NULL, NULL), SQ_EINVAL);
    th_expect_error("gdn fwd: NULL in", sq_cuda_gdn_fwd(d, NULL, NULL, NULL, x, NULL, NULL), SQ_EINVAL);
    th_expect_error("gdn fwd: T = 0", sq_cuda_gdn_fwd(t0, NULL, &in, NULL, x, NULL, NULL), SQ_EINVAL);
    th_expect_error("gdn fwd: chunk 0", sq_cuda_gdn_fwd(d, &zero, &in, NULL, x, NULL, NULL), SQ_EINVAL);
    th_expect_error("gdn fwd: neg_eigval 2", sq_cuda_gdn_fwd(d, &bad, &in, NULL, x, NULL, NULL), SQ_EINVAL);
    th_expect_error("gdn fwd: qk_l2norm 3", sq_cuda_gdn_fwd(d, &badl2, &in, NULL, x, NULL, NULL), SQ_EINVAL);
    th_expect_error("gdn fwd: NULL out", sq_cuda_gdn_fwd(d, NULL, &in, NULL, NULL, NULL, NULL), SQ_EINVAL);
    th_expect_error("gdn bwd: NULL dA_log", sq_cuda_gdn_bwd(d, NULL, &in, NULL, x, NULL, &gn, NULL, NULL), SQ_EINVAL);
    th_expect_error("gdn bwd: NULL dout", sq_cuda_gdn_bwd(d, NULL, &in, NULL, NULL, NULL, &g, NULL, NULL), SQ_EINVAL);
    th_expect_error("gdn bwd: NULL g", sq_cuda_gdn_bwd(d, NULL, &in, NULL, x, NULL, NULL, NULL, NULL), SQ_EINVAL);
    th_expect_error("gdn bwd: T = 0", sq_cuda_gdn_bwd(t0, NULL, &in, NULL, x, NULL, &g, NULL, NULL), SQ_EINVAL);
    th_expect_error("gdn bwd: chunk 0", sq_cuda_gdn_bwd(d, &zero, &in, NULL, x, NULL, &g, NULL, NULL), SQ_EINVAL);
    th_expect_error("gdn step: T = 4", sq_cuda_gdn_step(d, NULL, &in, x, x), SQ_EINVAL);
    th_expect_error("gdn step: NULL S", sq_cuda_gdn_step(one, NULL, &in, NULL, x), SQ_EINVAL);
    th_expect_error("gdn step: NULL out", sq_cuda_gdn_step(one, NULL, &in, x, NULL), SQ_EINVAL);
    th_expect_error("gdn step: NULL k", sq_cuda_gdn_step(one, NULL, &(sq_gdn_in){x, NULL, x, x, x, x, x}, x, x),
                    SQ_EINVAL);
    th_check(sq_cuda_gdn_work_floats(t0, NULL) == 0, "gdn work floats: 0 for T = 0");
    th_expect_error("gdn fwd: work off 16 bytes", sq_cuda_gdn_fwd(d, NULL, &in, NULL, x, NULL, x + 1), SQ_EINVAL);
    th_expect_error("gdn bwd: work off 16 bytes", sq_cuda_gdn_bwd(d, NULL, &in, NULL, x, NULL, &g, NULL, x + 2),
                    SQ_EINVAL);
    sq_cuda_free(x);
}

void cuda_test_gdn(int small)
{
    /* d, chunk, neg, l2, amean, with_state, inplace, with_ds1, s1_null, give_work, unaligned */
    const gd_case cases[] = {
        {{2, 100, 3, 32, 24}, 64, 0, 1, -2, 1, 0, 1, 0, 1, 0},  {{1, 1, 1, 8, 8}, 64, 0, 1, -2, 1, 0, 1, 0, 0, 0},
        {{1, 1, 2, 8, 16}, 16, 1, 1, -2, 0, 0, 0, 1, 0, 0},     {{2, 37, 2, 16, 16}, 1, 1, 1, -2, 1, 1, 1, 0, 0, 0},
        {{1, 50, 1, 16, 40}, 128, 1, 1, -3, 1, 0, 0, 0, 1, 0},  {{2, 130, 2, 64, 64}, 64, 0, 0, -2, 1, 0, 1, 0, 0, 0},
        {{2, 64, 3, 40, 72}, 16, 0, 1, 0, 1, 1, 1, 0, 1, 0},    {{3, 77, 2, 24, 8}, 10, 0, 0, -3, 0, 0, 1, 0, 0, 0},
        {{1, 200, 4, 128, 128}, 64, 1, 1, -3, 1, 0, 1, 0, 0, 0}, {{2, 150, 2, 33, 65}, 100, 1, 1, -4, 1, 0, 1, 1, 0, 0},
        {{2, 4096, 4, 64, 64}, 64, 1, 1, -3, 1, 0, 1, 0, 1, 0}, {{1, 1024, 2, 128, 128}, 64, 0, 1, -2, 1, 1, 1, 0, 0, 0},
        {{2, 100, 3, 32, 24}, 64, 0, 1, -2, 1, 0, 1, 0, 1, 1}, {{1, 70, 2, 136, 16}, 32, 1, 0, -2, 1, 0, 0, 0, 0, 1},
        {{1, 80, 2, 136, 144}, 64, 0, 1, -2, 1, 0, 1, 0, 0, 0}, /* rows past one pass of 8 × 16 elements */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!small || cases[i].d.T <= 512) check_case(&cases[i]);
    check_step((sq_dims){2, 40, 3, 16, 24}, 0, 1, 1);
    check_step((sq_dims){1, 30, 2, 128, 128}, 1, 1, 0);
    check_step((sq_dims){2, 20, 2, 8, 40}, 0, 0, 1);
    check_step((sq_dims){1, 5, 1, 1, 1}, 1, 1, 1);
    check_refusals();
}
