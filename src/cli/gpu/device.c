/* --device in a build with CUDA: the CPU or the first GPU. */
#include <stdio.h>
#include <string.h>

#include "../../cuda/cuda.h"
#include "../device.h"

const sq_backend *cli_backend(const char *name, char *desc, size_t n)
{
    if (!strcmp(name, "cpu")) {
        if (desc) snprintf(desc, n, "cpu: %d threads", sq_get_threads());
        return &sq_backend_cpu;
    }
    if (strcmp(name, "cuda") != 0) {
        sq_fail(SQ_EINVAL, "unknown --device '%s'; choose cpu or cuda", name);
        return NULL;
    }
    char dev[256];
    if (sq_cuda_device(dev, sizeof dev)) return NULL;
    if (desc) snprintf(desc, n, "%s, float32", dev);
    return sq_cuda_backend();
}
