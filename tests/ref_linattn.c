/* float64 linear attention: S_t = S_{t-1} + k_t v_tᵀ, o_t = S_tᵀ q_t. */
#include <stdlib.h>
#include <string.h>

#include "ref.h"

void ref_linattn_fwd(sq_dims d, const double *q, const double *k, const double *v, const double *S0, double *out,
                     double *S1)
{
    int K = d.K, V = d.V;
    double *S = malloc(sizeof(double) * K * V);
    for (int b = 0; b < d.B; b++)
        for (int h = 0; h < d.H; h++) {
            size_t bh = (size_t)b * d.H + h;
            for (int i = 0; i < K * V; i++) S[i] = S0 ? S0[bh * K * V + i] : 0;
            for (int t = 0; t < d.T; t++) {
                size_t g = ((size_t)b * d.T + t) * d.H + h;
                for (int a = 0; a < K; a++)
                    for (int c = 0; c < V; c++) S[a * V + c] += k[g * K + a] * v[g * V + c];
                for (int c = 0; c < V; c++) {
                    double o = 0;
                    for (int a = 0; a < K; a++) o += S[a * V + c] * q[g * K + a];
                    out[g * V + c] = o;
                }
            }
            if (S1) memcpy(S1 + bh * K * V, S, sizeof(double) * K * V);
        }
    free(S);
}
