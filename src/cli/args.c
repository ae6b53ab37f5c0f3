#include "args.h"

#include "../core/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int args_known(const char *a, const char *const *flags)
{
    for (int i = 0; flags[i]; i++)
        if (!strcmp(a, flags[i])) return 1;
    return 0;
}

void args_unknown(const char *cmd, const char *a, const char *const *flags)
{
    const char *best = NULL;
    int bd = 4;
    for (int i = 0; flags[i]; i++) {
        int dist = sq_edit_distance(a, flags[i]);
        if (dist < bd) {
            bd = dist;
            best = flags[i];
        }
    }
    if (best) fprintf(stderr, "%s: unknown option '%s'; did you mean '%s'? (--help lists the options)\n", cmd, a, best);
    else fprintf(stderr, "%s: unknown option '%s' (--help lists the options)\n", cmd, a);
}

int args_int(const char *flag, const char *v, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "%s expects an integer in [%d, %d], got '%s'\n", flag, lo, hi, v);
        return 0;
    }
    *out = (int)x;
    return 1;
}

int args_float(const char *flag, const char *v, double lo, double hi, float *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "%s expects a number in [%g, %g], got '%s'\n", flag, lo, hi, v);
        return 0;
    }
    *out = (float)x;
    return 1;
}

int args_int_list(const char *flag, const char *v, int lo, int hi, int *out, int max, int *n)
{
    char buf[32];
    *n = 0;
    for (const char *p = v; *p;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof buf || *n == max) {
            fprintf(stderr, "%s expects up to %d comma-separated integers, got '%s'\n", flag, max, v);
            return 0;
        }
        memcpy(buf, p, len);
        buf[len] = 0;
        if (!args_int(flag, buf, lo, hi, &out[(*n)++])) return 0;
        p += len + (p[len] == ',');
    }
    if (*n == 0) fprintf(stderr, "%s expects a list of integers, got an empty one\n", flag);
    return *n > 0;
}
