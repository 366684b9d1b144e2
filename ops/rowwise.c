/* ops/rowwise.c — layernorm, GELU, residual add, softmax and argmax.
 *
 * These are memory-light next to the matmuls; they only go parallel when a
 * call is big enough to pay for waking the thread team, and each element's
 * arithmetic is the same whichever thread computes it.
 */
#include "ops/ops_internal.h"
#include <omp.h>

/* Elements below which elementwise kernels stay on the calling thread. */
#define ROW_PAR_MIN 32768
/* Elementwise work is handed out in blocks of this many floats (cache-line multiples). */
#define ROW_BLOCK 4096

int ops_threads(int nt)
{
    return nt > 0 ? nt : omp_get_max_threads();
}

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

void ops_layernorm(float *out, const float *x, const float *w, const float *b,
                   int n, int c, float eps, int nt)
{
    const int T = row_team((size_t)n * (size_t)c, nt);
#pragma omp parallel for num_threads(T) if(T > 1) schedule(static)
    for (int r = 0; r < n; r++)
        ln_row(out + (size_t)r * c, x + (size_t)r * c, w, b, c, eps);
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

void ops_gelu_erf(float *x, size_t len, int nt)
{
    const int T = row_team(len, nt);
    const long nb = (long)((len + ROW_BLOCK - 1) / ROW_BLOCK);
#pragma omp parallel for num_threads(T) if(T > 1) schedule(static)
    for (long bi = 0; bi < nb; bi++) {
        const size_t i0 = (size_t)bi * ROW_BLOCK;
        gelu_erf_block(x + i0, len - i0 < ROW_BLOCK ? len - i0 : ROW_BLOCK);
    }
}

void ops_gelu_tanh(float *x, size_t len, int nt)
{
    const int T = row_team(len, nt);
    const long nb = (long)((len + ROW_BLOCK - 1) / ROW_BLOCK);
#pragma omp parallel for num_threads(T) if(T > 1) schedule(static)
    for (long bi = 0; bi < nb; bi++) {
        const size_t i0 = (size_t)bi * ROW_BLOCK;
        gelu_tanh_block(x + i0, len - i0 < ROW_BLOCK ? len - i0 : ROW_BLOCK);
    }
}

void ops_add(float *x, const float *y, size_t len, int nt)
{
    const int T = row_team(len, nt);
    const long nb = (long)((len + ROW_BLOCK - 1) / ROW_BLOCK);
#pragma omp parallel for num_threads(T) if(T > 1) schedule(static)
    for (long bi = 0; bi < nb; bi++) {
        const size_t i0 = (size_t)bi * ROW_BLOCK;
        add_block(x + i0, y + i0, len - i0 < ROW_BLOCK ? len - i0 : ROW_BLOCK);
    }
}

void ops_softmax(float *x, int len)
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

int ops_argmax(const float *x, int len)
{
    int best = 0;
    for (int i = 1; i < len; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}
