/* tools/cmd_chat.c — `kvgpt chat`: a session that keeps its cache between
 * turns. Each line read is appended to the session and the model continues
 * it (to the stop string, end of text or --max_new_tokens); the history is
 * never computed again, so a turn costs the same after 10 tokens or 900.
 * Commands: /reset, /save FILE, /load FILE (the state API's checked blob),
 * /quit. Works on piped stdin as well as at a terminal. */
#include "tools/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHAT_MAX_LINE (1 << 16)

typedef struct {
    const kvgpt_model *m;
    int failed;
} chat_out;

static int on_text(void *user, int seq, const char *text, size_t len)
{
    chat_out *o = user;
    (void)seq;
    if (fwrite(text, 1, len, stdout) != len) o->failed = 1;
    fflush(stdout);
    return 0;
}

static int save_state(kvgpt_model *m, const char *path)
{
    size_t cap = kvgpt_seq_state_bytes(m, kvgpt_seq_length(m, 0)), n = 0;
    unsigned char *blob = malloc(cap ? cap : 1);
    kvgpt_error err = {0};
    kvgpt_status s = blob ? kvgpt_seq_state_save(m, 0, blob, cap, &n, &err) : KVGPT_ERR_NOMEM;
    int rc = 0;
    if (s) {
        rc = cli_status("chat", s, &err);
    } else {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(blob, 1, n, f) != n || fclose(f) != 0) rc = cli_error("chat", "%s: cannot write", path);
        else fprintf(stderr, "kvgpt chat: saved %d tokens (%zu bytes) to %s\n", kvgpt_seq_length(m, 0), n, path);
    }
    free(blob);
    return rc;
}

static int load_state(kvgpt_model *m, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error("chat", "%s: cannot open", path);
    size_t cap = kvgpt_seq_state_bytes(m, kvgpt_model_plan(m)->context) + 1, n;
    unsigned char *blob = malloc(cap);
    n = blob ? fread(blob, 1, cap, f) : 0;
    fclose(f);
    kvgpt_error err = {0};
    kvgpt_status s = !blob ? KVGPT_ERR_NOMEM : n == cap ? KVGPT_ERR_STATE : kvgpt_seq_state_load(m, 0, blob, n, &err);
    free(blob);
    if (s == KVGPT_ERR_STATE && n == cap) return cli_error("chat", "%s: larger than any state of this model", path);
    if (s) return cli_status("chat", s, &err);
    fprintf(stderr, "kvgpt chat: loaded %d tokens from %s\n", kvgpt_seq_length(m, 0), path);
    return 0;
}

/* One turn: the line appended, the continuation printed. */
static int turn(kvgpt_model *m, kvgpt_gen_options *g, const char *line, size_t len, int32_t *ids, int k)
{
    kvgpt_error err = {0};
    int n = 0;
    kvgpt_status s = kvgpt_encode(m, line, len, ids, CHAT_MAX_LINE, &n, &err);
    if (s) return cli_status("chat", s, &err);
    chat_out *o = g->user;
    int before = kvgpt_seq_length(m, 0);
    kvgpt_gen_result res;
    s = kvgpt_generate(m, ids, n, g, &res, &err);
    on_text(o, 0, "\n", 1);   /* the reply's line ends (a newline stop string is not printed) */
    if (s) return cli_status("chat", s, &err);
    double t = res.prefill_s + res.decode_s;
    fprintf(stderr, "kvgpt chat: turn %d: %d prompt tokens after %d held (%.1f ms), %d new in %.3f s%s%s\n", k, n,
            before, res.prefill_s * 1e3, res.n_new[0], t, res.cropped[0] ? " [oldest tokens dropped]" : "",
            res.stop[0] == KVGPT_STOP_STRING ? " [stop string]" : "");
    return 0;
}

int cmd_chat(int argc, char **argv)
{
    const char *model = NULL, *dtype = "f32", *kv_dtype = "f32", *stop = "\n";
    int max_new = 100, top_k = 200, threads = 0, context = 0, help = 0;
    float temperature = 0.8f, top_p = 1.0f, rep = 1.0f;
    uint64_t seed = 1337;
    const cli_opt opts[] = {
        {"model", OPT_STR, &model, "model folder"},
        {"max_new_tokens", OPT_INT, &max_new, "new tokens per turn at most (default 100)"},
        {"temperature", OPT_FLOAT, &temperature, "0 = greedy (default 0.8)"},
        {"top_k", OPT_INT, &top_k, "keep the k most likely; 0 = off (default 200)"},
        {"top_p", OPT_FLOAT, &top_p, "nucleus sampling, (0, 1] (default 1 = off)"},
        {"repetition-penalty", OPT_FLOAT, &rep, "HF's repetition penalty (default 1 = off)"},
        {"stop", OPT_STR, &stop, "a turn ends where this text appears (default a newline; \"\" = none)"},
        {"seed", OPT_U64, &seed, "turn k (1, 2, ...) draws from seed + k (default 1337)"},
        {"context", OPT_INT, &context, "positions the session keeps (default block_size)"},
        {"threads", OPT_INT, &threads, "CPU threads (default: all)"},
        {"dtype", OPT_STR, &dtype, "weights in memory: f32 | f16 | bf16"},
        {"kv-dtype", OPT_STR, &kv_dtype, "KV cache: f32 | f16 | bf16"},
        {"help", OPT_FLAG, &help, "this text"},
    };
    int n_opts = (int)(sizeof opts / sizeof opts[0]);
    if (cli_parse("chat", argc, argv, opts, n_opts)) return 2;
    if (help) {
        cli_usage("chat", "Continues each line you type; the session's cache is kept between turns.\n"
                          "  /reset forgets the session, /save FILE and /load FILE keep it, /quit ends.",
                  opts, n_opts);
        return 0;
    }
    if (!model) return cli_error("chat", "--model DIR is required");
    int wd = cli_dtype(dtype), kd = cli_dtype(kv_dtype);
    if (wd < 0 || kd < 0) return cli_error("chat", "--dtype and --kv-dtype must be f32, f16 or bf16");
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = model;
    o.threads = threads;
    o.context = context;
    o.weight_dtype = (kvgpt_dtype)wd;
    o.kv_dtype = (kvgpt_dtype)kd;
    kvgpt_model *m = NULL;
    kvgpt_error err = {0};
    kvgpt_status s = kvgpt_open(&o, NULL, 0, &m, &err);
    if (s) return cli_status("chat", s, &err);
    int rc = 0;
    chat_out out = {m, 0};
    const char *stops[1] = {stop};
    kvgpt_gen_options g;
    kvgpt_gen_options_default(&g);
    g.max_new_tokens = max_new;
    g.temperature = temperature;
    g.top_k = top_k;
    g.top_p = top_p;
    g.repetition_penalty = rep;
    g.stop = stop[0] ? stops : NULL;
    g.n_stop = stop[0] ? 1 : 0;
    g.append = 1;
    g.on_text = on_text;
    g.user = &out;
    char *line = malloc(CHAT_MAX_LINE + 2);
    int32_t *ids = malloc(sizeof(int32_t) * CHAT_MAX_LINE);
    if (!line || !ids) rc = cli_error("chat", "out of memory");
    if (!kvgpt_has_tokenizer(m)) rc = cli_error("chat", "%s has no tokenizer files", model);
    if (!rc && (s = kvgpt_gen_validate(m, (const int32_t[]){0}, 1, &g, &err))) rc = cli_status("chat", s, &err);
    const int tty = isatty(STDIN_FILENO);
    for (int k = 1; !rc;) {
        if (tty) fputs("> ", stderr);
        if (!fgets(line, CHAT_MAX_LINE + 2, stdin)) break;
        size_t len = strlen(line);
        if (len > CHAT_MAX_LINE) {
            rc = cli_error("chat", "a line longer than %d bytes", CHAT_MAX_LINE);
            break;
        }
        if (strncmp(line, "/quit", 5) == 0) break;
        char *arg = line[0] == '/' ? strchr(line, ' ') : NULL;   /* a command's argument */
        if (arg) {
            arg++;
            arg[strcspn(arg, "\r\n")] = 0;
        }
        if (strncmp(line, "/reset", 6) == 0) {
            kvgpt_seq_reset(m, 0, &err);
            fprintf(stderr, "kvgpt chat: the session is empty\n");
        } else if (strncmp(line, "/save ", 6) == 0 && arg && *arg) {
            save_state(m, arg);
        } else if (strncmp(line, "/load ", 6) == 0 && arg && *arg) {
            load_state(m, arg);
        } else if (line[0] == '/') {
            fprintf(stderr, "kvgpt chat: commands: /reset, /save FILE, /load FILE, /quit\n");
        } else {
            g.seed = seed + (uint64_t)k;
            rc = turn(m, &g, line, len, ids, k++);
        }
        if (out.failed) rc = cli_error("chat", "writing to stdout failed");
    }
    free(line);
    free(ids);
    kvgpt_close(m);
    return rc;
}
