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
    b.attn_work_floats = sq_cuda_attn_work_floats;
    b.attn_fwd = sq_cuda_attn_fwd;
    b.attn_bwd = sq_cuda_attn_bwd;
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
