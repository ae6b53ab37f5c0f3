/* The mLSTM block (DESIGN.md §3, xLSTM-7B style):
 *   h = RMSNorm(x); q, k, v, o = h W_{q,k,v,o}ᵀ; ĩ, f̃ = h W_{i,f}ᵀ + b_{i,f}
 *   x' = x + W_out (HeadNorm(mLSTM(q, k, v, ĩ, f̃)) ⊙ σ(o));  out = MLP(x')
 * Initialisation: projections N(0, 0.02), output projections N(0, 0.02/√(2L)),
 * input-gate bias -10, forget-gate bias 3..6 across heads (xLSTM-7B), norms 1. */
#include "internal.h"

enum { NORM1, WQ, WK, WV, WO, WI, BI, WF, BF, MHNORM, WOUT, MLP };

static int mlstm_block_register(sq_block *b, sq_params *ps, int i)
{
    int D = b->c.D, HK = b->c.H * b->c.K, HV = b->c.H * b->c.V, H = b->c.H, rc;
    if ((rc = blk_add(b, ps, i, "norm1.weight", D, 0, 0)) || (rc = blk_add(b, ps, i, "mlstm.wq", HK, D, 1)) ||
        (rc = blk_add(b, ps, i, "mlstm.wk", HK, D, 1)) || (rc = blk_add(b, ps, i, "mlstm.wv", HV, D, 1)) ||
        (rc = blk_add(b, ps, i, "mlstm.wo", HV, D, 1)) || (rc = blk_add(b, ps, i, "mlstm.wi", H, D, 1)) ||
        (rc = blk_add(b, ps, i, "mlstm.bi", H, 0, 0)) || (rc = blk_add(b, ps, i, "mlstm.wf", H, D, 1)) ||
        (rc = blk_add(b, ps, i, "mlstm.bf", H, 0, 0)) || (rc = blk_add(b, ps, i, "mlstm.norm.weight", HV, 0, 0)) ||
        (rc = blk_add(b, ps, i, "mlstm.out", D, HV, 1)) || (rc = mlp_register(b, ps, i)))
        return rc;
    return SQ_OK;
}

static void mlstm_block_init(const sq_block *b, sq_params *ps, sq_rng *r, float out_std)
{
    blk_const(b, ps, NORM1, 1);
    for (int s = WQ; s <= WO; s++) blk_normal(b, ps, s, r, 0.02f);
    blk_normal(b, ps, WI, r, 0.02f);
    blk_normal(b, ps, WF, r, 0.02f);
    blk_const(b, ps, BI, -10);
    float *bf = blk_w(b, ps, BF);
    for (int h = 0; h < b->c.H; h++) bf[h] = b->c.H > 1 ? 3.0f + 3.0f * h / (b->c.H - 1) : 3.0f;
    blk_const(b, ps, MHNORM, 1);
    blk_normal(b, ps, WOUT, r, out_std);
    mlp_init(b, ps, MLP, r, out_std);
}

/* acts: h [N,D], r1 [N], q, k [N,HK], v, o, m, hn [N,HV], ig, fg [N,H], r2 [N·H], x2 [N,D], MLP's */
typedef struct {
    float *h, *r1, *q, *k, *v, *o, *ig, *fg, *m, *hn, *r2, *x2, *mlp;
} acts_t;

static acts_t carve_acts(const sq_block_cfg *c, size_t N, float *p)
{
    acts_t a;
    size_t HK = (size_t)c->H * c->K, HV = (size_t)c->H * c->V;
    a.h = blk_take(&p, N * c->D);
    a.r1 = blk_take(&p, N);
    a.q = blk_take(&p, N * HK);
    a.k = blk_take(&p, N * HK);
    a.v = blk_take(&p, N * HV);
    a.o = blk_take(&p, N * HV);
    a.ig = blk_take(&p, N * c->H);
    a.fg = blk_take(&p, N * c->H);
    a.m = blk_take(&p, N * HV);
    a.hn = blk_take(&p, N * HV);
    a.r2 = blk_take(&p, N * c->H);
    a.x2 = blk_take(&p, N * c->D);
    a.mlp = p;
    return a;
}

static size_t mlstm_block_act_floats(const sq_block_cfg *c, size_t N)
{
    size_t HK = (size_t)c->H * c->K, HV = (size_t)c->H * c->V;
    return 2 * blk_r16(N * c->D) + blk_r16(N) + 2 * blk_r16(N * HK) + 4 * blk_r16(N * HV) + 3 * blk_r16(N * c->H) +
           mlp_act_floats(c, N);
}

static size_t mlstm_block_work_floats(const sq_backend *be, const sq_block_cfg *c, int B, int T)
{
    size_t N = (size_t)B * T, HK = (size_t)c->H * c->K, HV = (size_t)c->H * c->V;
    sq_mlstm_opts o = {c->chunk, 0};
    size_t tmp = 2 * N * c->D + 2 * N * HK + 4 * N * HV + 2 * N * c->H + 16 * 16;
    size_t mlp = 3 * N * c->F + N * c->D + 16;
    return tmp + (mlp > N * HV ? mlp : N * HV) + be->mlstm_work_floats(blk_op_dims(c, B, T), &o) + 16;
}

/* state: S̄ [B,H,K,V], n̄ [B,H,K], m [B,H] */
static size_t mlstm_block_state_floats(const sq_block_cfg *c, int B, int max_len)
{
    return (size_t)B * c->H * ((size_t)c->K * c->V + c->K + 1);
}

static sq_mlstm_state carried_state(const sq_block_cfg *c, int B, float *p)
{
    size_t S = (size_t)B * c->H * c->K * c->V, n = (size_t)B * c->H * c->K;
    return (sq_mlstm_state){p, p + S, p + S + n};
}

static int mlstm_block_fwd(const sq_backend *be, const sq_block *b, const sq_params *ps, int B, int T, const float *x,
                           float *out, float *acts, float *work, const sq_block_carry *carry)
{
    const sq_block_cfg *c = &b->c;
    int N = B * T, D = c->D, H = c->H, HK = H * c->K, HV = H * c->V, rc;
    acts_t a = carve_acts(c, (size_t)N, acts);
    sq_mlstm_opts o = {c->chunk, 0};
    sq_mlstm_in in = {a.q, a.k, a.v, a.ig, a.fg};
    sq_mlstm_state st = carry ? carried_state(c, B, carry->state) : (sq_mlstm_state){0};
    float *gated = work; /* HeadNorm(m) ⊙ σ(o), after the operator is done with work */
    if ((rc = be->norm_fwd(N, 1, D, 0, SQ_NORM_EPS, x, blk_w(b, ps, NORM1), NULL, a.h, NULL, a.r1)) ||
        (rc = be->linear_fwd(N, D, HK, a.h, blk_w(b, ps, WQ), NULL, a.q)) ||
        (rc = be->linear_fwd(N, D, HK, a.h, blk_w(b, ps, WK), NULL, a.k)) ||
        (rc = be->linear_fwd(N, D, HV, a.h, blk_w(b, ps, WV), NULL, a.v)) ||
        (rc = be->linear_fwd(N, D, HV, a.h, blk_w(b, ps, WO), NULL, a.o)) ||
        (rc = be->linear_fwd(N, D, H, a.h, blk_w(b, ps, WI), blk_w(b, ps, BI), a.ig)) ||
        (rc = be->linear_fwd(N, D, H, a.h, blk_w(b, ps, WF), blk_w(b, ps, BF), a.fg)) ||
        /* a one-token piece with the state carried is the decode step */
        (rc = carry && T == 1 ? be->mlstm_step(blk_op_dims(c, B, T), &o, &in, &st, a.m)
                              : be->mlstm_fwd(blk_op_dims(c, B, T), &o, &in, carry ? &st : NULL, a.m,
                                              carry ? &st : NULL, work)) ||
        (rc = be->norm_fwd(N, H, c->V, 0, SQ_NORM_EPS, a.m, blk_w(b, ps, MHNORM), NULL, a.hn, NULL, a.r2)) ||
        (rc = be->sigmoid_gate_fwd((size_t)N * HV, a.hn, a.o, gated)) || (rc = be->copy((size_t)N * D, x, a.x2)) ||
        (rc = be->linear_fwd_acc(N, HV, D, gated, blk_w(b, ps, WOUT), NULL, a.x2))) /* x2 = x + gated W_outᵀ */
        return rc;
    return mlp_fwd(be, b, ps, MLP, N, a.x2, out, a.mlp);
}

static int mlstm_block_bwd(const sq_backend *be, const sq_block *b, sq_params *ps, int B, int T, const float *x,
                           const float *acts, const float *dout, float *dx, float *work)
{
    const sq_block_cfg *c = &b->c;
    int N = B * T, D = c->D, H = c->H, HK = H * c->K, HV = H * c->V, rc;
    acts_t a = carve_acts(c, (size_t)N, (float *)acts);
    float *p = work;
    float *dx2 = blk_take(&p, (size_t)N * D), *dh = blk_take(&p, (size_t)N * D);
    float *dq = blk_take(&p, (size_t)N * HK), *dk = blk_take(&p, (size_t)N * HK);
    float *dv = blk_take(&p, (size_t)N * HV), *dg = blk_take(&p, (size_t)N * HV), *dm = blk_take(&p, (size_t)N * HV);
    float *gated = blk_take(&p, (size_t)N * HV);
    float *di = blk_take(&p, (size_t)N * H), *df = blk_take(&p, (size_t)N * H);
    float *scratch = p; /* the MLP's work, then the operator's */
    float *dhn = gated, *dog = dm; /* once gated and dm are done with */
    /* x2 = x + gated W_outᵀ, gated = hn ⊙ σ(o) recomputed */
    if ((rc = mlp_bwd(be, b, ps, MLP, N, a.x2, a.mlp, dout, dx2, scratch)) ||
        (rc = be->sigmoid_gate_fwd((size_t)N * HV, a.hn, a.o, gated)) ||
        (rc = be->linear_bwd(N, HV, D, gated, blk_w(b, ps, WOUT), dx2, dg, blk_g(b, ps, WOUT), NULL)) ||
        (rc = be->sigmoid_gate_bwd((size_t)N * HV, a.hn, a.o, dg, dhn, dog)) ||
        (rc = be->norm_bwd(N, H, c->V, 0, a.m, blk_w(b, ps, MHNORM), NULL, a.r2, dhn, dg, blk_g(b, ps, MHNORM), NULL)))
        return rc;
    /* dg now holds d(mLSTM output) */
    sq_mlstm_opts o = {c->chunk, 0};
    sq_mlstm_in in = {a.q, a.k, a.v, a.ig, a.fg};
    sq_mlstm_grad gr = {dq, dk, dv, di, df};
    if ((rc = be->mlstm_bwd(blk_op_dims(c, B, T), &o, &in, NULL, dg, NULL, &gr, NULL, scratch)) ||
        (rc = be->zero((size_t)N * D, dh)) ||
        (rc = be->linear_bwd_acc(N, D, HK, a.h, blk_w(b, ps, WQ), dq, dh, blk_g(b, ps, WQ), NULL)) ||
        (rc = be->linear_bwd_acc(N, D, HK, a.h, blk_w(b, ps, WK), dk, dh, blk_g(b, ps, WK), NULL)) ||
        (rc = be->linear_bwd_acc(N, D, HV, a.h, blk_w(b, ps, WV), dv, dh, blk_g(b, ps, WV), NULL)) ||
        (rc = be->linear_bwd_acc(N, D, HV, a.h, blk_w(b, ps, WO), dog, dh, blk_g(b, ps, WO), NULL)) ||
        (rc = be->linear_bwd_acc(N, D, H, a.h, blk_w(b, ps, WI), di, dh, blk_g(b, ps, WI), blk_g(b, ps, BI))) ||
        (rc = be->linear_bwd_acc(N, D, H, a.h, blk_w(b, ps, WF), df, dh, blk_g(b, ps, WF), blk_g(b, ps, BF))))
        return rc;
    return blk_prenorm_bwd(be, b, ps, NORM1, N, x, a.r1, dh, dx2, dx);
}

const blk_ops mlstm_block_ops = {mlstm_block_register, mlstm_block_init, mlstm_block_act_floats,
                                 mlstm_block_work_floats, mlstm_block_fwd, mlstm_block_bwd,
                                 mlstm_block_state_floats};
