/* loader/pickle_int.h — the opcode decoder that both pickle readers share
 * (pickle.c's interpreter, pickle_scan.c's streaming scan). Internal to loader/. */
#ifndef KVGPT_PICKLE_INT_H
#define KVGPT_PICKLE_INT_H

#include "loader/ckpt.h"

enum {
    OP_PROTO = 0x80, OP_FRAME = 0x95, OP_STOP = '.', OP_MARK = '(', OP_EMPTY_DICT = '}', OP_EMPTY_LIST = ']',
    OP_EMPTY_TUPLE = ')', OP_TUPLE = 't', OP_TUPLE1 = 0x85, OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87,
    OP_SETITEM = 's', OP_SETITEMS = 'u', OP_APPEND = 'a', OP_APPENDS = 'e', OP_BINUNICODE = 'X',
    OP_SHORT_BINUNICODE = 0x8c, OP_BININT = 'J', OP_BININT1 = 'K', OP_BININT2 = 'M', OP_LONG1 = 0x8a,
    OP_BINFLOAT = 'G', OP_NEWTRUE = 0x88, OP_NEWFALSE = 0x89, OP_NONE = 'N', OP_BINPUT = 'q',
    OP_LONG_BINPUT = 'r', OP_MEMOIZE = 0x94, OP_BINGET = 'h', OP_LONG_BINGET = 'j', OP_GLOBAL = 'c',
    OP_STACK_GLOBAL = 0x93, OP_REDUCE = 'R', OP_BUILD = 'b', OP_BINPERSID = 'Q'
};

#define PK_NAME_MAX 128   /* a GLOBAL's module or name */

/* The pickle, n bytes at base in f, read through a caller-given window. */
typedef struct {
    lf_file *f;
    uint64_t base, n, pos;   /* file offset of the pickle, its length, the next byte */
    uint8_t *win;            /* win_cap bytes: at least 2 * PK_NAME_MAX + 2 (a GLOBAL's names) */
    size_t win_cap;
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
    uint64_t str, len;       /* string bytes: offset in the pickle, length (not read: see pk_src_bytes) */
} pk_op;

void pk_src_init(pk_src *s, lf_file *f, uint64_t base, uint64_t n, void *win, size_t win_cap, const char *what,
                 int torch);
/* Makes n <= win_cap bytes at off visible; *out points into the window. */
kvgpt_status pk_src_bytes(pk_src *s, uint64_t off, size_t n, const uint8_t **out, kvgpt_error *err);
/* Decodes the next opcode and its argument; refuses anything outside the subset. */
kvgpt_status pk_next(pk_src *s, pk_op *op, kvgpt_error *err);

/* The allowed global with this module and name, or -1. */
int pk_global_id(const char *mod, size_t ml, const char *name, size_t nl);
/* 1 + the index of the allowed module (or global name) s[0..n) spells; 0 if none. */
int pk_global_module(const char *s, size_t n);
int pk_global_name_of(const char *s, size_t n);
/* The allowed global of a module and a name (as the two above give them), or -1. */
int pk_global_of(int module, int name);
kvgpt_status pk_bad_global(const char *what, uint64_t at, const char *mod, size_t ml, const char *name, size_t nl,
                           kvgpt_error *err);
#endif
