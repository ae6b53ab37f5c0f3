/* float64 sLSTM: the stabilized scalar-cell recurrence with head-wise
 * recurrent weights, step by step (src/ops/slstm.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"

static double logsig(double x) { return x < 0 ? x - log1p(exp(x)) : -log1p(exp(-x)); }

void ref_slstm_fwd(sq_dims d, int exp_forget, const ref_slstm_in *in, const ref_slstm_state *s0, double *out,
                   ref_slstm_state *s1)
{
    int K = d.K, H = d.H;
    double *c = malloc(sizeof(double) * K), *n = malloc(sizeof(double) * K), *m = malloc(sizeof(double) * K),
           *h = malloc(sizeof(double) * K), *hn = malloc(sizeof(double) * K);
    for (int b = 0; b < d.B; b++)
        for (int hd = 0; hd < H; hd++) {
            size_t st = ((size_t)b * H + hd) * K;
            for (int j = 0; j < K; j++) {
                c[j] = s0 ? s0->c[st + j] : 0;
                n[j] = s0 ? s0->n[st + j] : 0;
                m[j] = s0 ? s0->m[st + j] : 0;
                h[j] = s0 ? s0->h[st + j] : 0;
            }
            for (int t = 0; t < d.T; t++) {
                const double *gx = in->gx + (((size_t)b * d.T + t) * H + hd) * 4 * K;
                for (int j = 0; j < K; j++) {
                    double p[4];
                    for (int g = 0; g < 4; g++) {
                        const double *row = in->R + (((size_t)hd * 4 + g) * K + j) * K;
                        p[g] = gx[g * K + j] + in->bias[((size_t)hd * 4 + g) * K + j];
                        for (int l = 0; l < K; l++) p[g] += row[l] * h[l];
                    }
                    double lf = exp_forget ? p[1] : logsig(p[1]);
                    double mn = n[j] == 0 ? p[0] : fmax(lf + m[j], p[0]);
                    double ig = exp(p[0] - mn), fg = n[j] == 0 ? 0 : exp(lf + m[j] - mn);
                    c[j] = fg * c[j] + ig * tanh(p[2]);
                    n[j] = fg * n[j] + ig;
                    m[j] = mn;
                    hn[j] = 1 / (1 + exp(-p[3])) * c[j] / n[j];
                }
                memcpy(h, hn, sizeof(double) * K);
                memcpy(out + (((size_t)b * d.T + t) * H + hd) * K, h, sizeof(double) * K);
            }
            if (s1) {
                for (int j = 0; j < K; j++) {
                    if (s1->c) s1->c[st + j] = c[j];
                    if (s1->n) s1->n[st + j] = n[j];
                    if (s1->m) s1->m[st + j] = m[j];
                    if (s1->h) s1->h[st + j] = h[j];
                }
            }
        }
    free(c); free(n); free(m); free(h); free(hn);
}
