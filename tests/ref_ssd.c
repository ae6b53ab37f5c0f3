/* float64 Mamba-2 SSD: Δ = softplus(Δ̃ + bias), S_t = e^{ΔA} S_{t-1} + Δ B_t x_tᵀ,
 * y_t = S_tᵀ C_t + D x_t, B and C shared by the heads of a group. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"

void ref_ssd_fwd(sq_dims d, int G, const ref_ssd_in *in, const double *S0, double *y, double *S1)
{
    int K = d.K, V = d.V, hpg = d.H / G;
    double *S = malloc(sizeof(double) * K * V);
    for (int b = 0; b < d.B; b++)
        for (int h = 0; h < d.H; h++) {
            size_t bh = (size_t)b * d.H + h;
            for (int i = 0; i < K * V; i++) S[i] = S0 ? S0[bh * K * V + i] : 0;
            for (int t = 0; t < d.T; t++) {
                size_t g = ((size_t)b * d.T + t) * d.H + h, gb = ((size_t)b * d.T + t) * G + h / hpg;
                double z = in->dt[g] + in->dt_bias[h];
                double delta = z > 30 ? z : log1p(exp(z)), a = exp(delta * in->A[h]);
                const double *x = in->x + g * V, *Bt = in->Bm + gb * K, *Ct = in->Cm + gb * K;
                for (int r = 0; r < K; r++)
                    for (int c = 0; c < V; c++) S[r * V + c] = a * S[r * V + c] + delta * Bt[r] * x[c];
                for (int c = 0; c < V; c++) {
                    double o = in->D[h] * x[c];
                    for (int r = 0; r < K; r++) o += S[r * V + c] * Ct[r];
                    y[g * V + c] = o;
                }
            }
            if (S1) memcpy(S1 + bh * K * V, S, sizeof(double) * K * V);
        }
    free(S);
}
