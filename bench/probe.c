/* bench/probe.c — measures the machine's ceilings (fp32 FMA rate, streaming-read
 * bandwidth) so benchmarks can report kernels as a fraction of what the
 * hardware can do rather than as bare numbers. Only the benchmarks use them,
 * so they live here and not in libkvgpt.a; they take the ops kernels' vector
 * width and prefetch distance (ops/ops_internal.h) so that the bounds are what
 * those kernels could reach. */
#include "bench/bench.h"
#include "ops/ops_internal.h"
#include <omp.h>

#define PROBE_CHAINS 16   /* independent accumulators: > FMA latency x FMA ports */

/* The library and this file are built for the architecture's baseline (the
 * kernels pick their instruction set at open): the FMA loop is cloned for
 * each x86-64 level and the widest the CPU runs is taken when the program is
 * loaded. The multiply-add is written for the compiler to fuse (fmaf would be
 * libm's software one where the clone has no FMA). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PROBE_CLONES __attribute__((target_clones("avx512f", "avx2,fma", "default")))
#else
#define PROBE_CLONES
#endif

/* One thread's FMA loop; returns its multiply-adds. The chains' values are
 * fed back through a volatile sink so the loop cannot be folded away. */
PROBE_CLONES static double probe_fma_thread(double seconds, volatile float *sink)
{
    float acc[PROBE_CHAINS][OPS_PANEL];
    float m[OPS_PANEL], c[OPS_PANEL];
    for (int j = 0; j < OPS_PANEL; j++) {
        m[j] = 0.999999f + (float)j * 1e-9f;
        c[j] = 1e-7f;
        for (int i = 0; i < PROBE_CHAINS; i++)
            acc[i][j] = (float)(i + j);
    }
    const int inner = 4096;
    double iters = 0.0;
    const double t0 = omp_get_wtime();
    double t;
    do {
        for (int it = 0; it < inner; it++)
            for (int i = 0; i < PROBE_CHAINS; i++)
#pragma omp simd
                for (int j = 0; j < OPS_PANEL; j++)
                    acc[i][j] = acc[i][j] * m[j] + c[j];
        iters += inner;
        t = omp_get_wtime();
    } while (t - t0 < seconds);
    float s = 0.0f;
    for (int i = 0; i < PROBE_CHAINS; i++)
        for (int j = 0; j < OPS_PANEL; j++)
            s += acc[i][j];
    *sink = s;
    return iters * PROBE_CHAINS * OPS_PANEL / (t - t0);
}

int bench_threads(int nt)
{
    return nt > 0 ? nt : omp_get_max_threads();
}

double bench_probe_fma_gflops(int nt, double seconds)
{
    const int T = bench_threads(nt);
    double total = 0.0;
    volatile float sink = 0.0f;
#pragma omp parallel num_threads(T) reduction(+:total)
    total += probe_fma_thread(seconds, &sink);
    (void)sink;
    return 2.0 * total * 1e-9;
}

/* XOR of 64-bit words: a 1-cycle vector op, so the reduction never limits the
 * read rate even from cache. Each line is prefetched as far ahead as decode
 * prefetches its weights: the bound is what the best streaming read gets,
 * not what the core's own prefetchers alone get (~10% less here). */
static uint64_t probe_read_range(const uint64_t *p, size_t words)
{
    uint64_t acc[OPS_PANEL / 2] = {0};
    size_t i = 0;
    for (; i + 32 <= words; i += 32) {
        for (int l = 0; l < 4; l++)
            OPS_PREFETCH((const char *)(p + i + 8 * l) + OPS_PREFETCH_BYTES);
#pragma omp simd
        for (int j = 0; j < 8; j++)
            acc[j] ^= p[i + j] ^ p[i + 8 + j] ^ p[i + 16 + j] ^ p[i + 24 + j];
    }
    uint64_t x = 0;
    for (; i < words; i++)
        x ^= p[i];
    for (int j = 0; j < 8; j++)
        x ^= acc[j];
    return x;
}

double bench_probe_read_gbps(const void *buf, size_t bytes, int nt, int reps)
{
    const int T = bench_threads(nt);
    const size_t words = bytes / sizeof(uint64_t);
    const uint64_t *p = (const uint64_t *)buf;
    volatile uint64_t sink = 0;
    double best = 0.0;
    for (int r = 0; r < (reps > 0 ? reps : 1); r++) {
        uint64_t x = 0;
        double t0 = 0.0, t1 = 0.0;
#pragma omp parallel num_threads(T) reduction(^:x)
        {
            const size_t tid = (size_t)omp_get_thread_num(), nth = (size_t)omp_get_num_threads();
            /* Split on 64-byte lines so no two threads share one. */
            const size_t lines = words / 8;
            const size_t a = lines * tid / nth * 8;
            const size_t b = tid + 1 == nth ? words : lines * (tid + 1) / nth * 8;
#pragma omp barrier
#pragma omp master
            t0 = omp_get_wtime();
            x ^= probe_read_range(p + a, b - a);
#pragma omp barrier
#pragma omp master
            t1 = omp_get_wtime();
        }
        sink ^= x;
        const double gbps = (double)(words * sizeof(uint64_t)) / (t1 - t0) * 1e-9;
        best = gbps > best ? gbps : best;
    }
    (void)sink;
    return best;
}
