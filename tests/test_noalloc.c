/* tests/test_noalloc.c — "nothing is allocated after open": this binary
 * interposes the C allocator (malloc, calloc, realloc, free, posix_memalign,
 * aligned_alloc, memalign, valloc) and mmap, forwarding to the real ones
 * found with dlsym(RTLD_NEXT), and counts every call made, from any thread,
 * while a counter is armed. Armed spans run only library calls (no Check
 * assertion, no stdio); the counts are checked after disarming.
 *
 * The promise is about the library's own allocations. The OpenMP runtime
 * (libgomp) allocates its thread pool lazily, on the first parallel region
 * run with more than one thread (kvgpt_open's own parallel work usually
 * triggers it: with threads 2, open's calls include libgomp's), so every
 * model gets one warm-up generation before the counter is armed. After
 * that, generation must make no allocator call at all, runtime included:
 * the counter is not limited to the library's call sites. mmap calls made
 * inside libc itself (thread stacks, malloc's own arenas) do not go through
 * the symbol and are not seen. */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <malloc.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kvgpt.h"
#include "tests/support/fixtures.h"
#include "tests/support/suite.h"

/* ---- the interposer ----------------------------------------------------------- */

enum { F_MALLOC, F_CALLOC, F_REALLOC, F_FREE, F_POSIX_MEMALIGN, F_ALIGNED_ALLOC, F_MEMALIGN, F_VALLOC, F_MMAP,
       F_MUNMAP, F_N };
static const char *const F_NAME[F_N] = {"malloc",         "calloc",   "realloc", "free", "posix_memalign",
                                        "aligned_alloc", "memalign", "valloc",  "mmap", "munmap"};

static long g_calls[F_N];
static volatile int g_armed;
static __thread int t_inside;   /* a real allocator calling back into ours is not counted twice */

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);

/* dlsym itself may call calloc/malloc before the real ones are known: those
 * few bytes come from here (never freed; free() ignores them). */
static unsigned char g_boot[16384] __attribute__((aligned(16)));
static size_t g_boot_used;
static volatile int g_resolving;

static void *boot_alloc(size_t n)
{
    size_t at = g_boot_used, need = (n + 15) & ~(size_t)15;
    if (need > sizeof g_boot - at) return NULL;
    g_boot_used += need;
    memset(g_boot + at, 0, need);
    return g_boot + at;
}

static int is_boot(const void *p)
{
    return (const unsigned char *)p >= g_boot && (const unsigned char *)p < g_boot + sizeof g_boot;
}

static void resolve(void)
{
    if (real_free || g_resolving) return;
    g_resolving = 1;
    real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
    real_valloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "valloc");
    real_mmap = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
    real_munmap = (int (*)(void *, size_t))dlsym(RTLD_NEXT, "munmap");
    real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    g_resolving = 0;
}

/* Counts a call; returns 1 when the caller must answer from the boot buffer. */
static int enter(int f)
{
    if (g_resolving) return 1;
    resolve();
    if (g_armed && !t_inside) __atomic_fetch_add(&g_calls[f], 1, __ATOMIC_RELAXED);
    t_inside++;
    return 0;
}

static void leave(void) { t_inside--; }

void *malloc(size_t n)
{
    if (enter(F_MALLOC)) return boot_alloc(n);
    void *p = real_malloc(n);
    leave();
    return p;
}

void *calloc(size_t n, size_t size)
{
    if (enter(F_CALLOC)) return size && n > SIZE_MAX / size ? NULL : boot_alloc(n * size);
    void *p = real_calloc(n, size);
    leave();
    return p;
}

void *realloc(void *old, size_t n)
{
    if (enter(F_REALLOC)) return NULL;
    void *p;
    if (is_boot(old)) {   /* move out of the boot buffer: its size is unknown, copy what can be there */
        p = real_malloc(n);
        if (p) {
            size_t room = (size_t)(g_boot + sizeof g_boot - (unsigned char *)old);
            memcpy(p, old, n < room ? n : room);
        }
    } else {
        p = real_realloc(old, n);
    }
    leave();
    return p;
}

void free(void *p)
{
    if (!p || is_boot(p)) return;
    if (enter(F_FREE)) return;
    real_free(p);
    leave();
}

int posix_memalign(void **out, size_t align, size_t n)
{
    if (enter(F_POSIX_MEMALIGN)) return 12;   /* ENOMEM */
    int r = real_posix_memalign(out, align, n);
    leave();
    return r;
}

void *aligned_alloc(size_t align, size_t n)
{
    if (enter(F_ALIGNED_ALLOC)) return NULL;
    void *p = real_aligned_alloc(align, n);
    leave();
    return p;
}

void *memalign(size_t align, size_t n)
{
    if (enter(F_MEMALIGN)) return NULL;
    void *p = real_memalign(align, n);
    leave();
    return p;
}

void *valloc(size_t n)
{
    if (enter(F_VALLOC)) return NULL;
    void *p = real_valloc(n);
    leave();
    return p;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (enter(F_MMAP)) return MAP_FAILED;
    void *p = real_mmap(addr, len, prot, flags, fd, off);
    leave();
    return p;
}

int munmap(void *addr, size_t len)
{
    if (enter(F_MUNMAP)) return -1;
    int r = real_munmap(addr, len);
    leave();
    return r;
}

static void arm(void)
{
    for (int f = 0; f < F_N; f++) __atomic_store_n(&g_calls[f], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&g_armed, 1, __ATOMIC_SEQ_CST);
}

/* Disarms; returns the calls counted and writes them, by name, into msg. */
static long disarm(char *msg, size_t cap)
{
    __atomic_store_n(&g_armed, 0, __ATOMIC_SEQ_CST);
    long total = 0;
    size_t len = 0;
    msg[0] = 0;
    for (int f = 0; f < F_N; f++) {
        long c = __atomic_load_n(&g_calls[f], __ATOMIC_RELAXED);
        total += c;
        if (c && len < cap) len += (size_t)snprintf(msg + len, cap - len, " %s×%ld", F_NAME[f], c);
    }
    return total;
}

/* ---- the interposer works (else every zero below would be meaningless) ---------- */

START_TEST(test_interposer_counts)
{
    /* Through volatile pointers, so the compiler cannot drop the pairs. */
    void *(*volatile m)(size_t) = malloc;
    void (*volatile f)(void *) = free;
    void *(*volatile c)(size_t, size_t) = calloc;
    void *(*volatile r)(void *, size_t) = realloc;
    int (*volatile pm)(void **, size_t, size_t) = posix_memalign;
    void *(*volatile aa)(size_t, size_t) = aligned_alloc;
    void *(*volatile ma)(size_t, size_t) = memalign;
    void *(*volatile va)(size_t) = valloc;
    char msg[256];
    void *q = NULL;
    arm();
    void *p = m(100);
    p = r(p, 4000);
    f(p);
    f(c(3, 7));
    int ok = pm(&q, 64, 128) == 0;
    f(q);
    f(aa(64, 128));
    f(ma(64, 128));
    f(va(100));
    void *mm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int unmapped = mm != MAP_FAILED && munmap(mm, 4096) == 0;
    long n = disarm(msg, sizeof msg);
    ck_assert(ok && unmapped);
    for (int i = 0; i < F_N; i++)
        ck_assert_msg(g_calls[i] == (i == F_FREE ? 6 : 1), "%s counted %ld times (%s)", F_NAME[i], g_calls[i], msg);
    ck_assert_int_eq(n, 15);

    /* Open is where the library allocates: the counter sees it. */
    const char *dir = tf_path("shakespeare_char");
    if (!dir) return;
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = dir;
    o.threads = 1;
    kvgpt_model *model = NULL;
    kvgpt_error err;
    arm();
    kvgpt_status st = kvgpt_open(&o, NULL, 0, &model, &err);
    n = disarm(msg, sizeof msg);
    ck_assert_msg(st == KVGPT_OK, "open: %s", err.msg);
    ck_assert_msg(n >= 1, "kvgpt_open allocated nothing the interposer saw: it is not interposing");
    arm();
    kvgpt_close(model);
    n = disarm(msg, sizeof msg);
    ck_assert_msg(g_calls[F_FREE] + g_calls[F_MUNMAP] >= 1, "kvgpt_close freed nothing the interposer saw (%s)", msg);
}
END_TEST

/* ---- generation, encode, forward ------------------------------------------------- */

#define NEW_TOKENS 500

typedef struct {
    long calls;
    int32_t last[4];
} sink;

/* Allocates nothing: the tokens only need to be counted. */
static int on_tok(void *user, int seq, int32_t t)
{
    sink *s = user;
    s->calls++;
    if (seq >= 0 && seq < 4) s->last[seq] = t;
    return 0;
}

static kvgpt_model *open_model(const char *name, int batch, int context, int threads)
{
    const char *dir = tf_path(name);
    if (!dir) return NULL;
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = dir;
    o.batch = batch;
    o.context = context;
    o.threads = threads;
    kvgpt_model *m = NULL;
    kvgpt_error err;
    ck_assert_msg(kvgpt_open(&o, NULL, 0, &m, &err) == KVGPT_OK, "open %s (batch %d, context %d): %s", dir, batch,
                  context, err.msg);
    return m;
}

/* One warm-up generation per model, before anything is armed (see the header). */
static void warm_up(kvgpt_model *m, const int32_t *prompt, int n)
{
    kvgpt_gen_options g;
    kvgpt_gen_options_default(&g);
    g.max_new_tokens = 8;
    g.use_cache = 0;
    kvgpt_gen_result res;
    kvgpt_error err;
    ck_assert_msg(kvgpt_generate(m, prompt, n, &g, &res, &err) == KVGPT_OK, "warm-up: %s", err.msg);
}

/* Every window policy, cache on (and off when `nocache`), n_seq sequences of
 * max_new sampled tokens, each generation inside one armed span. */
static void generations(kvgpt_model *m, const char *what, const int32_t *prompt, int n_prompt, int n_seq, int nocache,
                        int max_new)
{
    const int ctx = kvgpt_model_plan(m)->context;
    for (int w = KVGPT_WINDOW_SHIFT; w <= KVGPT_WINDOW_STOP; w++)
        for (int cache = 1; cache >= !nocache; cache--) {
            kvgpt_gen_options g;
            kvgpt_gen_options_default(&g);
            g.max_new_tokens = max_new;
            g.window = (kvgpt_window)w;
            g.use_cache = cache;
            g.n_seq = n_seq;
            g.stop_at_eot = 0;
            g.seed = 1000 + (uint64_t)(w * 2 + cache);
            sink s = {0, {0}};
            g.on_token = on_tok;
            g.user = &s;
            kvgpt_gen_result res;
            kvgpt_error err;
            char msg[256];
            arm();
            kvgpt_status st = kvgpt_generate(m, prompt, n_prompt, &g, &res, &err);
            long n = disarm(msg, sizeof msg);
            /* stop: tokens until the window is full, plus the one predicted from the full window */
            int full = w == KVGPT_WINDOW_STOP && max_new > ctx - n_prompt + 1;
            long tokens = (long)(full ? ctx - n_prompt + 1 : max_new) * n_seq;
            kvgpt_status want = full ? KVGPT_ERR_CONTEXT_FULL : KVGPT_OK;
            ck_assert_msg(st == want, "%s window %d cache %d: status %d (%s)", what, w, cache, st, err.msg);
            ck_assert_msg(s.calls == tokens, "%s window %d cache %d: %ld tokens, %ld expected", what, w, cache, s.calls,
                          tokens);
            ck_assert_msg(n == 0, "%s: window %d, cache %d, %d sequences of %d tokens: %ld allocator calls:%s", what, w,
                          cache, n_seq, max_new, n, msg);
        }
}

static void no_alloc_generation(const char *name, const int32_t *prompt, int n_prompt)
{
    /* 500 tokens: batch 1 at the model's context with the cache; batch 1 and
     * batch 4 (4 samples) at context 16 with and without it — the same code
     * paths (prefill, decode, ~30 shifts or slides, the recompute, rows split
     * across forwards) at a fraction of the cost of a full window recomputed
     * 500 times. Then two threads, shorter: the runtime's pool is in use. */
    struct { int batch, context, threads, n_seq, nocache, max_new; } cfg[] = {
        {1, 0, 1, 1, 0, NEW_TOKENS}, {1, 16, 1, 1, 1, NEW_TOKENS}, {4, 16, 1, 4, 1, NEW_TOKENS}, {2, 0, 2, 2, 1, 12}};
    int32_t long_prompt[256];
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        kvgpt_model *m = open_model(name, cfg[i].batch, cfg[i].context, cfg[i].threads);
        if (!m) return;
        if (cfg[i].max_new < NEW_TOKENS) {
            /* The short run starts 4 tokens before the window is full, to cross it. */
            int ctx = kvgpt_model_plan(m)->context;
            for (int k = 0; k < ctx - 4; k++) long_prompt[k] = prompt[k % n_prompt];
            prompt = long_prompt;
            n_prompt = ctx - 4;
        }
        warm_up(m, prompt, n_prompt);
        char what[96];
        snprintf(what, sizeof what, "%s batch %d context %d threads %d", name, cfg[i].batch,
                 kvgpt_model_plan(m)->context, cfg[i].threads);
        generations(m, what, prompt, n_prompt, cfg[i].n_seq, cfg[i].nocache, cfg[i].max_new);
        kvgpt_close(m);
    }
}

static const int32_t CHAR_PROMPT[6] = {30, 27, 25, 17, 27, 10};   /* "ROMEO:" */
static const int32_t BPE_PROMPT[5] = {15496, 11, 616, 3290, 318};   /* "Hello, my dog is" */

START_TEST(test_generate_char)
{
    if (!tf_need_fixtures(__func__)) return;
    no_alloc_generation("shakespeare_char", CHAR_PROMPT, 6);
}
END_TEST

START_TEST(test_generate_bpe)
{
    if (!tf_need_fixtures(__func__)) return;
    no_alloc_generation("gpt2_tiny_hf", BPE_PROMPT, 5);
}
END_TEST

/* kvgpt_encode, kvgpt_forward, token bytes and the sampler; failures too. */
static void no_alloc_calls(const char *name, const char *text)
{
    kvgpt_model *m = open_model(name, 1, 0, 1);
    if (!m) return;
    const int ctx = kvgpt_model_plan(m)->context, V = kvgpt_model_config(m)->vocab_size;
    int32_t *ids = malloc(4096 * sizeof *ids);
    float *logits = malloc((size_t)V * sizeof *logits);
    void *scratch = malloc((size_t)V * 8);
    ck_assert(ids && logits && scratch);
    warm_up(m, (const int32_t[]){0}, 1);
    kvgpt_error err;
    kvgpt_gen_options g;
    kvgpt_gen_options_default(&g);
    char msg[256];
    int n = 0, n2 = 0;

    arm();
    kvgpt_status enc = kvgpt_encode(m, text, strlen(text), ids, 4096, &n, &err);
    long calls = disarm(msg, sizeof msg);
    ck_assert_msg(enc == KVGPT_OK && n > ctx, "%s: encode gave %d tokens (%s)", name, n, err.msg);
    ck_assert_msg(calls == 0, "%s: kvgpt_encode of %zu bytes: %ld allocator calls:%s", name, strlen(text), calls, msg);

    arm();
    kvgpt_status f1 = kvgpt_forward(m, ids, ctx, logits, &err);
    kvgpt_status f2 = kvgpt_forward(m, ids, 1, logits, &err);
    const char *bytes;
    size_t len, total = 0;
    for (int i = 0; i < n; i++)
        if (kvgpt_token_bytes(m, ids[i], &bytes, &len) == KVGPT_OK) total += len;
    uint64_t rng = 5;
    int32_t t = kvgpt_sample_logits(logits, V, &g, &rng, scratch);
    calls = disarm(msg, sizeof msg);
    ck_assert_msg(f1 == KVGPT_OK && f2 == KVGPT_OK && t >= 0 && t < V && total > 0, "%s: forward/sample failed: %s",
                  name, err.msg);
    ck_assert_msg(calls == 0, "%s: forward, token bytes, sample: %ld allocator calls:%s", name, calls, msg);

    /* Refusals allocate nothing either (their messages are formatted into err). */
    kvgpt_gen_result res;
    g.top_p = 2.0f;
    arm();
    kvgpt_status e1 = kvgpt_generate(m, ids, 4, &g, &res, &err);
    kvgpt_status e2 = kvgpt_forward(m, ids, ctx + 1, logits, &err);
    kvgpt_status e3 = kvgpt_encode(m, text, strlen(text), ids, 2, &n2, &err);
    calls = disarm(msg, sizeof msg);
    ck_assert(e1 == KVGPT_ERR_ARG && e2 == KVGPT_ERR_PROMPT && e3 == KVGPT_ERR_ARG);
    ck_assert_msg(calls == 0, "%s: failing calls: %ld allocator calls:%s", name, calls, msg);
    free(ids);
    free(logits);
    free(scratch);
    kvgpt_close(m);
}

/* Long enough to pass either context; the BPE text mixes scripts, digits and spaces. */
static const char CHAR_TEXT[] =
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n";
static const char BPE_TEXT[] =
    "The quick brown fox jumps over the lazy dog. It's 2024, and   spaces\tand tabs\n\n remain; "
    "caf\xc3\xa9 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 "
    "\xf0\x9f\x98\x80 emoji, numbers 1234567890 and code: for (int i = 0; i < n; i++) { x += y[i]; } "
    "They'll say we've done it; you're sure? I'd think so. Sentences go on and on to pass the context of "
    "one hundred and twenty-eight tokens, which takes a few more words than one would guess at first. "
    "So here are some more: the rain in Spain stays mainly in the plain, and that is all there is to it.";

START_TEST(test_calls_char)
{
    if (!tf_need_fixtures(__func__)) return;
    no_alloc_calls("shakespeare_char", CHAR_TEXT);
}
END_TEST

START_TEST(test_calls_bpe)
{
    if (!tf_need_fixtures(__func__)) return;
    no_alloc_calls("gpt2_tiny_hf", BPE_TEXT);
}
END_TEST

/* The step API and generate's options: decode, every slot operation, a
 * saved state out and back, generate with per-sequence prompts, append,
 * penalties, stop strings, on_text / on_logits / should_abort, and the
 * refusals (a full slot, a damaged state, a call from inside a callback). */
static int text_sink(void *user, int seq, const char *text, size_t len)
{
    sink *s = user;
    (void)seq;
    s->calls += (long)(len > 0 && text[0] != 0);
    return 0;
}

static void logit_edit(void *user, int seq, float *logits, int vocab)
{
    (void)user;
    (void)seq;
    logits[vocab - 1] = -INFINITY;
}

static int never_abort(void *user)
{
    (void)user;
    return 0;
}

static kvgpt_model *g_busy_model;
static int g_not_busy;   /* checked after disarming: Check's asserts allocate */

static int busy_tok(void *user, int seq, int32_t t)
{
    kvgpt_error err;
    int32_t zero = 0;
    kvgpt_batch b = {1, &t, &zero, NULL};
    float logits[1];
    g_not_busy += kvgpt_decode(g_busy_model, &b, logits, &err) != KVGPT_ERR_BUSY;
    return on_tok(user, seq, t);
}

static void no_alloc_session(const char *name)
{
    kvgpt_model *m = open_model(name, 3, 0, 1);
    if (!m) return;
    const int V = kvgpt_model_config(m)->vocab_size, ctx = kvgpt_model_plan(m)->context;
    int32_t ids[64], seq[64];
    for (int i = 0; i < 64; i++) ids[i] = (int32_t)((i * 37 + 11) % V), seq[i] = i % 3;
    float *logits = malloc((size_t)V * 3 * sizeof *logits);
    int32_t *over_ids = calloc((size_t)ctx + 1, sizeof *over_ids), *over_seq = calloc((size_t)ctx + 1, sizeof *over_seq);
    ck_assert(over_ids && over_seq);
    size_t cap = kvgpt_seq_state_bytes(m, ctx), wrote = 0;
    unsigned char *blob = malloc(cap);
    ck_assert(logits && blob);
    warm_up(m, ids, 4);
    kvgpt_error err;
    char msg[256];
    const char *stops[2] = {"\n\n", "the"};
    sink s = {0, {0}};

    arm();
    kvgpt_status st = KVGPT_OK;
    kvgpt_batch b = {30, ids, seq, NULL};
    if (!st) st = kvgpt_seq_reset(m, 0, &err);
    if (!st) st = kvgpt_decode(m, &b, logits, &err);
    if (!st) st = kvgpt_seq_copy(m, 0, 2, &err);
    if (!st) st = kvgpt_seq_truncate(m, 1, 3, &err);
    if (!st) st = kvgpt_seq_shift(m, 2, 4, &err);
    if (!st) st = kvgpt_seq_state_save(m, 0, blob, cap, &wrote, &err);
    if (!st) st = kvgpt_seq_reset(m, 0, &err);
    if (!st) st = kvgpt_seq_state_load(m, 0, blob, wrote, &err);
    blob[wrote / 2] ^= 1;
    kvgpt_status damaged = st ? st : kvgpt_seq_state_load(m, 1, blob, wrote, &err);
    kvgpt_batch full = {ctx + 1, over_ids, over_seq, NULL};   /* one token more than slot 0 can hold */
    kvgpt_status over = kvgpt_decode(m, &full, logits, &err);
    long n = disarm(msg, sizeof msg);
    ck_assert_msg(st == KVGPT_OK && damaged == KVGPT_ERR_STATE && over == KVGPT_ERR_CONTEXT_FULL,
                  "%s: step API: %d %d %d (%s)", name, (int)st, (int)damaged, (int)over, err.msg);
    ck_assert_msg(n == 0, "%s: decode, slot operations, state save/load: %ld allocator calls:%s", name, n, msg);

    const int32_t *prompts[3] = {ids, ids + 5, ids + 9};
    int n_prompts[3] = {5, 4, 7};
    kvgpt_gen_options g;
    kvgpt_gen_options_default(&g);
    g.max_new_tokens = 40;
    g.n_seq = 3;
    g.prompts = prompts;
    g.n_prompts = n_prompts;
    g.append = 1;
    g.repetition_penalty = 1.2f;
    g.presence_penalty = 0.1f;
    g.frequency_penalty = 0.1f;
    g.stop = stops;
    g.n_stop = 2;
    g.on_token = on_tok;
    g.on_text = text_sink;
    g.on_logits = logit_edit;
    g.should_abort = never_abort;
    g.user = &s;
    kvgpt_gen_result res;
    for (int i = 0; i < 3; i++) kvgpt_seq_truncate(m, i, 0, &err);
    arm();
    st = kvgpt_generate(m, NULL, 0, &g, &res, &err);
    g_busy_model = m;
    g.on_token = busy_tok;
    g.append = 0;
    kvgpt_status st2 = st ? st : kvgpt_generate(m, NULL, 0, &g, &res, &err);
    n = disarm(msg, sizeof msg);
    ck_assert_msg(st == KVGPT_OK && st2 == KVGPT_OK, "%s: generate with options: %s", name, err.msg);
    ck_assert_int_eq(g_not_busy, 0);
    ck_assert_msg(n == 0, "%s: generate with prompts, append, penalties, stop strings, callbacks: %ld allocator "
                  "calls:%s", name, n, msg);
    free(logits);
    free(blob);
    free(over_ids);
    free(over_seq);
    kvgpt_close(m);
}

START_TEST(test_session_char)
{
    if (!tf_need_fixtures(__func__)) return;
    no_alloc_session("shakespeare_char");
}
END_TEST

START_TEST(test_session_bpe)
{
    if (!tf_need_fixtures(__func__)) return;
    no_alloc_session("gpt2_tiny_hf");
}
END_TEST

static Suite *noalloc_suite(void)
{
    Suite *s = suite_create("noalloc");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_interposer_counts);
    tcase_add_test(tc, test_generate_char);
    tcase_add_test(tc, test_generate_bpe);
    tcase_add_test(tc, test_calls_char);
    tcase_add_test(tc, test_calls_bpe);
    tcase_add_test(tc, test_session_char);
    tcase_add_test(tc, test_session_bpe);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tf_run_suite(noalloc_suite());
}
