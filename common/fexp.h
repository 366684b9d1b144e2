/* common/fexp.h — kv_expf: e^x in float with the same bits on the host (gcc,
 * any -march, any -ffp-contract) and on a CUDA device (nvcc), so that a
 * sampler on either draws the same tokens. libm's expf is not that: glibc's
 * is within 0.502 ulp, and differs from the correctly rounded value for
 * about 1 input in 1,600; CUDA's expf differs from both.
 *
 * How: x = k ln2 + r (Cody-Waite, two-part ln2), e^r by its Taylor series to
 * r^12 (|r| <= ln2/2: truncation below 2e-16), all in double; the product by
 * 2^k is exact; one rounding to float at the end. Only IEEE double +, * and
 * the float conversion are used, in a fixed order: every product is made
 * opaque before it is added (a volatile on the host, __dmul_rn on the
 * device), so no compiler fuses a multiply-add differently on one side.
 * Within 1 ulp of e^x; in practice the correctly rounded value (the tests
 * measure how often it is not). */
#ifndef KVGPT_FEXP_H
#define KVGPT_FEXP_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define KV_FEXP_FN static inline __host__ __device__
#else
#define KV_FEXP_FN static inline
#endif

/* a * b, never fused with the add that follows. */
KV_FEXP_FN double kv_fexp_mul(double a, double b)
{
#if defined(__CUDA_ARCH__)
    return __dmul_rn(a, b);
#else
    volatile double p = a * b;
    return p;
#endif
}

KV_FEXP_FN double kv_fexp_pow2(int k)
{
    uint64_t bits = (uint64_t)(k + 1023) << 52;   /* a normal double: -1022 <= k <= 1023 */
    double d;
#if defined(__CUDA_ARCH__)
    d = __longlong_as_double((long long)bits);
#else
    memcpy(&d, &bits, sizeof d);
#endif
    return d;
}

KV_FEXP_FN float kv_expf(float x)
{
    if (x != x) return x;                       /* NaN */
    if (x > 100.0f) return INFINITY;             /* e^88.73 already overflows float */
    if (x < -110.0f) return 0.0f;                /* below half the smallest subnormal */
    const double xd = (double)x;
    /* k = round(x / ln2): adding 1.5 * 2^52 rounds to an integer in the last bits. */
    const double shift = 0x1.8p52;
    const double kd = (kv_fexp_mul(xd, 0x1.71547652b82fep0) + shift) - shift;
    /* r = x - k ln2, ln2 in two parts: the first has 40 bits, so k * ln2_hi is exact. */
    const double r = (xd - kv_fexp_mul(kd, 0x1.62e42fefa2000p-1)) - kv_fexp_mul(kd, 0x1.9ef35793c7673p-41);
    /* e^r = sum r^i / i!, Horner from r^12 (the coefficients are 1/i! rounded to double). */
    double p = 0x1.1eed8eff8d898p-29;
    p = kv_fexp_mul(p, r) + 0x1.ae64567f544e4p-26;
    p = kv_fexp_mul(p, r) + 0x1.27e4fb7789f5cp-22;
    p = kv_fexp_mul(p, r) + 0x1.71de3a556c734p-19;
    p = kv_fexp_mul(p, r) + 0x1.a01a01a01a01ap-16;
    p = kv_fexp_mul(p, r) + 0x1.a01a01a01a01ap-13;
    p = kv_fexp_mul(p, r) + 0x1.6c16c16c16c17p-10;
    p = kv_fexp_mul(p, r) + 0x1.1111111111111p-7;
    p = kv_fexp_mul(p, r) + 0x1.5555555555555p-5;
    p = kv_fexp_mul(p, r) + 0x1.5555555555555p-3;
    p = kv_fexp_mul(p, r) + 0.5;
    p = kv_fexp_mul(p, r) + 1.0;
    p = kv_fexp_mul(p, r) + 1.0;
    return (float)kv_fexp_mul(p, kv_fexp_pow2((int)kd));
}

#endif
