#include "spec.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "../core/core.h"

static const char *const block_short[SQ_BLOCK_NTYPES] = {"m", "s", "mamba2", "gdn", "attn"};


/* SQ_EINVAL with the spec and a caret under position pos. */
static int spec_error(const char *spec, size_t pos, const char *what)
{
    return sq_fail(SQ_EINVAL, "model spec '%s': %s at character %zu\n  %s\n  %*s^\n"
                   "  (specs: xlstm[a:b], mamba2, gdn, transformer, or a list like m,m,s or gdn,attn)",
                   spec, what, pos + 1, spec, (int)pos, "");
}

/* One list item of length len at s, or -1. */
static int block_of_word(const char *s, size_t len)
{
    static const struct { const char *w; sq_block_type t; } words[] = {
        {"m", SQ_BLOCK_MLSTM}, {"mlstm", SQ_BLOCK_MLSTM}, {"s", SQ_BLOCK_SLSTM}, {"slstm", SQ_BLOCK_SLSTM},
        {"mamba2", SQ_BLOCK_MAMBA2}, {"ssd", SQ_BLOCK_MAMBA2}, {"gdn", SQ_BLOCK_GDN}, {"attn", SQ_BLOCK_ATTN},
        {"t", SQ_BLOCK_ATTN}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strlen(words[i].w) == len && !strncmp(words[i].w, s, len)) return (int)words[i].t;
    return -1;
}

/* "unknown block name", with the closest known name or family when one is near. */
static const char *unknown_word(const char *s, size_t len)
{
    static const char *const known[] = {"mlstm", "slstm", "mamba2", "gdn", "attn", "transformer", "xlstm[1:1]", NULL};
    static char msg[96];
    char word[32];
    snprintf(word, sizeof word, "%.*s", (int)(len < sizeof word ? len : sizeof word - 1), s);
    const char *best = NULL;
    int bd = 3;
    for (int i = 0; known[i]; i++) {
        int d = sq_edit_distance(word, known[i]);
        if (d < bd) {
            bd = d;
            best = known[i];
        }
    }
    if (!best) return "unknown block name";
    snprintf(msg, sizeof msg, "unknown block name (did you mean '%s'?)", best);
    return msg;
}

/* Reads a decimal integer at spec[*pos]; -1 when there is none. */
static int read_int(const char *spec, size_t *pos)
{
    if (!isdigit((unsigned char)spec[*pos])) return -1;
    long v = 0;
    while (isdigit((unsigned char)spec[*pos]) && v < 100000) v = v * 10 + (spec[(*pos)++] - '0');
    return (int)v;
}

/* xlstm[a:b] into pattern; returns its length or a negative status. */
static int parse_xlstm(const char *spec, sq_block_type *pattern)
{
    size_t pos = 6; /* after "xlstm[" */
    int a = read_int(spec, &pos);
    if (a < 0) return -spec_error(spec, pos, "expected the number of mLSTM blocks");
    if (spec[pos] != ':') return -spec_error(spec, pos, "expected ':'");
    pos++;
    int b = read_int(spec, &pos);
    if (b < 0) return -spec_error(spec, pos, "expected the number of sLSTM blocks");
    if (spec[pos] != ']') return -spec_error(spec, pos, "expected ']'");
    if (spec[pos + 1]) return -spec_error(spec, pos + 1, "unexpected text after ']'");
    if (a + b < 1) return -spec_error(spec, 6, "xlstm[a:b] needs a + b >= 1");
    if (a + b > SQ_SPEC_MAX_DEPTH) return -spec_error(spec, 6, "group larger than the maximum depth");
    for (int i = 0; i < a + b; i++) pattern[i] = i < a ? SQ_BLOCK_MLSTM : SQ_BLOCK_SLSTM;
    return a + b;
}

/* A comma list into pattern; returns its length or a negative status. */
static int parse_list(const char *spec, sq_block_type *pattern)
{
    int n = 0;
    size_t pos = 0;
    for (;;) {
        size_t len = strcspn(spec + pos, ",");
        int t = block_of_word(spec + pos, len);
        if (t < 0) return -spec_error(spec, pos, len ? unknown_word(spec + pos, len) : "empty block name");
        if (n == SQ_SPEC_MAX_DEPTH) return -spec_error(spec, pos, "too many blocks");
        pattern[n++] = (sq_block_type)t;
        pos += len;
        if (!spec[pos]) return n;
        pos++; /* the comma */
    }
}

int sq_spec_parse(const char *spec, int depth, sq_spec *out)
{
    int rc;
    if ((rc = sq_check_ptr("model spec", "spec", spec)) || (rc = sq_check_ptr("model spec", "out", out))) return rc;
    if (depth < 0 || depth > SQ_SPEC_MAX_DEPTH)
        return sq_fail(SQ_EINVAL, "model spec: depth must be in [0, %d], got %d", SQ_SPEC_MAX_DEPTH, depth);
    if (!spec[0]) return sq_fail(SQ_EINVAL, "model spec is empty; try xlstm[7:1], mamba2, gdn or transformer");
    sq_block_type pattern[SQ_SPEC_MAX_DEPTH];
    int n;
    if (!strncmp(spec, "xlstm[", 6)) n = parse_xlstm(spec, pattern);
    else if (!strcmp(spec, "transformer")) {
        pattern[0] = SQ_BLOCK_ATTN;
        n = 1;
    } else if (!strncmp(spec, "xlstm", 5) && spec[5] != ',' && spec[5] != 0)
        n = -spec_error(spec, 5, "expected '[' (xlstm[a:b])");
    else if (!strcmp(spec, "xlstm"))
        n = -spec_error(spec, 5, "xlstm needs its group, e.g. xlstm[7:1]");
    else n = parse_list(spec, pattern);
    if (n < 0) return -n;
    out->depth = depth ? depth : n;
    for (int i = 0; i < out->depth; i++) out->blocks[i] = pattern[i % n];
    return SQ_OK;
}

void sq_spec_format(const sq_spec *s, char *buf, int n)
{
    int used = 0;
    buf[0] = 0;
    for (int i = 0; i < s->depth && used < n; i++)
        used += snprintf(buf + used, (size_t)(n - used), "%s%s", i ? "," : "", block_short[s->blocks[i]]);
}
