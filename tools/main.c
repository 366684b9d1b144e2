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

int main(int argc, char **argv)
{
    if (cli_stdout_closed()) return 1;
    if (argc >= 2)
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
            if (strcmp(argv[1], cmds[i].name) == 0) return cli_stdout_done(cmds[i].name, cmds[i].fn(argc - 2, argv + 2));
    int help = argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0);
    FILE *f = help ? stdout : stderr;
    if (argc >= 2 && !help) {
        fprintf(stderr, "kvgpt: unknown command \"%s\" (kvgpt --help lists them)\n", argv[1]);
        return 2;
    }
    fprintf(f, "usage: kvgpt COMMAND [options]   (kvgpt COMMAND --help for its options)\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].what);
    return cli_stdout_done("help", help ? 0 : 2);
}
