/* loader/ckpt.h — nanoGPT's own files without Python: ckpt.pt (a torch zip
 * holding a pickle and raw storages) read as the same st_file tensor table
 * the safetensors reader gives; meta.pkl runs through the same interpreter
 * (tokenizer/charmeta.c makes it a char vocabulary).
 *
 * The pickle is interpreted, never executed: only the opcodes torch.save and
 * pickle.dump write for these files (protocols 2 to 4), and only these
 * GLOBALs: collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 * torch._utils._rebuild_parameter and torch.<Type>Storage. Anything else is
 * refused with KVGPT_ERR_CKPT naming the file, the byte and the opcode or
 * global. The interpreter's stack, memo and objects live in caller-given
 * scratch sized by what a first, streaming pass counted (capped by the
 * checkpoint's layer count); nothing recurses, and every reader is linear in
 * the pickle and the zip directory.
 *
 * Tensors must be contiguous row-major (strides of dimensions longer than 1
 * equal the row-major strides); each is a byte range of the ckpt file. The
 * zip must be stored (torch never compresses); every local header must agree
 * with the directory. data.pkl's CRC-32 is checked at open, each storage's as
 * st_read_rows reads it (storages never read, such as the optimizer's, are
 * not read for it). */
#ifndef KVGPT_CKPT_H
#define KVGPT_CKPT_H

#include <stddef.h>
#include <stdint.h>
#include "loader/loader.h"

#define CKPT_MAX_PICKLE (256u << 20)  /* data.pkl / meta.pkl: real ones are KiB */
#define CKPT_MAX_TENSORS 65536        /* entries kept from the state dict */

/* ---- ckpt.pt as a tensor table (loader/ckpt.c) ---------------------------
 *
 * Use exactly like st_open / st_parse / st_close:
 *   ckpt_open(&s, path, &scratch_bytes, &cfg, err);   // reads the zip directory and model_args
 *   ckpt_parse(&s, scratch, scratch_bytes, err);      // the table, in scratch
 *   st_find(&s, "h.0.attn.c_attn.weight"); st_read_rows(&s, t, ...);
 *   st_close(&s);
 * The table holds the "model" state dict minus nanoGPT's causal-mask buffers
 * (*.attn.bias), sorted by name, names as saved (transformer.*, lm_head.weight,
 * _orig_mod.*). s->data_start is 0 and each tensor's begin/end are absolute
 * offsets in the ckpt file, so st_read_rows reads them unchanged. lm_head.weight
 * may share its bytes with transformer.wte.weight: ranges may overlap. */

/* Opens the file, checks the zip directory, finds <root>/data.pkl, reads
 * model_args into *cfg (may be NULL) without taking memory, and sets
 * *scratch_bytes to what ckpt_parse needs. Keeps the file open (st_close). */
kvgpt_status ckpt_open(st_file *s, const char *path, size_t *scratch_bytes, kvgpt_config *cfg, kvgpt_error *err);
/* Interprets data.pkl in scratch and builds the tensor table there; the first
 * *scratch_bytes (from ckpt_open) stay in use until st_close. */
kvgpt_status ckpt_parse(st_file *s, void *scratch, size_t scratch_bytes, kvgpt_error *err);
/* ckpt_open + st_close: the plan's question, no memory taken. */
kvgpt_status ckpt_plan(const char *path, size_t *scratch_bytes, kvgpt_config *cfg, kvgpt_error *err);
/* st_read_rows calls this with the file's bytes [off, off + n) of tensor t
 * as it reads them: each storage's CRC-32 runs along, and is compared with
 * the zip directory's when the storage has been read to its end, or when
 * reading moves on to another storage (what was skipped is read then, once). */
kvgpt_status ckpt_check_read(st_file *s, const st_tensor *t, uint64_t off, const void *bytes, size_t n,
                             kvgpt_error *err);

/* ---- internal to loader/: the zip directory (loader/zip.c) --------------- */
#define ZIP_NAME_MAX 1024
#define ZIP_BUF_MIN 2048                    /* the smallest buffer: an entry's fixed part and longest name */
#define ZIP_BUF_BYTES ((size_t)96 << 10)    /* the load scratch's: a directory read in few large reads */

typedef struct {
    uint64_t cd_off, cd_size, n_entries;   /* the central directory */
} zip_dir;

typedef struct {
    const char *name;                       /* not NUL-terminated; see zip_next */
    size_t name_len;
    uint64_t size;                          /* stored: compressed == uncompressed */
    uint64_t local_off;                     /* local header */
    uint32_t crc;
    unsigned method, flags;
} zip_entry;

/* A file range [.., end) read through a caller's buffer of cap bytes. */
typedef struct {
    lf_file *f;
    unsigned char *buf;
    size_t cap, len;
    uint64_t at, end;                       /* buf holds [at, at + len) */
} zip_window;

/* The central directory read front to back through one buffer. */
typedef struct {
    zip_window w;
    const zip_dir *d;
    uint64_t pos;                           /* next entry */
} zip_cursor;

void zip_window_init(zip_window *w, lf_file *f, uint64_t end, void *buf, size_t cap);
/* Finds and checks the end-of-central-directory records (zip64 included);
 * buf is cap >= ZIP_BUF_MIN bytes of scratch. */
kvgpt_status zip_dir_read(lf_file *f, zip_dir *d, void *buf, size_t cap, kvgpt_error *err);
void zip_cursor_init(zip_cursor *c, lf_file *f, const zip_dir *d, void *buf, size_t cap);
/* The next central directory entry (its extra field must be whole records).
 * e->name points into the cursor's buffer: valid until the next zip_next. */
kvgpt_status zip_next(zip_cursor *c, zip_entry *e, kvgpt_error *err);
/* Where a stored entry's bytes start. Its local header must agree with the
 * directory (name, method, flags, CRC-32 and sizes or a matching data
 * descriptor) and its extra field must be whole records; the bytes must lie
 * inside the file, before the central directory. e->name must not point into
 * buf (cap >= 64 bytes of scratch). */
kvgpt_status zip_data_off(lf_file *f, const zip_dir *d, const zip_entry *e, void *buf, size_t cap, uint64_t *off,
                          kvgpt_error *err);
/* CRC-32 of small things (half-byte table). */
uint32_t zip_crc32(uint32_t crc, const void *p, size_t n);
/* The same, by 8 bytes at a time, with a table zip_crc_table fills (8 KiB). */
void zip_crc_table(uint32_t t[8][256]);
uint32_t zip_crc32_fast(const uint32_t t[8][256], uint32_t crc, const void *p, size_t n);

/* ---- internal to loader/: the pickle subset (loader/pickle.c) ------------ */
#define PK_NIL UINT32_MAX
#define PK_STR_KEEP 256        /* longer strings are skipped, not stored: no key, name or token is that long */
#define PK_WINDOW ((size_t)64 << 10)   /* the pickle is read through a window this large */
#define PK_MAX_MARKS 256

typedef enum {
    PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_TUPLE, PK_LIST, PK_DICT, PK_GLOBAL, PK_STORAGE, PK_TENSOR
} pk_type;

/* The allowed GLOBALs. Storage kinds come last, in pk_storage_size order. */
typedef enum {
    PK_G_ORDERED_DICT, PK_G_REBUILD_TENSOR_V2, PK_G_REBUILD_PARAMETER,
    PK_G_FLOAT, PK_G_HALF, PK_G_BFLOAT16, PK_G_DOUBLE, PK_G_LONG, PK_G_INT, PK_G_SHORT, PK_G_CHAR,
    PK_G_BYTE, PK_G_BOOL, PK_G_COUNT
} pk_global;

typedef struct {
    uint8_t type;            /* pk_type */
    uint8_t sub;             /* GLOBAL and STORAGE: the pk_global */
    uint32_t a;              /* STR: offset in the string pool (PK_NIL: longer than PK_STR_KEEP, not kept);
                                containers: first cell; STORAGE/TENSOR: args tuple */
    union {
        int64_t i;           /* INT, BOOL */
        double f;            /* FLOAT */
        uint32_t len;        /* STR */
        struct { uint32_t n, last; } c;   /* containers: item count (dict: keys + values), last cell */
    } u;
} pk_value;

typedef struct { uint32_t v, next; } pk_cell;

/* What an interpreter run may use (pk_counts in loader/loader.h): objects,
 * container cells, stack slots, MARKs, memo entries, string pool bytes. */
typedef struct {
    const char *what;        /* names it in messages: "ckpt.pt: ckpt/data.pkl" */
    int torch;               /* GLOBAL / REDUCE / BINPERSID allowed (ckpt), or not (meta.pkl) */
    pk_value *val;
    pk_cell *cell;
    uint32_t *stack, *marks, *memo;
    char *pool;
    pk_counts cap;
    uint32_t n_val, n_cell, sp, n_marks, n_memo, memo_next;
    uint64_t pool_used;
    int memo_mode;           /* 0 none yet, 1 BINPUT, 2 MEMOIZE: a pickle uses one */
    uint32_t root;
} pk_vm;

/* Scratch pk_run needs for these limits (the read window included); 0 when
 * the sum overflows. */
size_t pk_vm_bytes(const pk_counts *cap);
/* Runs the pickle (n bytes at off in f, read through a window) to STOP;
 * vm->root is the result. More of anything than cap allows is refused. */
kvgpt_status pk_run(pk_vm *vm, lf_file *f, uint64_t off, uint64_t n, int torch, const char *what,
                    const pk_counts *cap, void *scratch, size_t scratch_bytes, kvgpt_error *err);
/* The value of key in a dict (the last one set, as Python does); PK_NIL when absent. */
uint32_t pk_dict_get(const pk_vm *vm, uint32_t dict, const char *key);
/* Item i of a tuple or list; PK_NIL when out of range. */
uint32_t pk_item(const pk_vm *vm, uint32_t seq, uint32_t i);
int pk_str_eq(const pk_vm *vm, uint32_t v, const char *s);
/* The bytes of a STR value; NULL when it was too long to keep (or is not a STR). */
const char *pk_str(const pk_vm *vm, uint32_t v, size_t *len);
/* Bytes per element of a storage kind; 0 when g is not one. */
size_t pk_storage_size(pk_global g);
const char *pk_global_name(pk_global g);

/* Reads root[dict_key][keys[i]] for each of the n_keys keys (scalars) by
 * streaming the pickle from the file (at off, n bytes) with a fixed state of
 * about 10 KiB on the stack, and counts what pk_run will need for it (*need).
 * Linear in n: at most 1 + PK_RESOLVE_DEPTH passes over the pickle. The
 * interpreter runs the full checks; this answers the plan's questions. */
typedef struct {
    int present;             /* the key is in the dict */
    pk_type type;            /* NONE, BOOL, INT, FLOAT; STR and containers are reported as PK_TUPLE */
    int64_t i;
    double f;
} pk_arg;
#define PK_MAX_ARGS 32         /* entries of the dict kept (more: refused; nanoGPT's has 7) */
#define PK_RESOLVE_DEPTH 4     /* memo references followed (a chain of copies is cut there) */
kvgpt_status pk_scan_args(lf_file *f, uint64_t off, uint64_t n, const char *what, const char *dict_key,
                          const char *const *keys, int n_keys, pk_arg *args, pk_counts *need, kvgpt_error *err);

#endif
