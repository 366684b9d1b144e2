/* ops/rowwise.c — layernorm, GELU, residual add and softmax (one kernel
 * set's: see ops_internal.h).
 *
 * These are memory-light next to the matmuls; they only go parallel when a
 * call is big enough to pay for waking the thread team, and each element's
 * arithmetic is the same whichever thread computes it.
 */
#include "ops/ops_internal.h"

/* Elements below which elementwise kernels stay on the calling thread. */
#define ROW_PAR_MIN 32768
/* Elementwise work is handed out in blocks of this many floats (cache-line multiples). */
#define ROW_BLOCK 4096

static int row_team(size_t work, int nt)
{
    return work < ROW_PAR_MIN ? 1 : ops_threads(nt);
}

/* In double throughout: a row is only c long and this keeps x - mean exact
 * enough that outputs near zero keep their relative accuracy too. */
static void ln_row(float *out, const float *x, const float *w, const float *b, int c, float eps)
{
    double s = 0.0;
#pragma omp simd reduction(+:s)
    for (int i = 0; i < c; i++)
        s += x[i];
    const double mean = s / c;
    double v = 0.0;
#pragma omp simd reduction(+:v)
    for (int i = 0; i < c; i++) {
        const double d = x[i] - mean;
        v += d * d;
    }
    const double rstd = 1.0 / sqrt(v / c + eps);
    if (b) {
#pragma omp simd
        for (int i = 0; i < c; i++)
            out[i] = (float)((x[i] - mean) * rstd * w[i] + b[i]);
    } else {
#pragma omp simd
        for (int i = 0; i < c; i++)
            out[i] = (float)((x[i] - mean) * rstd * w[i]);
    }
}

/* One job of a row-wise kernel: its arguments, and what one block of it does. */
typedef struct rw_job rw_job;
struct rw_job {
    void (*block)(const rw_job *j, long bi);
    float *x, *out;
    const float *y, *w, *b;
    size_t len;
    int c;
    float eps;
};

/* Runs blocks 0..nb-1, in parallel only when T > 1: a parallel region with
 * one thread still costs libgomp an allocation, and decode must allocate nothing. */
static void run_blocks(const rw_job *j, long nb, int T)
{
    if (T <= 1) {
        for (long bi = 0; bi < nb; bi++) j->block(j, bi);
        return;
    }
#pragma omp parallel for num_threads(T) schedule(static)
    for (long bi = 0; bi < nb; bi++) j->block(j, bi);
}

static void ln_block(const rw_job *j, long r)
{
    ln_row(j->out + (size_t)r * j->c, j->x + (size_t)r * j->c, j->w, j->b, j->c, j->eps);
}

void OPS_K(layernorm)(float *out, const float *x, const float *w, const float *b,
                      int n, int c, float eps, int nt)
{
    const rw_job j = {ln_block, (float *)x, out, NULL, w, b, 0, c, eps};
    run_blocks(&j, n, row_team((size_t)n * (size_t)c, nt));
}

static void gelu_erf_block(float *x, size_t len)
{
    /* erfc keeps the relative accuracy of the left tail, where 1 + erf cancels. */
    for (size_t i = 0; i < len; i++)
        x[i] = 0.5f * x[i] * erfcf(-x[i] * 0.70710678118654752f);
}

static void gelu_tanh_block(float *x, size_t len)
{
    /* 0.5 (1 + tanh u) = 1 / (1 + exp(-2u)): no cancellation, and it vectorizes. */
#pragma omp simd
    for (size_t i = 0; i < len; i++) {
        const float v = x[i];
        const float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
        x[i] = v / (1.0f + ops_exp(-2.0f * u));
    }
}

static void add_block(float *restrict x, const float *restrict y, size_t len)
{
#pragma omp simd
    for (size_t i = 0; i < len; i++)
        x[i] += y[i];
}

/* Elementwise kernels work in blocks of ROW_BLOCK elements. */
static size_t blk_len(const rw_job *j, long bi, size_t *i0)
{
    *i0 = (size_t)bi * ROW_BLOCK;
    return j->len - *i0 < ROW_BLOCK ? j->len - *i0 : ROW_BLOCK;
}

static void gelu_erf_job(const rw_job *j, long bi)
{
    size_t i0, n = blk_len(j, bi, &i0);
    gelu_erf_block(j->x + i0, n);
}

static void gelu_tanh_job(const rw_job *j, long bi)
{
    size_t i0, n = blk_len(j, bi, &i0);
    gelu_tanh_block(j->x + i0, n);
}

static void add_job(const rw_job *j, long bi)
{
    size_t i0, n = blk_len(j, bi, &i0);
    add_block(j->x + i0, j->y + i0, n);
}

static void run_elementwise(void (*block)(const rw_job *, long), float *x, const float *y, size_t len, int nt)
{
    const rw_job j = {block, x, NULL, y, NULL, NULL, len, 0, 0.0f};
    run_blocks(&j, (long)((len + ROW_BLOCK - 1) / ROW_BLOCK), row_team(len, nt));
}

void OPS_K(gelu_erf)(float *x, size_t len, int nt) { run_elementwise(gelu_erf_job, x, NULL, len, nt); }
void OPS_K(gelu_tanh)(float *x, size_t len, int nt) { run_elementwise(gelu_tanh_job, x, NULL, len, nt); }
void OPS_K(add)(float *x, const float *y, size_t len, int nt) { run_elementwise(add_job, x, y, len, nt); }

void OPS_K(softmax)(float *x, int len)
{
    float mx = -INFINITY;
#pragma omp simd reduction(max:mx)
    for (int i = 0; i < len; i++)
        mx = x[i] > mx ? x[i] : mx;
    if (mx == -INFINITY) {          /* nothing to attend to: all weights 0, not NaN */
        for (int i = 0; i < len; i++)
            x[i] = 0.0f;
        return;
    }
    float s = 0.0f;
#pragma omp simd reduction(+:s)
    for (int i = 0; i < len; i++) {
        const float e = ops_exp(x[i] - mx);
        x[i] = e;
        s += e;
    }
#pragma omp simd
    for (int i = 0; i < len; i++)
        x[i] /= s;
}
