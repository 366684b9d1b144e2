/* loader/safetensors.c — the safetensors reader: an 8-byte little-endian
 * header length, a JSON header {name: {dtype, shape, data_offsets}}, then the
 * data. Every entry is validated against the file before anything trusts it:
 * offsets in range and ordered, no overlaps, size == shape × dtype size. */
#include "loader/loader.h"
#include "loader/ckpt.h"
#include "loader/json.h"
#include "common/status.h"
#include "common/sort.h"
#include "common/half.h"

#include <stdio.h>
#include <string.h>

/* The smallest possible entry, "":{"dtype":"F32","shape":[],"data_offsets":[0,0]},
 * bounds how many entries a header of a given length can hold. */
#define ST_MIN_ENTRY 48

size_t st_dtype_size(st_dtype d)
{
    switch (d) {
    case ST_F32: return 4;
    case ST_F16:
    case ST_BF16: return 2;
    default: return 0;
    }
}

kvgpt_status st_open(st_file *s, const char *path, size_t *scratch_bytes, kvgpt_error *err)
{
    memset(s, 0, sizeof *s);
    kvgpt_status st = lf_open(&s->file, path, err);
    if (st) return st;
    if (s->file.size < 8) {
        st = kv_fail(err, KVGPT_ERR_ST_HEADER, "%s: %s (%llu bytes): no 8-byte header length", path,
                     s->file.size ? "truncated" : "empty file", (unsigned long long)s->file.size);
        goto fail;
    }
    unsigned char b[8];
    if ((st = lf_read(&s->file, 0, b, 8, err))) goto fail;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | b[i];
    if (n > ST_MAX_HEADER) {
        st = kv_fail(err, KVGPT_ERR_ST_HEADER, "%s: header length %llu is absurd (limit %u)", path,
                     (unsigned long long)n, ST_MAX_HEADER);
        goto fail;
    }
    if (n > s->file.size - 8) {
        st = kv_fail(err, KVGPT_ERR_ST_HEADER, "%s: header length %llu is larger than the file (%llu bytes)",
                     path, (unsigned long long)n, (unsigned long long)s->file.size);
        goto fail;
    }
    if (n < 2) {
        st = kv_fail(err, KVGPT_ERR_ST_HEADER, "%s: header of %llu bytes cannot be a JSON object", path,
                     (unsigned long long)n);
        goto fail;
    }
    s->header_len = n;
    s->data_start = 8 + n;
    *scratch_bytes = (size_t)n + 8 + ((size_t)n / ST_MIN_ENTRY + 1) * sizeof(st_tensor);
    return KVGPT_OK;
fail:
    lf_close(&s->file);
    return st;
}

void st_close(st_file *s) { lf_close(&s->file); }

static int by_offset(const void *a, const void *b)
{
    const st_tensor *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

int st_tensor_cmp_name(const void *a, const void *b)
{
    const st_tensor *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c) return c;
    return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static st_dtype parse_dtype(json_span v)
{
    if (json_span_eq(v, "F32")) return ST_F32;
    if (json_span_eq(v, "F16")) return ST_F16;
    if (json_span_eq(v, "BF16")) return ST_BF16;
    return ST_OTHER;
}

/* Parses one tensor entry's object; the caller reports failures with the name. */
static kvgpt_status parse_entry(json_reader *r, st_tensor *t, const char *path, kvgpt_error *err)
{
    json_span key, v;
    int have_dtype = 0, have_shape = 0, have_off = 0;
    if (!json_object_begin(r)) goto json;
    while (json_object_next(r, &key)) {
        if (json_span_eq(key, "dtype")) {
            if (!json_string(r, &v)) goto json;
            t->dtype = parse_dtype(v);
            if (t->dtype == ST_OTHER)
                return kv_fail(err, KVGPT_ERR_ST_TENSOR, "%s: tensor \"%.*s\": unsupported dtype \"%.*s\"", path,
                               (int)t->name_len, t->name, (int)(v.len > 16 ? 16 : v.len), v.p);
            have_dtype = 1;
        } else if (json_span_eq(key, "shape")) {
            if (!json_array_begin(r)) goto json;
            t->ndim = 0;
            while (json_array_next(r)) {
                int64_t d;
                if (t->ndim >= ST_MAX_DIMS)
                    return kv_fail(err, KVGPT_ERR_ST_TENSOR, "%s: tensor \"%.*s\": more than %d dimensions", path,
                                   (int)t->name_len, t->name, ST_MAX_DIMS);
                if (json_peek(r) == JSON_T_NUMBER && r->cur < r->end && *r->cur == '-')
                    return kv_fail(err, KVGPT_ERR_ST_TENSOR, "%s: tensor \"%.*s\": negative dimension", path,
                                   (int)t->name_len, t->name);
                if (!json_int64(r, 0, (int64_t)1 << 40, &d))
                    return kv_fail(err, KVGPT_ERR_ST_TENSOR, "%s: tensor \"%.*s\": bad dimension (%s)", path,
                                   (int)t->name_len, t->name, r->err);
                t->shape[t->ndim++] = d;
            }
            have_shape = 1;
        } else if (json_span_eq(key, "data_offsets")) {
            int64_t o[2];
            int k = 0;
            if (!json_array_begin(r)) goto json;
            while (json_array_next(r)) {
                if (k >= 2 || !json_int64(r, 0, INT64_MAX, &o[k]))
                    return kv_fail(err, KVGPT_ERR_ST_TENSOR, "%s: tensor \"%.*s\": data_offsets must be two "
                                   "non-negative integers", path, (int)t->name_len, t->name);
                k++;
            }
            if (k != 2)
                return kv_fail(err, KVGPT_ERR_ST_TENSOR, "%s: tensor \"%.*s\": data_offsets must be two integers",
                               path, (int)t->name_len, t->name);
            t->begin = (uint64_t)o[0];
            t->end = (uint64_t)o[1];
            have_off = 1;
        } else if (!json_skip(r)) {
            goto json;
        }
    }
    if (r->err) goto json;
    if (!have_dtype || !have_shape || !have_off)
        return kv_fail(err, KVGPT_ERR_ST_TENSOR, "%s: tensor \"%.*s\": missing %s", path, (int)t->name_len, t->name,
                       !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
    return KVGPT_OK;
json:
    return kv_fail(err, KVGPT_ERR_ST_HEADER, "%s: header is not valid JSON: %s at byte %zu", path,
                   r->err ? r->err : "bad entry", json_offset(r) + 8);
}

kvgpt_status st_parse(st_file *s, void *scratch, size_t scratch_bytes, kvgpt_error *err)
{
    const char *path = s->file.path;
    size_t n = (size_t)s->header_len;
    size_t cap = ((size_t)n / ST_MIN_ENTRY + 1);
    if (scratch_bytes < n + 8 + cap * sizeof(st_tensor))
        return kv_fail(err, KVGPT_ERR_NOMEM, "%s: header scratch too small", path);
    char *hdr = scratch;
    /* The table starts after the header, aligned for st_tensor. */
    uintptr_t tp = ((uintptr_t)(hdr + n) + 7) & ~(uintptr_t)7;
    st_tensor *tab = (st_tensor *)tp;
    kvgpt_status st = lf_read(&s->file, 8, hdr, n, err);
    if (st) return st;

    uint64_t data_len = s->file.size - s->data_start;
    json_reader r;
    json_init(&r, hdr, n);
    json_span key;
    size_t count = 0;
    if (!json_object_begin(&r)) goto json;
    while (json_object_next(&r, &key)) {
        if (json_span_eq(key, "__metadata__")) {
            if (!json_skip(&r)) goto json;
            continue;
        }
        if (count >= cap) goto json;   /* cannot happen for valid JSON: entries are >= ST_MIN_ENTRY bytes */
        st_tensor *t = &tab[count];
        memset(t, 0, sizeof *t);
        t->name = key.p;
        t->name_len = key.len;
        if ((st = parse_entry(&r, t, path, err))) return st;
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] != 0 && numel > UINT64_MAX / 4 / (uint64_t)t->shape[d])
                return kv_fail(err, KVGPT_ERR_ST_TENSOR, "%s: tensor \"%.*s\": shape overflows", path,
                               (int)t->name_len, t->name);
            numel *= (uint64_t)t->shape[d];
        }
        if (t->end < t->begin)
            return kv_fail(err, KVGPT_ERR_ST_TENSOR, "%s: tensor \"%.*s\": data_offsets reversed [%llu, %llu]", path,
                           (int)t->name_len, t->name, (unsigned long long)t->begin, (unsigned long long)t->end);
        if (t->end > data_len)
            return kv_fail(err, KVGPT_ERR_ST_TENSOR, "%s: tensor \"%.*s\": data_offsets end %llu is past the data "
                           "(%llu bytes)", path, (int)t->name_len, t->name, (unsigned long long)t->end,
                           (unsigned long long)data_len);
        if (t->end - t->begin != numel * st_dtype_size(t->dtype))
            return kv_fail(err, KVGPT_ERR_ST_TENSOR, "%s: tensor \"%.*s\": %llu data bytes, but its shape and dtype "
                           "need %llu", path, (int)t->name_len, t->name, (unsigned long long)(t->end - t->begin),
                           (unsigned long long)(numel * st_dtype_size(t->dtype)));
        count++;
    }
    if (!json_finish(&r)) goto json;

    kv_heapsort(tab, count, sizeof *tab, by_offset);
    for (size_t i = 1; i < count; i++)
        if (tab[i].begin < tab[i - 1].end && tab[i].begin != tab[i].end && tab[i - 1].begin != tab[i - 1].end)
            return kv_fail(err, KVGPT_ERR_ST_TENSOR, "%s: tensors \"%.*s\" and \"%.*s\" overlap", path,
                           (int)tab[i - 1].name_len, tab[i - 1].name, (int)tab[i].name_len, tab[i].name);
    kv_heapsort(tab, count, sizeof *tab, st_tensor_cmp_name);
    for (size_t i = 1; i < count; i++)
        if (st_tensor_cmp_name(&tab[i - 1], &tab[i]) == 0)
            return kv_fail(err, KVGPT_ERR_ST_TENSOR, "%s: tensor \"%.*s\" appears twice", path, (int)tab[i].name_len,
                           tab[i].name);
    s->tensors = tab;
    s->n_tensors = count;
    return KVGPT_OK;
json:
    return kv_fail(err, KVGPT_ERR_ST_HEADER, "%s: header is not a valid JSON object: %s at byte %zu", path,
                   r.err ? r.err : "too many entries", json_offset(&r) + 8);
}

static const st_tensor *find_exact(const st_file *s, const char *name, size_t len)
{
    size_t lo = 0, hi = s->n_tensors;
    st_tensor key = {.name = name, .name_len = len};
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = st_tensor_cmp_name(&s->tensors[mid], &key);
        if (c == 0) return &s->tensors[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const st_tensor *st_find(const st_file *s, const char *suffix)
{
    /* HF GPT2Model names have no prefix; GPT2LMHeadModel and nanoGPT add
     * "transformer."; torch.compile adds "_orig_mod.". */
    static const char *const prefixes[] = {"", "transformer.", "_orig_mod.transformer.", "_orig_mod."};
    char name[256];
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        int n = snprintf(name, sizeof name, "%s%s", prefixes[i], suffix);
        if (n < 0 || (size_t)n >= sizeof name) continue;
        const st_tensor *t = find_exact(s, name, (size_t)n);
        if (t) return t;
    }
    return NULL;
}



kvgpt_status st_read_rows(st_file *s, const st_tensor *t, size_t r0, size_t n, size_t row_len, float *dst,
                          void *raw, kvgpt_error *err)
{
    size_t es = st_dtype_size(t->dtype), count = n * row_len;
    uint64_t off = s->data_start + t->begin + (uint64_t)r0 * row_len * es;
    if (off + count * es > s->data_start + t->end)
        return kv_fail(err, KVGPT_ERR_ST_TENSOR, "%s: read past tensor \"%.*s\"", s->file.path, (int)t->name_len,
                       t->name);
    void *buf = t->dtype == ST_F32 ? (void *)dst : raw;
    kvgpt_status st = lf_read(&s->file, off, buf, count * es, err);
    if (!st && s->ck) st = ckpt_check_read(s, t, off, buf, count * es, err);
    if (st) return st;
    /* Little-endian files on a little-endian host (x86-64, arm64). */
    const uint16_t *h = raw;
    if (t->dtype == ST_F16)
        for (size_t i = 0; i < count; i++) dst[i] = kv_f16_to_f32(h[i]);
    else if (t->dtype == ST_BF16)
        for (size_t i = 0; i < count; i++) dst[i] = kv_bf16_to_f32(h[i]);
    return KVGPT_OK;
}
