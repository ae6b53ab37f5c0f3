/* subq: the command-line front end. Each subcommand lives in its own file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: subq <command> [options]\n"
            "\n"
            "commands:\n"
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
    fprintf(stderr, "subq: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
