/* The bf16 entry points of mLSTM, linear attention, Mamba-2 SSD, Gated
 * DeltaNet and sLSTM (src/cuda/bf16.cu) against the CPU operators on the
 * same values: the bf16-carried inputs (q, k, v; x, Bm, Cm; gx; and the
 * output's gradient) are rounded to bf16 on the host first, so that the
 * reference sees exactly what the GPU gets. Every output (bf16 and
 * float32) is poisoned with NaN, so an unwritten element fails; the
 * output, the final state and every gradient must be within a relative
 * error of 1e-2 (the bf16 bound; what remains is the outputs' one
 * bf16 rounding and the float32 operators' own 1e-4). The mLSTM's and
 * SSD's fused kernels round inside: their inputs, CPU results and
 * tolerances come from bf16_cond.c, which says how.
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

#include "bf16_cond.h"
#include "cuda_util.h"

static const double bf_tol = BF_TOL;

/* An input's device copy (of its host values, already rounded where bf16). */
static void bt_upload(bt_tensor *t)
{
    t->dev = t->bf16 ? (void *)to_device_bf16(t->h, t->n) : (void *)to_device(t->h, t->n);
}

/* An input: h (a fresh array, now owned by t), rounded in place when bf16, uploaded. */
static void bt_in(bt_tensor *t, float *h, size_t n, int bf16)
{
    bt_host(t, h, n, bf16);
    bt_upload(t);
}

/* A result's device array of NaN for the GPU's. */
static void bt_poison(bt_tensor *t)
{
    t->dev = t->bf16 ? (void *)device_poisoned_bf16(t->n) : (void *)device_poisoned(t->n);
}

/* A result: host room for the CPU's, a device array of NaN for the GPU's. */
static void bt_out(bt_tensor *t, size_t n, int bf16)
{
    bt_host_out(t, n, bf16);
    bt_poison(t);
}

/* A case's host inputs and results onto the device (inputs copied, results poisoned). */
static void bt_to_device(bt_tensor *x, int nx, bt_tensor *r, int nr)
{
    for (int i = 0; i < nx; i++) bt_upload(&x[i]);
    for (int i = 0; i < nr; i++) bt_poison(&r[i]);
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
 * mask `unchecked`; result i is measured over terms[i] = Σ|its terms|
 * (bt_err_over_terms) where that is given and > 0 (a sum that cancels);
 * its tolerance is tol[i] (tol NULL: bf_tol); sk (or NULL) leaves steps
 * out of the per-step results. */
/* Which kernels a case runs on, for its label: the fused scalar-gate kernels
 * (mLSTM, linear attention, SSD), GDN's scans on the tensor cores (chunk 64,
 * K % 8 == 0, K <= 128: gdn_scan_bf16.cu), or the staging path. */
static const char *bt_path(const char *op, const bt_case *c)
{
    sq_dims d = c->d;
    if (!strcmp(op, "gdn"))
        return (c->chunk < d.T ? c->chunk : d.T) == 64 && d.K % 8 == 0 && d.K <= 128 ? " (tensor-core scans)" : "";
    if (!strcmp(op, "slstm")) return "";
    return sq_cuda_scalar_fused_bf16_bwd(d, c->chunk) ? " (fused fwd, bwd)"
           : sq_cuda_scalar_fused_bf16(d, c->chunk)   ? " (fused fwd)"
                                                      : "";
}

static void bt_check_all(const char *op, const bt_case *c, const bt_tensor *r, const char *const *names, int n,
                         const double *terms, unsigned unchecked, const double *tol, const bt_skip *sk)
{
    sq_dims d = c->d;
    for (int i = 0; i < n; i++) {
        if (unchecked >> i & 1) continue;
        char what[200];
        snprintf(what, sizeof what, "%s bf16 B%d T%d H%d K%d V%d chunk %d opt %d%s%s%s%s: %s", op, d.B, d.T, d.H,
                 d.K, d.V, c->chunk, c->opt, c->with_state ? " state" : "", c->with_ds1 ? " ds1" : "",
                 c->give_work ? " work" : "", bt_path(op, c), names[i]);
        double err = terms && terms[i] > 0 ? bt_err_over_terms(&r[i], terms[i]) : bt_err_kept(&r[i], sk, i);
        th_close(what, err, tol ? tol[i] : bf_tol);
    }
}

/* ---- mLSTM --------------------------------------------------------------------------- */

static const char *const m_names[M_NRES] = {"out", "final S", "final n", "final m", "dq",  "dk",
                                            "dv",  "digate",  "dfgate",  "dS0",     "dn0", "dm0"};

/* The CPU's results and tolerances (mlstm_reference, which zeroes dO on the steps singular at
 * bf16), then the GPU's on the same inputs. */
static void check_mlstm(const bt_case *c)
{
    sq_dims d = c->d;
    bt_tensor x[M_NIN], r[M_NRES];
    m_cond k = {0};
    mlstm_host_inputs(c, x, r);
    int ok = mlstm_reference(c, x, r, &k) == 0;
    th_check(ok && m_few_singular(c, &k), "mlstm bf16 B%d T%d H%d opt %d: %zu of %d steps singular at bf16 (at most 2 + 15%%)",
             d.B, d.T, d.H, c->opt, k.nskip, d.B * d.T * d.H);
    bt_to_device(x, M_NIN, r, M_NRES);
    sq_mlstm_opts o = {c->chunk, 0};
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
    /* case 3: o ≈ v_0 whatever q, k and the gates are, so their gradients vanish and a relative
     * error of them measures only rounding (float32 against the CPU's float32 too); out is what
     * the case tests. dm0 = Σ dS̄0 ⊙ S̄0 + Σ dn̄0 ⊙ n̄0 cancels: measured over the size of its terms. */
    unsigned vanish = c->opt == 3 ? 1u << MDQ | 1u << MDK | 1u << MDIG | 1u << MDFG : 0;
    if (ok) {
        bt_skip sk = {k.skip, k.width};
        double terms[M_NRES] = {0};
        if (c->with_state) terms[MDM0] = k.dm0_scale;
        bt_check_all("mlstm", c, r, m_names, M_NRES, terms, vanish, k.tol, &sk);
    }
    free(k.skip);
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
    bt_check_all("linattn", c, r, l_names, L_NRES, NULL, 0, NULL, NULL);
    sq_cuda_free(work);
    bt_free(x, L_NIN), bt_free(r, L_NRES);
}

/* ---- Mamba-2 SSD --------------------------------------------------------------------- */

static const char *const s_names[S_NRES] = {"y", "final S", "dx", "dBm", "dCm", "ddt", "ddt_bias", "dA", "dD", "dS0"};

static void check_ssd(const bt_case *c)
{
    sq_dims d = c->d;
    bt_tensor x[S_NIN], r[S_NRES];
    double tol[S_NRES], terms[S_NRES];
    ssd_host_inputs(c, x, r);
    int ok = ssd_reference(c, x, r, tol, terms) == 0;
    bt_to_device(x, S_NIN, r, S_NRES);
    sq_ssd_opts o = {c->chunk, c->opt};
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
    if (th_check(ok, "ssd bf16: the CPU reference ran")) bt_check_all("ssd", c, r, s_names, S_NRES, terms, 0, tol, NULL);
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
    double terms[G_NRES] = {0};
    terms[GDDTB] = scale;
    bt_check_all("gdn", c, r, g_names, G_NRES, terms, 0, NULL, NULL);
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
    double terms[T_NRES] = {0};
    if (c->with_state) terms[TDM0] = scale;
    bt_check_all("slstm", c, r, t_names, T_NRES, terms, 0, NULL, NULL);
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

/* The GDN bf16 cases (SUBQ_CUDA_ONLY=gdn16 runs them alone: their kernels under the sanitizers). */
void cuda_test_gdn_bf16(void)
{
    const bt_case gdn[] = {
        {{2, 100, 3, 32, 24}, 64, 1, 1, 1, 1}, /* opt: qk_l2norm */
        {{1, 77, 1, 16, 40}, 32, 0, 0, 0, 0},
        {{2, 1, 2, 8, 16}, 64, 1, 1, 1, 1},
        {{1, 1, 1, 8, 8}, 64, 0, 0, 0, 0},
        /* the scans on the tensor cores (chunk 64, K % 8 == 0): tiles of 16, 32 and 64 columns of V
         * (gdn_scan_bf16.cu picks the widest that fills 132 SMs), V past the last tile, K = 8 */
        {{2, 200, 3, 128, 128}, 64, 1, 1, 1, 1},
        {{1, 130, 2, 64, 72}, 64, 0, 0, 1, 0},
        {{2, 64, 17, 8, 64}, 64, 1, 0, 0, 1},
        {{4, 70, 33, 64, 64}, 64, 1, 1, 1, 1},
        {{1, 150, 2, 72, 40}, 64, 1, 1, 1, 0}, /* K past a piece of 64 columns (the chunk kernels) */
        {{1, 90, 2, 12, 20}, 64, 1, 1, 1, 1},  /* K % 8 != 0: bf16 read and written one element at a time */
        {{2, 100, 2, 16, 33}, 64, 1, 1, 1, 1}, /* odd V: the tensor-core kernels' column pairs one by one */
    };
    for (size_t i = 0; i < sizeof gdn / sizeof gdn[0]; i++) check_gdn(&gdn[i]);
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
    /* the mLSTM's and SSD's cases: bf16_cond.c */
    for (int i = 0; i < mlstm_bf16_ncases; i++) check_mlstm(&mlstm_bf16_cases[i]);
    for (int i = 0; !small && i < mlstm_bf16_nlong; i++) check_mlstm(&mlstm_bf16_long[i]);
    /* d, chunk, opt, with_state, with_ds1, give_work */
    const bt_case linattn[] = {
        {{2, 200, 3, 16, 24}, 64, 0, 1, 1, 1},
        {{1, 77, 1, 16, 40}, 32, 0, 0, 0, 0},
        {{2, 1, 2, 8, 8}, 64, 0, 1, 1, 1},
        {{1, 1, 1, 8, 16}, 64, 0, 0, 0, 0},
        {{2, 150, 2, 64, 128}, 64, 0, 1, 1, 1}, /* fused forward */
        {{1, 64, 1, 128, 64}, 64, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof linattn / sizeof linattn[0]; i++) check_linattn(&linattn[i]);
    for (int i = 0; i < ssd_bf16_ncases; i++) check_ssd(&ssd_bf16_cases[i]);
    cuda_test_gdn_bf16();
    const bt_case slstm[] = {
        {{2, 50, 3, 16, 16}, 0, 0, 1, 1, 1}, /* opt: exp_forget */
        {{1, 37, 1, 5, 5}, 0, 1, 0, 0, 0},
        {{2, 1, 2, 8, 8}, 0, 0, 1, 1, 1},
        {{1, 1, 1, 4, 4}, 0, 1, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof slstm / sizeof slstm[0]; i++) check_slstm(&slstm[i]);
    check_refusals();
}
