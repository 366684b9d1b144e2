/* ops/pack.c — packing weight matrices into OPS_PANEL-column panels, and
 * reading single elements / columns back out of them. */
#include "ops/ops_internal.h"

int ops_padded_oc(int oc) { return (oc + OPS_PANEL - 1) / OPS_PANEL * OPS_PANEL; }

size_t ops_packed_bytes(int ic, int oc, kvgpt_dtype dt)
{
    return (size_t)ic * (size_t)ops_padded_oc(oc) * kv_dtype_size(dt);
}

/* Element index of W(k, o) in the packed array. */
static size_t pk_index(const ops_wmat *w, int k, int o)
{
    return ((size_t)(o / OPS_PANEL) * (size_t)w->ic + (size_t)k) * OPS_PANEL
           + (size_t)(o % OPS_PANEL);
}

static void pk_put(const ops_wmat *w, size_t i, float v)
{
    switch (w->dtype) {
    case KVGPT_DTYPE_F32:  ((float *)w->data)[i] = v; break;
    case KVGPT_DTYPE_F16:  ((uint16_t *)w->data)[i] = kv_f32_to_f16(v); break;
    case KVGPT_DTYPE_BF16: ((uint16_t *)w->data)[i] = kv_f32_to_bf16(v); break;
    }
}

static float pk_get(const ops_wmat *w, size_t i)
{
    switch (w->dtype) {
    case KVGPT_DTYPE_F16:  return kv_f16_to_f32(((const uint16_t *)w->data)[i]);
    case KVGPT_DTYPE_BF16: return kv_bf16_to_f32(((const uint16_t *)w->data)[i]);
    default:               return ((const float *)w->data)[i];
    }
}

void ops_pack_row_k(ops_wmat *w, int k, const float *src)
{
    for (int o = 0; o < w->oc; o++)
        pk_put(w, pk_index(w, k, o), src[o]);
}

void ops_pack_row_o(ops_wmat *w, int o, const float *src)
{
    size_t base = pk_index(w, 0, o);
    for (int k = 0; k < w->ic; k++)
        pk_put(w, base + (size_t)k * OPS_PANEL, src[k]);
}

void ops_pack_zero_pad(ops_wmat *w)
{
    for (int o = w->oc; o < ops_padded_oc(w->oc); o++) {
        size_t base = pk_index(w, 0, o);
        for (int k = 0; k < w->ic; k++)
            pk_put(w, base + (size_t)k * OPS_PANEL, 0.0f);
    }
}

float ops_wmat_get(const ops_wmat *w, int k, int o) { return pk_get(w, pk_index(w, k, o)); }

void ops_wmat_column(const ops_wmat *w, int o, float *out)
{
    size_t base = pk_index(w, 0, o);
    for (int k = 0; k < w->ic; k++)
        out[k] = pk_get(w, base + (size_t)k * OPS_PANEL);
}
