/* tests/test_dtypes.c — weights and KV cache in bf16 / f16 stay within the
 * expected rounding error of the f32 logits, on both fixture models, and the
 * budget shows the halved bytes. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvgpt.h"
#include "tests/support/fixtures.h"
#include "tests/support/suite.h"

/* Logits of every position of ids under the given dtypes. */
static float *run(const char *dir, kvgpt_dtype wd, kvgpt_dtype kd, const int32_t *ids, int n, int *vocab)
{
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = dir;
    o.logits_all = 1;
    o.weight_dtype = wd;
    o.kv_dtype = kd;
    kvgpt_model *m = NULL;
    kvgpt_error err = {0};
    kvgpt_status s = kvgpt_open(&o, NULL, 0, &m, &err);
    ck_assert_msg(s == KVGPT_OK, "open %s: %s", dir, err.msg);
    *vocab = kvgpt_model_config(m)->vocab_size;
    float *l = malloc(sizeof(float) * (size_t)n * (size_t)*vocab);
    ck_assert_ptr_nonnull(l);
    s = kvgpt_forward(m, ids, n, l, &err);
    ck_assert_msg(s == KVGPT_OK, "forward: %s", err.msg);
    kvgpt_close(m);
    return l;
}

/* max |x - ref| <= rel * max |ref| over every logit. */
static void check_close(const char *dir, kvgpt_dtype wd, kvgpt_dtype kd, double rel, const char *what)
{
    int32_t ids[48];
    int n = 48, V;
    for (int i = 0; i < n; i++) ids[i] = (i * 7919 + 11) % 65;   /* valid in both vocabularies */
    float *ref = run(dir, KVGPT_DTYPE_F32, KVGPT_DTYPE_F32, ids, n, &V);
    float *got = run(dir, wd, kd, ids, n, &V);
    double maxref = 0, maxdiff = 0;
    for (size_t i = 0; i < (size_t)n * V; i++) {
        maxref = fmax(maxref, fabs(ref[i]));
        maxdiff = fmax(maxdiff, fabs((double)got[i] - ref[i]));
    }
    ck_assert_msg(maxdiff > 0.0, "%s on %s: bitwise equal to f32 — the dtype did not take effect", what, dir);
    ck_assert_msg(maxdiff <= rel * maxref, "%s on %s: max |diff| %g > %g * max|logit| %g", what, dir, maxdiff, rel,
                  maxref);
    fprintf(stderr, "  %-22s %-14s max|diff| %.3g = %.2e of max|logit| %.3g\n", what,
            strrchr(dir, '/') + 1, maxdiff, maxdiff / maxref, maxref);
    free(ref);
    free(got);
}

static int region(const kvgpt_plan *p, const char *name)
{
    for (int i = 0; i < p->n_regions; i++)
        if (strcmp(p->regions[i].name, name) == 0) return i;
    ck_abort_msg("no region %s", name);
    return -1;
}

static const char *models[] = {"shakespeare_char", "gpt2_tiny_hf"};

START_TEST(weights_bf16)
{
    if (!tf_need_fixtures(__func__)) return;
    check_close(tf_path(models[_i]), KVGPT_DTYPE_BF16, KVGPT_DTYPE_F32, 2e-2, "bf16 weights");
}
END_TEST

START_TEST(weights_f16)
{
    if (!tf_need_fixtures(__func__)) return;
    check_close(tf_path(models[_i]), KVGPT_DTYPE_F16, KVGPT_DTYPE_F32, 2e-3, "f16 weights");
}
END_TEST

START_TEST(kv_bf16)
{
    if (!tf_need_fixtures(__func__)) return;
    check_close(tf_path(models[_i]), KVGPT_DTYPE_F32, KVGPT_DTYPE_BF16, 2e-2, "bf16 KV cache");
}
END_TEST

START_TEST(kv_f16)
{
    if (!tf_need_fixtures(__func__)) return;
    check_close(tf_path(models[_i]), KVGPT_DTYPE_F32, KVGPT_DTYPE_F16, 2e-3, "f16 KV cache");
}
END_TEST

START_TEST(budget_halves)
{
    kvgpt_config c;
    ck_assert_int_eq(kvgpt_shape_config(KVGPT_SHAPE_GPT2, &c), KVGPT_OK);
    size_t w[3] = {0, 0, 0}, kv[3] = {0, 0, 0};
    kvgpt_dtype dts[3] = {KVGPT_DTYPE_F32, KVGPT_DTYPE_F16, KVGPT_DTYPE_BF16};
    for (int d = 0; d < 3; d++) {
        kvgpt_options o;
        kvgpt_options_default(&o);
        o.weight_dtype = o.kv_dtype = dts[d];
        kvgpt_plan p;
        kvgpt_error err;
        ck_assert_int_eq(kvgpt_plan_config(&c, &o, &p, &err), KVGPT_OK);
        for (int i = 0; i < p.n_regions; i++) {
            const kvgpt_region *r = &p.regions[i];
            if (r->kind == KVGPT_REGION_KV) kv[d] += r->bytes;
            /* Matrices change dtype; LayerNorm, biases and wpe stay f32. */
            if (r->kind == KVGPT_REGION_WEIGHTS && strcmp(r->type, "f32") != 0) w[d] += r->bytes;
        }
        if (d) ck_assert_str_eq(p.regions[region(&p, "h.*.mlp.c_fc.weight")].type, d == 1 ? "f16" : "bf16");
    }
    ck_assert_uint_eq(kv[0], (size_t)75497472);
    ck_assert_uint_eq(kv[1] * 2, kv[0]);
    ck_assert_uint_eq(kv[2] * 2, kv[0]);
    ck_assert_uint_gt(w[1], 0);
    ck_assert_uint_eq(w[1], w[2]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dtypes");
    TCase *tc = tcase_create("dtypes");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, weights_bf16, 0, 2);
    tcase_add_loop_test(tc, weights_f16, 0, 2);
    tcase_add_loop_test(tc, kv_bf16, 0, 2);
    tcase_add_loop_test(tc, kv_f16, 0, 2);
    tcase_add_test(tc, budget_halves);
    suite_add_tcase(s, tc);
    return tf_run_suite(s);
}
