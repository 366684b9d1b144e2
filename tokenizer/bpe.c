/* tokenizer/bpe.c — planning and loading the GPT-2 BPE tables (see bpe.h):
 * vocab.json into a bytes → id hash, merges.txt into a merge rank per token.
 * Both files are untrusted: every failure names the file and line. */
#include "tokenizer/bpe_int.h"
#include "loader/json.h"
#include "loader/loader.h"
#include "common/status.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define BPE_ALIGN 64

static size_t bpe_round(size_t n) { return (n + (BPE_ALIGN - 1)) & ~(size_t)(BPE_ALIGN - 1); }

/* ---- byte-to-unicode ---------------------------------------------------- */
/* GPT-2 shows each byte as a printable code point: the 188 printable Latin-1
 * bytes as themselves, the other 68 (0..32, 127..160, 173) as U+0100.. in order. */
static int bpe_printable(unsigned b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

static int bpe_cp_to_byte(uint32_t cp)
{
    uint32_t n;
    if (cp < 256) return bpe_printable(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    n = cp - 256;
    if (n < 33) return (int)n;
    if (n < 67) return (int)(127 + n - 33);
    return 173;
}

/* Turns the UTF-8 of a token string src[0..n) into its raw bytes at dst
 * (at most cap of them; dst may be src: each code point shrinks to one byte,
 * so writing never overtakes reading). Returns the raw length; -1 when src
 * is not valid UTF-8 of mapped code points; -2 when it needs more than cap. */
static long bpe_unmap(const unsigned char *src, size_t n, unsigned char *dst, size_t cap)
{
    size_t i = 0, o = 0;
    while (i < n) {
        unsigned c = src[i];
        uint32_t cp;
        int b;
        if (c < 0x80) { cp = c; i += 1; }
        else if (c >= 0xC2 && c <= 0xDF && i + 1 < n && (src[i + 1] & 0xC0) == 0x80) {
            cp = ((uint32_t)(c & 0x1F) << 6) | (src[i + 1] & 0x3F);
            i += 2;
        } else {
            return -1; /* every mapped code point is below U+0800 */
        }
        if ((b = bpe_cp_to_byte(cp)) < 0) return -1;
        if (o == cap) return -2;
        dst[o++] = (unsigned char)b;
    }
    return (long)o;
}

/* ---- layout --------------------------------------------------------------- */

typedef struct {
    size_t off, len, rank, slots, blob, total; /* offsets into table_mem */
    uint32_t n_slots;
} bpe_layout;

/* Every table's size from the vocab file's size: raw token bytes never
 * exceed the JSON text that spells them. */
static void bpe_layout_of(size_t vocab_file, int vocab_size, bpe_layout *l)
{
    size_t v = (size_t)vocab_size, p = 0;
    uint32_t slots = 2;
    while (slots < 2 * v) slots *= 2; /* load factor <= 1/2 */
    l->n_slots = slots;
    p = bpe_round(sizeof(bpe_tokenizer));
    l->off = p;   p += bpe_round(v * sizeof(uint32_t));
    l->len = p;   p += bpe_round(v * sizeof(uint32_t));
    l->rank = p;  p += bpe_round(v * sizeof(int32_t));
    l->slots = p; p += bpe_round((size_t)slots * sizeof(bpe_slot));
    l->blob = p;  p += bpe_round(vocab_file);
    l->total = p;
}

static kvgpt_status bpe_file_size(const char *path, size_t *size, kvgpt_error *err)
{
    struct stat st;
    if (!path) return kv_fail(err, KVGPT_ERR_ARG, "bpe: no path given for a tokenizer file");
    if (stat(path, &st) != 0) return kv_fail(err, KVGPT_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return kv_fail(err, KVGPT_ERR_IO, "%s: not a regular file", path);
    if (st.st_size == 0) return kv_fail(err, KVGPT_ERR_VOCAB, "%s:1: empty file", path);
    if ((unsigned long long)st.st_size > (unsigned long long)BPE_MAX_FILE_BYTES)
        return kv_fail(err, KVGPT_ERR_VOCAB, "%s:1: absurd size for a tokenizer file: %lld bytes (limit %zu)",
                        path, (long long)st.st_size, BPE_MAX_FILE_BYTES);
    *size = (size_t)st.st_size;
    return KVGPT_OK;
}

static kvgpt_status bpe_sizes_of(const char *vocab_path, const char *merges_path, int vocab_size,
                                 size_t *vb, size_t *mb, bpe_layout *l, kvgpt_error *err)
{
    kvgpt_status s;
    if (vocab_size < 256 || vocab_size > BPE_MAX_VOCAB)
        return kv_fail(err, KVGPT_ERR_ARG, "%s: vocab_size %d is impossible for byte-level BPE (256..%d)",
                        vocab_path ? vocab_path : "bpe", vocab_size, BPE_MAX_VOCAB);
    if ((s = bpe_file_size(vocab_path, vb, err)) != KVGPT_OK) return s;
    if ((s = bpe_file_size(merges_path, mb, err)) != KVGPT_OK) return s;
    bpe_layout_of(*vb, vocab_size, l);
    return KVGPT_OK;
}

kvgpt_status bpe_plan(const char *vocab_path, const char *merges_path, int vocab_size,
                      bpe_sizes *out, kvgpt_error *err)
{
    size_t vb = 0, mb = 0;
    bpe_layout l = {0};
    kvgpt_status s;
    if (!out) return kv_fail(err, KVGPT_ERR_ARG, "bpe_plan: out is NULL");
    out->table_bytes = out->file_bytes = 0;
    if ((s = bpe_sizes_of(vocab_path, merges_path, vocab_size, &vb, &mb, &l, err)) != KVGPT_OK) return s;
    out->table_bytes = l.total;
    out->file_bytes = vb + mb;
    return KVGPT_OK;
}

int bpe_find_files(const char *dir, char *vocab_path, char *merges_path, size_t cap)
{
    static const char *const pairs[2][2] = {{"vocab.json", "merges.txt"}, {"encoder.json", "vocab.bpe"}};
    int i;
    for (i = 0; i < 2; i++) {
        struct stat a, b;
        int n1 = snprintf(vocab_path, cap, "%s/%s", dir, pairs[i][0]);
        int n2 = snprintf(merges_path, cap, "%s/%s", dir, pairs[i][1]);
        if (n1 < 0 || n2 < 0 || (size_t)n1 >= cap || (size_t)n2 >= cap) continue;
        if (stat(vocab_path, &a) == 0 && S_ISREG(a.st_mode) && stat(merges_path, &b) == 0 && S_ISREG(b.st_mode))
            return 1;
    }
    if (cap) vocab_path[0] = merges_path[0] = 0;
    return 0;
}

/* ---- reading -------------------------------------------------------------- */

/* Reads exactly size bytes (the size bpe_load planned with); a file that
 * changed size since is refused rather than half-read. */
static kvgpt_status bpe_read_file(const char *path, unsigned char *buf, size_t size, kvgpt_error *err)
{
    /* The loader's POSIX reads: no stdio buffer is allocated behind the arena's back. */
    lf_file f;
    kvgpt_status s = lf_open(&f, path, err);
    if (s) return s;
    if (f.size != size) {
        lf_close(&f);
        return kv_fail(err, KVGPT_ERR_IO, "%s: changed size since it was planned (expected %zu bytes)", path, size);
    }
    s = lf_read(&f, 0, buf, size, err);
    lf_close(&f);
    return s;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0. */
static size_t bpe_utf8_len(const unsigned char *s, size_t n)
{
    size_t need, i;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) need = 1;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) need = 2;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4) need = 3;
    else return 0;
    if (n < need + 1) return 0;
    for (i = 1; i <= need; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return need + 1;
}

/* A token string quoted for a message: at most 40 bytes, as the file spells
 * it when that is printable UTF-8, other bytes as \xNN. */
static const char *bpe_quote(const unsigned char *s, size_t n, char *out, size_t cap)
{
    size_t i = 0, o = 0, k;
    while (i < n && i < 40 && o + 8 < cap) {
        if (s[i] >= 0x20 && s[i] < 0x7F) {
            out[o++] = (char)s[i++];
        } else if (s[i] >= 0x80 && (k = bpe_utf8_len(s + i, n - i)) != 0) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02X", s[i++]);
        }
    }
    if (i < n && o + 4 < cap) { memcpy(out + o, "...", 3); o += 3; }
    out[o] = 0;
    return out;
}

/* Working state of one load: the tables being filled (writable views of
 * what the tokenizer will read as const). */
typedef struct {
    bpe_tokenizer *t;
    uint32_t *off, *len;
    int32_t *rank;
    bpe_slot *slots;
    unsigned char *blob;
    size_t blob_used, blob_cap;
} bpe_build;

/* Inserts token id (bytes already at blob + off[id]); returns the id that
 * already has these bytes, or -1 when they were new. */
static int32_t bpe_insert(bpe_build *b, uint32_t id)
{
    const bpe_tokenizer *t = b->t;
    const unsigned char *p = b->blob + b->off[id];
    size_t n = b->len[id];
    uint32_t h = bpe_hash(p, n), i;
    for (i = h & t->hash_mask;; i = (i + 1) & t->hash_mask) {
        bpe_slot *s = &b->slots[i];
        if (s->id_plus1 == 0) {
            s->id_plus1 = id + 1;
            s->hash = h;
            return -1;
        }
        if (s->hash == h) {
            uint32_t o = s->id_plus1 - 1;
            if (b->len[o] == n && memcmp(b->blob + b->off[o], p, n) == 0) return (int32_t)o;
        }
    }
}

static kvgpt_status bpe_parse_vocab(bpe_build *b, const char *path, const char *text, size_t size, kvgpt_error *err)
{
    bpe_tokenizer *t = b->t;
    json_reader r;
    json_span key;
    int64_t id;
    int n = 0, i;
    json_reader at_end;
    char q[256];

    json_init(&r, text, size);
    if (!json_object_begin(&r)) goto bad_json;
    while (json_object_next(&r, &key)) {
        long dec, raw;
        int32_t dup;
        unsigned char *dst = b->blob + b->blob_used;
        if (!json_int64(&r, 0, INT32_MAX, &id)) goto bad_json;
        dec = json_unescape(key, (char *)dst, b->blob_cap - b->blob_used);
        if (dec < 0) {
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s:%d: token \"%s\" has a malformed escape", path, json_line(&r),
                            bpe_quote((const unsigned char *)key.p, key.len, q, sizeof q));
        }
        raw = bpe_unmap(dst, (size_t)dec, dst, (size_t)dec);
        if (raw <= 0) {
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s:%d: token \"%s\" is %s", path, json_line(&r),
                            bpe_quote((const unsigned char *)key.p, key.len, q, sizeof q),
                            raw == 0 ? "empty" : "not byte-level BPE text (a code point outside GPT-2's byte-to-unicode map)");
        }
        if (id >= t->vocab_size) {
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s:%d: token id %lld is out of range: the model's vocab_size is %d",
                            path, json_line(&r), (long long)id, t->vocab_size);
        }
        if (b->len[id] != 0) {
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s:%d: token id %lld is used twice", path, json_line(&r),
                            (long long)id);
        }
        b->off[id] = (uint32_t)b->blob_used;
        b->len[id] = (uint32_t)raw;
        if ((dup = bpe_insert(b, (uint32_t)id)) >= 0) {
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s:%d: token \"%s\" appears twice (ids %d and %lld)", path,
                            json_line(&r), bpe_quote((const unsigned char *)key.p, key.len, q, sizeof q), dup,
                            (long long)id);
        }
        b->blob_used += (size_t)raw;
        if ((uint32_t)raw > t->max_len) t->max_len = (uint32_t)raw;
        n++;
    }
    if (r.err) goto bad_json;
    at_end = r; /* whole-file complaints point at the closing brace */
    if (!json_finish(&r)) goto bad_json;

    if (n > t->vocab_size || t->vocab_size - n >= BPE_VOCAB_PAD) {
        return kv_fail(err, KVGPT_ERR_VOCAB, "%s:%d: has %d tokens, but the model's vocab_size is %d", path,
                        json_line(&at_end), n, t->vocab_size);
    }
    for (i = 0; i < n; i++) {
        if (b->len[i] == 0) {
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s:%d: has %d tokens but no token with id %d (ids must be 0..%d)",
                            path, json_line(&at_end), n, i, n - 1);
        }
    }
    t->n_tokens = n;
    for (i = 0; i < 256; i++) {
        unsigned char c = (unsigned char)i;
        if ((t->byte_id[i] = bpe_lookup(t, &c, 1)) < 0)
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s:%d: no token for the byte 0x%02X", path, json_line(&at_end), i);
    }
    t->eot = bpe_lookup(t, (const unsigned char *)"<|endoftext|>", 13);
    return KVGPT_OK;

bad_json:
    return kv_fail(err, KVGPT_ERR_VOCAB, "%s:%d: not a JSON object of token -> id: %s", path, json_line(&r),
                    r.err ? r.err : "malformed");
}

/* merges.txt: an optional "#version" first line, then one "A B" per line
 * (LF, CRLF or CR line ends),
 * best (lowest rank) first. The merged bytes are built in scratch (the
 * vocab.json buffer, free by now), leaving the text intact for messages;
 * a token that does not fit scratch is longer than the vocab file, so unknown. */
static kvgpt_status bpe_parse_merges(bpe_build *b, const char *path, const unsigned char *text, size_t size,
                                     unsigned char *scratch, size_t scratch_cap, kvgpt_error *err)
{
    bpe_tokenizer *t = b->t;
    size_t pos = 0;
    int line = 0, rank = 0;
    char q1[256], q2[256];

    while (pos < size) {
        const unsigned char *s = text + pos, *e = s, *sp;
        long la, lb;
        int32_t ia = -1, ib = -1, im;
        size_t n;
        /* Lines end with LF, CRLF or a lone CR (old Mac files): a raw CR is
         * never part of a token, whose bytes are spelled as printable characters. */
        while (e < text + size && *e != '\n' && *e != '\r') e++;
        pos = (size_t)(e - text);
        if (pos < size) pos += text[pos] == '\r' && pos + 1 < size && text[pos + 1] == '\n' ? 2 : 1;
        line++;
        n = (size_t)(e - s);
        if (line == 1 && n >= 8 && memcmp(s, "#version", 8) == 0) continue;
        if (n == 0) {
            if (pos >= size) break; /* the final newline */
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s:%d: empty line; expected a merge \"A B\"", path, line);
        }
        sp = memchr(s, ' ', n);
        if (!sp || sp == s || sp + 1 == e || memchr(sp + 1, ' ', (size_t)(e - sp - 1))) {
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s:%d: \"%s\" is not a merge of two tokens \"A B\"", path, line,
                            bpe_quote(s, n, q1, sizeof q1));
        }
        la = bpe_unmap(s, (size_t)(sp - s), scratch, scratch_cap);
        lb = la < 0 ? -1 : bpe_unmap(sp + 1, (size_t)(e - sp - 1), scratch + la, scratch_cap - (size_t)la);
        if (la == -1 || (la >= 0 && lb == -1)) {
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s:%d: token \"%s\" is not byte-level BPE text", path, line,
                            la == -1 ? bpe_quote(s, (size_t)(sp - s), q1, sizeof q1)
                                     : bpe_quote(sp + 1, (size_t)(e - sp - 1), q1, sizeof q1));
        }
        if (la > 0) ia = bpe_lookup(t, scratch, (size_t)la);
        if (ia >= 0 && lb > 0) ib = bpe_lookup(t, scratch + la, (size_t)lb);
        if (ia < 0 || ib < 0) {
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s:%d: merge names the token \"%s\", which is not in the vocabulary",
                            path, line, ia < 0 ? bpe_quote(s, (size_t)(sp - s), q1, sizeof q1)
                                               : bpe_quote(sp + 1, (size_t)(e - sp - 1), q1, sizeof q1));
        }
        im = bpe_lookup(t, scratch, (size_t)(la + lb));
        if (im < 0 || b->rank[im] != BPE_NO_RANK) {
            bpe_quote(s, (size_t)(sp - s), q1, sizeof q1);
            bpe_quote(sp + 1, (size_t)(e - sp - 1), q2, sizeof q2);
            if (im < 0)
                return kv_fail(err, KVGPT_ERR_VOCAB,
                                "%s:%d: merge \"%s\" + \"%s\" makes a token that is not in the vocabulary", path,
                                line, q1, q2);
            return kv_fail(err, KVGPT_ERR_VOCAB,
                            "%s:%d: merge \"%s\" + \"%s\" makes token %d, which an earlier merge already makes", path,
                            line, q1, q2, im);
        }
        if (rank >= t->n_tokens) return kv_fail(err, KVGPT_ERR_VOCAB, "%s:%d: more merges than tokens", path, line);
        b->rank[im] = rank++;
    }
    if (rank == 0) return kv_fail(err, KVGPT_ERR_VOCAB, "%s:%d: no merges", path, line < 1 ? 1 : line);
    return KVGPT_OK;
}

kvgpt_status bpe_load(void *table_mem, size_t table_bytes, void *file_mem, size_t file_bytes,
                      const char *vocab_path, const char *merges_path, int vocab_size,
                      bpe_tokenizer **out, kvgpt_error *err)
{
    size_t vb = 0, mb = 0, i;
    bpe_layout l = {0};
    bpe_build b;
    bpe_tokenizer *t;
    unsigned char *tm = table_mem, *fm = file_mem;
    kvgpt_status s;

    if (!out) return kv_fail(err, KVGPT_ERR_ARG, "bpe_load: out is NULL");
    *out = NULL;
    if ((s = bpe_sizes_of(vocab_path, merges_path, vocab_size, &vb, &mb, &l, err)) != KVGPT_OK) return s;
    if (!table_mem || table_bytes < l.total)
        return kv_fail(err, KVGPT_ERR_ARG, "%s: the tokenizer tables need %zu bytes, given %zu (missing %zu)",
                        vocab_path, l.total, table_mem ? table_bytes : 0, l.total - (table_mem ? table_bytes : 0));
    if (((uintptr_t)table_mem & (BPE_ALIGN - 1)) != 0)
        return kv_fail(err, KVGPT_ERR_ARG, "%s: tokenizer table memory is not %d-byte aligned", vocab_path, BPE_ALIGN);
    if (!file_mem || file_bytes < vb + mb)
        return kv_fail(err, KVGPT_ERR_ARG, "%s: loading the tokenizer needs %zu bytes for the files, given %zu (missing %zu)",
                        vocab_path, vb + mb, file_mem ? file_bytes : 0, vb + mb - (file_mem ? file_bytes : 0));

    if ((s = bpe_read_file(vocab_path, fm, vb, err)) != KVGPT_OK) return s;
    if ((s = bpe_read_file(merges_path, fm + vb, mb, err)) != KVGPT_OK) return s;

    memset(tm, 0, l.slots + (size_t)l.n_slots * sizeof(bpe_slot)); /* header, lengths, empty slots */
    t = (bpe_tokenizer *)(void *)tm;
    t->vocab_size = vocab_size;
    t->eot = -1;
    t->hash_mask = l.n_slots - 1;
    b.t = t;
    b.off = (uint32_t *)(void *)(tm + l.off);
    b.len = (uint32_t *)(void *)(tm + l.len);
    b.rank = (int32_t *)(void *)(tm + l.rank);
    b.slots = (bpe_slot *)(void *)(tm + l.slots);
    b.blob = tm + l.blob;
    b.blob_used = 0;
    b.blob_cap = vb;
    for (i = 0; i < (size_t)vocab_size; i++) b.rank[i] = BPE_NO_RANK;
    t->off = b.off;
    t->len = b.len;
    t->rank = b.rank;
    t->slots = b.slots;
    t->blob = b.blob;

    if ((s = bpe_parse_vocab(&b, vocab_path, (const char *)fm, vb, err)) != KVGPT_OK) return s;
    if ((s = bpe_parse_merges(&b, merges_path, fm + vb, mb, fm, vb, err)) != KVGPT_OK) return s;
    *out = t;
    return KVGPT_OK;
}

kvgpt_status bpe_token_bytes(const bpe_tokenizer *t, int32_t id, const char **bytes, size_t *len)
{
    if (!t || id < 0 || id >= t->n_tokens) {
        if (bytes) *bytes = NULL;
        if (len) *len = 0;
        return KVGPT_ERR_TOKEN;
    }
    *bytes = (const char *)(t->blob + t->off[id]);
    *len = t->len[id];
    return KVGPT_OK;
}

int bpe_vocab_size(const bpe_tokenizer *t) { return t ? t->vocab_size : 0; }
int bpe_token_count(const bpe_tokenizer *t) { return t ? t->n_tokens : 0; }
int bpe_eot_token(const bpe_tokenizer *t) { return t ? t->eot : -1; }
