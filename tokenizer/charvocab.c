/* tokenizer/charvocab.c — nanoGPT's character vocabulary: vocab.json holding
 * {"stoi": {char: id}, "itos": [char by id]} (from meta.pkl). Each token is
 * one Unicode character stored as its UTF-8 bytes; encoding takes the longest
 * token that matches at each point. */
#include "tokenizer/charvocab.h"
#include "loader/loader.h"
#include "loader/json.h"
#include "common/status.h"

#include <string.h>

size_t cv_table_bytes(uint64_t file_size, int vocab_size)
{
    /* The strings are never longer than the file; offsets are n + 1. */
    return (size_t)file_size + 1 + ((size_t)vocab_size + 1) * sizeof(uint32_t) + 8;
}

int cv_one_char(const void *p, size_t n)
{
    const unsigned char *s = p;
    if (n == 0) return 0;
    size_t need = s[0] < 0x80 ? 1 : s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
                : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    if (need != n) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0))) return 0;
    return !(n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90)));
}

kvgpt_status cv_load(cv_vocab *v, const char *path, int vocab_size, void *file_mem, size_t file_bytes,
                     void *table_mem, size_t table_bytes, kvgpt_error *err)
{
    memset(v, 0, sizeof *v);
    lf_file f;
    kvgpt_status s = lf_open(&f, path, err);
    if (s) return s;
    if (f.size > file_bytes || table_bytes < cv_table_bytes(f.size, vocab_size)) {
        lf_close(&f);
        return kv_fail(err, KVGPT_ERR_VOCAB, "%s: changed size since it was planned", path);
    }
    size_t n = (size_t)f.size;
    s = lf_read(&f, 0, file_mem, n, err);
    lf_close(&f);
    if (s) return s;

    v->offsets = table_mem;
    v->bytes = (char *)table_mem + ((size_t)vocab_size + 1) * sizeof(uint32_t);
    size_t cap = table_bytes - ((size_t)vocab_size + 1) * sizeof(uint32_t), used = 0;
    for (int i = 0; i < 256; i++) v->byte_to_id[i] = -1;

    json_reader r;
    json_init(&r, file_mem, n);
    json_span key;
    int have_itos = 0, count = 0;
    if (json_object_begin(&r)) {
        while (json_object_next(&r, &key)) {
            if (!json_span_eq(key, "itos")) {
                if (!json_skip(&r)) break;   /* stoi is the inverse of itos: checked by use */
                continue;
            }
            have_itos = 1;
            if (!json_array_begin(&r)) break;
            while (json_array_next(&r)) {
                json_span tok;
                if (!json_string(&r, &tok)) break;
                if (count >= vocab_size)
                    return kv_fail(err, KVGPT_ERR_VOCAB, "%s: line %d: itos has more than vocab_size %d entries",
                                   path, json_line(&r), vocab_size);
                v->offsets[count] = (uint32_t)used;
                long len = json_unescape(tok, v->bytes + used, cap - used);
                if (len <= 0)
                    return kv_fail(err, KVGPT_ERR_VOCAB, "%s: line %d: token %d is empty or badly escaped", path,
                                   json_line(&r), count);
                if (!cv_one_char(v->bytes + used, (size_t)len))
                    return kv_fail(err, KVGPT_ERR_VOCAB, "%s: line %d: token %d is not one UTF-8 character", path,
                                   json_line(&r), count);
                if (len == 1) v->byte_to_id[(unsigned char)v->bytes[used]] = (int16_t)(count < 32767 ? count : -1);
                used += (size_t)len;
                count++;
            }
        }
    }
    if (!json_finish(&r))
        return kv_fail(err, KVGPT_ERR_VOCAB, "%s: line %d: not valid JSON: %s", path, json_line(&r), r.err);
    if (!have_itos) return kv_fail(err, KVGPT_ERR_VOCAB, "%s: no \"itos\" list", path);
    if (count != vocab_size)
        return kv_fail(err, KVGPT_ERR_VOCAB, "%s: itos has %d entries but the model's vocab_size is %d", path, count,
                       vocab_size);
    v->offsets[count] = (uint32_t)used;
    v->n = count;
    return KVGPT_OK;
}

kvgpt_status cv_encode(const cv_vocab *v, const char *text, size_t len, int32_t *ids, int cap, int *n,
                       kvgpt_error *err)
{
    int count = 0;
    size_t i = 0;
    while (i < len) {
        int best = -1;
        size_t best_len = 0;
        int single = v->byte_to_id[(unsigned char)text[i]];
        if (single >= 0) { best = single; best_len = 1; }
        /* Only a byte that starts a multi-byte character can match a longer token. */
        for (int t = 0; t < v->n && (unsigned char)text[i] >= 0x80; t++) {
            size_t tl = v->offsets[t + 1] - v->offsets[t];
            if (tl > best_len && tl <= len - i && memcmp(v->bytes + v->offsets[t], text + i, tl) == 0) {
                best = t;
                best_len = tl;
            }
        }
        if (best < 0)
            return kv_fail(err, KVGPT_ERR_TOKEN, "text byte %zu (0x%02x) is not in the character vocabulary", i,
                           (unsigned char)text[i]);
        if (count < cap) ids[count] = best;
        count++;
        i += best_len;
    }
    *n = count;
    if (count > cap)
        return kv_fail(err, KVGPT_ERR_ARG, "the text has %d tokens, more than the %d that fit", count, cap);
    return KVGPT_OK;
}
