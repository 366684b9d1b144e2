/* model/text.c — text in and out of a model: its tokenizer (GPT-2 BPE or a
 * char vocabulary) behind the public encode / token-bytes calls, and token
 * text in whole UTF-8 characters. */
#include "model/model.h"
#include "common/status.h"
#include "tokenizer/bpe.h"
#include "tokenizer/utf8.h"

#include <string.h>

kvgpt_status kvgpt_encode(kvgpt_model *m, const char *text, size_t len, int32_t *ids, int cap, int *n,
                          kvgpt_error *err)
{
    kvgpt_status s = model_enter(m, "kvgpt_encode", err);
    if (s) return s;
    if ((!text && len) || !n || (!ids && cap > 0)) return kv_fail(err, KVGPT_ERR_ARG, "kvgpt_encode: NULL argument");
    *n = 0;
    if (m->bpe) {
        /* The load scratch is idle after open: it is the encoder's work space. */
        const kvgpt_region *r = kvgpt_plan_region(&m->plan, KVGPT_R_LOAD_SCRATCH);
        return bpe_encode(m->bpe, text, len, ids, cap, n, model_region(m, KVGPT_R_LOAD_SCRATCH), r->bytes, err);
    }
    if (m->chars) return cv_encode(m->chars, text, len, ids, cap, n, err);
    return kv_fail(err, KVGPT_ERR_UNSUPPORTED, "this model folder has no tokenizer files: give token ids");
}

kvgpt_status kvgpt_token_bytes(const kvgpt_model *m, int32_t id, const char **bytes, size_t *len)
{
    if (!m || !bytes || !len) return KVGPT_ERR_ARG;
    if (m->bpe) return bpe_token_bytes(m->bpe, id, bytes, len);
    if (m->chars && id >= 0 && id < m->chars->n) {
        *bytes = m->chars->bytes + m->chars->offsets[id];
        *len = m->chars->offsets[id + 1] - m->chars->offsets[id];
        return KVGPT_OK;
    }
    return m->chars ? KVGPT_ERR_TOKEN : KVGPT_ERR_UNSUPPORTED;
}

void kvgpt_text_init(kvgpt_text_state *st)
{
    if (st) memset(st, 0, sizeof *st);
}

kvgpt_status kvgpt_token_text(const kvgpt_model *m, kvgpt_text_state *st, int32_t id, char *out, size_t cap,
                              size_t *n)
{
    if (n) *n = 0;
    if (!st || !n || (!out && cap)) return KVGPT_ERR_ARG;
    const char *b;
    size_t len;
    kvgpt_status s = kvgpt_token_bytes(m, id, &b, &len);
    if (s) return s;
    size_t need = utf8_feed(st, (const unsigned char *)b, len, NULL);
    *n = need;
    if (need > cap) return KVGPT_ERR_ARG;
    char none[1];   /* nothing is written when need is 0, but the state must advance */
    utf8_feed(st, (const unsigned char *)b, len, out ? out : none);
    return KVGPT_OK;
}

kvgpt_status kvgpt_text_flush(kvgpt_text_state *st, char *out, size_t cap, size_t *n)
{
    if (n) *n = 0;
    if (!st || !n) return KVGPT_ERR_ARG;
    if (st->n_held > 0 && (!out || cap < 3)) {
        *n = 3;
        return KVGPT_ERR_ARG;
    }
    *n = utf8_flush(st, out);
    return KVGPT_OK;
}
