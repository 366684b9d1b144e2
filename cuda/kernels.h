/* cuda/kernels.h — the CUDA kernels of the CUDA port, as host launchers.
 *
 * C++ (nvcc) only: included by the .cu files of cuda/, never by C code. Every launcher
 * queues its kernel on `s` and returns cudaGetLastError() (a bad launch shows
 * here; a fault inside a kernel only at the next synchronization). All
 * pointers are device pointers; sizes of 0 launch nothing. The arithmetic is
 * ops/ops.h's, kernel by kernel: see each kernel's comment in kernels.cu.
 */
#ifndef KVGPT_CUDA_KERNELS_H
#define KVGPT_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <cuda_runtime.h>
#include "kvgpt.h"

/* Rows up to which port_matmul uses the row-exact GEMV kernel instead of cuBLAS
 * (decode steps of up to this many sequences). Build with a huge value to send
 * every product through it: then a row's bits never depend on n (as on the CPU). */
#ifndef KC_GEMV_MAX_ROWS
#define KC_GEMV_MAX_ROWS 8
#endif
/* Rows one warp of the GEMV kernel carries at once (registers; any n works). */
#define KC_GEMV_GROUP 8

/* Attention: a context longer than KC_ATT_CHUNK positions is always cut in
 * splits of KC_ATT_CHUNK (flash-decoding: more blocks than rows x heads for a
 * decode step), whatever the number of rows, so that a row's result never
 * depends on the rows computed with it; calls go in groups of at most
 * KC_ATT_SPLIT_MAX_ROWS rows, which bounds the partials' scratch. */
#define KC_ATT_CHUNK 128
#define KC_ATT_SPLIT_MAX_ROWS 64

/* Splits of a context of ctx positions, and the floats of partial results one
 * (row, head, split) leaves: running max, sum, then hs accumulators. */
static inline __host__ __device__ int kc_att_splits(int ctx) { return (ctx + KC_ATT_CHUNK - 1) / KC_ATT_CHUNK; }
static inline __host__ __device__ size_t kc_att_part_floats(int hs) { return (size_t)hs + 2; }

/* Forces loading of every kernel now (CUDA lazy loading would otherwise load
 * each one, allocating, at its first launch, i.e. during the first forward). */
cudaError_t kc_preload(void);

/* x[r][i] = W(i, tok[r]) + wpe[pos[r]][i], W of dtype wdt in the [oc][ic] layout. */
cudaError_t kc_embed(cudaStream_t s, float *x, const void *w, kvgpt_dtype wdt, const float *wpe,
                     const int32_t *tok, const int32_t *pos, int n, int c);
cudaError_t kc_layernorm(cudaStream_t s, float *out, const float *x, const float *w, const float *b,
                         int n, int c, float eps);
cudaError_t kc_gelu(cudaStream_t s, float *x, size_t len, kvgpt_gelu kind);
cudaError_t kc_add(cudaStream_t s, float *x, const float *y, size_t len);
cudaError_t kc_gather_rows(cudaStream_t s, float *dst, const float *src, const int32_t *idx, int n, int c);

/* out[r*ldo + o] = bias[o] + sum_k in[r*ldi + k] W(k, o): the GEMV kernel, any n. */
cudaError_t kc_gemv(cudaStream_t s, float *out, int ldo, const float *in, int ldi, const void *w,
                    kvgpt_dtype wdt, int ic, int oc, const float *bias, int n);
/* out[r*ldo + o] += bias[o] (after a cuBLAS product). */
cudaError_t kc_add_bias(cudaStream_t s, float *out, int ldo, const float *bias, int n, int oc);
/* dst[i] = (float) src[i] for i < count, src in dtype dt (exact widening). */
cudaError_t kc_widen(cudaStream_t s, float *dst, const void *src, kvgpt_dtype dt, size_t count);
/* dst[r*ldd + k] = (dt) src[r*lds + k] for r < n, k < width (round to nearest even). */
cudaError_t kc_convert_rows(cudaStream_t s, void *dst, kvgpt_dtype dt, int ldd, const float *src, int lds,
                            int n, int width);
/* Weight rows k0..k0+n-1 of the HF [ic, oc] layout (src: n rows of oc floats)
 * into W stored [oc][ic] in dtype wdt: W[o*ic + k0 + i] = src[i*oc + o]. */
cudaError_t kc_wmat_rows_in(cudaStream_t s, void *w, kvgpt_dtype wdt, int ic, int oc, int k0, int n,
                            const float *src);

/* K and V of n rows (qkv rows: k at +c, v at +2c, c = n_head*hs) into one
 * layer's cache [n_seq][n_head][ctx][hs] at (seq[r], pos[r]). */
cudaError_t kc_kv_store(cudaStream_t s, void *k_cache, void *v_cache, kvgpt_dtype kvdt, const float *qkv,
                        int ldqkv, const int32_t *seq, const int32_t *pos, int n, int n_head, int hs, int ctx);
/* Causal attention (ops_attention's contract). part: workspace of
 * n * n_head * splits * kc_att_part_floats(hs) floats when splits > 1, else unused. */
cudaError_t kc_attention(cudaStream_t s, float *out, int ldo, const float *q, int ldq, const void *k_cache,
                         const void *v_cache, kvgpt_dtype kvdt, const int32_t *seq, const int32_t *pos, int n,
                         int n_head, int hs, int ctx, int splits, float *part);

#endif
