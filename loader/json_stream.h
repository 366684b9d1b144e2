/* loader/json_stream.h — json.h's pull reader for a file read through a
 * 512-byte window: no buffer as large as the file, no allocation. A string
 * comes back as a span of its raw text (escapes intact, for json_span_eq /
 * json_unescape) when it is at most JSON_STREAM_TOKEN bytes, else as an empty
 * span (still checked); each span lives until the next call. Numbers longer
 * than a token are refused (json.c refuses them too). */
#ifndef KVGPT_JSON_STREAM_H
#define KVGPT_JSON_STREAM_H

#include "loader/json.h"
#include "loader/loader.h"

#define JSON_STREAM_TOKEN 96

typedef struct {
    lf_file *f;
    kvgpt_error *io_err;     /* a read error is recorded here, with status io */
    kvgpt_status io;
    uint64_t off;            /* file offset of buf[0] */
    size_t len, i;
    unsigned char buf[512];
    int line, depth, first;
    const char *err;         /* the first error sticks */
    char tok[JSON_STREAM_TOKEN];
    size_t tok_len;
    int tok_long;
} json_stream;

void json_stream_init(json_stream *s, lf_file *f, kvgpt_error *io_err);
json_type json_stream_peek(json_stream *s);
int json_stream_object_begin(json_stream *s);
int json_stream_object_next(json_stream *s, json_span *key);
int json_stream_string(json_stream *s, json_span *out);
int json_stream_double(json_stream *s, double *out);
int json_stream_int64(json_stream *s, int64_t lo, int64_t hi, int64_t *out);
int json_stream_bool(json_stream *s, int *out);
int json_stream_null(json_stream *s);
int json_stream_skip(json_stream *s);
/* 1 when only whitespace remains and nothing failed. */
int json_stream_finish(json_stream *s);

#endif
