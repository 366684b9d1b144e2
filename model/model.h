/* model/model.h — the model as three plain parts, all inside the arena:
 * the config, the weights (pointers into arena regions), and the run state
 * (activations, KV cache, sequences). Internal to the library. */
#ifndef KVGPT_MODEL_H
#define KVGPT_MODEL_H

#include "kvgpt.h"
#include "arena/arena.h"
#include "cache/kv.h"
#include "loader/loader.h"
#include "tokenizer/charvocab.h"
#include "port/port.h"


struct bpe_tokenizer;

/* Weights of all layers: one region per kind, layer l at l × stride. */
typedef struct {
    port_wmat wte;           /* tied lm_head: ic = n_embd, oc = vocab; embedding rows are its columns */
    float *wpe;              /* (ctx, C) */
    float *ln1_w, *ln1_b;    /* (L, C); _b NULL without bias */
    float *ln2_w, *ln2_b;    /* (L, C) */
    float *lnf_w, *lnf_b;    /* (C) */
    port_wmat *attn, *proj, *fc, *mlp_proj;   /* (L) each: C->3C, C->C, C->4C, 4C->C */
    float *attn_b, *proj_b, *fc_b, *mlp_proj_b;  /* (L, 3C) (L, C) (L, 4C) (L, C); NULL without bias */
} model_weights;

/* Activations for up to max_rows rows at once, device space. */
typedef struct {
    int max_rows;
    float *x;                /* (rows, C) residual stream */
    float *xn;               /* (rows, C) normalized / projection output */
    float *qkv;              /* (rows, 3C) */
    float *att;              /* (rows, C) attention output */
    float *fc;               /* (rows, 4C) MLP hidden */
    int32_t *tok, *seq, *pos;    /* (rows) device copies of the row table */
    int32_t *h_tok, *h_seq, *h_pos, *h_last; /* (rows) host row table; rows whose logits are wanted */
    float *logits;           /* (logit_rows, V) device */
    float *h_logits;         /* (logit_rows, V) host (the same memory when the device is the host) */
    int logit_rows;
    void *work;              /* port workspace */
    size_t work_bytes;
} model_state;

struct kvgpt_model {
    kvgpt_config cfg;
    kvgpt_options opt;       /* model_dir is not kept: the caller owns it */
    kvgpt_plan plan;
    arena host;
    void *device_base;       /* device arena (NULL when the device is the host) */
    port *port;
    int ctx, batch, threads;
    model_weights w;
    model_state s;
    kv_cache kv;
    kv_seq *seqs;            /* (batch) */
    void *sample_scratch;    /* 8 * V bytes */
    /* tokenizer: at most one of these */
    cv_vocab *chars;
    struct bpe_tokenizer *bpe;
};

/* Region names shared by plan and open. */
#define MODEL_MAX_ROWS(ctx, batch) ((ctx) > (batch) ? (ctx) : (batch))

/* model/plan.c: the full plan for a config + options; tokenizer sizes given. */
typedef struct {
    int kind;                /* 0 none, 1 char vocab.json, 2 bpe, 3 char meta.pkl */
    size_t table_bytes, file_bytes;
} model_tok_plan;
kvgpt_status model_plan(const kvgpt_config *c, const kvgpt_options *o, size_t st_scratch,
                        const model_tok_plan *tok, kvgpt_plan *out, kvgpt_error *err);

/* Finds a model folder's tokenizer files (GPT-2 BPE pair, else a char
 * vocab.json) into a and b, and what loading them needs. kind 0: none. */
kvgpt_status model_tokenizer_paths(const char *dir, char *a, char *b, size_t cap, model_tok_plan *tp,
                                   int vocab_size, kvgpt_error *err);

/* model.safetensors, else nanoGPT's ckpt.pt (*is_ckpt = 1); neither: the
 * safetensors path, so that opening it names the file that is missing. */
kvgpt_status model_weights_path(const char *dir, char *path, size_t cap, int *is_ckpt, kvgpt_error *err);

/* model/forward.c: computes the rows in m->s.h_tok/h_seq/h_pos [0, n) and the
 * logits of the rows listed in h_last [0, n_logits) into h_logits. */
kvgpt_status model_forward_rows(kvgpt_model *m, int n, int n_logits, kvgpt_error *err);

#endif
