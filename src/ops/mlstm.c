/* mLSTM on the scalar-gate chunkwise machinery (scalar_chunk.h): log-decay
 * λ = logsigmoid(f̃) (or f̃), log-write w = ĩ, stabilizer and normalizer on,
 * q scaled by 1/√K. The math is in mlstm.h. */
#include "mlstm.h"

#include <math.h>
#include <string.h>

#include "gates.h"
#include "scalar_chunk.h"

sq_mlstm_opts sq_mlstm_defaults(void) { return (sq_mlstm_opts){64, 0}; }

static size_t r16(size_t n) { return (n + 15) / 16 * 16; }

/* Per head: λ, w, dλ, dw [T] and the machinery's backward workspace. */
static size_t head_floats(sq_dims d, int L) { return 4 * r16(d.T) + r16(sc_work_floats(d.T, d.K, d.V, L, 1)); }

size_t sq_mlstm_work_floats(sq_dims d, const sq_mlstm_opts *o)
{
    int L = o ? o->chunk : 64;
    if (L < 1 || d.B < 1 || d.T < 1 || d.H < 1 || d.K < 1 || d.V < 1) return 0;
    return (size_t)d.B * d.H * head_floats(d, L);
}

static int check_in(const char *op, sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in)
{
    int rc;
    if ((rc = sq_check_dims(op, d)) || (rc = sq_check_ptr(op, "in", in))) return rc;
    if ((rc = sq_check_ptr(op, "q", in->q)) || (rc = sq_check_ptr(op, "k", in->k)) ||
        (rc = sq_check_ptr(op, "v", in->v)) || (rc = sq_check_ptr(op, "igate", in->igate)) ||
        (rc = sq_check_ptr(op, "fgate", in->fgate)))
        return rc;
    if (o && (rc = sq_check_chunk(op, o->chunk))) return rc;
    if (o && (o->exp_forget != 0 && o->exp_forget != 1))
        return sq_fail(SQ_EINVAL, "%s: exp_forget must be 0 or 1, got %d", op, o->exp_forget);
    return SQ_OK;
}

static int check_state(const char *op, const char *name, const sq_mlstm_state *s)
{
    if (s && (!s->S || !s->n || !s->m))
        return sq_fail(SQ_EINVAL, "%s: %s needs all of S, n and m (or pass NULL for the zero state)", op, name);
    return SQ_OK;
}

/* The head's gates: λ_t (log forget) and w_t = ĩ_t, from the [B,T,H] inputs. */
static void head_gates(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in, int b, int h, float *lam, float *w)
{
    for (int t = 0; t < d.T; t++) {
        size_t g = ((size_t)b * d.T + t) * d.H + h;
        double f = in->fgate[g];
        lam[t] = (float)(o->exp_forget ? f : sq_logsigmoid(f));
        w[t] = in->igate[g];
    }
}

static sc_seq head_seq(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in, int b, int h, const float *lam,
                       const float *w)
{
    size_t row = (size_t)b * d.T * d.H + h;
    sc_seq s = {d.T, d.K, d.V, o->chunk, 1.0f / sqrtf((float)d.K), 1, 1,
                in->q + row * d.K, in->k + row * d.K, in->v + row * d.V,
                (size_t)d.H * d.K, (size_t)d.H * d.K, (size_t)d.H * d.V, lam, w};
    return s;
}

/* The head's slice of a [B,H,...] state (NULL state: all NULL). */
static sc_state head_state(const sq_mlstm_state *s, sq_dims d, int b, int h)
{
    size_t bh = (size_t)b * d.H + h;
    sc_state r = {NULL, NULL, NULL};
    if (s) {
        r.S = s->S ? s->S + bh * d.K * d.V : NULL;
        r.n = s->n ? s->n + bh * d.K : NULL;
        r.m = s->m ? s->m + bh : NULL;
    }
    return r;
}

int sq_mlstm_fwd(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in, const sq_mlstm_state *s0, float *out,
                 sq_mlstm_state *s1, float *work)
{
    const char *op = "mlstm fwd";
    sq_mlstm_opts def = sq_mlstm_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = check_in(op, d, o, in)) || (rc = sq_check_ptr(op, "out", out)) || (rc = check_state(op, "s0", s0)))
        return rc;
    float *owned, *ws = sq_work_or_alloc(work, sq_mlstm_work_floats(d, o), &owned);
    if (!ws) return SQ_ENOMEM;
    size_t per = head_floats(d, o->chunk);
#pragma omp parallel for schedule(dynamic)
    for (int bh = 0; bh < d.B * d.H; bh++) {
        int b = bh / d.H, h = bh % d.H;
        float *lam = ws + (size_t)bh * per, *w = lam + r16(d.T), *hw = w + 3 * r16(d.T);
        head_gates(d, o, in, b, h, lam, w);
        sc_seq s = head_seq(d, o, in, b, h, lam, w);
        sc_state st0 = head_state(s0, d, b, h), st1 = head_state(s1, d, b, h);
        sc_fwd(&s, s0 ? &st0 : NULL, out + ((size_t)b * d.T * d.H + h) * d.V, (size_t)d.H * d.V, &st1, hw);
    }
    sq_free(owned);
    return SQ_OK;
}

int sq_mlstm_bwd(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in, const sq_mlstm_state *s0,
                 const float *dout, const sq_mlstm_state *ds1, sq_mlstm_grad *g, sq_mlstm_state *ds0, float *work)
{
    const char *op = "mlstm bwd";
    sq_mlstm_opts def = sq_mlstm_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = check_in(op, d, o, in)) || (rc = sq_check_ptr(op, "dout", dout)) || (rc = sq_check_ptr(op, "g", g)) ||
        (rc = check_state(op, "s0", s0)) || (rc = check_state(op, "ds0", ds0)))
        return rc;
    if (ds1 && (!ds1->S || !ds1->n)) return sq_fail(SQ_EINVAL, "%s: ds1 needs S and n (or pass NULL)", op);
    if ((rc = sq_check_ptr(op, "g->dq", g->dq)) || (rc = sq_check_ptr(op, "g->dk", g->dk)) ||
        (rc = sq_check_ptr(op, "g->dv", g->dv)) || (rc = sq_check_ptr(op, "g->digate", g->digate)) ||
        (rc = sq_check_ptr(op, "g->dfgate", g->dfgate)))
        return rc;
    float *owned, *ws = sq_work_or_alloc(work, sq_mlstm_work_floats(d, o), &owned);
    if (!ws) return SQ_ENOMEM;
    size_t per = head_floats(d, o->chunk);
    size_t ldk = (size_t)d.H * d.K, ldv = (size_t)d.H * d.V;
#pragma omp parallel for schedule(dynamic)
    for (int bh = 0; bh < d.B * d.H; bh++) {
        int b = bh / d.H, h = bh % d.H;
        float *lam = ws + (size_t)bh * per, *w = lam + r16(d.T), *dlam = w + r16(d.T), *dw = dlam + r16(d.T);
        float *hw = dw + r16(d.T);
        head_gates(d, o, in, b, h, lam, w);
        sc_seq s = head_seq(d, o, in, b, h, lam, w);
        sc_state st0 = head_state(s0, d, b, h), dst1 = head_state(ds1, d, b, h), dst0 = head_state(ds0, d, b, h);
        size_t row = (size_t)b * d.T * d.H + h;
        sc_bwd(&s, s0 ? &st0 : NULL, dout + row * d.V, ldv, ds1 ? &dst1 : NULL, g->dq + row * d.K, ldk,
               g->dk + row * d.K, ldk, g->dv + row * d.V, ldv, dlam, dw, ds0 ? &dst0 : NULL, hw);
        /* λ = logsigmoid(f̃): dλ/df̃ = σ(-f̃); exponential gate: 1 */
        for (int t = 0; t < d.T; t++) {
            size_t gi = ((size_t)b * d.T + t) * d.H + h;
            g->digate[gi] = dw[t];
            g->dfgate[gi] = o->exp_forget ? dlam[t] : (float)(dlam[t] * sq_sigmoid(-(double)in->fgate[gi]));
        }
        /* The initial state enters as S̄0 e^{m0}: dm0 = Σ dS̄0 ⊙ S̄0 + Σ dn̄0 ⊙ n̄0. */
        if (ds0) {
            double dm = 0;
            if (s0) {
                for (size_t i = 0; i < (size_t)d.K * d.V; i++) dm += (double)dst0.S[i] * st0.S[i];
                for (int i = 0; i < d.K; i++) dm += (double)dst0.n[i] * st0.n[i];
            }
            *dst0.m = (float)dm;
        }
    }
    sq_free(owned);
    return SQ_OK;
}

int sq_mlstm_step(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in, sq_mlstm_state *s, float *out)
{
    const char *op = "mlstm step";
    sq_mlstm_opts def = sq_mlstm_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = check_in(op, d, o, in)) || (rc = sq_check_ptr(op, "out", out)) || (rc = sq_check_ptr(op, "state", s)) ||
        (rc = check_state(op, "state", s)))
        return rc;
    if (d.T != 1) return sq_fail(SQ_EINVAL, "%s: one token at a time (T must be 1, got %d); use sq_mlstm_fwd", op, d.T);
    float qs = 1.0f / sqrtf((float)d.K);
#pragma omp parallel for schedule(static) if (d.B * d.H * d.K * d.V > 65536)
    for (int bh = 0; bh < d.B * d.H; bh++) {
        int K = d.K, V = d.V;
        const float *q = in->q + (size_t)bh * K, *k = in->k + (size_t)bh * K, *v = in->v + (size_t)bh * V;
        float *S = s->S + (size_t)bh * K * V, *n = s->n + (size_t)bh * K, *y = out + (size_t)bh * V;
        double f = in->fgate[bh], ig = in->igate[bh], lam = o->exp_forget ? f : sq_logsigmoid(f);
        /* stabilizer m_t = max(log a_t + m_{t-1}, ĩ_t); scaled updates (U1), (U2) */
        double m_new = fmax(lam + s->m[bh], ig);
        float fs = (float)exp(lam + s->m[bh] - m_new), is = (float)exp(ig - m_new);
        for (int i = 0; i < V; i++) y[i] = 0;
        double N = 0;
        for (int a = 0; a < K; a++) {
            float *Sa = S + (size_t)a * V, ka = is * k[a], qa = qs * q[a];
            for (int i = 0; i < V; i++) {
                Sa[i] = fs * Sa[i] + ka * v[i];
                y[i] += qa * Sa[i];
            }
            n[a] = fs * n[a] + ka;
            N += (double)qa * n[a];
        }
        /* (U3) o = S̄ᵀq / max(|n̄ᵀq|, e^{-m}) */
        float D = fmaxf(fabsf((float)N), (float)exp(-m_new));
        for (int i = 0; i < V; i++) y[i] /= D;
        s->m[bh] = (float)m_new;
    }
    return SQ_OK;
}
