/* The CPU backend: the table of backend.h filled with the float32 layers
 * (src/layers) and operators (src/ops) on host memory. */
#include "backend.h"

#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "conv1d.h"
#include "elem.h"
#include "embed.h"
#include "linear.h"
#include "norm.h"

/* Host memory: allocation and copies are the core's. */
static int32_t *cpu_alloc_i32(size_t n)
{
    int32_t *p = malloc((n ? n : 1) * sizeof(int32_t));
    if (!p) sq_fail(SQ_ENOMEM, "out of memory for %zu int32 values", n);
    return p;
}

static int cpu_copy_in(float *dst, const float *src, size_t n)
{
    memcpy(dst, src, n * sizeof(float));
    return SQ_OK;
}

static int cpu_copy_i32(int32_t *dst, const int32_t *src, size_t n)
{
    memcpy(dst, src, n * sizeof(int32_t));
    return SQ_OK;
}

const sq_backend sq_backend_cpu = {
    .name = "cpu",

    .host_memory = 1,
    .alloc = sq_alloc_floats,
    .alloc_i32 = cpu_alloc_i32,
    .release = sq_free,
    .upload = cpu_copy_in,
    .download = cpu_copy_in,
    .upload_i32 = cpu_copy_i32,

    .linear_fwd = sq_linear_fwd,
    .linear_fwd_acc = sq_linear_fwd_acc,
    .linear_bwd = sq_linear_bwd,
    .linear_bwd_acc = sq_linear_bwd_acc,
    .norm_fwd = sq_norm_fwd,
    .norm_bwd = sq_norm_bwd,
    .l2norm_fwd = sq_l2norm_fwd,
    .l2norm_bwd = sq_l2norm_bwd,
    .silu_fwd = sq_silu_fwd,
    .silu_bwd = sq_silu_bwd,
    .gelu_fwd = sq_gelu_fwd,
    .gelu_bwd = sq_gelu_bwd,
    .swiglu_fwd = sq_swiglu_fwd,
    .swiglu_bwd = sq_swiglu_bwd,
    .conv1d_fwd = sq_conv1d_fwd,
    .conv1d_bwd = sq_conv1d_bwd,
    .embed_fwd = sq_embed_fwd,
    .embed_bwd = sq_embed_bwd,
    .rope_fwd = sq_rope_fwd,
    .rope_bwd = sq_rope_bwd,
    .xent_fwd_bwd = sq_xent_fwd_bwd,

    .copy = sq_copy,
    .zero = sq_zero,
    .add_to = sq_add_to,
    .mul = sq_mul,
    .div_scalar = sq_div_scalar,
    .copy_cols = sq_copy_cols,
    .neg_exp_fwd = sq_neg_exp_fwd,
    .neg_exp_bwd = sq_neg_exp_bwd,
    .sigmoid_gate_fwd = sq_sigmoid_gate_fwd,
    .sigmoid_gate_bwd = sq_sigmoid_gate_bwd,

    .mlstm_work_floats = sq_mlstm_work_floats,
    .mlstm_fwd = sq_mlstm_fwd,
    .mlstm_bwd = sq_mlstm_bwd,
    .mlstm_step = sq_mlstm_step,
    .slstm_work_floats = sq_slstm_work_floats,
    .slstm_fwd = sq_slstm_fwd,
    .slstm_bwd = sq_slstm_bwd,
    .slstm_step = sq_slstm_step,
    .ssd_work_floats = sq_ssd_work_floats,
    .ssd_fwd = sq_ssd_fwd,
    .ssd_bwd = sq_ssd_bwd,
    .ssd_step = sq_ssd_step,
    .gdn_work_floats = sq_gdn_work_floats,
    .gdn_fwd = sq_gdn_fwd,
    .gdn_bwd = sq_gdn_bwd,
    .gdn_step = sq_gdn_step,
    .attn_work_floats = sq_attn_work_floats,
    .attn_fwd = sq_attn_fwd,
    .attn_bwd = sq_attn_bwd,
    .attn_step = sq_attn_step,

    .adamw_update = sq_adamw_update,
    .global_norm = sq_global_norm,
    .clip_global_norm = sq_clip_global_norm,
};
