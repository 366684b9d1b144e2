/* loader/config.c — config.json in both forms: nanoGPT's model_args
 * (block_size, bias; exact GELU) and HuggingFace GPT-2's (n_positions/n_ctx,
 * activation_function, layer_norm_epsilon; Conv1D tensors, biases). */
#include "loader/loader.h"
#include "loader/json_stream.h"
#include "common/status.h"

#include <stdio.h>
#include <string.h>

kvgpt_status loader_check_config(const kvgpt_config *c, const char *what, kvgpt_error *err)
{
    struct { const char *name; int v, max; } lim[] = {
        {"n_layer", c->n_layer, LOADER_MAX_LAYERS}, {"n_head", c->n_head, LOADER_MAX_HEADS},
        {"n_embd", c->n_embd, LOADER_MAX_EMBD},     {"block_size", c->block_size, LOADER_MAX_CTX},
        {"vocab_size", c->vocab_size, LOADER_MAX_VOCAB},
    };
    for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++)
        if (lim[i].v < 1 || lim[i].v > lim[i].max)
            return kv_fail(err, KVGPT_ERR_CONFIG, "%s: %s = %d is out of range (1..%d)", what, lim[i].name,
                           lim[i].v, lim[i].max);
    if (c->n_embd % c->n_head != 0)
        return kv_fail(err, KVGPT_ERR_CONFIG, "%s: n_embd %d is not divisible by n_head %d", what, c->n_embd,
                       c->n_head);
    if (!(c->ln_eps > 0.0f && c->ln_eps < 1.0f))
        return kv_fail(err, KVGPT_ERR_CONFIG, "%s: layer_norm_epsilon %g is out of range (0, 1)", what,
                       (double)c->ln_eps);
    if (c->eot_token < -1 || c->eot_token >= c->vocab_size)
        return kv_fail(err, KVGPT_ERR_CONFIG, "%s: eos_token_id %d is outside the vocabulary", what, c->eot_token);
    return KVGPT_OK;
}

/* The first integer field beyond any sane value, as the file wrote it. */
typedef struct {
    const char *name;
    long long v;
} cfg_bad;

/* Reads one integer field. Values far outside int are clamped to values
 * loader_check_config refuses; the first such field is kept in *bad so the
 * message names it with the value the file has, not the clamped one. */
static int read_int(json_stream *r, const char *name, int *out, cfg_bad *bad)
{
    int64_t v;
    if (!json_stream_int64(r, INT64_MIN, INT64_MAX, &v)) return 0;
    if ((v < -2 || v > ((int64_t)1 << 30)) && !bad->name) {
        bad->name = name;
        bad->v = (long long)v;
    }
    *out = v < -2 ? -2 : v > ((int64_t)1 << 30) ? (1 << 30) + 1 : (int)v;
    return 1;
}

/* The activation_function value, shown for a message (escapes decoded; a NUL
 * or control byte as \xNN). */
static const char *shown_value(json_span v, char *out, size_t cap)
{
    char raw[48];
    long n = json_unescape(v, raw, sizeof raw);
    size_t o = 0;
    if (n < 0) return "(badly escaped or long)";
    for (long i = 0; i < n && o + 5 < cap; i++) {
        unsigned char ch = (unsigned char)raw[i];
        if (ch >= 0x20 && ch != 0x7f) out[o++] = (char)ch;
        else o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
    }
    out[o] = 0;
    return out;
}

static kvgpt_status parse_config(const char *path, lf_file *f, kvgpt_config *c, kvgpt_error *err)
{
    memset(c, 0, sizeof *c);
    int n_positions = 0, block_size = 0, has_bias = -1, hf = 0, n_inner = 0, tie = 1;
    int eos = -1, tok_dummy = 0;
    double eps = 1e-5;
    char act_text[JSON_STREAM_TOKEN];
    json_span act = {NULL, 0};
    cfg_bad bad = {NULL, 0};
    json_stream r;
    json_stream_init(&r, f, err);
    json_span key;
    if (json_stream_object_begin(&r)) {
        while (json_stream_object_next(&r, &key)) {
            const char *field = NULL;
            int ok = 1;
            if (json_span_eq(key, "n_layer")) ok = read_int(&r, "n_layer", &c->n_layer, &bad);
            else if (json_span_eq(key, "n_head")) ok = read_int(&r, "n_head", &c->n_head, &bad);
            else if (json_span_eq(key, "n_embd")) ok = read_int(&r, "n_embd", &c->n_embd, &bad);
            else if (json_span_eq(key, "vocab_size")) ok = read_int(&r, "vocab_size", &c->vocab_size, &bad);
            else if (json_span_eq(key, "block_size")) ok = read_int(&r, "block_size", &block_size, &bad);
            else if (json_span_eq(key, "n_positions")) { hf = 1; ok = read_int(&r, "n_positions", &n_positions, &bad); }
            else if (json_span_eq(key, "n_ctx")) {
                hf = 1;
                ok = read_int(&r, "n_ctx", n_positions ? &tok_dummy : &n_positions, &bad);
            } else if (json_span_eq(key, "model_type")) {
                json_span v;
                hf = 1;
                ok = json_stream_string(&r, &v);
                if (ok && !json_span_eq(v, "gpt2")) field = "model_type (only gpt2 is supported)";
            } else if (json_span_eq(key, "bias")) ok = json_stream_bool(&r, &has_bias);
            else if (json_span_eq(key, "tie_word_embeddings")) ok = json_stream_bool(&r, &tie);
            else if (json_span_eq(key, "layer_norm_epsilon")) ok = json_stream_double(&r, &eps);
            else if (json_span_eq(key, "eos_token_id")) {
                if (json_stream_peek(&r) == JSON_T_NULL) ok = json_stream_null(&r);
                else ok = read_int(&r, "eos_token_id", &eos, &bad);
            } else if (json_span_eq(key, "n_inner")) {
                if (json_stream_peek(&r) == JSON_T_NULL) ok = json_stream_null(&r);
                else ok = read_int(&r, "n_inner", &n_inner, &bad);
            } else if (json_span_eq(key, "activation_function")) {
                hf = 1;
                /* Kept: the span lives only until the next read. */
                if ((ok = json_stream_string(&r, &act))) {
                    memcpy(act_text, act.p, act.len);
                    act.p = act_text;
                    if (r.tok_long) field = "activation_function (a name that long)";
                }
            } else ok = json_stream_skip(&r);
            if (!ok) break;
            if (field)
                return kv_fail(err, KVGPT_ERR_CONFIG, "%s: unsupported %s", path, field);
        }
    }
    if (!json_stream_finish(&r)) {
        if (r.io) return r.io;
        return kv_fail(err, KVGPT_ERR_JSON, "%s: not a JSON object: %s at line %d", path, r.err, r.line);
    }
    if (bad.name)
        return kv_fail(err, KVGPT_ERR_CONFIG, "%s: %s = %lld is out of range", path, bad.name, bad.v);

    const char *need[] = {"n_layer", "n_head", "n_embd", "vocab_size"};
    int have[] = {c->n_layer, c->n_head, c->n_embd, c->vocab_size};
    for (int i = 0; i < 4; i++)
        if (have[i] == 0) return kv_fail(err, KVGPT_ERR_CONFIG, "%s: missing or zero %s", path, need[i]);

    c->hf_layout = hf;
    c->lm_head_untied = !tie;
    if (hf) {
        c->block_size = n_positions ? n_positions : block_size;
        c->bias = 1;
        c->ln_eps = (float)eps;
        c->eot_token = eos;
        char shown[64];
        if (!act.p || json_span_eq(act, "gelu_new") || json_span_eq(act, "gelu_pytorch_tanh"))
            c->gelu = KVGPT_GELU_TANH;
        else if (json_span_eq(act, "gelu"))
            c->gelu = KVGPT_GELU_ERF;
        else
            return kv_fail(err, KVGPT_ERR_CONFIG, "%s: unsupported activation_function \"%s\" (gelu, gelu_new or "
                           "gelu_pytorch_tanh)", path, shown_value(act, shown, sizeof shown));
        if (n_inner && n_inner != 4 * c->n_embd)
            return kv_fail(err, KVGPT_ERR_CONFIG, "%s: n_inner %d is not 4 * n_embd (unsupported)", path, n_inner);
    } else {
        c->block_size = block_size;
        c->bias = has_bias == -1 ? 1 : has_bias;   /* nanoGPT's GPTConfig default is bias=True */
        c->ln_eps = 1e-5f;
        c->gelu = KVGPT_GELU_ERF;
        c->eot_token = -1;
    }
    if (c->block_size == 0)
        return kv_fail(err, KVGPT_ERR_CONFIG, "%s: missing block_size / n_positions", path);
    return loader_check_config(c, path, err);
}

kvgpt_status loader_read_config(const char *dir, kvgpt_config *c, kvgpt_error *err)
{
    /* The plan reads this before any memory exists: the file streams through
     * json_stream's window, and the path is the only buffer. */
    size_t n = dir ? strlen(dir) : 0;
    if (n >= LOADER_PATH_MAX) return kv_fail(err, KVGPT_ERR_ARG, "%.64s...: a folder name of %zu bytes", dir, n);
    char path[n + sizeof "/config.json"];   /* as long as it needs, at most LOADER_PATH_MAX */
    kvgpt_status s = lf_join(path, sizeof path, dir, "config.json", err);
    lf_file f;
    if (s || (s = lf_open(&f, path, err))) return s;
    if (f.size > LOADER_CONFIG_MAX)
        s = kv_fail(err, KVGPT_ERR_CONFIG, "%s: %llu bytes; a config is at most %d", path, (unsigned long long)f.size,
                    LOADER_CONFIG_MAX);
    else
        s = parse_config(path, &f, c, err);
    lf_close(&f);
    return s;
}
