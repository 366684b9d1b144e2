/* examples/host.c — embedding kvgpt: plan, give the library memory the host
 * owns, open, stream tokens through a callback, close, free. Nothing but
 * kvgpt.h and the C library; link with `pkg-config --static --libs kvgpt`.
 *
 *   usage: host MODEL_DIR [PROMPT]     (e.g. host fixtures/shakespeare_char "ROMEO:")
 *
 * The budget goes to stderr, the generated text to stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvgpt.h"

#define MAX_PROMPT 1024

typedef struct {
    const kvgpt_model *model;
    int count;
} printer;

/* Called once per new token, in order; non-zero would stop the sequence. */
static int on_token(void *user, int seq, int32_t token)
{
    printer *p = user;
    const char *bytes;
    size_t len;
    (void)seq;
    if (kvgpt_token_bytes(p->model, token, &bytes, &len) == KVGPT_OK) fwrite(bytes, 1, len, stdout);
    else printf("<%d>", (int)token);
    fflush(stdout);
    p->count++;
    return 0;
}

static int fail(const char *what, const kvgpt_error *err)
{
    fprintf(stderr, "host: %s: %s\n  %s\n", what, kvgpt_strerror(err->status), err->msg);
    return 1;
}

/* Encodes the prompt and generates; tokens arrive through on_token as they are sampled. */
static kvgpt_status generate(kvgpt_model *m, const char *prompt, printer *out, kvgpt_gen_result *res,
                             kvgpt_error *err)
{
    int32_t ids[MAX_PROMPT] = {0};   /* a model without a tokenizer starts from token 0 */
    int n = 1;
    kvgpt_status s;
    if (kvgpt_has_tokenizer(m) && (s = kvgpt_encode(m, prompt, strlen(prompt), ids, MAX_PROMPT, &n, err)))
        return s;
    kvgpt_gen_options g;
    kvgpt_gen_options_default(&g);
    g.max_new_tokens = 200;
    g.on_token = on_token;
    g.user = out;
    fputs(prompt, stdout);
    return kvgpt_generate(m, ids, n, &g, res, err);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s MODEL_DIR [PROMPT]\n", argv[0]);
        return 2;
    }
    const char *prompt = argc > 2 ? argv[2] : "\n";
    kvgpt_error err = {KVGPT_OK, ""};

    /* 1. Plan: sizes only, no weights read, nothing allocated. */
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = argv[1];
    kvgpt_plan plan;
    if (kvgpt_plan_model(&o, &plan, &err) != KVGPT_OK) return fail("plan", &err);
    kvgpt_plan_print(&plan, stderr);

    /* 2. The host owns the memory: one block, any alignment. */
    size_t bytes = kvgpt_plan_host_bytes(&plan);
    void *mem = malloc(bytes);
    if (!mem) {
        fprintf(stderr, "host: cannot allocate %zu bytes\n", bytes);
        return 1;
    }

    /* 3. Open inside that block: the library takes nothing else, ever. */
    kvgpt_model *m = NULL;
    if (kvgpt_open(&o, mem, bytes, &m, &err) != KVGPT_OK) {
        free(mem);
        return fail("open", &err);
    }

    /* 4. Generate, streaming. */
    printer out = {m, 0};
    kvgpt_gen_result res;
    kvgpt_status s = generate(m, prompt, &out, &res, &err);
    if (!s)
        fprintf(stderr, "\nhost: %d tokens, %.1f tokens/s, arena used %zu of %zu bytes\n", out.count,
                res.decode_s > 0 ? res.n_new[0] / res.decode_s : 0.0, kvgpt_model_arena_used(m), bytes);

    /* 5. Close (it frees nothing: the memory is ours), then free our block. */
    kvgpt_close(m);
    free(mem);
    return s ? fail("generate", &err) : 0;
}
