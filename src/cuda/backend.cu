/* The CUDA backend table (src/layers/backend.h): the sq_cuda_* layers,
 * primitives, operators and optimizer update, with the same signatures as
 * the CPU's, on device memory. A model built for the GPU holds it. */
#include "cuda.h"
#include "cuda_internal.h"

/* The scalar-gate operators' workspace depends only on the chunk. */
static size_t cuda_mlstm_work(sq_dims d, const sq_mlstm_opts *o)
{
    return sq_cuda_scalar_work_floats(d, o ? o->chunk : sq_mlstm_defaults().chunk);
}

static size_t cuda_ssd_work(sq_dims d, const sq_ssd_opts *o)
{
    return sq_cuda_scalar_work_floats(d, o ? o->chunk : sq_ssd_defaults().chunk);
}

/* ---- the model's attention: float32, or under SQ_CUDA_MATH_BF16 the bf16
 * tensor-core kernel on q, k, v (and dout) rounded into a staging area that
 * follows the float32 workspace (planned always, so that the mode may change
 * after a model planned its arena) ---- */

static size_t half_floats(size_t n) { return cu_r64((n + 1) / 2); } /* floats holding n bf16 */

static size_t attn_f32_part(sq_dims d, const sq_attn_opts *o) { return cu_r64(sq_cuda_attn_bf16_work_floats(d, o)); }

static size_t cuda_attn_work(sq_dims d, const sq_attn_opts *o)
{
    size_t nk = (size_t)d.B * d.T * d.H * d.K, nv = (size_t)d.B * d.T * d.H * d.V;
    return attn_f32_part(d, o) + 4 * half_floats(nk) + 3 * half_floats(nv); /* q k dq dk, v dout dv */
}

/* The next n bf16 of a workspace cursor. */
static sq_bf16 *take_bf16(float **p, size_t n) { return (sq_bf16 *)cu_take(p, (n + 1) / 2); }

/* The call's workspace: the caller's, or one allocated (*owned, freed by release_work). */
static float *attn_ws(sq_dims d, const sq_attn_opts *o, float *work, float **owned, int *rc)
{
    *owned = NULL;
    *rc = SQ_OK;
    if (work) return work;
    *rc = sq_cuda_malloc(owned, cuda_attn_work(d, o));
    return *owned;
}

static int release_work(float *owned, int rc)
{
    if (!owned) return rc;
    int rs = sq_cuda_sync();
    sq_cuda_free(owned);
    return rc ? rc : rs;
}

static int cuda_attn_fwd(sq_dims d, const sq_attn_opts *o, const float *q, const float *k, const float *v,
                         const sq_attn_cache *cache0, float *out, sq_attn_cache *cache1, float *work)
{
    if (cu_layer_math() != SQ_CUDA_MATH_BF16) return sq_cuda_attn_fwd(d, o, q, k, v, cache0, out, cache1, work);
    sq_attn_opts def = sq_attn_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = cu_attn_check_args("cuda attn fwd (bf16 math)", d, o, q, k, v, cache0)) ||
        (rc = sq_check_ptr("cuda attn fwd (bf16 math)", "out", out)))
        return rc;
    float *owned, *ws = attn_ws(d, o, work, &owned, &rc);
    if (rc) return rc;
    size_t nk = (size_t)d.B * d.T * d.H * d.K, nv = (size_t)d.B * d.T * d.H * d.V;
    float *p = ws + attn_f32_part(d, o);
    sq_bf16 *q16 = take_bf16(&p, nk), *k16 = take_bf16(&p, nk), *v16 = take_bf16(&p, nv), *o16 = take_bf16(&p, nv);
    if (!(rc = sq_cuda_to_bf16(q16, q, nk)) && !(rc = sq_cuda_to_bf16(k16, k, nk)) &&
        !(rc = sq_cuda_to_bf16(v16, v, nv)) &&
        !(rc = sq_cuda_attn_fwd_bf16(d, o, q16, k16, v16, cache0, o16, cache1, ws)))
        rc = sq_cuda_from_bf16(out, o16, nv);
    return release_work(owned, rc);
}

static int cuda_attn_bwd(sq_dims d, const sq_attn_opts *o, const float *q, const float *k, const float *v,
                         const sq_attn_cache *cache0, const float *dout, float *dq, float *dk, float *dv,
                         sq_attn_cache *dcache0, float *work)
{
    if (cu_layer_math() != SQ_CUDA_MATH_BF16)
        return sq_cuda_attn_bwd(d, o, q, k, v, cache0, dout, dq, dk, dv, dcache0, work);
    const char *op = "cuda attn bwd (bf16 math)";
    sq_attn_opts def = sq_attn_defaults();
    if (!o) o = &def;
    int rc;
    if ((rc = cu_attn_check_bwd(op, d, o, q, k, v, cache0, dout, dq, dk, dv, dcache0))) return rc;
    float *owned, *ws = attn_ws(d, o, work, &owned, &rc);
    if (rc) return rc;
    size_t nk = (size_t)d.B * d.T * d.H * d.K, nv = (size_t)d.B * d.T * d.H * d.V;
    float *p = ws + attn_f32_part(d, o);
    sq_bf16 *q16 = take_bf16(&p, nk), *k16 = take_bf16(&p, nk), *dq16 = take_bf16(&p, nk),
            *dk16 = take_bf16(&p, nk), *v16 = take_bf16(&p, nv), *do16 = take_bf16(&p, nv), *dv16 = take_bf16(&p, nv);
    if (!(rc = sq_cuda_to_bf16(q16, q, nk)) && !(rc = sq_cuda_to_bf16(k16, k, nk)) &&
        !(rc = sq_cuda_to_bf16(v16, v, nv)) && !(rc = sq_cuda_to_bf16(do16, dout, nv)) &&
        !(rc = sq_cuda_attn_bwd_bf16(d, o, q16, k16, v16, cache0, do16, dq16, dk16, dv16, dcache0, ws)) &&
        !(rc = sq_cuda_from_bf16(dq, dq16, nk)) && !(rc = sq_cuda_from_bf16(dk, dk16, nk)))
        rc = sq_cuda_from_bf16(dv, dv16, nv);
    return release_work(owned, rc);
}

/* Device memory through the core's CUDA calls (their messages on failure). */
static float *cuda_alloc(size_t n)
{
    float *p = NULL;
    return sq_cuda_malloc(&p, n) ? NULL : p;
}

static int32_t *cuda_alloc_i32(size_t n)
{
    int32_t *p = NULL;
    return sq_cuda_malloc_i32(&p, n) ? NULL : p;
}

static sq_backend cuda_table(void)
{
    sq_backend b = {};
    b.name = "cuda";
    b.host_memory = 0;
    b.alloc = cuda_alloc;
    b.alloc_i32 = cuda_alloc_i32;
    b.release = sq_cuda_free;
    b.upload = sq_cuda_upload;
    b.download = sq_cuda_download;
    b.upload_i32 = sq_cuda_upload_i32;
    b.linear_fwd = sq_cuda_linear_fwd;
    b.linear_fwd_acc = sq_cuda_linear_fwd_acc;
    b.linear_bwd = sq_cuda_linear_bwd;
    b.linear_bwd_acc = sq_cuda_linear_bwd_acc;
    b.norm_fwd = sq_cuda_norm_fwd;
    b.norm_bwd = sq_cuda_norm_bwd;
    b.l2norm_fwd = sq_cuda_l2norm_fwd;
    b.l2norm_bwd = sq_cuda_l2norm_bwd;
    b.silu_fwd = sq_cuda_silu_fwd;
    b.silu_bwd = sq_cuda_silu_bwd;
    b.gelu_fwd = sq_cuda_gelu_fwd;
    b.gelu_bwd = sq_cuda_gelu_bwd;
    b.swiglu_fwd = sq_cuda_swiglu_fwd;
    b.swiglu_bwd = sq_cuda_swiglu_bwd;
    b.conv1d_fwd = sq_cuda_conv1d_fwd;
    b.conv1d_bwd = sq_cuda_conv1d_bwd;
    b.embed_fwd = sq_cuda_embed_fwd;
    b.embed_bwd = sq_cuda_embed_bwd;
    b.rope_fwd = sq_cuda_rope_fwd;
    b.rope_bwd = sq_cuda_rope_bwd;
    b.xent_fwd_bwd = sq_cuda_xent_fwd_bwd;
    b.copy = sq_cuda_copy;
    b.zero = sq_cuda_zero;
    b.add_to = sq_cuda_add_to;
    b.mul = sq_cuda_mul;
    b.div_scalar = sq_cuda_div_scalar;
    b.copy_cols = sq_cuda_copy_cols;
    b.neg_exp_fwd = sq_cuda_neg_exp_fwd;
    b.neg_exp_bwd = sq_cuda_neg_exp_bwd;
    b.sigmoid_gate_fwd = sq_cuda_sigmoid_gate_fwd;
    b.sigmoid_gate_bwd = sq_cuda_sigmoid_gate_bwd;
    b.mlstm_work_floats = cuda_mlstm_work;
    b.mlstm_fwd = sq_cuda_mlstm_fwd;
    b.mlstm_bwd = sq_cuda_mlstm_bwd;
    b.mlstm_step = sq_cuda_mlstm_step;
    b.slstm_work_floats = sq_cuda_slstm_work_floats;
    b.slstm_fwd = sq_cuda_slstm_fwd;
    b.slstm_bwd = sq_cuda_slstm_bwd;
    b.slstm_step = sq_cuda_slstm_step;
    b.ssd_work_floats = cuda_ssd_work;
    b.ssd_fwd = sq_cuda_ssd_fwd;
    b.ssd_bwd = sq_cuda_ssd_bwd;
    b.ssd_step = sq_cuda_ssd_step;
    b.gdn_work_floats = sq_cuda_gdn_work_floats;
    b.gdn_fwd = sq_cuda_gdn_fwd;
    b.gdn_bwd = sq_cuda_gdn_bwd;
    b.gdn_step = sq_cuda_gdn_step;
    b.attn_work_floats = cuda_attn_work;
    b.attn_fwd = cuda_attn_fwd;
    b.attn_bwd = cuda_attn_bwd;
    b.attn_step = sq_cuda_attn_step;
    b.adamw_update = sq_cuda_adamw_update;
    b.global_norm = sq_cuda_global_norm;
    b.clip_global_norm = sq_cuda_clip_global_norm;
    return b;
}

extern "C" const sq_backend *sq_cuda_backend(void)
{
    static const sq_backend table = cuda_table();
    return &table;
}
