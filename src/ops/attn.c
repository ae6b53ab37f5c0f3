/* Causal softmax attention with a KV cache (attn.h), tiled with an online
 * softmax (FlashAttention-2): no T×T buffer. For a query tile the keys are
 * visited tile by tile, first the cache (positions < P, all visible), then
 * the new keys up to the diagonal; the running row maximum m and sum l give
 *   o_t = Σ_s e^{s_ts - m_t} v_s / l_t,   lse_t = m_t + log l_t.
 * The backward recomputes lse and D_t = do_t·o_t, then per tile
 *   P = e^{S - lse}, dV += Pᵀ dO, dS = P ⊙ (dO Vᵀ - D), dQ += c dS K, dK += c dSᵀ Q. */
#include "attn.h"

#include <math.h>
#include <string.h>

sq_attn_opts sq_attn_defaults(void) { return (sq_attn_opts){64}; }

static size_t r16(size_t n) { return (n + 15) / 16 * 16; }

/* Per head: S, dP [L,L]; O, Ob [L,V]; m, l [L]; lse, D [T]. */
static size_t head_floats(sq_dims d, int L)
{
    return 2 * r16((size_t)L * L) + 2 * r16((size_t)L * d.V) + 2 * r16(L) + 2 * r16(d.T);
}

size_t sq_attn_work_floats(sq_dims d, const sq_attn_opts *o)
{
    int L = o ? o->chunk : 64;
    if (L < 1 || d.B < 1 || d.T < 1 || d.H < 1 || d.K < 1 || d.V < 1) return 0;
    return (size_t)d.B * d.H * head_floats(d, L);
}

typedef struct {
    float *S, *dP, *O, *Ob, *m, *l, *lse, *D;
} attn_buf;

static attn_buf head_buf(float *ws, sq_dims d, int L, int bh)
{
    attn_buf b;
    float *p = ws + (size_t)bh * head_floats(d, L);
    size_t ll = r16((size_t)L * L);
    b.S = p;
    b.dP = p + ll;
    b.O = p + 2 * ll;
    b.Ob = b.O + r16((size_t)L * d.V);
    b.m = b.Ob + r16((size_t)L * d.V);
    b.l = b.m + r16(L);
    b.lse = b.l + r16(L);
    b.D = b.lse + r16(d.T);
    return b;
}

/* Where one (batch, head)'s keys and values live: P cached rows, then T new. */
typedef struct {
    const float *kc, *vc; /* cache rows, ld K / V */
    const float *kn, *vn; /* new rows, ld H*K / H*V */
    float *dkc, *dvc, *dkn, *dvn;
    size_t ldk, ldv;
    int P;
} keys;

static const float *key_row(const keys *s, int j, int K, size_t *ld)
{
    *ld = j < s->P ? (size_t)K : s->ldk;
    return j < s->P ? s->kc + (size_t)j * K : s->kn + (size_t)(j - s->P) * s->ldk;
}

static const float *val_row(const keys *s, int j, int V, size_t *ld)
{
    *ld = j < s->P ? (size_t)V : s->ldv;
    return j < s->P ? s->vc + (size_t)j * V : s->vn + (size_t)(j - s->P) * s->ldv;
}

/* Key tiles visible to queries [i0, i0+Lq) (absolute positions P+i): tiles
 * of the cache, then tiles of new keys up to P+i0+Lq. Fills start/len of
 * tile number idx; returns 0 when there are no more. Tiles never straddle
 * the cache boundary, so each has one leading dimension. */
static int key_tile(const keys *s, int i0, int Lq, int L, int idx, int *j0, int *Lk)
{
    int ncache = (s->P + L - 1) / L;
    if (idx < ncache) {
        *j0 = idx * L;
        *Lk = s->P - *j0 < L ? s->P - *j0 : L;
        return 1;
    }
    int jn = (idx - ncache) * L, end = i0 + Lq; /* new keys [0, end) are visible */
    if (jn >= end) return 0;
    *j0 = s->P + jn;
    *Lk = end - jn < L ? end - jn : L;
    return 1;
}

/* S = c Q K_tileᵀ with the causal mask (-inf where key > query). */
static void tile_scores(const float *Q, size_t ldq, int Lq, int i0, const keys *s, int j0, int Lk, int K, float c,
                        float *S)
{
    size_t ldk;
    const float *Kt = key_row(s, j0, K, &ldk);
    sq_sgemm(0, 1, Lq, Lk, K, c, Q, (int)ldq, Kt, (int)ldk, 0, S, Lk);
    for (int a = 0; a < Lq; a++)
        for (int b = 0; b < Lk; b++)
            if (j0 + b > s->P + i0 + a) S[(size_t)a * Lk + b] = -INFINITY;
}

/* Forward of one query tile: O rows (ld ldo) and lse. */
static void query_tile_forward(const float *Q, size_t ldq, int Lq, int i0, const keys *s, int L, int K, int V, float c,
                               attn_buf *w, float *O, size_t ldo, float *lse)
{
    for (int a = 0; a < Lq; a++) {
        w->m[a] = -INFINITY;
        w->l[a] = 0;
    }
    memset(w->O, 0, (size_t)Lq * V * sizeof(float));
    int j0, Lk;
    for (int idx = 0; key_tile(s, i0, Lq, L, idx, &j0, &Lk); idx++) {
        tile_scores(Q, ldq, Lq, i0, s, j0, Lk, K, c, w->S);
        for (int a = 0; a < Lq; a++) { /* online softmax: rescale what came before */
            float *row = w->S + (size_t)a * Lk, mx = w->m[a];
            for (int b = 0; b < Lk; b++) mx = fmaxf(mx, row[b]);
            float scale = w->m[a] == -INFINITY ? 0.0f : expf(w->m[a] - mx);
            double sum = 0;
            for (int b = 0; b < Lk; b++) {
                row[b] = row[b] == -INFINITY ? 0.0f : expf(row[b] - mx);
                sum += row[b];
            }
            w->l[a] = w->l[a] * scale + (float)sum;
            w->m[a] = mx;
            for (int e = 0; e < V; e++) w->O[(size_t)a * V + e] *= scale;
        }
        size_t ldv;
        const float *Vt = val_row(s, j0, V, &ldv);
        sq_sgemm(0, 0, Lq, V, Lk, 1, w->S, Lk, Vt, (int)ldv, 1, w->O, V);
    }
    for (int a = 0; a < Lq; a++) {
        for (int e = 0; e < V; e++) O[(size_t)a * ldo + e] = w->O[(size_t)a * V + e] / w->l[a];
        lse[a] = w->m[a] + logf(w->l[a]);
    }
}

int sq_attn_check_args(const char *op, sq_dims d, const sq_attn_opts *o, const float *q, const float *k,
                       const float *v, const sq_attn_cache *c0)
{
    int rc;
    if ((rc = sq_check_dims(op, d)) || (rc = sq_check_ptr(op, "q", q)) || (rc = sq_check_ptr(op, "k", k)) ||
        (rc = sq_check_ptr(op, "v", v)) || (rc = sq_check_chunk(op, o->chunk)))
        return rc;
    if (c0 && (c0->len < 0 || c0->len > c0->cap || (c0->len > 0 && (!c0->k || !c0->v))))
        return sq_fail(SQ_EINVAL, "%s: cache0 has len %d, cap %d%s; need 0 <= len <= cap and its buffers", op, c0->len,
                       c0->cap, c0->len > 0 && (!c0->k || !c0->v) ? " and a NULL buffer" : "");
    return SQ_OK;
}

static keys head_keys(sq_dims d, const float *k, const float *v, const sq_attn_cache *c0, int b, int h)
{
    size_t bh = (size_t)b * d.H + h, row = (size_t)b * d.T * d.H + h;
    keys s = {NULL, NULL, k + row * d.K, v + row * d.V, NULL, NULL, NULL, NULL,
              (size_t)d.H * d.K, (size_t)d.H * d.V, c0 ? c0->len : 0};
    if (c0 && c0->len > 0) {
        s.kc = c0->k + bh * c0->cap * d.K;
        s.vc = c0->v + bh * c0->cap * d.V;
    }
    return s;
}

/* cache1 = cache0's positions followed by the T new keys and values. */
static void append_cache(sq_dims d, const float *k, const float *v, const sq_attn_cache *c0, sq_attn_cache *c1)
{
    int P = c0 ? c0->len : 0;
    for (int bh = 0; bh < d.B * d.H; bh++) {
        int b = bh / d.H, h = bh % d.H;
        float *k1 = c1->k + (size_t)bh * c1->cap * d.K, *v1 = c1->v + (size_t)bh * c1->cap * d.V;
        if (c0 && c0 != c1 && P > 0) {
            memmove(k1, c0->k + (size_t)bh * c0->cap * d.K, (size_t)P * d.K * sizeof(float));
            memmove(v1, c0->v + (size_t)bh * c0->cap * d.V, (size_t)P * d.V * sizeof(float));
        }
        for (int t = 0; t < d.T; t++) {
            size_t g = ((size_t)b * d.T + t) * d.H + h;
            memcpy(k1 + (size_t)(P + t) * d.K, k + g * d.K, (size_t)d.K * sizeof(float));
            memcpy(v1 + (size_t)(P + t) * d.V, v + g * d.V, (size_t)d.V * sizeof(float));
        }
    }
    c1->len = P + d.T;
}

int sq_attn_check_cache1(const char *op, sq_dims d, const sq_attn_cache *cache0, const sq_attn_cache *cache1)
{
    int P = cache0 ? cache0->len : 0;
    if (cache1 && (!cache1->k || !cache1->v || cache1->cap < P + d.T))
        return sq_fail(SQ_EINVAL, "%s: cache1 needs buffers and cap >= %d (has %d)", op, P + d.T, cache1->cap);
    if (cache1 && cache0 && cache1 != cache0 && cache1->cap != cache0->cap && P > 0 &&
        (cache1->k == cache0->k || cache1->v == cache0->v))
        return sq_fail(SQ_EINVAL, "%s: cache1 shares buffers with cache0 but has another cap", op);
    return SQ_OK;
}

int sq_attn_fwd(sq_dims d, const sq_attn_opts *o, const float *q, const float *k, const float *v,
                const sq_attn_cache *cache0, float *out, sq_attn_cache *cache1, float *work)
{
    const char *op = "attn fwd";
    sq_attn_opts def = sq_attn_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sq_attn_check_args(op, d, o, q, k, v, cache0)) || (rc = sq_check_ptr(op, "out", out))) return rc;
    if ((rc = sq_attn_check_cache1(op, d, cache0, cache1))) return rc;
    float *owned, *ws = sq_work_or_alloc(work, sq_attn_work_floats(d, o), &owned);
    if (!ws) return SQ_ENOMEM;
    int L = o->chunk;
    float c = 1.0f / sqrtf((float)d.K);
#pragma omp parallel for schedule(dynamic)
    for (int bh = 0; bh < d.B * d.H; bh++) {
        int b = bh / d.H, h = bh % d.H;
        attn_buf w = head_buf(ws, d, L, bh);
        keys s = head_keys(d, k, v, cache0, b, h);
        size_t row = (size_t)b * d.T * d.H + h, ldq = (size_t)d.H * d.K, ldo = (size_t)d.H * d.V;
        for (int i0 = 0; i0 < d.T; i0 += L) {
            int Lq = d.T - i0 < L ? d.T - i0 : L;
            query_tile_forward(q + (row + (size_t)i0 * d.H) * d.K, ldq, Lq, i0, &s, L, d.K, d.V, c, &w,
                               out + (row + (size_t)i0 * d.H) * d.V, ldo, w.lse + i0);
        }
    }
    if (cache1) append_cache(d, k, v, cache0, cache1);
    sq_free(owned);
    return SQ_OK;
}

int sq_attn_bwd(sq_dims d, const sq_attn_opts *o, const float *q, const float *k, const float *v,
                const sq_attn_cache *cache0, const float *dout, float *dq, float *dk, float *dv,
                sq_attn_cache *dcache0, float *work)
{
    const char *op = "attn bwd";
    sq_attn_opts def = sq_attn_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sq_attn_check_args(op, d, o, q, k, v, cache0)) || (rc = sq_check_ptr(op, "dout", dout)) ||
        (rc = sq_check_ptr(op, "dq", dq)) || (rc = sq_check_ptr(op, "dk", dk)) || (rc = sq_check_ptr(op, "dv", dv)))
        return rc;
    int P = cache0 ? cache0->len : 0;
    if (dcache0 && P > 0 && (!dcache0->k || !dcache0->v || dcache0->cap < P))
        return sq_fail(SQ_EINVAL, "%s: dcache0 needs buffers with cap >= %d", op, P);
    float *owned, *ws = sq_work_or_alloc(work, sq_attn_work_floats(d, o), &owned);
    if (!ws) return SQ_ENOMEM;
    int L = o->chunk, K = d.K, V = d.V;
    float c = 1.0f / sqrtf((float)K);
#pragma omp parallel for schedule(dynamic)
    for (int bh = 0; bh < d.B * d.H; bh++) {
        int b = bh / d.H, h = bh % d.H;
        attn_buf w = head_buf(ws, d, L, bh);
        keys s = head_keys(d, k, v, cache0, b, h);
        size_t row = (size_t)b * d.T * d.H + h, ldq = (size_t)d.H * K, ldo = (size_t)d.H * V;
        float *dkc = NULL, *dvc = NULL;
        if (dcache0 && P > 0) {
            dkc = dcache0->k + (size_t)bh * dcache0->cap * K;
            dvc = dcache0->v + (size_t)bh * dcache0->cap * V;
            memset(dkc, 0, (size_t)P * K * sizeof(float));
            memset(dvc, 0, (size_t)P * V * sizeof(float));
        }
        for (int t = 0; t < d.T; t++) {
            memset(dq + (row + (size_t)t * d.H) * K, 0, (size_t)K * sizeof(float));
            memset(dk + (row + (size_t)t * d.H) * K, 0, (size_t)K * sizeof(float));
            memset(dv + (row + (size_t)t * d.H) * V, 0, (size_t)V * sizeof(float));
        }
        for (int i0 = 0; i0 < d.T; i0 += L) {
            int Lq = d.T - i0 < L ? d.T - i0 : L;
            const float *Q = q + (row + (size_t)i0 * d.H) * K, *dO = dout + (row + (size_t)i0 * d.H) * V;
            float *dQ = dq + (row + (size_t)i0 * d.H) * K;
            /* recompute o and lse; D_t = do_t · o_t */
            query_tile_forward(Q, ldq, Lq, i0, &s, L, K, V, c, &w, w.Ob, (size_t)V, w.lse + i0);
            for (int a = 0; a < Lq; a++) {
                double acc = 0;
                for (int e = 0; e < V; e++) acc += (double)dO[(size_t)a * ldo + e] * w.Ob[(size_t)a * V + e];
                w.D[i0 + a] = (float)acc;
            }
            int j0, Lk;
            for (int idx = 0; key_tile(&s, i0, Lq, L, idx, &j0, &Lk); idx++) {
                tile_scores(Q, ldq, Lq, i0, &s, j0, Lk, K, c, w.S);
                for (int a = 0; a < Lq; a++)
                    for (int e = 0; e < Lk; e++) {
                        float *x = w.S + (size_t)a * Lk + e;
                        *x = *x == -INFINITY ? 0.0f : expf(*x - w.lse[i0 + a]); /* P */
                    }
                size_t ldk, ldv;
                const float *Kt = key_row(&s, j0, K, &ldk), *Vt = val_row(&s, j0, V, &ldv);
                float *dKt, *dVt; /* NULL for cache keys when no dcache0 is wanted */
                if (j0 < P) {
                    dKt = dkc ? dkc + (size_t)j0 * K : NULL;
                    dVt = dvc ? dvc + (size_t)j0 * V : NULL;
                } else {
                    dKt = dk + (row + (size_t)(j0 - P) * d.H) * K;
                    dVt = dv + (row + (size_t)(j0 - P) * d.H) * V;
                }
                if (dKt && dVt) /* dV += Pᵀ dO */
                    sq_sgemm(1, 0, Lk, V, Lq, 1, w.S, Lk, dO, (int)ldo, 1, dVt, (int)ldv);
                /* dS = P ⊙ (dO Vᵀ - D) */
                sq_sgemm(0, 1, Lq, Lk, V, 1, dO, (int)ldo, Vt, (int)ldv, 0, w.dP, Lk);
                for (int a = 0; a < Lq; a++)
                    for (int e = 0; e < Lk; e++) {
                        size_t i = (size_t)a * Lk + e;
                        w.dP[i] = w.S[i] * (w.dP[i] - w.D[i0 + a]);
                    }
                sq_sgemm(0, 0, Lq, K, Lk, c, w.dP, Lk, Kt, (int)ldk, 1, dQ, (int)ldq);
                if (dKt && dVt) sq_sgemm(1, 0, Lk, K, Lq, c, w.dP, Lk, Q, (int)ldq, 1, dKt, (int)ldk);
            }
        }
    }
    if (dcache0) dcache0->len = P;
    sq_free(owned);
    return SQ_OK;
}

int sq_attn_step(sq_dims d, const sq_attn_opts *o, const float *q, const float *k, const float *v,
                 sq_attn_cache *cache, float *out)
{
    const char *op = "attn step";
    int rc;
    if ((rc = sq_check_ptr(op, "cache", cache))) return rc;
    if (d.T != 1) return sq_fail(SQ_EINVAL, "%s: one token at a time (T must be 1, got %d)", op, d.T);
    if (cache->len >= cache->cap)
        return sq_fail(SQ_EINVAL, "%s: the cache is full (len %d, cap %d); allocate a larger one", op, cache->len,
                       cache->cap);
    return sq_attn_fwd(d, o, q, k, v, cache, out, cache, NULL);
}
