/* tests/test_session.c — the step API: sequence slots that keep their cache
 * between calls, kvgpt_decode over tokens tagged by slot, the slot
 * operations (reset, truncate, copy, shift) and saved states, on both
 * fixture models. The engine's rows are exact (a row's bits never depend on
 * what else is in its forward), so everything here is compared bitwise
 * against kvgpt_forward over the same tokens, in every weight dtype. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvgpt.h"
#include "tests/support/fixtures.h"
#include "tests/support/refjson.h"
#include "tests/support/suite.h"

#define CHAR_MODEL "shakespeare_char"
#define BPE_MODEL "gpt2_tiny_hf"
#define MAX_LEN 160

#define SKIP_IF_NO_FIXTURES()                                                  \
    do {                                                                       \
        if (!tf_need_fixtures(__func__)) return;                               \
    } while (0)

static kvgpt_model *open_model(const char *name, int batch, kvgpt_dtype dt, int logits_all)
{
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = tf_path(name);
    o.batch = batch;
    o.threads = 1;
    o.weight_dtype = dt;
    o.logits_all = logits_all;
    kvgpt_model *m = NULL;
    kvgpt_error err = {0, ""};
    ck_assert_msg(kvgpt_open(&o, NULL, 0, &m, &err) == KVGPT_OK, "opening %s: %s", name, err.msg);
    return m;
}

static int V_of(const kvgpt_model *m) { return kvgpt_model_config(m)->vocab_size; }
static int ctx_of(const kvgpt_model *m) { return kvgpt_model_plan(m)->context; }

/* A deterministic stream of token ids for prompts. */
static void make_ids(int32_t *out, int n, int V, uint32_t seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        out[i] = (int32_t)((seed >> 8) % (uint32_t)V);
    }
}

/* The last-position logits of ids [0, n) by kvgpt_forward on model r. */
static void forward_last(kvgpt_model *r, const int32_t *ids, int n, float *out)
{
    kvgpt_error err;
    ck_assert_msg(kvgpt_forward(r, ids, n, out, &err) == KVGPT_OK, "forward of %d: %s", n, err.msg);
}

static void assert_bitwise(const float *a, const float *b, int V, const char *what)
{
    for (int v = 0; v < V; v++)
        ck_assert_msg(memcmp(&a[v], &b[v], sizeof(float)) == 0, "%s: logit %d is %.9g, %.9g expected", what, v,
                      (double)a[v], (double)b[v]);
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static kvgpt_status decode1(kvgpt_model *m, int32_t tok, int32_t seq, float *logits, kvgpt_error *err)
{
    kvgpt_batch b = {1, &tok, &seq, NULL};
    return kvgpt_decode(m, &b, logits, err);
}

/* ---- 1: prompt, then one token per call = kvgpt_forward, bitwise ---------------- */

/* nslots slots with different prompts, all decoded in one batch, then 20
 * greedy tokens each, one kvgpt_decode per step for all slots: every logit
 * row equals kvgpt_forward over the slot's tokens so far. */
static void decode_equals_forward(const char *name, kvgpt_dtype dt, int nslots)
{
    kvgpt_model *m = open_model(name, nslots, dt, 0), *r = open_model(name, 1, dt, 0);
    const int V = V_of(m), steps = 20;
    int32_t hist[4][MAX_LEN], len[4], tok[64], seq[64];
    float *got = malloc(sizeof(float) * (size_t)V * 4), *want = malloc(sizeof(float) * (size_t)V);
    ck_assert(got && want && nslots <= 4);
    int n = 0;
    for (int s = 0; s < nslots; s++) {
        len[s] = 3 + 5 * s;
        make_ids(hist[s], len[s], V, 7u + (uint32_t)s);
        for (int i = 0; i < len[s]; i++) tok[n] = hist[s][i], seq[n++] = s;
    }
    kvgpt_batch b = {n, tok, seq, NULL};
    kvgpt_error err;
    ck_assert_msg(kvgpt_decode(m, &b, got, &err) == KVGPT_OK, "%s: decode of the prompts: %s", name, err.msg);
    char what[128];
    for (int step = 0; step <= steps; step++) {
        for (int s = 0; s < nslots; s++) {
            ck_assert_int_eq(kvgpt_seq_length(m, s), len[s]);
            forward_last(r, hist[s], len[s], want);
            snprintf(what, sizeof what, "%s dtype %d, %d slots: slot %d after %d tokens", name, (int)dt, nslots, s,
                     len[s]);
            assert_bitwise(got + (size_t)s * V, want, V, what);
        }
        if (step == steps) break;
        for (int s = 0; s < nslots; s++) {
            tok[s] = argmax(got + (size_t)s * V, V);
            seq[s] = s;
            hist[s][len[s]++] = tok[s];
        }
        kvgpt_batch st = {nslots, tok, seq, NULL};
        ck_assert_msg(kvgpt_decode(m, &st, got, &err) == KVGPT_OK, "%s: step %d: %s", name, step, err.msg);
    }
    free(got);
    free(want);
    kvgpt_close(m);
    kvgpt_close(r);
}

START_TEST(test_decode_equals_forward)
{
    SKIP_IF_NO_FIXTURES();
    const char *models[2] = {CHAR_MODEL, BPE_MODEL};
    for (int i = 0; i < 2; i++)
        for (int dt = KVGPT_DTYPE_F32; dt <= KVGPT_DTYPE_BF16; dt++) {
            decode_equals_forward(models[i], (kvgpt_dtype)dt, 1);
            decode_equals_forward(models[i], (kvgpt_dtype)dt, 3);
        }
}
END_TEST

/* Flags: logits of every flagged token, in batch order, and a batch longer
 * than one forward holds (computed in turns) changes no bit. */
START_TEST(test_decode_flags_and_long_batches)
{
    SKIP_IF_NO_FIXTURES();
    kvgpt_model *m = open_model(CHAR_MODEL, 4, KVGPT_DTYPE_F32, 0), *r = open_model(CHAR_MODEL, 1, KVGPT_DTYPE_F32, 0);
    const int V = V_of(m), ctx = ctx_of(m);
    /* 4 slots x 60 tokens = 240 rows: more than the 64 rows of a forward. */
    int32_t ids[4][64], tok[256], seq[256];
    int8_t flag[256];
    int n = 0, flagged = 0;
    for (int s = 0; s < 4; s++) make_ids(ids[s], 60, V, 100u + (uint32_t)s);
    for (int i = 0; i < 60; i++)
        for (int s = 0; s < 4; s++) {   /* interleaved: batch order is not slot order */
            tok[n] = ids[s][i];
            seq[n] = s;
            flag[n] = (int8_t)(i % 7 == 3 || i == 59);
            flagged += flag[n++];
        }
    float *got = malloc(sizeof(float) * (size_t)V * (size_t)flagged), *want = malloc(sizeof(float) * (size_t)V);
    kvgpt_batch b = {n, tok, seq, flag};
    kvgpt_error err;
    ck_assert_msg(kvgpt_decode(m, &b, got, &err) == KVGPT_OK, "long batch: %s", err.msg);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!flag[i]) continue;
        int s = seq[i], pos = i / 4;
        forward_last(r, ids[s], pos + 1, want);
        char what[96];
        snprintf(what, sizeof what, "flagged token %d (slot %d, position %d)", i, s, pos);
        assert_bitwise(got + (size_t)k++ * V, want, V, what);
    }
    ck_assert_int_eq(k, flagged);
    ck_assert(ctx == 64);
    free(got);
    free(want);
    kvgpt_close(m);
    kvgpt_close(r);
}
END_TEST

/* kvgpt_forward reports slot 0's logits only, whatever other slots hold
 * pending (generate leaves each sequence's last token to the next call). */
START_TEST(test_forward_beside_pending_slots)
{
    SKIP_IF_NO_FIXTURES();
    kvgpt_model *m = open_model(CHAR_MODEL, 3, KVGPT_DTYPE_F32, 1), *r = open_model(CHAR_MODEL, 1, KVGPT_DTYPE_F32, 1);
    const int V = V_of(m);
    int32_t p[5] = {1, 2, 3, 4, 5}, ids[12];
    kvgpt_gen_options g;
    kvgpt_gen_options_default(&g);
    g.n_seq = 3;
    g.max_new_tokens = 4;
    kvgpt_gen_result res;
    kvgpt_error err;
    ck_assert(kvgpt_generate(m, p, 5, &g, &res, &err) == KVGPT_OK);
    make_ids(ids, 12, V, 4u);
    /* One row more than the 12 asked for: a guard that must stay untouched. */
    float *got = malloc(sizeof(float) * (size_t)V * 13), *want = malloc(sizeof(float) * (size_t)V * 12);
    for (int i = 0; i < V; i++) got[12 * V + i] = 1234.5f;
    ck_assert_msg(kvgpt_forward(m, ids, 12, got, &err) == KVGPT_OK, "%s", err.msg);
    ck_assert_msg(kvgpt_forward(r, ids, 12, want, &err) == KVGPT_OK, "%s", err.msg);
    assert_bitwise(got, want, V * 12, "forward beside pending slots");
    for (int i = 0; i < V; i++) ck_assert(got[12 * V + i] == 1234.5f);
    ck_assert_int_eq(kvgpt_seq_length(m, 1), 9);
    free(got);
    free(want);
    kvgpt_close(m);
    kvgpt_close(r);
}
END_TEST

/* ---- 2: slots alone = together; copy then diverge; truncate ------------------------ */

START_TEST(test_copy_truncate)
{
    SKIP_IF_NO_FIXTURES();
    const char *models[2] = {CHAR_MODEL, BPE_MODEL};
    for (int mi = 0; mi < 2; mi++) {
        kvgpt_model *m = open_model(models[mi], 3, KVGPT_DTYPE_F32, 0), *r = open_model(models[mi], 1, KVGPT_DTYPE_F32, 0);
        const int V = V_of(m);
        int32_t a[40], t[40];
        make_ids(a, 40, V, 5u);
        float *got = malloc(sizeof(float) * (size_t)V), *want = malloc(sizeof(float) * (size_t)V);
        kvgpt_error err;
        /* slot 0 := 20 tokens; copy to 1 and 2; then each continues differently. */
        for (int i = 0; i < 20; i++) ck_assert(decode1(m, a[i], 0, got, &err) == KVGPT_OK);
        ck_assert_msg(kvgpt_seq_copy(m, 0, 1, &err) == KVGPT_OK, "%s", err.msg);
        ck_assert_msg(kvgpt_seq_copy(m, 0, 2, &err) == KVGPT_OK, "%s", err.msg);
        ck_assert_int_eq(kvgpt_seq_length(m, 2), 20);
        for (int s = 0; s < 3; s++) {
            memcpy(t, a, 20 * sizeof *t);
            make_ids(t + 20, 10, V, 900u + (uint32_t)s);
            for (int i = 20; i < 30; i++) ck_assert(decode1(m, t[i], s, got, &err) == KVGPT_OK);
            forward_last(r, t, 30, want);
            assert_bitwise(got, want, V, "a copied slot, continued");
            for (int i = 0; i < 30; i++) ck_assert_int_eq(kvgpt_seq_token(m, s, i), t[i]);
        }
        /* truncate slot 1 to 12, decode 5 others: as if the removed tokens never were. */
        ck_assert(kvgpt_seq_truncate(m, 1, 12, &err) == KVGPT_OK);
        ck_assert_int_eq(kvgpt_seq_length(m, 1), 12);
        memcpy(t, a, 12 * sizeof *t);
        make_ids(t + 12, 5, V, 31u);
        for (int i = 12; i < 17; i++) ck_assert(decode1(m, t[i], 1, got, &err) == KVGPT_OK);
        forward_last(r, t, 17, want);
        assert_bitwise(got, want, V, "truncate then re-decode");
        /* reset: an empty slot; bad arguments change nothing. */
        ck_assert(kvgpt_seq_reset(m, 2, &err) == KVGPT_OK);
        ck_assert_int_eq(kvgpt_seq_length(m, 2), 0);
        ck_assert_int_eq(kvgpt_seq_length(m, 3), -1);
        ck_assert_int_eq(kvgpt_seq_length(m, -1), -1);
        ck_assert(kvgpt_seq_truncate(m, 1, 18, &err) == KVGPT_ERR_ARG);
        ck_assert(kvgpt_seq_truncate(m, 1, -1, &err) == KVGPT_ERR_ARG);
        ck_assert(kvgpt_seq_copy(m, 0, 3, &err) == KVGPT_ERR_ARG);
        ck_assert(kvgpt_seq_shift(m, 0, 31, &err) == KVGPT_ERR_ARG);
        ck_assert(kvgpt_seq_reset(m, 7, &err) == KVGPT_ERR_ARG);
        ck_assert_int_eq(kvgpt_seq_length(m, 1), 17);
        free(got);
        free(want);
        kvgpt_close(m);
        kvgpt_close(r);
    }
}
END_TEST

/* A batch that does not fit, or names a bad slot or token, changes nothing in any slot. */
START_TEST(test_decode_refuses_atomically)
{
    SKIP_IF_NO_FIXTURES();
    kvgpt_model *m = open_model(CHAR_MODEL, 2, KVGPT_DTYPE_F32, 0);
    const int V = V_of(m), ctx = ctx_of(m);
    int32_t tok[80], seq[80];
    float *logits = malloc(sizeof(float) * (size_t)V * 2);
    kvgpt_error err;
    make_ids(tok, 80, V, 3u);
    for (int i = 0; i < 80; i++) seq[i] = 0;
    kvgpt_batch b = {ctx - 4, tok, seq, NULL};
    ck_assert(kvgpt_decode(m, &b, logits, &err) == KVGPT_OK);
    seq[0] = 1;   /* slot 1 gets one, slot 0 five: one too many */
    kvgpt_batch over = {6, tok, seq, NULL};
    kvgpt_status so = kvgpt_decode(m, &over, logits, &err);
    ck_assert_msg(so == KVGPT_ERR_CONTEXT_FULL, "status %d: %s", (int)so, err.msg);
    ck_assert_msg(strstr(err.msg, "slot 0") != NULL, "%s", err.msg);
    ck_assert_int_eq(kvgpt_seq_length(m, 0), ctx - 4);
    ck_assert_int_eq(kvgpt_seq_length(m, 1), 0);
    int32_t bad_tok[2] = {1, V}, bad_seq[2] = {1, 0}, two[2] = {1, 2};
    kvgpt_batch bt = {2, bad_tok, bad_seq, NULL};
    ck_assert_int_eq(kvgpt_decode(m, &bt, logits, &err), KVGPT_ERR_TOKEN);
    kvgpt_batch bs = {1, two, two + 1, NULL};   /* slot 2 of 0..1 */
    ck_assert_int_eq(kvgpt_decode(m, &bs, logits, &err), KVGPT_ERR_ARG);
    kvgpt_batch nolog = {1, two, bad_seq, NULL};
    ck_assert_int_eq(kvgpt_decode(m, &nolog, NULL, &err), KVGPT_ERR_ARG);
    ck_assert_int_eq(kvgpt_decode(m, NULL, logits, &err), KVGPT_ERR_ARG);
    ck_assert_int_eq(kvgpt_seq_length(m, 0), ctx - 4);
    ck_assert_int_eq(kvgpt_seq_length(m, 1), 0);
    /* No logits wanted: NULL is fine. */
    int8_t none = 0;
    kvgpt_batch quiet = {1, two, bad_seq, &none};
    ck_assert_int_eq(kvgpt_decode(m, &quiet, NULL, &err), KVGPT_OK);
    ck_assert_int_eq(kvgpt_seq_length(m, 1), 1);
    free(logits);
    kvgpt_close(m);
}
END_TEST

/* ---- 3: a host's own loop: decode + shift(ctx - 1) = nanoGPT's generate() ------------ */

START_TEST(test_host_loop_matches_nanogpt)
{
    SKIP_IF_NO_FIXTURES();
    char *json = tf_read_file(tf_path("reference/shakespeare_char_greedy.json"), NULL);
    ck_assert_msg(json != NULL, "cannot read reference/shakespeare_char_greedy.json");
    kvgpt_model *m = open_model(CHAR_MODEL, 1, KVGPT_DTYPE_F32, 0);
    const int V = V_of(m), ctx = ctx_of(m);
    float *logits = malloc(sizeof(float) * (size_t)V);
    int entries = 0;
    for (int e = 0;; e++) {
        const char *entry = rj_nth_key(json, "prompt_ids", e);
        if (!entry) break;
        entries++;
        int32_t prompt[128], want[300];
        int np = rj_parse_ints(entry, prompt, 128);
        ck_assert(np > 0 && rj_parse_ints(rj_after_key(entry, "greedy_300_ids"), want, 300) == 300);
        kvgpt_error err;
        ck_assert(kvgpt_seq_reset(m, 0, &err) == KVGPT_OK);
        int first = np > ctx ? np - ctx : 0;   /* nanoGPT crops the prompt too */
        int32_t seq[128] = {0};
        kvgpt_batch b = {np - first, prompt + first, seq, NULL};
        ck_assert_msg(kvgpt_decode(m, &b, logits, &err) == KVGPT_OK, "%s", err.msg);
        for (int i = 0; i < 300; i++) {
            int32_t t = argmax(logits, V);
            ck_assert_msg(t == want[i], "entry %d step %d: %d, nanoGPT %d", e, i, t, want[i]);
            if (kvgpt_seq_length(m, 0) == ctx) ck_assert(kvgpt_seq_shift(m, 0, ctx - 1, &err) == KVGPT_OK);
            ck_assert_msg(decode1(m, t, 0, logits, &err) == KVGPT_OK, "step %d: %s", i, err.msg);
        }
    }
    ck_assert_int_eq(entries, 3);
    free(logits);
    free(json);
    kvgpt_close(m);
}
END_TEST

/* A shift keeps the newest tokens at new positions: the same logits as a forward over them. */
START_TEST(test_shift)
{
    SKIP_IF_NO_FIXTURES();
    kvgpt_model *m = open_model(BPE_MODEL, 2, KVGPT_DTYPE_F32, 0), *r = open_model(BPE_MODEL, 1, KVGPT_DTYPE_F32, 0);
    const int V = V_of(m);
    int32_t a[50];
    make_ids(a, 50, V, 77u);
    float *got = malloc(sizeof(float) * (size_t)V), *want = malloc(sizeof(float) * (size_t)V);
    int32_t seq[50] = {0};
    kvgpt_batch b = {50, a, seq, NULL};
    kvgpt_error err;
    ck_assert(kvgpt_decode(m, &b, got, &err) == KVGPT_OK);
    ck_assert_msg(kvgpt_seq_shift(m, 0, 20, &err) == KVGPT_OK, "%s", err.msg);
    ck_assert_int_eq(kvgpt_seq_length(m, 0), 20);
    for (int i = 0; i < 20; i++) ck_assert_int_eq(kvgpt_seq_token(m, 0, i), a[30 + i]);
    ck_assert(decode1(m, 17, 0, got, &err) == KVGPT_OK);
    int32_t w[21];
    memcpy(w, a + 30, 20 * sizeof *w);
    w[20] = 17;
    forward_last(r, w, 21, want);
    assert_bitwise(got, want, V, "after a shift to 20");
    /* keep 0 empties the slot; keep = length changes nothing. */
    ck_assert(kvgpt_seq_shift(m, 0, 21, &err) == KVGPT_OK);
    ck_assert_int_eq(kvgpt_seq_length(m, 0), 21);
    ck_assert(kvgpt_seq_shift(m, 0, 0, &err) == KVGPT_OK);
    ck_assert_int_eq(kvgpt_seq_length(m, 0), 0);
    free(got);
    free(want);
    kvgpt_close(m);
    kvgpt_close(r);
}
END_TEST

/* ---- 4: saved states ------------------------------------------------------------- */

/* Greedy continuation of slot s for n tokens from its last logits. */
static void greedy(kvgpt_model *m, int s, float *logits, int n, int32_t *out)
{
    const int V = V_of(m);
    kvgpt_error err;
    for (int i = 0; i < n; i++) {
        out[i] = argmax(logits, V);
        ck_assert_msg(decode1(m, out[i], s, logits, &err) == KVGPT_OK, "%s", err.msg);
    }
}

START_TEST(test_state_roundtrip)
{
    SKIP_IF_NO_FIXTURES();
    const char *models[2] = {CHAR_MODEL, BPE_MODEL};
    for (int mi = 0; mi < 2; mi++)
        for (int kd = KVGPT_DTYPE_F32; kd <= KVGPT_DTYPE_BF16; kd++) {
            kvgpt_options o;
            kvgpt_options_default(&o);
            o.model_dir = tf_path(models[mi]);
            o.batch = 2;
            o.threads = 1;
            o.kv_dtype = (kvgpt_dtype)kd;
            kvgpt_model *m = NULL;
            kvgpt_error err;
            ck_assert(kvgpt_open(&o, NULL, 0, &m, &err) == KVGPT_OK);
            const int V = V_of(m);
            int32_t p[30], seq[30] = {0}, cont[2][20];
            make_ids(p, 30, V, 11u);
            float *logits = malloc(sizeof(float) * (size_t)V), *saved_logits = malloc(sizeof(float) * (size_t)V);
            kvgpt_batch b = {30, p, seq, NULL};
            ck_assert(kvgpt_decode(m, &b, logits, &err) == KVGPT_OK);
            memcpy(saved_logits, logits, sizeof(float) * (size_t)V);
            size_t need = kvgpt_seq_state_bytes(m, 30), wrote = 0;
            unsigned char *blob = malloc(need);
            ck_assert(kvgpt_seq_state_save(m, 0, blob, need - 1, &wrote, &err) == KVGPT_ERR_ARG);
            ck_assert_msg(kvgpt_seq_state_save(m, 0, blob, need, &wrote, &err) == KVGPT_OK, "%s", err.msg);
            ck_assert_uint_eq(wrote, need);
            greedy(m, 0, logits, 20, cont[0]);
            /* reset, load into the other slot too, continue: the same tokens. */
            ck_assert(kvgpt_seq_reset(m, 0, &err) == KVGPT_OK);
            for (int s = 0; s < 2; s++) {
                ck_assert_msg(kvgpt_seq_state_load(m, s, blob, wrote, &err) == KVGPT_OK, "%s", err.msg);
                ck_assert_int_eq(kvgpt_seq_length(m, s), 30);
                /* The loaded slot's next step needs its last token's logits: re-decode it. */
                ck_assert(kvgpt_seq_truncate(m, s, 29, &err) == KVGPT_OK);
                ck_assert(decode1(m, p[29], s, logits, &err) == KVGPT_OK);
                assert_bitwise(logits, saved_logits, V, "logits after load");
                greedy(m, s, logits, 20, cont[1]);
                ck_assert_msg(memcmp(cont[0], cont[1], sizeof cont[0]) == 0, "%s kv %d slot %d: continuation differs",
                              models[mi], kd, s);
            }
            free(blob);
            free(logits);
            free(saved_logits);
            kvgpt_close(m);
        }
}
END_TEST

/* Every byte flipped in turn, every truncation, another model, another
 * dtype: refused with KVGPT_ERR_STATE, and the slot is as it was. */
START_TEST(test_state_damage_refused)
{
    SKIP_IF_NO_FIXTURES();
    kvgpt_model *m = open_model(CHAR_MODEL, 2, KVGPT_DTYPE_F32, 0);
    const int V = V_of(m);
    int32_t p[6], seq[6] = {0}, other[9], seq1[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    make_ids(p, 6, V, 21u);
    make_ids(other, 9, V, 22u);
    float *logits = malloc(sizeof(float) * (size_t)V);
    kvgpt_error err;
    kvgpt_batch b = {6, p, seq, NULL}, b1 = {9, other, seq1, NULL};
    ck_assert(kvgpt_decode(m, &b, logits, &err) == KVGPT_OK && kvgpt_decode(m, &b1, logits, &err) == KVGPT_OK);
    size_t n = kvgpt_seq_state_bytes(m, 6), wrote;
    unsigned char *blob = malloc(n), *bad = malloc(n);
    ck_assert(kvgpt_seq_state_save(m, 0, blob, n, &wrote, &err) == KVGPT_OK && wrote == n);
    for (size_t i = 0; i < n; i++) {
        memcpy(bad, blob, n);
        bad[i] ^= (unsigned char)(1u << (i % 8));
        kvgpt_status s = kvgpt_seq_state_load(m, 1, bad, n, &err);
        ck_assert_msg(s == KVGPT_ERR_STATE, "byte %zu flipped: status %d (%s)", i, (int)s, err.msg);
    }
    for (size_t len = 0; len < n; len++) {
        kvgpt_status s = kvgpt_seq_state_load(m, 1, blob, len, &err);
        ck_assert_msg(s == KVGPT_ERR_STATE, "truncated to %zu: status %d", len, (int)s);
    }
    ck_assert_int_eq(kvgpt_seq_length(m, 1), 9);
    for (int i = 0; i < 9; i++) ck_assert_int_eq(kvgpt_seq_token(m, 1, i), other[i]);
    /* slot 1 still computes as before */
    kvgpt_model *r = open_model(CHAR_MODEL, 1, KVGPT_DTYPE_F32, 0);
    float *want = malloc(sizeof(float) * (size_t)V);
    ck_assert(decode1(m, 5, 1, logits, &err) == KVGPT_OK);
    int32_t o10[10];
    memcpy(o10, other, sizeof other);
    o10[9] = 5;
    forward_last(r, o10, 10, want);
    assert_bitwise(logits, want, V, "slot 1 after refused loads");
    /* Another model (same shape, other weights), another dtype. */
    kvgpt_model *bf = open_model(CHAR_MODEL, 1, KVGPT_DTYPE_BF16, 0);
    ck_assert_int_eq(kvgpt_seq_state_load(bf, 0, blob, n, &err), KVGPT_ERR_STATE);
    ck_assert_msg(strstr(err.msg, "dtype") != NULL, "%s", err.msg);
    kvgpt_model *hf = open_model(BPE_MODEL, 1, KVGPT_DTYPE_F32, 0);
    ck_assert_int_eq(kvgpt_seq_state_load(hf, 0, blob, n, &err), KVGPT_ERR_STATE);
    char tmp[4096];
    ck_assert(tf_tmpdir(tmp, sizeof tmp) == 0 && tf_copy_dir(tf_path(CHAR_MODEL), tmp) == 0);
    /* The same config with one LayerNorm weight changed: another model. */
    size_t len;
    char *st = tf_read_file(tf_path(CHAR_MODEL "/model.safetensors"), &len);
    ck_assert_ptr_nonnull(st);
    uint64_t hl;
    memcpy(&hl, st, 8);
    const char *key = strstr(st + 8, "\"transformer.ln_f.weight\"");
    ck_assert_ptr_nonnull(key);
    unsigned long begin = strtoul(strstr(key, "data_offsets") + 15, NULL, 10);
    st[8 + hl + begin] ^= 0x01;
    ck_assert(tf_write(tmp, "model.safetensors", st, len) == 0);
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = tmp;
    o.threads = 1;
    kvgpt_model *twin = NULL;
    ck_assert(kvgpt_open(&o, NULL, 0, &twin, &err) == KVGPT_OK);
    ck_assert_int_eq(kvgpt_seq_state_load(twin, 0, blob, n, &err), KVGPT_ERR_STATE);
    ck_assert_msg(strstr(err.msg, "another model") != NULL, "%s", err.msg);
    free(st);
    free(blob);
    free(bad);
    free(logits);
    free(want);
    kvgpt_close(twin);
    kvgpt_close(hf);
    kvgpt_close(bf);
    kvgpt_close(r);
    kvgpt_close(m);
}
END_TEST

static Suite *session_suite(void)
{
    Suite *s = suite_create("session");
    TCase *t = tcase_create("step");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, test_decode_equals_forward);
    tcase_add_test(t, test_decode_flags_and_long_batches);
    tcase_add_test(t, test_forward_beside_pending_slots);
    tcase_add_test(t, test_copy_truncate);
    tcase_add_test(t, test_decode_refuses_atomically);
    tcase_add_test(t, test_host_loop_matches_nanogpt);
    tcase_add_test(t, test_shift);
    tcase_add_test(t, test_state_roundtrip);
    tcase_add_test(t, test_state_damage_refused);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return tf_run_suite(session_suite()); }
