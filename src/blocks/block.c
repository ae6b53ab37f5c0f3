/* Dispatch over the block types through their tables (internal.h). */
#include "block.h"

#include <math.h>

#include "internal.h"

static const blk_ops *const block_table[SQ_BLOCK_NTYPES] = {
    &mlstm_block_ops,  /* SQ_BLOCK_MLSTM */
    &slstm_block_ops,  /* SQ_BLOCK_SLSTM */
    &mamba2_block_ops, /* SQ_BLOCK_MAMBA2 */
    &gdn_block_ops,    /* SQ_BLOCK_GDN */
    &attn_block_ops,   /* SQ_BLOCK_ATTN */
};

const char *sq_block_name(sq_block_type t)
{
    static const char *const names[SQ_BLOCK_NTYPES] = {"mlstm", "slstm", "mamba2", "gdn", "attn"};
    return (unsigned)t < SQ_BLOCK_NTYPES ? names[t] : "?";
}

int sq_block_register(sq_block *b, sq_block_type type, const sq_block_cfg *c, int index, sq_params *ps)
{
    b->type = type;
    b->c = *c;
    b->np = 0;
    if ((unsigned)type >= SQ_BLOCK_NTYPES) return sq_fail(SQ_EINVAL, "block %d: unknown block type %d", index, (int)type);
    if (!block_table[type])
        return sq_fail(SQ_EINVAL, "block %d: the %s block is not built yet", index, sq_block_name(type));
    return block_table[type]->reg(b, ps, index);
}

void sq_block_init(const sq_block *b, sq_params *ps, sq_rng *r, int depth)
{
    float out_std = 0.02f / sqrtf(2.0f * (depth > 0 ? depth : 1));
    block_table[b->type]->init(b, ps, r, out_std);
}

size_t sq_block_act_floats(const sq_block *b, int B, int T)
{
    return block_table[b->type]->act_floats(&b->c, (size_t)B * T);
}

size_t sq_block_work_floats(const sq_backend *be, const sq_block *b, int B, int T)
{
    return block_table[b->type]->work_floats(be, &b->c, B, T);
}

int sq_block_fwd(const sq_backend *be, const sq_block *b, const sq_params *ps, int B, int T, const float *x_in,
                 float *x_out, float *acts, float *work)
{
    return block_table[b->type]->fwd(be, b, ps, B, T, x_in, x_out, acts, work, NULL);
}

size_t sq_block_state_floats(const sq_block *b, int B, int max_len)
{
    return block_table[b->type]->state_floats(&b->c, B, max_len);
}

int sq_block_fwd_carry(const sq_backend *be, const sq_block *b, const sq_params *ps, int B, int T, const float *x_in,
                       float *x_out, float *acts, float *work, const sq_block_carry *carry)
{
    int rc = sq_check_ptr("block fwd", "carry", carry);
    if (!rc) rc = sq_check_ptr("block fwd", "carry state", carry->state);
    if (!rc && (carry->pos0 < 0 || carry->pos0 + T > carry->max_len))
        rc = sq_fail(SQ_EINVAL, "block fwd: positions %d..%d exceed the carried state's length %d", carry->pos0,
                     carry->pos0 + T, carry->max_len);
    return rc ? rc : block_table[b->type]->fwd(be, b, ps, B, T, x_in, x_out, acts, work, carry);
}

int sq_block_bwd(const sq_backend *be, const sq_block *b, sq_params *ps, int B, int T, const float *x_in,
                 const float *acts, const float *dx_out, float *dx_in, float *work)
{
    return block_table[b->type]->bwd(be, b, ps, B, T, x_in, acts, dx_out, dx_in, work);
}
