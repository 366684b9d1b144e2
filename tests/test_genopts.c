/* tests/test_genopts.c — what kvgpt_generate offers a host on top of the
 * step: a prompt per sequence, multi-turn append, stop strings matched
 * across tokens, whole-character text, on_logits edits, the penalties,
 * should_abort in a long prefill, stop reasons, calls from inside a
 * callback (KVGPT_ERR_BUSY), non-finite logits (KVGPT_ERR_NUMERIC), and
 * the window policies on the smallest context. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvgpt.h"
#include "tests/support/fixtures.h"
#include "tests/support/loader_st.h"
#include "tests/support/suite.h"

#define CHAR_MODEL "shakespeare_char"
#define BPE_MODEL "gpt2_tiny_hf"
#define MAX_TOK 512

#define SKIP_IF_NO_FIXTURES()                                                  \
    do {                                                                       \
        if (!tf_need_fixtures(__func__)) return;                               \
    } while (0)

static kvgpt_model *open_dir(const char *dir, int batch, int context)
{
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = dir;
    o.batch = batch;
    o.context = context;
    o.threads = 1;
    kvgpt_model *m = NULL;
    kvgpt_error err = {0, ""};
    ck_assert_msg(kvgpt_open(&o, NULL, 0, &m, &err) == KVGPT_OK, "opening %s: %s", dir, err.msg);
    return m;
}

static kvgpt_model *open_model(const char *name, int batch) { return open_dir(tf_path(name), batch, 0); }
static int V_of(const kvgpt_model *m) { return kvgpt_model_config(m)->vocab_size; }

/* What the callbacks saw. */
typedef struct {
    kvgpt_model *m;
    int32_t tok[4][MAX_TOK];
    int n[4];
    char text[4][4096];
    size_t text_len[4];
    int busy_checks;         /* calls made from inside a callback */
    int32_t ban;             /* on_logits: this token -inf (-1: none; -2: every token) */
    int aborts_after;        /* should_abort: 1 at this poll (0: never) */
    int polls;
    float *seen;             /* on_logits: a copy of sequence 0's first logits */
    int seen_done;
} sink;

static int on_tok(void *user, int seq, int32_t t)
{
    sink *s = user;
    if (seq >= 0 && seq < 4 && s->n[seq] < MAX_TOK) s->tok[seq][s->n[seq]++] = t;
    return 0;
}

static int on_text(void *user, int seq, const char *text, size_t len)
{
    sink *s = user;
    if (seq >= 0 && seq < 4 && s->text_len[seq] + len < sizeof s->text[0]) {
        memcpy(s->text[seq] + s->text_len[seq], text, len);
        s->text_len[seq] += len;
    }
    return 0;
}

static void on_logits(void *user, int seq, float *logits, int vocab)
{
    sink *s = user;
    if (s->seen && seq == 0 && !s->seen_done) {
        memcpy(s->seen, logits, sizeof(float) * (size_t)vocab);
        s->seen_done = 1;
    }
    if (s->ban == -2)
        for (int i = 0; i < vocab; i++) logits[i] = -INFINITY;
    else if (s->ban >= 0)
        logits[s->ban] = -INFINITY;
}

static int should_abort(void *user)
{
    sink *s = user;
    s->polls++;
    return s->aborts_after && s->polls >= s->aborts_after;
}

static kvgpt_gen_options greedy_opts(sink *s, int max_new)
{
    kvgpt_gen_options g;
    kvgpt_gen_options_default(&g);
    g.max_new_tokens = max_new;
    g.temperature = 0.0f;
    g.on_token = on_tok;
    g.on_text = on_text;
    g.user = s;
    s->ban = -1;
    return g;
}

static sink *new_sink(kvgpt_model *m)
{
    sink *s = calloc(1, sizeof *s);
    ck_assert_ptr_nonnull(s);
    s->m = m;
    s->ban = -1;
    return s;
}

static void encode(kvgpt_model *m, const char *text, int32_t *ids, int *n)
{
    kvgpt_error err;
    ck_assert_msg(kvgpt_encode(m, text, strlen(text), ids, MAX_TOK, n, &err) == KVGPT_OK, "encode: %s", err.msg);
}

/* Greedy continuation by the step API alone: the reference for generate. */
static void ref_greedy(kvgpt_model *r, const int32_t *ids, int n, int steps, int32_t *out)
{
    const int V = V_of(r);
    float *logits = malloc(sizeof(float) * (size_t)V);
    int32_t *all = malloc(sizeof(int32_t) * (size_t)(n + steps));
    memcpy(all, ids, sizeof(int32_t) * (size_t)n);
    kvgpt_error err;
    for (int i = 0; i < steps; i++) {
        ck_assert_msg(kvgpt_forward(r, all, n + i, logits, &err) == KVGPT_OK, "%s", err.msg);
        int b = 0;
        for (int v = 1; v < V; v++)
            if (logits[v] > logits[b]) b = v;
        out[i] = all[n + i] = b;
    }
    free(logits);
    free(all);
}

/* ---- prompts per sequence, and multi-turn append ------------------------------- */

START_TEST(test_prompts_and_append)
{
    SKIP_IF_NO_FIXTURES();
    kvgpt_model *m = open_model(CHAR_MODEL, 3), *r = open_model(CHAR_MODEL, 1);
    sink *s = new_sink(m);
    const char *texts[3] = {"ROMEO:", "Wherefore art thou", "\n"};
    int32_t ids[3][MAX_TOK], ref[24];
    int n[3];
    for (int i = 0; i < 3; i++) encode(m, texts[i], ids[i], &n[i]);
    const int32_t *prompts[3] = {ids[0], ids[1], ids[2]};
    kvgpt_gen_options g = greedy_opts(s, 12);
    g.n_seq = 3;
    g.prompts = prompts;
    g.n_prompts = n;
    kvgpt_gen_result res;
    kvgpt_error err;
    ck_assert_msg(kvgpt_generate(m, NULL, 0, &g, &res, &err) == KVGPT_OK, "%s", err.msg);
    for (int i = 0; i < 3; i++) {
        ref_greedy(r, ids[i], n[i], 12, ref);
        ck_assert_msg(s->n[i] == 12 && memcmp(s->tok[i], ref, sizeof(int32_t) * 12) == 0, "sequence %d differs", i);
        ck_assert_int_eq(res.stop[i], KVGPT_STOP_MAX_TOKENS);
        ck_assert_int_eq(kvgpt_seq_length(m, i), n[i] + 12);   /* the last token is held, pending */
    }
    /* Both a prompt and prompts: refused. */
    ck_assert_int_eq(kvgpt_generate(m, ids[0], n[0], &g, &res, &err), KVGPT_ERR_ARG);

    /* Turn 2 of sequence 1, appended: its continuation is that of the whole history. */
    int32_t hist[MAX_TOK], turn[MAX_TOK];
    int nh = 0, nt;
    memcpy(hist, ids[1], sizeof(int32_t) * (size_t)n[1]);
    nh = n[1];
    memcpy(hist + nh, s->tok[1], sizeof(int32_t) * 12);
    nh += 12;
    encode(m, " she", turn, &nt);
    memcpy(hist + nh, turn, sizeof(int32_t) * (size_t)nt);
    nh += nt;
    memset(s->n, 0, sizeof s->n);
    kvgpt_gen_options g2 = greedy_opts(s, 10);
    g2.append = 1;
    const int32_t *p2[2] = {turn, turn};
    int n2[2] = {0, nt};   /* sequence 0: nothing new, it just goes on */
    g2.n_seq = 2;
    g2.prompts = p2;
    g2.n_prompts = n2;
    ck_assert_msg(kvgpt_generate(m, NULL, 0, &g2, &res, &err) == KVGPT_OK, "%s", err.msg);
    ref_greedy(r, hist, nh, 10, ref);
    ck_assert_msg(memcmp(s->tok[1], ref, sizeof(int32_t) * 10) == 0, "the appended turn differs");
    int32_t h0[MAX_TOK];
    memcpy(h0, ids[0], sizeof(int32_t) * (size_t)n[0]);
    int32_t first[24];
    ref_greedy(r, ids[0], n[0], 22, first);
    ck_assert_msg(memcmp(s->tok[0], first + 12, sizeof(int32_t) * 10) == 0, "sequence 0 did not just go on");
    ck_assert_int_eq(res.cropped[1], 0);
    free(s);
    kvgpt_close(m);
    kvgpt_close(r);
}
END_TEST

/* A prompt longer than the context: the oldest tokens are cropped (and counted). */
START_TEST(test_cropped)
{
    SKIP_IF_NO_FIXTURES();
    kvgpt_model *m = open_model(CHAR_MODEL, 1);
    sink *s = new_sink(m);
    int32_t ids[100];
    for (int i = 0; i < 100; i++) ids[i] = 1 + i % 60;
    kvgpt_gen_options g = greedy_opts(s, 3);
    kvgpt_gen_result res;
    kvgpt_error err;
    ck_assert(kvgpt_generate(m, ids, 100, &g, &res, &err) == KVGPT_OK);
    ck_assert_int_eq(res.cropped[0], 36);
    g.window = KVGPT_WINDOW_STOP;
    ck_assert_int_eq(kvgpt_generate(m, ids, 100, &g, &res, &err), KVGPT_ERR_PROMPT);
    free(s);
    kvgpt_close(m);
}
END_TEST

/* ---- stop strings and text ------------------------------------------------------- */

START_TEST(test_stop_strings)
{
    SKIP_IF_NO_FIXTURES();
    /* The char model's greedy text from "\n" runs "...the shall the shall...": a
     * stop string of several one-character tokens. */
    kvgpt_model *m = open_model(CHAR_MODEL, 1);
    sink *s = new_sink(m), *all = new_sink(m);
    int32_t nl = 0;
    kvgpt_gen_options g = greedy_opts(all, 200);
    kvgpt_gen_result res;
    kvgpt_error err;
    ck_assert(kvgpt_generate(m, &nl, 1, &g, &res, &err) == KVGPT_OK);
    all->text[0][all->text_len[0]] = 0;
    const char *stops[2] = {"zzz", "all th"};
    const char *hit = strstr(all->text[0], "all th");
    ck_assert_msg(hit != NULL, "the greedy text has no \"all th\": %s", all->text[0]);
    size_t before = (size_t)(hit - all->text[0]);
    g = greedy_opts(s, 200);
    g.stop = stops;
    g.n_stop = 2;
    ck_assert(kvgpt_generate(m, &nl, 1, &g, &res, &err) == KVGPT_OK);
    ck_assert_int_eq(res.stop[0], KVGPT_STOP_STRING);
    ck_assert_msg(s->text_len[0] == before && memcmp(s->text[0], all->text[0], before) == 0,
                  "text before the stop string: %zu bytes, %zu expected", s->text_len[0], before);
    /* Tokens: exactly those wholly before the match (one character each here). */
    ck_assert_int_eq(s->n[0], (int)before);
    ck_assert_int_eq(res.n_new[0], (int)before + 6);
    /* A stop string that never matches holds nothing back in the end. */
    const char *never[1] = {"the shall the shall the shall the shall the shall the shall X"};
    memset(s->n, 0, sizeof s->n);
    memset(s->text_len, 0, sizeof s->text_len);
    g.stop = never;
    g.n_stop = 1;
    ck_assert(kvgpt_generate(m, &nl, 1, &g, &res, &err) == KVGPT_OK);
    ck_assert_int_eq(res.stop[0], KVGPT_STOP_MAX_TOKENS);
    ck_assert(s->text_len[0] == all->text_len[0] && memcmp(s->text[0], all->text[0], s->text_len[0]) == 0);
    ck_assert_int_eq(s->n[0], 200);
    /* Bad stop strings. */
    const char *empty[1] = {""};
    g.stop = empty;
    ck_assert_int_eq(kvgpt_generate(m, &nl, 1, &g, &res, &err), KVGPT_ERR_ARG);
    g.n_stop = KVGPT_MAX_STOP + 1;
    ck_assert_int_eq(kvgpt_generate(m, &nl, 1, &g, &res, &err), KVGPT_ERR_ARG);
    free(s);
    free(all);
    kvgpt_close(m);
}
END_TEST

/* A token whose bytes are id's; -1 when the vocabulary has no such token. */
static int32_t token_of_bytes(const kvgpt_model *m, const char *bytes, size_t n)
{
    for (int32_t id = 0; id < V_of(m); id++) {
        const char *b;
        size_t len;
        if (kvgpt_token_bytes(m, id, &b, &len) == KVGPT_OK && len == n && memcmp(b, bytes, n) == 0) return id;
    }
    return -1;
}

START_TEST(test_token_text_utf8)
{
    SKIP_IF_NO_FIXTURES();
    kvgpt_model *m = open_model(BPE_MODEL, 1);
    int32_t c3 = token_of_bytes(m, "\xC3", 1), a9 = token_of_bytes(m, "\xA9", 1), ff = token_of_bytes(m, "\xFF", 1);
    int32_t e2 = token_of_bytes(m, "\xE2", 1), a = token_of_bytes(m, "a", 1);
    ck_assert(c3 >= 0 && a9 >= 0 && ff >= 0 && e2 >= 0 && a >= 0);
    kvgpt_text_state st;
    kvgpt_text_init(&st);
    char out[64];
    size_t n;
    /* é split over two tokens: nothing, then the whole character. */
    ck_assert(kvgpt_token_text(m, &st, c3, out, sizeof out, &n) == KVGPT_OK && n == 0);
    ck_assert(kvgpt_token_text(m, &st, a9, out, sizeof out, &n) == KVGPT_OK);
    ck_assert(n == 2 && memcmp(out, "\xC3\xA9", 2) == 0);
    /* An invalid byte: U+FFFD. A started character cut short: U+FFFD, then the next one. */
    ck_assert(kvgpt_token_text(m, &st, ff, out, sizeof out, &n) == KVGPT_OK);
    ck_assert(n == 3 && memcmp(out, "\xEF\xBF\xBD", 3) == 0);
    ck_assert(kvgpt_token_text(m, &st, e2, out, sizeof out, &n) == KVGPT_OK && n == 0);
    ck_assert(kvgpt_token_text(m, &st, a, out, sizeof out, &n) == KVGPT_OK);
    ck_assert(n == 4 && memcmp(out, "\xEF\xBF\xBD" "a", 4) == 0);
    /* Too small a buffer: the size needed, and the state unchanged. */
    ck_assert(kvgpt_token_text(m, &st, c3, out, sizeof out, &n) == KVGPT_OK && n == 0);
    ck_assert(kvgpt_token_text(m, &st, a9, out, 1, &n) == KVGPT_ERR_ARG && n == 2);
    ck_assert(kvgpt_token_text(m, &st, a9, out, 2, &n) == KVGPT_OK && n == 2);
    /* The end of the stream with a character held: U+FFFD. */
    ck_assert(kvgpt_token_text(m, &st, e2, out, sizeof out, &n) == KVGPT_OK && n == 0);
    ck_assert(kvgpt_text_flush(&st, out, sizeof out, &n) == KVGPT_OK && n == 3);
    ck_assert(kvgpt_text_flush(&st, out, sizeof out, &n) == KVGPT_OK && n == 0);
    ck_assert(kvgpt_token_text(m, &st, V_of(m), out, sizeof out, &n) == KVGPT_ERR_TOKEN);

    /* Generation's on_text: valid UTF-8 whatever the random model draws. */
    sink *s = new_sink(m);
    kvgpt_gen_options g = greedy_opts(s, 300);
    g.temperature = 1.0f;
    g.top_k = 0;
    g.stop_at_eot = 0;
    int32_t p = c3;
    kvgpt_gen_result res;
    kvgpt_error err;
    ck_assert(kvgpt_generate(m, &p, 1, &g, &res, &err) == KVGPT_OK);
    kvgpt_text_state chk;
    kvgpt_text_init(&chk);
    char *again = malloc(3 * s->text_len[0] + 8);
    size_t w = 0;
    for (int i = 0; i < s->n[0]; i++) {
        ck_assert(kvgpt_token_text(m, &chk, s->tok[0][i], again + w, 3 * s->text_len[0] + 8 - w, &n) == KVGPT_OK);
        w += n;
    }
    ck_assert(kvgpt_text_flush(&chk, again + w, 8, &n) == KVGPT_OK);
    w += n;
    ck_assert_msg(w == s->text_len[0] && memcmp(again, s->text[0], w) == 0, "on_text differs from kvgpt_token_text");
    free(again);
    free(s);
    kvgpt_close(m);
}
END_TEST

/* ---- on_logits and the penalties -------------------------------------------------- */

START_TEST(test_on_logits_and_penalties)
{
    SKIP_IF_NO_FIXTURES();
    kvgpt_model *m = open_model(CHAR_MODEL, 1), *r = open_model(CHAR_MODEL, 1);
    const int V = V_of(m);
    sink *s = new_sink(m);
    int32_t ids[MAX_TOK], ref[40];
    int n;
    encode(m, "ROMEO:\nthe shall the", ids, &n);
    ref_greedy(r, ids, n, 40, ref);
    kvgpt_gen_options g = greedy_opts(s, 40);
    kvgpt_gen_result res;
    kvgpt_error err;
    /* Ban the token greedy would draw first: it never comes. */
    g.on_logits = on_logits;
    s->ban = ref[0];
    ck_assert(kvgpt_generate(m, ids, n, &g, &res, &err) == KVGPT_OK);
    for (int i = 0; i < s->n[0]; i++) ck_assert_int_ne(s->tok[0][i], ref[0]);
    ck_assert_int_eq(s->n[0], 40);
    /* Ban everything: a clear error, not a token. */
    s->ban = -2;
    ck_assert_int_eq(kvgpt_generate(m, ids, n, &g, &res, &err), KVGPT_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "on_logits") != NULL, "%s", err.msg);

    /* Penalties: the logits on_logits sees are the model's with HF's
     * repetition penalty and the presence/frequency penalties applied. */
    float *raw = malloc(sizeof(float) * (size_t)V), *want = malloc(sizeof(float) * (size_t)V);
    s->seen = malloc(sizeof(float) * (size_t)V);
    s->ban = -1;
    s->seen_done = 0;
    g.repetition_penalty = 1.3f;
    g.presence_penalty = 0.25f;
    g.frequency_penalty = 0.5f;
    g.penalty_last_n = 8;
    ck_assert(kvgpt_generate(m, ids, n, &g, &res, &err) == KVGPT_OK);
    ck_assert(kvgpt_forward(r, ids, n, raw, &err) == KVGPT_OK);
    memcpy(want, raw, sizeof(float) * (size_t)V);
    int count[256] = {0};
    for (int i = n - 8; i < n; i++) count[ids[i]]++;
    for (int t = 0; t < V; t++) {
        if (!count[t]) continue;
        want[t] = want[t] > 0.0f ? want[t] / 1.3f : want[t] * 1.3f;
        want[t] -= 0.25f + (float)count[t] * 0.5f;
    }
    for (int t = 0; t < V; t++)
        ck_assert_msg(s->seen[t] == want[t], "token %d: %g after the penalties, %g expected (raw %g)", t,
                      (double)s->seen[t], (double)want[t], (double)raw[t]);
    /* Out of range penalties are refused. */
    g.repetition_penalty = 0.0f;
    ck_assert_int_eq(kvgpt_generate(m, ids, n, &g, &res, &err), KVGPT_ERR_ARG);
    g.repetition_penalty = 1.0f;
    g.penalty_last_n = -2;
    ck_assert_int_eq(kvgpt_generate(m, ids, n, &g, &res, &err), KVGPT_ERR_ARG);
    free(raw);
    free(want);
    free(s->seen);
    free(s);
    kvgpt_close(m);
    kvgpt_close(r);
}
END_TEST

/* ---- should_abort during a long prefill --------------------------------------------- */

/* A tiny random model with a 1,024-token context, written to dir. */
static void write_long_model(const char *dir)
{
    static const char cfg[] = "{\"n_layer\": 3, \"n_head\": 2, \"n_embd\": 32, \"block_size\": 1024, "
                              "\"vocab_size\": 65, \"bias\": false}";
    ck_assert(tf_write(dir, "config.json", cfg, strlen(cfg)) == 0);
    const int L = 3, C = 32;
    struct { const char *name; int d0, d1; } t[] = {
        {"transformer.wte.weight", 65, C}, {"transformer.wpe.weight", 1024, C}, {"transformer.ln_f.weight", C, 0}};
    ts_file f = {calloc(4 + 6 * (size_t)L, sizeof(ts_entry)), 0};
    uint32_t seed = 1;
    for (int i = 0; i < 3 + 6 * L; i++) {
        ts_entry *e = &f.e[f.n++];
        int l = (i - 3) / 6, k = (i - 3) % 6;
        static const char *const layer[6] = {"ln_1.weight", "ln_2.weight", "attn.c_attn.weight",
                                              "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"};
        static const int dims[6][2] = {{32, 0}, {32, 0}, {96, 32}, {32, 32}, {128, 32}, {32, 128}};
        if (i < 3) {
            snprintf(e->name, sizeof e->name, "%s", t[i].name);
            e->shape[0] = t[i].d0;
            e->shape[1] = t[i].d1;
        } else {
            snprintf(e->name, sizeof e->name, "transformer.h.%d.%s", l, layer[k]);
            e->shape[0] = dims[k][0];
            e->shape[1] = dims[k][1];
        }
        e->ndim = e->shape[1] ? 2 : 1;
        snprintf(e->dtype, sizeof e->dtype, "F32");
        size_t count = (size_t)e->shape[0] * (size_t)(e->shape[1] ? e->shape[1] : 1);
        float *v = malloc(count * sizeof(float));
        for (size_t j = 0; j < count; j++) {
            seed = seed * 1103515245u + 12345u;
            v[j] = e->ndim == 1 ? 1.0f : ((float)((seed >> 9) % 2001) - 1000.0f) * 1e-4f;
        }
        e->data = (unsigned char *)v;
        e->nbytes = count * sizeof(float);
    }
    ts_pack(&f);
    ck_assert(ts_write(&f, dir, "model.safetensors") == 0);
    ts_free(&f);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

START_TEST(test_abort_long_prefill)
{
    char dir[4096];
    ck_assert(tf_tmpdir(dir, sizeof dir) == 0);
    write_long_model(dir);
    kvgpt_model *m = open_dir(dir, 1, 0);
    int32_t *ids = malloc(sizeof(int32_t) * 1000);
    for (int i = 0; i < 1000; i++) ids[i] = (i * 7) % 65;
    sink *s = new_sink(m);
    kvgpt_gen_options g = greedy_opts(s, 1);
    g.should_abort = should_abort;
    kvgpt_gen_result res;
    kvgpt_error err;
    /* Not aborting: polled at least once per layer of the 1,000-row forward, and once per step. */
    double t0 = now_s();
    ck_assert_msg(kvgpt_generate(m, ids, 1000, &g, &res, &err) == KVGPT_OK, "%s", err.msg);
    double full = now_s() - t0;
    ck_assert_msg(s->polls >= 3, "%d polls in a 3-layer prefill", s->polls);
    /* Aborting at the second poll: inside the prefill, long before its end. */
    s->polls = 0;
    s->aborts_after = 2;
    t0 = now_s();
    ck_assert_int_eq(kvgpt_generate(m, ids, 1000, &g, &res, &err), KVGPT_ERR_ABORTED);
    double cut = now_s() - t0;
    ck_assert_int_eq(s->polls, 2);
    ck_assert_int_eq(res.n_new[0], 0);
    ck_assert_int_eq(res.stop[0], KVGPT_STOP_ABORTED);
    ck_assert_msg(cut < full, "aborted after %.3f s, the whole prefill takes %.3f s", cut, full);
    /* What was not computed is not held; the model still works. */
    ck_assert_int_le(kvgpt_seq_length(m, 0), 1000);
    s->aborts_after = 0;
    ck_assert(kvgpt_generate(m, ids, 10, &g, &res, &err) == KVGPT_OK);
    /* The model-wide abort callback serves kvgpt_decode too. */
    kvgpt_set_abort_callback(m, should_abort, s);
    s->polls = 0;
    s->aborts_after = 1;
    int32_t seq[1000] = {0};
    kvgpt_batch b = {1000, ids, seq, NULL};
    float logits[65];
    ck_assert(kvgpt_seq_reset(m, 0, &err) == KVGPT_OK);
    ck_assert_int_eq(kvgpt_decode(m, &b, logits, &err), KVGPT_ERR_ABORTED);
    ck_assert_int_eq(kvgpt_seq_length(m, 0), 0);
    kvgpt_set_abort_callback(m, NULL, NULL);
    ck_assert(kvgpt_decode(m, &b, logits, &err) == KVGPT_OK);
    ck_assert_int_eq(kvgpt_seq_length(m, 0), 1000);
    free(ids);
    free(s);
    kvgpt_close(m);
}
END_TEST

/* ---- calls from inside a callback --------------------------------------------------- */

static int reenter(void *user, int seq, int32_t t)
{
    sink *s = user;
    kvgpt_model *m = s->m;
    kvgpt_error err;
    int32_t one = 1, zero = 0;
    kvgpt_batch b = {1, &one, &zero, NULL};
    float logits[65];
    kvgpt_gen_options g;
    kvgpt_gen_options_default(&g);
    kvgpt_gen_result res;
    int n;
    unsigned char blob[64];
    size_t w;
    ck_assert_int_eq(kvgpt_decode(m, &b, logits, &err), KVGPT_ERR_BUSY);
    ck_assert_int_eq(kvgpt_generate(m, &one, 1, &g, &res, &err), KVGPT_ERR_BUSY);
    ck_assert_int_eq(kvgpt_forward(m, &one, 1, logits, &err), KVGPT_ERR_BUSY);
    ck_assert_int_eq(kvgpt_seq_reset(m, 0, &err), KVGPT_ERR_BUSY);
    ck_assert_int_eq(kvgpt_seq_truncate(m, 0, 0, &err), KVGPT_ERR_BUSY);
    ck_assert_int_eq(kvgpt_seq_copy(m, 0, 1, &err), KVGPT_ERR_BUSY);
    ck_assert_int_eq(kvgpt_seq_shift(m, 0, 0, &err), KVGPT_ERR_BUSY);
    ck_assert_int_eq(kvgpt_seq_state_save(m, 0, blob, sizeof blob, &w, &err), KVGPT_ERR_BUSY);
    ck_assert_int_eq(kvgpt_seq_state_load(m, 0, blob, sizeof blob, &err), KVGPT_ERR_BUSY);
    ck_assert_int_eq(kvgpt_encode(m, "a", 1, &one, 1, &n, &err), KVGPT_ERR_BUSY);
    ck_assert_msg(strstr(err.msg, "callback") != NULL, "%s", err.msg);
    /* What only reads is fine. */
    kvgpt_text_state st;
    kvgpt_text_init(&st);
    char out[32];
    size_t len;
    ck_assert(kvgpt_token_text(m, &st, t, out, sizeof out, &len) == KVGPT_OK);
    ck_assert_int_ge(kvgpt_seq_length(m, seq), 1);
    s->busy_checks++;
    return 0;
}

START_TEST(test_busy)
{
    SKIP_IF_NO_FIXTURES();
    kvgpt_model *m = open_model(CHAR_MODEL, 2);
    sink *s = new_sink(m);
    int32_t p = 0;
    kvgpt_gen_options g = greedy_opts(s, 5);
    g.on_token = reenter;
    kvgpt_gen_result res;
    kvgpt_error err;
    ck_assert(kvgpt_generate(m, &p, 1, &g, &res, &err) == KVGPT_OK);
    ck_assert_int_eq(s->busy_checks, 5);
    /* After it returns, the model is free again. */
    int32_t seq = 0;
    kvgpt_batch b = {1, &p, &seq, NULL};
    float logits[65];
    ck_assert(kvgpt_decode(m, &b, logits, &err) == KVGPT_OK);
    free(s);
    kvgpt_close(m);
}
END_TEST

/* ---- non-finite logits, and the smallest context --------------------------------------- */

START_TEST(test_numeric)
{
    SKIP_IF_NO_FIXTURES();
    char dir[4096];
    ck_assert(tf_tmpdir(dir, sizeof dir) == 0 && tf_copy_dir(tf_path(CHAR_MODEL), dir) == 0);
    ts_file f;
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ck_assert(ts_read(path, &f) == 0);
    const float vals[3] = {NAN, INFINITY, 3e38f};
    for (int k = 0; k < 3; k++) {
        ts_entry *e = ts_find(&f, k == 2 ? "transformer.wte.weight" : "transformer.ln_f.weight");
        ck_assert_ptr_nonnull(e);
        float *w = (float *)(void *)e->data;
        for (size_t i = 0; i < e->nbytes / 4; i++) w[i] = vals[k];
        ck_assert(ts_write(&f, dir, "model.safetensors") == 0);
        kvgpt_model *m = open_dir(dir, 2, 0);
        sink *s = new_sink(m);
        int32_t p = 1;
        kvgpt_gen_options g = greedy_opts(s, 5);
        g.n_seq = 2;
        g.temperature = 0.8f;
        kvgpt_gen_result res;
        kvgpt_error err;
        ck_assert_int_eq(kvgpt_generate(m, &p, 1, &g, &res, &err), KVGPT_ERR_NUMERIC);
        ck_assert_msg(strstr(err.msg, "step 0 of sequence 0") != NULL, "%s", err.msg);
        ck_assert_int_eq(s->n[0], 0);
        free(s);
        kvgpt_close(m);
        ts_free(&f);
        ck_assert(ts_read(path, &f) == 0);
    }
    ts_free(&f);
}
END_TEST

/* SHIFT whose keep rounds to nothing (a context of 1) still generates, as does EXACT. */
START_TEST(test_context_of_one)
{
    SKIP_IF_NO_FIXTURES();
    kvgpt_model *m = open_dir(tf_path(CHAR_MODEL), 1, 1), *r = open_dir(tf_path(CHAR_MODEL), 1, 1);
    for (int w = KVGPT_WINDOW_SHIFT; w <= KVGPT_WINDOW_EXACT; w++) {
        sink *s = new_sink(m);
        int32_t p = 5, ref[20];
        kvgpt_gen_options g = greedy_opts(s, 20);
        g.window = (kvgpt_window)w;
        kvgpt_gen_result res;
        kvgpt_error err;
        ck_assert_msg(kvgpt_generate(m, &p, 1, &g, &res, &err) == KVGPT_OK, "window %d: %s", w, err.msg);
        ck_assert_int_eq(s->n[0], 20);
        ck_assert_int_eq(res.recomputes, 19);
        /* Each step sees only the previous token. */
        int32_t prev = p;
        for (int i = 0; i < 20; i++) {
            ref_greedy(r, &prev, 1, 1, &ref[i]);
            prev = ref[i];
        }
        ck_assert_msg(memcmp(ref, s->tok[0], sizeof ref) == 0, "window %d differs from one-token windows", w);
        free(s);
    }
    kvgpt_close(m);
    kvgpt_close(r);
}
END_TEST

static Suite *genopts_suite(void)
{
    Suite *s = suite_create("genopts");
    TCase *t = tcase_create("options");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, test_prompts_and_append);
    tcase_add_test(t, test_cropped);
    tcase_add_test(t, test_stop_strings);
    tcase_add_test(t, test_token_text_utf8);
    tcase_add_test(t, test_on_logits_and_penalties);
    tcase_add_test(t, test_abort_long_prefill);
    tcase_add_test(t, test_busy);
    tcase_add_test(t, test_numeric);
    tcase_add_test(t, test_context_of_one);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return tf_run_suite(genopts_suite()); }
