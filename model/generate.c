/* model/generate.c — the generate loop: prefill, decode from the cache,
 * and the window policies past the context (exact, shift, stop).
 *
 * Each step feeds, for every live sequence, the window positions whose K/V
 * are not cached yet: the whole prompt at first, then one token; the whole
 * window again when it slid (exact) or was cut to `keep` (shift), or always
 * when the cache is off (nanoGPT's recompute). Rows of several sequences go
 * through one forward, so one read of the weights serves the batch. */
#include "model/model.h"
#include "model/sampler.h"
#include "common/status.h"

#include <math.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

kvgpt_status kvgpt_gen_validate(const kvgpt_model *m, const int32_t *prompt, int n_prompt,
                                const kvgpt_gen_options *g, kvgpt_error *err)
{
    if (!m || !g || (!prompt && n_prompt > 0)) return kv_fail(err, KVGPT_ERR_ARG, "kvgpt_generate: NULL argument");
    if (g->max_new_tokens < 0)
        return kv_fail(err, KVGPT_ERR_ARG, "max_new_tokens %d is negative", g->max_new_tokens);
    if (!(g->temperature >= 0.0f) || !isfinite(g->temperature))
        return kv_fail(err, KVGPT_ERR_ARG, "temperature %g must be a finite number >= 0", (double)g->temperature);
    if (g->top_k < 0) return kv_fail(err, KVGPT_ERR_ARG, "top_k %d is negative (0 turns it off)", g->top_k);
    if (!(g->top_p > 0.0f && g->top_p <= 1.0f))
        return kv_fail(err, KVGPT_ERR_ARG, "top_p %g is outside (0, 1]", (double)g->top_p);
    if (g->n_seq < 1 || g->n_seq > m->batch)
        return kv_fail(err, KVGPT_ERR_ARG, "%d sequences asked for; the model was opened for 1..%d (batch)",
                       g->n_seq, m->batch);
    if ((unsigned)g->window > KVGPT_WINDOW_STOP) return kv_fail(err, KVGPT_ERR_ARG, "unknown window policy");
    if (g->keep < 0 || g->keep >= m->ctx)
        return kv_fail(err, KVGPT_ERR_ARG, "keep %d is outside 1..%d (0 = half the context)", g->keep, m->ctx - 1);
    if (n_prompt < 1) return kv_fail(err, KVGPT_ERR_PROMPT, "the prompt is empty");
    if (g->window == KVGPT_WINDOW_STOP && n_prompt > m->ctx)
        return kv_fail(err, KVGPT_ERR_PROMPT, "the prompt has %d tokens; the context holds %d (window stop)",
                       n_prompt, m->ctx);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= m->cfg.vocab_size)
            return kv_fail(err, KVGPT_ERR_TOKEN, "prompt token %d (id %d) is outside the vocabulary (0..%d)", i,
                           prompt[i], m->cfg.vocab_size - 1);
    return KVGPT_OK;
}

/* After a token is chosen: report it, then decide whether the sequence goes on. */
static void advance(kvgpt_model *m, const kvgpt_gen_options *g, kvgpt_gen_result *res, int b, int32_t tok,
                    int *n_new)
{
    kv_seq *s = &m->seqs[b];
    n_new[b]++;
    if (b < 64) res->n_new[b] = n_new[b];
    if (g->on_token && g->on_token(g->user, b, tok)) s->done = 1;
    if (g->stop_at_eot && tok == m->cfg.eot_token) {
        s->done = 1;
        res->stopped_eot++;
    }
    if (n_new[b] >= g->max_new_tokens) s->done = 1;
    if (s->done) return;
    if (s->n_window == m->ctx) {
        if (g->window == KVGPT_WINDOW_STOP) {
            s->done = 1;
            res->context_full = 1;
            return;
        }
        if (g->window == KVGPT_WINDOW_SHIFT) kv_seq_keep(s, (g->keep ? g->keep : m->ctx / 2) - 1);
        res->recomputes++;
    }
    kv_seq_push(s, tok);   /* exact: the oldest token drops and the window is recomputed */
}

/* Runs the forward over the rows queued for sequences [first, last) and samples each. */
static kvgpt_status flush(kvgpt_model *m, const kvgpt_gen_options *g, kvgpt_gen_result *res, const int *members,
                          int n_members, int n_rows, int *n_new, kvgpt_error *err)
{
    if (n_members == 0) return KVGPT_OK;
    const int before = port_thread_switches(m->port);
    kvgpt_status st = model_forward_rows(m, n_rows, n_members, err);
    if (st) return st;
    res->thread_switches += port_thread_switches(m->port) - before;
    size_t V = (size_t)m->cfg.vocab_size;
    for (int i = 0; i < n_members; i++) {
        int b = members[i];
        kv_seq *s = &m->seqs[b];
        s->n_cached = s->n_window;
        int32_t tok = kvgpt_sample_logits(m->s.h_logits + (size_t)i * V, (int)V, g, &s->rng, m->sample_scratch);
        advance(m, g, res, b, tok, n_new);
    }
    return KVGPT_OK;
}

kvgpt_status kvgpt_generate(kvgpt_model *m, const int32_t *prompt, int n_prompt, const kvgpt_gen_options *g,
                            kvgpt_gen_result *res, kvgpt_error *err)
{
    if (!res) return kv_fail(err, KVGPT_ERR_ARG, "kvgpt_generate: NULL argument");
    kvgpt_gen_result zero = {{0}, 0, 0, 0, 0.0, 0.0, 0};
    *res = zero;
    kvgpt_status st = kvgpt_gen_validate(m, prompt, n_prompt, g, err);
    if (st) return st;
    int first = n_prompt > m->ctx ? n_prompt - m->ctx : 0;   /* nanoGPT crops to the last block_size */
    for (int b = 0; b < g->n_seq; b++) {
        kv_seq *s = &m->seqs[b];
        kv_seq_reset(s, s->ring, m->ctx);
        for (int i = first; i < n_prompt; i++) kv_seq_push(s, prompt[i]);
        s->rng = sampler_seed(g->seed + (uint64_t)b);
        s->done = g->max_new_tokens == 0;
    }
    /* Per-sequence counters on the stack: batches are at most 64 (the plan says so). */
    int n_new_buf[64];
    int *n_new = g->n_seq <= 64 ? n_new_buf : NULL;
    if (!n_new) return kv_fail(err, KVGPT_ERR_ARG, "at most 64 sequences at once");
    for (int b = 0; b < g->n_seq; b++) n_new[b] = 0;
    int members[64];

    model_state *ms = &m->s;
    double t0 = now_s(), t_first = -1.0;
    for (;;) {
        int n_rows = 0, n_members = 0, live = 0;
        for (int b = 0; b < g->n_seq; b++) {
            kv_seq *s = &m->seqs[b];
            if (s->done) continue;
            live++;
            if (!g->use_cache) s->n_cached = 0;
            int need = s->n_window - s->n_cached;
            if (n_rows + need > ms->max_rows) {
                if ((st = flush(m, g, res, members, n_members, n_rows, n_new, err))) return st;
                n_rows = n_members = 0;
            }
            for (int i = s->n_cached; i < s->n_window; i++) {
                ms->h_tok[n_rows] = kv_seq_at(s, i);
                ms->h_seq[n_rows] = b;
                ms->h_pos[n_rows] = i;
                n_rows++;
            }
            ms->h_last[n_members] = n_rows - 1;
            members[n_members++] = b;
        }
        if (!live) break;
        if ((st = flush(m, g, res, members, n_members, n_rows, n_new, err))) return st;
        if (t_first < 0) t_first = now_s();
    }
    double t1 = now_s();
    res->prefill_s = t_first < 0 ? 0.0 : t_first - t0;
    res->decode_s = t_first < 0 ? 0.0 : t1 - t_first;
    if (res->context_full)
        return kv_fail(err, KVGPT_ERR_CONTEXT_FULL, "the context (%d tokens) is full (window stop)", m->ctx);
    return KVGPT_OK;
}
