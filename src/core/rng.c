#include "core.h"

#include <math.h>

/* splitmix64 (Steele, Lea, Flood 2014): a 64-bit counter passed through a
 * bijective mixer; small state, good statistics, fully reproducible. */
void sq_rng_seed(sq_rng *r, uint64_t seed) { r->s = seed ^ 0x9E3779B97F4A7C15ull; }

uint64_t sq_rng_u64(sq_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double sq_rng_uniform(sq_rng *r) { return (double)(sq_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

double sq_rng_normal(sq_rng *r)
{
    double u1 = sq_rng_uniform(r), u2 = sq_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void sq_rng_fill_uniform(sq_rng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * sq_rng_uniform(r));
}

void sq_rng_fill_normal(sq_rng *r, float *x, size_t n, float mean, float std)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(mean + std * sq_rng_normal(r));
}
