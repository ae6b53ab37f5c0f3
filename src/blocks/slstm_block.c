/* The sLSTM block (DESIGN.md §3, without the optional causal conv):
 *   h = RMSNorm(x); gx = h W_gᵀ  [i, f, z, o pre-activations per head]
 *   x' = x + HeadNorm(sLSTM(gx; R, b));  out = MLP(x')   (MLP width 4/3 D)
 * Needs D = H·K. Initialisation: W_g N(0, 0.02), R N(0, 0.02), forget-gate
 * bias 3..6 across heads, other biases 0, norms 1. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

enum { NORM1, WG, RR, BIAS, HNORM, MLP };

static int slstm_block_register(sq_block *b, sq_params *ps, int i)
{
    int D = b->c.D, H = b->c.H, K = b->c.K, rc;
    if (H * K != D) return sq_fail(SQ_EINVAL, "slstm block: heads × head size (%d × %d) must equal the width %d", H, K, D);
    int64_t rshape[3] = {H, 4 * K, K};
    char name[SQ_PARAM_NAME];
    if ((rc = blk_add(b, ps, i, "norm1.weight", D, 0, 0)) || (rc = blk_add(b, ps, i, "slstm.wg", 4 * D, D, 1)))
        return rc;
    snprintf(name, sizeof name, "blocks.%d.slstm.r", i);
    if ((rc = sq_params_add(ps, name, 3, rshape, 1))) return rc;
    b->p[b->np++] = ps->n - 1;
    if ((rc = blk_add(b, ps, i, "slstm.bias", 4 * D, 0, 0)) || (rc = blk_add(b, ps, i, "slstm.norm.weight", D, 0, 0)) ||
        (rc = mlp_register(b, ps, i)))
        return rc;
    return SQ_OK;
}

static void slstm_block_init(const sq_block *b, sq_params *ps, sq_rng *r, float out_std)
{
    int H = b->c.H, K = b->c.K;
    blk_const(b, ps, NORM1, 1);
    blk_normal(b, ps, WG, r, 0.02f);
    blk_normal(b, ps, RR, r, 0.02f);
    float *bias = blk_w(b, ps, BIAS); /* [H, 4, K], gates i, f, z, o */
    memset(bias, 0, (size_t)H * 4 * K * sizeof(float));
    for (int h = 0; h < H; h++)
        for (int j = 0; j < K; j++) bias[((size_t)h * 4 + 1) * K + j] = H > 1 ? 3.0f + 3.0f * h / (H - 1) : 3.0f;
    blk_const(b, ps, HNORM, 1);
    mlp_init(b, ps, MLP, r, out_std);
}

/* acts: h [N,D], r1 [N], gx [N,4D], hs [N,D], r2 [N·H], x2 [N,D], MLP's */
static size_t slstm_block_act_floats(const sq_block_cfg *c, size_t N)
{
    return 4 * blk_r16(N * c->D) + blk_r16(4 * N * c->D) + blk_r16(N) + blk_r16(N * c->H) + mlp_act_floats(c, N);
}


static size_t slstm_block_work_floats(const sq_backend *be, const sq_block_cfg *c, int B, int T)
{
    size_t N = (size_t)B * T;
    size_t mlp = 3 * N * c->F + N * c->D + 16, op = be->slstm_work_floats(blk_op_dims(c, B, T), NULL);
    size_t grads = blk_r16((size_t)4 * c->D * c->K) + blk_r16((size_t)4 * c->D); /* the operator's dR, dbias */
    return 3 * blk_r16(N * c->D) + blk_r16(4 * N * c->D) + grads + (mlp > op ? mlp : op) + 16;
}

typedef struct {
    float *h, *r1, *gx, *hs, *r2, *x2, *mlp;
} acts_t;

static acts_t carve_acts(const sq_block_cfg *c, size_t N, float *p)
{
    acts_t a;
    a.h = blk_take(&p, N * c->D);
    a.r1 = blk_take(&p, N);
    a.gx = blk_take(&p, 4 * N * c->D);
    a.hs = blk_take(&p, N * c->D);
    a.r2 = blk_take(&p, N * c->H);
    a.x2 = blk_take(&p, N * c->D);
    a.mlp = blk_take(&p, 0);
    return a;
}

/* state: c, n, m, h [B,H,K] each */
static size_t slstm_block_state_floats(const sq_block_cfg *c, int B, int max_len) { return 4 * (size_t)B * c->D; }

static int slstm_block_fwd(const sq_backend *be, const sq_block *b, const sq_params *ps, int B, int T, const float *x,
                           float *out, float *acts, float *work, const sq_block_carry *carry)
{
    const sq_block_cfg *c = &b->c;
    int N = B * T, D = c->D, rc;
    acts_t a = carve_acts(c, (size_t)N, acts);
    sq_slstm_in in = {a.gx, blk_w(b, ps, RR), blk_w(b, ps, BIAS)};
    size_t n = (size_t)B * D;
    float *cs = carry ? carry->state : NULL;
    sq_slstm_state st = {cs, cs + n, cs + 2 * n, cs + 3 * n};
    if ((rc = be->norm_fwd(N, 1, D, 0, SQ_NORM_EPS, x, blk_w(b, ps, NORM1), NULL, a.h, NULL, a.r1)) ||
        (rc = be->linear_fwd(N, D, 4 * D, a.h, blk_w(b, ps, WG), NULL, a.gx)) ||
        /* a one-token piece with the state carried is the decode step */
        (rc = cs && T == 1 ? be->slstm_step(blk_op_dims(c, B, T), NULL, &in, &st, a.hs)
                           : be->slstm_fwd(blk_op_dims(c, B, T), NULL, &in, cs ? &st : NULL, a.hs, cs ? &st : NULL,
                                           work)) ||
        (rc = be->norm_fwd(N, c->H, c->K, 0, SQ_NORM_EPS, a.hs, blk_w(b, ps, HNORM), NULL, a.x2, NULL, a.r2)) ||
        (rc = be->add_to((size_t)N * D, x, a.x2))) /* x' = x + HeadNorm(h) */
        return rc;
    return mlp_fwd(be, b, ps, MLP, N, a.x2, out, a.mlp);
}

static int slstm_block_bwd(const sq_backend *be, const sq_block *b, sq_params *ps, int B, int T, const float *x,
                           const float *acts, const float *dout, float *dx, float *work)
{
    const sq_block_cfg *c = &b->c;
    int N = B * T, D = c->D, rc;
    acts_t a = carve_acts(c, (size_t)N, (float *)acts);
    float *p = work;
    float *dx2 = blk_take(&p, (size_t)N * D), *dhs = blk_take(&p, (size_t)N * D), *dh = blk_take(&p, (size_t)N * D);
    float *gR = blk_g(b, ps, RR), *gB = blk_g(b, ps, BIAS);
    size_t nR = blk_n(b, ps, RR), nB = blk_n(b, ps, BIAS);
    float *dgx = blk_take(&p, 4 * (size_t)N * D), *dR = blk_take(&p, nR), *dbias = blk_take(&p, nB), *scratch = p;
    if ((rc = mlp_bwd(be, b, ps, MLP, N, a.x2, a.mlp, dout, dx2, scratch)) ||
        (rc = be->norm_bwd(N, c->H, c->K, 0, a.hs, blk_w(b, ps, HNORM), NULL, a.r2, dx2, dhs, blk_g(b, ps, HNORM), NULL)))
        return rc;
    /* the operator writes its parameter gradients: add them to the model's */
    sq_slstm_in in = {a.gx, blk_w(b, ps, RR), blk_w(b, ps, BIAS)};
    sq_slstm_grad gr = {dgx, dR, dbias};
    if ((rc = be->slstm_bwd(blk_op_dims(c, B, T), NULL, &in, NULL, dhs, NULL, &gr, NULL, scratch)) ||
        (rc = be->add_to(nR, dR, gR)) || (rc = be->add_to(nB, dbias, gB)) || (rc = be->zero((size_t)N * D, dh)) ||
        (rc = be->linear_bwd_acc(N, D, 4 * D, a.h, blk_w(b, ps, WG), dgx, dh, blk_g(b, ps, WG), NULL)))
        return rc;
    return blk_prenorm_bwd(be, b, ps, NORM1, N, x, a.r1, dh, dx2, dx);
}

const blk_ops slstm_block_ops = {slstm_block_register, slstm_block_init, slstm_block_act_floats,
                                 slstm_block_work_floats, slstm_block_fwd, slstm_block_bwd,
                                 slstm_block_state_floats};
