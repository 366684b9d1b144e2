/* tests/fuzz/fuzz_charvocab.c — libFuzzer target: cv_load on a vocab.json,
 * then cv_encode. Input: 2 bytes little-endian (vocab_size = v % 4096 + 1),
 * then the file. Memory is exactly what the plan says (cv_table_bytes and
 * the file's size), so ASan sees any write past it. Oracles: a failure has a
 * status and a message; an accepted vocabulary has vocab_size tokens with
 * ordered offsets inside the table, each token one UTF-8 character (so each
 * can be reached); encoding the file's own bytes either fails cleanly or
 * gives ids that spell those bytes back, and text made of the vocabulary's
 * own tokens always encodes. */
#include "fuzz_vocab.h"

static void check_encode(const cv_vocab *v, const uint8_t *text, size_t len)
{
    int32_t ids[256];
    int n = 0;
    kvgpt_error err = {0, ""};
    if (len > 256) len = 256;
    kvgpt_status st = cv_encode(v, (const char *)text, len, ids, 256, &n, &err);
    if (st) {
        fz_check_failure(st, &err);
        FZ_CHECK(st == KVGPT_ERR_TOKEN, "encode failed with %d: %s", (int)st, err.msg);
        return;
    }
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        FZ_CHECK(ids[i] >= 0 && ids[i] < v->n, "id %d out of range", ids[i]);
        size_t tl = v->offsets[ids[i] + 1] - v->offsets[ids[i]];
        FZ_CHECK(at + tl <= len && memcmp(v->bytes + v->offsets[ids[i]], text + at, tl) == 0,
                 "token %d does not spell the text at byte %zu", i, at);
        at += tl;
    }
    FZ_CHECK(at == len, "ids spell %zu of %zu bytes", at, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    int vocab_size = (int)((data[0] | (unsigned)data[1] << 8) % 4096) + 1;
    const char *path = fz_path("vocab.json");
    fz_write(path, data + 2, size - 2);
    size_t fb = size - 2, tb = cv_table_bytes(fb, vocab_size);
    void *file_mem = malloc(fb ? fb : 1), *table = malloc(tb);
    cv_vocab v;
    kvgpt_error err = {0, ""};
    kvgpt_status st = cv_load(&v, path, vocab_size, file_mem, fb, table, tb, &err);
    if (st) {
        fz_check_failure(st, &err);
    } else {
        fz_check_vocab(&v, vocab_size, table, tb);
        check_encode(&v, data + 2, size - 2);
        uint8_t text[256];
        size_t len = 0;
        for (int i = v.n - 1; i >= 0; i--) {
            size_t tl = v.offsets[i + 1] - v.offsets[i];
            if (len + tl > sizeof text) break;
            memcpy(text + len, v.bytes + v.offsets[i], tl);
            len += tl;
        }
        int32_t ids[256];
        int n = 0;
        kvgpt_status es = cv_encode(&v, (const char *)text, len, ids, 256, &n, &err);
        FZ_CHECK(es == KVGPT_OK, "the vocabulary's own tokens do not encode: %s", err.msg);
        check_encode(&v, text, len);
    }
    free(file_mem);
    free(table);
    return 0;
}
