/* ops/ops.h — the C99 + OpenMP compute kernels kvgpt's CPU port is made of.
 *
 * ops know nothing of models: plain arrays, sizes and a thread count `nt`
 * (<= 0: the OpenMP default). Every kernel is deterministic: an output element
 * is computed by one thread in a fixed order, so results are bitwise identical
 * for any nt, and — the property the KV cache relies on — a row's result does
 * not depend on how many other rows are computed with it (n). Prefill of a
 * window and decode of its last token give the same bits.
 *
 * Weights of matrix products are stored "packed": the [ic -> oc] matrix
 * W (out[o] = sum_k in[k] * W(k, o)) is cut into panels of OPS_PANEL output
 * columns; panel p holds W(k, p*OPS_PANEL + j) at [p][k][j]. oc is padded up
 * to a multiple of OPS_PANEL with zeros. Decode streams each panel once,
 * contiguously; prefill multiplies register tiles of rows × panels.
 */
#ifndef KVGPT_OPS_H
#define KVGPT_OPS_H

#include <stddef.h>
#include <stdint.h>
#include "kvgpt.h"   /* kvgpt_dtype */
#include "common/half.h"

#define OPS_PANEL 16

/* Scalar half-precision conversions and dtype sizes: common/half.h. */

/* ---- packed weight matrices ---- */
typedef struct {
    void *data;          /* packed panels, ops_packed_bytes() long */
    kvgpt_dtype dtype;   /* F32, F16 or BF16 */
    int ic, oc;          /* logical shape: ic inputs -> oc outputs */
} ops_wmat;

int ops_padded_oc(int oc);
size_t ops_packed_bytes(int ic, int oc, kvgpt_dtype dt);
/* Packs one source row: W(k, 0..oc-1) from src (oc floats) — HF Conv1D [in,out] rows. */
void ops_pack_row_k(ops_wmat *w, int k, const float *src);
/* Packs one source row: W(0..ic-1, o) from src (ic floats) — nn.Linear [out,in] rows. */
void ops_pack_row_o(ops_wmat *w, int o, const float *src);
/* Many rows at once, on up to nt threads (the same bytes for any nt). */
void ops_pack_rows_k(ops_wmat *w, int k0, int n, const float *src, int nt);
void ops_pack_rows_o(ops_wmat *w, int o0, int n, const float *src, int nt);
/* Zeroes the padding columns (oc..padded_oc-1). Call once after packing. */
void ops_pack_zero_pad(ops_wmat *w);
/* Reads back W(k, o) as float (tests, embedding lookup of a tied matrix). */
float ops_wmat_get(const ops_wmat *w, int k, int o);
/* Gathers column o: out[k] = W(k, o) for k < ic (the embedding row of a tied lm_head). */
void ops_wmat_column(const ops_wmat *w, int o, float *out);

/* ---- kernel sets ----
 * The hot kernels are compiled once per instruction set (the Makefile's
 * OPS_SETS: "portable" — the architecture's baseline, SSE2 on x86-64 and
 * Advanced SIMD on aarch64 — then "avx2" (AVX2 + FMA + F16C) and "avx512"
 * (AVX-512 F/BW/DQ/VL) on x86-64) and one set is chosen at run time, once,
 * by the caller (the CPU port, at open). Within one set every property above
 * holds; two sets may round differently (a fused multiply-add or a multiply
 * and an add), never compute anything else. */
typedef struct {
    const char *name;
    /* out[i*ldo + o] = bias[o] + sum_k in[i*ldi + k] * W(k, o), for i < n, o < w->oc.
     * bias may be NULL. out must not alias in. */
    void (*matmul)(float *out, int ldo, const float *in, int ldi, const ops_wmat *w,
                   const float *bias, int n, int nt);
    /* Row-wise, x is [n, c] row-major: out = (x - mean) / sqrt(var + eps) * w + b;
     * b may be NULL; out may alias x. */
    void (*layernorm)(float *out, const float *x, const float *w, const float *b,
                      int n, int c, float eps, int nt);
    void (*gelu_erf)(float *x, size_t len, int nt);    /* 0.5 x (1 + erf(x / sqrt 2)) */
    void (*gelu_tanh)(float *x, size_t len, int nt);   /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    void (*add)(float *x, const float *y, size_t len, int nt);   /* x += y */
    /* In place, one row: x = exp(x - max) / sum; -INFINITY entries become 0
     * (a row of nothing but -INFINITY becomes all 0, not NaN). */
    void (*softmax)(float *x, int len);
    /* Attention over a KV cache. Cache of one layer: k and v, each
     * [n_seq][n_head][ctx][hs] in kv_dtype. For each row r: q is
     * q[r*ldq + h*hs + d]; it attends to positions 0..pos[r] of sequence
     * seq[r] (causal: the row's own K/V must already be in the cache at
     * pos[r]); scores scaled by 1/sqrt(hs), softmax, weighted sum of v into
     * out[r*ldo + h*hs + d]. scratch holds ops_attention_scratch(ctx, nt) floats. */
    void (*attention)(float *out, int ldo, const float *q, int ldq,
                      const void *k, const void *v, kvgpt_dtype kv_dtype,
                      const int32_t *seq, const int32_t *pos, int n,
                      int n_head, int hs, int ctx, float *scratch, int nt);
} ops_kernels;

/* The sets this build has, the baseline first (i >= count: NULL). */
int ops_set_count(void);
const ops_kernels *ops_set_at(int i);
/* The set of this name in this build, or NULL. */
const ops_kernels *ops_set_named(const char *name);
/* 1 when this CPU, and the OS (it must save the wide registers), can run k. */
int ops_set_runs(const ops_kernels *k);
/* The fastest set this CPU runs. */
const ops_kernels *ops_set_best(void);
/* What the set needs of the CPU, for messages ("AVX2, FMA and F16C"). */
const char *ops_set_needs(const ops_kernels *k);

/* Floats of scratch the attention kernel needs for nt threads. */
size_t ops_attention_scratch(int ctx, int nt);

/* Writes rows of K (or V) into a layer's cache: for each row r, the n_head
 * slices src[r*lds + h*hs ..] go to cache[seq[r]][h][pos[r]][..] (converted to kv_dtype). */
void ops_kv_store(void *cache, kvgpt_dtype kv_dtype, const float *src, int lds,
                  const int32_t *seq, const int32_t *pos, int n,
                  int n_head, int hs, int ctx);

/* ---- threads ---- */
/* Threads ops will use for nt (nt > 0: nt; else the OpenMP maximum). */
int ops_threads(int nt);
/* Bytes of stack of each thread libgomp starts (OMP_STACKSIZE, or the
 * system's default for new threads). */
size_t ops_thread_stack(void);
/* Starts the calling thread's OpenMP pool for a team of nt threads (itself
 * included) and returns the team the system allows, 1..nt: a thread the
 * system refuses makes the team smaller, never ends the process. Call it on
 * a host thread before its first parallel region, and ask no region for
 * more threads than it returned. */
int ops_team_start(int nt);

#endif
