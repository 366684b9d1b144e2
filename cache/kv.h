/* cache/kv.h — the KV cache: every layer's keys and values for batch slots
 * × context positions, planned in the arena at open, and each slot's
 * bookkeeping: which tokens it holds and how many of them are cached.
 *
 * Layout of one layer's K (and V): [batch][n_head][ctx][hs] in kv_dtype, so
 * one head of one slot is a contiguous [ctx][hs] block that decode attention
 * streams. A step writes its K/V straight into its slot; stored K/V are
 * never moved to other positions: GPT-2's positions are absolute, so when
 * the oldest tokens go, the kept ones are recomputed at their new positions. */
#ifndef KVGPT_KV_H
#define KVGPT_KV_H

#include <stddef.h>
#include <stdint.h>
#include "kvgpt.h"

typedef struct {
    void *k, *v;             /* [n_layer][batch][n_head][ctx][hs], device space */
    kvgpt_dtype dtype;
    int n_layer, batch, n_head, hs, ctx;
    size_t layer_bytes;      /* one layer of K (or V) */
} kv_cache;

/* Bytes of K (the same again for V) for all layers. 0 on overflow. */
size_t kv_bytes(int n_layer, int batch, int n_head, int hs, int ctx, kvgpt_dtype dt);
void kv_bind(kv_cache *c, void *k, void *v, kvgpt_dtype dt, int n_layer, int batch, int n_head, int hs, int ctx);
void *kv_layer_k(const kv_cache *c, int layer);
void *kv_layer_v(const kv_cache *c, int layer);

/* One slot: tokens[0, n) at positions 0..n-1, of which positions
 * [0, n_kv) have valid K/V in the cache. Tokens [n_kv, n) are pending: the
 * next forward computes them (a prompt just appended, a window recomputed). */
typedef struct {
    int32_t *tokens;         /* ctx entries, host */
    int ctx;
    int n, n_kv;
} kv_slot;

void kv_slot_init(kv_slot *s, int32_t *tokens, int ctx);
/* Room for more tokens. */
int kv_slot_room(const kv_slot *s);
/* Appends a token (pending); the caller checked the room. */
void kv_slot_push(kv_slot *s, int32_t tok);
/* Keeps the first n tokens (n <= s->n); their K/V stay valid. */
void kv_slot_truncate(kv_slot *s, int n);
/* Keeps the newest `keep` tokens at positions 0..keep-1: all pending. */
void kv_slot_keep_newest(kv_slot *s, int keep);
/* Every held token pending again (a recompute of the whole window). */
void kv_slot_invalidate(kv_slot *s);

#endif
