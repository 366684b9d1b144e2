/* bench/cmd_bench.c — `kvgpt bench`: the seed's results table (GPT-2
 * small/medium/large, KV cache vs nanoGPT's recompute) measured properly:
 * medians of repeated runs, and the machine's own ceilings (read bandwidth,
 * FMA rate) probed in the same run, because the machines are shared and
 * noisy and only ratios to what the hardware can do travel between them.
 * Measuring is here, with the helpers --matrix (bench/bench_matrix.c)
 * shares; the tables, CSV and SVG are in bench/bench_report.c. */
#include "bench/bench.h"
#include "tools/cli.h"
#include "port/port.h"   /* a device of its own: its memory is what decode streams */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- the machine probes -------------------------------------------------- */

/* Two read-bandwidth probes. The DRAM one streams 1 GiB, more than any
 * last-level cache, and describes the machine. The bound of each model
 * streams a buffer exactly as large as that model's weights, the way decode
 * streams them every token: on machines whose last-level cache holds a good
 * part of the weights (260 MiB of L3 is not rare on servers) decode beats the
 * DRAM figure, and a bound it beats is no bound. */
/* Written once so its pages exist: reading untouched pages would measure
 * the kernel's zero page, not memory. */
int bench_buf_init(bench_buf *b, size_t bytes)
{
    b->bytes = bytes;
    b->buf = malloc(bytes);
    if (!b->buf) return 1;
    for (size_t i = 0; i < bytes; i += 4096)
        memset(b->buf + i, (int)(i >> 12) & 0xff, bytes - i < 4096 ? bytes - i : 4096);
    return 0;
}

/* With a device of its own (CUDA) the weights stream from device memory:
 * the probe reads a device buffer of the same size instead. */
double bench_probe_read(const bench_buf *b, int threads)
{
    if (!port_device_is_host()) return port_probe_read_gbps(b->bytes, BENCH_PROBE_REPS);
    return bench_probe_read_gbps(b->buf, b->bytes, threads, BENCH_PROBE_REPS);
}

double bench_frac_of_bound(double tok_s, const double *probes, int n, size_t weight_bytes)
{
    double gbps = 0.5 * (probes[n - 2] + probes[n - 1]);
    return tok_s / (gbps * 1e9 / (double)weight_bytes);
}

static void probe_footprint(const bench_buf *b, int threads, bench_model *bm)
{
    if (bm->n_probe < BENCH_MAX_PROBES) bm->probe_gbps[bm->n_probe++] = bench_probe_read(b, threads);
}

static void probe_dram(const bench_buf *b, int threads, bench_report *r)
{
    if (r->n_dram < BENCH_MAX_DRAM) r->dram_gbps[r->n_dram++] = bench_probe_read(b, threads);
}

/* The 1-minute load average: on a shared machine it says how much the
 * numbers next to it can be trusted. */
double bench_load_avg(void)
{
    double l = -1.0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1.0;
        fclose(f);
    }
    return l;
}

/* ---- the model folder ---------------------------------------------------- */

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Writes a random-weight model of the shape when the folder has no weights:
 * speed does not depend on the values, and the real ones need a download. */
int bench_ensure_model(const char *models, const char *shape, char *dir, size_t cap, int *synthesized)
{
    char path[4200];
    snprintf(dir, cap, "%s/%s", models, shape);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    *synthesized = 0;
    if (file_exists(path)) return 0;
    if (mkdir(models, 0777) != 0 && errno != EEXIST) return cli_error("bench", "%s: %s", models, strerror(errno));
    fprintf(stderr, "kvgpt bench: %s has no model.safetensors: synthesizing %s (random weights, same speed)\n", dir, shape);
    char a0[] = "--shape", a2[] = "--out", a1[32], a3[4096];
    snprintf(a1, sizeof a1, "%s", shape);
    snprintf(a3, sizeof a3, "%s", dir);
    char *av[] = {a0, a1, a2, a3};
    if (cmd_synth(4, av) != 0) return cli_error("bench", "could not synthesize %s into %s", shape, dir);
    *synthesized = 1;
    return 0;
}

int bench_open(const char *dir, int threads, kvgpt_dtype dtype, int batch, kvgpt_model **m)
{
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = dir;
    o.batch = batch;
    o.threads = threads;
    o.adapt_threads = 0;   /* every row measures the thread count it names */
    o.weight_dtype = dtype;
    o.no_tokenizer = 1;
    kvgpt_error err = {0};
    kvgpt_status s = kvgpt_open(&o, NULL, 0, m, &err);
    return s ? cli_status("bench", s, &err) : 0;
}

/* A short untimed run first: page tables, OpenMP's thread pool and the
 * caches settle before anything is timed. */
int bench_warmup(kvgpt_model *m)
{
    static const int32_t eot[1] = {BENCH_PROMPT_TOKEN};
    kvgpt_gen_options g;
    kvgpt_gen_result res;
    kvgpt_error err = {0};
    bench_gen_defaults(&g, BENCH_WARMUP_TOKENS, 1);
    kvgpt_status s = kvgpt_generate(m, eot, 1, &g, &res, &err);
    return s ? cli_status("bench", s, &err) : 0;
}

/* ---- what a token costs -------------------------------------------------- */

static long long count_params(const kvgpt_config *c)
{
    long long C = c->n_embd, V = c->vocab_size, T = c->block_size, L = c->n_layer, b = c->bias ? 1 : 0;
    /* Four matrices (12 C^2), their biases (9 C), two LayerNorms (2 C, + 2 C of biases). */
    long long layer = 12 * C * C + 2 * C + b * 11 * C;
    return V * C + T * C + L * layer + C + b * C;   /* wte, wpe, layers, ln_f */
}

/* Bytes of weights one decode step reads, from the model's own plan (so the
 * dtype and the packing padding are the real ones):
 *   counted: "wte (tied lm_head)" — the lm_head reads all of it every token;
 *            every "h.*" region — each layer's four matrices, their biases
 *            and both LayerNorms, all read once per token;
 *            "ln_f.*" — read once.
 *   not counted: "wpe" (one row per token), the KV cache (kv.k/kv.v: bytes
 *            read grow with the context, reported separately as
 *            kv_bytes_avg), activations, logits and workspace (small and
 *            written as they are read, so they stay in cache). */
size_t bench_weight_bytes_per_token(const kvgpt_plan *p)
{
    size_t sum = 0;
    for (int i = 0; i < p->n_regions; i++) {
        const char *n = p->regions[i].name;
        if (strncmp(n, "wte", 3) == 0 || strncmp(n, "h.", 2) == 0 || strncmp(n, "ln_f", 4) == 0)
            sum += p->regions[i].bytes;
    }
    return sum;
}

/* KV bytes a decode step reads at the average context of N tokens after a
 * 1-token prompt: K and V (f32, the default kv_dtype) of every layer over
 * (N + 1) / 2 positions, at most the context. */
static size_t kv_bytes_avg(const kvgpt_config *c, int tokens)
{
    size_t avg = (size_t)(tokens + 1) / 2;
    if (avg > (size_t)c->block_size) avg = (size_t)c->block_size;
    return (size_t)c->n_layer * 2 * (size_t)c->n_embd * avg * sizeof(float);
}

/* FLOPs of one forward over n positions, counting what the forward computes:
 * the four matrices of every layer for every row (2 flops per weight), the
 * lm_head for the one row whose logits are kept (logits_all is off), and
 * causal attention (row i attends to i + 1 positions: 2 flops per element
 * for q·k and for the weighted sum of v). LayerNorm, GELU and softmax are
 * left out: O(n C), a fraction of a percent. */
double bench_forward_flops(const kvgpt_config *c, int n)
{
    double C = c->n_embd, L = c->n_layer, V = c->vocab_size, N = n;
    double mats = 2.0 * 12.0 * C * C * L * N;
    double head = 2.0 * V * C;
    double attn = L * 2.0 * C * N * (N + 1.0);
    return mats + head + attn;
}

/* ---- timed generation ---------------------------------------------------- */

int bench_on_token(void *user, int seq, int32_t tok)
{
    bench_progress *p = user;
    if (seq != 0) return 0;   /* a batch: sequence 0 stands for all */
    if (p->count < p->n) p->toks[p->count] = tok;
    p->count++;
    double t = bench_now();
    if (t >= p->t_next) {
        fprintf(stderr, "\r%s %s rep %d/%d: %d/%d tokens...", p->model, p->mode, p->rep, p->reps, p->count, p->n);
        fflush(stderr);
        p->shown = 1;
        p->t_next = t + BENCH_PROGRESS_S;
    }
    return 0;
}

void bench_gen_defaults(kvgpt_gen_options *g, int tokens, int use_cache)
{
    /* nanoGPT sample.py's defaults; never stopping at end-of-text so every
     * run makes exactly N tokens. */
    kvgpt_gen_options_default(g);
    g->max_new_tokens = tokens;
    g->temperature = 0.8f;
    g->top_k = 200;
    g->seed = 1337;
    g->stop_at_eot = 0;
    g->window = KVGPT_WINDOW_SHIFT;
    g->use_cache = use_cache;
    g->n_seq = 1;
}

int bench_timed_generate(kvgpt_model *m, kvgpt_gen_options *g, bench_progress *pr, int rep, double *seconds,
                         kvgpt_gen_result *res)
{
    static const int32_t prompt[1] = {BENCH_PROMPT_TOKEN};
    g->on_token = bench_on_token;
    g->user = pr;
    pr->rep = rep;
    pr->count = pr->shown = 0;
    pr->t_next = bench_now() + BENCH_PROGRESS_S;
    kvgpt_error err = {0};
    double t0 = bench_now();
    kvgpt_status s = kvgpt_generate(m, prompt, 1, g, res, &err);
    *seconds = bench_now() - t0;
    if (pr->shown) fprintf(stderr, "\r%70s\r", "");
    if (s) return cli_status("bench", s, &err);
    for (int i = 0; i < g->n_seq && i < 64; i++)
        if (res->n_new[i] != g->max_new_tokens)
            return cli_error("bench", "%s: generated %d tokens, not %d", pr->model, res->n_new[i], g->max_new_tokens);
    return 0;
}

void bench_log_rep(const bench_progress *pr, double seconds)
{
    fprintf(stderr, "kvgpt bench: %s %s rep %d/%d: %d tokens in %.3f s = %.2f tok/s\n", pr->model, pr->mode, pr->rep,
            pr->reps, pr->n, seconds, pr->n / seconds);
}

void bench_run_summarize(bench_run *r, int tokens)
{
    r->ran = 1;
    r->median_s = bench_median(r->rep_s, r->n_rep);
    r->min_s = r->max_s = r->rep_s[0];
    for (int i = 1; i < r->n_rep; i++) {
        if (r->rep_s[i] < r->min_s) r->min_s = r->rep_s[i];
        if (r->rep_s[i] > r->max_s) r->max_s = r->rep_s[i];
    }
    r->tok_s = tokens / r->median_s;
    r->ms_tok = 1e3 * r->median_s / tokens;
}

typedef struct {
    kvgpt_model *m;
    int tokens, reps, threads;
    int32_t *ref;            /* tokens of the first rep with the cache */
    int have_ref;
    int32_t *toks;
    const bench_buf *probe;  /* as large as the weights */
} bench_ctx;

static int time_setting(bench_ctx *x, bench_model *bm, int use_cache)
{
    bench_run *r = &bm->run[use_cache];
    bench_progress pr = {bm->name, use_cache ? "kv-cache" : "no-cache", 0, x->reps, x->tokens, 0, 0, 0.0, x->toks};
    kvgpt_gen_options g;
    bench_gen_defaults(&g, x->tokens, use_cache);
    for (int rep = 0; rep < x->reps; rep++) {
        /* The bandwidth a shared host lends drifts by 2x in minutes: each
         * cached rep is bounded by probes taken right before and after it. */
        if (use_cache && rep == 0) probe_footprint(x->probe, x->threads, bm);
        kvgpt_gen_result res;
        double t;
        if (bench_timed_generate(x->m, &g, &pr, rep + 1, &t, &res)) return 1;
        r->rep_s[rep] = t;
        r->rep_first_s[rep] = res.prefill_s;
        r->recomputes = res.recomputes;
        if (!x->have_ref) {
            memcpy(x->ref, x->toks, sizeof(int32_t) * (size_t)x->tokens);
            x->have_ref = 1;
        } else if (memcmp(x->ref, x->toks, sizeof(int32_t) * (size_t)x->tokens) != 0) {
            bm->tokens_identical = 0;
        }
        if (use_cache) {
            probe_footprint(x->probe, x->threads, bm);
            bm->rep_frac_bound[rep] = bench_frac_of_bound(x->tokens / t, bm->probe_gbps, bm->n_probe, bm->weight_bytes);
        }
        bench_log_rep(&pr, t);
    }
    r->n_rep = x->reps;
    bench_run_summarize(r, x->tokens);
    return 0;
}

/* The forward of a 128-token prompt (ids 0..127) from an empty cache, median of reps. */
int bench_time_prefill(kvgpt_model *m, int reps, float *logits, int *n, double *median_s)
{
    const kvgpt_config *c = kvgpt_model_config(m);
    *n = BENCH_PREFILL_TOKENS < c->block_size ? BENCH_PREFILL_TOKENS : c->block_size;
    int32_t ids[BENCH_PREFILL_TOKENS];
    for (int i = 0; i < *n; i++) ids[i] = i % c->vocab_size;
    double t[BENCH_MAX_REPS + 1];
    for (int rep = 0; rep <= reps; rep++) {   /* rep 0 is untimed: caches warm up */
        kvgpt_error err = {0};
        double t0 = bench_now();
        kvgpt_status s = kvgpt_forward(m, ids, *n, logits, &err);
        t[rep] = bench_now() - t0;
        if (s) return cli_status("bench", s, &err);
    }
    *median_s = bench_median(t + 1, reps);
    return 0;
}

static int time_prefill(bench_ctx *x, bench_model *bm, float *logits)
{
    if (bench_time_prefill(x->m, x->reps, logits, &bm->prefill_tokens, &bm->prefill_s)) return 1;
    bm->prefill_gflop = bench_forward_flops(&bm->cfg, bm->prefill_tokens) * 1e-9;
    bm->prefill_gflops = bm->prefill_gflop / bm->prefill_s;
    bm->frac_fma = bm->fma_gflops > 0 ? bm->prefill_gflops / bm->fma_gflops : 0.0;
    return 0;
}

typedef struct {
    const char *models_dir;
    int tokens, reps, threads, skip_nocache;
    kvgpt_dtype dtype;
} bench_args;

static int bench_one(const bench_args *a, const char *shape, const bench_buf *dram, bench_model *bm)
{
    char dir[4096];
    memset(bm, 0, sizeof *bm);
    snprintf(bm->name, sizeof bm->name, "%.*s", (int)sizeof bm->name - 1, shape);
    bm->tokens_identical = 1;
    if (bench_ensure_model(a->models_dir, shape, dir, sizeof dir, &bm->synthesized)) return 1;

    kvgpt_model *m = NULL;
    if (bench_open(dir, a->threads, a->dtype, 1, &m)) return 1;
    bm->cfg = *kvgpt_model_config(m);
    bm->params = count_params(&bm->cfg);
    bm->weight_bytes = bench_weight_bytes_per_token(kvgpt_model_plan(m));
    bm->kv_bytes_avg = kv_bytes_avg(&bm->cfg, a->tokens);
    bm->arena_bytes = kvgpt_model_arena_used(m);

    int rc = 1;
    bench_buf foot = {NULL, 0};
    bench_ctx x = {m, a->tokens, a->reps, a->threads, NULL, 0, NULL, NULL};
    x.ref = malloc(sizeof(int32_t) * (size_t)a->tokens);
    x.toks = malloc(sizeof(int32_t) * (size_t)a->tokens);
    float *logits = malloc(sizeof(float) * (size_t)bm->cfg.vocab_size);
    if (!x.ref || !x.toks || !logits) {
        cli_error("bench", "out of memory");
        goto done;
    }
    if (bench_buf_init(&foot, bm->weight_bytes)) {
        fprintf(stderr, "kvgpt bench: %s: no memory for a %.0f MB probe buffer: bounding with the DRAM probe\n",
                shape, bm->weight_bytes / 1e6);
        bm->probe_is_dram = 1;
    }
    x.probe = bm->probe_is_dram ? dram : &foot;
    fprintf(stderr, "kvgpt bench: %s: %.0fM params, %d layers, %.1f MB of weights read per token\n", shape,
            bm->params / 1e6, bm->cfg.n_layer, bm->weight_bytes / 1e6);
    bm->load_before = bench_load_avg();
    if (bench_warmup(m)) goto done;

    bm->fma_gflops = bench_probe_fma_gflops(a->threads, BENCH_FMA_SECONDS);
    if (time_prefill(&x, bm, logits)) goto done;
    if (time_setting(&x, bm, 1)) goto done;
    if (!a->skip_nocache && time_setting(&x, bm, 0)) goto done;
    bm->load_after = bench_load_avg();

    bm->gbps = bench_median(bm->probe_gbps, bm->n_probe);
    bm->bound_tok_s = bm->gbps * 1e9 / (double)bm->weight_bytes;
    bm->frac_bound = bench_median(bm->rep_frac_bound, a->reps);
    bm->speedup = bm->run[0].ran ? bm->run[1].tok_s / bm->run[0].tok_s : 0.0;
    fprintf(stderr, "kvgpt bench: %s: %.2f tok/s with the cache (%.0f%% of the %.1f tok/s bound at %.1f GB/s)",
            shape, bm->run[1].tok_s, 100 * bm->frac_bound, bm->bound_tok_s, bm->gbps);
    if (bm->run[0].ran) fprintf(stderr, ", %.2f tok/s without: %.2fx", bm->run[0].tok_s, bm->speedup);
    fprintf(stderr, "; load average %.1f -> %.1f\n", bm->load_before, bm->load_after);
    rc = 0;
done:
    free(foot.buf);
    free(x.ref);
    free(x.toks);
    free(logits);
    kvgpt_close(m);
    return rc;
}

/* ---- the command --------------------------------------------------------- */

static int parse_shapes(const char *list, char names[][32], int cap)
{
    int n = 0;
    const char *p = list;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char nm[32];
        if (len == 0 || len >= sizeof nm) {
            cli_error("bench", "--shapes: \"%s\" is not a comma-separated list of shapes", list);
            return -1;
        }
        memcpy(nm, p, len);
        nm[len] = 0;
        if (kvgpt_shape_from_name(nm) == KVGPT_SHAPE_NONE) {
            cli_error("bench", "--shapes: unknown shape \"%s\" (gpt2, gpt2-medium, gpt2-large, gpt2-xl)", nm);
            return -1;
        }
        if (n >= cap) {
            cli_error("bench", "--shapes: at most %d shapes", cap);
            return -1;
        }
        memcpy(names[n++], nm, len + 1);
        if (!e) return n;
        p = e + 1;
    }
}

static void join_cmdline(char *buf, size_t cap, int argc, char **argv)
{
    size_t len = (size_t)snprintf(buf, cap, "kvgpt bench");
    for (int i = 0; i < argc && len < cap; i++) len += (size_t)snprintf(buf + len, cap - len, " %s", argv[i]);
}

int cmd_bench(int argc, char **argv)
{
    const char *models = "models", *shapes = NULL, *dtype = NULL, *out = "bench-out";
    int tokens = 256, reps = 3, threads = 0, no_nocache = 0, matrix = 0, sessions = 0, help = 0;
    const cli_opt opts[] = {
        {"models", OPT_STR, &models, "folder of model folders, one per shape (default models)"},
        {"shapes", OPT_STR, &shapes, "comma-separated (default gpt2,gpt2-medium,gpt2-large; with --matrix: gpt2, "
                                     "and only the first is measured)"},
        {"tokens", OPT_INT, &tokens, "new tokens per run (default 256)"},
        {"reps", OPT_INT, &reps, "runs per setting; the median is reported (default 3)"},
        {"threads", OPT_INT, &threads, "CPU threads (default: all)"},
        {"dtype", OPT_STR, &dtype, "weights in memory: f32 | f16 | bf16 (default f32; not with --matrix)"},
        {"no-nocache", OPT_FLAG, &no_nocache, "skip the runs without the cache (slow on big models)"},
        {"matrix", OPT_FLAG, &matrix, "one shape side by side instead: f32/bf16/f16 decode, 1 thread, batch 10, "
                                      "prefill; writes matrix.md, matrix.csv"},
        {"sessions", OPT_FLAG, &sessions, "the step API instead: 10 samples together vs 1, a chat turn after 900 "
                                          "vs 10 tokens, a prompt's prefill for 8 sequences vs 1; writes sessions.md"},
        {"out", OPT_STR, &out, "folder for bench.md, bench.csv, bench.svg (default bench-out)"},
        {"help", OPT_FLAG, &help, "this text"},
    };
    int n_opts = (int)(sizeof opts / sizeof opts[0]);
    if (cli_parse("bench", argc, argv, opts, n_opts)) return 2;
    if (help) {
        cli_usage("bench", "Times generation with and without the KV cache on GPT-2 shapes (missing models are\n"
                           "synthesized), against the machine's measured read bandwidth and FMA rate. With --matrix,\n"
                           "times one shape's decode with f32, bf16 and f16 weights, on 1 thread, and batched (10\n"
                           "sequences against 1), and its prefill on all threads and on 1, side by side.", opts, n_opts);
        return 0;
    }
    if (tokens < 1) return cli_error("bench", "--tokens must be at least 1, not %d", tokens);
    if (reps < 1 || reps > BENCH_MAX_REPS) return cli_error("bench", "--reps must be 1..%d, not %d", BENCH_MAX_REPS, reps);
    if (threads < 0) return cli_error("bench", "--threads must be 0 (all) or more, not %d", threads);
    if (matrix && dtype) return cli_error("bench", "--dtype: --matrix measures f32, bf16 and f16 itself; leave --dtype out");
    if (!dtype) dtype = "f32";
    int dt = cli_dtype(dtype);
    if (dt < 0) return cli_error("bench", "--dtype must be f32, f16 or bf16, not \"%s\"", dtype);
    if (!shapes) shapes = matrix ? "gpt2" : "gpt2,gpt2-medium,gpt2-large";
    char names[BENCH_MAX_SHAPES][32];
    int n_shapes = parse_shapes(shapes, names, BENCH_MAX_SHAPES);
    if (n_shapes < 0) return 1;
    if (matrix && n_shapes > 1) fprintf(stderr, "kvgpt bench: --matrix measures one shape: %s, the first of --shapes\n", names[0]);
    /* A folder the results cannot go to is found out before the minutes of measuring, not after. */
    struct stat ost;
    if (mkdir(out, 0777) != 0 && errno != EEXIST) return cli_error("bench", "--out %s: %s", out, strerror(errno));
    if (stat(out, &ost) != 0 || !S_ISDIR(ost.st_mode) || access(out, W_OK | X_OK) != 0)
        return cli_error("bench", "--out %s: not a folder this user can write to", out);
    if (sessions) return bench_sessions(models, names[0], reps, threads, out);

    static bench_report report;
    static bench_matrix mx;
    static char cmdline[2048];
    memset(&report, 0, sizeof report);
    join_cmdline(cmdline, sizeof cmdline, argc, argv);
    report.dtype = matrix ? "f32,bf16,f16" : dtype;
    report.models_dir = models;
    report.cmdline = cmdline;
    report.tokens = tokens;
    report.reps = reps;
    report.threads = bench_threads(threads);
    report.nocache = !no_nocache && !matrix;
    bench_machine_info(&report);

    bench_buf dram;
    if (bench_buf_init(&dram, BENCH_DRAM_BYTES)) return cli_error("bench", "no memory for the 1 GiB bandwidth probe buffer");
    probe_dram(&dram, threads, &report);
    bench_args a = {models, tokens, reps, threads, no_nocache, (kvgpt_dtype)dt};
    int rc = 0;
    if (matrix) {
        rc = bench_matrix_measure(&mx, &report, names[0], &dram);
        if (!rc) probe_dram(&dram, threads, &report);
    }
    for (int i = 0; i < n_shapes && !rc && !matrix; i++) {
        rc = bench_one(&a, names[i], &dram, &report.models[i]);
        if (!rc) report.n_models++;
        if (!rc) probe_dram(&dram, threads, &report);
    }
    free(dram.buf);
    if (rc) return rc;

    if (matrix) {
        report.gbps_median = bench_median(report.dram_gbps, report.n_dram);
        bench_matrix_print(stdout, &mx);
        fflush(stdout);
        if (bench_matrix_write(out, &mx)) return 1;
        fprintf(stderr, "kvgpt bench: wrote %s/matrix.md, %s/matrix.csv\n", out, out);
        return 0;
    }
    double fma[BENCH_MAX_SHAPES];
    for (int i = 0; i < report.n_models; i++) fma[i] = report.models[i].fma_gflops;
    report.gbps_median = bench_median(report.dram_gbps, report.n_dram);
    report.fma_median = bench_median(fma, report.n_models);

    bench_print_table(stdout, &report);
    bench_print_prefill(stdout, &report);
    fflush(stdout);
    if (bench_write_outputs(out, &report)) return 1;
    fprintf(stderr, "kvgpt bench: wrote %s/bench.md, %s/bench.csv, %s/bench.svg\n", out, out, out);
    return 0;
}
