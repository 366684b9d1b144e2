/* tokenizer/charvocab.h — nanoGPT's character vocabulary: one token per
 * Unicode character, from vocab.json ({"stoi", "itos"}) or nanoGPT's own
 * meta.pkl. The tables live in memory the caller gives (an arena region). */
#ifndef KVGPT_CHARVOCAB_H
#define KVGPT_CHARVOCAB_H

#include <stddef.h>
#include <stdint.h>
#include "kvgpt.h"

typedef struct {
    int n;                   /* tokens */
    uint32_t *offsets;       /* n+1 offsets into bytes */
    char *bytes;             /* token strings, concatenated */
    int16_t byte_to_id[256]; /* single-byte tokens; -1 when absent */
} cv_vocab;

/* Bytes cv_load needs for a vocab file of this size (upper bound). */
size_t cv_table_bytes(uint64_t file_size, int vocab_size);
kvgpt_status cv_load(cv_vocab *v, const char *path, int vocab_size, void *file_mem, size_t file_bytes,
                     void *table_mem, size_t table_bytes, kvgpt_error *err);
/* 1 when s[0..n) is exactly one well-formed UTF-8 character: what a char
 * vocabulary's tokens must be for cv_encode to reach every one of them. */
int cv_one_char(const void *s, size_t n);
/* Encodes text one token per vocabulary entry (longest match). */
kvgpt_status cv_encode(const cv_vocab *v, const char *text, size_t len, int32_t *ids, int cap,
                       int *n, kvgpt_error *err);

/* ---- meta.pkl as a char vocabulary (tokenizer/charmeta.c) -----------------------
 * {'vocab_size': V, 'itos': {id: char}, 'stoi': {char: id}}: itos gives the
 * tokens, stoi must be its exact inverse, vocab_size must be the model's. */

/* Bytes of file_mem cv_load_meta needs for a meta.pkl of this size (the file,
 * its interpreter, an id table). table_bytes is cv_table_bytes(file_size, vocab_size). */
size_t cv_meta_file_bytes(uint64_t file_size, int vocab_size);
kvgpt_status cv_load_meta(cv_vocab *v, const char *path, int vocab_size, void *file_mem, size_t file_bytes,
                          void *table_mem, size_t table_bytes, kvgpt_error *err);

#endif
