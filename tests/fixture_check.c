/* tests/fixture_check.c — the fixture checks, as one program that needs
 * nothing but the library: for builds where Check is not at hand (a cross
 * build, run under qemu-aarch64) and for CPUs this machine is not (qemu-x86_64
 * -cpu Nehalem or Haswell). What the Check suites test against the fixtures,
 * in brief: the logits of both fixture models against nanoGPT's at every
 * position, greedy generation past block_size against nanoGPT's tokens, and
 * the GPT-2 tokenizer vectors against tiktoken's ids.
 *
 *   fixture_check [--expect-kernels NAME] [--past N] [FIXTURES]
 * FIXTURES: default $KVGPT_FIXTURES, else ../shared/fixtures. --past N: the
 * greedy runs stop N steps after the context first overflows instead of at
 * 300 tokens (an emulated CPU is 10 to 100 times slower: every step past the
 * window recomputes the whole window). Prints one line per check and exits 0
 * when all passed, 1 otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvgpt.h"
#include "tests/support/fixtures.h"
#include "tests/support/loader_ref.h"

static int g_failed, g_passed;

static void report(int ok, const char *what, const char *detail)
{
    printf("%s %s: %s\n", ok ? "ok  " : "FAIL", what, detail);
    fflush(stdout);
    if (ok) g_passed++;
    else g_failed++;
}

static kvgpt_model *open_model(const char *rel, kvgpt_gelu gelu, int logits_all)
{
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = tf_path(rel);
    o.gelu = gelu;
    o.logits_all = logits_all;
    kvgpt_model *m = NULL;
    kvgpt_error err = {0, ""};
    kvgpt_status s = kvgpt_open(&o, NULL, 0, &m, &err);
    if (s) report(0, rel, err.msg);
    return m;
}

/* Every position's logits of every entry within 1e-4 of nanoGPT's, the same argmax. */
static void check_logits(const char *rel, kvgpt_gelu gelu, const char *json, const char *variant, const char *f32)
{
    char what[128], why[512];
    snprintf(what, sizeof what, "logits %s%s%s", rel, variant ? " " : "", variant ? variant : "");
    ref_set set;
    if (ref_load(tf_path(json), variant, &set, why, sizeof why)) {
        report(0, what, why);
        return;
    }
    kvgpt_model *m = open_model(rel, gelu, 1);
    if (!m) return;
    int V = kvgpt_model_config(m)->vocab_size;
    double worst = 0.0;
    int bad = V != set.vocab_size;
    for (int i = 0; i < set.n && !bad; i++) {
        const ref_entry *e = &set.e[i];
        float *want = ref_logits(tf_path(f32), e, V);
        float *got = malloc((size_t)e->n * (size_t)V * sizeof(float));
        kvgpt_error err = {0, ""};
        if (!want || !got || kvgpt_forward(m, e->ids, e->n, got, &err) != KVGPT_OK) {
            snprintf(why, sizeof why, "entry %s: %s", e->name, want && got ? err.msg : "cannot read the reference");
            bad = 1;
        } else {
            ref_diff d;
            ref_compare(got, want, e, V, &d);
            worst = d.max_abs > worst ? d.max_abs : worst;
            if (d.max_abs > 1e-4 || d.argmax_mismatch) {
                snprintf(why, sizeof why, "entry %s: max |diff| %.3g at [%d,%d], argmax differs at %d positions",
                         e->name, d.max_abs, d.worst_row, d.worst_col, d.argmax_mismatch);
                bad = 1;
            }
        }
        free(want);
        free(got);
    }
    if (!bad) snprintf(why, sizeof why, "%d entries, max |diff| %.3g", set.n, worst);
    report(!bad, what, why);
    kvgpt_close(m);
}

/* ---- greedy past block_size ---- */

typedef struct {
    char name[32];
    int32_t prompt[128], want[300];
    int n_prompt, n_want;
    int first_cropped;   /* the step at which the context first overflows */
} greedy_entry;

/* The entries of shakespeare_char_greedy.json (name, prompt_ids,
 * greedy_300_ids, first_cropped_step). */
static int load_greedy(const char *path, greedy_entry *out, int cap, int *n)
{
    size_t len;
    char *buf = tf_read_file(path, &len);
    if (!buf) return 0;
    json_reader r;
    json_span key, k2;
    json_init(&r, buf, len);
    int ok = json_object_begin(&r);
    *n = 0;
    while (ok && json_object_next(&r, &key)) {
        if (!json_span_eq(key, "entries")) {
            ok = json_skip(&r);
            continue;
        }
        ok = json_array_begin(&r);
        while (ok && json_array_next(&r)) {
            greedy_entry *e = &out[*n];
            memset(e, 0, sizeof *e);
            ok = *n < cap && json_object_begin(&r);
            while (ok && json_object_next(&r, &k2)) {
                json_span s;
                if (json_span_eq(k2, "name")) {
                    ok = json_string(&r, &s);
                    snprintf(e->name, sizeof e->name, "%.*s", (int)(s.len < 31 ? s.len : 31), s.p);
                } else if (json_span_eq(k2, "prompt_ids")) {
                    ok = ref_int_list(&r, e->prompt, 128, &e->n_prompt);
                } else if (json_span_eq(k2, "greedy_300_ids")) {
                    ok = ref_int_list(&r, e->want, 300, &e->n_want);
                } else if (json_span_eq(k2, "first_cropped_step")) {
                    int64_t v;
                    ok = json_int64(&r, 0, 300, &v);
                    e->first_cropped = (int)v;
                } else {
                    ok = json_skip(&r);
                }
            }
            if (ok) (*n)++;
        }
    }
    ok = ok && json_finish(&r);
    free(buf);
    return ok;
}

static int collect(void *user, int seq, int32_t tok)
{
    greedy_entry *got = user;
    if (seq == 0 && got->n_want < 300) got->want[got->n_want++] = tok;
    return 0;
}

/* nanoGPT's window semantics (EXACT), with the cache: every token as
 * nanoGPT's, to 300 or to past steps after the first overflow (past >= 0). */
static void check_greedy(int past)
{
    static greedy_entry entries[4], got;
    int n = 0;
    if (!load_greedy(tf_path("reference/shakespeare_char_greedy.json"), entries, 4, &n) || n == 0) {
        report(0, "greedy shakespeare_char", "cannot read reference/shakespeare_char_greedy.json");
        return;
    }
    kvgpt_model *m = open_model("shakespeare_char", KVGPT_GELU_CONFIG, 0);
    if (!m) return;
    for (int i = 0; i < n; i++) {
        const greedy_entry *e = &entries[i];
        const int n_new = past >= 0 && e->first_cropped + past < e->n_want ? e->first_cropped + past : e->n_want;
        kvgpt_gen_options g;
        kvgpt_gen_options_default(&g);
        g.max_new_tokens = n_new;
        g.temperature = 0.0f;
        g.window = KVGPT_WINDOW_EXACT;
        g.stop_at_eot = 0;
        g.on_token = collect;
        g.user = &got;
        got.n_want = 0;
        kvgpt_gen_result res;
        kvgpt_error err = {0, ""};
        char what[96], why[600];
        snprintf(what, sizeof what, "greedy shakespeare_char %.31s (%d tokens, context 64)", e->name, n_new);
        if (kvgpt_generate(m, e->prompt, e->n_prompt, &g, &res, &err) != KVGPT_OK) {
            report(0, what, err.msg);
            continue;
        }
        int first = -1;
        for (int k = 0; k < n_new && first < 0; k++)
            if (k >= got.n_want || got.want[k] != e->want[k]) first = k;
        if (first >= 0)
            snprintf(why, sizeof why, "token %d is %d, nanoGPT's %d", first, first < got.n_want ? got.want[first] : -1,
                     e->want[first]);
        else
            snprintf(why, sizeof why, "all %d tokens as nanoGPT's (%d window recomputations)", n_new,
                     res.recomputes);
        report(first < 0 && res.recomputes > 0, what, why);
    }
    kvgpt_close(m);
}

/* ---- the GPT-2 tokenizer vectors ---- */

static int hexval(int c) { return c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0'; }

static void check_vectors(void)
{
    const char *what = "tokenizer gpt2_vectors.hex.tsv";
    FILE *f = fopen(tf_path("tokenizer/gpt2_vectors.hex.tsv"), "r");
    kvgpt_model *m = f ? open_model("gpt2_tiny_hf", KVGPT_GELU_CONFIG, 0) : NULL;
    if (!f || !m) {
        if (!f) report(0, what, "cannot read it");
        if (f) fclose(f);
        return;
    }
    static char line[1 << 17], text[1 << 16];
    static int32_t want[1 << 14], got[1 << 14];
    int lineno = 0, checked = 0, bad = 0;
    char why[600] = "";
    while (!bad && fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '#') continue;
        char *tab = strchr(line, '\t'), *p;
        size_t tl = 0;
        int nw = 0, ng = 0;
        if (!tab) continue;
        for (const char *h = line; h + 1 < tab && tl < sizeof text; h += 2)
            text[tl++] = (char)(hexval(h[0]) * 16 + hexval(h[1]));
        for (p = tab + 1; nw < (1 << 14);) {
            char *e;
            long v = strtol(p, &e, 10);
            if (e == p) break;
            want[nw++] = (int32_t)v;
            p = e;
        }
        kvgpt_error err = {0, ""};
        if (kvgpt_encode(m, text, tl, got, 1 << 14, &ng, &err) != KVGPT_OK) {
            snprintf(why, sizeof why, "line %d: %s", lineno, err.msg);
            bad = 1;
        } else if (ng != nw || memcmp(got, want, (size_t)ng * sizeof *got) != 0) {
            snprintf(why, sizeof why, "line %d: %d ids, tiktoken's %d, or other ids", lineno, ng, nw);
            bad = 1;
        }
        checked++;
    }
    fclose(f);
    if (!bad) snprintf(why, sizeof why, "%d strings encode as tiktoken's ids", checked);
    report(!bad && checked >= 280, what, why);
    kvgpt_close(m);
}

int main(int argc, char **argv)
{
    const char *expect = NULL;
    int a = 1, past = -1;
    for (; a + 1 < argc && strncmp(argv[a], "--", 2) == 0; a += 2) {
        if (strcmp(argv[a], "--expect-kernels") == 0) {
            expect = argv[a + 1];
        } else if (strcmp(argv[a], "--past") == 0) {
            past = atoi(argv[a + 1]);
        } else {
            fprintf(stderr, "fixture_check: unknown option %s\n", argv[a]);
            return 2;
        }
    }
    if (a < argc) setenv("KVGPT_FIXTURES", argv[a], 1);
    if (!tf_dir()) {
        fprintf(stderr, "fixture_check: no fixtures (give their folder, or set KVGPT_FIXTURES)\n");
        return 2;
    }
    /* The kernels a model gets here: what the plan of any model says. */
    kvgpt_plan plan;
    kvgpt_error err = {0, ""};
    kvgpt_status s = tf_plan_gpt2(NULL, &plan, &err);
    char detail[96];
    snprintf(detail, sizeof detail, "%s, %d threads%s%s", s ? err.msg : plan.kernels, plan.threads,
             expect ? ", expected " : "", expect ? expect : "");
    report(!s && (!expect || strcmp(plan.kernels, expect) == 0), "kernels", detail);

    check_logits("shakespeare_char", KVGPT_GELU_CONFIG, "reference/shakespeare_char_logits.json", NULL,
                 "reference/shakespeare_char_logits.f32");
    check_logits("gpt2_tiny_hf", KVGPT_GELU_CONFIG, "reference/gpt2_tiny_hf_logits.json", "gelu_tanh",
                 "reference/gpt2_tiny_hf_logits_gelu_tanh.f32");
    check_logits("gpt2_tiny_hf", KVGPT_GELU_ERF, "reference/gpt2_tiny_hf_logits.json", "gelu_erf",
                 "reference/gpt2_tiny_hf_logits_gelu_erf.f32");
    check_greedy(past);
    check_vectors();
    printf("fixture_check: %d passed, %d failed, 0 skipped\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
