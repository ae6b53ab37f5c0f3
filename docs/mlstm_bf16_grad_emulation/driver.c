/* Experiment: the mLSTM CPU backward with its chunk states rounded as the GPU's fused bf16 backward
 * reads them (SUBQ_EXP_ROUND=1: hi bf16; 2: hi+lo), against the unrounded CPU backward; normal
 * gates (ĩ ~ U(-3,3), f̃ ~ U(0,6)) as the GPU tests; q, k, v, dO rounded to bf16 for both. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/ops/mlstm.h"
static unsigned long long st = 88172645463325252ull;
static double u01(void) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return (st >> 11) * (1.0 / 9007199254740992.0); }
static float nrm(void) { double a = u01(), b = u01(); return (float)(sqrt(-2 * log(a + 1e-300)) * cos(6.283185307179586 * b)); }
static float bf16r(float x) { unsigned u; memcpy(&u, &x, 4); u += 0x7fff + ((u >> 16) & 1); u &= 0xffff0000u; float y; memcpy(&y, &u, 4); return y; }
static float *arr(size_t n, int kind, float lo, float hi) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = kind ? (float)(lo + (hi - lo) * u01()) : bf16r(nrm());
    return x;
}
static double rel(const float *a, const float *b, size_t n) {
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) d += (double)(a[i] - b[i]) * (a[i] - b[i]), r += (double)b[i] * b[i];
    return sqrt(d / r);
}
int main(int argc, char **argv)
{
    int B = atoi(argv[1]), T = atoi(argv[2]), H = atoi(argv[3]), K = atoi(argv[4]), V = atoi(argv[5]), seed = argc > 6 ? atoi(argv[6]) : 1;
    st += (unsigned long long)seed * 0x9E3779B97F4A7C15ull;
    sq_dims d = {B, T, H, K, V};
    size_t nq = (size_t)B * T * H * K, nv = (size_t)B * T * H * V, ng = (size_t)B * T * H;
    float *q = arr(nq, 0, 0, 0), *k = arr(nq, 0, 0, 0), *v = arr(nv, 0, 0, 0), *dout = arr(nv, 0, 0, 0);
    float *ig = arr(ng, 1, -3, 3), *fg = arr(ng, 1, 0, 6);
    int with_state = argc > 7 ? atoi(argv[7]) : 0;
    size_t nS = (size_t)B * H * K * V, nn = (size_t)B * H * K, nm = (size_t)B * H;
    float *S0 = malloc(nS * 4), *n0 = malloc(nn * 4), *m0 = malloc(nm * 4);
    for (size_t i = 0; i < nS; i++) S0[i] = 0.3f * nrm();
    for (size_t i = 0; i < nn; i++) n0[i] = (float)(0.1 + 0.9 * u01());
    for (size_t i = 0; i < nm; i++) m0[i] = (float)(-1 + 2 * u01());
    sq_mlstm_state s0 = {S0, n0, m0};
    sq_mlstm_opts o = sq_mlstm_defaults();
    sq_mlstm_in in = {q, k, v, ig, fg};
    const char *sets[][6] = {
        /* SUBQ_EXP_ROUND EXP_DH EXP_Z EXP_QA EXP_KG label */
        {"0", "0", "0", "0", "0", "exact"},   {"1", "0", "0", "0", "0", "states"}, {"0", "1", "0", "0", "0", "dH"},
        {"0", "0", "1", "0", "0", "Z"},       {"0", "0", "0", "1", "0", "qa+dN"},  {"0", "0", "0", "0", "1", "kg"},
        {"1", "1", "1", "1", "1", "all"},     {"2", "1", "1", "1", "1", "all,lo"},
        {"1", "1", "1", "1", "0", "all-kg"},  {"1", "0", "1", "1", "1", "all-dH"},  {"1", "0", "1", "1", "0", "-dH-kg"},
        {"2", "0", "1", "1", "0", "lo-dH-kg"}, {"2", "1", "1", "0", "0", "lo,halves"}, {"2", "0", "0", "0", "0", "branch"},
    };
    const char *vars[5] = {"SUBQ_EXP_ROUND", "EXP_DH", "EXP_Z", "EXP_QA", "EXP_KG"};
    const size_t gn[5] = {nq, nq, nv, ng, ng};
    const char *names[5] = {"dq", "dk", "dv", "dig", "dfg"};
    int ns = sizeof sets / sizeof sets[0];
    float *g[16][5];
    for (int m = 0; m < ns; m++) {
        for (int i = 0; i < 5; i++) setenv(vars[i], sets[m][i], 1);
        for (int i = 0; i < 5; i++) g[m][i] = calloc(gn[i], sizeof(float));
        sq_mlstm_grad gr = {g[m][0], g[m][1], g[m][2], g[m][3], g[m][4]};
        if (sq_mlstm_bwd(d, &o, &in, with_state ? &s0 : NULL, dout, NULL, &gr, NULL, NULL)) { fprintf(stderr, "bwd failed\n"); return 1; }
    }
    printf("B%d T%d H%d K%d V%d seed %d\n", B, T, H, K, V, seed);
    for (int m = 1; m < ns; m++) {
        printf("  %-8s", sets[m][5]);
        for (int i = 0; i < 5; i++) printf("  %s %.1e", names[i], rel(g[m][i], g[0][i], gn[i]));
        printf("\n");
    }
    return 0;
}
