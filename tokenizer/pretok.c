/* tokenizer/pretok.c — the GPT-2 pre-tokenizer (see pretok.h) and the class
 * lookup of the generated Unicode tables.
 *
 * Why hand-written: the pattern needs only one character of lookahead except
 * for `\s+(?!\S)`, whose backtracking is "a whitespace run followed by a
 * non-space gives up its last character" — so a single forward scan matches
 * what a backtracking engine (tiktoken's fancy-regex) produces.
 */
#include "tokenizer/pretok.h"
#include "tokenizer/unicode.h"

#include <stdint.h>

int uni_class_of(uint32_t cp)
{
    size_t lo = 0, hi = uni_range_count;
    if (cp < 256) return uni_latin1[cp];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp > uni_ranges[mid].hi) lo = mid + 1;
        else if (cp < uni_ranges[mid].lo) hi = mid;
        else return (int)uni_ranges[mid].cls;
    }
    return UNI_OTHER;
}

/* Decodes one character at s[0..n), n >= 1: its class and byte length.
 * Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF); an
 * invalid lead or a broken sequence yields its first byte alone, of class
 * UNI_OTHER, and decoding resumes at the next byte. */
static int pretok_char(const unsigned char *s, size_t n, size_t *clen)
{
    unsigned c = s[0];
    uint32_t cp;
    size_t need, i;
    if (c < 0x80) { *clen = 1; return uni_latin1[c]; }
    if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; }
    else { *clen = 1; return UNI_OTHER; }
    if (n < need + 1) { *clen = 1; return UNI_OTHER; }
    for (i = 1; i <= need; i++) {
        if ((s[i] & 0xC0) != 0x80) { *clen = 1; return UNI_OTHER; }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (need == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
        *clen = 1;
        return UNI_OTHER;
    }
    *clen = need + 1;
    return uni_class_of(cp);
}

/* End of the longest run of characters of class cls starting at pos. */
static size_t pretok_run(const unsigned char *t, size_t len, size_t pos, int cls)
{
    while (pos < len) {
        size_t cl;
        if (t[pos] < 0x80) {
            if (uni_latin1[t[pos]] != cls) break;
            pos++;
            continue;
        }
        if (pretok_char(t + pos, len - pos, &cl) != cls) break;
        pos += cl;
    }
    return pos;
}

size_t bpe_pretok_next(const unsigned char *t, size_t len, size_t pos)
{
    size_t l0, l1, end, last;
    int c0, c1;

    if (t[pos] == '\'' && pos + 1 < len) {
        unsigned char a = t[pos + 1], b = pos + 2 < len ? t[pos + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return pos + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
            return pos + 3;
    }
    c0 = pretok_char(t + pos, len - pos, &l0);
    if (c0 != UNI_SPACE) return pretok_run(t, len, pos + l0, c0);

    /* ` ?X+`: a single U+0020 joins the letter/number/symbol run after it. */
    if (t[pos] == ' ' && pos + 1 < len) {
        c1 = pretok_char(t + pos + 1, len - pos - 1, &l1);
        if (c1 != UNI_SPACE) return pretok_run(t, len, pos + 1 + l1, c1);
    }
    /* `\s+(?!\S)|\s+`: the whole run at the end of the text; otherwise the
     * run minus its last character (which then leads the next piece), or
     * one character when the run is a single one. */
    last = pos;
    end = pos + l0;
    while (end < len) {
        size_t cl;
        if (pretok_char(t + end, len - end, &cl) != UNI_SPACE) break;
        last = end;
        end += cl;
    }
    return (end == len || last == pos) ? end : last;
}
