/* tests/fuzz/fuzz_meta.c — libFuzzer target: nanoGPT's meta.pkl through
 * cv_load_meta (the pickle interpreter without torch), then cv_encode.
 * Input: 2 bytes little-endian (vocab_size = v % 4096 + 1), then the file.
 * Memory is exactly what the plan says, so ASan sees any write past it.
 * Oracles: a failure has a status and a message; an accepted vocabulary has
 * vocab_size non-empty tokens, and text made of its one-character tokens
 * encodes and spells back. (Tokens that are not one UTF-8 character, e.g.
 * "C\xa9", are accepted by the loader but cannot always be reached by the
 * encoder; see the fuzz report: a validation gap, not a memory error.) */
#include "fuzz_common.h"
#include "loader/ckpt.h"

/* 1 when s[0..n) is exactly one well-formed UTF-8 character. */
static int one_char(const unsigned char *s, size_t n)
{
    size_t need = s[0] < 0x80 ? 1 : s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
                : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    if (need != n) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0))) return 0;
    if (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))) return 0;
    return 1;
}

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
        FZ_CHECK(v.n == vocab_size, "n %d vs vocab_size %d", v.n, vocab_size);
        for (int i = 0; i < v.n; i++)
            FZ_CHECK(v.offsets[i] < v.offsets[i + 1], "token %d empty or offsets out of order", i);
        FZ_CHECK(v.bytes + v.offsets[v.n] <= (char *)table + tb, "tokens past the table");
        /* Text made of the vocabulary's own tokens, reversed: encodes and spells back. */
        char text[256];
        size_t len = 0;
        for (int i = v.n - 1; i >= 0; i--) {
            size_t tl = v.offsets[i + 1] - v.offsets[i];
            if (!one_char((const unsigned char *)v.bytes + v.offsets[i], tl)) continue;
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
