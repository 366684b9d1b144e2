/* tests/test_arena.c — the memory plan is the whole truth: kvgpt_open takes
 * exactly the planned bytes (one allocation, or the caller's memory of
 * kvgpt_plan_host_bytes() and not a byte less), regions are aligned and
 * disjoint, GPT-2 small's KV cache and weights have their known sizes, the
 * arena limit refuses at plan time, and nothing is allocated after open:
 * malloc and friends are interposed in this binary and counted. */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kvgpt.h"
#include "port/port.h"   /* port_wmat_bytes (the layout padding), port_device_is_host */
#include "tests/support/fixtures.h"
#include "tests/support/suite.h"
#include "tests/support/loader_ref.h"

/* ---- counting allocations ---------------------------------------------- *
 * Every malloc/calloc/realloc/posix_memalign/aligned_alloc of the process
 * goes through these. dlsym may itself call calloc before the real one is
 * known: those calls are served from a static bootstrap buffer. ASan brings
 * its own allocator, so under ASan the counting tests are skipped.
 * A backend with a device of its own (CUDA) makes driver objects at open
 * and close (context, stream, graphs, page-locking) through its runtime's
 * host allocations: there, open and close are checked for the arena itself
 * (the one allocation of the plan's host size, and its free), and generation
 * still for no allocation at all. */

#if defined(__SANITIZE_ADDRESS__)
#define COUNTING 0
#else
#define COUNTING 1

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);
static void (*real_free)(void *);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);
static int resolving;
static unsigned char boot[8192] __attribute__((aligned(64)));
static size_t boot_used;

static int counting;          /* 1 inside a counted window */
static long n_allocs, n_frees;
static long n_gomp;           /* of n_allocs, those the thread runtime made: libgomp's, and the
                                 dynamic loader's TLS of a new thread (open starts threads to learn
                                 how many the system allows: ops_team_start) */
static size_t last_alloc_bytes;
static size_t arena_lo, arena_hi;   /* an allocation of [lo, hi) bytes is the host arena */
static long n_arena, n_arena_freed;
static void *arena_at;

static void *sym(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

static void resolve(void)
{
    if (resolving) return;
    resolving = 1;
    void *p;
    p = sym("calloc");        memcpy(&real_calloc, &p, sizeof p);
    p = sym("malloc");        memcpy(&real_malloc, &p, sizeof p);
    p = sym("realloc");       memcpy(&real_realloc, &p, sizeof p);
    p = sym("posix_memalign"); memcpy(&real_posix_memalign, &p, sizeof p);
    p = sym("aligned_alloc"); memcpy(&real_aligned_alloc, &p, sizeof p);
    p = sym("memalign");      memcpy(&real_memalign, &p, sizeof p);
    p = sym("valloc");        memcpy(&real_valloc, &p, sizeof p);
    p = sym("pvalloc");       memcpy(&real_pvalloc, &p, sizeof p);
    p = sym("free");          memcpy(&real_free, &p, sizeof p);
    p = sym("mmap");          memcpy(&real_mmap, &p, sizeof p);
    p = sym("munmap");        memcpy(&real_munmap, &p, sizeof p);
    resolving = 0;
}

static void *boot_alloc(size_t n)
{
    n = (n + 63) & ~(size_t)63;
    if (n > sizeof boot - boot_used) return NULL;
    void *p = boot + boot_used;
    boot_used += n;
    return p;   /* static storage: already zero */
}

static int in_boot(const void *p)
{
    return (const unsigned char *)p >= boot && (const unsigned char *)p < boot + sizeof boot;
}

/* ra: the caller's address, to tell the OpenMP runtime's allocations apart in reports. */
static void count_alloc(size_t n, void *ra)
{
    if (__atomic_load_n(&counting, __ATOMIC_RELAXED)) {
        __atomic_fetch_add(&n_allocs, 1, __ATOMIC_RELAXED);
        Dl_info di;
        if (dladdr(ra, &di) && di.dli_fname && (strstr(di.dli_fname, "libgomp") || strstr(di.dli_fname, "/ld-")))
            __atomic_fetch_add(&n_gomp, 1, __ATOMIC_RELAXED);
        else
            last_alloc_bytes = n;
    }
}

#define CALLER __builtin_return_address(0)

void *malloc(size_t n)
{
    if (!real_malloc) resolve();
    if (!real_malloc) return boot_alloc(n);
    count_alloc(n, CALLER);
    return real_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    if (!real_calloc) resolve();
    if (!real_calloc) return b && a > SIZE_MAX / b ? NULL : boot_alloc(a * b);
    count_alloc(a * b, CALLER);
    return real_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    if (!real_realloc) resolve();
    if (in_boot(p)) {   /* never grown in practice; copy out of the bootstrap buffer */
        size_t left = sizeof boot - (size_t)((unsigned char *)p - boot);
        void *q = malloc(n);
        if (q) memcpy(q, p, n < left ? n : left);
        return q;
    }
    count_alloc(n, CALLER);
    return real_realloc(p, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    if (!real_posix_memalign) resolve();
    count_alloc(n, CALLER);
    return real_posix_memalign(out, align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    if (!real_aligned_alloc) resolve();
    count_alloc(n, CALLER);
    return real_aligned_alloc(align, n);
}

void *memalign(size_t align, size_t n)
{
    if (!real_memalign) resolve();
    count_alloc(n, CALLER);
    return real_memalign(align, n);
}

void *valloc(size_t n)
{
    if (!real_valloc) resolve();
    count_alloc(n, CALLER);
    return real_valloc(n);
}

void *pvalloc(size_t n)
{
    if (!real_pvalloc) resolve();
    count_alloc(n, CALLER);
    return real_pvalloc(n);
}

/* The arena the library takes itself is an anonymous mapping. */
void *mmap(void *addr, size_t n, int prot, int flags, int fd, off_t off)
{
    if (!real_mmap) resolve();
    if (fd == -1) count_alloc(n, CALLER);
    void *p = real_mmap(addr, n, prot, flags, fd, off);
    if (p != MAP_FAILED && fd == -1 && __atomic_load_n(&counting, __ATOMIC_RELAXED) && n >= arena_lo && n < arena_hi) {
        __atomic_fetch_add(&n_arena, 1, __ATOMIC_RELAXED);
        arena_at = p;
    }
    return p;
}

int munmap(void *addr, size_t n)
{
    if (!real_munmap) resolve();
    if (__atomic_load_n(&counting, __ATOMIC_RELAXED)) {
        __atomic_fetch_add(&n_frees, 1, __ATOMIC_RELAXED);
        if (addr == arena_at) __atomic_fetch_add(&n_arena_freed, 1, __ATOMIC_RELAXED);
    }
    return real_munmap(addr, n);
}

void free(void *p)
{
    if (!p || in_boot(p)) return;
    if (!real_free) resolve();
    if (__atomic_load_n(&counting, __ATOMIC_RELAXED)) __atomic_fetch_add(&n_frees, 1, __ATOMIC_RELAXED);
    real_free(p);
}

static void count_start(void)
{
    __atomic_store_n(&n_allocs, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&n_frees, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&n_gomp, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&n_arena, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&n_arena_freed, 0, __ATOMIC_SEQ_CST);
    last_alloc_bytes = 0;
    __atomic_store_n(&counting, 1, __ATOMIC_SEQ_CST);
}

static void count_stop(void) { __atomic_store_n(&counting, 0, __ATOMIC_SEQ_CST); }

/* The host arena of plan p is the anonymous mapping of its total in whole
 * pages and 2 MiB of alignment slack (arena/arena.c). */
static void expect_arena(const kvgpt_plan *p)
{
    arena_lo = p->total[KVGPT_SPACE_HOST] + ((size_t)2 << 20);
    arena_hi = arena_lo + 65536;
    arena_at = NULL;
}
#endif

/* ---- helpers ----------------------------------------------------------- */

static void options_for(kvgpt_options *o, const char *rel_dir, char *dir, size_t cap)
{
    kvgpt_options_default(o);
    snprintf(dir, cap, "%s", tf_path(rel_dir));
    o->model_dir = dir;
}

static void plan_ok(const kvgpt_options *o, kvgpt_plan *p)
{
    kvgpt_error err = {0};
    kvgpt_status s = kvgpt_plan_model(o, p, &err);
    ck_assert_msg(s == KVGPT_OK, "plan of %s: %s", o->model_dir, err.msg);
}

static size_t region_bytes(const kvgpt_plan *p, const char *name)
{
    for (int i = 0; i < p->n_regions; i++)
        if (strcmp(p->regions[i].name, name) == 0) return p->regions[i].bytes;
    ck_abort_msg("the plan has no region \"%s\"", name);
    return 0;
}

/* Every region 64-byte aligned, inside its space's total, disjoint from all others. */
static void check_layout(const kvgpt_plan *p, const char *what)
{
    ck_assert_msg(p->n_regions > 0 && p->n_regions <= KVGPT_PLAN_MAX_REGIONS, "%s: %d regions", what, p->n_regions);
    for (int sp = 0; sp < 2; sp++) ck_assert_msg(p->total[sp] % 64 == 0, "%s: total %zu not aligned", what, p->total[sp]);
    for (int i = 0; i < p->n_regions; i++) {
        const kvgpt_region *a = &p->regions[i];
        ck_assert_msg(a->offset % 64 == 0, "%s: region %s at offset %zu is not 64-byte aligned", what, a->name,
                      a->offset);
        ck_assert_msg(a->bytes > 0, "%s: region %s is empty", what, a->name);
        ck_assert_msg(a->offset <= p->total[a->space] && a->bytes <= p->total[a->space] - a->offset,
                      "%s: region %s [%zu, +%zu) runs past the total %zu", what, a->name, a->offset, a->bytes,
                      p->total[a->space]);
        for (int j = i + 1; j < p->n_regions; j++) {
            const kvgpt_region *b = &p->regions[j];
            if (a->space != b->space) continue;
            int disjoint = a->offset + a->bytes <= b->offset || b->offset + b->bytes <= a->offset;
            ck_assert_msg(disjoint, "%s: regions %s [%zu,+%zu) and %s [%zu,+%zu) overlap", what, a->name, a->offset,
                          a->bytes, b->name, b->offset, b->bytes);
            ck_assert_msg(strcmp(a->name, b->name) != 0, "%s: region %s twice", what, a->name);
        }
    }
}

/* ---- (a) the plan is exactly what open takes ---------------------------- */

/* Opens with caller memory at a given misalignment, exactly bytes long
 * (malloc'd to that size, so ASan sees a write past it). */
static kvgpt_status open_in(const kvgpt_options *o, size_t misalign, size_t bytes, void **block, kvgpt_model **m,
                            kvgpt_error *err)
{
    unsigned char *b = NULL;
    ck_assert_int_eq(posix_memalign((void **)&b, 64, misalign + bytes + 1), 0);
    *block = b;
    return kvgpt_open(o, b + misalign, bytes, m, err);
}

START_TEST(test_exact_caller_memory)
{
    if (!tf_need_fixtures(__func__)) return;
    static const char *const models[] = {"shakespeare_char", "gpt2_tiny_hf"};
    static const size_t misaligns[] = {0, 1, 8, 17, 63};
    for (size_t k = 0; k < 2; k++) {
        char dir[4096];
        kvgpt_options o;
        options_for(&o, models[k], dir, sizeof dir);
        o.logits_all = 1;
        kvgpt_plan plan;
        plan_ok(&o, &plan);
        size_t need = kvgpt_plan_host_bytes(&plan);
        ck_assert_msg(need >= plan.total[KVGPT_SPACE_HOST] && need < plan.total[KVGPT_SPACE_HOST] + 64,
                      "%s: host bytes %zu for a total of %zu", models[k], need, plan.total[KVGPT_SPACE_HOST]);
        for (size_t a = 0; a < sizeof misaligns / sizeof misaligns[0]; a++) {
            void *blk;
            kvgpt_model *m = NULL;
            kvgpt_error err = {0};
            kvgpt_status s = open_in(&o, misaligns[a], need, &blk, &m, &err);
            ck_assert_msg(s == KVGPT_OK, "%s: exactly kvgpt_plan_host_bytes() = %zu at misalignment %zu: %s",
                          models[k], need, misaligns[a], err.msg);
            ck_assert_msg((void *)m >= blk && (char *)m < (char *)blk + misaligns[a] + need,
                          "the model struct is not inside the caller's memory");
            ck_assert_uint_eq(kvgpt_model_arena_used(m), plan.total[KVGPT_SPACE_HOST]);
            const kvgpt_plan *mp = kvgpt_model_plan(m);
            ck_assert_int_eq(mp->n_regions, plan.n_regions);
            ck_assert_msg(memcmp(mp->regions, plan.regions, sizeof plan.regions[0] * (size_t)plan.n_regions) == 0 &&
                              memcmp(mp->total, plan.total, sizeof plan.total) == 0,
                          "%s: the model's plan differs from kvgpt_plan_model's", models[k]);
            /* The memory really holds a working model. */
            int32_t ids[3] = {0, 1, 2};
            float *l = malloc((size_t)3 * (size_t)kvgpt_model_config(m)->vocab_size * sizeof(float));
            ck_assert_int_eq(kvgpt_forward(m, ids, 3, l, &err), KVGPT_OK);
            free(l);
            kvgpt_close(m);
            free(blk);

            m = (kvgpt_model *)&err;
            s = open_in(&o, misaligns[a], need - 1, &blk, &m, &err);
            ck_assert_msg(s == KVGPT_ERR_NOMEM, "%s: one byte less (%zu) at misalignment %zu: %s", models[k],
                          need - 1, misaligns[a], kvgpt_strerror(s));
            ck_assert_ptr_null(m);
            ck_assert_msg(strstr(err.msg, "Requested") && strstr(err.msg, "missing 1 bytes"),
                          "message: \"%s\"", err.msg);
            free(blk);
        }
        printf("  %-16s host plan %zu bytes; kvgpt_plan_host_bytes %zu: exact fits, one less refused\n", models[k],
               plan.total[KVGPT_SPACE_HOST], need);
    }
}
END_TEST

START_TEST(test_owned_arena_is_the_plan)
{
    if (!tf_need_fixtures(__func__)) return;
    char dir[4096];
    kvgpt_options o;
    options_for(&o, "gpt2_tiny_hf", dir, sizeof dir);
    o.batch = 3;
    o.context = 40;
    kvgpt_plan plan;
    plan_ok(&o, &plan);
    kvgpt_model *m;
    kvgpt_error err = {0};
    ck_assert_msg(kvgpt_open(&o, NULL, 0, &m, &err) == KVGPT_OK, "%s", err.msg);
    ck_assert_uint_eq(kvgpt_model_arena_used(m), plan.total[KVGPT_SPACE_HOST]);
    ck_assert_int_eq(kvgpt_model_plan(m)->batch, 3);
    ck_assert_int_eq(kvgpt_model_plan(m)->context, 40);
    kvgpt_close(m);
}
END_TEST

/* ---- (b) layout --------------------------------------------------------- */

START_TEST(test_regions_aligned_disjoint)
{
    kvgpt_config c;
    kvgpt_options o;
    kvgpt_plan p;
    kvgpt_error err = {0};
    for (int sh = KVGPT_SHAPE_GPT2; sh <= KVGPT_SHAPE_GPT2_XL; sh++) {
        ck_assert_int_eq(kvgpt_shape_config((kvgpt_shape)sh, &c), KVGPT_OK);
        kvgpt_options_default(&o);
        o.batch = sh;
        o.context = 1000 + sh;   /* odd sizes: alignment padding everywhere */
        o.kv_dtype = KVGPT_DTYPE_F16;
        o.logits_all = sh & 1;
        ck_assert_msg(kvgpt_plan_config(&c, &o, &p, &err) == KVGPT_OK, "%s", err.msg);
        check_layout(&p, "gpt2 shape");
    }
    if (!tf_need_fixtures(__func__)) return;
    static const char *const models[] = {"shakespeare_char", "gpt2_tiny_hf"};
    for (int k = 0; k < 2; k++) {
        char dir[4096];
        options_for(&o, models[k], dir, sizeof dir);
        o.batch = 5;
        o.context = 33;
        plan_ok(&o, &p);
        check_layout(&p, models[k]);
    }
}
END_TEST

/* ---- (c) GPT-2 small's known sizes ------------------------------------- */

static size_t kind_sum(const kvgpt_plan *p, kvgpt_region_kind kind)
{
    size_t s = 0;
    for (int i = 0; i < p->n_regions; i++)
        if (p->regions[i].kind == kind) s += p->regions[i].bytes;
    return s;
}

static void plan_gpt2(int batch, int context, kvgpt_dtype kv, kvgpt_plan *p)
{
    kvgpt_config c;
    kvgpt_options o;
    kvgpt_error err = {0};
    ck_assert_int_eq(kvgpt_shape_config(KVGPT_SHAPE_GPT2, &c), KVGPT_OK);
    kvgpt_options_default(&o);
    o.batch = batch;
    o.context = context;
    o.kv_dtype = kv;
    ck_assert_msg(kvgpt_plan_config(&c, &o, p, &err) == KVGPT_OK, "%s", err.msg);
}

START_TEST(test_gpt2_small_kv_cache)
{
    kvgpt_plan p;
    plan_gpt2(1, 0, KVGPT_DTYPE_F32, &p);
    size_t kv = region_bytes(&p, "kv.k") + region_bytes(&p, "kv.v");
    ck_assert_uint_eq((size_t)2 * 12 * 1024 * 768 * 4, 75497472u);
    ck_assert_uint_eq(kv, 75497472u);
    ck_assert_uint_eq(kind_sum(&p, KVGPT_REGION_KV), 75497472u);
    ck_assert_int_eq(p.context, 1024);
    static const struct { int batch, context; kvgpt_dtype dt; size_t want; } v[] = {
        {4, 0, KVGPT_DTYPE_F32, (size_t)4 * 75497472u},
        {1, 512, KVGPT_DTYPE_F32, 75497472u / 2},
        {3, 100, KVGPT_DTYPE_F32, (size_t)2 * 12 * 3 * 100 * 768 * 4},
        {64, 1024, KVGPT_DTYPE_F32, (size_t)64 * 75497472u},
        {2, 0, KVGPT_DTYPE_F16, 75497472u},
        {1, 0, KVGPT_DTYPE_BF16, 75497472u / 2},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        plan_gpt2(v[i].batch, v[i].context, v[i].dt, &p);
        kv = region_bytes(&p, "kv.k") + region_bytes(&p, "kv.v");
        ck_assert_msg(kv == v[i].want, "batch %d context %d dtype %d: KV cache %zu bytes, want %zu", v[i].batch,
                      v[i].context, (int)v[i].dt, kv, v[i].want);
    }
}
END_TEST

START_TEST(test_gpt2_small_weights)
{
    /* GPT-2 small's parameters, counted from the architecture. */
    const size_t C = 768, V = 50257, T = 1024, L = 12;
    size_t per_layer = 2 * 2 * C                      /* ln_1, ln_2 weight + bias */
                       + C * 3 * C + 3 * C             /* c_attn */
                       + C * C + C                     /* attn.c_proj */
                       + C * 4 * C + 4 * C             /* c_fc */
                       + 4 * C * C + C;                /* mlp.c_proj */
    size_t params = V * C + T * C + L * per_layer + 2 * C;
    ck_assert_uint_eq(params, 124439808u);
    ck_assert_uint_eq(params * 4, 497759232u);

    kvgpt_plan p;
    plan_gpt2(1, 0, KVGPT_DTYPE_F32, &p);
    size_t sum = 0, layout = 0;
    for (int i = 0; i < p.n_regions; i++) {
        const kvgpt_region *r = &p.regions[i];
        int named = strncmp(r->name, "wte", 3) == 0 || strcmp(r->name, "wpe") == 0 ||
                    strncmp(r->name, "h.", 2) == 0 || strncmp(r->name, "ln_f.", 5) == 0;
        ck_assert_msg(named == (r->kind == KVGPT_REGION_WEIGHTS), "region %s: kind %d", r->name, (int)r->kind);
        if (named) sum += r->bytes, layout += r->layout_bytes;
    }
    /* The budget counts the parameters as they are; what the port's layout
     * adds (port_wmat_bytes beyond them) is its own figure: the CPU packs
     * panels of 16 output columns, so only wte's 50257 columns are padded;
     * CUDA rounds rows up to 8 inputs, none here. */
    const size_t shapes[5][3] = {{C, V, 1}, {C, 3 * C, L}, {C, C, L}, {C, 4 * C, L}, {4 * C, C, L}};
    size_t padding = 0;
    for (int i = 0; i < 5; i++)
        padding += shapes[i][2] * (port_wmat_bytes((int)shapes[i][0], (int)shapes[i][1], KVGPT_DTYPE_F32) -
                                   shapes[i][0] * shapes[i][1] * 4);
    printf("  GPT-2 small weights: %zu parameter bytes + %zu layout padding (%s port)\n", sum, layout, port_name());
    ck_assert_msg(sum == params * 4, "weights %zu bytes, want %zu", sum, params * 4);
    ck_assert_msg(layout == padding, "layout %zu bytes, want %zu padding", layout, padding);
    ck_assert_msg(padding < params * 4 / 1000, "padding %zu is more than 0.1%%", padding);
    ck_assert_uint_eq(kind_sum(&p, KVGPT_REGION_WEIGHTS), sum);
}
END_TEST

/* ---- (d) the arena limit ------------------------------------------------ */

START_TEST(test_arena_limit)
{
    kvgpt_plan p, q;
    kvgpt_error err = {0};
    kvgpt_config c;
    kvgpt_options o;
    ck_assert_int_eq(kvgpt_shape_config(KVGPT_SHAPE_GPT2, &c), KVGPT_OK);
    kvgpt_options_default(&o);
    ck_assert_int_eq(kvgpt_plan_config(&c, &o, &p, &err), KVGPT_OK);
    size_t total = p.total[KVGPT_SPACE_HOST];
    o.arena_limit = total - 1;
    ck_assert_int_eq(kvgpt_plan_config(&c, &o, &q, &err), KVGPT_ERR_NOMEM);
    ck_assert_msg(q.n_regions == p.n_regions && q.total[KVGPT_SPACE_HOST] == total && q.limit == total - 1,
                  "the refused plan is not filled: %d regions, total %zu, limit %zu", q.n_regions,
                  q.total[KVGPT_SPACE_HOST], q.limit);
    ck_assert_msg(strstr(err.msg, "Requested") && strstr(err.msg, "missing 1 bytes"), "message: %s", err.msg);
    o.arena_limit = total;
    ck_assert_int_eq(kvgpt_plan_config(&c, &o, &q, &err), KVGPT_OK);

    if (!tf_need_fixtures(__func__)) return;
    char dir[4096];
    options_for(&o, "shakespeare_char", dir, sizeof dir);
    plan_ok(&o, &p);
    total = p.total[KVGPT_SPACE_HOST];
    o.arena_limit = total - 1;
    ck_assert_int_eq(kvgpt_plan_model(&o, &q, &err), KVGPT_ERR_NOMEM);
    ck_assert_int_eq(q.n_regions, p.n_regions);
    ck_assert_uint_eq(q.total[KVGPT_SPACE_HOST], total);
    ck_assert_msg(strstr(err.msg, "missing 1 bytes"), "message: %s", err.msg);
    kvgpt_model *m = (kvgpt_model *)&err;
#if COUNTING
    count_start();
#endif
    kvgpt_status s = kvgpt_open(&o, NULL, 0, &m, &err);
#if COUNTING
    count_stop();
    ck_assert_msg(n_allocs == 0, "an open refused by the limit made %ld allocations", n_allocs);
#endif
    ck_assert_int_eq(s, KVGPT_ERR_NOMEM);
    ck_assert_ptr_null(m);
    o.arena_limit = total;
    ck_assert_msg(kvgpt_open(&o, NULL, 0, &m, &err) == KVGPT_OK, "%s", err.msg);
    kvgpt_close(m);
}
END_TEST

/* ---- (e) nothing allocated after open ---------------------------------- */

#if COUNTING
static int on_token(void *user, int seq, int32_t tok)
{
    (void)seq;
    (void)tok;
    ++*(int *)user;
    return 0;
}

/* Opens, then forwards and generates several times, counting allocations. */
static void no_alloc_after_open(const char *rel, int threads, int caller_mem)
{
    char dir[4096];
    kvgpt_options o;
    options_for(&o, rel, dir, sizeof dir);
    o.threads = threads;
    o.logits_all = 1;
    o.batch = 2;
    kvgpt_plan plan;
    plan_ok(&o, &plan);
    void *mem = NULL;
    size_t mem_bytes = 0;
    if (caller_mem) {
        mem_bytes = kvgpt_plan_host_bytes(&plan);
        mem = malloc(mem_bytes);
        ck_assert_ptr_nonnull(mem);
    }
    int V = plan.config.vocab_size, ctx = plan.context;
    float *logits = malloc((size_t)ctx * (size_t)V * sizeof(float));
    int32_t *ids = malloc((size_t)ctx * sizeof(int32_t));
    ck_assert(logits && ids);
    for (int i = 0; i < ctx; i++) ids[i] = (i * 7 + 3) % V;
    kvgpt_gen_options g;
    kvgpt_gen_options_default(&g);
    g.max_new_tokens = ctx + 10;   /* past the window: the shift policy runs too */
    g.n_seq = 2;
    g.stop_at_eot = 0;
    int tokens = 0;
    g.on_token = on_token;
    g.user = &tokens;
    kvgpt_gen_result res;
    kvgpt_model *m = NULL;
    kvgpt_error err = {0};
    kvgpt_status st[8];

    /* libgomp starts a thread pool once per host thread (pthread_create
     * allocates through libc, not libgomp): port_init triggers it inside open
     * so that generation never does. Start it here first, so that the count
     * below is of kvgpt's own allocations. */
    int started = 0;
#pragma omp parallel num_threads(threads > 0 ? threads : 2)
    {
#pragma omp atomic
        started++;
    }
    ck_assert_int_gt(started, 0);
    expect_arena(&plan);
    count_start();
    kvgpt_status so = kvgpt_open(&o, mem, mem_bytes, &m, &err);
    count_stop();
    long open_allocs = n_allocs - n_gomp, open_arena = n_arena;
    size_t open_bytes = last_alloc_bytes;
    ck_assert_msg(so == KVGPT_OK, "%s: %s", rel, err.msg);

    count_start();
    st[0] = kvgpt_forward(m, ids, ctx, logits, &err);
    st[1] = kvgpt_forward(m, ids, 1, logits, &err);
    st[2] = kvgpt_forward(m, ids + 1, ctx / 2, logits, &err);
    st[3] = kvgpt_generate(m, ids, 5, &g, &res, &err);
    g.use_cache = 0;
    g.window = KVGPT_WINDOW_EXACT;
    g.max_new_tokens = 12;
    st[4] = kvgpt_generate(m, ids, ctx - 4, &g, &res, &err);
    st[5] = kvgpt_forward(m, ids, ctx, logits, &err);
    st[6] = kvgpt_forward(m, ids, 0, logits, &err);   /* refused: no allocation either */
    int n_enc = 0;
    st[7] = kvgpt_encode(m, "ROMEO:", 6, ids, ctx, &n_enc, &err);
    long run_allocs = n_allocs, run_frees = n_frees, run_gomp = n_gomp;
    count_stop();

    count_start();
    kvgpt_close(m);
    count_stop();
    long close_allocs = n_allocs, close_frees = n_frees, close_arena = n_arena_freed;

    for (int i = 0; i < 6; i++) ck_assert_msg(st[i] == KVGPT_OK, "%s: call %d failed: %s", rel, i, err.msg);
    ck_assert_int_eq(st[6], KVGPT_ERR_PROMPT);
    ck_assert_int_eq(st[7], KVGPT_OK);
    ck_assert_msg(tokens > ctx, "generation made only %d tokens", tokens);
    printf("  %-16s threads %d, %s memory: open %ld allocation(s) (%zu bytes); forward/generate/encode %ld "
           "allocations (%ld by libgomp), %ld frees; close %ld frees\n",
           rel, threads, caller_mem ? "caller's" : "own", open_allocs, open_bytes, run_allocs, run_gomp, run_frees,
           close_frees);
    ck_assert_msg(run_allocs - run_gomp == 0, "%s threads %d: the library allocated %ld times after open", rel,
                  threads, run_allocs - run_gomp);
    ck_assert_msg(run_allocs == 0 && run_frees == 0,
                  "%s threads %d: the OpenMP runtime allocated %ld times (and freed %ld) after open: every "
                  "'#pragma omp parallel' entered with one thread (a false if() clause) makes libgomp allocate and "
                  "free a team, and the first region with more threads starts libgomp's thread pool", rel, threads, run_gomp, run_frees);
    /* The arena: one mapping of the plan's size taken by open (none in the caller's memory), given back by close. */
    ck_assert_msg(open_arena == !caller_mem, "%s: open made %ld mappings of the host plan's %zu bytes, want %d", rel,
                  open_arena, plan.total[KVGPT_SPACE_HOST], !caller_mem);
    ck_assert_msg(close_arena == !caller_mem, "%s: close unmapped the arena %ld times, want %d", rel, close_arena,
                  !caller_mem);
    if (!port_device_is_host()) {
        /* The device's driver objects (see the top): nothing else is counted at open and close. */
    } else if (caller_mem) {
        ck_assert_int_eq(close_allocs, 0);
        ck_assert_msg(open_allocs == 0, "%s: open with caller's memory allocated %ld times", rel, open_allocs);
        ck_assert_int_eq(close_frees, 0);
    } else {
        ck_assert_int_eq(close_allocs, 0);
        ck_assert_msg(open_allocs == 1, "%s: open made %ld allocations, want exactly 1 (the arena)", rel, open_allocs);
        /* The plan's total in whole pages, and 2 MiB of alignment slack that is never touched. */
        ck_assert_msg(open_bytes >= plan.total[KVGPT_SPACE_HOST] + (2u << 20) &&
                          open_bytes < plan.total[KVGPT_SPACE_HOST] + (2u << 20) + 65536,
                      "%s: the one mapping is %zu bytes; the plan is %zu", rel, open_bytes,
                      plan.total[KVGPT_SPACE_HOST]);
        ck_assert_int_eq(close_frees, 1);
    }
    free(mem);
    free(logits);
    free(ids);
}
#endif

START_TEST(test_no_allocation_after_open)
{
#if !COUNTING
    tf_skip(__func__, "built with ASan, whose allocator cannot be counted");
    return;
#else
    if (!tf_need_fixtures(__func__)) return;
    /* The counting itself works (or zero would prove nothing). */
    count_start();
    void *volatile p = malloc(10);
    void *q = NULL;
    int rc = posix_memalign(&q, 64, 100);
    free(p);
    free(q);
    count_stop();
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(n_allocs == 2 && n_frees == 2, "the interposer counted %ld allocations, %ld frees", n_allocs,
                  n_frees);

    static const char *const models[] = {"shakespeare_char", "gpt2_tiny_hf"};
    for (int k = 0; k < 2; k++)
        for (int threads = 1; threads <= 2; threads++)
            for (int caller = 0; caller <= 1; caller++) no_alloc_after_open(models[k], threads, caller);
#endif
}
END_TEST

START_TEST(test_failed_open_leaves_nothing)
{
#if !COUNTING
    return;
#else
    /* A refused open gives back exactly what it took. */
    if (!tf_need_fixtures(__func__)) return;
    char dir[4096];
    ck_assert_int_eq(tf_tmpdir(dir, sizeof dir), 0);
    ck_assert_int_eq(tf_copy_dir(tf_path("shakespeare_char"), dir), 0);
    const char *bad = "{\"itos\": [\"a\"]}";
    ck_assert_int_eq(tf_write(dir, "vocab.json", bad, strlen(bad)), 0);   /* fails after the weights are in */
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = dir;
    kvgpt_model *m = (kvgpt_model *)&o;
    kvgpt_error err = {0};
    kvgpt_plan plan;
    plan_ok(&o, &plan);
    expect_arena(&plan);
    count_start();
    kvgpt_status s = kvgpt_open(&o, NULL, 0, &m, &err);
    count_stop();
    ck_assert_int_eq(s, KVGPT_ERR_VOCAB);
    ck_assert_ptr_null(m);
    ck_assert_msg(n_arena == 1 && n_arena_freed == 1, "a refused open: the arena taken %ld times, given back %ld times",
                  n_arena, n_arena_freed);
    if (port_device_is_host())   /* and nothing else (a device's driver objects aside: see the top) */
        ck_assert_msg(n_allocs == 1 && n_frees == 1, "a refused open: %ld allocations, %ld frees", n_allocs, n_frees);
    char p[4200];
    static const char *const files[] = {"config.json", "model.safetensors", "vocab.json", "ckpt.pt", "meta.pkl"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        remove(p);
    }
    ck_assert_int_eq(remove(dir), 0);
#endif
}
END_TEST

int main(void)
{
    Suite *s = suite_create("arena");
    TCase *tc = tcase_create("arena");
    tcase_set_timeout(tc, 120);
    /* First: the OpenMP runtime's first start must be counted too. */
    tcase_add_test(tc, test_no_allocation_after_open);
    tcase_add_test(tc, test_exact_caller_memory);
    tcase_add_test(tc, test_owned_arena_is_the_plan);
    tcase_add_test(tc, test_regions_aligned_disjoint);
    tcase_add_test(tc, test_gpt2_small_kv_cache);
    tcase_add_test(tc, test_gpt2_small_weights);
    tcase_add_test(tc, test_arena_limit);
    tcase_add_test(tc, test_failed_open_leaves_nothing);
    suite_add_tcase(s, tc);
    return tf_run_suite(s);
}
