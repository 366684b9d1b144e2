/* bench/bench_report.c — what `kvgpt bench` writes: the markdown table of the
 * seed's experiment (plus what the seed left out: ms/token and the fraction
 * of the bandwidth bound), a CSV with every raw number, and a bar chart as
 * hand-written SVG so the report needs nothing installed; with --matrix, the
 * side-by-side tables of bench/bench_matrix.c and their CSV. */
#include "bench/bench.h"
#include "tools/cli.h"

#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

double bench_median(const double *v, int n)
{
    double a[BENCH_MAX_PROBES > BENCH_MAX_DRAM ? BENCH_MAX_PROBES : BENCH_MAX_DRAM];
    if (n < 1) return 0.0;
    if (n > (int)(sizeof a / sizeof a[0])) n = (int)(sizeof a / sizeof a[0]);
    for (int i = 0; i < n; i++) {
        int j = i;
        for (; j > 0 && a[j - 1] > v[i]; j--) a[j] = a[j - 1];
        a[j] = v[i];
    }
    return n % 2 ? a[n / 2] : 0.5 * (a[n / 2 - 1] + a[n / 2]);
}

void bench_machine_info(bench_report *r)
{
    snprintf(r->cpu, sizeof r->cpu, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *v = strchr(line, ':');
        if (!v) continue;
        for (v++; *v == ' ' || *v == '\t'; v++) {}
        size_t n = strcspn(v, "\n");
        snprintf(r->cpu, sizeof r->cpu, "%.*s", (int)n, v);
        break;
    }
    if (f) fclose(f);
    snprintf(r->llc, sizeof r->llc, "unknown");
    /* The highest cache index is the last level. */
    for (int i = 4; i >= 0; i--) {
        char path[96];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if (!(f = fopen(path, "r"))) continue;
        if (fgets(line, sizeof line, f)) snprintf(r->llc, sizeof r->llc, "%.*s", (int)strcspn(line, "\n"), line);
        fclose(f);
        break;
    }
    r->cpus = omp_get_num_procs();
    /* How idle threads wait decides the speed on a shared machine: spinning
     * ones take the CPU from the thread the barrier waits for. */
    static const char *vars[] = {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES"};
    size_t len = 0;
    r->omp_env[0] = 0;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && len < sizeof r->omp_env)
            len += (size_t)snprintf(r->omp_env + len, sizeof r->omp_env - len, "%s%s=%s", len ? " " : "", vars[i], v);
    }
    if (!len) snprintf(r->omp_env, sizeof r->omp_env, "none");
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm)) strftime(r->date, sizeof r->date, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* "124M", "1.6B": the seed's way of naming sizes. */
static const char *fmt_params(long long p, char *buf, size_t cap)
{
    if (p >= 1000000000LL) snprintf(buf, cap, "%.1fB", p / 1e9);
    else snprintf(buf, cap, "%.0fM", p / 1e6);
    return buf;
}

/* Seconds with about three significant digits. */
static const char *fmt_s(double t, char *buf, size_t cap)
{
    snprintf(buf, cap, t < 10 ? "%.2f" : t < 100 ? "%.1f" : "%.0f", t);
    return buf;
}

/* The 1-minute average counts this run's own threads too: one more than
 * the CPUs means someone else was computing. */
static void load_warning(FILE *f, const bench_report *r, double load)
{
    if (load > r->cpus + 1)
        fprintf(f, "\nWARNING: load average up to %.1f on %d CPUs: other programs shared the machine during the run; "
                   "its times are not this machine's%s.\n", load, r->cpus,
                strstr(r->omp_env, "OMP_WAIT_POLICY=passive") ? ""
                : " (OMP_WAIT_POLICY=passive keeps waiting threads from taking the CPU the others need)");
}

void bench_print_table(FILE *f, const bench_report *r)
{
    char p[32], t[32];
    fprintf(f, "| model | params | layers | time (s) | tok/s | ms/token | speed-up | %% of bandwidth bound |\n");
    fprintf(f, "| ----- | -----: | -----: | -------: | ----: | -------: | -------: | -------------------: |\n");
    for (int i = 0; i < r->n_models; i++) {
        const bench_model *m = &r->models[i];
        fmt_params(m->params, p, sizeof p);
        if (m->run[0].ran)
            fprintf(f, "| %s | %s | %d | %s | %.2f | %.1f | | |\n", m->name, p, m->cfg.n_layer,
                    fmt_s(m->run[0].median_s, t, sizeof t), m->run[0].tok_s, m->run[0].ms_tok);
        fprintf(f, "| %s-kv | %s | %d | %s | %.2f | %.1f |", m->name, p, m->cfg.n_layer,
                fmt_s(m->run[1].median_s, t, sizeof t), m->run[1].tok_s, m->run[1].ms_tok);
        if (m->run[0].ran) fprintf(f, " %.2fx |", m->speedup);
        else fprintf(f, " – |");
        fprintf(f, " %.0f%% |\n", 100 * m->frac_bound);
    }
    fprintf(f, "\n%d new tokens after the prompt <|endoftext|> (id 50256), batch 1, temperature 0.8, top_k 200, "
               "seed 1337, window shift; weights %s, %d thread%s; median of %d run%s per row. \"-kv\" rows keep "
               "the KV cache; the others recompute the whole window every token (nanoGPT).\n",
            r->tokens, r->dtype, r->threads, r->threads > 1 ? "s" : "", r->reps, r->reps > 1 ? "s" : "");
    fprintf(f, "Bandwidth bound = read bandwidth / bytes of weights read per token (wte as the tied lm_head, "
               "every h.* tensor, ln_f; not wpe, not the KV cache), the bandwidth measured by streaming a buffer "
               "as large as the weights (so last-level-cache hits count for both) right before and after each "
               "cached run; the %% is the median over runs of each run against its two probes.\n\n");
    for (int i = 0; i < r->n_models; i++) {
        const bench_model *m = &r->models[i];
        fprintf(f, "- %s: %.1f MB of weights per token; %.1f GB/s read (median of %d probes%s) -> bound %.1f tok/s; "
                   "the KV cache adds %.1f MB per token at the average context (%.1f%%, not counted); "
                   "load average %.1f before, %.1f after%s\n",
                m->name, m->weight_bytes / 1e6, m->gbps, m->n_probe, m->probe_is_dram ? ", 1 GiB buffer" : "",
                m->bound_tok_s, m->kv_bytes_avg / 1e6, 100.0 * (double)m->kv_bytes_avg / (double)m->weight_bytes,
                m->load_before, m->load_after,
                m->tokens_identical ? "" : ". WARNING: the runs did not all draw the same tokens");
    }
    double load = 0;
    for (int i = 0; i < r->n_models; i++) {
        if (r->models[i].load_before > load) load = r->models[i].load_before;
        if (r->models[i].load_after > load) load = r->models[i].load_after;
    }
    load_warning(f, r, load);
    fprintf(f, "\n");
}

static void prefill_line(FILE *f, const bench_model *m)
{
    fprintf(f, "prefill %s: %d tokens in %.3f s = %.1f GFLOP/s (%.1f GFLOP) = %.0f%% of the FMA probe (%.1f GFLOP/s)\n",
            m->name, m->prefill_tokens, m->prefill_s, m->prefill_gflops, m->prefill_gflop, 100 * m->frac_fma,
            m->fma_gflops);
}

void bench_print_prefill(FILE *f, const bench_report *r)
{
    for (int i = 0; i < r->n_models; i++) prefill_line(f, &r->models[i]);
}

/* ---- files --------------------------------------------------------------- */

static FILE *open_out(const char *dir, const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) cli_error("bench", "%s: %s", path, strerror(errno));
    return f;
}

static int close_out(FILE *f, const char *path)
{
    if (ferror(f) | (fclose(f) != 0)) return cli_error("bench", "%s: write failed", path);
    return 0;
}

/* The machine lines at the top of bench.md and matrix.md. */
static void md_machine(FILE *f, const bench_report *r)
{
    fprintf(f, "- date: %s\n- CPU: %s (last-level cache %s), %d online\n- threads: %d (OpenMP environment: %s)\n",
            r->date, r->cpu, r->llc, r->cpus, r->threads, r->omp_env);
    fprintf(f, "- measured DRAM read bandwidth: %.1f GB/s (1 GiB buffer; median of %d probes: ", r->gbps_median,
            r->n_dram);
    for (int i = 0; i < r->n_dram; i++) fprintf(f, i ? ", %.1f" : "%.1f", r->dram_gbps[i]);
    fprintf(f, ")\n");
}

static int write_md(const char *dir, const bench_report *r)
{
    char path[4200];
    FILE *f = open_out(dir, "bench.md", path, sizeof path);
    if (!f) return 1;
    fprintf(f, "# kvgpt bench: KV cache vs recompute\n\n");
    md_machine(f, r);
    fprintf(f, "- measured fp32 FMA rate: %.1f GFLOP/s (median of one probe per model)\n", r->fma_median);
    fprintf(f, "- models: %s/SHAPE (synthesized random weights when absent: speed does not depend on values)\n",
            r->models_dir);
    fprintf(f, "- command: `%s`\n\n", r->cmdline);
    bench_print_table(f, r);
    fprintf(f, "Prefill (one forward over a %d-token prompt, median of %d; FLOPs: the four matrices of every "
               "layer for every row, the lm_head for the last row, causal attention):\n\n",
            BENCH_PREFILL_TOKENS, r->reps);
    for (int i = 0; i < r->n_models; i++) {
        fprintf(f, "- ");
        prefill_line(f, &r->models[i]);
    }
    fprintf(f, "\n![time for %d tokens with and without the KV cache](bench.svg)\n", r->tokens);
    return close_out(f, path);
}

static void csv_list(FILE *f, const double *v, int n)
{
    for (int i = 0; i < n; i++) fprintf(f, i ? ";%.6f" : "%.6f", v[i]);
}

static int write_csv(const char *dir, const bench_report *r)
{
    char path[4200];
    FILE *f = open_out(dir, "bench.csv", path, sizeof path);
    if (!f) return 1;
    fprintf(f, "model,params,layers,n_embd,n_head,dtype,threads,kv_cache,tokens,reps,median_s,min_s,max_s,tok_s,"
               "ms_per_token,first_token_s_median,recomputes,speedup,weight_bytes_per_token,kv_bytes_per_token_avg,"
               "arena_bytes,read_gbps,read_gbps_dram,bound_tok_s,frac_bound,tokens_identical,prefill_tokens,prefill_s,prefill_gflop,"
               "prefill_gflops,fma_gflops,frac_fma,load_before,load_after,read_gbps_probes,rep_frac_bound,rep_s,rep_first_token_s\n");
    for (int i = 0; i < r->n_models; i++) {
        const bench_model *m = &r->models[i];
        for (int c = 1; c >= 0; c--) {
            const bench_run *u = &m->run[c];
            if (!u->ran) continue;
            fprintf(f, "%s,%lld,%d,%d,%d,%s,%d,%d,%d,%d,%.6f,%.6f,%.6f,%.4f,%.4f,%.6f,%d,", m->name, m->params,
                    m->cfg.n_layer, m->cfg.n_embd, m->cfg.n_head, r->dtype, r->threads, c, r->tokens, u->n_rep,
                    u->median_s, u->min_s, u->max_s, u->tok_s, u->ms_tok, bench_median(u->rep_first_s, u->n_rep),
                    u->recomputes);
            if (m->run[0].ran) fprintf(f, "%.4f", m->speedup);
            fprintf(f, ",%zu,%zu,%zu,%.3f,%.3f,%.4f,", m->weight_bytes, m->kv_bytes_avg, m->arena_bytes, m->gbps,
                    r->gbps_median, m->bound_tok_s);
            if (c) fprintf(f, "%.4f", m->frac_bound);   /* the bound is for the cached decode only */
            fprintf(f, ",%d,%d,%.6f,%.4f,%.3f,%.3f,%.4f,", m->tokens_identical, m->prefill_tokens, m->prefill_s,
                    m->prefill_gflop, m->prefill_gflops, m->fma_gflops, m->frac_fma);
            fprintf(f, "%.2f,%.2f,", m->load_before, m->load_after);
            csv_list(f, m->probe_gbps, m->n_probe);
            fputc(',', f);
            if (c) csv_list(f, m->rep_frac_bound, u->n_rep);
            fputc(',', f);
            csv_list(f, u->rep_s, u->n_rep);
            fputc(',', f);
            csv_list(f, u->rep_first_s, u->n_rep);
            fputc('\n', f);
        }
    }
    return close_out(f, path);
}

/* ---- the chart ----------------------------------------------------------- */

static void svg_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '&') fputs("&amp;", f);
        else if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else fputc(*s, f);
    }
}

/* The smallest 1, 2 or 5 x 10^k step giving at most 6 gridlines up to top. */
static double nice_step(double top)
{
    double step = 1e-3;
    for (;;) {
        static const double m[3] = {1, 2, 5};
        for (int i = 0; i < 3; i++)
            if (top / (step * m[i]) <= 6.0) return step * m[i];
        step *= 10;
    }
}

enum { SVG_X0 = 70, SVG_TOP = 90, SVG_PH = 260, SVG_BAR = 64, SVG_GAP = 8, SVG_GROUP = 210 };

static void svg_bar(FILE *f, double x, double t, double scale, const char *color)
{
    char buf[32];
    double h = t * scale, y = SVG_TOP + SVG_PH - h;
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\"/>\n", x, y, SVG_BAR, h, color);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\">%s s</text>\n",
            x + SVG_BAR / 2.0, y - 5, fmt_s(t, buf, sizeof buf));
}

static int write_svg(const char *dir, const bench_report *r)
{
    char path[4200], buf[64];
    FILE *f = open_out(dir, "bench.svg", path, sizeof path);
    if (!f) return 1;
    const char *c_no = "#d9822b", *c_kv = "#2b6cb0";
    int W = SVG_X0 + SVG_GROUP * (r->n_models > 0 ? r->n_models : 1) + 30, H = SVG_TOP + SVG_PH + 70;
    if (W < 560) W = 560;
    double tmax = 0;
    for (int i = 0; i < r->n_models; i++)
        for (int c = 0; c < 2; c++)
            if (r->models[i].run[c].ran && r->models[i].run[c].median_s > tmax) tmax = r->models[i].run[c].median_s;
    double step = nice_step(tmax > 0 ? tmax * 1.15 : 1);
    double top = step * (double)(int)(tmax * 1.15 / step + 1);
    double scale = SVG_PH / top;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H, W, H);
    fprintf(f, "<text x=\"%d\" y=\"24\" font-size=\"16\" font-weight=\"bold\">Time to generate %d tokens, with and "
               "without the KV cache</text>\n", SVG_X0 - 50, r->tokens);
    fprintf(f, "<text x=\"%d\" y=\"44\" font-size=\"11\" fill=\"#555\">batch 1, %s weights, %d thread%s, median of %d; ",
            SVG_X0 - 50, r->dtype, r->threads, r->threads > 1 ? "s" : "", r->reps);
    svg_text(f, r->cpu);
    fprintf(f, "</text>\n");
    /* Legend. */
    fprintf(f, "<rect x=\"%d\" y=\"56\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"66\" font-size=\"12\">"
               "no cache (recompute, nanoGPT)</text>\n", SVG_X0, c_no, SVG_X0 + 18);
    fprintf(f, "<rect x=\"%d\" y=\"56\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"66\" font-size=\"12\">"
               "KV cache</text>\n", SVG_X0 + 220, c_kv, SVG_X0 + 238);
    /* Axis and gridlines. */
    for (double v = 0; v <= top + step * 1e-9; v += step) {
        double y = SVG_TOP + SVG_PH - v * scale;
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", SVG_X0, y, W - 20, y);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%g</text>\n", SVG_X0 - 6, y + 4, v);
    }
    fprintf(f, "<text x=\"16\" y=\"%d\" font-size=\"12\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\">"
               "time (s)</text>\n", SVG_TOP + SVG_PH / 2, SVG_TOP + SVG_PH / 2);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", SVG_X0, SVG_TOP + SVG_PH, W - 20,
            SVG_TOP + SVG_PH);
    for (int i = 0; i < r->n_models; i++) {
        const bench_model *m = &r->models[i];
        double gx = SVG_X0 + SVG_GROUP * i + (SVG_GROUP - 2 * SVG_BAR - SVG_GAP) / 2.0;
        double cx = gx + SVG_BAR + SVG_GAP / 2.0, hmax = m->run[1].median_s;
        if (m->run[0].ran) {
            svg_bar(f, gx, m->run[0].median_s, scale, c_no);
            if (m->run[0].median_s > hmax) hmax = m->run[0].median_s;
        }
        svg_bar(f, gx + SVG_BAR + SVG_GAP, m->run[1].median_s, scale, c_kv);
        if (m->run[0].ran)
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">"
                       "%.2fx faster</text>\n", cx, SVG_TOP + SVG_PH - hmax * scale - 24, m->speedup);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"13\">%s</text>\n", cx,
                SVG_TOP + SVG_PH + 20, m->name);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\" fill=\"#555\">%s, %d layers, "
                   "%.1f tok/s cached</text>\n", cx, SVG_TOP + SVG_PH + 38, fmt_params(m->params, buf, sizeof buf),
                m->cfg.n_layer, m->run[1].tok_s);
    }
    fprintf(f, "</svg>\n");
    return close_out(f, path);
}

int bench_mkdir(const char *dir)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return cli_error("bench", "%s: %s", dir, strerror(errno));
    return 0;
}

int bench_write_outputs(const char *dir, const bench_report *r)
{
    if (bench_mkdir(dir) || write_md(dir, r) || write_csv(dir, r) || write_svg(dir, r)) return 1;
    return 0;
}

/* ---- kvgpt bench --matrix ------------------------------------------------ */

static const char *dtype_name(kvgpt_dtype d)
{
    return d == KVGPT_DTYPE_BF16 ? "bf16" : d == KVGPT_DTYPE_F16 ? "f16" : "f32";
}

static const char *same_word(int same)
{
    return same < 0 ? "not checked" : same ? "same" : "DIFFERENT";
}

static void matrix_row_md(FILE *f, const bench_matrix_row *w)
{
    fprintf(f, "| %s | %d | %s | %d | %.2f | %.2f |", w->setting, w->threads, dtype_name(w->dtype), w->batch,
            w->tok_s, w->ms_tok);
    if (w->probed)
        fprintf(f, " %.1f GB/s%s → %.1f tok/s | %.0f%% |", w->gbps, w->probe_is_dram ? " (1 GiB buffer)" : "",
                w->bound_tok_s, 100 * w->frac_bound);
    else
        fprintf(f, " – | – |");
    fprintf(f, " %s |\n", w->ratio_what[0] ? w->ratio_what : "–");
}

static void matrix_tokens_md(FILE *f, const bench_matrix *mx)
{
    const bench_matrix_row *w = mx->rows;
    int reps_same = 1;
    for (int i = 0; i < BENCH_MX_ROWS; i++) reps_same &= w[i].reps_identical;
    fprintf(f, "\ntokens identical: %s (f32 on 1 thread vs all threads: %s; sequence 0 of the batch vs the lone "
               "sequence: %s; every rep of each row: %s)\n", mx->tokens_identical ? "yes" : "no",
            same_word(w[BENCH_MX_ONE_THREAD].same_as_f32), same_word(w[BENCH_MX_BATCHED].same_as_f32),
            reps_same ? "same" : "DIFFERENT");
}

void bench_matrix_print(FILE *f, const bench_matrix *mx)
{
    const bench_report *r = mx->r;
    const bench_matrix_row *w = mx->rows;
    fprintf(f, "# kvgpt bench --matrix: %s\n\n", mx->shape);
    md_machine(f, r);
    fprintf(f, "- load average (1 minute): %.1f before, %.1f after\n", mx->load_before, mx->load_after);
    fprintf(f, "- model: %s/%s, %d layers, n_embd %d%s; weights read per token: f32 %.1f MB, bf16 %.1f MB, "
               "f16 %.1f MB\n", r->models_dir, mx->shape, mx->cfg.n_layer, mx->cfg.n_embd,
            mx->synthesized ? " (synthesized by this run: random weights, same speed)" : "",
            w[BENCH_MX_F32].weight_bytes / 1e6, w[BENCH_MX_BF16].weight_bytes / 1e6, w[BENCH_MX_F16].weight_bytes / 1e6);
    fprintf(f, "- command: `%s`\n\n", r->cmdline);
    fprintf(f, "| setting | threads | dtype | batch | tok/s | ms/token | GB/s bound → tok/s bound | %% of bound | ratio |\n");
    fprintf(f, "| ------- | ------: | ----- | ----: | ----: | -------: | -----------------------: | ---------: | ----- |\n");
    for (int i = 0; i < BENCH_MX_ROWS; i++) matrix_row_md(f, &w[i]);
    matrix_tokens_md(f, mx);
    fprintf(f, "\n%d new tokens per sequence after the prompt <|endoftext|> (id 50256), temperature 0.8, top_k 200, "
               "seed 1337 (sequence i of a batch: 1337 + i), never stopping at end-of-text; median of %d run%s per "
               "row. Every configuration is open at once, warmed up with %d untimed tokens, and the runs are "
               "interleaved (run 1 of every row, then run 2, ...), so a shared machine's drift hits all rows alike; "
               "each ratio is the median over runs of run i against run i of the f32 row. The batched row's tok/s "
               "counts the tokens of all %d sequences; its ratio is the wall time of that one generate over the f32 "
               "row's (one sequence, same tokens). Bound = read bandwidth / weight bytes per token of the row's "
               "dtype, the bandwidth probed on the row's threads over a buffer as large as those weights before "
               "its first run and after each (their median); %% of bound is the median over runs of each run "
               "against the probes either side of it.\n",
            r->tokens, r->reps, r->reps > 1 ? "s" : "", BENCH_WARMUP_TOKENS, w[BENCH_MX_BATCHED].batch);
    load_warning(f, r, mx->load_before > mx->load_after ? mx->load_before : mx->load_after);
    fprintf(f, "\nPrefill (f32, one forward over a %d-token prompt, median of %d after an untimed one; the FMA probe "
               "taken right before it on the same threads):\n\n", mx->prefill[0].tokens, r->reps);
    fprintf(f, "| threads | tokens | s | GFLOP/s | FMA probe GFLOP/s | %% of peak |\n");
    fprintf(f, "| ------: | -----: | -: | ------: | ----------------: | --------: |\n");
    for (int i = 0; i < 2; i++) {
        const bench_matrix_prefill *p = &mx->prefill[i];
        fprintf(f, "| %d | %d | %.3f | %.1f | %.1f | %.0f%% |\n", p->threads, p->tokens, p->s, p->gflops,
                p->fma_gflops, 100 * p->frac_fma);
    }
    fprintf(f, "\n");
}

static int write_matrix_csv(const char *dir, const bench_matrix *mx)
{
    char path[4200];
    FILE *f = open_out(dir, "matrix.csv", path, sizeof path);
    if (!f) return 1;
    const bench_report *r = mx->r;
    fprintf(f, "shape,setting,label,threads,dtype,batch,tokens,reps,median_s,min_s,max_s,tok_s,ms_per_token,"
               "weight_bytes_per_token,read_gbps_before,read_gbps_after,read_gbps,probe_is_dram,bound_tok_s,"
               "frac_bound,ratio,ratio_kind,reps_identical,same_as_f32,tokens_identical,gflop,gflops,fma_gflops,"
               "frac_fma,read_gbps_dram,load_before,load_after,rep_s\n");
    for (int i = 0; i < BENCH_MX_ROWS; i++) {
        const bench_matrix_row *w = &mx->rows[i];
        fprintf(f, "%s,%s,%s,%d,%s,%d,%d,%d,%.6f,%.6f,%.6f,%.4f,%.4f,%zu,", mx->shape, w->setting, w->label,
                w->threads, dtype_name(w->dtype), w->batch, r->tokens, w->run.n_rep, w->run.median_s, w->run.min_s,
                w->run.max_s, w->tok_s, w->ms_tok, w->weight_bytes);
        if (w->probed)
            fprintf(f, "%.3f,%.3f,%.3f,%d,%.4f,%.4f,", w->probe_gbps[0], w->probe_gbps[w->n_probe - 1], w->gbps,
                    w->probe_is_dram, w->bound_tok_s, w->frac_bound);
        else
            fprintf(f, ",,,,,,");
        if (w->ratio_key) fprintf(f, "%.4f,%s,", w->ratio, w->ratio_key);
        else fprintf(f, ",,");
        fprintf(f, "%d,%d,%d,,,,,%.3f,%.2f,%.2f,", w->reps_identical, w->same_as_f32, mx->tokens_identical,
                r->gbps_median, mx->load_before, mx->load_after);
        csv_list(f, w->run.rep_s, w->run.n_rep);
        fputc('\n', f);
    }
    for (int i = 0; i < 2; i++) {
        const bench_matrix_prefill *p = &mx->prefill[i];
        fprintf(f, "%s,prefill,prefill %d thread%s,%d,f32,1,%d,%d,%.6f,,,,,,,,,,,,,,,,,%.4f,%.3f,%.3f,%.4f,%.3f,"
                   "%.2f,%.2f,\n", mx->shape, p->threads, p->threads > 1 ? "s" : "", p->threads, p->tokens, r->reps,
                p->s, p->gflop, p->gflops, p->fma_gflops, p->frac_fma, r->gbps_median, mx->load_before,
                mx->load_after);
    }
    return close_out(f, path);
}

int bench_matrix_write(const char *dir, const bench_matrix *mx)
{
    char path[4200];
    if (bench_mkdir(dir)) return 1;
    FILE *f = open_out(dir, "matrix.md", path, sizeof path);
    if (!f) return 1;
    bench_matrix_print(f, mx);
    if (close_out(f, path)) return 1;
    return write_matrix_csv(dir, mx);
}
