/* model/open.c — opening a model: plan, take the one arena, bind every
 * region, read and convert the weights, load the tokenizer, freeze.
 * On any failure everything taken is given back and *out stays NULL. */
#include "model/model.h"
#include "common/status.h"
#include "tokenizer/bpe.h"
#include "loader/ckpt.h"

#include <stdio.h>
#include <string.h>

/* Load-time staging: the safetensors header first, then row buffers. */
typedef struct {
    st_file st;
    float *rows;             /* f32 rows */
    void *raw;               /* the file's bytes of the same rows */
    size_t row_bytes;        /* capacity of each, in bytes */
    const char *dir;
} loading;

/* Finds a tensor; a missing one is named with the config setting that asks for it. */
static kvgpt_status tensor(loading *ld, const char *suffix, int layers, const st_tensor **out, kvgpt_error *err)
{
    *out = st_find(&ld->st, suffix);
    if (*out) return KVGPT_OK;
    size_t n = strlen(suffix);
    if (n > 5 && strcmp(suffix + n - 5, ".bias") == 0)
        return kv_fail(err, KVGPT_ERR_MISSING_TENSOR, "%s: no tensor \"%s\" (config.json says bias true)",
                       ld->st.file.path, suffix);
    if (layers)
        return kv_fail(err, KVGPT_ERR_MISSING_TENSOR, "%s: no tensor \"%s\" (config.json says n_layer %d)",
                       ld->st.file.path, suffix, layers);
    return kv_fail(err, KVGPT_ERR_MISSING_TENSOR, "%s: no tensor \"%s\"", ld->st.file.path, suffix);
}

/* FNV-1a over bytes: the weights' fingerprint saved states carry. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static kvgpt_status expect_shape(loading *ld, const st_tensor *t, const char *name, int ndim, int64_t d0,
                                 int64_t d1, kvgpt_error *err)
{
    int ok = t->ndim == ndim && t->shape[0] == d0 && (ndim < 2 || t->shape[1] == d1);
    if (ok) return KVGPT_OK;
    char got[96] = "[";
    for (int i = 0; i < t->ndim && strlen(got) < 70; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "", (long long)t->shape[i]);
    strcat(got, "]");
    if (ndim == 1)
        return kv_fail(err, KVGPT_ERR_SHAPE, "%s: tensor \"%s\" has shape %s; the config needs [%lld]",
                       ld->st.file.path, name, got, (long long)d0);
    return kv_fail(err, KVGPT_ERR_SHAPE, "%s: tensor \"%s\" has shape %s; the config needs [%lld,%lld]",
                   ld->st.file.path, name, got, (long long)d0, (long long)d1);
}

/* Reads rows [0, n_rows) of a tensor in chunks, handing each to put(). */
typedef kvgpt_status (*rows_fn)(kvgpt_model *m, void *dst, size_t r0, size_t n, const float *rows, size_t len);

static kvgpt_status stream_rows(kvgpt_model *m, loading *ld, const st_tensor *t, size_t n_rows, size_t len,
                                rows_fn put, void *dst, kvgpt_error *err)
{
    size_t chunk = ld->row_bytes / (len * sizeof(float));
    if (chunk == 0) return kv_fail(err, KVGPT_ERR_NOMEM, "load staging smaller than one row");
    for (size_t r = 0; r < n_rows; r += chunk) {
        size_t n = n_rows - r < chunk ? n_rows - r : chunk;
        kvgpt_status s = st_read_rows(&ld->st, t, r, n, len, ld->rows, ld->raw, err);
        if (s) return s;
        if ((s = put(m, dst, r, n, ld->rows, len))) {
            /* The backend recorded why; port_sync reports it. */
            kvgpt_status why = port_sync(m->port, err);
            return why ? why : kv_fail(err, s, "%s: storing tensor \"%.*s\" failed", ld->st.file.path,
                                       (int)t->name_len, t->name);
        }
    }
    return KVGPT_OK;
}

static kvgpt_status put_in(kvgpt_model *m, void *dst, size_t r0, size_t n, const float *rows, size_t len)
{
    (void)len;
    return port_wmat_rows_in(m->port, dst, (int)r0, (int)n, rows);
}

static kvgpt_status put_out(kvgpt_model *m, void *dst, size_t r0, size_t n, const float *rows, size_t len)
{
    (void)len;
    return port_wmat_rows_out(m->port, dst, (int)r0, (int)n, rows);
}

static kvgpt_status put_plain(kvgpt_model *m, void *dst, size_t r0, size_t n, const float *rows, size_t len)
{
    return port_upload(m->port, (float *)dst + r0 * len, rows, n * len * sizeof(float));
}

/* A weight matrix ic -> oc: HF Conv1D stores [ic, oc], nanoGPT nn.Linear [oc, ic]. */
static kvgpt_status load_matrix(kvgpt_model *m, loading *ld, const char *name, port_wmat *w, kvgpt_error *err)
{
    const st_tensor *t;
    kvgpt_status s = tensor(ld, name, m->cfg.n_layer, &t, err);
    if (s) return s;
    int hf = m->cfg.hf_layout;
    if ((s = expect_shape(ld, t, name, 2, hf ? w->ic : w->oc, hf ? w->oc : w->ic, err))) return s;
    s = hf ? stream_rows(m, ld, t, (size_t)w->ic, (size_t)w->oc, put_in, w, err)
           : stream_rows(m, ld, t, (size_t)w->oc, (size_t)w->ic, put_out, w, err);
    return s ? s : port_wmat_finish(m->port, w);
}

/* A 1-D tensor (LayerNorm, bias); each also goes into the fingerprint. */
static kvgpt_status load_vector(kvgpt_model *m, loading *ld, const char *name, float *dst, int n, kvgpt_error *err)
{
    const st_tensor *t;
    kvgpt_status s = tensor(ld, name, m->cfg.n_layer, &t, err);
    if (!s) s = expect_shape(ld, t, name, 1, n, 0, err);
    if (!s) s = stream_rows(m, ld, t, 1, (size_t)n, put_plain, dst, err);
    if (!s) m->fingerprint = fnv1a(m->fingerprint, ld->rows, (size_t)n * sizeof(float));
    return s;
}

/* The file's lm_head.weight, wherever its name puts it; NULL when absent. */
static const st_tensor *find_lm_head(const loading *ld)
{
    const st_tensor *head = st_find(&ld->st, "lm_head.weight");
    static const char *const bare = "lm_head.weight";   /* nanoGPT keeps it outside "transformer." */
    for (size_t i = 0; !head && i < ld->st.n_tensors; i++) {
        const st_tensor *t = &ld->st.tensors[i];
        if (t->name_len >= strlen(bare) && memcmp(t->name + t->name_len - strlen(bare), bare, strlen(bare)) == 0)
            head = t;
    }
    return head;
}

/* A tied model whose file also carries lm_head.weight: it must be wte's
 * copy (nanoGPT saves both names); another matrix would be ignored. */
static kvgpt_status check_tied_head(kvgpt_model *m, loading *ld, const st_tensor *wte, const st_tensor *head,
                                    kvgpt_error *err)
{
    int V = m->cfg.vocab_size, C = m->cfg.n_embd;
    kvgpt_status s = expect_shape(ld, head, "lm_head.weight (tied to wte)", 2, V, C, err);
    if (s || (head->begin == wte->begin && head->end == wte->end && head->dtype == wte->dtype)) return s;
    size_t half = ld->row_bytes / 2, chunk = half / ((size_t)C * sizeof(float));
    if (chunk == 0) return kv_fail(err, KVGPT_ERR_NOMEM, "load staging smaller than two rows");
    float *a = ld->rows, *b = (float *)(void *)((char *)ld->rows + half);
    for (size_t r = 0; r < (size_t)V; r += chunk) {
        size_t n = (size_t)V - r < chunk ? (size_t)V - r : chunk;
        if ((s = st_read_rows(&ld->st, wte, r, n, (size_t)C, a, ld->raw, err)) ||
            (s = st_read_rows(&ld->st, head, r, n, (size_t)C, b, ld->raw, err)))
            return s;
        if (memcmp(a, b, n * (size_t)C * sizeof(float)) != 0)
            return kv_fail(err, KVGPT_ERR_SHAPE,
                           "%s: lm_head.weight differs from wte.weight (row %zu and after) but config.json does not "
                           "say \"tie_word_embeddings\": false",
                           ld->st.file.path, r);
    }
    return KVGPT_OK;
}

static kvgpt_status load_weights(kvgpt_model *m, loading *ld, kvgpt_error *err)
{
    const kvgpt_config *c = &m->cfg;
    model_weights *w = &m->w;
    int C = c->n_embd, V = c->vocab_size;
    const st_tensor *t;
    kvgpt_status s;
    m->fingerprint = fnv1a(0xcbf29ce484222325ull, c, sizeof *c);
    /* Embeddings are [V, C] and [block_size, C] in both layouts. */
    const st_tensor *wte;
    if ((s = tensor(ld, "wte.weight", 0, &wte, err)) || (s = expect_shape(ld, wte, "wte.weight", 2, V, C, err)) ||
        (s = stream_rows(m, ld, wte, (size_t)V, (size_t)C, put_out, &w->wte, err)) ||
        (s = port_wmat_finish(m->port, &w->wte)))
        return s;
    if ((s = tensor(ld, "wpe.weight", 0, &t, err)) ||
        (s = expect_shape(ld, t, "wpe.weight", 2, c->block_size, C, err)) ||
        (s = stream_rows(m, ld, t, (size_t)m->ctx, (size_t)C, put_plain, w->wpe, err)))
        return s;
    char name[128];
    for (int l = 0; l < c->n_layer; l++) {
        struct { const char *suffix; float *dst; int n; } vecs[] = {
            {"ln_1.weight", w->ln1_w + (size_t)l * C, C},
            {"ln_1.bias", w->ln1_b ? w->ln1_b + (size_t)l * C : NULL, C},
            {"ln_2.weight", w->ln2_w + (size_t)l * C, C},
            {"ln_2.bias", w->ln2_b ? w->ln2_b + (size_t)l * C : NULL, C},
            {"attn.c_attn.bias", w->attn_b ? w->attn_b + (size_t)l * 3 * C : NULL, 3 * C},
            {"attn.c_proj.bias", w->proj_b ? w->proj_b + (size_t)l * C : NULL, C},
            {"mlp.c_fc.bias", w->fc_b ? w->fc_b + (size_t)l * 4 * C : NULL, 4 * C},
            {"mlp.c_proj.bias", w->mlp_proj_b ? w->mlp_proj_b + (size_t)l * C : NULL, C},
        };
        for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
            if (!vecs[i].dst) continue;
            snprintf(name, sizeof name, "h.%d.%s", l, vecs[i].suffix);
            if ((s = load_vector(m, ld, name, vecs[i].dst, vecs[i].n, err))) return s;
        }
        struct { const char *suffix; port_wmat *w; } mats[] = {
            {"attn.c_attn.weight", &w->attn[l]}, {"attn.c_proj.weight", &w->proj[l]},
            {"mlp.c_fc.weight", &w->fc[l]},      {"mlp.c_proj.weight", &w->mlp_proj[l]},
        };
        for (size_t i = 0; i < 4; i++) {
            snprintf(name, sizeof name, "h.%d.%s", l, mats[i].suffix);
            if ((s = load_matrix(m, ld, name, mats[i].w, err))) return s;
        }
    }
    /* A config with fewer layers than the file is as wrong as one with more. */
    snprintf(name, sizeof name, "h.%d.ln_1.weight", c->n_layer);
    if (st_find(&ld->st, name))
        return kv_fail(err, KVGPT_ERR_SHAPE, "%s: has a tensor \"%s\" but config.json says n_layer %d",
                       ld->st.file.path, name, c->n_layer);
    if ((s = load_vector(m, ld, "ln_f.weight", w->lnf_w, C, err))) return s;
    if (w->lnf_b && (s = load_vector(m, ld, "ln_f.bias", w->lnf_b, C, err))) return s;
    if (!c->bias && st_find(&ld->st, "ln_f.bias"))
        return kv_fail(err, KVGPT_ERR_SHAPE, "%s: has biases but config.json says bias false", ld->st.file.path);
    const st_tensor *head = find_lm_head(ld);
    if (!c->lm_head_untied) return head ? check_tied_head(m, ld, wte, head, err) : KVGPT_OK;
    if (!head)
        return kv_fail(err, KVGPT_ERR_MISSING_TENSOR,
                       "%s: no tensor \"lm_head.weight\" (config.json says \"tie_word_embeddings\": false)",
                       ld->st.file.path);
    /* [vocab, n_embd] in both layouts, as nn.Linear stores it. */
    if ((s = expect_shape(ld, head, "lm_head.weight", 2, V, C, err)) ||
        (s = stream_rows(m, ld, head, (size_t)V, (size_t)C, put_out, w->lm_head, err)))
        return s;
    return port_wmat_finish(m->port, w->lm_head);
}

/* Binds every region of the plan to the model's pointers; a region the
 * config needs that the plan lacks is an error, not a NULL taken for "no bias". */
static kvgpt_status bind(kvgpt_model *m, kvgpt_error *err)
{
    const kvgpt_config *c = &m->cfg;
    int L = c->n_layer, C = c->n_embd, V = c->vocab_size;
    kvgpt_dtype wd = m->opt.weight_dtype;
    model_weights *w = &m->w;
    model_state *s = &m->s;
    static const kvgpt_region_id need[] = {
        KVGPT_R_MODEL, KVGPT_R_PORT, KVGPT_R_WMATS, KVGPT_R_SLOTS, KVGPT_R_SLOT_TOKENS, KVGPT_R_GEN,
        KVGPT_R_ROWS_HOST, KVGPT_R_SAMPLER, KVGPT_R_LOAD_SCRATCH, KVGPT_R_WTE, KVGPT_R_WPE, KVGPT_R_LN1_W,
        KVGPT_R_LN2_W, KVGPT_R_ATTN_W, KVGPT_R_PROJ_W, KVGPT_R_FC_W, KVGPT_R_MLP_PROJ_W, KVGPT_R_LNF_W,
        KVGPT_R_KV_K, KVGPT_R_KV_V, KVGPT_R_ACT_X, KVGPT_R_ACT_XN, KVGPT_R_ACT_QKV, KVGPT_R_ACT_ATT,
        KVGPT_R_ACT_FC, KVGPT_R_ACT_ROWS, KVGPT_R_LOGITS, KVGPT_R_PORT_WORK};
    static const kvgpt_region_id biases[] = {KVGPT_R_LN1_B, KVGPT_R_LN2_B, KVGPT_R_ATTN_B, KVGPT_R_PROJ_B,
                                             KVGPT_R_FC_B, KVGPT_R_MLP_PROJ_B, KVGPT_R_LNF_B};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (!model_region(m, need[i])) return kv_fail(err, KVGPT_ERR_ARG, "the plan has no region %d", (int)need[i]);
    for (size_t i = 0; c->bias && i < sizeof biases / sizeof biases[0]; i++)
        if (!model_region(m, biases[i])) return kv_fail(err, KVGPT_ERR_ARG, "the plan has no bias region %d", (int)biases[i]);
    if ((c->lm_head_untied && !model_region(m, KVGPT_R_LM_HEAD)) ||
        (!port_device_is_host() && !model_region(m, KVGPT_R_LOGITS_HOST)))
        return kv_fail(err, KVGPT_ERR_ARG, "the plan lacks the lm_head or host logits region");

    m->slots = model_region(m, KVGPT_R_SLOTS);
    m->gen = model_region(m, KVGPT_R_GEN);
    w->attn = model_region(m, KVGPT_R_WMATS);
    w->proj = w->attn + L;
    w->fc = w->proj + L;
    w->mlp_proj = w->fc + L;

    port_wmat_bind(&w->wte, model_region(m, KVGPT_R_WTE), C, V, wd);
    w->lm_head = &w->wte;
    if (c->lm_head_untied) {
        w->lm_head = &m->lm_head;
        port_wmat_bind(w->lm_head, model_region(m, KVGPT_R_LM_HEAD), C, V, wd);
    }
    w->wpe = model_region(m, KVGPT_R_WPE);
    w->ln1_w = model_region(m, KVGPT_R_LN1_W);
    w->ln1_b = model_region(m, KVGPT_R_LN1_B);
    w->ln2_w = model_region(m, KVGPT_R_LN2_W);
    w->ln2_b = model_region(m, KVGPT_R_LN2_B);
    w->lnf_w = model_region(m, KVGPT_R_LNF_W);
    w->lnf_b = model_region(m, KVGPT_R_LNF_B);
    w->attn_b = model_region(m, KVGPT_R_ATTN_B);
    w->proj_b = model_region(m, KVGPT_R_PROJ_B);
    w->fc_b = model_region(m, KVGPT_R_FC_B);
    w->mlp_proj_b = model_region(m, KVGPT_R_MLP_PROJ_B);
    char *attn = model_region(m, KVGPT_R_ATTN_W), *proj = model_region(m, KVGPT_R_PROJ_W);
    char *fc = model_region(m, KVGPT_R_FC_W), *mp = model_region(m, KVGPT_R_MLP_PROJ_W);
    for (int l = 0; l < L; l++) {
        port_wmat_bind(&w->attn[l], attn + (size_t)l * port_wmat_bytes(C, 3 * C, wd), C, 3 * C, wd);
        port_wmat_bind(&w->proj[l], proj + (size_t)l * port_wmat_bytes(C, C, wd), C, C, wd);
        port_wmat_bind(&w->fc[l], fc + (size_t)l * port_wmat_bytes(C, 4 * C, wd), C, 4 * C, wd);
        port_wmat_bind(&w->mlp_proj[l], mp + (size_t)l * port_wmat_bytes(4 * C, C, wd), 4 * C, C, wd);
    }
    kv_bind(&m->kv, model_region(m, KVGPT_R_KV_K), model_region(m, KVGPT_R_KV_V), m->opt.kv_dtype, L, m->batch,
            c->n_head, C / c->n_head, m->ctx);

    s->max_rows = MODEL_MAX_ROWS(m->ctx, m->batch);
    s->logit_rows = (int)(kvgpt_plan_region(&m->plan, KVGPT_R_LOGITS)->bytes / ((size_t)V * sizeof(float)));
    s->x = model_region(m, KVGPT_R_ACT_X);
    s->xn = model_region(m, KVGPT_R_ACT_XN);
    s->qkv = model_region(m, KVGPT_R_ACT_QKV);
    s->att = model_region(m, KVGPT_R_ACT_ATT);
    s->fc = model_region(m, KVGPT_R_ACT_FC);
    int32_t *rows = model_region(m, KVGPT_R_ACT_ROWS);
    s->tok = rows;
    s->seq = rows + s->max_rows;
    s->pos = rows + 2 * s->max_rows;
    int32_t *h = model_region(m, KVGPT_R_ROWS_HOST);
    s->h_tok = h;
    s->h_seq = h + s->max_rows;
    s->h_pos = h + 2 * s->max_rows;
    s->h_last = h + 3 * s->max_rows;
    s->logits = model_region(m, KVGPT_R_LOGITS);
    s->h_logits = port_device_is_host() ? s->logits : model_region(m, KVGPT_R_LOGITS_HOST);
    s->work = model_region(m, KVGPT_R_PORT_WORK);
    s->work_bytes = kvgpt_plan_region(&m->plan, KVGPT_R_PORT_WORK)->bytes;
    m->sample_scratch = model_region(m, KVGPT_R_SAMPLER);
    int32_t *tokens = model_region(m, KVGPT_R_SLOT_TOKENS);
    for (int b = 0; b < m->batch; b++) kv_slot_init(&m->slots[b], tokens + (size_t)b * m->ctx, m->ctx);
    return port_init(&m->port, model_region(m, KVGPT_R_PORT), m->device_base, m->plan.total[KVGPT_SPACE_DEVICE],
                     s->work, s->work_bytes, &m->opt, err);
}

static KV_NOINLINE kvgpt_status load_tokenizer(kvgpt_model *m, void *scratch, size_t scratch_bytes, kvgpt_error *err)
{
    char a[LOADER_PATH_MAX], b[LOADER_PATH_MAX];
    model_tok_plan tp;
    kvgpt_status s = model_tokenizer_paths(m->opt.model_dir, a, b, sizeof a, &tp, m->cfg.vocab_size, err);
    if (s || tp.kind == 0) return s;
    const kvgpt_region *r = kvgpt_plan_region(&m->plan, KVGPT_R_TOKENIZER);
    if (!r || r->bytes < tp.table_bytes || scratch_bytes < tp.file_bytes)
        return kv_fail(err, KVGPT_ERR_VOCAB, "%s: tokenizer files changed since the plan was made", a);
    char *mem = model_region(m, KVGPT_R_TOKENIZER);
    if (tp.kind == 2) {
        if ((s = bpe_load(mem, tp.table_bytes, scratch, scratch_bytes, a, b, m->cfg.vocab_size, &m->bpe, err)))
            return s;
        int eot = bpe_eot_token(m->bpe);
        if (eot >= 0) m->cfg.eot_token = eot;
        return KVGPT_OK;
    }
    m->chars = (cv_vocab *)mem;
    char *tables = mem + ((sizeof(cv_vocab) + 63) & ~(size_t)63);
    return (tp.kind == 3 ? cv_load_meta : cv_load)(m->chars, a, m->cfg.vocab_size, scratch, scratch_bytes, tables,
                                                   tp.table_bytes - (size_t)(tables - mem), err);
}

/* The weights file: its header into the load scratch, then every tensor
 * through the rest of it into place. */
static KV_NOINLINE kvgpt_status load_file(kvgpt_model *m, const char *dir, char *scratch, size_t scratch_bytes,
                                          kvgpt_error *err)
{
    loading ld;
    memset(&ld, 0, sizeof ld);
    ld.st.file.fd = -1;
    char path[LOADER_PATH_MAX];
    size_t st_scratch = 0;
    int is_ckpt = 0;
    kvgpt_status s;
    if (!(s = model_weights_path(dir, path, sizeof path, &is_ckpt, err)) &&
        !(s = is_ckpt ? ckpt_open(&ld.st, path, &st_scratch, NULL, err) : st_open(&ld.st, path, &st_scratch, err))) {
        if (st_scratch > scratch_bytes) {
            s = kv_fail(err, is_ckpt ? KVGPT_ERR_CKPT : KVGPT_ERR_ST_HEADER, "%s: changed since the plan was made",
                        path);
        } else if (!(s = is_ckpt ? ckpt_parse(&ld.st, scratch, st_scratch, err)
                                 : st_parse(&ld.st, scratch, st_scratch, err))) {
            size_t left = scratch_bytes - st_scratch;
            ld.row_bytes = (left / 2) & ~(size_t)63;
            ld.rows = (float *)(void *)(scratch + st_scratch + (64 - (uintptr_t)(scratch + st_scratch) % 64) % 64);
            ld.row_bytes = ld.row_bytes > 64 ? ld.row_bytes - 64 : 0;
            ld.raw = (char *)ld.rows + ld.row_bytes;
            s = load_weights(m, &ld, err);
            if (!s) s = st_read_done(&ld.st, err);   /* a checkpoint's last storage: the rest of its CRC */
        }
        st_close(&ld.st);
    }
    return s;
}

/* Touches every page of the host arena that loading did not write (the KV
 * cache, activations, scratch): with overcommit, an untouched page could still
 * fail when generation first writes it. After this, nothing can. */
static void prefault(kvgpt_model *m)
{
    for (int i = 0; i < m->plan.n_regions; i++) {
        const kvgpt_region *r = &m->plan.regions[i];
        if (r->space != KVGPT_SPACE_HOST || r->kind == KVGPT_REGION_STATE || r->kind == KVGPT_REGION_WEIGHTS ||
            r->kind == KVGPT_REGION_TOKENIZER)
            continue;
        memset(arena_region(&m->host, &m->plan, i), 0, r->bytes + r->layout_bytes);
    }
}

kvgpt_status kvgpt_open(const kvgpt_options *o, void *mem, size_t mem_bytes, kvgpt_model **out, kvgpt_error *err)
{
    if (!out) return kv_fail(err, KVGPT_ERR_ARG, "kvgpt_open: out is NULL");
    *out = NULL;
    kvgpt_plan plan;
    kvgpt_status s = kvgpt_plan_model(o, &plan, err);
    if (s) return s;
    arena host;
    if ((s = arena_open(&host, &plan, mem, mem_bytes, err))) return s;
    void *dev = NULL;
    if (plan.total[KVGPT_SPACE_DEVICE] && (s = port_device_arena(&dev, plan.total[KVGPT_SPACE_DEVICE], err))) {
        arena_close(&host);
        return s;
    }
    kvgpt_model *m = arena_region(&host, &plan, arena_plan_find(&plan, KVGPT_R_MODEL));
    memset(m, 0, sizeof *m);
    m->plan = plan;
    m->host = host;
    m->device_base = dev;
    m->opt = *o;
    m->ctx = plan.context;
    m->batch = plan.batch;
    m->cfg = plan.config;

    int li = arena_plan_find(&plan, KVGPT_R_LOAD_SCRATCH);
    char *scratch = arena_region(&host, &plan, li);
    size_t scratch_bytes = plan.regions[li].bytes;
    s = bind(m, err);
    if (!s) s = load_file(m, o->model_dir, scratch, scratch_bytes, err);
    if (!s && !o->no_tokenizer) s = load_tokenizer(m, scratch, scratch_bytes, err);
    if (!s) prefault(m);
    /* A device port pins the host arena (its copies then go asynchronously,
     * and into graphs) and records its decode graphs; the CPU port does neither. */
    if (!s) s = port_host_memory(m->port, m->host.base, m->host.size, err);
    if (!s) s = model_record_graphs(m, err);
    if (!s) s = port_sync(m->port, err);
    if (!s) s = port_start(m->port, err);   /* last: a failed open leaves no thread behind */
    if (s) {
        if (m->port) port_shutdown(m->port);
        if (dev) port_device_arena_free(dev);
        arena a = m->host;   /* m lives in the arena: nothing of it is touched after this */
        arena_close(&a);
        return s;
    }
    m->threads = port_threads(m->port);
    m->plan.threads = m->threads;   /* those the system allowed */
    m->opt.model_dir = NULL;   /* the caller owns the string */
    *out = m;
    return KVGPT_OK;
}

void kvgpt_close(kvgpt_model *m)
{
    if (!m) return;
    port_shutdown(m->port);
    if (m->device_base) port_device_arena_free(m->device_base);
    arena a = m->host;   /* m lives inside it */
    arena_close(&a);
}

const kvgpt_config *kvgpt_model_config(const kvgpt_model *m) { return &m->cfg; }
const kvgpt_plan *kvgpt_model_plan(const kvgpt_model *m) { return &m->plan; }
size_t kvgpt_model_arena_used(const kvgpt_model *m) { return m->host.size; }
int kvgpt_has_tokenizer(const kvgpt_model *m) { return m->chars || m->bpe; }
