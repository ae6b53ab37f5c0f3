#include "core.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[1024];

int sq_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

const char *sq_last_error(void) { return last_error[0] ? last_error : "no error"; }

void sq_clear_error(void) { last_error[0] = 0; }

const char *sq_status_name(int code)
{
    switch (code) {
    case SQ_OK: return "ok";
    case SQ_EINVAL: return "invalid argument";
    case SQ_ENOMEM: return "out of memory";
    case SQ_EIO: return "i/o error";
    case SQ_ENUM: return "non-finite value";
    default: return "unknown error";
    }
}

int sq_check_dims(const char *op, sq_dims d)
{
    if (d.B < 1 || d.T < 1 || d.H < 1 || d.K < 1 || d.V < 1)
        return sq_fail(SQ_EINVAL, "%s: every dimension must be >= 1, got B=%d T=%d H=%d K=%d V=%d",
                       op, d.B, d.T, d.H, d.K, d.V);
    double width = d.K > d.V ? d.K : d.V;
    double elems = (double)d.B * d.T * d.H * width, state = (double)d.B * d.H * d.K * d.V;
    if (elems > 4.0e11 || state > 4.0e11)
        return sq_fail(SQ_EINVAL, "%s: shape B=%d T=%d H=%d K=%d V=%d is too large to index",
                       op, d.B, d.T, d.H, d.K, d.V);
    return SQ_OK;
}

int sq_check_ptr(const char *op, const char *name, const void *p)
{
    if (!p) return sq_fail(SQ_EINVAL, "%s: %s is NULL; pass a buffer of the documented size", op, name);
    return SQ_OK;
}

int sq_check_chunk(const char *op, int chunk)
{
    if (chunk < 1) return sq_fail(SQ_EINVAL, "%s: chunk size must be >= 1, got %d (64 is the usual choice)", op, chunk);
    return SQ_OK;
}
