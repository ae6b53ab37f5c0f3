/* Command-line helpers shared by the subcommands. */
#ifndef SUBQ_CLI_ARGS_H
#define SUBQ_CLI_ARGS_H

/* 1 when a is one of the NULL-terminated flags. */
int args_known(const char *a, const char *const *flags);
/* Prints "cmd: unknown option 'a'" and the closest known flag. */
void args_unknown(const char *cmd, const char *a, const char *const *flags);
/* Parses a decimal integer in [lo, hi] into *out; prints an error and
 * returns 0 when v is not one. */
int args_int(const char *flag, const char *v, int lo, int hi, int *out);

#endif
