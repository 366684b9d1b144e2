/* examples/chat.c — a multi-turn host: one session (slot 0) kept across
 * turns, each turn's text appended to it and continued, so a turn's cost
 * does not grow with the history (the history is never computed again).
 * Prints each turn and its time; the last line compares the first turn's
 * time with the last's. Nothing but kvgpt.h and the C library.
 *
 *   usage: chat MODEL_DIR [TURNS]     (e.g. chat fixtures/gpt2_tiny_hf 6)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvgpt.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The reply's text as it comes, in whole characters. */
static int print_text(void *user, int seq, const char *text, size_t len)
{
    (void)user;
    (void)seq;
    fwrite(text, 1, len, stdout);
    return 0;
}

static int fail(const char *what, const kvgpt_error *err)
{
    fprintf(stderr, "chat: %s: %s\n  %s\n", what, kvgpt_strerror(err->status), err->msg);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: chat MODEL_DIR [TURNS]\n");
        return 2;
    }
    int turns = argc > 2 ? atoi(argv[2]) : 6;
    static const char *const lines[] = {"Hello there.\n", "How are you today?\n", "Tell me about the sea.\n",
                                        "And the mountains?\n", "What else?\n", "Goodbye.\n"};
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = argv[1];
    kvgpt_model *m;
    kvgpt_error err;
    if (kvgpt_open(&o, NULL, 0, &m, &err)) return fail("open", &err);
    if (!kvgpt_has_tokenizer(m)) {
        fprintf(stderr, "chat: %s has no tokenizer\n", argv[1]);
        kvgpt_close(m);
        return 1;
    }
    kvgpt_gen_options g;
    kvgpt_gen_options_default(&g);
    g.max_new_tokens = 16;
    g.append = 1;            /* each turn goes after what the session holds */
    g.on_text = print_text;
    const char *stops[1] = {"\n"};
    g.stop = stops;
    g.n_stop = 1;
    double first = 0.0, last = 0.0;
    int rc = 0;
    for (int k = 0; k < turns && !rc; k++) {
        const char *line = lines[k % 6];
        int32_t ids[256];
        int n;
        if (kvgpt_encode(m, line, strlen(line), ids, 256, &n, &err)) {
            rc = fail("encode", &err);
            break;
        }
        int held = kvgpt_seq_length(m, 0);
        printf("> %s", line);
        g.seed = 1000 + (uint64_t)k;
        kvgpt_gen_result res;
        double t0 = now_s();
        kvgpt_status s = kvgpt_generate(m, ids, n, &g, &res, &err);
        double t = now_s() - t0;
        if (s) {
            rc = fail("generate", &err);
            break;
        }
        printf("\n  [turn %d: %d tokens held before it, %d new, %.2f ms]\n", k + 1, held, res.n_new[0], t * 1e3);
        if (k == 0) first = t / (n + res.n_new[0]);
        last = t / (n + res.n_new[0]);
    }
    if (!rc)
        printf("time per token: first turn %.3f ms, last turn %.3f ms (%d tokens of history)\n", first * 1e3, last * 1e3,
               kvgpt_seq_length(m, 0));
    kvgpt_close(m);
    return rc;
}
