/* ops/matmul.c — out = in · W + bias over packed panels, for decode (n = 1,
 * memory-bound) and prefill (n large, compute-bound) alike (one kernel set's:
 * see ops_internal.h).
 *
 * Determinism: every output element is one accumulator lane that starts at 0
 * and takes acc = fma(in[k], W(k,o), acc) for k = 0, 1, ..., ic-1, then adds
 * the bias. The register tile (how many rows and panels are computed together)
 * and the thread split only decide *which* lanes run side by side, never the
 * order within one, so the bits do not depend on n, nt or a row's position.
 */
#include "ops/ops_internal.h"
#include <omp.h>

/* Tiles of up to MM_MAX_ROWS rows x MM_MAX_PANELS panels are compiled; each
 * kernel set uses those its vector registers hold (a panel's accumulator is
 * one zmm, two ymm or four xmm / NEON registers):
 *   MM_ROWS x MM_PANELS: the tile of prefill;
 *   a batch of up to MM_WIDE_ROWS rows (decoding that many sequences) in one
 *   tile of MM_WIDE_PANELS panels: each weight is read from memory once for
 *   the whole batch instead of once per MM_ROWS rows (memory-bound, so some
 *   accumulators may live in L1). */
#define MM_MAX_ROWS 12
#define MM_MAX_PANELS 3
#if !defined(MM_ROWS)
#if defined(__AVX512F__)
#define MM_ROWS 8            /* 8 x 3 = 24 of the 32 zmm registers */
#define MM_PANELS 3
#define MM_WIDE_ROWS 12      /* 12 x 2, also 24 */
#define MM_WIDE_PANELS 2
#elif defined(__AVX2__)
#define MM_ROWS 6            /* 6 x 1 = 12 of the 16 ymm registers */
#define MM_PANELS 1
#define MM_WIDE_ROWS 12
#define MM_WIDE_PANELS 1
#elif defined(__aarch64__)
#define MM_ROWS 5            /* 5 x 1 = 20 of the 32 NEON registers (6 spill one) */
#define MM_PANELS 1
#define MM_WIDE_ROWS 12
#define MM_WIDE_PANELS 1
#else
#define MM_ROWS 2            /* 2 x 1 = 8 of the 16 xmm registers (SSE2) */
#define MM_PANELS 1
#define MM_WIDE_ROWS 12
#define MM_WIDE_PANELS 1
#endif
#endif
/* When all rows fit in one tile every weight is used once, straight from
 * memory: each panel's stream is prefetched this far ahead into L1, which
 * keeps more cache lines in flight than the core's own prefetchers do
 * (bf16/f16 decode +15-20% measured against none, f32 unchanged; 2 KiB and
 * prefetcht0 beat 0.5-1 KiB and prefetcht2 by a few percent). */
#define MM_PREFETCH_BYTES OPS_PREFETCH_BYTES
#define MM_BLOCK_BYTES (1 << 20)   /* input rows a thread keeps in L2 while panels stream by */

/* Decode-sized problems are not worth waking a thread team for. */
#define MM_PAR_MIN_MACS (1 << 17)

/* gcc for aarch64 keeps some of a tile's accumulators in memory unless its
 * loops over rows and panels are unrolled before scalar replacement runs
 * (x86's sets need no hint; given one, gcc blows their epilogues up). */
#if defined(__aarch64__)
#define MM_UNROLL _Pragma("GCC unroll 12")
#else
#define MM_UNROLL
#endif

typedef struct {
    const float *in;
    int ldi;
    const void *w;      /* first panel of the tile */
    size_t ps;          /* elements between consecutive panels (ic * OPS_PANEL) */
    int ic;
    float *out;         /* out[row 0][column of panel 0] */
    int ldo;
    int ncols;          /* valid output columns from the tile's first column */
    const float *bias;  /* at the tile's first column, or NULL */
    int prefetch;       /* stream W from memory: prefetch ahead */
} mm_tile_args;

/* R, P and dt are compile-time constants at every call site below, which is
 * what lets the compiler keep acc[][] in vector registers. */
OPS_INLINE void mm_tile(const int R, const int P, const kvgpt_dtype dt, const mm_tile_args *a)
{
    ops_v16 acc[MM_MAX_ROWS][MM_MAX_PANELS];
    const float *restrict in = a->in;
    const void *restrict w = a->w;
    const size_t ldi = (size_t)a->ldi, ps = a->ps;

    MM_UNROLL for (int r = 0; r < R; r++)
        MM_UNROLL for (int p = 0; p < P; p++)
            acc[r][p] = ops_vzero();

    for (int k = 0; k < a->ic; k++) {
        ops_v16 wv[MM_MAX_PANELS];
        MM_UNROLL for (int p = 0; p < P; p++) {
            const size_t at = (size_t)p * ps + (size_t)k * OPS_PANEL;
            if (a->prefetch)
                OPS_PREFETCH((const char *)w + at * (dt == KVGPT_DTYPE_F32 ? 4 : 2) + MM_PREFETCH_BYTES);
            wv[p] = ops_vld_dt(dt, w, at);
        }
        MM_UNROLL for (int r = 0; r < R; r++) {
            const float x = in[(size_t)r * ldi + (size_t)k];
            MM_UNROLL for (int p = 0; p < P; p++)
                acc[r][p] = ops_vfma(x, wv[p], acc[r][p]);
        }
    }

    MM_UNROLL for (int p = 0; p < P; p++) {
        const int c0 = p * OPS_PANEL;
        const float *bias = a->bias ? a->bias + c0 : NULL;
        const int full = a->ncols - c0 >= OPS_PANEL;
        const ops_v16 bv = bias && full ? ops_vld(bias) : ops_vzero();
        MM_UNROLL for (int r = 0; r < R; r++) {
            float *o = a->out + (size_t)r * (size_t)a->ldo + (size_t)c0;
            if (full) {
                ops_vst(o, bias ? ops_vadd(acc[r][p], bv) : acc[r][p]);
            } else {
                for (int j = 0; j < a->ncols - c0; j++)
                    o[j] = bias ? ops_vlane(acc[r][p], j) + bias[j] : ops_vlane(acc[r][p], j);
            }
        }
    }
}

typedef void (*mm_tile_fn)(const mm_tile_args *a);

#define MM_DEF(R, P, DT, SUF) \
    static void mm_##SUF##_##R##x##P(const mm_tile_args *a) { mm_tile(R, P, DT, a); }
#define MM_DEF_P(R, DT, SUF) MM_DEF(R, 1, DT, SUF) MM_DEF(R, 2, DT, SUF) MM_DEF(R, 3, DT, SUF)
#define MM_DEF_ALL(DT, SUF) \
    MM_DEF_P(1, DT, SUF) MM_DEF_P(2, DT, SUF) MM_DEF_P(3, DT, SUF) MM_DEF_P(4, DT, SUF) \
    MM_DEF_P(5, DT, SUF) MM_DEF_P(6, DT, SUF) MM_DEF_P(7, DT, SUF) MM_DEF_P(8, DT, SUF)
#define MM_DEF_WIDE(R, DT, SUF) MM_DEF(R, 1, DT, SUF) MM_DEF(R, 2, DT, SUF)
#define MM_DEF_ALL_WIDE(DT, SUF) \
    MM_DEF_WIDE(9, DT, SUF) MM_DEF_WIDE(10, DT, SUF) MM_DEF_WIDE(11, DT, SUF) MM_DEF_WIDE(12, DT, SUF)
#define MM_ROW(R, SUF) { mm_##SUF##_##R##x1, mm_##SUF##_##R##x2, mm_##SUF##_##R##x3 }
#define MM_WROW(R, SUF) { mm_##SUF##_##R##x1, mm_##SUF##_##R##x2, NULL }
#define MM_TABLE(SUF) { MM_ROW(1, SUF), MM_ROW(2, SUF), MM_ROW(3, SUF), MM_ROW(4, SUF), \
                        MM_ROW(5, SUF), MM_ROW(6, SUF), MM_ROW(7, SUF), MM_ROW(8, SUF), \
                        MM_WROW(9, SUF), MM_WROW(10, SUF), MM_WROW(11, SUF), MM_WROW(12, SUF) }

MM_DEF_ALL(KVGPT_DTYPE_F32, f32) MM_DEF_ALL_WIDE(KVGPT_DTYPE_F32, f32)
MM_DEF_ALL(KVGPT_DTYPE_F16, f16) MM_DEF_ALL_WIDE(KVGPT_DTYPE_F16, f16)
MM_DEF_ALL(KVGPT_DTYPE_BF16, bf16) MM_DEF_ALL_WIDE(KVGPT_DTYPE_BF16, bf16)

static const mm_tile_fn mm_tiles[3][MM_MAX_ROWS][MM_MAX_PANELS] = {
    MM_TABLE(f32), MM_TABLE(f16), MM_TABLE(bf16)
};

/* How a product is cut: rows per tile and panels per group. */
typedef struct {
    int rows, panels;
} mm_geom;

static mm_geom mm_geometry(int n)
{
    mm_geom g = { MM_ROWS, MM_PANELS };
    if (n <= MM_ROWS) g.rows = n;
    else if (n <= MM_WIDE_ROWS) g.rows = n, g.panels = MM_WIDE_PANELS;
    return g;
}

/* Work item = (panel group g, row tile t), numbered g-major so that a thread's
 * contiguous range of items touches few panel groups: each thread streams its
 * own slice of W, and decode (one row tile) is split by panels. A thread walks
 * its items a block of row tiles at a time across all its groups, so that
 * block of input rows stays in L2 while the groups' panels stream past it
 * (each group's panels, a few hundred KiB, stay in L2 across the block's tiles).
 * Blocking k as well measured slower: W streams from L2 fast enough. */
static void mm_range(float *out, int ldo, const float *in, int ldi, const ops_wmat *w,
                     const float *bias, int n, mm_geom gm, long it0, long it1)
{
    const int npanels = ops_padded_oc(w->oc) / OPS_PANEL;
    const long ntiles = (n + gm.rows - 1) / gm.rows;
    const size_t es = kv_dtype_size(w->dtype);
    const size_t ps = (size_t)w->ic * OPS_PANEL;
    const mm_tile_fn *fns = mm_tiles[w->dtype][0];
    if (it0 >= it1)
        return;
    const int g0 = (int)(it0 / ntiles), g1 = (int)((it1 - 1) / ntiles) + 1;
    long tbk = MM_BLOCK_BYTES / ((long)w->ic * (long)sizeof(float) * gm.rows);
    tbk = tbk < 1 ? 1 : tbk;

    for (long rb = 0; rb < ntiles; rb += tbk)
        for (int g = g0; g < g1; g++) {
            long ta = g == g0 ? it0 % ntiles : 0;
            long tb = g == g1 - 1 ? it1 - (long)g * ntiles : ntiles;
            ta = ta > rb ? ta : rb;
            tb = tb < rb + tbk ? tb : rb + tbk;
            const int p0 = g * gm.panels;
            const int P = npanels - p0 < gm.panels ? npanels - p0 : gm.panels;
            const int c0 = p0 * OPS_PANEL;
            for (long t = ta; t < tb; t++) {
                const int r0 = (int)t * gm.rows;
                const int R = n - r0 < gm.rows ? n - r0 : gm.rows;
                mm_tile_args a;
                a.in = in + (size_t)r0 * (size_t)ldi;
                a.ldi = ldi;
                a.w = (const char *)w->data + (size_t)p0 * ps * es;
                a.ps = ps;
                a.ic = w->ic;
                a.out = out + (size_t)r0 * (size_t)ldo + (size_t)c0;
                a.ldo = ldo;
                a.ncols = w->oc - c0;
                a.bias = bias ? bias + c0 : NULL;
                a.prefetch = ntiles == 1;
                fns[(R - 1) * MM_MAX_PANELS + (P - 1)](&a);
            }
        }
}

void OPS_K(matmul)(float *out, int ldo, const float *in, int ldi, const ops_wmat *w,
                   const float *bias, int n, int nt)
{
    if (n <= 0 || w->oc <= 0)
        return;
    const int npanels = ops_padded_oc(w->oc) / OPS_PANEL;
    const mm_geom gm = mm_geometry(n);
    const long ngroups = (npanels + gm.panels - 1) / gm.panels;
    const long ntiles = (n + gm.rows - 1) / gm.rows;
    const long items = ngroups * ntiles;
    int T = ops_threads(nt);
    const double macs = (double)n * w->ic * w->oc;
    if (macs < MM_PAR_MIN_MACS || items < 2)
        T = 1;
    if (T == 1) {
        mm_range(out, ldo, in, ldi, w, bias, n, gm, 0, items);
        return;
    }
    if (ntiles == 1) {
        /* Decode: memory-bound, and the threads do not stream equally fast
         * (one may have just left serial work, or share its core): chunks
         * of about an eighth of a thread's share are claimed as they go, so
         * none waits at the end for a slower one. Each item is still one
         * thread's, computed in its fixed order. */
        const long chunk = (items + 8L * T - 1) / (8L * T);
        long next = 0;
#pragma omp parallel num_threads(T)
        for (;;) {
            long i0;
#pragma omp atomic capture
            { i0 = next; next += chunk; }
            if (i0 >= items) break;
            mm_range(out, ldo, in, ldi, w, bias, n, gm, i0, i0 + chunk < items ? i0 + chunk : items);
        }
        return;
    }
#pragma omp parallel num_threads(T)
    {
        const long tid = omp_get_thread_num(), nth = omp_get_num_threads();
        mm_range(out, ldo, in, ldi, w, bias, n, gm, items * tid / nth, items * (tid + 1) / nth);
    }
}
