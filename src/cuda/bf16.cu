/* bf16 inputs and outputs for mLSTM, SSD, Gated DeltaNet, sLSTM and linear
 * attention (cuda_bf16.h), and the device bf16 arrays' conversions.
 *
 * GDN is the exception: gdn.cu reads q, k, v and dout as bf16 and writes
 * out, dq, dk, dv as bf16 itself (cu_gdn_fwd_bf16; no staging, its
 * workspace is the float32 operator's).
 *
 * Every other entry point widens its bf16 tensors (exactly: a bf16 is the upper
 * half of a float32) into a float32 staging area, runs the float32
 * operator on the staging with the float32 arguments passed through as
 * they are, and rounds the operator's float32 output (or, in the backward,
 * the gradients of the bf16 tensors) to bf16, nearest even. The float32
 * operator's matrix products run on the TF32 tensor cores meanwhile
 * (cu_op_tf32): the result is the float32 operator's on the bf16 values
 * with 10-bit products, plus one rounding, well inside bf16's 1e-2.
 *
 * Workspace: the staging comes first, the float32 operator's workspace
 * after it:
 *   sq_cuda_<op>_bf16_work_floats = staging of the backward (the larger)
 *                                   + sq_cuda_<op>_work_floats (the float32 operator's)
 * With `work` NULL a call allocates its staging alone (the float32
 * operator then allocates its own) and frees it after the device is done.
 *
 * The checks made here (dims, chunk, groups, the bf16 tensors' pointers)
 * come before any conversion; the float32 operator checks the rest (gates,
 * parameters, states), and an error there leaves the caller's bf16 arrays
 * untouched. */
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "cuda.h"
#include "cuda_internal.h"
#include "scalar_chunk.h"

/* ---- conversions ---------------------------------------------------------- */

/* dst = src widened (exact). */
__global__ static void widen_kernel(float *dst, const sq_bf16 *src, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __bfloat162float(__ushort_as_bfloat16(src[i]));
}

/* dst = src rounded to bf16, nearest even. */
__global__ static void round_kernel(sq_bf16 *dst, const float *src, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __bfloat16_as_ushort(__float2bfloat16_rn(src[i]));
}

/* Blocks of 256 threads for n elements of a grid-stride loop (1 to 4096). */
static unsigned conv_blocks(size_t n)
{
    size_t b = (n + 255) / 256;
    return (unsigned)(b < 1 ? 1 : b > 4096 ? 4096 : b);
}

/* n bf16 widened into float32 (device arrays). */
static int widen(const char *op, float *dst, const sq_bf16 *src, size_t n)
{
    if (!n) return SQ_OK;
    widen_kernel<<<conv_blocks(n), 256>>>(dst, src, n);
    return cu_check(op, cudaGetLastError());
}

/* n float32 rounded into bf16 (device arrays). */
static int round_bf16(const char *op, sq_bf16 *dst, const float *src, size_t n)
{
    if (!n) return SQ_OK;
    round_kernel<<<conv_blocks(n), 256>>>(dst, src, n);
    return cu_check(op, cudaGetLastError());
}

extern "C" int sq_cuda_malloc_bf16(sq_bf16 **p, size_t n)
{
    *p = NULL;
    if (cudaMalloc((void **)p, (n ? n : 1) * sizeof(sq_bf16)) != cudaSuccess) {
        *p = NULL;
        return sq_fail(SQ_ENOMEM, "cuda: out of device memory for %zu bf16", n);
    }
    return SQ_OK;
}

extern "C" int sq_cuda_to_bf16(sq_bf16 *dst, const float *src, size_t n)
{
    return round_bf16("cuda to bf16", dst, src, n);
}

extern "C" int sq_cuda_from_bf16(float *dst, const sq_bf16 *src, size_t n)
{
    return widen("cuda from bf16", dst, src, n);
}

extern "C" int sq_cuda_upload_bf16(sq_bf16 *dst, const sq_bf16 *src, size_t n)
{
    return cu_check("cuda upload bf16", cudaMemcpy(dst, src, n * sizeof(sq_bf16), cudaMemcpyHostToDevice));
}

extern "C" int sq_cuda_download_bf16(sq_bf16 *dst, const sq_bf16 *src, size_t n)
{
    return cu_check("cuda download bf16", cudaMemcpy(dst, src, n * sizeof(sq_bf16), cudaMemcpyDeviceToHost));
}

/* ---- the staging of one call ------------------------------------------------
 * Float32 copies of up to three bf16 inputs (q, k, v; x, Bm, Cm; gx), of the
 * output (forward) or of its gradient (backward), and in the backward of
 * the three inputs' gradients, one after another in that order. */

typedef struct {
    size_t in[3]; /* floats of each bf16 input (0: absent) */
    size_t out;   /* floats of the output, and of its gradient */
} bf_shape;

typedef struct {
    float *in[3], *out, *grad[3];
} bf_stage;

/* One call's staging, where it lives, and the float32 operator's workspace
 * (NULL: the operator allocates its own). */
typedef struct {
    bf_shape s;
    bf_stage st;
    float *owned, *opwork;
    int tf32_before; /* cu_op_tf32's setting before the call, restored at its end */
} bf_call;

static size_t stage_floats(const bf_shape *s, int bwd)
{
    size_t f = cu_r64(s->out);
    for (int i = 0; i < 3; i++) f += (bwd ? 2 : 1) * cu_r64(s->in[i]);
    return f;
}

static bf_stage stage_carve(const bf_shape *s, float *p, int bwd)
{
    bf_stage st = {{NULL, NULL, NULL}, NULL, {NULL, NULL, NULL}};
    for (int i = 0; i < 3; i++) st.in[i] = s->in[i] ? cu_take(&p, s->in[i]) : NULL;
    st.out = cu_take(&p, s->out);
    for (int i = 0; bwd && i < 3; i++) st.grad[i] = s->in[i] ? cu_take(&p, s->in[i]) : NULL;
    return st;
}

/* Frees an owned staging after the device is done with it; keeps the first error. */
static int stage_release(const char *op, float *owned, int rc)
{
    if (!owned) return rc;
    int e = cu_check(op, cudaDeviceSynchronize());
    sq_cuda_free(owned);
    return rc ? rc : e;
}

/* Ends a call: the products' mode restored, the staging released. */
static int bf_finish(const char *op, bf_call *c, int rc)
{
    cu_op_tf32(c->tf32_before);
    return stage_release(op, c->owned, rc);
}

/* Starts a call: places the staging (at the front of `work`, the float32
 * operator's workspace after it; or in an allocation of its own) and widens
 * the bf16 inputs src[0..3) and, in the backward, dout into it. tf32: the
 * float32 operator's products on the TF32 tensor cores (not the mLSTM's:
 * its normalizer divides by n̄·q, and TF32's rounding of S̄ (float32 n̄)
 * measured up to 2e-2 where one step dominates the state and q·k is small). */
static int bf_begin(const char *op, const bf_shape *s, int bwd, const sq_bf16 *const src[3], const sq_bf16 *dout,
                    float *work, int tf32, bf_call *c)
{
    size_t n = stage_floats(s, bwd);
    int rc;
    c->s = *s;
    c->owned = NULL;
    c->opwork = work ? work + n : NULL;
    if (!work && (rc = sq_cuda_malloc(&c->owned, n))) return rc;
    c->st = stage_carve(s, work ? work : c->owned, bwd);
    rc = SQ_OK;
    for (int i = 0; !rc && i < 3; i++) rc = widen(op, c->st.in[i], src[i], s->in[i]);
    if (!rc && bwd) rc = widen(op, c->st.out, dout, s->out);
    if (rc) return stage_release(op, c->owned, rc);
    c->tf32_before = cu_op_tf32(tf32);
    return SQ_OK;
}

/* Ends a forward: the float32 output rounded into out (when the operator's rc is SQ_OK). */
static int bf_end_fwd(const char *op, bf_call *c, int rc, sq_bf16 *out)
{
    if (!rc) rc = round_bf16(op, out, c->st.out, c->s.out);
    return bf_finish(op, c, rc);
}

/* Ends a backward: the inputs' float32 gradients rounded into grad[0..3). */
static int bf_end_bwd(const char *op, bf_call *c, int rc, sq_bf16 *const grad[3])
{
    for (int i = 0; !rc && i < 3; i++) rc = round_bf16(op, grad[i], c->st.grad[i], c->s.in[i]);
    return bf_finish(op, c, rc);
}

/* ---- shapes and checks ---------------------------------------------------- */

/* B, T, H, K, V >= 1 (the work-size functions answer 0 otherwise, without an error). */
static int dims_ok(sq_dims d) { return d.B >= 1 && d.T >= 1 && d.H >= 1 && d.K >= 1 && d.V >= 1; }

/* mLSTM, GDN, linear attention: q, k [B,T,H,K], v and out [B,T,H,V]. */
static bf_shape qkv_shape(sq_dims d)
{
    size_t nq = (size_t)d.B * d.T * d.H * d.K, nv = (size_t)d.B * d.T * d.H * d.V;
    bf_shape s = {{nq, nq, nv}, nv};
    return s;
}

/* SSD: x [B,T,H,V], Bm, Cm [B,T,G,K], y [B,T,H,V]. */
static bf_shape ssd_shape(sq_dims d, int G)
{
    size_t nx = (size_t)d.B * d.T * d.H * d.V, nb = (size_t)d.B * d.T * G * d.K;
    bf_shape s = {{nx, nb, nb}, nx};
    return s;
}

/* sLSTM: gx [B,T,H,4,K], out [B,T,H,K]. */
static bf_shape slstm_shape(sq_dims d)
{
    size_t no = (size_t)d.B * d.T * d.H * d.K;
    bf_shape s = {{4 * no, 0, 0}, no};
    return s;
}

/* SQ_EINVAL naming the first of the three pointers p (name[i]) that is NULL. */
static int check_three(const char *op, const char *const name[3], const void *const p[3])
{
    int rc = SQ_OK;
    for (int i = 0; !rc && i < 3; i++) rc = sq_check_ptr(op, name[i], p[i]);
    return rc;
}

/* mLSTM's, GDN's and linear attention's checks before the staging: dims, q, k, v, the chunk. */
static int check_qkv(const char *op, sq_dims d, int chunk, const void *const p[3])
{
    static const char *const name[3] = {"q", "k", "v"};
    int rc;
    if ((rc = sq_check_dims(op, d)) || (rc = check_three(op, name, p))) return rc;
    return sq_check_chunk(op, chunk);
}

static const char *const qkv_grad_names[3] = {"g->dq", "g->dk", "g->dv"};

static int aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

/* Whether a scalar-gate forward runs the fused tensor-core kernels: the
 * shape (sq_cuda_scalar_fused_bf16) and 16-byte aligned q, k, v and out. */
static int fused_fits(sq_dims d, int chunk, const void *q, const void *k, const void *v, const void *out)
{
    return sq_cuda_scalar_fused_bf16(d, chunk) && aligned16(q) && aligned16(k) && aligned16(v) && aligned16(out);
}

/* Whether a scalar-gate backward runs the fused kernels: the shape
 * (sq_cuda_scalar_fused_bf16_bwd) and 16-byte aligned tensors p[0..6). */
static int fused_bwd_fits(sq_dims d, int chunk, const void *const p[7])
{
    int ok = sq_cuda_scalar_fused_bf16_bwd(d, chunk);
    for (int i = 0; ok && i < 7; i++) ok = aligned16(p[i]);
    return ok;
}

/* ---- mLSTM ------------------------------------------------------------------ */

extern "C" size_t sq_cuda_mlstm_bf16_work_floats(sq_dims d, const sq_mlstm_opts *o)
{
    sq_mlstm_opts def = sq_mlstm_defaults();
    if (!o) o = &def;
    if (!dims_ok(d) || o->chunk < 1) return 0;
    bf_shape s = qkv_shape(d);
    return stage_floats(&s, 1) + sq_cuda_scalar_work_floats(d, o->chunk);
}

extern "C" int sq_cuda_mlstm_fwd_bf16(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in_bf16 *in,
                                      const sq_mlstm_state *s0, sq_bf16 *out, sq_mlstm_state *s1, float *work)
{
    const char *op = "cuda mlstm fwd bf16";
    sq_mlstm_opts def = sq_mlstm_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sq_check_ptr(op, "in", in))) return rc;
    const void *p[3] = {in->q, in->k, in->v};
    if ((rc = check_qkv(op, d, o->chunk, p)) || (rc = sq_check_ptr(op, "out", out))) return rc;
    if (fused_fits(d, o->chunk, in->q, in->k, in->v, out)) return cu_mlstm_fwd_fused(d, o, in, s0, out, s1, work);
    const sq_bf16 *src[3] = {in->q, in->k, in->v};
    bf_shape s = qkv_shape(d);
    bf_call c;
    if ((rc = bf_begin(op, &s, 0, src, NULL, work, 0, &c))) return rc;
    sq_mlstm_in fin = {c.st.in[0], c.st.in[1], c.st.in[2], in->igate, in->fgate};
    rc = sq_cuda_mlstm_fwd(d, o, &fin, s0, c.st.out, s1, c.opwork);
    return bf_end_fwd(op, &c, rc, out);
}

extern "C" int sq_cuda_mlstm_bwd_bf16(sq_dims d, const sq_mlstm_opts *o, const sq_mlstm_in_bf16 *in,
                                      const sq_mlstm_state *s0, const sq_bf16 *dout, const sq_mlstm_state *ds1,
                                      sq_mlstm_grad_bf16 *g, sq_mlstm_state *ds0, float *work)
{
    const char *op = "cuda mlstm bwd bf16";
    sq_mlstm_opts def = sq_mlstm_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sq_check_ptr(op, "in", in)) || (rc = sq_check_ptr(op, "g", g))) return rc;
    const void *p[3] = {in->q, in->k, in->v}, *gp[3] = {g->dq, g->dk, g->dv};
    if ((rc = check_qkv(op, d, o->chunk, p)) || (rc = check_three(op, qkv_grad_names, gp)) ||
        (rc = sq_check_ptr(op, "dout", dout)))
        return rc;
    const void *all[7] = {in->q, in->k, in->v, dout, g->dq, g->dk, g->dv};
    if (fused_bwd_fits(d, o->chunk, all)) return cu_mlstm_bwd_fused(d, o, in, s0, dout, ds1, g, ds0, work);
    const sq_bf16 *src[3] = {in->q, in->k, in->v};
    bf_shape s = qkv_shape(d);
    bf_call c;
    if ((rc = bf_begin(op, &s, 1, src, dout, work, 0, &c))) return rc;
    sq_mlstm_in fin = {c.st.in[0], c.st.in[1], c.st.in[2], in->igate, in->fgate};
    sq_mlstm_grad fg = {c.st.grad[0], c.st.grad[1], c.st.grad[2], g->digate, g->dfgate};
    rc = sq_cuda_mlstm_bwd(d, o, &fin, s0, c.st.out, ds1, &fg, ds0, c.opwork);
    sq_bf16 *const dst[3] = {g->dq, g->dk, g->dv};
    return bf_end_bwd(op, &c, rc, dst);
}

/* ---- linear attention ------------------------------------------------------- */

extern "C" size_t sq_cuda_linattn_bf16_work_floats(sq_dims d, const sq_linattn_opts *o)
{
    sq_linattn_opts def = sq_linattn_defaults();
    if (!o) o = &def;
    if (!dims_ok(d) || o->chunk < 1) return 0;
    bf_shape s = qkv_shape(d);
    return stage_floats(&s, 1) + sq_cuda_scalar_work_floats(d, o->chunk);
}

extern "C" int sq_cuda_linattn_fwd_bf16(sq_dims d, const sq_linattn_opts *o, const sq_bf16 *q, const sq_bf16 *k,
                                        const sq_bf16 *v, const float *S0, sq_bf16 *out, float *S1, float *work)
{
    const char *op = "cuda linattn fwd bf16";
    sq_linattn_opts def = sq_linattn_defaults();
    if (!o) o = &def;
    const void *p[3] = {q, k, v};
    int rc;
    if ((rc = check_qkv(op, d, o->chunk, p)) || (rc = sq_check_ptr(op, "out", out))) return rc;
    if (fused_fits(d, o->chunk, q, k, v, out)) return cu_linattn_fwd_fused(d, o, q, k, v, S0, out, S1, work);
    const sq_bf16 *src[3] = {q, k, v};
    bf_shape s = qkv_shape(d);
    bf_call c;
    if ((rc = bf_begin(op, &s, 0, src, NULL, work, 1, &c))) return rc;
    rc = sq_cuda_linattn_fwd(d, o, c.st.in[0], c.st.in[1], c.st.in[2], S0, c.st.out, S1, c.opwork);
    return bf_end_fwd(op, &c, rc, out);
}

extern "C" int sq_cuda_linattn_bwd_bf16(sq_dims d, const sq_linattn_opts *o, const sq_bf16 *q, const sq_bf16 *k,
                                        const sq_bf16 *v, const float *S0, const sq_bf16 *dout, const float *dS1,
                                        sq_bf16 *dq, sq_bf16 *dk, sq_bf16 *dv, float *dS0, float *work)
{
    const char *op = "cuda linattn bwd bf16";
    sq_linattn_opts def = sq_linattn_defaults();
    if (!o) o = &def;
    static const char *const grad_names[3] = {"dq", "dk", "dv"};
    const void *p[3] = {q, k, v}, *gp[3] = {dq, dk, dv};
    int rc;
    if ((rc = check_qkv(op, d, o->chunk, p)) || (rc = check_three(op, grad_names, gp)) ||
        (rc = sq_check_ptr(op, "dout", dout)))
        return rc;
    const void *all[7] = {q, k, v, dout, dq, dk, dv};
    if (fused_bwd_fits(d, o->chunk, all)) return cu_linattn_bwd_fused(d, o, q, k, v, S0, dout, dS1, dq, dk, dv, dS0, work);
    const sq_bf16 *src[3] = {q, k, v};
    bf_shape s = qkv_shape(d);
    bf_call c;
    if ((rc = bf_begin(op, &s, 1, src, dout, work, 1, &c))) return rc;
    rc = sq_cuda_linattn_bwd(d, o, c.st.in[0], c.st.in[1], c.st.in[2], S0, c.st.out, dS1, c.st.grad[0],
                             c.st.grad[1], c.st.grad[2], dS0, c.opwork);
    sq_bf16 *const dst[3] = {dq, dk, dv};
    return bf_end_bwd(op, &c, rc, dst);
}

/* ---- Mamba-2 SSD -------------------------------------------------------------- */

extern "C" size_t sq_cuda_ssd_bf16_work_floats(sq_dims d, const sq_ssd_opts *o)
{
    sq_ssd_opts def = sq_ssd_defaults();
    if (!o) o = &def;
    if (!dims_ok(d) || o->chunk < 1 || o->ngroups < 1 || d.H % o->ngroups) return 0;
    bf_shape s = ssd_shape(d, o->ngroups);
    return stage_floats(&s, 1) + sq_cuda_scalar_work_floats(d, o->chunk);
}

/* SSD's checks before the staging: x, Bm, Cm (or their gradients), the chunk and the groups. */
static int check_ssd(const char *op, sq_dims d, const sq_ssd_opts *o, const char *const name[3],
                     const void *const p[3])
{
    int rc;
    if ((rc = sq_check_dims(op, d)) || (rc = check_three(op, name, p)) || (rc = sq_check_chunk(op, o->chunk)))
        return rc;
    if (o->ngroups < 1 || d.H % o->ngroups)
        return sq_fail(SQ_EINVAL, "%s: ngroups must be >= 1 and divide H = %d, got %d", op, d.H, o->ngroups);
    return SQ_OK;
}

static const char *const ssd_names[3] = {"x", "Bm", "Cm"};

/* The float32 operator's inputs: the staged x, Bm, Cm and the caller's float32 ones. */
static sq_ssd_in ssd_in_f32(const bf_call *c, const sq_ssd_in_bf16 *in)
{
    sq_ssd_in f = {c->st.in[0], c->st.in[1], c->st.in[2], in->dt, in->dt_bias, in->A, in->D};
    return f;
}

extern "C" int sq_cuda_ssd_fwd_bf16(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in_bf16 *in, const float *S0,
                                    sq_bf16 *y, float *S1, float *work)
{
    const char *op = "cuda ssd fwd bf16";
    sq_ssd_opts def = sq_ssd_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sq_check_ptr(op, "in", in))) return rc;
    const void *p[3] = {in->x, in->Bm, in->Cm};
    if ((rc = check_ssd(op, d, o, ssd_names, p)) || (rc = sq_check_ptr(op, "y", y))) return rc;
    if (fused_fits(d, o->chunk, in->Cm, in->Bm, in->x, y)) return cu_ssd_fwd_fused(d, o, in, S0, y, S1, work);
    const sq_bf16 *src[3] = {in->x, in->Bm, in->Cm};
    bf_shape s = ssd_shape(d, o->ngroups);
    bf_call c;
    if ((rc = bf_begin(op, &s, 0, src, NULL, work, 1, &c))) return rc;
    sq_ssd_in fin = ssd_in_f32(&c, in);
    rc = sq_cuda_ssd_fwd(d, o, &fin, S0, c.st.out, S1, c.opwork);
    return bf_end_fwd(op, &c, rc, y);
}

extern "C" int sq_cuda_ssd_bwd_bf16(sq_dims d, const sq_ssd_opts *o, const sq_ssd_in_bf16 *in, const float *S0,
                                    const sq_bf16 *dy, const float *dS1, sq_ssd_grad_bf16 *g, float *dS0,
                                    float *work)
{
    const char *op = "cuda ssd bwd bf16";
    sq_ssd_opts def = sq_ssd_defaults();
    if (!o) o = &def;
    static const char *const grad_names[3] = {"g->dx", "g->dBm", "g->dCm"};
    int rc;
    if ((rc = sq_check_ptr(op, "in", in)) || (rc = sq_check_ptr(op, "g", g))) return rc;
    const void *p[3] = {in->x, in->Bm, in->Cm}, *gp[3] = {g->dx, g->dBm, g->dCm};
    if ((rc = check_ssd(op, d, o, ssd_names, p)) || (rc = check_three(op, grad_names, gp)) ||
        (rc = sq_check_ptr(op, "dy", dy)))
        return rc;
    const void *all[7] = {in->x, in->Bm, in->Cm, dy, g->dx, g->dBm, g->dCm};
    if (fused_bwd_fits(d, o->chunk, all)) return cu_ssd_bwd_fused(d, o, in, S0, dy, dS1, g, dS0, work);
    const sq_bf16 *src[3] = {in->x, in->Bm, in->Cm};
    bf_shape s = ssd_shape(d, o->ngroups);
    bf_call c;
    if ((rc = bf_begin(op, &s, 1, src, dy, work, 1, &c))) return rc;
    sq_ssd_in fin = ssd_in_f32(&c, in);
    sq_ssd_grad fg = {c.st.grad[0], c.st.grad[1], c.st.grad[2], g->ddt, g->ddt_bias, g->dA, g->dD};
    rc = sq_cuda_ssd_bwd(d, o, &fin, S0, c.st.out, dS1, &fg, dS0, c.opwork);
    sq_bf16 *const dst[3] = {g->dx, g->dBm, g->dCm};
    return bf_end_bwd(op, &c, rc, dst);
}

/* ---- Gated DeltaNet: no staging; gdn.cu reads and writes the bf16 tensors itself ---- */

extern "C" size_t sq_cuda_gdn_bf16_work_floats(sq_dims d, const sq_gdn_opts *o)
{
    sq_gdn_opts def = sq_gdn_defaults();
    if (!o) o = &def;
    if (!dims_ok(d) || o->chunk < 1) return 0;
    return sq_cuda_gdn_work_floats(d, o);
}

extern "C" int sq_cuda_gdn_fwd_bf16(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in_bf16 *in, const float *S0,
                                    sq_bf16 *out, float *S1, float *work)
{
    const char *op = "cuda gdn fwd bf16";
    sq_gdn_opts def = sq_gdn_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sq_check_ptr(op, "in", in))) return rc;
    const void *p[3] = {in->q, in->k, in->v};
    if ((rc = check_qkv(op, d, o->chunk, p)) || (rc = sq_check_ptr(op, "out", out))) return rc;
    return cu_gdn_fwd_bf16(d, o, in, S0, out, S1, work);
}

extern "C" int sq_cuda_gdn_bwd_bf16(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in_bf16 *in, const float *S0,
                                    const sq_bf16 *dout, const float *dS1, sq_gdn_grad_bf16 *g, float *dS0,
                                    float *work)
{
    const char *op = "cuda gdn bwd bf16";
    sq_gdn_opts def = sq_gdn_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = sq_check_ptr(op, "in", in)) || (rc = sq_check_ptr(op, "g", g))) return rc;
    const void *p[3] = {in->q, in->k, in->v}, *gp[3] = {g->dq, g->dk, g->dv};
    if ((rc = check_qkv(op, d, o->chunk, p)) || (rc = check_three(op, qkv_grad_names, gp)) ||
        (rc = sq_check_ptr(op, "dout", dout)))
        return rc;
    return cu_gdn_bwd_bf16(d, o, in, S0, dout, dS1, g, dS0, work);
}

/* ---- sLSTM --------------------------------------------------------------------------- */

extern "C" size_t sq_cuda_slstm_bf16_work_floats(sq_dims d, const sq_slstm_opts *o)
{
    if (!dims_ok(d)) return 0;
    bf_shape s = slstm_shape(d);
    return stage_floats(&s, 1) + sq_cuda_slstm_work_floats(d, o);
}

extern "C" int sq_cuda_slstm_fwd_bf16(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in_bf16 *in,
                                      const sq_slstm_state *s0, sq_bf16 *out, sq_slstm_state *s1, float *work)
{
    const char *op = "cuda slstm fwd bf16";
    int rc;
    if ((rc = sq_check_dims(op, d)) || (rc = sq_check_ptr(op, "in", in)) || (rc = sq_check_ptr(op, "gx", in->gx)) ||
        (rc = sq_check_ptr(op, "out", out)))
        return rc;
    const sq_bf16 *src[3] = {in->gx, NULL, NULL};
    bf_shape s = slstm_shape(d);
    bf_call c;
    if ((rc = bf_begin(op, &s, 0, src, NULL, work, 1, &c))) return rc;
    sq_slstm_in fin = {c.st.in[0], in->R, in->bias};
    rc = sq_cuda_slstm_fwd(d, o, &fin, s0, c.st.out, s1, c.opwork);
    return bf_end_fwd(op, &c, rc, out);
}

extern "C" int sq_cuda_slstm_bwd_bf16(sq_dims d, const sq_slstm_opts *o, const sq_slstm_in_bf16 *in,
                                      const sq_slstm_state *s0, const sq_bf16 *dout, const sq_slstm_state *ds1,
                                      sq_slstm_grad_bf16 *g, sq_slstm_state *ds0, float *work)
{
    const char *op = "cuda slstm bwd bf16";
    int rc;
    if ((rc = sq_check_dims(op, d)) || (rc = sq_check_ptr(op, "in", in)) || (rc = sq_check_ptr(op, "gx", in->gx)) ||
        (rc = sq_check_ptr(op, "g", g)) || (rc = sq_check_ptr(op, "g->dgx", g->dgx)) ||
        (rc = sq_check_ptr(op, "dout", dout)))
        return rc;
    const sq_bf16 *src[3] = {in->gx, NULL, NULL};
    bf_shape s = slstm_shape(d);
    bf_call c;
    if ((rc = bf_begin(op, &s, 1, src, dout, work, 1, &c))) return rc;
    sq_slstm_in fin = {c.st.in[0], in->R, in->bias};
    sq_slstm_grad fg = {c.st.grad[0], g->dR, g->dbias};
    rc = sq_cuda_slstm_bwd(d, o, &fin, s0, c.st.out, ds1, &fg, ds0, c.opwork);
    sq_bf16 *const dst[3] = {g->dgx, NULL, NULL};
    return bf_end_bwd(op, &c, rc, dst);
}
