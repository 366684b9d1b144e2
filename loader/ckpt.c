/* loader/ckpt.c — nanoGPT's ckpt.pt as an st_file tensor table (its
 * meta.pkl becomes a char vocabulary in tokenizer/charmeta.c). A torch checkpoint is a stored zip: <root>/data.pkl
 * (the pickled dict: model, optimizer, model_args, ...) and <root>/data/<key>
 * (one raw little-endian storage each). Each tensor of the state dict is a
 * contiguous range of one storage, so it is a byte range of the file. */
#include "loader/ckpt.h"
#include "common/status.h"
#include "common/sort.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* What the directory scan finds. */
typedef struct {
    zip_dir dir;
    zip_entry pkl;           /* <root>/data.pkl */
    size_t root_len;         /* the root is pkl.name[0, root_len) */
    uint64_t pkl_off;        /* its bytes in the file */
    int has_byteorder;
    zip_entry byteorder;     /* <root>/byteorder, torch >= 2.1 */
    char what[LOADER_PATH_MAX + ZIP_NAME_MAX + 4];   /* "path: root/data.pkl" for messages */
} ckpt_info;

/* One storage record <root>/data/<key>, found by its decimal key. */
typedef struct {
    uint64_t key, local_off, size, data_off;   /* data_off 0: not resolved yet */
    unsigned method, flags;
} ckpt_slot;

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* A record name root/suffix with a root of one path component. */
static size_t root_of(const zip_entry *e, const char *suffix)
{
    if (!ends_with(e->name, e->name_len, suffix)) return 0;
    size_t r = e->name_len - strlen(suffix);
    return r > 0 && !memchr(e->name, '/', r) ? r : 0;
}

static kvgpt_status find_records(lf_file *f, ckpt_info *ci, kvgpt_error *err)
{
    kvgpt_status s = zip_dir_read(f, &ci->dir, err);
    if (s) return s;
    zip_entry e;
    uint64_t pos = ci->dir.cd_off;
    int n_pkl = 0;
    ci->has_byteorder = 0;
    for (uint64_t i = 0; i < ci->dir.n_entries; i++) {
        if ((s = zip_next(f, &ci->dir, &pos, &e, err))) return s;
        size_t r;
        if ((r = root_of(&e, "/data.pkl"))) {
            ci->pkl = e;
            ci->root_len = r;
            n_pkl++;
        } else if (root_of(&e, "/byteorder")) {
            ci->byteorder = e;
            ci->has_byteorder = 1;
        }
    }
    if (pos != ci->dir.cd_off + ci->dir.cd_size)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: the central directory holds more than its %llu entries", f->path,
                       (unsigned long long)ci->dir.n_entries);
    if (n_pkl != 1)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: %s; a torch checkpoint has exactly one <root>/data.pkl", f->path,
                       n_pkl ? "several data.pkl records" : "no data.pkl record (not a torch zip checkpoint?)");
    snprintf(ci->what, sizeof ci->what, "%s: %s", f->path, ci->pkl.name);
    if (ci->pkl.size > CKPT_MAX_PICKLE)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: %llu bytes of pickle is absurd (limit %u)", ci->what,
                       (unsigned long long)ci->pkl.size, CKPT_MAX_PICKLE);
    if ((s = zip_data_off(f, &ci->dir, &ci->pkl, &ci->pkl_off, err))) return s;
    if (ci->has_byteorder && ci->byteorder.name_len == ci->root_len + strlen("/byteorder") &&
        memcmp(ci->byteorder.name, ci->pkl.name, ci->root_len) == 0) {
        uint64_t off;
        char b[8] = "";
        if ((s = zip_data_off(f, &ci->dir, &ci->byteorder, &off, err))) return s;
        if (ci->byteorder.size != 6 || (s = lf_read(f, off, b, 6, err)) || memcmp(b, "little", 6) != 0)
            return s ? s : kv_fail(err, KVGPT_ERR_CKPT, "%s: %s is not \"little\": big-endian storages are not "
                                   "supported", f->path, ci->byteorder.name);
    }
    return KVGPT_OK;
}

/* CRC-32 of data.pkl, read through a small buffer (no memory taken). */
static kvgpt_status check_crc_file(lf_file *f, const ckpt_info *ci, kvgpt_error *err)
{
    unsigned char buf[4096];
    uint32_t crc = 0;
    for (uint64_t at = 0; at < ci->pkl.size;) {
        size_t n = ci->pkl.size - at < sizeof buf ? (size_t)(ci->pkl.size - at) : sizeof buf;
        kvgpt_status s = lf_read(f, ci->pkl_off + at, buf, n, err);
        if (s) return s;
        crc = zip_crc32(crc, buf, n);
        at += n;
    }
    if (crc != ci->pkl.crc)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: CRC-32 %08x, the zip directory says %08x (damaged)", ci->what, crc,
                       ci->pkl.crc);
    return KVGPT_OK;
}

/* ---- model_args → kvgpt_config ------------------------------------------- */

static kvgpt_status config_from_args(const pk_arg *a, int n, const char *what, kvgpt_config *c, kvgpt_error *err)
{
    static const char *const ints[] = {"n_layer", "n_head", "n_embd", "block_size", "vocab_size"};
    int64_t v[5] = {0, 0, 0, 0, 0};
    int have[5] = {0, 0, 0, 0, 0}, bias = 1;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 5; k++) {
            if (strcmp(a[i].key, ints[k]) != 0) continue;
            if (a[i].type != PK_INT)
                return kv_fail(err, KVGPT_ERR_CONFIG, "%s: model_args[\"%s\"] is not an integer", what, ints[k]);
            v[k] = a[i].i;
            have[k] = 1;
        }
        if (strcmp(a[i].key, "bias") == 0) {
            if (a[i].type != PK_BOOL)
                return kv_fail(err, KVGPT_ERR_CONFIG, "%s: model_args[\"bias\"] is not True or False", what);
            bias = (int)a[i].i;
        }
    }
    for (int k = 0; k < 5; k++) {
        if (!have[k]) return kv_fail(err, KVGPT_ERR_CONFIG, "%s: model_args has no \"%s\"", what, ints[k]);
        if (v[k] < 0) v[k] = -1;   /* out of range either way: loader_check_config says so */
        if (v[k] > INT_MAX) v[k] = INT_MAX;
    }
    memset(c, 0, sizeof *c);
    c->n_layer = (int)v[0];
    c->n_head = (int)v[1];
    c->n_embd = (int)v[2];
    c->block_size = (int)v[3];
    c->vocab_size = (int)v[4];
    c->bias = bias;
    c->hf_layout = 0;             /* nn.Linear [out, in] */
    c->gelu = KVGPT_GELU_ERF;     /* nanoGPT's nn.GELU() is exact */
    c->ln_eps = 1e-5f;
    c->eot_token = -1;
    return loader_check_config(c, what, err);
}

/* ---- sizes -------------------------------------------------------------------- */

static size_t table_cap(uint64_t pkl)
{
    /* A state-dict entry is a key and a value: at least four bytes of pickle. */
    uint64_t t = pkl / 4 + 1;
    return t < CKPT_MAX_TENSORS ? (size_t)t : CKPT_MAX_TENSORS;
}

typedef struct { size_t pkl, table, slots, vm, total; } ckpt_layout;

static int layout(const ckpt_info *ci, ckpt_layout *l)
{
    size_t n = (size_t)ci->pkl.size, a;
    l->pkl = 0;   /* offsets from the first 64-byte boundary of the scratch */
    if (!kv_align(n, 64, &a)) return 0;
    l->table = a;
    if (!kv_align(l->table + table_cap(n) * sizeof(st_tensor), 64, &l->slots)) return 0;
    if (!kv_align(l->slots + (size_t)ci->dir.n_entries * sizeof(ckpt_slot), 64, &l->vm)) return 0;
    return kv_add(l->vm, pk_vm_bytes(n) + 64, &l->total);
}

kvgpt_status ckpt_open(st_file *s, const char *path, size_t *scratch_bytes, kvgpt_config *cfg, kvgpt_error *err)
{
    memset(s, 0, sizeof *s);
    ckpt_info ci;
    ckpt_layout l = {0, 0, 0, 0, 0};
    kvgpt_status st = lf_open(&s->file, path, err);
    if (st) return st;
    if ((st = find_records(&s->file, &ci, err)) || (st = check_crc_file(&s->file, &ci, err))) goto fail;
    if (cfg) {
        pk_arg args[PK_MAX_ARGS];
        int n = 0;
        if ((st = pk_scan_args(&s->file, ci.pkl_off, ci.pkl.size, ci.what, "model_args", args, &n, err)) ||
            (st = config_from_args(args, n, ci.what, cfg, err)))
            goto fail;
    }
    if (!layout(&ci, &l)) {
        st = kv_fail(err, KVGPT_ERR_NOMEM, "%s: scratch size overflows", path);
        goto fail;
    }
    *scratch_bytes = l.total;
    return KVGPT_OK;
fail:
    lf_close(&s->file);
    return st;
}

kvgpt_status ckpt_plan(const char *path, size_t *scratch_bytes, kvgpt_config *cfg, kvgpt_error *err)
{
    st_file s;
    kvgpt_status st = ckpt_open(&s, path, scratch_bytes, cfg, err);
    if (!st) st_close(&s);
    return st;
}

/* ---- the storage index -------------------------------------------------------- */

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

static int by_key(const void *a, const void *b)
{
    const ckpt_slot *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}

static kvgpt_status build_index(lf_file *f, const ckpt_info *ci, ckpt_slot *slots, size_t *n_slots,
                                kvgpt_error *err)
{
    zip_entry e;
    uint64_t pos = ci->dir.cd_off;
    size_t n = 0, prefix = ci->root_len + strlen("/data/");
    for (uint64_t i = 0; i < ci->dir.n_entries; i++) {
        kvgpt_status s = zip_next(f, &ci->dir, &pos, &e, err);
        if (s) return s;
        uint64_t key;
        if (e.name_len <= prefix || memcmp(e.name, ci->pkl.name, ci->root_len) != 0 ||
            memcmp(e.name + ci->root_len, "/data/", 6) != 0 || !parse_key(e.name + prefix, e.name_len - prefix, &key))
            continue;
        slots[n].key = key;
        slots[n].local_off = e.local_off;
        slots[n].size = e.size;
        slots[n].data_off = 0;
        slots[n].method = e.method;
        slots[n].flags = e.flags;
        n++;
    }
    kv_heapsort(slots, n, sizeof *slots, by_key);
    for (size_t i = 1; i < n; i++)
        if (slots[i].key == slots[i - 1].key)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: two records for storage %llu", f->path,
                           (unsigned long long)slots[i].key);
    *n_slots = n;
    return KVGPT_OK;
}

static ckpt_slot *find_slot(ckpt_slot *slots, size_t n, uint64_t key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (slots[mid].key == key) return &slots[mid];
        if (slots[mid].key < key) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

typedef struct {
    lf_file *f;
    const ckpt_info *ci;
    pk_vm *vm;
    ckpt_slot *slots;
    size_t n_slots;
} parse_ctx;

/* The record of a STORAGE value, its size checked against the pickle's numel. */
static kvgpt_status storage_slot(parse_ctx *p, uint32_t storage, ckpt_slot **out, kvgpt_error *err)
{
    const pk_vm *vm = p->vm;
    uint32_t pid = vm->val[storage].a, key = pk_item(vm, pid, 2);
    int64_t numel = vm->val[pk_item(vm, pid, 4)].u.i;
    size_t es = pk_storage_size((pk_global)vm->val[storage].sub);
    const char *ks = (const char *)vm->p + vm->val[key].a;
    size_t kn = vm->val[key].u.len;
    uint64_t k;
    ckpt_slot *sl = parse_key(ks, kn, &k) ? find_slot(p->slots, p->n_slots, k) : NULL;
    if (!sl)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: storage key \"%.*s\" has no record %.*s/data/%.*s", p->ci->what,
                       (int)(kn > 32 ? 32 : kn), ks, (int)p->ci->root_len, p->ci->pkl.name, (int)(kn > 32 ? 32 : kn),
                       ks);
    if ((uint64_t)numel > UINT64_MAX / 8 || sl->size != (uint64_t)numel * es)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: storage %llu is %lld x %zu bytes in the pickle but its record has "
                       "%llu", p->ci->what, (unsigned long long)k, (long long)numel, es,
                       (unsigned long long)sl->size);
    *out = sl;
    return KVGPT_OK;
}

static kvgpt_status resolve_slot(parse_ctx *p, ckpt_slot *sl, kvgpt_error *err)
{
    if (sl->data_off) return KVGPT_OK;
    zip_entry e;
    memset(&e, 0, sizeof e);
    int n = snprintf(e.name, sizeof e.name, "%.*s/data/%llu", (int)p->ci->root_len, p->ci->pkl.name,
                     (unsigned long long)sl->key);
    e.name_len = (size_t)n;
    e.size = sl->size;
    e.local_off = sl->local_off;
    e.method = sl->method;
    e.flags = sl->flags;
    return zip_data_off(p->f, &p->ci->dir, &e, &sl->data_off, err);
}

/* ---- the tensor table ---------------------------------------------------------- */

/* One state-dict entry → one table row: dtype, shape, contiguity, byte range. */
static kvgpt_status tensor_row(parse_ctx *p, uint32_t name, uint32_t tensor, st_tensor *t, kvgpt_error *err)
{
    const pk_vm *vm = p->vm;
    const char *what = p->ci->what;
    t->name = (const char *)vm->p + vm->val[name].a;
    t->name_len = vm->val[name].u.len;
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
    kvgpt_status s = storage_slot(p, storage, &sl, err);
    if (s || (s = resolve_slot(p, sl, err))) return s;
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

static kvgpt_status build_table(parse_ctx *p, st_tensor *tab, size_t cap, size_t *count, kvgpt_error *err)
{
    const pk_vm *vm = p->vm;
    const char *what = p->ci->what;
    uint32_t model = pk_dict_get(vm, vm->root, "model");
    if (vm->val[vm->root].type != PK_DICT || model == PK_NIL || vm->val[model].type != PK_DICT)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: not a nanoGPT checkpoint (no \"model\" state dict)", what);
    /* Every storage the pickle names must exist, whatever holds it. */
    for (uint32_t i = 0; i < vm->n_val; i++) {
        ckpt_slot *sl;
        kvgpt_status s;
        if (vm->val[i].type == PK_STORAGE && (s = storage_slot(p, i, &sl, err))) return s;
    }
    size_t n = 0;
    for (uint32_t c = vm->val[model].a; c != PK_NIL; c = vm->cell[vm->cell[c].next].next) {
        uint32_t k = vm->cell[c].v, v = vm->cell[vm->cell[c].next].v;
        if (vm->val[k].type != PK_STR)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: a state-dict key is not a string", what);
        const char *name = (const char *)vm->p + vm->val[k].a;
        size_t len = vm->val[k].u.len;
        if (vm->val[v].type != PK_TENSOR)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: state-dict entry \"%.*s\" is not a tensor", what,
                           (int)(len > 200 ? 200 : len), name);
        if (ends_with(name, len, ".attn.bias")) continue;   /* nanoGPT's causal mask buffer, not a weight */
        if (n >= cap)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: more than %zu tensors in the state dict", what, cap);
        memset(&tab[n], 0, sizeof tab[n]);
        kvgpt_status s = tensor_row(p, k, v, &tab[n], err);
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

kvgpt_status ckpt_parse(st_file *s, void *scratch, size_t scratch_bytes, kvgpt_error *err)
{
    ckpt_info ci;
    ckpt_layout l = {0, 0, 0, 0, 0};
    kvgpt_status st = find_records(&s->file, &ci, err);
    if (st) return st;
    if (!layout(&ci, &l) || l.total > scratch_bytes)
        return kv_fail(err, KVGPT_ERR_NOMEM, "%s: changed since it was planned (scratch: Requested %zu, available "
                       "%zu)", s->file.path, l.total, scratch_bytes);
    /* Offsets are from a 64-byte boundary; layout() keeps 64 bytes of slack for it. */
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    uint8_t *pkl = (uint8_t *)base + l.pkl;
    size_t n = (size_t)ci.pkl.size;
    if ((st = lf_read(&s->file, ci.pkl_off, pkl, n, err))) return st;
    if (zip_crc32(0, pkl, n) != ci.pkl.crc)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: CRC-32 mismatch (damaged or changed since it was planned)", ci.what);

    parse_ctx p = {&s->file, &ci, NULL, (ckpt_slot *)(void *)(base + l.slots), 0};
    if ((st = build_index(&s->file, &ci, p.slots, &p.n_slots, err))) return st;
    pk_vm vm;
    if ((st = pk_run(&vm, pkl, n, 1, ci.what, base + l.vm, pk_vm_bytes(n), err))) return st;
    p.vm = &vm;
    st_tensor *tab = (st_tensor *)(void *)(base + l.table);
    size_t count = 0;
    if ((st = build_table(&p, tab, table_cap(n), &count, err))) return st;
    s->header_len = 0;
    s->data_start = 0;
    s->tensors = tab;
    s->n_tensors = count;
    return KVGPT_OK;
}

