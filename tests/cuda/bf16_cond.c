/* The CPU side of the scalar-gate operators' bf16 checks: inputs, the CPU's
 * results and the tolerances (bf16_cond.h).
 *
 * Why tolerances from the conditioning: the GPU's bf16 kernels round inside,
 * so their result is, at best, the exact result of inputs moved by about
 * bf16's rounding. Where the exact result moves by more than 1e-2 under such
 * a move, no bf16 kernel can meet 1e-2. So the CPU runs NPERT more times on
 * inputs moved by x(1 + 2⁻⁹u), u ~ U(-1, 1) fresh each time, and a result's
 * tolerance is the larger of BF_TOL (the mLSTM's gradients: BF_TOL_GRAD, in
 * bf16_cond.h with why) and twice the most it moved.
 *
 * Which inputs move is what the kernels round. SSD: x, B and C. The mLSTM's
 * kernels form q·k, the row sums N and the gates in float32 from the exact
 * bf16 inputs; they round the scores Z before Z V (on each term, a move of
 * v), dH = dO / D (a move of dO), and the chunk states (in the terms from
 * earlier chunks, a move of k). So the mLSTM's tolerances come from moves of
 * v and dO, and with big gates (cases 1 and 2) also from moves of q and k.
 * At normal gates q, k moves overstate the kernels' error: they move
 * N = Σ_s Z_js + (state term), a sum that cancels, which the kernels form
 * in float32 (gradients measured ≤ 0.016 on the H200 in 9 runs, where q, k
 * moves gave tolerances of 0.05 to 0.5, and up to 26 before the singular
 * steps below were taken out). Under big gates the states' rounding does
 * reach that far: dq and dk 0.055 and 0.06 on one T = 4096 draw with gates
 * in ±30, where v, dO moves gave 0.02.
 *
 * Moves of q and k also name the steps that are singular at bf16. The
 * mLSTM's normalizer o = h / max(|N|, e^{-m}) has a kink at |N| = e^{-m},
 * where dN jumps between 0 and -(dO·o)/D, and under large input gates N can
 * cancel to almost nothing. A step whose output or dq (which only its own dO
 * reaches) moves by more than 10% under q, k moves is left out of the
 * per-step checks (at most 2 + 15% of the steps may be), and its dO is set
 * to zero before the gradients are taken, on the CPU and the GPU alike:
 * left in, its gradient's jumps spread into every earlier step's dk, dv and
 * gate gradients. The tolerances' q, k moves are the same ones, so no step
 * kept crosses its kink in them. No per-step result's tolerance may exceed
 * BF_TOL_CAP: tests/cuda_host checks that on CI over fresh draws, without
 * a GPU, so those checks cannot turn vacuous. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/ops/mlstm.h"
#include "../../src/ops/ssd.h"
#include "../harness.h"
#include "bf16_cond.h"
#include "cuda_util.h"

enum { NPERT = 6 };

void bt_host(bt_tensor *t, float *h, size_t n, int bf16)
{
    t->h = h, t->n = n, t->bf16 = bf16, t->dev = NULL;
    if (bf16) bf16_round_all(h, n);
}

void bt_host_out(bt_tensor *t, size_t n, int bf16)
{
    t->h = sq_alloc_floats(n), t->n = n, t->bf16 = bf16, t->dev = NULL;
}

double rel_diff(const float *a, const float *ref, size_t n, int w, const unsigned char *skip)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip && skip[i / w]) continue;
        double e = (double)a[i] - ref[i];
        num += e * e, den += (double)ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

double abs_dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += fabs((double)a[i] * b[i]);
    return s;
}

/* Σ|a − ref| / scale: the error of a sum that can cancel, over the size of its terms (scale). */
static double diff_over_terms(const float *a, const float *ref, size_t n, double scale)
{
    double e = 0;
    for (size_t i = 0; i < n; i++) e += fabs((double)a[i] - ref[i]);
    return e / (scale > 1e-30 ? scale : 1);
}

/* Times 1 + 2⁻⁹u, u ~ U(-1, 1) fresh: bf16's own rounding of x, into y. */
static void perturb(float *y, const float *x, size_t n)
{
    float *u = th_randu(n, -1, 1);
    for (size_t i = 0; i < n; i++) y[i] = x[i] * (1 + ldexpf(u[i], -9));
    sq_free(u);
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The 90th percentile of the steps' norms (w values each) of x: a scale of the large steps that a
 * few huge ones do not move. */
static double p90_step(const float *x, size_t steps, int w)
{
    double *n = malloc(steps * sizeof *n), m = 0;
    if (!n) return 0;
    for (size_t st = 0; st < steps; st++) {
        double s = 0;
        for (int e = 0; e < w; e++) s += (double)x[st * w + e] * x[st * w + e];
        n[st] = sqrt(s);
    }
    qsort(n, steps, sizeof *n, by_value);
    m = n[steps * 9 / 10];
    free(n);
    return m;
}

/* Marks the steps (w values each) where a moved from ref by more than 10% of the larger of the
 * step's size and a tenth of the 90th percentile step's (not the RMS: the singular steps' huge
 * values would raise it until no other step counted as moved). */
static void mark_moved(unsigned char *skip, const float *a, const float *ref, size_t steps, int w)
{
    double floor_ = 0.1 * p90_step(ref, steps, w);
    for (size_t st = 0; st < steps; st++) {
        double dd = 0, rr = 0;
        for (int e = 0; e < w; e++) {
            double x = ref[st * w + e], y = a[st * w + e];
            dd += (x - y) * (x - y), rr += x * x;
        }
        if (sqrt(dd) > 0.1 * fmax(sqrt(rr), floor_)) skip[st] = 1;
    }
}

/* ---- mLSTM ---- */

const bt_case mlstm_bf16_cases[] = {
    /* d, chunk, opt, with_state, with_ds1, give_work. T = 1 starts from a given state: from the zero
     * state one step's output is ±v wherever |n̄·q| > e^{-m}, so dq, dk and dĩ are zero up to
     * rounding there and a relative error of them measures nothing. */
    {{2, 200, 3, 16, 24}, 64, 0, 1, 1, 1}, /* normal */
    {{1, 77, 1, 16, 40}, 32, 0, 0, 0, 0},  /* odd: T % chunk != 0, B = H = 1, K != V */
    {{2, 1, 2, 8, 8}, 64, 0, 1, 1, 1},     /* T = 1 */
    {{1, 1, 1, 8, 16}, 64, 0, 1, 0, 0},
    /* the fused forward's shapes (sq_cuda_scalar_fused_bf16): two V tiles, K < 64, T = 64 */
    {{2, 200, 3, 64, 64}, 64, 0, 1, 1, 1},
    {{1, 130, 2, 128, 128}, 64, 1, 1, 0, 0}, /* big gates */
    {{1, 64, 1, 40, 64}, 64, 1, 0, 0, 1},
    {{1, 300, 2, 32, 48}, 64, 2, 0, 0, 0}, /* gates in ±30 */
    {{1, 300, 2, 64, 64}, 64, 2, 1, 1, 0},
    {{1, 100, 2, 64, 192}, 64, 0, 1, 1, 0}, /* fused forward, staged backward (V > 128) */
    {{3, 129, 2, 96, 128}, 64, 0, 1, 0, 1}, /* fused backward: K between the tiles, ragged T */
    {{2, 192, 2, 64, 64}, 64, 3, 0, 0, 0},  /* one step dominates the state, q nearly ⊥ its key */
    {{1, 130, 2, 128, 128}, 64, 3, 0, 1, 0},
    {{1, 100, 2, 32, 48}, 64, 3, 0, 0, 0}, /* the same on the staging path */
};
const int mlstm_bf16_ncases = sizeof mlstm_bf16_cases / sizeof mlstm_bf16_cases[0];
/* T = 4096 with gates in ±30 (test_cuda.c's float32 stability case): the fused forward rounds Z and
 * the states over 64 chunks */
const bt_case mlstm_bf16_long[] = {
    {{1, 4096, 2, 32, 48}, 64, 2, 0, 0, 0},
    {{1, 4096, 2, 64, 64}, 64, 2, 1, 1, 1},
};
const int mlstm_bf16_nlong = sizeof mlstm_bf16_long / sizeof mlstm_bf16_long[0];

/* Case 3's inputs: step 0 of each (b, h) writes with ĩ = 25, every other step with ĩ = -25, and
 * nothing is forgotten (f̃ = 30), so one step dominates the state; every later query is that step's
 * key k_0 made nearly orthogonal to it (q·k_0 = 0.02 |q||k_0|). Then o ≈ v_0 as (S̄ᵀq)/(n̄·q), a
 * ratio of two small numbers that the state's rounding must not spoil. */
static void dominated_inputs(sq_dims d, float *q, const float *k, float *ig, float *fg)
{
    for (int b = 0; b < d.B; b++)
        for (int h = 0; h < d.H; h++) {
            const float *k0 = k + ((size_t)b * d.T * d.H + h) * d.K;
            double kk = 0;
            for (int i = 0; i < d.K; i++) kk += (double)k0[i] * k0[i];
            for (int t = 0; t < d.T; t++) {
                size_t g = ((size_t)b * d.T + t) * d.H + h;
                float *qt = q + g * d.K;
                ig[g] = t == 0 ? 25.0f : -25.0f, fg[g] = 30.0f;
                if (t == 0) continue; /* q_0 stays random: q_0·k_0 ≈ 0 would leave o_0's sign to rounding */
                double qk = 0, qq = 0;
                for (int i = 0; i < d.K; i++) qk += (double)qt[i] * k0[i];
                for (int i = 0; i < d.K; i++) qt[i] -= (float)(qk / kk) * k0[i]; /* q ⊥ k_0 */
                for (int i = 0; i < d.K; i++) qq += (double)qt[i] * qt[i];
                for (int i = 0; i < d.K; i++) qt[i] += (float)(0.02 * sqrt(qq / kk)) * k0[i];
            }
        }
}

/* ĩ ~ U(-3, 3), f̃ ~ U(0, 6) as test_cuda.c's; opt 1: ĩ ~ U(5, 25), f̃ ~ U(-3, 3); opt 2: both ~
 * U(-30, 30) (the stabilizer's cases); opt 3: dominated_inputs. */
void mlstm_host_inputs(const bt_case *c, bt_tensor *x, bt_tensor *r)
{
    sq_dims d = c->d;
    size_t nq = (size_t)d.B * d.T * d.H * d.K, nv = (size_t)d.B * d.T * d.H * d.V, ng = (size_t)d.B * d.T * d.H;
    size_t nS = (size_t)d.B * d.H * d.K * d.V, nn = (size_t)d.B * d.H * d.K, nm = (size_t)d.B * d.H;
    const float ig[4][2] = {{-3, 3}, {5, 25}, {-30, 30}, {0, 0}}, fg[4][2] = {{0, 6}, {-3, 3}, {-30, 30}, {0, 0}};
    float *q = th_randn(nq, 1), *k = th_randn(nq, 1), *igate = th_randu(ng, ig[c->opt][0], ig[c->opt][1]);
    float *fgate = th_randu(ng, fg[c->opt][0], fg[c->opt][1]);
    bf16_round_all(k, nq);
    if (c->opt == 3) dominated_inputs(d, q, k, igate, fgate);
    bt_host(&x[MQ], q, nq, 1), bt_host(&x[MK], k, nq, 1), bt_host(&x[MV], th_randn(nv, 1), nv, 1);
    bt_host(&x[MIG], igate, ng, 0), bt_host(&x[MFG], fgate, ng, 0);
    bt_host(&x[MS0], th_randn(nS, 0.3f), nS, 0), bt_host(&x[MN0], th_randu(nn, 0.1f, 1), nn, 0);
    bt_host(&x[MM0], th_randu(nm, -1, 1), nm, 0), bt_host(&x[MDOUT], th_randn(nv, 1), nv, 1);
    bt_host(&x[MDS1], th_randn(nS, 0.1f), nS, 0), bt_host(&x[MDN1], th_randn(nn, 0.1f), nn, 0);
    const size_t osz[M_NRES] = {nv, nS, nn, nm, nq, nq, nv, ng, ng, nS, nn, nm};
    for (int i = 0; i < M_NRES; i++) bt_host_out(&r[i], osz[i], i == MOUT || i == MDQ || i == MDK || i == MDV);
}

/* Which of q, k, v, dO a move changes. */
enum { MOVE_Q = 1, MOVE_K = 2, MOVE_V = 4, MOVE_DO = 8 };

/* The inputs the moves change: q, k, v, dO (x's own where a move leaves it). */
typedef struct { float *in[4]; } m_move;
static const int m_moved_input[4] = {MQ, MK, MV, MDOUT};

static void m_move_make(m_move *mv, const bt_tensor *x, int which)
{
    for (int i = 0; i < 4; i++) {
        const bt_tensor *t = &x[m_moved_input[i]];
        mv->in[i] = NULL;
        if (!(which >> i & 1)) continue;
        mv->in[i] = sq_alloc_floats(t->n);
        perturb(mv->in[i], t->h, t->n);
    }
}

/* The CPU's forward and backward on x's inputs, those in mv (or NULL) moved, into res. */
static int mlstm_cpu(const bt_case *c, const bt_tensor *x, const m_move *mv, float *const *res)
{
    const float *in4[4];
    for (int i = 0; i < 4; i++) in4[i] = mv && mv->in[i] ? mv->in[i] : x[m_moved_input[i]].h;
    sq_mlstm_opts o = {c->chunk, 0};
    sq_mlstm_in in = {in4[0], in4[1], in4[2], x[MIG].h, x[MFG].h};
    sq_mlstm_state s0 = {x[MS0].h, x[MN0].h, x[MM0].h}, ds1 = {x[MDS1].h, x[MDN1].h, NULL};
    sq_mlstm_state s1 = {res[MS1], res[MN1], res[MM1]}, ds0 = {res[MDS0], res[MDN0], res[MDM0]};
    sq_mlstm_grad g = {res[MDQ], res[MDK], res[MDV], res[MDIG], res[MDFG]};
    int ok = th_expect_ok("cpu mlstm fwd", sq_mlstm_fwd(c->d, &o, &in, c->with_state ? &s0 : NULL, res[MOUT], &s1, NULL));
    return ok && th_expect_ok("cpu mlstm bwd", sq_mlstm_bwd(c->d, &o, &in, c->with_state ? &s0 : NULL, in4[3],
                                                            c->with_ds1 ? &ds1 : NULL, &g, &ds0, NULL))
               ? 0
               : -1;
}

/* The CPU's results into r and NPERT runs on the moved inputs mv into p. */
static int mlstm_runs(const bt_case *c, const bt_tensor *x, bt_tensor *r, const m_move *mv, float *p[NPERT][M_NRES])
{
    float *res[M_NRES];
    for (int i = 0; i < M_NRES; i++) res[i] = r[i].h;
    int rc = mlstm_cpu(c, x, NULL, res);
    for (int t = 0; !rc && t < NPERT; t++) rc = mlstm_cpu(c, x, &mv[t], p[t]);
    return rc;
}

/* The most result i moved over the NPERT runs p, over the steps kept (dm0: over its terms). */
static double m_moved(const bt_case *c, const bt_tensor *r, float *p[NPERT][M_NRES], const m_cond *k, int i)
{
    double most = 0;
    for (int t = 0; t < NPERT; t++) {
        double moved = rel_diff(p[t][i], r[i].h, r[i].n, k->width[i] ? k->width[i] : 1, k->width[i] ? k->skip : NULL);
        if (i == MDM0 && c->with_state) moved = diff_over_terms(p[t][i], r[i].h, r[i].n, k->dm0_scale);
        most = fmax(most, moved);
    }
    return most;
}

/* The CPU again, plain into r and on the moves mv into p, and each tolerance raised to twice the
 * most its result moved (dm0 over its terms, whose size is taken here). */
static int m_raise_tolerances(const bt_case *c, const bt_tensor *x, bt_tensor *r, const m_move *mv,
                              float *p[NPERT][M_NRES], m_cond *k)
{
    int rc = mlstm_runs(c, x, r, mv, p);
    k->dm0_scale = abs_dot(r[MDS0].h, x[MS0].h, r[MDS0].n) + abs_dot(r[MDN0].h, x[MN0].h, r[MDN0].n);
    for (int i = 0; !rc && i < M_NRES; i++) k->tol[i] = fmax(k->tol[i], 2 * m_moved(c, r, p, k, i));
    return rc;
}

int mlstm_reference(const bt_case *c, bt_tensor *x, bt_tensor *r, m_cond *k)
{
    sq_dims d = c->d;
    size_t steps = (size_t)d.B * d.T * d.H;
    const int width[M_NRES] = {d.V, 0, 0, 0, d.K, d.K, d.V, 1, 1, 0, 0, 0};
    memcpy(k->width, width, sizeof width);
    k->skip = calloc(steps, 1), k->nskip = 0;
    float *p[NPERT][M_NRES];
    m_move mv[NPERT], mv2[NPERT];
    for (int t = 0; t < NPERT; t++) {
        for (int i = 0; i < M_NRES; i++) p[t][i] = sq_alloc_floats(r[i].n);
        m_move_make(&mv[t], x, MOVE_Q | MOVE_K);
    }
    int rc = k->skip ? mlstm_runs(c, x, r, mv, p) : -1;
    /* the singular steps: by the output, and (but in case 3, whose dq vanishes) by dq, which only
     * the step's own dO reaches */
    for (int t = 0; !rc && t < NPERT; t++) {
        mark_moved(k->skip, p[t][MOUT], r[MOUT].h, steps, d.V);
        if (c->opt != 3) mark_moved(k->skip, p[t][MDQ], r[MDQ].h, steps, d.K);
    }
    for (size_t st = 0; !rc && st < steps; st++) k->nskip += k->skip[st];
    for (size_t st = 0; !rc && st < steps; st++) /* their dO to zero */
        if (k->skip[st]) memset(x[MDOUT].h + st * d.V, 0, (size_t)d.V * sizeof(float));
    for (int i = 0; i < M_NRES; i++) k->tol[i] = i >= MDQ ? BF_TOL_GRAD : BF_TOL;
    /* with big gates, also what the same q, k moves do once the singular steps' dO is zero */
    if (!rc && (c->opt == 1 || c->opt == 2)) rc = m_raise_tolerances(c, x, r, mv, p, k);
    for (int t = 0; t < NPERT; t++) m_move_make(&mv2[t], x, MOVE_V | MOVE_DO);
    if (!rc) rc = m_raise_tolerances(c, x, r, mv2, p, k);
    for (int t = 0; t < NPERT; t++) {
        for (int i = 0; i < M_NRES; i++) sq_free(p[t][i]);
        for (int i = 0; i < 4; i++) sq_free(mv[t].in[i]), sq_free(mv2[t].in[i]);
    }
    return rc;
}

int m_few_singular(const bt_case *c, const m_cond *k)
{
    return k->nskip * 20 <= 40 + 3 * (size_t)c->d.B * c->d.T * c->d.H;
}

/* ---- Mamba-2 SSD ---- */

/* Inputs as test_cuda.c's: Δ̃ ~ N(0, 1), bias ~ U(-3, 0), A ~ U(-2, -0.1) < 0; opt = ngroups. */
void ssd_host_inputs(const bt_case *c, bt_tensor *x, bt_tensor *r)
{
    sq_dims d = c->d;
    int G = c->opt;
    size_t nx = (size_t)d.B * d.T * d.H * d.V, nb = (size_t)d.B * d.T * G * d.K, ng = (size_t)d.B * d.T * d.H;
    size_t nS = (size_t)d.B * d.H * d.K * d.V, nh = (size_t)d.H;
    bt_host(&x[SX], th_randn(nx, 1), nx, 1), bt_host(&x[SB], th_randn(nb, 1), nb, 1);
    bt_host(&x[SC], th_randn(nb, 1), nb, 1), bt_host(&x[SDT], th_randn(ng, 1), ng, 0);
    bt_host(&x[SDTB], th_randu(nh, -3, 0), nh, 0), bt_host(&x[SA], th_randu(nh, -2, -0.1f), nh, 0);
    bt_host(&x[SD], th_randn(nh, 1), nh, 0), bt_host(&x[SS0], th_randn(nS, 0.3f), nS, 0);
    bt_host(&x[SDY], th_randn(nx, 1), nx, 1), bt_host(&x[SDS1], th_randn(nS, 0.3f), nS, 0);
    const size_t osz[S_NRES] = {nx, nS, nx, nb, nb, ng, nh, nh, nh, nS};
    for (int i = 0; i < S_NRES; i++) bt_host_out(&r[i], osz[i], i == SY || i == SDX || i == SDB || i == SDC);
}

static int ssd_cpu(const bt_case *c, const float *xs, const float *bm, const float *cm, const bt_tensor *x,
                   float *const *res)
{
    sq_ssd_opts o = {c->chunk, c->opt};
    sq_ssd_in in = {xs, bm, cm, x[SDT].h, x[SDTB].h, x[SA].h, x[SD].h};
    sq_ssd_grad g = {res[SDX], res[SDB], res[SDC], res[SDDT], res[SDDTB], res[SDA], res[SDD]};
    const float *S0 = c->with_state ? x[SS0].h : NULL, *dS1 = c->with_ds1 ? x[SDS1].h : NULL;
    int ok = th_expect_ok("cpu ssd fwd", sq_ssd_fwd(c->d, &o, &in, S0, res[SY], res[SS1], NULL));
    return ok && th_expect_ok("cpu ssd bwd", sq_ssd_bwd(c->d, &o, &in, S0, x[SDY].h, dS1, &g, res[SDS0], NULL)) ? 0
                                                                                                                : -1;
}

const bt_case ssd_bf16_cases[] = {
    {{2, 130, 4, 16, 24}, 64, 2, 1, 1, 1}, /* opt: ngroups */
    {{1, 100, 1, 16, 8}, 64, 1, 0, 0, 0},
    {{1, 1, 2, 8, 8}, 64, 2, 1, 1, 1},
    {{2, 1, 4, 8, 16}, 64, 4, 0, 0, 0},
    {{2, 150, 4, 128, 64}, 64, 2, 1, 1, 1}, /* fused forward */
    {{1, 100, 2, 64, 128}, 64, 1, 0, 0, 0},
    {{1, 64, 4, 24, 64}, 64, 4, 1, 0, 1},
    {{2, 191, 4, 128, 128}, 64, 2, 0, 1, 0}, /* fused backward at D = 128, ragged T */
    {{2, 150, 2, 128, 128}, 64, 2, 1, 0, 1}, /* the same with a group per head (dB, dC written by chunk_grads) */
};
const int ssd_bf16_ncases = sizeof ssd_bf16_cases / sizeof ssd_bf16_cases[0];

/* No kink here, but dA, dD and the bias's gradient are sums over every step whose terms cancel:
 * dbias_h = Σ_{b,t} ddt_{b,t,h} is measured over Σ|ddt| and dD_h = Σ dy ⊙ x over Σ|dy ⊙ x| (their
 * terms), as the GPU check measures them. */
int ssd_reference(const bt_case *c, const bt_tensor *x, bt_tensor *r, double *tol, double *terms)
{
    float *px = sq_alloc_floats(x[SX].n), *pb = sq_alloc_floats(x[SB].n), *pc = sq_alloc_floats(x[SC].n), *p[S_NRES];
    float *res[S_NRES];
    for (int i = 0; i < S_NRES; i++) p[i] = sq_alloc_floats(r[i].n), res[i] = r[i].h, tol[i] = BF_TOL, terms[i] = 0;
    int rc = ssd_cpu(c, x[SX].h, x[SB].h, x[SC].h, x, res);
    for (size_t e = 0; e < r[SDDT].n; e++) terms[SDDTB] += fabs((double)r[SDDT].h[e]);
    terms[SDD] = abs_dot(x[SDY].h, x[SX].h, x[SX].n);
    for (int t = 0; !rc && t < NPERT; t++) {
        perturb(px, x[SX].h, x[SX].n), perturb(pb, x[SB].h, x[SB].n), perturb(pc, x[SC].h, x[SC].n);
        rc = ssd_cpu(c, px, pb, pc, x, p);
        for (int i = 0; !rc && i < S_NRES; i++) {
            double moved = terms[i] > 0 ? diff_over_terms(p[i], r[i].h, r[i].n, terms[i])
                                        : rel_diff(p[i], r[i].h, r[i].n, 1, NULL);
            tol[i] = fmax(tol[i], 2 * moved);
        }
    }
    for (int i = 0; i < S_NRES; i++) sq_free(p[i]);
    sq_free(px), sq_free(pb), sq_free(pc);
    return rc;
}
