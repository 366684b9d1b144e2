/* tests/test_cli.c — the `kvgpt sample` command as a user meets it: stdout
 * holds only the samples, each followed by the dashes line; batched decoding
 * prints exactly what sequential decoding prints; bad options get a one-line
 * reason and a non-zero exit, never a crash. */
#define _XOPEN_SOURCE 700
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/fixtures.h"
#include "tests/support/run.h"
#include "tests/support/suite.h"

/* Runs the tool with args; stdout into out (malloc'd), stderr into err; returns the exit status. */
static int run(const char *args, char **out, char **err) { return tr_tool_run(args, out, err); }

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

START_TEST(sample_stdout_is_only_samples)
{
    if (!tf_need_fixtures(__func__)) return;
    char args[4096], *out, *err;
    snprintf(args, sizeof args, "sample --model %s --start ROMEO: --num_samples 3 --max_new_tokens 30 --seed 7",
             tf_path("shakespeare_char"));
    ck_assert_int_eq(run(args, &out, &err), 0);
    ck_assert_int_eq(count(out, "\n---------------\n"), 3);
    ck_assert_int_eq(count(out, "ROMEO:"), 3);
    ck_assert_msg(strncmp(out, "ROMEO:", 6) == 0, "stdout starts with the prompt: %.40s", out);
    /* 3 samples of 6 + 30 characters + a newline + the dashes line. */
    ck_assert_int_eq((int)strlen(out), 3 * (6 + 30 + 1 + 16));
    ck_assert_msg(strstr(err, "tok/s") != NULL, "timings on stderr: %s", err);
    free(out);
    free(err);
}
END_TEST

START_TEST(batched_prints_what_sequential_prints)
{
    if (!tf_need_fixtures(__func__)) return;
    char args[4096], *a, *b, *ea, *eb;
    const char *common = "--num_samples 4 --max_new_tokens 100 --seed 3 --window shift";
    snprintf(args, sizeof args, "sample --model %s %s", tf_path("shakespeare_char"), common);
    ck_assert_int_eq(run(args, &a, &ea), 0);
    snprintf(args, sizeof args, "sample --model %s %s --batch 4", tf_path("shakespeare_char"), common);
    ck_assert_int_eq(run(args, &b, &eb), 0);
    ck_assert_str_eq(a, b);
    snprintf(args, sizeof args, "sample --model %s %s --kv-cache off", tf_path("shakespeare_char"), common);
    free(b);
    free(eb);
    ck_assert_int_eq(run(args, &b, &eb), 0);
    ck_assert_msg(strcmp(a, b) == 0, "cache off must print the same text");
    free(a);
    free(b);
    free(ea);
    free(eb);
}
END_TEST

START_TEST(ids_without_tokenizer)
{
    if (!tf_need_fixtures(__func__)) return;
    char dir[4096], args[8192], *out, *err;
    ck_assert_int_eq(tf_tmpdir(dir, sizeof dir), 0);
    /* The model without its tokenizer files: config + weights only. */
    char src[4096];
    snprintf(src, sizeof src, "%s", tf_path("gpt2_tiny_hf"));
    size_t len;
    const char *names[] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        char p[8200];
        snprintf(p, sizeof p, "%s/%s", src, names[i]);
        char *data = tf_read_file(p, &len);
        ck_assert_ptr_nonnull(data);
        ck_assert_int_eq(tf_write(dir, names[i], data, len), 0);
        free(data);
    }
    snprintf(args, sizeof args, "sample --model %s --start-ids 50256,464 --num_samples 1 --max_new_tokens 5 --ignore-eot",
             dir);
    ck_assert_int_eq(run(args, &out, &err), 0);
    int ids[8], n = sscanf(out, "%d %d %d %d %d %d %d", &ids[0], &ids[1], &ids[2], &ids[3], &ids[4], &ids[5], &ids[6]);
    ck_assert_msg(n == 7 && ids[0] == 50256 && ids[1] == 464, "ids printed: %s", out);
    free(out);
    free(err);
    snprintf(args, sizeof args, "sample --model %s --num_samples 1", dir);
    ck_assert_int_eq(run(args, &out, &err), 1);
    ck_assert_msg(strstr(err, "--start-ids") != NULL, "says to use --start-ids: %s", err);
    free(out);
    free(err);
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Each bad invocation: exit 1 or 2, one line on stderr, nothing on stdout. */
START_TEST(bad_options)
{
    if (!tf_need_fixtures(__func__)) return;
    const char *m = tf_path("shakespeare_char");
    const char *cases[][2] = {
        {"sample --model %s --temperature -1", "temperature"},
        {"sample --model %s --top_k -3", "top_k"},
        {"sample --model %s --top_p 0", "top_p"},
        {"sample --model %s --top_p 1.5", "top_p"},
        {"sample --model %s --num_samples 0", "num_samples"},
        {"sample --model %s --window sideways", "window"},
        {"sample --model %s --kv-cache maybe", "kv-cache"},
        {"sample --model %s --adapt-threads sometimes", "adapt-threads"},
        {"sample --model %s --max_new_tokens many", "max_new_tokens"},
        {"sample --model %s --start \"\"", "empty"},
        {"sample --model %s --start-ids 1,99999", "vocabulary"},
        {"sample --model %s --start \"\xe2\x82\xac\"", "not in the character vocabulary"},
        {"sample --model %s --bogus 1", "unknown option"},
        {"sample --model %s --start FILE:/nonexistent/prompt.txt", "/nonexistent/prompt.txt"},
        {"sample --model %s --keep 64", "keep"},
        {"sample --model %s/nonexistent", "nonexistent"},
        {"sample --model %s --window stop --start-ids 0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4", "context"},
        {"budget --shape gpt3 --context 1%.0s", "shape"},
        {"bench --matrix --dtype bf16%.0s", "dtype"},
        {"bench --shapes gpt2,gpt5%.0s", "gpt5"},
        {"bench --reps 0%.0s", "reps"},
        {"bench --matrix --tokens 0%.0s", "tokens"},
        {"nonsense %s", "unknown command"},
        {"sample --model %s --start FILE:/tmp", "FILE:/tmp: a directory"},
        {"sample --model %s --start FILE:/proc/self/mem", "Input/output error"},
        {"sample --model %s --temperature 1e39", "finite"},
        {"encode --model %s < /tmp", "reading standard input failed: Is a directory"},
        {"sample --model \"\"%.0s", "an empty folder name"},
        {"budget --model \"\"%.0s", "an empty folder name"},
        {"bench --out /proc/x/y --shapes gpt2 --tokens 1 --reps 1%.0s", "--out /proc/x/y"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[4096], *out, *err;
        snprintf(args, sizeof args, cases[i][0], m);
        int rc = run(args, &out, &err);
        ck_assert_msg(rc == 1 || rc == 2, "`kvgpt %s` exited %d (want 1 or 2); stderr: %s", args, rc, err);
        ck_assert_msg(strstr(err, cases[i][1]) != NULL, "`kvgpt %s`: stderr should mention \"%s\": %s", args,
                      cases[i][1], err);
        ck_assert_msg(count(err, "\n") == 1, "`kvgpt %s`: one line on stderr, got: %s", args, err);
        ck_assert_msg(out[0] == 0, "`kvgpt %s`: nothing on stdout, got: %s", args, out);
        free(out);
        free(err);
    }
}
END_TEST

/* Runs a shell line (the tool is $T); stderr into *err; returns the exit status. */
static int sh_err(const char *line, char **err)
{
    char cmd[8600], *out;
    snprintf(cmd, sizeof cmd, "{ T='%s'; %s; }", tr_tool(), line);   /* its own redirections inside */
    int st = tr_run(cmd, &out, err);
    free(out);
    return st;
}

/* Output that cannot be written (a full disk, a closed stdout) is an error
 * with a message, never exit 0. */
START_TEST(output_errors)
{
    if (!tf_need_fixtures(__func__)) return;
    const char *m = tf_path("shakespeare_char");
    const char *cmds[] = {
        "$T sample --model %s --start-ids 1 --num_samples 2 --max_new_tokens 5",
        "echo hello | $T encode --model %s",
        "echo 1 2 3 | $T decode --model %s",
        "$T logits --model %s --ids 1,2",
        "$T budget --model %s",
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        for (int closed = 0; closed < 2; closed++) {
            char line[4096], *err;
            int n = snprintf(line, sizeof line, cmds[i], m);
            snprintf(line + n, sizeof line - (size_t)n, "%s", closed ? " >&-" : " > /dev/full");
            int rc = sh_err(line, &err);
            ck_assert_msg(rc == 1, "`%s` exited %d: %s", line, rc, err);
            ck_assert_msg(strstr(err, closed ? "standard output is closed" : "writing standard output failed"),
                          "`%s`: %s", line, err);
            free(err);
        }
    }
}
END_TEST

START_TEST(numbers_and_ids)
{
    if (!tf_need_fixtures(__func__)) return;
    char line[4096], *err;
    const char *m = tf_path("shakespeare_char");
    /* A float that underflows is still a number (tiny: greedy in effect). */
    snprintf(line, sizeof line, "$T sample --model %s --start-ids 1 --num_samples 1 --max_new_tokens 3 "
             "--temperature 1e-38 > /dev/null", m);
    ck_assert_msg(sh_err(line, &err) == 0, "%s", err);
    free(err);
    /* An id past int64: said to be out of range, not reported as 9223372036854775807. */
    snprintf(line, sizeof line, "echo 99999999999999999999 | $T decode --model %s > /dev/null", m);
    ck_assert_int_eq(sh_err(line, &err), 1);
    ck_assert_msg(strstr(err, "token id 99999999999999999999 is out of range") && !strstr(err, "922337"), "%s", err);
    free(err);
    snprintf(line, sizeof line, "$T sample --model %s --start-ids 99999999999999999999 > /dev/null", m);
    ck_assert_int_eq(sh_err(line, &err), 1);
    ck_assert_msg(strstr(err, "token id 99999999999999999999 is out of range"), "%s", err);
    free(err);
}
END_TEST

/* A GPT-2 folder whose merges.txt is missing: ids still work, text says what is missing. */
START_TEST(missing_merges)
{
    if (!tf_need_fixtures(__func__)) return;
    char dir[4096], line[8192], *err;
    ck_assert_int_eq(tf_tmpdir(dir, sizeof dir), 0);
    const char *names[] = {"config.json", "model.safetensors", "vocab.json"};
    for (int i = 0; i < 3; i++) {
        char p[4200];
        size_t len;
        snprintf(p, sizeof p, "%s/%s", tf_path("gpt2_tiny_hf"), names[i]);
        char *data = tf_read_file(p, &len);
        ck_assert_ptr_nonnull(data);
        ck_assert_int_eq(tf_write(dir, names[i], data, len), 0);
        free(data);
    }
    snprintf(line, sizeof line, "$T sample --model %s --start-ids 50256 --num_samples 1 --max_new_tokens 3 > /dev/null",
             dir);
    ck_assert_msg(sh_err(line, &err) == 0, "--start-ids blocked: %s", err);
    free(err);
    snprintf(line, sizeof line, "$T sample --model %s --start hello > /dev/null", dir);
    ck_assert_int_eq(sh_err(line, &err), 1);
    ck_assert_msg(strstr(err, "vocab.json but no merges.txt"), "%s", err);
    free(err);
    snprintf(line, sizeof line, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(line), 0);
}
END_TEST

/* `kvgpt logits --compare`: the checker cuda/accept.sh uses for CPU-vs-GPU parity. */
START_TEST(logits_compare)
{
    if (!tf_need_fixtures(__func__)) return;
    char dir[4096], file[4200], args[8192], *out, *err;
    ck_assert_int_eq(tf_tmpdir(dir, sizeof dir), 0);
    snprintf(file, sizeof file, "%s/logits.f32", dir);
    const char *m = tf_path("shakespeare_char");
    snprintf(args, sizeof args, "logits --model %s --ids 1,2,3,4 --out %s", m, file);
    ck_assert_int_eq(run(args, &out, &err), 0);
    free(out);
    free(err);
    /* The same forward: no difference at all. */
    snprintf(args, sizeof args, "logits --model %s --ids 1,2,3,4 --compare %s", m, file);
    ck_assert_int_eq(run(args, &out, &err), 0);
    ck_assert_msg(strstr(out, "largest difference 0 ") && strstr(out, "argmax equal at 4 of 4") && strstr(out, ": ok"),
                  "stdout: %s", out);
    free(out);
    free(err);
    /* bf16 weights against the f32 logits: a difference, within 0.1 of the row's scale, beyond 1e-9. */
    snprintf(args, sizeof args, "logits --model %s --ids 1,2,3,4 --dtype bf16 --compare %s --tol 0.1", m, file);
    ck_assert_int_eq(run(args, &out, &err), 0);
    ck_assert_msg(strstr(out, ": ok") && !strstr(out, "largest difference 0 "), "stdout: %s", out);
    free(out);
    free(err);
    snprintf(args, sizeof args, "logits --model %s --ids 1,2,3,4 --dtype bf16 --compare %s --tol 1e-9", m, file);
    ck_assert_int_eq(run(args, &out, &err), 1);
    ck_assert_msg(strstr(out, "EXCEEDED") != NULL, "stdout: %s", out);
    free(out);
    free(err);
    /* Logits of another shape: refused with the reason. */
    snprintf(args, sizeof args, "logits --model %s --ids 1,2,3 --compare %s", m, file);
    ck_assert_int_eq(run(args, &out, &err), 1);
    ck_assert_msg(strstr(err, "not 3 x 65 float32 logits (too long)") != NULL, "stderr: %s", err);
    free(out);
    free(err);
    remove(file);
    remove(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("sample");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, sample_stdout_is_only_samples);
    tcase_add_test(tc, batched_prints_what_sequential_prints);
    tcase_add_test(tc, ids_without_tokenizer);
    tcase_add_test(tc, bad_options);
    tcase_add_test(tc, output_errors);
    tcase_add_test(tc, numbers_and_ids);
    tcase_add_test(tc, missing_merges);
    tcase_add_test(tc, logits_compare);
    suite_add_tcase(s, tc);
    return tf_run_suite(s);
}
