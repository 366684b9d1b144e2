/* loader/zip.c — the few parts of a zip archive a torch checkpoint needs:
 * the end records (zip64 too: torch writes them), the central directory read
 * in one pass through a caller-given buffer (a small one at plan time, a large
 * one in the load scratch), and where a stored entry's bytes begin, after its
 * local header has been checked against the directory. Every size and offset
 * is checked against the file before it is used; nothing is allocated. */
#include "loader/ckpt.h"
#include "common/status.h"

#include <string.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_Z64_LOCATOR 0x07064b50u
#define SIG_Z64_EOCD 0x06064b50u
#define SIG_DESCRIPTOR 0x08074b50u
#define EOCD_LEN 22
#define MAX_COMMENT 65535u
#define MAX_ENTRIES (1u << 22)
#define FLAG_ENCRYPTED 1u
#define FLAG_DESCRIPTOR 8u

static uint32_t le16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const unsigned char *p) { return le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const unsigned char *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* The last EOCD signature whose comment length reaches exactly the end of the
 * file, searched backwards through the buffer a window at a time. */
static kvgpt_status find_eocd(lf_file *f, unsigned char *buf, size_t cap, uint64_t *at, kvgpt_error *err)
{
    if (f->size < EOCD_LEN)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: not a zip archive (%llu bytes, no end record)", f->path,
                       (unsigned long long)f->size);
    uint64_t hi = f->size - EOCD_LEN, lo = hi > MAX_COMMENT ? hi - MAX_COMMENT : 0, end = hi + 4;
    for (;;) {
        uint64_t start = end - lo > cap ? end - cap : lo;
        kvgpt_status s = lf_read(f, start, buf, (size_t)(end - start), err);
        if (s) return s;
        for (uint64_t p = end - 4 + 1; p-- > start;) {
            unsigned char len[2];
            if (le32(buf + (p - start)) != SIG_EOCD) continue;
            if ((s = lf_read(f, p + 20, len, 2, err))) return s;
            if (p + EOCD_LEN + le16(len) == f->size) {
                *at = p;
                return KVGPT_OK;
            }
        }
        if (start == lo) break;
        end = start + 3;   /* a signature may straddle two windows */
    }
    return kv_fail(err, KVGPT_ERR_CKPT, "%s: not a zip archive (no end-of-central-directory record; truncated?)",
                   f->path);
}

/* The zip64 end record, when a locator sits right before the EOCD. */
static kvgpt_status read_zip64(lf_file *f, uint64_t eocd, zip_dir *d, int *found, uint64_t *dir_end,
                               kvgpt_error *err)
{
    unsigned char loc[20], rec[56];
    *found = 0;
    if (eocd < 20) return KVGPT_OK;
    kvgpt_status s = lf_read(f, eocd - 20, loc, 20, err);
    if (s || le32(loc) != SIG_Z64_LOCATOR) return s;
    uint64_t off = le64(loc + 8);
    if (le32(loc + 4) != 0 || le32(loc + 16) > 1)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: multi-disk zip64 archives are not supported", f->path);
    if (off > eocd - 20 || eocd - 20 - off < 56)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: zip64 end record offset %llu is outside the file's end", f->path,
                       (unsigned long long)off);
    if ((s = lf_read(f, off, rec, 56, err))) return s;
    if (le32(rec) != SIG_Z64_EOCD || le64(rec + 4) < 44)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: bad zip64 end record at byte %llu", f->path,
                       (unsigned long long)off);
    if (le32(rec + 16) != 0 || le32(rec + 20) != 0 || le64(rec + 24) != le64(rec + 32))
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: multi-disk zip64 archives are not supported", f->path);
    d->n_entries = le64(rec + 32);
    d->cd_size = le64(rec + 40);
    d->cd_off = le64(rec + 48);
    *dir_end = off;
    *found = 1;
    return KVGPT_OK;
}

kvgpt_status zip_dir_read(lf_file *f, zip_dir *d, void *buf, size_t cap, kvgpt_error *err)
{
    uint64_t eocd = 0;
    unsigned char rec[EOCD_LEN];
    kvgpt_status s = find_eocd(f, buf, cap, &eocd, err);
    if (s || (s = lf_read(f, eocd, rec, EOCD_LEN, err))) return s;
    uint32_t disk = le16(rec + 4), cd_disk = le16(rec + 6), n_disk = le16(rec + 8), n = le16(rec + 10);
    uint32_t size = le32(rec + 12), off = le32(rec + 16);
    int z64 = 0;
    uint64_t dir_end = eocd;
    if ((s = read_zip64(f, eocd, d, &z64, &dir_end, err))) return s;
    if (!z64) {
        if (n == 0xffff || size == 0xffffffffu || off == 0xffffffffu)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: the end record needs zip64 but there is no zip64 record",
                           f->path);
        if (disk != 0 || cd_disk != 0 || n_disk != n)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: multi-disk zip archives are not supported", f->path);
        d->n_entries = n;
        d->cd_size = size;
        d->cd_off = off;
    } else if ((n != 0xffff && n != d->n_entries) || (size != 0xffffffffu && size != d->cd_size) ||
               (off != 0xffffffffu && off != d->cd_off)) {
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: the zip and zip64 end records disagree", f->path);
    }
    if (d->cd_off > dir_end || d->cd_size > dir_end - d->cd_off)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: central directory [%llu, +%llu) is outside the file (%llu bytes; "
                       "truncated?)", f->path, (unsigned long long)d->cd_off, (unsigned long long)d->cd_size,
                       (unsigned long long)f->size);
    if (d->n_entries > MAX_ENTRIES || d->n_entries * 46 > d->cd_size)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: %llu entries cannot fit a %llu-byte central directory", f->path,
                       (unsigned long long)d->n_entries, (unsigned long long)d->cd_size);
    return KVGPT_OK;
}

/* ---- reading through a caller's buffer -------------------------------------- */

void zip_window_init(zip_window *w, lf_file *f, uint64_t end, void *buf, size_t cap)
{
    w->f = f;
    w->end = end;
    w->buf = buf;
    w->cap = cap;
    w->at = 0;
    w->len = 0;
}

/* Makes [off, off + n) (n <= cap, inside the window's end) visible in the
 * buffer, reading ahead as far as the buffer and the end allow. */
static kvgpt_status win_bytes(zip_window *w, uint64_t off, size_t n, const unsigned char **p, kvgpt_error *err)
{
    if (off < w->at || off + n > w->at + w->len) {
        uint64_t len = w->end - off < w->cap ? w->end - off : w->cap;
        kvgpt_status s = lf_read(w->f, off, w->buf, (size_t)len, err);
        if (s) return s;
        w->at = off;
        w->len = (size_t)len;
    }
    *p = w->buf + (off - w->at);
    return KVGPT_OK;
}

/* Walks the extra field at [x, x + len) record by record (id, length), which
 * must tile it exactly, and takes the zip64 values of the saturated fields
 * (size, compressed size, offset: those that are 0xffffffff, in order). 0 when
 * the records do not tile or the zip64 record lacks a value. */
static int walk_extra(zip_window *w, uint64_t x, uint32_t len, uint64_t *v[3], kvgpt_status *s, kvgpt_error *err)
{
    const unsigned char *p;
    uint64_t end = x + len;
    int need = 0;
    *s = KVGPT_OK;
    for (int i = 0; i < 3; i++) need += v[i] && *v[i] == 0xffffffffu;
    while (end - x >= 4) {
        if ((*s = win_bytes(w, x, 4, &p, err))) return 0;
        uint32_t id = le16(p), n = le16(p + 2);
        if (n > end - x - 4) return 0;
        if (id == 1 && need) {
            if (n < 8u * (uint32_t)need || (*s = win_bytes(w, x + 4, 8u * (size_t)need, &p, err))) return 0;
            for (int i = 0; i < 3; i++)
                if (v[i] && *v[i] == 0xffffffffu) {
                    *v[i] = le64(p);
                    p += 8;
                }
            need = 0;
        }
        x += 4 + n;
    }
    return x == end && need == 0;
}

/* ---- the central directory, one pass ---------------------------------------- */

void zip_cursor_init(zip_cursor *c, lf_file *f, const zip_dir *d, void *buf, size_t cap)
{
    zip_window_init(&c->w, f, d->cd_off + d->cd_size, buf, cap);
    c->d = d;
    c->pos = d->cd_off;
}

kvgpt_status zip_next(zip_cursor *c, zip_entry *e, kvgpt_error *err)
{
    lf_file *f = c->w.f;
    uint64_t end = c->w.end, at = c->pos;
    const unsigned char *h;
    if (at > end || end - at < 46)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: central directory ends inside an entry at byte %llu", f->path,
                       (unsigned long long)at);
    kvgpt_status s = win_bytes(&c->w, at, 46, &h, err);
    if (s) return s;
    if (le32(h) != SIG_CENTRAL)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: no central directory entry at byte %llu", f->path,
                       (unsigned long long)at);
    uint32_t nl = le16(h + 28), xl = le16(h + 30), cl = le16(h + 32);
    if (nl == 0 || nl > ZIP_NAME_MAX)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry at byte %llu has a name of %u bytes (1..%d)", f->path,
                       (unsigned long long)at, nl, ZIP_NAME_MAX);
    if ((uint64_t)46 + nl + xl + cl > end - at)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry at byte %llu runs past the central directory", f->path,
                       (unsigned long long)at);
    e->flags = le16(h + 8);
    e->method = le16(h + 10);
    e->crc = le32(h + 16);
    uint64_t csize = le32(h + 20), usize = le32(h + 24), off = le32(h + 42);
    int other_disk = le16(h + 34) == 0xffff;
    uint64_t *v[3] = {&usize, &csize, &off};
    int ok = walk_extra(&c->w, at + 46 + nl, xl, v, &s, err);
    if (s) return s;
    /* The name last: walking the extra field may have moved the window. */
    if ((s = win_bytes(&c->w, at, 46 + (size_t)nl, &h, err))) return s;
    e->name = (const char *)h + 46;
    e->name_len = nl;
    if (memchr(e->name, 0, nl))
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry at byte %llu has a NUL in its name", f->path,
                       (unsigned long long)at);
    if (other_disk)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry \"%.*s\" is on another disk", f->path, (int)nl, e->name);
    if (!ok || (e->method == 0 && csize != usize))
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry \"%.*s\": %s", f->path, (int)nl, e->name,
                       ok ? "a stored entry with two different sizes" : "zip64 sizes missing or inconsistent");
    e->size = usize;
    e->local_off = off;
    c->pos = at + 46 + nl + xl + cl;
    return KVGPT_OK;
}

/* ---- a stored entry's bytes: its local header must agree with the directory -- */

static kvgpt_status local_fail(lf_file *f, const zip_entry *e, const char *why, kvgpt_error *err)
{
    return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry \"%.*s\": %s at byte %llu (damaged?)", f->path,
                   (int)e->name_len, e->name, why, (unsigned long long)e->local_off);
}

/* After the data when flag bit 3 is set: [signature] crc, sizes of 4 or 8 bytes. */
static int descriptor_matches(const unsigned char *p, size_t n, const zip_entry *e)
{
    for (int sig = 1; sig >= 0; sig--) {
        const unsigned char *q = p + 4 * sig;
        if (sig && (n < 4 || le32(p) != SIG_DESCRIPTOR)) continue;
        if (n < (size_t)(4 * sig + 12) || le32(q) != e->crc) continue;
        if (le32(q + 4) == e->size && le32(q + 8) == e->size && e->size < 0xffffffffu) return 1;
        if (n >= (size_t)(4 * sig + 20) && le64(q + 4) == e->size && le64(q + 12) == e->size) return 1;
    }
    return 0;
}

kvgpt_status zip_data_off(lf_file *f, const zip_dir *d, const zip_entry *e, void *buf, size_t cap, uint64_t *off,
                          kvgpt_error *err)
{
    unsigned char h[30], dd[24];
    const unsigned char *p;
    if (e->method != 0 || (e->flags & FLAG_ENCRYPTED))
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry \"%.*s\" is %s (method %u); torch writes stored entries",
                       f->path, (int)e->name_len, e->name, (e->flags & FLAG_ENCRYPTED) ? "encrypted" : "compressed",
                       e->method);
    if (e->local_off > d->cd_off || d->cd_off - e->local_off < 30)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry \"%.*s\": local header offset %llu is outside the data",
                       f->path, (int)e->name_len, e->name, (unsigned long long)e->local_off);
    kvgpt_status s = lf_read(f, e->local_off, h, 30, err);
    if (s) return s;
    uint32_t nl = le16(h + 26), xl = le16(h + 28), flags = le16(h + 6);
    if (le32(h) != SIG_LOCAL) return local_fail(f, e, "no local header", err);
    if (le16(h + 8) != e->method || flags != e->flags)
        return local_fail(f, e, "the local header's method or flags differ from the directory's", err);
    if (nl != e->name_len || e->local_off + 30 + nl + xl > d->cd_off)
        return local_fail(f, e, "the local header's name or extra field does not fit", err);
    zip_window w;
    zip_window_init(&w, f, e->local_off + 30 + nl + xl, buf, cap);
    for (uint32_t k = 0; k < nl; k += (uint32_t)cap) {
        size_t n = nl - k < cap ? nl - k : cap;
        if ((s = win_bytes(&w, e->local_off + 30 + k, n, &p, err))) return s;
        if (memcmp(p, e->name + k, n) != 0) return local_fail(f, e, "the local header names another file", err);
    }
    /* The extra-field length is what locates the data: it must hold whole
     * records, and a zip64 record there must repeat the directory's sizes. */
    uint64_t lcrc = le32(h + 14), csize = le32(h + 18), usize = le32(h + 22);
    uint64_t *v[3] = {&usize, &csize, NULL};
    int ok = walk_extra(&w, e->local_off + 30 + nl, xl, v, &s, err);
    if (s) return s;
    if (!ok) return local_fail(f, e, "the local header's extra field is not a sequence of records", err);
    int known = lcrc == e->crc && csize == e->size && usize == e->size;
    int blank = lcrc == 0 && csize == 0 && usize == 0;
    if (!known && !((flags & FLAG_DESCRIPTOR) && blank))
        return local_fail(f, e, "the local header's CRC-32 or sizes differ from the directory's", err);
    uint64_t data = e->local_off + 30 + nl + xl;
    if (data > d->cd_off || e->size > d->cd_off - data)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry \"%.*s\": %llu bytes at %llu run past the data (truncated?)",
                       f->path, (int)e->name_len, e->name, (unsigned long long)e->size, (unsigned long long)data);
    if (flags & FLAG_DESCRIPTOR) {
        uint64_t room = d->cd_off - data - e->size;
        size_t n = room < sizeof dd ? (size_t)room : sizeof dd;
        if ((s = lf_read(f, data + e->size, dd, n, err))) return s;
        if (!descriptor_matches(dd, n, e))
            return local_fail(f, e, "the data descriptor after the bytes differs from the directory", err);
    }
    *off = data;
    return KVGPT_OK;
}

/* ---- CRC-32 (zip's, reflected 0xEDB88320) ------------------------------------- */

uint32_t zip_crc32(uint32_t crc, const void *p, size_t n)
{
    /* Half-byte table: for the small things (data.pkl is a few KiB). */
    static const uint32_t t[16] = {
        0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu, 0x76dc4190u, 0x6b6b51f4u, 0x4db26158u, 0x5005713cu,
        0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu, 0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu};
    const unsigned char *b = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= b[i];
        crc = (crc >> 4) ^ t[crc & 15];
        crc = (crc >> 4) ^ t[crc & 15];
    }
    return ~crc;
}

void zip_crc_table(uint32_t t[8][256])
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
        t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int k = 1; k < 8; k++) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 255];
}

uint32_t zip_crc32_fast(const uint32_t t[8][256], uint32_t crc, const void *p, size_t n)
{
    /* Slicing by 8: the storages are most of the file, and they stream through here. */
    const unsigned char *b = p;
    crc = ~crc;
    for (; n >= 8; n -= 8, b += 8) {
        uint32_t lo = crc ^ le32(b), hi = le32(b + 4);
        crc = t[7][lo & 255] ^ t[6][(lo >> 8) & 255] ^ t[5][(lo >> 16) & 255] ^ t[4][lo >> 24] ^ t[3][hi & 255] ^
              t[2][(hi >> 8) & 255] ^ t[1][(hi >> 16) & 255] ^ t[0][hi >> 24];
    }
    while (n--) crc = (crc >> 8) ^ t[0][(crc ^ *b++) & 255];
    return ~crc;
}
