/* tools/bench_matrix.c — `kvgpt bench --matrix`: one shape decoded every way
 * the library can, side by side in one run so the ratios between them hold
 * on a noisy shared machine: f32, bf16 and f16 weights on all threads, f32
 * on one thread, a batch of 10 sequences against one, and the 128-token
 * prefill on all threads and on one. Each configuration opens its own model,
 * and closes it before the next, so one arena is in memory at a time.
 * The tables are written by tools/bench_report.c. */
#include "tools/bench.h"
#include "tools/cli.h"
#include "ops/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bench_matrix *mx;
    const char *dir;                  /* the model folder */
    const bench_buf *dram;
    int tokens, reps;
    int32_t *ref;                     /* the first rep of the f32 all-threads row */
    int32_t *first;                   /* the first rep of the row being timed */
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

/* Read bandwidth over a buffer as large as this dtype's weights, on the row's threads. */
static double probe_footprint(const matrix_ctx *c, const bench_matrix_row *row, const bench_buf *foot)
{
    return bench_probe_read(row->probe_is_dram ? c->dram : foot, row->threads);
}

/* The timed reps of one row; batch-1 rows between two footprint probes. */
static int time_row(matrix_ctx *c, kvgpt_model *m, bench_matrix_row *row)
{
    size_t tok_bytes = sizeof(int32_t) * (size_t)c->tokens;
    bench_buf foot = {NULL, 0};
    row->probed = row->batch == 1;
    if (row->probed && bench_buf_init(&foot, row->weight_bytes)) {
        fprintf(stderr, "kvgpt bench: %s %s: no memory for a %.0f MB probe buffer: bounding with the DRAM probe\n",
                c->mx->shape, row->label, row->weight_bytes / 1e6);
        row->probe_is_dram = 1;
    }
    bench_progress pr = {c->mx->shape, row->label, 0, c->reps, c->tokens, 0, 0, 0.0, c->toks};
    kvgpt_gen_options g;
    bench_gen_defaults(&g, c->tokens, 1);
    g.n_seq = row->batch;
    if (row->probed) row->gbps_before = probe_footprint(c, row, &foot);
    for (int rep = 0; rep < c->reps; rep++) {
        kvgpt_gen_result res;
        if (bench_timed_generate(m, &g, &pr, rep + 1, &row->run.rep_s[rep], &res)) {
            free(foot.buf);
            return 1;
        }
        row->run.rep_first_s[rep] = res.prefill_s;
        row->run.recomputes = res.recomputes;
        if (rep == 0) memcpy(c->first, c->toks, tok_bytes);
        else if (memcmp(c->first, c->toks, tok_bytes) != 0) row->reps_identical = 0;
        bench_log_rep(&pr, row->run.rep_s[rep]);
    }
    if (row->probed) row->gbps_after = probe_footprint(c, row, &foot);
    free(foot.buf);

    row->run.n_rep = c->reps;
    bench_run_summarize(&row->run, c->tokens);
    row->tok_s = row->batch * row->run.tok_s;
    row->ms_tok = 1e3 / row->tok_s;
    if (row->probed) {
        row->gbps = 0.5 * (row->gbps_before + row->gbps_after);
        row->bound_tok_s = row->gbps * 1e9 / (double)row->weight_bytes;
        row->frac_bound = row->tok_s / row->bound_tok_s;
    }
    return 0;
}

/* The 128-token forward on the model's threads, against an FMA probe taken right before it. */
static int time_prefill(matrix_ctx *c, kvgpt_model *m, int threads, bench_matrix_prefill *p)
{
    float *logits = malloc(sizeof(float) * (size_t)c->mx->cfg.vocab_size);
    if (!logits) return cli_error("bench", "out of memory");
    p->threads = threads;
    p->fma_gflops = ops_probe_fma_gflops(threads, BENCH_FMA_SECONDS);
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

/* Opens the row's configuration, warms it up, times it (and the prefill when
 * asked), closes it. */
static int run_config(matrix_ctx *c, bench_matrix_row *row, bench_matrix_prefill *prefill)
{
    kvgpt_model *m = NULL;
    if (bench_open(c->dir, row->threads, row->dtype, row->batch, &m)) return 1;
    c->mx->cfg = *kvgpt_model_config(m);
    row->weight_bytes = bench_weight_bytes_per_token(kvgpt_model_plan(m));
    fprintf(stderr, "kvgpt bench: %s %s: %.1f MB of weights read per step, %.0f MB of arena\n", c->mx->shape,
            row->label, row->weight_bytes / 1e6, kvgpt_model_arena_used(m) / 1e6);
    int rc = bench_warmup(m);
    if (!rc && prefill) rc = time_prefill(c, m, row->threads, prefill);
    if (!rc) rc = time_row(c, m, row);
    kvgpt_close(m);
    if (rc) return 1;
    if (row == &c->mx->rows[BENCH_MX_F32]) {
        memcpy(c->ref, c->first, sizeof(int32_t) * (size_t)c->tokens);
    } else if (row->dtype == KVGPT_DTYPE_F32) {
        /* Bitwise deterministic across thread counts, and a batch samples
         * its sequence 0 with the seed of a lone sequence. */
        row->same_as_f32 = memcmp(c->ref, c->first, sizeof(int32_t) * (size_t)c->tokens) == 0;
    }
    return 0;
}

/* The ratio columns, and the one verdict on the tokens. */
static void finish(bench_matrix *mx)
{
    bench_matrix_row *f32 = &mx->rows[BENCH_MX_F32], *rows = mx->rows;
    for (int i = BENCH_MX_BF16; i <= BENCH_MX_F16; i++) {
        rows[i].ratio = rows[i].tok_s / f32->tok_s;
        rows[i].ratio_key = "tok_s_over_f32";
        snprintf(rows[i].ratio_what, sizeof rows[i].ratio_what, "%.2f× f32", rows[i].ratio);
    }
    bench_matrix_row *one = &rows[BENCH_MX_ONE_THREAD], *bat = &rows[BENCH_MX_BATCHED];
    one->ratio = f32->tok_s / one->tok_s;
    one->ratio_key = "all_threads_over_1";
    snprintf(one->ratio_what, sizeof one->ratio_what, "%.2f× (all threads over 1)", one->ratio);
    bat->ratio = bat->run.median_s / f32->run.median_s;
    bat->ratio_key = "time_batch_over_1";
    snprintf(bat->ratio_what, sizeof bat->ratio_what, "time %d vs 1: %.2f (target ≤ 2.0)", bat->batch, bat->ratio);
    mx->tokens_identical = 1;
    for (int i = 0; i < BENCH_MX_ROWS; i++)
        if (!mx->rows[i].reps_identical || mx->rows[i].same_as_f32 == 0) mx->tokens_identical = 0;
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

    matrix_ctx c = {mx, dir, dram, r->tokens, r->reps, NULL, NULL, NULL};
    size_t tok_bytes = sizeof(int32_t) * (size_t)r->tokens;
    c.ref = malloc(tok_bytes);
    c.first = malloc(tok_bytes);
    c.toks = malloc(tok_bytes);
    int rc = 1;
    if (!c.ref || !c.first || !c.toks) {
        cli_error("bench", "out of memory");
        goto done;
    }
    mx->load_before = bench_load_avg();
    for (int i = 0; i < BENCH_MX_ROWS; i++) {
        bench_matrix_prefill *p = i == BENCH_MX_F32 ? &mx->prefill[0] : i == BENCH_MX_ONE_THREAD ? &mx->prefill[1] : NULL;
        if (run_config(&c, &rows[i], p)) goto done;
    }
    mx->load_after = bench_load_avg();
    finish(mx);
    rc = 0;
done:
    free(c.ref);
    free(c.first);
    free(c.toks);
    return rc;
}
