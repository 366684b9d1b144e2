/* tests/test_ops.c — the ops kernels against naive double-precision
 * references on random, never-zero inputs of awkward sizes, plus the
 * bit-for-bit determinism the KV cache relies on (results independent of nt,
 * of n and of a row's place in the batch): every kernel test runs once per
 * kernel set of the build that this CPU runs (the portable one everywhere). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "ops/ops.h"
#include "tests/support/suite.h"

/* ---------- helpers ---------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd_u32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

/* Uniform in [-scale, scale], never (nearly) zero. */
static float rnd(float scale)
{
    for (;;) {
        float u = ((float)(rnd_u32() >> 8) / 16777216.0f) * 2.0f - 1.0f;
        if (fabsf(u) > 1e-3f)
            return u * scale;
    }
}

static float *rnd_vec(size_t len, float scale)
{
    float *v = malloc(len * sizeof *v);
    ck_assert_ptr_nonnull(v);
    for (size_t i = 0; i < len; i++)
        v[i] = rnd(scale);
    return v;
}

static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Exact value of an f16 bit pattern, computed independently of ops. */
static double f16_value(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    double s = (h & 0x8000) ? -1.0 : 1.0;
    if (e == 0)
        return s * ldexp(m, -24);
    if (e == 31)
        return m ? NAN : s * INFINITY;
    return s * ldexp(1024 + m, e - 25);
}

/* ---------- kernel sets ---------- */

static const ops_kernels *K;   /* the set the current test runs */

/* Loop tests run once per set: _i is the set's index; 0 when the CPU cannot run it. */
static int use_set(int i)
{
    K = ops_set_at(i);
    ck_assert_ptr_nonnull(K);
    if (!ops_set_runs(K)) {
        printf("  kernel set %s: skipped (this CPU cannot run it)\n", K->name);
        return 0;
    }
    return 1;
}

START_TEST(test_sets)
{
    ck_assert_int_ge(ops_set_count(), 1);
    ck_assert_ptr_null(ops_set_at(ops_set_count()));
    ck_assert_ptr_null(ops_set_at(-1));
    const ops_kernels *base = ops_set_at(0);
    ck_assert_str_eq(base->name, "portable");
    ck_assert(ops_set_runs(base));
    ck_assert(ops_set_runs(ops_set_best()));
    ck_assert_ptr_null(ops_set_named("no-such-set"));
    ck_assert_ptr_null(ops_set_named(NULL));
    for (int i = 0; i < ops_set_count(); i++) {
        const ops_kernels *k = ops_set_at(i);
        ck_assert_ptr_eq(ops_set_named(k->name), k);
        ck_assert(k->matmul && k->layernorm && k->gelu_erf && k->gelu_tanh && k->add && k->softmax &&
                  k->attention);
        ck_assert(strlen(ops_set_needs(k)) > 0);
    }
    int last = 0;
    for (int i = 0; i < ops_set_count(); i++)
        if (ops_set_runs(ops_set_at(i))) last = i;
    ck_assert_ptr_eq(ops_set_best(), ops_set_at(last));
#if defined(__x86_64__)
    ck_assert_int_eq(ops_set_count(), 3);
    ck_assert_str_eq(ops_set_at(1)->name, "avx2");
    ck_assert_str_eq(ops_set_at(2)->name, "avx512");
    /* A set's requirements include those of the sets before it. */
    if (ops_set_runs(ops_set_at(2))) ck_assert(ops_set_runs(ops_set_at(1)));
#endif
    printf("  kernel sets: best here %s\n", ops_set_best()->name);
}
END_TEST

/* ---------- half conversions ---------- */

START_TEST(test_f16_decode_all)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = kv_f16_to_f32((uint16_t)h);
        double ref = f16_value((uint16_t)h);
        if (isnan(ref)) {
            ck_assert_msg(isnan(f), "h=%04x", h);
            continue;
        }
        ck_assert_msg((double)f == ref && !!signbit(f) == !!signbit(ref), "h=%04x", h);
        ck_assert_msg(kv_f32_to_f16(f) == h, "roundtrip h=%04x", h);
    }
}
END_TEST

/* Round to nearest even: around every midpoint between neighbouring finite f16
 * values, just below goes down, just above goes up, the midpoint to the even one. */
START_TEST(test_f16_rounding)
{
    for (uint32_t h = 0; h < 0x7bff; h++) {
        for (int sgn = 0; sgn < 2; sgn++) {
            uint16_t lo = (uint16_t)(h | (sgn ? 0x8000u : 0)), hi = (uint16_t)(lo + 1);
            double mid = (f16_value(lo) + f16_value(hi)) / 2.0;
            float fm = (float)mid;                       /* exact: needs < 24 bits */
            ck_assert((double)fm == mid);
            uint16_t even = (lo & 1) ? hi : lo;
            ck_assert_msg(kv_f32_to_f16(fm) == even, "mid of %04x", lo);
            float below = nextafterf(fm, 0.0f), above = nextafterf(fm, sgn ? -INFINITY : INFINITY);
            ck_assert_msg(kv_f32_to_f16(below) == lo, "below mid of %04x", lo);
            ck_assert_msg(kv_f32_to_f16(above) == hi, "above mid of %04x", lo);
        }
    }
    /* Specials and edges. */
    ck_assert_uint_eq(kv_f32_to_f16(INFINITY), 0x7c00);
    ck_assert_uint_eq(kv_f32_to_f16(-INFINITY), 0xfc00);
    ck_assert_uint_eq(kv_f32_to_f16(65504.0f), 0x7bff);
    ck_assert_uint_eq(kv_f32_to_f16(65519.99f), 0x7bff);
    ck_assert_uint_eq(kv_f32_to_f16(65520.0f), 0x7c00);
    ck_assert_uint_eq(kv_f32_to_f16(1e10f), 0x7c00);
    ck_assert_uint_eq(kv_f32_to_f16(0x1p-24f), 0x0001);
    ck_assert_uint_eq(kv_f32_to_f16(0x1p-25f), 0x0000);         /* tie -> even (0) */
    ck_assert_uint_eq(kv_f32_to_f16(0x1.8p-24f), 0x0002);       /* tie -> even (2) */
    ck_assert_uint_eq(kv_f32_to_f16(0x1.0002p-25f), 0x0001);
    ck_assert_uint_eq(kv_f32_to_f16(-0x1p-30f), 0x8000);
    ck_assert_uint_eq(kv_f32_to_f16(-0.0f), 0x8000);
    ck_assert_uint_eq(kv_f32_to_f16(0x1p-149f), 0x0000);
    ck_assert_uint_eq(kv_f32_to_f16(0x1.ff8p-15f), 0x03ff);     /* the largest subnormal */
    ck_assert_uint_eq(kv_f32_to_f16(0x1.ffcp-15f), 0x0400);     /* tie -> even: min normal */
    uint16_t qn = kv_f32_to_f16(NAN);
    ck_assert((qn & 0x7c00) == 0x7c00 && (qn & 0x3ff) != 0);
    uint16_t sn = kv_f32_to_f16(bits_f32(0xff800001u));         /* payload only in low bits */
    ck_assert((sn & 0xfc00) == 0xfc00 && (sn & 0x3ff) != 0);
    ck_assert(isinf(kv_f16_to_f32(0x7c00)) && kv_f16_to_f32(0xfc00) < 0);
    ck_assert(isnan(kv_f16_to_f32(0x7e00)));
#ifdef __FLT16_MAX__
    /* The compiler's own conversion agrees on random bit patterns. */
    for (int i = 0; i < 1000000; i++) {
        float f = bits_f32(rnd_u32());
        if (isnan(f))
            continue;
        _Float16 hw = (_Float16)f;
        uint16_t hb;
        memcpy(&hb, &hw, 2);
        ck_assert_msg(kv_f32_to_f16(f) == hb, "f=%a", (double)f);
    }
#endif
}
END_TEST

START_TEST(test_bf16)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = kv_bf16_to_f32((uint16_t)h);
        ck_assert_uint_eq(f32_bits(f), h << 16);
        if (!isnan(f))
            ck_assert_uint_eq(kv_f32_to_bf16(f), h);
        else
            ck_assert(isnan(kv_bf16_to_f32(kv_f32_to_bf16(f))));
    }
    /* RNE at midpoints: low 16 bits 0x8000 tie, 0x7fff down, 0x8001 up. */
    for (int i = 0; i < 200000; i++) {
        uint32_t hi = rnd_u32() & 0xffff0000u;
        if ((hi & 0x7f800000u) == 0x7f800000u)
            continue;
        uint32_t up = (hi >> 16) + 1, down = hi >> 16;
        if (((up << 16) & 0x7f800000u) == 0x7f800000u && (up & 0x7f))
            continue;
        ck_assert_uint_eq(kv_f32_to_bf16(bits_f32(hi | 0x7fffu)), down);
        ck_assert_uint_eq(kv_f32_to_bf16(bits_f32(hi | 0x8001u)), up);
        ck_assert_uint_eq(kv_f32_to_bf16(bits_f32(hi | 0x8000u)), (down & 1) ? up : down);
    }
    ck_assert_uint_eq(kv_f32_to_bf16(INFINITY), 0x7f80);
    ck_assert_uint_eq(kv_f32_to_bf16(-INFINITY), 0xff80);
    ck_assert_uint_eq(kv_f32_to_bf16(bits_f32(0x7f7fffffu)), 0x7f80);   /* FLT_MAX rounds to Inf */
    ck_assert(isnan(kv_bf16_to_f32(kv_f32_to_bf16(bits_f32(0x7f800001u)))));
    ck_assert(isnan(kv_bf16_to_f32(kv_f32_to_bf16(NAN))));
    ck_assert_uint_eq(kv_dtype_size(KVGPT_DTYPE_F32), 4);
    ck_assert_uint_eq(kv_dtype_size(KVGPT_DTYPE_F16), 2);
    ck_assert_uint_eq(kv_dtype_size(KVGPT_DTYPE_BF16), 2);
}
END_TEST

/* ---------- packing ---------- */

static const kvgpt_dtype all_dt[3] = { KVGPT_DTYPE_F32, KVGPT_DTYPE_F16, KVGPT_DTYPE_BF16 };

static float quant(kvgpt_dtype dt, float x)
{
    if (dt == KVGPT_DTYPE_F16)
        return kv_f16_to_f32(kv_f32_to_f16(x));
    if (dt == KVGPT_DTYPE_BF16)
        return kv_bf16_to_f32(kv_f32_to_bf16(x));
    return x;
}

/* Packs logical W[k][o] (row-major ic x oc) by one route or the other. */
static ops_wmat make_wmat(const float *W, int ic, int oc, kvgpt_dtype dt, int route_o)
{
    ops_wmat w;
    size_t bytes = ops_packed_bytes(ic, oc, dt);
    w.data = xmalloc(bytes);
    memset(w.data, 0xA5, bytes);     /* garbage in the padding until zero_pad */
    w.dtype = dt;
    w.ic = ic;
    w.oc = oc;
    if (route_o) {
        float *col = xmalloc((size_t)ic * sizeof *col);
        for (int o = 0; o < oc; o++) {
            for (int k = 0; k < ic; k++)
                col[k] = W[(size_t)k * oc + o];
            ops_pack_row_o(&w, o, col);
        }
        free(col);
    } else {
        for (int k = 0; k < ic; k++)
            ops_pack_row_k(&w, k, W + (size_t)k * oc);
    }
    ops_pack_zero_pad(&w);
    return w;
}

START_TEST(test_pack)
{
    const int shapes[][2] = { {1, 1}, {3, 17}, {17, 3}, {64, 64}, {33, 769} };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int d = 0; d < 3; d++) {
            int ic = shapes[s][0], oc = shapes[s][1];
            ck_assert_int_eq(ops_padded_oc(oc) % OPS_PANEL, 0);
            ck_assert_int_ge(ops_padded_oc(oc), oc);
            ck_assert_int_lt(ops_padded_oc(oc) - oc, OPS_PANEL);
            float *W = rnd_vec((size_t)ic * oc, 1.0f);
            ops_wmat a = make_wmat(W, ic, oc, all_dt[d], 0);
            ops_wmat b = make_wmat(W, ic, oc, all_dt[d], 1);
            size_t bytes = ops_packed_bytes(ic, oc, all_dt[d]);
            ck_assert_uint_eq(bytes, (size_t)ic * ops_padded_oc(oc) * kv_dtype_size(all_dt[d]));
            ck_assert(memcmp(a.data, b.data, bytes) == 0);
            float *col = xmalloc((size_t)ic * sizeof *col);
            for (int o = 0; o < oc; o++) {
                ops_wmat_column(&a, o, col);
                for (int k = 0; k < ic; k++) {
                    float q = quant(all_dt[d], W[(size_t)k * oc + o]);
                    ck_assert(ops_wmat_get(&a, k, o) == q);
                    ck_assert(col[k] == q);
                }
            }
            for (int o = oc; o < ops_padded_oc(oc); o++)
                for (int k = 0; k < ic; k++)
                    ck_assert(f32_bits(ops_wmat_get(&a, k, o)) == 0);
            free(col);
            free(a.data);
            free(b.data);
            free(W);
        }
}
END_TEST

/* ---------- matmul ---------- */

/* out vs the double reference over the dequantized weights; the error bound
 * is relative to sum |in_k w_k| (what float accumulation error scales with). */
static void check_matmul(const ops_wmat *w, const float *in, int ldi, const float *bias,
                         const float *out, int ldo, int n)
{
    double worst = 0.0;
    for (int i = 0; i < n; i++)
        for (int o = 0; o < w->oc; o++) {
            double s = bias ? bias[o] : 0.0, mag = bias ? fabs(bias[o]) : 0.0;
            for (int k = 0; k < w->ic; k++) {
                double p = (double)in[(size_t)i * ldi + k] * ops_wmat_get(w, k, o);
                s += p;
                mag += fabs(p);
            }
            double err = fabs(out[(size_t)i * ldo + o] - s) / mag;
            worst = err > worst ? err : worst;
        }
    ck_assert_msg(worst < 1e-5, "matmul ic=%d oc=%d n=%d dt=%d: rel err %g",
                  w->ic, w->oc, n, (int)w->dtype, worst);
}

static void run_matmul_case(int ic, int oc, int n, kvgpt_dtype dt, int route_o, int use_bias, int nt)
{
    float *W = rnd_vec((size_t)ic * oc, 1.0f);
    ops_wmat w = make_wmat(W, ic, oc, dt, route_o);
    int ldi = ic + 3, ldo = oc + 5;
    float *in = rnd_vec((size_t)n * ldi, 1.0f);
    float *bias = use_bias ? rnd_vec((size_t)oc, 0.5f) : NULL;
    float *out = xmalloc((size_t)n * ldo * sizeof *out);
    for (size_t i = 0; i < (size_t)n * ldo; i++)
        out[i] = 12345.0f;
    K->matmul(out, ldo, in, ldi, &w, bias, n, nt);
    check_matmul(&w, in, ldi, bias, out, ldo, n);
    for (int i = 0; i < n; i++)          /* nothing written past oc */
        for (int o = oc; o < ldo; o++)
            ck_assert(out[(size_t)i * ldo + o] == 12345.0f);
    free(out);
    free(bias);
    free(in);
    free(w.data);
    free(W);
}

START_TEST(test_matmul_small)
{
    if (!use_set(_i)) return;
    const int sizes[] = { 1, 3, 17, 64 };
    const int ns[] = { 1, 3, 8, 9, 12, 17 };
    for (int d = 0; d < 3; d++)
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++)
                for (int c = 0; c < 6; c++)
                    run_matmul_case(sizes[a], sizes[b], ns[c], all_dt[d], (a + b + c) & 1,
                                    (a + c) & 1, 1 + (c & 1));
}
END_TEST

START_TEST(test_matmul_large)
{
    if (!use_set(_i)) return;
    const int shapes[][3] = { {768, 768, 1}, {767, 769, 3}, {769, 767, 17}, {768, 3072, 9},
                              {3072, 768, 5}, {768, 2304, 37}, {64, 50257 % 4096 + 3, 2} };
    for (int d = 0; d < 3; d++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            run_matmul_case(shapes[s][0], shapes[s][1], shapes[s][2], all_dt[d], (int)(s & 1),
                            (int)((s + 1) & 1), s % 3 == 0 ? 1 : 2);
}
END_TEST

/* Row-by-row n=1 (decode) vs all rows at once (prefill), at nt=1 and nt=2:
 * every run must produce the same bits. */
START_TEST(test_matmul_determinism)
{
    if (!use_set(_i)) return;
    const int shapes[][2] = { {768, 2304}, {769, 767}, {64, 50} };
    const int n = 37;
    for (int d = 0; d < 3; d++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int ic = shapes[s][0], oc = shapes[s][1];
            float *W = rnd_vec((size_t)ic * oc, 1.0f);
            ops_wmat w = make_wmat(W, ic, oc, all_dt[d], 0);
            float *in = rnd_vec((size_t)n * ic, 1.0f);
            float *bias = rnd_vec((size_t)oc, 0.5f);
            size_t len = (size_t)n * oc;
            float *ref = xmalloc(len * sizeof *ref), *got = xmalloc(len * sizeof *got);
            K->matmul(ref, oc, in, ic, &w, bias, n, 1);
            for (int nt = 1; nt <= 2; nt++) {
                K->matmul(got, oc, in, ic, &w, bias, n, nt);
                ck_assert_msg(memcmp(ref, got, len * sizeof *got) == 0, "batch nt=%d", nt);
                memset(got, 0, len * sizeof *got);
                for (int i = 0; i < n; i++)
                    K->matmul(got + (size_t)i * oc, oc, in + (size_t)i * ic, ic, &w, bias, 1, nt);
                ck_assert_msg(memcmp(ref, got, len * sizeof *got) == 0, "rows nt=%d", nt);
                /* Odd batch splits: rows land in different tile positions,
                 * and batches of 9..12 rows take the wide 12 x 2 tile. */
                int cut[] = { 0, 5, 6, 16, 28, n };
                for (int c = 0; c < 5; c++)
                    K->matmul(got + (size_t)cut[c] * oc, oc, in + (size_t)cut[c] * ic, ic, &w,
                               bias, cut[c + 1] - cut[c], nt);
                ck_assert_msg(memcmp(ref, got, len * sizeof *got) == 0, "splits nt=%d", nt);
            }
            free(ref);
            free(got);
            free(bias);
            free(in);
            free(w.data);
            free(W);
        }
}
END_TEST

/* ---------- row-wise kernels ---------- */

START_TEST(test_layernorm)
{
    if (!use_set(_i)) return;
    const int cs[] = { 1, 3, 17, 64, 767, 768, 769, 3072 };
    const int ns[] = { 1, 3, 40 };
    for (int ci = 0; ci < 8; ci++)
        for (int ni = 0; ni < 3; ni++)
            for (int withb = 0; withb < 2; withb++) {
                int c = cs[ci], n = ns[ni];
                float *x = rnd_vec((size_t)n * c, 2.0f);
                for (size_t i = 0; i < (size_t)n * c; i++)
                    x[i] += 0.7f;                    /* a non-zero mean */
                float *wt = rnd_vec((size_t)c, 1.5f);
                float *b = withb ? rnd_vec((size_t)c, 0.5f) : NULL;
                float *out = xmalloc((size_t)n * c * sizeof *out);
                float *out2 = xmalloc((size_t)n * c * sizeof *out2);
                K->layernorm(out, x, wt, b, n, c, 1e-5f, 1);
                double worst = 0.0;
                for (int r = 0; r < n; r++) {
                    const float *xr = x + (size_t)r * c;
                    double m = 0.0, v = 0.0;
                    for (int i = 0; i < c; i++)
                        m += xr[i];
                    m /= c;
                    for (int i = 0; i < c; i++)
                        v += (xr[i] - m) * (xr[i] - m);
                    v /= c;
                    for (int i = 0; i < c; i++) {
                        double a = (xr[i] - m) / sqrt(v + 1e-5) * wt[i], bb = b ? b[i] : 0.0;
                        double ref = a + bb;
                        /* relative to the terms' size: a + b may cancel */
                        double err = fabs(out[(size_t)r * c + i] - ref) / (fabs(a) + fabs(bb) + 1e-3);
                        worst = err > worst ? err : worst;
                    }
                }
                ck_assert_msg(worst < 1e-5, "layernorm c=%d n=%d b=%d: %g", c, n, withb, worst);
                /* nt and aliasing do not change the bits. */
                K->layernorm(out2, x, wt, b, n, c, 1e-5f, 2);
                ck_assert(memcmp(out, out2, (size_t)n * c * sizeof *out) == 0);
                K->layernorm(x, x, wt, b, n, c, 1e-5f, 2);
                ck_assert(memcmp(out, x, (size_t)n * c * sizeof *out) == 0);
                free(out2);
                free(out);
                free(b);
                free(wt);
                free(x);
            }
}
END_TEST

/* Written as erfc and as a logistic (0.5 (1 + tanh u) = 1 / (1 + e^-2u)) so
 * that the reference itself keeps its accuracy in the left tail. */
static double gelu_erf_ref(double x) { return 0.5 * x * erfc(-x / sqrt(2.0)); }
static double gelu_tanh_ref(double x)
{
    double u = sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x);
    return x / (1.0 + exp(-2.0 * u));
}

static void check_gelu(int tanh_form)
{
    const size_t lens[] = { 1, 3, 17, 767, 768, 769, 3072, 200003 };
    for (int li = 0; li < 8; li++) {
        size_t len = lens[li];
        float *x = rnd_vec(len, 6.0f);
        if (len > 100)
            for (size_t i = 0; i < 100; i++)
                x[i] = -12.0f + 0.24f * (float)i + 0.001f;   /* sweep through the tails */
        float *y = xmalloc(len * sizeof *y), *y2 = xmalloc(len * sizeof *y2);
        memcpy(y, x, len * sizeof *y);
        memcpy(y2, x, len * sizeof *y);
        if (tanh_form) {
            K->gelu_tanh(y, len, 1);
            K->gelu_tanh(y2, len, 2);
        } else {
            K->gelu_erf(y, len, 1);
            K->gelu_erf(y2, len, 2);
        }
        ck_assert(memcmp(y, y2, len * sizeof *y) == 0);
        double worst = 0.0;
        for (size_t i = 0; i < len; i++) {
            double ref = tanh_form ? gelu_tanh_ref(x[i]) : gelu_erf_ref(x[i]);
            double err = fabs(y[i] - ref) / (fabs(ref) + 1e-30);
            if (fabs(ref) < 1e-30 && fabs(y[i]) < 1e-30)
                err = 0.0;
            worst = err > worst ? err : worst;
        }
        ck_assert_msg(worst < 1e-5, "gelu %s len=%zu: rel err %g", tanh_form ? "tanh" : "erf",
                      len, worst);
        free(y2);
        free(y);
        free(x);
    }
}

START_TEST(test_gelu_erf)
{
    if (use_set(_i)) check_gelu(0);
}
END_TEST

START_TEST(test_gelu_tanh)
{
    if (use_set(_i)) check_gelu(1);
}
END_TEST

START_TEST(test_add)
{
    if (!use_set(_i)) return;
    const size_t lens[] = { 1, 3, 17, 768, 769, 3072 * 37 + 5 };
    for (int li = 0; li < 6; li++) {
        size_t len = lens[li];
        float *x = rnd_vec(len, 3.0f), *y = rnd_vec(len, 3.0f);
        float *ref = xmalloc(len * sizeof *ref);
        for (size_t i = 0; i < len; i++) {
            volatile float s = x[i] + y[i];
            ref[i] = s;
        }
        K->add(x, y, len, li & 1 ? 2 : 0);
        ck_assert(memcmp(x, ref, len * sizeof *x) == 0);
        free(ref);
        free(y);
        free(x);
    }
}
END_TEST

START_TEST(test_softmax)
{
    if (!use_set(_i)) return;
    const int lens[] = { 1, 3, 17, 64, 768, 1025 };
    for (int li = 0; li < 6; li++)
        for (int withinf = 0; withinf < 2; withinf++) {
            int len = lens[li];
            float *x = rnd_vec((size_t)len, 8.0f);
            if (withinf)
                for (int i = 0; i < len; i += 3)
                    if (i != len - 1)
                        x[i] = -INFINITY;
            double mx = -INFINITY, sum = 0.0;
            for (int i = 0; i < len; i++)
                mx = x[i] > mx ? x[i] : mx;
            for (int i = 0; i < len; i++)
                sum += exp(x[i] - mx);
            float *y = xmalloc((size_t)len * sizeof *y);
            memcpy(y, x, (size_t)len * sizeof *y);
            K->softmax(y, len);
            double worst = 0.0, total = 0.0;
            for (int i = 0; i < len; i++) {
                double ref = exp(x[i] - mx) / sum;
                if (isinf(x[i]))
                    ck_assert(y[i] == 0.0f);
                double err = fabs(y[i] - ref) / (ref + 1e-30);
                worst = err > worst ? err : worst;
                total += y[i];
            }
            ck_assert_msg(worst < 1e-5, "softmax len=%d: %g", len, worst);
            ck_assert(fabs(total - 1.0) < 1e-5);
            free(y);
            free(x);
        }
    float all_inf[3] = { -INFINITY, -INFINITY, -INFINITY };
    K->softmax(all_inf, 3);
    ck_assert(all_inf[0] == 0.0f && all_inf[2] == 0.0f);
}
END_TEST

START_TEST(test_threads)
{
    ck_assert_int_eq(ops_threads(3), 3);
    ck_assert_int_eq(ops_threads(0), omp_get_max_threads());
    ck_assert_int_eq(ops_threads(-1), omp_get_max_threads());
    ck_assert_int_eq(ops_team_start(1), 1);
    ck_assert_int_eq(ops_team_start(0), 1);
    int t = ops_team_start(2);
    ck_assert_msg(t >= 1 && t <= 2, "team %d", t);
    ck_assert_uint_ge(ops_thread_stack(), 16384);
}
END_TEST

/* ---------- KV cache and attention ---------- */

static float cache_get(const void *cache, kvgpt_dtype dt, size_t i)
{
    if (dt == KVGPT_DTYPE_F16)
        return kv_f16_to_f32(((const uint16_t *)cache)[i]);
    if (dt == KVGPT_DTYPE_BF16)
        return kv_bf16_to_f32(((const uint16_t *)cache)[i]);
    return ((const float *)cache)[i];
}

START_TEST(test_kv_store)
{
    const int n_seq = 3, n_head = 2, hs = 17, ctx = 9;
    for (int d = 0; d < 3; d++) {
        kvgpt_dtype dt = all_dt[d];
        size_t elems = (size_t)n_seq * n_head * ctx * hs, es = kv_dtype_size(dt);
        unsigned char *cache = xmalloc(elems * es);
        memset(cache, 0x5a, elems * es);
        const int n = 4, lds = n_head * hs + 2;
        int32_t seq[4] = { 2, 0, 2, 1 }, pos[4] = { 0, 8, 3, 4 };
        float *src = rnd_vec((size_t)n * lds, 2.0f);
        ops_kv_store(cache, dt, src, lds, seq, pos, n, n_head, hs, ctx);
        int touched = 0;
        for (size_t i = 0; i < elems; i++) {
            size_t dd = i % hs, t = i / hs % ctx, h = i / hs / ctx % n_head, s = i / hs / ctx / n_head;
            int row = -1;
            for (int r = 0; r < n; r++)
                if (seq[r] == (int32_t)s && pos[r] == (int32_t)t)
                    row = r;
            if (row < 0) {
                for (size_t b = 0; b < es; b++)
                    ck_assert(cache[i * es + b] == 0x5a);
            } else {
                float want = quant(dt, src[(size_t)row * lds + h * hs + dd]);
                ck_assert(cache_get(cache, dt, i) == want);
                touched++;
            }
        }
        ck_assert_int_eq(touched, n * n_head * hs);
        free(src);
        free(cache);
    }
}
END_TEST

typedef struct {
    int n_seq, n_head, hs, ctx;
} att_shape;

/* Fills a cache with random K and V, then attends rows at chosen (seq, pos)
 * and compares with the double reference over the stored (rounded) values. */
static void run_attention_case(att_shape sh, kvgpt_dtype dt)
{
    const int C = sh.n_head * sh.hs;
    size_t elems = (size_t)sh.n_seq * sh.n_head * sh.ctx * sh.hs, es = kv_dtype_size(dt);
    void *k = xmalloc(elems * es), *v = xmalloc(elems * es);
    /* every position of every sequence gets K/V, written a few rows at a time */
    float *row = rnd_vec((size_t)C, 1.0f);
    for (int s = 0; s < sh.n_seq; s++)
        for (int t = 0; t < sh.ctx; t++) {
            int32_t seq = s, pos = t;
            for (int i = 0; i < C; i++)
                row[i] = rnd(1.0f);
            ops_kv_store(k, dt, row, C, &seq, &pos, 1, sh.n_head, sh.hs, sh.ctx);
            for (int i = 0; i < C; i++)
                row[i] = rnd(1.5f);
            ops_kv_store(v, dt, row, C, &seq, &pos, 1, sh.n_head, sh.hs, sh.ctx);
        }
    free(row);

    const int n = 11;
    int32_t seq[11], pos[11];
    for (int r = 0; r < n; r++) {
        seq[r] = r % sh.n_seq;
        pos[r] = r == 0 ? 0 : r == 1 ? sh.ctx - 1 : (int32_t)(rnd_u32() % (uint32_t)sh.ctx);
    }
    const int ldq = C + 4, ldo = C + 1;
    float *q = rnd_vec((size_t)n * ldq, 2.0f);
    float *out = xmalloc((size_t)n * ldo * sizeof *out);
    float *out2 = xmalloc((size_t)n * ldo * sizeof *out2);
    float *scratch = xmalloc(ops_attention_scratch(sh.ctx, 2) * sizeof *scratch);
    ck_assert_uint_eq(ops_attention_scratch(sh.ctx, 2), (size_t)2 * sh.ctx);
    for (size_t i = 0; i < (size_t)n * ldo; i++)
        out[i] = out2[i] = 777.0f;
    K->attention(out, ldo, q, ldq, k, v, dt, seq, pos, n, sh.n_head, sh.hs, sh.ctx, scratch, 1);

    double *p = xmalloc((size_t)sh.ctx * sizeof *p);
    double worst = 0.0;
    for (int r = 0; r < n; r++)
        for (int h = 0; h < sh.n_head; h++) {
            size_t base = ((size_t)seq[r] * sh.n_head + h) * sh.ctx * sh.hs;
            const float *qr = q + (size_t)r * ldq + (size_t)h * sh.hs;
            double mx = -INFINITY, sum = 0.0;
            for (int t = 0; t <= pos[r]; t++) {
                double s = 0.0;
                for (int dd = 0; dd < sh.hs; dd++)
                    s += (double)qr[dd] * cache_get(k, dt, base + (size_t)t * sh.hs + dd);
                p[t] = s / sqrt((double)sh.hs);
                mx = p[t] > mx ? p[t] : mx;
            }
            for (int t = 0; t <= pos[r]; t++) {
                p[t] = exp(p[t] - mx);
                sum += p[t];
            }
            for (int dd = 0; dd < sh.hs; dd++) {
                double o = 0.0, mag = 0.0;
                for (int t = 0; t <= pos[r]; t++) {
                    double vv = cache_get(v, dt, base + (size_t)t * sh.hs + dd);
                    o += p[t] / sum * vv;
                    mag += p[t] / sum * fabs(vv);
                }
                double err = fabs(out[(size_t)r * ldo + (size_t)h * sh.hs + dd] - o) / mag;
                worst = err > worst ? err : worst;
            }
        }
    ck_assert_msg(worst < 1e-5, "attention hs=%d heads=%d ctx=%d dt=%d: %g", sh.hs, sh.n_head,
                  sh.ctx, (int)dt, worst);
    for (int r = 0; r < n; r++)
        ck_assert(out[(size_t)r * ldo + C] == 777.0f);

    /* nt=2, and each row alone, give the same bits. */
    K->attention(out2, ldo, q, ldq, k, v, dt, seq, pos, n, sh.n_head, sh.hs, sh.ctx, scratch, 2);
    ck_assert(memcmp(out, out2, (size_t)n * ldo * sizeof *out) == 0);
    for (int r = 0; r < n; r++)
        K->attention(out2 + (size_t)r * ldo, ldo, q + (size_t)r * ldq, ldq, k, v, dt, seq + r,
                      pos + r, 1, sh.n_head, sh.hs, sh.ctx, scratch, 1 + (r & 1));
    ck_assert(memcmp(out, out2, (size_t)n * ldo * sizeof *out) == 0);

    free(p);
    free(scratch);
    free(out2);
    free(out);
    free(q);
    free(v);
    free(k);
}

START_TEST(test_attention)
{
    if (!use_set(_i)) return;
    const att_shape shapes[] = { {3, 2, 64, 40}, {2, 12, 64, 300}, {3, 3, 17, 9}, {1, 1, 1, 5},
                                 {2, 2, 16, 33}, {2, 2, 80, 21}, {1, 4, 3, 1}, {1, 2, 128, 1030} };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int d = 0; d < 3; d++)
            run_attention_case(shapes[s], all_dt[d]);
}
END_TEST

static Suite *ops_suite(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_sets);
    tcase_add_test(tc, test_f16_decode_all);
    tcase_add_test(tc, test_f16_rounding);
    tcase_add_test(tc, test_bf16);
    tcase_add_test(tc, test_pack);
    tcase_add_loop_test(tc, test_matmul_small, 0, ops_set_count());
    tcase_add_loop_test(tc, test_matmul_large, 0, ops_set_count());
    tcase_add_loop_test(tc, test_matmul_determinism, 0, ops_set_count());
    tcase_add_loop_test(tc, test_layernorm, 0, ops_set_count());
    tcase_add_loop_test(tc, test_gelu_erf, 0, ops_set_count());
    tcase_add_loop_test(tc, test_gelu_tanh, 0, ops_set_count());
    tcase_add_loop_test(tc, test_add, 0, ops_set_count());
    tcase_add_loop_test(tc, test_softmax, 0, ops_set_count());
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_kv_store);
    tcase_add_loop_test(tc, test_attention, 0, ops_set_count());
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tf_run_suite(ops_suite());
}
