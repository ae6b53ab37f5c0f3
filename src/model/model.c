#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define NORM_EPS 1e-5f

static int round8(int x) { return (x + 7) / 8 * 8; }

/* The working copy's tensors (the backend's memory; the host registry on the CPU). */
static float *param(const sq_model *m, int idx) { return m->wp->data + m->wp->p[idx].off; }
static float *grad(const sq_model *m, int idx) { return m->wp->grad + m->wp->p[idx].off; }

static int add(sq_model *m, const char *name, int64_t d0, int64_t d1, int decay, int *idx)
{
    int64_t shape[2] = {d0, d1};
    int rc = sq_params_add(&m->ps, name, d1 ? 2 : 1, shape, decay);
    *idx = m->ps.n - 1;
    return rc;
}

/* Per block type: heads H; key (state) and value widths per head; SwiGLU
 * width F, 8/3·D (xLSTM-7B, Llama) or 4/3·D for sLSTM (xLSTM); Mamba-2
 * has no channel mixer and expands its inner width to 2·D (P = 2D/H per
 * head, state size N = D/H). */
static sq_block_cfg block_cfg(sq_block_type t, const sq_model_cfg *c)
{
    int hd = c->D / c->H;
    sq_block_cfg bc = {c->D, c->H, hd, hd, round8((8 * c->D + 2) / 3), c->chunk, c->neg_eigval};
    if (t == SQ_BLOCK_SLSTM) bc.F = round8((4 * c->D + 2) / 3);
    if (t == SQ_BLOCK_MAMBA2) {
        bc.V = 2 * hd;
        bc.F = 0;
    }
    return bc;
}

int sq_model_build(sq_model *m, const sq_model_cfg *c)
{
    int rc;
    memset(m, 0, sizeof *m);
    m->be = &sq_backend_cpu;
    m->wp = &m->ps;
    if ((rc = sq_check_ptr("model", "config", c))) return rc;
    m->cfg = *c;
    if (c->D < 1 || c->H < 1 || c->D % c->H)
        return sq_fail(SQ_EINVAL, "model: width %d must be a positive multiple of the heads %d", c->D, c->H);
    if (c->vocab < 2) return sq_fail(SQ_EINVAL, "model: vocabulary must be >= 2, got %d", c->vocab);
    if ((rc = sq_check_chunk("model", c->chunk)) || (rc = sq_spec_parse(c->spec, c->depth, &m->spec))) return rc;
    if (c->neg_eigval != 0 && c->neg_eigval != 1)
        return sq_fail(SQ_EINVAL, "model: neg_eigval must be 0 or 1, got %d", c->neg_eigval);
    m->cfg.depth = m->spec.depth;
    m->blocks = calloc((size_t)m->spec.depth, sizeof *m->blocks);
    if (!m->blocks) return sq_fail(SQ_ENOMEM, "model: out of memory");
    if ((rc = add(m, "embed.weight", c->vocab, c->D, 1, &m->p_embed))) return rc;
    for (int i = 0; i < m->spec.depth; i++) {
        sq_block_cfg bc = block_cfg(m->spec.blocks[i], c);
        if ((rc = sq_block_register(&m->blocks[i], m->spec.blocks[i], &bc, i, &m->ps))) return rc;
    }
    if ((rc = add(m, "norm.weight", c->D, 0, 0, &m->p_norm)) || (rc = add(m, "head.weight", c->vocab, c->D, 1, &m->p_head)))
        return rc;
    return sq_params_alloc(&m->ps);
}

void sq_model_init(sq_model *m, uint64_t seed)
{
    sq_rng r;
    sq_rng_seed(&r, seed);
    sq_params *ps = &m->ps; /* drawn on the host (sq_model_to_backend copies them over) */
    sq_rng_fill_normal(&r, ps->data + ps->p[m->p_embed].off, ps->p[m->p_embed].n, 0, 0.02f);
    for (int i = 0; i < m->spec.depth; i++) sq_block_init(&m->blocks[i], ps, &r, m->spec.depth);
    float *w = ps->data + ps->p[m->p_norm].off;
    for (int i = 0; i < m->cfg.D; i++) w[i] = 1;
    sq_rng_fill_normal(&r, ps->data + ps->p[m->p_head].off, ps->p[m->p_head].n, 0, 0.02f);
}

/* Frees what sq_model_use_backend allocated in the backend's memory. */
static void release_backend_copy(sq_model *m)
{
    if (m->wp == &m->dev) {
        m->be->release(m->dev.data);
        m->be->release(m->dev.grad);
    }
    m->be->release(m->dtok);
    m->be->release(m->dtgt);
    m->dtok = m->dtgt = NULL;
    m->ntok = 0;
    memset(&m->dev, 0, sizeof m->dev);
    m->wp = &m->ps;
}

int sq_model_use_backend(sq_model *m, const sq_backend *be)
{
    int rc;
    if ((rc = sq_check_ptr("model", "backend", be))) return rc;
    sq_arena_free(&m->arena); /* planned for the old backend: plan again */
    release_backend_copy(m);
    m->be = be;
    if (be->host_memory) return SQ_OK;
    m->dev = m->ps; /* the same registry entries, data and gradient in the backend's memory */
    m->dev.data = be->alloc(m->ps.total);
    m->dev.grad = be->alloc(m->ps.total);
    m->wp = &m->dev;
    if (!m->dev.data || !m->dev.grad)
        return sq_fail(SQ_ENOMEM, "model: no room on %s for %zu parameters and their gradients", be->name, m->ps.total);
    if ((rc = be->zero(m->ps.total, m->dev.grad))) return rc;
    return sq_model_to_backend(m);
}

int sq_model_to_backend(sq_model *m)
{
    return m->wp == &m->ps ? SQ_OK : m->be->upload(m->dev.data, m->ps.data, m->ps.total);
}

int sq_model_to_host(sq_model *m)
{
    return m->wp == &m->ps ? SQ_OK : m->be->download(m->ps.data, m->dev.data, m->ps.total);
}

/* The batch's tokens (and targets) where the backend reads them: the
 * caller's host arrays on the CPU, copies in the backend's memory otherwise. */
static int tokens_in_backend(sq_model *m, const int32_t **tokens, const int32_t **targets, size_t n)
{
    int rc;
    if (m->be->host_memory) return SQ_OK;
    if (n > m->ntok) {
        m->be->release(m->dtok);
        m->be->release(m->dtgt);
        m->dtok = m->be->alloc_i32(n);
        m->dtgt = m->be->alloc_i32(n);
        m->ntok = m->dtok && m->dtgt ? n : 0;
        if (!m->ntok) return SQ_ENOMEM;
    }
    if ((rc = m->be->upload_i32(m->dtok, *tokens, n))) return rc;
    *tokens = m->dtok;
    if (!targets || !*targets) return SQ_OK;
    if ((rc = m->be->upload_i32(m->dtgt, *targets, n))) return rc;
    *targets = m->dtgt;
    return SQ_OK;
}

/* The same sequence of takes plans the arena (first pass) and carves it. */
static void take_all(sq_model *m, sq_arena *a)
{
    size_t N = (size_t)m->B * m->T, D = m->cfg.D, V = m->cfg.vocab, work = 0;
    m->xs = sq_arena_take(a, (size_t)(m->spec.depth + 1) * N * D);
    for (int i = 0; i < m->spec.depth; i++) {
        m->acts[i] = sq_arena_take(a, sq_block_act_floats(&m->blocks[i], m->B, m->T));
        size_t w = sq_block_work_floats(m->be, &m->blocks[i], m->B, m->T);
        if (w > work) work = w;
    }
    m->work = sq_arena_take(a, work);
    m->hf = sq_arena_take(a, N * D);
    m->rf = sq_arena_take(a, N);
    m->logits = sq_arena_take(a, N * V);
    m->dlogits = sq_arena_take(a, N * V);
    m->dx = sq_arena_take(a, N * D);
    m->dx2 = sq_arena_take(a, N * D);
}

int sq_model_plan(sq_model *m, int B, int T)
{
    if (B < 1 || T < 1) return sq_fail(SQ_EINVAL, "model plan: B and T must be >= 1, got %d, %d", B, T);
    sq_arena_free(&m->arena);
    free(m->acts);
    m->acts = calloc((size_t)m->spec.depth + 1, sizeof *m->acts);
    if (!m->acts) return sq_fail(SQ_ENOMEM, "model plan: out of memory");
    m->B = B;
    m->T = T;
    sq_arena_plan(&m->arena);
    take_all(m, &m->arena);
    int rc = m->be->host_memory ? sq_arena_alloc(&m->arena)
                                : sq_arena_alloc_with(&m->arena, m->be->alloc, m->be->release);
    if (!rc && !m->be->host_memory) rc = m->be->zero(m->arena.cap ? m->arena.cap : 1, m->arena.base); /* as on the host */
    if (rc) return rc;
    take_all(m, &m->arena);
    return SQ_OK;
}

int sq_model_fwd(sq_model *m, const int32_t *tokens, const int32_t *targets, float *loss)
{
    int rc;
    if (!m->arena.base) return sq_fail(SQ_EINVAL, "model: call sq_model_plan before the forward");
    if ((rc = sq_check_ptr("model fwd", "tokens", tokens))) return rc;
    const sq_backend *be = m->be;
    int N = m->B * m->T, D = m->cfg.D, V = m->cfg.vocab;
    size_t ND = (size_t)N * D;
    if ((rc = tokens_in_backend(m, &tokens, &targets, (size_t)N))) return rc;
    m->tokens = tokens;
    if ((rc = be->embed_fwd(N, V, D, tokens, param(m, m->p_embed), m->xs))) return rc;
    for (int i = 0; i < m->spec.depth; i++)
        if ((rc = sq_block_fwd(be, &m->blocks[i], m->wp, m->B, m->T, m->xs + i * ND, m->xs + (i + 1) * ND,
                               m->acts[i], m->work)))
            return rc;
    const float *xl = m->xs + (size_t)m->spec.depth * ND;
    if ((rc = be->norm_fwd(N, 1, D, 0, NORM_EPS, xl, param(m, m->p_norm), NULL, m->hf, NULL, m->rf)) ||
        (rc = be->linear_fwd(N, D, V, m->hf, param(m, m->p_head), NULL, m->logits)))
        return rc;
    if (!targets) return SQ_OK;
    if ((rc = sq_check_ptr("model fwd", "loss", loss))) return rc;
    return be->xent_fwd_bwd(N, V, m->logits, targets, loss, m->dlogits, NULL);
}

size_t sq_model_state_floats(const sq_model *m, int max_len)
{
    size_t n = 0;
    for (int i = 0; i < m->spec.depth; i++) n += (sq_block_state_floats(&m->blocks[i], m->B, max_len) + 15) / 16 * 16;
    return n;
}

int sq_model_fwd_carry(sq_model *m, const int32_t *tokens, int T, int pos0, float *state, int max_len)
{
    int rc;
    if (!m->arena.base) return sq_fail(SQ_EINVAL, "model: call sq_model_plan before the forward");
    if ((rc = sq_check_ptr("model fwd", "tokens", tokens)) || (rc = sq_check_ptr("model fwd", "state", state)))
        return rc;
    if (T < 1 || T > m->T) return sq_fail(SQ_EINVAL, "model fwd: a piece of %d positions; the plan holds 1..%d", T, m->T);
    const sq_backend *be = m->be;
    int N = m->B * T, D = m->cfg.D, V = m->cfg.vocab;
    size_t ND = (size_t)N * D;
    m->tokens = NULL; /* nothing to differentiate */
    if ((rc = tokens_in_backend(m, &tokens, NULL, (size_t)N))) return rc;
    if ((rc = be->embed_fwd(N, V, D, tokens, param(m, m->p_embed), m->xs))) return rc;
    for (int i = 0; i < m->spec.depth; i++) {
        sq_block_carry carry = {state, pos0, max_len};
        if ((rc = sq_block_fwd_carry(be, &m->blocks[i], m->wp, m->B, T, m->xs + i * ND, m->xs + (i + 1) * ND,
                                     m->acts[i], m->work, &carry)))
            return rc;
        state += (sq_block_state_floats(&m->blocks[i], m->B, max_len) + 15) / 16 * 16;
    }
    const float *xl = m->xs + (size_t)m->spec.depth * ND;
    if ((rc = be->norm_fwd(N, 1, D, 0, NORM_EPS, xl, param(m, m->p_norm), NULL, m->hf, NULL, m->rf))) return rc;
    return be->linear_fwd(N, D, V, m->hf, param(m, m->p_head), NULL, m->logits);
}

int sq_model_bwd(sq_model *m)
{
    const sq_backend *be = m->be;
    int rc, N = m->B * m->T, D = m->cfg.D, V = m->cfg.vocab;
    size_t ND = (size_t)N * D;
    if (!m->tokens) return sq_fail(SQ_EINVAL, "model bwd: no forward with targets to differentiate");
    const float *xl = m->xs + (size_t)m->spec.depth * ND;
    if ((rc = be->linear_bwd(N, D, V, m->hf, param(m, m->p_head), m->dlogits, m->dx2, grad(m, m->p_head), NULL)) ||
        (rc = be->norm_bwd(N, 1, D, 0, xl, param(m, m->p_norm), NULL, m->rf, m->dx2, m->dx, grad(m, m->p_norm), NULL)))
        return rc;
    for (int i = m->spec.depth - 1; i >= 0; i--) {
        if ((rc = sq_block_bwd(be, &m->blocks[i], m->wp, m->B, m->T, m->xs + i * ND, m->acts[i], m->dx, m->dx2,
                               m->work)))
            return rc;
        float *t = m->dx;
        m->dx = m->dx2;
        m->dx2 = t;
    }
    return be->embed_bwd(N, V, D, m->tokens, m->dx, grad(m, m->p_embed));
}

int sq_model_cfg_json(const sq_model_cfg *c, char *buf, int n)
{
    int k = snprintf(buf, (size_t)n,
                     "{\"spec\": \"%s\", \"depth\": %d, \"d_model\": %d, \"heads\": %d, \"vocab\": %d, \"chunk\": %d}\n",
                     c->spec, c->depth, c->D, c->H, c->vocab, c->chunk);
    if (k < 0 || k >= n) return sq_fail(SQ_EINVAL, "model config: buffer too small");
    return SQ_OK;
}

void sq_model_free(sq_model *m)
{
    if (m->be) release_backend_copy(m);
    sq_params_free(&m->ps);
    sq_arena_free(&m->arena);
    free(m->blocks);
    free(m->acts);
    memset(m, 0, sizeof *m);
}
