/* float64 mLSTM: the stabilized recurrence of DESIGN.md §2, step by step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"

static double logsig(double x) { return x < 0 ? x - log1p(exp(x)) : -log1p(exp(-x)); }

void ref_mlstm_fwd(sq_dims d, int exp_forget, const ref_mlstm_in *in, const ref_mlstm_state *s0, double *out,
                   ref_mlstm_state *s1)
{
    int K = d.K, V = d.V;
    double *S = malloc(sizeof(double) * K * V), *n = malloc(sizeof(double) * K), qs = 1 / sqrt((double)K);
    for (int b = 0; b < d.B; b++)
        for (int h = 0; h < d.H; h++) {
            size_t bh = (size_t)b * d.H + h;
            double m = s0 ? s0->m[bh] : 0;
            for (int i = 0; i < K * V; i++) S[i] = s0 ? s0->S[bh * K * V + i] : 0;
            for (int i = 0; i < K; i++) n[i] = s0 ? s0->n[bh * K + i] : 0;
            for (int t = 0; t < d.T; t++) {
                size_t g = ((size_t)b * d.T + t) * d.H + h;
                const double *q = in->q + g * K, *k = in->k + g * K, *v = in->v + g * V;
                double la = exp_forget ? in->fgate[g] : logsig(in->fgate[g]), ig = in->igate[g];
                double mn = fmax(la + m, ig), fs = exp(la + m - mn), is = exp(ig - mn);
                for (int a = 0; a < K; a++) {
                    for (int c = 0; c < V; c++) S[a * V + c] = fs * S[a * V + c] + is * k[a] * v[c];
                    n[a] = fs * n[a] + is * k[a];
                }
                m = mn;
                double N = 0;
                for (int a = 0; a < K; a++) N += n[a] * q[a] * qs;
                double D = fmax(fabs(N), exp(-m));
                for (int c = 0; c < V; c++) {
                    double o = 0;
                    for (int a = 0; a < K; a++) o += S[a * V + c] * q[a] * qs;
                    out[g * V + c] = o / D;
                }
            }
            if (s1) {
                if (s1->S) memcpy(s1->S + bh * K * V, S, sizeof(double) * K * V);
                if (s1->n) memcpy(s1->n + bh * K, n, sizeof(double) * K);
                if (s1->m) s1->m[bh] = m;
            }
        }
    free(S);
    free(n);
}
