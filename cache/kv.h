/* cache/kv.h — the KV cache: every layer's keys and values for batch ×
 * context positions, planned in the arena at open, and the per-sequence
 * bookkeeping of what is cached and which tokens the window holds.
 *
 * Layout of one layer's K (and V): [batch][n_head][ctx][hs] in kv_dtype, so
 * one head of one sequence is a contiguous [ctx][hs] block that decode
 * attention streams. A step writes its K/V straight into its slot; stored
 * K/V are never moved: when the window slides, kept tokens are recomputed
 * at their new positions (GPT-2's positions are absolute). */
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

/* One sequence's state: the newest tokens in a ring of ctx, and how many
 * of the window's positions have valid K/V in the cache. */
typedef struct {
    int32_t *ring;           /* ctx slots, host */
    int ctx;
    int64_t n_total;         /* tokens ever appended (prompt + generated) */
    int n_window;            /* tokens in the current window (<= ctx) */
    int n_cached;            /* window positions 0..n_cached-1 hold valid K/V */
    uint64_t rng;            /* sampler state */
    int done;                /* stopped (end of text, callback, or max tokens) */
} kv_seq;

size_t kv_seq_ring_bytes(int ctx);
void kv_seq_reset(kv_seq *s, int32_t *ring, int ctx);
/* Appends a token to the window; when the window is full, the oldest drops. */
void kv_seq_push(kv_seq *s, int32_t tok);
/* Token at window position i (0 = oldest in the window). */
int32_t kv_seq_at(const kv_seq *s, int i);
/* Keeps only the newest `keep` tokens as the window; the cache becomes invalid. */
void kv_seq_keep(kv_seq *s, int keep);

#endif
