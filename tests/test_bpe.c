/* tests/test_bpe.c — the GPT-2 BPE tokenizer: tiktoken's vectors, lossless
 * round trips of arbitrary bytes, long pieces in linear-ish time, malformed
 * files rejected with file:line, and the plan as an exact upper bound. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tokenizer/bpe.h"
#include "tests/support/fixtures.h"
#include "tokenizer/pretok.h"

/* ---- shared state: the real GPT-2 tokenizer, loaded once ----------------- */

static char g_fixtures[1024];
static char g_vocab[1200], g_merges[1200];
static int g_have_fixtures;
static bpe_tokenizer *g_tok;
static void *g_tables, *g_work;
static size_t g_work_bytes;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void find_fixtures(void)
{
    const char *env = getenv("KVGPT_FIXTURES");
    struct stat st;
    snprintf(g_fixtures, sizeof g_fixtures, "%s", env && *env ? env : "../shared/fixtures");
    snprintf(g_vocab, sizeof g_vocab, "%s/gpt2_tiny_hf/vocab.json", g_fixtures);
    snprintf(g_merges, sizeof g_merges, "%s/gpt2_tiny_hf/merges.txt", g_fixtures);
    g_have_fixtures = stat(g_vocab, &st) == 0 && stat(g_merges, &st) == 0;
}

/* Loads with exactly the planned bytes, so ASan sees any write past them. */
static bpe_tokenizer *load_exact(const char *vp, const char *mp, int vocab_size, void **tables, void **files,
                                 kvgpt_error *err, kvgpt_status *st)
{
    bpe_sizes sz;
    bpe_tokenizer *t = NULL;
    *tables = *files = NULL;
    *st = bpe_plan(vp, mp, vocab_size, &sz, err);
    if (*st != KVGPT_OK) return NULL;
    if (posix_memalign(tables, 64, sz.table_bytes) != 0) { *st = KVGPT_ERR_NOMEM; return NULL; }
    *files = malloc(sz.file_bytes);
    *st = bpe_load(*tables, sz.table_bytes, *files, sz.file_bytes, vp, mp, vocab_size, &t, err);
    free(*files);
    *files = NULL;
    return t;
}

static const bpe_tokenizer *tok(void)
{
    if (!g_tok && g_have_fixtures) {
        kvgpt_error err = {0, ""};
        kvgpt_status st;
        void *files;
        g_tok = load_exact(g_vocab, g_merges, 50257, &g_tables, &files, &err, &st);
        ck_assert_msg(st == KVGPT_OK, "load failed: %s", err.msg);
        g_work_bytes = bpe_encode_work_bytes(1 << 20);
        g_work = malloc(g_work_bytes);
    }
    return g_tok;
}

#define SKIP_WITHOUT_FIXTURES()                                                     \
    do {                                                                            \
        if (!g_have_fixtures) {                                                     \
            ck_assert_int_eq(tf_need_fixtures(__func__), 0);                        \
            return;                                                                 \
        }                                                                           \
    } while (0)

/* Encodes into a malloc'd array (caller frees); asserts success. */
static int32_t *encode(const void *text, size_t len, int *n)
{
    kvgpt_error err = {0, ""};
    int cap = (int)len + 1;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)cap);
    kvgpt_status st = bpe_encode(tok(), text, len, ids, cap, n, g_work, g_work_bytes, &err);
    ck_assert_msg(st == KVGPT_OK, "encode failed: %s", err.msg);
    return ids;
}

/* Decodes ids and compares with the original bytes. */
static void assert_decodes_to(const int32_t *ids, int n, const unsigned char *want, size_t len, const char *what)
{
    size_t o = 0;
    int i;
    for (i = 0; i < n; i++) {
        const char *b;
        size_t bl;
        ck_assert_int_eq(bpe_token_bytes(tok(), ids[i], &b, &bl), KVGPT_OK);
        ck_assert_msg(o + bl <= len && memcmp(want + o, b, bl) == 0, "%s: decoding differs at token %d", what, i);
        o += bl;
    }
    ck_assert_msg(o == len, "%s: decoded %zu bytes of %zu", what, o, len);
}

/* ---- 0. the pre-tokenizer alone (no fixtures needed) ------------------- */

/* Pieces joined by '|' (no '|' in these texts). */
static void expect_pieces(const char *text, size_t len, const char *want)
{
    char got[512];
    size_t pos = 0, o = 0;
    while (pos < len) {
        size_t end = bpe_pretok_next((const unsigned char *)text, len, pos);
        ck_assert_uint_gt(end, pos);
        ck_assert_uint_le(end, len);
        if (o) got[o++] = '|';
        memcpy(got + o, text + pos, end - pos);
        o += end - pos;
        pos = end;
    }
    got[o] = 0;
    ck_assert_msg(strcmp(got, want) == 0, "split \"%s\" as \"%s\", want \"%s\"", text, got, want);
}

START_TEST(test_pretok)
{
#define P(text, want) expect_pieces(text, sizeof text - 1, want)
    P("Hello world", "Hello| world");
    P("don't we'll I'M", "don|'t| we|'ll| I|'|M");
    P("  hi", " | hi");
    P("a  \n b", "a|  \n| b");
    P("x\n\ny", "x|\n|\n|y");
    P("end   ", "end|   ");
    P("123abc 4567", "123|abc| 4567");
    P("?!'s", "?!'|s");
    P("a\xFF" "b", "a|\xFF|b");
    P(" \xFF\xFE", " \xFF\xFE");
    P("\xC3\xA9t\xC3\xA9 \xC3\xA9t\xC3\xA9", "\xC3\xA9t\xC3\xA9| \xC3\xA9t\xC3\xA9");
    P("a\xC2\xA0" "b", "a|\xC2\xA0|b");             /* U+00A0 is White_Space */
    P("a\xEF\xBB\xBF" "b", "a|\xEF\xBB\xBF|b");    /* U+FEFF is not */
    P("a\xC2\x85\xC2\x85" "b", "a|\xC2\x85|\xC2\x85|b");
    P("\xED\xA0\x80", "\xED\xA0\x80");             /* a surrogate: three invalid bytes, one symbol run */
    P("\xD9\xA3\xD9\xA4x", "\xD9\xA3\xD9\xA4|x"); /* Arabic-Indic digits are \p{N} */
    P("\t\t", "\t\t");
    P("'", "'");
    P("x'", "x|'");
#undef P
}
END_TEST

/* ---- 1. tiktoken's vectors ------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

START_TEST(test_vectors)
{
    char path[1200];
    FILE *f;
    static char line[1 << 16];
    int lineno = 0, checked = 0;
    SKIP_WITHOUT_FIXTURES();
    snprintf(path, sizeof path, "%s/tokenizer/gpt2_vectors.hex.tsv", g_fixtures);
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    while (fgets(line, sizeof line, f)) {
        unsigned char text[1 << 15];
        int32_t want[1 << 14];
        size_t tl = 0, i;
        int nw = 0, n;
        char *tab = strchr(line, '\t'), *p;
        int32_t *ids;
        lineno++;
        if (lineno == 1 && line[0] == '#') continue;
        ck_assert_msg(tab != NULL, "%s:%d: no tab", path, lineno);
        ck_assert_msg(((size_t)(tab - line)) % 2 == 0, "%s:%d: odd hex", path, lineno);
        for (i = 0; line + i < tab; i += 2) text[tl++] = (unsigned char)(hexval(line[i]) * 16 + hexval(line[i + 1]));
        for (p = tab + 1; *p && *p != '\n';) {
            char *e;
            long v = strtol(p, &e, 10);
            if (e == p) break;
            want[nw++] = (int32_t)v;
            p = e;
            while (*p == ' ') p++;
        }
        ids = encode(text, tl, &n);
        if (n != nw || memcmp(ids, want, sizeof(int32_t) * (size_t)n) != 0) {
            int k;
            fprintf(stderr, "%s:%d: got", path, lineno);
            for (k = 0; k < n; k++) fprintf(stderr, " %d", ids[k]);
            fprintf(stderr, "\n   want");
            for (k = 0; k < nw; k++) fprintf(stderr, " %d", want[k]);
            fprintf(stderr, "\n");
            ck_abort_msg("%s:%d: ids differ from tiktoken", path, lineno);
        }
        assert_decodes_to(ids, n, text, tl, "vector");
        free(ids);
        checked++;
    }
    fclose(f);
    ck_assert_int_ge(checked, 280);
    printf("  vectors: %d strings match tiktoken and round-trip\n", checked);
}
END_TEST

START_TEST(test_basics)
{
    const char *b;
    size_t bl;
    int32_t ids[8];
    int n = -1;
    kvgpt_error err = {0, ""};
    SKIP_WITHOUT_FIXTURES();
    ck_assert_int_eq(bpe_eot_token(tok()), 50256);
    ck_assert_int_eq(bpe_vocab_size(tok()), 50257);
    ck_assert_int_eq(bpe_token_count(tok()), 50257);
    ck_assert_int_eq(bpe_token_bytes(tok(), 50256, &b, &bl), KVGPT_OK);
    ck_assert(bl == 13 && memcmp(b, "<|endoftext|>", 13) == 0);
    ck_assert_int_eq(bpe_token_bytes(tok(), 220, &b, &bl), KVGPT_OK);
    ck_assert(bl == 1 && b[0] == ' ');
    ck_assert_int_eq(bpe_token_bytes(tok(), 50257, &b, &bl), KVGPT_ERR_TOKEN);
    ck_assert_int_eq(bpe_token_bytes(tok(), -1, &b, &bl), KVGPT_ERR_TOKEN);
    /* Empty text: no ids, fine with NULL text. */
    ck_assert_int_eq(bpe_encode(tok(), NULL, 0, ids, 8, &n, g_work, g_work_bytes, &err), KVGPT_OK);
    ck_assert_int_eq(n, 0);
    /* "<|endoftext|>" in text is ordinary text. */
    ck_assert_int_eq(bpe_encode(tok(), "<|endoftext|>", 13, ids, 8, &n, g_work, g_work_bytes, &err), KVGPT_OK);
    ck_assert_int_gt(n, 1);
    /* Too small a cap: ARG, and the count needed. */
    ck_assert_int_eq(bpe_encode(tok(), "Hello, world!", 13, ids, 2, &n, g_work, g_work_bytes, &err), KVGPT_ERR_ARG);
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(ids[0], 15496);
    ck_assert_int_eq(ids[1], 11);
    ck_assert_int_eq(bpe_encode(tok(), "Hello, world!", 13, NULL, 0, &n, NULL, 0, &err), KVGPT_ERR_ARG);
    ck_assert_int_eq(n, 4);
    /* Too little work memory for a piece that needs merging: ARG, with a message. */
    ck_assert_int_eq(bpe_encode(tok(), "zxqvjk", 6, ids, 8, &n, g_work, 10, &err), KVGPT_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "work memory") != NULL, "%s", err.msg);
    ck_assert_int_eq(bpe_encode(tok(), "zxqvjk", 6, ids, 8, &n, g_work, bpe_encode_work_bytes(6), &err), KVGPT_OK);
}
END_TEST

/* ---- 2. round trips, a reference merge, long pieces ----------------------- */

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 11);
}

/* Random text that hits every pre-tokenizer path: ASCII words, spaces and
 * newlines runs, digits, apostrophes, multi-byte UTF-8, invalid bytes, NULs. */
static size_t random_text(unsigned char *s, size_t cap)
{
    static const char *const frags[] = {
        "the", " the", "'s", "'re", "'ll", "'", "  ", "\n", "\r\n", "\t", " ", "123", " 4567", "!!", "?'",
        "\xC3\xA9", "\xE4\xB8\xAD\xE6\x96\x87", "\xF0\x9F\x98\x80", "\xE2\x80\x83", "\xC2\xA0", "\xC2\x85",
        "\xEF\xBB\xBF", "\xD9\xA3", "\xE2\x85\xA7", "\x80", "\xFF", "\xC3", "\xED\xA0\x80", "\xF4\x90\x80\x80",
        "\xC0\xAF", "\x00", "<|endoftext|>", "Hello", "  world", "\xCE\xB1\xCE\xB2", "...", "_x_"};
    size_t n = 0, want = rnd() % cap;
    while (n < want) {
        if (rnd() % 4 == 0) {
            s[n++] = (unsigned char)rnd();
        } else {
            const char *f = frags[rnd() % (sizeof frags / sizeof frags[0])];
            size_t fl = f[0] ? strlen(f) : 1;
            if (n + fl > cap) break;
            memcpy(s + n, f, fl);
            n += fl;
        }
    }
    return n;
}

/* tiktoken's own quadratic merge (lowest rank, leftmost), with GPT-2's fact
 * that a merged token's rank is its id: the reference for the heap version.
 * Its token lookup is independent of the tokenizer's hash: a sorted table
 * built from bpe_token_bytes. */
static int32_t *g_sorted;
static int g_n_sorted;

static int cmp_token(const void *a, const void *b)
{
    const char *pa, *pb;
    size_t la, lb;
    int c;
    bpe_token_bytes(tok(), *(const int32_t *)a, &pa, &la);
    bpe_token_bytes(tok(), *(const int32_t *)b, &pb, &lb);
    c = memcmp(pa, pb, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

static int ref_lookup(const unsigned char *p, size_t n)
{
    int lo = 0, hi;
    if (!g_sorted) {
        int i;
        g_n_sorted = bpe_token_count(tok());
        g_sorted = malloc(sizeof(int32_t) * (size_t)g_n_sorted);
        for (i = 0; i < g_n_sorted; i++) g_sorted[i] = i;
        qsort(g_sorted, (size_t)g_n_sorted, sizeof(int32_t), cmp_token);
    }
    hi = g_n_sorted;
    while (lo < hi) {
        int mid = (lo + hi) / 2, c;
        const char *b;
        size_t bl;
        bpe_token_bytes(tok(), g_sorted[mid], &b, &bl);
        c = memcmp(b, p, bl < n ? bl : n);
        if (!c) c = (bl > n) - (bl < n);
        if (!c) return g_sorted[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static int ref_merge(const unsigned char *p, size_t n, int32_t *out)
{
    size_t starts[4096 + 1], m = n, i, k;
    int cnt = 0, whole = ref_lookup(p, n);
    /* tiktoken's shortcut: a piece that is itself a (non-special) token. */
    if (whole >= 0 && (n == 1 || (whole >= 256 && whole != 50256))) {
        out[0] = whole;
        return 1;
    }
    for (i = 0; i <= n; i++) starts[i] = i;
    for (;;) {
        int best = -1;
        size_t bi = 0;
        for (i = 0; i + 1 < m; i++) {
            int id = ref_lookup(p + starts[i], starts[i + 2] - starts[i]);
            if (id >= 256 && id != 50256 && (best < 0 || id < best)) { best = id; bi = i; }
        }
        if (best < 0) break;
        for (k = bi + 1; k < m; k++) starts[k] = starts[k + 1];
        m--;
    }
    for (i = 0; i < m; i++) {
        int id = ref_lookup(p + starts[i], starts[i + 1] - starts[i]);
        ck_assert_int_ge(id, 0);
        out[cnt++] = id;
    }
    return cnt;
}

START_TEST(test_round_trip_random)
{
    static unsigned char s[2048];
    int iter;
    SKIP_WITHOUT_FIXTURES();
    for (iter = 0; iter < 3000; iter++) {
        size_t len = random_text(s, sizeof s);
        int n;
        int32_t *ids = encode(s, len, &n);
        assert_decodes_to(ids, n, s, len, "random text");
        free(ids);
    }
    /* Pure random bytes too. */
    for (iter = 0; iter < 500; iter++) {
        size_t len = rnd() % 512, i;
        int n;
        int32_t *ids;
        for (i = 0; i < len; i++) s[i] = (unsigned char)rnd();
        ids = encode(s, len, &n);
        assert_decodes_to(ids, n, s, len, "random bytes");
        free(ids);
    }
}
END_TEST

/* Piece by piece, the heap merge must equal tiktoken's quadratic merge. */
START_TEST(test_merge_matches_reference)
{
    static unsigned char s[2048];
    static int32_t ref[4096];
    int iter, pieces = 0;
    SKIP_WITHOUT_FIXTURES();
    for (iter = 0; iter < 300; iter++) {
        size_t len = random_text(s, 400), pos = 0;
        /* Long letter runs make long pieces that need many merges. */
        if (iter % 3 == 0) {
            size_t i;
            len = 20 + rnd() % 300;
            for (i = 0; i < len; i++) s[i] = (unsigned char)("etaoinshrdlu"[rnd() % 12]);
        }
        while (pos < len) {
            size_t end = bpe_pretok_next(s, len, pos);
            int n, nr;
            int32_t *ids = encode(s + pos, end - pos, &n);
            nr = ref_merge(s + pos, end - pos, ref);
            ck_assert_msg(n == nr && memcmp(ids, ref, sizeof(int32_t) * (size_t)n) == 0,
                          "piece of %zu bytes at %zu differs from the reference merge", end - pos, pos);
            free(ids);
            pos = end;
            pieces++;
        }
    }
    printf("  reference merge: %d pieces agree\n", pieces);
}
END_TEST

START_TEST(test_long_word)
{
    size_t len = 100 * 1024, i;
    unsigned char *s = malloc(len);
    const char *kinds[3] = {"random letters", "one letter repeated", "random digits"};
    int k;
    SKIP_WITHOUT_FIXTURES();
    for (k = 0; k < 3; k++) {
        double t0, dt;
        int n;
        int32_t *ids;
        for (i = 0; i < len; i++)
            s[i] = (unsigned char)(k == 0 ? 'a' + rnd() % 26 : k == 1 ? 'a' : '0' + rnd() % 10);
        ck_assert_uint_eq(bpe_pretok_next(s, len, 0), len); /* truly one piece */
        t0 = now_s();
        ids = encode(s, len, &n);
        dt = now_s() - t0;
        printf("  100 kB word, %s: %d tokens in %.2f ms\n", kinds[k], n, dt * 1e3);
        ck_assert_msg(dt < 1.0, "100 kB word took %.3f s", dt);
        assert_decodes_to(ids, n, s, len, kinds[k]);
        free(ids);
    }
    free(s);
}
END_TEST

/* One pre-token hundreds of KB long ('=' * 200000 is one piece): exact while
 * the work memory holds it, window by window beyond; windows agree with the
 * whole merge on such runs, and any length encodes (never "needs N bytes"). */
START_TEST(test_long_piece_windows)
{
    size_t len = 200000, i, big = (size_t)12 << 20;
    unsigned char *s = malloc(big);
    const char *kinds[5] = {"'=' repeated", "'a' repeated", "random letters", "random digits", "random symbols"};
    size_t plan_work = (size_t)8 << 20, small = bpe_encode_work_bytes(4096);
    void *w_exact = malloc(bpe_encode_work_bytes(len)), *w_plan = malloc(plan_work), *w_small = malloc(small);
    int32_t *a = malloc(sizeof(int32_t) * (len + 1)), *b = malloc(sizeof(int32_t) * (len + 1));
    kvgpt_error err = {0, ""};
    SKIP_WITHOUT_FIXTURES();
    for (int k = 0; k < 5; k++) {
        int na, nb;
        for (i = 0; i < len; i++)
            s[i] = (unsigned char)(k == 0 ? '=' : k == 1 ? 'a' : k == 2 ? 'a' + rnd() % 26 : k == 3 ? '0' + rnd() % 10
                                                                                           : (unsigned char)"=-+*#!?~"[rnd() % 8]);
        ck_assert_uint_eq(bpe_pretok_next(s, len, 0), len);
        ck_assert_int_eq(bpe_encode(tok(), (const char *)s, len, a, (int)len + 1, &na, w_exact,
                                    bpe_encode_work_bytes(len), &err), KVGPT_OK);
        /* The plan's 8 MiB of work holds a 200 kB piece whole. */
        ck_assert_msg(bpe_encode(tok(), (const char *)s, len, b, (int)len + 1, &nb, w_plan, plan_work, &err) ==
                      KVGPT_OK, "%s: %s", kinds[k], err.msg);
        ck_assert_msg(na == nb && memcmp(a, b, sizeof(int32_t) * (size_t)na) == 0, "%s: 8 MiB differs", kinds[k]);
        /* 4 kB windows (about a hundred of them). */
        ck_assert_msg(bpe_encode(tok(), (const char *)s, len, b, (int)len + 1, &nb, w_small, small, &err) ==
                      KVGPT_OK, "%s: %s", kinds[k], err.msg);
        ck_assert_msg(na == nb && memcmp(a, b, sizeof(int32_t) * (size_t)na) == 0, "%s: windows differ", kinds[k]);
        printf("  200 kB piece, %s: %d tokens, the same whole and in 4 kB windows\n", kinds[k], na);
    }
    /* Longer than the plan's work memory holds: windows, spelling it back. */
    memset(s, '=', big);
    int32_t *c = malloc(sizeof(int32_t) * (big + 1));
    int nc;
    ck_assert_msg(bpe_encode(tok(), (const char *)s, big, c, (int)big + 1, &nc, w_plan, plan_work, &err) == KVGPT_OK,
                  "%s", err.msg);
    assert_decodes_to(c, nc, s, big, "12 MiB of '='");
    free(c);
    free(s);
    free(a);
    free(b);
    free(w_exact);
    free(w_plan);
    free(w_small);
}
END_TEST

/* merges.txt with CR (old Mac) or CRLF line ends reads as with LF. */
START_TEST(test_merges_line_ends)
{
    char dir[512], mp[600];
    size_t n;
    SKIP_WITHOUT_FIXTURES();
    char *m = tf_read_file(g_merges, &n);
    ck_assert_ptr_nonnull(m);
    char *crlf = malloc(2 * n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (m[i] == '\n') crlf[o++] = '\r';
        crlf[o++] = m[i];
    }
    const char *text = "Hello, world! It's 2024 and the merges still read.";
    int n0, n1;
    int32_t *want = encode(text, strlen(text), &n0);
    ck_assert_int_eq(tf_tmpdir(dir, sizeof dir), 0);
    for (int k = 0; k < 2; k++) {
        if (k == 0)
            for (size_t i = 0; i < n; i++) m[i] = m[i] == '\n' ? '\r' : m[i];
        ck_assert_int_eq(tf_write(dir, "merges.txt", k == 0 ? m : crlf, k == 0 ? n : o), 0);
        snprintf(mp, sizeof mp, "%s/merges.txt", dir);
        kvgpt_error err = {0, ""};
        kvgpt_status st;
        void *tables, *files;
        bpe_tokenizer *t = load_exact(g_vocab, mp, 50257, &tables, &files, &err, &st);
        ck_assert_msg(st == KVGPT_OK, "%s line ends: %s", k == 0 ? "CR" : "CRLF", err.msg);
        int32_t got[128];
        ck_assert_int_eq(bpe_encode(t, text, strlen(text), got, 128, &n1, g_work, g_work_bytes, &err), KVGPT_OK);
        ck_assert_msg(n1 == n0 && memcmp(got, want, sizeof(int32_t) * (size_t)n0) == 0, "%s: encodes differently",
                      k == 0 ? "CR" : "CRLF");
        free(tables);
        unlink(mp);
    }
    rmdir(dir);
    free(want);
    free(m);
    free(crlf);
}
END_TEST

/* ---- 3. malformed files ----------------------------------------------------- */

static char g_tmp[256];

static void write_file(const char *name, const void *data, size_t len, char *path, size_t cap)
{
    FILE *f;
    snprintf(path, cap, "%s/%s", g_tmp, name);
    f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* A vocabulary of the 256 byte tokens (id = byte), one per line from line 2,
 * then `last` on line 258 and the closing brace on line 259. */
static void write_small_vocab(const char *name, const char *last, char *path, size_t cap)
{
    static char buf[65536];
    size_t o = 0;
    int i;
    o += (size_t)snprintf(buf + o, sizeof buf - o, "{\n");
    for (i = 0; i < 256; i++) {
        unsigned cp = ((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || i >= 174)
                          ? (unsigned)i
                          : (unsigned)(256 + (i <= 32 ? i : i <= 160 ? 33 + (i - 127) : 67));
        o += (size_t)snprintf(buf + o, sizeof buf - o, "\"\\u%04x\": %d,\n", cp, i);
    }
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s\n}\n", last);
    write_file(name, buf, o, path, cap);
}

static void write_str(const char *name, const char *text, char *path, size_t cap)
{
    write_file(name, text, strlen(text), path, cap);
}

static void *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    ck_assert(f != NULL);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Plans and loads; expects failure with status want and a message that
 * names the file and the line. Plan failures count (empty, absurd sizes). */
static void expect_bad(const char *vp, const char *mp, int vocab_size, kvgpt_status want, const char *bad_path,
                       int line, const char *what)
{
    kvgpt_error err = {0, ""};
    kvgpt_status st;
    void *tables = NULL, *files = NULL;
    char at[32];
    bpe_tokenizer *t = load_exact(vp, mp, vocab_size, &tables, &files, &err, &st);
    free(tables);
    ck_assert_msg(t == NULL, "%s: loaded", what);
    ck_assert_msg(st == want, "%s: status %d, want %d (%s)", what, (int)st, (int)want, err.msg);
    snprintf(at, sizeof at, ":%d:", line);
    ck_assert_msg(strstr(err.msg, bad_path) != NULL, "%s: message does not name %s: %s", what, bad_path, err.msg);
    ck_assert_msg(strstr(err.msg, at) != NULL, "%s: message does not say line %d: %s", what, line, err.msg);
    printf("  %-28s -> %s\n", what, err.msg);
}

START_TEST(test_malformed)
{
    char vp[512], mp[512], bad[512];
    size_t vl, ml;
    char *vocab, *merges;
    const char *hdr = "#version: 0.2\n";
    SKIP_WITHOUT_FIXTURES();
    snprintf(g_tmp, sizeof g_tmp, "/tmp/kvgpt_test_bpe_XXXXXX");
    ck_assert(mkdtemp(g_tmp) != NULL);
    vocab = read_all(g_vocab, &vl);
    merges = read_all(g_merges, &ml);
    write_file("vocab.json", vocab, vl, vp, sizeof vp);
    write_file("merges.txt", merges, ml, mp, sizeof mp);

    /* vocab.json */
    write_file("notjson.json", "this is not JSON\n", 17, bad, sizeof bad);
    expect_bad(bad, mp, 50257, KVGPT_ERR_VOCAB, bad, 1, "vocab not JSON");
    write_file("array.json", "[\n1,\n2]\n", 8, bad, sizeof bad);
    expect_bad(bad, mp, 50257, KVGPT_ERR_VOCAB, bad, 1, "vocab is an array");
    write_file("trunc.json", vocab, vl / 2, bad, sizeof bad);
    expect_bad(bad, mp, 50257, KVGPT_ERR_VOCAB, bad, 1, "vocab truncated");
    write_file("empty.json", "", 0, bad, sizeof bad);
    expect_bad(bad, mp, 50257, KVGPT_ERR_VOCAB, bad, 1, "vocab empty");
    expect_bad(vp, mp, 50000, KVGPT_ERR_VOCAB, vp, 1, "vocab_size too small");
    expect_bad(vp, mp, 50400, KVGPT_ERR_VOCAB, vp, 1, "vocab_size too large");
    /* A small vocabulary on several lines, so the message must find the line. */
    write_small_vocab("space.json", "\"x y\": 256", bad, sizeof bad);
    expect_bad(bad, mp, 257, KVGPT_ERR_VOCAB, bad, 258, "token with a raw space");
    write_small_vocab("cjk.json", "\"\\u4e2d\": 256", bad, sizeof bad);
    expect_bad(bad, mp, 257, KVGPT_ERR_VOCAB, bad, 258, "token outside the byte map");
    write_small_vocab("esc.json", "\"\\ud800\": 256", bad, sizeof bad);
    expect_bad(bad, mp, 257, KVGPT_ERR_VOCAB, bad, 258, "token with a lone surrogate");
    write_small_vocab("dupid.json", "\"ab\": 255", bad, sizeof bad);
    expect_bad(bad, mp, 257, KVGPT_ERR_VOCAB, bad, 258, "id used twice");
    write_small_vocab("duptok.json", "\"!\": 256", bad, sizeof bad);
    expect_bad(bad, mp, 257, KVGPT_ERR_VOCAB, bad, 258, "token twice");
    write_small_vocab("gap.json", "\"ab\": 257", bad, sizeof bad);
    expect_bad(bad, mp, 258, KVGPT_ERR_VOCAB, bad, 259, "ids with a gap");
    write_small_vocab("small.json", "\"ab\": 256", bad, sizeof bad);
    expect_bad(bad, mp, 50257, KVGPT_ERR_VOCAB, bad, 259, "vocab of 257 for 50257");
    {
        /* Well-formed small files load and merge. */
        char mp2[512];
        kvgpt_error err = {0, ""};
        kvgpt_status st;
        void *tables, *files;
        bpe_tokenizer *t;
        int32_t ids[4];
        int n;
        write_file("small.txt", "#version: 0.2\r\na b\r\n", 20, mp2, sizeof mp2);
        t = load_exact(bad, mp2, 257, &tables, &files, &err, &st);
        ck_assert_msg(st == KVGPT_OK, "%s", err.msg);
        ck_assert_int_eq(bpe_eot_token(t), -1);
        ck_assert_int_eq(bpe_encode(t, "cab", 3, ids, 4, &n, g_work, g_work_bytes, &err), KVGPT_OK);
        ck_assert(n == 2 && ids[0] == 'c' && ids[1] == 256);
        free(tables);
    }

    /* merges.txt */
    write_str("m_garbage.txt", "#version: 0.2\n\xC4\xA0 t\nthisisgarbage\n", bad, sizeof bad);
    expect_bad(vp, bad, 50257, KVGPT_ERR_VOCAB, bad, 3, "merge line not two tokens");
    write_str("m_three.txt", "#version: 0.2\n\xC4\xA0 t\n\xC4\xA0 a b\n", bad, sizeof bad);
    expect_bad(vp, bad, 50257, KVGPT_ERR_VOCAB, bad, 3, "merge line of three tokens");
    write_str("m_unknown.txt", "#version: 0.2\n\xC4\xA0 t\nxyzzyq foo\n", bad, sizeof bad);
    expect_bad(vp, bad, 50257, KVGPT_ERR_VOCAB, bad, 3, "merge of an unknown token");
    write_str("m_concat.txt", "#version: 0.2\n\xC4\xA0 t\n\xC4\xA0the \xC4\xA0the\n", bad, sizeof bad);
    expect_bad(vp, bad, 50257, KVGPT_ERR_VOCAB, bad, 3, "merge not in the vocab");
    write_str("m_notbpe.txt", "#version: 0.2\n\xC4\xA0 t\n\xE4\xB8\xAD t\n", bad, sizeof bad);
    expect_bad(vp, bad, 50257, KVGPT_ERR_VOCAB, bad, 3, "merge token not BPE text");
    write_str("m_blank.txt", "#version: 0.2\n\xC4\xA0 t\n\n\xC4\xA0 a\n", bad, sizeof bad);
    expect_bad(vp, bad, 50257, KVGPT_ERR_VOCAB, bad, 3, "blank merge line");
    write_str("m_dup.txt", "#version: 0.2\n\xC4\xA0 t\n\xC4\xA0 t\n", bad, sizeof bad);
    expect_bad(vp, bad, 50257, KVGPT_ERR_VOCAB, bad, 3, "merge repeated");
    write_str("m_empty.txt", "", bad, sizeof bad);
    expect_bad(vp, bad, 50257, KVGPT_ERR_VOCAB, bad, 1, "merges empty");
    write_file("m_version.txt", hdr, strlen(hdr), bad, sizeof bad);
    expect_bad(vp, bad, 50257, KVGPT_ERR_VOCAB, bad, 1, "merges with no merges");
    {
        /* Truncated in the middle of a line (and of a UTF-8 character). */
        size_t cut = ml / 2;
        while (merges[cut] != ' ') cut++;
        write_file("m_trunc.txt", merges, cut, bad, sizeof bad);
        {
            int line = 1;
            size_t i;
            for (i = 0; i < cut; i++) line += merges[i] == '\n';
            expect_bad(vp, bad, 50257, KVGPT_ERR_VOCAB, bad, line, "merges truncated mid-line");
            /* Just after the lead byte of a second token's "Ġ" (C4 A0). */
            while (cut + 2 < ml && !(merges[cut] == ' ' && (unsigned char)merges[cut + 1] == 0xC4)) cut++;
            cut += 2;
            write_file("m_trunc2.txt", merges, cut, bad, sizeof bad);
            line = 1;
            for (i = 0; i < cut; i++) line += merges[i] == '\n';
            expect_bad(vp, bad, 50257, KVGPT_ERR_VOCAB, bad, line, "merges cut inside a char");
        }
    }
    {
        /* An absurd size is refused from stat alone (a sparse file: no disk used). */
        FILE *f;
        snprintf(bad, sizeof bad, "%s/huge.txt", g_tmp);
        f = fopen(bad, "wb");
        ck_assert(f != NULL);
        ck_assert_int_eq(ftruncate(fileno(f), (off_t)300 << 20), 0);
        fclose(f);
        expect_bad(vp, bad, 50257, KVGPT_ERR_VOCAB, bad, 1, "absurd file size");
        unlink(bad);
    }
    /* A missing file is an I/O error that names it. */
    {
        kvgpt_error err = {0, ""};
        bpe_sizes sz;
        snprintf(bad, sizeof bad, "%s/nope.txt", g_tmp);
        ck_assert_int_eq(bpe_plan(vp, bad, 50257, &sz, &err), KVGPT_ERR_IO);
        ck_assert(strstr(err.msg, bad) != NULL);
    }
    /* OpenAI's names are found too. */
    {
        char v2[512], m2[512];
        write_file("encoder.json", vocab, vl, v2, sizeof v2);
        write_file("vocab.bpe", merges, ml, m2, sizeof m2);
        unlink(vp);
        ck_assert(bpe_find_files(g_tmp, v2, m2, sizeof v2));
        ck_assert(strstr(v2, "encoder.json") && strstr(m2, "vocab.bpe"));
        write_file("vocab.json", vocab, vl, vp, sizeof vp);
        ck_assert(bpe_find_files(g_tmp, v2, m2, sizeof v2));
        ck_assert(strstr(v2, "vocab.json") && strstr(m2, "merges.txt"));
        ck_assert(!bpe_find_files("/nonexistent-dir", v2, m2, sizeof v2));
    }
    free(vocab);
    free(merges);
    {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

/* ---- 4. the plan is exact ----------------------------------------------------- */

START_TEST(test_plan_exact)
{
    bpe_sizes sz;
    kvgpt_error err = {0, ""};
    bpe_tokenizer *t = NULL;
    void *tables, *files;
    double t0, dt;
    SKIP_WITHOUT_FIXTURES();
    ck_assert_int_eq(bpe_plan(g_vocab, g_merges, 50257, &sz, &err), KVGPT_OK);
    printf("  plan: tables %zu bytes, files %zu bytes\n", sz.table_bytes, sz.file_bytes);
    ck_assert_int_eq(posix_memalign(&tables, 64, sz.table_bytes), 0);
    files = malloc(sz.file_bytes);
    /* One byte short of either: refused cleanly, nothing returned. */
    t = (bpe_tokenizer *)1;
    ck_assert_int_eq(bpe_load(tables, sz.table_bytes - 1, files, sz.file_bytes, g_vocab, g_merges, 50257, &t, &err),
                     KVGPT_ERR_ARG);
    ck_assert(t == NULL);
    ck_assert_msg(strstr(err.msg, "need") != NULL, "%s", err.msg);
    ck_assert_int_eq(bpe_load(tables, sz.table_bytes, files, sz.file_bytes - 1, g_vocab, g_merges, 50257, &t, &err),
                     KVGPT_ERR_ARG);
    ck_assert(t == NULL);
    /* Exactly the plan: works (ASan would see a byte past it). */
    t0 = now_s();
    ck_assert_int_eq(bpe_load(tables, sz.table_bytes, files, sz.file_bytes, g_vocab, g_merges, 50257, &t, &err),
                     KVGPT_OK);
    dt = now_s() - t0;
    printf("  load: %.1f ms\n", dt * 1e3);
    ck_assert(t != NULL);
    /* The file buffer is free after load: scribbling on it changes nothing. */
    memset(files, 0xAB, sz.file_bytes);
    {
        int32_t ids[8];
        int n;
        ck_assert_int_eq(bpe_encode(t, "Hello, world!", 13, ids, 8, &n, g_work, g_work_bytes, &err), KVGPT_OK);
        ck_assert(n == 4 && ids[0] == 15496 && ids[1] == 11 && ids[2] == 995 && ids[3] == 0);
    }
    /* nanoGPT pads GPT-2's vocab to 50304: accepted; the padding ids have no bytes. */
    ck_assert_int_eq(bpe_plan(g_vocab, g_merges, 50304, &sz, &err), KVGPT_OK);
    free(tables);
    ck_assert_int_eq(posix_memalign(&tables, 64, sz.table_bytes), 0);
    ck_assert_int_eq(bpe_load(tables, sz.table_bytes, files, sz.file_bytes, g_vocab, g_merges, 50304, &t, &err),
                     KVGPT_OK);
    {
        const char *b;
        size_t bl;
        ck_assert_int_eq(bpe_vocab_size(t), 50304);
        ck_assert_int_eq(bpe_token_count(t), 50257);
        ck_assert_int_eq(bpe_token_bytes(t, 50300, &b, &bl), KVGPT_ERR_TOKEN);
    }
    free(tables);
    free(files);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bpe");
    TCase *tc = tcase_create("bpe");
    SRunner *sr;
    int failed;
    find_fixtures();
    if (!g_have_fixtures) printf("test_bpe: fixtures not found at %s: tests are skipped\n", g_fixtures);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pretok);
    tcase_add_test(tc, test_basics);
    tcase_add_test(tc, test_vectors);
    tcase_add_test(tc, test_round_trip_random);
    tcase_add_test(tc, test_merge_matches_reference);
    tcase_add_test(tc, test_long_word);
    tcase_add_test(tc, test_long_piece_windows);
    tcase_add_test(tc, test_merges_line_ends);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_plan_exact);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free(g_sorted);
    free(g_tables);
    free(g_work);
    return failed ? 1 : 0;
}
