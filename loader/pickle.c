/* loader/pickle.c — the subset of Python's pickle that torch.save (protocol 2)
 * and pickle.dump (protocol 4) write for nanoGPT's ckpt.pt and meta.pkl,
 * interpreted as data. Two readers share one opcode decoder:
 *   pk_run       the whole pickle into objects in caller-given scratch;
 *   pk_scan_args a streaming pass with a fixed, small state that answers one
 *                question (root["model_args"]) for the memory plan.
 * No opcode outside the subset, no GLOBAL outside the allow-list, no REDUCE
 * other than the three torch rebuilders, and no recursion. */
#include "loader/ckpt.h"
#include "common/status.h"

#include <stdio.h>
#include <string.h>

/* ---- opcodes --------------------------------------------------------------- */
enum {
    OP_PROTO = 0x80, OP_FRAME = 0x95, OP_STOP = '.', OP_MARK = '(', OP_EMPTY_DICT = '}', OP_EMPTY_LIST = ']',
    OP_EMPTY_TUPLE = ')', OP_TUPLE = 't', OP_TUPLE1 = 0x85, OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87,
    OP_SETITEM = 's', OP_SETITEMS = 'u', OP_APPEND = 'a', OP_APPENDS = 'e', OP_BINUNICODE = 'X',
    OP_SHORT_BINUNICODE = 0x8c, OP_BININT = 'J', OP_BININT1 = 'K', OP_BININT2 = 'M', OP_LONG1 = 0x8a,
    OP_BINFLOAT = 'G', OP_NEWTRUE = 0x88, OP_NEWFALSE = 0x89, OP_NONE = 'N', OP_BINPUT = 'q',
    OP_LONG_BINPUT = 'r', OP_MEMOIZE = 0x94, OP_BINGET = 'h', OP_LONG_BINGET = 'j', OP_GLOBAL = 'c',
    OP_STACK_GLOBAL = 0x93, OP_REDUCE = 'R', OP_BUILD = 'b', OP_BINPERSID = 'Q'
};

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

static int global_id(const char *mod, size_t ml, const char *name, size_t nl)
{
    for (int g = 0; g < PK_G_COUNT; g++)
        if (strlen(globals[g].module) == ml && memcmp(globals[g].module, mod, ml) == 0 &&
            strlen(globals[g].name) == nl && memcmp(globals[g].name, name, nl) == 0)
            return g;
    return -1;
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

/* ---- the decoder: one opcode and its argument, from memory or a file window -- */
#define PK_WINDOW 4096
#define PK_NAME_MAX 128   /* a GLOBAL's module or name */

typedef struct {
    const uint8_t *mem;      /* the whole pickle, or NULL: read through win from f */
    lf_file *f;
    uint64_t base, n, pos;   /* file offset of the pickle, its length, the next byte */
    uint8_t win[PK_WINDOW];
    uint64_t win_at;
    size_t win_len;
    const char *what;
    int torch;
} pk_src;

typedef struct {
    int code;
    uint64_t at;             /* offset of the opcode in the pickle */
    int64_t i;               /* integer argument; memo index; GLOBAL id */
    double f;
    uint64_t str, len;       /* string bytes: offset in the pickle, length */
} pk_op;

static kvgpt_status src_bytes(pk_src *s, uint64_t off, size_t n, const uint8_t **out, kvgpt_error *err)
{
    if (off > s->n || n > s->n - off)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: truncated: an opcode's argument runs past the end (%llu bytes)",
                       s->what, (unsigned long long)s->n);
    if (s->mem) {
        *out = s->mem + off;
        return KVGPT_OK;
    }
    if (off < s->win_at || off + n > s->win_at + s->win_len) {
        size_t len = s->n - off < PK_WINDOW ? (size_t)(s->n - off) : PK_WINDOW;
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

static kvgpt_status bad_global(const char *what, uint64_t at, const char *mod, size_t ml, const char *name,
                               size_t nl, kvgpt_error *err)
{
    char a[96], b[96];
    return kv_fail(err, KVGPT_ERR_CKPT, "%s: byte %llu: GLOBAL '%s %s' is not allowed (only OrderedDict, torch "
                   "tensor rebuilders and torch storages)", what, (unsigned long long)at,
                   shown(mod, ml, a, sizeof a), shown(name, nl, b, sizeof b));
}

/* "module\nname\n" */
static kvgpt_status decode_global(pk_src *s, pk_op *op, kvgpt_error *err)
{
    uint64_t left = s->n - s->pos;
    size_t span = left < 2 * PK_NAME_MAX + 2 ? (size_t)left : 2 * PK_NAME_MAX + 2;
    const uint8_t *p;
    kvgpt_status st = src_bytes(s, s->pos, span, &p, err);
    if (st) return st;
    const uint8_t *nl1 = memchr(p, '\n', span);
    const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', span - (size_t)(nl1 + 1 - p)) : NULL;
    if (!nl2 || nl1 - p > PK_NAME_MAX || nl2 - nl1 - 1 > PK_NAME_MAX)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: byte %llu: GLOBAL without two short newline-ended names",
                       s->what, (unsigned long long)op->at);
    const char *mod = (const char *)p, *name = (const char *)nl1 + 1;
    size_t ml = (size_t)(nl1 - p), nml = (size_t)(nl2 - nl1 - 1);
    int g = s->torch ? global_id(mod, ml, name, nml) : -1;
    if (g < 0) return bad_global(s->what, op->at, mod, ml, name, nml, err);
    op->i = g;
    s->pos += (uint64_t)(nl2 + 1 - p);
    return KVGPT_OK;
}

static kvgpt_status pk_next(pk_src *s, pk_op *op, kvgpt_error *err)
{
    const uint8_t *p = NULL;
    op->at = s->pos;
    kvgpt_status st = src_bytes(s, s->pos, 1, &p, err);
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
    if ((st = src_bytes(s, s->pos, (size_t)argn, &p, err))) return st;
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
        if ((st = src_bytes(s, s->pos, nb, &p, err))) return st;
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

static void src_init(pk_src *s, const void *mem, lf_file *f, uint64_t base, uint64_t n, const char *what, int torch)
{
    s->mem = mem;
    s->f = f;
    s->base = base;
    s->n = n;
    s->pos = 0;
    s->win_at = 0;
    s->win_len = 0;
    s->what = what;
    s->torch = torch;
}

/* ---- pk_run: the whole pickle as objects ------------------------------------ */

size_t pk_vm_bytes(size_t n)
{
    size_t cap = n + 2;
    return 64 + cap * (sizeof(pk_value) + sizeof(pk_cell) + 3 * sizeof(uint32_t));
}

static kvgpt_status vm_fail(pk_vm *vm, uint64_t at, const char *why, kvgpt_error *err)
{
    return kv_fail(err, KVGPT_ERR_CKPT, "%s: byte %llu: %s", vm->what, (unsigned long long)at, why);
}

static uint32_t new_value(pk_vm *vm, pk_type t)
{
    if (vm->n_val >= vm->cap) return PK_NIL;
    pk_value *v = &vm->val[vm->n_val];
    memset(v, 0, sizeof *v);
    v->type = (uint8_t)t;
    v->a = PK_NIL;
    if (t == PK_TUPLE || t == PK_LIST || t == PK_DICT) v->u.c.last = PK_NIL;
    return vm->n_val++;
}

static int add_item(pk_vm *vm, uint32_t container, uint32_t item)
{
    if (vm->n_cell >= vm->cap) return 0;
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

int pk_str_eq(const pk_vm *vm, uint32_t v, const char *s)
{
    if (v == PK_NIL || V(vm, v)->type != PK_STR) return 0;
    size_t n = strlen(s);
    return V(vm, v)->u.len == n && memcmp(vm->p + V(vm, v)->a, s, n) == 0;
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
    for (uint32_t i = 0; i < V(vm, v)->u.c.n; i++)
        if (!is_type(vm, pk_item(vm, v, i), PK_INT)) return 0;
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
        uint32_t a[7];
        for (uint32_t i = 0; i < 7; i++) a[i] = pk_item(vm, args, i);
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
    if (idx >= vm->cap) return vm_fail(vm, op->at, "memo index larger than the pickle could need", err);
    if (vm->sp <= fence(vm)) return vm_fail(vm, op->at, "memo put with an empty stack", err);
    vm->memo[idx] = vm->stack[vm->sp - 1];
    return KVGPT_OK;
}

/* Pops the items above the last MARK: *base is where they start. */
static kvgpt_status pop_mark(pk_vm *vm, const pk_op *op, uint32_t *base, kvgpt_error *err)
{
    if (!vm->n_marks) return vm_fail(vm, op->at, "an opcode that needs a MARK found none", err);
    *base = vm->marks[--vm->n_marks];
    return KVGPT_OK;
}

static kvgpt_status vm_step(pk_vm *vm, const pk_op *op, int *stop, kvgpt_error *err)
{
    uint32_t base = 0, v = PK_NIL, avail = vm->sp - fence(vm);
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
    case OP_MARK: vm->marks[vm->n_marks++] = vm->sp; return KVGPT_OK;
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
        if ((v = new_value(vm, PK_STR)) != PK_NIL) {
            vm->val[v].a = (uint32_t)op->str;
            vm->val[v].u.len = (uint32_t)op->len;
        }
        break;
    case OP_GLOBAL:
        if ((v = new_value(vm, PK_GLOBAL)) != PK_NIL) vm->val[v].sub = (uint8_t)op->i;
        break;
    case OP_STACK_GLOBAL: {
        uint32_t name = vm->stack[--vm->sp], mod = vm->stack[--vm->sp];
        if (!is_type(vm, mod, PK_STR) || !is_type(vm, name, PK_STR))
            return vm_fail(vm, op->at, "STACK_GLOBAL needs two strings", err);
        int g = global_id((const char *)vm->p + V(vm, mod)->a, V(vm, mod)->u.len,
                          (const char *)vm->p + V(vm, name)->a, V(vm, name)->u.len);
        if (g < 0)
            return bad_global(vm->what, op->at, (const char *)vm->p + V(vm, mod)->a, V(vm, mod)->u.len,
                              (const char *)vm->p + V(vm, name)->a, V(vm, name)->u.len, err);
        if ((v = new_value(vm, PK_GLOBAL)) != PK_NIL) vm->val[v].sub = (uint8_t)g;
        break;
    }
    case OP_TUPLE: case OP_TUPLE1: case OP_TUPLE2: case OP_TUPLE3:
        if (code == OP_TUPLE) {
            if ((s = pop_mark(vm, op, &base, err))) return s;
        } else {
            base = vm->sp - (uint32_t)(code - OP_TUPLE1 + 1);
        }
        if ((v = new_value(vm, PK_TUPLE)) == PK_NIL) break;
        for (uint32_t i = base; i < vm->sp; i++)
            if (!add_item(vm, v, vm->stack[i])) return vm_fail(vm, op->at, "out of interpreter cells", err);
        vm->sp = base;
        break;
    case OP_SETITEM: case OP_SETITEMS: case OP_APPEND: case OP_APPENDS: {
        int dict = code == OP_SETITEM || code == OP_SETITEMS;
        if (code == OP_SETITEMS || code == OP_APPENDS) {
            if ((s = pop_mark(vm, op, &base, err))) return s;
            if (dict && (vm->sp - base) % 2)
                return vm_fail(vm, op->at, "SETITEMS with an odd number of items", err);
        } else {
            base = vm->sp - (dict ? 2 : 1);
        }
        if (base <= fence(vm) || !is_type(vm, vm->stack[base - 1], dict ? PK_DICT : PK_LIST))
            return vm_fail(vm, op->at, dict ? "SETITEM(S) on something that is not a dict"
                                            : "APPEND(S) on something that is not a list", err);
        for (uint32_t i = base; i < vm->sp; i++)
            if (!add_item(vm, vm->stack[base - 1], vm->stack[i]))
                return vm_fail(vm, op->at, "out of interpreter cells", err);
        vm->sp = base;
        return KVGPT_OK;
    }
    case OP_BINPUT: case OP_LONG_BINPUT: case OP_MEMOIZE: return memo_put(vm, op, err);
    case OP_BINGET: case OP_LONG_BINGET:
        if ((uint64_t)op->i >= vm->cap || vm->memo[op->i] == PK_NIL)
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
    if (v == PK_NIL) return vm_fail(vm, op->at, "out of interpreter objects", err);
    if (vm->sp >= vm->cap) return vm_fail(vm, op->at, "stack overflow", err);
    vm->stack[vm->sp++] = v;
    return KVGPT_OK;
}

kvgpt_status pk_run(pk_vm *vm, const void *pickle, size_t n, int torch, const char *what, void *scratch,
                    size_t scratch_bytes, kvgpt_error *err)
{
    memset(vm, 0, sizeof *vm);
    if (n > CKPT_MAX_PICKLE)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: %zu bytes of pickle is absurd (limit %u)", what, n,
                       CKPT_MAX_PICKLE);
    if (scratch_bytes < pk_vm_bytes(n))
        return kv_fail(err, KVGPT_ERR_NOMEM, "%s: interpreter scratch too small: Requested %zu, available %zu",
                       what, pk_vm_bytes(n), scratch_bytes);
    vm->p = pickle;
    vm->n = n;
    vm->what = what;
    vm->torch = torch;
    vm->cap = (uint32_t)(n + 2);
    char *m = (char *)(((uintptr_t)scratch + 15) & ~(uintptr_t)15);
    vm->val = (pk_value *)(void *)m;
    vm->cell = (pk_cell *)(void *)(m + vm->cap * sizeof(pk_value));
    vm->stack = (uint32_t *)(void *)(m + vm->cap * (sizeof(pk_value) + sizeof(pk_cell)));
    vm->marks = vm->stack + vm->cap;
    vm->memo = vm->marks + vm->cap;
    for (uint32_t i = 0; i < vm->cap; i++) vm->memo[i] = PK_NIL;
    vm->root = PK_NIL;

    pk_src src;
    src_init(&src, pickle, NULL, 0, n, what, torch);
    for (int stop = 0; !stop;) {
        pk_op op;
        kvgpt_status s = pk_next(&src, &op, err);
        if (!s) s = vm_step(vm, &op, &stop, err);
        if (s) return s;
    }
    if (src.pos != n)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: %llu bytes after STOP", what, (unsigned long long)(n - src.pos));
    return KVGPT_OK;
}

/* ---- pk_scan_args: root[key]'s scalars, streaming, fixed state ---------------
 * Tokens stand for stack items: scalars and strings keep their value, dicts
 * are dicts, everything else is OTHER. Only the bottom SCAN_SLOTS items are
 * kept (deeper ones are counted), which is all the question needs: the root
 * dict at 0, its items above it. A memo reference (REF) is resolved, when it
 * matters, by a second pass that stops at the put it refers to. */
#define SCAN_SLOTS 256
#define SCAN_MARKS 256
#define SCAN_RESOLVE_DEPTH 4

enum { TK_OTHER, TK_NONE, TK_BOOL, TK_INT, TK_FLOAT, TK_STR, TK_DICT, TK_REF, TK_ODICT };

typedef struct {
    uint8_t t;
    uint32_t at;             /* REF: offset of the BINGET; STR: length */
    union { int64_t i; double f; uint64_t off; } u;
} tok;

typedef struct {
    pk_src src;
    tok slot[SCAN_SLOTS];
    uint64_t h;              /* stack height */
    uint64_t marks[SCAN_MARKS];
    int n_marks;
    int memo_mode;
    uint64_t memo_next;
    /* the question */
    const char *key;
    uint64_t cap_at;         /* slot of the dict being captured; 0: none */
    tok cap_tok[PK_MAX_ARGS][2];
    int n_cap, found;
    tok out_tok[PK_MAX_ARGS][2];
    int *n_out;
    /* resolve mode: stop at the last put of memo index want before `before` */
    int resolving;
    int64_t want;
    uint64_t before;
    tok got;
    int have_got;
} scan;

static tok slot_at(const scan *sc, uint64_t i)
{
    tok other = {TK_OTHER, 0, {0}};
    return i < SCAN_SLOTS ? sc->slot[i] : other;
}

static void push(scan *sc, tok t)
{
    if (sc->h < SCAN_SLOTS) sc->slot[sc->h] = t;
    sc->h++;
}

static uint64_t scan_fence(const scan *sc) { return sc->n_marks ? sc->marks[sc->n_marks - 1] : 0; }

static int tok_str_eq(scan *sc, tok t, const char *s, kvgpt_error *err)
{
    const uint8_t *p;
    size_t n = strlen(s);
    if (t.t != TK_STR || t.at != n) return 0;
    if (src_bytes(&sc->src, t.u.off, n, &p, err)) return 0;
    return memcmp(p, s, n) == 0;
}

/* Is slot i a key slot of the root dict (items alternate key, value above it)? */
static int root_key_slot(const scan *sc, uint64_t i)
{
    if (sc->h == 0 || slot_at(sc, 0).t != TK_DICT || i < 1) return 0;
    if (sc->n_marks == 0) return i == 1;
    return sc->marks[0] == 1 && (i - 1) % 2 == 0 && (sc->n_marks == 1 || sc->marks[1] > i + 1);
}

static kvgpt_status scan_setitems(scan *sc, uint64_t dict, uint64_t from, uint64_t to, kvgpt_error *err)
{
    if (dict == 0 && slot_at(sc, 0).t == TK_DICT) {
        for (uint64_t j = from; j + 1 < to; j += 2) {
            if (!tok_str_eq(sc, slot_at(sc, j), sc->key, err)) continue;
            tok v = slot_at(sc, j + 1);
            if (v.t != TK_DICT)
                return kv_fail(err, KVGPT_ERR_CKPT, "%s: \"%s\" is not a plain dict written in place", sc->src.what,
                               sc->key);
            if (sc->cap_at == j + 1) {
                memcpy(sc->out_tok, sc->cap_tok, sizeof sc->cap_tok);
                *sc->n_out = sc->n_cap;
            } else {
                *sc->n_out = 0;   /* an empty dict */
            }
            sc->found = 1;
        }
        sc->cap_at = 0;   /* what was captured is consumed (or belonged to another key's slot) */
        sc->n_cap = 0;
        return KVGPT_OK;
    }
    /* Items set into the dict that is the root's value for key. */
    if (dict < 2 || !root_key_slot(sc, dict - 1) || !tok_str_eq(sc, slot_at(sc, dict - 1), sc->key, err))
        return KVGPT_OK;
    if (sc->cap_at != dict) {
        sc->cap_at = dict;
        sc->n_cap = 0;
    }
    for (uint64_t j = from; j + 1 < to; j += 2) {
        if (sc->n_cap >= PK_MAX_ARGS)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: \"%s\" has more than %d entries", sc->src.what, sc->key,
                           PK_MAX_ARGS);
        sc->cap_tok[sc->n_cap][0] = slot_at(sc, j);
        sc->cap_tok[sc->n_cap][1] = slot_at(sc, j + 1);
        sc->n_cap++;
    }
    return KVGPT_OK;
}

static kvgpt_status scan_fail(scan *sc, const pk_op *op, const char *why, kvgpt_error *err)
{
    return kv_fail(err, KVGPT_ERR_CKPT, "%s: byte %llu: %s", sc->src.what, (unsigned long long)op->at, why);
}

static kvgpt_status scan_step(scan *sc, const pk_op *op, int *stop, kvgpt_error *err)
{
    tok t = {TK_OTHER, 0, {0}};
    uint64_t avail = sc->h - scan_fence(sc), base;
    int code = op->code;
    switch (code) {
    case OP_PROTO: case OP_FRAME: return KVGPT_OK;
    case OP_STOP:
        if (sc->h != 1 || sc->n_marks) return scan_fail(sc, op, "STOP with more than one object left", err);
        *stop = 1;
        return KVGPT_OK;
    case OP_MARK:
        if (sc->n_marks >= SCAN_MARKS) return scan_fail(sc, op, "MARKs nested deeper than 256", err);
        sc->marks[sc->n_marks++] = sc->h;
        return KVGPT_OK;
    case OP_BINPUT: case OP_LONG_BINPUT: case OP_MEMOIZE: {
        int mode = code == OP_MEMOIZE ? 2 : 1;
        if (sc->memo_mode && sc->memo_mode != mode) return scan_fail(sc, op, "mixes MEMOIZE and BINPUT", err);
        sc->memo_mode = mode;
        int64_t idx = mode == 2 ? (int64_t)sc->memo_next++ : op->i;
        if (avail < 1) return scan_fail(sc, op, "memo put with an empty stack", err);
        if (sc->resolving && idx == sc->want && op->at < sc->before) {
            sc->got = slot_at(sc, sc->h - 1);
            sc->have_got = 1;
        }
        return KVGPT_OK;
    }
    case OP_SETITEM: case OP_SETITEMS: case OP_APPEND: case OP_APPENDS: {
        int dict = code == OP_SETITEM || code == OP_SETITEMS;
        if (code == OP_SETITEMS || code == OP_APPENDS) {
            if (!sc->n_marks) return scan_fail(sc, op, "an opcode that needs a MARK found none", err);
            base = sc->marks[--sc->n_marks];
        } else {
            if (avail < (dict ? 3u : 2u)) return scan_fail(sc, op, "stack underflow", err);
            base = sc->h - (dict ? 2 : 1);
        }
        if (base <= scan_fence(sc)) return scan_fail(sc, op, "SETITEM(S)/APPEND(S) without a container", err);
        if (dict && !sc->resolving) {
            kvgpt_status s = scan_setitems(sc, base - 1, base, sc->h, err);
            if (s) return s;
        }
        sc->h = base;
        return KVGPT_OK;
    }
    default: break;
    }
    /* Everything else pops a fixed count (or to a MARK) and pushes one token. */
    uint64_t pops = 0;
    switch (code) {
    case OP_TUPLE:
        if (!sc->n_marks) return scan_fail(sc, op, "an opcode that needs a MARK found none", err);
        sc->h = sc->marks[--sc->n_marks];
        break;
    case OP_TUPLE1: case OP_BINPERSID: pops = 1; break;
    case OP_TUPLE2: case OP_REDUCE: case OP_STACK_GLOBAL: pops = 2; break;
    case OP_TUPLE3: pops = 3; break;
    case OP_BUILD: pops = 1; break;
    default: break;
    }
    if (avail < pops + (code == OP_BUILD)) return scan_fail(sc, op, "stack underflow", err);
    switch (code) {
    case OP_NONE: t.t = TK_NONE; break;
    case OP_NEWTRUE: case OP_NEWFALSE: t.t = TK_BOOL; t.u.i = code == OP_NEWTRUE; break;
    case OP_BININT: case OP_BININT1: case OP_BININT2: case OP_LONG1: t.t = TK_INT; t.u.i = op->i; break;
    case OP_BINFLOAT: t.t = TK_FLOAT; t.u.f = op->f; break;
    case OP_BINUNICODE: case OP_SHORT_BINUNICODE:
        t.t = TK_STR;
        t.u.off = op->str;
        t.at = (uint32_t)op->len;
        break;
    case OP_EMPTY_DICT: t.t = TK_DICT; break;
    case OP_GLOBAL: t.t = op->i == PK_G_ORDERED_DICT ? TK_ODICT : TK_OTHER; break;
    case OP_BINGET: case OP_LONG_BINGET: t.t = TK_REF; t.u.i = op->i; t.at = (uint32_t)op->at; break;
    case OP_REDUCE: t.t = slot_at(sc, sc->h - 2).t == TK_ODICT ? TK_DICT : TK_OTHER; break;
    case OP_STACK_GLOBAL: {
        tok mod = slot_at(sc, sc->h - 2), name = slot_at(sc, sc->h - 1);
        char a[PK_NAME_MAX], b[PK_NAME_MAX];
        const uint8_t *p;
        if (mod.t != TK_STR || name.t != TK_STR || mod.at > PK_NAME_MAX || name.at > PK_NAME_MAX)
            return scan_fail(sc, op, "STACK_GLOBAL needs two short strings", err);
        if (src_bytes(&sc->src, mod.u.off, mod.at, &p, err)) return KVGPT_ERR_CKPT;
        memcpy(a, p, mod.at);
        if (src_bytes(&sc->src, name.u.off, name.at, &p, err)) return KVGPT_ERR_CKPT;
        memcpy(b, p, name.at);
        int g = global_id(a, mod.at, b, name.at);
        if (g < 0) return bad_global(sc->src.what, op->at, a, mod.at, b, name.at, err);
        t.t = g == PK_G_ORDERED_DICT ? TK_ODICT : TK_OTHER;
        break;
    }
    case OP_BUILD: sc->h--; return KVGPT_OK;   /* the object below keeps its token */
    default: break;   /* EMPTY_LIST/TUPLE, TUPLEs, BINPERSID: OTHER */
    }
    sc->h -= pops;
    push(sc, t);
    return KVGPT_OK;
}

static kvgpt_status scan_pass(scan *sc, kvgpt_error *err)
{
    sc->src.pos = 0;
    sc->h = 0;
    sc->n_marks = 0;
    sc->memo_mode = 0;
    sc->memo_next = 0;
    for (int stop = 0; !stop;) {
        pk_op op;
        kvgpt_status s = pk_next(&sc->src, &op, err);
        if (!s) s = scan_step(sc, &op, &stop, err);
        if (s) return s;
        if (sc->resolving && sc->src.pos >= sc->before) return KVGPT_OK;
    }
    return KVGPT_OK;
}

/* Follows memo references back to the token that was put. */
static kvgpt_status resolve(scan *sc, tok *t, kvgpt_error *err)
{
    for (int depth = 0; t->t == TK_REF; depth++) {
        if (depth == SCAN_RESOLVE_DEPTH) {
            t->t = TK_OTHER;
            return KVGPT_OK;
        }
        sc->resolving = 1;
        sc->want = t->u.i;
        sc->before = t->at;
        sc->have_got = 0;
        kvgpt_status s = scan_pass(sc, err);
        sc->resolving = 0;
        if (s) return s;
        if (!sc->have_got)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: byte %u: memo get of an index never put", sc->src.what, t->at);
        *t = sc->got;
    }
    return KVGPT_OK;
}

kvgpt_status pk_scan_args(lf_file *f, uint64_t off, uint64_t n, const char *what, const char *dict_key,
                          pk_arg *args, int *n_args, kvgpt_error *err)
{
    scan sc;   /* about 13 KiB: the plan runs it on the stack of whoever plans */
    memset(&sc, 0, sizeof sc);
    *n_args = 0;
    if (n > CKPT_MAX_PICKLE)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: %llu bytes of pickle is absurd (limit %u)", what,
                       (unsigned long long)n, CKPT_MAX_PICKLE);
    src_init(&sc.src, NULL, f, off, n, what, 1);
    sc.key = dict_key;
    sc.n_out = n_args;
    kvgpt_status s = scan_pass(&sc, err);
    if (s) return s;
    if (sc.src.pos != n)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: %llu bytes after STOP", what, (unsigned long long)(n - sc.src.pos));
    if (!sc.found)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: no \"%s\" dict in the checkpoint", what, dict_key);
    for (int i = 0; i < *n_args; i++) {
        tok k = sc.out_tok[i][0], v = sc.out_tok[i][1];
        if ((s = resolve(&sc, &k, err)) || (s = resolve(&sc, &v, err))) return s;
        pk_arg *a = &args[i];
        memset(a, 0, sizeof *a);
        const uint8_t *p;
        if (k.t == TK_STR && k.at < sizeof a->key) {
            if ((s = src_bytes(&sc.src, k.u.off, k.at, &p, err))) return s;
            memcpy(a->key, p, k.at);
        }
        a->type = v.t == TK_NONE ? PK_NONE : v.t == TK_BOOL ? PK_BOOL : v.t == TK_INT ? PK_INT
                : v.t == TK_FLOAT ? PK_FLOAT : PK_TUPLE;
        a->i = v.u.i;
        a->f = v.t == TK_FLOAT ? v.u.f : 0.0;
    }
    return KVGPT_OK;
}
