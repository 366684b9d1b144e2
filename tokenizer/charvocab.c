/* tokenizer/charvocab.c — nanoGPT's character vocabulary: vocab.json holding
 * {"stoi": {char: id}, "itos": [char by id]} (from meta.pkl). Each token is
 * one Unicode character stored as its UTF-8 bytes, found by a hash of its
 * character: encoding is one probe per character of the text. */
#include "tokenizer/charvocab.h"
#include "loader/loader.h"
#include "loader/json.h"
#include "common/status.h"

#include <string.h>

typedef struct {
    size_t slots, bytes, bytes_cap, total;   /* offsets into table_mem */
    uint32_t n_slots;
} cv_layout;

static void layout_of(uint64_t file_size, int vocab_size, cv_layout *l)
{
    size_t v = vocab_size > 0 ? (size_t)vocab_size : 0;
    uint32_t slots = 2;
    while (slots < 2 * v) slots *= 2;   /* load factor <= 1/2 */
    /* A token is one character, at most 4 bytes, spelled somewhere in the file. */
    uint64_t strings = file_size < 4 * (uint64_t)v ? file_size : 4 * (uint64_t)v;
    l->n_slots = slots;
    l->slots = ((v + 1) * sizeof(uint32_t) + 7) & ~(size_t)7;
    l->bytes = l->slots + (size_t)slots * sizeof(cv_slot);
    l->bytes_cap = (size_t)strings + 1;
    l->total = l->bytes + l->bytes_cap + 8;
}

size_t cv_table_bytes(uint64_t file_size, int vocab_size)
{
    cv_layout l;
    layout_of(file_size, vocab_size, &l);
    return l.total;
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

/* UTF-8 is prefix-free: one character's bytes, packed, are its key. */
static uint32_t char_key(const char *s, size_t n)
{
    uint32_t k = 0;
    for (size_t i = 0; i < n && i < 4; i++) k |= (uint32_t)(unsigned char)s[i] << (8 * i);
    return k;
}

static uint32_t slot_of(const cv_vocab *v, uint32_t key) { return (key * 0x9E3779B1u) >> 7 & v->mask; }

void cv_begin(cv_vocab *v, uint64_t file_size, int vocab_size, void *table_mem)
{
    cv_layout l;
    layout_of(file_size, vocab_size, &l);
    v->n = 0;
    v->offsets = table_mem;
    v->slots = (cv_slot *)(void *)((char *)table_mem + l.slots);
    v->mask = l.n_slots - 1;
    v->bytes = (char *)table_mem + l.bytes;
    memset(v->slots, 0, (size_t)l.n_slots * sizeof(cv_slot));
    for (int i = 0; i < 256; i++) v->byte_to_id[i] = -1;
}

int cv_find(const cv_vocab *v, const char *s, size_t n)
{
    uint32_t key = char_key(s, n);
    for (uint32_t i = slot_of(v, key);; i = (i + 1) & v->mask) {
        if (v->slots[i].id_plus1 == 0) return -1;
        if (v->slots[i].key == key) return (int)v->slots[i].id_plus1 - 1;
    }
}

int cv_add(cv_vocab *v, int id, const char *s, size_t n, size_t *used)
{
    uint32_t key = char_key(s, n), i;
    for (i = slot_of(v, key); v->slots[i].id_plus1; i = (i + 1) & v->mask)
        if (v->slots[i].key == key) return (int)v->slots[i].id_plus1 - 1;
    v->slots[i].key = key;
    v->slots[i].id_plus1 = (uint32_t)id + 1;
    v->offsets[id] = (uint32_t)*used;
    memcpy(v->bytes + *used, s, n);
    *used += n;
    v->offsets[id + 1] = (uint32_t)*used;
    if (n == 1) v->byte_to_id[(unsigned char)s[0]] = id;
    return -1;
}

/* "itos": the tokens, in id order. */
static kvgpt_status read_itos(cv_vocab *v, json_reader *r, const char *path, int vocab_size, size_t cap,
                              kvgpt_error *err)
{
    size_t used = 0;
    int count = 0;
    if (!json_array_begin(r)) return KVGPT_OK;
    while (json_array_next(r)) {
        json_span tok;
        char c[8];
        if (!json_string(r, &tok)) break;
        if (count >= vocab_size)
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s: line %d: itos has more than vocab_size %d entries", path,
                           json_line(r), vocab_size);
        long full = json_unescaped_len(tok), len = json_unescape(tok, c, sizeof c);
        if (full <= 0 || len <= 0 || !cv_one_char(c, (size_t)len))
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s: line %d: token %d is %s", path, json_line(r), count,
                           full < 0 ? "badly escaped" : full == 0 ? "empty" : "not one UTF-8 character");
        if (used + (size_t)len > cap)
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s: changed size since it was planned", path);
        int dup = cv_add(v, count, c, (size_t)len, &used);
        if (dup >= 0)
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s: line %d: itos[%d] is the same character as itos[%d]", path,
                           json_line(r), count, dup);
        count++;
    }
    if (!r->err && count != vocab_size)
        return kv_fail(err, KVGPT_ERR_VOCAB, "%s: itos has %d entries but the model's vocab_size is %d", path, count,
                       vocab_size);
    v->n = count;
    return KVGPT_OK;
}

/* "stoi" must be itos' exact inverse: every id once, each to its own character. */
static kvgpt_status check_stoi(const cv_vocab *v, json_reader *r, const char *path, kvgpt_error *err)
{
    json_span key;
    int count = 0;
    if (!json_object_begin(r)) return KVGPT_OK;
    while (json_object_next(r, &key)) {
        int64_t id;
        char c[8];
        long len = json_unescape(key, c, sizeof c);
        if (!json_int64(r, 0, INT32_MAX, &id)) break;
        if (len <= 0 || id >= v->n || cv_find(v, c, (size_t)len) != (int)id)
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s: line %d: stoi maps a character to %lld, but itos[%lld] is "
                           "another", path, json_line(r), (long long)id, (long long)id);
        if (++count > v->n)
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s: line %d: stoi lists id %lld twice", path, json_line(r),
                           (long long)id);
    }
    if (!r->err && count != v->n)
        return kv_fail(err, KVGPT_ERR_VOCAB, "%s: stoi has %d entries, itos %d", path, count, v->n);
    return KVGPT_OK;
}

/* One pass over the top-level object: "itos" (pass 0) or "stoi" (pass 1). */
static kvgpt_status read_pass(cv_vocab *v, const char *path, const char *text, size_t n, int vocab_size,
                              size_t cap, int pass, int *seen, kvgpt_error *err)
{
    json_reader r;
    json_span key;
    kvgpt_status s = KVGPT_OK;
    json_init(&r, text, n);
    *seen = 0;
    if (json_object_begin(&r))
        while (!s && json_object_next(&r, &key)) {
            if (json_span_eq(key, pass ? "stoi" : "itos")) {
                if ((*seen)++) return kv_fail(err, KVGPT_ERR_VOCAB, "%s: two \"%s\" entries", path, pass ? "stoi" : "itos");
                s = pass ? check_stoi(v, &r, path, err) : read_itos(v, &r, path, vocab_size, cap, err);
            } else if (!json_skip(&r)) {
                break;
            }
        }
    if (s) return s;
    if (!json_finish(&r))
        return kv_fail(err, KVGPT_ERR_VOCAB, "%s: line %d: not valid JSON: %s", path, json_line(&r), r.err);
    return KVGPT_OK;
}

/* The GPT-2 BPE's vocab.json maps tokens to ids: its first member's value is
 * a number; a char vocabulary's are "stoi"/"itos" (or its "vocab_size"). */
static int bpe_like(const char *text, size_t n)
{
    json_reader r;
    json_span key;
    json_init(&r, text, n);
    return json_object_begin(&r) && json_object_next(&r, &key) && json_peek(&r) == JSON_T_NUMBER &&
           !json_span_eq(key, "vocab_size");
}

int cv_is_char_vocab(const char *path)
{
    char head[512];
    lf_file f;
    if (lf_open(&f, path, NULL)) return 1;   /* cv_load will say what is wrong with it */
    size_t n = f.size < sizeof head ? (size_t)f.size : sizeof head;
    int bpe = !lf_read(&f, 0, head, n, NULL) && bpe_like(head, n);
    lf_close(&f);
    return !bpe;
}

kvgpt_status cv_load(cv_vocab *v, const char *path, int vocab_size, void *file_mem, size_t file_bytes,
                     void *table_mem, size_t table_bytes, kvgpt_error *err)
{
    memset(v, 0, sizeof *v);
    lf_file f;
    kvgpt_status s = lf_open(&f, path, err);
    if (s) return s;
    cv_layout l;
    layout_of(f.size, vocab_size, &l);
    if (f.size > file_bytes || table_bytes < l.total || vocab_size < 1) {
        lf_close(&f);
        return kv_fail(err, KVGPT_ERR_VOCAB, "%s: changed size since it was planned", path);
    }
    size_t n = (size_t)f.size;
    s = lf_read(&f, 0, file_mem, n, err);
    lf_close(&f);
    if (s) return s;
    cv_begin(v, f.size, vocab_size, table_mem);
    int have_itos, have_stoi;
    if ((s = read_pass(v, path, file_mem, n, vocab_size, l.bytes_cap, 0, &have_itos, err))) return s;
    if (!have_itos)
        return kv_fail(err, KVGPT_ERR_VOCAB, bpe_like(file_mem, n) ? "%s: a GPT-2 BPE vocabulary (token -> id) "
                       "without the merges.txt that goes with it" : "%s: no \"itos\" list", path);
    return read_pass(v, path, file_mem, n, vocab_size, l.bytes_cap, 1, &have_stoi, err);
}

kvgpt_status cv_encode(const cv_vocab *v, const char *text, size_t len, int32_t *ids, int cap, int *n,
                       kvgpt_error *err)
{
    int count = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)text[i];
        size_t tl = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        int id = -1;
        if (tl == 1) id = v->byte_to_id[c];
        else if (tl && tl <= len - i && cv_one_char(text + i, tl)) id = cv_find(v, text + i, tl);
        if (id < 0) {
            *n = count;
            if (tl < 2 || tl > len - i || !cv_one_char(text + i, tl))
                return kv_fail(err, KVGPT_ERR_TOKEN, "text byte %zu (0x%02x) is not in the character vocabulary", i, c);
            uint32_t cp = c & (0x7Fu >> tl);
            for (size_t k = 1; k < tl; k++) cp = cp << 6 | ((unsigned char)text[i + k] & 0x3F);
            return kv_fail(err, KVGPT_ERR_TOKEN, "text byte %zu: the character U+%04X is not in the character "
                           "vocabulary", i, (unsigned)cp);
        }
        if (count == INT32_MAX) return kv_fail(err, KVGPT_ERR_ARG, "the text has more than %d tokens", INT32_MAX);
        if (count < cap) ids[count] = id;
        count++;
        i += tl;
    }
    *n = count;
    if (count > cap)
        return kv_fail(err, KVGPT_ERR_ARG, "the text has %d tokens, more than the %d that fit", count, cap);
    return KVGPT_OK;
}
