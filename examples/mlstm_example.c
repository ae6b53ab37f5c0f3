/* The README's example: run an mLSTM layer's operator over a sequence in
 * two pieces, then decode one more token with the step function. */
#include <stdio.h>
#include <stdlib.h>

#include "../src/ops/mlstm.h"

int main(void)
{
    sq_dims d = {.B = 1, .T = 100, .H = 2, .K = 16, .V = 16};
    size_t nqk = (size_t)d.B * d.T * d.H * d.K, nv = (size_t)d.B * d.T * d.H * d.V, ng = (size_t)d.B * d.T * d.H;
    float *q = sq_alloc_floats(nqk), *k = sq_alloc_floats(nqk), *v = sq_alloc_floats(nv);
    float *ig = sq_alloc_floats(ng), *fg = sq_alloc_floats(ng), *out = sq_alloc_floats(nv);
    float S[2 * 16 * 16], n[2 * 16], m[2]; /* state [B,H,K,V], [B,H,K], [B,H] */
    sq_rng r;
    sq_rng_seed(&r, 42);
    sq_rng_fill_normal(&r, q, nqk, 0, 1);
    sq_rng_fill_normal(&r, k, nqk, 0, 1);
    sq_rng_fill_normal(&r, v, nv, 0, 1);
    sq_rng_fill_normal(&r, ig, ng, 0, 1);
    sq_rng_fill_normal(&r, fg, ng, 3, 1);

    sq_mlstm_opts o = sq_mlstm_defaults(); /* chunk 64, sigmoid forget gate */
    sq_mlstm_in in = {q, k, v, ig, fg};
    sq_mlstm_state st = {S, n, m};
    /* Whole sequence, chunkwise; NULL work: the operator allocates its workspace. */
    if (sq_mlstm_fwd(d, &o, &in, NULL, out, &st, NULL)) {
        fprintf(stderr, "mlstm: %s\n", sq_last_error());
        return 1;
    }
    /* One more token from the final state (decoding). */
    sq_dims d1 = d;
    d1.T = 1;
    float o1[2 * 16];
    sq_mlstm_in in1 = {q, k, v, ig, fg}; /* reuse the first token's inputs as the next token */
    if (sq_mlstm_step(d1, &o, &in1, &st, o1)) {
        fprintf(stderr, "mlstm step: %s\n", sq_last_error());
        return 1;
    }
    printf("out[T-1][0][0] = %.5f, next token out[0][0] = %.5f, m = %.3f\n",
           out[(size_t)(d.T - 1) * d.H * d.V], o1[0], m[0]);
    sq_free(q); sq_free(k); sq_free(v); sq_free(ig); sq_free(fg); sq_free(out);
    return 0;
}
