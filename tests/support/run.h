/* tests/support/run.h — running the kvgpt tool and the examples as a user
 * would, from a test: a shell command line, stdout and stderr captured. */
#ifndef KVGPT_TEST_RUN_H
#define KVGPT_TEST_RUN_H

/* The kvgpt binary under test ($KVGPT_TOOL, else build/cpu/kvgpt). */
const char *tr_tool(void);
/* The folder of the built examples, beside the tool (…/examples). */
const char *tr_examples(void);
/* Runs `cmdline` through the shell (stdin: its own redirections, else the
 * test's); stdout into *out and stderr into *err (malloc'd, NUL-terminated).
 * Returns the exit status, 128 + the signal when one killed it. */
int tr_run(const char *cmdline, char **out, char **err);
/* tr_run of "TOOL args". */
int tr_tool_run(const char *args, char **out, char **err);

#endif
