/* tokenizer/bpe_encode.c — text → GPT-2 token ids: pre-tokenize, then merge
 * each piece by rank. A piece that is itself a token (most English words) is
 * one hash probe; others merge with a linked list of parts and an indexed
 * binary heap of candidate pairs, O(n log n) in the piece's length, in
 * caller scratch (24 bytes a byte).
 *
 * The work memory bounds the work per piece: a piece longer than the work
 * memory holds (one run of letters, digits, symbols or spaces hundreds of KB
 * long) is merged in overlapping windows. Each window is merged exactly; its
 * tokens are kept up to the last quarter, where the window's end could still
 * change them, and the next window starts after the last kept token. Pieces
 * that fit are exact to tiktoken; longer ones decode to the same bytes and
 * agree with tiktoken except where a chain of merges would reach across a
 * whole quarter-window. */
#include "tokenizer/bpe_int.h"
#include "tokenizer/pretok.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

#include "common/status.h"

#define BPE_WORK_PER_BYTE 24 /* id, next, prev, pair rank, heap, heap index: 6 int32 */

size_t bpe_encode_work_bytes(size_t n)
{
    if (n > (SIZE_MAX - 64) / BPE_WORK_PER_BYTE) return SIZE_MAX;
    return n * BPE_WORK_PER_BYTE + 64;
}

/* The scratch of one window of n bytes. Part i starts at byte i while alive;
 * the heap holds the parts whose pair with the next part is a token, keyed
 * (rank, position): the lowest rank wins, then the leftmost — tiktoken's order. */
typedef struct {
    int32_t *id, *next, *prev, *prank, *heap, *hpos;   /* hpos[i] -1: not in the heap */
    int32_t nh;
} bpe_parts;

static uint64_t bpe_key(const bpe_parts *w, int32_t i) { return (uint64_t)(uint32_t)w->prank[i] << 32 | (uint32_t)i; }

static void bpe_heap_place(bpe_parts *w, int32_t k, int32_t i)
{
    w->heap[k] = i;
    w->hpos[i] = k;
}

static void bpe_sift_up(bpe_parts *w, int32_t k)
{
    int32_t i = w->heap[k];
    uint64_t key = bpe_key(w, i);
    while (k > 0) {
        int32_t p = (k - 1) / 2;
        if (bpe_key(w, w->heap[p]) <= key) break;
        bpe_heap_place(w, k, w->heap[p]);
        k = p;
    }
    bpe_heap_place(w, k, i);
}

static void bpe_sift_down(bpe_parts *w, int32_t k)
{
    int32_t i = w->heap[k];
    uint64_t key = bpe_key(w, i);
    for (;;) {
        int32_t c = 2 * k + 1;
        if (c >= w->nh) break;
        if (c + 1 < w->nh && bpe_key(w, w->heap[c + 1]) < bpe_key(w, w->heap[c])) c++;
        if (key <= bpe_key(w, w->heap[c])) break;
        bpe_heap_place(w, k, w->heap[c]);
        k = c;
    }
    bpe_heap_place(w, k, i);
}

/* Puts part i in the heap, moves it, or takes it out, as its pair rank says. */
static void bpe_heap_update(bpe_parts *w, int32_t i)
{
    int32_t k = w->hpos[i];
    if (w->prank[i] == BPE_NO_RANK) {
        if (k < 0) return;
        w->hpos[i] = -1;
        if (k == --w->nh) return;
        int32_t last = w->heap[w->nh];
        bpe_heap_place(w, k, last);
        bpe_sift_up(w, k);
        bpe_sift_down(w, w->hpos[last]);
        return;
    }
    if (k < 0) {
        k = w->nh++;
        bpe_heap_place(w, k, i);
    }
    bpe_sift_up(w, k);
    bpe_sift_down(w, w->hpos[i]);
}

/* Rank of merging part i with the part after it (whose end is end). */
static void bpe_pair(const bpe_tokenizer *t, const unsigned char *p, bpe_parts *w, int32_t i, int32_t end)
{
    int32_t m = end - i > (int32_t)t->max_len ? -1 : bpe_lookup(t, p + i, (size_t)(end - i));
    w->prank[i] = m >= 0 ? t->rank[m] : BPE_NO_RANK;
}

/* Merges the n >= 2 bytes at p to the end; the tokens are then the parts
 * i = 0, next[i], ... with ids id[i]. */
static void bpe_merge(const bpe_tokenizer *t, const unsigned char *p, int32_t n, void *work, bpe_parts *w)
{
    int32_t i;
    uintptr_t a = ((uintptr_t)work + 7) & ~(uintptr_t)7;
    w->id = (int32_t *)a;
    w->next = w->id + n;
    w->prev = w->next + n;
    w->prank = w->prev + n;
    w->heap = w->prank + n;
    w->hpos = w->heap + n;
    w->nh = 0;
    for (i = 0; i < n; i++) {
        w->id[i] = t->byte_id[p[i]];
        w->next[i] = i + 1;
        w->prev[i] = i - 1;
        w->hpos[i] = -1;
    }
    w->prank[n - 1] = BPE_NO_RANK;
    for (i = 0; i + 1 < n; i++) {
        bpe_pair(t, p, w, i, i + 2);
        if (w->prank[i] != BPE_NO_RANK) {
            bpe_heap_place(w, w->nh, i);
            w->nh++;
        }
    }
    for (int32_t k = w->nh / 2; k-- > 0;) bpe_sift_down(w, k);
    while (w->nh) {
        int32_t j, k;
        i = w->heap[0];
        j = w->next[i];
        w->id[i] = bpe_lookup(t, p + i, (size_t)(w->next[j] - i));
        w->next[i] = w->next[j];
        if (w->next[j] < n) w->prev[w->next[j]] = i;
        w->prank[j] = BPE_NO_RANK;
        bpe_heap_update(w, j);
        if (w->next[i] < n) bpe_pair(t, p, w, i, w->next[w->next[i]]);
        else w->prank[i] = BPE_NO_RANK;
        bpe_heap_update(w, i);
        if ((k = w->prev[i]) >= 0) {
            bpe_pair(t, p, w, k, w->next[i]);
            bpe_heap_update(w, k);
        }
    }
}

static void bpe_emit(int32_t id, int32_t *ids, int cap, int *count)
{
    if (*count < cap) ids[*count] = id;
    (*count)++;
}

/* The tokens of one piece of n >= 2 bytes that is not itself a token, merged
 * whole when the work memory holds it, else window by window. */
static void bpe_merge_piece(const bpe_tokenizer *t, const unsigned char *p, size_t n, void *work, size_t window,
                            int32_t *ids, int cap, int *count)
{
    bpe_parts w;
    size_t s = 0;
    while (s < n) {
        size_t e = n - s <= window ? n : s + window;
        /* A window ends on a character boundary: no token is cut inside one. */
        while (e < n && e > s + 1 && (p[e] & 0xC0) == 0x80) e--;
        if (e - s == 1) {
            bpe_emit(t->byte_id[p[s]], ids, cap, count);
            s = e;
            continue;
        }
        bpe_merge(t, p + s, (int32_t)(e - s), work, &w);
        size_t keep = e == n ? e - s : (e - s) - (e - s) / 4, i = 0;
        for (; i < e - s; i = (size_t)w.next[i]) {
            if (e < n && (size_t)w.next[i] > keep && i > 0) break;
            bpe_emit(w.id[i], ids, cap, count);
        }
        s += i;
    }
}

kvgpt_status bpe_encode(const bpe_tokenizer *t, const char *text, size_t len,
                        int32_t *ids, int cap, int *n_out,
                        void *work, size_t work_bytes, kvgpt_error *err)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t pos = 0;
    int count = 0;
    /* The longest piece merged whole; longer ones go window by window, which
     * needs room for a window well beyond the longest token. */
    size_t window = work && work_bytes > 64 ? (work_bytes - 64) / BPE_WORK_PER_BYTE : 0;
    if (window > (size_t)INT32_MAX / 8) window = (size_t)INT32_MAX / 8;

    if (n_out) *n_out = 0;
    if (!t || !n_out || (!text && len) || cap < 0 || (cap > 0 && !ids))
        return kv_fail(err, KVGPT_ERR_ARG, "bpe_encode: bad arguments");
    while (pos < len) {
        size_t end = bpe_pretok_next(s, len, pos), n = end - pos;
        int32_t id;
        /* Each piece adds at most n ids: refuse before the int count could wrap. */
        if (n > (size_t)(INT_MAX - count))
            return kv_fail(err, KVGPT_ERR_ARG, "bpe_encode: text of %zu bytes may need more than %d ids", len, INT_MAX);
        if (n == 1) {
            id = t->byte_id[s[pos]];
        } else if ((id = bpe_lookup(t, s + pos, n)) >= 0 && t->rank[id] == BPE_NO_RANK) {
            id = -1; /* a token no merge makes (e.g. a special token) is not text */
        }
        if (id >= 0) {
            bpe_emit(id, ids, cap, &count);
        } else {
            if (n > window && window < 8 * (size_t)t->max_len + 64) {
                *n_out = count;
                return kv_fail(err, KVGPT_ERR_ARG,
                               "bpe_encode: a pre-token of %zu bytes (at byte %zu) needs %zu bytes of work memory, given %zu",
                               n, pos, bpe_encode_work_bytes(n < 8 * (size_t)t->max_len + 64 ? n : 8 * (size_t)t->max_len + 64),
                               work ? work_bytes : 0);
            }
            bpe_merge_piece(t, s + pos, n, work, window, ids, cap, &count);
        }
        pos = end;
    }
    *n_out = count;
    if (count > cap)
        return kv_fail(err, KVGPT_ERR_ARG, "bpe_encode: the text needs %d ids, room for %d", count, cap);
    return KVGPT_OK;
}
