#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/core.h"
#include "../core/json.h"

/* ---- atomic file writes ------------------------------------------------ */

static int fsync_parent(const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int sq_write_file_atomic(const char *path, const void *data, size_t n)
{
    char tmp[4096];
    if (!path || snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return sq_fail(SQ_EINVAL, "atomic write: path missing or too long");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return sq_fail(SQ_EIO, "cannot create %s: %s", tmp, strerror(errno));
    const unsigned char *p = data;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return sq_fail(SQ_EIO, "writing %s failed: %s (disk full?)", tmp, strerror(e));
        }
        done += (size_t)w;
    }
    if (fsync(fd) || close(fd)) {
        int e = errno;
        unlink(tmp);
        return sq_fail(SQ_EIO, "flushing %s failed: %s", tmp, strerror(e));
    }
    if (rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return sq_fail(SQ_EIO, "renaming %s to %s failed: %s", tmp, path, strerror(e));
    }
    fsync_parent(path);
    return SQ_OK;
}

/* ---- writing ------------------------------------------------------------- */

static size_t numel_of(const int64_t *shape, int ndim)
{
    size_t n = 1;
    for (int d = 0; d < ndim; d++) n *= (size_t)shape[d];
    return n;
}

/* The JSON header text, padded with spaces to a multiple of 8 bytes. */
static char *build_header(const sq_st_tensor *t, int n, const char *const *meta_kv, int n_meta, size_t *len)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f) return NULL;
    fputc('{', f);
    if (n_meta > 0) {
        fputs("\"__metadata__\":{", f);
        for (int i = 0; i < n_meta; i++) {
            if (i) fputc(',', f);
            sq_json_write_string(f, meta_kv[2 * i]);
            fputc(':', f);
            sq_json_write_string(f, meta_kv[2 * i + 1]);
        }
        fputc('}', f);
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t bytes = numel_of(t[i].shape, t[i].ndim) * sizeof(float);
        if (i || n_meta > 0) fputc(',', f);
        sq_json_write_string(f, t[i].name);
        fputs(":{\"dtype\":\"F32\",\"shape\":[", f);
        for (int d = 0; d < t[i].ndim; d++) fprintf(f, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        fprintf(f, "],\"data_offsets\":[%zu,%zu]}", off, off + bytes);
        off += bytes;
    }
    fputc('}', f);
    while ((size_t)ftell(f) % 8) fputc(' ', f);
    if (fclose(f)) {
        free(text);
        return NULL;
    }
    *len = size;
    return text;
}

int sq_st_write(const char *path, const sq_st_tensor *t, int n, const char *const *meta_kv, int n_meta)
{
    int rc;
    if ((rc = sq_check_ptr("safetensors write", "path", path))) return rc;
    if (n < 0 || (n > 0 && !t) || n_meta < 0 || (n_meta > 0 && !meta_kv))
        return sq_fail(SQ_EINVAL, "safetensors write: bad tensor or metadata list");
    for (int i = 0; i < n; i++) {
        if (!t[i].name || !t[i].name[0] || strlen(t[i].name) >= SQ_ST_MAX_NAME || t[i].ndim < 0 ||
            t[i].ndim > SQ_ST_MAX_DIM || !t[i].data)
            return sq_fail(SQ_EINVAL, "safetensors write: tensor %d has no name, no data or a bad rank", i);
        for (int d = 0; d < t[i].ndim; d++)
            if (t[i].shape[d] < 0) return sq_fail(SQ_EINVAL, "safetensors write: %s has a negative dimension", t[i].name);
    }
    size_t hlen = 0, data = 0;
    char *header = build_header(t, n, meta_kv, n_meta, &hlen);
    if (!header) return sq_fail(SQ_ENOMEM, "safetensors write: could not build the header");
    for (int i = 0; i < n; i++) data += numel_of(t[i].shape, t[i].ndim) * sizeof(float);
    unsigned char *buf = malloc(8 + hlen + data);
    if (!buf) {
        free(header);
        return sq_fail(SQ_ENOMEM, "safetensors write: %zu bytes needed", 8 + hlen + data);
    }
    for (int b = 0; b < 8; b++) buf[b] = (unsigned char)((uint64_t)hlen >> (8 * b));
    memcpy(buf + 8, header, hlen);
    size_t off = 8 + hlen;
    for (int i = 0; i < n; i++) {
        size_t bytes = numel_of(t[i].shape, t[i].ndim) * sizeof(float);
        memcpy(buf + off, t[i].data, bytes);
        off += bytes;
    }
    rc = sq_write_file_atomic(path, buf, off);
    free(header);
    free(buf);
    return rc;
}

/* ---- reading --------------------------------------------------------------- */

static int read_whole(const char *path, unsigned char **buf, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sq_fail(SQ_EIO, "cannot open %s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) || ftell(f) < 0) {
        fclose(f);
        return sq_fail(SQ_EIO, "cannot size %s", path);
    }
    *size = (size_t)ftell(f);
    rewind(f);
    *buf = malloc(*size ? *size : 1);
    if (!*buf) {
        fclose(f);
        return sq_fail(SQ_ENOMEM, "cannot hold %s (%zu bytes) in memory", path, *size);
    }
    size_t got = fread(*buf, 1, *size, f);
    fclose(f);
    if (got != *size) {
        free(*buf);
        *buf = NULL;
        return sq_fail(SQ_EIO, "reading %s failed", path);
    }
    return SQ_OK;
}

static int parse_entry(const char *path, const sq_json *j, sq_st_entry *e, size_t *b, size_t *end)
{
    const sq_json *dt = sq_json_get(j, "dtype"), *sh = sq_json_get(j, "shape"), *off = sq_json_get(j, "data_offsets");
    snprintf(e->name, sizeof e->name, "%s", j->key);
    if (strlen(j->key) >= SQ_ST_MAX_NAME) return sq_fail(SQ_EIO, "%s: tensor name too long", path);
    if (!dt || dt->kind != SQ_JSON_STRING || strcmp(dt->str, "F32"))
        return sq_fail(SQ_EIO, "%s: tensor %s has dtype %s; subq reads F32 only", path, e->name,
                       dt && dt->kind == SQ_JSON_STRING ? dt->str : "(missing)");
    if (!sh || sh->kind != SQ_JSON_ARRAY || sq_json_count(sh) > SQ_ST_MAX_DIM)
        return sq_fail(SQ_EIO, "%s: tensor %s has a missing or bad shape", path, e->name);
    if (!off || off->kind != SQ_JSON_ARRAY || sq_json_count(off) != 2)
        return sq_fail(SQ_EIO, "%s: tensor %s has missing or bad data_offsets", path, e->name);
    e->ndim = 0;
    e->numel = 1;
    for (const sq_json *d = sh->child; d; d = d->next) {
        if (d->kind != SQ_JSON_NUMBER || d->num < 0 || d->num > 1e12 || d->num != (double)(int64_t)d->num)
            return sq_fail(SQ_EIO, "%s: tensor %s has a bad dimension", path, e->name);
        e->shape[e->ndim++] = (int64_t)d->num;
        e->numel *= (size_t)d->num;
    }
    const sq_json *ob = off->child, *oe = ob->next;
    if (ob->kind != SQ_JSON_NUMBER || oe->kind != SQ_JSON_NUMBER || ob->num < 0 || oe->num < ob->num || oe->num > 1e15)
        return sq_fail(SQ_EIO, "%s: tensor %s has bad data_offsets", path, e->name);
    *b = (size_t)ob->num;
    *end = (size_t)oe->num;
    if (*end - *b != e->numel * sizeof(float))
        return sq_fail(SQ_EIO, "%s: tensor %s: %zu bytes of data for %zu floats", path, e->name, *end - *b, e->numel);
    return SQ_OK;
}

static int cmp_size(const void *a, const void *b)
{
    const size_t *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

/* Fills f's entries from the parsed header; checks the offsets tile the
 * data section exactly (no overlap, no gap, nothing past the end). */
static int load_entries(const char *path, const sq_json *h, sq_st_file *f, size_t data_off)
{
    size_t data_len = f->size - data_off;
    int n = 0, nm = 0;
    for (const sq_json *c = h->child; c; c = c->next) {
        if (!strcmp(c->key, "__metadata__")) nm = sq_json_count(c);
        else n++;
    }
    f->entries = calloc((size_t)n + 1, sizeof *f->entries);
    f->meta_kv = calloc(2 * (size_t)nm + 1, sizeof *f->meta_kv);
    size_t *ranges = calloc(2 * (size_t)n + 2, sizeof *ranges);
    if (!f->entries || !f->meta_kv || !ranges) {
        free(ranges);
        return sq_fail(SQ_ENOMEM, "%s: header too large", path);
    }
    int rc = SQ_OK;
    for (const sq_json *c = h->child; c && !rc; c = c->next) {
        if (c->kind != SQ_JSON_OBJECT) rc = sq_fail(SQ_EIO, "%s: header entry %s is not an object", path, c->key);
        else if (!strcmp(c->key, "__metadata__")) {
            for (const sq_json *m = c->child; m && !rc; m = m->next) {
                if (m->kind != SQ_JSON_STRING) rc = sq_fail(SQ_EIO, "%s: metadata %s is not a string", path, m->key);
                else {
                    f->meta_kv[2 * f->n_meta] = strdup(m->key);
                    f->meta_kv[2 * f->n_meta + 1] = strdup(m->str);
                    f->n_meta++;
                }
            }
        } else {
            sq_st_entry *e = &f->entries[f->n];
            rc = parse_entry(path, c, e, &ranges[2 * f->n], &ranges[2 * f->n + 1]);
            if (!rc) {
                if (ranges[2 * f->n + 1] > data_len)
                    rc = sq_fail(SQ_EIO, "%s is truncated: tensor %s ends at byte %zu of a %zu-byte data section", path,
                                 e->name, ranges[2 * f->n + 1], data_len);
                else e->data = (const float *)(f->buf + data_off + ranges[2 * f->n]);
                f->n++;
            }
        }
    }
    if (!rc) {
        qsort(ranges, (size_t)f->n, 2 * sizeof *ranges, cmp_size);
        size_t at = 0;
        for (int i = 0; i < f->n && !rc; i++) {
            if (ranges[2 * i] != at) rc = sq_fail(SQ_EIO, "%s: tensor data overlaps or leaves a gap at byte %zu", path, at);
            at = ranges[2 * i + 1];
        }
        if (!rc && at != data_len)
            rc = sq_fail(SQ_EIO, "%s: %zu bytes of data but the tensors cover %zu", path, data_len, at);
    }
    free(ranges);
    return rc;
}

int sq_st_read(const char *path, sq_st_file *f)
{
    int rc;
    if ((rc = sq_check_ptr("safetensors read", "path", path)) || (rc = sq_check_ptr("safetensors read", "f", f)))
        return rc;
    memset(f, 0, sizeof *f);
    if ((rc = read_whole(path, &f->buf, &f->size))) return rc;
    if (f->size < 8) {
        sq_st_free(f);
        return sq_fail(SQ_EIO, "%s is not a safetensors file: only %zu bytes", path, f->size);
    }
    uint64_t hlen = 0;
    for (int b = 0; b < 8; b++) hlen |= (uint64_t)f->buf[b] << (8 * b);
    if (hlen > f->size - 8 || hlen > (100u << 20)) {
        sq_st_free(f);
        return sq_fail(SQ_EIO, "%s is truncated or not a safetensors file: header of %llu bytes in a %zu-byte file", path,
                       (unsigned long long)hlen, f->size);
    }
    sq_json *h = sq_json_parse((const char *)f->buf + 8, (size_t)hlen);
    if (!h || h->kind != SQ_JSON_OBJECT) {
        rc = sq_fail(SQ_EIO, "%s: malformed safetensors header (%s)", path, h ? "not an object" : sq_last_error());
        sq_json_free(h);
        sq_st_free(f);
        return rc;
    }
    /* Float data must be 4-byte aligned; a foreign writer may not pad the
     * header. The parsed tree no longer needs the header bytes, so the data
     * section can slide back over them. */
    size_t data_off = 8 + (size_t)hlen;
    if (data_off % 4) {
        memmove(f->buf + data_off - data_off % 4, f->buf + data_off, f->size - data_off);
        f->size -= data_off % 4;
        data_off -= data_off % 4;
    }
    rc = load_entries(path, h, f, data_off);
    sq_json_free(h);
    if (rc) sq_st_free(f);
    return rc;
}

const sq_st_entry *sq_st_find(const sq_st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->entries[i].name, name)) return &f->entries[i];
    return NULL;
}

const char *sq_st_meta(const sq_st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_kv[2 * i], key)) return f->meta_kv[2 * i + 1];
    return NULL;
}

void sq_st_free(sq_st_file *f)
{
    if (!f) return;
    for (int i = 0; f->meta_kv && i < 2 * f->n_meta; i++) free(f->meta_kv[i]);
    free(f->meta_kv);
    free(f->entries);
    free(f->buf);
    memset(f, 0, sizeof *f);
}
