#ifndef SUBQ_CLI_H
#define SUBQ_CLI_H
/* Subcommands: argv[0] is the subcommand's own name. Return the exit status. */
int cli_bench(int argc, char **argv);
int cli_train(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_compare(int argc, char **argv);
#endif
