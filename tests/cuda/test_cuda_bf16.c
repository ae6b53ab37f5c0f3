/* The bf16 entry points of mLSTM, linear attention, Mamba-2 SSD, Gated
 * DeltaNet and sLSTM (src/cuda/bf16.cu) against the CPU operators on the
 * same values: the bf16-carried inputs (q, k, v; x, Bm, Cm; gx; and the
 * output's gradient) are rounded to bf16 on the host first, so that the
 * reference sees exactly what the GPU gets. Every output (bf16 and
 * float32) is poisoned with NaN, so an unwritten element fails; the
 * output, the final state and every gradient must be within a relative
 * error of 1e-2 (the bf16 bound; what remains is the outputs' one
 * bf16 rounding and the float32 operators' own 1e-4).
 *
 * Per operator: a normal shape with the initial state and the final
 * state's gradient given and the caller's workspace (poisoned with NaN);
 * an odd shape (T not a multiple of the chunk, B = 1, H = 1, K != V
 * except for the sLSTM, whose cells need K == V) with the call's own
 * workspace; T = 1 with and without states and workspace. SSD with 2 (and
 * 4) groups, GDN without the in-op L2 norm, the sLSTM's exponential forget
 * gate. Also the conversions bit for bit against the host's rounding (ties,
 * subnormals, overflow, infinities, NaN) and the refusals. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_util.h"

static const double bf_tol = 1e-2;

/* One tensor of a case: host values (an input, rounded to bf16 when the GPU
 * gets it as bf16; or the CPU's result) and its device copy. */
typedef struct {
    float *h;
    size_t n;
    int bf16; /* the device array is sq_bf16 (else float) */
    void *dev;
} bt_tensor;

/* An input: h (a fresh array, now owned by t), rounded in place when bf16, uploaded. */
static void bt_in(bt_tensor *t, float *h, size_t n, int bf16)
{
    t->h = h, t->n = n, t->bf16 = bf16;
    if (bf16) bf16_round_all(h, n);
    t->dev = bf16 ? (void *)to_device_bf16(h, n) : (void *)to_device(h, n);
}

/* A result: host room for the CPU's, a device array of NaN for the GPU's. */
static void bt_out(bt_tensor *t, size_t n, int bf16)
{
    t->h = sq_alloc_floats(n), t->n = n, t->bf16 = bf16;
    t->dev = bf16 ? (void *)device_poisoned_bf16(n) : (void *)device_poisoned(n);
}

static float *dev_f(const bt_tensor *t) { return (float *)t->dev; }
static sq_bf16 *dev_b(const bt_tensor *t) { return (sq_bf16 *)t->dev; }

/* ‖gpu − cpu‖/‖cpu‖ of a result. */
static double bt_err(const bt_tensor *t)
{
    return t->bf16 ? err_vs_bf16(dev_b(t), t->h, t->n) : err_vs(dev_f(t), t->h, t->n);
}

/* Σ|gpu − cpu| / scale of a float32 result that is a sum which can cancel
 * (scale: Σ|its terms|; none: the absolute error). */
static double bt_err_over_terms(const bt_tensor *t, double scale)
{
    float *g = sq_alloc_floats(t->n);
    double err = INFINITY;
    if (th_expect_ok("download", sq_cuda_download(g, dev_f(t), t->n)) && th_all_finite(g, t->n)) {
        err = 0;
        for (size_t i = 0; i < t->n; i++) err += fabs((double)g[i] - t->h[i]);
        err /= scale > 1e-30 ? scale : 1;
    }
    sq_free(g);
    return err;
}

static void bt_free(bt_tensor *t, int n)
{
    for (int i = 0; i < n; i++) sq_cuda_free(t[i].dev), sq_free(t[i].h);
}

/* Σ |a_i b_i|: the size of the terms of a gradient Σ a ⊙ b. */
static double abs_dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += fabs((double)a[i] * b[i]);
    return s;
}

typedef struct {
    sq_dims d;
    int chunk;      /* mLSTM, linear attention, SSD, GDN */
    int opt;        /* SSD: ngroups; GDN: qk_l2norm; sLSTM: exp_forget; mLSTM: big gates (1, 2); else unused */
    int with_state; /* the initial state given (else NULL = zero state) */
    int with_ds1;   /* the final state's gradient given (else NULL) */
    int give_work;  /* the caller's workspace, poisoned with NaN (else NULL: the call allocates) */
} bt_case;

/* ‖a − ref‖/‖ref‖ in double (the absolute error where ref is 0) over the
 * steps (w values each) that skip does not mark (skip NULL: all). */
static double rel_diff(const float *a, const float *ref, size_t n, int w, const unsigned char *skip)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip && skip[i / w]) continue;
        double e = (double)a[i] - ref[i];
        num += e * e, den += (double)ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* A device result on the host as floats (NULL after a failed download). */
static float *bt_gpu(const bt_tensor *t)
{
    float *h = sq_alloc_floats(t->n);
    sq_bf16 *b = t->bf16 ? malloc((t->n + 1) * sizeof *b) : NULL;
    int ok = t->bf16 ? th_check(b != NULL, "host malloc") &&
                           th_expect_ok("download bf16", sq_cuda_download_bf16(b, dev_b(t), t->n))
                     : th_expect_ok("download", sq_cuda_download(h, dev_f(t), t->n));
    for (size_t i = 0; ok && t->bf16 && i < t->n; i++) h[i] = bf16_value(b[i]);
    free(b);
    if (!ok) sq_free(h), h = NULL;
    return h;
}

/* Which steps a check leaves out: skip per step (b, t, h), width per result (its values per step; 0:
 * not per step, checked whole). */
typedef struct {
    const unsigned char *skip;
    const int *width;
} bt_skip;

/* A result's error over the steps kept (whole where not per step); never finite with a NaN anywhere. */
static double bt_err_kept(const bt_tensor *t, const bt_skip *sk, int i)
{
    if (!sk || !sk->width[i]) return bt_err(t);
    float *g = bt_gpu(t);
    double e = g && th_all_finite(g, t->n) ? rel_diff(g, t->h, t->n, sk->width[i], sk->skip) : INFINITY;
    sq_free(g);
    return e;
}

/* Checks every result of a case against the CPU's but those in the bit
 * mask `unchecked`; result `special` (or -1) is measured over `scale` =
 * Σ|its terms| (bt_err_over_terms); result i's tolerance is tol[i] (tol
 * NULL: bf_tol); sk (or NULL) leaves steps out of the per-step results. */
static void bt_check_all(const char *op, const bt_case *c, const bt_tensor *r, const char *const *names, int n,
                         int special, double scale, unsigned unchecked, const double *tol, const bt_skip *sk)
{
    sq_dims d = c->d;
    for (int i = 0; i < n; i++) {
        if (unchecked >> i & 1) continue;
        char what[200];
        snprintf(what, sizeof what, "%s bf16 B%d T%d H%d K%d V%d chunk %d opt %d%s%s%s%s: %s", op, d.B, d.T, d.H,
                 d.K, d.V, c->chunk, c->opt, c->with_state ? " state" : "", c->with_ds1 ? " ds1" : "",
                 c->give_work ? " work" : "",
                 sq_cuda_scalar_fused_bf16_bwd(d, c->chunk) ? " (fused fwd, bwd)"
                 : sq_cuda_scalar_fused_bf16(d, c->chunk)   ? " (fused fwd)"
                                                            : "",
                 names[i]);
        th_close(what, i == special ? bt_err_over_terms(&r[i], scale) : bt_err_kept(&r[i], sk, i), tol ? tol[i] : bf_tol);
    }
}

/* ---- mLSTM --------------------------------------------------------------------------- */

enum { MQ, MK, MV, MIG, MFG, MS0, MN0, MM0, MDOUT, MDS1, MDN1, M_NIN };
enum { MOUT, MS1, MN1, MM1, MDQ, MDK, MDV, MDIG, MDFG, MDS0, MDN0, MDM0, M_NRES };
static const char *const m_names[M_NRES] = {"out", "final S", "final n", "final m", "dq",  "dk",
                                            "dv",  "digate",  "dfgate",  "dS0",     "dn0", "dm0"};

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

/* Inputs as test_cuda.c's: ĩ ~ U(-3, 3), f̃ ~ U(0, 6); with big gates (the
 * stabilizer's cases) 1: ĩ ~ U(5, 25), f̃ ~ U(-3, 3); 2: both ~ U(-30, 30); 3: dominated_inputs. */
static void mlstm_inputs(sq_dims d, int big_gates, bt_tensor *x, bt_tensor *r)
{
    size_t nq = (size_t)d.B * d.T * d.H * d.K, nv = (size_t)d.B * d.T * d.H * d.V, ng = (size_t)d.B * d.T * d.H;
    size_t nS = (size_t)d.B * d.H * d.K * d.V, nn = (size_t)d.B * d.H * d.K, nm = (size_t)d.B * d.H;
    const float ig[4][2] = {{-3, 3}, {5, 25}, {-30, 30}, {0, 0}}, fg[4][2] = {{0, 6}, {-3, 3}, {-30, 30}, {0, 0}};
    float *q = th_randn(nq, 1), *k = th_randn(nq, 1), *igate = th_randu(ng, ig[big_gates][0], ig[big_gates][1]);
    float *fgate = th_randu(ng, fg[big_gates][0], fg[big_gates][1]);
    bf16_round_all(k, nq);
    if (big_gates == 3) dominated_inputs(d, q, k, igate, fgate);
    bt_in(&x[MQ], q, nq, 1), bt_in(&x[MK], k, nq, 1), bt_in(&x[MV], th_randn(nv, 1), nv, 1);
    bt_in(&x[MIG], igate, ng, 0);
    bt_in(&x[MFG], fgate, ng, 0);
    bt_in(&x[MS0], th_randn(nS, 0.3f), nS, 0), bt_in(&x[MN0], th_randu(nn, 0.1f, 1), nn, 0);
    bt_in(&x[MM0], th_randu(nm, -1, 1), nm, 0), bt_in(&x[MDOUT], th_randn(nv, 1), nv, 1);
    bt_in(&x[MDS1], th_randn(nS, 0.1f), nS, 0), bt_in(&x[MDN1], th_randn(nn, 0.1f), nn, 0);
    const size_t osz[M_NRES] = {nv, nS, nn, nm, nq, nq, nv, ng, ng, nS, nn, nm};
    for (int i = 0; i < M_NRES; i++) bt_out(&r[i], osz[i], i == MOUT || i == MDQ || i == MDK || i == MDV);
}

/* Times 1 + 2⁻⁹u, u ~ U(-1, 1) fresh: bf16's own rounding of x, into y. */
static void perturb(float *y, const float *x, size_t n)
{
    float *u = th_randu(n, -1, 1);
    for (size_t i = 0; i < n; i++) y[i] = x[i] * (1 + ldexpf(u[i], -9));
    sq_free(u);
}

/* The mLSTM's conditioning at bf16's precision. o = h / max(|N|, e^{-m})
 * has a kink at |N| = e^{-m}, where the gradient jumps, and where e^{-m} is
 * tiny (large input gates) N can cancel to almost nothing: near such a step
 * the exact result moves by far more than bf16's rounding when the inputs
 * move by that rounding, and a computation that rounds inside to bf16 (the
 * fused kernels) lands anywhere in that range. So the CPU runs NPERT more
 * times on q and k times 1 + 2⁻⁹u (u ~ U(-1, 1) fresh each time: bf16's own
 * rounding of them). A step whose output then moves by more than 10% (of
 * the larger of its size and a tenth of the RMS step) is singular at bf16:
 * it is left out of the per-step results' checks (at most 5% of the steps
 * may be, checked here). Result i's tolerance is the larger of bf_tol and
 * twice the most it moved over the steps kept (dm0 over its terms). Where
 * the reference is well-conditioned that is bf_tol; every check prints its
 * tolerance. */
enum { NPERT = 6 };
static void m_conditioning(const bt_case *c, const bt_tensor *x, const bt_tensor *r, double scale, const int *width,
                           unsigned char *skip, double *tol)
{
    sq_dims d = c->d;
    size_t nq = x[MQ].n, steps = (size_t)d.B * d.T * d.H, nskip = 0;
    float *q = sq_alloc_floats(nq), *k = sq_alloc_floats(nq), *p[NPERT][M_NRES];
    sq_mlstm_opts o = {c->chunk, 0};
    sq_mlstm_in in = {q, k, x[MV].h, x[MIG].h, x[MFG].h};
    sq_mlstm_state s0 = {x[MS0].h, x[MN0].h, x[MM0].h}, ds1 = {x[MDS1].h, x[MDN1].h, NULL};
    double ms = 0;
    for (size_t e = 0; e < r[MOUT].n; e++) ms += (double)r[MOUT].h[e] * r[MOUT].h[e];
    double floor_ = 0.1 * sqrt(ms / steps);
    memset(skip, 0, steps);
    for (int t = 0; t < NPERT; t++) {
        for (int i = 0; i < M_NRES; i++) p[t][i] = sq_alloc_floats(r[i].n);
        sq_mlstm_state s1 = {p[t][MS1], p[t][MN1], p[t][MM1]}, ds0 = {p[t][MDS0], p[t][MDN0], p[t][MDM0]};
        sq_mlstm_grad g = {p[t][MDQ], p[t][MDK], p[t][MDV], p[t][MDIG], p[t][MDFG]};
        perturb(q, x[MQ].h, nq), perturb(k, x[MK].h, nq);
        th_expect_ok("cpu mlstm fwd (perturbed)", sq_mlstm_fwd(d, &o, &in, c->with_state ? &s0 : NULL, p[t][MOUT], &s1, NULL));
        th_expect_ok("cpu mlstm bwd (perturbed)", sq_mlstm_bwd(d, &o, &in, c->with_state ? &s0 : NULL, x[MDOUT].h,
                                                               c->with_ds1 ? &ds1 : NULL, &g, &ds0, NULL));
        for (size_t st = 0; st < steps; st++) {
            double dd = 0, rr = 0;
            for (int e = 0; e < d.V; e++) {
                double a = r[MOUT].h[st * d.V + e], b = p[t][MOUT][st * d.V + e];
                dd += (a - b) * (a - b), rr += a * a;
            }
            if (sqrt(dd) > 0.1 * fmax(sqrt(rr), floor_)) skip[st] = 1;
        }
    }
    for (size_t st = 0; st < steps; st++) nskip += skip[st];
    th_check(nskip * 20 <= steps, "mlstm bf16 B%d T%d H%d opt %d: %zu of %zu steps singular at bf16 (at most 5%%)",
             d.B, d.T, d.H, c->opt, nskip, steps);
    for (int i = 0; i < M_NRES; i++) {
        tol[i] = bf_tol;
        for (int t = 0; t < NPERT; t++) {
            double moved = rel_diff(p[t][i], r[i].h, r[i].n, width[i] ? width[i] : 1, width[i] ? skip : NULL);
            if (i == MDM0 && c->with_state) { /* dm0: over its terms, as it is checked */
                moved = 0;
                for (size_t e = 0; e < r[i].n; e++) moved += fabs((double)p[t][i][e] - r[i].h[e]);
                moved /= scale > 1e-30 ? scale : 1;
            }
            tol[i] = fmax(tol[i], 2 * moved);
        }
    }
    for (int t = 0; t < NPERT; t++)
        for (int i = 0; i < M_NRES; i++) sq_free(p[t][i]);
    sq_free(q), sq_free(k);
}

static void check_mlstm(const bt_case *c)
{
    sq_dims d = c->d;
    bt_tensor x[M_NIN], r[M_NRES];
    mlstm_inputs(d, c->opt, x, r);
    sq_mlstm_opts o = {c->chunk, 0};
    sq_mlstm_in in = {x[MQ].h, x[MK].h, x[MV].h, x[MIG].h, x[MFG].h};
    sq_mlstm_state s0 = {x[MS0].h, x[MN0].h, x[MM0].h}, s1 = {r[MS1].h, r[MN1].h, r[MM1].h};
    sq_mlstm_state ds1 = {x[MDS1].h, x[MDN1].h, NULL}, ds0 = {r[MDS0].h, r[MDN0].h, r[MDM0].h};
    sq_mlstm_grad g = {r[MDQ].h, r[MDK].h, r[MDV].h, r[MDIG].h, r[MDFG].h};
    th_expect_ok("cpu mlstm fwd", sq_mlstm_fwd(d, &o, &in, c->with_state ? &s0 : NULL, r[MOUT].h, &s1, NULL));
    th_expect_ok("cpu mlstm bwd", sq_mlstm_bwd(d, &o, &in, c->with_state ? &s0 : NULL, x[MDOUT].h,
                                               c->with_ds1 ? &ds1 : NULL, &g, &ds0, NULL));

    float *work = c->give_work ? device_poisoned(sq_cuda_mlstm_bf16_work_floats(d, &o)) : NULL;
    sq_mlstm_in_bf16 bin = {dev_b(&x[MQ]), dev_b(&x[MK]), dev_b(&x[MV]), dev_f(&x[MIG]), dev_f(&x[MFG])};
    sq_mlstm_state gs0 = {dev_f(&x[MS0]), dev_f(&x[MN0]), dev_f(&x[MM0])};
    sq_mlstm_state gs1 = {dev_f(&r[MS1]), dev_f(&r[MN1]), dev_f(&r[MM1])};
    sq_mlstm_state gds1 = {dev_f(&x[MDS1]), dev_f(&x[MDN1]), NULL};
    sq_mlstm_state gds0 = {dev_f(&r[MDS0]), dev_f(&r[MDN0]), dev_f(&r[MDM0])};
    sq_mlstm_grad_bf16 bg = {dev_b(&r[MDQ]), dev_b(&r[MDK]), dev_b(&r[MDV]), dev_f(&r[MDIG]), dev_f(&r[MDFG])};
    th_expect_ok("cuda mlstm fwd bf16", sq_cuda_mlstm_fwd_bf16(d, &o, &bin, c->with_state ? &gs0 : NULL,
                                                               dev_b(&r[MOUT]), &gs1, work));
    th_expect_ok("cuda mlstm bwd bf16",
                 sq_cuda_mlstm_bwd_bf16(d, &o, &bin, c->with_state ? &gs0 : NULL, dev_b(&x[MDOUT]),
                                        c->with_ds1 ? &gds1 : NULL, &bg, &gds0, work));
    th_expect_ok("sync", sq_cuda_sync());
    /* dm0 = Σ dS̄0 ⊙ S̄0 + Σ dn̄0 ⊙ n̄0 cancels: measured over the size of its terms */
    double scale = abs_dot(r[MDS0].h, x[MS0].h, r[MDS0].n) + abs_dot(r[MDN0].h, x[MN0].h, r[MDN0].n);
    /* case 3: o ≈ v_0 whatever q, k and the gates are, so their gradients vanish and a relative
     * error of them measures only rounding (float32 against the CPU's float32 too); out is what
     * the case tests (well-conditioned: its tolerance stays bf_tol) */
    unsigned vanish = c->opt == 3 ? 1u << MDQ | 1u << MDK | 1u << MDIG | 1u << MDFG : 0;
    double tol[M_NRES];
    const int width[M_NRES] = {d.V, 0, 0, 0, d.K, d.K, d.V, 1, 1, 0, 0, 0};
    unsigned char *skip = malloc((size_t)d.B * d.T * d.H);
    if (th_check(skip != NULL, "host malloc")) {
        m_conditioning(c, x, r, scale, width, skip, tol);
        bt_skip sk = {skip, width};
        bt_check_all("mlstm", c, r, m_names, M_NRES, c->with_state ? MDM0 : -1, scale, vanish, tol, &sk);
    }
    free(skip);
    sq_cuda_free(work);
    bt_free(x, M_NIN), bt_free(r, M_NRES);
}

/* ---- linear attention ---------------------------------------------------------------- */

enum { LQ, LK, LV, LS0, LDOUT, LDS1, L_NIN };
enum { LOUT, LS1, LDQ, LDK, LDV, LDS0, L_NRES };
static const char *const l_names[L_NRES] = {"out", "final S", "dq", "dk", "dv", "dS0"};

static void check_linattn(const bt_case *c)
{
    sq_dims d = c->d;
    size_t nq = (size_t)d.B * d.T * d.H * d.K, nv = (size_t)d.B * d.T * d.H * d.V, nS = (size_t)d.B * d.H * d.K * d.V;
    bt_tensor x[L_NIN], r[L_NRES];
    bt_in(&x[LQ], th_randn(nq, 1), nq, 1), bt_in(&x[LK], th_randn(nq, 0.3f), nq, 1);
    bt_in(&x[LV], th_randn(nv, 1), nv, 1), bt_in(&x[LS0], th_randn(nS, 1), nS, 0);
    bt_in(&x[LDOUT], th_randn(nv, 1), nv, 1), bt_in(&x[LDS1], th_randn(nS, 1), nS, 0);
    const size_t osz[L_NRES] = {nv, nS, nq, nq, nv, nS};
    for (int i = 0; i < L_NRES; i++) bt_out(&r[i], osz[i], i != LS1 && i != LDS0);
    sq_linattn_opts o = {c->chunk};
    const float *S0 = c->with_state ? x[LS0].h : NULL, *dS1 = c->with_ds1 ? x[LDS1].h : NULL;
    th_expect_ok("cpu linattn fwd", sq_linattn_fwd(d, &o, x[LQ].h, x[LK].h, x[LV].h, S0, r[LOUT].h, r[LS1].h, NULL));
    th_expect_ok("cpu linattn bwd", sq_linattn_bwd(d, &o, x[LQ].h, x[LK].h, x[LV].h, S0, x[LDOUT].h, dS1, r[LDQ].h,
                                                   r[LDK].h, r[LDV].h, r[LDS0].h, NULL));

    float *work = c->give_work ? device_poisoned(sq_cuda_linattn_bf16_work_floats(d, &o)) : NULL;
    const float *gS0 = c->with_state ? dev_f(&x[LS0]) : NULL, *gdS1 = c->with_ds1 ? dev_f(&x[LDS1]) : NULL;
    th_expect_ok("cuda linattn fwd bf16", sq_cuda_linattn_fwd_bf16(d, &o, dev_b(&x[LQ]), dev_b(&x[LK]), dev_b(&x[LV]),
                                                                   gS0, dev_b(&r[LOUT]), dev_f(&r[LS1]), work));
    th_expect_ok("cuda linattn bwd bf16",
                 sq_cuda_linattn_bwd_bf16(d, &o, dev_b(&x[LQ]), dev_b(&x[LK]), dev_b(&x[LV]), gS0, dev_b(&x[LDOUT]),
                                          gdS1, dev_b(&r[LDQ]), dev_b(&r[LDK]), dev_b(&r[LDV]), dev_f(&r[LDS0]), work));
    th_expect_ok("sync", sq_cuda_sync());
    bt_check_all("linattn", c, r, l_names, L_NRES, -1, 0, 0, NULL, NULL);
    sq_cuda_free(work);
    bt_free(x, L_NIN), bt_free(r, L_NRES);
}

/* ---- Mamba-2 SSD --------------------------------------------------------------------- */

enum { SX, SB, SC, SDT, SDTB, SA, SD, SS0, SDY, SDS1, S_NIN };
enum { SY, SS1, SDX, SDB, SDC, SDDT, SDDTB, SDA, SDD, SDS0, S_NRES };
static const char *const s_names[S_NRES] = {"y", "final S", "dx", "dBm", "dCm", "ddt", "ddt_bias", "dA", "dD", "dS0"};

/* Inputs as test_cuda.c's: Δ̃ ~ N(0, 1), bias ~ U(-3, 0), A ~ U(-2, -0.1) < 0. */
static void ssd_inputs(sq_dims d, int G, bt_tensor *x, bt_tensor *r)
{
    size_t nx = (size_t)d.B * d.T * d.H * d.V, nb = (size_t)d.B * d.T * G * d.K, ng = (size_t)d.B * d.T * d.H;
    size_t nS = (size_t)d.B * d.H * d.K * d.V, nh = (size_t)d.H;
    bt_in(&x[SX], th_randn(nx, 1), nx, 1), bt_in(&x[SB], th_randn(nb, 1), nb, 1), bt_in(&x[SC], th_randn(nb, 1), nb, 1);
    bt_in(&x[SDT], th_randn(ng, 1), ng, 0), bt_in(&x[SDTB], th_randu(nh, -3, 0), nh, 0);
    bt_in(&x[SA], th_randu(nh, -2, -0.1f), nh, 0), bt_in(&x[SD], th_randn(nh, 1), nh, 0);
    bt_in(&x[SS0], th_randn(nS, 0.3f), nS, 0), bt_in(&x[SDY], th_randn(nx, 1), nx, 1);
    bt_in(&x[SDS1], th_randn(nS, 0.3f), nS, 0);
    const size_t osz[S_NRES] = {nx, nS, nx, nb, nb, ng, nh, nh, nh, nS};
    for (int i = 0; i < S_NRES; i++) bt_out(&r[i], osz[i], i == SY || i == SDX || i == SDB || i == SDC);
}

/* SSD's tolerances as m_conditioning's (no kink here, but dA, dD and the
 * bias's gradient are sums over every step whose terms cancel): the CPU
 * again NPERT times on x, B and C moved by bf16's rounding. */
static void ssd_conditioning(const bt_case *c, const bt_tensor *x, const bt_tensor *r, double *tol)
{
    sq_dims d = c->d;
    sq_ssd_opts o = {c->chunk, c->opt};
    float *px = sq_alloc_floats(x[SX].n), *pb = sq_alloc_floats(x[SB].n), *pc = sq_alloc_floats(x[SC].n), *p[S_NRES];
    for (int i = 0; i < S_NRES; i++) p[i] = sq_alloc_floats(r[i].n), tol[i] = bf_tol;
    sq_ssd_in in = {px, pb, pc, x[SDT].h, x[SDTB].h, x[SA].h, x[SD].h};
    sq_ssd_grad g = {p[SDX], p[SDB], p[SDC], p[SDDT], p[SDDTB], p[SDA], p[SDD]};
    const float *S0 = c->with_state ? x[SS0].h : NULL, *dS1 = c->with_ds1 ? x[SDS1].h : NULL;
    for (int t = 0; t < NPERT; t++) {
        perturb(px, x[SX].h, x[SX].n), perturb(pb, x[SB].h, x[SB].n), perturb(pc, x[SC].h, x[SC].n);
        th_expect_ok("cpu ssd fwd (perturbed)", sq_ssd_fwd(d, &o, &in, S0, p[SY], p[SS1], NULL));
        th_expect_ok("cpu ssd bwd (perturbed)", sq_ssd_bwd(d, &o, &in, S0, x[SDY].h, dS1, &g, p[SDS0], NULL));
        for (int i = 0; i < S_NRES; i++) tol[i] = fmax(tol[i], 2 * rel_diff(p[i], r[i].h, r[i].n, 1, NULL));
    }
    for (int i = 0; i < S_NRES; i++) sq_free(p[i]);
    sq_free(px), sq_free(pb), sq_free(pc);
}

static void check_ssd(const bt_case *c)
{
    sq_dims d = c->d;
    bt_tensor x[S_NIN], r[S_NRES];
    ssd_inputs(d, c->opt, x, r);
    sq_ssd_opts o = {c->chunk, c->opt};
    sq_ssd_in in = {x[SX].h, x[SB].h, x[SC].h, x[SDT].h, x[SDTB].h, x[SA].h, x[SD].h};
    sq_ssd_grad g = {r[SDX].h, r[SDB].h, r[SDC].h, r[SDDT].h, r[SDDTB].h, r[SDA].h, r[SDD].h};
    const float *S0 = c->with_state ? x[SS0].h : NULL, *dS1 = c->with_ds1 ? x[SDS1].h : NULL;
    th_expect_ok("cpu ssd fwd", sq_ssd_fwd(d, &o, &in, S0, r[SY].h, r[SS1].h, NULL));
    th_expect_ok("cpu ssd bwd", sq_ssd_bwd(d, &o, &in, S0, x[SDY].h, dS1, &g, r[SDS0].h, NULL));

    float *work = c->give_work ? device_poisoned(sq_cuda_ssd_bf16_work_floats(d, &o)) : NULL;
    sq_ssd_in_bf16 bin = {dev_b(&x[SX]), dev_b(&x[SB]), dev_b(&x[SC]), dev_f(&x[SDT]),
                          dev_f(&x[SDTB]), dev_f(&x[SA]), dev_f(&x[SD])};
    sq_ssd_grad_bf16 bg = {dev_b(&r[SDX]), dev_b(&r[SDB]),  dev_b(&r[SDC]), dev_f(&r[SDDT]),
                           dev_f(&r[SDDTB]), dev_f(&r[SDA]), dev_f(&r[SDD])};
    const float *gS0 = c->with_state ? dev_f(&x[SS0]) : NULL, *gdS1 = c->with_ds1 ? dev_f(&x[SDS1]) : NULL;
    th_expect_ok("cuda ssd fwd bf16", sq_cuda_ssd_fwd_bf16(d, &o, &bin, gS0, dev_b(&r[SY]), dev_f(&r[SS1]), work));
    th_expect_ok("cuda ssd bwd bf16",
                 sq_cuda_ssd_bwd_bf16(d, &o, &bin, gS0, dev_b(&x[SDY]), gdS1, &bg, dev_f(&r[SDS0]), work));
    th_expect_ok("sync", sq_cuda_sync());
    double tol[S_NRES];
    ssd_conditioning(c, x, r, tol);
    bt_check_all("ssd", c, r, s_names, S_NRES, -1, 0, 0, tol, NULL);
    sq_cuda_free(work);
    bt_free(x, S_NIN), bt_free(r, S_NRES);
}

/* ---- Gated DeltaNet ------------------------------------------------------------------- */

enum { GQ, GK, GV, GALPHA, GBETA, GALOG, GDTB, GS0, GDOUT, GDS1, G_NIN };
enum { GOUT, GS1, GDQ, GDK, GDV, GDALPHA, GDBETA, GDALOG, GDDTB, GDS0, G_NRES };
static const char *const g_names[G_NRES] = {"out",    "final S", "dq",     "dk",       "dv",
                                            "dalpha", "dbeta",   "dA_log", "ddt_bias", "dS0"};

/* Inputs as test_cuda_gdn.c's: α̃ ~ N(-2, 1); without the in-op L2 norm a
 * small k (std 0.4/K) keeps the recurrence contracting. */
static void gdn_inputs(sq_dims d, int l2, bt_tensor *x, bt_tensor *r)
{
    size_t nq = (size_t)d.B * d.T * d.H * d.K, nv = (size_t)d.B * d.T * d.H * d.V, ng = (size_t)d.B * d.T * d.H;
    size_t nS = (size_t)d.B * d.H * d.K * d.V, nh = (size_t)d.H;
    float *alpha = th_randn(ng, 1);
    for (size_t i = 0; i < ng; i++) alpha[i] -= 2;
    bt_in(&x[GQ], th_randn(nq, 1), nq, 1), bt_in(&x[GK], th_randn(nq, l2 ? 1.0f : 0.4f / (float)d.K), nq, 1);
    bt_in(&x[GV], th_randn(nv, 1), nv, 1), bt_in(&x[GALPHA], alpha, ng, 0), bt_in(&x[GBETA], th_randn(ng, 1), ng, 0);
    bt_in(&x[GALOG], th_randu(nh, -1, 1), nh, 0), bt_in(&x[GDTB], th_randu(nh, -1, 0.5f), nh, 0);
    bt_in(&x[GS0], th_randn(nS, 0.5f), nS, 0), bt_in(&x[GDOUT], th_randn(nv, 1), nv, 1);
    bt_in(&x[GDS1], th_randn(nS, 0.5f), nS, 0);
    const size_t osz[G_NRES] = {nv, nS, nq, nq, nv, ng, ng, nh, nh, nS};
    for (int i = 0; i < G_NRES; i++) bt_out(&r[i], osz[i], i == GOUT || i == GDQ || i == GDK || i == GDV);
}

static void check_gdn(const bt_case *c)
{
    sq_dims d = c->d;
    bt_tensor x[G_NIN], r[G_NRES];
    gdn_inputs(d, c->opt, x, r);
    sq_gdn_opts o = {c->chunk, 0, c->opt};
    sq_gdn_in in = {x[GQ].h, x[GK].h, x[GV].h, x[GALPHA].h, x[GBETA].h, x[GALOG].h, x[GDTB].h};
    sq_gdn_grad g = {r[GDQ].h, r[GDK].h, r[GDV].h, r[GDALPHA].h, r[GDBETA].h, r[GDALOG].h, r[GDDTB].h};
    const float *S0 = c->with_state ? x[GS0].h : NULL, *dS1 = c->with_ds1 ? x[GDS1].h : NULL;
    th_expect_ok("cpu gdn fwd", sq_gdn_fwd(d, &o, &in, S0, r[GOUT].h, r[GS1].h, NULL));
    th_expect_ok("cpu gdn bwd", sq_gdn_bwd(d, &o, &in, S0, x[GDOUT].h, dS1, &g, r[GDS0].h, NULL));

    float *work = c->give_work ? device_poisoned(sq_cuda_gdn_bf16_work_floats(d, &o)) : NULL;
    sq_gdn_in_bf16 bin = {dev_b(&x[GQ]),     dev_b(&x[GK]),    dev_b(&x[GV]),  dev_f(&x[GALPHA]),
                          dev_f(&x[GBETA]), dev_f(&x[GALOG]), dev_f(&x[GDTB])};
    sq_gdn_grad_bf16 bg = {dev_b(&r[GDQ]),     dev_b(&r[GDK]),    dev_b(&r[GDV]),  dev_f(&r[GDALPHA]),
                           dev_f(&r[GDBETA]), dev_f(&r[GDALOG]), dev_f(&r[GDDTB])};
    const float *gS0 = c->with_state ? dev_f(&x[GS0]) : NULL, *gdS1 = c->with_ds1 ? dev_f(&x[GDS1]) : NULL;
    th_expect_ok("cuda gdn fwd bf16", sq_cuda_gdn_fwd_bf16(d, &o, &bin, gS0, dev_b(&r[GOUT]), dev_f(&r[GS1]), work));
    th_expect_ok("cuda gdn bwd bf16",
                 sq_cuda_gdn_bwd_bf16(d, &o, &bin, gS0, dev_b(&x[GDOUT]), gdS1, &bg, dev_f(&r[GDS0]), work));
    th_expect_ok("sync", sq_cuda_sync());
    /* ddt_bias_h = Σ_{b,t} dalpha_{b,t,h} can cancel: measured over Σ|dalpha| */
    double scale = 0;
    for (size_t i = 0; i < r[GDALPHA].n; i++) scale += fabs((double)r[GDALPHA].h[i]);
    bt_check_all("gdn", c, r, g_names, G_NRES, GDDTB, scale, 0, NULL, NULL);
    sq_cuda_free(work);
    bt_free(x, G_NIN), bt_free(r, G_NRES);
}

/* ---- sLSTM --------------------------------------------------------------------------- */

enum { TGX, TR, TBIAS, TC0, TN0, TM0, TH0, TDOUT, TDC1, TDN1, TDH1, T_NIN };
enum { TOUT, TC1, TN1, TM1, TH1, TDGX, TDR, TDBIAS, TDC0, TDN0, TDM0, TDH0, T_NRES };
static const char *const t_names[T_NRES] = {"out", "final c", "final n", "final m", "final h", "dgx",
                                            "dR",  "dbias",   "ds0 c",   "ds0 n",   "ds0 m",   "ds0 h"};

/* Inputs as test_cuda_slstm.c's: gx ~ N(0, 1) (forget rows shifted by -1
 * with the exponential forget gate, before the rounding), R ~ N(0, 1/K). */
static void slstm_inputs(sq_dims d, int ef, bt_tensor *x, bt_tensor *r)
{
    size_t F = 4 * (size_t)d.K, rows = (size_t)d.B * d.T * d.H, ngx = rows * F, ns = (size_t)d.B * d.H * d.K;
    size_t no = rows * d.K, nR = (size_t)d.H * F * d.K, nb = (size_t)d.H * F;
    float *gx = th_randn(ngx, 1);
    for (size_t row = 0; ef && row < rows; row++)
        for (int j = 0; j < d.K; j++) gx[row * F + d.K + j] -= 1.0f;
    bt_in(&x[TGX], gx, ngx, 1), bt_in(&x[TR], th_randn(nR, 1 / sqrtf((float)d.K)), nR, 0);
    bt_in(&x[TBIAS], th_randn(nb, 0.3f), nb, 0), bt_in(&x[TC0], th_randn(ns, 1), ns, 0);
    bt_in(&x[TN0], th_randu(ns, 0.5f, 2), ns, 0), bt_in(&x[TM0], th_randu(ns, -1, 1), ns, 0);
    bt_in(&x[TH0], th_randn(ns, 0.5f), ns, 0), bt_in(&x[TDOUT], th_randn(no, 1), no, 1);
    bt_in(&x[TDC1], th_randn(ns, 0.5f), ns, 0), bt_in(&x[TDN1], th_randn(ns, 0.5f), ns, 0);
    bt_in(&x[TDH1], th_randn(ns, 0.5f), ns, 0);
    const size_t osz[T_NRES] = {no, ns, ns, ns, ns, ngx, nR, nb, ns, ns, ns, ns};
    for (int i = 0; i < T_NRES; i++) bt_out(&r[i], osz[i], i == TOUT || i == TDGX);
}

static void check_slstm(const bt_case *c)
{
    sq_dims d = c->d;
    bt_tensor x[T_NIN], r[T_NRES];
    slstm_inputs(d, c->opt, x, r);
    sq_slstm_opts o = {c->opt};
    sq_slstm_in in = {x[TGX].h, x[TR].h, x[TBIAS].h};
    sq_slstm_state s0 = {x[TC0].h, x[TN0].h, x[TM0].h, x[TH0].h}, s1 = {r[TC1].h, r[TN1].h, r[TM1].h, r[TH1].h};
    sq_slstm_state ds1 = {x[TDC1].h, x[TDN1].h, NULL, x[TDH1].h}, ds0 = {r[TDC0].h, r[TDN0].h, r[TDM0].h, r[TDH0].h};
    sq_slstm_grad g = {r[TDGX].h, r[TDR].h, r[TDBIAS].h};
    th_expect_ok("cpu slstm fwd", sq_slstm_fwd(d, &o, &in, c->with_state ? &s0 : NULL, r[TOUT].h, &s1, NULL));
    th_expect_ok("cpu slstm bwd", sq_slstm_bwd(d, &o, &in, c->with_state ? &s0 : NULL, x[TDOUT].h,
                                               c->with_ds1 ? &ds1 : NULL, &g, &ds0, NULL));

    float *work = c->give_work ? device_poisoned(sq_cuda_slstm_bf16_work_floats(d, &o)) : NULL;
    sq_slstm_in_bf16 bin = {dev_b(&x[TGX]), dev_f(&x[TR]), dev_f(&x[TBIAS])};
    sq_slstm_state gs0 = {dev_f(&x[TC0]), dev_f(&x[TN0]), dev_f(&x[TM0]), dev_f(&x[TH0])};
    sq_slstm_state gs1 = {dev_f(&r[TC1]), dev_f(&r[TN1]), dev_f(&r[TM1]), dev_f(&r[TH1])};
    sq_slstm_state gds1 = {dev_f(&x[TDC1]), dev_f(&x[TDN1]), NULL, dev_f(&x[TDH1])};
    sq_slstm_state gds0 = {dev_f(&r[TDC0]), dev_f(&r[TDN0]), dev_f(&r[TDM0]), dev_f(&r[TDH0])};
    sq_slstm_grad_bf16 bg = {dev_b(&r[TDGX]), dev_f(&r[TDR]), dev_f(&r[TDBIAS])};
    th_expect_ok("cuda slstm fwd bf16", sq_cuda_slstm_fwd_bf16(d, &o, &bin, c->with_state ? &gs0 : NULL,
                                                               dev_b(&r[TOUT]), &gs1, work));
    th_expect_ok("cuda slstm bwd bf16",
                 sq_cuda_slstm_bwd_bf16(d, &o, &bin, c->with_state ? &gs0 : NULL, dev_b(&x[TDOUT]),
                                        c->with_ds1 ? &gds1 : NULL, &bg, &gds0, work));
    th_expect_ok("sync", sq_cuda_sync());
    /* ds0's m = dc0·c0 + dn0·n0 can cancel: measured over Σ|terms| */
    double scale = abs_dot(r[TDC0].h, x[TC0].h, r[TDC0].n) + abs_dot(r[TDN0].h, x[TN0].h, r[TDN0].n);
    bt_check_all("slstm", c, r, t_names, T_NRES, c->with_state ? TDM0 : -1, scale, 0, NULL, NULL);
    sq_cuda_free(work);
    bt_free(x, T_NIN), bt_free(r, T_NRES);
}

/* ---- conversions ---------------------------------------------------------------------- */

/* sq_cuda_to_bf16 bit for bit against the host's rounding (nearest even)
 * and sq_cuda_from_bf16 exact, on special values and random ones of every
 * magnitude; n not a multiple of the block. */
static void check_conversions(void)
{
    const float special[] = {0.0f, -0.0f, 1.0f, -1.0f,
                             1.0f + 0x1p-8f,           /* a tie: to 1 (even) */
                             1.0f + 3 * 0x1p-8f,       /* a tie: up to 1 + 2^-6 (even) */
                             1.0f + 0x1p-8f + 0x1p-20f, /* above the tie: up */
                             -(1.0f + 0x1p-8f), FLT_MAX, -FLT_MAX, 3.3895314e38f, FLT_MIN, 1e-40f, -3e-42f,
                             INFINITY, -INFINITY, NAN};
    size_t ns = sizeof special / sizeof special[0], n = 10007;
    float *h = th_randn(n, 1), *mag = th_randu(n, -40, 38);
    for (size_t i = 0; i < n; i++) h[i] = i < ns ? special[i] : h[i] * powf(10, mag[i]);
    sq_bf16 *bits = malloc(n * sizeof *bits), *gpu = malloc(n * sizeof *gpu), *db = NULL;
    float *back = sq_alloc_floats(n), *df = to_device(h, n), *dw = device_poisoned(n);
    if (th_check(bits && gpu, "host malloc of %zu bf16", n) &&
        th_expect_ok("cuda malloc bf16", sq_cuda_malloc_bf16(&db, n)) &&
        th_expect_ok("cuda to bf16", sq_cuda_to_bf16(db, df, n)) &&
        th_expect_ok("download bf16", sq_cuda_download_bf16(gpu, db, n)) &&
        th_expect_ok("cuda from bf16", sq_cuda_from_bf16(dw, db, n)) &&
        th_expect_ok("download", sq_cuda_download(back, dw, n))) {
        size_t bad_round = 0, bad_widen = 0;
        for (size_t i = 0; i < n; i++) {
            float wv = bf16_value(gpu[i]);
            int nan = isnan(h[i]);
            if (nan ? !isnan(wv) : gpu[i] != bf16_bits(h[i])) bad_round++;
            if (nan ? !isnan(back[i]) : memcmp(&back[i], &wv, sizeof wv) != 0) bad_widen++;
        }
        th_check(bad_round == 0, "bf16 conversion: %zu of %zu values rounded unlike the host's nearest even",
                 bad_round, n);
        th_check(bad_widen == 0, "bf16 conversion: %zu of %zu values not widened exactly", bad_widen, n);
    }
    free(bits), free(gpu);
    sq_free(h), sq_free(mag), sq_free(back);
    sq_cuda_free(df), sq_cuda_free(dw), sq_cuda_free(db);
}

/* ---- refusals --------------------------------------------------------------------------- */

static void check_refusals(void)
{
    sq_dims d = {1, 4, 1, 4, 4}, t0 = {1, 0, 1, 4, 4}, h4 = {1, 4, 4, 4, 4};
    float *f = NULL;
    sq_bf16 *b = NULL;
    th_expect_ok("cuda malloc", sq_cuda_malloc(&f, 256));
    th_expect_ok("cuda malloc bf16", sq_cuda_malloc_bf16(&b, 1024));
    sq_mlstm_in_bf16 mi = {b, b, b, f, f}, mnoq = {NULL, b, b, f, f}, mnoi = {b, b, b, NULL, f};
    sq_mlstm_grad_bf16 mg = {b, b, b, f, f};
    sq_mlstm_opts zero = {0, 0};
    th_expect_error("mlstm fwd bf16: NULL q", sq_cuda_mlstm_fwd_bf16(d, NULL, &mnoq, NULL, b, NULL, NULL), SQ_EINVAL);
    th_expect_error("mlstm fwd bf16: NULL in", sq_cuda_mlstm_fwd_bf16(d, NULL, NULL, NULL, b, NULL, NULL), SQ_EINVAL);
    th_expect_error("mlstm fwd bf16: NULL out", sq_cuda_mlstm_fwd_bf16(d, NULL, &mi, NULL, NULL, NULL, NULL),
                    SQ_EINVAL);
    th_expect_error("mlstm fwd bf16: T = 0", sq_cuda_mlstm_fwd_bf16(t0, NULL, &mi, NULL, b, NULL, NULL), SQ_EINVAL);
    th_expect_error("mlstm fwd bf16: chunk 0", sq_cuda_mlstm_fwd_bf16(d, &zero, &mi, NULL, b, NULL, NULL), SQ_EINVAL);
    th_expect_error("mlstm fwd bf16: NULL igate (the float32 operator's check)",
                    sq_cuda_mlstm_fwd_bf16(d, NULL, &mnoi, NULL, b, NULL, NULL), SQ_EINVAL);
    th_expect_error("mlstm bwd bf16: NULL dout", sq_cuda_mlstm_bwd_bf16(d, NULL, &mi, NULL, NULL, NULL, &mg, NULL, NULL),
                    SQ_EINVAL);
    th_expect_error("mlstm bwd bf16: NULL g", sq_cuda_mlstm_bwd_bf16(d, NULL, &mi, NULL, b, NULL, NULL, NULL, NULL),
                    SQ_EINVAL);
    th_expect_error("mlstm bwd bf16: T = 0", sq_cuda_mlstm_bwd_bf16(t0, NULL, &mi, NULL, b, NULL, &mg, NULL, NULL),
                    SQ_EINVAL);

    th_expect_error("linattn fwd bf16: NULL q", sq_cuda_linattn_fwd_bf16(d, NULL, NULL, b, b, NULL, b, NULL, NULL),
                    SQ_EINVAL);
    th_expect_error("linattn fwd bf16: NULL out", sq_cuda_linattn_fwd_bf16(d, NULL, b, b, b, NULL, NULL, NULL, NULL),
                    SQ_EINVAL);
    th_expect_error("linattn fwd bf16: T = 0", sq_cuda_linattn_fwd_bf16(t0, NULL, b, b, b, NULL, b, NULL, NULL),
                    SQ_EINVAL);
    th_expect_error("linattn bwd bf16: NULL dv",
                    sq_cuda_linattn_bwd_bf16(d, NULL, b, b, b, NULL, b, NULL, b, b, NULL, NULL, NULL), SQ_EINVAL);

    sq_ssd_in_bf16 si = {b, b, b, f, f, f, f}, snox = {NULL, b, b, f, f, f, f};
    sq_ssd_grad_bf16 sg = {b, b, b, f, f, f, f};
    sq_ssd_opts g3 = {64, 3};
    th_expect_error("ssd fwd bf16: NULL x", sq_cuda_ssd_fwd_bf16(d, NULL, &snox, NULL, b, NULL, NULL), SQ_EINVAL);
    th_expect_error("ssd fwd bf16: NULL y", sq_cuda_ssd_fwd_bf16(d, NULL, &si, NULL, NULL, NULL, NULL), SQ_EINVAL);
    th_expect_error("ssd fwd bf16: T = 0", sq_cuda_ssd_fwd_bf16(t0, NULL, &si, NULL, b, NULL, NULL), SQ_EINVAL);
    th_expect_error("ssd fwd bf16: 3 groups for H = 4", sq_cuda_ssd_fwd_bf16(h4, &g3, &si, NULL, b, NULL, NULL),
                    SQ_EINVAL);
    th_expect_error("ssd bwd bf16: NULL dy", sq_cuda_ssd_bwd_bf16(d, NULL, &si, NULL, NULL, NULL, &sg, NULL, NULL),
                    SQ_EINVAL);

    sq_gdn_in_bf16 gi = {b, b, b, f, f, f, f}, gnoq = {NULL, b, b, f, f, f, f};
    sq_gdn_grad_bf16 gg = {b, b, b, f, f, f, f}, gnodk = {b, NULL, b, f, f, f, f};
    th_expect_error("gdn fwd bf16: NULL q", sq_cuda_gdn_fwd_bf16(d, NULL, &gnoq, NULL, b, NULL, NULL), SQ_EINVAL);
    th_expect_error("gdn fwd bf16: NULL out", sq_cuda_gdn_fwd_bf16(d, NULL, &gi, NULL, NULL, NULL, NULL), SQ_EINVAL);
    th_expect_error("gdn fwd bf16: T = 0", sq_cuda_gdn_fwd_bf16(t0, NULL, &gi, NULL, b, NULL, NULL), SQ_EINVAL);
    th_expect_error("gdn bwd bf16: NULL dk", sq_cuda_gdn_bwd_bf16(d, NULL, &gi, NULL, b, NULL, &gnodk, NULL, NULL),
                    SQ_EINVAL);
    th_expect_error("gdn bwd bf16: NULL dout", sq_cuda_gdn_bwd_bf16(d, NULL, &gi, NULL, NULL, NULL, &gg, NULL, NULL),
                    SQ_EINVAL);

    sq_slstm_in_bf16 ti = {b, f, f}, tnogx = {NULL, f, f}, tnoR = {b, NULL, f};
    sq_slstm_grad_bf16 tg = {b, f, f};
    th_expect_error("slstm fwd bf16: NULL gx", sq_cuda_slstm_fwd_bf16(d, NULL, &tnogx, NULL, b, NULL, NULL), SQ_EINVAL);
    th_expect_error("slstm fwd bf16: NULL out", sq_cuda_slstm_fwd_bf16(d, NULL, &ti, NULL, NULL, NULL, NULL),
                    SQ_EINVAL);
    th_expect_error("slstm fwd bf16: T = 0", sq_cuda_slstm_fwd_bf16(t0, NULL, &ti, NULL, b, NULL, NULL), SQ_EINVAL);
    th_expect_error("slstm fwd bf16: NULL R (the float32 operator's check)",
                    sq_cuda_slstm_fwd_bf16(d, NULL, &tnoR, NULL, b, NULL, NULL), SQ_EINVAL);
    th_expect_error("slstm bwd bf16: NULL dout", sq_cuda_slstm_bwd_bf16(d, NULL, &ti, NULL, NULL, NULL, &tg, NULL, NULL),
                    SQ_EINVAL);

    th_check(sq_cuda_mlstm_bf16_work_floats(t0, NULL) == 0 && sq_cuda_linattn_bf16_work_floats(t0, NULL) == 0 &&
                 sq_cuda_ssd_bf16_work_floats(t0, NULL) == 0 && sq_cuda_gdn_bf16_work_floats(t0, NULL) == 0 &&
                 sq_cuda_slstm_bf16_work_floats(t0, NULL) == 0,
             "bf16 work floats: 0 for T = 0");
    th_check(sq_cuda_mlstm_bf16_work_floats(d, &zero) == 0, "bf16 work floats: 0 for chunk 0");
    th_check(sq_cuda_mlstm_bf16_work_floats(d, NULL) > sq_cuda_scalar_work_floats(d, 64),
             "mlstm bf16 work floats: the float32 operator's and the staging");
    th_expect_ok("sync after the refusals", sq_cuda_sync());
    sq_cuda_free(f), sq_cuda_free(b);
}

void cuda_test_bf16(int small)
{
    /* every case here is short (T <= 300) except the long stability pair, which the sanitizer
     * runs (SUBQ_CUDA_SMALL=1) skip */
    check_conversions();
    /* the cases below take both paths of the scalar-gate forwards */
    sq_dims fused = {2, 200, 3, 64, 64}, staged = {2, 200, 3, 16, 24}, short_t = {1, 63, 1, 64, 64};
    th_check(sq_cuda_scalar_fused_bf16(fused, 64) && !sq_cuda_scalar_fused_bf16(fused, 32) &&
                 !sq_cuda_scalar_fused_bf16(staged, 64) && !sq_cuda_scalar_fused_bf16(short_t, 64),
             "fused bf16 forward: taken at K = V = 64, chunk 64, T >= 64 only");
    sq_dims wide = {1, 100, 2, 64, 192};
    th_check(sq_cuda_scalar_fused_bf16_bwd(fused, 64) && sq_cuda_scalar_fused_bf16(wide, 64) &&
                 !sq_cuda_scalar_fused_bf16_bwd(wide, 64) && !sq_cuda_scalar_fused_bf16_bwd(short_t, 64),
             "fused bf16 backward: the forward's shapes with V <= 128");
    /* d, chunk, opt, with_state, with_ds1, give_work. mLSTM's T = 1 cases start
     * from a given state: from the zero state one step's output is ±v wherever
     * |n̄·q| > e^{-m}, so dq, dk and dĩ are zero up to rounding there and a
     * relative error of them measures nothing. */
    const bt_case mlstm[] = {
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
        {{1, 100, 2, 32, 48}, 64, 3, 0, 0, 0},  /* the same on the staging path */
    };
    for (size_t i = 0; i < sizeof mlstm / sizeof mlstm[0]; i++) check_mlstm(&mlstm[i]);
    /* T = 4096 with gates in ±30 (test_cuda.c's float32 stability case): the staging path's
     * backward runs its products in TF32, the fused forward rounds Z and the states */
    const bt_case mlstm_long[] = {
        {{1, 4096, 2, 32, 48}, 64, 2, 0, 0, 0},
        {{1, 4096, 2, 64, 64}, 64, 2, 1, 1, 1},
    };
    for (size_t i = 0; !small && i < sizeof mlstm_long / sizeof mlstm_long[0]; i++) check_mlstm(&mlstm_long[i]);
    const bt_case linattn[] = {
        {{2, 200, 3, 16, 24}, 64, 0, 1, 1, 1},
        {{1, 77, 1, 16, 40}, 32, 0, 0, 0, 0},
        {{2, 1, 2, 8, 8}, 64, 0, 1, 1, 1},
        {{1, 1, 1, 8, 16}, 64, 0, 0, 0, 0},
        {{2, 150, 2, 64, 128}, 64, 0, 1, 1, 1}, /* fused forward */
        {{1, 64, 1, 128, 64}, 64, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof linattn / sizeof linattn[0]; i++) check_linattn(&linattn[i]);
    const bt_case ssd[] = {
        {{2, 130, 4, 16, 24}, 64, 2, 1, 1, 1}, /* opt: ngroups */
        {{1, 100, 1, 16, 8}, 64, 1, 0, 0, 0},
        {{1, 1, 2, 8, 8}, 64, 2, 1, 1, 1},
        {{2, 1, 4, 8, 16}, 64, 4, 0, 0, 0},
        {{2, 150, 4, 128, 64}, 64, 2, 1, 1, 1}, /* fused forward */
        {{1, 100, 2, 64, 128}, 64, 1, 0, 0, 0},
        {{1, 64, 4, 24, 64}, 64, 4, 1, 0, 1},
        {{2, 191, 4, 128, 128}, 64, 2, 0, 1, 0}, /* fused backward at D = 128, ragged T */
    };
    for (size_t i = 0; i < sizeof ssd / sizeof ssd[0]; i++) check_ssd(&ssd[i]);
    const bt_case gdn[] = {
        {{2, 100, 3, 32, 24}, 64, 1, 1, 1, 1}, /* opt: qk_l2norm */
        {{1, 77, 1, 16, 40}, 32, 0, 0, 0, 0},
        {{2, 1, 2, 8, 16}, 64, 1, 1, 1, 1},
        {{1, 1, 1, 8, 8}, 64, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof gdn / sizeof gdn[0]; i++) check_gdn(&gdn[i]);
    const bt_case slstm[] = {
        {{2, 50, 3, 16, 16}, 0, 0, 1, 1, 1}, /* opt: exp_forget */
        {{1, 37, 1, 5, 5}, 0, 1, 0, 0, 0},
        {{2, 1, 2, 8, 8}, 0, 0, 1, 1, 1},
        {{1, 1, 1, 4, 4}, 0, 1, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof slstm / sizeof slstm[0]; i++) check_slstm(&slstm[i]);
    check_refusals();
}
