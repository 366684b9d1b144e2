/* tools/cmd_text.c — `kvgpt encode` (bytes on stdin → ids) and `kvgpt decode`
 * (ids on stdin → bytes) with a model folder's tokenizer. */
#include "tools/cli.h"

#include <stdio.h>
#include <stdlib.h>

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
    if (!model) return cli_error(cmd, "--model DIR is required");
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = model;
    o.context = 1;   /* only the tokenizer is wanted: the smallest activations */
    kvgpt_error err = {0};
    kvgpt_status s = kvgpt_open(&o, NULL, 0, m, &err);
    if (s) return cli_status(cmd, s, &err);
    if (!kvgpt_has_tokenizer(*m)) {
        kvgpt_close(*m);
        return cli_error(cmd, "%s has no tokenizer files", model);
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

int cmd_decode(int argc, char **argv)
{
    kvgpt_model *m;
    int rc = open_tokenizer("decode", argc, argv, &m);
    if (rc) return rc < 0 ? 0 : rc;
    long id;
    int c;
    while (!rc && (c = scanf("%ld", &id)) == 1) {
        const char *b;
        size_t n;
        if (id < 0 || id > 2147483647L || kvgpt_token_bytes(m, (int32_t)id, &b, &n) != KVGPT_OK)
            rc = cli_error("decode", "token id %ld is not in the vocabulary", id);
        else
            fwrite(b, 1, n, stdout);
    }
    if (!rc && c != EOF) rc = cli_error("decode", "stdin must hold integers separated by white space");
    kvgpt_close(m);
    return rc;
}
