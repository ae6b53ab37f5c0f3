/* Synthetic state-tracking and length-generalisation tasks, generated on
 * the fly from a seed. docs/tasks.md defines each one exactly.
 *
 * A sample is a token sequence x[T] and targets y[T] over one vocabulary of
 * the task's size; y[t] = -1 where no loss is taken. The "answer" of a
 * sequence is its last target >= 0; evaluation reports answer accuracy. */
#ifndef SUBQ_TASKS_H
#define SUBQ_TASKS_H

#include <stdint.h>

#include "../core/core.h"

typedef struct sq_task sq_task;

struct sq_task {
    const char *name;
    const char *summary;
    int vocab;    /* token ids 0..vocab-1, inputs and targets alike */
    int min_len;  /* shortest T the task is defined for */
    int param;    /* the task's size parameter (modulus, group, max count) */
    /* Fills x[T] and y[T]; the caller has checked T >= min_len. */
    void (*sample)(const sq_task *t, int T, sq_rng *r, int32_t *x, int32_t *y);
};

/* The task of that name, or NULL with a message that suggests the closest
 * name (SQ_EINVAL). */
const sq_task *sq_task_find(const char *name);
/* All tasks, NULL-terminated. */
const sq_task *const *sq_task_list(void);

/* n samples of length T into x[n*T], y[n*T]; the stream depends only on
 * (seed, T, n), so an evaluation set is fixed by its seed. */
int sq_task_batch(const sq_task *t, int T, int n, uint64_t seed, int32_t *x, int32_t *y);

/* Index of the last target >= 0 in y[T], or -1. */
int sq_task_answer_pos(const int32_t *y, int T);

/* Permutations of m elements (m <= 5) in lexicographic order: index <->
 * array, and the composition p_t = x ∘ p (apply p first). */
int sq_perm_count(int m);
void sq_perm_from_index(int m, int idx, int *p);
int sq_perm_index(int m, const int *p);

#endif
