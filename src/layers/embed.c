#include "embed.h"

#include <math.h>
#include <string.h>

#include "../core/core.h"

static int check_tokens(const char *op, int N, int vocab, const int32_t *tokens)
{
    for (int n = 0; n < N; n++)
        if (tokens[n] < 0 || tokens[n] >= vocab)
            return sq_fail(SQ_EINVAL, "%s: token %d at position %d is outside the vocabulary [0, %d)", op, tokens[n], n,
                           vocab);
    return SQ_OK;
}

int sq_embed_fwd(int N, int vocab, int D, const int32_t *tokens, const float *W, float *y)
{
    const char *op = "embedding fwd";
    int rc;
    if (N < 1 || vocab < 1 || D < 1) return sq_fail(SQ_EINVAL, "%s: sizes must be >= 1", op);
    if ((rc = sq_check_ptr(op, "tokens", tokens)) || (rc = sq_check_ptr(op, "W", W)) || (rc = sq_check_ptr(op, "y", y)) ||
        (rc = check_tokens(op, N, vocab, tokens)))
        return rc;
    for (int n = 0; n < N; n++) memcpy(y + (size_t)n * D, W + (size_t)tokens[n] * D, (size_t)D * sizeof(float));
    return SQ_OK;
}

int sq_embed_bwd(int N, int vocab, int D, const int32_t *tokens, const float *dy, float *dW)
{
    const char *op = "embedding bwd";
    int rc;
    if (N < 1 || vocab < 1 || D < 1) return sq_fail(SQ_EINVAL, "%s: sizes must be >= 1", op);
    if ((rc = sq_check_ptr(op, "tokens", tokens)) || (rc = sq_check_ptr(op, "dy", dy)) ||
        (rc = sq_check_ptr(op, "dW", dW)) || (rc = check_tokens(op, N, vocab, tokens)))
        return rc;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < D; i++) dW[(size_t)tokens[n] * D + i] += dy[(size_t)n * D + i];
    return SQ_OK;
}

/* Rotates the pairs (i, i + D/2) of each row by sign·θ_i(pos). */
static int rope(const char *op, int B, int T, int H, int D, int pos0, float base, const float *x, float *y, int sign)
{
    int rc;
    if (B < 1 || T < 1 || H < 1 || D < 2 || D % 2)
        return sq_fail(SQ_EINVAL, "%s: need B, T, H >= 1 and an even head size D >= 2, got D=%d", op, D);
    if (pos0 < 0 || !(base > 1)) return sq_fail(SQ_EINVAL, "%s: need pos0 >= 0 and base > 1", op);
    if ((rc = sq_check_ptr(op, "x", x)) || (rc = sq_check_ptr(op, "y", y))) return rc;
    int half = D / 2;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int i = 0; i < half; i++) {
                double th = (double)(pos0 + t) * pow(base, -2.0 * i / D);
                float c = (float)cos(th), s = (float)(sign * sin(th));
                for (int h = 0; h < H; h++) {
                    size_t at = (((size_t)b * T + t) * H + h) * D;
                    float x0 = x[at + i], x1 = x[at + i + half];
                    y[at + i] = x0 * c - x1 * s;
                    y[at + i + half] = x0 * s + x1 * c;
                }
            }
    return SQ_OK;
}

int sq_rope_fwd(int B, int T, int H, int D, int pos0, float base, const float *x, float *y)
{
    return rope("rope fwd", B, T, H, D, pos0, base, x, y, 1);
}

int sq_rope_bwd(int B, int T, int H, int D, int pos0, float base, const float *dy, float *dx)
{
    return rope("rope bwd", B, T, H, D, pos0, base, dy, dx, -1);
}

int sq_xent_fwd_bwd(int N, int V, const float *logits, const int32_t *targets, float *loss, float *dlogits,
                    int *count)
{
    const char *op = "cross-entropy";
    int rc;
    if (N < 1 || V < 1) return sq_fail(SQ_EINVAL, "%s: sizes must be >= 1", op);
    if ((rc = sq_check_ptr(op, "logits", logits)) || (rc = sq_check_ptr(op, "targets", targets)) ||
        (rc = sq_check_ptr(op, "loss", loss)))
        return rc;
    int cnt = 0;
    for (int n = 0; n < N; n++) {
        if (targets[n] >= V) return sq_fail(SQ_EINVAL, "%s: target %d at row %d is >= the vocabulary %d", op, targets[n], n, V);
        cnt += targets[n] >= 0;
    }
    double total = 0;
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * V;
        float *dz = dlogits ? dlogits + (size_t)n * V : NULL;
        if (targets[n] < 0) {
            if (dz) memset(dz, 0, (size_t)V * sizeof(float));
            continue;
        }
        float mx = z[0];
        for (int v = 1; v < V; v++) mx = fmaxf(mx, z[v]);
        double sum = 0;
        for (int v = 0; v < V; v++) sum += exp((double)z[v] - mx);
        double lse = mx + log(sum);
        total += lse - z[targets[n]];
        if (dz) {
            for (int v = 0; v < V; v++) dz[v] = (float)(exp((double)z[v] - lse) / cnt);
            dz[targets[n]] -= 1.0f / cnt;
        }
    }
    *loss = cnt ? (float)(total / cnt) : 0.0f;
    if (count) *count = cnt;
    return SQ_OK;
}
