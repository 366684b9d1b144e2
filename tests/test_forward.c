/* tests/test_forward.c — the GPT-2 forward against what nanoGPT computed:
 * every logit of every position of the reference prompts within 1e-4, the
 * argmax at every position, both layouts (nanoGPT without biases, exact GELU;
 * HuggingFace with biases, tanh GELU and the erf override), the char
 * tokenizer, and results independent of the thread count: each with every
 * kernel set of the build that this CPU runs. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvgpt.h"
#include "tests/support/fixtures.h"
#include "tests/support/suite.h"
#include "tests/support/loader_ref.h"

#define TOL 1e-4

/* The CPU kernel sets a build may have; each loop test runs once per set. */
static const char *const g_sets[] = {"portable", "avx2", "avx512"};
#define N_SETS 3
static const char *g_kernels;   /* the kernel set the current test opens models with */

/* 1 when set i is to be run: this CPU runs it (the plan takes it). A
 * backend without CPU kernel sets (cuda) runs the test once, as it is. */
static int use_set(int i)
{
    kvgpt_options o;
    kvgpt_plan p;
    kvgpt_error err = {0, ""};
    kvgpt_options_default(&o);
    o.cpu_kernels = g_sets[i];
    kvgpt_status s = tf_plan_gpt2(&o, &p, &err);
    g_kernels = NULL;
    if (s == KVGPT_ERR_UNSUPPORTED) {
        printf("  kernel set %s: skipped (%s)\n", g_sets[i], err.msg);
        return 0;
    }
    ck_assert_msg(s == KVGPT_OK, "%s", err.msg);
    if (strcmp(p.kernels, g_sets[i]) != 0) return i == 0;
    g_kernels = g_sets[i];
    return 1;
}

/* Loads a reference index; NULL (test skipped) when the fixtures are absent. */
static int load_ref(const char *rel_json, const char *variant, ref_set *set)
{
    if (!tf_need_fixtures(rel_json)) return 0;
    char why[512];
    int rc = ref_load(tf_path(rel_json), variant, set, why, sizeof why);
    ck_assert_msg(rc == 0, "%s", why);
    return 1;
}

static void open_model(const char *rel_dir, kvgpt_gelu gelu, int threads, int logits_all, kvgpt_model **m)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tf_path(rel_dir));
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = dir;
    o.gelu = gelu;
    o.threads = threads;
    o.logits_all = logits_all;
    o.cpu_kernels = g_kernels;
    kvgpt_error err = {0};
    kvgpt_status s = kvgpt_open(&o, NULL, 0, m, &err);
    ck_assert_msg(s == KVGPT_OK, "kvgpt_open(%s): %s: %s", dir, kvgpt_strerror(s), err.msg);
    ck_assert_ptr_nonnull(*m);
    if (g_kernels) ck_assert_str_eq(kvgpt_model_plan(*m)->kernels, g_kernels);
}

/* Runs every entry of set on m and checks it against the f32 file. */
static void check_entries(kvgpt_model *m, const ref_set *set, const char *rel_f32, const char *what)
{
    int V = kvgpt_model_config(m)->vocab_size;
    ck_assert_int_eq(V, set->vocab_size);
    for (int i = 0; i < set->n; i++) {
        const ref_entry *e = &set->e[i];
        float *want = ref_logits(tf_path(rel_f32), e, V);
        ck_assert_msg(want != NULL, "%s: entry %s: cannot read %zu bytes at %zu", rel_f32, e->name, e->nbytes,
                      e->offset);
        float *got = malloc((size_t)e->n * (size_t)V * sizeof(float));
        ck_assert_ptr_nonnull(got);
        kvgpt_error err = {0};
        kvgpt_status s = kvgpt_forward(m, e->ids, e->n, got, &err);
        ck_assert_msg(s == KVGPT_OK, "%s %s: kvgpt_forward: %s", what, e->name, err.msg);
        ref_diff d;
        ref_compare(got, want, e, V, &d);
        printf("  %s %-10s T=%-3d max |diff| %.3g (%s kernels)\n", what, e->name, e->n, d.max_abs,
               kvgpt_model_plan(m)->kernels);
        ck_assert_msg(d.max_abs <= TOL, "%s %s: logit [%d,%d] is %.7g, nanoGPT says %.7g (|diff| %.3g > %g)", what,
                      e->name, d.worst_row, d.worst_col, (double)got[(size_t)d.worst_row * V + d.worst_col],
                      (double)want[(size_t)d.worst_row * V + d.worst_col], d.max_abs, TOL);
        ck_assert_msg(e->n_argmax == e->n, "%s %s: the index has %d argmaxes for %d tokens", what, e->name,
                      e->n_argmax, e->n);
        ck_assert_msg(d.argmax_mismatch == 0, "%s %s: argmax differs at %d positions, first at %d", what, e->name,
                      d.argmax_mismatch, d.first_mismatch);
        free(got);
        free(want);
    }
}

START_TEST(test_shakespeare_char_logits)
{
    if (!use_set(_i)) return;
    ref_set set;
    if (!load_ref("reference/shakespeare_char_logits.json", NULL, &set)) return;
    ck_assert_int_eq(set.n, 3);
    kvgpt_model *m;
    open_model("shakespeare_char", KVGPT_GELU_CONFIG, 0, 1, &m);
    const kvgpt_config *c = kvgpt_model_config(m);
    ck_assert_msg(c->n_layer == 4 && c->n_head == 4 && c->n_embd == 128 && c->block_size == 64 && c->bias == 0 &&
                      c->hf_layout == 0 && c->gelu == KVGPT_GELU_ERF,
                  "shakespeare_char config read as L%d H%d C%d T%d bias %d hf %d gelu %d", c->n_layer, c->n_head,
                  c->n_embd, c->block_size, c->bias, c->hf_layout, (int)c->gelu);
    check_entries(m, &set, "reference/shakespeare_char_logits.f32", "shakespeare_char");
    kvgpt_close(m);
}
END_TEST

START_TEST(test_shakespeare_char_encode)
{
    g_kernels = NULL;   /* the default choice */
    ref_set set;
    if (!load_ref("reference/shakespeare_char_logits.json", NULL, &set)) return;
    kvgpt_model *m;
    open_model("shakespeare_char", KVGPT_GELU_CONFIG, 0, 0, &m);
    ck_assert(kvgpt_has_tokenizer(m));
    for (int i = 0; i < set.n; i++) {
        const ref_entry *e = &set.e[i];
        int32_t ids[REF_MAX_T];
        int n = -1;
        kvgpt_error err = {0};
        ck_assert_msg(e->prompt_len > 0, "entry %s has no prompt", e->name);
        kvgpt_status s = kvgpt_encode(m, e->prompt, e->prompt_len, ids, REF_MAX_T, &n, &err);
        ck_assert_msg(s == KVGPT_OK, "encode %s: %s", e->name, err.msg);
        ck_assert_msg(n == e->n, "encode %s: %d ids, nanoGPT has %d", e->name, n, e->n);
        for (int k = 0; k < n; k++)
            ck_assert_msg(ids[k] == e->ids[k], "encode %s: id %d is %d, nanoGPT has %d", e->name, k, ids[k], e->ids[k]);
        /* And back: each id's bytes spell the prompt. */
        size_t at = 0;
        for (int k = 0; k < n; k++) {
            const char *b;
            size_t len;
            ck_assert_int_eq(kvgpt_token_bytes(m, ids[k], &b, &len), KVGPT_OK);
            ck_assert_msg(at + len <= e->prompt_len && memcmp(b, e->prompt + at, len) == 0,
                          "token_bytes(%d) does not spell prompt %s at byte %zu", ids[k], e->name, at);
            at += len;
        }
        ck_assert_uint_eq(at, e->prompt_len);
    }
    /* A character outside the vocabulary is refused, not mapped. */
    int32_t ids[4];
    int n;
    kvgpt_error err = {0};
    ck_assert_int_eq(kvgpt_encode(m, "a#b", 3, ids, 4, &n, &err), KVGPT_ERR_TOKEN);
    kvgpt_close(m);
}
END_TEST

START_TEST(test_gpt2_tiny_hf_gelu_tanh)
{
    if (!use_set(_i)) return;
    ref_set set;
    if (!load_ref("reference/gpt2_tiny_hf_logits.json", "gelu_tanh", &set)) return;
    ck_assert_int_eq(set.n, 2);
    kvgpt_model *m;
    open_model("gpt2_tiny_hf", KVGPT_GELU_CONFIG, 0, 1, &m);
    const kvgpt_config *c = kvgpt_model_config(m);
    ck_assert_msg(c->hf_layout == 1 && c->bias == 1 && c->gelu == KVGPT_GELU_TANH && c->block_size == 128,
                  "gpt2_tiny_hf config read as hf %d bias %d gelu %d T %d", c->hf_layout, c->bias, (int)c->gelu,
                  c->block_size);
    check_entries(m, &set, "reference/gpt2_tiny_hf_logits_gelu_tanh.f32", "gpt2_tiny_hf/tanh");
    kvgpt_close(m);
}
END_TEST

START_TEST(test_gpt2_tiny_hf_gelu_erf_override)
{
    if (!use_set(_i)) return;
    ref_set set, tanh_set;
    if (!load_ref("reference/gpt2_tiny_hf_logits.json", "gelu_erf", &set)) return;
    load_ref("reference/gpt2_tiny_hf_logits.json", "gelu_tanh", &tanh_set);
    kvgpt_model *m;
    open_model("gpt2_tiny_hf", KVGPT_GELU_ERF, 0, 1, &m);
    ck_assert_int_eq(kvgpt_model_config(m)->gelu, KVGPT_GELU_ERF);
    check_entries(m, &set, "reference/gpt2_tiny_hf_logits_gelu_erf.f32", "gpt2_tiny_hf/erf");

    /* The two references must differ by far more than the tolerance, or this
     * test could not tell the GELUs apart. */
    const ref_entry *e = &set.e[set.n - 1];
    int V = set.vocab_size;
    float *erf_l = ref_logits(tf_path("reference/gpt2_tiny_hf_logits_gelu_erf.f32"), e, V);
    float *tanh_l = ref_logits(tf_path("reference/gpt2_tiny_hf_logits_gelu_tanh.f32"), &tanh_set.e[set.n - 1], V);
    ck_assert(erf_l && tanh_l);
    ref_diff d;
    ref_compare(erf_l, tanh_l, e, V, &d);
    ck_assert_msg(d.max_abs > 10 * TOL, "erf and tanh references differ by only %g", d.max_abs);
    free(erf_l);
    free(tanh_l);
    kvgpt_close(m);
}
END_TEST

/* Logits of one entry with a given thread count. */
static float *run_threads(const char *rel_dir, const ref_entry *e, int threads, int logits_all, int *vocab)
{
    kvgpt_model *m;
    open_model(rel_dir, KVGPT_GELU_CONFIG, threads, logits_all, &m);
    int V = kvgpt_model_config(m)->vocab_size;
    size_t rows = logits_all ? (size_t)e->n : 1;
    float *l = malloc(rows * (size_t)V * sizeof(float));
    ck_assert_ptr_nonnull(l);
    kvgpt_error err = {0};
    kvgpt_status s = kvgpt_forward(m, e->ids, e->n, l, &err);
    ck_assert_msg(s == KVGPT_OK, "%s threads=%d: %s", rel_dir, threads, err.msg);
    kvgpt_close(m);
    *vocab = V;
    return l;
}

START_TEST(test_thread_count_independence)
{
    if (!use_set(_i)) return;
    ref_set sc, hf;
    if (!load_ref("reference/shakespeare_char_logits.json", NULL, &sc)) return;
    load_ref("reference/gpt2_tiny_hf_logits.json", "gelu_tanh", &hf);
    struct { const char *dir; const ref_entry *e; } cases[] = {
        {"shakespeare_char", &sc.e[sc.n - 1]},
        {"gpt2_tiny_hf", &hf.e[hf.n - 1]},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int V;
        float *a = run_threads(cases[i].dir, cases[i].e, 1, 1, &V);
        float *b = run_threads(cases[i].dir, cases[i].e, 2, 1, &V);
        size_t count = (size_t)cases[i].e->n * (size_t)V;
        size_t first = count;
        for (size_t k = 0; k < count && first == count; k++)
            if (memcmp(&a[k], &b[k], sizeof(float)) != 0) first = k;
        ck_assert_msg(first == count, "%s, %s kernels: threads=1 and threads=2 differ at logit [%zu,%zu]: %.9g vs %.9g",
                      cases[i].dir, g_kernels, first / (size_t)V, first % (size_t)V, first < count ? (double)a[first] : 0.0,
                      first < count ? (double)b[first] : 0.0);
        free(a);
        free(b);
    }
}
END_TEST

START_TEST(test_last_position_only)
{
    g_kernels = NULL;   /* the default choice */
    /* Without logits_all only the last position's logits come back: the same
     * numbers as the last row of the full run. */
    ref_set sc, hf;
    if (!load_ref("reference/shakespeare_char_logits.json", NULL, &sc)) return;
    load_ref("reference/gpt2_tiny_hf_logits.json", "gelu_tanh", &hf);
    struct { const char *dir; const ref_entry *e; } cases[] = {
        {"shakespeare_char", &sc.e[sc.n - 1]},
        {"gpt2_tiny_hf", &hf.e[hf.n - 1]},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int V;
        const ref_entry *e = cases[i].e;
        float *all = run_threads(cases[i].dir, e, 0, 1, &V);
        float *last = run_threads(cases[i].dir, e, 0, 0, &V);
        const float *row = all + (size_t)(e->n - 1) * (size_t)V;
        double worst = 0;
        for (int v = 0; v < V; v++) worst = fmax(worst, fabs((double)row[v] - (double)last[v]));
        ck_assert_msg(worst <= 1e-5, "%s: last-position logits differ from the full run's last row by %g",
                      cases[i].dir, worst);
        free(all);
        free(last);
    }
}
END_TEST

START_TEST(test_forward_bad_arguments)
{
    g_kernels = NULL;   /* the default choice */
    if (!tf_need_fixtures(__func__)) return;
    kvgpt_model *m;
    open_model("shakespeare_char", KVGPT_GELU_CONFIG, 0, 1, &m);
    int32_t ids[80];
    for (int i = 0; i < 80; i++) ids[i] = i % 65;
    float *l = malloc(80 * 65 * sizeof(float));
    ck_assert_ptr_nonnull(l);
    for (int i = 0; i < 80 * 65; i++) l[i] = 12345.0f;
    kvgpt_error err = {0};
    ck_assert_int_eq(kvgpt_forward(m, ids, 0, l, &err), KVGPT_ERR_PROMPT);
    ck_assert_int_eq(kvgpt_forward(m, ids, 65, l, &err), KVGPT_ERR_PROMPT);   /* block_size is 64 */
    ck_assert_msg(strstr(err.msg, "64") != NULL, "message does not name the context: %s", err.msg);
    ids[3] = 65;
    ck_assert_int_eq(kvgpt_forward(m, ids, 5, l, &err), KVGPT_ERR_TOKEN);
    ck_assert_msg(strstr(err.msg, "65") && strstr(err.msg, "position 3"), "message: %s", err.msg);
    ids[3] = -1;
    ck_assert_int_eq(kvgpt_forward(m, ids, 5, l, &err), KVGPT_ERR_TOKEN);
    ck_assert_int_eq(kvgpt_forward(m, NULL, 5, l, &err), KVGPT_ERR_ARG);
    ck_assert_int_eq(kvgpt_forward(m, ids, 5, NULL, &err), KVGPT_ERR_ARG);
    for (int i = 0; i < 80 * 65; i++) ck_assert_msg(l[i] == 12345.0f, "a refused forward wrote logit %d", i);
    /* The model still works after the refusals, with the full context. */
    ids[3] = 3;
    ck_assert_int_eq(kvgpt_forward(m, ids, 64, l, &err), KVGPT_OK);
    for (int i = 0; i < 64 * 65; i++) ck_assert_msg(isfinite(l[i]), "logit %d is not finite", i);
    free(l);
    kvgpt_close(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("forward");
    TCase *tc = tcase_create("forward");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_shakespeare_char_logits, 0, N_SETS);
    tcase_add_test(tc, test_shakespeare_char_encode);
    tcase_add_loop_test(tc, test_gpt2_tiny_hf_gelu_tanh, 0, N_SETS);
    tcase_add_loop_test(tc, test_gpt2_tiny_hf_gelu_erf_override, 0, N_SETS);
    tcase_add_loop_test(tc, test_thread_count_independence, 0, N_SETS);
    tcase_add_test(tc, test_last_position_only);
    tcase_add_test(tc, test_forward_bad_arguments);
    suite_add_tcase(s, tc);
    return tf_run_suite(s);
}
