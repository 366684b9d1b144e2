/* tests/test_install.c — packaging as a host sees it: the installed archive
 * defines no global symbol but kvgpt_*; `make install` into a fresh prefix,
 * then examples/host.c compiled against the installed copy with nothing but
 * `pkg-config --cflags --libs kvgpt` (what CMake and Meson ask) and again with
 * `--static`, then run on the fixture model: it must succeed and print
 * generated text.
 * Runs from the repository root (as `make test` does); the nested make gets
 * the outer make's command-line variables (TARGET, SAN) but not its jobserver. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/fixtures.h"

static char g_prefix[512];

static int have(const char *tool)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s > /dev/null 2>&1", tool);
    return system(cmd) == 0;
}

/* Runs a shell command; its exit status (or -1 when it did not exit). */
static int sh(const char *cmd)
{
    int rc = system(cmd);
    return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The outer make's command-line variables ("TARGET=cpu SAN=...") from MAKEFLAGS. */
static void outer_vars(char *out, size_t cap)
{
    const char *mf = getenv("MAKEFLAGS");
    const char *v = mf ? strstr(mf, "-- ") : NULL;
    snprintf(out, cap, "%s", v ? v + 3 : "");
    for (char *p = out; *p; p++)   /* hand the shell assignments only, nothing to run */
        if (strchr(";&|`$<>()\n", *p)) *p = ' ';
}

static char *slurp(const char *path)
{
    size_t n;
    char *b = tf_read_file(path, &n);
    return b ? b : calloc(1, 1);
}

START_TEST(test_install_and_host)
{
    struct stat st;
    if (stat("Makefile", &st) != 0 || stat("examples/host.c", &st) != 0 || stat("kvgpt.pc.in", &st) != 0) {
        tf_skip(__func__, "not run from the repository root");
        return;
    }
    if (!have("make") || !have("pkg-config") || !have("cc")) {
        tf_skip(__func__, "make, pkg-config or cc missing");
        return;
    }
    ck_assert_int_eq(tf_tmpdir(g_prefix, sizeof g_prefix), 0);
    char vars[1024], cmd[4096], log[600];
    outer_vars(vars, sizeof vars);
    snprintf(log, sizeof log, "%s/log.txt", g_prefix);

    /* 1. make install into the fresh prefix. */
    snprintf(cmd, sizeof cmd,
             "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s install %s PREFIX=%s DESTDIR= > %s 2>&1", vars,
             g_prefix, log);
    int rc = sh(cmd);
    char *out = slurp(log);
    ck_assert_msg(rc == 0, "`%s` failed (%d):\n%s", cmd, rc, out);
    free(out);
    const char *files[] = {"lib/libkvgpt.a", "include/kvgpt.h", "lib/pkgconfig/kvgpt.pc", "bin/kvgpt"};
    for (int i = 0; i < 4; i++) {
        char p[700];
        snprintf(p, sizeof p, "%s/%s", g_prefix, files[i]);
        ck_assert_msg(stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0, "not installed: %s", p);
        if (i == 3) ck_assert_msg(access(p, X_OK) == 0, "%s is not executable", p);
    }

    /* 2. The example, against the installed copy only (no -I of the
     * repository), with what pkg-config tells a host: plain, then --static. */
    const char *how[2] = {"", "--static "}, *bin[2] = {"host", "host-static"};
    for (int i = 0; i < 2; i++) {
        char flags[1024] = "";
        snprintf(cmd, sizeof cmd, "PKG_CONFIG_PATH=%s/lib/pkgconfig pkg-config %s--cflags --libs kvgpt", g_prefix,
                 how[i]);
        FILE *p = popen(cmd, "r");
        ck_assert(p != NULL);
        size_t got = fread(flags, 1, sizeof flags - 1, p);
        flags[got] = 0;
        ck_assert_msg(pclose(p) == 0, "`%s` failed", cmd);
        flags[strcspn(flags, "\n")] = 0;
        char want[700];
        snprintf(want, sizeof want, "-I%s/include", g_prefix);
        ck_assert_msg(strstr(flags, want) && strstr(flags, "-lkvgpt") && strstr(flags, "-lm") &&
                          strstr(flags, "-fopenmp"),
                      "pkg-config %sgave \"%s\"", how[i], flags);
        snprintf(cmd, sizeof cmd, "cc -O2 examples/host.c %s -o %s/%s > %s 2>&1", flags, g_prefix, bin[i], log);
        rc = sh(cmd);
        out = slurp(log);
        ck_assert_msg(rc == 0, "`%s` failed (%d):\n%s", cmd, rc, out);
        free(out);
    }

    /* 4. Run it on the fixture model. */
    const char *model = tf_path("shakespeare_char");
    if (!tf_need_fixtures(__func__)) return;   /* the host was built; running it needs a model */
    snprintf(cmd, sizeof cmd, "%s/host %s ROMEO: > %s/out.txt 2> %s", g_prefix, model, g_prefix, log);
    rc = sh(cmd);
    char outp[700];
    snprintf(outp, sizeof outp, "%s/out.txt", g_prefix);
    char *text = slurp(outp), *errs = slurp(log);
    ck_assert_msg(rc == 0, "host failed (%d):\n%s", rc, errs);
    ck_assert_msg(strncmp(text, "ROMEO:", 6) == 0, "output does not start with the prompt: \"%.80s\"", text);
    /* 200 new characters (it stops early only at an end-of-text token; this vocab has none). */
    ck_assert_msg(strlen(text) >= 6 + 200, "only %zu bytes of output: \"%s\"", strlen(text), text);
    ck_assert_msg(strstr(errs, "TOTAL") && strstr(errs, "host: 200 tokens"), "no budget or summary:\n%s", errs);
    free(text);
    free(errs);
}
END_TEST

/* The archive make install ships ($KVGPT_LIB, which make test sets) defines
 * no global symbol but kvgpt_*: a host's own json_init or arena_open can
 * neither clash with ours nor be called by it. The whole archive is one
 * partially linked object whose other symbols are local, nvcc's included
 * under TARGET=cuda, so no exception is made for anything. */
START_TEST(test_archive_exports_only_kvgpt)
{
    const char *lib = getenv("KVGPT_LIB");
    if (!lib || !*lib) {
        tf_skip(__func__, "KVGPT_LIB is not set; make test sets it");
        return;
    }
    if (!have("nm")) {
        tf_skip(__func__, "no nm");
        return;
    }
    struct stat st;
    ck_assert_msg(stat(lib, &st) == 0, "%s: no such archive", lib);
    char cmd[1200], line[1024], bad[2048] = "";
    snprintf(cmd, sizeof cmd, "nm -g --defined-only -P '%s' 2>&1", lib);
    FILE *p = popen(cmd, "r");
    ck_assert(p != NULL);
    int ours = 0, n_bad = 0;
    while (fgets(line, sizeof line, p)) {
        /* -P: "name type value size"; member headers end in ':' */
        char name[512], type[8];
        if (sscanf(line, "%511s %7s", name, type) != 2 || name[strlen(name) - 1] == ':' || strchr(name, '['))
            continue;
        if (strncmp(name, "kvgpt_", 6) == 0) {
            ours++;
            continue;
        }
        if (n_bad++ < 16) snprintf(bad + strlen(bad), sizeof bad - strlen(bad), "  %s %s\n", type, name);
    }
    ck_assert_msg(pclose(p) == 0, "`%s` failed", cmd);
    printf("  %s: %d kvgpt_ globals, %d others\n", lib, ours, n_bad);
    ck_assert_msg(ours >= 20, "%s: only %d kvgpt_ symbols: not the library?", lib, ours);
    ck_assert_msg(n_bad == 0, "%s defines %d global symbols without the kvgpt_ prefix:\n%s", lib, n_bad, bad);
}
END_TEST

static void cleanup(void)
{
    if (g_prefix[0]) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_prefix);
        (void)sh(cmd);
        g_prefix[0] = 0;
    }
}

int main(void)
{
    Suite *s = suite_create("install");
    TCase *tc = tcase_create("install");
    tcase_set_timeout(tc, 300);   /* the nested make may have to rebuild the library */
    tcase_add_test(tc, test_archive_exports_only_kvgpt);
    tcase_add_test(tc, test_install_and_host);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    cleanup();
    return failed ? 1 : 0;
}
