/* tests/test_examples.c — the example hosts and `kvgpt chat`, run as a
 * user runs them: examples/serve4 (four prompts in one batch, its own
 * sampling loop over kvgpt_decode), examples/chat (a session kept across
 * turns), and `kvgpt chat` on piped stdin: a session saved, reset and
 * loaded continues exactly as the one that never left. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/fixtures.h"
#include "tests/support/run.h"
#include "tests/support/suite.h"

#define SKIP_IF_NO_FIXTURES()                                                  \
    do {                                                                       \
        if (!tf_need_fixtures(__func__)) return;                               \
    } while (0)

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

START_TEST(test_serve4)
{
    SKIP_IF_NO_FIXTURES();
    const char *models[2] = {"shakespeare_char", "gpt2_tiny_hf"};
    for (int i = 0; i < 2; i++) {
        char cmd[8192], *out, *err;
        snprintf(cmd, sizeof cmd, "%s/serve4 %s 30", tr_examples(), tf_path(models[i]));
        int st = tr_run(cmd, &out, &err);
        ck_assert_msg(st == 0, "%s: exit %d: %s", cmd, st, err);
        ck_assert_msg(count(out, "[user ") == 4, "%s: %s", cmd, out);
        ck_assert_msg(strstr(out, "ROMEO:") && strstr(out, "Once upon a time"), "%s", out);
        /* Run twice: the same text (each user's own stream). */
        char *out2, *err2;
        ck_assert_int_eq(tr_run(cmd, &out2, &err2), 0);
        ck_assert_str_eq(out, out2);
        free(out);
        free(err);
        free(out2);
        free(err2);
    }
}
END_TEST

START_TEST(test_chat_example)
{
    SKIP_IF_NO_FIXTURES();
    char cmd[8192], *out, *err;
    snprintf(cmd, sizeof cmd, "%s/chat %s 8", tr_examples(), tf_path("gpt2_tiny_hf"));
    int st = tr_run(cmd, &out, &err);
    ck_assert_msg(st == 0, "%s: exit %d: %s", cmd, st, err);
    ck_assert_msg(count(out, "[turn ") == 8 && strstr(out, "time per token"), "%s", out);
    ck_assert_msg(strstr(out, "[turn 1: 0 tokens held before it") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "[turn 2: 0 tokens") == NULL, "the session was not kept: %s", out);
    free(out);
    free(err);
}
END_TEST

/* Piped stdin: turn 2 after /save, /reset, /load equals turn 2 of a session that never left. */
START_TEST(test_kvgpt_chat)
{
    SKIP_IF_NO_FIXTURES();
    char dir[4096];
    ck_assert(tf_tmpdir(dir, sizeof dir) == 0);
    const char *models[2] = {"shakespeare_char", "gpt2_tiny_hf"};
    for (int i = 0; i < 2; i++) {
        char cmd[12288], *a, *ea, *b, *eb;
        const char *opts = "--max_new_tokens 20 --temperature 0";   /* a reply is one line */
        snprintf(cmd, sizeof cmd, "printf 'ROMEO:\\nJULIET:\\n' | %s chat --model %s %s", tr_tool(), tf_path(models[i]),
                 opts);
        ck_assert_msg(tr_run(cmd, &a, &ea) == 0, "%s: %s", cmd, ea);
        snprintf(cmd, sizeof cmd,
                 "printf 'ROMEO:\\n/save %s/s.bin\\n/reset\\nsomething else\\n/reset\\n/load %s/s.bin\\nJULIET:\\n' | "
                 "%s chat --model %s %s",
                 dir, dir, tr_tool(), tf_path(models[i]), opts);
        ck_assert_msg(tr_run(cmd, &b, &eb) == 0, "%s: %s", cmd, eb);
        ck_assert_msg(strstr(eb, "saved") && strstr(eb, "loaded") && count(eb, "turn ") == 3, "%s", eb);
        /* b's third reply, after the load, must be a's second. */
        const char *a2 = strchr(a, '\n'), *b3 = strchr(b, '\n');
        ck_assert(a2 && b3);
        b3 = strchr(b3 + 1, '\n');
        ck_assert_ptr_nonnull(b3);
        ck_assert_msg(strcmp(a2 + 1, b3 + 1) == 0, "%s: after /load:\n%s\nnot as without leaving:\n%s", models[i], b3 + 1,
                      a2 + 1);
        free(a);
        free(ea);
        free(b);
        free(eb);
    }
    /* A damaged state file is refused with a message; the session goes on. */
    char cmd[16384], *o, *e;
    snprintf(cmd, sizeof cmd, "printf 'garbage' > %s/bad.bin && printf '/load %s/bad.bin\\nROMEO:\\n' | %s chat --model %s",
             dir, dir, tr_tool(), tf_path("shakespeare_char"));
    ck_assert_int_eq(tr_run(cmd, &o, &e), 0);
    ck_assert_msg(strstr(e, "KVGPT_ERR_STATE") != NULL && strstr(e, "turn 1") != NULL, "%s", e);
    free(o);
    free(e);
}
END_TEST

static Suite *examples_suite(void)
{
    Suite *s = suite_create("examples");
    TCase *t = tcase_create("hosts");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, test_serve4);
    tcase_add_test(t, test_chat_example);
    tcase_add_test(t, test_kvgpt_chat);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return tf_run_suite(examples_suite()); }
