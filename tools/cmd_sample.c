/* tools/cmd_sample.c — `kvgpt sample`: nanoGPT's sample.py in C. stdout has
 * the samples only (prompt included, each followed by a line of dashes);
 * timings go to stderr. Tokens are printed as they are made. */
#include "tools/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define SAMPLE_MAX_PROMPT (1 << 20)

typedef struct {
    const kvgpt_model *m;
    int stream;              /* print tokens as they come (one sequence at a time) */
    int n_seq;
    int32_t **toks;          /* per sequence, for batched printing and --compare */
    int *n_toks, cap;
} sink;

static void put_token(const kvgpt_model *m, int32_t id)
{
    const char *b;
    size_t n;
    if (kvgpt_has_tokenizer(m) && kvgpt_token_bytes(m, id, &b, &n) == KVGPT_OK) fwrite(b, 1, n, stdout);
    else printf(" %d", id);
}

static int on_token(void *user, int seq, int32_t tok)
{
    sink *s = user;
    if (s->n_toks[seq] < s->cap) s->toks[seq][s->n_toks[seq]++] = tok;
    if (s->stream) {
        put_token(s->m, tok);
        fflush(stdout);
    }
    return ferror(stdout) != 0;   /* nowhere to write (a full disk, a closed pipe): stop */
}

static void put_prompt(const kvgpt_model *m, const char *text, size_t len, const int32_t *ids, int n)
{
    if (text) {
        fwrite(text, 1, len, stdout);
        return;
    }
    for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    (void)m;
}

/* The prompt file (a pipe will do, a folder will not); NULL with *why. */
static char *read_file(const char *path, size_t *len, const char **why)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *why = strerror(errno);
        return NULL;
    }
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        *why = "a directory, not a file";
        return NULL;
    }
    char *buf = malloc(SAMPLE_MAX_PROMPT + 1);
    *len = buf ? fread(buf, 1, SAMPLE_MAX_PROMPT + 1, f) : 0;
    int e = buf && ferror(f) ? errno : 0;
    fclose(f);
    *why = !buf ? "out of memory" : e ? strerror(e) : *len > SAMPLE_MAX_PROMPT ? "prompt file larger than 1 MiB" : NULL;
    if (*why) {
        free(buf);
        return NULL;
    }
    return buf;
}

int cmd_sample(int argc, char **argv)
{
    const char *model = NULL, *start = "\n", *start_ids = NULL, *kv = "on", *window = "shift", *adapt = "on";
    const char *dtype = "f32", *kv_dtype = "f32";
    int num_samples = 10, max_new = 500, top_k = 200, keep = 0, threads = 0, batch = 1, help = 0;
    int compare = 0, ignore_eot = 0;
    float temperature = 0.8f, top_p = 1.0f;
    uint64_t seed = 1337;
    const cli_opt opts[] = {
        {"model", OPT_STR, &model, "model folder"},
        {"start", OPT_STR, &start, "prompt text, or FILE:path (default \"\\n\")"},
        {"start-ids", OPT_STR, &start_ids, "prompt as token ids, comma-separated (models without a tokenizer)"},
        {"num_samples", OPT_INT, &num_samples, "samples to draw (default 10)"},
        {"max_new_tokens", OPT_INT, &max_new, "new tokens per sample (default 500)"},
        {"temperature", OPT_FLOAT, &temperature, "0 = greedy (default 0.8)"},
        {"top_k", OPT_INT, &top_k, "keep the k most likely; 0 = off (default 200)"},
        {"top_p", OPT_FLOAT, &top_p, "nucleus sampling, (0, 1] (default 1 = off)"},
        {"seed", OPT_U64, &seed, "sample i uses seed + i (default 1337)"},
        {"kv-cache", OPT_STR, &kv, "on | off (off recomputes the window every step, as nanoGPT)"},
        {"window", OPT_STR, &window, "past the context: shift | exact | stop (default shift)"},
        {"keep", OPT_INT, &keep, "shift: tokens kept when the context is full (default half)"},
        {"batch", OPT_INT, &batch, "samples decoded together (default 1)"},
        {"threads", OPT_INT, &threads, "CPU threads (default: all)"},
        {"adapt-threads", OPT_STR, &adapt, "on | off: decode on one thread while the machine is too busy for all (default on)"},
        {"dtype", OPT_STR, &dtype, "weights in memory: f32 | f16 | bf16"},
        {"kv-dtype", OPT_STR, &kv_dtype, "KV cache: f32 | f16 | bf16"},
        {"ignore-eot", OPT_FLAG, &ignore_eot, "do not stop at the end-of-text token"},
        {"compare", OPT_FLAG, &compare, "run with and without the cache; report both times and the speed-up"},
        {"help", OPT_FLAG, &help, "this text"},
    };
    int n_opts = (int)(sizeof opts / sizeof opts[0]);
    if (cli_parse("sample", argc, argv, opts, n_opts)) return 2;
    if (help) {
        cli_usage("sample", "Generates text like nanoGPT's sample.py, with a KV cache.", opts, n_opts);
        return 0;
    }
    if (cli_need_model("sample", model)) return 1;
    if (num_samples < 1) return cli_error("sample", "--num_samples must be at least 1, not %d", num_samples);
    if (batch < 1 || batch > 64) return cli_error("sample", "--batch must be 1..64, not %d", batch);
    const int cache_on = cli_on_off(kv), adapt_on = cli_on_off(adapt);
    if (cache_on < 0) return cli_error("sample", "--kv-cache must be on or off, not \"%s\"", kv);
    if (adapt_on < 0) return cli_error("sample", "--adapt-threads must be on or off, not \"%s\"", adapt);
    kvgpt_gen_options g;
    kvgpt_gen_options_default(&g);
    if (strcmp(window, "shift") == 0) g.window = KVGPT_WINDOW_SHIFT;
    else if (strcmp(window, "exact") == 0) g.window = KVGPT_WINDOW_EXACT;
    else if (strcmp(window, "stop") == 0) g.window = KVGPT_WINDOW_STOP;
    else return cli_error("sample", "--window must be shift, exact or stop, not \"%s\"", window);
    int wd = cli_dtype(dtype), kd = cli_dtype(kv_dtype);
    if (wd < 0 || kd < 0) return cli_error("sample", "--dtype and --kv-dtype must be f32, f16 or bf16");

    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = model;
    o.batch = batch < num_samples ? batch : num_samples;
    o.threads = threads;
    o.adapt_threads = adapt_on;
    o.weight_dtype = (kvgpt_dtype)wd;
    o.kv_dtype = (kvgpt_dtype)kd;
    kvgpt_model *m;
    kvgpt_error err = {0};
    kvgpt_status s = kvgpt_open(&o, NULL, 0, &m, &err);
    if (s) return cli_status("sample", s, &err);

    int rc = 0, n_prompt = 0;
    char *file_text = NULL;
    const char *text = NULL;
    size_t text_len = 0;
    int32_t *prompt = malloc(sizeof(int32_t) * SAMPLE_MAX_PROMPT);
    sink sk = {m, 0, o.batch, NULL, NULL, max_new > 0 ? max_new : 1};
    sk.toks = calloc((size_t)o.batch * 2, sizeof(int32_t *));
    sk.n_toks = calloc((size_t)o.batch * 2, sizeof(int));
    for (int b = 0; sk.toks && b < 2 * o.batch; b++) sk.toks[b] = malloc(sizeof(int32_t) * (size_t)sk.cap);
    if (!prompt || !sk.toks || !sk.n_toks || !sk.toks[2 * o.batch - 1]) {
        rc = cli_error("sample", "out of memory");
        goto done;
    }
    if (start_ids) {
        if ((n_prompt = cli_ids("sample", start_ids, prompt, SAMPLE_MAX_PROMPT)) < 0) {
            rc = 1;
            goto done;
        }
    } else {
        if (!kvgpt_has_tokenizer(m)) {
            rc = cli_no_tokenizer("sample", model, "give the prompt as token ids with --start-ids");
            goto done;
        }
        if (strncmp(start, "FILE:", 5) == 0) {
            const char *why = NULL;
            file_text = read_file(start + 5, &text_len, &why);
            if (!file_text) {
                rc = cli_error("sample", "--start FILE:%s: %s", start + 5, why);
                goto done;
            }
            text = file_text;
        } else {
            text = start;
            text_len = strlen(start);
        }
        if ((s = kvgpt_encode(m, text, text_len, prompt, SAMPLE_MAX_PROMPT, &n_prompt, &err))) {
            rc = cli_status("sample", s, &err);
            goto done;
        }
    }
    g.max_new_tokens = max_new;
    g.temperature = temperature;
    g.top_k = top_k;
    g.top_p = top_p;
    g.keep = keep;
    g.stop_at_eot = !ignore_eot;
    g.on_token = on_token;
    g.user = &sk;

    g.n_seq = o.batch;
    if ((s = kvgpt_gen_validate(m, prompt, n_prompt, &g, &err))) {
        rc = cli_status("sample", s, &err);
        goto done;
    }
    double tot_tokens[2] = {0, 0}, tot_time[2] = {0, 0};
    int identical = 1;
    for (int pass = 0; pass < (compare ? 2 : 1); pass++) {
        g.use_cache = compare ? pass == 0 : cache_on;
        const char *label = g.use_cache ? "kv-cache on" : "kv-cache off";
        for (int first = 0; first < num_samples; first += o.batch) {
            int n = num_samples - first < o.batch ? num_samples - first : o.batch;
            g.n_seq = n;
            g.seed = seed + (uint64_t)first;
            sk.stream = n == 1;
            for (int b = 0; b < n; b++) sk.n_toks[b] = 0;
            if (sk.stream) put_prompt(m, text, text_len, prompt, n_prompt);
            kvgpt_gen_result res;
            s = kvgpt_generate(m, prompt, n_prompt, &g, &res, &err);
            if (s && s != KVGPT_ERR_CONTEXT_FULL) {
                rc = cli_status("sample", s, &err);
                goto done;
            }
            for (int b = 0; b < n; b++) {
                if (!sk.stream) {
                    put_prompt(m, text, text_len, prompt, n_prompt);
                    for (int i = 0; i < sk.n_toks[b]; i++) put_token(m, sk.toks[b][i]);
                }
                printf("\n---------------\n");
                if (compare && pass == 0 && b == 0 && first == 0) {
                    memcpy(sk.toks[o.batch], sk.toks[0], sizeof(int32_t) * (size_t)sk.n_toks[0]);
                    sk.n_toks[o.batch] = sk.n_toks[0];
                } else if (compare && b == 0 && first == 0) {
                    identical = sk.n_toks[o.batch] == sk.n_toks[0] &&
                                memcmp(sk.toks[o.batch], sk.toks[0], sizeof(int32_t) * (size_t)sk.n_toks[0]) == 0;
                }
            }
            errno = 0;
            if (fflush(stdout) != 0 || ferror(stdout)) {
                rc = cli_error("sample", "writing standard output failed: %s", strerror(errno ? errno : EIO));
                clearerr(stdout);   /* said once */
                goto done;
            }
            double t = res.prefill_s + res.decode_s;
            int made = 0;
            for (int b = 0; b < n; b++) made += sk.n_toks[b];
            tot_tokens[pass] += made;
            tot_time[pass] += t;
            char which[32];
            if (n > 1) snprintf(which, sizeof which, "samples %d-%d", first + 1, first + n);
            else snprintf(which, sizeof which, "sample %d", first + 1);
            char switched[64] = "";
            if (res.thread_switches)
                snprintf(switched, sizeof switched, " [busy machine: thread count changed %d times]", res.thread_switches);
            fprintf(stderr, "kvgpt sample: %s: %s: %d tokens in %.3f s = %.1f tok/s (prefill %d tokens %.1f ms)%s%s\n",
                    label, which, made, t, t > 0 ? made / t : 0.0, n_prompt, res.prefill_s * 1e3,
                    s == KVGPT_ERR_CONTEXT_FULL ? " [context full: window stop]" : "", switched);
        }
        fprintf(stderr, "kvgpt sample: %s: average %.1f tok/s over %d samples (%.0f tokens, %.3f s)\n", label,
                tot_time[pass] > 0 ? tot_tokens[pass] / tot_time[pass] : 0.0, num_samples, tot_tokens[pass],
                tot_time[pass]);
    }
    if (compare && tot_time[0] > 0 && tot_time[1] > 0)
        fprintf(stderr, "kvgpt sample: KV cache speed-up %.2fx (%.1f vs %.1f tok/s); first sample identical: %s\n",
                (tot_tokens[0] / tot_time[0]) / (tot_tokens[1] / tot_time[1]), tot_tokens[0] / tot_time[0],
                tot_tokens[1] / tot_time[1], identical ? "yes" : "NO");
done:
    for (int b = 0; sk.toks && b < 2 * o.batch; b++) free(sk.toks[b]);
    free(sk.toks);
    free(sk.n_toks);
    free(prompt);
    free(file_text);
    kvgpt_close(m);
    return rc;
}
