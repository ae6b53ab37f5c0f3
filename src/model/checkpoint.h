/* Checkpoints: a folder holding
 *   config.json        the model/training config (the caller's JSON text)
 *   model.safetensors  the parameters, under their registry names
 *   optim.safetensors  AdamW's moments as "m.<name>", "v.<name>", with the
 *                      step and the data-stream state in its metadata
 * Both safetensors files carry a hash of config.json, so files of different
 * runs are never mixed. A save writes a new folder beside the old one and
 * swaps them by rename: a failed save leaves the previous checkpoint as it
 * was. A load refuses (SQ_EIO, with the reason) a missing, truncated or
 * corrupted file, a config that differs from the expected one, and any
 * tensor that is missing, extra or of another shape. */
#ifndef SUBQ_MODEL_CHECKPOINT_H
#define SUBQ_MODEL_CHECKPOINT_H

#include <stdint.h>

#include "../core/params.h"

/* m, v: NULL to save no optimizer state (then step and rng are not kept). */
int sq_ckpt_save(const char *dir, const char *config_json, const sq_params *ps, const float *m, const float *v,
                 long step, uint64_t rng);

/* expect_config: NULL to accept the folder's config. ps must be registered
 * and allocated; its data is overwritten. m, v (may be NULL) likewise. */
int sq_ckpt_load(const char *dir, const char *expect_config, sq_params *ps, float *m, float *v, long *step,
                 uint64_t *rng);

/* The folder's config.json as a new string (free with free()), or NULL. */
char *sq_ckpt_read_config(const char *dir);

#endif
