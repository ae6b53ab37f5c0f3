/* What subq train, eval and compare share: their options, flag parsing,
 * the training of one model and the evaluation over lengths. */
#ifndef SUBQ_CLI_RUN_H
#define SUBQ_CLI_RUN_H

#include <stdio.h>

#include "../train/train.h"

enum { MAX_LENGTHS = 32, MAX_MODELS = 16 };

typedef struct {
    sq_train_cfg tc;
    const char *out, *models, *ckpt, *json;
    const char *device;    /* --device: cpu (default) or cuda */
    const char *math;      /* --math: f32 (default) or tf32 (the GPU layers' products) */
    const sq_backend *be;  /* resolved by run_resolve_device */
    int threads, resume, log_every, save_every, eval_n, max_tokens;
    int lengths[MAX_LENGTHS], nlengths;
} run_opts;

extern volatile int run_interrupted; /* set by run_on_sigint */
void run_on_sigint(int sig);

void run_usage_compare(FILE *f);
/* Parses argv against the command's flags (NULL-terminated). Returns 0 to
 * go on, 1 when --help was asked for, 2 on an error (already printed). */
int run_parse_opts(const char *cmd, int argc, char **argv, const char *const *flags, run_opts *o);
/* Resolves o->device into o->be (after the thread count is set); prints
 * "cmd: <why>" and returns 2 when that device cannot be used. */
int run_resolve_device(const char *cmd, run_opts *o, char *desc, size_t n);
/* Applies the flags again so that they win over a --config file. */
int run_reparse_over_config(int argc, char **argv, run_opts *o);
/* L, 2L, 4L, 8L unless --lengths was given. */
void run_default_lengths(run_opts *o, int len);
/* A folder name for a spec: "xlstm[1:1]" -> "xlstm-1-1". */
void run_slug(const char *s, char *out, size_t n);
int run_make_dirs(const char *path);
void run_print_model(const sq_train_cfg *c, const sq_model *m);
int run_eval_lengths(sq_model *m, const sq_train_cfg *c, const run_opts *o, double *acc, int verbose);
/* Trains one model: run_dir/ckpt is its checkpoint, run_dir/metrics.jsonl its log. */
int run_train_one(const run_opts *o, const sq_train_cfg *c, const char *run_dir, sq_model *m, sq_train_result *res);
/* out = dir/name (name NULL: dir); SQ_EINVAL when it does not fit. */
int run_path(char *out, size_t n, const char *dir, const char *name);
/* Sets c's model spec; SQ_EINVAL when it is too long. */
int run_set_spec(sq_train_cfg *c, const char *spec);
/* Prints "cmd: <last error>" and returns 1. */
int run_fail(const char *cmd);

#endif
