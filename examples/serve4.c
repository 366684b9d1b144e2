/* examples/serve4.c — a host serving four users with different prompts in
 * one batch, with its own sampling loop over kvgpt_decode: every step
 * decodes one token of each live user in one forward (one read of the
 * weights for all four), then draws each user's next token with
 * kvgpt_sample_logits from its own random stream. Nothing but kvgpt.h.
 *
 *   usage: serve4 MODEL_DIR [TOKENS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvgpt.h"

#define USERS 4

static int fail(const char *what, const kvgpt_error *err)
{
    fprintf(stderr, "serve4: %s: %s\n  %s\n", what, kvgpt_strerror(err->status), err->msg);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: serve4 MODEL_DIR [TOKENS]\n");
        return 2;
    }
    int max_new = argc > 2 ? atoi(argv[2]) : 24;
    static const char *const prompts[USERS] = {"ROMEO:", "The weather today", "Once upon a time", "First Citizen:"};
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = argv[1];
    o.batch = USERS;          /* four slots, one per user */
    kvgpt_model *m;
    kvgpt_error err;
    if (kvgpt_open(&o, NULL, 0, &m, &err)) return fail("open", &err);
    const int V = kvgpt_model_config(m)->vocab_size, ctx = kvgpt_model_plan(m)->context;
    const int eot = kvgpt_model_config(m)->eot_token;
    float *logits = malloc(sizeof(float) * (size_t)V * USERS);
    void *scratch = malloc((size_t)V * 8);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)ctx * USERS), *seq = malloc(sizeof(int32_t) * (size_t)ctx * USERS);
    kvgpt_text_state text[USERS];
    char *out[USERS];
    size_t len[USERS] = {0};
    uint64_t rng[USERS];
    int live[USERS], n = 0, rc = 0;
    kvgpt_gen_options g;
    kvgpt_gen_options_default(&g);   /* temperature 0.8, top_k 200 */
    if (!logits || !scratch || !tok || !seq) return 1;
    /* Step 0: every user's prompt in one batch. */
    for (int u = 0; u < USERS; u++) {
        int k = 0;
        if (!kvgpt_has_tokenizer(m)) tok[n] = 0, k = 1;   /* a model without a tokenizer: start from token 0 */
        else if (kvgpt_encode(m, prompts[u], strlen(prompts[u]), tok + n, ctx / 2, &k, &err)) return fail("encode", &err);
        for (int i = 0; i < k; i++) seq[n + i] = u;
        n += k;
        rng[u] = kvgpt_sampler_state(42, u);
        live[u] = 1;
        kvgpt_text_init(&text[u]);
        out[u] = malloc((size_t)max_new * 64 + 256);
        len[u] = (size_t)sprintf(out[u], "%s", prompts[u]);
    }
    kvgpt_batch b = {n, tok, seq, NULL};    /* logits: the last token of each user */
    for (int step = 0; step < max_new && !rc; step++) {
        if (kvgpt_decode(m, &b, logits, &err)) {
            rc = fail("decode", &err);
            break;
        }
        /* The logits rows follow the batch: one per user still in it. */
        int row = 0, next = 0;
        for (int u = 0; u < USERS; u++) {
            if (!live[u]) continue;
            int32_t t = kvgpt_sample_logits(logits + (size_t)row++ * V, V, &g, &rng[u], scratch);
            size_t w = 0;
            if (t < 0 || t == eot || kvgpt_seq_length(m, u) == ctx) {
                live[u] = 0;
                continue;
            }
            kvgpt_token_text(m, &text[u], t, out[u] + len[u], 64, &w);
            len[u] += w;
            tok[next] = t;
            seq[next++] = u;
        }
        b.n = next;
        if (!next) break;
    }
    for (int u = 0; u < USERS; u++) {
        size_t w = 0;
        kvgpt_text_flush(&text[u], out[u] + len[u], 8, &w);
        printf("[user %d, %d tokens held] %.*s\n", u, kvgpt_seq_length(m, u), (int)(len[u] + w), out[u]);
        free(out[u]);
    }
    free(logits);
    free(scratch);
    free(tok);
    free(seq);
    kvgpt_close(m);
    return rc;
}
