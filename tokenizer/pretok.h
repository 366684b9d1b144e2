/* tokenizer/pretok.h — the GPT-2 pre-tokenizer: splits text into the pieces
 * the regex
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * would match, hand-written so that it runs in one pass with no backtracking.
 */
#ifndef KVGPT_PRETOK_H
#define KVGPT_PRETOK_H

#include <stddef.h>

/* End (exclusive) of the piece that starts at pos < len. Each byte that is
 * not part of valid UTF-8 counts as one character of no class (like a symbol). */
size_t bpe_pretok_next(const unsigned char *text, size_t len, size_t pos);

#endif
