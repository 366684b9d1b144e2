/* tests/fuzz/fuzz_ckpt.c — libFuzzer target: nanoGPT's ckpt.pt (a torch zip
 * holding a pickle) through ckpt_open + ckpt_parse, then st_find and
 * st_read_rows on every tensor accepted. Two input forms, so that mutations
 * reach the pickle interpreter instead of dying at the CRC check:
 *   - a whole zip: the CRC-32 of every entry is recomputed and patched into
 *     the directory, local header and data descriptor before the file is
 *     written;
 *   - 'P', a count k (at most 32), k sizes (2 bytes little-endian), a pickle:
 *     wrapped here into a stored zip of ckpt/data.pkl and storages
 *     ckpt/data/0 .. k-1 of those sizes (the reader wants them exact). Scratch is exactly what ckpt_open
 * asks for, placed off alignment, so ASan sees any byte used past the plan.
 * Oracles: a failure has a status and a message; the scratch planned is
 * bounded by the file (a fixed 256 KiB plus 96 bytes a byte of it); an
 * accepted table is sorted by name with every range inside the file and
 * bytes = shape × dtype, so reading any accepted tensor succeeds. */
#include "fuzz_common.h"
#include "loader/ckpt.h"

#define FZ_READ_MAX (1u << 20)
#define FZ_STORAGES 32

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | rd16(p + 2) << 16; }
static void wr16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, v); wr16(p + 2, v >> 16); }

/* Patches every entry's CRC-32 to match its bytes (central directory, local
 * header, data descriptor): mutations then reach the pickle and the reads
 * instead of dying at the checksums. */
static void fix_crcs(uint8_t *b, size_t n)
{
    for (size_t i = 0; i + 46 <= n; i++) {
        if (rd32(b + i) != 0x02014b50u) continue;
        size_t size = rd32(b + i + 20), lho = rd32(b + i + 42);
        if (lho + 30 > n || rd32(b + lho) != 0x04034b50u) continue;
        size_t at = lho + 30 + rd16(b + lho + 26) + rd16(b + lho + 28);
        if (at > n || size > n - at) continue;
        uint32_t crc = zip_crc32(0, b + at, size);
        wr32(b + i + 16, crc);
        if (rd32(b + lho + 14)) wr32(b + lho + 14, crc);
        size_t dd = at + size;
        if ((rd16(b + lho + 6) & 8) && dd + 8 <= n) wr32(b + dd + (rd32(b + dd) == 0x08074b50u ? 4 : 0), crc);
    }
}

/* A stored zip of ckpt/data.pkl and the storages the input's size table asks for. */
static uint8_t *wrap_pickle(const uint8_t *in, size_t n_in, size_t *out_len)
{
    /* The storage bytes and their CRCs by length are made once: per input
     * they cost more than the reader itself. */
    static uint8_t storage[65536];
    static uint32_t crc_of[65536], have_crc[65536 / 32];
    static int made;
    if (!made) {
        for (size_t i = 0; i < sizeof storage; i++) storage[i] = (uint8_t)(i * 37u + 11u);
        made = 1;
    }
    int k_st = n_in ? in[0] % (FZ_STORAGES + 1) : 0;
    if (n_in < 1 + 2 * (size_t)k_st) k_st = 0;
    const uint8_t *pk = in + 1 + 2 * k_st;
    size_t n = n_in >= 1 + 2 * (size_t)k_st ? n_in - 1 - 2 * (size_t)k_st : 0;
    if (n_in == 0) pk = in;
    int N = k_st + 2;
    char names[FZ_STORAGES + 2][32];
    const uint8_t *data[FZ_STORAGES + 2];
    size_t len[FZ_STORAGES + 2], lho[FZ_STORAGES + 2], total = 22;
    snprintf(names[0], sizeof names[0], "ckpt/data.pkl");
    data[0] = pk;
    len[0] = n;
    for (int k = 0; k < k_st; k++) {
        snprintf(names[1 + k], sizeof names[0], "ckpt/data/%d", k);
        data[1 + k] = storage;
        len[1 + k] = rd16(in + 1 + 2 * k);
    }
    snprintf(names[N - 1], sizeof names[0], "ckpt/version");
    data[N - 1] = (const uint8_t *)"3\n";
    len[N - 1] = 2;
    for (int k = 0; k < N; k++) total += 30 + 46 + 2 * strlen(names[k]) + len[k];
    uint8_t *b = calloc(1, total), *o = b;
    uint32_t crcs[FZ_STORAGES + 2];
    for (int k = 0; k < N; k++) {
        if (data[k] != storage) {
            crcs[k] = zip_crc32(0, data[k], len[k]);
            continue;
        }
        if (!(have_crc[len[k] / 32] >> (len[k] % 32) & 1)) {
            crc_of[len[k]] = zip_crc32(0, storage, len[k]);
            have_crc[len[k] / 32] |= 1u << (len[k] % 32);
        }
        crcs[k] = crc_of[len[k]];
    }
    for (int k = 0; k < N; k++) {
        size_t nl = strlen(names[k]);
        uint32_t crc = crcs[k];
        lho[k] = (size_t)(o - b);
        wr32(o, 0x04034b50u);
        wr32(o + 14, crc);
        wr32(o + 18, (uint32_t)len[k]);
        wr32(o + 22, (uint32_t)len[k]);
        wr16(o + 26, (uint32_t)nl);
        memcpy(o + 30, names[k], nl);
        memcpy(o + 30 + nl, data[k], len[k]);
        o += 30 + nl + len[k];
    }
    size_t cd = (size_t)(o - b);
    for (int k = 0; k < N; k++) {
        size_t nl = strlen(names[k]);
        wr32(o, 0x02014b50u);
        wr32(o + 16, crcs[k]);
        wr32(o + 20, (uint32_t)len[k]);
        wr32(o + 24, (uint32_t)len[k]);
        wr16(o + 28, (uint32_t)nl);
        wr32(o + 42, (uint32_t)lho[k]);
        memcpy(o + 46, names[k], nl);
        o += 46 + nl;
    }
    wr32(o, 0x06054b50u);
    wr16(o + 8, (uint32_t)N);
    wr16(o + 10, (uint32_t)N);
    wr32(o + 12, (uint32_t)(o - b - cd));
    wr32(o + 16, (uint32_t)cd);
    *out_len = (size_t)(o - b) + 22;
    return b;
}

static void read_tensor(st_file *s, const st_tensor *t)
{
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) numel *= (uint64_t)t->shape[d];
    size_t es = st_dtype_size(t->dtype);
    FZ_CHECK(es != 0, "accepted a tensor with dtype %d", (int)t->dtype);
    FZ_CHECK(t->begin <= t->end && t->end <= s->file.size, "tensor [%llu, %llu) outside the %llu-byte file",
             (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)s->file.size);
    FZ_CHECK(t->end - t->begin == numel * es, "bytes %llu != numel %llu × %zu",
             (unsigned long long)(t->end - t->begin), (unsigned long long)numel, es);
    if (numel == 0 || numel * 4 > FZ_READ_MAX) return;
    size_t row_len = t->ndim ? (size_t)t->shape[t->ndim - 1] : 1;
    float *dst = malloc((size_t)numel * sizeof(float));
    void *raw = malloc((size_t)numel * es);
    kvgpt_error err = {0, ""};
    kvgpt_status st = st_read_rows(s, t, 0, (size_t)numel / row_len, row_len, dst, raw, &err);
    FZ_CHECK(st == KVGPT_OK, "reading an accepted tensor failed: %s", err.msg);
    free(dst);
    free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_path("ckpt.pt");
    size_t n = 0;
    uint8_t *file;
    if (size >= 1 && data[0] == 'P') {
        file = wrap_pickle(data + 1, size - 1, &n);
    } else {
        file = malloc(size ? size : 1);
        memcpy(file, data, size);
        n = size;
        fix_crcs(file, n);
    }
    fz_write(path, file, n);
    free(file);
    st_file s;
    size_t need = 0, need2 = 0;
    kvgpt_config cfg;
    kvgpt_error err = {0, ""};
    kvgpt_status st = ckpt_plan(path, &need2, NULL, &err);
    if (st) fz_check_failure(st, &err);
    st = ckpt_open(&s, path, &need, &cfg, &err);
    if (st) {
        fz_check_failure(st, &err);
        return 0;
    }
    FZ_CHECK(need2 == need, "plan without config %zu, with %zu", need2, need);
    /* Per pickle byte at most: an object (16), a cell (8), a stack slot (4), a
     * memo entry (2), a string byte (1), and a table row (112) per 2 bytes of
     * dict entry; plus the fixed buffers (about 180 KiB). */
    FZ_CHECK(need <= ((size_t)256 << 10) + 96 * n, "scratch %zu for a %zu-byte file", need, n);
    kvgpt_error e2 = {0, ""};
    FZ_CHECK(loader_check_config(&cfg, "ckpt", &e2) == KVGPT_OK, "model_args accepted but bad: %s", e2.msg);
    char *mem = malloc(need + 1);
    st = ckpt_parse(&s, mem + 1, need, &err);
    if (st) {
        fz_check_failure(st, &err);
    } else {
        for (size_t i = 0; i < s.n_tensors; i++) {
            const st_tensor *t = &s.tensors[i];
            if (i) {
                size_t a = s.tensors[i - 1].name_len, b = t->name_len;
                int c = memcmp(s.tensors[i - 1].name, t->name, a < b ? a : b);
                FZ_CHECK(c < 0 || (c == 0 && a < b), "tensors %zu and %zu not sorted/unique", i - 1, i);
            }
            read_tensor(&s, t);
        }
        kvgpt_error e3 = {0, ""};
        FZ_CHECK(st_read_done(&s, &e3) == KVGPT_OK, "consistent CRCs, but: %s", e3.msg);
        (void)st_find(&s, "wte.weight");
        (void)st_find(&s, "lm_head.weight");
    }
    st_close(&s);
    free(mem);
    return 0;
}
