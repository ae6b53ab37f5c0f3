/* Gated DeltaNet, chunkwise with the WY/UT representation (gdn.h,
 * DESIGN.md §2). Per chunk of length L with incoming state S, chunk-local
 * cumulative log-decays γ_t = Σ_{r<=t} g_r and Γ_ts = e^{γ_t - γ_s}:
 *   A  = strictly-lower(diag(β) K̂K̂ᵀ ⊙ Γ),  Tm = (I + A)^{-1}     (WY/UT)
 *   Ṽ  = Tm (diag(β) V - diag(β e^{γ}) K̂ S)                      (pseudo-values)
 *   O  = (Q̂ ⊙ e^{γ}) S + ((Q̂K̂ᵀ) ⊙ Γ ⊙ causal) Ṽ
 *   S' = e^{γ_L} S + (K̂ ⊙ e^{γ_L - γ})ᵀ Ṽ
 * This follows from writing (U1) as S_t = a_t S_{t-1} + k̂_t ṽ_tᵀ with
 * ṽ_t = β_t (v_t - a_t S_{t-1}ᵀ k̂_t). The backward is reverse mode through
 * these equations, chunk by chunk from the last, carrying dS. */
#include "gdn.h"

#include <math.h>
#include <string.h>

#include "gates.h"

sq_gdn_opts sq_gdn_defaults(void) { return (sq_gdn_opts){64, 0, 1}; }

static size_t r16(size_t n) { return (n + 15) / 16 * 16; }
static int n_chunks(int T, int L) { return (T + L - 1) / L; }

/* ---- workspace ------------------------------------------------------------ */

typedef struct {
    /* per head, whole sequence */
    float *qh, *kh;       /* [T,K] normalised and scaled q̂, normalised k̂ */
    float *qn, *kn;       /* [T] the norms divided by (for the L2-norm backward) */
    float *g, *beta;      /* [T] log-decay g_t, β_t */
    float *dqh, *dkh;     /* [T,K] gradients w.r.t. q̂, k̂ */
    float *dg, *dbeta;    /* [T] */
    float *Ssave;         /* [NC,K,V] incoming state of each chunk (bwd) */
    /* per chunk */
    double *gam, *dgam;   /* [L] γ and its gradient */
    float *rf, *cf;       /* [L] Γ_ts = rf_t cf_s when γ's spread allows */
    int factored;
    float *A, *Tm, *P;    /* [L,L] */
    float *dA, *dP;       /* [L,L] */
    float *R, *Vt, *Y;    /* [L,V] right side, pseudo-values Ṽ, Tmᵀ dṼ */
    float *dVt, *tmpV;    /* [L,V] */
    float *Kx, *Qx, *tmpK;/* [L,K] scaled copies */
    float *S, *dS;        /* [K,V] running state and its gradient */
} gdn_buf;

static size_t head_floats(sq_dims d, int L, int bwd)
{
    size_t T = d.T, K = d.K, V = d.V, l = (size_t)L;
    size_t n = 2 * r16(T * K) + 4 * r16(T) + 2 * r16(2 * l) + 2 * r16(l) + 5 * r16(l * l) + 5 * r16(l * V) + 3 * r16(l * K) +
               2 * r16(K * V);
    if (bwd) n += 2 * r16(T * K) + 2 * r16(T) + r16((size_t)n_chunks(d.T, L) * K * V);
    return n;
}

static float *carve(float **p, size_t n)
{
    float *r = *p;
    *p += r16(n);
    return r;
}

static gdn_buf head_buf(float *ws, sq_dims d, int L, int bwd, int bh)
{
    gdn_buf b;
    memset(&b, 0, sizeof b);
    float *p = ws + (size_t)bh * head_floats(d, L, bwd);
    size_t T = d.T, K = d.K, V = d.V, l = (size_t)L;
    b.qh = carve(&p, T * K);
    b.kh = carve(&p, T * K);
    b.qn = carve(&p, T);
    b.kn = carve(&p, T);
    b.g = carve(&p, T);
    b.beta = carve(&p, T);
    b.gam = (double *)carve(&p, 2 * l);
    b.dgam = (double *)carve(&p, 2 * l);
    b.rf = carve(&p, l);
    b.cf = carve(&p, l);
    b.A = carve(&p, l * l);
    b.Tm = carve(&p, l * l);
    b.P = carve(&p, l * l);
    b.dA = carve(&p, l * l);
    b.dP = carve(&p, l * l);
    b.R = carve(&p, l * V);
    b.Vt = carve(&p, l * V);
    b.Y = carve(&p, l * V);
    b.dVt = carve(&p, l * V);
    b.tmpV = carve(&p, l * V);
    b.Kx = carve(&p, l * K);
    b.Qx = carve(&p, l * K);
    b.tmpK = carve(&p, l * K);
    b.S = carve(&p, K * V);
    b.dS = carve(&p, K * V);
    if (bwd) {
        b.dqh = carve(&p, T * K);
        b.dkh = carve(&p, T * K);
        b.dg = carve(&p, T);
        b.dbeta = carve(&p, T);
        b.Ssave = carve(&p, (size_t)n_chunks(d.T, L) * K * V);
    }
    return b;
}

size_t sq_gdn_work_floats(sq_dims d, const sq_gdn_opts *o)
{
    int L = o ? o->chunk : 64;
    if (L < 1 || d.B < 1 || d.T < 1 || d.H < 1 || d.K < 1 || d.V < 1) return 0;
    if (L > d.T) L = d.T;
    return (size_t)d.B * d.H * head_floats(d, L, 1);
}

/* ---- arguments ------------------------------------------------------------ */

int sq_gdn_check_in(const char *op, sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in)
{
    int rc;
    if ((rc = sq_check_dims(op, d)) || (rc = sq_check_ptr(op, "in", in))) return rc;
    if ((rc = sq_check_ptr(op, "q", in->q)) || (rc = sq_check_ptr(op, "k", in->k)) ||
        (rc = sq_check_ptr(op, "v", in->v)) || (rc = sq_check_ptr(op, "alpha", in->alpha)) ||
        (rc = sq_check_ptr(op, "beta", in->beta)) || (rc = sq_check_ptr(op, "A_log", in->A_log)) ||
        (rc = sq_check_ptr(op, "dt_bias", in->dt_bias)) || (rc = sq_check_chunk(op, o->chunk)))
        return rc;
    if ((o->neg_eigval != 0 && o->neg_eigval != 1) || (o->qk_l2norm != 0 && o->qk_l2norm != 1))
        return sq_fail(SQ_EINVAL, "%s: neg_eigval and qk_l2norm must be 0 or 1", op);
    return SQ_OK;
}

int sq_gdn_check_grad(const char *op, const sq_gdn_grad *g)
{
    int rc;
    if ((rc = sq_check_ptr(op, "g", g))) return rc;
    if ((rc = sq_check_ptr(op, "g->dq", g->dq)) || (rc = sq_check_ptr(op, "g->dk", g->dk)) ||
        (rc = sq_check_ptr(op, "g->dv", g->dv)) || (rc = sq_check_ptr(op, "g->dalpha", g->dalpha)) ||
        (rc = sq_check_ptr(op, "g->dbeta", g->dbeta)) || (rc = sq_check_ptr(op, "g->dA_log", g->dA_log)) ||
        (rc = sq_check_ptr(op, "g->ddt_bias", g->ddt_bias)))
        return rc;
    return SQ_OK;
}

/* ---- per-head preparation --------------------------------------------------- */

/* ‖q‖, ‖k‖ (with a 1e-12 floor under the root), or 1 when the op does not normalise. */
static void qk_norms(const float *q, const float *k, int K, int on, double *nq, double *nk)
{
    float a = 0, b = 0; /* K terms of one sign: float sums are accurate enough */
    for (int i = 0; i < K; i++) {
        a += q[i] * q[i];
        b += k[i] * k[i];
    }
    *nq = on ? sqrt(a + 1e-12) : 1.0;
    *nk = on ? sqrt(b + 1e-12) : 1.0;
}

/* q̂ = q/(‖q‖√K), k̂ = k/‖k‖ (or only the 1/√K), g = -e^{A_log} softplus(α̃ + bias),
 * β = σ(β̃) (×2 with negative eigenvalues). */
static void prepare_head(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in, int b, int h, gdn_buf *w)
{
    double qs = 1.0 / sqrt((double)d.K), ea = exp((double)in->A_log[h]);
    for (int t = 0; t < d.T; t++) {
        size_t gi = ((size_t)b * d.T + t) * d.H + h;
        const float *q = in->q + gi * d.K, *k = in->k + gi * d.K;
        double nq, nk;
        qk_norms(q, k, d.K, o->qk_l2norm, &nq, &nk);
        w->qn[t] = (float)nq;
        w->kn[t] = (float)nk;
        float sq = (float)(qs / nq), sk = (float)(1.0 / nk);
        for (int i = 0; i < d.K; i++) {
            w->qh[(size_t)t * d.K + i] = q[i] * sq;
            w->kh[(size_t)t * d.K + i] = k[i] * sk;
        }
        w->g[t] = (float)(-ea * sq_softplus((double)in->alpha[gi] + in->dt_bias[h]));
        w->beta[t] = (float)((o->neg_eigval ? 2.0 : 1.0) * sq_sigmoid(in->beta[gi]));
    }
}

/* ---- one chunk, forward ------------------------------------------------------ */

/* Γ_ts = e^{γ_t - γ_s} = e^{γ_t - γ_0} e^{γ_0 - γ_s} when γ (decreasing)
 * spans at most 80: both factors stay inside float range, and 2L
 * exponentials replace L². */
static void gamma_factors(int Lc, gdn_buf *c)
{
    c->factored = c->gam[0] - c->gam[Lc - 1] <= 80;
    for (int t = 0; c->factored && t < Lc; t++) {
        c->rf[t] = (float)exp(c->gam[t] - c->gam[0]);
        c->cf[t] = (float)exp(c->gam[0] - c->gam[t]);
    }
}

static inline float Gamma(const gdn_buf *c, int t, int s)
{
    return c->factored ? c->rf[t] * c->cf[s] : (float)exp(c->gam[t] - c->gam[s]);
}

/* γ, then A (strictly lower) and Tm = (I + A)^{-1} by forward substitution. */
static void chunk_wy(const gdn_buf *w, int t0, int Lc, int K, gdn_buf *c)
{
    double acc = 0;
    for (int j = 0; j < Lc; j++) c->gam[j] = (acc += w->g[t0 + j]);
    gamma_factors(Lc, c);
    const float *Kh = w->kh + (size_t)t0 * K;
    sq_sgemm(0, 1, Lc, Lc, K, 1, Kh, K, Kh, K, 0, c->A, Lc); /* K̂K̂ᵀ */
    for (int t = 0; t < Lc; t++)
        for (int s = 0; s < Lc; s++) {
            float *a = c->A + (size_t)t * Lc + s;
            *a = s < t ? w->beta[t0 + t] * *a * Gamma(c, t, s) : 0.0f;
        }
    /* Tm rows: Tm_t = e_t - Σ_{s<t} A_ts Tm_s (unit lower triangular) */
    for (int t = 0; t < Lc; t++) {
        float *row = c->Tm + (size_t)t * Lc;
        memset(row, 0, (size_t)Lc * sizeof(float));
        row[t] = 1;
        for (int s = 0; s < t; s++) {
            float a = c->A[(size_t)t * Lc + s];
            if (a == 0) continue;
            const float *rs = c->Tm + (size_t)s * Lc;
            for (int j = 0; j <= s; j++) row[j] -= a * rs[j];
        }
    }
}

/* Ṽ = Tm (diag(β) V - diag(β e^{γ}) K̂ S) into c->Vt; leaves R, Kx = β e^{γ} K̂. */
static void chunk_pseudo_values(const gdn_buf *w, const float *Vc, size_t ldv, int t0, int Lc, int K, int V, gdn_buf *c)
{
    for (int t = 0; t < Lc; t++) {
        float bt = w->beta[t0 + t], be = bt * (float)exp(c->gam[t]);
        for (int i = 0; i < V; i++) c->R[(size_t)t * V + i] = bt * Vc[(size_t)t * ldv + i];
        for (int i = 0; i < K; i++) c->Kx[(size_t)t * K + i] = be * w->kh[(size_t)(t0 + t) * K + i];
    }
    sq_sgemm(0, 0, Lc, V, K, -1, c->Kx, K, c->S, V, 1, c->R, V);
    sq_sgemm(0, 0, Lc, V, Lc, 1, c->Tm, Lc, c->R, V, 0, c->Vt, V);
}

/* P = (Q̂K̂ᵀ) ⊙ Γ, causal including the diagonal. */
static void chunk_scores(const gdn_buf *w, int t0, int Lc, int K, gdn_buf *c)
{
    sq_sgemm(0, 1, Lc, Lc, K, 1, w->qh + (size_t)t0 * K, K, w->kh + (size_t)t0 * K, K, 0, c->P, Lc);
    for (int t = 0; t < Lc; t++)
        for (int s = 0; s < Lc; s++) {
            float *p = c->P + (size_t)t * Lc + s;
            *p = s <= t ? *p * Gamma(c, t, s) : 0.0f;
        }
}

/* O = (Q̂ ⊙ e^{γ}) S + P Ṽ,  S ← e^{γ_L} S + (K̂ ⊙ e^{γ_L - γ})ᵀ Ṽ */
static void chunk_forward(const gdn_buf *w, const float *Vc, size_t ldv, float *O, size_t ldo, int t0, int Lc, int K,
                          int V, gdn_buf *c)
{
    chunk_wy(w, t0, Lc, K, c);
    chunk_pseudo_values(w, Vc, ldv, t0, Lc, K, V, c);
    chunk_scores(w, t0, Lc, K, c);
    for (int t = 0; t < Lc; t++) {
        float e = (float)exp(c->gam[t]);
        for (int i = 0; i < K; i++) c->Qx[(size_t)t * K + i] = e * w->qh[(size_t)(t0 + t) * K + i];
    }
    sq_sgemm(0, 0, Lc, V, K, 1, c->Qx, K, c->S, V, 0, O, (int)ldo);
    sq_sgemm(0, 0, Lc, V, Lc, 1, c->P, Lc, c->Vt, V, 1, O, (int)ldo);
    double gL = c->gam[Lc - 1];
    for (int t = 0; t < Lc; t++) {
        float e = (float)exp(gL - c->gam[t]);
        for (int i = 0; i < K; i++) c->tmpK[(size_t)t * K + i] = e * w->kh[(size_t)(t0 + t) * K + i];
    }
    float eL = (float)exp(gL);
    for (size_t i = 0; i < (size_t)K * V; i++) c->S[i] *= eL;
    sq_sgemm(1, 0, K, V, Lc, 1, c->tmpK, K, c->Vt, V, 1, c->S, V);
}

/* ---- one chunk, backward -------------------------------------------------------- */

/* Given dO (rows of dout) and c->dS = dS_next, accumulates into w->dqh, dkh,
 * dbeta, dg and writes dV rows; leaves c->dS = dS_prev. Sp = incoming S. */
static void chunk_backward(gdn_buf *w, const float *Vc, size_t ldv, const float *dO, size_t lddo, float *dV,
                           size_t lddv, const float *Sp, int t0, int Lc, int K, int V, gdn_buf *c)
{
    memcpy(c->S, Sp, (size_t)K * V * sizeof(float));
    chunk_wy(w, t0, Lc, K, c);
    chunk_pseudo_values(w, Vc, ldv, t0, Lc, K, V, c); /* Kx = β e^γ K̂ */
    chunk_scores(w, t0, Lc, K, c);
    const float *Qh = w->qh + (size_t)t0 * K, *Kh = w->kh + (size_t)t0 * K;
    float *dQh = w->dqh + (size_t)t0 * K, *dKh = w->dkh + (size_t)t0 * K;
    double *dgam = c->dgam;
    for (int t = 0; t < Lc; t++) dgam[t] = 0;
    double gL = c->gam[Lc - 1];

    /* dṼ = Pᵀ dO + (K̂ ⊙ e^{γ_L-γ}) dS' ; c_t exponent terms of e^{γ_L-γ} */
    for (int t = 0; t < Lc; t++) {
        float e = (float)exp(gL - c->gam[t]);
        for (int i = 0; i < K; i++) c->Qx[(size_t)t * K + i] = e * Kh[(size_t)t * K + i]; /* Kd */
    }
    sq_sgemm(1, 0, Lc, V, Lc, 1, c->P, Lc, dO, (int)lddo, 0, c->dVt, V);
    sq_sgemm(0, 0, Lc, V, K, 1, c->Qx, K, c->dS, V, 1, c->dVt, V);
    /* dKd = Ṽ dS'ᵀ → dK̂ += dKd ⊙ e^{γ_L-γ}; dγ_L += Σ c_t, dγ_t -= c_t */
    sq_sgemm(0, 1, Lc, K, V, 1, c->Vt, V, c->dS, V, 0, c->tmpK, K);
    double csum = 0;
    for (int t = 0; t < Lc; t++) {
        double ct = 0;
        for (int i = 0; i < K; i++) {
            ct += (double)c->tmpK[(size_t)t * K + i] * c->Qx[(size_t)t * K + i];
            dKh[(size_t)t * K + i] += c->tmpK[(size_t)t * K + i] * (float)exp(gL - c->gam[t]);
        }
        dgam[t] -= ct;
        csum += ct;
    }
    double sdot = 0;
    for (size_t i = 0; i < (size_t)K * V; i++) sdot += (double)Sp[i] * c->dS[i];
    dgam[Lc - 1] += csum + exp(gL) * sdot;

    /* dP = dO Ṽᵀ (causal): dQ̂ += (dP⊙Γ) K̂, dK̂ += (dP⊙Γ)ᵀ Q̂, E = dP ⊙ P */
    sq_sgemm(0, 1, Lc, Lc, V, 1, dO, (int)lddo, c->Vt, V, 0, c->dP, Lc);
    for (int t = 0; t < Lc; t++)
        for (int s = 0; s < Lc; s++) {
            size_t i = (size_t)t * Lc + s;
            if (s > t) {
                c->dP[i] = 0;
                continue;
            }
            double E = (double)c->dP[i] * c->P[i];
            dgam[t] += E;
            dgam[s] -= E;
            c->dP[i] *= Gamma(c, t, s);
        }
    sq_sgemm(0, 0, Lc, K, Lc, 1, c->dP, Lc, Kh, K, 1, dQh, K);
    sq_sgemm(1, 0, Lc, K, Lc, 1, c->dP, Lc, Qh, K, 1, dKh, K);

    /* Qg = Q̂ e^{γ}: dQg = dO Sᵀ → dQ̂ += dQg e^{γ}, dγ_t += dQg_t · Qg_t */
    sq_sgemm(0, 1, Lc, K, V, 1, dO, (int)lddo, Sp, V, 0, c->tmpK, K);
    for (int t = 0; t < Lc; t++) {
        float e = (float)exp(c->gam[t]);
        double acc = 0;
        for (int i = 0; i < K; i++) {
            float dqg = c->tmpK[(size_t)t * K + i];
            acc += (double)dqg * Qh[(size_t)t * K + i] * e;
            dQh[(size_t)t * K + i] += dqg * e;
        }
        dgam[t] += acc;
    }

    /* Y = Tmᵀ dṼ; dA = -Y Ṽᵀ (strictly lower); from R = βV - (βe^γ K̂) S: */
    sq_sgemm(1, 0, Lc, V, Lc, 1, c->Tm, Lc, c->dVt, V, 0, c->Y, V);
    sq_sgemm(0, 1, Lc, Lc, V, -1, c->Y, V, c->Vt, V, 0, c->dA, Lc);
    for (int t = 0; t < Lc; t++) {
        double db = 0;
        const float *vt = Vc + (size_t)t * ldv, *yt = c->Y + (size_t)t * V;
        for (int i = 0; i < V; i++) {
            db += (double)yt[i] * vt[i];
            dV[(size_t)t * lddv + i] = w->beta[t0 + t] * yt[i];
        }
        w->dbeta[t0 + t] += (float)db;
    }
    /* dKx = -Y Sᵀ with Kx = β e^γ K̂ */
    sq_sgemm(0, 1, Lc, K, V, -1, c->Y, V, Sp, V, 0, c->tmpK, K);
    for (int t = 0; t < Lc; t++) {
        float bt = w->beta[t0 + t], e = (float)exp(c->gam[t]);
        double dot = 0;
        for (int i = 0; i < K; i++) {
            float dkx = c->tmpK[(size_t)t * K + i];
            dot += (double)dkx * Kh[(size_t)t * K + i];
            dKh[(size_t)t * K + i] += dkx * bt * e;
        }
        w->dbeta[t0 + t] += (float)(dot * e);
        dgam[t] += dot * e * bt;
    }
    /* dS_prev = Qgᵀ dO + e^{γ_L} dS' - Kxᵀ Y */
    float eL = (float)exp(gL);
    for (size_t i = 0; i < (size_t)K * V; i++) c->dS[i] *= eL;
    for (int t = 0; t < Lc; t++) {
        float e = (float)exp(c->gam[t]);
        for (int i = 0; i < K; i++) c->Qx[(size_t)t * K + i] = e * Qh[(size_t)t * K + i];
    }
    sq_sgemm(1, 0, K, V, Lc, 1, c->Qx, K, dO, (int)lddo, 1, c->dS, V);
    sq_sgemm(1, 0, K, V, Lc, -1, c->Kx, K, c->Y, V, 1, c->dS, V);

    /* A_ts = β_t (k̂_t·k̂_s) Γ_ts (s < t): G_ts = dA_ts β_t Γ_ts */
    for (int t = 0; t < Lc; t++)
        for (int s = 0; s < Lc; s++) {
            size_t i = (size_t)t * Lc + s;
            if (s >= t) {
                c->dA[i] = 0;
                continue;
            }
            double E = (double)c->dA[i] * c->A[i]; /* exponent gradient of Γ_ts */
            dgam[t] += E;
            dgam[s] -= E;
            float bt = w->beta[t0 + t];
            if (bt != 0) w->dbeta[t0 + t] += (float)(E / bt);
            c->dA[i] *= bt * Gamma(c, t, s);
        }
    sq_sgemm(0, 0, Lc, K, Lc, 1, c->dA, Lc, Kh, K, 1, dKh, K);
    sq_sgemm(1, 0, Lc, K, Lc, 1, c->dA, Lc, Kh, K, 1, dKh, K);

    /* γ_t = Σ_{r<=t} g_r: dg_r = Σ_{t>=r} dγ_t */
    double acc = 0;
    for (int t = Lc - 1; t >= 0; t--) {
        acc += dgam[t];
        w->dg[t0 + t] = (float)acc;
    }
}

/* ---- drivers ------------------------------------------------------------------ */

static void load_state(const float *S0, size_t bh, sq_dims d, float *S)
{
    size_t kv = (size_t)d.K * d.V;
    if (S0) memcpy(S, S0 + bh * kv, kv * sizeof(float));
    else memset(S, 0, kv * sizeof(float));
}

/* The head's chunks in order from its initial state: outputs into out
 * ([B,T,H,V] rows) or, with out NULL, each chunk's incoming state into
 * w->Ssave. Leaves the final state in w->S. */
static void head_sweep(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in, const float *S0, int b, int h, int L,
                       float *out, gdn_buf *w)
{
    size_t ldv = (size_t)d.H * d.V, kv = (size_t)d.K * d.V, row = (size_t)b * d.T * d.H + h;
    prepare_head(d, o, in, b, h, w);
    load_state(S0, (size_t)b * d.H + h, d, w->S);
    for (int t0 = 0, ci = 0; t0 < d.T; t0 += L, ci++) {
        int Lc = d.T - t0 < L ? d.T - t0 : L;
        size_t r0 = row + (size_t)t0 * d.H;
        if (!out) memcpy(w->Ssave + (size_t)ci * kv, w->S, kv * sizeof(float));
        chunk_forward(w, in->v + r0 * d.V, ldv, out ? out + r0 * d.V : w->tmpV, out ? ldv : (size_t)d.V, t0, Lc, d.K,
                      d.V, w);
    }
}

int sq_gdn_fwd(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in, const float *S0, float *out, float *S1,
               float *work)
{
    const char *op = "gdn fwd";
    sq_gdn_opts def = sq_gdn_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sq_gdn_check_in(op, d, o, in)) || (rc = sq_check_ptr(op, "out", out))) return rc;
    float *owned, *ws = sq_work_or_alloc(work, sq_gdn_work_floats(d, o), &owned);
    if (!ws) return SQ_ENOMEM;
    int L = o->chunk < d.T ? o->chunk : d.T;
    size_t kv = (size_t)d.K * d.V;
#pragma omp parallel for schedule(dynamic)
    for (int bh = 0; bh < d.B * d.H; bh++) {
        int b = bh / d.H, h = bh % d.H;
        gdn_buf w = head_buf(ws, d, L, 1, bh);
        head_sweep(d, o, in, S0, b, h, L, out, &w);
        if (S1) memcpy(S1 + (size_t)bh * kv, w.S, kv * sizeof(float));
    }
    sq_free(owned);
    return SQ_OK;
}

/* Through the L2 norm x̂ = s x/‖x‖ (or x̂ = s x): dx = s (dx̂ - u (u·dx̂))/‖x‖, u = x/‖x‖. */
static void l2norm_backward(const float *x, const float *dxh, float nrm, double s, int on, int K, float *dx)
{
    if (!on) {
        for (int i = 0; i < K; i++) dx[i] = (float)(s * dxh[i]);
        return;
    }
    float dot = 0, inv = 1.0f / nrm;
    for (int i = 0; i < K; i++) dot += x[i] * dxh[i];
    float a = (float)s * inv, b = dot * inv * inv; /* dx = s/‖x‖ (dx̂ - x (x·dx̂)/‖x‖²) */
    for (int i = 0; i < K; i++) dx[i] = a * (dxh[i] - x[i] * b);
}

int sq_gdn_bwd(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in, const float *S0, const float *dout,
               const float *dS1, sq_gdn_grad *g, float *dS0, float *work)
{
    const char *op = "gdn bwd";
    sq_gdn_opts def = sq_gdn_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sq_gdn_check_in(op, d, o, in)) || (rc = sq_check_ptr(op, "dout", dout)) ||
        (rc = sq_gdn_check_grad(op, g)))
        return rc;
    float *owned, *ws = sq_work_or_alloc(work, sq_gdn_work_floats(d, o), &owned);
    if (!ws) return SQ_ENOMEM;
    int L = o->chunk < d.T ? o->chunk : d.T, nc = n_chunks(d.T, L);
    size_t ldv = (size_t)d.H * d.V, kv = (size_t)d.K * d.V;
    double qs = 1.0 / sqrt((double)d.K);
#pragma omp parallel for schedule(dynamic)
    for (int bh = 0; bh < d.B * d.H; bh++) {
        int b = bh / d.H, h = bh % d.H;
        gdn_buf w = head_buf(ws, d, L, 1, bh);
        head_sweep(d, o, in, S0, b, h, L, NULL, &w); /* each chunk's incoming state into Ssave */
        size_t row = (size_t)b * d.T * d.H + h;
        memset(w.dqh, 0, (size_t)d.T * d.K * sizeof(float));
        memset(w.dkh, 0, (size_t)d.T * d.K * sizeof(float));
        memset(w.dbeta, 0, (size_t)d.T * sizeof(float));
        load_state(dS1, (size_t)bh, d, w.dS);
        for (int ci = nc - 1; ci >= 0; ci--) {
            int t0 = ci * L, Lc = d.T - t0 < L ? d.T - t0 : L;
            size_t r0 = row + (size_t)t0 * d.H;
            chunk_backward(&w, in->v + r0 * d.V, ldv, dout + r0 * d.V, ldv, g->dv + r0 * d.V, ldv,
                           w.Ssave + (size_t)ci * kv, t0, Lc, d.K, d.V, &w);
        }
        if (dS0) memcpy(dS0 + (size_t)bh * kv, w.dS, kv * sizeof(float));
        /* chain rule to the raw inputs; per-head parameter sums kept in dg's tail */
        double ea = exp((double)in->A_log[h]), dAl = 0, dbias = 0;
        for (int t = 0; t < d.T; t++) {
            size_t gi = row + (size_t)t * d.H;
            l2norm_backward(in->q + gi * d.K, w.dqh + (size_t)t * d.K, w.qn[t], qs, o->qk_l2norm, d.K, g->dq + gi * d.K);
            l2norm_backward(in->k + gi * d.K, w.dkh + (size_t)t * d.K, w.kn[t], 1.0, o->qk_l2norm, d.K, g->dk + gi * d.K);
            double z = (double)in->alpha[gi] + in->dt_bias[h];
            double dz = w.dg[t] * -ea * sq_sigmoid(z); /* g = -e^{A_log} softplus(z) */
            g->dalpha[gi] = (float)dz;
            dbias += dz;
            dAl += (double)w.dg[t] * w.g[t];
            double sb = sq_sigmoid(in->beta[gi]);
            g->dbeta[gi] = (float)(w.dbeta[t] * (o->neg_eigval ? 2.0 : 1.0) * sb * (1 - sb));
        }
        w.qn[0] = (float)dAl; /* no longer needed: park the head's sums for the reduction */
        w.kn[0] = (float)dbias;
    }
    for (int h = 0; h < d.H; h++) {
        double dAl = 0, dbias = 0;
        for (int b = 0; b < d.B; b++) {
            gdn_buf w = head_buf(ws, d, L, 1, b * d.H + h);
            dAl += w.qn[0];
            dbias += w.kn[0];
        }
        g->dA_log[h] = (float)dAl;
        g->ddt_bias[h] = (float)dbias;
    }
    sq_free(owned);
    return SQ_OK;
}

int sq_gdn_step(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in, float *S, float *out)
{
    const char *op = "gdn step";
    sq_gdn_opts def = sq_gdn_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sq_gdn_check_in(op, d, o, in)) || (rc = sq_check_ptr(op, "S", S)) || (rc = sq_check_ptr(op, "out", out)))
        return rc;
    if (d.T != 1) return sq_fail(SQ_EINVAL, "%s: one token at a time (T must be 1, got %d)", op, d.T);
    int K = d.K, V = d.V;
    double qs = 1.0 / sqrt((double)K);
    for (int bh = 0; bh < d.B * d.H; bh++) {
        int h = bh % d.H;
        const float *q = in->q + (size_t)bh * K, *k = in->k + (size_t)bh * K, *v = in->v + (size_t)bh * V;
        float *Sh = S + (size_t)bh * K * V, *y = out + (size_t)bh * V;
        double nq, nk;
        qk_norms(q, k, K, o->qk_l2norm, &nq, &nk);
        double a = exp(-exp((double)in->A_log[h]) * sq_softplus((double)in->alpha[bh] + in->dt_bias[h]));
        double beta = (o->neg_eigval ? 2.0 : 1.0) * sq_sigmoid(in->beta[bh]);
        /* (U1) S = a S + k̂ (β (v - a Sᵀk̂))ᵀ,  (U3) o = Sᵀ q̂ */
        for (int i = 0; i < V; i++) {
            double u = 0;
            for (int r = 0; r < K; r++) u += (double)Sh[(size_t)r * V + i] * k[r] / nk;
            float wv = (float)(beta * (v[i] - a * u));
            double acc = 0;
            for (int r = 0; r < K; r++) {
                float *s = Sh + (size_t)r * V + i;
                *s = (float)(a * *s + k[r] / nk * wv);
                acc += (double)*s * q[r] * qs / nq;
            }
            y[i] = (float)acc;
        }
    }
    return SQ_OK;
}
