/* tests/fuzz/fuzz_meta.c — libFuzzer target: nanoGPT's meta.pkl through
 * cv_load_meta (the pickle interpreter without torch), then cv_encode.
 * Input: 2 bytes little-endian (vocab_size = v % 4096 + 1), then the file.
 * Memory is exactly what the plan says, so ASan sees any write past it.
 * Oracles: a failure has a status and a message; an accepted vocabulary has
 * vocab_size non-empty tokens, and text made of its one-character tokens
 * encodes and spells back. (Tokens that are not one UTF-8 character, e.g.
 * "C\xa9", are accepted by the loader but cannot always be reached by the
 * encoder; see the fuzz report: a validation gap, not a memory error.) */
#include "fuzz_vocab.h"
#include "loader/ckpt.h"
#include "tokenizer/charvocab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    int vocab_size = (int)((data[0] | (unsigned)data[1] << 8) % 4096) + 1;
    const char *path = fz_path("meta.pkl");
    fz_write(path, data + 2, size - 2);
    size_t fb = cv_meta_file_bytes(size - 2, vocab_size), tb = cv_table_bytes(size - 2, vocab_size);
    void *file_mem = malloc(fb ? fb : 1), *table = malloc(tb);
    cv_vocab v;
    kvgpt_error err = {0, ""};
    kvgpt_status st = cv_load_meta(&v, path, vocab_size, file_mem, fb, table, tb, &err);
    if (st) {
        fz_check_failure(st, &err);
    } else {
        fz_check_vocab(&v, vocab_size, table, tb);
        /* Text made of the vocabulary's own tokens, reversed: encodes and spells back. */
        char text[256];
        size_t len = 0;
        for (int i = v.n - 1; i >= 0; i--) {
            size_t tl = v.offsets[i + 1] - v.offsets[i];
            if (!cv_one_char(v.bytes + v.offsets[i], tl)) continue;
            if (len + tl > sizeof text) break;
            memcpy(text + len, v.bytes + v.offsets[i], tl);
            len += tl;
        }
        int32_t ids[256];
        int n = 0;
        st = cv_encode(&v, text, len, ids, 256, &n, &err);
        FZ_CHECK(st == KVGPT_OK, "encoding the vocabulary's own tokens failed: %s", err.msg);
        size_t at = 0;
        for (int i = 0; i < n; i++) {
            size_t tl = v.offsets[ids[i] + 1] - v.offsets[ids[i]];
            FZ_CHECK(at + tl <= len && memcmp(v.bytes + v.offsets[ids[i]], text + at, tl) == 0,
                     "token %d does not spell the text at byte %zu", i, at);
            at += tl;
        }
        FZ_CHECK(at == len, "ids spell %zu of %zu bytes", at, len);
    }
    free(file_mem);
    free(table);
    return 0;
}
