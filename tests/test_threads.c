/* tests/test_threads.c — distinct models in distinct threads at once give
 * the tokens each gives alone (the API's thread-safety promise), the library
 * has no writable global data, and a caller arena that is too small is
 * refused with KVGPT_ERR_NOMEM without a byte of the caller's memory touched
 * (nor, when it fits, a byte outside the given block). */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvgpt.h"
#include "tests/support/fixtures.h"
#include "tests/support/suite.h"

#define N_TOKENS 400

typedef struct {
    const char *model;        /* fixture folder */
    uint64_t seed;
    pthread_barrier_t *start; /* NULL: run alone */
    int32_t toks[N_TOKENS];
    int n;
    kvgpt_status st;
    char msg[512];
} job;

static int collect(void *user, int seq, int32_t tok)
{
    job *j = user;
    if (seq == 0 && j->n < N_TOKENS) j->toks[j->n] = tok;
    j->n++;
    return 0;
}

/* Opens its own model (so opens race too), waits for the other thread, generates, closes. */
static void *run_job(void *arg)
{
    job *j = arg;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", tf_dir(), j->model);
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = dir;
    o.threads = 1;
    kvgpt_model *m = NULL;
    kvgpt_error err = {0, ""};
    j->n = 0;
    j->st = kvgpt_open(&o, NULL, 0, &m, &err);
    if (j->start) pthread_barrier_wait(j->start);   /* reached even after a failed open: no deadlock */
    if (j->st == KVGPT_OK) {
        kvgpt_gen_options g;
        kvgpt_gen_options_default(&g);
        g.max_new_tokens = N_TOKENS;
        g.seed = j->seed;
        g.stop_at_eot = 0;
        g.on_token = collect;
        g.user = j;
        kvgpt_gen_result res;
        int32_t prompt[2] = {0, 1};
        j->st = kvgpt_generate(m, prompt, 2, &g, &res, &err);
        kvgpt_close(m);
    }
    snprintf(j->msg, sizeof j->msg, "%s", err.msg);
    return NULL;
}

static void check_pair(const char *a_model, uint64_t a_seed, const char *b_model, uint64_t b_seed)
{
    static job alone[2], together[2];
    const char *models[2] = {a_model, b_model};
    uint64_t seeds[2] = {a_seed, b_seed};
    for (int i = 0; i < 2; i++) {
        memset(&alone[i], 0, sizeof alone[i]);
        alone[i].model = models[i];
        alone[i].seed = seeds[i];
        run_job(&alone[i]);
        ck_assert_msg(alone[i].st == KVGPT_OK && alone[i].n == N_TOKENS, "%s alone: status %d, %d tokens: %s",
                      models[i], (int)alone[i].st, alone[i].n, alone[i].msg);
    }
    /* Several rounds: the interleaving differs each time. */
    for (int round = 0; round < 3; round++) {
        pthread_barrier_t bar;
        ck_assert_int_eq(pthread_barrier_init(&bar, NULL, 2), 0);
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
            memset(&together[i], 0, sizeof together[i]);
            together[i].model = models[i];
            together[i].seed = seeds[i];
            together[i].start = &bar;
            ck_assert_int_eq(pthread_create(&th[i], NULL, run_job, &together[i]), 0);
        }
        for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        pthread_barrier_destroy(&bar);
        for (int i = 0; i < 2; i++) {
            ck_assert_msg(together[i].st == KVGPT_OK && together[i].n == N_TOKENS,
                          "%s in a thread: status %d, %d tokens: %s", models[i], (int)together[i].st, together[i].n,
                          together[i].msg);
            for (int k = 0; k < N_TOKENS; k++)
                ck_assert_msg(together[i].toks[k] == alone[i].toks[k],
                              "round %d, %s (seed %llu): token %d is %d beside another model, %d alone", round,
                              models[i], (unsigned long long)seeds[i], k, together[i].toks[k], alone[i].toks[k]);
        }
    }
}

START_TEST(test_two_char_models_in_two_threads)
{
    if (!tf_need_fixtures(__func__)) return;
    check_pair("shakespeare_char", 1, "shakespeare_char", 2);
}
END_TEST

START_TEST(test_char_and_bpe_models_in_two_threads)
{
    if (!tf_need_fixtures(__func__)) return;
    check_pair("shakespeare_char", 7, "gpt2_tiny_hf", 7);
}
END_TEST

static const char *g_argv0;

/* No object of the library lives in writable data (.data, .bss, common,
 * thread-local): read-only tables only. Read from the archive this test was
 * linked with: $KVGPT_LIB, else BUILD/libkvgpt.a beside BUILD/tests/. */
START_TEST(test_no_writable_globals)
{
    const char *lib = getenv("KVGPT_LIB");
    char guess[4096] = "build/cpu/libkvgpt.a";
    const char *t = g_argv0 ? strstr(g_argv0, "/tests/") : NULL;
    if (t && (size_t)(t - g_argv0) + 16 < sizeof guess)
        snprintf(guess, sizeof guess, "%.*s/libkvgpt.a", (int)(t - g_argv0), g_argv0);
    if (!lib || !*lib) lib = guess;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "objdump -t '%s' 2>/dev/null", lib);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char line[1024], bad[2048] = "";
    int objects = 0, n_bad = 0;
    while (fgets(line, sizeof line, p)) {
        if (!strstr(line, " O ") && !strstr(line, "*COM*")) continue;
        objects++;
        const char *sec = strstr(line, " O ") ? strstr(line, " O ") + 3 : strstr(line, "*COM*");
        while (*sec == ' ') sec++;
        int writable = strncmp(sec, ".data", 5) == 0 || strncmp(sec, ".bss", 4) == 0 ||
                       strncmp(sec, ".tdata", 6) == 0 || strncmp(sec, ".tbss", 5) == 0 ||
                       strncmp(sec, "*COM*", 5) == 0;
        if (strncmp(sec, ".data.rel.ro", 12) == 0) writable = 0;   /* read-only after relocation */
        if (strstr(line, "__odr_asan.")) writable = 0;   /* AddressSanitizer's one-definition markers, not ours */
        if (writable && n_bad++ < 8) strncat(bad, line, sizeof bad - strlen(bad) - 1);
    }
    int rc = pclose(p);
    if (objects == 0) {
        tf_skip(__func__, "no objdump, or no library to inspect");
        return;
    }
    (void)rc;
    ck_assert_msg(n_bad == 0, "%d writable global objects in %s:\n%s", n_bad, lib, bad);
}
END_TEST

/* ---- caller memory ------------------------------------------------------- */

#define GUARD 4096
#define PATTERN 0xA5

static int untouched(const unsigned char *b, size_t n, size_t *where)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != PATTERN) {
            *where = i;
            return 0;
        }
    return 1;
}

START_TEST(test_caller_arena_too_small)
{
    if (!tf_need_fixtures(__func__)) return;
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = tf_path("shakespeare_char");
    o.threads = 1;
    kvgpt_plan plan;
    kvgpt_error err = {0, ""};
    ck_assert_msg(kvgpt_plan_model(&o, &plan, &err) == KVGPT_OK, "%s", err.msg);
    size_t need = kvgpt_plan_host_bytes(&plan);
    size_t total = GUARD + need + 1 + GUARD;   /* +1: the block is placed off alignment */
    unsigned char *buf = malloc(total);
    ck_assert_ptr_nonnull(buf);
    memset(buf, PATTERN, total);
    unsigned char *block = buf + GUARD + 1;
    size_t where = 0;

    size_t short_sizes[] = {0, 1, 64, need / 2, need - 1};
    for (size_t i = 0; i < sizeof short_sizes / sizeof short_sizes[0]; i++) {
        kvgpt_model *m = (kvgpt_model *)buf;   /* must come back NULL */
        memset(&err, 0, sizeof err);
        kvgpt_status st = kvgpt_open(&o, block, short_sizes[i], &m, &err);
        ck_assert_msg(st == KVGPT_ERR_NOMEM, "%zu of %zu bytes: status %s (%s)", short_sizes[i], need,
                      kvgpt_strerror(st), err.msg);
        ck_assert_ptr_null(m);
        ck_assert_msg(strstr(err.msg, "Requested") && strstr(err.msg, "missing"), "message: %s", err.msg);
        char want[64];
        snprintf(want, sizeof want, "missing %zu bytes", need - short_sizes[i]);
        ck_assert_msg(strstr(err.msg, want) != NULL, "message lacks \"%s\": %s", want, err.msg);
        ck_assert_msg(untouched(buf, total, &where), "a refused open (%zu bytes) wrote byte %ld of the block",
                      short_sizes[i], (long)where - GUARD - 1);
    }

    /* The exact size works, and nothing outside the block is written by
     * open, generate or close. */
    kvgpt_model *m = NULL;
    ck_assert_msg(kvgpt_open(&o, block, need, &m, &err) == KVGPT_OK, "open in exactly %zu bytes: %s", need,
                  err.msg);
    ck_assert_msg((unsigned char *)m >= block && (unsigned char *)m < block + need, "model struct outside the block");
    kvgpt_gen_options g;
    kvgpt_gen_options_default(&g);
    g.max_new_tokens = 100;   /* past the 64-token context: shifts too */
    kvgpt_gen_result res;
    int32_t prompt[1] = {0};
    ck_assert_msg(kvgpt_generate(m, prompt, 1, &g, &res, &err) == KVGPT_OK, "generate: %s", err.msg);
    ck_assert_int_eq(res.n_new[0], 100);
    kvgpt_close(m);
    ck_assert_msg(untouched(buf, GUARD + 1, &where), "guard byte %zu before the block was written", where);
    ck_assert_msg(untouched(block + need, GUARD, &where), "guard byte %zu after the block was written", where);
    free(buf);

    /* No caller memory, but an arena limit below the plan: refused the same way. */
    o.arena_limit = plan.total[KVGPT_SPACE_HOST] - 1;
    m = NULL;
    ck_assert_int_eq(kvgpt_open(&o, NULL, 0, &m, &err), KVGPT_ERR_NOMEM);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, "missing 1 bytes") != NULL, "message: %s", err.msg);
}
END_TEST

int main(int argc, char **argv)
{
    g_argv0 = argc > 0 ? argv[0] : NULL;
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_two_char_models_in_two_threads);
    tcase_add_test(tc, test_char_and_bpe_models_in_two_threads);
    tcase_add_test(tc, test_no_writable_globals);
    tcase_add_test(tc, test_caller_arena_too_small);
    suite_add_tcase(s, tc);
    return tf_run_suite(s);
}
