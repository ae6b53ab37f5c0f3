/* float64 causal softmax attention over P cached positions and T new ones. */
#include <math.h>
#include <stdlib.h>

#include "ref.h"

void ref_attn_fwd(sq_dims d, const double *q, const double *k, const double *v, int P, const double *kc,
                  const double *vc, double *out)
{
    int K = d.K, V = d.V, N = P + d.T;
    double *w = malloc(sizeof(double) * N), c = 1 / sqrt((double)K);
    for (int b = 0; b < d.B; b++)
        for (int h = 0; h < d.H; h++) {
            size_t bh = (size_t)b * d.H + h;
            for (int t = 0; t < d.T; t++) {
                const double *qt = q + (((size_t)b * d.T + t) * d.H + h) * K;
                int n = P + t + 1;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < n; j++) {
                    const double *kj = j < P ? kc + (bh * P + j) * K : k + (((size_t)b * d.T + j - P) * d.H + h) * K;
                    double s = 0;
                    for (int i = 0; i < K; i++) s += qt[i] * kj[i];
                    w[j] = s * c;
                    if (w[j] > mx) mx = w[j];
                }
                for (int j = 0; j < n; j++) sum += (w[j] = exp(w[j] - mx));
                double *o = out + (((size_t)b * d.T + t) * d.H + h) * V;
                for (int e = 0; e < V; e++) o[e] = 0;
                for (int j = 0; j < n; j++) {
                    const double *vj = j < P ? vc + (bh * P + j) * V : v + (((size_t)b * d.T + j - P) * d.H + h) * V;
                    for (int e = 0; e < V; e++) o[e] += w[j] / sum * vj[e];
                }
            }
        }
    free(w);
}
