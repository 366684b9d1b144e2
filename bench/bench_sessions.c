/* bench/bench_sessions.c — `kvgpt bench --sessions`: what the step API buys
 * a host, measured on one shape, every setting interleaved rep by rep so the
 * drift of a shared machine hits them alike; ratios are medians of per-rep
 * ratios:
 *   samples  — 10 sequences decoded together against 1, the same tokens each
 *              (`kvgpt sample --num_samples 10`'s cost against one sample);
 *   chat     — a turn (a 10-token line appended, 32 tokens generated) after a
 *              900-token history against after a 10-token one: the history is
 *              kept in the cache, never computed again;
 *   prefix   — the prefill of one 100-token prompt for 8 sequences against
 *              for 1: the prompt is computed once and copied. */
#include "bench/bench.h"
#include "tools/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESS_SAMPLES 10
#define SESS_HISTORY_LONG 900
#define SESS_HISTORY_SHORT 10
#define SESS_TURN_PROMPT 10
#define SESS_TURN_TOKENS 32
#define SESS_PREFIX 100
#define SESS_PREFIX_SEQ 8

static void ids_for(int32_t *ids, int n, int V, uint32_t seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        ids[i] = (int32_t)((seed >> 8) % (uint32_t)V);
    }
}

/* A generation of `tokens` new tokens for n_seq sequences from prompt; its seconds. */
static int timed(kvgpt_model *m, const int32_t *prompt, int n_prompt, int n_seq, int tokens, int append, double *total,
                 double *prefill)
{
    kvgpt_gen_options g;
    bench_gen_defaults(&g, tokens, 1);
    g.n_seq = n_seq;
    g.append = append;
    kvgpt_gen_result res;
    kvgpt_error err = {0};
    double t0 = bench_now();
    kvgpt_status s = kvgpt_generate(m, prompt, n_prompt, &g, &res, &err);
    *total = bench_now() - t0;
    if (prefill) *prefill = res.prefill_s;
    return s ? cli_status("bench", s, &err) : 0;
}

/* The chat turn after a history of n tokens put in slot 0 untimed. */
static int chat_turn(kvgpt_model *m, const int32_t *history, int n, const int32_t *line, double *seconds)
{
    kvgpt_error err = {0};
    kvgpt_status s = kvgpt_seq_reset(m, 0, &err);
    int32_t seq[SESS_HISTORY_LONG] = {0};
    kvgpt_batch b = {n, history, seq, NULL};
    int8_t none[SESS_HISTORY_LONG] = {0};
    b.logits = none;
    if (!s) s = kvgpt_decode(m, &b, NULL, &err);
    if (s) return cli_status("bench", s, &err);
    return timed(m, line, SESS_TURN_PROMPT, 1, SESS_TURN_TOKENS, 1, seconds, NULL);
}

static void row(FILE *f, const char *what, const char *a, double ta, const char *b, double tb, double ratio,
                const char *target)
{
    fprintf(f, "| %s | %s | %.3f s | %s | %.3f s | %.2f | %s |\n", what, a, ta, b, tb, ratio, target);
}

int bench_sessions(const char *models, const char *shape, int reps, int threads, const char *out)
{
    char dir[4096];
    int synthesized;
    if (bench_ensure_model(models, shape, dir, sizeof dir, &synthesized)) return 1;
    kvgpt_model *m = NULL;
    if (bench_open(dir, threads, KVGPT_DTYPE_F32, SESS_SAMPLES, &m) || bench_warmup(m)) {
        kvgpt_close(m);
        return 1;
    }
    const int V = kvgpt_model_config(m)->vocab_size;
    int32_t eot = BENCH_PROMPT_TOKEN % V, history[SESS_HISTORY_LONG], line[SESS_TURN_PROMPT], prompt[SESS_PREFIX];
    ids_for(history, SESS_HISTORY_LONG, V, 1);
    ids_for(line, SESS_TURN_PROMPT, V, 2);
    ids_for(prompt, SESS_PREFIX, V, 3);
    double t1[BENCH_MAX_REPS], t10[BENCH_MAX_REPS], rs[BENCH_MAX_REPS];
    double cs[BENCH_MAX_REPS], cl[BENCH_MAX_REPS], rc_[BENCH_MAX_REPS];
    double p1[BENCH_MAX_REPS], p8[BENCH_MAX_REPS], rp[BENCH_MAX_REPS], dummy;
    const int tokens = 64;
    int rc = 0;
    for (int r = 0; r < reps && !rc; r++) {
        rc = timed(m, &eot, 1, 1, tokens, 0, &t1[r], NULL) || timed(m, &eot, 1, SESS_SAMPLES, tokens, 0, &t10[r], NULL) ||
             chat_turn(m, history, SESS_HISTORY_SHORT, line, &cs[r]) ||
             chat_turn(m, history, SESS_HISTORY_LONG, line, &cl[r]) ||
             timed(m, prompt, SESS_PREFIX, 1, 1, 0, &dummy, &p1[r]) ||
             timed(m, prompt, SESS_PREFIX, SESS_PREFIX_SEQ, 1, 0, &dummy, &p8[r]);
        if (rc) break;
        rs[r] = t10[r] / t1[r];
        rc_[r] = cl[r] / cs[r];
        rp[r] = p8[r] / p1[r];
        fprintf(stderr, "kvgpt bench --sessions: rep %d: samples 10/1 %.2f, chat 900/10 %.2f, prefix 8/1 %.2f (load %.1f)\n",
                r + 1, rs[r], rc_[r], rp[r], bench_load_avg());
    }
    kvgpt_close(m);
    if (rc) return rc;
    char path[4200];
    snprintf(path, sizeof path, "%s/sessions.md", out);
    FILE *files[2] = {stdout, bench_mkdir(out) ? NULL : fopen(path, "w")};
    for (int i = 0; i < 2; i++) {
        FILE *f = files[i];
        if (!f) continue;
        fprintf(f, "| %s, f32, %d threads | setting | median | against | median | ratio (median of reps) | target |\n",
                shape, bench_threads(threads));
        fprintf(f, "| --- | --- | -: | --- | -: | -: | --- |\n");
        char a[64], b[64];
        snprintf(a, sizeof a, "%d samples x %d tokens", SESS_SAMPLES, tokens);
        snprintf(b, sizeof b, "1 sample x %d tokens", tokens);
        row(f, "samples together", a, bench_median(t10, reps), b, bench_median(t1, reps), bench_median(rs, reps),
            "<= 2.0");
        snprintf(a, sizeof a, "after %d tokens", SESS_HISTORY_LONG);
        snprintf(b, sizeof b, "after %d tokens", SESS_HISTORY_SHORT);
        row(f, "chat turn (+10, 32 new)", a, bench_median(cl, reps), b, bench_median(cs, reps), bench_median(rc_, reps),
            "<= 1.20");
        snprintf(a, sizeof a, "%d sequences", SESS_PREFIX_SEQ);
        row(f, "prefill of a 100-token prompt", a, bench_median(p8, reps), "1 sequence", bench_median(p1, reps),
            bench_median(rp, reps), "~1 (computed once)");
        fprintf(f, "\n(`kvgpt bench --sessions --shapes %s --reps %d`, medians of %d; load average %.1f at the end)\n", shape,
                reps, reps, bench_load_avg());
    }
    if (files[1]) {
        if (fclose(files[1]) != 0) return cli_error("bench", "%s: cannot write", path);
        fprintf(stderr, "kvgpt bench: wrote %s\n", path);
    }
    return 0;
}
