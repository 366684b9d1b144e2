/* model/seq.c — the host's operations on sequence slots: length, reset,
 * truncate, copy, shift. Copies move cached K/V through the port (slot to
 * slot in the device's own memory); a shift recomputes the kept tokens at
 * their new positions, since GPT-2's cached keys belong to their position. */
#include "model/model.h"
#include "common/status.h"

#include <string.h>

static kvgpt_status slot_arg(const kvgpt_model *m, int seq, const char *what, kvgpt_error *err)
{
    if (seq < 0 || seq >= m->batch)
        return kv_fail(err, KVGPT_ERR_ARG, "%s: slot %d does not exist (the model has 0..%d)", what, seq,
                       m->batch - 1);
    return KVGPT_OK;
}

int kvgpt_seq_length(const kvgpt_model *m, int seq)
{
    if (!m || seq < 0 || seq >= m->batch) return -1;
    return m->slots[seq].n;
}

int32_t kvgpt_seq_token(const kvgpt_model *m, int seq, int pos)
{
    if (!m || seq < 0 || seq >= m->batch || pos < 0 || pos >= m->slots[seq].n) return -1;
    return m->slots[seq].tokens[pos];
}

kvgpt_status kvgpt_seq_reset(kvgpt_model *m, int seq, kvgpt_error *err)
{
    kvgpt_status s = model_enter(m, "kvgpt_seq_reset", err);
    if (!s) s = slot_arg(m, seq, "kvgpt_seq_reset", err);
    if (!s) kv_slot_truncate(&m->slots[seq], 0);
    return s;
}

kvgpt_status kvgpt_seq_truncate(kvgpt_model *m, int seq, int n_keep, kvgpt_error *err)
{
    kvgpt_status s = model_enter(m, "kvgpt_seq_truncate", err);
    if (!s) s = slot_arg(m, seq, "kvgpt_seq_truncate", err);
    if (s) return s;
    if (n_keep < 0 || n_keep > m->slots[seq].n)
        return kv_fail(err, KVGPT_ERR_ARG, "kvgpt_seq_truncate: keep %d of slot %d's %d tokens", n_keep, seq,
                       m->slots[seq].n);
    kv_slot_truncate(&m->slots[seq], n_keep);
    return KVGPT_OK;
}

/* Cached positions [0, n) of slot src into slot dst, every layer's K and V. */
static void copy_kv(kvgpt_model *m, int src, int dst, int n)
{
    const kv_cache *kv = &m->kv;
    for (int l = 0; l < kv->n_layer; l++) {
        port_kv_copy(m->port, kv_layer_k(kv, l), kv->dtype, kv->n_head, kv->ctx, kv->hs, src, dst, n);
        port_kv_copy(m->port, kv_layer_v(kv, l), kv->dtype, kv->n_head, kv->ctx, kv->hs, src, dst, n);
    }
}

kvgpt_status model_seq_copy(kvgpt_model *m, int src, int dst, kvgpt_error *err)
{
    if (src == dst) return KVGPT_OK;
    kv_slot *a = &m->slots[src], *b = &m->slots[dst];
    memcpy(b->tokens, a->tokens, (size_t)a->n * sizeof(int32_t));
    copy_kv(m, src, dst, a->n_kv);
    b->n = a->n;
    b->n_kv = a->n_kv;
    return port_sync(m->port, err);
}

kvgpt_status kvgpt_seq_copy(kvgpt_model *m, int src, int dst, kvgpt_error *err)
{
    kvgpt_status s = model_enter(m, "kvgpt_seq_copy", err);
    if (!s) s = slot_arg(m, src, "kvgpt_seq_copy (source)", err);
    if (!s) s = slot_arg(m, dst, "kvgpt_seq_copy (destination)", err);
    return s ? s : model_seq_copy(m, src, dst, err);
}

kvgpt_status kvgpt_seq_shift(kvgpt_model *m, int seq, int keep, kvgpt_error *err)
{
    kvgpt_status s = model_enter(m, "kvgpt_seq_shift", err);
    if (!s) s = slot_arg(m, seq, "kvgpt_seq_shift", err);
    if (s) return s;
    kv_slot *sl = &m->slots[seq];
    if (keep < 0 || keep > sl->n)
        return kv_fail(err, KVGPT_ERR_ARG, "kvgpt_seq_shift: keep %d of slot %d's %d tokens", keep, seq, sl->n);
    if (keep == sl->n && sl->n_kv == sl->n) return KVGPT_OK;   /* nothing moves */
    kv_slot_keep_newest(sl, keep);
    model_pending_logits none = {0, 0};
    return model_run(m, 0, NULL, NULL, NULL, none, NULL, err);
}
