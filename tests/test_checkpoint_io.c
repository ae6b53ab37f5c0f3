/* Tests of the JSON reader and the safetensors reader/writer: round trips on
 * random tensors, and refusal of truncated, corrupted or foreign files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/core/json.h"
#include "../src/model/safetensors.h"
#include "harness.h"

static char dir[256];

static void path_in_dir(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static void test_json(void)
{
    const char *ok = "{\"a\": [1, 2.5e1, -3], \"b\": {\"c\": \"x\\\"y\\n\"}, \"d\": true, \"e\": null, \"f\": false}";
    sq_json *j = sq_json_parse(ok, strlen(ok));
    const sq_json *a = sq_json_get(j, "a"), *c = sq_json_get(sq_json_get(j, "b"), "c");
    th_check(j && a && sq_json_count(a) == 3 && a->child->next->num == 25.0 && c && !strcmp(c->str, "x\"y\n") &&
                 sq_json_get(j, "d")->num == 1 && sq_json_get(j, "e")->kind == SQ_JSON_NULL,
             "JSON parse of nested values");
    sq_json_free(j);
    const char *bad[] = {"{\"a\": }", "{\"a\" 1}", "[1, 2", "\"abc", "{\"a\": 1} x", "[1e999]", "{1: 2}", ""};
    for (int i = 0; i < 8; i++) {
        sq_json *b = sq_json_parse(bad[i], strlen(bad[i]));
        th_check(!b && strstr(sq_last_error(), "JSON"), "malformed JSON '%s' refused: %s", bad[i], sq_last_error());
        sq_json_free(b);
    }
}

/* Writes three random tensors and reads them back bit-exactly. */
static void test_round_trip(void)
{
    char path[512];
    path_in_dir(path, sizeof path, "rt.safetensors");
    float *a = th_randn(6 * 7, 1), *b = th_randn(5, 1), *c = th_randn(2 * 3 * 4, 1);
    sq_st_tensor t[3] = {{"layers.0.w", a, 2, {6, 7}}, {"bias", b, 1, {5}}, {"x.y.z", c, 3, {2, 3, 4}}};
    const char *meta[] = {"format", "pt", "subq", "test \"quoted\""};
    th_expect_ok("write", sq_st_write(path, t, 3, meta, 2));
    sq_st_file f;
    int rc = sq_st_read(path, &f);
    th_expect_ok("read back", rc);
    if (rc) return;
    const sq_st_entry *ea = sq_st_find(&f, "layers.0.w"), *eb = sq_st_find(&f, "bias"), *ec = sq_st_find(&f, "x.y.z");
    th_check(f.n == 3 && ea && eb && ec && ea->ndim == 2 && ea->shape[0] == 6 && ea->shape[1] == 7 && ec->ndim == 3 &&
                 ec->shape[2] == 4 && !memcmp(ea->data, a, sizeof(float) * 42) && !memcmp(eb->data, b, sizeof(float) * 5) &&
                 !memcmp(ec->data, c, sizeof(float) * 24),
             "tensors, shapes and bits survive the round trip");
    th_check(sq_st_meta(&f, "subq") && !strcmp(sq_st_meta(&f, "subq"), "test \"quoted\""), "metadata survives");
    sq_st_free(&f);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    th_check(access(tmp, F_OK) != 0, "no temporary file is left behind");
    sq_free(a); sq_free(b); sq_free(c);
}

static void write_raw(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}

/* A header (unpadded, so the reader must realign) followed by data bytes. */
static void write_with_header(const char *path, const char *header, size_t data_bytes)
{
    size_t hl = strlen(header);
    unsigned char *buf = calloc(8 + hl + data_bytes + 1, 1);
    for (int b = 0; b < 8; b++) buf[b] = (unsigned char)((uint64_t)hl >> (8 * b));
    memcpy(buf + 8, header, hl);
    for (size_t i = 0; i < data_bytes; i++) buf[8 + hl + i] = (unsigned char)(i * 37);
    write_raw(path, buf, 8 + hl + data_bytes);
    free(buf);
}

static void expect_refused(const char *what, const char *path)
{
    sq_st_file f;
    int rc = sq_st_read(path, &f);
    th_check(rc == SQ_EIO, "%s refused: %s", what, sq_last_error());
    if (rc == SQ_OK) sq_st_free(&f);
    sq_clear_error();
}

static void test_refusals(void)
{
    char path[512], bad[512];
    path_in_dir(path, sizeof path, "good.safetensors");
    path_in_dir(bad, sizeof bad, "bad.safetensors");
    float *a = th_randn(100, 1);
    sq_st_tensor t = {"w", a, 2, {10, 10}};
    sq_st_write(path, &t, 1, NULL, 0);
    FILE *f = fopen(path, "rb");
    unsigned char buf[1024];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t cut = 0; cut < n; cut += n / 7 + 1) {
        write_raw(bad, buf, cut);
        char what[64];
        snprintf(what, sizeof what, "file cut to %zu of %zu bytes", cut, n);
        expect_refused(what, bad);
    }
    write_raw(bad, buf, n - 1);
    expect_refused("file missing its last byte", bad);
    write_with_header(bad, "{\"w\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4);
    expect_refused("F16 dtype", bad);
    write_with_header(bad, "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8);
    expect_refused("size disagreeing with shape", bad);
    write_with_header(bad, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
    expect_refused("overlapping tensors", bad);
    write_with_header(bad, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8);
    expect_refused("trailing bytes no tensor covers", bad);
    write_with_header(bad, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4);
    expect_refused("malformed header JSON", bad);
    write_with_header(bad, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4);
    expect_refused("negative dimension", bad);
    /* An unpadded but valid header: the reader realigns the data. */
    write_with_header(bad, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    sq_st_file g;
    int rc = sq_st_read(bad, &g);
    th_check(rc == SQ_OK && g.n == 1 && ((const unsigned char *)g.entries[0].data)[1] == 37,
             "unpadded header is read and realigned: %s", rc ? sq_last_error() : "");
    if (rc == SQ_OK) sq_st_free(&g);
    sq_st_file h;
    th_check(sq_st_read("/nonexistent/x.safetensors", &h) == SQ_EIO, "missing file refused: %s", sq_last_error());
    th_check(sq_st_write("/nonexistent/dir/x.safetensors", &t, 1, NULL, 0) == SQ_EIO, "unwritable path reported: %s",
             sq_last_error());
    sq_clear_error();
    /* A failed write leaves the earlier file intact. */
    sq_st_tensor broken = {"w", NULL, 1, {4}};
    th_expect_error("tensor without data", sq_st_write(path, &broken, 1, NULL, 0), SQ_EINVAL);
    sq_st_file k;
    rc = sq_st_read(path, &k);
    th_check(rc == SQ_OK && k.n == 1 && !memcmp(k.entries[0].data, a, 400), "earlier checkpoint still intact");
    if (rc == SQ_OK) sq_st_free(&k);
    sq_free(a);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "checkpoint i/o");
    snprintf(dir, sizeof dir, "/tmp/subq_test_ckpt_%ld", (long)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd)) return 2;
    test_json();
    test_round_trip();
    test_refusals();
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) printf("note: could not remove %s\n", dir);
    return th_finish();
}
