/* tests/fuzz/fuzz_open.c — libFuzzer target: the whole open path (plan,
 * arena, safetensors, weight conversion) and a short generation past the
 * context, on a model.safetensors from the input beside a fixed tiny
 * config.json. Input: 1 byte picking the config (bits 0-1: nanoGPT's layout
 * with 1 layer, without / with biases; the HuggingFace layout with 2 layers,
 * tanh / erf GELU; bit 2: greedy), then the file.
 * Oracles: a failure has a status and a message and leaves *out NULL; an
 * opened model generates ids inside the vocabulary, or, when its weights
 * overflow (NaN, infinities), ends at once with KVGPT_ERR_NUMERIC; its
 * arena is what the plan said. */
#include "fuzz_common.h"

#include <sys/stat.h>

static const char *const configs[4] = {
    "{\"n_layer\":1,\"n_head\":2,\"n_embd\":8,\"block_size\":8,\"bias\":false,\"vocab_size\":5}",
    "{\"n_layer\":1,\"n_head\":2,\"n_embd\":8,\"block_size\":8,\"bias\":true,\"vocab_size\":5}",
    "{\"model_type\":\"gpt2\",\"n_layer\":2,\"n_head\":2,\"n_embd\":8,\"n_positions\":8,\"vocab_size\":5}",
    ("{\"model_type\":\"gpt2\",\"n_layer\":2,\"n_head\":4,\"n_embd\":8,\"n_positions\":8,\"vocab_size\":5,"
     "\"activation_function\":\"gelu\",\"layer_norm_epsilon\":1e-3}"),
};
static char dirs[4][512];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (int i = 0; i < 4; i++) {
        snprintf(dirs[i], sizeof dirs[i], "%s/m%d", fz_dir(), i);
        if (mkdir(dirs[i], 0700) != 0) abort();
        char name[32];
        snprintf(name, sizeof name, "m%d/config.json", i);
        fz_write(fz_path(name), configs[i], strlen(configs[i]));
    }
    return 0;
}

static int count(void *user, int seq, int32_t tok)
{
    (void)seq;
    FZ_CHECK(tok >= 0 && tok < 5, "generated id %d outside the vocabulary of 5", tok);
    ++*(int *)user;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int v = data[0] & 3;
    char name[40];
    snprintf(name, sizeof name, "m%d/model.safetensors", v);
    fz_write(fz_path(name), data + 1, size - 1);
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = dirs[v];
    o.threads = 1;
    o.no_tokenizer = 1;
    kvgpt_model *m = (kvgpt_model *)&o;   /* must come back NULL on failure */
    kvgpt_error err = {0, ""};
    kvgpt_status st = kvgpt_open(&o, NULL, 0, &m, &err);
    if (st) {
        fz_check_failure(st, &err);
        FZ_CHECK(m == NULL, "a failed open left *out set");
        return 0;
    }
    const kvgpt_plan *p = kvgpt_model_plan(m);
    FZ_CHECK(kvgpt_model_arena_used(m) <= p->total[KVGPT_SPACE_HOST], "arena %zu past the plan %zu",
             kvgpt_model_arena_used(m), p->total[KVGPT_SPACE_HOST]);
    int n = 0;
    kvgpt_gen_options g;
    kvgpt_gen_options_default(&g);
    g.max_new_tokens = 12;   /* past the 8-token context: one shift */
    g.temperature = (data[0] & 4) ? 0.0f : 1.0f;
    g.on_token = count;
    g.user = &n;
    kvgpt_gen_result res;
    int32_t prompt[3] = {1, 2, 3};
    st = kvgpt_generate(m, prompt, 3, &g, &res, &err);
    /* Weights that overflow (NaN, infinities) end it with KVGPT_ERR_NUMERIC at once, never endless token 0. */
    FZ_CHECK((st == KVGPT_OK && n == 12) || (st == KVGPT_ERR_NUMERIC && n == 0), "generate: status %d, %d tokens: %s",
             (int)st, n, err.msg);
    kvgpt_close(m);
    return 0;
}
