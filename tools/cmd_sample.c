/* tools/cmd_sample.c — `kvgpt sample`: nanoGPT's sample.py in C. stdout has
 * the samples only (prompt included, each followed by a line of dashes);
 * timings go to stderr. The samples are decoded together (the prompt
 * computed once, then copied to every slot), as many at once as the memory
 * allows up to 64 (--batch lowers it); sample i draws from seed + i, so the
 * text is the same however they are grouped. Text comes out in whole UTF-8
 * characters (kvgpt_token_text: U+FFFD for what cannot be UTF-8, as
 * nanoGPT's decode does). */
#include "tools/cli.h"
#include "tools/sample_out.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SAMPLE_MAX_PROMPT (1 << 20)
#define SAMPLE_MAX_BATCH 64

typedef struct {
    const char *model, *start, *start_ids, *kv, *window, *adapt, *dtype, *kv_dtype, *stop;
    int num_samples, max_new, top_k, keep, threads, batch, compare, ignore_eot, penalty_last_n;
    float temperature, top_p, repetition_penalty, presence_penalty, frequency_penalty;
    uint64_t seed;
    size_t arena_limit;
} sample_args;

/* Opens the model with as many slots as the arena allows (the limit, or
 * what the system gives), from `want` down to 1. */
static kvgpt_status open_batched(kvgpt_options *o, int want, kvgpt_model **m, kvgpt_error *err)
{
    kvgpt_status s = KVGPT_ERR_NOMEM;
    for (o->batch = want; o->batch >= 1; o->batch = o->batch > 1 ? (o->batch + 1) / 2 : 0) {
        kvgpt_plan plan;
        s = kvgpt_plan_model(o, &plan, err);
        if (s == KVGPT_ERR_NOMEM && o->batch > 1) continue;
        if (s || (s = kvgpt_open(o, NULL, 0, m, err)) != KVGPT_ERR_NOMEM || o->batch == 1) return s;
    }
    return s;
}

/* The prompt file (a pipe will do, a folder will not); NULL with *why. */
static char *read_prompt_file(const char *path, size_t *len, const char **why)
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

/* The prompt as ids, from --start-ids or the encoded --start text. */
static int prompt_ids(kvgpt_model *m, const sample_args *a, int32_t *ids, int *n, char **file_text, const char **text,
                      size_t *text_len)
{
    kvgpt_error err = {0};
    if (a->start_ids) return (*n = cli_ids("sample", a->start_ids, ids, SAMPLE_MAX_PROMPT)) < 0;
    if (!kvgpt_has_tokenizer(m)) return cli_no_tokenizer("sample", a->model, "give the prompt as token ids with --start-ids");
    if (strncmp(a->start, "FILE:", 5) == 0) {
        const char *why = NULL;
        *file_text = read_prompt_file(a->start + 5, text_len, &why);
        if (!*file_text) return cli_error("sample", "--start FILE:%s: %s", a->start + 5, why);
        *text = *file_text;
    } else {
        *text = a->start;
        *text_len = strlen(a->start);
    }
    kvgpt_status s = kvgpt_encode(m, *text, *text_len, ids, SAMPLE_MAX_PROMPT, n, &err);
    return s ? cli_status("sample", s, &err) : 0;
}

static int parse_args(int argc, char **argv, sample_args *a)
{
    memset(a, 0, sizeof *a);
    a->start = "\n";
    a->kv = "on";
    a->window = "shift";
    a->adapt = "on";
    a->dtype = a->kv_dtype = "f32";
    a->num_samples = 10;
    a->max_new = 500;
    a->top_k = 200;
    a->temperature = 0.8f;
    a->top_p = 1.0f;
    a->repetition_penalty = 1.0f;
    a->penalty_last_n = 64;
    a->seed = 1337;
    int help = 0;
    const cli_opt opts[] = {
        {"model", OPT_STR, &a->model, "model folder"},
        {"start", OPT_STR, &a->start, "prompt text, or FILE:path (default \"\\n\")"},
        {"start-ids", OPT_STR, &a->start_ids, "prompt as token ids, comma-separated (models without a tokenizer)"},
        {"num_samples", OPT_INT, &a->num_samples, "samples to draw (default 10)"},
        {"max_new_tokens", OPT_INT, &a->max_new, "new tokens per sample (default 500)"},
        {"temperature", OPT_FLOAT, &a->temperature, "0 = greedy (default 0.8)"},
        {"top_k", OPT_INT, &a->top_k, "keep the k most likely; 0 = off (default 200)"},
        {"top_p", OPT_FLOAT, &a->top_p, "nucleus sampling, (0, 1] (default 1 = off)"},
        {"repetition-penalty", OPT_FLOAT, &a->repetition_penalty, "HF's repetition penalty (default 1 = off)"},
        {"presence-penalty", OPT_FLOAT, &a->presence_penalty, "subtracted once per seen token (default 0)"},
        {"frequency-penalty", OPT_FLOAT, &a->frequency_penalty, "subtracted per occurrence (default 0)"},
        {"penalty-last-n", OPT_INT, &a->penalty_last_n, "tokens the penalties look at; -1 = all (default 64)"},
        {"stop", OPT_STR, &a->stop, "end a sample where this text appears (not printed)"},
        {"seed", OPT_U64, &a->seed, "sample i uses seed + i (default 1337)"},
        {"kv-cache", OPT_STR, &a->kv, "on | off (off recomputes the window every step, as nanoGPT)"},
        {"window", OPT_STR, &a->window, "past the context: shift | exact | stop (default shift)"},
        {"keep", OPT_INT, &a->keep, "shift: tokens kept when the context is full (default half)"},
        {"batch", OPT_INT, &a->batch, "at most this many samples decoded together (default: all, up to 64)"},
        {"arena-limit", OPT_SIZE, &a->arena_limit, "decode as many samples together as fit this many bytes"},
        {"threads", OPT_INT, &a->threads, "CPU threads (default: all)"},
        {"adapt-threads", OPT_STR, &a->adapt,
         "on | off: decode on one thread while the machine is too busy for all (default on)"},
        {"dtype", OPT_STR, &a->dtype, "weights in memory: f32 | f16 | bf16"},
        {"kv-dtype", OPT_STR, &a->kv_dtype, "KV cache: f32 | f16 | bf16"},
        {"ignore-eot", OPT_FLAG, &a->ignore_eot, "do not stop at the end-of-text token"},
        {"compare", OPT_FLAG, &a->compare, "run with and without the cache; report both times and the speed-up"},
        {"help", OPT_FLAG, &help, "this text"},
    };
    int n_opts = (int)(sizeof opts / sizeof opts[0]);
    if (cli_parse("sample", argc, argv, opts, n_opts)) return 2;
    if (help) {
        cli_usage("sample", "Generates text like nanoGPT's sample.py, with a KV cache.", opts, n_opts);
        return -1;
    }
    if (cli_need_model("sample", a->model)) return 1;
    if (a->num_samples < 1) return cli_error("sample", "--num_samples must be at least 1, not %d", a->num_samples);
    if (a->batch < 0 || a->batch > SAMPLE_MAX_BATCH)
        return cli_error("sample", "--batch must be 1..%d, not %d", SAMPLE_MAX_BATCH, a->batch);
    return 0;
}

int cmd_sample(int argc, char **argv)
{
    sample_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const int cache_on = cli_on_off(a.kv), adapt_on = cli_on_off(a.adapt);
    if (cache_on < 0) return cli_error("sample", "--kv-cache must be on or off, not \"%s\"", a.kv);
    if (adapt_on < 0) return cli_error("sample", "--adapt-threads must be on or off, not \"%s\"", a.adapt);
    kvgpt_gen_options g;
    kvgpt_gen_options_default(&g);
    if (strcmp(a.window, "shift") == 0) g.window = KVGPT_WINDOW_SHIFT;
    else if (strcmp(a.window, "exact") == 0) g.window = KVGPT_WINDOW_EXACT;
    else if (strcmp(a.window, "stop") == 0) g.window = KVGPT_WINDOW_STOP;
    else return cli_error("sample", "--window must be shift, exact or stop, not \"%s\"", a.window);
    int wd = cli_dtype(a.dtype), kd = cli_dtype(a.kv_dtype);
    if (wd < 0 || kd < 0) return cli_error("sample", "--dtype and --kv-dtype must be f32, f16 or bf16");

    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = a.model;
    o.threads = a.threads;
    o.adapt_threads = adapt_on;
    o.weight_dtype = (kvgpt_dtype)wd;
    o.kv_dtype = (kvgpt_dtype)kd;
    o.arena_limit = a.arena_limit;
    int want = a.num_samples < SAMPLE_MAX_BATCH ? a.num_samples : SAMPLE_MAX_BATCH;
    if (a.batch && a.batch < want) want = a.batch;
    kvgpt_model *m = NULL;
    kvgpt_error err = {0};
    kvgpt_status s = open_batched(&o, want, &m, &err);
    if (s) return cli_status("sample", s, &err);

    char *file_text = NULL;
    const char *text = NULL;
    size_t text_len = 0;
    int n_prompt = 0;
    int32_t *prompt = malloc(sizeof(int32_t) * SAMPLE_MAX_PROMPT);
    sample_out out;
    if (!prompt || so_init(&out, m, o.batch, a.max_new > 0 ? a.max_new : 1)) {
        rc = cli_error("sample", "out of memory");
        goto done;
    }
    if ((rc = prompt_ids(m, &a, prompt, &n_prompt, &file_text, &text, &text_len))) goto done;
    const char *stops[1] = {a.stop};
    g.max_new_tokens = a.max_new;
    g.temperature = a.temperature;
    g.top_k = a.top_k;
    g.top_p = a.top_p;
    g.keep = a.keep;
    g.stop_at_eot = !a.ignore_eot;
    g.repetition_penalty = a.repetition_penalty;
    g.presence_penalty = a.presence_penalty;
    g.frequency_penalty = a.frequency_penalty;
    g.penalty_last_n = a.penalty_last_n;
    g.stop = a.stop ? stops : NULL;
    g.n_stop = a.stop ? 1 : 0;
    so_hook(&out, &g);
    g.n_seq = o.batch;
    if ((s = kvgpt_gen_validate(m, prompt, n_prompt, &g, &err))) {
        rc = cli_status("sample", s, &err);
        goto done;
    }
    double tot_tokens[2] = {0, 0}, tot_time[2] = {0, 0};
    for (int pass = 0; pass < (a.compare ? 2 : 1); pass++) {
        g.use_cache = a.compare ? pass == 0 : cache_on;
        const char *label = g.use_cache ? "kv-cache on" : "kv-cache off";
        for (int first = 0; first < a.num_samples; first += o.batch) {
            int n = a.num_samples - first < o.batch ? a.num_samples - first : o.batch;
            g.n_seq = n;
            g.seed = a.seed + (uint64_t)first;
            so_start(&out, n, text, text_len, prompt, n_prompt, a.compare && first == 0 ? pass : -1);
            kvgpt_gen_result res;
            s = kvgpt_generate(m, prompt, n_prompt, &g, &res, &err);
            if (s && s != KVGPT_ERR_CONTEXT_FULL) {
                rc = cli_status("sample", s, &err);
                goto done;
            }
            so_finish(&out);
            double t = res.prefill_s + res.decode_s;
            int made = 0;
            for (int b = 0; b < n; b++) made += res.n_new[b];
            tot_tokens[pass] += made;
            tot_time[pass] += t;
            char which[32], switched[64] = "";
            if (n > 1) snprintf(which, sizeof which, "samples %d-%d", first + 1, first + n);
            else snprintf(which, sizeof which, "sample %d", first + 1);
            if (res.thread_switches)
                snprintf(switched, sizeof switched, " [busy machine: thread count changed %d times]",
                         res.thread_switches);
            fprintf(stderr, "kvgpt sample: %s: %s: %d tokens in %.3f s = %.1f tok/s (prefill %d tokens %.1f ms)%s%s\n",
                    label, which, made, t, t > 0 ? made / t : 0.0, n_prompt, res.prefill_s * 1e3,
                    s == KVGPT_ERR_CONTEXT_FULL ? " [context full: window stop]" : "", switched);
        }
        fprintf(stderr, "kvgpt sample: %s: average %.1f tok/s over %d samples (%.0f tokens, %.3f s, %d at a time)\n",
                label, tot_time[pass] > 0 ? tot_tokens[pass] / tot_time[pass] : 0.0, a.num_samples, tot_tokens[pass],
                tot_time[pass], o.batch);
    }
    if (a.compare && tot_time[0] > 0 && tot_time[1] > 0)
        fprintf(stderr, "kvgpt sample: KV cache speed-up %.2fx (%.1f vs %.1f tok/s); first sample identical: %s\n",
                (tot_tokens[0] / tot_time[0]) / (tot_tokens[1] / tot_time[1]), tot_tokens[0] / tot_time[0],
                tot_tokens[1] / tot_time[1], so_compared_equal(&out) ? "yes" : "NO");
    if (so_write_failed(&out)) {
        rc = cli_error("sample", "writing standard output failed: the samples did not all get out");
        clearerr(stdout);   /* said once (main checks stdout after every command) */
    }
done:
    so_free(&out);
    free(prompt);
    free(file_text);
    kvgpt_close(m);
    return rc;
}
