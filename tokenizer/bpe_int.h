/* tokenizer/bpe_int.h — the tokenizer's in-memory layout, shared by the
 * loader (bpe.c) and the encoder (bpe_encode.c). Not for use outside tokenizer/. */
#ifndef KVGPT_BPE_INT_H
#define KVGPT_BPE_INT_H

#include <stdint.h>
#include <string.h>
#include "tokenizer/bpe.h"

#define BPE_NO_RANK INT32_MAX

/* One slot of the bytes → id hash; id_plus1 == 0 marks an empty slot. The
 * hash is kept beside the id so most probes never touch the token bytes. */
typedef struct {
    uint32_t id_plus1;
    uint32_t hash;
} bpe_slot;

struct bpe_tokenizer {
    int vocab_size;           /* the model's */
    int n_tokens;             /* entries of vocab.json: ids 0..n_tokens-1 */
    int eot;                  /* "<|endoftext|>" or -1 */
    uint32_t max_len;         /* longest token, bytes: longer spans never match */
    uint32_t hash_mask;       /* slots - 1 (a power of two) */
    int32_t byte_id[256];     /* the token of each single byte */
    const uint32_t *off;      /* [n_tokens] start of each token in blob */
    const uint32_t *len;      /* [n_tokens] bytes of each token */
    const int32_t *rank;      /* [n_tokens] merge rank that makes it, BPE_NO_RANK if none */
    const bpe_slot *slots;    /* [hash_mask + 1] */
    const unsigned char *blob;/* raw token bytes */
};

/* A fast hash of short byte strings (tokens are rarely over 16 bytes). Only
 * consistency within one process matters, so native-endian loads are fine. */
static inline uint32_t bpe_hash(const unsigned char *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n, w;
    while (n >= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    w = 0;
    if (n) memcpy(&w, p, n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    h *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32);
}

/* Id of the token with exactly these bytes, or -1. */
static inline int32_t bpe_lookup(const bpe_tokenizer *t, const unsigned char *p, size_t n)
{
    uint32_t h, i;
    if (n == 0 || n > t->max_len) return -1;
    h = bpe_hash(p, n);
    for (i = h & t->hash_mask;; i = (i + 1) & t->hash_mask) {
        const bpe_slot *s = &t->slots[i];
        uint32_t id;
        if (s->id_plus1 == 0) return -1;
        if (s->hash != h) continue;
        id = s->id_plus1 - 1;
        if (t->len[id] == n && memcmp(t->blob + t->off[id], p, n) == 0) return (int32_t)id;
    }
}

#endif
