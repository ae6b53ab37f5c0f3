/* Mamba-2 SSD through the generic operator checks of optest.h, with one and
 * several groups, plus its own argument checks. */
#include <stdio.h>
#include <string.h>

#include "../src/ops/ssd.h"
#include "harness.h"
#include "optest.h"
#include "ref.h"

static sq_ssd_in unpack(float **in)
{
    sq_ssd_in r = {in[0], in[1], in[2], in[3], in[4], in[5], in[6]};
    return r;
}

static int fwd(sq_dims d, const void *o, float **in, float **s0, float *out, float **s1)
{
    sq_ssd_in i = unpack(in);
    return sq_ssd_fwd(d, o, &i, s0 ? s0[0] : NULL, out, s1 ? s1[0] : NULL, NULL);
}

static int bwd(sq_dims d, const void *o, float **in, float **s0, const float *dout, float **ds1, float **g, float **ds0)
{
    sq_ssd_in i = unpack(in);
    sq_ssd_grad gr = {g[0], g[1], g[2], g[3], g[4], g[5], g[6]};
    return sq_ssd_bwd(d, o, &i, s0 ? s0[0] : NULL, dout, ds1 ? ds1[0] : NULL, &gr, ds0 ? ds0[0] : NULL, NULL);
}

static int step(sq_dims d, const void *o, float **in, float **s, float *out)
{
    sq_ssd_in i = unpack(in);
    return sq_ssd_step(d, o, &i, s[0], out);
}

static void ref(sq_dims d, const void *o, double **in, double **s0, double *out, double **s1)
{
    ref_ssd_in i = {in[0], in[1], in[2], in[3], in[4], in[5], in[6]};
    ref_ssd_fwd(d, ((const sq_ssd_opts *)o)->ngroups, &i, s0 ? s0[0] : NULL, out, s1 ? s1[0] : NULL);
}

static ot_op make_op(sq_dims d, const sq_ssd_opts *o)
{
    int G = o->ngroups;
    ot_op op = {"ssd", 7, 1,
                {{"x", d.H * d.V, 0, 0, 0, 1}, {"B", G * d.K, 0, 0, 0, 1}, {"C", G * d.K, 0, 0, 0, 1},
                 {"dt", d.H, 0, 0, -1, 1}, {"dt_bias", 0, (size_t)d.H, 1, -1, 0.5f},
                 {"A", 0, (size_t)d.H, 1, -2, -0.3f}, {"D", 0, (size_t)d.H, 0, 1, 0.3f}},
                {{"S", (size_t)d.H * d.K * d.V, 1, 0, 0, 0.5f}},
                d.H * d.V, o, fwd, bwd, step, ref};
    return op;
}

static void bad_args(void)
{
    sq_dims d = {1, 4, 2, 2, 2}, d0 = {1, 4, 0, 2, 2};
    float buf[256] = {0}, Apos[2] = {-1, 0.5f}, Aneg[2] = {-1, -1};
    sq_ssd_in in = {buf, buf, buf, buf, buf, Aneg, buf}, inA = {buf, buf, buf, buf, buf, Apos, buf},
              inN = {buf, NULL, buf, buf, buf, Aneg, buf};
    sq_ssd_opts o = sq_ssd_defaults(), g3 = {64, 3}, z = {0, 1};
    sq_ssd_grad g = {buf, buf, buf, buf, buf, buf, buf}, gn = {buf, buf, buf, NULL, buf, buf, buf};
    th_expect_error("fwd: A >= 0", sq_ssd_fwd(d, &o, &inA, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: ngroups 3 does not divide H 2", sq_ssd_fwd(d, &g3, &in, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: chunk 0", sq_ssd_fwd(d, &z, &in, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: NULL B", sq_ssd_fwd(d, &o, &inN, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: H = 0", sq_ssd_fwd(d0, &o, &in, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: NULL y", sq_ssd_fwd(d, &o, &in, NULL, NULL, NULL, NULL), SQ_EINVAL);
    th_expect_error("bwd: NULL ddt", sq_ssd_bwd(d, &o, &in, NULL, buf, NULL, &gn, NULL, NULL), SQ_EINVAL);
    th_expect_error("bwd: NULL dy", sq_ssd_bwd(d, &o, &in, NULL, NULL, NULL, &g, NULL, NULL), SQ_EINVAL);
    th_expect_error("step: T = 4", sq_ssd_step(d, &o, &in, buf, buf), SQ_EINVAL);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "ssd");
    struct { sq_dims d; int L, G; } cases[] = {{{2, 13, 4, 4, 6}, 4, 1}, {{2, 13, 4, 4, 6}, 5, 2},
                                               {{1, 1, 1, 5, 3}, 64, 1}, {{1, 9, 2, 3, 5}, 1, 2},
                                               {{2, 100, 1, 16, 7}, 64, 1}, {{1, 4096, 2, 16, 16}, 64, 1}};
    for (int i = 0; i < 6; i++) {
        sq_ssd_opts o = {cases[i].L, cases[i].G};
        ot_op op = make_op(cases[i].d, &o);
        char label[32];
        snprintf(label, sizeof label, "L%d G%d", cases[i].L, cases[i].G);
        ot_check_fwd(&op, cases[i].d, label, i % 2, 1e-4);
    }
    struct { int L, G; } gc[] = {{1, 1}, {3, 1}, {16, 1}, {3, 2}};
    for (int i = 0; i < 4; i++) {
        sq_dims d = {1, 7, 4, 3, 4};
        sq_ssd_opts o = {gc[i].L, gc[i].G};
        ot_op op = make_op(d, &o);
        char label[32];
        snprintf(label, sizeof label, "L%d G%d", gc[i].L, gc[i].G);
        ot_check_grads(&op, d, label, 2e-4);
    }
    sq_dims dc = {2, 29, 4, 4, 5};
    sq_ssd_opts oc = {6, 2};
    ot_op opc = make_op(dc, &oc);
    ot_check_carry(&opc, dc, 11, "L6 G2");
    bad_args();
    return th_finish();
}
