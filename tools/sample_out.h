/* tools/sample_out.h — where `kvgpt sample`'s text goes: straight to stdout
 * while one sample is decoded, or kept per sample and printed in order when
 * several are decoded together; the first sample's tokens kept for --compare. */
#ifndef KVGPT_SAMPLE_OUT_H
#define KVGPT_SAMPLE_OUT_H

#include <stddef.h>
#include <stdint.h>
#include "kvgpt.h"

typedef struct {
    const kvgpt_model *m;
    int batch, n, stream;
    char **text;             /* per sample: the text so far (several at once) */
    size_t *len, *cap;
    int32_t *first[2];       /* sample 1's tokens, with the cache and without */
    int n_first[2], cap_first, pass;
    const char *prompt_text;
    size_t prompt_len;
    const int32_t *prompt_ids;
    int n_prompt;
    int failed;              /* out of memory or a write error */
} sample_out;

int so_init(sample_out *o, const kvgpt_model *m, int batch, int max_tokens);
/* Points g's on_token / on_text at o. */
void so_hook(sample_out *o, kvgpt_gen_options *g);
/* A group of n samples starts; one alone streams, its prompt printed now.
 * compare_pass 0 / 1 keeps sample 1's tokens of that pass (-1: neither). */
void so_start(sample_out *o, int n, const char *text, size_t text_len, const int32_t *ids, int n_ids,
              int compare_pass);
/* The group is done: prints what was kept, each sample followed by the dashes. */
void so_finish(sample_out *o);
int so_compared_equal(const sample_out *o);
/* Whether anything could not be written (stdout full or closed). */
int so_write_failed(sample_out *o);
void so_free(sample_out *o);

#endif
