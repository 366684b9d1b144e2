/* tools/bench.h — what `kvgpt bench` measures (tools/cmd_bench.c) and what
 * its reports are written from (tools/bench_report.c). */
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

#endif
