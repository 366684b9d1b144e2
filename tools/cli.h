/* tools/cli.h — what the kvgpt subcommands share: option tables, number
 * parsing with clear errors, and opening a model from the common options. */
#ifndef KVGPT_CLI_H
#define KVGPT_CLI_H

#include <stddef.h>
#include <stdint.h>
#include "kvgpt.h"

typedef enum { OPT_STR, OPT_INT, OPT_FLOAT, OPT_U64, OPT_SIZE, OPT_FLAG } cli_type;

typedef struct {
    const char *name;     /* without the leading "--" */
    cli_type type;
    void *dst;            /* const char **, int *, float *, uint64_t *, size_t *, int * */
    const char *help;
} cli_opt;

/* Parses "--name value" and "--name=value"; returns 0, or prints
 * "kvgpt CMD: what is wrong" to stderr and returns 2. */
int cli_parse(const char *cmd, int argc, char **argv, const cli_opt *opts, int n_opts);
void cli_usage(const char *cmd, const char *summary, const cli_opt *opts, int n_opts);
/* Prints "kvgpt CMD: message" and returns 1. */
int cli_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prints a library failure: "kvgpt CMD: message (STATUS)"; returns 1. */
int cli_status(const char *cmd, kvgpt_status s, const kvgpt_error *err);

/* "f32" | "f16" | "bf16" → dtype; -1 when unknown. */
int cli_dtype(const char *s);
/* "on" → 1, "off" → 0; -1 otherwise. */
int cli_on_off(const char *s);
/* Parses "1,2,3" into ids; returns the count, or -1 with a message. */
int cli_ids(const char *cmd, const char *s, int32_t *ids, int cap);

/* "--model DIR is required" / "an empty folder name": prints and returns 1; 0 when model is a name. */
int cli_need_model(const char *cmd, const char *model);
/* Why a model folder has no tokenizer (a vocab.json without its merges.txt
 * is named), then what to do instead; returns 1. */
int cli_no_tokenizer(const char *cmd, const char *dir, const char *instead);
/* 1 (with a message) when standard output is closed: a file opened later
 * would take its descriptor and receive the output. */
int cli_stdout_closed(void);
/* Flushes stdout; a write error (a full disk, a closed pipe) is reported and
 * makes the exit status non-zero. Returns the status to exit with. */
int cli_stdout_done(const char *cmd, int rc);

int cmd_budget(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_encode(int argc, char **argv);
int cmd_decode(int argc, char **argv);

#endif
