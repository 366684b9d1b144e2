/* ops/cache.c — the store of new K/V rows into a layer's cache and the size
 * of the attention kernel's scratch: the parts of attention that every
 * kernel set shares (a row's conversion is not where the time goes). */
#include "ops/ops_internal.h"

size_t ops_attention_scratch(int ctx, int nt)
{
    return (size_t)ops_threads(nt) * (size_t)ctx;
}

void ops_kv_store(void *cache, kvgpt_dtype kv_dtype, const float *src, int lds,
                  const int32_t *seq, const int32_t *pos, int n,
                  int n_head, int hs, int ctx)
{
    for (int r = 0; r < n; r++)
        for (int h = 0; h < n_head; h++) {
            const float *x = src + (size_t)r * (size_t)lds + (size_t)h * (size_t)hs;
            const size_t at = (((size_t)seq[r] * (size_t)n_head + (size_t)h) * (size_t)ctx
                               + (size_t)pos[r]) * (size_t)hs;
            switch (kv_dtype) {
            case KVGPT_DTYPE_F16:
                for (int d = 0; d < hs; d++)
                    ((uint16_t *)cache)[at + (size_t)d] = kv_f32_to_f16(x[d]);
                break;
            case KVGPT_DTYPE_BF16:
                for (int d = 0; d < hs; d++)
                    ((uint16_t *)cache)[at + (size_t)d] = kv_f32_to_bf16(x[d]);
                break;
            default:
                memcpy((float *)cache + at, x, (size_t)hs * sizeof(float));
                break;
            }
        }
}
