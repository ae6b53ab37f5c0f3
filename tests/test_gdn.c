/* Gated DeltaNet through the generic operator checks of optest.h: both β
 * ranges, with and without the in-op L2 norm, extreme gates, bad arguments. */
#include <stdio.h>
#include <string.h>

#include "../src/ops/gdn.h"
#include "harness.h"
#include "optest.h"
#include "ref.h"

static sq_gdn_in unpack(float **in)
{
    sq_gdn_in r = {in[0], in[1], in[2], in[3], in[4], in[5], in[6]};
    return r;
}

static int fwd(sq_dims d, const void *o, float **in, float **s0, float *out, float **s1)
{
    sq_gdn_in i = unpack(in);
    return sq_gdn_fwd(d, o, &i, s0 ? s0[0] : NULL, out, s1 ? s1[0] : NULL, NULL);
}

static int bwd(sq_dims d, const void *o, float **in, float **s0, const float *dout, float **ds1, float **g, float **ds0)
{
    sq_gdn_in i = unpack(in);
    sq_gdn_grad gr = {g[0], g[1], g[2], g[3], g[4], g[5], g[6]};
    return sq_gdn_bwd(d, o, &i, s0 ? s0[0] : NULL, dout, ds1 ? ds1[0] : NULL, &gr, ds0 ? ds0[0] : NULL, NULL);
}

static int step(sq_dims d, const void *o, float **in, float **s, float *out)
{
    sq_gdn_in i = unpack(in);
    return sq_gdn_step(d, o, &i, s[0], out);
}

static void ref(sq_dims d, const void *o, double **in, double **s0, double *out, double **s1)
{
    const sq_gdn_opts *g = o;
    ref_gdn_in i = {in[0], in[1], in[2], in[3], in[4], in[5], in[6]};
    ref_gdn_fwd(d, g->neg_eigval, g->qk_l2norm, &i, s0 ? s0[0] : NULL, out, s1 ? s1[0] : NULL);
}

/* beta_mean/alpha_mean shift the gates: β̃ = ±12 puts β near 0 or its top. */
static ot_op make_op(sq_dims d, const sq_gdn_opts *o, float alpha_mean, float beta_mean, float beta_std)
{
    /* Without the in-op L2 norm, small k keeps the recurrence contracting. */
    float kstd = o->qk_l2norm ? 1.0f : 0.4f / (float)d.K;
    ot_op op = {"gdn", 7, 1,
                {{"q", d.H * d.K, 0, 0, 0, 1}, {"k", d.H * d.K, 0, 0, 0, kstd}, {"v", d.H * d.V, 0, 0, 0, 1},
                 {"alpha", d.H, 0, 0, alpha_mean, 1}, {"beta", d.H, 0, 0, beta_mean, beta_std},
                 {"A_log", 0, (size_t)d.H, 1, -1, 1}, {"dt_bias", 0, (size_t)d.H, 1, -1, 0.5f}},
                {{"S", (size_t)d.H * d.K * d.V, 1, 0, 0, 0.5f}},
                d.H * d.V, o, fwd, bwd, step, ref};
    return op;
}

static void bad_args(void)
{
    sq_dims d = {1, 4, 2, 2, 2}, dz = {1, 4, 2, 0, 2};
    float buf[256] = {0};
    sq_gdn_in in = {buf, buf, buf, buf, buf, buf, buf}, inN = {buf, buf, buf, buf, NULL, buf, buf};
    sq_gdn_opts o = sq_gdn_defaults(), z = {0, 0, 1}, bad = {64, 2, 1};
    sq_gdn_grad g = {buf, buf, buf, buf, buf, buf, buf}, gn = {buf, buf, buf, buf, buf, NULL, buf};
    th_expect_error("fwd: NULL beta", sq_gdn_fwd(d, &o, &inN, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: K = 0", sq_gdn_fwd(dz, &o, &in, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: chunk 0", sq_gdn_fwd(d, &z, &in, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: neg_eigval 2", sq_gdn_fwd(d, &bad, &in, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: NULL out", sq_gdn_fwd(d, &o, &in, NULL, NULL, NULL, NULL), SQ_EINVAL);
    th_expect_error("bwd: NULL dA_log", sq_gdn_bwd(d, &o, &in, NULL, buf, NULL, &gn, NULL, NULL), SQ_EINVAL);
    th_expect_error("bwd: NULL dout", sq_gdn_bwd(d, &o, &in, NULL, NULL, NULL, &g, NULL, NULL), SQ_EINVAL);
    th_expect_error("step: T = 4", sq_gdn_step(d, &o, &in, buf, buf), SQ_EINVAL);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "gdn");
    struct { sq_dims d; int L, neg, l2; } cases[] = {
        {{2, 13, 3, 4, 6}, 4, 0, 1}, {{2, 13, 3, 4, 6}, 5, 1, 1}, {{1, 1, 1, 5, 3}, 64, 0, 1},
        {{1, 9, 2, 3, 5}, 1, 1, 1}, {{2, 100, 1, 16, 7}, 64, 0, 0}, {{1, 4096, 2, 16, 16}, 64, 0, 1},
        {{1, 4096, 1, 16, 16}, 64, 1, 1}};
    for (int i = 0; i < 7; i++) {
        sq_gdn_opts o = {cases[i].L, cases[i].neg, cases[i].l2};
        ot_op op = make_op(cases[i].d, &o, 0, 0, 1);
        char label[48];
        snprintf(label, sizeof label, "L%d neg%d l2%d", cases[i].L, cases[i].neg, cases[i].l2);
        ot_check_fwd(&op, cases[i].d, label, i % 2, 1e-4);
    }
    /* Stability: β near 0, β near 2, strong decay, no decay, over T = 4096. */
    struct { const char *label; int neg; float am, bm; } ext[] = {
        {"beta~0", 0, 0, -12}, {"beta~2", 1, 0, 12}, {"beta~1", 0, 0, 12}, {"strong decay", 1, 8, 0}, {"no decay", 1, -20, 0}};
    for (int i = 0; i < 5; i++) {
        sq_dims d = {1, 4096, 2, 8, 8};
        sq_gdn_opts o = {64, ext[i].neg, 1};
        ot_op op = make_op(d, &o, ext[i].am, ext[i].bm, 0.5f);
        ot_check_fwd(&op, d, ext[i].label, 1, 1e-4);
    }
    struct { int L, neg, l2; } gc[] = {{1, 0, 1}, {3, 0, 1}, {16, 0, 1}, {3, 1, 1}, {4, 0, 0}, {4, 1, 0}};
    for (int i = 0; i < 6; i++) {
        sq_dims d = {1, 7, 2, 3, 4};
        sq_gdn_opts o = {gc[i].L, gc[i].neg, gc[i].l2};
        ot_op op = make_op(d, &o, 0, 0, 1);
        char label[48];
        snprintf(label, sizeof label, "L%d neg%d l2%d", gc[i].L, gc[i].neg, gc[i].l2);
        ot_check_grads(&op, d, label, 2e-4);
    }
    sq_dims dc = {2, 29, 2, 4, 5};
    sq_gdn_opts oc = {6, 1, 1};
    ot_op opc = make_op(dc, &oc, 0, 0, 1);
    ot_check_carry(&opc, dc, 11, "L6 neg1");
    bad_args();
    return th_finish();
}
