/* model/sampler.h — the sampler's random stream (kvgpt_sample_logits is public). */
#ifndef KVGPT_SAMPLER_H
#define KVGPT_SAMPLER_H

#include <stdint.h>

/* A non-zero generator state from a user seed. */
uint64_t sampler_seed(uint64_t seed);
/* Next uniform double in [0, 1); advances *state. */
double sampler_uniform(uint64_t *state);

#endif
