/* Reading and writing the safetensors format (float32 tensors), so that
 * checkpoints open in the Python ecosystem:
 *   8-byte little-endian header length N | N bytes of JSON header | data
 * The header maps each tensor name to {"dtype":"F32","shape":[...],
 * "data_offsets":[begin,end]} (offsets into the data section) and may hold
 * "__metadata__": a map of strings. Writes are atomic (temporary file,
 * fsync, rename): a failed write leaves what was on disk untouched. */
#ifndef SUBQ_MODEL_SAFETENSORS_H
#define SUBQ_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

enum { SQ_ST_MAX_DIM = 8, SQ_ST_MAX_NAME = 256 };

typedef struct {
    const char *name;
    const float *data;
    int ndim;
    int64_t shape[SQ_ST_MAX_DIM];
} sq_st_tensor;

/* Writes the tensors and the metadata pairs (meta_kv = {k0, v0, k1, v1, ...},
 * n_meta pairs, may be 0) to path atomically. */
int sq_st_write(const char *path, const sq_st_tensor *t, int n, const char *const *meta_kv, int n_meta);

typedef struct {
    char name[SQ_ST_MAX_NAME];
    int ndim;
    int64_t shape[SQ_ST_MAX_DIM];
    size_t numel;
    const float *data; /* into the file's buffer */
} sq_st_entry;

typedef struct {
    sq_st_entry *entries;
    int n;
    char **meta_kv; /* 2 * n_meta strings */
    int n_meta;
    unsigned char *buf; /* the whole file */
    size_t size;
} sq_st_file;

/* Reads and validates path; refuses (SQ_EIO, with what was wrong) a file
 * that is truncated, has a malformed header, overlapping or out-of-range
 * offsets, a dtype other than F32, or sizes that disagree with shapes. */
int sq_st_read(const char *path, sq_st_file *f);
const sq_st_entry *sq_st_find(const sq_st_file *f, const char *name);
const char *sq_st_meta(const sq_st_file *f, const char *key);
void sq_st_free(sq_st_file *f);

/* Writes n bytes to path atomically: path.tmp, fsync, rename, fsync of the
 * folder. On failure nothing at path changes and the temporary is removed. */
int sq_write_file_atomic(const char *path, const void *data, size_t n);

#endif
