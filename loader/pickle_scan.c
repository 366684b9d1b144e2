/* loader/pickle_scan.c — the plan's questions about ckpt.pt's data.pkl,
 * answered by streaming it with a fixed state (no interpreter memory):
 * the scalar entries of root["model_args"], and how many objects, cells,
 * stack slots, MARKs, memo entries and string bytes pk_run will need.
 *
 * Tokens stand for stack items: scalars and strings keep their value, dicts
 * are dicts, everything else is OTHER. Only the bottom SCAN_SLOTS items are
 * kept (deeper ones are counted), which is all the question needs: the root
 * dict at 0, its items above it. Memo references (REF) among the answers are
 * resolved together, in one more pass per link of a chain of memo copies
 * (at most PK_RESOLVE_DEPTH): the scan is linear in the pickle's length. */
#include "loader/pickle_int.h"
#include "common/status.h"

#include <string.h>

/* The state lives on the stack of whoever plans (no memory is taken before
 * the plan says how much), so it is kept small: about 8 KiB. */
#define SCAN_SLOTS 128
#define SCAN_WANTS (2 * PK_MAX_ARGS)
#define SCAN_WINDOW 1024

enum { TK_OTHER, TK_NONE, TK_BOOL, TK_INT, TK_FLOAT, TK_STR, TK_DICT, TK_REF, TK_ODICT };

typedef struct {
    union { int64_t i; double f; uint64_t off; } u;
    uint32_t at;             /* REF: offset of the BINGET; STR: length */
    uint8_t t;
    uint8_t is_key;          /* STR: equal to the question's key */
    uint8_t mod, name;       /* STR: 1 + the allowed module / global name it spells, or 0 */
} tok;

/* A memo reference among the answers, waiting for the value its index held. */
typedef struct {
    uint32_t before;         /* the BINGET's offset: the put must come earlier */
    uint16_t group;          /* its memo index, as a slot of group_idx[] */
    uint8_t entry, side;     /* the answer it is: out_tok[entry][side] */
} want;

typedef struct {
    pk_src src;
    tok slot[SCAN_SLOTS];
    uint64_t h;              /* stack height */
    uint32_t marks[PK_MAX_MARKS];
    int n_marks;
    int memo_mode;
    uint64_t memo_next, memo_size;
    pk_counts need;
    int counting;            /* the first pass counts; resolve passes only look for puts */
    /* the question */
    const char *key;
    size_t key_len;
    uint64_t cap_at;         /* slot of the dict being captured; 0: none */
    tok cap_tok[PK_MAX_ARGS][2];
    int n_cap, found;
    tok out_tok[PK_MAX_ARGS][2];
    int *n_out;
    /* resolve passes */
    int resolving;
    want wants[SCAN_WANTS];
    int n_wants, next_want;
    uint32_t group_idx[SCAN_WANTS];  /* sorted (memo indices are 4 bytes in a pickle) */
    tok group_val[SCAN_WANTS];
    int n_groups;
    uint8_t window[SCAN_WINDOW];
} scan;

static tok slot_at(const scan *sc, uint64_t i)
{
    tok other = {{0}, 0, TK_OTHER, 0, 0, 0};
    return i < SCAN_SLOTS ? sc->slot[i] : other;
}

static void push(scan *sc, tok t)
{
    if (sc->h < SCAN_SLOTS) sc->slot[sc->h] = t;
    sc->h++;
    if (sc->counting && sc->h > sc->need.stack) sc->need.stack = sc->h;
}

static uint64_t scan_fence(const scan *sc) { return sc->n_marks ? sc->marks[sc->n_marks - 1] : 0; }

/* Is slot i a key slot of the root dict (items alternate key, value above it)? */
static int root_key_slot(const scan *sc, uint64_t i)
{
    if (sc->h == 0 || slot_at(sc, 0).t != TK_DICT || i < 1) return 0;
    if (sc->n_marks == 0) return i == 1;
    return sc->marks[0] == 1 && (i - 1) % 2 == 0 && (sc->n_marks == 1 || sc->marks[1] > i + 1);
}

static int is_key(tok t) { return t.t == TK_STR && t.is_key; }

static kvgpt_status scan_setitems(scan *sc, uint64_t dict, uint64_t from, uint64_t to, kvgpt_error *err)
{
    if (dict == 0 && slot_at(sc, 0).t == TK_DICT) {
        for (uint64_t j = from; j + 1 < to; j += 2) {
            if (!is_key(slot_at(sc, j))) continue;
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
    if (dict < 2 || !root_key_slot(sc, dict - 1) || !is_key(slot_at(sc, dict - 1))) return KVGPT_OK;
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

/* A string token: what the scan will ask of it is decided now, while its
 * bytes are in the window, so that nothing is read again later. */
static kvgpt_status string_tok(scan *sc, const pk_op *op, tok *t, kvgpt_error *err)
{
    t->t = TK_STR;
    t->u.off = op->str;
    t->at = (uint32_t)op->len;
    if (sc->counting && op->len <= PK_STR_KEEP) sc->need.pool += op->len;
    if (op->len > PK_NAME_MAX && op->len != sc->key_len) return KVGPT_OK;
    const uint8_t *p;
    kvgpt_status s = pk_src_bytes(&sc->src, op->str, (size_t)op->len, &p, err);
    if (s) return s;
    t->is_key = op->len == sc->key_len && memcmp(p, sc->key, sc->key_len) == 0;
    if (op->len <= PK_NAME_MAX) {
        t->mod = (uint8_t)pk_global_module((const char *)p, (size_t)op->len);
        t->name = (uint8_t)pk_global_name_of((const char *)p, (size_t)op->len);
    }
    return KVGPT_OK;
}

static kvgpt_status stack_global(scan *sc, const pk_op *op, tok *t, kvgpt_error *err)
{
    tok mod = slot_at(sc, sc->h - 2), name = slot_at(sc, sc->h - 1);
    if (mod.t != TK_STR || name.t != TK_STR || mod.at > PK_NAME_MAX || name.at > PK_NAME_MAX)
        return scan_fail(sc, op, "STACK_GLOBAL needs two short strings", err);
    int g = pk_global_of(mod.mod, name.name);
    if (g < 0) {
        /* Only the message needs the names themselves. */
        char a[PK_NAME_MAX], b[PK_NAME_MAX];
        const uint8_t *p;
        if (pk_src_bytes(&sc->src, mod.u.off, mod.at, &p, err)) return KVGPT_ERR_CKPT;
        memcpy(a, p, mod.at);
        if (pk_src_bytes(&sc->src, name.u.off, name.at, &p, err)) return KVGPT_ERR_CKPT;
        memcpy(b, p, name.at);
        return pk_bad_global(sc->src.what, op->at, a, mod.at, b, name.at, err);
    }
    t->t = g == PK_G_ORDERED_DICT ? TK_ODICT : TK_OTHER;
    return KVGPT_OK;
}

/* Resolve passes: the group of memo index idx, or -1. */
static int group_of(const scan *sc, uint64_t idx)
{
    int lo = 0, hi = sc->n_groups;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (sc->group_idx[mid] == idx) return mid;
        if (sc->group_idx[mid] < idx) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static kvgpt_status memo_put(scan *sc, const pk_op *op, uint64_t avail, kvgpt_error *err)
{
    int mode = op->code == OP_MEMOIZE ? 2 : 1;
    if (sc->memo_mode && sc->memo_mode != mode) return scan_fail(sc, op, "mixes MEMOIZE and BINPUT", err);
    sc->memo_mode = mode;
    uint64_t idx = mode == 2 ? sc->memo_next++ : (uint64_t)op->i;
    /* The memo is a table as long as the largest index put (Python's pickler
     * numbers from 0 without gaps); the caller bounds it. */
    if (idx >= sc->memo_size) sc->memo_size = idx + 1;
    if (sc->counting) sc->need.memo = sc->memo_size;
    if (avail < 1) return scan_fail(sc, op, "memo put with an empty stack", err);
    if (sc->resolving) {
        int g = group_of(sc, idx);
        if (g >= 0) sc->group_val[g] = slot_at(sc, sc->h - 1);
    }
    return KVGPT_OK;
}

static kvgpt_status scan_step(scan *sc, const pk_op *op, int *stop, kvgpt_error *err)
{
    tok t = {{0}, 0, TK_OTHER, 0, 0, 0};
    uint64_t avail = sc->h - scan_fence(sc), base;
    int code = op->code;
    kvgpt_status s;
    switch (code) {
    case OP_PROTO: case OP_FRAME: return KVGPT_OK;
    case OP_STOP:
        if (sc->h != 1 || sc->n_marks) return scan_fail(sc, op, "STOP with more than one object left", err);
        *stop = 1;
        return KVGPT_OK;
    case OP_MARK:
        if (sc->n_marks >= PK_MAX_MARKS) return scan_fail(sc, op, "MARKs nested deeper than 256", err);
        sc->marks[sc->n_marks++] = (uint32_t)sc->h;   /* a pickle of at most 256 MiB: heights fit */
        if (sc->counting && (uint64_t)sc->n_marks > sc->need.marks) sc->need.marks = (uint64_t)sc->n_marks;
        return KVGPT_OK;
    case OP_BINPUT: case OP_LONG_BINPUT: case OP_MEMOIZE: return memo_put(sc, op, avail, err);
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
        if (sc->counting) sc->need.cells += sc->h - base;
        if (sc->counting && dict) sc->need.dict_items += sc->h - base;
        if (dict && !sc->resolving && (s = scan_setitems(sc, base - 1, base, sc->h, err))) return s;
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
        base = sc->marks[--sc->n_marks];
        if (sc->counting) sc->need.cells += sc->h - base;
        sc->h = base;
        break;
    case OP_TUPLE1: case OP_BINPERSID: case OP_BUILD: pops = 1; break;
    case OP_TUPLE2: case OP_REDUCE: case OP_STACK_GLOBAL: pops = 2; break;
    case OP_TUPLE3: pops = 3; break;
    default: break;
    }
    if (avail < pops + (code == OP_BUILD)) return scan_fail(sc, op, "stack underflow", err);
    if (sc->counting && code >= OP_TUPLE1 && code <= OP_TUPLE3) sc->need.cells += pops;
    switch (code) {
    case OP_NONE: t.t = TK_NONE; break;
    case OP_NEWTRUE: case OP_NEWFALSE: t.t = TK_BOOL; t.u.i = code == OP_NEWTRUE; break;
    case OP_BININT: case OP_BININT1: case OP_BININT2: case OP_LONG1: t.t = TK_INT; t.u.i = op->i; break;
    case OP_BINFLOAT: t.t = TK_FLOAT; t.u.f = op->f; break;
    case OP_BINUNICODE: case OP_SHORT_BINUNICODE:
        if ((s = string_tok(sc, op, &t, err))) return s;
        break;
    case OP_EMPTY_DICT: t.t = TK_DICT; break;
    case OP_GLOBAL: t.t = op->i == PK_G_ORDERED_DICT ? TK_ODICT : TK_OTHER; break;
    case OP_BINGET: case OP_LONG_BINGET:
        if ((uint64_t)op->i >= sc->memo_size) return scan_fail(sc, op, "memo get of an index never put", err);
        t.t = TK_REF;
        t.u.i = op->i;
        t.at = (uint32_t)op->at;
        break;
    case OP_REDUCE: t.t = slot_at(sc, sc->h - 2).t == TK_ODICT ? TK_DICT : TK_OTHER; break;
    case OP_STACK_GLOBAL:
        if ((s = stack_global(sc, op, &t, err))) return s;
        break;
    case OP_BUILD: sc->h--; return KVGPT_OK;   /* the object below keeps its token */
    default: break;   /* EMPTY_LIST/TUPLE, TUPLEs, BINPERSID: OTHER */
    }
    if (sc->counting && code != OP_BINGET && code != OP_LONG_BINGET) sc->need.values++;
    if (sc->counting && code == OP_BINPERSID) sc->need.persids++;
    sc->h -= pops;
    push(sc, t);
    return KVGPT_OK;
}

/* One pass from the start; a resolve pass stops once every want is answered. */
static kvgpt_status scan_pass(scan *sc, kvgpt_error *err)
{
    sc->src.pos = 0;
    sc->h = 0;
    sc->n_marks = 0;
    sc->memo_mode = 0;
    sc->memo_next = 0;
    sc->memo_size = 0;
    for (int stop = 0; !stop;) {
        pk_op op;
        kvgpt_status s = pk_next(&sc->src, &op, err);
        if (s) return s;
        /* Wants whose BINGET is here take what their index holds now. */
        for (; sc->resolving && sc->next_want < sc->n_wants && sc->wants[sc->next_want].before <= op.at;
             sc->next_want++)
            sc->out_tok[sc->wants[sc->next_want].entry][sc->wants[sc->next_want].side] =
                sc->group_val[sc->wants[sc->next_want].group];
        if (sc->resolving && sc->next_want == sc->n_wants) return KVGPT_OK;
        if ((s = scan_step(sc, &op, &stop, err))) return s;
    }
    return KVGPT_OK;
}

/* Adds a REF token to the wants (sorted by offset) and its index to the groups. */
static void add_want(scan *sc, int entry, int side)
{
    const tok *t = &sc->out_tok[entry][side];
    uint32_t idx = (uint32_t)t->u.i;
    int g = group_of(sc, idx);
    if (g < 0) {
        int i = sc->n_groups++;
        for (; i > 0 && sc->group_idx[i - 1] > idx; i--) sc->group_idx[i] = sc->group_idx[i - 1];
        sc->group_idx[i] = idx;
        for (int k = 0; k < sc->n_wants; k++)
            if (sc->wants[k].group >= i) sc->wants[k].group++;
        g = i;
    }
    int w = sc->n_wants++;
    for (; w > 0 && sc->wants[w - 1].before > t->at; w--) sc->wants[w] = sc->wants[w - 1];
    sc->wants[w].before = t->at;
    sc->wants[w].group = (uint16_t)g;
    sc->wants[w].entry = (uint8_t)entry;
    sc->wants[w].side = (uint8_t)side;
}

/* Follows the answers' memo references back to the tokens that were put,
 * all of them in each pass; a chain longer than PK_RESOLVE_DEPTH reads as OTHER. */
static kvgpt_status resolve_all(scan *sc, int n, kvgpt_error *err)
{
    for (int depth = 0;; depth++) {
        sc->n_wants = sc->n_groups = sc->next_want = 0;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 2; k++)
                if (sc->out_tok[i][k].t == TK_REF) {
                    if (depth == PK_RESOLVE_DEPTH) sc->out_tok[i][k].t = TK_OTHER;
                    else add_want(sc, i, k);
                }
        if (sc->n_wants == 0) return KVGPT_OK;
        for (int g = 0; g < sc->n_groups; g++) sc->group_val[g].t = TK_OTHER;
        sc->resolving = 1;
        kvgpt_status s = scan_pass(sc, err);
        sc->resolving = 0;
        if (s) return s;
        if (sc->next_want != sc->n_wants)
            return kv_fail(err, KVGPT_ERR_CKPT, "%s: a memo reference was not found again (changed while read?)",
                           sc->src.what);
    }
}

kvgpt_status pk_scan_args(lf_file *f, uint64_t off, uint64_t n, const char *what, const char *dict_key,
                          const char *const *keys, int n_keys, pk_arg *args, pk_counts *need, kvgpt_error *err)
{
    scan sc;
    int n_out = 0;
    memset(&sc, 0, sizeof sc);
    memset(args, 0, (size_t)n_keys * sizeof *args);
    if (n > CKPT_MAX_PICKLE)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: %llu bytes of pickle is absurd (limit %u)", what,
                       (unsigned long long)n, CKPT_MAX_PICKLE);
    pk_src_init(&sc.src, f, off, n, sc.window, sizeof sc.window, what, 1);
    sc.key = dict_key;
    sc.key_len = strlen(dict_key);
    sc.n_out = &n_out;
    sc.counting = 1;
    kvgpt_status s = scan_pass(&sc, err);
    if (s) return s;
    sc.counting = 0;
    if (sc.src.pos != n)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: %llu bytes after STOP", what, (unsigned long long)(n - sc.src.pos));
    if (!sc.found)
        return kv_fail(err, KVGPT_ERR_CKPT, "%s: no \"%s\" dict in the checkpoint", what, dict_key);
    if ((s = resolve_all(&sc, n_out, err))) return s;
    /* Entries in the order set: a later one with the same key wins, as in Python. */
    for (int i = 0; i < n_out; i++) {
        tok k = sc.out_tok[i][0], v = sc.out_tok[i][1];
        const uint8_t *p;
        if (k.t != TK_STR || k.at > PK_NAME_MAX) continue;
        if ((s = pk_src_bytes(&sc.src, k.u.off, k.at, &p, err))) return s;
        for (int j = 0; j < n_keys; j++) {
            if (strlen(keys[j]) != k.at || memcmp(p, keys[j], k.at) != 0) continue;   /* "n_layer\0x" is not n_layer */
            pk_arg *a = &args[j];
            a->present = 1;
            a->type = v.t == TK_NONE ? PK_NONE : v.t == TK_BOOL ? PK_BOOL : v.t == TK_INT ? PK_INT
                    : v.t == TK_FLOAT ? PK_FLOAT : PK_TUPLE;
            a->i = v.t == TK_FLOAT ? 0 : v.u.i;
            a->f = v.t == TK_FLOAT ? v.u.f : 0.0;
        }
    }
    *need = sc.need;
    return KVGPT_OK;
}
