/* tests/fuzz/fuzz_bpe_load.c — libFuzzer target: bpe_plan + bpe_load on a
 * GPT-2 vocab.json / merges.txt pair. Input: 2 bytes little-endian
 * vocab_size, then vocab.json, a 0 byte, then merges.txt (no 0 byte: the
 * merges file is empty). Memory is exactly the planned sizes, so ASan sees
 * any write past it. Oracles: a failure has a status and a message; an
 * accepted tokenizer encodes the input's bytes losslessly. */
#include "fuzz_common.h"
#include "tokenizer/bpe.h"

static void round_trip(const bpe_tokenizer *t, const uint8_t *text, size_t len)
{
    if (len > 4096) len = 4096;
    size_t wb = bpe_encode_work_bytes(len);
    void *work = malloc(wb);
    int32_t *ids = malloc((len + 1) * sizeof(int32_t));
    int n = 0;
    kvgpt_error err = {0, ""};
    kvgpt_status st = bpe_encode(t, (const char *)text, len, ids, (int)len + 1, &n, work, wb, &err);
    FZ_CHECK(st == KVGPT_OK, "encode of %zu bytes failed: %s", len, err.msg);
    FZ_CHECK(n >= (len > 0) && (size_t)n <= len, "%d ids for %zu bytes", n, len);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        const char *b;
        size_t bl;
        FZ_CHECK(bpe_token_bytes(t, ids[i], &b, &bl) == KVGPT_OK, "id %d has no bytes", ids[i]);
        FZ_CHECK(at + bl <= len && memcmp(b, text + at, bl) == 0, "id %d does not spell byte %zu", ids[i], at);
        at += bl;
    }
    FZ_CHECK(at == len, "ids spell %zu of %zu bytes", at, len);
    free(work);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    int vocab_size = data[0] | data[1] << 8;
    const uint8_t *v = data + 2, *z = memchr(v, 0, size - 2);
    size_t vl = z ? (size_t)(z - v) : size - 2;
    const uint8_t *mtext = z ? z + 1 : data + size;
    size_t ml = (size_t)(data + size - mtext);
    const char *vp = fz_path("vocab.json"), *mp = fz_path("merges.txt");
    fz_write(vp, v, vl);
    fz_write(mp, mtext, ml);

    bpe_sizes sz;
    kvgpt_error err = {0, ""};
    kvgpt_status st = bpe_plan(vp, mp, vocab_size, &sz, &err);
    if (st) {
        fz_check_failure(st, &err);
        return 0;
    }
    void *tables = NULL, *files = malloc(sz.file_bytes);
    FZ_CHECK(posix_memalign(&tables, 64, sz.table_bytes) == 0, "no memory for %zu bytes", sz.table_bytes);
    bpe_tokenizer *t = NULL;
    st = bpe_load(tables, sz.table_bytes, files, sz.file_bytes, vp, mp, vocab_size, &t, &err);
    free(files);
    if (st) {
        fz_check_failure(st, &err);
        FZ_CHECK(t == NULL, "failed load left a tokenizer");
    } else {
        FZ_CHECK(t && bpe_vocab_size(t) == vocab_size, "vocab_size lost");
        int n = bpe_token_count(t);
        FZ_CHECK(n >= 256 && n <= vocab_size, "%d tokens", n);
        FZ_CHECK(bpe_token_bytes(t, n, NULL, NULL) == KVGPT_ERR_TOKEN, "id %d past the file has bytes", n);
        FZ_CHECK(bpe_token_bytes(t, -1, NULL, NULL) == KVGPT_ERR_TOKEN, "id -1 has bytes");
        round_trip(t, data, size);
    }
    free(tables);
    return 0;
}
