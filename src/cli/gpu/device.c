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
    if (desc) snprintf(desc, n, "%s", dev);
    return sq_cuda_backend();
}

int cli_set_math(const char *math, const char *device)
{
    static const char *const names[] = {"f32", "tf32", "bf16"};
    static const int modes[] = {SQ_CUDA_MATH_F32, SQ_CUDA_MATH_TF32, SQ_CUDA_MATH_BF16};
    for (int i = 0; i < 3; i++) {
        if (strcmp(math, names[i]) != 0) continue;
        if (i > 0 && strcmp(device, "cuda") != 0)
            return sq_fail(SQ_EINVAL, "--math %s needs --device cuda (the CPU computes in float32)", math);
        return sq_cuda_set_layer_math(modes[i]);
    }
    return sq_fail(SQ_EINVAL, "unknown --math '%s'; choose f32, tf32 or bf16", math);
}
