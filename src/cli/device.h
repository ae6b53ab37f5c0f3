/* Where subq computes: --device cpu|cuda. A build without nvcc links
 * src/cli/nogpu/device.c, which refuses cuda with a message. */
#ifndef SUBQ_CLI_DEVICE_H
#define SUBQ_CLI_DEVICE_H

#include "../layers/backend.h"

/* The backend named (cpu or cuda), or NULL with a message in
 * sq_last_error(); *desc (may be NULL) gets a line describing it. */
const sq_backend *cli_backend(const char *name, char *desc, size_t n);
/* --math f32|tf32|bf16: the GPU layers' matrix products (and, for bf16, the
 * attention) in float32, TF32 or bf16 (tf32 and bf16 need cuda).
 * SQ_OK or SQ_EINVAL with a message. */
int cli_set_math(const char *math, const char *device);

#endif
