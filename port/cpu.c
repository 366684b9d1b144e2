/* port/cpu.c — the CPU backend: port.h bound to the C99 + OpenMP kernels of
 * ops/, with the kernel set chosen once, at open, for this CPU. */
#include "port/port.h"
#include "port/governor.h"
#include "ops/ops.h"
#include "common/status.h"

#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct port {
    const ops_kernels *k; /* the kernel set */
    int nt;               /* threads for every kernel */
    int nt_max;           /* the team the system allowed the pool: at most nt_plan */
    int nt_plan;          /* the plan's threads (the attention scratch holds as many) */
    pthread_t owner;      /* the host thread whose pool was started */
    int started;          /* owner is valid */
    float *att_scratch;   /* attention scratch, nt * ctx floats */
    int adapt_opt;        /* options.adapt_threads */
    int adapt;            /* the governor picks nt for each forward */
    double t0;            /* when the current forward began (adapt only) */
    gov_state gov;
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

const char *port_name(void) { return "cpu"; }
int port_device_is_host(void) { return 1; }
size_t port_struct_bytes(void) { return sizeof(struct port); }

size_t port_wmat_bytes(int ic, int oc, kvgpt_dtype dt)
{
    return ic < 0 || oc < 0 ? SIZE_MAX : ops_packed_bytes(ic, oc, dt);
}

size_t port_workspace_bytes(int rows, int ctx, int n_embd, int threads)
{
    (void)rows;
    (void)n_embd;
    return ops_attention_scratch(ctx, threads) * sizeof(float);
}

/* The kernel set the options (or else KVGPT_CPU_KERNELS) name: "auto", or
 * none, is the fastest this CPU runs. */
static kvgpt_status cpu_kernels(const kvgpt_options *o, const ops_kernels **out, kvgpt_error *err)
{
    const char *name = o->cpu_kernels, *from = "cpu_kernels";
    if (!name || !*name) {
        name = getenv("KVGPT_CPU_KERNELS");
        from = "KVGPT_CPU_KERNELS";
    }
    *out = ops_set_best();
    if (!name || !*name || strcmp(name, "auto") == 0) return KVGPT_OK;
    char sets[96] = "", runs[96] = "";
    for (int i = 0; i < ops_set_count(); i++) {
        const ops_kernels *k = ops_set_at(i);
        snprintf(sets + strlen(sets), sizeof sets - strlen(sets), "%s%s", i ? ", " : "", k->name);
        if (ops_set_runs(k))
            snprintf(runs + strlen(runs), sizeof runs - strlen(runs), "%s%s", *runs ? ", " : "", k->name);
    }
    const ops_kernels *k = ops_set_named(name);
    if (!k)
        return kv_fail(err, KVGPT_ERR_UNSUPPORTED, "%s \"%.40s\": this build has no such kernel set (it has %s; "
                       "or auto)", from, name, sets);
    if (!ops_set_runs(k))
        return kv_fail(err, KVGPT_ERR_UNSUPPORTED, "%s \"%s\": this CPU cannot run it (it needs %s); it runs %s",
                       from, name, ops_set_needs(k), runs);
    *out = k;
    return KVGPT_OK;
}

/* 0 is every processor this process may run on (or fewer, when
 * OMP_NUM_THREADS says so); more than those is capped to them (the plan says
 * how many): the kernels' spinning barriers make a thread without a processor
 * of its own a loss, and a host built on a bigger machine still runs. */
static kvgpt_status cpu_threads(const kvgpt_options *o, int *out, kvgpt_error *err)
{
    const int procs = omp_get_num_procs();
    if (o->threads < 0)
        return kv_fail(err, KVGPT_ERR_ARG, "threads %d is negative (0: every processor, here %d)", o->threads, procs);
    int nt = o->threads ? o->threads : omp_get_max_threads();
    *out = nt < 1 ? 1 : nt > procs ? procs : nt;
    return KVGPT_OK;
}

kvgpt_status port_plan_backend(const kvgpt_options *o, kvgpt_plan *p, kvgpt_error *err)
{
    const ops_kernels *k;
    kvgpt_status s = cpu_kernels(o, &k, err);
    if (!s) s = cpu_threads(o, &p->threads, err);
    if (s) return s;
    snprintf(p->kernels, sizeof p->kernels, "%s", k->name);
    p->thread_stack = ops_thread_stack();
    return KVGPT_OK;
}

kvgpt_status port_device_arena(void **base, size_t bytes, kvgpt_error *err)
{
    (void)bytes;
    *base = NULL;
    return kv_fail(err, KVGPT_ERR_BACKEND, "the CPU port has no device arena");
}

void port_device_arena_free(void *base) { (void)base; }

kvgpt_status port_init(port **out, void *mem, void *device_base, size_t device_bytes,
                       void *workspace, size_t workspace_bytes, const kvgpt_options *o,
                       kvgpt_error *err)
{
    (void)device_base;
    (void)device_bytes;
    (void)workspace_bytes;   /* port_workspace_bytes planned it for the same options */
    port *p = mem;
    memset(p, 0, sizeof *p);
    kvgpt_status s = cpu_kernels(o, &p->k, err);
    if (!s) s = cpu_threads(o, &p->nt_plan, err);
    if (s) return s;
    p->att_scratch = workspace;
    p->adapt_opt = o->adapt_threads;
    /* One thread until port_start: nothing may ask libgomp for a team before
     * the pool was started where a refusal cannot end the process. */
    p->nt = p->nt_max = 1;
    gov_init(&p->gov, 1);
    *out = p;
    return KVGPT_OK;
}

/* The pool of the calling host thread, for up to the plan's threads: as
 * many as the system allows (ops_team_start). Run at the end of open, and
 * again when a forward comes from another host thread (libgomp keeps one pool
 * per host thread: that one's is started then). */
static void cpu_team(port *p)
{
    p->nt = p->nt_max = ops_team_start(p->nt_plan);
    p->owner = pthread_self();
    p->started = 1;
    gov_init(&p->gov, p->adapt_opt ? p->nt : 1);
    p->adapt = p->gov.max > 1;
}

kvgpt_status port_start(port *p, kvgpt_error *err)
{
    (void)err;
    cpu_team(p);
    return KVGPT_OK;
}

void port_shutdown(port *p) { (void)p; }
int port_threads(const port *p) { return p->nt; }

void port_set_threads(port *p, int threads)
{
    p->nt = threads < 1 ? 1 : threads > p->nt_max ? p->nt_max : threads;
}

/* No clock is read unless the governor is on. */
void port_step_begin(port *p)
{
    if (p->started && !pthread_equal(p->owner, pthread_self())) cpu_team(p);
    if (!p->adapt) return;
    port_set_threads(p, gov_threads(&p->gov));
    p->t0 = now_s();
}

void port_step_end(port *p, int rows, int decode)
{
    if (p->adapt && decode) gov_step(&p->gov, now_s() - p->t0, rows);
}

int port_thread_switches(const port *p) { return p->gov.switches; }
struct gov_state *port_governor(port *p) { return &p->gov; }

void port_wmat_bind(port_wmat *w, void *data, int ic, int oc, kvgpt_dtype dt)
{
    w->data = data;
    w->dtype = dt;
    w->ic = ic;
    w->oc = oc;
}

/* port_wmat and ops_wmat are the same plain struct: the CPU layout is ops'. */
static ops_wmat *as_ops(port_wmat *w) { return (ops_wmat *)(void *)w; }
static const ops_wmat *as_ops_c(const port_wmat *w) { return (const ops_wmat *)(const void *)w; }

kvgpt_status port_wmat_rows_in(port *p, port_wmat *w, int k0, int n, const float *src)
{
    (void)p;
    ops_pack_rows_k(as_ops(w), k0, n, src, p->nt);
    return KVGPT_OK;
}

kvgpt_status port_wmat_rows_out(port *p, port_wmat *w, int o0, int n, const float *src)
{
    (void)p;
    ops_pack_rows_o(as_ops(w), o0, n, src, p->nt);
    return KVGPT_OK;
}

kvgpt_status port_wmat_finish(port *p, port_wmat *w)
{
    (void)p;
    ops_pack_zero_pad(as_ops(w));
    return KVGPT_OK;
}

kvgpt_status port_upload(port *p, void *dst, const void *src, size_t bytes)
{
    (void)p;
    if (bytes) memmove(dst, src, bytes);
    return KVGPT_OK;
}

kvgpt_status port_download(port *p, void *dst, const void *src, size_t bytes)
{
    (void)p;
    if (bytes) memmove(dst, src, bytes);
    return KVGPT_OK;
}

void port_embed(port *p, float *x, const port_wmat *wte, const float *wpe,
                const int32_t *tok, const int32_t *pos, int n, int c)
{
    (void)p;
    for (int r = 0; r < n; r++) {
        float *xr = x + (size_t)r * (size_t)c;
        const float *pr = wpe + (size_t)pos[r] * (size_t)c;
        ops_wmat_column(as_ops_c(wte), tok[r], xr);
        for (int i = 0; i < c; i++) xr[i] += pr[i];
    }
}

void port_layernorm(port *p, float *out, const float *x, const float *w, const float *b,
                    int n, int c, float eps)
{
    p->k->layernorm(out, x, w, b, n, c, eps, p->nt);
}

void port_matmul(port *p, float *out, int ldo, const float *in, int ldi, const port_wmat *w,
                 const float *bias, int n)
{
    p->k->matmul(out, ldo, in, ldi, as_ops_c(w), bias, n, p->nt);
}

void port_gelu(port *p, float *x, size_t len, kvgpt_gelu kind)
{
    if (kind == KVGPT_GELU_TANH) p->k->gelu_tanh(x, len, p->nt);
    else p->k->gelu_erf(x, len, p->nt);
}

void port_add(port *p, float *x, const float *y, size_t len) { p->k->add(x, y, len, p->nt); }

void port_kv_store(port *p, void *k_cache, void *v_cache, kvgpt_dtype kv_dtype,
                   const float *qkv, int ldqkv, const int32_t *seq, const int32_t *pos,
                   int n, int n_head, int hs, int ctx)
{
    (void)p;
    int c = n_head * hs;
    ops_kv_store(k_cache, kv_dtype, qkv + c, ldqkv, seq, pos, n, n_head, hs, ctx);
    ops_kv_store(v_cache, kv_dtype, qkv + 2 * c, ldqkv, seq, pos, n, n_head, hs, ctx);
}

void port_attention(port *p, float *out, int ldo, const float *q, int ldq,
                    const void *k_cache, const void *v_cache, kvgpt_dtype kv_dtype,
                    const int32_t *seq, const int32_t *pos, int n, int n_head, int hs, int ctx)
{
    p->k->attention(out, ldo, q, ldq, k_cache, v_cache, kv_dtype, seq, pos, n, n_head, hs, ctx,
                    p->att_scratch, p->nt);
}

/* Bytes of one head's positions [0, n), and where slot seq's head h starts. */
static size_t kv_span(kvgpt_dtype dt, int hs, int n) { return (size_t)n * (size_t)hs * kv_dtype_size(dt); }
static size_t kv_head_at(kvgpt_dtype dt, int n_head, int ctx, int hs, int seq, int h)
{
    return ((size_t)seq * (size_t)n_head + (size_t)h) * kv_span(dt, hs, ctx);
}

void port_kv_copy(port *p, void *cache, kvgpt_dtype kv_dtype, int n_head, int ctx, int hs,
                  int src, int dst, int n)
{
    (void)p;
    if (src == dst || n <= 0) return;
    for (int h = 0; h < n_head; h++)
        memcpy((char *)cache + kv_head_at(kv_dtype, n_head, ctx, hs, dst, h),
               (const char *)cache + kv_head_at(kv_dtype, n_head, ctx, hs, src, h), kv_span(kv_dtype, hs, n));
}

kvgpt_status port_kv_read(port *p, void *host, const void *cache, kvgpt_dtype kv_dtype,
                          int n_head, int ctx, int hs, int seq, int n)
{
    (void)p;
    for (int h = 0; n > 0 && h < n_head; h++)
        memcpy((char *)host + (size_t)h * kv_span(kv_dtype, hs, n),
               (const char *)cache + kv_head_at(kv_dtype, n_head, ctx, hs, seq, h), kv_span(kv_dtype, hs, n));
    return KVGPT_OK;
}

kvgpt_status port_kv_write(port *p, void *cache, const void *host, kvgpt_dtype kv_dtype,
                           int n_head, int ctx, int hs, int seq, int n)
{
    (void)p;
    for (int h = 0; n > 0 && h < n_head; h++)
        memcpy((char *)cache + kv_head_at(kv_dtype, n_head, ctx, hs, seq, h),
               (const char *)host + (size_t)h * kv_span(kv_dtype, hs, n), kv_span(kv_dtype, hs, n));
    return KVGPT_OK;
}

void port_gather_rows(port *p, float *dst, const float *src, const int32_t *idx, int n, int c)
{
    (void)p;
    for (int i = 0; i < n; i++)
        memmove(dst + (size_t)i * (size_t)c, src + (size_t)idx[i] * (size_t)c, (size_t)c * sizeof(float));
}

kvgpt_status port_sync(port *p, kvgpt_error *err)
{
    (void)p;
    (void)err;
    return KVGPT_OK;
}

/* ---- issue 17's block of port.h: nothing to pin, record or draw here ---- */
kvgpt_status port_host_memory(port *p, void *base, size_t bytes, kvgpt_error *err)
{
    (void)p;
    (void)base;
    (void)bytes;
    (void)err;
    return KVGPT_OK;
}

int port_graph_record(port *p, int on)
{
    (void)p;
    (void)on;
    return 0;
}

int port_graph_begin(port *p, int rows, int n_logits)
{
    (void)p;
    (void)rows;
    (void)n_logits;
    return 0;
}

kvgpt_status port_graph_end(port *p, kvgpt_error *err)
{
    (void)p;
    (void)err;
    return KVGPT_OK;
}

/* The logits are host memory already: kvgpt_sample_logits reads them in place. */
kvgpt_status port_sample(port *p, int32_t *out, const float *logits, int n, int vocab,
                         const port_sample_params *sp, uint64_t *rng, kvgpt_error *err)
{
    (void)p;
    (void)out;
    (void)logits;
    (void)n;
    (void)vocab;
    (void)sp;
    (void)rng;
    return kv_fail(err, KVGPT_ERR_UNSUPPORTED, "the CPU port samples on the host (kvgpt_sample_logits)");
}

double port_probe_read_gbps(size_t bytes, int reps)
{
    (void)bytes;
    (void)reps;
    return 0.0;
}
