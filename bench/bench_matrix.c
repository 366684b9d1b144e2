/* bench/bench_matrix.c — `kvgpt bench --matrix`: one shape decoded every way
 * the library can, side by side in one run so the ratios between them hold
 * on a noisy shared machine: f32, bf16 and f16 weights on all threads, f32
 * on one thread, a batch of 10 sequences against one, and the 128-token
 * prefill on all threads and on one. Every configuration is open at once and
 * their runs are interleaved (run 1 of each, then run 2, ...), so drift hits
 * every row alike and each ratio is taken run by run.
 * The tables are written by bench/bench_report.c. */
#include "bench/bench.h"
#include "tools/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bench_matrix *mx;
    const char *dir;                  /* the model folder */
    const bench_buf *dram;
    int tokens, reps;
    kvgpt_model *m[BENCH_MX_ROWS];    /* every configuration, open at once */
    bench_buf foot[BENCH_MX_ROWS];    /* probe buffers, one per distinct weight size (owner row) */
    const bench_buf *probe[BENCH_MX_ROWS];
    int32_t *first[BENCH_MX_ROWS];    /* each row's first rep */
    int32_t *toks;                    /* this rep's */
} matrix_ctx;

static void setup_row(bench_matrix_row *row, const char *setting, const char *label, int threads, kvgpt_dtype dtype,
                      int batch)
{
    memset(row, 0, sizeof *row);
    row->setting = setting;
    snprintf(row->label, sizeof row->label, "%s", label);
    row->threads = threads;
    row->dtype = dtype;
    row->batch = batch;
    row->reps_identical = 1;
    row->same_as_f32 = -1;
}

/* Opens row i's configuration, warms it up and finds it a probe buffer as
 * large as its weights (shared with an earlier row of the same size). */
static int open_row(matrix_ctx *c, int i)
{
    bench_matrix_row *row = &c->mx->rows[i];
    if (bench_open(c->dir, row->threads, row->dtype, row->batch, &c->m[i])) return 1;
    c->mx->cfg = *kvgpt_model_config(c->m[i]);
    row->weight_bytes = bench_weight_bytes_per_token(kvgpt_model_plan(c->m[i]));
    fprintf(stderr, "kvgpt bench: %s %s: %.1f MB of weights read per step, %.0f MB of arena\n", c->mx->shape,
            row->label, row->weight_bytes / 1e6, kvgpt_model_arena_used(c->m[i]) / 1e6);
    if (bench_warmup(c->m[i])) return 1;
    row->probed = row->batch == 1;
    if (!row->probed) return 0;
    for (int j = 0; j < i; j++)
        if (c->foot[j].buf && c->foot[j].bytes == row->weight_bytes) {
            c->probe[i] = &c->foot[j];
            return 0;
        }
    if (bench_buf_init(&c->foot[i], row->weight_bytes)) {
        fprintf(stderr, "kvgpt bench: %s %s: no memory for a %.0f MB probe buffer: bounding with the DRAM probe\n",
                c->mx->shape, row->label, row->weight_bytes / 1e6);
        c->foot[i].buf = NULL;
        row->probe_is_dram = 1;
        c->probe[i] = c->dram;
    } else {
        c->probe[i] = &c->foot[i];
    }
    return 0;
}

static void probe_row(matrix_ctx *c, int i)
{
    bench_matrix_row *row = &c->mx->rows[i];
    if (row->probed && row->n_probe < BENCH_MAX_PROBES)
        row->probe_gbps[row->n_probe++] = bench_probe_read(c->probe[i], row->threads);
}

/* Rep `rep` of row i, and the probe after it. */
static int time_rep(matrix_ctx *c, int i, int rep)
{
    bench_matrix_row *row = &c->mx->rows[i];
    size_t tok_bytes = sizeof(int32_t) * (size_t)c->tokens;
    bench_progress pr = {c->mx->shape, row->label, 0, c->reps, c->tokens, 0, 0, 0.0, c->toks};
    kvgpt_gen_options g;
    bench_gen_defaults(&g, c->tokens, 1);
    g.n_seq = row->batch;
    if (rep == 0) probe_row(c, i);
    kvgpt_gen_result res;
    if (bench_timed_generate(c->m[i], &g, &pr, rep + 1, &row->run.rep_s[rep], &res)) return 1;
    row->run.rep_first_s[rep] = res.prefill_s;
    row->run.recomputes = res.recomputes;
    if (rep == 0) memcpy(c->first[i], c->toks, tok_bytes);
    else if (memcmp(c->first[i], c->toks, tok_bytes) != 0) row->reps_identical = 0;
    bench_log_rep(&pr, row->run.rep_s[rep]);
    if (row->probed) {
        probe_row(c, i);
        row->rep_frac[rep] = bench_frac_of_bound(row->batch * c->tokens / row->run.rep_s[rep], row->probe_gbps,
                                                 row->n_probe, row->weight_bytes);
    }
    return 0;
}

/* The 128-token forward on the model's threads, against an FMA probe taken right before it. */
static int time_prefill(matrix_ctx *c, kvgpt_model *m, int threads, bench_matrix_prefill *p)
{
    float *logits = malloc(sizeof(float) * (size_t)c->mx->cfg.vocab_size);
    if (!logits) return cli_error("bench", "out of memory");
    p->threads = threads;
    p->fma_gflops = bench_probe_fma_gflops(threads, BENCH_FMA_SECONDS);
    int rc = bench_time_prefill(m, c->reps, logits, &p->tokens, &p->s);
    free(logits);
    if (rc) return 1;
    p->gflop = bench_forward_flops(&c->mx->cfg, p->tokens) * 1e-9;
    p->gflops = p->gflop / p->s;
    p->frac_fma = p->fma_gflops > 0 ? p->gflops / p->fma_gflops : 0.0;
    fprintf(stderr, "kvgpt bench: %s prefill %d thread%s: %d tokens in %.3f s = %.1f GFLOP/s (%.0f%% of %.1f)\n",
            c->mx->shape, threads, threads > 1 ? "s" : "", p->tokens, p->s, p->gflops, 100 * p->frac_fma,
            p->fma_gflops);
    return 0;
}

/* Medians, bounds, ratios (rep by rep against the f32 row), and the one verdict on the tokens. */
static void finish(matrix_ctx *c)
{
    bench_matrix *mx = c->mx;
    bench_matrix_row *rows = mx->rows, *f32 = &rows[BENCH_MX_F32];
    const int n = c->reps;
    for (int i = 0; i < BENCH_MX_ROWS; i++) {
        bench_matrix_row *row = &rows[i];
        row->run.n_rep = n;
        bench_run_summarize(&row->run, c->tokens);
        row->tok_s = row->batch * row->run.tok_s;
        row->ms_tok = 1e3 / row->tok_s;
        if (row->probed) {
            row->gbps = bench_median(row->probe_gbps, row->n_probe);
            row->bound_tok_s = row->gbps * 1e9 / (double)row->weight_bytes;
            row->frac_bound = bench_median(row->rep_frac, n);
        }
        if (i != BENCH_MX_F32 && row->dtype == KVGPT_DTYPE_F32)
            row->same_as_f32 = memcmp(c->first[BENCH_MX_F32], c->first[i], sizeof(int32_t) * (size_t)c->tokens) == 0;
    }
    for (int r = 0; r < n; r++) {
        double t = f32->run.rep_s[r];
        rows[BENCH_MX_BF16].rep_ratio[r] = t / rows[BENCH_MX_BF16].run.rep_s[r];
        rows[BENCH_MX_F16].rep_ratio[r] = t / rows[BENCH_MX_F16].run.rep_s[r];
        rows[BENCH_MX_ONE_THREAD].rep_ratio[r] = rows[BENCH_MX_ONE_THREAD].run.rep_s[r] / t;
        rows[BENCH_MX_BATCHED].rep_ratio[r] = rows[BENCH_MX_BATCHED].run.rep_s[r] / t;
    }
    for (int i = BENCH_MX_BF16; i < BENCH_MX_ROWS; i++) rows[i].ratio = bench_median(rows[i].rep_ratio, n);
    for (int i = BENCH_MX_BF16; i <= BENCH_MX_F16; i++) {
        rows[i].ratio_key = "tok_s_over_f32";
        snprintf(rows[i].ratio_what, sizeof rows[i].ratio_what, "%.2f× f32", rows[i].ratio);
    }
    bench_matrix_row *one = &rows[BENCH_MX_ONE_THREAD], *bat = &rows[BENCH_MX_BATCHED];
    one->ratio_key = "all_threads_over_1";
    snprintf(one->ratio_what, sizeof one->ratio_what, "%.2f× (all threads over 1)", one->ratio);
    bat->ratio_key = "time_batch_over_1";
    snprintf(bat->ratio_what, sizeof bat->ratio_what, "time %d vs 1: %.2f (target ≤ 2.0)", bat->batch, bat->ratio);
    mx->tokens_identical = 1;
    for (int i = 0; i < BENCH_MX_ROWS; i++)
        if (!rows[i].reps_identical || rows[i].same_as_f32 == 0) mx->tokens_identical = 0;
}

int bench_matrix_measure(bench_matrix *mx, const bench_report *r, const char *shape, const bench_buf *dram)
{
    char dir[4096];
    memset(mx, 0, sizeof *mx);
    mx->r = r;
    snprintf(mx->shape, sizeof mx->shape, "%s", shape);
    if (bench_ensure_model(r->models_dir, shape, dir, sizeof dir, &mx->synthesized)) return 1;

    bench_matrix_row *rows = mx->rows;
    char batched[40];
    snprintf(batched, sizeof batched, "f32 batch %d", BENCH_MATRIX_BATCH);
    setup_row(&rows[BENCH_MX_F32], "decode", "f32", r->threads, KVGPT_DTYPE_F32, 1);
    setup_row(&rows[BENCH_MX_BF16], "decode", "bf16", r->threads, KVGPT_DTYPE_BF16, 1);
    setup_row(&rows[BENCH_MX_F16], "decode", "f16", r->threads, KVGPT_DTYPE_F16, 1);
    setup_row(&rows[BENCH_MX_ONE_THREAD], "decode", "f32 1 thread", 1, KVGPT_DTYPE_F32, 1);
    setup_row(&rows[BENCH_MX_BATCHED], "batched", batched, r->threads, KVGPT_DTYPE_F32, BENCH_MATRIX_BATCH);

    matrix_ctx c;
    memset(&c, 0, sizeof c);
    c.mx = mx;
    c.dir = dir;
    c.dram = dram;
    c.tokens = r->tokens;
    c.reps = r->reps;
    size_t tok_bytes = sizeof(int32_t) * (size_t)r->tokens;
    int rc = 1;
    if (!(c.toks = malloc(tok_bytes))) goto oom;
    for (int i = 0; i < BENCH_MX_ROWS; i++)
        if (!(c.first[i] = malloc(tok_bytes))) goto oom;
    mx->load_before = bench_load_avg();
    for (int i = 0; i < BENCH_MX_ROWS; i++)
        if (open_row(&c, i)) goto done;
    if (time_prefill(&c, c.m[BENCH_MX_F32], rows[BENCH_MX_F32].threads, &mx->prefill[0]) ||
        time_prefill(&c, c.m[BENCH_MX_ONE_THREAD], 1, &mx->prefill[1]))
        goto done;
    for (int rep = 0; rep < c.reps; rep++)
        for (int i = 0; i < BENCH_MX_ROWS; i++)
            if (time_rep(&c, i, rep)) goto done;
    mx->load_after = bench_load_avg();
    finish(&c);
    rc = 0;
    goto done;
oom:
    cli_error("bench", "out of memory");
done:
    for (int i = 0; i < BENCH_MX_ROWS; i++) {
        kvgpt_close(c.m[i]);
        free(c.foot[i].buf);
        free(c.first[i]);
    }
    free(c.toks);
    return rc;
}
