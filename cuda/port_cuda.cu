/* cuda/port_cuda.cu — the CUDA backend: port.h bound to the kernels of
 * cuda/kernels.cu, on one stream per model. No cuBLAS: every product is our
 * own fixed-order kernel, so a row's bits never depend on its batch, and
 * nothing is loaded or allocated lazily during generation.
 *
 * Memory: everything the forward touches is in the plan's DEVICE space, one
 * cudaMalloc (port_device_arena) made by kvgpt_open. The port workspace in it
 * holds the sampler's results, then a scratch area: attention partials,
 * sampling candidates, and load-time staging. The stream and the decode
 * graphs are driver objects made at open; they are not memory an arena can
 * hold. The host arena, once given (port_host_memory), is page-locked, so
 * copies between it and the device are asynchronous and can be recorded.
 *
 * Fusion: port_matmul does not launch at once; the next call decides. A
 * port_gelu of its output, a port_add of its output into another buffer, or a
 * port_kv_store of its qkv rows runs as the product's epilogue (the bits the
 * separate kernels give: see cuda/kernels.cu); anything else launches it
 * plain first. So a GPT-2 layer is 7 kernels (8 with a split attention).
 *
 * Errors: the void operations queue work; the first failure (bad launch,
 * workspace overflow, failed capture) is kept in the port and reported by the
 * next port_sync as KVGPT_ERR_BACKEND with CUDA's own error string. CUDA
 * errors inside kernels are sticky: once one is reported, the model is done.
 */
extern "C" {
#include "port/port.h"
#include "common/status.h"
}
#include "cuda/kernels.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Workspace alignment (16-byte loads, and room for wider ones). */
#define WS_ALIGN 256
/* Scratch at least this large: the sampler's candidates of KC_SAMPLE_MAX_ROWS
 * GPT-2 rows in two launches, and quick load staging. */
#define SCRATCH_FLOOR ((size_t)32 << 20)
/* Decode graphs for 1..PORT_MAX_GRAPHS rows (the plan's largest batch). */
#define PORT_MAX_GRAPHS 64
/* Dynamic shared memory a block gets without opting in. */
#define SMEM_DEFAULT (48 * 1024)

/* A product not launched yet (see Fusion above). */
typedef struct {
    int live;
    float *out;
    int ldo;
    const float *in;
    int ldi;
    port_wmat w;
    const float *bias;
    int n;
} pending_mm;

struct port {
    int device;               /* the current device at open */
    cudaStream_t stream;      /* all of this model's work, in order */
    char *ws;                 /* the workspace, WS_ALIGN-aligned */
    size_t ws_bytes;
    kc_sample_out *sample_dev;   /* ws: the sampler's results */
    char *scratch;            /* after them: per-operation scratch */
    size_t scratch_bytes;
    pending_mm pend;
    char *host;               /* the page-locked host arena, or NULL */
    size_t host_bytes;
    int host_registered;      /* we registered it (and unregister it at shutdown) */
    int graphs_off;           /* KVGPT_CUDA_GRAPHS=0 */
    int recording;            /* port_graph_record(p, 1) */
    int capturing;            /* rows of the graph being captured, 0 none */
    cudaGraphExec_t graph[PORT_MAX_GRAPHS + 1];   /* by rows (= logit rows) */
    kc_sample_out sample_host[KC_SAMPLE_MAX_ROWS];
    char fail[200];           /* first failure since open ("" = none) */
};

const char *port_name(void) { return "cuda"; }
int port_device_is_host(void) { return 0; }
size_t port_struct_bytes(void) { return sizeof(struct port); }

static size_t dtype_bytes(kvgpt_dtype dt) { return dt == KVGPT_DTYPE_F32 ? 4 : 2; }
static size_t sample_area_bytes(void)
{
    return (KC_SAMPLE_MAX_ROWS * sizeof(kc_sample_out) + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN;
}

/* Row-major [oc][ldw] in the weight dtype, ldw = ic rounded up to 8 (16-byte rows for halves). */
size_t port_wmat_bytes(int ic, int oc, kvgpt_dtype dt)
{
    size_t b;
    if (ic < 0 || oc < 0 || ic > INT32_MAX - KC_MM_GROUP || !kv_mul((size_t)kc_mm_ldw(ic), (size_t)oc, &b) ||
        !kv_mul(b, dtype_bytes(dt), &b))
        return SIZE_MAX;
    return b;
}

/* The sampler's results, then a scratch of the larger of SCRATCH_FLOOR and
 * the attention partials of up to KC_ATT_SPLIT_MAX_ROWS rows
 * (n_head*(hs+2) <= 3C floats per row and split). */
size_t port_workspace_bytes(int rows, int ctx, int n_embd, int threads)
{
    (void)threads;
    size_t r = rows > 0 ? (size_t)rows : 1, c = n_embd > 0 ? (size_t)n_embd : 1;
    size_t sr = r < KC_ATT_SPLIT_MAX_ROWS ? r : KC_ATT_SPLIT_MAX_ROWS;
    size_t part_b, total;
    if (!kv_mul(sr, (size_t)kc_att_splits(ctx > 0 ? ctx : 1), &part_b) || !kv_mul(part_b, 3 * sizeof(float), &part_b) ||
        !kv_mul(part_b, c, &part_b))
        return SIZE_MAX;
    size_t scratch = part_b > SCRATCH_FLOOR ? part_b : SCRATCH_FLOOR;
    if (!kv_align(scratch, WS_ALIGN, &scratch) || !kv_add(scratch, sample_area_bytes() + WS_ALIGN, &total))
        return SIZE_MAX;
    return total;
}

/* ---- errors ---- */
static void failf(port *p, const char *fmt, ...) KV_PRINTF(2, 3);
static void failf(port *p, const char *fmt, ...)
{
    if (p->fail[0]) return;   /* the first failure is the one that explains the rest */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->fail, sizeof p->fail, fmt, ap);
    va_end(ap);
}

static void note(port *p, const char *what, cudaError_t e)
{
    if (e != cudaSuccess) failf(p, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

static kvgpt_status need_device(kvgpt_error *err)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();   /* clear it: nothing else of CUDA will run */
        return kv_fail(err, KVGPT_ERR_BACKEND, "CUDA port: no usable CUDA device (cudaGetDeviceCount: %s)",
                       cudaGetErrorString(e));
    }
    if (n == 0) return kv_fail(err, KVGPT_ERR_BACKEND, "CUDA port: no CUDA device (cudaGetDeviceCount found none)");
    return KVGPT_OK;
}

/* ---- the device arena ---- */
kvgpt_status port_device_arena(void **base, size_t bytes, kvgpt_error *err)
{
    *base = NULL;
    kvgpt_status s = need_device(err);
    if (s) return s;
    cudaError_t e = cudaMalloc(base, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        *base = NULL;
        size_t free_b = 0, total_b = 0;
        if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) free_b = total_b = 0;
        return kv_fail(err, e == cudaErrorMemoryAllocation ? KVGPT_ERR_NOMEM : KVGPT_ERR_BACKEND,
                       "CUDA port: cudaMalloc of the device arena failed: Requested %zu, available %zu bytes (%s)",
                       bytes, free_b, cudaGetErrorString(e));
    }
    return KVGPT_OK;
}

void port_device_arena_free(void *base)
{
    if (base) (void)cudaFree(base);
}

/* ---- life ---- */
static void release(port *p)
{
    if (p->stream) (void)cudaStreamSynchronize(p->stream);
    for (int i = 0; i <= PORT_MAX_GRAPHS; i++)
        if (p->graph[i]) (void)cudaGraphExecDestroy(p->graph[i]);
    if (p->host_registered) (void)cudaHostUnregister(p->host);
    if (p->stream) (void)cudaStreamDestroy(p->stream);
    (void)cudaGetLastError();
    memset(p->graph, 0, sizeof p->graph);
    p->host = NULL;
    p->host_registered = 0;
    p->stream = NULL;
}

kvgpt_status port_init(port **out, void *mem, void *device_base, size_t device_bytes, void *workspace,
                       size_t workspace_bytes, const kvgpt_options *o, kvgpt_error *err)
{
    (void)device_bytes;
    (void)o;
    port *p = (port *)mem;
    memset(p, 0, sizeof *p);
    kvgpt_status s = need_device(err);
    if (s) return s;
    if (!device_base || !workspace)
        return kv_fail(err, KVGPT_ERR_BACKEND, "CUDA port: no device arena or workspace was planned");
    uintptr_t a = ((uintptr_t)workspace + WS_ALIGN - 1) & ~(uintptr_t)(WS_ALIGN - 1);
    size_t lost = (size_t)(a - (uintptr_t)workspace);
    if (workspace_bytes < lost + sample_area_bytes() + WS_ALIGN)
        return kv_fail(err, KVGPT_ERR_BACKEND, "CUDA port: a workspace of %zu bytes is too small", workspace_bytes);
    p->ws = (char *)a;
    p->ws_bytes = workspace_bytes - lost;
    p->sample_dev = (kc_sample_out *)p->ws;
    p->scratch = p->ws + sample_area_bytes();
    p->scratch_bytes = p->ws_bytes - sample_area_bytes();
    const char *g = getenv("KVGPT_CUDA_GRAPHS");
    p->graphs_off = g && strcmp(g, "0") == 0;

    cudaError_t e = cudaGetDevice(&p->device);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&p->stream, cudaStreamNonBlocking);
    if (e == cudaSuccess) e = kc_preload();
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        release(p);
        return kv_fail(err, KVGPT_ERR_BACKEND, "CUDA port: creating the stream and loading the kernels: %s",
                       cudaGetErrorString(e));
    }
    *out = p;
    return KVGPT_OK;
}

/* Nothing to start: the device is driven by the caller's thread. */
kvgpt_status port_start(port *p, kvgpt_error *err)
{
    (void)p;
    (void)err;
    return KVGPT_OK;
}

void port_shutdown(port *p)
{
    if (p) release(p);
}

/* One host thread drives the device: no CPU kernel set, no thread of the library's own. */
kvgpt_status port_plan_backend(const kvgpt_options *o, kvgpt_plan *p, kvgpt_error *err)
{
    if (o->threads < 0) return kv_fail(err, KVGPT_ERR_ARG, "threads %d is negative", o->threads);
    memcpy(p->kernels, "cuda", 5);
    p->threads = 1;
    p->thread_stack = 0;
    return KVGPT_OK;
}

int port_threads(const port *p)
{
    (void)p;
    return 1;
}

void port_set_threads(port *p, int threads)
{
    (void)p;
    (void)threads;
}

/* No thread governor: the device is not shared the way CPU cores are. */
void port_step_begin(port *p) { (void)p; }
void port_step_end(port *p, int rows, int decode)
{
    (void)p;
    (void)rows;
    (void)decode;
}
int port_thread_switches(const port *p)
{
    (void)p;
    return 0;
}
struct gov_state *port_governor(port *p)
{
    (void)p;
    return NULL;
}

/* ---- the pending product ---- */
static void launch_mm(port *p, const kc_epilogue *epi)
{
    const pending_mm *m = &p->pend;
    p->pend.live = 0;
    note(p, "port_matmul", kc_matmul(p->stream, m->out, m->ldo, m->in, m->ldi, m->w.data, m->w.dtype, m->w.ic,
                                     m->w.oc, m->bias, m->n, epi));
}

/* Launches the pending product as it is; every operation but the fusable ones starts here. */
static void flush(port *p)
{
    if (p->pend.live) launch_mm(p, NULL);
}

static int overlaps(const void *a, size_t an, const void *b, size_t bn)
{
    const char *x = (const char *)a, *y = (const char *)b;
    return x < y + bn && y < x + an;
}

/* Bytes of the pending product's input rows. */
static size_t pend_in_bytes(const pending_mm *m)
{
    return ((size_t)(m->n - 1) * (size_t)m->ldi + (size_t)m->w.ic) * sizeof(float);
}

/* ---- copies ----
 * Copies to and from the page-locked host arena are only queued: the model
 * touches those buffers again after port_sync. Others wait for the stream
 * (the caller may reuse its buffer at once: the loader does, chunk after
 * chunk). While a graph is being captured, only the former are possible. */
static int pinned(const port *p, const void *h, size_t bytes)
{
    const char *c = (const char *)h;
    return p->host && c >= p->host && bytes <= p->host_bytes && (size_t)(c - p->host) <= p->host_bytes - bytes;
}

static kvgpt_status copy(port *p, void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, const void *host,
                         int wait, const char *what)
{
    flush(p);
    if (bytes == 0) return KVGPT_OK;
    int async = pinned(p, host, bytes) && !wait;
    if (p->capturing && !async) {
        failf(p, "%s: %zu bytes of host memory outside the page-locked arena while a graph is recorded", what, bytes);
        return KVGPT_ERR_BACKEND;
    }
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, p->stream);
    if (e == cudaSuccess && !async) e = cudaStreamSynchronize(p->stream);
    note(p, what, e);
    return e == cudaSuccess ? KVGPT_OK : KVGPT_ERR_BACKEND;
}

kvgpt_status port_upload(port *p, void *dst, const void *src, size_t bytes)
{
    return copy(p, dst, src, bytes, cudaMemcpyHostToDevice, src, 0, "port_upload");
}

kvgpt_status port_download(port *p, void *dst, const void *src, size_t bytes)
{
    return copy(p, dst, src, bytes, cudaMemcpyDeviceToHost, dst, 0, "port_download");
}

kvgpt_status port_host_memory(port *p, void *base, size_t bytes, kvgpt_error *err)
{
    flush(p);
    if (p->host || !base || bytes == 0) return KVGPT_OK;
    cudaError_t e = cudaHostRegister(base, bytes, cudaHostRegisterDefault);
    if (e == cudaErrorHostMemoryAlreadyRegistered) {   /* the host pinned it itself: it stays theirs */
        (void)cudaGetLastError();
        e = cudaSuccess;
    } else if (e == cudaSuccess) {
        p->host_registered = 1;
    }
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return kv_fail(err, KVGPT_ERR_BACKEND, "CUDA port: page-locking the %zu-byte host arena (cudaHostRegister): %s",
                       bytes, cudaGetErrorString(e));
    }
    p->host = (char *)base;
    p->host_bytes = bytes;
    return KVGPT_OK;
}

/* ---- weights ---- */
void port_wmat_bind(port_wmat *w, void *data, int ic, int oc, kvgpt_dtype dt)
{
    w->data = data;
    w->dtype = dt;
    w->ic = ic;
    w->oc = oc;
}

/* Staging for load-time conversion: the whole workspace (no forward runs
 * while weights load, and the stream orders every use). */
static size_t stage_floats(const port *p)
{
    size_t f = p->ws_bytes / sizeof(float);
    return f > (size_t)INT32_MAX ? (size_t)INT32_MAX : f;
}

static kvgpt_status stage(port *p, const float *src, size_t floats, const char *what)
{
    return copy(p, p->ws, src, floats * sizeof(float), cudaMemcpyHostToDevice, src, 1, what);
}

/* Rows k0..k0+n-1 of W, each oc values: W[o][k0+i] = src[i][o], transposed on the device. */
kvgpt_status port_wmat_rows_in(port *p, port_wmat *w, int k0, int n, const float *src)
{
    if (n <= 0) return KVGPT_OK;
    if (k0 < 0 || k0 + n > w->ic) {
        failf(p, "port_wmat_rows_in: rows %d..%d of a matrix with %d", k0, k0 + n - 1, w->ic);
        return KVGPT_ERR_BACKEND;
    }
    size_t per = stage_floats(p) / (size_t)w->oc;   /* source rows per staging load */
    if (per == 0) {
        failf(p, "port_wmat_rows_in: a row of %d floats exceeds the workspace", w->oc);
        return KVGPT_ERR_BACKEND;
    }
    for (int i = 0; i < n;) {
        int m = (size_t)(n - i) < per ? n - i : (int)per;
        kvgpt_status st = stage(p, src + (size_t)i * (size_t)w->oc, (size_t)m * (size_t)w->oc, "port_wmat_rows_in");
        if (st) return st;
        cudaError_t e = kc_wmat_rows_in(p->stream, w->data, w->dtype, kc_mm_ldw(w->ic), w->oc, k0 + i, m,
                                        (const float *)p->ws);
        note(p, "port_wmat_rows_in (kernel)", e);
        if (e != cudaSuccess) return KVGPT_ERR_BACKEND;
        i += m;
    }
    return KVGPT_OK;
}

/* Rows o0..o0+n-1 of W^T, each ic values: row o of the [oc][ldw] layout. */
kvgpt_status port_wmat_rows_out(port *p, port_wmat *w, int o0, int n, const float *src)
{
    if (n <= 0) return KVGPT_OK;
    if (o0 < 0 || o0 + n > w->oc) {
        failf(p, "port_wmat_rows_out: rows %d..%d of a matrix with %d", o0, o0 + n - 1, w->oc);
        return KVGPT_ERR_BACKEND;
    }
    flush(p);
    const size_t es = dtype_bytes(w->dtype), ldw = (size_t)kc_mm_ldw(w->ic), ic = (size_t)w->ic;
    char *dst = (char *)w->data + (size_t)o0 * ldw * es;
    if (w->dtype == KVGPT_DTYPE_F32) {
        cudaError_t e = cudaMemcpy2DAsync(dst, ldw * es, src, ic * sizeof(float), ic * sizeof(float), (size_t)n,
                                          cudaMemcpyHostToDevice, p->stream);
        if (e == cudaSuccess) e = cudaStreamSynchronize(p->stream);
        note(p, "port_wmat_rows_out", e);
        return e == cudaSuccess ? KVGPT_OK : KVGPT_ERR_BACKEND;
    }
    size_t per = stage_floats(p) / ic;   /* rows per staging load */
    if (per == 0) {
        failf(p, "port_wmat_rows_out: a row of %d floats exceeds the workspace", w->ic);
        return KVGPT_ERR_BACKEND;
    }
    for (int i = 0; i < n;) {
        int m = (size_t)(n - i) < per ? n - i : (int)per;
        kvgpt_status st = stage(p, src + (size_t)i * ic, (size_t)m * ic, "port_wmat_rows_out");
        if (st) return st;
        cudaError_t e = kc_convert_rows(p->stream, dst + (size_t)i * ldw * es, w->dtype, (int)ldw,
                                        (const float *)p->ws, w->ic, m, w->ic);
        note(p, "port_wmat_rows_out (kernel)", e);
        if (e != cudaSuccess) return KVGPT_ERR_BACKEND;
        i += m;
    }
    return KVGPT_OK;
}

/* Zeroes the columns ic..ldw-1. The conversions are queued: a fault in them shows at open's port_sync. */
kvgpt_status port_wmat_finish(port *p, port_wmat *w)
{
    const size_t es = dtype_bytes(w->dtype), ldw = (size_t)kc_mm_ldw(w->ic);
    if (ldw == (size_t)w->ic || w->oc <= 0) return KVGPT_OK;
    flush(p);
    cudaError_t e = cudaMemset2DAsync((char *)w->data + (size_t)w->ic * es, ldw * es, 0, (ldw - (size_t)w->ic) * es,
                                      (size_t)w->oc, p->stream);
    note(p, "port_wmat_finish", e);
    return e == cudaSuccess ? KVGPT_OK : KVGPT_ERR_BACKEND;
}

/* ---- the forward ---- */
void port_embed(port *p, float *x, const port_wmat *wte, const float *wpe, const int32_t *tok, const int32_t *pos,
                int n, int c)
{
    flush(p);
    if (wte->ic != c) {
        failf(p, "port_embed: embedding width %d, the tied matrix has %d inputs", c, wte->ic);
        return;
    }
    note(p, "port_embed", kc_embed(p->stream, x, wte->data, wte->dtype, kc_mm_ldw(wte->ic), wpe, tok, pos, n, c));
}

void port_layernorm(port *p, float *out, const float *x, const float *w, const float *b, int n, int c, float eps)
{
    flush(p);
    note(p, "port_layernorm", kc_layernorm(p->stream, out, x, w, b, n, c, eps));
}

/* Queued until the next call (see Fusion at the top). */
void port_matmul(port *p, float *out, int ldo, const float *in, int ldi, const port_wmat *w, const float *bias,
                 int n)
{
    flush(p);
    if (n <= 0) return;
    pending_mm m = {1, out, ldo, in, ldi, *w, bias, n};
    p->pend = m;
}

void port_gelu(port *p, float *x, size_t len, kvgpt_gelu kind)
{
    const pending_mm *m = &p->pend;
    if (m->live && x == m->out && m->ldo == m->w.oc && len == (size_t)m->n * (size_t)m->w.oc) {
        kc_epilogue e;
        memset(&e, 0, sizeof e);
        e.kind = kind == KVGPT_GELU_TANH ? KC_EPI_GELU_TANH : KC_EPI_GELU_ERF;
        launch_mm(p, &e);
        return;
    }
    flush(p);
    note(p, "port_gelu", kc_gelu(p->stream, x, len, kind));
}

void port_add(port *p, float *x, const float *y, size_t len)
{
    const pending_mm *m = &p->pend;
    const size_t out_b = (size_t)m->n * (size_t)m->w.oc * sizeof(float);
    if (m->live && y == m->out && m->ldo == m->w.oc && len == (size_t)m->n * (size_t)m->w.oc &&
        !overlaps(x, len * sizeof(float), m->in, pend_in_bytes(m)) && !overlaps(x, len * sizeof(float), m->out, out_b)) {
        kc_epilogue e;
        memset(&e, 0, sizeof e);
        e.kind = KC_EPI_ADD;
        e.res = x;
        e.ldr = m->w.oc;
        launch_mm(p, &e);
        return;
    }
    flush(p);
    note(p, "port_add", kc_add(p->stream, x, y, len));
}

void port_kv_store(port *p, void *k_cache, void *v_cache, kvgpt_dtype kv_dtype, const float *qkv, int ldqkv,
                   const int32_t *seq, const int32_t *pos, int n, int n_head, int hs, int ctx)
{
    const pending_mm *m = &p->pend;
    if (m->live && qkv == m->out && ldqkv == m->ldo && n == m->n && m->w.oc == 3 * n_head * hs) {
        kc_epilogue e;
        memset(&e, 0, sizeof e);
        e.kind = KC_EPI_KV;
        e.k_cache = k_cache;
        e.v_cache = v_cache;
        e.kv_dtype = kv_dtype;
        e.seq = seq;
        e.pos = pos;
        e.n_head = n_head;
        e.hs = hs;
        e.ctx = ctx;
        launch_mm(p, &e);
        return;
    }
    flush(p);
    note(p, "port_kv_store",
         kc_kv_store(p->stream, k_cache, v_cache, kv_dtype, qkv, ldqkv, seq, pos, n, n_head, hs, ctx));
}

/* Contexts longer than KC_ATT_CHUNK are split for every call (see
 * cuda/kernels.h), in groups of rows whose partials fit the scratch. The
 * split count depends on ctx alone: positions are on the device. */
void port_attention(port *p, float *out, int ldo, const float *q, int ldq, const void *k_cache, const void *v_cache,
                    kvgpt_dtype kv_dtype, const int32_t *seq, const int32_t *pos, int n, int n_head, int hs, int ctx)
{
    flush(p);
    if (n <= 0) return;
    if (kc_att_smem_bytes(hs) > SMEM_DEFAULT) {
        failf(p, "port_attention: head size %d needs %zu bytes of shared memory; the CUDA kernel has %d", hs,
              kc_att_smem_bytes(hs), SMEM_DEFAULT);
        return;
    }
    int splits = ctx > KC_ATT_CHUNK ? kc_att_splits(ctx) : 1, group = n;
    if (splits > 1) {
        size_t per_row = (size_t)n_head * (size_t)splits * kc_att_part_floats(hs) * sizeof(float);
        size_t fit = p->scratch_bytes / per_row;
        group = fit < (size_t)KC_ATT_SPLIT_MAX_ROWS ? (int)fit : KC_ATT_SPLIT_MAX_ROWS;
        if (group < 1) {   /* cannot happen with the planned workspace */
            failf(p, "port_attention: the workspace holds no partials of %d splits", splits);
            return;
        }
    }
    for (int r0 = 0; r0 < n; r0 += group) {
        int m = n - r0 < group ? n - r0 : group;
        cudaError_t e = kc_attention(p->stream, out + (size_t)r0 * (size_t)ldo, ldo, q + (size_t)r0 * (size_t)ldq,
                                     ldq, k_cache, v_cache, kv_dtype, seq + r0, pos + r0, m, n_head, hs, ctx, splits,
                                     (float *)p->scratch);
        note(p, "port_attention", e);
        if (e != cudaSuccess) return;
    }
}

/* ---- sequence slots of the KV cache: one 2-D copy per call, a row per head ---- */
static size_t kv_span(kvgpt_dtype dt, int hs, int n) { return (size_t)n * (size_t)hs * dtype_bytes(dt); }
static size_t kv_slot_at(kvgpt_dtype dt, int n_head, int ctx, int hs, int seq)
{
    return (size_t)seq * (size_t)n_head * kv_span(dt, hs, ctx);
}

void port_kv_copy(port *p, void *cache, kvgpt_dtype kv_dtype, int n_head, int ctx, int hs, int src, int dst, int n)
{
    flush(p);
    if (src == dst || n <= 0) return;
    const size_t pitch = kv_span(kv_dtype, hs, ctx);
    note(p, "port_kv_copy",
         cudaMemcpy2DAsync((char *)cache + kv_slot_at(kv_dtype, n_head, ctx, hs, dst), pitch,
                           (const char *)cache + kv_slot_at(kv_dtype, n_head, ctx, hs, src), pitch,
                           kv_span(kv_dtype, hs, n), (size_t)n_head, cudaMemcpyDeviceToDevice, p->stream));
}

/* Both wait for the stream: the host buffer is the caller's on return. */
kvgpt_status port_kv_read(port *p, void *host, const void *cache, kvgpt_dtype kv_dtype, int n_head, int ctx, int hs,
                          int seq, int n)
{
    flush(p);
    if (n <= 0) return KVGPT_OK;
    cudaError_t e = cudaMemcpy2DAsync(host, kv_span(kv_dtype, hs, n),
                                      (const char *)cache + kv_slot_at(kv_dtype, n_head, ctx, hs, seq),
                                      kv_span(kv_dtype, hs, ctx), kv_span(kv_dtype, hs, n), (size_t)n_head,
                                      cudaMemcpyDeviceToHost, p->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(p->stream);
    note(p, "port_kv_read", e);
    return e == cudaSuccess ? KVGPT_OK : KVGPT_ERR_BACKEND;
}

kvgpt_status port_kv_write(port *p, void *cache, const void *host, kvgpt_dtype kv_dtype, int n_head, int ctx, int hs,
                           int seq, int n)
{
    flush(p);
    if (n <= 0) return KVGPT_OK;
    cudaError_t e = cudaMemcpy2DAsync((char *)cache + kv_slot_at(kv_dtype, n_head, ctx, hs, seq),
                                      kv_span(kv_dtype, hs, ctx), host, kv_span(kv_dtype, hs, n),
                                      kv_span(kv_dtype, hs, n), (size_t)n_head, cudaMemcpyHostToDevice, p->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(p->stream);
    note(p, "port_kv_write", e);
    return e == cudaSuccess ? KVGPT_OK : KVGPT_ERR_BACKEND;
}

void port_gather_rows(port *p, float *dst, const float *src, const int32_t *idx, int n, int c)
{
    flush(p);
    note(p, "port_gather_rows", kc_gather_rows(p->stream, dst, src, idx, n, c));
}

/* Ends a capture the model left open (an early return in a recorded
 * forward): nothing of it ran, so the forward failed. */
static void abandon_capture(port *p)
{
    if (!p->capturing) return;
    cudaGraph_t g = NULL;
    (void)cudaStreamEndCapture(p->stream, &g);
    if (g) (void)cudaGraphDestroy(g);
    (void)cudaGetLastError();
    failf(p, "a forward of %d rows ended while its graph was being recorded (no port_graph_end)", p->capturing);
    p->capturing = 0;
}

kvgpt_status port_sync(port *p, kvgpt_error *err)
{
    flush(p);
    abandon_capture(p);
    cudaError_t e = cudaStreamSynchronize(p->stream);
    note(p, "port_sync", e);
    if (p->fail[0]) return kv_fail(err, KVGPT_ERR_BACKEND, "CUDA port: %s", p->fail);
    return KVGPT_OK;
}

/* ---- decode graphs ---- */
int port_graph_record(port *p, int on)
{
    p->recording = on && !p->graphs_off;
    return !p->graphs_off;
}

int port_graph_begin(port *p, int rows, int n_logits)
{
    flush(p);
    if (p->graphs_off || p->capturing || p->fail[0] || rows < 1 || rows > PORT_MAX_GRAPHS || rows != n_logits)
        return 0;
    if (p->recording) {
        if (p->graph[rows]) return 0;
        cudaError_t e = cudaStreamBeginCapture(p->stream, cudaStreamCaptureModeThreadLocal);
        note(p, "port_graph_begin: cudaStreamBeginCapture", e);
        if (e == cudaSuccess) p->capturing = rows;
        return 0;
    }
    if (!p->graph[rows]) return 0;
    cudaError_t e = cudaGraphLaunch(p->graph[rows], p->stream);
    note(p, "port_graph_begin: cudaGraphLaunch", e);
    return e == cudaSuccess;
}

/* Instantiates what was captured, uploads it (its first launch then
 * allocates nothing) and runs it: the forward being recorded happens now. */
kvgpt_status port_graph_end(port *p, kvgpt_error *err)
{
    flush(p);
    if (!p->capturing) return KVGPT_OK;
    const int rows = p->capturing;
    p->capturing = 0;
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(p->stream, &g);
    note(p, "port_graph_end: cudaStreamEndCapture", e);
    if (e == cudaSuccess && !p->fail[0]) {
        e = cudaGraphInstantiate(&p->graph[rows], g, 0);
        if (e == cudaSuccess) e = cudaGraphUpload(p->graph[rows], p->stream);
        if (e == cudaSuccess) e = cudaGraphLaunch(p->graph[rows], p->stream);
        note(p, "port_graph_end: instantiating the decode graph", e);
    }
    if (g) (void)cudaGraphDestroy(g);
    if (p->fail[0]) {
        (void)cudaGetLastError();
        return kv_fail(err, KVGPT_ERR_BACKEND, "CUDA port: recording the graph of %d rows: %s", rows, p->fail);
    }
    return KVGPT_OK;
}

/* ---- sampling ---- */
kvgpt_status port_sample(port *p, int32_t *out, const float *logits, int n, int vocab, const port_sample_params *sp,
                         uint64_t *rng, kvgpt_error *err)
{
    flush(p);
    if (!out || !logits || !sp || !rng || n < 1 || vocab < 1)
        return kv_fail(err, KVGPT_ERR_ARG, "port_sample: %d rows of %d logits, or a NULL argument", n, vocab);
    if (!(sp->temperature >= 0.0f) || sp->top_k < 0 || !(sp->top_p > 0.0f && sp->top_p <= 1.0f))
        return kv_fail(err, KVGPT_ERR_ARG, "port_sample: temperature %g, top_k %d, top_p %g", (double)sp->temperature,
                       sp->top_k, (double)sp->top_p);
    const size_t per_row = kc_sample_scratch_bytes(vocab);
    size_t group = p->scratch_bytes / per_row;
    if (group == 0)
        return kv_fail(err, KVGPT_ERR_UNSUPPORTED,
                       "CUDA port: sampling %d logits needs %zu bytes of workspace, it has %zu: sample on the host",
                       vocab, per_row, p->scratch_bytes);
    if (group > KC_SAMPLE_MAX_ROWS) group = KC_SAMPLE_MAX_ROWS;
    kc_sample_args a;
    memset(&a, 0, sizeof a);
    a.temperature = sp->temperature;
    a.top_p = sp->top_p;
    a.top_k = sp->top_k;
    a.vocab = vocab;
    for (int r0 = 0; r0 < n; r0 += (int)group) {
        a.rows = n - r0 < (int)group ? n - r0 : (int)group;
        memcpy(a.rng, rng + r0, (size_t)a.rows * sizeof(uint64_t));
        cudaError_t e = kc_sample(p->stream, logits + (size_t)r0 * (size_t)vocab, &a, p->sample_dev, p->scratch);
        if (e == cudaSuccess)
            e = cudaMemcpyAsync(p->sample_host, p->sample_dev, (size_t)a.rows * sizeof(kc_sample_out),
                                cudaMemcpyDeviceToHost, p->stream);
        if (e == cudaSuccess) e = cudaStreamSynchronize(p->stream);
        note(p, "port_sample", e);
        if (p->fail[0]) return kv_fail(err, KVGPT_ERR_BACKEND, "CUDA port: %s", p->fail);
        for (int i = 0; i < a.rows; i++) {
            out[r0 + i] = p->sample_host[i].id;
            rng[r0 + i] = p->sample_host[i].rng;
        }
    }
    return KVGPT_OK;
}

/* ---- the bandwidth probe: its own buffer and stream, given back before it returns ---- */
double port_probe_read_gbps(size_t bytes, int reps)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        (void)cudaGetLastError();
        return 0.0;
    }
    bytes &= ~(size_t)15;
    void *buf = NULL, *sink = NULL;
    cudaStream_t s = NULL;
    cudaEvent_t t0 = NULL, t1 = NULL;
    double best = 0.0;
    cudaError_t e = cudaMalloc(&buf, bytes);
    if (e == cudaSuccess) e = cudaMalloc(&sink, KC_PROBE_BLOCKS * sizeof(uint64_t));
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    if (e == cudaSuccess) e = cudaEventCreate(&t0);
    if (e == cudaSuccess) e = cudaEventCreate(&t1);
    if (e == cudaSuccess) e = cudaMemsetAsync(buf, 0x5a, bytes, s);   /* every page really there */
    if (e == cudaSuccess) e = cudaMemsetAsync(sink, 0, KC_PROBE_BLOCKS * sizeof(uint64_t), s);
    if (e == cudaSuccess) e = kc_probe_read(s, buf, bytes, (uint64_t *)sink, KC_PROBE_BLOCKS);   /* warm-up */
    for (int r = 0; r < (reps > 0 ? reps : 1) && e == cudaSuccess; r++) {
        float ms = 0.0f;
        e = cudaEventRecord(t0, s);
        if (e == cudaSuccess) e = kc_probe_read(s, buf, bytes, (uint64_t *)sink, KC_PROBE_BLOCKS);
        if (e == cudaSuccess) e = cudaEventRecord(t1, s);
        if (e == cudaSuccess) e = cudaEventSynchronize(t1);
        if (e == cudaSuccess) e = cudaEventElapsedTime(&ms, t0, t1);
        if (e == cudaSuccess && ms > 0.0f && (double)bytes / (ms * 1e6) > best) best = (double)bytes / (ms * 1e6);
    }
    if (s) (void)cudaStreamSynchronize(s);
    if (t0) (void)cudaEventDestroy(t0);
    if (t1) (void)cudaEventDestroy(t1);
    if (s) (void)cudaStreamDestroy(s);
    if (buf) (void)cudaFree(buf);
    if (sink) (void)cudaFree(sink);
    (void)cudaGetLastError();
    return e == cudaSuccess ? best : 0.0;
}
