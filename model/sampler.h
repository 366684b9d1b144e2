/* model/sampler.h — the sampler's random stream (kvgpt_sample_logits is public). */
#ifndef KVGPT_SAMPLER_H
#define KVGPT_SAMPLER_H

#include <stdint.h>
#include "kvgpt.h"

/* A non-zero generator state from a user seed. */
uint64_t sampler_seed(uint64_t seed);
/* Next uniform double in [0, 1); advances *state. */
double sampler_uniform(uint64_t *state);
/* The penalties of g (repetition, presence, frequency) over the n tokens
 * given, applied to logits [vocab]; scratch holds 4 * n bytes. */
void sampler_penalize(float *logits, int vocab, const int32_t *tokens, int n, const kvgpt_gen_options *g,
                      void *scratch);
/* Whether g asks for any penalty. */
int sampler_has_penalties(const kvgpt_gen_options *g);

#endif
