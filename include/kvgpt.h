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
 * wrong. The library never exits or aborts.
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
    int threads;             /* CPU threads; 0 = all the runtime offers */
    int adapt_threads;       /* 1 (default): a decode step may run on one thread while the
                                machine is so busy that all of them are slower (measured as
                                it goes; the tokens are bitwise the same either way) */
    int logits_all;          /* keep logits of every position (kvgpt logits); default 0 */
    int no_tokenizer;        /* do not load tokenizer files even if present */
    size_t arena_limit;      /* refuse a plan larger than this; 0 = no limit */
} kvgpt_options;

void kvgpt_options_default(kvgpt_options *o);

/* ---- The memory plan ---------------------------------------------------- */

#define KVGPT_PLAN_MAX_REGIONS 48

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

typedef struct {
    char name[40];           /* e.g. "h.*.attn.c_attn.weight", "kv.k" */
    char shape[48];          /* e.g. "[12,2304,768]" */
    char type[8];            /* "f32", "f16", "bf16", "i32" or "bytes" */
    kvgpt_region_kind kind;
    kvgpt_space space;
    size_t bytes;            /* exact, before alignment padding */
    size_t offset;           /* from the start of its space's arena, 64-byte aligned */
} kvgpt_region;

typedef struct {
    kvgpt_config config;
    int batch, context;
    int n_regions;
    kvgpt_region regions[KVGPT_PLAN_MAX_REGIONS];
    size_t total[2];         /* bytes per space, alignment padding included */
    size_t limit;            /* the arena_limit it was checked against (0 = none) */
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

/* Bytes of host memory kvgpt_open needs for these options (the plan's host total + alignment slack). */
size_t kvgpt_plan_host_bytes(const kvgpt_plan *p);

/* ---- Open / close --------------------------------------------------------- */

typedef struct kvgpt_model kvgpt_model;

/* Opens a model. With mem == NULL the library takes one allocation of the
 * planned size; otherwise mem (mem_bytes long, any alignment) must be at least
 * kvgpt_plan_host_bytes() and is used for everything. On failure nothing is
 * left allocated and *out is NULL. */
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
 * cap is too small (then *n is the count needed). */
kvgpt_status kvgpt_encode(const kvgpt_model *m, const char *text, size_t len,
                          int32_t *ids, int cap, int *n, kvgpt_error *err);
/* Bytes of one token (not NUL-terminated; may be part of a UTF-8 character). */
kvgpt_status kvgpt_token_bytes(const kvgpt_model *m, int32_t id,
                               const char **bytes, size_t *len);

/* ---- Forward -------------------------------------------------------------- */

/* Full forward over ids at positions 0..n-1 (n <= context). Writes the
 * logits of every position to logits [n, vocab] when the model was opened
 * with logits_all, else only the last position's [vocab]. */
kvgpt_status kvgpt_forward(kvgpt_model *m, const int32_t *ids, int n,
                           float *logits, kvgpt_error *err);

/* ---- Generation ----------------------------------------------------------- */

typedef enum {
    KVGPT_WINDOW_SHIFT = 0,  /* when full, keep the newest `keep` tokens, recompute them once */
    KVGPT_WINDOW_EXACT,      /* nanoGPT: past the window, recompute the last context tokens every step */
    KVGPT_WINDOW_STOP        /* end with KVGPT_ERR_CONTEXT_FULL */
} kvgpt_window;

/* Called for every new token of every sequence, in order. Return non-zero to stop that sequence. */
typedef int (*kvgpt_token_fn)(void *user, int seq, int32_t token);

typedef struct {
    int max_new_tokens;      /* default 500 */
    float temperature;       /* 0 = greedy argmax; default 0.8 */
    int top_k;               /* 0 = off; > vocab = all; default 200 */
    float top_p;             /* (0,1]; 1 = off; default 1 */
    uint64_t seed;           /* sequence i draws from seed + i; default 1337 */
    int use_cache;           /* 0 = recompute the whole window every step (nanoGPT); default 1 */
    kvgpt_window window;     /* default SHIFT */
    int keep;                /* SHIFT: tokens kept; 0 = context/2 */
    int stop_at_eot;         /* stop a sequence at the end-of-text token; default 1 */
    int n_seq;               /* sequences generated together from the same prompt; default 1, <= batch */
    kvgpt_token_fn on_token; /* may be NULL */
    void *user;
} kvgpt_gen_options;

void kvgpt_gen_options_default(kvgpt_gen_options *g);

typedef struct {
    int n_new[64];           /* new tokens per sequence (first 64 sequences) */
    int stopped_eot;         /* sequences that ended at the end-of-text token */
    int context_full;        /* window STOP ended generation */
    int recomputes;          /* window recomputations (EXACT steps past the window, SHIFT shifts) */
    double prefill_s, decode_s;
    int thread_switches;     /* adapt_threads changed the decode thread count this many times */
} kvgpt_gen_result;

/* Checks options and prompt as kvgpt_generate would, without generating:
 * KVGPT_ERR_ARG, KVGPT_ERR_PROMPT or KVGPT_ERR_TOKEN with a message. */
kvgpt_status kvgpt_gen_validate(const kvgpt_model *m, const int32_t *prompt, int n_prompt,
                                const kvgpt_gen_options *g, kvgpt_error *err);

/* Generates up to max_new_tokens for n_seq sequences from one prompt.
 * Allocates nothing. Tokens reach the caller through on_token. */
kvgpt_status kvgpt_generate(kvgpt_model *m, const int32_t *prompt, int n_prompt,
                            const kvgpt_gen_options *g, kvgpt_gen_result *res,
                            kvgpt_error *err);

/* Samples one token from logits [vocab] with the sampling fields of g.
 * scratch must hold vocab (float, int32) pairs: 8 * vocab bytes. rng_state is
 * advanced. Exposed for tests and hosts that run their own loop. */
int32_t kvgpt_sample_logits(const float *logits, int vocab, const kvgpt_gen_options *g,
                            uint64_t *rng_state, void *scratch);

#ifdef __cplusplus
}
#endif
#endif
