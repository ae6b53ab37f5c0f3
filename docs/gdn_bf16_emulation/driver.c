/* Experiment: the Gated DeltaNet's CPU chunkwise forward and backward with the operands of
 * chosen products rounded to bf16 (EMU_MASK bits, see the patch), each chunk's saved state
 * (EMU_SAVE) and q̂, k̂ (EMU_ROWS) rounded, against the same code with nothing rounded.
 * Inputs as the GPU bf16 tests (tests/cuda/test_cuda_bf16.c, gdn_inputs): q, k, v, dO rounded
 * to bf16 for every run; α̃ ~ N(-2, 1), β̃ ~ N(0, 1), A_log ~ U(-1, 1), dt_bias ~ U(-1, 0.5),
 * S0 ~ N(0, 0.5²), dS1 ~ N(0, 0.5²); k ~ N(0, 1) with the in-op L2 norm, N(0, (0.4/K)²) without.
 * Usage: ./driver B T H K V l2 seed [alpha_mean] (EACH=1: also each product alone; alpha_mean -2
 * as the tests, -6 for a slow decay, memory of hundreds of steps). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/ops/gdn.h"
static unsigned long long st = 88172645463325252ull;
static double u01(void) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return (st >> 11) * (1.0 / 9007199254740992.0); }
static float nrm(void) { double a = u01(), b = u01(); return (float)(sqrt(-2 * log(a + 1e-300)) * cos(6.283185307179586 * b)); }
static float bf16r(float x) { unsigned u; memcpy(&u, &x, 4); u += 0x7fff + ((u >> 16) & 1); u &= 0xffff0000u; float y; memcpy(&y, &u, 4); return y; }
static float *randn(size_t n, float sd, float mean, int round) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) { x[i] = mean + sd * nrm(); if (round) x[i] = bf16r(x[i]); }
    return x;
}
static float *randu(size_t n, float lo, float hi) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * u01());
    return x;
}
static double rel(const float *a, const float *b, size_t n) {
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) d += (double)(a[i] - b[i]) * (a[i] - b[i]), r += (double)b[i] * b[i];
    return r > 0 ? sqrt(d / r) : sqrt(d);
}
enum { OUT, S1, DQ, DK, DV, DAL, DBE, DALOG, DDTB, DS0, NR };
static const char *names[NR] = {"out", "S1", "dq", "dk", "dv", "dalpha", "dbeta", "dA_log", "ddt_b", "dS0"};

typedef struct { const char *label; unsigned long mask; int save, rows; } setting;

static void run(sq_dims d, const sq_gdn_opts *o, const sq_gdn_in *in, const float *S0, const float *dout,
                const float *dS1, const setting *s, float **r)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lu", s->mask);
    setenv("EMU_MASK", buf, 1);
    setenv("EMU_SAVE", s->save ? "1" : "0", 1);
    setenv("EMU_ROWS", s->rows ? "1" : "0", 1);
    sq_gdn_grad g = {r[DQ], r[DK], r[DV], r[DAL], r[DBE], r[DALOG], r[DDTB]};
    if (sq_gdn_fwd(d, o, in, S0, r[OUT], r[S1], NULL) || sq_gdn_bwd(d, o, in, S0, dout, dS1, &g, r[DS0], NULL)) {
        fprintf(stderr, "gdn failed\n");
        exit(1);
    }
}

#define BIT(i) (1ul << (i))
int main(int argc, char **argv)
{
    if (argc < 8) { fprintf(stderr, "usage: %s B T H K V l2 seed [alpha_mean]\n", argv[0]); return 2; }
    int B = atoi(argv[1]), T = atoi(argv[2]), H = atoi(argv[3]), K = atoi(argv[4]), V = atoi(argv[5]);
    int l2 = atoi(argv[6]), seed = atoi(argv[7]), each = getenv("EACH") && atoi(getenv("EACH"));
    float amean = argc > 8 ? (float)atof(argv[8]) : -2.0f;
    st += (unsigned long long)seed * 0x9E3779B97F4A7C15ull;
    sq_dims d = {B, T, H, K, V};
    size_t nq = (size_t)B * T * H * K, nv = (size_t)B * T * H * V, ng = (size_t)B * T * H, nS = (size_t)B * H * K * V;
    float *q = randn(nq, 1, 0, 1), *k = randn(nq, l2 ? 1.0f : 0.4f / K, 0, 1), *v = randn(nv, 1, 0, 1);
    float *alpha = randn(ng, 1, amean, 0), *beta = randn(ng, 1, 0, 0), *alog = randu(H, -1, 1), *dtb = randu(H, -1, 0.5f);
    float *S0 = randn(nS, 0.5f, 0, 0), *dout = randn(nv, 1, 0, 1), *dS1 = randn(nS, 0.5f, 0, 0);
    sq_gdn_opts o = {64, 0, l2};
    sq_gdn_in in = {q, k, v, alpha, beta, alog, dtb};
    const size_t sz[NR] = {nv, nS, nq, nq, nv, ng, ng, H, H, nS};
    /* product sites (the patch's numbering) */
    const unsigned long fwd = 0xfful, all = 0x3ffffful, bwd = all & ~fwd;
    const unsigned long ut = BIT(0) | BIT(2) | BIT(3) | BIT(15) | BIT(16) | BIT(20) | BIT(21);
    const unsigned long state = BIT(1) | BIT(5) | BIT(7) | BIT(9) | BIT(10) | BIT(14) | BIT(17) | BIT(18) | BIT(19);
    const unsigned long intra = BIT(4) | BIT(6) | BIT(8) | BIT(11) | BIT(12) | BIT(13);
    setting sets[64] = {
        {"exact", 0, 0, 0},
        {"all (FLA-like)", all, 1, 1},
        {"fwd products", fwd, 0, 0},
        {"bwd products", bwd, 0, 0},
        {"UT products", ut, 0, 0},
        {"state products", state, 1, 0},
        {"intra products", intra, 0, 0},
        {"all but UT", all & ~ut, 1, 1},
        {"all but state", all & ~state, 0, 1},
        {"all but intra", all & ~intra, 1, 1},
        {"rows q̂ k̂ only", 0, 0, 1},
        {"saved states", 0, 1, 0},
    };
    int ns = 12;
    static const char *site_names[22] = {"KK^T", "W S", "Tm R (U)", "Tm Kx (W)", "Q K^T", "Qg S", "P Vt", "Kd^T Vt",
                                         "P^T dO", "Kd dS", "Vt dS^T", "dO Vt^T", "dP K", "dP^T Q", "dO S^T", "Tm^T dVt",
                                         "Y Vt^T", "Y S^T", "Qg^T dO", "Kx^T Y", "dA K", "dA^T K"};
    if (each)
        for (int i = 0; i < 22; i++) sets[ns++] = (setting){site_names[i], BIT(i), 0, 0};
    float *r[64][NR];
    for (int m = 0; m < ns; m++) {
        for (int i = 0; i < NR; i++) r[m][i] = calloc(sz[i], sizeof(float));
        run(d, &o, &in, S0, dout, dS1, &sets[m], r[m]);
    }
    printf("B%d T%d H%d K%d V%d l2 %d seed %d alpha mean %g: ‖x - x_exact‖/‖x_exact‖\n", B, T, H, K, V, l2, seed, amean);
    printf("  %-16s", "");
    for (int i = 0; i < NR; i++) printf(" %8s", names[i]);
    printf("\n");
    /* the results' own bf16 rounding (out, dq, dk, dv are returned in bf16) */
    printf("  %-16s", "bf16(result)");
    for (int i = 0; i < NR; i++) {
        if (i == OUT || i == DQ || i == DK || i == DV) {
            float *x = malloc(sz[i] * sizeof(float));
            for (size_t j = 0; j < sz[i]; j++) x[j] = bf16r(r[0][i][j]);
            printf(" %8.1e", rel(x, r[0][i], sz[i]));
            free(x);
        } else
            printf(" %8s", "-");
    }
    printf("\n");
    for (int m = 1; m < ns; m++) {
        printf("  %-16s", sets[m].label);
        double worst = 0;
        for (int i = 0; i < NR; i++) {
            double e = rel(r[m][i], r[0][i], sz[i]);
            if (e > worst) worst = e;
            printf(" %8.1e", e);
        }
        printf("   max %.1e\n", worst);
    }
    return 0;
}
