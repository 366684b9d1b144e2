/* model/decode.c — the step: tokens tagged by slot appended to their slots
 * and computed in one forward (or as few as the plan's rows allow), the
 * logits of the flagged ones handed back in batch order. Every other entry
 * point that computes (kvgpt_forward, shifts, kvgpt_generate) goes through
 * model_run, so there is one way tokens reach the cache. */
#include "model/model.h"
#include "common/status.h"

#include <string.h>

kvgpt_status model_enter(kvgpt_model *m, const char *what, kvgpt_error *err)
{
    if (!m) return kv_fail(err, KVGPT_ERR_ARG, "%s: the model is NULL", what);
    if (m->busy)
        return kv_fail(err, KVGPT_ERR_BUSY, "%s: called from inside one of this model's callbacks", what);
    return KVGPT_OK;
}

kvgpt_status model_check_batch(const kvgpt_model *m, int n, const int32_t *tok, const int32_t *seq, kvgpt_error *err)
{
    int count[64] = {0};
    if (n < 0) return kv_fail(err, KVGPT_ERR_ARG, "a batch of %d tokens", n);
    if (n > 0 && (!tok || !seq)) return kv_fail(err, KVGPT_ERR_ARG, "the batch's token or seq array is NULL");
    for (int i = 0; i < n; i++) {
        if (seq[i] < 0 || seq[i] >= m->batch)
            return kv_fail(err, KVGPT_ERR_ARG, "batch token %d: slot %d does not exist (the model has 0..%d)", i,
                           seq[i], m->batch - 1);
        if (tok[i] < 0 || tok[i] >= m->cfg.vocab_size)
            return kv_fail(err, KVGPT_ERR_TOKEN, "batch token %d: id %d is outside the vocabulary (0..%d)", i, tok[i],
                           m->cfg.vocab_size - 1);
        count[seq[i]]++;
    }
    for (int b = 0; b < m->batch; b++)
        if (count[b] > kv_slot_room(&m->slots[b]))
            return kv_fail(err, KVGPT_ERR_CONTEXT_FULL, "slot %d holds %d of %d tokens: %d more do not fit", b,
                           m->slots[b].n, m->ctx, count[b]);
    return KVGPT_OK;
}

/* One forward in the making: its rows so far and where its logits go. */
typedef struct {
    kvgpt_model *m;
    int rows, n_logits;
    int first_logit;         /* h_logits row of this forward's first logit (out NULL: they accumulate) */
    int done_logits;         /* logits handed out so far */
    float *out;              /* caller's logits, or NULL */
} run_chunk;

static kvgpt_status flush(run_chunk *ch, kvgpt_error *err)
{
    kvgpt_model *m = ch->m;
    model_state *s = &m->s;
    if (ch->rows == 0) return KVGPT_OK;
    kvgpt_status st = model_forward_rows(m, ch->rows, ch->n_logits, ch->first_logit, err);
    if (st) return st;
    for (int r = 0; r < ch->rows; r++) {
        kv_slot *sl = &m->slots[s->h_seq[r]];
        if (s->h_pos[r] + 1 > sl->n_kv) sl->n_kv = s->h_pos[r] + 1;
    }
    size_t V = (size_t)m->cfg.vocab_size;
    if (ch->out && ch->n_logits)
        memcpy(ch->out + (size_t)ch->done_logits * V, s->h_logits + (size_t)ch->first_logit * V,
               (size_t)ch->n_logits * V * sizeof(float));
    ch->done_logits += ch->n_logits;
    if (!ch->out) ch->first_logit += ch->n_logits;
    ch->rows = ch->n_logits = 0;
    return KVGPT_OK;
}

/* Logit rows the forward in the making may still take. */
static int logit_room(const run_chunk *ch)
{
    const model_state *s = &ch->m->s;
    return (ch->out ? s->logit_rows : s->logit_rows - ch->first_logit) - ch->n_logits;
}

/* Queues row (slot b, position pos); a full forward runs first. */
static kvgpt_status emit(run_chunk *ch, int b, int pos, int want, kvgpt_error *err)
{
    model_state *s = &ch->m->s;
    if (ch->rows == s->max_rows || (want && logit_room(ch) == 0)) {
        kvgpt_status st = flush(ch, err);
        if (st) return st;
    }
    if (want && logit_room(ch) == 0)   /* out NULL: the caller promised they fit */
        return kv_fail(err, KVGPT_ERR_ARG, "more logits flagged than the plan holds (%d)", s->logit_rows);
    s->h_tok[ch->rows] = ch->m->slots[b].tokens[pos];
    s->h_seq[ch->rows] = b;
    s->h_pos[ch->rows] = pos;
    if (want) s->h_last[ch->n_logits++] = ch->rows;
    ch->rows++;
    return KVGPT_OK;
}

kvgpt_status model_run(kvgpt_model *m, int n, const int32_t *tok, const int32_t *seq, const int8_t *want,
                       model_pending_logits pending, float *out, kvgpt_error *err)
{
    int before[64], last[64], next[64];
    for (int b = 0; b < m->batch; b++) {
        before[b] = m->slots[b].n;
        last[b] = -1;
    }
    for (int i = 0; i < n; i++) {
        kv_slot_push(&m->slots[seq[i]], tok[i]);
        last[seq[i]] = i;
    }
    run_chunk ch = {m, 0, 0, 0, 0, out};
    kvgpt_status st = KVGPT_OK;
    /* Tokens already pending (a window to recompute, a prompt put in place) come first. */
    for (int b = 0; b < m->batch && !st; b++) {
        const kv_slot *sl = &m->slots[b];
        for (next[b] = sl->n_kv; next[b] < before[b] && !st; next[b]++) {
            int w = ((pending.all_of >> b) & 1) || (((pending.last_of >> b) & 1) && next[b] == before[b] - 1);
            st = emit(&ch, b, next[b], w, err);
        }
    }
    for (int i = 0; i < n && !st; i++) {
        int b = seq[i];
        st = emit(&ch, b, next[b]++, want ? want[i] != 0 : last[b] == i, err);
    }
    if (!st) st = flush(&ch, err);
    if (st)
        for (int b = 0; b < m->batch; b++) {
            /* This call's tokens that were not computed were never appended. */
            kv_slot *sl = &m->slots[b];
            kv_slot_truncate(sl, sl->n_kv > before[b] ? sl->n_kv : before[b]);
        }
    return st;
}

kvgpt_status kvgpt_decode(kvgpt_model *m, const kvgpt_batch *b, float *logits, kvgpt_error *err)
{
    kvgpt_status st = model_enter(m, "kvgpt_decode", err);
    if (st) return st;
    if (!b) return kv_fail(err, KVGPT_ERR_ARG, "kvgpt_decode: the batch is NULL");
    if ((st = model_check_batch(m, b->n, b->token, b->seq, err))) return st;
    int flagged = 0, in_batch[64] = {0};
    for (int i = 0; i < b->n; i++) {
        if (b->logits) flagged += b->logits[i] != 0;
        else flagged += !in_batch[b->seq[i]]++;   /* one per slot: its last token */
    }
    if (flagged && !logits)
        return kv_fail(err, KVGPT_ERR_ARG, "kvgpt_decode: %d tokens want logits but the logits buffer is NULL",
                       flagged);
    model_pending_logits none = {0, 0};
    return model_run(m, b->n, b->token, b->seq, b->logits, none, logits, err);
}

kvgpt_status kvgpt_forward(kvgpt_model *m, const int32_t *ids, int n, float *logits, kvgpt_error *err)
{
    kvgpt_status st = model_enter(m, "kvgpt_forward", err);
    if (st) return st;
    if (!ids || !logits) return kv_fail(err, KVGPT_ERR_ARG, "kvgpt_forward: NULL argument");
    if (n < 1 || n > m->ctx)
        return kv_fail(err, KVGPT_ERR_PROMPT, "kvgpt_forward: %d tokens; the context holds 1..%d", n, m->ctx);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size)
            return kv_fail(err, KVGPT_ERR_TOKEN, "token id %d at position %d is outside the vocabulary (0..%d)",
                           ids[i], i, m->cfg.vocab_size - 1);
    /* Slot 0 then holds exactly these ids, all pending, computed in one go. */
    kv_slot *sl = &m->slots[0];
    kv_slot_truncate(sl, 0);
    for (int i = 0; i < n; i++) kv_slot_push(sl, ids[i]);
    model_pending_logits want = {1, m->opt.logits_all ? 1u : 0u};   /* slot 0's, and only its */
    st = model_run(m, 0, NULL, NULL, NULL, want, logits, err);
    if (st) kv_slot_truncate(sl, sl->n_kv);
    return st;
}

void kvgpt_set_abort_callback(kvgpt_model *m, kvgpt_abort_fn fn, void *user)
{
    if (!m) return;
    m->abort_fn = fn;
    m->abort_user = user;
}
