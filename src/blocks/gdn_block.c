/* The Gated DeltaNet block (DESIGN.md §3, FLA's GatedDeltaNet layer):
 *   h = RMSNorm(x); [q, k, v] = SiLU(conv4([h W_qᵀ, h W_kᵀ, h W_vᵀ]))
 *   α̃ = h W_aᵀ, β̃ = h W_bᵀ (no biases: the operator adds dt_bias)
 *   o = GDN(q, k, v, α̃, β̃; A_log, dt_bias)  (L2 norm of q, k inside the op)
 *   x' = x + (HeadRMSNorm(o) ⊙ SiLU(h W_gᵀ)) W_outᵀ;  out = MLP(x')
 * The short convolution is one causal depthwise conv (width 4, no bias)
 * over the concatenated channels [q | k | v] (2·H·K + H·V of them): the
 * same map as FLA's three per-stream convs, in one tensor "gdn.conv.weight"
 * [2HK+HV, 4] (rows q, then k, then v). The output norm's weight is [V],
 * shared across heads as in FLA's FusedRMSNormGated.
 * Initialisation (FLA GatedDeltaNet): projections N(0, 0.02), output
 * projections N(0, 0.02/√(2L)), conv weights U(±1/√4) (PyTorch's Conv1d
 * default), A ~ U[1, 16] and A_log = log A (FLA draws U[0, 16]; we keep
 * A away from 0), dt log-uniform in [1e-3, 1e-1] (floored at 1e-4) and
 * dt_bias = dt + log(−expm1(−dt)) = softplus⁻¹(dt), norms 1. */
#include <math.h>

#include "internal.h"

enum { NORM1, WQ, WK, WV, CONV, WA, WB, ALOG, DTB, WG, GNORM, WOUT, MLP };
enum { CONV_W = 4 };

static int gdn_block_register(sq_block *b, sq_params *ps, int i)
{
    int D = b->c.D, HK = b->c.H * b->c.K, HV = b->c.H * b->c.V, H = b->c.H, rc;
    if ((rc = blk_add(b, ps, i, "norm1.weight", D, 0, 0)) || (rc = blk_add(b, ps, i, "gdn.wq", HK, D, 1)) ||
        (rc = blk_add(b, ps, i, "gdn.wk", HK, D, 1)) || (rc = blk_add(b, ps, i, "gdn.wv", HV, D, 1)) ||
        (rc = blk_add(b, ps, i, "gdn.conv.weight", 2 * HK + HV, CONV_W, 1)) ||
        (rc = blk_add(b, ps, i, "gdn.wa", H, D, 1)) || (rc = blk_add(b, ps, i, "gdn.wb", H, D, 1)) ||
        (rc = blk_add(b, ps, i, "gdn.A_log", H, 0, 0)) || (rc = blk_add(b, ps, i, "gdn.dt_bias", H, 0, 0)) ||
        (rc = blk_add(b, ps, i, "gdn.wg", HV, D, 1)) || (rc = blk_add(b, ps, i, "gdn.norm.weight", b->c.V, 0, 0)) ||
        (rc = blk_add(b, ps, i, "gdn.out", D, HV, 1)) || (rc = mlp_register(b, ps, i)))
        return rc;
    return SQ_OK;
}

static void gdn_block_init(const sq_block *b, sq_params *ps, sq_rng *r, float out_std)
{
    blk_const(b, ps, NORM1, 1);
    for (int s = WQ; s <= WV; s++) blk_normal(b, ps, s, r, 0.02f);
    sq_rng_fill_uniform(r, blk_w(b, ps, CONV), blk_n(b, ps, CONV), -0.5f, 0.5f); /* ±1/√W */
    blk_normal(b, ps, WA, r, 0.02f);
    blk_normal(b, ps, WB, r, 0.02f);
    float *A_log = blk_w(b, ps, ALOG), *dt_bias = blk_w(b, ps, DTB);
    for (int h = 0; h < b->c.H; h++) A_log[h] = (float)log(1 + 15 * sq_rng_uniform(r)); /* A ~ U[1, 16] */
    for (int h = 0; h < b->c.H; h++) {
        double dt = exp(log(1e-3) + sq_rng_uniform(r) * (log(1e-1) - log(1e-3)));
        if (dt < 1e-4) dt = 1e-4;
        dt_bias[h] = (float)(dt + log(-expm1(-dt))); /* softplus(dt_bias) = dt */
    }
    blk_normal(b, ps, WG, r, 0.02f);
    blk_const(b, ps, GNORM, 1);
    blk_normal(b, ps, WOUT, r, out_std);
    mlp_init(b, ps, MLP, r, out_std);
}

/* acts: h [N,D], r1 [N], pre, cv [N,C] (conv input and output), q, k [N,HK],
 * v, o, gate, on [N,HV] (on = HeadRMSNorm(o)), al, be [N,H], r2 [N·H], x2 [N,D], MLP's */
typedef struct {
    float *h, *r1, *pre, *cv, *q, *k, *v, *o, *gate, *on, *al, *be, *r2, *x2, *mlp;
} acts_t;

static size_t conv_ch(const sq_block_cfg *c) { return 2 * (size_t)c->H * c->K + (size_t)c->H * c->V; }

static acts_t carve_acts(const sq_block_cfg *c, size_t N, float *p)
{
    acts_t a;
    size_t HK = (size_t)c->H * c->K, HV = (size_t)c->H * c->V, C = conv_ch(c);
    a.h = blk_take(&p, N * c->D);
    a.r1 = blk_take(&p, N);
    a.pre = blk_take(&p, N * C);
    a.cv = blk_take(&p, N * C);
    a.q = blk_take(&p, N * HK);
    a.k = blk_take(&p, N * HK);
    a.v = blk_take(&p, N * HV);
    a.o = blk_take(&p, N * HV);
    a.gate = blk_take(&p, N * HV);
    a.on = blk_take(&p, N * HV);
    a.al = blk_take(&p, N * c->H);
    a.be = blk_take(&p, N * c->H);
    a.r2 = blk_take(&p, N * c->H);
    a.x2 = blk_take(&p, N * c->D);
    a.mlp = p;
    return a;
}

static size_t gdn_block_act_floats(const sq_block_cfg *c, size_t N)
{
    size_t HK = (size_t)c->H * c->K, HV = (size_t)c->H * c->V;
    return 2 * blk_r16(N * c->D) + blk_r16(N) + 2 * blk_r16(N * conv_ch(c)) + 2 * blk_r16(N * HK) + 4 * blk_r16(N * HV) +
           3 * blk_r16(N * c->H) + mlp_act_floats(c, N);
}

static sq_gdn_opts op_opts(const sq_block_cfg *c)
{
    sq_gdn_opts o = sq_gdn_defaults(); /* qk_l2norm = 1 */
    o.chunk = c->chunk;
    o.neg_eigval = c->neg_eigval;
    return o;
}

/* The backward's buffers (bwd_carve) and then the MLP's or the operator's work;
 * the forward needs less (one [N,C] buffer, then the operator's, then [N,HV]). */
static size_t gdn_block_work_floats(const sq_backend *be, const sq_block_cfg *c, int B, int T)
{
    size_t N = (size_t)B * T, HK = (size_t)c->H * c->K, HV = (size_t)c->H * c->V;
    sq_gdn_opts o = op_opts(c);
    size_t bufs = 2 * blk_r16(N * c->D) + 5 * blk_r16(N * HV) + 2 * blk_r16(N * HK) + 2 * blk_r16(N * c->H) + 2 * blk_r16(c->H) +
                  2 * blk_r16(N * conv_ch(c));
    size_t mlp = 3 * N * c->F + N * c->D + 16, op = be->gdn_work_floats(blk_op_dims(c, B, T), &o);
    return bufs + (mlp > op ? mlp : op) + 16;
}

/* all [N, C] = [q | k | v] and back */
static int join_qkv(const sq_backend *be, int N, int HK, int HV, const float *q, const float *k, const float *v,
                    float *all)
{
    int C = 2 * HK + HV, rc;
    if ((rc = be->copy_cols(N, HK, q, HK, all, C)) || (rc = be->copy_cols(N, HK, k, HK, all + HK, C))) return rc;
    return be->copy_cols(N, HV, v, HV, all + 2 * HK, C);
}

static int split_qkv(const sq_backend *be, int N, int HK, int HV, const float *all, float *q, float *k, float *v)
{
    int C = 2 * HK + HV, rc;
    if ((rc = be->copy_cols(N, HK, all, C, q, HK)) || (rc = be->copy_cols(N, HK, all + HK, C, k, HK))) return rc;
    return be->copy_cols(N, HV, all + 2 * HK, C, v, HV);
}

/* state: the conv's last inputs [B, CONV_W-1, 2HK+HV], then S [B,H,K,V] */
static size_t gdn_block_state_floats(const sq_block_cfg *c, int B, int max_len)
{
    size_t C = 2 * (size_t)c->H * c->K + (size_t)c->H * c->V;
    return (size_t)B * ((CONV_W - 1) * C + (size_t)c->H * c->K * c->V);
}

static int gdn_block_fwd(const sq_backend *be, const sq_block *b, const sq_params *ps, int B, int T, const float *x,
                         float *out, float *acts, float *work, const sq_block_carry *carry)
{
    const sq_block_cfg *c = &b->c;
    int N = B * T, D = c->D, H = c->H, HK = H * c->K, HV = H * c->V, C = 2 * HK + HV, rc;
    acts_t a = carve_acts(c, (size_t)N, acts);
    sq_gdn_opts o = op_opts(c);
    sq_gdn_in in = {a.q, a.k, a.v, a.al, a.be, blk_w(b, ps, ALOG), blk_w(b, ps, DTB)};
    /* the projections land in q, k, v, are joined for the conv, and the
     * activated conv output is split back into them */
    float *act = work; /* SiLU(conv(pre)) [N,C] */
    float *cst = carry ? carry->state : NULL, *S = carry ? cst + (size_t)B * (CONV_W - 1) * C : NULL;
    if ((rc = be->norm_fwd(N, 1, D, 0, SQ_NORM_EPS, x, blk_w(b, ps, NORM1), NULL, a.h, NULL, a.r1)) ||
        (rc = be->linear_fwd(N, D, HK, a.h, blk_w(b, ps, WQ), NULL, a.q)) ||
        (rc = be->linear_fwd(N, D, HK, a.h, blk_w(b, ps, WK), NULL, a.k)) ||
        (rc = be->linear_fwd(N, D, HV, a.h, blk_w(b, ps, WV), NULL, a.v)) ||
        (rc = join_qkv(be, N, HK, HV, a.q, a.k, a.v, a.pre)) ||
        (rc = be->conv1d_fwd(B, T, C, CONV_W, a.pre, blk_w(b, ps, CONV), NULL, cst, a.cv, cst)) ||
        (rc = be->silu_fwd((size_t)N * C, a.cv, act)) || (rc = split_qkv(be, N, HK, HV, act, a.q, a.k, a.v)))
        return rc;
    /* o = GDN(...); on = RMSNorm over each head's V values, weight [V] shared */
    float *y = work; /* on ⊙ SiLU(gate): SwiGLU with the gate first */
    if ((rc = be->linear_fwd(N, D, H, a.h, blk_w(b, ps, WA), NULL, a.al)) ||
        (rc = be->linear_fwd(N, D, H, a.h, blk_w(b, ps, WB), NULL, a.be)) ||
        /* a one-token piece with the state carried is the decode step */
        (rc = S && T == 1 ? be->gdn_step(blk_op_dims(c, B, T), &o, &in, S, a.o)
                          : be->gdn_fwd(blk_op_dims(c, B, T), &o, &in, S, a.o, S, work)) ||
        (rc = be->norm_fwd(N * H, 1, c->V, 0, SQ_NORM_EPS, a.o, blk_w(b, ps, GNORM), NULL, a.on, NULL, a.r2)) ||
        (rc = be->linear_fwd(N, D, HV, a.h, blk_w(b, ps, WG), NULL, a.gate)) ||
        (rc = be->swiglu_fwd((size_t)N * HV, a.gate, a.on, y)) || (rc = be->copy((size_t)N * D, x, a.x2)) ||
        (rc = be->linear_fwd_acc(N, HV, D, y, blk_w(b, ps, WOUT), NULL, a.x2))) /* x2 = x + y W_outᵀ */
        return rc;
    return mlp_fwd(be, b, ps, MLP, N, a.x2, out, a.mlp);
}

typedef struct {
    float *dx2, *dh, *y, *dy, *dgate, *don, *d_o, *dq, *dk, *dv, *dal, *dbe, *dA, *ddt, *dact, *dpre, *scratch;
} bwd_t;

static bwd_t bwd_carve(const sq_block_cfg *c, size_t N, float *p)
{
    bwd_t w;
    size_t HK = (size_t)c->H * c->K, HV = (size_t)c->H * c->V, C = conv_ch(c);
    w.dx2 = blk_take(&p, N * c->D);
    w.dh = blk_take(&p, N * c->D);
    w.y = blk_take(&p, N * HV);
    w.dy = blk_take(&p, N * HV);
    w.dgate = blk_take(&p, N * HV);
    w.don = w.y; /* y is done with once dy is known */
    w.d_o = blk_take(&p, N * HV);
    w.dq = blk_take(&p, N * HK);
    w.dk = blk_take(&p, N * HK);
    w.dv = blk_take(&p, N * HV);
    w.dal = blk_take(&p, N * c->H);
    w.dbe = blk_take(&p, N * c->H);
    w.dA = blk_take(&p, c->H);
    w.ddt = blk_take(&p, c->H);
    w.dact = blk_take(&p, N * C);
    w.dpre = blk_take(&p, N * C);
    w.scratch = p; /* the MLP's work, then the operator's */
    return w;
}

/* dx2 -> d(HeadRMSNorm input) in w->d_o, d(gate pre-activation) in w->dgate;
 * accumulates the gradients of W_out and the output norm. */
static int gated_out_bwd(const sq_backend *be, const sq_block *b, sq_params *ps, int N, const acts_t *a, bwd_t *w)
{
    const sq_block_cfg *c = &b->c;
    int D = c->D, H = c->H, HV = H * c->V, rc;
    size_t n = (size_t)N * HV;
    float *sg = w->dgate; /* SiLU(gate), until dgate is written */
    /* y = on ⊙ sg recomputed; then don = dy ⊙ sg, ds = dy ⊙ on (into dy), dgate = SiLU'(gate) ds */
    if ((rc = be->silu_fwd(n, a->gate, sg)) || (rc = be->mul(n, a->on, sg, w->y)) ||
        (rc = be->linear_bwd(N, HV, D, w->y, blk_w(b, ps, WOUT), w->dx2, w->dy, blk_g(b, ps, WOUT), NULL)) ||
        (rc = be->mul(n, w->dy, sg, w->don)) || (rc = be->mul(n, w->dy, a->on, w->dy)) ||
        (rc = be->silu_bwd(n, a->gate, w->dy, w->dgate)))
        return rc;
    return be->norm_bwd(N * H, 1, c->V, 0, a->o, blk_w(b, ps, GNORM), NULL, a->r2, w->don, w->d_o,
                        blk_g(b, ps, GNORM), NULL);
}

/* d(operator's q, k, v) -> d(projections) through SiLU and the conv, in dq, dk, dv;
 * accumulates the conv weight's gradient. */
static int conv_bwd(const sq_backend *be, const sq_block *b, sq_params *ps, int B, int T, const acts_t *a, bwd_t *w)
{
    const sq_block_cfg *c = &b->c;
    int N = B * T, HK = c->H * c->K, HV = c->H * c->V, C = 2 * HK + HV, rc;
    if ((rc = join_qkv(be, N, HK, HV, w->dq, w->dk, w->dv, w->dact)) ||
        (rc = be->silu_bwd((size_t)N * C, a->cv, w->dact, w->dpre)) ||
        (rc = be->conv1d_bwd(B, T, C, CONV_W, a->pre, blk_w(b, ps, CONV), NULL, w->dpre, w->dact, blk_g(b, ps, CONV),
                             NULL, NULL)))
        return rc;
    return split_qkv(be, N, HK, HV, w->dact, w->dq, w->dk, w->dv);
}

static int gdn_block_bwd(const sq_backend *be, const sq_block *b, sq_params *ps, int B, int T, const float *x,
                         const float *acts, const float *dout, float *dx, float *work)
{
    const sq_block_cfg *c = &b->c;
    int N = B * T, D = c->D, H = c->H, HK = H * c->K, HV = H * c->V, rc;
    acts_t a = carve_acts(c, (size_t)N, (float *)acts);
    bwd_t w = bwd_carve(c, (size_t)N, work);
    if ((rc = mlp_bwd(be, b, ps, MLP, N, a.x2, a.mlp, dout, w.dx2, w.scratch)) ||
        (rc = gated_out_bwd(be, b, ps, N, &a, &w)))
        return rc;
    /* the operator writes its dA_log, ddt_bias: add them to the model's */
    sq_gdn_opts o = op_opts(c);
    sq_gdn_in in = {a.q, a.k, a.v, a.al, a.be, blk_w(b, ps, ALOG), blk_w(b, ps, DTB)};
    sq_gdn_grad gr = {w.dq, w.dk, w.dv, w.dal, w.dbe, w.dA, w.ddt};
    if ((rc = be->gdn_bwd(blk_op_dims(c, B, T), &o, &in, NULL, w.d_o, NULL, &gr, NULL, w.scratch)) ||
        (rc = be->add_to((size_t)H, w.dA, blk_g(b, ps, ALOG))) ||
        (rc = be->add_to((size_t)H, w.ddt, blk_g(b, ps, DTB))) ||
        (rc = conv_bwd(be, b, ps, B, T, &a, &w)) || (rc = be->zero((size_t)N * D, w.dh)) ||
        (rc = be->linear_bwd_acc(N, D, HK, a.h, blk_w(b, ps, WQ), w.dq, w.dh, blk_g(b, ps, WQ), NULL)) ||
        (rc = be->linear_bwd_acc(N, D, HK, a.h, blk_w(b, ps, WK), w.dk, w.dh, blk_g(b, ps, WK), NULL)) ||
        (rc = be->linear_bwd_acc(N, D, HV, a.h, blk_w(b, ps, WV), w.dv, w.dh, blk_g(b, ps, WV), NULL)) ||
        (rc = be->linear_bwd_acc(N, D, H, a.h, blk_w(b, ps, WA), w.dal, w.dh, blk_g(b, ps, WA), NULL)) ||
        (rc = be->linear_bwd_acc(N, D, H, a.h, blk_w(b, ps, WB), w.dbe, w.dh, blk_g(b, ps, WB), NULL)) ||
        (rc = be->linear_bwd_acc(N, D, HV, a.h, blk_w(b, ps, WG), w.dgate, w.dh, blk_g(b, ps, WG), NULL)))
        return rc;
    return blk_prenorm_bwd(be, b, ps, NORM1, N, x, a.r1, w.dh, w.dx2, dx);
}

const blk_ops gdn_block_ops = {gdn_block_register, gdn_block_init, gdn_block_act_floats,
                               gdn_block_work_floats, gdn_block_fwd, gdn_block_bwd,
                               gdn_block_state_floats};
