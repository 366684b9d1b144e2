/* tokenizer/charmeta.c — nanoGPT's meta.pkl read as a char vocabulary: the
 * loader's refusing pickle interpreter runs it, this checks what it built
 * (itos and stoi exact inverses, one character per token) and fills the
 * same tables cv_load fills from vocab.json. */
#include "tokenizer/charvocab.h"
#include "loader/ckpt.h"
#include "loader/loader.h"
#include "common/status.h"

#include <string.h>

#define CKPT_MAX_META (16u << 20)

size_t cv_meta_file_bytes(uint64_t file_size, int vocab_size)
{
    if (file_size > CKPT_MAX_META || vocab_size < 0) return 0;
    return 64 + (size_t)file_size + 64 + pk_vm_bytes((size_t)file_size) + 64 + (size_t)vocab_size * 4;
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
        if (ids[i] == PK_NIL)
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s: itos has %d entries but the model's vocab_size is %d", path, n,
                           V);
        if (vm->val[ids[i]].type != PK_STR || vm->val[ids[i]].u.len == 0)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: itos[%d] is not a non-empty string", path, i);
        if (!cv_one_char(vm->p + vm->val[ids[i]].a, vm->val[ids[i]].u.len))
            return kv_fail(err, KVGPT_ERR_VOCAB, "%s: itos[%d] is not one UTF-8 character", path, i);
    }
    return KVGPT_OK;
}

/* stoi must be exactly the inverse of itos. */
static kvgpt_status meta_stoi(const pk_vm *vm, uint32_t stoi, int V, const uint32_t *ids, const char *path,
                              kvgpt_error *err)
{
    if (stoi == PK_NIL || vm->val[stoi].type != PK_DICT) return meta_fail(path, "no \"stoi\" dict", err);
    if (vm->val[stoi].u.c.n != 2u * (uint32_t)V)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: stoi has %u entries, itos %d", path, vm->val[stoi].u.c.n / 2, V);
    for (uint32_t c = vm->val[stoi].a; c != PK_NIL; c = vm->cell[vm->cell[c].next].next) {
        const pk_value *k = &vm->val[vm->cell[c].v], *v = &vm->val[vm->cell[vm->cell[c].next].v];
        if (k->type != PK_STR || v->type != PK_INT || v->u.i < 0 || v->u.i >= V)
            return meta_fail(path, "a stoi entry is not string -> id in range", err);
        const pk_value *t = &vm->val[ids[v->u.i]];
        if (t->u.len != k->u.len || memcmp(vm->p + t->a, vm->p + k->a, k->u.len) != 0)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: stoi maps a string to %lld, whose itos string differs", path,
                           (long long)v->u.i);
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
    size_t n = (size_t)f.size;
    uint8_t *buf = (uint8_t *)(((uintptr_t)file_mem + 63) & ~(uintptr_t)63);
    s = lf_read(&f, 0, buf, n, err);
    lf_close(&f);
    if (s) return s;
    char *vm_mem = (char *)(((uintptr_t)(buf + n) + 63) & ~(uintptr_t)63);
    uint32_t *ids = (uint32_t *)(void *)(((uintptr_t)(vm_mem + pk_vm_bytes(n)) + 63) & ~(uintptr_t)63);
    pk_vm vm;
    if ((s = pk_run(&vm, buf, n, 0, path, vm_mem, pk_vm_bytes(n), err))) return s;
    if (vm.val[vm.root].type != PK_DICT) return meta_fail(path, "not a dict", err);
    uint32_t vs = pk_dict_get(&vm, vm.root, "vocab_size");
    if (vs == PK_NIL || vm.val[vs].type != PK_INT) return meta_fail(path, "no integer \"vocab_size\"", err);
    if (vm.val[vs].u.i != vocab_size)
        return kv_fail(err, KVGPT_ERR_VOCAB, "%s: vocab_size %lld but the model's is %d", path,
                       (long long)vm.val[vs].u.i, vocab_size);
    if ((s = meta_itos(&vm, pk_dict_get(&vm, vm.root, "itos"), vocab_size, ids, path, err)) ||
        (s = meta_stoi(&vm, pk_dict_get(&vm, vm.root, "stoi"), vocab_size, ids, path, err)))
        return s;

    /* The same tables cv_load fills from vocab.json. */
    size_t head = ((size_t)vocab_size + 1) * sizeof(uint32_t), used = 0;
    v->offsets = table_mem;
    v->bytes = (char *)table_mem + head;
    for (int i = 0; i < 256; i++) v->byte_to_id[i] = -1;
    for (int i = 0; i < vocab_size; i++) {
        const pk_value *t = &vm.val[ids[i]];
        if (t->u.len > table_bytes - head - used) return meta_fail(path, "token strings larger than planned", err);
        v->offsets[i] = (uint32_t)used;
        memcpy(v->bytes + used, buf + t->a, t->u.len);
        if (t->u.len == 1) v->byte_to_id[(unsigned char)v->bytes[used]] = (int16_t)(i < 32767 ? i : -1);
        used += t->u.len;
    }
    v->offsets[vocab_size] = (uint32_t)used;
    v->n = vocab_size;
    return KVGPT_OK;
}
