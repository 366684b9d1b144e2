/* bench/bench_ops.c — times the matmul of the fastest kernel set (or the one
 * KVGPT_CPU_KERNELS names) at GPT-2 small shapes and reports it against the
 * machine probes (a report, not a test: make builds it, nothing runs it).
 *
 * Run:   build/cpu/bench/bench_ops [threads] [f32|bf16|f16]   (all dtypes by default)
 *
 * Decode (n = 1) cycles through enough copies of each matrix to span 1 GiB,
 * so every call streams its weights from memory as in a real model, not from
 * the last-level cache; "hot" repeats one matrix (cache-resident when small).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "bench/bench.h"
#include "ops/ops.h"

#define POOL_BYTES ((size_t)1 << 30)
#define REPS 7

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v; the median. v[0] is then the best (shortest) time. */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static float frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) / 16777216.0f) * 2.0f - 1.0f;
}

static void *xmalloc(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, n)) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static const char *dt_name(kvgpt_dtype dt)
{
    return dt == KVGPT_DTYPE_F32 ? "f32" : dt == KVGPT_DTYPE_F16 ? "f16" : "bf16";
}

int main(int argc, char **argv)
{
    const int nt = argc > 1 ? atoi(argv[1]) : 2;
    const char *only = argc > 2 ? argv[2] : NULL;
    const int T = ops_threads(nt);
    const char *want = getenv("KVGPT_CPU_KERNELS");
    const ops_kernels *K = want && *want ? ops_set_named(want) : ops_set_best();
    if (!K || !ops_set_runs(K)) {
        fprintf(stderr, "bench_ops: KVGPT_CPU_KERNELS=%s: no such kernel set, or this CPU cannot run it\n", want);
        return 2;
    }
    printf("kernels: %s\n", K->name);

    char *pool = xmalloc(POOL_BYTES);
    memset(pool, 1, POOL_BYTES);
    const double fma1 = bench_probe_fma_gflops(1, 0.5);
    const double fmaT = bench_probe_fma_gflops(T, 0.5);
    const double rd1 = bench_probe_read_gbps(pool, POOL_BYTES, 1, 5);
    const double rdT = bench_probe_read_gbps(pool, POOL_BYTES, T, 5);
    const double rdhot = bench_probe_read_gbps(pool, (size_t)8 << 20, T, 20);
    printf("probes: fma %.1f GFLOP/s (1 thread), %.1f GFLOP/s (%d threads)\n", fma1, fmaT, T);
    printf("        read %.1f GB/s (1 thread), %.1f GB/s (%d threads) over 1 GiB; %.1f GB/s over 8 MiB\n",
           rd1, rdT, T, rdhot);

    const int shapes[][2] = { {768, 2304}, {768, 768}, {768, 3072}, {3072, 768}, {768, 50257} };
    const kvgpt_dtype dts[3] = { KVGPT_DTYPE_F32, KVGPT_DTYPE_BF16, KVGPT_DTYPE_F16 };
    const int nmax = 1024;
    float *in = xmalloc((size_t)nmax * 3072 * sizeof(float));
    float *out = xmalloc((size_t)nmax * 50272 * sizeof(float));
    float *bias = xmalloc(50272 * sizeof(float));
    unsigned seed = 1;
    for (size_t i = 0; i < (size_t)nmax * 3072; i++)
        in[i] = frand(&seed);
    for (int i = 0; i < 50272; i++)
        bias[i] = frand(&seed);

    printf("\nmedian of reps (best in brackets); %% of the %d-thread probes\n", T);
    printf("%-5s %-11s | %-38s | %-24s | %-24s\n", "dtype", "ic x oc", "decode n=1 GB/s: cold (%read) [best] hot",
           "n=128 GFLOP/s (%fma)", "n=1024 GFLOP/s (%fma)");
    for (int d = 0; d < 3; d++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            if (only && strcmp(only, dt_name(dts[d])) != 0)
                continue;
            const int ic = shapes[s][0], oc = shapes[s][1];
            ops_wmat w = { NULL, dts[d], ic, oc };
            const size_t bytes = ops_packed_bytes(ic, oc, dts[d]);
            const size_t stride = (bytes + 4095) / 4096 * 4096;
            const int copies = (int)(POOL_BYTES / stride);
            w.data = pool;
            float *row = xmalloc((size_t)oc * sizeof *row);
            for (int k = 0; k < ic; k++) {
                for (int o = 0; o < oc; o++)
                    row[o] = frand(&seed) * 0.05f;
                ops_pack_row_k(&w, k, row);
            }
            ops_pack_zero_pad(&w);
            free(row);
            for (int c = 1; c < copies; c++)
                memcpy(pool + (size_t)c * stride, pool, bytes);

            /* decode, cold: a different copy each call */
            double t[REPS];
            for (int r = 0; r < REPS; r++) {
                double t0 = omp_get_wtime();
                for (int c = 0; c < copies; c++) {
                    w.data = pool + (size_t)c * stride;
                    K->matmul(out, oc, in, ic, &w, bias, 1, nt);
                }
                t[r] = (omp_get_wtime() - t0) / copies;
            }
            const double dec = (double)bytes / median(t, REPS) * 1e-9;
            const double dec_best = (double)bytes / t[0] * 1e-9;
            /* decode, hot: one matrix again and again */
            w.data = pool;
            const int hot_calls = (int)(((size_t)256 << 20) / bytes) + 1;
            for (int r = 0; r < REPS; r++) {
                double t0 = omp_get_wtime();
                for (int c = 0; c < hot_calls; c++)
                    K->matmul(out, oc, in, ic, &w, bias, 1, nt);
                t[r] = (omp_get_wtime() - t0) / hot_calls;
            }
            const double hot = (double)bytes / median(t, REPS) * 1e-9;

            double gf[2], gf_best[2];
            const int ns[2] = { 128, 1024 };
            for (int ni = 0; ni < 2; ni++) {
                const int n = ns[ni], reps = n * (double)ic * oc > 1e10 ? 3 : 5;
                K->matmul(out, oc, in, ic, &w, bias, n, nt);   /* warm */
                for (int r = 0; r < reps; r++) {
                    double t0 = omp_get_wtime();
                    K->matmul(out, oc, in, ic, &w, bias, n, nt);
                    t[r] = omp_get_wtime() - t0;
                }
                gf[ni] = 2.0 * n * ic * (double)oc / median(t, reps) * 1e-9;
                gf_best[ni] = 2.0 * n * ic * (double)oc / t[0] * 1e-9;
            }
            printf("%-5s %4d x %-5d | %5.1f (%4.0f%%) [%5.1f] %6.1f          | %6.1f (%3.0f%%) [%6.1f] | %6.1f (%3.0f%%) [%6.1f]\n",
                   dt_name(dts[d]), ic, oc, dec, 100.0 * dec / rdT, dec_best, hot, gf[0],
                   100.0 * gf[0] / fmaT, gf_best[0], gf[1], 100.0 * gf[1] / fmaT, gf_best[1]);
            fflush(stdout);
        }
    free(bias);
    free(out);
    free(in);
    free(pool);
    return 0;
}
