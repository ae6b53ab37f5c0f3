/* sLSTM: the nonlinear recurrence of slstm.h, batched over B per head with
 * one GEMM per step for the recurrent products, forward and backward
 * through time. Gate arithmetic is done in double. */
#include "slstm.h"

#include <math.h>
#include <string.h>

#include "gates.h"

sq_slstm_opts sq_slstm_defaults(void) { return (sq_slstm_opts){0}; }

static size_t r16(size_t n) { return (n + 15) / 16 * 16; }

/* Per head: P [T,B,4K] pre-activations (then their gradients), C, N, M
 * [T,B,K] cell states, Hs [(T+1),B,K] h_{t-1} for every t, and [B,K]
 * carries dh, dc, dn. */
static size_t head_floats(sq_dims d)
{
    size_t tb = (size_t)d.T * d.B, bk = (size_t)d.B * d.K;
    return r16(tb * 4 * d.K) + 3 * r16(tb * d.K) + r16((tb + d.B) * d.K) + 3 * r16(bk) + r16(4 * bk);
}

size_t sq_slstm_work_floats(sq_dims d, const sq_slstm_opts *o)
{
    if (d.B < 1 || d.T < 1 || d.H < 1 || d.K < 1) return 0;
    return (size_t)d.H * head_floats(d);
}

typedef struct {
    float *P, *C, *N, *M, *Hs, *dh, *dc, *dn, *pre;
} slstm_buf;

static slstm_buf head_buf(float *ws, sq_dims d, int h)
{
    slstm_buf b;
    float *p = ws + (size_t)h * head_floats(d);
    size_t tb = (size_t)d.T * d.B, bk = (size_t)d.B * d.K;
    b.P = p;
    p += r16(tb * 4 * d.K);
    b.C = p;
    p += r16(tb * d.K);
    b.N = p;
    p += r16(tb * d.K);
    b.M = p;
    p += r16(tb * d.K);
    b.Hs = p;
    p += r16((tb + d.B) * d.K);
    b.dh = p;
    p += r16(bk);
    b.dc = p;
    p += r16(bk);
    b.dn = p;
    p += r16(bk);
    b.pre = p;
    return b;
}

static int check_in(const char *op, sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in)
{
    int rc;
    if ((rc = sq_check_dims(op, d)) || (rc = sq_check_ptr(op, "in", in)) || (rc = sq_check_ptr(op, "gx", in->gx)) ||
        (rc = sq_check_ptr(op, "R", in->R)) || (rc = sq_check_ptr(op, "bias", in->bias)))
        return rc;
    if (d.K != d.V) return sq_fail(SQ_EINVAL, "%s: sLSTM cells need K == V (the head size), got K=%d V=%d", op, d.K, d.V);
    if (o->exp_forget != 0 && o->exp_forget != 1)
        return sq_fail(SQ_EINVAL, "%s: exp_forget must be 0 or 1, got %d", op, o->exp_forget);
    return SQ_OK;
}

static int check_state(const char *op, const char *name, const sq_slstm_state *s, int need_m)
{
    if (s && (!s->c || !s->n || !s->h || (need_m && !s->m)))
        return sq_fail(SQ_EINVAL, "%s: %s needs c, n, m and h (or pass NULL)", op, name);
    return SQ_OK;
}

/* The cell update of one unit given its four pre-activations. */
typedef struct {
    double i, f, z, o; /* i' , f', z, σ(p_o) */
    double c, n, m, h;
} cell;

static cell cell_step(const float *p4, int K, int j, int exp_forget, double c0, double n0, double m0)
{
    cell r;
    double pi = p4[j], pf = p4[K + j], pz = p4[2 * K + j], po = p4[3 * K + j];
    double lf = exp_forget ? pf : sq_logsigmoid(pf);
    r.m = n0 == 0 ? pi : fmax(lf + m0, pi); /* stabilizer */
    r.i = exp(pi - r.m);
    r.f = n0 == 0 ? 0 : exp(lf + m0 - r.m);
    r.z = tanh(pz);
    r.o = sq_sigmoid(po);
    r.c = r.f * c0 + r.i * r.z;
    r.n = r.f * n0 + r.i;
    r.h = r.o * r.c / r.n;
    return r;
}

/* Forward for head h over all t: saves P, C, N, M, Hs; writes out (may be NULL) and s1. */
static void head_forward(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in, const sq_slstm_state *s0, int h,
                         float *out, sq_slstm_state *s1, slstm_buf *w)
{
    int B = d.B, K = d.K, H = d.H;
    size_t bk = (size_t)B * K;
    const float *Rh = in->R + (size_t)h * 4 * K * K, *bh = in->bias + (size_t)h * 4 * K;
    float *c = w->dc, *n = w->dn, *m = w->dh; /* the running state, [B,K] */
    for (int b = 0; b < B; b++)
        for (int j = 0; j < K; j++) {
            size_t si = ((size_t)b * H + h) * K + j;
            c[(size_t)b * K + j] = s0 ? s0->c[si] : 0;
            n[(size_t)b * K + j] = s0 ? s0->n[si] : 0;
            m[(size_t)b * K + j] = s0 ? s0->m[si] : 0;
            w->Hs[(size_t)b * K + j] = s0 ? s0->h[si] : 0;
        }
    for (int t = 0; t < d.T; t++) {
        float *P = w->P + (size_t)t * B * 4 * K, *hprev = w->Hs + (size_t)t * bk, *hnext = hprev + bk;
        /* p = gx + R h_{t-1} + b, batched: P = H_{t-1} Rhᵀ (+ gx + b) */
        sq_sgemm(0, 1, B, 4 * K, K, 1, hprev, K, Rh, K, 0, P, 4 * K);
        for (int b = 0; b < B; b++) {
            const float *gx = in->gx + (((size_t)b * d.T + t) * H + h) * 4 * K;
            float *pb = P + (size_t)b * 4 * K;
            for (int j = 0; j < 4 * K; j++) pb[j] += gx[j] + bh[j];
            for (int j = 0; j < K; j++) {
                size_t u = (size_t)b * K + j;
                cell r = cell_step(pb, K, j, o->exp_forget, c[u], n[u], m[u]);
                c[u] = (float)r.c;
                n[u] = (float)r.n;
                m[u] = (float)r.m;
                hnext[u] = (float)r.h;
                w->C[(size_t)t * bk + u] = c[u];
                w->N[(size_t)t * bk + u] = n[u];
                w->M[(size_t)t * bk + u] = m[u];
                if (out) out[(((size_t)b * d.T + t) * H + h) * K + j] = hnext[u];
            }
        }
    }
    if (s1)
        for (int b = 0; b < B; b++)
            for (int j = 0; j < K; j++) {
                size_t si = ((size_t)b * H + h) * K + j, u = (size_t)b * K + j;
                s1->c[si] = c[u];
                s1->n[si] = n[u];
                if (s1->m) s1->m[si] = m[u];
                s1->h[si] = w->Hs[(size_t)d.T * bk + u];
            }
}

int sq_slstm_fwd(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in, const sq_slstm_state *s0, float *out,
                 sq_slstm_state *s1, float *work)
{
    const char *op = "slstm fwd";
    sq_slstm_opts def = sq_slstm_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = check_in(op, d, o, in)) || (rc = sq_check_ptr(op, "out", out)) || (rc = check_state(op, "s0", s0, 1)) ||
        (rc = check_state(op, "s1", s1, 0)))
        return rc;
    float *owned, *ws = sq_work_or_alloc(work, sq_slstm_work_floats(d, o), &owned);
    if (!ws) return SQ_ENOMEM;
#pragma omp parallel for schedule(dynamic)
    for (int h = 0; h < d.H; h++) {
        slstm_buf w = head_buf(ws, d, h);
        head_forward(d, o, in, s0, h, out, s1, &w);
    }
    sq_free(owned);
    return SQ_OK;
}

/* Backward of one step of one unit: given dh (total) and the carried dc,
 * dn, writes the four pre-activation gradients and the carries to t-1. */
static void cell_backward(const float *p4, int K, int j, int exp_forget, double c0, double n0, double m0, double dh,
                          double *dc, double *dn, float *dp4)
{
    cell r = cell_step(p4, K, j, exp_forget, c0, n0, m0);
    double pf = p4[K + j];
    /* h = σ(p_o) c / n */
    dp4[3 * K + j] = (float)(dh * r.c / r.n * r.o * (1 - r.o));
    double dcc = *dc + dh * r.o / r.n, dnn = *dn - dh * r.o * r.c / (r.n * r.n);
    /* c = f' c0 + i' z, n = f' n0 + i', i' = e^{p_i - m}, f' = e^{lf + m0 - m} (m fixed) */
    dp4[2 * K + j] = (float)(dcc * r.i * (1 - r.z * r.z));
    dp4[j] = (float)((dcc * r.z + dnn) * r.i);
    double dlf = (dcc * c0 + dnn * n0) * r.f;
    dp4[K + j] = (float)(exp_forget ? dlf : dlf * sq_sigmoid(-pf));
    *dc = dcc * r.f;
    *dn = dnn * r.f;
}

int sq_slstm_bwd(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in, const sq_slstm_state *s0,
                 const float *dout, const sq_slstm_state *ds1, sq_slstm_grad *g, sq_slstm_state *ds0, float *work)
{
    const char *op = "slstm bwd";
    sq_slstm_opts def = sq_slstm_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = check_in(op, d, o, in)) || (rc = sq_check_ptr(op, "dout", dout)) || (rc = sq_check_ptr(op, "g", g)) ||
        (rc = check_state(op, "s0", s0, 1)) || (rc = check_state(op, "ds1", ds1, 0)) ||
        (rc = check_state(op, "ds0", ds0, 1)))
        return rc;
    if ((rc = sq_check_ptr(op, "g->dgx", g->dgx)) || (rc = sq_check_ptr(op, "g->dR", g->dR)) ||
        (rc = sq_check_ptr(op, "g->dbias", g->dbias)))
        return rc;
    float *owned, *ws = sq_work_or_alloc(work, sq_slstm_work_floats(d, o), &owned);
    if (!ws) return SQ_ENOMEM;
    int B = d.B, K = d.K, H = d.H;
    size_t bk = (size_t)B * K;
#pragma omp parallel for schedule(dynamic)
    for (int h = 0; h < H; h++) {
        slstm_buf w = head_buf(ws, d, h);
        head_forward(d, o, in, s0, h, NULL, NULL, &w); /* saves P, C, N, M, Hs */
        const float *Rh = in->R + (size_t)h * 4 * K * K;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < K; j++) {
                size_t si = ((size_t)b * H + h) * K + j, u = (size_t)b * K + j;
                w.dh[u] = ds1 ? ds1->h[si] : 0;
                w.dc[u] = ds1 ? ds1->c[si] : 0;
                w.dn[u] = ds1 ? ds1->n[si] : 0;
            }
        for (int t = d.T - 1; t >= 0; t--) {
            float *P = w.P + (size_t)t * B * 4 * K;
            for (int b = 0; b < B; b++)
                for (int j = 0; j < K; j++) {
                    size_t u = (size_t)b * K + j, si = ((size_t)b * H + h) * K + j;
                    double c0, n0, m0;
                    if (t > 0) {
                        c0 = w.C[(size_t)(t - 1) * bk + u];
                        n0 = w.N[(size_t)(t - 1) * bk + u];
                        m0 = w.M[(size_t)(t - 1) * bk + u];
                    } else {
                        c0 = s0 ? s0->c[si] : 0;
                        n0 = s0 ? s0->n[si] : 0;
                        m0 = s0 ? s0->m[si] : 0;
                    }
                    double dh = w.dh[u] + dout[(((size_t)b * d.T + t) * H + h) * K + j], dc = w.dc[u], dn = w.dn[u];
                    float dp4[4];
                    float p4[4] = {P[(size_t)b * 4 * K + j], P[(size_t)b * 4 * K + K + j],
                                   P[(size_t)b * 4 * K + 2 * K + j], P[(size_t)b * 4 * K + 3 * K + j]};
                    cell_backward(p4, 1, 0, o->exp_forget, c0, n0, m0, dh, &dc, &dn, dp4);
                    w.dc[u] = (float)dc;
                    w.dn[u] = (float)dn;
                    for (int gte = 0; gte < 4; gte++) P[(size_t)b * 4 * K + gte * K + j] = dp4[gte];
                }
            /* dh_{t-1} = Σ_g R_gᵀ dp_g, batched: dH = dP Rh */
            sq_sgemm(0, 0, B, K, 4 * K, 1, P, 4 * K, Rh, K, 0, w.dh, K);
            for (int b = 0; b < B; b++)
                memcpy(g->dgx + (((size_t)b * d.T + t) * H + h) * 4 * K, P + (size_t)b * 4 * K, 4 * K * sizeof(float));
        }
        /* dR_h = Σ_t dP_tᵀ H_{t-1} in one GEMM; dbias = Σ dp */
        sq_sgemm(1, 0, 4 * K, K, d.T * B, 1, w.P, 4 * K, w.Hs, K, 0, g->dR + (size_t)h * 4 * K * K, K);
        for (int j = 0; j < 4 * K; j++) {
            double acc = 0;
            for (size_t r = 0; r < (size_t)d.T * B; r++) acc += w.P[r * 4 * K + j];
            g->dbias[(size_t)h * 4 * K + j] = (float)acc;
        }
        if (ds0)
            for (int b = 0; b < B; b++)
                for (int j = 0; j < K; j++) {
                    size_t si = ((size_t)b * H + h) * K + j, u = (size_t)b * K + j;
                    ds0->c[si] = w.dc[u];
                    ds0->n[si] = w.dn[u];
                    ds0->h[si] = w.dh[u];
                    /* the initial state enters as c̄0 e^{m0}, n̄0 e^{m0} */
                    ds0->m[si] = s0 ? (float)((double)w.dc[u] * s0->c[si] + (double)w.dn[u] * s0->n[si]) : 0.0f;
                }
    }
    sq_free(owned);
    return SQ_OK;
}

int sq_slstm_step(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in, sq_slstm_state *s, float *out)
{
    const char *op = "slstm step";
    sq_slstm_opts def = sq_slstm_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = check_in(op, d, o, in)) || (rc = sq_check_ptr(op, "out", out)) || (rc = sq_check_ptr(op, "state", s)) ||
        (rc = check_state(op, "state", s, 1)))
        return rc;
    if (d.T != 1) return sq_fail(SQ_EINVAL, "%s: one token at a time (T must be 1, got %d)", op, d.T);
    int K = d.K;
    float p4[4];
    for (int bh = 0; bh < d.B * d.H; bh++) {
        int h = bh % d.H;
        const float *Rh = in->R + (size_t)h * 4 * K * K, *bias = in->bias + (size_t)h * 4 * K,
                    *gx = in->gx + (size_t)bh * 4 * K, *hp = s->h + (size_t)bh * K;
        for (int j = 0; j < K; j++) {
            for (int gte = 0; gte < 4; gte++) { /* p_g = gx + R_g h_{t-1} + b */
                const float *row = Rh + ((size_t)gte * K + j) * K;
                double acc = (double)gx[gte * K + j] + bias[gte * K + j];
                for (int l = 0; l < K; l++) acc += (double)row[l] * hp[l];
                p4[gte] = (float)acc;
            }
            size_t u = (size_t)bh * K + j;
            cell r = cell_step(p4, 1, 0, o->exp_forget, s->c[u], s->n[u], s->m[u]);
            s->c[u] = (float)r.c;
            s->n[u] = (float)r.n;
            s->m[u] = (float)r.m;
            out[u] = (float)r.h;
        }
        memcpy(s->h + (size_t)bh * K, out + (size_t)bh * K, (size_t)K * sizeof(float));
    }
    return SQ_OK;
}
