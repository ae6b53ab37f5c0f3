#include "arena.h"

#include <string.h>

#include "core.h"

void sq_arena_plan(sq_arena *a) { memset(a, 0, sizeof *a); }

int sq_arena_alloc(sq_arena *a)
{
    size_t n = a->used;
    a->base = sq_alloc_floats(n);
    if (!a->base) return SQ_ENOMEM;
    memset(a->base, 0, (n ? n : 1) * sizeof(float));
    a->cap = n;
    a->used = 0;
    return SQ_OK;
}

int sq_arena_alloc_with(sq_arena *a, float *(*alloc)(size_t n), void (*release)(void *p))
{
    size_t n = a->used;
    a->base = alloc(n ? n : 1);
    if (!a->base) return SQ_ENOMEM;
    a->release = release;
    a->cap = n;
    a->used = 0;
    return SQ_OK;
}

float *sq_arena_take(sq_arena *a, size_t n)
{
    size_t aligned = (n + 15) / 16 * 16;
    if (!a->base) {
        a->used += aligned;
        return NULL;
    }
    if (a->used + aligned > a->cap) {
        sq_fail(SQ_ENOMEM, "arena exhausted: %zu + %zu floats of %zu planned", a->used, aligned, a->cap);
        return NULL;
    }
    float *p = a->base + a->used;
    a->used += aligned;
    return p;
}

void sq_arena_rewind(sq_arena *a) { a->used = 0; }

void sq_arena_free(sq_arena *a)
{
    if (a->release) a->release(a->base);
    else sq_free(a->base);
    memset(a, 0, sizeof *a);
}
