/* `subq bench ops --device cuda`: each operator on the GPU at one shape,
 * forward and forward+backward (median of reps, synchronized), its output
 * checked against the CPU implementation on batch element 0, the decode
 * step (one token for each of the B sequences, state on the device), and
 * the device's ceilings (device-to-device copy rate, cuBLAS GEMM rates)
 * measured in the same run. One table entry per operator (gpu_ops). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cuda/cuda.h"
#include "../bench_gpu.h"
#include "../bench_ops.h"

enum { MAXBUF = 24 };

/* A case: host inputs (for the CPU check) and their device copies. */
typedef struct {
    sq_dims d;
    int chunk;
    float *host[MAXBUF], *dev[MAXBUF];
    sq_bf16 *dev16[MAXBUF]; /* bf16 mode: the bf16 copies of the op's bf16 tensors */
    size_t n[MAXBUF];
    int nbuf, bf16;
    float *work, *state; /* the step's state (zeroed), and for attention the cache's */
} gcase;

/* One operator: its buffers (inputs first, random in [lo, hi]; then the
 * output and the gradients, lo == hi: device only), how to run it, its CPU
 * forward on batch element 0, and its decode step. */
typedef struct {
    const char *name;
    int nbuf, nin, out;
    void (*layout)(sq_dims d, size_t *n, float *lo, float *hi);
    size_t (*work)(sq_dims d, int chunk);
    int (*run)(gcase *c, int bwd);
    int (*cpu)(gcase *c, sq_dims d1, float *y);
    size_t (*state_floats)(sq_dims d);
    int (*step)(gcase *c);
    unsigned bf16_mask; /* bit i: buffer i is bf16 in the bf16 entry point */
    size_t (*work16)(sq_dims d, int chunk);
    int (*run16)(gcase *c, int bwd);
} gpu_op;

static size_t nk_of(sq_dims d) { return (size_t)d.B * d.T * d.H * d.K; }
static size_t nv_of(sq_dims d) { return (size_t)d.B * d.T * d.H * d.V; }
static size_t ng_of(sq_dims d) { return (size_t)d.B * d.T * d.H; }
static size_t nS_of(sq_dims d) { return (size_t)d.B * d.H * d.K * d.V; }
static sq_dims one_token(sq_dims d) { return (sq_dims){d.B, 1, d.H, d.K, d.V}; }

static void set(size_t *n, float *lo, float *hi, int i, size_t ni, float l, float h)
{
    n[i] = ni, lo[i] = l, hi[i] = h;
}

/* ---- mLSTM: q k v ig fg | out | dq dk dv dig dfg ---- */
static void mlstm_layout(sq_dims d, size_t *n, float *lo, float *hi)
{
    size_t nk = nk_of(d), nv = nv_of(d), ng = ng_of(d);
    set(n, lo, hi, 0, nk, -1, 1), set(n, lo, hi, 1, nk, -1, 1), set(n, lo, hi, 2, nv, -1, 1);
    set(n, lo, hi, 3, ng, -3, 3), set(n, lo, hi, 4, ng, 0, 6);
    const size_t rest[6] = {nv, nk, nk, nv, ng, ng};
    for (int i = 0; i < 6; i++) set(n, lo, hi, 5 + i, rest[i], 0, 0);
}
static size_t scalar_work(sq_dims d, int chunk) { return sq_cuda_scalar_work_floats(d, chunk); }
static int mlstm_run(gcase *c, int bwd)
{
    float **g = c->dev;
    sq_mlstm_opts o = {c->chunk, 0};
    sq_mlstm_in in = {g[0], g[1], g[2], g[3], g[4]};
    sq_mlstm_grad gr = {g[6], g[7], g[8], g[9], g[10]};
    int rc = sq_cuda_mlstm_fwd(c->d, &o, &in, NULL, g[5], NULL, c->work);
    return rc || !bwd ? rc : sq_cuda_mlstm_bwd(c->d, &o, &in, NULL, g[5], NULL, &gr, NULL, c->work);
}
static int mlstm_cpu(gcase *c, sq_dims d1, float *y)
{
    float **h = c->host;
    sq_mlstm_opts o = {c->chunk, 0};
    sq_mlstm_in in = {h[0], h[1], h[2], h[3], h[4]};
    return sq_mlstm_fwd(d1, &o, &in, NULL, y, NULL, NULL);
}
static size_t mlstm_work16(sq_dims d, int chunk)
{
    sq_mlstm_opts o = {chunk, 0};
    return sq_cuda_mlstm_bf16_work_floats(d, &o);
}
static int mlstm_run16(gcase *c, int bwd)
{
    float **g = c->dev;
    sq_bf16 **b = c->dev16;
    sq_mlstm_opts o = {c->chunk, 0};
    sq_mlstm_in_bf16 in = {b[0], b[1], b[2], g[3], g[4]};
    sq_mlstm_grad_bf16 gr = {b[6], b[7], b[8], g[9], g[10]};
    int rc = sq_cuda_mlstm_fwd_bf16(c->d, &o, &in, NULL, b[5], NULL, c->work);
    return rc || !bwd ? rc : sq_cuda_mlstm_bwd_bf16(c->d, &o, &in, NULL, b[5], NULL, &gr, NULL, c->work);
}
static size_t mlstm_state(sq_dims d) { return nS_of(d) + (size_t)d.B * d.H * (d.K + 1); }
static int mlstm_step(gcase *c)
{
    float **g = c->dev;
    sq_dims d = c->d;
    sq_mlstm_in in = {g[0], g[1], g[2], g[3], g[4]};
    sq_mlstm_state s = {c->state, c->state + nS_of(d), c->state + nS_of(d) + (size_t)d.B * d.H * d.K};
    return sq_cuda_mlstm_step(one_token(d), NULL, &in, &s, g[5]);
}

/* ---- linear attention: q k v | out | dq dk dv ---- */
static void linattn_layout(sq_dims d, size_t *n, float *lo, float *hi)
{
    size_t nk = nk_of(d), nv = nv_of(d);
    set(n, lo, hi, 0, nk, -1, 1), set(n, lo, hi, 1, nk, -0.1f, 0.1f), set(n, lo, hi, 2, nv, -1, 1);
    const size_t rest[4] = {nv, nk, nk, nv};
    for (int i = 0; i < 4; i++) set(n, lo, hi, 3 + i, rest[i], 0, 0);
}
static int linattn_run(gcase *c, int bwd)
{
    float **g = c->dev;
    sq_linattn_opts o = {c->chunk};
    int rc = sq_cuda_linattn_fwd(c->d, &o, g[0], g[1], g[2], NULL, g[3], NULL, c->work);
    return rc || !bwd ? rc
                      : sq_cuda_linattn_bwd(c->d, &o, g[0], g[1], g[2], NULL, g[3], NULL, g[4], g[5], g[6], NULL,
                                            c->work);
}
static int linattn_cpu(gcase *c, sq_dims d1, float *y)
{
    sq_linattn_opts o = {c->chunk};
    return sq_linattn_fwd(d1, &o, c->host[0], c->host[1], c->host[2], NULL, y, NULL, NULL);
}
static size_t linattn_state(sq_dims d) { return nS_of(d); }
static size_t linattn_work16(sq_dims d, int chunk)
{
    sq_linattn_opts o = {chunk};
    return sq_cuda_linattn_bf16_work_floats(d, &o);
}
static int linattn_run16(gcase *c, int bwd)
{
    sq_bf16 **b = c->dev16;
    sq_linattn_opts o = {c->chunk};
    int rc = sq_cuda_linattn_fwd_bf16(c->d, &o, b[0], b[1], b[2], NULL, b[3], NULL, c->work);
    return rc || !bwd ? rc
                      : sq_cuda_linattn_bwd_bf16(c->d, &o, b[0], b[1], b[2], NULL, b[3], NULL, b[4], b[5], b[6],
                                                 NULL, c->work);
}
static int linattn_step(gcase *c)
{
    float **g = c->dev;
    return sq_cuda_linattn_step(one_token(c->d), g[0], g[1], g[2], c->state, g[3]);
}

/* ---- Mamba-2 SSD, one group per head: x Bm Cm dt bias A D | y | dx dB dC ddt dbias dA dD ---- */
static void ssd_layout(sq_dims d, size_t *n, float *lo, float *hi)
{
    size_t nk = nk_of(d), nv = nv_of(d), ng = ng_of(d), h = d.H;
    set(n, lo, hi, 0, nv, -1, 1), set(n, lo, hi, 1, nk, -1, 1), set(n, lo, hi, 2, nk, -1, 1);
    set(n, lo, hi, 3, ng, -3, 3), set(n, lo, hi, 4, h, -1, 1), set(n, lo, hi, 5, h, -2, -0.5f);
    set(n, lo, hi, 6, h, 0, 1);
    const size_t rest[8] = {nv, nv, nk, nk, ng, h, h, h};
    for (int i = 0; i < 8; i++) set(n, lo, hi, 7 + i, rest[i], 0, 0);
}
static int ssd_run(gcase *c, int bwd)
{
    float **g = c->dev;
    sq_ssd_opts o = {c->chunk, c->d.H};
    sq_ssd_in in = {g[0], g[1], g[2], g[3], g[4], g[5], g[6]};
    sq_ssd_grad gr = {g[8], g[9], g[10], g[11], g[12], g[13], g[14]};
    int rc = sq_cuda_ssd_fwd(c->d, &o, &in, NULL, g[7], NULL, c->work);
    return rc || !bwd ? rc : sq_cuda_ssd_bwd(c->d, &o, &in, NULL, g[7], NULL, &gr, NULL, c->work);
}
static int ssd_cpu(gcase *c, sq_dims d1, float *y)
{
    float **h = c->host;
    sq_ssd_opts o = {c->chunk, d1.H};
    sq_ssd_in in = {h[0], h[1], h[2], h[3], h[4], h[5], h[6]};
    return sq_ssd_fwd(d1, &o, &in, NULL, y, NULL, NULL);
}
static size_t ssd_work16(sq_dims d, int chunk)
{
    sq_ssd_opts o = {chunk, d.H};
    return sq_cuda_ssd_bf16_work_floats(d, &o);
}
static int ssd_run16(gcase *c, int bwd)
{
    float **g = c->dev;
    sq_bf16 **b = c->dev16;
    sq_ssd_opts o = {c->chunk, c->d.H};
    sq_ssd_in_bf16 in = {b[0], b[1], b[2], g[3], g[4], g[5], g[6]};
    sq_ssd_grad_bf16 gr = {b[8], b[9], b[10], g[11], g[12], g[13], g[14]};
    int rc = sq_cuda_ssd_fwd_bf16(c->d, &o, &in, NULL, b[7], NULL, c->work);
    return rc || !bwd ? rc : sq_cuda_ssd_bwd_bf16(c->d, &o, &in, NULL, b[7], NULL, &gr, NULL, c->work);
}
static int ssd_step(gcase *c)
{
    float **g = c->dev;
    sq_ssd_opts o = {c->chunk, c->d.H};
    sq_ssd_in in = {g[0], g[1], g[2], g[3], g[4], g[5], g[6]};
    return sq_cuda_ssd_step(one_token(c->d), &o, &in, c->state, g[7]);
}

/* ---- Gated DeltaNet: q k v alpha beta A_log dt_bias | out | dq dk dv dalpha dbeta dA_log ddt_bias ---- */
static void gdn_layout(sq_dims d, size_t *n, float *lo, float *hi)
{
    size_t nk = nk_of(d), nv = nv_of(d), ng = ng_of(d), h = d.H;
    set(n, lo, hi, 0, nk, -1, 1), set(n, lo, hi, 1, nk, -1, 1), set(n, lo, hi, 2, nv, -1, 1);
    set(n, lo, hi, 3, ng, -3, 3), set(n, lo, hi, 4, ng, -3, 3), set(n, lo, hi, 5, h, 0, 2.7f);
    set(n, lo, hi, 6, h, -4, -1);
    const size_t rest[8] = {nv, nk, nk, nv, ng, ng, h, h};
    for (int i = 0; i < 8; i++) set(n, lo, hi, 7 + i, rest[i], 0, 0);
}
static size_t gdn_work(sq_dims d, int chunk)
{
    sq_gdn_opts o = sq_gdn_defaults();
    o.chunk = chunk;
    return sq_cuda_gdn_work_floats(d, &o);
}
static int gdn_run(gcase *c, int bwd)
{
    float **g = c->dev;
    sq_gdn_opts o = sq_gdn_defaults();
    o.chunk = c->chunk;
    sq_gdn_in in = {g[0], g[1], g[2], g[3], g[4], g[5], g[6]};
    sq_gdn_grad gr = {g[8], g[9], g[10], g[11], g[12], g[13], g[14]};
    int rc = sq_cuda_gdn_fwd(c->d, &o, &in, NULL, g[7], NULL, c->work);
    return rc || !bwd ? rc : sq_cuda_gdn_bwd(c->d, &o, &in, NULL, g[7], NULL, &gr, NULL, c->work);
}
static int gdn_cpu(gcase *c, sq_dims d1, float *y)
{
    float **h = c->host;
    sq_gdn_opts o = sq_gdn_defaults();
    o.chunk = c->chunk;
    sq_gdn_in in = {h[0], h[1], h[2], h[3], h[4], h[5], h[6]};
    return sq_gdn_fwd(d1, &o, &in, NULL, y, NULL, NULL);
}
static size_t gdn_work16(sq_dims d, int chunk)
{
    sq_gdn_opts o = sq_gdn_defaults();
    o.chunk = chunk;
    return sq_cuda_gdn_bf16_work_floats(d, &o);
}
static int gdn_run16(gcase *c, int bwd)
{
    float **g = c->dev;
    sq_bf16 **b = c->dev16;
    sq_gdn_opts o = sq_gdn_defaults();
    o.chunk = c->chunk;
    sq_gdn_in_bf16 in = {b[0], b[1], b[2], g[3], g[4], g[5], g[6]};
    sq_gdn_grad_bf16 gr = {b[8], b[9], b[10], g[11], g[12], g[13], g[14]};
    int rc = sq_cuda_gdn_fwd_bf16(c->d, &o, &in, NULL, b[7], NULL, c->work);
    return rc || !bwd ? rc : sq_cuda_gdn_bwd_bf16(c->d, &o, &in, NULL, b[7], NULL, &gr, NULL, c->work);
}
static int gdn_step(gcase *c)
{
    float **g = c->dev;
    sq_gdn_in in = {g[0], g[1], g[2], g[3], g[4], g[5], g[6]};
    return sq_cuda_gdn_step(one_token(c->d), NULL, &in, c->state, g[7]);
}

/* ---- sLSTM (V = K): gx R bias | out | dgx dR dbias; state c, n, m, h ---- */
static void slstm_layout(sq_dims d, size_t *n, float *lo, float *hi)
{
    size_t ng = 4 * nk_of(d), nR = (size_t)d.H * 4 * d.K * d.K, nb = (size_t)d.H * 4 * d.K;
    set(n, lo, hi, 0, ng, -1, 1), set(n, lo, hi, 1, nR, -0.1f, 0.1f), set(n, lo, hi, 2, nb, -1, 1);
    const size_t rest[4] = {nk_of(d), ng, nR, nb};
    for (int i = 0; i < 4; i++) set(n, lo, hi, 3 + i, rest[i], 0, 0);
}
static size_t slstm_work(sq_dims d, int chunk) { return sq_cuda_slstm_work_floats(d, NULL); }
static int slstm_run(gcase *c, int bwd)
{
    float **g = c->dev;
    sq_slstm_in in = {g[0], g[1], g[2]};
    sq_slstm_grad gr = {g[4], g[5], g[6]};
    int rc = sq_cuda_slstm_fwd(c->d, NULL, &in, NULL, g[3], NULL, c->work);
    return rc || !bwd ? rc : sq_cuda_slstm_bwd(c->d, NULL, &in, NULL, g[3], NULL, &gr, NULL, c->work);
}
static int slstm_cpu(gcase *c, sq_dims d1, float *y)
{
    sq_slstm_in in = {c->host[0], c->host[1], c->host[2]};
    return sq_slstm_fwd(d1, NULL, &in, NULL, y, NULL, NULL);
}
static size_t slstm_work16(sq_dims d, int chunk) { return sq_cuda_slstm_bf16_work_floats(d, NULL); }
static int slstm_run16(gcase *c, int bwd)
{
    float **g = c->dev;
    sq_bf16 **b = c->dev16;
    sq_slstm_in_bf16 in = {b[0], g[1], g[2]};
    sq_slstm_grad_bf16 gr = {b[4], g[5], g[6]};
    int rc = sq_cuda_slstm_fwd_bf16(c->d, NULL, &in, NULL, b[3], NULL, c->work);
    return rc || !bwd ? rc : sq_cuda_slstm_bwd_bf16(c->d, NULL, &in, NULL, b[3], NULL, &gr, NULL, c->work);
}
static size_t slstm_state(sq_dims d) { return 4 * (size_t)d.B * d.H * d.K; }
static int slstm_step(gcase *c)
{
    float **g = c->dev;
    size_t n = (size_t)c->d.B * c->d.H * c->d.K;
    sq_slstm_in in = {g[0], g[1], g[2]};
    sq_slstm_state s = {c->state, c->state + n, c->state + 2 * n, c->state + 3 * n};
    return sq_cuda_slstm_step(one_token(c->d), NULL, &in, &s, g[3]);
}

/* ---- causal softmax attention: q k v | out | dq dk dv; the step's KV cache holds T-1 positions ---- */
/* float32 tensors through the backend table, as a model runs it: the
 * float32 kernel, or under SQ_CUDA_MATH_BF16 (bench model --math bf16) the
 * bf16 tensor-core kernel with its conversions */
static size_t attn_work(sq_dims d, int chunk)
{
    sq_attn_opts o = {chunk};
    return sq_cuda_backend()->attn_work_floats(d, &o);
}
static int attn_run(gcase *c, int bwd)
{
    float **g = c->dev;
    const sq_backend *be = sq_cuda_backend();
    sq_attn_opts o = {c->chunk};
    int rc = be->attn_fwd(c->d, &o, g[0], g[1], g[2], NULL, g[3], NULL, c->work);
    return rc || !bwd ? rc : be->attn_bwd(c->d, &o, g[0], g[1], g[2], NULL, g[3], g[4], g[5], g[6], NULL, c->work);
}
static int attn_cpu(gcase *c, sq_dims d1, float *y)
{
    sq_attn_opts o = {c->chunk};
    return sq_attn_fwd(d1, &o, c->host[0], c->host[1], c->host[2], NULL, y, NULL, NULL);
}
static size_t attn_work16(sq_dims d, int chunk)
{
    sq_attn_opts o = {chunk};
    return sq_cuda_attn_bf16_work_floats(d, &o);
}
static int attn_run16(gcase *c, int bwd)
{
    sq_bf16 **b = c->dev16;
    sq_attn_opts o = {c->chunk};
    int rc = sq_cuda_attn_fwd_bf16(c->d, &o, b[0], b[1], b[2], NULL, b[3], NULL, c->work);
    return rc || !bwd ? rc
                      : sq_cuda_attn_bwd_bf16(c->d, &o, b[0], b[1], b[2], NULL, b[3], b[4], b[5], b[6], NULL, c->work);
}
static size_t attn_state(sq_dims d) { return (size_t)d.B * d.H * d.T * (d.K + d.V); }
static int attn_step(gcase *c)
{
    float **g = c->dev;
    sq_dims d = c->d;
    sq_attn_cache cache = {c->state, c->state + (size_t)d.B * d.H * d.T * d.K, d.T - 1, d.T};
    return sq_cuda_attn_step(one_token(d), NULL, g[0], g[1], g[2], &cache, g[3]);
}

static const gpu_op gpu_ops[] = {
    {"mlstm", 11, 5, 5, mlstm_layout, scalar_work, mlstm_run, mlstm_cpu, mlstm_state, mlstm_step, 0x1e7, mlstm_work16,
     mlstm_run16},
    {"ssd", 15, 7, 7, ssd_layout, scalar_work, ssd_run, ssd_cpu, linattn_state, ssd_step, 0x787, ssd_work16,
     ssd_run16},
    {"linattn", 7, 3, 3, linattn_layout, scalar_work, linattn_run, linattn_cpu, linattn_state, linattn_step, 0x7f,
     linattn_work16, linattn_run16},
    {"gdn", 15, 7, 7, gdn_layout, gdn_work, gdn_run, gdn_cpu, linattn_state, gdn_step, 0x787, gdn_work16, gdn_run16},
    {"slstm", 7, 3, 3, slstm_layout, slstm_work, slstm_run, slstm_cpu, slstm_state, slstm_step, 0x19, slstm_work16,
     slstm_run16},
    {"attn", 7, 3, 3, linattn_layout, attn_work, attn_run, attn_cpu, attn_state, attn_step, 0x7f, attn_work16,
     attn_run16},
};
static const int n_gpu_ops = sizeof gpu_ops / sizeof gpu_ops[0];

static const gpu_op *find_gpu_op(const char *name)
{
    for (int i = 0; i < n_gpu_ops; i++)
        if (!strcmp(gpu_ops[i].name, name)) return &gpu_ops[i];
    return NULL;
}

/* ---- the harness ---- */

static void gcase_free(gcase *c)
{
    for (int i = 0; i < c->nbuf; i++) {
        sq_free(c->host[i]);
        sq_cuda_free(c->dev[i]);
        sq_cuda_free(c->dev16[i]);
    }
    sq_cuda_free(c->work);
    sq_cuda_free(c->state);
}

/* Buffer i's bf16 copy; an input is rounded on every side (device float32
 * copy and host array too), so the CPU check sees the values the GPU gets. */
static int bf16_copy(gcase *c, int i)
{
    size_t n = c->n[i];
    int rc = sq_cuda_malloc_bf16(&c->dev16[i], n);
    if (rc || !c->host[i]) return rc;
    if (!(rc = sq_cuda_to_bf16(c->dev16[i], c->dev[i], n)) && !(rc = sq_cuda_from_bf16(c->dev[i], c->dev16[i], n)))
        rc = sq_cuda_download(c->host[i], c->dev[i], n);
    return rc;
}

/* Every buffer on the device, inputs random on both sides; the step's state zeroed. */
static int setup(const gpu_op *op, gcase *c, sq_rng *r)
{
    float lo[MAXBUF], hi[MAXBUF];
    op->layout(c->d, c->n, lo, hi);
    int rc = 0;
    for (int i = 0; i < op->nbuf && !rc; i++) {
        c->nbuf = i + 1;
        if (lo[i] < hi[i]) {
            if (!(c->host[i] = sq_alloc_floats(c->n[i]))) return sq_fail(SQ_ENOMEM, "bench: out of host memory");
            sq_rng_fill_uniform(r, c->host[i], c->n[i], lo[i], hi[i]);
        }
        rc = sq_cuda_malloc(&c->dev[i], c->n[i]);
        if (!rc && c->host[i]) rc = sq_cuda_upload(c->dev[i], c->host[i], c->n[i]);
        if (!rc && c->bf16 && (op->bf16_mask >> i & 1)) rc = bf16_copy(c, i);
    }
    if (!rc) rc = sq_cuda_malloc(&c->work, c->bf16 ? op->work16(c->d, c->chunk) : op->work(c->d, c->chunk));
    size_t ns = op->state_floats(c->d);
    if (!rc) rc = sq_cuda_malloc(&c->state, ns);
    if (!rc) rc = sq_cuda_fill(c->state, 0, ns);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median ms of reps synchronized calls of fn (bwd: with the backward) after a
 * warm-up; `inner` calls per timed run (the time is per call); -1 on failure. */
static double time_gpu(const gpu_op *op, gcase *c, int what, int reps, int inner)
{
    double t[64];
    if (reps > 64) reps = 64;
    for (int i = -1; i < reps; i++) {
        double t0 = sq_now();
        for (int j = 0; j < inner; j++)
            if (what == 2 ? op->step(c) : c->bf16 ? op->run16(c, what) : op->run(c, what)) return -1;
        if (sq_cuda_sync()) return -1;
        if (i >= 0) t[i] = (sq_now() - t0) * 1e3 / inner;
    }
    qsort(t, reps, sizeof t[0], cmp_double);
    return t[reps / 2];
}

static double rel_err(const float *a, const float *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)a[i] - ref[i];
        num += e * e;
        den += (double)ref[i] * ref[i];
    }
    return isfinite(num) ? sqrt(num / (den > 0 ? den : 1)) : INFINITY;
}

/* ‖gpu − cpu‖/‖cpu‖ of the forward output on batch element 0 (the CPU
 * operator on that element's inputs, which lead each [B,...] array). */
static double check_vs_cpu(const gpu_op *op, gcase *c)
{
    sq_dims d1 = c->d;
    d1.B = 1;
    size_t ny = c->n[op->out] / c->d.B;
    float *cpu = sq_alloc_floats(ny), *gpu = sq_alloc_floats(ny);
    int rc = !cpu || !gpu ? sq_fail(SQ_ENOMEM, "bench: out of memory") : 0;
    if (!rc) rc = op->cpu(c, d1, cpu);
    if (!rc) rc = c->bf16 ? op->run16(c, 0) : op->run(c, 0);
    if (!rc && c->bf16) rc = sq_cuda_from_bf16(c->dev[op->out], c->dev16[op->out], ny);
    if (!rc) rc = sq_cuda_download(gpu, c->dev[op->out], ny);
    double e = rc ? INFINITY : rel_err(gpu, cpu, ny);
    sq_free(cpu);
    sq_free(gpu);
    return e;
}

/* The fewest bytes a forward must move: every input read once, the output written once. */
static double fwd_bytes(const gpu_op *op, const gcase *c)
{
    double b = 0;
    for (int i = 0; i < op->nin; i++) b += (c->bf16 && (op->bf16_mask >> i & 1) ? 2.0 : 4.0) * c->n[i];
    return b + (c->bf16 && (op->bf16_mask >> op->out & 1) ? 2.0 : 4.0) * c->n[op->out];
}

static const bench_op *cpu_op(const char *name)
{
    for (int i = 0; i < bench_nops; i++)
        if (!strcmp(bench_ops[i].name, name)) return &bench_ops[i];
    return NULL;
}

/* name is one of the comma-separated list (NULL: all). */
static int selected(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
        if (strcspn(p, ",") == n && !strncmp(p, name, n)) return 1;
        if (!p[strcspn(p, ",")]) break;
    }
    return !list;
}

typedef struct {
    double f, fb, step, err, tf, tb;
} gpu_row;

/* Times one operator; 0, or 1 when it failed or disagrees with the CPU. */
static int measure(const gpu_op *op, const bench_gpu_cfg *cfg, unsigned long long seed, gpu_row *row)
{
    gcase c;
    memset(&c, 0, sizeof c);
    c.d = cfg->d;
    c.chunk = cfg->chunk;
    c.bf16 = cfg->bf16;
    sq_rng r;
    sq_rng_seed(&r, seed);
    row->f = row->fb = row->step = -1;
    row->err = INFINITY;
    int ran = 0;
    if (!setup(op, &c, &r)) {
        row->f = time_gpu(op, &c, 0, cfg->reps, 1);
        row->fb = row->f < 0 ? -1 : time_gpu(op, &c, 1, cfg->reps, 1);
        /* the decode step has no bf16 entry point: timed in float32 mode only */
        row->step = row->fb < 0 || cfg->bf16 ? -1 : time_gpu(op, &c, 2, cfg->reps, 20);
        ran = row->fb >= 0 && (cfg->bf16 || row->step >= 0);
        row->err = ran ? check_vs_cpu(op, &c) : INFINITY;
    }
    /* bf16 mode: the CPU sees the same rounded inputs; the outputs' rounding and the internal bf16 products remain */
    int bad = !ran || !(row->err < (cfg->bf16 ? 2e-2 : 1e-3));
    if (bad) fprintf(stderr, "subq bench ops: %s: %s\n", op->name, !ran ? sq_last_error() : "GPU and CPU disagree");
    row->tf = row->fb < 0 ? 0 : cpu_op(op->name)->flops_fwd(c.d, cfg->chunk) / (row->f * 1e-3) / 1e12;
    row->tb = row->fb < 0 ? 0 : fwd_bytes(op, &c) / (row->f * 1e-3) / 1e12;
    gcase_free(&c);
    return bad;
}

int bench_ops_gpu(const bench_gpu_cfg *cfg)
{
    char device[256];
    double copy = 0, g32 = 0, g16 = 0;
    if (sq_cuda_device(device, sizeof device) || sq_cuda_copy_rate(&copy) || sq_cuda_gemm_rate(0, 8192, &g32) ||
        sq_cuda_gemm_rate(1, 8192, &g16)) {
        fprintf(stderr, "subq bench ops: %s\n", sq_last_error());
        return 2;
    }
    sq_dims d = cfg->d;
    printf("subq bench ops: B=%d T=%d H=%d K=%d V=%d chunk=%d | %s | %s\n", d.B, d.T, d.H, d.K, d.V, cfg->chunk,
           device, cfg->bf16 ? "bf16 inputs and outputs (cuda_bf16.h)" : "float32");
    printf("ceilings (same run): copy %.2f TB/s (device to device, read + write); cuBLAS GEMM 8192^3 float32 %.1f "
           "TFLOP/s, bf16 %.1f TFLOP/s\n\n",
           copy, g32, g16);
    printf("%-8s %10s %12s %10s %10s %9s %9s %12s %12s\n", "op", "fwd_ms", "fwdbwd_ms", "TFLOP/s", "TB/s",
           "% f32GEMM", "% bf16", "step_us", "rel_err_cpu");
    FILE *js = cfg->json ? fopen(cfg->json, "w") : NULL;
    if (cfg->json && !js) {
        fprintf(stderr, "subq bench ops: cannot write %s; check the folder exists and is writable\n", cfg->json);
        return 1;
    }
    if (js) fprintf(js, "[\n");
    int status = 0, first = 1;
    for (int i = 0; i < bench_nops; i++) {
        const char *name = bench_ops[i].name;
        if (!selected(cfg->ops, name)) continue;
        if (js) fprintf(js, "%s  {\"op\": \"%s\", \"B\": %d, \"T\": %d, \"H\": %d, \"K\": %d, \"V\": %d, \"chunk\": %d, "
                            "\"device\": \"%s\", \"threads\": 0, \"dtype\": \"%s\", ",
                        first ? "" : ",\n", name, d.B, d.T, d.H, d.K, d.V, cfg->chunk, device,
                        cfg->bf16 ? "bf16" : "f32");
        first = 0;
        const gpu_op *op = find_gpu_op(name);
        if (!op) {
            printf("%-8s   not on the GPU yet (docs/cuda.md)\n", name);
            if (js) fprintf(js, "\"error\": \"not on the GPU yet\"}");
            continue;
        }
        gpu_row w;
        status |= measure(op, cfg, cfg->seed + (unsigned long long)i, &w);
        char step[32] = "-"; /* bf16 mode times no step */
        if (w.step >= 0) snprintf(step, sizeof step, "%.1f", w.step * 1e3);
        printf("%-8s %10.3f %12.3f %10.2f %10.3f %8.1f%% %8.1f%% %12s %12.2e\n", name, w.f, w.fb, w.tf, w.tb,
               100 * w.tf / g32, 100 * w.tf / g16, step, w.err);
        fflush(stdout);
        if (js) {
            /* the step: null where it was not timed (bf16 mode) */
            char su[32] = "null", stps[32] = "null";
            if (w.step > 0) {
                snprintf(su, sizeof su, "%.3f", w.step * 1e3);
                snprintf(stps, sizeof stps, "%.1f", d.B / (w.step * 1e-3));
            }
            fprintf(js, "\"fwd_ms\": %.4f, \"fwdbwd_ms\": %.4f, \"step_us\": %s, \"step_tokens_per_s\": %s, "
                        "\"tflops_fwd\": %.4f, \"tbs_fwd\": %.4f, \"max_rel_err\": %.3e, \"copy_tbs\": %.3f, "
                        "\"gemm_f32_tflops\": %.2f, \"gemm_bf16_tflops\": %.2f}",
                    w.f, w.fb, su, stps, w.tf, w.tb, w.err, copy, g32, g16);
        }
    }
    printf("\nrel_err_cpu: ‖gpu − cpu‖/‖cpu‖ of the forward on batch element 0; TFLOP/s from the FLOP counts of\n"
           "`subq bench ops --help-flops`; TB/s from the fewest bytes a forward moves; step_us: one decode step\n"
           "(one token for each of the B sequences, state on the device; attention at a cache of T-1 positions).\n");
    if (js) {
        fprintf(js, "\n]\n");
        if (fclose(js)) {
            fprintf(stderr, "subq bench ops: writing %s failed\n", cfg->json);
            return 1;
        }
        printf("wrote %s\n", cfg->json);
    }
    return status;
}

int bench_gpu_gemm_rates(double *f32, double *bf16)
{
    int rc = sq_cuda_gemm_rate(0, 8192, f32);
    return rc ? rc : sq_cuda_gemm_rate(1, 8192, bf16);
}

double bench_gpu_op_fwdbwd_ms(const char *name, sq_dims d, int chunk, int reps)
{
    const gpu_op *op = find_gpu_op(name);
    if (!op) return -1;
    gcase c;
    memset(&c, 0, sizeof c);
    c.d = d;
    c.chunk = chunk;
    sq_rng r;
    sq_rng_seed(&r, 1);
    double ms = setup(op, &c, &r) ? -1 : time_gpu(op, &c, 1, reps, 1);
    gcase_free(&c);
    return ms;
}
