/* tokenizer/bpe_encode.c — text → GPT-2 token ids: pre-tokenize, then merge
 * each piece by rank. A piece that is itself a token (most English words) is
 * one hash probe; others merge with a linked list of parts and a binary heap
 * of candidate pairs, O(n log n) in the piece's length, in caller scratch. */
#include "tokenizer/bpe_int.h"
#include "tokenizer/pretok.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

#include "common/status.h"

#define BPE_WORK_PER_BYTE 44 /* 5 int32 arrays + 3 heap entries of 8 bytes */

size_t bpe_encode_work_bytes(size_t n)
{
    if (n > (SIZE_MAX - 64) / BPE_WORK_PER_BYTE) return SIZE_MAX;
    return n * BPE_WORK_PER_BYTE + 64;
}

/* Pairs are keyed (rank << 32 | position): the lowest rank wins, then the
 * leftmost — tiktoken's order. */
static void bpe_heap_push(uint64_t *h, size_t *n, uint64_t v)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= v) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static uint64_t bpe_heap_pop(uint64_t *h, size_t *n)
{
    uint64_t top = h[0], v = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1] < h[c]) c++;
        if (v <= h[c]) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = v;
    return top;
}

/* The scratch of one piece of n bytes. Part i starts at byte i while alive. */
typedef struct {
    uint64_t *heap;
    int32_t *id, *next, *prev, *prank, *pid;
} bpe_parts;

/* Rank and token of merging part i with the part after it (whose end is end). */
static void bpe_pair(const bpe_tokenizer *t, const unsigned char *p, bpe_parts *w, int32_t i, int32_t end)
{
    int32_t m = bpe_lookup(t, p + i, (size_t)(end - i));
    w->prank[i] = m >= 0 ? t->rank[m] : BPE_NO_RANK;
    w->pid[i] = m;
}

/* Emits the tokens of one piece of n >= 2 bytes that is not itself a token. */
static void bpe_merge_piece(const bpe_tokenizer *t, const unsigned char *p, int32_t n, void *work,
                            int32_t *ids, int cap, int *count)
{
    bpe_parts w;
    size_t nh = 0;
    int32_t i;
    uintptr_t a = ((uintptr_t)work + 7) & ~(uintptr_t)7;
    w.heap = (uint64_t *)a;
    w.id = (int32_t *)(void *)(w.heap + 3 * (size_t)n);
    w.next = w.id + n;
    w.prev = w.next + n;
    w.prank = w.prev + n;
    w.pid = w.prank + n;

    for (i = 0; i < n; i++) {
        w.id[i] = t->byte_id[p[i]];
        w.next[i] = i + 1;
        w.prev[i] = i - 1;
    }
    w.prank[n - 1] = BPE_NO_RANK;
    for (i = 0; i + 1 < n; i++) {
        bpe_pair(t, p, &w, i, i + 2 < n ? i + 2 : n);
        if (w.prank[i] != BPE_NO_RANK) bpe_heap_push(w.heap, &nh, ((uint64_t)w.prank[i] << 32) | (uint32_t)i);
    }
    while (nh) {
        uint64_t top = bpe_heap_pop(w.heap, &nh);
        int32_t r = (int32_t)(top >> 32), j, k;
        i = (int32_t)(uint32_t)top;
        /* Stale entries: the part died or its right neighbour changed since
         * (a changed pair always has a different rank: it spans more bytes). */
        if (w.prank[i] != r) continue;
        j = w.next[i];
        w.id[i] = w.pid[i];
        w.next[i] = w.next[j];
        if (w.next[j] < n) w.prev[w.next[j]] = i;
        w.prank[j] = BPE_NO_RANK;
        if (w.next[i] < n) {
            bpe_pair(t, p, &w, i, w.next[w.next[i]]);
            if (w.prank[i] != BPE_NO_RANK) bpe_heap_push(w.heap, &nh, ((uint64_t)w.prank[i] << 32) | (uint32_t)i);
        } else {
            w.prank[i] = BPE_NO_RANK;
        }
        if ((k = w.prev[i]) >= 0) {
            bpe_pair(t, p, &w, k, w.next[i]);
            if (w.prank[k] != BPE_NO_RANK) bpe_heap_push(w.heap, &nh, ((uint64_t)w.prank[k] << 32) | (uint32_t)k);
        }
    }
    for (i = 0; i < n; i = w.next[i]) {
        if (*count < cap) ids[*count] = w.id[i];
        (*count)++;
    }
}

kvgpt_status bpe_encode(const bpe_tokenizer *t, const char *text, size_t len,
                        int32_t *ids, int cap, int *n_out,
                        void *work, size_t work_bytes, kvgpt_error *err)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t pos = 0;
    int count = 0;

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
            if (count < cap) ids[count] = id;
            count++;
        } else {
            size_t need = bpe_encode_work_bytes(n);
            if (!work || work_bytes < need || n > (size_t)INT32_MAX / 4) {
                *n_out = count;
                return kv_fail(err, KVGPT_ERR_ARG,
                                 "bpe_encode: a pre-token of %zu bytes (at byte %zu) needs %zu bytes of work memory, given %zu",
                                 n, pos, need, work ? work_bytes : 0);
            }
            bpe_merge_piece(t, s + pos, (int32_t)n, work, ids, cap, &count);
        }
        pos = end;
    }
    *n_out = count;
    if (count > cap)
        return kv_fail(err, KVGPT_ERR_ARG, "bpe_encode: the text needs %d ids, room for %d", count, cap);
    return KVGPT_OK;
}
