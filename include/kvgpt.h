/* kvgpt.h — the whole public API of kvgpt: GPT-2-family inference with a KV
 * cache, from one memory arena sized at open.
 *
 * Life of a model:
 *   kvgpt_options o; kvgpt_options_default(&o); o.model_dir = "models/gpt2";
 *   kvgpt_plan plan;  kvgpt_plan_model(&o, &plan, &err);   // sizes, no weights read
 *   kvgpt_model *m;   kvgpt_open(&o, NULL, 0, &m, &err);    // ONE allocation (or your memory)
 *   kvgpt_generate(m, prompt, n, &g, &result, &err);        // allocates nothing
 *   kvgpt_close(m);
 *
 * Sequences: a model opened with batch B holds B sequence slots 0..B-1. A
 * slot keeps its tokens and their keys/values between calls until the host
 * resets, truncates, copies, shifts or loads it. kvgpt_decode is the step
 * (tokens tagged by slot, one forward for all); kvgpt_generate is a loop
 * over it (prompts, sampling, window policy, stop conditions).
 *
 * Ownership: the caller owns everything it passes in; the library keeps no
 * pointer it was not given to keep. When kvgpt_open is given memory, that
 * memory holds the whole model (the kvgpt_model struct included) until
 * kvgpt_close, and the library never touches memory outside it.
 *
 * Thread safety: no global mutable state. Distinct models may be used from
 * distinct threads at once. One model must not be used by two threads at once.
 * kvgpt_strerror and the plan functions are reentrant.
 *
 * Errors: every function that can fail returns a kvgpt_status (KVGPT_OK is 0)
 * and, when given a kvgpt_error, fills its message naming the file and what is
 * wrong. The library never exits or aborts, not even when the system refuses
 * it a thread (the model then runs on fewer: kvgpt_model_plan(m)->threads).
 *
 * Stack: a host thread that calls the library needs 64 KiB of stack for any
 * call (tests/test_host.c). The library's own threads (options.threads - 1 of
 * them, started by kvgpt_open, and again by the first call from another host
 * thread: OpenMP keeps one pool per host thread) get OMP_STACKSIZE or the
 * system's default; the plan names their count and stack, not arena memory.
 *
 * Portability: one libkvgpt.a runs on every CPU of its architecture; the
 * fastest kernels this CPU runs are chosen at open (options.cpu_kernels).
 * Only kvgpt_* symbols are global in it.
 */
#ifndef KVGPT_H
#define KVGPT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KVGPT_VERSION "0.1.0"

typedef enum {
    KVGPT_OK = 0,
    KVGPT_ERR_ARG,            /* a bad option or argument value */
    KVGPT_ERR_IO,             /* a file cannot be opened or read */
    KVGPT_ERR_NOMEM,          /* the arena does not fit the limit, or the system refused it */
    KVGPT_ERR_JSON,           /* a JSON file is malformed (syntax, nesting, type) */
    KVGPT_ERR_CONFIG,         /* config.json is missing a field or has an impossible value */
    KVGPT_ERR_ST_HEADER,      /* safetensors: empty, truncated or absurd header */
    KVGPT_ERR_ST_TENSOR,      /* safetensors: a tensor entry is malformed (dtype, shape, offsets) */
    KVGPT_ERR_MISSING_TENSOR, /* a tensor the config needs is absent */
    KVGPT_ERR_SHAPE,          /* a tensor's shape disagrees with the config */
    KVGPT_ERR_VOCAB,          /* a tokenizer file is malformed or disagrees with the model */
    KVGPT_ERR_TOKEN,          /* a token id out of range, or text the vocabulary cannot encode */
    KVGPT_ERR_PROMPT,         /* the prompt is empty or longer than the context allows */
    KVGPT_ERR_CONTEXT_FULL,   /* window policy `stop`: the context is full */
    KVGPT_ERR_UNSUPPORTED,    /* a feature this build or this file does not support */
    KVGPT_ERR_BACKEND,        /* the compute backend failed (e.g. no GPU) */
    KVGPT_ERR_CKPT,           /* a nanoGPT ckpt.pt / meta.pkl is malformed or not allowed */
    KVGPT_ERR_BUSY,           /* a call on a model from inside one of that model's callbacks */
    KVGPT_ERR_ABORTED,        /* the host's should_abort / abort callback asked to stop */
    KVGPT_ERR_NUMERIC,        /* the model produced NaN or infinite logits */
    KVGPT_ERR_STATE,          /* a saved sequence state is truncated, corrupted or of another model */
    KVGPT_STATUS_COUNT
} kvgpt_status;

/* Name of a status ("KVGPT_ERR_IO: cannot open or read a file"). Never NULL. */
const char *kvgpt_strerror(kvgpt_status s);

/* Detailed message of the last failure of a call that was given this struct. */
typedef struct {
    kvgpt_status status;
    char msg[512];
} kvgpt_error;

typedef enum { KVGPT_DTYPE_F32 = 0, KVGPT_DTYPE_F16, KVGPT_DTYPE_BF16 } kvgpt_dtype;
typedef enum { KVGPT_GELU_CONFIG = 0, KVGPT_GELU_ERF, KVGPT_GELU_TANH } kvgpt_gelu;

/* The model hyper-parameters as read from config.json. */
typedef struct {
    int n_layer, n_head, n_embd, block_size, vocab_size;
    int bias;            /* LayerNorm and Linear biases present */
    int hf_layout;       /* HuggingFace Conv1D [in,out] tensors (else nanoGPT nn.Linear [out,in]) */
    kvgpt_gelu gelu;     /* ERF (nanoGPT) or TANH (gelu_new) */
    float ln_eps;
    int eot_token;       /* end-of-text id, -1 when the vocabulary has none */
    int lm_head_untied;  /* 1: lm_head.weight is a matrix of its own (HF "tie_word_embeddings":
                            false); 0 (GPT-2, nanoGPT): lm_head is wte */
} kvgpt_config;

/* Standard GPT-2 shapes, for planning and synthesizing without files. */
typedef enum { KVGPT_SHAPE_NONE = 0, KVGPT_SHAPE_GPT2, KVGPT_SHAPE_GPT2_MEDIUM,
               KVGPT_SHAPE_GPT2_LARGE, KVGPT_SHAPE_GPT2_XL } kvgpt_shape;
kvgpt_status kvgpt_shape_config(kvgpt_shape shape, kvgpt_config *out);
/* "gpt2", "gpt2-medium", ... → shape; KVGPT_SHAPE_NONE when unknown. */
kvgpt_shape kvgpt_shape_from_name(const char *name);

typedef struct {
    const char *model_dir;   /* folder with config.json + model.safetensors [+ tokenizer] */
    int batch;               /* sequences decoded together; default 1 */
    int context;             /* positions kept per sequence; 0 = block_size; at most block_size */
    kvgpt_dtype weight_dtype;/* internal weight dtype; default F32 */
    kvgpt_dtype kv_dtype;    /* KV cache dtype; default F32 */
    kvgpt_gelu gelu;         /* override the config's activation; default CONFIG */
    int threads;             /* CPU threads; 0 = every processor this process may run on (or
                                OMP_NUM_THREADS, when fewer); more than those: capped to them;
                                < 0: KVGPT_ERR_ARG. A thread the system refuses at open (a pids
                                limit, ulimit -u or -v) makes the team smaller. The plan's
                                threads say how many (kvgpt_model_plan(m) for an open model) */
    int adapt_threads;       /* 1 (default): a decode step may run on one thread while the
                                machine is so busy that all of them are slower (measured as
                                it goes; the tokens are bitwise the same either way) */
    int logits_all;          /* room for the logits of a whole window in one forward */
    int logit_rows;          /* room for this many logit rows per forward (at least batch; more
                                are computed in turns); default 0: batch; logits_all: the window */
    int no_tokenizer;        /* do not load tokenizer files even if present */
    size_t arena_limit;      /* refuse a plan larger than this; 0 = no limit */
    const char *cpu_kernels; /* CPU kernel set: NULL, "" or "auto" = the fastest this CPU runs
                                (unless the environment's KVGPT_CPU_KERNELS names one), else
                                "portable" (every CPU of the architecture), "avx2", "avx512"
                                (x86-64); one the build or the CPU lacks: KVGPT_ERR_UNSUPPORTED */
} kvgpt_options;

void kvgpt_options_default(kvgpt_options *o);

/* ---- The memory plan ---------------------------------------------------- */

#define KVGPT_PLAN_MAX_REGIONS KVGPT_REGION_ID_COUNT

typedef enum { KVGPT_SPACE_HOST = 0, KVGPT_SPACE_DEVICE } kvgpt_space;

typedef enum {
    KVGPT_REGION_STATE = 0,  /* the model struct, sequences, row tables */
    KVGPT_REGION_WEIGHTS,
    KVGPT_REGION_KV,
    KVGPT_REGION_ACTIVATIONS,
    KVGPT_REGION_SCRATCH,    /* load staging, sampler, backend workspace */
    KVGPT_REGION_TOKENIZER,
    KVGPT_REGION_KIND_COUNT
} kvgpt_region_kind;

/* Every region a plan may hold, by what it is for. */
typedef enum {
    KVGPT_R_MODEL = 0,       /* the model struct */
    KVGPT_R_PORT,            /* the backend's struct */
    KVGPT_R_WMATS,           /* the per-layer weight matrix descriptors */
    KVGPT_R_SLOTS,           /* per sequence slot: how many tokens it holds, how many are cached */
    KVGPT_R_SLOT_TOKENS,     /* [batch, context] the tokens each slot holds */
    KVGPT_R_GEN,             /* per slot: generation state (held text for stop strings, counters) */
    KVGPT_R_ROWS_HOST,       /* the row table of a forward */
    KVGPT_R_SAMPLER,         /* sampler and penalty scratch */
    KVGPT_R_LOGITS_HOST,     /* logits copied back from a device (device ports only) */
    KVGPT_R_TOKENIZER,       /* BPE or char vocabulary tables */
    KVGPT_R_LOAD_SCRATCH,    /* file headers and row staging at open; the encoder's work space after */
    KVGPT_R_WTE, KVGPT_R_WPE,
    KVGPT_R_LN1_W, KVGPT_R_LN1_B, KVGPT_R_LN2_W, KVGPT_R_LN2_B,
    KVGPT_R_ATTN_W, KVGPT_R_ATTN_B, KVGPT_R_PROJ_W, KVGPT_R_PROJ_B,
    KVGPT_R_FC_W, KVGPT_R_FC_B, KVGPT_R_MLP_PROJ_W, KVGPT_R_MLP_PROJ_B,
    KVGPT_R_LNF_W, KVGPT_R_LNF_B,
    KVGPT_R_LM_HEAD,         /* an untied lm_head only */
    KVGPT_R_KV_K, KVGPT_R_KV_V,
    KVGPT_R_ACT_X, KVGPT_R_ACT_XN, KVGPT_R_ACT_QKV, KVGPT_R_ACT_ATT, KVGPT_R_ACT_FC,
    KVGPT_R_ACT_ROWS,        /* the row table, device copy */
    KVGPT_R_LOGITS,
    KVGPT_R_PORT_WORK,       /* the backend's workspace */
    KVGPT_REGION_ID_COUNT
} kvgpt_region_id;

typedef struct {
    kvgpt_region_id id;
    char name[40];           /* e.g. "h.*.attn.c_attn.weight", "kv.k" */
    char shape[48];          /* e.g. "[12,2304,768]" */
    char type[8];            /* "f32", "f16", "bf16", "i32" or "bytes" */
    kvgpt_region_kind kind;
    kvgpt_space space;
    size_t bytes;            /* exactly the shape's elements x the type's size */
    size_t layout_bytes;     /* what the backend's layout adds (packing padding, scales) */
    size_t offset;           /* from the start of its space's arena, 64-byte aligned */
} kvgpt_region;

typedef struct {
    kvgpt_config config;
    int batch, context;
    int n_regions;
    kvgpt_region regions[KVGPT_PLAN_MAX_REGIONS];
    size_t total[2];         /* bytes per space, alignment padding included */
    size_t limit;            /* the arena_limit it was checked against (0 = none) */
    /* The backend it runs on (not arena memory): */
    char kernels[16];        /* the CPU kernel set ("portable", "avx2", "avx512"), or "cuda" */
    int threads;             /* compute threads, the caller's own included; an open model's
                                plan has those the system allowed */
    size_t thread_stack;     /* bytes of stack of each of the threads - 1 threads the library starts */
} kvgpt_plan;

/* Plans the arena for the options: reads config.json, the safetensors header
 * length and the tokenizer files' sizes; reads no weights. With arena_limit
 * set and exceeded, returns KVGPT_ERR_NOMEM and fills *out all the same. */
kvgpt_status kvgpt_plan_model(const kvgpt_options *o, kvgpt_plan *out, kvgpt_error *err);
/* Plans for a config with no files (budget --shape). */
kvgpt_status kvgpt_plan_config(const kvgpt_config *c, const kvgpt_options *o,
                               kvgpt_plan *out, kvgpt_error *err);
/* Prints the plan as a table: one row per region, and the totals. */
void kvgpt_plan_print(const kvgpt_plan *p, void *file /* FILE* */);
/* The plan's region of that id, or NULL when the plan has none (e.g. biases of a bias-free model). */
const kvgpt_region *kvgpt_plan_region(const kvgpt_plan *p, kvgpt_region_id id);

/* Bytes of host memory kvgpt_open needs for these options (the plan's host total + alignment slack). */
size_t kvgpt_plan_host_bytes(const kvgpt_plan *p);

/* ---- Open / close --------------------------------------------------------- */

typedef struct kvgpt_model kvgpt_model;

/* Opens a model. With mem == NULL the library maps one block of the planned
 * size (aligned to 2 MiB, transparent huge pages asked for: the weights then
 * take a few hundred page faults instead of one per 4 KiB, which was most of
 * the time of an open); otherwise mem (mem_bytes long, any alignment) must
 * be at least kvgpt_plan_host_bytes() and is used for everything — a host
 * that wants the same speed maps it the same way (mmap, then
 * madvise(MADV_HUGEPAGE), or MAP_HUGETLB from a reserved pool). On failure
 * nothing is left allocated and *out is NULL. */
kvgpt_status kvgpt_open(const kvgpt_options *o, void *mem, size_t mem_bytes,
                        kvgpt_model **out, kvgpt_error *err);
/* Frees what open took (nothing, when the caller gave the memory). NULL is fine. */
void kvgpt_close(kvgpt_model *m);

const kvgpt_config *kvgpt_model_config(const kvgpt_model *m);
const kvgpt_plan *kvgpt_model_plan(const kvgpt_model *m);
/* Bytes of the arena actually handed out (the high-water mark). */
size_t kvgpt_model_arena_used(const kvgpt_model *m);

/* ---- Tokens and text ------------------------------------------------------ */

/* 1 when the model folder had a tokenizer (char vocab or GPT-2 BPE). */
int kvgpt_has_tokenizer(const kvgpt_model *m);
/* Encodes text; writes at most cap ids, *n gets the count needed. Fails with
 * KVGPT_ERR_TOKEN on text the vocabulary cannot encode, KVGPT_ERR_ARG when
 * cap is too small (then *n is the count needed). Takes a non-const model:
 * the encoder works in the model's arena, so it is a call like any other
 * (one thread at a time per model; KVGPT_ERR_BUSY from inside a callback). */
kvgpt_status kvgpt_encode(kvgpt_model *m, const char *text, size_t len,
                          int32_t *ids, int cap, int *n, kvgpt_error *err);
/* Bytes of one token (not NUL-terminated; may be part of a UTF-8 character). */
kvgpt_status kvgpt_token_bytes(const kvgpt_model *m, int32_t id,
                               const char **bytes, size_t *len);

/* Text of a stream of tokens in whole UTF-8 characters: a character split
 * across tokens is held back until its last byte arrives; bytes that cannot
 * be UTF-8 become U+FFFD, one per maximal invalid sequence (Python's
 * decode(errors="replace"), as nanoGPT's sample.py prints). The state is the
 * caller's: zero it (or kvgpt_text_init) per stream. */
typedef struct {
    unsigned char held[4];   /* the start of a character not yet complete */
    int n_held;
} kvgpt_text_state;
void kvgpt_text_init(kvgpt_text_state *st);
/* Writes the text token id completes to out (at most cap bytes; cap >= 16
 * always suffices for one token plus a held character... see *n); *n gets
 * the bytes written, or the bytes needed with KVGPT_ERR_ARG when cap is too small. */
kvgpt_status kvgpt_token_text(const kvgpt_model *m, kvgpt_text_state *st, int32_t id,
                              char *out, size_t cap, size_t *n);
/* End of the stream: a character still held becomes U+FFFD. */
kvgpt_status kvgpt_text_flush(kvgpt_text_state *st, char *out, size_t cap, size_t *n);

/* ---- Forward -------------------------------------------------------------- */

/* Full forward over ids at positions 0..n-1 (n <= context), in slot 0
 * (which then holds exactly these ids). Writes the logits of every position
 * to logits [n, vocab] when the model was opened with logits_all, else only
 * the last position's [vocab]. */
kvgpt_status kvgpt_forward(kvgpt_model *m, const int32_t *ids, int n,
                           float *logits, kvgpt_error *err);

/* ---- Sequence slots and the step -------------------------------------------
 * Slot s holds tokens at positions 0..kvgpt_seq_length(m, s)-1 with their
 * keys and values cached. GPT-2's positions are absolute: a cached key
 * belongs to its position, so dropping the oldest tokens means recomputing
 * the kept ones at new positions (kvgpt_seq_shift), never moving keys. */

/* Tokens the slot holds (-1: no such slot). */
int          kvgpt_seq_length(const kvgpt_model *m, int seq);
/* The slot's token at position pos (-1 when out of range). */
int32_t      kvgpt_seq_token(const kvgpt_model *m, int seq, int pos);
kvgpt_status kvgpt_seq_reset(kvgpt_model *m, int seq, kvgpt_error *err);
/* Keeps the first n_keep tokens (0 <= n_keep <= length): their cache stays valid. */
kvgpt_status kvgpt_seq_truncate(kvgpt_model *m, int seq, int n_keep, kvgpt_error *err);
/* dst := src, tokens and keys/values (one copy, no recompute). */
kvgpt_status kvgpt_seq_copy(kvgpt_model *m, int src, int dst, kvgpt_error *err);
/* Keeps the newest `keep` tokens (0 <= keep <= length), recomputed at
 * positions 0..keep-1 (one forward). Calling it with context - 1 whenever a
 * slot is full, then decoding one token, is exactly nanoGPT's generate()
 * (its crop to the last block_size tokens). */
kvgpt_status kvgpt_seq_shift(kvgpt_model *m, int seq, int keep, kvgpt_error *err);

typedef struct {
    int n;                   /* tokens in the batch */
    const int32_t *token;    /* [n] */
    const int32_t *seq;      /* [n] the slot of each token: appended at that slot's next position,
                                in batch order */
    const int8_t *logits;    /* [n] 1 = return the logits after this token; NULL = after the last
                                token of each slot in the batch */
} kvgpt_batch;

/* One forward over all the batch's tokens (one read of the weights for all
 * slots; a batch longer than a forward holds is computed in turns, in batch
 * order). The logits of the flagged tokens go to logits [n_flagged][vocab]
 * in batch order (logits may be NULL when none are flagged). Checked before
 * anything runs: a token or slot out of range is KVGPT_ERR_TOKEN /
 * KVGPT_ERR_ARG, a slot that would pass the context KVGPT_ERR_CONTEXT_FULL,
 * and then nothing changes, in any slot. KVGPT_ERR_ABORTED (the abort
 * callback): each slot keeps the tokens completed before it. */
kvgpt_status kvgpt_decode(kvgpt_model *m, const kvgpt_batch *b, float *logits, kvgpt_error *err);

/* Polled at least once per layer of every forward (kvgpt_decode, shifts,
 * kvgpt_forward; kvgpt_generate uses its own should_abort): non-zero ends the
 * call with KVGPT_ERR_ABORTED. NULL turns it off. */
typedef int (*kvgpt_abort_fn)(void *user);
void kvgpt_set_abort_callback(kvgpt_model *m, kvgpt_abort_fn fn, void *user);

/* ---- Saved sequence state ----------------------------------------------------
 * A slot's tokens and keys/values as one blob in caller memory: a header
 * with the model's shape, dtypes and a fingerprint of its weights, then the
 * data, then a checksum over everything. Loading checks all of it before the
 * slot is touched: another model or dtype, a truncated or corrupted blob is
 * KVGPT_ERR_STATE and the slot is left as it was. */
size_t       kvgpt_seq_state_bytes(const kvgpt_model *m, int n_tokens);
kvgpt_status kvgpt_seq_state_save(const kvgpt_model *m, int seq, void *dst, size_t cap,
                                  size_t *written, kvgpt_error *err);
kvgpt_status kvgpt_seq_state_load(kvgpt_model *m, int seq, const void *src, size_t n,
                                  kvgpt_error *err);

/* ---- Generation ----------------------------------------------------------- */

typedef enum {
    KVGPT_WINDOW_SHIFT = 0,  /* when full, keep the newest `keep` tokens, recompute them once */
    KVGPT_WINDOW_EXACT,      /* nanoGPT: past the window, recompute the last context tokens every step */
    KVGPT_WINDOW_STOP        /* end with KVGPT_ERR_CONTEXT_FULL */
} kvgpt_window;

/* Called for every new token of every sequence, in order. Return non-zero to stop that sequence.
 * With stop strings, a token is passed on once it is known not to be part of a match. */
typedef int (*kvgpt_token_fn)(void *user, int seq, int32_t token);
/* The text of the new tokens of a sequence, in whole UTF-8 characters (see
 * kvgpt_token_text), with stop strings held back until they cannot match; a
 * matched stop string and what follows it is never passed on. */
typedef int (*kvgpt_text_fn)(void *user, int seq, const char *text, size_t len);
/* The logits of sequence seq before its next token is drawn, after the
 * penalties: the host may edit them (a bias, a grammar: -INFINITY bans). */
typedef void (*kvgpt_logits_fn)(void *user, int seq, float *logits, int vocab);

#define KVGPT_MAX_STOP 8         /* stop strings per generation */
#define KVGPT_MAX_STOP_LEN 64    /* bytes per stop string */

typedef struct {
    int max_new_tokens;      /* default 500 */
    float temperature;       /* 0 = greedy argmax; default 0.8 */
    int top_k;               /* 0 = off; > vocab = all; default 200 */
    float top_p;             /* (0,1]; 1 = off; default 1 */
    uint64_t seed;           /* sequence i draws from kvgpt_sampler_state(seed, i); default 1337 */
    int use_cache;           /* 0 = recompute the whole window every step (nanoGPT); default 1 */
    kvgpt_window window;     /* default SHIFT */
    int keep;                /* SHIFT: tokens in the window after a shift, the new one included;
                                0 = context/2 (at least 1) */
    int stop_at_eot;         /* stop a sequence at the end-of-text token; default 1 */
    int n_seq;               /* sequences generated together (slots 0..n_seq-1); default 1, <= batch */
    kvgpt_token_fn on_token; /* may be NULL */
    void *user;              /* given to every callback */
    /* Added with the step API; the defaults keep the behaviour above. */
    int append;              /* 1: each sequence's prompt is appended to what its slot holds
                                (multi-turn) instead of replacing it; default 0 */
    const int32_t *const *prompts; /* [n_seq] a prompt per sequence (then the prompt argument of
                                kvgpt_generate must be NULL); NULL: one prompt for all, computed
                                once and copied to the other slots */
    const int *n_prompts;    /* [n_seq] their lengths (0 allowed with append) */
    kvgpt_logits_fn on_logits;
    kvgpt_text_fn on_text;
    float repetition_penalty;/* HF/CTRL: a seen token's logit / p when > 0, x p otherwise; 1 = off (default) */
    float presence_penalty;  /* subtracted once from each seen token's logit; 0 = off (default) */
    float frequency_penalty; /* subtracted per occurrence; 0 = off (default) */
    int penalty_last_n;      /* the tokens the penalties look at: the slot's last n (prompt
                                included); default 64; -1 = the whole slot */
    const char *const *stop; /* stop strings (matched on bytes across tokens), at most KVGPT_MAX_STOP
                                of 1..KVGPT_MAX_STOP_LEN bytes */
    int n_stop;
    int (*should_abort)(void *user); /* polled at least once per layer of every forward and once per
                                step: non-zero ends with KVGPT_ERR_ABORTED */
} kvgpt_gen_options;

void kvgpt_gen_options_default(kvgpt_gen_options *g);

typedef enum {
    KVGPT_STOP_NONE = 0,     /* still going (a generation that returned an error) */
    KVGPT_STOP_EOT,          /* the end-of-text token */
    KVGPT_STOP_MAX_TOKENS,   /* max_new_tokens reached */
    KVGPT_STOP_CALLBACK,     /* on_token or on_text returned non-zero */
    KVGPT_STOP_STRING,       /* a stop string matched */
    KVGPT_STOP_CONTEXT_FULL, /* window STOP: the slot is full */
    KVGPT_STOP_ABORTED       /* should_abort */
} kvgpt_stop_reason;

typedef struct {
    int n_new[64];           /* new tokens per sequence (delivered or held back by a stop match) */
    int stopped_eot;         /* sequences that ended at the end-of-text token */
    int context_full;        /* window STOP ended a sequence */
    int recomputes;          /* window recomputations (EXACT steps past the window, SHIFT shifts) */
    double prefill_s, decode_s;
    int thread_switches;     /* adapt_threads changed the decode thread count this many times */
    kvgpt_stop_reason stop[64]; /* why each sequence ended */
    int cropped[64];         /* prompt tokens that did not fit the context (the oldest are dropped, as
                                nanoGPT crops to the last block_size) */
} kvgpt_gen_result;

/* Checks options and prompt as kvgpt_generate would, without generating:
 * KVGPT_ERR_ARG, KVGPT_ERR_PROMPT or KVGPT_ERR_TOKEN with a message. */
kvgpt_status kvgpt_gen_validate(const kvgpt_model *m, const int32_t *prompt, int n_prompt,
                                const kvgpt_gen_options *g, kvgpt_error *err);

/* Generates up to max_new_tokens for each of n_seq sequences (slots
 * 0..n_seq-1), a loop over kvgpt_decode. Allocates nothing. Tokens reach the
 * caller through on_token / on_text; the slots keep what was generated.
 * Window STOP with a full slot ends that sequence (KVGPT_STOP_CONTEXT_FULL;
 * the call returns KVGPT_ERR_CONTEXT_FULL after every sequence has ended).
 * KVGPT_ERR_ABORTED, KVGPT_ERR_NUMERIC (naming the step and sequence) end
 * the call; res still counts what was delivered. */
kvgpt_status kvgpt_generate(kvgpt_model *m, const int32_t *prompt, int n_prompt,
                            const kvgpt_gen_options *g, kvgpt_gen_result *res,
                            kvgpt_error *err);

/* Samples one token from logits [vocab] with the sampling fields of g.
 * scratch must hold vocab (float, int32) pairs: 8 * vocab bytes. rng_state is
 * advanced. -1 when the logits hold a NaN or +Inf, or every one is -Inf.
 * For hosts that run their own loop over kvgpt_decode. */
int32_t kvgpt_sample_logits(const float *logits, int vocab, const kvgpt_gen_options *g,
                            uint64_t *rng_state, void *scratch);
/* The rng state kvgpt_generate gives sequence seq for this seed. */
uint64_t kvgpt_sampler_state(uint64_t seed, int seq);

#ifdef __cplusplus
}
#endif
#endif
