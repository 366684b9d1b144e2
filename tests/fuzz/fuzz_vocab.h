/* tests/fuzz/fuzz_vocab.h — the invariants of a char vocabulary that loaded,
 * shared by the vocab.json (fuzz_charvocab) and meta.pkl (fuzz_meta) targets. */
#ifndef KVGPT_FUZZ_VOCAB_H
#define KVGPT_FUZZ_VOCAB_H

#include "fuzz_common.h"
#include "loader/loader.h"
#include "tokenizer/charvocab.h"

/* vocab_size tokens, none empty, in order, all inside the table of tb bytes. */
static inline void fz_check_vocab(const cv_vocab *v, int vocab_size, const void *table, size_t tb)
{
    FZ_CHECK(v->n == vocab_size, "n %d vs vocab_size %d", v->n, vocab_size);
    for (int i = 0; i < v->n; i++)
        FZ_CHECK(v->offsets[i] < v->offsets[i + 1], "token %d empty or offsets out of order", i);
    FZ_CHECK((const char *)v->bytes + v->offsets[v->n] <= (const char *)table + tb, "tokens past the table");
}

#endif
