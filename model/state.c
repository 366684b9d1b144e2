/* model/state.c — a slot's tokens and cached K/V as one checked blob in the
 * caller's memory (llama.cpp's llama_state_seq_*, with everything checked):
 *
 *   header (64 bytes): "KVGPTSQ1", byte order, header size, the model's shape,
 *     weight and KV dtypes, tokens held and cached, the weights' fingerprint
 *   tokens [n] int32, zero-padded to 8 bytes
 *   for each layer: K [n_head][n_kv][hs], V [n_head][n_kv][hs] in the KV dtype,
 *     zero-padded to 8 bytes
 *   checksum: FNV-1a over the 64-bit words of all of the above
 *
 * A single changed word changes an FNV-1a sum for certain (each step is a
 * bijection of the state), so every flipped byte is caught; the sizes the
 * header implies must equal the blob's length, so every truncation is. The
 * slot is written only after all of it is checked. */
#include "model/model.h"
#include "common/status.h"
#include "common/half.h"

#include <string.h>

#define ST_MAGIC "KVGPTSQ1"
#define ST_HEADER 64
#define ST_ORDER 0x01020304u

typedef struct {
    char magic[8];
    uint32_t order, header;
    int32_t n_layer, n_head, n_embd, vocab;
    int32_t weight_dtype, kv_dtype, n, n_kv;
    uint64_t fingerprint, reserved;
} state_header;

typedef char state_header_is_64_bytes[sizeof(state_header) == ST_HEADER ? 1 : -1];

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

/* Bytes of one layer's K (or V) for n cached tokens. */
static size_t layer_bytes(const kvgpt_model *m, int n)
{
    return (size_t)m->kv.n_head * (size_t)n * (size_t)m->kv.hs * kv_dtype_size(m->kv.dtype);
}

static size_t blob_bytes(const kvgpt_model *m, int n, int n_kv)
{
    return ST_HEADER + pad8((size_t)n * sizeof(int32_t)) + pad8(2 * (size_t)m->kv.n_layer * layer_bytes(m, n_kv)) + 8;
}

static uint64_t checksum(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
    }
    return h;
}

/* A failed copy: the backend's own reason when it recorded one. */
static kvgpt_status backend_fail(const kvgpt_model *m, kvgpt_status s, const char *what, kvgpt_error *err)
{
    kvgpt_status why = port_sync(m->port, err);
    return why ? why : kv_fail(err, s, "%s", what);
}

size_t kvgpt_seq_state_bytes(const kvgpt_model *m, int n_tokens)
{
    if (!m || n_tokens < 0 || n_tokens > m->ctx) return 0;
    return blob_bytes(m, n_tokens, n_tokens);
}

kvgpt_status kvgpt_seq_state_save(const kvgpt_model *m, int seq, void *dst, size_t cap, size_t *written,
                                  kvgpt_error *err)
{
    if (written) *written = 0;
    if (!m || !dst) return kv_fail(err, KVGPT_ERR_ARG, "kvgpt_seq_state_save: NULL argument");
    if (m->busy)
        return kv_fail(err, KVGPT_ERR_BUSY, "kvgpt_seq_state_save: called from inside one of this model's callbacks");
    if (seq < 0 || seq >= m->batch)
        return kv_fail(err, KVGPT_ERR_ARG, "kvgpt_seq_state_save: slot %d does not exist (the model has 0..%d)", seq,
                       m->batch - 1);
    const kv_slot *sl = &m->slots[seq];
    size_t need = blob_bytes(m, sl->n, sl->n_kv);
    if (cap < need)
        return kv_fail(err, KVGPT_ERR_ARG, "kvgpt_seq_state_save: slot %d needs %zu bytes, the buffer has %zu", seq,
                       need, cap);
    unsigned char *p = dst;
    memset(p, 0, need);
    state_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, ST_MAGIC, 8);
    h.order = ST_ORDER;
    h.header = ST_HEADER;
    h.n_layer = m->cfg.n_layer;
    h.n_head = m->cfg.n_head;
    h.n_embd = m->cfg.n_embd;
    h.vocab = m->cfg.vocab_size;
    h.weight_dtype = (int32_t)m->opt.weight_dtype;
    h.kv_dtype = (int32_t)m->kv.dtype;
    h.n = sl->n;
    h.n_kv = sl->n_kv;
    h.fingerprint = m->fingerprint;
    memcpy(p, &h, sizeof h);
    size_t at = ST_HEADER;
    memcpy(p + at, sl->tokens, (size_t)sl->n * sizeof(int32_t));
    at += pad8((size_t)sl->n * sizeof(int32_t));
    const kv_cache *kv = &m->kv;
    for (int l = 0; l < kv->n_layer; l++) {
        kvgpt_status s;
        if ((s = port_kv_read(m->port, p + at, kv_layer_k(kv, l), kv->dtype, kv->n_head, kv->ctx, kv->hs, seq,
                              sl->n_kv)) ||
            (s = port_kv_read(m->port, p + at + layer_bytes(m, sl->n_kv), kv_layer_v(kv, l), kv->dtype, kv->n_head,
                              kv->ctx, kv->hs, seq, sl->n_kv)))
            return backend_fail(m, s, "kvgpt_seq_state_save: reading the cache", err);
        at += 2 * layer_bytes(m, sl->n_kv);
    }
    at = need - 8;
    uint64_t sum = checksum(p, at);
    memcpy(p + at, &sum, 8);
    if (written) *written = need;
    return KVGPT_OK;
}

static kvgpt_status bad(kvgpt_error *err, const char *why, long long a, long long b)
{
    return kv_fail(err, KVGPT_ERR_STATE, "kvgpt_seq_state_load: %s (%lld, this model: %lld)", why, a, b);
}

/* Everything about a blob that can be checked without touching the slot. */
static kvgpt_status check_blob(const kvgpt_model *m, const unsigned char *p, size_t n, state_header *h,
                               kvgpt_error *err)
{
    if (n < ST_HEADER + 8) return bad(err, "shorter than a header", (long long)n, ST_HEADER + 8);
    memcpy(h, p, sizeof *h);
    if (memcmp(h->magic, ST_MAGIC, 8) != 0 || h->header != ST_HEADER)
        return kv_fail(err, KVGPT_ERR_STATE, "kvgpt_seq_state_load: not a kvgpt sequence state");
    if (h->order != ST_ORDER)
        return kv_fail(err, KVGPT_ERR_STATE, "kvgpt_seq_state_load: saved on a machine of the other byte order");
    const struct { const char *what; long long a, b; } same[] = {
        {"n_layer differs", h->n_layer, m->cfg.n_layer}, {"n_head differs", h->n_head, m->cfg.n_head},
        {"n_embd differs", h->n_embd, m->cfg.n_embd}, {"vocab_size differs", h->vocab, m->cfg.vocab_size},
        {"saved with another weight dtype", h->weight_dtype, (long long)m->opt.weight_dtype},
        {"saved with another KV dtype", h->kv_dtype, (long long)m->kv.dtype},
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        if (same[i].a != same[i].b) return bad(err, same[i].what, same[i].a, same[i].b);
    if (h->n < 0 || h->n > m->ctx) return bad(err, "holds more tokens than the context", h->n, m->ctx);
    if (h->n_kv < 0 || h->n_kv > h->n) return bad(err, "caches more tokens than it holds", h->n_kv, h->n);
    size_t want = blob_bytes(m, h->n, h->n_kv);
    if (n != want) return bad(err, "its length is not what its header says", (long long)n, (long long)want);
    uint64_t sum;
    memcpy(&sum, p + n - 8, 8);
    if (sum != checksum(p, n - 8))
        return kv_fail(err, KVGPT_ERR_STATE, "kvgpt_seq_state_load: the checksum does not match (the blob is damaged)");
    if (h->fingerprint != m->fingerprint || h->reserved != 0)
        return kv_fail(err, KVGPT_ERR_STATE, "kvgpt_seq_state_load: saved from another model (other weights)");
    const unsigned char *tok = p + ST_HEADER;
    for (int i = 0; i < h->n; i++) {
        int32_t t;
        memcpy(&t, tok + (size_t)i * 4, 4);
        if (t < 0 || t >= m->cfg.vocab_size) return bad(err, "a token is outside the vocabulary", t, m->cfg.vocab_size);
    }
    return KVGPT_OK;
}

kvgpt_status kvgpt_seq_state_load(kvgpt_model *m, int seq, const void *src, size_t n, kvgpt_error *err)
{
    kvgpt_status s = model_enter(m, "kvgpt_seq_state_load", err);
    if (s) return s;
    if (!src) return kv_fail(err, KVGPT_ERR_ARG, "kvgpt_seq_state_load: NULL argument");
    if (seq < 0 || seq >= m->batch)
        return kv_fail(err, KVGPT_ERR_ARG, "kvgpt_seq_state_load: slot %d does not exist (the model has 0..%d)", seq,
                       m->batch - 1);
    const unsigned char *p = src;
    state_header h;
    if ((s = check_blob(m, p, n, &h, err))) return s;
    kv_slot *sl = &m->slots[seq];
    memcpy(sl->tokens, p + ST_HEADER, (size_t)h.n * sizeof(int32_t));
    size_t at = ST_HEADER + pad8((size_t)h.n * sizeof(int32_t));
    const kv_cache *kv = &m->kv;
    sl->n = sl->n_kv = 0;   /* nothing valid while it is being written */
    for (int l = 0; l < kv->n_layer; l++) {
        if ((s = port_kv_write(m->port, kv_layer_k(kv, l), p + at, kv->dtype, kv->n_head, kv->ctx, kv->hs, seq,
                               h.n_kv)) ||
            (s = port_kv_write(m->port, kv_layer_v(kv, l), p + at + layer_bytes(m, h.n_kv), kv->dtype, kv->n_head,
                               kv->ctx, kv->hs, seq, h.n_kv)))
            return backend_fail(m, s, "kvgpt_seq_state_load: writing the cache", err);
        at += 2 * layer_bytes(m, h.n_kv);
    }
    sl->n = h.n;
    sl->n_kv = h.n_kv;
    return port_sync(m->port, err);
}
