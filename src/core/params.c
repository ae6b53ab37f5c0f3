#include "params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

int sq_params_add(sq_params *ps, const char *name, int ndim, const int64_t *shape, int decay)
{
    int rc;
    if ((rc = sq_check_ptr("params", "registry", ps)) || (rc = sq_check_ptr("params", "name", name))) return rc;
    if (ps->data) return sq_fail(SQ_EINVAL, "params: %s added after the buffers were allocated", name);
    if (!name[0] || strlen(name) >= SQ_PARAM_NAME) return sq_fail(SQ_EINVAL, "params: name empty or too long: %s", name);
    if (ndim < 1 || ndim > SQ_PARAM_MAXDIM || !shape)
        return sq_fail(SQ_EINVAL, "params: %s needs 1..%d dimensions", name, SQ_PARAM_MAXDIM);
    if (sq_params_find(ps, name)) return sq_fail(SQ_EINVAL, "params: %s registered twice", name);
    size_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1) return sq_fail(SQ_EINVAL, "params: %s has a dimension < 1", name);
        n *= (size_t)shape[d];
    }
    if (ps->n == ps->cap) {
        int cap = ps->cap ? 2 * ps->cap : 32;
        sq_param *q = realloc(ps->p, (size_t)cap * sizeof *q);
        if (!q) return sq_fail(SQ_ENOMEM, "params: out of memory registering %s", name);
        ps->p = q;
        ps->cap = cap;
    }
    sq_param *p = &ps->p[ps->n++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    memcpy(p->shape, shape, (size_t)ndim * sizeof *shape);
    p->off = ps->total;
    p->n = n;
    p->decay = decay;
    ps->total += (n + 15) / 16 * 16; /* keep every tensor 64-byte aligned */
    return SQ_OK;
}

int sq_params_alloc(sq_params *ps)
{
    ps->data = sq_alloc_floats(ps->total);
    ps->grad = sq_alloc_floats(ps->total);
    if (!ps->data || !ps->grad) return SQ_ENOMEM;
    memset(ps->data, 0, (ps->total ? ps->total : 1) * sizeof(float));
    memset(ps->grad, 0, (ps->total ? ps->total : 1) * sizeof(float));
    return SQ_OK;
}

const sq_param *sq_params_find(const sq_params *ps, const char *name)
{
    for (int i = 0; i < ps->n; i++)
        if (!strcmp(ps->p[i].name, name)) return &ps->p[i];
    return NULL;
}

void sq_params_free(sq_params *ps)
{
    free(ps->p);
    sq_free(ps->data);
    sq_free(ps->grad);
    memset(ps, 0, sizeof *ps);
}
