/* tests/support/loader_ref.h — reading the reference logits the fixtures hold
 * (reference/NAME_logits.json + .f32) and comparing a model's logits with them. */
#ifndef KVGPT_TEST_LOADER_REF_H
#define KVGPT_TEST_LOADER_REF_H

#include <stddef.h>
#include <stdint.h>
#include "kvgpt.h"
#include "loader/json.h"

#define REF_MAX_ENTRIES 8
#define REF_MAX_T 256

typedef struct {
    char name[32];
    char prompt[512];        /* decoded; prompt_len bytes (0 when the entry has none) */
    size_t prompt_len;
    int32_t ids[REF_MAX_T];
    int n;
    size_t offset, nbytes;   /* of this entry's [n, vocab] block in the .f32 file */
    int32_t argmax[REF_MAX_T];
    int n_argmax;
} ref_entry;

typedef struct {
    int vocab_size, block_size;
    int n;
    ref_entry e[REF_MAX_ENTRIES];
} ref_set;

/* Reads a reference index with the library's JSON reader. variant NULL: the
 * entries hold offset/nbytes/argmax themselves (shakespeare_char); else the
 * member of that name does ("gelu_tanh", "gelu_erf"). 0 on success; else -1
 * and a reason in why. */
int ref_load(const char *json_path, const char *variant, ref_set *out, char *why, size_t why_cap);
/* A JSON array of int32 values into dst (at most cap; *n gets the count); 1 on success. */
int ref_int_list(json_reader *r, int32_t *dst, int cap, int *n);
/* The entry's logits, malloc'd; NULL when unreadable or the sizes disagree. */
float *ref_logits(const char *f32_path, const ref_entry *e, int vocab);

/* The result of comparing [n, vocab] logits with a reference block. */
typedef struct {
    double max_abs;          /* largest |got - want| */
    int worst_row, worst_col;
    int argmax_mismatch;     /* positions whose argmax differs from the index's */
    int first_mismatch;      /* first such position, -1 when none */
} ref_diff;

void ref_compare(const float *got, const float *want, const ref_entry *e, int vocab, ref_diff *d);

/* Opens a model with o (logits_all forced on) and runs the entry's ids;
 * logits malloc'd into *out. KVGPT_OK or the failing status (err filled). */
kvgpt_status ref_run(const kvgpt_options *o, const ref_entry *e, float **out, kvgpt_error *err);

#endif
