/* loader/json_stream.c — the JSON pull reader over a file streamed through a
 * small window (see json_stream.h): config.json is read before any memory is
 * planned, so it must take none and little stack. Same grammar, limits and
 * messages as json.c; scalars are read from a short token buffer with json.c's
 * own number and string rules. */
#include "loader/json_stream.h"

#include <string.h>

void json_stream_init(json_stream *s, lf_file *f, kvgpt_error *io_err)
{
    memset(s, 0, sizeof *s);
    s->f = f;
    s->io_err = io_err;
    s->line = 1;
}

static int fail(json_stream *s, const char *why)
{
    if (!s->err) s->err = why;
    return 0;
}

/* The byte at the cursor, reading the next window when it is used up; -1 at
 * the end of the file (or after a read error, recorded in s->io). */
static int peek(json_stream *s)
{
    if (s->err) return -1;
    if (s->i == s->len) {
        s->off += s->len;
        s->i = s->len = 0;
        uint64_t left = s->f->size - s->off;
        size_t n = left < sizeof s->buf ? (size_t)left : sizeof s->buf;
        if (n == 0) return -1;
        if ((s->io = lf_read(s->f, s->off, s->buf, n, s->io_err))) {
            fail(s, "read error");
            return -1;
        }
        s->len = n;
    }
    return s->buf[s->i];
}

static void advance(json_stream *s)
{
    if (s->buf[s->i] == '\n') s->line++;
    s->i++;
}

static void skip_ws(json_stream *s)
{
    int c;
    while ((c = peek(s)) == ' ' || c == '\t' || c == '\n' || c == '\r') advance(s);
}

static void keep(json_stream *s, int c)
{
    if (s->tok_len < sizeof s->tok) s->tok[s->tok_len++] = (char)c;
    else s->tok_long = 1;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

json_type json_stream_peek(json_stream *s)
{
    skip_ws(s);
    int c = peek(s);
    switch (c) {
    case '{': return JSON_T_OBJECT;
    case '[': return JSON_T_ARRAY;
    case '"': return JSON_T_STRING;
    case 't': return JSON_T_TRUE;
    case 'f': return JSON_T_FALSE;
    case 'n': return JSON_T_NULL;
    default: return c == '-' || (c >= '0' && c <= '9') ? JSON_T_NUMBER : JSON_T_NONE;
    }
}

int json_stream_string(json_stream *s, json_span *out)
{
    skip_ws(s);
    if (peek(s) != '"') return fail(s, "expected a string");
    advance(s);
    s->tok_len = 0;
    s->tok_long = 0;
    for (;;) {
        int c = peek(s);
        if (c < 0) return fail(s, "unterminated string");
        advance(s);
        if (c == '"') break;
        if (c < 0x20) return fail(s, "control character in a string");
        keep(s, c);
        if (c != '\\') continue;
        int e = peek(s);
        if (e < 0) return fail(s, "unterminated string");
        if (e == 0 || !strchr("\"\\/bfnrtu", e)) return fail(s, "bad escape");
        advance(s);
        keep(s, e);
        for (int k = 0; e == 'u' && k < 4; k++) {
            int h = peek(s);
            if (h < 0) return fail(s, "unterminated string");
            if (hexval(h) < 0) return fail(s, "bad \\u escape");
            advance(s);
            keep(s, h);
        }
    }
    out->p = s->tok;
    out->len = s->tok_long ? 0 : s->tok_len;
    return 1;
}

/* A number's characters into the token, then json.c reads them. */
static int number(json_stream *s, json_reader *r)
{
    int c;
    skip_ws(s);
    s->tok_len = 0;
    s->tok_long = 0;
    while ((c = peek(s)) >= 0 && ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E')) {
        advance(s);
        keep(s, c);
    }
    if (s->tok_long) return fail(s, "number too long");
    json_init(r, s->tok, s->tok_len);
    return 1;
}

int json_stream_double(json_stream *s, double *out)
{
    json_reader r;
    if (!number(s, &r)) return 0;
    if (!json_double(&r, out) || !json_finish(&r)) return fail(s, r.err ? r.err : "expected a number");
    return 1;
}

int json_stream_int64(json_stream *s, int64_t lo, int64_t hi, int64_t *out)
{
    json_reader r;
    if (!number(s, &r)) return 0;
    if (!json_int64(&r, lo, hi, out) || !json_finish(&r)) return fail(s, r.err ? r.err : "expected a number");
    return 1;
}

static int literal(json_stream *s, const char *lit)
{
    skip_ws(s);
    for (const char *p = lit; *p; p++) {
        if (peek(s) != *p) return fail(s, "expected a literal");
        advance(s);
    }
    return 1;
}

int json_stream_bool(json_stream *s, int *out)
{
    json_type t = json_stream_peek(s);
    if (t == JSON_T_TRUE && literal(s, "true")) { *out = 1; return 1; }
    if (t == JSON_T_FALSE && literal(s, "false")) { *out = 0; return 1; }
    return fail(s, "expected true or false");
}

int json_stream_null(json_stream *s) { return literal(s, "null"); }

int json_stream_object_begin(json_stream *s)
{
    skip_ws(s);
    if (peek(s) != '{') return fail(s, "expected an object");
    if (s->depth >= JSON_MAX_DEPTH) return fail(s, "nesting too deep");
    advance(s);
    s->depth++;
    s->first = 1;
    return 1;
}

/* After a member: ',' and the next key, or the closing brace (0). */
static int next_member(json_stream *s, char close)
{
    skip_ws(s);
    int c = peek(s);
    if (c < 0) return fail(s, "unexpected end of input");
    if (c == close) {
        advance(s);
        s->depth--;
        s->first = 0;
        return 0;
    }
    if (!s->first) {
        if (c != ',') return fail(s, "expected ',' or a closing bracket");
        advance(s);
        skip_ws(s);
        if (peek(s) == close) return fail(s, "trailing comma");
    }
    s->first = 0;
    return 1;
}

int json_stream_object_next(json_stream *s, json_span *key)
{
    if (!next_member(s, '}') || !json_stream_string(s, key)) return 0;
    skip_ws(s);
    if (peek(s) != ':') return fail(s, "expected ':' after a key");
    advance(s);
    return 1;
}

int json_stream_skip(json_stream *s)
{
    /* Iterative: a bit a level (1 object, 0 array) for the containers entered
     * here; JSON_MAX_DEPTH bounds them all. */
    uint64_t is_obj = 0;
    int levels = 0, value = 1;
    json_span sp;
    double d;
    while (!s->err) {
        if (value) {
            json_type t = json_stream_peek(s);
            if (t == JSON_T_OBJECT || t == JSON_T_ARRAY) {
                if (s->depth >= JSON_MAX_DEPTH) return fail(s, "nesting too deep");
                advance(s);
                s->depth++;
                levels++;
                is_obj = is_obj << 1 | (t == JSON_T_OBJECT);
                s->first = 1;
                value = 0;   /* the first member or the closing bracket follows */
                continue;
            }
            if (t == JSON_T_STRING) json_stream_string(s, &sp);
            else if (t == JSON_T_NUMBER) json_stream_double(s, &d);
            else if (t == JSON_T_TRUE) literal(s, "true");
            else if (t == JSON_T_FALSE) literal(s, "false");
            else if (t == JSON_T_NULL) literal(s, "null");
            else return fail(s, peek(s) < 0 ? "unexpected end of input" : "expected a value");
            if (levels == 0) return !s->err;
            value = 0;
            s->first = 0;
            continue;
        }
        int obj = (int)(is_obj & 1);
        if (next_member(s, obj ? '}' : ']')) {
            if (obj && !json_stream_string(s, &sp)) return 0;
            if (obj) {
                skip_ws(s);
                if (peek(s) != ':') return fail(s, "expected ':' after a key");
                advance(s);
            }
            value = 1;
            continue;
        }
        if (s->err) return 0;
        /* closed */
        levels--;
        is_obj >>= 1;
        s->first = 0;
        if (levels == 0) return 1;
    }
    return 0;
}

int json_stream_finish(json_stream *s)
{
    skip_ws(s);
    if (s->err) return 0;
    if (peek(s) >= 0) return fail(s, "trailing characters after the value");
    return !s->err;
}
