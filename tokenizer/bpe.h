/* tokenizer/bpe.h — GPT-2 byte-level BPE (vocab.json + merges.txt, or
 * OpenAI's encoder.json + vocab.bpe), exact to tiktoken's "gpt2" encoding.
 *
 * Size first, then memory: bpe_plan() says from the files' sizes alone how
 * many bytes bpe_load() needs; bpe_load() then lives entirely in the memory
 * it is given (the tokenizer struct included) and allocates nothing; encode
 * works in the caller's scratch memory.
 *
 *   bpe_sizes sz;      bpe_plan(vp, mp, vocab_size, &sz, &err);
 *   bpe_tokenizer *t;  bpe_load(tables, sz.table_bytes, files, sz.file_bytes,
 *                               vp, mp, vocab_size, &t, &err);
 *   // files may be reused now; tables must live as long as t.
 *   bpe_encode(t, text, len, ids, cap, &n, work, work_bytes, &err);
 *
 * Merging follows tiktoken: two adjacent parts merge when their concatenated
 * bytes are a token made by some merge, lowest merge rank first, leftmost
 * first on ties. (This is not "only the listed pairs": GPT-2 has 58,299
 * token = a+b splits that merges.txt does not list, and tiktoken may use them.)
 */
#ifndef KVGPT_BPE_H
#define KVGPT_BPE_H

#include <stddef.h>
#include <stdint.h>
#include "kvgpt.h"

#define BPE_MAX_FILE_BYTES ((size_t)256 << 20) /* refuse tokenizer files above 256 MiB */
#define BPE_MAX_VOCAB 4194304                  /* as LOADER_MAX_VOCAB */
#define BPE_VOCAB_PAD 128                      /* model vocab_size may exceed the file's count by < this (nanoGPT pads 50257 to 50304) */

typedef struct bpe_tokenizer bpe_tokenizer;

typedef struct {
    size_t table_bytes; /* lives as long as the tokenizer; must be 64-byte aligned */
    size_t file_bytes;  /* only during bpe_load: the raw files while they are parsed */
} bpe_sizes;

/* Finds the tokenizer files in dir: vocab.json + merges.txt, else
 * encoder.json + vocab.bpe. Returns 1 and fills both paths (cap bytes each)
 * when one pair exists entirely, else 0 (a char-level vocab.json alone is not BPE). */
int bpe_find_files(const char *dir, char *vocab_path, char *merges_path, size_t cap);

/* From the files' sizes (stat) and vocab_size only — reads no content — an
 * upper bound of what bpe_load needs. KVGPT_ERR_IO when a file cannot be
 * stat'ed, KVGPT_ERR_VOCAB when one is empty or absurdly large,
 * KVGPT_ERR_ARG for an impossible vocab_size. */
kvgpt_status bpe_plan(const char *vocab_path, const char *merges_path, int vocab_size,
                      bpe_sizes *out, kvgpt_error *err);

/* Reads and checks both files. table_mem (64-byte aligned) holds the
 * tokenizer until the caller drops it; file_mem is free again on return.
 * Too little memory: KVGPT_ERR_ARG ("needs N bytes, given M"). Malformed
 * files: KVGPT_ERR_VOCAB with "path:line: what is wrong". On failure *out is NULL. */
kvgpt_status bpe_load(void *table_mem, size_t table_bytes, void *file_mem, size_t file_bytes,
                      const char *vocab_path, const char *merges_path, int vocab_size,
                      bpe_tokenizer **out, kvgpt_error *err);

/* Scratch bytes bpe_encode needs for text whose longest pre-token (piece)
 * has this many bytes; any text needs at most bpe_encode_work_bytes(len). */
size_t bpe_encode_work_bytes(size_t longest_piece_bytes);

/* Encodes len bytes of text (any bytes: invalid UTF-8 and NUL are fine).
 * Writes at most cap ids; *n_out is the count of the whole text. When cap is
 * too small: KVGPT_ERR_ARG and *n_out = the count needed. When one piece
 * needs more than work_bytes: KVGPT_ERR_ARG, saying how much it needs.
 * Reentrant: t is only read. */
kvgpt_status bpe_encode(const bpe_tokenizer *t, const char *text, size_t len,
                        int32_t *ids, int cap, int *n_out,
                        void *work, size_t work_bytes, kvgpt_error *err);

/* Raw bytes of a token (the byte-to-unicode map undone; not NUL-terminated).
 * KVGPT_ERR_TOKEN for an id with no bytes (out of range or padding). */
kvgpt_status bpe_token_bytes(const bpe_tokenizer *t, int32_t id, const char **bytes, size_t *len);

/* Model vocab_size the tokenizer was loaded for (ids below it are valid
 * model outputs; those at or above bpe_token_count have no bytes). */
int bpe_vocab_size(const bpe_tokenizer *t);
/* Tokens in the vocabulary file. */
int bpe_token_count(const bpe_tokenizer *t);
/* Id of "<|endoftext|>", or -1. */
int bpe_eot_token(const bpe_tokenizer *t);

#endif
