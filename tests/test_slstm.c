/* sLSTM through the generic operator checks of optest.h: both forget
 * gates, extreme gate pre-activations, bad arguments. The stabilizer state m
 * and the m-scaled c, n are left out of the finite-difference loss (they
 * are defined only up to the stabilizer's scale); h is in it. */
#include <stdio.h>
#include <string.h>

#include "../src/ops/slstm.h"
#include "harness.h"
#include "optest.h"
#include "ref.h"

static int fwd(sq_dims d, const void *o, float **in, float **s0, float *out, float **s1)
{
    sq_slstm_in i = {in[0], in[1], in[2]};
    sq_slstm_state a = {s0 ? s0[0] : NULL, s0 ? s0[1] : NULL, s0 ? s0[2] : NULL, s0 ? s0[3] : NULL};
    sq_slstm_state z = {s1 ? s1[0] : NULL, s1 ? s1[1] : NULL, s1 ? s1[2] : NULL, s1 ? s1[3] : NULL};
    return sq_slstm_fwd(d, o, &i, s0 ? &a : NULL, out, s1 ? &z : NULL, NULL);
}

static int bwd(sq_dims d, const void *o, float **in, float **s0, const float *dout, float **ds1, float **g, float **ds0)
{
    sq_slstm_in i = {in[0], in[1], in[2]};
    sq_slstm_state a = {s0 ? s0[0] : NULL, s0 ? s0[1] : NULL, s0 ? s0[2] : NULL, s0 ? s0[3] : NULL};
    sq_slstm_state e = {ds1 ? ds1[0] : NULL, ds1 ? ds1[1] : NULL, NULL, ds1 ? ds1[3] : NULL};
    sq_slstm_state z = {ds0 ? ds0[0] : NULL, ds0 ? ds0[1] : NULL, ds0 ? ds0[2] : NULL, ds0 ? ds0[3] : NULL};
    sq_slstm_grad gr = {g[0], g[1], g[2]};
    return sq_slstm_bwd(d, o, &i, s0 ? &a : NULL, dout, ds1 ? &e : NULL, &gr, ds0 ? &z : NULL, NULL);
}

static int step(sq_dims d, const void *o, float **in, float **s, float *out)
{
    sq_slstm_in i = {in[0], in[1], in[2]};
    sq_slstm_state a = {s[0], s[1], s[2], s[3]};
    return sq_slstm_step(d, o, &i, &a, out);
}

static void ref(sq_dims d, const void *o, double **in, double **s0, double *out, double **s1)
{
    ref_slstm_in i = {in[0], in[1], in[2]};
    ref_slstm_state a = {s0 ? s0[0] : NULL, s0 ? s0[1] : NULL, s0 ? s0[2] : NULL, s0 ? s0[3] : NULL};
    ref_slstm_state z = {s1 ? s1[0] : NULL, s1 ? s1[1] : NULL, s1 ? s1[2] : NULL, s1 ? s1[3] : NULL};
    ref_slstm_fwd(d, ((const sq_slstm_opts *)o)->exp_forget, &i, s0 ? &a : NULL, out, s1 ? &z : NULL);
}

/* gx: N(0, 1), or extreme: U(-30, 30), so input gates reach ±30 and the
 * sigmoid forget gate's log down to -30; with the exponential forget gate,
 * whose log is the pre-activation itself, U(-30, 0) keeps log f <= 0. */
static ot_op make_op(sq_dims d, const sq_slstm_opts *o, int extreme)
{
    float hi = o->exp_forget ? 0 : 30;
    size_t st = (size_t)d.H * d.K;
    ot_op op = {"slstm", 3, 4,
                {{"gx", d.H * 4 * d.K, 0, extreme, extreme ? -30 : 0, extreme ? hi : 1},
                 {"R", 0, (size_t)d.H * 4 * d.K * d.K, 0, 0, 0.5f}, {"bias", 0, (size_t)d.H * 4 * d.K, 0, 0, 0.3f}},
                {{"c", st, 0, 0, 0, 1}, {"n", st, 0, 1, 0.5f, 2}, {"m", st, 0, 1, -1, 1}, {"h", st, 1, 0, 0, 0.5f}},
                d.H * d.K, o, fwd, bwd, step, ref};
    return op;
}

static void bad_args(void)
{
    sq_dims d = {1, 4, 1, 2, 2}, dkv = {1, 4, 1, 2, 3}, d1 = {1, 1, 1, 2, 2};
    float buf[256] = {0};
    sq_slstm_in in = {buf, buf, buf}, inN = {buf, NULL, buf};
    sq_slstm_opts o = sq_slstm_defaults(), bad = {3};
    sq_slstm_state st = {buf, buf, buf, buf}, part = {buf, buf, NULL, buf};
    sq_slstm_grad g = {buf, buf, buf}, gn = {buf, NULL, buf};
    th_expect_error("fwd: NULL R", sq_slstm_fwd(d, &o, &inN, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: K != V", sq_slstm_fwd(dkv, &o, &in, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: exp_forget 3", sq_slstm_fwd(d, &bad, &in, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: partial s0", sq_slstm_fwd(d, &o, &in, &part, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: NULL out", sq_slstm_fwd(d, &o, &in, NULL, NULL, NULL, NULL), SQ_EINVAL);
    th_expect_error("bwd: NULL dR", sq_slstm_bwd(d, &o, &in, NULL, buf, NULL, &gn, NULL, NULL), SQ_EINVAL);
    th_expect_error("step: T = 4", sq_slstm_step(d, &o, &in, &st, buf), SQ_EINVAL);
    th_expect_error("step: NULL state", sq_slstm_step(d1, &o, &in, NULL, buf), SQ_EINVAL);
    (void)g;
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "slstm");
    struct { sq_dims d; int ef, ext; } cases[] = {{{2, 13, 3, 4, 4}, 0, 0}, {{2, 13, 3, 4, 4}, 1, 0},
                                                  {{1, 1, 1, 1, 1}, 0, 0},  {{3, 50, 1, 8, 8}, 0, 0},
                                                  {{1, 4096, 2, 8, 8}, 0, 0}, {{1, 4096, 2, 8, 8}, 0, 1},
                                                  {{1, 4096, 2, 8, 8}, 1, 1}};
    for (int i = 0; i < 7; i++) {
        sq_slstm_opts o = {cases[i].ef};
        ot_op op = make_op(cases[i].d, &o, cases[i].ext);
        char label[32];
        snprintf(label, sizeof label, "ef%d%s", cases[i].ef, cases[i].ext ? " extreme" : "");
        ot_check_fwd(&op, cases[i].d, label, i % 2, 1e-4);
    }
    for (int ef = 0; ef < 2; ef++) {
        sq_dims d = {2, 6, 2, 3, 3};
        sq_slstm_opts o = {ef};
        ot_op op = make_op(d, &o, 0);
        ot_check_grads(&op, d, ef ? "ef1" : "ef0", 2e-4);
    }
    sq_dims dc = {2, 23, 2, 4, 4};
    sq_slstm_opts oc = {0};
    ot_op opc = make_op(dc, &oc, 0);
    ot_check_carry(&opc, dc, 9, "ef0");
    bad_args();
    return th_finish();
}
