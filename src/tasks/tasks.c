/* The task generators of docs/tasks.md. Each writes one sequence. */
#include "tasks.h"

#include <string.h>

static int uniform_int(sq_rng *r, int n) { return (int)(sq_rng_u64(r) % (uint64_t)n); }

/* ---- permutations ---------------------------------------------------------- */

int sq_perm_count(int m)
{
    int f = 1;
    for (int i = 2; i <= m; i++) f *= i;
    return f;
}

/* Lehmer code: idx = Σ_i c_i (m-1-i)!, c_i = rank of p[i] among the unused. */
void sq_perm_from_index(int m, int idx, int *p)
{
    int used[8] = {0};
    for (int i = 0; i < m; i++) {
        int f = sq_perm_count(m - 1 - i), c = idx / f;
        idx %= f;
        for (int v = 0; v < m; v++) {
            if (used[v]) continue;
            if (c-- == 0) {
                p[i] = v;
                used[v] = 1;
                break;
            }
        }
    }
}

int sq_perm_index(int m, const int *p)
{
    int idx = 0;
    for (int i = 0; i < m; i++) {
        int c = 0;
        for (int j = i + 1; j < m; j++) c += p[j] < p[i];
        idx += c * sq_perm_count(m - 1 - i);
    }
    return idx;
}

/* ---- generators ---------------------------------------------------------- */

/* parity: bits; y_t = x_1 ⊕ … ⊕ x_t. */
static void sample_parity(const sq_task *t, int T, sq_rng *r, int32_t *x, int32_t *y)
{
    int p = 0;
    for (int i = 0; i < T; i++) {
        x[i] = uniform_int(r, 2);
        p ^= x[i];
        y[i] = p;
    }
}

/* count: blanks (0) with n ~ U{0..C} events (1) at random positions;
 * y_t = 2 + (events so far). Tokens: 0 blank, 1 event, 2..C+2 counts. */
static void sample_count(const sq_task *t, int T, sq_rng *r, int32_t *x, int32_t *y)
{
    int C = t->param, n = uniform_int(r, (C < T ? C : T) + 1);
    for (int i = 0; i < T; i++) x[i] = 0;
    for (int placed = 0; placed < n;) { /* n distinct positions */
        int pos = uniform_int(r, T);
        if (!x[pos]) {
            x[pos] = 1;
            placed++;
        }
    }
    int c = 0;
    for (int i = 0; i < T; i++) {
        c += x[i];
        y[i] = 2 + c;
    }
}

/* modsum: digits 0..m-1; y_t = (x_1 + … + x_t) mod m. */
static void sample_modsum(const sq_task *t, int T, sq_rng *r, int32_t *x, int32_t *y)
{
    int m = t->param, s = 0;
    for (int i = 0; i < T; i++) {
        x[i] = uniform_int(r, m);
        s = (s + x[i]) % m;
        y[i] = s;
    }
}

/* modarith: d₀ op₁ d₁ op₂ d₂ … evaluated left to right mod m; digits are
 * tokens 0..m-1, + − × are m, m+1, m+2. Targets after each digit: the value
 * so far; -1 on operators. Even positions hold digits. */
static void sample_modarith(const sq_task *t, int T, sq_rng *r, int32_t *x, int32_t *y)
{
    int m = t->param, val = 0, op = 0;
    for (int i = 0; i < T; i++) {
        if (i % 2 == 1) {
            op = uniform_int(r, 3);
            x[i] = m + op;
            y[i] = -1;
            continue;
        }
        int d = uniform_int(r, m);
        x[i] = d;
        if (i == 0) val = d;
        else if (op == 0) val = (val + d) % m;
        else if (op == 1) val = (val - d + m) % m;
        else val = (val * d) % m;
        y[i] = val;
    }
}

/* s3 / s5: x_t indexes a permutation of m elements; y_t indexes the
 * product p_t = x_t ∘ p_{t-1}, p_0 = identity. */
static void sample_perm(const sq_task *t, int T, sq_rng *r, int32_t *x, int32_t *y)
{
    int m = t->param, n = sq_perm_count(m), p[8], g[8], q[8];
    for (int i = 0; i < m; i++) p[i] = i;
    for (int i = 0; i < T; i++) {
        x[i] = uniform_int(r, n);
        sq_perm_from_index(m, x[i], g);
        for (int j = 0; j < m; j++) q[j] = g[p[j]];
        memcpy(p, q, sizeof(int) * (size_t)m);
        y[i] = sq_perm_index(m, p);
    }
}

/* anbn: aⁿ b^{T-n} (a = 0, b = 1), n ∈ [1, T-1]; with probability 1/2
 * n = T/2 (T even) so that half the answers are positive. y_t = 2 + [the
 * prefix x_1..x_t is a^k b^k for some k >= 1]. */
static void sample_anbn(const sq_task *t, int T, sq_rng *r, int32_t *x, int32_t *y)
{
    int n = (T % 2 == 0 && uniform_int(r, 2)) ? T / 2 : 1 + uniform_int(r, T - 1);
    for (int i = 0; i < T; i++) {
        x[i] = i < n ? 0 : 1;
        int bs = i + 1 - n;
        y[i] = 2 + (bs >= 1 && bs == n);
    }
}

/* flipflop (Liu et al. 2023): pairs (instruction, bit) with instructions
 * w (write, p = 0.1), r (read, p = 0.1), i (ignore, p = 0.8); the bit after
 * r must equal the last written bit (the first instruction is a write).
 * Tokens: 0, 1 bits; 2 w, 3 r, 4 i. Loss only on the bit after r. */
static void sample_flipflop(const sq_task *t, int T, sq_rng *r, int32_t *x, int32_t *y)
{
    int last = 0;
    for (int i = 0; i + 1 < T; i += 2) {
        int u = uniform_int(r, 10), ins = i == 0 ? 2 : (u == 0 ? 2 : u == 1 ? 3 : 4);
        if (i + 3 >= T && i > 0) ins = 3; /* every sequence ends with a read: its answer */
        int bit = ins == 3 ? last : uniform_int(r, 2);
        if (ins == 2) last = bit;
        x[i] = ins;
        y[i] = -1;
        x[i + 1] = bit;
        y[i + 1] = ins == 3 ? bit : -1;
    }
    if (T % 2) {
        x[T - 1] = 4;
        y[T - 1] = -1;
    }
}

static const sq_task tasks[] = {
    {"parity", "running parity of a bit string (state tracking, Z2)", 2, 1, 2, sample_parity},
    {"count", "running count of sparse events, at most 16 (accumulation over long gaps)", 19, 1, 16, sample_count},
    {"modsum", "running sum of digits mod 5 (state tracking, Z5)", 5, 1, 5, sample_modsum},
    {"modarith", "left-to-right + - x expression mod 5 (affine maps mod 5)", 8, 1, 5, sample_modarith},
    {"s3", "composition of permutations of 3 elements (word problem of S3)", 6, 1, 3, sample_perm},
    {"s5", "composition of permutations of 5 elements (word problem of S5, not solvable)", 120, 1, 5, sample_perm},
    {"anbn", "is the prefix a^k b^k? (counting)", 4, 2, 0, sample_anbn},
    {"flipflop", "flip-flop language: recall the last written bit (memory, not tracking)", 5, 4, 0, sample_flipflop},
};
static const sq_task *const task_list[] = {&tasks[0], &tasks[1], &tasks[2], &tasks[3], &tasks[4],
                                           &tasks[5], &tasks[6], &tasks[7], NULL};

const sq_task *const *sq_task_list(void) { return task_list; }

const sq_task *sq_task_find(const char *name)
{
    if (!name) {
        sq_fail(SQ_EINVAL, "task: no task name given");
        return NULL;
    }
    const sq_task *best = NULL;
    int bd = 99;
    for (int i = 0; task_list[i]; i++) {
        if (!strcmp(name, task_list[i]->name)) return task_list[i];
        int d = sq_edit_distance(name, task_list[i]->name);
        if (d < bd) {
            bd = d;
            best = task_list[i];
        }
    }
    char names[256] = "";
    for (int i = 0; task_list[i]; i++) {
        strcat(names, i ? ", " : "");
        strcat(names, task_list[i]->name);
    }
    if (best && bd <= 3) sq_fail(SQ_EINVAL, "unknown task '%s'; did you mean '%s'? (tasks: %s)", name, best->name, names);
    else sq_fail(SQ_EINVAL, "unknown task '%s' (tasks: %s)", name, names);
    return NULL;
}

int sq_task_batch(const sq_task *t, int T, int n, uint64_t seed, int32_t *x, int32_t *y)
{
    int rc;
    if ((rc = sq_check_ptr("task", "task", t)) || (rc = sq_check_ptr("task", "x", x)) ||
        (rc = sq_check_ptr("task", "y", y)))
        return rc;
    if (T < t->min_len) return sq_fail(SQ_EINVAL, "task %s: length %d is below its minimum %d", t->name, T, t->min_len);
    if (n < 1) return sq_fail(SQ_EINVAL, "task %s: batch size must be >= 1, got %d", t->name, n);
    sq_rng r;
    sq_rng_seed(&r, seed ^ ((uint64_t)T << 32) ^ (uint64_t)n * 0x100000001B3ull);
    for (int i = 0; i < n; i++) t->sample(t, T, &r, x + (size_t)i * T, y + (size_t)i * T);
    return SQ_OK;
}

int sq_task_answer_pos(const int32_t *y, int T)
{
    for (int t = T - 1; t >= 0; t--)
        if (y[t] >= 0) return t;
    return -1;
}
