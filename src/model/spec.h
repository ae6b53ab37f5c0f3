/* The model spec grammar of DESIGN.md §3: which block sits at each depth.
 *
 *   spec    := family | list
 *   family  := "xlstm[" INT ":" INT "]" | "mamba2" | "gdn" | "transformer"
 *   list    := block ("," block)*
 *   block   := "m" | "mlstm" | "s" | "slstm" | "mamba2" | "ssd" | "gdn" | "attn" | "t"
 *
 * xlstm[a:b] is the repeating group of a mLSTM blocks then b sLSTM blocks
 * (the paper's notation; xlstm[1:0] is mLSTM only). A family or list is a
 * pattern repeated to the requested depth and cut there; depth 0 means one
 * pattern's length (a + b for xlstm, 1 for the single-type families). */
#ifndef SUBQ_MODEL_SPEC_H
#define SUBQ_MODEL_SPEC_H

#include "../blocks/block.h"

enum { SQ_SPEC_MAX_DEPTH = 1024 };

typedef struct {
    int depth;
    sq_block_type blocks[SQ_SPEC_MAX_DEPTH];
} sq_spec;

/* Parses spec into out for the given depth (0 = the pattern's length).
 * On a syntax error: SQ_EINVAL, and sq_last_error() shows the spec with a
 * caret under the bad character. */
int sq_spec_parse(const char *spec, int depth, sq_spec *out);
/* Writes the canonical list form ("m,m,s,...") of a parsed spec. */
void sq_spec_format(const sq_spec *s, char *buf, int n);

#endif
