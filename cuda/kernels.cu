/* cuda/kernels.cu — the CUDA kernels of the CUDA port and their launchers.
 *
 * Correctness first: every kernel is the plain loop of its ops/ counterpart
 * (ops/rowwise.c, ops/attention.c) spread over threads, with the same
 * formulas (layernorm in double, GELU through erfc / 1/(1+exp), RNE half
 * conversions). No atomics anywhere: each output element is written by one
 * thread after a fixed-order reduction, so a run repeats its bits exactly.
 *
 * Weights live as W^T, row-major [oc][ic] (element W(k, o) at o*ic + k) in
 * f32, f16 or bf16: a decode GEMV reads each output's weights contiguously,
 * cuBLAS takes the same memory as a column-major [ic x oc] matrix with
 * CUBLAS_OP_T, and the tied embedding row of token t is row t.
 */
#include "cuda/kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>

/* Kernels and device helpers stay out of the global namespace. */
namespace kvgpt_cuda {

/* ---- element types ---- */
__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x)
{
    return __float2bfloat16_rn(x);
}

/* Sum over the 32 lanes of a warp; every lane must call it and gets the sum. */
__device__ __forceinline__ float warp_sum(float v)
{
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

#define EW_THREADS 256
/* Blocks for a grid-stride loop over len elements (grid-stride covers the rest). */
static unsigned ew_blocks(size_t len)
{
    size_t b = (len + EW_THREADS - 1) / EW_THREADS;
    return (unsigned)(b > 65535 ? 65535 : b);
}

/* ---- embedding: one block per row ---- */
template <typename T>
__global__ void embed_kernel(float *x, const T *w, const float *wpe, const int32_t *tok, const int32_t *pos,
                             int c)
{
    const int r = blockIdx.x;
    const T *wr = w + (size_t)tok[r] * (size_t)c;   /* ic == c: row tok of [oc][ic] is column tok of W */
    const float *pr = wpe + (size_t)pos[r] * (size_t)c;
    float *xr = x + (size_t)r * (size_t)c;
    for (int i = threadIdx.x; i < c; i += blockDim.x) xr[i] = to_f32(wr[i]) + pr[i];
}

/* ---- layernorm: one block per row, in double like ops/rowwise.c ---- */
#define LN_THREADS 256

/* Block-wide sum; all threads get it. red has LN_THREADS doubles; the trailing
 * barrier lets the caller reuse red at once. */
__device__ double block_sum(double v, double *red)
{
    red[threadIdx.x] = v;
    __syncthreads();
    for (int half = LN_THREADS / 2; half > 0; half >>= 1) {
        if ((int)threadIdx.x < half) red[threadIdx.x] += red[threadIdx.x + half];
        __syncthreads();
    }
    const double total = red[0];
    __syncthreads();
    return total;
}

/* out may alias x: the last loop reads x[i] and writes out[i] in the same thread. */
__global__ void __launch_bounds__(LN_THREADS)
layernorm_kernel(float *out, const float *x, const float *w, const float *b, int c, float eps)
{
    __shared__ double red[LN_THREADS];
    const float *xr = x + (size_t)blockIdx.x * (size_t)c;
    float *orow = out + (size_t)blockIdx.x * (size_t)c;
    double s = 0.0;
    for (int i = threadIdx.x; i < c; i += LN_THREADS) s += xr[i];
    const double mean = block_sum(s, red) / c;
    double v = 0.0;
    for (int i = threadIdx.x; i < c; i += LN_THREADS) {
        const double d = xr[i] - mean;
        v += d * d;
    }
    const double rstd = 1.0 / sqrt(block_sum(v, red) / c + eps);
    for (int i = threadIdx.x; i < c; i += LN_THREADS) {
        const double y = (xr[i] - mean) * rstd * w[i];
        orow[i] = (float)(b ? y + b[i] : y);
    }
}

/* ---- elementwise ---- */
/* 0.5 x (1 + erf(x / sqrt 2)), through erfc as on the CPU (no cancellation in the left tail). */
__global__ void gelu_erf_kernel(float *x, size_t len)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x)
        x[i] = 0.5f * x[i] * erfcf(-x[i] * 0.70710678118654752f);
}

/* 0.5 x (1 + tanh u) = x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3). */
__global__ void gelu_tanh_kernel(float *x, size_t len)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x) {
        const float v = x[i];
        const float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
        x[i] = v / (1.0f + expf(-2.0f * u));
    }
}

__global__ void add_kernel(float *x, const float *y, size_t len)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x)
        x[i] += y[i];
}

/* dst row r = src row idx[r]; one block per row. */
__global__ void gather_rows_kernel(float *dst, const float *src, const int32_t *idx, int c)
{
    const float *sr = src + (size_t)idx[blockIdx.x] * (size_t)c;
    float *dr = dst + (size_t)blockIdx.x * (size_t)c;
    for (int i = threadIdx.x; i < c; i += blockDim.x) dr[i] = sr[i];
}

/* ---- matrix products ---- */
#define GEMV_WARPS 8

/* One warp per output column o, for a group of up to KC_GEMV_GROUP rows
 * (blockIdx.y). Lane l sums k = l, l+32, ... in increasing k, then the fixed
 * xor tree adds the 32 lanes: a row's result depends on nothing but that row
 * (not on n, nor on the other rows of its group). f32 accumulation, f32 inputs:
 * half weights are widened exactly, as ops/matmul.c does. */
template <typename T>
__global__ void __launch_bounds__(32 * GEMV_WARPS)
gemv_kernel(float *out, int ldo, const float *in, int ldi, const T *w, int ic, int oc, const float *bias, int n)
{
    const int lane = threadIdx.x & 31;
    const int o = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    if (o >= oc) return;   /* o is the same for the whole warp: it leaves together */
    const int r0 = blockIdx.y * KC_GEMV_GROUP;
    const int nr = min(KC_GEMV_GROUP, n - r0);
    const T *wo = w + (size_t)o * (size_t)ic;
    const float *x = in + (size_t)r0 * (size_t)ldi;
    float acc[KC_GEMV_GROUP];
#pragma unroll
    for (int r = 0; r < KC_GEMV_GROUP; r++) acc[r] = 0.0f;
    for (int k = lane; k < ic; k += 32) {
        const float wk = to_f32(wo[k]);
#pragma unroll
        for (int r = 0; r < KC_GEMV_GROUP; r++)
            if (r < nr) acc[r] = fmaf(x[(size_t)r * (size_t)ldi + k], wk, acc[r]);
    }
#pragma unroll
    for (int r = 0; r < KC_GEMV_GROUP; r++) {
        const float v = warp_sum(acc[r]);   /* all lanes take part, whatever nr is */
        if (lane == 0 && r < nr) out[(size_t)(r0 + r) * (size_t)ldo + o] = bias ? v + bias[o] : v;
    }
}

__global__ void add_bias_kernel(float *out, int ldo, const float *bias, int n, int oc)
{
    const size_t len = (size_t)n * (size_t)oc;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x) {
        const size_t r = i / (size_t)oc, o = i % (size_t)oc;
        out[r * (size_t)ldo + o] += bias[o];
    }
}

template <typename T>
__global__ void widen_kernel(float *dst, const T *src, size_t count)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = to_f32(src[i]);
}

template <typename T>
__global__ void convert_rows_kernel(T *dst, int ldd, const float *src, int lds, int n, int width)
{
    const size_t len = (size_t)n * (size_t)width;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x) {
        const size_t r = i / (size_t)width, k = i % (size_t)width;
        dst[r * (size_t)ldd + k] = from_f32<T>(src[r * (size_t)lds + k]);
    }
}

/* Transposing load: i (the source row) runs fastest so that each thread
 * group writes contiguous runs of W[o][k0 .. k0+n). Load time only. */
template <typename T>
__global__ void wmat_rows_in_kernel(T *w, int ic, int oc, int k0, int n, const float *src)
{
    const size_t len = (size_t)n * (size_t)oc;
    for (size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x; j < len; j += (size_t)gridDim.x * blockDim.x) {
        const size_t i = j % (size_t)n, o = j / (size_t)n;
        w[o * (size_t)ic + (size_t)k0 + i] = from_f32<T>(src[i * (size_t)oc + o]);
    }
}

/* ---- KV cache ---- */
/* One block per row; thread j < c = n_head*hs is head j/hs, lane j%hs. */
template <typename T>
__global__ void kv_store_kernel(T *kc, T *vc, const float *qkv, int ldqkv, const int32_t *seq, const int32_t *pos,
                                int n_head, int hs, int ctx)
{
    const int r = blockIdx.x, c = n_head * hs;
    const float *row = qkv + (size_t)r * (size_t)ldqkv;
    for (int j = threadIdx.x; j < c; j += blockDim.x) {
        const int h = j / hs, d = j % hs;
        const size_t at = (((size_t)seq[r] * (size_t)n_head + (size_t)h) * (size_t)ctx + (size_t)pos[r]) *
                          (size_t)hs + (size_t)d;
        kc[at] = from_f32<T>(row[c + j]);
        vc[at] = from_f32<T>(row[2 * c + j]);
    }
}

/* ---- attention ----
 * Block (h, r, split) covers positions [split*chunk, min((split+1)*chunk, pos[r]+1))
 * of sequence seq[r], head h, in tiles of ATT_TILE with an online softmax:
 * m = running max of the scaled scores, l = sum of exp(score - m), acc[d] =
 * sum of exp(score - m) v[t][d]; each tile rescales them by exp(m_old - m_new).
 * With one split the block writes acc / l; with several it writes (m, l, acc)
 * to part and attention_combine_kernel merges the splits. Shared memory:
 * q (hs) | acc (hs) | tile scores (ATT_TILE) floats. */
#define ATT_THREADS 128
#define ATT_TILE 64   /* <= ATT_THREADS: thread j turns score j into its weight */

template <typename T>
__global__ void __launch_bounds__(ATT_THREADS)
attention_kernel(float *out, int ldo, const float *q, int ldq, const T *kc, const T *vc, const int32_t *seq,
                 const int32_t *pos, int n_head, int hs, int ctx, int chunk, float *part)
{
    extern __shared__ float sm[];
    float *qs = sm, *acc = sm + hs, *sc = sm + 2 * hs;
    const int h = blockIdx.x, r = blockIdx.y, split = blockIdx.z;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nwarps = ATT_THREADS / 32;
    const int np = pos[r] + 1;   /* causal: positions 0..pos[r] */
    const int t_begin = split * chunk;
    if (t_begin >= np) return;   /* this split is past the row's end; the combine skips it */
    const int t_end = min(np, t_begin + chunk);
    const size_t slice = ((size_t)seq[r] * (size_t)n_head + (size_t)h) * (size_t)ctx * (size_t)hs;
    const T *K = kc + slice, *V = vc + slice;
    const float *qr = q + (size_t)r * (size_t)ldq + (size_t)h * (size_t)hs;
    const float scale = 1.0f / sqrtf((float)hs);
    for (int d = tid; d < hs; d += ATT_THREADS) {
        qs[d] = qr[d];
        acc[d] = 0.0f;
    }
    __syncthreads();
    float m = -INFINITY, l = 0.0f;   /* the same values in every thread */
    for (int t0 = t_begin; t0 < t_end; t0 += ATT_TILE) {
        const int nt = min(ATT_TILE, t_end - t0);
        /* Scores: one warp per position, lanes across d. */
        for (int j = warp; j < nt; j += nwarps) {
            const T *kr = K + (size_t)(t0 + j) * (size_t)hs;
            float s = 0.0f;
            for (int d = lane; d < hs; d += 32) s = fmaf(qs[d], to_f32(kr[d]), s);
            s = warp_sum(s);
            if (lane == 0) sc[j] = s * scale;
        }
        __syncthreads();
        float mt = m;
        for (int j = 0; j < nt; j++) mt = fmaxf(mt, sc[j]);
        __syncthreads();   /* everyone has read the raw scores before they become weights */
        if (tid < nt) sc[tid] = mt == -INFINITY ? 0.0f : expf(sc[tid] - mt);
        const float corr = m == -INFINITY ? 0.0f : expf(m - mt);
        __syncthreads();
        float ls = 0.0f;
        for (int j = 0; j < nt; j++) ls += sc[j];
        l = l * corr + ls;
        for (int d = tid; d < hs; d += ATT_THREADS) {   /* acc[d] belongs to this thread alone */
            float a = acc[d] * corr;
            for (int j = 0; j < nt; j++) a = fmaf(sc[j], to_f32(V[(size_t)(t0 + j) * (size_t)hs + d]), a);
            acc[d] = a;
        }
        m = mt;
        __syncthreads();   /* the next tile overwrites sc */
    }
    if (!part) {
        float *orow = out + (size_t)r * (size_t)ldo + (size_t)h * (size_t)hs;
        for (int d = tid; d < hs; d += ATT_THREADS) orow[d] = acc[d] / l;
        return;
    }
    float *pp = part + (((size_t)r * (size_t)n_head + (size_t)h) * gridDim.z + (size_t)split) * kc_att_part_floats(hs);
    if (tid == 0) {
        pp[0] = m;
        pp[1] = l;
    }
    for (int d = tid; d < hs; d += ATT_THREADS) pp[2 + d] = acc[d];
}

/* Merges the splits of one (row, head): the splits that hold positions of the
 * row are 0..ceil((pos[r]+1)/chunk)-1, all written by attention_kernel. */
__global__ void __launch_bounds__(ATT_THREADS)
attention_combine_kernel(float *out, int ldo, const float *part, const int32_t *pos, int n_head, int hs,
                         int chunk, int splits)
{
    const int h = blockIdx.x, r = blockIdx.y;
    const int ns = (pos[r] + 1 + chunk - 1) / chunk;
    const size_t pf = kc_att_part_floats(hs);
    const float *pp = part + ((size_t)r * (size_t)n_head + (size_t)h) * (size_t)splits * pf;
    float mx = -INFINITY;
    for (int s = 0; s < ns; s++) mx = fmaxf(mx, pp[(size_t)s * pf]);
    float den = 0.0f;
    for (int s = 0; s < ns; s++) {
        const float ms = pp[(size_t)s * pf];
        den += (ms == -INFINITY ? 0.0f : expf(ms - mx)) * pp[(size_t)s * pf + 1];
    }
    float *orow = out + (size_t)r * (size_t)ldo + (size_t)h * (size_t)hs;
    for (int d = threadIdx.x; d < hs; d += ATT_THREADS) {
        float num = 0.0f;
        for (int s = 0; s < ns; s++) {
            const float ms = pp[(size_t)s * pf];
            num += (ms == -INFINITY ? 0.0f : expf(ms - mx)) * pp[(size_t)s * pf + 2 + d];
        }
        orow[d] = num / den;
    }
}

}   // namespace kvgpt_cuda
using namespace kvgpt_cuda;

/* ---- launchers ---- */
/* Returns F<T>(args...) with T the element type of dtype dt. */
#define KC_DISPATCH(dt, F, ...)                                                   \
    switch (dt) {                                                                 \
    case KVGPT_DTYPE_F16: return F<__half>(__VA_ARGS__);                          \
    case KVGPT_DTYPE_BF16: return F<__nv_bfloat16>(__VA_ARGS__);                  \
    default: return F<float>(__VA_ARGS__);                                        \
    }

template <typename T> static cudaError_t preload_t(void)
{
    cudaFuncAttributes a;
    cudaError_t e;
    if ((e = cudaFuncGetAttributes(&a, embed_kernel<T>)) || (e = cudaFuncGetAttributes(&a, gemv_kernel<T>)) ||
        (e = cudaFuncGetAttributes(&a, convert_rows_kernel<T>)) || (e = cudaFuncGetAttributes(&a, widen_kernel<T>)) ||
        (e = cudaFuncGetAttributes(&a, wmat_rows_in_kernel<T>)) || (e = cudaFuncGetAttributes(&a, kv_store_kernel<T>)) ||
        (e = cudaFuncGetAttributes(&a, attention_kernel<T>)))
        return e;
    return cudaSuccess;
}

cudaError_t kc_preload(void)
{
    cudaFuncAttributes a;
    cudaError_t e;
    if ((e = preload_t<float>()) || (e = preload_t<__half>()) || (e = preload_t<__nv_bfloat16>()) ||
        (e = cudaFuncGetAttributes(&a, layernorm_kernel)) || (e = cudaFuncGetAttributes(&a, gelu_erf_kernel)) ||
        (e = cudaFuncGetAttributes(&a, gelu_tanh_kernel)) || (e = cudaFuncGetAttributes(&a, add_kernel)) ||
        (e = cudaFuncGetAttributes(&a, gather_rows_kernel)) || (e = cudaFuncGetAttributes(&a, add_bias_kernel)) ||
        (e = cudaFuncGetAttributes(&a, attention_combine_kernel)))
        return e;
    return cudaSuccess;
}

template <typename T>
static cudaError_t embed_t(cudaStream_t s, float *x, const void *w, const float *wpe, const int32_t *tok,
                           const int32_t *pos, int n, int c)
{
    embed_kernel<T><<<n, EW_THREADS, 0, s>>>(x, (const T *)w, wpe, tok, pos, c);
    return cudaGetLastError();
}

cudaError_t kc_embed(cudaStream_t s, float *x, const void *w, kvgpt_dtype wdt, const float *wpe,
                     const int32_t *tok, const int32_t *pos, int n, int c)
{
    if (n <= 0 || c <= 0) return cudaSuccess;
    KC_DISPATCH(wdt, embed_t, s, x, w, wpe, tok, pos, n, c)
}

cudaError_t kc_layernorm(cudaStream_t s, float *out, const float *x, const float *w, const float *b, int n, int c,
                         float eps)
{
    if (n <= 0 || c <= 0) return cudaSuccess;
    layernorm_kernel<<<n, LN_THREADS, 0, s>>>(out, x, w, b, c, eps);
    return cudaGetLastError();
}

cudaError_t kc_gelu(cudaStream_t s, float *x, size_t len, kvgpt_gelu kind)
{
    if (len == 0) return cudaSuccess;
    if (kind == KVGPT_GELU_TANH) gelu_tanh_kernel<<<ew_blocks(len), EW_THREADS, 0, s>>>(x, len);
    else gelu_erf_kernel<<<ew_blocks(len), EW_THREADS, 0, s>>>(x, len);
    return cudaGetLastError();
}

cudaError_t kc_add(cudaStream_t s, float *x, const float *y, size_t len)
{
    if (len == 0) return cudaSuccess;
    add_kernel<<<ew_blocks(len), EW_THREADS, 0, s>>>(x, y, len);
    return cudaGetLastError();
}

cudaError_t kc_gather_rows(cudaStream_t s, float *dst, const float *src, const int32_t *idx, int n, int c)
{
    if (n <= 0 || c <= 0) return cudaSuccess;
    gather_rows_kernel<<<n, EW_THREADS, 0, s>>>(dst, src, idx, c);
    return cudaGetLastError();
}

template <typename T>
static cudaError_t gemv_t(cudaStream_t s, float *out, int ldo, const float *in, int ldi, const void *w, int ic,
                          int oc, const float *bias, int n)
{
    dim3 grid((unsigned)((oc + GEMV_WARPS - 1) / GEMV_WARPS), (unsigned)((n + KC_GEMV_GROUP - 1) / KC_GEMV_GROUP));
    gemv_kernel<T><<<grid, 32 * GEMV_WARPS, 0, s>>>(out, ldo, in, ldi, (const T *)w, ic, oc, bias, n);
    return cudaGetLastError();
}

cudaError_t kc_gemv(cudaStream_t s, float *out, int ldo, const float *in, int ldi, const void *w, kvgpt_dtype wdt,
                    int ic, int oc, const float *bias, int n)
{
    if (n <= 0 || oc <= 0) return cudaSuccess;
    KC_DISPATCH(wdt, gemv_t, s, out, ldo, in, ldi, w, ic, oc, bias, n)
}

cudaError_t kc_add_bias(cudaStream_t s, float *out, int ldo, const float *bias, int n, int oc)
{
    if (n <= 0 || oc <= 0) return cudaSuccess;
    add_bias_kernel<<<ew_blocks((size_t)n * (size_t)oc), EW_THREADS, 0, s>>>(out, ldo, bias, n, oc);
    return cudaGetLastError();
}

template <typename T> static cudaError_t widen_t(cudaStream_t s, float *dst, const void *src, size_t count)
{
    widen_kernel<T><<<ew_blocks(count), EW_THREADS, 0, s>>>(dst, (const T *)src, count);
    return cudaGetLastError();
}

cudaError_t kc_widen(cudaStream_t s, float *dst, const void *src, kvgpt_dtype dt, size_t count)
{
    if (count == 0) return cudaSuccess;
    KC_DISPATCH(dt, widen_t, s, dst, src, count)
}

template <typename T>
static cudaError_t convert_rows_t(cudaStream_t s, void *dst, int ldd, const float *src, int lds, int n, int width)
{
    convert_rows_kernel<T><<<ew_blocks((size_t)n * (size_t)width), EW_THREADS, 0, s>>>((T *)dst, ldd, src, lds, n,
                                                                                       width);
    return cudaGetLastError();
}

cudaError_t kc_convert_rows(cudaStream_t s, void *dst, kvgpt_dtype dt, int ldd, const float *src, int lds, int n,
                            int width)
{
    if (n <= 0 || width <= 0) return cudaSuccess;
    KC_DISPATCH(dt, convert_rows_t, s, dst, ldd, src, lds, n, width)
}

template <typename T>
static cudaError_t wmat_rows_in_t(cudaStream_t s, void *w, int ic, int oc, int k0, int n, const float *src)
{
    wmat_rows_in_kernel<T><<<ew_blocks((size_t)n * (size_t)oc), EW_THREADS, 0, s>>>((T *)w, ic, oc, k0, n, src);
    return cudaGetLastError();
}

cudaError_t kc_wmat_rows_in(cudaStream_t s, void *w, kvgpt_dtype wdt, int ic, int oc, int k0, int n,
                            const float *src)
{
    if (n <= 0 || oc <= 0) return cudaSuccess;
    KC_DISPATCH(wdt, wmat_rows_in_t, s, w, ic, oc, k0, n, src)
}

template <typename T>
static cudaError_t kv_store_t(cudaStream_t s, void *k_cache, void *v_cache, const float *qkv, int ldqkv,
                              const int32_t *seq, const int32_t *pos, int n, int n_head, int hs, int ctx)
{
    kv_store_kernel<T><<<n, EW_THREADS, 0, s>>>((T *)k_cache, (T *)v_cache, qkv, ldqkv, seq, pos, n_head, hs, ctx);
    return cudaGetLastError();
}

cudaError_t kc_kv_store(cudaStream_t s, void *k_cache, void *v_cache, kvgpt_dtype kvdt, const float *qkv, int ldqkv,
                        const int32_t *seq, const int32_t *pos, int n, int n_head, int hs, int ctx)
{
    if (n <= 0 || n_head <= 0 || hs <= 0) return cudaSuccess;
    KC_DISPATCH(kvdt, kv_store_t, s, k_cache, v_cache, qkv, ldqkv, seq, pos, n, n_head, hs, ctx)
}

template <typename T>
static cudaError_t attention_t(cudaStream_t s, float *out, int ldo, const float *q, int ldq, const void *k_cache,
                               const void *v_cache, const int32_t *seq, const int32_t *pos, int n, int n_head, int hs,
                               int ctx, int splits, float *part)
{
    const size_t smem = (2 * (size_t)hs + ATT_TILE) * sizeof(float);
    const int chunk = splits > 1 ? KC_ATT_CHUNK : ctx;
    dim3 grid((unsigned)n_head, (unsigned)n, (unsigned)(splits > 1 ? splits : 1));
    attention_kernel<T><<<grid, ATT_THREADS, smem, s>>>(out, ldo, q, ldq, (const T *)k_cache, (const T *)v_cache, seq,
                                                       pos, n_head, hs, ctx, chunk, splits > 1 ? part : NULL);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess || splits <= 1) return e;
    attention_combine_kernel<<<dim3((unsigned)n_head, (unsigned)n), ATT_THREADS, 0, s>>>(out, ldo, part, pos, n_head,
                                                                                         hs, chunk, splits);
    return cudaGetLastError();
}

cudaError_t kc_attention(cudaStream_t s, float *out, int ldo, const float *q, int ldq, const void *k_cache,
                         const void *v_cache, kvgpt_dtype kvdt, const int32_t *seq, const int32_t *pos, int n,
                         int n_head, int hs, int ctx, int splits, float *part)
{
    if (n <= 0 || n_head <= 0 || hs <= 0) return cudaSuccess;
    KC_DISPATCH(kvdt, attention_t, s, out, ldo, q, ldq, k_cache, v_cache, seq, pos, n, n_head, hs, ctx, splits,
                part)
}
