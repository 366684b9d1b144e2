/* tests/test_memcheck.c — whole generations under valgrind's memcheck: no
 * invalid read or write, no use of uninitialised memory, and not one byte
 * lost, from open to close.
 *
 * valgrind 3.19 (Debian bookworm) decodes no AVX-512, and its CPUID says so
 * (no AVX-512, XCR0 without ZMM state): the tool's kernels are chosen at open,
 * so under valgrind the same tool runs the avx2 kernels (the portable ones on
 * a CPU without AVX2). Under the sanitizers this suite has nothing to do: ASan
 * does not run under valgrind, and LeakSanitizer is that build's leak check. */
#define _XOPEN_SOURCE 700
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/fixtures.h"
#include "tests/support/suite.h"

#if defined(__SANITIZE_ADDRESS__)
#define MC_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MC_SANITIZED 1
#endif
#endif

/* The memcheck tool, or NULL (after saying why) when this build cannot run it. */
static const char *mc_tool(const char *test)
{
#ifdef MC_SANITIZED
    tf_skip(test, "sanitized build: LeakSanitizer is the leak check here");
    return NULL;
#else
    const char *t = getenv("KVGPT_TOOL");
    if (!t || !*t) {
        tf_skip(test, "KVGPT_TOOL is not set (make test sets it)");
        return NULL;
    }
    ck_assert_msg(access(t, X_OK) == 0, "memcheck tool %s is missing", t);
    ck_assert_msg(system("command -v valgrind >/dev/null 2>&1") == 0,
                  "valgrind is not installed (apt-get install valgrind)");
    return t;
#endif
}

/* Runs `tool args` under memcheck; returns valgrind's log (malloc'd). Leaks
 * of the given kinds count as errors. */
static char *memcheck(const char *tool, const char *leak_kinds, const char *args, int *rc)
{
    char log[64], cmd[4096];
    snprintf(log, sizeof log, "/tmp/kvgpt-memcheck.%d", (int)getpid());
    snprintf(cmd, sizeof cmd,
             "valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=%s --errors-for-leak-kinds=%s "
             "--log-file=%s %s %s >/dev/null 2>&1",
             leak_kinds, leak_kinds, log, tool, args);
    int st = system(cmd);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    char *text = tf_read_file(log, NULL);
    remove(log);
    ck_assert_msg(text != NULL, "no valgrind log for: %s", args);
    return text;
}

/* valgrind says the run had no error and lost nothing of the given kinds. */
static void assert_clean(const char *what, const char *log, int rc, int possible_too)
{
    ck_assert_msg(rc == 0, "%s: exit %d under memcheck:\n%s", what, rc, log);
    ck_assert_msg(strstr(log, "ERROR SUMMARY: 0 errors") != NULL, "%s: memcheck errors:\n%s", what, log);
    if (strstr(log, "All heap blocks were freed")) return;
    ck_assert_msg(strstr(log, "definitely lost: 0 bytes") && strstr(log, "indirectly lost: 0 bytes"),
                  "%s: memory lost:\n%s", what, log);
    if (possible_too)
        ck_assert_msg(strstr(log, "possibly lost: 0 bytes") != NULL, "%s: memory possibly lost:\n%s", what, log);
}

/* One whole generation of `kvgpt sample --model FIXTURE args` under memcheck;
 * leaks of leak_kinds are errors, and possible_too also demands that
 * nothing be possibly lost. */
static void memcheck_sample(const char *fixture, const char *args, const char *leak_kinds, int possible_too)
{
    if (!tf_need_fixtures(__func__)) return;
    const char *tool = mc_tool(__func__);
    if (!tool) return;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "sample --model %s %s", tf_path(fixture), args);
    int rc;
    char *log = memcheck(tool, leak_kinds, cmd, &rc);
    assert_clean(cmd, log, rc, possible_too);
    free(log);
}

/* Char model, one thread (no OpenMP pool): 100 tokens past a 64-token
 * context (window shift), two sequences batched, cache on; everything
 * malloc'd is freed by exit, nothing even possibly lost. */
START_TEST(test_char_model_batched_shift)
{
    memcheck_sample("shakespeare_char", "--max_new_tokens 100 --num_samples 2 --batch 2 --threads 1 --window shift",
                    "definite,indirect,possible", 1);
}
END_TEST

/* The cache off (nanoGPT's recompute), half-precision weights and cache. */
START_TEST(test_char_model_nocache_half)
{
    memcheck_sample("shakespeare_char",
                    "--max_new_tokens 40 --num_samples 1 --threads 1 --kv-cache off --dtype bf16 --kv-dtype f16 "
                    "--window exact",
                    "definite,indirect,possible", 1);
}
END_TEST

/* GPT-2 tokenizer and a text prompt, two threads. libgomp keeps its worker
 * threads for the life of the process, and valgrind calls their TLS blocks
 * "possibly lost": only definite and indirect losses count here. */
START_TEST(test_bpe_model_two_threads)
{
    memcheck_sample("gpt2_tiny_hf", "--start \"Hello, world\" --max_new_tokens 24 --num_samples 1 --threads 2",
                    "definite,indirect", 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("memcheck");
    TCase *tc = tcase_create("valgrind");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_char_model_batched_shift);
    tcase_add_test(tc, test_char_model_nocache_half);
    tcase_add_test(tc, test_bpe_model_two_threads);
    suite_add_tcase(s, tc);
    return tf_run_suite(s);
}
