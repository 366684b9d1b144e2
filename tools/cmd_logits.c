/* tools/cmd_logits.c — `kvgpt logits`: the full forward over ids (or text),
 * logits of every position written as raw float32 [T, vocab]; the five most
 * likely next tokens printed; with --compare, checked against the logits of
 * another run (another build: the CPU's against the GPU's). Memory follows
 * what is asked: the model holds LOGITS_ROWS logit rows per forward (a longer
 * input takes several), and the T x vocab result is the tool's own. */
#include "tools/cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOGITS_MAX_IDS 131072
#define LOGITS_ROWS 64

static int print_token(const kvgpt_model *m, int32_t id)
{
    const char *b;
    size_t n;
    if (kvgpt_token_bytes(m, id, &b, &n) != KVGPT_OK) return printf("%d", id);
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    return putchar('"');
}

/* Reads T x V float32 logits of another run; compares row by row: the largest
 * difference relative to that row's largest |logit| of the file, and whether the
 * argmaxes agree. 0 within tol, 1 beyond it or on a bad file. */
static int compare_logits(const char *path, const float *ours, int T, size_t V, float tol)
{
    const size_t count = (size_t)T * V;
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error("logits", "--compare %s: %s", path, strerror(errno));
    float *ref = malloc(count * sizeof(float));
    size_t got = ref ? fread(ref, sizeof(float), count, f) : 0;
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (!ref || got != count || extra) {
        free(ref);
        return cli_error("logits", "--compare %s: not %d x %zu float32 logits (%s)", path, T, V,
                         !ref ? "out of memory" : got != count ? "too short" : "too long");
    }
    double worst = 0.0;
    int worst_row = 0, agree = 0;
    for (int t = 0; t < T; t++) {
        const float *a = ours + (size_t)t * V, *b = ref + (size_t)t * V;
        double scale = 0.0, diff = 0.0;
        size_t ia = 0, ib = 0;
        for (size_t i = 0; i < V; i++) {
            double d = fabs((double)a[i] - (double)b[i]);
            if (!(d == d)) d = INFINITY;   /* NaN on either side */
            if (d > diff) diff = d;
            if (fabs((double)b[i]) > scale) scale = fabs((double)b[i]);
            if (a[i] > a[ia]) ia = i;
            if (b[i] > b[ib]) ib = i;
        }
        double rel = diff / (scale > 0.0 ? scale : 1.0);
        if (rel > worst || t == 0) worst = rel, worst_row = t;
        agree += ia == ib;
    }
    free(ref);
    int ok = worst <= (double)tol;
    printf("compare %s: largest difference %.3g of the row's largest |logit| (position %d); argmax equal at %d of "
           "%d positions; tolerance %.3g: %s\n",
           path, worst, worst_row, agree, T, (double)tol, ok ? "ok" : "EXCEEDED");
    return ok ? 0 : 1;
}

int cmd_logits(int argc, char **argv)
{
    const char *model = NULL, *ids_s = NULL, *text = NULL, *out = NULL, *gelu = NULL, *dtype = NULL, *against = NULL;
    int help = 0, threads = 0;
    float tol = 1e-3f;
    const cli_opt opts[] = {
        {"model", OPT_STR, &model, "model folder"},
        {"ids", OPT_STR, &ids_s, "token ids, comma-separated"},
        {"text", OPT_STR, &text, "text to encode with the model's tokenizer (instead of --ids)"},
        {"out", OPT_STR, &out, "write logits of every position here: raw float32 LE [T, vocab]"},
        {"gelu", OPT_STR, &gelu, "override the config's activation: erf | tanh"},
        {"threads", OPT_INT, &threads, "CPU threads (default: all)"},
        {"dtype", OPT_STR, &dtype, "weights in memory: f32 | f16 | bf16 (default f32)"},
        {"compare", OPT_STR, &against, "check against this file of another run's logits (as --out writes them); "
                                      "exit 1 beyond --tol"},
        {"tol", OPT_FLOAT, &tol, "--compare: largest difference allowed, relative to each position's largest "
                                 "|logit| (default 1e-3)"},
        {"help", OPT_FLAG, &help, "this text"},
    };
    int n = (int)(sizeof opts / sizeof opts[0]);
    if (cli_parse("logits", argc, argv, opts, n)) return 2;
    if (help) {
        cli_usage("logits", "Runs the full forward and prints the 5 most likely next tokens.", opts, n);
        return 0;
    }
    if (cli_need_model("logits", model)) return 1;
    if (!ids_s == !text) return cli_error("logits", "give exactly one of --ids or --text");
    int dt = dtype ? cli_dtype(dtype) : KVGPT_DTYPE_F32;
    if (dt < 0) return cli_error("logits", "--dtype must be f32, f16 or bf16, not \"%s\"", dtype);
    if (!(tol >= 0.0f)) return cli_error("logits", "--tol must be 0 or more, not %g", (double)tol);
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = model;
    o.logit_rows = LOGITS_ROWS;
    o.threads = threads;
    o.weight_dtype = (kvgpt_dtype)dt;
    if (gelu && strcmp(gelu, "erf") == 0) o.gelu = KVGPT_GELU_ERF;
    else if (gelu && strcmp(gelu, "tanh") == 0) o.gelu = KVGPT_GELU_TANH;
    else if (gelu) return cli_error("logits", "--gelu must be erf or tanh, not \"%s\"", gelu);

    static int32_t ids[LOGITS_MAX_IDS];
    int T = 0;
    if (ids_s && (T = cli_ids("logits", ids_s, ids, LOGITS_MAX_IDS)) < 0) return 1;
    kvgpt_model *m;
    kvgpt_error err = {0};
    kvgpt_status s = kvgpt_open(&o, NULL, 0, &m, &err);
    if (s) return cli_status("logits", s, &err);
    int rc = 0;
    float *logits = NULL;
    if (text && !kvgpt_has_tokenizer(m)) {
        rc = cli_no_tokenizer("logits", model, "give token ids with --ids");
        goto done;
    }
    if (text && (s = kvgpt_encode(m, text, strlen(text), ids, LOGITS_MAX_IDS, &T, &err))) {
        rc = cli_status("logits", s, &err);
        goto done;
    }
    const kvgpt_config *c = kvgpt_model_config(m);
    size_t V = (size_t)c->vocab_size;
    logits = malloc((size_t)T * V * sizeof(float));
    if (!logits) {
        rc = cli_error("logits", "out of memory for %d x %zu logits", T, V);
        goto done;
    }
    /* Every position's logits: one batch into slot 0, each token flagged. */
    int32_t *seq = calloc((size_t)T, sizeof *seq);
    int8_t *flag = malloc((size_t)T);
    if (!seq || !flag) {
        free(seq);
        free(flag);
        rc = cli_error("logits", "out of memory for %d tokens", T);
        goto done;
    }
    memset(flag, 1, (size_t)T);
    kvgpt_batch b = {T, ids, seq, flag};
    s = kvgpt_decode(m, &b, logits, &err);
    free(seq);
    free(flag);
    if (s) {
        rc = cli_status("logits", s, &err);
        goto done;
    }
    if (out) {
        FILE *f = fopen(out, "wb");
        if (!f || fwrite(logits, sizeof(float), (size_t)T * V, f) != (size_t)T * V || fclose(f) != 0) {
            rc = cli_error("logits", "%s: cannot write", out);
            goto done;
        }
    }
    if (against) rc = compare_logits(against, logits, T, V, tol);
    /* Top 5 of the last position. */
    const float *last = logits + (size_t)(T - 1) * V;
    int top[5] = {-1, -1, -1, -1, -1};
    for (int k = 0; k < 5 && k < (int)V; k++) {
        int best = -1;
        for (size_t i = 0; i < V; i++) {
            int taken = 0;
            for (int j = 0; j < k; j++) taken |= top[j] == (int)i;
            if (!taken && (best < 0 || last[i] > last[best])) best = (int)i;
        }
        top[k] = best;
    }
    printf("%d tokens; next-token top 5 at position %d:\n", T, T - 1);
    for (int k = 0; k < 5 && top[k] >= 0; k++) {
        printf("  %6d  %10.5f  ", top[k], (double)last[top[k]]);
        print_token(m, top[k]);
        putchar('\n');
    }
done:
    free(logits);
    kvgpt_close(m);
    return rc;
}
