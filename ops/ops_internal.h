/* ops/ops_internal.h — inline helpers shared by the ops kernels only, and
 * the naming of a kernel set's functions.
 *
 * Everything here is branch-free so that gcc vectorizes the loops that use
 * it; the half-precision loads take the hardware conversion when the target
 * has one (AVX-512 / F16C) and an exact bit-level one otherwise.
 */
#ifndef KVGPT_OPS_INTERNAL_H
#define KVGPT_OPS_INTERNAL_H

#include <stdint.h>
#include <string.h>
#include <math.h>
#include "ops/ops.h"

#if defined(__GNUC__)
#define OPS_INLINE static inline __attribute__((always_inline))
#else
#define OPS_INLINE static inline
#endif

#if defined(__GNUC__) && (defined(__AVX512F__) || defined(__F16C__))
#include <immintrin.h>
#endif

/* The Makefile compiles each hot kernel file (matmul.c, attention.c,
 * rowwise.c, kernels.c) once per kernel set, with that set's instruction-set
 * flags and -DOPS_SET=name; OPS_K(matmul) is then ops_matmul_<name>, and
 * kernels.c gathers the set's functions into its table ops_kernels_<name>. */
#ifndef OPS_SET
#define OPS_SET portable
#endif
#define OPS_CAT2(a, b) a##_##b
#define OPS_CAT(a, b) OPS_CAT2(a, b)
#define OPS_K(name) OPS_CAT(ops_##name, OPS_SET)
#define OPS_STR2(x) #x
#define OPS_STR(x) OPS_STR2(x)

void OPS_K(matmul)(float *out, int ldo, const float *in, int ldi, const ops_wmat *w,
                   const float *bias, int n, int nt);
void OPS_K(layernorm)(float *out, const float *x, const float *w, const float *b,
                      int n, int c, float eps, int nt);
void OPS_K(gelu_erf)(float *x, size_t len, int nt);
void OPS_K(gelu_tanh)(float *x, size_t len, int nt);
void OPS_K(add)(float *x, const float *y, size_t len, int nt);
void OPS_K(softmax)(float *x, int len);
void OPS_K(attention)(float *out, int ldo, const float *q, int ldq,
                      const void *k, const void *v, kvgpt_dtype kv_dtype,
                      const int32_t *seq, const int32_t *pos, int n,
                      int n_head, int hs, int ctx, float *scratch, int nt);

/* a * b + c, fused where the target has a fused multiply-add (then fmaf is
 * one instruction), a multiply and an add where it has none: a library fmaf
 * there is exact in software and many times slower. One formula per kernel
 * set, so every row of one set rounds alike. */
#if defined(__FP_FAST_FMAF)
#define OPS_FMAF(a, b, c) fmaf((a), (b), (c))
#else
#define OPS_FMAF(a, b, c) ((a) * (b) + (c))
#endif

/* A read prefetch into L1 (prefetcht0), and how far ahead of a stream it
 * pays: decode's weight streams and the read probe use the same. */
#define OPS_PREFETCH_BYTES 2048
#if defined(__GNUC__)
#define OPS_PREFETCH(p) __builtin_prefetch((p), 0, 3)
#else
#define OPS_PREFETCH(p) ((void)(p))
#endif

OPS_INLINE float ops_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
OPS_INLINE uint32_t ops_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

OPS_INLINE float ops_ld_bf16(const uint16_t *p) { return ops_bits_f32((uint32_t)*p << 16); }

/* Scalar f16 load, exact: shift exponent+mantissa into place and rescale by
 * 2^112 (right for normals and subnormals alike); Inf/NaN get the all-ones
 * exponent. Branch-free so loops using it vectorize. */
OPS_INLINE float ops_ld_f16(const uint16_t *p)
{
    uint32_t h = *p;
    uint32_t t = (h & 0x7fffu) << 13;
    uint32_t m = ops_f32_bits(ops_bits_f32(t) * 0x1p112f);
    m = ((h & 0x7c00u) == 0x7c00u) ? (t | 0x7f800000u) : m;
    return ops_bits_f32(m | ((h & 0x8000u) << 16));
}

/* ---- 16-lane vectors: one OPS_PANEL of floats ----
 * GNU vector extensions where the compiler has them (gcc 12 does not vectorize
 * _Float16 or type-punned bf16 loads in plain loops, and keeps vector-typed
 * accumulators in registers far more reliably than float arrays): one 64-byte
 * vector with AVX-512; below it, OPS_NV vectors of the machine's own width
 * (two ymm with AVX2, four xmm or NEON registers otherwise) — a 64-byte
 * vector there is lowered to pieces that stay in memory, several times
 * slower. A struct of 16 floats without GNU C. */
#if defined(__GNUC__) && defined(__AVX512F__)
typedef float ops_v16 __attribute__((vector_size(64)));

OPS_INLINE ops_v16 ops_vzero(void) { ops_v16 z = {0}; return z; }
OPS_INLINE ops_v16 ops_vld(const float *p) { ops_v16 v; memcpy(&v, p, sizeof v); return v; }
OPS_INLINE void ops_vst(float *p, ops_v16 v) { memcpy(p, &v, sizeof v); }
OPS_INLINE float ops_vlane(ops_v16 v, int j) { return v[j]; }
OPS_INLINE ops_v16 ops_vadd(ops_v16 a, ops_v16 b) { return a + b; }

/* acc + a * w, fused. */
OPS_INLINE ops_v16 ops_vfma2(ops_v16 a, ops_v16 w, ops_v16 acc) { return _mm512_fmadd_ps(a, w, acc); }
OPS_INLINE ops_v16 ops_vfma(float a, ops_v16 w, ops_v16 acc)
{
    /* A plain splat, not 0 + a: the add cannot be folded (it turns -0 into
     * +0) and would cost an FMA-port uop per broadcast. */
    const ops_v16 av = { a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a };
    return ops_vfma2(av, w, acc);
}

OPS_INLINE ops_v16 ops_vld_bf16(const uint16_t *p)
{
    /* gcc 12 splits the generic widening into halves; one vpmovzxwd instead. */
    __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
}

OPS_INLINE ops_v16 ops_vld_f16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}

/* Pairwise sum of the 16 lanes in a fixed order (lane j += lane j + 8, then
 * + 4, + 2, + 1). */
OPS_INLINE float ops_vhsum(ops_v16 v)
{
#if !defined(__clang__)
    typedef int32_t v16i __attribute__((vector_size(64)));
    v = v + __builtin_shuffle(v, (v16i){ 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15 });
    v = v + __builtin_shuffle(v, (v16i){ 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7 });
    v = v + __builtin_shuffle(v, (v16i){ 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3 });
    v = v + __builtin_shuffle(v, (v16i){ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 });
    return v[0];
#else
    float a[OPS_PANEL];
    memcpy(a, &v, sizeof a);
    for (int w = OPS_PANEL / 2; w > 0; w /= 2)
        for (int j = 0; j < w; j++) a[j] += a[j + w];
    return a[0];
#endif
}
#elif defined(__GNUC__)
#if defined(__AVX__)
#define OPS_VW 8
#else
#define OPS_VW 4
#endif
#define OPS_NV (OPS_PANEL / OPS_VW)
typedef float ops_vn __attribute__((vector_size(OPS_VW * 4)));
typedef uint16_t ops_vnu16 __attribute__((vector_size(OPS_VW * 2)));
typedef uint32_t ops_vnu32 __attribute__((vector_size(OPS_VW * 4)));
typedef struct { ops_vn v[OPS_NV]; } ops_v16;   /* lanes i * OPS_VW .. in v[i] */
/* Over the vectors of one ops_v16, unrolled before scalar replacement runs
 * (or the accumulators of a tile stay in memory). */
#define OPS_EACH(i) _Pragma("GCC unroll 4") for (int i = 0; i < OPS_NV; i++)

OPS_INLINE ops_v16 ops_vzero(void)
{
    ops_v16 z;
    OPS_EACH(i) z.v[i] = (ops_vn){0};
    return z;
}
OPS_INLINE ops_v16 ops_vld(const float *p)
{
    ops_v16 r;
    OPS_EACH(i) memcpy(&r.v[i], p + i * OPS_VW, sizeof r.v[i]);
    return r;
}
OPS_INLINE void ops_vst(float *p, ops_v16 v)
{
    OPS_EACH(i) memcpy(p + i * OPS_VW, &v.v[i], sizeof v.v[i]);
}
OPS_INLINE float ops_vlane(ops_v16 v, int j) { return v.v[j / OPS_VW][j % OPS_VW]; }
OPS_INLINE ops_v16 ops_vadd(ops_v16 a, ops_v16 b)
{
    OPS_EACH(i) a.v[i] += b.v[i];
    return a;
}
/* acc + a * w: the build's -ffp-contract=fast fuses it where the target has
 * FMA (the avx2 set, aarch64), and every caller goes through here, so one set
 * rounds alike everywhere. A scalar a is splat by the vector extension. */
OPS_INLINE ops_v16 ops_vfma2(ops_v16 a, ops_v16 w, ops_v16 acc)
{
    OPS_EACH(i) acc.v[i] = a.v[i] * w.v[i] + acc.v[i];
    return acc;
}
OPS_INLINE ops_v16 ops_vfma(float a, ops_v16 w, ops_v16 acc)
{
    OPS_EACH(i) acc.v[i] = a * w.v[i] + acc.v[i];
    return acc;
}

OPS_INLINE ops_v16 ops_vld_bf16(const uint16_t *p)
{
    ops_v16 r;
    OPS_EACH(i) {
        ops_vnu16 h;
        memcpy(&h, p + i * OPS_VW, sizeof h);
        r.v[i] = (ops_vn)(__builtin_convertvector(h, ops_vnu32) << 16);
    }
    return r;
}

OPS_INLINE ops_v16 ops_vld_f16(const uint16_t *p)
{
    ops_v16 r;
    OPS_EACH(i) {
#if defined(__F16C__) && OPS_VW == 8
        r.v[i] = (ops_vn)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p + i * OPS_VW)));
#else
        /* ops_ld_f16, a lane at a time in the vector. */
        ops_vnu16 h;
        memcpy(&h, p + i * OPS_VW, sizeof h);
        ops_vnu32 x = __builtin_convertvector(h, ops_vnu32);
        ops_vnu32 t = (x & 0x7fffu) << 13;
        ops_vn mag = (ops_vn)t * 0x1p112f;
        ops_vnu32 special = (ops_vnu32)((x & 0x7c00u) == 0x7c00u);   /* all-ones lanes */
        ops_vnu32 m = ((ops_vnu32)mag & ~special) | ((t | 0x7f800000u) & special);
        r.v[i] = (ops_vn)(m | ((x & 0x8000u) << 16));
#endif
    }
    return r;
}

/* Pairwise sum of the 16 lanes in a fixed order (lane j += lane j + 8, then
 * + 4, + 2, + 1: the AVX-512 order). */
OPS_INLINE float ops_vhsum(ops_v16 v)
{
    for (int w = OPS_NV / 2; w > 0; w /= 2)   /* whole vectors: j += j + 8 (and + 4) */
        for (int i = 0; i < w; i++) v.v[i] += v.v[i + w];
    ops_vn x = v.v[0];
#if !defined(__clang__)
    typedef int32_t vni __attribute__((vector_size(OPS_VW * 4)));
#if OPS_VW == 8
    x = x + __builtin_shuffle(x, (vni){ 4, 5, 6, 7, 4, 5, 6, 7 });
    x = x + __builtin_shuffle(x, (vni){ 2, 3, 2, 3, 2, 3, 2, 3 });
    x = x + __builtin_shuffle(x, (vni){ 1, 1, 1, 1, 1, 1, 1, 1 });
#else
    x = x + __builtin_shuffle(x, (vni){ 2, 3, 2, 3 });
    x = x + __builtin_shuffle(x, (vni){ 1, 1, 1, 1 });
#endif
    return x[0];
#else
    float a[OPS_VW];
    memcpy(a, &x, sizeof a);
    for (int w = OPS_VW / 2; w > 0; w /= 2)
        for (int j = 0; j < w; j++) a[j] += a[j + w];
    return a[0];
#endif
}
#else
typedef struct { float v[OPS_PANEL]; } ops_v16;

OPS_INLINE ops_v16 ops_vzero(void) { ops_v16 z = {{0}}; return z; }
OPS_INLINE ops_v16 ops_vld(const float *p) { ops_v16 v; memcpy(&v, p, sizeof v); return v; }
OPS_INLINE void ops_vst(float *p, ops_v16 v) { memcpy(p, &v, sizeof v); }
OPS_INLINE float ops_vlane(ops_v16 v, int j) { return v.v[j]; }
OPS_INLINE ops_v16 ops_vadd(ops_v16 a, ops_v16 b)
{
    for (int j = 0; j < OPS_PANEL; j++)
        a.v[j] += b.v[j];
    return a;
}
OPS_INLINE ops_v16 ops_vfma2(ops_v16 a, ops_v16 w, ops_v16 acc)
{
    for (int j = 0; j < OPS_PANEL; j++)
        acc.v[j] = OPS_FMAF(a.v[j], w.v[j], acc.v[j]);
    return acc;
}
OPS_INLINE ops_v16 ops_vfma(float a, ops_v16 w, ops_v16 acc)
{
    for (int j = 0; j < OPS_PANEL; j++)
        acc.v[j] = OPS_FMAF(a, w.v[j], acc.v[j]);
    return acc;
}
OPS_INLINE ops_v16 ops_vld_bf16(const uint16_t *p)
{
    ops_v16 r;
    for (int j = 0; j < OPS_PANEL; j++)
        r.v[j] = ops_ld_bf16(p + j);
    return r;
}
OPS_INLINE ops_v16 ops_vld_f16(const uint16_t *p)
{
    ops_v16 r;
    for (int j = 0; j < OPS_PANEL; j++)
        r.v[j] = ops_ld_f16(p + j);
    return r;
}
OPS_INLINE float ops_vhsum(ops_v16 v)
{
    float a[OPS_PANEL];
    memcpy(a, &v, sizeof a);
    for (int w = OPS_PANEL / 2; w > 0; w /= 2)
        for (int j = 0; j < w; j++)
            a[j] += a[j + w];
    return a[0];
}
#endif

/* 16 lanes of a packed weight / cache row of dtype dt, as floats. */
OPS_INLINE ops_v16 ops_vld_dt(kvgpt_dtype dt, const void *base, size_t i)
{
    if (dt == KVGPT_DTYPE_F16)
        return ops_vld_f16((const uint16_t *)base + i);
    if (dt == KVGPT_DTYPE_BF16)
        return ops_vld_bf16((const uint16_t *)base + i);
    return ops_vld((const float *)base + i);
}

OPS_INLINE float ops_ld_dt(kvgpt_dtype dt, const void *base, size_t i)
{
    if (dt == KVGPT_DTYPE_F16)
        return ops_ld_f16((const uint16_t *)base + i);
    if (dt == KVGPT_DTYPE_BF16)
        return ops_ld_bf16((const uint16_t *)base + i);
    return ((const float *)base)[i];
}

/* exp(x) within ~2 ulp for x in [-87, 88.7]; 0 below (and for -INFINITY),
 * a huge finite value above. Cephes' polynomial, written so it vectorizes. */
OPS_INLINE float ops_exp(float x)
{
    const float big = 0x1.8p23f;
    /* not fminf/fmaxf: gcc calls libm for those. Written so that NaN clamps to
     * -87 here (a NaN → int conversion is undefined) and comes back NaN below. */
    float xc = x >= -87.0f ? x : -87.0f;
    xc = xc > 88.7f ? 88.7f : xc;
    float t = xc * 1.44269504088896341f + big;
    float n = t - big;
    float r = OPS_FMAF(n, -0.693359375f, xc);
    r = OPS_FMAF(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = OPS_FMAF(p, r, 1.3981999507e-3f);
    p = OPS_FMAF(p, r, 8.3334519073e-3f);
    p = OPS_FMAF(p, r, 4.1665795894e-2f);
    p = OPS_FMAF(p, r, 1.6666665459e-1f);
    p = OPS_FMAF(p, r, 5.0000001201e-1f);
    float e = OPS_FMAF(p, r * r, r) + 1.0f;
    int32_t ni = (int32_t)n;
    float s = ops_bits_f32((uint32_t)(ni + 127) << 23);
    e = e * s;
    return x >= -87.0f ? e : x < -87.0f ? 0.0f : x;
}

#endif
