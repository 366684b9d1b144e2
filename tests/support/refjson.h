/* tests/support/refjson.h — just enough scanning of the fixtures' reference
 * JSON files to read keys, integer arrays and numbers. */
#ifndef KVGPT_TEST_REFJSON_H
#define KVGPT_TEST_REFJSON_H

#include <stdint.h>

/* The text right after `"key":` at or after `from`; NULL when absent. */
const char *rj_after_key(const char *from, const char *key);
/* Parses `[n, n, ...]`; returns the count (at most cap), -1 on malformed text. */
int rj_parse_ints(const char *p, int32_t *out, int cap);
/* The text after the n-th (0-based) occurrence of `"key"`; NULL when there are fewer. */
const char *rj_nth_key(const char *json, const char *key, int nth);

#endif
