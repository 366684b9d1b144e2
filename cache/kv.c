/* cache/kv.c — KV cache layout and per-sequence window bookkeeping. */
#include "cache/kv.h"
#include "common/status.h"

#include <string.h>

static size_t dtype_bytes(kvgpt_dtype dt) { return dt == KVGPT_DTYPE_F32 ? 4 : 2; }

size_t kv_bytes(int n_layer, int batch, int n_head, int hs, int ctx, kvgpt_dtype dt)
{
    size_t b = dtype_bytes(dt);
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

size_t kv_seq_ring_bytes(int ctx) { return (size_t)ctx * sizeof(int32_t); }

void kv_seq_reset(kv_seq *s, int32_t *ring, int ctx)
{
    memset(s, 0, sizeof *s);
    s->ring = ring;
    s->ctx = ctx;
}

void kv_seq_push(kv_seq *s, int32_t tok)
{
    s->ring[s->n_total % s->ctx] = tok;
    s->n_total++;
    if (s->n_window < s->ctx) s->n_window++;
    else if (s->n_cached > 0) s->n_cached = 0;  /* the window slid: positions changed */
}

int32_t kv_seq_at(const kv_seq *s, int i)
{
    int64_t first = s->n_total - s->n_window;
    return s->ring[(first + i) % s->ctx];
}

void kv_seq_keep(kv_seq *s, int keep)
{
    if (keep < s->n_window) s->n_window = keep;
    s->n_cached = 0;
}
