/* tests/test_cuda_noalloc.c — TARGET=cuda only (the CPU build leaves it out).
 *
 * With a device: interposes the allocators (malloc, calloc, realloc,
 * posix_memalign, aligned_alloc, and cudaMalloc, cudaMallocAsync,
 * cudaMallocHost, cudaHostAlloc, cudaMallocManaged, cudaMallocPitch,
 * cudaMallocFromPoolAsync) and checks that kvgpt_open makes exactly one
 * cudaMalloc (the device arena) and that nothing at all is allocated between
 * kvgpt_open's return and the end of a generation: decode steps, prefill,
 * window recomputes and the no-cache path, f32/f16/bf16 weights and caches,
 * batches past 8 and 64 rows; and, at the port level, that replaying a
 * recorded decode graph and sampling on the device allocate nothing either.
 * This works because the test links the shared cudart: the executable's
 * cudaMalloc comes first, dlsym(RTLD_NEXT) finds libcudart.so's. malloc goes
 * to glibc's __libc_malloc (dlsym itself may allocate).
 *
 * Without a device: checks that opening a model fails cleanly with
 * KVGPT_ERR_BACKEND and a message naming CUDA, leaving nothing behind, and
 * that the plan puts weights, cache and activations in the device space. */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvgpt.h"
#include "port/port.h"
#include "tests/support/fixtures.h"
#include "tests/support/suite.h"

/* The sanitizers bring their own malloc: the host counters stay off there. */
#if defined(__SANITIZE_ADDRESS__)
#define COUNT_HOST_ALLOCS 0
#else
#define COUNT_HOST_ALLOCS 1
#endif

/* ---- the counters ---- */
enum {
    K_MALLOC, K_CALLOC, K_REALLOC, K_POSIX_MEMALIGN, K_ALIGNED_ALLOC,
    K_CUDA_MALLOC, K_CUDA_MALLOC_ASYNC, K_CUDA_MALLOC_HOST, K_CUDA_HOST_ALLOC,
    K_CUDA_MALLOC_MANAGED, K_CUDA_MALLOC_PITCH, K_CUDA_MALLOC_FROM_POOL, K_COUNT
};
static const char *const kind_name[K_COUNT] = {
    "malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc",
    "cudaMalloc", "cudaMallocAsync", "cudaMallocHost", "cudaHostAlloc",
    "cudaMallocManaged", "cudaMallocPitch", "cudaMallocFromPoolAsync"};

static volatile int armed;
static long counts[K_COUNT];
static void *first_caller[K_COUNT];

static void note(int k, void *caller)
{
    if (!armed) return;
    if (__atomic_fetch_add(&counts[k], 1, __ATOMIC_RELAXED) == 0) first_caller[k] = caller;
}

static void arm(void)
{
    memset(counts, 0, sizeof counts);
    memset(first_caller, 0, sizeof first_caller);
    armed = 1;
}

static void disarm(void) { armed = 0; }

/* "libfoo.so (symbol+0x12)" for an address, into buf. */
static const char *who(void *addr, char *buf, size_t cap)
{
    Dl_info info;
    if (addr && dladdr(addr, &info) && info.dli_fname)
        snprintf(buf, cap, "%s (%s)", info.dli_fname, info.dli_sname ? info.dli_sname : "?");
    else
        snprintf(buf, cap, "%p", addr);
    return buf;
}

/* ---- host allocators ---- */
#if COUNT_HOST_ALLOCS
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t a, size_t b);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t al, size_t n);

void *malloc(size_t n)
{
    note(K_MALLOC, __builtin_return_address(0));
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    note(K_CALLOC, __builtin_return_address(0));
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    note(K_REALLOC, __builtin_return_address(0));
    return __libc_realloc(p, n);
}

int posix_memalign(void **out, size_t al, size_t n)
{
    note(K_POSIX_MEMALIGN, __builtin_return_address(0));
    if (al < sizeof(void *) || (al & (al - 1))) return EINVAL;
    void *p = __libc_memalign(al, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t al, size_t n)
{
    note(K_ALIGNED_ALLOC, __builtin_return_address(0));
    return __libc_memalign(al, n);
}
#endif

/* ---- CUDA allocators (no CUDA header: cudaError_t is an int, streams and pools pointers) ---- */
int cudaGetDeviceCount(int *count);
int cudaMemGetInfo(size_t *free_b, size_t *total_b);
const char *cudaGetErrorString(int e);

static void *next_fn(const char *name) { return dlsym(RTLD_NEXT, name); }

#define NOT_FOUND 999   /* any non-zero cudaError_t: "the real one is missing" */

int cudaMalloc(void **p, size_t n);
int cudaMalloc(void **p, size_t n)
{
    static int (*f)(void **, size_t);
    note(K_CUDA_MALLOC, __builtin_return_address(0));
    if (!f) *(void **)&f = next_fn("cudaMalloc");
    return f ? f(p, n) : NOT_FOUND;
}

int cudaMallocAsync(void **p, size_t n, void *stream);
int cudaMallocAsync(void **p, size_t n, void *stream)
{
    static int (*f)(void **, size_t, void *);
    note(K_CUDA_MALLOC_ASYNC, __builtin_return_address(0));
    if (!f) *(void **)&f = next_fn("cudaMallocAsync");
    return f ? f(p, n, stream) : NOT_FOUND;
}

int cudaMallocHost(void **p, size_t n);
int cudaMallocHost(void **p, size_t n)
{
    static int (*f)(void **, size_t);
    note(K_CUDA_MALLOC_HOST, __builtin_return_address(0));
    if (!f) *(void **)&f = next_fn("cudaMallocHost");
    return f ? f(p, n) : NOT_FOUND;
}

int cudaHostAlloc(void **p, size_t n, unsigned flags);
int cudaHostAlloc(void **p, size_t n, unsigned flags)
{
    static int (*f)(void **, size_t, unsigned);
    note(K_CUDA_HOST_ALLOC, __builtin_return_address(0));
    if (!f) *(void **)&f = next_fn("cudaHostAlloc");
    return f ? f(p, n, flags) : NOT_FOUND;
}

int cudaMallocManaged(void **p, size_t n, unsigned flags);
int cudaMallocManaged(void **p, size_t n, unsigned flags)
{
    static int (*f)(void **, size_t, unsigned);
    note(K_CUDA_MALLOC_MANAGED, __builtin_return_address(0));
    if (!f) *(void **)&f = next_fn("cudaMallocManaged");
    return f ? f(p, n, flags) : NOT_FOUND;
}

int cudaMallocPitch(void **p, size_t *pitch, size_t w, size_t h);
int cudaMallocPitch(void **p, size_t *pitch, size_t w, size_t h)
{
    static int (*f)(void **, size_t *, size_t, size_t);
    note(K_CUDA_MALLOC_PITCH, __builtin_return_address(0));
    if (!f) *(void **)&f = next_fn("cudaMallocPitch");
    return f ? f(p, pitch, w, h) : NOT_FOUND;
}

int cudaMallocFromPoolAsync(void **p, size_t n, void *pool, void *stream);
int cudaMallocFromPoolAsync(void **p, size_t n, void *pool, void *stream)
{
    static int (*f)(void **, size_t, void *, void *);
    note(K_CUDA_MALLOC_FROM_POOL, __builtin_return_address(0));
    if (!f) *(void **)&f = next_fn("cudaMallocFromPoolAsync");
    return f ? f(p, n, pool, stream) : NOT_FOUND;
}

/* ---- helpers ---- */
static int device_count(void)
{
    static int known = -1;
    if (known < 0) {
        int n = 0;
        int e = cudaGetDeviceCount(&n);
        known = e == 0 ? n : 0;
        if (e != 0) printf("  cudaGetDeviceCount: %s\n", cudaGetErrorString(e));
    }
    return known;
}

static int tokens_seen;
static int count_token(void *user, int seq, int32_t token)
{
    (void)user;
    (void)seq;
    (void)token;
    tokens_seen++;
    return 0;
}

static const kvgpt_region *find_region(const kvgpt_plan *p, const char *name)
{
    for (int i = 0; i < p->n_regions; i++)
        if (strcmp(p->regions[i].name, name) == 0) return &p->regions[i];
    return NULL;
}

/* ---- no device ---- */
START_TEST(test_no_device_fails_cleanly)
{
    if (device_count() > 0) {
        tf_skip(__func__, "a CUDA device is present: the no-device checks do not apply");
        return;
    }
    if (!tf_need_fixtures(__func__)) return;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tf_path("shakespeare_char"));
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = dir;
    kvgpt_error err;
    memset(&err, 0, sizeof err);

    /* Planning needs no device, and a separate device space is planned. */
    kvgpt_plan plan;
    kvgpt_status s = kvgpt_plan_model(&o, &plan, &err);
    ck_assert_msg(s == KVGPT_OK, "kvgpt_plan_model: %s: %s", kvgpt_strerror(s), err.msg);
    ck_assert_msg(plan.total[KVGPT_SPACE_DEVICE] > 0, "the CUDA build planned no device memory");
    static const char *const on_device[] = {"wte", "kv.k", "kv.v", "act.x", "logits", "port.workspace"};
    for (size_t i = 0; i < sizeof on_device / sizeof on_device[0]; i++) {
        const kvgpt_region *r = find_region(&plan, on_device[i]);
        ck_assert_msg(r != NULL, "no region \"%s\" in the plan", on_device[i]);
        ck_assert_msg(r->space == KVGPT_SPACE_DEVICE, "region \"%s\" is planned in host memory", on_device[i]);
    }
    const kvgpt_region *hl = find_region(&plan, "logits.host");
    ck_assert_msg(hl && hl->space == KVGPT_SPACE_HOST, "no host copy of the logits is planned");

    /* Opening fails with a clear message, *out NULL, both with its own memory and with ours. */
    kvgpt_model *m = (kvgpt_model *)&plan;   /* anything but NULL: open must clear it */
    s = kvgpt_open(&o, NULL, 0, &m, &err);
    ck_assert_msg(s == KVGPT_ERR_BACKEND, "kvgpt_open without a device: expected KVGPT_ERR_BACKEND, got %s: %s",
                  kvgpt_strerror(s), err.msg);
    ck_assert_msg(m == NULL, "kvgpt_open failed but left *out set");
    ck_assert_msg(strstr(err.msg, "CUDA") != NULL, "the message does not name CUDA: \"%s\"", err.msg);
    printf("  kvgpt_open without a device: %s\n", err.msg);

    size_t hb = kvgpt_plan_host_bytes(&plan);
    void *mem = malloc(hb);
    ck_assert_ptr_nonnull(mem);
    memset(&err, 0, sizeof err);
    m = (kvgpt_model *)&plan;
    s = kvgpt_open(&o, mem, hb, &m, &err);
    free(mem);
    ck_assert_msg(s == KVGPT_ERR_BACKEND && m == NULL, "kvgpt_open into caller memory without a device: %s: %s",
                  kvgpt_strerror(s), err.msg);
    kvgpt_close(NULL);
}
END_TEST

/* ---- with a device ---- */
typedef struct {
    const char *model;
    kvgpt_dtype wdt, kvdt;
    int batch, context, n_seq, use_cache, max_new;
    const int32_t *prompt;
    int n_prompt;
} run_case;

static const int32_t hf_prompt[] = {464, 3290, 318, 257, 1332, 286, 262, 1994, 13, 198, 464, 2068};
static const int32_t char_prompt[] = {18, 47, 56, 57, 58, 1, 0, 20, 43, 53, 1, 39};

static const run_case cases[] = {
    /* decode of 2 sequences, context 32: shifts recompute 16 rows */
    {"gpt2_tiny_hf", KVGPT_DTYPE_BF16, KVGPT_DTYPE_F16, 2, 32, 2, 1, 48, hf_prompt, 12},
    /* 9 sequences: a prefill of 108 rows (more than 64), decode steps of 9 */
    {"gpt2_tiny_hf", KVGPT_DTYPE_BF16, KVGPT_DTYPE_F32, 9, 0, 9, 1, 30, hf_prompt, 12},
    /* no cache: every step recomputes the whole window (12..31 rows) */
    {"gpt2_tiny_hf", KVGPT_DTYPE_F16, KVGPT_DTYPE_BF16, 1, 0, 1, 0, 20, hf_prompt, 12},
    /* f32 everywhere, no biases, exact GELU; past block_size 64: shifts */
    {"shakespeare_char", KVGPT_DTYPE_F32, KVGPT_DTYPE_F32, 3, 0, 3, 1, 80, char_prompt, 12},
};

static void check_none(const char *phase, const run_case *c)
{
    char buf[512];
    for (int k = 0; k < K_COUNT; k++)
        ck_assert_msg(counts[k] == 0, "%s (%s, weights %d, kv %d): %ld call(s) to %s; the first from %s", phase,
                      c->model, (int)c->wdt, (int)c->kvdt, counts[k], kind_name[k],
                      who(first_caller[k], buf, sizeof buf));
}

START_TEST(test_generate_allocates_nothing)
{
    if (device_count() <= 0) {
        tf_skip(__func__, "no CUDA device: the allocation checks need one");
        return;
    }
    if (!tf_need_fixtures(__func__)) return;
#if COUNT_HOST_ALLOCS
    /* The interposer is live (else the malloc checks below would prove nothing). */
    void *(*volatile mf)(size_t) = malloc;
    arm();
    void *probe = mf(24);
    disarm();
    free(probe);
    ck_assert_msg(counts[K_MALLOC] == 1, "the malloc interposer saw %ld calls, expected 1", counts[K_MALLOC]);
#else
    printf("  sanitizer build: host allocators not counted, CUDA ones are\n");
#endif
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const run_case *c = &cases[i];
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", tf_path(c->model));
        kvgpt_options o;
        kvgpt_options_default(&o);
        o.model_dir = dir;
        o.batch = c->batch;
        o.context = c->context;
        o.weight_dtype = c->wdt;
        o.kv_dtype = c->kvdt;
        o.no_tokenizer = 1;
        kvgpt_error err;
        memset(&err, 0, sizeof err);
        kvgpt_model *m = NULL;

        arm();
        kvgpt_status s = kvgpt_open(&o, NULL, 0, &m, &err);
        disarm();
        ck_assert_msg(s == KVGPT_OK, "kvgpt_open %s: %s: %s", c->model, kvgpt_strerror(s), err.msg);
        char buf[512];
        ck_assert_msg(counts[K_CUDA_MALLOC] == 1, "kvgpt_open %s made %ld cudaMalloc calls; the device arena is one",
                      c->model, counts[K_CUDA_MALLOC]);
        for (int k = K_CUDA_MALLOC_ASYNC; k < K_COUNT; k++)
            ck_assert_msg(counts[k] == 0, "kvgpt_open %s: %ld call(s) to %s, the first from %s", c->model, counts[k],
                          kind_name[k], who(first_caller[k], buf, sizeof buf));

        kvgpt_gen_options g;
        kvgpt_gen_options_default(&g);
        g.max_new_tokens = c->max_new;
        g.n_seq = c->n_seq;
        g.use_cache = c->use_cache;
        g.top_k = 40;
        g.stop_at_eot = 0;
        g.on_token = count_token;
        kvgpt_gen_result res;
        memset(&res, 0, sizeof res);
        size_t free0 = 0, free1 = 0, total = 0;
        (void)cudaMemGetInfo(&free0, &total);
        tokens_seen = 0;

        arm();
        s = kvgpt_generate(m, c->prompt, c->n_prompt, &g, &res, &err);
        disarm();

        (void)cudaMemGetInfo(&free1, &total);
        ck_assert_msg(s == KVGPT_OK, "kvgpt_generate %s: %s: %s", c->model, kvgpt_strerror(s), err.msg);
        check_none("kvgpt_generate", c);
        ck_assert_msg(tokens_seen == c->n_seq * c->max_new, "%s: %d tokens generated, expected %d", c->model,
                      tokens_seen, c->n_seq * c->max_new);
        if (c->use_cache && c->n_prompt + c->max_new > kvgpt_model_plan(m)->context)
            ck_assert_msg(res.recomputes > 0, "%s: the window never shifted, the recompute path went untested",
                          c->model);
        /* Informational: driver-side device allocations (e.g. lazy module loading) show only here. */
        printf("  %s (weights %d, kv %d, cache %s): %d tokens, device free memory %zu -> %zu bytes\n", c->model,
               (int)c->wdt, (int)c->kvdt, c->use_cache ? "on" : "off", tokens_seen, free0, free1);
        kvgpt_close(m);
    }
}
END_TEST

/* ---- the port alone: graph replays and device sampling ---- */
START_TEST(test_replay_and_sampling_allocate_nothing)
{
    if (device_count() <= 0) {
        tf_skip(__func__, "no CUDA device: the allocation checks need one");
        return;
    }
    enum { C = 64, V = 1000, N = 2 };
    /* One host block: the port, then the page-locked copies' buffers (as the host arena holds both). */
    const size_t port_b = (port_struct_bytes() + 63) / 64 * 64, host_b = port_b + ((size_t)1 << 20);
    char *host = aligned_alloc(64, host_b);
    ck_assert_ptr_nonnull(host);
    memset(host, 0, host_b);
    float *hx = (float *)(void *)(host + port_b), *hl = hx + N * C;
    const size_t dev_b = (size_t)64 << 20, ws_b = port_workspace_bytes(N, 64, C, 1);
    void *dev = NULL;
    kvgpt_error err;
    memset(&err, 0, sizeof err);
    ck_assert_msg(port_device_arena(&dev, dev_b, &err) == KVGPT_OK, "%s", err.msg);
    kvgpt_options o;
    kvgpt_options_default(&o);
    port *p = NULL;
    ck_assert_msg(port_init(&p, host, dev, dev_b, dev, ws_b, &o, &err) == KVGPT_OK, "%s", err.msg);
    ck_assert_msg(port_host_memory(p, host, host_b, &err) == KVGPT_OK, "%s", err.msg);
    char *next = (char *)dev + (ws_b + 255) / 256 * 256;
    port_wmat w;
    port_wmat_bind(&w, next, C, V, KVGPT_DTYPE_BF16);
    next += (port_wmat_bytes(C, V, KVGPT_DTYPE_BF16) + 255) / 256 * 256;
    float *dx = (float *)(void *)next, *dl = dx + N * C;
    float *rows = malloc((size_t)V * C * sizeof(float));
    ck_assert_ptr_nonnull(rows);
    for (size_t i = 0; i < (size_t)V * C; i++) rows[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    ck_assert(port_wmat_rows_out(p, &w, 0, V, rows) == KVGPT_OK && port_wmat_finish(p, &w) == KVGPT_OK);
    free(rows);
    for (int i = 0; i < N * C; i++) hx[i] = (float)(i % 7) - 3.0f;

    int recording = port_graph_record(p, 1);
    ck_assert_int_eq(port_graph_begin(p, N, N), 0);
    ck_assert(port_upload(p, dx, hx, N * C * sizeof(float)) == KVGPT_OK);
    port_matmul(p, dl, V, dx, C, &w, NULL, N);
    ck_assert(port_download(p, hl, dl, (size_t)N * V * sizeof(float)) == KVGPT_OK);
    ck_assert_msg(port_graph_end(p, &err) == KVGPT_OK, "%s", err.msg);
    port_graph_record(p, 0);
    ck_assert_msg(port_sync(p, &err) == KVGPT_OK, "%s", err.msg);

    port_sample_params sp = {0.8f, 0.9f, 50};
    uint64_t rng[N] = {1, 2};
    int32_t ids[N];
    int replayed = 0, sampled = 0;
    arm();
    for (int round = 0; round < 5; round++) {
        replayed += port_graph_begin(p, N, N);
        port_graph_end(p, &err);
        port_sync(p, &err);
        sampled += port_sample(p, ids, dl, N, V, &sp, rng, &err) == KVGPT_OK;
    }
    disarm();
    run_case c = {"port", KVGPT_DTYPE_BF16, KVGPT_DTYPE_F32, N, 64, N, 1, 0, NULL, 0};
    check_none("graph replays and port_sample", &c);
    ck_assert_int_eq(replayed, recording ? 5 : 0);
    ck_assert_msg(sampled == 5, "port_sample: %s", err.msg);
    printf("  port: %d graph replays and 5 device draws of %d rows, no allocation\n", replayed, N);
    port_shutdown(p);
    port_device_arena_free(dev);
    free(host);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_noalloc");
    TCase *tc = tcase_create("cuda_noalloc");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_no_device_fails_cleanly);
    tcase_add_test(tc, test_generate_allocates_nothing);
    tcase_add_test(tc, test_replay_and_sampling_allocate_nothing);
    suite_add_tcase(s, tc);
    return tf_run_suite(s);
}
