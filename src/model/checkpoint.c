#include "checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/core.h"
#include "safetensors.h"

static const char *const FILES[] = {"config.json", "model.safetensors", "optim.safetensors"};

/* FNV-1a over the config text, as 16 hex digits. */
static void config_hash(const char *text, char out[17])
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) h = (h ^ *p) * 1099511628211ull;
    snprintf(out, 17, "%016" PRIx64, h);
}

/* dir/file into out; the callers have checked that dir is short (dir_ok). */
static void join(char *out, size_t n, const char *dir, const char *file)
{
    if (snprintf(out, n, "%s/%s", dir, file) >= (int)n) out[0] = 0;
}

static int dir_ok(const char *op, const char *dir)
{
    if (strlen(dir) > 3000) return sq_fail(SQ_EINVAL, "%s: folder path longer than 3000 characters", op);
    return SQ_OK;
}

/* Removes the checkpoint files of dir and dir itself (nothing else). */
static void remove_ckpt_dir(const char *dir)
{
    char p[4096];
    for (int i = 0; i < 3; i++) {
        join(p, sizeof p, dir, FILES[i]);
        unlink(p);
    }
    rmdir(dir);
}

static int write_tensors(const char *path, const sq_params *ps, const float *base, const char *prefix,
                         const char *const *meta, int nmeta)
{
    sq_st_tensor *t = calloc((size_t)ps->n + 1, sizeof *t);
    char (*names)[SQ_PARAM_NAME + 4] = calloc((size_t)ps->n + 1, sizeof *names);
    if (!t || !names) {
        free(t);
        free(names);
        return sq_fail(SQ_ENOMEM, "checkpoint: out of memory");
    }
    for (int i = 0; i < ps->n; i++) {
        snprintf(names[i], sizeof names[i], "%s%s", prefix, ps->p[i].name);
        t[i].name = names[i];
        t[i].data = base + ps->p[i].off;
        t[i].ndim = ps->p[i].ndim;
        memcpy(t[i].shape, ps->p[i].shape, sizeof(int64_t) * (size_t)ps->p[i].ndim);
    }
    int rc = sq_st_write(path, t, ps->n, meta, nmeta);
    free(t);
    free(names);
    return rc;
}

static int write_folder(const char *tmp, const char *config_json, const sq_params *ps, const float *m, const float *v,
                        long step, uint64_t rng)
{
    char p[4096], hash[17], stepbuf[32], rngbuf[32];
    config_hash(config_json, hash);
    join(p, sizeof p, tmp, "config.json");
    int rc = sq_write_file_atomic(p, config_json, strlen(config_json));
    if (rc) return rc;
    const char *meta[] = {"format", "pt", "subq_config_hash", hash};
    join(p, sizeof p, tmp, "model.safetensors");
    if ((rc = write_tensors(p, ps, ps->data, "", meta, 2))) return rc;
    if (!m || !v) return SQ_OK;
    snprintf(stepbuf, sizeof stepbuf, "%ld", step);
    snprintf(rngbuf, sizeof rngbuf, "%" PRIu64, rng);
    const char *ometa[] = {"subq_config_hash", hash, "step", stepbuf, "rng", rngbuf};
    /* m and v go in one file: register both under their prefixes */
    sq_params both = {0};
    for (int k = 0; k < 2 && !rc; k++)
        for (int i = 0; i < ps->n && !rc; i++) {
            char name[SQ_PARAM_NAME];
            if (snprintf(name, sizeof name, "%s%s", k ? "v." : "m.", ps->p[i].name) >= (int)sizeof name)
                rc = sq_fail(SQ_EINVAL, "checkpoint: parameter name too long: %s", ps->p[i].name);
            else rc = sq_params_add(&both, name, ps->p[i].ndim, ps->p[i].shape, 0);
        }
    if (!rc) rc = sq_params_alloc(&both);
    if (!rc) {
        for (int i = 0; i < ps->n; i++) {
            memcpy(both.data + both.p[i].off, m + ps->p[i].off, ps->p[i].n * sizeof(float));
            memcpy(both.data + both.p[ps->n + i].off, v + ps->p[i].off, ps->p[i].n * sizeof(float));
        }
        join(p, sizeof p, tmp, "optim.safetensors");
        rc = write_tensors(p, &both, both.data, "", ometa, 3);
    }
    sq_params_free(&both);
    return rc;
}

int sq_ckpt_save(const char *dir, const char *config_json, const sq_params *ps, const float *m, const float *v,
                 long step, uint64_t rng)
{
    int rc;
    if ((rc = sq_check_ptr("checkpoint save", "dir", dir)) || (rc = sq_check_ptr("checkpoint save", "config", config_json)) ||
        (rc = sq_check_ptr("checkpoint save", "params", ps)) || (rc = sq_check_ptr("checkpoint save", "data", ps->data)) ||
        (rc = dir_ok("checkpoint save", dir)))
        return rc;
    char tmp[4096], old[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid()) >= (int)sizeof tmp ||
        snprintf(old, sizeof old, "%s.old.%ld", dir, (long)getpid()) >= (int)sizeof old)
        return sq_fail(SQ_EINVAL, "checkpoint save: folder path too long");
    remove_ckpt_dir(tmp);
    if (mkdir(tmp, 0755)) return sq_fail(SQ_EIO, "checkpoint: cannot create %s: %s", tmp, strerror(errno));
    if ((rc = write_folder(tmp, config_json, ps, m, v, step, rng))) {
        remove_ckpt_dir(tmp);
        return rc;
    }
    struct stat st;
    int had_old = stat(dir, &st) == 0;
    if (had_old && rename(dir, old)) {
        rc = sq_fail(SQ_EIO, "checkpoint: cannot move the previous %s aside: %s", dir, strerror(errno));
        remove_ckpt_dir(tmp);
        return rc;
    }
    if (rename(tmp, dir)) {
        rc = sq_fail(SQ_EIO, "checkpoint: cannot rename %s to %s: %s", tmp, dir, strerror(errno));
        if (had_old) rename(old, dir);
        remove_ckpt_dir(tmp);
        return rc;
    }
    if (had_old) remove_ckpt_dir(old);
    return SQ_OK;
}

char *sq_ckpt_read_config(const char *dir)
{
    char p[4096];
    if (!dir || dir_ok("checkpoint", dir)) return NULL;
    join(p, sizeof p, dir, "config.json");
    FILE *f = fopen(p, "rb");
    if (!f) {
        sq_fail(SQ_EIO, "checkpoint %s: no config.json (%s)", dir, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s || fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        fclose(f);
        sq_fail(SQ_EIO, "checkpoint %s: cannot read config.json", dir);
        return NULL;
    }
    s[n] = 0;
    fclose(f);
    return s;
}

/* Copies every registered tensor (name prefixed) from f into base; refuses
 * missing, extra and misshapen tensors. */
static int copy_tensors(const char *path, const sq_st_file *f, const sq_params *ps, const char *prefix, int nprefix,
                        float *base)
{
    for (int i = 0; i < ps->n; i++) {
        char name[SQ_PARAM_NAME + 4];
        snprintf(name, sizeof name, "%s%s", prefix, ps->p[i].name);
        const sq_st_entry *e = sq_st_find(f, name);
        if (!e) return sq_fail(SQ_EIO, "%s has no tensor %s; it was written for another model", path, name);
        int same = e->ndim == ps->p[i].ndim;
        for (int d = 0; same && d < e->ndim; d++) same = e->shape[d] == ps->p[i].shape[d];
        if (!same) return sq_fail(SQ_EIO, "%s: tensor %s has another shape than this model's", path, name);
        memcpy(base + ps->p[i].off, e->data, ps->p[i].n * sizeof(float));
    }
    if (f->n != ps->n * nprefix)
        return sq_fail(SQ_EIO, "%s holds %d tensors, this model has %d; it was written for another model", path, f->n,
                       ps->n * nprefix);
    return SQ_OK;
}

static int check_hash(const char *path, const sq_st_file *f, const char *hash)
{
    const char *h = sq_st_meta(f, "subq_config_hash");
    if (!h || strcmp(h, hash))
        return sq_fail(SQ_EIO, "%s does not belong to this folder's config.json (mixed or corrupted checkpoint)", path);
    return SQ_OK;
}

int sq_ckpt_load(const char *dir, const char *expect_config, sq_params *ps, float *m, float *v, long *step,
                 uint64_t *rng)
{
    int rc;
    if ((rc = sq_check_ptr("checkpoint load", "dir", dir)) || (rc = sq_check_ptr("checkpoint load", "params", ps)) ||
        (rc = sq_check_ptr("checkpoint load", "data", ps->data)) || (rc = dir_ok("checkpoint load", dir)))
        return rc;
    char *cfg = sq_ckpt_read_config(dir);
    if (!cfg) return SQ_EIO;
    char hash[17], p[4096];
    config_hash(cfg, hash);
    if (expect_config && strcmp(cfg, expect_config)) {
        free(cfg);
        return sq_fail(SQ_EIO, "checkpoint %s: its config.json differs from this run's config; use the same model "
                       "flags (or a new --out folder)", dir);
    }
    free(cfg);
    sq_st_file f;
    join(p, sizeof p, dir, "model.safetensors");
    if ((rc = sq_st_read(p, &f))) return rc;
    rc = check_hash(p, &f, hash);
    if (!rc) rc = copy_tensors(p, &f, ps, "", 1, ps->data);
    sq_st_free(&f);
    if (rc || !(m && v)) return rc;
    join(p, sizeof p, dir, "optim.safetensors");
    if ((rc = sq_st_read(p, &f))) return rc;
    rc = check_hash(p, &f, hash);
    if (!rc) rc = copy_tensors(p, &f, ps, "m.", 2, m);
    if (!rc) rc = copy_tensors(p, &f, ps, "v.", 2, v);
    const char *s = sq_st_meta(&f, "step"), *r = sq_st_meta(&f, "rng");
    if (!rc && (!s || !r)) rc = sq_fail(SQ_EIO, "%s: no step or rng in its metadata", p);
    if (!rc && step) *step = strtol(s, NULL, 10);
    if (!rc && rng) *rng = strtoull(r, NULL, 10);
    sq_st_free(&f);
    return rc;
}
