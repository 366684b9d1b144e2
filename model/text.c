/* model/text.c — text in and out of a model: its tokenizer (GPT-2 BPE or a
 * char vocabulary) behind the public encode / token-bytes calls. */
#include "model/model.h"
#include "common/status.h"
#include "tokenizer/bpe.h"

kvgpt_status kvgpt_encode(const kvgpt_model *m, const char *text, size_t len, int32_t *ids, int cap, int *n,
                          kvgpt_error *err)
{
    if (!m || (!text && len) || !n || (!ids && cap > 0)) return kv_fail(err, KVGPT_ERR_ARG, "kvgpt_encode: NULL argument");
    *n = 0;
    if (m->bpe) {
        /* The load scratch is idle after open: it is the encoder's work space. */
        int i = arena_plan_find(&m->plan, "load.scratch");
        return bpe_encode(m->bpe, text, len, ids, cap, n, arena_region(&m->host, &m->plan, i),
                          m->plan.regions[i].bytes, err);
    }
    if (m->chars) return cv_encode(m->chars, text, len, ids, cap, n, err);
    return kv_fail(err, KVGPT_ERR_UNSUPPORTED, "this model folder has no tokenizer files: give token ids");
}

kvgpt_status kvgpt_token_bytes(const kvgpt_model *m, int32_t id, const char **bytes, size_t *len)
{
    if (m->bpe) return bpe_token_bytes(m->bpe, id, bytes, len);
    if (m->chars && id >= 0 && id < m->chars->n) {
        *bytes = m->chars->bytes + m->chars->offsets[id];
        *len = m->chars->offsets[id + 1] - m->chars->offsets[id];
        return KVGPT_OK;
    }
    return m->chars ? KVGPT_ERR_TOKEN : KVGPT_ERR_UNSUPPORTED;
}
