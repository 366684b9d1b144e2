/* model/model.h — the model as three plain parts, all inside the arena:
 * the config, the weights (pointers into arena regions), and the run state
 * (activations, KV cache, sequence slots). Internal to the library. */
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
    port_wmat wte;           /* embedding: ic = n_embd, oc = vocab; a token's row is a column */
    port_wmat *lm_head;      /* &wte when tied, else its own matrix */
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

/* What kvgpt_generate keeps per slot while it runs (model/deliver.c). */
#define GEN_HELD_TOKENS 128
typedef struct {
    uint64_t rng;
    int live;                /* still generating */
    kvgpt_stop_reason why;
    int n_new;
    /* Stop strings: bytes not passed on yet (they may start a match) and the
     * tokens they belong to, each with the byte count after which it ends. */
    unsigned char held[KVGPT_MAX_STOP_LEN];
    int n_held;
    int64_t bytes_in, bytes_out;          /* bytes taken in / passed on so far */
    int32_t held_tok[GEN_HELD_TOKENS];
    int64_t held_end[GEN_HELD_TOKENS];
    int n_held_tok;
    kvgpt_text_state text;
} gen_slot;

struct kvgpt_model {
    kvgpt_config cfg;
    kvgpt_options opt;       /* model_dir is not kept: the caller owns it */
    kvgpt_plan plan;
    arena host;
    void *device_base;       /* device arena (NULL when the device is the host) */
    port *port;
    int ctx, batch, threads;
    model_weights w;
    port_wmat lm_head;       /* an untied lm_head (w.lm_head points here) */
    model_state s;
    kv_cache kv;
    kv_slot *slots;          /* (batch) */
    gen_slot *gen;           /* (batch) */
    void *sample_scratch;    /* model_sampler_scratch_bytes */
    uint64_t fingerprint;    /* of the weights (saved states carry it) */
    int busy;                /* inside a call that runs the host's callbacks */
    kvgpt_abort_fn abort_fn; /* polled once per layer */
    void *abort_user;
    /* tokenizer: at most one of these */
    cv_vocab *chars;
    struct bpe_tokenizer *bpe;
};

#define MODEL_MAX_ROWS(ctx, batch) ((ctx) > (batch) ? (ctx) : (batch))

/* model/regions.c: the full plan for a config + options; tokenizer sizes given. */
typedef struct {
    int kind;                /* 0 none, 1 char vocab.json, 2 bpe, 3 char meta.pkl */
    size_t table_bytes, file_bytes;
} model_tok_plan;
kvgpt_status model_plan(const kvgpt_config *c, const kvgpt_options *o, size_t st_scratch,
                        const model_tok_plan *tok, kvgpt_plan *out, kvgpt_error *err);
/* Where region id lives in an open model (NULL when the plan has none). */
void *model_region(const kvgpt_model *m, kvgpt_region_id id);
/* Bytes of the sampler scratch: a draw needs 8 * V, the penalties 4 * ctx. */
size_t model_sampler_scratch_bytes(int vocab, int ctx);

/* Finds a model folder's tokenizer files (GPT-2 BPE pair, else a char
 * vocab.json) into a and b, and what loading them needs. kind 0: none. */
kvgpt_status model_tokenizer_paths(const char *dir, char *a, char *b, size_t cap, model_tok_plan *tp,
                                   int vocab_size, kvgpt_error *err);

/* model.safetensors, else nanoGPT's ckpt.pt (*is_ckpt = 1); neither: the
 * safetensors path, so that opening it names the file that is missing. */
kvgpt_status model_weights_path(const char *dir, char *path, size_t cap, int *is_ckpt, kvgpt_error *err);

/* model/forward.c: computes the rows in m->s.h_tok/h_seq/h_pos [0, n) and the
 * logits of the rows listed in h_last [0, n_logits) into h_logits rows
 * [first_logit, first_logit + n_logits). KVGPT_ERR_ABORTED when the abort
 * callback asks (the rows' K/V are then partly written, never valid). */
kvgpt_status model_forward_rows(kvgpt_model *m, int n, int n_logits, int first_logit, kvgpt_error *err);
/* At open: lets a backend that records decode graphs (port_graph_record)
 * record one per batch size, 1..batch rows with their logits. */
kvgpt_status model_record_graphs(kvgpt_model *m, kvgpt_error *err);

/* model/decode.c: appends the batch's tokens to their slots and computes
 * every pending token of every slot (those pending before the call first,
 * slot by slot, then the batch's in batch order), in as many forwards as the
 * plan's rows allow. Logits: those of the pending tokens `pending` asks for
 * (in slot order), then those of the batch tokens flagged in want (NULL: the
 * last of each slot in the batch), to out [n_flagged][V] in that order, or,
 * with out NULL, left in h_logits rows 0.. (then at most logit_rows may be flagged).
 * On failure the tokens this call appended and did not compute are dropped;
 * what was computed stays. Checks nothing: callers validate first. */
typedef struct {
    uint64_t last_of;        /* slots whose last pending token's logits are wanted */
    uint64_t all_of;         /* slots whose every pending token's logits are wanted */
} model_pending_logits;
kvgpt_status model_run(kvgpt_model *m, int n, const int32_t *tok, const int32_t *seq, const int8_t *want,
                       model_pending_logits pending, float *out, kvgpt_error *err);
/* Checks a batch as kvgpt_decode promises (ids, slots, room) without running it. */
kvgpt_status model_check_batch(const kvgpt_model *m, int n, const int32_t *tok, const int32_t *seq,
                               kvgpt_error *err);
/* model/seq.c: dst := src (tokens, cached K/V, what is pending). */
kvgpt_status model_seq_copy(kvgpt_model *m, int src, int dst, kvgpt_error *err);
/* KVGPT_ERR_BUSY when a call arrives from inside one of the model's callbacks. */
kvgpt_status model_enter(kvgpt_model *m, const char *what, kvgpt_error *err);

#endif
