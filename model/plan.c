/* model/plan.c — options, the standard GPT-2 shapes, and the memory plan:
 * every region the model will use, computed before anything is taken. */
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

/* Adds a region of a × b × c elements of elem bytes (overflow-checked). */
static int add(kvgpt_plan *p, const char *name, kvgpt_region_kind kind, kvgpt_space sp, const char *type,
               size_t elem, size_t a, size_t b, size_t c, const char *shape)
{
    size_t bytes = elem;
    if (!kv_mul(bytes, a, &bytes) || !kv_mul(bytes, b, &bytes) || !kv_mul(bytes, c, &bytes)) {
        p->n_regions = -1;
        return -1;
    }
    return arena_plan_add(p, name, kind, sp, type, bytes, "%s", shape);
}

kvgpt_status model_plan(const kvgpt_config *c, const kvgpt_options *o, size_t st_scratch,
                        const model_tok_plan *tok, kvgpt_plan *p, kvgpt_error *err)
{
    arena_plan_init(p);
    p->config = *c;
    if (o->batch < 1 || o->batch > 64)
        return kv_fail(err, KVGPT_ERR_ARG, "batch %d is out of range (1..64)", o->batch);
    if (o->context < 0 || o->context > c->block_size)
        return kv_fail(err, KVGPT_ERR_ARG, "context %d is out of range (0..block_size %d)", o->context,
                       c->block_size);
    if ((unsigned)o->weight_dtype > KVGPT_DTYPE_BF16 || (unsigned)o->kv_dtype > KVGPT_DTYPE_BF16)
        return kv_fail(err, KVGPT_ERR_ARG, "unknown dtype");
    int ctx = o->context ? o->context : c->block_size;
    int B = o->batch, L = c->n_layer, C = c->n_embd, V = c->vocab_size, H = c->n_head;
    int R = MODEL_MAX_ROWS(ctx, B);
    int LR = o->logits_all ? R : B;
    p->batch = B;
    p->context = ctx;
    p->limit = o->arena_limit;
    kvgpt_space dev = port_device_is_host() ? KVGPT_SPACE_HOST : KVGPT_SPACE_DEVICE;
    kvgpt_space host = KVGPT_SPACE_HOST;
    const char *wt = arena_dtype_name(o->weight_dtype), *kt = arena_dtype_name(o->kv_dtype);
    char s[48];

    /* Host: the model struct, sequences, row tables, sampler, tokenizer, load scratch. */
    size_t state = sizeof(struct kvgpt_model) + port_struct_bytes() + (size_t)B * sizeof(kv_seq) +
                   (size_t)L * 4 * sizeof(port_wmat) + 4 * 64;
    add(p, "model.state", KVGPT_REGION_STATE, host, "bytes", state, 1, 1, 1, "[struct]");
    snprintf(s, sizeof s, "[%d,%d]", B, ctx);
    add(p, "seq.tokens", KVGPT_REGION_STATE, host, "i32", sizeof(int32_t), (size_t)B, (size_t)ctx, 1, s);
    snprintf(s, sizeof s, "[4,%d]", R);
    add(p, "rows.host", KVGPT_REGION_STATE, host, "i32", sizeof(int32_t), 4, (size_t)R, 1, s);
    snprintf(s, sizeof s, "[%d,2]", V);
    add(p, "sampler.scratch", KVGPT_REGION_SCRATCH, host, "bytes", 8, (size_t)V, 1, 1, s);
    if (dev != host) {
        snprintf(s, sizeof s, "[%d,%d]", LR, V);
        add(p, "logits.host", KVGPT_REGION_ACTIVATIONS, host, "f32", 4, (size_t)LR, (size_t)V, 1, s);
    }
    if (tok->kind)
        add(p, tok->kind == 2 ? "tokenizer.bpe" : "tokenizer.chars", KVGPT_REGION_TOKENIZER, host, "bytes",
            tok->table_bytes, 1, 1, 1, "[tables]");
    size_t staging = (size_t)4 * C * sizeof(float) * 2;
    /* Also the BPE encoder's work space after open: a few MiB take pieces of 100 kB. */
    if (staging < ((size_t)8 << 20)) staging = (size_t)8 << 20;
    size_t load = st_scratch + staging;
    if (tok->kind && tok->file_bytes > load) load = tok->file_bytes;
    add(p, "load.scratch", KVGPT_REGION_SCRATCH, host, "bytes", load, 1, 1, 1, "[open; encode]");

    /* Weights, converted to the internal layout (matrices packed in weight_dtype). */
    snprintf(s, sizeof s, "[%d,%d]", V, C);
    add(p, "wte (tied lm_head)", KVGPT_REGION_WEIGHTS, dev, wt, port_wmat_bytes(C, V, o->weight_dtype), 1, 1, 1, s);
    snprintf(s, sizeof s, "[%d,%d]", ctx, C);
    add(p, "wpe", KVGPT_REGION_WEIGHTS, dev, "f32", 4, (size_t)ctx, (size_t)C, 1, s);
    snprintf(s, sizeof s, "[%d,%d]", L, C);
    add(p, "h.*.ln_1.weight", KVGPT_REGION_WEIGHTS, dev, "f32", 4, (size_t)L, (size_t)C, 1, s);
    if (c->bias) add(p, "h.*.ln_1.bias", KVGPT_REGION_WEIGHTS, dev, "f32", 4, (size_t)L, (size_t)C, 1, s);
    add(p, "h.*.ln_2.weight", KVGPT_REGION_WEIGHTS, dev, "f32", 4, (size_t)L, (size_t)C, 1, s);
    if (c->bias) add(p, "h.*.ln_2.bias", KVGPT_REGION_WEIGHTS, dev, "f32", 4, (size_t)L, (size_t)C, 1, s);
    const struct { const char *name; int ic, oc; const char *bname; } mats[] = {
        {"h.*.attn.c_attn.weight", C, 3 * C, "h.*.attn.c_attn.bias"},
        {"h.*.attn.c_proj.weight", C, C, "h.*.attn.c_proj.bias"},
        {"h.*.mlp.c_fc.weight", C, 4 * C, "h.*.mlp.c_fc.bias"},
        {"h.*.mlp.c_proj.weight", 4 * C, C, "h.*.mlp.c_proj.bias"},
    };
    for (int i = 0; i < 4; i++) {
        snprintf(s, sizeof s, "[%d,%d,%d]", L, mats[i].oc, mats[i].ic);
        add(p, mats[i].name, KVGPT_REGION_WEIGHTS, dev, wt, port_wmat_bytes(mats[i].ic, mats[i].oc, o->weight_dtype),
            (size_t)L, 1, 1, s);
        if (c->bias) {
            snprintf(s, sizeof s, "[%d,%d]", L, mats[i].oc);
            add(p, mats[i].bname, KVGPT_REGION_WEIGHTS, dev, "f32", 4, (size_t)L, (size_t)mats[i].oc, 1, s);
        }
    }
    snprintf(s, sizeof s, "[%d]", C);
    add(p, "ln_f.weight", KVGPT_REGION_WEIGHTS, dev, "f32", 4, (size_t)C, 1, 1, s);
    if (c->bias) add(p, "ln_f.bias", KVGPT_REGION_WEIGHTS, dev, "f32", 4, (size_t)C, 1, 1, s);

    /* The KV cache: the full context of every layer for every sequence. */
    size_t kvb = kv_bytes(L, B, H, C / H, ctx, o->kv_dtype);
    if (!kvb) p->n_regions = -1;
    snprintf(s, sizeof s, "[%d,%d,%d,%d,%d]", L, B, H, ctx, C / H);
    add(p, "kv.k", KVGPT_REGION_KV, dev, kt, kvb, 1, 1, 1, s);
    add(p, "kv.v", KVGPT_REGION_KV, dev, kt, kvb, 1, 1, 1, s);

    /* Activations for R rows (a whole window, or one row per sequence). */
    const struct { const char *name; int w; } acts[] = {
        {"act.x", C}, {"act.xn", C}, {"act.qkv", 3 * C}, {"act.att", C}, {"act.fc", 4 * C}};
    for (int i = 0; i < 5; i++) {
        snprintf(s, sizeof s, "[%d,%d]", R, acts[i].w);
        add(p, acts[i].name, KVGPT_REGION_ACTIVATIONS, dev, "f32", 4, (size_t)R, (size_t)acts[i].w, 1, s);
    }
    snprintf(s, sizeof s, "[3,%d]", R);
    add(p, "act.rows", KVGPT_REGION_ACTIVATIONS, dev, "i32", sizeof(int32_t), 3, (size_t)R, 1, s);
    snprintf(s, sizeof s, "[%d,%d]", LR, V);
    add(p, "logits", KVGPT_REGION_ACTIVATIONS, dev, "f32", 4, (size_t)LR, (size_t)V, 1, s);
    size_t ws = port_workspace_bytes(R, ctx, C, o->threads);
    snprintf(s, sizeof s, "[%s]", port_name());
    add(p, "port.workspace", KVGPT_REGION_SCRATCH, dev, "bytes", ws ? ws : 64, 1, 1, 1, s);

    if (!arena_plan_ok(p))
        return kv_fail(err, KVGPT_ERR_NOMEM, "the memory plan overflows (sizes too large for this machine)");
    if (o->arena_limit && p->total[KVGPT_SPACE_HOST] > o->arena_limit)
        return kv_fail(err, KVGPT_ERR_NOMEM, "arena limit: Requested %zu, available %zu, missing %zu bytes",
                       p->total[KVGPT_SPACE_HOST], o->arena_limit, p->total[KVGPT_SPACE_HOST] - o->arena_limit);
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
