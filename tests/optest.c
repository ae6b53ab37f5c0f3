#include "optest.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

static size_t in_size(const ot_tensor *t, sq_dims d) { return t->per_t ? (size_t)d.B * d.T * t->per_t : t->fixed; }
static size_t st_size(const ot_state *s, sq_dims d) { return (size_t)d.B * s->per_b; }
static size_t out_size(const ot_op *op, sq_dims d) { return (size_t)d.B * d.T * op->out_per_t; }

/* U(a, b), or N(a, b²) (mean a, std b). */
static float *draw_tensor(int uniform, float a, float b, size_t n)
{
    float *x = uniform ? th_randu(n, a, b) : th_randn(n, b);
    if (!uniform)
        for (size_t i = 0; i < n; i++) x[i] += a;
    return x;
}

typedef struct {
    float *in[OT_MAX], *s0[OT_MAX];
    double *din[OT_MAX], *ds0[OT_MAX];
} inputs;

static inputs make_inputs(const ot_op *op, sq_dims d, int with_state)
{
    inputs x;
    memset(&x, 0, sizeof x);
    for (int i = 0; i < op->n_in; i++) {
        const ot_tensor *t = &op->in[i];
        x.in[i] = draw_tensor(t->uniform, t->a, t->b, in_size(t, d));
        x.din[i] = th_to_double(x.in[i], in_size(t, d));
    }
    for (int i = 0; with_state && i < op->n_state; i++) {
        const ot_state *s = &op->st[i];
        x.s0[i] = draw_tensor(s->uniform, s->a, s->b, st_size(s, d));
        x.ds0[i] = th_to_double(x.s0[i], st_size(s, d));
    }
    return x;
}

static void free_inputs(const ot_op *op, inputs *x)
{
    for (int i = 0; i < OT_MAX; i++) {
        sq_free(x->in[i]);
        sq_free(x->s0[i]);
        sq_free(x->din[i]);
        sq_free(x->ds0[i]);
    }
}

static float **alloc_states(const ot_op *op, sq_dims d, float **arr)
{
    for (int i = 0; i < op->n_state; i++) {
        arr[i] = sq_alloc_floats(st_size(&op->st[i], d));
        th_poison(arr[i], st_size(&op->st[i], d));
    }
    return arr;
}

static void free_states(const ot_op *op, float **arr)
{
    for (int i = 0; i < op->n_state; i++) sq_free(arr[i]);
}

int ot_check_fwd(const ot_op *op, sq_dims d, const char *label, int with_state, double tol)
{
    inputs x = make_inputs(op, d, with_state);
    size_t no = out_size(op, d);
    float *out = sq_alloc_floats(no), *s1[OT_MAX];
    th_poison(out, no);
    alloc_states(op, d, s1);
    double *ro = sq_alloc_doubles(no), *rs1[OT_MAX];
    for (int i = 0; i < op->n_state; i++) rs1[i] = sq_alloc_doubles(st_size(&op->st[i], d));
    int fails = 0;
    char what[200];
    snprintf(what, sizeof what, "%s %s B%d T%d H%d K%d V%d%s: fwd", op->name, label, d.B, d.T, d.H, d.K, d.V,
             with_state ? " +state" : "");
    int rc = op->fwd(d, op->opts, x.in, with_state ? x.s0 : NULL, out, s1);
    if (!th_expect_ok(what, rc)) fails++;
    else {
        op->ref(d, op->opts, x.din, with_state ? x.ds0 : NULL, ro, rs1);
        fails += !th_close(what, th_rel_err(out, ro, no), tol);
        for (int i = 0; i < op->n_state; i++) {
            snprintf(what, sizeof what, "%s %s B%d T%d: final %s", op->name, label, d.B, d.T, op->st[i].name);
            fails += !th_close(what, th_rel_err(s1[i], rs1[i], st_size(&op->st[i], d)), tol);
        }
    }
    sq_free(out);
    sq_free(ro);
    free_states(op, s1);
    for (int i = 0; i < op->n_state; i++) sq_free(rs1[i]);
    free_inputs(op, &x);
    return fails;
}

/* ---- finite differences --------------------------------------------- */

typedef struct {
    const ot_op *op;
    sq_dims d;
    inputs *x;
    double *Wo, *Ws[OT_MAX], *out, *s1[OT_MAX];
} fdctx;

/* L = Σ Wo⊙out + Σ_{states in the loss} Ws⊙s1 */
static double fd_loss(void *p)
{
    fdctx *f = p;
    f->op->ref(f->d, f->op->opts, f->x->din, f->x->ds0, f->out, f->s1);
    double L = th_dot(f->Wo, f->out, out_size(f->op, f->d));
    for (int i = 0; i < f->op->n_state; i++)
        if (f->op->st[i].in_loss) L += th_dot(f->Ws[i], f->s1[i], st_size(&f->op->st[i], f->d));
    return L;
}

int ot_check_grads(const ot_op *op, sq_dims d, const char *label, double tol)
{
    inputs x = make_inputs(op, d, 1);
    size_t no = out_size(op, d);
    fdctx f = {op, d, &x, NULL, {0}, sq_alloc_doubles(no), {0}};
    float *Wo = th_randn(no, 1), *Ws[OT_MAX] = {0}, *gin[OT_MAX], *ds0[OT_MAX];
    f.Wo = th_to_double(Wo, no);
    for (int i = 0; i < op->n_state; i++) {
        size_t n = st_size(&op->st[i], d);
        Ws[i] = th_randn(n, 0.5f);
        if (!op->st[i].in_loss) memset(Ws[i], 0, n * sizeof(float));
        f.Ws[i] = th_to_double(Ws[i], n);
        f.s1[i] = sq_alloc_doubles(n);
        ds0[i] = sq_alloc_floats(n);
        th_poison(ds0[i], n);
    }
    for (int i = 0; i < op->n_in; i++) {
        gin[i] = sq_alloc_floats(in_size(&op->in[i], d));
        th_poison(gin[i], in_size(&op->in[i], d));
    }
    int fails = 0;
    char what[200];
    snprintf(what, sizeof what, "%s %s: bwd", op->name, label);
    if (!th_expect_ok(what, op->bwd(d, op->opts, x.in, x.s0, Wo, Ws, gin, ds0))) fails++;
    else {
        for (int i = 0; i < op->n_in + op->n_state; i++) {
            int is_in = i < op->n_in;
            size_t n = is_in ? in_size(&op->in[i], d) : st_size(&op->st[i - op->n_in], d);
            double *xv = is_in ? x.din[i] : x.ds0[i - op->n_in], *fd = sq_alloc_doubles(n);
            th_fd_grad(fd_loss, &f, xv, n, 1e-6, fd);
            snprintf(what, sizeof what, "%s %s T%d K%d V%d: grad %s%s", op->name, label, d.T, d.K, d.V,
                     is_in ? "" : "initial ", is_in ? op->in[i].name : op->st[i - op->n_in].name);
            fails += !th_close(what, th_rel_err(is_in ? gin[i] : ds0[i - op->n_in], fd, n), tol);
            sq_free(fd);
        }
    }
    for (int i = 0; i < op->n_in; i++) sq_free(gin[i]);
    for (int i = 0; i < op->n_state; i++) {
        sq_free(Ws[i]); sq_free(f.Ws[i]); sq_free(f.s1[i]); sq_free(ds0[i]);
    }
    sq_free(Wo); sq_free(f.Wo); sq_free(f.out);
    free_inputs(op, &x);
    return fails;
}

/* ---- state carrying ------------------------------------------------------ */

/* The inputs of rows [t0, t0+n): time-sliced tensors copied, fixed shared. */
static void piece_inputs(const ot_op *op, sq_dims d, float **full, int t0, int n, float **part)
{
    for (int i = 0; i < op->n_in; i++) {
        if (!op->in[i].per_t) {
            part[i] = full[i];
            continue;
        }
        part[i] = th_slice_time(full[i], d, op->in[i].per_t, t0, n);
    }
}

static void free_piece(const ot_op *op, float **part)
{
    for (int i = 0; i < op->n_in; i++)
        if (op->in[i].per_t) sq_free(part[i]);
}

static void copy_states(const ot_op *op, sq_dims d, float **dst, float **src)
{
    for (int i = 0; i < op->n_state; i++) memcpy(dst[i], src[i], st_size(&op->st[i], d) * sizeof(float));
}

static double states_err(const ot_op *op, sq_dims d, float **a, float **b)
{
    double e = 0;
    for (int i = 0; i < op->n_state; i++) e = fmax(e, th_rel_err_ff(a[i], b[i], st_size(&op->st[i], d)));
    return e;
}

int ot_check_carry(const ot_op *op, sq_dims d, int T1, const char *label)
{
    inputs x = make_inputs(op, d, 1);
    size_t no = out_size(op, d);
    int w = op->out_per_t, fails = 0, rc;
    float *o_all = sq_alloc_floats(no), *o_pc = sq_alloc_floats(no), *o_st = sq_alloc_floats(no);
    float *s_all[OT_MAX], *s_pc[OT_MAX], *s_st[OT_MAX], *part[OT_MAX];
    alloc_states(op, d, s_all);
    alloc_states(op, d, s_pc);
    alloc_states(op, d, s_st);
    copy_states(op, d, s_pc, x.s0);
    copy_states(op, d, s_st, x.s0);
    rc = op->fwd(d, op->opts, x.in, x.s0, o_all, s_all);
    int lens[2] = {T1, d.T - T1};
    for (int p = 0, t0 = 0; p < 2; t0 += lens[p], p++) {
        sq_dims dp = d;
        dp.T = lens[p];
        float *op_ = sq_alloc_floats((size_t)d.B * lens[p] * w);
        piece_inputs(op, d, x.in, t0, lens[p], part);
        rc |= op->fwd(dp, op->opts, part, s_pc, op_, s_pc); /* the state carried in place */
        th_put_time(o_pc, d, w, t0, lens[p], op_);
        free_piece(op, part);
        sq_free(op_);
    }
    char what[200];
    snprintf(what, sizeof what, "%s %s: carry %d+%d runs", op->name, label, T1, d.T - T1);
    fails += !th_expect_ok(what, rc);
    snprintf(what, sizeof what, "%s %s: fwd(%d) == fwd(%d)+fwd(%d), outputs and state", op->name, label, d.T, T1, d.T - T1);
    fails += !th_close(what, fmax(th_rel_err_ff(o_pc, o_all, no), states_err(op, d, s_pc, s_all)), 1e-5);
    if (op->step) {
        rc = 0;
        for (int t = 0; t < d.T; t++) {
            sq_dims d1 = d;
            d1.T = 1;
            float *o1 = sq_alloc_floats((size_t)d.B * w);
            piece_inputs(op, d, x.in, t, 1, part);
            rc |= op->step(d1, op->opts, part, s_st, o1);
            th_put_time(o_st, d, w, t, 1, o1);
            free_piece(op, part);
            sq_free(o1);
        }
        snprintf(what, sizeof what, "%s %s: %d steps == chunkwise, outputs and state", op->name, label, d.T);
        fails += !th_expect_ok(what, rc);
        fails += !th_close(what, fmax(th_rel_err_ff(o_st, o_all, no), states_err(op, d, s_st, s_all)), 1e-5);
    }

    /* Backward carried: piece 2 with ds1, its ds0 fed to piece 1 as ds1. */
    float *dout = th_randn(no, 1), *ds1[OT_MAX], *gw[OT_MAX], *gp[OT_MAX], *ds0w[OT_MAX], *dsm[OT_MAX], *ds0p[OT_MAX];
    for (int i = 0; i < op->n_state; i++) {
        ds1[i] = th_randn(st_size(&op->st[i], d), 0.5f);
        if (!op->st[i].in_loss) memset(ds1[i], 0, st_size(&op->st[i], d) * sizeof(float));
    }
    alloc_states(op, d, ds0w);
    alloc_states(op, d, dsm);
    alloc_states(op, d, ds0p);
    for (int i = 0; i < op->n_in; i++) {
        gw[i] = sq_alloc_floats(in_size(&op->in[i], d));
        gp[i] = sq_alloc_floats(in_size(&op->in[i], d));
    }
    rc = op->bwd(d, op->opts, x.in, x.s0, dout, ds1, gw, ds0w);
    float *smid[OT_MAX], *p1[OT_MAX], *p2[OT_MAX], *g1[OT_MAX], *g2[OT_MAX];
    alloc_states(op, d, smid);
    sq_dims d1 = d, d2 = d;
    d1.T = T1;
    d2.T = d.T - T1;
    piece_inputs(op, d, x.in, 0, T1, p1);
    piece_inputs(op, d, x.in, T1, d.T - T1, p2);
    float *otmp = sq_alloc_floats(no), *do1 = th_slice_time(dout, d, w, 0, T1),
          *do2 = th_slice_time(dout, d, w, T1, d.T - T1);
    rc |= op->fwd(d1, op->opts, p1, x.s0, otmp, smid);
    for (int i = 0; i < op->n_in; i++) {
        size_t n1 = op->in[i].per_t ? (size_t)d.B * T1 * op->in[i].per_t : op->in[i].fixed;
        size_t n2 = op->in[i].per_t ? (size_t)d.B * (d.T - T1) * op->in[i].per_t : op->in[i].fixed;
        g1[i] = sq_alloc_floats(n1);
        g2[i] = sq_alloc_floats(n2);
    }
    rc |= op->bwd(d2, op->opts, p2, smid, do2, ds1, g2, dsm);
    rc |= op->bwd(d1, op->opts, p1, x.s0, do1, dsm, g1, ds0p);
    double e = states_err(op, d, ds0p, ds0w);
    for (int i = 0; i < op->n_in; i++) {
        if (op->in[i].per_t) {
            th_put_time(gp[i], d, op->in[i].per_t, 0, T1, g1[i]);
            th_put_time(gp[i], d, op->in[i].per_t, T1, d.T - T1, g2[i]);
        } else
            for (size_t j = 0; j < op->in[i].fixed; j++) gp[i][j] = g1[i][j] + g2[i][j];
        e = fmax(e, th_rel_err_ff(gp[i], gw[i], in_size(&op->in[i], d)));
    }
    snprintf(what, sizeof what, "%s %s: bwd carried over %d+%d == whole (all grads, initial state)", op->name, label,
             T1, d.T - T1);
    fails += !th_expect_ok(what, rc);
    fails += !th_close(what, e, 1e-4);

    free_piece(op, p1);
    free_piece(op, p2);
    for (int i = 0; i < op->n_in; i++) {
        sq_free(gw[i]); sq_free(gp[i]); sq_free(g1[i]); sq_free(g2[i]);
    }
    for (int i = 0; i < op->n_state; i++) sq_free(ds1[i]);
    free_states(op, ds0w); free_states(op, dsm); free_states(op, ds0p); free_states(op, smid);
    free_states(op, s_all); free_states(op, s_pc); free_states(op, s_st);
    sq_free(otmp); sq_free(do1); sq_free(do2); sq_free(dout);
    sq_free(o_all); sq_free(o_pc); sq_free(o_st);
    free_inputs(op, &x);
    return fails;
}
