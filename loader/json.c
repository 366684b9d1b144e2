/* loader/json.c — the pull-style JSON reader (see json.h). Bounded by the
 * buffer end everywhere; the first error sticks and makes every later call fail. */
#include "loader/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void json_init(json_reader *r, const char *buf, size_t len)
{
    r->begin = r->cur = buf;
    r->end = buf + len;
    r->depth = 0;
    r->first = 0;
    r->err = NULL;
}

static int fail(json_reader *r, const char *why)
{
    if (!r->err) r->err = why;
    return 0;
}

static void skip_ws(json_reader *r)
{
    while (r->cur < r->end && (*r->cur == ' ' || *r->cur == '\t' || *r->cur == '\n' || *r->cur == '\r'))
        r->cur++;
}

json_type json_peek(json_reader *r)
{
    if (r->err) return JSON_T_NONE;
    skip_ws(r);
    if (r->cur >= r->end) return JSON_T_NONE;
    switch (*r->cur) {
    case '{': return JSON_T_OBJECT;
    case '[': return JSON_T_ARRAY;
    case '"': return JSON_T_STRING;
    case 't': return JSON_T_TRUE;
    case 'f': return JSON_T_FALSE;
    case 'n': return JSON_T_NULL;
    default:
        if (*r->cur == '-' || (*r->cur >= '0' && *r->cur <= '9')) return JSON_T_NUMBER;
        return JSON_T_NONE;
    }
}

static int enter(json_reader *r, char open)
{
    if (r->err) return 0;
    skip_ws(r);
    if (r->cur >= r->end || *r->cur != open)
        return fail(r, open == '{' ? "expected an object" : "expected an array");
    if (r->depth >= JSON_MAX_DEPTH) return fail(r, "nesting too deep");
    r->cur++;
    r->depth++;
    r->first = 1;
    return 1;
}

int json_object_begin(json_reader *r) { return enter(r, '{'); }
int json_array_begin(json_reader *r) { return enter(r, '['); }

/* Shared by objects and arrays: 1 when another member follows, 0 at the close. */
static int next_member(json_reader *r, char close)
{
    if (r->err) return 0;
    skip_ws(r);
    if (r->cur >= r->end) return fail(r, "unexpected end of input");
    if (*r->cur == close) {
        r->cur++;
        r->depth--;
        r->first = 0;
        return 0;
    }
    if (!r->first) {
        if (*r->cur != ',') return fail(r, "expected ',' or a closing bracket");
        r->cur++;
        skip_ws(r);
        if (r->cur < r->end && *r->cur == close) return fail(r, "trailing comma");
    }
    r->first = 0;
    return 1;
}

int json_object_next(json_reader *r, json_span *key)
{
    if (!next_member(r, '}')) return 0;
    if (!json_string(r, key)) return 0;
    skip_ws(r);
    if (r->cur >= r->end || *r->cur != ':') return fail(r, "expected ':' after a key");
    r->cur++;
    return 1;
}

int json_array_next(json_reader *r) { return next_member(r, ']'); }

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int json_string(json_reader *r, json_span *out)
{
    if (r->err) return 0;
    skip_ws(r);
    if (r->cur >= r->end || *r->cur != '"') return fail(r, "expected a string");
    const char *s = ++r->cur;
    while (r->cur < r->end) {
        unsigned char c = (unsigned char)*r->cur;
        if (c == '"') {
            out->p = s;
            out->len = (size_t)(r->cur - s);
            r->cur++;
            return 1;
        }
        if (c < 0x20) return fail(r, "control character in a string");
        if (c == '\\') {
            if (r->end - r->cur < 2) break;
            char e = r->cur[1];
            if (e == 'u') {
                if (r->end - r->cur < 6) break;
                for (int i = 2; i < 6; i++)
                    if (hexval(r->cur[i]) < 0) return fail(r, "bad \\u escape");
                r->cur += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == 0) return fail(r, "bad escape");
            r->cur += 2;
            continue;
        }
        r->cur++;
    }
    return fail(r, "unterminated string");
}

/* Validates the JSON number grammar at the cursor; returns its length or 0. */
static size_t number_len(const json_reader *r, int *is_int)
{
    const char *p = r->cur, *e = r->end;
    *is_int = 1;
    if (p < e && *p == '-') p++;
    if (p >= e) return 0;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') { while (p < e && *p >= '0' && *p <= '9') p++; }
    else return 0;
    if (p < e && *p == '.') {
        *is_int = 0;
        p++;
        if (p >= e || *p < '0' || *p > '9') return 0;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        *is_int = 0;
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return 0;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    return (size_t)(p - r->cur);
}

int json_double(json_reader *r, double *out)
{
    if (r->err) return 0;
    skip_ws(r);
    int is_int;
    size_t n = number_len(r, &is_int);
    if (n == 0) return fail(r, "expected a number");
    char tmp[64];
    if (n >= sizeof tmp) {
        /* Longer than any double needs: only digits beyond precision. Refuse. */
        return fail(r, "number too long");
    }
    memcpy(tmp, r->cur, n);
    tmp[n] = 0;
    *out = strtod(tmp, NULL);
    r->cur += n;
    return 1;
}

int json_int64(json_reader *r, int64_t lo, int64_t hi, int64_t *out)
{
    if (r->err) return 0;
    skip_ws(r);
    int is_int;
    size_t n = number_len(r, &is_int);
    if (n == 0) return fail(r, "expected a number");
    if (!is_int) return fail(r, "expected an integer");
    const char *p = r->cur;
    int neg = 0;
    if (*p == '-') { neg = 1; p++; }
    uint64_t v = 0;
    for (; p < r->cur + n; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return fail(r, "integer out of range");
        v = v * 10 + d;
    }
    if ((!neg && v > (uint64_t)INT64_MAX) || (neg && v > (uint64_t)INT64_MAX + 1))
        return fail(r, "integer out of range");
    int64_t s = neg ? (int64_t)(0 - v) : (int64_t)v;
    if (s < lo || s > hi) return fail(r, "integer out of range");
    r->cur += n;
    *out = s;
    return 1;
}

static int literal(json_reader *r, const char *lit)
{
    if (r->err) return 0;
    skip_ws(r);
    size_t n = strlen(lit);
    if ((size_t)(r->end - r->cur) < n || memcmp(r->cur, lit, n) != 0) return fail(r, "expected a literal");
    r->cur += n;
    return 1;
}

int json_bool(json_reader *r, int *out)
{
    json_type t = json_peek(r);
    if (t == JSON_T_TRUE && literal(r, "true")) { *out = 1; return 1; }
    if (t == JSON_T_FALSE && literal(r, "false")) { *out = 0; return 1; }
    return fail(r, "expected true or false");
}

int json_null(json_reader *r) { return literal(r, "null"); }

int json_skip(json_reader *r)
{
    json_span s;
    double d;
    switch (json_peek(r)) {
    case JSON_T_OBJECT:
        if (!json_object_begin(r)) return 0;
        while (json_object_next(r, &s))
            if (!json_skip(r)) return 0;
        return r->err == NULL;
    case JSON_T_ARRAY:
        if (!json_array_begin(r)) return 0;
        while (json_array_next(r))
            if (!json_skip(r)) return 0;
        return r->err == NULL;
    case JSON_T_STRING: return json_string(r, &s);
    case JSON_T_NUMBER: return json_double(r, &d);
    case JSON_T_TRUE: return literal(r, "true");
    case JSON_T_FALSE: return literal(r, "false");
    case JSON_T_NULL: return literal(r, "null");
    default:
        return fail(r, r->cur >= r->end ? "unexpected end of input" : "expected a value");
    }
}

int json_finish(json_reader *r)
{
    if (r->err) return 0;
    skip_ws(r);
    if (r->cur != r->end) return fail(r, "trailing characters after the value");
    return 1;
}

size_t json_offset(const json_reader *r) { return (size_t)(r->cur - r->begin); }

int json_line(const json_reader *r)
{
    int line = 1;
    for (const char *p = r->begin; p < r->cur; p++)
        if (*p == '\n') line++;
    return line;
}

static int utf8_of(uint32_t cp, unsigned char *b)
{
    if (cp < 0x80) { b[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { b[0] = (unsigned char)(0xC0 | (cp >> 6)); b[1] = (unsigned char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12)); b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (unsigned char)(0xF0 | (cp >> 18)); b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); b[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static int hex4(const char *p, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return 0;
        *v = (*v << 4) | (uint32_t)h;
    }
    return 1;
}

/* The next decoded piece of a string span at *p: one raw byte, or the
 * UTF-8 of one escape (surrogate pairs joined). Returns its length (1..4),
 * 0 at the end, -1 when the span is malformed. */
static int next_piece(const char **p, const char *e, unsigned char out[4])
{
    if (*p >= e) return 0;
    if (**p != '\\') {
        out[0] = (unsigned char)*(*p)++;
        return 1;
    }
    if (e - *p < 2) return -1;
    char c = (*p)[1];
    *p += 2;
    switch (c) {
    case '"': out[0] = '"'; return 1;
    case '\\': out[0] = '\\'; return 1;
    case '/': out[0] = '/'; return 1;
    case 'b': out[0] = '\b'; return 1;
    case 'f': out[0] = '\f'; return 1;
    case 'n': out[0] = '\n'; return 1;
    case 'r': out[0] = '\r'; return 1;
    case 't': out[0] = '\t'; return 1;
    case 'u': break;
    default: return -1;
    }
    uint32_t cp;
    if (e - *p < 4 || !hex4(*p, &cp)) return -1;
    *p += 4;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        uint32_t lo;
        /* A lone high surrogate cannot be UTF-8; JSON from Python never has one. */
        if (e - *p < 6 || (*p)[0] != '\\' || (*p)[1] != 'u' || !hex4(*p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
            return -1;
        *p += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return -1;
    }
    return utf8_of(cp, out);
}

int json_span_eq(json_span s, const char *lit)
{
    /* Compared as decoded: "n_l\u0061yer" is n_layer, "gelu\u0000x" is not gelu. */
    const char *p = s.p, *e = s.p + s.len;
    const unsigned char *l = (const unsigned char *)lit;
    unsigned char b[4];
    int n;
    while ((n = next_piece(&p, e, b)) > 0) {
        for (int i = 0; i < n; i++, l++)
            if (*l == 0 || *l != b[i]) return 0;
    }
    return n == 0 && *l == 0;
}

long json_unescape(json_span s, char *out, size_t cap)
{
    const char *p = s.p, *e = s.p + s.len;
    unsigned char b[4];
    size_t o = 0;
    int n;
    while ((n = next_piece(&p, e, b)) > 0) {
        if ((size_t)n > cap - o) return -1;
        memcpy(out + o, b, (size_t)n);
        o += (size_t)n;
    }
    return n < 0 ? -1 : (long)o;
}

long json_unescaped_len(json_span s)
{
    const char *p = s.p, *e = s.p + s.len;
    unsigned char b[4];
    size_t o = 0;
    int n;
    while ((n = next_piece(&p, e, b)) > 0) o += (size_t)n;
    return n < 0 ? -1 : (long)o;
}
