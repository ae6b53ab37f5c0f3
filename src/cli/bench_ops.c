/* Benchmark glue for each operator: inputs drawn at typical scales, the
 * forward and forward+backward calls, and the float64 reference check.
 * FLOP counts are those of the algorithms as implemented (docs/bench.md). */
#include "bench_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../tests/ref.h"
#include "../ops/attn.h"
#include "../ops/gdn.h"
#include "../ops/linattn.h"
#include "../ops/mlstm.h"
#include "../ops/slstm.h"
#include "../ops/ssd.h"

/* ---- shared helpers ------------------------------------------------------ */

static size_t sz(sq_dims d, int a) { return (size_t)d.B * d.T * d.H * a; } /* [B,T,H,a] */
static size_t szs(sq_dims d) { return (size_t)d.B * d.H * d.K * d.V; }      /* [B,H,K,V] */

/* Every buffer a case allocates is recorded here, so one function frees
 * any case; the struct of every case starts with it. */
typedef struct {
    float *list[32];
    int n, fail;
} buffers;

static float *keep(buffers *m, float *p)
{
    if (!p || m->n == 32) m->fail = 1;
    if (m->n < 32) m->list[m->n++] = p;
    return p;
}

/* n floats from N(mean, std) / U(lo, hi) / zeros, kept in m. */
static float *normal(buffers *m, sq_rng *r, size_t n, float mean, float std)
{
    float *x = keep(m, sq_alloc_floats(n));
    if (x) sq_rng_fill_normal(r, x, n, mean, std);
    return x;
}

static float *uniform(buffers *m, sq_rng *r, size_t n, float lo, float hi)
{
    float *x = keep(m, sq_alloc_floats(n));
    if (x) sq_rng_fill_uniform(r, x, n, lo, hi);
    return x;
}

static float *zeros(buffers *m, size_t n)
{
    float *x = keep(m, sq_alloc_floats(n));
    if (x) memset(x, 0, n * sizeof *x);
    return x;
}

static void case_destroy(void *p)
{
    buffers *m = p; /* the first member of every case */
    if (!m) return;
    for (int i = 0; i < m->n; i++) sq_free(m->list[i]);
    free(m);
}

/* A case whose allocations all succeeded, or NULL (freed). */
static void *case_ready(void *p)
{
    if (((buffers *)p)->fail) {
        case_destroy(p);
        return NULL;
    }
    return p;
}

static double *to_double(const float *x, size_t n)
{
    double *y = sq_alloc_doubles(n);
    if (y)
        for (size_t i = 0; i < n; i++) y[i] = x[i];
    return y;
}

static double max2(double a, double b) { return a > b || isnan(a) ? a : b; }

/* Frees a NULL-terminated list of buffers. */
static void free_all(void **p, int n)
{
    for (int i = 0; i < n; i++) sq_free(p[i]);
}

/* Chunkwise scalar-gate ops (mLSTM, SSD, linear attention) per token:
 * intra-chunk Q Kᵀ and P V over full L×L tiles (2L(K+V)), the inter-chunk
 * read-out Q S and the state update Kᵀ V (4KV). */
static double flops_scalar_chunk(sq_dims d, int L)
{
    double Lc = L < d.T ? L : d.T;
    return (double)d.B * d.T * d.H * (2.0 * Lc * (d.K + d.V) + 4.0 * d.K * d.V);
}

/* ---- mLSTM ------------------------------------------------------------- */

typedef struct {
    buffers mem;
    sq_dims d;
    sq_mlstm_opts o;
    float *q, *k, *v, *ig, *fg, *out, *S, *n, *m, *dout, *dq, *dk, *dv, *dig, *dfg, *work;
} mlstm_case;

static void *mlstm_create(sq_dims d, int chunk, sq_rng *r)
{
    mlstm_case *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->d = d;
    c->o = sq_mlstm_defaults();
    c->o.chunk = chunk;
    c->q = normal(&c->mem, r, sz(d, d.K), 0, 1);
    c->k = normal(&c->mem, r, sz(d, d.K), 0, 1);
    c->v = normal(&c->mem, r, sz(d, d.V), 0, 1);
    c->ig = normal(&c->mem, r, sz(d, 1), 0, 1);
    c->fg = normal(&c->mem, r, sz(d, 1), 3, 1); /* forget-gate bias ~3, as xLSTM initialises it */
    c->out = zeros(&c->mem, sz(d, d.V));
    c->S = zeros(&c->mem, szs(d));
    c->n = zeros(&c->mem, (size_t)d.B * d.H * d.K);
    c->m = zeros(&c->mem, (size_t)d.B * d.H);
    c->dout = normal(&c->mem, r, sz(d, d.V), 0, 1);
    c->dq = zeros(&c->mem, sz(d, d.K));
    c->dk = zeros(&c->mem, sz(d, d.K));
    c->dv = zeros(&c->mem, sz(d, d.V));
    c->dig = zeros(&c->mem, sz(d, 1));
    c->dfg = zeros(&c->mem, sz(d, 1));
    c->work = zeros(&c->mem, sq_mlstm_work_floats(d, &c->o));
    return case_ready(c);
}

static int mlstm_fwd(void *p)
{
    mlstm_case *c = p;
    sq_mlstm_in in = {c->q, c->k, c->v, c->ig, c->fg};
    sq_mlstm_state s1 = {c->S, c->n, c->m};
    return sq_mlstm_fwd(c->d, &c->o, &in, NULL, c->out, &s1, c->work);
}

static int mlstm_fwdbwd(void *p)
{
    mlstm_case *c = p;
    int rc = mlstm_fwd(c);
    if (rc) return rc;
    sq_mlstm_in in = {c->q, c->k, c->v, c->ig, c->fg};
    sq_mlstm_grad g = {c->dq, c->dk, c->dv, c->dig, c->dfg};
    return sq_mlstm_bwd(c->d, &c->o, &in, NULL, c->dout, NULL, &g, NULL, c->work);
}

static double mlstm_check(void *p)
{
    mlstm_case *c = p;
    sq_dims d1 = c->d;
    d1.B = 1;
    double *q = to_double(c->q, sz(d1, d1.K)), *k = to_double(c->k, sz(d1, d1.K)),
           *v = to_double(c->v, sz(d1, d1.V)), *ig = to_double(c->ig, sz(d1, 1)),
           *fg = to_double(c->fg, sz(d1, 1)), *out = sq_alloc_doubles(sz(d1, d1.V)),
           *S = sq_alloc_doubles(szs(d1)), *n = sq_alloc_doubles((size_t)d1.H * d1.K),
           *m = sq_alloc_doubles(d1.H);
    double err = INFINITY;
    if (q && k && v && ig && fg && out && S && n && m) {
        ref_mlstm_in in = {q, k, v, ig, fg};
        ref_mlstm_state s1 = {S, n, m};
        ref_mlstm_fwd(d1, c->o.exp_forget, &in, NULL, out, &s1);
        /* S̄ is compared as is: both sides start from m = 0 and follow the
         * same stabilizer recursion, so their m and S̄ agree. */
        err = max2(sq_rel_err(c->out, out, sz(d1, d1.V)), sq_rel_err(c->S, S, szs(d1)));
    }
    void *b[] = {q, k, v, ig, fg, out, S, n, m};
    free_all(b, 9);
    return err;
}

/* ---- linear attention ---------------------------------------------------- */

typedef struct {
    buffers mem;
    sq_dims d;
    sq_linattn_opts o;
    float *q, *k, *v, *out, *S, *dout, *dq, *dk, *dv, *work;
} linattn_case;

static void *linattn_create(sq_dims d, int chunk, sq_rng *r)
{
    linattn_case *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->d = d;
    c->o = sq_linattn_defaults();
    c->o.chunk = chunk;
    float s = 1.0f / sqrtf((float)d.K);
    c->q = normal(&c->mem, r, sz(d, d.K), 0, s);
    c->k = normal(&c->mem, r, sz(d, d.K), 0, s);
    c->v = normal(&c->mem, r, sz(d, d.V), 0, 1);
    c->out = zeros(&c->mem, sz(d, d.V));
    c->S = zeros(&c->mem, szs(d));
    c->dout = normal(&c->mem, r, sz(d, d.V), 0, 1);
    c->dq = zeros(&c->mem, sz(d, d.K));
    c->dk = zeros(&c->mem, sz(d, d.K));
    c->dv = zeros(&c->mem, sz(d, d.V));
    c->work = zeros(&c->mem, sq_linattn_work_floats(d, &c->o));
    return case_ready(c);
}

static int linattn_fwd(void *p)
{
    linattn_case *c = p;
    return sq_linattn_fwd(c->d, &c->o, c->q, c->k, c->v, NULL, c->out, c->S, c->work);
}

static int linattn_fwdbwd(void *p)
{
    linattn_case *c = p;
    int rc = linattn_fwd(c);
    if (rc) return rc;
    return sq_linattn_bwd(c->d, &c->o, c->q, c->k, c->v, NULL, c->dout, NULL, c->dq, c->dk, c->dv, NULL,
                          c->work);
}

static double linattn_check(void *p)
{
    linattn_case *c = p;
    sq_dims d1 = c->d;
    d1.B = 1;
    double *q = to_double(c->q, sz(d1, d1.K)), *k = to_double(c->k, sz(d1, d1.K)),
           *v = to_double(c->v, sz(d1, d1.V)), *out = sq_alloc_doubles(sz(d1, d1.V)),
           *S = sq_alloc_doubles(szs(d1));
    double err = INFINITY;
    if (q && k && v && out && S) {
        ref_linattn_fwd(d1, q, k, v, NULL, out, S);
        err = max2(sq_rel_err(c->out, out, sz(d1, d1.V)), sq_rel_err(c->S, S, szs(d1)));
    }
    void *b[] = {q, k, v, out, S};
    free_all(b, 5);
    return err;
}

/* ---- Mamba-2 SSD ------------------------------------------------------- */

typedef struct {
    buffers mem;
    sq_dims d;
    sq_ssd_opts o;
    float *x, *Bm, *Cm, *dt, *dt_bias, *A, *D, *y, *S, *dy;
    float *dx, *dBm, *dCm, *ddt, *ddt_bias, *dA, *dD, *work;
} ssd_case;

static void *ssd_create(sq_dims d, int chunk, sq_rng *r)
{
    ssd_case *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->d = d;
    c->o = sq_ssd_defaults();
    c->o.chunk = chunk;
    size_t bg = (size_t)d.B * d.T * c->o.ngroups * d.K;
    c->x = normal(&c->mem, r, sz(d, d.V), 0, 1);
    c->Bm = normal(&c->mem, r, bg, 0, 1);
    c->Cm = normal(&c->mem, r, bg, 0, 1);
    c->dt = normal(&c->mem, r, sz(d, 1), 0, 1);
    c->dt_bias = uniform(&c->mem, r, d.H, -4.6f, -2.3f); /* softplus⁻¹ of Δ ∈ [0.01, 0.1], mamba's init */
    c->A = uniform(&c->mem, r, d.H, -16, -1);             /* A = −exp(A_log), A_log = log U(1,16) */
    c->D = normal(&c->mem, r, d.H, 1, 0.1f);
    c->y = zeros(&c->mem, sz(d, d.V));
    c->S = zeros(&c->mem, szs(d));
    c->dy = normal(&c->mem, r, sz(d, d.V), 0, 1);
    c->dx = zeros(&c->mem, sz(d, d.V));
    c->dBm = zeros(&c->mem, bg);
    c->dCm = zeros(&c->mem, bg);
    c->ddt = zeros(&c->mem, sz(d, 1));
    c->ddt_bias = zeros(&c->mem, d.H);
    c->dA = zeros(&c->mem, d.H);
    c->dD = zeros(&c->mem, d.H);
    c->work = zeros(&c->mem, sq_ssd_work_floats(d, &c->o));
    return case_ready(c);
}

static int ssd_fwd(void *p)
{
    ssd_case *c = p;
    sq_ssd_in in = {c->x, c->Bm, c->Cm, c->dt, c->dt_bias, c->A, c->D};
    return sq_ssd_fwd(c->d, &c->o, &in, NULL, c->y, c->S, c->work);
}

static int ssd_fwdbwd(void *p)
{
    ssd_case *c = p;
    int rc = ssd_fwd(c);
    if (rc) return rc;
    sq_ssd_in in = {c->x, c->Bm, c->Cm, c->dt, c->dt_bias, c->A, c->D};
    sq_ssd_grad g = {c->dx, c->dBm, c->dCm, c->ddt, c->ddt_bias, c->dA, c->dD};
    return sq_ssd_bwd(c->d, &c->o, &in, NULL, c->dy, NULL, &g, NULL, c->work);
}

static double ssd_check(void *p)
{
    ssd_case *c = p;
    sq_dims d1 = c->d;
    d1.B = 1;
    size_t bg = (size_t)d1.T * c->o.ngroups * d1.K;
    double *x = to_double(c->x, sz(d1, d1.V)), *Bm = to_double(c->Bm, bg), *Cm = to_double(c->Cm, bg),
           *dt = to_double(c->dt, sz(d1, 1)), *bias = to_double(c->dt_bias, d1.H),
           *A = to_double(c->A, d1.H), *D = to_double(c->D, d1.H), *y = sq_alloc_doubles(sz(d1, d1.V)),
           *S = sq_alloc_doubles(szs(d1));
    double err = INFINITY;
    if (x && Bm && Cm && dt && bias && A && D && y && S) {
        ref_ssd_in in = {x, Bm, Cm, dt, bias, A, D};
        ref_ssd_fwd(d1, c->o.ngroups, &in, NULL, y, S);
        err = max2(sq_rel_err(c->y, y, sz(d1, d1.V)), sq_rel_err(c->S, S, szs(d1)));
    }
    void *b[] = {x, Bm, Cm, dt, bias, A, D, y, S};
    free_all(b, 9);
    return err;
}

/* ---- Gated DeltaNet ------------------------------------------------------ */

typedef struct {
    buffers mem;
    sq_dims d;
    sq_gdn_opts o;
    float *q, *k, *v, *alpha, *beta, *A_log, *dt_bias, *out, *S, *dout;
    float *dq, *dk, *dv, *dalpha, *dbeta, *dA_log, *ddt_bias, *work;
} gdn_case;

static void *gdn_create(sq_dims d, int chunk, sq_rng *r)
{
    gdn_case *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->d = d;
    c->o = sq_gdn_defaults();
    c->o.chunk = chunk;
    c->q = normal(&c->mem, r, sz(d, d.K), 0, 1);
    c->k = normal(&c->mem, r, sz(d, d.K), 0, 1);
    c->v = normal(&c->mem, r, sz(d, d.V), 0, 1);
    c->alpha = normal(&c->mem, r, sz(d, 1), 0, 1);
    c->beta = normal(&c->mem, r, sz(d, 1), 0, 1);
    c->A_log = uniform(&c->mem, r, d.H, 0, 2.77f);        /* log U(1,16), as GDN initialises it */
    c->dt_bias = uniform(&c->mem, r, d.H, -4.6f, -2.3f);
    c->out = zeros(&c->mem, sz(d, d.V));
    c->S = zeros(&c->mem, szs(d));
    c->dout = normal(&c->mem, r, sz(d, d.V), 0, 1);
    c->dq = zeros(&c->mem, sz(d, d.K));
    c->dk = zeros(&c->mem, sz(d, d.K));
    c->dv = zeros(&c->mem, sz(d, d.V));
    c->dalpha = zeros(&c->mem, sz(d, 1));
    c->dbeta = zeros(&c->mem, sz(d, 1));
    c->dA_log = zeros(&c->mem, d.H);
    c->ddt_bias = zeros(&c->mem, d.H);
    c->work = zeros(&c->mem, sq_gdn_work_floats(d, &c->o));
    return case_ready(c);
}

static int gdn_fwd(void *p)
{
    gdn_case *c = p;
    sq_gdn_in in = {c->q, c->k, c->v, c->alpha, c->beta, c->A_log, c->dt_bias};
    return sq_gdn_fwd(c->d, &c->o, &in, NULL, c->out, c->S, c->work);
}

static int gdn_fwdbwd(void *p)
{
    gdn_case *c = p;
    int rc = gdn_fwd(c);
    if (rc) return rc;
    sq_gdn_in in = {c->q, c->k, c->v, c->alpha, c->beta, c->A_log, c->dt_bias};
    sq_gdn_grad g = {c->dq, c->dk, c->dv, c->dalpha, c->dbeta, c->dA_log, c->ddt_bias};
    return sq_gdn_bwd(c->d, &c->o, &in, NULL, c->dout, NULL, &g, NULL, c->work);
}

static double gdn_check(void *p)
{
    gdn_case *c = p;
    sq_dims d1 = c->d;
    d1.B = 1;
    double *q = to_double(c->q, sz(d1, d1.K)), *k = to_double(c->k, sz(d1, d1.K)),
           *v = to_double(c->v, sz(d1, d1.V)), *al = to_double(c->alpha, sz(d1, 1)),
           *be = to_double(c->beta, sz(d1, 1)), *Al = to_double(c->A_log, d1.H),
           *bias = to_double(c->dt_bias, d1.H), *out = sq_alloc_doubles(sz(d1, d1.V)),
           *S = sq_alloc_doubles(szs(d1));
    double err = INFINITY;
    if (q && k && v && al && be && Al && bias && out && S) {
        ref_gdn_in in = {q, k, v, al, be, Al, bias};
        ref_gdn_fwd(d1, c->o.neg_eigval, c->o.qk_l2norm, &in, NULL, out, S);
        err = max2(sq_rel_err(c->out, out, sz(d1, d1.V)), sq_rel_err(c->S, S, szs(d1)));
    }
    void *b[] = {q, k, v, al, be, Al, bias, out, S};
    free_all(b, 9);
    return err;
}

/* GDN per token: the scalar-chunk work plus K Kᵀ (2LK), W = T·βK and
 * U = T·βV (2L(K+V)), W S (2KV); the triangular solve (L³/3 per chunk) is
 * counted as L²/3 per token. */
static double flops_gdn(sq_dims d, int L)
{
    double Lc = L < d.T ? L : d.T;
    return (double)d.B * d.T * d.H *
           (2.0 * Lc * (d.K + d.V) + 2.0 * Lc * d.K + 2.0 * Lc * (d.K + d.V) + 6.0 * d.K * d.V + Lc * Lc / 3.0);
}

/* ---- sLSTM ----------------------------------------------------------- */

typedef struct {
    buffers mem;
    sq_dims d;
    sq_slstm_opts o;
    float *gx, *R, *bias, *out, *c, *n, *m, *h, *dout, *dgx, *dR, *dbias, *work;
} slstm_case;

static void *slstm_create(sq_dims d, int chunk, sq_rng *r)
{
    slstm_case *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    d.V = d.K; /* sLSTM cells: one width per head */
    c->d = d;
    c->o = sq_slstm_defaults();
    size_t st = (size_t)d.B * d.H * d.K, nr = (size_t)d.H * 4 * d.K * d.K;
    c->gx = normal(&c->mem, r, sz(d, 4 * d.K), 0, 1);
    c->R = normal(&c->mem, r, nr, 0, 1.0f / sqrtf((float)d.K));
    c->bias = normal(&c->mem, r, (size_t)d.H * 4 * d.K, 0, 0.1f);
    c->out = zeros(&c->mem, sz(d, d.K));
    c->c = zeros(&c->mem, st);
    c->n = zeros(&c->mem, st);
    c->m = zeros(&c->mem, st);
    c->h = zeros(&c->mem, st);
    c->dout = normal(&c->mem, r, sz(d, d.K), 0, 1);
    c->dgx = zeros(&c->mem, sz(d, 4 * d.K));
    c->dR = zeros(&c->mem, nr);
    c->dbias = zeros(&c->mem, (size_t)d.H * 4 * d.K);
    c->work = zeros(&c->mem, sq_slstm_work_floats(d, &c->o));
    return case_ready(c);
}

static int slstm_fwd(void *p)
{
    slstm_case *c = p;
    sq_slstm_in in = {c->gx, c->R, c->bias};
    sq_slstm_state s1 = {c->c, c->n, c->m, c->h};
    return sq_slstm_fwd(c->d, &c->o, &in, NULL, c->out, &s1, c->work);
}

static int slstm_fwdbwd(void *p)
{
    slstm_case *c = p;
    int rc = slstm_fwd(c);
    if (rc) return rc;
    sq_slstm_in in = {c->gx, c->R, c->bias};
    sq_slstm_grad g = {c->dgx, c->dR, c->dbias};
    return sq_slstm_bwd(c->d, &c->o, &in, NULL, c->dout, NULL, &g, NULL, c->work);
}

static double slstm_check(void *p)
{
    slstm_case *c = p;
    sq_dims d1 = c->d;
    d1.B = 1;
    size_t st = (size_t)d1.H * d1.K;
    double *gx = to_double(c->gx, sz(d1, 4 * d1.K)), *R = to_double(c->R, (size_t)d1.H * 4 * d1.K * d1.K),
           *bias = to_double(c->bias, (size_t)d1.H * 4 * d1.K), *out = sq_alloc_doubles(sz(d1, d1.K)),
           *cc = sq_alloc_doubles(st), *n = sq_alloc_doubles(st), *m = sq_alloc_doubles(st),
           *h = sq_alloc_doubles(st);
    double err = INFINITY;
    if (gx && R && bias && out && cc && n && m && h) {
        ref_slstm_in in = {gx, R, bias};
        ref_slstm_state s1 = {cc, n, m, h};
        ref_slstm_fwd(d1, c->o.exp_forget, &in, NULL, out, &s1);
        err = max2(sq_rel_err(c->out, out, sz(d1, d1.K)), sq_rel_err(c->h, h, st));
    }
    void *b[] = {gx, R, bias, out, cc, n, m, h};
    free_all(b, 8);
    return err;
}

/* sLSTM per token and head: R h for four gates (8K²) and ~30 flops of
 * elementwise gate math per cell. */
static double flops_slstm(sq_dims d, int L)
{
    return (double)d.B * d.T * d.H * (8.0 * d.K * d.K + 30.0 * d.K);
}

/* ---- causal softmax attention ------------------------------------------- */

typedef struct {
    buffers mem;
    sq_dims d;
    sq_attn_opts o;
    float *q, *k, *v, *out, *dout, *dq, *dk, *dv, *work;
} attn_case;

static void *attn_create(sq_dims d, int chunk, sq_rng *r)
{
    attn_case *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->d = d;
    c->o = sq_attn_defaults();
    c->o.chunk = chunk;
    c->q = normal(&c->mem, r, sz(d, d.K), 0, 1);
    c->k = normal(&c->mem, r, sz(d, d.K), 0, 1);
    c->v = normal(&c->mem, r, sz(d, d.V), 0, 1);
    c->out = zeros(&c->mem, sz(d, d.V));
    c->dout = normal(&c->mem, r, sz(d, d.V), 0, 1);
    c->dq = zeros(&c->mem, sz(d, d.K));
    c->dk = zeros(&c->mem, sz(d, d.K));
    c->dv = zeros(&c->mem, sz(d, d.V));
    c->work = zeros(&c->mem, sq_attn_work_floats(d, &c->o));
    return case_ready(c);
}

static int attn_fwd(void *p)
{
    attn_case *c = p;
    return sq_attn_fwd(c->d, &c->o, c->q, c->k, c->v, NULL, c->out, NULL, c->work);
}

static int attn_fwdbwd(void *p)
{
    attn_case *c = p;
    int rc = attn_fwd(c);
    if (rc) return rc;
    return sq_attn_bwd(c->d, &c->o, c->q, c->k, c->v, NULL, c->dout, c->dq, c->dk, c->dv, NULL, c->work);
}

static double attn_check(void *p)
{
    attn_case *c = p;
    sq_dims d1 = c->d;
    d1.B = 1;
    double *q = to_double(c->q, sz(d1, d1.K)), *k = to_double(c->k, sz(d1, d1.K)),
           *v = to_double(c->v, sz(d1, d1.V)), *out = sq_alloc_doubles(sz(d1, d1.V));
    double err = INFINITY;
    if (q && k && v && out) {
        ref_attn_fwd(d1, q, k, v, 0, NULL, NULL, out);
        err = sq_rel_err(c->out, out, sz(d1, d1.V));
    }
    void *b[] = {q, k, v, out};
    free_all(b, 4);
    return err;
}

/* Causal attention: Σ_t (t+1)(2K + 2V) for the scores and the weighted sum. */
static double flops_attn(sq_dims d, int L)
{
    return (double)d.B * d.H * (double)d.T * (d.T + 1) * (d.K + d.V);
}

/* ---- the table --------------------------------------------------------- */

const bench_op bench_ops[] = {
    {"mlstm", "B·T·H·(2L(K+V) + 4KV): chunk tiles QKᵀ, PV over full L×L, plus Q·S and the state update",
     flops_scalar_chunk, mlstm_create, mlstm_fwd, mlstm_fwdbwd, mlstm_check, case_destroy},
    {"slstm", "B·T·H·(8K² + 30K): recurrent R·h for four gates plus the gate math",
     flops_slstm, slstm_create, slstm_fwd, slstm_fwdbwd, slstm_check, case_destroy},
    {"ssd", "B·T·H·(2L(K+V) + 4KV), as mlstm", flops_scalar_chunk, ssd_create, ssd_fwd, ssd_fwdbwd, ssd_check,
     case_destroy},
    {"gdn", "B·T·H·(4L(K+V) + 2LK + 6KV + L²/3): scalar-chunk work plus KKᵀ, W, U, W·S, the triangular solve",
     flops_gdn, gdn_create, gdn_fwd, gdn_fwdbwd, gdn_check, case_destroy},
    {"attn", "B·H·T(T+1)(K+V): causal scores and weighted sum", flops_attn, attn_create, attn_fwd, attn_fwdbwd,
     attn_check, case_destroy},
    {"linattn", "B·T·H·(2L(K+V) + 4KV), as mlstm", flops_scalar_chunk, linattn_create, linattn_fwd,
     linattn_fwdbwd, linattn_check, case_destroy},
};
const int bench_nops = (int)(sizeof bench_ops / sizeof bench_ops[0]);
