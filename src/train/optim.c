#include "optim.h"

#include <math.h>

sq_adamw_cfg sq_adamw_defaults(void) { return (sq_adamw_cfg){0.9f, 0.95f, 1e-8f, 0.1f}; }

float sq_lr_at(int t, int warmup, int total, float lr_max, float lr_min)
{
    if (warmup > 0 && t < warmup) return lr_max * (float)(t + 1) / (float)warmup;
    int span = total - warmup - 1;
    if (span <= 0) return lr_max;
    double frac = (double)(t - warmup) / span;
    if (frac > 1) frac = 1;
    return (float)(lr_min + 0.5 * (lr_max - lr_min) * (1.0 + cos(3.141592653589793 * frac)));
}
