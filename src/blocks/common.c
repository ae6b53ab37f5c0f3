#include <stdio.h>

#include "internal.h"

int blk_add(sq_block *b, sq_params *ps, int index, const char *what, int64_t d0, int64_t d1, int decay)
{
    char name[SQ_PARAM_NAME];
    int64_t shape[2] = {d0, d1};
    if (b->np == SQ_BLOCK_MAXP) return sq_fail(SQ_EINVAL, "block %d: too many parameters", index);
    snprintf(name, sizeof name, "blocks.%d.%s", index, what);
    int rc = sq_params_add(ps, name, d1 ? 2 : 1, shape, decay);
    if (!rc) b->p[b->np++] = ps->n - 1;
    return rc;
}

float *blk_w(const sq_block *b, const sq_params *ps, int slot) { return ps->data + ps->p[b->p[slot]].off; }
float *blk_g(const sq_block *b, const sq_params *ps, int slot) { return ps->grad + ps->p[b->p[slot]].off; }
size_t blk_n(const sq_block *b, const sq_params *ps, int slot) { return ps->p[b->p[slot]].n; }

void blk_normal(const sq_block *b, sq_params *ps, int slot, sq_rng *r, float std)
{
    sq_rng_fill_normal(r, blk_w(b, ps, slot), blk_n(b, ps, slot), 0, std);
}

void blk_const(const sq_block *b, sq_params *ps, int slot, float v)
{
    float *w = blk_w(b, ps, slot);
    for (size_t i = 0; i < blk_n(b, ps, slot); i++) w[i] = v;
}

/* ---- SwiGLU channel mixer -------------------------------------------------- */

int mlp_register(sq_block *b, sq_params *ps, int index)
{
    int D = b->c.D, F = b->c.F, rc;
    if ((rc = blk_add(b, ps, index, "norm2.weight", D, 0, 0)) || (rc = blk_add(b, ps, index, "mlp.w1", F, D, 1)) ||
        (rc = blk_add(b, ps, index, "mlp.w3", F, D, 1)) || (rc = blk_add(b, ps, index, "mlp.w2", D, F, 1)))
        return rc;
    return SQ_OK;
}

void mlp_init(const sq_block *b, sq_params *ps, int slot, sq_rng *r, float out_std)
{
    blk_const(b, ps, slot, 1.0f);
    blk_normal(b, ps, slot + 1, r, 0.02f);
    blk_normal(b, ps, slot + 2, r, 0.02f);
    blk_normal(b, ps, slot + 3, r, out_std);
}

/* acts: h [N,D], rstd [N], a, g, s [N,F] */
size_t mlp_act_floats(const sq_block_cfg *c, size_t N) { return N * c->D + N + 3 * N * c->F; }

int mlp_fwd(const sq_backend *be, const sq_block *b, const sq_params *ps, int slot, int N, const float *x, float *out,
            float *acts)
{
    int D = b->c.D, F = b->c.F, rc;
    float *h = acts, *r = h + (size_t)N * D, *a = r + N, *g = a + (size_t)N * F, *s = g + (size_t)N * F;
    if ((rc = be->norm_fwd(N, 1, D, 0, SQ_NORM_EPS, x, blk_w(b, ps, slot), NULL, h, NULL, r)) ||
        (rc = be->linear_fwd(N, D, F, h, blk_w(b, ps, slot + 1), NULL, a)) ||
        (rc = be->linear_fwd(N, D, F, h, blk_w(b, ps, slot + 2), NULL, g)) ||
        (rc = be->swiglu_fwd((size_t)N * F, a, g, s)))
        return rc;
    if (out != x && (rc = be->copy((size_t)N * D, x, out))) return rc;
    return be->linear_fwd_acc(N, F, D, s, blk_w(b, ps, slot + 3), NULL, out); /* out = x + s W2ᵀ */
}

/* work: ds, da, dg [N,F], dh [N,D] */
int mlp_bwd(const sq_backend *be, const sq_block *b, sq_params *ps, int slot, int N, const float *x,
            const float *acts, const float *dout, float *dx, float *work)
{
    int D = b->c.D, F = b->c.F, rc;
    const float *h = acts, *r = h + (size_t)N * D, *a = r + N, *g = a + (size_t)N * F, *s = g + (size_t)N * F;
    float *ds = work, *da = ds + (size_t)N * F, *dg = da + (size_t)N * F, *dh = dg + (size_t)N * F;
    if ((rc = be->linear_bwd(N, F, D, s, blk_w(b, ps, slot + 3), dout, ds, blk_g(b, ps, slot + 3), NULL)) ||
        (rc = be->swiglu_bwd((size_t)N * F, a, g, ds, da, dg)) ||
        (rc = be->linear_bwd(N, D, F, h, blk_w(b, ps, slot + 1), da, dh, blk_g(b, ps, slot + 1), NULL)) ||
        (rc = be->linear_bwd_acc(N, D, F, h, blk_w(b, ps, slot + 2), dg, dh, blk_g(b, ps, slot + 2), NULL)))
        return rc;
    return blk_prenorm_bwd(be, b, ps, slot, N, x, r, dh, dout, dx);
}

int blk_prenorm_bwd(const sq_backend *be, const sq_block *b, sq_params *ps, int slot, int N, const float *x,
                    const float *r, const float *dh, const float *dres, float *dx)
{
    int D = b->c.D, rc;
    if ((rc = be->norm_bwd(N, 1, D, 0, x, blk_w(b, ps, slot), NULL, r, dh, dx, blk_g(b, ps, slot), NULL))) return rc;
    return be->add_to((size_t)N * D, dres, dx);
}

size_t blk_r16(size_t n) { return (n + 15) / 16 * 16; }

sq_dims blk_op_dims(const sq_block_cfg *c, int B, int T) { return (sq_dims){B, T, c->H, c->K, c->V}; }

float *blk_take(float **p, size_t n)
{
    float *r = *p;
    *p += blk_r16(n);
    return r;
}
