/* tests/fuzz/fuzz_sampler.c — libFuzzer target: kvgpt_sample_logits on
 * arbitrary logits (NaN, infinities, ties, denormals) and sampling options.
 * Input: 1 byte vocab size - 1, 1 byte top_k, 1 byte top_p (n/255), 1 byte
 * temperature (0 = greedy, else n/32), 8 bytes seed, then float logits
 * (missing ones are 0). The logits sit at the very end of an allocation and
 * the scratch is exactly 8 × vocab bytes, so ASan sees any read or write past
 * either. Oracles: the id is in [0, vocab); greedy returns a maximum when the
 * logits have no NaN; sampling with top_k = 1 returns a token whose scaled
 * logit (logit × 1/temperature, in float, as the sampler and nanoGPT scale)
 * equals the greedy one's. */
#include "fuzz_common.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 12) return 0;
    int V = data[0] + 1;
    kvgpt_gen_options g;
    kvgpt_gen_options_default(&g);
    g.top_k = data[1];
    g.top_p = data[2] ? (float)data[2] / 255.0f : 1.0f;
    g.temperature = (float)data[3] / 32.0f;
    uint64_t rng = 0;
    memcpy(&rng, data + 4, 8);
    float *logits = malloc((size_t)V * sizeof(float));
    memset(logits, 0, (size_t)V * sizeof(float));
    size_t have = (size - 12) / sizeof(float);
    memcpy(logits, data + 12, (have < (size_t)V ? have : (size_t)V) * sizeof(float));
    void *scratch = malloc((size_t)V * 8);
    int nan = 0;
    for (int i = 0; i < V; i++) nan |= isnan(logits[i]);

    uint64_t r1 = rng;
    int32_t id = kvgpt_sample_logits(logits, V, &g, &r1, scratch);
    FZ_CHECK(id >= 0 && id < V, "id %d outside [0, %d)", id, V);
    kvgpt_gen_options greedy = g;
    greedy.temperature = 0.0f;
    uint64_t r2 = rng;
    int32_t best = kvgpt_sample_logits(logits, V, &greedy, &r2, scratch);
    FZ_CHECK(best >= 0 && best < V, "greedy id %d outside [0, %d)", best, V);
    if (!nan)
        for (int i = 0; i < V; i++) FZ_CHECK(!(logits[i] > logits[best]), "greedy %d but %d is larger", best, i);
    float inv_t = g.temperature > 0.0f ? 1.0f / g.temperature : 0.0f;
    if (!nan && g.temperature > 0.0f && isfinite(logits[best] * inv_t)) {
        kvgpt_gen_options one = g;
        one.top_k = 1;
        uint64_t r3 = rng;
        int32_t k1 = kvgpt_sample_logits(logits, V, &one, &r3, scratch);
        FZ_CHECK(logits[k1] * inv_t == logits[best] * inv_t, "top_k 1 chose %d (%g), greedy %d (%g)", k1,
                 (double)logits[k1], best, (double)logits[best]);
    }
    free(logits);
    free(scratch);
    return 0;
}
