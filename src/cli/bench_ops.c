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

/* Allocates n floats drawn from N(mean, std); *fail is set on failure. */
static float *normal(sq_rng *r, size_t n, float mean, float std, int *fail)
{
    float *x = sq_alloc_floats(n);
    if (!x) *fail = 1;
    else sq_rng_fill_normal(r, x, n, mean, std);
    return x;
}

static float *uniform(sq_rng *r, size_t n, float lo, float hi, int *fail)
{
    float *x = sq_alloc_floats(n);
    if (!x) *fail = 1;
    else sq_rng_fill_uniform(r, x, n, lo, hi);
    return x;
}

static float *zeros(size_t n, int *fail)
{
    float *x = sq_alloc_floats(n);
    if (!x) *fail = 1;
    else memset(x, 0, n * sizeof *x);
    return x;
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
    sq_dims d;
    sq_mlstm_opts o;
    float *q, *k, *v, *ig, *fg, *out, *S, *n, *m, *dout, *dq, *dk, *dv, *dig, *dfg, *work;
} mlstm_case;

static void mlstm_destroy(void *p)
{
    mlstm_case *c = p;
    if (!c) return;
    void *b[] = {c->q, c->k, c->v, c->ig, c->fg, c->out, c->S, c->n, c->m, c->dout,
                 c->dq, c->dk, c->dv, c->dig, c->dfg, c->work};
    free_all(b, (int)(sizeof b / sizeof *b));
    free(c);
}

static void *mlstm_create(sq_dims d, int chunk, sq_rng *r)
{
    mlstm_case *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    int f = 0;
    c->d = d;
    c->o = sq_mlstm_defaults();
    c->o.chunk = chunk;
    c->q = normal(r, sz(d, d.K), 0, 1, &f);
    c->k = normal(r, sz(d, d.K), 0, 1, &f);
    c->v = normal(r, sz(d, d.V), 0, 1, &f);
    c->ig = normal(r, sz(d, 1), 0, 1, &f);
    c->fg = normal(r, sz(d, 1), 3, 1, &f); /* forget-gate bias ~3, as xLSTM initialises it */
    c->out = zeros(sz(d, d.V), &f);
    c->S = zeros(szs(d), &f);
    c->n = zeros((size_t)d.B * d.H * d.K, &f);
    c->m = zeros((size_t)d.B * d.H, &f);
    c->dout = normal(r, sz(d, d.V), 0, 1, &f);
    c->dq = zeros(sz(d, d.K), &f);
    c->dk = zeros(sz(d, d.K), &f);
    c->dv = zeros(sz(d, d.V), &f);
    c->dig = zeros(sz(d, 1), &f);
    c->dfg = zeros(sz(d, 1), &f);
    c->work = zeros(sq_mlstm_work_floats(d, &c->o), &f);
    if (f) {
        mlstm_destroy(c);
        return NULL;
    }
    return c;
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
    sq_dims d;
    sq_linattn_opts o;
    float *q, *k, *v, *out, *S, *dout, *dq, *dk, *dv, *work;
} linattn_case;

static void linattn_destroy(void *p)
{
    linattn_case *c = p;
    if (!c) return;
    void *b[] = {c->q, c->k, c->v, c->out, c->S, c->dout, c->dq, c->dk, c->dv, c->work};
    free_all(b, (int)(sizeof b / sizeof *b));
    free(c);
}

static void *linattn_create(sq_dims d, int chunk, sq_rng *r)
{
    linattn_case *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    int f = 0;
    c->d = d;
    c->o = sq_linattn_defaults();
    c->o.chunk = chunk;
    float s = 1.0f / sqrtf((float)d.K);
    c->q = normal(r, sz(d, d.K), 0, s, &f);
    c->k = normal(r, sz(d, d.K), 0, s, &f);
    c->v = normal(r, sz(d, d.V), 0, 1, &f);
    c->out = zeros(sz(d, d.V), &f);
    c->S = zeros(szs(d), &f);
    c->dout = normal(r, sz(d, d.V), 0, 1, &f);
    c->dq = zeros(sz(d, d.K), &f);
    c->dk = zeros(sz(d, d.K), &f);
    c->dv = zeros(sz(d, d.V), &f);
    c->work = zeros(sq_linattn_work_floats(d, &c->o), &f);
    if (f) {
        linattn_destroy(c);
        return NULL;
    }
    return c;
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
    sq_dims d;
    sq_ssd_opts o;
    float *x, *Bm, *Cm, *dt, *dt_bias, *A, *D, *y, *S, *dy;
    float *dx, *dBm, *dCm, *ddt, *ddt_bias, *dA, *dD, *work;
} ssd_case;

static void ssd_destroy(void *p)
{
    ssd_case *c = p;
    if (!c) return;
    void *b[] = {c->x, c->Bm, c->Cm, c->dt, c->dt_bias, c->A, c->D, c->y, c->S, c->dy,
                 c->dx, c->dBm, c->dCm, c->ddt, c->ddt_bias, c->dA, c->dD, c->work};
    free_all(b, (int)(sizeof b / sizeof *b));
    free(c);
}

static void *ssd_create(sq_dims d, int chunk, sq_rng *r)
{
    ssd_case *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    int f = 0;
    c->d = d;
    c->o = sq_ssd_defaults();
    c->o.chunk = chunk;
    size_t bg = (size_t)d.B * d.T * c->o.ngroups * d.K;
    c->x = normal(r, sz(d, d.V), 0, 1, &f);
    c->Bm = normal(r, bg, 0, 1, &f);
    c->Cm = normal(r, bg, 0, 1, &f);
    c->dt = normal(r, sz(d, 1), 0, 1, &f);
    c->dt_bias = uniform(r, d.H, -4.6f, -2.3f, &f); /* softplus⁻¹ of Δ ∈ [0.01, 0.1], mamba's init */
    c->A = uniform(r, d.H, -16, -1, &f);             /* A = −exp(A_log), A_log = log U(1,16) */
    c->D = normal(r, d.H, 1, 0.1f, &f);
    c->y = zeros(sz(d, d.V), &f);
    c->S = zeros(szs(d), &f);
    c->dy = normal(r, sz(d, d.V), 0, 1, &f);
    c->dx = zeros(sz(d, d.V), &f);
    c->dBm = zeros(bg, &f);
    c->dCm = zeros(bg, &f);
    c->ddt = zeros(sz(d, 1), &f);
    c->ddt_bias = zeros(d.H, &f);
    c->dA = zeros(d.H, &f);
    c->dD = zeros(d.H, &f);
    c->work = zeros(sq_ssd_work_floats(d, &c->o), &f);
    if (f) {
        ssd_destroy(c);
        return NULL;
    }
    return c;
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
    sq_dims d;
    sq_gdn_opts o;
    float *q, *k, *v, *alpha, *beta, *A_log, *dt_bias, *out, *S, *dout;
    float *dq, *dk, *dv, *dalpha, *dbeta, *dA_log, *ddt_bias, *work;
} gdn_case;

static void gdn_destroy(void *p)
{
    gdn_case *c = p;
    if (!c) return;
    void *b[] = {c->q, c->k, c->v, c->alpha, c->beta, c->A_log, c->dt_bias, c->out, c->S, c->dout,
                 c->dq, c->dk, c->dv, c->dalpha, c->dbeta, c->dA_log, c->ddt_bias, c->work};
    free_all(b, (int)(sizeof b / sizeof *b));
    free(c);
}

static void *gdn_create(sq_dims d, int chunk, sq_rng *r)
{
    gdn_case *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    int f = 0;
    c->d = d;
    c->o = sq_gdn_defaults();
    c->o.chunk = chunk;
    c->q = normal(r, sz(d, d.K), 0, 1, &f);
    c->k = normal(r, sz(d, d.K), 0, 1, &f);
    c->v = normal(r, sz(d, d.V), 0, 1, &f);
    c->alpha = normal(r, sz(d, 1), 0, 1, &f);
    c->beta = normal(r, sz(d, 1), 0, 1, &f);
    c->A_log = uniform(r, d.H, 0, 2.77f, &f);        /* log U(1,16), as GDN initialises it */
    c->dt_bias = uniform(r, d.H, -4.6f, -2.3f, &f);
    c->out = zeros(sz(d, d.V), &f);
    c->S = zeros(szs(d), &f);
    c->dout = normal(r, sz(d, d.V), 0, 1, &f);
    c->dq = zeros(sz(d, d.K), &f);
    c->dk = zeros(sz(d, d.K), &f);
    c->dv = zeros(sz(d, d.V), &f);
    c->dalpha = zeros(sz(d, 1), &f);
    c->dbeta = zeros(sz(d, 1), &f);
    c->dA_log = zeros(d.H, &f);
    c->ddt_bias = zeros(d.H, &f);
    c->work = zeros(sq_gdn_work_floats(d, &c->o), &f);
    if (f) {
        gdn_destroy(c);
        return NULL;
    }
    return c;
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
    sq_dims d;
    sq_slstm_opts o;
    float *gx, *R, *bias, *out, *c, *n, *m, *h, *dout, *dgx, *dR, *dbias, *work;
} slstm_case;

static void slstm_destroy(void *p)
{
    slstm_case *c = p;
    if (!c) return;
    void *b[] = {c->gx, c->R, c->bias, c->out, c->c, c->n, c->m, c->h, c->dout, c->dgx, c->dR, c->dbias, c->work};
    free_all(b, (int)(sizeof b / sizeof *b));
    free(c);
}

static void *slstm_create(sq_dims d, int chunk, sq_rng *r)
{
    slstm_case *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    int f = 0;
    d.V = d.K; /* sLSTM cells: one width per head */
    c->d = d;
    c->o = sq_slstm_defaults();
    size_t st = (size_t)d.B * d.H * d.K, nr = (size_t)d.H * 4 * d.K * d.K;
    c->gx = normal(r, sz(d, 4 * d.K), 0, 1, &f);
    c->R = normal(r, nr, 0, 1.0f / sqrtf((float)d.K), &f);
    c->bias = normal(r, (size_t)d.H * 4 * d.K, 0, 0.1f, &f);
    c->out = zeros(sz(d, d.K), &f);
    c->c = zeros(st, &f);
    c->n = zeros(st, &f);
    c->m = zeros(st, &f);
    c->h = zeros(st, &f);
    c->dout = normal(r, sz(d, d.K), 0, 1, &f);
    c->dgx = zeros(sz(d, 4 * d.K), &f);
    c->dR = zeros(nr, &f);
    c->dbias = zeros((size_t)d.H * 4 * d.K, &f);
    c->work = zeros(sq_slstm_work_floats(d, &c->o), &f);
    if (f) {
        slstm_destroy(c);
        return NULL;
    }
    return c;
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
    sq_dims d;
    sq_attn_opts o;
    float *q, *k, *v, *out, *dout, *dq, *dk, *dv, *work;
} attn_case;

static void attn_destroy(void *p)
{
    attn_case *c = p;
    if (!c) return;
    void *b[] = {c->q, c->k, c->v, c->out, c->dout, c->dq, c->dk, c->dv, c->work};
    free_all(b, (int)(sizeof b / sizeof *b));
    free(c);
}

static void *attn_create(sq_dims d, int chunk, sq_rng *r)
{
    attn_case *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    int f = 0;
    c->d = d;
    c->o = sq_attn_defaults();
    c->o.chunk = chunk;
    c->q = normal(r, sz(d, d.K), 0, 1, &f);
    c->k = normal(r, sz(d, d.K), 0, 1, &f);
    c->v = normal(r, sz(d, d.V), 0, 1, &f);
    c->out = zeros(sz(d, d.V), &f);
    c->dout = normal(r, sz(d, d.V), 0, 1, &f);
    c->dq = zeros(sz(d, d.K), &f);
    c->dk = zeros(sz(d, d.K), &f);
    c->dv = zeros(sz(d, d.V), &f);
    c->work = zeros(sq_attn_work_floats(d, &c->o), &f);
    if (f) {
        attn_destroy(c);
        return NULL;
    }
    return c;
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
     flops_scalar_chunk, mlstm_create, mlstm_fwd, mlstm_fwdbwd, mlstm_check, mlstm_destroy},
    {"slstm", "B·T·H·(8K² + 30K): recurrent R·h for four gates plus the gate math",
     flops_slstm, slstm_create, slstm_fwd, slstm_fwdbwd, slstm_check, slstm_destroy},
    {"ssd", "B·T·H·(2L(K+V) + 4KV), as mlstm", flops_scalar_chunk, ssd_create, ssd_fwd, ssd_fwdbwd, ssd_check,
     ssd_destroy},
    {"gdn", "B·T·H·(4L(K+V) + 2LK + 6KV + L²/3): scalar-chunk work plus KKᵀ, W, U, W·S, the triangular solve",
     flops_gdn, gdn_create, gdn_fwd, gdn_fwdbwd, gdn_check, gdn_destroy},
    {"attn", "B·H·T(T+1)(K+V): causal scores and weighted sum", flops_attn, attn_create, attn_fwd, attn_fwdbwd,
     attn_check, attn_destroy},
    {"linattn", "B·T·H·(2L(K+V) + 4KV), as mlstm", flops_scalar_chunk, linattn_create, linattn_fwd,
     linattn_fwdbwd, linattn_check, linattn_destroy},
};
const int bench_nops = (int)(sizeof bench_ops / sizeof bench_ops[0]);
