/* tokenizer/charmeta.c — nanoGPT's meta.pkl read as a char vocabulary: the
 * loader's refusing pickle interpreter runs it (streamed from the file, in
 * memory bounded by the vocabulary's size), this checks what it built
 * (itos and stoi exact inverses, one character per token) and fills the
 * same tables cv_load fills from vocab.json. */
#include "tokenizer/charvocab.h"
#include "loader/ckpt.h"
#include "loader/loader.h"
#include "common/status.h"

#include <string.h>

#define CKPT_MAX_META (16u << 20)

/* What pickle.dump of {'vocab_size': V, 'itos': {id: ch}, 'stoi': {ch: id}}
 * holds: about 3V objects, 4V dict items, a memo entry per string, batches of
 * 1000 items on the stack. Anything much larger is not a vocabulary of V. */
static pk_counts meta_caps(int vocab_size)
{
    uint64_t n = 4 * (uint64_t)vocab_size + 1024;
    pk_counts c = {n, n, n, PK_MAX_MARKS, n, 16 * n, 0, 0};
    return c;
}

size_t cv_meta_file_bytes(uint64_t file_size, int vocab_size)
{
    if (file_size > CKPT_MAX_META || vocab_size < 1 || vocab_size > LOADER_MAX_VOCAB) return 0;
    pk_counts c = meta_caps(vocab_size);
    size_t vm = pk_vm_bytes(&c);
    return vm ? 64 + vm + 64 + (size_t)vocab_size * 4 : 0;
}

static kvgpt_status meta_fail(const char *path, const char *why, kvgpt_error *err)
{
    return kv_fail(err, KVGPT_ERR_CKPT, "%s: %s", path, why);
}

/* ids[i] = the itos string of token i; each id exactly once. */
static kvgpt_status meta_itos(const pk_vm *vm, uint32_t itos, int V, uint32_t *ids, const char *path,
                              kvgpt_error *err)
{
    for (int i = 0; i < V; i++) ids[i] = PK_NIL;
    int n = 0;
    if (itos != PK_NIL && vm->val[itos].type == PK_LIST) {   /* a list by id also does */
        for (uint32_t c = vm->val[itos].a; c != PK_NIL; c = vm->cell[c].next, n++) {
            if (n >= V)
                return kv_fail(err, KVGPT_ERR_VOCAB, "%s: itos has more than the model's vocab_size %d entries", path,
                               V);
            ids[n] = vm->cell[c].v;
        }
    } else if (itos != PK_NIL && vm->val[itos].type == PK_DICT) {
        for (uint32_t c = vm->val[itos].a; c != PK_NIL; c = vm->cell[vm->cell[c].next].next, n++) {
            const pk_value *k = &vm->val[vm->cell[c].v];
            if (k->type != PK_INT) return meta_fail(path, "an itos key is not an integer", err);
            if (k->u.i < 0 || k->u.i >= V)
                return kv_fail(err, KVGPT_ERR_VOCAB, "%s: itos id %lld is outside the model's vocab_size %d", path,
                               (long long)k->u.i, V);
            if (ids[k->u.i] != PK_NIL)
                return kv_fail(err, KVGPT_ERR_CKPT, "%s: itos id %lld appears twice", path, (long long)k->u.i);
            ids[k->u.i] = vm->cell[vm->cell[c].next].v;
        }
    } else {
        return meta_fail(path, "no \"itos\" dict", err);
    }
    for (int i = 0; i < V; i++) {
        size_t len = 0;
        if (ids[i] == PK_NIL)
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s: itos has %d entries but the model's vocab_size is %d", path, n,
                           V);
        if (vm->val[ids[i]].type != PK_STR || vm->val[ids[i]].u.len == 0)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: itos[%d] is not a non-empty string", path, i);
        const char *s = pk_str(vm, ids[i], &len);
        if (!s || !cv_one_char(s, len))
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s: itos[%d] is not one UTF-8 character", path, i);
    }
    return KVGPT_OK;
}

/* stoi must be exactly the inverse of itos (v's tables, built): every id once. */
static kvgpt_status meta_stoi(const pk_vm *vm, uint32_t stoi, const cv_vocab *v, uint32_t *seen, const char *path,
                              kvgpt_error *err)
{
    if (stoi == PK_NIL || vm->val[stoi].type != PK_DICT) return meta_fail(path, "no \"stoi\" dict", err);
    if (vm->val[stoi].u.c.n != 2u * (uint32_t)v->n)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: stoi has %u entries, itos %d", path, vm->val[stoi].u.c.n / 2, v->n);
    memset(seen, 0, (size_t)v->n * sizeof *seen);
    for (uint32_t c = vm->val[stoi].a; c != PK_NIL; c = vm->cell[vm->cell[c].next].next) {
        const pk_value *id = &vm->val[vm->cell[vm->cell[c].next].v];
        size_t len = 0;
        const char *s = pk_str(vm, vm->cell[c].v, &len);
        if (!s || id->type != PK_INT || id->u.i < 0 || id->u.i >= v->n)
            return meta_fail(path, "a stoi entry is not string -> id in range", err);
        if (!cv_one_char(s, len) || cv_find(v, s, len) != id->u.i)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: stoi maps a string to %lld, whose itos string differs", path,
                           (long long)id->u.i);
        if (seen[id->u.i]++)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: stoi lists id %lld twice", path, (long long)id->u.i);
    }
    return KVGPT_OK;
}

kvgpt_status cv_load_meta(cv_vocab *v, const char *path, int vocab_size, void *file_mem, size_t file_bytes,
                          void *table_mem, size_t table_bytes, kvgpt_error *err)
{
    memset(v, 0, sizeof *v);
    lf_file f;
    kvgpt_status s = lf_open(&f, path, err);
    if (s) return s;
    size_t need = cv_meta_file_bytes(f.size, vocab_size);
    if (!need || file_bytes < need || table_bytes < cv_table_bytes(f.size, vocab_size)) {
        lf_close(&f);
        return kv_fail(err, need ? KVGPT_ERR_VOCAB : KVGPT_ERR_CKPT, need ? "%s: changed size since it was planned"
                       : "%s: too large for a meta.pkl", path);
    }
    pk_counts caps = meta_caps(vocab_size);
    size_t vm_bytes = pk_vm_bytes(&caps);
    char *vm_mem = (char *)(((uintptr_t)file_mem + 63) & ~(uintptr_t)63);
    uint32_t *ids = (uint32_t *)(void *)(((uintptr_t)(vm_mem + vm_bytes) + 63) & ~(uintptr_t)63);
    pk_vm vm;
    s = pk_run(&vm, &f, 0, f.size, 0, path, &caps, vm_mem, vm_bytes, err);
    lf_close(&f);
    if (s) return s;
    if (vm.val[vm.root].type != PK_DICT) return meta_fail(path, "not a dict", err);
    uint32_t vs = pk_dict_get(&vm, vm.root, "vocab_size");
    if (vs == PK_NIL || vm.val[vs].type != PK_INT) return meta_fail(path, "no integer \"vocab_size\"", err);
    if (vm.val[vs].u.i != vocab_size)
        return kv_fail(err, KVGPT_ERR_VOCAB, "%s: vocab_size %lld but the model's is %d", path,
                       (long long)vm.val[vs].u.i, vocab_size);
    if ((s = meta_itos(&vm, pk_dict_get(&vm, vm.root, "itos"), vocab_size, ids, path, err))) return s;

    /* The same tables cv_load fills from vocab.json. */
    size_t used = 0;
    cv_begin(v, f.size, vocab_size, table_mem);
    for (int i = 0; i < vocab_size; i++) {
        size_t len = 0;
        const char *t = pk_str(&vm, ids[i], &len);
        int dup = cv_add(v, i, t, len, &used);
        if (dup >= 0)
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s: itos[%d] is the same character as itos[%d]", path, i, dup);
    }
    v->n = vocab_size;
    return meta_stoi(&vm, pk_dict_get(&vm, vm.root, "stoi"), v, ids, path, err);
}
