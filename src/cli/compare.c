/* subq compare: the paper's mechanism experiment. Each model is trained on
 * one task with the same budget and seed, then evaluated at each length;
 * the table (rows models, columns lengths) is printed and written as CSV,
 * JSON and an SVG plot (gnuplot). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"
#include "cli.h"
#include "run.h"

typedef struct {
    char spec[128];
    size_t params;
    int steps;
    float loss;
    double seconds;
    double acc[MAX_LENGTHS];
} compare_row;

/* Splits the --models list at ';' if it has one (specs that are lists
 * themselves), else at ','. Returns the count, or -1 after a message. */
static int split_models(const char *list, compare_row *rows)
{
    char sep = strchr(list, ';') ? ';' : ',';
    int n = 0;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, sep == ';' ? ";" : ",");
        if (len == 0 || len >= sizeof rows[0].spec || n == MAX_MODELS) {
            fprintf(stderr, "subq compare: --models takes up to %d specs, each shorter than %zu characters: '%s'\n",
                    MAX_MODELS, sizeof rows[0].spec, list);
            return -1;
        }
        memset(&rows[n], 0, sizeof rows[n]);
        memcpy(rows[n].spec, p, len);
        rows[n++].spec[len] = 0;
        p += len + (p[len] == sep);
    }
    return n;
}

static void print_table(const run_opts *o, const compare_row *rows, int n)
{
    printf("\n%-22s %10s %8s", "model", "params", "loss");
    for (int j = 0; j < o->nlengths; j++) printf(" %7d", o->lengths[j]);
    printf("\n");
    for (int i = 0; i < n; i++) {
        printf("%-22s %10zu %8.4f", rows[i].spec, rows[i].params, rows[i].loss);
        for (int j = 0; j < o->nlengths; j++) printf(" %7.3f", rows[i].acc[j]);
        printf("\n");
    }
    printf("(answer accuracy over %d sequences per length; trained at length %d for %d steps, seed %llu)\n",
           o->eval_n, o->tc.len, o->tc.steps, (unsigned long long)o->tc.seed);
}

static int write_csv(const char *path, const run_opts *o, const compare_row *rows, int n)
{
    FILE *f = fopen(path, "w");
    if (!f) return sq_fail(SQ_EIO, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "model,task,params,steps,final_loss");
    for (int j = 0; j < o->nlengths; j++) fprintf(f, ",%d", o->lengths[j]);
    fprintf(f, "\n");
    for (int i = 0; i < n; i++) {
        fprintf(f, "\"%s\",%s,%zu,%d,%.6g", rows[i].spec, o->tc.task, rows[i].params, rows[i].steps, rows[i].loss);
        for (int j = 0; j < o->nlengths; j++) fprintf(f, ",%.6g", rows[i].acc[j]);
        fprintf(f, "\n");
    }
    return fclose(f) ? sq_fail(SQ_EIO, "cannot finish writing %s", path) : SQ_OK;
}

static int write_json(const char *path, const run_opts *o, const compare_row *rows, int n)
{
    FILE *f = fopen(path, "w");
    if (!f) return sq_fail(SQ_EIO, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "[\n");
    for (int i = 0; i < n; i++) {
        fprintf(f, "  {\"model\": ");
        sq_json_write_string(f, rows[i].spec);
        fprintf(f, ", \"task\": ");
        sq_json_write_string(f, o->tc.task);
        fprintf(f, ", \"params\": %zu, \"steps\": %d, \"train_len\": %d, \"final_loss\": %.6g, \"seconds\": %.1f, "
                   "\"accuracy\": {",
                rows[i].params, rows[i].steps, o->tc.len, rows[i].loss, rows[i].seconds);
        for (int j = 0; j < o->nlengths; j++) fprintf(f, "%s\"%d\": %.6g", j ? ", " : "", o->lengths[j], rows[i].acc[j]);
        fprintf(f, "}}%s\n", i + 1 < n ? "," : "");
    }
    fprintf(f, "]\n");
    return fclose(f) ? sq_fail(SQ_EIO, "cannot finish writing %s", path) : SQ_OK;
}

/* Accuracy against length (log2 axis), one line per model, the training
 * length marked; gnuplot reads the data inline. Returns 0 when drawn. */
static int plot_svg(const char *path, const run_opts *o, const compare_row *rows, int n)
{
    FILE *g = popen("gnuplot 2>/dev/null", "w");
    if (!g) return -1;
    fprintf(g, "set terminal svg size 860,480 dynamic background rgb 'white'\nset output '%s'\n", path);
    fprintf(g, "set title 'task %s: answer accuracy by length (trained at %d, %d steps)'\n", o->tc.task, o->tc.len,
            o->tc.steps);
    fprintf(g, "set logscale x 2\nset xlabel 'sequence length'\nset ylabel 'accuracy'\nset yrange [0:1.05]\n"
               "set key outside right\nset grid\n");
    fprintf(g, "set arrow from %d, graph 0 to %d, graph 1 nohead dashtype 2\n", o->tc.len, o->tc.len);
    fprintf(g, "plot ");
    for (int i = 0; i < n; i++)
        fprintf(g, "%s'-' using 1:2 with linespoints linewidth 2 title '%s'", i ? ", " : "", rows[i].spec);
    fprintf(g, "\n");
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < o->nlengths; j++) fprintf(g, "%d %.6g\n", o->lengths[j], rows[i].acc[j]);
        fprintf(g, "e\n");
    }
    return pclose(g) == 0 ? 0 : -1;
}

static int write_outputs(const char *dir, const run_opts *o, const compare_row *rows, int n)
{
    char csv[4096], json[4096], svg[4096];
    int rc = run_path(csv, sizeof csv, dir, "compare.csv");
    if (!rc) rc = run_path(json, sizeof json, dir, "compare.json");
    if (!rc) rc = run_path(svg, sizeof svg, dir, "compare.svg");
    if (!rc) rc = write_csv(csv, o, rows, n);
    if (!rc) rc = write_json(json, o, rows, n);
    if (rc) return rc;
    if (plot_svg(svg, o, rows, n))
        printf("wrote %s and %s (no plot: gnuplot is missing or failed; `make deps` installs gnuplot-nox)\n", csv,
               json);
    else printf("wrote %s, %s and %s\n", csv, json, svg);
    return SQ_OK;
}

/* Trains and evaluates rows[i]; fills its results. */
static int run_model(const run_opts *o, const char *dir, compare_row *row)
{
    sq_train_cfg c = o->tc;
    char slug[128], ckpt[4096];
    int rc = run_set_spec(&c, row->spec);
    if (!rc) rc = sq_train_validate(&c);
    run_slug(row->spec, slug, sizeof slug);
    if (!rc) rc = run_path(ckpt, sizeof ckpt, dir, slug);
    if (rc) return rc;
    printf("\n== %s (checkpoint %s)\n", row->spec, ckpt);
    sq_model m;
    sq_train_result res;
    rc = run_train_one(o, &c, ckpt, &m, &res);
    if (!rc && res.interrupted) rc = sq_fail(SQ_EINVAL, "interrupted: %s saved at step %d in %s; rerun with --resume",
                                             row->spec, res.steps_done, ckpt);
    if (!rc) {
        run_print_model(&c, &m);
        row->params = m.ps.total;
        row->steps = res.steps_done;
        row->loss = res.final_loss;
        row->seconds = res.seconds;
        rc = run_eval_lengths(&m, &c, o, row->acc, 1);
    }
    sq_model_free(&m);
    return rc;
}

int cli_compare(int argc, char **argv)
{
    static const char *const flags[] = {"--task",  "--models", "--depth",  "--width",   "--heads",     "--chunk", "--neg-eigval",
                                        "--steps", "--batch",  "--accum",  "--len",     "--lr",        "--lr-min",
                                        "--warmup", "--wd",    "--clip",   "--seed",    "--config",    "--lengths",
                                        "--eval-n", "--threads", "--log-every", "--out", "--resume", "--device",
                                        "--math", NULL};
    run_opts o;
    int p = run_parse_opts("subq compare", argc, argv, flags, &o);
    if (p == 1) run_usage_compare(stdout);
    if (p) return p == 1 ? 0 : 2;
    if (!run_reparse_over_config(argc, argv, &o)) return 2;
    if (!o.models) o.models = "xlstm[1:1],xlstm[1:0],mamba2,gdn,transformer";
    if (o.tc.model.depth == 0) o.tc.model.depth = 2; /* one budget of depth for every model */
    compare_row rows[MAX_MODELS];
    int n = split_models(o.models, rows);
    if (n < 0) return 2;
    /* every spec and the shared flags are checked before anything trains */
    for (int i = 0; i < n; i++) {
        sq_train_cfg c = o.tc;
        if (run_set_spec(&c, rows[i].spec) || sq_train_validate(&c)) return run_fail("subq compare"), 2;
        sq_model m;
        int rc = sq_model_build(&m, &c.model);
        sq_model_free(&m);
        if (rc) return run_fail("subq compare"), 2;
    }
    if (o.threads) sq_set_threads(o.threads);
    char desc[320];
    if (run_resolve_device("subq compare", &o, desc, sizeof desc)) return 2;
    run_default_lengths(&o, o.tc.len);
    char dir[4096];
    if (run_path(dir, sizeof dir, o.out ? o.out : "runs", o.out ? NULL : "compare-")) return run_fail("subq compare");
    if (!o.out && strlen(dir) + strlen(o.tc.task) < sizeof dir) strcat(dir, o.tc.task);
    if (!run_make_dirs(dir)) return 1;
    signal(SIGINT, run_on_sigint);
    printf("subq compare: task %s, %d models, %d steps of %d x %d x %d tokens each, depth %d, width %d, %s\n",
           o.tc.task, n, o.tc.steps, o.tc.accum, o.tc.batch, o.tc.len, o.tc.model.depth, o.tc.model.D, desc);
    for (int i = 0; i < n; i++)
        if (run_model(&o, dir, &rows[i])) {
            if (i > 0) print_table(&o, rows, i);
            return run_fail("subq compare");
        }
    print_table(&o, rows, n);
    return write_outputs(dir, &o, rows, n) ? run_fail("subq compare") : 0;
}
