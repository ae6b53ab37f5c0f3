/* Token embedding, RoPE and the fused softmax cross-entropy.
 * Parameter gradients accumulate (+=); activation gradients are written. */
#ifndef SUBQ_LAYERS_EMBED_H
#define SUBQ_LAYERS_EMBED_H

#include <stdint.h>

/* y[n] = W[tokens[n]], W [vocab, D]; a token outside [0, vocab) is SQ_EINVAL. */
int sq_embed_fwd(int N, int vocab, int D, const int32_t *tokens, const float *W, float *y);
int sq_embed_bwd(int N, int vocab, int D, const int32_t *tokens, const float *dy, float *dW);

/* RoPE on x [B, T, H, D] (D even) at positions pos0 + t, rotating the pairs
 * (i, i + D/2) by θ_i = (pos) base^{-2i/D} (the GPT-NeoX / Llama layout).
 * y may equal x. The backward is the rotation by -θ (dy -> dx). */
int sq_rope_fwd(int B, int T, int H, int D, int pos0, float base, const float *x, float *y);
int sq_rope_bwd(int B, int T, int H, int D, int pos0, float base, const float *dy, float *dx);

/* Mean cross-entropy of softmax(logits [N, V]) against targets [N]; targets
 * < 0 are ignored (not counted). dlogits (may be NULL) receives
 * (softmax - onehot)/count on counted rows and 0 on ignored ones. *count
 * (may be NULL) gets the number of counted rows; with none, loss = 0. */
int sq_xent_fwd_bwd(int N, int V, const float *logits, const int32_t *targets, float *loss, float *dlogits,
                    int *count);

#endif
