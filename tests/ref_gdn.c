/* float64 Gated DeltaNet: the delta rule step by step,
 * S_t = a_t (I - β_t k̂_t k̂_tᵀ) S_{t-1} + β_t k̂_t v_tᵀ, o_t = S_tᵀ q̂_t. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"

void ref_gdn_fwd(sq_dims d, int neg_eigval, int qk_l2norm, const ref_gdn_in *in, const double *S0, double *out,
                 double *S1)
{
    int K = d.K, V = d.V;
    double *S = malloc(sizeof(double) * K * V), *kh = malloc(sizeof(double) * K), *qh = malloc(sizeof(double) * K);
    for (int b = 0; b < d.B; b++)
        for (int h = 0; h < d.H; h++) {
            size_t bh = (size_t)b * d.H + h;
            for (int i = 0; i < K * V; i++) S[i] = S0 ? S0[bh * K * V + i] : 0;
            for (int t = 0; t < d.T; t++) {
                size_t g = ((size_t)b * d.T + t) * d.H + h;
                double nq = 0, nk = 0;
                for (int i = 0; i < K; i++) {
                    nq += in->q[g * K + i] * in->q[g * K + i];
                    nk += in->k[g * K + i] * in->k[g * K + i];
                }
                nq = qk_l2norm ? sqrt(nq + 1e-12) : 1;
                nk = qk_l2norm ? sqrt(nk + 1e-12) : 1;
                for (int i = 0; i < K; i++) {
                    qh[i] = in->q[g * K + i] / nq / sqrt((double)K);
                    kh[i] = in->k[g * K + i] / nk;
                }
                double z = in->alpha[g] + in->dt_bias[h];
                double sp = z > 30 ? z : log1p(exp(z));
                double a = exp(-exp(in->A_log[h]) * sp);
                double beta = (neg_eigval ? 2.0 : 1.0) / (1 + exp(-in->beta[g]));
                for (int c = 0; c < V; c++) {
                    double ks = 0; /* (k̂ᵀ S)_c */
                    for (int r = 0; r < K; r++) ks += kh[r] * S[r * V + c];
                    for (int r = 0; r < K; r++)
                        S[r * V + c] = a * (S[r * V + c] - beta * kh[r] * ks) + beta * kh[r] * in->v[g * V + c];
                    double o = 0;
                    for (int r = 0; r < K; r++) o += S[r * V + c] * qh[r];
                    out[g * V + c] = o;
                }
            }
            if (S1) memcpy(S1 + bh * K * V, S, sizeof(double) * K * V);
        }
    free(S);
    free(kh);
    free(qh);
}
