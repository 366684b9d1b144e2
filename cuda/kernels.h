/* cuda/kernels.h — the CUDA kernels of the CUDA port, as host launchers.
 *
 * C++ (nvcc) only: included by the .cu files of cuda/, never by C code. Every launcher
 * queues its kernel on `s` and returns cudaGetLastError() (a bad launch shows
 * here; a fault inside a kernel only at the next synchronization). All
 * pointers are device pointers unless a comment says otherwise; sizes of 0
 * launch nothing. The arithmetic is ops/ops.h's, kernel by kernel: see each
 * kernel's comment in kernels.cu.
 */
#ifndef KVGPT_CUDA_KERNELS_H
#define KVGPT_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <cuda_runtime.h>
#include "kvgpt.h"

/* ---- matrix products ----
 * Weights are W^T, row-major [oc][ldw] in their dtype, ldw = ic rounded up
 * to KC_MM_GROUP (zeros past ic): each output's weights are one contiguous,
 * 16-byte aligned row, read with 16-byte loads.
 *
 * The one order of every product, for any number of rows n and any tiling:
 * out[r][o] = bias[o] + S, where S is the xor-butterfly sum (offsets 16, 8,
 * 4, 2, 1) of 32 lane partials, and lane l's partial is one fmaf chain over
 * k in increasing order through the groups g = l, l + 32, l + 64, ... of
 * KC_MM_GROUP consecutive k (k < ic). So a row's bits never depend on n or
 * on the rows beside it: decode = prefill = no-cache recompute, batched =
 * alone, as on the CPU. The 32 lanes are the split of K; no split crosses
 * warps, because outputs alone give enough parallelism (oc >= 768 warps for
 * every GPT-2 matrix). */
#define KC_MM_GROUP 8
#define KC_MM_STEP (32 * KC_MM_GROUP)   /* k covered by one warp step */

static inline __host__ __device__ int kc_mm_ldw(int ic) { return (ic + KC_MM_GROUP - 1) / KC_MM_GROUP * KC_MM_GROUP; }

/* What happens to each output y of a product (fused in its kernel; the
 * results are the bits the separate kernels give). */
enum { KC_EPI_NONE, KC_EPI_GELU_ERF, KC_EPI_GELU_TANH, KC_EPI_ADD, KC_EPI_KV };
typedef struct {
    int kind;
    float *res;               /* ADD: res[r*ldr + o] += y (out gets y too) */
    int ldr;
    void *k_cache, *v_cache;  /* KV: outputs c..3c-1 of row r also go to the cache at (seq[r], pos[r]) */
    kvgpt_dtype kv_dtype;
    const int32_t *seq, *pos;
    int n_head, hs, ctx;
} kc_epilogue;

/* out[r*ldo + o] = epilogue(bias[o] + sum_k in[r*ldi + k] W(k, o)), any n. */
cudaError_t kc_matmul(cudaStream_t s, float *out, int ldo, const float *in, int ldi, const void *w, kvgpt_dtype wdt,
                      int ic, int oc, const float *bias, int n, const kc_epilogue *epi);

/* ---- attention ----
 * A context longer than KC_ATT_CHUNK positions is always cut in splits of
 * KC_ATT_CHUNK (flash-decoding: more blocks than rows x heads for a decode
 * step), whatever the number of rows, so that a row's result never depends
 * on the rows computed with it; calls go in groups of at most
 * KC_ATT_SPLIT_MAX_ROWS rows, which bounds the partials' scratch. */
#define KC_ATT_CHUNK 128
#define KC_ATT_SPLIT_MAX_ROWS 64

/* Splits of a context of ctx positions, and the floats of partial results one
 * (row, head, split) leaves: running max, sum, then hs accumulators. */
static inline __host__ __device__ int kc_att_splits(int ctx) { return (ctx + KC_ATT_CHUNK - 1) / KC_ATT_CHUNK; }
static inline __host__ __device__ size_t kc_att_part_floats(int hs) { return (size_t)hs + 2; }
/* Dynamic shared memory of one attention block for head size hs. */
size_t kc_att_smem_bytes(int hs);

/* Forces loading of every kernel now (CUDA lazy loading would otherwise load
 * each one, allocating, at its first launch, i.e. during the first forward). */
cudaError_t kc_preload(void);

/* x[r][i] = W(i, tok[r]) + wpe[pos[r]][i], W of dtype wdt in the [oc][ldw] layout. */
cudaError_t kc_embed(cudaStream_t s, float *x, const void *w, kvgpt_dtype wdt, int ldw, const float *wpe,
                     const int32_t *tok, const int32_t *pos, int n, int c);
cudaError_t kc_layernorm(cudaStream_t s, float *out, const float *x, const float *w, const float *b,
                         int n, int c, float eps);
cudaError_t kc_gelu(cudaStream_t s, float *x, size_t len, kvgpt_gelu kind);
cudaError_t kc_add(cudaStream_t s, float *x, const float *y, size_t len);
cudaError_t kc_gather_rows(cudaStream_t s, float *dst, const float *src, const int32_t *idx, int n, int c);

/* dst[r*ldd + k] = (dt) src[r*lds + k] for r < n, k < width (round to nearest even). */
cudaError_t kc_convert_rows(cudaStream_t s, void *dst, kvgpt_dtype dt, int ldd, const float *src, int lds,
                            int n, int width);
/* Weight rows k0..k0+n-1 of the HF [ic, oc] layout (src: n rows of oc floats)
 * into W stored [oc][ldw] in dtype wdt: W[o*ldw + k0 + i] = src[i*oc + o]. */
cudaError_t kc_wmat_rows_in(cudaStream_t s, void *w, kvgpt_dtype wdt, int ldw, int oc, int k0, int n,
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

/* ---- sampling (model/sampler.c's draws, see kernels.cu) ---- */
#define KC_SAMPLE_MAX_ROWS 64
typedef struct {
    float temperature, top_p;
    int top_k;
    int vocab;
    int rows;
    uint64_t rng[KC_SAMPLE_MAX_ROWS];   /* the rows' generator states, passed by value */
} kc_sample_args;
typedef struct {
    int32_t id;
    int32_t drew;                       /* 1 when a uniform was drawn (the state advanced) */
    uint64_t rng;                       /* the state after the draw */
} kc_sample_out;
/* Device scratch one row needs. */
size_t kc_sample_scratch_bytes(int vocab);
/* Draws one id for each of a->rows rows of logits ([rows][vocab]) into out[rows];
 * scratch holds rows * kc_sample_scratch_bytes(vocab) bytes. */
cudaError_t kc_sample(cudaStream_t s, const float *logits, const kc_sample_args *a, kc_sample_out *out,
                      void *scratch);

/* ---- the bandwidth probe ---- */
/* Reads bytes (a multiple of 16, 16-byte aligned) of buf once with 16-byte
 * loads, xor-reduced into sink[0..blocks): the streaming read decode does. */
cudaError_t kc_probe_read(cudaStream_t s, const void *buf, size_t bytes, uint64_t *sink, int blocks);
#define KC_PROBE_BLOCKS 4096

#endif
