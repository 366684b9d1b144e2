/* bench/bench_bpe.c — how fast the GPT-2 tokenizer loads and encodes
 * English text (single thread). Reports; asserts nothing (make builds it,
 * nothing runs it).
 *
 *   build/cpu/bench/bench_bpe [VOCAB MERGES [TEXT_FILE...]]
 * defaults: $KVGPT_FIXTURES (or ../shared/fixtures)/gpt2_tiny_hf/{vocab.json,merges.txt},
 * else models/gpt2-tokenizer/ (`make tokenizer`), and every file of
 * /usr/share/common-licenses, concatenated and repeated to ~1 MB.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tokenizer/bpe.h"

#define TEXT_BYTES (1u << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static size_t append_file(const char *path, char *buf, size_t used, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t got;
    if (!f) return used;
    got = fread(buf + used, 1, cap - used, f);
    fclose(f);
    return used + got;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    char vocab[1024], merges[1024];
    const char *fx = getenv("KVGPT_FIXTURES");
    char *text = malloc(TEXT_BYTES), *one = malloc(TEXT_BYTES);
    size_t len = 0, one_len = 0;
    bpe_sizes sz;
    kvgpt_error err = {0, ""};
    void *tables = NULL, *files = NULL, *work;
    bpe_tokenizer *t = NULL;
    double load_t[15], enc_t[7];
    int i, n = 0, cap;
    int32_t *ids;
    size_t work_bytes;

    if (argc >= 3) {
        snprintf(vocab, sizeof vocab, "%s", argv[1]);
        snprintf(merges, sizeof merges, "%s", argv[2]);
    } else {
        snprintf(vocab, sizeof vocab, "%s/gpt2_tiny_hf/vocab.json", fx && *fx ? fx : "../shared/fixtures");
        snprintf(merges, sizeof merges, "%s/gpt2_tiny_hf/merges.txt", fx && *fx ? fx : "../shared/fixtures");
        struct stat st;
        if (stat(vocab, &st) != 0) {
            snprintf(vocab, sizeof vocab, "models/gpt2-tokenizer/vocab.json");
            snprintf(merges, sizeof merges, "models/gpt2-tokenizer/merges.txt");
        }
    }
    if (argc > 3) {
        for (i = 3; i < argc; i++) one_len = append_file(argv[i], one, one_len, TEXT_BYTES);
    } else {
        DIR *d = opendir("/usr/share/common-licenses");
        struct dirent *e;
        char names[64][256];
        int nn = 0, k;
        while (d && (e = readdir(d)) != NULL && nn < 64)
            if (e->d_name[0] != '.') snprintf(names[nn++], sizeof names[0], "%s", e->d_name);
        if (d) closedir(d);
        qsort(names, (size_t)nn, sizeof names[0], (int (*)(const void *, const void *))strcmp);
        for (k = 0; k < nn; k++) {
            char p[512];
            snprintf(p, sizeof p, "/usr/share/common-licenses/%.200s", names[k]);
            one_len = append_file(p, one, one_len, TEXT_BYTES);
        }
    }
    if (one_len == 0) {
        fprintf(stderr, "bench_bpe: no text to encode\n");
        return 1;
    }
    while (len < TEXT_BYTES) {
        size_t k = one_len < TEXT_BYTES - len ? one_len : TEXT_BYTES - len;
        memcpy(text + len, one, k);
        len += k;
    }

    if (bpe_plan(vocab, merges, 50257, &sz, &err) != KVGPT_OK) {
        fprintf(stderr, "bench_bpe: %s\n", err.msg);
        return 1;
    }
    if (posix_memalign(&tables, 64, sz.table_bytes) != 0) return 1;
    files = malloc(sz.file_bytes);
    for (i = 0; i < 15; i++) {
        double t0 = now_s();
        if (bpe_load(tables, sz.table_bytes, files, sz.file_bytes, vocab, merges, 50257, &t, &err) != KVGPT_OK) {
            fprintf(stderr, "bench_bpe: %s\n", err.msg);
            return 1;
        }
        load_t[i] = now_s() - t0;
    }
    qsort(load_t, 15, sizeof load_t[0], cmp_double);

    cap = (int)len;
    ids = malloc(sizeof(int32_t) * (size_t)cap);
    work_bytes = bpe_encode_work_bytes(len);
    work = malloc(work_bytes);
    for (i = 0; i < 7; i++) {
        double t0 = now_s();
        if (bpe_encode(t, text, len, ids, cap, &n, work, work_bytes, &err) != KVGPT_OK) {
            fprintf(stderr, "bench_bpe: %s\n", err.msg);
            return 1;
        }
        enc_t[i] = now_s() - t0;
    }
    qsort(enc_t, 7, sizeof enc_t[0], cmp_double);

    printf("tokenizer: %s + %s\n", vocab, merges);
    printf("memory: tables %zu bytes, load-time file buffer %zu bytes\n", sz.table_bytes, sz.file_bytes);
    printf("load: median %.2f ms, best %.2f ms (15 runs)\n", load_t[7] * 1e3, load_t[0] * 1e3);
    printf("encode: %zu bytes (%zu-byte text repeated) -> %d tokens (%.2f bytes/token)\n", len, one_len, n,
           (double)len / n);
    printf("encode: median %.2f ms = %.1f MB/s, best %.2f ms = %.1f MB/s (7 runs, single thread)\n",
           enc_t[3] * 1e3, (double)len / enc_t[3] / 1e6, enc_t[0] * 1e3, (double)len / enc_t[0] / 1e6);
    free(ids);
    free(work);
    free(tables);
    free(files);
    free(text);
    free(one);
    return 0;
}
