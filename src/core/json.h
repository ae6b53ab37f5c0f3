/* A small JSON reader (RFC 8259 subset: no \u escapes beyond ASCII) for
 * configs and safetensors headers, and helpers to write JSON text. */
#ifndef SUBQ_JSON_H
#define SUBQ_JSON_H

#include <stddef.h>
#include <stdio.h>

typedef enum { SQ_JSON_NULL, SQ_JSON_BOOL, SQ_JSON_NUMBER, SQ_JSON_STRING, SQ_JSON_ARRAY, SQ_JSON_OBJECT } sq_json_kind;

typedef struct sq_json sq_json;
struct sq_json {
    sq_json_kind kind;
    double num;     /* NUMBER, BOOL (0/1) */
    char *str;      /* STRING value; the key when this is an object member */
    char *key;      /* member name inside an OBJECT, else NULL */
    sq_json *child; /* first element / member */
    sq_json *next;  /* next sibling */
};

/* Parses text[0..len) into a tree; NULL with a message (line and column)
 * on malformed input. Free with sq_json_free. */
sq_json *sq_json_parse(const char *text, size_t len);
void sq_json_free(sq_json *j);
/* Member of an object by key, or NULL. */
const sq_json *sq_json_get(const sq_json *obj, const char *key);
/* Number of elements of an array or members of an object. */
int sq_json_count(const sq_json *j);
/* Writes s as a JSON string literal (quoted, escaped). */
void sq_json_write_string(FILE *f, const char *s);

#endif
