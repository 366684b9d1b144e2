/* model/sampler.c — nanoGPT's sampling: logits / temperature, keep the top_k
 * largest (ties at the k-th kept, as `logits < v[-1]` does), optionally the
 * top_p nucleus, softmax, one draw. Temperature 0 is argmax. The random
 * stream is the caller's 64-bit state, so a sequence's draws depend on its
 * seed alone — not on threads or on the other sequences of a batch. */
#include "kvgpt.h"
#include "model/sampler.h"
#include "common/sort.h"
#include "common/fexp.h"

#include <math.h>
#include <string.h>

uint64_t sampler_seed(uint64_t seed)
{
    /* splitmix64: neighbouring seeds give unrelated streams. */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return z ? z : 0x2545F4914F6CDD1Dull;
}

double sampler_uniform(uint64_t *state)
{
    /* xorshift64*: 53 high bits → [0, 1). */
    uint64_t x = *state;
    if (!x) x = 0x2545F4914F6CDD1Dull;   /* xorshift's one fixed point: a host's zero state would draw 0 forever */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct { float p; int32_t id; } cand;

/* Orders by p descending, then id ascending: a total order, so results are reproducible. */
static int by_prob(const void *x, const void *y)
{
    const cand *a = x, *b = y;
    if (a->p != b->p) return a->p > b->p ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* Restores the min-heap h[0..k) below slot i. */
static void heap_down(float *h, int k, int i)
{
    float v = h[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= k) break;
        if (c + 1 < k && h[c + 1] < h[c]) c++;
        if (!(h[c] < v)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

/* k-th largest of x[0..n) scaled by s (1 <= k <= n), in one pass: a min-heap
 * in h[0..k) holds the k largest seen so far, and most values lose to its
 * root at the first comparison (k = 200 of 50,257 GPT-2 logits: a few
 * thousand heap updates). Scaling is monotonic, so this is the k-th largest
 * of the scaled values, ties included, as torch.topk's v[-1]. */
static float kth_largest(float *h, const float *x, int n, int k, float s)
{
    for (int i = 0; i < k; i++) h[i] = x[i] * s;
    for (int i = k / 2 - 1; i >= 0; i--) heap_down(h, k, i);
    for (int i = k; i < n; i++) {
        float v = x[i] * s;
        if (v > h[0]) {
            h[0] = v;
            heap_down(h, k, 0);
        }
    }
    return h[0];
}

uint64_t kvgpt_sampler_state(uint64_t seed, int seq) { return sampler_seed(seed + (uint64_t)seq); }

int sampler_has_penalties(const kvgpt_gen_options *g)
{
    return g->penalty_last_n != 0 &&
           (g->repetition_penalty != 1.0f || g->presence_penalty != 0.0f || g->frequency_penalty != 0.0f);
}

static int by_id(const void *x, const void *y)
{
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

/* As HF's RepetitionPenaltyLogitsProcessor (once per distinct token) and
 * llama.cpp's / OpenAI's presence and frequency penalties, in one pass
 * over the distinct tokens: sorted, each run is one token and its count. */
void sampler_penalize(float *logits, int vocab, const int32_t *tokens, int n, const kvgpt_gen_options *g,
                      void *scratch)
{
    int32_t *t = scratch;
    memcpy(t, tokens, (size_t)n * sizeof *t);
    kv_heapsort(t, (size_t)n, sizeof *t, by_id);
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && t[j] == t[i]) j++;
        if (t[i] >= 0 && t[i] < vocab) {
            float *l = &logits[t[i]];
            if (g->repetition_penalty != 1.0f) *l = *l > 0.0f ? *l / g->repetition_penalty : *l * g->repetition_penalty;
            *l -= g->presence_penalty + (float)(j - i) * g->frequency_penalty;
        }
        i = j;
    }
}

int32_t kvgpt_sample_logits(const float *logits, int V, const kvgpt_gen_options *g, uint64_t *rng, void *scratch)
{
    int32_t best = 0;
    for (int i = 0; i < V; i++) {
        if (isnan(logits[i]) || logits[i] == INFINITY) return -1;   /* the model broke: no draw means anything */
        if (logits[i] > logits[best]) best = i;
    }
    if (logits[best] == -INFINITY) return -1;   /* every token banned */
    if (g->temperature <= 0.0f) return best;

    cand *c = scratch;
    float *heap = scratch;   /* the top-k heap is done with before c is filled */
    float inv_t = 1.0f / g->temperature;
    float cut = -INFINITY;
    if (g->top_k > 0 && g->top_k < V) cut = kth_largest(heap, logits, V, g->top_k, inv_t);
    int n = 0;
    float mx = logits[best] * inv_t;
    if (isinf(mx) && mx > 0.0f) return best;   /* a temperature so small the scaled argmax overflows: greedy */
    for (int i = 0; i < V; i++) {
        float v = logits[i] * inv_t;
        if (v >= cut && v > -INFINITY) {
            c[n].p = v;
            c[n].id = i;
            n++;
        }
    }
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        c[i].p = kv_expf(c[i].p - mx);   /* the same bits as the CUDA port's draws */
        sum += c[i].p;
    }
    if (g->top_p > 0.0f && g->top_p < 1.0f) {
        /* The nucleus: the most probable tokens whose mass first reaches top_p. */
        kv_heapsort(c, (size_t)n, sizeof *c, by_prob);
        double acc = 0.0, want = g->top_p * sum;
        int keep = 0;
        while (keep < n) {
            acc += c[keep++].p;
            if (acc >= want) break;
        }
        n = keep;
        sum = acc;
    }
    double r = sampler_uniform(rng) * sum, acc = 0.0;
    for (int i = 0; i < n; i++) {
        acc += c[i].p;
        if (r < acc) return c[i].id;
    }
    return n ? c[n - 1].id : best;
}
