/* The backend table: the one place where the CPU and GPU paths diverge
 * (DESIGN.md §4: "the dispatch between CPU and CUDA happens once, at the
 * layer boundary (a function table chosen at start)"). Blocks, the model
 * and the training step compute ONLY through a table like this one: every
 * layer, operator, optimizer update and elementwise or memory primitive
 * that touches activations, gradients or parameters is a member, so the
 * same block code runs on the CPU (sq_backend_cpu, the functions of
 * src/layers and src/ops) or on a device (a table of the sq_cuda_*
 * functions with the same signatures on device pointers).
 *
 * Member `foo` has exactly the signature, semantics and layouts of the CPU
 * function sq_foo in the header named at its group; read that header for
 * the math. Scalars (sizes, eps, lr, the divisor of div_scalar, the
 * cross-entropy's loss and count, the global norm) and the small structs
 * (options, the operators' in/grad/state pointer sets, the norms' arrays
 * of buffers) are host values; every tensor they point to is in the
 * backend's memory. Tokens and targets are int32 arrays in the backend's
 * memory too.
 *
 * The optimizer's arithmetic (adamw.h) sits in src/layers rather than
 * src/train so that this table includes only lower layers (ops, layers).
 *
 * A model holds its table (sq_model.be, sq_backend_cpu from sq_model_build)
 * and passes it to the blocks; the training step uses the model's. */
#ifndef SUBQ_LAYERS_BACKEND_H
#define SUBQ_LAYERS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "../ops/attn.h"
#include "../ops/gdn.h"
#include "../ops/mlstm.h"
#include "../ops/slstm.h"
#include "../ops/ssd.h"
#include "adamw.h"

typedef struct sq_backend {
    const char *name; /* "cpu", ... */

    /* ---- memory: the backend's buffers, and copies from and to the host ---- */
    int host_memory; /* 1: the backend's tensors are host memory (no copies needed) */
    float *(*alloc)(size_t n);      /* n floats (contents undefined), NULL with a message on failure */
    int32_t *(*alloc_i32)(size_t n);
    void (*release)(void *p);       /* frees what alloc / alloc_i32 returned (NULL is fine) */
    int (*upload)(float *dst, const float *src, size_t n);       /* host src -> backend dst */
    int (*download)(float *dst, const float *src, size_t n);     /* backend src -> host dst */
    int (*upload_i32)(int32_t *dst, const int32_t *src, size_t n);

    /* ---- layers (linear.h, norm.h, act.h, conv1d.h, embed.h) ---- */
    int (*linear_fwd)(int N, int in, int out, const float *x, const float *W, const float *b, float *y);
    int (*linear_fwd_acc)(int N, int in, int out, const float *x, const float *W, const float *b, float *y);
    int (*linear_bwd)(int N, int in, int out, const float *x, const float *W, const float *dy, float *dx, float *dW,
                      float *db);
    int (*linear_bwd_acc)(int N, int in, int out, const float *x, const float *W, const float *dy, float *dx,
                          float *dW, float *db);
    int (*norm_fwd)(int N, int G, int Dg, int center, float eps, const float *x, const float *w, const float *b,
                    float *y, float *mu, float *r);
    int (*norm_bwd)(int N, int G, int Dg, int center, const float *x, const float *w, const float *mu, const float *r,
                    const float *dy, float *dx, float *dw, float *db);
    int (*l2norm_fwd)(int N, int D, float eps, const float *x, float *y, float *rnorm);
    int (*l2norm_bwd)(int N, int D, const float *x, const float *rnorm, const float *dy, float *dx);
    int (*silu_fwd)(size_t n, const float *x, float *y);
    int (*silu_bwd)(size_t n, const float *x, const float *dy, float *dx);
    int (*gelu_fwd)(size_t n, const float *x, float *y);
    int (*gelu_bwd)(size_t n, const float *x, const float *dy, float *dx);
    int (*swiglu_fwd)(size_t n, const float *a, const float *b, float *y);
    int (*swiglu_bwd)(size_t n, const float *a, const float *b, const float *dy, float *da, float *dbv);
    int (*conv1d_fwd)(int B, int T, int C, int W, const float *x, const float *w, const float *bias,
                      const float *state0, float *y, float *state1);
    int (*conv1d_bwd)(int B, int T, int C, int W, const float *x, const float *w, const float *state0,
                      const float *dy, float *dx, float *dw, float *dbias, float *dstate0);
    int (*embed_fwd)(int N, int vocab, int D, const int32_t *tokens, const float *W, float *y);
    int (*embed_bwd)(int N, int vocab, int D, const int32_t *tokens, const float *dy, float *dW);
    int (*rope_fwd)(int B, int T, int H, int D, int pos0, float base, const float *x, float *y);
    int (*rope_bwd)(int B, int T, int H, int D, int pos0, float base, const float *dy, float *dx);
    int (*xent_fwd_bwd)(int N, int V, const float *logits, const int32_t *targets, float *loss, float *dlogits,
                        int *count);

    /* ---- elementwise and memory primitives (elem.h) ---- */
    int (*copy)(size_t n, const float *x, float *y);
    int (*zero)(size_t n, float *x);
    int (*add_to)(size_t n, const float *x, float *y);
    int (*mul)(size_t n, const float *a, const float *b, float *y);
    int (*div_scalar)(size_t n, float d, float *x);
    int (*copy_cols)(int N, int n, const float *src, int lds, float *dst, int ldd);
    int (*neg_exp_fwd)(size_t n, const float *x, float *y);
    int (*neg_exp_bwd)(size_t n, const float *y, const float *dy, float *dx);
    int (*sigmoid_gate_fwd)(size_t n, const float *a, const float *g, float *y);
    int (*sigmoid_gate_bwd)(size_t n, const float *a, const float *g, const float *dy, float *da, float *dg);

    /* ---- sequence operators (src/ops/<op>.h): work size, fwd, bwd, decode step ---- */
    size_t (*mlstm_work_floats)(sq_dims d, const sq_mlstm_opts *o);
    int (*mlstm_fwd)(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in, const sq_mlstm_state *s0, float *out,
                     sq_mlstm_state *s1, float *work);
    int (*mlstm_bwd)(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in, const sq_mlstm_state *s0,
                     const float *dout, const sq_mlstm_state *ds1, sq_mlstm_grad *g, sq_mlstm_state *ds0,
                     float *work);
    int (*mlstm_step)(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in *in, sq_mlstm_state *s, float *out);

    size_t (*slstm_work_floats)(sq_dims d, const sq_slstm_opts *o);
    int (*slstm_fwd)(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in, const sq_slstm_state *s0, float *out,
                     sq_slstm_state *s1, float *work);
    int (*slstm_bwd)(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in, const sq_slstm_state *s0,
                     const float *dout, const sq_slstm_state *ds1, sq_slstm_grad *g, sq_slstm_state *ds0,
                     float *work);
    int (*slstm_step)(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in *in, sq_slstm_state *s, float *out);

    size_t (*ssd_work_floats)(sq_dims d, const sq_ssd_opts *o);
    int (*ssd_fwd)(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in, const float *S0, float *y, float *S1,
                   float *work);
    int (*ssd_bwd)(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in, const float *S0, const float *dy,
                   const float *dS1, sq_ssd_grad *g, float *dS0, float *work);
    int (*ssd_step)(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in *in, float *S, float *y);

    size_t (*gdn_work_floats)(sq_dims d, const sq_gdn_opts *o);
    int (*gdn_fwd)(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in, const float *S0, float *out, float *S1,
                   float *work);
    int (*gdn_bwd)(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in, const float *S0, const float *dout,
                   const float *dS1, sq_gdn_grad *g, float *dS0, float *work);
    int (*gdn_step)(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in, float *S, float *out);

    size_t (*attn_work_floats)(sq_dims d, const sq_attn_opts *o);
    int (*attn_fwd)(sq_dims d, const sq_attn_opts *o, const float *q, const float *k, const float *v,
                    const sq_attn_cache *cache0, float *out, sq_attn_cache *cache1, float *work);
    int (*attn_bwd)(sq_dims d, const sq_attn_opts *o, const float *q, const float *k, const float *v,
                    const sq_attn_cache *cache0, const float *dout, float *dq, float *dk, float *dv,
                    sq_attn_cache *dcache0, float *work);
    int (*attn_step)(sq_dims d, const sq_attn_opts *o, const float *q, const float *k, const float *v,
                     sq_attn_cache *cache, float *out);

    /* ---- optimizer (adamw.h); the norms' arrays g and n are host arrays of k entries ---- */
    int (*adamw_update)(const sq_adamw_cfg *c, int t, float lr, int decay, float *p, const float *g, float *m,
                        float *v, size_t n);
    double (*global_norm)(float *const *g, const size_t *n, int k);
    double (*clip_global_norm)(float *const *g, const size_t *n, int k, double max_norm);
} sq_backend;

/* The CPU: src/layers and src/ops, float32, host memory. */
extern const sq_backend sq_backend_cpu;

#endif
