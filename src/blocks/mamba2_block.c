/* The Mamba-2 block (DESIGN.md §3, mamba_ssm's Mamba2 with one group G = 1
 * and no MLP; heads H, head width V = P, state K = N, inner width HV = H·V):
 *   h = RMSNorm(x);  [z, xc, B, C, Δ̃] = h W_inᵀ       (widths HV, HV, K, K, H)
 *   [x', B', C'] = SiLU(conv1d_4([xc, B, C]) + b_conv)  (causal, depthwise)
 *   y = SSD(x', B', C', Δ̃; dt_bias, A = -exp(A_log), D)
 *   g = RMSNorm(y ⊙ SiLU(z)) ⊙ w     (RMSNormGated, norm_before_gate=False,
 *                                     over the whole HV width)
 *   out = x + g W_outᵀ
 * Initialisation (mamba_ssm Mamba2): in_proj N(0, 0.02) (subq's projection
 * std instead of PyTorch's kaiming-uniform), conv weight and bias both
 * U(-1/√4, 1/√4) (PyTorch's Conv1d default, bound 1/√fan_in with fan_in =
 * W = 4 for a depthwise conv), Δ drawn log-uniformly in [1e-3, 1e-1] per head
 * (floored at 1e-4) and dt_bias = Δ + log(-expm1(-Δ)) (the inverse softplus),
 * A uniform in [1, 16] per head and A_log = log A, D = 1, norms 1, out_proj
 * N(0, 0.02/√(2L)). */
#include <math.h>

#include "internal.h"

enum { NORM1, WIN, CONVW, CONVB, DTBIAS, ALOG, DSKIP, GNORM, WOUT };
enum { CONV_W = 4 };

/* Widths of one row: in_proj output P = 2HV + 2K + H, conv channels HV + 2K. */
static int in_width(const sq_block_cfg *c) { return 2 * c->H * c->V + 2 * c->K + c->H; }
static int conv_width(const sq_block_cfg *c) { return c->H * c->V + 2 * c->K; }

static int mamba2_block_register(sq_block *b, sq_params *ps, int i)
{
    int D = b->c.D, H = b->c.H, HV = H * b->c.V, CC = conv_width(&b->c), rc;
    if ((rc = blk_add(b, ps, i, "norm1.weight", D, 0, 0)) ||
        (rc = blk_add(b, ps, i, "mamba.in_proj", in_width(&b->c), D, 1)) ||
        (rc = blk_add(b, ps, i, "mamba.conv.weight", CC, CONV_W, 1)) ||
        (rc = blk_add(b, ps, i, "mamba.conv.bias", CC, 0, 0)) || (rc = blk_add(b, ps, i, "mamba.dt_bias", H, 0, 0)) ||
        (rc = blk_add(b, ps, i, "mamba.A_log", H, 0, 0)) || (rc = blk_add(b, ps, i, "mamba.D", H, 0, 0)) ||
        (rc = blk_add(b, ps, i, "mamba.norm.weight", HV, 0, 0)) || (rc = blk_add(b, ps, i, "mamba.out_proj", D, HV, 1)))
        return rc;
    return SQ_OK;
}

static void mamba2_block_init(const sq_block *b, sq_params *ps, sq_rng *r, float out_std)
{
    float bound = 1.0f / sqrtf((float)CONV_W);
    blk_const(b, ps, NORM1, 1);
    blk_normal(b, ps, WIN, r, 0.02f);
    sq_rng_fill_uniform(r, blk_w(b, ps, CONVW), blk_n(b, ps, CONVW), -bound, bound);
    sq_rng_fill_uniform(r, blk_w(b, ps, CONVB), blk_n(b, ps, CONVB), -bound, bound);
    float *dtb = blk_w(b, ps, DTBIAS), *alog = blk_w(b, ps, ALOG);
    for (int h = 0; h < b->c.H; h++) {
        /* Δ = exp(U(log 1e-3, log 1e-1)), bias = softplus⁻¹(Δ) */
        double dt = exp(log(1e-3) + sq_rng_uniform(r) * (log(1e-1) - log(1e-3)));
        if (dt < 1e-4) dt = 1e-4;
        dtb[h] = (float)(dt + log(-expm1(-dt)));
    }
    for (int h = 0; h < b->c.H; h++) alog[h] = (float)log(1 + 15 * sq_rng_uniform(r)); /* A ~ U(1, 16) */
    blk_const(b, ps, DSKIP, 1);
    blk_const(b, ps, GNORM, 1);
    blk_normal(b, ps, WOUT, r, out_std);
}

/* acts: h [N,D], r1 [N], zx (in_proj output) [N,P], xbc (conv input) and
 * cv (conv output) [N,CC], xs [N,HV], bm, cm [N,K] (after SiLU), dt [N,H],
 * y (SSD output) [N,HV], r2 [N] (the gated norm's rstd) */
typedef struct {
    float *h, *r1, *zx, *xbc, *cv, *xs, *bm, *cm, *dt, *y, *r2;
} acts_t;

static acts_t carve_acts(const sq_block_cfg *c, size_t N, float *p)
{
    acts_t a;
    size_t HV = (size_t)c->H * c->V;
    a.h = blk_take(&p, N * c->D);
    a.r1 = blk_take(&p, N);
    a.zx = blk_take(&p, N * in_width(c));
    a.xbc = blk_take(&p, N * conv_width(c));
    a.cv = blk_take(&p, N * conv_width(c));
    a.xs = blk_take(&p, N * HV);
    a.bm = blk_take(&p, N * c->K);
    a.cm = blk_take(&p, N * c->K);
    a.dt = blk_take(&p, N * c->H);
    a.y = blk_take(&p, N * HV);
    a.r2 = blk_take(&p, N);
    return a;
}

static size_t mamba2_block_act_floats(const sq_block_cfg *c, size_t N)
{
    size_t HV = (size_t)c->H * c->V;
    return blk_r16(N * c->D) + 2 * blk_r16(N) + blk_r16(N * in_width(c)) + 2 * blk_r16(N * conv_width(c)) + 2 * blk_r16(N * HV) +
           2 * blk_r16(N * c->K) + blk_r16(N * c->H);
}

static sq_ssd_opts op_opts(const sq_block_cfg *c) { return (sq_ssd_opts){c->chunk, 1}; }

/* work (fwd and bwd alike): A [H], dt_bias, A, D grads [H], dz [N,HV],
 * gated and dgated [N,HV], dxs [N,HV], dbm, dcm [N,K], ddt [N,H], dcv,
 * dxbc [N,CC], dzx [N,P], dh [N,D], then the operator's (the forward
 * uses A, gated, gn [N,HV], the SiLU output [N,CC], then the operator's) */
static size_t mamba2_block_work_floats(const sq_backend *be, const sq_block_cfg *c, int B, int T)
{
    size_t N = (size_t)B * T, HV = (size_t)c->H * c->V;
    sq_ssd_opts o = op_opts(c);
    return 4 * blk_r16(c->H) + 4 * blk_r16(N * HV) + 2 * blk_r16(N * c->K) + blk_r16(N * c->H) + 2 * blk_r16(N * conv_width(c)) +
           blk_r16(N * in_width(c)) + blk_r16(N * c->D) + be->ssd_work_floats(blk_op_dims(c, B, T), &o) + 16;
}

/* The conv channels all [N, HV+2K] = [xs | bm | cm] (the operator's x, B, C) and back. */
static int split_xbc(const sq_backend *be, int N, int HV, int K, const float *all, float *xs, float *bm, float *cm)
{
    int CC = HV + 2 * K, rc;
    if ((rc = be->copy_cols(N, HV, all, CC, xs, HV)) || (rc = be->copy_cols(N, K, all + HV, CC, bm, K))) return rc;
    return be->copy_cols(N, K, all + HV + K, CC, cm, K);
}

static int join_xbc(const sq_backend *be, int N, int HV, int K, const float *xs, const float *bm, const float *cm,
                    float *all)
{
    int CC = HV + 2 * K, rc;
    if ((rc = be->copy_cols(N, HV, xs, HV, all, CC)) || (rc = be->copy_cols(N, K, bm, K, all + HV, CC))) return rc;
    return be->copy_cols(N, K, cm, K, all + HV + K, CC);
}

/* state: the conv's last inputs [B, CONV_W-1, HV+2K], then the SSD state S [B,H,K,V] */
static size_t mamba2_block_state_floats(const sq_block_cfg *c, int B, int max_len)
{
    return (size_t)B * ((CONV_W - 1) * (size_t)conv_width(c) + (size_t)c->H * c->K * c->V);
}

static int mamba2_block_fwd(const sq_backend *be, const sq_block *b, const sq_params *ps, int B, int T, const float *x,
                            float *out, float *acts, float *work, const sq_block_carry *carry)
{
    const sq_block_cfg *c = &b->c;
    int N = B * T, D = c->D, H = c->H, K = c->K, HV = H * c->V, P = in_width(c), CC = conv_width(c), rc;
    acts_t a = carve_acts(c, (size_t)N, acts);
    float *p = work;
    float *A = blk_take(&p, H), *gated = blk_take(&p, (size_t)N * HV), *gn = blk_take(&p, (size_t)N * HV);
    float *sv = blk_take(&p, (size_t)N * CC), *scratch = p;
    float *zc = gn; /* z (the first HV columns of zx) until gn is written */
    float *cst = carry ? carry->state : NULL, *S = carry ? cst + (size_t)B * (CONV_W - 1) * CC : NULL;
    if ((rc = be->norm_fwd(N, 1, D, 0, SQ_NORM_EPS, x, blk_w(b, ps, NORM1), NULL, a.h, NULL, a.r1)) ||
        (rc = be->linear_fwd(N, D, P, a.h, blk_w(b, ps, WIN), NULL, a.zx)) ||
        (rc = be->copy_cols(N, CC, a.zx + HV, P, a.xbc, CC)) ||
        (rc = be->copy_cols(N, H, a.zx + HV + CC, P, a.dt, H)) ||
        (rc = be->conv1d_fwd(B, T, CC, CONV_W, a.xbc, blk_w(b, ps, CONVW), blk_w(b, ps, CONVB), cst, a.cv, cst)) ||
        /* SiLU, split into the operator's x, B, C */
        (rc = be->silu_fwd((size_t)N * CC, a.cv, sv)) || (rc = split_xbc(be, N, HV, K, sv, a.xs, a.bm, a.cm)) ||
        (rc = be->neg_exp_fwd((size_t)H, blk_w(b, ps, ALOG), A))) /* A = -exp(A_log) */
        return rc;
    sq_ssd_opts o = op_opts(c);
    sq_ssd_in in = {a.xs, a.bm, a.cm, a.dt, blk_w(b, ps, DTBIAS), A, blk_w(b, ps, DSKIP)};
    /* a one-token piece with the state carried is the decode step */
    if ((rc = S && T == 1 ? be->ssd_step(blk_op_dims(c, B, T), &o, &in, S, a.y)
                          : be->ssd_fwd(blk_op_dims(c, B, T), &o, &in, S, a.y, S, scratch)) ||
        /* gated = y ⊙ SiLU(z): SwiGLU with z first */
        (rc = be->copy_cols(N, HV, a.zx, P, zc, HV)) || (rc = be->swiglu_fwd((size_t)N * HV, zc, a.y, gated)) ||
        (rc = be->norm_fwd(N, 1, HV, 0, SQ_NORM_EPS, gated, blk_w(b, ps, GNORM), NULL, gn, NULL, a.r2)))
        return rc;
    if (out != x && (rc = be->copy((size_t)N * D, x, out))) return rc;
    return be->linear_fwd_acc(N, HV, D, gn, blk_w(b, ps, WOUT), NULL, out); /* out = x + gn W_outᵀ */
}

/* out = x + gn W_outᵀ with gn = RMSNorm(gated) ⊙ w, gated = y ⊙ SiLU(z):
 * recomputes z (into zc), gated and gn (its 1/rms again into rr), and
 * takes dout back to dy (d of the SSD output) and dz; accumulates the
 * gradients of W_out and the gated norm's weight. dgn is scratch. */
static int gated_out_bwd(const sq_backend *be, const sq_block *b, sq_params *ps, int N, const acts_t *a,
                         const float *dout, float *zc, float *gated, float *gn, float *rr, float *dgn, float *dgt,
                         float *dy, float *dz)
{
    const sq_block_cfg *c = &b->c;
    int D = c->D, HV = c->H * c->V, P = in_width(c), rc;
    const float *w = blk_w(b, ps, GNORM);
    if ((rc = be->copy_cols(N, HV, a->zx, P, zc, HV)) || (rc = be->swiglu_fwd((size_t)N * HV, zc, a->y, gated)) ||
        (rc = be->norm_fwd(N, 1, HV, 0, SQ_NORM_EPS, gated, w, NULL, gn, NULL, rr)) ||
        (rc = be->linear_bwd(N, HV, D, gn, blk_w(b, ps, WOUT), dout, dgn, blk_g(b, ps, WOUT), NULL)) ||
        (rc = be->norm_bwd(N, 1, HV, 0, gated, w, NULL, a->r2, dgn, dgt, blk_g(b, ps, GNORM), NULL)))
        return rc;
    /* SwiGLU's backward: dz = dgt ⊙ y ⊙ SiLU'(z), dy = dgt ⊙ SiLU(z) */
    return be->swiglu_bwd((size_t)N * HV, zc, a->y, dgt, dz, dy);
}

static int mamba2_block_bwd(const sq_backend *be, const sq_block *b, sq_params *ps, int B, int T, const float *x,
                            const float *acts, const float *dout, float *dx, float *work)
{
    const sq_block_cfg *c = &b->c;
    int N = B * T, D = c->D, H = c->H, K = c->K, HV = H * c->V, P = in_width(c), CC = conv_width(c), rc;
    acts_t a = carve_acts(c, (size_t)N, (float *)acts);
    float *p = work;
    float *A = blk_take(&p, H), *dtb = blk_take(&p, H), *dA = blk_take(&p, H), *dD = blk_take(&p, H);
    float *dz = blk_take(&p, (size_t)N * HV), *gated = blk_take(&p, (size_t)N * HV);
    float *dgt = blk_take(&p, (size_t)N * HV), *dxs = blk_take(&p, (size_t)N * HV);
    float *dbm = blk_take(&p, (size_t)N * K), *dcm = blk_take(&p, (size_t)N * K), *ddt = blk_take(&p, (size_t)N * H);
    float *dcv = blk_take(&p, (size_t)N * CC), *dxbc = blk_take(&p, (size_t)N * CC);
    float *dzx = blk_take(&p, (size_t)N * P), *dh = blk_take(&p, (size_t)N * D), *scratch = p;
    /* z in dcv's room, gn in dzx's, its 1/rms in ddt's, dgn in dxs's, dy in gated's (all free until later) */
    float *dy = gated;
    if ((rc = gated_out_bwd(be, b, ps, N, &a, dout, dcv, gated, dzx, ddt, dxs, dgt, dy, dz))) return rc;
    /* the operator writes its parameter gradients: add them to the model's */
    sq_ssd_opts o = op_opts(c);
    sq_ssd_in in = {a.xs, a.bm, a.cm, a.dt, blk_w(b, ps, DTBIAS), A, blk_w(b, ps, DSKIP)};
    sq_ssd_grad gr = {dxs, dbm, dcm, ddt, dtb, dA, dD};
    if ((rc = be->neg_exp_fwd((size_t)H, blk_w(b, ps, ALOG), A)) ||
        (rc = be->ssd_bwd(blk_op_dims(c, B, T), &o, &in, NULL, dy, NULL, &gr, NULL, scratch)) ||
        (rc = be->add_to((size_t)H, dtb, blk_g(b, ps, DTBIAS))) ||
        (rc = be->neg_exp_bwd((size_t)H, A, dA, blk_g(b, ps, ALOG))) || /* dA_log += dA ⊙ A */
        (rc = be->add_to((size_t)H, dD, blk_g(b, ps, DSKIP))) ||
        /* through the SiLU of the conv output, then the conv */
        (rc = join_xbc(be, N, HV, K, dxs, dbm, dcm, dxbc)) || (rc = be->silu_bwd((size_t)N * CC, a.cv, dxbc, dcv)) ||
        (rc = be->conv1d_bwd(B, T, CC, CONV_W, a.xbc, blk_w(b, ps, CONVW), NULL, dcv, dxbc, blk_g(b, ps, CONVW),
                             blk_g(b, ps, CONVB), NULL)) ||
        /* d(in_proj output) = [dz, dxbc, ddt] */
        (rc = be->copy_cols(N, HV, dz, HV, dzx, P)) || (rc = be->copy_cols(N, CC, dxbc, CC, dzx + HV, P)) ||
        (rc = be->copy_cols(N, H, ddt, H, dzx + HV + CC, P)) ||
        (rc = be->linear_bwd(N, D, P, a.h, blk_w(b, ps, WIN), dzx, dh, blk_g(b, ps, WIN), NULL)))
        return rc;
    return blk_prenorm_bwd(be, b, ps, NORM1, N, x, a.r1, dh, dout, dx);
}

const blk_ops mamba2_block_ops = {mamba2_block_register, mamba2_block_init, mamba2_block_act_floats,
                                  mamba2_block_work_floats, mamba2_block_fwd, mamba2_block_bwd,
                                  mamba2_block_state_floats};
