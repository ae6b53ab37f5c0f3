#include "json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

typedef struct {
    const char *s;
    size_t i, n;
    int depth;
} parser;

static int fail_at(parser *p, const char *what)
{
    int line = 1, col = 1;
    for (size_t k = 0; k < p->i && k < p->n; k++) {
        if (p->s[k] == '\n') line++, col = 1;
        else col++;
    }
    return sq_fail(SQ_EIO, "JSON: %s at line %d column %d", what, line, col);
}

static void skip_space(parser *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static sq_json *new_node(sq_json_kind k)
{
    sq_json *j = calloc(1, sizeof *j);
    if (j) j->kind = k;
    else sq_fail(SQ_ENOMEM, "JSON: out of memory");
    return j;
}

/* A string literal at p->i (the opening quote) into a new buffer. */
static char *parse_string(parser *p)
{
    size_t cap = 16, len = 0;
    p->i++;
    char *out = malloc(cap);
    if (!out) return NULL;
    while (p->i < p->n && p->s[p->i] != '"') {
        char c = p->s[p->i++];
        if ((unsigned char)c < 0x20) break;
        if (c == '\\') {
            if (p->i >= p->n) break;
            char e = p->s[p->i++];
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            const char *hit = strchr(from, e);
            if (e == 'u' && p->i + 4 <= p->n) {
                char hex[5] = {p->s[p->i], p->s[p->i + 1], p->s[p->i + 2], p->s[p->i + 3], 0};
                unsigned v = (unsigned)strtoul(hex, NULL, 16);
                p->i += 4;
                c = v < 128 ? (char)v : '?';
            } else if (hit && e) c = to[hit - from];
            else break;
        }
        if (len + 2 > cap) {
            char *bigger = realloc(out, cap *= 2);
            if (!bigger) break;
            out = bigger;
        }
        out[len++] = c;
    }
    if (p->i >= p->n || p->s[p->i] != '"') {
        free(out);
        fail_at(p, "unterminated or invalid string");
        return NULL;
    }
    p->i++;
    out[len] = 0;
    return out;
}

static sq_json *parse_value(parser *p);

/* Elements of an array or members of an object, after the opening bracket. */
static sq_json *parse_container(parser *p, sq_json_kind kind)
{
    char close = kind == SQ_JSON_ARRAY ? ']' : '}';
    sq_json *node = new_node(kind), **tail;
    if (!node) return NULL;
    tail = &node->child;
    p->i++;
    skip_space(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        return node;
    }
    for (;;) {
        char *key = NULL;
        skip_space(p);
        if (kind == SQ_JSON_OBJECT) {
            if (p->i >= p->n || p->s[p->i] != '"' || !(key = parse_string(p))) {
                if (!key) fail_at(p, "expected a member name");
                sq_json_free(node);
                return NULL;
            }
            skip_space(p);
            if (p->i >= p->n || p->s[p->i] != ':') {
                free(key);
                fail_at(p, "expected ':'");
                sq_json_free(node);
                return NULL;
            }
            p->i++;
        }
        sq_json *v = parse_value(p);
        if (!v) {
            free(key);
            sq_json_free(node);
            return NULL;
        }
        v->key = key;
        *tail = v;
        tail = &v->next;
        skip_space(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->i < p->n && p->s[p->i] == close) {
            p->i++;
            return node;
        }
        fail_at(p, kind == SQ_JSON_ARRAY ? "expected ',' or ']'" : "expected ',' or '}'");
        sq_json_free(node);
        return NULL;
    }
}

static sq_json *parse_value(parser *p)
{
    skip_space(p);
    if (p->i >= p->n) {
        fail_at(p, "unexpected end of input");
        return NULL;
    }
    if (++p->depth > 64) {
        fail_at(p, "nesting deeper than 64");
        return NULL;
    }
    sq_json *j = NULL;
    char c = p->s[p->i];
    if (c == '{' || c == '[') j = parse_container(p, c == '{' ? SQ_JSON_OBJECT : SQ_JSON_ARRAY);
    else if (c == '"') {
        char *s = parse_string(p);
        if (s && (j = new_node(SQ_JSON_STRING))) j->str = s;
        else free(s);
    } else if (p->n - p->i >= 4 && !strncmp(p->s + p->i, "true", 4)) {
        if ((j = new_node(SQ_JSON_BOOL))) j->num = 1;
        p->i += 4;
    } else if (p->n - p->i >= 5 && !strncmp(p->s + p->i, "false", 5)) {
        j = new_node(SQ_JSON_BOOL);
        p->i += 5;
    } else if (p->n - p->i >= 4 && !strncmp(p->s + p->i, "null", 4)) {
        j = new_node(SQ_JSON_NULL);
        p->i += 4;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        char buf[64];
        size_t k = 0;
        while (p->i < p->n && k < 63 && strchr("+-0123456789.eE", p->s[p->i])) buf[k++] = p->s[p->i++];
        buf[k] = 0;
        char *end;
        double v = strtod(buf, &end);
        if (*end || !isfinite(v)) fail_at(p, "malformed number");
        else if ((j = new_node(SQ_JSON_NUMBER))) j->num = v;
    } else fail_at(p, "unexpected character");
    p->depth--;
    return j;
}

sq_json *sq_json_parse(const char *text, size_t len)
{
    if (!text) {
        sq_fail(SQ_EINVAL, "JSON: no text");
        return NULL;
    }
    parser p = {text, 0, len, 0};
    sq_json *j = parse_value(&p);
    if (!j) return NULL;
    skip_space(&p);
    if (p.i != p.n) {
        fail_at(&p, "unexpected text after the value");
        sq_json_free(j);
        return NULL;
    }
    return j;
}

void sq_json_free(sq_json *j)
{
    while (j) {
        sq_json *next = j->next;
        sq_json_free(j->child);
        free(j->str);
        free(j->key);
        free(j);
        j = next;
    }
}

const sq_json *sq_json_get(const sq_json *obj, const char *key)
{
    if (!obj || obj->kind != SQ_JSON_OBJECT) return NULL;
    for (const sq_json *c = obj->child; c; c = c->next)
        if (c->key && !strcmp(c->key, key)) return c;
    return NULL;
}

int sq_json_count(const sq_json *j)
{
    int n = 0;
    for (const sq_json *c = j ? j->child : NULL; c; c = c->next) n++;
    return n;
}

void sq_json_write_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}
