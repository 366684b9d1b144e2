/* tests/support/fixtures.h — finding and reading the reference fixtures
 * (../shared/fixtures from the repository root, or $KVGPT_FIXTURES). */
#ifndef KVGPT_TEST_FIXTURES_H
#define KVGPT_TEST_FIXTURES_H

#include <stddef.h>
#include <stdint.h>
#include "kvgpt.h"

/* The fixtures folder, or NULL (with a note on stderr, once) when absent. */
const char *tf_dir(void);
/* (tf_skip and tf_need_fixtures are in suite.c: they need Check.)
 * Marks the running test as skipped: prints "SKIP: test: why", which the
 * closing line of `make test` counts as skipped rather than passed. The test
 * then returns without checking anything. */
void tf_skip(const char *test, const char *why);
/* For a test that needs the fixtures: 1 when they are here. Else 0 after
 * tf_skip, or, when KVGPT_REQUIRE_FIXTURES is set (CI has them), a failure. */
int tf_need_fixtures(const char *test);
/* tf_dir()/rel into a static buffer (one per call site is fine: copy it if you keep it). */
const char *tf_path(const char *rel);
/* Whole file, malloc'd and NUL-terminated; NULL when unreadable. */
char *tf_read_file(const char *path, size_t *len);
/* count floats at byte offset of a raw little-endian f32 file; malloc'd; NULL on failure. */
float *tf_read_f32(const char *path, size_t offset, size_t count);
/* A fresh empty temporary folder (mkdtemp under $TMPDIR or /tmp), into out. */
int tf_tmpdir(char *out, size_t cap);
/* Writes len bytes to dir/name; 0 on success. */
int tf_write(const char *dir, const char *name, const void *data, size_t len);
/* Copies a fixture model folder's files into dir (to damage them). */
int tf_copy_dir(const char *from, const char *to);
/* Removes a folder of files (a copy made with tf_tmpdir + tf_copy_dir). */
void tf_rm_dir(const char *dir);
/* The plan of GPT-2 small's shape with options o (NULL: the defaults): what
 * the backend would run with (kernels, threads), no files needed. */
kvgpt_status tf_plan_gpt2(const kvgpt_options *o, kvgpt_plan *p, kvgpt_error *err);

#endif
