/* model/generate.c — kvgpt_generate: a loop over the step (model_run, as
 * llama2.c's generate is over forward). Prompts go into their slots (one
 * shared prompt is computed once and copied to the other slots), then each
 * step samples every live sequence from its logits, hands the token to the
 * host, applies the window policy when the slot is full, and decodes all
 * live sequences' new tokens in one forward. The slots keep what was
 * generated (the last tokens stay pending: the next call computes them). */
#include "model/model.h"
#include "model/deliver.h"
#include "model/sampler.h"
#include "common/status.h"

#include <math.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int prompt_len(const int32_t *prompt, int n_prompt, const kvgpt_gen_options *g, int b)
{
    (void)prompt;
    return g->prompts ? g->n_prompts[b] : n_prompt;
}

static const int32_t *prompt_of(const int32_t *prompt, const kvgpt_gen_options *g, int b)
{
    return g->prompts ? g->prompts[b] : prompt;
}

static kvgpt_status check_sampling(const kvgpt_gen_options *g, kvgpt_error *err)
{
    if (g->max_new_tokens < 0)
        return kv_fail(err, KVGPT_ERR_ARG, "max_new_tokens %d is negative", g->max_new_tokens);
    if (!(g->temperature >= 0.0f) || !isfinite(g->temperature))
        return kv_fail(err, KVGPT_ERR_ARG, "temperature %g must be a finite number >= 0", (double)g->temperature);
    if (g->top_k < 0) return kv_fail(err, KVGPT_ERR_ARG, "top_k %d is negative (0 turns it off)", g->top_k);
    if (!(g->top_p > 0.0f && g->top_p <= 1.0f))
        return kv_fail(err, KVGPT_ERR_ARG, "top_p %g is outside (0, 1]", (double)g->top_p);
    if (!(g->repetition_penalty > 0.0f) || !isfinite(g->repetition_penalty))
        return kv_fail(err, KVGPT_ERR_ARG, "repetition_penalty %g must be a finite number > 0 (1 = off)",
                       (double)g->repetition_penalty);
    if (!isfinite(g->presence_penalty) || !isfinite(g->frequency_penalty))
        return kv_fail(err, KVGPT_ERR_ARG, "presence_penalty %g / frequency_penalty %g must be finite",
                       (double)g->presence_penalty, (double)g->frequency_penalty);
    if (g->penalty_last_n < -1)
        return kv_fail(err, KVGPT_ERR_ARG, "penalty_last_n %d (0 = off, -1 = the whole slot)", g->penalty_last_n);
    if (g->n_stop < 0 || g->n_stop > KVGPT_MAX_STOP || (g->n_stop && !g->stop))
        return kv_fail(err, KVGPT_ERR_ARG, "%d stop strings (0..%d)", g->n_stop, KVGPT_MAX_STOP);
    for (int i = 0; i < g->n_stop; i++) {
        size_t len = g->stop[i] ? strlen(g->stop[i]) : 0;
        if (len < 1 || len > KVGPT_MAX_STOP_LEN)
            return kv_fail(err, KVGPT_ERR_ARG, "stop string %d is %zu bytes long (1..%d)", i, len, KVGPT_MAX_STOP_LEN);
    }
    return KVGPT_OK;
}

kvgpt_status kvgpt_gen_validate(const kvgpt_model *m, const int32_t *prompt, int n_prompt,
                                const kvgpt_gen_options *g, kvgpt_error *err)
{
    if (!m || !g) return kv_fail(err, KVGPT_ERR_ARG, "kvgpt_generate: NULL argument");
    kvgpt_status s = check_sampling(g, err);
    if (s) return s;
    if (g->n_seq < 1 || g->n_seq > m->batch)
        return kv_fail(err, KVGPT_ERR_ARG, "%d sequences asked for; the model was opened for 1..%d (batch)",
                       g->n_seq, m->batch);
    if ((unsigned)g->window > KVGPT_WINDOW_STOP) return kv_fail(err, KVGPT_ERR_ARG, "unknown window policy");
    if (g->keep < 0 || g->keep >= m->ctx)
        return kv_fail(err, KVGPT_ERR_ARG, "keep %d is outside 1..%d (0 = half the context)", g->keep, m->ctx - 1);
    if (g->prompts && (prompt || n_prompt))
        return kv_fail(err, KVGPT_ERR_ARG, "give either a prompt or options.prompts, not both");
    if (g->prompts && !g->n_prompts) return kv_fail(err, KVGPT_ERR_ARG, "options.prompts without n_prompts");
    if (!g->prompts && !prompt && n_prompt > 0) return kv_fail(err, KVGPT_ERR_ARG, "kvgpt_generate: the prompt is NULL");
    for (int b = 0; b < g->n_seq; b++) {
        const int32_t *p = prompt_of(prompt, g, b);
        int n = prompt_len(prompt, n_prompt, g, b), held = g->append ? m->slots[b].n : 0;
        if (n < 0 || (n > 0 && !p)) return kv_fail(err, KVGPT_ERR_ARG, "sequence %d: a prompt of %d tokens at %p", b, n,
                                                    (const void *)p);
        if (n + held == 0)
            return kv_fail(err, KVGPT_ERR_PROMPT, "the prompt is empty%s", g->append ? " and so is the slot" : "");
        if (g->window == KVGPT_WINDOW_STOP && n + held > m->ctx)
            return kv_fail(err, KVGPT_ERR_PROMPT, "sequence %d: %d tokens%s; the context holds %d (window stop)", b,
                           n + held, held ? " with what the slot holds" : "", m->ctx);
        for (int i = 0; i < n; i++)
            if (p[i] < 0 || p[i] >= m->cfg.vocab_size)
                return kv_fail(err, KVGPT_ERR_TOKEN, "prompt token %d (id %d) is outside the vocabulary (0..%d)", i, p[i],
                               m->cfg.vocab_size - 1);
    }
    return KVGPT_OK;
}

/* Puts sequence b's prompt after what its slot keeps, the newest context
 * tokens of the two when they do not fit (nanoGPT crops to the last
 * block_size); returns how many were dropped. */
static int place_prompt(kvgpt_model *m, int b, const int32_t *p, int n, int append)
{
    kv_slot *sl = &m->slots[b];
    if (!append) kv_slot_truncate(sl, 0);
    int take = n < m->ctx ? n : m->ctx, keep = m->ctx - take < sl->n ? m->ctx - take : sl->n;
    int dropped = (sl->n - keep) + (n - take);
    if (keep < sl->n) kv_slot_keep_newest(sl, keep);
    for (int i = n - take; i < n; i++) kv_slot_push(sl, p[i]);
    /* The first draw needs the logits of the slot's last token: computed again when it already is. */
    if (sl->n_kv == sl->n) sl->n_kv--;
    return dropped;
}

/* The prompts in, and each sequence's first logits in h_logits row b. */
static kvgpt_status prefill(kvgpt_model *m, const int32_t *prompt, int n_prompt, const kvgpt_gen_options *g,
                            kvgpt_gen_result *res, kvgpt_error *err)
{
    const int n_seq = g->n_seq;
    const int shared = !g->prompts && !g->append && n_seq > 1;
    for (int b = 0; b < (shared ? 1 : n_seq); b++)
        res->cropped[b] = place_prompt(m, b, prompt_of(prompt, g, b), prompt_len(prompt, n_prompt, g, b), g->append);
    model_pending_logits want = {shared ? 1u : (n_seq == 64 ? ~0ull : (1ull << n_seq) - 1), 0};
    kvgpt_status s = model_run(m, 0, NULL, NULL, NULL, want, NULL, err);
    if (s || !shared) return s;
    /* One prompt for all: computed once, its K/V and logits copied. */
    size_t V = (size_t)m->cfg.vocab_size;
    for (int b = 1; b < n_seq; b++) {
        if ((s = model_seq_copy(m, 0, b, err))) return s;
        memcpy(m->s.h_logits + b * V, m->s.h_logits, V * sizeof(float));
        res->cropped[b] = res->cropped[0];
    }
    return KVGPT_OK;
}

/* The step's draws on the device, when the backend samples there and the
 * host has nothing to do to the logits first: only ids and generator states
 * cross the bus. 0: draw on the host (the CPU port always; a device port
 * for rows only the host has). */
static int draw_on_device(kvgpt_model *m, const kvgpt_gen_options *g, const int *seq, int n, int32_t *ids,
                          kvgpt_status *st, kvgpt_error *err)
{
    if (g->on_logits || sampler_has_penalties(g)) return 0;
    uint64_t rng[64];
    for (int i = 0; i < n; i++) rng[i] = m->gen[seq[i]].rng;
    port_sample_params sp = {g->temperature, g->top_p, g->top_k};
    kvgpt_status s = port_sample(m->port, ids, m->s.logits, n, m->cfg.vocab_size, &sp, rng, err);
    if (s == KVGPT_ERR_UNSUPPORTED) return 0;
    *st = s;
    for (int i = 0; !s && i < n; i++) m->gen[seq[i]].rng = rng[i];
    return 1;
}

/* Draws sequence b's next token from its logits row. */
static kvgpt_status draw(kvgpt_model *m, const kvgpt_gen_options *g, int b, float *logits, int step, int32_t *tok,
                         kvgpt_error *err)
{
    const int V = m->cfg.vocab_size;
    kv_slot *sl = &m->slots[b];
    for (int i = 0; i < V; i++)
        if (isnan(logits[i]) || isinf(logits[i]))
            return kv_fail(err, KVGPT_ERR_NUMERIC,
                           "step %d of sequence %d: the model's logits hold %s (token %d): the weights or activations "
                           "overflowed",
                           step, b, isnan(logits[i]) ? "NaN" : "an infinity", i);
    if (sampler_has_penalties(g)) {
        int n = g->penalty_last_n < 0 || g->penalty_last_n > sl->n ? sl->n : g->penalty_last_n;
        sampler_penalize(logits, V, sl->tokens + (sl->n - n), n, g, m->sample_scratch);
    }
    if (g->on_logits) g->on_logits(g->user, b, logits, V);
    *tok = kvgpt_sample_logits(logits, V, g, &m->gen[b].rng, m->sample_scratch);
    if (*tok < 0)
        return kv_fail(err, KVGPT_ERR_ARG, "step %d of sequence %d: on_logits left no token to draw (NaN, or all -inf)",
                       step, b);
    return KVGPT_OK;
}

/* The sequence ends: what it holds back goes out (not after a callback's stop). */
static void end(kvgpt_model *m, const kvgpt_gen_options *g, kvgpt_gen_result *res, int b, kvgpt_stop_reason why)
{
    gen_slot *gs = &m->gen[b];
    if (why != KVGPT_STOP_CALLBACK && gen_finish(g, b, gs)) why = KVGPT_STOP_CALLBACK;
    gs->live = 0;
    gs->why = why;
    if (b < 64) res->stop[b] = why;
    res->stopped_eot += why == KVGPT_STOP_EOT;
    res->context_full |= why == KVGPT_STOP_CONTEXT_FULL;
}

/* After sequence b drew tok: the host gets it, then the stop conditions and
 * the window policy decide whether b goes on. Returns 1 when it does (the
 * step then appends tok); a sequence that ends keeps tok in its slot, pending
 * (the next call computes it), when there is room. */
static int advance(kvgpt_model *m, const kvgpt_gen_options *g, kvgpt_gen_result *res, int b, int32_t tok)
{
    gen_slot *gs = &m->gen[b];
    kv_slot *sl = &m->slots[b];
    gs->n_new++;
    if (b < 64) res->n_new[b] = gs->n_new;
    kvgpt_stop_reason why = gen_deliver(m, g, b, gs, tok);
    if (!why && g->stop_at_eot && tok == m->cfg.eot_token) why = KVGPT_STOP_EOT;
    if (!why && gs->n_new >= g->max_new_tokens) why = KVGPT_STOP_MAX_TOKENS;
    if (!why && !kv_slot_room(sl)) {
        if (g->window == KVGPT_WINDOW_STOP) {
            why = KVGPT_STOP_CONTEXT_FULL;
        } else {
            /* exact: nanoGPT's crop, the last context - 1 tokens recomputed with
             * the new one; shift: the newest keep - 1, once, then from the cache. */
            int keep = g->window == KVGPT_WINDOW_EXACT ? m->ctx : g->keep ? g->keep : m->ctx / 2;
            kv_slot_keep_newest(sl, (keep < 1 ? 1 : keep) - 1);
            res->recomputes++;
        }
    }
    if (!why) return 1;
    if (kv_slot_room(sl)) kv_slot_push(sl, tok);
    end(m, g, res, b, why);
    return 0;
}

static kvgpt_status generate(kvgpt_model *m, const int32_t *prompt, int n_prompt, const kvgpt_gen_options *g,
                             kvgpt_gen_result *res, kvgpt_error *err)
{
    const size_t V = (size_t)m->cfg.vocab_size;
    double t0 = now_s();
    for (int b = 0; b < g->n_seq; b++) {
        gen_slot_start(&m->gen[b], kvgpt_sampler_state(g->seed, b));
        if (g->max_new_tokens == 0) end(m, g, res, b, KVGPT_STOP_MAX_TOKENS);
    }
    if (g->max_new_tokens == 0) return KVGPT_OK;
    kvgpt_status s = prefill(m, prompt, n_prompt, g, res, err);
    res->prefill_s = now_s() - t0;
    int32_t tok[64], seq[64], dev[64];
    int n_live = g->n_seq;
    for (int b = 0; b < g->n_seq; b++) seq[b] = b;   /* logits row i belongs to seq[i] */
    /* The shared prompt's first rows were copied on the host: the device has row 0 only. */
    const int host_rows_first = !g->prompts && !g->append && g->n_seq > 1;
    for (int step = 0; !s && n_live; step++) {
        int n = 0;
        const int on_dev = !(step == 0 && host_rows_first) && draw_on_device(m, g, seq, n_live, dev, &s, err);
        for (int i = 0; i < n_live && !s; i++) {
            int b = seq[i];
            int32_t t = on_dev ? dev[i] : 0;
            if (on_dev && t < 0)
                s = kv_fail(err, KVGPT_ERR_NUMERIC, "step %d of sequence %d: the model's logits hold NaN or an "
                            "infinity: the weights or activations overflowed", step, b);
            else if (!on_dev)
                s = draw(m, g, b, m->s.h_logits + (size_t)i * V, step, &t, err);
            if (s) break;
            if (advance(m, g, res, b, t)) tok[n++] = t, seq[n - 1] = b;
        }
        if (s || !(n_live = n)) break;
        if (g->should_abort && g->should_abort(g->user)) {
            s = kv_fail(err, KVGPT_ERR_ABORTED, "aborted by the host after %d steps", step + 1);
            break;
        }
        if (!g->use_cache)
            for (int i = 0; i < n; i++) kv_slot_invalidate(&m->slots[seq[i]]);   /* nanoGPT: the whole window again */
        model_pending_logits none = {0, 0};
        s = model_run(m, n, tok, seq, NULL, none, NULL, err);
    }
    res->decode_s = now_s() - t0 - res->prefill_s;
    if (s)
        for (int b = 0; b < g->n_seq; b++)
            if (m->gen[b].live) end(m, g, res, b, s == KVGPT_ERR_ABORTED ? KVGPT_STOP_ABORTED : KVGPT_STOP_NONE);
    return s;
}

kvgpt_status kvgpt_generate(kvgpt_model *m, const int32_t *prompt, int n_prompt, const kvgpt_gen_options *g,
                            kvgpt_gen_result *res, kvgpt_error *err)
{
    if (!res) return kv_fail(err, KVGPT_ERR_ARG, "kvgpt_generate: NULL argument");
    memset(res, 0, sizeof *res);
    kvgpt_status s = model_enter(m, "kvgpt_generate", err);
    if (!s) s = kvgpt_gen_validate(m, prompt, n_prompt, g, err);
    if (s) return s;
    const int switches = port_thread_switches(m->port);
    kvgpt_abort_fn host_fn = m->abort_fn;
    void *host_user = m->abort_user;
    m->abort_fn = g->should_abort;
    m->abort_user = g->user;
    m->busy = 1;
    s = generate(m, prompt, n_prompt, g, res, err);
    m->busy = 0;
    m->abort_fn = host_fn;
    m->abort_user = host_user;
    res->thread_switches = port_thread_switches(m->port) - switches;
    if (!s && res->context_full)
        return kv_fail(err, KVGPT_ERR_CONTEXT_FULL, "the context (%d tokens) is full (window stop)", m->ctx);
    return s;
}
