/* cuda/kernels.cu — the CUDA kernels of the CUDA port and their launchers.
 *
 * Correctness first: every kernel is the plain loop of its ops/ counterpart
 * (ops/rowwise.c, ops/attention.c, model/sampler.c) spread over threads, with
 * the same formulas (layernorm in double, GELU through erfc / 1/(1+exp), RNE
 * half conversions). No float atomics anywhere: each output element is
 * written by one thread after a fixed-order reduction, so a run repeats its
 * bits exactly. Arithmetic that a fused epilogue repeats is written with
 * explicit _rn intrinsics, so that no multiply-add is contracted differently
 * in one kernel than in the other.
 *
 * Weights live as W^T, row-major [oc][ldw] (element W(k, o) at o*ldw + k) in
 * f32, f16 or bf16: a product reads each output's weights contiguously, and
 * the tied embedding row of token t is row t.
 */
#include "cuda/kernels.h"
#include "common/fexp.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include <string.h>

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

/* Sum over the 32 lanes of a warp; every lane must call it and gets the sum
 * (a + b = b + a exactly, so every lane holds the same bits). */
__device__ __forceinline__ float warp_sum(float v)
{
    for (int off = 16; off > 0; off >>= 1) v = __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

#define EW_THREADS 256
/* Blocks for a grid-stride loop over len elements (grid-stride covers the rest). */
static unsigned ew_blocks(size_t len)
{
    size_t b = (len + EW_THREADS - 1) / EW_THREADS;
    return (unsigned)(b > 65535 ? 65535 : b);
}

/* ---- the elementwise formulas (separate kernels and fused epilogues alike) ---- */
/* 0.5 x (1 + erf(x / sqrt 2)), through erfc as on the CPU (no cancellation in the left tail). */
__device__ __forceinline__ float gelu_erf_f(float v)
{
    return __fmul_rn(__fmul_rn(0.5f, v), erfcf(__fmul_rn(-v, 0.70710678118654752f)));
}

/* 0.5 x (1 + tanh u) = x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3). */
__device__ __forceinline__ float gelu_tanh_f(float v)
{
    const float v3 = __fmul_rn(__fmul_rn(v, v), v);
    const float u = __fmul_rn(0.7978845608028654f, __fadd_rn(v, __fmul_rn(0.044715f, v3)));
    return __fdiv_rn(v, __fadd_rn(1.0f, expf(__fmul_rn(-2.0f, u))));
}

/* One K or V element of one row into a layer's cache [n_seq][n_head][ctx][hs]: j = h*hs + d. */
__device__ __forceinline__ void kv_put(void *cache, kvgpt_dtype dt, const int32_t *seq, const int32_t *pos, int r,
                                       int j, int n_head, int hs, int ctx, float v)
{
    const int h = j / hs, d = j % hs;
    const size_t at =
        (((size_t)seq[r] * (size_t)n_head + (size_t)h) * (size_t)ctx + (size_t)pos[r]) * (size_t)hs + (size_t)d;
    if (dt == KVGPT_DTYPE_F16) ((__half *)cache)[at] = __float2half_rn(v);
    else if (dt == KVGPT_DTYPE_BF16) ((__nv_bfloat16 *)cache)[at] = __float2bfloat16_rn(v);
    else ((float *)cache)[at] = v;
}

/* ---- embedding: one block per row ---- */
template <typename T>
__global__ void embed_kernel(float *x, const T *w, int ldw, const float *wpe, const int32_t *tok, const int32_t *pos,
                             int c)
{
    const int r = blockIdx.x;
    const T *wr = w + (size_t)tok[r] * (size_t)ldw;   /* row tok of [oc][ldw] is column tok of W */
    const float *pr = wpe + (size_t)pos[r] * (size_t)c;
    float *xr = x + (size_t)r * (size_t)c;
    for (int i = threadIdx.x; i < c; i += blockDim.x) xr[i] = __fadd_rn(to_f32(wr[i]), pr[i]);
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
__global__ void gelu_erf_kernel(float *x, size_t len)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x)
        x[i] = gelu_erf_f(x[i]);
}

__global__ void gelu_tanh_kernel(float *x, size_t len)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x)
        x[i] = gelu_tanh_f(x[i]);
}

__global__ void add_kernel(float *x, const float *y, size_t len)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x)
        x[i] = __fadd_rn(x[i], y[i]);
}

/* dst row r = src row idx[r]; one block per row. */
__global__ void gather_rows_kernel(float *dst, const float *src, const int32_t *idx, int c)
{
    const float *sr = src + (size_t)idx[blockIdx.x] * (size_t)c;
    float *dr = dst + (size_t)blockIdx.x * (size_t)c;
    for (int i = threadIdx.x; i < c; i += blockDim.x) dr[i] = sr[i];
}

/* ---- matrix products (the order: cuda/kernels.h) ----
 * A warp computes RT rows x OT outputs; its lane l holds the partials of
 * k-groups l, l+32, ... for all of them. A block is wo x wr warps: wo along
 * the outputs, wr along the rows; the wr warps of one output tile read the
 * same weights, which come from DRAM once and from L1/L2 after. Weight
 * loads of U steps are issued before any is used (8 16-byte loads in flight
 * per lane up to 4 outputs per warp). Nothing depends on n but which warps
 * exist and which rows they carry. */
#define MM_MAX_THREADS 256

typedef struct {
    float *out;
    int ldo;
    const float *in;
    int ldi;
    const void *w;
    int ldw, ic, oc, n;
    const float *bias;
    int wo, wr;       /* warps along outputs and along rows in a block */
    int vec_in;       /* in is 16-byte aligned and ldi % 4 == 0: float4 loads of its rows */
    kc_epilogue epi;
} mm_params;

/* 16-byte vectors per group of KC_MM_GROUP weights, and their widening to f32 (exact). */
template <typename T> struct wvec { static const int V = 1; };
template <> struct wvec<float> { static const int V = 2; };

__device__ __forceinline__ void widen8(const uint4 *v, float *f, float)
{
    f[0] = __uint_as_float(v[0].x), f[1] = __uint_as_float(v[0].y), f[2] = __uint_as_float(v[0].z);
    f[3] = __uint_as_float(v[0].w), f[4] = __uint_as_float(v[1].x), f[5] = __uint_as_float(v[1].y);
    f[6] = __uint_as_float(v[1].z), f[7] = __uint_as_float(v[1].w);
}

/* bf16 element 2i is the low half of word i (little-endian): shifting it up is the exact f32. */
__device__ __forceinline__ void widen8(const uint4 *v, float *f, __nv_bfloat16)
{
    const uint32_t u[4] = {v[0].x, v[0].y, v[0].z, v[0].w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        f[2 * i] = __uint_as_float(u[i] << 16);
        f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
    }
}

__device__ __forceinline__ void widen8(const uint4 *v, float *f, __half)
{
    const uint32_t u[4] = {v[0].x, v[0].y, v[0].z, v[0].w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const float2 t = __half22float2(*reinterpret_cast<const __half2 *>(&u[i]));
        f[2 * i] = t.x;
        f[2 * i + 1] = t.y;
    }
}

__device__ __forceinline__ void mm_store(const mm_params &a, int r, int o, float v)
{
    float y = a.bias ? __fadd_rn(v, a.bias[o]) : v;
    if (a.epi.kind == KC_EPI_GELU_ERF) y = gelu_erf_f(y);
    else if (a.epi.kind == KC_EPI_GELU_TANH) y = gelu_tanh_f(y);
    a.out[(size_t)r * (size_t)a.ldo + (size_t)o] = y;
    if (a.epi.kind == KC_EPI_ADD) {
        float *x = a.epi.res + (size_t)r * (size_t)a.epi.ldr + (size_t)o;
        *x = __fadd_rn(*x, y);
    } else if (a.epi.kind == KC_EPI_KV) {
        const int c = a.epi.n_head * a.epi.hs;
        if (o >= c)
            kv_put(o < 2 * c ? a.epi.k_cache : a.epi.v_cache, a.epi.kv_dtype, a.epi.seq, a.epi.pos, r,
                   o < 2 * c ? o - c : o - 2 * c, a.epi.n_head, a.epi.hs, a.epi.ctx, y);
    }
}

template <typename T, int RT, int OT>
__global__ void __launch_bounds__(MM_MAX_THREADS) mm_kernel(const mm_params a)
{
    constexpr int V = wvec<T>::V;
    constexpr int U = OT * V >= 8 ? 1 : 8 / (OT * V);   /* 8 loads (128 bytes) in flight per lane */
    constexpr int ELEMS = 16 / (int)sizeof(T);   /* weights per 16-byte load */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int o0 = (blockIdx.x * a.wo + warp % a.wo) * OT;
    const int r0 = (blockIdx.y * a.wr + warp / a.wo) * RT;
    if (o0 >= a.oc || r0 >= a.n) return;   /* the same for the whole warp: it leaves together */
    const int nr = min(RT, a.n - r0);
    const uint4 *wrow[OT];
#pragma unroll
    for (int t = 0; t < OT; t++)   /* outputs past oc read row oc-1 and are never stored */
        wrow[t] = reinterpret_cast<const uint4 *>((const T *)a.w + (size_t)min(o0 + t, a.oc - 1) * (size_t)a.ldw);
    float acc[RT][OT];
#pragma unroll
    for (int r = 0; r < RT; r++)
#pragma unroll
        for (int t = 0; t < OT; t++) acc[r][t] = 0.0f;

    const int steps = (a.ic + KC_MM_STEP - 1) / KC_MM_STEP;
    for (int j0 = 0; j0 < steps; j0 += U) {
        uint4 wv[U][OT][V];
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int k = (j0 + u) * KC_MM_STEP + lane * KC_MM_GROUP;
#pragma unroll
            for (int t = 0; t < OT; t++)
#pragma unroll
                for (int q = 0; q < V; q++)
                    wv[u][t][q] = k < a.ic ? __ldg(wrow[t] + k / ELEMS + q) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int k = (j0 + u) * KC_MM_STEP + lane * KC_MM_GROUP;
            if (k >= a.ic) break;   /* this lane's groups have ended */
            const int lim = a.ic - k;
            float wf[OT][KC_MM_GROUP];
#pragma unroll
            for (int t = 0; t < OT; t++) widen8(wv[u][t], wf[t], T());
#pragma unroll
            for (int r = 0; r < RT; r++) {
                if (r >= nr) break;
                const float *x = a.in + (size_t)(r0 + r) * (size_t)a.ldi + (size_t)k;
                float xv[KC_MM_GROUP];
                if (lim >= KC_MM_GROUP && a.vec_in) {
                    const float4 x0 = __ldg(reinterpret_cast<const float4 *>(x));
                    const float4 x1 = __ldg(reinterpret_cast<const float4 *>(x) + 1);
                    xv[0] = x0.x, xv[1] = x0.y, xv[2] = x0.z, xv[3] = x0.w;
                    xv[4] = x1.x, xv[5] = x1.y, xv[6] = x1.z, xv[7] = x1.w;
                } else {
#pragma unroll
                    for (int i = 0; i < KC_MM_GROUP; i++) xv[i] = i < lim ? __ldg(x + i) : 0.0f;
                }
                if (lim >= KC_MM_GROUP) {
#pragma unroll
                    for (int t = 0; t < OT; t++)
#pragma unroll
                        for (int i = 0; i < KC_MM_GROUP; i++) acc[r][t] = fmaf(xv[i], wf[t][i], acc[r][t]);
                } else {   /* the last, partial group: k < ic only, in the same order */
#pragma unroll
                    for (int i = 0; i < KC_MM_GROUP; i++)
                        if (i < lim)
#pragma unroll
                            for (int t = 0; t < OT; t++) acc[r][t] = fmaf(xv[i], wf[t][i], acc[r][t]);
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < RT; r++)
#pragma unroll
        for (int t = 0; t < OT; t++) {
            const float v = warp_sum(acc[r][t]);   /* every lane takes part, whatever nr is */
            if (lane == ((r * OT + t) & 31) && r < nr && o0 + t < a.oc) mm_store(a, r0 + r, o0 + t, v);
        }
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
__global__ void wmat_rows_in_kernel(T *w, int ldw, int oc, int k0, int n, const float *src)
{
    const size_t len = (size_t)n * (size_t)oc;
    for (size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x; j < len; j += (size_t)gridDim.x * blockDim.x) {
        const size_t i = j % (size_t)n, o = j / (size_t)n;
        w[o * (size_t)ldw + (size_t)k0 + i] = from_f32<T>(src[i * (size_t)oc + o]);
    }
}

/* ---- KV cache: one block per row; thread j < c = n_head*hs is head j/hs, lane j%hs ---- */
__global__ void kv_store_kernel(void *kc, void *vc, kvgpt_dtype dt, const float *qkv, int ldqkv, const int32_t *seq,
                                const int32_t *pos, int n_head, int hs, int ctx)
{
    const int r = blockIdx.x, c = n_head * hs;
    const float *row = qkv + (size_t)r * (size_t)ldqkv;
    for (int j = threadIdx.x; j < c; j += blockDim.x) {
        kv_put(kc, dt, seq, pos, r, j, n_head, hs, ctx, row[c + j]);
        kv_put(vc, dt, seq, pos, r, j, n_head, hs, ctx, row[2 * c + j]);
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

/* ---- sampling: model/sampler.c's kvgpt_sample_logits, one block per row ----
 * The parts whose order decides bits run in the host's order: the sum of the
 * candidates' weights in id order and the nucleus and draw scans run on one
 * thread, in double. The rest is order-free: the argmax (first of the
 * largest), the k-th largest scaled logit (a radix select on order-preserving
 * keys: an order statistic has one value), the candidates (compacted in id
 * order), the weights (kv_expf, the host's bits) and the nucleus order
 * (a bitonic sort on unique (p desc, id asc) keys). NaN or +Inf logits, or
 * all -Inf: id -1, as the host returns. */
#define SAMPLE_THREADS 1024

/* Larger key <=> larger value; -0 and +0 are one key (they compare equal). */
__device__ __forceinline__ uint32_t order_key(float v)
{
    const uint32_t b = __float_as_uint(v == 0.0f ? 0.0f : v);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__device__ __forceinline__ float key_value(uint32_t k)
{
    return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

/* model/sampler.c's sampler_uniform, bit for bit. */
__device__ __forceinline__ double sample_uniform(uint64_t *state)
{
    uint64_t x = *state;
    if (!x) x = 0x2545F4914F6CDD1Dull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return __dmul_rn((double)((x * 0x2545F4914F6CDD1Dull) >> 11), 1.0 / 9007199254740992.0);
}

__device__ __forceinline__ float nucleus_p(uint64_t key) { return __uint_as_float(~(uint32_t)(key >> 32)); }
__device__ __forceinline__ int32_t nucleus_id(uint64_t key) { return (int32_t)(uint32_t)key; }

struct sample_rows {
    int32_t *id;      /* candidates in id order */
    float *p;         /* their scaled logits, then weights */
    uint64_t *keys;   /* nucleus order, a power of two >= candidates long */
};

__device__ __forceinline__ sample_rows sample_scratch(char *base, int vocab)
{
    sample_rows s;
    s.id = (int32_t *)base;
    s.p = (float *)(base + (size_t)vocab * 4);
    s.keys = (uint64_t *)(base + ((size_t)vocab * 8 + 15) / 16 * 16);
    return s;
}

__global__ void __launch_bounds__(SAMPLE_THREADS)
sample_kernel(const float *logits, const kc_sample_args a, kc_sample_out *out, char *scratch, size_t per_row)
{
    __shared__ float s_val[SAMPLE_THREADS];
    __shared__ int s_idx[SAMPLE_THREADS];
    __shared__ unsigned s_hist[256];
    __shared__ int s_digit, s_k, s_n;
    const int row = blockIdx.x, tid = threadIdx.x, V = a.vocab;
    const float *x = logits + (size_t)row * (size_t)V;
    const sample_rows sc = sample_scratch(scratch + per_row * (size_t)row, V);
    const int chunk = (V + SAMPLE_THREADS - 1) / SAMPLE_THREADS;
    const int i0 = min(V, tid * chunk), i1 = min(V, i0 + chunk);

    /* The argmax: the host keeps the first of the largest. A NaN or +Inf
     * anywhere, or nothing above -Inf, is no draw at all: id -1, as the host. */
    int bi = -1, bad = 0;
    float bv = 0.0f;
    for (int i = i0; i < i1; i++) {
        const float v = x[i];
        bad |= v != v || v == INFINITY;
        if (v == v && (bi < 0 || v > bv)) bi = i, bv = v;
    }
    bad = __syncthreads_or(bad);
    s_idx[tid] = bi;
    s_val[tid] = bv;
    __syncthreads();
    for (int s = SAMPLE_THREADS / 2; s > 0; s >>= 1) {
        if (tid < s) {
            const int j = tid + s;
            if (s_idx[j] >= 0 && (s_idx[tid] < 0 || s_val[j] > s_val[tid] ||
                                  (s_val[j] == s_val[tid] && s_idx[j] < s_idx[tid])))
                s_idx[tid] = s_idx[j], s_val[tid] = s_val[j];
        }
        __syncthreads();
    }
    const int best = (x[0] != x[0] || s_idx[0] < 0) ? 0 : s_idx[0];
    kc_sample_out *o = out + row;
    if (bad || x[best] == -INFINITY) {
        if (tid == 0) o->id = -1, o->drew = 0, o->rng = a.rng[row];
        return;
    }
    if (a.temperature <= 0.0f) {
        if (tid == 0) o->id = best, o->drew = 0, o->rng = a.rng[row];
        return;
    }
    const float inv_t = __fdiv_rn(1.0f, a.temperature);
    const float mx = __fmul_rn(x[best], inv_t);
    if (isinf(mx) && mx > 0.0f) {   /* the host's greedy fallback */
        if (tid == 0) o->id = best, o->drew = 0, o->rng = a.rng[row];
        return;
    }

    /* The k-th largest scaled logit: four 8-bit rounds of a radix select. */
    float cut = -INFINITY;
    if (a.top_k > 0 && a.top_k < V) {
        uint32_t prefix = 0, mask = 0;
        int k = a.top_k;
        for (int shift = 24; shift >= 0; shift -= 8) {
            for (int i = tid; i < 256; i += SAMPLE_THREADS) s_hist[i] = 0;
            __syncthreads();
            for (int i = i0; i < i1; i++) {
                const uint32_t key = order_key(__fmul_rn(x[i], inv_t));
                if ((key & mask) == prefix) atomicAdd(&s_hist[(key >> shift) & 255u], 1u);
            }
            __syncthreads();
            if (tid == 0) {
                int d = 255;
                unsigned above = 0;
                for (; d > 0; d--) {
                    if (above + s_hist[d] >= (unsigned)k) break;
                    above += s_hist[d];
                }
                s_digit = d;
                s_k = k - (int)above;
            }
            __syncthreads();
            prefix |= (uint32_t)s_digit << shift;
            mask |= 255u << shift;
            k = s_k;
            __syncthreads();   /* s_digit, s_k and s_hist are rewritten next round */
        }
        cut = key_value(prefix);
    }

    /* Candidates in id order: each thread's chunk is contiguous, so an
     * exclusive scan over the threads' counts places them. */
    int cnt = 0;
    for (int i = i0; i < i1; i++) {
        const float v = __fmul_rn(x[i], inv_t);
        cnt += v >= cut && v > -INFINITY;
    }
    s_idx[tid] = cnt;
    __syncthreads();
    if (tid == 0) {
        int run = 0;
        for (int t = 0; t < SAMPLE_THREADS; t++) {
            const int c = s_idx[t];
            s_idx[t] = run;
            run += c;
        }
        s_n = run;
    }
    __syncthreads();
    int at = s_idx[tid];
    for (int i = i0; i < i1; i++) {
        const float v = __fmul_rn(x[i], inv_t);
        if (v >= cut && v > -INFINITY) {
            sc.id[at] = i;
            sc.p[at] = kv_expf(__fsub_rn(v, mx));
            at++;
        }
    }
    __syncthreads();
    int n = s_n;
    const int nucleus = a.top_p > 0.0f && a.top_p < 1.0f;
    if (nucleus) {
        unsigned P = 1;
        while (P < (unsigned)n) P <<= 1;
        for (unsigned i = tid; i < P; i += SAMPLE_THREADS)
            sc.keys[i] = i < (unsigned)n ? ((uint64_t)~__float_as_uint(sc.p[i]) << 32) | (uint32_t)sc.id[i] : ~0ull;
        __syncthreads();
        for (unsigned k = 2; k <= P; k <<= 1)
            for (unsigned j = k >> 1; j > 0; j >>= 1) {
                for (unsigned i = tid; i < P; i += SAMPLE_THREADS) {
                    const unsigned l = i ^ j;
                    if (l > i) {
                        const uint64_t ka = sc.keys[i], kb = sc.keys[l];
                        if ((i & k) == 0 ? ka > kb : ka < kb) sc.keys[i] = kb, sc.keys[l] = ka;
                    }
                }
                __syncthreads();
            }
    }
    if (tid != 0) return;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum = __dadd_rn(sum, (double)sc.p[i]);
    if (nucleus) {
        const double want = __dmul_rn((double)a.top_p, sum);
        double acc = 0.0;
        int keep = 0;
        while (keep < n) {
            acc = __dadd_rn(acc, (double)nucleus_p(sc.keys[keep++]));
            if (acc >= want) break;
        }
        n = keep;
        sum = acc;
    }
    uint64_t st = a.rng[row];
    const double r = __dmul_rn(sample_uniform(&st), sum);
    double acc = 0.0;
    int32_t id = -1;
    for (int i = 0; i < n; i++) {
        acc = __dadd_rn(acc, (double)(nucleus ? nucleus_p(sc.keys[i]) : sc.p[i]));
        if (r < acc) {
            id = nucleus ? nucleus_id(sc.keys[i]) : sc.id[i];
            break;
        }
    }
    if (id < 0) id = n ? (nucleus ? nucleus_id(sc.keys[n - 1]) : sc.id[n - 1]) : best;
    o->id = id;
    o->drew = 1;
    o->rng = st;
}

/* ---- the bandwidth probe ---- */
#define PROBE_THREADS 256
#define PROBE_UNROLL 4

__global__ void __launch_bounds__(PROBE_THREADS) probe_kernel(const uint4 *buf, size_t n16, unsigned long long *sink)
{
    const size_t stride = (size_t)gridDim.x * PROBE_THREADS;
    size_t i = (size_t)blockIdx.x * PROBE_THREADS + threadIdx.x;
    uint32_t acc = 0;
    for (; i + (PROBE_UNROLL - 1) * stride < n16; i += PROBE_UNROLL * stride) {
        uint4 v[PROBE_UNROLL];
#pragma unroll
        for (int u = 0; u < PROBE_UNROLL; u++) v[u] = __ldcs(buf + i + (size_t)u * stride);
#pragma unroll
        for (int u = 0; u < PROBE_UNROLL; u++) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    }
    for (; i < n16; i += stride) {
        const uint4 v = __ldcs(buf + i);
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc) atomicXor(sink + blockIdx.x, (unsigned long long)acc);   /* keeps the loads alive */
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

#define KC_LOAD(e, f) (e = cudaFuncGetAttributes(&attr, f)) != cudaSuccess

template <typename T> static cudaError_t preload_t(void)
{
    cudaFuncAttributes attr;
    cudaError_t e;
    if (KC_LOAD(e, embed_kernel<T>) || KC_LOAD(e, (mm_kernel<T, 1, 1>)) || KC_LOAD(e, (mm_kernel<T, 2, 1>)) ||
        KC_LOAD(e, (mm_kernel<T, 4, 1>)) || KC_LOAD(e, (mm_kernel<T, 8, 1>)) || KC_LOAD(e, (mm_kernel<T, 8, 2>)) ||
        KC_LOAD(e, (mm_kernel<T, 8, 8>)) || KC_LOAD(e, convert_rows_kernel<T>) ||
        KC_LOAD(e, wmat_rows_in_kernel<T>) || KC_LOAD(e, attention_kernel<T>))
        return e;
    return cudaSuccess;
}

cudaError_t kc_preload(void)
{
    cudaFuncAttributes attr;
    cudaError_t e;
    if ((e = preload_t<float>()) || (e = preload_t<__half>()) || (e = preload_t<__nv_bfloat16>()) ||
        KC_LOAD(e, layernorm_kernel) || KC_LOAD(e, gelu_erf_kernel) || KC_LOAD(e, gelu_tanh_kernel) ||
        KC_LOAD(e, add_kernel) || KC_LOAD(e, gather_rows_kernel) || KC_LOAD(e, kv_store_kernel) ||
        KC_LOAD(e, attention_combine_kernel) || KC_LOAD(e, sample_kernel) || KC_LOAD(e, probe_kernel))
        return e;
    return cudaSuccess;
}

template <typename T>
static cudaError_t embed_t(cudaStream_t s, float *x, const void *w, int ldw, const float *wpe, const int32_t *tok,
                           const int32_t *pos, int n, int c)
{
    embed_kernel<T><<<n, EW_THREADS, 0, s>>>(x, (const T *)w, ldw, wpe, tok, pos, c);
    return cudaGetLastError();
}

cudaError_t kc_embed(cudaStream_t s, float *x, const void *w, kvgpt_dtype wdt, int ldw, const float *wpe,
                     const int32_t *tok, const int32_t *pos, int n, int c)
{
    if (n <= 0 || c <= 0) return cudaSuccess;
    KC_DISPATCH(wdt, embed_t, s, x, w, ldw, wpe, tok, pos, n, c)
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

template <typename T, int RT, int OT> static cudaError_t mm_launch(cudaStream_t s, const mm_params &a)
{
    dim3 grid((unsigned)((a.oc + OT * a.wo - 1) / (OT * a.wo)), (unsigned)((a.n + RT * a.wr - 1) / (RT * a.wr)));
    mm_kernel<T, RT, OT><<<grid, 32 * a.wo * a.wr, 0, s>>>(a);
    return cudaGetLastError();
}

/* The tile for n rows: one warp per output up to 8 rows (decode: every
 * weight read once, U = 8 loads in flight per lane), 8 rows x 2 outputs per
 * warp and up to 8 row-warps sharing the weights up to 64 rows (batched
 * decode: still one DRAM read of each weight), 8 x 8 register tiles above
 * (prefill: the activations reused 8 times from registers). */
template <typename T> static cudaError_t mm_t(cudaStream_t s, mm_params a)
{
    a.wo = 4;
    a.wr = 1;
    if (a.n == 1) return mm_launch<T, 1, 1>(s, a);
    if (a.n == 2) return mm_launch<T, 2, 1>(s, a);
    if (a.n <= 4) return mm_launch<T, 4, 1>(s, a);
    if (a.n <= 8) return mm_launch<T, 8, 1>(s, a);
    if (a.n <= 64) {
        a.wr = (a.n + 7) / 8;
        a.wo = a.wr >= 4 ? 1 : 4 / a.wr;
        return mm_launch<T, 8, 2>(s, a);
    }
    a.wo = 2;
    a.wr = 4;
    return mm_launch<T, 8, 8>(s, a);
}

cudaError_t kc_matmul(cudaStream_t s, float *out, int ldo, const float *in, int ldi, const void *w, kvgpt_dtype wdt,
                      int ic, int oc, const float *bias, int n, const kc_epilogue *epi)
{
    if (n <= 0 || oc <= 0) return cudaSuccess;
    mm_params a;
    memset(&a, 0, sizeof a);
    a.out = out;
    a.ldo = ldo;
    a.in = in;
    a.ldi = ldi;
    a.w = w;
    a.ldw = kc_mm_ldw(ic);
    a.ic = ic;
    a.oc = oc;
    a.n = n;
    a.bias = bias;
    a.vec_in = ((uintptr_t)in % 16 == 0) && ldi % 4 == 0;
    if (epi) a.epi = *epi;
    KC_DISPATCH(wdt, mm_t, s, a)
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
static cudaError_t wmat_rows_in_t(cudaStream_t s, void *w, int ldw, int oc, int k0, int n, const float *src)
{
    wmat_rows_in_kernel<T><<<ew_blocks((size_t)n * (size_t)oc), EW_THREADS, 0, s>>>((T *)w, ldw, oc, k0, n, src);
    return cudaGetLastError();
}

cudaError_t kc_wmat_rows_in(cudaStream_t s, void *w, kvgpt_dtype wdt, int ldw, int oc, int k0, int n,
                            const float *src)
{
    if (n <= 0 || oc <= 0) return cudaSuccess;
    KC_DISPATCH(wdt, wmat_rows_in_t, s, w, ldw, oc, k0, n, src)
}

cudaError_t kc_kv_store(cudaStream_t s, void *k_cache, void *v_cache, kvgpt_dtype kvdt, const float *qkv, int ldqkv,
                        const int32_t *seq, const int32_t *pos, int n, int n_head, int hs, int ctx)
{
    if (n <= 0 || n_head <= 0 || hs <= 0) return cudaSuccess;
    kv_store_kernel<<<n, EW_THREADS, 0, s>>>(k_cache, v_cache, kvdt, qkv, ldqkv, seq, pos, n_head, hs, ctx);
    return cudaGetLastError();
}

size_t kc_att_smem_bytes(int hs) { return (2 * (size_t)hs + ATT_TILE) * sizeof(float); }

template <typename T>
static cudaError_t attention_t(cudaStream_t s, float *out, int ldo, const float *q, int ldq, const void *k_cache,
                               const void *v_cache, const int32_t *seq, const int32_t *pos, int n, int n_head, int hs,
                               int ctx, int splits, float *part)
{
    const int chunk = splits > 1 ? KC_ATT_CHUNK : ctx;
    dim3 grid((unsigned)n_head, (unsigned)n, (unsigned)(splits > 1 ? splits : 1));
    attention_kernel<T><<<grid, ATT_THREADS, kc_att_smem_bytes(hs), s>>>(
        out, ldo, q, ldq, (const T *)k_cache, (const T *)v_cache, seq, pos, n_head, hs, ctx, chunk,
        splits > 1 ? part : NULL);
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

size_t kc_sample_scratch_bytes(int vocab)
{
    size_t v = vocab > 0 ? (size_t)vocab : 1, p = 1;
    while (p < v) p <<= 1;
    return ((v * 8 + 15) / 16 * 16 + p * 8 + 255) / 256 * 256;
}

cudaError_t kc_sample(cudaStream_t s, const float *logits, const kc_sample_args *a, kc_sample_out *out, void *scratch)
{
    if (a->rows <= 0) return cudaSuccess;
    sample_kernel<<<a->rows, SAMPLE_THREADS, 0, s>>>(logits, *a, out, (char *)scratch,
                                                     kc_sample_scratch_bytes(a->vocab));
    return cudaGetLastError();
}

cudaError_t kc_probe_read(cudaStream_t s, const void *buf, size_t bytes, uint64_t *sink, int blocks)
{
    if (bytes < 16) return cudaSuccess;
    probe_kernel<<<blocks, PROBE_THREADS, 0, s>>>((const uint4 *)buf, bytes / 16, (unsigned long long *)sink);
    return cudaGetLastError();
}
