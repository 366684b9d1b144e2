/* tokenizer/unicode.h — the character classes of the GPT-2 pre-tokenizer
 * (\p{L}, \p{N}, White_Space), from tables tools/gen_unicode.py wrote from
 * the Unicode Character Database (unicode_tables.c: committed, pinned to one
 * Unicode version, so that every build tokenizes alike).
 */
#ifndef KVGPT_UNICODE_H
#define KVGPT_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum { UNI_OTHER = 0, UNI_LETTER = 1, UNI_NUMBER = 2, UNI_SPACE = 3 };

/* One run of code points of one class; runs are sorted, disjoint, above U+00FF. */
typedef struct {
    uint32_t lo, hi;
    uint32_t cls;
} uni_range;

extern const char uni_version[];            /* e.g. "15.0.0" */
extern const unsigned char uni_latin1[256];  /* class of U+0000..U+00FF */
extern const uni_range uni_ranges[];
extern const size_t uni_range_count;

/* Class of a code point; UNI_OTHER for anything unlisted (unassigned included). */
int uni_class_of(uint32_t cp);

#endif
