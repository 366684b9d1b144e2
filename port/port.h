/* port/port.h — the one backend interface model/ calls.
 *
 * model/ computes the GPT-2 forward only through these functions; it never
 * touches OpenMP, CUDA or the layout of packed weights. A backend is chosen
 * by the build (port/cpu.c binds this to ops/, cuda/ to CUDA kernels of its
 * own), never by #ifdef in model code.
 *
 * Memory: buffers in the DEVICE space of the plan live where the backend
 * computes (the host arena for the CPU port, one cudaMalloc for CUDA); the
 * model moves data across only with port_upload/port_download.
 */
#ifndef KVGPT_PORT_H
#define KVGPT_PORT_H

#include <stddef.h>
#include <stdint.h>
#include "kvgpt.h"

/* A weight matrix W: ic inputs -> oc outputs, in the backend's own layout. */
typedef struct {
    void *data;
    kvgpt_dtype dtype;
    int ic, oc;
} port_wmat;

typedef struct port port;   /* backend state; lives in the host arena */

/* Name of the backend ("cpu", "cuda") and whether the DEVICE space is separate memory. */
const char *port_name(void);
int port_device_is_host(void);

/* Size first: bytes of the port struct, of a weight matrix, of the backend's
 * workspace in the device space for a forward of `rows` rows. */
size_t port_struct_bytes(void);
size_t port_wmat_bytes(int ic, int oc, kvgpt_dtype dt);
size_t port_workspace_bytes(int rows, int ctx, int n_embd, int threads);

/* Checks the options the backend heeds (CPU: threads, cpu_kernels) and
 * fills the plan's backend fields: the kernel set, the threads, the stack of
 * each thread the backend starts. */
kvgpt_status port_plan_backend(const kvgpt_options *o, kvgpt_plan *p, kvgpt_error *err);

/* The device arena (CUDA: one cudaMalloc). Never called when the device is the host. */
kvgpt_status port_device_arena(void **base, size_t bytes, kvgpt_error *err);
void port_device_arena_free(void *base);

/* Binds the backend: mem is port_struct_bytes() of host arena, workspace
 * is port_workspace_bytes() of device arena; o gives what the backend may
 * heed (threads, adapt_threads, ...). */
kvgpt_status port_init(port **out, void *mem, void *device_base, size_t device_bytes,
                       void *workspace, size_t workspace_bytes, const kvgpt_options *o,
                       kvgpt_error *err);
/* The last step of a successful open: the CPU port starts its thread pool
 * here (as large as the system allows, up to the plan's threads), so that a
 * failed open leaves no thread behind. */
kvgpt_status port_start(port *p, kvgpt_error *err);
void port_shutdown(port *p);
/* Threads the backend computes with now (CPU), for reports: after
 * port_start, at most the plan's. */
int port_threads(const port *p);
/* Threads for the following kernels, 1 .. the count at init (the CPU's
 * kernels give the same bits for any); ignored by backends without threads. */
void port_set_threads(port *p, int threads);

/* Brackets one forward of `rows` rows, `decode` when every row is the last of
 * its sequence (a decode step). With adapt_threads the CPU port times decode
 * steps and picks the thread count of each forward (port/governor.h: on a
 * busy machine one thread can beat all); the bits never depend on it. */
void port_step_begin(port *p);
void port_step_end(port *p, int rows, int decode);
/* Thread-count changes the governor made so far (0 for ports without threads). */
int port_thread_switches(const port *p);
/* The CPU port's governor, for tests that force its decisions; NULL elsewhere. */
struct gov_state *port_governor(port *p);

/* Loading (at open only). Rows arrive as f32 on the host. */
void port_wmat_bind(port_wmat *w, void *data, int ic, int oc, kvgpt_dtype dt);
/* Rows k0..k0+n-1 of W (each oc values) — the HF Conv1D [in, out] layout. */
kvgpt_status port_wmat_rows_in(port *p, port_wmat *w, int k0, int n, const float *src);
/* Rows o0..o0+n-1 of W^T (each ic values) — the nn.Linear [out, in] layout. */
kvgpt_status port_wmat_rows_out(port *p, port_wmat *w, int o0, int n, const float *src);
kvgpt_status port_wmat_finish(port *p, port_wmat *w);
kvgpt_status port_upload(port *p, void *dst, const void *src, size_t bytes);
kvgpt_status port_download(port *p, void *dst, const void *src, size_t bytes);

/* The forward's operations. All float pointers are in the device space;
 * rows are [n, width] with the given leading dimensions. */
/* x[r] = wte[tok[r]] + wpe[pos[r]]; wte is the tied lm_head matrix (ic = n_embd, oc = vocab). */
void port_embed(port *p, float *x, const port_wmat *wte, const float *wpe,
                const int32_t *tok, const int32_t *pos, int n, int c);
void port_layernorm(port *p, float *out, const float *x, const float *w, const float *b,
                    int n, int c, float eps);
void port_matmul(port *p, float *out, int ldo, const float *in, int ldi, const port_wmat *w,
                 const float *bias, int n);
void port_gelu(port *p, float *x, size_t len, kvgpt_gelu kind);
void port_add(port *p, float *x, const float *y, size_t len);
/* Stores K and V of n rows (from qkv rows: k at +c, v at +2c) into one layer's cache. */
void port_kv_store(port *p, void *k_cache, void *v_cache, kvgpt_dtype kv_dtype,
                   const float *qkv, int ldqkv, const int32_t *seq, const int32_t *pos,
                   int n, int n_head, int hs, int ctx);
/* Causal attention of n query rows over one layer's cache (see ops_attention). */
void port_attention(port *p, float *out, int ldo, const float *q, int ldq,
                    const void *k_cache, const void *v_cache, kvgpt_dtype kv_dtype,
                    const int32_t *seq, const int32_t *pos, int n, int n_head, int hs, int ctx);
/* Sequence slots of one layer's K (or V) cache, laid out [batch][n_head][ctx][hs]
 * in kv_dtype: positions [0, n) of slot src copied to slot dst, or to / from
 * host memory laid out [n_head][n][hs] (a saved state). */
void port_kv_copy(port *p, void *cache, kvgpt_dtype kv_dtype, int n_head, int ctx, int hs,
                  int src, int dst, int n);
kvgpt_status port_kv_read(port *p, void *host, const void *cache, kvgpt_dtype kv_dtype,
                          int n_head, int ctx, int hs, int seq, int n);
kvgpt_status port_kv_write(port *p, void *cache, const void *host, kvgpt_dtype kv_dtype,
                           int n_head, int ctx, int hs, int seq, int n);
/* Copies n rows of width c from src rows idx[i] into dst rows i (the last row per sequence). */
void port_gather_rows(port *p, float *dst, const float *src, const int32_t *idx, int n, int c);
/* Waits for queued work (CUDA); a no-op on the CPU. */
kvgpt_status port_sync(port *p, kvgpt_error *err);

/* ==== issue 17: pinned host memory, decode graphs, device sampling, bandwidth probe ==== */

/* The host arena, given once by open after port_init: a backend with a
 * separate device pins it (CUDA: cudaHostRegister), so that port_upload and
 * port_download from and to it are asynchronous (ordered by the stream,
 * complete at port_sync) and can be recorded in a graph; copies from other
 * host memory still wait. Undone by port_shutdown. CPU: nothing to do. */
kvgpt_status port_host_memory(port *p, void *base, size_t bytes, kvgpt_error *err);

/* Decode graphs: the device work of one forward depends only on its row
 * count n and logit rows n_logits (every pointer, size and index it uses is
 * fixed by the plan or read from device memory), so a backend may record it
 * once and replay it. Protocol for the model (see cuda/README.md):
 *   port_graph_record(p, 1) at open, one forward of n rows and n logits for
 *   each n = 1..batch, port_graph_record(p, 0); in every forward, after the
 *   row table is uploaded:
 *     if (!port_graph_begin(p, n, n_logits)) { ...every port call of the forward... }
 *     port_graph_end(p, err);
 * port_graph_record returns 1 when the backend records graphs (0: CPU, or
 * KVGPT_CUDA_GRAPHS=0); port_graph_begin returns 1 when it launched the
 * graph of (n, n_logits) — the model then issues nothing until
 * port_graph_end — and 0 when the calls must be issued (while recording, the
 * calls of the first forward of each n == n_logits <= 64 are captured, then
 * instantiated and run by port_graph_end, which reports a failed capture).
 * No allocation after open: graphs are only made while recording. */
int port_graph_record(port *p, int on);
int port_graph_begin(port *p, int rows, int n_logits);
kvgpt_status port_graph_end(port *p, kvgpt_error *err);

typedef struct { float temperature, top_p; int top_k; } port_sample_params;
/* Draws one token from each of the first n rows of the device logits
 * buffer (the forward's logits, n <= its logit rows), row i with rng[i]
 * (host memory, advanced as model/sampler.c advances it), as
 * kvgpt_sample_logits would; ids to host out[n]. KVGPT_ERR_UNSUPPORTED:
 * this port leaves sampling to the host (the CPU port: its logits are
 * host memory already; CUDA: a vocabulary too large for its workspace).
 * The draws equal the host's exactly when model/sampler.c computes its
 * weights with kv_expf (common/fexp.h); with libm's expf a weight can differ
 * in its last bit (about 1 in 1,600), which changes a draw only when the
 * uniform falls within that bit of a boundary. */
kvgpt_status port_sample(port *p, int32_t *out, const float *logits, int n, int vocab,
                         const port_sample_params *sp, uint64_t *rng, kvgpt_error *err);

/* Streaming-read bandwidth of the backend's device memory in GB/s (1e9
 * bytes/s), the best of reps reads of a buffer of `bytes` that this call
 * takes and gives back (a benchmark's denominator, never called by the
 * model); 0 when the device is the host (measure host memory instead) or
 * the buffer cannot be had. */
double port_probe_read_gbps(size_t bytes, int reps);

/* ==== end of issue 17's block ==== */

#endif
