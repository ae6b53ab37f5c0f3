/* The transformer block (DESIGN.md §3, Llama style):
 *   h = RMSNorm(x); q, k = RoPE(h W_{q,k}ᵀ) (base 10000, positions 0..T-1); v = h W_vᵀ
 *   x' = x + CausalAttention(q, k, v) W_outᵀ;  out = MLP(x')
 * Initialisation (GPT-2 / Llama): projections N(0, 0.02), output projections
 * N(0, 0.02/√(2L)), norms 1. */
#include "internal.h"

enum { NORM1, WQ, WK, WV, WOUT, MLP };

static const float ROPE_BASE = 10000.0f;

static int attn_block_register(sq_block *b, sq_params *ps, int i)
{
    int D = b->c.D, HK = b->c.H * b->c.K, HV = b->c.H * b->c.V, rc;
    if ((rc = blk_add(b, ps, i, "norm1.weight", D, 0, 0)) || (rc = blk_add(b, ps, i, "attn.wq", HK, D, 1)) ||
        (rc = blk_add(b, ps, i, "attn.wk", HK, D, 1)) || (rc = blk_add(b, ps, i, "attn.wv", HV, D, 1)) ||
        (rc = blk_add(b, ps, i, "attn.out", D, HV, 1)) || (rc = mlp_register(b, ps, i)))
        return rc;
    return SQ_OK;
}

static void attn_block_init(const sq_block *b, sq_params *ps, sq_rng *r, float out_std)
{
    blk_const(b, ps, NORM1, 1);
    for (int s = WQ; s <= WV; s++) blk_normal(b, ps, s, r, 0.02f);
    blk_normal(b, ps, WOUT, r, out_std);
    mlp_init(b, ps, MLP, r, out_std);
}

/* acts: h [N,D], r1 [N], q, k [N,HK] (after RoPE), v, o [N,HV], x2 [N,D], MLP's.
 * The attention backward recomputes its softmax from q, k, v. */
typedef struct {
    float *h, *r1, *q, *k, *v, *o, *x2, *mlp;
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
    a.x2 = blk_take(&p, N * c->D);
    a.mlp = p;
    return a;
}

static size_t attn_block_act_floats(const sq_block_cfg *c, size_t N)
{
    size_t HK = (size_t)c->H * c->K, HV = (size_t)c->H * c->V;
    return 2 * blk_r16(N * c->D) + blk_r16(N) + 2 * blk_r16(N * HK) + 2 * blk_r16(N * HV) + mlp_act_floats(c, N);
}

/* work: dx2, dh [N,D], dq, dk [N,HK], do, dv [N,HV], then the larger of the
 * MLP's work (ds, da, dg [N,F], dh [N,D]) and the attention's. */
static size_t attn_block_work_floats(const sq_backend *be, const sq_block_cfg *c, int B, int T)
{
    size_t N = (size_t)B * T, HK = (size_t)c->H * c->K, HV = (size_t)c->H * c->V;
    sq_attn_opts o = {c->chunk};
    size_t own = 2 * blk_r16(N * c->D) + 2 * blk_r16(N * HK) + 2 * blk_r16(N * HV);
    size_t mlp = 3 * N * c->F + N * c->D;
    size_t op = be->attn_work_floats(blk_op_dims(c, B, T), &o);
    return own + (mlp > op ? mlp : op) + 16;
}

/* state: the KV cache, k [B,H,max_len,K] and v [B,H,max_len,V] */
static size_t attn_block_state_floats(const sq_block_cfg *c, int B, int max_len)
{
    return (size_t)B * c->H * max_len * (c->K + c->V);
}

static int attn_block_fwd(const sq_backend *be, const sq_block *b, const sq_params *ps, int B, int T, const float *x,
                          float *out, float *acts, float *work, const sq_block_carry *carry)
{
    const sq_block_cfg *c = &b->c;
    int N = B * T, D = c->D, H = c->H, HK = H * c->K, HV = H * c->V, rc;
    acts_t a = carve_acts(c, (size_t)N, acts);
    sq_attn_opts o = {c->chunk};
    int pos0 = carry ? carry->pos0 : 0;
    sq_attn_cache cache = {0};
    if (carry) {
        cache.k = carry->state;
        cache.v = carry->state + (size_t)B * H * carry->max_len * c->K;
        cache.len = pos0;
        cache.cap = carry->max_len;
    }
    if ((rc = be->norm_fwd(N, 1, D, 0, SQ_NORM_EPS, x, blk_w(b, ps, NORM1), NULL, a.h, NULL, a.r1)) ||
        (rc = be->linear_fwd(N, D, HK, a.h, blk_w(b, ps, WQ), NULL, a.q)) ||
        (rc = be->linear_fwd(N, D, HK, a.h, blk_w(b, ps, WK), NULL, a.k)) ||
        (rc = be->linear_fwd(N, D, HV, a.h, blk_w(b, ps, WV), NULL, a.v)) ||
        (rc = be->rope_fwd(B, T, H, c->K, pos0, ROPE_BASE, a.q, a.q)) || /* in place */
        (rc = be->rope_fwd(B, T, H, c->K, pos0, ROPE_BASE, a.k, a.k)) ||
        /* a one-token piece with the cache carried is the decode step */
        (rc = carry && T == 1 ? be->attn_step(blk_op_dims(c, B, T), &o, a.q, a.k, a.v, &cache, a.o)
                              : be->attn_fwd(blk_op_dims(c, B, T), &o, a.q, a.k, a.v, carry ? &cache : NULL, a.o,
                                             carry ? &cache : NULL, work)) ||
        (rc = be->copy((size_t)N * D, x, a.x2)) ||
        (rc = be->linear_fwd_acc(N, HV, D, a.o, blk_w(b, ps, WOUT), NULL, a.x2))) /* x2 = x + o W_outᵀ */
        return rc;
    return mlp_fwd(be, b, ps, MLP, N, a.x2, out, a.mlp);
}

static int attn_block_bwd(const sq_backend *be, const sq_block *b, sq_params *ps, int B, int T, const float *x,
                          const float *acts, const float *dout, float *dx, float *work)
{
    const sq_block_cfg *c = &b->c;
    int N = B * T, D = c->D, H = c->H, HK = H * c->K, HV = H * c->V, rc;
    acts_t a = carve_acts(c, (size_t)N, (float *)acts);
    float *p = work;
    float *dx2 = blk_take(&p, (size_t)N * D), *dh = blk_take(&p, (size_t)N * D);
    float *dq = blk_take(&p, (size_t)N * HK), *dk = blk_take(&p, (size_t)N * HK);
    float *dout_a = blk_take(&p, (size_t)N * HV), *dv = blk_take(&p, (size_t)N * HV);
    float *scratch = p; /* the MLP's work, then the operator's */
    sq_attn_opts o = {c->chunk};
    if ((rc = mlp_bwd(be, b, ps, MLP, N, a.x2, a.mlp, dout, dx2, scratch)) ||
        /* x2 = x + o W_outᵀ: do = dx2 W_out, dW_out += dx2ᵀ o */
        (rc = be->linear_bwd(N, HV, D, a.o, blk_w(b, ps, WOUT), dx2, dout_a, blk_g(b, ps, WOUT), NULL)) ||
        (rc = be->attn_bwd(blk_op_dims(c, B, T), &o, a.q, a.k, a.v, NULL, dout_a, dq, dk, dv, NULL, scratch)) ||
        /* RoPE is a rotation: its backward rotates back, in place */
        (rc = be->rope_bwd(B, T, H, c->K, 0, ROPE_BASE, dq, dq)) ||
        (rc = be->rope_bwd(B, T, H, c->K, 0, ROPE_BASE, dk, dk)) ||
        (rc = be->zero((size_t)N * D, dh)) ||
        (rc = be->linear_bwd_acc(N, D, HK, a.h, blk_w(b, ps, WQ), dq, dh, blk_g(b, ps, WQ), NULL)) ||
        (rc = be->linear_bwd_acc(N, D, HK, a.h, blk_w(b, ps, WK), dk, dh, blk_g(b, ps, WK), NULL)) ||
        (rc = be->linear_bwd_acc(N, D, HV, a.h, blk_w(b, ps, WV), dv, dh, blk_g(b, ps, WV), NULL)))
        return rc;
    return blk_prenorm_bwd(be, b, ps, NORM1, N, x, a.r1, dh, dx2, dx);
}

const blk_ops attn_block_ops = {attn_block_register, attn_block_init, attn_block_act_floats,
                                attn_block_work_floats, attn_block_fwd, attn_block_bwd,
                                attn_block_state_floats};
