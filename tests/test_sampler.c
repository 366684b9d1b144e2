/* tests/test_sampler.c — kvgpt_sample_logits against the distribution it
 * promises (nanoGPT's: logits / temperature, top_k with ties kept, then the
 * top_p nucleus, softmax, one draw): chi-square goodness of fit on 100k
 * draws from fixed seeds, and hard limits (never a token outside top_k or
 * the nucleus, never a -inf logit). No model is needed. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kvgpt.h"
#include "tests/support/suite.h"

#define NV 10
#define DRAWS 100000

/* Distinct values so that the order of the probabilities is unambiguous. */
static const float LOGITS[NV] = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f, 2.5f, -0.5f, 1.5f, 0.7f};

static kvgpt_gen_options opts(float temperature, int top_k, float top_p)
{
    kvgpt_gen_options g;
    kvgpt_gen_options_default(&g);
    g.temperature = temperature;
    g.top_k = top_k;
    g.top_p = top_p;
    return g;
}

/* softmax(logits / t) over the tokens with keep[i] != 0, in double. */
static void softmax_ref(const float *logits, int n, double t, const int *keep, double *p)
{
    double mx = -INFINITY, sum = 0.0;
    for (int i = 0; i < n; i++)
        if (keep[i] && logits[i] / t > mx) mx = logits[i] / t;
    for (int i = 0; i < n; i++) {
        p[i] = keep[i] ? exp(logits[i] / t - mx) : 0.0;
        sum += p[i];
    }
    for (int i = 0; i < n; i++) p[i] /= sum;
}

static void keep_all(int *keep, int n)
{
    for (int i = 0; i < n; i++) keep[i] = 1;
}

/* Draws `draws` tokens into counts[n]; fails the test on a token out of range. */
static void draw(const float *logits, int n, const kvgpt_gen_options *g, uint64_t seed, int draws, long *counts)
{
    uint64_t rng = seed;
    float scratch[2 * 64];
    memset(counts, 0, (size_t)n * sizeof *counts);
    for (int i = 0; i < draws; i++) {
        int32_t t = kvgpt_sample_logits(logits, n, g, &rng, scratch);
        ck_assert_msg(t >= 0 && t < n, "draw %d returned token %d, outside 0..%d", i, t, n - 1);
        counts[t]++;
    }
}

/* Critical values of chi-square at significance 0.001, by degrees of freedom. */
static double chi2_critical(int df)
{
    static const double crit[] = {0,      10.828, 13.816, 16.266, 18.467, 20.515, 22.458,
                                  24.322, 26.124, 27.877, 29.588, 31.264, 32.909};
    ck_assert_msg(df >= 1 && df < (int)(sizeof crit / sizeof crit[0]), "no table entry for df %d", df);
    return crit[df];
}

/* Pearson's statistic of counts against p over the tokens with p > 0. A token
 * drawn where p == 0 makes it infinite. *df gets (categories - 1). */
static double chi2(const long *counts, const double *p, int n, long total, int *df)
{
    double x = 0.0;
    int cats = 0;
    for (int i = 0; i < n; i++) cats += p[i] > 0.0;
    *df = cats - 1;
    for (int i = 0; i < n; i++) {
        if (p[i] == 0.0) {
            if (counts[i]) return INFINITY;
            continue;
        }
        double e = p[i] * (double)total, d = (double)counts[i] - e;
        x += d * d / e;
    }
    return x;
}

static void assert_fits(const long *counts, const double *p, int n, long total, const char *what)
{
    int df;
    double x = chi2(counts, p, n, total, &df);
    double crit = chi2_critical(df);
    ck_assert_msg(x < crit, "%s: chi-square %.2f with %d degrees of freedom exceeds %.2f (p < 0.001)", what, x, df,
                  crit);
}

START_TEST(test_temperature_one_matches_softmax)
{
    kvgpt_gen_options g = opts(1.0f, 0, 1.0f);
    long counts[NV];
    double p[NV];
    int keep[NV];
    keep_all(keep, NV);
    softmax_ref(LOGITS, NV, 1.0, keep, p);
    draw(LOGITS, NV, &g, 0x0123456789abcdefull, DRAWS, counts);
    assert_fits(counts, p, NV, DRAWS, "T=1");
    for (int i = 0; i < NV; i++) ck_assert_msg(counts[i] > 0, "token %d (p=%.4f) never drawn", i, p[i]);
}
END_TEST

START_TEST(test_temperature_scales_distribution)
{
    long counts[NV];
    double p1[NV], ph[NV], p2[NV];
    int keep[NV];
    keep_all(keep, NV);
    softmax_ref(LOGITS, NV, 1.0, keep, p1);
    softmax_ref(LOGITS, NV, 0.5, keep, ph);
    softmax_ref(LOGITS, NV, 2.0, keep, p2);

    kvgpt_gen_options g = opts(0.5f, 0, 1.0f);
    draw(LOGITS, NV, &g, 42, DRAWS, counts);
    assert_fits(counts, ph, NV, DRAWS, "T=0.5");
    /* The same draws are far from the T=1 distribution: the test has power. */
    int df;
    double x = chi2(counts, p1, NV, DRAWS, &df);
    ck_assert_msg(x > 10 * chi2_critical(df), "T=0.5 draws fit the T=1 distribution (chi-square %.1f)", x);
    /* Sharper: the argmax (token 4) gains mass. */
    ck_assert_msg(counts[4] > (long)(p1[4] * DRAWS * 1.2), "T=0.5: argmax drawn %ld times, T=1 expects %.0f",
                  counts[4], p1[4] * DRAWS);

    g = opts(2.0f, 0, 1.0f);
    draw(LOGITS, NV, &g, 43, DRAWS, counts);
    assert_fits(counts, p2, NV, DRAWS, "T=2");
    x = chi2(counts, p1, NV, DRAWS, &df);
    ck_assert_msg(x > 10 * chi2_critical(df), "T=2 draws fit the T=1 distribution (chi-square %.1f)", x);
}
END_TEST

START_TEST(test_temperature_zero_is_argmax)
{
    kvgpt_gen_options g = opts(0.0f, 0, 1.0f);
    uint64_t rng = 7;
    float scratch[2 * 64];
    ck_assert_int_eq(kvgpt_sample_logits(LOGITS, NV, &g, &rng, scratch), 4);
    /* Ties: the first index, as torch.argmax. */
    const float tie[5] = {1.0f, 3.0f, -2.0f, 3.0f, 0.0f};
    ck_assert_int_eq(kvgpt_sample_logits(tie, 5, &g, &rng, scratch), 1);
    /* Every position can be the argmax, including the last and with -inf around. */
    for (int k = 0; k < NV; k++) {
        float l[NV];
        for (int i = 0; i < NV; i++) l[i] = i == k ? 5.0f : (i % 2 ? -INFINITY : 4.5f);
        ck_assert_int_eq(kvgpt_sample_logits(l, NV, &g, &rng, scratch), k);
    }
    /* top_k / top_p do not matter at T=0. */
    g = opts(0.0f, 3, 0.5f);
    ck_assert_int_eq(kvgpt_sample_logits(LOGITS, NV, &g, &rng, scratch), 4);
    /* A tiny positive temperature is (numerically) argmax too, down to the
     * smallest float, where logits / T overflow to infinity. */
    static const float tiny[] = {1e-6f, 1e-30f, 1e-38f, 1e-45f};
    for (size_t t = 0; t < sizeof tiny / sizeof tiny[0]; t++) {
        g = opts(tiny[t], 0, 1.0f);
        for (int i = 0; i < 200; i++)
            ck_assert_msg(kvgpt_sample_logits(LOGITS, NV, &g, &rng, scratch) == 4, "T=%g did not give the argmax",
                          (double)tiny[t]);
    }
}
END_TEST

START_TEST(test_top_k_keeps_best_and_ties)
{
    /* Sorted values: 5, 4, 4, 4, 3, 2, 2, 1, 0, -1. */
    static const float l[NV] = {2.0f, 4.0f, 1.0f, 5.0f, 4.0f, -1.0f, 3.0f, 2.0f, 0.0f, 4.0f};
    static const struct { int k; int kept; } cases[] = {
        {1, 1}, {2, 4}, {3, 4}, {4, 4}, {5, 5}, {6, 7}, {7, 7}, {9, 9}, {10, 10}, {11, 10}, {200, 10}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int k = cases[c].k;
        /* nanoGPT: v = topk(k); logits[logits < v[-1]] = -inf. */
        float sorted[NV];
        memcpy(sorted, l, sizeof sorted);
        for (int i = 0; i < NV; i++)
            for (int j = i + 1; j < NV; j++)
                if (sorted[j] > sorted[i]) {
                    float t = sorted[i];
                    sorted[i] = sorted[j];
                    sorted[j] = t;
                }
        float kth = sorted[(k < NV ? k : NV) - 1];
        int keep[NV], n_keep = 0;
        for (int i = 0; i < NV; i++) n_keep += keep[i] = l[i] >= kth;
        ck_assert_int_eq(n_keep, cases[c].kept);

        double p[NV];
        long counts[NV];
        softmax_ref(l, NV, 1.0, keep, p);
        kvgpt_gen_options g = opts(1.0f, k, 1.0f);
        draw(l, NV, &g, 1000 + (uint64_t)k, 40000, counts);
        for (int i = 0; i < NV; i++) {
            ck_assert_msg(keep[i] || counts[i] == 0, "top_k %d: token %d (logit %g) outside the top k drawn %ld times",
                          k, i, (double)l[i], counts[i]);
            ck_assert_msg(!keep[i] || counts[i] > 0, "top_k %d: token %d (logit %g, tied or inside) never drawn", k,
                          i, (double)l[i]);
        }
        if (n_keep > 1) {
            char what[32];
            snprintf(what, sizeof what, "top_k %d", k);
            assert_fits(counts, p, NV, 40000, what);
        }
    }
}
END_TEST

START_TEST(test_top_k_above_vocab_is_all)
{
    /* k > V (nanoGPT's default 200 on a 65-token vocabulary) keeps every token: same stream as k = 0. */
    kvgpt_gen_options all = opts(0.8f, 0, 1.0f), big = opts(0.8f, 200, 1.0f), eq = opts(0.8f, NV, 1.0f);
    uint64_t r1 = 99, r2 = 99, r3 = 99;
    float scratch[2 * 64];
    for (int i = 0; i < 5000; i++) {
        int32_t a = kvgpt_sample_logits(LOGITS, NV, &all, &r1, scratch);
        int32_t b = kvgpt_sample_logits(LOGITS, NV, &big, &r2, scratch);
        int32_t c = kvgpt_sample_logits(LOGITS, NV, &eq, &r3, scratch);
        ck_assert_msg(a == b && a == c, "draw %d: top_k 0 gives %d, top_k 200 gives %d, top_k V gives %d", i, a, b, c);
    }
}
END_TEST

/* The nucleus as the brief defines it: the most probable tokens, in order, until their mass reaches p. */
static int nucleus(const double *prob, int n, double top_p, int *keep)
{
    int order[NV];
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (prob[order[j]] > prob[order[i]]) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    double acc = 0.0;
    int kept = 0;
    for (int i = 0; i < n; i++) keep[i] = 0;
    for (int i = 0; i < n && acc < top_p; i++) {
        keep[order[i]] = 1;
        acc += prob[order[i]];
        kept++;
    }
    return kept;
}

START_TEST(test_top_p_nucleus)
{
    double full[NV];
    int all[NV];
    keep_all(all, NV);
    softmax_ref(LOGITS, NV, 1.0, all, full);
    /* Sorted p: 0.383 (token 4), 0.232 (6), 0.141 (1), 0.085 (8), 0.052 (0), 0.038 (9), 0.031 (2), ...
     * cumulative 0.383, 0.615, 0.756, 0.841, 0.893, 0.931, 0.962, 0.981, 0.993, 1. */
    static const struct { float p; int kept; } cases[] = {{0.05f, 1}, {0.3f, 1}, {0.5f, 2}, {0.6f, 2}, {0.7f, 3},
                                                         {0.8f, 4}, {0.9f, 6}, {0.99f, 9}, {1.0f, 10}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int keep[NV];
        int kept = nucleus(full, NV, cases[c].p, keep);
        ck_assert_msg(kept == cases[c].kept, "top_p %g: the reference nucleus has %d tokens, expected %d",
                      (double)cases[c].p, kept, cases[c].kept);
        double p[NV];
        long counts[NV];
        softmax_ref(LOGITS, NV, 1.0, keep, p);
        kvgpt_gen_options g = opts(1.0f, 0, cases[c].p);
        draw(LOGITS, NV, &g, 500 + c, 40000, counts);
        for (int i = 0; i < NV; i++) {
            ck_assert_msg(keep[i] || counts[i] == 0, "top_p %g: token %d (p=%.4f) outside the nucleus drawn %ld times",
                          (double)cases[c].p, i, full[i], counts[i]);
            ck_assert_msg(!keep[i] || counts[i] > 0, "top_p %g: token %d inside the nucleus never drawn",
                          (double)cases[c].p, i);
        }
        if (kept > 1) {
            char what[32];
            snprintf(what, sizeof what, "top_p %g", (double)cases[c].p);
            assert_fits(counts, p, NV, 40000, what);
        }
    }
}
END_TEST

START_TEST(test_top_k_then_top_p)
{
    /* The nucleus is taken from the top-k distribution, renormalized. */
    int keep_k[NV] = {0};
    keep_k[4] = keep_k[6] = keep_k[1] = 1;   /* the top 3 */
    double pk[NV];
    softmax_ref(LOGITS, NV, 1.0, keep_k, pk); /* 0.506, 0.307, 0.186 */
    int keep[NV];
    int kept = nucleus(pk, NV, 0.7, keep);
    ck_assert_int_eq(kept, 2);
    double p[NV];
    long counts[NV];
    softmax_ref(LOGITS, NV, 1.0, keep, p);
    kvgpt_gen_options g = opts(1.0f, 3, 0.7f);
    draw(LOGITS, NV, &g, 77, 40000, counts);
    for (int i = 0; i < NV; i++)
        ck_assert_msg(keep[i] || counts[i] == 0, "top_k 3 + top_p 0.7: token %d drawn %ld times", i, counts[i]);
    assert_fits(counts, p, NV, 40000, "top_k 3 + top_p 0.7");
}
END_TEST

START_TEST(test_neg_inf_never_drawn)
{
    float l[NV];
    memcpy(l, LOGITS, sizeof l);
    l[4] = -INFINITY;   /* the former argmax */
    l[0] = l[9] = -INFINITY;
    int keep[NV];
    for (int i = 0; i < NV; i++) keep[i] = l[i] > -INFINITY;
    double p[NV];
    long counts[NV];
    softmax_ref(l, NV, 1.0, keep, p);
    const kvgpt_gen_options cases[] = {opts(1.0f, 0, 1.0f), opts(0.8f, 200, 1.0f), opts(1.0f, 9, 1.0f),
                                       opts(3.0f, 0, 0.95f), opts(0.0f, 0, 1.0f)};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        draw(l, NV, &cases[c], 3000 + c, 20000, counts);
        for (int i = 0; i < NV; i++)
            ck_assert_msg(keep[i] || counts[i] == 0, "case %zu: token %d with logit -inf drawn %ld times", c, i,
                          counts[i]);
        if (c == 0) assert_fits(counts, p, NV, 20000, "with -inf logits");
    }
    /* Only one finite logit: always it, whatever the settings. */
    float one[NV];
    for (int i = 0; i < NV; i++) one[i] = -INFINITY;
    one[7] = -3.0f;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        draw(one, NV, &cases[c], 4000 + c, 1000, counts);
        ck_assert_msg(counts[7] == 1000, "case %zu: the only finite token drawn %ld of 1000 times", c, counts[7]);
    }
}
END_TEST

START_TEST(test_stream_reproducible)
{
    /* The draws depend on the state alone; the state advances; a zero state is not stuck. */
    kvgpt_gen_options g = opts(1.0f, 0, 1.0f);
    float scratch[2 * 64];
    uint64_t a = 12345, b = 12345;
    int differ = 0;
    int32_t first = -1;
    for (int i = 0; i < 200; i++) {
        int32_t x = kvgpt_sample_logits(LOGITS, NV, &g, &a, scratch);
        int32_t y = kvgpt_sample_logits(LOGITS, NV, &g, &b, scratch);
        ck_assert_int_eq(x, y);
        if (first < 0) first = x;
        differ |= x != first;
    }
    ck_assert_msg(differ, "200 draws at T=1 all gave token %d", first);
    ck_assert_msg(a != 12345, "the state did not advance");

    uint64_t z = 0;
    long counts[NV] = {0};
    for (int i = 0; i < 2000; i++) counts[kvgpt_sample_logits(LOGITS, NV, &g, &z, scratch)]++;
    int distinct = 0;
    for (int i = 0; i < NV; i++) distinct += counts[i] > 0;
    ck_assert_msg(distinct >= 5, "state 0: 2000 draws gave only %d distinct tokens (a stuck generator)", distinct);
}
END_TEST

static Suite *sampler_suite(void)
{
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_temperature_one_matches_softmax);
    tcase_add_test(tc, test_temperature_scales_distribution);
    tcase_add_test(tc, test_temperature_zero_is_argmax);
    tcase_add_test(tc, test_top_k_keeps_best_and_ties);
    tcase_add_test(tc, test_top_k_above_vocab_is_all);
    tcase_add_test(tc, test_top_p_nucleus);
    tcase_add_test(tc, test_top_k_then_top_p);
    tcase_add_test(tc, test_neg_inf_never_drawn);
    tcase_add_test(tc, test_stream_reproducible);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tf_run_suite(sampler_suite());
}
