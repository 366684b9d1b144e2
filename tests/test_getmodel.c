/* tests/test_getmodel.c — tools/get-model against a stand-in for the
 * HuggingFace hub on 127.0.0.1 (tests/support/hub_server.py: a tiny
 * synthesized GPT-2 in the hub's layout, with one fault at a time): it gets
 * the files whole and byte-exact, resumes a dropped transfer (in the same run
 * and in the next one), and on a 404, an unreachable endpoint, a corrupt, short
 * or unopenable file exits 1 with one line saying what and where, leaving no
 * half model in DIR. Needs python3 and curl; no internet. */
#define _XOPEN_SOURCE 700
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/fixtures.h"
#include "tests/support/suite.h"

extern char **environ;

static const char *const FILES[] = {"config.json", "vocab.json", "merges.txt", "model.safetensors"};
#define N_FILES ((int)(sizeof FILES / sizeof FILES[0]))

typedef struct {
    pid_t pid;
    int port;
    char dir[4096];            /* port, log, want/ (the true files), models/ */
} hub;

static char g_work[1024];      /* one temporary folder per test */
static pid_t g_live;           /* the running stand-in, stopped by teardown after a failure too */

static int have(const char *tool)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

static int exists(const char *dir, const char *name)
{
    char p[8300];
    struct stat st;
    snprintf(p, sizeof p, "%s%s", dir, name);
    return stat(p, &st) == 0;
}

static void hub_start(hub *h, const char *fault)
{
    char port_file[4200], log[4200], want[4200];
    snprintf(h->dir, sizeof h->dir, "%s/hub-%s", g_work, fault);
    ck_assert_int_eq(mkdir(h->dir, 0777), 0);
    snprintf(port_file, sizeof port_file, "%s/port", h->dir);
    snprintf(log, sizeof log, "%s/log", h->dir);
    snprintf(want, sizeof want, "%s/want", h->dir);
    char *argv[] = {"python3", "tests/support/hub_server.py", "--fault", (char *)fault, "--port-file", port_file,
                    "--log", log, "--dump", want, NULL};
    ck_assert_int_eq(posix_spawnp(&h->pid, "python3", NULL, NULL, argv, environ), 0);
    g_live = h->pid;
    h->port = 0;
    int exited = 0;
    for (int i = 0; i < 1000 && !h->port && !exited; i++) {   /* 10 s at most */
        char *s = tf_read_file(port_file, NULL);
        if (s) h->port = atoi(s);
        free(s);
        exited = !h->port && waitpid(h->pid, NULL, WNOHANG) == h->pid;
        if (!h->port && !exited) nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    if (exited) h->pid = g_live = 0;
    ck_assert_msg(h->port > 0, "the hub stand-in did not start (fault %s)%s", fault, exited ? ": it exited" : "");
}

static void stop_pid(pid_t pid)
{
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    if (pid == g_live) g_live = 0;
}

static void hub_stop(hub *h)
{
    stop_pid(h->pid);
    h->pid = 0;
}

/* Bytes of the weights the stand-in serves (its --dump copy). */
static long weights_bytes(const hub *h)
{
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/want/model.safetensors", h->dir);
    ck_assert_int_eq(stat(p, &st), 0);
    return (long)st.st_size;
}

/* The stand-in's request log, NUL-terminated (empty when none). */
static char *hub_log(const hub *h)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/log", h->dir);
    char *s = tf_read_file(p, NULL);
    return s ? s : calloc(1, 1);
}

/* Runs tools/get-model NAME DIR against endpoint; stdout and stderr into
 * out and err (malloc'd). Returns the exit status. */
static int get_model(const char *endpoint, const char *name, const char *dir, char **out, char **err)
{
    const char *tool = getenv("KVGPT_TOOL");
    char cmd[16384], po[4200], pe[4200];
    snprintf(po, sizeof po, "%s/out", g_work);
    snprintf(pe, sizeof pe, "%s/err", g_work);
    snprintf(cmd, sizeof cmd, "HF_ENDPOINT='%s' KVGPT='%s' tools/get-model '%s' '%s' >'%s' 2>'%s'", endpoint,
             tool && *tool ? tool : "build/cpu/kvgpt", name, dir, po, pe);
    int st = system(cmd);
    *out = tf_read_file(po, NULL);
    *err = tf_read_file(pe, NULL);
    ck_assert_ptr_nonnull(*out);
    ck_assert_ptr_nonnull(*err);
    ck_assert_msg(WIFEXITED(st), "get-model did not exit normally: %s", cmd);
    return WEXITSTATUS(st);
}

static int get_from(const hub *h, const char *dir, char **out, char **err)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", h->port);
    return get_model(endpoint, "gpt2", dir, out, err);
}

/* A failure's stderr: exactly one line, holding every one of the needles. */
static void one_line_saying(const char *err, const char *const *needles, int n)
{
    const char *nl = strchr(err, '\n');
    ck_assert_msg(nl && nl[1] == '\0', "one line on stderr, not: %s", err);
    for (int i = 0; i < n; i++) ck_assert_msg(strstr(err, needles[i]) != NULL, "\"%s\" in: %s", needles[i], err);
}

/* DIR holds exactly the hub's four files, byte for byte, and DIR.partial is gone. */
static void has_the_model(const hub *h, const char *dir)
{
    for (int i = 0; i < N_FILES; i++) {
        char a[4200], b[4200];
        size_t na, nb;
        snprintf(a, sizeof a, "%s/want/%s", h->dir, FILES[i]);
        snprintf(b, sizeof b, "%s/%s", dir, FILES[i]);
        char *x = tf_read_file(a, &na), *y = tf_read_file(b, &nb);
        ck_assert_msg(x && y, "%s and %s", a, b);
        ck_assert_msg(na == nb && memcmp(x, y, na) == 0, "%s differs from what the hub serves", b);
        free(x);
        free(y);
    }
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) = %d", dir, N_FILES);
    ck_assert_msg(system(cmd) == 0, "%s holds the four files only", dir);
    ck_assert_msg(!exists(dir, ".partial"), "%s.partial is gone", dir);
}

static void models_dir(char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/models/gpt2", g_work);
}

static void setup(void)
{
    ck_assert_int_eq(tf_tmpdir(g_work, sizeof g_work), 0);
}

static void teardown(void)
{
    stop_pid(g_live);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_work);
    ck_assert_int_eq(system(cmd), 0);
}

static int skip(const char *test)
{
    if (have("python3") && have("curl") && have("sha256sum")) return 0;
    tf_skip(test, "needs python3, curl and sha256sum (tools/setup-debian installs them)");
    return 1;
}

START_TEST(gets_the_model)
{
    if (skip(__func__)) return;
    hub h;
    char dir[4200], *out, *err;
    models_dir(dir, sizeof dir);
    hub_start(&h, "none");
    ck_assert_int_eq(get_from(&h, dir, &out, &err), 0);
    hub_stop(&h);
    ck_assert_msg(err[0] == '\0', "nothing on stderr: %s", err);
    ck_assert_msg(strstr(out, "opened by kvgpt") != NULL, "says it checked: %s", out);
    has_the_model(&h, dir);
    /* The weights came through the hub's redirect, whole, in one request. */
    char *log = hub_log(&h);
    ck_assert_msg(strstr(log, "GET /cdn/") && !strstr(log, "range=bytes"), "one whole GET: %s", log);
    free(log);
    free(out);
    free(err);
}
END_TEST

/* The length and sum come from the hub's redirect when the CDN refuses a HEAD. */
START_TEST(cdn_refuses_head)
{
    if (skip(__func__)) return;
    hub h;
    char dir[4200], *out, *err;
    models_dir(dir, sizeof dir);
    hub_start(&h, "nohead");
    ck_assert_int_eq(get_from(&h, dir, &out, &err), 0);
    hub_stop(&h);
    ck_assert_msg(err[0] == '\0', "nothing on stderr: %s", err);
    has_the_model(&h, dir);
    free(out);
    free(err);
}
END_TEST

START_TEST(resumes_a_dropped_connection)
{
    if (skip(__func__)) return;
    hub h;
    char dir[4200], *out, *err, want[64];
    models_dir(dir, sizeof dir);
    hub_start(&h, "drop");
    ck_assert_int_eq(get_from(&h, dir, &out, &err), 0);
    hub_stop(&h);
    has_the_model(&h, dir);
    char *log = hub_log(&h);
    snprintf(want, sizeof want, "range=bytes=%ld-", weights_bytes(&h) / 2);
    ck_assert_msg(strstr(log, want) != NULL, "resumed where the connection dropped (%s): %s", want, log);
    ck_assert_msg(strstr(out, "resuming") != NULL, "says so: %s", out);
    free(log);
    free(out);
    free(err);
}
END_TEST

START_TEST(resumes_in_the_next_run)
{
    if (skip(__func__)) return;
    hub h;
    char dir[4200], *out, *err, want[64];
    models_dir(dir, sizeof dir);
    hub_start(&h, "short");    /* every transfer of the weights stops 1000 bytes short */
    ck_assert_int_eq(get_from(&h, dir, &out, &err), 1);
    hub_stop(&h);
    char of[64];
    snprintf(of, sizeof of, "at byte %ld of %ld", weights_bytes(&h) - 1000, weights_bytes(&h));
    const char *says[] = {"model.safetensors", "broke off", of, "/openai-community/gpt2/resolve/main/",
                          "run again to resume"};
    one_line_saying(err, says, 5);
    ck_assert_msg(!exists(dir, ""), "no %s after a failure", dir);
    ck_assert_msg(exists(dir, ".partial/model.safetensors.part"), "the partial weights are kept");
    free(out);
    free(err);
    hub_start(&h, "none");
    ck_assert_int_eq(get_from(&h, dir, &out, &err), 0);
    hub_stop(&h);
    has_the_model(&h, dir);
    char *log = hub_log(&h);
    snprintf(want, sizeof want, "range=bytes=%ld-", weights_bytes(&h) - 1000);
    ck_assert_msg(strstr(log, want) != NULL, "the second run resumed (%s): %s", want, log);
    free(log);
    free(out);
    free(err);
}
END_TEST

/* A failure of each kind: exit 1, one line naming what and where, no DIR;
 * DIR.partial only when something there is worth keeping. */
static void fails_cleanly(const char *fault, const char **says, int n, int keeps_partial)
{
    hub h;
    char dir[4200], *out, *err, arrived[64], announced[64];
    models_dir(dir, sizeof dir);
    hub_start(&h, fault);
    ck_assert_int_eq(get_from(&h, dir, &out, &err), 1);
    hub_stop(&h);
    /* "%ARRIVED" and "%ANNOUNCED" stand for the weights' lengths: short, and true. */
    snprintf(arrived, sizeof arrived, "%ld bytes arrived", weights_bytes(&h) - 1000);
    snprintf(announced, sizeof announced, "announced %ld", weights_bytes(&h));
    for (int i = 0; i < n; i++)
        says[i] = strcmp(says[i], "%ARRIVED") == 0 ? arrived : strcmp(says[i], "%ANNOUNCED") == 0 ? announced : says[i];
    one_line_saying(err, says, n);
    ck_assert_msg(!exists(dir, ""), "no %s after a failure (%s)", dir, fault);
    ck_assert_msg(exists(dir, ".partial") == keeps_partial, "%s.partial %s (%s)", dir,
                  keeps_partial ? "kept" : "removed", fault);
    free(out);
    free(err);
}

START_TEST(not_found)
{
    if (skip(__func__)) return;
    const char *says[] = {"model.safetensors", "HTTP 404", "http://127.0.0.1:", "/openai-community/gpt2/resolve/main/"};
    fails_cleanly("404", says, 4, 0);
}
END_TEST

START_TEST(corrupt_file)
{
    if (skip(__func__)) return;
    const char *says[] = {"model.safetensors", "sha256", "corrupt", "/openai-community/gpt2/resolve/main/"};
    fails_cleanly("corrupt", says, 4, 0);
}
END_TEST

START_TEST(short_file)
{
    if (skip(__func__)) return;
    const char *says[] = {"model.safetensors", "%ARRIVED", "%ANNOUNCED", "/resolve/main/"};
    fails_cleanly("shortlen", says, 4, 1);   /* the next run resumes from what came */
}
END_TEST

START_TEST(unopenable_model)
{
    if (skip(__func__)) return;
    const char *says[] = {"kvgpt cannot open", "model.safetensors", "shape"};
    fails_cleanly("badmodel", says, 3, 1);   /* the checked files stay for a look */
}
END_TEST

START_TEST(unreachable_endpoint)
{
    if (skip(__func__)) return;
    hub h;
    char dir[4200], *out, *err, endpoint[64];
    models_dir(dir, sizeof dir);
    hub_start(&h, "none");     /* a port that was just free, and is again */
    hub_stop(&h);
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", h.port);
    ck_assert_int_eq(get_model(endpoint, "gpt2", dir, &out, &err), 1);
    const char *says[] = {"cannot reach", endpoint, "config.json"};
    one_line_saying(err, says, 3);
    ck_assert_msg(!exists(dir, "") && !exists(dir, ".partial"), "nothing left behind");
    free(out);
    free(err);
}
END_TEST

/* A synthesized model in DIR is replaced; anything else there is refused and kept. */
START_TEST(what_dir_held)
{
    if (skip(__func__)) return;
    hub h;
    char dir[4200], *out, *err, p[4300];
    models_dir(dir, sizeof dir);
    snprintf(p, sizeof p, "mkdir -p '%s'", dir);
    ck_assert_int_eq(system(p), 0);
    const char *notes = "mine\n";
    ck_assert_int_eq(tf_write(dir, "notes.txt", notes, strlen(notes)), 0);
    hub_start(&h, "none");
    ck_assert_int_eq(get_from(&h, dir, &out, &err), 1);
    const char *says[] = {dir, "already holds files"};
    one_line_saying(err, says, 2);
    ck_assert_msg(exists(dir, "/notes.txt"), "the folder is left as it was");
    free(out);
    free(err);
    snprintf(p, sizeof p, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(p), 0);
    snprintf(p, sizeof p, "mkdir -p '%s'", dir);
    ck_assert_int_eq(system(p), 0);
    const char *synth = "{\"n_layer\": 12, \"kvgpt_synthesized\": {\"shape\": \"gpt2\", \"seed\": 1234}}\n";
    ck_assert_int_eq(tf_write(dir, "config.json", synth, strlen(synth)), 0);
    ck_assert_int_eq(tf_write(dir, "model.safetensors", "x", 1), 0);
    ck_assert_int_eq(get_from(&h, dir, &out, &err), 0);
    hub_stop(&h);
    ck_assert_msg(strstr(out, "replaced the synthesized model") != NULL, "says so: %s", out);
    has_the_model(&h, dir);
    free(out);
    free(err);
}
END_TEST

START_TEST(bad_arguments)
{
    if (skip(__func__)) return;
    char dir[4200], *out, *err;
    models_dir(dir, sizeof dir);
    const char *names[] = {"gpt3", "", "../gpt2"};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(get_model("http://127.0.0.1:9", names[i], dir, &out, &err), 2);
        ck_assert_msg(strstr(err, "usage: get-model NAME DIR") != NULL, "usage for \"%s\": %s", names[i], err);
        ck_assert_msg(!exists(dir, "") && !exists(dir, ".partial"), "nothing made");
        free(out);
        free(err);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("getmodel");
    TCase *tc = tcase_create("hub");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, gets_the_model);
    tcase_add_test(tc, cdn_refuses_head);
    tcase_add_test(tc, resumes_a_dropped_connection);
    tcase_add_test(tc, resumes_in_the_next_run);
    tcase_add_test(tc, not_found);
    tcase_add_test(tc, corrupt_file);
    tcase_add_test(tc, short_file);
    tcase_add_test(tc, unopenable_model);
    tcase_add_test(tc, unreachable_endpoint);
    tcase_add_test(tc, what_dir_held);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return tf_run_suite(s);
}
