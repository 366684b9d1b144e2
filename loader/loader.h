/* loader/loader.h — reading a model folder's files: config.json,
 * model.safetensors, and the JSON and file readers the tokenizers use. Every file is untrusted: each size and offset is checked
 * before it sizes memory or indexes it, and each failure names the file. */
#ifndef KVGPT_LOADER_H
#define KVGPT_LOADER_H

#include <stddef.h>
#include <stdint.h>
#include "kvgpt.h"

#define LOADER_PATH_MAX 4096

/* ---- files (POSIX open/pread: no stdio buffers, no allocation) ---- */
typedef struct {
    int fd;
    uint64_t size;
    const char *path;        /* the caller's string, for messages: it must outlive the file */
    uint64_t n_reads, bytes_read;   /* what lf_read did: tests hold the readers to linear work */
} lf_file;

/* dir/name into out; KVGPT_ERR_ARG when too long. */
kvgpt_status lf_join(char *out, size_t cap, const char *dir, const char *name, kvgpt_error *err);
/* 1 when something (of any kind) is at path: a folder or FIFO where a file
 * belongs is then refused by lf_size / lf_open with a message saying so. */
int lf_exists(const char *path);
/* Size of a regular file; KVGPT_ERR_IO when it is missing or not a file. */
kvgpt_status lf_size(const char *path, uint64_t *size, kvgpt_error *err);
/* Opens a regular file (never waits on a FIFO); f->path keeps the pointer. */
kvgpt_status lf_open(lf_file *f, const char *path, kvgpt_error *err);
/* Reads exactly n bytes at off; KVGPT_ERR_IO (with "truncated" when the file is short). */
kvgpt_status lf_read(lf_file *f, uint64_t off, void *buf, size_t n, kvgpt_error *err);
void lf_close(lf_file *f);

/* ---- config.json ---- */
#define LOADER_CONFIG_MAX 65536   /* bytes; GPT-2 configs are about 1 KiB */
/* Limits that keep every derived size far from overflow and refuse absurd files. */
#define LOADER_MAX_LAYERS 1024
#define LOADER_MAX_HEADS 1024
#define LOADER_MAX_EMBD 32768
#define LOADER_MAX_CTX 131072
#define LOADER_MAX_VOCAB 4194304

kvgpt_status loader_read_config(const char *dir, kvgpt_config *c, kvgpt_error *err);
/* Checks a config's sizes (also for configs built in code). */
kvgpt_status loader_check_config(const kvgpt_config *c, const char *what, kvgpt_error *err);

/* ---- safetensors ---- */
#define ST_MAX_HEADER (100u << 20)   /* 100 MiB: real headers are a few hundred KiB at most */
#define ST_MAX_DIMS 8

typedef enum { ST_F32, ST_F16, ST_BF16, ST_OTHER } st_dtype;

typedef struct {
    const char *name;        /* into the header buffer; not NUL-terminated */
    size_t name_len;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t begin, end;     /* byte offsets in the data section */
    uint32_t storage;        /* ckpt.pt: the storage record it lies in (its CRC-32 is checked as it is read) */
} st_tensor;

/* What a pickle interpreter run needs (loader/ckpt.h): ckpt_open counts it
 * for ckpt.pt's data.pkl; meta.pkl's is bounded by the vocabulary size. */
typedef struct {
    uint64_t values, cells, stack, marks, memo, pool;
    uint64_t persids;        /* storages the pickle names (BINPERSID), repeats included */
    uint64_t dict_items;     /* keys and values set into dicts (a tensor table has at most half as many rows) */
} pk_counts;

typedef struct {
    lf_file file;
    uint64_t header_len, data_start;
    st_tensor *tensors;      /* sorted by name */
    size_t n_tensors;
    /* ckpt.pt only (loader/ckpt.c): what ckpt_open counted for ckpt_parse, and
     * the storages' CRC-32 state in ckpt_parse's scratch. NULL for safetensors. */
    pk_counts pk;
    uint64_t storages;
    struct ckpt_reads *ck;
} st_file;

/* Opens the file and validates the header length; *scratch_bytes is what
 * st_parse needs (the header plus the tensor table). Keeps the file open. */
kvgpt_status st_open(st_file *s, const char *path, size_t *scratch_bytes, kvgpt_error *err);
/* Reads and validates the whole header into scratch. */
kvgpt_status st_parse(st_file *s, void *scratch, size_t scratch_bytes, kvgpt_error *err);
/* The tensor whose name is one of the accepted prefixes + suffix; NULL when absent. */
const st_tensor *st_find(const st_file *s, const char *suffix);
void st_close(st_file *s);
/* Orders st_tensor entries by name (bytes, then length): the table's order. */
int st_tensor_cmp_name(const void *a, const void *b);
size_t st_dtype_size(st_dtype d);

#endif

/* ---- reading tensor data (safetensors) ---- */
/* Reads rows r0..r0+n-1 of a 2-D (or 1-D: one row) tensor whose rows are
 * row_len elements, converting to f32 into dst (n * row_len floats). raw is
 * staging for the file's bytes (n * row_len * dtype size). */
kvgpt_status st_read_rows(st_file *s, const st_tensor *t, size_t r0, size_t n, size_t row_len, float *dst,
                          void *raw, kvgpt_error *err);
/* After the last st_read_rows: a ckpt.pt storage read only in part so far has
 * the rest of its CRC-32 checked now (moving on to another storage does the
 * same). Nothing to do for safetensors. */
kvgpt_status st_read_done(st_file *s, kvgpt_error *err);
