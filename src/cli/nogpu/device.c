/* --device in a build without CUDA: the CPU only. */
#include <stdio.h>
#include <string.h>

#include "../device.h"

const sq_backend *cli_backend(const char *name, char *desc, size_t n)
{
    if (!strcmp(name, "cpu")) {
        if (desc) snprintf(desc, n, "cpu: %d threads", sq_get_threads());
        return &sq_backend_cpu;
    }
    if (!strcmp(name, "cuda"))
        sq_fail(SQ_EINVAL, "--device cuda is not available: this subq was built without CUDA (nvcc was not found "
                           "at build time; see README, 'On a GPU')");
    else
        sq_fail(SQ_EINVAL, "unknown --device '%s'; choose cpu or cuda", name);
    return NULL;
}

int cli_set_math(const char *math, const char *device)
{
    if (!strcmp(math, "f32")) return SQ_OK;
    if (!strcmp(math, "tf32") || !strcmp(math, "bf16"))
        return sq_fail(SQ_EINVAL, "--math %s is for --device cuda, and this subq was built without CUDA", math);
    return sq_fail(SQ_EINVAL, "unknown --math '%s'; choose f32, tf32 or bf16", math);
}
