/* model/deliver.c — handing a sequence's new tokens to the host: ids to
 * on_token, text in whole UTF-8 characters to on_text, with stop strings
 * matched on bytes across token boundaries. Bytes that could still begin a
 * stop string are held back (with the tokens they belong to) until the next
 * token decides; a matched stop string and all after it is never passed on. */
#include "model/deliver.h"
#include "tokenizer/utf8.h"

#include <string.h>

void gen_slot_start(gen_slot *gs, uint64_t rng)
{
    memset(gs, 0, sizeof *gs);
    gs->rng = rng;
    gs->live = 1;
}

/* Passes on the oldest k held bytes, and the tokens that end within what
 * has been passed on. KVGPT_STOP_CALLBACK when a callback asks to stop. */
static kvgpt_stop_reason release(const kvgpt_gen_options *g, int seq, gen_slot *gs, int k)
{
    kvgpt_stop_reason why = KVGPT_STOP_NONE;
    gs->bytes_out += k;
    while (gs->n_held_tok > 0 && gs->held_end[0] <= gs->bytes_out) {
        if (g->on_token && !why && g->on_token(g->user, seq, gs->held_tok[0])) why = KVGPT_STOP_CALLBACK;
        gs->n_held_tok--;
        memmove(gs->held_tok, gs->held_tok + 1, sizeof gs->held_tok[0] * (size_t)gs->n_held_tok);
        memmove(gs->held_end, gs->held_end + 1, sizeof gs->held_end[0] * (size_t)gs->n_held_tok);
    }
    if (k > 0 && g->on_text) {
        char text[3 * (KVGPT_MAX_STOP_LEN + 3)];
        size_t n = utf8_feed(&gs->text, gs->held, (size_t)k, text);
        if (n && !why && g->on_text(g->user, seq, text, n)) why = KVGPT_STOP_CALLBACK;
    }
    gs->n_held -= k;
    memmove(gs->held, gs->held + k, (size_t)gs->n_held);
    return why;
}

/* The longest tail of the held bytes that some stop string begins with. */
static int open_prefix(const kvgpt_gen_options *g, const gen_slot *gs)
{
    int best = 0;
    for (int i = 0; i < g->n_stop; i++) {
        int len = (int)strlen(g->stop[i]);
        for (int k = len - 1 < gs->n_held ? len - 1 : gs->n_held; k > best; k--)
            if (memcmp(gs->held + gs->n_held - k, g->stop[i], (size_t)k) == 0) {
                best = k;
                break;
            }
    }
    return best;
}

/* A stop string that ends at the newest held byte: its length, or 0. */
static int match_here(const kvgpt_gen_options *g, const gen_slot *gs)
{
    for (int i = 0; i < g->n_stop; i++) {
        int len = (int)strlen(g->stop[i]);
        if (len <= gs->n_held && memcmp(gs->held + gs->n_held - len, g->stop[i], (size_t)len) == 0) return len;
    }
    return 0;
}

kvgpt_stop_reason gen_deliver(const kvgpt_model *m, const kvgpt_gen_options *g, int seq, gen_slot *gs, int32_t tok)
{
    const char *b = NULL;
    size_t len = 0;
    if (kvgpt_has_tokenizer(m) && kvgpt_token_bytes(m, tok, &b, &len) != KVGPT_OK) len = 0;
    kvgpt_stop_reason why = KVGPT_STOP_NONE;
    if (gs->n_held_tok == GEN_HELD_TOKENS) why = release(g, seq, gs, gs->n_held);   /* only tokens of no bytes */
    gs->held_tok[gs->n_held_tok] = tok;
    gs->held_end[gs->n_held_tok++] = gs->bytes_in + (int64_t)len;
    for (size_t i = 0; i < len && !why; i++) {
        if (gs->n_held == KVGPT_MAX_STOP_LEN) why = release(g, seq, gs, gs->n_held - open_prefix(g, gs));
        gs->held[gs->n_held++] = (unsigned char)b[i];
        gs->bytes_in++;
        int hit = g->n_stop ? match_here(g, gs) : 0;
        if (hit) {
            kvgpt_stop_reason r = release(g, seq, gs, gs->n_held - hit);
            gs->n_held = gs->n_held_tok = 0;   /* the match and what follows: never passed on */
            return r ? r : KVGPT_STOP_STRING;
        }
    }
    if (why) return why;   /* the host asked to stop: nothing more goes out */
    return release(g, seq, gs, gs->n_held - (g->n_stop ? open_prefix(g, gs) : 0));
}

kvgpt_stop_reason gen_finish(const kvgpt_gen_options *g, int seq, gen_slot *gs)
{
    kvgpt_stop_reason why = release(g, seq, gs, gs->n_held);
    gs->bytes_out = INT64_MAX;   /* tokens of no bytes still held go too */
    if (release(g, seq, gs, 0) && !why) why = KVGPT_STOP_CALLBACK;
    char tail[3];
    size_t n = utf8_flush(&gs->text, tail);
    if (n && g->on_text && g->on_text(g->user, seq, tail, n) && !why) why = KVGPT_STOP_CALLBACK;
    return why;
}
