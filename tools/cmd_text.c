/* tools/cmd_text.c — `kvgpt encode` (bytes on stdin → ids) and `kvgpt decode`
 * (ids on stdin → bytes) with a model folder's tokenizer. */
#include "tools/cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_MAX_BYTES ((size_t)64 << 20)

static int open_tokenizer(const char *cmd, int argc, char **argv, kvgpt_model **m)
{
    const char *model = NULL;
    int help = 0;
    const cli_opt opts[] = {
        {"model", OPT_STR, &model, "model folder with tokenizer files"},
        {"help", OPT_FLAG, &help, "this text"},
    };
    if (cli_parse(cmd, argc, argv, opts, 2)) return 2;
    if (help) {
        cli_usage(cmd, cmd[0] == 'e' ? "Reads bytes on stdin, writes token ids (space-separated) on stdout."
                                     : "Reads token ids on stdin, writes their bytes on stdout.", opts, 2);
        return -1;
    }
    if (cli_need_model(cmd, model)) return 1;
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = model;
    o.context = 1;   /* only the tokenizer is wanted: the smallest activations */
    kvgpt_error err = {0};
    kvgpt_status s = kvgpt_open(&o, NULL, 0, m, &err);
    if (s) return cli_status(cmd, s, &err);
    if (!kvgpt_has_tokenizer(*m)) {
        kvgpt_close(*m);
        return cli_no_tokenizer(cmd, model, "there is nothing to encode or decode with");
    }
    return 0;
}

int cmd_encode(int argc, char **argv)
{
    kvgpt_model *m;
    int rc = open_tokenizer("encode", argc, argv, &m);
    if (rc) return rc < 0 ? 0 : rc;
    char *buf = malloc(TEXT_MAX_BYTES + 1);
    int32_t *ids = NULL;
    size_t len = buf ? fread(buf, 1, TEXT_MAX_BYTES + 1, stdin) : 0;
    int n = 0;
    kvgpt_error err = {0};
    if (!buf) rc = cli_error("encode", "out of memory");
    else if (ferror(stdin)) rc = cli_error("encode", "reading standard input failed: %s", strerror(errno));
    else if (len > TEXT_MAX_BYTES) rc = cli_error("encode", "input larger than %zu bytes", TEXT_MAX_BYTES);
    else if (!(ids = malloc(sizeof(int32_t) * (len + 1)))) rc = cli_error("encode", "out of memory");
    else {
        kvgpt_status s = kvgpt_encode(m, buf, len, ids, (int)len + 1, &n, &err);
        if (s) rc = cli_status("encode", s, &err);
        for (int i = 0; !rc && i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        if (!rc) putchar('\n');
    }
    free(ids);
    free(buf);
    kvgpt_close(m);
    return rc;
}

/* The next white-space separated word of stdin into w (cap bytes); 0 at the
 * end of input, -1 when it is longer than cap - 1 bytes. */
static int next_word(char *w, size_t cap)
{
    int c;
    size_t n = 0;
    while ((c = getchar()) != EOF && isspace(c)) {}
    for (; c != EOF && !isspace(c); c = getchar())
        if (n + 1 < cap) w[n++] = (char)c;
        else n = cap;
    if (n == cap) w[cap - 1] = 0;
    else w[n] = 0;
    return n == 0 ? 0 : n == cap ? -1 : 1;
}

int cmd_decode(int argc, char **argv)
{
    kvgpt_model *m;
    int rc = open_tokenizer("decode", argc, argv, &m);
    if (rc) return rc < 0 ? 0 : rc;
    int vocab = kvgpt_model_config(m)->vocab_size, got;
    char w[32];
    while (!rc && (got = next_word(w, sizeof w)) != 0) {
        const char *b;
        size_t n;
        char *end;
        errno = 0;
        long long id = strtoll(w, &end, 10);
        if (got < 0 || end == w || *end)
            rc = cli_error("decode", "standard input must hold token ids (integers separated by white space), not "
                           "\"%s%s\"", w, got < 0 ? "..." : "");
        else if (errno == ERANGE || id < 0 || id >= vocab)
            rc = cli_error("decode", "token id %s is out of range (the vocabulary has ids 0..%d)", w, vocab - 1);
        else if (kvgpt_token_bytes(m, (int32_t)id, &b, &n) != KVGPT_OK)
            rc = cli_error("decode", "token id %lld has no text (a padding id past the tokenizer's tokens)", id);
        else
            fwrite(b, 1, n, stdout);
    }
    if (!rc && ferror(stdin)) rc = cli_error("decode", "reading standard input failed: %s", strerror(errno));
    kvgpt_close(m);
    return rc;
}
