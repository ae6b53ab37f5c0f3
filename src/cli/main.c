/* subq: the command-line front end. Each subcommand lives in its own file. */
#include <stdio.h>
#include <string.h>

#include "../core/core.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: subq <command> [options]\n"
            "\n"
            "commands:\n"
            "  compare     train several models on a task with one budget and seed; print\n"
            "              the length-generalisation table, write CSV, JSON and a plot\n"
            "  train       train one model on a synthetic task (checkpoints, metrics, resume)\n"
            "  eval        answer accuracy of a checkpoint at several lengths\n"
            "  bench ops   time the sequence operators (fwd, fwd+bwd) and check them\n"
            "              against the float64 reference; table and --json\n"
            "\n"
            "`subq <command> --help` describes a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "bench")) return cli_bench(argc - 1, argv + 1);
    if (!strcmp(argv[1], "train")) return cli_train(argc - 1, argv + 1);
    if (!strcmp(argv[1], "eval")) return cli_eval(argc - 1, argv + 1);
    if (!strcmp(argv[1], "compare")) return cli_compare(argc - 1, argv + 1);
    static const char *const commands[] = {"compare", "train", "eval", "bench", NULL};
    const char *best = NULL;
    int bd = 4;
    for (int i = 0; commands[i]; i++) {
        int d = sq_edit_distance(argv[1], commands[i]);
        if (d < bd) {
            bd = d;
            best = commands[i];
        }
    }
    if (best) fprintf(stderr, "subq: unknown command '%s'; did you mean '%s'?\n\n", argv[1], best);
    else fprintf(stderr, "subq: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
