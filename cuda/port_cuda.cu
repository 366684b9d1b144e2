/* cuda/port_cuda.cu — the CUDA backend: port.h bound to the kernels of
 * cuda/kernels.cu and to cuBLAS, on one stream per model.
 *
 * Memory: everything the forward touches is in the plan's DEVICE space, one
 * cudaMalloc (port_device_arena) made by kvgpt_open. The port workspace in it
 * holds cuBLAS's workspace (set with cublasSetWorkspace, so cuBLAS takes none
 * of its own) and a scratch area: half weights widened to f32 for GEMMs,
 * attention partials, and load-time staging. The stream
 * and the cuBLAS handle are driver objects created in port_init; they are not
 * memory an arena can hold.
 *
 * Errors: the void operations queue work; the first failure (bad launch,
 * cuBLAS status, workspace overflow) is kept in the port and reported by the
 * next port_sync as KVGPT_ERR_BACKEND with CUDA's own error string. CUDA
 * errors inside kernels are sticky: once one is reported, the model is done.
 */
extern "C" {
#include "port/port.h"
#include "common/status.h"
}
#include "cuda/kernels.h"

#include <cublas_v2.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* cuBLAS's recommended workspace on Hopper (4 MiB suffices before it). */
#define CUBLAS_WS_BYTES ((size_t)32 << 20)
/* cuBLAS wants its workspace 256-byte aligned; the arena gives 64. */
#define WS_ALIGN 256

struct port {
    int device;               /* the current device at open */
    cudaStream_t stream;      /* all of this model's work, in order */
    cublasHandle_t blas;      /* bound to stream and to the workspace below */
    char *ws;                 /* the workspace, WS_ALIGN-aligned */
    size_t ws_bytes;
    char *scratch;            /* ws + CUBLAS_WS_BYTES: per-operation scratch */
    size_t scratch_bytes;
    char fail[200];           /* first failure since open ("" = none) */
};

const char *port_name(void) { return "cuda"; }
int port_device_is_host(void) { return 0; }
size_t port_struct_bytes(void) { return sizeof(struct port); }

static size_t dtype_bytes(kvgpt_dtype dt) { return dt == KVGPT_DTYPE_F32 ? 4 : 2; }

/* Row-major [oc][ic] in the weight dtype, nothing padded. */
size_t port_wmat_bytes(int ic, int oc, kvgpt_dtype dt)
{
    size_t b;
    if (ic < 0 || oc < 0 || !kv_mul((size_t)ic, (size_t)oc, &b) || !kv_mul(b, dtype_bytes(dt), &b)) return SIZE_MAX;
    return b;
}

/* cuBLAS workspace + scratch for the larger of: a 4C x C weight matrix
 * widened to f32 (half-weight GEMMs go a slice of that size at a time), and
 * the attention partials of up to KC_ATT_SPLIT_MAX_ROWS rows (n_head*(hs+2)
 * <= 3C floats per row and split). */
size_t port_workspace_bytes(int rows, int ctx, int n_embd, int threads)
{
    (void)threads;
    size_t r = rows > 0 ? (size_t)rows : 1, c = n_embd > 0 ? (size_t)n_embd : 1;
    size_t sr = r < KC_ATT_SPLIT_MAX_ROWS ? r : KC_ATT_SPLIT_MAX_ROWS;
    size_t wide_b, part_b, total;
    if (!kv_mul(c, 4 * sizeof(float), &wide_b) || !kv_mul(wide_b, c, &wide_b) ||
        !kv_mul(sr, (size_t)kc_att_splits(ctx > 0 ? ctx : 1), &part_b) || !kv_mul(part_b, 3 * sizeof(float), &part_b) ||
        !kv_mul(part_b, c, &part_b))
        return SIZE_MAX;
    size_t scratch = wide_b > part_b ? wide_b : part_b;
    if (!kv_align(scratch, WS_ALIGN, &scratch) || !kv_add(scratch, CUBLAS_WS_BYTES + WS_ALIGN, &total))
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

static void note_blas(port *p, const char *what, cublasStatus_t s)
{
    if (s != CUBLAS_STATUS_SUCCESS) failf(p, "%s: %s", what, cublasGetStatusString(s));
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
    if (p->blas) cublasDestroy(p->blas);
    if (p->stream) {
        (void)cudaStreamSynchronize(p->stream);
        (void)cudaStreamDestroy(p->stream);
    }
    p->blas = NULL;
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
    if (workspace_bytes < lost + CUBLAS_WS_BYTES)
        return kv_fail(err, KVGPT_ERR_BACKEND, "CUDA port: workspace of %zu bytes is smaller than cuBLAS's %zu",
                       workspace_bytes, CUBLAS_WS_BYTES);
    p->ws = (char *)a;
    p->ws_bytes = workspace_bytes - lost;
    p->scratch = p->ws + CUBLAS_WS_BYTES;
    p->scratch_bytes = p->ws_bytes - CUBLAS_WS_BYTES;

    cudaError_t e = cudaGetDevice(&p->device);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&p->stream, cudaStreamNonBlocking);
    if (e == cudaSuccess) e = kc_preload();
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        release(p);
        return kv_fail(err, KVGPT_ERR_BACKEND, "CUDA port: creating the stream and loading the kernels: %s",
                       cudaGetErrorString(e));
    }
    /* Pure fp32 products (no TF32), as on the CPU; host scalars; our stream and
     * workspace, in that order: cublasSetStream resets the workspace to cuBLAS's own pool. */
    cublasStatus_t b = cublasCreate(&p->blas);
    if (b == CUBLAS_STATUS_SUCCESS) b = cublasSetStream(p->blas, p->stream);
    if (b == CUBLAS_STATUS_SUCCESS) b = cublasSetWorkspace(p->blas, p->ws, CUBLAS_WS_BYTES);
    if (b == CUBLAS_STATUS_SUCCESS) b = cublasSetMathMode(p->blas, CUBLAS_DEFAULT_MATH);
    if (b == CUBLAS_STATUS_SUCCESS) b = cublasSetPointerMode(p->blas, CUBLAS_POINTER_MODE_HOST);
    if (b != CUBLAS_STATUS_SUCCESS) {
        release(p);
        return kv_fail(err, KVGPT_ERR_BACKEND, "CUDA port: setting up cuBLAS: %s", cublasGetStatusString(b));
    }
    *out = p;
    return KVGPT_OK;
}

void port_shutdown(port *p)
{
    if (p) release(p);
}

/* One host thread drives the device. */
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

/* ---- copies ----
 * Host -> device copies wait for the stream afterwards: the caller may reuse
 * its buffer on return (the loader does, chunk after chunk), whether it is
 * pageable or pinned. They are few per forward (the row table). */
static kvgpt_status upload(port *p, void *dst, const void *src, size_t bytes, const char *what)
{
    if (bytes == 0) return KVGPT_OK;
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, p->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(p->stream);
    note(p, what, e);
    return e == cudaSuccess ? KVGPT_OK : KVGPT_ERR_BACKEND;
}

kvgpt_status port_upload(port *p, void *dst, const void *src, size_t bytes)
{
    return upload(p, dst, src, bytes, "port_upload");
}

kvgpt_status port_download(port *p, void *dst, const void *src, size_t bytes)
{
    if (bytes == 0) return KVGPT_OK;
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, p->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(p->stream);
    note(p, "port_download", e);
    return e == cudaSuccess ? KVGPT_OK : KVGPT_ERR_BACKEND;
}

/* ---- weights ---- */
void port_wmat_bind(port_wmat *w, void *data, int ic, int oc, kvgpt_dtype dt)
{
    w->data = data;
    w->dtype = dt;
    w->ic = ic;
    w->oc = oc;
}

/* Staging for load-time conversion: the whole workspace (no product runs
 * while weights load, and the stream orders every use). */
static size_t stage_floats(const port *p)
{
    size_t f = p->ws_bytes / sizeof(float);
    return f > (size_t)INT32_MAX ? (size_t)INT32_MAX : f;
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
        const float *s = src + (size_t)i * (size_t)w->oc;
        kvgpt_status st = upload(p, p->ws, s, (size_t)m * (size_t)w->oc * sizeof(float), "port_wmat_rows_in");
        if (st) return st;
        cudaError_t e = kc_wmat_rows_in(p->stream, w->data, w->dtype, w->ic, w->oc, k0 + i, m, (const float *)p->ws);
        note(p, "port_wmat_rows_in (kernel)", e);
        if (e != cudaSuccess) return KVGPT_ERR_BACKEND;
        i += m;
    }
    return KVGPT_OK;
}

/* Rows o0..o0+n-1 of W^T, each ic values: contiguous in the [oc][ic] layout. */
kvgpt_status port_wmat_rows_out(port *p, port_wmat *w, int o0, int n, const float *src)
{
    if (n <= 0) return KVGPT_OK;
    if (o0 < 0 || o0 + n > w->oc) {
        failf(p, "port_wmat_rows_out: rows %d..%d of a matrix with %d", o0, o0 + n - 1, w->oc);
        return KVGPT_ERR_BACKEND;
    }
    size_t es = dtype_bytes(w->dtype), count = (size_t)n * (size_t)w->ic;
    char *dst = (char *)w->data + (size_t)o0 * (size_t)w->ic * es;
    if (w->dtype == KVGPT_DTYPE_F32) return upload(p, dst, src, count * sizeof(float), "port_wmat_rows_out");
    size_t per = stage_floats(p);
    for (size_t i = 0; i < count;) {
        size_t m = count - i < per ? count - i : per;
        kvgpt_status st = upload(p, p->ws, src + i, m * sizeof(float), "port_wmat_rows_out");
        if (st) return st;
        cudaError_t e = kc_convert_rows(p->stream, dst + i * es, w->dtype, (int)m, (const float *)p->ws, (int)m, 1,
                                        (int)m);
        note(p, "port_wmat_rows_out (kernel)", e);
        if (e != cudaSuccess) return KVGPT_ERR_BACKEND;
        i += m;
    }
    return KVGPT_OK;
}

/* Nothing to pad. The conversions are queued: a fault in them shows at open's port_sync. */
kvgpt_status port_wmat_finish(port *p, port_wmat *w)
{
    (void)p;
    (void)w;
    return KVGPT_OK;
}

/* ---- the forward ---- */
void port_embed(port *p, float *x, const port_wmat *wte, const float *wpe, const int32_t *tok, const int32_t *pos,
                int n, int c)
{
    if (wte->ic != c) {
        failf(p, "port_embed: embedding width %d, the tied matrix has %d inputs", c, wte->ic);
        return;
    }
    note(p, "port_embed", kc_embed(p->stream, x, wte->data, wte->dtype, wpe, tok, pos, n, c));
}

void port_layernorm(port *p, float *out, const float *x, const float *w, const float *b, int n, int c, float eps)
{
    note(p, "port_layernorm", kc_layernorm(p->stream, out, x, w, b, n, c, eps));
}

/* n <= KC_GEMV_MAX_ROWS (decode): the row-exact GEMV kernel.
 * Larger n: cublasGemmEx in pure fp32 (CUBLAS_COMPUTE_32F, no TF32), then
 * the bias. In column-major terms out^T [oc x n] = A^T in^T with A the
 * weights as stored, [ic x oc] column-major, hence CUBLAS_OP_T. cuBLAS takes
 * no f32 x f16 operands, and rounding the activations to half would double
 * the error the CPU has (it keeps them f32); so half weights are widened to
 * f32 in the scratch, a slice of outputs at a time, and multiplied in f32:
 * the CPU's arithmetic, only the order of the sums differs. */
void port_matmul(port *p, float *out, int ldo, const float *in, int ldi, const port_wmat *w, const float *bias,
                 int n)
{
    if (n <= 0) return;
    size_t es = dtype_bytes(w->dtype);
    size_t per = w->dtype == KVGPT_DTYPE_F32 ? (size_t)w->oc : p->scratch_bytes / ((size_t)w->ic * sizeof(float));
    if (n <= KC_GEMV_MAX_ROWS || per == 0) {
        note(p, "port_matmul (gemv)", kc_gemv(p->stream, out, ldo, in, ldi, w->data, w->dtype, w->ic, w->oc, bias, n));
        return;
    }
    const float one = 1.0f, zero = 0.0f;
    for (int o0 = 0; o0 < w->oc;) {
        int m = (size_t)(w->oc - o0) < per ? w->oc - o0 : (int)per;
        const void *a = (const char *)w->data + (size_t)o0 * (size_t)w->ic * es;
        if (w->dtype != KVGPT_DTYPE_F32) {
            cudaError_t e = kc_widen(p->stream, (float *)p->scratch, a, w->dtype, (size_t)m * (size_t)w->ic);
            note(p, "port_matmul (widening weights)", e);
            if (e != cudaSuccess) return;
            a = p->scratch;
        }
        cublasStatus_t st = cublasGemmEx(p->blas, CUBLAS_OP_T, CUBLAS_OP_N, m, n, w->ic, &one, a, CUDA_R_32F, w->ic,
                                         in, CUDA_R_32F, ldi, &zero, out + o0, CUDA_R_32F, ldo, CUBLAS_COMPUTE_32F,
                                         CUBLAS_GEMM_DEFAULT);
        note_blas(p, "port_matmul: cublasGemmEx", st);
        if (st != CUBLAS_STATUS_SUCCESS) return;
        o0 += m;
    }
    if (bias) note(p, "port_matmul (bias)", kc_add_bias(p->stream, out, ldo, bias, n, w->oc));
}

void port_gelu(port *p, float *x, size_t len, kvgpt_gelu kind) { note(p, "port_gelu", kc_gelu(p->stream, x, len, kind)); }

void port_add(port *p, float *x, const float *y, size_t len) { note(p, "port_add", kc_add(p->stream, x, y, len)); }

void port_kv_store(port *p, void *k_cache, void *v_cache, kvgpt_dtype kv_dtype, const float *qkv, int ldqkv,
                   const int32_t *seq, const int32_t *pos, int n, int n_head, int hs, int ctx)
{
    note(p, "port_kv_store",
         kc_kv_store(p->stream, k_cache, v_cache, kv_dtype, qkv, ldqkv, seq, pos, n, n_head, hs, ctx));
}

/* Contexts longer than KC_ATT_CHUNK are split for every call (see
 * cuda/kernels.h), in groups of rows whose partials fit the scratch. The
 * split count depends on ctx alone: positions are on the device. */
void port_attention(port *p, float *out, int ldo, const float *q, int ldq, const void *k_cache, const void *v_cache,
                    kvgpt_dtype kv_dtype, const int32_t *seq, const int32_t *pos, int n, int n_head, int hs, int ctx)
{
    if (n <= 0) return;
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
    note(p, "port_gather_rows", kc_gather_rows(p->stream, dst, src, idx, n, c));
}

kvgpt_status port_sync(port *p, kvgpt_error *err)
{
    cudaError_t e = cudaStreamSynchronize(p->stream);
    note(p, "port_sync", e);
    if (p->fail[0]) return kv_fail(err, KVGPT_ERR_BACKEND, "CUDA port: %s", p->fail);
    return KVGPT_OK;
}
