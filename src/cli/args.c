#include "args.h"

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

int args_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63) return 99;
    int row[64];
    for (size_t j = 0; j <= m; j++) row[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

void args_unknown(const char *cmd, const char *a, const char *const *flags)
{
    const char *best = NULL;
    int bd = 4;
    for (int i = 0; flags[i]; i++) {
        int dist = args_distance(a, flags[i]);
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
