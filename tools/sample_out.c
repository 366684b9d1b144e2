/* tools/sample_out.c — see sample_out.h. */
#include "tools/sample_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int so_init(sample_out *o, const kvgpt_model *m, int batch, int max_tokens)
{
    memset(o, 0, sizeof *o);
    o->m = m;
    o->batch = batch;
    o->cap_first = max_tokens;
    o->text = calloc((size_t)batch, sizeof *o->text);
    o->len = calloc((size_t)batch, sizeof *o->len);
    o->cap = calloc((size_t)batch, sizeof *o->cap);
    o->first[0] = malloc(sizeof(int32_t) * (size_t)max_tokens);
    o->first[1] = malloc(sizeof(int32_t) * (size_t)max_tokens);
    return !(o->text && o->len && o->cap && o->first[0] && o->first[1]);
}

static void put(sample_out *o, int seq, const char *s, size_t n)
{
    if (o->stream) {
        if (n && fwrite(s, 1, n, stdout) != n) o->failed = 1;
        fflush(stdout);
        return;
    }
    if (o->len[seq] + n > o->cap[seq]) {
        size_t cap = (o->cap[seq] + n) * 2 + 256;
        char *t = realloc(o->text[seq], cap);
        if (!t) {
            o->failed = 1;
            return;
        }
        o->text[seq] = t;
        o->cap[seq] = cap;
    }
    memcpy(o->text[seq] + o->len[seq], s, n);
    o->len[seq] += n;
}

static int on_text(void *user, int seq, const char *text, size_t len)
{
    sample_out *o = user;
    if (seq >= 0 && seq < o->n) put(o, seq, text, len);
    return 0;
}

static int on_token(void *user, int seq, int32_t tok)
{
    sample_out *o = user;
    if (seq == 0 && o->pass >= 0 && o->n_first[o->pass] < o->cap_first) o->first[o->pass][o->n_first[o->pass]++] = tok;
    if (!kvgpt_has_tokenizer(o->m) && seq >= 0 && seq < o->n) {   /* ids, as sample.py cannot decode them either */
        char id[16];
        put(o, seq, id, (size_t)snprintf(id, sizeof id, " %d", (int)tok));
    }
    return 0;
}

void so_hook(sample_out *o, kvgpt_gen_options *g)
{
    g->on_text = on_text;
    g->on_token = on_token;
    g->user = o;
}

static void put_prompt(sample_out *o, int seq)
{
    if (o->prompt_text) {
        put(o, seq, o->prompt_text, o->prompt_len);
        return;
    }
    for (int i = 0; i < o->n_prompt; i++) {
        char id[16];
        put(o, seq, id, (size_t)snprintf(id, sizeof id, i ? " %d" : "%d", (int)o->prompt_ids[i]));
    }
}

void so_start(sample_out *o, int n, const char *text, size_t text_len, const int32_t *ids, int n_ids,
              int compare_pass)
{
    o->n = n;
    o->stream = n == 1;
    o->prompt_text = text;
    o->prompt_len = text_len;
    o->prompt_ids = ids;
    o->n_prompt = n_ids;
    o->pass = compare_pass;
    if (compare_pass >= 0) o->n_first[compare_pass] = 0;
    for (int b = 0; b < n; b++) o->len[b] = 0;
    if (o->stream) put_prompt(o, 0);
}

void so_finish(sample_out *o)
{
    for (int b = 0; b < o->n; b++) {
        if (!o->stream) {
            o->stream = 1;   /* the kept text, straight out, in sample order */
            put_prompt(o, b);
            put(o, b, o->text[b], o->len[b]);
            o->stream = 0;
        }
        if (printf("\n---------------\n") < 0) o->failed = 1;
    }
    if (fflush(stdout) != 0) o->failed = 1;
}

int so_compared_equal(const sample_out *o)
{
    return o->n_first[0] == o->n_first[1] &&
           memcmp(o->first[0], o->first[1], sizeof(int32_t) * (size_t)o->n_first[0]) == 0;
}

int so_write_failed(sample_out *o) { return o->failed || fflush(stdout) != 0 || ferror(stdout); }

void so_free(sample_out *o)
{
    for (int b = 0; o->text && b < o->batch; b++) free(o->text[b]);
    free(o->text);
    free(o->len);
    free(o->cap);
    free(o->first[0]);
    free(o->first[1]);
    memset(o, 0, sizeof *o);
}
