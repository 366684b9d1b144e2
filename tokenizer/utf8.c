/* tokenizer/utf8.c — the UTF-8 stream decoder behind kvgpt_token_text and
 * generate's on_text (see utf8.h). Validity as Unicode's Table 3-7: the
 * second byte's range depends on the lead (no overlongs, no surrogates,
 * nothing past U+10FFFF). */
#include "tokenizer/utf8.h"

#include <string.h>

static const unsigned char fffd[3] = {0xEF, 0xBF, 0xBD};

/* Bytes a character starting with lead c takes; 0 when c cannot start one. */
static int seq_len(unsigned c)
{
    return c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
}

/* Whether c may follow the held bytes. */
static int continues(const kvgpt_text_state *st, unsigned c)
{
    unsigned lo = 0x80, hi = 0xBF;
    if (st->n_held == 1) {
        unsigned lead = st->held[0];
        if (lead == 0xE0) lo = 0xA0;
        else if (lead == 0xED) hi = 0x9F;
        else if (lead == 0xF0) lo = 0x90;
        else if (lead == 0xF4) hi = 0x8F;
    }
    return c >= lo && c <= hi;
}

static size_t put(char *out, size_t at, const void *p, size_t n)
{
    if (out) memcpy(out + at, p, n);
    return at + n;
}

size_t utf8_feed(kvgpt_text_state *st_in, const unsigned char *in, size_t n, char *out)
{
    kvgpt_text_state st = *st_in;
    size_t w = 0;
    if (st.n_held < 0 || st.n_held > 3 || (st.n_held && seq_len(st.held[0]) <= st.n_held)) st.n_held = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = in[i];
        if (st.n_held) {
            if (continues(&st, c)) {
                st.held[st.n_held++] = (unsigned char)c;
                if (st.n_held == seq_len(st.held[0])) {
                    w = put(out, w, st.held, (size_t)st.n_held);
                    st.n_held = 0;
                }
                continue;
            }
            w = put(out, w, fffd, 3);   /* the broken character; c starts afresh */
            st.n_held = 0;
        }
        int len = seq_len(c);
        if (len == 1) {
            unsigned char b = (unsigned char)c;
            w = put(out, w, &b, 1);
        } else if (len == 0) {
            w = put(out, w, fffd, 3);
        } else {
            st.held[0] = (unsigned char)c;
            st.n_held = 1;
        }
    }
    if (out) *st_in = st;
    return w;
}

size_t utf8_flush(kvgpt_text_state *st, char *out)
{
    int held = st->n_held > 0;
    st->n_held = 0;
    if (held && out) memcpy(out, fffd, 3);
    return held ? 3 : 0;
}
