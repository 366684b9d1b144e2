/* ops/pack.c — packing weight matrices into OPS_PANEL-column panels, and
 * reading single elements / columns back out of them.
 *
 * Packing runs once, at open, over every weight: it is written as plain
 * loops over whole panel rows (16 values at a time, converted to the stored
 * dtype) that the compiler vectorizes, split over threads by panel (Conv1D
 * rows) or by input range (nn.Linear rows), so that opening a model goes at
 * the speed of reading its file. Every value lands in one place whatever the
 * split, so the packed bytes never depend on the thread count. */
#include "ops/ops_internal.h"
#include <omp.h>

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

/* bf16 round to nearest even, as kv_f32_to_bf16, without its branch (NaN
 * stays NaN: its quiet bit is forced before rounding). */
OPS_INLINE uint16_t pk_bf16(float f)
{
    uint32_t x = ops_f32_bits(f);
    uint32_t nan = (x & 0x7fffffffu) > 0x7f800000u;
    x = nan ? x | 0x00400000u : x + 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* n values of src (each `stride` floats apart) into dst[0, n) of dtype dt. */
OPS_INLINE void pk_store(kvgpt_dtype dt, void *dst, size_t at, const float *src, size_t stride, int n)
{
    switch (dt) {
    case KVGPT_DTYPE_F32:
        for (int j = 0; j < n; j++) ((float *)dst)[at + (size_t)j] = src[(size_t)j * stride];
        break;
    case KVGPT_DTYPE_BF16:
        for (int j = 0; j < n; j++) ((uint16_t *)dst)[at + (size_t)j] = pk_bf16(src[(size_t)j * stride]);
        break;
    case KVGPT_DTYPE_F16:
        for (int j = 0; j < n; j++) ((uint16_t *)dst)[at + (size_t)j] = kv_f32_to_f16(src[(size_t)j * stride]);
        break;
    }
}

/* Work below which packing stays on the calling thread (no team woken). */
#define PK_PAR_MIN (1 << 16)

static int pk_team(size_t values, int nt) { return values < PK_PAR_MIN ? 1 : ops_threads(nt); }

/* Panels [p0, p1) of rows k0..k0+n-1 (Conv1D rows: oc values each). */
static void pk_rows_k(ops_wmat *w, int k0, int n, const float *src, int p0, int p1)
{
    for (int p = p0; p < p1; p++) {
        const int c0 = p * OPS_PANEL, cols = w->oc - c0 < OPS_PANEL ? w->oc - c0 : OPS_PANEL;
        for (int i = 0; i < n; i++) {
            const size_t at = ((size_t)p * (size_t)w->ic + (size_t)(k0 + i)) * OPS_PANEL;
            pk_store(w->dtype, w->data, at, src + (size_t)i * (size_t)w->oc + (size_t)c0, 1, cols);
        }
    }
}

void ops_pack_rows_k(ops_wmat *w, int k0, int n, const float *src, int nt)
{
    const int np = ops_padded_oc(w->oc) / OPS_PANEL;
    const int T = pk_team((size_t)n * (size_t)w->oc, nt);
    if (T == 1) {
        pk_rows_k(w, k0, n, src, 0, np);
        return;
    }
#pragma omp parallel num_threads(T)
    {
        const int t = omp_get_thread_num(), nth = omp_get_num_threads();
        pk_rows_k(w, k0, n, src, np * t / nth, np * (t + 1) / nth);
    }
}

/* Inputs [kb, ke) of rows o0..o0+n-1 (nn.Linear rows: ic values each): row o
 * is lane o % 16 of panel o / 16, one value per input. */
static void pk_rows_o(ops_wmat *w, int o0, int n, const float *src, int kb, int ke)
{
    for (int i = 0; i < n; i++) {
        const int o = o0 + i;
        const size_t base = pk_index(w, 0, o);
        const float *s = src + (size_t)i * (size_t)w->ic;
        for (int k = kb; k < ke; k++) pk_store(w->dtype, w->data, base + (size_t)k * OPS_PANEL, s + k, 1, 1);
    }
}

void ops_pack_rows_o(ops_wmat *w, int o0, int n, const float *src, int nt)
{
    const int T = pk_team((size_t)n * (size_t)w->ic, nt);
    if (T == 1) {
        pk_rows_o(w, o0, n, src, 0, w->ic);
        return;
    }
#pragma omp parallel num_threads(T)
    {
        const int t = omp_get_thread_num(), nth = omp_get_num_threads();
        pk_rows_o(w, o0, n, src, (int)((long)w->ic * t / nth), (int)((long)w->ic * (t + 1) / nth));
    }
}

void ops_pack_row_k(ops_wmat *w, int k, const float *src) { ops_pack_rows_k(w, k, 1, src, 1); }
void ops_pack_row_o(ops_wmat *w, int o, const float *src) { ops_pack_rows_o(w, o, 1, src, 1); }

void ops_pack_zero_pad(ops_wmat *w)
{
    const float zero = 0.0f;
    for (int o = w->oc; o < ops_padded_oc(w->oc); o++) {
        size_t base = pk_index(w, 0, o);
        for (int k = 0; k < w->ic; k++) pk_store(w->dtype, w->data, base + (size_t)k * OPS_PANEL, &zero, 0, 1);
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

float ops_wmat_get(const ops_wmat *w, int k, int o) { return pk_get(w, pk_index(w, k, o)); }

void ops_wmat_column(const ops_wmat *w, int o, float *out)
{
    size_t base = pk_index(w, 0, o);
    for (int k = 0; k < w->ic; k++)
        out[k] = pk_get(w, base + (size_t)k * OPS_PANEL);
}
