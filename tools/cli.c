/* tools/cli.c — option parsing and error printing for the kvgpt command. */
#include "tools/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kvgpt %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cli_status(const char *cmd, kvgpt_status s, const kvgpt_error *err)
{
    const char *name = kvgpt_strerror(s);
    const char *colon = strchr(name, ':');
    int n = colon ? (int)(colon - name) : (int)strlen(name);
    if (err && err->status == s && err->msg[0])
        return cli_error(cmd, "%s (%.*s)", err->msg, n, name);
    return cli_error(cmd, "%s", name);
}

static int parse_value(const char *cmd, const cli_opt *o, const char *v)
{
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case OPT_STR:
        *(const char **)o->dst = v;
        return 0;
    case OPT_INT: {
        long x = strtol(v, &end, 10);
        if (end == v || *end) return cli_error(cmd, "--%s: \"%s\" is not an integer", o->name, v) + 1;
        if (errno == ERANGE || x < -2147483647L || x > 2147483647L)
            return cli_error(cmd, "--%s: %s is out of range (at most 2147483647 in size)", o->name, v) + 1;
        *(int *)o->dst = (int)x;
        return 0;
    }
    case OPT_FLOAT: {
        float x = strtof(v, &end);
        if (end == v || *end) return cli_error(cmd, "--%s: \"%s\" is not a number", o->name, v) + 1;
        /* ERANGE also means underflow: 1e-38 is a number (tiny, or 0), 1e39 is too large for a float. */
        if (!isfinite(x) || (errno == ERANGE && fabsf(x) > 1.0f))
            return cli_error(cmd, "--%s: %s is not a finite float (its magnitude must be below 3.4e38)", o->name,
                             v) + 1;
        *(float *)o->dst = x;
        return 0;
    }
    case OPT_U64:
    case OPT_SIZE: {
        if (*v == '-') return cli_error(cmd, "--%s: \"%s\" is negative", o->name, v) + 1;
        unsigned long long x = strtoull(v, &end, 10);
        /* strtoull skips blanks and takes a sign: " -1" would be 2^64 - 1. */
        if (errno || end == v || *end || *v < '0' || *v > '9') return cli_error(cmd, "--%s: \"%s\" is not a non-negative integer", o->name, v) + 1;
        if (o->type == OPT_U64) *(uint64_t *)o->dst = (uint64_t)x;
        else *(size_t *)o->dst = (size_t)x;
        return 0;
    }
    case OPT_FLAG:
        *(int *)o->dst = 1;
        return 0;
    }
    return 2;
}

int cli_parse(const char *cmd, int argc, char **argv, const cli_opt *opts, int n_opts)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) return cli_error(cmd, "unexpected argument \"%s\" (options start with --)", a) + 1;
        a += 2;
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        const cli_opt *o = NULL;
        for (int k = 0; k < n_opts; k++)
            if (strlen(opts[k].name) == n && strncmp(opts[k].name, a, n) == 0) o = &opts[k];
        /* nanoGPT spells options with '_', people type '-': accept both. */
        if (!o)
            for (int k = 0; k < n_opts && !o; k++) {
                const char *x = opts[k].name;
                size_t j = 0;
                while (j < n && x[j] && (x[j] == a[j] || (x[j] == '_' && a[j] == '-') || (x[j] == '-' && a[j] == '_'))) j++;
                if (j == n && x[j] == 0) o = &opts[k];
            }
        if (!o) return cli_error(cmd, "unknown option --%.*s (see kvgpt %s --help)", (int)n, a, cmd) + 1;
        const char *v;
        if (o->type == OPT_FLAG) {
            if (eq) return cli_error(cmd, "--%s takes no value", o->name) + 1;
            v = "1";
        } else if (eq) {
            v = eq + 1;
        } else {
            if (i + 1 >= argc) return cli_error(cmd, "--%s needs a value", o->name) + 1;
            v = argv[++i];
        }
        int r = parse_value(cmd, o, v);
        if (r) return r;
    }
    return 0;
}

void cli_usage(const char *cmd, const char *summary, const cli_opt *opts, int n_opts)
{
    printf("usage: kvgpt %s [options]\n%s\n", cmd, summary);
    for (int i = 0; i < n_opts; i++) printf("  --%-18s %s\n", opts[i].name, opts[i].help);
}

int cli_on_off(const char *s)
{
    if (!s) return -1;
    return strcmp(s, "on") == 0 ? 1 : strcmp(s, "off") == 0 ? 0 : -1;
}

int cli_dtype(const char *s)
{
    if (!s) return -1;
    if (strcmp(s, "f32") == 0) return KVGPT_DTYPE_F32;
    if (strcmp(s, "f16") == 0) return KVGPT_DTYPE_F16;
    if (strcmp(s, "bf16") == 0) return KVGPT_DTYPE_BF16;
    return -1;
}

int cli_ids(const char *cmd, const char *s, int32_t *ids, int cap)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p) {
            cli_error(cmd, "token ids must be integers separated by commas, not \"%s\"", s);
            return -1;
        }
        if (errno == ERANGE || v < INT32_MIN || v > INT32_MAX) {
            cli_error(cmd, "token id %.*s is out of range", (int)(end - p > 40 ? 40 : end - p), p);
            return -1;
        }
        if (n >= cap) {
            cli_error(cmd, "more than %d token ids", cap);
            return -1;
        }
        ids[n++] = (int32_t)v;
        p = end;
        if (*p == ',') p++;
        else if (*p) {
            cli_error(cmd, "token ids must be integers separated by commas, not \"%s\"", s);
            return -1;
        }
    }
    if (n == 0) cli_error(cmd, "no token ids given");
    return n ? n : -1;
}

int cli_need_model(const char *cmd, const char *model)
{
    if (!model) return cli_error(cmd, "--model DIR is required");
    if (!*model) return cli_error(cmd, "--model: an empty folder name");
    return 0;
}

static int exists_in(const char *dir, const char *name)
{
    char p[4096];
    struct stat st;
    int n = snprintf(p, sizeof p, "%s/%s", dir, name);
    return n > 0 && (size_t)n < sizeof p && stat(p, &st) == 0;
}

int cli_no_tokenizer(const char *cmd, const char *dir, const char *instead)
{
    static const char *const pairs[2][2] = {{"vocab.json", "merges.txt"}, {"encoder.json", "vocab.bpe"}};
    for (int i = 0; i < 2; i++)
        if (exists_in(dir, pairs[i][0]) && !exists_in(dir, pairs[i][1]) && (i == 1 || !exists_in(dir, "meta.pkl")))
            return cli_error(cmd, "%s has %s but no %s: the GPT-2 tokenizer needs both (a char vocab.json has "
                             "\"itos\"); %s", dir, pairs[i][0], pairs[i][1], instead);
    return cli_error(cmd, "%s has no tokenizer files (vocab.json + merges.txt, a char vocab.json, or meta.pkl); %s",
                     dir, instead);
}

int cli_stdout_closed(void)
{
    if (fcntl(STDOUT_FILENO, F_GETFD) != -1 || errno != EBADF) return 0;
    fprintf(stderr, "kvgpt: standard output is closed: nowhere to write\n");
    return 1;
}

int cli_stdout_done(const char *cmd, int rc)
{
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout)) return rc;
    cli_error(cmd, "writing standard output failed%s%s", errno ? ": " : "", errno ? strerror(errno) : "");
    return rc ? rc : 1;
}
