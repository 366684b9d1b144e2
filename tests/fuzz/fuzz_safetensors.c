/* tests/fuzz/fuzz_safetensors.c — libFuzzer target: st_open + st_parse on a
 * file holding the input, then st_find and st_read_rows on every tensor the
 * reader accepted. Oracles: no sanitizer report; every failure has a status
 * and a message; an accepted header keeps its promises (sorted, unique names,
 * offsets inside the data, bytes = shape × dtype) so reading any accepted
 * tensor succeeds. */
#include "fuzz_common.h"
#include "loader/loader.h"

#define FZ_READ_MAX (1u << 20)   /* read tensors up to 1 MiB: enough to cover the path */

static void read_tensor(st_file *s, const st_tensor *t)
{
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) numel *= (uint64_t)t->shape[d];
    size_t es = st_dtype_size(t->dtype);
    FZ_CHECK(es != 0, "accepted a tensor with dtype %d", (int)t->dtype);
    FZ_CHECK(t->end - t->begin == numel * es, "bytes %llu != numel %llu × %zu",
             (unsigned long long)(t->end - t->begin), (unsigned long long)numel, es);
    if (numel == 0 || numel * 4 > FZ_READ_MAX) return;
    size_t row_len = t->ndim ? (size_t)t->shape[t->ndim - 1] : 1;
    size_t rows = (size_t)numel / row_len;
    float *dst = malloc((size_t)numel * sizeof(float));
    void *raw = malloc((size_t)numel * es);
    kvgpt_error err = {0, ""};
    kvgpt_status st = st_read_rows(s, t, 0, rows, row_len, dst, raw, &err);
    FZ_CHECK(st == KVGPT_OK, "reading an accepted tensor failed: %s", err.msg);
    /* One row past the end must be refused, not read. */
    st = st_read_rows(s, t, rows, 1, row_len, dst, raw, &err);
    FZ_CHECK(st != KVGPT_OK, "read a row past the tensor \"%.*s\"", (int)t->name_len, t->name);
    free(dst);
    free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_path("model.safetensors");
    fz_write(path, data, size);
    st_file s;
    size_t need = 0;
    kvgpt_error err = {0, ""};
    kvgpt_status st = st_open(&s, path, &need, &err);
    if (st) {
        fz_check_failure(st, &err);
        return 0;
    }
    FZ_CHECK(need >= s.header_len, "scratch %zu smaller than the header %llu", need,
             (unsigned long long)s.header_len);
    void *scratch = malloc(need);
    /* One byte short must be refused (ASan would see it used otherwise). */
    st = st_parse(&s, scratch, need - 1, &err);
    FZ_CHECK(st == KVGPT_ERR_NOMEM, "scratch one byte short gave %d", (int)st);
    st = st_parse(&s, scratch, need, &err);
    if (st) {
        fz_check_failure(st, &err);
    } else {
        uint64_t data_len = s.file.size - s.data_start;
        for (size_t i = 0; i < s.n_tensors; i++) {
            const st_tensor *t = &s.tensors[i];
            FZ_CHECK(t->begin <= t->end && t->end <= data_len, "tensor %zu outside the data", i);
            if (i) {
                size_t a = s.tensors[i - 1].name_len, b = t->name_len;
                int c = memcmp(s.tensors[i - 1].name, t->name, a < b ? a : b);
                FZ_CHECK(c < 0 || (c == 0 && a < b), "tensors %zu and %zu not sorted/unique", i - 1, i);
            }
            char name[64];
            if (t->name_len < sizeof name && !memchr(t->name, 0, t->name_len)) {
                memcpy(name, t->name, t->name_len);
                name[t->name_len] = 0;
                FZ_CHECK(st_find(&s, name) != NULL, "st_find lost \"%s\"", name);
            }
            read_tensor(&s, t);
        }
        (void)st_find(&s, "wte.weight");
        (void)st_find(&s, "h.0.attn.c_attn.weight");
    }
    free(scratch);
    st_close(&s);
    return 0;
}
