/* The layers and the optimizer update on the GPU (src/cuda/cuda_layers.h)
 * against their CPU counterparts (src/layers, src/train/optim.h), on fresh
 * random inputs: outputs poisoned with NaN, accumulated parameter
 * gradients started from the same random values on both sides, relative
 * error < 1e-5 (1e-4 for matrix products and reductions over rows), odd
 * sizes, NULL optional arguments, refusals (bad tokens, bad targets). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/layers/act.h"
#include "../../src/layers/conv1d.h"
#include "../../src/layers/embed.h"
#include "../../src/layers/linear.h"
#include "../../src/layers/norm.h"
#include "../../src/train/optim.h"
#include "cuda_util.h"

static const double TOL = 1e-5, TOL_RED = 1e-4;

static float *copy_of(const float *x, size_t n)
{
    float *y = sq_alloc_floats(n);
    memcpy(y, x, n * sizeof(float));
    return y;
}

static int32_t *tokens_device(const int32_t *h, size_t n)
{
    int32_t *d = NULL;
    if (!th_expect_ok("cuda malloc i32", sq_cuda_malloc_i32(&d, n))) return NULL;
    th_expect_ok("upload i32", sq_cuda_upload_i32(d, h, n));
    return d;
}

static void close_dev(const char *what, const float *dev, const float *host, size_t n, double tol)
{
    th_close(what, err_vs(dev, host, n), tol);
}

/* ---- activations ---- */

static void check_act(size_t n)
{
    float *x = th_randn(n, 2), *b = th_randn(n, 1), *dy = th_randn(n, 1);
    float *ref[7], *dev[7];
    for (int i = 0; i < 7; i++) ref[i] = sq_alloc_floats(n), dev[i] = device_poisoned(n);
    float *dx = to_device(x, n), *db = to_device(b, n), *ddy = to_device(dy, n);
    sq_silu_fwd(n, x, ref[0]), sq_silu_bwd(n, x, dy, ref[1]);
    sq_gelu_fwd(n, x, ref[2]), sq_gelu_bwd(n, x, dy, ref[3]);
    sq_swiglu_fwd(n, x, b, ref[4]), sq_swiglu_bwd(n, x, b, dy, ref[5], ref[6]);
    th_expect_ok("cuda silu fwd", sq_cuda_silu_fwd(n, dx, dev[0]));
    th_expect_ok("cuda silu bwd", sq_cuda_silu_bwd(n, dx, ddy, dev[1]));
    th_expect_ok("cuda gelu fwd", sq_cuda_gelu_fwd(n, dx, dev[2]));
    th_expect_ok("cuda gelu bwd", sq_cuda_gelu_bwd(n, dx, ddy, dev[3]));
    th_expect_ok("cuda swiglu fwd", sq_cuda_swiglu_fwd(n, dx, db, dev[4]));
    th_expect_ok("cuda swiglu bwd", sq_cuda_swiglu_bwd(n, dx, db, ddy, dev[5], dev[6]));
    static const char *const names[7] = {"silu fwd", "silu bwd", "gelu fwd", "gelu bwd", "swiglu fwd", "swiglu da",
                                         "swiglu db"};
    for (int i = 0; i < 7; i++) {
        char what[96];
        snprintf(what, sizeof what, "cuda %s n=%zu", names[i], n);
        /* GELU's derivative, 0.5(1 + tanh u) + 0.5 x (1 - tanh² u) u', cancels near x ≈ -0.75
         * and the device's tanhf differs from glibc's by ulps: at n = 1 one such value is
         * the whole norm (2.5e-5 seen), so the derivative gets the reductions' bound */
        close_dev(what, dev[i], ref[i], n, i == 3 ? TOL_RED : TOL);
    }
    for (int i = 0; i < 7; i++) sq_free(ref[i]), sq_cuda_free(dev[i]);
    sq_cuda_free(dx), sq_cuda_free(db), sq_cuda_free(ddy);
    sq_free(x), sq_free(b), sq_free(dy);
}

/* ---- linear ---- */

/* fwd; then bwd (dx written), bwd_acc (dx accumulated) and bwd with dx = db = NULL,
 * dW and db accumulating over the three from the same random start. */
static void check_linear(int N, int in, int out, int bias)
{
    size_t nx = (size_t)N * in, ny = (size_t)N * out, nw = (size_t)out * in;
    float *x = th_randn(nx, 1), *W = th_randn(nw, 0.3f), *b = th_randn(out, 1), *dy = th_randn(ny, 1);
    float *dW = th_randn(nw, 1), *db = th_randn(out, 1), *dxa = th_randn(nx, 1);
    float *y = sq_alloc_floats(ny), *dx = sq_alloc_floats(nx);
    float *gx = to_device(x, nx), *gW = to_device(W, nw), *gb = to_device(b, out), *gdy = to_device(dy, ny);
    float *gdW = to_device(dW, nw), *gdb = to_device(db, out), *gdxa = to_device(dxa, nx);
    float *gy = device_poisoned(ny), *gdx = device_poisoned(nx);
    const float *bb = bias ? b : NULL, *gbb = bias ? gb : NULL;
    float *dbb = bias ? db : NULL, *gdbb = bias ? gdb : NULL;
    sq_linear_fwd(N, in, out, x, W, bb, y);
    sq_linear_bwd(N, in, out, x, W, dy, dx, dW, dbb);
    sq_linear_bwd_acc(N, in, out, x, W, dy, dxa, dW, dbb);
    sq_linear_bwd(N, in, out, x, W, dy, NULL, dW, NULL);
    th_expect_ok("cuda linear fwd", sq_cuda_linear_fwd(N, in, out, gx, gW, gbb, gy));
    th_expect_ok("cuda linear bwd", sq_cuda_linear_bwd(N, in, out, gx, gW, gdy, gdx, gdW, gdbb));
    th_expect_ok("cuda linear bwd acc", sq_cuda_linear_bwd_acc(N, in, out, gx, gW, gdy, gdxa, gdW, gdbb));
    th_expect_ok("cuda linear bwd no dx", sq_cuda_linear_bwd(N, in, out, gx, gW, gdy, NULL, gdW, NULL));
    char what[128];
    snprintf(what, sizeof what, "cuda linear N%d in%d out%d%s: y", N, in, out, bias ? " bias" : "");
    close_dev(what, gy, y, ny, TOL_RED);
    snprintf(what, sizeof what, "cuda linear N%d in%d out%d: dx, dx accumulated, dW accumulated", N, in, out);
    th_close(what, fmax(err_vs(gdx, dx, nx), fmax(err_vs(gdxa, dxa, nx), err_vs(gdW, dW, nw))), TOL_RED);
    if (bias) {
        snprintf(what, sizeof what, "cuda linear N%d in%d out%d: db accumulated", N, in, out);
        close_dev(what, gdb, db, out, TOL_RED);
    }
    float *h[] = {x, W, b, dy, dW, db, dxa, y, dx};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) sq_free(h[i]);
    float *g[] = {gx, gW, gb, gdy, gdW, gdb, gdxa, gy, gdx};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) sq_cuda_free(g[i]);
}

/* ---- norms ---- */

/* fwd (y, μ, r), then bwd on the device's own μ, r; dw, db accumulate from the same random start. */
static void check_norm(int N, int G, int Dg, int center, int with_w, int with_b)
{
    size_t n = (size_t)N * G * Dg, ng = (size_t)N * G, C = (size_t)G * Dg;
    float *x = th_randn(n, 2), *w = th_randn(C, 1), *b = th_randn(C, 1), *dy = th_randn(n, 1);
    for (size_t i = 0; i < n; i++) x[i] += 1; /* a mean to take away */
    float *dw = th_randn(C, 1), *db = th_randn(C, 1);
    float *gx = to_device(x, n), *gw = to_device(w, C), *gb = to_device(b, C), *gdy = to_device(dy, n);
    float *gdw = to_device(dw, C), *gdb = to_device(db, C);
    float *y = sq_alloc_floats(n), *mu = sq_alloc_floats(ng), *r = sq_alloc_floats(ng), *dx = sq_alloc_floats(n);
    float *gy = device_poisoned(n), *gmu = device_poisoned(ng), *gr = device_poisoned(ng), *gdx = device_poisoned(n);
    const float *wp = with_w ? w : NULL, *bp = with_b ? b : NULL, *gwp = with_w ? gw : NULL, *gbp = with_b ? gb : NULL;
    sq_norm_fwd(N, G, Dg, center, 1e-5f, x, wp, bp, y, center ? mu : NULL, r);
    sq_norm_bwd(N, G, Dg, center, x, wp, mu, r, dy, dx, dw, with_b ? db : NULL);
    th_expect_ok("cuda norm fwd", sq_cuda_norm_fwd(N, G, Dg, center, 1e-5f, gx, gwp, gbp, gy, center ? gmu : NULL, gr));
    th_expect_ok("cuda norm bwd", sq_cuda_norm_bwd(N, G, Dg, center, gx, gwp, center ? gmu : NULL, gr, gdy, gdx, gdw,
                                                   with_b ? gdb : NULL));
    char what[160];
    snprintf(what, sizeof what, "cuda norm N%d G%d Dg%d center %d%s%s: y, r%s, dx", N, G, Dg, center,
             with_w ? " w" : "", with_b ? " b" : "", center ? ", mu" : "");
    double e = fmax(fmax(err_vs(gy, y, n), err_vs(gr, r, ng)), err_vs(gdx, dx, n));
    if (center) e = fmax(e, err_vs(gmu, mu, ng));
    th_close(what, e, TOL);
    snprintf(what, sizeof what, "cuda norm N%d G%d Dg%d center %d: dw, db accumulated (or untouched)", N, G, Dg,
             center);
    th_close(what, fmax(err_vs(gdw, dw, C), err_vs(gdb, db, C)), TOL_RED);
    float *h[] = {x, w, b, dy, dw, db, y, mu, r, dx};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) sq_free(h[i]);
    float *g[] = {gx, gw, gb, gdy, gdw, gdb, gy, gmu, gr, gdx};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) sq_cuda_free(g[i]);
}

static void check_l2norm(int N, int D)
{
    size_t n = (size_t)N * D;
    float *x = th_randn(n, 1), *dy = th_randn(n, 1);
    float *y = sq_alloc_floats(n), *rn = sq_alloc_floats(N), *dx = sq_alloc_floats(n);
    float *gx = to_device(x, n), *gdy = to_device(dy, n);
    float *gy = device_poisoned(n), *grn = device_poisoned(N), *gdx = device_poisoned(n);
    sq_l2norm_fwd(N, D, 1e-6f, x, y, rn);
    sq_l2norm_bwd(N, D, x, rn, dy, dx);
    th_expect_ok("cuda l2norm fwd", sq_cuda_l2norm_fwd(N, D, 1e-6f, gx, gy, grn));
    th_expect_ok("cuda l2norm bwd", sq_cuda_l2norm_bwd(N, D, gx, grn, gdy, gdx));
    char what[96];
    snprintf(what, sizeof what, "cuda l2norm N%d D%d: y, rnorm", N, D);
    th_close(what, fmax(err_vs(gy, y, n), err_vs(grn, rn, N)), TOL);
    /* dx = r (dy - x r (x r)·dy) nearly cancels when D is small (at D = 1 it is
     * r dy eps/(x² + eps)): its error is measured against the size of its terms, ‖r dy‖ */
    float *hdx = sq_alloc_floats(n);
    th_expect_ok("download", sq_cuda_download(hdx, gdx, n));
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)hdx[i] - dx[i], t = (double)rn[i / D] * dy[i];
        num += e * e, den += t * t;
    }
    snprintf(what, sizeof what, "cuda l2norm N%d D%d: dx (error over ‖r dy‖)", N, D);
    th_close(what, th_all_finite(hdx, n) ? sqrt(num / den) : INFINITY, TOL);
    sq_free(hdx);
    float *h[] = {x, dy, y, rn, dx};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) sq_free(h[i]);
    float *g[] = {gx, gdy, gy, grn, gdx};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) sq_cuda_free(g[i]);
}

/* ---- causal conv1d ---- */

/* fwd (y, state1; then again with state1 aliasing state0 when a state is
 * given), bwd (dx, dstate0 when wanted; dw, dbias accumulate). */
static void check_conv(int B, int T, int C, int W, int with_state, int with_bias, int want_dstate)
{
    size_t nx = (size_t)B * T * C, ns = (size_t)B * (W - 1) * C, nw = (size_t)C * W;
    float *x = th_randn(nx, 1), *w = th_randn(nw, 0.5f), *bias = th_randn(C, 1), *st0 = th_randn(ns, 1);
    float *dy = th_randn(nx, 1), *dw = th_randn(nw, 1), *dbias = th_randn(C, 1);
    float *y = sq_alloc_floats(nx), *st1 = sq_alloc_floats(ns), *dx = sq_alloc_floats(nx), *dst = sq_alloc_floats(ns);
    float *gx = to_device(x, nx), *gw = to_device(w, nw), *gbias = to_device(bias, C), *gst0 = to_device(st0, ns);
    float *gdy = to_device(dy, nx), *gdw = to_device(dw, nw), *gdbias = to_device(dbias, C);
    float *gy = device_poisoned(nx), *gst1 = device_poisoned(ns), *gdx = device_poisoned(nx), *gdst = device_poisoned(ns);
    const float *s0 = with_state ? st0 : NULL, *gs0 = with_state ? gst0 : NULL;
    sq_conv1d_fwd(B, T, C, W, x, w, with_bias ? bias : NULL, s0, y, st1);
    sq_conv1d_bwd(B, T, C, W, x, w, s0, dy, dx, dw, with_bias ? dbias : NULL, want_dstate ? dst : NULL);
    th_expect_ok("cuda conv1d fwd", sq_cuda_conv1d_fwd(B, T, C, W, gx, gw, with_bias ? gbias : NULL, gs0, gy, gst1));
    th_expect_ok("cuda conv1d bwd", sq_cuda_conv1d_bwd(B, T, C, W, gx, gw, gs0, gdy, gdx, gdw,
                                                       with_bias ? gdbias : NULL, want_dstate ? gdst : NULL));
    char what[160];
    snprintf(what, sizeof what, "cuda conv1d B%d T%d C%d W%d%s%s%s: y, state1, dx%s", B, T, C, W,
             with_state ? " state0" : "", with_bias ? " bias" : "", want_dstate ? " dstate0" : "",
             want_dstate && W > 1 ? ", dstate0" : "");
    double e = fmax(err_vs(gy, y, nx), err_vs(gdx, dx, nx));
    if (W > 1) e = fmax(e, err_vs(gst1, st1, ns));
    if (want_dstate && W > 1) e = fmax(e, err_vs(gdst, dst, ns));
    /* y and dx are sums of W products: the GPU contracts them into FMAs, and
     * at C = T = 1 one cancelling sum is the whole norm, so the sums' bound */
    th_close(what, e, TOL_RED);
    snprintf(what, sizeof what, "cuda conv1d B%d T%d C%d W%d: dw, dbias accumulated", B, T, C, W);
    th_close(what, fmax(err_vs(gdw, dw, nw), err_vs(gdbias, dbias, C)), TOL_RED);
    if (with_state && W > 1) { /* state1 == state0: the state is advanced in place */
        sq_cuda_fill(gy, NAN, nx);
        th_expect_ok("cuda conv1d fwd in place", sq_cuda_conv1d_fwd(B, T, C, W, gx, gw, NULL, gst0, gy, gst0));
        sq_conv1d_fwd(B, T, C, W, x, w, NULL, s0, y, NULL);
        snprintf(what, sizeof what, "cuda conv1d B%d T%d C%d W%d: state advanced in place, y", B, T, C, W);
        th_close(what, fmax(err_vs(gst0, st1, ns), err_vs(gy, y, nx)), TOL);
    }
    float *h[] = {x, w, bias, st0, dy, dw, dbias, y, st1, dx, dst};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) sq_free(h[i]);
    float *g[] = {gx, gw, gbias, gst0, gdy, gdw, gdbias, gy, gst1, gdx, gdst};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) sq_cuda_free(g[i]);
}

/* ---- embedding, RoPE, cross-entropy ---- */

static int all_nan(const float *dev, size_t n)
{
    float *h = sq_alloc_floats(n);
    th_expect_ok("download", sq_cuda_download(h, dev, n));
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= isnan(h[i]) != 0;
    sq_free(h);
    return ok;
}

/* A token outside [0, vocab) (at position at, value bad) is refused by both calls, which write nothing. */
static void check_embed_refusal(int N, int vocab, int D, const int32_t *tokens, int at, int bad, const float *gW,
                                const float *gdy, float *gdW)
{
    int32_t *t = malloc((size_t)N * sizeof(int32_t));
    memcpy(t, tokens, (size_t)N * sizeof(int32_t));
    t[at] = bad;
    int32_t *gt = tokens_device(t, N);
    float *gy = device_poisoned((size_t)N * D);
    char what[128];
    snprintf(what, sizeof what, "cuda embedding fwd refuses token %d at %d", bad, at);
    th_expect_error(what, sq_cuda_embed_fwd(N, vocab, D, gt, gW, gy), SQ_EINVAL);
    th_check(all_nan(gy, (size_t)N * D), "cuda embedding fwd: nothing written after a refusal");
    size_t nW = (size_t)vocab * D;
    float *before = sq_alloc_floats(nW), *after = sq_alloc_floats(nW);
    th_expect_ok("download", sq_cuda_download(before, gdW, nW));
    snprintf(what, sizeof what, "cuda embedding bwd refuses token %d at %d", bad, at);
    th_expect_error(what, sq_cuda_embed_bwd(N, vocab, D, gt, gdy, gdW), SQ_EINVAL);
    th_expect_ok("download", sq_cuda_download(after, gdW, nW));
    th_check(!memcmp(before, after, nW * sizeof(float)), "cuda embedding bwd: dW untouched after a refusal");
    sq_free(before), sq_free(after);
    sq_cuda_free(gy), sq_cuda_free(gt), free(t);
}

static void check_embed(int N, int vocab, int D)
{
    size_t ny = (size_t)N * D, nw = (size_t)vocab * D;
    int32_t *tok = malloc((size_t)N * sizeof(int32_t));
    for (int n = 0; n < N; n++) tok[n] = (int32_t)(sq_rng_u64(th_rng()) % (uint64_t)vocab);
    float *W = th_randn(nw, 1), *dy = th_randn(ny, 1), *dW = th_randn(nw, 1), *y = sq_alloc_floats(ny);
    int32_t *gt = tokens_device(tok, N);
    float *gW = to_device(W, nw), *gdy = to_device(dy, ny), *gdW = to_device(dW, nw), *gy = device_poisoned(ny);
    sq_embed_fwd(N, vocab, D, tok, W, y);
    sq_embed_bwd(N, vocab, D, tok, dy, dW);
    th_expect_ok("cuda embedding fwd", sq_cuda_embed_fwd(N, vocab, D, gt, gW, gy));
    th_expect_ok("cuda embedding bwd", sq_cuda_embed_bwd(N, vocab, D, gt, gdy, gdW));
    char what[128];
    snprintf(what, sizeof what, "cuda embedding N%d vocab%d D%d: y", N, vocab, D);
    close_dev(what, gy, y, ny, TOL);
    snprintf(what, sizeof what, "cuda embedding N%d vocab%d D%d: dW accumulated (repeated tokens)", N, vocab, D);
    close_dev(what, gdW, dW, nw, TOL_RED);
    check_embed_refusal(N, vocab, D, tok, N - 1, vocab, gW, gdy, gdW);
    check_embed_refusal(N, vocab, D, tok, 0, -1, gW, gdy, gdW);
    free(tok), sq_free(W), sq_free(dy), sq_free(dW), sq_free(y);
    sq_cuda_free(gt), sq_cuda_free(gW), sq_cuda_free(gdy), sq_cuda_free(gdW), sq_cuda_free(gy);
}

/* fwd, bwd, and fwd in place (y == x). */
static void check_rope(int B, int T, int H, int D, int pos0)
{
    size_t n = (size_t)B * T * H * D;
    float *x = th_randn(n, 1), *dy = th_randn(n, 1), *y = sq_alloc_floats(n), *dx = sq_alloc_floats(n);
    float *gx = to_device(x, n), *gdy = to_device(dy, n), *gy = device_poisoned(n), *gdx = device_poisoned(n);
    sq_rope_fwd(B, T, H, D, pos0, 10000.0f, x, y);
    sq_rope_bwd(B, T, H, D, pos0, 10000.0f, dy, dx);
    th_expect_ok("cuda rope fwd", sq_cuda_rope_fwd(B, T, H, D, pos0, 10000.0f, gx, gy));
    th_expect_ok("cuda rope bwd", sq_cuda_rope_bwd(B, T, H, D, pos0, 10000.0f, gdy, gdx));
    th_expect_ok("cuda rope fwd in place", sq_cuda_rope_fwd(B, T, H, D, pos0, 10000.0f, gx, gx));
    char what[128];
    snprintf(what, sizeof what, "cuda rope B%d T%d H%d D%d pos0 %d: y, dx, y in place", B, T, H, D, pos0);
    th_close(what, fmax(fmax(err_vs(gy, y, n), err_vs(gdx, dx, n)), err_vs(gx, y, n)), TOL);
    sq_free(x), sq_free(dy), sq_free(y), sq_free(dx);
    sq_cuda_free(gx), sq_cuda_free(gdy), sq_cuda_free(gy), sq_cuda_free(gdx);
}

/* ignore: 0 every target counted, 1 some rows ignored (targets < 0), 2 all ignored. */
static void check_xent(int N, int V, int ignore)
{
    size_t n = (size_t)N * V;
    int32_t *tg = malloc((size_t)N * sizeof(int32_t));
    for (int i = 0; i < N; i++) {
        tg[i] = (int32_t)(sq_rng_u64(th_rng()) % (uint64_t)V);
        if (ignore == 2 || (ignore == 1 && i % 3 == 1)) tg[i] = i % 2 ? -1 : -7;
    }
    float *z = th_randn(n, 3), *dz = sq_alloc_floats(n), loss = 0, gloss = -1, gloss2 = -1;
    int cnt = -1, gcnt = -2;
    float *gz = to_device(z, n), *gdz = device_poisoned(n);
    int32_t *gt = tokens_device(tg, N);
    th_expect_ok("cpu xent", sq_xent_fwd_bwd(N, V, z, tg, &loss, dz, &cnt));
    th_expect_ok("cuda xent", sq_cuda_xent_fwd_bwd(N, V, gz, gt, &gloss, gdz, &gcnt));
    th_expect_ok("cuda xent without dlogits, count", sq_cuda_xent_fwd_bwd(N, V, gz, gt, &gloss2, NULL, NULL));
    char what[128];
    snprintf(what, sizeof what, "cuda xent N%d V%d ignore %d: loss (twice), dlogits", N, V, ignore);
    double el = loss != 0 ? fabs((double)gloss - loss) / fabs(loss) : fabs(gloss);
    el = fmax(el, loss != 0 ? fabs((double)gloss2 - loss) / fabs(loss) : fabs(gloss2));
    th_close(what, fmax(el, err_vs(gdz, dz, n)), TOL);
    th_check(gcnt == cnt, "cuda xent N%d V%d ignore %d: count %d (cpu %d)", N, V, ignore, gcnt, cnt);
    tg[N - 1] = V; /* a target beyond the vocabulary */
    th_expect_ok("upload i32", sq_cuda_upload_i32(gt, tg, N));
    th_expect_error("cuda xent refuses a target >= V", sq_cuda_xent_fwd_bwd(N, V, gz, gt, &gloss, gdz, &gcnt),
                    SQ_EINVAL);
    free(tg), sq_free(z), sq_free(dz);
    sq_cuda_free(gz), sq_cuda_free(gdz), sq_cuda_free(gt);
}

/* ---- optimizer ---- */

/* Four AdamW steps with fresh gradients, p, m, v compared after the last. */
static void check_adamw(size_t n, int decay)
{
    sq_adamw_cfg c = sq_adamw_defaults();
    float *p = th_randn(n, 1), *m = th_randn(n, 0.1f), *v = th_randu(n, 0, 0.1f);
    float *gp = to_device(p, n), *gm = to_device(m, n), *gv = to_device(v, n), *gg = device_poisoned(n);
    for (int t = 1; t <= 4; t++) {
        float *g = th_randn(n, 1), lr = 0.01f / t;
        th_expect_ok("upload", sq_cuda_upload(gg, g, n));
        sq_adamw_update(&c, t, lr, decay, p, g, m, v, n);
        th_expect_ok("cuda adamw", sq_cuda_adamw_update(&c, t, lr, decay, gp, gg, gm, gv, n));
        sq_free(g);
    }
    char what[96];
    snprintf(what, sizeof what, "cuda adamw n=%zu decay %d, 4 steps: p, m, v", n, decay);
    th_close(what, fmax(fmax(err_vs(gp, p, n), err_vs(gm, m, n)), err_vs(gv, v, n)), TOL);
    th_expect_error("cuda adamw refuses step 0", sq_cuda_adamw_update(&c, 0, 0.01f, decay, gp, gg, gm, gv, n),
                    SQ_EINVAL);
    sq_free(p), sq_free(m), sq_free(v);
    sq_cuda_free(gp), sq_cuda_free(gm), sq_cuda_free(gv), sq_cuda_free(gg);
}

enum { NBUF = 5 };

/* The global norm of five buffers (one empty and NULL), then clipping at
 * half the norm (scales), twice the norm and 0 (no clipping). */
static void check_clip(int small)
{
    const size_t sz[NBUF] = {1, 0, 1000, small ? 7001 : 300001, 257};
    float *h[NBUF], *dv[NBUF];
    for (int b = 0; b < NBUF; b++) h[b] = sz[b] ? th_randn(sz[b], 1) : NULL;
    for (int b = 0; b < NBUF; b++) dv[b] = sz[b] ? to_device(h[b], sz[b]) : NULL;
    double norm = sq_global_norm(h, sz, NBUF), gnorm = sq_cuda_global_norm(dv, sz, NBUF);
    th_close("cuda global norm (5 buffers, one empty)", fabs(gnorm - norm) / norm, 1e-10);
    const double limits[3] = {0.5 * norm, 2 * norm, 0};
    for (int l = 0; l < 3; l++) {
        float *hc[NBUF], *dc[NBUF];
        for (int b = 0; b < NBUF; b++) hc[b] = sz[b] ? copy_of(h[b], sz[b]) : NULL;
        for (int b = 0; b < NBUF; b++) dc[b] = sz[b] ? to_device(h[b], sz[b]) : NULL;
        double n1 = sq_clip_global_norm(hc, sz, NBUF, limits[l]), n2 = sq_cuda_clip_global_norm(dc, sz, NBUF, limits[l]);
        double e = fabs(n2 - n1) / n1;
        for (int b = 0; b < NBUF; b++)
            if (sz[b]) e = fmax(e, err_vs(dc[b], hc[b], sz[b]));
        char what[96];
        snprintf(what, sizeof what, "cuda clip global norm at %g x the norm: norm, buffers", l < 2 ? 0.5 * (1 + 3 * l) : 0.0);
        th_close(what, e, TOL);
        for (int b = 0; b < NBUF; b++) sq_free(hc[b]), sq_cuda_free(dc[b]);
    }
    sq_clear_error();
    th_check(isnan(sq_cuda_global_norm(dv, sz, -1)) && strcmp(sq_last_error(), "no error") != 0,
             "cuda global norm refuses k < 0 (NaN and a message)");
    sq_clear_error();
    for (int b = 0; b < NBUF; b++) sq_free(h[b]), sq_cuda_free(dv[b]);
}

/* ---- refusals ---- */

static void check_refusals(void)
{
    float *d = device_poisoned(64);
    th_expect_error("cuda linear N = 0", sq_cuda_linear_fwd(0, 4, 4, d, d, NULL, d), SQ_EINVAL);
    th_expect_error("cuda linear NULL W", sq_cuda_linear_bwd(2, 4, 4, d, NULL, d, d, d, NULL), SQ_EINVAL);
    th_expect_error("cuda norm center 2", sq_cuda_norm_fwd(2, 1, 4, 2, 1e-5f, d, NULL, NULL, d, d, d), SQ_EINVAL);
    th_expect_error("cuda norm eps 0", sq_cuda_norm_fwd(2, 1, 4, 0, 0, d, NULL, NULL, d, NULL, d), SQ_EINVAL);
    th_expect_error("cuda norm center, NULL mu", sq_cuda_norm_fwd(2, 1, 4, 1, 1e-5f, d, NULL, NULL, d, NULL, d),
                    SQ_EINVAL);
    th_expect_error("cuda l2norm D = 0", sq_cuda_l2norm_fwd(2, 0, 1e-6f, d, d, d), SQ_EINVAL);
    th_expect_error("cuda silu n = 0", sq_cuda_silu_fwd(0, d, d), SQ_EINVAL);
    th_expect_error("cuda swiglu bwd NULL db", sq_cuda_swiglu_bwd(4, d, d, d, d, NULL), SQ_EINVAL);
    th_expect_error("cuda conv1d W = 0", sq_cuda_conv1d_fwd(1, 4, 4, 0, d, d, NULL, NULL, d, NULL), SQ_EINVAL);
    th_expect_error("cuda conv1d bwd NULL dw", sq_cuda_conv1d_bwd(1, 4, 4, 2, d, d, NULL, d, d, NULL, NULL, NULL),
                    SQ_EINVAL);
    th_expect_error("cuda rope odd D", sq_cuda_rope_fwd(1, 2, 1, 5, 0, 10000, d, d), SQ_EINVAL);
    th_expect_error("cuda rope base 1", sq_cuda_rope_fwd(1, 2, 1, 4, 0, 1, d, d), SQ_EINVAL);
    th_expect_error("cuda xent NULL loss", sq_cuda_xent_fwd_bwd(2, 4, d, (const int32_t *)d, NULL, d, NULL), SQ_EINVAL);
    sq_cuda_free(d);
}

void cuda_test_layers(int small)
{
    const size_t act_n[] = {1, 1000, 4099};
    for (int i = 0; i < 3; i++) check_act(act_n[i]);
    check_linear(1, 1, 1, 1);
    check_linear(1, 37, 5, 1);
    check_linear(67, 33, 129, 0);
    check_linear(67, 33, 129, 1);
    check_linear(300, 257, 70, 1);
    if (!small) check_linear(1024, 512, 1536, 1);
    check_norm(1, 1, 7, 1, 1, 1);
    check_norm(5, 1, 33, 0, 1, 0);
    check_norm(37, 4, 50, 1, 1, 1);
    check_norm(37, 4, 50, 0, 0, 0);
    check_norm(130, 3, 64, 1, 0, 1);
    check_norm(64, 1, 1000, 0, 1, 1);
    check_norm(200, 8, 16, 1, 1, 0);
    check_l2norm(1, 1);
    check_l2norm(1, 5);
    check_l2norm(77, 64);
    check_l2norm(33, 1000);
    check_conv(1, 1, 1, 1, 0, 0, 0);
    check_conv(1, 1, 1, 4, 1, 1, 1);
    check_conv(2, 37, 33, 4, 1, 1, 1);
    check_conv(3, 5, 70, 4, 0, 1, 1);
    check_conv(2, 2, 40, 4, 1, 1, 1); /* T < W-1: state1 keeps part of state0 */
    check_conv(1, 300, 257, 4, 0, 0, 0);
    check_conv(2, 50, 64, 1, 1, 1, 1);
    check_conv(2, 3, 5, 3, 1, 0, 0);
    check_embed(1, 1, 1);
    check_embed(50, 7, 33);
    check_embed(300, 1000, 64);
    check_embed(1000, 3, 257);
    check_rope(1, 1, 1, 2, 0);
    check_rope(2, 37, 3, 64, 0);
    check_rope(1, 5, 4, 18, 1000);
    check_xent(1, 1, 0);
    check_xent(1, 5, 0);
    check_xent(200, 130, 0);
    check_xent(37, 1000, 1);
    check_xent(9, 33, 2);
    if (!small) check_xent(16, 50000, 1);
    check_adamw(1, 1);
    check_adamw(1000, 0);
    check_adamw(70001, 1);
    check_clip(small);
    check_refusals();
}
