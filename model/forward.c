/* model/forward.c — the GPT-2 forward over a table of rows (token, sequence,
 * position), nanoGPT's semantics: pre-LN blocks, causal attention over the
 * KV cache, tied lm_head. Prefill of a window, one decode step of several
 * sequences, and the no-cache recompute are all the same call: a row's K/V
 * go straight into their cache slot, then it attends to positions 0..pos of
 * its sequence. Computes only through port/. */
#include "model/model.h"
#include "common/status.h"

#include <math.h>

/* A failed copy: the backend's own reason when it recorded one. */
static kvgpt_status backend_fail(port *p, kvgpt_status st, const char *what, kvgpt_error *err)
{
    kvgpt_status why = port_sync(p, err);
    return why ? why : kv_fail(err, st, "forward: %s failed", what);
}

/* The host's abort callback, polled between layers. */
static int aborted(const kvgpt_model *m) { return m->abort_fn && m->abort_fn(m->abort_user); }

/* Every port call of one forward, from the embedding to the logits
 * download, queued (the caller syncs). KVGPT_ERR_ABORTED between layers. */
static kvgpt_status issue(kvgpt_model *m, int n, int n_logits, int first_logit, kvgpt_error *err)
{
    const kvgpt_config *c = &m->cfg;
    model_state *s = &m->s;
    model_weights *w = &m->w;
    port *p = m->port;
    int C = c->n_embd, H = c->n_head, hs = C / H, V = c->vocab_size;
    kvgpt_status st;
    port_embed(p, s->x, &w->wte, w->wpe, s->tok, s->pos, n, C);
    for (int l = 0; l < c->n_layer; l++) {
        if (aborted(m))
            return kv_fail(err, KVGPT_ERR_ABORTED, "aborted by the host at layer %d of a forward of %d rows", l, n);
        size_t lc = (size_t)l * C;
        /* x = x + attn(ln_1(x)) */
        port_layernorm(p, s->xn, s->x, w->ln1_w + lc, w->ln1_b ? w->ln1_b + lc : NULL, n, C, c->ln_eps);
        port_matmul(p, s->qkv, 3 * C, s->xn, C, &w->attn[l], w->attn_b ? w->attn_b + 3 * lc : NULL, n);
        port_kv_store(p, kv_layer_k(&m->kv, l), kv_layer_v(&m->kv, l), m->kv.dtype, s->qkv, 3 * C, s->seq, s->pos,
                      n, H, hs, m->ctx);
        port_attention(p, s->att, C, s->qkv, 3 * C, kv_layer_k(&m->kv, l), kv_layer_v(&m->kv, l), m->kv.dtype,
                       s->seq, s->pos, n, H, hs, m->ctx);
        port_matmul(p, s->xn, C, s->att, C, &w->proj[l], w->proj_b ? w->proj_b + lc : NULL, n);
        port_add(p, s->x, s->xn, (size_t)n * C);
        /* x = x + mlp(ln_2(x)) */
        port_layernorm(p, s->xn, s->x, w->ln2_w + lc, w->ln2_b ? w->ln2_b + lc : NULL, n, C, c->ln_eps);
        port_matmul(p, s->fc, 4 * C, s->xn, C, &w->fc[l], w->fc_b ? w->fc_b + 4 * lc : NULL, n);
        port_gelu(p, s->fc, (size_t)n * 4 * C, c->gelu);
        port_matmul(p, s->xn, C, s->fc, 4 * C, &w->mlp_proj[l], w->mlp_proj_b ? w->mlp_proj_b + lc : NULL, n);
        port_add(p, s->x, s->xn, (size_t)n * C);
    }
    if (n_logits == 0) return KVGPT_OK;
    /* Only the rows whose next token is wanted go through ln_f and lm_head. */
    if ((st = port_upload(p, s->tok, s->h_last, (size_t)n_logits * sizeof(int32_t))))
        return backend_fail(p, st, "uploading the logit rows", err);
    port_gather_rows(p, s->att, s->x, s->tok, n_logits, C);
    port_layernorm(p, s->xn, s->att, w->lnf_w, w->lnf_b, n_logits, C, c->ln_eps);
    float *dl = s->logits + (size_t)first_logit * V;
    port_matmul(p, dl, V, s->xn, C, w->lm_head, NULL, n_logits);
    if ((st = port_download(p, s->h_logits + (size_t)first_logit * V, dl, (size_t)n_logits * V * sizeof(float))))
        return backend_fail(p, st, "downloading the logits", err);
    return KVGPT_OK;
}

kvgpt_status model_forward_rows(kvgpt_model *m, int n, int n_logits, int first_logit, kvgpt_error *err)
{
    model_state *s = &m->s;
    port *p = m->port;
    const int V = m->cfg.vocab_size;
    if (n < 1 || n > s->max_rows || n_logits < 0 || first_logit < 0 || first_logit + n_logits > s->logit_rows ||
        n_logits > n)
        return kv_fail(err, KVGPT_ERR_ARG, "forward of %d rows (logits %d..%d) exceeds the plan (%d, %d)", n,
                       first_logit, first_logit + n_logits, s->max_rows, s->logit_rows);
    for (int r = 0; r < n; r++)
        if (s->h_tok[r] < 0 || s->h_tok[r] >= V || s->h_pos[r] < 0 || s->h_pos[r] >= m->ctx || s->h_seq[r] < 0 ||
            s->h_seq[r] >= m->batch)
            return kv_fail(err, KVGPT_ERR_TOKEN, "row %d: token %d at position %d of sequence %d is out of range", r,
                           s->h_tok[r], s->h_pos[r], s->h_seq[r]);
    kvgpt_status st;
    if ((st = port_upload(p, s->tok, s->h_tok, (size_t)n * sizeof(int32_t))) ||
        (st = port_upload(p, s->seq, s->h_seq, (size_t)n * sizeof(int32_t))) ||
        (st = port_upload(p, s->pos, s->h_pos, (size_t)n * sizeof(int32_t))))
        return backend_fail(p, st, "uploading the row table", err);

    /* A backend that recorded this forward's device work replays it (a
     * decode graph); else every call is issued (and, while open records, captured). */
    port_step_begin(p);
    if (aborted(m)) st = kv_fail(err, KVGPT_ERR_ABORTED, "aborted by the host before a forward of %d rows", n);
    else if (!port_graph_begin(p, n, first_logit == 0 ? n_logits : 0)) st = issue(m, n, n_logits, first_logit, err);
    kvgpt_status gs = port_graph_end(p, st ? NULL : err);   /* ends a capture an abort left open */
    port_step_end(p, n, n_logits > 0 && n == n_logits);
    if (st) {
        (void)port_sync(p, NULL);
        return st;
    }
    return gs ? gs : port_sync(p, err);
}

kvgpt_status model_record_graphs(kvgpt_model *m, kvgpt_error *err)
{
    if (!port_graph_record(m->port, 1)) return KVGPT_OK;
    /* One forward of n rows with n logits per n: position 0 of slots 0..n-1,
     * empty at open (what they compute there is overwritten before it is read). */
    model_state *s = &m->s;
    kvgpt_status st = KVGPT_OK;
    for (int n = 1; n <= m->batch && n <= s->logit_rows && !st; n++) {
        for (int r = 0; r < n; r++) {
            s->h_tok[r] = 0;
            s->h_seq[r] = r;
            s->h_pos[r] = 0;
            s->h_last[r] = r;
        }
        st = model_forward_rows(m, n, n, 0, err);
    }
    port_graph_record(m->port, 0);
    return st;
}
