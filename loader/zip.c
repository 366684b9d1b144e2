/* loader/zip.c — the few parts of a zip archive a torch checkpoint needs:
 * the end records (zip64 too: torch writes them), the central directory one
 * entry at a time, and where a stored entry's bytes begin. Every size and
 * offset is checked against the file before it is used; nothing is allocated. */
#include "loader/ckpt.h"
#include "common/status.h"

#include <string.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_Z64_LOCATOR 0x07064b50u
#define SIG_Z64_EOCD 0x06064b50u
#define EOCD_LEN 22
#define MAX_COMMENT 65535u
#define MAX_ENTRIES (1u << 22)

static uint32_t le16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const unsigned char *p) { return le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const unsigned char *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* The last EOCD signature whose comment length reaches exactly the end of the file. */
static kvgpt_status find_eocd(lf_file *f, uint64_t *at, kvgpt_error *err)
{
    if (f->size < EOCD_LEN)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: not a zip archive (%llu bytes, no end record)", f->path,
                       (unsigned long long)f->size);
    uint64_t hi = f->size - EOCD_LEN, lo = hi > MAX_COMMENT ? hi - MAX_COMMENT : 0;
    unsigned char buf[1024];
    uint64_t end = hi + 4;
    for (;;) {
        uint64_t start = end - lo > sizeof buf ? end - sizeof buf : lo;
        kvgpt_status s = lf_read(f, start, buf, (size_t)(end - start), err);
        if (s) return s;
        for (uint64_t p = end - 4 + 1; p-- > start;) {
            if (le32(buf + (p - start)) != SIG_EOCD) continue;
            unsigned char rec[EOCD_LEN];
            if ((s = lf_read(f, p, rec, EOCD_LEN, err))) return s;
            if (p + EOCD_LEN + le16(rec + 20) == f->size) {
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

kvgpt_status zip_dir_read(lf_file *f, zip_dir *d, kvgpt_error *err)
{
    uint64_t eocd;
    unsigned char rec[EOCD_LEN];
    kvgpt_status s = find_eocd(f, &eocd, err);
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

/* The zip64 extended-information field: the 64-bit values of the saturated ones, in order. */
static kvgpt_status read_extra64(lf_file *f, uint64_t at, uint32_t len, zip_entry *e, int need_u, int need_c,
                                 int need_off, kvgpt_error *err)
{
    uint64_t end = at + len;
    while (end - at >= 4) {
        unsigned char h[4], v[24];
        kvgpt_status s = lf_read(f, at, h, 4, err);
        if (s) return s;
        uint32_t id = le16(h), n = le16(h + 2);
        if (n > end - at - 4) break;
        if (id == 1) {
            uint32_t want = 8u * (uint32_t)(need_u + need_c + need_off);
            if (n < want) break;
            if ((s = lf_read(f, at + 4, v, want, err))) return s;
            const unsigned char *p = v;
            uint64_t usize = e->size, csize = e->size;
            if (need_u) { usize = le64(p); p += 8; }
            if (need_c) { csize = le64(p); p += 8; }
            if (need_off) e->local_off = le64(p);
            if (usize != csize && e->method == 0) break;
            e->size = usize;
            return KVGPT_OK;
        }
        at += 4 + n;
    }
    return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry \"%s\": zip64 sizes missing or inconsistent", f->path, e->name);
}

kvgpt_status zip_next(lf_file *f, const zip_dir *d, uint64_t *pos, zip_entry *e, kvgpt_error *err)
{
    uint64_t end = d->cd_off + d->cd_size;
    unsigned char h[46];
    if (*pos > end || end - *pos < 46)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: central directory ends inside an entry at byte %llu", f->path,
                       (unsigned long long)*pos);
    kvgpt_status s = lf_read(f, *pos, h, 46, err);
    if (s) return s;
    if (le32(h) != SIG_CENTRAL)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: no central directory entry at byte %llu", f->path,
                       (unsigned long long)*pos);
    uint32_t nl = le16(h + 28), xl = le16(h + 30), cl = le16(h + 32);
    if (nl == 0 || nl > ZIP_NAME_MAX)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry at byte %llu has a name of %u bytes (1..%d)", f->path,
                       (unsigned long long)*pos, nl, ZIP_NAME_MAX);
    if ((uint64_t)46 + nl + xl + cl > end - *pos)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry at byte %llu runs past the central directory", f->path,
                       (unsigned long long)*pos);
    if ((s = lf_read(f, *pos + 46, e->name, nl, err))) return s;
    e->name[nl] = 0;
    e->name_len = nl;
    if (memchr(e->name, 0, nl))
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry at byte %llu has a NUL in its name", f->path,
                       (unsigned long long)*pos);
    e->flags = le16(h + 8);
    e->method = le16(h + 10);
    e->crc = le32(h + 16);
    uint32_t csize = le32(h + 20), usize = le32(h + 24), disk = le16(h + 34);
    e->local_off = le32(h + 42);
    e->size = usize;
    int need_u = usize == 0xffffffffu, need_c = csize == 0xffffffffu, need_off = e->local_off == 0xffffffffu;
    if (disk == 0xffff)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry \"%s\" is on another disk", f->path, e->name);
    if (need_u || need_c || need_off) {
        if ((s = read_extra64(f, *pos + 46 + nl, xl, e, need_u, need_c, need_off, err))) return s;
    } else if (e->method == 0 && csize != usize) {
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: stored entry \"%s\" has sizes %u and %u", f->path, e->name, csize,
                       usize);
    }
    *pos += 46 + (uint64_t)nl + xl + cl;
    return KVGPT_OK;
}

kvgpt_status zip_data_off(lf_file *f, const zip_dir *d, const zip_entry *e, uint64_t *off, kvgpt_error *err)
{
    unsigned char h[30];
    char name[ZIP_NAME_MAX];
    if (e->method != 0 || (e->flags & 1))
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry \"%s\" is %s (method %u); torch writes stored entries",
                       f->path, e->name, (e->flags & 1) ? "encrypted" : "compressed", e->method);
    if (e->local_off > d->cd_off || d->cd_off - e->local_off < 30)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry \"%s\": local header offset %llu is outside the data",
                       f->path, e->name, (unsigned long long)e->local_off);
    kvgpt_status s = lf_read(f, e->local_off, h, 30, err);
    if (s) return s;
    uint32_t nl = le16(h + 26), xl = le16(h + 28);
    if (le32(h) != SIG_LOCAL || le16(h + 8) != e->method || nl != e->name_len)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry \"%s\": bad local header at byte %llu", f->path, e->name,
                       (unsigned long long)e->local_off);
    uint64_t data = e->local_off + 30 + nl + xl;
    if (data > d->cd_off || e->size > d->cd_off - data)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry \"%s\": %llu bytes at %llu run past the data (truncated?)",
                       f->path, e->name, (unsigned long long)e->size, (unsigned long long)data);
    if ((s = lf_read(f, e->local_off + 30, name, nl, err))) return s;
    if (memcmp(name, e->name, nl) != 0)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry \"%s\": the local header names another file", f->path,
                       e->name);
    *off = data;
    return KVGPT_OK;
}

uint32_t zip_crc32(uint32_t crc, const void *p, size_t n)
{
    /* Half-byte table: small, and data.pkl is a few KiB. */
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
