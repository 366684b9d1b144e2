/* tokenizer/charvocab.h — nanoGPT's character vocabulary: one token per
 * Unicode character, from vocab.json ({"stoi", "itos"}) or nanoGPT's own
 * meta.pkl. The tables live in memory the caller gives (an arena region). */
#ifndef KVGPT_CHARVOCAB_H
#define KVGPT_CHARVOCAB_H

#include <stddef.h>
#include <stdint.h>
#include "kvgpt.h"

/* One slot of the character → id hash (a character packed little-endian
 * into key; id_plus1 0: empty). */
typedef struct {
    uint32_t key, id_plus1;
} cv_slot;

typedef struct {
    int n;                   /* tokens */
    uint32_t *offsets;       /* n+1 offsets into bytes */
    char *bytes;             /* token strings, concatenated */
    cv_slot *slots;          /* every token by its character: encoding is linear in the text */
    uint32_t mask;           /* slots - 1 */
    int32_t byte_to_id[256]; /* single-byte tokens; -1 when absent */
} cv_vocab;

/* Bytes cv_load needs for a vocab file of this size (upper bound: the
 * tables of vocab_size one-character tokens, never more than the file). */
size_t cv_table_bytes(uint64_t file_size, int vocab_size);
/* 0 when the file at path is evidently not a char vocabulary but a GPT-2 BPE
 * vocab.json (token -> id) whose merges.txt is missing: no tokenizer then,
 * rather than a broken one. 1 otherwise (cv_load judges the rest). */
int cv_is_char_vocab(const char *path);
kvgpt_status cv_load(cv_vocab *v, const char *path, int vocab_size, void *file_mem, size_t file_bytes,
                     void *table_mem, size_t table_bytes, kvgpt_error *err);
/* 1 when s[0..n) is exactly one well-formed UTF-8 character: what a char
 * vocabulary's tokens must be for cv_encode to reach every one of them. */
int cv_one_char(const void *s, size_t n);
/* Encodes text one token per character, in time linear in the text. */
kvgpt_status cv_encode(const cv_vocab *v, const char *text, size_t len, int32_t *ids, int cap,
                       int *n, kvgpt_error *err);

/* Fills v's tables from token strings (cv_load and cv_load_meta): cv_begin
 * lays them out in table_mem, cv_add adds token id (one character, checked
 * by the caller) and returns the earlier id of the same character, or -1. */
void cv_begin(cv_vocab *v, uint64_t file_size, int vocab_size, void *table_mem);
int cv_add(cv_vocab *v, int id, const char *s, size_t n, size_t *used);
/* Id of the token of this one character, or -1. */
int cv_find(const cv_vocab *v, const char *s, size_t n);

/* ---- meta.pkl as a char vocabulary (tokenizer/charmeta.c) -----------------------
 * {'vocab_size': V, 'itos': {id: char}, 'stoi': {char: id}}: itos gives the
 * tokens, stoi must be its exact inverse, vocab_size must be the model's. */

/* Bytes of file_mem cv_load_meta needs for a meta.pkl of this size and a
 * vocabulary of vocab_size (its interpreter, bounded by what such a pickle
 * holds, and an id table; the file itself is streamed); 0 when the file is
 * too large for a meta.pkl. table_bytes is cv_table_bytes(file_size, vocab_size). */
size_t cv_meta_file_bytes(uint64_t file_size, int vocab_size);
kvgpt_status cv_load_meta(cv_vocab *v, const char *path, int vocab_size, void *file_mem, size_t file_bytes,
                          void *table_mem, size_t table_bytes, kvgpt_error *err);

#endif
