/* model/plan.c — options, the standard GPT-2 shapes, and planning a model
 * folder: what its files say (config, header sizes, tokenizer) before the
 * plan of model/regions.c is made from them. */
#include "model/model.h"
#include "common/status.h"
#include "tokenizer/bpe.h"
#include "loader/ckpt.h"

#include <stdio.h>
#include <string.h>

void kvgpt_options_default(kvgpt_options *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 1;
    o->adapt_threads = 1;
}

void kvgpt_gen_options_default(kvgpt_gen_options *g)
{
    memset(g, 0, sizeof *g);
    g->max_new_tokens = 500;
    g->temperature = 0.8f;
    g->top_k = 200;
    g->top_p = 1.0f;
    g->seed = 1337;
    g->use_cache = 1;
    g->window = KVGPT_WINDOW_SHIFT;
    g->stop_at_eot = 1;
    g->n_seq = 1;
    g->repetition_penalty = 1.0f;
    g->penalty_last_n = 64;
}

static const struct { const char *name; int layer, head, embd; } shapes[] = {
    [KVGPT_SHAPE_GPT2] = {"gpt2", 12, 12, 768},
    [KVGPT_SHAPE_GPT2_MEDIUM] = {"gpt2-medium", 24, 16, 1024},
    [KVGPT_SHAPE_GPT2_LARGE] = {"gpt2-large", 36, 20, 1280},
    [KVGPT_SHAPE_GPT2_XL] = {"gpt2-xl", 48, 25, 1600},
};

kvgpt_shape kvgpt_shape_from_name(const char *name)
{
    for (int i = KVGPT_SHAPE_GPT2; i <= KVGPT_SHAPE_GPT2_XL; i++)
        if (name && strcmp(name, shapes[i].name) == 0) return (kvgpt_shape)i;
    return KVGPT_SHAPE_NONE;
}

kvgpt_status kvgpt_shape_config(kvgpt_shape shape, kvgpt_config *out)
{
    if (shape < KVGPT_SHAPE_GPT2 || shape > KVGPT_SHAPE_GPT2_XL)
        return KVGPT_ERR_ARG;
    memset(out, 0, sizeof *out);
    out->n_layer = shapes[shape].layer;
    out->n_head = shapes[shape].head;
    out->n_embd = shapes[shape].embd;
    out->block_size = 1024;
    out->vocab_size = 50257;
    out->bias = 1;
    out->hf_layout = 1;
    out->gelu = KVGPT_GELU_TANH;
    out->ln_eps = 1e-5f;
    out->eot_token = 50256;
    return KVGPT_OK;
}

static kvgpt_status apply_overrides(kvgpt_config *c, const kvgpt_options *o, kvgpt_error *err)
{
    if (o->gelu == KVGPT_GELU_ERF || o->gelu == KVGPT_GELU_TANH) c->gelu = o->gelu;
    else if (o->gelu != KVGPT_GELU_CONFIG) return kv_fail(err, KVGPT_ERR_ARG, "unknown GELU override %d", o->gelu);
    return KVGPT_OK;
}

kvgpt_status kvgpt_plan_config(const kvgpt_config *c, const kvgpt_options *o, kvgpt_plan *out, kvgpt_error *err)
{
    kvgpt_config cc = *c;
    kvgpt_status s = loader_check_config(&cc, "config", err);
    if (!s) s = apply_overrides(&cc, o, err);
    if (s) {
        arena_plan_init(out);
        return s;
    }
    model_tok_plan none = {0, 0, 0};
    return model_plan(&cc, o, 0, &none, out, err);
}

kvgpt_status model_weights_path(const char *dir, char *path, size_t cap, int *is_ckpt, kvgpt_error *err)
{
    kvgpt_status s = lf_join(path, cap, dir, "model.safetensors", err);
    *is_ckpt = 0;
    if (s || lf_exists(path)) return s;
    if ((s = lf_join(path, cap, dir, "ckpt.pt", err))) return s;
    if (lf_exists(path)) {
        *is_ckpt = 1;
        return KVGPT_OK;
    }
    return lf_join(path, cap, dir, "model.safetensors", err);
}

kvgpt_status kvgpt_plan_model(const kvgpt_options *o, kvgpt_plan *out, kvgpt_error *err)
{
    arena_plan_init(out);
    if (!o || !o->model_dir) return kv_fail(err, KVGPT_ERR_ARG, "no model folder given");
    kvgpt_config c;
    char path[LOADER_PATH_MAX];
    size_t st_scratch = 0;
    int is_ckpt;
    kvgpt_status s = model_weights_path(o->model_dir, path, sizeof path, &is_ckpt, err);
    if (s) return s;
    if (is_ckpt) {
        /* nanoGPT's out_dir has no config.json: model_args is the config, unless one was written. */
        char cj[LOADER_PATH_MAX];
        if ((s = ckpt_plan(path, &st_scratch, &c, err)) || (s = lf_join(cj, sizeof cj, o->model_dir, "config.json", err)))
            return s;
        if (lf_exists(cj) && (s = loader_read_config(o->model_dir, &c, err))) return s;
    } else {
        st_file st;
        if ((s = loader_read_config(o->model_dir, &c, err)) || (s = st_open(&st, path, &st_scratch, err))) return s;
        st_close(&st);
    }
    if ((s = apply_overrides(&c, o, err))) return s;
    model_tok_plan tp = {0, 0, 0};
    if (!o->no_tokenizer) {
        char a[LOADER_PATH_MAX], b[LOADER_PATH_MAX];
        if ((s = model_tokenizer_paths(o->model_dir, a, b, sizeof a, &tp, c.vocab_size, err))) return s;
    }
    return model_plan(&c, o, st_scratch, &tp, out, err);
}

kvgpt_status model_tokenizer_paths(const char *dir, char *a, char *b, size_t cap, model_tok_plan *tp,
                                   int vocab_size, kvgpt_error *err)
{
    kvgpt_status s;
    tp->kind = 0;
    if (bpe_find_files(dir, a, b, cap)) {
        bpe_sizes bs;
        if ((s = bpe_plan(a, b, vocab_size, &bs, err))) return s;
        tp->kind = 2;
        tp->table_bytes = bs.table_bytes;
        tp->file_bytes = bs.file_bytes;
        return KVGPT_OK;
    }
    /* A char vocabulary: vocab.json alone. */
    if ((s = lf_join(a, cap, dir, "vocab.json", err))) return s;
    if (lf_exists(a) && cv_is_char_vocab(a)) {   /* a GPT-2 vocab.json without merges.txt: no tokenizer */
        uint64_t size;
        if ((s = lf_size(a, &size, err))) return s;
        if (size > ((uint64_t)64 << 20))
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s: %llu bytes is absurd for a vocabulary", a,
                           (unsigned long long)size);
        tp->kind = 1;
        tp->table_bytes = sizeof(cv_vocab) + 64 + cv_table_bytes(size, vocab_size);
        tp->file_bytes = (size_t)size;
        return KVGPT_OK;
    }
    /* nanoGPT's meta.pkl (the same char vocabulary, pickled). */
    if ((s = lf_join(a, cap, dir, "meta.pkl", err))) return s;
    if (lf_exists(a)) {
        uint64_t size;
        if ((s = lf_size(a, &size, err))) return s;
        tp->file_bytes = cv_meta_file_bytes(size, vocab_size);
        if (!tp->file_bytes)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: %llu bytes is absurd for a meta.pkl", a, (unsigned long long)size);
        tp->kind = 3;
        tp->table_bytes = sizeof(cv_vocab) + 64 + cv_table_bytes(size, vocab_size);
    }
    return KVGPT_OK;
}
