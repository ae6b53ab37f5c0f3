/* Dispatch over the block types. */
#include "block.h"

#include <math.h>

#include "internal.h"

int mlstm_block_register(sq_block *b, sq_params *ps, int i);
void mlstm_block_init(const sq_block *b, sq_params *ps, sq_rng *r, float out_std);
size_t mlstm_block_act_floats(const sq_block_cfg *c, size_t N);
size_t mlstm_block_work_floats(const sq_block_cfg *c, int B, int T);
int mlstm_block_fwd(const sq_block *b, const sq_params *ps, int B, int T, const float *x, float *out, float *acts,
                    float *work);
int mlstm_block_bwd(const sq_block *b, sq_params *ps, int B, int T, const float *x, const float *acts,
                    const float *dout, float *dx, float *work);
int slstm_block_register(sq_block *b, sq_params *ps, int i);
void slstm_block_init(const sq_block *b, sq_params *ps, sq_rng *r, float out_std);
size_t slstm_block_act_floats(const sq_block_cfg *c, size_t N);
size_t slstm_block_work_floats(const sq_block_cfg *c, int B, int T);
int slstm_block_fwd(const sq_block *b, const sq_params *ps, int B, int T, const float *x, float *out, float *acts,
                    float *work);
int slstm_block_bwd(const sq_block *b, sq_params *ps, int B, int T, const float *x, const float *acts,
                    const float *dout, float *dx, float *work);

const char *sq_block_name(sq_block_type t)
{
    static const char *const names[SQ_BLOCK_NTYPES] = {"mlstm", "slstm", "mamba2", "gdn", "attn"};
    return t < SQ_BLOCK_NTYPES ? names[t] : "?";
}

int sq_block_register(sq_block *b, sq_block_type type, const sq_block_cfg *c, int index, sq_params *ps)
{
    b->type = type;
    b->c = *c;
    b->np = 0;
    switch (type) {
    case SQ_BLOCK_MLSTM: return mlstm_block_register(b, ps, index);
    case SQ_BLOCK_SLSTM: return slstm_block_register(b, ps, index);
    default:
        return sq_fail(SQ_EINVAL, "block %d: the %s block is not built yet (available: mlstm, slstm)", index,
                       sq_block_name(type));
    }
}

void sq_block_init(const sq_block *b, sq_params *ps, sq_rng *r, int depth)
{
    float out_std = 0.02f / sqrtf(2.0f * (depth > 0 ? depth : 1));
    if (b->type == SQ_BLOCK_MLSTM) mlstm_block_init(b, ps, r, out_std);
    else slstm_block_init(b, ps, r, out_std);
}

size_t sq_block_act_floats(const sq_block *b, int B, int T)
{
    size_t N = (size_t)B * T;
    return b->type == SQ_BLOCK_MLSTM ? mlstm_block_act_floats(&b->c, N) : slstm_block_act_floats(&b->c, N);
}

size_t sq_block_work_floats(const sq_block *b, int B, int T)
{
    return b->type == SQ_BLOCK_MLSTM ? mlstm_block_work_floats(&b->c, B, T) : slstm_block_work_floats(&b->c, B, T);
}

int sq_block_fwd(const sq_block *b, const sq_params *ps, int B, int T, const float *x_in, float *x_out, float *acts,
                 float *work)
{
    if (b->type == SQ_BLOCK_MLSTM) return mlstm_block_fwd(b, ps, B, T, x_in, x_out, acts, work);
    return slstm_block_fwd(b, ps, B, T, x_in, x_out, acts, work);
}

int sq_block_bwd(const sq_block *b, sq_params *ps, int B, int T, const float *x_in, const float *acts,
                 const float *dx_out, float *dx_in, float *work)
{
    if (b->type == SQ_BLOCK_MLSTM) return mlstm_block_bwd(b, ps, B, T, x_in, acts, dx_out, dx_in, work);
    return slstm_block_bwd(b, ps, B, T, x_in, acts, dx_out, dx_in, work);
}
