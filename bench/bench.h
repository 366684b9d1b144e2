/* bench/bench.h — what `kvgpt bench` measures (bench/cmd_bench.c, and
 * bench/bench_matrix.c for --matrix), the helpers both share, the machine
 * probes (bench/probe.c), and what the reports are written from
 * (bench/bench_report.c). */
#ifndef KVGPT_BENCH_H
#define KVGPT_BENCH_H

#include <stddef.h>
#include <stdio.h>
#include "kvgpt.h"

#define BENCH_MAX_SHAPES 8
#define BENCH_MAX_REPS 100
#define BENCH_MAX_PROBES (BENCH_MAX_REPS + 1)
#define BENCH_MAX_DRAM (2 * BENCH_MAX_SHAPES + 2)
#define BENCH_PREFILL_TOKENS 128
#define BENCH_DRAM_BYTES ((size_t)1 << 30)
#define BENCH_PROBE_REPS 5
#define BENCH_FMA_SECONDS 0.3
#define BENCH_PROGRESS_S 0.5
#define BENCH_WARMUP_TOKENS 4
#define BENCH_PROMPT_TOKEN 50256          /* <|endoftext|>: the one-token prompt of every decode run */

/* One cache setting of one model: R timed generations of N tokens. */
typedef struct {
    int ran;
    int n_rep;
    double rep_s[BENCH_MAX_REPS];         /* wall time of kvgpt_generate, N tokens */
    double rep_first_s[BENCH_MAX_REPS];   /* the first token (a 1-token prefill) */
    double median_s, min_s, max_s;
    double tok_s, ms_tok;                 /* N / median_s, and its inverse */
    int recomputes;                       /* window recomputations of the last rep */
} bench_run;

typedef struct {
    char name[32];
    kvgpt_config cfg;
    long long params;                     /* every parameter of the checkpoint */
    size_t weight_bytes;                  /* weights read per decoded token (see cmd_bench.c) */
    size_t kv_bytes_avg;                  /* KV read per token at the average context: not counted */
    size_t arena_bytes;
    int synthesized;                      /* this run wrote the model folder */
    int n_probe;
    double probe_gbps[BENCH_MAX_PROBES];  /* read bandwidth of a weight-sized buffer: before each
                                             cached rep, and after the last */
    double gbps;                          /* their median */
    double rep_frac_bound[BENCH_MAX_REPS];/* each cached rep against the probes either side of it */
    int probe_is_dram;                    /* no weight-sized buffer could be had: the DRAM probe stood in */
    double load_before, load_after;       /* 1-minute load average (-1: unknown) */
    double bound_tok_s;                   /* gbps / weight_bytes */
    double frac_bound;                    /* median of rep_frac_bound */
    bench_run run[2];                     /* [0] without the cache, [1] with it */
    double speedup;                       /* ratio of the medians; 0 when no-cache was skipped */
    int tokens_identical;                 /* every rep of both settings drew the same tokens */
    int prefill_tokens;
    double prefill_s, prefill_gflop, prefill_gflops;
    double fma_gflops, frac_fma;          /* FMA probe taken right before the prefill */
} bench_model;

typedef struct {
    const char *dtype;
    const char *models_dir;
    const char *cmdline;
    int tokens, reps, threads, nocache;
    int cpus;                             /* processors online */
    char cpu[128];
    char date[48];
    char llc[32];                         /* last-level cache size, as sysfs says it */
    char omp_env[256];                    /* the OpenMP variables set, or "none" */
    int n_dram;
    double dram_gbps[BENCH_MAX_DRAM];     /* 1 GiB read probes: start, and after each model */
    double gbps_median, fma_median;       /* DRAM probes; FMA probes (one per model) */
    int n_models;
    bench_model models[BENCH_MAX_SHAPES];
} bench_report;

/* ---- the machine probes (bench/probe.c): the benchmarks' denominators ---- */

/* Threads the probes use for nt (nt > 0: nt; else the OpenMP maximum), as
 * ops_threads does for the kernels. */
int bench_threads(int nt);
/* fp32 multiply-add peak in GFLOP/s (2 flops per FMA lane): independent
 * accumulator chains on every one of nt threads for about `seconds`. */
double bench_probe_fma_gflops(int nt, double seconds);
/* Streaming-read bandwidth in GB/s (1e9 bytes/s) over the caller's buffer
 * (it should be much larger than the last-level cache to measure memory),
 * split in contiguous line-aligned ranges over nt threads; the best of reps. */
double bench_probe_read_gbps(const void *buf, size_t bytes, int nt, int reps);

/* ---- the helpers of the measuring side (bench/cmd_bench.c) ---------------- */

/* Seconds on the monotonic clock. */
double bench_now(void);

/* A buffer for the read-bandwidth probes, every page written once. */
typedef struct {
    unsigned char *buf;
    size_t bytes;
} bench_buf;

/* 0, or 1 when malloc failed (buf is then NULL). */
int bench_buf_init(bench_buf *b, size_t bytes);
/* bench_probe_read_gbps over the whole buffer on `threads` threads (0: all). */
double bench_probe_read(const bench_buf *b, int threads);
/* One timed run of tok_s against the bound of the two probes either side of
 * it (the last two of probes[0..n)): tok_s / (mean GB/s / weight bytes). */
double bench_frac_of_bound(double tok_s, const double *probes, int n, size_t weight_bytes);
/* The 1-minute load average; -1 when unknown. */
double bench_load_avg(void);
/* dir = models/shape; writes a random-weight model there when it has no
 * model.safetensors (*synthesized = 1). 0, or 1 after printing why. */
int bench_ensure_model(const char *models, const char *shape, char *dir, size_t cap, int *synthesized);
/* Bytes of weights one decode step reads, from the model's plan. */
size_t bench_weight_bytes_per_token(const kvgpt_plan *p);
/* FLOPs of one forward over n positions (logits of the last row only). */
double bench_forward_flops(const kvgpt_config *c, int n);
/* nanoGPT sample.py's sampling (temperature 0.8, top_k 200, seed 1337),
 * exactly `tokens` new tokens (never stopping at end-of-text), one sequence. */
void bench_gen_defaults(kvgpt_gen_options *g, int tokens, int use_cache);
/* Opens dir for benchmarking (no tokenizer); 0, or 1 after printing why. */
int bench_open(const char *dir, int threads, kvgpt_dtype dtype, int batch, kvgpt_model **m);
/* The untimed BENCH_WARMUP_TOKENS-token generation run after opening. 0, or 1 after printing why. */
int bench_warmup(kvgpt_model *m);
/* Median seconds of reps forwards of min(BENCH_PREFILL_TOKENS, context)
 * tokens (ids i % vocab) after one untimed one; *n gets the token count.
 * logits holds vocab floats. 0, or 1 after printing why. */
int bench_time_prefill(kvgpt_model *m, int reps, float *logits, int *n, double *median_s);

/* Progress on stderr while a run generates; the tokens of sequence 0 land in toks. */
typedef struct {
    const char *model, *mode;
    int rep, reps, n;
    int count, shown;
    double t_next;
    int32_t *toks;           /* this rep's tokens (n of them) */
} bench_progress;

/* kvgpt_token_fn for a bench_progress. */
int bench_on_token(void *user, int seq, int32_t tok);
/* One timed kvgpt_generate of g (its on_token and user are set to pr) from
 * the prompt BENCH_PROMPT_TOKEN, rep number `rep` (1-based): *seconds gets
 * its wall time. Fails unless every sequence made g->max_new_tokens tokens.
 * 0, or 1 after printing why. */
int bench_timed_generate(kvgpt_model *m, kvgpt_gen_options *g, bench_progress *pr, int rep, double *seconds,
                         kvgpt_gen_result *res);
/* "kvgpt bench: MODEL MODE rep i/n: N tokens in T s = X tok/s" on stderr. */
void bench_log_rep(const bench_progress *pr, double seconds);
/* Median, min, max, tok/s and ms/token of r's n_rep reps of `tokens` tokens. */
void bench_run_summarize(bench_run *r, int tokens);

/* ---- kvgpt bench --matrix (bench/bench_matrix.c) -------------------------- */

#define BENCH_MATRIX_BATCH 10
enum { BENCH_MX_F32, BENCH_MX_BF16, BENCH_MX_F16, BENCH_MX_ONE_THREAD, BENCH_MX_BATCHED, BENCH_MX_ROWS };

/* One configuration of the matrix: the model opened once, R timed generations,
 * rep i of every row run before rep i + 1 of any. */
typedef struct {
    const char *setting;                  /* "decode", "batched" */
    char label[40];                       /* "f32", "f32 1 thread", ...: progress and CSV */
    int threads, batch;
    kvgpt_dtype dtype;
    bench_run run;                        /* wall time of each kvgpt_generate (all batch sequences) */
    double tok_s, ms_tok;                 /* batch x tokens / median_s, and its inverse */
    size_t weight_bytes;                  /* weights read per decode step, this dtype */
    int probed;                           /* bandwidth probed (every batch-1 row) */
    int probe_is_dram;                    /* no weight-sized buffer: the 1 GiB one stood in */
    int n_probe;
    double probe_gbps[BENCH_MAX_PROBES];  /* footprint probes: before the first rep, after each */
    double gbps;                          /* their median */
    double rep_frac[BENCH_MAX_REPS];      /* each rep against the probes either side of it */
    double bound_tok_s, frac_bound;       /* gbps / weight_bytes; median of rep_frac */
    double rep_ratio[BENCH_MAX_REPS];     /* ratio of rep i to rep i of the reference row */
    double ratio;                         /* their median; 0 for the reference row (f32, all threads) */
    const char *ratio_key;                /* what ratio is, for the CSV */
    char ratio_what[48];                  /* and for people: "0.93× f32" */
    int reps_identical;                   /* every rep drew the same tokens (sequence 0) */
    int same_as_f32;                      /* drew row BENCH_MX_F32's tokens: 1, 0, or -1 not checked */
} bench_matrix_row;

typedef struct {
    int threads, tokens;
    double s, gflop, gflops, fma_gflops, frac_fma;
} bench_matrix_prefill;

typedef struct {
    const bench_report *r;                /* machine, command, tokens, reps, threads, DRAM probes */
    char shape[32];
    kvgpt_config cfg;
    int synthesized;
    double load_before, load_after;
    bench_matrix_row rows[BENCH_MX_ROWS];
    bench_matrix_prefill prefill[2];      /* all threads, 1 thread */
    int tokens_identical;                 /* every check of reps_identical and same_as_f32 held */
} bench_matrix;

/* Measures the matrix for one shape under r's settings (r->threads threads,
 * r->tokens, r->reps); dram stands in for a probe buffer that cannot be had.
 * Every configuration is open at once and their reps are interleaved, so the
 * drift of a shared machine hits all rows alike. 0, or 1 after printing why. */
int bench_matrix_measure(bench_matrix *mx, const bench_report *r, const char *shape, const bench_buf *dram);
/* The markdown document of the matrix: machine, decode table, tokens check, prefill table. */
void bench_matrix_print(FILE *f, const bench_matrix *mx);
/* matrix.md and matrix.csv under dir (created); 0, or 1 after printing why. */
int bench_matrix_write(const char *dir, const bench_matrix *mx);

/* ---- the reports (bench/bench_report.c) ---------------------------------- */

/* Median of v[0..n-1] (n >= 1); reorders a copy, not v. */
double bench_median(const double *v, int n);
/* Fills cpu (from /proc/cpuinfo), llc (sysfs), cpus, omp_env and date (UTC). */
void bench_machine_info(bench_report *r);
/* The markdown table (the seed's, plus ms/token and the bound) and the notes under it. */
void bench_print_table(FILE *f, const bench_report *r);
/* One line per model: the 128-token prefill against the FMA probe. */
void bench_print_prefill(FILE *f, const bench_report *r);
/* bench.md, bench.csv, bench.svg under dir (created); 0, or 1 after printing why. */
int bench_write_outputs(const char *dir, const bench_report *r);
/* The output folder, made when missing (0), or a message and 1. */
int bench_mkdir(const char *dir);
/* --sessions (bench/bench_sessions.c): batched samples, chat turns, a shared prefix. */
int bench_sessions(const char *models, const char *shape, int reps, int threads, const char *out);

#endif
