#include "core.h"

#include <stdlib.h>

static void *aligned_bytes(size_t n, size_t elem)
{
    if (n == 0) n = 1;
    if (n > ((size_t)-1 - 64) / elem) {
        sq_fail(SQ_ENOMEM, "allocation of %zu elements of %zu bytes overflows", n, elem);
        return NULL;
    }
    size_t bytes = (n * elem + 63) / 64 * 64;
    void *p = aligned_alloc(64, bytes);
    if (!p) sq_fail(SQ_ENOMEM, "could not allocate %zu bytes; use smaller shapes or free memory", bytes);
    return p;
}

float *sq_alloc_floats(size_t n) { return aligned_bytes(n, sizeof(float)); }
double *sq_alloc_doubles(size_t n) { return aligned_bytes(n, sizeof(double)); }
void sq_free(void *p) { free(p); }

float *sq_work_or_alloc(float *work, size_t nfloats, float **owned)
{
    *owned = NULL;
    if (work) return work;
    *owned = sq_alloc_floats(nfloats);
    return *owned;
}
