/* loader/ckpt.c — nanoGPT's ckpt.pt as an st_file tensor table (its
 * meta.pkl becomes a char vocabulary in tokenizer/charmeta.c). A torch
 * checkpoint is a stored zip: <root>/data.pkl (the pickled dict: model,
 * optimizer, model_args, ...) and <root>/data/<key> (one raw little-endian
 * storage each). Each tensor of the state dict is a contiguous range of one
 * storage, so it is a byte range of the file.
 *
 * ckpt_open reads the directory, checks data.pkl's CRC-32, and streams the
 * pickle once (pickle_scan.c) for model_args and for what the interpreter
 * will need; ckpt_parse then gets exactly that much scratch. Both are linear
 * in the file's directory and pickle. */
#include "loader/ckpt_int.h"
#include "common/status.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* What a checkpoint may hold, by its layer count: a state dict and its
 * optimizer state cost about a thousand objects a layer (a tensor is about
 * twenty), the rest (config, counters) a few hundred. A pickle that needs
 * more is not a nanoGPT checkpoint, and is refused before memory is planned. */
#define CKPT_OBJ_BASE ((uint64_t)1 << 16)
#define CKPT_OBJ_PER_LAYER ((uint64_t)1 << 12)
#define CKPT_POOL_PER_OBJ 64u   /* string bytes kept per object allowed */

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* A record name root/suffix with a root of one path component (at most
 * CKPT_ROOT_MAX bytes); its length, or 0. */
static size_t root_of(const zip_entry *e, const char *suffix)
{
    if (!ends_with(e->name, e->name_len, suffix)) return 0;
    size_t r = e->name_len - strlen(suffix);
    return r > 0 && r <= CKPT_ROOT_MAX && !memchr(e->name, '/', r) ? r : 0;
}

/* <one component>/data/<digits>: a storage record of some root. */
static int storage_like(const zip_entry *e)
{
    const char *slash = memchr(e->name, '/', e->name_len);
    size_t r = slash ? (size_t)(slash - e->name) : 0, rest = e->name_len - r;
    if (!slash || r == 0 || rest <= 6 || memcmp(slash, "/data/", 6) != 0) return 0;
    for (size_t i = r + 6; i < e->name_len; i++)
        if (e->name[i] < '0' || e->name[i] > '9') return 0;
    return 1;
}

/* "path: root/data.pkl", the path's end kept when it is very long. */
static void name_what(ckpt_info *ci, const char *path)
{
    size_t n = strlen(path), room = sizeof ci->what - strlen(ci->name) - 8;
    if (n <= room) snprintf(ci->what, sizeof ci->what, "%s: %s", path, ci->name);
    else snprintf(ci->what, sizeof ci->what, "...%s: %s", path + n - room, ci->name);
}

/* The directory's records: data.pkl (exactly one), byteorder, how many storages;
 * read through buf (cap >= ZIP_BUF_MIN bytes). */
static kvgpt_status find_records(lf_file *f, ckpt_info *ci, unsigned char *buf, size_t cap, kvgpt_error *err)
{
    kvgpt_status s = zip_dir_read(f, &ci->dir, buf, cap, err);
    if (s) return s;
    zip_cursor cur;
    zip_entry e, bo;
    char bo_root[CKPT_ROOT_MAX + 1];
    size_t bo_len = 0, r;
    int n_pkl = 0;
    ci->n_storages = 0;
    zip_cursor_init(&cur, f, &ci->dir, buf, cap);
    for (uint64_t i = 0; i < ci->dir.n_entries; i++) {
        if ((s = zip_next(&cur, &e, err))) return s;
        if ((r = root_of(&e, "/data.pkl"))) {
            ci->pkl = e;
            memcpy(ci->root, e.name, r);
            ci->root_len = r;
            n_pkl++;
        } else if ((r = root_of(&e, "/byteorder"))) {
            bo = e;
            memcpy(bo_root, e.name, r);
            bo_len = r;
        } else if (storage_like(&e)) {
            ci->n_storages++;
        }
    }
    if (cur.pos != ci->dir.cd_off + ci->dir.cd_size)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: the central directory holds more than its %llu entries", f->path,
                       (unsigned long long)ci->dir.n_entries);
    if (n_pkl != 1)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: %s; a torch checkpoint has exactly one <root>/data.pkl", f->path,
                       n_pkl ? "several data.pkl records" : "no data.pkl record (not a torch zip checkpoint?)");
    ci->root[ci->root_len] = 0;
    snprintf(ci->name, sizeof ci->name, "%s/data.pkl", ci->root);
    ci->pkl.name = ci->name;
    name_what(ci, f->path);
    if (ci->pkl.size > CKPT_MAX_PICKLE)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: %llu bytes of pickle is absurd (limit %u)", ci->what,
                       (unsigned long long)ci->pkl.size, CKPT_MAX_PICKLE);
    if ((s = zip_data_off(f, &ci->dir, &ci->pkl, buf, cap, &ci->pkl_off, err))) return s;
    if (bo_len == ci->root_len && memcmp(bo_root, ci->root, bo_len) == 0) {
        char name[CKPT_ROOT_MAX + 16], b[8] = "";
        uint64_t off;
        snprintf(name, sizeof name, "%s/byteorder", ci->root);
        bo.name = name;
        if ((s = zip_data_off(f, &ci->dir, &bo, buf, cap, &off, err))) return s;
        if (bo.size != 6 || (s = lf_read(f, off, b, 6, err)) || memcmp(b, "little", 6) != 0 ||
            zip_crc32(0, b, 6) != bo.crc)
            return s ? s : kv_fail(err, KVGPT_ERR_CKPT, "%s: %s is not \"little\": big-endian storages are not "
                                   "supported", f->path, name);
    }
    return KVGPT_OK;
}

/* CRC-32 of data.pkl, read through the buffer. */
static kvgpt_status check_crc_file(lf_file *f, const ckpt_info *ci, unsigned char *buf, size_t cap, kvgpt_error *err)
{
    uint32_t crc = 0;
    for (uint64_t at = 0; at < ci->pkl.size;) {
        size_t n = ci->pkl.size - at < cap ? (size_t)(ci->pkl.size - at) : cap;
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

static const char *const args_wanted[] = {"n_layer", "n_head", "n_embd", "block_size", "vocab_size", "bias"};
#define N_ARGS 6

static kvgpt_status config_from_args(const pk_arg *a, const char *what, kvgpt_config *c, kvgpt_error *err)
{
    int64_t v[5];
    for (int k = 0; k < 5; k++) {
        if (!a[k].present)
            return kv_fail(err, KVGPT_ERR_CONFIG, "%s: model_args has no \"%s\"", what, args_wanted[k]);
        if (a[k].type != PK_INT)
            return kv_fail(err, KVGPT_ERR_CONFIG, "%s: model_args[\"%s\"] is not an integer", what, args_wanted[k]);
        v[k] = a[k].i < 0 ? -1 : a[k].i > INT_MAX ? INT_MAX : a[k].i;   /* out of range either way: checked below */
    }
    if (a[5].present && a[5].type != PK_BOOL)
        return kv_fail(err, KVGPT_ERR_CONFIG, "%s: model_args[\"bias\"] is not True or False", what);
    memset(c, 0, sizeof *c);
    c->n_layer = (int)v[0];
    c->n_head = (int)v[1];
    c->n_embd = (int)v[2];
    c->block_size = (int)v[3];
    c->vocab_size = (int)v[4];
    c->bias = a[5].present ? (int)a[5].i : 1;   /* nanoGPT's GPTConfig default is bias=True */
    c->hf_layout = 0;             /* nn.Linear [out, in] */
    c->gelu = KVGPT_GELU_ERF;     /* nanoGPT's nn.GELU() is exact */
    c->ln_eps = 1e-5f;
    c->eot_token = -1;
    return loader_check_config(c, what, err);
}

/* The pickle's needs against what a checkpoint of its size may have. */
static kvgpt_status check_needs(const pk_counts *k, uint64_t storages, int n_layer, const char *what,
                                kvgpt_error *err)
{
    uint64_t lim = CKPT_OBJ_BASE + CKPT_OBJ_PER_LAYER * (uint64_t)n_layer;
    uint64_t most = k->values > k->cells ? k->values : k->cells;
    if (k->stack > most) most = k->stack;
    if (k->memo > most) most = k->memo;
    if (most > lim || k->pool > CKPT_POOL_PER_OBJ * lim)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: the pickle builds %llu objects (%llu container items, %llu string "
                       "bytes); a checkpoint of %d layers has at most %llu: not a nanoGPT checkpoint", what,
                       (unsigned long long)k->values, (unsigned long long)k->cells, (unsigned long long)k->pool,
                       n_layer, (unsigned long long)lim);
    if (storages > k->persids)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: %llu storage records but the pickle names %llu storages", what,
                       (unsigned long long)storages, (unsigned long long)k->persids);
    return KVGPT_OK;
}

/* ---- sizes -------------------------------------------------------------------- */

typedef struct { size_t table, table_cap, slots, vm, total; } ckpt_layout;

static int layout(const st_file *s, ckpt_layout *l)
{
    /* A state-dict entry is a key and a value set into a dict. */
    uint64_t t = s->pk.dict_items / 2 + 1;
    size_t a;
    l->table_cap = t < CKPT_MAX_TENSORS ? (size_t)t : CKPT_MAX_TENSORS;
    size_t vm = pk_vm_bytes(&s->pk);
    /* Offsets from the first 64-byte boundary of the scratch. */
    if (!vm || s->storages > SIZE_MAX / sizeof(ckpt_slot) || !kv_align(sizeof(struct ckpt_reads), 64, &l->table) ||
        !kv_add(l->table, l->table_cap * sizeof(st_tensor), &a) || !kv_align(a, 64, &l->slots) ||
        !kv_add(l->slots, (size_t)s->storages * sizeof(ckpt_slot), &a) || !kv_align(a, 64, &l->vm))
        return 0;
    return kv_add(l->vm, vm, &a) && kv_add(a, 64, &l->total);
}

kvgpt_status ckpt_open(st_file *s, const char *path, size_t *scratch_bytes, kvgpt_config *cfg, kvgpt_error *err)
{
    memset(s, 0, sizeof *s);
    s->file.fd = -1;
    kvgpt_status st = lf_open(&s->file, path, err);
    if (st) return st;
    /* No memory is taken before the plan: a small buffer on the stack reads
     * the directory and data.pkl's CRC, and the scan keeps a fixed state. */
    ckpt_info ci;
    unsigned char buf[ZIP_BUF_MIN];
    pk_arg args[N_ARGS];
    kvgpt_config c;
    ckpt_layout l;
    if ((st = find_records(&s->file, &ci, buf, sizeof buf, err)) ||
        (st = check_crc_file(&s->file, &ci, buf, sizeof buf, err)) ||
        (st = pk_scan_args(&s->file, ci.pkl_off, ci.pkl.size, ci.what, "model_args", args_wanted, N_ARGS, args,
                           &s->pk, err)) ||
        (st = config_from_args(args, ci.what, &c, err)) ||
        (st = check_needs(&s->pk, ci.n_storages, c.n_layer, ci.what, err)))
        goto fail;
    s->storages = ci.n_storages;
    if (!layout(s, &l)) {
        st = kv_fail(err, KVGPT_ERR_NOMEM, "%s: scratch size overflows", path);
        goto fail;
    }
    if (cfg) *cfg = c;
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

kvgpt_status ckpt_parse(st_file *s, void *scratch, size_t scratch_bytes, kvgpt_error *err)
{
    ckpt_layout l;
    if (!layout(s, &l) || l.total > scratch_bytes)
        return kv_fail(err, KVGPT_ERR_NOMEM, "%s: checkpoint scratch: Requested %zu, available %zu", s->file.path,
                       layout(s, &l) ? l.total : (size_t)0, scratch_bytes);
    /* Offsets are from a 64-byte boundary; layout() keeps 64 bytes of slack for it. */
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    struct ckpt_reads *r = (struct ckpt_reads *)(void *)base;
    kvgpt_status st = find_records(&s->file, &r->ci, r->buf, sizeof r->buf, err);
    if (st) return st;
    if (r->ci.n_storages != s->storages)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: changed since it was opened", r->ci.what);
    ckpt_slot *slots = (ckpt_slot *)(void *)(base + l.slots);
    if ((st = ckpt_index(&s->file, r, slots, (size_t)s->storages, err))) return st;
    pk_vm vm;
    if ((st = pk_run(&vm, &s->file, r->ci.pkl_off, r->ci.pkl.size, 1, r->ci.what, &s->pk, base + l.vm,
                     scratch_bytes - (size_t)(base - (char *)scratch) - l.vm, err)))
        return st;
    st_tensor *tab = (st_tensor *)(void *)(base + l.table);
    size_t count = 0;
    if ((st = ckpt_table(&s->file, r, &vm, tab, l.table_cap, &count, err))) return st;
    zip_crc_table(r->crc);
    r->last = UINT32_MAX;
    s->header_len = 0;
    s->data_start = 0;
    s->tensors = tab;
    s->n_tensors = count;
    s->ck = r;
    return KVGPT_OK;
}
