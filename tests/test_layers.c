/* The layers (src/layers): float32 forward vs a float64 transcription of
 * the formula, finite-difference gradients of every input and parameter,
 * accumulation of parameter gradients, pieces == whole for the causal conv,
 * RoPE offsets, ignored targets, the elementwise and memory primitives,
 * the CPU backend table, bad arguments. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../src/layers/act.h"
#include "../src/layers/backend.h"
#include "../src/layers/conv1d.h"
#include "../src/layers/elem.h"
#include "../src/layers/embed.h"
#include "../src/layers/linear.h"
#include "../src/layers/norm.h"
#include "harness.h"

enum { MAXIN = 5 };

/* A layer as a float64 function of its inputs, for finite differences. */
typedef struct {
    const char *label;
    int nin;
    const char *names[MAXIN];
    size_t sizes[MAXIN];
    double *x[MAXIN];
    size_t nout;
    void (*ref)(const void *ctx, double *const *x, double *out);
    const void *ctx;
    double *W, *out;
} lcase;

static double lloss(void *p)
{
    lcase *c = p;
    c->ref(c->ctx, c->x, c->out);
    return th_dot(c->W, c->out, c->nout);
}

/* fin: the float32 inputs; y: the float32 forward; dy: the weights W as
 * float (the gradient of the loss Σ W⊙y); grads: the float32 backward. */
static void check_layer(lcase *c, float *const *fin, const float *y, const float *dy, float *const *grads)
{
    for (int i = 0; i < c->nin; i++) c->x[i] = th_to_double(fin[i], c->sizes[i]);
    c->W = th_to_double(dy, c->nout);
    c->out = sq_alloc_doubles(c->nout);
    c->ref(c->ctx, c->x, c->out);
    char what[128];
    snprintf(what, sizeof what, "%s: forward", c->label);
    th_close(what, th_rel_err(y, c->out, c->nout), 1e-5);
    for (int i = 0; i < c->nin; i++) {
        if (!grads[i]) continue;
        double *fd = sq_alloc_doubles(c->sizes[i]);
        th_fd_grad(lloss, c, c->x[i], c->sizes[i], 1e-6, fd);
        snprintf(what, sizeof what, "%s: grad %s", c->label, c->names[i]);
        th_close(what, th_rel_err(grads[i], fd, c->sizes[i]), 1e-4);
        sq_free(fd);
    }
    for (int i = 0; i < c->nin; i++) sq_free(c->x[i]);
    sq_free(c->W);
    sq_free(c->out);
}

static float *zerosf(size_t n)
{
    float *x = th_randn(n, 0);
    memset(x, 0, n * sizeof(float));
    return x;
}

/* ---- linear -------------------------------------------------------------- */

typedef struct { int N, in, out; } lin_ctx;

static void ref_linear(const void *p, double *const *x, double *y)
{
    const lin_ctx *c = p;
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->out; o++) {
            double s = x[2][o];
            for (int i = 0; i < c->in; i++) s += x[0][n * c->in + i] * x[1][o * c->in + i];
            y[n * c->out + o] = s;
        }
}

static void test_linear(void)
{
    lin_ctx c = {5, 7, 4};
    float *x = th_randn(35, 1), *W = th_randn(28, 1), *b = th_randn(4, 1), *y = zerosf(20), *dy = th_randn(20, 1);
    float *dx = zerosf(35), *dW = zerosf(28), *db = zerosf(4);
    th_expect_ok("linear fwd", sq_linear_fwd(5, 7, 4, x, W, b, y));
    th_expect_ok("linear bwd", sq_linear_bwd(5, 7, 4, x, W, dy, dx, dW, db));
    lcase lc = {"linear", 3, {"x", "W", "b"}, {35, 28, 4}, {0}, 20, ref_linear, &c, NULL, NULL};
    float *in[] = {x, W, b}, *g[] = {dx, dW, db};
    check_layer(&lc, in, y, dy, g);
    float *dW2 = th_randn(28, 0);
    memcpy(dW2, dW, 28 * sizeof(float));
    sq_linear_bwd(5, 7, 4, x, W, dy, NULL, dW2, NULL);
    double e = 0;
    for (int i = 0; i < 28; i++) e = fmax(e, fabs(dW2[i] - 2 * dW[i]));
    th_check(e < 1e-5, "linear: a second backward accumulates into dW (max dev %.2g)", e);
    /* y += x Wᵀ + b onto y0: the forward's output plus y0, to rounding */
    float *yacc = th_randn(20, 1), *want = zerosf(20);
    for (int i = 0; i < 20; i++) want[i] = yacc[i] + y[i];
    th_expect_ok("linear fwd acc", sq_linear_fwd_acc(5, 7, 4, x, W, b, yacc));
    th_close("linear fwd acc: y0 + x Wᵀ + b", th_rel_err_ff(yacc, want, 20), 1e-6);
    th_expect_error("linear fwd acc: NULL y", sq_linear_fwd_acc(5, 7, 4, x, W, b, NULL), SQ_EINVAL);
    sq_free(yacc); sq_free(want);
    th_expect_error("linear: in = 0", sq_linear_fwd(5, 0, 4, x, W, b, y), SQ_EINVAL);
    th_expect_error("linear: NULL W", sq_linear_fwd(5, 7, 4, x, NULL, b, y), SQ_EINVAL);
    float *p[] = {x, W, b, y, dy, dx, dW, db, dW2};
    for (int i = 0; i < 9; i++) sq_free(p[i]);
}

/* ---- norms ------------------------------------------------------------- */

typedef struct { int N, G, Dg, center; double eps; } norm_ctx;

static void ref_norm(const void *p, double *const *x, double *y)
{
    const norm_ctx *c = p;
    for (int ng = 0; ng < c->N * c->G; ng++) {
        const double *xg = x[0] + ng * c->Dg, *w = x[1] + (ng % c->G) * c->Dg, *b = x[2] + (ng % c->G) * c->Dg;
        double m = 0, v = 0;
        for (int i = 0; c->center && i < c->Dg; i++) m += xg[i] / c->Dg;
        for (int i = 0; i < c->Dg; i++) v += (xg[i] - m) * (xg[i] - m) / c->Dg;
        for (int i = 0; i < c->Dg; i++) y[ng * c->Dg + i] = (xg[i] - m) / sqrt(v + c->eps) * w[i] + b[i];
    }
}

static void test_norm(int G, int center, const char *label)
{
    norm_ctx c = {4, G, 6, center, 1e-5};
    size_t n = (size_t)4 * G * 6, p = (size_t)G * 6;
    float *x = th_randn(n, 1.5f), *w = th_randn(p, 1), *b = th_randn(p, 1), *y = zerosf(n), *dy = th_randn(n, 1);
    float *mu = zerosf(4 * G), *r = zerosf(4 * G), *dx = zerosf(n), *dw = zerosf(p), *db = zerosf(p);
    th_expect_ok(label, sq_norm_fwd(4, G, 6, center, 1e-5f, x, w, b, y, mu, r));
    th_expect_ok(label, sq_norm_bwd(4, G, 6, center, x, w, mu, r, dy, dx, dw, db));
    lcase lc = {label, 3, {"x", "w", "b"}, {n, p, p}, {0}, n, ref_norm, &c, NULL, NULL};
    float *in[] = {x, w, b}, *g[] = {dx, dw, db};
    check_layer(&lc, in, y, dy, g);
    th_expect_error("norm: eps 0", sq_norm_fwd(4, G, 6, center, 0, x, w, b, y, mu, r), SQ_EINVAL);
    th_expect_error("norm: G 0", sq_norm_fwd(4, 0, 6, center, 1e-5f, x, w, b, y, mu, r), SQ_EINVAL);
    float *q[] = {x, w, b, y, dy, mu, r, dx, dw, db};
    for (int i = 0; i < 10; i++) sq_free(q[i]);
}

typedef struct { int N, D; } rows_ctx;

static void ref_l2norm(const void *p, double *const *x, double *y)
{
    const rows_ctx *c = p;
    for (int n = 0; n < c->N; n++) {
        double s = 1e-6;
        for (int i = 0; i < c->D; i++) s += x[0][n * c->D + i] * x[0][n * c->D + i];
        for (int i = 0; i < c->D; i++) y[n * c->D + i] = x[0][n * c->D + i] / sqrt(s);
    }
}

static void test_l2norm(void)
{
    rows_ctx c = {5, 8};
    float *x = th_randn(40, 1), *y = zerosf(40), *rn = zerosf(5), *dy = th_randn(40, 1), *dx = zerosf(40);
    th_expect_ok("l2norm fwd", sq_l2norm_fwd(5, 8, 1e-6f, x, y, rn));
    th_expect_ok("l2norm bwd", sq_l2norm_bwd(5, 8, x, rn, dy, dx));
    lcase lc = {"l2norm", 1, {"x"}, {40}, {0}, 40, ref_l2norm, &c, NULL, NULL};
    float *in[] = {x}, *g[] = {dx};
    check_layer(&lc, in, y, dy, g);
    sq_free(x); sq_free(y); sq_free(rn); sq_free(dy); sq_free(dx);
}

/* ---- activations ----------------------------------------------------------- */

static size_t act_n = 50;

static void ref_silu(const void *p, double *const *x, double *y)
{
    for (size_t i = 0; i < act_n; i++) y[i] = x[0][i] / (1 + exp(-x[0][i]));
}

static void ref_gelu(const void *p, double *const *x, double *y)
{
    for (size_t i = 0; i < act_n; i++) {
        double v = x[0][i];
        y[i] = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    }
}

static void ref_swiglu(const void *p, double *const *x, double *y)
{
    for (size_t i = 0; i < act_n; i++) y[i] = x[0][i] / (1 + exp(-x[0][i])) * x[1][i];
}

static void test_acts(void)
{
    float *x = th_randn(act_n, 2), *b = th_randn(act_n, 1), *y = zerosf(act_n), *dy = th_randn(act_n, 1);
    float *dx = zerosf(act_n), *dbv = zerosf(act_n);
    sq_silu_fwd(act_n, x, y);
    sq_silu_bwd(act_n, x, dy, dx);
    lcase s = {"silu", 1, {"x"}, {act_n}, {0}, act_n, ref_silu, NULL, NULL, NULL};
    float *in1[] = {x}, *g1[] = {dx};
    check_layer(&s, in1, y, dy, g1);
    sq_gelu_fwd(act_n, x, y);
    sq_gelu_bwd(act_n, x, dy, dx);
    lcase ge = {"gelu", 1, {"x"}, {act_n}, {0}, act_n, ref_gelu, NULL, NULL, NULL};
    check_layer(&ge, in1, y, dy, g1);
    sq_swiglu_fwd(act_n, x, b, y);
    sq_swiglu_bwd(act_n, x, b, dy, dx, dbv);
    lcase sw = {"swiglu", 2, {"a", "b"}, {act_n, act_n}, {0}, act_n, ref_swiglu, NULL, NULL, NULL};
    float *in2[] = {x, b}, *g2[] = {dx, dbv};
    check_layer(&sw, in2, y, dy, g2);
    th_expect_error("silu: n = 0", sq_silu_fwd(0, x, y), SQ_EINVAL);
    th_expect_error("gelu: NULL y", sq_gelu_fwd(act_n, x, NULL), SQ_EINVAL);
    sq_free(x); sq_free(b); sq_free(y); sq_free(dy); sq_free(dx); sq_free(dbv);
}

/* ---- causal conv1d -------------------------------------------------------- */

typedef struct { int B, T, C, W; } conv_ctx;

static void ref_conv(const void *p, double *const *x, double *y)
{
    const conv_ctx *c = p;
    for (int b = 0; b < c->B; b++)
        for (int t = 0; t < c->T; t++)
            for (int ch = 0; ch < c->C; ch++) {
                double s = x[2][ch];
                for (int j = 0; j < c->W; j++) {
                    int u = t - c->W + 1 + j;
                    double in = u >= 0 ? x[0][(b * c->T + u) * c->C + ch] : x[3][(b * (c->W - 1) + c->W - 1 + u) * c->C + ch];
                    s += x[1][ch * c->W + j] * in;
                }
                y[(b * c->T + t) * c->C + ch] = s;
            }
}

static void test_conv(void)
{
    conv_ctx c = {2, 9, 3, 4};
    size_t n = 2 * 9 * 3, ns = 2 * 3 * 3;
    float *x = th_randn(n, 1), *w = th_randn(12, 1), *bias = th_randn(3, 1), *s0 = th_randn(ns, 1);
    float *y = zerosf(n), *dy = th_randn(n, 1), *dx = zerosf(n), *dw = zerosf(12), *db = zerosf(3), *ds0 = zerosf(ns);
    th_expect_ok("conv1d fwd", sq_conv1d_fwd(2, 9, 3, 4, x, w, bias, s0, y, NULL));
    th_expect_ok("conv1d bwd", sq_conv1d_bwd(2, 9, 3, 4, x, w, s0, dy, dx, dw, db, ds0));
    lcase lc = {"conv1d", 4, {"x", "w", "bias", "state0"}, {n, 12, 3, ns}, {0}, n, ref_conv, &c, NULL, NULL};
    float *in[] = {x, w, bias, s0}, *g[] = {dx, dw, db, ds0};
    check_layer(&lc, in, y, dy, g);

    /* pieces 4 + 5 and 9 single steps, the state carried in place */
    float *st = th_randn(ns, 0), *yp = zerosf(n), *ys = zerosf(n);
    memcpy(st, s0, ns * sizeof(float));
    sq_dims d = {2, 9, 1, 3, 3};
    int lens[2] = {4, 5};
    for (int p = 0, t0 = 0; p < 2; t0 += lens[p], p++) {
        float *xp = th_slice_time(x, d, 3, t0, lens[p]), *o = zerosf((size_t)2 * lens[p] * 3);
        sq_conv1d_fwd(2, lens[p], 3, 4, xp, w, bias, st, o, st);
        th_put_time(yp, d, 3, t0, lens[p], o);
        sq_free(xp); sq_free(o);
    }
    memcpy(st, s0, ns * sizeof(float));
    for (int t = 0; t < 9; t++) {
        float *xp = th_slice_time(x, d, 3, t, 1), *o = zerosf(6);
        sq_conv1d_fwd(2, 1, 3, 4, xp, w, bias, st, o, st);
        th_put_time(ys, d, 3, t, 1, o);
        sq_free(xp); sq_free(o);
    }
    th_close("conv1d: pieces 4+5 == whole", th_rel_err_ff(yp, y, n), 1e-6);
    th_close("conv1d: 9 steps == whole", th_rel_err_ff(ys, y, n), 1e-6);
    th_expect_error("conv1d: width 0", sq_conv1d_fwd(2, 9, 3, 0, x, w, bias, s0, y, NULL), SQ_EINVAL);
    float *q[] = {x, w, bias, s0, y, dy, dx, dw, db, ds0, st, yp, ys};
    for (int i = 0; i < 13; i++) sq_free(q[i]);
}

/* ---- embedding, RoPE, cross-entropy ------------------------------------------ */

static void test_embed(void)
{
    int32_t tok[6] = {3, 0, 4, 3, 1, 4};
    float *W = th_randn(5 * 4, 1), *y = zerosf(24), *dy = th_randn(24, 1), *dW = zerosf(20);
    th_expect_ok("embed fwd", sq_embed_fwd(6, 5, 4, tok, W, y));
    int same = 1;
    for (int n = 0; n < 6; n++) same &= !memcmp(y + n * 4, W + tok[n] * 4, 16);
    th_check(same, "embedding rows are the table's rows");
    sq_embed_bwd(6, 5, 4, tok, dy, dW);
    double want = (double)dy[0 * 4 + 1] + dy[3 * 4 + 1];
    th_check(fabs(dW[3 * 4 + 1] - want) < 1e-6 && dW[2 * 4] == 0, "embedding gradient adds rows of repeated tokens");
    tok[2] = 5;
    th_expect_error("embedding: token out of range", sq_embed_fwd(6, 5, 4, tok, W, y), SQ_EINVAL);
    sq_free(W); sq_free(y); sq_free(dy); sq_free(dW);
}

typedef struct { int B, T, H, D, pos0; } rope_ctx;

static void ref_rope(const void *p, double *const *x, double *y)
{
    const rope_ctx *c = p;
    int half = c->D / 2;
    for (int b = 0; b < c->B; b++)
        for (int t = 0; t < c->T; t++)
            for (int h = 0; h < c->H; h++)
                for (int i = 0; i < half; i++) {
                    double th = (c->pos0 + t) * pow(10000.0, -2.0 * i / c->D);
                    size_t at = (((size_t)b * c->T + t) * c->H + h) * c->D;
                    double x0 = x[0][at + i], x1 = x[0][at + i + half];
                    y[at + i] = x0 * cos(th) - x1 * sin(th);
                    y[at + i + half] = x0 * sin(th) + x1 * cos(th);
                }
}

static void test_rope(void)
{
    rope_ctx c = {2, 5, 3, 8, 7};
    size_t n = 2 * 5 * 3 * 8;
    float *x = th_randn(n, 1), *y = zerosf(n), *dy = th_randn(n, 1), *dx = zerosf(n);
    th_expect_ok("rope fwd", sq_rope_fwd(2, 5, 3, 8, 7, 10000, x, y));
    th_expect_ok("rope bwd", sq_rope_bwd(2, 5, 3, 8, 7, 10000, dy, dx));
    lcase lc = {"rope pos0=7", 1, {"x"}, {n}, {0}, n, ref_rope, &c, NULL, NULL};
    float *in[] = {x}, *g[] = {dx};
    check_layer(&lc, in, y, dy, g);
    /* positions 7.. of a longer sequence equal rope at offset 7 */
    float *xl = th_randn(2 * 12 * 3 * 8, 1), *yl = zerosf(2 * 12 * 3 * 8);
    sq_dims dl = {2, 12, 1, 24, 24};
    for (int b = 0; b < 2; b++) memcpy(xl + ((size_t)b * 12 + 7) * 24, x + (size_t)b * 5 * 24, 5 * 24 * sizeof(float));
    sq_rope_fwd(2, 12, 3, 8, 0, 10000, xl, yl);
    float *tail = th_slice_time(yl, dl, 24, 7, 5);
    th_close("rope at offset 7 == positions 7.. of a longer sequence", th_rel_err_ff(tail, y, n), 1e-6);
    th_expect_error("rope: odd head size", sq_rope_fwd(2, 5, 3, 7, 0, 10000, x, y), SQ_EINVAL);
    sq_free(x); sq_free(y); sq_free(dy); sq_free(dx); sq_free(xl); sq_free(yl); sq_free(tail);
}

typedef struct { int N, V; const int32_t *t; } xent_ctx;

static void ref_xent(const void *p, double *const *x, double *y)
{
    const xent_ctx *c = p;
    double tot = 0;
    int cnt = 0;
    for (int n = 0; n < c->N; n++) {
        if (c->t[n] < 0) continue;
        double mx = -1e300, s = 0;
        for (int v = 0; v < c->V; v++) mx = fmax(mx, x[0][n * c->V + v]);
        for (int v = 0; v < c->V; v++) s += exp(x[0][n * c->V + v] - mx);
        tot += mx + log(s) - x[0][n * c->V + c->t[n]];
        cnt++;
    }
    y[0] = tot / cnt;
}

static void test_xent(void)
{
    int32_t t[6] = {2, -1, 0, 4, -1, 1};
    xent_ctx c = {6, 5, t};
    float *z = th_randn(30, 3), *dz = zerosf(30), loss = 0, one = 1;
    int cnt = 0;
    th_expect_ok("xent", sq_xent_fwd_bwd(6, 5, z, t, &loss, dz, &cnt));
    th_check(cnt == 4, "cross-entropy counts 4 of 6 rows (ignores targets < 0)");
    int zero = 1;
    for (int v = 0; v < 5; v++) zero &= dz[5 + v] == 0 && dz[20 + v] == 0;
    th_check(zero, "ignored rows get zero gradient");
    lcase lc = {"cross-entropy", 1, {"logits"}, {30}, {0}, 1, ref_xent, &c, NULL, NULL};
    float *in[] = {z}, *g[] = {dz};
    check_layer(&lc, in, &loss, &one, g);
    t[0] = 5;
    th_expect_error("xent: target >= vocab", sq_xent_fwd_bwd(6, 5, z, t, &loss, dz, &cnt), SQ_EINVAL);
    sq_free(z); sq_free(dz);
}

/* ---- elementwise and memory primitives (elem.h) ------------------------------ */

/* Exact results: copy, zero, add_to and div_scalar are one float operation
 * (or none) per element, so they must match bit for bit. */
static void test_elem_memory(void)
{
    size_t n = 37;
    float *x = th_randn(n, 1), *y = th_randn(n, 1), *y0 = zerosf(n);
    memcpy(y0, y, n * sizeof(float));
    int same = 1;
    th_expect_ok("add_to", sq_add_to(n, x, y));
    for (size_t i = 0; i < n; i++) same &= y[i] == y0[i] + x[i];
    th_check(same, "add_to: y = y + x exactly");
    th_expect_ok("div_scalar", sq_div_scalar(n, 3.0f, y));
    for (size_t i = 0; i < n; i++) same &= y[i] == (y0[i] + x[i]) / 3.0f;
    th_check(same, "div_scalar: x = x / 3 exactly");
    th_expect_ok("mul", sq_mul(n, x, y, y0));
    for (size_t i = 0; i < n; i++) same &= y0[i] == x[i] * y[i];
    th_check(same, "mul: y = a ⊙ b exactly");
    th_expect_ok("mul in place", sq_mul(n, x, y, y));
    for (size_t i = 0; i < n; i++) same &= y[i] == y0[i];
    th_check(same, "mul: in place (y = b)");
    th_expect_ok("copy", sq_copy(n, x, y));
    th_check(!memcmp(x, y, n * sizeof(float)), "copy: y = x");
    th_expect_ok("zero", sq_zero(n, y));
    for (size_t i = 0; i < n; i++) same &= y[i] == 0;
    th_check(same, "zero: x = 0");
    th_expect_error("copy: n = 0", sq_copy(0, x, y), SQ_EINVAL);
    th_expect_error("zero: NULL x", sq_zero(n, NULL), SQ_EINVAL);
    th_expect_error("add_to: NULL y", sq_add_to(n, x, NULL), SQ_EINVAL);
    th_expect_error("mul: NULL b", sq_mul(n, x, NULL, y), SQ_EINVAL);
    th_expect_error("div_scalar: by zero", sq_div_scalar(n, 0.0f, y), SQ_EINVAL);
    sq_free(x); sq_free(y); sq_free(y0);
}

/* A column block of a [4, 9] matrix out to [4, 3] and back into another
 * [4, 9] at a different column offset; the other columns stay untouched. */
static void test_copy_cols(void)
{
    enum { N = 4, LD = 9, W = 3 };
    float *a = th_randn(N * LD, 1), *blk = zerosf(N * W), *c = th_randn(N * LD, 1), *c0 = zerosf(N * LD);
    memcpy(c0, c, sizeof(float) * N * LD);
    th_expect_ok("copy_cols out", sq_copy_cols(N, W, a + 2, LD, blk, W));
    th_expect_ok("copy_cols in", sq_copy_cols(N, W, blk, W, c + 5, LD));
    int out = 1, in = 1, rest = 1;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < LD; j++) {
            if (j < W) out &= blk[i * W + j] == a[i * LD + 2 + j];
            if (j >= 5 && j < 5 + W) in &= c[i * LD + j] == a[i * LD + 2 + j - 5];
            else rest &= c[i * LD + j] == c0[i * LD + j];
        }
    th_check(out, "copy_cols: dst[i, :n] = src[i, c0:c0+n]");
    th_check(in, "copy_cols: back into a wider matrix at another offset");
    th_check(rest, "copy_cols: the other columns are untouched");
    th_expect_error("copy_cols: stride < n", sq_copy_cols(N, W, a, 2, blk, W), SQ_EINVAL);
    th_expect_error("copy_cols: no rows", sq_copy_cols(0, W, a, LD, blk, W), SQ_EINVAL);
    sq_free(a); sq_free(blk); sq_free(c); sq_free(c0);
}

static size_t elem_n = 40;

static void ref_neg_exp(const void *p, double *const *x, double *y)
{
    for (size_t i = 0; i < elem_n; i++) y[i] = -exp(x[0][i]);
}

static void ref_sigmoid_gate(const void *p, double *const *x, double *y)
{
    for (size_t i = 0; i < elem_n; i++) y[i] = x[0][i] / (1 + exp(-x[1][i]));
}

static void test_elem_gates(void)
{
    size_t n = elem_n;
    float *x = th_randn(n, 1.5f), *g = th_randn(n, 3), *y = zerosf(n), *dy = th_randn(n, 1);
    float *dx = zerosf(n), *dg = zerosf(n);
    /* y = -exp(x); the backward accumulates: from zero it is the gradient */
    th_expect_ok("neg_exp fwd", sq_neg_exp_fwd(n, x, y));
    th_expect_ok("neg_exp bwd", sq_neg_exp_bwd(n, y, dy, dx));
    lcase ne = {"neg_exp", 1, {"x"}, {n}, {0}, n, ref_neg_exp, NULL, NULL, NULL};
    float *in1[] = {x}, *g1[] = {dx};
    check_layer(&ne, in1, y, dy, g1);
    float *dx2 = zerosf(n);
    memcpy(dx2, dx, n * sizeof(float));
    sq_neg_exp_bwd(n, y, dy, dx2);
    double e = 0;
    for (size_t i = 0; i < n; i++) e = fmax(e, fabs(dx2[i] - 2 * dx[i]));
    th_check(e < 1e-5, "neg_exp: a second backward accumulates into dx (max dev %.2g)", e);
    /* y = a ⊙ σ(g) */
    th_expect_ok("sigmoid gate fwd", sq_sigmoid_gate_fwd(n, x, g, y));
    th_expect_ok("sigmoid gate bwd", sq_sigmoid_gate_bwd(n, x, g, dy, dx, dg));
    lcase sg = {"sigmoid gate", 2, {"a", "g"}, {n, n}, {0}, n, ref_sigmoid_gate, NULL, NULL, NULL};
    float *in2[] = {x, g}, *g2[] = {dx, dg};
    check_layer(&sg, in2, y, dy, g2);
    th_expect_error("neg_exp: n = 0", sq_neg_exp_fwd(0, x, y), SQ_EINVAL);
    th_expect_error("sigmoid gate: NULL g", sq_sigmoid_gate_fwd(n, x, NULL, y), SQ_EINVAL);
    th_expect_error("sigmoid gate bwd: NULL dg", sq_sigmoid_gate_bwd(n, x, g, dy, dx, NULL), SQ_EINVAL);
    float *q[] = {x, g, y, dy, dx, dg, dx2};
    for (int i = 0; i < 7; i++) sq_free(q[i]);
}

/* Every member of the CPU table is set (a device table is checked the same
 * way), and a few point where they should. */
static void test_backend_table(void)
{
    typedef void (*fn)(void);
    const sq_backend *be = &sq_backend_cpu;
    fn all[] = {
        /* memory */
        (fn)be->alloc, (fn)be->alloc_i32, (fn)be->release, (fn)be->upload, (fn)be->download, (fn)be->upload_i32,
        /* layers */
        (fn)be->linear_fwd, (fn)be->linear_fwd_acc, (fn)be->linear_bwd, (fn)be->linear_bwd_acc, (fn)be->norm_fwd,
        (fn)be->norm_bwd, (fn)be->l2norm_fwd, (fn)be->l2norm_bwd, (fn)be->silu_fwd, (fn)be->silu_bwd,
        (fn)be->gelu_fwd, (fn)be->gelu_bwd, (fn)be->swiglu_fwd, (fn)be->swiglu_bwd, (fn)be->conv1d_fwd,
        (fn)be->conv1d_bwd, (fn)be->embed_fwd, (fn)be->embed_bwd, (fn)be->rope_fwd, (fn)be->rope_bwd,
        (fn)be->xent_fwd_bwd,
        /* elementwise and memory */
        (fn)be->copy, (fn)be->zero, (fn)be->add_to, (fn)be->mul, (fn)be->div_scalar, (fn)be->copy_cols,
        (fn)be->neg_exp_fwd, (fn)be->neg_exp_bwd, (fn)be->sigmoid_gate_fwd, (fn)be->sigmoid_gate_bwd,
        /* operators */
        (fn)be->mlstm_work_floats, (fn)be->mlstm_fwd, (fn)be->mlstm_bwd, (fn)be->mlstm_step,
        (fn)be->slstm_work_floats, (fn)be->slstm_fwd, (fn)be->slstm_bwd, (fn)be->slstm_step,
        (fn)be->ssd_work_floats, (fn)be->ssd_fwd, (fn)be->ssd_bwd, (fn)be->ssd_step,
        (fn)be->gdn_work_floats, (fn)be->gdn_fwd, (fn)be->gdn_bwd, (fn)be->gdn_step,
        (fn)be->attn_work_floats, (fn)be->attn_fwd, (fn)be->attn_bwd, (fn)be->attn_step,
        /* optimizer */
        (fn)be->adamw_update, (fn)be->global_norm, (fn)be->clip_global_norm,
    };
    int set = 1;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) set &= all[i] != NULL;
    th_check(set, "backend cpu: all %zu functions are set", sizeof all / sizeof all[0]);
    th_check(be->name && !strcmp(be->name, "cpu"), "backend cpu: named \"cpu\"");
    th_check(be->host_memory == 1, "backend cpu: host memory");
    th_check(be->linear_fwd == sq_linear_fwd && be->copy_cols == sq_copy_cols && be->mlstm_fwd == sq_mlstm_fwd &&
                 be->adamw_update == sq_adamw_update,
             "backend cpu: the members are the CPU functions");
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "layers");
    test_linear();
    test_norm(1, 0, "rmsnorm");
    test_norm(1, 1, "layernorm");
    test_norm(3, 0, "head-wise rmsnorm");
    test_norm(3, 1, "groupnorm");
    test_l2norm();
    test_acts();
    test_conv();
    test_embed();
    test_rope();
    test_xent();
    test_elem_memory();
    test_copy_cols();
    test_elem_gates();
    test_backend_table();
    return th_finish();
}
