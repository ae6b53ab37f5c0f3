/* Tests of the task generators (src/tasks): each task's targets are
 * recomputed here by an independent method, tokens stay in the vocabulary,
 * a seed fixes the stream, and bad requests are refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/tasks/tasks.h"
#include "harness.h"

enum { N = 200, TMAX = 300 };
static int32_t X[N * TMAX], Y[N * TMAX];

/* Count of sequences whose targets disagree with check(); the check sees
 * one sequence and returns 1 when all its targets are right. */
static int count_bad(int n, int T, int (*check)(const int32_t *x, const int32_t *y, int T))
{
    int bad = 0;
    for (int i = 0; i < n; i++) bad += !check(X + (size_t)i * T, Y + (size_t)i * T, T);
    return bad;
}

static int check_parity(const int32_t *x, const int32_t *y, int T)
{
    int ones = 0;
    for (int t = 0; t < T; t++) {
        ones += x[t] == 1;
        if (y[t] != ones % 2) return 0;
    }
    return 1;
}

static int check_count(const int32_t *x, const int32_t *y, int T)
{
    for (int t = 0; t < T; t++) {
        int c = 0;
        for (int s = 0; s <= t; s++) c += x[s];
        if (y[t] != 2 + c || c > 16) return 0;
    }
    return 1;
}

static int check_modsum(const int32_t *x, const int32_t *y, int T)
{
    long s = 0;
    for (int t = 0; t < T; t++) {
        s += x[t];
        if (y[t] != (int)(s % 5)) return 0;
    }
    return 1;
}

/* Left-to-right evaluation as a composition of affine maps v -> a v + b. */
static int check_modarith(const int32_t *x, const int32_t *y, int T)
{
    int a = 0, b = x[0]; /* the constant map to d0 */
    if (y[0] != x[0]) return 0;
    for (int t = 1; t + 1 < T; t += 2) {
        int op = x[t] - 5, d = x[t + 1], ma, mb;
        if (y[t] != -1 || op < 0 || op > 2 || d < 0 || d > 4) return 0;
        ma = op == 2 ? d : 1;
        mb = op == 0 ? d : op == 1 ? 5 - d : 0;
        a = (ma * a) % 5;
        b = (ma * b + mb) % 5;
        if (y[t + 1] != (a * 0 + b) % 5) return 0;
    }
    return 1;
}

/* p_T^{-1} = x_1^{-1} ∘ … ∘ x_T^{-1}; check p_T ∘ p_T^{-1} = id at every t. */
static int check_perm_m(const int32_t *x, const int32_t *y, int T, int m)
{
    int inv[8], g[8], p[8], tmp[8];
    for (int i = 0; i < m; i++) inv[i] = i;
    for (int t = 0; t < T; t++) {
        sq_perm_from_index(m, x[t], g);
        int ginv[8];
        for (int i = 0; i < m; i++) ginv[g[i]] = i;
        for (int i = 0; i < m; i++) tmp[i] = inv[ginv[i]];
        memcpy(inv, tmp, sizeof tmp);
        sq_perm_from_index(m, y[t], p);
        for (int i = 0; i < m; i++)
            if (p[inv[i]] != i) return 0;
    }
    return 1;
}
static int check_s3(const int32_t *x, const int32_t *y, int T) { return check_perm_m(x, y, T, 3); }
static int check_s5(const int32_t *x, const int32_t *y, int T) { return check_perm_m(x, y, T, 5); }

static int check_anbn(const int32_t *x, const int32_t *y, int T)
{
    int na = 0, nb = 0, ok_shape = 1;
    for (int t = 0; t < T; t++) {
        if (x[t] == 0) {
            if (nb) ok_shape = 0;
            na++;
        } else nb++;
        int want = ok_shape && na >= 1 && na == nb;
        if (y[t] != 2 + want) return 0;
    }
    return 1;
}

static int check_flipflop(const int32_t *x, const int32_t *y, int T)
{
    int last = -1, reads = 0;
    for (int t = 0; t + 1 < T; t += 2) {
        if (x[t] == 2) last = x[t + 1];
        if (x[t] == 3) {
            if (last < 0 || x[t + 1] != last || y[t + 1] != last) return 0;
            reads++;
        } else if (y[t + 1] != -1) return 0;
        if (y[t] != -1) return 0;
    }
    return reads > 0 && x[sq_task_answer_pos(y, T) - 1] == 3;
}

static void test_task(const char *name, int (*check)(const int32_t *, const int32_t *, int))
{
    const sq_task *t = sq_task_find(name);
    if (!th_check(t != NULL, "task %s exists: %s", name, sq_last_error())) return;
    int lens[] = {t->min_len < 4 ? 4 : t->min_len, 7, 64, 256};
    for (int li = 0; li < 4; li++) {
        int T = lens[li];
        uint64_t seed = th_seed() + (uint64_t)li;
        th_expect_ok("sample batch", sq_task_batch(t, T, N, seed, X, Y));
        int inrange = 1, answers = 1;
        for (int i = 0; i < N * T; i++) inrange &= X[i] >= 0 && X[i] < t->vocab && Y[i] >= -1 && Y[i] < t->vocab;
        for (int i = 0; i < N; i++) answers &= sq_task_answer_pos(Y + (size_t)i * T, T) >= 0;
        th_check(inrange, "%s T=%d: tokens and targets inside vocab %d", name, T, t->vocab);
        th_check(answers, "%s T=%d: every sequence has an answer", name, T);
        th_check(count_bad(N, T, check) == 0, "%s T=%d: targets agree with the independent check (%d bad)", name, T,
                 count_bad(N, T, check));
        static int32_t X2[N * TMAX], Y2[N * TMAX];
        sq_task_batch(t, T, N, seed, X2, Y2);
        th_check(!memcmp(X, X2, sizeof(int32_t) * (size_t)N * T) && !memcmp(Y, Y2, sizeof(int32_t) * (size_t)N * T),
                 "%s T=%d: same seed, same batch", name, T);
        sq_task_batch(t, T, N, seed + 1000, X2, Y2);
        th_check(memcmp(X, X2, sizeof(int32_t) * (size_t)N * T) != 0, "%s T=%d: another seed, another batch", name, T);
    }
}

/* Answers must not be guessable from the length alone: each class of
 * binary answers appears in 30-70% of sequences. */
static void test_balance(const char *name, int T)
{
    const sq_task *t = sq_task_find(name);
    sq_task_batch(t, T, N, th_seed() ^ 77, X, Y);
    int first = -1, same = 0;
    for (int i = 0; i < N; i++) {
        int a = Y[(size_t)i * T + sq_task_answer_pos(Y + (size_t)i * T, T)];
        if (first < 0) first = a;
        same += a == first;
    }
    th_check(same > 0.3 * N && same < 0.7 * N, "%s T=%d: answer classes balanced (%d of %d alike)", name, T, same, N);
}

static void test_perm_index(void)
{
    int ok = 1, p[8];
    for (int m = 1; m <= 5; m++)
        for (int i = 0; i < sq_perm_count(m); i++) {
            sq_perm_from_index(m, i, p);
            ok &= sq_perm_index(m, p) == i;
        }
    th_check(ok, "permutation index round trip for m = 1..5");
}

static void test_errors(void)
{
    th_check(sq_task_find("parityy") == NULL && strstr(sq_last_error(), "did you mean 'parity'") != NULL,
             "misspelt task suggests the right one: %s", sq_last_error());
    sq_clear_error();
    const sq_task *t = sq_task_find("anbn");
    th_expect_error("length below minimum", sq_task_batch(t, 1, 1, 1, X, Y), SQ_EINVAL);
    th_expect_error("zero batch", sq_task_batch(t, 8, 0, 1, X, Y), SQ_EINVAL);
    th_expect_error("NULL output", sq_task_batch(t, 8, 1, 1, NULL, Y), SQ_EINVAL);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "tasks");
    test_task("parity", check_parity);
    test_task("count", check_count);
    test_task("modsum", check_modsum);
    test_task("modarith", check_modarith);
    test_task("s3", check_s3);
    test_task("s5", check_s5);
    test_task("anbn", check_anbn);
    test_task("flipflop", check_flipflop);
    test_balance("parity", 64);
    test_balance("anbn", 64);
    test_balance("flipflop", 64);
    test_perm_index();
    test_errors();
    return th_finish();
}
