/* tokenizer/utf8.h — bytes to whole UTF-8 characters, as a stream: a
 * character split across pieces is held until it completes; bytes that can
 * never be UTF-8 become U+FFFD, one per maximal invalid sequence (what
 * Python's bytes.decode(errors="replace") gives, hence nanoGPT's output). */
#ifndef KVGPT_UTF8_H
#define KVGPT_UTF8_H

#include <stddef.h>
#include "kvgpt.h"

/* Feeds n bytes; writes the completed text to out when out is not NULL
 * (the caller gives room for the return value: at most 3 * (n + 3) bytes)
 * and returns its length. The state advances only when out is not NULL, so
 * a call with out NULL measures what the real one will write. */
size_t utf8_feed(kvgpt_text_state *st, const unsigned char *in, size_t n, char *out);
/* End of the stream: a held partial character becomes U+FFFD (3 bytes, or 0). */
size_t utf8_flush(kvgpt_text_state *st, char *out);

#endif
