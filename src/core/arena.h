/* One arena for a model's activations and gradients, planned up front
 * (DESIGN.md §4, as llm.c does): the same sequence of sq_arena_take calls
 * runs twice, first on a planning arena (no memory, it only adds up sizes),
 * then on the real one, so hot loops never allocate. */
#ifndef SUBQ_CORE_ARENA_H
#define SUBQ_CORE_ARENA_H

#include <stddef.h>

typedef struct {
    float *base;  /* NULL while planning */
    size_t used;  /* floats handed out (or planned) so far */
    size_t cap;   /* floats available (0 while planning) */
    void (*release)(void *p); /* frees base: NULL = sq_free (host memory) */
} sq_arena;

/* A planning arena: takes return NULL and only count. */
void sq_arena_plan(sq_arena *a);
/* Allocates the planned size (a->used floats) and rewinds; SQ_ENOMEM. */
int sq_arena_alloc(sq_arena *a);
/* The same in another memory (a device's): alloc returns n floats or NULL
 * (message set), release frees them; the contents are not zeroed. */
int sq_arena_alloc_with(sq_arena *a, float *(*alloc)(size_t n), void (*release)(void *p));
/* n floats, 16-float aligned; NULL while planning or when the arena is
 * exhausted (a bug: the plan and the real pass differ). */
float *sq_arena_take(sq_arena *a, size_t n);
void sq_arena_rewind(sq_arena *a);
void sq_arena_free(sq_arena *a);

#endif
