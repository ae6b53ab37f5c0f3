/* Mamba-2 SSD on the scalar-gate machinery (ssd.h): per head, q = C_t of
 * the head's group, k = Δ_t B_t (the write Δ folded into k), v = x_t,
 * λ_t = Δ_t A_h, no stabilizer or normalizer; plus the skip D_h x_t. */
#include "ssd.h"

#include <math.h>
#include <string.h>

#include "gates.h"
#include "scalar_chunk.h"

sq_ssd_opts sq_ssd_defaults(void) { return (sq_ssd_opts){64, 1}; }

static size_t r16(size_t n) { return (n + 15) / 16 * 16; }

/* Per head: Δ, λ, dλ [T]; Δ⊙B, dC, d(ΔB) [T,K]; 3 partial sums; then the
 * machinery's workspace. */
static size_t head_floats(sq_dims d, int L)
{
    return 3 * r16(d.T) + 3 * r16((size_t)d.T * d.K) + 16 + r16(sc_work_floats(d.T, d.K, d.V, L, 1));
}

size_t sq_ssd_work_floats(sq_dims d, const sq_ssd_opts *o)
{
    int L = o ? o->chunk : 64;
    if (L < 1 || d.B < 1 || d.T < 1 || d.H < 1 || d.K < 1 || d.V < 1) return 0;
    return (size_t)d.B * d.H * head_floats(d, L);
}

typedef struct {
    float *delta, *lam, *dlam, *kB, *dC, *dkB, *part, *sc;
} head_buf;

static head_buf head_buffers(float *ws, sq_dims d, int L, int bh)
{
    head_buf h;
    float *p = ws + (size_t)bh * head_floats(d, L);
    size_t tk = r16((size_t)d.T * d.K);
    h.delta = p;
    h.lam = p + r16(d.T);
    h.dlam = p + 2 * r16(d.T);
    h.kB = p + 3 * r16(d.T);
    h.dC = h.kB + tk;
    h.dkB = h.dC + tk;
    h.part = h.dkB + tk;
    h.sc = h.part + 16;
    return h;
}

static int check_in(const char *op, sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in)
{
    int rc;
    if ((rc = sq_check_dims(op, d)) || (rc = sq_check_ptr(op, "in", in))) return rc;
    if ((rc = sq_check_ptr(op, "x", in->x)) || (rc = sq_check_ptr(op, "Bm", in->Bm)) ||
        (rc = sq_check_ptr(op, "Cm", in->Cm)) || (rc = sq_check_ptr(op, "dt", in->dt)) ||
        (rc = sq_check_ptr(op, "dt_bias", in->dt_bias)) || (rc = sq_check_ptr(op, "A", in->A)) ||
        (rc = sq_check_ptr(op, "D", in->D)) || (rc = sq_check_chunk(op, o->chunk)))
        return rc;
    if (o->ngroups < 1 || d.H % o->ngroups)
        return sq_fail(SQ_EINVAL, "%s: ngroups must be >= 1 and divide H = %d, got %d", op, d.H, o->ngroups);
    for (int h = 0; h < d.H; h++)
        if (!(in->A[h] < 0))
            return sq_fail(SQ_EINVAL, "%s: A[%d] = %g but A must be < 0 (keep A = -exp(A_log))", op, h, in->A[h]);
    return SQ_OK;
}

/* Δ_t = softplus(Δ̃_t + bias_h), λ_t = Δ_t A_h, and the head's Δ_t B_t rows. */
static void head_gates(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in, int b, int h, head_buf *hb)
{
    int G = o->ngroups, g = h / (d.H / G);
    for (int t = 0; t < d.T; t++) {
        size_t gi = ((size_t)b * d.T + t) * d.H + h;
        double delta = sq_softplus((double)in->dt[gi] + in->dt_bias[h]);
        hb->delta[t] = (float)delta;
        hb->lam[t] = (float)(delta * in->A[h]);
        const float *Bt = in->Bm + (((size_t)b * d.T + t) * G + g) * d.K;
        for (int i = 0; i < d.K; i++) hb->kB[(size_t)t * d.K + i] = hb->delta[t] * Bt[i];
    }
}

static sc_seq head_seq(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in, int b, int h, const head_buf *hb)
{
    int G = o->ngroups, g = h / (d.H / G);
    sc_seq s = {d.T, d.K, d.V, o->chunk, 1.0f, 0, 0,
                in->Cm + ((size_t)b * d.T * G + g) * d.K, hb->kB, in->x + ((size_t)b * d.T * d.H + h) * d.V,
                (size_t)G * d.K, (size_t)d.K, (size_t)d.H * d.V, hb->lam, NULL};
    return s;
}

int sq_ssd_fwd(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in, const float *S0, float *y, float *S1,
               float *work)
{
    const char *op = "ssd fwd";
    sq_ssd_opts def = sq_ssd_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = check_in(op, d, o, in)) || (rc = sq_check_ptr(op, "y", y))) return rc;
    float *owned, *ws = sq_work_or_alloc(work, sq_ssd_work_floats(d, o), &owned);
    if (!ws) return SQ_ENOMEM;
    size_t kv = (size_t)d.K * d.V, ld = (size_t)d.H * d.V;
#pragma omp parallel for schedule(dynamic)
    for (int bh = 0; bh < d.B * d.H; bh++) {
        int b = bh / d.H, h = bh % d.H;
        head_buf hb = head_buffers(ws, d, o->chunk, bh);
        head_gates(d, o, in, b, h, &hb);
        sc_seq s = head_seq(d, o, in, b, h, &hb);
        sc_state st0 = {S0 ? (float *)S0 + bh * kv : NULL, NULL, NULL}, st1 = {S1 ? S1 + bh * kv : NULL, NULL, NULL};
        float *yh = y + ((size_t)b * d.T * d.H + h) * d.V;
        sc_fwd(&s, &st0, yh, ld, &st1, hb.sc);
        /* skip: y_t += D_h x_t */
        for (int t = 0; t < d.T; t++)
            for (int i = 0; i < d.V; i++) yh[(size_t)t * ld + i] += in->D[h] * s.v[(size_t)t * ld + i];
    }
    sq_free(owned);
    return SQ_OK;
}

int sq_ssd_bwd(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in, const float *S0, const float *dy,
               const float *dS1, sq_ssd_grad *g, float *dS0, float *work)
{
    const char *op = "ssd bwd";
    sq_ssd_opts def = sq_ssd_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = check_in(op, d, o, in)) || (rc = sq_check_ptr(op, "dy", dy)) || (rc = sq_check_ptr(op, "g", g)))
        return rc;
    if ((rc = sq_check_ptr(op, "g->dx", g->dx)) || (rc = sq_check_ptr(op, "g->dBm", g->dBm)) ||
        (rc = sq_check_ptr(op, "g->dCm", g->dCm)) || (rc = sq_check_ptr(op, "g->ddt", g->ddt)) ||
        (rc = sq_check_ptr(op, "g->ddt_bias", g->ddt_bias)) || (rc = sq_check_ptr(op, "g->dA", g->dA)) ||
        (rc = sq_check_ptr(op, "g->dD", g->dD)))
        return rc;
    float *owned, *ws = sq_work_or_alloc(work, sq_ssd_work_floats(d, o), &owned);
    if (!ws) return SQ_ENOMEM;
    int G = o->ngroups, hpg = d.H / G;
    size_t kv = (size_t)d.K * d.V, ld = (size_t)d.H * d.V;
#pragma omp parallel for schedule(dynamic)
    for (int bh = 0; bh < d.B * d.H; bh++) {
        int b = bh / d.H, h = bh % d.H;
        head_buf hb = head_buffers(ws, d, o->chunk, bh);
        head_gates(d, o, in, b, h, &hb);
        sc_seq s = head_seq(d, o, in, b, h, &hb);
        size_t row = (size_t)b * d.T * d.H + h;
        sc_state st0 = {S0 ? (float *)S0 + bh * kv : NULL, NULL, NULL};
        sc_state ds1 = {dS1 ? (float *)dS1 + bh * kv : NULL, NULL, NULL}, ds0 = {dS0 ? dS0 + bh * kv : NULL, NULL, NULL};
        float *dxh = g->dx + row * d.V;
        sc_bwd(&s, &st0, dy + row * d.V, ld, &ds1, hb.dC, d.K, hb.dkB, d.K, dxh, ld, hb.dlam, NULL, &ds0, hb.sc);
        /* Chain rule: k = ΔB, λ = ΔA, Δ = softplus(Δ̃ + bias), skip D x. */
        double dA = 0, dD = 0, dbias = 0;
        for (int t = 0; t < d.T; t++) {
            size_t gi = row + (size_t)t * d.H;
            const float *Bt = in->Bm + (((size_t)b * d.T + t) * G + h / hpg) * d.K;
            double ddelta = (double)hb.dlam[t] * in->A[h];
            for (int i = 0; i < d.K; i++) ddelta += (double)hb.dkB[(size_t)t * d.K + i] * Bt[i];
            dA += (double)hb.dlam[t] * hb.delta[t];
            double ddt = ddelta * sq_sigmoid((double)in->dt[gi] + in->dt_bias[h]);
            g->ddt[gi] = (float)ddt;
            dbias += ddt;
            for (int i = 0; i < d.V; i++) {
                size_t xi = (size_t)t * ld + i;
                dD += (double)dy[row * d.V + xi] * in->x[row * d.V + xi];
                dxh[xi] += in->D[h] * dy[row * d.V + xi];
            }
            for (int i = 0; i < d.K; i++) hb.dkB[(size_t)t * d.K + i] *= hb.delta[t]; /* now dB of this head */
        }
        hb.part[0] = (float)dA;
        hb.part[1] = (float)dD;
        hb.part[2] = (float)dbias;
    }
    /* Reductions: B and C over the heads of a group, A, D, bias over batch. */
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < d.B * d.T; bt++) {
        int b = bt / d.T, t = bt % d.T;
        for (int gr = 0; gr < G; gr++) {
            float *dB = g->dBm + ((size_t)bt * G + gr) * d.K, *dC = g->dCm + ((size_t)bt * G + gr) * d.K;
            memset(dB, 0, (size_t)d.K * sizeof(float));
            memset(dC, 0, (size_t)d.K * sizeof(float));
            for (int h = gr * hpg; h < (gr + 1) * hpg; h++) {
                head_buf hb = head_buffers(ws, d, o->chunk, b * d.H + h);
                for (int i = 0; i < d.K; i++) {
                    dB[i] += hb.dkB[(size_t)t * d.K + i];
                    dC[i] += hb.dC[(size_t)t * d.K + i];
                }
            }
        }
    }
    for (int h = 0; h < d.H; h++) {
        double dA = 0, dD = 0, dbias = 0;
        for (int b = 0; b < d.B; b++) {
            head_buf hb = head_buffers(ws, d, o->chunk, b * d.H + h);
            dA += hb.part[0];
            dD += hb.part[1];
            dbias += hb.part[2];
        }
        g->dA[h] = (float)dA;
        g->dD[h] = (float)dD;
        g->ddt_bias[h] = (float)dbias;
    }
    sq_free(owned);
    return SQ_OK;
}

int sq_ssd_step(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in, float *S, float *y)
{
    const char *op = "ssd step";
    sq_ssd_opts def = sq_ssd_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = check_in(op, d, o, in)) || (rc = sq_check_ptr(op, "S", S)) || (rc = sq_check_ptr(op, "y", y))) return rc;
    if (d.T != 1) return sq_fail(SQ_EINVAL, "%s: one token at a time (T must be 1, got %d)", op, d.T);
    int G = o->ngroups, hpg = d.H / G;
    for (int bh = 0; bh < d.B * d.H; bh++) {
        int b = bh / d.H, h = bh % d.H;
        const float *x = in->x + (size_t)bh * d.V, *Bt = in->Bm + ((size_t)b * G + h / hpg) * d.K,
                    *Ct = in->Cm + ((size_t)b * G + h / hpg) * d.K;
        float *Sh = S + (size_t)bh * d.K * d.V, *yh = y + (size_t)bh * d.V;
        double delta = sq_softplus((double)in->dt[bh] + in->dt_bias[h]);
        float a = (float)exp(delta * in->A[h]), dl = (float)delta;
        for (int i = 0; i < d.V; i++) yh[i] = in->D[h] * x[i];
        /* (U1) S = a S + Δ B xᵀ, (U3) y = Sᵀ C + D x */
        for (int r = 0; r < d.K; r++)
            for (int i = 0; i < d.V; i++) {
                float *s = Sh + (size_t)r * d.V + i;
                *s = a * *s + dl * Bt[r] * x[i];
                yh[i] += Ct[r] * *s;
            }
    }
    return SQ_OK;
}
