/* tests/test_folder_input.c — model folders as users leave them, round two
 * (issue 14): config.json compared as decoded JSON ("n_l\u0061yer" is
 * n_layer, "gelu\u0000xyz" is not gelu); a char vocabulary encodes in time
 * linear in the text and refuses a character twice or a stoi that is not
 * itos' inverse; a vocab.json that is a FIFO or a device is refused at once,
 * never waited on; a GPT-2 vocab.json without merges.txt leaves the model
 * without a tokenizer instead of refusing it; an empty folder name is not
 * the root; a 200 kB pre-token encodes in the plan's work memory; and
 * kvgpt_open runs on a 64 KiB stack. */
#define _XOPEN_SOURCE 700
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kvgpt.h"
#include "tokenizer/charvocab.h"
#include "tests/support/fixtures.h"
#include "tests/support/suite.h"

#define SC "shakespeare_char"
#define HF "gpt2_tiny_hf"

/* A temporary copy of a fixture model; 0 when the fixtures are absent (skipped). */
static int copy_model(const char *test, const char *fixture, char *dir, size_t cap)
{
    if (!tf_need_fixtures(test)) return 0;
    ck_assert_int_eq(tf_tmpdir(dir, cap), 0);
    ck_assert_msg(tf_copy_dir(tf_path(fixture), dir) == 0, "cannot copy %s", fixture);
    return 1;
}

static kvgpt_status open_dir(const char *dir, kvgpt_model **m, kvgpt_error *err)
{
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = dir;
    o.threads = 1;
    *m = NULL;
    return kvgpt_open(&o, NULL, 0, m, err);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- config.json: keys and values as decoded JSON -------------------------------- */

START_TEST(test_config_escapes)
{
    char dir[512];
    if (!copy_model(__func__, HF, dir, sizeof dir)) return;
    size_t n;
    char *cfg = tf_read_file(tf_path(HF "/config.json"), &n), *p;
    ck_assert_ptr_nonnull(cfg);
    /* Spell the keys with escapes: the same model. */
    char *esc = malloc(n + 64);
    ck_assert_ptr_nonnull(p = strstr(cfg, "\"n_layer\""));
    snprintf(esc, n + 64, "%.*s\"n_l\\u0061yer\"%s", (int)(p - cfg), cfg, p + strlen("\"n_layer\""));
    ck_assert_int_eq(tf_write(dir, "config.json", esc, strlen(esc)), 0);
    kvgpt_model *m;
    kvgpt_error err = {0};
    ck_assert_msg(open_dir(dir, &m, &err) == KVGPT_OK, "escaped key: %s", err.msg);
    ck_assert_int_eq(kvgpt_model_config(m)->n_layer, 2);
    kvgpt_close(m);
    /* "gelu\u0000xyz" is no activation nanoGPT or HF knows; "gel\u0075" is gelu. */
    const char *acts[2] = {"\"gelu\\u0000xyz\"", "\"gel\\u0075\""};
    for (int k = 0; k < 2; k++) {
        char *q = strstr(esc, "\"activation_function\"");
        ck_assert_ptr_nonnull(q);
        char *v = strchr(q + 21, '"'), *e = strchr(v + 1, '"');
        char *out = malloc(n + 128);
        snprintf(out, n + 128, "%.*s%s%s", (int)(v - esc), esc, acts[k], e + 1);
        ck_assert_int_eq(tf_write(dir, "config.json", out, strlen(out)), 0);
        kvgpt_status s = open_dir(dir, &m, &err);
        if (k == 0) {
            ck_assert_int_eq(s, KVGPT_ERR_CONFIG);
            ck_assert_msg(strstr(err.msg, "activation_function \"gelu\\x00xyz\""), "%s", err.msg);
        } else {
            ck_assert_msg(s == KVGPT_OK, "%s", err.msg);
            ck_assert_int_eq(kvgpt_model_config(m)->gelu, KVGPT_GELU_ERF);
            kvgpt_close(m);
        }
        free(out);
    }
    free(esc);
    free(cfg);
    tf_rm_dir(dir);
}
END_TEST

/* ---- a char vocabulary: linear encoding, duplicates refused ------------------------ */

/* A vocab.json of V CJK characters U+4E00.. (ids 0..V-1), stoi as written. */
static char *cjk_vocab(int V, int dup_itos, int bad_stoi)
{
    size_t cap = 64 + (size_t)V * 40;
    char *b = malloc(cap);
    size_t o = (size_t)snprintf(b, cap, "{\"stoi\": {");
    for (int i = 0; i < V; i++)
        o += (size_t)snprintf(b + o, cap - o, "%s\"\\u%04x\": %d", i ? ", " : "", 0x4E00 + i,
                              bad_stoi && i == 1 ? 0 : i);
    o += (size_t)snprintf(b + o, cap - o, "}, \"itos\": [");
    for (int i = 0; i < V; i++)
        o += (size_t)snprintf(b + o, cap - o, "%s\"\\u%04x\"", i ? ", " : "", 0x4E00 + (dup_itos && i == 7 ? 3 : i));
    snprintf(b + o, cap - o, "]}");
    return b;
}

/* cv_load with exactly the planned memory. */
static kvgpt_status load_chars(const char *path, int V, cv_vocab *v, void **a, void **b, kvgpt_error *err)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    *a = malloc((size_t)st.st_size + 1);
    *b = malloc(cv_table_bytes((uint64_t)st.st_size, V));
    return cv_load(v, path, V, *a, (size_t)st.st_size, *b, cv_table_bytes((uint64_t)st.st_size, V), err);
}

START_TEST(test_char_vocab_cjk)
{
    char dir[512], path[600];
    ck_assert_int_eq(tf_tmpdir(dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    const int V = 20000;
    char *text = cjk_vocab(V, 0, 0);
    ck_assert_int_eq(tf_write(dir, "vocab.json", text, strlen(text)), 0);
    free(text);
    cv_vocab v;
    void *a, *b;
    kvgpt_error err = {0};
    ck_assert_msg(load_chars(path, V, &v, &a, &b, &err) == KVGPT_OK, "%s", err.msg);
    /* 30k characters of the vocabulary: one probe each (it took 1.1 s, a scan
     * of the vocabulary per byte above 0x7F). */
    size_t n = 30000, len = 3 * n;
    char *prompt = malloc(len);
    int32_t *ids = malloc(sizeof(int32_t) * n);
    for (size_t i = 0; i < n; i++) {
        unsigned cp = 0x4E00 + (unsigned)((i * 7919) % (size_t)V);
        prompt[3 * i] = (char)(0xE0 | cp >> 12);
        prompt[3 * i + 1] = (char)(0x80 | (cp >> 6 & 0x3F));
        prompt[3 * i + 2] = (char)(0x80 | (cp & 0x3F));
    }
    int got = 0;
    double t0 = now_s();
    ck_assert_msg(cv_encode(&v, prompt, len, ids, (int)n, &got, &err) == KVGPT_OK, "%s", err.msg);
    double dt = now_s() - t0;
    printf("  30k CJK characters, 20k-entry vocabulary: %.2f ms\n", dt * 1e3);
    ck_assert_int_eq(got, (int)n);
    for (size_t i = 0; i < n; i++) ck_assert_int_eq(ids[i], (int)((i * 7919) % (size_t)V));
    ck_assert_msg(dt < 0.25, "%.3f s", dt);
    /* A character the vocabulary lacks is named. */
    ck_assert_int_eq(cv_encode(&v, "\xe9\xbe\xa5", 3, ids, 1, &got, &err), KVGPT_ERR_TOKEN);
    ck_assert_msg(strstr(err.msg, "U+9FA5"), "%s", err.msg);
    free(a);
    free(b);
    /* Two ids for one character, and a stoi that sends two characters to id 0. */
    for (int k = 0; k < 2; k++) {
        text = cjk_vocab(64, k == 0, k == 1);
        ck_assert_int_eq(tf_write(dir, "vocab.json", text, strlen(text)), 0);
        free(text);
        ck_assert_int_eq(load_chars(path, 64, &v, &a, &b, &err), KVGPT_ERR_VOCAB);
        ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, k == 0 ? "itos[7] is the same character as itos[3]"
                                                                      : "stoi maps a character to 0"), "%s", err.msg);
        printf("  %s\n", err.msg);
        free(a);
        free(b);
    }
    free(prompt);
    free(ids);
    unlink(path);
    rmdir(dir);
}
END_TEST

/* ---- files that are not files --------------------------------------------------------- */

START_TEST(test_vocab_not_a_file)
{
    char dir[512], p[600];
    if (!copy_model(__func__, SC, dir, sizeof dir)) return;
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    const char *what[2] = {"a FIFO", "a character device"};
    for (int k = 0; k < 2; k++) {
        unlink(p);
        if (k == 0) ck_assert_int_eq(mkfifo(p, 0600), 0);   /* no writer ever comes */
        else ck_assert_int_eq(symlink("/dev/zero", p), 0);
        kvgpt_model *m;
        kvgpt_error err = {0};
        double t0 = now_s();
        kvgpt_status s = open_dir(dir, &m, &err);
        ck_assert_msg(s == KVGPT_ERR_IO, "%s: %d %s", what[k], s, err.msg);
        ck_assert_msg(strstr(err.msg, p) && strstr(err.msg, what[k]), "%s", err.msg);
        ck_assert_msg(now_s() - t0 < 10, "waited on %s", what[k]);
        printf("  %s\n", err.msg);
    }
    tf_rm_dir(dir);
}
END_TEST

START_TEST(test_bpe_vocab_without_merges)
{
    char dir[512], p[600];
    if (!copy_model(__func__, HF, dir, sizeof dir)) return;
    snprintf(p, sizeof p, "%s/merges.txt", dir);
    unlink(p);
    kvgpt_model *m;
    kvgpt_error err = {0};
    /* Opens without a tokenizer: token ids still work. */
    ck_assert_msg(open_dir(dir, &m, &err) == KVGPT_OK, "%s", err.msg);
    ck_assert_int_eq(kvgpt_has_tokenizer(m), 0);
    kvgpt_close(m);
    tf_rm_dir(dir);
}
END_TEST

START_TEST(test_empty_folder_name)
{
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = "";
    kvgpt_plan plan;
    kvgpt_error err = {0};
    ck_assert_int_eq(kvgpt_plan_model(&o, &plan, &err), KVGPT_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "empty name"), "%s", err.msg);
    kvgpt_model *m;
    ck_assert_int_eq(open_dir("", &m, &err), KVGPT_ERR_ARG);
}
END_TEST

/* ---- a long pre-token through the model's own work memory ------------------------------ */

START_TEST(test_long_pretoken_encodes)
{
    if (!tf_need_fixtures(__func__)) return;
    kvgpt_model *m;
    kvgpt_error err = {0};
    ck_assert_msg(open_dir(tf_path(HF), &m, &err) == KVGPT_OK, "%s", err.msg);
    /* python3 -c "print('='*200000,end='')" | kvgpt encode: "needs 8800064 bytes
     * of work memory, given 8395896" before; 12 MiB of it too (windows). */
    size_t sizes[2] = {200000, (size_t)12 << 20};
    for (int k = 0; k < 2; k++) {
        char *t = malloc(sizes[k]);
        memset(t, '=', sizes[k]);
        int32_t *ids = malloc(sizeof(int32_t) * sizes[k]);
        int n = 0;
        ck_assert_msg(kvgpt_encode(m, t, sizes[k], ids, (int)sizes[k], &n, &err) == KVGPT_OK, "%zu: %s", sizes[k],
                      err.msg);
        size_t at = 0;
        for (int i = 0; i < n; i++) {
            const char *b;
            size_t bl;
            ck_assert_int_eq(kvgpt_token_bytes(m, ids[i], &b, &bl), KVGPT_OK);
            ck_assert(at + bl <= sizes[k] && memcmp(b, t + at, bl) == 0);
            at += bl;
        }
        ck_assert_uint_eq(at, sizes[k]);
        free(t);
        free(ids);
    }
    kvgpt_close(m);
}
END_TEST

/* ---- kvgpt_open on a small stack ------------------------------------------------------- */

typedef struct {
    const char *dir;
    kvgpt_status s;
    kvgpt_error err;
} stack_job;

static void *open_on_stack(void *arg)
{
    stack_job *j = arg;
    kvgpt_model *m;
    j->s = open_dir(j->dir, &m, &j->err);
    if (!j->s) kvgpt_close(m);
    return NULL;
}

START_TEST(test_open_on_small_stack)
{
    if (!tf_need_fixtures(__func__)) return;
    char ck[512], p[600];
    /* A nanoGPT out_dir (ckpt.pt + meta.pkl), a safetensors char model, a GPT-2 BPE one. */
    ck_assert_int_eq(tf_tmpdir(ck, sizeof ck), 0);
    const char *files[2] = {"ckpt.pt", "meta.pkl"};
    for (int i = 0; i < 2; i++) {
        size_t n;
        char src[600];
        snprintf(src, sizeof src, "%s/%s", SC, files[i]);
        char *b = tf_read_file(tf_path(src), &n);
        ck_assert_ptr_nonnull(b);
        ck_assert_int_eq(tf_write(ck, files[i], b, n), 0);
        free(b);
    }
    const char *dirs[3] = {ck, tf_path(SC), tf_path(HF)};
    /* 64 KiB (ASan's redzones make every frame larger: 4 times that there). */
#if defined(__SANITIZE_ADDRESS__)
    size_t stack = (size_t)256 << 10;
#else
    size_t stack = (size_t)64 << 10;
#endif
    for (int i = 0; i < 3; i++) {
        stack_job j = {dirs[i], KVGPT_OK, {0}};
        pthread_attr_t at;
        pthread_t t;
        ck_assert_int_eq(pthread_attr_init(&at), 0);
        ck_assert_int_eq(pthread_attr_setstacksize(&at, stack), 0);
        ck_assert_int_eq(pthread_create(&t, &at, open_on_stack, &j), 0);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        pthread_attr_destroy(&at);
        ck_assert_msg(j.s == KVGPT_OK, "%s: %s", dirs[i], j.err.msg);
    }
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", ck, files[i]);
        unlink(p);
    }
    rmdir(ck);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("folder_input");
    TCase *tc = tcase_create("folder_input");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_config_escapes);
    tcase_add_test(tc, test_char_vocab_cjk);
    tcase_add_test(tc, test_vocab_not_a_file);
    tcase_add_test(tc, test_bpe_vocab_without_merges);
    tcase_add_test(tc, test_empty_folder_name);
    tcase_add_test(tc, test_long_pretoken_encodes);
    tcase_add_test(tc, test_open_on_small_stack);
    suite_add_tcase(s, tc);
    return tf_run_suite(s);
}
