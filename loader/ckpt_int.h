/* loader/ckpt_int.h — what ckpt.c (directory, plan, parse) and ckpt_table.c
 * (storage records, the tensor table, storage CRC-32s as they are read)
 * share. Internal to loader/. */
#ifndef KVGPT_CKPT_INT_H
#define KVGPT_CKPT_INT_H

#include "loader/ckpt.h"

#define CKPT_ROOT_MAX 255   /* torch names the root after the file (a file name: at most 255 bytes) */

/* What the directory scan finds (on the planner's stack: kept small). */
typedef struct {
    zip_dir dir;
    zip_entry pkl;           /* <root>/data.pkl; its name is in name[] */
    char root[CKPT_ROOT_MAX + 1];
    size_t root_len;
    char name[CKPT_ROOT_MAX + 32];   /* data.pkl's name, then each storage's while its local header is checked */
    uint64_t pkl_off;        /* its bytes in the file */
    uint64_t n_storages;     /* entries named <one component>/data/<decimal key> */
    char what[512];          /* "path: root/data.pkl" for messages (a very long path shortened) */
} ckpt_info;

/* One storage record <root>/data/<key>, found by its decimal key. */
typedef struct {
    uint64_t key, local_off, size, data_off;   /* data_off 0: not resolved yet */
    uint64_t crc_pos;        /* file offset up to which crc_run covers the data */
    uint32_t crc, crc_run;   /* the directory's CRC-32; the running one */
    unsigned method, flags;
    int checked;             /* the whole storage was read and its CRC-32 matched */
} ckpt_slot;

/* The state ckpt_parse leaves in its scratch for the life of the st_file. */
struct ckpt_reads {
    unsigned char buf[ZIP_BUF_BYTES];   /* directory, local headers, then the CRC reads of skipped bytes */
    uint32_t crc[8][256];
    ckpt_info ci;
    ckpt_slot *slots;                   /* sorted by key */
    size_t n_slots;
    uint32_t last;                      /* the storage read last; UINT32_MAX: none */
};

/* "<root>/data/<key>" when it is one (a canonical decimal key). */
int ckpt_storage_key(const ckpt_info *ci, const char *name, size_t len, uint64_t *key);
/* The storage records, sorted by key, into slots (at most cap). */
kvgpt_status ckpt_index(lf_file *f, struct ckpt_reads *r, ckpt_slot *slots, size_t cap, kvgpt_error *err);
/* The "model" state dict of the interpreted pickle as a tensor table (sorted by name). */
kvgpt_status ckpt_table(lf_file *f, struct ckpt_reads *r, const pk_vm *vm, st_tensor *tab, size_t cap,
                        size_t *count, kvgpt_error *err);

#endif
