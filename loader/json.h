/* loader/json.h — a pull-style JSON reader over a byte buffer.
 *
 * It allocates nothing and keeps no state but the cursor, so it is safe on
 * hostile input of any size: every read is bounded by `end`, nesting is
 * limited (JSON_MAX_DEPTH), numbers are range-checked by the caller's getter.
 * Strings come back as raw spans (escapes intact); json_unescape() decodes a
 * span into a caller buffer, json_span_eq() compares one as decoded.
 *
 * Typical use:
 *   json_reader r; json_init(&r, buf, len);
 *   if (json_object_begin(&r)) while (json_object_next(&r, &key)) {
 *       if (json_span_eq(key, "n_layer")) json_int(&r, &v); else json_skip(&r);
 *   }
 *   if (!json_finish(&r)) -> r.err says what and r.pos says where.
 */
#ifndef KVGPT_JSON_H
#define KVGPT_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64

typedef struct {
    const char *p; /* start of the raw text, without quotes */
    size_t len;
} json_span;

typedef enum {
    JSON_T_NONE = 0, JSON_T_OBJECT, JSON_T_ARRAY, JSON_T_STRING,
    JSON_T_NUMBER, JSON_T_TRUE, JSON_T_FALSE, JSON_T_NULL
} json_type;

typedef struct {
    const char *begin, *cur, *end;
    int depth;          /* current nesting */
    int first;          /* next member/element is the first of its container */
    const char *err;    /* NULL while fine; the first error sticks */
} json_reader;

void json_init(json_reader *r, const char *buf, size_t len);

/* Type of the next value (after whitespace), without consuming it. */
json_type json_peek(json_reader *r);

/* Containers. *_begin returns 1 when the next value is that container
 * (and enters it), else sets err and returns 0. *_next returns 1 while there
 * is another member/element (for objects, *key is its name) and 0 at the
 * closing bracket (consumed) or on error. */
int json_object_begin(json_reader *r);
int json_object_next(json_reader *r, json_span *key);
int json_array_begin(json_reader *r);
int json_array_next(json_reader *r);

/* Scalars: return 1 and the value, or set err and return 0. */
int json_string(json_reader *r, json_span *out);
int json_double(json_reader *r, double *out);
/* An integer in [lo, hi]; a fraction, exponent or out-of-range value is an error. */
int json_int64(json_reader *r, int64_t lo, int64_t hi, int64_t *out);
int json_bool(json_reader *r, int *out);
int json_null(json_reader *r);          /* consumes a null */
int json_skip(json_reader *r);          /* any value, nested, validated */

/* 1 when only whitespace remains and nothing failed. */
int json_finish(json_reader *r);

/* Offset of the cursor, for messages. */
size_t json_offset(const json_reader *r);
/* 1-based line of the cursor, for messages. */
int json_line(const json_reader *r);

/* 1 when the string span, decoded, is exactly lit (escapes are decoded:
 * "n_l\u0061yer" equals "n_layer"; "gelu\u0000x" does not equal "gelu"). */
int json_span_eq(json_span s, const char *lit);
/* Decodes escapes (\uXXXX with surrogate pairs → UTF-8) of a string span into
 * out (at most cap bytes). Returns the decoded length, or -1 when the span is
 * malformed or does not fit. Decoded text may contain NUL bytes. */
long json_unescape(json_span s, char *out, size_t cap);
/* Upper bound of json_unescape's output for a span: s.len. */
/* The decoded length of a span, or -1 when it is malformed. */
long json_unescaped_len(json_span s);

#endif
