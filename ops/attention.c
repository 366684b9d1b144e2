/* ops/attention.c — causal attention of query rows over a layer's KV cache
 * (one kernel set's: see ops_internal.h).
 *
 * One (row, head) pair is one task: scores into the thread's scratch, softmax,
 * then the weighted sum of V. Each task's arithmetic is fixed by its inputs
 * alone, so the split over threads and the batch it came in never show in the
 * bits.
 */
#include "ops/ops_internal.h"
#include <omp.h>

/* (row, head) work in multiply-adds below which one thread does it all. */
#define ATT_PAR_MIN 65536

/* G scores at once (independent FMA chains hide the latency); the lanes of
 * score g see exactly the operations a lone score would, so grouping never
 * changes a score's bits. */
OPS_INLINE void att_scores(const int G, const kvgpt_dtype dt, float *s, const float *q,
                           const void *k, size_t t0, int hs, float scale)
{
    ops_v16 acc[4];
    for (int g = 0; g < G; g++)
        acc[g] = ops_vzero();
    int d = 0;
    for (; d + OPS_PANEL <= hs; d += OPS_PANEL) {
        const ops_v16 qv = ops_vld(q + d);
        for (int g = 0; g < G; g++) {
            const ops_v16 kv = ops_vld_dt(dt, k, (t0 + (size_t)g) * (size_t)hs + (size_t)d);
            acc[g] = ops_vfma2(qv, kv, acc[g]);
        }
    }
    for (int g = 0; g < G; g++) {
        float tail = 0.0f;          /* hs not a multiple of 16 */
        for (int j = d; j < hs; j++)
            tail = OPS_FMAF(q[j], ops_ld_dt(dt, k, (t0 + (size_t)g) * (size_t)hs + (size_t)j), tail);
        s[g] = (ops_vhsum(acc[g]) + tail) * scale;
    }
}

/* out[d0 .. d0 + 16C) = sum_t p[t] v[t][..], C 16-lane chunks in flight. */
OPS_INLINE void att_pv(const int C, const kvgpt_dtype dt, float *out, const float *p, int np,
                       const void *v, int hs, int d0)
{
    ops_v16 acc[4];
    for (int c = 0; c < C; c++)
        acc[c] = ops_vzero();
    for (int t = 0; t < np; t++) {
        const size_t base = (size_t)t * (size_t)hs + (size_t)d0;
        for (int c = 0; c < C; c++)
            acc[c] = ops_vfma(p[t], ops_vld_dt(dt, v, base + (size_t)c * OPS_PANEL), acc[c]);
    }
    for (int c = 0; c < C; c++)
        ops_vst(out + d0 + c * OPS_PANEL, acc[c]);
}

OPS_INLINE void att_task(const kvgpt_dtype dt, float *out, const float *q, const void *k,
                         const void *v, int np, int hs, float *s)
{
    const float scale = 1.0f / sqrtf((float)hs);
    int t = 0;
    for (; t + 4 <= np; t += 4)
        att_scores(4, dt, s + t, q, k, (size_t)t, hs, scale);
    for (; t < np; t++)
        att_scores(1, dt, s + t, q, k, (size_t)t, hs, scale);

    OPS_K(softmax)(s, np);

    int d0 = 0;
    for (; d0 + 4 * OPS_PANEL <= hs; d0 += 4 * OPS_PANEL)
        att_pv(4, dt, out, s, np, v, hs, d0);
    switch ((hs - d0) / OPS_PANEL) {
    case 3: att_pv(3, dt, out, s, np, v, hs, d0); break;
    case 2: att_pv(2, dt, out, s, np, v, hs, d0); break;
    case 1: att_pv(1, dt, out, s, np, v, hs, d0); break;
    default: break;
    }
    d0 += (hs - d0) / OPS_PANEL * OPS_PANEL;
    for (int d = d0; d < hs; d++) {           /* hs not a multiple of 16 */
        float acc = 0.0f;
        for (int i = 0; i < np; i++)
            acc = OPS_FMAF(s[i], ops_ld_dt(dt, v, (size_t)i * (size_t)hs + (size_t)d), acc);
        out[d] = acc;
    }
}

static void att_task_any(kvgpt_dtype dt, float *out, const float *q, const void *k,
                         const void *v, int np, int hs, float *s)
{
    switch (dt) {
    case KVGPT_DTYPE_F16:  att_task(KVGPT_DTYPE_F16, out, q, k, v, np, hs, s); break;
    case KVGPT_DTYPE_BF16: att_task(KVGPT_DTYPE_BF16, out, q, k, v, np, hs, s); break;
    default:               att_task(KVGPT_DTYPE_F32, out, q, k, v, np, hs, s); break;
    }
}

/* Task = (head, row): one head of one row over its sequence's cache; s is the thread's scratch. */
static void att_one(float *out, int ldo, const float *q, int ldq, const void *k, const void *v, kvgpt_dtype kv_dtype,
                    const int32_t *seq, const int32_t *pos, int n, int n_head, int hs, int ctx, size_t es, float *s,
                    long task)
{
    const int h = (int)(task / n), r = (int)(task % n);
    const size_t slice = (((size_t)seq[r] * (size_t)n_head + (size_t)h) * (size_t)ctx) * (size_t)hs * es;
    att_task_any(kv_dtype, out + (size_t)r * (size_t)ldo + (size_t)h * (size_t)hs,
                 q + (size_t)r * (size_t)ldq + (size_t)h * (size_t)hs, (const char *)k + slice, (const char *)v + slice,
                 pos[r] + 1, hs, s);
}

void OPS_K(attention)(float *out, int ldo, const float *q, int ldq,
                      const void *k, const void *v, kvgpt_dtype kv_dtype,
                      const int32_t *seq, const int32_t *pos, int n,
                      int n_head, int hs, int ctx, float *scratch, int nt)
{
    const size_t es = kv_dtype_size(kv_dtype);
    const long tasks = (long)n * n_head;
    double work = 0.0;
    for (int r = 0; r < n; r++)
        work += (double)(pos[r] + 1) * n_head * hs;
    int T = ops_threads(nt);
    if (work < ATT_PAR_MIN || tasks < 2)
        T = 1;

    /* Head-major, so consecutive tasks reuse one head's K/V from L2; handed
     * out interleaved (static, 1) because causal rows grow in cost. No
     * parallel region at all for one thread: even that allocates in libgomp. */
    if (T == 1) {
        for (long task = 0; task < tasks; task++)
            att_one(out, ldo, q, ldq, k, v, kv_dtype, seq, pos, n, n_head, hs, ctx, es, scratch, task);
        return;
    }
#pragma omp parallel for num_threads(T) schedule(static, 1)
    for (long task = 0; task < tasks; task++)
        att_one(out, ldo, q, ldq, k, v, kv_dtype, seq, pos, n, n_head, hs, ctx, es,
                scratch + (size_t)omp_get_thread_num() * (size_t)ctx, task);
}
