/* tests/test_host.c — what a host's environment may impose on the library: a
 * small thread stack, a limit on threads (ulimit -u, ulimit -v), and the
 * options that choose threads and kernels. The checks that could crash, or
 * need limits the test process must not take on, run in a child: this
 * binary again, with a mode argument, started through the shell. */
#define _GNU_SOURCE   /* setenv/unsetenv, the shell's ulimit through system() */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvgpt.h"
#include "ops/ops.h"
#include "tests/support/fixtures.h"
#include "tests/support/suite.h"

#if defined(__SANITIZE_ADDRESS__)
#define HT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HT_ASAN 1
#endif
#endif

/* The stack kvgpt.h promises; AddressSanitizer's redzones around every local
 * array make frames several times larger, so its build gets four times as much. */
#ifdef HT_ASAN
#define HT_STACK (4 * 64 * 1024)
#else
#define HT_STACK (64 * 1024)
#endif

static const char *g_self;   /* this binary, for the children */

/* Threads of this process now (Linux: entries of /proc/self/task); -1 elsewhere. */
static int ht_tasks(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* ---- the children -------------------------------------------------------- */

typedef struct {
    const char *dir;
    const char *prompt;   /* text to encode, or NULL: token 0 */
    int threads;
    kvgpt_model *m;
    kvgpt_status s;
    kvgpt_error err;
} ht_job;

/* Plan and open. */
static void *ht_open(void *arg)
{
    ht_job *j = arg;
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = j->dir;
    o.threads = j->threads;
    kvgpt_plan plan;
    j->m = NULL;
    j->s = kvgpt_plan_model(&o, &plan, &j->err);
    if (!j->s) j->s = kvgpt_open(&o, NULL, 0, &j->m, &j->err);
    return NULL;
}

/* Encode, generate (past the context: the window shifts too). */
static void *ht_generate(void *arg)
{
    ht_job *j = arg;
    int32_t ids[64] = {0};
    int n = 1;
    if (j->prompt) j->s = kvgpt_encode(j->m, j->prompt, strlen(j->prompt), ids, 64, &n, &j->err);
    kvgpt_gen_options g;
    kvgpt_gen_options_default(&g);
    g.max_new_tokens = 150;
    g.stop_at_eot = 0;
    kvgpt_gen_result res;
    if (!j->s) j->s = kvgpt_generate(j->m, ids, n, &g, &res, &j->err);
    if (!j->s && res.n_new[0] != 150) {
        snprintf(j->err.msg, sizeof j->err.msg, "%d tokens, not 150", res.n_new[0]);
        j->s = KVGPT_ERR_ARG;
    }
    return NULL;
}

/* Runs fn(j) on a thread with bytes of stack (0: here); 0 on success. */
static int ht_on_stack(void *(*fn)(void *), ht_job *j, size_t bytes)
{
    if (!bytes) {
        fn(j);
        return 0;
    }
    pthread_attr_t a;
    pthread_t t;
    if (pthread_attr_init(&a) || pthread_attr_setstacksize(&a, bytes) || pthread_create(&t, &a, fn, j)) {
        fprintf(stderr, "cannot start a thread of %zu bytes of stack\n", bytes);
        return -1;
    }
    pthread_join(t, NULL);
    pthread_attr_destroy(&a);
    return 0;
}

/* Open on a thread of open_stack bytes, then encode, generate and close on
 * one of run_stack (0: the main thread). Prints "team N; ok" or why not. */
static int child_run(const char *dir, const char *prompt, int threads, size_t open_stack, size_t run_stack)
{
    ht_job j = {dir, prompt, threads, NULL, KVGPT_OK, {0, ""}};
    if (ht_on_stack(ht_open, &j, open_stack)) return 3;
    if (!j.s && ht_on_stack(ht_generate, &j, run_stack)) return 3;
    printf("team %d; %s\n", j.m ? kvgpt_model_plan(j.m)->threads : 0, j.s ? j.err.msg : "ok");
    kvgpt_close(j.m);
    return j.s ? 1 : 0;
}

/* --failed-open BAD GOOD: a refused open starts no thread; a good one does
 * (so that the count is seen to work). Prints the counts. */
static int child_failed_open(const char *bad, const char *good)
{
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.threads = 2;
    kvgpt_error err = {0, ""};
    kvgpt_model *m = NULL;
    int before = ht_tasks();
    o.model_dir = bad;
    kvgpt_status s = kvgpt_open(&o, NULL, 0, &m, &err);
    int after_bad = ht_tasks();
    o.model_dir = good;
    kvgpt_status s2 = kvgpt_open(&o, NULL, 0, &m, &err);
    int after_good = ht_tasks();
    printf("tasks %d; after the refused open (%s) %d; after a good one (%s, team %d) %d\n", before,
           kvgpt_strerror(s), after_bad, kvgpt_strerror(s2), s2 ? 0 : kvgpt_model_plan(m)->threads, after_good);
    kvgpt_close(s2 ? NULL : m);
    return s != KVGPT_OK && s2 == KVGPT_OK && before == 1 && after_bad == 1 && after_good == 2 ? 0 : 1;
}

/* ---- the parent's checks ------------------------------------------------- */

/* Runs `sh -c cmd` with stdout and stderr into a buffer; returns its exit
 * status, or 128 + the signal that ended it. */
static int ht_sh(const char *cmd, char *out, size_t cap)
{
    char log[] = "/tmp/kvgpt-host.XXXXXX";
    int fd = mkstemp(log);
    ck_assert_msg(fd >= 0, "mkstemp");
    close(fd);
    char full[8192];
    snprintf(full, sizeof full, "exec > %s 2>&1; %s", log, cmd);
    int st = system(full);
    size_t n = 0;
    char *text = tf_read_file(log, &n);
    remove(log);
    snprintf(out, cap, "%s", text ? text : "");
    free(text);
    if (st == -1) return -1;
    /* The shell reports a child killed by a signal as 128 + the signal. */
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int have(const char *tool)
{
    char cmd[256], out[64];
    snprintf(cmd, sizeof cmd, "command -v %s", tool);
    return ht_sh(cmd, out, sizeof out) == 0;
}

/* kvgpt.h: plan, open, encode, generate and close need at most 64 KiB of the
 * caller's stack. Generation runs on a host thread other than open's, as a
 * host's worker may: its OpenMP pool starts there. */
START_TEST(test_64k_stack)
{
    if (!tf_need_fixtures(__func__)) return;
    const char *models[2][2] = {{"shakespeare_char", "ROMEO:"}, {"gpt2_tiny_hf", "Hello, world. Hello again"}};
    for (int i = 0; i < 2; i++) {
        char cmd[4096], out[2048];
        snprintf(cmd, sizeof cmd, "exec '%s' --stack %d %d '%s' '%s'", g_self, HT_STACK, HT_STACK,
                 tf_path(models[i][0]), models[i][1]);
        int rc = ht_sh(cmd, out, sizeof out);
        printf("  %s: plan and open on a thread with %d KiB of stack, encode and generate on another: %s",
               models[i][0], HT_STACK / 1024, out);
        ck_assert_msg(rc == 0, "%s: %s%s", models[i][0], rc == 128 + 11 ? "SIGSEGV (the stack overflowed)\n" : "",
                      out);
    }
}
END_TEST

/* Under a limit on threads the model opens with the threads the system
 * allows (here one) and runs: never libgomp's "Thread creation failed" and
 * exit(1). run: the shell's commands that take on the limit and then run
 * what follows them. */
static void check_refused(const char *what, const char *run)
{
    char cmd[4096], out[2048];
#ifdef HT_ASAN
    /* LeakSanitizer's check at exit needs a thread of its own. */
    const char *env = "export ASAN_OPTIONS=detect_leaks=0; ";
#else
    const char *env = "";
#endif
    snprintf(cmd, sizeof cmd, "%s%s '%s' --team 2 '%s'", env, run, g_self, tf_path("shakespeare_char"));
    int rc = ht_sh(cmd, out, sizeof out);
    printf("  %s: %s", what, out);
    ck_assert_msg(!strstr(out, "libgomp"), "%s: the OpenMP runtime spoke: %s", what, out);
    ck_assert_msg(rc == 0, "%s: exit %d: %s", what, rc, out);
    ck_assert_msg(strstr(out, "team 1; ok") != NULL, "%s: not one thread: %s", what, out);
}

/* ulimit -u: RLIMIT_NPROC, counted per user, and not enforced for root: as
 * root the child runs as an unused uid (setpriv), where 1 allows no thread. */
START_TEST(test_thread_limit_nproc)
{
    if (!tf_need_fixtures(__func__)) return;
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        tf_skip(__func__, "one processor: no second thread to refuse");
        return;
    }
    if (!have("prlimit")) {   /* dash's ulimit has no -u */
        tf_skip(__func__, "no prlimit");
        return;
    }
    if (geteuid() != 0) {
        check_refused("ulimit -u 1", "exec prlimit --nproc=1");
        return;
    }
    if (!have("setpriv")) {
        tf_skip(__func__, "root without setpriv: RLIMIT_NPROC does not bind root");
        return;
    }
    check_refused("ulimit -u 1, uid 54321", "exec prlimit --nproc=1 setpriv --reuid=54321 --regid=54321 --clear-groups");
}
END_TEST

/* ulimit -v: no room for one more thread's stack (OpenMP's stacks made 4 GiB,
 * the address space 1 GiB). Not under AddressSanitizer, whose shadow memory
 * needs terabytes of address space. */
START_TEST(test_thread_limit_address_space)
{
#ifdef HT_ASAN
    tf_skip(__func__, "AddressSanitizer cannot run under ulimit -v");
#else
    if (!tf_need_fixtures(__func__)) return;
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        tf_skip(__func__, "one processor: no second thread to refuse");
        return;
    }
    check_refused("ulimit -v 1 GiB, OMP_STACKSIZE=4G", "ulimit -v 1048576 && OMP_STACKSIZE=4G exec");
#endif
}
END_TEST

/* kvgpt.h: a failed open leaves nothing behind, threads included. The
 * model's weights are cut short: open fails after the backend was set up. */
START_TEST(test_failed_open_leaves_no_thread)
{
    if (!tf_need_fixtures(__func__)) return;
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2 || ht_tasks() < 0) {
        tf_skip(__func__, "one processor, or no /proc/self/task");
        return;
    }
    char dir[512], cmd[4096], out[2048];
    ck_assert_int_eq(tf_tmpdir(dir, sizeof dir), 0);
    ck_assert_int_eq(tf_copy_dir(tf_path("shakespeare_char"), dir), 0);
    snprintf(cmd, sizeof cmd, "truncate -s 100000 '%s/model.safetensors' && rm -f '%s/ckpt.pt'", dir, dir);
    ck_assert_int_eq(ht_sh(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "exec '%s' --failed-open '%s' '%s'", g_self, dir, tf_path("shakespeare_char"));
    int rc = ht_sh(cmd, out, sizeof out);
    printf("  %s", out);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)ht_sh(cmd, dir, sizeof dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
}
END_TEST

/* threads: 0 is every processor (OMP_NUM_THREADS may ask fewer); more than
 * the processors is capped to them, in the plan; negative is refused. */
START_TEST(test_threads_option)
{
    kvgpt_options o;
    kvgpt_plan p;
    kvgpt_error err = {0, ""};
    kvgpt_options_default(&o);
    const int procs = omp_get_num_procs();
    ck_assert_msg(tf_plan_gpt2(&o, &p, &err) == KVGPT_OK, "%s", err.msg);
    ck_assert_msg(p.threads >= 1 && p.threads <= procs, "threads 0 planned %d of %d", p.threads, procs);
    ck_assert_uint_gt(p.thread_stack, 0);
    o.threads = 1;
    ck_assert_int_eq(tf_plan_gpt2(&o, &p, &err), KVGPT_OK);
    ck_assert_int_eq(p.threads, 1);
    o.threads = -1;
    ck_assert_int_eq(tf_plan_gpt2(&o, &p, &err), KVGPT_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "threads -1") && strstr(err.msg, "negative"), "message: %s", err.msg);
    o.threads = procs + 1;
    ck_assert_int_eq(tf_plan_gpt2(&o, &p, &err), KVGPT_OK);
    ck_assert_int_eq(p.threads, procs);
    o.threads = INT_MAX;
    ck_assert_int_eq(tf_plan_gpt2(&o, &p, &err), KVGPT_OK);
    ck_assert_int_eq(p.threads, procs);
}
END_TEST

/* cpu_kernels: auto is the best this CPU runs; a set it runs is taken; one it
 * cannot run, or that the build lacks, is refused; KVGPT_CPU_KERNELS stands
 * in for an unset option. The plan, and kvgpt budget, name the choice. */
START_TEST(test_kernels_option)
{
    kvgpt_options o;
    kvgpt_plan p;
    kvgpt_error err = {0, ""};
    kvgpt_options_default(&o);
    o.cpu_kernels = "auto";
    ck_assert_msg(tf_plan_gpt2(&o, &p, &err) == KVGPT_OK, "%s", err.msg);
    ck_assert_str_eq(p.kernels, ops_set_best()->name);
    for (int i = 0; i < ops_set_count(); i++) {
        const ops_kernels *k = ops_set_at(i);
        o.cpu_kernels = k->name;
        kvgpt_status s = tf_plan_gpt2(&o, &p, &err);
        if (ops_set_runs(k)) {
            ck_assert_msg(s == KVGPT_OK, "%s: %s", k->name, err.msg);
            ck_assert_str_eq(p.kernels, k->name);
        } else {
            ck_assert_int_eq(s, KVGPT_ERR_UNSUPPORTED);
            ck_assert_msg(strstr(err.msg, "cannot run"), "message: %s", err.msg);
        }
    }
    const char *absent[] = {"neon", "avx-512", "", NULL};
    for (int i = 0; absent[i] && *absent[i]; i++) {
        o.cpu_kernels = absent[i];
        ck_assert_int_eq(tf_plan_gpt2(&o, &p, &err), KVGPT_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(err.msg, absent[i]) && strstr(err.msg, "portable"), "message: %s", err.msg);
    }

    /* The environment, for an unset option only. */
    const char *env = getenv("KVGPT_CPU_KERNELS");
    char saved[64] = "";
    if (env) snprintf(saved, sizeof saved, "%s", env);
    setenv("KVGPT_CPU_KERNELS", "portable", 1);
    o.cpu_kernels = NULL;
    kvgpt_status s1 = tf_plan_gpt2(&o, &p, &err);
    char got1[16];
    snprintf(got1, sizeof got1, "%s", p.kernels);
    o.cpu_kernels = "auto";
    kvgpt_status s2 = tf_plan_gpt2(&o, &p, &err);
    char got2[16];
    snprintf(got2, sizeof got2, "%s", p.kernels);
    setenv("KVGPT_CPU_KERNELS", "no-such-set", 1);
    o.cpu_kernels = NULL;
    kvgpt_status s3 = tf_plan_gpt2(&o, &p, &err);
    if (env) setenv("KVGPT_CPU_KERNELS", saved, 1);
    else unsetenv("KVGPT_CPU_KERNELS");
    ck_assert_int_eq(s1, KVGPT_OK);
    ck_assert_str_eq(got1, "portable");
    ck_assert_int_eq(s2, KVGPT_OK);
    ck_assert_str_eq(got2, ops_set_best()->name);
    ck_assert_int_eq(s3, KVGPT_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "KVGPT_CPU_KERNELS"), "message: %s", err.msg);
}
END_TEST

int main(int argc, char **argv)
{
    g_self = argv[0];
    if (argc == 6 && strcmp(argv[1], "--stack") == 0)
        return child_run(argv[4], argv[5], 0, (size_t)atol(argv[2]), (size_t)atol(argv[3]));
    if (argc == 4 && strcmp(argv[1], "--team") == 0) return child_run(argv[3], NULL, atoi(argv[2]), 0, 0);
    if (argc == 4 && strcmp(argv[1], "--failed-open") == 0) return child_failed_open(argv[2], argv[3]);
    char self[PATH_MAX];
    if (realpath(argv[0], self)) g_self = self;
    Suite *s = suite_create("host");
    TCase *tc = tcase_create("host");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_threads_option);
    tcase_add_test(tc, test_kernels_option);
    tcase_add_test(tc, test_64k_stack);
    tcase_add_test(tc, test_thread_limit_nproc);
    tcase_add_test(tc, test_thread_limit_address_space);
    tcase_add_test(tc, test_failed_open_leaves_no_thread);
    suite_add_tcase(s, tc);
    return tf_run_suite(s);
}
