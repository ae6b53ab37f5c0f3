/* Linear attention: the scalar-gate machinery with λ = 0, w = 0, no
 * stabilizer, no normalizer (linattn.h). */
#include "linattn.h"

#include <string.h>

#include "scalar_chunk.h"

sq_linattn_opts sq_linattn_defaults(void) { return (sq_linattn_opts){64}; }

static size_t r16(size_t n) { return (n + 15) / 16 * 16; }

/* Per head: λ = 0 and dλ [T], then the machinery's workspace. */
static size_t head_floats(sq_dims d, int L) { return 2 * r16(d.T) + r16(sc_work_floats(d.T, d.K, d.V, L, 1)); }

size_t sq_linattn_work_floats(sq_dims d, const sq_linattn_opts *o)
{
    int L = o ? o->chunk : 64;
    if (L < 1 || d.B < 1 || d.T < 1 || d.H < 1 || d.K < 1 || d.V < 1) return 0;
    return (size_t)d.B * d.H * head_floats(d, L);
}

static int check_args(const char *op, sq_dims d, const sq_linattn_opts *o, const float *q, const float *k,
                      const float *v)
{
    int rc;
    if ((rc = sq_check_dims(op, d)) || (rc = sq_check_ptr(op, "q", q)) || (rc = sq_check_ptr(op, "k", k)) ||
        (rc = sq_check_ptr(op, "v", v)) || (rc = sq_check_chunk(op, o->chunk)))
        return rc;
    return SQ_OK;
}

static sc_seq head_seq(sq_dims d, int L, const float *q, const float *k, const float *v, int b, int h,
                       const float *lam)
{
    size_t row = (size_t)b * d.T * d.H + h;
    sc_seq s = {d.T, d.K, d.V, L, 1.0f, 0, 0, q + row * d.K, k + row * d.K, v + row * d.V,
                (size_t)d.H * d.K, (size_t)d.H * d.K, (size_t)d.H * d.V, lam, NULL};
    return s;
}

int sq_linattn_fwd(sq_dims d, const sq_linattn_opts *o, const float *q, const float *k, const float *v,
                   const float *S0, float *out, float *S1, float *work)
{
    const char *op = "linattn fwd";
    sq_linattn_opts def = sq_linattn_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = check_args(op, d, o, q, k, v)) || (rc = sq_check_ptr(op, "out", out))) return rc;
    float *owned, *ws = sq_work_or_alloc(work, sq_linattn_work_floats(d, o), &owned);
    if (!ws) return SQ_ENOMEM;
    size_t per = head_floats(d, o->chunk), kv = (size_t)d.K * d.V;
#pragma omp parallel for schedule(dynamic)
    for (int bh = 0; bh < d.B * d.H; bh++) {
        int b = bh / d.H, h = bh % d.H;
        float *lam = ws + (size_t)bh * per, *hw = lam + 2 * r16(d.T);
        memset(lam, 0, (size_t)d.T * sizeof(float));
        sc_seq s = head_seq(d, o->chunk, q, k, v, b, h, lam);
        sc_state st0 = {S0 ? (float *)S0 + bh * kv : NULL, NULL, NULL}, st1 = {S1 ? S1 + bh * kv : NULL, NULL, NULL};
        sc_fwd(&s, &st0, out + ((size_t)b * d.T * d.H + h) * d.V, (size_t)d.H * d.V, &st1, hw);
    }
    sq_free(owned);
    return SQ_OK;
}

int sq_linattn_bwd(sq_dims d, const sq_linattn_opts *o, const float *q, const float *k, const float *v,
                   const float *S0, const float *dout, const float *dS1, float *dq, float *dk, float *dv, float *dS0,
                   float *work)
{
    const char *op = "linattn bwd";
    sq_linattn_opts def = sq_linattn_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = check_args(op, d, o, q, k, v)) || (rc = sq_check_ptr(op, "dout", dout)) ||
        (rc = sq_check_ptr(op, "dq", dq)) || (rc = sq_check_ptr(op, "dk", dk)) || (rc = sq_check_ptr(op, "dv", dv)))
        return rc;
    float *owned, *ws = sq_work_or_alloc(work, sq_linattn_work_floats(d, o), &owned);
    if (!ws) return SQ_ENOMEM;
    size_t per = head_floats(d, o->chunk), kv = (size_t)d.K * d.V, ldk = (size_t)d.H * d.K, ldv = (size_t)d.H * d.V;
#pragma omp parallel for schedule(dynamic)
    for (int bh = 0; bh < d.B * d.H; bh++) {
        int b = bh / d.H, h = bh % d.H;
        float *lam = ws + (size_t)bh * per, *dlam = lam + r16(d.T), *hw = dlam + r16(d.T);
        memset(lam, 0, (size_t)d.T * sizeof(float));
        sc_seq s = head_seq(d, o->chunk, q, k, v, b, h, lam);
        size_t row = (size_t)b * d.T * d.H + h;
        sc_state st0 = {S0 ? (float *)S0 + bh * kv : NULL, NULL, NULL};
        sc_state ds1 = {dS1 ? (float *)dS1 + bh * kv : NULL, NULL, NULL}, ds0 = {dS0 ? dS0 + bh * kv : NULL, NULL, NULL};
        sc_bwd(&s, &st0, dout + row * d.V, ldv, &ds1, dq + row * d.K, ldk, dk + row * d.K, ldk, dv + row * d.V, ldv,
               dlam, NULL, &ds0, hw);
    }
    sq_free(owned);
    return SQ_OK;
}

int sq_linattn_step(sq_dims d, const float *q, const float *k, const float *v, float *S, float *out)
{
    const char *op = "linattn step";
    int rc;
    sq_linattn_opts def = sq_linattn_defaults();
    if ((rc = check_args(op, d, &def, q, k, v)) || (rc = sq_check_ptr(op, "S", S)) || (rc = sq_check_ptr(op, "out", out)))
        return rc;
    if (d.T != 1) return sq_fail(SQ_EINVAL, "%s: one token at a time (T must be 1, got %d)", op, d.T);
    for (int bh = 0; bh < d.B * d.H; bh++) {
        const float *qh = q + (size_t)bh * d.K, *kh = k + (size_t)bh * d.K, *vh = v + (size_t)bh * d.V;
        float *Sh = S + (size_t)bh * d.K * d.V, *y = out + (size_t)bh * d.V;
        for (int i = 0; i < d.V; i++) y[i] = 0;
        /* (U1) S += k vᵀ, (U3) o = Sᵀ q */
        for (int a = 0; a < d.K; a++)
            for (int i = 0; i < d.V; i++) {
                Sh[(size_t)a * d.V + i] += kh[a] * vh[i];
                y[i] += qh[a] * Sh[(size_t)a * d.V + i];
            }
    }
    return SQ_OK;
}
