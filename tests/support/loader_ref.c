/* tests/support/loader_ref.c — the reference logits index, read with the
 * library's own pull JSON reader, and the comparison every forward test uses. */
#include "tests/support/loader_ref.h"
#include "tests/support/fixtures.h"
#include "loader/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ref_int_list(json_reader *r, int32_t *dst, int cap, int *n)
{
    int64_t v;
    *n = 0;
    if (!json_array_begin(r)) return 0;
    while (json_array_next(r)) {
        if (*n >= cap || !json_int64(r, INT32_MIN, INT32_MAX, &v)) return 0;
        dst[(*n)++] = (int32_t)v;
    }
    return r->err == NULL;
}

static int size_field(json_reader *r, size_t *dst)
{
    int64_t v;
    if (!json_int64(r, 0, INT64_MAX, &v)) return 0;
    *dst = (size_t)v;
    return 1;
}

/* offset / nbytes / argmax_per_position, wherever they live. */
static int block_member(json_reader *r, json_span key, ref_entry *e, int *handled)
{
    *handled = 1;
    if (json_span_eq(key, "offset")) return size_field(r, &e->offset);
    if (json_span_eq(key, "nbytes")) return size_field(r, &e->nbytes);
    if (json_span_eq(key, "argmax_per_position")) return ref_int_list(r, e->argmax, REF_MAX_T, &e->n_argmax);
    *handled = 0;
    return 1;
}

static int string_field(json_reader *r, char *dst, size_t cap, size_t *len)
{
    json_span s;
    if (!json_string(r, &s)) return 0;
    long n = json_unescape(s, dst, cap - 1);
    if (n < 0) return 0;
    dst[n] = 0;
    if (len) *len = (size_t)n;
    return 1;
}

static int entry(json_reader *r, const char *variant, ref_entry *e)
{
    json_span key, k2;
    int handled, have_variant = 0;
    memset(e, 0, sizeof *e);
    if (!json_object_begin(r)) return 0;
    while (json_object_next(r, &key)) {
        int ok = 1;
        if (json_span_eq(key, "name")) ok = string_field(r, e->name, sizeof e->name, NULL);
        else if (json_span_eq(key, "prompt")) ok = string_field(r, e->prompt, sizeof e->prompt, &e->prompt_len);
        else if (json_span_eq(key, "token_ids")) ok = ref_int_list(r, e->ids, REF_MAX_T, &e->n);
        else if (variant && json_span_eq(key, variant)) {
            have_variant = 1;
            if (!json_object_begin(r)) return 0;
            while (ok && json_object_next(r, &k2)) {
                ok = block_member(r, k2, e, &handled);
                if (ok && !handled) ok = json_skip(r);
            }
        } else if (!variant) {
            ok = block_member(r, key, e, &handled);
            if (ok && !handled) ok = json_skip(r);
        } else {
            ok = json_skip(r);
        }
        if (!ok) return 0;
    }
    return r->err == NULL && (!variant || have_variant) && e->n > 0 && e->nbytes > 0;
}

int ref_load(const char *json_path, const char *variant, ref_set *out, char *why, size_t why_cap)
{
    size_t len;
    char *buf = tf_read_file(json_path, &len);
    memset(out, 0, sizeof *out);
    if (!buf) {
        snprintf(why, why_cap, "%s: cannot read", json_path);
        return -1;
    }
    json_reader r;
    json_span key;
    json_init(&r, buf, len);
    int ok = json_object_begin(&r);
    while (ok && json_object_next(&r, &key)) {
        int64_t v = 0;
        if (json_span_eq(key, "vocab_size")) {
            ok = json_int64(&r, 1, INT32_MAX, &v);
            out->vocab_size = (int)v;
        } else if (json_span_eq(key, "block_size")) {
            ok = json_int64(&r, 1, INT32_MAX, &v);
            out->block_size = (int)v;
        } else if (json_span_eq(key, "entries")) {
            ok = json_array_begin(&r);
            while (ok && json_array_next(&r)) {
                ok = out->n < REF_MAX_ENTRIES && entry(&r, variant, &out->e[out->n]);
                if (ok) out->n++;
            }
        } else {
            ok = json_skip(&r);
        }
    }
    ok = ok && json_finish(&r) && out->n > 0 && out->vocab_size > 0;
    if (!ok)
        snprintf(why, why_cap, "%s: cannot read the index (%s at byte %zu, %d entries)", json_path,
                 r.err ? r.err : "missing fields", json_offset(&r), out->n);
    free(buf);
    return ok ? 0 : -1;
}

float *ref_logits(const char *f32_path, const ref_entry *e, int vocab)
{
    if (e->nbytes != (size_t)e->n * (size_t)vocab * sizeof(float)) return NULL;
    return tf_read_f32(f32_path, e->offset, (size_t)e->n * (size_t)vocab);
}

static int argmax_row(const float *row, int vocab)
{
    int best = 0;
    for (int i = 1; i < vocab; i++)
        if (row[i] > row[best]) best = i;
    return best;
}

void ref_compare(const float *got, const float *want, const ref_entry *e, int vocab, ref_diff *d)
{
    memset(d, 0, sizeof *d);
    d->first_mismatch = -1;
    for (int t = 0; t < e->n; t++) {
        const float *g = got + (size_t)t * vocab, *w = want + (size_t)t * vocab;
        for (int v = 0; v < vocab; v++) {
            double diff = fabs((double)g[v] - (double)w[v]);
            if (!(diff <= d->max_abs)) {   /* also catches NaN */
                d->max_abs = isnan(diff) ? INFINITY : diff;
                d->worst_row = t;
                d->worst_col = v;
            }
        }
        if (t < e->n_argmax && argmax_row(g, vocab) != e->argmax[t]) {
            if (d->first_mismatch < 0) d->first_mismatch = t;
            d->argmax_mismatch++;
        }
    }
}

kvgpt_status ref_run(const kvgpt_options *o, const ref_entry *e, float **out, kvgpt_error *err)
{
    kvgpt_options oo = *o;
    kvgpt_model *m = NULL;
    *out = NULL;
    oo.logits_all = 1;
    kvgpt_status s = kvgpt_open(&oo, NULL, 0, &m, err);
    if (s) return s;
    size_t V = (size_t)kvgpt_model_config(m)->vocab_size;
    float *l = malloc((size_t)e->n * V * sizeof(float));
    if (!l) {
        kvgpt_close(m);
        return KVGPT_ERR_NOMEM;
    }
    s = kvgpt_forward(m, e->ids, e->n, l, err);
    kvgpt_close(m);
    if (s) {
        free(l);
        return s;
    }
    *out = l;
    return KVGPT_OK;
}
