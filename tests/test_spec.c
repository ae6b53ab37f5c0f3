/* Tests of the model spec parser (src/model/spec.c). */
#include <string.h>

#include "../src/model/spec.h"
#include "harness.h"

static void expect(const char *spec, int depth, const char *want)
{
    sq_spec s;
    char got[512] = "";
    int rc = sq_spec_parse(spec, depth, &s);
    if (rc == SQ_OK) sq_spec_format(&s, got, sizeof got);
    th_check(rc == SQ_OK && !strcmp(got, want), "'%s' depth %d -> '%s' (want '%s') %s", spec, depth, got, want,
             rc ? sq_last_error() : "");
}

/* The error names the spot: the caret line has the caret under index pos. */
static void expect_error(const char *spec, size_t pos)
{
    sq_spec s;
    int rc = sq_spec_parse(spec, 0, &s);
    const char *msg = sq_last_error();
    const char *caret = strchr(msg, '^');
    const char *line = caret;
    while (line > msg && line[-1] != '\n') line--;
    size_t col = caret ? (size_t)(caret - line) - 2 : (size_t)-1;
    th_check(rc == SQ_EINVAL && caret && col == pos, "'%s' refused with caret at %zu (got %zu): %s", spec, pos, col, msg);
    sq_clear_error();
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "spec");
    expect("xlstm[7:1]", 0, "m,m,m,m,m,m,m,s");
    expect("xlstm[7:1]", 16, "m,m,m,m,m,m,m,s,m,m,m,m,m,m,m,s");
    expect("xlstm[1:1]", 3, "m,s,m");
    expect("xlstm[1:0]", 4, "m,m,m,m");
    expect("xlstm[0:1]", 2, "s,s");
    expect("mamba2", 3, "mamba2,mamba2,mamba2");
    expect("gdn", 2, "gdn,gdn");
    expect("transformer", 2, "attn,attn");
    expect("m,m,s", 0, "m,m,s");
    expect("gdn,attn", 4, "gdn,attn,gdn,attn");
    expect("mlstm,slstm,ssd,t", 0, "m,s,mamba2,attn");
    expect_error("xlstm[7;1]", 7);
    expect_error("xlstm[x:1]", 6);
    expect_error("xlstm[7:1", 9);
    expect_error("xlstm[7:1]x", 10);
    expect_error("xlstm[0:0]", 6);
    expect_error("m,q,s", 2);
    expect_error("m,,s", 2);
    expect_error("m,s,", 4);
    expect_error("mamba", 0);
    expect_error("xlstm(7:1)", 5);
    sq_spec s;
    int rc = sq_spec_parse("m,mamba", 0, &s);
    th_check(rc == SQ_EINVAL && strstr(sq_last_error(), "did you mean 'mamba2'"),
             "a misspelt block name gets a suggestion: %s", sq_last_error());
    sq_clear_error();
    th_expect_error("empty spec", sq_spec_parse("", 0, &s), SQ_EINVAL);
    th_expect_error("NULL spec", sq_spec_parse(NULL, 0, &s), SQ_EINVAL);
    th_expect_error("negative depth", sq_spec_parse("gdn", -1, &s), SQ_EINVAL);
    th_expect_error("too deep", sq_spec_parse("gdn", SQ_SPEC_MAX_DEPTH + 1, &s), SQ_EINVAL);
    return th_finish();
}
