/* tests/fuzz/fuzz_bpe_encode.c — libFuzzer target: bpe_encode of arbitrary
 * bytes with the real GPT-2 tokenizer (the gpt2_tiny_hf fixture, loaded once
 * from $KVGPT_FIXTURES or ../shared/fixtures). Oracles: encoding never fails
 * with enough room, the ids spell the input back byte for byte, a too-small
 * id buffer gives KVGPT_ERR_ARG with the exact count, and less work memory
 * than a piece needs either encodes it window by window (spelling it back)
 * or, below the smallest window, is refused rather than overrun. Without the fixtures every input is
 * a no-op (the target says so once). */
#include "fuzz_common.h"
#include "tokenizer/bpe.h"

static bpe_tokenizer *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *env = getenv("KVGPT_FIXTURES");
    char vp[1024], mp[1024];
    snprintf(vp, sizeof vp, "%s/gpt2_tiny_hf/vocab.json", env && *env ? env : "../shared/fixtures");
    snprintf(mp, sizeof mp, "%s/gpt2_tiny_hf/merges.txt", env && *env ? env : "../shared/fixtures");
    bpe_sizes sz;
    kvgpt_error err = {0, ""};
    if (bpe_plan(vp, mp, 50257, &sz, &err)) {
        fprintf(stderr, "fuzz_bpe_encode: no GPT-2 tokenizer (%s): skipping every input\n", err.msg);
        return 0;
    }
    void *tables = NULL, *files = malloc(sz.file_bytes);
    if (posix_memalign(&tables, 64, sz.table_bytes)) abort();
    kvgpt_status st = bpe_load(tables, sz.table_bytes, files, sz.file_bytes, vp, mp, 50257, &g_tok, &err);
    free(files);
    FZ_CHECK(st == KVGPT_OK, "the fixture tokenizer does not load: %s", err.msg);
    return 0;   /* tables live until exit: the tokenizer points into them */
}

/* The ids spell the input back byte for byte. */
static void check_spells(const int32_t *ids, int n, const uint8_t *data, size_t size, const char *how)
{
    size_t at = 0;
    FZ_CHECK(n >= 0 && (size_t)n <= size && (n > 0) == (size > 0), "%s: %d ids for %zu bytes", how, n, size);
    for (int i = 0; i < n; i++) {
        const char *b;
        size_t bl;
        FZ_CHECK(ids[i] >= 0 && ids[i] < 50257, "%s: id %d", how, ids[i]);
        FZ_CHECK(bpe_token_bytes(g_tok, ids[i], &b, &bl) == KVGPT_OK, "%s: id %d has no bytes", how, ids[i]);
        FZ_CHECK(at + bl <= size && memcmp(b, data + at, bl) == 0, "%s: id %d does not spell byte %zu", how, ids[i],
                 at);
        at += bl;
    }
    FZ_CHECK(at == size, "%s: ids spell %zu of %zu bytes", how, at, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_tok) return 0;
    size_t wb = bpe_encode_work_bytes(size);
    void *work = malloc(wb);
    int cap = (int)size + 1;
    int32_t *ids = malloc((size_t)cap * sizeof(int32_t));
    int n = -1;
    kvgpt_error err = {0, ""};
    kvgpt_status st = bpe_encode(g_tok, (const char *)data, size, ids, cap, &n, work, wb, &err);
    FZ_CHECK(st == KVGPT_OK, "encode of %zu bytes failed: %s", size, err.msg);
    check_spells(ids, n, data, size, "whole");
    if (n > 1) {
        /* One id short: refused with the count needed, writing no more than cap. */
        int32_t *few = malloc((size_t)(n - 1) * sizeof(int32_t));
        int m = -1;
        st = bpe_encode(g_tok, (const char *)data, size, few, n - 1, &m, work, wb, &err);
        FZ_CHECK(st == KVGPT_ERR_ARG && m == n, "cap %d: status %d, count %d (needs %d)", n - 1, (int)st, m, n);
        FZ_CHECK(memcmp(few, ids, (size_t)(n - 1) * sizeof(int32_t)) == 0, "partial ids differ");
        free(few);
    }
    if (size > 0) {
        /* Less work memory than a long piece needs: windows (which must spell
         * the text back) or, below the smallest window, a clean refusal;
         * never an overrun (ASan watches). */
        size_t smalls[2] = {wb / 3, bpe_encode_work_bytes(2048)};
        for (int k = 0; k < 2; k++) {
            void *w2 = malloc(smalls[k] ? smalls[k] : 1);
            int32_t *ids2 = malloc((size_t)cap * sizeof(int32_t));
            int n2 = -1;
            st = bpe_encode(g_tok, (const char *)data, size, ids2, cap, &n2, w2, smalls[k], &err);
            if (st) FZ_CHECK(st == KVGPT_ERR_ARG && strstr(err.msg, "work memory"), "small work: status %d: %s",
                             (int)st, err.msg);
            else check_spells(ids2, n2, data, size, "windows");
            free(w2);
            free(ids2);
        }
    }
    free(work);
    free(ids);
    return 0;
}
