/* Linear attention (the scalar machinery with its gates off) through the
 * generic operator checks of optest.h. */
#include <stdio.h>
#include <string.h>

#include "../src/ops/linattn.h"
#include "harness.h"
#include "optest.h"
#include "ref.h"

static int fwd(sq_dims d, const void *o, float **in, float **s0, float *out, float **s1)
{
    return sq_linattn_fwd(d, o, in[0], in[1], in[2], s0 ? s0[0] : NULL, out, s1 ? s1[0] : NULL, NULL);
}

static int bwd(sq_dims d, const void *o, float **in, float **s0, const float *dout, float **ds1, float **g, float **ds0)
{
    return sq_linattn_bwd(d, o, in[0], in[1], in[2], s0 ? s0[0] : NULL, dout, ds1 ? ds1[0] : NULL, g[0], g[1], g[2],
                          ds0 ? ds0[0] : NULL, NULL);
}

static int step(sq_dims d, const void *o, float **in, float **s, float *out)
{
    return sq_linattn_step(d, in[0], in[1], in[2], s[0], out);
}

static void ref(sq_dims d, const void *o, double **in, double **s0, double *out, double **s1)
{
    ref_linattn_fwd(d, in[0], in[1], in[2], s0 ? s0[0] : NULL, out, s1 ? s1[0] : NULL);
}

static ot_op make_op(sq_dims d, const sq_linattn_opts *o)
{
    ot_op op = {"linattn", 3, 1, {{"q", d.H * d.K, 0, 0, 0, 0.5f}, {"k", d.H * d.K, 0, 0, 0, 0.5f},
                {"v", d.H * d.V, 0, 0, 0, 1}}, {{"S", (size_t)d.H * d.K * d.V, 1, 0, 0, 0.5f}},
                d.H * d.V, o, fwd, bwd, step, ref};
    return op;
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "linattn");
    struct { sq_dims d; int L; } cases[] = {{{2, 13, 3, 4, 6}, 4}, {{1, 1, 1, 5, 3}, 64}, {{1, 9, 2, 3, 5}, 1},
                                            {{2, 100, 1, 16, 7}, 64}, {{1, 4096, 2, 16, 16}, 64}};
    for (int i = 0; i < 5; i++) {
        sq_linattn_opts o = {cases[i].L};
        ot_op op = make_op(cases[i].d, &o);
        ot_check_fwd(&op, cases[i].d, "", 1, 1e-4);
    }
    int chunks[] = {1, 3, 16};
    for (int i = 0; i < 3; i++) {
        sq_dims d = {1, 7, 2, 3, 4};
        sq_linattn_opts o = {chunks[i]};
        ot_op op = make_op(d, &o);
        char label[32];
        snprintf(label, sizeof label, "L%d", chunks[i]);
        ot_check_grads(&op, d, label, 2e-4);
    }
    sq_dims dc = {2, 29, 2, 4, 5};
    sq_linattn_opts oc = {6};
    ot_op opc = make_op(dc, &oc);
    ot_check_carry(&opc, dc, 11, "L6");
    sq_dims bad = {1, 4, 1, 2, 2}, d0 = {1, 0, 1, 2, 2};
    float buf[64] = {0};
    sq_linattn_opts z = {0};
    th_expect_error("fwd: NULL q", sq_linattn_fwd(bad, NULL, NULL, buf, buf, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: T = 0", sq_linattn_fwd(d0, NULL, buf, buf, buf, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("fwd: chunk 0", sq_linattn_fwd(bad, &z, buf, buf, buf, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("bwd: NULL dk", sq_linattn_bwd(bad, NULL, buf, buf, buf, NULL, buf, NULL, buf, NULL, buf, NULL, NULL), SQ_EINVAL);
    th_expect_error("step: T = 4", sq_linattn_step(bad, buf, buf, buf, buf, buf), SQ_EINVAL);
    return th_finish();
}
