/* The parameter registry and checkpoints: bit-exact round trips of
 * weights, optimizer moments, step and stream state; refusal of another
 * config, another model, truncated or mixed files; a failed save leaves the
 * previous checkpoint intact. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/model/checkpoint.h"
#include "harness.h"

static char root[256];

static void make_model(sq_params *ps, int wide, int extra, int long_name)
{
    memset(ps, 0, sizeof *ps);
    int64_t a[2] = {4, wide ? 6 : 5}, b[1] = {5}, c[3] = {2, 3, 2};
    sq_params_add(ps, "embed.weight", 2, a, 1);
    sq_params_add(ps, "blocks.0.norm.weight", 1, b, 0);
    sq_params_add(ps, "blocks.0.conv.weight", 3, c, 1);
    if (extra) sq_params_add(ps, "head.bias", 1, b, 0);
    if (long_name) {
        char name[SQ_PARAM_NAME];
        memset(name, 'x', sizeof name - 1);
        name[sizeof name - 1] = 0;
        sq_params_add(ps, name, 1, b, 0);
    }
    sq_params_alloc(ps);
    sq_rng_fill_normal(th_rng(), ps->data, ps->total, 0, 1);
}

static float *moments(const sq_params *ps)
{
    return th_randn(ps->total ? ps->total : 1, 0.1f);
}

static int same(const float *a, const float *b, const sq_params *ps)
{
    for (int i = 0; i < ps->n; i++)
        if (memcmp(a + ps->p[i].off, b + ps->p[i].off, ps->p[i].n * sizeof(float))) return 0;
    return 1;
}

static void corrupt_truncate(const char *path)
{
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    if (truncate(path, n / 2)) printf("  (could not truncate %s)\n", path);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "checkpoint");
    snprintf(root, sizeof root, "/tmp/subq_test_ckpt2_%ld", (long)getpid());
    mkdir(root, 0755);
    char dir[300], p[400];
    snprintf(dir, sizeof dir, "%s/run", root);
    const char *cfg = "{\"model\": \"xlstm[1:1]\", \"d_model\": 64}";

    sq_params ps, back;
    make_model(&ps, 0, 0, 0);
    int64_t s1[1] = {3};
    th_expect_error("registry refuses a duplicate name", sq_params_add(&ps, "embed.weight", 1, s1, 0), SQ_EINVAL);
    th_check(sq_params_find(&ps, "blocks.0.conv.weight") && sq_params_find(&ps, "blocks.0.conv.weight")->n == 12,
             "registry finds tensors by name");
    float *m = moments(&ps), *v = moments(&ps);
    th_expect_ok("save", sq_ckpt_save(dir, cfg, &ps, m, v, 1234, 987654321ull));

    make_model(&back, 0, 0, 0);
    float *m2 = moments(&back), *v2 = moments(&back);
    long step = 0;
    uint64_t rng = 0;
    th_expect_ok("load", sq_ckpt_load(dir, cfg, &back, m2, v2, &step, &rng));
    th_check(same(ps.data, back.data, &ps) && same(m, m2, &ps) && same(v, v2, &ps) && step == 1234 && rng == 987654321ull,
             "weights, moments, step and stream state come back bit-exact");

    th_check(sq_ckpt_load(dir, "{\"model\": \"gdn\"}", &back, NULL, NULL, NULL, NULL) == SQ_EIO &&
                 strstr(sq_last_error(), "differs"),
             "another config is refused: %s", sq_last_error());
    sq_params wide, extra;
    make_model(&wide, 1, 0, 0);
    make_model(&extra, 0, 1, 0);
    th_check(sq_ckpt_load(dir, NULL, &wide, NULL, NULL, NULL, NULL) == SQ_EIO, "a tensor of another shape is refused: %s",
             sq_last_error());
    th_check(sq_ckpt_load(dir, NULL, &extra, NULL, NULL, NULL, NULL) == SQ_EIO, "a missing tensor is refused: %s",
             sq_last_error());

    /* files of another run in the folder */
    char dir2[300];
    snprintf(dir2, sizeof dir2, "%s/other", root);
    sq_ckpt_save(dir2, "{\"model\": \"gdn\"}", &ps, m, v, 7, 7);
    char from[400];
    snprintf(from, sizeof from, "%s/optim.safetensors", dir2);
    snprintf(p, sizeof p, "%s/optim.safetensors", dir);
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "cp %s %s.keep && cp %s %s", p, p, from, p);
    if (system(cmd)) printf("  (cp failed)\n");
    th_check(sq_ckpt_load(dir, cfg, &back, m2, v2, &step, &rng) == SQ_EIO && strstr(sq_last_error(), "does not belong"),
             "an optimizer file of another run is refused: %s", sq_last_error());
    snprintf(cmd, sizeof cmd, "mv %s.keep %s", p, p);
    if (system(cmd)) printf("  (mv failed)\n");

    /* a failed save (a name too long for the optimizer file) keeps the old checkpoint */
    sq_params bad;
    make_model(&bad, 0, 0, 1);
    float *mb = moments(&bad), *vb = moments(&bad);
    th_check(sq_ckpt_save(dir, "{\"changed\": 1}", &bad, mb, vb, 1, 1) != SQ_OK, "a save that cannot complete fails: %s",
             sq_last_error());
    sq_clear_error();
    th_expect_ok("the previous checkpoint still loads", sq_ckpt_load(dir, cfg, &back, m2, v2, &step, &rng));
    th_check(same(ps.data, back.data, &ps) && step == 1234, "and is unchanged");
    snprintf(p, sizeof p, "%s.tmp.%ld", dir, (long)getpid());
    struct stat st;
    th_check(stat(p, &st) != 0, "no temporary folder is left behind");

    /* a second save replaces the first */
    ps.data[0] += 1;
    th_expect_ok("save again", sq_ckpt_save(dir, cfg, &ps, m, v, 2000, 5));
    sq_ckpt_load(dir, cfg, &back, m2, v2, &step, &rng);
    th_check(back.data[0] == ps.data[0] && step == 2000, "the new save replaced the old one");

    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    corrupt_truncate(p);
    th_check(sq_ckpt_load(dir, cfg, &back, NULL, NULL, NULL, NULL) == SQ_EIO, "a truncated weights file is refused: %s",
             sq_last_error());
    th_check(sq_ckpt_load("/nonexistent/ckpt", NULL, &back, NULL, NULL, NULL, NULL) == SQ_EIO, "a missing folder is refused");
    sq_clear_error();

    sq_params *all[] = {&ps, &back, &wide, &extra, &bad};
    for (int i = 0; i < 5; i++) sq_params_free(all[i]);
    sq_free(m); sq_free(v); sq_free(m2); sq_free(v2); sq_free(mb); sq_free(vb);
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd)) printf("  (could not remove %s)\n", root);
    return th_finish();
}
