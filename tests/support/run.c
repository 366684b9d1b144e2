/* tests/support/run.c — see run.h. */
#define _XOPEN_SOURCE 700
#include "tests/support/run.h"
#include "tests/support/fixtures.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *tr_tool(void)
{
    const char *t = getenv("KVGPT_TOOL");
    return t && *t ? t : "build/cpu/kvgpt";
}

const char *tr_examples(void)
{
    static char dir[4096];
    const char *t = tr_tool(), *slash = strrchr(t, '/');
    snprintf(dir, sizeof dir, "%.*sexamples", slash ? (int)(slash - t + 1) : 0, t);
    return dir;
}

int tr_run(const char *cmdline, char **out, char **err)
{
    char cmd[16384], po[64], pe[64];
    snprintf(po, sizeof po, "/tmp/kvgpt-test-out.%d", (int)getpid());
    snprintf(pe, sizeof pe, "/tmp/kvgpt-test-err.%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "%s >%s 2>%s", cmdline, po, pe);
    int st = system(cmd);
    *out = tf_read_file(po, NULL);
    *err = tf_read_file(pe, NULL);
    remove(po);
    remove(pe);
    ck_assert_ptr_nonnull(*out);
    ck_assert_ptr_nonnull(*err);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

int tr_tool_run(const char *args, char **out, char **err)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "%s %s", tr_tool(), args);
    return tr_run(cmd, out, err);
}
