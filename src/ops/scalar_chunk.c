/* The scalar-gate chunkwise machinery; the math is in scalar_chunk.h. */
#include "scalar_chunk.h"

#include <math.h>
#include <string.h>

#include "../core/core.h"

static size_t r16(size_t n) { return (n + 15) / 16 * 16; }

static int n_chunks(int T, int L) { return (T + L - 1) / L; }

/* Per-chunk scratch carved from the workspace. */
typedef struct {
    double *F, *m;        /* [L] chunk-local cumulative log-decay, stabilizer */
    float *alpha, *gamma; /* [L] inter-chunk read-out factor α_j, state-update factor γ_s */
    float *P, *Z, *G;     /* [L,L] scores, masked scores, masked gradient */
    float *Qa, *Kg;       /* [L,K] α⊙Q, γ⊙K */
    float *R, *U;         /* [L,K] backward temporaries */
    float *dH;            /* [L,V] */
    float *dN;            /* [L] */
    double *dF;           /* [L] */
    float *ru, *cv;       /* [L] factors of the decay mask, when it factorizes */
    int factored;
    float *S, *n;         /* [K,V], [K] running state (fwd) or its gradient (bwd) */
} scratch;

static size_t scratch_floats(int K, int V, int L)
{
    size_t l = (size_t)L;
    return r16(2 * l) * 2 + r16(l) * 2 + r16(l * l) * 3 + r16(l * K) * 4 + r16(l * V) + r16(l) + r16(2 * l) +
           3 * r16(l) + r16((size_t)K * V) + r16(K);
}

static float *carve(float **p, size_t n)
{
    float *r = *p;
    *p += r16(n);
    return r;
}

static scratch make_scratch(float **p, int K, int V, int L)
{
    scratch s;
    size_t l = (size_t)L;
    s.F = (double *)carve(p, 2 * l);
    s.m = (double *)carve(p, 2 * l);
    s.alpha = carve(p, l);
    s.gamma = carve(p, l);
    s.P = carve(p, l * l);
    s.Z = carve(p, l * l);
    s.G = carve(p, l * l);
    s.Qa = carve(p, l * K);
    s.Kg = carve(p, l * K);
    s.R = carve(p, l * K);
    s.U = carve(p, l * K);
    s.dH = carve(p, l * V);
    s.dN = carve(p, l);
    s.dF = (double *)carve(p, 2 * l);
    s.ru = carve(p, l);
    s.cv = carve(p, 2 * l);
    s.factored = 0;
    s.S = carve(p, (size_t)K * V);
    s.n = carve(p, K);
    return s;
}

/* Saved by the forward sweep of the backward: per chunk the incoming S̄,
 * n̄ and m; per step the output and the normalizer N. */
static size_t saved_floats(int T, int K, int V, int L)
{
    size_t nc = (size_t)n_chunks(T, L);
    return r16(nc * K * V) + r16(nc * K) + r16(2 * nc) + r16((size_t)T * V) + r16(T);
}

size_t sc_work_floats(int T, int K, int V, int L, int bwd)
{
    if (L > T) L = T;
    return scratch_floats(K, V, L) + (bwd ? saved_floats(T, K, V, L) : 0) + 16;
}

/* The decay mask A_js = e^{u_j + v_s}, u_j = F_j - m_j, v_s = w_s - F_s.
 * When the spread of v over the chunk is at most 80, it is the outer
 * product ru_j cv_s with ru_j = e^{u_j + c}, cv_s = e^{v_s - c}, c = max v:
 * cv >= e^{-80} cannot underflow and, since u_j + v_j <= 0, ru_j <= e^{80}
 * cannot overflow. This takes 2L exponentials per chunk instead of L²/2. */
static void mask_factors(const sc_seq *s, int t0, int Lc, scratch *c)
{
    double vmax = -INFINITY, vmin = INFINITY;
    for (int j = 0; j < Lc; j++) {
        double v = (s->w ? s->w[t0 + j] : 0.0) - c->F[j];
        vmax = fmax(vmax, v);
        vmin = fmin(vmin, v);
    }
    c->factored = vmax - vmin <= 80;
    if (!c->factored) return;
    for (int j = 0; j < Lc; j++) {
        c->ru[j] = (float)exp(c->F[j] - c->m[j] + vmax);
        c->cv[j] = (float)exp((s->w ? s->w[t0 + j] : 0.0) - c->F[j] - vmax);
    }
}

/* A_js (s <= j) from the factors or directly. */
static inline float mask_at(const sc_seq *s, int t0, const scratch *c, int j, int t)
{
    if (c->factored) return c->ru[j] * c->cv[t];
    double wt = s->w ? s->w[t0 + t] : 0.0;
    return (float)exp(c->F[j] - c->F[t] + wt - c->m[j]);
}

/* Gates of the chunk [t0, t0+Lc): F_j, the stabilizer m_j, α_j = e^{F_j +
 * m_prev - m_j}, γ_s = e^{F_last - F_s + w_s - m_last}; returns β = α_last,
 * the decay of the incoming state over the whole chunk. */
static float chunk_gates(const sc_seq *s, int t0, int Lc, double m_prev, scratch *c)
{
    double F = 0, run = m_prev;
    for (int j = 0; j < Lc; j++) {
        F += s->lam[t0 + j];
        c->F[j] = F;
        double wj = s->w ? s->w[t0 + j] : 0.0;
        if (s->stabilize) {
            if (wj - F > run) run = wj - F;
            c->m[j] = F + run;
        } else c->m[j] = 0.0;
        c->alpha[j] = (float)exp(F + m_prev - c->m[j]);
    }
    double Fl = c->F[Lc - 1], ml = c->m[Lc - 1];
    for (int j = 0; j < Lc; j++) {
        double wj = s->w ? s->w[t0 + j] : 0.0;
        c->gamma[j] = (float)exp(Fl - c->F[j] + wj - ml);
    }
    mask_factors(s, t0, Lc, c);
    return c->alpha[Lc - 1];
}

/* Z = s·(Q Kᵀ) ⊙ A with A_js = e^{F_j - F_s + w_s - m_j} below and on the
 * diagonal, 0 above; P keeps the unmasked s·Q Kᵀ. */
static void masked_scores(const sc_seq *s, int t0, int Lc, scratch *c)
{
    const float *Q = s->q + (size_t)t0 * s->ldq, *K = s->k + (size_t)t0 * s->ldk;
    sq_sgemm(0, 1, Lc, Lc, s->K, s->qscale, Q, (int)s->ldq, K, (int)s->ldk, 0, c->P, Lc);
    for (int j = 0; j < Lc; j++) {
        float *z = c->Z + (size_t)j * Lc;
        const float *p = c->P + (size_t)j * Lc;
        if (c->factored) { /* a straight, vectorizable loop */
            float r = c->ru[j];
            for (int t = 0; t <= j; t++) z[t] = p[t] * (r * c->cv[t]);
        } else
            for (int t = 0; t <= j; t++) z[t] = p[t] * mask_at(s, t0, c, j, t);
        for (int t = j + 1; t < Lc; t++) z[t] = 0;
    }
}

static void advance_state(const sc_seq *s, int t0, int Lc, float beta, scratch *c);

/* One chunk of the forward: writes o rows [t0, t0+Lc) (divided by the
 * normalizer when asked), N_j into Nsave if given, and advances S̄, n̄. */
static void chunk_forward(const sc_seq *s, int t0, int Lc, double m_prev, float *o, size_t ldo, scratch *c,
                          float *Nsave)
{
    int K = s->K, V = s->V;
    const float *Q = s->q + (size_t)t0 * s->ldq, *Vc = s->v + (size_t)t0 * s->ldv;
    float beta = chunk_gates(s, t0, Lc, m_prev, c);
    masked_scores(s, t0, Lc, c);
    float *O = o + (size_t)t0 * ldo;
    /* h̄ = Z V + (α⊙Q) s S̄_prev */
    sq_sgemm(0, 0, Lc, V, Lc, 1, c->Z, Lc, Vc, (int)s->ldv, 0, O, (int)ldo);
    for (int j = 0; j < Lc; j++)
        for (int i = 0; i < K; i++) c->Qa[(size_t)j * K + i] = c->alpha[j] * Q[(size_t)j * s->ldq + i];
    sq_sgemm(0, 0, Lc, V, K, s->qscale, c->Qa, K, c->S, V, 1, O, (int)ldo);
    if (s->normalize) {
        for (int j = 0; j < Lc; j++) {
            double N = 0;
            for (int t = 0; t <= j; t++) N += c->Z[(size_t)j * Lc + t];
            for (int i = 0; i < K; i++) N += (double)s->qscale * c->Qa[(size_t)j * K + i] * c->n[i];
            if (Nsave) Nsave[t0 + j] = (float)N;
            float D = fmaxf(fabsf((float)N), (float)exp(-c->m[j]));
            for (int i = 0; i < V; i++) O[(size_t)j * ldo + i] /= D;
        }
    }
    advance_state(s, t0, Lc, beta, c);
}

/* S̄_next = β S̄_prev + (γ⊙K)ᵀ V,  n̄_next = β n̄_prev + Σ_s γ_s k_s (gates already computed) */
static void advance_state(const sc_seq *s, int t0, int Lc, float beta, scratch *c)
{
    int K = s->K, V = s->V;
    const float *Kc = s->k + (size_t)t0 * s->ldk, *Vc = s->v + (size_t)t0 * s->ldv;
    for (int j = 0; j < Lc; j++)
        for (int i = 0; i < K; i++) c->Kg[(size_t)j * K + i] = c->gamma[j] * Kc[(size_t)j * s->ldk + i];
    for (size_t i = 0; i < (size_t)K * V; i++) c->S[i] *= beta;
    sq_sgemm(1, 0, K, V, Lc, 1, c->Kg, K, Vc, (int)s->ldv, 1, c->S, V);
    if (s->normalize)
        for (int i = 0; i < K; i++) {
            double acc = (double)beta * c->n[i];
            for (int j = 0; j < Lc; j++) acc += c->Kg[(size_t)j * K + i];
            c->n[i] = (float)acc;
        }
}

static void load_state(const sc_seq *s, const sc_state *s0, scratch *c, double *m)
{
    size_t kv = (size_t)s->K * s->V;
    if (s0 && s0->S) memcpy(c->S, s0->S, kv * sizeof(float));
    else memset(c->S, 0, kv * sizeof(float));
    if (s0 && s0->n) memcpy(c->n, s0->n, (size_t)s->K * sizeof(float));
    else memset(c->n, 0, (size_t)s->K * sizeof(float));
    *m = (s->stabilize && s0 && s0->m) ? *s0->m : 0.0;
}

void sc_fwd(const sc_seq *s, const sc_state *s0, float *o, size_t ldo, sc_state *s1, float *work)
{
    int L = s->L < s->T ? s->L : s->T;
    scratch c = make_scratch(&work, s->K, s->V, L);
    double m;
    load_state(s, s0, &c, &m);
    for (int t0 = 0; t0 < s->T; t0 += L) {
        int Lc = s->T - t0 < L ? s->T - t0 : L;
        chunk_forward(s, t0, Lc, m, o, ldo, &c, NULL);
        m = c.m[Lc - 1];
    }
    if (s1 && s1->S) memcpy(s1->S, c.S, (size_t)s->K * s->V * sizeof(float));
    if (s1 && s1->n) memcpy(s1->n, c.n, (size_t)s->K * sizeof(float));
    if (s1 && s1->m) *s1->m = (float)m;
}

/* dH_j, dN_j from do_j: with the normalizer o = h̄/D, D = max(|N|, e^{-m}):
 * dh̄ = do/D, dN = -sign(N) (do·o)/D when |N| > e^{-m}, else 0. */
static void output_grads(const sc_seq *s, int t0, int Lc, const float *dout, size_t lddo, const float *osave,
                         const float *Nsave, scratch *c)
{
    int V = s->V;
    for (int j = 0; j < Lc; j++) {
        const float *d = dout + (size_t)(t0 + j) * lddo;
        float *dh = c->dH + (size_t)j * V;
        if (!s->normalize) {
            memcpy(dh, d, (size_t)V * sizeof(float));
            c->dN[j] = 0;
            continue;
        }
        float N = Nsave[t0 + j], floor = (float)exp(-c->m[j]);
        float D = fmaxf(fabsf(N), floor);
        const float *oj = osave + (size_t)(t0 + j) * V;
        double dot = 0;
        for (int i = 0; i < V; i++) {
            dh[i] = d[i] / D;
            dot += (double)d[i] * oj[i];
        }
        c->dN[j] = fabsf(N) > floor ? (float)(-(N > 0 ? 1 : -1) * dot / D) : 0.0f;
    }
}

/* Row j of X·y for X [Lc,n] rows and y rows of the same shape: Σ_i x_ji y_ji. */
static double row_dot(const float *x, size_t ldx, const float *y, size_t ldy, int j, int n)
{
    double acc = 0;
    for (int i = 0; i < n; i++) acc += (double)x[(size_t)j * ldx + i] * y[(size_t)j * ldy + i];
    return acc;
}

/* One chunk of the backward; c->S, c->n hold dS̄_next, dn̄_next on entry and
 * dS̄_prev, dn̄_prev on exit. Sp, np are the chunk's incoming S̄, n̄. */
static void chunk_backward(const sc_seq *s, int t0, int Lc, double m_prev, const float *Sp, const float *np,
                           scratch *c, float *dq, size_t lddq, float *dk, size_t lddk, float *dv, size_t lddv,
                           float *dlam, float *dw)
{
    int K = s->K, V = s->V;
    float qs = s->qscale;
    const float *Q = s->q + (size_t)t0 * s->ldq, *Kc = s->k + (size_t)t0 * s->ldk, *Vc = s->v + (size_t)t0 * s->ldv;
    float *dQ = dq + (size_t)t0 * lddq, *dK = dk + (size_t)t0 * lddk, *dV = dv + (size_t)t0 * lddv;
    float beta = chunk_gates(s, t0, Lc, m_prev, c);
    masked_scores(s, t0, Lc, c); /* P = s Q Kᵀ, Z = P ⊙ A */
    for (int j = 0; j < Lc; j++) c->dF[j] = 0;

    /* dP̃ = dH Vᵀ + dN 1ᵀ (masked); G = A ⊙ dP̃; E = Z ⊙ dP̃ = P ⊙ G */
    sq_sgemm(0, 1, Lc, Lc, V, 1, c->dH, V, Vc, (int)s->ldv, 0, c->G, Lc);
    /* E_jt = Z_jt dP̃_jt is the gradient w.r.t. the exponent of A_jt:
     * it adds to dF_j (row sums) and subtracts from dF_t, adds to dw_t (column sums). */
    float *colE = c->cv + Lc; /* cv has room for 2L floats */
    for (int t = 0; t < Lc; t++) colE[t] = 0;
    for (int j = 0; j < Lc; j++) {
        float *g = c->G + (size_t)j * Lc;
        const float *z = c->Z + (size_t)j * Lc;
        float dn = c->dN[j], rowE = 0;
        for (int t = 0; t <= j; t++) {
            float dp = g[t] + dn, E = z[t] * dp;
            g[t] = (c->factored ? c->ru[j] * c->cv[t] : mask_at(s, t0, c, j, t)) * dp;
            rowE += E;
            colE[t] += E;
        }
        for (int t = j + 1; t < Lc; t++) g[t] = 0;
        c->dF[j] += rowE;
    }
    for (int t = 0; t < Lc; t++) {
        c->dF[t] -= colE[t];
        if (dw) dw[t0 + t] += colE[t];
    }

    /* dQ = s G K + α⊙(s (dH S̄_prevᵀ + dN n̄_prevᵀ)); e_j = the α_j exponent gradient */
    sq_sgemm(0, 0, Lc, K, Lc, qs, c->G, Lc, Kc, (int)s->ldk, 0, dQ, (int)lddq);
    sq_sgemm(0, 1, Lc, K, V, 1, c->dH, V, Sp, V, 0, c->R, K);
    for (int j = 0; j < Lc; j++) {
        float *r = c->R + (size_t)j * K;
        if (s->normalize)
            for (int i = 0; i < K; i++) r[i] += c->dN[j] * np[i];
        float f = c->alpha[j] * qs;
        c->dF[j] += f * row_dot(Q, s->ldq, c->R, K, j, K);
        for (int i = 0; i < K; i++) dQ[(size_t)j * lddq + i] += f * r[i];
    }

    /* dK = s Gᵀ Q + γ⊙(V dS̄ᵀ + 1 dn̄ᵀ);  c_s = the γ_s exponent gradient */
    sq_sgemm(1, 0, Lc, K, Lc, qs, c->G, Lc, Q, (int)s->ldq, 0, dK, (int)lddk);
    sq_sgemm(0, 1, Lc, K, V, 1, Vc, (int)s->ldv, c->S, V, 0, c->U, K);
    double csum = 0;
    for (int j = 0; j < Lc; j++) {
        float *u = c->U + (size_t)j * K;
        if (s->normalize)
            for (int i = 0; i < K; i++) u[i] += c->n[i];
        double cs = c->gamma[j] * row_dot(Kc, s->ldk, c->U, K, j, K);
        c->dF[j] -= cs;
        csum += cs;
        if (dw) dw[t0 + j] += (float)cs;
        for (int i = 0; i < K; i++) dK[(size_t)j * lddk + i] += c->gamma[j] * u[i];
    }

    /* dV = Zᵀ dH + (γ⊙K) dS̄ */
    sq_sgemm(1, 0, Lc, V, Lc, 1, c->Z, Lc, c->dH, V, 0, dV, (int)lddv);
    for (int j = 0; j < Lc; j++)
        for (int i = 0; i < K; i++) c->Kg[(size_t)j * K + i] = c->gamma[j] * Kc[(size_t)j * s->ldk + i];
    sq_sgemm(0, 0, Lc, V, K, 1, c->Kg, K, c->S, V, 1, dV, (int)lddv);

    /* β term, then dS̄_prev = s (α⊙Q)ᵀ dH + β dS̄, dn̄_prev = s (α⊙Q)ᵀ dN + β dn̄ */
    double b = 0;
    for (size_t i = 0; i < (size_t)K * V; i++) b += (double)Sp[i] * c->S[i];
    if (s->normalize)
        for (int i = 0; i < K; i++) b += (double)np[i] * c->n[i];
    c->dF[Lc - 1] += csum + beta * b;
    for (int j = 0; j < Lc; j++)
        for (int i = 0; i < K; i++) c->Qa[(size_t)j * K + i] = c->alpha[j] * Q[(size_t)j * s->ldq + i];
    for (size_t i = 0; i < (size_t)K * V; i++) c->S[i] *= beta;
    sq_sgemm(1, 0, K, V, Lc, qs, c->Qa, K, c->dH, V, 1, c->S, V);
    if (s->normalize)
        for (int i = 0; i < K; i++) {
            double acc = (double)beta * c->n[i];
            for (int j = 0; j < Lc; j++) acc += (double)qs * c->Qa[(size_t)j * K + i] * c->dN[j];
            c->n[i] = (float)acc;
        }

    /* F_j = Σ_{r<=j} λ_r, so dλ_r = Σ_{j>=r} dF_j */
    double acc = 0;
    for (int j = Lc - 1; j >= 0; j--) {
        acc += c->dF[j];
        dlam[t0 + j] = (float)acc;
    }
}

void sc_bwd(const sc_seq *s, const sc_state *s0, const float *dout, size_t lddo, const sc_state *ds1,
            float *dq, size_t lddq, float *dk, size_t lddk, float *dv, size_t lddv, float *dlam, float *dw,
            sc_state *ds0, float *work)
{
    int L = s->L < s->T ? s->L : s->T, K = s->K, V = s->V, nc = n_chunks(s->T, L);
    size_t kv = (size_t)K * V;
    scratch c = make_scratch(&work, K, V, L);
    float *Ssave = carve(&work, (size_t)nc * kv), *nsave = carve(&work, (size_t)nc * K);
    double *msave = (double *)carve(&work, 2 * (size_t)nc);
    float *osave = carve(&work, (size_t)s->T * V), *Nsave = carve(&work, s->T);

    /* Forward sweep: keep each chunk's incoming state and the outputs. */
    double m;
    load_state(s, s0, &c, &m);
    for (int ci = 0; ci < nc; ci++) {
        int t0 = ci * L, Lc = s->T - t0 < L ? s->T - t0 : L;
        memcpy(Ssave + (size_t)ci * kv, c.S, kv * sizeof(float));
        memcpy(nsave + (size_t)ci * K, c.n, (size_t)K * sizeof(float));
        msave[ci] = m;
        if (s->normalize) chunk_forward(s, t0, Lc, m, osave, V, &c, Nsave); /* o, N for the normalizer */
        else advance_state(s, t0, Lc, chunk_gates(s, t0, Lc, m, &c), &c);
        m = c.m[Lc - 1];
    }

    /* Backward sweep, carrying dS̄ and dn̄ from the last chunk to the first. */
    if (ds1 && ds1->S) memcpy(c.S, ds1->S, kv * sizeof(float));
    else memset(c.S, 0, kv * sizeof(float));
    if (ds1 && ds1->n && s->normalize) memcpy(c.n, ds1->n, (size_t)K * sizeof(float));
    else memset(c.n, 0, (size_t)K * sizeof(float));
    if (dw) memset(dw, 0, (size_t)s->T * sizeof(float));
    for (int ci = nc - 1; ci >= 0; ci--) {
        int t0 = ci * L, Lc = s->T - t0 < L ? s->T - t0 : L;
        chunk_gates(s, t0, Lc, msave[ci], &c); /* m_j for the output gradients */
        output_grads(s, t0, Lc, dout, lddo, osave, Nsave, &c);
        chunk_backward(s, t0, Lc, msave[ci], Ssave + (size_t)ci * kv, nsave + (size_t)ci * K, &c, dq, lddq, dk,
                       lddk, dv, lddv, dlam, dw);
    }
    if (ds0 && ds0->S) memcpy(ds0->S, c.S, kv * sizeof(float));
    if (ds0 && ds0->n) memcpy(ds0->n, c.n, (size_t)K * sizeof(float));
}
