/* tests/support/loader_st.c — the safetensors builder of loader_st.h. */
#include "tests/support/loader_st.h"
#include "loader/loader.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dtype_name(st_dtype d)
{
    switch (d) {
    case ST_F32: return "F32";
    case ST_F16: return "F16";
    case ST_BF16: return "BF16";
    default: return "?";
    }
}

int ts_read(const char *path, ts_file *f)
{
    memset(f, 0, sizeof *f);
    st_file st;
    size_t scratch_bytes = 0;
    kvgpt_error err;
    if (st_open(&st, path, &scratch_bytes, &err) != KVGPT_OK) return -1;
    void *scratch = malloc(scratch_bytes);
    int rc = -1;
    if (!scratch || st_parse(&st, scratch, scratch_bytes, &err) != KVGPT_OK) goto done;
    f->e = calloc(st.n_tensors ? st.n_tensors : 1, sizeof *f->e);
    if (!f->e) goto done;
    for (size_t i = 0; i < st.n_tensors; i++) {
        const st_tensor *t = &st.tensors[i];
        ts_entry *e = &f->e[f->n];
        if (t->name_len >= sizeof e->name) goto done;
        memcpy(e->name, t->name, t->name_len);
        snprintf(e->dtype, sizeof e->dtype, "%s", dtype_name(t->dtype));
        e->ndim = t->ndim;
        memcpy(e->shape, t->shape, sizeof e->shape);
        e->begin = t->begin;
        e->end = t->end;
        e->nbytes = (size_t)(t->end - t->begin);
        e->data = malloc(e->nbytes ? e->nbytes : 1);
        if (!e->data) goto done;
        f->n++;
        if (e->nbytes && lf_read(&st.file, st.data_start + t->begin, e->data, e->nbytes, &err) != KVGPT_OK) goto done;
    }
    rc = 0;
done:
    st_close(&st);
    free(scratch);
    if (rc) ts_free(f);
    return rc;
}

void ts_free(ts_file *f)
{
    for (int i = 0; i < f->n; i++) free(f->e[i].data);
    free(f->e);
    memset(f, 0, sizeof *f);
}

ts_entry *ts_find(ts_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->e[i].name, name) == 0) return &f->e[i];
    return NULL;
}

int ts_remove(ts_file *f, const char *name)
{
    ts_entry *e = ts_find(f, name);
    if (!e) return -1;
    free(e->data);
    int i = (int)(e - f->e);
    memmove(&f->e[i], &f->e[i + 1], (size_t)(f->n - i - 1) * sizeof *e);
    f->n--;
    return 0;
}

void ts_pack(ts_file *f)
{
    uint64_t at = 0;
    for (int i = 0; i < f->n; i++) {
        f->e[i].begin = at;
        at += f->e[i].nbytes;
        f->e[i].end = at;
    }
}

uint64_t ts_data_len(const ts_file *f)
{
    uint64_t n = 0;
    for (int i = 0; i < f->n; i++) n += f->e[i].nbytes;
    return n;
}

void ts_prefix(ts_file *f, const char *prefix)
{
    for (int i = 0; i < f->n; i++) {
        char tmp[sizeof f->e[i].name];
        snprintf(tmp, sizeof tmp, "%s%s", prefix, f->e[i].name);
        memcpy(f->e[i].name, tmp, sizeof tmp);
    }
}

uint16_t ts_f32_to_f16(float v)
{
    uint32_t x;
    memcpy(&x, &v, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);   /* >= 65520 rounds to infinity */
    if (ax < 0x38800000u) {                                     /* below 2^-14: a subnormal half */
        float a;
        memcpy(&a, &ax, 4);
        return (uint16_t)(sign | (uint16_t)lrintf(a * 16777216.0f));   /* units of 2^-24, ties to even */
    }
    uint32_t h = ((((ax >> 23) - 127u + 15u)) << 10) | ((ax & 0x7fffffu) >> 13);
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;     /* a carry into the exponent is right */
    return (uint16_t)(sign | h);
}

uint16_t ts_f32_to_bf16(float v)
{
    uint32_t x;
    memcpy(&x, &v, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

int ts_to_half(ts_file *f, const char *dtype)
{
    int bf = strcmp(dtype, "BF16") == 0;
    if (!bf && strcmp(dtype, "F16") != 0) return -1;
    for (int i = 0; i < f->n; i++) {
        ts_entry *e = &f->e[i];
        if (strcmp(e->dtype, "F32") != 0) continue;
        size_t n = e->nbytes / 4;
        uint16_t *h = malloc(n ? n * 2 : 1);
        if (!h) return -1;
        for (size_t k = 0; k < n; k++) {
            float v;
            memcpy(&v, e->data + 4 * k, 4);
            h[k] = bf ? ts_f32_to_bf16(v) : ts_f32_to_f16(v);
        }
        free(e->data);
        e->data = (unsigned char *)h;
        e->nbytes = n * 2;
        snprintf(e->dtype, sizeof e->dtype, "%s", dtype);
    }
    ts_pack(f);
    return 0;
}

/* Appends printf output to a growing buffer; -1 when out of memory. */
static int put(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static int put(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return -1;
        if (*buf && *len + (size_t)n < *cap) {
            *len += (size_t)n;
            return 0;
        }
        size_t ncap = (*cap ? *cap * 2 : 4096) + (size_t)n;
        char *nb = realloc(*buf, ncap);
        if (!nb) return -1;
        *buf = nb;
        *cap = ncap;
    }
}

static int write_file(const char *dir, const char *name, uint64_t len_field, const char *hdr, size_t hdr_len,
                      const ts_file *f, size_t n_zero)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *out = fopen(p, "wb");
    if (!out) return -1;
    unsigned char lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (unsigned char)(len_field >> (8 * i));
    int bad = fwrite(lb, 1, 8, out) != 8 || fwrite(hdr, 1, hdr_len, out) != hdr_len;
    for (int i = 0; f && !bad && i < f->n; i++) bad = fwrite(f->e[i].data, 1, f->e[i].nbytes, out) != f->e[i].nbytes;
    for (size_t i = 0; !bad && i < n_zero; i++) bad = fputc(0, out) == EOF;
    return (fclose(out) != 0 || bad) ? -1 : 0;
}

int ts_write(const ts_file *f, const char *dir, const char *name)
{
    char *h = NULL;
    size_t len = 0, cap = 0;
    int bad = put(&h, &len, &cap, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; !bad && i < f->n; i++) {
        const ts_entry *e = &f->e[i];
        bad = put(&h, &len, &cap, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", e->name, e->dtype);
        for (int d = 0; !bad && d < e->ndim; d++) bad = put(&h, &len, &cap, "%s%lld", d ? "," : "", (long long)e->shape[d]);
        if (!bad)
            bad = put(&h, &len, &cap, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)e->begin,
                      (unsigned long long)e->end);
    }
    if (!bad) bad = put(&h, &len, &cap, "}");
    while (!bad && len % 8) bad = put(&h, &len, &cap, " ");
    if (!bad) bad = write_file(dir, name, len, h, len, f, 0);
    free(h);
    return bad ? -1 : 0;
}

int ts_write_raw(const char *dir, const char *name, uint64_t header_len_field, const char *header, size_t header_len,
                 size_t n_data)
{
    return write_file(dir, name, header_len_field, header, header_len, NULL, n_data);
}
