/* tests/test_fexp.c — kv_expf (common/fexp.h), the e^x the CUDA sampler
 * computes its weights with: within 1 ulp of libm's expf everywhere, the
 * correctly rounded value on every sampled input, the special values right,
 * and the same bits whatever the compiler makes of the host code (checked
 * here against values computed once with exact arithmetic; the device's
 * bits are test_cuda_ops's). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/fexp.h"
#include "tests/support/suite.h"

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Distance in ulps between two finite floats of the same sign. */
static long ulps(float a, float b)
{
    long d = (long)bits(a) - (long)bits(b);
    return d < 0 ? -d : d;
}

START_TEST(test_accuracy)
{
    uint64_t s = 0x243F6A8885A308D3ull;
    long n = 0, rounded = 0, worst = 0;
    for (long i = 0; i < 20000000; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        /* [-110, 100]: every argument the sampler can meet (v - max <= 0), and the overflow side. */
        const float x = (float)((double)(s >> 11) * (1.0 / 9007199254740992.0) * 210.0 - 110.0);
        const float k = kv_expf(x), l = expf(x), c = (float)exp((double)x);
        n++;
        rounded += bits(k) == bits(c);
        if (isinf(l)) {
            ck_assert_msg(isinf(k), "kv_expf(%a) = %a, libm overflows", (double)x, (double)k);
            continue;
        }
        const long u = ulps(k, l);
        if (u > worst) worst = u;
        ck_assert_msg(u <= 1, "kv_expf(%a) = %a, libm's expf %a: %ld ulps apart", (double)x, (double)k, (double)l, u);
    }
    printf("  kv_expf: %ld arguments in [-110, 100]: %ld correctly rounded, at most %ld ulp from libm's expf\n", n,
           rounded, worst);
    ck_assert_msg(rounded >= n - n / 1000000, "only %ld of %ld correctly rounded", rounded, n);
}
END_TEST

START_TEST(test_special_values)
{
    ck_assert(isnan(kv_expf(NAN)));
    ck_assert(bits(kv_expf(INFINITY)) == bits(INFINITY));
    ck_assert(bits(kv_expf(-INFINITY)) == bits(0.0f));
    ck_assert(kv_expf(0.0f) == 1.0f && kv_expf(-0.0f) == 1.0f);
    ck_assert(isinf(kv_expf(88.73f)) && isfinite(kv_expf(88.72f)));
    ck_assert(kv_expf(-103.97f) > 0.0f && kv_expf(-104.0f) == 0.0f);   /* the last subnormal, then 0 */
    ck_assert(kv_expf(-1000.0f) == 0.0f && isinf(kv_expf(1000.0f)));
}
END_TEST

/* Bits of e^x correctly rounded, from exact arithmetic (Python's decimal, 80 digits):
 * what kv_expf must return whatever the host compiler or its flags. */
START_TEST(test_pinned_bits)
{
    static const struct { float x; uint32_t want; } cases[] = {
        {-0x1.ee6274p+1f, 0x3cac2dc9u}, /* one where glibc's expf is 1 ulp off */
        {-1.0f, 0x3ebc5ab2u},
        {-0.5f, 0x3f1b4598u},
        {-20.0f, 0x310da433u},
        {-87.5f, 0x006cb2bcu},          /* subnormal */
        {-100.0f, 0x0000001bu},         /* subnormal */
        {1.0f, 0x402df854u},
        {10.0f, 0x46ac14eeu},
        {88.5f, 0x7f4cdcc4u},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(bits(kv_expf(cases[i].x)) == cases[i].want, "kv_expf(%a) = %08x, want %08x", (double)cases[i].x,
                      bits(kv_expf(cases[i].x)), cases[i].want);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fexp");
    TCase *tc = tcase_create("fexp");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_accuracy);
    tcase_add_test(tc, test_special_values);
    tcase_add_test(tc, test_pinned_bits);
    suite_add_tcase(s, tc);
    return tf_run_suite(s);
}
