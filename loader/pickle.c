/* loader/pickle.c — the subset of Python's pickle that torch.save (protocol 2)
 * and pickle.dump (protocol 4) write for nanoGPT's ckpt.pt and meta.pkl,
 * interpreted as data: the opcode decoder (shared with pickle_scan.c, which
 * answers the plan's questions) and pk_run, which builds the objects in
 * caller-given scratch sized by the limits the caller planned. The pickle is
 * streamed from its file through a window; strings longer than PK_STR_KEEP
 * are skipped, not stored (nothing the readers look for is that long).
 * No opcode outside the subset, no GLOBAL outside the allow-list, no REDUCE
 * other than the three torch rebuilders, and no recursion. */
#include "loader/pickle_int.h"
#include "common/status.h"

#include <stdio.h>
#include <string.h>

static const struct { const char *module, *name; size_t size; } globals[PK_G_COUNT] = {
    [PK_G_ORDERED_DICT] = {"collections", "OrderedDict", 0},
    [PK_G_REBUILD_TENSOR_V2] = {"torch._utils", "_rebuild_tensor_v2", 0},
    [PK_G_REBUILD_PARAMETER] = {"torch._utils", "_rebuild_parameter", 0},
    [PK_G_FLOAT] = {"torch", "FloatStorage", 4},     [PK_G_HALF] = {"torch", "HalfStorage", 2},
    [PK_G_BFLOAT16] = {"torch", "BFloat16Storage", 2}, [PK_G_DOUBLE] = {"torch", "DoubleStorage", 8},
    [PK_G_LONG] = {"torch", "LongStorage", 8},       [PK_G_INT] = {"torch", "IntStorage", 4},
    [PK_G_SHORT] = {"torch", "ShortStorage", 2},     [PK_G_CHAR] = {"torch", "CharStorage", 1},
    [PK_G_BYTE] = {"torch", "ByteStorage", 1},       [PK_G_BOOL] = {"torch", "BoolStorage", 1},
};

size_t pk_storage_size(pk_global g) { return (unsigned)g < PK_G_COUNT ? globals[g].size : 0; }
const char *pk_global_name(pk_global g) { return (unsigned)g < PK_G_COUNT ? globals[g].name : "?"; }

static int same(const char *lit, const char *s, size_t n) { return strlen(lit) == n && memcmp(lit, s, n) == 0; }

static const char *const modules[] = {"collections", "torch._utils", "torch"};

int pk_global_module(const char *s, size_t n)
{
    for (int m = 0; m < 3; m++)
        if (same(modules[m], s, n)) return m + 1;
    return 0;
}

int pk_global_name_of(const char *s, size_t n)
{
    for (int g = 0; g < PK_G_COUNT; g++)
        if (same(globals[g].name, s, n)) return g + 1;
    return 0;
}

int pk_global_of(int module, int name)
{
    return name && module && same(modules[module - 1], globals[name - 1].module, strlen(globals[name - 1].module))
               ? name - 1 : -1;
}

int pk_global_id(const char *mod, size_t ml, const char *name, size_t nl)
{
    return pk_global_of(pk_global_module(mod, ml), pk_global_name_of(name, nl));
}

/* Printable form of untrusted bytes for a message. */
static const char *shown(const char *s, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 32 && c < 127) buf[o++] = (char)c;
        else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    buf[o < cap ? o : cap - 1] = 0;
    return buf;
}

kvgpt_status pk_bad_global(const char *what, uint64_t at, const char *mod, size_t ml, const char *name, size_t nl,
                           kvgpt_error *err)
{
    char a[96], b[96];
    return kv_fail(err, KVGPT_ERR_CKPT, "%s: byte %llu: GLOBAL '%s %s' is not allowed (only OrderedDict, torch "
                   "tensor rebuilders and torch storages)", what, (unsigned long long)at,
                   shown(mod, ml, a, sizeof a), shown(name, nl, b, sizeof b));
}

/* ---- the decoder: one opcode and its argument, through the file window ------ */

void pk_src_init(pk_src *s, lf_file *f, uint64_t base, uint64_t n, void *win, size_t win_cap, const char *what,
                 int torch)
{
    s->f = f;
    s->base = base;
    s->n = n;
    s->pos = 0;
    s->win = win;
    s->win_cap = win_cap;
    s->win_at = 0;
    s->win_len = 0;
    s->what = what;
    s->torch = torch;
}

kvgpt_status pk_src_bytes(pk_src *s, uint64_t off, size_t n, const uint8_t **out, kvgpt_error *err)
{
    if (off > s->n || n > s->n - off)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: truncated: an opcode's argument runs past the end (%llu bytes)",
                       s->what, (unsigned long long)s->n);
    if (off < s->win_at || off + n > s->win_at + s->win_len) {
        size_t len = s->n - off < s->win_cap ? (size_t)(s->n - off) : s->win_cap;
        kvgpt_status st = lf_read(s->f, s->base + off, s->win, len, err);
        if (st) return st;
        s->win_at = off;
        s->win_len = len;
    }
    *out = s->win + (off - s->win_at);
    return KVGPT_OK;
}

static uint64_t le_n(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* "module\nname\n" */
static kvgpt_status decode_global(pk_src *s, pk_op *op, kvgpt_error *err)
{
    uint64_t left = s->n - s->pos;
    size_t span = left < 2 * PK_NAME_MAX + 2 ? (size_t)left : 2 * PK_NAME_MAX + 2;
    const uint8_t *p;
    kvgpt_status st = pk_src_bytes(s, s->pos, span, &p, err);
    if (st) return st;
    const uint8_t *nl1 = memchr(p, '\n', span);
    const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', span - (size_t)(nl1 + 1 - p)) : NULL;
    if (!nl2 || nl1 - p > PK_NAME_MAX || nl2 - nl1 - 1 > PK_NAME_MAX)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: byte %llu: GLOBAL without two short newline-ended names",
                       s->what, (unsigned long long)op->at);
    const char *mod = (const char *)p, *name = (const char *)nl1 + 1;
    size_t ml = (size_t)(nl1 - p), nml = (size_t)(nl2 - nl1 - 1);
    int g = s->torch ? pk_global_id(mod, ml, name, nml) : -1;
    if (g < 0) return pk_bad_global(s->what, op->at, mod, ml, name, nml, err);
    op->i = g;
    s->pos += (uint64_t)(nl2 + 1 - p);
    return KVGPT_OK;
}

kvgpt_status pk_next(pk_src *s, pk_op *op, kvgpt_error *err)
{
    const uint8_t *p = NULL;
    op->at = s->pos;
    kvgpt_status st = pk_src_bytes(s, s->pos, 1, &p, err);
    if (st) return kv_fail(err, KVGPT_ERR_CKPT, "%s: truncated: ends at byte %llu without STOP", s->what,
                           (unsigned long long)s->n);
    op->code = *p;
    s->pos++;
    int argn = 0;
    switch (op->code) {
    case OP_PROTO: case OP_BININT1: case OP_BINPUT: case OP_BINGET: case OP_SHORT_BINUNICODE: case OP_LONG1:
        argn = 1; break;
    case OP_BININT2: argn = 2; break;
    case OP_BININT: case OP_LONG_BINPUT: case OP_LONG_BINGET: case OP_BINUNICODE: argn = 4; break;
    case OP_FRAME: case OP_BINFLOAT: argn = 8; break;
    case OP_GLOBAL: return decode_global(s, op, err);
    case OP_STOP: case OP_MARK: case OP_EMPTY_DICT: case OP_EMPTY_LIST: case OP_EMPTY_TUPLE: case OP_TUPLE:
    case OP_TUPLE1: case OP_TUPLE2: case OP_TUPLE3: case OP_SETITEM: case OP_SETITEMS: case OP_APPEND:
    case OP_APPENDS: case OP_NEWTRUE: case OP_NEWFALSE: case OP_NONE: case OP_MEMOIZE:
        return KVGPT_OK;
    case OP_STACK_GLOBAL: case OP_REDUCE: case OP_BUILD: case OP_BINPERSID:
        /* meta.pkl has no business building objects */
        if (s->torch) return KVGPT_OK;
        /* fall through */
    default: {
        char c[8];
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: byte %llu: opcode 0x%02x ('%s') is not in the subset %s writes",
                       s->what, (unsigned long long)op->at, op->code, shown((const char *)p, 1, c, sizeof c),
                       s->torch ? "torch.save" : "pickle.dump of a plain dict");
    }
    }
    if ((st = pk_src_bytes(s, s->pos, (size_t)argn, &p, err))) return st;
    s->pos += (uint64_t)argn;
    uint64_t v = le_n(p, argn);
    op->i = (int64_t)v;
    switch (op->code) {
    case OP_BININT: op->i = (int32_t)(uint32_t)v; break;
    case OP_BINFLOAT: {
        uint64_t be = 0;
        for (int i = 0; i < 8; i++) be = be << 8 | p[i];
        memcpy(&op->f, &be, sizeof op->f);
        break;
    }
    case OP_LONG1: {
        size_t nb = (size_t)v;
        if (nb > 8)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: byte %llu: LONG1 of %zu bytes does not fit 64 bits", s->what,
                           (unsigned long long)op->at, nb);
        if ((st = pk_src_bytes(s, s->pos, nb, &p, err))) return st;
        s->pos += nb;
        uint64_t x = le_n(p, (int)nb);
        if (nb && nb < 8 && (p[nb - 1] & 0x80)) x |= ~(uint64_t)0 << (8 * nb);
        op->i = (int64_t)x;
        break;
    }
    case OP_BINUNICODE: case OP_SHORT_BINUNICODE:
        if (v > s->n - s->pos)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: byte %llu: a string of %llu bytes runs past the end", s->what,
                           (unsigned long long)op->at, (unsigned long long)v);
        op->str = s->pos;
        op->len = v;
        s->pos += v;
        break;
    case OP_FRAME:
        if (v > s->n - s->pos)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: byte %llu: FRAME of %llu bytes runs past the end", s->what,
                           (unsigned long long)op->at, (unsigned long long)v);
        break;
    case OP_PROTO:
        if (op->at != 0 || v < 2 || v > 5)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: byte %llu: PROTO %llu (protocols 2..5, first opcode only)",
                           s->what, (unsigned long long)op->at, (unsigned long long)v);
        break;
    default: break;
    }
    return KVGPT_OK;
}

/* ---- pk_run: the whole pickle as objects ------------------------------------ */

/* Offsets of each array from the 64-byte-aligned start; 0 on overflow. */
static size_t vm_layout(const pk_counts *c, size_t off[7])
{
    const uint64_t n[7] = {PK_WINDOW, c->values, c->cells, c->stack, c->marks, c->memo, c->pool};
    const size_t size[7] = {1, sizeof(pk_value), sizeof(pk_cell), 4, 4, 4, 1};
    size_t at = 0, bytes;
    for (int i = 0; i < 7; i++) {
        if (n[i] > UINT32_MAX || !kv_mul((size_t)n[i], size[i], &bytes)) return 0;
        off[i] = at;
        if (!kv_add(at, bytes, &at) || !kv_align(at, 64, &at)) return 0;
    }
    return at;
}

size_t pk_vm_bytes(const pk_counts *c)
{
    size_t off[7], n = vm_layout(c, off);
    return n && n <= SIZE_MAX - 64 ? n + 64 : 0;
}

static kvgpt_status vm_fail(pk_vm *vm, uint64_t at, const char *why, kvgpt_error *err)
{
    return kv_fail(err, KVGPT_ERR_CKPT, "%s: byte %llu: %s", vm->what, (unsigned long long)at, why);
}

/* Running out of a planned limit: the file changed since it was planned, or
 * (meta.pkl) holds more than a vocabulary of its size needs. */
static kvgpt_status vm_full(pk_vm *vm, uint64_t at, const char *what_ran_out, kvgpt_error *err)
{
    return kv_fail(err, KVGPT_ERR_CKPT, "%s: byte %llu: more %s than planned for this file (changed since, or "
                   "not the kind of pickle expected here)", vm->what, (unsigned long long)at, what_ran_out);
}

static uint32_t new_value(pk_vm *vm, pk_type t)
{
    if (vm->n_val >= vm->cap.values) return PK_NIL;
    pk_value *v = &vm->val[vm->n_val];
    memset(v, 0, sizeof *v);
    v->type = (uint8_t)t;
    v->a = PK_NIL;
    if (t == PK_TUPLE || t == PK_LIST || t == PK_DICT) v->u.c.last = PK_NIL;
    return vm->n_val++;
}

static int add_item(pk_vm *vm, uint32_t container, uint32_t item)
{
    if (vm->n_cell >= vm->cap.cells) return 0;
    pk_value *c = &vm->val[container];
    uint32_t k = vm->n_cell++;
    vm->cell[k].v = item;
    vm->cell[k].next = PK_NIL;
    if (c->a == PK_NIL) c->a = k;
    else vm->cell[c->u.c.last].next = k;
    c->u.c.last = k;
    c->u.c.n++;
    return 1;
}

static uint32_t fence(const pk_vm *vm) { return vm->n_marks ? vm->marks[vm->n_marks - 1] : 0; }

static const pk_value *V(const pk_vm *vm, uint32_t i) { return &vm->val[i]; }

uint32_t pk_item(const pk_vm *vm, uint32_t seq, uint32_t i)
{
    if (seq == PK_NIL || (V(vm, seq)->type != PK_TUPLE && V(vm, seq)->type != PK_LIST)) return PK_NIL;
    uint32_t c = V(vm, seq)->a;
    for (; c != PK_NIL && i; i--) c = vm->cell[c].next;
    return c == PK_NIL ? PK_NIL : vm->cell[c].v;
}

const char *pk_str(const pk_vm *vm, uint32_t v, size_t *len)
{
    if (v == PK_NIL || V(vm, v)->type != PK_STR || V(vm, v)->a == PK_NIL) return NULL;
    *len = V(vm, v)->u.len;
    return vm->pool + V(vm, v)->a;
}

int pk_str_eq(const pk_vm *vm, uint32_t v, const char *s)
{
    size_t n;
    const char *p = pk_str(vm, v, &n);
    return p && same(s, p, n);
}

uint32_t pk_dict_get(const pk_vm *vm, uint32_t dict, const char *key)
{
    if (dict == PK_NIL || V(vm, dict)->type != PK_DICT) return PK_NIL;
    uint32_t found = PK_NIL;
    for (uint32_t c = V(vm, dict)->a; c != PK_NIL; c = vm->cell[vm->cell[c].next].next)
        if (pk_str_eq(vm, vm->cell[c].v, key)) found = vm->cell[vm->cell[c].next].v;
    return found;
}

static int is_type(const pk_vm *vm, uint32_t v, pk_type t) { return v != PK_NIL && V(vm, v)->type == t; }

/* A tuple of at most ST_MAX_DIMS ints. */
static int is_dims(const pk_vm *vm, uint32_t v)
{
    if (!is_type(vm, v, PK_TUPLE) || V(vm, v)->u.c.n > ST_MAX_DIMS) return 0;
    for (uint32_t c = V(vm, v)->a; c != PK_NIL; c = vm->cell[c].next)
        if (!is_type(vm, vm->cell[c].v, PK_INT)) return 0;
    return 1;
}

/* REDUCE: the only callables are OrderedDict() and torch's tensor rebuilders. */
static kvgpt_status reduce(pk_vm *vm, uint32_t fn, uint32_t args, uint64_t at, uint32_t *out, kvgpt_error *err)
{
    if (!is_type(vm, fn, PK_GLOBAL) || !is_type(vm, args, PK_TUPLE))
        return vm_fail(vm, at, "REDUCE needs an allowed GLOBAL and an argument tuple", err);
    uint32_t n = V(vm, args)->u.c.n;
    switch (V(vm, fn)->sub) {
    case PK_G_ORDERED_DICT:
        if (n != 0) return vm_fail(vm, at, "OrderedDict() takes no arguments here", err);
        *out = new_value(vm, PK_DICT);
        return KVGPT_OK;
    case PK_G_REBUILD_TENSOR_V2: {
        /* (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
        uint32_t a[7] = {PK_NIL, PK_NIL, PK_NIL, PK_NIL, PK_NIL, PK_NIL, PK_NIL}, i = 0;
        for (uint32_t c = V(vm, args)->a; c != PK_NIL && i < 7; c = vm->cell[c].next) a[i++] = vm->cell[c].v;
        if ((n != 6 && n != 7) || !is_type(vm, a[0], PK_STORAGE) || !is_type(vm, a[1], PK_INT) ||
            !is_dims(vm, a[2]) || !is_dims(vm, a[3]) || V(vm, a[2])->u.c.n != V(vm, a[3])->u.c.n ||
            !is_type(vm, a[4], PK_BOOL) || !is_type(vm, a[5], PK_DICT) || (n == 7 && !is_type(vm, a[6], PK_DICT)))
            return vm_fail(vm, at, "_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, "
                           "requires_grad, hooks)", err);
        *out = new_value(vm, PK_TENSOR);
        if (*out != PK_NIL) vm->val[*out].a = args;
        return KVGPT_OK;
    }
    case PK_G_REBUILD_PARAMETER:
        if (n != 3 || !is_type(vm, pk_item(vm, args, 0), PK_TENSOR))
            return vm_fail(vm, at, "_rebuild_parameter arguments are not (tensor, requires_grad, hooks)", err);
        *out = pk_item(vm, args, 0);
        return KVGPT_OK;
    default: {
        char why[96];
        snprintf(why, sizeof why, "REDUCE of torch.%s (a storage type is not callable)",
                 pk_global_name((pk_global)V(vm, fn)->sub));
        return vm_fail(vm, at, why, err);
    }
    }
}

/* BINPERSID: torch's ('storage', StorageType, key, location, numel). */
static kvgpt_status persid(pk_vm *vm, uint32_t pid, uint64_t at, uint32_t *out, kvgpt_error *err)
{
    uint32_t ty = pk_item(vm, pid, 1), numel = pk_item(vm, pid, 4);
    if (!is_type(vm, pid, PK_TUPLE) || V(vm, pid)->u.c.n != 5 || !pk_str_eq(vm, pk_item(vm, pid, 0), "storage") ||
        !is_type(vm, ty, PK_GLOBAL) || pk_storage_size((pk_global)V(vm, ty)->sub) == 0 ||
        !is_type(vm, pk_item(vm, pid, 2), PK_STR) || !is_type(vm, pk_item(vm, pid, 3), PK_STR) ||
        !is_type(vm, numel, PK_INT) || V(vm, numel)->u.i < 0)
        return vm_fail(vm, at, "persistent id is not ('storage', torch.<Type>Storage, key, location, numel)", err);
    *out = new_value(vm, PK_STORAGE);
    if (*out != PK_NIL) {
        vm->val[*out].a = pid;
        vm->val[*out].sub = V(vm, ty)->sub;
    }
    return KVGPT_OK;
}

static kvgpt_status memo_put(pk_vm *vm, const pk_op *op, kvgpt_error *err)
{
    int mode = op->code == OP_MEMOIZE ? 2 : 1;
    if (vm->memo_mode && vm->memo_mode != mode) return vm_fail(vm, op->at, "mixes MEMOIZE and BINPUT", err);
    vm->memo_mode = mode;
    uint64_t idx = mode == 2 ? vm->memo_next++ : (uint64_t)op->i;
    if (idx >= vm->cap.memo) return vm_full(vm, op->at, "memo entries", err);
    if (vm->sp <= fence(vm)) return vm_fail(vm, op->at, "memo put with an empty stack", err);
    for (; vm->n_memo <= idx; vm->n_memo++) vm->memo[vm->n_memo] = PK_NIL;
    vm->memo[idx] = vm->stack[vm->sp - 1];
    return KVGPT_OK;
}

/* A string: kept in the pool when short, else only its length. */
static kvgpt_status new_string(pk_vm *vm, pk_src *src, const pk_op *op, uint32_t *v, kvgpt_error *err)
{
    if ((*v = new_value(vm, PK_STR)) == PK_NIL) return KVGPT_OK;
    vm->val[*v].u.len = (uint32_t)op->len;
    if (op->len > PK_STR_KEEP) return KVGPT_OK;
    if (vm->cap.pool - vm->pool_used < op->len) return vm_full(vm, op->at, "string bytes", err);
    const uint8_t *p;
    kvgpt_status s = pk_src_bytes(src, op->str, (size_t)op->len, &p, err);
    if (s) return s;
    memcpy(vm->pool + vm->pool_used, p, (size_t)op->len);
    vm->val[*v].a = (uint32_t)vm->pool_used;
    vm->pool_used += op->len;
    return KVGPT_OK;
}

/* Pops the items above the last MARK: *base is where they start. */
static kvgpt_status pop_mark(pk_vm *vm, const pk_op *op, uint32_t *base, kvgpt_error *err)
{
    if (!vm->n_marks) return vm_fail(vm, op->at, "an opcode that needs a MARK found none", err);
    *base = vm->marks[--vm->n_marks];
    return KVGPT_OK;
}

/* TUPLE*, SETITEM(S), APPEND(S): the items above base go into a container. */
static kvgpt_status collect(pk_vm *vm, const pk_op *op, uint32_t *v, kvgpt_error *err)
{
    int code = op->code;
    uint32_t base = 0;
    kvgpt_status s;
    int tuple = code == OP_TUPLE || code == OP_TUPLE1 || code == OP_TUPLE2 || code == OP_TUPLE3;
    int dict = code == OP_SETITEM || code == OP_SETITEMS;
    if (code == OP_TUPLE || code == OP_SETITEMS || code == OP_APPENDS) {
        if ((s = pop_mark(vm, op, &base, err))) return s;
        if (dict && (vm->sp - base) % 2) return vm_fail(vm, op->at, "SETITEMS with an odd number of items", err);
    } else {
        base = vm->sp - (tuple ? (uint32_t)(code - OP_TUPLE1 + 1) : dict ? 2 : 1);
    }
    uint32_t into;
    if (tuple) {
        if ((into = new_value(vm, PK_TUPLE)) == PK_NIL) return vm_full(vm, op->at, "objects", err);
        *v = into;
    } else {
        if (base <= fence(vm) || !is_type(vm, vm->stack[base - 1], dict ? PK_DICT : PK_LIST))
            return vm_fail(vm, op->at, dict ? "SETITEM(S) on something that is not a dict"
                                            : "APPEND(S) on something that is not a list", err);
        into = vm->stack[base - 1];
    }
    for (uint32_t i = base; i < vm->sp; i++)
        if (!add_item(vm, into, vm->stack[i])) return vm_full(vm, op->at, "container cells", err);
    vm->sp = base;
    return KVGPT_OK;
}

static kvgpt_status vm_step(pk_vm *vm, pk_src *src, const pk_op *op, int *stop, kvgpt_error *err)
{
    uint32_t v = PK_NIL, avail = vm->sp - fence(vm);
    kvgpt_status s;
    int code = op->code;
    /* How many items each opcode pops (mark-based ones are checked in pop_mark). */
    uint32_t need = 0;
    switch (code) {
    case OP_SETITEM: case OP_REDUCE: case OP_BUILD: case OP_STACK_GLOBAL: case OP_TUPLE2: need = 2; break;
    case OP_APPEND: case OP_TUPLE1: case OP_BINPERSID: case OP_STOP: need = 1; break;
    case OP_TUPLE3: need = 3; break;
    default: break;
    }
    if (code == OP_SETITEM || code == OP_APPEND) need++;   /* the container below */
    if (avail < need) return vm_fail(vm, op->at, "stack underflow", err);
    switch (code) {
    case OP_PROTO: case OP_FRAME: return KVGPT_OK;
    case OP_STOP:
        if (vm->sp != 1 || vm->n_marks) return vm_fail(vm, op->at, "STOP with more than one object left", err);
        vm->root = vm->stack[0];
        *stop = 1;
        return KVGPT_OK;
    case OP_MARK:
        if (vm->n_marks >= vm->cap.marks) return vm_full(vm, op->at, "nested MARKs", err);
        vm->marks[vm->n_marks++] = vm->sp;
        return KVGPT_OK;
    case OP_EMPTY_DICT: v = new_value(vm, PK_DICT); break;
    case OP_EMPTY_LIST: v = new_value(vm, PK_LIST); break;
    case OP_EMPTY_TUPLE: v = new_value(vm, PK_TUPLE); break;
    case OP_NONE: v = new_value(vm, PK_NONE); break;
    case OP_NEWTRUE: case OP_NEWFALSE:
        if ((v = new_value(vm, PK_BOOL)) != PK_NIL) vm->val[v].u.i = code == OP_NEWTRUE;
        break;
    case OP_BININT: case OP_BININT1: case OP_BININT2: case OP_LONG1:
        if ((v = new_value(vm, PK_INT)) != PK_NIL) vm->val[v].u.i = op->i;
        break;
    case OP_BINFLOAT:
        if ((v = new_value(vm, PK_FLOAT)) != PK_NIL) vm->val[v].u.f = op->f;
        break;
    case OP_BINUNICODE: case OP_SHORT_BINUNICODE:
        if ((s = new_string(vm, src, op, &v, err))) return s;
        break;
    case OP_GLOBAL:
        if ((v = new_value(vm, PK_GLOBAL)) != PK_NIL) vm->val[v].sub = (uint8_t)op->i;
        break;
    case OP_STACK_GLOBAL: {
        uint32_t name = vm->stack[--vm->sp], mod = vm->stack[--vm->sp];
        size_t ml = 0, nl = 0;
        const char *ms = pk_str(vm, mod, &ml), *ns = pk_str(vm, name, &nl);
        if (!ms || !ns) return vm_fail(vm, op->at, "STACK_GLOBAL needs two short strings", err);
        int g = pk_global_id(ms, ml, ns, nl);
        if (g < 0) return pk_bad_global(vm->what, op->at, ms, ml, ns, nl, err);
        if ((v = new_value(vm, PK_GLOBAL)) != PK_NIL) vm->val[v].sub = (uint8_t)g;
        break;
    }
    case OP_TUPLE: case OP_TUPLE1: case OP_TUPLE2: case OP_TUPLE3:
        if ((s = collect(vm, op, &v, err))) return s;
        break;
    case OP_SETITEM: case OP_SETITEMS: case OP_APPEND: case OP_APPENDS: return collect(vm, op, &v, err);
    case OP_BINPUT: case OP_LONG_BINPUT: case OP_MEMOIZE: return memo_put(vm, op, err);
    case OP_BINGET: case OP_LONG_BINGET:
        if ((uint64_t)op->i >= vm->n_memo || vm->memo[op->i] == PK_NIL)
            return vm_fail(vm, op->at, "memo get of an index never put", err);
        v = vm->memo[op->i];
        break;
    case OP_REDUCE: {
        uint32_t args = vm->stack[--vm->sp], fn = vm->stack[--vm->sp];
        if ((s = reduce(vm, fn, args, op->at, &v, err))) return s;
        break;
    }
    case OP_BUILD: {
        uint32_t state = vm->stack[--vm->sp], obj = vm->stack[vm->sp - 1];
        /* OrderedDict state: the state dict's _metadata; not needed, not applied. */
        if (!is_type(vm, obj, PK_DICT) || !(is_type(vm, state, PK_DICT) || is_type(vm, state, PK_NONE)))
            return vm_fail(vm, op->at, "BUILD is allowed only on an OrderedDict", err);
        return KVGPT_OK;
    }
    case OP_BINPERSID:
        if ((s = persid(vm, vm->stack[--vm->sp], op->at, &v, err))) return s;
        break;
    default: return vm_fail(vm, op->at, "opcode not handled", err);
    }
    if (v == PK_NIL) return vm_full(vm, op->at, "objects", err);
    if (vm->sp >= vm->cap.stack) return vm_full(vm, op->at, "stack slots", err);
    vm->stack[vm->sp++] = v;
    return KVGPT_OK;
}

kvgpt_status pk_run(pk_vm *vm, lf_file *f, uint64_t off, uint64_t n, int torch, const char *what,
                    const pk_counts *cap, void *scratch, size_t scratch_bytes, kvgpt_error *err)
{
    memset(vm, 0, sizeof *vm);
    size_t at[7], need = pk_vm_bytes(cap);
    if (n > CKPT_MAX_PICKLE)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: %llu bytes of pickle is absurd (limit %u)", what,
                       (unsigned long long)n, CKPT_MAX_PICKLE);
    if (!need || scratch_bytes < need)
        return kv_fail(err, KVGPT_ERR_NOMEM, "%s: interpreter scratch too small: Requested %zu, available %zu",
                       what, need, scratch_bytes);
    vm_layout(cap, at);
    char *m = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    vm->what = what;
    vm->torch = torch;
    vm->cap = *cap;
    vm->val = (pk_value *)(void *)(m + at[1]);
    vm->cell = (pk_cell *)(void *)(m + at[2]);
    vm->stack = (uint32_t *)(void *)(m + at[3]);
    vm->marks = (uint32_t *)(void *)(m + at[4]);
    vm->memo = (uint32_t *)(void *)(m + at[5]);
    vm->pool = m + at[6];
    vm->root = PK_NIL;

    pk_src src;
    pk_src_init(&src, f, off, n, m + at[0], PK_WINDOW, what, torch);
    for (int stop = 0; !stop;) {
        pk_op op;
        kvgpt_status s = pk_next(&src, &op, err);
        if (!s) s = vm_step(vm, &src, &op, &stop, err);
        if (s) return s;
    }
    if (src.pos != n)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: %llu bytes after STOP", what, (unsigned long long)(n - src.pos));
    return KVGPT_OK;
}
