/* tests/support/loader_st.h — building safetensors files for tests: read a
 * fixture's tensors into a list, change the list (drop, rename, reshape,
 * convert, move offsets), write it back. The header is written from the
 * entries exactly as they are, so one changed field makes one hostile file. */
#ifndef KVGPT_TEST_LOADER_ST_H
#define KVGPT_TEST_LOADER_ST_H

#include <stddef.h>
#include <stdint.h>

#define TS_MAX_DIMS 8

typedef struct {
    char name[160];
    char dtype[16];          /* written as is: "F32", "F16", "BF16", "I64", ... */
    int ndim;
    int64_t shape[TS_MAX_DIMS];  /* written as is: may be negative or absurd */
    uint64_t begin, end;     /* data_offsets as written in the header */
    unsigned char *data;     /* owned; placed in the data section at its packed position */
    size_t nbytes;
} ts_entry;

typedef struct {
    ts_entry *e;
    int n;
} ts_file;

/* Reads a valid safetensors file (the library's reader parses the header). 0 on success. */
int ts_read(const char *path, ts_file *f);
void ts_free(ts_file *f);
ts_entry *ts_find(ts_file *f, const char *name);
/* Removes the entry of that name; 0 when it was there. */
int ts_remove(ts_file *f, const char *name);
/* Offsets = each entry's data laid out one after another in list order. */
void ts_pack(ts_file *f);
/* Bytes of the data section ts_write writes (the sum of the entries' data). */
uint64_t ts_data_len(const ts_file *f);
/* Prefixes every tensor name. */
void ts_prefix(ts_file *f, const char *prefix);
/* Converts every F32 tensor to "F16" or "BF16" (round to nearest even), then packs. */
int ts_to_half(ts_file *f, const char *dtype);
/* Writes dir/name: 8-byte length, the header (space-padded to 8), the data. 0 on success. */
int ts_write(const ts_file *f, const char *dir, const char *name);
/* Writes a file of an explicit header length field, header text and n_data zero bytes. */
int ts_write_raw(const char *dir, const char *name, uint64_t header_len_field, const char *header, size_t header_len,
                 size_t n_data);

/* Test-side float conversions, independent of the library's. */
uint16_t ts_f32_to_f16(float f);
uint16_t ts_f32_to_bf16(float f);

#endif
