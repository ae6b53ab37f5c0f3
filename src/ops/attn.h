/* Causal softmax attention (the baseline), DESIGN.md §2.
 *
 * Per (batch, head), with a key/value cache of P earlier positions:
 *   o_t = Σ_{s ≤ P+t} softmax_s(q_t·k_s / √K) v_s
 * computed tile by tile with an online softmax (no T×T buffer); the backward
 * recomputes the scores tile by tile from the saved row log-sum-exp.
 * RoPE is applied by the caller (a layer), not here.
 *
 * Layouts: q, k [B,T,H,K]; v, out [B,T,H,V]. The state is the KV cache:
 * k [B,H,cap,K], v [B,H,cap,V], of which the first len positions are used.
 */
#ifndef SUBQ_OPS_ATTN_H
#define SUBQ_OPS_ATTN_H

#include "../core/core.h"

typedef struct {
    int chunk; /* tile length >= 1 over queries and keys (default 64) */
} sq_attn_opts;

sq_attn_opts sq_attn_defaults(void);

typedef struct {
    float *k;  /* [B,H,cap,K] */
    float *v;  /* [B,H,cap,V] */
    int len;   /* positions in use, 0 <= len <= cap */
    int cap;
} sq_attn_cache;

size_t sq_attn_work_floats(sq_dims d, const sq_attn_opts *o);

/* The checks every call makes (dims, pointers, chunk, cache0's len and
 * buffers; cache1's room for len0 + T positions), shared with the CUDA
 * operator; op names the caller in the message. */
int sq_attn_check_args(const char *op, sq_dims d, const sq_attn_opts *o, const float *q, const float *k,
                       const float *v, const sq_attn_cache *c0);
int sq_attn_check_cache1(const char *op, sq_dims d, const sq_attn_cache *cache0, const sq_attn_cache *cache1);
/* cache0 NULL = no earlier positions. cache1 (may be NULL, may equal
 * cache0) receives cache0's positions followed by this call's T keys and
 * values; its cap must be >= len0 + T (SQ_EINVAL otherwise). */
int sq_attn_fwd(sq_dims d, const sq_attn_opts *o, const float *q, const float *k, const float *v,
                const sq_attn_cache *cache0, float *out, sq_attn_cache *cache1, float *work);
/* dcache0 (may be NULL) receives gradients for cache0's first len positions
 * (same cap and layout as cache0). The gradient w.r.t. cache1 is not taken. */
int sq_attn_bwd(sq_dims d, const sq_attn_opts *o, const float *q, const float *k, const float *v,
                const sq_attn_cache *cache0, const float *dout,
                float *dq, float *dk, float *dv, sq_attn_cache *dcache0, float *work);
/* d.T must be 1: appends k, v to cache (len < cap needed) and attends. */
int sq_attn_step(sq_dims d, const sq_attn_opts *o, const float *q, const float *k, const float *v,
                 sq_attn_cache *cache, float *out);

#endif
