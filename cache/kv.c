/* cache/kv.c — KV cache layout and each slot's bookkeeping. */
#include "cache/kv.h"
#include "common/status.h"
#include "common/half.h"

#include <string.h>

size_t kv_bytes(int n_layer, int batch, int n_head, int hs, int ctx, kvgpt_dtype dt)
{
    size_t b = kv_dtype_size(dt);
    size_t dims[] = {(size_t)n_layer, (size_t)batch, (size_t)n_head, (size_t)hs, (size_t)ctx};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (!kv_mul(b, dims[i], &b)) return 0;
    return b;
}

void kv_bind(kv_cache *c, void *k, void *v, kvgpt_dtype dt, int n_layer, int batch, int n_head, int hs, int ctx)
{
    c->k = k;
    c->v = v;
    c->dtype = dt;
    c->n_layer = n_layer;
    c->batch = batch;
    c->n_head = n_head;
    c->hs = hs;
    c->ctx = ctx;
    c->layer_bytes = kv_bytes(1, batch, n_head, hs, ctx, dt);
}

void *kv_layer_k(const kv_cache *c, int layer) { return (char *)c->k + (size_t)layer * c->layer_bytes; }
void *kv_layer_v(const kv_cache *c, int layer) { return (char *)c->v + (size_t)layer * c->layer_bytes; }

void kv_slot_init(kv_slot *s, int32_t *tokens, int ctx)
{
    s->tokens = tokens;
    s->ctx = ctx;
    s->n = s->n_kv = 0;
}

int kv_slot_room(const kv_slot *s) { return s->ctx - s->n; }

void kv_slot_push(kv_slot *s, int32_t tok) { s->tokens[s->n++] = tok; }

void kv_slot_truncate(kv_slot *s, int n)
{
    s->n = n;
    if (s->n_kv > n) s->n_kv = n;
}

void kv_slot_keep_newest(kv_slot *s, int keep)
{
    if (keep < s->n) memmove(s->tokens, s->tokens + (s->n - keep), (size_t)keep * sizeof(int32_t));
    if (keep < s->n) s->n = keep;
    s->n_kv = 0;
}

void kv_slot_invalidate(kv_slot *s) { s->n_kv = 0; }
