/* tools/main.c — the kvgpt command: one binary, one subcommand per job. */
#include "tools/cli.h"

#include <stdio.h>
#include <string.h>

static const struct { const char *name; int (*fn)(int, char **); const char *what; } cmds[] = {
    {"sample", cmd_sample, "generate text (nanoGPT's sample.py, with a KV cache)"},
    {"chat", cmd_chat, "continue what you type, keeping the session's cache between turns"},
    {"bench", cmd_bench, "the KV cache speed-up table on GPT-2 shapes"},
    {"budget", cmd_budget, "print the memory plan of a model or a GPT-2 shape"},
    {"synth", cmd_synth, "write a random-weight model of a GPT-2 shape"},
    {"logits", cmd_logits, "full forward: logits of every position"},
    {"encode", cmd_encode, "text on stdin -> token ids on stdout"},
    {"decode", cmd_decode, "token ids on stdin -> text on stdout"},
};

/* The version, and the kernels and threads a model opened now would get
 * (cpu_kernels auto, or KVGPT_CPU_KERNELS; threads 0). */
static int version(void)
{
    kvgpt_config c;
    kvgpt_options o;
    kvgpt_plan plan;
    kvgpt_error err = {0, ""};
    kvgpt_shape_config(KVGPT_SHAPE_GPT2, &c);
    kvgpt_options_default(&o);
    kvgpt_status s = kvgpt_plan_config(&c, &o, &plan, &err);
    printf("kvgpt %s\n", KVGPT_VERSION);
    if (s) return cli_status("--version", s, &err);
    printf("kernels: %s; threads: %d\n", plan.kernels, plan.threads);
    return 0;
}

int main(int argc, char **argv)
{
    if (cli_stdout_closed()) return 1;
    if (argc == 2 && strcmp(argv[1], "--version") == 0) return cli_stdout_done("--version", version());
    if (argc >= 2)
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
            if (strcmp(argv[1], cmds[i].name) == 0) return cli_stdout_done(cmds[i].name, cmds[i].fn(argc - 2, argv + 2));
    int help = argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0);
    FILE *f = help ? stdout : stderr;
    if (argc >= 2 && !help) {
        fprintf(stderr, "kvgpt: unknown command \"%s\" (kvgpt --help lists them)\n", argv[1]);
        return 2;
    }
    fprintf(f, "usage: kvgpt COMMAND [options]   (kvgpt COMMAND --help for its options; kvgpt --version)\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].what);
    return cli_stdout_done("help", help ? 0 : 2);
}
