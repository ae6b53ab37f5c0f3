/* Where subq computes: --device cpu|cuda. A build without nvcc links
 * src/cli/nogpu/device.c, which refuses cuda with a message. */
#ifndef SUBQ_CLI_DEVICE_H
#define SUBQ_CLI_DEVICE_H

#include "../layers/backend.h"

/* The backend named (cpu or cuda), or NULL with a message in
 * sq_last_error(); *desc (may be NULL) gets a line describing it. */
const sq_backend *cli_backend(const char *name, char *desc, size_t n);

#endif
