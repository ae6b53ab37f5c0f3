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

/* Parses a number in [lo, hi] into *out; prints an error and returns 0 when not. */
int args_float(const char *flag, const char *v, double lo, double hi, float *out);
/* Parses "a,b,c" (at most max integers in [lo, hi]) into out[*n]. */
int args_int_list(const char *flag, const char *v, int lo, int hi, int *out, int max, int *n);

#endif
