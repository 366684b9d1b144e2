/* loader/ckpt_table.c — ckpt.pt's storages and tensors: the index of the
 * <root>/data/<key> records, the "model" state dict as a tensor table, and
 * each storage's CRC-32, checked as its bytes stream through st_read_rows
 * (no second pass over the weights). */
#include "loader/ckpt_int.h"
#include "common/status.h"
#include "common/sort.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* A canonical decimal key ("0", "17"; no sign, no leading zero). */
static int parse_key(const char *p, size_t n, uint64_t *out)
{
    if (n == 0 || n > 18 || (n > 1 && p[0] == '0')) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return 1;
}

int ckpt_storage_key(const ckpt_info *ci, const char *name, size_t len, uint64_t *key)
{
    size_t prefix = ci->root_len + strlen("/data/");
    return len > prefix && memcmp(name, ci->root, ci->root_len) == 0 &&
           memcmp(name + ci->root_len, "/data/", 6) == 0 && parse_key(name + prefix, len - prefix, key);
}

static int by_key(const void *a, const void *b)
{
    const ckpt_slot *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}

kvgpt_status ckpt_index(lf_file *f, struct ckpt_reads *r, ckpt_slot *slots, size_t cap, kvgpt_error *err)
{
    zip_cursor cur;
    zip_entry e;
    size_t n = 0;
    zip_cursor_init(&cur, f, &r->ci.dir, r->buf, sizeof r->buf);
    for (uint64_t i = 0; i < r->ci.dir.n_entries; i++) {
        kvgpt_status s = zip_next(&cur, &e, err);
        if (s) return s;
        uint64_t key;
        if (!ckpt_storage_key(&r->ci, e.name, e.name_len, &key)) continue;
        if (n >= cap)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: more storage records than when it was planned", f->path);
        memset(&slots[n], 0, sizeof slots[n]);
        slots[n].key = key;
        slots[n].local_off = e.local_off;
        slots[n].size = e.size;
        slots[n].crc = e.crc;
        slots[n].method = e.method;
        slots[n].flags = e.flags;
        n++;
    }
    kv_heapsort(slots, n, sizeof *slots, by_key);
    for (size_t i = 1; i < n; i++)
        if (slots[i].key == slots[i - 1].key)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: two records for storage %llu", f->path,
                           (unsigned long long)slots[i].key);
    r->slots = slots;
    r->n_slots = n;
    return KVGPT_OK;
}

static ckpt_slot *find_slot(const struct ckpt_reads *r, uint64_t key)
{
    size_t lo = 0, hi = r->n_slots;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->slots[mid].key == key) return &r->slots[mid];
        if (r->slots[mid].key < key) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* The record of a STORAGE value, its size checked against the pickle's numel. */
static kvgpt_status storage_slot(struct ckpt_reads *r, const pk_vm *vm, uint32_t storage, ckpt_slot **out,
                                 kvgpt_error *err)
{
    const ckpt_info *ci = &r->ci;
    uint32_t pid = vm->val[storage].a;
    int64_t numel = vm->val[pk_item(vm, pid, 4)].u.i;
    size_t es = pk_storage_size((pk_global)vm->val[storage].sub), kn = 0;
    const char *ks = pk_str(vm, pk_item(vm, pid, 2), &kn);
    uint64_t k;
    ckpt_slot *sl = ks && parse_key(ks, kn, &k) ? find_slot(r, k) : NULL;
    if (!sl)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: storage key \"%.*s\" has no record %.*s/data/%.*s", ci->what,
                       (int)(kn > 32 ? 32 : kn), ks ? ks : "", (int)ci->root_len, ci->root,
                       (int)(kn > 32 ? 32 : kn), ks ? ks : "");
    if ((uint64_t)numel > UINT64_MAX / 8 || sl->size != (uint64_t)numel * es)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: storage %llu is %lld x %zu bytes in the pickle but its record has "
                       "%llu", ci->what, (unsigned long long)k, (long long)numel, es, (unsigned long long)sl->size);
    *out = sl;
    return KVGPT_OK;
}

static void slot_name(const struct ckpt_reads *r, const ckpt_slot *sl, char *out, size_t cap)
{
    snprintf(out, cap, "%.*s/data/%llu", (int)r->ci.root_len, r->ci.root, (unsigned long long)sl->key);
}

static kvgpt_status resolve_slot(lf_file *f, struct ckpt_reads *r, ckpt_slot *sl, kvgpt_error *err)
{
    if (sl->data_off) return KVGPT_OK;
    zip_entry e;
    slot_name(r, sl, r->ci.name, sizeof r->ci.name);
    e.name = r->ci.name;
    e.name_len = strlen(r->ci.name);
    e.size = sl->size;
    e.local_off = sl->local_off;
    e.crc = sl->crc;
    e.method = sl->method;
    e.flags = sl->flags;
    kvgpt_status s = zip_data_off(f, &r->ci.dir, &e, r->buf, sizeof r->buf, &sl->data_off, err);
    sl->crc_pos = sl->data_off;
    return s;
}

/* ---- the tensor table ---------------------------------------------------------- */

/* One state-dict entry → one table row: dtype, shape, contiguity, byte range. */
static kvgpt_status tensor_row(lf_file *f, struct ckpt_reads *r, const pk_vm *vm, uint32_t name, uint32_t tensor,
                               st_tensor *t, kvgpt_error *err)
{
    const char *what = r->ci.what;
    t->name = pk_str(vm, name, &t->name_len);
    int nl = (int)(t->name_len > 200 ? 200 : t->name_len);
    uint32_t args = vm->val[tensor].a, storage = pk_item(vm, args, 0);
    uint32_t sizes = pk_item(vm, args, 2), strides = pk_item(vm, args, 3);
    pk_global kind = (pk_global)vm->val[storage].sub;
    size_t es = pk_storage_size(kind);
    t->dtype = kind == PK_G_FLOAT ? ST_F32 : kind == PK_G_HALF ? ST_F16 : kind == PK_G_BFLOAT16 ? ST_BF16 : ST_OTHER;
    if (t->dtype == ST_OTHER)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: tensor \"%.*s\" is a torch.%s; weights must be float32, float16 "
                       "or bfloat16", what, nl, t->name, pk_global_name(kind));
    ckpt_slot *sl;
    kvgpt_status s = storage_slot(r, vm, storage, &sl, err);
    if (s || (s = resolve_slot(f, r, sl, err))) return s;
    t->storage = (uint32_t)(sl - r->slots);
    t->ndim = (int)vm->val[sizes].u.c.n;
    uint64_t numel = 1, expect = 1;
    for (int d = 0; d < t->ndim; d++) {
        int64_t n = vm->val[pk_item(vm, sizes, (uint32_t)d)].u.i;
        if (n < 0 || n > (int64_t)1 << 40 || (n && numel > (UINT64_MAX / 8) / (uint64_t)n))
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: tensor \"%.*s\": dimension %d is %lld", what, nl, t->name, d,
                           (long long)n);
        t->shape[d] = n;
        numel *= (uint64_t)n;
    }
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t st = vm->val[pk_item(vm, strides, (uint32_t)d)].u.i;
        if (t->shape[d] > 1 && (st < 0 || (uint64_t)st != expect))
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: tensor \"%.*s\" is not contiguous row-major (dimension %d has "
                           "stride %lld, not %llu)", what, nl, t->name, d, (long long)st, (unsigned long long)expect);
        expect *= (uint64_t)t->shape[d];
    }
    int64_t off = vm->val[pk_item(vm, args, 1)].u.i;
    uint64_t storage_numel = sl->size / es;
    if (off < 0 || (uint64_t)off > storage_numel || numel > storage_numel - (uint64_t)off)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: tensor \"%.*s\": elements [%lld, +%llu) exceed its storage %llu of "
                       "%llu elements", what, nl, t->name, (long long)off, (unsigned long long)numel,
                       (unsigned long long)sl->key, (unsigned long long)storage_numel);
    t->begin = sl->data_off + (uint64_t)off * es;
    t->end = t->begin + numel * es;
    return KVGPT_OK;
}

kvgpt_status ckpt_table(lf_file *f, struct ckpt_reads *r, const pk_vm *vm, st_tensor *tab, size_t cap,
                        size_t *count, kvgpt_error *err)
{
    const char *what = r->ci.what;
    uint32_t model = pk_dict_get(vm, vm->root, "model");
    if (vm->val[vm->root].type != PK_DICT || model == PK_NIL || vm->val[model].type != PK_DICT)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: not a nanoGPT checkpoint (no \"model\" state dict)", what);
    /* Every storage the pickle names must exist, whatever holds it. */
    for (uint32_t i = 0; i < vm->n_val; i++) {
        ckpt_slot *sl;
        kvgpt_status s;
        if (vm->val[i].type == PK_STORAGE && (s = storage_slot(r, vm, i, &sl, err))) return s;
    }
    size_t n = 0;
    for (uint32_t c = vm->val[model].a; c != PK_NIL; c = vm->cell[vm->cell[c].next].next) {
        uint32_t k = vm->cell[c].v, v = vm->cell[vm->cell[c].next].v;
        size_t len = 0;
        const char *name = pk_str(vm, k, &len);
        if (vm->val[k].type != PK_STR)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: a state-dict key is not a string", what);
        if (!name)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: a state-dict key of %u bytes (tensor names are at most %d)",
                           what, vm->val[k].u.len, PK_STR_KEEP);
        if (vm->val[v].type != PK_TENSOR)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: state-dict entry \"%.*s\" is not a tensor", what,
                           (int)(len > 200 ? 200 : len), name);
        if (ends_with(name, len, ".attn.bias")) continue;   /* nanoGPT's causal mask buffer, not a weight */
        if (n >= cap)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: more than %zu tensors in the state dict", what, cap);
        memset(&tab[n], 0, sizeof tab[n]);
        kvgpt_status s = tensor_row(f, r, vm, k, v, &tab[n], err);
        if (s) return s;
        n++;
    }
    kv_heapsort(tab, n, sizeof *tab, st_tensor_cmp_name);
    for (size_t i = 1; i < n; i++)
        if (st_tensor_cmp_name(&tab[i - 1], &tab[i]) == 0)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: tensor \"%.*s\" appears twice", what,
                           (int)(tab[i].name_len > 200 ? 200 : tab[i].name_len), tab[i].name);
    *count = n;
    return KVGPT_OK;
}

/* ---- storage CRC-32s, as the bytes are read --------------------------------------- */

static kvgpt_status crc_verdict(lf_file *f, struct ckpt_reads *r, ckpt_slot *sl, kvgpt_error *err)
{
    sl->checked = 1;
    if (sl->crc_run == sl->crc) return KVGPT_OK;
    slot_name(r, sl, r->ci.name, sizeof r->ci.name);
    return kv_fail(err, KVGPT_ERR_CKPT, "%s: entry \"%s\": CRC-32 %08x, the zip directory says %08x (damaged)",
                   f->path, r->ci.name, sl->crc_run, sl->crc);
}

/* Extends a storage's running CRC-32 over the file's bytes up to `to`, read
 * through the buffer: bytes the caller skipped, each read once. */
static kvgpt_status crc_through(lf_file *f, struct ckpt_reads *r, ckpt_slot *sl, uint64_t to, kvgpt_error *err)
{
    while (sl->crc_pos < to) {
        size_t n = to - sl->crc_pos < ZIP_BUF_BYTES ? (size_t)(to - sl->crc_pos) : ZIP_BUF_BYTES;
        kvgpt_status s = lf_read(f, sl->crc_pos, r->buf, n, err);
        if (s) return s;
        sl->crc_run = zip_crc32_fast((const uint32_t(*)[256])r->crc, sl->crc_run, r->buf, n);
        sl->crc_pos += n;
    }
    return sl->crc_pos == sl->data_off + sl->size ? crc_verdict(f, r, sl, err) : KVGPT_OK;
}

kvgpt_status st_read_done(st_file *s, kvgpt_error *err)
{
    struct ckpt_reads *r = s->ck;
    if (!r || r->last == UINT32_MAX || r->slots[r->last].checked) return KVGPT_OK;
    ckpt_slot *sl = &r->slots[r->last];
    return crc_through(&s->file, r, sl, sl->data_off + sl->size, err);
}

kvgpt_status ckpt_check_read(st_file *s, const st_tensor *t, uint64_t off, const void *bytes, size_t n,
                             kvgpt_error *err)
{
    struct ckpt_reads *r = s->ck;
    kvgpt_status st;
    if (t->storage >= r->n_slots) return KVGPT_OK;
    /* The storage read before is done with: what it left unread is checked now. */
    if (r->last != UINT32_MAX && r->last != t->storage && !r->slots[r->last].checked) {
        ckpt_slot *prev = &r->slots[r->last];
        if ((st = crc_through(&s->file, r, prev, prev->data_off + prev->size, err))) return st;
    }
    r->last = t->storage;
    ckpt_slot *sl = &r->slots[t->storage];
    if (sl->checked) return KVGPT_OK;
    if (off > sl->crc_pos && (st = crc_through(&s->file, r, sl, off, err))) return st;
    if (sl->checked || off + n <= sl->crc_pos) return KVGPT_OK;
    uint64_t skip = sl->crc_pos - off;
    sl->crc_run = zip_crc32_fast((const uint32_t(*)[256])r->crc, sl->crc_run, (const char *)bytes + skip,
                                 (size_t)(n - skip));
    sl->crc_pos = off + n;
    if (sl->crc_pos == sl->data_off + sl->size) return crc_verdict(&s->file, r, sl, err);
    return KVGPT_OK;
}
